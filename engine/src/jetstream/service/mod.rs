//! The JetStream service: the `$JS.API` request handlers, message capture into
//! streams, PubAcks that wait for durability, and recovery of file-backed
//! streams at start. It talks to the routing core only through [`Effects`].
//!
//! Consumers (see `consumers.rs` for the API, `deliver.rs` for delivery and
//! acks) are held per stream, at most `MAX_CONSUMERS` (100,000) over the server.
//!
//! Gets of messages whose payload is not cached (see [`super::store`]) emit a
//! Read of the message's log record and are answered when it completes (at
//! most `MAX_PENDING_READS` at once; past that, insufficient resources).
//!
//! Recovery lists the streams, then per stream reads `meta.json` and `index`
//! and lists the log. With a usable index (see [`super::index`]) the metadata
//! comes from it and only the log after its position is read and replayed;
//! otherwise every segment is read in full. Index checkpoints are written only
//! after the Sync covering their position completed.

mod api;
mod consumers;
mod deliver;
mod recovery;

pub use deliver::Consumer;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::errors::{self, ApiError};
use super::headers;
use super::index::{self, Index};
use super::log::{self, Record};
use super::persist::{self, OpIds, OpQueue, Persist};
use super::store::{Accounting, Limits, Loc, MsgStore, StoredMsg};
use super::stream::{Stored, Stream};
use super::time::Timestamp;
use super::types::{self, *};
use crate::storage::{StorageId, StorageOp, StorageResult};
use crate::subject::{is_valid_subject, subject_matches};

/// Log syncs in flight before publishes to file streams are refused with
/// 10023 (insufficient resources): the bound on what a stalled disk makes the
/// engine hold (records, held acks). Group commit keeps it near 1 normally.
const MAX_OUTSTANDING_SYNCS: usize = 1024;
/// Names endpoints page at this many entries, list endpoints at [`LIST_LIMIT`] (row J6).
const NAMES_LIMIT: usize = 1024;
const LIST_LIMIT: usize = 256;
/// Streams one account may have.
const MAX_STREAMS: usize = 10_000;
/// Consumers the server holds over all streams (nats-server sets no such
/// bound by default); a create past it is refused with 10026, like a stream's
/// `max_consumers`.
const MAX_CONSUMERS: usize = 100_000;
/// Reads issued for one segment file (segments are at most a little over 16 MiB).
const SEGMENT_READ_MAX: u64 = 1 << 31;
/// Message reads (gets of messages not in the cache) in flight at once; past
/// this, gets are refused with insufficient resources.
const MAX_PENDING_READS: usize = 4096;

/// The API subjects the service answers (others get no responders, as in nats-server).
pub const API_SUBJECTS: &[&str] = &[
    "$JS.API.INFO",
    "$JS.API.STREAM.CREATE.*",
    "$JS.API.STREAM.UPDATE.*",
    "$JS.API.STREAM.NAMES",
    "$JS.API.STREAM.LIST",
    "$JS.API.STREAM.INFO.*",
    "$JS.API.STREAM.DELETE.*",
    "$JS.API.STREAM.PURGE.*",
    "$JS.API.STREAM.MSG.GET.*",
    "$JS.API.STREAM.MSG.DELETE.*",
    "$JS.API.CONSUMER.CREATE.*",
    "$JS.API.CONSUMER.CREATE.*.>",
    "$JS.API.CONSUMER.DURABLE.CREATE.*.*",
    "$JS.API.CONSUMER.NAMES.*",
    "$JS.API.CONSUMER.LIST.*",
    "$JS.API.CONSUMER.INFO.*.*",
    "$JS.API.CONSUMER.DELETE.*.*",
];

