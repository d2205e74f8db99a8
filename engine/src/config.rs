//! Server settings the engine decides with. The binary fills this from flags and the
//! config file; the engine never reads the environment or a file itself.

use std::time::Duration;

/// Everything the engine needs to know about how it was configured.
#[derive(Clone, Debug)]
pub struct Config {
    /// `server_name`; when `None` the server id is used (INFO `server_name`).
    pub server_name: Option<String>,
    /// Host advertised in INFO (`host`).
    pub host: String,
    /// Port advertised in INFO (`port`): the port actually bound.
    pub port: u16,
    /// Largest PUB/HPUB payload (headers included), in bytes (row L1).
    pub max_payload: u32,
    /// Longest control line, in bytes (row L2).
    pub max_control_line: u32,
    /// Outbound bytes a connection may have queued before it is a slow consumer (row L3).
    pub max_pending: u64,
    /// Connections the server accepts at once (row L5).
    pub max_connections: usize,
    /// Subscriptions per connection; 0 means unlimited (row L6).
    pub max_subscriptions: usize,
    /// How often the server pings an idle client (row C11).
    pub ping_interval: Duration,
    /// Unanswered server PINGs before the connection is stale (row C11).
    pub ping_max: u32,
    /// How long a write may stay unfinished before the client is a slow consumer (row L4).
    pub write_deadline: Duration,
    /// Client authentication and permissions (section 1.7).
    pub auth: AuthConfig,
    /// Whether JetStream is enabled (INFO `jetstream`).
    pub jetstream: bool,
    /// `jetstream { max_memory_store }` in bytes; -1 = unlimited.
    pub jetstream_max_memory: i64,
    /// `jetstream { max_file_store }` in bytes; -1 = unlimited.
    pub jetstream_max_store: i64,
    /// File-backed streams persist through storage operations. A runtime without
    /// a disk executor sets this false (file streams then live in memory).
    pub jetstream_persist: bool,
    /// `jetstream { sync_interval }`: `None` (the default, `always`) fsyncs
    /// before every PubAck; a duration acknowledges after the write and fsyncs
    /// periodically.
    pub jetstream_sync_interval: Option<Duration>,
    /// Byte budget of each file-backed stream's cache of message headers and
    /// payloads, each entry counted with its overhead
    /// (`jetstream::store::CACHE_ENTRY_COST`); older messages are read back
    /// from the log when needed.
    pub jetstream_cache_bytes: u64,
    /// Flushes between writes of a file-backed stream's index checkpoint
    /// (besides when a log segment closes and every 8 MiB of log).
    pub jetstream_index_flushes: u64,
    /// A deliberate bug, for showing that the simulator catches it. Honoured
    /// only in debug builds; release builds ignore it.
    #[doc(hidden)]
    pub injected_bug: Option<InjectedBug>,
}

/// Bugs the engine can be told to have (debug builds only), so a test can show
/// that the simulator's invariants catch them.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedBug {
    /// A PubAck goes out as soon as the message is stored, before its fsync.
    AckBeforeSync,
    /// UNSUB is acknowledged but the subscription keeps receiving.
    DeliverAfterUnsub,
}

impl Config {
    /// Whether `bug` is switched on (never in a release build).
    pub(crate) fn has_bug(&self, bug: InjectedBug) -> bool {
        cfg!(debug_assertions) && self.injected_bug == Some(bug)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server_name: None,
            host: "0.0.0.0".to_string(),
            port: 4222,
            max_payload: 1024 * 1024,
            max_control_line: 4096,
            max_pending: 64 * 1024 * 1024,
            max_connections: 64 * 1024,
            max_subscriptions: 0,
            ping_interval: Duration::from_secs(120),
            ping_max: 2,
            write_deadline: Duration::from_secs(10),
            auth: AuthConfig::default(),
            jetstream: false,
            jetstream_max_memory: -1,
            jetstream_max_store: -1,
            jetstream_persist: true,
            jetstream_sync_interval: None,
            jetstream_cache_bytes: crate::jetstream::store::DEFAULT_CACHE_BYTES,
            jetstream_index_flushes: crate::jetstream::persist::DEFAULT_INDEX_FLUSHES,
            injected_bug: None,
        }
    }
}

/// The `authorization { … }` block and the `--user/--pass/--auth` flags.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Single user name (row A1).
    pub user: Option<String>,
    /// Password of the single user; may be a bcrypt hash (rows A1, A4).
    pub password: Option<String>,
    /// Token (row A2); may be a bcrypt hash.
    pub token: Option<String>,
    /// Multiple users (row A3).
    pub users: Vec<User>,
    /// Permissions for users that have none of their own (row A8).
    pub default_permissions: Option<Permissions>,
    /// Connections without credentials are bound to this user (row A9).
    pub no_auth_user: Option<String>,
    /// Time a client has to send CONNECT when auth is required (row E3).
    pub timeout: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            user: None,
            password: None,
            token: None,
            users: Vec::new(),
            default_permissions: None,
            no_auth_user: None,
            timeout: Duration::from_secs(2),
        }
    }
}

impl AuthConfig {
    /// Whether clients must authenticate (INFO `auth_required`).
    pub fn required(&self) -> bool {
        self.user.is_some() || self.token.is_some() || !self.users.is_empty()
    }
}

/// One entry of `authorization { users = [ … ] }`.
#[derive(Clone, Debug, Default)]
pub struct User {
    pub user: String,
    /// Plain text, or a bcrypt hash (`$2a$…`).
    pub password: String,
    pub permissions: Option<Permissions>,
}

/// `permissions { publish, subscribe }` (row A6).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Option<SubjectPermission>,
    pub subscribe: Option<SubjectPermission>,
}

/// An allow list and a deny list of subjects; wildcards allowed, deny wins.
/// An empty `allow` with a non-empty `deny` allows everything not denied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectPermission {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}
