//! JetStream's [`Storage`] on real files: one directory, open file handles
//! kept per name, and fsyncs run by a thread of their own.
//!
//! A publish is acknowledged only once the fsync covering it completed, so
//! fsync sits on the acknowledgement path of the streams written, and must
//! sit on no other: `sync` returns a token at once and hands the fsync to
//! the syncer thread. The syncer takes every request queued while it was
//! busy, fsyncs each file named once (one fsync covers every write made
//! before it: group commit), fsyncs the directory when names were created
//! or removed, then reports the highest token of the batch as complete and
//! wakes the driver, which hands it to the core. Requests are served in
//! order, so completion of a token implies every earlier one completed, as
//! the [`Storage`] contract asks.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;

use bytes::Bytes;
use natrix_core::storage::{plain_name, Storage, StorageError, SyncToken};

use crate::storage::{error, exists, list_files, Completions};

/// Tells the driver that syncs completed.
pub type SyncWaker = Arc<dyn Fn() + Send + Sync>;

/// An open file and its length as written so far.
#[derive(Debug)]
struct Open {
    file: Arc<File>,
    len: u64,
}

/// One request for the syncer: fsync these files (and the directory), then
/// complete `token`.
struct SyncRequest {
    token: SyncToken,
    file: Option<Arc<File>>,
    dir: bool,
}

/// A directory of files behind the core's [`Storage`] trait, with syncs
/// done in the background (see the [module](self) documentation).
pub struct FileStorage {
    dir: PathBuf,
    files: HashMap<String, Open>,
    next_token: u64,
    /// A name was created or removed since the directory was last synced.
    dir_changed: bool,
    syncer: mpsc::Sender<SyncRequest>,
    completions: Completions,
}

impl std::fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStorage").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl FileStorage {
    /// Opens `dir`, creating it if missing, and starts its syncer thread,
    /// which calls `wake` after each batch of completed syncs.
    pub fn open(dir: impl Into<PathBuf>, wake: SyncWaker) -> std::io::Result<FileStorage> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        let completions: Completions = Arc::default();
        let (tx, rx) = mpsc::channel();
        let dir_handle = File::open(&dir)?;
        let done = Arc::clone(&completions);
        std::thread::Builder::new()
            .name("natrix-sync".into())
            .spawn(move || run_syncer(&rx, &dir_handle, &done, &*wake))?;
        Ok(FileStorage { dir, files: HashMap::new(), next_token: 1, dir_changed: false, syncer: tx, completions })
    }

    /// The queue of completed syncs, for the driver.
    pub fn completions(&self) -> Completions {
        Arc::clone(&self.completions)
    }

    fn path(&self, name: &str) -> Result<PathBuf, StorageError> {
        plain_name(name)?;
        Ok(self.dir.join(name))
    }

    /// The open handle of `name`, opening it (creating it when `create`).
    fn handle(&mut self, name: &str, create: bool) -> Result<&mut Open, StorageError> {
        if !self.files.contains_key(name) {
            let path = self.path(name)?;
            let existed = exists(&path);
            if !existed && !create {
                return Err(StorageError::NotFound { file: name.to_owned() });
            }
            let file = OpenOptions::new()
                .create(create)
                .read(true)
                .append(true)
                .open(&path)
                .map_err(|e| error(name, &e))?;
            let len = file.metadata().map_err(|e| error(name, &e))?.len();
            self.dir_changed |= !existed;
            self.files.insert(name.to_owned(), Open { file: Arc::new(file), len });
        }
        Ok(self.files.get_mut(name).expect("inserted above"))
    }
}

fn run_syncer(rx: &mpsc::Receiver<SyncRequest>, dir: &File, done: &Completions, wake: &(dyn Fn() + Send + Sync)) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let mut synced: Vec<*const File> = Vec::new();
        let mut dir_needed = false;
        for request in &batch {
            dir_needed |= request.dir;
            if let Some(file) = &request.file {
                let key = Arc::as_ptr(file);
                if !synced.contains(&key) {
                    synced.push(key);
                    // An fsync error leaves the data's fate unknown; the
                    // token still completes so nothing waits forever, and
                    // the next read of the file finds what is really there.
                    let _ = file.sync_data();
                }
            }
        }
        if dir_needed {
            let _ = dir.sync_all();
        }
        let last = batch.iter().map(|r| r.token).max().expect("a batch holds one request");
        match done.lock() {
            Ok(mut q) => q.push(last),
            Err(poisoned) => poisoned.into_inner().push(last),
        }
        wake();
    }
}