/// JetStream settings from the server config.
#[derive(Clone, Debug)]
pub struct JsConfig {
    /// Name reported as the stream leader.
    pub server_name: String,
    /// Bytes of memory storage allowed (-1: unlimited).
    pub max_memory: i64,
    /// Bytes of file storage allowed (-1: unlimited).
    pub max_store: i64,
    /// Whether file-backed streams persist through storage operations. Off, file
    /// streams behave like memory streams (used where no disk executor exists).
    pub persist: bool,
    /// `jetstream { sync_interval }` in nanoseconds. 0 (the default, `always`):
    /// every PubAck waits for an fsync. Otherwise PubAcks wait only for the write,
    /// and an fsync runs at this interval: an operator's explicit choice to trade
    /// the last interval's acknowledged messages on power loss for throughput.
    pub sync_interval_ns: i64,
    /// Byte budget of each file-backed stream's cache of headers and payloads
    /// (see [`super::store`]); older messages are read back from the log.
    pub cache_bytes: u64,
    /// Write each file-backed stream's index checkpoint every this many
    /// flushes (besides when a segment closes and every 8 MiB of log).
    pub index_flushes: u64,
    /// Seed of the service's random generator (generated consumer names).
    pub rng_seed: u64,
    /// The injected bug [`crate::config::InjectedBug::AckBeforeSync`].
    #[doc(hidden)]
    pub ack_before_sync: bool,
}

/// Which part of the service an internal subscription feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// The `$JS.API` request handlers.
    Api,
    /// A stream capturing its subjects, by stream id.
    Stream(u64),
    /// A stream's direct-get subjects, by stream id.
    Direct(u64),
    /// A consumer's acks, pull requests and flow-control replies, by its uid.
    Consumer(u64),
}

/// A message the service publishes into the routing core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub subject: Bytes,
    pub reply: Option<Bytes>,
    /// Route by this subject instead, keeping `subject` in the message
    /// (consumer deliveries carry the stored message's subject).
    pub deliver: Option<Bytes>,
    pub headers: Option<Bytes>,
    pub payload: Bytes,
}

/// What the service asks of the server.
#[derive(Debug, Default)]
pub struct Effects {
    pub publish: Vec<Outgoing>,
    /// Internal subscriptions to add and remove.
    pub subscribe: Vec<(Target, String)>,
    pub unsubscribe: Vec<(Target, String)>,
    pub storage: OpQueue,
}

impl Effects {
    fn reply<T: Serialize>(&mut self, reply: &Bytes, body: &T) {
        if let Ok(json) = serde_json::to_vec(body) {
            self.publish.push(Outgoing {
                subject: reply.clone(),
                reply: None,
                deliver: None,
                headers: None,
                payload: Bytes::from(json),
            });
        }
    }
}

/// A reply waiting for its storage operation: a PubAck for its log records,
/// a consumer create for its meta.json, an AckSync for the consumer state.
struct PendingAck {
    reply: Bytes,
    payload: Bytes,
}

impl PendingAck {
    fn send(self, fx: &mut Effects) {
        fx.publish.push(Outgoing {
            subject: self.reply,
            reply: None,
            deliver: None,
            headers: None,
            payload: self.payload,
        });
    }
}

/// Who waits for a message read back from the log.
#[derive(Clone, Debug)]
enum Getter {
    /// `$JS.API.STREAM.MSG.GET`, answered on this reply subject.
    Api(Bytes),
    /// `$JS.API.DIRECT.GET`, answered on this reply subject.
    Direct(Bytes),
    /// A consumer (by uid) about to deliver the messages of one read of a
    /// run of records: (sequence, offset in the read, length) of each.
    Consumer(u64, Vec<(u64, u64, u64)>),
}

/// A message read in flight.
#[derive(Debug)]
struct PendingRead {
    stream_id: u64,
    seq: u64,
    getter: Getter,
}

#[derive(Debug)]
enum Recovering {
    ListStreams,
    Meta(String),
    Index(String),
    ListLog(String),
    Segment { stream: String, seg: u64 },
    ListConsumers(String),
    ConsumerMeta { stream: String, name: String },
    ConsumerState { stream: String, name: String },
}

/// What recovery has gathered for one stream.
#[derive(Default)]
struct Found {
    /// Why this stream cannot be opened (an unreadable file); its files are kept.
    broken: Option<String>,
    meta: Option<Meta>,
    /// The index: `None` until its read completed, then whether it is usable.
    index: Option<Option<Index>>,
    /// The log's segments, once listed.
    segments: Option<Vec<u64>>,
    /// What was read of each segment: from which offset, and the bytes.
    data: BTreeMap<u64, (u64, Bytes)>,
    /// Durable consumers found: their meta.json and state file.
    consumers: BTreeMap<String, (Option<deliver::ConsumerMeta>, Option<Bytes>)>,
}

