//! The consumer scenarios' checkers: fair service of waiting pull
//! requests, and linearizability of single-key KV operations.

use std::collections::BTreeMap;

use natrix_core::Instant;

use crate::model::Violation;

fn violation<T>(invariant: &'static str, detail: String) -> Result<T, Violation> {
    Err(Violation { invariant, detail })
}

// --- round-robin -------------------------------------------------------------

/// A pull request as the node sees it.
#[derive(Clone, Debug)]
pub(super) struct PullRequest {
    /// Which consumer it asks.
    pub consumer: usize,
    /// Messages it asks for.
    pub batch: u64,
    /// The server call in which the node read its last byte, and the wall
    /// clock (ns) when it expires there.
    pub arrived: Option<(u64, i64)>,
    /// Messages it received.
    pub got: u64,
    /// The server call of its last delivery.
    pub last: Option<u64>,
}

/// Checks that waiting pull requests of one consumer are served in turn.
///
/// The node's output is seen per connection, so the order of deliveries
/// to different connections within one server call is unknown; the check
/// works at the granularity of server calls. Only requests that were
/// waiting before the call in question, and could still take a message
/// (connection open, not expired, batch not complete, no status ended it)
/// count. Within one call, no request gets two messages more than another
/// (unless that one's batch ran out); across calls, between two
/// deliveries to a request, every other request waiting since before the
/// first of them gets one too.
#[derive(Debug, Default)]
pub(super) struct RoundRobin {
    /// Live requests by (client, token).
    pub live: BTreeMap<(usize, u64), PullRequest>,
    /// Per request served in the current server call: its consumer, how
    /// many it got, and the call of its delivery before.
    this_call: BTreeMap<(usize, u64), (usize, u64, Option<u64>)>,
}

impl RoundRobin {
    /// A delivery to request `key` in server call `step`; checked when
    /// the call ends.
    pub fn delivered(&mut self, key: (usize, u64), step: u64) {
        let Some(r) = self.live.get_mut(&key) else { return };
        let prev = r.last;
        self.this_call.entry(key).or_insert((r.consumer, 0, prev)).1 += 1;
        r.got += 1;
        r.last = Some(step);
    }

    /// The server call `step`, at wall clock `wall_ns`, is over.
    pub fn end_call(&mut self, step: u64, wall_ns: i64) -> Result<(), Violation> {
        let calls = std::mem::take(&mut self.this_call);
        let result = self.check_call(&calls, step, wall_ns);
        self.live.retain(|_, r| r.got < r.batch);
        result
    }

    fn check_call(&self, calls: &BTreeMap<(usize, u64), (usize, u64, Option<u64>)>, step: u64, wall_ns: i64) -> Result<(), Violation> {
        for (key, &(consumer, k, prev)) in calls {
            for (other, q) in &self.live {
                if *other == *key || q.consumer != consumer {
                    continue;
                }
                let got_now = calls.get(other).map_or(0, |c| c.1);
                let left_before = q.batch - (q.got - got_now);
                let waiting_since = |call: u64| q.arrived.is_some_and(|(s, exp)| s < call && wall_ns < exp);
                // Across calls: served in `prev` and now, while `q`, waiting
                // since before `prev`, got nothing in between.
                if let Some(prev) = prev.filter(|&p| p < step) {
                    if waiting_since(prev) && q.last.is_none_or(|l| l < prev) && left_before > 0 {
                        return violation(
                            "pull-round-robin",
                            format!("consumer {consumer}: request {key:?} served in server calls {prev} and {step} while request {other:?}, waiting since call {:?}, got nothing", q.arrived.map(|a| a.0)),
                        );
                    }
                }
                // Within this call.
                if k >= 2 && waiting_since(step) && got_now + 1 < k && got_now < left_before {
                    return violation(
                        "pull-round-robin",
                        format!("consumer {consumer}: in server call {step} request {key:?} got {k} messages and request {other:?}, waiting since call {:?}, {got_now}", q.arrived.map(|a| a.0)),
                    );
                }
            }
        }
        Ok(())
    }
}

// --- KV linearizability ------------------------------------------------------

/// One operation on one key, as its client saw it.
#[derive(Clone, Debug)]
pub(super) struct KvOp {
    /// The client.
    pub client: usize,
    /// When it was sent.
    pub invoked: Instant,
    /// When its answer arrived (`None`: never, its effect is unknown).
    pub answered: Option<Instant>,
    /// What it was.
    pub kind: KvKind,
}

