//! File store: restart, crash, damage and full-disk behaviour.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;

use super::super::record;
use super::super::test_storage::TestDisk;
use crate::storage::StorageExt as _;
use super::super::tests::{assert_same, op, run_plain, Model, Op, FILTERS};
use super::*;

const PREFIX: &str = "%24G.ORDERS.";

fn create(disk: &TestDisk, block_size_max: u64) -> FileStore {
    FileStore::create(disk.shared(), PREFIX.into(), 1, block_size_max).unwrap()
}

fn open(disk: &TestDisk, block_size_max: u64) -> FileStore {
    FileStore::open(disk.shared(), PREFIX.into(), block_size_max).unwrap()
}

/// Stores a message and writes it out, as the end of the input that
/// carried it does.
fn put(store: &mut FileStore, subject: &str, payload: &str) -> u64 {
    let seq = store
        .store(subject.as_bytes(), None, payload.as_bytes(), UnixNanos(7))
        .unwrap();
    store.write_out().unwrap();
    seq
}

/// Syncs, completes every sync and reports it, as a runtime would.
fn sync_durably(disk: &TestDisk, store: &mut FileStore) {
    store.sync().unwrap();
    let tokens = disk.complete_syncs();
    store.handle_synced(&tokens);
}

fn blocks(disk: &TestDisk) -> Vec<String> {
    disk.files()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|n| n.ends_with(".blk"))
        .collect()
}

/// The offset and length of every record in `file`.
fn records_of(disk: &TestDisk, file: &str) -> Vec<(usize, usize)> {
    let bytes = disk.clone().read_all(file).unwrap();
    let mut out = Vec::new();
    let mut offset = 0;
    while let Some((_, n)) = record::decode(&bytes, offset) {
        out.push((offset, n));
        offset += n;
    }
    out
}

#[test]
fn names_escape_and_unescape() {
    assert_eq!(escape_name("ORDERS"), "ORDERS");
    assert_eq!(escape_name("$G"), "%24G");
    assert_eq!(escape_name("a.b/c é"), "a%2Eb%2Fc%20%C3%A9");
    for name in ["ORDERS", "$G", "a.b/c é", "", "%", "x-y_z"] {
        assert_eq!(unescape_name(&escape_name(name)).as_deref(), Some(name));
    }
    for bad in ["%2", "%zz", "%41", "a.b", "%2e", "%FF"] {
        assert_eq!(unescape_name(bad), None, "{bad}");
    }
    assert_eq!(
        parse_name(PREFIX, "%24G.ORDERS.12.blk"),
        Some(FileKind::Block(12))
    );
    assert_eq!(
        parse_name(PREFIX, "%24G.ORDERS.meta.3"),
        Some(FileKind::Meta(3))
    );
    assert_eq!(parse_name(PREFIX, "%24G.ORDERS.+1.blk"), None);
    assert_eq!(parse_name(PREFIX, "%24G.ORDERS2.1.blk"), None);
    assert_eq!(parse_name(PREFIX, "%24G.ORDERS%2EX.1.blk"), None);
}

#[test]
fn reopen_after_clean_close_gives_the_same_state() {
    let disk = TestDisk::default();
    let mut store = create(&disk, 300);
    for i in 0..40 {
        put(
            &mut store,
            ["a.x", "a.y", "b"][i % 3],
            &format!("payload {i}"),
        );
    }
    store.remove(5, false).unwrap();
    store.remove(33, true).unwrap();
    store
        .purge(&PurgeRequest {
            filter: Some(Bytes::from_static(b"a.y")),
            keep: Some(2),
            ..Default::default()
        })
        .unwrap();
    store
        .purge(&PurgeRequest {
            below_seq: Some(3),
            ..Default::default()
        })
        .unwrap();
    sync_durably(&disk, &mut store);
    let mut reopened = open(&disk, 300);
    assert_same(&mut store, &mut reopened);
    assert_eq!(reopened.state().lost, None);
    assert_eq!(put(&mut reopened, "c", "next"), 41);
}

