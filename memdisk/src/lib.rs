//! An in-memory disk that carries out the engine's [`StorageOp`]s and can lose
//! power. The engine's crash tests and the simulator both run on it, each with
//! its own scheduling of operations and faults around it.
//!
//! Every file has a *volatile* copy (the page cache: what the running process
//! sees, and what survives the process being killed) and a *durable* copy (what
//! survives power loss):
//! - `Write` and `Truncate` change the volatile copy only;
//! - `Sync` copies the file's volatile bytes to its durable copy (and makes the
//!   file's existence durable);
//! - `Rename` is atomic and durable, as the storage contract promises: the
//!   target's volatile copy becomes the source's volatile copy and its durable
//!   copy the source's durable copy (empty if the source was never synced);
//! - `Remove` and `RemoveDir` change the volatile view at once and become durable
//!   at the next successful `Sync` or `Rename` of any file (a journalling file
//!   system commits directory changes with the next fsync); power loss before
//!   that brings the files back;
//! - `List` and `Read` see the volatile view.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use natrium_engine::storage::{StorageOp, StorageResult};

#[derive(Default)]
pub struct MemDisk {
    volatile: BTreeMap<String, Vec<u8>>,
    durable: BTreeMap<String, Vec<u8>>,
    /// Removals not yet durable, in order (a file path or a directory).
    removals: Vec<Removal>,
    /// The file the last performed Write went to.
    last_written: Option<String>,
}

#[derive(Clone, Debug)]
enum Removal {
    File(String),
    Dir(String),
}

fn in_dir(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

impl MemDisk {
    pub fn new() -> MemDisk {
        MemDisk::default()
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

    /// Carry out one operation.
    pub fn apply(&mut self, op: &StorageOp) -> StorageResult {
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

    /// The machine loses power: every file reverts to its durable copy and
    /// removals not yet durable are undone. With `torn = Some(r)`, the last
    /// written file keeps `r % (unsynced + 1)` of its unsynced appended bytes
    /// (when its volatile copy extends its durable one). Returns how many torn
    /// bytes survived.
    pub fn power_loss(&mut self, torn: Option<u64>) -> usize {
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
            if let Some(b) = f.get_mut(at) {
                *b ^= mask;
            }
        }
    }

    /// Every file path (volatile view).
    pub fn paths(&self) -> Vec<String> {
        self.volatile.keys().cloned().collect()
    }

    /// Bytes stored durably, over all files.
    pub fn durable_bytes(&self) -> usize {
        self.durable.values().map(Vec::len).sum()
    }
}
