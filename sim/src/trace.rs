//! What a run records: a hash of every byte that crosses the engine's boundary
//! (socket reads and writes, storage operations and their results), and a
//! readable event log, both stamped with simulated time.

use std::hash::{DefaultHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Lines kept in the event log; later ones are counted, not kept.
const MAX_LOG_LINES: usize = 200_000;

/// Shared by every host of one run (the server's tasks need `Send`).
#[derive(Clone, Default)]
pub struct Trace(Arc<Mutex<Inner>>);

#[derive(Default)]
struct Inner {
    hash: Option<DefaultHasher>,
    log: Vec<String>,
    dropped: usize,
    violations: Vec<String>,
}

/// Simulated time since the run began.
pub fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

impl Trace {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    /// Fold bytes that crossed the boundary into the hash. `what` tells them
    /// apart (direction and connection, or the storage operation).
    pub fn bytes(&self, what: &str, data: &[u8]) {
        let t = now().as_nanos() as u64;
        self.with(|i| {
            // DefaultHasher::new() has fixed keys: the same bytes, the same hash.
            let h = i.hash.get_or_insert_with(DefaultHasher::new);
            h.write_u64(t);
            h.write(what.as_bytes());
            h.write_usize(data.len());
            h.write(data);
        })
    }

    /// One line of the event log.
    pub fn log(&self, line: impl FnOnce() -> String) {
        self.log_at(now(), line)
    }

    /// One line of the event log, at a time given by the caller (outside a host).
    pub fn log_at(&self, t: Duration, line: impl FnOnce() -> String) {
        self.with(|i| {
            if i.log.len() < MAX_LOG_LINES {
                let us = t.as_micros();
                i.log
                    .push(format!("{:>5}.{:03}ms {}", us / 1000, us % 1000, line()));
            } else {
                i.dropped += 1;
            }
        })
    }

    /// An invariant failed.
    pub fn violation(&self, what: String) {
        let t = now();
        self.log_at(t, || format!("VIOLATION {what}"));
        self.with(|i| {
            if i.violations.len() < 100 {
                i.violations.push(what)
            }
        })
    }

    pub fn violations(&self) -> Vec<String> {
        self.with(|i| i.violations.clone())
    }

    pub fn hash(&self) -> u64 {
        self.with(|i| i.hash.as_ref().map_or(0, Hasher::finish))
    }

    pub fn take_log(&self) -> Vec<String> {
        self.with(|i| {
            let mut log = std::mem::take(&mut i.log);
            if i.dropped > 0 {
                log.push(format!("... {} more lines not kept", i.dropped));
            }
            log
        })
    }
}
