//! The server core: connections, subscriptions, routing, keep-alive and limits.
//! It owns every decision of core NATS and talks to the outside world only through
//! the inputs and outputs documented on [`Server`].

mod auth;
mod conn;
mod frames;

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use slab::Slab;

use self::auth::{Authenticator, Credentials};
use self::conn::{Conn, ConnectOptions};
use self::frames::{go_quote, write_err, write_info, write_msg, Info, OK, PING, PONG};
use crate::config::Config;
use crate::proto::{self, Op, ParseError, Parsed};
use crate::subject::{is_valid_literal_subject, is_valid_subject, SubjectIndex};
use crate::time::Instant;
use crate::Map;

/// The nats-server release whose client-visible behaviour natrium serves (row I3).
pub const SERVER_VERSION: &str = "2.9.10";

/// Sent in INFO's `go` field (row I5): clients only display it.
const RUNTIME_NAME: &str = "natrium";

/// nats-server's first keep-alive PING comes after at most 2 s (plus jitter), so
/// clients that never sent CONNECT are found out quickly.
const FIRST_PING_INTERVAL: Duration = Duration::from_secs(2);

/// nats-server's `DEFAULT_RTT_MEASUREMENT_INTERVAL`: even an active client is
/// pinged when the last server PING is older than this.
const RTT_MEASUREMENT_INTERVAL: Duration = Duration::from_secs(3600);

/// When `max_subscriptions` is 0 (nats-server's "unlimited"), a connection may
/// still hold at most this many subscriptions; more get
/// `-ERR 'maximum subscriptions exceeded'`.
pub const HARD_MAX_SUBSCRIPTIONS: usize = 1_000_000;

/// Capacity of a connection's partial-op buffer kept between large payloads.
const PARTIAL_KEEP: usize = 64 * 1024;

/// Input a stalled producer may have buffered before the engine parses it anyway.
const PAUSED_BUFFER_MAX: usize = 16 * 1024 * 1024;

/// Timers never fire more often than this, whatever the configuration says.
const MIN_TIMER_INTERVAL: Duration = Duration::from_millis(1);

/// Identifies a connection for the life of the server. Never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cid:{}", self.0)
    }
}

/// Why the engine closed a connection (nats-server's `/connz` reasons, row L7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    ClientClosed,
    SlowConsumerPendingBytes,
    SlowConsumerWriteDeadline,
    StaleConnection,
    AuthenticationTimeout,
    AuthenticationViolation,
    MaxPayloadExceeded,
    MaxConnectionsExceeded,
    MaxControlLineExceeded,
    ProtocolViolation,
    ParseError,
    BadClientProtocolVersion,
    NoRespondersRequiresHeaders,
    ServerShutdown,
}

impl CloseReason {
    /// Whether the runtime should first write what it already holds for the
    /// connection. A slow consumer is cut off at once: its bytes would never drain.
    pub fn flush_first(self) -> bool {
        !matches!(
            self,
            CloseReason::SlowConsumerPendingBytes | CloseReason::SlowConsumerWriteDeadline
        )
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::ClientClosed => "Client Closed",
            CloseReason::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            CloseReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            CloseReason::StaleConnection => "Stale Connection",
            CloseReason::AuthenticationTimeout => "Authentication Timeout",
            CloseReason::AuthenticationViolation => "Authentication Failure",
            CloseReason::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            CloseReason::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            CloseReason::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            CloseReason::ProtocolViolation => "Protocol Violation",
            CloseReason::ParseError => "Parse Error",
            CloseReason::BadClientProtocolVersion => "Bad Client Protocol Version",
            CloseReason::NoRespondersRequiresHeaders => "No Responders Requires Headers",
            CloseReason::ServerShutdown => "Server Shutdown",
        })
    }
}

/// What the engine asks the runtime to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write `data` to the connection, after everything transmitted to it before.
    /// Report progress with [`Server::handle_written`].
    Transmit { conn: ConnId, data: Bytes },
    /// Close the connection. If [`CloseReason::flush_first`] is true, finish writing
    /// what was transmitted to it first. The engine has already forgotten it.
    Close { conn: ConnId, reason: CloseReason },
    /// Stop reading from this connection until `ResumeRead`: it publishes faster
    /// than one of its subscribers drains (nats-server's fast-producer stall).
    /// Bytes already read may still be fed.
    PauseRead { conn: ConnId },
    /// Read from this connection again.
    ResumeRead { conn: ConnId },
}

/// Counters of the whole server (the `/varz` numbers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub connections: usize,
    pub total_connections: u64,
    pub slow_consumers: u64,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Auth = 0,
    Ping = 1,
    WriteDeadline = 2,
    Stall = 3,
}

impl Timer {
    const ALL: [Timer; 4] = [Timer::Auth, Timer::Ping, Timer::WriteDeadline, Timer::Stall];
}

