//! A simulated disk implementing the core's [`Storage`] trait.
//!
//! Files live in memory twice over: the *volatile* view (what reads see) and
//! the *durable* view (what survives a crash). A sync request snapshots the
//! file as it is at request time and becomes durable only when its completion
//! time passes in virtual time ([`SimDisk::complete_due`]). Each sync takes a
//! latency of its own: one file's syncs complete in the order they were
//! asked for, different files' in any order, as the contract allows. A power loss
//! ([`SimDisk::crash`]) keeps the durable view plus, at random, a prefix of
//! the unsynced tail: that is both "later writes may be partly present" and
//! "the last write may be torn". Creations, removals and renames are kept
//! in the order they were made until a completed sync covers them (a sync
//! of a file whose name is new, or of the directory); a power loss keeps a
//! random prefix of those not covered, as a journaling file system does,
//! each rename whole. A file's durable content belongs to the file, not
//! its name: a sync asked for before a rename makes the content durable
//! under whichever name the file durably has. A kill -9 of the node's process
//! ([`SimDisk::kill`]) keeps everything written, as the page cache does,
//! except that the append in progress may be torn if no completed sync
//! covers it. Reads may flip a bit, the medium may damage a stored bit
//! ([`SimDisk::flip_stored_bit`]), appends may hit a full disk, any
//! operation may fail with an I/O error, all seeded.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use natrix_core::storage::{plain_name, FileId, NameLog, OpenFiles, Storage, StorageError, SyncToken};
use natrix_core::Instant;

use crate::rng::SimRng;

/// The disk's fault and timing settings.
#[derive(Clone, Debug)]
pub struct DiskConfig {
    /// Bytes the disk holds (sum of file lengths).
    pub capacity_bytes: u64,
    /// Shortest time from a sync request to its completion.
    pub sync_latency_min: Duration,
    /// Longest time from a sync request to its completion.
    pub sync_latency_max: Duration,
    /// Chance, per million reads, that one bit of the returned data is flipped.
    pub bitflip_per_million_reads: u64,
    /// Chance, per million operations, of an I/O error.
    pub io_error_per_million_ops: u64,
    /// A broken disk (checker self-tests only): syncs report completion
    /// without making anything durable.
    pub lie_about_syncs: bool,
}

impl Default for DiskConfig {
    fn default() -> Self {
        DiskConfig {
            capacity_bytes: 1 << 30,
            sync_latency_min: Duration::from_micros(100),
            sync_latency_max: Duration::from_millis(10),
            bitflip_per_million_reads: 0,
            io_error_per_million_ops: 0,
            lie_about_syncs: false,
        }
    }
}

/// One file's content. `epoch` changes whenever the content stops being
/// an extension of what it was (truncate, re-creation), so a sync can tell
/// whether the bytes it covers are still in place; `ino` names the file
/// itself, whatever its name, from its creation on. In the durable view,
/// `synced_by` is the newest sync whose content it holds: an older one
/// completing later (asked under the file's old name) changes nothing.
#[derive(Clone, Debug)]
struct File {
    data: Vec<u8>,
    epoch: u64,
    ino: u64,
    synced_by: u64,
}

/// What a pending sync will make durable.
#[derive(Clone, Debug)]
enum SyncState {
    /// The first `len` bytes of the file, still unchanged in the volatile
    /// view as long as its epoch is `epoch`.
    Live { epoch: u64, len: usize },
    /// The file's content at request time, copied because the volatile
    /// view diverged before completion.
    Snapshot(File),
    /// The directory: nothing but the name changes it covers.
    Dir,
}

#[derive(Clone, Debug)]
struct PendingSync {
    token: SyncToken,
    /// The name the sync was asked under (the directory's is `"."`): a
    /// name's syncs complete in order.
    file: String,
    /// The name changes it makes durable, up to this one.
    names_through: Option<u64>,
    due: Instant,
    state: SyncState,
}

/// Counters, for reports and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Syncs completed.
    pub syncs_completed: u64,
    /// Crashes suffered.
    pub crashes: u64,
    /// Unsynced bytes lost to crashes.
    pub bytes_lost: u64,
    /// Bits flipped on read.
    pub bitflips: u64,
    /// Appends refused for lack of space.
    pub no_space: u64,
    /// I/O errors injected.
    pub io_errors: u64,
}

