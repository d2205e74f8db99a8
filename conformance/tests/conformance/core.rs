//! Core pub/sub: ordering, wildcards, queue groups, headers, drain, auto-unsubscribe.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::HeaderMap;
use bytes::Bytes;
use futures::StreamExt;
use natrium_conformance::*;

natrium_conformance::scenarios! {
    pub_sub_ordering;
    wildcard_star;
    wildcard_full;
    queue_groups;
    headers_multi_value;
    subscription_drain;
    client_drain;
    auto_unsubscribe;
    auto_unsubscribe_after_partial;
    max_msgs_exactly_once;
    raw_unsub_max_counts_delivered;
}

/// C4, C6, C8, W2: messages arrive in publish order with the right subject and
/// payload; a message published before the subscription is not received.
async fn pub_sub_ordering(s: &Server) {
    let publisher = s.connect().await;
    let client = s.connect().await;
    // Published before anyone subscribes: must be dropped.
    publisher
        .publish("greet.early", "too early".into())
        .await
        .unwrap();
    sync(&publisher).await;

    let mut sub = client.subscribe("greet.*").await.unwrap();
    sync(&client).await;

    for name in ["joe", "pam", "bob"] {
        publisher
            .publish(
                format!("greet.{name}"),
                Bytes::from(format!("hello {name}")),
            )
            .await
            .unwrap();
    }
    sync(&publisher).await;

    for name in ["joe", "pam", "bob"] {
        let m = next_msg(&mut sub).await;
        assert_eq!(m.subject.as_str(), format!("greet.{name}"));
        assert_eq!(m.payload, Bytes::from(format!("hello {name}")));
        assert!(m.reply.is_none());
    }
    assert_no_msg(&mut sub, Duration::from_millis(200)).await;
}

/// W2, W3: `*` matches exactly one token.
async fn wildcard_star(s: &Server) {
    let c = s.connect().await;
    let mut star = c.subscribe("foo.*").await.unwrap();
    let mut mid = c.subscribe("a.*.c").await.unwrap();
    sync(&c).await;

    for subj in [
        "foo", "foo.a.b", "foo.x", "a.b.c", "a.b.c.d", "a.c", "a.x.c",
    ] {
        c.publish(subj, subj.into()).await.unwrap();
    }
    sync(&c).await;

    assert_eq!(next_msg(&mut star).await.subject.as_str(), "foo.x");
    assert_eq!(next_msg(&mut mid).await.subject.as_str(), "a.b.c");
    assert_eq!(next_msg(&mut mid).await.subject.as_str(), "a.x.c");
    assert_no_msg(&mut star, Duration::from_millis(200)).await;
    assert_no_msg(&mut mid, Duration::from_millis(50)).await;
}

/// W2, W5: `>` matches one or more trailing tokens; `foo.>` does not match `foo`.
async fn wildcard_full(s: &Server) {
    let c = s.connect().await;
    let mut full = c.subscribe("foo.>").await.unwrap();
    let mut all = c.subscribe(">").await.unwrap();
    let mut literal = c.subscribe("foo").await.unwrap();
    sync(&c).await;

    for subj in ["foo", "foo.a", "foo.a.b", "bar.a"] {
        c.publish(subj, subj.into()).await.unwrap();
    }
    sync(&c).await;

    assert_eq!(next_msg(&mut full).await.subject.as_str(), "foo.a");
    assert_eq!(next_msg(&mut full).await.subject.as_str(), "foo.a.b");
    // `>` also sees the `_INBOX.*` echoes that `sync` uses; skip those.
    for want in ["foo", "foo.a", "foo.a.b", "bar.a"] {
        let m = next_non_inbox(&mut all).await;
        assert_eq!(m.subject.as_str(), want);
        assert_eq!(m.payload, Bytes::from(want));
    }
    assert_eq!(next_msg(&mut literal).await.subject.as_str(), "foo");
    assert_no_msg(&mut full, Duration::from_millis(200)).await;
    while let Ok(m) = tokio::time::timeout(Duration::from_millis(50), all.next()).await {
        let m = m.expect("`>` subscription ended");
        assert!(m.subject.starts_with("_INBOX."), "unexpected {m:?}");
    }
    assert_no_msg(&mut literal, Duration::from_millis(50)).await;
}

async fn next_non_inbox(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    loop {
        let m = next_msg(sub).await;
        if !m.subject.starts_with("_INBOX.") {
            return m;
        }
    }
}

