//! A [`Storage`] in memory, for tests and tools: it keeps what was synced
//! apart from what was written, completes syncs when told to, and can be
//! crashed, damaged or filled up. Clones share one disk, so a test keeps a
//! clone while the code under test owns another.
//!
//! Its crash model is the contract's, made deterministic: a crash keeps
//! every file's durable content (plus, when asked, a torn part of its
//! unsynced tail) and undoes every creation, removal and rename that no
//! completed sync covers. The simulator's disk is the one that picks at
//! random among everything the contract allows.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::{plain_name, FileId, NameLog, OpenFiles, Storage, StorageError, SyncToken};

/// A file: its content and `ino`, which names it whatever its name. In
/// the durable view `synced_by` is the newest sync whose content it holds.
#[derive(Clone, Debug, Default)]
struct MemFile {
    ino: u64,
    data: Vec<u8>,
    synced_by: u64,
}

#[derive(Debug)]
enum Covers {
    /// A file's content as it was at the request (`name`: its name then);
    /// `names_through`: the name changes the sync also covers (the
    /// file's name was new).
    File { name: String, ino: u64, content: Vec<u8>, names_through: Option<u64> },
    /// The name changes up to this one.
    Dir { names_through: u64 },
}

#[derive(Debug)]
struct Pending {
    token: SyncToken,
    covers: Covers,
}

#[derive(Debug, Default)]
struct Disk {
    /// What reads see.
    files: BTreeMap<String, MemFile>,
    /// What survives a crash (a missing name: the file is gone).
    durable: BTreeMap<String, MemFile>,
    next_ino: u64,
    names: NameLog<MemFile>,
    pending: Vec<Pending>,
    open: OpenFiles<()>,
    next_token: u64,
    full: bool,
    /// Appends to files whose names start with this are refused as on a
    /// full disk (one stream's files).
    full_for: Option<String>,
    /// This many of the next appends, removals, renames and syncs fail.
    failures: u32,
}

impl Disk {
    /// Fails this operation if it is one of those told to.
    fn fails(&mut self, file: &str) -> Result<(), StorageError> {
        if self.failures == 0 {
            return Ok(());
        }
        self.failures -= 1;
        Err(StorageError::NoSpace { file: file.to_owned() })
    }

    /// Creates `name`, empty, as a new file.
    fn create(&mut self, name: &str) -> MemFile {
        self.next_ino += 1;
        let file = MemFile { ino: self.next_ino, ..MemFile::default() };
        self.files.insert(name.to_owned(), file.clone());
        file
    }

    fn name(&self, id: FileId) -> Result<String, StorageError> {
        self.open.get(id).map(|(name, ())| name.to_owned())
    }

    fn file(&mut self, id: FileId) -> Result<(String, &mut Vec<u8>), StorageError> {
        let name = self.name(id)?;
        let file = self.files.get_mut(&name).expect("an open file exists");
        Ok((name, &mut file.data))
    }

    fn complete(&mut self, p: Pending) -> SyncToken {
        match p.covers {
            Covers::File { ino, content, names_through, .. } => {
                if let Some(through) = names_through {
                    self.names.cover(through, &mut self.durable);
                }
                // The content goes to the file under whichever name it
                // durably has; a file durably gone keeps nothing, and an
                // older sync completing after a newer one changes nothing.
                let token = p.token.0;
                if let Some(durable) = self.durable.values_mut().find(|d| d.ino == ino && d.synced_by < token) {
                    durable.data = content;
                    durable.synced_by = token;
                }
            }
            Covers::Dir { names_through } => self.names.cover(names_through, &mut self.durable),
        }
        p.token
    }

    fn token(&mut self) -> SyncToken {
        self.next_token += 1;
        SyncToken(self.next_token)
    }
}

/// An in-memory disk; clones share it. See the [module](self) documentation.
#[derive(Clone, Debug, Default)]
pub struct MemStorage(Arc<Mutex<Disk>>);

impl MemStorage {
    fn disk(&self) -> MutexGuard<'_, Disk> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Completes every sync requested so far, in the order asked; returns
    /// their tokens.
    pub fn complete_syncs(&self) -> Vec<SyncToken> {
        self.complete_syncs_of(|_| true)
    }