/// The simulated disk of one node. It survives the node's crashes.
#[derive(Debug)]
pub struct SimDisk {
    config: DiskConfig,
    rng: SimRng,
    now: Instant,
    files: BTreeMap<String, File>,
    /// What a crash keeps: the durable namespace, and each file's durable
    /// content.
    durable: BTreeMap<String, File>,
    names: NameLog<File>,
    pending: VecDeque<PendingSync>,
    open: OpenFiles<()>,
    next_token: u64,
    next_epoch: u64,
    used_bytes: u64,
    stats: DiskStats,
    /// The last append: (file, epoch, start, end), for a kill to tear.
    last_append: Option<(String, u64, usize, usize)>,
}

impl SimDisk {
    /// An empty disk.
    pub fn new(config: DiskConfig, rng: SimRng) -> Self {
        SimDisk {
            config,
            rng,
            now: Instant::ZERO,
            files: BTreeMap::new(),
            durable: BTreeMap::new(),
            names: NameLog::default(),
            pending: VecDeque::new(),
            open: OpenFiles::default(),
            next_token: 1,
            next_epoch: 1,
            used_bytes: 0,
            stats: DiskStats::default(),
            last_append: None,
        }
    }

    /// The node's process was killed (kill -9), the machine kept running:
    /// everything written is in the page cache and stays, and the syncs
    /// requested complete in the background (their completions reach no
    /// one). Only an append the process was in the middle of may be torn
    /// (a prefix of it kept), and only while no completed sync covers it.
    pub fn kill(&mut self) {
        self.stats.crashes += 1;
        self.open.release_all();
        while let Some(p) = self.pending.pop_front() {
            self.make_durable(p);
        }
        let Some((name, epoch, start, end)) = self.last_append.take() else {
            return;
        };
        if !self.rng.ratio(1, 4) {
            return;
        }
        let Some(ino) = self.files.get(&name).map(|f| f.ino) else {
            return;
        };
        // The file's durable content, under whichever name it durably has.
        let durable_len = self
            .durable
            .values()
            .find(|d| d.ino == ino && d.epoch == epoch)
            .map_or(0, |d| d.data.len());
        let f = self.files.get_mut(&name).expect("found above");
        if f.epoch != epoch || f.data.len() != end || durable_len >= end {
            return;
        }
        let keep =
            start.max(durable_len) + self.rng.below((end - start.max(durable_len)) as u64) as usize;
        self.used_bytes -= (end - keep) as u64;
        self.stats.bytes_lost += (end - keep) as u64;
        f.data.truncate(keep);
        let fresh = self.fresh_epoch();
        // The durable prefix is unchanged, so the file still extends it.
        if let Some(d) = self.durable.values_mut().find(|d| d.ino == ino && d.epoch == epoch) {
            d.epoch = fresh;
        }
        if let Some(f) = self.files.get_mut(&name) {
            f.epoch = fresh;
        }
    }

    /// The medium damaged one stored bit of `file` (volatile and durable
    /// copies alike): what every later read of it returns. False when the
    /// file is absent or `bit` lies past its end.
    pub fn flip_stored_bit(&mut self, file: &str, bit: u64) -> bool {
        let Some(f) = self.files.get_mut(file) else {
            return false;
        };
        let byte = (bit / 8) as usize;
        if byte >= f.data.len() {
            return false;
        }
        f.data[byte] ^= 1 << (bit % 8);
        let (epoch, ino) = (f.epoch, f.ino);
        // The durable copy, under whichever name the file durably has.
        if let Some(d) = self.durable.values_mut().find(|d| d.ino == ino && d.epoch == epoch) {
            if byte < d.data.len() {
                d.data[byte] ^= 1 << (bit % 8);
            }
        }
        for p in self.pending.iter_mut().filter(|p| p.file == file) {
            if let SyncState::Snapshot(snap) = &mut p.state {
                if byte < snap.data.len() {
                    snap.data[byte] ^= 1 << (bit % 8);
                }
            }
        }
        self.stats.bitflips += 1;
        true
    }

    /// Every file with its current length.
    pub fn file_lengths(&self) -> Vec<(String, u64)> {
        self.files
            .iter()
            .map(|(n, f)| (n.clone(), f.data.len() as u64))
            .collect()
    }

    /// Tells the disk the virtual time, before the node runs.
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    /// Changes the capacity (an out-of-space fault shrinks it to the bytes in use).
    pub fn set_capacity(&mut self, capacity_bytes: u64) {
        self.config.capacity_bytes = capacity_bytes;
    }

    /// Bytes in use.
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    /// The counters.
    pub fn stats(&self) -> &DiskStats {
        &self.stats
    }

    /// When the next pending sync completes.
    pub fn next_sync_due(&self) -> Option<Instant> {
        self.pending.front().map(|p| p.due)
    }

