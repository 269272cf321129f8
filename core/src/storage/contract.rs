//! The [`Storage`] contract as executable checks, run against every
//! implementation (the runtime's files, the simulator's disk, the core's
//! test disk) by that implementation's own tests, so all of them answer
//! the store the same way.
//!
//! Each check takes a fresh, empty storage without injected faults and
//! panics with what it found when the implementation departs from the
//! contract. What only some implementations can show (crashes, torn writes,
//! completion order) is tested where those live.

use super::{Storage, StorageError, StorageExt};

/// Runs every check below, each on a storage of its own from `fresh`.
pub fn check_all<S: Storage>(mut fresh: impl FnMut() -> S) {
    appends_and_reads(&mut fresh());
    truncates(&mut fresh());
    removes_and_lists(&mut fresh());
    renames(&mut fresh());
    keeps_handles_to_their_file(&mut fresh());
    refuses_names_outside_the_store(&mut fresh());
    issues_sync_tokens_in_order(&mut fresh());
}

fn stale<T: std::fmt::Debug>(r: Result<T, StorageError>, what: &str) {
    match r {
        Err(StorageError::StaleHandle { .. }) => {}
        other => panic!("{what} with a stale handle: {other:?}"),
    }
}

/// Appends return where their data starts; reads see every append at once;
/// a read past the end is `OutOfRange`; opening a missing file without
/// creating it is `NotFound`; creating makes an empty file.
pub fn appends_and_reads(s: &mut impl Storage) {
    let a = s.open("a", true).expect("create");
    assert_eq!(s.append(a, b"hello").expect("append"), 0, "first append starts at 0");
    assert_eq!(s.append(a, b", world").expect("append"), 5, "an append starts at the old end");
    assert_eq!(s.len(a).expect("len"), 12);
    assert_eq!(&s.read(a, 0, 12).expect("read")[..], b"hello, world");
    assert_eq!(&s.read(a, 7, 5).expect("read")[..], b"world");
    assert_eq!(&s.read(a, 12, 0).expect("an empty read at the end")[..], b"");
    match s.read(a, 8, 5) {
        Err(StorageError::OutOfRange { offset: 8, len: 5, file_len: 12, .. }) => {}
        other => panic!("a read past the end: {other:?}"),
    }
    match s.read(a, u64::MAX, 1) {
        Err(StorageError::OutOfRange { .. }) => {}
        other => panic!("a read whose end overflows: {other:?}"),
    }
    assert!(matches!(s.open("missing", false), Err(StorageError::NotFound { .. })), "open of a missing file");
    assert_eq!(s.list().expect("list"), ["a"], "a refused open creates nothing");
    let empty = s.open("empty", true).expect("create");
    assert_eq!(s.len(empty).expect("a created file is empty"), 0);
    assert_eq!(s.append(empty, b"").expect("an empty append"), 0);
    assert_eq!(s.list().expect("list"), ["a", "empty"], "list after creations");
    s.close(a);
    let again = s.open("a", false).expect("open an existing file");
    assert_eq!(&s.read(again, 0, 5).expect("read after reopening")[..], b"hello");
    assert_eq!(s.read_all("a").expect("read_all")[..], b"hello, world"[..]);
}

/// Truncation cuts the tail, appends continue at the new end, and a
/// truncation beyond the end is refused.
pub fn truncates(s: &mut impl Storage) {
    let t = s.open("t", true).expect("create");
    s.append(t, b"0123456789").expect("append");
    s.truncate(t, 4).expect("truncate");
    assert_eq!(s.len(t).expect("len"), 4);
    assert_eq!(s.append(t, b"xy").expect("append after truncate"), 4, "appends continue at the cut");
    assert_eq!(&s.read(t, 0, 6).expect("read")[..], b"0123xy");
    s.truncate(t, 6).expect("a truncate to the current length is a no-op");
    assert_eq!(s.len(t).expect("len"), 6);
    match s.truncate(t, 7) {
        Err(StorageError::OutOfRange { .. }) => {}
        other => panic!("a truncate beyond the end: {other:?}"),
    }
    assert_eq!(s.len(t).expect("len"), 6, "a refused truncate changes nothing");
    s.truncate(t, 0).expect("truncate to nothing");
    assert_eq!(s.len(t).expect("an emptied file is still there"), 0);
    s.write_synced("t", b"anew").expect("write_synced");
    assert_eq!(&s.read(t, 0, 4).expect("read")[..], b"anew", "written anew, not appended");
}

