//! The on-disk record format of a file-backed stream: an append-only log split
//! into segment files. Pure encoding and decoding; no storage operations here.
//!
//! Every record is framed as
//!
//! ```text
//! magic u32 = 0x4E_41_4C_47 ("NALG")   body_len u32   kind u8   body   crc32 u32
//! ```
//!
//! little-endian, where the CRC covers kind and body. Kinds:
//! - `MSG`: seq u64, ts i64, subject_len u16, headers_len u32, data_len u32, subject, headers, data
//! - `DELETE`: count u32, then `count` pairs (first seq u64, length u64) of removed sequences
//! - `NEXT`: seq u64: sequences below it were assigned (written at the start of each
//!   segment, and when a purge moves the next sequence forward)
//!
//! Replaying the records of all segments in order rebuilds the stream. A record
//! that fails its checksum is reported and skipped (the decoder resynchronises on
//! the next magic); bytes after the last good record of the last segment are a
//! torn tail, cut off on recovery.

use bytes::{BufMut, Bytes, BytesMut};

use super::store::StoredMsg;

const MAGIC: u32 = 0x4E41_4C47;
const KIND_MSG: u8 = 1;
const KIND_DELETE: u8 = 2;
const KIND_NEXT: u8 = 3;
/// magic + body_len + kind + crc.
const FRAME: usize = 4 + 4 + 1 + 4;
/// No record body is larger than this (a message is bounded by max_payload).
const MAX_BODY: usize = 256 * 1024 * 1024;

/// One decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    Msg(StoredMsg),
    /// Removed sequences, as (first, length) runs.
    Delete(Vec<(u64, u64)>),
    Next(u64),
}

fn frame(out: &mut BytesMut, kind: u8, body: &[u8]) {
    out.reserve(FRAME + body.len());
    out.put_u32_le(MAGIC);
    out.put_u32_le(body.len() as u32);
    out.put_u8(kind);
    out.put_slice(body);
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(body);
    out.put_u32_le(h.finalize());
}

/// Append the record of a stored message.
pub fn encode_msg(out: &mut BytesMut, m: &StoredMsg) {
    let mut body = BytesMut::with_capacity(26 + m.subject.len() + m.headers.len() + m.data.len());
    body.put_u64_le(m.seq);
    body.put_i64_le(m.ts);
    body.put_u16_le(m.subject.len() as u16);
    body.put_u32_le(m.headers.len() as u32);
    body.put_u32_le(m.data.len() as u32);
    body.put_slice(&m.subject);
    body.put_slice(&m.headers);
    body.put_slice(&m.data);
    frame(out, KIND_MSG, &body);
}

/// Append a record removing these sequences (any order; runs are formed here).
pub fn encode_delete(out: &mut BytesMut, seqs: &[u64]) {
    let mut sorted = seqs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for s in sorted {
        match runs.last_mut() {
            Some((first, len)) if *first + *len == s => *len += 1,
            _ => runs.push((s, 1)),
        }
    }
    let mut body = BytesMut::with_capacity(4 + runs.len() * 16);
    body.put_u32_le(runs.len() as u32);
    for (first, len) in runs {
        body.put_u64_le(first);
        body.put_u64_le(len);
    }
    frame(out, KIND_DELETE, &body);
}

/// Append a record saying sequences below `next` were assigned.
pub fn encode_next(out: &mut BytesMut, next: u64) {
    frame(out, KIND_NEXT, &next.to_le_bytes());
}

/// The result of decoding one segment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub records: Vec<Record>,
    /// Where each record lies in the segment: (offset, framed length).
    pub spans: Vec<(u64, u64)>,
    /// Length of the prefix that ends with the last good record.
    pub good_len: u64,
    /// Offsets of records whose checksum or shape was bad (skipped).
    pub corrupt: Vec<u64>,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?))
}

