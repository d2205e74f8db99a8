//! File persistence of one stream, expressed as storage operations.
//!
//! Layout under the store directory:
//! - `streams/<name>/meta.json`: the config and creation time, replaced
//!   atomically (write a temporary file, sync it, rename it over).
//! - `streams/<name>/log/<n>.seg`: the record log (see [`super::log`]), split
//!   into segments of about [`SEGMENT_BYTES`]. Only the last segment is appended to.
//!
//! - `streams/<name>/index`: a checkpoint of the stream's metadata as of a log
//!   position (see [`super::index`]), replaced atomically like `meta.json`. It
//!   is written when a segment is closed, and otherwise every
//!   [`DEFAULT_INDEX_FLUSHES`] flushes (configurable) or [`INDEX_BYTES`] bytes
//!   of log, whichever comes first, but never before as many bytes of log as
//!   the previous index's size (so its cost stays proportional to the log);
//!   always after the log bytes it covers were synced.
//!
//! Records are queued as the stream changes and emitted, one `Write` and one
//! `Sync` per stream, when the engine flushes at the end of an input: every
//! publish of that input shares the fsync (group commit), and its PubAck waits for
//! the Sync's completion.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};

use super::log;
use super::store::{Loc, StoredMsg};
use crate::storage::{StorageId, StorageOp};

/// A segment is closed, and a new one started, past this size.
pub const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// An index is written after this many flushes (by default) ...
pub const DEFAULT_INDEX_FLUSHES: u64 = 1024;
/// ... or this many bytes of log since the last one.
pub const INDEX_BYTES: u64 = 8 * 1024 * 1024;

/// Allocates storage operation ids.
#[derive(Debug, Default)]
pub struct OpIds(u64);

impl OpIds {
    pub fn alloc(&mut self) -> StorageId {
        self.0 += 1;
        StorageId(self.0)
    }

    /// The ids allocated after `since` (a value of [`OpIds::last`]).
    pub fn since(&self, since: u64) -> impl Iterator<Item = StorageId> {
        (since + 1..=self.0).map(StorageId)
    }

    /// The last id allocated.
    pub fn last(&self) -> u64 {
        self.0
    }
}

/// Storage operations to emit, in order.
pub type OpQueue = Vec<(StorageId, StorageOp)>;

/// The persistence state of one file-backed stream.
#[derive(Debug)]
pub struct Persist {
    dir: String,
    /// Number of the segment being appended to.
    seg: u64,
    /// Bytes written to it (or queued for writing).
    seg_len: u64,
    /// Encoded records not yet emitted.
    pending: BytesMut,
    /// Highest sequence held in each segment (0 if none), for dropping old ones.
    segments: BTreeMap<u64, u64>,
    /// Flushes and log bytes since the last index.
    since_index: (u64, u64),
    /// Write an index after this many flushes.
    index_flushes: u64,
    /// The log position after the last flush's Write, when an index is due.
    index_due: Option<(u64, u64)>,
    /// Size of the last index written. The next waits for at least as many
    /// bytes of log, so rewriting the whole index costs no more than the log
    /// itself, however large the stream grows.
    last_index_len: u64,
}

/// Write `data` as the whole of `tmp`: write it, cut the file to its
/// length, sync it. Returns the Sync's id.
pub fn write_temp(tmp: &str, data: Bytes, ids: &mut OpIds, ops: &mut OpQueue) -> StorageId {
    let len = data.len() as u64;
    ops.push((
        ids.alloc(),
        StorageOp::Write {
            file: tmp.to_string(),
            offset: 0,
            data,
        },
    ));
    ops.push((
        ids.alloc(),
        StorageOp::Truncate {
            file: tmp.to_string(),
            len,
        },
    ));
    let sync = ids.alloc();
    ops.push((
        sync,
        StorageOp::Sync {
            file: tmp.to_string(),
        },
    ));
    sync
}

