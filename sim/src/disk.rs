//! The simulated disk: carries out the engine's storage operations in memory,
//! survives host restarts, and fails the way a real one does.
//!
//! Every file has a *volatile* copy (the page cache: what the running process
//! sees, and what survives the process being killed) and a *durable* copy (what
//! survives power loss):
//! - `Write` and `Truncate` change the volatile copy;
//! - `Sync` copies the file's volatile bytes to its durable copy;
//! - `Rename` is atomic and durable (the storage contract says so);
//! - `Remove` and `RemoveDir` become durable at the next successful `Sync` or
//!   `Rename` (a journalling file system commits directory changes with the
//!   next fsync); power loss before that brings the files back.
//!
//! Faults: a per-operation failure probability (EIO) for writes and syncs, a
//! latency per operation, and on power loss an optional torn tail: a prefix of
//! the last written file's unsynced bytes survives.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use natrium_engine::storage::{StorageId, StorageOp, StorageResult};
use natrium_runtime_tokio::{Completions, Storage};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;

use crate::trace::Trace;

/// The disk of one server host, shared by all its incarnations.
#[derive(Clone)]
pub struct SimDisk(Arc<Mutex<State>>);

struct State {
    volatile: BTreeMap<String, Vec<u8>>,
    durable: BTreeMap<String, Vec<u8>>,
    /// Removals not yet durable (a file path or a directory).
    removals: Vec<Removal>,
    last_written: Option<String>,
    rng: SmallRng,
    /// Probability that a Write or Sync fails with EIO.
    pub fail_rate: f64,
    /// Upper bound of each operation's latency.
    pub max_latency: Duration,
    trace: Trace,
}

#[derive(Clone, Debug)]
enum Removal {
    File(String),
    Dir(String),
}

fn in_dir(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

impl SimDisk {
    pub fn new(seed: u64, trace: Trace) -> SimDisk {
        SimDisk(Arc::new(Mutex::new(State {
            volatile: BTreeMap::new(),
            durable: BTreeMap::new(),
            removals: Vec::new(),
            last_written: None,
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
        self.with(|s| s.power_loss(torn))
    }

    /// Bytes stored durably, over all files (for reports).
    pub fn durable_bytes(&self) -> usize {
        self.with(|s| s.durable.values().map(Vec::len).sum())
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
            self.apply(op)
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

    fn commit_removals(&mut self) {
        for r in std::mem::take(&mut self.removals) {
            match r {
                Removal::File(f) => {
                    self.durable.remove(&f);
                }
                Removal::Dir(d) => self.durable.retain(|p, _| !in_dir(p, &d)),
            }
        }
    }

    fn apply(&mut self, op: &StorageOp) -> StorageResult {
        match op {
            StorageOp::Write { file, offset, data } => {
                let f = self.volatile.entry(file.clone()).or_default();
                let off = *offset as usize;
                if f.len() < off + data.len() {
                    f.resize(off + data.len(), 0);
                }
                f[off..off + data.len()].copy_from_slice(data);
                self.last_written = Some(file.clone());
                StorageResult::Done
            }
            StorageOp::Truncate { file, len } => {
                let f = self.volatile.entry(file.clone()).or_default();
                f.resize(*len as usize, 0);
                StorageResult::Done
            }
            StorageOp::Sync { file } => {
                let Some(v) = self.volatile.get(file) else {
                    return StorageResult::Error(format!("sync of missing file {file}"));
                };
                let v = v.clone();
                self.commit_removals();
                self.durable.insert(file.clone(), v);
                StorageResult::Done
            }
            StorageOp::Rename { from, to } => {
                let Some(v) = self.volatile.remove(from) else {
                    return StorageResult::Error(format!("rename of missing file {from}"));
                };
                self.commit_removals();
                let d = self.durable.remove(from).unwrap_or_default();
                self.volatile.insert(to.clone(), v);
                self.durable.insert(to.clone(), d);
                StorageResult::Done
            }
            StorageOp::Remove { file } => {
                self.volatile.remove(file);
                self.removals.push(Removal::File(file.clone()));
                StorageResult::Done
            }
            StorageOp::RemoveDir { dir } => {
                self.volatile.retain(|p, _| !in_dir(p, dir) && p != dir);
                self.removals.push(Removal::Dir(dir.clone()));
                StorageResult::Done
            }
            StorageOp::Read { file, offset, len } => match self.volatile.get(file) {
                Some(f) => {
                    let start = (*offset as usize).min(f.len());
                    let end = start.saturating_add(*len as usize).min(f.len());
                    StorageResult::Data(Bytes::copy_from_slice(&f[start..end]))
                }
                None => StorageResult::Error(format!("{file}: no such file")),
            },
            StorageOp::List { dir } => {
                let mut names = BTreeSet::new();
                for p in self.volatile.keys() {
                    if in_dir(p, dir) {
                        let rest = &p[dir.len() + 1..];
                        names.insert(rest.split('/').next().unwrap_or(rest).to_string());
                    }
                }
                StorageResult::Names(names.into_iter().collect())
            }
        }
    }

    fn power_loss(&mut self, torn: Option<u64>) -> usize {
        self.removals.clear();
        let mut kept = 0;
        if let (Some(r), Some(file)) = (torn, self.last_written.take()) {
            if let Some(v) = self.volatile.get(&file) {
                let d = self.durable.get(&file).map_or(&[][..], |d| &d[..]);
                if v.len() > d.len() && v.starts_with(d) {
                    let extra = (r % (v.len() - d.len() + 1) as u64) as usize;
                    if extra > 0 {
                        kept = extra;
                        let torn = v[..d.len() + extra].to_vec();
                        self.durable.insert(file, torn);
                    }
                }
            }
        }
        self.last_written = None;
        self.volatile = self.durable.clone();
        kept
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
