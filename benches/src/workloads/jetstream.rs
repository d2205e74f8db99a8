//! The JetStream workloads: publishing to a stream with PubAcks (one at a time,
//! or a window of them), and a durable pull consumer fetching and acking.
//!
//! Each run uses one connection with `_INBOX.bench.>` subscribed (sid 1): API
//! replies come to `_INBOX.bench.api`, PubAcks to `_INBOX.bench.ack`. Pull
//! requests reply to `_INBOX.fetch.<slot>`, each slot its own subscription
//! (sid 2 + slot), because a fetched message arrives under its stream subject:
//! the sid is what tells which request it answers.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{percentile_sample, storage_name, Batch, Meter, Outcome, Params, Storage};
use super::{PAYLOAD, WAIT};
use crate::client::{self, Event, Reader};

/// Messages asked for by each pull request.
pub const FETCH_BATCH: u64 = 256;
/// Pull requests kept waiting at the server (one per slot), so it always has
/// one to fill.
const FETCH_SLOTS: usize = 2;
/// A pull request's `expires`: far longer than filling a batch should take.
const FETCH_EXPIRES_NS: u64 = 5_000_000_000;

const API_INBOX: &[u8] = b"_INBOX.bench.api";
const ACK_INBOX: &str = "_INBOX.bench.ack";
const FETCH_INBOX: &str = "_INBOX.fetch.";
const FETCH_SID: u64 = 2;

/// Send a JetStream API request and return the reply's body.
fn js_request(w: &mut TcpStream, r: &mut Reader, subject: &str, body: &str) -> io::Result<String> {
    w.write_all(
        format!(
            "PUB {subject} {} {}\r\n{body}\r\n",
            String::from_utf8_lossy(API_INBOX),
            body.len()
        )
        .as_bytes(),
    )?;
    let mut resp = String::new();
    r.read_until(WAIT, &mut |ev| match ev {
        Event::Msg {
            subject, payload, ..
        } if subject == API_INBOX => {
            resp = String::from_utf8_lossy(payload).into_owned();
            true
        }
        _ => false,
    })?;
    Ok(resp)
}

/// Connect, subscribe to the inboxes and create stream `BENCH` on `js.bench`.
fn setup(addr: SocketAddr, storage: Storage) -> io::Result<(TcpStream, Reader)> {
    let (mut w, mut r) = client::connect(addr)?;
    w.write_all(b"SUB _INBOX.bench.> 1\r\n")?;
    client::flush(&mut w, &mut r, WAIT)?;
    let cfg = format!(
        "{{\"name\":\"BENCH\",\"subjects\":[\"js.bench\"],\"retention\":\"limits\",\"storage\":\"{}\",\"discard\":\"old\",\"num_replicas\":1}}",
        storage_name(storage)
    );
    let resp = js_request(&mut w, &mut r, "$JS.API.STREAM.CREATE.BENCH", &cfg)?;
    if resp.contains("\"error\"") {
        return Err(io::Error::other(format!("stream create failed: {resp}")));
    }
    Ok((w, r))
}

/// Publish `count` copies of `frame` (a PUB replying to [`ACK_INBOX`]), keeping
/// at most `window` unacknowledged; no new publish after `deadline`, but every
/// one sent is waited for. Returns the PubAcks received; with a window of 1,
/// each one's latency goes to `lat`. A PubAck carrying an error fails the run.
fn publish_acked(
    w: &mut TcpStream,
    r: &mut Reader,
    frame: &[u8],
    count: u64,
    window: u64,
    deadline: Instant,
    lat: &mut Vec<Duration>,
) -> io::Result<u64> {
    let (mut sent, mut acked, mut errors) = (0u64, 0u64, 0u64);
    let mut first_err = None;
    let mut out = Vec::with_capacity(window.min(256) as usize * frame.len());
    let mut sent_at = Instant::now();
    while acked < sent || (sent < count && Instant::now() < deadline) {
        if Instant::now() < deadline {
            while sent < count && sent - acked < window {
                out.extend_from_slice(frame);
                sent += 1;
            }
        }
        if !out.is_empty() {
            sent_at = Instant::now();
            w.write_all(&out)?;
            out.clear();
        }
        r.set_timeout(Some(WAIT))?;
        let got = r.read_some(&mut |ev| {
            if let Event::Msg {
                subject, payload, ..
            } = ev
            {
                if subject != ACK_INBOX.as_bytes() {
                    return;
                }
                acked += 1;
                if window == 1 {
                    lat.push(sent_at.elapsed());
                }
                if payload.windows(7).any(|x| x == b"\"error\"") {
                    errors += 1;
                    first_err.get_or_insert_with(|| String::from_utf8_lossy(payload).into_owned());
                }
            }
        })?;
        if !got {
            return Err(io::Error::other(format!(
                "no PubAck in time ({acked} of {sent} acked)"
            )));
        }
    }
    if let Some(e) = first_err {
        return Err(io::Error::other(format!(
            "{errors} publishes failed, first: {e}"
        )));
    }
    Ok(acked)
}

