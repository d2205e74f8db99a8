//! One stream: its config, its messages, deduplication, and the publish rules
//! (matrix section 4.5). Persistence is delegated to [`Persist`] when the stream
//! is file-backed.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use super::errors::{self, ApiError};
use super::headers;
use super::index;
use super::persist::{OpIds, OpQueue, Persist};
use super::service::Consumer;
use super::store::{Accounting, Limits, MsgStore, Removed, StoredMsg};
use super::time::Timestamp;
use super::types::{
    DiscardPolicy, RetentionPolicy, StorageType, StreamConfig, StreamInfo, StreamState,
};
use crate::storage::StorageId;
use crate::subject::subject_matches;

/// Most message ids remembered for deduplication per stream; the oldest go first.
const DEDUP_MAX: usize = 1_000_000;
/// Largest header block a stream accepts (row P10).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The outcome of a publish into a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Stored under this sequence.
    New(u64),
    /// A duplicate of an earlier message (Nats-Msg-Id), stored under this sequence.
    Duplicate(u64),
}

pub struct Stream {
    pub id: u64,
    pub config: StreamConfig,
    /// Unix nanoseconds.
    pub created: i64,
    pub store: MsgStore,
    pub persist: Option<Persist>,
    /// Consumers of this stream by name (bounded by the service; see
    /// [`super::service`]). Interest retention reads their filters.
    pub consumers: BTreeMap<String, Consumer>,
    /// File-backed: the last sequence whose log record is durable (consumers
    /// deliver up to it; see `Stream::deliverable_last`).
    pub durable_seq: u64,
    /// File-backed: the first sequence of a log write or sync that failed;
    /// consumers deliver nothing from it on (until a restart).
    pub hole_from: Option<u64>,
    /// The last sequence whose record a flush has emitted.
    pub flushed_through: u64,
    /// An encoded index and the Sync it waits for (see [`Stream::flush`]).
    pub staged_index: Option<(StorageId, Bytes)>,
    dedup: BTreeMap<Bytes, (u64, i64)>,
    dedup_order: VecDeque<(i64, Bytes)>,
    last_msg_id: Bytes,
}

impl Stream {
    pub fn new(id: u64, config: StreamConfig, created: i64) -> Stream {
        let file = config.storage == StorageType::File;
        let accounting = if file {
            Accounting::File
        } else {
            Accounting::Memory
        };
        let persist = file.then(|| Persist::new(&config.name, 1));
        Stream {
            id,
            config,
            created,
            store: MsgStore::new(accounting, 1),
            persist,
            consumers: BTreeMap::new(),
            durable_seq: 0,
            hole_from: None,
            flushed_through: 0,
            staged_index: None,
            dedup: BTreeMap::new(),
            dedup_order: VecDeque::new(),
            last_msg_id: Bytes::new(),
        }
    }