impl Storage for FileStorage {
    fn append(&mut self, file: &str, data: &[u8]) -> Result<u64, StorageError> {
        let open = self.handle(file, true)?;
        let offset = open.len;
        let mut f: &File = &open.file;
        if let Err(e) = f.write_all(data) {
            // Leave no partial write behind a failure, as the contract promises.
            let _ = open.file.set_len(offset);
            return Err(error(file, &e));
        }
        open.len += data.len() as u64;
        Ok(offset)
    }

    fn read(&mut self, file: &str, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        let open = self.handle(file, false)?;
        if offset.saturating_add(len as u64) > open.len {
            return Err(StorageError::OutOfRange {
                file: file.to_owned(),
                offset,
                len: len as u64,
                file_len: open.len,
            });
        }
        let mut buf = vec![0; len];
        open.file.read_exact_at(&mut buf, offset).map_err(|e| error(file, &e))?;
        Ok(Bytes::from(buf))
    }

    fn truncate(&mut self, file: &str, len: u64) -> Result<(), StorageError> {
        let open = self.handle(file, false)?;
        if len > open.len {
            return Err(StorageError::OutOfRange { file: file.to_owned(), offset: len, len: 0, file_len: open.len });
        }
        open.file.set_len(len).map_err(|e| error(file, &e))?;
        open.len = len;
        Ok(())
    }

    fn remove(&mut self, file: &str) -> Result<(), StorageError> {
        let path = self.path(file)?;
        self.files.remove(file);
        fs::remove_file(path).map_err(|e| error(file, &e))?;
        self.dir_changed = true;
        Ok(())
    }

    fn list(&self) -> Vec<String> {
        list_files(&self.dir)
    }

    fn len(&self, file: &str) -> Result<u64, StorageError> {
        if let Some(open) = self.files.get(file) {
            return Ok(open.len);
        }
        let meta = fs::metadata(self.path(file)?).map_err(|e| error(file, &e))?;
        Ok(meta.len())
    }

    fn sync(&mut self, file: &str) -> Result<SyncToken, StorageError> {
        self.path(file)?;
        let token = SyncToken(self.next_token);
        self.next_token += 1;
        let request = SyncRequest {
            token,
            file: self.files.get(file).map(|o| Arc::clone(&o.file)),
            dir: std::mem::take(&mut self.dir_changed),
        };
        self.syncer
            .send(request)
            .map_err(|_| StorageError::Io { file: file.to_owned(), detail: "the syncer thread stopped".into() })?;
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn keeps_the_storage_contract() {
        let mut n = 0;
        natrix_core::storage::contract::check_all(|| {
            n += 1;
            let root = std::env::temp_dir().join(format!("natrix-files-contract-{n}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            FileStorage::open(root, Arc::new(|| {})).unwrap()
        });
    }

    #[test]
    fn syncs_complete_in_the_background_in_order() {
        let root = std::env::temp_dir().join(format!("natrix-files-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let wakes = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&wakes);
        let mut s = FileStorage::open(&root, Arc::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
        assert_eq!(s.append("a.blk", b"hello").unwrap(), 0);
        assert_eq!(s.append("a.blk", b" world").unwrap(), 5);
        assert_eq!(&s.read("a.blk", 6, 5).unwrap()[..], b"world");
        assert!(matches!(s.read("a.blk", 6, 50), Err(StorageError::OutOfRange { .. })));
        let t1 = s.sync("a.blk").unwrap();
        s.append("b.blk", b"x").unwrap();
        let t2 = s.sync("b.blk").unwrap();
        assert!(t2 > t1);
        let completions = s.completions();
        for _ in 0..500 {
            if completions.lock().unwrap().contains(&t2) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert_eq!(completions.lock().unwrap().iter().max(), Some(&t2));
        assert!(wakes.load(Ordering::SeqCst) >= 1);
        s.truncate("a.blk", 5).unwrap();
        assert_eq!(s.len("a.blk").unwrap(), 5);
        assert_eq!(s.list(), ["a.blk", "b.blk"]);
        s.remove("a.blk").unwrap();
        assert!(matches!(s.read("a.blk", 0, 1), Err(StorageError::NotFound { .. })));
        assert!(matches!(s.append("../x", b"x"), Err(StorageError::InvalidName { .. })));
        fs::remove_dir_all(root).unwrap();
    }
}