/// The contents of `meta.json`.
#[derive(Serialize, Deserialize)]
struct Meta {
    config: StreamConfig,
    created: i64,
}

pub struct JetStream {
    cfg: JsConfig,
    streams: BTreeMap<String, Stream>,
    next_id: u64,
    api: ApiStats,
    ids: OpIds,
    /// Acks by the id of the Sync that makes them true.
    waiting: BTreeMap<StorageId, Vec<PendingAck>>,
    /// Log Writes in flight, with the Sync whose acks they carry.
    log_writes: BTreeMap<StorageId, StorageId>,
    /// Syncs whose acks must fail because a Write before them failed.
    doomed: BTreeSet<StorageId>,
    /// Log Syncs emitted and not yet completed.
    outstanding: BTreeSet<StorageId>,
    /// Set by the first failed log write or fsync: from then on, publishes to
    /// file-backed streams are refused (10077) until the server restarts and
    /// recovers from what the disk really holds. Going on would ack messages
    /// behind a hole in the log (recovery stops at the hole) and ack retries of
    /// a failed message as duplicates of something never made durable.
    store_failed: Option<String>,
    /// Recovery operations in flight; the service is ready when none are left.
    recovering: BTreeMap<StorageId, Recovering>,
    found: BTreeMap<String, Found>,
    /// Streams found on disk that could not be read, with the reason.
    unrecoverable: BTreeMap<String, String>,
    ready: bool,
    /// Relaxed mode: when writes began to wait for the periodic fsync.
    unsynced_since: Option<i64>,
    /// Reads of message records in flight (at most [`MAX_PENDING_READS`]).
    reads: BTreeMap<StorageId, PendingRead>,
    /// Index checkpoints waiting for the Sync that makes the log bytes they
    /// cover durable, with their stream's id (at most one per stream and flush).
    staged_index: BTreeMap<StorageId, (u64, Bytes)>,
    /// Draws generated consumer names; seeded from [`JsConfig::rng_seed`].
    rng: SmallRng,
    /// Consumers by uid: their stream and name.
    consumer_at: BTreeMap<u64, (String, String)>,
    next_uid: u64,
    /// Consumers to look at in the next pump, and those to look at again.
    dirty: BTreeSet<u64>,
    again: BTreeSet<u64>,
    /// When a durable consumer's delayed state write is due.
    state_due: Option<i64>,
    /// Consumers whose read was refused (too many in flight): dirty again
    /// when any read completes.
    starved: BTreeSet<u64>,
    /// The earliest consumer deadline (ack wait, request expiry, heartbeat).
    next_consumer_deadline: Option<i64>,
    /// AckSync replies waiting for their consumer's state to be written, by uid.
    consumer_acks: BTreeMap<u64, Vec<PendingAck>>,
    /// Log syncs (or, relaxed, writes) and the stream sequence they make durable.
    durable_marks: BTreeMap<StorageId, (u64, u64)>,
    /// Log writes and syncs in flight, with their stream and the first
    /// sequence their records hold: if one fails, consumers stop before it.
    flush_seqs: BTreeMap<StorageId, (u64, u64)>,
    /// Every operation of a consumer state write in flight, by consumer uid,
    /// and the operations that complete each write, per consumer.
    state_ops: BTreeMap<StorageId, u64>,
    state_done: BTreeMap<u64, BTreeSet<StorageId>>,
    /// Syncs of replacement state files, with the consumer and the Rename
    /// to emit once they succeeded.
    state_renames: BTreeMap<StorageId, (u64, StorageOp)>,
    /// Consumers' meta.json replacements: by their Sync, the consumer, the
    /// generation, the Rename, the temporary file and whether a write before
    /// the Sync failed; and those writes, with their Sync.
    meta_renames: BTreeMap<StorageId, (u64, u64, StorageOp, String, bool)>,
    meta_parts: BTreeMap<StorageId, StorageId>,
}

