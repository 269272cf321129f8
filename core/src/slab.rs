//! A slab whose keys carry a generation, so a key outlives nothing.
//!
//! Connections, subscriptions and anything else the server indexes by
//! position live in a [`Slab`]. Its [`Key`] names a position *and* the
//! generation of the value put there: removing a value bumps the
//! generation, so a key kept somewhere (in a subscription index, a timer,
//! a reply table) stops resolving the moment its value goes, and never
//! resolves to whoever takes the position next. A position whose generation
//! is exhausted is retired rather than reused, so no key can come back to
//! life by wrap-around.

use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;

/// Names one value of a [`Slab<T>`]: its position and that position's generation.
pub(crate) struct Key<T> {
    index: u32,
    generation: u32,
    of: PhantomData<fn() -> T>,
}

impl<T> Key<T> {
    /// A key no slab ever hands out (a sentinel: "not a slab value").
    pub(crate) const NONE: Key<T> = Key { index: u32::MAX, generation: u32::MAX, of: PhantomData };
}

impl<T> Clone for Key<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Key<T> {}

impl<T> PartialEq for Key<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.index, self.generation) == (other.index, other.generation)
    }
}

impl<T> Eq for Key<T> {}

impl<T> PartialOrd for Key<T> {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Key<T> {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        (self.index, self.generation).cmp(&(other.index, other.generation))
    }
}

impl<T> Hash for Key<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.index, self.generation).hash(state);
    }
}

impl<T> fmt::Debug for Key<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.index, self.generation)
    }
}

struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

/// Values addressed by generation-checked [`Key`]s.
pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { entries: Vec::new(), free: Vec::new(), len: 0 }
    }
}

impl<T: fmt::Debug> fmt::Debug for Slab<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<T> Slab<T> {
    /// Stores `value`; returns its key. Positions are reused, generations never.
    pub(crate) fn insert(&mut self, value: T) -> Key<T> {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let entry = &mut self.entries[index as usize];
            debug_assert!(entry.value.is_none(), "a free slab position holds a value");
            entry.value = Some(value);
            return Key { index, generation: entry.generation, of: PhantomData };
        }
        let index = u32::try_from(self.entries.len())
            .ok()
            .filter(|&i| i < u32::MAX)
            .expect("a slab holds fewer than u32::MAX values");
        self.entries.push(Entry { generation: 0, value: Some(value) });
        Key { index, generation: 0, of: PhantomData }
    }

    /// The value `key` names, if it is still there.
    pub(crate) fn get(&self, key: Key<T>) -> Option<&T> {
        let entry = self.entries.get(key.index as usize)?;
        if entry.generation != key.generation {
            return None;
        }
        entry.value.as_ref()
    }

    /// The value `key` names, if it is still there.
    pub(crate) fn get_mut(&mut self, key: Key<T>) -> Option<&mut T> {
        let entry = self.entries.get_mut(key.index as usize)?;
        if entry.generation != key.generation {
            return None;
        }
        entry.value.as_mut()
    }

    /// Takes the value out; from now on `key` (and any copy of it) names nothing.
    pub(crate) fn remove(&mut self, key: Key<T>) -> Option<T> {
        let entry = self.entries.get_mut(key.index as usize)?;
        if entry.generation != key.generation {
            return None;
        }
        let value = entry.value.take()?;
        self.len -= 1;
        // A position whose every generation is used up is retired.
        if let Some(next) = entry.generation.checked_add(1) {
            entry.generation = next;
            self.free.push(key.index);
        }
        Some(value)
    }

    /// Number of values.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every value with its key, in position order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Key<T>, &T)> + '_ {
        self.entries.iter().enumerate().filter_map(|(i, e)| {
            let key = Key { index: i as u32, generation: e.generation, of: PhantomData };
            e.value.as_ref().map(|v| (key, v))
        })
    }

    /// Removes every value, returning them with the keys they had.
    pub(crate) fn drain(&mut self) -> Vec<(Key<T>, T)> {
        let keys: Vec<Key<T>> = self.iter().map(|(k, _)| k).collect();
        keys.into_iter().filter_map(|k| self.remove(k).map(|v| (k, v))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_key_names_nothing_even_after_reuse() {
        let mut slab = Slab::default();
        let a = slab.insert("a");
        assert_eq!(slab.get(a), Some(&"a"));
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.get(a), None, "gone at once, before the position is reused");
        let b = slab.insert("b");
        assert_eq!(a.index, b.index, "the position is reused");
        assert_ne!(a, b);
        assert_eq!(slab.get(a), None, "the old key does not reach the new owner");
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn an_exhausted_position_is_retired() {
        let mut slab = Slab::default();
        let a = slab.insert(1);
        slab.entries[a.index as usize].generation = u32::MAX;
        let a = Key { generation: u32::MAX, ..a };
        assert_eq!(slab.remove(a), Some(1));
        let b = slab.insert(2);
        assert_ne!(a.index, b.index, "a position with no generation left is never reused");
        assert!(slab.get(Key::NONE).is_none());
    }

    #[test]
    fn drain_empties_and_invalidates() {
        let mut slab = Slab::default();
        let keys: Vec<_> = (0..5).map(|i| slab.insert(i)).collect();
        slab.remove(keys[2]);
        let drained = slab.drain();
        assert_eq!(drained.iter().map(|(_, v)| *v).collect::<Vec<_>>(), [0, 1, 3, 4]);
        assert_eq!(slab.len(), 0);
        assert!(keys.iter().all(|&k| slab.get(k).is_none()));
    }
}
