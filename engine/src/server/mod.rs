//! The server core: connections, subscriptions, routing, keep-alive and limits.
//! It owns every decision of core NATS and talks to the outside world only through
//! the inputs and outputs documented on [`Server`].

mod auth;
mod conn;
mod core;
mod flow;
mod frames;
mod internal;
mod ops;

use ::core::net::SocketAddr;
use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use slab::Slab;

use self::auth::Authenticator;
use self::conn::Conn;
use self::core::Core;
use self::frames::{write_info, Info};
use crate::config::Config;
use crate::subject::SubjectIndex;
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
    /// Perform a storage operation (in emitted order) and report its completion
    /// with [`Server::handle_storage`].
    Storage {
        id: crate::storage::StorageId,
        op: crate::storage::StorageOp,
    },
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
    /// Server-wide (connection id 0): JetStream's max_age expiry.
    JetStream = 4,
}

impl Timer {
    const ALL: [Timer; 4] = [Timer::Auth, Timer::Ping, Timer::WriteDeadline, Timer::Stall];
}

/// A stalled producer waits at least this long for its consumer (nats-server's
/// `stallClientMinDuration`), longer the fuller the consumer is.
const STALL_MIN: Duration = Duration::from_millis(100);
/// ... and at most this long (`stallClientMaxDuration`).
const STALL_MAX: Duration = Duration::from_secs(1);

/// The sans-IO NATS server.
///
/// # Driving it
///
/// A runtime owns the sockets, the disk and the clock; the engine owns every
/// decision. Before the first input, call [`Server::set_wall_clock`] once, then
/// drain outputs (JetStream's recovery starts with storage operations). The loop is:
///
/// 1. Feed one input, each stamped with the current [`Instant`]:
///    - [`Server::handle_accept`] for a new client connection (returns its [`ConnId`]),
///    - [`Server::handle_read`] with the bytes that arrived on a connection,
///    - [`Server::handle_written`] when bytes of an earlier `Transmit` were written,
///    - [`Server::handle_closed`] when the peer closed or the socket failed,
///    - [`Server::handle_storage`] when a storage operation completed,
///    - [`Server::handle_timeout`] when the deadline from `poll_timeout` has passed,
///    - [`Server::handle_shutdown`] to stop: every client is closed.
/// 2. Drain [`Server::poll_output`] until it returns `None`, carrying out each
///    [`Output`] in order: `Transmit` queues bytes for that connection's socket,
///    `Close` closes it (after flushing, when the reason says so), `PauseRead` /
///    `ResumeRead` stop and restart reading from a connection, and `Storage`
///    hands an operation to the disk executor (see [`crate::storage`] for its
///    contract; its completion is a later `handle_storage`).
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
    /// JetStream, when enabled.
    js: Option<crate::jetstream::service::JetStream>,
    /// Subscriptions held by engine services.
    internal_subs: std::collections::BTreeMap<(core::InternalTarget, Box<[u8]>), usize>,
    /// Storage operations not yet polled.
    storage_out: VecDeque<(crate::storage::StorageId, crate::storage::StorageOp)>,
    /// Unix nanoseconds at monotonic instant zero.
    wall_origin: i64,
    /// When JetStream's expiry timer is armed.
    js_timer: Option<Instant>,
    /// A client subscription came or went this input: consumers look again
    /// at their deliver subjects and requesters.
    interest_changed: bool,
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
        let mut server = Server {
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
                internal: VecDeque::new(),
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
            js: None,
            internal_subs: std::collections::BTreeMap::new(),
            storage_out: VecDeque::new(),
            wall_origin: 0,
            js_timer: None,
            interest_changed: false,
        };
        server.start_services();
        server
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
            self.arm(key, now.after(self.cfg.auth.timeout), Timer::Auth);
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
        self.arm(key, now.after(first), Timer::Ping);
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
        self.parse_input(now, key, data);
        self.run_resumed();
        self.end_of_input();
    }

    /// Parse a connection's input where it lies. When an operation is split
    /// across reads, only what completes it is moved into the connection's
    /// buffer first (so each byte is copied at most once, whatever the payload
    /// size); what is left incomplete at the end is kept for the next read.
    fn parse_input(&mut self, now: Instant, key: usize, data: &[u8]) {
        let mut rest = data;
        while !rest.is_empty() {
            let Some(c) = self.core.conns.get_mut(key) else {
                return;
            };
            if c.closing {
                return;
            }
            if c.partial.is_empty() {
                let used = self.parse_ops(now, key, rest);
                if let Some(c) = self.core.conns.get_mut(key) {
                    if !c.closing && used < rest.len() {
                        c.partial.extend_from_slice(&rest[used..]);
                    }
                }
                return;
            }
            if c.read_paused {
                // Stalled: keep everything for when it is resumed (past the
                // cap, parse anyway, as handle_read does).
                c.partial.extend_from_slice(rest);
                if c.partial.len() >= PAUSED_BUFFER_MAX {
                    self.parse_partial(now, key);
                }
                return;
            }
            let have = c.partial.len();
            let want = if c.partial_need > have {
                c.partial_need - have
            } else {
                // Length unknown until the control line is complete.
                memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1)
            };
            let take = want.min(rest.len());
            c.partial.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if c.partial.len() >= c.partial_need {
                self.parse_partial(now, key);
            }
        }
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
            self.end_of_input();
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
        self.end_of_input();
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
            if timer == Timer::JetStream {
                self.jetstream_timer(now);
                continue;
            }
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
                Timer::JetStream => {}
            }
        }
        self.run_resumed();
        self.end_of_input();
    }

    /// Checks that what clients can grow stays within its documented bound: the
    /// number of connections, each one's queued output (max_pending, plus room
    /// for an -ERR, which is queued without a check before a close), and
    /// JetStream's syncs in flight. Simulators call it after every turn; the
    /// error names the first excess.
    pub fn check_bounds(&self) -> Result<(), String> {
        /// An -ERR is queued past max_pending (the close that follows flushes it).
        const CONTROL_SLACK: u64 = 64 * 1024;
        let open = self.core.conns.len();
        if open > self.cfg.max_connections + 1 {
            return Err(format!(
                "{open} connections (max_connections {})",
                self.cfg.max_connections
            ));
        }
        for (key, c) in self.core.conns.iter() {
            if c.pending() > self.cfg.max_pending + CONTROL_SLACK {
                return Err(format!(
                    "connection #{key} has {} bytes pending (max_pending {})",
                    c.pending(),
                    self.cfg.max_pending
                ));
            }
        }
        if self.closing.len() > open {
            return Err(format!(
                "{} closes queued for {open} connections",
                self.closing.len()
            ));
        }
        match &self.js {
            Some(js) => js.check_bounds(),
            None => Ok(()),
        }
    }

    /// The earliest time at which the engine wants [`Server::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|&(at, _, _)| at)
    }

    /// The next thing for the runtime to do, or `None` when there is nothing left.
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some((id, op)) = self.storage_out.pop_front() {
            return Some(Output::Storage { id, op });
        }
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
                let at = self.now.after(self.cfg.write_deadline);
                self.arm(key, at, Timer::WriteDeadline);
            }
            return Some(Output::Transmit { conn, data });
        }
        None
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
        self.interest_changed |= sub.internal.is_none();
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
