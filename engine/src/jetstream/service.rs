//! The JetStream service: the `$JS.API` request handlers, message capture into
//! streams, PubAcks that wait for durability, and recovery of file-backed
//! streams at start. It talks to the routing core only through [`Effects`].
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

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
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

/// Names endpoints page at this many entries, list endpoints at [`LIST_LIMIT`] (row J6).
const NAMES_LIMIT: usize = 1024;
const LIST_LIMIT: usize = 256;
/// Streams one account may have.
const MAX_STREAMS: usize = 10_000;
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
}

/// A message the service publishes into the routing core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub subject: Bytes,
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
                headers: None,
                payload: Bytes::from(json),
            });
        }
    }
}

/// A PubAck waiting for its log records to be durable.
struct PendingAck {
    reply: Bytes,
    payload: Bytes,
}

/// Who waits for a message read back from the log.
#[derive(Clone, Debug)]
enum Getter {
    /// `$JS.API.STREAM.MSG.GET`, answered on this reply subject.
    Api(Bytes),
    /// `$JS.API.DIRECT.GET`, answered on this reply subject.
    Direct(Bytes),
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
}

impl JetStream {
    /// Start the service. With persistence on, recovery begins: its storage
    /// operations are in `fx`, and requests are refused until it completes.
    pub fn start(cfg: JsConfig, fx: &mut Effects) -> JetStream {
        let mut js = JetStream {
            cfg,
            streams: BTreeMap::new(),
            next_id: 1,
            api: ApiStats::default(),
            ids: OpIds::default(),
            waiting: BTreeMap::new(),
            log_writes: BTreeMap::new(),
            doomed: BTreeSet::new(),
            outstanding: BTreeSet::new(),
            recovering: BTreeMap::new(),
            found: BTreeMap::new(),
            unrecoverable: BTreeMap::new(),
            ready: false,
            unsynced_since: None,
            reads: BTreeMap::new(),
            staged_index: BTreeMap::new(),
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
        let result = if full {
            Err(match stream.config.storage {
                StorageType::Memory => errors::memory_resources_exceeded(),
                StorageType::File => errors::storage_resources_exceeded(),
            })
        } else {
            stream.publish(subject, hdrs, data, now)
        };
        if let (Ok(Stored::New(seq)), Some(rp)) = (&result, stream.config.republish.as_ref()) {
            if let Some(out) = republish(rp, &stream.config.name, *seq, prev_on_subject, stream) {
                fx.publish.push(out);
            }
        }
        let persisted = stream.persist.is_some();
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
        if persisted && result.is_ok() {
            // Held until the flush at the end of this input makes it durable. A
            // duplicate is held too: the message it names may not be durable yet.
            self.waiting.entry(StorageId(0)).or_default().push(ack);
        } else {
            fx.publish.push(Outgoing {
                subject: ack.reply,
                headers: None,
                payload: ack.payload,
            });
        }
    }

    /// End of an input: emit every stream's queued log records (one write and
    /// one fsync per stream) and attach the held acks to the last sync.
    pub fn flush(&mut self, now: i64, fx: &mut Effects) {
        let sync = self.cfg.sync_interval_ns <= 0;
        let mut last_sync = None;
        let mut writes = Vec::new();
        for s in self.streams.values_mut() {
            let flushed = s.flush(sync, &mut self.ids, &mut fx.storage);
            if let Some((sync, data)) = s.staged_index.take() {
                self.staged_index.insert(sync, (s.id, data));
            }
            if let Some((write, done)) = flushed {
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
                        fx.publish.push(Outgoing {
                            subject: a.reply,
                            headers: None,
                            payload: a.payload,
                        });
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
        match (expiry, sync) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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

    /// A storage operation completed.
    pub fn storage_done(&mut self, id: StorageId, result: StorageResult, fx: &mut Effects) {
        if let Some(read) = self.reads.remove(&id) {
            return self.read_done(read, result, fx);
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
            }
            return;
        }
        self.outstanding.remove(&id);
        let result = if self.doomed.remove(&id) && !matches!(result, StorageResult::Error(_)) {
            StorageResult::Error("write failed".into())
        } else {
            result
        };
        if let Some(acks) = self.waiting.remove(&id) {
            match &result {
                StorageResult::Error(e) => {
                    for a in acks {
                        let err = errors::stream_store_failed(e);
                        let body = serde_json::to_vec(&serde_json::json!({"error": err}))
                            .unwrap_or_default();
                        fx.publish.push(Outgoing {
                            subject: a.reply,
                            headers: None,
                            payload: Bytes::from(body),
                        });
                    }
                }
                _ => {
                    for a in acks {
                        fx.publish.push(Outgoing {
                            subject: a.reply,
                            headers: None,
                            payload: a.payload,
                        });
                    }
                }
            }
            return;
        }
        if let Some(step) = self.recovering.remove(&id) {
            self.recover_step(step, result, fx);
        }
    }

    // ----- recovery -----

    fn recover_step(&mut self, step: Recovering, result: StorageResult, fx: &mut Effects) {
        match (step, result) {
            (Recovering::ListStreams, StorageResult::Names(names)) => {
                for name in names {
                    if !is_valid_name(&name) {
                        continue;
                    }
                    let dir = persist::stream_dir(&name);
                    let id = self.ids.alloc();
                    self.recovering.insert(id, Recovering::Meta(name.clone()));
                    fx.storage.push((
                        id,
                        StorageOp::Read {
                            file: format!("{dir}/meta.json"),
                            offset: 0,
                            len: 1 << 24,
                        },
                    ));
                    let id = self.ids.alloc();
                    self.recovering.insert(id, Recovering::Index(name.clone()));
                    fx.storage.push((
                        id,
                        StorageOp::Read {
                            file: format!("{dir}/index"),
                            offset: 0,
                            len: SEGMENT_READ_MAX,
                        },
                    ));
                    let id = self.ids.alloc();
                    self.recovering
                        .insert(id, Recovering::ListLog(name.clone()));
                    fx.storage.push((
                        id,
                        StorageOp::List {
                            dir: format!("{dir}/log"),
                        },
                    ));
                    self.found.insert(name, Found::default());
                }
            }
            (Recovering::Meta(name), StorageResult::Data(data)) => {
                match serde_json::from_slice::<Meta>(&data) {
                    Ok(meta) => {
                        if let Some(f) = self.found.get_mut(&name) {
                            f.meta = Some(meta);
                        }
                    }
                    Err(e) => {
                        if let Some(f) = self.found.get_mut(&name) {
                            f.broken = Some(format!("unreadable meta.json: {e}"));
                        }
                    }
                }
            }
            (Recovering::Index(name), result) => {
                let ix = match result {
                    StorageResult::Data(data) => {
                        let ix = index::decode(&data);
                        if ix.is_none() && !data.is_empty() {
                            tracing::warn!("JetStream stream '{name}': index unreadable, scanning the whole log");
                        }
                        ix
                    }
                    // No index (yet): the whole log is scanned.
                    _ => None,
                };
                if let Some(f) = self.found.get_mut(&name) {
                    f.index = Some(ix);
                }
                self.plan_reads(&name, fx);
            }
            (Recovering::ListLog(name), StorageResult::Names(names)) => {
                let mut segs: Vec<u64> = names
                    .iter()
                    .filter_map(|n| n.strip_suffix(".seg")?.parse().ok())
                    .collect();
                segs.sort_unstable();
                if let Some(f) = self.found.get_mut(&name) {
                    f.segments = Some(segs);
                }
                self.plan_reads(&name, fx);
            }
            (Recovering::Segment { stream, seg }, StorageResult::Data(data)) => {
                if let Some(f) = self.found.get_mut(&stream) {
                    let from = f
                        .index
                        .as_ref()
                        .and_then(Option::as_ref)
                        .filter(|ix| ix.seg == seg)
                        .map_or(0, |ix| ix.offset);
                    f.data.insert(seg, (from, data));
                }
            }
            (step, StorageResult::Error(e)) => {
                tracing::warn!("JetStream recovery: {step:?} failed: {e}");
                let name = match &step {
                    Recovering::Meta(n) | Recovering::Index(n) | Recovering::ListLog(n) => Some(n),
                    Recovering::Segment { stream, .. } => Some(stream),
                    Recovering::ListStreams => None,
                };
                if let Some(f) = name.and_then(|n| self.found.get_mut(n)) {
                    f.broken = Some(format!("{step:?} failed: {e}"));
                }
            }
            (step, other) => {
                tracing::warn!("JetStream recovery: {step:?} gave unexpected {other:?}")
            }
        }
        if self.recovering.is_empty() && !self.ready {
            self.finish_recovery(fx);
        }
    }

    /// Once a stream's index was read and its log listed, read the log: with a
    /// usable index, only what follows its position; otherwise all of it.
    fn plan_reads(&mut self, name: &str, fx: &mut Effects) {
        let Some(f) = self.found.get_mut(name) else {
            return;
        };
        let (Some(ix), Some(segs)) = (&mut f.index, &f.segments) else {
            return;
        };
        // An index is only usable when every segment it covers is still there
        // (a removal may have become durable before a newer index).
        if ix.as_ref().is_some_and(|i| {
            !segs.contains(&i.seg) || i.segments.keys().any(|n| *n <= i.seg && !segs.contains(n))
        }) {
            tracing::warn!(
                "JetStream stream '{name}': index does not match the log, scanning the whole log"
            );
            *ix = None;
        }
        let (from_seg, from_off) = ix.as_ref().map_or((0, 0), |i| (i.seg, i.offset));
        let dir = persist::stream_dir(name);
        for &seg in segs.iter().filter(|s| **s >= from_seg) {
            let id = self.ids.alloc();
            self.recovering.insert(
                id,
                Recovering::Segment {
                    stream: name.to_string(),
                    seg,
                },
            );
            let offset = if seg == from_seg { from_off } else { 0 };
            fx.storage.push((
                id,
                StorageOp::Read {
                    file: format!("{dir}/log/{}", persist::segment_name(seg)),
                    offset,
                    len: SEGMENT_READ_MAX,
                },
            ));
        }
    }

    fn finish_recovery(&mut self, fx: &mut Effects) {
        let found = std::mem::take(&mut self.found);
        for (name, f) in found {
            if let Some(why) = f.broken {
                // Never append over files we could not read: keep the stream out
                // of service (and its name taken) until an operator looks.
                tracing::error!("JetStream stream '{name}' could not be recovered ({why}); its files are kept and it is not served");
                self.unrecoverable.insert(name, why);
                continue;
            }
            let Some(meta) = f.meta else { continue };
            let mut store = MsgStore::new(Accounting::File, 1);
            store.set_cache_budget(Some(self.cfg.cache_bytes));
            let all = f.segments.unwrap_or_default();
            let mut segments = BTreeMap::new();
            let mut from_seg = 0;
            if let Some(ix) = f.index.flatten() {
                store.restore(ix.next_seq, ix.last_ts, ix.purged);
                for m in ix.msgs {
                    store.insert_meta(m);
                }
                // Segments the index covers; any other one before its position
                // is a leftover whose removal was lost: it goes at the next flush.
                for &seg in all.iter().filter(|s| **s < ix.seg) {
                    segments.insert(seg, ix.segments.get(&seg).copied().unwrap_or(0));
                }
                segments.insert(ix.seg, ix.segments.get(&ix.seg).copied().unwrap_or(0));
                from_seg = ix.seg;
            }
            let mut last_len = 0;
            let last_seg = all.last().copied();
            for seg in all.iter().filter(|s| **s >= from_seg) {
                let Some((base, data)) = f.data.get(seg) else {
                    continue;
                };
                let decoded = log::decode(data);
                for off in &decoded.corrupt {
                    tracing::warn!("JetStream stream '{name}': corrupt record in segment {seg} at offset {}, skipped", base + off);
                }
                let mut max = segments.get(seg).copied().unwrap_or(0);
                for (r, (offset, len)) in decoded.records.into_iter().zip(decoded.spans) {
                    match r {
                        Record::Msg(m) => {
                            max = max.max(m.seq);
                            let loc = Loc {
                                seg: *seg,
                                offset: base + offset,
                                len,
                            };
                            store.insert(detached(m), Some(loc));
                        }
                        Record::Delete(runs) => {
                            for (first, len) in runs {
                                for s in first..first.saturating_add(len) {
                                    store.remove(s);
                                }
                            }
                        }
                        Record::Next(n) => store.skip_to(n),
                    }
                }
                segments.insert(*seg, max);
                if Some(*seg) == last_seg {
                    last_len = base + decoded.good_len;
                    if decoded.good_len < data.len() as u64 {
                        tracing::warn!(
                            "JetStream stream '{name}': torn tail of {} bytes in segment {seg} cut off",
                            data.len() as u64 - decoded.good_len
                        );
                        let file = format!(
                            "{}/log/{}",
                            persist::stream_dir(&name),
                            persist::segment_name(*seg)
                        );
                        fx.storage.push((
                            self.ids.alloc(),
                            StorageOp::Truncate {
                                file,
                                len: last_len,
                            },
                        ));
                    }
                }
            }
            let mut persist = if segments.is_empty() {
                Persist::new(&name, store.last_seq() + 1)
            } else {
                Persist::recovered(&name, segments, last_len)
            };
            persist.set_index_flushes(self.cfg.index_flushes);
            // The config is replaced atomically before the log records of the
            // evictions it caused are synced: a crash in between leaves more
            // messages than the limits allow. Evict them again (logged), before
            // the dedup window is rebuilt from what is left.
            let limits = Limits {
                max_msgs: meta.config.max_msgs,
                max_bytes: meta.config.max_bytes,
                ..Limits::NONE
            };
            let removed = store.enforce(&limits, 0, None);
            if !removed.seqs.is_empty() {
                tracing::warn!(
                    "JetStream stream '{name}': {} messages over the stream's limits removed",
                    removed.seqs.len()
                );
                persist.log_delete(&removed.seqs);
            }
            let id = self.next_id;
            self.next_id += 1;
            let stream = Stream::recovered(id, meta.config, meta.created, store, persist);
            subscribe_stream(&stream.config, id, &mut fx.subscribe);
            tracing::info!(
                "  Restored {} messages for stream '{name}'",
                stream.store.len()
            );
            self.streams.insert(name, stream);
        }
        self.ready = true;
    }

    // ----- the API -----

    /// A request on one of the API subjects.
    pub fn api(
        &mut self,
        subject: &str,
        reply: Option<&Bytes>,
        body: &Bytes,
        now: i64,
        fx: &mut Effects,
    ) {
        let Some(reply) = reply.filter(|r| !r.is_empty()) else {
            return;
        };
        self.api.total += 1;
        let before = fx.publish.len();
        let rest = subject.strip_prefix("$JS.API.").unwrap_or("");
        let (op, name) = match rest.rsplit_once('.') {
            Some((op, name)) if op.starts_with("STREAM.") && op != "STREAM" => (op, name),
            _ => (rest, ""),
        };
        if !self.ready {
            let err = errors::insufficient_resources();
            self.api.errors += 1;
            fx.reply(
                reply,
                &serde_json::json!({"type": "io.nats.jetstream.api.v1.error", "error": err}),
            );
            return;
        }
        match op {
            "INFO" => self.account_info(reply, fx),
            "STREAM.CREATE" => self.stream_create(name, reply, body, now, fx),
            "STREAM.UPDATE" => self.stream_update(name, reply, body, fx),
            "STREAM.INFO" => self.stream_info(name, reply, body, fx),
            "STREAM.DELETE" => self.stream_delete(name, reply, fx),
            "STREAM.NAMES" => self.stream_names(reply, body, fx),
            "STREAM.LIST" => self.stream_list(reply, body, fx),
            "STREAM.PURGE" => self.stream_purge(name, reply, body, fx),
            "STREAM.MSG.GET" => self.msg_get(name, reply, body, fx),
            "STREAM.MSG.DELETE" => self.msg_delete(name, reply, body, fx),
            _ => {}
        }
        if fx.publish[before..]
            .iter()
            .any(|o| o.payload.starts_with(b"{\"type\"") && is_error(&o.payload))
        {
            self.api.errors += 1;
        }
    }

    fn usage(&self) -> (u64, u64) {
        let mut mem = 0;
        let mut file = 0;
        for s in self.streams.values() {
            match s.config.storage {
                StorageType::Memory => mem += s.store.bytes(),
                StorageType::File => file += s.store.bytes(),
            }
        }
        (mem, file)
    }

    fn account_info(&mut self, reply: &Bytes, fx: &mut Effects) {
        let (memory, storage) = self.usage();
        let stats = AccountStats {
            memory,
            storage,
            streams: self.streams.len(),
            consumers: 0,
            limits: AccountLimits {
                max_memory: -1,
                max_storage: -1,
                max_streams: -1,
                max_consumers: -1,
                max_ack_pending: -1,
                memory_max_stream_bytes: -1,
                storage_max_stream_bytes: -1,
                max_bytes_required: false,
            },
            domain: String::new(),
            api: self.api,
            tiers: BTreeMap::new(),
        };
        fx.reply(reply, &AccountInfoResponse::ok(stats));
    }

    fn limits(&self) -> ServerLimits {
        ServerLimits::default()
    }

    fn overlaps_other(&self, cfg: &StreamConfig) -> bool {
        self.streams
            .values()
            .filter(|s| s.config.name != cfg.name)
            .any(|s| {
                s.config
                    .subjects
                    .iter()
                    .any(|a| cfg.subjects.iter().any(|b| subjects_overlap(a, b)))
            })
    }

    fn stream_create(
        &mut self,
        name: &str,
        reply: &Bytes,
        body: &Bytes,
        now: i64,
        fx: &mut Effects,
    ) {
        let fail = |fx: &mut Effects, e: ApiError| fx.reply(reply, &StreamCreateResponse::error(e));
        let cfg = match request_config(name, body)
            .and_then(|mut c| c.normalize_for_create(&self.limits()).map(|()| c))
        {
            Ok(c) => c,
            Err(e) => return fail(fx, e),
        };
        if let Some(why) = self.unrecoverable.get(&cfg.name) {
            let text = format!("stream exists on disk but could not be recovered: {why}");
            return fail(fx, errors::stream_create(text));
        }
        if let Some(existing) = self.streams.get(&cfg.name) {
            if existing.config == cfg {
                let mut resp = StreamCreateResponse::ok(existing.info());
                resp.did_create = false;
                return fx.reply(reply, &resp);
            }
            return fail(fx, errors::stream_name_exist());
        }
        if self.overlaps_other(&cfg) {
            return fail(fx, errors::stream_subject_overlap());
        }
        if self.streams.len() >= MAX_STREAMS {
            return fail(fx, errors::maximum_streams_limit());
        }
        let id = self.next_id;
        self.next_id += 1;
        let mut stream = Stream::new(id, cfg.clone(), now);
        if !self.cfg.persist {
            stream.persist = None;
        }
        if let Some(p) = stream.persist.as_mut() {
            p.set_index_flushes(self.cfg.index_flushes);
            stream.store.set_cache_budget(Some(self.cfg.cache_bytes));
        }
        if let Some(p) = &stream.persist {
            let meta = Meta {
                config: cfg.clone(),
                created: now,
            };
            p.write_meta(
                Bytes::from(serde_json::to_vec(&meta).unwrap_or_default()),
                &mut self.ids,
                &mut fx.storage,
            );
        }
        subscribe_stream(&cfg, id, &mut fx.subscribe);
        fx.reply(reply, &StreamCreateResponse::ok(stream.info()));
        self.streams.insert(cfg.name.clone(), stream);
    }

    fn stream_update(&mut self, name: &str, reply: &Bytes, body: &Bytes, fx: &mut Effects) {
        let fail = |fx: &mut Effects, e: ApiError| fx.reply(reply, &StreamUpdateResponse::error(e));
        let cfg = match request_config(name, body)
            .and_then(|mut c| c.normalize(&self.limits()).map(|()| c))
        {
            Ok(c) => c,
            Err(e) => return fail(fx, e),
        };
        let Some(old) = self.streams.get(name).map(|s| s.config.clone()) else {
            return fail(fx, errors::stream_not_found());
        };
        let cfg = match types::apply_update(&old, &cfg) {
            Ok(c) => c,
            Err(e) => return fail(fx, e),
        };
        if self.overlaps_other(&cfg) {
            return fail(fx, errors::stream_subject_overlap());
        }
        let Some(stream) = self.streams.get_mut(name) else {
            return;
        };
        subscribe_stream(&old, stream.id, &mut fx.unsubscribe);
        subscribe_stream(&cfg, stream.id, &mut fx.subscribe);
        stream.config = cfg.clone();
        let now = stream.store.last_ts();
        let removed = stream.store.enforce(&stream.limits(), now, None);
        stream.log_removed(&removed.seqs);
        if let Some(p) = &stream.persist {
            let meta = Meta {
                config: cfg,
                created: stream.created,
            };
            p.write_meta(
                Bytes::from(serde_json::to_vec(&meta).unwrap_or_default()),
                &mut self.ids,
                &mut fx.storage,
            );
        }
        fx.reply(reply, &StreamUpdateResponse::ok(stream.info()));
    }

    fn stream_info(&mut self, name: &str, reply: &Bytes, body: &Bytes, fx: &mut Effects) {
        let req: StreamInfoRequest = match types::parse_request(body) {
            Ok(r) => r,
            Err(e) => return fx.reply(reply, &StreamInfoResponse::error(e)),
        };
        let Some(stream) = self.streams.get(name) else {
            return fx.reply(
                reply,
                &StreamInfoResponse::error(errors::stream_not_found()),
            );
        };
        let mut info = stream.info();
        info.cluster = Some(ClusterInfo {
            leader: self.cfg.server_name.clone(),
            ..ClusterInfo::default()
        });
        let mut paged = ApiPaged::default();
        if !req.subjects_filter.is_empty() {
            let counts = stream.store.subject_counts(req.subjects_filter.as_bytes());
            paged = ApiPaged {
                total: counts.len(),
                offset: req.offset,
                limit: 100_000,
            };
            info.state.subjects = counts
                .into_iter()
                .skip(req.offset)
                .take(100_000)
                .map(|(s, n)| (String::from_utf8_lossy(&s).into_owned(), n))
                .collect();
        }
        if req.deleted_details {
            let first = stream.store.first_seq();
            let last = stream.store.last_seq();
            info.state.deleted = (first..=last)
                .filter(|s| !stream.store.contains(*s))
                .take(100_000)
                .collect();
        }
        fx.reply(reply, &StreamInfoResponse::ok(info, paged));
    }

    fn stream_delete(&mut self, name: &str, reply: &Bytes, fx: &mut Effects) {
        let Some(stream) = self.streams.remove(name) else {
            return fx.reply(
                reply,
                &StreamDeleteResponse::error(errors::stream_not_found()),
            );
        };
        subscribe_stream(&stream.config, stream.id, &mut fx.unsubscribe);
        if let Some(p) = &stream.persist {
            p.remove_all(&mut self.ids, &mut fx.storage);
        }
        fx.reply(reply, &StreamDeleteResponse::ok());
    }

    /// Stream names matching a names/list request's subject filter, sorted.
    fn matching_names(&self, subject: &str) -> Vec<String> {
        self.streams
            .values()
            .filter(|s| {
                subject.is_empty()
                    || s.config
                        .subjects
                        .iter()
                        .any(|x| subjects_overlap(x, subject))
            })
            .map(|s| s.config.name.clone())
            .collect()
    }

    fn stream_names(&mut self, reply: &Bytes, body: &Bytes, fx: &mut Effects) {
        let req: StreamNamesRequest = match types::parse_request(body) {
            Ok(r) => r,
            Err(e) => return fx.reply(reply, &StreamNamesResponse::error(e)),
        };
        if !req.subject.is_empty() && !is_valid_subject(req.subject.as_bytes()) {
            return fx.reply(reply, &StreamNamesResponse::error(errors::bad_request()));
        }
        let names = self.matching_names(&req.subject);
        let total = names.len();
        let page: Vec<String> = names
            .into_iter()
            .skip(req.offset)
            .take(NAMES_LIMIT)
            .collect();
        fx.reply(
            reply,
            &StreamNamesResponse::ok(
                page,
                ApiPaged {
                    total,
                    offset: req.offset,
                    limit: NAMES_LIMIT,
                },
            ),
        );
    }

    fn stream_list(&mut self, reply: &Bytes, body: &Bytes, fx: &mut Effects) {
        let req: StreamListRequest = match types::parse_request(body) {
            Ok(r) => r,
            Err(e) => return fx.reply(reply, &StreamListResponse::error(e)),
        };
        let names = self.matching_names(&req.subject);
        let total = names.len();
        let infos: Vec<StreamInfo> = names
            .iter()
            .skip(req.offset)
            .take(LIST_LIMIT)
            .filter_map(|n| self.streams.get(n))
            .map(Stream::info)
            .collect();
        fx.reply(
            reply,
            &StreamListResponse::ok(
                infos,
                ApiPaged {
                    total,
                    offset: req.offset,
                    limit: LIST_LIMIT,
                },
            ),
        );
    }

    fn stream_purge(&mut self, name: &str, reply: &Bytes, body: &Bytes, fx: &mut Effects) {
        let fail = |fx: &mut Effects, e: ApiError| fx.reply(reply, &StreamPurgeResponse::error(e));
        let req: StreamPurgeRequest = match types::parse_request(body) {
            Ok(r) => r,
            Err(e) => return fail(fx, e),
        };
        let Some(stream) = self.streams.get_mut(name) else {
            return fail(fx, errors::stream_not_found());
        };
        if stream.config.sealed {
            return fail(fx, errors::stream_sealed());
        }
        if stream.config.deny_purge {
            return fail(fx, errors::stream_purge_not_permitted());
        }
        if req.seq > 0 && req.keep > 0 {
            return fail(fx, errors::bad_request());
        }
        let filter = (!req.filter.is_empty()).then_some(req.filter.as_bytes());
        if filter.is_some_and(|f| !is_valid_subject(f)) {
            return fail(fx, errors::bad_request());
        }
        let upto = (req.seq > 0).then_some(req.seq);
        let keep = (req.keep > 0).then_some(req.keep);
        let next_before = stream.store.last_seq() + 1;
        let removed = stream.store.purge(filter, upto, keep);
        stream.log_removed(&removed.seqs);
        let next_after = stream.store.last_seq() + 1;
        if next_after != next_before {
            if let Some(p) = stream.persist.as_mut() {
                p.log_next(next_after);
            }
        }
        fx.reply(reply, &StreamPurgeResponse::ok(removed.seqs.len() as u64));
    }

    fn msg_get(&mut self, name: &str, reply: &Bytes, body: &Bytes, fx: &mut Effects) {
        let fail = |fx: &mut Effects, e: ApiError| fx.reply(reply, &MsgGetResponse::error(e));
        let req: MsgGetRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return fail(fx, errors::invalid_json(e)),
        };
        let Some(stream) = self.streams.get(name) else {
            return fail(fx, errors::stream_not_found());
        };
        let stream_id = stream.id;
        let forms = [
            req.seq > 0 && req.next_by_subj.is_empty(),
            !req.last_by_subj.is_empty(),
            !req.next_by_subj.is_empty(),
        ];
        if forms.iter().filter(|f| **f).count() != 1 {
            return fail(fx, errors::bad_request());
        }
        let found = if !req.last_by_subj.is_empty() {
            stream.store.last_matching(req.last_by_subj.as_bytes())
        } else if !req.next_by_subj.is_empty() {
            stream
                .store
                .next_matching(req.seq.max(1), req.next_by_subj.as_bytes())
        } else {
            stream.store.contains(req.seq).then_some(req.seq)
        };
        match found {
            Some(seq) => self.get_msg(stream_id, seq, Getter::Api(reply.clone()), fx),
            None => fail(fx, errors::no_message_found()),
        }
    }

    fn msg_delete(&mut self, name: &str, reply: &Bytes, body: &Bytes, fx: &mut Effects) {
        let fail = |fx: &mut Effects, e: ApiError| fx.reply(reply, &MsgDeleteResponse::error(e));
        let req: MsgDeleteRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return fail(fx, errors::invalid_json(e)),
        };
        let Some(stream) = self.streams.get_mut(name) else {
            return fail(fx, errors::stream_not_found());
        };
        if stream.config.sealed {
            return fail(fx, errors::stream_sealed());
        }
        if stream.config.deny_delete {
            return fail(fx, errors::message_delete_not_permitted());
        }
        if stream.store.remove(req.seq).is_none() {
            return fail(fx, errors::sequence_not_found(req.seq));
        }
        stream.log_removed(&[req.seq]);
        fx.reply(reply, &MsgDeleteResponse::ok());
    }

    /// `$JS.API.DIRECT.GET.<stream>[.<subject>]` (row S11, S12): the message
    /// itself, with Nats-* headers, or a status.
    pub fn direct_get(
        &mut self,
        stream_id: u64,
        subject: &str,
        reply: Option<&Bytes>,
        body: &Bytes,
        fx: &mut Effects,
    ) {
        let Some(reply) = reply.filter(|r| !r.is_empty()).cloned() else {
            return;
        };
        let Some(stream) = self.streams.values().find(|s| s.id == stream_id) else {
            return;
        };
        let prefix = format!("$JS.API.DIRECT.GET.{}", stream.config.name);
        let status = |fx: &mut Effects, s: &str| {
            fx.publish.push(Outgoing {
                subject: reply.clone(),
                headers: Some(Bytes::from(headers::build(Some(s), &[]))),
                payload: Bytes::new(),
            })
        };
        let found = if let Some(last) = subject
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_prefix('.'))
        {
            if !body.is_empty() {
                return status(fx, "408 Bad Request");
            }
            stream.store.last_matching(last.as_bytes())
        } else {
            if body.is_empty() {
                return status(fx, "408 Empty Request");
            }
            let Ok(req) = serde_json::from_slice::<MsgGetRequest>(body) else {
                return status(fx, "408 Malformed Request");
            };
            if !req.last_by_subj.is_empty() {
                stream.store.last_matching(req.last_by_subj.as_bytes())
            } else if !req.next_by_subj.is_empty() {
                stream
                    .store
                    .next_matching(req.seq.max(1), req.next_by_subj.as_bytes())
            } else if req.seq > 0 {
                stream.store.contains(req.seq).then_some(req.seq)
            } else {
                return status(fx, "408 Bad Request");
            }
        };
        let Some(seq) = found else {
            return status(fx, "404 Message Not Found");
        };
        self.get_msg(stream_id, seq, Getter::Direct(reply), fx);
    }