#[test]
fn crash_keeps_everything_synced() {
    let disk = TestDisk::default();
    let mut store = create(&disk, 4096);
    for i in 0..10 {
        put(&mut store, "a", &format!("{i}"));
    }
    store.remove(4, false).unwrap();
    sync_durably(&disk, &mut store);
    let expected = store.state();
    for i in 0..5 {
        put(&mut store, "b", &format!("{i}"));
    }
    store.remove(6, false).unwrap();
    store.sync().unwrap(); // requested, never completed
    disk.crash(0);
    let mut recovered = open(&disk, 4096);
    assert_eq!(recovered.state(), expected);
    assert_eq!(
        recovered.load(6).unwrap().map(|m| m.payload),
        Some(Bytes::from_static(b"5"))
    );
    assert_eq!(put(&mut recovered, "c", ""), 11);
}

#[test]
fn torn_tail_is_cut_at_every_length() {
    let disk = TestDisk::default();
    let mut store = create(&disk, 1 << 20);
    for i in 0..10 {
        put(&mut store, "a", &format!("{i}"));
    }
    sync_durably(&disk, &mut store);
    let expected = store.state();
    put(&mut store, "b", "torn message");
    let name = format!("{PREFIX}1.blk");
    let (_, last_len) = *records_of(&disk, &name).last().unwrap();
    let durable_len = disk
        .files()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap()
        .1
        - last_len;
    for torn in 0..last_len {
        let disk = disk_copy_after_crash(&disk, torn);
        let mut recovered = open(&disk, 1 << 20);
        assert_eq!(recovered.state(), expected, "torn after {torn} bytes");
        assert_eq!(
            records_of(&disk, &name).iter().map(|r| r.1).sum::<usize>(),
            durable_len
        );
        assert_eq!(put(&mut recovered, "c", "after"), 11);
        let mut again = open(&disk, 1 << 20);
        assert_same(&mut recovered, &mut again);
    }
}

/// A copy of `disk` (synced content and later writes) crashed with `torn`.
fn disk_copy_after_crash(disk: &TestDisk, torn: usize) -> TestDisk {
    let copy = TestDisk::default();
    // Rebuild the copy: durable part first (synced), then the rest.
    let files = disk.files();
    let mut source = disk.clone();
    for (name, _) in &files {
        copy.raw_append(name, &source.read_all(name).unwrap());
    }
    // The copy's durable part is everything but the last message record.
    let name = format!("{PREFIX}1.blk");
    let records = records_of(&copy, &name);
    let (last_offset, _) = *records.last().unwrap();
    copy.clone()
        .with_open(&name, false, |s, file| {
            s.truncate(file, last_offset as u64)?;
            s.sync(file)
        })
        .unwrap();
    copy.complete_syncs();
    let tail = source.read_all(&name).unwrap().slice(last_offset..);
    copy.raw_append(&name, &tail);
    copy.crash(torn);
    copy
}

#[test]
fn a_flipped_bit_costs_only_its_message() {
    let disk = TestDisk::default();
    let mut store = create(&disk, 1 << 20);
    for i in 1..=20 {
        put(
            &mut store,
            if i % 2 == 0 { "even" } else { "odd" },
            &format!("message {i}"),
        );
    }
    sync_durably(&disk, &mut store);
    let name = format!("{PREFIX}1.blk");
    // Record 0 is the block's floor record; record 7 holds message 7.
    let (offset, len) = records_of(&disk, &name)[7];
    for byte in [0, 1, 4, 5, 8, 9, 12, 20, 30, len - 1] {
        for bit in [0, 3, 7] {
            disk.flip_bit(&name, offset + byte, bit);
            let mut recovered = open(&disk, 1 << 20);
            let state = recovered.state();
            assert_eq!(
                state.lost,
                Some(LostData {
                    msgs: vec![7],
                    bytes: len as u64
                }),
                "byte {byte} bit {bit}"
            );
            assert_eq!(
                (
                    state.msgs,
                    state.first_seq,
                    state.last_seq,
                    state.num_deleted
                ),
                (19, 1, 20, 1)
            );
            for seq in (1..=20).filter(|&s| s != 7) {
                let msg = recovered.load(seq).unwrap().unwrap();
                assert_eq!(msg.payload, Bytes::from(format!("message {seq}")));
            }
            assert_eq!(recovered.subject_state(b"odd"), Some((9, 1)));
            disk.flip_bit(&name, offset + byte, bit);
        }
    }
    assert_eq!(open(&disk, 1 << 20).state().lost, None);
}

