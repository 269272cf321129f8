//! The indexes both stores keep: entries by sequence, sequences by subject,
//! and the running figures a [`StoreState`] reports.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::{PurgeRequest, StoreState, StoredMsg};
use crate::subject::{is_full_wildcard, is_literal, subject_matches};
use crate::time::UnixNanos;

/// How many entries a wildcard [`Index::next_matching`] checks one by one
/// before it asks every matching subject for its next sequence instead.
const LINEAR_SCAN_MAX: usize = 256;

/// What an index needs to know about a held message.
pub(super) trait Entry {
    /// The subject it was stored under.
    fn subject(&self) -> &Bytes;
    /// Its size as limits count it ([`super::file_record_size`] or
    /// [`super::mem_record_size`], by store).
    fn size(&self) -> u64;
}

impl Entry for StoredMsg {
    fn subject(&self) -> &Bytes {
        &self.subject
    }
    fn size(&self) -> u64 {
        StoredMsg::size(self)
    }
}

/// What a purge request comes down to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PurgePlan {
    /// Everything below `floor` goes, and `first_seq` moves to `floor`
    /// (`last_seq` too, when `floor` is past it). `held` lists the
    /// sequences actually held below `floor`.
    Compact {
        /// The new lowest sequence.
        floor: u64,
        /// The held sequences below it, ascending.
        held: Vec<u64>,
    },
    /// These sequences go, one by one.
    Remove(Vec<u64>),
}

/// Messages by sequence and by subject, with the figures a state needs.
#[derive(Debug)]
pub(super) struct Index<T> {
    entries: BTreeMap<u64, T>,
    subjects: BTreeMap<Bytes, BTreeSet<u64>>,
    /// The highest sequence ever assigned (held or not).
    last_seq: u64,
    last_time: UnixNanos,
    bytes: u64,
}

/// True when `filter` selects every subject.
pub(super) fn selects_all(filter: &[u8]) -> bool {
    filter.is_empty() || is_full_wildcard(filter)
}

impl<T: Entry> Index<T> {
    /// An empty index whose next sequence is `first_seq` (at least 1).
    pub(super) fn new(first_seq: u64) -> Self {
        assert!(first_seq >= 1, "sequences start at 1");
        Index {
            entries: BTreeMap::new(),
            subjects: BTreeMap::new(),
            last_seq: first_seq - 1,
            last_time: UnixNanos(0),
            bytes: 0,
        }
    }

    /// The sequence the next stored message gets.
    pub(super) fn next_seq(&self) -> u64 {
        self.last_seq + 1
    }

    /// The highest sequence ever assigned.
    pub(super) fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// When the last message was stored.
    pub(super) fn last_time(&self) -> UnixNanos {
        self.last_time
    }

    /// The lowest sequence held, or `last_seq + 1` when empty.
    pub(super) fn first_seq(&self) -> u64 {
        self.entries
            .keys()
            .next()
            .copied()
            .unwrap_or(self.last_seq + 1)
    }

    /// The entry at `seq`.
    pub(super) fn get(&self, seq: u64) -> Option<&T> {
        self.entries.get(&seq)
    }

    /// The entries from `seq` on, ascending.
    pub(super) fn range_from(&self, seq: u64) -> impl Iterator<Item = (u64, &T)> {
        self.entries.range(seq..).map(|(&s, e)| (s, e))
    }

    /// Adds `entry` at `seq`, replacing any entry there, and raises
    /// `last_seq` (with `time`) when `seq` is past it.
    pub(super) fn insert(&mut self, seq: u64, entry: T, time: UnixNanos) -> Option<T> {
        // A sequence past the last was never assigned, so holds nothing.
        let old = if seq <= self.last_seq { self.remove(seq) } else { None };
        self.raise_last(seq, time);
        self.bytes += entry.size();
        let subject = match self.subjects.get_key_value(entry.subject()) {
            Some((shared, _)) => shared.clone(),
            None => entry.subject().clone(),
        };
        self.subjects.entry(subject).or_default().insert(seq);
        self.entries.insert(seq, entry);
        old
    }

    /// The index's own copy of `subject`, if it holds messages on it: an
    /// entry can share it rather than carry a copy of its own.
    pub(super) fn shared_subject(&self, subject: &[u8]) -> Option<Bytes> {
        self.subjects.get_key_value(subject).map(|(shared, _)| shared.clone())
    }

    /// Records that `seq` was assigned at `time` (kept when `seq` is new).
    pub(super) fn raise_last(&mut self, seq: u64, time: UnixNanos) {
        if seq > self.last_seq {
            self.last_seq = seq;
            self.last_time = time;
        }
    }

    /// Forgets the entry at `seq`.
    pub(super) fn remove(&mut self, seq: u64) -> Option<T> {
        let entry = self.entries.remove(&seq)?;
        self.bytes -= entry.size();
        if let Some(seqs) = self.subjects.get_mut(entry.subject()) {
            seqs.remove(&seq);
            if seqs.is_empty() {
                self.subjects.remove(entry.subject());
            }
        }
        Some(entry)
    }

