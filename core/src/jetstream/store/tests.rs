//! Behaviour both stores share, checked on each, and a model-based
//! property test.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;

use super::test_storage::TestDisk;
use super::*;

/// Runs `check` on a memory store and on a file store with small blocks
/// (and, for the file store, checks a reopen sees the same store).
pub(super) fn on_both_stores(first_seq: u64, check: impl Fn(&mut dyn MsgStore)) {
    check(&mut MemStore::new(first_seq));
    let disk = TestDisk::default();
    let mut file = FileStore::create(disk.shared(), "T.".into(), first_seq, 256).unwrap();
    check(&mut file);
    // What an input's end does: held writes go to the storage.
    file.write_out().unwrap();
    let mut reopened = FileStore::open(disk.shared(), "T.".into(), 256).unwrap();
    assert_same(&mut file, &mut reopened);
}

/// Panics unless both stores hold the same messages and figures.
pub(super) fn assert_same(a: &mut dyn MsgStore, b: &mut dyn MsgStore) {
    assert_eq!(a.state(), b.state());
    assert_eq!(a.deleted(), b.deleted());
    assert_eq!(a.subject_counts(b">"), b.subject_counts(b">"));
    let mut seq = a.state().first_seq;
    while let Some(msg) = a.load_next(b">", seq).unwrap() {
        assert_eq!(Some(&msg), b.load(msg.seq).unwrap().as_ref());
        seq = msg.seq + 1;
    }
}

fn put(store: &mut dyn MsgStore, subject: &str, payload: &str) -> u64 {
    let time = UnixNanos(1_000 + store.state().last_seq as i64);
    store
        .store(subject.as_bytes(), None, payload.as_bytes(), time)
        .unwrap()
}

fn seq_of(msg: Option<StoredMsg>) -> Option<u64> {
    msg.map(|m| m.seq)
}

/// foo.a foo.b bar.c foo.a bar.c foo.b.x: sequences 1..=6.
fn fill(store: &mut dyn MsgStore) {
    for subject in ["foo.a", "foo.b", "bar.c", "foo.a", "bar.c", "foo.b.x"] {
        put(store, subject, subject);
    }
}

fn purge(
    store: &mut dyn MsgStore,
    filter: Option<&str>,
    below_seq: Option<u64>,
    keep: Option<u64>,
) -> u64 {
    let request = PurgeRequest {
        filter: filter.map(|f| Bytes::copy_from_slice(f.as_bytes())),
        below_seq,
        keep,
    };
    store.purge(&request).unwrap()
}

#[test]
fn stores_and_loads_messages_with_their_fields() {
    on_both_stores(1, |store| {
        let t = UnixNanos(42);
        assert_eq!(store.store(b"a", None, b"one", t).unwrap(), 1);
        assert_eq!(store.store(b"b", Some(b""), b"", t).unwrap(), 2);
        assert_eq!(
            store
                .store(b"c", Some(b"NATS/1.0\r\nk: v\r\n\r\n"), b"3", t)
                .unwrap(),
            3
        );
        let one = store.load(1).unwrap().unwrap();
        assert_eq!(
            (
                one.seq,
                &one.subject[..],
                one.headers,
                &one.payload[..],
                one.time
            ),
            (1, &b"a"[..], None, &b"one"[..], t)
        );
        assert_eq!(store.load(2).unwrap().unwrap().headers, Some(Bytes::new()));
        assert_eq!(store.load(4).unwrap(), None);
        assert_eq!(store.load(0).unwrap(), None);
        let state = store.state();
        assert_eq!(
            (
                state.msgs,
                state.first_seq,
                state.last_seq,
                state.num_subjects
            ),
            (3, 1, 3, 3)
        );
        assert_eq!((state.first_time, state.last_time), (t, t));
    });
}

/// Stores a message without headers, one with empty headers and one with
/// headers; returns `state().bytes`.
fn bytes_of_three(store: &mut dyn MsgStore) -> u64 {
    let t = UnixNanos(42);
    store.store(b"a", None, b"one", t).unwrap();
    store.store(b"b", Some(b""), b"", t).unwrap();
    store.store(b"c", Some(b"NATS/1.0\r\nk: v\r\n\r\n"), b"3", t).unwrap();
    store.state().bytes
}

