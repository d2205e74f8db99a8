//! Request/reply and no-responders.

use std::time::Duration;

use async_nats::RequestErrorKind;
use bytes::Bytes;
use futures::StreamExt;
use natrium_conformance::*;

natrium_conformance::scenarios! {
    request_reply;
    request_reply_old_style;
    no_responders;
    no_responders_after_unsubscribe;
    raw_no_responders_status;
    raw_no_responders_needs_opt_in;
}

/// C15: a responder answers and the requester gets the reply.
async fn request_reply(s: &Server) {
    let responder = s.connect().await;
    let mut sub = responder.subscribe("svc.echo").await.unwrap();
    sync(&responder).await;
    let task = tokio::spawn({
        let responder = responder.clone();
        async move {
            for _ in 0..3 {
                let Some(m) = sub.next().await else { return };
                let reply = m.reply.expect("request carries a reply subject");
                let mut out = b"echo: ".to_vec();
                out.extend_from_slice(&m.payload);
                responder.publish(reply, out.into()).await.unwrap();
            }
        }
    });
    let requester = s.connect().await;
    for i in 0..3 {
        let r = within(
            "request",
            requester.request("svc.echo", Bytes::from(format!("ping {i}"))),
        )
        .await
        .expect("request");
        assert_eq!(r.payload, Bytes::from(format!("echo: ping {i}")));
    }
    within("responder task", task).await.unwrap();
}

/// C15: the old request style by hand: a private `_INBOX.<nuid>` subscription
/// per request with `UNSUB <sid> 1`, then a publish with that reply subject.
async fn request_reply_old_style(s: &Server) {
    let responder = s.connect().await;
    let mut sub = responder.subscribe("svc.echo").await.unwrap();
    sync(&responder).await;
    let task = tokio::spawn({
        let responder = responder.clone();
        async move {
            for _ in 0..3 {
                let Some(m) = sub.next().await else { return };
                let mut out = b"echo: ".to_vec();
                out.extend_from_slice(&m.payload);
                responder
                    .publish(m.reply.unwrap(), out.into())
                    .await
                    .unwrap();
            }
        }
    });
    let requester = s.connect().await;
    for i in 0..3 {
        let inbox = requester.new_inbox();
        let mut replies = requester.subscribe(inbox.clone()).await.unwrap();
        replies.unsubscribe_after(1).await.unwrap();
        requester
            .publish_with_reply("svc.echo", inbox, Bytes::from(format!("ping {i}")))
            .await
            .unwrap();
        let r = next_msg(&mut replies).await;
        assert_eq!(r.payload, Bytes::from(format!("echo: ping {i}")));
        assert_ended(&mut replies).await;
    }
    within("responder task", task).await.unwrap();
}

/// C16: a request to a subject nobody listens on fails at once with NoResponders.
async fn no_responders(s: &Server) {
    let c = s
        .connect_with(
            async_nats::ConnectOptions::new().request_timeout(Some(Duration::from_secs(10))),
        )
        .await;
    let start = std::time::Instant::now();
    let err = within("request", c.request("nobody.home", "hi".into()))
        .await
        .expect_err("request without responders must fail");
    assert_eq!(err.kind(), RequestErrorKind::NoResponders, "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "must fail at once, not time out"
    );
}

/// C16: after the only responder unsubscribes, requests fail with NoResponders.
async fn no_responders_after_unsubscribe(s: &Server) {
    let responder = s.connect().await;
    let mut sub = responder.subscribe("svc.gone").await.unwrap();
    sync(&responder).await;
    let requester = s
        .connect_with(
            async_nats::ConnectOptions::new().request_timeout(Some(Duration::from_secs(10))),
        )
        .await;

    let req = tokio::spawn({
        let requester = requester.clone();
        async move { requester.request("svc.gone", "1".into()).await }
    });
    let m = next_msg(&mut sub).await;
    responder
        .publish(m.reply.unwrap(), "ok".into())
        .await
        .unwrap();
    let r = within("request", req)
        .await
        .unwrap()
        .expect("first request");
    assert_eq!(r.payload, Bytes::from("ok"));

    sub.unsubscribe().await.unwrap();
    sync(&responder).await;
    let err = within("request", requester.request("svc.gone", "2".into()))
        .await
        .expect_err("request after unsubscribe must fail");
    assert_eq!(err.kind(), RequestErrorKind::NoResponders, "{err:?}");
}

/// C16 (raw protocol): with `headers` and `no_responders` in CONNECT, a PUB
/// with a reply subject and no subscribers yields an `HMSG` on the reply
/// subject carrying status `503`.
async fn raw_no_responders_status(s: &Server) {
    let mut c = s.raw().await;
    c.read_info().await;
    c.send("CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\nSUB _INBOX.x 7\r\nPUB nobody _INBOX.x 2\r\nhi\r\nPING\r\n").await;
    let line = c.line().await;
    let parts: Vec<&str> = line.split(' ').collect();
    // HMSG <subject> <sid> <hdr_len> <total_len>
    assert_eq!(parts.len(), 5, "{line:?}");
    assert_eq!(&parts[..3], ["HMSG", "_INBOX.x", "7"], "{line:?}");
    let hdr_len: usize = parts[3].parse().unwrap();
    let total: usize = parts[4].parse().unwrap();
    assert_eq!(hdr_len, total, "no-responders status carries no payload");
    let body = String::from_utf8(c.read_payload(total).await).unwrap();
    assert!(body.starts_with("NATS/1.0 503"), "{body:?}");
    assert!(body.ends_with("\r\n\r\n"), "{body:?}");
    assert_eq!(c.line().await, "PONG");
}

/// C16 (raw protocol): without `"no_responders":true` (and headers) in
/// CONNECT, a request with no subscribers gets no status message at all.
async fn raw_no_responders_needs_opt_in(s: &Server) {
    let mut c = s.raw().await;
    c.read_info().await;
    c.send(
        "CONNECT {\"verbose\":false}\r\nSUB _INBOX.y 1\r\nPUB nobody _INBOX.y 0\r\n\r\nPING\r\n",
    )
    .await;
    assert_eq!(c.line().await, "PONG");
}
