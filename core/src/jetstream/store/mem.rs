//! [`MemStore`]: a stream's messages in memory only.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::index::{Index, PurgePlan};
use super::{MsgStore, PurgeRequest, StoreError, StoreState, StoredMsg};
use crate::storage::SyncToken;
use crate::time::UnixNanos;

/// A message log kept in memory (a stream with `storage: memory`). Nothing
/// survives a restart, so every write counts as durable at once.
#[derive(Debug)]
pub struct MemStore {
    index: Index<StoredMsg>,
    closed: bool,
}

impl MemStore {
    /// An empty store whose first message gets sequence `first_seq` (0
    /// counts as 1, like a stream config that leaves it unset).
    pub fn new(first_seq: u64) -> Self {
        MemStore {
            index: Index::new(first_seq.max(1)),
            closed: false,
        }
    }

    fn open(&self) -> Result<(), StoreError> {
        if self.closed {
            return Err(StoreError::Closed);
        }
        Ok(())
    }
}

impl MsgStore for MemStore {
    fn skip_to(&mut self, next_seq: u64) -> Result<(), StoreError> {
        self.open()?;
        if next_seq > self.index.next_seq() {
            let time = self.index.last_time();
            self.index.raise_last(next_seq - 1, time);
        }
        Ok(())
    }

    fn record_size(&self, subject: &[u8], headers: Option<&[u8]>, payload: &[u8]) -> u64 {
        super::mem_record_size(subject, headers, payload)
    }

    fn bytes(&self) -> u64 {
        self.index.bytes()
    }

    fn store(
        &mut self,
        subject: &[u8],
        headers: Option<&[u8]>,
        payload: &[u8],
        time: UnixNanos,
    ) -> Result<u64, StoreError> {
        self.open()?;
        let seq = self.index.next_seq();
        let msg = StoredMsg {
            seq,
            subject: Bytes::copy_from_slice(subject),
            headers: headers.map(Bytes::copy_from_slice),
            payload: Bytes::copy_from_slice(payload),
            time,
        };
        self.index.insert(seq, msg, time);
        Ok(seq)
    }

    fn load(&mut self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        self.open()?;
        Ok(self.index.get(seq).cloned())
    }

    fn load_next(&mut self, filter: &[u8], start: u64) -> Result<Option<StoredMsg>, StoreError> {
        self.open()?;
        Ok(self
            .index
            .next_matching(filter, start)
            .and_then(|seq| self.index.get(seq).cloned()))
    }

    fn load_last(&mut self, filter: &[u8]) -> Result<Option<StoredMsg>, StoreError> {
        self.open()?;
        Ok(self
            .index
            .last_matching(filter)
            .and_then(|seq| self.index.get(seq).cloned()))
    }

    /// Memory holds no copy elsewhere: `erase` changes nothing.
    fn remove(&mut self, seq: u64, _erase: bool) -> Result<bool, StoreError> {
        self.open()?;
        Ok(self.index.remove(seq).is_some())
    }

    fn purge(&mut self, request: &PurgeRequest) -> Result<u64, StoreError> {
        self.open()?;
        let (floor, seqs) = match self.index.plan_purge(request) {
            PurgePlan::Compact { floor, held } => (Some(floor), held),
            PurgePlan::Remove(seqs) => (None, seqs),
        };
        for &seq in &seqs {
            self.index.remove(seq);
        }
        if let Some(floor) = floor {
            let time = self.index.last_time();
            self.index.raise_last(floor - 1, time);
        }
        Ok(seqs.len() as u64)
    }

    fn state(&self) -> StoreState {
        self.index.state(|msg| msg.time)
    }

    fn deleted(&self) -> Vec<u64> {
        self.index.deleted()
    }

    fn subject_counts(&self, filter: &[u8]) -> BTreeMap<Bytes, u64> {
        self.index.subject_counts(filter)
    }

    fn subject_state(&self, subject: &[u8]) -> Option<(u64, u64)> {
        self.index.subject_state(subject)
    }

    fn sync(&mut self) -> Result<Vec<SyncToken>, StoreError> {
        self.open()?;
        Ok(Vec::new())
    }

    fn delete(&mut self) -> Result<(), StoreError> {
        self.index = Index::new(1);
        self.closed = true;
        Ok(())
    }
}
