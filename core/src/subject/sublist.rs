//! The subscription index: a trie over subject tokens with a match cache,
//! shaped like nats-server's sublist.
//!
//! Each level of the trie has literal children (in a hash map with a seeded
//! hasher, see [`super::hash`]; nothing iterates it where order could
//! reach an output), one `*` child and one `>` child. Each node holds the
//! plain subscribers and the queue subscribers (grouped by queue name) of
//! the subscription subject that ends there.
//!
//! [`Sublist::match_subject`] answers "who receives a message published to
//! this literal subject" as a shared [`SublistResult`], cached per literal
//! subject. A cache hit costs one map lookup and one `Arc` clone. Inserts
//! and removes patch the cached results they affect in place (a literal
//! subscription touches at most one entry, found directly; a wildcard one
//! scans the bounded cache), so the cache never serves a stale answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::HashMap;

use self::members::Members;
use super::hash::SeededState;
use super::{
    has_no_empty_token, is_full_wildcard, is_literal, is_partial_wildcard, is_valid_subject,
    split_first_token, subject_matches, tokens,
};

/// Above this many cached results the cache is swept (nats-server's
/// `slCacheMax`).
pub const CACHE_MAX: usize = 1024;
/// A sweep keeps this many of the most recently used results (nats-server's
/// `slCacheSweep`).
pub const CACHE_SWEEP_TO: usize = 256;

/// Why an insert was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SublistError {
    /// The subject fails [`is_valid_subject`](super::is_valid_subject);
    /// nats-server answers `-ERR 'Invalid Subject'`.
    #[error("sublist: invalid subject")]
    InvalidSubject,
    /// This exact (subject, queue, value) is already in the index.
    #[error("sublist: subscription already present")]
    AlreadyPresent,
}

/// Who receives a message published to one literal subject.
///
/// The order is canonical, whatever the history of the index: `plain` is
/// sorted, `queues` is sorted by queue name and each group's members are
/// sorted. A value subscribed through several matching patterns appears
/// once per pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SublistResult<T> {
    /// Plain (non-queue) subscribers: each gets a copy.
    pub plain: Vec<T>,
    /// Queue groups, by name: one member of each gets a copy.
    pub queues: Vec<(Bytes, Vec<T>)>,
}

impl<T> Default for SublistResult<T> {
    fn default() -> Self {
        Self {
            plain: Vec::new(),
            queues: Vec::new(),
        }
    }
}

impl<T: Ord> SublistResult<T> {
    /// True if nobody is interested.
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.queues.is_empty()
    }

    /// Plain subscribers plus queue groups: how nats-server counts a
    /// result's fanout in `/subsz`.
    pub fn fanout(&self) -> usize {
        self.plain.len() + self.queues.len()
    }

    /// Adds one subscriber at its canonical place.
    fn add(&mut self, queue: Option<&[u8]>, value: T) {
        let list = match queue {
            None => &mut self.plain,
            Some(name) => match self.queues.binary_search_by(|(q, _)| q.as_ref().cmp(name)) {
                Ok(i) => &mut self.queues[i].1,
                Err(i) => {
                    self.queues
                        .insert(i, (Bytes::copy_from_slice(name), Vec::new()));
                    &mut self.queues[i].1
                }
            },
        };
        let at = list.partition_point(|v| v <= &value);
        list.insert(at, value);
    }

    /// Removes one occurrence of a subscriber, dropping an emptied group.
    fn remove(&mut self, queue: Option<&[u8]>, value: &T) {
        match queue {
            None => remove_one_sorted(&mut self.plain, value),
            Some(name) => {
                if let Ok(i) = self.queues.binary_search_by(|(q, _)| q.as_ref().cmp(name)) {
                    remove_one_sorted(&mut self.queues[i].1, value);
                    if self.queues[i].1.is_empty() {
                        self.queues.remove(i);
                    }
                }
            }
        }
    }
}