/// W6: each message goes to exactly one queue member; plain subscribers get all.
async fn queue_groups(s: &Server) {
    const N: usize = 100;
    let mut members = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let c = s.connect().await;
        members.push(c.queue_subscribe("work", "q".to_string()).await.unwrap());
        sync(&c).await;
        clients.push(c);
    }
    let plain_client = s.connect().await;
    let mut plain = plain_client.subscribe("work").await.unwrap();
    sync(&plain_client).await;

    let publisher = s.connect().await;
    for i in 0..N {
        publisher
            .publish("work", Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    sync(&publisher).await;

    for i in 0..N {
        let m = next_msg(&mut plain).await;
        assert_eq!(
            m.payload,
            Bytes::from(i.to_string()),
            "plain subscriber order"
        );
    }
    // Every member's messages arrive before a round trip on its connection.
    for c in &clients {
        sync(c).await;
    }
    let mut seen = HashSet::new();
    let mut counts = Vec::new();
    for m in members.iter_mut() {
        let mut count = 0;
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_millis(300), m.next()).await {
            let v: usize = std::str::from_utf8(&msg.payload).unwrap().parse().unwrap();
            assert!(seen.insert(v), "message {v} delivered to two queue members");
            count += 1;
            if seen.len() == N {
                break;
            }
        }
        counts.push(count);
    }
    assert_eq!(seen.len(), N, "queue members got {counts:?}");
    // P(some member gets none of 100) = 3 * (2/3)^100 ~ 7e-18.
    assert!(counts.iter().all(|&c| c > 0), "distribution {counts:?}");
    for m in members.iter_mut() {
        assert_no_msg(m, Duration::from_millis(50)).await;
    }
}

/// C5, C9: headers, including a key with several values, arrive intact and in order.
async fn headers_multi_value(s: &Server) {
    let c = s.connect().await;
    let mut sub = c.subscribe("hdr").await.unwrap();
    sync(&c).await;

    let mut h = HeaderMap::new();
    h.insert("X-Single", "one");
    h.append("X-Multi", "first");
    h.append("X-Multi", "second");
    h.append("X-Multi", "third");
    c.publish_with_headers("hdr", h, "body".into())
        .await
        .unwrap();
    // Headers with an empty payload.
    let mut h2 = HeaderMap::new();
    h2.insert("Only", "headers");
    c.publish_with_headers("hdr", h2, Bytes::new())
        .await
        .unwrap();
    sync(&c).await;

    let m = next_msg(&mut sub).await;
    assert_eq!(m.payload, Bytes::from("body"));
    let h = m.headers.expect("headers");
    assert_eq!(h.get("X-Single").unwrap().as_str(), "one");
    let multi: Vec<&str> = h.get_all("X-Multi").map(|v| v.as_str()).collect();
    assert_eq!(multi, ["first", "second", "third"]);

    let m = next_msg(&mut sub).await;
    assert!(m.payload.is_empty());
    assert_eq!(
        m.headers.expect("headers").get("Only").unwrap().as_str(),
        "headers"
    );
}