/// Removal makes a file absent and its handle stale; `list` is sorted and
/// holds exactly the files that exist; a removed name can be created again.
pub fn removes_and_lists(s: &mut impl Storage) {
    for name in ["c", "a", "b.blk", "a.meta"] {
        s.append_to(name, name.as_bytes()).expect("append");
    }
    let a = s.open("a", false).expect("open");
    assert_eq!(s.list().expect("list"), ["a", "a.meta", "b.blk", "c"], "list is sorted");
    s.remove("a").expect("remove");
    assert_eq!(s.list().expect("list"), ["a.meta", "b.blk", "c"], "list after a removal");
    stale(s.read(a, 0, 0), "read");
    stale(s.len(a), "len");
    stale(s.append(a, b"x"), "append");
    stale(s.sync(a), "sync");
    assert!(matches!(s.open("a", false), Err(StorageError::NotFound { .. })), "open of a removed file");
    assert!(matches!(s.remove("a"), Err(StorageError::NotFound { .. })), "remove of a removed file");
    let fresh = s.open("a", true).expect("re-create");
    assert_ne!(fresh, a, "a re-created file has a new handle");
    assert_eq!(s.len(fresh).expect("len"), 0, "a re-created file starts empty");
    stale(s.len(a), "len after the name was re-created");
    s.close(a);
    assert_eq!(s.len(fresh).expect("closing a stale handle leaves the new file open"), 0);
}

/// A rename moves the content and the handle, replaces a file of the new
/// name (whose handle goes stale), and refuses a missing source.
pub fn renames(s: &mut impl Storage) {
    let tmp = s.open("x.tmp", true).expect("create");
    s.append(tmp, b"new").expect("append");
    let old = s.open("x", true).expect("create");
    s.append(old, b"old").expect("append");
    s.rename("x.tmp", "x").expect("rename over an existing file");
    assert_eq!(s.list().expect("list"), ["x"]);
    assert_eq!(&s.read(tmp, 0, 3).expect("the handle follows its file")[..], b"new");
    stale(s.read(old, 0, 0), "read of the replaced file");
    assert_eq!(s.open("x", false).expect("open"), tmp, "the renamed file is open under its new name");
    s.close(tmp);
    s.rename("x", "y").expect("rename to a free name");
    assert_eq!(s.read_all("y").expect("read")[..], b"new"[..]);
    assert_eq!(s.list().expect("list"), ["y"]);
    assert!(matches!(s.rename("x", "z"), Err(StorageError::NotFound { .. })), "rename of a missing file");
    s.rename("y", "y").expect("a rename onto itself");
    assert_eq!(s.read_all("y").expect("read")[..], b"new"[..]);
    s.close(tmp);
    stale(s.len(tmp), "len after the last close");
}

/// One handle per open file, counted: it stays good until closed as often
/// as it was opened.
pub fn keeps_handles_to_their_file(s: &mut impl Storage) {
    let h = s.open("h", true).expect("create");
    assert_eq!(s.open("h", false).expect("open again"), h, "an open file's handle");
    s.close(h);
    s.append(h, b"still open").expect("one count left");
    s.close(h);
    stale(s.len(h), "len after the last close");
    assert_eq!(s.len_of("h").expect("closing keeps the file"), 10);
}

/// Names that could reach outside the store are refused by every call.
pub fn refuses_names_outside_the_store(s: &mut impl Storage) {
    for name in ["", ".", "..", "a/b", "../a", "/etc", "a\\b", "a\0b"] {
        let refused = |r: Result<(), StorageError>, call: &str| match r {
            Err(StorageError::InvalidName { .. }) => {}
            other => panic!("{call}({name:?}): {other:?}"),
        };
        refused(s.open(name, true).map(drop), "open");
        refused(s.remove(name), "remove");
        refused(s.rename(name, "ok"), "rename from");
        s.append_to("ok", b"x").expect("append");
        refused(s.rename("ok", name), "rename to");
        s.remove("ok").expect("remove");
    }
    let left = s.list().expect("list");
    assert!(left.is_empty(), "refused names created files: {left:?}");
}

/// Sync tokens increase across files and the directory.
pub fn issues_sync_tokens_in_order(s: &mut impl Storage) {
    let x = s.open("x", true).expect("create");
    let y = s.open("y", true).expect("create");
    s.append(x, b"1").expect("append");
    s.append(y, b"2").expect("append");
    let t1 = s.sync(x).expect("sync");
    let t2 = s.sync(y).expect("sync");
    let t3 = s.sync(x).expect("sync again");
    assert!(t1 < t2 && t2 < t3, "tokens increase: {t1:?} {t2:?} {t3:?}");
    s.remove("y").expect("remove");
    let t4 = s.sync_dir().expect("sync of the directory");
    let t5 = s.sync(x).expect("sync");
    assert!(t3 < t4 && t4 < t5, "tokens increase: {t3:?} {t4:?} {t5:?}");
}
