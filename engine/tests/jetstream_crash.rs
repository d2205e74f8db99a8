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

use std::collections::BTreeMap;

use natrium_engine::storage::StorageOp;
use support::js::{GotMsg, JsHarness};

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
    // Once the disk works again, later publishes are stored and acked.
    h.disk.fail = None;
    let n = h.publish("s.x", b"later");
    let seq = ack_seq(&h.take_reply(n).unwrap());
    h.crash_restart(None);
    assert_eq!(payloads(&h.messages("S")), vec![(seq, "later".to_string())]);
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
