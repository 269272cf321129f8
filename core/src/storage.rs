//! Disk behind a trait with an explicit durability barrier.
//!
//! JetStream's store and the resolver's JWT directory read and write through
//! [`Storage`]: a flat namespace of named files, each an append-only byte
//! sequence that can also be read at an offset, truncated, renamed and
//! removed. A file is used through a [`FileId`] from [`Storage::open`], so
//! the hot path (a stream appending to its block) looks no name up. The
//! production runtime maps a name to a real file under its directory; the
//! simulator keeps files in memory and injects crashes, torn writes, bit
//! flips and full disks.
//!
//! # Handles
//!
//! [`Storage::open`] gives a handle on a file (creating it when asked);
//! opening a file already open gives the same handle, counted, and
//! [`Storage::close`] gives one count back. A handle follows its file
//! through a rename. Once the file is removed, replaced by a rename, or
//! closed as often as it was opened, the handle is stale: every call with
//! it is refused with [`StorageError::StaleHandle`], even after its slot
//! serves another file (a handle carries the generation of its slot).
//!
//! # Durability contract
//!
//! Every mutation ([`Storage::append`], [`Storage::truncate`],
//! [`Storage::remove`], [`Storage::rename`], and the creation of a file by
//! [`Storage::open`]) is *volatile* when the call returns: later calls see
//! it, but a crash may lose it. A sync asks for some of them to be made
//! durable and returns a [`SyncToken`] at once; the runtime reports the
//! completion later as an input to the core. Until that completion
//! arrives, nothing covered by the sync may be assumed to survive a crash,
//! so nothing that depends on it (a PubAck, a Raft vote) may be sent.
//!
//! - [`Storage::sync`] covers every write and truncation of its file made
//!   before the call, and the name the file has then: its creation, or the
//!   rename that gave it that name. That makes group commit natural: append
//!   a batch of messages, sync once, and release every ack of the batch
//!   when the one token completes.
//! - [`Storage::sync_dir`] covers every creation, removal and rename made
//!   before the call.
//! - Tokens are issued in increasing order. Every token completes exactly
//!   once and is reported on its own. The tokens of one file complete in
//!   the order they were issued, and so do the directory's; those of
//!   different files complete in any order, so a slow sync of one file
//!   holds back no other file's. (A file's syncs asked for under its name
//!   before a rename and under its new name after count as two files'.) A caller that needs every sync up to some
//!   point done (an answer that must follow all writes before it) keeps
//!   the tokens it has outstanding and waits until none at or below that
//!   point is left ([`SyncLedger`]).
//! - After a crash, a file holds exactly its content as of its last
//!   completed sync, plus possibly a prefix of later writes, and the last
//!   write may be torn (partly present). Checksums above this layer must
//!   detect both, and bit flips on read.
//! - Creations, removals and renames not covered by a completed sync may
//!   be undone by a crash, the newest first: what survives of them is a
//!   prefix of the order they were made in. A rename is atomic: after a
//!   crash the file is under its old name or its new one, and a file it
//!   replaced is either still there or gone, never half of each.
//! - Names are plain file names ([`plain_name`]).
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

