//! Where a stream keeps its messages: in memory ([`MemStore`]) or in files
//! behind the core's [`Storage`](crate::storage::Storage) ([`FileStore`]).
//!
//! A store is a sequence-ordered log with the indexes a stream needs
//! (by sequence, by subject). It enforces nothing: the stream decides what
//! to keep (limits, discard policy, expiry) and calls [`MsgStore::remove`]
//! or [`MsgStore::purge`]. Sequences start at 1 (or at the configured
//! `first_seq`) and never go back; removed sequences stay consumed.
//!
//! Durability: a write is volatile until [`MsgStore::sync`]'s tokens
//! complete (see [`crate::storage`]). A memory store is never durable;
//! its `sync` returns no token and its writes count as durable at once.

use std::collections::BTreeMap;

use bytes::Bytes;
use thiserror::Error;

use crate::storage::{StorageError, SyncToken};
use crate::time::UnixNanos;

mod file;
mod index;
mod mem;
mod record;
#[cfg(test)]
pub(crate) mod test_storage;
#[cfg(test)]
mod tests;

pub use crate::sync::Lock;
pub use file::{escape_name, unescape_name, FileStore};
pub use mem::MemStore;

/// The one [`Storage`](crate::storage::Storage) every file store of a server
/// shares, with the ledger of its outstanding syncs; each store owns the
/// files whose names start with its prefix.
pub type SharedStorage = std::sync::Arc<Lock<crate::storage::SyncLedger>>;

/// Wraps `storage` for sharing among file stores.
pub fn share_storage(storage: Box<dyn crate::storage::Storage + Send>) -> SharedStorage {
    std::sync::Arc::new(Lock::new(crate::storage::SyncLedger::new(storage)))
}

/// One stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMsg {
    /// The stream sequence.
    pub seq: u64,
    /// The subject it was stored under.
    pub subject: Bytes,
    /// The header block as published (`NATS/1.0\r\n…\r\n\r\n`), if any.
    pub headers: Option<Bytes>,
    /// The payload.
    pub payload: Bytes,
    /// When it was stored (wall clock, nanoseconds since the epoch).
    pub time: UnixNanos,
}

impl StoredMsg {
    /// The size this message counts for in a memory store
    /// ([`mem_record_size`]).
    pub fn size(&self) -> u64 {
        mem_record_size(&self.subject, self.headers.as_deref(), &self.payload)
    }
}

/// The size a message counts for against `max_bytes` and in `state.bytes`
/// in a file stream, as nats-server's file store counts it
/// (`fileStoreMsgSize`): the record's length (4), sequence (8), time (8),
/// subject length (2), subject, payload and checksum (8), plus the header
/// length (4) and headers when there are headers.
pub fn file_record_size(subject: &[u8], headers: Option<&[u8]>, payload: &[u8]) -> u64 {
    let headers_len = headers.map_or(0, <[u8]>::len);
    let headers_part = if headers_len == 0 { 0 } else { 4 + headers_len };
    (22 + subject.len() + headers_part + payload.len() + 8) as u64
}

/// The size a message counts for in a memory stream, as nats-server's
/// memory store counts it (`memStoreMsgSize`): subject, headers, payload
/// and 16 (sequence and time).
pub fn mem_record_size(subject: &[u8], headers: Option<&[u8]>, payload: &[u8]) -> u64 {
    (subject.len() + headers.map_or(0, <[u8]>::len) + payload.len() + 16) as u64
}

/// Sequences a store lost to damage found on recovery.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LostData {
    /// The sequences lost, ascending.
    pub msgs: Vec<u64>,
    /// Bytes of records that could not be read.
    pub bytes: u64,
}

/// A store's figures, as a stream's `state` reports them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreState {
    /// Messages held.
    pub msgs: u64,
    /// Their [`record_size`]s added up.
    pub bytes: u64,
    /// The lowest sequence held; when empty, `last_seq + 1`.
    pub first_seq: u64,
    /// When the first message was stored (zero when empty).
    pub first_time: UnixNanos,
    /// The highest sequence ever assigned (held or not).
    pub last_seq: u64,
    /// When the last message was stored (zero when never).
    pub last_time: UnixNanos,
    /// Sequences between `first_seq` and `last_seq` that are gone.
    pub num_deleted: u64,
    /// Distinct subjects held.
    pub num_subjects: u64,
    /// What recovery found damaged, if anything.
    pub lost: Option<LostData>,
}

/// Why a store operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The disk failed or is full.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The store was deleted.
    #[error("store closed")]
    Closed,
}

