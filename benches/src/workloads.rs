//! The workloads. Each is bounded in message count and in time; each reports
//! what it moved, over which interval, and (where it applies) per-operation
//! latencies. The server's CPU time is read over the same interval (the
//! [`Meter`]), so setup such as subscribing is not charged to the messages.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::client::{self, Event};
use crate::servers::{Kind, Running};

mod jetstream;

/// How much work each run does.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Multiplies every message count (1.0 by default; `--quick` lowers it).
    pub scale: f64,
    /// Upper bound on a run's measured phase.
    pub time_limit: Duration,
    /// Idle connections to open (lowered to what RLIMIT_NOFILE allows).
    pub idle_conns: usize,
}

impl Params {
    fn n(&self, base: u64) -> u64 {
        ((base as f64 * self.scale) as u64).max(100)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Memory,
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Pub(usize),
    PubSub,
    FanOut(usize),
    Queue(usize),
    ReqReply,
    IdleConns,
    Subs100k,
    JsPubSync(Storage),
    JsPubAsync(Storage),
    JsFetch(Storage),
}

pub const ALL: &[Workload] = &[
    Workload::Pub(16),
    Workload::Pub(128),
    Workload::Pub(1024),
    Workload::PubSub,
    Workload::FanOut(4),
    Workload::FanOut(16),
    Workload::Queue(4),
    Workload::ReqReply,
    Workload::IdleConns,
    Workload::Subs100k,
    Workload::JsPubSync(Storage::Memory),
    Workload::JsPubAsync(Storage::Memory),
    Workload::JsPubSync(Storage::File),
    Workload::JsPubAsync(Storage::File),
    Workload::JsFetch(Storage::Memory),
    Workload::JsFetch(Storage::File),
];

const PAYLOAD: usize = 128;

impl Workload {
    pub fn name(self) -> String {
        match self {
            Workload::Pub(n) => format!("pub {} B", n),
            Workload::PubSub => "pub/sub 1:1 128 B".into(),
            Workload::FanOut(n) => format!("fan-out 1:{n} 128 B"),
            Workload::Queue(n) => format!("queue group 1:{n} 128 B"),
            Workload::ReqReply => "request/reply 128 B".into(),
            Workload::IdleConns => "idle connections (2 subs each)".into(),
            Workload::Subs100k => "100k subs, wildcard match".into(),
            Workload::JsPubSync(s) => format!("JS publish sync, {}", storage_name(s)),
            Workload::JsPubAsync(s) => format!("JS publish async w=256, {}", storage_name(s)),
            Workload::JsFetch(s) => format!(
                "JS fetch-and-ack b={}, {}",
                jetstream::FETCH_BATCH,
                storage_name(s)
            ),
        }
    }

    pub fn jetstream(self) -> bool {
        matches!(
            self,
            Workload::JsPubSync(_) | Workload::JsPubAsync(_) | Workload::JsFetch(_)
        )
    }

    /// The servers this workload compares. JetStream file storage also runs
    /// natrium with a relaxed sync interval (nats-server acks before fsync);
    /// core workloads also run natrium on runtime-mio.
    pub fn kinds(self) -> &'static [Kind] {
        match self {
            Workload::JsPubSync(Storage::File)
            | Workload::JsPubAsync(Storage::File)
            | Workload::JsFetch(Storage::File) => {
                &[Kind::Natrium, Kind::NatsServer, Kind::NatriumRelaxed]
            }
            Workload::JsPubSync(_)
            | Workload::JsPubAsync(_)
            | Workload::JsFetch(_)
            | Workload::Subs100k => &[Kind::Natrium, Kind::NatsServer],
            _ => &[Kind::Natrium, Kind::NatsServer, Kind::NatriumMio],
        }
    }

    pub fn run(self, server: &Running, p: &Params) -> io::Result<Outcome> {
        let mut m = Meter::new(server);
        let mut out = match self {
            Workload::Pub(size) => pub_only(server.addr, p, size, &mut m),
            Workload::PubSub => fan_out(server.addr, p, 1, None, p.n(2_000_000), &mut m),
            Workload::FanOut(n) => {
                fan_out(server.addr, p, n, None, p.n(4_000_000) / n as u64, &mut m)
            }
            Workload::Queue(n) => fan_out(server.addr, p, n, Some("grp"), p.n(2_000_000), &mut m),
            Workload::ReqReply => req_reply(server.addr, p, &mut m),
            Workload::IdleConns => idle_conns(server, p, &mut m),
            Workload::Subs100k => subs_100k(server.addr, p, &mut m),
            Workload::JsPubSync(s) => jetstream::publish(server.addr, p, s, 1, &mut m),
            Workload::JsPubAsync(s) => jetstream::publish(server.addr, p, s, 256, &mut m),
            Workload::JsFetch(s) => jetstream::fetch_and_ack(server.addr, p, s, &mut m),
        }?;
        out.cpu = m.cpu();
        Ok(out)
    }
}