#[test]
fn a_damaged_read_is_an_error_not_a_wrong_message() {
    let disk = TestDisk::default();
    let mut store = create(&disk, 1 << 20);
    for i in 0..2000 {
        put(&mut store, "a", &format!("{i}"));
    }
    let name = format!("{PREFIX}1.blk");
    let (offset, _) = records_of(&disk, &name)[1];
    disk.flip_bit(&name, offset + 30, 1);
    assert!(matches!(
        store.load(1),
        Err(StoreError::Storage(StorageError::Corrupt { .. }))
    ));
    assert_eq!(
        store.load(2).unwrap().unwrap().payload,
        Bytes::from_static(b"1")
    );
    assert_eq!(
        store.load(2000).unwrap().unwrap().payload,
        Bytes::from_static(b"1999")
    );
}

#[test]
fn reads_ahead_without_serving_what_is_gone_or_damaged() {
    let disk = TestDisk::default();
    // Small blocks, so read-ahead meets block ends.
    let mut store = create(&disk, 16 << 10);
    for i in 1..=3000 {
        put(&mut store, &format!("s.{}", i % 3), &format!("{i}"));
    }
    // The first messages left the write cache: loads read ahead.
    assert_eq!(store.load(1).unwrap().unwrap().payload, Bytes::from("1"));
    store.remove(2, false).unwrap();
    assert_eq!(store.load(2).unwrap(), None);
    // Damaged before it is read ahead: an error, its neighbours are fine.
    let second = format!("{PREFIX}2.blk");
    let (offset, _) = records_of(&disk, &second)[10];
    let bytes = disk.clone().read_all(&second).unwrap().slice(offset..);
    let Some((record::Record::Msg { seq: damaged, .. }, _)) = record::decode(&bytes, 0) else { panic!("a message") };
    disk.flip_bit(&second, offset + 30, 1);
    assert_eq!(store.load(damaged - 5).unwrap().unwrap().seq, damaged - 5);
    assert!(store.load(damaged).is_err());
    for seq in (1..=1500).filter(|&s| s != 2 && s != damaged) {
        let m = store.load(seq).unwrap().unwrap();
        assert_eq!((m.seq, m.payload), (seq, Bytes::from(seq.to_string())));
        assert_eq!(m.subject, Bytes::from(format!("s.{}", seq % 3)));
    }
    // Reopened, the damaged message is gone (or an error), never a wrong one.
    let mut fresh = open(&disk, 16 << 10);
    assert!(!matches!(fresh.load(damaged), Ok(Some(_))));
    let next = fresh.load(damaged + 1).unwrap().unwrap();
    assert_eq!(next.payload, Bytes::from((damaged + 1).to_string()));
}

#[test]
fn newest_meta_wins_and_a_damaged_one_falls_back() {
    let disk = TestDisk::default();
    let mut store = create(&disk, 4096);
    assert_eq!(store.read_meta().unwrap(), None);
    store.write_meta(b"config one").unwrap();
    sync_durably(&disk, &mut store);
    store.write_meta(b"config two").unwrap();
    assert_eq!(
        store.read_meta().unwrap().as_deref(),
        Some(&b"config two"[..])
    );
    store.sync().unwrap(); // not completed: generation 1 stays
                           // One flipped bit costs one of the two copies, not the generation…
    disk.flip_bit(&format!("{PREFIX}meta.2"), 9, 0);
    assert_eq!(
        open(&disk, 4096).read_meta().unwrap().as_deref(),
        Some(&b"config two"[..])
    );
    // …damage to both copies does.
    disk.flip_bit(&format!("{PREFIX}meta.2"), 8 + 10 + 9, 0);
    let mut reopened = open(&disk, 4096);
    assert_eq!(
        reopened.read_meta().unwrap().as_deref(),
        Some(&b"config one"[..])
    );
    // A torn newest generation falls back as well.
    reopened.write_meta(b"config three").unwrap();
    disk.clone().with_open(&format!("{PREFIX}meta.3"), false, |s, file| s.truncate(file, 5)).unwrap();
    assert_eq!(
        reopened.read_meta().unwrap().as_deref(),
        Some(&b"config one"[..])
    );
    // Once a newer generation is durable, the older ones go.
    reopened.write_meta(b"config four").unwrap();
    sync_durably(&disk, &mut reopened);
    sync_durably(&disk, &mut reopened);
    let metas: Vec<String> = disk
        .files()
        .into_iter()
        .map(|f| f.0)
        .filter(|n| n.contains("meta"))
        .collect();
    assert_eq!(metas, vec![format!("{PREFIX}meta.4")]);
    disk.crash(0);
    assert_eq!(
        open(&disk, 4096).read_meta().unwrap().as_deref(),
        Some(&b"config four"[..])
    );
}