/// What [`MsgStore::purge`] removes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PurgeRequest {
    /// Only messages on subjects matching this filter (wildcards allowed).
    pub filter: Option<Bytes>,
    /// Only messages below this sequence (exclusive).
    pub below_seq: Option<u64>,
    /// Keep this many of the newest (per the filter) messages.
    pub keep: Option<u64>,
}

/// A stream's message log (see the [module](self) documentation).
pub trait MsgStore: std::fmt::Debug + Send {
    /// What a message counts for in this store's figures and limits.
    fn record_size(&self, subject: &[u8], headers: Option<&[u8]>, payload: &[u8]) -> u64;

    /// The bytes held (`state().bytes`, without building the rest of the
    /// state): read on every publish by the limit checks.
    fn bytes(&self) -> u64;

    /// Appends a message with the next sequence and returns it.
    fn store(
        &mut self,
        subject: &[u8],
        headers: Option<&[u8]>,
        payload: &[u8],
        time: UnixNanos,
    ) -> Result<u64, StoreError>;

    /// The message at `seq`, if held.
    fn load(&mut self, seq: u64) -> Result<Option<StoredMsg>, StoreError>;

    /// The first message at or after `start` whose subject matches `filter`
    /// (a subject that may hold wildcards; `>` matches all).
    fn load_next(&mut self, filter: &[u8], start: u64) -> Result<Option<StoredMsg>, StoreError>;

    /// The last message whose subject matches `filter` (wildcards allowed).
    fn load_last(&mut self, filter: &[u8]) -> Result<Option<StoredMsg>, StoreError>;

    /// Removes the message at `seq`; with `erase` its bytes are overwritten
    /// in the store's files, not only forgotten. False if it was not held.
    fn remove(&mut self, seq: u64, erase: bool) -> Result<bool, StoreError>;

    /// Removes what `request` selects; returns how many messages went.
    /// With neither `filter` nor `keep`, a purge below `below_seq` (or of
    /// everything) moves `first_seq` to that sequence (or to `last_seq + 1`)
    /// even past sequences never stored, as nats-server's compact does.
    fn purge(&mut self, request: &PurgeRequest) -> Result<u64, StoreError>;

    /// Moves the store's last sequence up to `next_seq - 1` without
    /// storing anything (nats-server's `SkipMsgs`): a mirror keeps its
    /// origin's sequences across what the origin no longer holds. The
    /// skipped sequences count as deleted; an empty store starts at
    /// `next_seq`. Nothing happens when `next_seq` is not past the last.
    fn skip_to(&mut self, next_seq: u64) -> Result<(), StoreError>;

    /// The store's figures.
    fn state(&self) -> StoreState;

    /// Sequences removed between `first_seq` and `last_seq`, ascending.
    fn deleted(&self) -> Vec<u64>;

    /// How many messages each subject matching `filter` holds.
    fn subject_counts(&self, filter: &[u8]) -> BTreeMap<Bytes, u64>;

    /// Messages held on exactly `subject` and the lowest sequence among them.
    fn subject_state(&self, subject: &[u8]) -> Option<(u64, u64)>;

    /// Asks for every write so far to become durable: one sync per file
    /// written, all of whose tokens must complete. Empty when nothing
    /// needs syncing (nothing written since the last sync, or a memory store).
    fn sync(&mut self) -> Result<Vec<SyncToken>, StoreError>;

    /// Hands every write so far to the storage without asking for a sync
    /// (a store may hold writes to make fewer, larger ones; a sync writes
    /// them first too). A memory store has nothing to write.
    fn write_out(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Replaces the stream's metadata kept beside its messages (its
    /// configuration), made durable by the next [`MsgStore::sync`]. A
    /// memory store keeps none.
    fn write_meta(&mut self, _meta: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }

    /// Tells the store that the syncs of `tokens` completed (the
    /// storage's completions, passed on, in any order across files; a
    /// store ignores the tokens that are not its own). A file store removes
    /// emptied blocks and superseded metadata only once what replaces them
    /// is durable, so without these reports it keeps them (safely). A
    /// memory store ignores it.
    fn handle_synced(&mut self, tokens: &[SyncToken]) {
        let _ = tokens;
    }

    /// The syncs this store asked for that have not completed: its writes
    /// so far are durable once they all have. A memory store has none.
    fn syncs_outstanding(&self) -> Vec<SyncToken> {
        Vec::new()
    }

    /// Writes new messages compressed (`compression: "s2"`) or not; reads
    /// are the same either way. A memory store keeps messages as they are.
    fn set_compression(&mut self, _compress: bool) {}

    /// Removes every file of the store (the stream was deleted).
    fn delete(&mut self) -> Result<(), StoreError>;
}