    /// Completes every sync due by `now`, in the order they come due (a
    /// file's in the order asked for); returns their tokens for the runtime
    /// to report to the node.
    pub fn complete_due(&mut self, now: Instant) -> Vec<SyncToken> {
        let mut done = Vec::new();
        while self.pending.front().is_some_and(|p| p.due <= now) {
            let Some(p) = self.pending.pop_front() else {
                break;
            };
            let token = p.token;
            if !self.config.lie_about_syncs {
                self.make_durable(p);
            }
            self.stats.syncs_completed += 1;
            done.push(token);
        }
        done
    }

    fn make_durable(&mut self, p: PendingSync) {
        if let Some(through) = p.names_through {
            self.names.cover(through, &mut self.durable);
        }
        let (epoch, len, ino, snapshot) = match p.state {
            SyncState::Dir => return,
            SyncState::Snapshot(file) => (file.epoch, file.data.len(), file.ino, Some(file)),
            SyncState::Live { epoch, len } => {
                let file = self.files.get(&p.file).expect("a live sync's file exists");
                debug_assert_eq!(file.epoch, epoch);
                (epoch, len, file.ino, None)
            }
        };
        // The content goes to the file, under whichever name it durably
        // has; a file durably gone (or never durably created) keeps nothing.
        let Some(name) = self.durable.iter().find(|(_, d)| d.ino == ino).map(|(n, _)| n.clone()) else {
            return;
        };
        let src: &[u8] = match &snapshot {
            Some(file) => &file.data,
            None => &self.files[&p.file].data[..len],
        };
        let durable = self.durable.get_mut(&name).expect("found above");
        if durable.synced_by > p.token.0 {
            return;
        }
        if durable.epoch == epoch && durable.data.len() <= len {
            let from = durable.data.len();
            durable.data.extend_from_slice(&src[from..]);
        } else {
            *durable = File { data: src.to_vec(), epoch, ino, synced_by: 0 };
        }
        durable.synced_by = p.token.0;
    }

    /// The node crashed: pending syncs are forgotten, a random prefix of
    /// the name changes not covered survives, and every file reverts to
    /// its durable content plus a random prefix of its unsynced tail.
    pub fn crash(&mut self) {
        self.stats.crashes += 1;
        self.pending.clear();
        self.last_append = None;
        self.open.release_all();
        let kept = self.rng.below(self.names.uncovered() as u64 + 1) as usize;
        self.names.crash(kept, &mut self.durable);
        let names: Vec<String> = self.durable.keys().cloned().collect();
        let mut survivors = BTreeMap::new();
        for name in names {
            let file = self.surviving(&name);
            survivors.insert(name, file);
        }
        let before = self.used_bytes;
        self.used_bytes = survivors.values().map(|f| f.data.len() as u64).sum();
        self.stats.bytes_lost += before.saturating_sub(self.used_bytes);
        self.files = survivors;
    }

    /// What a crash leaves of the file durably named `name`: its durable
    /// content and, maybe, part of what was written after it.
    fn surviving(&mut self, name: &str) -> File {
        let durable = self.durable[name].clone();
        let vol = self.files.values().find(|f| f.ino == durable.ino);
        let Some(vol) = vol.filter(|v| v.epoch == durable.epoch && v.data.starts_with(&durable.data)) else {
            return durable;
        };
        let base = durable.data.len();
        let extra = vol.data.len() - base;
        let kept = if self.rng.ratio(1, 2) { 0 } else { self.rng.range(0, extra as u64) as usize };
        File { data: vol.data[..base + kept].to_vec(), ..durable }
    }

    fn inject_io_error(&mut self, file: &str) -> Result<(), StorageError> {
        if self.config.io_error_per_million_ops > 0
            && self
                .rng
                .ratio(self.config.io_error_per_million_ops, 1_000_000)
        {
            self.stats.io_errors += 1;
            return Err(StorageError::Io {
                file: file.to_owned(),
                detail: "simulated I/O error".into(),
            });
        }
        Ok(())
    }

    /// Before the volatile view of `name` stops extending its current
    /// content, pending syncs that still point at it take a copy.
    fn freeze_pending(&mut self, name: &str) {
        let Some(current) = self.files.get(name) else { return };
        for p in self.pending.iter_mut().filter(|p| p.file == name) {
            if let SyncState::Live { len, .. } = p.state {
                let data = current.data[..len].to_vec();
                p.state = SyncState::Snapshot(File { data, epoch: current.epoch, ino: current.ino, synced_by: 0 });
            }
        }
    }

    fn not_found(file: &str) -> StorageError {
        StorageError::NotFound {
            file: file.to_owned(),
        }
    }

    fn fresh_epoch(&mut self) -> u64 {
        self.next_epoch += 1;
        self.next_epoch
    }

