//! A stream's messages as the engine holds them: sequence order, per-subject
//! counts, byte accounting and limit enforcement. Persistence is layered on top
//! (see `filestore`); this type never touches storage.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::subject::subject_matches;

/// One stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMsg {
    pub seq: u64,
    pub subject: Bytes,
    /// The header block (`NATS/1.0\r\n…\r\n\r\n`), empty when there is none.
    pub headers: Bytes,
    pub data: Bytes,
    /// Unix time in nanoseconds when it was stored.
    pub ts: i64,
}

/// How bytes are counted, as nats-server counts them for each storage type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accounting {
    /// 16 bytes of overhead per message (sequence and timestamp).
    Memory,
    /// The record size of nats-server's file store: 30 bytes of overhead, plus 4
    /// when there are headers.
    File,
}

impl Accounting {
    /// The size one message counts for.
    pub fn size(self, subject: &[u8], headers: &[u8], data: &[u8]) -> u64 {
        let body = (subject.len() + headers.len() + data.len()) as u64;
        match self {
            Accounting::Memory => body + 16,
            Accounting::File if headers.is_empty() => body + 30,
            Accounting::File => body + 34,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SubjectState {
    count: u64,
    last: u64,
}

/// The limits a store enforces on insert (and, for max_age, on expiry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// -1 = unlimited, as in the stream config.
    pub max_msgs: i64,
    pub max_bytes: i64,
    pub max_msgs_per_subject: i64,
    /// Nanoseconds; 0 = unlimited.
    pub max_age: i64,
}

impl Limits {
    pub const NONE: Limits = Limits {
        max_msgs: -1,
        max_bytes: -1,
        max_msgs_per_subject: -1,
        max_age: 0,
    };
}

/// The messages of one stream.
#[derive(Clone, Debug)]
pub struct MsgStore {
    accounting: Accounting,
    msgs: BTreeMap<u64, StoredMsg>,
    subjects: BTreeMap<Bytes, SubjectState>,
    /// Sequence the next message gets.
    next_seq: u64,
    bytes: u64,
    /// Timestamp of the last message ever stored (kept after it is removed).
    last_ts: i64,
    /// A full purge ran. Until then a stream that never stored anything
    /// reports first_seq 0, afterwards last_seq + 1 (as nats-server 2.9.10).
    purged: bool,
}

/// What a removal did, so persistence can record it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub seqs: Vec<u64>,
}

impl MsgStore {
    pub fn new(accounting: Accounting, first_seq: u64) -> MsgStore {
        MsgStore {
            accounting,
            msgs: BTreeMap::new(),
            subjects: BTreeMap::new(),
            next_seq: first_seq.max(1),
            bytes: 0,
            last_ts: 0,
            purged: false,
        }
    }

    pub fn accounting(&self) -> Accounting {
        self.accounting
    }

    /// Number of messages held.
    pub fn len(&self) -> u64 {
        self.msgs.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The first sequence still held, or (when empty) the next one to be assigned.
    pub fn first_seq(&self) -> u64 {
        self.msgs.keys().next().copied().unwrap_or(self.next_seq)
    }

    /// first_seq as StreamInfo reports it: 0 for a stream that never held a
    /// message (nor was purged), as nats-server's stores do.
    pub fn reported_first_seq(&self) -> u64 {
        if self.msgs.is_empty() && self.next_seq == 1 && !self.purged {
            0
        } else {
            self.first_seq()
        }
    }

    /// The last sequence ever assigned (0 before the first message).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    pub fn first_ts(&self) -> i64 {
        self.msgs.values().next().map_or(0, |m| m.ts)
    }

    pub fn last_ts(&self) -> i64 {
        self.last_ts
    }

    /// Number of distinct subjects held.
    pub fn num_subjects(&self) -> u64 {
        self.subjects.len() as u64
    }

    /// Sequences between first and last that are gone (interior deletes).
    pub fn num_deleted(&self) -> u64 {
        if self.msgs.is_empty() {
            return 0;
        }
        (self.last_seq() - self.first_seq() + 1) - self.len()
    }

    /// Messages held per subject, for subjects matching `filter`.
    pub fn subject_counts(&self, filter: &[u8]) -> Vec<(Bytes, u64)> {
        self.subjects
            .iter()
            .filter(|(s, _)| subject_matches(filter, s))
            .map(|(s, st)| (s.clone(), st.count))
            .collect()
    }

