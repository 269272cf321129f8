//! The [`Storage`] contract as executable checks, run against every
//! implementation (the runtime's files, the simulator's disk, the core's
//! test disk) by that implementation's own tests, so all of them answer
//! the store the same way.
//!
//! Each check takes a fresh, empty storage without injected faults and
//! panics with what it found when the implementation departs from the
//! contract. What only some implementations can show (crashes, torn writes,
//! completion order) is tested where those live.

use super::{Storage, StorageError};

/// Runs every check below, each on a storage of its own from `fresh`.
pub fn check_all<S: Storage>(mut fresh: impl FnMut() -> S) {
    appends_and_reads(&mut fresh());
    truncates(&mut fresh());
    removes_and_lists(&mut fresh());
    refuses_names_outside_the_store(&mut fresh());
    issues_sync_tokens_in_order(&mut fresh());
}

/// Appends return where their data starts; reads see every append at once;
/// a read past the end is `OutOfRange`, of a missing file `NotFound`; an
/// empty append creates the file.
pub fn appends_and_reads(s: &mut impl Storage) {
    assert_eq!(s.append("a", b"hello").expect("append"), 0, "first append starts at 0");
    assert_eq!(s.append("a", b", world").expect("append"), 5, "an append starts at the old end");
    assert_eq!(s.len("a").expect("len"), 12);
    assert_eq!(&s.read("a", 0, 12).expect("read")[..], b"hello, world");
    assert_eq!(&s.read("a", 7, 5).expect("read")[..], b"world");
    assert_eq!(&s.read("a", 12, 0).expect("an empty read at the end")[..], b"");
    match s.read("a", 8, 5) {
        Err(StorageError::OutOfRange { offset: 8, len: 5, file_len: 12, .. }) => {}
        other => panic!("a read past the end: {other:?}"),
    }
    match s.read("a", u64::MAX, 1) {
        Err(StorageError::OutOfRange { .. }) => {}
        other => panic!("a read whose end overflows: {other:?}"),
    }
    assert!(matches!(s.read("missing", 0, 0), Err(StorageError::NotFound { .. })), "read of a missing file");
    assert!(matches!(s.len("missing"), Err(StorageError::NotFound { .. })), "len of a missing file");
    assert_eq!(s.append("empty", b"").expect("an empty append"), 0);
    assert_eq!(s.len("empty").expect("an empty append creates the file"), 0);
    assert_eq!(s.list().expect("list"), ["a", "empty"], "list after appends");
}

/// Truncation cuts the tail, appends continue at the new end, and a
/// truncation beyond the end or of a missing file is refused.
pub fn truncates(s: &mut impl Storage) {
    s.append("t", b"0123456789").expect("append");
    s.truncate("t", 4).expect("truncate");
    assert_eq!(s.len("t").expect("len"), 4);
    assert_eq!(s.append("t", b"xy").expect("append after truncate"), 4, "appends continue at the cut");
    assert_eq!(&s.read("t", 0, 6).expect("read")[..], b"0123xy");
    s.truncate("t", 6).expect("a truncate to the current length is a no-op");
    assert_eq!(s.len("t").expect("len"), 6);
    match s.truncate("t", 7) {
        Err(StorageError::OutOfRange { .. }) => {}
        other => panic!("a truncate beyond the end: {other:?}"),
    }
    assert_eq!(s.len("t").expect("len"), 6, "a refused truncate changes nothing");
    assert!(matches!(s.truncate("missing", 0), Err(StorageError::NotFound { .. })), "truncate of a missing file");
    s.truncate("t", 0).expect("truncate to nothing");
    assert_eq!(s.len("t").expect("an emptied file is still there"), 0);
}

/// Removal makes a file `NotFound` everywhere; `list` is sorted and holds
/// exactly the files that exist; a removed name can be created again.
pub fn removes_and_lists(s: &mut impl Storage) {
    for name in ["c", "a", "b.blk", "a.meta"] {
        s.append(name, name.as_bytes()).expect("append");
    }
    assert_eq!(s.list().expect("list"), ["a", "a.meta", "b.blk", "c"], "list is sorted");
    s.remove("a").expect("remove");
    assert_eq!(s.list().expect("list"), ["a.meta", "b.blk", "c"], "list after a removal");
    assert!(matches!(s.read("a", 0, 0), Err(StorageError::NotFound { .. })), "read of a removed file");
    assert!(matches!(s.len("a"), Err(StorageError::NotFound { .. })), "len of a removed file");
    assert!(matches!(s.remove("a"), Err(StorageError::NotFound { .. })), "remove of a removed file");
    assert_eq!(s.append("a", b"again").expect("re-create"), 0, "a re-created file starts empty");
    assert_eq!(&s.read("a", 0, 5).expect("read")[..], b"again");
}

/// Names that could reach outside the store are refused by every call.
pub fn refuses_names_outside_the_store(s: &mut impl Storage) {
    for name in ["", ".", "..", "a/b", "../a", "/etc", "a\\b", "a\0b"] {
        let refused = |r: Result<(), StorageError>, call: &str| match r {
            Err(StorageError::InvalidName { .. }) => {}
            other => panic!("{call}({name:?}): {other:?}"),
        };
        refused(s.append(name, b"x").map(drop), "append");
        refused(s.read(name, 0, 0).map(drop), "read");
        refused(s.truncate(name, 0), "truncate");
        refused(s.remove(name), "remove");
        refused(s.len(name).map(drop), "len");
        refused(s.sync(name).map(drop), "sync");
    }
    let left = s.list().expect("list");
    assert!(left.is_empty(), "refused names created files: {left:?}");
}

/// Sync tokens increase across files, and a file removed (or never
/// written) can be synced: the removal is what becomes durable.
pub fn issues_sync_tokens_in_order(s: &mut impl Storage) {
    s.append("x", b"1").expect("append");
    s.append("y", b"2").expect("append");
    let t1 = s.sync("x").expect("sync");
    let t2 = s.sync("y").expect("sync");
    let t3 = s.sync("x").expect("sync again");
    assert!(t1 < t2 && t2 < t3, "tokens increase: {t1:?} {t2:?} {t3:?}");
    s.remove("y").expect("remove");
    let t4 = s.sync("y").expect("sync of a removed file");
    let t5 = s.sync("never").expect("sync of a file never written");
    assert!(t3 < t4 && t4 < t5, "tokens increase: {t3:?} {t4:?} {t5:?}");
}