    /// Creates `file`, empty, unless it exists.
    fn create_named(&mut self, file: &str) {
        if self.files.contains_key(file) {
            return;
        }
        let epoch = self.fresh_epoch();
        let ino = self.fresh_epoch();
        let created = File { data: Vec::new(), epoch, ino, synced_by: 0 };
        self.files.insert(file.to_owned(), created.clone());
        self.names.create(file, created);
    }

    fn name(&self, id: FileId) -> Result<String, StorageError> {
        self.open.get(id).map(|(name, ())| name.to_owned())
    }

    /// Appends to `file`, creating it if absent.
    fn append_named(&mut self, file: &str, data: &[u8]) -> Result<u64, StorageError> {
        plain_name(file)?;
        self.inject_io_error(file)?;
        if self.used_bytes + data.len() as u64 > self.config.capacity_bytes {
            self.stats.no_space += 1;
            return Err(StorageError::NoSpace {
                file: file.to_owned(),
            });
        }
        self.create_named(file);
        let f = self.files.get_mut(file).expect("just ensured");
        let offset = f.data.len() as u64;
        f.data.extend_from_slice(data);
        self.last_append = Some((file.to_owned(), f.epoch, offset as usize, f.data.len()));
        self.used_bytes += data.len() as u64;
        Ok(offset)
    }

    fn read_named(&mut self, file: &str, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        self.inject_io_error(file)?;
        let f = self.files.get(file).ok_or_else(|| Self::not_found(file))?;
        let file_len = f.data.len() as u64;
        let end = offset.checked_add(len as u64).filter(|&e| e <= file_len);
        let Some(end) = end else {
            return Err(StorageError::OutOfRange {
                file: file.to_owned(),
                offset,
                len: len as u64,
                file_len,
            });
        };
        let mut out = f.data[offset as usize..end as usize].to_vec();
        let flip = self.config.bitflip_per_million_reads;
        if !out.is_empty() && flip > 0 && self.rng.ratio(flip, 1_000_000) {
            let bit = self.rng.below(out.len() as u64 * 8);
            out[(bit / 8) as usize] ^= 1 << (bit % 8);
            self.stats.bitflips += 1;
        }
        Ok(Bytes::from(out))
    }

    fn truncate_named(&mut self, file: &str, len: u64) -> Result<(), StorageError> {
        self.inject_io_error(file)?;
        let file_len = self
            .files
            .get(file)
            .ok_or_else(|| Self::not_found(file))?
            .data
            .len() as u64;
        if len > file_len {
            return Err(StorageError::OutOfRange {
                file: file.to_owned(),
                offset: len,
                len: 0,
                file_len,
            });
        }
        if len == file_len {
            return Ok(());
        }
        self.freeze_pending(file);
        let epoch = self.fresh_epoch();
        let f = self.files.get_mut(file).expect("checked above");
        f.data.truncate(len as usize);
        f.epoch = epoch;
        self.used_bytes -= file_len - len;
        Ok(())
    }

    fn len_named(&self, file: &str) -> Result<u64, StorageError> {
        self.files
            .get(file)
            .map(|f| f.data.len() as u64)
            .ok_or_else(|| Self::not_found(file))
    }

    /// Asks for a sync of `file` (the directory when `"."`).
    fn sync_named(&mut self, file: &str) -> Result<SyncToken, StorageError> {
        self.inject_io_error(file)?;
        let (state, names_through) = match self.files.get(file) {
            Some(f) => {
                let state = SyncState::Live { epoch: f.epoch, len: f.data.len() };
                (state, self.names.covered_by_sync_of(file))
            }
            None if file == DIR => (SyncState::Dir, Some(self.names.newest())),
            None => return Err(Self::not_found(file)),
        };
        let token = SyncToken(self.next_token);
        self.next_token += 1;
        let latency = self
            .rng
            .duration(self.config.sync_latency_min, self.config.sync_latency_max);
        // A file's syncs complete in the order asked for; another file's
        // slow sync holds none of them back.
        let behind = self
            .pending
            .iter()
            .filter(|p| p.file == file)
            .map(|p| p.due)
            .max()
            .unwrap_or(Instant::ZERO);
        let due = (self.now + latency).max(behind);
        // Kept in completion order: by due time, then as asked.
        let at = self.pending.partition_point(|p| p.due <= due);
        self.pending.insert(
            at,
            PendingSync {
                token,
                file: file.to_owned(),
                names_through,
                due,
                state,
            },
        );
        Ok(token)
    }
}

/// The directory's name among the pending syncs: no file can have it.
const DIR: &str = ".";

