//! Crash consistency of JetStream's file store, against a simulated disk.
//!
//! The engine is driven through [`support::js::JsHarness`]: a real `Server` with
//! JetStream on, whose storage operations go to [`support::simdisk::SimDisk`], an
//! in-memory disk with separate volatile and durable copies of every file. Tests
//! choose how far the disk gets before it "loses power", whether a torn tail of
//! unsynced bytes survives, and when completions reach the engine.
//!
//! The promise under test is about acknowledged publishes: a PubAck is only sent
//! once the record it acknowledges is durable, so no crash can lose an acked
//! message. Responses to deletes and purges are sent at once (as nats-server
//! does); their records become durable with the stream's next sync, so a crash
//! before that may bring the removed messages back.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use natrium_engine::storage::StorageOp;
use support::js::{GotMsg, JsHarness};
use support::simdisk::SimDisk;

const STREAM: &str = r#"{"name":"S","subjects":["s.>"],"storage":"file"}"#;

fn ack_seq(reply: &[u8]) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(reply).expect("ack JSON");
    assert!(v.get("error").is_none(), "error ack: {v}");
    assert_eq!(v["stream"], "S");
    v["seq"].as_u64().expect("ack seq")
}

fn msgs(n: usize, from: usize) -> Vec<(String, Option<String>, Vec<u8>)> {
    (from..from + n)
        .map(|k| (format!("s.{}", k % 3), None, format!("p{k}").into_bytes()))
        .collect()
}

fn seg_ops(ops: &[(natrium_engine::storage::StorageId, StorageOp)]) -> (usize, usize) {
    let is_seg = |f: &str| f.starts_with("streams/S/log/");
    let writes = ops
        .iter()
        .filter(|(_, op)| matches!(op, StorageOp::Write { file, .. } if is_seg(file)))
        .count();
    let syncs = ops
        .iter()
        .filter(|(_, op)| matches!(op, StorageOp::Sync { file } if is_seg(file)))
        .count();
    (writes, syncs)
}

fn payloads(m: &BTreeMap<u64, GotMsg>) -> Vec<(u64, String)> {
    m.values()
        .map(|g| (g.seq, String::from_utf8_lossy(&g.data).into_owned()))
        .collect()
}

/// No PubAck before the Sync covering its record has completed: not while the
/// write is queued, not after the write, not after the sync was performed but
/// before its completion was delivered.
#[test]
fn puback_waits_for_the_sync() {
    let mut h = JsHarness::new(1);
    h.create_stream("S", STREAM);
    h.auto = false;
    let ns = h.publish_batch(&msgs(3, 0));
    assert!(h.arrived.is_empty(), "ack before any storage progress");
    let queued: Vec<StorageOp> = h.disk.queue().map(|(_, op)| op.clone()).collect();
    assert!(
        matches!(
            &queued[..],
            [StorageOp::Write { .. }, StorageOp::Sync { .. }]
        ),
        "{queued:?}"
    );
    h.perform(1);
    h.deliver(1);
    assert!(h.arrived.is_empty(), "ack after the write only");
    h.perform(1);
    assert!(
        h.arrived.is_empty(),
        "ack before the sync's completion was delivered"
    );
    h.deliver(1);
    let seqs: Vec<u64> = ns
        .iter()
        .map(|&n| ack_seq(&h.take_reply(n).expect("ack")))
        .collect();
    assert_eq!(seqs, vec![1, 2, 3]);
}

/// A failed sync turns the acks it held into errors; nothing is acked.
#[test]
fn failed_sync_fails_the_acks() {
    let mut h = JsHarness::new(1);
    h.create_stream("S", STREAM);
    h.disk.fail = Some(Box::new(|_, op| matches!(op, StorageOp::Sync { .. })));
    let ns = h.publish_batch(&msgs(2, 0));
    for n in ns {
        let r: serde_json::Value = serde_json::from_slice(&h.take_reply(n).unwrap()).unwrap();
        assert_eq!(r["error"]["err_code"], 10077, "{r}");
    }
}

/// A failed write must not be acknowledged, even when the sync after it succeeds.
#[test]
fn failed_write_fails_the_acks() {
    let mut h = JsHarness::new(1);
    h.create_stream("S", STREAM);
    h.disk.fail = Some(Box::new(
        |_, op| matches!(op, StorageOp::Write { file, .. } if file.ends_with(".seg")),
    ));
    let ns = h.publish_batch(&msgs(2, 0));
    for n in ns {
        let r: serde_json::Value = serde_json::from_slice(&h.take_reply(n).unwrap()).unwrap();
        assert_eq!(r["error"]["err_code"], 10077, "{r}");
    }
    // Even with the disk working again, publishes are refused until a restart:
    // going on would ack messages behind the hole the failed write left (where
    // recovery stops), and ack a retry of a failed message as a duplicate of
    // one that never became durable (both found by the simulator: sim/README.md).
    h.disk.fail = None;
    let n = h.publish("s.x", b"refused");
    let r: serde_json::Value = serde_json::from_slice(&h.take_reply(n).unwrap()).unwrap();
    assert_eq!(r["error"]["err_code"], 10077, "{r}");
    // After the restart the store is what the disk holds, and it takes writes.
    h.crash_restart(None);
    let n = h.publish("s.x", b"later");
    let seq = ack_seq(&h.take_reply(n).unwrap());
    h.crash_restart(None);
    assert_eq!(payloads(&h.messages("S")), vec![(seq, "later".to_string())]);
}

/// After a kill, the log's tail may live only in the page cache. Recovery
/// syncs what it read before anything relies on it: a retry acked as a
/// duplicate of a recovered message must survive a power loss right after
/// (found by the simulator: seed 1000810 acked a page-cache-only message as a
/// duplicate, lost it at the next power loss, and reused its sequence).
#[test]
fn recovered_tail_is_durable_before_a_duplicate_is_acked() {
    let mut h = JsHarness::new(1);
    h.create_stream("S", STREAM);
    h.auto = false;
    let first = vec![("s.1".to_string(), Some("a".to_string()), b"one".to_vec())];
    let n = h.publish_batch(&first)[0];
    // The record's write reaches the page cache; the process dies before its fsync.
    assert_eq!(h.perform(1), 1);
    assert!(h.take_reply(n).is_none(), "no ack before the fsync");
    h.kill_restart();
    // The retry is a duplicate of the recovered message...
    let n = h.publish_batch(&first)[0];
    let r: serde_json::Value = serde_json::from_slice(&h.take_reply(n).unwrap()).unwrap();
    assert_eq!(
        (r["seq"].as_u64(), r["duplicate"].as_bool()),
        (Some(1), Some(true)),
        "{r}"
    );
    // ...and, acked, it survives the power going out now.
    h.crash_restart(None);
    assert_eq!(payloads(&h.messages("S")), vec![(1, "one".to_string())]);
}

