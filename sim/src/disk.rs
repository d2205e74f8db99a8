//! The simulated disk: carries out the engine's storage operations in memory,
//! survives host restarts, and fails the way a real one does.
//!
//! The model is [`MemDisk`]: a page cache that survives the server process
//! being killed, and durable copies that are all that survives power loss.
//!
//! Faults: a per-operation failure probability (EIO) for writes and syncs, a
//! latency per operation, and on power loss an optional torn tail: a prefix of
//! the last written file's unsynced bytes survives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use natrium_engine::storage::{StorageId, StorageOp, StorageResult};
use natrium_memdisk::MemDisk;
use natrium_runtime_tokio::{Completions, Storage};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

use crate::trace::Trace;

/// The disk of one server host, shared by all its incarnations.
#[derive(Clone)]
pub struct SimDisk(Arc<Mutex<State>>);

struct State {
    disk: MemDisk,
    rng: SmallRng,
    /// Probability that a Write or Sync fails with EIO.
    fail_rate: f64,
    /// Upper bound of each operation's latency.
    max_latency: Duration,
    trace: Trace,
}

impl SimDisk {
    pub fn new(seed: u64, trace: Trace) -> SimDisk {
        SimDisk(Arc::new(Mutex::new(State {
            disk: MemDisk::new(),
            rng: SmallRng::seed_from_u64(seed),
            fail_rate: 0.0,
            max_latency: Duration::ZERO,
            trace,
        })))
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }

    pub fn set_faults(&self, fail_rate: f64, max_latency: Duration) {
        self.with(|s| {
            s.fail_rate = fail_rate;
            s.max_latency = max_latency;
        })
    }

    /// The executor for one incarnation of the server: performs operations in
    /// order, each after its latency, on a task of the host's runtime (so a
    /// crash of the host drops whatever it had not performed yet).
    pub fn start(&self, done: Completions) -> SimStorage {
        let (tx, mut rx) = mpsc::unbounded_channel::<(StorageId, StorageOp)>();
        let disk = self.clone();
        tokio::spawn(async move {
            while let Some((id, op)) = rx.recv().await {
                let latency = disk.with(|s| {
                    let max = s.max_latency.as_micros() as u64;
                    if max == 0 {
                        0
                    } else {
                        s.rng.random_range(0..=max)
                    }
                });
                if latency > 0 {
                    tokio::time::sleep(Duration::from_micros(latency)).await;
                }
                let result = disk.with(|s| s.perform(id, &op));
                done.complete(id, result);
            }
        });
        SimStorage { tx }
    }

    /// Power loss: every file reverts to its durable copy. With `torn`, the
    /// last written file keeps part of its unsynced tail. Returns the torn bytes kept.
    pub fn power_loss(&self, torn: Option<u64>) -> usize {
        self.with(|s| s.disk.power_loss(torn))
    }

    /// Bytes stored durably, over all files (for reports).
    pub fn durable_bytes(&self) -> usize {
        self.with(|s| s.disk.durable_bytes())
    }
}

/// What the driver submits to.
pub struct SimStorage {
    tx: mpsc::UnboundedSender<(StorageId, StorageOp)>,
}

impl Storage for SimStorage {
    fn submit(&self, id: StorageId, op: StorageOp) {
        let _ = self.tx.send((id, op));
    }
}

impl State {
    fn perform(&mut self, id: StorageId, op: &StorageOp) -> StorageResult {
        self.trace
            .bytes("storage", format!("{} {op:?}", id.0).as_bytes());
        let faulty = matches!(op, StorageOp::Write { .. } | StorageOp::Sync { .. })
            && self.fail_rate > 0.0
            && self.rng.random_bool(self.fail_rate.min(1.0));
        let result = if faulty {
            StorageResult::Error("input/output error (simulated)".into())
        } else {
            self.disk.apply(op)
        };
        if faulty || matches!(result, StorageResult::Error(_)) {
            let r = result.clone();
            self.trace
                .log(|| format!("disk: op {} {} -> {r:?}", id.0, describe(op)));
        }
        self.trace
            .bytes("storage-done", format!("{} {result:?}", id.0).as_bytes());
        result
    }
}

fn describe(op: &StorageOp) -> String {
    match op {
        StorageOp::Write { file, offset, data } => {
            format!("write {file} @{offset} {} bytes", data.len())
        }
        StorageOp::Read { file, offset, len } => format!("read {file} @{offset} {len}"),
        StorageOp::Sync { file } => format!("sync {file}"),
        StorageOp::Truncate { file, len } => format!("truncate {file} {len}"),
        StorageOp::Rename { from, to } => format!("rename {from} {to}"),
        StorageOp::Remove { file } => format!("remove {file}"),
        StorageOp::RemoveDir { dir } => format!("rmdir {dir}"),
        StorageOp::List { dir } => format!("list {dir}"),
    }
}