impl Storage for SimDisk {
    fn open(&mut self, file: &str, create: bool) -> Result<FileId, StorageError> {
        plain_name(file)?;
        if !self.files.contains_key(file) {
            if !create {
                return Err(Self::not_found(file));
            }
            self.inject_io_error(file)?;
            self.create_named(file);
        }
        self.open.open(file, || Ok(()))
    }

    fn close(&mut self, file: FileId) {
        self.open.close(file);
    }

    fn append(&mut self, file: FileId, data: &[u8]) -> Result<u64, StorageError> {
        let name = self.name(file)?;
        self.append_named(&name, data)
    }

    fn read(&mut self, file: FileId, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        let name = self.name(file)?;
        self.read_named(&name, offset, len)
    }

    fn truncate(&mut self, file: FileId, len: u64) -> Result<(), StorageError> {
        let name = self.name(file)?;
        self.truncate_named(&name, len)
    }

    fn len(&self, file: FileId) -> Result<u64, StorageError> {
        let name = self.name(file)?;
        self.len_named(&name)
    }

    fn sync(&mut self, file: FileId) -> Result<SyncToken, StorageError> {
        let name = self.name(file)?;
        self.sync_named(&name)
    }

    fn remove(&mut self, file: &str) -> Result<(), StorageError> {
        plain_name(file)?;
        self.inject_io_error(file)?;
        if !self.files.contains_key(file) {
            return Err(Self::not_found(file));
        }
        self.freeze_pending(file);
        let f = self.files.remove(file).expect("checked above");
        self.used_bytes -= f.data.len() as u64;
        self.open.release(file);
        self.names.remove(file);
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), StorageError> {
        plain_name(from)?;
        plain_name(to)?;
        self.inject_io_error(from)?;
        if !self.files.contains_key(from) {
            return Err(Self::not_found(from));
        }
        if from == to {
            return Ok(());
        }
        // Syncs asked under either name keep what they cover (the content
        // follows its file, see `make_durable`).
        self.freeze_pending(from);
        self.freeze_pending(to);
        if let Some(replaced) = self.files.remove(to) {
            self.used_bytes -= replaced.data.len() as u64;
        }
        let moved = self.files.remove(from).expect("checked above");
        self.files.insert(to.to_owned(), moved);
        if self.last_append.as_ref().is_some_and(|(name, ..)| name == from) {
            self.last_append = None;
        }
        self.open.rename(from, to);
        self.names.rename(from, to);
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.files.keys().cloned().collect())
    }

    fn sync_dir(&mut self) -> Result<SyncToken, StorageError> {
        self.sync_named(DIR)
    }
}

/// One node's disk, shared between the simulator (which crashes it,
/// completes its syncs and damages it) and the node's server (which stores
/// JetStream on it). It outlives every incarnation of the node.
#[derive(Clone, Debug)]
pub struct SharedDisk(Arc<Mutex<SimDisk>>);

impl SharedDisk {
    /// Shares `disk`.
    pub fn new(disk: SimDisk) -> Self {
        SharedDisk(Arc::new(Mutex::new(disk)))
    }