    /// Completes the syncs requested so far of the files `which` picks
    /// (the directory's are offered as `"."`); the others stay pending, as
    /// a slow disk's would. A file's syncs complete in the order asked, as
    /// the contract asks. Returns the tokens completed.
    pub fn complete_syncs_of(&self, which: impl Fn(&str) -> bool) -> Vec<SyncToken> {
        let mut disk = self.disk();
        let (done, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut disk.pending).into_iter().partition(|p| match &p.covers {
            Covers::File { name, .. } => which(name),
            Covers::Dir { .. } => which("."),
        });
        disk.pending = kept;
        done.into_iter().map(|p| disk.complete(p)).collect()
    }

    /// Completes the `n` oldest syncs requested; returns their tokens.
    pub fn complete_oldest(&self, n: usize) -> Vec<SyncToken> {
        let mut disk = self.disk();
        let n = n.min(disk.pending.len());
        let done: Vec<Pending> = disk.pending.drain(..n).collect();
        done.into_iter().map(|p| disk.complete(p)).collect()
    }

    /// Crashes: pending syncs are lost, every name change no completed sync
    /// covers is undone, and every file goes back to its durable content,
    /// keeping at most `torn_bytes` of what was appended after it (a torn
    /// write). Every handle goes stale.
    pub fn crash(&self, torn_bytes: usize) {
        self.crash_with(|_, tail| tail.min(torn_bytes));
    }

    /// Crashes as [`MemStorage::crash`] does, keeping `keep` bytes of the
    /// unsynced tail of `file` and none of any other's. `file` is there
    /// even when no sync covered its creation (its name reached the disk,
    /// its content only in part).
    pub fn crash_tearing(&self, file: &str, keep: usize) {
        let mut disk = self.disk();
        let Some(ino) = disk.files.get(file).map(|f| f.ino) else {
            drop(disk);
            return self.crash(0);
        };
        if !disk.durable.values().any(|d| d.ino == ino) {
            disk.durable.insert(file.to_owned(), MemFile { ino, ..MemFile::default() });
        }
        drop(disk);
        self.crash_with(|torn, tail| if torn == ino { tail.min(keep) } else { 0 });
    }

    /// Crashes, keeping `kept_of_tail(ino, tail_len)` bytes of each file's
    /// unsynced tail.
    fn crash_with(&self, kept_of_tail: impl Fn(u64, usize) -> usize) {
        let mut disk = self.disk();
        disk.pending.clear();
        disk.names = NameLog::default();
        let mut after = disk.durable.clone();
        for durable in after.values_mut() {
            let written = disk.files.values().find(|f| f.ino == durable.ino && f.data.starts_with(&durable.data));
            if let Some(written) = written {
                let from = durable.data.len();
                let keep = kept_of_tail(durable.ino, written.data.len() - from);
                durable.data.extend_from_slice(&written.data[from..from + keep]);
            }
        }
        disk.files = after;
        disk.open.release_all();
    }

    /// Flips one bit of `file` (in what reads see and what survives).
    pub fn flip_bit(&self, file: &str, offset: usize, bit: u8) {
        let mut disk = self.disk();
        let damaged = disk.files.get_mut(file).expect("file to damage");
        damaged.data[offset] ^= 1 << bit;
        let ino = damaged.ino;
        if let Some(durable) = disk.durable.values_mut().find(|d| d.ino == ino) {
            if offset < durable.data.len() {
                durable.data[offset] ^= 1 << bit;
            }
        }
    }

    /// Fails the next `n` appends, removals, renames and syncs with
    /// `NoSpace`.
    pub fn fail_next(&self, n: u32) {
        self.disk().failures = n;
    }

    /// Edits what reads of `file` see (not what survives a crash); false
    /// when there is no such file.
    pub fn edit_file(&self, file: &str, edit: impl FnOnce(&mut Vec<u8>)) -> bool {
        self.disk().files.get_mut(file).map(|f| edit(&mut f.data)).is_some()
    }

    /// Refuses (or again accepts, given `None`) the appends to files whose
    /// names start with `prefix`.
    pub fn set_full_for(&self, prefix: Option<&str>) {
        self.disk().full_for = prefix.map(str::to_owned);
    }

    /// Refuses (or again accepts) every append, as a full disk does.
    pub fn set_full(&self, full: bool) {
        self.disk().full = full;
    }

    /// Every file's name and length.
    pub fn files(&self) -> Vec<(String, usize)> {
        self.disk().files.iter().map(|(n, f)| (n.clone(), f.data.len())).collect()
    }

