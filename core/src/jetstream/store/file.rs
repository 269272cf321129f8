//! [`FileStore`]: a stream's messages in block files on the shared
//! [`Storage`](crate::storage::Storage).
//!
//! A store owns every file whose name starts with its prefix:
//! `{prefix}{n}.blk` are its message blocks (see [`record`](super::record)
//! for their format) and `{prefix}meta.{generation}` its metadata. Writes go
//! to the last block; a block past `block_size_max` makes the next write
//! start a new one, which opens with a floor record (the store's first and
//! last sequence at that moment). Records are held in memory and handed to
//! the storage in one write per batch of input (at its end, or before any
//! sync or read of them): see [`FileStore::write_out`](MsgStore::write_out).
//!
//! # Removing emptied blocks
//!
//! A crash may undo a removal that was not synced, and may keep one file's
//! writes but not another's, so an emptied block goes only when nothing it
//! says can be missed:
//!
//! - the last block's floor record is durable: it covers every earlier
//!   block's floor records and highest sequence;
//! - each tombstone it holds for a message of another block is no longer
//!   needed: that block's removal is durable.
//!
//! The store learns what is durable from [`MsgStore::handle_synced`]; until
//! the stream reports completions, emptied blocks (and superseded meta
//! files) stay on disk, which is safe.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::index::{Entry, Index, PurgePlan};
use super::record::{self, Record};
use super::{file_record_size, LostData, MsgStore, PurgeRequest, SharedStorage, StoreError, StoreState, StoredMsg};
use crate::storage::{FileId, Storage as _, StorageError, StorageExt as _, SyncToken};
use crate::time::UnixNanos;

mod recover;

/// Recently written messages kept for reads, at most this many…
const CACHE_MSGS_MAX: usize = 1024;
/// …and at most this many bytes of them.
const CACHE_BYTES_MAX: u64 = 4 << 20;

/// A read that misses the caches reads ahead: the records after the one
/// asked for in the same block, up to this many bytes…
const READ_AHEAD_BYTES: u64 = 64 << 10;
/// …and this many messages, decoded from one read, so a consumer going
/// through the stream reads its block once, not once per message.
const READ_AHEAD_MSGS: usize = 256;

/// Records appended are held in memory and handed to the storage in one
/// write (see [`FileStore::write_pending`]); past this many bytes the
/// next append writes them first.
const PENDING_BYTES_MAX: usize = 256 << 10;
/// The most buffer a store keeps between writes.
const PENDING_KEPT_MAX: usize = 64 << 10;
/// New records are encoded into arenas of this many bytes (see
/// [`FileStore::arena`]).
const ARENA_BYTES: usize = 64 << 10;

/// Maps a stream (or account) name to a string safe in a file name: ASCII
/// letters, digits, `-` and `_` stay, every other byte becomes `%XX`
/// (uppercase hex). `.` is escaped too, so a prefix built from escaped names
/// joined by `.` never prefixes another stream's files.
pub fn escape_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if kept_as_is(b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Reverses [`escape_name`]; `None` for a string it could not have made.
pub fn unescape_name(escaped: &str) -> Option<String> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut bytes = escaped.bytes();
    while let Some(b) = bytes.next() {
        if kept_as_is(b) {
            out.push(b);
            continue;
        }
        let hex = |d: u8| match d {
            b'0'..=b'9' => Some(d - b'0'),
            b'A'..=b'F' => Some(d - b'A' + 10),
            _ => None,
        };
        let decoded = (b == b'%')
            .then(|| Some(hex(bytes.next()?)? << 4 | hex(bytes.next()?)?))
            .flatten()?;
        if kept_as_is(decoded) {
            return None;
        }
        out.push(decoded);
    }
    String::from_utf8(out).ok()
}

fn kept_as_is(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// What a file of a store is, from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    Block(u64),
    Meta(u64),
}