fn remove_one_sorted<T: Ord>(list: &mut Vec<T>, value: &T) {
    if let Ok(i) = list.binary_search(value) {
        list.remove(i);
    }
}

/// Counters and cache figures, named as in nats-server's `/subsz`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SublistStats {
    /// `num_subscriptions`: subscriptions in the index.
    pub num_subscriptions: u32,
    /// `num_cache`: cached results.
    pub num_cache: u32,
    /// `num_inserts`: inserts ever made.
    pub num_inserts: u64,
    /// `num_removes`: removes ever made.
    pub num_removes: u64,
    /// `num_matches`: matches ever asked for.
    pub num_matches: u64,
    /// `cache_hit_rate`: cache hits / matches (0 when no match yet).
    pub cache_hit_rate: f64,
    /// `max_fanout`: largest fanout among cached results.
    pub max_fanout: u32,
    /// `avg_fanout`: mean fanout of the cached results (0 when none).
    pub avg_fanout: f64,
    /// Sum of the cached results' fanouts, kept so [`SublistStats::add`]
    /// can average across several sublists.
    pub total_fanout: u64,
    /// Cache hits behind `cache_hit_rate`, kept for [`SublistStats::add`].
    pub cache_hits: u64,
}

impl SublistStats {
    /// Folds another sublist's stats into these, as `/subsz` does across
    /// accounts: sums, the largest `max_fanout`, and recomputed ratios.
    pub fn add(&mut self, other: &SublistStats) {
        self.num_subscriptions += other.num_subscriptions;
        self.num_cache += other.num_cache;
        self.num_inserts += other.num_inserts;
        self.num_removes += other.num_removes;
        self.num_matches += other.num_matches;
        self.cache_hits += other.cache_hits;
        self.total_fanout += other.total_fanout;
        self.max_fanout = self.max_fanout.max(other.max_fanout);
        self.recompute_ratios();
    }