    /// Answer a get of a held message: at once when it is cached (or its record
    /// not yet emitted), otherwise once a Read of its log record completes.
    fn get_msg(&mut self, stream_id: u64, seq: u64, getter: Getter, fx: &mut Effects) {
        let Some(stream) = self.streams.values().find(|s| s.id == stream_id) else {
            return;
        };
        if let Some(m) = stream.store.get(seq) {
            return answer_get(&stream.config.name, &getter, Ok(&m), fx);
        }
        let name = stream.config.name.clone();
        let how = match (stream.store.meta(seq).and_then(|m| m.loc), &stream.persist) {
            (Some(loc), Some(p)) => p.read_record(loc),
            _ => None,
        };
        match how {
            Some(Err(record)) => {
                let m = record_msg(&record, seq);
                if m.is_none() {
                    tracing::warn!(
                        "JetStream stream '{name}': queued record of message {seq} unreadable"
                    );
                }
                answer_get(&name, &getter, m.as_ref().ok_or(GetError::Missing), fx);
            }
            Some(Ok(op)) => {
                if self.reads.len() >= MAX_PENDING_READS {
                    return answer_get(&name, &getter, Err(GetError::Busy), fx);
                }
                let id = self.ids.alloc();
                self.reads.insert(
                    id,
                    PendingRead {
                        stream_id,
                        seq,
                        getter,
                    },
                );
                fx.storage.push((id, op));
            }
            None => {
                tracing::warn!("JetStream stream '{name}': message {seq} has no readable record");
                answer_get(&name, &getter, Err(GetError::Missing), fx);
            }
        }
    }