/// `state.bytes` is what nats-server reports for the same messages: its
/// memory store counts subject + headers + payload + 16, its file store
/// the record as it lays it out (22 + subject + payload + an 8-byte
/// checksum, + 4 + headers when there are headers). nats-py's own test
/// expects 47 bytes for "Hello world!" on "world" in a file stream.
#[test]
fn bytes_are_counted_as_nats_server_counts_them() {
    let mem = bytes_of_three(&mut MemStore::new(1));
    assert_eq!(mem, (1 + 3 + 16) + (1 + 16) + (1 + 18 + 1 + 16));
    let disk = TestDisk::default();
    let mut file = FileStore::create(disk.shared(), "T.".into(), 1, 256).unwrap();
    assert_eq!(bytes_of_three(&mut file), (22 + 1 + 3 + 8) + (22 + 1 + 8) + (22 + 1 + 4 + 18 + 1 + 8));
    // Recovery counts the same.
    file.write_out().unwrap();
    let reopened = FileStore::open(disk.shared(), "T.".into(), 256).unwrap();
    assert_eq!(reopened.state().bytes, file.state().bytes);
    assert_eq!(file_record_size(b"world", None, b"Hello world!"), 47);
}

#[test]
fn first_sequence_is_configurable() {
    on_both_stores(10, |store| {
        let state = store.state();
        assert_eq!((state.first_seq, state.last_seq, state.msgs), (10, 9, 0));
        assert_eq!(put(store, "a", "x"), 10);
        assert_eq!(store.state().first_seq, 10);
    });
}

#[test]
fn load_next_and_last_follow_wildcard_filters() {
    on_both_stores(1, |store| {
        fill(store);
        assert_eq!(seq_of(store.load_next(b">", 1).unwrap()), Some(1));
        assert_eq!(seq_of(store.load_next(b"", 4).unwrap()), Some(4));
        assert_eq!(seq_of(store.load_next(b"foo.*", 2).unwrap()), Some(2));
        assert_eq!(seq_of(store.load_next(b"foo.*", 5).unwrap()), None);
        assert_eq!(seq_of(store.load_next(b"foo.>", 5).unwrap()), Some(6));
        assert_eq!(seq_of(store.load_next(b"*.c", 1).unwrap()), Some(3));
        assert_eq!(seq_of(store.load_next(b"foo.a", 2).unwrap()), Some(4));
        assert_eq!(seq_of(store.load_next(b"nope", 1).unwrap()), None);
        assert_eq!(seq_of(store.load_last(b">").unwrap()), Some(6));
        assert_eq!(seq_of(store.load_last(b"foo.*").unwrap()), Some(4));
        assert_eq!(seq_of(store.load_last(b"*.c").unwrap()), Some(5));
        assert_eq!(seq_of(store.load_last(b"bar.c").unwrap()), Some(5));
        assert_eq!(seq_of(store.load_last(b"x.>").unwrap()), None);
    });
}

#[test]
fn load_next_finds_a_sparse_wildcard_match_past_the_scan() {
    on_both_stores(1, |store| {
        for _ in 0..300 {
            put(store, "a.x", "");
        }
        put(store, "b.y", "");
        assert_eq!(seq_of(store.load_next(b"b.*", 1).unwrap()), Some(301));
        assert_eq!(seq_of(store.load_next(b"*.x", 300).unwrap()), Some(300));
        assert_eq!(seq_of(store.load_next(b"c.*", 1).unwrap()), None);
    });
}

#[test]
fn remove_forgets_a_message_and_counts_the_gap() {
    on_both_stores(1, |store| {
        fill(store);
        assert!(store.remove(3, false).unwrap());
        assert!(!store.remove(3, false).unwrap());
        assert!(!store.remove(99, false).unwrap());
        assert!(store.remove(5, true).unwrap());
        assert_eq!(store.load(3).unwrap(), None);
        let state = store.state();
        assert_eq!(
            (state.msgs, state.num_deleted, state.num_subjects),
            (4, 2, 3)
        );
        assert_eq!(store.deleted(), vec![3, 5]);
        assert_eq!(store.subject_state(b"bar.c"), None);
        assert!(store.remove(1, false).unwrap());
        assert_eq!(store.state().first_seq, 2);
        assert_eq!(store.deleted(), vec![3, 5]);
        assert_eq!(store.subject_state(b"foo.a"), Some((1, 4)));
        assert!(store.remove(6, false).unwrap());
        let state = store.state();
        assert_eq!((state.last_seq, state.num_deleted), (6, 3));
        assert_eq!(put(store, "z", ""), 7);
    });
}