/// An open file of a [`Storage`]: the slot of its table and the
/// generation the slot was in when the file was opened, so a handle kept
/// past its file's end never reaches the file that takes the slot next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId {
    slot: u32,
    generation: u32,
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}.{}", self.slot, self.generation)
    }
}

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
    /// The handle's file was closed, removed or replaced.
    #[error("stale file handle {handle}")]
    StaleHandle {
        /// The handle used.
        handle: FileId,
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

/// Files in one flat namespace, used through handles, with explicit syncs.
/// See the module documentation for the handles' rules and the durability
/// contract every implementation keeps.
pub trait Storage {
    /// A handle on `file`. When it does not exist it is created (empty) if
    /// `create`, and refused as `NotFound` if not. A file already open
    /// gives its handle again, counted (see [`Storage::close`]).
    fn open(&mut self, file: &str, create: bool) -> Result<FileId, StorageError>;

    /// Gives back one count of `file`'s handle; with the last one the
    /// handle goes stale. A stale handle is ignored. Closing makes nothing
    /// durable and cancels no sync.
    fn close(&mut self, file: FileId);

    /// Appends `data` to `file` and returns the offset at which it starts.
    /// On an error nothing of `data` is left in the file.
    fn append(&mut self, file: FileId, data: &[u8]) -> Result<u64, StorageError>;

    /// Reads `len` bytes of `file` starting at `offset`.
    fn read(&mut self, file: FileId, offset: u64, len: usize) -> Result<Bytes, StorageError>;

    /// Cuts `file` down to `len` bytes (used to drop a torn tail after a crash).
    fn truncate(&mut self, file: FileId, len: u64) -> Result<(), StorageError>;

    /// The current (volatile) length of `file`.
    fn len(&self, file: FileId) -> Result<u64, StorageError>;

    /// Requests that every write and truncation of `file` so far, and its
    /// name, become durable. Returns at once; the runtime reports the
    /// token's completion later.
    fn sync(&mut self, file: FileId) -> Result<SyncToken, StorageError>;

    /// Removes the file named `file`; its handle goes stale.
    fn remove(&mut self, file: &str) -> Result<(), StorageError>;

    /// Gives the file named `from` the name `to`, replacing a file of that
    /// name (whose handle goes stale); `from`'s handle follows the file.
    fn rename(&mut self, from: &str, to: &str) -> Result<(), StorageError>;

    /// Every file's name, sorted. An error when the names cannot be read
    /// (a store that cannot see its files must not take them for absent).
    fn list(&self) -> Result<Vec<String>, StorageError>;

    /// Requests that every creation, removal and rename so far become
    /// durable. Returns at once, like [`Storage::sync`].
    fn sync_dir(&mut self) -> Result<SyncToken, StorageError>;
}

/// Whole-file conveniences over [`Storage`], for the callers that touch a
/// file once (metadata, a JWT, a test): each opens and closes its handle.
pub trait StorageExt: Storage {
    /// The whole content of the file named `file`.
    fn read_all(&mut self, file: &str) -> Result<Bytes, StorageError> {
        self.with_open(file, false, |s, id| {
            let len = usize::try_from(s.len(id)?).unwrap_or(usize::MAX);
            s.read(id, 0, len)
        })
    }

    /// Appends `data` to the file named `file`, creating it if absent;
    /// returns the offset at which `data` starts.
    fn append_to(&mut self, file: &str, data: &[u8]) -> Result<u64, StorageError> {
        self.with_open(file, true, |s, id| s.append(id, data))
    }

    /// Writes the file named `file` anew with `data` (created if absent,
    /// emptied first if not) and asks for it to be synced.
    fn write_synced(&mut self, file: &str, data: &[u8]) -> Result<SyncToken, StorageError> {
        self.with_open(file, true, |s, id| {
            if s.len(id)? > 0 {
                s.truncate(id, 0)?;
            }
            s.append(id, data)?;
            s.sync(id)
        })
    }

    /// The length of the file named `file`.
    fn len_of(&mut self, file: &str) -> Result<u64, StorageError> {
        self.with_open(file, false, |s, id| s.len(id))
    }

    /// Runs `f` on a handle of `file`, closed again after.
    fn with_open<T>(
        &mut self,
        file: &str,
        create: bool,
        f: impl FnOnce(&mut Self, FileId) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let id = self.open(file, create)?;
        let out = f(self, id);
        self.close(id);
        out
    }
}

impl<S: Storage + ?Sized> StorageExt for S {}

pub mod contract;
mod ledger;
mod mem;
mod names;
mod open_files;

pub use ledger::SyncLedger;
pub use mem::MemStorage;
pub use names::NameLog;
pub use open_files::OpenFiles;
