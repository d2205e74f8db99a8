//! JetStream consumers (feature matrix sections 4.7-4.11): pull and push
//! delivery, deliver policies, the ack protocol (ACK, NAK with and without
//! delay, WPI, TERM, ack of ack), redelivery and max_deliver, the pull
//! status replies, consumer info counters, interest and work-queue
//! retention, and a kill -9 crash test of consumer state. Row IDs (CC, AK,
//! PL, PU, AD, S, PE) refer to the feature matrix.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, push, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::{self, AckKind};
use bytes::Bytes;
use futures::StreamExt;
use natrium_conformance::*;
use serde_json::{json, Value};

use crate::jetstream::{
    api, assert_schema, connect_fast, counts, create, err_code, js, ok, pub_seq, wait_js_ready,
};

natrium_conformance::scenarios! {
    js_pull_work_queue => Spec::jetstream();
    js_push_durable_resume => Spec::jetstream();
    js_deliver_policies => Spec::jetstream();
    js_nak_redelivery => Spec::jetstream();
    js_max_deliver => Spec::jetstream();
    js_pull_status_replies => Spec::jetstream();
    js_consumer_info_counts => Spec::jetstream();
    js_ack_sync => Spec::jetstream();
    js_interest_retention => Spec::jetstream();
    js_consumer_crash_kill9 => Spec::jetstream();
}

// ---------------------------------------------------------------------------
// Helpers

/// A durable pull consumer with explicit acks (plus `tweak`).
async fn durable_pull(
    ctx: &jetstream::Context,
    stream: &str,
    name: &str,
    tweak: impl FnOnce(&mut pull::Config),
) -> PullConsumer {
    let mut cfg = pull::Config {
        durable_name: Some(name.to_string()),
        ack_policy: AckPolicy::Explicit,
        ..Default::default()
    };
    tweak(&mut cfg);
    let st = ctx
        .get_stream(stream)
        .await
        .unwrap_or_else(|e| panic!("get stream {stream}: {e}"));
    within("create consumer", st.create_consumer(cfg))
        .await
        .unwrap_or_else(|e| panic!("create consumer {stream}.{name}: {e}"))
}

/// One pull request for up to `batch` messages that waits up to `expires`
/// (the server ends it with 408 when the batch is not filled).
async fn pull(consumer: &PullConsumer, batch: usize, expires: Duration) -> Vec<jetstream::Message> {
    let fut = async {
        let mut msgs = consumer
            .batch()
            .max_messages(batch)
            .expires(expires)
            .messages()
            .await
            .expect("pull request");
        let mut out = Vec::new();
        while let Some(m) = msgs.next().await {
            out.push(m.expect("pull: status error"));
        }
        out
    };
    within_for(expires + WAIT, "pull request", fut).await
}