#[test]
fn purge_everything_moves_first_past_last() {
    on_both_stores(1, |store| {
        fill(store);
        assert_eq!(purge(store, None, None, None), 6);
        let state = store.state();
        assert_eq!(
            (
                state.msgs,
                state.bytes,
                state.first_seq,
                state.last_seq,
                state.num_deleted
            ),
            (0, 0, 7, 6, 0)
        );
        assert_eq!(state.first_time, UnixNanos(0));
        assert_eq!(purge(store, Some(">"), None, None), 0);
        assert_eq!(put(store, "a", ""), 7);
    });
}

#[test]
fn purge_below_a_sequence_compacts_even_past_the_end() {
    on_both_stores(1, |store| {
        fill(store);
        store.remove(2, false).unwrap();
        assert_eq!(purge(store, None, Some(4), None), 2);
        assert_eq!(store.state().first_seq, 4);
        assert_eq!(purge(store, None, Some(2), None), 0);
        assert_eq!(purge(store, None, Some(10), None), 3);
        let state = store.state();
        assert_eq!((state.first_seq, state.last_seq, state.msgs), (10, 9, 0));
        assert_eq!(put(store, "a", ""), 10);
    });
}

#[test]
fn purge_by_subject_keep_and_sequence() {
    on_both_stores(1, |store| {
        fill(store);
        assert_eq!(purge(store, Some("foo.a"), None, Some(1)), 1);
        assert_eq!(store.subject_state(b"foo.a"), Some((1, 4)));
        assert_eq!(purge(store, Some("foo.>"), Some(6), None), 2);
        assert_eq!(
            store.subject_counts(b"foo.>"),
            BTreeMap::from([(Bytes::from_static(b"foo.b.x"), 1)])
        );
        assert_eq!(purge(store, None, None, Some(1)), 2);
        let state = store.state();
        assert_eq!((state.msgs, state.first_seq, state.num_deleted), (1, 6, 0));
        assert_eq!(purge(store, Some("*.c"), None, None), 0);
    });
}

#[test]
fn subject_counts_and_state_track_subjects() {
    on_both_stores(1, |store| {
        fill(store);
        let counts = store.subject_counts(b"foo.*");
        assert_eq!(
            counts,
            BTreeMap::from([
                (Bytes::from_static(b"foo.a"), 2),
                (Bytes::from_static(b"foo.b"), 1)
            ])
        );
        assert_eq!(store.subject_counts(b">").len(), 4);
        assert_eq!(store.subject_counts(b"bar.c").len(), 1);
        assert_eq!(store.state().num_subjects, 4);
        assert_eq!(store.subject_state(b"bar.c"), Some((2, 3)));
        store.remove(3, false).unwrap();
        assert_eq!(store.subject_state(b"bar.c"), Some((1, 5)));
        assert_eq!(store.subject_state(b"bar.*"), None);
    });
}

#[test]
fn deleted_stores_refuse_use() {
    let disk = TestDisk::default();
    let file = FileStore::create(disk.shared(), "T.".into(), 1, 256).unwrap();
    let stores: [Box<dyn MsgStore>; 2] = [Box::new(MemStore::new(1)), Box::new(file)];
    for mut store in stores {
        fill(store.as_mut());
        store.delete().unwrap();
        assert_eq!(
            store.store(b"a", None, b"", UnixNanos(0)),
            Err(StoreError::Closed)
        );
        assert_eq!(store.load(1), Err(StoreError::Closed));
        assert_eq!(store.sync(), Err(StoreError::Closed));
    }
}

/// A store operation the property tests draw.
#[derive(Clone, Debug)]
pub(super) enum Op {
    Store(u8),
    Remove(u64),
    Purge {
        filter: Option<u8>,
        below_seq: Option<u64>,
        keep: Option<u64>,
    },
    /// Sync and, when true, report the completion.
    Sync(bool),
    /// Crash keeping this many unsynced bytes per file, then reopen.
    Crash(u16),
}

const SUBJECTS: [&str; 4] = ["a.x", "a.y", "b.x", "c"];
pub(super) const FILTERS: [&str; 5] = [">", "a.*", "*.x", "c", "a.>"];

