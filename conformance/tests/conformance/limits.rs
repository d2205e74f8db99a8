//! Limits: max_payload and slow consumers.

use std::time::Duration;

use async_nats::client::PublishErrorKind;
use bytes::Bytes;
use futures::StreamExt;
use natrium_conformance::*;

// nats-server refuses to start when max_payload > max_pending, so lower both.
const SLOW_CONSUMER_CONFIG: &str =
    "max_payload: 65536\nmax_pending: 262144\nwrite_deadline: \"2s\"\n";

natrium_conformance::scenarios! {
    raw_max_payload_violation => Spec::config(configs::MAX_PAYLOAD_1024);
    max_payload_client_side => Spec::config(configs::MAX_PAYLOAD_1024);
    slow_consumer_is_cut_off => Spec::config(SLOW_CONSUMER_CONFIG);
}

/// E5, I8: INFO advertises the configured max_payload; a PUB over it gets
/// `-ERR 'Maximum Payload Violation'` and the connection is closed.
async fn raw_max_payload_violation(s: &Server) {
    let mut c = s.raw().await;
    let info = c.read_info().await;
    assert_eq!(info["max_payload"], 1024, "{info}");
    // CONNECT {} is verbose by default in nats-server, hence the +OK.
    c.send("CONNECT {\"verbose\":false}\r\nPUB foo 1024\r\n")
        .await;
    c.send([b'x'; 1024]).await;
    c.send("\r\nPING\r\n").await;
    assert_eq!(c.line().await, "PONG", "exactly max_payload is allowed");
    c.send("PUB foo 2000\r\n").await;
    assert_eq!(c.line().await, "-ERR 'Maximum Payload Violation'");
    let rest = c.expect_closed(WAIT).await;
    assert!(rest.is_empty(), "nothing after the error, got {rest:?}");
}

/// E5, I8: async-nats learns max_payload from INFO and refuses to publish more.
async fn max_payload_client_side(s: &Server) {
    let c = s.connect().await;
    assert_eq!(c.server_info().max_payload, 1024);
    let err = c
        .publish("foo", Bytes::from(vec![0u8; 2000]))
        .await
        .expect_err("client must refuse");
    assert_eq!(err.kind(), PublishErrorKind::MaxPayloadExceeded);
    // And the connection is still fine.
    let mut sub = c.subscribe("foo").await.unwrap();
    sync(&c).await;
    c.publish("foo", Bytes::from(vec![1u8; 1000]))
        .await
        .unwrap();
    assert_eq!(next_msg(&mut sub).await.payload.len(), 1000);
}

/// L3, E19: a subscriber that stops reading is disconnected by the server
/// (slow consumer), while a healthy subscriber on the same subject still gets
/// every message, in order.
async fn slow_consumer_is_cut_off(s: &Server) {
    const MSG: usize = 8 * 1024;
    const BATCH: usize = 8; // 64 KiB per batch, well under max_pending
    const TOTAL_BYTES: usize = 20 * 1024 * 1024;
    const N: usize = TOTAL_BYTES / MSG;

    // The stuck subscriber: subscribes, then never reads.
    let mut stuck = s.raw().await;
    stuck.read_info().await;
    stuck
        .send("CONNECT {\"verbose\":false}\r\nSUB big 1\r\nPING\r\n")
        .await;
    assert_eq!(stuck.line().await, "PONG");

    let healthy = s.connect().await;
    let mut sub = healthy.subscribe("big").await.unwrap();
    sync(&healthy).await;

    let publisher = s.connect().await;
    let mut payload = vec![b'.'; MSG];
    let mut next = 0usize;
    let work = async {
        for batch in 0..N / BATCH {
            for i in 0..BATCH {
                let seq = batch * BATCH + i;
                let tag = format!("{seq:08}");
                payload[..8].copy_from_slice(tag.as_bytes());
                publisher
                    .publish("big", Bytes::copy_from_slice(&payload))
                    .await
                    .expect("publisher must not see errors");
            }
            publisher.flush().await.expect("publisher flush");
            // Pace: the healthy subscriber catches up before the next batch,
            // so only the stuck one accumulates pending data.
            while next < (batch + 1) * BATCH {
                let m = sub.next().await.expect("healthy subscription ended");
                assert_eq!(m.payload.len(), MSG);
                let seq: usize = std::str::from_utf8(&m.payload[..8])
                    .unwrap()
                    .parse()
                    .unwrap();
                assert_eq!(
                    seq, next,
                    "healthy subscriber: message out of order or lost"
                );
                next += 1;
            }
        }
    };
    within_for(
        Duration::from_secs(20),
        "publishing 20 MB through a healthy subscriber",
        work,
    )
    .await;
    assert_eq!(next, N);

    // The stuck client must have been disconnected: reading now yields
    // whatever was buffered in the kernel, then EOF (or a reset), and
    // certainly not all 20 MB.
    let got = stuck.drain_to_close(Duration::from_secs(10)).await;
    eprintln!("stuck client read {got} of {TOTAL_BYTES} bytes before the server closed it");
    assert!(
        got < TOTAL_BYTES,
        "stuck client received {got} bytes, expected to be cut off"
    );

    // The healthy client and server are still fine.
    publisher.publish("big", "after".into()).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.payload, Bytes::from("after"));
}
