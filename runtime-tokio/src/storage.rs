//! The core's [`Storage`] on real files (JetStream's store directory, the
//! resolver's JWT directory): one directory, a file descriptor per open
//! handle, and fsyncs run by threads of their own.
//!
//! A publish is acknowledged only once the fsync covering it completed, so
//! fsync sits on the acknowledgement path of the streams written, and must
//! sit on no other: `sync` returns a token at once and queues the fsync.
//! A few syncer threads serve the queue, each taking one file at a time
//! with every request for it queued so far: one fsync covers every write
//! made before it (group commit). A file is never taken by two threads at
//! once, so its syncs complete in the order asked for, while a slow fsync
//! of one file holds back no other file's, as the [`Storage`] contract
//! allows. A request for a name created or renamed since a directory fsync
//! last covered it fsyncs the directory too, and so does
//! [`Storage::sync_dir`]: one directory fsync covers every change made
//! before it. Every token is then reported complete and the driver is
//! woken, which hands the tokens to the core.
//!
//! Renames and removals reach the disk in the order they were made, as
//! the contract says, on the journaling file systems natrix runs on
//! (ext4, XFS, btrfs): their directory changes commit in order.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use bytes::Bytes;
use natrix_core::storage::{plain_name, FileId, OpenFiles, Storage, StorageError, SyncToken};

/// Completed sync tokens, waiting for the driver to hand them to the core.
pub type Completions = Arc<Mutex<Vec<SyncToken>>>;

/// Tells the driver that syncs completed.
pub type SyncWaker = Arc<dyn Fn() + Send + Sync>;

/// Told why an fsync failed. It should stop the process: after a failed
/// fsync the kernel may have dropped the writes it covered while keeping
/// their pages readable, so no acknowledgement that depends on them, or
/// on any later sync of the file, can be trusted. A restart recovers from
/// what the disk really holds. Should it return, the failed sync's tokens
/// never complete and the thread stops.
pub type SyncFailed = Arc<dyn Fn(String) + Send + Sync>;

/// What the syncer threads tell.
struct Events {
    wake: SyncWaker,
    failed: SyncFailed,
}

/// Threads fsyncing at once: enough that a slow file does not hold back
/// the others, few enough to stay out of the way of connection threads.
const SYNC_THREADS: usize = 4;

/// Directory changes remembered before the first pruning of those already
/// durable.
const DIR_CHANGES_KEPT: usize = 64;

/// The directory's own name in the sync queue: no file can have it.
const DIR: &str = ".";

/// An open file and its length as written so far.
#[derive(Debug)]
struct Open {
    file: Arc<File>,
    len: u64,
}

/// The syncs asked for one file and not yet taken by a syncer thread.
#[derive(Debug)]
struct FileSyncs {
    name: String,
    /// The file (`None` for the directory itself).
    file: Option<Arc<File>>,
    /// The directory must be fsynced too, to cover the change with this
    /// number (the name was created or removed).
    dir: Option<u64>,
    tokens: Vec<SyncToken>,
}

/// The requests waiting for a syncer thread, oldest first, and the files
/// being synced now. Pure bookkeeping, so the ordering rule is tested
/// without threads: a file is taken by one thread at a time, with every
/// request for it made before it was taken.
#[derive(Debug, Default)]
struct SyncQueue {
    queued: VecDeque<FileSyncs>,
    busy: HashSet<String>,
    stopped: bool,
}

impl SyncQueue {
    /// Queues a request, joining the one already queued for the same
    /// file (not merely the same name: a file that replaced another under
    /// it needs a request of its own). True when it made work an idle
    /// thread can take at once: not when it joined a queued request (a
    /// thread was told of that one), nor when its name is being synced or
    /// already queued (the thread on it takes the request when done);
    /// waking a thread for those only costs switches.
    fn push(&mut self, name: &str, file: Option<Arc<File>>, dir: Option<u64>, token: SyncToken) -> bool {
        let same = |q: &FileSyncs| match (&q.file, &file) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        if let Some(q) = self.queued.iter_mut().find(|q| q.name == name && same(q)) {
            q.dir = q.dir.max(dir);
            q.tokens.push(token);
            return false;
        }
        let waiting = self.busy.contains(name) || self.queued.iter().any(|q| q.name == name);
        self.queued.push_back(FileSyncs { name: name.to_owned(), file, dir, tokens: vec![token] });
        !waiting
    }