/// Group commit: every publish of one read shares one Write and one Sync.
#[test]
fn group_commit_one_write_one_sync_per_input() {
    let mut h = JsHarness::new(1);
    h.create_stream("S", STREAM);
    let before = h.disk.log.len();
    let ns = h.publish_batch(&msgs(100, 0));
    let ops = h.disk.log[before..].to_vec();
    assert_eq!(seg_ops(&ops), (1, 1), "{ops:?}");
    assert_eq!(ops.len(), 2, "nothing but the write and the sync: {ops:?}");
    for (i, n) in ns.into_iter().enumerate() {
        assert_eq!(ack_seq(&h.take_reply(n).unwrap()), i as u64 + 1);
    }
    // Two streams in one read: one write and one sync each.
    h.create_stream("T", r#"{"name":"T","subjects":["t.>"],"storage":"file"}"#);
    let before = h.disk.log.len();
    let mut batch = msgs(10, 100);
    batch.extend((0..10).map(|k| (format!("t.{k}"), None, b"x".to_vec())));
    h.publish_batch(&batch);
    let ops = h.disk.log[before..].to_vec();
    let syncs: Vec<&str> = ops
        .iter()
        .filter_map(|(_, op)| match op {
            StorageOp::Sync { file } => Some(file.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(syncs.len(), 2, "{ops:?}");
    assert_eq!(ops.len(), 4, "{ops:?}");
    assert_eq!(h.arrived.len(), 20);
}

/// A restart without a crash loses nothing, and sequences continue.
#[test]
fn clean_restart_keeps_everything() {
    let mut h = JsHarness::new(1);
    h.create_stream("S", STREAM);
    h.publish_batch(&msgs(10, 0));
    let mut ids = msgs(3, 10);
    for (i, m) in ids.iter_mut().enumerate() {
        m.1 = Some(format!("id-{i}"));
    }
    h.publish_batch(&ids);
    let before = h.messages("S");
    assert_eq!(before.len(), 13);
    h.restart();
    assert_eq!(h.messages("S"), before);
    // Dedup survives the restart.
    let n = h.publish_batch(&[("s.0".into(), Some("id-1".into()), b"again".to_vec())])[0];
    let r: serde_json::Value = serde_json::from_slice(&h.take_reply(n).unwrap()).unwrap();
    assert_eq!(
        (r["seq"].as_u64(), r["duplicate"].as_bool()),
        (Some(12), Some(true))
    );
    let n = h.publish("s.1", b"next");
    assert_eq!(ack_seq(&h.take_reply(n).unwrap()), 14);
}

/// A crash loses exactly what was not synced; acked messages are all there.
#[test]
fn crash_keeps_acked_loses_unsynced() {
    for performed in 0..=2 {
        let mut h = JsHarness::new(1);
        h.create_stream("S", STREAM);
        let acked = h.publish_batch(&msgs(5, 0));
        for (i, n) in acked.into_iter().enumerate() {
            assert_eq!(ack_seq(&h.take_reply(n).unwrap()), i as u64 + 1);
        }
        let before = h.messages("S");
        h.auto = false;
        h.publish_batch(&msgs(4, 5));
        // Perform nothing, the write, or the write and the sync; deliver nothing.
        h.perform(performed);
        assert!(h.arrived.is_empty());
        h.crash_restart(None);
        h.auto = true;
        let after = h.messages("S");
        if performed == 2 {
            // The sync was done: everything is durable, though never acked.
            assert_eq!(after.len(), 9);
            assert_eq!(
                after
                    .range(..=5)
                    .map(|(k, v)| (*k, v.clone()))
                    .collect::<BTreeMap<_, _>>(),
                before
            );
        } else {
            assert_eq!(after, before, "performed {performed}");
        }
        let next = after.keys().last().copied().unwrap() + 1;
        let n = h.publish("s.0", b"after");
        assert_eq!(ack_seq(&h.take_reply(n).unwrap()), next);
    }
}

/// Every torn tail: recovery cuts it (a Truncate is emitted) and keeps every
/// whole record before it; sequences continue after the last one kept.
#[test]
fn torn_tail_is_cut_and_good_records_kept() {
    const SEG: &str = "streams/S/log/0000000001.seg";
    let setup = || {
        let mut h = JsHarness::new(1);
        h.create_stream("S", STREAM);
        h.publish_batch(&msgs(3, 0));
        h.auto = false;
        h.publish_batch(&msgs(3, 3));
        h.perform(1);
        h
    };
    let h = setup();
    let base = h.disk.durable_file(SEG).unwrap().len();
    let full = h.disk.file(SEG).unwrap().len();
    // Each MSG record: 13 bytes of framing, 26 of fixed fields, subject, data.
    let record = 13 + 26 + "s.0".len() + "p3".len();
    assert_eq!(full - base, 3 * record);
    for keep in 0..=full - base {
        let mut h = setup();
        let before_log = h.disk.log.len();
        let kept = h.crash_restart(Some(keep as u64));
        h.auto = true;
        assert_eq!(kept, keep);
        let got = h.messages("S");
        let n = 3 + keep / record;
        let want: Vec<(u64, String)> = (0..n).map(|k| (k as u64 + 1, format!("p{k}"))).collect();
        assert_eq!(payloads(&got), want, "keep {keep}");
        let truncated = h.disk.log[before_log..]
            .iter()
            .filter(|(_, op)| matches!(op, StorageOp::Truncate { file, .. } if file == SEG))
            .count();
        assert_eq!(
            truncated,
            usize::from(keep % record != 0),
            "keep {keep}: truncates"
        );
        let next = h.publish("s.0", b"after");
        assert_eq!(
            ack_seq(&h.take_reply(next).unwrap()),
            n as u64 + 1,
            "keep {keep}"
        );
        // A second crash keeps all of it: the new record follows the cut.
        h.crash_restart(Some(u64::MAX));
        let again = h.messages("S");
        assert_eq!(again.len(), n + 1, "keep {keep}");
        assert_eq!(again[&(n as u64 + 1)].data, b"after");
    }
}

/// Bit rot inside a segment: whatever byte of a record in the middle is
/// damaged, recovery keeps every other record (a damaged length field loses
/// nothing at all), the stream survives, no good byte is cut off, and sequences
/// continue after the last message.
#[test]
fn flipped_byte_loses_only_its_record() {
    const SEG: &str = "streams/S/log/0000000001.seg";
    // NEXT record (13 + 8 bytes), then 44-byte MSG records p0..p9 (seq 1..10).
    let record = 44;
    let fifth = 21 + 4 * record;
    for at in fifth..fifth + record {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut h = JsHarness::new(1);
            h.create_stream("S", STREAM);
            for k in 0..10 {
                h.publish_batch(&msgs(1, k));
            }
            assert_eq!(h.disk.file(SEG).unwrap().len(), 21 + 10 * record);
            h.disk.flip_byte(SEG, at, mask);
            let before_log = h.disk.log.len();
            h.crash_restart(None);
            let truncates = h.disk.log[before_log..]
                .iter()
                .filter(|(_, op)| matches!(op, StorageOp::Truncate { .. }))
                .count();
            assert_eq!(truncates, 0, "byte {at} mask {mask:#x}");
            let got = payloads(&h.messages("S"));
            let mut want: Vec<(u64, String)> =
                (0..10).map(|k| (k as u64 + 1, format!("p{k}"))).collect();
            let in_len_field = (fifth + 4..fifth + 8).contains(&at);
            if got.len() == 9 {
                assert!(
                    !in_len_field,
                    "byte {at} mask {mask:#x}: length damage lost the record"
                );
                want.remove(4);
            }
            assert_eq!(got, want, "byte {at} mask {mask:#x}");
            let n = h.publish("s.0", b"after");
            assert_eq!(
                ack_seq(&h.take_reply(n).unwrap()),
                11,
                "byte {at} mask {mask:#x}"
            );
        }
    }
}

/// Deletes, every kind of purge, and limit evictions (on publish and on a
/// max_msgs update) survive a restart, with and without a crash once synced.
#[test]
fn removals_survive_restart() {
    for crash in [false, true] {
        let mut h = JsHarness::new(1);
        h.create_stream("S", STREAM);
        h.publish_batch(&msgs(30, 0));
        let del = |h: &mut JsHarness, seq: u64| {
            let r = h.request("$JS.API.STREAM.MSG.DELETE.S", &format!("{{\"seq\":{seq}}}"));
            assert_eq!(r["success"], true, "{r}");
        };
        let purge = |h: &mut JsHarness, body: &str| {
            let r = h.request("$JS.API.STREAM.PURGE.S", body);
            assert_eq!(r["success"], true, "{r}");
            r["purged"].as_u64().unwrap()
        };
        del(&mut h, 2);
        del(&mut h, 30);
        // Seq k+1 holds p<k> on s.<k%3>.
        assert_eq!(purge(&mut h, r#"{"filter":"s.1"}"#), 9, "seq 2 was deleted");
        assert_eq!(purge(&mut h, r#"{"seq":5}"#), 3, "seqs 1, 3, 4");
        assert_eq!(purge(&mut h, r#"{"filter":"s.0","keep":3}"#), 5);
        h.messages("S");
        let st = h.state("S");
        assert_eq!(st["last_seq"], 30);
        // A purge past the end moves the next sequence.
        h.publish_batch(&msgs(5, 30));
        assert_eq!(purge(&mut h, r#"{"seq":50}"#), 16);
        assert_eq!(h.state("S")["last_seq"], 49);
        h.messages("S");
        // Limits: max_msgs via update evicts the oldest; later publishes evict too.
        h.publish_batch(&msgs(6, 35));
        let r = h.request(
            "$JS.API.STREAM.UPDATE.S",
            r#"{"name":"S","subjects":["s.>"],"storage":"file","max_msgs":4}"#,
        );
        assert!(r.get("error").is_none(), "{r}");
        assert_eq!(h.messages("S").len(), 4);
        h.publish_batch(&msgs(3, 41));
        let before = h.messages("S");
        assert_eq!(
            before.keys().copied().collect::<Vec<_>>(),
            vec![55, 56, 57, 58]
        );
        if crash {
            h.crash_restart(None);
        } else {
            h.restart();
        }
        assert_eq!(h.messages("S"), before, "crash {crash}");
        let st = h.state("S");
        assert_eq!(st["last_seq"], 58);
        assert_eq!(h.state("S")["messages"], 4);
        let n = h.publish("s.2", b"more");
        assert_eq!(ack_seq(&h.take_reply(n).unwrap()), 59);
        assert_eq!(h.messages("S").len(), 4, "max_msgs kept after restart");
        // A full purge, then a crash: empty, and the next sequence continues.
        assert_eq!(purge(&mut h, "{}"), 4);
        h.crash_restart(None);
        let st = h.state("S");
        assert_eq!(
            (
                st["messages"].as_u64(),
                st["last_seq"].as_u64(),
                st["first_seq"].as_u64()
            ),
            (Some(0), Some(59), Some(60))
        );
        let n = h.publish("s.2", b"more");
        assert_eq!(ack_seq(&h.take_reply(n).unwrap()), 60);
    }
}

/// An update that lowers max_msgs writes the new config atomically and logs the
/// evictions with the next flush; a crash in between must not leave more
/// messages than the durable config allows.
#[test]
fn max_msgs_update_then_crash_before_eviction_sync() {
    let mut h = JsHarness::new(1);
    h.create_stream("S", STREAM);
    h.publish_batch(&msgs(10, 0));
    h.auto = false;
    let r = h.request(
        "$JS.API.STREAM.UPDATE.S",
        r#"{"name":"S","subjects":["s.>"],"storage":"file","max_msgs":3}"#,
    );
    assert!(r.get("error").is_none(), "{r}");
    // Perform the meta.json replacement (write, truncate, sync, rename), not the log.
    let ops: Vec<StorageOp> = h.disk.queue().map(|(_, op)| op.clone()).collect();
    let rename = ops
        .iter()
        .position(|op| matches!(op, StorageOp::Rename { .. }))
        .expect("meta rename");
    assert!(ops[rename + 1..]
        .iter()
        .any(|op| matches!(op, StorageOp::Sync { file } if file.ends_with(".seg"))));
    h.perform(rename + 1);
    h.crash_restart(None);
    h.auto = true;
    let st = h.state("S");
    assert_eq!(st["messages"], 3, "{st}");
    assert_eq!(
        h.messages("S").keys().copied().collect::<Vec<_>>(),
        vec![8, 9, 10]
    );
    // The evictions recovery made are logged: they hold after another crash.
    h.crash_restart(None);
    assert_eq!(h.state("S")["messages"], 3);
}

/// A duplicate's PubAck names a sequence; it is not sent before that message is
/// durable.
#[test]
fn duplicate_ack_waits_for_the_original() {
    let mut h = JsHarness::new(1);
    h.create_stream("S", STREAM);
    h.auto = false;
    let first = h.publish_batch(&[("s.0".into(), Some("A".into()), b"one".to_vec())])[0];
    let dup = h.publish_batch(&[("s.0".into(), Some("A".into()), b"two".to_vec())])[0];
    assert!(
        h.arrived.is_empty(),
        "an ack (the duplicate's?) before any sync"
    );
    h.perform(usize::MAX);
    h.deliver(usize::MAX);
    assert_eq!(ack_seq(&h.take_reply(first).unwrap()), 1);
    let r: serde_json::Value = serde_json::from_slice(&h.take_reply(dup).unwrap()).unwrap();
    assert_eq!(
        (r["seq"].as_u64(), r["duplicate"].as_bool()),
        (Some(1), Some(true))
    );
    // Once the original is durable, a duplicate is acked at once.
    let again = h.publish_batch(&[("s.0".into(), Some("A".into()), b"three".to_vec())])[0];
    assert!(h.take_reply(again).is_some());
}

// ----- the model-based property -----
//
// The model simulates the stream (sequences, Nats-Msg-Id dedup, deletes, purges,
// max_msgs evictions) and, for every input the client sends, the log records
// the server writes for it, in order. The harness tells which storage
// operations of each input the disk performed. After a crash the recovered
// stream must be exactly the replay of:
//   the state at the last restart,
//   + the records of every input up to the last one whose Sync was performed,
//   + with a torn tail, some prefix of the records of later inputs whose Write
//     was performed (nothing more without a torn tail),
// with max_msgs of the last meta.json whose Rename was performed enforced on top
// (recovery evicts what the durable config does not allow).
//
// What that means for clients:
// - an acked publish is never lost: its ack waits for its input's Sync, so it is
//   in the durable prefix (asserted directly as well, for every ack);
// - a message whose delete/purge/eviction was answered but whose DELETE record
//   was not yet synced may come back after a crash;
// - unacked publishes may or may not survive (torn tails), always whole;
// - sequences after recovery continue after the last one recovered (or the
//   NEXT record of a durable purge), never reuse a durable one, and no
//   Nats-Msg-Id is stored twice.

mod model {
    use super::*;
    use natrium_engine::storage::StorageId;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    pub enum Act {
        /// (subject 0..3, msg id 0..4 or none, padding)
        Publish(Vec<(u8, Option<u8>, u8)>),
        Delete(u8),
        Purge {
            filter: Option<u8>,
            seq: Option<u8>,
            keep: Option<u8>,
        },
        MaxMsgs(i64),
        Perform(u8),
        Deliver(u8),
        Crash(Option<u64>),
        Restart,
    }

    pub fn act() -> impl Strategy<Value = Act> {
        prop_oneof![
            6 => proptest::collection::vec((0u8..3, proptest::option::weighted(0.3, 0u8..4), 0u8..40), 1..6)
                .prop_map(Act::Publish),
            2 => any::<u8>().prop_map(Act::Delete),
            1 => (proptest::option::of(0u8..3), proptest::option::of(any::<u8>()), proptest::option::weighted(0.3, 0u8..4))
                .prop_map(|(filter, seq, keep)| Act::Purge { filter, seq: if keep.is_some() { None } else { seq }, keep }),
            1 => prop_oneof![Just(-1i64), 1i64..8].prop_map(Act::MaxMsgs),
            4 => (1u8..8).prop_map(Act::Perform),
            4 => (1u8..8).prop_map(Act::Deliver),
            1 => proptest::option::weighted(0.6, any::<u64>()).prop_map(Act::Crash),
            1 => Just(Act::Restart),
        ]
    }

    #[derive(Clone, Debug)]
    struct Pub {
        subject: String,
        id: Option<String>,
        payload: Vec<u8>,
    }

    #[derive(Clone, Debug)]
    enum Rec {
        Msg(u64, usize),
        Del(Vec<u64>),
        Next(u64),
    }

    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    struct State {
        msgs: BTreeMap<u64, usize>,
        next: u64,
    }

    impl State {
        fn apply(&mut self, r: &Rec) {
            match r {
                Rec::Msg(seq, k) => {
                    self.msgs.insert(*seq, *k);
                    self.next = self.next.max(seq + 1);
                }
                Rec::Del(seqs) => {
                    for s in seqs {
                        self.msgs.remove(s);
                    }
                }
                Rec::Next(n) => self.next = self.next.max(*n),
            }
        }

        fn enforce(&mut self, max: i64) -> Vec<u64> {
            let mut out = Vec::new();
            while max >= 0 && self.msgs.len() as i64 > max {
                let (&s, _) = self.msgs.iter().next().unwrap();
                self.msgs.remove(&s);
                out.push(s);
            }
            out
        }
    }

    /// One input the client sent, and what the server emitted for it.
    struct Input {
        recs: Vec<Rec>,
        write: Option<StorageId>,
        sync: Option<StorageId>,
        rename: Option<(StorageId, i64)>,
    }

    struct PendingAck {
        input: usize,
        seq: u64,
        dup: bool,
        /// For a duplicate: the input that stored the original, if since the restart.
        orig_input: Option<usize>,
    }

    pub struct Run {
        pub h: JsHarness,
        pubs: Vec<Pub>,
        /// The state at the last restart (all durable) and its max_msgs.
        base: State,
        base_max: i64,
        /// The server's state as the model runs it.
        mem: State,
        max: i64,
        dedup: BTreeMap<String, u64>,
        inputs: Vec<Input>,
        /// Input that stored each sequence since the restart.
        stored_by: BTreeMap<u64, usize>,
        acks: BTreeMap<u64, PendingAck>,
        /// Inputs whose acks arrived (must be durable).
        acked_inputs: Vec<usize>,
    }

    impl Run {
        pub fn new(seed: u64) -> Run {
            Run::with_config(support::js::js_config(), seed)
        }

        pub fn with_config(cfg: natrium_engine::Config, seed: u64) -> Run {
            let mut h = JsHarness::with_disk(cfg, seed, SimDisk::new());
            h.create_stream("S", STREAM);
            h.auto = false;
            Run {
                h,
                pubs: Vec::new(),
                base: State {
                    msgs: BTreeMap::new(),
                    next: 1,
                },
                base_max: -1,
                mem: State {
                    msgs: BTreeMap::new(),
                    next: 1,
                },
                max: -1,
                dedup: BTreeMap::new(),
                inputs: Vec::new(),
                stored_by: BTreeMap::new(),
                acks: BTreeMap::new(),
                acked_inputs: Vec::new(),
            }
        }

        /// Note what the server emitted for the input just sent.
        fn input(&mut self, from: usize, recs: Vec<Rec>, max: Option<i64>) -> usize {
            let mut inp = Input {
                recs,
                write: None,
                sync: None,
                rename: None,
            };
            for (id, op) in &self.h.disk.log[from..] {
                match op {
                    StorageOp::Write { file, .. } if file.ends_with(".seg") => {
                        inp.write = Some(*id)
                    }
                    StorageOp::Sync { file } if file.ends_with(".seg") => inp.sync = Some(*id),
                    StorageOp::Rename { to, .. } if to.ends_with("meta.json") => {
                        inp.rename = Some((*id, max.expect("rename without update")))
                    }
                    _ => {}
                }
            }
            assert_eq!(
                inp.write.is_some(),
                !inp.recs.is_empty(),
                "a write iff records: {:?}",
                inp.recs
            );
            self.inputs.push(inp);
            self.inputs.len() - 1
        }

        fn check_arrivals(&mut self) {
            for (n, body) in std::mem::take(&mut self.h.arrived) {
                let want = self
                    .acks
                    .remove(&n)
                    .unwrap_or_else(|| panic!("unexpected reply {n}"));
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert!(v.get("error").is_none(), "error ack {v}");
                assert_eq!(v["seq"].as_u64(), Some(want.seq), "ack {v}");
                assert_eq!(
                    v["duplicate"].as_bool().unwrap_or(false),
                    want.dup,
                    "ack {v}"
                );
                // The ack came only after the Sync covering its record completed.
                let covering = if want.dup {
                    want.orig_input
                } else {
                    Some(want.input)
                };
                if let Some(i) = covering {
                    let sync = self.inputs[i].sync.expect("a stored message has a sync");
                    assert!(
                        self.h.disk.delivered.contains(&sync),
                        "ack {v} before its sync completed"
                    );
                    self.acked_inputs.push(i);
                }
            }
        }

        pub fn step(&mut self, act: &Act) {
            let from = self.h.disk.log.len();
            match act {
                Act::Publish(batch) => {
                    let mut recs = Vec::new();
                    let mut msgs = Vec::new();
                    let mut expect = Vec::new();
                    let input = self.inputs.len();
                    for &(subj, id, pad) in batch {
                        let k = self.pubs.len();
                        let p = Pub {
                            subject: format!("s.{subj}"),
                            id: id.map(|i| format!("id{i}")),
                            payload: format!("p{k}-{}", "x".repeat(pad as usize)).into_bytes(),
                        };
                        msgs.push((p.subject.clone(), p.id.clone(), p.payload.clone()));
                        self.pubs.push(p.clone());
                        if let Some(&seq) = p.id.as_ref().and_then(|i| self.dedup.get(i)) {
                            let orig_input = self.stored_by.get(&seq).copied();
                            expect.push(PendingAck {
                                input,
                                seq,
                                dup: true,
                                orig_input,
                            });
                            continue;
                        }
                        let seq = self.mem.next;
                        let r = Rec::Msg(seq, k);
                        self.mem.apply(&r);
                        recs.push(r);
                        self.stored_by.insert(seq, input);
                        if let Some(id) = p.id {
                            self.dedup.insert(id, seq);
                        }
                        let evicted = self.mem.enforce(self.max);
                        if !evicted.is_empty() {
                            recs.push(Rec::Del(evicted));
                        }
                        expect.push(PendingAck {
                            input,
                            seq,
                            dup: false,
                            orig_input: None,
                        });
                    }
                    let ns = self.h.publish_batch(&msgs);
                    for (n, e) in ns.into_iter().zip(expect) {
                        self.acks.insert(n, e);
                    }
                    self.input(from, recs, None);
                }
                Act::Delete(x) => {
                    let seq = 1 + *x as u64 % self.mem.next;
                    let r = self
                        .h
                        .request("$JS.API.STREAM.MSG.DELETE.S", &format!("{{\"seq\":{seq}}}"));
                    let mut recs = Vec::new();
                    if self.mem.msgs.remove(&seq).is_some() {
                        assert_eq!(r["success"], true, "{r}");
                        recs.push(Rec::Del(vec![seq]));
                    } else {
                        assert!(r.get("error").is_some(), "delete of {seq} absent: {r}");
                    }
                    self.input(from, recs, None);
                }
                Act::Purge { filter, seq, keep } => {
                    let upto = seq.map(|s| 1 + s as u64 % (self.mem.next + 3));
                    let mut body = serde_json::Map::new();
                    if let Some(f) = filter {
                        body.insert("filter".into(), format!("s.{f}").into());
                    }
                    if let Some(u) = upto {
                        body.insert("seq".into(), u.into());
                    }
                    if let Some(k) = keep {
                        body.insert("keep".into(), (*k as u64).into());
                    }
                    let r = self.h.request(
                        "$JS.API.STREAM.PURGE.S",
                        &serde_json::Value::Object(body).to_string(),
                    );
                    // The model of MsgStore::purge: keep 0 means no keep.
                    let keep = keep.filter(|k| *k > 0).map(|k| k as usize);
                    let fsub = filter.map(|f| format!("s.{f}"));
                    let matching: Vec<u64> = self
                        .mem
                        .msgs
                        .iter()
                        .filter(|(s, k)| {
                            upto.is_none_or(|u| **s < u)
                                && fsub.as_ref().is_none_or(|f| *f == self.pubs[**k].subject)
                        })
                        .map(|(s, _)| *s)
                        .collect();
                    let cut = matching.len().saturating_sub(keep.unwrap_or(0));
                    let gone = matching[..cut].to_vec();
                    assert_eq!(r["purged"].as_u64(), Some(gone.len() as u64), "{r}");
                    let mut recs = Vec::new();
                    if !gone.is_empty() {
                        recs.push(Rec::Del(gone.clone()));
                    }
                    let before = self.mem.next;
                    self.mem.apply(&Rec::Del(gone));
                    if filter.is_none() && keep.is_none() {
                        self.mem.next = self.mem.next.max(upto.unwrap_or(0));
                    }
                    if self.mem.next != before {
                        recs.push(Rec::Next(self.mem.next));
                    }
                    self.input(from, recs, None);
                }
                Act::MaxMsgs(m) => {
                    let r = self.h.request(
                        "$JS.API.STREAM.UPDATE.S",
                        &format!(
                            r#"{{"name":"S","subjects":["s.>"],"storage":"file","max_msgs":{m}}}"#
                        ),
                    );
                    assert!(r.get("error").is_none(), "{r}");
                    self.max = *m;
                    let evicted = self.mem.enforce(*m);
                    let recs = if evicted.is_empty() {
                        vec![]
                    } else {
                        vec![Rec::Del(evicted)]
                    };
                    self.input(from, recs, Some(*m));
                }
                Act::Perform(n) => {
                    self.h.perform(*n as usize);
                }
                Act::Deliver(n) => {
                    self.h.deliver(*n as usize);
                    self.check_arrivals();
                }
                Act::Crash(torn) => {
                    self.check_arrivals();
                    let candidates = self.after_crash(torn.is_some());
                    self.h.crash_restart(*torn);
                    self.recovered(candidates);
                }
                Act::Restart => {
                    self.h.settle();
                    self.check_arrivals();
                    assert!(self.acks.is_empty(), "acks still missing after settling");
                    let mut want = self.mem.clone();
                    want.enforce(self.max);
                    let max = self.max;
                    self.h.restart();
                    self.recovered(vec![(want, max)]);
                }
            }
        }

        /// The states recovery may produce after a crash now.
        fn after_crash(&self, torn: bool) -> Vec<(State, i64)> {
            let ok = &self.h.disk.performed_ok;
            let last_synced = self
                .inputs
                .iter()
                .rposition(|i| i.sync.is_some_and(|s| ok.contains(&s)));
            let mut durable = self.base.clone();
            let mut extra = Vec::new();
            for (n, inp) in self.inputs.iter().enumerate() {
                if !inp.write.is_some_and(|w| ok.contains(&w)) {
                    continue;
                }
                if last_synced.is_some_and(|d| n <= d) {
                    inp.recs.iter().for_each(|r| durable.apply(r));
                } else {
                    extra.extend(inp.recs.iter().cloned());
                }
            }
            // Acked means durable.
            for &i in &self.acked_inputs {
                assert!(
                    last_synced.is_some_and(|d| i <= d),
                    "input {i} acked but not durable"
                );
            }
            let max = self
                .inputs
                .iter()
                .rev()
                .find_map(|i| i.rename.filter(|(id, _)| ok.contains(id)).map(|(_, m)| m))
                .unwrap_or(self.base_max);
            let upto = if torn { extra.len() } else { 0 };
            (0..=upto)
                .map(|j| {
                    let mut s = durable.clone();
                    extra[..j].iter().for_each(|r| s.apply(r));
                    s.enforce(max);
                    (s, max)
                })
                .collect()
        }

        /// Check the recovered stream against the candidates and adopt it.
        fn recovered(&mut self, candidates: Vec<(State, i64)>) {
            // Gets of uncached messages wait for Reads: let the disk run (recovery
            // left nothing else queued).
            let auto = std::mem::replace(&mut self.h.auto, true);
            let got = self.h.messages("S");
            let last = self.h.state("S")["last_seq"].as_u64().unwrap();
            self.h.auto = auto;
            let mut seen_ids = BTreeSet::new();
            let mut state = State {
                msgs: BTreeMap::new(),
                next: last + 1,
            };
            for (seq, m) in &got {
                let text = String::from_utf8_lossy(&m.data);
                let k: usize = text[1..text.find('-').unwrap()].parse().unwrap();
                let p = &self.pubs[k];
                assert_eq!((&m.subject, &m.data), (&p.subject, &p.payload), "seq {seq}");
                let hdrs =
                    p.id.as_ref()
                        .map(|id| format!("NATS/1.0\r\nNats-Msg-Id: {id}\r\n\r\n").into_bytes())
                        .unwrap_or_default();
                assert_eq!(m.hdrs, hdrs, "seq {seq}");
                if let Some(id) = &p.id {
                    assert!(seen_ids.insert(id.clone()), "Nats-Msg-Id {id} stored twice");
                }
                state.msgs.insert(*seq, k);
            }
            let Some((_, max)) = candidates.iter().find(|(c, _)| *c == state) else {
                panic!("recovered {state:?}\nnot among the possible states {candidates:#?}");
            };
            self.base_max = *max;
            self.max = *max;
            self.base = state.clone();
            self.mem = state;
            self.dedup = self
                .mem
                .msgs
                .iter()
                .filter_map(|(s, k)| Some((self.pubs[*k].id.clone()?, *s)))
                .collect();
            self.inputs.clear();
            self.stored_by.clear();
            self.acks.clear();
            self.acked_inputs.clear();
        }
    }
}

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random publishes, deletes, purges, limit updates, partial storage progress,
    /// crashes (with and without torn tails) and restarts: after every restart the
    /// stream is exactly what the durable log allows (see the model above).
    #[test]
    fn crash_recovery_matches_the_model(acts in proptest::collection::vec(model::act(), 1..40)) {
        let mut run = model::Run::new(7);
        for a in &acts {
            run.step(a);
        }
        run.step(&model::Act::Crash(Some(u64::MAX / 3)));
    }

    /// The same with a message cache of a few bytes and an index after every
    /// flush: after every restart the stream's messages are read back from the
    /// log, and crashes land around index writes.
    #[test]
    fn crash_recovery_with_a_tiny_cache_and_frequent_index(acts in proptest::collection::vec(model::act(), 1..40)) {
        let mut run = model::Run::with_config(tiny_cache_config(), 7);
        for a in &acts {
            run.step(a);
        }
        run.step(&model::Act::Crash(Some(u64::MAX / 3)));
    }
}

/// A harness config whose streams cache only 64 bytes of headers and payloads
/// and write their index after every flush.
fn tiny_cache_config() -> natrium_engine::Config {
    natrium_engine::Config {
        jetstream_cache_bytes: 64,
        jetstream_index_flushes: 1,
        ..support::js::js_config()
    }
}

/// With an index, recovery reads only the log after its position: far fewer
/// bytes than the log holds, from the index's offset; the stream is the same.
#[test]
fn recovery_with_an_index_reads_only_the_tail() {
    const SEG: &str = "streams/S/log/0000000001.seg";
    let cfg = natrium_engine::Config {
        jetstream_index_flushes: 10,
        ..support::js::js_config()
    };
    let mut h = JsHarness::with_disk(cfg, 1, SimDisk::new());
    h.create_stream("S", STREAM);
    for b in 0..25 {
        let mut batch = msgs(4, b * 4);
        batch[0].1 = Some(format!("id-{b}"));
        h.publish_batch(&batch);
    }
    h.request("$JS.API.STREAM.MSG.DELETE.S", r#"{"seq":7}"#);
    h.publish_batch(&msgs(1, 500));
    assert!(
        h.disk.file("streams/S/index").is_some(),
        "an index was written"
    );
    let before = h.messages("S");
    let log_len = h.disk.file(SEG).unwrap().len() as u64;
    h.disk.read_bytes.clear();
    let from = h.disk.log.len();
    h.restart();
    let seg_read = h.disk.read_bytes.get(SEG).copied().unwrap_or(0);
    assert!(
        seg_read * 3 < log_len,
        "read {seg_read} of {log_len} log bytes"
    );
    let offsets: Vec<u64> = msg_reads(&h, from).iter().map(|r| r.1).collect();
    assert!(
        offsets[0] > 0,
        "the tail is read from the index's offset: {offsets:?}"
    );
    assert_eq!(h.messages("S"), before);
    // Dedup from the index's metadata; sequences continue.
    let n = h.publish_batch(&[("s.0".into(), Some("id-3".into()), b"again".to_vec())])[0];
    let r: serde_json::Value = serde_json::from_slice(&h.take_reply(n).unwrap()).unwrap();
    assert_eq!(
        (r["seq"].as_u64(), r["duplicate"].as_bool()),
        (Some(13), Some(true))
    );
    let n = h.publish("s.1", b"next");
    assert_eq!(ack_seq(&h.take_reply(n).unwrap()), 102);
    // A damaged index is no index: the whole log is scanned, nothing is lost.
    h.disk.flip_byte("streams/S/index", 30, 0x40);
    h.disk.read_bytes.clear();
    h.restart();
    assert!(h.disk.read_bytes.get(SEG).copied().unwrap_or(0) >= log_len);
    assert_eq!(h.messages("S").len(), before.len() + 1);
}

/// A crash at every point around an index write (its Sync, the temporary
/// file's write, truncate, sync, the rename) recovers every acked message.
#[test]
fn crash_around_index_writes() {
    for stop in 0..12 {
        let mut h = JsHarness::with_disk(tiny_cache_config(), 1, SimDisk::new());
        h.create_stream("S", STREAM);
        h.publish_batch(&msgs(5, 0));
        let before = h.messages("S");
        h.arrived.clear();
        h.auto = false;
        h.publish_batch(&msgs(3, 5));
        // Perform and deliver one operation at a time (the index ops follow
        // the Sync's completion), then lose power.
        for _ in 0..stop {
            h.perform(1);
            h.deliver(usize::MAX);
        }
        let acked = h.arrived.len();
        h.crash_restart(Some(u64::MAX / 3));
        h.auto = true;
        let after = h.messages("S");
        let n = after.len();
        // Unacked records may survive in part (a torn tail), in order.
        assert!((5..=8).contains(&n), "stop {stop}: {n} messages");
        let want = msgs(8, 0);
        for (seq, m) in &after {
            assert_eq!(m.data, want[*seq as usize - 1].2, "stop {stop}");
        }
        assert!(acked == 0 || n == 8, "stop {stop}: acked messages lost");
        for (seq, m) in &before {
            assert_eq!(after.get(seq), Some(m), "stop {stop}");
        }
        let n = h.publish("s.x", b"later");
        assert_eq!(ack_seq(&h.take_reply(n).unwrap()), after.len() as u64 + 1);
    }
}

const DIRECT: &str = r#"{"name":"S","subjects":["s.>"],"storage":"file","allow_direct":true}"#;

/// Reads of message records emitted since `from` (the disk's log index).
fn msg_reads(h: &JsHarness, from: usize) -> Vec<(String, u64, u64)> {
    h.disk.log[from..]
        .iter()
        .filter_map(|(_, op)| match op {
            StorageOp::Read { file, offset, len } if file.ends_with(".seg") => {
                Some((file.clone(), *offset, *len))
            }
            _ => None,
        })
        .collect()
}

/// With a cache far smaller than the stream, MSG.GET and DIRECT.GET of old
/// messages are served by reading their records, before and after a restart;
/// the newest message is served from the cache.
#[test]
fn gets_beyond_the_cache_read_the_log() {
    let mut h = JsHarness::with_disk(tiny_cache_config(), 1, SimDisk::new());
    h.create_stream("S", DIRECT);
    let batch: Vec<_> = (0..20)
        .map(|k| {
            let id = (k % 2 == 0).then(|| format!("id-{k}"));
            (
                format!("s.{}", k % 3),
                id,
                format!("payload-{k:02}-{}", "x".repeat(20)).into_bytes(),
            )
        })
        .collect();
    h.publish_batch(&batch);
    let mut ns = h.publish_batch(&msgs(1, 100));
    ack_seq(&h.take_reply(ns.remove(0)).unwrap());
    for round in 0..2 {
        let from = h.disk.log.len();
        let got = h.msg_get("S", 21).expect("newest");
        assert_eq!(got.data, b"p100");
        // Before the restart the newest is cached. (After it, it is cached only
        // if recovery scanned it: the index is not rewritten on every flush.)
        if round == 0 {
            assert!(msg_reads(&h, from).is_empty());
        }
        for k in [0usize, 1, 7, 19] {
            let seq = k as u64 + 1;
            let from = h.disk.log.len();
            let got = h.msg_get("S", seq).expect("stored");
            assert_eq!(
                (got.seq, got.data.clone()),
                (seq, batch[k].2.clone()),
                "round {round}"
            );
            assert_eq!(got.subject, batch[k].0);
            let reads = msg_reads(&h, from);
            assert_eq!(reads.len(), 1, "one read of the record: {reads:?}");
            assert!(reads[0].2 < 200, "only the record is read: {reads:?}");
            // Evict it again by reading two others.
            h.msg_get("S", 3);
            h.msg_get("S", 5);
            let from = h.disk.log.len();
            let (hdrs, payload) = h.direct_get("S", &format!("{{\"seq\":{seq}}}"));
            assert_eq!(payload, batch[k].2, "direct get {seq}");
            let hdrs = String::from_utf8_lossy(&hdrs).into_owned();
            assert!(
                hdrs.contains(&format!("Nats-Sequence: {seq}\r\n")),
                "{hdrs}"
            );
            if let Some(id) = &batch[k].1 {
                assert!(hdrs.contains(&format!("Nats-Msg-Id: {id}")), "{hdrs}");
            }
            assert_eq!(msg_reads(&h, from).len(), 1, "served by a read");
        }
        // Counts and bytes come from the metadata alone.
        let st = h.state("S");
        assert_eq!(st["messages"], 21);
        if round == 0 {
            h.crash_restart(None);
        }
    }
    // Dedup survives without the payloads in memory.
    let n = h.publish_batch(&[("s.0".into(), Some("id-4".into()), b"again".to_vec())])[0];
    let r: serde_json::Value = serde_json::from_slice(&h.take_reply(n).unwrap()).unwrap();
    assert_eq!(
        (r["seq"].as_u64(), r["duplicate"].as_bool()),
        (Some(5), Some(true))
    );
}

/// A read that fails answers an error (MSG.GET: 10077; DIRECT.GET: a 503
/// status); a record that does not decode answers not found; the server keeps
/// serving.
#[test]
fn failed_message_read_answers_an_error() {
    let mut h = JsHarness::with_disk(tiny_cache_config(), 1, SimDisk::new());
    h.create_stream("S", DIRECT);
    let batch: Vec<_> = (0..10)
        .map(|k| {
            (
                format!("s.{k}"),
                None,
                format!("p{k}-{}", "x".repeat(30)).into_bytes(),
            )
        })
        .collect();
    h.publish_batch(&batch);
    h.disk.fail = Some(Box::new(|_, op| matches!(op, StorageOp::Read { .. })));
    let r = h.request("$JS.API.STREAM.MSG.GET.S", r#"{"seq":2}"#);
    assert_eq!(r["error"]["err_code"], 10077, "{r}");
    let (hdrs, payload) = h.direct_get("S", r#"{"seq":2}"#);
    assert!(payload.is_empty());
    assert!(
        String::from_utf8_lossy(&hdrs).starts_with("NATS/1.0 503"),
        "{hdrs:?}"
    );
    h.disk.fail = None;
    // Bit rot in the record: its checksum fails.
    const SEG: &str = "streams/S/log/0000000001.seg";
    let at = h
        .disk
        .file(SEG)
        .unwrap()
        .windows(3)
        .position(|w| w == b"p4-")
        .expect("record 5");
    h.disk.flip_byte(SEG, at, 0x01);
    let r = h.request("$JS.API.STREAM.MSG.GET.S", r#"{"seq":5}"#);
    assert_eq!(r["error"]["err_code"], 10037, "{r}");
    assert_eq!(h.msg_get("S", 2).unwrap().data, batch[1].2);
    let n = h.publish("s.x", b"later");
    assert_eq!(ack_seq(&h.take_reply(n).unwrap()), 11);
    assert_eq!(h.msg_get("S", 11).unwrap().data, b"later");
}

/// The same seed and inputs give byte-identical storage operations and client
/// output.
#[test]
fn deterministic_storage_and_output() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let acts = proptest::collection::vec(model::act(), 60..61)
        .new_tree(&mut runner)
        .unwrap()
        .current();
    let go = || {
        let mut run = model::Run::new(3);
        for a in &acts {
            run.step(a);
        }
        run.step(&model::Act::Restart);
        (format!("{:?}", run.h.disk.log), run.h.wire.clone())
    };
    let (log1, wire1) = go();
    let (log2, wire2) = go();
    assert!(log1.len() > 1000 && wire1.len() > 1000);
    assert_eq!(log1, log2);
    assert_eq!(wire1, wire2);
}

/// A segment that cannot be read at recovery keeps its stream out of service:
/// nothing is appended over it, and the name cannot be reused until an operator
/// looks.
#[test]
fn unreadable_segment_keeps_the_stream_out_of_service() {
    const SEG: &str = "streams/S/log/0000000001.seg";
    let mut h = JsHarness::new(1);
    h.create_stream("S", STREAM);
    h.publish_batch(&msgs(5, 0));
    h.disk.fail = Some(Box::new(
        |_, op| matches!(op, StorageOp::Read { file, .. } if file == SEG),
    ));
    let before = h.disk.durable_file(SEG).unwrap().to_vec();
    h.restart();
    h.disk.fail = None;
    let info = h.request("$JS.API.STREAM.INFO.S", "");
    assert_eq!(info["error"]["err_code"], 10059, "not served: {info}");
    let create = h.request("$JS.API.STREAM.CREATE.S", STREAM);
    assert_eq!(create["error"]["err_code"], 10049, "name kept: {create}");
    h.settle();
    assert_eq!(
        h.disk.durable_file(SEG).unwrap(),
        &before[..],
        "files untouched"
    );
}

/// A stalled disk does not make the engine queue without end: past 1024 log
/// syncs in flight, publishes to file streams are refused with 10023, and they
/// are accepted again once the disk catches up. Nothing acked is lost.
#[test]
fn a_stalled_disk_bounds_what_is_held() {
    let mut h = JsHarness::new(1);
    h.create_stream("S", STREAM);
    h.auto = false;
    let mut replies = Vec::new();
    for i in 0..1100 {
        replies.push(h.publish(&format!("s.{i}"), b"x"));
    }
    // The first 1024 wait for their syncs; the rest were refused at once.
    let refused: Vec<serde_json::Value> = replies[1024..]
        .iter()
        .map(|n| {
            serde_json::from_slice(&h.take_reply(*n).expect("refusal arrives at once")).unwrap()
        })
        .collect();
    assert!(
        refused.iter().all(|v| v["error"]["err_code"] == 10023),
        "{:?}",
        refused[0]
    );
    assert!(
        replies[..1024].iter().all(|n| h.take_reply(*n).is_none()),
        "no ack before its sync"
    );
    h.auto = true;
    h.settle();
    for n in &replies[..1024] {
        let v: serde_json::Value =
            serde_json::from_slice(&h.take_reply(*n).expect("ack after sync")).unwrap();
        assert!(v.get("error").is_none(), "{v}");
    }
    let n = h.publish("s.after", b"y");
    assert!(h
        .take_reply(n)
        .is_some_and(|r| !r.windows(7).any(|w| w == b"\"error\"")));
    assert_eq!(h.messages("S").len(), 1025);
}
