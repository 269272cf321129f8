//! The NATS resolver's `dir`: account JWTs kept on a [`Storage`] so that an
//! acknowledged claim update survives a crash, in nats-server's own layout
//! so that either server can take the directory over at any time.
//!
//! # Layout
//!
//! At rest the directory is exactly nats-server's: one `<account key>.jwt`
//! per account holding the raw JWT, and `<key>.jwt.deleted` for an account
//! deleted with `allow_delete` (nats-server renames the file aside). An
//! update replaces `<key>.jwt` whole, through a write-ahead file:
//!
//! 1. the JWT is written to `<key>.jwt.<generation>` (one more than any
//!    generation of the key seen or written) and synced; when the sync
//!    completes the update is durable ([`JwtDir::write`]);
//! 2. the older write-ahead files of the key are removed, the new one is
//!    renamed to `<key>.jwt` and synced, which makes its new name durable
//!    ([`JwtDir::settle`]); when that sync completes the update is
//!    acknowledged, so that every acknowledged JWT is in the file
//!    nats-server reads.
//!
//! Loading takes, per key, among `<key>.jwt` and the write-ahead files that
//! decode as the key's signed account JWT, the newest by the JWT's `iat`
//! (nats-server's rule for which claim is newer); on a tie a write-ahead
//! file beats `<key>.jwt`, and a higher generation a lower one. So at every
//! point of a crash:
//!
//! - before step 1's sync completes, the new file may be missing, empty or
//!   torn; a torn JWT fails to decode, so the previous state is used;
//! - during step 2, the rename is atomic: either `<key>.jwt` holds the new
//!   JWT, or it still holds the old one and the durable write-ahead file is
//!   there and wins (an update never lowers `iat`). Name changes survive a
//!   crash in the order they were made, so when the rename survives, the
//!   removals of the older write-ahead files before it do too: none comes
//!   back to win a tie.
//!
//! A `<key>.jwt` written by nats-server is read like natrix's own, and a
//! JWT nats-server stored after natrix ran wins over a leftover write-ahead
//! file when it was issued later. A deletion removes every file of the key
//! and syncs each removal; `allow_delete` without `hard_delete` first keeps
//! the JWT aside as `<key>.jwt.deleted`.

use std::collections::{BTreeMap, VecDeque};

use crate::storage::{Storage, StorageError, StorageExt as _, SyncLedger, SyncToken};

/// How many times a file that does not decode is read again before it is
/// taken as damaged: a bit flipped on the way from the disk goes away on a
/// second read, and an acknowledged JWT must not be passed over for it.
const READ_ATTEMPTS: usize = 3;

/// The suffix nats-server gives JWT files.
const EXTENSION: &str = ".jwt";

/// Where a renamed-away JWT is kept: nats-server's name for it.
fn deleted_name(key: &str) -> String {
    format!("{key}{EXTENSION}.deleted")
}

/// nats-server's file for `key`, the one that holds its JWT at rest.
fn main_name(key: &str) -> String {
    format!("{key}{EXTENSION}")
}

/// The write-ahead file of one update of `key` (generations start at 1).
fn wal_name(key: &str, generation: u64) -> String {
    format!("{key}{EXTENSION}.{generation}")
}

/// `(key, None)` for a `<key>.jwt`, `(key, Some(generation))` for a
/// write-ahead file, `None` for any other name.
fn parse_name(name: &str) -> Option<(&str, Option<u64>)> {
    if let Some(key) = name.strip_suffix(EXTENSION).filter(|k| !k.is_empty()) {
        return Some((key, None));
    }
    let (key, generation) = name.rsplit_once('.')?;
    let key = key.strip_suffix(EXTENSION).filter(|k| !k.is_empty())?;
    let digits = !generation.is_empty() && generation.bytes().all(|b| b.is_ascii_digit());
    let generation = generation.parse().ok().filter(|g| digits && *g > 0)?;
    Some((key, Some(generation)))
}

/// One account's JWT as loaded from the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredJwt {
    /// The JWT text.
    pub jwt: String,
    /// The write-ahead generation it was read from, `None` for `<key>.jwt`.
    /// When set, `<key>.jwt` still has to be rewritten ([`JwtDir::settle`]).
    pub wal: Option<u64>,
}