    /// The oldest queued file no thread is syncing, now marked busy.
    fn take(&mut self) -> Option<FileSyncs> {
        let at = self.queued.iter().position(|q| !self.busy.contains(&q.name))?;
        let job = self.queued.remove(at)?;
        self.busy.insert(job.name.clone());
        Some(job)
    }

    /// A thread finished syncing `name`.
    fn finish(&mut self, name: &str) {
        self.busy.remove(name);
    }
}

/// The queue shared by [`FileStorage`] and its syncer threads.
#[derive(Default)]
struct Shared {
    queue: Mutex<SyncQueue>,
    /// Signalled when a request is queued, a file is finished, or the
    /// storage is dropped.
    changed: Condvar,
    /// Every directory change numbered up to this one is durable: a
    /// directory fsync started after it completed.
    dir_synced_through: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, SyncQueue> {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A directory of files behind the core's [`Storage`] trait, with syncs
/// done in the background (see the [module](self) documentation).
pub struct FileStorage {
    dir: PathBuf,
    files: OpenFiles<Open>,
    next_token: u64,
    /// Names created or removed, with the number of that change, until a
    /// directory fsync covers it: a directory entry is durable only then.
    dir_changed: HashMap<String, u64>,
    /// Directory changes numbered so far.
    dir_changes: u64,
    /// `dir_changed` is pruned when it grows to this many names.
    dir_prune_at: usize,
    shared: Arc<Shared>,
    completions: Completions,
}

impl std::fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStorage").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl Drop for FileStorage {
    fn drop(&mut self) {
        // The threads finish what is queued, then stop.
        self.shared.lock().stopped = true;
        self.shared.changed.notify_all();
    }
}

impl FileStorage {
    /// Opens `dir`, creating it if missing, and starts its syncer threads,
    /// which call `wake` after each batch of completed syncs and `failed`
    /// when an fsync fails (see [`SyncFailed`]).
    ///
    /// The directory is fsynced first: names a previous process created
    /// or removed may not be durable yet, and the contract's "a sync
    /// covers the file's name" must hold for them too.
    pub fn open(dir: impl Into<PathBuf>, wake: SyncWaker, failed: SyncFailed) -> std::io::Result<FileStorage> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        let dir_handle = Arc::new(File::open(&dir)?);
        dir_handle.sync_all()?;
        let completions: Completions = Arc::default();
        let shared = Arc::new(Shared::default());
        let events = Arc::new(Events { wake, failed });
        for i in 0..SYNC_THREADS {
            let (s, dir_handle, done, events) =
                (Arc::clone(&shared), Arc::clone(&dir_handle), Arc::clone(&completions), Arc::clone(&events));
            let spawned = std::thread::Builder::new()
                .name(format!("natrix-sync-{i}"))
                .spawn(move || run_syncer(&s, &dir_handle, &done, &events));
            if let Err(e) = spawned {
                // The threads already started stop.
                shared.lock().stopped = true;
                shared.changed.notify_all();
                return Err(e);
            }
        }
        Ok(FileStorage {
            dir,
            files: OpenFiles::default(),
            next_token: 1,
            dir_changed: HashMap::new(),
            dir_changes: 0,
            dir_prune_at: DIR_CHANGES_KEPT,
            shared,
            completions,
        })
    }

    /// The queue of completed syncs, for the driver.
    pub fn completions(&self) -> Completions {
        Arc::clone(&self.completions)
    }

    fn path(&self, name: &str) -> Result<PathBuf, StorageError> {
        plain_name(name)?;
        Ok(self.dir.join(name))
    }

    fn token(&mut self) -> SyncToken {
        let token = SyncToken(self.next_token);
        self.next_token += 1;
        token
    }

    /// Queues a sync request and wakes a thread if one can take it now.
    fn queue(&self, name: &str, file: Option<Arc<File>>, dir: Option<u64>, token: SyncToken) {
        if self.shared.lock().push(name, file, dir, token) {
            self.shared.changed.notify_one();
        }
    }

