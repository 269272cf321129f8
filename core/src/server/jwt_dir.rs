//! The NATS resolver's `dir`: account JWTs kept on a [`Storage`] so that an
//! acknowledged claim update survives a crash.
//!
//! # Layout
//!
//! Each version of an account's JWT is its own file,
//! `<account key>.jwt.<generation>`, written once and never appended to.
//! An update writes generation `n + 1` (one more than any generation of the
//! key seen or written), syncs it, and only when that sync has completed is
//! the update acknowledged and the older generations removed. Loading takes,
//! per key, the highest generation whose content decodes as a signed account
//! JWT of that key. So at every point of a crash:
//!
//! - before the new generation's sync completes, the new file may be missing,
//!   empty or torn; a torn JWT fails to decode (its signature no longer
//!   verifies), so the previous generation, still in place, is used;
//! - after it completes, the new file is durable and is the highest valid one;
//! - removing old generations can be undone by a crash, which only leaves
//!   lower generations that loading ignores.
//!
//! The storage trait has no rename, hence generations instead of nats-server's
//! single `<key>.jwt` replaced in place. A `<key>.jwt` found in the directory
//! (one nats-server wrote) is generation 0, so switching servers keeps the
//! accounts; it is removed like any older generation once an update of the
//! account is durable. A deletion removes every generation
//! and syncs each removal; `allow_delete` without `hard_delete` first keeps
//! the JWT aside as `<key>.jwt.deleted`, as nats-server renames it.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::storage::{Storage, StorageError, SyncToken};

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

/// Generation 0 is nats-server's own `<key>.jwt`: a directory nats-server
/// wrote is read as it is, and its files are replaced by generations as the
/// accounts are updated.
fn generation_name(key: &str, generation: u64) -> String {
    if generation == 0 {
        format!("{key}{EXTENSION}")
    } else {
        format!("{key}{EXTENSION}.{generation}")
    }
}

/// `(key, generation)` of a generation file's name.
fn parse_name(name: &str) -> Option<(&str, u64)> {
    if let Some(key) = name.strip_suffix(EXTENSION).filter(|k| !k.is_empty()) {
        return Some((key, 0));
    }
    let (key, generation) = name.rsplit_once('.')?;
    let key = key.strip_suffix(EXTENSION)?;
    let digits = !generation.is_empty() && generation.bytes().all(|b| b.is_ascii_digit());
    Some((key, generation.parse().ok().filter(|_| digits)?))
}

/// One account's JWT as loaded from the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StoredJwt {
    /// The JWT text.
    pub jwt: String,
    /// The generation it was read from.
    pub generation: u64,
}

/// The account JWTs of the directory: one per key that has a valid
/// generation, plus a line for each file that was passed over.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    /// Account key → its newest valid JWT.
    pub accounts: BTreeMap<String, StoredJwt>,
    /// Generations that did not decode (torn by a crash, or damaged).
    pub skipped: Vec<String>,
}

/// The resolver directory over a [`Storage`], plus the work waiting for the
/// syncs it asked for.
pub(crate) struct JwtDir<P> {
    storage: Box<dyn Storage + Send>,
    /// Per key, the highest generation seen or written: the next one is one more.
    generations: BTreeMap<String, u64>,
    /// Work to finish when its sync completes, in token order.
    waiting: VecDeque<(SyncToken, P)>,
}

impl<P> JwtDir<P> {
    /// The directory kept on `storage`.
    pub fn new(storage: Box<dyn Storage + Send>) -> Self {
        JwtDir {
            storage,
            generations: BTreeMap::new(),
            waiting: VecDeque::new(),
        }
    }

