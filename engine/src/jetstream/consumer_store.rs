//! The on-disk state of a durable consumer of a file-backed stream. Pure
//! encoding and decoding plus the storage operations that write it; the
//! service decides when.
//!
//! Layout under the stream's directory:
//! - `obs/<name>/meta.json`: the consumer's config and creation time,
//!   replaced atomically (temporary file, sync, rename).
//! - `obs/<name>/state`: snapshots of the delivery and ack state, appended.
//!   Each is framed as `magic u32 ("NACS")  body_len u32  body  crc32 u32`
//!   (little-endian; the CRC covers the body), and the body is
//!   `sseq u64  dseq u64  floor_sseq u64  floor_dseq u64  count u32` then
//!   `count` × `(sseq u64, dseq u64, redeliveries u64)` for the deliveries
//!   waiting for an ack. Recovery takes the last snapshot whose frame is
//!   whole and whose CRC matches, so a torn append loses only the newest
//!   snapshot, whose acks were not answered yet. When the file has grown past
//!   [`REWRITE_BYTES`] (and past 16 snapshots' worth), it is replaced
//!   atomically by one holding only the current snapshot.
//!
//! An ack sent as a request (AckSync) is answered after the Sync (or Rename)
//! that makes the snapshot holding it durable: from then on it survives a
//! crash, and the message is not delivered again.

use bytes::{BufMut, Bytes, BytesMut};

use super::acks::AckState;
use super::persist::{stream_dir, write_temp, OpIds, OpQueue};
use crate::storage::{StorageId, StorageOp};

const MAGIC: u32 = 0x4E41_4353;
/// magic + body_len + crc.
const FRAME: usize = 12;
/// The state file is rewritten with one snapshot past this size.
pub const REWRITE_BYTES: u64 = 1024 * 1024;

/// The state a snapshot holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub sseq: u64,
    pub dseq: u64,
    pub floor_sseq: u64,
    pub floor_dseq: u64,
    /// (stream sequence, delivery sequence, redeliveries) waiting for an ack.
    pub pending: Vec<(u64, u64, u64)>,
}

impl Snapshot {
    pub fn of(acks: &AckState) -> Snapshot {
        Snapshot {
            sseq: acks.sseq,
            dseq: acks.dseq,
            floor_sseq: acks.floor_sseq,
            floor_dseq: acks.floor_dseq,
            pending: acks
                .pending()
                .map(|(s, p)| (s, p.dseq, acks.redeliveries(s)))
                .collect(),
        }
    }

    /// Put the snapshot back into `acks`; pending deliveries are redelivered
    /// once their wait, counted from `now`, has passed.
    pub fn restore(&self, acks: &mut AckState, now: i64, ack_wait: i64) {
        acks.restore_positions(self.sseq, self.dseq, self.floor_sseq, self.floor_dseq);
        for &(sseq, dseq, rdc) in &self.pending {
            acks.restore_pending(sseq, dseq, rdc, now.saturating_add(ack_wait));
        }
    }

    pub fn encode(&self) -> Bytes {
        let mut body = BytesMut::with_capacity(36 + 24 * self.pending.len());
        body.put_u64_le(self.sseq);
        body.put_u64_le(self.dseq);
        body.put_u64_le(self.floor_sseq);
        body.put_u64_le(self.floor_dseq);
        body.put_u32_le(self.pending.len() as u32);
        for &(s, d, r) in &self.pending {
            body.put_u64_le(s);
            body.put_u64_le(d);
            body.put_u64_le(r);
        }
        let mut out = BytesMut::with_capacity(FRAME + body.len());
        out.put_u32_le(MAGIC);
        out.put_u32_le(body.len() as u32);
        out.put_slice(&body);
        out.put_u32_le(crc32fast::hash(&body));
        out.freeze()
    }

    fn decode_body(b: &[u8]) -> Option<Snapshot> {
        let u64_at = |i: usize| -> Option<u64> {
            Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?))
        };
        let count = u32::from_le_bytes(b.get(32..36)?.try_into().ok()?) as usize;
        if b.len() != 36 + count.checked_mul(24)? {
            return None;
        }
        let mut pending = Vec::with_capacity(count);
        for i in 0..count {
            let at = 36 + i * 24;
            pending.push((u64_at(at)?, u64_at(at + 8)?, u64_at(at + 16)?));
        }
        Some(Snapshot {
            sseq: u64_at(0)?,
            dseq: u64_at(8)?,
            floor_sseq: u64_at(16)?,
            floor_dseq: u64_at(24)?,
            pending,
        })
    }

    /// The last whole, valid snapshot in a state file, and the length of the
    /// file up to its end (where the next append goes).
    pub fn decode_last(data: &[u8]) -> Option<(Snapshot, u64)> {
        let mut at = 0;
        let mut last = None;
        while data.len() - at >= FRAME {
            let word =
                |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
            if word(at) != MAGIC {
                break;
            }
            let len = word(at + 4) as usize;
            let Some(end) = at.checked_add(8 + len + 4).filter(|&e| e <= data.len()) else {
                break;
            };
            let body = &data[at + 8..at + 8 + len];
            if word(at + 8 + len) != crc32fast::hash(body) {
                break;
            }
            match Snapshot::decode_body(body) {
                Some(s) => last = Some((s, end as u64)),
                None => break,
            }
            at = end;
        }
        last
    }
}

