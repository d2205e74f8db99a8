//! Storage operations: the only way the engine's JetStream store reaches a disk.
//!
//! The engine decides what to write, read, sync, rename and remove; it emits each
//! decision as an [`Output::Storage`](crate::Output::Storage) carrying a
//! [`StorageId`] and a [`StorageOp`], and the runtime's disk executor performs it
//! and reports back through [`Server::handle_storage`](crate::Server::handle_storage).
//!
//! Contract for executors:
//! - Operations are performed **in the order they were emitted**. A `Sync`
//!   covers every `Write` emitted before it to the same file; an executor may
//!   delay a `Sync` past later writes to that file (group commit), since it then
//!   covers more, never less. Completions may arrive in any order.
//! - Paths are relative, `/`-separated, and never contain `..` or a leading `/`;
//!   the executor resolves them against the store directory. Parent directories
//!   are created on demand.
//! - `Rename` atomically replaces its target and makes the rename durable (the
//!   directory is synced); `Sync` makes a file's data and its directory entry
//!   durable.
//! - Every operation gets exactly one completion, success or error.

use bytes::Bytes;

/// Names one storage operation; its completion carries the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorageId(pub u64);

/// One thing for the disk executor to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageOp {
    /// Write `data` at `offset` of `file`, creating the file (and its parents).
    Write {
        file: String,
        offset: u64,
        data: Bytes,
    },
    /// Read up to `len` bytes at `offset` (fewer at the end of the file).
    Read { file: String, offset: u64, len: u64 },
    /// Make everything written to `file` durable.
    Sync { file: String },
    /// Cut `file` to `len` bytes.
    Truncate { file: String, len: u64 },
    /// Atomically replace `to` with `from`, durably.
    Rename { from: String, to: String },
    /// Remove a file (no error if it is already gone).
    Remove { file: String },
    /// Remove a directory and everything in it (no error if it is already gone).
    RemoveDir { dir: String },
    /// The names directly inside `dir`, sorted; empty if it does not exist.
    List { dir: String },
}

/// How a storage operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageResult {
    /// Write, Sync, Truncate, Rename, Remove and RemoveDir succeeded.
    Done,
    /// What a Read returned.
    Data(Bytes),
    /// What a List returned.
    Names(Vec<String>),
    /// The operation failed; the text is for logs and error replies.
    Error(String),
}

/// Whether `path` is acceptable as a storage path (relative, no `..`, no empty parts).
pub fn is_valid_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path.split('/').all(|p| {
            !p.is_empty() && p != "." && p != ".." && !p.contains('\\') && !p.contains('\0')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_store() {
        assert!(is_valid_path("streams/ORDERS/msgs/1.blk"));
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "./a", "a\\b", "a\0"] {
            assert!(!is_valid_path(bad), "{bad:?}");
        }
    }
}