/// With the disk full, the appends whose write failed are held (neither
/// an input's end nor a sync can write them), nothing reaches the disk,
/// and every later append is refused without changing anything; once
/// space returns the held writes go out and survive a restart.
#[test]
fn a_full_disk_holds_one_batch_then_refuses_and_recovers() {
    let disk = TestDisk::default();
    let mut store = create(&disk, 1 << 20);
    for i in 0..5 {
        put(&mut store, "a", &format!("{i}"));
    }
    sync_durably(&disk, &mut store);
    let on_disk = disk.files();
    disk.set_full(true);
    let full = |e: &StoreError| matches!(e, StoreError::Storage(StorageError::NoSpace { .. }));
    assert_eq!(store.store(b"a", None, b"held", UnixNanos(8)).unwrap(), 6);
    assert!(full(&store.write_out().unwrap_err()));
    assert!(full(&store.sync().unwrap_err()));
    let before = store.state();
    assert!(full(&store.store(b"a", None, b"refused", UnixNanos(9)).unwrap_err()));
    assert!(full(&store.remove(2, false).unwrap_err()));
    assert!(full(&store.purge(&PurgeRequest::default()).unwrap_err()));
    assert!(store.write_meta(b"m").is_err());
    assert_eq!(store.state(), before);
    assert_eq!(disk.files().iter().filter(|(n, _)| n.ends_with(".blk")).count(), 1);
    assert_eq!(disk.files()[0], on_disk[0], "nothing reached the full disk");
    assert_eq!(store.load(6).unwrap().unwrap().payload, Bytes::from_static(b"held"));
    disk.set_full(false);
    assert_eq!(put(&mut store, "a", "after"), 7);
    sync_durably(&disk, &mut store);
    let mut reopened = open(&disk, 1 << 20);
    assert_same(&mut store, &mut reopened);
    assert_eq!(reopened.load(6).unwrap().unwrap().payload, Bytes::from_static(b"held"));
}

#[test]
fn blocks_roll_and_emptied_ones_are_removed_once_safe() {
    let disk = TestDisk::default();
    let mut store = create(&disk, 200);
    for i in 0..30 {
        put(&mut store, "a", &format!("payload {i:04}"));
    }
    let rolled = blocks(&disk).len();
    assert!(rolled >= 5, "{rolled} blocks");
    // Empty the first blocks one message at a time: their tombstones land
    // in later blocks, which must outlive the blocks they point into.
    for seq in 1..=15 {
        store.remove(seq, false).unwrap();
    }
    assert!(
        blocks(&disk).contains(&format!("{PREFIX}1.blk")),
        "nothing goes before its replacement is durable"
    );
    for _ in 0..4 {
        sync_durably(&disk, &mut store);
    }
    let left = blocks(&disk);
    assert!(left.len() < rolled, "{left:?}");
    assert!(!left.contains(&format!("{PREFIX}1.blk")));
    disk.crash(0);
    let mut reopened = open(&disk, 200);
    assert_same(&mut store, &mut reopened);
    // Purging everything leaves only the last block.
    reopened.purge(&PurgeRequest::default()).unwrap();
    for _ in 0..4 {
        sync_durably(&disk, &mut reopened);
    }
    assert_eq!(blocks(&disk).len(), 1);
    disk.crash(0);
    let mut again = open(&disk, 200);
    assert_same(&mut reopened, &mut again);
    assert_eq!(put(&mut again, "a", "next"), 31);
}

#[test]
fn an_undone_block_removal_brings_nothing_back() {
    let disk = TestDisk::default();
    let mut store = create(&disk, 60);
    for i in 0..6 {
        put(&mut store, "a", &format!("{i}"));
    }
    store.remove(1, false).unwrap();
    store.remove(2, false).unwrap();
    store.write_out().unwrap();
    let first_blocks = blocks(&disk);
    // The removals become durable; the emptied blocks are removed, but
    // their removal is not synced when the crash comes.
    sync_durably(&disk, &mut store);
    assert!(blocks(&disk).len() < first_blocks.len(), "{first_blocks:?}");
    disk.crash(0);
    assert_eq!(blocks(&disk), first_blocks, "the crash undid the removals");
    let mut recovered = open(&disk, 60);
    assert_same(&mut store, &mut recovered);
    assert_eq!(recovered.load(1).unwrap(), None);
    // Recovery retries the removal once the surviving files are durable.
    sync_durably(&disk, &mut recovered);
    sync_durably(&disk, &mut recovered);
    disk.crash(0);
    assert!(blocks(&disk).len() < first_blocks.len());
    assert_same(&mut store, &mut open(&disk, 60));
}

