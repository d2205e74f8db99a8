//! The crash tests' disk: [`MemDisk`] (page cache, durable copies, power loss)
//! with the order of operations and completions in the test's hands.
//!
//! Operations are queued as the engine emits them and carried out, strictly in
//! that order, only when the harness says so ([`SimDisk::perform`]); their
//! completions wait in a second queue until the harness delivers them. So a test
//! chooses exactly how far the disk got and what the engine has been told.
//!
//! [`SimDisk::crash`] throws away the queues and every volatile change; with a
//! torn tail, a prefix of the unsynced bytes of the last written file survives.
//! [`SimDisk::kill`] throws away only the queues (the page cache survives).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use natrium_engine::storage::{StorageId, StorageOp, StorageResult};
use natrium_memdisk::MemDisk;

/// Which operations fail when performed.
pub type FailRule = Box<dyn FnMut(StorageId, &StorageOp) -> bool>;

#[derive(Default)]
pub struct SimDisk {
    disk: MemDisk,
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
                self.disk.apply(&op)
            };
            if let (StorageOp::Read { file, .. }, StorageResult::Data(d)) = (&op, &result) {
                *self.read_bytes.entry(file.clone()).or_default() += d.len() as u64;
            }
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

    /// The machine loses power: queued and undelivered operations vanish and
    /// every file reverts to its durable copy (see [`MemDisk::power_loss`]).
    /// Returns how many torn bytes survived.
    pub fn crash(&mut self, torn: Option<u64>) -> usize {
        self.kill();
        self.disk.power_loss(torn)
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
        self.disk.file(path)
    }

    /// A file's durable contents.
    pub fn durable_file(&self, path: &str) -> Option<&[u8]> {
        self.disk.durable_file(path)
    }

    /// Corrupt a byte of a file, durably (bit rot).
    pub fn flip_byte(&mut self, path: &str, at: usize, mask: u8) {
        self.disk.flip_byte(path, at, mask)
    }

    /// Every file path (volatile view).
    pub fn paths(&self) -> Vec<String> {
        self.disk.paths()
    }
}