/// One `no_wait` pull request (fetch): what is available now, up to `batch`.
/// A `fetch` (no_wait) of up to `batch`; an empty answer is asked again a
/// few times, 100 ms apart: nats-server 2.9.10 counts a consumer's pending
/// messages asynchronously, so a fetch right after a publish may find none.
async fn fetch(consumer: &PullConsumer, batch: usize) -> Vec<jetstream::Message> {
    let once = || async {
        let mut msgs = consumer
            .fetch()
            .max_messages(batch)
            .messages()
            .await
            .expect("fetch request");
        let mut out = Vec::new();
        while let Some(m) = msgs.next().await {
            out.push(m.expect("fetch: status error"));
        }
        out
    };
    for _ in 0..4 {
        let got = within("fetch", once()).await;
        if !got.is_empty() {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    within("fetch", once()).await
}

/// Stream sequence of a delivered message (from its `$JS.ACK` reply, AK1).
fn sseq(m: &jetstream::Message) -> u64 {
    m.info().expect("ack reply metadata").stream_sequence
}

/// Delivery count of a delivered message (AK1).
fn delivered(m: &jetstream::Message) -> i64 {
    m.info().expect("ack reply metadata").delivered
}

fn seqs(msgs: &[jetstream::Message]) -> Vec<u64> {
    msgs.iter().map(sseq).collect()
}

/// Raw `$JS.API.CONSUMER.INFO.<stream>.<consumer>`, checked against the
/// schema.
async fn cinfo(c: &async_nats::Client, stream: &str, consumer: &str) -> Value {
    let v = ok(api(c, &format!("$JS.API.CONSUMER.INFO.{stream}.{consumer}"), "").await);
    assert_schema("consumer_info_response", &v);
    v
}

/// The counters of a consumer info, as one comparable JSON object:
/// `delivered` and `ack_floor` as `[consumer_seq, stream_seq]`.
fn counters(v: &Value) -> Value {
    json!({
        "delivered": [v["delivered"]["consumer_seq"], v["delivered"]["stream_seq"]],
        "ack_floor": [v["ack_floor"]["consumer_seq"], v["ack_floor"]["stream_seq"]],
        "num_ack_pending": v["num_ack_pending"],
        "num_redelivered": v["num_redelivered"],
        "num_waiting": v["num_waiting"],
        "num_pending": v["num_pending"],
    })
}

/// Poll `f` until it returns true (bounded by `limit`).
async fn eventually<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if f().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Publish `n` messages `<prefix>-<i>` to `subject`; returns their sequences.
async fn publish_n(c: &async_nats::Client, subject: &str, prefix: &str, n: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(pub_seq(c, subject, &format!("{prefix}-{i}")).await);
    }
    out
}

// ---------------------------------------------------------------------------
// Scenarios

/// PE1, SC4, PL1, AK3, AK9, CC5, CC31: two workers share one durable
/// pull consumer on a work-queue stream; every message is processed exactly
/// once, and acked messages leave the stream.
async fn js_pull_work_queue(s: &Server) {
    const N: u64 = 200;
    let (c, ctx) = js(s).await;
    create(
        &c,
        json!({"name":"WQ","subjects":["wq.>"],"retention":"workqueue"}),
    )
    .await;
    for i in 1..=N {
        assert_eq!(pub_seq(&c, "wq.job", &format!("job-{i}")).await, i);
    }
    durable_pull(&ctx, "WQ", "worker", |_| {}).await;

    // (worker, stream seq, delivered count, payload)
    type Seen = Vec<(usize, u64, i64, String)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..2 {
        let seen = seen.clone();
        let client = s.connect().await;
        workers.push(tokio::spawn(async move {
            let ctx = jetstream::new(client.clone());
            let consumer: PullConsumer = ctx
                .get_stream("WQ")
                .await
                .expect("stream")
                .get_consumer("worker")
                .await
                .expect("consumer");
            let deadline = Instant::now() + Duration::from_secs(10);
            while (seen.lock().unwrap().len() as u64) < N && Instant::now() < deadline {
                let msgs = fetch(&consumer, 10).await;
                if msgs.is_empty() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                for m in msgs {
                    let payload = String::from_utf8(m.payload.to_vec()).unwrap();
                    seen.lock()
                        .unwrap()
                        .push((w, sseq(&m), delivered(&m), payload));
                    m.ack().await.expect("ack");
                }
            }
            sync(&client).await;
        }));
    }
    for w in workers {
        within_for(Duration::from_secs(15), "workers", w)
            .await
            .expect("worker task");
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let mut by_seq: BTreeMap<u64, Vec<(usize, i64, String)>> = BTreeMap::new();
    for (w, seq, dc, payload) in &seen {
        by_seq
            .entry(*seq)
            .or_default()
            .push((*w, *dc, payload.clone()));
    }
    assert_eq!(
        by_seq.keys().copied().collect::<Vec<_>>(),
        (1..=N).collect::<Vec<_>>(),
        "every job delivered"
    );
    for (seq, got) in &by_seq {
        assert_eq!(got.len(), 1, "seq {seq} processed more than once: {got:?}");
        assert_eq!(got[0].1, 1, "seq {seq}: delivered count");
        assert_eq!(got[0].2, format!("job-{seq}"), "seq {seq}: payload");
    }
    let per_worker: Vec<usize> = (0..2)
        .map(|w| seen.iter().filter(|x| x.0 == w).count())
        .collect();
    eprintln!("{}: jobs per worker {per_worker:?}", s.target.name());

    // Acked messages are removed from a work-queue stream.
    eventually("work queue empty", Duration::from_secs(3), || async {
        counts(&c, "WQ").await.0 == 0 && cinfo(&c, "WQ", "worker").await["num_ack_pending"] == 0
    })
    .await;
    let (msgs, bytes, first, last) = counts(&c, "WQ").await;
    assert_eq!((msgs, bytes, first, last), (0, 0, N + 1, N));
    let v = cinfo(&c, "WQ", "worker").await;
    assert_eq!(
        counters(&v),
        json!({"delivered":[N,N],"ack_floor":[N,N],"num_ack_pending":0,
               "num_redelivered":0,"num_waiting":0,"num_pending":0}),
        "{v}"
    );

    // CC31: a second unfiltered consumer on a work queue is refused.
    let v = api(
        &c,
        "$JS.API.CONSUMER.DURABLE.CREATE.WQ.other",
        &json!({"stream_name":"WQ","config":{"durable_name":"other","ack_policy":"explicit"}})
            .to_string(),
    )
    .await;
    assert_eq!(err_code(&v), 10099, "{v}");
    assert_eq!(
        v["error"]["description"],
        "multiple non-filtered consumers not allowed on workqueue stream",
        "{v}"
    );
    // CC5: a pull consumer on a work queue must ack (2.9.10 wording of
    // 10084; later servers add "explicit ... on workqueue stream").
    let wq_create = |name: &str, config: Value| {
        let body = json!({"stream_name":"WQ","config":config}).to_string();
        let subject = format!("$JS.API.CONSUMER.DURABLE.CREATE.WQ.{name}");
        let c = c.clone();
        async move { api(&c, &subject, &body).await }
    };
    let v = wq_create(
        "noack",
        json!({"durable_name":"noack","ack_policy":"none","filter_subject":"wq.other"}),
    )
    .await;
    assert_eq!(err_code(&v), 10084, "{v}");
    assert_eq!(
        v["error"]["description"], "consumer in pull mode requires ack policy",
        "{v}"
    );
    // A push consumer on a work queue must ack explicitly too (10098).
    let v = wq_create(
        "pushnoack",
        json!({"durable_name":"pushnoack","ack_policy":"none","filter_subject":"wq.other",
               "deliver_subject":"wqout"}),
    )
    .await;
    assert_eq!(err_code(&v), 10098, "{v}");
    assert_eq!(
        v["error"]["description"], "workqueue stream requires explicit ack",
        "{v}"
    );
    // Filtered consumers must not overlap each other (10100) nor an
    // unfiltered one (10099, above).
    ok(api(&c, "$JS.API.CONSUMER.DELETE.WQ.worker", "").await);
    // Only deliver all (10101).
    let v = wq_create(
        "last",
        json!({"durable_name":"last","ack_policy":"explicit","filter_subject":"wq.other",
               "deliver_policy":"last"}),
    )
    .await;
    assert_eq!(err_code(&v), 10101, "{v}");
    assert_eq!(
        v["error"]["description"], "consumer must be deliver all on workqueue stream",
        "{v}"
    );
    ok(wq_create(
        "fa",
        json!({"durable_name":"fa","ack_policy":"explicit","filter_subject":"wq.a.*"}),
    )
    .await);
    let v = wq_create(
        "fb",
        json!({"durable_name":"fb","ack_policy":"explicit","filter_subject":"wq.a.x"}),
    )
    .await;
    assert_eq!(err_code(&v), 10100, "{v}");
    assert_eq!(
        v["error"]["description"], "filtered consumer not unique on workqueue stream",
        "{v}"
    );
    ok(wq_create(
        "fc",
        json!({"durable_name":"fc","ack_policy":"explicit","filter_subject":"wq.b"}),
    )
    .await);
}

/// PU1, AK9, CC19: a durable push consumer remembers acks across client
/// connections. Client A gets all ten messages, acks the first five (ack
/// of ack, so they are final) and disconnects; client B subscribes to the
/// same deliver subject and gets exactly the other five (redelivered after
/// ack_wait) plus what was published meanwhile, never an acked one.
async fn js_push_durable_resume(s: &Server) {
    let (c, ctx) = js(s).await;
    create(&c, json!({"name":"PUSH","subjects":["push.>"]})).await;
    publish_n(&c, "push.a", "m", 10).await;
    let st = ctx.get_stream("PUSH").await.unwrap();
    st.create_consumer(push::Config {
        durable_name: Some("pd".into()),
        deliver_subject: "deliver.pd".into(),
        ack_policy: AckPolicy::Explicit,
        ack_wait: Duration::from_secs(1),
        ..Default::default()
    })
    .await
    .expect("create push consumer");
    let v = cinfo(&c, "PUSH", "pd").await;
    assert_eq!(v["config"]["deliver_subject"], "deliver.pd", "{v}");
    assert_ne!(v["push_bound"], true, "no subscriber yet: {v}");

    // Client A.
    {
        let a = s.connect().await;
        let actx = jetstream::new(a.clone());
        let mut sub = a.subscribe("deliver.pd").await.unwrap();
        let mut got = Vec::new();
        for _ in 0..10 {
            let m = next_msg(&mut sub).await;
            got.push(jetstream::Message {
                message: m,
                context: actx.clone(),
            });
        }
        assert_eq!(seqs(&got), (1..=10).collect::<Vec<_>>());
        assert!(got.iter().all(|m| delivered(m) == 1));
        assert_eq!(got[0].payload, Bytes::from("m-0"));
        let v = cinfo(&c, "PUSH", "pd").await;
        assert_eq!(v["push_bound"], true, "{v}");
        for m in &got[..5] {
            within("double ack", m.double_ack())
                .await
                .expect("ack of ack");
        }
        // Disconnect without unsubscribing.
        drop(sub);
        drop(got);
        drop(actx);
        drop(a);
    }
    eventually("push_bound cleared", Duration::from_secs(3), || async {
        cinfo(&c, "PUSH", "pd").await["push_bound"] != true
    })
    .await;
    publish_n(&c, "push.a", "late", 2).await; // seqs 11, 12

    // Client B: a new connection on the same deliver subject.
    let b = s.connect().await;
    let bctx = jetstream::new(b.clone());
    let mut sub = b.subscribe("deliver.pd").await.unwrap();
    let mut got: BTreeMap<u64, i64> = BTreeMap::new();
    let started = Instant::now();
    while got.len() < 7 && started.elapsed() < Duration::from_secs(4) {
        let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), sub.next()).await else {
            continue;
        };
        let m = jetstream::Message {
            message: m,
            context: bctx.clone(),
        };
        let (seq, dc) = (sseq(&m), delivered(&m));
        assert!(seq > 5, "acked message {seq} delivered again");
        assert!(got.insert(seq, dc).is_none(), "seq {seq} twice");
        within("double ack", m.double_ack()).await.expect("ack");
    }
    assert_eq!(
        got,
        BTreeMap::from([(6, 2), (7, 2), (8, 2), (9, 2), (10, 2), (11, 1), (12, 1)]),
        "(stream seq, delivered count) at client B"
    );
    // Everything is acked: nothing more, not even after ack_wait.
    assert_no_msg(&mut sub, Duration::from_millis(1500)).await;
    let v = cinfo(&c, "PUSH", "pd").await;
    assert_eq!(v["push_bound"], true, "{v}");
    assert_eq!(
        counters(&v),
        json!({"delivered":[17,12],"ack_floor":[17,12],"num_ack_pending":0,
               "num_redelivered":0,"num_waiting":0,"num_pending":0}),
        "{v}"
    );
}

