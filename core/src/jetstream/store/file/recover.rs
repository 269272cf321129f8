//! Rebuilding a [`FileStore`] from its files after a restart or a crash.
//!
//! Every block is read in order and every record's crc checked. A damaged
//! stretch in the middle costs only the records in it: the scan resumes at
//! the next offset where an intact record starts. A torn tail of the last
//! block (a record whose length runs past the end of the file) is what a
//! crash leaves of writes never synced, so it is cut; a torn tail of an
//! earlier block is left as is. A whole record failing its crc at the end
//! of the last block is damage, not a torn write (a crash keeps a prefix of
//! what was written): the sequence it held is reported lost and never
//! given out again, so an acknowledged sequence cannot come back holding
//! another message. One flipped bit in a length field, which makes a whole
//! record look torn, is told apart by its crc. The sequences that fall in
//! a damaged stretch (between the last one seen before it and the next one
//! seen after) and are not removed later are reported in
//! [`StoreState::lost`](super::StoreState::lost).
//!
//! A record embedded in a damaged record's payload could pass for a real
//! one when the scan resumes; the crc makes that chance negligible for
//! random damage, not for payloads crafted to look like records.

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::storage::{FileId, Storage as _, StorageError};

use super::super::record::{self, Record};
use super::super::{file_record_size, LostData, SharedStorage, StoreError};
use super::{parse_name, Block, FileKind, FileStore, Slot};

/// What the scan learned about damage so far.
#[derive(Debug, Default)]
struct Damage {
    /// The highest sequence any record read so far names.
    max_seq: u64,
    /// The highest floor read so far.
    floor: u64,
    /// The first sequence of an open damaged stretch, waiting for the next
    /// sequence seen to close it.
    open_from: Option<u64>,
    /// Closed stretches of sequences that may be lost, inclusive.
    ranges: Vec<(u64, u64)>,
    /// Sequences removed by tombstones read after some damage.
    removed_after: BTreeSet<u64>,
    bytes: u64,
}

impl Damage {
    fn found(&mut self, bytes: u64) {
        self.bytes += bytes;
        self.open_from.get_or_insert(self.max_seq + 1);
    }

    /// Every sequence up to `hi` is accounted for by what was read since.
    fn close(&mut self, hi: u64) {
        if let Some(lo) = self.open_from.take() {
            if hi >= lo {
                self.ranges.push((lo, hi));
            }
        }
    }

    fn into_lost(self, held: impl Fn(u64) -> bool) -> Option<LostData> {
        if self.bytes == 0 {
            return None;
        }
        let msgs = self
            .ranges
            .iter()
            .flat_map(|&(lo, hi)| lo.max(self.floor)..=hi)
            .filter(|seq| !self.removed_after.contains(seq) && !held(*seq))
            .collect();
        Some(LostData {
            msgs,
            bytes: self.bytes,
        })
    }
}

impl FileStore {
    /// Rebuilds the store from the files whose names start with `prefix`
    /// (an empty store starting at sequence 1 when there are none). Every
    /// file is marked for the next [`sync`](super::MsgStore::sync), since
    /// what survived a crash is not known durable.
    pub fn open(
        storage: SharedStorage,
        prefix: String,
        block_size_max: u64,
    ) -> Result<FileStore, StoreError> {
        let mut store = FileStore::empty(storage, prefix, 1, block_size_max);
        let mut block_ids = Vec::new();
        for (_, kind) in store.own_files()? {
            match kind {
                FileKind::Block(id) => block_ids.push(id),
                FileKind::Meta(generation) => {
                    store.meta_gens.insert(generation);
                }
            }
        }
        block_ids.sort_unstable();
        let mut damage = Damage::default();
        for (i, &id) in block_ids.iter().enumerate() {
            store.recover_block(id, i + 1 == block_ids.len(), &mut damage)?;
            store.next_block_id = id + 1;
        }
        damage.close(store.index.last_seq());
        store.lost = damage.into_lost(|seq| store.index.get(seq).is_some());
        store.dirty_blocks = store.blocks.keys().copied().collect();
        Ok(store)
    }