    /// The disk itself. The simulation is single-threaded, so the lock is
    /// never contended; a poisoned one (a panic in the core while it wrote)
    /// is still the disk's true state.
    pub fn lock(&self) -> MutexGuard<'_, SimDisk> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Storage for SharedDisk {
    fn open(&mut self, file: &str, create: bool) -> Result<FileId, StorageError> {
        self.lock().open(file, create)
    }
    fn close(&mut self, file: FileId) {
        self.lock().close(file);
    }
    fn append(&mut self, file: FileId, data: &[u8]) -> Result<u64, StorageError> {
        self.lock().append(file, data)
    }
    fn read(&mut self, file: FileId, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        self.lock().read(file, offset, len)
    }
    fn truncate(&mut self, file: FileId, len: u64) -> Result<(), StorageError> {
        self.lock().truncate(file, len)
    }
    fn len(&self, file: FileId) -> Result<u64, StorageError> {
        self.lock().len(file)
    }
    fn sync(&mut self, file: FileId) -> Result<SyncToken, StorageError> {
        self.lock().sync(file)
    }
    fn remove(&mut self, file: &str) -> Result<(), StorageError> {
        self.lock().remove(file)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), StorageError> {
        self.lock().rename(from, to)
    }
    fn list(&self) -> Result<Vec<String>, StorageError> {
        self.lock().list()
    }
    fn sync_dir(&mut self) -> Result<SyncToken, StorageError> {
        self.lock().sync_dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(seed: u64) -> SimDisk {
        SimDisk::new(DiskConfig::default(), SimRng::new(seed))
    }

    fn content(d: &mut SimDisk, f: &str) -> Option<Vec<u8>> {
        let len = d.len_named(f).ok()?;
        Some(d.read_named(f, 0, len as usize).expect("read").to_vec())
    }

    fn far() -> Instant {
        Instant::from_nanos(u64::MAX / 2)
    }

    #[test]
    fn keeps_the_storage_contract() {
        let mut seed = 0;
        natrix_core::storage::contract::check_all(|| {
            seed += 1;
            disk(seed)
        });
    }

    #[test]
    fn append_read_truncate_remove_list() {
        let mut d = disk(1);
        assert_eq!(d.append_named("b", b"hello").unwrap(), 0);
        assert_eq!(d.append_named("b", b" world").unwrap(), 5);
        d.append_named("a", b"x").unwrap();
        assert_eq!(d.list().unwrap(), vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(&d.read_named("b", 6, 5).unwrap()[..], b"world");
        assert!(matches!(
            d.read_named("b", 6, 6),
            Err(StorageError::OutOfRange { file_len: 11, .. })
        ));
        d.truncate_named("b", 5).unwrap();
        assert_eq!(content(&mut d, "b").unwrap(), b"hello");
        assert!(matches!(
            d.truncate_named("b", 6),
            Err(StorageError::OutOfRange { .. })
        ));
        d.remove("a").unwrap();
        assert_eq!(
            d.remove("a"),
            Err(StorageError::NotFound { file: "a".into() })
        );
        assert_eq!(d.len_named("a"), Err(StorageError::NotFound { file: "a".into() }));
        assert_eq!(d.used_bytes(), 5);
    }

    #[test]
    fn a_files_syncs_complete_in_order_and_other_files_do_not_wait() {
        let mut d = disk(7);
        let mut overtaken = false;
        for round in 0..200u64 {
            d.set_now(Instant::from_nanos(round * 1_000_000_000));
            d.append_named("f", b"1").unwrap();
            let f1 = d.sync_named("f").unwrap();
            d.append_named("g", b"2").unwrap();
            let g = d.sync_named("g").unwrap();
            d.append_named("f", b"3").unwrap();
            let f2 = d.sync_named("f").unwrap();
            let done = d.complete_due(far());
            assert_eq!(done.len(), 3);
            let at = |t| done.iter().position(|&x| x == t).unwrap();
            assert!(at(f1) < at(f2), "a file's syncs complete in order: {done:?}");
            overtaken |= at(g) < at(f1);
        }
        assert!(overtaken, "a later sync of another file sometimes completes first");
    }

    #[test]
    fn sync_completes_later() {
        let mut d = disk(2);
        d.set_now(Instant::from_nanos(1_000));
        d.append_named("f", b"1").unwrap();
        let t1 = d.sync_named("f").unwrap();
        d.append_named("g", b"2").unwrap();
        let t2 = d.sync_named("g").unwrap();
        assert!(t1 < t2);
        let due = d.next_sync_due().unwrap();
        assert!(due > Instant::from_nanos(1_000));
        assert!(d.complete_due(Instant::from_nanos(1_000)).is_empty());
        let mut done = d.complete_due(far());
        done.sort();
        assert_eq!(done, vec![t1, t2]);
        assert_eq!(d.next_sync_due(), None);
    }

    #[test]
    fn crash_before_sync_completion_keeps_only_durable_prefix_plus_maybe_torn_tail() {
        for seed in 0..200 {
            let mut d = disk(seed);
            d.append_named("f", b"durable|").unwrap();
            d.sync_named("f").unwrap();
            d.complete_due(far());
            d.append_named("f", b"pending-sync|").unwrap();
            d.sync_named("f").unwrap(); // requested, never completed
            d.append_named("f", b"unsynced").unwrap();
            d.crash();
            let after = content(&mut d, "f").expect("a synced file survives");
            let full = b"durable|pending-sync|unsynced";
            assert!(
                after.len() >= 8 && full.starts_with(&after),
                "seed {seed}: {after:?}"
            );
        }
    }

    #[test]
    fn crash_tears_sometimes_and_loses_sometimes() {
        let (mut torn, mut lost, mut whole) = (0, 0, 0);
        for seed in 0..300 {
            let mut d = disk(seed);
            d.append_named("f", b"A").unwrap();
            d.sync_named("f").unwrap();
            d.complete_due(far());
            d.append_named("f", b"0123456789").unwrap();
            d.crash();
            match content(&mut d, "f").unwrap().len() {
                1 => lost += 1,
                11 => whole += 1,
                _ => torn += 1,
            }
        }
        assert!(
            torn > 0 && lost > 0 && whole > 0,
            "torn {torn} lost {lost} whole {whole}"
        );
    }

    #[test]
    fn completed_sync_survives_every_crash() {
        for seed in 0..100 {
            let mut d = disk(seed);
            d.append_named("f", b"abc").unwrap();
            d.sync_named("f").unwrap();
            d.append_named("f", b"def").unwrap();
            d.sync_named("f").unwrap();
            d.complete_due(far());
            d.crash();
            assert_eq!(content(&mut d, "f").unwrap(), b"abcdef");
        }
    }

    #[test]
    fn sync_covers_only_writes_before_it() {
        let mut d = disk(3);
        d.append_named("f", b"abc").unwrap();
        d.sync_named("f").unwrap();
        d.append_named("f", b"def").unwrap();
        d.complete_due(far());
        // Whatever the crash keeps of "def", "abc" is there.
        d.crash();
        assert!(content(&mut d, "f").unwrap().starts_with(b"abc"));
    }

    #[test]
    fn truncate_after_sync_request_still_makes_the_requested_content_durable() {
        for seed in 0..50 {
            let mut d = disk(seed);
            d.append_named("f", b"abcdef").unwrap();
            d.sync_named("f").unwrap();
            d.truncate_named("f", 2).unwrap();
            assert_eq!(content(&mut d, "f").unwrap(), b"ab");
            d.complete_due(far());
            d.crash();
            // The truncation was never synced: the durable six bytes return.
            assert_eq!(content(&mut d, "f").unwrap(), b"abcdef", "seed {seed}");
        }
    }

    #[test]
    fn synced_truncation_and_removal_are_durable() {
        for seed in 0..50 {
            let mut d = disk(seed);
            d.append_named("f", b"abcdef").unwrap();
            d.append_named("g", b"gone").unwrap();
            d.sync_named("f").unwrap();
            d.sync_named("g").unwrap();
            d.complete_due(far());
            d.truncate_named("f", 3).unwrap();
            d.remove("g").unwrap();
            d.sync_named("f").unwrap();
            d.sync_dir().unwrap();
            d.complete_due(far());
            d.crash();
            assert_eq!(content(&mut d, "f").unwrap(), b"abc");
            assert_eq!(d.list().unwrap(), vec!["f".to_owned()]);
        }
    }

    #[test]
    fn unsynced_removal_may_be_undone_and_unsynced_file_may_vanish() {
        let (mut undone, mut vanished) = (0, 0);
        for seed in 0..100 {
            let mut d = disk(seed);
            d.append_named("keep", b"k").unwrap();
            d.sync_named("keep").unwrap();
            d.complete_due(far());
            d.remove("keep").unwrap();
            d.append_named("new", b"n").unwrap();
            d.crash();
            if d.len_named("keep").is_ok() {
                assert_eq!(content(&mut d, "keep").unwrap(), b"k");
                undone += 1;
            }
            if d.len_named("new").is_err() {
                vanished += 1;
            }
        }
        assert!(undone > 0 && undone < 100, "{undone}");
        assert!(vanished > 0 && vanished < 100, "{vanished}");
    }

    #[test]
    fn name_changes_survive_a_crash_in_the_order_they_were_made() {
        for seed in 0..100 {
            let mut d = disk(seed);
            d.append_named("a", b"1").unwrap();
            d.append_named("b", b"2").unwrap();
            d.remove("a").unwrap();
            d.crash();
            // Created a, created b, removed a: a prefix of that.
            let left = d.list().unwrap();
            assert!(
                [vec![], vec!["a".to_owned()], vec!["a".to_owned(), "b".to_owned()], vec!["b".to_owned()]].contains(&left),
                "seed {seed}: {left:?}"
            );
        }
    }

    #[test]
    fn a_rename_survives_whole_or_not_at_all() {
        let (mut done, mut undone) = (0, 0);
        for seed in 0..100 {
            let mut d = disk(seed);
            d.append_named("x", b"old").unwrap();
            d.append_named("x.tmp", b"new").unwrap();
            d.sync_named("x").unwrap();
            d.sync_named("x.tmp").unwrap();
            d.complete_due(far());
            d.rename("x.tmp", "x").unwrap();
            d.crash();
            match &d.list().unwrap()[..] {
                [x] if x == "x" => {
                    assert_eq!(content(&mut d, "x").unwrap(), b"new", "seed {seed}");
                    done += 1;
                }
                [x, tmp] if x == "x" && tmp == "x.tmp" => {
                    assert_eq!(content(&mut d, "x").unwrap(), b"old", "seed {seed}");
                    assert_eq!(content(&mut d, "x.tmp").unwrap(), b"new", "seed {seed}");
                    undone += 1;
                }
                other => panic!("seed {seed}: {other:?}"),
            }
        }
        assert!(done > 0 && undone > 0, "{done} {undone}");
    }

    #[test]
    fn a_sync_of_a_renamed_file_makes_the_rename_durable() {
        for seed in 0..50 {
            let mut d = disk(seed);
            d.append_named("t", b"data").unwrap();
            d.sync_named("t").unwrap();
            d.complete_due(far());
            d.rename("t", "u").unwrap();
            d.sync_named("u").unwrap();
            d.complete_due(far());
            d.crash();
            assert_eq!(d.list().unwrap(), ["u"], "seed {seed}");
            assert_eq!(content(&mut d, "u").unwrap(), b"data");
        }
    }

    #[test]
    fn content_synced_under_an_old_name_stays_with_the_file() {
        for seed in 0..50 {
            let mut d = disk(seed);
            d.append_named("a", b"first").unwrap();
            d.sync_named("a").unwrap();
            // Renamed while its sync is pending; the new name's sync (and
            // the rename with it) may complete first.
            d.rename("a", "b").unwrap();
            d.append_named("b", b"+second").unwrap();
            d.sync_named("b").unwrap();
            d.complete_due(far());
            d.crash();
            assert_eq!(d.list().unwrap(), ["b"], "seed {seed}");
            // Whichever completed last, the newer sync's content stays.
            assert_eq!(content(&mut d, "b").unwrap(), b"first+second", "seed {seed}");
        }
    }

    #[test]
    fn crash_forgets_pending_syncs() {
        let mut d = disk(5);
        d.append_named("f", b"x").unwrap();
        d.sync_named("f").unwrap();
        d.crash();
        assert_eq!(d.next_sync_due(), None);
        assert!(d.complete_due(far()).is_empty());
    }

    #[test]
    fn a_directory_sync_makes_every_name_change_before_it_durable() {
        for seed in 0..50 {
            let mut d = disk(seed);
            d.append_named("gone", b"g").unwrap();
            d.sync_named("gone").unwrap();
            d.complete_due(far());
            d.remove("gone").unwrap();
            d.append_named("new", b"").unwrap();
            d.sync_dir().unwrap();
            assert_eq!(d.complete_due(far()).len(), 1);
            d.crash();
            assert_eq!(d.list().unwrap(), ["new"], "seed {seed}");
        }
    }

    #[test]
    fn full_disk_refuses_whole_appends() {
        let mut d = disk(7);
        d.set_capacity(10);
        d.append_named("f", b"12345678").unwrap();
        assert_eq!(
            d.append_named("f", b"abc"),
            Err(StorageError::NoSpace { file: "f".into() })
        );
        assert_eq!(d.len_named("f").unwrap(), 8);
        d.truncate_named("f", 0).unwrap();
        d.append_named("f", b"abc").unwrap();
        assert_eq!(d.stats().no_space, 1);
    }

    #[test]
    fn bit_flips_change_exactly_one_bit_of_the_read_not_the_file() {
        let config = DiskConfig {
            bitflip_per_million_reads: 1_000_000,
            ..DiskConfig::default()
        };
        let mut d = SimDisk::new(config, SimRng::new(8));
        d.append_named("f", &[0u8; 64]).unwrap();
        let r = d.read_named("f", 0, 64).unwrap();
        assert_eq!(r.iter().map(|b| b.count_ones()).sum::<u32>(), 1);
        let r2 = d.read_named("f", 0, 64).unwrap();
        assert_eq!(
            r2.iter().map(|b| b.count_ones()).sum::<u32>(),
            1,
            "the stored data is intact"
        );
        assert_eq!(d.stats().bitflips, 2);
    }

    #[test]
    fn io_errors_are_injected_and_leave_no_trace() {
        let config = DiskConfig {
            io_error_per_million_ops: 500_000,
            ..DiskConfig::default()
        };
        let mut d = SimDisk::new(config, SimRng::new(9));
        let mut ok = 0u64;
        for _ in 0..200 {
            match d.append_named("f", b"z") {
                Ok(_) => ok += 1,
                Err(StorageError::Io { .. }) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert!(ok > 0 && d.stats().io_errors > 0);
        assert_eq!(d.used_bytes(), ok);
    }

    #[test]
    fn same_seed_same_crash_outcome() {
        let run = |seed| {
            let mut d = disk(seed);
            for i in 0..20u8 {
                d.append_named("f", &[i; 7]).unwrap();
                if i % 5 == 0 {
                    d.sync_named("f").unwrap();
                }
            }
            d.complete_due(Instant::from_nanos(5_000_000));
            d.crash();
            content(&mut d, "f")
        };
        assert_eq!(run(42), run(42));
    }
}