fn storage_name(s: Storage) -> &'static str {
    match s {
        Storage::Memory => "memory",
        Storage::File => "file",
    }
}

/// What one run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Messages (or requests, or acknowledged publishes) counted.
    pub msgs: u64,
    /// The measured interval.
    pub elapsed: Duration,
    /// Server CPU time (user + system) over the measured interval.
    pub cpu: Duration,
    /// Per-operation latencies, for request/reply style workloads.
    pub latencies: Vec<Duration>,
    /// Server RSS growth per idle connection, in bytes.
    pub rss_per_conn: Option<f64>,
    /// A remark on this run (scaled down, lost messages...).
    pub note: Option<String>,
}

/// Reads the server's CPU time at the start and the end of the measured phase.
pub struct Meter<'a> {
    server: &'a Running,
    t0: Option<Duration>,
    t1: Option<Duration>,
}

impl<'a> Meter<'a> {
    fn new(server: &'a Running) -> Self {
        Meter {
            server,
            t0: None,
            t1: None,
        }
    }
    fn start(&mut self) -> Instant {
        self.t0 = Some(self.server.cpu_time());
        Instant::now()
    }
    fn stop(&mut self, since: Instant) -> Duration {
        let e = since.elapsed();
        self.t1 = Some(self.server.cpu_time());
        e
    }
    fn cpu(&self) -> Duration {
        match (self.t0, self.t1) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => Duration::ZERO,
        }
    }
}

const WAIT: Duration = Duration::from_secs(20);

/// Frames to publish, cycled through; `ends[i]` is where frame i ends.
struct Batch {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Batch {
    fn uniform(subject: &str, reply: Option<&str>, size: usize) -> Batch {
        let mut frame = match reply {
            Some(r) => format!("PUB {subject} {r} {size}\r\n").into_bytes(),
            None => format!("PUB {subject} {size}\r\n").into_bytes(),
        };
        frame.extend((0..size).map(|i| b'a' + (i % 26) as u8));
        frame.extend_from_slice(b"\r\n");
        let k = (64 * 1024 / frame.len()).max(1);
        let mut b = Batch {
            buf: Vec::with_capacity(k * frame.len()),
            ends: Vec::with_capacity(k),
        };
        for _ in 0..k {
            b.buf.extend_from_slice(&frame);
            b.ends.push(b.buf.len());
        }
        b
    }

    fn push(&mut self, subject: &str, size: usize) {
        self.buf
            .extend_from_slice(format!("PUB {subject} {size}\r\n").as_bytes());
        self.buf.extend((0..size).map(|i| b'a' + (i % 26) as u8));
        self.buf.extend_from_slice(b"\r\n");
        self.ends.push(self.buf.len());
    }
}

/// Write `count` frames from `batch` (cycling) in writes of about 64 KiB, or
/// fewer if `deadline` passes. How many were written.
fn publish(w: &mut TcpStream, batch: &Batch, count: u64, deadline: Instant) -> io::Result<u64> {
    let k = batch.ends.len();
    let avg = batch.buf.len() / k;
    let step = (64 * 1024 / avg).max(1);
    let mut sent = 0u64;
    let mut i = 0usize;
    while sent < count {
        if Instant::now() >= deadline {
            break;
        }
        let n = step.min(k - i).min((count - sent) as usize);
        let from = if i == 0 { 0 } else { batch.ends[i - 1] };
        w.write_all(&batch.buf[from..batch.ends[i + n - 1]])?;
        sent += n as u64;
        i = (i + n) % k;
    }
    Ok(sent)
}

/// A subscriber connection whose thread counts MSGs and PONGs.
struct Sub {
    w: TcpStream,
    msgs: Arc<AtomicU64>,
    pongs: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Sub {
    fn start(addr: SocketAddr, subs: &[u8]) -> io::Result<Sub> {
        let (mut w, mut r) = client::connect(addr)?;
        w.write_all(subs)?;
        client::flush(&mut w, &mut r, WAIT)?;
        let msgs = Arc::new(AtomicU64::new(0));
        let pongs = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, pg, st) = (msgs.clone(), pongs.clone(), stop.clone());
        let thread = std::thread::spawn(move || -> io::Result<()> {
            r.set_timeout(Some(Duration::from_millis(50)))?;
            while !st.load(Ordering::Relaxed) {
                let (mut n, mut p) = (0u64, 0u64);
                r.read_some(&mut |ev| match ev {
                    Event::Msg { .. } => n += 1,
                    Event::Pong => p += 1,
                    _ => {}
                })?;
                if n > 0 {
                    m.fetch_add(n, Ordering::Relaxed);
                }
                if p > 0 {
                    pg.fetch_add(p, Ordering::Release);
                }
            }
            Ok(())
        });
        Ok(Sub {
            w,
            msgs,
            pongs,
            stop,
            thread: Some(thread),
        })
    }