/// Publish to a stream, keeping at most `window` publishes unacknowledged
/// (1: each publish waits for its ack, and its latency is recorded).
pub fn publish(
    addr: SocketAddr,
    p: &Params,
    storage: Storage,
    window: u64,
    m: &mut Meter,
) -> io::Result<Outcome> {
    let count = p.n(if window == 1 { 20_000 } else { 500_000 });
    let (mut w, mut r) = setup(addr, storage)?;
    let batch = Batch::uniform("js.bench", Some(ACK_INBOX), PAYLOAD);
    let frame = &batch.buf[..batch.ends[0]];
    let mut lat = Vec::new();
    let t0 = m.start();
    let acked = publish_acked(
        &mut w,
        &mut r,
        frame,
        count,
        window,
        t0 + p.time_limit,
        &mut lat,
    )?;
    let elapsed = m.stop(t0);
    percentile_sample(&mut lat);
    Ok(Outcome {
        msgs: acked,
        elapsed,
        latencies: lat,
        ..Default::default()
    })
}

/// What the fetch loop saw, beyond the counts.
#[derive(Default)]
struct FetchTally {
    /// Distinct stream sequences received (each acked).
    got: u64,
    /// Acks sent: `got` plus redeliveries.
    acks: u64,
    /// Messages whose ack subject said delivered > 1, or a sequence seen before.
    redelivered: u64,
    /// Messages with no reply subject, an ack subject we cannot read, or a
    /// sequence past the pre-filled range.
    odd: u64,
    /// Messages that came to a slot with no request waiting.
    unasked: u64,
    /// Status replies by status line (`408 Request Timeout`).
    statuses: BTreeMap<String, u64>,
}