fn decode_body(kind: u8, body: &Bytes) -> Option<Record> {
    match kind {
        KIND_MSG => {
            let seq = u64_at(body, 0)?;
            let ts = u64_at(body, 8)? as i64;
            let sl = u16_at(body, 16)? as usize;
            let hl = u32_at(body, 18)? as usize;
            let dl = u32_at(body, 22)? as usize;
            let start = 26;
            if body.len() != start + sl + hl + dl {
                return None;
            }
            let subject = body.slice(start..start + sl);
            let headers = body.slice(start + sl..start + sl + hl);
            let data = body.slice(start + sl + hl..);
            Some(Record::Msg(StoredMsg {
                seq,
                subject,
                headers,
                data,
                ts,
            }))
        }
        KIND_DELETE => {
            let n = u32_at(body, 0)? as usize;
            if body.len() != 4 + n * 16 {
                return None;
            }
            let runs = (0..n)
                .map(|i| Some((u64_at(body, 4 + i * 16)?, u64_at(body, 12 + i * 16)?)))
                .collect::<Option<_>>()?;
            Some(Record::Delete(runs))
        }
        KIND_NEXT if body.len() == 8 => Some(Record::Next(u64_at(body, 0)?)),
        _ => None,
    }
}

/// The record framed at `i` whose frame ends at `end` (CRC checked).
fn framed(seg: &Bytes, i: usize, end: usize) -> Option<Record> {
    if end < i + FRAME || end > seg.len() {
        return None;
    }
    let kind = seg[i + 8];
    let body = seg.slice(i + 9..end - 4);
    let crc = u32_at(seg, end - 4)?;
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(&body);
    (h.finalize() == crc)
        .then(|| decode_body(kind, &body))
        .flatten()
}

/// The record at `i` as its length field says, with where it ends.
fn record_at(seg: &Bytes, i: usize) -> Option<(Record, usize)> {
    if u32_at(seg, i)? != MAGIC {
        return None;
    }
    let len = u32_at(seg, i + 4)? as usize;
    if len > MAX_BODY {
        return None;
    }
    let end = i + FRAME + len;
    Some((framed(seg, i, end)?, end))
}

/// A record at `i` whose length field is damaged: it may end where the next good
/// record starts, or at the end of the segment. Only ends up to the next good
/// record are tried, so a record is never stitched across a good one.
fn repair(seg: &Bytes, i: usize) -> Option<(Record, usize)> {
    let mut end = i + FRAME;
    while end <= seg.len() {
        let at_eof = end == seg.len();
        if at_eof || u32_at(seg, end) == Some(MAGIC) {
            if let Some(r) = framed(seg, i, end) {
                return Some((r, end));
            }
            if at_eof || record_at(seg, end).is_some() {
                return None;
            }
        }
        end += 1;
    }
    None
}

/// Decode exactly one framed record (a read of a known record's bytes); `None`
/// when the bytes are not one whole record with a good checksum.
pub fn decode_one(buf: &Bytes) -> Option<Record> {
    let (r, end) = record_at(buf, 0)?;
    (end == buf.len()).then_some(r)
}

