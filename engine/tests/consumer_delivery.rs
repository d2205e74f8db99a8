//! Consumer delivery through the real engine on a simulated disk (matrix
//! sections 4.8–4.10): pull requests and every status reply of rows PL2–PL8
//! (snapshotted), the 9-token ack subject with its exact pending count (AK1),
//! acks, naks, progress, term and redelivery by ack_wait (AK2–AK8),
//! max_deliver and its advisory, push delivery with interest, idle
//! heartbeats and flow control (PU1–PU3), AckSync answered only once the
//! consumer's state is on disk, work-queue and interest retention, and a
//! kill -9 test: no ack that was answered is lost, no unacked message is lost.

mod support;

#[path = "support/schema.rs"]
mod schema;

use std::collections::BTreeSet;

use insta::assert_snapshot;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use support::js::JsHarness;
use support::ParsedMsg;

const SEC: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

fn harness(storage: &str, retention: &str) -> JsHarness {
    let mut h = JsHarness::new(11);
    h.create_stream(
        "S",
        &json!({"name": "S", "subjects": ["s.>"], "storage": storage, "retention": retention})
            .to_string(),
    );
    h
}

fn create(h: &mut JsHarness, name: &str, cfg: Value) -> Value {
    let mut cfg = cfg;
    cfg["durable_name"] = json!(name);
    let r = h.request(
        &format!("$JS.API.CONSUMER.DURABLE.CREATE.S.{name}"),
        &json!({"stream_name": "S", "config": cfg}).to_string(),
    );
    assert!(r.get("error").is_none(), "create {name}: {r}");
    r
}

fn info(h: &mut JsHarness, name: &str) -> Value {
    let r = h.request(&format!("$JS.API.CONSUMER.INFO.S.{name}"), "");
    assert!(r.get("error").is_none(), "info {name}: {r}");
    r
}

/// A pull request from reply subject `_R.<n>` (a fresh number); returns what
/// arrived for it at once.
fn pull(h: &mut JsHarness, consumer: &str, body: &str) -> (String, Vec<ParsedMsg>) {
    let n = h.reply_no();
    let reply = format!("_R.{n}");
    let mark = h.send_request(
        &format!("$JS.API.CONSUMER.MSG.NEXT.S.{consumer}"),
        &reply,
        body,
    );
    let msgs = replies(h, mark);
    (reply, msgs)
}

/// Messages (deliveries and statuses) that arrived since `mark`.
fn replies(h: &JsHarness, mark: usize) -> Vec<ParsedMsg> {
    h.msgs_since(mark)
}

fn status(m: &ParsedMsg) -> Option<String> {
    let hd = m.headers.as_ref()?;
    let text = String::from_utf8_lossy(hd).into_owned();
    (m.payload.is_empty() && text.len() > 12 && text.as_bytes()[9].is_ascii_digit())
        .then(|| text.trim_end().replace("\r\n", " | "))
}

/// The consumer deliveries among `msgs` (they carry an ack subject).
fn deliveries(msgs: &[ParsedMsg]) -> Vec<&ParsedMsg> {
    msgs.iter()
        .filter(|m| {
            m.reply
                .as_deref()
                .is_some_and(|r| r.starts_with("$JS.ACK."))
        })
        .collect()
}

/// The tokens of a delivery's ack subject.
fn ack_tokens(m: &ParsedMsg) -> Vec<String> {
    m.reply
        .as_deref()
        .expect("delivery without ack subject")
        .split('.')
        .map(str::to_string)
        .collect()
}

/// (stream seq, delivery count) of a delivery.
fn seq_dc(m: &ParsedMsg) -> (u64, u64) {
    let t = ack_tokens(m);
    (t[5].parse().unwrap(), t[4].parse().unwrap())
}

/// Send an ack body to a delivery's ack subject (no reply).
fn ack(h: &mut JsHarness, m: &ParsedMsg, body: &str) {
    let subject = m.reply.as_deref().unwrap();
    h.send_raw(format!("PUB {subject} {}\r\n{body}\r\n", body.len()).as_bytes());
}

/// An AckSync: the ack with a reply; returns its reply number.
fn ack_sync(h: &mut JsHarness, m: &ParsedMsg) -> u64 {
    let n = h.reply_no();
    let subject = m.reply.as_deref().unwrap();
    h.send_raw(format!("PUB {subject} _R.{n} 4\r\n+ACK\r\n").as_bytes());
    n
}

fn publish_n(h: &mut JsHarness, subject: &str, n: usize) {
    let msgs: Vec<_> = (0..n)
        .map(|i| (subject.to_string(), None, format!("m{i}").into_bytes()))
        .collect();
    h.publish_batch(&msgs);
}

