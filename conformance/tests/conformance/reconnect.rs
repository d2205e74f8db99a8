//! Reconnect: the server is restarted on the same port; the client
//! reconnects and its subscriptions resume.

use std::time::Duration;

use bytes::Bytes;
use natrium_conformance::*;

natrium_conformance::scenarios! {
    reconnect_after_restart;
}

async fn reconnect_after_restart(s: &Server) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Not `s.connect_with`: that limits reconnect attempts.
    let c = within(
        "connect",
        async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(3))
            .reconnect_delay_callback(|_| Duration::from_millis(100))
            .event_callback(move |e| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(e.to_string());
                }
            })
            .connect(s.url()),
    )
    .await
    .expect("connect");
    let mut sub = c.subscribe("re.x").await.unwrap();
    let mut wsub = c.subscribe("re.>").await.unwrap();
    sync(&c).await;
    c.publish("re.x", "before".into()).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.payload, Bytes::from("before"));
    assert_eq!(next_msg(&mut wsub).await.payload, Bytes::from("before"));

    s.restart().await;
    // Wait for the client to report the reconnect.
    within_for(Duration::from_secs(15), "reconnect event", async {
        let mut disconnected = false;
        while let Some(e) = rx.recv().await {
            if e == "disconnected" {
                disconnected = true;
            } else if disconnected && e == "connected" {
                return;
            }
        }
    })
    .await;
    sync(&c).await;
    let publisher = s.connect().await;
    publisher.publish("re.x", "after".into()).await.unwrap();
    sync(&publisher).await;
    assert_eq!(next_msg(&mut sub).await.payload, Bytes::from("after"));
    assert_eq!(next_msg(&mut wsub).await.payload, Bytes::from("after"));
    c.publish("re.x", "own".into()).await.unwrap();
    assert_eq!(next_msg(&mut sub).await.payload, Bytes::from("own"));
}