pub(super) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4u8).prop_map(Op::Store),
        3 => (0..40u64).prop_map(Op::Remove),
        1 => (proptest::option::of(0..5u8), proptest::option::of(0..45u64), proptest::option::of(0..4u64))
            .prop_map(|(filter, below_seq, keep)| Op::Purge { filter, below_seq, keep }),
        2 => any::<bool>().prop_map(Op::Sync),
        1 => (0..200u16).prop_map(Op::Crash),
    ]
}

/// What a store should hold: messages by sequence and the last sequence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Model {
    pub(super) msgs: BTreeMap<u64, (String, String)>,
    pub(super) last_seq: u64,
}

impl Model {
    fn first_seq(&self) -> u64 {
        self.msgs
            .keys()
            .next()
            .copied()
            .unwrap_or(self.last_seq + 1)
    }

    /// Applies a store op; returns the sequence stored.
    pub(super) fn store(&mut self, subject: u8) -> (u64, String, String) {
        self.last_seq += 1;
        let subject = SUBJECTS[subject as usize].to_owned();
        let payload = format!("p{}", self.last_seq);
        self.msgs
            .insert(self.last_seq, (subject.clone(), payload.clone()));
        (self.last_seq, subject, payload)
    }

    pub(super) fn purge(
        &mut self,
        filter: Option<u8>,
        below_seq: Option<u64>,
        keep: Option<u64>,
    ) -> u64 {
        let filter = filter.map(|f| FILTERS[f as usize]);
        let all = filter.is_none_or(|f| f == ">");
        if all && keep.is_none() {
            let floor = below_seq.unwrap_or(self.last_seq + 1);
            if floor <= self.first_seq() {
                return 0;
            }
            let before = self.msgs.len();
            self.msgs.retain(|&seq, _| seq >= floor);
            self.last_seq = self.last_seq.max(floor - 1);
            return (before - self.msgs.len()) as u64;
        }
        let mut seqs: Vec<u64> = self
            .msgs
            .iter()
            .filter(|(_, (subject, _))| {
                filter.is_none_or(|f| {
                    crate::subject::subject_matches(f.as_bytes(), subject.as_bytes())
                })
            })
            .map(|(&seq, _)| seq)
            .collect();
        seqs.truncate(seqs.len().saturating_sub(keep.unwrap_or(0) as usize));
        seqs.retain(|&seq| below_seq.is_none_or(|below| seq < below));
        for seq in &seqs {
            self.msgs.remove(seq);
        }
        seqs.len() as u64
    }

    /// Panics unless `store` holds exactly what the model does.
    pub(super) fn check(&self, store: &mut dyn MsgStore) {
        let state = store.state();
        assert_eq!(state.msgs, self.msgs.len() as u64);
        assert_eq!(state.last_seq, self.last_seq);
        assert_eq!(state.first_seq, self.first_seq());
        assert_eq!(
            state.num_deleted,
            self.last_seq + 1 - self.first_seq() - self.msgs.len() as u64
        );
        let deleted: Vec<u64> = (self.first_seq()..=self.last_seq)
            .filter(|s| !self.msgs.contains_key(s))
            .collect();
        assert_eq!(store.deleted(), deleted);
        for (&seq, (subject, payload)) in &self.msgs {
            let msg = store.load(seq).unwrap().expect("held");
            assert_eq!(
                (&msg.subject[..], &msg.payload[..]),
                (subject.as_bytes(), payload.as_bytes())
            );
        }
        for filter in FILTERS {
            let expect = self
                .msgs
                .iter()
                .find(|(_, (s, _))| {
                    crate::subject::subject_matches(filter.as_bytes(), s.as_bytes())
                })
                .map(|(&seq, _)| seq);
            assert_eq!(
                seq_of(store.load_next(filter.as_bytes(), 0).unwrap()),
                expect,
                "{filter}"
            );
            let expect = self
                .msgs
                .iter()
                .rev()
                .find(|(_, (s, _))| {
                    crate::subject::subject_matches(filter.as_bytes(), s.as_bytes())
                })
                .map(|(&seq, _)| seq);
            assert_eq!(
                seq_of(store.load_last(filter.as_bytes()).unwrap()),
                expect,
                "{filter}"
            );
        }
        let mut counts: BTreeMap<Bytes, u64> = BTreeMap::new();
        for (subject, _) in self.msgs.values() {
            *counts
                .entry(Bytes::copy_from_slice(subject.as_bytes()))
                .or_default() += 1;
        }
        assert_eq!(store.subject_counts(b">"), counts);
    }
}