/// Replace `dir/name` atomically: [`write_temp`] `name.tmp`, rename it over.
/// Returns the Rename's id: once it completed, the new contents are durable.
pub fn replace_file(
    dir: &str,
    name: &str,
    data: Bytes,
    ids: &mut OpIds,
    ops: &mut OpQueue,
) -> StorageId {
    let tmp = format!("{dir}/{name}.tmp");
    write_temp(&tmp, data, ids, ops);
    let id = ids.alloc();
    ops.push((
        id,
        StorageOp::Rename {
            from: tmp,
            to: format!("{dir}/{name}"),
        },
    ));
    id
}

pub fn stream_dir(name: &str) -> String {
    format!("streams/{name}")
}

pub fn segment_name(n: u64) -> String {
    format!("{n:010}.seg")
}

impl Persist {
    /// A fresh stream whose next sequence is `next_seq`.
    pub fn new(name: &str, next_seq: u64) -> Persist {
        let mut p = Persist {
            dir: stream_dir(name),
            seg: 1,
            seg_len: 0,
            pending: BytesMut::new(),
            segments: BTreeMap::from([(1, 0)]),
            since_index: (0, 0),
            index_flushes: DEFAULT_INDEX_FLUSHES,
            index_due: None,
            last_index_len: 0,
        };
        log::encode_next(&mut p.pending, next_seq);
        p
    }

    /// A recovered stream: `segments` maps each segment to its highest sequence,
    /// and the last one, of `last_len` good bytes, is appended to.
    pub fn recovered(name: &str, segments: BTreeMap<u64, u64>, last_len: u64) -> Persist {
        let seg = segments.keys().next_back().copied().unwrap_or(1);
        let mut segments = segments;
        segments.entry(seg).or_insert(0);
        Persist {
            dir: stream_dir(name),
            seg,
            seg_len: last_len,
            pending: BytesMut::new(),
            segments,
            since_index: (0, 0),
            index_flushes: DEFAULT_INDEX_FLUSHES,
            index_due: None,
            last_index_len: 0,
        }
    }

    /// An index of `len` bytes was encoded for the position last taken.
    pub fn index_encoded(&mut self, len: u64) {
        self.last_index_len = len;
    }

    /// Write an index every `n` flushes (at least 1).
    pub fn set_index_flushes(&mut self, n: u64) {
        self.index_flushes = n.max(1);
    }

    /// Each segment's highest sequence.
    pub fn segments(&self) -> &BTreeMap<u64, u64> {
        &self.segments
    }

    /// The log position an index is due for (taken: asked once).
    pub fn take_index_due(&mut self) -> Option<(u64, u64)> {
        let due = self.index_due.take();
        if due.is_some() {
            self.since_index = (0, 0);
        }
        due
    }

    /// Emit a Sync of segment `seg`; returns its id.
    pub fn sync_segment(&self, seg: u64, ids: &mut OpIds, ops: &mut OpQueue) -> StorageId {
        let id = ids.alloc();
        ops.push((
            id,
            StorageOp::Sync {
                file: self.seg_path(seg),
            },
        ));
        id
    }

    /// Write the index atomically. Only once the log bytes it covers are
    /// durable (the service waits for their Sync to complete).
    pub fn write_index(&self, data: Bytes, ids: &mut OpIds, ops: &mut OpQueue) {
        self.replace_file("index", data, ids, ops);
    }

    fn seg_path(&self, n: u64) -> String {
        format!("{}/log/{}", self.dir, segment_name(n))
    }

    /// Write `meta.json` atomically.
    pub fn write_meta(&self, json: Bytes, ids: &mut OpIds, ops: &mut OpQueue) {
        self.replace_file("meta.json", json, ids, ops);
    }

    fn replace_file(&self, name: &str, data: Bytes, ids: &mut OpIds, ops: &mut OpQueue) {
        replace_file(&self.dir, name, data, ids, ops);
    }