/// C7: draining a subscription delivers what was already published, then ends.
async fn subscription_drain(s: &Server) {
    let c = s.connect().await;
    let publisher = s.connect().await;
    let mut sub = c.subscribe("drain.sub").await.unwrap();
    sync(&c).await;
    for i in 0..20 {
        publisher
            .publish("drain.sub", Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    sync(&publisher).await;
    sync(&c).await;

    sub.drain().await.unwrap();
    for i in 0..20 {
        assert_eq!(next_msg(&mut sub).await.payload, Bytes::from(i.to_string()));
    }
    assert_ended(&mut sub).await;
    // The client stays usable and the server no longer delivers to that sid.
    publisher.publish("drain.sub", "late".into()).await.unwrap();
    sync(&publisher).await;
    let mut other = c.subscribe("drain.other").await.unwrap();
    sync(&c).await;
    publisher.publish("drain.other", "x".into()).await.unwrap();
    assert_eq!(next_msg(&mut other).await.payload, Bytes::from("x"));
}

/// C7: draining the client delivers pending messages, ends all subscriptions,
/// and closes the client.
async fn client_drain(s: &Server) {
    let c = s.connect().await;
    let publisher = s.connect().await;
    let mut a = c.subscribe("cd.a").await.unwrap();
    let mut b = c.subscribe("cd.b").await.unwrap();
    sync(&c).await;
    for i in 0..10 {
        publisher
            .publish("cd.a", Bytes::from(i.to_string()))
            .await
            .unwrap();
        publisher
            .publish("cd.b", Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    sync(&publisher).await;
    sync(&c).await;

    within("client drain", c.drain()).await.unwrap();
    for i in 0..10 {
        assert_eq!(next_msg(&mut a).await.payload, Bytes::from(i.to_string()));
        assert_eq!(next_msg(&mut b).await.payload, Bytes::from(i.to_string()));
    }
    assert_ended(&mut a).await;
    assert_ended(&mut b).await;
    // The server is unaffected.
    let c2 = s.connect().await;
    let mut sub = c2.subscribe("cd.a").await.unwrap();
    sync(&c2).await;
    publisher.publish("cd.a", "again".into()).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.payload, Bytes::from("again"));
}

/// C7: `unsubscribe_after(50)` then 60 publishes: exactly 50 arrive, then the stream ends.
async fn auto_unsubscribe(s: &Server) {
    let c = s.connect().await;
    let mut sub = c.subscribe("auto").await.unwrap();
    sub.unsubscribe_after(50).await.unwrap();
    sync(&c).await;
    let publisher = s.connect().await;
    for i in 0..60 {
        publisher
            .publish("auto", Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    sync(&publisher).await;
    for i in 0..50 {
        assert_eq!(next_msg(&mut sub).await.payload, Bytes::from(i.to_string()));
    }
    assert_ended(&mut sub).await;
}

/// C7: 50 messages to a subscriber with max 50: each arrives exactly once,
/// in order, then the subscription ends.
async fn max_msgs_exactly_once(s: &Server) {
    let c = s.connect().await;
    let mut sub = c.subscribe("max50").await.unwrap();
    sub.unsubscribe_after(50).await.unwrap();
    sync(&c).await;
    let publisher = s.connect().await;
    for i in 0..50 {
        publisher
            .publish("max50", Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    sync(&publisher).await;
    for i in 0..50 {
        assert_eq!(next_msg(&mut sub).await.payload, Bytes::from(i.to_string()));
    }
    assert_ended(&mut sub).await;
}

/// C7: after 3 deliveries, `unsubscribe_after(5)` allows 2 more (the max counts
/// all messages delivered on the subscription), then the stream ends.
async fn auto_unsubscribe_after_partial(s: &Server) {
    let c = s.connect().await;
    let mut sub = c.subscribe("auto2").await.unwrap();
    sync(&c).await;
    let publisher = s.connect().await;
    for i in 0..3 {
        publisher
            .publish("auto2", Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    sync(&publisher).await;
    for i in 0..3 {
        assert_eq!(next_msg(&mut sub).await.payload, Bytes::from(i.to_string()));
    }
    sub.unsubscribe_after(5).await.unwrap();
    sync(&c).await;
    for i in 3..13 {
        publisher
            .publish("auto2", Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    sync(&publisher).await;
    for i in 3..5 {
        assert_eq!(next_msg(&mut sub).await.payload, Bytes::from(i.to_string()));
    }
    assert_ended(&mut sub).await;
}

/// C7 (server side, raw protocol): `UNSUB <sid> <max>` counts messages already
/// delivered on the sid, so after 3 deliveries `UNSUB 1 5` lets exactly 2 more through.
/// Also: `UNSUB <sid> <max>` with max <= delivered removes the subscription at once.
async fn raw_unsub_max_counts_delivered(s: &Server) {
    let mut sub = s.raw().await;
    sub.read_info().await;
    sub.send("CONNECT {\"verbose\":false}\r\nSUB u 1\r\nSUB v 2\r\nPING\r\n")
        .await;
    assert_eq!(sub.line().await, "PONG");

    let mut publisher = s.raw().await;
    publisher.read_info().await;
    publisher.send("CONNECT {\"verbose\":false}\r\n").await;
    for i in 0..3 {
        publisher
            .send(format!("PUB u 1\r\n{i}\r\nPUB v 1\r\n{i}\r\n"))
            .await;
    }
    publisher.send("PING\r\n").await;
    assert_eq!(publisher.line().await, "PONG");
    for i in 0..3 {
        assert_eq!(sub.line().await, "MSG u 1 1");
        assert_eq!(sub.read_payload(1).await, i.to_string().into_bytes());
        assert_eq!(sub.line().await, "MSG v 2 1");
        assert_eq!(sub.read_payload(1).await, i.to_string().into_bytes());
    }
    // sid 1: 3 delivered, max 5 -> 2 more. sid 2: 3 delivered, max 2 -> none.
    sub.send("UNSUB 1 5\r\nUNSUB 2 2\r\nPING\r\n").await;
    assert_eq!(sub.line().await, "PONG");
    for i in 3..10 {
        publisher
            .send(format!("PUB u 1\r\n{i}\r\nPUB v 1\r\n{i}\r\n"))
            .await;
    }
    publisher.send("PING\r\n").await;
    assert_eq!(publisher.line().await, "PONG");
    sub.send("PING\r\n").await;
    let mut got = Vec::new();
    loop {
        let l = sub.line().await;
        if l == "PONG" {
            break;
        }
        let parts: Vec<&str> = l.split(' ').collect();
        assert_eq!(parts[0], "MSG", "unexpected line {l:?}");
        let n: usize = parts.last().unwrap().parse().unwrap();
        let p = sub.read_payload(n).await;
        got.push(format!("{} {}", parts[1], String::from_utf8(p).unwrap()));
    }
    assert_eq!(got, ["u 3", "u 4"]);
}