    /// `name` was created, renamed or removed: its next sync fsyncs the directory,
    /// unless a directory fsync covers the change first.
    fn note_dir_change(&mut self, name: &str) {
        self.dir_changes += 1;
        self.dir_changed.insert(name.to_owned(), self.dir_changes);
        if self.dir_changed.len() >= self.dir_prune_at {
            // Names removed and never synced again (superseded files) are
            // forgotten once a directory fsync covered them; pruning again
            // only after the map doubled keeps it linear overall.
            let through = self.shared.dir_synced_through.load(Ordering::Acquire);
            self.dir_changed.retain(|_, &mut change| change > through);
            self.dir_prune_at = (self.dir_changed.len() * 2).max(DIR_CHANGES_KEPT);
        }
    }
}

/// One syncer thread: takes a file at a time until the storage is dropped
/// and nothing is left.
fn run_syncer(shared: &Shared, dir: &File, done: &Completions, events: &Events) {
    loop {
        let mut queue = shared.lock();
        let job = loop {
            if let Some(job) = queue.take() {
                break job;
            }
            if queue.stopped && queue.queued.is_empty() {
                return;
            }
            queue = shared.changed.wait(queue).unwrap_or_else(std::sync::PoisonError::into_inner);
        };
        drop(queue);
        if let Some(Err(e)) = job.file.as_ref().map(|file| file.sync_data()) {
            return (events.failed)(format!("fsync of {} failed: {e}", job.name));
        }
        if let Some(change) = job.dir.filter(|&change| change > shared.dir_synced_through.load(Ordering::Acquire)) {
            if let Err(e) = dir.sync_all() {
                return (events.failed)(format!("fsync of the store directory failed (for {}): {e}", job.name));
            }
            shared.dir_synced_through.fetch_max(change, Ordering::AcqRel);
        }
        match done.lock() {
            Ok(mut q) => q.extend_from_slice(&job.tokens),
            Err(poisoned) => poisoned.into_inner().extend_from_slice(&job.tokens),
        }
        (events.wake)();
        // A request for this file queued meanwhile is this thread's to
        // take next (see `SyncQueue::push`).
        shared.lock().finish(&job.name);
    }
}

/// The plain files in `dir`, sorted; an error when the directory or one
/// of its entries cannot be read. Names that are not UTF-8 are not ones
/// natrix writes, and are left out.
fn list_files(dir: &Path) -> Result<Vec<String>, StorageError> {
    let failed = |e: &std::io::Error| error(&dir.to_string_lossy(), e);
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| failed(&e))? {
        let entry = entry.map_err(|e| failed(&e))?;
        if entry.file_type().map_err(|e| failed(&e))?.is_file() {
            names.extend(entry.file_name().into_string().ok());
        }
    }
    names.sort();
    Ok(names)
}