    fn recompute_ratios(&mut self) {
        self.cache_hit_rate = ratio(self.cache_hits, self.num_matches);
        self.avg_fanout = ratio(self.total_fanout, u64::from(self.num_cache));
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// One trie level: the children for the next token.
struct Level<T> {
    literals: HashMap<Box<[u8]>, Node<T>, SeededState>,
    partial_wildcard: Option<Box<Node<T>>>,
    full_wildcard: Option<Box<Node<T>>>,
}

impl<T> Level<T> {
    fn new(state: SeededState) -> Self {
        Self {
            literals: HashMap::with_hasher(state),
            partial_wildcard: None,
            full_wildcard: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.literals.is_empty() && self.partial_wildcard.is_none() && self.full_wildcard.is_none()
    }

    fn child_ref(&self, token: &[u8]) -> Option<&Node<T>> {
        if is_partial_wildcard(token) {
            self.partial_wildcard.as_deref()
        } else if is_full_wildcard(token) {
            self.full_wildcard.as_deref()
        } else {
            self.literals.get(token)
        }
    }

    fn child_count(&self) -> usize {
        self.literals.len()
            + usize::from(self.partial_wildcard.is_some())
            + usize::from(self.full_wildcard.is_some())
    }

    fn child_mut(&mut self, token: &[u8]) -> Option<&mut Node<T>> {
        if is_partial_wildcard(token) {
            self.partial_wildcard.as_deref_mut()
        } else if is_full_wildcard(token) {
            self.full_wildcard.as_deref_mut()
        } else {
            self.literals.get_mut(token)
        }
    }

    fn child_or_insert(&mut self, token: &[u8]) -> &mut Node<T> {
        if is_partial_wildcard(token) {
            self.partial_wildcard.get_or_insert_with(Box::default)
        } else if is_full_wildcard(token) {
            self.full_wildcard.get_or_insert_with(Box::default)
        } else {
            // Look up first so the common "already there" case does not
            // allocate a key.
            if !self.literals.contains_key(token) {
                self.literals.insert(token.into(), Node::default());
            }
            self.literals.get_mut(token).expect("just ensured present")
        }
    }

    fn remove_child(&mut self, token: &[u8]) {
        if is_partial_wildcard(token) {
            self.partial_wildcard = None;
        } else if is_full_wildcard(token) {
            self.full_wildcard = None;
        } else {
            self.literals.remove(token);
        }
    }
}

impl<T> Drop for Level<T> {
    /// Dismantles the levels below iteratively: the default drop would
    /// recurse once per token and could overflow the stack on a subject of
    /// many thousands of tokens.
    fn drop(&mut self) {
        let mut below = Vec::new();
        self.detach_children(&mut below);
        while let Some(mut level) = below.pop() {
            level.detach_children(&mut below);
        }
    }
}

impl<T> Level<T> {
    fn detach_children(&mut self, into: &mut Vec<Level<T>>) {
        let literals = std::mem::take(&mut self.literals).into_values();
        let wildcards = [self.partial_wildcard.take(), self.full_wildcard.take()];
        let wildcards = wildcards.into_iter().flatten().map(|n| *n);
        into.extend(literals.chain(wildcards).filter_map(|n| n.next).map(|b| *b));
    }
}

/// The end of one subscription subject (and the way on to longer ones).
struct Node<T> {
    next: Option<Box<Level<T>>>,
    plain: Members<T>,
    queues: BTreeMap<Bytes, Members<T>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self {
            next: None,
            plain: Members::default(),
            queues: BTreeMap::new(),
        }
    }
}

impl<T: Ord> Node<T> {
    fn insert(&mut self, queue: Option<&[u8]>, value: T) -> bool {
        match queue {
            None => self.plain.insert(value),
            Some(name) => match self.queues.get_mut(name) {
                Some(members) => members.insert(value),
                None => {
                    self.queues.insert(Bytes::copy_from_slice(name), Members::one(value));
                    true
                }
            },
        }
    }

    fn remove(&mut self, queue: Option<&[u8]>, value: &T) -> bool {
        match queue {
            None => self.plain.remove(value),
            Some(name) => {
                let Some(members) = self.queues.get_mut(name) else {
                    return false;
                };
                let removed = members.remove(value);
                if members.is_empty() {
                    self.queues.remove(name);
                }
                removed
            }
        }
    }
}

/// A cached result and when it was last used (for the sweep).
struct CacheEntry<T> {
    result: Arc<SublistResult<T>>,
    last_used: u64,
}

/// Bounded map from literal subject to result. Keys are ordered so that
/// sweeps and scans are deterministic.
struct MatchCache<T> {
    entries: HashMap<Box<[u8]>, CacheEntry<T>, SeededState>,
    clock: u64,
}

impl<T> MatchCache<T> {
    fn get(&mut self, literal: &[u8]) -> Option<Arc<SublistResult<T>>> {
        let entry = self.entries.get_mut(literal)?;
        self.clock += 1;
        entry.last_used = self.clock;
        Some(Arc::clone(&entry.result))
    }

    fn store(&mut self, literal: &[u8], result: Arc<SublistResult<T>>) {
        self.clock += 1;
        let entry = CacheEntry {
            result,
            last_used: self.clock,
        };
        self.entries.insert(literal.into(), entry);
        if self.entries.len() > CACHE_MAX {
            self.sweep();
        }
    }

    /// Keeps the [`CACHE_SWEEP_TO`] most recently used results. nats-server
    /// drops arbitrary ones; recency is as cheap and deterministic.
    fn sweep(&mut self) {
        let mut uses: Vec<u64> = self.entries.values().map(|e| e.last_used).collect();
        let cut = uses.len() - CACHE_SWEEP_TO;
        let (_, threshold, _) = uses.select_nth_unstable(cut);
        let threshold = *threshold;
        // `last_used` values are distinct, so exactly CACHE_SWEEP_TO remain.
        self.entries.retain(|_, e| e.last_used >= threshold);
        debug_assert_eq!(self.entries.len(), CACHE_SWEEP_TO);
    }
}

/// The subscription index. `T` is the caller's subscriber handle: a small
/// `Copy` key is ideal, since results hold copies of it.
///
/// A given (subject, queue, value) is present at most once; the same value
/// may be present under several subjects.
pub struct Sublist<T> {
    root: Level<T>,
    hasher: SeededState,
    cache: Option<MatchCache<T>>,
    count: usize,
    inserts: u64,
    removes: u64,
    matches: u64,
    cache_hits: u64,
}

impl<T> std::fmt::Debug for Sublist<T> {
    /// A summary: the trie itself is too large to print usefully.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sublist")
            .field("count", &self.count)
            .field("cache_enabled", &self.cache.is_some())
            .field("inserts", &self.inserts)
            .field("removes", &self.removes)
            .finish_non_exhaustive()
    }
}

impl<T: Clone + Ord> Default for Sublist<T> {
    fn default() -> Self {
        Self::new(true)
    }
}

impl<T: Clone + Ord> Sublist<T> {
    /// An empty index with a fixed hash seed; `cache` false is
    /// nats-server's `disable_sublist_cache`. Servers should prefer
    /// [`Sublist::with_seed`].
    pub fn new(cache: bool) -> Self {
        Self::with_seed(cache, 0)
    }