    /// Queue a message's record; returns where it will lie in the log.
    pub fn log_msg(&mut self, m: &StoredMsg) -> Loc {
        let offset = self.seg_len + self.pending.len() as u64;
        log::encode_msg(&mut self.pending, m);
        let len = self.seg_len + self.pending.len() as u64 - offset;
        let top = self.segments.entry(self.seg).or_insert(0);
        *top = (*top).max(m.seq);
        Loc {
            seg: self.seg,
            offset,
            len,
        }
    }

    /// How a record at `loc` can be read back: `Err` with its bytes while it
    /// is still queued (not yet emitted), `Ok` with a Read once its Write was
    /// emitted (the executor performs operations in order), `None` when its
    /// segment is gone.
    pub fn read_record(&self, loc: Loc) -> Option<Result<StorageOp, Bytes>> {
        if !self.segments.contains_key(&loc.seg) {
            return None;
        }
        if loc.seg == self.seg && loc.offset >= self.seg_len {
            let start = (loc.offset - self.seg_len) as usize;
            let end = start.saturating_add(loc.len as usize);
            let rec = self.pending.get(start..end)?;
            return Some(Err(Bytes::copy_from_slice(rec)));
        }
        Some(Ok(StorageOp::Read {
            file: self.seg_path(loc.seg),
            offset: loc.offset,
            len: loc.len,
        }))
    }

    pub fn log_delete(&mut self, seqs: &[u64]) {
        if !seqs.is_empty() {
            log::encode_delete(&mut self.pending, seqs);
        }
    }

    pub fn log_next(&mut self, next: u64) {
        log::encode_next(&mut self.pending, next);
    }

    /// Emit what was queued: one Write and one Sync. Returns the ids of the Write
    /// and of the Sync; the Sync completes once everything logged so far is
    /// durable, unless the Write failed. `next_seq` starts a new segment when this
    /// one is full. `first_seq` lets whole segments below it go.
    pub fn flush(
        &mut self,
        next_seq: u64,
        first_seq: u64,
        sync: bool,
        ids: &mut OpIds,
        ops: &mut OpQueue,
    ) -> Option<(StorageId, StorageId)> {
        if self.pending.is_empty() {
            return None;
        }
        let data = self.pending.split().freeze();
        let len = data.len() as u64;
        let file = self.seg_path(self.seg);
        let write_id = ids.alloc();
        ops.push((
            write_id,
            StorageOp::Write {
                file: file.clone(),
                offset: self.seg_len,
                data,
            },
        ));
        self.seg_len += len;
        let full = self.seg_len >= SEGMENT_BYTES;
        self.since_index.0 += 1;
        self.since_index.1 += len;
        let trigger =
            full || self.since_index.0 >= self.index_flushes || self.since_index.1 >= INDEX_BYTES;
        if trigger && self.since_index.1 >= self.last_index_len {
            self.index_due = Some((self.seg, self.seg_len));
        }
        // Relaxed mode (sync_interval) skips the fsync, except when closing a
        // segment: only the active segment is ever left unsynced.
        let done = if sync || full {
            let id = ids.alloc();
            ops.push((id, StorageOp::Sync { file }));
            id
        } else {
            write_id
        };
        if full {
            self.seg += 1;
            self.seg_len = 0;
            self.segments.insert(self.seg, 0);
            log::encode_next(&mut self.pending, next_seq);
        }
        self.drop_old_segments(first_seq, ids, ops);
        Some((write_id, done))
    }

    /// Make everything written so far durable (relaxed mode's periodic fsync).
    pub fn sync(&self, ids: &mut OpIds, ops: &mut OpQueue) {
        ops.push((
            ids.alloc(),
            StorageOp::Sync {
                file: self.seg_path(self.seg),
            },
        ));
    }

    /// Remove leading segments all of whose messages are gone. Only the head is
    /// removed, so a DELETE record never outlives a message it removed.
    fn drop_old_segments(&mut self, first_seq: u64, ids: &mut OpIds, ops: &mut OpQueue) {
        while self.segments.len() > 1 {
            let Some((&n, &max)) = self.segments.iter().next() else {
                break;
            };
            if n == self.seg || max >= first_seq {
                break;
            }
            self.segments.remove(&n);
            ops.push((
                ids.alloc(),
                StorageOp::Remove {
                    file: self.seg_path(n),
                },
            ));
        }
    }