/// PE4, CC4, CC9: which stream sequences each deliver policy starts from,
/// with and without a filter, and num_pending at creation.
async fn js_deliver_policies(s: &Server) {
    let (c, ctx) = js(s).await;
    create(&c, json!({"name":"DP","subjects":["dp.>"]})).await;
    // 1 a, 2 b, 3 c, 4 a, 5 b, 6 a
    for (i, subj) in ["a", "b", "c", "a", "b", "a"].iter().enumerate() {
        if i == 4 {
            // A visible gap in time before seq 5 (by_start_time).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        pub_seq(&c, &format!("dp.{subj}"), &format!("{subj}{i}")).await;
    }
    let st = ctx.get_stream("DP").await.unwrap();
    let t5 = st.get_raw_message(5).await.expect("seq 5").time;

    let cases: Vec<(&str, DeliverPolicy, &str, u64, Vec<u64>)> = vec![
        ("all", DeliverPolicy::All, "", 6, vec![1, 2, 3, 4, 5, 6]),
        ("last", DeliverPolicy::Last, "", 1, vec![6]),
        ("new", DeliverPolicy::New, "", 0, vec![]),
        (
            "seq4",
            DeliverPolicy::ByStartSequence { start_sequence: 4 },
            "",
            3,
            vec![4, 5, 6],
        ),
        (
            "time5",
            DeliverPolicy::ByStartTime { start_time: t5 },
            "",
            2,
            vec![5, 6],
        ),
        (
            "lps",
            DeliverPolicy::LastPerSubject,
            "dp.>",
            3,
            vec![3, 5, 6],
        ),
        ("all_a", DeliverPolicy::All, "dp.a", 3, vec![1, 4, 6]),
        ("last_a", DeliverPolicy::Last, "dp.a", 1, vec![6]),
        ("last_b", DeliverPolicy::Last, "dp.b", 1, vec![5]),
        (
            "seq2_a",
            DeliverPolicy::ByStartSequence { start_sequence: 2 },
            "dp.a",
            2,
            vec![4, 6],
        ),
        ("lps_b", DeliverPolicy::LastPerSubject, "dp.b", 1, vec![5]),
        ("new_b", DeliverPolicy::New, "dp.b", 0, vec![]),
    ];
    let mut consumers = Vec::new();
    for (name, policy, filter, pending, _) in &cases {
        let consumer = durable_pull(&ctx, "DP", name, |cfg| {
            cfg.deliver_policy = *policy;
            cfg.filter_subject = filter.to_string();
            cfg.ack_policy = AckPolicy::None;
        })
        .await;
        let v = cinfo(&c, "DP", name).await;
        assert_eq!(v["num_pending"], *pending, "{name}: num_pending: {v}");
        consumers.push(consumer);
    }
    for ((name, _, _, _, want), consumer) in cases.iter().zip(&consumers) {
        let got = fetch(consumer, 20).await;
        assert_eq!(&seqs(&got), want, "{name}");
    }
    // Now a new message on dp.a: every consumer but the dp.b ones gets it.
    assert_eq!(pub_seq(&c, "dp.a", "a7").await, 7);
    for ((name, _, filter, _, _), consumer) in cases.iter().zip(&consumers) {
        let got = fetch(consumer, 20).await;
        let want: Vec<u64> = if *filter == "dp.b" { vec![] } else { vec![7] };
        assert_eq!(seqs(&got), want, "{name} after publish");
        if let Some(m) = got.first() {
            assert_eq!(m.subject.as_str(), "dp.a");
            assert_eq!(m.payload, Bytes::from("a7"));
        }
    }
    // A start sequence past the end starts right after the last message
    // (nats-server clamps opt_start_seq to last_seq + 1).
    let consumer = durable_pull(&ctx, "DP", "seq9", |cfg| {
        cfg.deliver_policy = DeliverPolicy::ByStartSequence { start_sequence: 9 };
    })
    .await;
    let v = cinfo(&c, "DP", "seq9").await;
    assert_eq!(v["num_pending"], 0, "{v}");
    assert!(fetch(&consumer, 5).await.is_empty());
    pub_seq(&c, "dp.c", "c8").await;
    assert_eq!(seqs(&fetch(&consumer, 5).await), vec![8]);
    // JE22: a start sequence without the policy is refused (10094).
    let v = api(
        &c,
        "$JS.API.CONSUMER.DURABLE.CREATE.DP.bad",
        &json!({"stream_name":"DP","config":{"durable_name":"bad","deliver_policy":"all",
                 "opt_start_seq":3}})
        .to_string(),
    )
    .await;
    assert_eq!(err_code(&v), 10094, "{v}");
    // 2.9.10: last_per_subject needs a filter subject (10094).
    let v = api(
        &c,
        "$JS.API.CONSUMER.DURABLE.CREATE.DP.bad3",
        &json!({"stream_name":"DP","config":{"durable_name":"bad3",
                 "deliver_policy":"last_per_subject"}})
        .to_string(),
    )
    .await;
    assert_eq!(err_code(&v), 10094, "{v}");
    assert_eq!(
        v["error"]["description"],
        "consumer delivery policy is deliver last per subject, but optional filter subject is not set",
        "{v}"
    );
    // CC9: 2.9.10 wants the filter inside the stream's subjects (10093).
    let v = api(
        &c,
        "$JS.API.CONSUMER.DURABLE.CREATE.DP.bad2",
        &json!({"stream_name":"DP","config":{"durable_name":"bad2","filter_subject":"other.x"}})
            .to_string(),
    )
    .await;
    assert_eq!(err_code(&v), 10093, "{v}");
}

/// AK4, AK5, AK7, AK9: NAK redelivers at once; NAK with a delay not before
/// the delay; no ack redelivers after ack_wait; WPI restarts the ack_wait
/// timer; TERM stops redelivery.
async fn js_nak_redelivery(s: &Server) {
    let ack_wait = Duration::from_secs(1);
    let (c, ctx) = js(s).await;
    create(&c, json!({"name":"NAK","subjects":["nak.>"]})).await;
    let consumer = durable_pull(&ctx, "NAK", "nk", |cfg| cfg.ack_wait = ack_wait).await;

    // NAK without delay: redelivered promptly with delivered count 2.
    pub_seq(&c, "nak.a", "one").await;
    let m = fetch(&consumer, 1).await.pop().expect("seq 1");
    let reply = m.reply.clone().unwrap();
    assert_eq!(
        reply.split('.').count(),
        9,
        "v1 ack reply has 9 tokens: {reply}"
    );
    let i = m.info().unwrap();
    assert_eq!(
        (
            i.stream,
            i.consumer,
            i.delivered,
            i.stream_sequence,
            i.consumer_sequence,
            i.pending
        ),
        ("NAK", "nk", 1, 1, 1, 0)
    );
    let t = Instant::now();
    m.ack_with(AckKind::Nak(None)).await.unwrap();
    let m = pull(&consumer, 1, Duration::from_secs(2))
        .await
        .pop()
        .expect("redelivery after NAK");
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "NAK redelivery took {:?}",
        t.elapsed()
    );
    let i = m.info().unwrap();
    assert_eq!(
        (i.delivered, i.stream_sequence, i.consumer_sequence),
        (2, 1, 2),
        "redelivery: delivered count 2, a new consumer sequence"
    );
    assert_eq!(m.payload, Bytes::from("one"));
    m.double_ack().await.unwrap();

    // NAK with a 500 ms delay (`-NAK {"delay":500000000}`).
    pub_seq(&c, "nak.a", "two").await;
    let m = fetch(&consumer, 1).await.pop().expect("seq 2");
    assert_eq!((sseq(&m), delivered(&m)), (2, 1));
    let t = Instant::now();
    m.double_ack_with(AckKind::Nak(Some(Duration::from_millis(500))))
        .await
        .unwrap();
    assert!(
        pull(&consumer, 1, Duration::from_millis(300))
            .await
            .is_empty(),
        "redelivered before the NAK delay"
    );
    let m = pull(&consumer, 1, Duration::from_secs(2))
        .await
        .pop()
        .expect("redelivery after the NAK delay");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_millis(1500),
        "NAK delay 500ms, redelivered after {waited:?}"
    );
    assert_eq!((sseq(&m), delivered(&m)), (2, 2));
    m.double_ack().await.unwrap();

    // No ack: redelivered after ack_wait.
    pub_seq(&c, "nak.a", "three").await;
    let t = Instant::now();
    let m = fetch(&consumer, 1).await.pop().expect("seq 3");
    assert_eq!((sseq(&m), delivered(&m)), (3, 1));
    assert!(
        pull(&consumer, 1, Duration::from_millis(600))
            .await
            .is_empty(),
        "redelivered before ack_wait"
    );
    let m = pull(&consumer, 1, Duration::from_secs(2))
        .await
        .pop()
        .expect("redelivery after ack_wait");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(2500),
        "ack_wait 1s, redelivered after {waited:?}"
    );
    assert_eq!((sseq(&m), delivered(&m)), (3, 2));
    m.double_ack().await.unwrap();

    // WPI restarts the ack_wait timer.
    pub_seq(&c, "nak.a", "four").await;
    let t0 = Instant::now();
    let m = fetch(&consumer, 1).await.pop().expect("seq 4");
    assert_eq!((sseq(&m), delivered(&m)), (4, 1));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let t_wpi = Instant::now();
    m.double_ack_with(AckKind::Progress).await.unwrap();
    // Without the WPI it would come back at t0 + 1s.
    let quiet = (t_wpi + Duration::from_millis(800))
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(50));
    assert!(
        pull(&consumer, 1, quiet).await.is_empty(),
        "redelivered although WPI restarted ack_wait ({:?} after delivery)",
        t0.elapsed()
    );
    let m = pull(&consumer, 1, Duration::from_secs(2))
        .await
        .pop()
        .expect("redelivery after the extended ack_wait");
    let waited = t_wpi.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "redelivered {waited:?} after WPI"
    );
    assert_eq!((sseq(&m), delivered(&m)), (4, 2));
    m.double_ack().await.unwrap();

    // TERM: never redelivered, counts as done.
    pub_seq(&c, "nak.a", "five").await;
    let m = fetch(&consumer, 1).await.pop().expect("seq 5");
    assert_eq!((sseq(&m), delivered(&m)), (5, 1));
    m.double_ack_with(AckKind::Term).await.unwrap();
    assert!(
        pull(&consumer, 1, Duration::from_millis(1500))
            .await
            .is_empty(),
        "redelivered after TERM"
    );
    let v = cinfo(&c, "NAK", "nk").await;
    assert_eq!(
        counters(&v),
        json!({"delivered":[9,5],"ack_floor":[9,5],"num_ack_pending":0,
               "num_redelivered":0,"num_waiting":0,"num_pending":0}),
        "{v}"
    );
}