    /// An empty index whose internal hashing is keyed by `seed`: draw it
    /// from the node's RNG so that clients cannot aim subjects at one hash
    /// bucket. Results never depend on the seed.
    pub fn with_seed(cache: bool, seed: u64) -> Self {
        let hasher = SeededState::new(seed);
        Self {
            root: Level::new(hasher),
            hasher,
            cache: cache.then(|| MatchCache {
                entries: HashMap::with_hasher(hasher),
                clock: 0,
            }),
            count: 0,
            inserts: 0,
            removes: 0,
            matches: 0,
            cache_hits: 0,
        }
    }

    /// Whether results are cached.
    pub fn cache_enabled(&self) -> bool {
        self.cache.is_some()
    }

    /// Number of subscriptions in the index.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Number of cached results.
    pub fn cache_count(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.entries.len())
    }

    /// Adds a subscription. `subject` may hold wildcards; it must pass
    /// [`is_valid_subject`](super::is_valid_subject).
    pub fn insert(
        &mut self,
        subject: &[u8],
        queue: Option<&[u8]>,
        value: T,
    ) -> Result<(), SublistError> {
        if !is_valid_subject(subject) {
            return Err(SublistError::InvalidSubject);
        }
        let node = self.node_or_insert(subject);
        if !node.insert(queue, value.clone()) {
            return Err(SublistError::AlreadyPresent);
        }
        self.count += 1;
        self.inserts += 1;
        self.patch_cache(subject, |r| r.add(queue, value.clone()));
        Ok(())
    }

