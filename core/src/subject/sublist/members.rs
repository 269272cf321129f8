//! The subscribers at one node of the trie.
//!
//! Nearly every node holds one subscriber, or a handful: a B-tree would
//! allocate a node for eleven of them to hold one, which at a million
//! subscriptions is most of the index's memory. So a few live in a sorted
//! vector sized to its contents, and only a crowd gets a B-tree.

use std::collections::BTreeSet;

/// Above this many a node's subscribers move to a B-tree (inserting into
/// a sorted vector shifts its tail; past a few dozen that costs more).
const FEW_MAX: usize = 16;

/// A set of subscribers, iterated in order.
#[derive(Debug)]
pub(super) enum Members<T> {
    Few(Vec<T>),
    Many(BTreeSet<T>),
}

impl<T> Default for Members<T> {
    fn default() -> Self {
        Members::Few(Vec::new())
    }
}

impl<T: Ord> Members<T> {
    /// One subscriber, in an allocation of its own size.
    pub fn one(value: T) -> Self {
        // `vec![x]` allocates exactly one slot.
        Members::Few(vec![value])
    }

    /// Adds `value`; false if it was there already.
    pub fn insert(&mut self, value: T) -> bool {
        match self {
            Members::Few(few) => match few.binary_search(&value) {
                Ok(_) => false,
                Err(at) if few.len() < FEW_MAX => {
                    few.reserve_exact(1);
                    few.insert(at, value);
                    true
                }
                Err(_) => {
                    let mut many: BTreeSet<T> = few.drain(..).collect();
                    many.insert(value);
                    *self = Members::Many(many);
                    true
                }
            },
            Members::Many(many) => many.insert(value),
        }
    }

    /// Removes `value`; false if it was not there.
    pub fn remove(&mut self, value: &T) -> bool {
        match self {
            Members::Few(few) => match few.binary_search(value) {
                Ok(at) => {
                    few.remove(at);
                    true
                }
                Err(_) => false,
            },
            Members::Many(many) => many.remove(value),
        }
    }
}

impl<T> Members<T> {
    pub fn is_empty(&self) -> bool {
        match self {
            Members::Few(few) => few.is_empty(),
            Members::Many(many) => many.is_empty(),
        }
    }

    /// The subscribers, in order.
    pub fn iter(&self) -> Iter<'_, T> {
        match self {
            Members::Few(few) => Iter::Few(few.iter()),
            Members::Many(many) => Iter::Many(many.iter()),
        }
    }
}

/// Iterates over [`Members`] in order.
pub(super) enum Iter<'a, T> {
    Few(std::slice::Iter<'a, T>),
    Many(std::collections::btree_set::Iter<'a, T>),
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        match self {
            Iter::Few(it) => it.next(),
            Iter::Many(it) => it.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_set_across_the_switch() {
        let mut members = Members::default();
        let mut model = BTreeSet::new();
        // Inserts and removes in a scrambled order, past FEW_MAX and back.
        for i in 0..200u32 {
            let v = (i * 37) % 50;
            if i % 3 == 2 {
                assert_eq!(members.remove(&v), model.remove(&v));
            } else {
                assert_eq!(members.insert(v), model.insert(v));
            }
            assert!(members.iter().eq(model.iter()), "out of order or different at step {i}");
            assert_eq!(members.is_empty(), model.is_empty());
        }
        assert!(matches!(members, Members::Many(_)), "a crowd moved to the tree");
        let one = Members::one(7u32);
        assert!(one.iter().eq([7].iter()));
    }
}