/// CC7, AK9, AD3: max_deliver 3 and never acked: three deliveries, then
/// none, and a MAX_DELIVERIES advisory.
async fn js_max_deliver(s: &Server) {
    let (c, ctx) = js(s).await;
    create(&c, json!({"name":"MD","subjects":["md.>"]})).await;
    let consumer = durable_pull(&ctx, "MD", "md", |cfg| {
        cfg.max_deliver = 3;
        cfg.ack_wait = Duration::from_millis(300);
    })
    .await;
    let mut adv = c
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.MD.md")
        .await
        .unwrap();
    sync(&c).await;
    pub_seq(&c, "md.a", "poison").await;

    let mut deliveries = Vec::new();
    let started = Instant::now();
    while deliveries.len() < 3 && started.elapsed() < Duration::from_secs(5) {
        for m in pull(&consumer, 5, Duration::from_millis(500)).await {
            deliveries.push((sseq(&m), delivered(&m)));
        }
    }
    assert_eq!(deliveries, vec![(1, 1), (1, 2), (1, 3)]);
    // Never again, well past three more ack_waits.
    let more = pull(&consumer, 5, Duration::from_millis(1200)).await;
    assert!(
        more.is_empty(),
        "delivered after max_deliver: {:?}",
        seqs(&more)
    );

    let m = next_msg(&mut adv).await;
    let a: Value = serde_json::from_slice(&m.payload).unwrap();
    assert_eq!(
        a["type"], "io.nats.jetstream.advisory.v1.max_deliver",
        "{a}"
    );
    assert_eq!(
        (
            &a["stream"],
            &a["consumer"],
            &a["stream_seq"],
            &a["deliveries"]
        ),
        (&json!("MD"), &json!("md"), &json!(1), &json!(3)),
        "{a}"
    );
    assert!(a["id"].as_str().is_some_and(|s| !s.is_empty()), "{a}");
    assert!(a["timestamp"].is_string(), "{a}");
    assert_no_msg(&mut adv, Duration::from_millis(300)).await;

    // A second message is unaffected and acked normally.
    pub_seq(&c, "md.a", "fine").await;
    let m = pull(&consumer, 1, Duration::from_secs(1))
        .await
        .pop()
        .expect("seq 2");
    assert_eq!((sseq(&m), delivered(&m)), (2, 1));
    m.double_ack().await.unwrap();
    let v = cinfo(&c, "MD", "md").await;
    assert_eq!(v["delivered"]["stream_seq"], 2, "{v}");
    assert_eq!(v["num_pending"], 0, "{v}");
    // Past max_deliver the message no longer counts as pending, so the
    // ack floor moves over it. (nats-server 2.9.10 still reports it in
    // num_redelivered: not asserted.)
    assert_eq!(v["num_ack_pending"], 0, "{v}");
    assert_eq!(counters(&v)["ack_floor"], json!([4, 2]), "{v}");
    assert_eq!(v["delivered"]["consumer_seq"], 4, "{v}");
}