    /// Removes a subscription; false if it was not there. Nodes left empty
    /// are pruned so that churn does not grow the trie.
    pub fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, value: &T) -> bool {
        if !remove_from_level(&mut self.root, subject, queue, value) {
            return false;
        }
        self.count -= 1;
        self.removes += 1;
        self.patch_cache(subject, |r| r.remove(queue, value));
        true
    }

    /// Who receives a message published to `literal`.
    ///
    /// Every token of `literal` is taken literally (see
    /// [`subject_matches`](super::subject_matches)); a subject with an
    /// empty token matches nobody. A cache hit does not allocate.
    pub fn match_subject(&mut self, literal: &[u8]) -> Arc<SublistResult<T>> {
        self.matches += 1;
        if let Some(hit) = self.cache.as_mut().and_then(|c| c.get(literal)) {
            self.cache_hits += 1;
            return hit;
        }
        if !has_no_empty_token(literal) {
            // Not cached, as in nats-server: such subjects are junk.
            return Arc::new(SublistResult::default());
        }
        let result = Arc::new(self.collect(literal));
        if let Some(cache) = self.cache.as_mut() {
            cache.store(literal, Arc::clone(&result));
        }
        result
    }

    /// Who receives a message published to `literal`, without the cache:
    /// for subjects used once (a reply inbox), which would only churn it.
    pub fn match_uncached(&self, literal: &[u8]) -> SublistResult<T> {
        if !has_no_empty_token(literal) {
            return SublistResult::default();
        }
        self.collect(literal)
    }

    /// Stats for `/subsz`. Fanout figures come from the cached results, as
    /// in nats-server (so they are zero with the cache disabled).
    pub fn stats(&self) -> SublistStats {
        let mut stats = SublistStats {
            num_subscriptions: saturate_u32(self.count),
            num_cache: saturate_u32(self.cache_count()),
            num_inserts: self.inserts,
            num_removes: self.removes,
            num_matches: self.matches,
            cache_hits: self.cache_hits,
            ..SublistStats::default()
        };
        if let Some(cache) = &self.cache {
            for entry in cache.entries.values() {
                let fanout = entry.result.fanout();
                stats.total_fanout += fanout as u64;
                stats.max_fanout = stats.max_fanout.max(saturate_u32(fanout));
            }
        }
        stats.recompute_ratios();
        stats
    }

    /// Visits every subscription, in subject order (tokens compared
    /// bytewise, with `*` and `>` after the literal siblings), for
    /// `/subsz?subs=1`. The subject slice is only valid during the call.
    pub fn for_each(&self, mut visit: impl FnMut(&[u8], Option<&[u8]>, &T)) {
        visit_levels(&self.root, &mut visit);
    }

    /// Every subscription as owned `(subject, queue, value)` triples, in the
    /// order of [`Sublist::for_each`].
    pub fn all_subscriptions(&self) -> Vec<(Bytes, Option<Bytes>, T)> {
        let mut all = Vec::with_capacity(self.count);
        self.for_each(|subject, queue, value| {
            let queue = queue.map(Bytes::copy_from_slice);
            all.push((Bytes::copy_from_slice(subject), queue, value.clone()));
        });
        all
    }

    /// The subscriptions that a message published to `test` would reach,
    /// with their subjects, for `/subsz?test=`. Does not touch the cache or
    /// the counters.
    pub fn subscriptions_matching(&self, test: &[u8]) -> Vec<(Bytes, Option<Bytes>, T)> {
        let mut hits = Vec::new();
        self.for_each(|subject, queue, value| {
            if subject_matches(subject, test) {
                let queue = queue.map(Bytes::copy_from_slice);
                hits.push((Bytes::copy_from_slice(subject), queue, value.clone()));
            }
        });
        hits
    }

    fn node_or_insert(&mut self, subject: &[u8]) -> &mut Node<T> {
        let hasher = self.hasher;
        let mut level = &mut self.root;
        let mut remaining = tokens(subject);
        loop {
            let token = remaining.next().expect("a subject has at least one token");
            let node = level.child_or_insert(token);
            if remaining.is_done() {
                return node;
            }
            level = node
                .next
                .get_or_insert_with(|| Box::new(Level::new(hasher)));
        }
    }

    /// Applies a change to every cached result the subscription `subject`
    /// takes part in. A literal subscription can only be in the result for
    /// that very subject.
    fn patch_cache(&mut self, subject: &[u8], mut change: impl FnMut(&mut SublistResult<T>)) {
        let Some(cache) = self.cache.as_mut() else {
            return;
        };
        if is_literal(subject) {
            if let Some(entry) = cache.entries.get_mut(subject) {
                change(Arc::make_mut(&mut entry.result));
            }
            return;
        }
        for (literal, entry) in cache.entries.iter_mut() {
            if subject_matches(subject, literal) {
                change(Arc::make_mut(&mut entry.result));
            }
        }
    }

    fn collect(&self, literal: &[u8]) -> SublistResult<T> {
        let mut found = Collector {
            plain: Vec::new(),
            queues: Vec::new(),
        };
        collect_levels(&self.root, literal, &mut found);
        found.finish()
    }
}