    /// Opens block file `name` and reads it whole.
    fn read_block(&self, name: &str) -> Result<(FileId, Bytes), StoreError> {
        let mut storage = self.storage.lock();
        let file = storage.open(name, false)?;
        let read = storage.len(file).and_then(|len| {
            let len = usize::try_from(len).map_err(|_| StorageError::OutOfRange {
                file: name.to_owned(),
                offset: 0,
                len,
                file_len: len,
            })?;
            storage.read(file, 0, len)
        });
        match read {
            Ok(bytes) => Ok((file, bytes)),
            Err(e) => {
                storage.close(file);
                Err(e.into())
            }
        }
    }

    fn recover_block(
        &mut self,
        id: u64,
        is_last: bool,
        damage: &mut Damage,
    ) -> Result<(), StoreError> {
        let name = self.block_name(id);
        debug_assert_eq!(parse_name(&self.prefix, &name), Some(FileKind::Block(id)));
        let (file, buf) = self.read_block(&name)?;
        self.blocks.insert(id, Block::new(name, file, buf.len() as u64));
        let mut offset = 0;
        while offset < buf.len() {
            if let Some((record, len)) = record::decode(&buf, offset) {
                self.apply(id, offset as u64, len, record, damage);
                offset += len;
                continue;
            }
            let resume = (offset + 1..buf.len()).find(|&at| record::decode(&buf, at).is_some());
            match resume {
                Some(at) => {
                    damage.found((at - offset) as u64);
                    offset = at;
                }
                None => {
                    let torn = record::is_torn(&buf, offset)
                        && !record::is_whole_but_its_length(&buf, offset);
                    if torn && is_last {
                        self.storage.lock().truncate(file, offset as u64)?;
                        self.blocks.get_mut(&id).expect("inserted above").len = offset as u64;
                    } else if !torn {
                        // A whole record failing its crc is damage, wherever
                        // it is: at the very end of the store it held the next
                        // sequence, which may have been acknowledged, so that
                        // sequence is lost and never given out again.
                        damage.found((buf.len() - offset) as u64);
                        if is_last {
                            self.lose_tail(damage);
                        }
                    }
                    // A sealed block's tail torn by a crash held writes never
                    // synced (the next block's floor record still counts their
                    // sequences).
                    break;
                }
            }
        }
        Ok(())
    }

    /// The damaged record at the end of the last block held the sequence
    /// after the highest one read: it is lost, and consumed.
    fn lose_tail(&mut self, damage: &mut Damage) {
        let seq = damage.max_seq.max(self.index.last_seq()) + 1;
        damage.open_from = Some(seq);
        damage.close(seq);
        damage.max_seq = seq;
        let time = self.index.last_time();
        self.index.raise_last(seq, time);
    }

    fn apply(&mut self, id: u64, offset: u64, len: usize, record: Record, damage: &mut Damage) {
        match record {
            Record::Msg {
                seq,
                time,
                subject,
                headers,
                payload,
            } => {
                damage.close(seq.saturating_sub(1));
                damage.max_seq = damage.max_seq.max(seq);
                if seq < damage.floor {
                    return;
                }
                let slot = Slot {
                    block: id,
                    offset,
                    len: u32::try_from(len).expect("decoded records are under 4 GiB"),
                    size: file_record_size(&subject, headers.as_deref(), &payload),
                    subject,
                    time,
                };
                if let Some(old) = self.index.insert(seq, slot, time) {
                    self.blocks
                        .get_mut(&old.block)
                        .expect("held in a block")
                        .live -= 1;
                }
                self.blocks.get_mut(&id).expect("being read").live += 1;
            }
            Record::Tombstone { seq } => {
                damage.max_seq = damage.max_seq.max(seq);
                if damage.bytes > 0 {
                    damage.removed_after.insert(seq);
                }
                let time = self.index.last_time();
                self.index.raise_last(seq, time);
                self.forget(seq, Some(id));
            }
            Record::Floor {
                first_seq,
                last_seq,
                last_time,
            } => {
                damage.close(last_seq);
                damage.max_seq = damage.max_seq.max(last_seq);
                damage.floor = damage.floor.max(first_seq);
                for seq in self.index.held_below(first_seq) {
                    self.forget(seq, None);
                }
                self.index.raise_last(last_seq, last_time);
                let block = self.blocks.get_mut(&id).expect("being read");
                block.floor_end.get_or_insert(offset + len as u64);
            }
        }
    }
}