    /// Reads every key's newest generation that `valid` accepts (it is given
    /// the key and the text). Remembers every generation seen, valid or not,
    /// so that new ones are numbered above them.
    pub fn load(&mut self, valid: impl Fn(&str, &str) -> bool) -> Loaded {
        let mut by_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for name in self.storage.list() {
            if let Some((key, generation)) = parse_name(&name) {
                by_key.entry(key.to_owned()).or_default().push(generation);
            }
        }
        let mut loaded = Loaded::default();
        for (key, mut generations) in by_key {
            generations.sort_unstable_by(|a, b| b.cmp(a));
            self.generations
                .insert(key.clone(), generations.first().copied().unwrap_or(0));
            for generation in generations {
                let name = generation_name(&key, generation);
                match self.read_valid(&name, |text| valid(&key, text)) {
                    Some(jwt) => {
                        loaded
                            .accounts
                            .insert(key.clone(), StoredJwt { jwt, generation });
                        break;
                    }
                    None => loaded.skipped.push(name),
                }
            }
        }
        loaded
    }

    /// The whole of `name` if it reads as valid text, trying again a few times.
    fn read_valid(&mut self, name: &str, valid: impl Fn(&str) -> bool) -> Option<String> {
        for _ in 0..READ_ATTEMPTS {
            let Ok(bytes) = self.read_all(name) else {
                continue;
            };
            if let Ok(text) = std::str::from_utf8(&bytes) {
                if valid(text) {
                    return Some(text.trim().to_owned());
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

    /// Writes `jwt` as the next generation of `key` and asks for its sync.
    /// Nothing may rely on it until the returned token completes; then
    /// [`JwtDir::prune`] removes the generations it replaces. On failure the
    /// partial file is removed (best effort: a torn leftover never decodes).
    pub fn write(&mut self, key: &str, jwt: &str) -> Result<(u64, SyncToken), StorageError> {
        let generation = self.generations.get(key).map_or(1, |g| g + 1);
        self.generations.insert(key.to_owned(), generation);
        let name = generation_name(key, generation);
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

    /// Removes the generations of `key` below `keep`, once `keep` is durable.
    /// A removal a crash undoes leaves a lower generation, which loading
    /// ignores, so these removals need no sync.
    pub fn prune(&mut self, key: &str, keep: u64) {
        for generation in self.generations_of(key) {
            if generation < keep {
                let _ = self.storage.remove(&generation_name(key, generation));
            }
        }
    }

    fn generations_of(&self, key: &str) -> Vec<u64> {
        let prefix = format!("{key}{EXTENSION}");
        self.storage
            .list()
            .iter()
            .filter(|name| name.starts_with(&prefix))
            .filter_map(|name| parse_name(name))
            .filter(|(k, _)| *k == key)
            .map(|(_, generation)| generation)
            .collect()
    }

    /// Deletes every generation of `key`, first keeping `keep_aside` (the
    /// JWT in use) as `<key>.jwt.deleted` when given. Returns the token
    /// after which the deletion is durable, or `None` when there was nothing
    /// to delete.
    pub fn delete(
        &mut self,
        key: &str,
        keep_aside: Option<&str>,
    ) -> Result<Option<SyncToken>, StorageError> {
        let generations = self.generations_of(key);
        if generations.is_empty() {
            return Ok(None);
        }
        let mut last = None;
        if let Some(jwt) = keep_aside {
            last = Some(self.replace(&deleted_name(key), jwt)?);
        }
        for generation in generations {
            let name = generation_name(key, generation);
            self.storage.remove(&name)?;
            match self.storage.sync(&name) {
                Ok(token) => last = Some(token),
                // The file never reached the disk: its removal has nothing to make durable.
                Err(StorageError::NotFound { .. }) => {}
                Err(e) => return Err(e),
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
    pub fn waiting(&self) -> impl Iterator<Item = &P> + '_ {
        self.waiting.iter().map(|(_, work)| work)
    }

    /// The work whose sync completed now that `token` has (every token up to
    /// it has too), oldest first.
    pub fn completed(&mut self, token: SyncToken) -> Vec<P> {
        let mut done = Vec::new();
        while self.waiting.front().is_some_and(|(t, _)| *t <= token) {
            if let Some((_, work)) = self.waiting.pop_front() {
                done.push(work);
            }
        }
        done
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
        fn list(&self) -> Vec<String> {
            self.0.lock().unwrap().volatile.keys().cloned().collect()
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

    /// A "JWT" is valid here when it is one of the complete test texts.
    fn valid(_: &str, text: &str) -> bool {
        text.starts_with("jwt-") && text.ends_with(".end")
    }

    #[test]
    fn names_parse_back() {
        assert_eq!(parse_name("AKEY.jwt.12"), Some(("AKEY", 12)));
        assert_eq!(parse_name("AKEY.jwt.deleted"), None);
        assert_eq!(parse_name("AKEY.jwt"), Some(("AKEY", 0)));
        assert_eq!(generation_name("AKEY", 0), "AKEY.jwt");
        assert_eq!(parse_name(".jwt"), None);
        assert_eq!(parse_name("AKEY.jwt.+1"), None);
        assert_eq!(parse_name("AKEY.txt.1"), None);
    }

    #[test]
    fn newest_generation_wins_and_old_ones_are_pruned() {
        let disk = Shared::default();
        let mut d = dir(&disk);
        assert_eq!(d.write("A", "jwt-1.end").unwrap().0, 1);
        let (generation, token) = d.write("A", "jwt-2.end").unwrap();
        assert_eq!(generation, 2);
        d.wait_for(token, "second");
        assert_eq!(d.completed(SyncToken(token.0 - 1)), Vec::<&str>::new());
        assert_eq!(d.completed(token), vec!["second"]);
        d.prune("A", generation);
        assert_eq!(
            disk.0.lock().unwrap().volatile.keys().collect::<Vec<_>>(),
            ["A.jwt.2"]
        );
        let loaded = dir(&disk).load(valid);
        assert_eq!(
            loaded.accounts["A"],
            StoredJwt {
                jwt: "jwt-2.end".into(),
                generation: 2
            }
        );
    }

    #[test]
    fn a_directory_nats_server_wrote_is_read_and_taken_over() {
        let disk = Shared::default();
        let legacy = ("A.jwt".to_owned(), b"jwt-0.end".to_vec());
        disk.0.lock().unwrap().volatile.extend([legacy.clone()]);
        disk.0.lock().unwrap().durable.extend([legacy]);
        let mut d = dir(&disk);
        assert_eq!(d.load(valid).accounts["A"].jwt, "jwt-0.end");
        let (generation, _) = d.write("A", "jwt-1.end").unwrap();
        assert_eq!(generation, 1);
        d.prune("A", generation);
        let names: Vec<String> = disk.0.lock().unwrap().volatile.keys().cloned().collect();
        assert_eq!(names, ["A.jwt.1"]);
    }

    #[test]
    fn a_torn_new_generation_falls_back_to_the_synced_one() {
        let disk = Shared::default();
        let mut d = dir(&disk);
        d.write("A", "jwt-1.end").unwrap();
        // The second write's sync never happened: simulate by writing behind the dir's back.
        disk.0
            .lock()
            .unwrap()
            .volatile
            .insert("A.jwt.2".into(), b"jwt-2.end".to_vec());
        disk.0.lock().unwrap().crash("A.jwt.2");
        let mut after = dir(&disk);
        let loaded = after.load(valid);
        assert_eq!(loaded.accounts["A"].jwt, "jwt-1.end");
        assert_eq!(loaded.skipped, ["A.jwt.2"]);
        assert_eq!(
            after.write("A", "jwt-3.end").unwrap().0,
            3,
            "numbered above the torn one"
        );
    }

    #[test]
    fn delete_removes_every_generation_and_keeps_the_jwt_aside() {
        let disk = Shared::default();
        let mut d = dir(&disk);
        d.write("A", "jwt-1.end").unwrap();
        d.write("A", "jwt-2.end").unwrap();
        assert!(d.delete("A", Some("jwt-2.end")).unwrap().is_some());
        assert_eq!(d.delete("A", None).unwrap(), None, "nothing left");
        disk.0.lock().unwrap().crash("");
        let volatile = disk.0.lock().unwrap().volatile.clone();
        assert_eq!(volatile.keys().collect::<Vec<_>>(), ["A.jwt.deleted"]);
        assert!(dir(&disk).load(valid).accounts.is_empty());
        assert_eq!(
            d.write("A", "jwt-3.end").unwrap().0,
            3,
            "generations keep rising"
        );
    }
}
