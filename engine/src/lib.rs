//! Natrium's sans-IO NATS engine.
//!
//! The engine is a pure state machine: bytes and timer events go in, bytes to
//! write and connections to close come out. It never touches a socket, a file, a
//! clock, a thread or the OS's randomness; runtimes do that. The whole driver
//! contract is documented on [`Server`].
//!
//! Layout: [`proto`] owns the wire syntax, [`subject`] the subject rules and the
//! subscription index, [`server`] connections, routing, auth and limits.

pub mod config;
pub mod jetstream;
pub mod proto;
pub mod server;
pub mod subject;
pub mod time;

pub use config::Config;
pub use server::{CloseReason, ConnId, Output, Server, Stats, SERVER_VERSION};
pub use time::Instant;

/// Hash map with a seeded, fixed hasher: deterministic for a given seed, and not
/// predictable by clients who do not know it.
pub(crate) type Map<K, V> = hashbrown::HashMap<K, V, foldhash::fast::FixedState>;
