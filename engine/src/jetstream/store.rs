//! A stream's messages as the engine holds them: sequence order, per-subject
//! counts, byte accounting and limit enforcement. Persistence is layered on top
//! (see [`super::persist`]); this type never touches storage.
//!
//! Every message has its metadata in memory ([`MsgMeta`]: sequence, subject,
//! lengths, timestamp, Nats-Msg-Id, and where its record lies in the log), which
//! is all limits, purges, counts and deduplication need. Headers and payload are
//! kept in a cache: unbounded for memory streams (they have nothing else), and
//! bounded by a byte budget for file-backed streams, evicting the entry cached
//! longest ago first. A message not in the cache is read back from its log
//! record (see the service).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::headers;
use crate::subject::subject_matches;

/// Default byte budget of a file-backed stream's message cache.
pub const DEFAULT_CACHE_BYTES: u64 = 32 * 1024 * 1024;

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

/// Where a message's record lies in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    /// Segment number.
    pub seg: u64,
    /// Offset of the record's frame in the segment.
    pub offset: u64,
    /// Length of the whole framed record.
    pub len: u64,
}

/// What is always in memory about a stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgMeta {
    pub seq: u64,
    pub subject: Bytes,
    pub hdr_len: u32,
    pub data_len: u32,
    /// Unix time in nanoseconds when it was stored.
    pub ts: i64,
    /// The Nats-Msg-Id header, when the message has one.
    pub msg_id: Option<Bytes>,
    /// The log record (file-backed streams).
    pub loc: Option<Loc>,
}

/// What a cached entry costs beyond its headers and payload: its two map
/// entries, and the subject and reply that share the payload's allocation.
/// Counted so the budget bounds real memory (a small message costs about
/// twice its size).
pub const CACHE_ENTRY_COST: u64 = 128;

fn cache_cost(headers: &Bytes, data: &Bytes) -> u64 {
    (headers.len() + data.len()) as u64 + CACHE_ENTRY_COST
}