    /// PING and wait for the PONG: every message routed before has arrived.
    fn drain(&mut self) -> io::Result<()> {
        let before = self.pongs.load(Ordering::Acquire);
        self.w.write_all(b"PING\r\n")?;
        let deadline = Instant::now() + WAIT;
        while self.pongs.load(Ordering::Acquire) == before {
            if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
                let r = self.thread.take().unwrap().join();
                return Err(io::Error::other(format!(
                    "subscriber connection ended: {:?}",
                    r.map(|r| r.err())
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("subscriber did not drain in time"));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Ok(())
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.w.shutdown(std::net::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pub_only(addr: SocketAddr, p: &Params, size: usize, m: &mut Meter) -> io::Result<Outcome> {
    let count = p.n(match size {
        0..=64 => 10_000_000,
        65..=512 => 5_000_000,
        _ => 1_500_000,
    });
    let (mut w, mut r) = client::connect(addr)?;
    client::flush(&mut w, &mut r, WAIT)?;
    let batch = Batch::uniform("bench.pub", None, size);
    let t0 = m.start();
    let sent = publish(&mut w, &batch, count, t0 + p.time_limit)?;
    client::flush(&mut w, &mut r, WAIT)?;
    let elapsed = m.stop(t0);
    Ok(Outcome {
        msgs: sent,
        elapsed,
        ..Default::default()
    })
}

/// One publisher, `n` subscribers on one subject (in queue group `queue` if
/// given). Counts delivered messages.
fn fan_out(
    addr: SocketAddr,
    p: &Params,
    n: usize,
    queue: Option<&str>,
    count: u64,
    m: &mut Meter,
) -> io::Result<Outcome> {
    let sub_line = match queue {
        Some(q) => format!("SUB bench.fan {q} 1\r\n"),
        None => "SUB bench.fan 1\r\n".to_string(),
    };
    let mut subs = (0..n)
        .map(|_| Sub::start(addr, sub_line.as_bytes()))
        .collect::<io::Result<Vec<_>>>()?;
    let (mut w, mut r) = client::connect(addr)?;
    client::flush(&mut w, &mut r, WAIT)?;
    let batch = Batch::uniform("bench.fan", None, PAYLOAD);
    let t0 = m.start();
    let sent = publish(&mut w, &batch, count, t0 + p.time_limit)?;
    client::flush(&mut w, &mut r, WAIT)?;
    for s in &mut subs {
        s.drain()?;
    }
    let elapsed = m.stop(t0);
    let got: u64 = subs.iter().map(|s| s.msgs.load(Ordering::Relaxed)).sum();
    let expected = if queue.is_some() {
        sent
    } else {
        sent * n as u64
    };
    let note = (got != expected).then(|| format!("delivered {got} of {expected}"));
    Ok(Outcome {
        msgs: got,
        elapsed,
        note,
        ..Default::default()
    })
}

fn percentile_sample(lat: &mut [Duration]) {
    lat.sort_unstable();
}

fn req_reply(addr: SocketAddr, p: &Params, m: &mut Meter) -> io::Result<Outcome> {
    let count = p.n(20_000);
    // The responder answers every request at once, from its own thread.
    let (mut rw, mut rr) = client::connect(addr)?;
    rw.write_all(b"SUB bench.req 1\r\n")?;
    client::flush(&mut rw, &mut rr, WAIT)?;
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let mut reply_w = rw.try_clone()?;
    let responder = std::thread::spawn(move || -> io::Result<()> {
        rr.set_timeout(Some(Duration::from_millis(50)))?;
        let mut out = Vec::with_capacity(64 * 1024);
        while !st.load(Ordering::Relaxed) {
            rr.read_some(&mut |ev| {
                if let Event::Msg {
                    reply: Some(reply),
                    payload,
                    ..
                } = ev
                {
                    out.extend_from_slice(b"PUB ");
                    out.extend_from_slice(reply);
                    out.extend_from_slice(format!(" {}\r\n", payload.len()).as_bytes());
                    out.extend_from_slice(payload);
                    out.extend_from_slice(b"\r\n");
                }
            })?;
            if !out.is_empty() {
                reply_w.write_all(&out)?;
                out.clear();
            }
        }
        Ok(())
    });
    let (mut w, mut r) = client::connect(addr)?;
    w.write_all(b"SUB bench.rep 1\r\n")?;
    client::flush(&mut w, &mut r, WAIT)?;
    let batch = Batch::uniform("bench.req", Some("bench.rep"), PAYLOAD);
    let frame = &batch.buf[..batch.ends[0]];
    let mut lat = Vec::with_capacity(count as usize);
    let t0 = m.start();
    let deadline = t0 + p.time_limit;
    while (lat.len() as u64) < count && Instant::now() < deadline {
        let s = Instant::now();
        w.write_all(frame)?;
        r.read_until(WAIT, &mut |ev| matches!(ev, Event::Msg { .. }))?;
        lat.push(s.elapsed());
    }
    let elapsed = m.stop(t0);
    stop.store(true, Ordering::Relaxed);
    let _ = rw.shutdown(std::net::Shutdown::Both);
    let _ = responder.join();
    percentile_sample(&mut lat);
    Ok(Outcome {
        msgs: lat.len() as u64,
        elapsed,
        latencies: lat,
        ..Default::default()
    })
}

fn idle_conns(server: &Running, p: &Params, m: &mut Meter) -> io::Result<Outcome> {
    let n = p.idle_conns;
    let (rss0, _) = server.memory();
    let mut conns: Vec<TcpStream> = Vec::with_capacity(n);
    let t0 = m.start();
    let mut i = 0;
    while i < n {
        let k = 250.min(n - i);
        let mut batch = Vec::with_capacity(k);
        for j in i..i + k {
            let (mut w, r) = client::connect(server.addr)?;
            w.write_all(format!("SUB idle.{j}.a 1\r\nSUB idle.{j}.b 2\r\nPING\r\n").as_bytes())?;
            batch.push((w, r));
        }
        for (w, mut r) in batch {
            r.read_until(WAIT, &mut |ev| matches!(ev, Event::Pong))?;
            conns.push(w);
        }
        i += k;
    }
    let elapsed = m.stop(t0);
    // Let the server settle (buffers shrink, allocator returns memory).
    std::thread::sleep(Duration::from_millis(300));
    let (rss1, _) = server.memory();
    drop(conns);
    Ok(Outcome {
        msgs: n as u64,
        elapsed,
        rss_per_conn: Some((rss1 as f64 - rss0 as f64) / n as f64),
        note: (n < 10_000).then(|| format!("scaled to {n} connections (RLIMIT_NOFILE)")),
        ..Default::default()
    })
}

/// 100,000 subscriptions over 4 connections: 80,000 literal `m.A.B.C`, 10,000
/// `m.A.B.*`, 5,000 `m.*.B.kA` and 5,000 `m.A.B.z.>` (A, B < 100, C < 8). The
/// publisher cycles through 100,000 distinct subjects `m.A.B.C` (C < 10), more
/// than either server's match cache holds; each matches one or two
/// subscriptions.
fn subs_100k(addr: SocketAddr, p: &Params, m: &mut Meter) -> io::Result<Outcome> {
    let count = p.n(1_000_000);
    let mut lines: Vec<Vec<u8>> = vec![Vec::new(); 4];
    let mut sid = 0usize;
    let mut add = |pattern: String| {
        sid += 1;
        let l = &mut lines[sid % 4];
        l.extend_from_slice(format!("SUB {pattern} {sid}\r\n").as_bytes());
    };
    for a in 0..100 {
        for b in 0..100 {
            for c in 0..8 {
                add(format!("m.{a}.{b}.{c}"));
            }
            add(format!("m.{a}.{b}.*"));
            if (a + b) % 2 == 0 {
                add(format!("m.*.{b}.k{a}"));
            } else {
                add(format!("m.{a}.{b}.z.>"));
            }
        }
    }
    let mut subs = lines
        .iter()
        .map(|l| Sub::start(addr, l))
        .collect::<io::Result<Vec<_>>>()?;
    let (mut w, mut r) = client::connect(addr)?;
    client::flush(&mut w, &mut r, WAIT)?;
    let mut batch = Batch {
        buf: Vec::new(),
        ends: Vec::new(),
    };
    // A fixed permutation of the 100,000 subjects.
    let mut x: u64 = 1;
    for _ in 0..100_000 {
        x = (x * 48_271) % 2_147_483_647;
        let i = x % 100_000;
        let (a, b, c) = (i / 1000, (i / 10) % 100, i % 10);
        batch.push(&format!("m.{a}.{b}.{c}"), 16);
    }
    let t0 = m.start();
    let sent = publish(&mut w, &batch, count, t0 + p.time_limit)?;
    client::flush(&mut w, &mut r, WAIT)?;
    for s in &mut subs {
        s.drain()?;
    }
    let elapsed = m.stop(t0);
    let got: u64 = subs.iter().map(|s| s.msgs.load(Ordering::Relaxed)).sum();
    Ok(Outcome {
        // Published messages: each is one subject-index match.
        msgs: sent,
        elapsed,
        note: (got == 0).then(|| "nothing delivered".to_string()),
        ..Default::default()
    })
}
