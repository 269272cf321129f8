//! The name changes a crash may undo, for the storages that model one (the
//! core's [`MemStorage`](super::MemStorage), the simulator's disk).
//!
//! The contract says creations, removals and renames not covered by a
//! completed sync are undone by a crash newest first, and that a sync of
//! a file whose name is new covers them (an fsync of the directory does).
//! This log keeps them in order until a sync covers them, and applies them
//! to the durable namespace then, or, at a crash, applies those that
//! survive.

use std::collections::{BTreeMap, VecDeque};

/// A change to the namespace. A creation carries the file as it is made
/// durable when covered (empty, with whatever identity the storage gives
/// files).
#[derive(Clone, Debug)]
enum NameChange<F> {
    Create { name: String, file: F },
    Remove(String),
    Rename { from: String, to: String },
}

/// The name changes no completed sync covers yet, numbered in the order
/// made; see the [module](self) documentation.
#[derive(Debug)]
pub struct NameLog<F> {
    changes: VecDeque<(u64, NameChange<F>)>,
    made: u64,
}

impl<F> Default for NameLog<F> {
    fn default() -> Self {
        NameLog { changes: VecDeque::new(), made: 0 }
    }
}

impl<F> NameLog<F> {
    fn push(&mut self, change: NameChange<F>) {
        self.made += 1;
        self.changes.push_back((self.made, change));
    }

    /// `name` was created; `file` is what the durable namespace holds
    /// under it once the creation is covered.
    pub fn create(&mut self, name: &str, file: F) {
        self.push(NameChange::Create { name: name.to_owned(), file });
    }

    /// `name` was removed.
    pub fn remove(&mut self, name: &str) {
        self.push(NameChange::Remove(name.to_owned()));
    }

    /// `from` was renamed to `to`.
    pub fn rename(&mut self, from: &str, to: &str) {
        self.push(NameChange::Rename { from: from.to_owned(), to: to.to_owned() });
    }

    /// The number of the newest change: what a sync of the directory asked
    /// for now covers through.
    pub fn newest(&self) -> u64 {
        self.made
    }

    /// What a sync of the file `name` asked for now covers of the name
    /// changes: every one made so far when its own name is not yet
    /// durable (it was created or renamed to), none otherwise.
    pub fn covered_by_sync_of(&self, name: &str) -> Option<u64> {
        let new_name = self.changes.iter().any(|(_, c)| match c {
            NameChange::Create { name: n, .. } | NameChange::Rename { to: n, .. } => n == name,
            NameChange::Remove(_) => false,
        });
        new_name.then_some(self.made)
    }

    /// A sync covering the changes up to `through` completed: they are
    /// applied to `durable`, in order.
    pub fn cover(&mut self, through: u64, durable: &mut BTreeMap<String, F>) {
        while self.changes.front().is_some_and(|&(n, _)| n <= through) {
            let (_, change) = self.changes.pop_front().expect("checked");
            apply(change, durable);
        }
    }

    /// How many changes no sync covers.
    pub fn uncovered(&self) -> usize {
        self.changes.len()
    }

    /// A crash: the `kept` oldest changes no sync covered survive (applied
    /// to `durable`), the others are undone.
    pub fn crash(&mut self, kept: usize, durable: &mut BTreeMap<String, F>) {
        for (_, change) in std::mem::take(&mut self.changes).into_iter().take(kept) {
            apply(change, durable);
        }
    }
}

fn apply<F>(change: NameChange<F>, names: &mut BTreeMap<String, F>) {
    match change {
        NameChange::Create { name, file } => {
            names.insert(name, file);
        }
        NameChange::Remove(name) => {
            names.remove(&name);
        }
        NameChange::Rename { from, to } => match names.remove(&from) {
            Some(file) => {
                names.insert(to, file);
            }
            None => {
                names.remove(&to);
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covered_changes_reach_the_durable_namespace_in_order() {
        let mut log = NameLog::default();
        let mut durable = BTreeMap::from([("old".to_owned(), 0)]);
        log.create("a", 1);
        log.rename("a", "old");
        assert_eq!(log.covered_by_sync_of("old"), Some(2), "a new name covers everything before");
        assert_eq!(log.covered_by_sync_of("other"), None);
        log.remove("x");
        log.cover(2, &mut durable);
        assert_eq!(durable, BTreeMap::from([("old".to_owned(), 1)]), "the rename replaced old");
        assert_eq!(log.uncovered(), 1);
        log.crash(0, &mut durable);
        assert_eq!(log.uncovered(), 0);
        assert_eq!(durable, BTreeMap::from([("old".to_owned(), 1)]));
    }

    #[test]
    fn a_crash_keeps_a_prefix() {
        let mut log = NameLog::default();
        let mut durable = BTreeMap::new();
        log.create("a", 1);
        log.create("b", 2);
        log.remove("a");
        log.crash(2, &mut durable);
        assert_eq!(durable, BTreeMap::from([("a".to_owned(), 1), ("b".to_owned(), 2)]));
    }
}
