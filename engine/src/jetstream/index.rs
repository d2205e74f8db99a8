//! The index checkpoint of a file-backed stream: `streams/<name>/index`, the
//! full metadata of the stream as of a log position, so recovery reads only the
//! log after that position. Pure encoding and decoding; no storage operations.
//!
//! Little-endian:
//!
//! ```text
//! magic u32 = 0x4E_41_49_58 ("NAIX")   version u32 = 1
//! seg u64   offset u64                 the log position covered: every record
//!                                      before it is reflected, none after
//! next_seq u64   last_ts i64   flags u8 (bit 0: a full purge ran)
//! segments u32, then per segment: seg u64, highest seq u64
//! msgs u64, then per message:
//!   seq u64  ts i64  seg u64  offset u64  len u64  hdr_len u32  data_len u32
//!   subject_len u16  msg_id_len u16  subject  msg_id
//! crc32 u32 of everything before it
//! ```
//!
//! It is replaced atomically (like `meta.json`) and only after the log bytes it
//! covers were synced, so a durable index never covers lost records. Anything
//! that does not decode exactly, or fails its checksum, is no index: recovery
//! then scans the whole log.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};

use super::store::{Loc, MsgMeta, MsgStore};

const MAGIC: u32 = 0x4E41_4958;
const VERSION: u32 = 1;
/// Fixed bytes of one message entry (before subject and id).
const ENTRY: usize = 8 * 5 + 4 + 4 + 2 + 2;

/// A decoded index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    /// Log position covered: segment and offset in it.
    pub seg: u64,
    pub offset: u64,
    pub next_seq: u64,
    pub last_ts: i64,
    pub purged: bool,
    /// Each segment's highest sequence (see [`super::persist`]).
    pub segments: BTreeMap<u64, u64>,
    pub msgs: Vec<MsgMeta>,
}

/// Encode the state of `store` as of log position (`seg`, `offset`). `None`
/// when a message has no log record (it cannot be described).
pub fn encode(
    store: &MsgStore,
    segments: &BTreeMap<u64, u64>,
    seg: u64,
    offset: u64,
) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(64 + segments.len() * 16 + store.len() as usize * 64);
    out.put_u32_le(MAGIC);
    out.put_u32_le(VERSION);
    out.put_u64_le(seg);
    out.put_u64_le(offset);
    out.put_u64_le(store.last_seq() + 1);
    out.put_i64_le(store.last_ts());
    out.put_u8(u8::from(store.purged()));
    out.put_u32_le(segments.len() as u32);
    for (n, max) in segments {
        out.put_u64_le(*n);
        out.put_u64_le(*max);
    }
    out.put_u64_le(store.len());
    for m in store.iter() {
        let loc = m.loc?;
        let id = m.msg_id.as_deref().unwrap_or(&[]);
        if m.subject.len() > u16::MAX as usize || id.len() > u16::MAX as usize {
            return None;
        }
        out.put_u64_le(m.seq);
        out.put_i64_le(m.ts);
        out.put_u64_le(loc.seg);
        out.put_u64_le(loc.offset);
        out.put_u64_le(loc.len);
        out.put_u32_le(m.hdr_len);
        out.put_u32_le(m.data_len);
        out.put_u16_le(m.subject.len() as u16);
        out.put_u16_le(id.len() as u16);
        out.put_slice(&m.subject);
        out.put_slice(id);
    }
    let crc = crc32fast::hash(&out);
    out.put_u32_le(crc);
    Some(out.freeze())
}

/// Reads fields off the front of a buffer; every read is bounds-checked.
struct Cursor<'a> {
    buf: &'a Bytes,
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.buf.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn bytes(&mut self, n: usize) -> Option<Bytes> {
        let start = self.at;
        self.take(n)?;
        Some(Bytes::copy_from_slice(&self.buf[start..self.at]))
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn left(&self) -> usize {
        self.buf.len() - self.at
    }
}