fn parse_number(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn parse_name(prefix: &str, name: &str) -> Option<FileKind> {
    let rest = name.strip_prefix(prefix)?;
    if let Some(id) = rest.strip_suffix(".blk") {
        return parse_number(id).map(FileKind::Block);
    }
    parse_number(rest.strip_prefix("meta.")?).map(FileKind::Meta)
}

/// Where a held message's record is.
#[derive(Clone, Debug)]
struct Slot {
    block: u64,
    offset: u64,
    len: u32,
    subject: Bytes,
    size: u64,
    time: UnixNanos,
}

impl Entry for Slot {
    fn subject(&self) -> &Bytes {
        &self.subject
    }
    fn size(&self) -> u64 {
        self.size
    }
}

/// Where the newest metadata generation's sync stands.
#[derive(Clone, Copy, Debug)]
enum MetaSync {
    /// Not asked for yet: the file's handle, kept for it.
    Unasked(FileId),
    /// Asked for, with this token.
    Asked(SyncToken),
}

/// One block file, as the store tracks it.
#[derive(Debug)]
struct Block {
    name: String,
    /// Its handle, open for the block's life.
    file: FileId,
    /// Bytes written (durable or not).
    len: u64,
    /// Messages held whose record is here.
    live: u64,
    /// For each other block, how many tombstones here remove its messages.
    deps: BTreeMap<u64, u64>,
    /// Where this block's first floor record ends, if it has one.
    floor_end: Option<u64>,
    /// Syncs requested and not known complete, with the length each covers.
    syncs: VecDeque<(SyncToken, u64)>,
    /// How much of the block is known durable.
    durable_len: u64,
}

impl Block {
    fn new(name: String, file: FileId, len: u64) -> Self {
        Block {
            name,
            file,
            len,
            live: 0,
            deps: BTreeMap::new(),
            floor_end: None,
            syncs: VecDeque::new(),
            durable_len: 0,
        }
    }
}

/// The last messages written, so that recent reads skip the storage,
/// ascending by sequence (each new one is the highest yet).
#[derive(Debug, Default)]
struct Cache {
    msgs: VecDeque<StoredMsg>,
    bytes: u64,
}

/// Messages read ahead of a reader (see [`READ_AHEAD_BYTES`]), ascending
/// by sequence; replaced by the next read that misses.
#[derive(Default)]
struct ReadAhead {
    msgs: Vec<StoredMsg>,
}

impl ReadAhead {
    fn get(&self, seq: u64) -> Option<&StoredMsg> {
        let i = self.msgs.binary_search_by_key(&seq, |m| m.seq).ok()?;
        Some(&self.msgs[i])
    }

    fn remove(&mut self, seq: u64) {
        if let Ok(i) = self.msgs.binary_search_by_key(&seq, |m| m.seq) {
            self.msgs.remove(i);
        }
    }
}

impl Cache {
    /// Adds `msg`, the newest message (a lower sequence is not cached:
    /// the cache stays ascending).
    fn insert(&mut self, msg: StoredMsg) {
        if self.msgs.back().is_some_and(|last| last.seq >= msg.seq) {
            return;
        }
        self.bytes += msg.size();
        self.msgs.push_back(msg);
        while self.msgs.len() > CACHE_MSGS_MAX || self.bytes > CACHE_BYTES_MAX {
            let Some(old) = self.msgs.pop_front() else {
                break;
            };
            self.bytes -= old.size();
        }
    }

    fn get(&self, seq: u64) -> Option<&StoredMsg> {
        let i = self.msgs.binary_search_by_key(&seq, |m| m.seq).ok()?;
        self.msgs.get(i)
    }

    fn remove(&mut self, seq: u64) {
        if let Ok(i) = self.msgs.binary_search_by_key(&seq, |m| m.seq) {
            if let Some(old) = self.msgs.remove(i) {
                self.bytes -= old.size();
            }
        }
    }
}

/// A message log in block files on the shared storage (a stream with
/// `storage: file`). See the [module](self) documentation for the layout
/// and [`super::record`] for the format.
pub struct FileStore {
    storage: SharedStorage,
    prefix: String,
    block_size_max: u64,
    index: Index<Slot>,
    blocks: BTreeMap<u64, Block>,
    next_block_id: u64,
    /// Blocks removed whose removal is not yet known durable, with the
    /// token of the sync that makes it so once requested.
    removing: BTreeMap<u64, Option<SyncToken>>,
    /// Blocks written or created since the last sync.
    dirty_blocks: BTreeSet<u64>,
    /// Files removed since the last sync (the directory needs one).
    names_changed: bool,
    cache: Cache,
    read_ahead: ReadAhead,
    meta_gens: BTreeSet<u64>,
    /// The newest meta generation until its sync completes: its handle
    /// until the sync is asked for, then the sync's token.
    meta_written: Option<(u64, MetaSync)>,
    /// Every sync asked for and not yet reported complete.
    syncing: BTreeSet<SyncToken>,
    lost: Option<LostData>,
    closed: bool,
    /// New messages are written compressed (`compression: "s2"`); records
    /// of either kind are read whatever this says.
    compress: bool,
    /// Records appended to block `pending_block` from offset
    /// `pending_start` on, not yet written to the storage: a batch of
    /// publishes costs one write, not one per message. They go out before
    /// any sync (so nothing is acknowledged before it was written), before
    /// a read of their range, before a write to another block, and past
    /// [`PENDING_BYTES_MAX`].
    pending: BytesMut,
    pending_block: u64,
    pending_start: u64,
    /// The last write of pending records failed (a full disk): until one
    /// succeeds, an append first tries them again and is refused if that
    /// fails, so a failing disk holds one batch, not an unbounded one.
    write_failed: bool,
    /// Room for the next records' encoding: each record is split off it,
    /// so many records (and the cache's slices of them) share one
    /// allocation.
    arena: BytesMut,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("prefix", &self.prefix)
            .field("blocks", &self.blocks.keys().collect::<Vec<_>>())
            .field("removing", &self.removing)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl FileStore {
    fn empty(storage: SharedStorage, prefix: String, first_seq: u64, block_size_max: u64) -> Self {
        FileStore {
            storage,
            prefix,
            block_size_max: block_size_max.max(1),
            index: Index::new(first_seq.max(1)),
            blocks: BTreeMap::new(),
            next_block_id: 1,
            removing: BTreeMap::new(),
            dirty_blocks: BTreeSet::new(),
            names_changed: false,
            cache: Cache::default(),
            read_ahead: ReadAhead::default(),
            meta_gens: BTreeSet::new(),
            meta_written: None,
            syncing: BTreeSet::new(),
            lost: None,
            closed: false,
            compress: false,
            pending: BytesMut::new(),
            pending_block: 0,
            pending_start: 0,
            write_failed: false,
            arena: BytesMut::new(),
        }
    }



    /// A new, empty store whose first message gets `first_seq` (0 counts
    /// as 1).
    /// Files left with this prefix (a stream deleted before its removal
    /// was durable) are removed first. Blocks roll past `block_size_max`
    /// bytes.
    pub fn create(
        storage: SharedStorage,
        prefix: String,
        first_seq: u64,
        block_size_max: u64,
    ) -> Result<FileStore, StoreError> {
        let mut store = FileStore::empty(storage, prefix, first_seq, block_size_max);
        for (name, kind) in store.own_files()? {
            match store.storage.lock().remove(&name) {
                Ok(()) | Err(StorageError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            if let FileKind::Block(id) = kind {
                store.next_block_id = store.next_block_id.max(id + 1);
            }
            store.names_changed = true;
        }
        // The first block opens with a floor record, so `first_seq`
        // survives a restart before anything is stored; a storage that
        // refuses it refuses the stream.
        store.append(&[])?;
        store.write_pending()?;
        Ok(store)
    }

    /// This store's files, by name.
    fn own_files(&self) -> Result<Vec<(String, FileKind)>, StorageError> {
        let names = self.storage.lock().list()?;
        Ok(names
            .into_iter()
            .filter_map(|name| parse_name(&self.prefix, &name).map(|kind| (name, kind)))
            .collect())
    }

    fn block_name(&self, id: u64) -> String {
        format!("{}{id}.blk", self.prefix)
    }

    fn meta_name(&self, generation: u64) -> String {
        format!("{}meta.{generation}", self.prefix)
    }

    /// Notes the syncs asked for before `error` stopped [`MsgStore::sync`]:
    /// they complete all the same.
    fn asked(&mut self, tokens: Vec<SyncToken>, error: StorageError) -> StoreError {
        self.syncing.extend(tokens);
        error.into()
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if self.closed {
            return Err(StoreError::Closed);
        }
        Ok(())
    }

    /// Appends `records` to the last block (starting a new one when it is
    /// full) and returns the block and the offset they start at. The bytes
    /// join the pending ones (see [`FileStore::pending`]); when those must
    /// go out first and cannot, the error comes back and nothing in memory
    /// changes.
    fn append(&mut self, records: &[u8]) -> Result<(u64, u64), StoreError> {
        let roll = match self.blocks.last_key_value() {
            None => true,
            Some((_, last)) => {
                last.len > 0 && last.len + records.len() as u64 > self.block_size_max
            }
        };
        let id = match self.blocks.last_key_value() {
            Some((&id, _)) if !roll => id,
            _ => self.next_block_id,
        };
        if !self.pending.is_empty()
            && (self.write_failed
                || self.pending_block != id
                || self.pending.len() + records.len() > PENDING_BYTES_MAX)
        {
            self.write_pending()?;
        }
        if roll {
            let name = self.block_name(id);
            let file = self.storage.lock().open(&name, true)?;
            self.blocks.insert(id, Block::new(name, file, 0));
            self.next_block_id = id + 1;
        }
        let (first, last, time) = (self.index.first_seq(), self.index.last_seq(), self.index.last_time());
        let block = self.blocks.get_mut(&id).expect("the block written");
        if self.pending.is_empty() {
            self.pending_block = id;
            self.pending_start = block.len;
        }
        // A block's first write starts with a floor record.
        let mut start = block.len;
        if block.floor_end.is_none() {
            let before = self.pending.len();
            record::put_floor(&mut self.pending, first, last, time);
            start += (self.pending.len() - before) as u64;
            block.floor_end = Some(start);
        }
        self.pending.extend_from_slice(records);
        block.len = start + records.len() as u64;
        self.dirty_blocks.insert(id);
        Ok((id, start))
    }

    /// Hands the pending records to the storage in one write. On an error
    /// they stay pending, to be tried again: the storage leaves no part of
    /// a failed write behind, and if its length says otherwise it is cut
    /// back to where the pending records start (a store that cannot do
    /// that closes, since its records' offsets would be wrong).
    fn write_pending(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let Some(block) = self.blocks.get(&self.pending_block) else {
            // Its block was dropped with the store's contents.
            self.pending.clear();
            self.write_failed = false;
            return Ok(());
        };
        let file = block.file;
        let mut storage = self.storage.lock();
        match storage.append(file, &self.pending) {
            Ok(offset) if offset == self.pending_start => {
                drop(storage);
                self.pending.clear();
                if self.pending.capacity() > PENDING_KEPT_MAX {
                    // A store is one of many: a rare big batch's buffer
                    // is not kept for good.
                    self.pending = BytesMut::new();
                }
                self.write_failed = false;
                Ok(())
            }
            Ok(offset) => {
                // The storage's length and ours disagree: every offset we
                // gave out for these records is wrong.
                let _ = storage.truncate(file, offset);
                drop(storage);
                self.closed = true;
                Err(StorageError::Corrupt { file: block.name.clone(), offset: self.pending_start }.into())
            }
            Err(e) => {
                let intact = match storage.len(file) {
                    Ok(len) => len == self.pending_start || storage.truncate(file, self.pending_start).is_ok(),
                    Err(_) => false,
                };
                drop(storage);
                self.write_failed = true;
                if !intact {
                    self.closed = true;
                }
                Err(e.into())
            }
        }
    }

    /// Forgets the held message `seq`, removed by a tombstone in
    /// `tombstone_block` (or by a floor record when `None`).
    fn forget(&mut self, seq: u64, tombstone_block: Option<u64>) -> bool {
        let Some(slot) = self.index.remove(seq) else {
            return false;
        };
        self.cache.remove(seq);
        self.read_ahead.remove(seq);
        if let Some(block) = self.blocks.get_mut(&slot.block) {
            block.live -= 1;
        }
        if let Some(at) = tombstone_block.filter(|&at| at != slot.block) {
            if let Some(block) = self.blocks.get_mut(&at) {
                *block.deps.entry(slot.block).or_default() += 1;
            }
        }
        true
    }

    /// Removes the blocks nothing needs any more (see the module docs).
    fn reclaim(&mut self) {
        let Some((&last_id, last)) = self.blocks.last_key_value() else {
            return;
        };
        if last.floor_end.is_none_or(|end| last.durable_len < end) {
            return;
        }
        let gone = |id: &u64| !self.blocks.contains_key(id) && !self.removing.contains_key(id);
        let removable: Vec<u64> = self
            .blocks
            .iter()
            .filter(|&(&id, b)| id != last_id && b.live == 0 && b.deps.keys().all(gone))
            .map(|(&id, _)| id)
            .collect();
        for id in removable {
            let name = self.blocks[&id].name.clone();
            match self.storage.lock().remove(&name) {
                Ok(()) | Err(StorageError::NotFound { .. }) => {}
                // Tried again on the next change.
                Err(_) => return,
            }
            self.blocks.remove(&id);
            self.dirty_blocks.remove(&id);
            self.removing.insert(id, None);
            self.names_changed = true;
        }
    }

    /// Reads the record of `seq` from its block and checks it, with the
    /// records after it in the same block (see [`READ_AHEAD_BYTES`]).
    fn read_slot(&mut self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        let Some(first) = self.index.get(seq) else {
            return Ok(None);
        };
        let (block, start) = (first.block, first.offset);
        let span: Vec<(u64, u64, u32)> = self
            .index
            .range_from(seq)
            .take(READ_AHEAD_MSGS)
            .take_while(|(_, s)| s.block == block && s.offset >= start)
            .map(|(at, s)| (at, s.offset - start, s.len))
            .take_while(|&(at, off, len)| at == seq || off + u64::from(len) <= READ_AHEAD_BYTES)
            .collect();
        let end = span.last().map_or(0, |&(_, off, len)| off + u64::from(len));
        if !self.pending.is_empty() && self.pending_block == block && start + end > self.pending_start {
            self.write_pending()?;
        }
        let Some(file) = self.blocks.get(&block).map(|b| b.file) else {
            return Err(StorageError::Corrupt { file: self.block_name(block), offset: start }.into());
        };
        let bytes = self.storage.lock().read(file, start, end as usize)?;
        let mut read = Vec::with_capacity(span.len());
        for (at, off, len) in span {
            match decode_msg_at(&bytes, at, off as usize, len as usize) {
                Some(msg) => read.push(msg),
                None if at == seq => return Err(StorageError::Corrupt { file: self.block_name(block), offset: start }.into()),
                // Found damaged when it is asked for on its own.
                None => break,
            }
        }
        let asked = read.first().cloned();
        self.read_ahead.msgs = read;
        Ok(asked)
    }

    /// Writes the stream's metadata (its config) as a new generation; the
    /// older ones are removed once a sync of the new one completes, so a
    /// crash always leaves one readable. Durable after the next
    /// [`MsgStore::sync`] completes.
    pub fn write_meta(&mut self, meta: &[u8]) -> Result<(), StoreError> {
        self.check_open()?;
        let generation = self.meta_gens.last().map_or(1, |g| g + 1);
        let name = self.meta_name(generation);
        let mut storage = self.storage.lock();
        let file = storage.open(&name, true)?;
        // A file is made, whole or not: skip its generation when it stays
        // a fragment, reads will too.
        self.meta_gens.insert(generation);
        if let Err(e) = storage.append(file, &record::encode_meta(meta)) {
            storage.close(file);
            return Err(e.into());
        }
        if let Some((_, MetaSync::Unasked(older))) = self.meta_written.replace((generation, MetaSync::Unasked(file))) {
            // Its sync is no longer needed: the newer one's covers the
            // stream, and the older is dropped after it.
            storage.close(older);
        }
        Ok(())
    }

    /// The newest intact metadata written, if any: a damaged or torn newest
    /// generation falls back to an older one.
    pub fn read_meta(&mut self) -> Result<Option<Bytes>, StoreError> {
        self.check_open()?;
        let generations: Vec<u64> = self.meta_gens.iter().rev().copied().collect();
        for generation in generations {
            let name = self.meta_name(generation);
            let Ok(bytes) = self.storage.lock().read_all(&name) else {
                continue;
            };
            if let Some(meta) = record::decode_meta(&bytes) {
                return Ok(Some(meta));
            }
        }
        Ok(None)
    }

    /// True when some metadata file is whole (as long as it was written,
    /// whether or not it reads back intact): a crash leaves a prefix of a
    /// write never synced, so a whole one was written out, and was synced
    /// if its stream was ever acknowledged.
    pub fn has_whole_meta(&mut self) -> bool {
        let generations: Vec<u64> = self.meta_gens.iter().copied().collect();
        generations.into_iter().any(|generation| {
            let name = self.meta_name(generation);
            let file = self.storage.lock().read_all(&name);
            file.is_ok_and(|f| record::meta_is_whole(&f))
        })
    }

    /// Removes the meta generations older than `newest`, now durable.
    fn drop_old_meta(&mut self, newest: u64) {
        let old: Vec<u64> = self.meta_gens.range(..newest).copied().collect();
        for generation in old {
            let name = self.meta_name(generation);
            match self.storage.lock().remove(&name) {
                Ok(()) | Err(StorageError::NotFound { .. }) => {}
                Err(_) => return,
            }
            self.meta_gens.remove(&generation);
            self.names_changed = true;
        }
    }
}

impl Drop for FileStore {
    /// Gives the store's handles back (a deleted store's are stale already).
    fn drop(&mut self) {
        let mut storage = self.storage.lock();
        for block in self.blocks.values() {
            storage.close(block.file);
        }
        if let Some((_, MetaSync::Unasked(file))) = self.meta_written {
            storage.close(file);
        }
    }
}

impl MsgStore for FileStore {
    fn record_size(&self, subject: &[u8], headers: Option<&[u8]>, payload: &[u8]) -> u64 {
        file_record_size(subject, headers, payload)
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
        self.check_open()?;
        let seq = self.index.next_seq();
        // Records are encoded one after another into a shared arena, one
        // allocation for many, and the cached copy keeps slices of it.
        let needed = record::msg_len(subject, headers, payload);
        if self.arena.capacity() < needed {
            self.arena = BytesMut::with_capacity(needed.max(ARENA_BYTES));
        }
        if self.compress {
            record::put_msg_compressed(&mut self.arena, seq, time, subject, headers, payload);
        } else {
            record::put_msg(&mut self.arena, seq, time, subject, headers, payload);
        }
        let buf = self.arena.split();
        let (block, offset) = self.append(&buf)?;
        let len = u32::try_from(buf.len()).expect("a record stays under 4 GiB");
        // The cached copy's subject, headers and payload are the record's
        // own bytes when it holds them as published (the cache is bounded
        // by size, so the record goes with them).
        let (msg_subject, msg_headers, msg_payload) =
            match record::msg_parts(buf.freeze(), subject.len(), headers.map(<[u8]>::len)) {
                Some(parts) => parts,
                None => (Bytes::copy_from_slice(subject), headers.map(Bytes::copy_from_slice), Bytes::copy_from_slice(payload)),
            };
        let msg = StoredMsg { seq, subject: msg_subject, headers: msg_headers, payload: msg_payload, time };
        // Not the record's slice: the slot outlives the cached record.
        let slot_subject = self.index.shared_subject(subject).unwrap_or_else(|| Bytes::copy_from_slice(subject));
        let slot = Slot {
            block,
            offset,
            len,
            subject: slot_subject,
            size: file_record_size(subject, headers, payload),
            time,
        };
        self.index.insert(seq, slot, time);
        self.blocks.get_mut(&block).expect("the block written").live += 1;
        self.read_ahead.remove(seq);
        self.cache.insert(msg);
        Ok(seq)
    }

    fn load(&mut self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        self.check_open()?;
        if let Some(msg) = self.cache.get(seq) {
            return Ok(Some(msg.clone()));
        }
        if let Some(msg) = self.read_ahead.get(seq) {
            return Ok(Some(msg.clone()));
        }
        self.read_slot(seq)
    }

    fn load_next(&mut self, filter: &[u8], start: u64) -> Result<Option<StoredMsg>, StoreError> {
        self.check_open()?;
        match self.index.next_matching(filter, start) {
            Some(seq) => self.load(seq),
            None => Ok(None),
        }
    }

    fn load_last(&mut self, filter: &[u8]) -> Result<Option<StoredMsg>, StoreError> {
        self.check_open()?;
        match self.index.last_matching(filter) {
            Some(seq) => self.load(seq),
            None => Ok(None),
        }
    }

    /// Appends a tombstone. The storage cannot overwrite bytes, so `erase`
    /// is recorded like a plain removal: the message's bytes stay in its
    /// block until the whole block is removed.
    fn remove(&mut self, seq: u64, _erase: bool) -> Result<bool, StoreError> {
        self.check_open()?;
        if self.index.get(seq).is_none() {
            return Ok(false);
        }
        let mut buf = BytesMut::new();
        record::put_tombstone(&mut buf, seq);
        let (block, _) = self.append(&buf)?;
        self.forget(seq, Some(block));
        self.reclaim();
        Ok(true)
    }

    fn purge(&mut self, request: &PurgeRequest) -> Result<u64, StoreError> {
        self.check_open()?;
        let removed = match self.index.plan_purge(request) {
            PurgePlan::Compact { floor, held } => {
                let (last_seq, last_time) =
                    (self.index.last_seq().max(floor - 1), self.index.last_time());
                let mut buf = BytesMut::new();
                record::put_floor(&mut buf, floor, last_seq, last_time);
                self.append(&buf)?;
                for &seq in &held {
                    self.forget(seq, None);
                }
                self.index.raise_last(last_seq, last_time);
                held.len()
            }
            PurgePlan::Remove(seqs) if seqs.is_empty() => 0,
            PurgePlan::Remove(seqs) => {
                let mut buf = BytesMut::new();
                for &seq in &seqs {
                    record::put_tombstone(&mut buf, seq);
                }
                let (block, _) = self.append(&buf)?;
                for &seq in &seqs {
                    self.forget(seq, Some(block));
                }
                seqs.len()
            }
        };
        self.reclaim();
        Ok(removed as u64)
    }

    /// Writes a floor record naming the new last sequence: recovery reads
    /// it as it reads a compaction's, so the skip survives a restart.
    fn skip_to(&mut self, next_seq: u64) -> Result<(), StoreError> {
        self.check_open()?;
        if next_seq <= self.index.next_seq() {
            return Ok(());
        }
        // The lowest held sequence, or (empty) the one after the skip.
        let lowest = self.index.first_seq();
        let first = if lowest <= self.index.last_seq() { lowest } else { next_seq };
        let time = self.index.last_time();
        let mut buf = BytesMut::new();
        record::put_floor(&mut buf, first, next_seq - 1, time);
        self.append(&buf)?;
        self.index.raise_last(next_seq - 1, time);
        Ok(())
    }

    fn state(&self) -> StoreState {
        StoreState {
            lost: self.lost.clone(),
            ..self.index.state(|slot| slot.time)
        }
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

    fn write_meta(&mut self, meta: &[u8]) -> Result<(), StoreError> {
        FileStore::write_meta(self, meta)
    }

    fn set_compression(&mut self, compress: bool) {
        self.compress = compress;
    }

    fn sync(&mut self) -> Result<Vec<SyncToken>, StoreError> {
        self.check_open()?;
        self.write_pending()?;
        let storage = Arc::clone(&self.storage);
        let mut storage = storage.lock();
        let mut tokens = Vec::new();
        while let Some(id) = self.dirty_blocks.pop_first() {
            let Some(block) = self.blocks.get_mut(&id) else { continue };
            match storage.sync(block.file) {
                Ok(token) => {
                    block.syncs.push_back((token, block.len));
                    tokens.push(token);
                }
                Err(e) => {
                    self.dirty_blocks.insert(id);
                    return Err(self.asked(tokens, e));
                }
            }
        }
        if let Some((generation, MetaSync::Unasked(file))) = self.meta_written {
            match storage.sync(file) {
                Ok(token) => {
                    storage.close(file);
                    self.meta_written = Some((generation, MetaSync::Asked(token)));
                    tokens.push(token);
                }
                Err(e) => return Err(self.asked(tokens, e)),
            }
        }
        if self.names_changed {
            match storage.sync_dir() {
                Ok(token) => {
                    self.names_changed = false;
                    for pending in self.removing.values_mut() {
                        pending.get_or_insert(token);
                    }
                    tokens.push(token);
                }
                Err(e) => return Err(self.asked(tokens, e)),
            }
        }
        self.syncing.extend(tokens.iter().copied());
        Ok(tokens)
    }

    fn write_out(&mut self) -> Result<(), StoreError> {
        self.check_open()?;
        self.write_pending()
    }

    fn syncs_outstanding(&self) -> Vec<SyncToken> {
        self.syncing.iter().copied().collect()
    }

    fn handle_synced(&mut self, tokens: &[SyncToken]) {
        let mut done: Vec<SyncToken> = tokens.iter().copied().filter(|t| self.syncing.remove(t)).collect();
        if done.is_empty() {
            return;
        }
        done.sort_unstable();
        let done = |t: &SyncToken| done.binary_search(t).is_ok();
        for block in self.blocks.values_mut() {
            // A block's syncs complete in order: the newest completed one
            // says how much of it is durable.
            if let Some(i) = block.syncs.iter().rposition(|(t, _)| done(t)) {
                block.durable_len = block.durable_len.max(block.syncs[i].1);
                block.syncs.drain(..=i);
            }
        }
        self.removing.retain(|_, pending| !pending.as_ref().is_some_and(done));
        if let Some((newest, MetaSync::Asked(requested))) = self.meta_written {
            if done(&requested) {
                self.meta_written = None;
                self.drop_old_meta(newest);
            }
        }
        self.reclaim();
    }

    fn delete(&mut self) -> Result<(), StoreError> {
        self.check_open()?;
        self.pending.clear();
        self.write_failed = false;
        let files = self.own_files()?;
        let mut storage = self.storage.lock();
        for (name, _) in &files {
            match storage.remove(name) {
                Ok(()) | Err(StorageError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        storage.sync_dir()?;
        drop(storage);
        self.closed = true;
        self.blocks.clear();
        self.removing.clear();
        self.dirty_blocks.clear();
        self.names_changed = false;
        self.meta_written = None;
        self.cache = Cache::default();
        self.read_ahead = ReadAhead::default();
        self.index = Index::new(1);
        Ok(())
    }
}

/// The message record of `seq`, `len` bytes at `offset` of `bytes`, if it
/// is whole and is that message's.
fn decode_msg_at(bytes: &[u8], seq: u64, offset: usize, len: usize) -> Option<StoredMsg> {
    match record::decode(bytes, offset)? {
        (Record::Msg { seq: found, time, subject, headers, payload }, n) if found == seq && n == len => {
            Some(StoredMsg { seq, subject, headers, payload, time })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