    /// Makes `file` hold `data`, durably, as another program would have
    /// left it before this storage was used.
    pub fn put_durable(&self, file: &str, data: &[u8]) {
        let disk = &mut *self.disk();
        let put = MemFile { data: data.to_vec(), ..disk.create(file) };
        disk.files.insert(file.to_owned(), put.clone());
        disk.durable.insert(file.to_owned(), put);
    }

    /// Adds raw bytes to a file (created if absent), bypassing every
    /// check; volatile, like any append.
    pub fn raw_append(&self, file: &str, data: &[u8]) {
        let disk = &mut *self.disk();
        if !disk.files.contains_key(file) {
            let created = disk.create(file);
            disk.names.create(file, created);
        }
        disk.files.get_mut(file).expect("created").data.extend_from_slice(data);
    }
}

impl Storage for MemStorage {
    fn open(&mut self, file: &str, create: bool) -> Result<FileId, StorageError> {
        plain_name(file)?;
        let disk = &mut *self.disk();
        let exists = disk.files.contains_key(file);
        if !exists && !create {
            return Err(StorageError::NotFound { file: file.to_owned() });
        }
        let id = disk.open.open(file, || Ok(()))?;
        if !exists {
            let created = disk.create(file);
            disk.names.create(file, created);
        }
        Ok(id)
    }

    fn close(&mut self, file: FileId) {
        self.disk().open.close(file);
    }

    fn append(&mut self, file: FileId, data: &[u8]) -> Result<u64, StorageError> {
        let disk = &mut *self.disk();
        let name = disk.name(file)?;
        if disk.full || disk.full_for.as_deref().is_some_and(|p| name.starts_with(p)) {
            return Err(StorageError::NoSpace { file: name });
        }
        disk.fails(&name)?;
        let (_, content) = disk.file(file)?;
        content.extend_from_slice(data);
        Ok((content.len() - data.len()) as u64)
    }

    fn read(&mut self, file: FileId, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        let disk = &mut *self.disk();
        let (name, content) = disk.file(file)?;
        let range = usize::try_from(offset).ok().and_then(|start| Some(start..start.checked_add(len)?));
        let file_len = content.len() as u64;
        match range.and_then(|range| content.get(range)) {
            Some(bytes) => Ok(Bytes::copy_from_slice(bytes)),
            None => Err(StorageError::OutOfRange { file: name, offset, len: len as u64, file_len }),
        }
    }

    fn truncate(&mut self, file: FileId, len: u64) -> Result<(), StorageError> {
        let disk = &mut *self.disk();
        let (name, content) = disk.file(file)?;
        if len > content.len() as u64 {
            let file_len = content.len() as u64;
            return Err(StorageError::OutOfRange { file: name, offset: len, len: 0, file_len });
        }
        content.truncate(len as usize);
        Ok(())
    }

    fn len(&self, file: FileId) -> Result<u64, StorageError> {
        let disk = self.disk();
        let (name, ()) = disk.open.get(file)?;
        Ok(disk.files.get(name).map_or(0, |f| f.data.len() as u64))
    }

    fn sync(&mut self, file: FileId) -> Result<SyncToken, StorageError> {
        let disk = &mut *self.disk();
        let name = disk.name(file)?;
        disk.fails(&name)?;
        let MemFile { ino, data: content, .. } = disk.files[&name].clone();
        let names_through = disk.names.covered_by_sync_of(&name);
        let token = disk.token();
        disk.pending.push(Pending { token, covers: Covers::File { name, ino, content, names_through } });
        Ok(token)
    }