impl JetStream {
    /// Start the service. With persistence on, recovery begins: its storage
    /// operations are in `fx`, and requests are refused until it completes.
    pub fn start(cfg: JsConfig, fx: &mut Effects) -> JetStream {
        let rng = SmallRng::seed_from_u64(cfg.rng_seed);
        let mut js = JetStream {
            cfg,
            rng,
            streams: BTreeMap::new(),
            next_id: 1,
            api: ApiStats::default(),
            ids: OpIds::default(),
            waiting: BTreeMap::new(),
            log_writes: BTreeMap::new(),
            doomed: BTreeSet::new(),
            store_failed: None,
            outstanding: BTreeSet::new(),
            recovering: BTreeMap::new(),
            found: BTreeMap::new(),
            unrecoverable: BTreeMap::new(),
            ready: false,
            unsynced_since: None,
            reads: BTreeMap::new(),
            staged_index: BTreeMap::new(),
            consumer_at: BTreeMap::new(),
            next_uid: 1,
            dirty: BTreeSet::new(),
            again: BTreeSet::new(),
            starved: BTreeSet::new(),
            state_due: None,
            next_consumer_deadline: None,
            consumer_acks: BTreeMap::new(),
            durable_marks: BTreeMap::new(),
            flush_seqs: BTreeMap::new(),
            state_ops: BTreeMap::new(),
            state_done: BTreeMap::new(),
            state_renames: BTreeMap::new(),
            meta_renames: BTreeMap::new(),
            meta_parts: BTreeMap::new(),
        };
        for s in API_SUBJECTS {
            fx.subscribe.push((Target::Api, s.to_string()));
        }
        if js.cfg.persist {
            let id = js.ids.alloc();
            js.recovering.insert(id, Recovering::ListStreams);
            fx.storage.push((
                id,
                StorageOp::List {
                    dir: "streams".into(),
                },
            ));
        } else {
            js.ready = true;
        }
        js
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The stream (by id) that owns an internal subscription.
    fn stream_by_id(&mut self, id: u64) -> Option<&mut Stream> {
        self.streams.values_mut().find(|s| s.id == id)
    }

    /// A message published on a stream's subjects.
    #[allow(clippy::too_many_arguments)]
    pub fn capture(
        &mut self,
        stream_id: u64,
        subject: &Bytes,
        reply: Option<&Bytes>,
        hdrs: Option<&Bytes>,
        data: &Bytes,
        now: i64,
        fx: &mut Effects,
    ) {
        let limited = self.cfg.max_memory >= 0 || self.cfg.max_store >= 0;
        let (mem, file) = if limited { self.usage() } else { (0, 0) };
        let (max_memory, max_store) = (self.cfg.max_memory, self.cfg.max_store);
        let outstanding = self.outstanding.len();
        let store_failed = self.store_failed.clone();
        let Some(stream) = self.stream_by_id(stream_id) else {
            return;
        };
        let name = stream.config.name.clone();
        let no_ack = stream.config.no_ack;
        let size = stream
            .store
            .size_of(subject, hdrs.map_or(&[][..], |h| &h[..]), data);
        // The server-wide store limits (jetstream { max_memory_store, max_file_store }).
        let full = match stream.config.storage {
            StorageType::Memory => max_memory >= 0 && mem + size > max_memory as u64,
            StorageType::File => max_store >= 0 && file + size > max_store as u64,
        };
        // Republish reports the subject's previous sequence (gap detection).
        let prev_on_subject = stream.store.last_seq_on(subject);
        // The disk is far behind (or stalled): refuse rather than queue without end.
        let backlog = stream.persist.is_some() && outstanding >= MAX_OUTSTANDING_SYNCS;
        let result = if full {
            Err(match stream.config.storage {
                StorageType::Memory => errors::memory_resources_exceeded(),
                StorageType::File => errors::storage_resources_exceeded(),
            })
        } else if let (Some(why), true) = (&store_failed, stream.persist.is_some()) {
            Err(errors::stream_store_failed(why))
        } else if backlog {
            Err(errors::insufficient_resources())
        } else {
            stream.publish(subject, hdrs, data, now)
        };
        if let (Ok(Stored::New(seq)), Some(rp)) = (&result, stream.config.republish.as_ref()) {
            if let Some(out) = republish(rp, &stream.config.name, *seq, prev_on_subject, stream) {
                fx.publish.push(out);
            }
        }
        let persisted = stream.persist.is_some();
        if matches!(result, Ok(Stored::New(_))) {
            self.stream_changed(stream_id);
        }
        let Some(reply) = reply.filter(|r| !r.is_empty()) else {
            return;
        };
        if no_ack {
            return;
        }
        let payload = match &result {
            Ok(Stored::New(seq)) => PubAck {
                stream: name,
                seq: *seq,
                ..PubAck::default()
            }
            .to_wire(),
            Ok(Stored::Duplicate(seq)) => PubAck {
                stream: name,
                seq: *seq,
                duplicate: true,
                ..PubAck::default()
            }
            .to_wire(),
            Err(e) => {
                serde_json::to_vec(&PubAckResponse::error(name, e.clone())).unwrap_or_default()
            }
        };
        let ack = PendingAck {
            reply: reply.clone(),
            payload: Bytes::from(payload),
        };
        if persisted && result.is_ok() && !self.cfg.ack_before_sync {
            // Held until the flush at the end of this input makes it durable. A
            // duplicate is held too: the message it names may not be durable yet.
            self.waiting.entry(StorageId(0)).or_default().push(ack);
        } else {
            ack.send(fx);
        }
    }

    /// Checks the service's own bounds (see [`crate::Server::check_bounds`]).
    pub fn check_bounds(&self) -> Result<(), String> {
        // One flush may add a sync per stream past the limit before refusals start.
        let limit = MAX_OUTSTANDING_SYNCS + self.streams.len();
        if self.outstanding.len() > limit {
            return Err(format!(
                "{} log syncs in flight (bound {limit})",
                self.outstanding.len()
            ));
        }
        Ok(())
    }

    /// End of an input: emit every stream's queued log records (one write and
    /// one fsync per stream) and attach the held acks to the last sync.
    pub fn flush(&mut self, now: i64, fx: &mut Effects) {
        let sync = self.cfg.sync_interval_ns <= 0;
        let mut last_sync = None;
        let mut writes = Vec::new();
        for s in self.streams.values_mut() {
            let first = s.flushed_through + 1;
            let flushed = s.flush(sync, &mut self.ids, &mut fx.storage);
            s.flushed_through = s.store.last_seq();
            if let Some((sync, data)) = s.staged_index.take() {
                self.staged_index.insert(sync, (s.id, data));
            }
            if let Some((write, done)) = flushed {
                self.durable_marks.insert(done, (s.id, s.store.last_seq()));
                self.flush_seqs.insert(write, (s.id, first));
                self.flush_seqs.insert(done, (s.id, first));
                // In relaxed mode the write itself is what acks wait for.
                if write != done {
                    writes.push(write);
                }
                self.outstanding.insert(done);
                last_sync = Some(done);
            }
        }
        if let Some(sync) = last_sync {
            for w in writes {
                self.log_writes.insert(w, sync);
            }
        }
        self.flush_consumers(now, fx);
        if !sync && last_sync.is_some() && self.unsynced_since.is_none() {
            self.unsynced_since = Some(now);
        }
        if let Some(held) = self.waiting.remove(&StorageId(0)) {
            // With nothing written now (only duplicates were acked), the acks
            // wait for the last sync still in flight: it covers every earlier record.
            match last_sync.or_else(|| self.outstanding.last().copied()) {
                // Syncs complete in order, so the last one covers every stream.
                Some(id) => self.waiting.entry(id).or_default().extend(held),
                None => {
                    for a in held {
                        a.send(fx);
                    }
                }
            }
        }
    }

    /// When (unix ns) the next message expires under max_age, if any.
    pub fn next_expiry(&self) -> Option<i64> {
        let expiry = self
            .streams
            .values()
            .filter_map(|s| s.store.next_expiry(s.config.max_age))
            .min();
        let sync = self
            .unsynced_since
            .map(|t| t.saturating_add(self.cfg.sync_interval_ns));
        [expiry, sync, self.next_consumer_deadline, self.state_due]
            .into_iter()
            .flatten()
            .min()
    }

    /// Expire messages by max_age; returns the next time (unix ns) to call again.
    pub fn tick(&mut self, now: i64, fx: &mut Effects) -> Option<i64> {
        if self
            .unsynced_since
            .is_some_and(|t| t.saturating_add(self.cfg.sync_interval_ns) <= now)
        {
            self.unsynced_since = None;
            for s in self.streams.values() {
                if let Some(p) = &s.persist {
                    p.sync(&mut self.ids, &mut fx.storage);
                }
            }
        }
        let mut next: Option<i64> = None;
        for s in self.streams.values_mut() {
            if s.config.max_age > 0 {
                s.expire(now);
                if let Some(at) = s.store.next_expiry(s.config.max_age) {
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
            }
        }
        next
    }

    fn fail_store(&mut self, why: &str) {
        if self.store_failed.is_none() {
            tracing::error!(
                "JetStream store failed ({why}): publishes to file streams are refused until restart"
            );
            self.store_failed = Some(format!("store failed until restart: {why}"));
        }
    }

    /// A storage operation completed.
    pub fn storage_done(&mut self, id: StorageId, result: StorageResult, fx: &mut Effects) {
        if let Some(read) = self.reads.remove(&id) {
            self.dirty.append(&mut self.starved);
            return self.read_done(read, result, fx);
        }
        let failed = matches!(result, StorageResult::Error(_));
        if self.meta_op_done(id, failed, fx) {
            return;
        }
        self.state_op_done(id, failed);
        if self.state_staged_done(id, failed, fx) {
            return;
        }
        if let Some((sid, first)) = self.flush_seqs.remove(&id) {
            if failed {
                // Nothing from this write on is delivered until a restart
                // recovers what the disk holds (publishes stop too).
                if let Some(s) = self.stream_by_id(sid) {
                    s.hole_from = Some(s.hole_from.map_or(first, |h| h.min(first)));
                }
            }
        }
        if let Some((sid, seq)) = self.durable_marks.remove(&id) {
            if !matches!(result, StorageResult::Error(_)) && !self.doomed.contains(&id) {
                if let Some(s) = self.stream_by_id(sid) {
                    s.durable_seq = s.durable_seq.max(seq);
                }
                self.stream_changed(sid);
            }
        }
        if let Some((stream_id, data)) = self.staged_index.remove(&id) {
            // Written only once what it covers is durable (and the stream is
            // still there: a write would bring its directory back).
            let ok = !matches!(result, StorageResult::Error(_)) && !self.doomed.contains(&id);
            if let Some(p) = self
                .streams
                .values()
                .find(|s| s.id == stream_id)
                .and_then(|s| s.persist.as_ref())
                .filter(|_| ok)
            {
                p.write_index(data, &mut self.ids, &mut fx.storage);
            }
        }
        if let Some(sync) = self.log_writes.remove(&id) {
            if let StorageResult::Error(e) = &result {
                tracing::warn!("JetStream log write failed: {e}");
                self.doomed.insert(sync);
                self.fail_store(e);
            }
            return;
        }
        if self.outstanding.remove(&id) {
            if let StorageResult::Error(e) = &result {
                tracing::warn!("JetStream log fsync failed: {e}");
                self.fail_store(e);
            }
        }
        let result = if self.doomed.remove(&id) && !matches!(result, StorageResult::Error(_)) {
            StorageResult::Error("write failed".into())
        } else {
            result
        };
        if let Some(acks) = self.waiting.remove(&id) {
            match &result {
                StorageResult::Error(e) => {
                    for a in acks {
                        if a.payload.is_empty() {
                            // An AckSync (its answer is empty): clients take
                            // any answer as success, so a failed one gets none.
                            continue;
                        }
                        let err = errors::stream_store_failed(e);
                        let body = serde_json::to_vec(&serde_json::json!({"error": err}))
                            .unwrap_or_default();
                        PendingAck {
                            reply: a.reply,
                            payload: Bytes::from(body),
                        }
                        .send(fx);
                    }
                }
                _ => {
                    for a in acks {
                        a.send(fx);
                    }
                }
            }
            return;
        }
        if let Some(step) = self.recovering.remove(&id) {
            self.recover_step(step, result, fx);
        }
    }

    /// Whether `subject` is one a stream with `id` captures (for routing checks).
    pub fn captures(&self, id: u64, subject: &[u8]) -> bool {
        self.streams.values().any(|s| {
            s.id == id
                && s.config
                    .subjects
                    .iter()
                    .any(|p| subject_matches(p.as_bytes(), subject))
        })
    }
}

/// Row SC26: a stored message copied to the republish destination, with the
/// Nats-Stream, Nats-Subject, Nats-Sequence and Nats-Last-Sequence (the
/// subject's previous sequence) headers, and Nats-Msg-Size when only headers go.
fn republish(rp: &RePublish, name: &str, seq: u64, prev: u64, stream: &Stream) -> Option<Outgoing> {
    let m = stream.store.get(seq)?;
    let subject = std::str::from_utf8(&m.subject).ok()?;
    let src = if rp.source.is_empty() {
        ">"
    } else {
        rp.source.as_str()
    };
    let dest = transform(src, &rp.destination, subject)?;
    let (seq_s, last, size) = (seq.to_string(), prev.to_string(), m.data.len().to_string());
    let mut pairs = vec![
        ("Nats-Stream", name),
        ("Nats-Subject", subject),
        ("Nats-Sequence", seq_s.as_str()),
        ("Nats-Last-Sequence", last.as_str()),
    ];
    if rp.headers_only {
        pairs.push(("Nats-Msg-Size", size.as_str()));
    }
    let hdrs = headers::append(&m.headers, &pairs);
    let payload = if rp.headers_only {
        Bytes::new()
    } else {
        m.data.clone()
    };
    Some(Outgoing {
        subject: Bytes::from(dest),
        reply: None,
        deliver: None,
        headers: Some(Bytes::from(hdrs)),
        payload,
    })
}

/// Map `subject` (which `src` matches) onto `dest`: `$N` and `{{wildcard(N)}}`
/// take the N-th `*` token, a trailing `>` the rest. `None` when `src` does not match.
fn transform(src: &str, dest: &str, subject: &str) -> Option<String> {
    if !subject_matches(src.as_bytes(), subject.as_bytes()) {
        return None;
    }
    let st: Vec<&str> = subject.split('.').collect();
    let mut stars = Vec::new();
    let mut rest = String::new();
    for (i, tok) in src.split('.').enumerate() {
        match tok {
            "*" => stars.push(*st.get(i)?),
            ">" => rest = st.get(i..)?.join("."),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for tok in dest.split('.') {
        let t = tok.trim();
        let wildcard = t.strip_prefix('$').or_else(|| {
            t.strip_prefix("{{")
                .and_then(|x| x.strip_suffix("}}"))
                .map(str::trim)
                .and_then(|x| x.strip_prefix("wildcard("))
                .and_then(|x| x.strip_suffix(')'))
                .map(str::trim)
        });
        match (t, wildcard.and_then(|n| n.parse::<usize>().ok())) {
            (">", _) => out.push(rest.clone()),
            (_, Some(n)) if n >= 1 => out.push((*stars.get(n - 1)?).to_string()),
            _ => out.push(tok.to_string()),
        }
    }
    Some(out.join("."))
}

/// The internal subscriptions of a stream: its subjects, and its direct-get
/// subjects when it allows direct gets.
fn subscribe_stream(cfg: &StreamConfig, id: u64, out: &mut Vec<(Target, String)>) {
    for s in &cfg.subjects {
        out.push((Target::Stream(id), s.clone()));
    }
    if cfg.allow_direct {
        out.push((
            Target::Direct(id),
            format!("$JS.API.DIRECT.GET.{}", cfg.name),
        ));
        out.push((
            Target::Direct(id),
            format!("$JS.API.DIRECT.GET.{}.>", cfg.name),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::transform;

    #[test]
    fn republish_transforms() {
        assert_eq!(
            transform(">", "rp.>", "orders.1").as_deref(),
            Some("rp.orders.1")
        );
        assert_eq!(
            transform("orders.*", "new.$1", "orders.7").as_deref(),
            Some("new.7")
        );
        assert_eq!(
            transform("a.*.*", "b.{{wildcard(2)}}.{{ wildcard(1) }}", "a.x.y").as_deref(),
            Some("b.y.x")
        );
        assert_eq!(transform("orders.*", "x", "other.1"), None);
        assert_eq!(transform("a.>", "lit", "a.b.c").as_deref(), Some("lit"));
    }
}