    /// The size a message would count for in this store.
    pub fn size_of(&self, subject: &[u8], headers: &[u8], data: &[u8]) -> u64 {
        self.accounting.size(subject, headers, data)
    }

    /// Messages held on exactly this subject.
    pub fn count_on(&self, subject: &[u8]) -> u64 {
        self.subjects.get(subject).map_or(0, |s| s.count)
    }

    /// The last sequence held on exactly this subject (0 if none).
    pub fn last_seq_on(&self, subject: &[u8]) -> u64 {
        self.subjects.get(subject).map_or(0, |s| s.last)
    }

    /// Store a message under the next sequence.
    pub fn append(&mut self, subject: Bytes, headers: Bytes, data: Bytes, ts: i64) -> u64 {
        let seq = self.next_seq;
        self.insert(StoredMsg {
            seq,
            subject,
            headers,
            data,
            ts,
        });
        seq
    }

    /// Put back a message with its own sequence (recovery). Sequences only grow.
    pub fn insert(&mut self, msg: StoredMsg) {
        if msg.seq < self.next_seq && self.msgs.contains_key(&msg.seq) {
            return;
        }
        self.next_seq = self.next_seq.max(msg.seq + 1);
        self.last_ts = self.last_ts.max(msg.ts);
        self.bytes += self.accounting.size(&msg.subject, &msg.headers, &msg.data);
        let st = self.subjects.entry(msg.subject.clone()).or_default();
        st.count += 1;
        st.last = st.last.max(msg.seq);
        self.msgs.insert(msg.seq, msg);
    }

    /// Recovery: sequences before `seq` were assigned and removed.
    pub fn skip_to(&mut self, seq: u64) {
        self.next_seq = self.next_seq.max(seq);
    }

    pub fn get(&self, seq: u64) -> Option<&StoredMsg> {
        self.msgs.get(&seq)
    }

    /// The first message at or after `seq` whose subject matches `filter`.
    pub fn next_matching(&self, seq: u64, filter: &[u8]) -> Option<&StoredMsg> {
        self.msgs
            .range(seq..)
            .map(|(_, m)| m)
            .find(|m| subject_matches(filter, &m.subject))
    }

    /// The last message whose subject matches `filter`.
    pub fn last_matching(&self, filter: &[u8]) -> Option<&StoredMsg> {
        let literal = !filter.split(|&b| b == b'.').any(|t| t == b"*" || t == b">");
        if literal {
            let last = self.subjects.get(filter)?.last;
            return self.msgs.get(&last);
        }
        self.msgs
            .values()
            .rev()
            .find(|m| subject_matches(filter, &m.subject))
    }

    /// Remove one message.
    pub fn remove(&mut self, seq: u64) -> Option<StoredMsg> {
        let msg = self.msgs.remove(&seq)?;
        self.bytes -= self.accounting.size(&msg.subject, &msg.headers, &msg.data);
        if let Some(st) = self.subjects.get_mut(&msg.subject) {
            st.count -= 1;
            if st.count == 0 {
                self.subjects.remove(&msg.subject);
            } else if st.last == seq {
                st.last = self
                    .msgs
                    .range(..seq)
                    .rev()
                    .find(|(_, m)| m.subject == msg.subject)
                    .map_or(0, |(s, _)| *s);
            }
        }
        Some(msg)
    }

    /// Purge (row D1–D4): messages matching `filter` (all when `None`), below
    /// `upto` when given, keeping the newest `keep` when given.
    pub fn purge(
        &mut self,
        filter: Option<&[u8]>,
        upto: Option<u64>,
        keep: Option<u64>,
    ) -> Removed {
        let matching: Vec<u64> = self
            .msgs
            .range(..upto.unwrap_or(u64::MAX))
            .filter(|(_, m)| filter.is_none_or(|f| subject_matches(f, &m.subject)))
            .map(|(s, _)| *s)
            .collect();
        let cut = match keep {
            Some(k) => matching.len().saturating_sub(k as usize),
            None => matching.len(),
        };
        let seqs: Vec<u64> = matching[..cut].to_vec();
        for &s in &seqs {
            self.remove(s);
        }
        if filter.is_none() && keep.is_none() {
            // A full purge moves first_seq past everything (or up to `upto`).
            self.next_seq = self.next_seq.max(upto.unwrap_or(0));
            self.purged = true;
        }
        Removed { seqs }
    }