    /// A file-backed stream rebuilt from its log.
    pub fn recovered(
        id: u64,
        config: StreamConfig,
        created: i64,
        store: MsgStore,
        persist: Persist,
    ) -> Stream {
        let mut s = Stream {
            id,
            config,
            created,
            store,
            persist: Some(persist),
            consumers: BTreeMap::new(),
            durable_seq: 0,
            hole_from: None,
            flushed_through: 0,
            staged_index: None,
            dedup: BTreeMap::new(),
            dedup_order: VecDeque::new(),
            last_msg_id: Bytes::new(),
        };
        s.flushed_through = s.store.last_seq();
        // Rebuild the dedup window from the stored Nats-Msg-Ids.
        let found: Vec<(Bytes, u64, i64)> = s
            .store
            .iter()
            .filter_map(|m| m.msg_id.clone().map(|id| (id, m.seq, m.ts)))
            .collect();
        for (id, seq, ts) in found {
            s.remember(id, seq, ts);
        }
        s
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_msgs: self.config.max_msgs,
            max_bytes: self.config.max_bytes,
            max_msgs_per_subject: self.config.max_msgs_per_subject,
            max_age: self.config.max_age,
        }
    }

    fn remember(&mut self, id: Bytes, seq: u64, ts: i64) {
        if self.dedup.len() >= DEDUP_MAX {
            if let Some((_, old)) = self.dedup_order.pop_front() {
                self.dedup.remove(&old);
            }
        }
        self.dedup.insert(id.clone(), (seq, ts));
        self.dedup_order.push_back((ts, id.clone()));
        self.last_msg_id = id;
    }

    fn expire_dedup(&mut self, now: i64) {
        let window = self.config.duplicate_window;
        while let Some((ts, id)) = self.dedup_order.front() {
            if window > 0 && *ts > now.saturating_sub(window) {
                break;
            }
            if self.dedup.get(id).is_some_and(|(_, t)| t == ts) {
                self.dedup.remove(id);
            }
            self.dedup_order.pop_front();
        }
    }

    /// Apply the publish rules and store the message (rows P1–P10).
    pub fn publish(
        &mut self,
        subject: &Bytes,
        hdrs: Option<&Bytes>,
        data: &Bytes,
        now: i64,
    ) -> Result<Stored, ApiError> {
        self.expire_dedup(now);
        let cfg = &self.config;
        if cfg.sealed {
            return Err(errors::stream_sealed());
        }
        let hdr = hdrs.cloned().unwrap_or_default();
        if cfg.max_msg_size >= 0 && hdr.len() + data.len() > cfg.max_msg_size as usize {
            return Err(errors::stream_message_exceeds_maximum());
        }
        if hdr.len() > MAX_HEADER_BYTES {
            return Err(errors::stream_header_exceeds_maximum());
        }
        let h = |k: &str| headers::get(&hdr, k);
        if let Some(expected) = h("Nats-Expected-Stream") {
            if expected != cfg.name.as_bytes() {
                return Err(errors::stream_not_match());
            }
        }
        let msg_id = h("Nats-Msg-Id")
            .filter(|v| !v.is_empty())
            .map(Bytes::copy_from_slice);
        if let Some(id) = &msg_id {
            if let Some(&(seq, _)) = self.dedup.get(id) {
                return Ok(Stored::Duplicate(seq));
            }
        }
        if let Some(v) = h("Nats-Expected-Last-Sequence") {
            let want = parse_u64(v);
            if want != Some(self.store.last_seq()) {
                return Err(errors::stream_wrong_last_sequence(self.store.last_seq()));
            }
        }
        if let Some(v) = h("Nats-Expected-Last-Subject-Sequence") {
            let last = self.store.last_seq_on(subject);
            if parse_u64(v) != Some(last) {
                return Err(errors::stream_wrong_last_sequence(last));
            }
        }
        if let Some(v) = h("Nats-Expected-Last-Msg-Id") {
            if v != &self.last_msg_id[..] {
                return Err(errors::stream_wrong_last_msg_id(String::from_utf8_lossy(
                    &self.last_msg_id,
                )));
            }
        }
        let rollup = match h("Nats-Rollup") {
            None => None,
            Some(v) => {
                if !cfg.allow_rollup_hdrs || cfg.deny_purge {
                    return Err(errors::stream_rollup_failed("rollup not permitted"));
                }
                match v {
                    b"sub" => Some(false),
                    b"all" => Some(true),
                    other => {
                        return Err(errors::stream_rollup_failed(format!(
                            "rollup value invalid: {}",
                            String::from_utf8_lossy(other)
                        )))
                    }
                }
            }
        };
        if cfg.discard == DiscardPolicy::New && rollup.is_none() {
            let size = self.store.size_of(subject, &hdr, data);
            if cfg.max_msgs > 0 && self.store.len() >= cfg.max_msgs as u64 {
                return Err(errors::stream_store_failed("maximum messages exceeded"));
            }
            if cfg.max_bytes > 0 && self.store.bytes() + size > cfg.max_bytes as u64 {
                return Err(errors::stream_store_failed("maximum bytes exceeded"));
            }
            if cfg.discard_new_per_subject
                && cfg.max_msgs_per_subject > 0
                && self.store.count_on(subject) >= cfg.max_msgs_per_subject as u64
            {
                return Err(errors::stream_store_failed(
                    "maximum messages per subject exceeded",
                ));
            }
        }
        if self.config.retention == RetentionPolicy::Interest && !self.has_interest(subject) {
            // Interest retention with nobody interested: the message takes a
            // sequence and is not kept (nats-server does the same).
            let seq = self.store.last_seq() + 1;
            self.store.skip_to(seq + 1);
            if let Some(p) = self.persist.as_mut() {
                p.log_next(seq + 1);
            }
            return Ok(Stored::New(seq));
        }
        let seq = self
            .store
            .append(subject.clone(), hdr.clone(), data.clone(), now);
        if let Some(p) = self.persist.as_mut() {
            let loc = p.log_msg(&StoredMsg {
                seq,
                subject: subject.clone(),
                headers: hdr,
                data: data.clone(),
                ts: now,
            });
            self.store.set_loc(seq, loc);
        }
        if let Some(id) = msg_id {
            self.remember(id, seq, now);
        }
        let mut removed = match rollup {
            Some(true) => self.store.purge(None, Some(seq), None),
            Some(false) => {
                let r = self.store.purge(Some(subject), Some(seq), None);
                Removed { seqs: r.seqs }
            }
            None => Removed::default(),
        };
        removed
            .seqs
            .extend(self.store.enforce(&self.limits(), now, Some(subject)).seqs);
        self.log_removed(&removed.seqs);
        Ok(Stored::New(seq))
    }

    /// Record removals in the log (file-backed streams).
    pub fn log_removed(&mut self, seqs: &[u64]) {
        if let Some(p) = self.persist.as_mut() {
            p.log_delete(seqs);
        }
    }

    /// Expire messages past max_age.
    pub fn expire(&mut self, now: i64) {
        let removed = self.store.enforce(
            &Limits {
                max_age: self.config.max_age,
                ..Limits::NONE
            },
            now,
            None,
        );
        self.log_removed(&removed.seqs);
    }

    /// Emit queued log records; returns the ids of their Write and of the
    /// operation whose completion means they are durable (the Sync), or, in
    /// relaxed mode (`sync` false), written (the Write itself).
    pub fn flush(
        &mut self,
        sync: bool,
        ids: &mut OpIds,
        ops: &mut OpQueue,
    ) -> Option<(StorageId, StorageId)> {
        let next = self.store.last_seq() + 1;
        let first = self.store.first_seq();
        let p = self.persist.as_mut()?;
        let (write, done) = p.flush(next, first, sync, ids, ops)?;
        if let Some((seg, offset)) = p.take_index_due() {
            if let Some(data) = index::encode(&self.store, p.segments(), seg, offset) {
                p.index_encoded(data.len() as u64);
                // The index waits for a Sync covering its position: this
                // flush's, or (relaxed mode) one of its own.
                let sync = if write != done {
                    done
                } else {
                    p.sync_segment(seg, ids, ops)
                };
                self.staged_index = Some((sync, data));
            }
        }
        Some((write, done))
    }

    pub fn state(&self, consumers: usize) -> StreamState {
        let ts = |ns: i64| {
            if ns == 0 {
                Timestamp::default()
            } else {
                Timestamp::from_unix_nanos(ns)
            }
        };
        let empty = self.store.is_empty();
        StreamState {
            messages: self.store.len(),
            bytes: self.store.bytes(),
            first_seq: self.store.reported_first_seq(),
            first_ts: if empty {
                Timestamp::default()
            } else {
                ts(self.store.first_ts())
            },
            last_seq: self.store.last_seq(),
            last_ts: ts(self.store.last_ts()),
            num_subjects: self.store.num_subjects() as usize,
            num_deleted: self.store.num_deleted() as usize,
            consumer_count: consumers,
            ..StreamState::default()
        }
    }

    /// Whether a consumer wants messages on `subject`: one without a filter
    /// or with a filter matching it (2.9.10's interest-retention check).
    fn has_interest(&self, subject: &[u8]) -> bool {
        self.consumers.values().any(|c| {
            let filters = c.config.filters();
            filters.is_empty()
                || filters
                    .iter()
                    .any(|f| subject_matches(f.as_bytes(), subject))
        })
    }

    /// Consumers other than `direct` ones (mirror and source internals), as
    /// nats-server counts them for `consumer_count`, `max_consumers`, names and lists.
    pub fn public_consumers(&self) -> impl Iterator<Item = (&String, &Consumer)> {
        self.consumers.iter().filter(|(_, c)| !c.config.direct)
    }

    pub fn info(&self) -> StreamInfo {
        StreamInfo {
            config: self.config.clone(),
            created: Timestamp::from_unix_nanos(self.created),
            state: self.state(self.public_consumers().count()),
            ..StreamInfo::default()
        }
    }

    /// A stored message in the shape MSG.GET returns it.
    pub fn api_msg(m: &StoredMsg) -> super::types::StoredMsg {
        super::types::StoredMsg {
            subject: String::from_utf8_lossy(&m.subject).into_owned(),
            seq: m.seq,
            hdrs: m.headers.clone(),
            data: m.data.clone(),
            time: Timestamp::from_unix_nanos(m.ts),
        }
    }
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}