    /// Remove everything of this stream.
    pub fn remove_all(&self, ids: &mut OpIds, ops: &mut OpQueue) {
        ops.push((
            ids.alloc(),
            StorageOp::RemoveDir {
                dir: self.dir.clone(),
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u64) -> StoredMsg {
        StoredMsg {
            seq,
            subject: Bytes::from_static(b"s"),
            headers: Bytes::new(),
            data: Bytes::from(vec![b'x'; 1024 * 1024]),
            ts: seq as i64,
        }
    }

    /// An index is due every `index_flushes` flushes, but never before the log
    /// has grown by the size of the previous index.
    #[test]
    fn index_cadence_is_amortised_over_the_log() {
        let mut ids = OpIds::default();
        let mut ops = Vec::new();
        let mut p = Persist::new("S", 1);
        p.set_index_flushes(1);
        let small = |seq| StoredMsg {
            data: Bytes::from_static(b"0123456789"),
            ..msg(seq)
        };
        p.log_msg(&small(1));
        p.flush(2, 1, true, &mut ids, &mut ops);
        assert!(p.take_index_due().is_some(), "first flush: index due");
        p.index_encoded(1000);
        let mut flushes = 0;
        let mut seq = 2;
        while p.take_index_due().is_none() {
            p.log_msg(&small(seq));
            p.flush(seq + 1, 1, true, &mut ids, &mut ops);
            seq += 1;
            flushes += 1;
            assert!(flushes < 1000);
        }
        // Each record is a few dozen bytes: several flushes passed, and they
        // added up to at least the 1000 bytes of the last index.
        assert!(flushes > 5, "{flushes}");
        let written: u64 = ops
            .iter()
            .rev()
            .take_while(|(_, op)| !matches!(op, StorageOp::Write { offset: 0, .. }))
            .filter_map(|(_, op)| match op {
                StorageOp::Write { data, .. } => Some(data.len() as u64),
                _ => None,
            })
            .sum();
        assert!(written >= 1000, "{written}");
    }

    #[test]
    fn flush_writes_then_syncs_and_rolls_segments() {
        let mut ids = OpIds::default();
        let mut ops = Vec::new();
        let mut p = Persist::new("S", 1);
        assert!(
            p.flush(1, 1, true, &mut ids, &mut ops).is_some(),
            "the NEXT record"
        );
        for s in 1..=40 {
            p.log_msg(&msg(s));
            p.flush(s + 1, 1, true, &mut ids, &mut ops);
        }
        let writes: Vec<&str> = ops
            .iter()
            .filter_map(|(_, op)| {
                if let StorageOp::Write { file, .. } = op {
                    Some(file.as_str())
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(writes.first(), Some(&"streams/S/log/0000000001.seg"));
        assert_eq!(writes.last(), Some(&"streams/S/log/0000000003.seg"));
        // Every Write is followed by a Sync of the same file.
        for pair in ops.windows(2) {
            if let (StorageOp::Write { file, .. }, next) = (&pair[0].1, &pair[1].1) {
                assert_eq!(next, &StorageOp::Sync { file: file.clone() });
            }
        }
        // Once every message of segment 1 is gone it is removed; segment 2 stays.
        ops.clear();
        p.log_delete(&[1]);
        p.flush(41, 17, true, &mut ids, &mut ops);
        let removed: Vec<&StorageOp> = ops
            .iter()
            .map(|(_, op)| op)
            .filter(|op| matches!(op, StorageOp::Remove { .. }))
            .collect();
        assert_eq!(
            removed,
            vec![&StorageOp::Remove {
                file: "streams/S/log/0000000001.seg".into()
            }]
        );
    }
}
