//! The core's [`Storage`] on real files: each name is a file in one
//! directory (the NATS resolver's `dir`), created if missing as nats-server
//! creates it.
//!
//! `sync` runs `fsync` right away, inline, while the caller holds the core
//! lock: the resolver syncs only on a claim update or delete, rare enough
//! that a blocking fsync there costs less than the machinery to move it to
//! another thread. The completion is still reported the way the contract
//! asks, as an input after the call: the token goes to a queue the driver
//! drains into [`natrix_core::server::Control::handle_synced`].

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use natrix_core::storage::{plain_name, Storage, StorageError, SyncToken};

/// Completed sync tokens, waiting for the driver to hand them to the core.
pub type Completions = Arc<Mutex<Vec<SyncToken>>>;

/// A directory of files behind the core's [`Storage`] trait.
#[derive(Debug)]
pub struct DirStorage {
    dir: PathBuf,
    next_token: u64,
    /// A name was created or removed since the directory was last synced:
    /// a directory entry is durable only after an fsync of the directory.
    dir_changed: bool,
    completions: Completions,
}

impl DirStorage {
    /// Opens `dir`, creating it (and its parents) if missing.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<DirStorage> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(DirStorage {
            dir,
            next_token: 1,
            dir_changed: false,
            completions: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// The queue of completed syncs, for the driver.
    pub fn completions(&self) -> Completions {
        self.completions.clone()
    }

    /// The file for `name`; names with a path separator or that climb out
    /// of the directory are refused.
    fn path(&self, name: &str) -> Result<PathBuf, StorageError> {
        plain_name(name)?;
        Ok(self.dir.join(name))
    }

    fn sync_dir(&mut self) -> std::io::Result<()> {
        if self.dir_changed {
            File::open(&self.dir)?.sync_all()?;
            self.dir_changed = false;
        }
        Ok(())
    }

    fn complete(&mut self) -> SyncToken {
        let token = SyncToken(self.next_token);
        self.next_token += 1;
        match self.completions.lock() {
            Ok(mut queue) => queue.push(token),
            Err(poisoned) => poisoned.into_inner().push(token),
        }
        token
    }
}

/// The plain files in `dir`, sorted; an error when the directory or one
/// of its entries cannot be read. Names that are not UTF-8 are not ones
/// natrix writes, and are left out.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<String>, StorageError> {
    let failed = |e: &std::io::Error| error(&dir.to_string_lossy(), e);
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| failed(&e))? {
        let entry = entry.map_err(|e| failed(&e))?;
        if entry.file_type().map_err(|e| failed(&e))?.is_file() {
            names.extend(entry.file_name().into_string().ok());
        }
    }
    names.sort();
    Ok(names)
}

pub(crate) fn error(name: &str, e: &std::io::Error) -> StorageError {
    match e.kind() {
        ErrorKind::NotFound => StorageError::NotFound {
            file: name.to_owned(),
        },
        ErrorKind::StorageFull => StorageError::NoSpace {
            file: name.to_owned(),
        },
        _ => StorageError::Io {
            file: name.to_owned(),
            detail: e.to_string(),
        },
    }
}

pub(crate) fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

impl Storage for DirStorage {
    fn append(&mut self, file: &str, data: &[u8]) -> Result<u64, StorageError> {
        let path = self.path(file)?;
        let created = !exists(&path);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| error(file, &e))?;
        self.dir_changed |= created;
        let offset = f.metadata().map_err(|e| error(file, &e))?.len();
        f.write_all(data).map_err(|e| {
            // Leave no partial write behind a failure, as the contract promises.
            let _ = f.set_len(offset);
            error(file, &e)
        })?;
        Ok(offset)
    }

    fn read(&mut self, file: &str, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        let mut f = File::open(self.path(file)?).map_err(|e| error(file, &e))?;
        let file_len = f.metadata().map_err(|e| error(file, &e))?.len();
        if offset.saturating_add(len as u64) > file_len {
            return Err(StorageError::OutOfRange {
                file: file.to_owned(),
                offset,
                len: len as u64,
                file_len,
            });
        }
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| error(file, &e))?;
        let mut buf = vec![0; len];
        f.read_exact(&mut buf).map_err(|e| error(file, &e))?;
        Ok(Bytes::from(buf))
    }

    fn truncate(&mut self, file: &str, len: u64) -> Result<(), StorageError> {
        let f = OpenOptions::new()
            .write(true)
            .open(self.path(file)?)
            .map_err(|e| error(file, &e))?;
        let file_len = f.metadata().map_err(|e| error(file, &e))?.len();
        if len > file_len {
            return Err(StorageError::OutOfRange {
                file: file.to_owned(),
                offset: len,
                len: 0,
                file_len,
            });
        }
        f.set_len(len).map_err(|e| error(file, &e))
    }

    fn remove(&mut self, file: &str) -> Result<(), StorageError> {
        fs::remove_file(self.path(file)?).map_err(|e| error(file, &e))?;
        self.dir_changed = true;
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>, StorageError> {
        list_files(&self.dir)
    }

    fn len(&self, file: &str) -> Result<u64, StorageError> {
        let meta = fs::metadata(self.path(file)?).map_err(|e| error(file, &e))?;
        Ok(meta.len())
    }

    fn sync(&mut self, file: &str) -> Result<SyncToken, StorageError> {
        let path = self.path(file)?;
        match File::open(&path) {
            Ok(f) => f.sync_data().map_err(|e| error(file, &e))?,
            // A removed (or never created) file: only the directory has
            // anything to make durable. Remembering every removed name to
            // tell the two apart would grow without bound.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(error(file, &e)),
        }
        self.sync_dir().map_err(|e| error(file, &e))?;
        Ok(self.complete())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(label: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("natrix-storage-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn keeps_the_storage_contract() {
        let mut n = 0;
        natrix_core::storage::contract::check_all(|| {
            n += 1;
            DirStorage::open(scratch(&format!("contract-{n}"))).unwrap()
        });
    }

    #[test]
    fn files_round_trip_and_syncs_complete_in_order() {
        let root = scratch("round-trip");
        let mut s = DirStorage::open(root.join("jwt")).unwrap();
        assert_eq!(s.append("A.jwt.1", b"hello").unwrap(), 0);
        assert_eq!(s.append("A.jwt.1", b" world").unwrap(), 5);
        assert_eq!(&s.read("A.jwt.1", 6, 5).unwrap()[..], b"world");
        assert!(matches!(
            s.read("A.jwt.1", 6, 50),
            Err(StorageError::OutOfRange { .. })
        ));
        let first = s.sync("A.jwt.1").unwrap();
        s.truncate("A.jwt.1", 5).unwrap();
        assert_eq!(s.len("A.jwt.1").unwrap(), 5);
        s.append("B.jwt.1", b"x").unwrap();
        assert_eq!(s.list().unwrap(), ["A.jwt.1", "B.jwt.1"]);
        s.remove("A.jwt.1").unwrap();
        let second = s.sync("A.jwt.1").unwrap();
        assert!(second > first);
        let third = s.sync("never").unwrap();
        assert_eq!(*s.completions().lock().unwrap(), [first, second, third]);
        assert_eq!(
            s.append("../escape", b"x"),
            Err(StorageError::InvalidName {
                file: "../escape".into()
            })
        );
        assert!(matches!(
            s.read("..", 0, 1),
            Err(StorageError::InvalidName { .. })
        ));
        fs::remove_dir_all(root).unwrap();
    }
}
