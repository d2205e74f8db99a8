//! Per-connection protocol state: CONNECT options, the partial-input buffer, the
//! outbound buffer and its accounting, keep-alive counters. No routing decisions.

use std::sync::Arc;

use bytes::BytesMut;
use serde::Deserialize;

use super::auth::CompiledPermissions;
use crate::time::Instant;
use crate::Map;

/// The fields of CONNECT the server acts on (section 1.3). Fields a client leaves
/// out keep nats-server's defaults: verbose, pedantic and echo start out true.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct ConnectOptions {
    pub verbose: bool,
    pub pedantic: bool,
    pub echo: bool,
    pub headers: bool,
    pub no_responders: bool,
    pub protocol: i64,
    pub name: Option<String>,
    pub lang: Option<String>,
    pub version: Option<String>,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub auth_token: Option<String>,
    pub account: Option<String>,
    pub new_account: Option<bool>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            verbose: true,
            pedantic: true,
            echo: true,
            headers: false,
            no_responders: false,
            protocol: 0,
            name: None,
            lang: None,
            version: None,
            user: None,
            pass: None,
            auth_token: None,
            account: None,
            new_account: None,
        }
    }
}

/// One client connection.
pub(crate) struct Conn {
    pub id: u64,
    pub opts: ConnectOptions,
    /// CONNECT has been processed.
    pub connected: bool,
    /// Auth is required and CONNECT has not been seen yet.
    pub awaiting_auth: bool,
    pub permissions: Option<Arc<CompiledPermissions>>,
    /// Client sid -> subscription key.
    pub sids: Map<Box<[u8]>, usize>,
    /// Bytes of an operation that has not fully arrived yet.
    pub partial: Vec<u8>,
    /// Total length `partial` must reach before parsing can progress.
    pub partial_need: usize,
    /// Frames waiting to be handed to the runtime.
    pub out: BytesMut,
    /// Bytes handed to the runtime and not yet reported written.
    pub in_flight: u64,
    /// When the runtime last reported write progress (or when in-flight bytes began).
    pub write_progress_at: Instant,
    /// Already in the server's list of connections with data to transmit.
    pub dirty: bool,
    /// Being closed: no more input is parsed and nothing more is delivered.
    pub closing: bool,
    pub pings_out: u32,
    pub last_activity: Instant,
    pub rtt_known: bool,
    /// When the server last sent a keep-alive PING (nats-server's `rttStart`).
    pub rtt_start: Option<Instant>,
    /// Armed deadlines, indexed by timer kind (at most one of each).
    pub timers: [Option<Instant>; 4],
    /// Reading is paused: this connection is a stalled fast producer.
    pub read_paused: bool,
    /// Producers (by id) stalled until this connection drains. Bounded by the
    /// number of connections; each producer is in at most one list at a time.
    pub stalled_producers: Vec<u64>,
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
}

impl Conn {
    pub fn new(id: u64, now: Instant, awaiting_auth: bool, hash_seed: u64) -> Conn {
        Conn {
            id,
            opts: ConnectOptions::default(),
            connected: false,
            awaiting_auth,
            permissions: None,
            sids: Map::with_hasher(foldhash::fast::FixedState::with_seed(hash_seed)),
            partial: Vec::new(),
            partial_need: 0,
            out: BytesMut::new(),
            in_flight: 0,
            write_progress_at: now,
            dirty: false,
            closing: false,
            pings_out: 0,
            last_activity: now,
            rtt_known: false,
            rtt_start: None,
            timers: [None; 4],
            read_paused: false,
            stalled_producers: Vec::new(),
            in_msgs: 0,
            in_bytes: 0,
            out_msgs: 0,
            out_bytes: 0,
        }
    }

    /// Outbound bytes not yet written to the socket: the max_pending measure (row L3).
    pub fn pending(&self) -> u64 {
        self.out.len() as u64 + self.in_flight
    }
}