/// The account JWTs of the directory: one per key that has a valid file,
/// plus a line for each file that was passed over.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// Account key → its newest valid JWT.
    pub accounts: BTreeMap<String, StoredJwt>,
    /// Files that did not decode (torn by a crash, or damaged).
    pub skipped: Vec<String>,
    /// Keys whose leftover write-ahead files were removed, with the token
    /// after which the removals are durable.
    pub cleaned: Vec<(String, SyncToken)>,
    /// Why the directory's names could not be read, if they could not.
    pub unlisted: Option<StorageError>,
}

/// A file that holds a valid JWT of its key, ranked as loading ranks them.
struct Candidate {
    iat: i64,
    /// `None` for `<key>.jwt`, which loses ties to any write-ahead file.
    wal: Option<u64>,
    jwt: String,
}

impl Candidate {
    fn rank(&self) -> (i64, bool, u64) {
        (self.iat, self.wal.is_some(), self.wal.unwrap_or(0))
    }
}

/// The resolver directory over a [`Storage`], plus the work waiting for the
/// syncs it asked for.
pub(crate) struct JwtDir<P> {
    /// The directory, with the syncs asked of it still outstanding.
    storage: SyncLedger,
    /// Per key, the highest generation seen or written: the next one is one more.
    generations: BTreeMap<String, u64>,
    /// Work to finish when its sync (and every earlier one) completed, in
    /// token order.
    waiting: VecDeque<(SyncToken, P)>,
    /// Numbers requests whose place in the queue may change, in arrival order.
    arrivals: u64,
}

impl<P> JwtDir<P> {
    /// The directory kept on `storage`.
    pub fn new(storage: Box<dyn Storage + Send>) -> Self {
        JwtDir {
            storage: SyncLedger::new(storage),
            generations: BTreeMap::new(),
            waiting: VecDeque::new(),
            arrivals: 0,
        }
    }

    /// Reads every key's newest valid JWT: `valid` is given the key and a
    /// file's text and returns the JWT's `iat` when it is a signed account
    /// JWT of that key. Remembers every generation seen, valid or not, so
    /// that new ones are numbered above them. The write-ahead files that
    /// lost are leftovers and are removed (durably, before anything else is
    /// asked of the key); when a write-ahead file wins, the caller finishes
    /// its rewrite with [`JwtDir::settle`].
    pub fn load(&mut self, valid: impl Fn(&str, &str) -> Option<i64>) -> Loaded {
        let mut by_key: BTreeMap<String, Vec<Option<u64>>> = BTreeMap::new();
        let mut loaded = Loaded::default();
        match self.storage.list() {
            Ok(names) => {
                for name in names {
                    if let Some((key, generation)) = parse_name(&name) {
                        by_key.entry(key.to_owned()).or_default().push(generation);
                    }
                }
            }
            Err(e) => loaded.unlisted = Some(e),
        }
        for (key, files) in by_key {
            let highest = files.iter().flatten().max().copied().unwrap_or(0);
            self.generations.insert(key.clone(), highest);
            let mut best: Option<Candidate> = None;
            for wal in files {
                let name = wal.map_or_else(|| main_name(&key), |g| wal_name(&key, g));
                match self.read_valid(&name, |text| valid(&key, text)) {
                    Some((iat, jwt)) => {
                        let found = Candidate { iat, wal, jwt };
                        if best.as_ref().is_none_or(|b| found.rank() > b.rank()) {
                            best = Some(found);
                        }
                    }
                    None => loaded.skipped.push(name),
                }
            }
            let Some(best) = best else { continue };
            if let Some(token) = self.remove_wals_except(&key, best.wal) {
                loaded.cleaned.push((key.clone(), token));
            }
            let stored = StoredJwt {
                jwt: best.jwt,
                wal: best.wal,
            };
            loaded.accounts.insert(key, stored);
        }
        loaded
    }

    /// The whole of `name` with its `iat` if it reads as valid text, trying
    /// again a few times.
    fn read_valid(
        &mut self,
        name: &str,
        valid: impl Fn(&str) -> Option<i64>,
    ) -> Option<(i64, String)> {
        for _ in 0..READ_ATTEMPTS {
            let Ok(bytes) = self.storage.read_all(name) else {
                continue;
            };
            if let Ok(text) = std::str::from_utf8(&bytes) {
                if let Some(iat) = valid(text) {
                    return Some((iat, text.trim().to_owned()));
                }
            }
        }
        None
    }

