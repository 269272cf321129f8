//! A [`Storage`] in memory for the store tests: it keeps what was synced
//! apart from what was written, so a test can crash it, flip bits in it or
//! fill it up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::{share_storage, SharedStorage};
use crate::storage::{plain_name, Storage, StorageError, SyncToken};

#[derive(Debug, Default)]
struct Disk {
    /// What reads see.
    files: BTreeMap<String, Vec<u8>>,
    /// What survives a crash (a missing name: the file is gone).
    durable: BTreeMap<String, Vec<u8>>,
    /// Syncs requested, not completed: token, file, its content then.
    pending: Vec<(SyncToken, String, Option<Vec<u8>>)>,
    next_token: u64,
    full: bool,
    /// Appends to files whose names start with this are refused as on a
    /// full disk (one stream's files).
    full_for: Option<String>,
}

/// A handle on one in-memory disk; clones share it.
#[derive(Clone, Debug, Default)]
pub(crate) struct TestDisk(Arc<Mutex<Disk>>);

impl TestDisk {
    fn disk(&self) -> MutexGuard<'_, Disk> {
        self.0.lock().expect("test disk")
    }

    /// The disk as the stores share it.
    pub(crate) fn shared(&self) -> SharedStorage {
        share_storage(Box::new(self.clone()))
    }

    /// Completes every sync requested so far; returns their tokens.
    pub(crate) fn complete_syncs(&self) -> Vec<SyncToken> {
        self.complete_syncs_of(|_| true)
    }

    /// Completes the syncs requested so far of the files `which` picks
    /// (the others stay pending, as a slow disk's would); returns their
    /// tokens. A file's syncs complete in order, as the contract asks.
    pub(crate) fn complete_syncs_of(&self, which: impl Fn(&str) -> bool) -> Vec<SyncToken> {
        let mut disk = self.disk();
        let (done, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut disk.pending).into_iter().partition(|(_, name, _)| which(name));
        disk.pending = kept;
        let mut tokens = Vec::with_capacity(done.len());
        for (token, name, content) in done {
            match content {
                Some(content) => disk.durable.insert(name, content),
                None => disk.durable.remove(&name),
            };
            tokens.push(token);
        }
        tokens
    }

    /// Crashes: every file goes back to its durable content, keeping at
    /// most `torn_bytes` of what was appended after it (a torn write).
    pub(crate) fn crash(&self, torn_bytes: usize) {
        let mut disk = self.disk();
        disk.pending.clear();
        let mut after = disk.durable.clone();
        for (name, content) in &disk.files {
            let base = disk.durable.get(name).map_or(&[][..], Vec::as_slice);
            if content.starts_with(base) && content.len() > base.len() {
                let keep = (content.len() - base.len()).min(torn_bytes);
                after.insert(name.clone(), content[..base.len() + keep].to_vec());
            }
        }
        disk.files = after;
    }

    /// Flips one bit of `file` (in what reads see and what survives).
    pub(crate) fn flip_bit(&self, file: &str, offset: usize, bit: u8) {
        let mut disk = self.disk();
        disk.files.get_mut(file).expect("file to damage")[offset] ^= 1 << bit;
        if let Some(content) = disk.durable.get_mut(file) {
            if offset < content.len() {
                content[offset] ^= 1 << bit;
            }
        }
    }

    /// Refuses (or again accepts, given `None`) the appends to files whose
    /// names start with `prefix`.
    pub(crate) fn set_full_for(&self, prefix: Option<&str>) {
        self.disk().full_for = prefix.map(str::to_owned);
    }

    /// Refuses (or again accepts) every append, as a full disk does.
    pub(crate) fn set_full(&self, full: bool) {
        self.disk().full = full;
    }

    /// Every file's name and length.
    pub(crate) fn files(&self) -> Vec<(String, usize)> {
        self.disk()
            .files
            .iter()
            .map(|(n, c)| (n.clone(), c.len()))
            .collect()
    }

    /// Adds raw bytes to a file, bypassing every check.
    pub(crate) fn raw_append(&self, file: &str, data: &[u8]) {
        self.disk()
            .files
            .entry(file.to_owned())
            .or_default()
            .extend_from_slice(data);
    }
}

fn not_found(file: &str) -> StorageError {
    StorageError::NotFound {
        file: file.to_owned(),
    }
}

impl Storage for TestDisk {
    fn append(&mut self, file: &str, data: &[u8]) -> Result<u64, StorageError> {
        plain_name(file)?;
        let mut disk = self.disk();
        if disk.full || disk.full_for.as_deref().is_some_and(|p| file.starts_with(p)) {
            return Err(StorageError::NoSpace {
                file: file.to_owned(),
            });
        }
        let content = disk.files.entry(file.to_owned()).or_default();
        content.extend_from_slice(data);
        Ok((content.len() - data.len()) as u64)
    }

    fn read(&mut self, file: &str, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        plain_name(file)?;
        let disk = self.disk();
        let content = disk.files.get(file).ok_or_else(|| not_found(file))?;
        let range = usize::try_from(offset).ok().and_then(|start| Some(start..start.checked_add(len)?));
        range
            .and_then(|range| content.get(range))
            .map(Bytes::copy_from_slice)
            .ok_or_else(|| StorageError::OutOfRange {
                file: file.to_owned(),
                offset,
                len: len as u64,
                file_len: content.len() as u64,
            })
    }

    fn truncate(&mut self, file: &str, len: u64) -> Result<(), StorageError> {
        plain_name(file)?;
        let mut disk = self.disk();
        let content = disk.files.get_mut(file).ok_or_else(|| not_found(file))?;
        if len > content.len() as u64 {
            let file_len = content.len() as u64;
            return Err(StorageError::OutOfRange { file: file.to_owned(), offset: len, len: 0, file_len });
        }
        content.truncate(len as usize);
        Ok(())
    }

    fn remove(&mut self, file: &str) -> Result<(), StorageError> {
        plain_name(file)?;
        self.disk()
            .files
            .remove(file)
            .map(|_| ())
            .ok_or_else(|| not_found(file))
    }

    fn list(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.disk().files.keys().cloned().collect())
    }

    fn len(&self, file: &str) -> Result<u64, StorageError> {
        plain_name(file)?;
        let disk = self.disk();
        disk.files
            .get(file)
            .map(|c| c.len() as u64)
            .ok_or_else(|| not_found(file))
    }

    fn sync(&mut self, file: &str) -> Result<SyncToken, StorageError> {
        plain_name(file)?;
        let mut disk = self.disk();
        // A file removed or never written syncs its absence.
        let content = disk.files.get(file).cloned();
        let token = SyncToken(disk.next_token);
        disk.next_token += 1;
        disk.pending.push((token, file.to_owned(), content));
        Ok(token)
    }
}

mod tests {
    use super::TestDisk;

    #[test]
    fn keeps_the_storage_contract() {
        crate::storage::contract::check_all(TestDisk::default);
    }
}