fn saturate_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Removes one subscription, then prunes the nodes it leaves empty. Both
/// walks are loops, not recursion, so a subject of many thousands of tokens
/// (a large `max_control_line`) cannot exhaust the stack.
fn remove_from_level<T: Ord>(
    root: &mut Level<T>,
    subject: &[u8],
    queue: Option<&[u8]>,
    value: &T,
) -> bool {
    let Some(node) = find_node_mut(root, subject) else {
        return false;
    };
    if !node.remove(queue, value) {
        return false;
    }
    if let Some(depth) = prunable_from(root, subject) {
        prune_at(root, subject, depth);
    }
    true
}

fn find_node_mut<'a, T>(root: &'a mut Level<T>, subject: &[u8]) -> Option<&'a mut Node<T>> {
    let mut level = root;
    let mut remaining = tokens(subject);
    loop {
        let node = level.child_mut(remaining.next()?)?;
        if remaining.is_done() {
            return Some(node);
        }
        level = node.next.as_deref_mut()?;
    }
}

/// The depth (token index) of the highest node on `subject`'s path whose
/// whole subtree is now just the empty chain down to the subject's end; all
/// of it can go.
fn prunable_from<T: Ord>(root: &Level<T>, subject: &[u8]) -> Option<usize> {
    let mut level = root;
    let mut cut = None;
    let mut remaining = tokens(subject);
    let mut depth = 0;
    while let Some(token) = remaining.next() {
        let node = level.child_ref(token)?;
        // Below the subject's end nothing may hang; above it, only the path.
        let only_path = node.plain.is_empty()
            && node.queues.is_empty()
            && match node.next.as_deref() {
                None => true,
                Some(next) => !remaining.is_done() && next.child_count() == 1,
            };
        cut = match (only_path, cut) {
            (true, None) => Some(depth),
            (true, kept) => kept,
            (false, _) => None,
        };
        match node.next.as_deref() {
            Some(next) => level = next,
            None => break,
        }
        depth += 1;
    }
    cut
}

/// Cuts off the node at token index `depth` of `subject` (the path is known
/// to exist), and the parent's level too if that leaves it empty.
fn prune_at<T>(root: &mut Level<T>, subject: &[u8], depth: usize) {
    let mut remaining = tokens(subject);
    if depth == 0 {
        root.remove_child(remaining.next().expect("path exists"));
        return;
    }
    let mut level = root;
    for _ in 0..depth - 1 {
        let node = level.child_mut(remaining.next().expect("path exists"));
        level = node
            .and_then(|n| n.next.as_deref_mut())
            .expect("path exists");
    }
    let parent = level.child_mut(remaining.next().expect("path exists"));
    let parent = parent.expect("path exists");
    let next = parent.next.as_deref_mut().expect("path exists");
    next.remove_child(remaining.next().expect("path exists"));
    if next.is_empty() {
        parent.next = None;
    }
}

/// Subscribers gathered during one trie walk, before canonical ordering.
struct Collector<'a, T> {
    plain: Vec<T>,
    queues: Vec<(&'a Bytes, Vec<T>)>,
}

impl<'a, T: Clone + Ord> Collector<'a, T> {
    fn add(&mut self, node: &'a Node<T>) {
        self.plain.extend(node.plain.iter().cloned());
        for (name, members) in &node.queues {
            // Few distinct groups match one subject: a linear scan beats a map.
            match self.queues.iter_mut().find(|(n, _)| *n == name) {
                Some((_, found)) => found.extend(members.iter().cloned()),
                None => self.queues.push((name, members.iter().cloned().collect())),
            }
        }
    }

