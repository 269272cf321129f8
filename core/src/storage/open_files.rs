//! The table of open files behind the [`FileId`]s a [`Storage`] hands out.
//!
//! Every implementation keeps the same rules for handles (see
//! [`crate::storage`]): one handle per open file, counted; a handle follows
//! its file through a rename; removal, replacement or the last close makes
//! it stale for good. This table keeps them, with whatever each
//! implementation holds per open file (a real file descriptor, or nothing
//! where the files are looked up by name).
//!
//! [`Storage`]: super::Storage

use std::collections::BTreeMap;

use super::{FileId, StorageError};

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    open: Option<Open<T>>,
}

#[derive(Debug)]
struct Open<T> {
    name: String,
    count: u32,
    value: T,
}

/// Open files by handle and by name; see the [module](self) documentation.
#[derive(Debug)]
pub struct OpenFiles<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    by_name: BTreeMap<String, u32>,
}

impl<T> Default for OpenFiles<T> {
    fn default() -> Self {
        OpenFiles { slots: Vec::new(), free: Vec::new(), by_name: BTreeMap::new() }
    }
}

impl<T> OpenFiles<T> {
    /// The handle of `name` with one more count when it is open; otherwise
    /// `value()` is asked for what to keep with it, and a new handle made.
    pub fn open(
        &mut self,
        name: &str,
        value: impl FnOnce() -> Result<T, StorageError>,
    ) -> Result<FileId, StorageError> {
        if let Some(id) = self.reopen(name) {
            return Ok(id);
        }
        let value = value()?;
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 open files");
                self.slots.push(Slot { generation: 0, open: None });
                slot
            }
        };
        let s = &mut self.slots[slot as usize];
        s.open = Some(Open { name: name.to_owned(), count: 1, value });
        self.by_name.insert(name.to_owned(), slot);
        Ok(FileId { slot, generation: s.generation })
    }

    /// The handle of `name` with one more count, if it is open.
    pub fn reopen(&mut self, name: &str) -> Option<FileId> {
        let &slot = self.by_name.get(name)?;
        let s = &mut self.slots[slot as usize];
        s.open.as_mut().expect("a named slot is open").count += 1;
        Some(FileId { slot, generation: s.generation })
    }

    fn live(&self, id: FileId) -> Option<&Open<T>> {
        let s = self.slots.get(id.slot as usize)?;
        s.open.as_ref().filter(|_| s.generation == id.generation)
    }

    /// The name and value of `id`'s file, or `StaleHandle`.
    pub fn get(&self, id: FileId) -> Result<(&str, &T), StorageError> {
        self.live(id).map(|o| (o.name.as_str(), &o.value)).ok_or(StorageError::StaleHandle { handle: id })
    }

    /// The name and value of `id`'s file, or `StaleHandle`.
    pub fn get_mut(&mut self, id: FileId) -> Result<(&str, &mut T), StorageError> {
        let s = self.slots.get_mut(id.slot as usize).ok_or(StorageError::StaleHandle { handle: id })?;
        match &mut s.open {
            Some(o) if s.generation == id.generation => Ok((o.name.as_str(), &mut o.value)),
            _ => Err(StorageError::StaleHandle { handle: id }),
        }
    }

    /// Gives back one count of `id`; returns the value when that was the
    /// last (the handle is stale from now on). A stale `id` is ignored.
    pub fn close(&mut self, id: FileId) -> Option<T> {
        let open = self.live(id)?;
        if open.count > 1 {
            let s = &mut self.slots[id.slot as usize];
            s.open.as_mut().expect("live").count -= 1;
            return None;
        }
        let name = open.name.clone();
        self.release(&name)
    }

    /// The file `name` is gone (removed, or replaced by a rename): its
    /// handle goes stale whatever its count; returns its value.
    pub fn release(&mut self, name: &str) -> Option<T> {
        let slot = self.by_name.remove(name)?;
        let s = &mut self.slots[slot as usize];
        let open = s.open.take().expect("a named slot is open");
        // A handle of the old generation never reaches the slot's next file.
        s.generation = s.generation.wrapping_add(1);
        self.free.push(slot);
        Some(open.value)
    }

    /// The file `from` is now called `to`: its handle follows it, and the
    /// handle of a file `to` replaced goes stale (its value is returned).
    pub fn rename(&mut self, from: &str, to: &str) -> Option<T> {
        if from == to {
            return None;
        }
        let replaced = self.release(to);
        if let Some(slot) = self.by_name.remove(from) {
            self.slots[slot as usize].open.as_mut().expect("a named slot is open").name = to.to_owned();
            self.by_name.insert(to.to_owned(), slot);
        }
        replaced
    }

    /// Every handle goes stale (the files' owner is gone, as after a
    /// crash).
    pub fn release_all(&mut self) {
        let names: Vec<String> = self.by_name.keys().cloned().collect();
        for name in names {
            self.release(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: u8) -> impl FnOnce() -> Result<u8, StorageError> {
        move || Ok(v)
    }

    #[test]
    fn an_open_file_has_one_counted_handle() {
        let mut t = OpenFiles::default();
        let a = t.open("a", ok(1)).unwrap();
        assert_eq!(t.open("a", ok(9)).unwrap(), a, "opened again: the same handle, not a new value");
        assert_eq!(t.get(a).unwrap(), ("a", &1));
        assert_eq!(t.close(a), None, "one count left");
        assert_eq!(t.get(a).unwrap(), ("a", &1));
        assert_eq!(t.close(a), Some(1), "the last count");
        assert!(matches!(t.get(a), Err(StorageError::StaleHandle { .. })));
        assert_eq!(t.close(a), None, "a stale handle is ignored");
    }

    #[test]
    fn a_reused_slot_is_never_reached_by_an_old_handle() {
        let mut t = OpenFiles::default();
        let a = t.open("a", ok(1)).unwrap();
        assert_eq!(t.release("a"), Some(1));
        let b = t.open("b", ok(2)).unwrap();
        assert_ne!(a, b, "same slot, next generation");
        assert!(matches!(t.get(a), Err(StorageError::StaleHandle { .. })));
        assert!(matches!(t.get_mut(a), Err(StorageError::StaleHandle { .. })));
        assert_eq!(t.close(a), None, "closing the old handle leaves the new file open");
        assert_eq!(t.get(b).unwrap(), ("b", &2));
    }

    #[test]
    fn a_handle_follows_its_file_and_the_replaced_one_goes_stale() {
        let mut t = OpenFiles::default();
        let a = t.open("a", ok(1)).unwrap();
        let b = t.open("b", ok(2)).unwrap();
        assert_eq!(t.rename("a", "b"), Some(2));
        assert_eq!(t.get(a).unwrap(), ("b", &1));
        assert!(matches!(t.get(b), Err(StorageError::StaleHandle { .. })));
        assert_eq!(t.open("b", ok(3)).unwrap(), a, "the renamed file is open under its new name");
        assert!(t.reopen("a").is_none());
        assert_eq!(t.rename("b", "b"), None, "a rename onto itself changes nothing");
        assert_eq!(t.get(a).unwrap(), ("b", &1));
    }

    #[test]
    fn a_refused_open_makes_no_handle() {
        let mut t: OpenFiles<u8> = OpenFiles::default();
        assert!(t.open("a", || Err(StorageError::NotFound { file: "a".into() })).is_err());
        assert!(t.reopen("a").is_none());
        let a = t.open("a", ok(1)).unwrap();
        assert_eq!(t.get(a).unwrap(), ("a", &1));
    }
}
