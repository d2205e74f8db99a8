//! An in-memory disk that carries out the engine's [`StorageOp`]s and can crash.
//!
//! Every file has a *volatile* copy (what the running process sees) and a
//! *durable* copy (what survives a crash):
//! - `Write` and `Truncate` change the volatile copy only;
//! - `Sync` copies the file's volatile bytes to its durable copy (and makes the
//!   file's existence durable);
//! - `Rename` is atomic and durable, as the storage contract promises: the
//!   target's volatile copy becomes the source's volatile copy and its durable
//!   copy the source's durable copy (empty if the source was never synced);
//! - `Remove` and `RemoveDir` change the volatile view at once and become durable
//!   at the next successful `Sync` or `Rename` of any file (a journalling file
//!   system commits directory changes with the next fsync); a crash before that
//!   brings the files back;
//! - `List` and `Read` see the volatile view.
//!
//! Operations are queued as the engine emits them and carried out, strictly in
//! that order, only when the harness says so ([`SimDisk::perform`]); their
//! completions wait in a second queue until the harness delivers them. So a test
//! chooses exactly how far the disk got and what the engine has been told.
//!
//! [`SimDisk::crash`] throws away the queues and every volatile change; with a
//! torn tail, a prefix of the unsynced bytes of the last written file survives.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use natrium_engine::storage::{StorageId, StorageOp, StorageResult};

/// Which operations fail when performed.
pub type FailRule = Box<dyn FnMut(StorageId, &StorageOp) -> bool>;

#[derive(Default)]
pub struct SimDisk {
    volatile: BTreeMap<String, Vec<u8>>,
    durable: BTreeMap<String, Vec<u8>>,
    /// Removals not yet durable, in order (a file path or a directory prefix).
    removals: Vec<Removal>,
    /// The file the last performed Write went to.
    last_written: Option<String>,
    /// Emitted, not yet performed.
    queue: VecDeque<(StorageId, StorageOp)>,
    /// Performed, completion not yet delivered.
    done: VecDeque<(StorageId, StorageResult)>,
    /// Every operation ever emitted, in order (for counting and determinism).
    pub log: Vec<(StorageId, StorageOp)>,
    /// Operations performed successfully since the last crash.
    pub performed_ok: BTreeSet<StorageId>,
    /// Operations whose completion was delivered since the last crash.
    pub delivered: BTreeSet<StorageId>,
    /// Decides which operations fail (none when unset).
    pub fail: Option<FailRule>,
    /// Bytes returned by Reads, by file (every incarnation).
    pub read_bytes: BTreeMap<String, u64>,
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
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// The engine emitted an operation.
    pub fn submit(&mut self, id: StorageId, op: StorageOp) {
        self.log.push((id, op.clone()));
        self.queue.push_back((id, op));
    }

    /// Operations emitted and not yet performed.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The operations emitted and not yet performed.
    pub fn queue(&self) -> impl Iterator<Item = &(StorageId, StorageOp)> {
        self.queue.iter()
    }

    /// Completions waiting to be delivered.
    pub fn completions(&self) -> usize {
        self.done.len()
    }

    /// Perform up to `n` queued operations, in order. Returns how many.
    pub fn perform(&mut self, n: usize) -> usize {
        let mut k = 0;
        while k < n {
            let Some((id, op)) = self.queue.pop_front() else {
                break;
            };
            let fail = match self.fail.as_mut() {
                Some(rule) => rule(id, &op),
                None => false,
            };
            let result = if fail {
                StorageResult::Error(format!("injected failure of {op:?}"))
            } else {
                self.apply(&op)
            };
            if !matches!(result, StorageResult::Error(_)) {
                self.performed_ok.insert(id);
            }
            self.done.push_back((id, result));
            k += 1;
        }
        k
    }

    /// Perform everything queued.
    pub fn perform_all(&mut self) -> usize {
        self.perform(usize::MAX)
    }

    /// Take the next completion to deliver.
    pub fn next_completion(&mut self) -> Option<(StorageId, StorageResult)> {
        let c = self.done.pop_front()?;
        self.delivered.insert(c.0);
        Some(c)
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
                    *self.read_bytes.entry(file.clone()).or_default() += (end - start) as u64;
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

    /// The machine loses power: queued and undelivered operations vanish and
    /// every file reverts to its durable copy. With `torn = Some(r)`, the last
    /// written file keeps `r % (unsynced + 1)` of its unsynced appended bytes
    /// (when its volatile copy extends its durable one). Returns how many torn
    /// bytes survived.
    pub fn crash(&mut self, torn: Option<u64>) -> usize {
        self.queue.clear();
        self.done.clear();
        self.removals.clear();
        self.performed_ok.clear();
        self.delivered.clear();
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

    /// The process dies, the machine does not: queued and undelivered
    /// operations vanish, while everything performed stays in the page cache.
    pub fn kill(&mut self) {
        self.queue.clear();
        self.done.clear();
        self.performed_ok.clear();
        self.delivered.clear();
    }

    /// A file's current (volatile) contents.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.volatile.get(path).map(|v| &v[..])
    }

    /// A file's durable contents.
    pub fn durable_file(&self, path: &str) -> Option<&[u8]> {
        self.durable.get(path).map(|v| &v[..])
    }

    /// Corrupt a byte of a file, durably (bit rot).
    pub fn flip_byte(&mut self, path: &str, at: usize, mask: u8) {
        for f in [self.volatile.get_mut(path), self.durable.get_mut(path)]
            .into_iter()
            .flatten()
        {
            f[at] ^= mask;
        }
    }

    /// Every file path (volatile view).
    pub fn paths(&self) -> Vec<String> {
        self.volatile.keys().cloned().collect()
    }
}