/// Decode a whole segment. Never fails: bad records are skipped and reported.
pub fn decode(seg: &Bytes) -> Decoded {
    let mut out = Decoded::default();
    let mut i = 0usize;
    while i + FRAME <= seg.len() {
        if u32_at(seg, i) != Some(MAGIC) {
            // Not at a record: look for the next one.
            i += 1;
            continue;
        }
        // A record as framed, or one whose length field alone was damaged (its
        // checksum still holds over the bytes up to the next good record).
        if let Some((r, end)) = record_at(seg, i).or_else(|| repair(seg, i)) {
            out.records.push(r);
            out.spans.push((i as u64, (end - i) as u64));
            i = end;
            out.good_len = i as u64;
            continue;
        }
        let len = u32_at(seg, i + 4).unwrap_or(u32::MAX) as usize;
        if len <= MAX_BODY && i + FRAME + len > seg.len() {
            // Runs past the end and nothing good follows: a torn tail.
            break;
        }
        out.corrupt.push(i as u64);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(seq: u64, subject: &str, data: &str) -> StoredMsg {
        StoredMsg {
            seq,
            subject: Bytes::copy_from_slice(subject.as_bytes()),
            headers: if seq.is_multiple_of(2) {
                Bytes::from_static(b"NATS/1.0\r\nA: b\r\n\r\n")
            } else {
                Bytes::new()
            },
            data: Bytes::copy_from_slice(data.as_bytes()),
            ts: 1_700_000_000_000_000_000 + seq as i64,
        }
    }

    fn sample() -> (Bytes, Vec<Record>) {
        let mut b = BytesMut::new();
        let mut want = Vec::new();
        encode_next(&mut b, 1);
        want.push(Record::Next(1));
        for s in 1..=5 {
            let m = msg(s, &format!("orders.{s}"), &"x".repeat(s as usize * 10));
            encode_msg(&mut b, &m);
            want.push(Record::Msg(m));
        }
        encode_delete(&mut b, &[4, 2, 3]);
        want.push(Record::Delete(vec![(2, 3)]));
        (b.freeze(), want)
    }

    #[test]
    fn round_trip() {
        let (seg, want) = sample();
        let d = decode(&seg);
        assert_eq!(d.records, want);
        assert_eq!(d.good_len, seg.len() as u64);
        assert!(d.corrupt.is_empty());
    }

    #[test]
    fn torn_tail_is_cut_at_the_last_good_record() {
        let (seg, want) = sample();
        // The DELETE record is 33 bytes: cutting into it loses only it.
        for cut in 1..=33 {
            let torn = seg.slice(..seg.len() - cut);
            let d = decode(&torn);
            assert_eq!(d.records, want[..want.len() - 1].to_vec(), "cut {cut}");
            assert!(d.good_len < seg.len() as u64);
        }
    }

    #[test]
    fn a_flipped_byte_loses_only_its_record() {
        let (seg, want) = sample();
        // Flip a byte inside the third message's data.
        let third = decode(&seg.slice(..)).records.len();
        assert_eq!(third, want.len());
        let mut bytes = seg.to_vec();
        let pos = bytes
            .windows(30)
            .position(|w| w == "x".repeat(30).as_bytes())
            .unwrap();
        bytes[pos + 3] ^= 0x40;
        let d = decode(&Bytes::from(bytes));
        assert_eq!(d.corrupt.len(), 1);
        let seqs: Vec<u64> = d
            .records
            .iter()
            .filter_map(|r| {
                if let Record::Msg(m) = r {
                    Some(m.seq)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(seqs, vec![1, 2, 4, 5]);
        assert_eq!(d.records.last(), want.last());
    }

    #[test]
    fn a_damaged_length_field_loses_nothing() {
        let (seg, want) = sample();
        // The second record (the first message) starts after the 21-byte NEXT.
        for byte in 4..8 {
            for mask in [0x01u8, 0x10, 0x80, 0xff] {
                let mut bytes = seg.to_vec();
                bytes[21 + byte] ^= mask;
                let d = decode(&Bytes::from(bytes));
                assert_eq!(d.records, want, "byte {byte} mask {mask:#x}");
                assert_eq!(d.good_len, seg.len() as u64);
            }
        }
        // Also in the last record, where a long length looks like a torn tail.
        let last = seg.len() - 33;
        for mask in [0x01u8, 0x02, 0x10] {
            let mut bytes = seg.to_vec();
            bytes[last + 7] ^= mask;
            assert_eq!(decode(&Bytes::from(bytes)).records, want, "mask {mask:#x}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        for n in 0..200u32 {
            let junk: Vec<u8> = (0..n * 7)
                .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
                .collect();
            let _ = decode(&Bytes::from(junk));
        }
    }
}