/// PL2–PL8, PL10: every status a pull requester can get, in 2.9.10's words.
#[test]
fn pl_status_replies() {
    let mut h = harness("file", "limits");
    create(
        &mut h,
        "P",
        json!({"ack_policy": "explicit", "max_waiting": 2, "max_batch": 5}),
    );
    let mut log = Vec::new();
    let mut note = |what: &str, msgs: &[ParsedMsg]| {
        for m in msgs {
            let s = match (status(m), &m.reply) {
                (Some(s), _) => s,
                (None, Some(_)) => format!("MSG {}", m.subject),
                // An API response.
                (None, None) => continue,
            };
            log.push(format!("{what}: {s}"));
        }
        if msgs.is_empty() {
            log.push(format!("{what}: (nothing)"));
        }
    };
    let (_, r) = pull(&mut h, "P", r#"{"batch":1,"no_wait":true}"#);
    note("no_wait on empty", &r);
    let (_, r) = pull(&mut h, "P", r#"{"batch":6}"#);
    note("batch over max_batch", &r);
    let (_, r) = pull(&mut h, "P", r#"{"batch":"#);
    note("bad json", &r);
    let (_, r) = pull(
        &mut h,
        "P",
        r#"{"expires":1000000000,"idle_heartbeat":600000000}"#,
    );
    note("heartbeat over half of expires", &r);
    let mark = h.wire.len();
    let (_, r) = pull(
        &mut h,
        "P",
        r#"{"batch":2,"expires":2000000000,"idle_heartbeat":500000000}"#,
    );
    note("waiting with heartbeats", &r);
    let (_, r) = pull(&mut h, "P", r#"{"batch":1,"expires":3000000000}"#);
    note("second waiting", &r);
    let (_, r) = pull(&mut h, "P", r#"{"batch":1,"expires":3000000000}"#);
    note("third waiting", &r);
    h.advance(2 * SEC);
    let r = replies(&h, mark);
    note("after 2s", &r);
    let mark = h.wire.len();
    h.advance(SEC);
    note("after 3s", &replies(&h, mark));
    publish_n(&mut h, "s.a", 3);
    let (_, r) = pull(&mut h, "P", r#"{"batch":5,"no_wait":true}"#);
    note("no_wait with 3 of 5", &r);
    publish_n(&mut h, "s.b", 1);
    let (_, r) = pull(
        &mut h,
        "P",
        r#"{"batch":2,"max_bytes":10,"expires":1000000000}"#,
    );
    note("max_bytes below the message", &r);
    let (_, r) = pull(&mut h, "P", r#"{"batch":5,"no_wait":true}"#);
    note("no_wait with more wanted than pending", &r);
    let mark = h.wire.len();
    let (_, r) = pull(&mut h, "P", r#"{"batch":1,"expires":5000000000}"#);
    note("waiting before delete", &r);
    h.request("$JS.API.CONSUMER.DELETE.S.P", "");
    note("after delete", &replies(&h, mark));
    assert_snapshot!(log.join("\n"));
}

/// AK1: the 9-token ack subject carries the delivery count, the stream and
/// delivery sequences, the timestamp and the exact number still pending;
/// messages keep their subject, headers and payload.
#[test]
fn ak1_ack_subject_and_exact_pending() {
    let mut h = harness("memory", "limits");
    create(&mut h, "P", json!({"ack_policy": "explicit"}));
    h.send_raw(b"HPUB s.x _R.900 19 21\r\nNATS/1.0\r\nK: v1\r\n\r\nhi\r\n");
    publish_n(&mut h, "s.y", 4);
    let (_, r) = pull(&mut h, "P", "5");
    let d = deliveries(&r);
    assert_eq!(d.len(), 5);
    assert_eq!(d[0].subject, "s.x");
    assert_eq!(d[0].payload, b"hi");
    assert_eq!(
        d[0].headers.as_deref(),
        Some(&b"NATS/1.0\r\nK: v1\r\n\r\n"[..])
    );
    for (i, m) in d.iter().enumerate() {
        let t = ack_tokens(m);
        assert_eq!(t.len(), 9, "{t:?}");
        assert_eq!(&t[..4], ["$JS", "ACK", "S", "P"]);
        assert_eq!(t[4], "1");
        assert_eq!(t[5], (i + 1).to_string());
        assert_eq!(t[6], (i + 1).to_string());
        assert!(t[7].parse::<i64>().unwrap() > 0);
        assert_eq!(t[8], (4 - i).to_string(), "pending after delivery {i}");
    }
    let i = info(&mut h, "P");
    assert_eq!(i["num_pending"], 0);
    assert_eq!(i["num_ack_pending"], 5);
    assert_eq!(i["delivered"]["stream_seq"], 5);
    assert_eq!(i["ack_floor"]["stream_seq"], 0);
    // Acks out of order: the floor waits for the first.
    ack(&mut h, d[1], "+ACK");
    ack(&mut h, d[2], "");
    let i = info(&mut h, "P");
    assert_eq!(i["num_ack_pending"], 3);
    assert_eq!(i["ack_floor"]["stream_seq"], 0);
    ack(&mut h, d[0], "+ACK");
    let i = info(&mut h, "P");
    assert_eq!(i["ack_floor"]["stream_seq"], 3);
    assert_eq!(i["ack_floor"]["consumer_seq"], 3);
    // A new message counts as pending; one delivered later says 0 after it.
    publish_n(&mut h, "s.z", 1);
    assert_eq!(info(&mut h, "P")["num_pending"], 1);
}

/// AK3–AK6: no ack redelivers after ack_wait with the count raised; a NAK
/// with a delay waits for it; +WPI restarts the wait; +TERM stops
/// redelivery; max_deliver stops after that many with one advisory.
#[test]
fn redelivery_nak_progress_term_max_deliver() {
    let mut h = harness("file", "limits");
    h.send_raw(b"SUB $JS.EVENT.ADVISORY.CONSUMER.> 7\r\n");
    create(
        &mut h,
        "P",
        json!({"ack_policy": "explicit", "ack_wait": SEC, "max_deliver": 2}),
    );
    publish_n(&mut h, "s.a", 3);
    // A long-lived request collects every (re)delivery.
    let (_, r) = pull(&mut h, "P", r#"{"batch":100,"expires":60000000000}"#);
    let mut mark = h.wire.len();
    let first: Vec<(u64, u64)> = deliveries(&r).iter().map(|m| seq_dc(m)).collect();
    assert_eq!(first, [(1, 1), (2, 1), (3, 1)]);
    let d: Vec<ParsedMsg> = deliveries(&r).into_iter().cloned().collect();
    ack(&mut h, &d[1], "-NAK {\"delay\": 500000000}");
    ack(&mut h, &d[2], "+TERM");
    h.advance(400 * MS);
    ack(&mut h, &d[0], "+WPI");
    let early = replies(&h, mark);
    assert!(deliveries(&early).is_empty(), "{early:?}");
    h.advance(200 * MS);
    // The NAK's delay passed: message 2 again, the second (last) time.
    let again: Vec<(u64, u64)> = deliveries(&replies(&h, mark))
        .iter()
        .map(|m| seq_dc(m))
        .collect();
    assert_eq!(again, [(2, 2)]);
    mark = h.wire.len();
    h.advance(500 * MS);
    // +WPI at 400 ms moved message 1's deadline to 1.4 s.
    assert!(deliveries(&replies(&h, mark)).is_empty());
    h.advance(400 * MS);
    let again: Vec<(u64, u64)> = deliveries(&replies(&h, mark))
        .iter()
        .map(|m| seq_dc(m))
        .collect();
    assert_eq!(again, [(1, 2)]);
    mark = h.wire.len();
    h.advance(3 * SEC);
    let r = replies(&h, mark);
    assert!(deliveries(&r)
        .iter()
        .all(|m| m.subject.starts_with("$JS.EVENT")));
    let adv: Vec<Value> = h
        .msgs_since(0)
        .iter()
        .filter(|m| {
            m.subject
                .starts_with("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.S.P")
        })
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect();
    let mut seqs: Vec<u64> = adv
        .iter()
        .map(|a| a["stream_seq"].as_u64().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, [1, 2], "{adv:?}");
    for a in &adv {
        assert_eq!(a["type"], "io.nats.jetstream.advisory.v1.max_deliver");
        assert_eq!(a["deliveries"], 2);
        assert_eq!(a["consumer"], "P");
    }
    let i = info(&mut h, "P");
    assert_eq!(i["num_ack_pending"], 0, "{i}");
    assert_eq!(i["num_redelivered"], 2, "{i}");
}

/// PU1–PU3: a push consumer sends only while its deliver subject has a
/// subscriber, sends idle heartbeats with the last sequences, and pauses at
/// its flow-control window until the client answers the request.
#[test]
fn push_interest_heartbeats_flow_control() {
    let mut h = harness("memory", "limits");
    create(
        &mut h,
        "D",
        json!({"deliver_subject": "d.x", "idle_heartbeat": SEC, "flow_control": true}),
    );
    publish_n(&mut h, "s.a", 2);
    let mark = h.wire.len();
    h.advance(SEC);
    assert!(replies(&h, mark).is_empty(), "sent without a subscriber");
    assert_ne!(info(&mut h, "D")["push_bound"], json!(true));
    h.send_raw(b"SUB d.x 5\r\n");
    let r = replies(&h, mark);
    let d = deliveries(&r);
    assert_eq!(d.len(), 2);
    assert!(d.iter().all(|m| m.sid == "5" && m.subject == "s.a"));
    let mark = h.wire.len();
    h.advance(SEC);
    let r = replies(&h, mark);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(
        status(&r[0]).unwrap(),
        "NATS/1.0 100 Idle Heartbeat | Nats-Last-Consumer: 2 | Nats-Last-Stream: 2"
    );
    // 48 messages of 64 KiB: a flow-control request past 1 MiB, a stall past 2 MiB.
    let big = vec![b'x'; 64 * 1024];
    let msgs: Vec<_> = (0..48)
        .map(|_| ("s.b".to_string(), None, big.clone()))
        .collect();
    let mark = h.wire.len();
    for chunk in msgs.chunks(8) {
        h.publish_batch(chunk);
    }
    let r = replies(&h, mark);
    let fc: Vec<&ParsedMsg> = r
        .iter()
        .filter(|m| status(m).is_some_and(|s| s.contains("FlowControl Request")))
        .collect();
    assert_eq!(fc.len(), 1, "one flow-control request outstanding");
    let fc_reply = fc[0].reply.clone().expect("flow control reply subject");
    assert!(fc_reply.starts_with("$JS.FC.S.D."), "{fc_reply}");
    let got = deliveries(&r).len();
    assert!(got < 48, "no stall: {got}");
    assert_eq!(info(&mut h, "D")["num_pending"], 48 - got);
    // Heartbeats while stalled name the flow-control subject.
    let mark = h.wire.len();
    h.advance(SEC);
    let r = replies(&h, mark);
    assert!(
        r.iter().any(|m| status(m)
            .is_some_and(|s| s.contains(&format!("Nats-Consumer-Stalled: {fc_reply}")))),
        "{r:?}"
    );
    // The answer opens the window: the rest comes.
    h.send_raw(format!("PUB {fc_reply} 0\r\n\r\n").as_bytes());
    let mut total = got + deliveries(&replies(&h, mark)).len();
    for _ in 0..8 {
        let mark = h.wire.len();
        let r = h.msgs_since(0);
        let fcs: Vec<String> = r
            .iter()
            .filter(|m| status(m).is_some_and(|s| s.contains("FlowControl Request")))
            .filter_map(|m| m.reply.clone())
            .collect();
        if let Some(last) = fcs.last() {
            h.send_raw(format!("PUB {last} 0\r\n\r\n").as_bytes());
        }
        total += deliveries(&replies(&h, mark)).len();
    }
    assert_eq!(total, 48);
    assert_eq!(info(&mut h, "D")["num_pending"], 0);
    assert_eq!(info(&mut h, "D")["push_bound"], json!(true));
}

/// AK8 and the durability promise: an AckSync is answered only once the
/// consumer's state holding the ack is on disk.
#[test]
fn ack_sync_is_answered_once_durable() {
    let mut h = harness("file", "limits");
    create(&mut h, "P", json!({"ack_policy": "explicit"}));
    publish_n(&mut h, "s.a", 1);
    let (_, r) = pull(&mut h, "P", "1");
    let d = deliveries(&r)[0].clone();
    h.auto = false;
    let n = ack_sync(&mut h, &d);
    assert!(h.take_reply(n).is_none(), "answered before any write");
    let ops = h.perform(usize::MAX);
    assert!(ops >= 2, "the state write and its sync");
    assert!(h.take_reply(n).is_none(), "answered before the completions");
    h.deliver(usize::MAX);
    assert_eq!(h.take_reply(n).as_deref(), Some(&b""[..]));
    h.auto = true;
}

/// Work-queue streams drop a message when it is acked; interest streams when
/// every consumer has acked it; counts stay exact (row S11 with consumers).
#[test]
fn retention_by_acks() {
    let mut h = harness("file", "workqueue");
    create(&mut h, "W", json!({"ack_policy": "explicit"}));
    publish_n(&mut h, "s.a", 4);
    let (_, r) = pull(&mut h, "W", "4");
    let d: Vec<ParsedMsg> = deliveries(&r).into_iter().cloned().collect();
    ack(&mut h, &d[0], "+ACK");
    ack(&mut h, &d[2], "+ACK");
    let st = h.state("S");
    assert_eq!(st["messages"], 2, "{st}");
    assert_eq!(st["first_seq"], 2);
    let mut h2 = JsHarness::new(12);
    h2.create_stream(
        "S",
        r#"{"name":"S","subjects":["s.>"],"storage":"memory","retention":"interest"}"#,
    );
    create(&mut h2, "A", json!({"ack_policy": "explicit"}));
    create(
        &mut h2,
        "B",
        json!({"ack_policy": "explicit", "filter_subject": "s.b"}),
    );
    h2.publish("s.a", b"1");
    h2.publish("s.b", b"2");
    assert_eq!(h2.state("S")["messages"], 2);
    let (_, ra) = pull(&mut h2, "A", "2");
    for m in deliveries(&ra) {
        ack(&mut h2, m, "+ACK");
    }
    // s.a only A wanted; s.b waits for B.
    assert_eq!(h2.state("S")["messages"], 1);
    let (_, rb) = pull(&mut h2, "B", "1");
    ack(&mut h2, deliveries(&rb)[0], "+ACK");
    assert_eq!(h2.state("S")["messages"], 0);
}

/// Crash test: acks in flight, kill -9 or power loss at random points, 5
/// rounds. After
/// every restart no message whose AckSync was answered comes again, and at
/// the end every message has been acked or is delivered.
#[test]
fn kill9_rounds_keep_answered_acks() {
    for seed in 0..4u64 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut h = harness("file", "limits");
        create(
            &mut h,
            "P",
            json!({"ack_policy": "explicit", "ack_wait": 30 * SEC}),
        );
        publish_n(&mut h, "s.a", 60);
        let mut confirmed = BTreeSet::new();
        let mut acked_any = BTreeSet::new();
        for round in 0..5 {
            let (_, r) = pull(&mut h, "P", &format!("{}", rng.random_range(1..20)));
            let d: Vec<ParsedMsg> = deliveries(&r).into_iter().cloned().collect();
            for m in &d {
                let (seq, _) = seq_dc(m);
                assert!(
                    !confirmed.contains(&seq),
                    "seed {seed} round {round}: acked {seq} came again"
                );
            }
            h.auto = false;
            let mut syncs = Vec::new();
            for m in &d {
                match rng.random_range(0..3) {
                    0 => syncs.push((ack_sync(&mut h, m), seq_dc(m).0)),
                    1 => ack(&mut h, m, "+ACK"),
                    _ => continue,
                }
                acked_any.insert(seq_dc(m).0);
            }
            // Some of the disk work happens, then the process dies.
            let k = rng.random_range(0..6);
            h.perform(k);
            let j = rng.random_range(0..=k);
            h.deliver(j);
            for (n, seq) in syncs {
                if h.take_reply(n).is_some() {
                    confirmed.insert(seq);
                }
            }
            h.auto = true;
            // kill -9 keeps what was written; a power loss only what was
            // synced, maybe with a torn tail (nats-server #8036 reset an ack
            // floor after one).
            match rng.random_range(0..3) {
                0 => h.kill_restart(),
                1 => {
                    h.crash_restart(None);
                }
                _ => {
                    h.crash_restart(Some(rng.random_range(1..64)));
                }
            }
        }
        // Everything not confirmed comes (again); nothing confirmed does.
        let mut rest = BTreeSet::new();
        loop {
            let (_, r) = pull(&mut h, "P", r#"{"batch":100,"no_wait":true}"#);
            let d: Vec<ParsedMsg> = deliveries(&r).into_iter().cloned().collect();
            if d.is_empty() {
                break;
            }
            for m in &d {
                let (seq, _) = seq_dc(m);
                assert!(
                    !confirmed.contains(&seq),
                    "seed {seed}: acked {seq} came again at the end"
                );
                rest.insert(seq);
                ack(&mut h, m, "+ACK");
            }
        }
        // An ack may have reached the disk without its answer (or without
        // being a request): those may or may not come again. Every other
        // message must.
        let all: BTreeSet<u64> = acked_any.union(&rest).copied().collect();
        assert_eq!(all, (1..=60).collect(), "seed {seed}: a message was lost");
        assert!(!rest.is_empty() || acked_any.len() == 60);
    }
}

/// CC23: an ephemeral without a subscriber (push) or requests (pull) is
/// removed after its inactive_threshold; activity keeps it.
#[test]
fn ephemerals_expire_after_inactive_threshold() {
    let mut h = harness("memory", "limits");
    let mk = |h: &mut JsHarness, cfg: Value| {
        let r = h.request(
            "$JS.API.CONSUMER.CREATE.S",
            &json!({"stream_name": "S", "config": cfg}).to_string(),
        );
        r["name"].as_str().expect("ephemeral name").to_string()
    };
    let pull_name = mk(
        &mut h,
        json!({"ack_policy": "explicit", "inactive_threshold": SEC}),
    );
    let push_name = mk(
        &mut h,
        json!({"deliver_subject": "e.x", "inactive_threshold": SEC}),
    );
    let kept = mk(
        &mut h,
        json!({"deliver_subject": "e.y", "inactive_threshold": SEC}),
    );
    h.send_raw(b"SUB e.y 9\r\n");
    h.advance(600 * MS);
    // A waiting request is activity.
    pull(&mut h, &pull_name, r#"{"batch":1,"expires":2000000000}"#);
    h.advance(900 * MS);
    let names = h.request("$JS.API.CONSUMER.NAMES.S", "");
    let names: Vec<&str> = names["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!names.contains(&push_name.as_str()), "{names:?}");
    assert!(names.contains(&pull_name.as_str()), "{names:?}");
    assert!(names.contains(&kept.as_str()), "{names:?}");
    // The request expires at 2.6 s; a second later the pull consumer goes too.
    h.advance(2200 * MS);
    let names = h.request("$JS.API.CONSUMER.NAMES.S", "");
    assert_eq!(names["consumers"], json!([kept]), "{names}");
}

/// A purge acknowledges what it removed for every consumer (2.9.10's
/// consumer purge): nothing is redelivered, the floor moves to it.
#[test]
fn purge_moves_consumers_past_removed_messages() {
    let mut h = harness("file", "limits");
    create(
        &mut h,
        "P",
        json!({"ack_policy": "explicit", "ack_wait": SEC}),
    );
    publish_n(&mut h, "s.a", 5);
    let (_, r) = pull(&mut h, "P", "3");
    assert_eq!(deliveries(&r).len(), 3);
    h.request("$JS.API.STREAM.PURGE.S", r#"{"seq":5}"#);
    let i = info(&mut h, "P");
    assert_eq!(i["num_ack_pending"], 0, "{i}");
    assert_eq!(i["ack_floor"]["stream_seq"], 4, "{i}");
    assert_eq!(i["num_pending"], 1, "{i}");
    let mark = h.wire.len();
    h.advance(2 * SEC);
    let (_, r) = pull(&mut h, "P", r#"{"batch":5,"no_wait":true}"#);
    let mut got: Vec<(u64, u64)> = deliveries(&replies(&h, mark))
        .iter()
        .map(|m| seq_dc(m))
        .collect();
    got.extend(deliveries(&r).iter().map(|m| seq_dc(m)));
    got.dedup();
    assert_eq!(got, [(5, 1)]);
}

/// PE6: replay original spaces deliveries as the messages were stored.
#[test]
fn replay_original_keeps_the_gaps() {
    let mut h = harness("memory", "limits");
    h.publish("s.a", b"1");
    h.advance(500 * MS);
    h.publish("s.a", b"2");
    h.advance(300 * MS);
    h.publish("s.a", b"3");
    h.send_raw(b"SUB r.x 4\r\n");
    let mark = h.wire.len();
    create(
        &mut h,
        "R",
        json!({"deliver_subject": "r.x", "replay_policy": "original"}),
    );
    assert_eq!(deliveries(&replies(&h, mark)).len(), 1);
    h.advance(400 * MS);
    assert_eq!(deliveries(&replies(&h, mark)).len(), 1, "second came early");
    h.advance(150 * MS);
    assert_eq!(deliveries(&replies(&h, mark)).len(), 2);
    h.advance(200 * MS);
    assert_eq!(deliveries(&replies(&h, mark)).len(), 2, "third came early");
    h.advance(150 * MS);
    assert_eq!(deliveries(&replies(&h, mark)).len(), 3);
}

/// Messages no longer in the cache are read back from the log (in runs, one
/// read per run of records) and delivered in order with their contents.
#[test]
fn uncached_messages_are_read_back_in_order() {
    let cfg = natrium_engine::Config {
        jetstream_cache_bytes: 2048,
        ..support::js::js_config()
    };
    let mut h = JsHarness::with_disk(cfg, 5, support::simdisk::SimDisk::new());
    h.create_stream("S", r#"{"name":"S","subjects":["s.>"],"storage":"file"}"#);
    let msgs: Vec<_> = (0..300)
        .map(|i| {
            (
                format!("s.{}", i % 3),
                None,
                format!("payload-{i:04}-{}", "x".repeat(i % 50)).into_bytes(),
            )
        })
        .collect();
    for chunk in msgs.chunks(25) {
        h.publish_batch(chunk);
    }
    create(
        &mut h,
        "P",
        json!({"ack_policy": "explicit", "filter_subject": "s.1"}),
    );
    let reads = |h: &JsHarness| {
        h.disk
            .log
            .iter()
            .filter(|(_, op)| matches!(op, natrium_engine::storage::StorageOp::Read { file, .. } if file.contains("/log/")))
            .count()
    };
    let reads_before = reads(&h);
    let mut got = Vec::new();
    loop {
        let (_, r) = pull(&mut h, "P", r#"{"batch":40,"no_wait":true}"#);
        let d: Vec<ParsedMsg> = deliveries(&r).into_iter().cloned().collect();
        if d.is_empty() {
            break;
        }
        for m in &d {
            got.push((seq_dc(m).0, m.subject.clone(), m.payload.clone()));
            ack(&mut h, m, "+ACK");
        }
    }
    let want: Vec<_> = (0..300usize)
        .filter(|i| i % 3 == 1)
        .map(|i| ((i + 1) as u64, format!("s.{}", i % 3), msgs[i].2.clone()))
        .collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    let reads = reads(&h) - reads_before;
    assert!(
        reads < 20,
        "{reads} reads for 100 messages: not read in runs"
    );
}

/// PU1 with `deliver_group`: members of the queue group share the messages,
/// each going to one of them.
#[test]
fn push_deliver_group_shares_messages() {
    let mut h = harness("memory", "limits");
    h.send_raw(b"SUB g.x workers 21\r\nSUB g.x workers 22\r\n");
    let mark = h.wire.len();
    create(
        &mut h,
        "G",
        json!({"deliver_subject": "g.x", "deliver_group": "workers", "ack_policy": "explicit"}),
    );
    publish_n(&mut h, "s.a", 40);
    let r = replies(&h, mark);
    let d = deliveries(&r);
    assert_eq!(d.len(), 40);
    let mut seqs: Vec<u64> = d.iter().map(|m| seq_dc(m).0).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>(), "each message once");
    let to_21 = d.iter().filter(|m| m.sid == "21").count();
    assert!(to_21 > 0 && to_21 < 40, "{to_21} of 40 to one member");
}

/// S16: a consumer's info after deliveries, acks, a nak and a waiting
/// request, as JSON (snapshot), valid against the schema.
#[test]
fn consumer_info_snapshot() {
    let mut h = harness("file", "limits");
    create(
        &mut h,
        "P",
        json!({"ack_policy": "explicit", "ack_wait": 5 * SEC, "filter_subject": "s.a",
               "max_ack_pending": 100, "description": "snapshot"}),
    );
    publish_n(&mut h, "s.a", 6);
    publish_n(&mut h, "s.b", 2);
    let (_, r) = pull(&mut h, "P", "4");
    let d: Vec<ParsedMsg> = deliveries(&r).into_iter().cloned().collect();
    ack(&mut h, &d[0], "+ACK");
    ack(&mut h, &d[2], "+ACK");
    ack(&mut h, &d[1], "-NAK");
    pull(&mut h, "P", r#"{"batch":1,"expires":60000000000}"#);
    pull(&mut h, "P", r#"{"batch":5,"expires":60000000000}"#);
    let i = info(&mut h, "P");
    assert_eq!(i["num_ack_pending"], 4);
    schema::assert_valid("consumer_info_response", &i);
    assert_snapshot!(serde_json::to_string_pretty(&i).unwrap());
}

/// PU1, CC23: when the deliver subject loses its last subscriber the
/// consumer is no longer bound, and an ephemeral goes after its threshold
/// even with nothing to deliver.
#[test]
fn unsubscribe_unbinds_and_expires_push_ephemeral() {
    let mut h = harness("memory", "limits");
    h.send_raw(b"SUB u.x 31\r\n");
    let r = h.request(
        "$JS.API.CONSUMER.CREATE.S",
        &json!({"stream_name": "S", "config": {"deliver_subject": "u.x", "inactive_threshold": SEC}})
            .to_string(),
    );
    let name = r["name"].as_str().unwrap().to_string();
    h.publish("s.a", b"1");
    let i = h.request(&format!("$JS.API.CONSUMER.INFO.S.{name}"), "");
    assert_eq!(i["push_bound"], json!(true), "{i}");
    h.send_raw(b"UNSUB 31\r\n");
    let i = h.request(&format!("$JS.API.CONSUMER.INFO.S.{name}"), "");
    assert_ne!(i["push_bound"], json!(true), "{i}");
    h.advance(1100 * MS);
    let names = h.request("$JS.API.CONSUMER.NAMES.S", "");
    assert_eq!(names["consumers"], json!([]), "{names}");
}

/// A failed write of a consumer's state: the AckSync it held gets no answer
/// (clients take any answer as success), the next snapshot replaces the
/// file, and what was answered afterwards survives a power loss.
#[test]
fn failed_state_write_answers_nothing_and_rewrites() {
    use natrium_engine::storage::StorageOp;
    let mut h = harness("file", "limits");
    create(
        &mut h,
        "P",
        json!({"ack_policy": "explicit", "ack_wait": 30 * SEC}),
    );
    publish_n(&mut h, "s.a", 4);
    let (_, r) = pull(&mut h, "P", "4");
    let d: Vec<ParsedMsg> = deliveries(&r).into_iter().cloned().collect();
    let n0 = ack_sync(&mut h, &d[0]);
    assert!(h.take_reply(n0).is_some(), "a healthy AckSync is answered");
    h.disk.fail = Some(Box::new(
        |_, op| matches!(op, StorageOp::Write { file, .. } if file.ends_with("/obs/P/state")),
    ));
    let n1 = ack_sync(&mut h, &d[1]);
    assert!(
        h.take_reply(n1).is_none(),
        "answered although its write failed"
    );
    h.disk.fail = None;
    let n2 = ack_sync(&mut h, &d[2]);
    assert!(h.take_reply(n2).is_some());
    let renamed =
        h.disk.log.iter().any(
            |(_, op)| matches!(op, StorageOp::Rename { to, .. } if to.ends_with("/obs/P/state")),
        );
    assert!(renamed, "the state file was not replaced after the failure");
    h.crash_restart(None);
    let (_, r) = pull(&mut h, "P", r#"{"batch":10,"no_wait":true}"#);
    let seqs: Vec<u64> = deliveries(&r).iter().map(|m| seq_dc(m).0).collect();
    // 1 and 3 were answered (and 2 is in the snapshot that answered 3).
    assert_eq!(seqs, [4], "{seqs:?}");
}

/// A message whose log write failed is never delivered, nor anything after
/// it until a restart recovers what the disk holds.
#[test]
fn failed_log_write_stops_delivery_at_the_hole() {
    use natrium_engine::storage::StorageOp;
    let mut h = harness("file", "limits");
    create(&mut h, "P", json!({"ack_policy": "explicit"}));
    publish_n(&mut h, "s.a", 2);
    // Message 3's write fails; message 4, published before that is known,
    // is written and synced after it.
    h.auto = false;
    h.publish("s.a", b"lost");
    h.publish("s.a", b"after");
    let mut first = true;
    h.disk.fail = Some(Box::new(move |_, op| {
        let log_write = matches!(op, StorageOp::Write { file, .. } if file.contains("/log/"));
        let fail = first && log_write;
        first &= !log_write;
        fail
    }));
    h.auto = true;
    h.settle();
    h.disk.fail = None;
    let (_, r) = pull(&mut h, "P", r#"{"batch":10,"no_wait":true}"#);
    let seqs: Vec<u64> = deliveries(&r).iter().map(|m| seq_dc(m).0).collect();
    assert_eq!(seqs, [1, 2]);
    h.kill_restart();
    let (_, r) = pull(&mut h, "P", r#"{"batch":10,"no_wait":true}"#);
    let seqs: Vec<u64> = deliveries(&r).iter().map(|m| seq_dc(m).0).collect();
    assert!(
        !seqs.contains(&3),
        "the message whose write failed came: {seqs:?}"
    );
}

/// A replacement state file whose write failed is never renamed over the
/// good one (an executor performs the Rename after a failed Write): the
/// answered ack survives a power loss.
#[test]
fn failed_replacement_keeps_the_old_state() {
    use natrium_engine::storage::StorageOp;
    let mut h = harness("file", "limits");
    create(
        &mut h,
        "P",
        json!({"ack_policy": "explicit", "ack_wait": 30 * SEC}),
    );
    publish_n(&mut h, "s.a", 4);
    let (_, r) = pull(&mut h, "P", "4");
    let d: Vec<ParsedMsg> = deliveries(&r).into_iter().cloned().collect();
    let n0 = ack_sync(&mut h, &d[0]);
    assert!(h.take_reply(n0).is_some());
    // The append fails; then the replacement's write fails too.
    h.disk.fail = Some(Box::new(
        |_, op| matches!(op, StorageOp::Write { file, .. } if file.contains("/obs/P/state")),
    ));
    let n1 = ack_sync(&mut h, &d[1]);
    let n2 = ack_sync(&mut h, &d[2]);
    assert!(h.take_reply(n1).is_none() && h.take_reply(n2).is_none());
    h.disk.fail = None;
    h.crash_restart(None);
    let (_, r) = pull(&mut h, "P", r#"{"batch":10,"no_wait":true}"#);
    let seqs: Vec<u64> = deliveries(&r).iter().map(|m| seq_dc(m).0).collect();
    assert_eq!(seqs, [2, 3, 4], "the answered ack of 1 was lost");
}

/// A consumer's meta.json whose write failed is not renamed into place (the
/// create is answered with an error) and is written again: the consumer and
/// its answered acks survive a power loss.
#[test]
fn failed_meta_write_is_retried_not_renamed() {
    use natrium_engine::storage::StorageOp;
    let mut h = harness("file", "limits");
    publish_n(&mut h, "s.a", 3);
    let mut once = true;
    h.disk.fail = Some(Box::new(move |_, op| {
        let meta = matches!(op, StorageOp::Write { file, .. } if file.contains("/obs/P/meta.json"));
        let fail = once && meta;
        once &= !meta;
        fail
    }));
    let r = h.request(
        "$JS.API.CONSUMER.DURABLE.CREATE.S.P",
        &json!({"stream_name": "S", "config": {"durable_name": "P", "ack_policy": "explicit"}})
            .to_string(),
    );
    assert_eq!(r["error"]["err_code"], 10077, "{r}");
    h.disk.fail = None;
    let (_, r) = pull(&mut h, "P", "1");
    let d: Vec<ParsedMsg> = deliveries(&r).into_iter().cloned().collect();
    let n = ack_sync(&mut h, &d[0]);
    assert!(h.take_reply(n).is_some());
    h.crash_restart(None);
    let (_, r) = pull(&mut h, "P", r#"{"batch":10,"no_wait":true}"#);
    let seqs: Vec<u64> = deliveries(&r).iter().map(|m| seq_dc(m).0).collect();
    assert_eq!(seqs, [2, 3], "the consumer or its answered ack was lost");
}

/// Bounded on a stalled disk: one consumer has at most 16 state writes in
/// flight however many AckSyncs arrive; once the disk moves, every held
/// AckSync is answered.
#[test]
fn stalled_disk_bounds_state_writes() {
    use natrium_engine::storage::StorageOp;
    let mut h = harness("file", "limits");
    create(
        &mut h,
        "P",
        json!({"ack_policy": "explicit", "max_ack_pending": 1000}),
    );
    publish_n(&mut h, "s.a", 40);
    let (_, r) = pull(&mut h, "P", "40");
    let d: Vec<ParsedMsg> = deliveries(&r).into_iter().cloned().collect();
    assert_eq!(d.len(), 40);
    h.auto = false;
    let ns: Vec<u64> = d.iter().map(|m| ack_sync(&mut h, m)).collect();
    let state_syncs = h
        .disk
        .queue()
        .filter(|(_, op)| matches!(op, StorageOp::Sync { file } if file.ends_with("/obs/P/state")))
        .count();
    assert!(state_syncs <= 16, "{state_syncs} state writes in flight");
    assert!(ns.iter().all(|n| h.take_reply(*n).is_none()));
    h.auto = true;
    h.settle();
    for n in ns {
        assert!(h.take_reply(n).is_some(), "AckSync {n} never answered");
    }
}