/// A raw pull request on `inbox`; the caller reads the replies.
async fn next_req(c: &async_nats::Client, stream: &str, consumer: &str, inbox: &str, body: Value) {
    next_req_raw(c, stream, consumer, inbox, &body.to_string()).await;
}

/// A raw pull request with a body as given.
async fn next_req_raw(
    c: &async_nats::Client,
    stream: &str,
    consumer: &str,
    inbox: &str,
    body: &str,
) {
    c.publish_with_reply(
        format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"),
        inbox.to_string(),
        Bytes::from(body.to_string()),
    )
    .await
    .unwrap();
}

/// (status code, description, Nats-Pending-Messages, Nats-Pending-Bytes)
/// of a status reply; panics on a normal message.
fn status_of(m: &async_nats::Message) -> (u16, String, Option<String>, Option<String>) {
    let code = m
        .status
        .unwrap_or_else(|| panic!("expected a status reply, got a message: {m:?}"));
    assert!(m.payload.is_empty(), "status reply with a body: {m:?}");
    let h = |name: &str| {
        m.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_string())
    };
    (
        code.as_u16(),
        m.description.clone().unwrap_or_default(),
        h("Nats-Pending-Messages"),
        h("Nats-Pending-Bytes"),
    )
}

fn st(
    code: u16,
    desc: &str,
    msgs: Option<&str>,
    bytes: Option<&str>,
) -> (u16, String, Option<String>, Option<String>) {
    (
        code,
        desc.to_string(),
        msgs.map(str::to_string),
        bytes.map(str::to_string),
    )
}

/// S20, PL1-PL4, PL7, PL10: the status replies to raw pull requests, as
/// nats-server 2.9.10 words them.
async fn js_pull_status_replies(s: &Server) {
    let c = s.connect().await;
    create(&c, json!({"name":"PS","subjects":["ps.>"]})).await;
    let v = ok(api(
        &c,
        "$JS.API.CONSUMER.CREATE.PS.ps",
        &json!({"stream_name":"PS","config":{"durable_name":"ps","ack_policy":"explicit",
                 "max_waiting":2,"max_batch":5,"max_expires":3_000_000_000u64}})
        .to_string(),
    )
    .await);
    assert_schema("consumer_create_response", &v);
    let inbox = c.new_inbox();
    let mut sub = c.subscribe(inbox.clone()).await.unwrap();
    sync(&c).await;

    // PL3: no_wait on an empty stream.
    next_req(&c, "PS", "ps", &inbox, json!({"batch":1,"no_wait":true})).await;
    let m = next_msg(&mut sub).await;
    assert_eq!(status_of(&m), st(404, "No Messages", None, None), "{m:?}");

    // PL4: expires with nothing: 408 with the unfilled batch.
    let t = Instant::now();
    next_req(
        &c,
        "PS",
        "ps",
        &inbox,
        json!({"batch":3,"expires":300_000_000}),
    )
    .await;
    let m = next_msg(&mut sub).await;
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "408 after {:?}",
        t.elapsed()
    );
    assert_eq!(
        status_of(&m),
        st(408, "Request Timeout", Some("3"), Some("0")),
        "{m:?}"
    );

    // A partly filled batch: the message, then 408 with what is left.
    pub_seq(&c, "ps.a", "hello").await;
    next_req(
        &c,
        "PS",
        "ps",
        &inbox,
        json!({"batch":3,"expires":300_000_000}),
    )
    .await;
    let m = next_msg(&mut sub).await;
    assert_eq!(m.status, None, "{m:?}");
    assert_eq!(m.payload, Bytes::from("hello"));
    assert_eq!(m.subject.as_str(), "ps.a");
    assert!(
        m.reply
            .as_ref()
            .is_some_and(|r| r.starts_with("$JS.ACK.PS.ps.1.1.1.")),
        "{m:?}"
    );
    let m = next_msg(&mut sub).await;
    assert_eq!(
        status_of(&m),
        st(408, "Request Timeout", Some("2"), Some("0")),
        "{m:?}"
    );
    // PL1: a bare integer body is a batch size, an empty body a batch of 1;
    // a filled batch ends without a status.
    pub_seq(&c, "ps.a", "two").await;
    pub_seq(&c, "ps.a", "three").await;
    next_req_raw(&c, "PS", "ps", &inbox, "1").await;
    let m = next_msg(&mut sub).await;
    assert_eq!((m.status, m.payload.clone()), (None, Bytes::from("two")));
    next_req_raw(&c, "PS", "ps", &inbox, "").await;
    let m = next_msg(&mut sub).await;
    assert_eq!((m.status, m.payload.clone()), (None, Bytes::from("three")));
    assert_no_msg(&mut sub, Duration::from_millis(200)).await;
    next_req(&c, "PS", "ps", &inbox, json!({"batch":2,"no_wait":true})).await;
    let m = next_msg(&mut sub).await;
    assert_eq!(status_of(&m), st(404, "No Messages", None, None), "{m:?}");

    // PL7: batch above max_batch.
    next_req(
        &c,
        "PS",
        "ps",
        &inbox,
        json!({"batch":10,"expires":1_000_000_000}),
    )
    .await;
    let m = next_msg(&mut sub).await;
    assert_eq!(
        status_of(&m),
        st(409, "Exceeded MaxRequestBatch of 5", None, None),
        "{m:?}"
    );
    // PL7: expires above max_expires.
    next_req(
        &c,
        "PS",
        "ps",
        &inbox,
        json!({"batch":1,"expires":5_000_000_000u64}),
    )
    .await;
    let m = next_msg(&mut sub).await;
    assert_eq!(
        status_of(&m),
        st(409, "Exceeded MaxRequestExpires of 3s", None, None),
        "{m:?}"
    );

    // PL2: max_waiting 2: a third waiting request is refused.
    let inbox2 = c.new_inbox();
    let mut sub2 = c.subscribe(inbox2.clone()).await.unwrap();
    sync(&c).await;
    for _ in 0..2 {
        next_req(
            &c,
            "PS",
            "ps",
            &inbox2,
            json!({"batch":1,"expires":1_000_000_000}),
        )
        .await;
    }
    sync(&c).await;
    let v = cinfo(&c, "PS", "ps").await;
    assert_eq!(v["num_waiting"], 2, "{v}");
    next_req(
        &c,
        "PS",
        "ps",
        &inbox,
        json!({"batch":1,"expires":1_000_000_000}),
    )
    .await;
    let m = next_msg(&mut sub).await;
    assert_eq!(
        status_of(&m),
        st(409, "Exceeded MaxWaiting", None, None),
        "{m:?}"
    );
    // The two waiting ones expire normally.
    for _ in 0..2 {
        let m = next_msg(&mut sub2).await;
        assert_eq!(
            status_of(&m),
            st(408, "Request Timeout", Some("1"), Some("0")),
            "{m:?}"
        );
    }
    assert_no_msg(&mut sub, Duration::from_millis(200)).await;
    assert_no_msg(&mut sub2, Duration::from_millis(1)).await;
    eventually("num_waiting back to 0", Duration::from_secs(2), || async {
        cinfo(&c, "PS", "ps").await["num_waiting"] == 0
    })
    .await;

    // PL7: a pull request to a push consumer.
    ok(api(
        &c,
        "$JS.API.CONSUMER.CREATE.PS.pushc",
        &json!({"stream_name":"PS","config":{"durable_name":"pushc","deliver_subject":"psout.x"}})
            .to_string(),
    )
    .await);
    next_req(&c, "PS", "pushc", &inbox, json!({"batch":1})).await;
    let m = next_msg(&mut sub).await;
    assert_eq!(
        status_of(&m),
        st(409, "Consumer is push based", None, None),
        "{m:?}"
    );
}