/// A KV operation.
#[derive(Clone, Debug)]
pub(super) enum KvKind {
    /// A put, delete or conditional update writing the value named `name`
    /// (client, op number); `expected` for an update; `rev` once known
    /// (from its PubAck).
    Write {
        name: (usize, u64),
        expected: Option<u64>,
        rev: Option<u64>,
    },
    /// A read of revision `rev` (0: no value), holding the value `name`;
    /// a refused update reads the revision the node reports.
    Read { rev: u64, name: Option<(usize, u64)> },
}

/// A write at its revision: invoked, answered (or never), the revision
/// it expected, and the value it wrote (unknown for one only a refused
/// update reported).
type WriteAt = (Instant, Instant, Option<u64>, Option<(usize, u64)>);

/// Checks one key's history against a linearizable register with
/// conditional writes. Revisions give the order of the writes; a history
/// is linearizable iff each write can take effect within its interval, in
/// revision order, so that each read falls between the write it read and
/// the next one. The earliest such points are found greedily.
pub(super) fn check_kv_key(key: &str, ops: &[KvOp]) -> Result<(), Violation> {
    const NEVER: Instant = Instant::from_nanos(u64::MAX);
    let fail = |d: String| violation::<()>("kv-linearizable", format!("key {key}: {d}"));
    // Each write's revision: from its PubAck, or from a read that saw it.
    let mut rev_of: BTreeMap<(usize, u64), u64> = BTreeMap::new();
    for op in ops {
        let (name, rev) = match &op.kind {
            KvKind::Write { name, rev: Some(r), .. } => (*name, *r),
            KvKind::Read { rev, name: Some(name) } => (*name, *rev),
            _ => continue,
        };
        if let Some(&r0) = rev_of.get(&name) {
            if r0 != rev {
                return fail(format!("write {name:?} seen at revisions {r0} and {rev}"));
            }
        }
        rev_of.insert(name, rev);
    }
    // The writes by revision: (invoked, answered, expected); one the
    // history does not hold (seen only as a refused update's revision) may
    // have happened at any time.
    let mut writes: BTreeMap<u64, WriteAt> = BTreeMap::new();
    for op in ops {
        if let KvKind::Write { name, expected, .. } = &op.kind {
            if let Some(&rev) = rev_of.get(name) {
                if let Some(other) = writes.get(&rev).and_then(|w| w.3) {
                    return fail(format!("revision {rev} holds both {other:?} and {name:?}"));
                }
                writes.insert(rev, (op.invoked, op.answered.unwrap_or(NEVER), *expected, Some(*name)));
            }
        }
    }
    let mut reads: BTreeMap<u64, Vec<&KvOp>> = BTreeMap::new();
    for op in ops {
        if let KvKind::Read { rev, name } = &op.kind {
            match (writes.get(rev), name) {
                (Some(w), Some(n)) if w.3 != Some(*n) => {
                    return fail(format!("a read of revision {rev} got {n:?}, written as {:?}", w.3));
                }
                (None, _) if *rev > 0 => {
                    writes.insert(*rev, (Instant::ZERO, NEVER, None, None));
                }
                _ => {}
            }
            if op.answered.is_some() {
                reads.entry(*rev).or_default().push(op);
            }
        }
    }
    // A successful update's revision directly follows the one it expected.
    let revs: Vec<u64> = writes.keys().copied().collect();
    for (i, &rev) in revs.iter().enumerate() {
        if let Some(e) = writes[&rev].2 {
            let before = if i == 0 { 0 } else { revs[i - 1] };
            if before > e {
                return fail(format!(
                    "the update expecting revision {e} was written at {rev}, after revision {before}"
                ));
            }
        }
    }
    // Greedy linearization points.
    let first_of = |rev: u64| reads.get(&rev).map(|rs| rs.iter().map(|r| r.invoked).max().unwrap_or(Instant::ZERO));
    let mut point = Instant::ZERO;
    let mut prev_rev = 0;
    let mut lower = first_of(0);
    for &rev in &revs {
        let (inv, resp, _, name) = writes[&rev];
        let mut p = inv.max(point + std::time::Duration::from_nanos(1));
        if let Some(l) = lower {
            p = p.max(l + std::time::Duration::from_nanos(1));
        }
        let read_deadline = reads.get(&rev).and_then(|rs| rs.iter().filter_map(|r| r.answered).min());
        let deadline = read_deadline.map_or(resp, |d| d.min(resp));
        if p > deadline {
            return fail(format!(
                "the write of revision {rev} ({name:?}, invoked {inv:?}, answered {resp:?}) cannot take effect after revision {prev_rev} and the reads of it (from {p:?}) and before its reads' answers ({read_deadline:?})"
            ));
        }
        point = p;
        prev_rev = rev;
        lower = first_of(rev);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    fn write(client: usize, n: u64, inv: u64, resp: Option<u64>, rev: Option<u64>) -> KvOp {
        KvOp { client, invoked: t(inv), answered: resp.map(t), kind: KvKind::Write { name: (client, n), expected: None, rev } }
    }

    fn read(inv: u64, resp: u64, rev: u64, name: Option<(usize, u64)>) -> KvOp {
        KvOp { client: 9, invoked: t(inv), answered: Some(t(resp)), kind: KvKind::Read { rev, name } }
    }

    #[test]
    fn a_linearizable_history_passes_and_stale_reads_fail() {
        let w1 = write(0, 1, 0, Some(10), Some(1));
        let w2 = write(1, 1, 20, Some(30), Some(5));
        let ok = [w1.clone(), w2.clone(), read(5, 15, 1, Some((0, 1))), read(25, 40, 1, Some((0, 1))), read(35, 40, 5, Some((1, 1)))];
        assert!(check_kv_key("k", &ok).is_ok());
        // Read the old value after the new one was acknowledged.
        let stale = [w1.clone(), w2.clone(), read(31, 40, 1, Some((0, 1)))];
        assert_eq!(check_kv_key("k", &stale).unwrap_err().invariant, "kv-linearizable");
        // Nothing read after a write was acknowledged.
        let lost = [w1.clone(), read(11, 12, 0, None)];
        assert!(check_kv_key("k", &lost).is_err());
        // A new value read, then an old one, by reads in sequence.
        let flip = [w1.clone(), w2.clone(), read(21, 22, 5, Some((1, 1))), read(23, 24, 1, Some((0, 1)))];
        assert!(check_kv_key("k", &flip).is_err());
        // A write whose answer never came, seen by a read, is fine.
        let unknown = [w1, write(1, 1, 20, None, None), read(50, 60, 5, Some((1, 1)))];
        assert!(check_kv_key("k", &unknown).is_ok());
        // Two values at one revision.
        let reused = [write(0, 1, 0, Some(10), Some(1)), read(20, 30, 1, Some((1, 7)))];
        assert!(check_kv_key("k", &reused).is_err());
    }

    #[test]
    fn round_robin_notices_a_skipped_request() {
        let req = |arrived| PullRequest { consumer: 0, batch: 3, arrived: Some((arrived, i64::MAX)), got: 0, last: None };
        let two = || {
            let mut rr = RoundRobin::default();
            rr.live.insert((1, 1), req(1));
            rr.live.insert((2, 1), req(1));
            rr
        };
        // Within one call: 1, 2, 1 is fair (in any order seen).
        let mut rr = two();
        rr.delivered((1, 1), 2);
        rr.delivered((1, 1), 2);
        rr.delivered((2, 1), 2);
        assert!(rr.end_call(2, 0).is_ok());
        // 2 gets its turn in the next call, then 1.
        rr.delivered((2, 1), 3);
        assert!(rr.end_call(3, 0).is_ok());
        rr.delivered((1, 1), 4);
        assert!(rr.end_call(4, 0).is_ok());
        // 1 twice while 2 waits.
        let mut rr = two();
        rr.delivered((1, 1), 2);
        assert!(rr.end_call(2, 0).is_ok());
        rr.delivered((1, 1), 3);
        assert_eq!(rr.end_call(3, 0).unwrap_err().invariant, "pull-round-robin");
        let mut rr = two();
        rr.delivered((1, 1), 2);
        rr.delivered((1, 1), 2);
        assert_eq!(rr.end_call(2, 0).unwrap_err().invariant, "pull-round-robin");
        // Expired requests and later arrivals do not count.
        let mut rr = two();
        rr.live.get_mut(&(2, 1)).unwrap().arrived = Some((1, 10));
        rr.delivered((1, 1), 2);
        rr.delivered((1, 1), 2);
        assert!(rr.end_call(2, 20).is_ok());
    }
}
