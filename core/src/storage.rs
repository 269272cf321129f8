//! Disk behind a trait with an explicit durability barrier.
//!
//! JetStream's store reads and writes through [`Storage`]: a flat namespace of
//! named files, each an append-only byte sequence that can also be read at an
//! offset, truncated and removed. The production runtime maps a name to a real
//! file under the store directory; the simulator keeps files in memory and
//! injects crashes, torn writes, bit flips and full disks.
//!
//! # Durability contract
//!
//! Every mutation ([`Storage::append`], [`Storage::truncate`],
//! [`Storage::remove`], and the creation of a file by its first append) is
//! *volatile* when the call returns: it is visible to later reads, but a crash
//! may lose it. [`Storage::sync`] asks for everything done to one file so far to
//! be made durable and returns a [`SyncToken`] at once; the runtime reports the
//! completion later as an input to the core (the completion carries the
//! token). Until that completion arrives, nothing covered by the sync may be
//! assumed to survive a crash, so nothing that depends on it (a PubAck, a Raft
//! vote) may be sent.
//!
//! - A sync covers every mutation of its file made before the `sync` call,
//!   whether or not other syncs of the file were requested in between. That
//!   makes group commit natural: append a batch of messages, sync once, and
//!   release every ack of the batch when the one token completes.
//! - Tokens are issued in increasing order, across all files. Every token
//!   completes exactly once and is reported on its own. The tokens of one
//!   file complete in the order they were issued; those of different files
//!   complete in any order, so a slow sync of one file holds back no other
//!   file's. A caller that needs every sync up to some point done (an
//!   answer that must follow all writes before it) keeps the tokens it
//!   has outstanding and waits until none at or below that point is left.
//! - After a crash, a file holds exactly its content as of its last completed
//!   sync, plus possibly a prefix of later writes, and the last write may be
//!   torn (partly present). Checksums above this layer must detect both, and
//!   bit flips on read.
//! - A file that was never synced may be missing after a crash; a removal that
//!   was not followed by a completed sync of the same name may be undone.
//! - Names are plain file names ([`plain_name`]); a sync of a removed or
//!   never-written name is accepted and makes its absence durable.
//!
//! [`contract`] checks what a single run can show of this; every
//! implementation runs it in its tests.

use bytes::Bytes;
use thiserror::Error;

/// Identifies one [`Storage::sync`] request; its completion comes back to the
/// core as an input. Tokens are issued in increasing order; a file's
/// complete in that order, different files' in any order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SyncToken(pub u64);

/// Why a storage operation failed.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum StorageError {
    /// The named file does not exist.
    #[error("file not found: {file}")]
    NotFound {
        /// The file's name.
        file: String,
    },
    /// The device is full; nothing of the failed write was applied.
    #[error("no space left on device writing {file}")]
    NoSpace {
        /// The file being written.
        file: String,
    },
    /// The name is not a plain file name (empty, `.`, `..`, or holding a
    /// path separator or NUL): a file outside the store could be reached.
    #[error("not a plain file name: {file:?}")]
    InvalidName {
        /// The name refused.
        file: String,
    },
    /// The device reported an I/O error.
    #[error("I/O error on {file}: {detail}")]
    Io {
        /// The file involved.
        file: String,
        /// The operating system's description.
        detail: String,
    },
    /// The data read is known to be damaged (a media error, or a read past a
    /// torn end). Checksums above this layer catch silent damage.
    #[error("corrupt data in {file} at offset {offset}")]
    Corrupt {
        /// The file read.
        file: String,
        /// Where the damage starts.
        offset: u64,
    },
    /// A read or truncate asked for a range beyond the end of the file.
    #[error("range {offset}+{len} is beyond the end of {file} ({file_len} bytes)")]
    OutOfRange {
        /// The file.
        file: String,
        /// Requested start.
        offset: u64,
        /// Requested length.
        len: u64,
        /// The file's length.
        file_len: u64,
    },
}

/// Refuses a name that is not a plain file name (see
/// [`StorageError::InvalidName`]); every implementation checks names with it.
pub fn plain_name(file: &str) -> Result<(), StorageError> {
    let plain = !file.is_empty() && !file.contains(['/', '\\', '\0']) && file != "." && file != "..";
    if plain {
        Ok(())
    } else {
        Err(StorageError::InvalidName { file: file.to_owned() })
    }
}

/// Files as named append/read/truncate/remove units, with an explicit sync.
/// See the module documentation for the durability contract every
/// implementation keeps.
pub trait Storage {
    /// Appends `data` to `file`, creating it if absent, and returns the offset
    /// at which `data` starts. Volatile until a sync of `file` completes.
    fn append(&mut self, file: &str, data: &[u8]) -> Result<u64, StorageError>;

    /// Reads `len` bytes of `file` starting at `offset`.
    fn read(&mut self, file: &str, offset: u64, len: usize) -> Result<Bytes, StorageError>;

    /// Cuts `file` down to `len` bytes (used to drop a torn tail after a crash).
    fn truncate(&mut self, file: &str, len: u64) -> Result<(), StorageError>;

    /// Removes `file`.
    fn remove(&mut self, file: &str) -> Result<(), StorageError>;

    /// Every file's name, sorted. An error when the names cannot be read
    /// (a store that cannot see its files must not take them for absent).
    fn list(&self) -> Result<Vec<String>, StorageError>;

    /// The current (volatile) length of `file`.
    fn len(&self, file: &str) -> Result<u64, StorageError>;

    /// Requests that every mutation of `file` so far become durable. Returns at
    /// once; the runtime reports completion of the token later.
    fn sync(&mut self, file: &str) -> Result<SyncToken, StorageError>;
}

pub mod contract;
mod ledger;

pub use ledger::SyncLedger;