    /// Writes `jwt` to the next write-ahead file of `key` and asks for its
    /// sync. Nothing may rely on it until the returned token completes;
    /// then [`JwtDir::settle`] moves it into `<key>.jwt`. On failure the
    /// partial file is removed (best effort: a torn leftover never decodes).
    pub fn write(&mut self, key: &str, jwt: &str) -> Result<(u64, SyncToken), StorageError> {
        let generation = self.generations.get(key).map_or(1, |g| g + 1);
        self.generations.insert(key.to_owned(), generation);
        let name = wal_name(key, generation);
        match self.storage.write_synced(&name, jwt.as_bytes()) {
            Ok(token) => Ok((generation, token)),
            Err(e) => {
                let _ = self.storage.remove(&name);
                Err(e)
            }
        }
    }

    /// Once write-ahead file `generation` of `key` is durable: removes the
    /// older write-ahead files, renames it to `<key>.jwt` and asks for the
    /// sync that makes the new name durable. On an error the write-ahead
    /// file stays, and loading finishes the work later.
    pub fn settle(&mut self, key: &str, generation: u64) -> Result<SyncToken, StorageError> {
        for older in self.wals_of(key)?.into_iter().filter(|g| *g < generation) {
            match self.storage.remove(&wal_name(key, older)) {
                Ok(()) | Err(StorageError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let main = main_name(key);
        self.storage.rename(&wal_name(key, generation), &main)?;
        self.storage.with_open(&main, false, |s, file| s.sync(file))
    }

    /// Removes the write-ahead files of `key` other than `keep` (every one
    /// when `None`) and asks for the removals' sync; its token, if anything
    /// was removed. They lost to the loaded JWT (torn, older, or the same
    /// JWT as `<key>.jwt`). Errors are left for the next load, which ranks
    /// the leftovers the same way.
    fn remove_wals_except(&mut self, key: &str, keep: Option<u64>) -> Option<SyncToken> {
        let mut removed = false;
        for generation in self.wals_of(key).unwrap_or_default() {
            if Some(generation) != keep {
                removed |= self.storage.remove(&wal_name(key, generation)).is_ok();
            }
        }
        removed.then(|| self.storage.sync_dir().ok()).flatten()
    }

    /// The generations of `key`'s write-ahead files, lowest first.
    fn wals_of(&self, key: &str) -> Result<Vec<u64>, StorageError> {
        Ok(self.files_of(key)?.into_iter().flatten().collect())
    }

    /// `key`'s files: `None` for `<key>.jwt`, the generation of each
    /// write-ahead file.
    fn files_of(&self, key: &str) -> Result<Vec<Option<u64>>, StorageError> {
        let prefix = main_name(key);
        let mut files: Vec<Option<u64>> = self
            .storage
            .list()?
            .iter()
            .filter(|name| name.starts_with(&prefix))
            .filter_map(|name| parse_name(name))
            .filter(|(k, _)| *k == key)
            .map(|(_, generation)| generation)
            .collect();
        files.sort_unstable();
        Ok(files)
    }

    /// Deletes every file of `key`, first keeping `keep_aside` (the JWT in
    /// use) as `<key>.jwt.deleted` when given. Returns the token after which
    /// the deletion is durable, or `None` when there was nothing to delete.
    pub fn delete(
        &mut self,
        key: &str,
        keep_aside: Option<&str>,
    ) -> Result<Option<SyncToken>, StorageError> {
        let files = self.files_of(key)?;
        if files.is_empty() {
            return Ok(None);
        }
        if let Some(jwt) = keep_aside {
            self.storage.write_synced(&deleted_name(key), jwt.as_bytes())?;
        }
        for file in files {
            let name = file.map_or_else(|| main_name(key), |g| wal_name(key, g));
            match self.storage.remove(&name) {
                Ok(()) | Err(StorageError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        // The last token: everything before it is done when it is waited
        // for (see [`JwtDir::wait_for`]).
        self.storage.sync_dir().map(Some)
    }

    /// The storage reported these syncs complete.
    pub fn completed(&mut self, tokens: &[SyncToken]) {
        self.storage.complete(tokens);
    }

    /// A number above every one handed out before: the arrival order of
    /// requests that wait in the queue more than once.
    pub fn next_arrival(&mut self) -> u64 {
        self.arrivals += 1;
        self.arrivals
    }

    /// Keeps `work` until `token` completes.
    pub fn wait_for(&mut self, token: SyncToken, work: P) {
        debug_assert!(self.waiting.back().is_none_or(|(t, _)| *t <= token));
        self.waiting.push_back((token, work));
    }

    /// The token the newest waiting work waits for.
    pub fn last_token(&self) -> Option<SyncToken> {
        self.waiting.back().map(|(token, _)| *token)
    }

    /// The work still waiting for its sync, oldest first.
    pub fn waiting(&self) -> impl DoubleEndedIterator<Item = &P> + '_ {
        self.waiting.iter().map(|(_, work)| work)
    }

    /// The work still waiting for its sync, oldest first, to add to.
    pub fn waiting_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut P> + '_ {
        self.waiting.iter_mut().map(|(_, work)| work)
    }

    /// The oldest work whose sync, and every sync asked for before it,
    /// completed. Taken one at a time, so that work finished in between
    /// can queue behind the rest and keep their order.
    pub fn next_completed(&mut self) -> Option<P> {
        let front = self.waiting.front().map(|(t, _)| *t);
        if front.is_some_and(|t| self.storage.done_through(t)) {
            return self.waiting.pop_front().map(|(_, work)| work);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;

    fn dir(disk: &MemStorage) -> JwtDir<&'static str> {
        JwtDir::new(Box::new(disk.clone()))
    }

    /// A "JWT" is valid here when it is a complete `jwt-<iat>-<tag>.end`.
    fn valid(_: &str, text: &str) -> Option<i64> {
        let body = text.strip_prefix("jwt-")?.strip_suffix(".end")?;
        body.split('-').next()?.parse().ok()
    }

    fn names(disk: &MemStorage) -> Vec<String> {
        disk.list().unwrap()
    }

    fn put_durable(disk: &MemStorage, name: &str, text: &str) {
        disk.put_durable(name, text.as_bytes());
    }

    fn content(disk: &MemStorage, name: &str) -> String {
        String::from_utf8(disk.clone().read_all(name).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn names_parse_back() {
        assert_eq!(parse_name("AKEY.jwt.12"), Some(("AKEY", Some(12))));
        assert_eq!(parse_name("AKEY.jwt.deleted"), None);
        assert_eq!(parse_name("AKEY.jwt"), Some(("AKEY", None)));
        assert_eq!(main_name("AKEY"), "AKEY.jwt");
        assert_eq!(wal_name("AKEY", 3), "AKEY.jwt.3");
        assert_eq!(parse_name(".jwt"), None);
        assert_eq!(parse_name(".jwt.1"), None);
        assert_eq!(parse_name("AKEY.jwt.0"), None);
        assert_eq!(parse_name("AKEY.jwt.+1"), None);
        assert_eq!(parse_name("AKEY.txt.1"), None);
    }

    #[test]
    fn work_waits_for_every_earlier_sync_whatever_order_they_complete_in() {
        let disk = MemStorage::default();
        let mut d = dir(&disk);
        let (_, first) = d.write("A", "jwt-1-a.end").unwrap();
        let (_, second) = d.write("B", "jwt-1-b.end").unwrap();
        d.wait_for(first, "A written");
        d.wait_for(second, "B written");
        // B's file synced first: A's work is still owed, and B's waits behind it.
        d.completed(&[second]);
        assert_eq!(d.next_completed(), None);
        d.completed(&[first]);
        assert_eq!(d.next_completed(), Some("A written"));
        assert_eq!(d.next_completed(), Some("B written"));
        assert_eq!(d.next_completed(), None);
    }

    #[test]
    fn an_update_ends_as_nats_servers_single_file() {
        let disk = MemStorage::default();
        let mut d = dir(&disk);
        let (generation, token) = d.write("A", "jwt-1-a.end").unwrap();
        assert_eq!(generation, 1);
        d.wait_for(token, "written");
        assert_eq!(d.next_completed(), None, "its sync is outstanding");
        d.completed(&disk.complete_syncs());
        assert_eq!(d.next_completed(), Some("written"));
        assert_eq!(d.next_completed(), None);
        let settled = d.settle("A", generation).unwrap();
        assert_eq!(names(&disk), ["A.jwt"], "the write-ahead file became A.jwt");
        assert_eq!(content(&disk, "A.jwt"), "jwt-1-a.end");
        d.wait_for(settled, "settled");
        d.completed(&disk.complete_syncs());
        assert_eq!(d.next_completed(), Some("settled"));
        disk.crash(0);
        assert_eq!(names(&disk), ["A.jwt"], "every step was synced");
        let loaded = dir(&disk).load(valid);
        assert_eq!(loaded.accounts["A"], StoredJwt { jwt: "jwt-1-a.end".into(), wal: None });
    }

    #[test]
    fn a_crash_before_settling_is_durable_leaves_the_newest_write_ahead_file_to_win() {
        let disk = MemStorage::default();
        put_durable(&disk, "A.jwt", "jwt-1-old.end");
        let mut d = dir(&disk);
        assert_eq!(d.load(valid).accounts["A"].jwt, "jwt-1-old.end");
        d.write("A", "jwt-1-a.end").unwrap();
        let (second, _) = d.write("A", "jwt-1-b.end").unwrap();
        disk.complete_syncs();
        d.settle("A", second).unwrap();
        assert_eq!(names(&disk), ["A.jwt"]);
        // Neither the removal of the older write-ahead file nor the rename
        // was made durable: both are undone.
        disk.crash(0);
        assert_eq!(names(&disk), ["A.jwt", "A.jwt.1", "A.jwt.2"]);
        assert_eq!(content(&disk, "A.jwt"), "jwt-1-old.end", "the rename is undone whole");
        let loaded = dir(&disk).load(valid);
        assert_eq!(loaded.accounts["A"], StoredJwt { jwt: "jwt-1-b.end".into(), wal: Some(2) }, "same iat: the later write wins");
        assert_eq!(names(&disk), ["A.jwt", "A.jwt.2"], "the loser is removed");
    }

    #[test]
    fn a_torn_write_ahead_file_falls_back_to_the_stored_jwt() {
        let disk = MemStorage::default();
        put_durable(&disk, "A.jwt", "jwt-1-a.end");
        // What a crash may leave of a write-ahead file never synced.
        put_durable(&disk, "A.jwt.1", "jwt-2-b");
        let mut after = dir(&disk);
        let loaded = after.load(valid);
        assert_eq!(loaded.accounts["A"].jwt, "jwt-1-a.end");
        assert_eq!(loaded.skipped, ["A.jwt.1"]);
        assert_eq!(loaded.cleaned.len(), 1, "the torn file is removed");
        assert_eq!(names(&disk), ["A.jwt"]);
        assert_eq!(after.write("A", "jwt-3-c.end").unwrap().0, 2, "numbered above the torn one");
    }

    #[test]
    fn a_newer_jwt_nats_server_stored_wins_over_a_leftover_write_ahead_file() {
        let disk = MemStorage::default();
        // natrix crashed before finishing an update; nats-server then ran and
        // stored a JWT issued later in A.jwt.
        put_durable(&disk, "A.jwt.4", "jwt-5-natrix.end");
        put_durable(&disk, "A.jwt", "jwt-7-nats-server.end");
        let loaded = dir(&disk).load(valid);
        assert_eq!(loaded.accounts["A"], StoredJwt { jwt: "jwt-7-nats-server.end".into(), wal: None });
        assert_eq!(names(&disk), ["A.jwt"], "the stale write-ahead file is gone");
        // An older one in A.jwt loses to the write-ahead file.
        put_durable(&disk, "B.jwt.1", "jwt-5-natrix.end");
        put_durable(&disk, "B.jwt", "jwt-3-older.end");
        let loaded = dir(&disk).load(valid);
        assert_eq!(loaded.accounts["B"].wal, Some(1));
    }

    #[test]
    fn delete_removes_every_file_and_keeps_the_jwt_aside() {
        let disk = MemStorage::default();
        let mut d = dir(&disk);
        put_durable(&disk, "A.jwt", "jwt-1-a.end");
        d.write("A", "jwt-2-b.end").unwrap();
        disk.complete_syncs();
        assert!(d.delete("A", Some("jwt-2-b.end")).unwrap().is_some());
        assert_eq!(d.delete("A", None).unwrap(), None, "nothing left");
        disk.complete_syncs();
        disk.crash(0);
        assert_eq!(names(&disk), ["A.jwt.deleted"]);
        assert_eq!(content(&disk, "A.jwt.deleted"), "jwt-2-b.end");
        assert!(dir(&disk).load(valid).accounts.is_empty());
        assert_eq!(d.write("A", "jwt-3-c.end").unwrap().0, 2, "generations keep rising");
    }
}