/// Decode an index; `None` unless it is whole, of this version, and its
/// checksum holds.
pub fn decode(buf: &Bytes) -> Option<Index> {
    let body_len = buf.len().checked_sub(4)?;
    let crc = u32::from_le_bytes(buf.get(body_len..)?.try_into().ok()?);
    if crc32fast::hash(&buf[..body_len]) != crc {
        return None;
    }
    let body = buf.slice(..body_len);
    let mut c = Cursor { buf: &body, at: 0 };
    if c.u32()? != MAGIC || c.u32()? != VERSION {
        return None;
    }
    let seg = c.u64()?;
    let offset = c.u64()?;
    let next_seq = c.u64()?;
    let last_ts = c.u64()? as i64;
    let purged = c.u8()? & 1 == 1;
    let nsegs = c.u32()? as usize;
    if nsegs > c.left() / 16 {
        return None;
    }
    let mut segments = BTreeMap::new();
    for _ in 0..nsegs {
        let n = c.u64()?;
        segments.insert(n, c.u64()?);
    }
    let nmsgs = c.u64()?;
    if nmsgs > (c.left() / ENTRY) as u64 {
        return None;
    }
    let mut msgs = Vec::with_capacity(nmsgs as usize);
    for _ in 0..nmsgs {
        let seq = c.u64()?;
        let ts = c.u64()? as i64;
        let loc = Loc {
            seg: c.u64()?,
            offset: c.u64()?,
            len: c.u64()?,
        };
        let hdr_len = c.u32()?;
        let data_len = c.u32()?;
        let sl = c.u16()? as usize;
        let il = c.u16()? as usize;
        let subject = c.bytes(sl)?;
        let id = c.bytes(il)?;
        msgs.push(MsgMeta {
            seq,
            subject,
            hdr_len,
            data_len,
            ts,
            msg_id: (!id.is_empty()).then_some(id),
            loc: Some(loc),
        });
    }
    if c.left() != 0 {
        return None;
    }
    Some(Index {
        seg,
        offset,
        next_seq,
        last_ts,
        purged,
        segments,
        msgs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jetstream::store::{Accounting, StoredMsg};

    fn sample() -> (MsgStore, BTreeMap<u64, u64>) {
        let mut s = MsgStore::new(Accounting::File, 1);
        for i in 1..=6u64 {
            let headers = if i % 2 == 0 {
                Bytes::from(format!("NATS/1.0\r\nNats-Msg-Id: m{i}\r\n\r\n"))
            } else {
                Bytes::new()
            };
            s.insert(
                StoredMsg {
                    seq: i,
                    subject: Bytes::from(format!("s.{}", i % 3)),
                    headers,
                    data: Bytes::from(vec![b'x'; i as usize]),
                    ts: 100 + i as i64,
                },
                Some(Loc {
                    seg: 1 + i / 4,
                    offset: i * 80,
                    len: 70,
                }),
            );
        }
        s.remove(3);
        (s, BTreeMap::from([(1, 3), (2, 6)]))
    }

    #[test]
    fn round_trips_the_metadata() {
        let (s, segs) = sample();
        let buf = encode(&s, &segs, 2, 555).expect("encodes");
        let ix = decode(&buf).expect("decodes");
        assert_eq!(
            (ix.seg, ix.offset, ix.next_seq, ix.last_ts),
            (2, 555, 7, 106)
        );
        assert!(!ix.purged);
        assert_eq!(ix.segments, segs);
        let want: Vec<MsgMeta> = s.iter().cloned().collect();
        assert_eq!(ix.msgs, want);
        assert_eq!(ix.msgs[2].msg_id.as_deref(), Some(&b"m4"[..]));
    }

    #[test]
    fn damage_is_no_index() {
        let (s, segs) = sample();
        let buf = encode(&s, &segs, 2, 555).unwrap();
        for cut in [0, 3, 4, buf.len() / 2, buf.len() - 1] {
            assert_eq!(decode(&buf.slice(..cut)), None, "cut at {cut}");
        }
        for i in (0..buf.len()).step_by(7) {
            let mut b = buf.to_vec();
            b[i] ^= 0x10;
            assert_eq!(decode(&Bytes::from(b)), None, "flip at {i}");
        }
        let mut longer = buf.to_vec();
        longer.push(0);
        assert_eq!(decode(&Bytes::from(longer)), None);
    }
}