    fn remove(&mut self, file: &str) -> Result<(), StorageError> {
        plain_name(file)?;
        let disk = &mut *self.disk();
        if !disk.files.contains_key(file) {
            return Err(StorageError::NotFound { file: file.to_owned() });
        }
        disk.fails(file)?;
        disk.files.remove(file);
        disk.open.release(file);
        disk.names.remove(file);
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), StorageError> {
        plain_name(from)?;
        plain_name(to)?;
        let disk = &mut *self.disk();
        if !disk.files.contains_key(from) {
            return Err(StorageError::NotFound { file: from.to_owned() });
        }
        disk.fails(from)?;
        if from == to {
            return Ok(());
        }
        let content = disk.files.remove(from).expect("checked");
        disk.files.insert(to.to_owned(), content);
        disk.open.rename(from, to);
        disk.names.rename(from, to);
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.disk().files.keys().cloned().collect())
    }

    fn sync_dir(&mut self) -> Result<SyncToken, StorageError> {
        let disk = &mut *self.disk();
        disk.fails(".")?;
        let names_through = disk.names.newest();
        let token = disk.token();
        disk.pending.push(Pending { token, covers: Covers::Dir { names_through } });
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageExt;

    #[test]
    fn keeps_the_storage_contract() {
        crate::storage::contract::check_all(MemStorage::default);
    }

    #[test]
    fn a_crash_keeps_what_completed_syncs_cover_and_nothing_else() {
        let mut s = MemStorage::default();
        let a = s.open("a", true).unwrap();
        s.append(a, b"12").unwrap();
        s.sync(a).unwrap();
        s.append(a, b"34").unwrap();
        let b = s.open("b", true).unwrap();
        s.append(b, b"never synced").unwrap();
        s.complete_syncs();
        s.crash(1);
        assert_eq!(s.read_all("a").unwrap()[..], b"123"[..], "the synced part and one torn byte");
        assert!(s.open("b", false).is_err(), "a creation no sync covers is undone");
        assert!(matches!(s.len(a), Err(StorageError::StaleHandle { .. })), "a crash ends every handle");
    }

    #[test]
    fn a_rename_is_undone_whole_unless_a_sync_covers_it() {
        let mut s = MemStorage::default();
        s.write_synced("x", b"old").unwrap();
        s.write_synced("x.tmp", b"new").unwrap();
        s.complete_syncs();
        s.rename("x.tmp", "x").unwrap();
        s.crash(0);
        assert_eq!(s.list().unwrap(), ["x", "x.tmp"]);
        assert_eq!(s.read_all("x").unwrap()[..], b"old"[..]);

        s.rename("x.tmp", "x").unwrap();
        s.sync_dir().unwrap();
        s.complete_syncs();
        s.crash(0);
        assert_eq!(s.list().unwrap(), ["x"]);
        assert_eq!(s.read_all("x").unwrap()[..], b"new"[..]);
    }

    #[test]
    fn a_sync_of_a_renamed_file_makes_its_name_durable() {
        let mut s = MemStorage::default();
        let t = s.open("t", true).unwrap();
        s.append(t, b"data").unwrap();
        s.sync(t).unwrap();
        s.complete_syncs();
        s.rename("t", "u").unwrap();
        s.sync(t).unwrap();
        s.remove("other").unwrap_err();
        s.complete_syncs();
        s.crash(0);
        assert_eq!(s.list().unwrap(), ["u"]);
        assert_eq!(s.read_all("u").unwrap()[..], b"data"[..]);
    }

    #[test]
    fn a_late_sync_of_a_removed_file_never_reaches_the_file_that_took_its_name() {
        let mut s = MemStorage::default();
        let old = s.open("f", true).unwrap();
        s.append(old, b"old").unwrap();
        s.sync(old).unwrap();
        s.remove("f").unwrap();
        s.open("f", true).unwrap();
        s.sync_dir().unwrap();
        // The directory's sync first: the new, empty `f` is durable
        // before the old file's content completes.
        s.complete_syncs_of(|name| name == ".");
        s.complete_syncs();
        s.crash(0);
        assert_eq!(s.read_all("f").unwrap()[..], b""[..]);
    }

    #[test]
    fn content_synced_before_a_rename_stays_with_the_file() {
        let mut s = MemStorage::default();
        s.write_synced("a", b"x").unwrap();
        s.complete_syncs();
        let a = s.open("a", false).unwrap();
        s.append(a, b"y").unwrap();
        s.sync(a).unwrap();
        s.rename("a", "b").unwrap();
        s.sync_dir().unwrap();
        // The directory's sync first: the rename is durable before the
        // content asked for under the old name.
        s.complete_syncs_of(|name| name == ".");
        s.complete_syncs();
        s.crash(0);
        assert_eq!(s.list().unwrap(), ["b"]);
        assert_eq!(s.read_all("b").unwrap()[..], b"xy"[..]);
    }

    #[test]
    fn an_unsynced_removal_is_undone_and_a_synced_one_is_not() {
        let mut s = MemStorage::default();
        s.write_synced("a", b"1").unwrap();
        s.write_synced("b", b"2").unwrap();
        s.complete_syncs();
        s.remove("a").unwrap();
        s.sync_dir().unwrap();
        s.remove("b").unwrap();
        s.complete_syncs_of(|name| name == ".");
        s.crash(0);
        assert_eq!(s.list().unwrap(), ["b"]);
    }
}