/// Headers and payload of a cached message.
#[derive(Clone, Debug)]
struct Cached {
    headers: Bytes,
    data: Bytes,
    /// Position in the eviction order.
    tick: u64,
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
        self.size_of_lens(
            subject.len() as u64,
            headers.len() as u64,
            data.len() as u64,
        )
    }

    /// The size of a message with these lengths.
    pub fn size_of_lens(self, subject: u64, headers: u64, data: u64) -> u64 {
        let body = subject + headers + data;
        match self {
            Accounting::Memory => body + 16,
            Accounting::File if headers == 0 => body + 30,
            Accounting::File => body + 34,
        }
    }

    fn meta_size(self, m: &MsgMeta) -> u64 {
        self.size_of_lens(m.subject.len() as u64, m.hdr_len as u64, m.data_len as u64)
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
    msgs: BTreeMap<u64, MsgMeta>,
    subjects: BTreeMap<Bytes, SubjectState>,
    /// Sequence the next message gets.
    next_seq: u64,
    bytes: u64,
    /// Timestamp of the last message ever stored (kept after it is removed).
    last_ts: i64,
    /// A full purge ran. Until then a stream that never stored anything
    /// reports first_seq 0, afterwards last_seq + 1 (as nats-server 2.9.10).
    purged: bool,
    /// Headers and payloads held, by sequence.
    cache: BTreeMap<u64, Cached>,
    /// Cached sequences by when they entered the cache (oldest first).
    cache_order: BTreeMap<u64, u64>,
    /// Bytes of headers and payload in the cache.
    cache_bytes: u64,
    /// The cache's byte budget; `None`: everything stays (memory streams).
    cache_budget: Option<u64>,
    tick: u64,
    /// Messages removed so far.
    removals: u64,
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
            cache: BTreeMap::new(),
            cache_order: BTreeMap::new(),
            cache_bytes: 0,
            cache_budget: None,
            tick: 0,
            removals: 0,
        }
    }

    pub fn accounting(&self) -> Accounting {
        self.accounting
    }

    /// Bound the cache of headers and payloads to `budget` bytes (file-backed
    /// streams, whose messages can be read back from the log).
    pub fn set_cache_budget(&mut self, budget: Option<u64>) {
        self.cache_budget = budget;
        self.evict();
    }

    /// Bytes of headers and payload cached.
    pub fn cache_bytes(&self) -> u64 {
        self.cache_bytes
    }

    /// Whether a message's headers and payload are cached.
    pub fn is_cached(&self, seq: u64) -> bool {
        self.cache.contains_key(&seq)
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

    /// Whether a full purge ever ran.
    pub fn purged(&self) -> bool {
        self.purged
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
        self.insert(
            StoredMsg {
                seq,
                subject,
                headers,
                data,
                ts,
            },
            None,
        );
        seq
    }

    /// Put back a message with its own sequence (recovery), its record at
    /// `loc`. Sequences only grow. It enters the cache.
    pub fn insert(&mut self, msg: StoredMsg, loc: Option<Loc>) {
        if msg.seq < self.next_seq && self.msgs.contains_key(&msg.seq) {
            return;
        }
        let meta = MsgMeta {
            seq: msg.seq,
            subject: msg.subject,
            hdr_len: msg.headers.len() as u32,
            data_len: msg.data.len() as u32,
            ts: msg.ts,
            msg_id: headers::get(&msg.headers, "Nats-Msg-Id")
                .filter(|v| !v.is_empty())
                .map(Bytes::copy_from_slice),
            loc,
        };
        self.insert_meta(meta);
        self.cache_put(msg.seq, msg.headers, msg.data);
    }

    /// Put back a message's metadata alone (its payload stays in the log).
    pub fn insert_meta(&mut self, mut meta: MsgMeta) {
        if meta.seq < self.next_seq && self.msgs.contains_key(&meta.seq) {
            return;
        }
        // One allocation per distinct subject, shared by its messages. The
        // subject handed in may be a slice of the whole published message, which
        // would otherwise keep an evicted payload alive.
        meta.subject = match self.subjects.get_key_value(&meta.subject[..]) {
            Some((k, _)) => k.clone(),
            None => Bytes::copy_from_slice(&meta.subject),
        };
        self.next_seq = self.next_seq.max(meta.seq.saturating_add(1));
        self.last_ts = self.last_ts.max(meta.ts);
        self.bytes += self.accounting.meta_size(&meta);
        let st = self.subjects.entry(meta.subject.clone()).or_default();
        st.count += 1;
        st.last = st.last.max(meta.seq);
        self.msgs.insert(meta.seq, meta);
    }

    /// Record where a message's log record lies.
    pub fn set_loc(&mut self, seq: u64, loc: Loc) {
        if let Some(m) = self.msgs.get_mut(&seq) {
            m.loc = Some(loc);
        }
    }

    /// Cache a held message's headers and payload (after a read of its record).
    /// Ignored when the message is gone or the lengths do not match.
    pub fn cache_put(&mut self, seq: u64, headers: Bytes, data: Bytes) {
        let Some(m) = self.msgs.get(&seq) else {
            return;
        };
        if m.hdr_len as usize != headers.len() || m.data_len as usize != data.len() {
            return;
        }
        self.cache_drop(seq);
        self.tick += 1;
        self.cache_bytes += cache_cost(&headers, &data);
        self.cache_order.insert(self.tick, seq);
        self.cache.insert(
            seq,
            Cached {
                headers,
                data,
                tick: self.tick,
            },
        );
        self.evict();
    }

    fn cache_drop(&mut self, seq: u64) {
        if let Some(c) = self.cache.remove(&seq) {
            self.cache_order.remove(&c.tick);
            self.cache_bytes -= cache_cost(&c.headers, &c.data);
        }
    }

    /// Evict the longest-cached entries until the cache fits its budget. The
    /// newest entry stays (it may be about to be used), and so does any message
    /// that has no log record to be read back from.
    fn evict(&mut self) {
        let Some(budget) = self.cache_budget else {
            return;
        };
        let mut kept = Vec::new();
        while self.cache_bytes > budget && self.cache_order.len() > 1 {
            let Some((tick, seq)) = self.cache_order.pop_first() else {
                break;
            };
            if self.msgs.get(&seq).is_some_and(|m| m.loc.is_none()) {
                kept.push((tick, seq));
                continue;
            }
            if let Some(c) = self.cache.remove(&seq) {
                self.cache_bytes -= cache_cost(&c.headers, &c.data);
            }
        }
        self.cache_order.extend(kept);
    }

    /// Recovery: sequences before `seq` were assigned and removed.
    pub fn skip_to(&mut self, seq: u64) {
        self.next_seq = self.next_seq.max(seq);
    }

    /// Recovery from an index: what it says besides the messages.
    pub fn restore(&mut self, next_seq: u64, last_ts: i64, purged: bool) {
        self.next_seq = self.next_seq.max(next_seq);
        self.last_ts = self.last_ts.max(last_ts);
        self.purged = purged;
    }

    /// A held message's metadata.
    pub fn meta(&self, seq: u64) -> Option<&MsgMeta> {
        self.msgs.get(&seq)
    }

    /// Whether a message is held.
    pub fn contains(&self, seq: u64) -> bool {
        self.msgs.contains_key(&seq)
    }

    /// A held message whose headers and payload are cached.
    pub fn get(&self, seq: u64) -> Option<StoredMsg> {
        let m = self.msgs.get(&seq)?;
        let c = self.cache.get(&seq)?;
        Some(StoredMsg {
            seq,
            subject: m.subject.clone(),
            headers: c.headers.clone(),
            data: c.data.clone(),
            ts: m.ts,
        })
    }

    /// Messages removed so far (consumers' cached pending counts compare it).
    pub fn removals(&self) -> u64 {
        self.removals
    }

    /// The messages held from `seq` on, in order.
    pub fn iter_from(&self, seq: u64) -> impl Iterator<Item = &MsgMeta> {
        self.msgs.range(seq..).map(|(_, m)| m)
    }

    /// The first sequence held at or after `seq`.
    pub fn next_held(&self, seq: u64) -> Option<u64> {
        self.msgs.range(seq..).next().map(|(s, _)| *s)
    }

    /// The first sequence at or after `seq` whose subject matches `filter`.
    pub fn next_matching(&self, seq: u64, filter: &[u8]) -> Option<u64> {
        self.msgs
            .range(seq..)
            .map(|(_, m)| m)
            .find(|m| subject_matches(filter, &m.subject))
            .map(|m| m.seq)
    }

    /// The last sequence whose subject matches `filter`.
    pub fn last_matching(&self, filter: &[u8]) -> Option<u64> {
        let literal = !filter.split(|&b| b == b'.').any(|t| t == b"*" || t == b">");
        if literal {
            let last = self.subjects.get(filter)?.last;
            return self.msgs.contains_key(&last).then_some(last);
        }
        self.msgs
            .values()
            .rev()
            .find(|m| subject_matches(filter, &m.subject))
            .map(|m| m.seq)
    }

    /// Messages held at or after `start` whose subject matches one of
    /// `filters` (every message when `filters` is empty), for a consumer's
    /// `num_pending`. Work: constant for the whole stream unfiltered, one
    /// lookup per filter for literal filters from the first message, else a
    /// scan of the messages from `start` (at most the stream's size).
    pub fn count_from(&self, start: u64, filters: &[&[u8]]) -> u64 {
        let from_first = start <= self.first_seq();
        if filters.is_empty() {
            if from_first {
                return self.len();
            }
            return self.msgs.range(start..).count() as u64;
        }
        if from_first && filters.iter().all(|f| is_literal(f)) {
            return filters.iter().map(|f| self.count_on(f)).sum();
        }
        self.msgs
            .range(start..)
            .filter(|(_, m)| filters.iter().any(|f| subject_matches(f, &m.subject)))
            .count() as u64
    }

    /// The last sequence of every subject held that matches one of `filters`
    /// (every subject when `filters` is empty), in subject order. Work: one
    /// step per distinct subject held.
    pub fn subject_lasts(&self, filters: &[&[u8]]) -> Vec<u64> {
        self.subjects
            .iter()
            .filter(|(s, _)| filters.is_empty() || filters.iter().any(|f| subject_matches(f, s)))
            .map(|(_, st)| st.last)
            .collect()
    }

    /// The first message held stored at or after unix time `ts` (ns), or the
    /// next sequence to be assigned when there is none (nats-server's
    /// `GetSeqFromTime`). Work: a scan from the first message.
    pub fn seq_from_time(&self, ts: i64) -> u64 {
        self.msgs
            .values()
            .find(|m| m.ts >= ts)
            .map_or(self.next_seq, |m| m.seq)
    }

    /// Remove one message.
    pub fn remove(&mut self, seq: u64) -> Option<MsgMeta> {
        let msg = self.msgs.remove(&seq)?;
        self.removals += 1;
        self.cache_drop(seq);
        self.bytes -= self.accounting.meta_size(&msg);
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

    /// Every message's metadata, in sequence order.
    pub fn iter(&self) -> impl Iterator<Item = &MsgMeta> {
        self.msgs.values()
    }
}

/// A subject without `*` or `>` tokens.
fn is_literal(subject: &[u8]) -> bool {
    !subject
        .split(|&b| b == b'.')
        .any(|t| t == b"*" || t == b">")
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

    fn loc(seq: u64) -> Loc {
        Loc {
            seg: 1,
            offset: seq * 100,
            len: 60,
        }
    }

    #[test]
    fn cache_keeps_its_byte_budget_evicting_the_oldest_cached() {
        let mut s = MsgStore::new(Accounting::File, 1);
        let entry = 10 + CACHE_ENTRY_COST;
        s.set_cache_budget(Some(3 * entry));
        for i in 1..=5u64 {
            let seq = s.append(b("a"), Bytes::new(), b("0123456789"), i as i64);
            s.set_loc(seq, loc(seq));
        }
        // Metadata of all five; payloads of the newest three.
        assert_eq!((s.len(), s.bytes()), (5, 5 * (1 + 10 + 30)));
        assert_eq!(s.cache_bytes(), 3 * entry);
        let cached: Vec<u64> = (1..=5).filter(|q| s.is_cached(*q)).collect();
        assert_eq!(cached, vec![3, 4, 5]);
        assert_eq!(s.get(1), None);
        assert_eq!(
            s.meta(1).map(|m| (m.data_len, m.loc)),
            Some((10, Some(loc(1))))
        );
        assert_eq!(s.get(5).map(|m| m.data), Some(b("0123456789")));
        // A message read back enters the cache; the longest cached (3) leaves.
        s.cache_put(1, Bytes::new(), b("0123456789"));
        let cached: Vec<u64> = (1..=5).filter(|q| s.is_cached(*q)).collect();
        assert_eq!(cached, vec![1, 4, 5]);
        // Lengths that do not match the metadata are not cached.
        s.cache_put(3, Bytes::new(), b("short"));
        assert!(!s.is_cached(3));
        // Removal frees cache bytes; lookups need only metadata.
        s.remove(4);
        assert_eq!(s.cache_bytes(), 2 * entry);
        assert_eq!(s.next_matching(2, b"a"), Some(2));
        assert_eq!(s.last_matching(b"a"), Some(5));
        s.purge(None, None, None);
        assert_eq!((s.cache_bytes(), s.len(), s.bytes()), (0, 0, 0));
    }

    #[test]
    fn cache_keeps_the_newest_and_what_cannot_be_read_back() {
        let mut s = MsgStore::new(Accounting::File, 1);
        s.set_cache_budget(Some(4));
        // No log record: nothing to read it back from, so it stays.
        s.append(b("a"), Bytes::new(), b("0123456789"), 1);
        let seq = s.append(b("a"), Bytes::new(), b("abcdefghij"), 2);
        assert!(s.is_cached(1) && s.is_cached(seq));
        // Once it has a record it may go; the newest stays though over budget.
        s.set_loc(1, loc(1));
        s.set_loc(seq, loc(seq));
        s.set_cache_budget(Some(4));
        assert!(!s.is_cached(1) && s.is_cached(seq));
        // The Nats-Msg-Id is kept in the metadata.
        let q = s.append(b("a"), b("NATS/1.0\r\nNats-Msg-Id: x1\r\n\r\n"), b("d"), 3);
        assert_eq!(s.meta(q).and_then(|m| m.msg_id.clone()), Some(b("x1")));
        // Memory streams (no budget) keep everything.
        let mut m = MsgStore::new(Accounting::Memory, 1);
        for i in 0..100 {
            m.append(b("a"), Bytes::new(), b("0123456789"), i);
        }
        assert_eq!(m.cache_bytes(), 100 * (10 + CACHE_ENTRY_COST));
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