/// S13, S16-S19, AK9: consumer info counters after a known series of
/// deliveries and acks; the raw API responses against the schemas.
async fn js_consumer_info_counts(s: &Server) {
    let (c, ctx) = js(s).await;
    create(&c, json!({"name":"CI","subjects":["ci.>"]})).await;
    publish_n(&c, "ci.a", "m", 10).await;
    let v = ok(api(
        &c,
        "$JS.API.CONSUMER.CREATE.CI.ci",
        &json!({"stream_name":"CI","config":{"durable_name":"ci","ack_policy":"explicit",
                 "ack_wait":30_000_000_000u64}})
        .to_string(),
    )
    .await);
    assert_schema("consumer_create_response", &v);
    assert_eq!(
        v["type"],
        "io.nats.jetstream.api.v1.consumer_create_response"
    );
    assert_eq!(
        (&v["stream_name"], &v["name"]),
        (&json!("CI"), &json!("ci"))
    );
    assert_eq!(v["config"]["deliver_policy"], "all", "{v}");
    assert_eq!(v["config"]["ack_wait"], 30_000_000_000u64, "{v}");
    assert_eq!(v["config"]["max_deliver"], -1, "{v}");
    assert_eq!(v["config"]["max_waiting"], 512, "{v}");
    assert_eq!(v["config"]["max_ack_pending"], 1000, "{v}");
    assert_eq!(v["config"]["replay_policy"], "instant", "{v}");
    assert_eq!(
        counters(&v),
        json!({"delivered":[0,0],"ack_floor":[0,0],"num_ack_pending":0,
               "num_redelivered":0,"num_waiting":0,"num_pending":10})
    );
    let consumer: PullConsumer = ctx
        .get_stream("CI")
        .await
        .unwrap()
        .get_consumer("ci")
        .await
        .unwrap();

    // Deliver 1..4.
    let msgs = fetch(&consumer, 4).await;
    assert_eq!(seqs(&msgs), vec![1, 2, 3, 4]);
    assert_eq!(
        msgs.iter()
            .map(|m| m.info().unwrap().pending)
            .collect::<Vec<_>>(),
        vec![9, 8, 7, 6],
        "num_pending in the ack reply counts what is left after each (AK10)"
    );
    let v = cinfo(&c, "CI", "ci").await;
    assert_eq!(
        counters(&v),
        json!({"delivered":[4,4],"ack_floor":[0,0],"num_ack_pending":4,
               "num_redelivered":0,"num_waiting":0,"num_pending":6})
    );
    // Ack 1, 2 and 4: the floor moves to 2.
    for i in [0, 1, 3] {
        msgs[i].double_ack().await.unwrap();
    }
    let v = cinfo(&c, "CI", "ci").await;
    assert_eq!(
        counters(&v),
        json!({"delivered":[4,4],"ack_floor":[2,2],"num_ack_pending":1,
               "num_redelivered":0,"num_waiting":0,"num_pending":6})
    );
    // NAK 3: redelivered first (consumer seq 5), then 5 (consumer seq 6).
    msgs[2].double_ack_with(AckKind::Nak(None)).await.unwrap();
    let msgs = fetch(&consumer, 2).await;
    assert_eq!(seqs(&msgs), vec![3, 5]);
    assert_eq!(delivered(&msgs[0]), 2);
    assert_eq!(msgs[0].info().unwrap().consumer_sequence, 5);
    assert_eq!(msgs[1].info().unwrap().consumer_sequence, 6);
    let v = cinfo(&c, "CI", "ci").await;
    assert_eq!(
        counters(&v),
        json!({"delivered":[6,5],"ack_floor":[2,2],"num_ack_pending":2,
               "num_redelivered":1,"num_waiting":0,"num_pending":5})
    );
    for m in &msgs {
        m.double_ack().await.unwrap();
    }
    let v = cinfo(&c, "CI", "ci").await;
    assert_eq!(
        counters(&v),
        json!({"delivered":[6,5],"ack_floor":[6,5],"num_ack_pending":0,
               "num_redelivered":0,"num_waiting":0,"num_pending":5})
    );
    // The rest, then a waiting request.
    let msgs = fetch(&consumer, 10).await;
    assert_eq!(seqs(&msgs), vec![6, 7, 8, 9, 10]);
    for m in &msgs {
        m.double_ack().await.unwrap();
    }
    let inbox = c.new_inbox();
    let mut sub = c.subscribe(inbox.clone()).await.unwrap();
    next_req(
        &c,
        "CI",
        "ci",
        &inbox,
        json!({"batch":1,"expires":500_000_000}),
    )
    .await;
    sync(&c).await;
    let v = cinfo(&c, "CI", "ci").await;
    assert_eq!(
        counters(&v),
        json!({"delivered":[11,10],"ack_floor":[11,10],"num_ack_pending":0,
               "num_redelivered":0,"num_waiting":1,"num_pending":0})
    );
    assert_eq!(status_of(&next_msg(&mut sub).await).0, 408);

    // Names, list, delete, and the errors, against their schemas.
    let v = ok(api(&c, "$JS.API.CONSUMER.NAMES.CI", "").await);
    assert_schema("consumer_names_response", &v);
    assert_eq!(
        (&v["consumers"], &v["total"]),
        (&json!(["ci"]), &json!(1)),
        "{v}"
    );
    let v = ok(api(&c, "$JS.API.CONSUMER.LIST.CI", "").await);
    assert_schema("consumer_list_response", &v);
    assert_eq!(v["consumers"][0]["name"], "ci", "{v}");
    assert_eq!(v["consumers"][0]["delivered"]["stream_seq"], 10, "{v}");
    let v = ok(api(&c, "$JS.API.CONSUMER.DELETE.CI.ci", "").await);
    assert_schema("consumer_delete_response", &v);
    assert_eq!(v["success"], true, "{v}");
    let v = api(&c, "$JS.API.CONSUMER.INFO.CI.ci", "").await;
    assert_schema("consumer_info_response", &v);
    assert_eq!(err_code(&v), 10014, "{v}");
    assert_eq!(
        (&v["error"]["code"], &v["error"]["description"]),
        (&json!(404), &json!("consumer not found")),
        "{v}"
    );
    let v = api(&c, "$JS.API.CONSUMER.DELETE.CI.ci", "").await;
    assert_schema("consumer_delete_response", &v);
    assert_eq!(err_code(&v), 10014, "{v}");
    let v = api(
        &c,
        "$JS.API.CONSUMER.CREATE.NOPE.x",
        &json!({"stream_name":"NOPE","config":{"durable_name":"x"}}).to_string(),
    )
    .await;
    assert_schema("consumer_create_response", &v);
    assert_eq!(err_code(&v), 10059, "{v}");
}

