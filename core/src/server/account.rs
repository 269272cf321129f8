//! Accounts: isolated subject spaces. Every client belongs to one; messages
//! never cross accounts except through exports and imports.

use crate::subject::sublist::Sublist;

use super::SubRef;

/// One account and its subscription index.
pub(crate) struct Account {
    pub name: String,
    pub sublist: Sublist<SubRef>,
}

impl Account {
    /// `seed` keys the index's hashing, so clients cannot aim subjects at one bucket.
    pub fn new(name: &str, cache: bool, seed: u64) -> Self {
        Account { name: name.to_owned(), sublist: Sublist::with_seed(cache, seed) }
    }
}