    /// Enforce max_msgs, max_bytes and max_msgs_per_subject by dropping the oldest
    /// (discard old), and max_age against `now`. Returns what was removed.
    pub fn enforce(&mut self, limits: &Limits, now: i64, just_stored: Option<&[u8]>) -> Removed {
        let mut removed = Vec::new();
        if limits.max_msgs_per_subject > 0 {
            if let Some(subject) = just_stored {
                while self.count_on(subject) > limits.max_msgs_per_subject as u64 {
                    let Some(seq) = self
                        .msgs
                        .values()
                        .find(|m| &m.subject[..] == subject)
                        .map(|m| m.seq)
                    else {
                        break;
                    };
                    self.remove(seq);
                    removed.push(seq);
                }
            }
        }
        while limits.max_msgs >= 0 && self.len() > limits.max_msgs as u64 {
            let Some(seq) = self.msgs.keys().next().copied() else {
                break;
            };
            self.remove(seq);
            removed.push(seq);
        }
        while limits.max_bytes >= 0 && self.bytes > limits.max_bytes as u64 {
            let Some(seq) = self.msgs.keys().next().copied() else {
                break;
            };
            self.remove(seq);
            removed.push(seq);
        }
        if limits.max_age > 0 {
            let cutoff = now.saturating_sub(limits.max_age);
            while let Some(m) = self.msgs.values().next() {
                if m.ts > cutoff {
                    break;
                }
                let seq = m.seq;
                self.remove(seq);
                removed.push(seq);
            }
        }
        Removed { seqs: removed }
    }

    /// When the oldest message expires under `max_age` (nanoseconds), if any.
    pub fn next_expiry(&self, max_age: i64) -> Option<i64> {
        if max_age <= 0 {
            return None;
        }
        self.msgs
            .values()
            .next()
            .map(|m| m.ts.saturating_add(max_age))
    }

    /// All messages, in sequence order.
    pub fn iter(&self) -> impl Iterator<Item = &StoredMsg> {
        self.msgs.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn accounting_matches_nats_server() {
        assert_eq!(
            Accounting::File.size(b"events.a", b"", b"12345"),
            8 + 5 + 30
        );
        assert_eq!(
            Accounting::File.size(b"e", b"NATS/1.0\r\n\r\n", b"x"),
            1 + 12 + 1 + 34
        );
        assert_eq!(Accounting::Memory.size(b"e", b"", b"xy"), 1 + 2 + 16);
    }

    #[test]
    fn reported_first_seq_of_a_fresh_stream_is_zero() {
        // nats-server 2.9.10: 0 until something is stored or purged.
        let mut s = MsgStore::new(Accounting::File, 1);
        assert_eq!((s.reported_first_seq(), s.last_seq()), (0, 0));
        s.purge(None, None, None);
        assert_eq!((s.reported_first_seq(), s.last_seq()), (1, 0));
        let mut s = MsgStore::new(Accounting::Memory, 1);
        s.append(b("a"), Bytes::new(), b("x"), 1);
        assert_eq!(s.reported_first_seq(), 1);
        s.purge(None, None, None);
        assert_eq!((s.reported_first_seq(), s.last_seq()), (2, 1));
    }

    #[test]
    fn limits_drop_the_oldest() {
        let mut s = MsgStore::new(Accounting::File, 1);
        for i in 0..12 {
            s.append(
                b(&format!("events.{}", i % 3)),
                Bytes::new(),
                b("payload"),
                i,
            );
        }
        let limits = Limits {
            max_msgs: 10,
            ..Limits::NONE
        };
        assert_eq!(s.enforce(&limits, 100, None).seqs, vec![1, 2]);
        assert_eq!((s.len(), s.first_seq(), s.last_seq()), (10, 3, 12));
        let per = Limits {
            max_msgs_per_subject: 1,
            ..Limits::NONE
        };
        s.append(b("events.0"), Bytes::new(), b("x"), 50);
        let r = s.enforce(&per, 100, Some(b"events.0"));
        assert_eq!(r.seqs, vec![4, 7, 10]);
        assert_eq!(s.count_on(b"events.0"), 1);
        assert_eq!(s.last_seq_on(b"events.0"), 13);
        let age = Limits {
            max_age: 10,
            ..Limits::NONE
        };
        s.enforce(&age, 58, None);
        assert_eq!(
            s.len(),
            1,
            "only the message at t=50 is younger than 10ns at t=58"
        );
    }

    #[test]
    fn purge_forms() {
        let mut s = MsgStore::new(Accounting::Memory, 1);
        for i in 0..10 {
            s.append(
                b(if i % 2 == 0 { "a" } else { "b" }),
                Bytes::new(),
                b("x"),
                i,
            );
        }
        assert_eq!(s.purge(Some(b"a"), None, Some(2)).seqs, vec![1, 3, 5]);
        assert_eq!(s.purge(None, Some(6), None).seqs, vec![2, 4]);
        assert_eq!(s.first_seq(), 6);
        assert_eq!(s.purge(None, None, None).seqs.len(), 5);
        assert_eq!((s.first_seq(), s.last_seq(), s.len()), (11, 10, 0));
    }

    #[derive(Clone, Debug)]
    enum Step {
        Append(u8),
        Remove(u64),
        Purge(Option<u8>, Option<u64>, Option<u64>),
        Limit(i64, i64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0u8..4).prop_map(Step::Append),
            1 => (1u64..40).prop_map(Step::Remove),
            1 => (proptest::option::of(0u8..4), proptest::option::of(1u64..40), proptest::option::of(0u64..5))
                .prop_map(|(f, s, k)| Step::Purge(f, if k.is_some() { None } else { s }, k)),
            1 => (-1i64..8, -1i64..400).prop_map(|(m, b)| Step::Limit(m, b)),
        ]
    }