/// Pre-fill a stream with the run's messages (not measured), create a durable
/// pull consumer, then measure: pull requests of [`FETCH_BATCH`] messages,
/// [`FETCH_SLOTS`] waiting at a time, each message acked (empty payload to
/// its reply subject) as soon as it is read. The clock stops when every message
/// has been received and a PING/PONG after the last ack has come back.
pub fn fetch_and_ack(
    addr: SocketAddr,
    p: &Params,
    storage: Storage,
    m: &mut Meter,
) -> io::Result<Outcome> {
    let count = p.n(300_000);
    let (mut w, mut r) = setup(addr, storage)?;
    let batch = Batch::uniform("js.bench", Some(ACK_INBOX), PAYLOAD);
    let frame = &batch.buf[..batch.ends[0]];
    let far = Instant::now() + Duration::from_secs(3600);
    let stored = publish_acked(&mut w, &mut r, frame, count, 256, far, &mut Vec::new())?;
    if stored != count {
        return Err(io::Error::other(format!(
            "pre-fill stored {stored} of {count}"
        )));
    }
    let cfg = "{\"stream_name\":\"BENCH\",\"config\":{\"durable_name\":\"FETCH\",\
        \"deliver_policy\":\"all\",\"ack_policy\":\"explicit\",\"ack_wait\":30000000000,\
        \"max_ack_pending\":20000,\"max_waiting\":512,\"replay_policy\":\"instant\"}}";
    let resp = js_request(
        &mut w,
        &mut r,
        "$JS.API.CONSUMER.DURABLE.CREATE.BENCH.FETCH",
        cfg,
    )?;
    if resp.contains("\"error\"") {
        return Err(io::Error::other(format!("consumer create failed: {resp}")));
    }

    let mut subs = String::new();
    for k in 0..FETCH_SLOTS {
        subs.push_str(&format!(
            "SUB {FETCH_INBOX}{k} {}\r\n",
            FETCH_SID + k as u64
        ));
    }
    w.write_all(subs.as_bytes())?;
    client::flush(&mut w, &mut r, WAIT)?;

    // Per slot, how many messages its waiting request may still deliver (0:
    // no request waiting); `owed` is their sum.
    let mut slots = [0u64; FETCH_SLOTS];
    let mut owed = 0u64;
    let mut seen = vec![false; count as usize + 1];
    let mut t = FetchTally::default();
    let mut out = Vec::with_capacity(64 * 1024);
    let t0 = m.start();
    let deadline = t0 + p.time_limit;
    loop {
        if Instant::now() < deadline {
            for (k, left) in slots.iter_mut().enumerate() {
                if *left > 0 || t.got + owed >= count {
                    continue;
                }
                let n = FETCH_BATCH.min(count - t.got - owed);
                let body = format!("{{\"batch\":{n},\"expires\":{FETCH_EXPIRES_NS}}}");
                let _ = write!(
                    out,
                    "PUB $JS.API.CONSUMER.MSG.NEXT.BENCH.FETCH {FETCH_INBOX}{k} {}\r\n{body}\r\n",
                    body.len()
                );
                *left = n;
                owed += n;
            }
        }
        if !out.is_empty() {
            w.write_all(&out)?;
            out.clear();
        }
        if owed == 0 {
            break;
        }
        r.set_timeout(Some(WAIT))?;
        let read = r.read_some(&mut |ev| {
            let Event::Msg {
                sid,
                reply,
                headers,
                ..
            } = ev
            else {
                return;
            };
            let Some(left) = sid
                .checked_sub(FETCH_SID)
                .and_then(|k| slots.get_mut(k as usize))
            else {
                return;
            };
            if let Some((code, text)) = client::status(headers) {
                let line = format!("{code} {}", String::from_utf8_lossy(text));
                *t.statuses.entry(line.trim_end().to_string()).or_default() += 1;
                // 100 is a heartbeat; any other status ends the request.
                if code != 100 {
                    owed -= *left;
                    *left = 0;
                }
                return;
            }
            if *left > 0 {
                *left -= 1;
                owed -= 1;
            } else {
                t.unasked += 1;
            }
            let Some(reply) = reply else {
                t.odd += 1;
                return;
            };
            out.extend_from_slice(b"PUB ");
            out.extend_from_slice(reply);
            out.extend_from_slice(b" 0\r\n\r\n");
            t.acks += 1;
            match ack_seqs(reply) {
                Some((delivered, seq)) if (seq as usize) < seen.len() && seq > 0 => {
                    if delivered > 1 || seen[seq as usize] {
                        t.redelivered += 1;
                    }
                    if !seen[seq as usize] {
                        seen[seq as usize] = true;
                        t.got += 1;
                    }
                }
                _ => t.odd += 1,
            }
        })?;
        if !read {
            return Err(io::Error::other(format!(
                "fetch stalled: nothing for {WAIT:?} with {} of {count} received, \
                 requests waiting for {owed} messages{}",
                t.got,
                tally_note(&t).map(|n| format!("; {n}")).unwrap_or_default()
            )));
        }
    }
    client::flush(&mut w, &mut r, WAIT)?;
    let elapsed = m.stop(t0);

    let mut notes: Vec<String> = tally_note(&t).into_iter().collect();
    if let Some(n) = check_consumer(&mut w, &mut r, count, t.got)? {
        notes.push(n);
    }
    Ok(Outcome {
        msgs: t.got,
        elapsed,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
        ..Default::default()
    })
}