    fn finish(mut self) -> SublistResult<T> {
        self.plain.sort_unstable();
        self.queues.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let queues = self
            .queues
            .into_iter()
            .map(|(name, mut members)| {
                members.sort_unstable();
                (name.clone(), members)
            })
            .collect();
        SublistResult {
            plain: self.plain,
            queues,
        }
    }
}

/// Walks the literal path of `literal`, and each `*` branch off it, with
/// an explicit worklist (no recursion: see [`remove_from_level`]); `>`
/// children match whatever remains.
fn collect_levels<'a, T: Clone + Ord>(
    root: &'a Level<T>,
    literal: &[u8],
    found: &mut Collector<'a, T>,
) {
    let mut pending: Vec<(&'a Level<T>, &[u8])> = vec![(root, literal)];
    while let Some((level, remaining)) = pending.pop() {
        walk_literal_path(level, remaining, found, &mut pending);
    }
}

fn walk_literal_path<'a, 'l, T: Clone + Ord>(
    mut level: &'a Level<T>,
    mut remaining: &'l [u8],
    found: &mut Collector<'a, T>,
    pending: &mut Vec<(&'a Level<T>, &'l [u8])>,
) {
    loop {
        let (token, rest) = split_first_token(remaining);
        if let Some(fwc) = level.full_wildcard.as_deref() {
            found.add(fwc);
        }
        if let Some(pwc) = level.partial_wildcard.as_deref() {
            match (rest, pwc.next.as_deref()) {
                (None, _) => found.add(pwc),
                (Some(rest), Some(next)) => pending.push((next, rest)),
                (Some(_), None) => {}
            }
        }
        let Some(node) = level.literals.get(token) else {
            return;
        };
        match (rest, node.next.as_deref()) {
            (None, _) => return found.add(node),
            (Some(rest), Some(next)) => {
                level = next;
                remaining = rest;
            }
            (Some(_), None) => return,
        }
    }
}

/// Pre-order depth-first visit with an explicit stack. Each entry is the
/// length of its parent's subject, its token and its node.
fn visit_levels<T>(root: &Level<T>, visit: &mut impl FnMut(&[u8], Option<&[u8]>, &T)) {
    let mut subject = Vec::new();
    let mut stack: Vec<(usize, &[u8], &Node<T>)> = Vec::new();
    push_children(root, 0, &mut stack);
    while let Some((parent_len, token, node)) = stack.pop() {
        subject.truncate(parent_len);
        if parent_len > 0 {
            subject.push(super::TOKEN_SEPARATOR);
        }
        subject.extend_from_slice(token);
        visit_node(node, &subject, visit);
        if let Some(next) = node.next.as_deref() {
            push_children(next, subject.len(), &mut stack);
        }
    }
}

/// Pushes a level's children so that they pop in order: literals by bytes,
/// then `*`, then `>`.
fn push_children<'a, T>(
    level: &'a Level<T>,
    parent_len: usize,
    stack: &mut Vec<(usize, &'a [u8], &'a Node<T>)>,
) {
    if let Some(node) = level.full_wildcard.as_deref() {
        stack.push((parent_len, b">", node));
    }
    if let Some(node) = level.partial_wildcard.as_deref() {
        stack.push((parent_len, b"*", node));
    }
    // Sorted here, off the hot path, since the map has no order.
    let mut literals: Vec<(&'a [u8], &'a Node<T>)> =
        level.literals.iter().map(|(t, n)| (&t[..], n)).collect();
    literals.sort_unstable_by(|a, b| b.0.cmp(a.0));
    stack.extend(literals.into_iter().map(|(t, n)| (parent_len, t, n)));
}

fn visit_node<T>(node: &Node<T>, subject: &[u8], visit: &mut impl FnMut(&[u8], Option<&[u8]>, &T)) {
    for value in node.plain.iter() {
        visit(subject, None, value);
    }
    for (name, members) in &node.queues {
        for value in members.iter() {
            visit(subject, Some(name), value);
        }
    }
}

mod members;

#[cfg(test)]
mod tests;