#[test]
fn delete_removes_every_file_and_spares_other_stores() {
    let disk = TestDisk::default();
    let mut other = FileStore::create(disk.shared(), "%24G.ORDERS2.".into(), 1, 200).unwrap();
    put(&mut other, "x", "kept");
    let mut store = create(&disk, 200);
    store.write_meta(b"m").unwrap();
    for _ in 0..20 {
        put(&mut store, "a", "0123456789");
    }
    store.delete().unwrap();
    assert!(
        disk.files().iter().all(|(n, _)| !n.starts_with(PREFIX)),
        "{:?}",
        disk.files()
    );
    let mut reopened = FileStore::open(disk.shared(), "%24G.ORDERS2.".into(), 200).unwrap();
    assert_same(&mut other, &mut reopened);
}

#[test]
fn create_over_leftovers_starts_afresh() {
    let disk = TestDisk::default();
    let mut old = create(&disk, 200);
    for _ in 0..20 {
        put(&mut old, "a", "0123456789");
    }
    let mut store = FileStore::create(disk.shared(), PREFIX.into(), 5, 200).unwrap();
    assert_eq!(put(&mut store, "b", ""), 5);
    let mut reopened = open(&disk, 200);
    assert_same(&mut store, &mut reopened);
}

proptest! {
    #[test]
    fn file_store_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let disk = TestDisk::default();
        let mut store = create(&disk, 150);
        run_plain(&mut store, &ops);
        sync_durably(&disk, &mut store);
        let mut reopened = open(&disk, 150);
        assert_same(&mut store, &mut reopened);
    }

    /// Crashes at random points never lose what a completed sync covered,
    /// never bring back what it removed, and never invent anything.
    #[test]
    fn crashes_keep_what_was_durable(ops in proptest::collection::vec(op(), 1..120)) {
        run_with_crashes(&ops);
    }
}

fn run_with_crashes(ops: &[Op]) {
    let disk = TestDisk::default();
    let mut store = create(&disk, 150);
    let mut model = Model::default();
    // What the last completed sync covered.
    let mut durable = Model::default();
    let mut ever: BTreeMap<u64, (String, String)> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Store(subject) => {
                let (seq, subject, payload) = model.store(*subject);
                assert_eq!(
                    store
                        .store(subject.as_bytes(), None, payload.as_bytes(), UnixNanos(1))
                        .unwrap(),
                    seq
                );
                ever.insert(seq, (subject, payload));
            }
            Op::Remove(seq) => {
                assert_eq!(
                    store.remove(*seq, false).unwrap(),
                    model.msgs.remove(seq).is_some()
                );
            }
            Op::Purge {
                filter,
                below_seq,
                keep,
            } => {
                let request = PurgeRequest {
                    filter: filter.map(|f| Bytes::from_static(FILTERS[f as usize].as_bytes())),
                    below_seq: *below_seq,
                    keep: *keep,
                };
                assert_eq!(
                    store.purge(&request).unwrap(),
                    model.purge(*filter, *below_seq, *keep)
                );
            }
            Op::Sync(complete) => {
                store.sync().unwrap();
                if *complete {
                    // Completes earlier syncs too: the model now is durable.
                    let tokens = disk.complete_syncs();
                    store.handle_synced(&tokens);
                    durable = model.clone();
                }
            }
            Op::Crash(torn) => {
                disk.crash(*torn as usize);
                store = open(&disk, 150);
                let state = store.state();
                assert_eq!(state.lost, None);
                assert!(state.last_seq >= durable.last_seq);
                let mut recovered = Model {
                    msgs: BTreeMap::new(),
                    last_seq: state.last_seq,
                };
                for seq in durable.msgs.keys() {
                    // Durable and not removed since: must be there.
                    if model.msgs.contains_key(seq) {
                        assert!(store.load(*seq).unwrap().is_some(), "lost durable {seq}");
                    }
                }
                let mut seq = 0;
                while let Some(msg) = store.load_next(b">", seq).unwrap() {
                    let expected = ever.get(&msg.seq).expect("stored once");
                    assert_eq!(
                        (&msg.subject[..], &msg.payload[..]),
                        (expected.0.as_bytes(), expected.1.as_bytes())
                    );
                    let durably_gone =
                        msg.seq <= durable.last_seq && !durable.msgs.contains_key(&msg.seq);
                    assert!(!durably_gone, "{} came back", msg.seq);
                    recovered.msgs.insert(msg.seq, expected.clone());
                    seq = msg.seq + 1;
                }
                ever.retain(|&s, _| s <= state.last_seq);
                // What survived beyond the durable snapshot is not durable
                // itself: the snapshot stays as it was.
                model = recovered;
            }
        }
        model.check(&mut store);
    }
}