/// A stalled producer waits at least this long for its consumer (nats-server's
/// `stallClientMinDuration`), longer the fuller the consumer is.
const STALL_MIN: Duration = Duration::from_millis(100);
/// ... and at most this long (`stallClientMaxDuration`).
const STALL_MAX: Duration = Duration::from_secs(1);

/// One subscription.
struct Sub {
    conn: usize,
    sid: Box<[u8]>,
    subject: Box<[u8]>,
    queue: Option<Box<[u8]>>,
    /// Auto-unsubscribe after this many deliveries; 0 = no limit.
    max: u64,
    delivered: u64,
}

/// A message on its way through the routing core.
struct Msg<'a> {
    subject: &'a [u8],
    reply: Option<&'a [u8]>,
    headers: Option<&'a [u8]>,
    payload: &'a [u8],
}

/// Connections and subscriptions: everything a delivery touches, kept apart from
/// the subject index so a match result can be read while deliveries are made.
struct Core {
    conns: Slab<Conn>,
    subs: Slab<Sub>,
    dirty: Vec<usize>,
    /// Subscriptions that reached their auto-unsubscribe limit during a delivery.
    expired: Vec<usize>,
    /// Connections found to be slow consumers during a delivery.
    slow: Vec<usize>,
    /// (producer, consumer) pairs where a delivery took the consumer past half
    /// of max_pending: the producer is to be stalled.
    stalls: Vec<(usize, usize)>,
    max_pending: u64,
    stats: Stats,
}