pub fn consumer_dir(stream: &str, name: &str) -> String {
    format!("{}/obs/{name}", stream_dir(stream))
}

/// Where a durable consumer's state file stands.
#[derive(Clone, Debug)]
pub struct StateFile {
    dir: String,
    /// Bytes in the state file (the next append goes here).
    len: u64,
    /// A write failed: the file may hold a hole, after which recovery would
    /// read nothing; the next snapshot replaces the file.
    pub rewrite: bool,
    /// A replacement is written to `state.tmp` and waits to be renamed over
    /// `state` (only once every one of its operations succeeded: an executor
    /// performs a Rename even after the Write before it failed). No snapshot
    /// is written meanwhile.
    pub staging: bool,
    /// The latest generation of `meta.json` started.
    pub meta_gen: u64,
    /// The last `meta.json` replacement failed: the next state write writes
    /// it again.
    pub meta_retry: Option<Bytes>,
}

impl StateFile {
    pub fn new(stream: &str, name: &str, len: u64) -> StateFile {
        StateFile {
            dir: consumer_dir(stream, name),
            len,
            rewrite: false,
            staging: false,
            meta_gen: 0,
            meta_retry: None,
        }
    }

    /// Start replacing `meta.json`: a temporary file of its own generation
    /// is written, cut and synced. Returns the Sync's id, the generation, the
    /// Rename to emit once every one of those succeeded (and no newer
    /// generation was started), and the temporary file.
    pub fn write_meta(
        &mut self,
        json: Bytes,
        ids: &mut OpIds,
        ops: &mut OpQueue,
    ) -> (StorageId, u64, StorageOp, String) {
        self.meta_gen += 1;
        let tmp = format!("{}/meta.json.{}.tmp", self.dir, self.meta_gen);
        let sync = write_temp(&tmp, json, ids, ops);
        let rename = StorageOp::Rename {
            from: tmp.clone(),
            to: format!("{}/meta.json", self.dir),
        };
        (sync, self.meta_gen, rename, tmp)
    }

    /// Write a snapshot (appended, or the file rewritten when it has grown);
    /// returns the id of the operation whose completion makes it durable.
    ///
    /// A replacement stops at the Sync of `state.tmp`, whose id comes back
    /// with the Rename to emit once that Sync (and all before it) succeeded.
    pub fn write(
        &mut self,
        snap: &Snapshot,
        ids: &mut OpIds,
        ops: &mut OpQueue,
    ) -> (StorageId, Option<StorageOp>) {
        let data = snap.encode();
        let n = data.len() as u64;
        if self.rewrite || (self.len > REWRITE_BYTES && self.len > 16 * n) {
            self.rewrite = false;
            self.staging = true;
            self.len = n;
            let tmp = format!("{}/state.tmp", self.dir);
            let sync = write_temp(&tmp, data, ids, ops);
            let rename = StorageOp::Rename {
                from: tmp,
                to: format!("{}/state", self.dir),
            };
            return (sync, Some(rename));
        }
        let file = format!("{}/state", self.dir);
        ops.push((
            ids.alloc(),
            StorageOp::Write {
                file: file.clone(),
                offset: self.len,
                data,
            },
        ));
        self.len += n;
        let id = ids.alloc();
        ops.push((id, StorageOp::Sync { file }));
        (id, None)
    }

    /// Cut the state file to the end of its last whole snapshot.
    pub fn truncate(&self, ids: &mut OpIds, ops: &mut OpQueue) {
        ops.push((
            ids.alloc(),
            StorageOp::Truncate {
                file: format!("{}/state", self.dir),
                len: self.len,
            },
        ));
    }

    /// Remove the consumer's files.
    pub fn remove(&self, ids: &mut OpIds, ops: &mut OpQueue) {
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

    #[test]
    fn snapshots_round_trip_and_torn_tails_are_dropped() {
        let a = Snapshot {
            sseq: 10,
            dseq: 12,
            floor_sseq: 5,
            floor_dseq: 6,
            pending: vec![(7, 8, 0), (9, 11, 2)],
        };
        let b = Snapshot {
            sseq: 11,
            ..a.clone()
        };
        let mut file = a.encode().to_vec();
        let first_len = file.len() as u64;
        file.extend_from_slice(&b.encode());
        assert_eq!(
            Snapshot::decode_last(&file),
            Some((b.clone(), file.len() as u64))
        );
        // A torn second snapshot: the first one stands.
        let torn = &file[..file.len() - 3];
        assert_eq!(Snapshot::decode_last(torn), Some((a.clone(), first_len)));
        // A flipped byte in the second: the first one stands.
        let mut bad = file.clone();
        let n = bad.len();
        bad[n - 6] ^= 1;
        assert_eq!(Snapshot::decode_last(&bad), Some((a, first_len)));
        assert_eq!(Snapshot::decode_last(&[]), None);
    }
}