#[test]
fn a_flipped_bit_in_the_last_synced_record_is_reported_lost_and_its_seq_never_reused() {
    let disk = TestDisk::default();
    let mut store = create(&disk, 1 << 20);
    for i in 0..3 {
        put(&mut store, "a", &format!("payload {i}"));
    }
    sync_durably(&disk, &mut store);
    let name = format!("{PREFIX}1.blk");
    let &(offset, len) = records_of(&disk, &name).last().unwrap();
    // A bit of the payload of message 3, which was durable (acknowledged).
    disk.flip_bit(&name, offset + len - 2, 3);
    let mut reopened = open(&disk, 1 << 20);
    let state = reopened.state();
    assert_eq!(state.last_seq, 3, "{state:?}");
    assert_eq!(state.lost.map(|l| l.msgs), Some(vec![3]));
    assert_eq!(reopened.load(3).unwrap(), None);
    assert_eq!(put(&mut reopened, "a", "next"), 4);
}

#[test]
fn any_flipped_bit_of_the_last_synced_record_costs_that_record_only() {
    for bit in 0..(9 + 24 + 1 + 9) * 8 {
        let disk = TestDisk::default();
        let mut store = create(&disk, 1 << 20);
        for i in 0..3 {
            put(&mut store, "a", &format!("payload {i}"));
        }
        sync_durably(&disk, &mut store);
        let name = format!("{PREFIX}1.blk");
        let &(offset, len) = records_of(&disk, &name).last().unwrap();
        if bit / 8 >= len {
            break;
        }
        disk.flip_bit(&name, offset + bit / 8, (bit % 8) as u8);
        let mut reopened = open(&disk, 1 << 20);
        let state = reopened.state();
        assert_eq!((state.msgs, state.last_seq), (2, 3), "bit {bit}: {state:?}");
        assert_eq!(state.lost.map(|l| l.msgs), Some(vec![3]), "bit {bit}");
        assert_eq!(put(&mut reopened, "a", "next"), 4, "bit {bit}");
        // And again after another restart, with the damage in the middle.
        sync_durably(&disk, &mut reopened);
        let again = open(&disk, 1 << 20).state();
        assert_eq!((again.msgs, again.last_seq), (3, 4), "bit {bit}: {again:?}");
        assert_eq!(again.lost.map(|l| l.msgs), Some(vec![3]), "bit {bit}");
    }
}

/// Appends wait in memory until an input's end, a sync or a read of
/// their range writes them, all in one write.
#[test]
fn appends_are_held_until_written_out_then_go_in_one_write() {
    let disk = TestDisk::default();
    let mut store = create(&disk, 1 << 20);
    let name = format!("{PREFIX}1.blk");
    let len = |disk: &TestDisk| disk.files().into_iter().find(|(n, _)| *n == name).map_or(0, |(_, l)| l);
    let empty = len(&disk);
    for i in 0..3 {
        store.store(b"a", None, format!("{i}").as_bytes(), UnixNanos(7)).unwrap();
    }
    assert_eq!(len(&disk), empty, "nothing written before the input's end");
    store.write_out().unwrap();
    assert_eq!(records_of(&disk, &name).len(), 4, "the floor record and three messages");
    store.store(b"a", None, b"3", UnixNanos(7)).unwrap();
    sync_durably(&disk, &mut store);
    assert_eq!(records_of(&disk, &name).len(), 5, "a sync writes first");
    // More than the cache holds, none written: reading the oldest of them
    // writes them out first.
    for i in 0..CACHE_MSGS_MAX + 10 {
        store.store(b"b", None, format!("m{i}").as_bytes(), UnixNanos(8)).unwrap();
    }
    let oldest = store.load(5).unwrap().unwrap();
    assert_eq!(oldest.payload, Bytes::from_static(b"m0"));
    assert_same(&mut store, &mut open(&disk, 1 << 20));
}