/// Runs `ops` on `store` and the model alike (crashes are skipped).
pub(super) fn run_plain(store: &mut dyn MsgStore, ops: &[Op]) {
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Store(subject) => {
                let (seq, subject, payload) = model.store(*subject);
                let stored = store
                    .store(
                        subject.as_bytes(),
                        None,
                        payload.as_bytes(),
                        UnixNanos(seq as i64),
                    )
                    .unwrap();
                assert_eq!(stored, seq);
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
            Op::Sync(_) | Op::Crash(_) => {}
        }
        model.check(store);
    }
}

proptest! {
    #[test]
    fn mem_store_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        run_plain(&mut MemStore::new(1), &ops);
    }
}

#[test]
fn skipping_moves_the_last_sequence_and_survives_a_reopen() {
    // Empty: the store starts at the skipped-to sequence.
    on_both_stores(1, |store| {
        store.skip_to(5).unwrap();
        let state = store.state();
        assert_eq!((state.first_seq, state.last_seq, state.msgs, state.num_deleted), (5, 4, 0, 0));
        assert_eq!(put(store, "a", "x"), 5);
    });
    // Holding messages: the gap counts as deleted; skipping backwards does nothing.
    on_both_stores(1, |store| {
        fill(store);
        store.skip_to(10).unwrap();
        store.skip_to(3).unwrap();
        assert_eq!(put(store, "a", "x"), 10);
        let state = store.state();
        assert_eq!((state.first_seq, state.last_seq, state.msgs, state.num_deleted), (1, 10, 7, 3));
        assert_eq!(store.deleted(), [7, 8, 9]);
    });
}

/// The bytes of every block file on `disk`.
fn block_bytes(disk: &TestDisk) -> usize {
    disk.files().into_iter().filter(|(n, _)| n.ends_with(".blk")).map(|(_, len)| len).sum()
}

#[test]
fn compressed_file_stores_read_back_the_same_and_take_less_room() {
    let json = |i: usize| format!(r#"{{"order":{i},"status":"shipped","customer":"someone@example.com","items":[1,2,3]}}"#).repeat(8);
    let write = |compress: bool| {
        let disk = TestDisk::default();
        let mut store = FileStore::create(disk.shared(), "T.".into(), 1, 1 << 20).unwrap();
        store.set_compression(compress);
        let hdrs = b"NATS/1.0\r\nNats-Msg-Id: x\r\n\r\n";
        for i in 0..500 {
            let h = (i % 2 == 0).then_some(&hdrs[..]);
            store.store(b"orders.new", h, json(i).as_bytes(), UnixNanos(i as i64)).unwrap();
        }
        store.store(b"tiny", None, b"x", UnixNanos(1)).unwrap();
        store.write_out().unwrap();
        (disk, store)
    };
    let (plain_disk, mut plain) = write(false);
    let (packed_disk, mut packed) = write(true);
    assert_same(&mut plain, &mut packed);
    let mut reopened = FileStore::open(packed_disk.shared(), "T.".into(), 1 << 20).unwrap();
    assert_same(&mut plain, &mut reopened);
    let (before, after) = (block_bytes(&plain_disk), block_bytes(&packed_disk));
    assert!(after * 4 < before, "compressed {after} bytes, plain {before}");
    // Figures count messages as stored, not as compressed (as nats-server's).
    assert_eq!(plain.state().bytes, packed.state().bytes);
}

#[test]
fn a_compressed_store_recovers_what_was_synced_after_a_torn_crash() {
    let disk = TestDisk::default();
    let mut store = FileStore::create(disk.shared(), "T.".into(), 1, 4096).unwrap();
    store.set_compression(true);
    let body = |i: u64| format!("message {i} ").repeat(20);
    for i in 1..=40 {
        store.store(b"s", None, body(i).as_bytes(), UnixNanos(i as i64)).unwrap();
    }
    store.sync().unwrap();
    disk.complete_syncs();
    for i in 41..=45 {
        store.store(b"s", None, body(i).as_bytes(), UnixNanos(i as i64)).unwrap();
    }
    disk.crash(7);
    let mut reopened = FileStore::open(disk.shared(), "T.".into(), 4096).unwrap();
    let state = reopened.state();
    assert!(state.msgs >= 40 && state.lost.is_none(), "{state:?}");
    for seq in 1..=state.last_seq {
        assert_eq!(reopened.load(seq).unwrap().unwrap().payload, body(seq).as_bytes());
    }
}