    proptest! {
        /// The store agrees with a plain map from sequence to message.
        #[test]
        fn store_matches_model(steps in proptest::collection::vec(step(), 1..60)) {
            let mut s = MsgStore::new(Accounting::File, 1);
            let mut model: BTreeMap<u64, String> = BTreeMap::new();
            let mut next = 1u64;
            for st in steps {
                match st {
                    Step::Append(k) => {
                        let subj = format!("s.{k}");
                        let seq = s.append(b(&subj), Bytes::new(), b("data"), next as i64);
                        prop_assert_eq!(seq, next);
                        model.insert(next, subj);
                        next += 1;
                    }
                    Step::Remove(seq) => {
                        prop_assert_eq!(s.remove(seq).is_some(), model.remove(&seq).is_some());
                    }
                    Step::Purge(f, upto, keep) => {
                        let fs = f.map(|k| format!("s.{k}"));
                        let mut hit: Vec<u64> = model.iter()
                            .filter(|(q, subj)| upto.is_none_or(|u| **q < u) && fs.as_ref().is_none_or(|f| f == *subj))
                            .map(|(q, _)| *q).collect();
                        if let Some(k) = keep { let n = hit.len().saturating_sub(k as usize); hit.truncate(n); }
                        let got = s.purge(fs.as_deref().map(str::as_bytes), upto, keep).seqs;
                        prop_assert_eq!(&got, &hit);
                        for q in hit { model.remove(&q); }
                        // A purge up to a sequence past the end moves the next sequence there.
                        if fs.is_none() && keep.is_none() { next = next.max(upto.unwrap_or(0)); }
                    }
                    Step::Limit(m, bytes) => {
                        let limits = Limits { max_msgs: m, max_bytes: bytes, ..Limits::NONE };
                        let removed = s.enforce(&limits, 0, None).seqs;
                        for q in &removed { model.remove(q); }
                        if m >= 0 { prop_assert!(s.len() <= m as u64); }
                        if bytes >= 0 { prop_assert!(s.bytes() <= bytes as u64); }
                    }
                }
                let held: Vec<u64> = s.iter().map(|m| m.seq).collect();
                let want: Vec<u64> = model.keys().copied().collect();
                prop_assert_eq!(held, want);
                let bytes: u64 = model.values().map(|subj| Accounting::File.size(subj.as_bytes(), b"", b"data")).sum();
                prop_assert_eq!(s.bytes(), bytes);
                prop_assert_eq!(s.last_seq(), s.last_seq().max(next - 1));
                for (q, subj) in &model {
                    prop_assert!(s.last_seq_on(subj.as_bytes()) >= *q);
                }
            }
        }
    }
}