fn error(name: &str, e: &std::io::Error) -> StorageError {
    let file = name.to_owned();
    match e.kind() {
        ErrorKind::NotFound => StorageError::NotFound { file },
        ErrorKind::StorageFull => StorageError::NoSpace { file },
        _ => StorageError::Io { file, detail: e.to_string() },
    }
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

impl Storage for FileStorage {
    fn open(&mut self, file: &str, create: bool) -> Result<FileId, StorageError> {
        if let Some(id) = self.files.reopen(file) {
            return Ok(id);
        }
        let path = self.path(file)?;
        let existed = exists(&path);
        if !existed && !create {
            return Err(StorageError::NotFound { file: file.to_owned() });
        }
        let f = OpenOptions::new().create(create).read(true).append(true).open(&path).map_err(|e| error(file, &e))?;
        let len = f.metadata().map_err(|e| error(file, &e))?.len();
        if !existed {
            self.note_dir_change(file);
        }
        self.files.open(file, || Ok(Open { file: Arc::new(f), len }))
    }

    fn close(&mut self, file: FileId) {
        self.files.close(file);
    }

    fn append(&mut self, file: FileId, data: &[u8]) -> Result<u64, StorageError> {
        let (name, open) = self.files.get_mut(file)?;
        let offset = open.len;
        let mut f: &File = &open.file;
        if let Err(e) = f.write_all(data) {
            // Leave no partial write behind a failure, as the contract promises.
            let _ = open.file.set_len(offset);
            return Err(error(name, &e));
        }
        open.len += data.len() as u64;
        Ok(offset)
    }

    fn read(&mut self, file: FileId, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        let (name, open) = self.files.get(file)?;
        if offset.saturating_add(len as u64) > open.len {
            return Err(StorageError::OutOfRange { file: name.to_owned(), offset, len: len as u64, file_len: open.len });
        }
        let mut buf = vec![0; len];
        open.file.read_exact_at(&mut buf, offset).map_err(|e| error(name, &e))?;
        Ok(Bytes::from(buf))
    }

    fn truncate(&mut self, file: FileId, len: u64) -> Result<(), StorageError> {
        let (name, open) = self.files.get_mut(file)?;
        if len > open.len {
            return Err(StorageError::OutOfRange { file: name.to_owned(), offset: len, len: 0, file_len: open.len });
        }
        open.file.set_len(len).map_err(|e| error(name, &e))?;
        open.len = len;
        Ok(())
    }

    fn len(&self, file: FileId) -> Result<u64, StorageError> {
        Ok(self.files.get(file)?.1.len)
    }

    fn sync(&mut self, file: FileId) -> Result<SyncToken, StorageError> {
        let (name, open) = self.files.get(file)?;
        let (name, handle) = (name.to_owned(), Arc::clone(&open.file));
        let token = self.token();
        let through = self.shared.dir_synced_through.load(Ordering::Acquire);
        let dir = self.dir_changed.remove(&name).filter(|&change| change > through);
        self.queue(&name, Some(handle), dir, token);
        Ok(token)
    }

    fn remove(&mut self, file: &str) -> Result<(), StorageError> {
        let path = self.path(file)?;
        let removed = fs::remove_file(&path);
        if removed.is_ok() || !exists(&path) {
            // Gone, whoever removed it: no handle may reach it again.
            self.files.release(file);
        }
        removed.map_err(|e| error(file, &e))?;
        self.note_dir_change(file);
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), StorageError> {
        let (source, target) = (self.path(from)?, self.path(to)?);
        fs::rename(source, target).map_err(|e| error(from, &e))?;
        if from != to {
            self.files.rename(from, to);
            self.note_dir_change(from);
            self.note_dir_change(to);
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>, StorageError> {
        list_files(&self.dir)
    }

    fn sync_dir(&mut self) -> Result<SyncToken, StorageError> {
        let token = self.token();
        let through = self.shared.dir_synced_through.load(Ordering::Acquire);
        let dir = Some(self.dir_changes).filter(|&change| change > through);
        self.queue(DIR, None, dir, token);
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
            FileStorage::open(root, Arc::new(|| {}), panics()).unwrap()
        });
    }

    fn panics() -> SyncFailed {
        Arc::new(|why| panic!("{why}"))
    }

    fn token(n: u64) -> SyncToken {
        SyncToken(n)
    }

    #[test]
    fn a_file_is_synced_by_one_thread_at_a_time_with_every_request_made_before() {
        let mut q = SyncQueue::default();
        assert!(q.push("a", None, None, token(1)), "new work wakes a thread");
        assert!(q.push("b", None, Some(3), token(2)));
        assert!(!q.push("a", None, Some(1), token(3)), "joined a queued request");
        let a = q.take().expect("a is queued");
        assert_eq!((a.name.as_str(), a.dir, &a.tokens[..]), ("a", Some(1), &[token(1), token(3)][..]));
        // Asked for again while a thread syncs it: queued, and not taken
        // until that thread is done (its fsync may have started before
        // this request's write).
        assert!(!q.push("a", None, None, token(4)), "the thread syncing a takes it");
        let b = q.take().expect("b is free");
        assert_eq!(b.tokens, [token(2)]);
        assert!(q.take().is_none(), "a is busy, b is busy");
        q.finish("a");
        let again = q.take().expect("a is free again");
        assert_eq!(again.tokens, [token(4)]);
        q.finish("b");
        q.finish("a");
        assert!(q.take().is_none());
    }

    #[test]
    fn a_file_that_took_a_queued_files_name_is_synced_on_its_own() {
        let root = std::env::temp_dir().join(format!("natrix-files-replaced-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let old = Arc::new(File::create(root.join("old")).unwrap());
        let new = Arc::new(File::create(root.join("new")).unwrap());
        let mut q = SyncQueue::default();
        assert!(q.push("f", Some(Arc::clone(&old)), None, token(1)));
        assert!(!q.push("f", Some(Arc::clone(&new)), None, token(2)), "queued behind the old file's request");
        assert!(!q.push("f", Some(Arc::clone(&old)), None, token(3)), "joined the old file's request");
        let first = q.take().expect("the old file's request");
        assert!(first.file.as_ref().is_some_and(|f| Arc::ptr_eq(f, &old)));
        assert_eq!(first.tokens, [token(1), token(3)]);
        assert!(q.take().is_none(), "one thread per name at a time");
        q.finish("f");
        let second = q.take().expect("the new file's request");
        assert!(second.file.as_ref().is_some_and(|f| Arc::ptr_eq(f, &new)));
        assert_eq!(second.tokens, [token(2)]);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn each_files_syncs_complete_in_order_across_threads() {
        let root = std::env::temp_dir().join(format!("natrix-files-order-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let mut s = FileStorage::open(&root, Arc::new(|| {}), panics()).unwrap();
        let mut asked: Vec<(usize, SyncToken)> = Vec::new();
        let files: Vec<FileId> = (0..6).map(|f| s.open(&format!("f{f}"), true).unwrap()).collect();
        for round in 0..50 {
            for (f, &file) in files.iter().enumerate() {
                s.append(file, format!("{round}").as_bytes()).unwrap();
                asked.push((f, s.sync(file).unwrap()));
            }
        }
        let completions = s.completions();
        for _ in 0..2_000 {
            if completions.lock().unwrap().len() == asked.len() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let done = completions.lock().unwrap().clone();
        assert_eq!(done.len(), asked.len(), "every token is reported once");
        for f in 0..6 {
            let mine: Vec<SyncToken> = asked.iter().filter(|(g, _)| *g == f).map(|(_, t)| *t).collect();
            let reported: Vec<SyncToken> = done.iter().copied().filter(|t| mine.contains(t)).collect();
            assert_eq!(reported, mine, "file f{f}'s syncs complete in the order asked");
        }
        drop(s);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn syncs_complete_in_the_background() {
        let root = std::env::temp_dir().join(format!("natrix-files-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let wakes = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&wakes);
        let mut s = FileStorage::open(
            &root,
            Arc::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            }),
            panics(),
        )
        .unwrap();
        let a = s.open("a.blk", true).unwrap();
        assert_eq!(s.append(a, b"hello").unwrap(), 0);
        assert_eq!(s.append(a, b" world").unwrap(), 5);
        assert_eq!(&s.read(a, 6, 5).unwrap()[..], b"world");
        assert!(matches!(s.read(a, 6, 50), Err(StorageError::OutOfRange { .. })));
        let t1 = s.sync(a).unwrap();
        let b = s.open("b.blk", true).unwrap();
        s.append(b, b"x").unwrap();
        s.rename("b.blk", "c.blk").unwrap();
        let t2 = s.sync(b).unwrap();
        s.remove("a.blk").unwrap();
        let t3 = s.sync_dir().unwrap();
        assert!(t1 < t2 && t2 < t3);
        let completions = s.completions();
        for _ in 0..500 {
            if completions.lock().unwrap().len() == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let mut done = completions.lock().unwrap().clone();
        done.sort();
        assert_eq!(done, [t1, t2, t3]);
        assert!(wakes.load(Ordering::SeqCst) >= 1);
        assert_eq!(s.list().unwrap(), ["c.blk"]);
        assert_eq!(fs::read(root.join("c.blk")).unwrap(), b"x", "the file under its new name");
        assert!(matches!(s.read(a, 0, 1), Err(StorageError::StaleHandle { .. })));
        fs::remove_dir_all(root).unwrap();
    }
}