/// AK8: an ack sent as a request is answered (with an empty message) once
/// it has been processed; so are NAK, WPI and TERM, and a repeated ack.
async fn js_ack_sync(s: &Server) {
    let (c, ctx) = js(s).await;
    create(&c, json!({"name":"AS","subjects":["as.>"]})).await;
    publish_n(&c, "as.a", "m", 4).await;
    let consumer = durable_pull(&ctx, "AS", "as", |_| {}).await;
    let msgs = fetch(&consumer, 4).await;
    assert_eq!(seqs(&msgs), vec![1, 2, 3, 4]);

    // The async-nats API.
    within("double_ack", msgs[0].double_ack())
        .await
        .expect("ack of ack");
    // The ack is processed by the time the reply arrives.
    let v = cinfo(&c, "AS", "as").await;
    assert_eq!(v["ack_floor"]["stream_seq"], 1, "{v}");
    assert_eq!(v["num_ack_pending"], 3, "{v}");

    // Raw: each ack kind with a reply subject gets an empty reply.
    let inbox = c.new_inbox();
    let mut sub = c.subscribe(inbox.clone()).await.unwrap();
    for (m, body) in [
        (&msgs[1], "+WPI"),
        (&msgs[1], "+ACK"),
        (&msgs[1], "+ACK"), // already acked: answered all the same
        (&msgs[2], "-NAK"),
        (&msgs[3], "+TERM"),
    ] {
        c.publish_with_reply(m.reply.clone().unwrap(), inbox.clone(), body.into())
            .await
            .unwrap();
        let r = next_msg(&mut sub).await;
        assert!(r.payload.is_empty(), "{body}: {r:?}");
        assert_eq!(r.status, None, "{body}: {r:?}");
    }
    let v = cinfo(&c, "AS", "as").await;
    assert_eq!(v["ack_floor"]["stream_seq"], 2, "{v}");
    assert_eq!(v["num_ack_pending"], 1, "seq 3 was NAKed: {v}");
    // The NAKed message comes back and is acked synchronously.
    let m = fetch(&consumer, 4).await;
    assert_eq!(seqs(&m), vec![3]);
    m[0].double_ack().await.expect("ack of ack");
    let v = cinfo(&c, "AS", "as").await;
    assert_eq!(
        counters(&v),
        json!({"delivered":[5,4],"ack_floor":[5,4],"num_ack_pending":0,
               "num_redelivered":0,"num_waiting":0,"num_pending":0}),
        "{v}"
    );
}

/// PE1, SC4 (interest retention): a message stays until every consumer
/// has acked it; with no (matching) consumer a publish is acked but not
/// kept.
async fn js_interest_retention(s: &Server) {
    let (c, ctx) = js(s).await;
    create(
        &c,
        json!({"name":"IR","subjects":["ir.>"],"retention":"interest"}),
    )
    .await;
    // No consumer: acked, not stored.
    assert_eq!(pub_seq(&c, "ir.a", "lost").await, 1);
    assert_eq!(counts(&c, "IR").await, (0, 0, 2, 1));

    let c1 = durable_pull(&ctx, "IR", "c1", |_| {}).await;
    let c2 = durable_pull(&ctx, "IR", "c2", |_| {}).await;
    assert_eq!(publish_n(&c, "ir.a", "m", 3).await, vec![2, 3, 4]);
    assert_eq!(counts(&c, "IR").await.0, 3);

    // c1 acks everything: all three stay for c2.
    let m1 = fetch(&c1, 10).await;
    assert_eq!(seqs(&m1), vec![2, 3, 4]);
    for m in &m1 {
        m.double_ack().await.unwrap();
    }
    assert_eq!(counts(&c, "IR").await.0, 3);
    // c2 acks seq 3 only: it goes, the others stay.
    let m2 = fetch(&c2, 10).await;
    assert_eq!(seqs(&m2), vec![2, 3, 4]);
    m2[1].double_ack().await.unwrap();
    eventually("seq 3 removed", Duration::from_secs(2), || async {
        counts(&c, "IR").await.0 == 2
    })
    .await;
    let (msgs, _, first, last) = counts(&c, "IR").await;
    assert_eq!((msgs, first, last), (2, 2, 4));
    let v = api(
        &c,
        "$JS.API.STREAM.MSG.GET.IR",
        &json!({"seq":3}).to_string(),
    )
    .await;
    assert_eq!(err_code(&v), 10037, "{v}");
    m2[0].double_ack().await.unwrap();
    m2[2].double_ack().await.unwrap();
    eventually("stream empty", Duration::from_secs(2), || async {
        counts(&c, "IR").await.0 == 0
    })
    .await;
    assert_eq!(counts(&c, "IR").await, (0, 0, 5, 4));

    // A filtered consumer only holds its own subjects.
    ok(api(&c, "$JS.API.CONSUMER.DELETE.IR.c2", "").await);
    let v = ok(api(
        &c,
        "$JS.API.CONSUMER.CREATE.IR.onlyb",
        &json!({"stream_name":"IR","config":{"durable_name":"onlyb","ack_policy":"explicit",
                 "filter_subject":"ir.b"}})
        .to_string(),
    )
    .await);
    assert_schema("consumer_create_response", &v);
    ok(api(&c, "$JS.API.CONSUMER.DELETE.IR.c1", "").await);
    assert_eq!(pub_seq(&c, "ir.a", "nobody").await, 5);
    assert_eq!(pub_seq(&c, "ir.b", "kept").await, 6);
    let (msgs, _, first, last) = counts(&c, "IR").await;
    assert_eq!((msgs, first, last), (1, 6, 6));
}

