//! A connection's subscriptions, where deliveries find them (in its
//! outbox): a slab, so the index refers to each by a generation-checked
//! key, and a hash index by sid for SUB and UNSUB.
//!
//! At a million subscriptions this is a large share of the server's
//! memory, so each costs what it must: its subject, queue and sid in one
//! boxed allocation, one slab entry, and one key in the sid index (the sid
//! is not stored twice: the index compares against the slab's copy).

use hashbrown::HashTable;

use std::hash::BuildHasher;

use crate::slab::Slab;
use crate::subject::hash::SeededState;

use super::client::SubId;

/// One subscription of a client. Its subject, queue and sid are copied
/// out of the read buffer into one allocation, kept whole.
#[derive(Debug)]
pub(crate) struct Subscription {
    /// Subject, then queue, then sid.
    args: Box<[u8]>,
    subject_len: u32,
    queue_len: Option<u32>,
    /// Auto-unsubscribe once `delivered` reaches this.
    pub max_msgs: Option<u64>,
    pub delivered: u64,
}

impl Subscription {
    /// A subscription to `subject` (in `queue`, if any) under `sid`.
    pub fn new(subject: &[u8], queue: Option<&[u8]>, sid: &[u8]) -> Self {
        let args = [subject, queue.unwrap_or_default(), sid].concat().into_boxed_slice();
        let len = |n: usize| u32::try_from(n).expect("a SUB argument longer than the control line");
        Subscription {
            args,
            subject_len: len(subject.len()),
            queue_len: queue.map(|q| len(q.len())),
            max_msgs: None,
            delivered: 0,
        }
    }

    pub fn subject(&self) -> &[u8] {
        &self.args[..self.subject_len as usize]
    }

    pub fn queue(&self) -> Option<&[u8]> {
        let start = self.subject_len as usize;
        self.queue_len.map(|n| &self.args[start..start + n as usize])
    }

    pub fn sid(&self) -> &[u8] {
        let start = self.subject_len as usize + self.queue_len.unwrap_or(0) as usize;
        &self.args[start..]
    }
}

/// A connection's subscriptions: by key for deliveries, by sid for the
/// client's SUB and UNSUB.
#[derive(Debug)]
pub(crate) struct Subscriptions {
    slab: Slab<Subscription>,
    /// Keys into `slab`, hashed by their subscription's sid.
    by_sid: HashTable<SubId>,
    /// Keys the sid hashes, so a client cannot aim its sids at one bucket.
    hasher: SeededState,
}

impl Subscriptions {
    pub fn new(seed: u64) -> Self {
        Subscriptions { slab: Slab::default(), by_sid: HashTable::new(), hasher: SeededState::new(seed) }
    }

    /// Stores `sub`, unless its sid is taken: nats-server keeps the first
    /// of two subscriptions with one sid and ignores the second.
    pub fn insert(&mut self, sub: Subscription) -> Option<SubId> {
        let hash = self.hasher.hash_one(sub.sid());
        if self.by_sid.find(hash, |&k| sid_of(&self.slab, k) == sub.sid()).is_some() {
            return None;
        }
        let id = self.slab.insert(sub);
        let (slab, hasher) = (&self.slab, &self.hasher);
        self.by_sid.insert_unique(hash, id, |&k| hasher.hash_one(sid_of(slab, k)));
        Some(id)
    }

    /// The subscription under `sid`.
    pub fn by_sid(&self, sid: &[u8]) -> Option<SubId> {
        let hash = self.hasher.hash_one(sid);
        self.by_sid.find(hash, |&k| sid_of(&self.slab, k) == sid).copied()
    }

    pub fn get(&self, id: SubId) -> Option<&Subscription> {
        self.slab.get(id)
    }

    pub fn get_mut(&mut self, id: SubId) -> Option<&mut Subscription> {
        self.slab.get_mut(id)
    }

    /// Takes the subscription out; `id` names nothing from now on.
    pub fn remove(&mut self, id: SubId) -> Option<Subscription> {
        let sid = self.slab.get(id)?.sid();
        let hash = self.hasher.hash_one(sid);
        let entry = self.by_sid.find_entry(hash, |&k| k == id);
        debug_assert!(entry.is_ok(), "a subscription missing from the sid index");
        if let Ok(entry) = entry {
            entry.remove();
        }
        self.slab.remove(id)
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.by_sid.len()
    }

    /// Every subscription with its key, in slab order.
    pub fn iter(&self) -> impl Iterator<Item = (SubId, &Subscription)> + '_ {
        self.slab.iter()
    }

    /// Removes every subscription, returning them with the keys they had.
    pub fn drain(&mut self) -> Vec<(SubId, Subscription)> {
        self.by_sid.clear();
        self.slab.drain()
    }
}

fn sid_of(slab: &Slab<Subscription>, id: SubId) -> &[u8] {
    slab.get(id).map_or(&[], Subscription::sid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_leave_the_read_buffer_and_are_kept_apart() {
        let read = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
        let sub = Subscription::new(&read[..3], Some(&read[3..5]), &read[5..6]);
        let buffer = read.as_ptr_range();
        for part in [sub.subject(), sub.queue().expect("a queue"), sub.sid()] {
            assert!(!buffer.contains(&part.as_ptr()), "a SUB argument still points into the read buffer");
        }
        assert_eq!((sub.subject(), sub.queue(), sub.sid()), (&b"xxx"[..], Some(&b"xx"[..]), &b"x"[..]));
        let sub = Subscription::new(b"foo.bar", None, b"12");
        assert_eq!((sub.subject(), sub.queue(), sub.sid()), (&b"foo.bar"[..], None, &b"12"[..]));
        let sub = Subscription::new(b"a", Some(b"q"), b"7");
        assert_eq!((sub.subject(), sub.queue(), sub.sid()), (&b"a"[..], Some(&b"q"[..]), &b"7"[..]));
        let sub = Subscription::new(b"a", Some(b""), b"");
        assert_eq!((sub.subject(), sub.queue(), sub.sid()), (&b"a"[..], Some(&b""[..]), &b""[..]));
    }

    #[test]
    fn sids_find_their_subscription_and_the_first_one_stays() {
        let mut subs = Subscriptions::new(7);
        let ids: Vec<SubId> = (0..1000)
            .map(|i| subs.insert(Subscription::new(format!("s.{i}").as_bytes(), None, i.to_string().as_bytes())).unwrap())
            .collect();
        assert_eq!(subs.insert(Subscription::new(b"other", None, b"5")), None, "a taken sid");
        assert_eq!(subs.get(ids[5]).map(Subscription::subject), Some(&b"s.5"[..]));
        for (i, &id) in ids.iter().enumerate() {
            assert_eq!(subs.by_sid(i.to_string().as_bytes()), Some(id));
        }
        for &id in ids.iter().step_by(2) {
            assert!(subs.remove(id).is_some());
            assert!(subs.remove(id).is_none(), "removed twice");
        }
        assert_eq!(subs.len(), 500);
        for (i, &id) in ids.iter().enumerate() {
            let expected = (i % 2 == 1).then_some(id);
            assert_eq!(subs.by_sid(i.to_string().as_bytes()), expected);
        }
        // A reused position does not answer for the sid of its previous owner.
        let again = subs.insert(Subscription::new(b"new", None, b"x")).unwrap();
        assert_eq!(subs.by_sid(b"0"), None);
        assert_eq!(subs.by_sid(b"x"), Some(again));
        assert_eq!(subs.drain().len(), 501);
        assert_eq!((subs.len(), subs.by_sid(b"1")), (0, None));
    }
}
