//! The event queue's entries: an event due at a virtual instant, ordered
//! by time and then by when it was scheduled, so that a run is the same
//! whatever the events themselves are.

use natrix_core::time::Instant;

/// An event `ev` due at `at`, the `seq`-th one scheduled.
pub(crate) struct Scheduled<E> {
    pub(crate) at: Instant,
    pub(crate) seq: u64,
    pub(crate) ev: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E> Eq for Scheduled<E> {}

impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Scheduled<E> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A world's pending events, earliest first; among events due at the same
/// instant, the one scheduled first.
pub(crate) struct EventQueue<E> {
    seq: u64,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Scheduled<E>>>,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue { seq: 0, heap: std::collections::BinaryHeap::new() }
    }
}

impl<E> EventQueue<E> {
    /// Schedules `ev` at `at`.
    pub(crate) fn push(&mut self, at: Instant, ev: E) {
        self.seq += 1;
        self.heap.push(std::cmp::Reverse(Scheduled { at, seq: self.seq, ev }));
    }

    /// The next event due.
    pub(crate) fn pop(&mut self) -> Option<Scheduled<E>> {
        self.heap.pop().map(|std::cmp::Reverse(s)| s)
    }

    /// Events pending.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}
