//! The disk executor: performs the engine's storage operations on a thread of its
//! own, off the network path, in the order they were emitted.
//!
//! It takes every operation that is waiting, performs them in order, and merges
//! runs of `Sync` on the same file into one fsync (group commit: every publish that
//! was appended before the fsync is covered by it). It uses only std, so any
//! runtime can drive it.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use bytes::Bytes;
use natrium_engine::storage::{is_valid_path, StorageId, StorageOp, StorageResult};

/// Open files kept between operations; past this, all are closed.
const MAX_OPEN_FILES: usize = 256;

/// Handle to a running disk executor.
pub struct DiskExecutor {
    tx: mpsc::Sender<(StorageId, StorageOp)>,
}

impl DiskExecutor {
    /// Start the executor thread on `root`. Each completion is handed to `done`.
    pub fn start(
        root: PathBuf,
        done: impl Fn(StorageId, StorageResult) + Send + 'static,
    ) -> io::Result<DiskExecutor> {
        fs::create_dir_all(&root)?;
        let (tx, rx) = mpsc::channel::<(StorageId, StorageOp)>();
        thread::Builder::new()
            .name("natrium-disk".into())
            .spawn(move || {
                let mut disk = Disk {
                    root,
                    open: HashMap::new(),
                };
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    disk.run(batch, &done);
                }
            })?;
        Ok(DiskExecutor { tx })
    }

    /// Queue one operation.
    pub fn submit(&self, id: StorageId, op: StorageOp) {
        // The thread only ends when this handle is dropped.
        let _ = self.tx.send((id, op));
    }
}

struct Disk {
    root: PathBuf,
    open: HashMap<String, File>,
}

impl Disk {
    fn run(
        &mut self,
        batch: Vec<(StorageId, StorageOp)>,
        done: &impl Fn(StorageId, StorageResult),
    ) {
        let mut i = 0;
        while i < batch.len() {
            // Group commit: a run of writes and syncs to one file is performed as
            // all its writes, in order, then one fsync that completes every sync of
            // the run. A sync then covers more than the writes before it, never less.
            let file = match &batch[i].1 {
                StorageOp::Write { file, .. } | StorageOp::Sync { file } => file,
                op => {
                    let result = self.perform(op);
                    done(batch[i].0, result);
                    i += 1;
                    continue;
                }
            };
            let mut j = i;
            while j < batch.len()
                && matches!(&batch[j].1, StorageOp::Write { file: f, .. } | StorageOp::Sync { file: f } if f == file)
            {
                j += 1;
            }
            let run = &batch[i..j];
            let mut failed: Option<StorageResult> = None;
            for (id, op) in run {
                if let StorageOp::Write { .. } = op {
                    let result = match &failed {
                        Some(e) => e.clone(),
                        None => self.perform(op),
                    };
                    if matches!(result, StorageResult::Error(_)) && failed.is_none() {
                        failed = Some(result.clone());
                    }
                    done(*id, result);
                }
            }
            if run
                .iter()
                .any(|(_, op)| matches!(op, StorageOp::Sync { .. }))
            {
                let result = failed.unwrap_or_else(|| self.sync(file));
                for (id, op) in run {
                    if let StorageOp::Sync { .. } = op {
                        done(*id, result.clone());
                    }
                }
            }
            i = j;
        }
    }