    /// A Read of a message record completed: answer its getter.
    fn read_done(&mut self, read: PendingRead, result: StorageResult, fx: &mut Effects) {
        let Some(stream) = self.streams.values_mut().find(|s| s.id == read.stream_id) else {
            // The stream was deleted meanwhile.
            return answer_get("", &read.getter, Err(GetError::Missing), fx);
        };
        let name = stream.config.name.clone();
        let seq = read.seq;
        let got = match result {
            StorageResult::Data(data) => match record_msg(&data, seq) {
                Some(m) => Ok(m),
                None => {
                    tracing::warn!(
                        "JetStream stream '{name}': record of message {seq} failed to decode"
                    );
                    Err(GetError::Missing)
                }
            },
            StorageResult::Error(e) => {
                tracing::warn!("JetStream stream '{name}': read of message {seq} failed: {e}");
                Err(GetError::Failed(e))
            }
            other => {
                tracing::warn!("JetStream stream '{name}': read of message {seq} gave {other:?}");
                Err(GetError::Missing)
            }
        };
        if let Ok(m) = &got {
            stream
                .store
                .cache_put(seq, m.headers.clone(), m.data.clone());
        }
        if matches!(read.getter, Getter::Api(_)) && got.is_err() {
            self.api.errors += 1;
        }
        answer_get(&name, &read.getter, got.as_ref().map_err(Clone::clone), fx);
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

/// Why a get found no message to answer with.
#[derive(Clone, Debug)]
enum GetError {
    /// The record is gone or unreadable.
    Missing,
    /// Too many reads in flight.
    Busy,
    /// The read failed.
    Failed(String),
}

/// Answer a MSG.GET or DIRECT.GET.
fn answer_get(name: &str, getter: &Getter, got: Result<&StoredMsg, GetError>, fx: &mut Effects) {
    match (getter, got) {
        (Getter::Api(reply), Ok(m)) => fx.reply(reply, &MsgGetResponse::ok(Stream::api_msg(m))),
        (Getter::Api(reply), Err(e)) => {
            let err = match e {
                GetError::Missing => errors::no_message_found(),
                GetError::Busy => errors::insufficient_resources(),
                GetError::Failed(e) => errors::stream_store_failed(e),
            };
            fx.reply(reply, &MsgGetResponse::error(err));
        }
        (Getter::Direct(reply), Ok(m)) => {
            let seq = m.seq.to_string();
            let ts = Timestamp::from_unix_nanos(m.ts).to_string();
            let subj = String::from_utf8_lossy(&m.subject).into_owned();
            let pairs = [
                ("Nats-Stream", name),
                ("Nats-Subject", subj.as_str()),
                ("Nats-Sequence", seq.as_str()),
                ("Nats-Time-Stamp", ts.as_str()),
            ];
            let hdrs = headers::append(&m.headers, &pairs);
            fx.publish.push(Outgoing {
                subject: reply.clone(),
                headers: Some(Bytes::from(hdrs)),
                payload: m.data.clone(),
            });
        }
        (Getter::Direct(reply), Err(e)) => {
            let status = match e {
                GetError::Missing => "404 Message Not Found",
                GetError::Busy | GetError::Failed(_) => "503 Service Unavailable",
            };
            fx.publish.push(Outgoing {
                subject: reply.clone(),
                headers: Some(Bytes::from(headers::build(Some(status), &[]))),
                payload: Bytes::new(),
            });
        }
    }
}

/// The message in one record read back from the log, if it is the message
/// with sequence `seq` and its checksum holds.
fn record_msg(record: &Bytes, seq: u64) -> Option<StoredMsg> {
    match log::decode_one(record)? {
        Record::Msg(m) if m.seq == seq => Some(m),
        _ => None,
    }
}

/// A message decoded from a whole segment, copied out of it so the cache does
/// not hold the segment's buffer.
fn detached(m: StoredMsg) -> StoredMsg {
    StoredMsg {
        seq: m.seq,
        subject: Bytes::copy_from_slice(&m.subject),
        headers: Bytes::copy_from_slice(&m.headers),
        data: Bytes::copy_from_slice(&m.data),
        ts: m.ts,
    }
}

/// The config in a create or update request; its name, when given, must match
/// the one in the subject (10056).
fn request_config(name: &str, body: &Bytes) -> Result<StreamConfig, ApiError> {
    let mut cfg: StreamConfig = types::parse_request(body)?;
    if cfg.name.is_empty() {
        cfg.name = name.to_string();
    } else if cfg.name != name {
        return Err(errors::stream_mismatch());
    }
    Ok(cfg)
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

fn is_error(payload: &[u8]) -> bool {
    memchr::memmem::find(payload, b"\"error\":").is_some()
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
