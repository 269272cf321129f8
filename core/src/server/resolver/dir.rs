//! The NATS resolver's `dir`: account JWTs kept on a [`Storage`] so that an
//! acknowledged claim update survives a crash, in nats-server's own layout
//! so that either server can take the directory over at any time.
//!
//! # Layout
//!
//! At rest the directory is exactly nats-server's: one `<account key>.jwt`
//! per account holding the raw JWT, and `<key>.jwt.deleted` for an account
//! deleted with `allow_delete` (nats-server renames the file aside). The
//! storage trait has no rename, so `<key>.jwt` cannot be replaced
//! atomically; an update goes through a write-ahead file instead:
//!
//! 1. the JWT is written to `<key>.jwt.<generation>` (one more than any
//!    generation of the key seen or written) and synced; when the sync
//!    completes the update is durable ([`JwtDir::write`]);
//! 2. the older write-ahead files of the key are removed and those removals
//!    synced, then `<key>.jwt` is rewritten (truncated, appended) and synced
//!    ([`JwtDir::settle`]); when that sync completes the update is
//!    acknowledged, so that every acknowledged JWT is in the file
//!    nats-server reads;
//! 3. the write-ahead file is removed and the removal synced
//!    ([`JwtDir::discard`]).
//!
//! Loading takes, per key, among `<key>.jwt` and the write-ahead files that
//! decode as the key's signed account JWT, the newest by the JWT's `iat`
//! (nats-server's rule for which claim is newer); on a tie a write-ahead
//! file beats `<key>.jwt`, and a higher generation a lower one. So at every
//! point of a crash:
//!
//! - before step 1's sync completes, the new file may be missing, empty or
//!   torn; a torn JWT fails to decode, so the previous state is used;
//! - during step 2, `<key>.jwt` may be old, empty or torn, but the durable
//!   write-ahead file is there and wins (an update never lowers `iat`);
//! - the write-ahead file is removed only after `<key>.jwt` holds its JWT
//!   durably and every older write-ahead file is durably gone: a removal a
//!   crash undoes leaves a file that ties `<key>.jwt` with the same JWT, and
//!   no older one can come back and win a tie with it.
//!
//! A `<key>.jwt` written by nats-server is read like natrix's own, and a
//! JWT nats-server stored after natrix ran wins over a leftover write-ahead
//! file when it was issued later. A deletion removes every file of the key
//! and syncs each removal; `allow_delete` without `hard_delete` first keeps
//! the JWT aside as `<key>.jwt.deleted`.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::storage::{Storage, StorageError, SyncLedger, SyncToken};

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
            let Ok(bytes) = self.read_all(name) else {
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

    fn read_all(&mut self, name: &str) -> Result<Bytes, StorageError> {
        let len = self.storage.len(name)?;
        let len = usize::try_from(len).map_err(|_| StorageError::OutOfRange {
            file: name.to_owned(),
            offset: 0,
            len,
            file_len: len,
        })?;
        self.storage.read(name, 0, len)
    }

    /// Writes `jwt` to the next write-ahead file of `key` and asks for its
    /// sync. Nothing may rely on it until the returned token completes;
    /// then [`JwtDir::settle`] moves it into `<key>.jwt`. On failure the
    /// partial file is removed (best effort: a torn leftover never decodes).
    pub fn write(&mut self, key: &str, jwt: &str) -> Result<(u64, SyncToken), StorageError> {
        let generation = self.generations.get(key).map_or(1, |g| g + 1);
        self.generations.insert(key.to_owned(), generation);
        let name = wal_name(key, generation);
        let written = self
            .storage
            .append(&name, jwt.as_bytes())
            .and_then(|_| self.storage.sync(&name));
        match written {
            Ok(token) => Ok((generation, token)),
            Err(e) => {
                let _ = self.storage.remove(&name);
                Err(e)
            }
        }
    }

    /// Once write-ahead file `generation` of `key` (holding `jwt`) is
    /// durable: removes the older write-ahead files durably, then rewrites
    /// `<key>.jwt` to hold `jwt`. When the returned token completes,
    /// [`JwtDir::discard`] may remove the write-ahead file. On an error the
    /// write-ahead file stays, and loading finishes the work later.
    pub fn settle(
        &mut self,
        key: &str,
        generation: u64,
        jwt: &str,
    ) -> Result<SyncToken, StorageError> {
        for older in self.wals_of(key)?.into_iter().filter(|g| *g < generation) {
            self.remove_durably(&wal_name(key, older))?;
        }
        self.replace(&main_name(key), jwt)
    }

    /// Removes write-ahead file `generation` of `key`, now that `<key>.jwt`
    /// holds its JWT durably, and returns the token after which the removal
    /// is durable (`None` when there was nothing to make durable).
    pub fn discard(
        &mut self,
        key: &str,
        generation: u64,
    ) -> Result<Option<SyncToken>, StorageError> {
        self.remove_durably(&wal_name(key, generation))
    }

    /// Removes the write-ahead files of `key` other than `keep` (every one
    /// when `None`), syncing each removal; the last token, if any removal
    /// needed one. They lost to the loaded JWT (torn, older, or the same
    /// JWT as `<key>.jwt`). Errors are left for the next load, which ranks
    /// the leftovers the same way.
    fn remove_wals_except(&mut self, key: &str, keep: Option<u64>) -> Option<SyncToken> {
        let mut last = None;
        for generation in self.wals_of(key).unwrap_or_default() {
            if Some(generation) == keep {
                continue;
            }
            if let Ok(Some(token)) = self.remove_durably(&wal_name(key, generation)) {
                last = Some(token);
            }
        }
        last
    }

    /// Removes `name` and asks for the removal's sync: a removal not synced
    /// may be undone by a crash.
    fn remove_durably(&mut self, name: &str) -> Result<Option<SyncToken>, StorageError> {
        match self.storage.remove(name) {
            Ok(()) => {}
            Err(StorageError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
        match self.storage.sync(name) {
            Ok(token) => Ok(Some(token)),
            // The file never reached the disk: its removal has nothing to make durable.
            Err(StorageError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
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
        let mut last = None;
        if let Some(jwt) = keep_aside {
            last = Some(self.replace(&deleted_name(key), jwt)?);
        }
        for file in files {
            let name = file.map_or_else(|| main_name(key), |g| wal_name(key, g));
            if let Some(token) = self.remove_durably(&name)? {
                last = Some(token);
            }
        }
        Ok(last)
    }

    /// Makes `name` hold exactly `text` and asks for its sync.
    fn replace(&mut self, name: &str, text: &str) -> Result<SyncToken, StorageError> {
        match self.storage.truncate(name, 0) {
            Ok(()) | Err(StorageError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        self.storage.append(name, text.as_bytes())?;
        self.storage.sync(name)
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

    /// A disk that keeps, per file, what was synced and what was written.
    #[derive(Default)]
    struct MemDisk {
        volatile: BTreeMap<String, Vec<u8>>,
        durable: BTreeMap<String, Vec<u8>>,
        next_token: u64,
    }

    impl MemDisk {
        /// Loses everything not synced; the torn file keeps half its tail.
        fn crash(&mut self, torn: &str) {
            let mut after = self.durable.clone();
            if let Some(v) = self.volatile.get(torn) {
                after.insert(torn.to_owned(), v[..v.len() / 2].to_vec());
            }
            self.volatile = after;
        }
    }

    /// Shares one disk between a directory and the test.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<MemDisk>>);

    impl Storage for Shared {
        fn append(&mut self, file: &str, data: &[u8]) -> Result<u64, StorageError> {
            let mut d = self.0.lock().unwrap();
            let f = d.volatile.entry(file.to_owned()).or_default();
            f.extend_from_slice(data);
            Ok((f.len() - data.len()) as u64)
        }
        fn read(&mut self, file: &str, offset: u64, len: usize) -> Result<Bytes, StorageError> {
            let d = self.0.lock().unwrap();
            let f = d
                .volatile
                .get(file)
                .ok_or(StorageError::NotFound { file: file.into() })?;
            Ok(Bytes::copy_from_slice(
                &f[offset as usize..offset as usize + len],
            ))
        }
        fn truncate(&mut self, file: &str, len: u64) -> Result<(), StorageError> {
            let mut d = self.0.lock().unwrap();
            let f = d
                .volatile
                .get_mut(file)
                .ok_or(StorageError::NotFound { file: file.into() })?;
            f.truncate(len as usize);
            Ok(())
        }
        fn remove(&mut self, file: &str) -> Result<(), StorageError> {
            let mut d = self.0.lock().unwrap();
            d.volatile
                .remove(file)
                .map(|_| ())
                .ok_or(StorageError::NotFound { file: file.into() })
        }
        fn list(&self) -> Result<Vec<String>, StorageError> {
            Ok(self.0.lock().unwrap().volatile.keys().cloned().collect())
        }
        fn len(&self, file: &str) -> Result<u64, StorageError> {
            let d = self.0.lock().unwrap();
            d.volatile
                .get(file)
                .map(|f| f.len() as u64)
                .ok_or(StorageError::NotFound { file: file.into() })
        }
        fn sync(&mut self, file: &str) -> Result<SyncToken, StorageError> {
            let mut d = self.0.lock().unwrap();
            match d.volatile.get(file).cloned() {
                Some(v) => d.durable.insert(file.to_owned(), v),
                None => d.durable.remove(file),
            };
            d.next_token += 1;
            Ok(SyncToken(d.next_token))
        }
    }

    fn dir(disk: &Shared) -> JwtDir<&'static str> {
        JwtDir::new(Box::new(disk.clone()))
    }

    /// A "JWT" is valid here when it is a complete `jwt-<iat>-<tag>.end`.
    fn valid(_: &str, text: &str) -> Option<i64> {
        let body = text.strip_prefix("jwt-")?.strip_suffix(".end")?;
        body.split('-').next()?.parse().ok()
    }

    fn names(disk: &Shared) -> Vec<String> {
        disk.0.lock().unwrap().volatile.keys().cloned().collect()
    }

    fn put_durable(disk: &Shared, name: &str, text: &str) {
        let mut d = disk.0.lock().unwrap();
        d.volatile.insert(name.into(), text.as_bytes().to_vec());
        d.durable.insert(name.into(), text.as_bytes().to_vec());
    }

    fn content(disk: &Shared, name: &str) -> String {
        String::from_utf8(disk.0.lock().unwrap().volatile[name].clone()).unwrap()
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
        let disk = Shared::default();
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
        let disk = Shared::default();
        let mut d = dir(&disk);
        let (generation, token) = d.write("A", "jwt-1-a.end").unwrap();
        assert_eq!(generation, 1);
        d.wait_for(token, "written");
        assert_eq!(d.next_completed(), None, "its sync is outstanding");
        d.completed(&[token]);
        assert_eq!(d.next_completed(), Some("written"));
        assert_eq!(d.next_completed(), None);
        d.settle("A", generation, "jwt-1-a.end").unwrap();
        assert_eq!(names(&disk), ["A.jwt", "A.jwt.1"]);
        assert!(d.discard("A", generation).unwrap().is_some());
        assert_eq!(names(&disk), ["A.jwt"]);
        assert_eq!(content(&disk, "A.jwt"), "jwt-1-a.end");
        disk.0.lock().unwrap().crash("");
        assert_eq!(names(&disk), ["A.jwt"], "every step was synced");
        let loaded = dir(&disk).load(valid);
        assert_eq!(
            loaded.accounts["A"],
            StoredJwt {
                jwt: "jwt-1-a.end".into(),
                wal: None
            }
        );
    }

    #[test]
    fn settling_removes_older_write_ahead_files_first() {
        let disk = Shared::default();
        let mut d = dir(&disk);
        d.write("A", "jwt-1-a.end").unwrap();
        let (second, _) = d.write("A", "jwt-1-b.end").unwrap();
        d.settle("A", second, "jwt-1-b.end").unwrap();
        assert_eq!(names(&disk), ["A.jwt", "A.jwt.2"]);
        disk.0.lock().unwrap().crash("A.jwt");
        let loaded = dir(&disk).load(valid);
        assert_eq!(
            loaded.accounts["A"].jwt, "jwt-1-b.end",
            "same iat: the later write wins"
        );
        assert_eq!(loaded.accounts["A"].wal, Some(2));
    }

    #[test]
    fn a_torn_rewrite_falls_back_to_the_write_ahead_file() {
        let disk = Shared::default();
        put_durable(&disk, "A.jwt", "jwt-1-old.end");
        let mut d = dir(&disk);
        assert_eq!(d.load(valid).accounts["A"].jwt, "jwt-1-old.end");
        let (generation, _) = d.write("A", "jwt-1-new.end").unwrap();
        // The write-ahead file is durable; the rewrite of A.jwt is torn by a crash.
        disk.0
            .lock()
            .unwrap()
            .durable
            .insert("A.jwt.1".into(), b"jwt-1-new.end".to_vec());
        d.settle("A", generation, "jwt-1-new.end").unwrap();
        disk.0.lock().unwrap().durable.remove("A.jwt");
        disk.0.lock().unwrap().crash("A.jwt");
        let loaded = dir(&disk).load(valid);
        assert_eq!(
            loaded.accounts["A"],
            StoredJwt {
                jwt: "jwt-1-new.end".into(),
                wal: Some(1)
            }
        );
        assert_eq!(loaded.skipped, ["A.jwt"]);
    }

    #[test]
    fn a_torn_write_ahead_file_falls_back_to_the_stored_jwt() {
        let disk = Shared::default();
        put_durable(&disk, "A.jwt", "jwt-1-a.end");
        let mut d = dir(&disk);
        d.load(valid);
        d.write("A", "jwt-2-b.end").unwrap();
        disk.0.lock().unwrap().durable.remove("A.jwt.1");
        disk.0.lock().unwrap().crash("A.jwt.1");
        let mut after = dir(&disk);
        let loaded = after.load(valid);
        assert_eq!(loaded.accounts["A"].jwt, "jwt-1-a.end");
        assert_eq!(loaded.skipped, ["A.jwt.1"]);
        assert_eq!(loaded.cleaned.len(), 1, "the torn file is removed");
        assert_eq!(names(&disk), ["A.jwt"]);
        assert_eq!(
            after.write("A", "jwt-3-c.end").unwrap().0,
            2,
            "numbered above the torn one"
        );
    }

    #[test]
    fn a_newer_jwt_nats_server_stored_wins_over_a_leftover_write_ahead_file() {
        let disk = Shared::default();
        // natrix crashed before finishing an update; nats-server then ran and
        // stored a JWT issued later in A.jwt.
        put_durable(&disk, "A.jwt.4", "jwt-5-natrix.end");
        put_durable(&disk, "A.jwt", "jwt-7-nats-server.end");
        let loaded = dir(&disk).load(valid);
        assert_eq!(
            loaded.accounts["A"],
            StoredJwt {
                jwt: "jwt-7-nats-server.end".into(),
                wal: None
            }
        );
        assert_eq!(
            names(&disk),
            ["A.jwt"],
            "the stale write-ahead file is gone"
        );
        // An older one in A.jwt loses to the write-ahead file.
        put_durable(&disk, "B.jwt.1", "jwt-5-natrix.end");
        put_durable(&disk, "B.jwt", "jwt-3-older.end");
        let loaded = dir(&disk).load(valid);
        assert_eq!(loaded.accounts["B"].wal, Some(1));
    }

    #[test]
    fn delete_removes_every_file_and_keeps_the_jwt_aside() {
        let disk = Shared::default();
        let mut d = dir(&disk);
        put_durable(&disk, "A.jwt", "jwt-1-a.end");
        d.write("A", "jwt-2-b.end").unwrap();
        assert!(d.delete("A", Some("jwt-2-b.end")).unwrap().is_some());
        assert_eq!(d.delete("A", None).unwrap(), None, "nothing left");
        disk.0.lock().unwrap().crash("");
        assert_eq!(names(&disk), ["A.jwt.deleted"]);
        assert_eq!(content(&disk, "A.jwt.deleted"), "jwt-2-b.end");
        assert!(dir(&disk).load(valid).accounts.is_empty());
        assert_eq!(
            d.write("A", "jwt-3-c.end").unwrap().0,
            2,
            "generations keep rising"
        );
    }
}