impl Core {
    /// Queue bytes on a connection and note it has something to transmit.
    fn send(&mut self, key: usize, bytes: &[u8]) {
        if let Some(c) = self.conns.get_mut(key) {
            if c.closing {
                return;
            }
            c.out.extend_from_slice(bytes);
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    fn send_err(&mut self, key: usize, text: &str) {
        if let Some(c) = self.conns.get_mut(key) {
            if c.closing {
                return;
            }
            write_err(&mut c.out, text);
            if !c.dirty {
                c.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    /// Deliver `msg` to subscription `sk`. Returns whether it was delivered.
    fn deliver(&mut self, from: usize, sk: usize, msg: &Msg<'_>) -> bool {
        let Some(sub) = self.subs.get_mut(sk) else {
            return false;
        };
        let Some(c) = self.conns.get_mut(sub.conn) else {
            return false;
        };
        if c.closing || (sub.conn == from && !c.opts.echo) {
            return false;
        }
        if c.deny_filter
            && c.permissions
                .as_ref()
                .is_some_and(|p| p.denies_delivery(msg.subject))
        {
            return false;
        }
        if sub.max > 0 && sub.delivered >= sub.max {
            return false;
        }
        sub.delivered += 1;
        if sub.max > 0 && sub.delivered == sub.max {
            self.expired.push(sk);
        }
        let headers = if c.opts.headers { msg.headers } else { None };
        let before = c.out.len();
        write_msg(
            &mut c.out,
            msg.subject,
            &sub.sid,
            msg.reply,
            headers,
            msg.payload,
        );
        let size = (headers.map_or(0, <[u8]>::len) + msg.payload.len()) as u64;
        c.out_msgs += 1;
        c.out_bytes += size;
        self.stats.out_msgs += 1;
        self.stats.out_bytes += size;
        let pending = c.pending();
        if pending > self.max_pending {
            c.out.truncate(before);
            self.slow.push(sub.conn);
            return true;
        }
        if pending > self.max_pending / 2
            && sub.conn != from
            && self.stalls.last() != Some(&(from, sub.conn))
        {
            self.stalls.push((from, sub.conn));
        }
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(sub.conn);
        }
        true
    }
}

/// The sans-IO NATS server.
///
/// # Driving it
///
/// A runtime owns the sockets and the clock; the engine owns every decision. The
/// loop is:
///
/// 1. Feed one input, each stamped with the current [`Instant`]:
///    - [`Server::handle_accept`] for a new client connection (returns its [`ConnId`]),
///    - [`Server::handle_read`] with the bytes that arrived on a connection,
///    - [`Server::handle_written`] when bytes of an earlier `Transmit` were written,
///    - [`Server::handle_closed`] when the peer closed or the socket failed,
///    - [`Server::handle_timeout`] when the deadline from `poll_timeout` has passed,
///    - [`Server::handle_shutdown`] to stop: every client is closed.
/// 2. Drain [`Server::poll_output`] until it returns `None`, carrying out each
///    [`Output`] in order: `Transmit` queues bytes for that connection's socket,
///    `Close` closes it (after flushing, when the reason says so).
/// 3. Ask [`Server::poll_timeout`] for the next deadline and wait for the earlier
///    of that deadline and the next input.
///
/// Several inputs may be fed before draining: outputs accumulate, and a connection
/// gets one `Transmit` with everything queued for it, so a fan-out to many
/// subscribers is one buffer append per subscriber and one write per connection.
///
/// The engine reads no clock, no environment and no OS randomness: the seed given
/// to [`Server::new`] decides server ids and queue-group choices, so the same seed
/// and inputs give the same outputs.
pub struct Server {
    cfg: Config,
    server_id: String,
    auth: Authenticator,
    rng: SmallRng,
    hash_seed: u64,
    next_cid: u64,
    by_id: Map<u64, usize>,
    core: Core,
    index: SubjectIndex<usize>,
    timers: BTreeSet<(Instant, u64, Timer)>,
    closing: VecDeque<(usize, CloseReason)>,
    /// PauseRead/ResumeRead outputs not yet polled.
    flow: VecDeque<Output>,
    /// Producers resumed during the current input, whose buffered bytes are to be parsed.
    resumed: Vec<usize>,
    /// The latest time any input carried; used for timers armed while polling.
    now: Instant,
}

impl Server {
    /// A server with this configuration; `seed` feeds its random generator.
    pub fn new(cfg: Config, seed: u64) -> Server {
        let mut rng = SmallRng::seed_from_u64(seed);
        let hash_seed = rng.next_u64();
        const B32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let server_id: String = std::iter::once('N')
            .chain((0..55).map(|_| B32[rng.random_range(0..B32.len())] as char))
            .collect();
        Server {
            auth: Authenticator::new(&cfg.auth),
            core: Core {
                conns: Slab::new(),
                subs: Slab::new(),
                dirty: Vec::new(),
                expired: Vec::new(),
                slow: Vec::new(),
                stalls: Vec::new(),
                max_pending: cfg.max_pending,
                stats: Stats::default(),
            },
            cfg,
            server_id,
            rng,
            hash_seed,
            next_cid: 1,
            by_id: Map::with_hasher(foldhash::fast::FixedState::with_seed(hash_seed)),
            index: SubjectIndex::new(hash_seed),
            timers: BTreeSet::new(),
            closing: VecDeque::new(),
            flow: VecDeque::new(),
            resumed: Vec::new(),
            now: Instant::default(),
        }
    }

    /// The server's id, as sent in INFO (row I1).
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// The server's configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Server-wide counters.
    pub fn stats(&self) -> Stats {
        let mut s = self.core.stats;
        s.connections = self.by_id.len();
        s
    }

    /// Number of live subscriptions.
    pub fn num_subscriptions(&self) -> usize {
        self.core.subs.len()
    }

    /// A client connected. The engine queues its INFO and returns its id.
    pub fn handle_accept(&mut self, now: Instant, peer: SocketAddr) -> ConnId {
        self.now = self.now.max(now);
        let cid = self.next_cid;
        self.next_cid += 1;
        let auth_required = self.auth.required();
        let conn_seed = self.hash_seed ^ cid;
        let key = self
            .core
            .conns
            .insert(Conn::new(cid, now, auth_required, conn_seed));
        self.by_id.insert(cid, key);
        self.core.stats.total_connections += 1;

        let name = self.cfg.server_name.as_deref().unwrap_or(&self.server_id);
        let info = Info {
            server_id: &self.server_id,
            server_name: name,
            version: SERVER_VERSION,
            proto: 1,
            go: RUNTIME_NAME,
            host: &self.cfg.host,
            port: self.cfg.port,
            headers: true,
            auth_required: auth_required && !self.auth.has_no_auth_user(),
            max_payload: self.cfg.max_payload,
            jetstream: self.cfg.jetstream,
            client_id: cid,
            client_ip: peer.ip().to_string(),
        };
        let c = &mut self.core.conns[key];
        write_info(&mut c.out, &info);
        c.dirty = true;
        self.core.dirty.push(key);

        // The server counts itself full before this one joins (row E7).
        if self.by_id.len() > self.cfg.max_connections {
            self.close(
                key,
                CloseReason::MaxConnectionsExceeded,
                Some("maximum connections exceeded"),
            );
            return ConnId(cid);
        }
        if auth_required {
            self.arm(key, now.add(self.cfg.auth.timeout), Timer::Auth);
        }
        self.arm_first_ping(now, key);
        ConnId(cid)
    }

    /// Arm the first keep-alive timer: the shorter of ping_interval and 2 s, plus
    /// up to 20% jitter (nats-server's `setFirstPingTimer`).
    fn arm_first_ping(&mut self, now: Instant, key: usize) {
        let first = self
            .cfg
            .ping_interval
            .min(FIRST_PING_INTERVAL)
            .max(MIN_TIMER_INTERVAL);
        let jitter_ns = (first.as_nanos() as u64 / 5).max(1);
        let first = first + Duration::from_nanos(self.rng.random_range(0..jitter_ns));
        self.arm(key, now.add(first), Timer::Ping);
    }

    /// Bytes arrived from a connection.
    pub fn handle_read(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        self.now = self.now.max(now);
        let Some(&key) = self.by_id.get(&conn.0) else {
            return;
        };
        let c = &mut self.core.conns[key];
        if c.closing {
            return;
        }
        c.last_activity = now;
        // A stalled producer's bytes wait, unparsed, until it is resumed. The
        // runtime stops reading on PauseRead, so this is what was already in flight;
        // past the cap (a runtime that ignores PauseRead) parsing goes on.
        if c.read_paused && c.partial.len() < PAUSED_BUFFER_MAX {
            c.partial.extend_from_slice(data);
            return;
        }
        if c.partial.is_empty() {
            let used = self.parse_ops(now, key, data);
            if let Some(c) = self.core.conns.get_mut(key) {
                if !c.closing && used < data.len() {
                    c.partial.extend_from_slice(&data[used..]);
                }
            }
        } else {
            c.partial.extend_from_slice(data);
            if c.partial.len() >= c.partial_need {
                self.parse_partial(now, key);
            }
        }
        self.run_resumed();
    }

    /// Parse what a connection has buffered, keeping what is left.
    fn parse_partial(&mut self, now: Instant, key: usize) {
        let Some(c) = self.core.conns.get_mut(key) else {
            return;
        };
        let mut buf = std::mem::take(&mut c.partial);
        let used = self.parse_ops(now, key, &buf);
        if let Some(c) = self.core.conns.get_mut(key) {
            if !c.closing {
                buf.drain(..used);
                // A large payload passed through; don't keep its buffer per connection.
                if buf.capacity() > PARTIAL_KEEP && buf.len() <= PARTIAL_KEEP {
                    buf.shrink_to(PARTIAL_KEEP);
                }
                c.partial = buf;
            }
        }
    }

    /// Parse the buffered input of producers that were resumed while handling
    /// this input (done here, not where they were resumed, so routing never nests).
    fn run_resumed(&mut self) {
        while let Some(key) = self.resumed.pop() {
            let ready = self
                .core
                .conns
                .get(key)
                .is_some_and(|c| !c.closing && !c.read_paused && !c.partial.is_empty());
            if ready {
                self.parse_partial(self.now, key);
            }
        }
    }

    /// The runtime wrote `n` bytes of what was transmitted to `conn`.
    pub fn handle_written(&mut self, now: Instant, conn: ConnId, n: usize) {
        self.now = self.now.max(now);
        let Some(&key) = self.by_id.get(&conn.0) else {
            return;
        };
        let c = &mut self.core.conns[key];
        c.in_flight = c.in_flight.saturating_sub(n as u64);
        c.write_progress_at = now;
        if !c.stalled_producers.is_empty() && c.pending() <= self.cfg.max_pending / 2 {
            self.release_producers(key);
            self.run_resumed();
        }
    }

    /// The peer closed the connection, or its socket failed.
    pub fn handle_closed(&mut self, _now: Instant, conn: ConnId) {
        let Some(&key) = self.by_id.get(&conn.0) else {
            return;
        };
        self.remove_subs(key);
        self.release_producers(key);
        self.forget(key);
        self.run_resumed();
    }

    /// Stop serving: every client is told nothing and closed after its pending bytes.
    pub fn handle_shutdown(&mut self, _now: Instant) {
        let keys: Vec<usize> = self.core.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close(key, CloseReason::ServerShutdown, None);
        }
    }

    /// The deadline from [`Server::poll_timeout`] has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        while let Some(&(at, cid, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let Some(&key) = self.by_id.get(&cid) else {
                continue;
            };
            self.core.conns[key].timers[timer as usize] = None;
            match timer {
                Timer::Auth => {
                    if self.core.conns[key].awaiting_auth {
                        self.close(
                            key,
                            CloseReason::AuthenticationTimeout,
                            Some("Authentication Timeout"),
                        );
                    }
                }
                Timer::Ping => self.ping_timer(now, key),
                Timer::WriteDeadline => self.write_deadline_timer(now, key),
                Timer::Stall => self.resume_producer(key),
            }
        }
        self.run_resumed();
    }