    fn path(&self, rel: &str) -> io::Result<PathBuf> {
        if !is_valid_path(rel) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad storage path {rel:?}"),
            ));
        }
        Ok(self.root.join(rel))
    }

    fn file(&mut self, rel: &str, create: bool) -> io::Result<&mut File> {
        if !self.open.contains_key(rel) {
            if self.open.len() >= MAX_OPEN_FILES {
                self.open.clear();
            }
            let path = self.path(rel)?;
            if create {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)?;
                }
            }
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .truncate(false)
                .open(&path)?;
            self.open.insert(rel.to_string(), f);
        }
        self.open
            .get_mut(rel)
            .ok_or_else(|| io::Error::other("file cache"))
    }

    fn sync(&mut self, rel: &str) -> StorageResult {
        let r = (|| {
            self.file(rel, true)?.sync_data()?;
            let path = self.path(rel)?;
            sync_parent(&path)
        })();
        into_result(r.map(|_| StorageResult::Done))
    }

    fn perform(&mut self, op: &StorageOp) -> StorageResult {
        let r = match op {
            StorageOp::Write { file, offset, data } => (|| {
                let f = self.file(file, true)?;
                f.seek(SeekFrom::Start(*offset))?;
                f.write_all(data)?;
                Ok(StorageResult::Done)
            })(),
            StorageOp::Read { file, offset, len } => (|| {
                let f = self.file(file, false)?;
                f.seek(SeekFrom::Start(*offset))?;
                let mut buf = Vec::new();
                f.take(*len).read_to_end(&mut buf)?;
                Ok(StorageResult::Data(Bytes::from(buf)))
            })(),
            StorageOp::Sync { file } => return self.sync(file),
            StorageOp::Truncate { file, len } => (|| {
                self.file(file, true)?.set_len(*len)?;
                Ok(StorageResult::Done)
            })(),
            StorageOp::Rename { from, to } => (|| {
                self.open.remove(from.as_str());
                self.open.remove(to.as_str());
                let (from, to) = (self.path(from)?, self.path(to)?);
                if let Some(parent) = to.parent() {
                    fs::create_dir_all(parent)?;
                }
                fs::rename(&from, &to)?;
                sync_parent(&to)?;
                Ok(StorageResult::Done)
            })(),
            StorageOp::Remove { file } => (|| {
                self.open.remove(file.as_str());
                match fs::remove_file(self.path(file)?) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                Ok(StorageResult::Done)
            })(),
            StorageOp::RemoveDir { dir } => (|| {
                let prefix = format!("{dir}/");
                self.open.retain(|k, _| !k.starts_with(&prefix));
                match fs::remove_dir_all(self.path(dir)?) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                Ok(StorageResult::Done)
            })(),
            StorageOp::List { dir } => (|| {
                let mut names = Vec::new();
                match fs::read_dir(self.path(dir)?) {
                    Ok(entries) => {
                        for e in entries {
                            names.push(e?.file_name().to_string_lossy().into_owned());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                names.sort();
                Ok(StorageResult::Names(names))
            })(),
        };
        into_result(r)
    }
}

fn sync_parent(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

fn into_result(r: io::Result<StorageResult>) -> StorageResult {
    r.unwrap_or_else(|e| StorageResult::Error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[test]
    fn performs_operations_in_order() {
        let root = std::env::temp_dir().join(format!("natrium-disk-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let results = Arc::new(Mutex::new(Vec::new()));
        let sink = results.clone();
        let disk = DiskExecutor::start(root.clone(), move |id, r| {
            sink.lock().unwrap().push((id.0, r))
        })
        .unwrap();
        let f = "streams/S/msgs/1.blk".to_string();
        disk.submit(
            StorageId(1),
            StorageOp::Write {
                file: f.clone(),
                offset: 0,
                data: Bytes::from_static(b"hello "),
            },
        );
        disk.submit(
            StorageId(2),
            StorageOp::Write {
                file: f.clone(),
                offset: 6,
                data: Bytes::from_static(b"world"),
            },
        );
        disk.submit(StorageId(3), StorageOp::Sync { file: f.clone() });
        disk.submit(StorageId(4), StorageOp::Sync { file: f.clone() });
        disk.submit(
            StorageId(5),
            StorageOp::Read {
                file: f.clone(),
                offset: 6,
                len: 100,
            },
        );
        disk.submit(
            StorageId(6),
            StorageOp::List {
                dir: "streams/S/msgs".into(),
            },
        );
        disk.submit(
            StorageId(7),
            StorageOp::Rename {
                from: f.clone(),
                to: "streams/S/msgs/2.blk".into(),
            },
        );
        disk.submit(
            StorageId(8),
            StorageOp::Read {
                file: f.clone(),
                offset: 0,
                len: 1,
            },
        );
        disk.submit(
            StorageId(9),
            StorageOp::RemoveDir {
                dir: "streams/S".into(),
            },
        );
        disk.submit(
            StorageId(10),
            StorageOp::List {
                dir: "streams/S/msgs".into(),
            },
        );
        disk.submit(
            StorageId(11),
            StorageOp::Write {
                file: "../escape".into(),
                offset: 0,
                data: Bytes::new(),
            },
        );
        for _ in 0..500 {
            if results.lock().unwrap().len() == 11 {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        let r = results.lock().unwrap().clone();
        let ids: Vec<u64> = r.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, (1..=11).collect::<Vec<_>>());
        assert_eq!(r[4].1, StorageResult::Data(Bytes::from_static(b"world")));
        assert_eq!(r[5].1, StorageResult::Names(vec!["1.blk".into()]));
        assert!(matches!(r[7].1, StorageResult::Error(_)), "renamed away");
        assert_eq!(r[9].1, StorageResult::Names(vec![]));
        assert!(
            matches!(r[10].1, StorageResult::Error(_)),
            "paths cannot escape the store"
        );
        let _ = fs::remove_dir_all(&root);
    }
}
