//! A storage with the syncs asked of it that have not completed yet.
//!
//! The storage completes one file's syncs in order and different files'
//! in any order (see [`crate::storage`]), so "this sync completed" says
//! nothing of the syncs asked for before it on other files. Work that
//! must follow every write made before it (a stream deleted, a consumer's
//! state confirmed, a JWT update settled) therefore waits until no sync
//! at or below the last one asked for is outstanding, and only a ledger
//! that sees every sync, whoever asked for it, can tell.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::{FileId, Storage, StorageError, SyncToken};

/// A [`Storage`] that keeps the tokens of the syncs asked of it until
/// their completions are reported ([`SyncLedger::complete`]).
pub struct SyncLedger {
    storage: Box<dyn Storage + Send>,
    /// Syncs asked for and not reported complete.
    outstanding: BTreeSet<SyncToken>,
    /// The newest token handed out.
    last_issued: Option<SyncToken>,
}

impl std::fmt::Debug for SyncLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncLedger").field("outstanding", &self.outstanding).finish_non_exhaustive()
    }
}

impl SyncLedger {
    /// Keeps the ledger of `storage`'s syncs.
    pub fn new(storage: Box<dyn Storage + Send>) -> Self {
        SyncLedger { storage, outstanding: BTreeSet::new(), last_issued: None }
    }

    /// The storage reported these syncs complete.
    pub fn complete(&mut self, tokens: &[SyncToken]) {
        for token in tokens {
            self.outstanding.remove(token);
        }
    }

    /// The newest sync asked for, if any was.
    pub fn last_issued(&self) -> Option<SyncToken> {
        self.last_issued
    }

    /// True when `token` was asked for and has not completed.
    pub fn is_outstanding(&self, token: SyncToken) -> bool {
        self.outstanding.contains(&token)
    }

    /// True when no sync asked for is outstanding.
    pub fn all_done(&self) -> bool {
        self.outstanding.is_empty()
    }

    fn issued(&mut self, token: SyncToken) -> SyncToken {
        debug_assert!(self.last_issued < Some(token), "sync tokens increase");
        self.outstanding.insert(token);
        self.last_issued = Some(token);
        token
    }

    /// True when every sync up to `token` (itself included) completed.
    pub fn done_through(&self, token: SyncToken) -> bool {
        self.outstanding.range(..=token).next().is_none()
    }
}

impl Storage for SyncLedger {
    fn open(&mut self, file: &str, create: bool) -> Result<FileId, StorageError> {
        self.storage.open(file, create)
    }

    fn close(&mut self, file: FileId) {
        self.storage.close(file);
    }

    fn append(&mut self, file: FileId, data: &[u8]) -> Result<u64, StorageError> {
        self.storage.append(file, data)
    }

    fn read(&mut self, file: FileId, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        self.storage.read(file, offset, len)
    }

    fn truncate(&mut self, file: FileId, len: u64) -> Result<(), StorageError> {
        self.storage.truncate(file, len)
    }

    fn len(&self, file: FileId) -> Result<u64, StorageError> {
        self.storage.len(file)
    }

    fn sync(&mut self, file: FileId) -> Result<SyncToken, StorageError> {
        let token = self.storage.sync(file)?;
        Ok(self.issued(token))
    }

    fn remove(&mut self, file: &str) -> Result<(), StorageError> {
        self.storage.remove(file)
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), StorageError> {
        self.storage.rename(from, to)
    }

    fn list(&self) -> Result<Vec<String>, StorageError> {
        self.storage.list()
    }

    fn sync_dir(&mut self) -> Result<SyncToken, StorageError> {
        let token = self.storage.sync_dir()?;
        Ok(self.issued(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jetstream::store::test_storage::TestDisk;

    #[test]
    fn keeps_the_storage_contract() {
        crate::storage::contract::check_all(|| SyncLedger::new(Box::new(TestDisk::default())));
    }

    #[test]
    fn tracks_syncs_until_each_completes_in_any_order() {
        let mut ledger = SyncLedger::new(Box::new(TestDisk::default()));
        let a = ledger.open("a", true).unwrap();
        let b = ledger.open("b", true).unwrap();
        ledger.append(a, b"1").unwrap();
        ledger.append(b, b"2").unwrap();
        let ta = ledger.sync(a).unwrap();
        let tb = ledger.sync(b).unwrap();
        assert_eq!(ledger.last_issued(), Some(tb));
        assert!(ledger.is_outstanding(ta) && ledger.is_outstanding(tb));
        // b's sync completes first: b is done, but not everything up to it.
        ledger.complete(&[tb]);
        assert!(!ledger.is_outstanding(tb));
        assert!(!ledger.done_through(tb));
        assert!(!ledger.done_through(ta));
        ledger.complete(&[ta]);
        assert!(ledger.done_through(tb));
        // A refused sync is not outstanding.
        ledger.remove("b").unwrap();
        assert!(ledger.sync(b).is_err());
        assert_eq!(ledger.last_issued(), Some(tb));
    }
}