    /// The earliest time at which the engine wants [`Server::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|&(at, _, _)| at)
    }

    /// The next thing for the runtime to do, or `None` when there is nothing left.
    pub fn poll_output(&mut self) -> Option<Output> {
        while let Some(&(key, reason)) = self.closing.front() {
            let Some(c) = self.core.conns.get_mut(key) else {
                self.closing.pop_front();
                continue;
            };
            let conn = ConnId(c.id);
            if reason.flush_first() && !c.out.is_empty() {
                let data = c.out.split().freeze();
                return Some(Output::Transmit { conn, data });
            }
            self.closing.pop_front();
            self.forget(key);
            return Some(Output::Close { conn, reason });
        }
        if let Some(out) = self.flow.pop_front() {
            return Some(out);
        }
        while let Some(key) = self.core.dirty.pop() {
            let Some(c) = self.core.conns.get_mut(key) else {
                continue;
            };
            c.dirty = false;
            if c.closing || c.out.is_empty() {
                continue;
            }
            let data = c.out.split().freeze();
            let conn = ConnId(c.id);
            let was_idle = c.in_flight == 0;
            c.in_flight += data.len() as u64;
            if was_idle {
                c.write_progress_at = self.now;
                let at = self.now.add(self.cfg.write_deadline);
                self.arm(key, at, Timer::WriteDeadline);
            }
            return Some(Output::Transmit { conn, data });
        }
        None
    }

    // ----- input processing -----

    /// Parse and handle whole operations from `buf`; returns the bytes used.
    fn parse_ops(&mut self, now: Instant, key: usize, buf: &[u8]) -> usize {
        let mut used = 0;
        loop {
            let Some(c) = self.core.conns.get_mut(key) else {
                return used;
            };
            if c.closing {
                return used;
            }
            let limits = proto::Limits {
                max_control_line: self.cfg.max_control_line as usize,
                max_payload: self.cfg.max_payload as usize,
                headers: c.opts.headers,
            };
            match proto::parse(&buf[used..], &limits) {
                Ok(Parsed::Op(op, n)) => {
                    used += n.max(1);
                    self.handle_op(now, key, op);
                    // Stalled by what it just published: the rest waits.
                    if self.core.conns.get(key).is_some_and(|c| c.read_paused) {
                        self.core.conns[key].partial_need = 0;
                        return used;
                    }
                }
                Ok(Parsed::Incomplete { need }) => {
                    c.partial_need = need.unwrap_or(0);
                    return used;
                }
                Err(e) => {
                    let first = buf.get(used).copied().unwrap_or(b'C');
                    if c.awaiting_auth && !matches!(first, b'C' | b'c') {
                        self.auth_violation(key);
                    } else {
                        self.parse_error(key, e);
                    }
                    return used;
                }
            }
            if used >= buf.len() {
                return used;
            }
        }
    }

    fn parse_error(&mut self, key: usize, e: ParseError) {
        match e {
            ParseError::UnknownOp => {
                self.close(
                    key,
                    CloseReason::ParseError,
                    Some("Unknown Protocol Operation"),
                );
            }
            ParseError::ControlLineTooLong => {
                self.close(
                    key,
                    CloseReason::MaxControlLineExceeded,
                    Some("maximum control line exceeded"),
                );
            }
            ParseError::PayloadTooLarge => {
                self.close(
                    key,
                    CloseReason::MaxPayloadExceeded,
                    Some("Maximum Payload Violation"),
                );
            }
            ParseError::BadArgs => self.close(key, CloseReason::ProtocolViolation, None),
        }
    }

    fn handle_op(&mut self, now: Instant, key: usize, op: Op<'_>) {
        let c = &mut self.core.conns[key];
        if c.awaiting_auth && !matches!(op, Op::Connect(_)) {
            if self.auth.has_no_auth_user() {
                let creds = Credentials {
                    user: None,
                    pass: None,
                    token: None,
                };
                match self.auth.authenticate(&creds) {
                    Ok(grant) => {
                        c.permissions = grant;
                        c.awaiting_auth = false;
                    }
                    Err(()) => return self.auth_violation(key),
                }
            } else {
                return self.auth_violation(key);
            }
        }
        match op {
            Op::Connect(json) => self.process_connect(now, key, json),
            Op::Pub {
                subject,
                reply,
                payload,
            } => self.process_pub(key, subject, reply, None, payload),
            Op::HPub {
                subject,
                reply,
                headers,
                payload,
            } => self.process_pub(key, subject, reply, Some(headers), payload),
            Op::Sub {
                subject,
                queue,
                sid,
            } => self.process_sub(key, subject, queue, sid),
            Op::Unsub { sid, max } => self.process_unsub(key, sid, max),
            Op::Ping => self.core.send(key, PONG),
            Op::Pong => {
                let c = &mut self.core.conns[key];
                c.pings_out = 0;
                c.rtt_known = true;
            }
            Op::Ok => {}
            // A client's INFO is ignored when it is JSON, a protocol violation otherwise.
            Op::Info(json) => {
                if serde_json::from_slice::<serde::de::IgnoredAny>(json).is_err() {
                    self.close(key, CloseReason::ProtocolViolation, None);
                }
            }
            // nats-server logs a client's -ERR and closes the connection, saying nothing.
            Op::Err(text) => {
                tracing::debug!(
                    "cid:{} - Client Error {}",
                    self.core.conns[key].id,
                    String::from_utf8_lossy(text)
                );
                self.close(key, CloseReason::ParseError, None);
            }
        }
    }

    fn auth_violation(&mut self, key: usize) {
        self.close(
            key,
            CloseReason::AuthenticationViolation,
            Some("Authorization Violation"),
        );
    }

    fn process_connect(&mut self, now: Instant, key: usize, json: &[u8]) {
        // Applied onto the current options, as nats-server's json.Unmarshal does.
        let mut opts: ConnectOptions = self.core.conns[key].opts.clone();
        if opts.apply_json(json).is_err() {
            // nats-server closes on bad CONNECT JSON without an -ERR (row E20).
            return self.close(key, CloseReason::ProtocolViolation, None);
        }
        let c = &mut self.core.conns[key];
        c.rtt_known = true;
        let was_awaiting = c.awaiting_auth;
        c.awaiting_auth = false;
        if self.auth.required() || was_awaiting {
            let creds = Credentials {
                user: opts.user.as_deref(),
                pass: opts.pass.as_deref(),
                token: opts.auth_token.as_deref(),
            };
            match self.auth.authenticate(&creds) {
                Ok(grant) => self.core.conns[key].permissions = grant,
                Err(()) => return self.auth_violation(key),
            }
        }
        if opts.names_account() {
            return self.auth_violation(key);
        }
        if !(0..=1).contains(&opts.protocol) {
            return self.close(
                key,
                CloseReason::BadClientProtocolVersion,
                Some("invalid client protocol"),
            );
        }
        if opts.no_responders && !opts.headers {
            return self.close(
                key,
                CloseReason::NoRespondersRequiresHeaders,
                Some("no responders requires headers support"),
            );
        }
        let verbose = opts.verbose;
        let c = &mut self.core.conns[key];
        c.opts = opts;
        c.connected = true;
        // nats-server restarts the keep-alive timer from each accepted CONNECT
        // (processConnect: clearPingTimer, setFirstPingTimer).
        self.arm_first_ping(now, key);
        if verbose {
            self.core.send(key, OK);
        }
    }

    fn process_pub(
        &mut self,
        key: usize,
        subject: &[u8],
        reply: Option<&[u8]>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) {
        let c = &mut self.core.conns[key];
        let size = (headers.map_or(0, <[u8]>::len) + payload.len()) as u64;
        c.in_msgs += 1;
        c.in_bytes += size;
        self.core.stats.in_msgs += 1;
        self.core.stats.in_bytes += size;
        // Pedantic clients are told, but the message is still routed (as nats-server does).
        if c.opts.pedantic && !is_valid_literal_subject(subject) {
            self.core.send_err(key, "Invalid Publish Subject");
        }
        let c = &self.core.conns[key];
        let denied = subject.starts_with(b"_GR_.")
            || c.permissions
                .as_ref()
                .is_some_and(|p| !p.can_publish(subject));
        if denied {
            let text = format!("Permissions Violation for Publish to {}", go_quote(subject));
            return self.core.send_err(key, &text);
        }
        if let Some(r) = reply {
            if is_reserved_reply(r) {
                let text = format!(
                    "Permissions Violation for Publish with Reply of {}",
                    go_quote(r)
                );
                return self.core.send_err(key, &text);
            }
        }
        if c.opts.verbose {
            self.core.send(key, OK);
        }
        let msg = Msg {
            subject,
            reply,
            headers,
            payload,
        };
        let delivered = self.route(key, &msg);
        if !delivered {
            if let Some(reply) = reply {
                self.no_responders(key, subject, reply);
            }
        }
    }

    /// Deliver to every matching plain subscription and to one member of each queue
    /// group (row W6). Returns whether anyone got the message.
    fn route(&mut self, from: usize, msg: &Msg<'_>) -> bool {
        let matches = self.index.matches(msg.subject);
        let mut delivered = false;
        for &sk in &matches.plain {
            delivered |= self.core.deliver(from, sk, msg);
        }
        for (_, members) in &matches.queues {
            let n = members.len();
            let start = if n > 1 {
                self.rng.random_range(0..n)
            } else {
                0
            };
            for i in 0..n {
                if self.core.deliver(from, members[(start + i) % n], msg) {
                    delivered = true;
                    break;
                }
            }
        }
        self.after_delivery();
        delivered
    }

    /// Apply what deliveries decided: auto-unsubscribes and slow consumers.
    fn after_delivery(&mut self) {
        while let Some((producer, consumer)) = self.core.stalls.pop() {
            self.stall_producer(producer, consumer);
        }
        while let Some(sk) = self.core.expired.pop() {
            self.remove_sub(sk);
        }
        while let Some(key) = self.core.slow.pop() {
            if self.core.conns.get(key).is_some_and(|c| !c.closing) {
                self.core.stats.slow_consumers += 1;
                tracing::info!(
                    "cid:{} - Slow Consumer Detected: MaxPending of {} exceeded",
                    self.core.conns[key].id,
                    self.cfg.max_pending
                );
                self.close(key, CloseReason::SlowConsumerPendingBytes, None);
            }
        }
    }

    /// Row C16: a request nobody received gets a 503 status, sent to the
    /// publisher's own subscription on the reply subject.
    fn no_responders(&mut self, key: usize, _subject: &[u8], reply: &[u8]) {
        let c = &self.core.conns[key];
        if !c.opts.no_responders {
            return;
        }
        let matches = self.index.matches(reply);
        let own = matches
            .plain
            .iter()
            .copied()
            .find(|&sk| self.core.subs.get(sk).is_some_and(|s| s.conn == key));
        let Some(sk) = own else { return };
        let sub = &self.core.subs[sk];
        let c = &mut self.core.conns[key];
        write_msg(
            &mut c.out,
            reply,
            &sub.sid,
            None,
            Some(b"NATS/1.0 503\r\n\r\n"),
            b"",
        );
        if !c.dirty {
            c.dirty = true;
            self.core.dirty.push(key);
        }
    }

    fn process_sub(&mut self, key: usize, subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) {
        let c = &self.core.conns[key];
        if c.permissions
            .as_ref()
            .is_some_and(|p| !p.can_subscribe(subject, queue))
        {
            let mut text = format!(
                "Permissions Violation for Subscription to {}",
                go_quote(subject)
            );
            if let Some(q) = queue {
                text.push_str(&format!(" using queue {}", go_quote(q)));
            }
            return self.core.send_err(key, &text);
        }
        if !c.deny_filter
            && c.permissions
                .as_ref()
                .is_some_and(|p| p.sub_deny_overlaps(subject))
        {
            self.core.conns[key].deny_filter = true;
        }
        let c = &self.core.conns[key];
        let limit = match self.cfg.max_subscriptions {
            0 => HARD_MAX_SUBSCRIPTIONS,
            n => n.min(HARD_MAX_SUBSCRIPTIONS),
        };
        if c.sids.len() >= limit {
            return self.core.send_err(key, "maximum subscriptions exceeded");
        }
        let verbose = c.opts.verbose;
        if c.sids.contains_key(sid) {
            if verbose {
                self.core.send(key, OK);
            }
            return;
        }
        if !is_valid_subject(subject) || queue.is_some_and(|q| !is_valid_queue(q)) {
            return self.core.send_err(key, "Invalid Subject");
        }
        let sk = self.core.subs.insert(Sub {
            conn: key,
            sid: sid.into(),
            subject: subject.into(),
            queue: queue.map(Into::into),
            max: 0,
            delivered: 0,
        });
        self.core.conns[key].sids.insert(sid.into(), sk);
        self.index.insert(subject, queue, sk);
        if verbose {
            self.core.send(key, OK);
        }
    }

    fn process_unsub(&mut self, key: usize, sid: &[u8], max: Option<u64>) {
        let c = &self.core.conns[key];
        let verbose = c.opts.verbose;
        if let Some(&sk) = c.sids.get(sid) {
            let sub = &mut self.core.subs[sk];
            match max {
                Some(m) if m > 0 && m > sub.delivered => sub.max = m,
                _ => self.remove_sub(sk),
            }
        }
        if verbose {
            self.core.send(key, OK);
        }
    }

    // ----- timers -----

    /// Set a connection's timer of this kind (replacing an earlier one).
    fn arm(&mut self, key: usize, at: Instant, timer: Timer) {
        let Some(c) = self.core.conns.get_mut(key) else {
            return;
        };
        if let Some(old) = c.timers[timer as usize].replace(at) {
            self.timers.remove(&(old, c.id, timer));
        }
        self.timers.insert((at, c.id, timer));
    }

    fn ping_timer(&mut self, now: Instant, key: usize) {
        let interval = self.cfg.ping_interval.max(MIN_TIMER_INTERVAL);
        let c = &mut self.core.conns[key];
        if c.closing {
            return;
        }
        // As in nats-server's processPingTimer, recent activity only delays the PING
        // when an RTT is known and the server has pinged within the last hour; so
        // the first timer after CONNECT always pings.
        let need_rtt = !c.rtt_known
            || c.rtt_start
                .is_none_or(|t| now.since(t) > RTT_MEASUREMENT_INTERVAL);
        let active = !need_rtt && now.since(c.last_activity) < interval;
        if !active {
            if c.pings_out + 1 > self.cfg.ping_max {
                return self.close(key, CloseReason::StaleConnection, Some("Stale Connection"));
            }
            c.pings_out += 1;
            c.rtt_start = Some(now);
            self.core.send(key, PING);
        }
        self.arm(key, now.add(interval), Timer::Ping);
    }

    fn write_deadline_timer(&mut self, now: Instant, key: usize) {
        let c = &self.core.conns[key];
        if c.closing || c.in_flight == 0 {
            return;
        }
        let due = c.write_progress_at.add(self.cfg.write_deadline);
        if now >= due {
            self.core.stats.slow_consumers += 1;
            tracing::info!(
                "cid:{} - Slow Consumer Detected: WriteDeadline of {:?} exceeded",
                c.id,
                self.cfg.write_deadline
            );
            return self.close(key, CloseReason::SlowConsumerWriteDeadline, None);
        }
        self.arm(key, due, Timer::WriteDeadline);
    }

    // ----- fast-producer stall -----

    /// Pause reading from `producer` until `consumer` drains below half of
    /// max_pending, or a while passes (longer the fuller the consumer is).
    fn stall_producer(&mut self, producer: usize, consumer: usize) {
        let mp = self.cfg.max_pending.max(1);
        let Some(cons) = self.core.conns.get(consumer) else {
            return;
        };
        let pending = cons.pending();
        let Some(p) = self.core.conns.get_mut(producer) else {
            return;
        };
        if p.closing || p.read_paused {
            return;
        }
        p.read_paused = true;
        let pid = p.id;
        self.flow.push_back(Output::PauseRead { conn: ConnId(pid) });
        tracing::trace!(
            "cid:{pid} - stalled: cid:{} has {pending} bytes pending",
            self.core.conns[consumer].id
        );
        let half = mp / 2;
        let wait = if pending >= mp {
            STALL_MAX
        } else {
            // nats-server adds the minimum again for every tenth of the upper half.
            let steps = pending.saturating_sub(half) / (half / 10).max(1);
            (STALL_MIN * (1 + steps as u32)).min(STALL_MAX)
        };
        let waiters = &mut self.core.conns[consumer].stalled_producers;
        if !waiters.contains(&pid) {
            waiters.push(pid);
        }
        let at = self.now.add(wait);
        self.arm(producer, at, Timer::Stall);
    }

    /// Let every producer stalled on `consumer` read again.
    fn release_producers(&mut self, consumer: usize) {
        let Some(c) = self.core.conns.get_mut(consumer) else {
            return;
        };
        let waiting = std::mem::take(&mut c.stalled_producers);
        for pid in waiting {
            if let Some(&pk) = self.by_id.get(&pid) {
                self.resume_producer(pk);
            }
        }
    }

    fn resume_producer(&mut self, key: usize) {
        let Some(p) = self.core.conns.get_mut(key) else {
            return;
        };
        if !p.read_paused {
            return;
        }
        p.read_paused = false;
        let pid = p.id;
        if let Some(at) = p.timers[Timer::Stall as usize].take() {
            self.timers.remove(&(at, pid, Timer::Stall));
        }
        if !p.closing {
            self.flow
                .push_back(Output::ResumeRead { conn: ConnId(pid) });
            self.resumed.push(key);
        }
    }

    // ----- teardown -----

    /// Start closing a connection: queue the -ERR that explains it (if any), stop
    /// reading from it and delivering to it, and emit `Close` from `poll_output`.
    fn close(&mut self, key: usize, reason: CloseReason, err: Option<&str>) {
        if let Some(text) = err {
            self.core.send_err(key, text);
        }
        let Some(c) = self.core.conns.get_mut(key) else {
            return;
        };
        if c.closing {
            return;
        }
        c.closing = true;
        if !reason.flush_first() {
            c.out.clear();
        }
        self.release_producers(key);
        self.remove_subs(key);
        self.closing.push_back((key, reason));
    }

    fn remove_sub(&mut self, sk: usize) {
        if !self.core.subs.contains(sk) {
            return;
        }
        let sub = self.core.subs.remove(sk);
        self.index.remove(&sub.subject, sub.queue.as_deref(), sk);
        if let Some(c) = self.core.conns.get_mut(sub.conn) {
            c.sids.remove(&sub.sid);
        }
    }

    fn remove_subs(&mut self, key: usize) {
        let Some(c) = self.core.conns.get_mut(key) else {
            return;
        };
        let mut sks: Vec<usize> = c.sids.values().copied().collect();
        sks.sort_unstable();
        for sk in sks {
            self.remove_sub(sk);
        }
    }

    /// Drop every trace of a connection, its timers included.
    fn forget(&mut self, key: usize) {
        if self.core.conns.contains(key) {
            let c = self.core.conns.remove(key);
            self.by_id.remove(&c.id);
            for (i, at) in c.timers.iter().enumerate() {
                if let Some(at) = at {
                    self.timers.remove(&(*at, c.id, Timer::ALL[i]));
                }
            }
        }
    }
}

/// Replies that clients may not use (row C19): service imports, JetStream acks
/// and gateway-routed replies. As in nats-server's `isReservedReply`, a bare
/// `_R_.` is reserved (`isServiceReply` checks `len > 3`), while `$JS.ACK.` and
/// `_GR_.` need at least one byte after the prefix.
fn is_reserved_reply(reply: &[u8]) -> bool {
    reply.starts_with(b"_R_.")
        || (reply.len() > 8 && reply.starts_with(b"$JS.ACK."))
        || (reply.len() > 5 && reply.starts_with(b"_GR_."))
}

/// Queue group names are single tokens without whitespace.
fn is_valid_queue(q: &[u8]) -> bool {
    !q.is_empty() && !q.iter().any(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}