fn tally_note(t: &FetchTally) -> Option<String> {
    let mut parts = Vec::new();
    if !t.statuses.is_empty() {
        let s: Vec<String> = t
            .statuses
            .iter()
            .map(|(l, n)| format!("{n} x {l}"))
            .collect();
        parts.push(format!("status replies: {}", s.join(", ")));
    }
    if t.redelivered > 0 {
        parts.push(format!(
            "{} redelivered ({} acks sent)",
            t.redelivered, t.acks
        ));
    }
    if t.odd > 0 {
        parts.push(format!("{} messages without a readable ack subject", t.odd));
    }
    if t.unasked > 0 {
        parts.push(format!("{} messages beyond what was asked for", t.unasked));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The delivery count and stream sequence from an ack subject: the 9-token
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, or
/// the 12-token form with domain and account hash after `$JS.ACK`.
fn ack_seqs(reply: &[u8]) -> Option<(u64, u64)> {
    let tokens: Vec<&[u8]> = reply.split(|&b| b == b'.').collect();
    let at = match tokens.len() {
        9 => 4,
        12 => 6,
        _ => return None,
    };
    if tokens[0] != b"$JS" || tokens[1] != b"ACK" {
        return None;
    }
    let num = |t: &[u8]| std::str::from_utf8(t).ok()?.parse::<u64>().ok();
    Some((num(tokens[at])?, num(tokens[at + 1])?))
}

/// After the run (not measured): the consumer's own count of pending acks,
/// redeliveries and its ack floor must agree with what the client did. A
/// remark when they do not.
fn check_consumer(
    w: &mut TcpStream,
    r: &mut Reader,
    count: u64,
    got: u64,
) -> io::Result<Option<String>> {
    let info = js_request(w, r, "$JS.API.CONSUMER.INFO.BENCH.FETCH", "")?;
    if info.contains("\"error\"") {
        return Ok(Some(format!("consumer info failed: {info}")));
    }
    let want = [
        (&["\"num_ack_pending\":"][..], 0),
        (&["\"num_redelivered\":"][..], 0),
        (&["\"num_pending\":"][..], count - got),
        (&["\"ack_floor\":", "\"stream_seq\":"][..], got),
        (&["\"delivered\":", "\"stream_seq\":"][..], got),
    ];
    let mut wrong = Vec::new();
    for (path, expect) in want {
        let v = json_u64(&info, path);
        if v != Some(expect) {
            let name: Vec<&str> = path.iter().map(|k| k.trim_matches(['"', ':'])).collect();
            wrong.push(format!("{} = {v:?}, expected {expect}", name.join(".")));
        }
    }
    Ok((!wrong.is_empty()).then(|| format!("consumer info after the run: {}", wrong.join(", "))))
}

/// The number after the last of `path`'s keys, each searched for after the
/// previous one: enough JSON for the consumer info's counters.
fn json_u64(s: &str, path: &[&str]) -> Option<u64> {
    let mut at = 0;
    for k in path {
        at += s[at..].find(k)? + k.len();
    }
    let rest = s[at..].trim_start();
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ack_subjects() {
        assert_eq!(
            ack_seqs(b"$JS.ACK.BENCH.FETCH.1.42.42.1700000000.7"),
            Some((1, 42))
        );
        assert_eq!(
            ack_seqs(b"$JS.ACK.dom.hash.BENCH.FETCH.2.5.9.17.0.rnd"),
            Some((2, 5))
        );
        assert_eq!(ack_seqs(b"_INBOX.x"), None);
        assert_eq!(ack_seqs(b"$JS.ACK.BENCH.FETCH.x.42.42.17.7"), None);
    }

    #[test]
    fn reads_consumer_counters() {
        let info = r#"{"delivered":{"consumer_seq":10,"stream_seq":10},"ack_floor":{"consumer_seq":9,"stream_seq": 9},"num_ack_pending":1}"#;
        assert_eq!(
            json_u64(info, &["\"ack_floor\":", "\"stream_seq\":"]),
            Some(9)
        );
        assert_eq!(
            json_u64(info, &["\"delivered\":", "\"stream_seq\":"]),
            Some(10)
        );
        assert_eq!(json_u64(info, &["\"num_ack_pending\":"]), Some(1));
        assert_eq!(json_u64(info, &["\"num_pending\":"]), None);
    }
}