    /// The held sequences below `floor`, ascending.
    pub(super) fn held_below(&self, floor: u64) -> Vec<u64> {
        self.entries.range(..floor).map(|(&seq, _)| seq).collect()
    }

    /// The figures of a state (without `lost`).
    /// The held entries' sizes added up.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(super) fn state(&self, first_time: impl Fn(&T) -> UnixNanos) -> StoreState {
        let first_seq = self.first_seq();
        let msgs = self.entries.len() as u64;
        StoreState {
            msgs,
            bytes: self.bytes,
            first_seq,
            first_time: self
                .entries
                .values()
                .next()
                .map_or(UnixNanos(0), first_time),
            last_seq: self.last_seq,
            last_time: self.last_time,
            num_deleted: (self.last_seq + 1 - first_seq) - msgs,
            num_subjects: self.subjects.len() as u64,
            lost: None,
        }
    }

    /// Sequences between `first_seq` and `last_seq` not held.
    pub(super) fn deleted(&self) -> Vec<u64> {
        let mut gone = Vec::new();
        let mut expected = self.first_seq();
        for &seq in self.entries.keys() {
            gone.extend(expected..seq);
            expected = seq + 1;
        }
        gone.extend(expected..=self.last_seq);
        gone
    }

    /// The subjects matching `filter` with their sequence sets.
    fn matching_subjects<'a>(
        &'a self,
        filter: &'a [u8],
    ) -> Box<dyn Iterator<Item = (&'a Bytes, &'a BTreeSet<u64>)> + 'a> {
        if selects_all(filter) {
            Box::new(self.subjects.iter())
        } else if is_literal(filter) {
            Box::new(self.subjects.get_key_value(filter).into_iter())
        } else {
            Box::new(
                self.subjects
                    .iter()
                    .filter(move |(subject, _)| subject_matches(filter, subject)),
            )
        }
    }

    /// Messages held per subject matching `filter`.
    pub(super) fn subject_counts(&self, filter: &[u8]) -> BTreeMap<Bytes, u64> {
        self.matching_subjects(filter)
            .map(|(subject, seqs)| (subject.clone(), seqs.len() as u64))
            .collect()
    }

    /// Messages held on `subject` and the lowest of their sequences.
    pub(super) fn subject_state(&self, subject: &[u8]) -> Option<(u64, u64)> {
        let seqs = self.subjects.get(subject)?;
        Some((seqs.len() as u64, *seqs.first()?))
    }

    /// The first held sequence at or after `start` matching `filter`.
    pub(super) fn next_matching(&self, filter: &[u8], start: u64) -> Option<u64> {
        if selects_all(filter) {
            return self.entries.range(start..).next().map(|(&seq, _)| seq);
        }
        if is_literal(filter) {
            return self.subjects.get(filter)?.range(start..).next().copied();
        }
        // Consumers mostly ask just past their last delivery, where a short
        // scan finds the answer; a sparse filter falls back to the subjects.
        let mut scanned = self.entries.range(start..);
        for (&seq, entry) in scanned.by_ref().take(LINEAR_SCAN_MAX) {
            if subject_matches(filter, entry.subject()) {
                return Some(seq);
            }
        }
        let resume = scanned.next().map(|(&seq, _)| seq)?;
        self.matching_subjects(filter)
            .filter_map(|(_, seqs)| seqs.range(resume..).next().copied())
            .min()
    }

    /// The highest held sequence matching `filter`.
    pub(super) fn last_matching(&self, filter: &[u8]) -> Option<u64> {
        if selects_all(filter) {
            return self.entries.keys().next_back().copied();
        }
        self.matching_subjects(filter)
            .filter_map(|(_, seqs)| seqs.last().copied())
            .max()
    }

    /// Works out what `request` removes (see [`super::MsgStore::purge`]).
    pub(super) fn plan_purge(&self, request: &PurgeRequest) -> PurgePlan {
        let all = request.filter.as_deref().is_none_or(selects_all);
        if all && request.keep.is_none() {
            let floor = request.below_seq.unwrap_or(self.last_seq + 1);
            if floor <= self.first_seq() {
                return PurgePlan::Remove(Vec::new());
            }
            return PurgePlan::Compact {
                floor,
                held: self.held_below(floor),
            };
        }
        let mut seqs: Vec<u64> = match request.filter.as_deref() {
            Some(filter) if !all => {
                let mut seqs: Vec<u64> = self
                    .matching_subjects(filter)
                    .flat_map(|(_, seqs)| seqs.iter().copied())
                    .collect();
                seqs.sort_unstable();
                seqs
            }
            _ => self.entries.keys().copied().collect(),
        };
        if let Some(keep) = request.keep {
            let keep = usize::try_from(keep).unwrap_or(usize::MAX);
            seqs.truncate(seqs.len().saturating_sub(keep));
        }
        if let Some(below) = request.below_seq {
            seqs.retain(|&seq| seq < below);
        }
        PurgePlan::Remove(seqs)
    }
}