/// Kill -9 with acks in flight, five rounds: a message whose ack was
/// confirmed (ack of ack) is never delivered again, and every message
/// never acked is still delivered in the end.
///
/// natrium answers an ack request only after the consumer state holding
/// it is durable, so this is asserted for natrium.
async fn js_consumer_crash_kill9(s: &Server) {
    const N: u64 = 3000;
    const ROUNDS: usize = 5;
    let strict = s.is_natrium();
    let started = Instant::now();
    let mut rng = Rng::seeded();
    {
        let c = s.connect().await;
        create(&c, json!({"name":"CK","subjects":["ck.>"]})).await;
        let ctx = jetstream::new(c.clone());
        let mut acks: Vec<_> = futures::stream::iter(1..=N)
            .map(|i| {
                let ctx = ctx.clone();
                async move {
                    ctx.publish("ck.a", format!("ck-{i}").into())
                        .await
                        .expect("publish")
                        .await
                        .expect("PubAck")
                        .sequence
                }
            })
            .buffered(64)
            .collect()
            .await;
        acks.sort_unstable();
        assert_eq!(acks, (1..=N).collect::<Vec<_>>());
        durable_pull(&ctx, "CK", "ck", |cfg| {
            cfg.ack_wait = Duration::from_millis(500);
            cfg.max_ack_pending = -1;
        })
        .await;
    }
    #[derive(Default)]
    struct Book {
        /// Acks the server confirmed.
        confirmed: BTreeSet<u64>,
        /// Acks sent, not (yet) confirmed: they may or may not hold.
        sent: BTreeSet<u64>,
        /// Deliveries of confirmed messages (a broken promise).
        again: Vec<u64>,
        delivered: u64,
    }
    let book: Arc<Mutex<Book>> = Arc::default();
    for round in 0..ROUNDS {
        let c = connect_fast(s).await;
        wait_js_ready(&c).await;
        let ctx = jetstream::new(c.clone());
        let consumer: PullConsumer = within("get consumer", async {
            ctx.get_stream("CK")
                .await
                .expect("stream after restart")
                .get_consumer("ck")
                .await
                .expect("consumer after restart")
        })
        .await;
        // The ack tasks of this round, stopped at the kill.
        let acking: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let worker = {
            let book = book.clone();
            let acking = acking.clone();
            let mut rng = Rng(rng.next() | 1);
            tokio::spawn(async move {
                loop {
                    let Ok(mut batch) = consumer.fetch().max_messages(8).messages().await else {
                        return;
                    };
                    let mut got = 0;
                    while let Some(Ok(m)) = batch.next().await {
                        got += 1;
                        let seq = sseq(&m);
                        {
                            let mut b = book.lock().unwrap();
                            b.delivered += 1;
                            if b.confirmed.contains(&seq) {
                                b.again.push(seq);
                            }
                        }
                        // Ack about three in four after 0-20 ms of "work"
                        // (so acks overlap), leave the rest to ack_wait.
                        if !rng.next().is_multiple_of(4) {
                            let book = book.clone();
                            let work = Duration::from_millis(rng.next() % 20);
                            let acking = acking.clone();
                            let h = tokio::spawn(async move {
                                tokio::time::sleep(work).await;
                                book.lock().unwrap().sent.insert(seq);
                                if m.double_ack().await.is_ok() {
                                    book.lock().unwrap().confirmed.insert(seq);
                                }
                            });
                            acking.lock().unwrap().push(h.abort_handle());
                        }
                    }
                    // Paced (under 1000 messages a second), so that the
                    // five rounds share the messages and every kill lands
                    // while messages are being delivered and acked.
                    tokio::time::sleep(Duration::from_millis(if got == 0 { 20 } else { 8 })).await;
                }
            })
        };
        let wait = 150 + rng.next() % 650;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        s.kill9();
        worker.abort();
        let _ = worker.await;
        for h in acking.lock().unwrap().drain(..) {
            h.abort();
        }
        drop(ctx);
        drop(c);
        {
            let b = book.lock().unwrap();
            eprintln!(
                "{} round {round}: killed after {wait} ms; {} deliveries, {} acks confirmed, {} sent",
                s.target.name(),
                b.delivered,
                b.confirmed.len(),
                b.sent.len()
            );
        }
        s.restart().await;
    }

    // Drain: everything not acked must still come; nothing confirmed may.
    let c = connect_fast(s).await;
    wait_js_ready(&c).await;
    let ctx = jetstream::new(c.clone());
    let consumer: PullConsumer = ctx
        .get_stream("CK")
        .await
        .unwrap()
        .get_consumer("ck")
        .await
        .unwrap();
    let (confirmed, sent) = {
        let b = book.lock().unwrap();
        (b.confirmed.clone(), b.sent.clone())
    };
    let (_, _, first, last) = counts(&c, "CK").await;
    let must: BTreeSet<u64> = (1..=N).filter(|s| !sent.contains(s)).collect();
    let mut drained: BTreeSet<u64> = BTreeSet::new();
    let mut again_drain = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut quiet = 0;
    while Instant::now() < deadline && quiet < 1 {
        let msgs = pull(&consumer, 100, Duration::from_millis(1200)).await;
        if msgs.is_empty() {
            if must.is_subset(&drained) {
                quiet += 1;
            }
            continue;
        }
        quiet = 0;
        for m in msgs {
            let seq = sseq(&m);
            if confirmed.contains(&seq) {
                again_drain.push(seq);
            }
            drained.insert(seq);
            m.double_ack().await.expect("ack in drain");
        }
    }
    let mut again = std::mem::take(&mut book.lock().unwrap().again);
    again.extend(again_drain);
    let missing: Vec<u64> = must.difference(&drained).copied().collect();
    eprintln!(
        "{}: {} confirmed acks, {} sent unconfirmed, {} drained, {} confirmed delivered again, {} never-acked missing, stream {first}..={last}, {:?}",
        s.target.name(),
        confirmed.len(),
        sent.len() - confirmed.len(),
        drained.len(),
        again.len(),
        missing.len(),
        started.elapsed()
    );
    if strict {
        assert!(
            again.is_empty(),
            "confirmed acks delivered again after kill -9: {again:?}"
        );
    } else if !again.is_empty() {
        // KNOWN DIFFERENCE: nats-server 2.9.10 answers an ack request as
        // soon as it has updated the consumer's state in memory; its file
        // store writes that state to disk later (and never fsyncs it on
        // the ack path), so after kill -9 it may deliver acked messages
        // again. Reported, not asserted.
        eprintln!("nats-server: acked messages delivered again (allowed): {again:?}");
    }
    assert!(
        missing.is_empty(),
        "never-acked messages not delivered after the restarts: {missing:?}"
    );
    let v = cinfo(&c, "CK", "ck").await;
    assert_eq!(v["num_pending"], 0, "{v}");
    assert_eq!(v["num_ack_pending"], 0, "{v}");
    assert_eq!(v["delivered"]["stream_seq"], N, "{v}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "crash test took {:?}",
        started.elapsed()
    );
}

/// xorshift seeded from the clock (the kill points vary between runs).
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        eprintln!("consumer crash test seed {nanos}");
        Rng(nanos | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
