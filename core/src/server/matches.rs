//! Match results kept by whoever publishes, so that a publish does not
//! take the account index's lock: each session keeps one, the control
//! plane one per account.
//!
//! A cache is valid for one generation of one account's index (the
//! generation moves on every insert and remove, see [`AccountShared`]); it
//! is checked on every lookup, so a result is never used after a change.

use std::sync::Arc;

use hashbrown::HashMap;

use crate::subject::hash::SeededState;
use crate::subject::SublistResult;
use crate::sync::Ordering;

use super::{AccountShared, SubRef};

/// Above this many cached matches a cache forgets them all.
const MATCH_CACHE_MAX: usize = 256;

/// Matches of one account's index, valid for one generation.
pub(super) struct MatchCache {
    account: Option<Arc<AccountShared>>,
    genid: u64,
    entries: HashMap<Vec<u8>, Arc<SublistResult<SubRef>>, SeededState>,
    /// The last match of a subject not worth caching (see [`one_shot`]).
    uncached: Option<Arc<SublistResult<SubRef>>>,
}

/// Subjects used once each: a JetStream ack subject names one delivery,
/// so caching its match would only push out the matches that repeat (a
/// consumer acking message by message cleared the cache every 256 acks).
fn one_shot(subject: &[u8]) -> bool {
    subject.starts_with(b"$JS.ACK.")
}

impl MatchCache {
    /// An empty cache; `seed` keys its hashing.
    pub fn new(seed: u64) -> Self {
        MatchCache { account: None, genid: 0, entries: HashMap::with_hasher(SeededState::new(seed)), uncached: None }
    }

    /// The match of `subject` in `account`'s index, borrowed: no reference
    /// count moves on a hit (an `Arc` clone per publish writes to a line
    /// other threads read).
    pub fn lookup(&mut self, account: &Arc<AccountShared>, subject: &[u8]) -> &Arc<SublistResult<SubRef>> {
        let genid = account.genid.load(Ordering::Acquire);
        if genid != self.genid || !self.account.as_ref().is_some_and(|a| Arc::ptr_eq(a, account)) {
            self.entries.clear();
            self.genid = genid;
            self.account = Some(Arc::clone(account));
        }
        if one_shot(subject) {
            return self.uncached.insert(Arc::new(account.index.read().match_uncached(subject)));
        }
        if self.entries.len() >= MATCH_CACHE_MAX && !self.entries.contains_key(subject) {
            self.entries.clear();
        }
        self.entries.entry_ref(subject).or_insert_with(|| account.index.write().match_subject(subject))
    }
}
