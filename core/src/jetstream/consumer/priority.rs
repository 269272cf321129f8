//! Priority groups of pull consumers (nats-server 2.11 onwards): which
//! waiting request a message goes to under the `overflow`, `pinned_client`
//! and `prioritized` policies, the pin and its timeout, and
//! `$JS.API.CONSUMER.UNPIN`. Also the consumer reset
//! (`$JS.API.CONSUMER.RESET`), which moves a consumer to a new start.

use bytes::Bytes;

use super::config::PriorityPolicy;
use super::pull::{self, NextRequest, Waiting};
use super::{Consumer, DeliverPolicy, Event, SeqPair};
use crate::jetstream::store::MsgStore;
use crate::time::UnixNanos;

/// The client a `pinned_client` consumer delivers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Pin {
    /// Its id (the `Nats-Pin-Id` header), 22 letters and digits as a nuid.
    pub id: String,
    /// The group it was pinned in.
    pub group: String,
    /// When it was pinned.
    pub since: UnixNanos,
    /// When it loses the pin unless it asks again with its id.
    pub expires_at: UnixNanos,
}

/// Length of a pin id (a nuid's).
const PIN_ID_LEN: usize = 22;

impl Consumer {
    /// nats-server's checks of a pull request's priority fields; the
    /// status to answer with when one fails. A request with the current
    /// pin id keeps the pin for another `priority_timeout`.
    pub(super) fn check_priority_request(&mut self, req: &NextRequest, wall: UnixNanos) -> Option<Bytes> {
        if !req.json {
            return None;
        }
        let policy = self.config.priority_policy;
        if (req.min_pending != 0 || req.min_ack_pending != 0) && policy != PriorityPolicy::Overflow {
            return Some(pull::status(400, "Bad Request - Not a Overflow Priority consumer"));
        }
        if !req.id.is_empty() && policy != PriorityPolicy::PinnedClient {
            return Some(pull::status(400, "Bad Request - Not a Pinned Client Priority consumer"));
        }
        if !(0..=9).contains(&req.priority) {
            return Some(pull::status(400, "Bad Request - Priority must be between 0 and 9"));
        }
        if policy == PriorityPolicy::None {
            return None;
        }
        if req.group.is_empty() {
            return Some(pull::status(400, "Bad Request - Priority Group missing"));
        }
        if !self.config.priority_groups.contains(&req.group) {
            return Some(pull::status(400, "Bad Request - Invalid Priority Group"));
        }
        let ttl = self.config.pinned_ttl;
        if let Some(pin) = &mut self.pin {
            if req.id == pin.id {
                pin.expires_at = UnixNanos(wall.0.saturating_add(ttl));
            } else if !req.id.is_empty() {
                return Some(pull::status(423, "Nats-Pin-Id mismatch"));
            }
        }
        None
    }

    /// Queues a waiting request: by priority under `prioritized` (behind
    /// those of the same or a lower number), else at the back.
    pub(super) fn enqueue_waiting(&mut self, w: Waiting) {
        if self.config.priority_policy == PriorityPolicy::Prioritized {
            let at = self.waiting.iter().position(|o| o.priority() > w.priority()).unwrap_or(self.waiting.len());
            self.waiting.insert(at, w);
        } else {
            self.waiting.push_back(w);
        }
    }

    /// Puts the request just served back in line while it wants more.
    pub(super) fn requeue_waiting(&mut self, w: Waiting) {
        if self.config.priority_policy == PriorityPolicy::Prioritized && !self.waiting.is_empty() {
            self.enqueue_waiting(w);
        } else {
            self.waiting.push_back(w);
        }
    }

    /// Brings to the front of the queue the request the next message goes
    /// to, as nats-server's `nextWaiting`: under `pinned_client` the pinned
    /// one (pinning the first that asks when none is), dropping requests
    /// with a stale pin id (`423 Nats-Wrong-Pin-Id`); under `overflow` the
    /// first whose `min_pending` or `min_ack_pending` is reached.
    /// `counted` is what is pending, counting the message at hand, when
    /// the caller knows it (a `redelivery` is not counted by `num_pending`).
    /// False when no request may have it now.
    pub(super) fn select_waiting(&mut self, counted: Option<u64>, redelivery: bool, store: &mut dyn MsgStore, wall: UnixNanos) -> bool {
        let policy = self.config.priority_policy;
        if policy == PriorityPolicy::None || policy == PriorityPolicy::Prioritized {
            return !self.waiting.is_empty();
        }
        let need_pin = policy == PriorityPolicy::PinnedClient && self.pin.is_none();
        let mut cycled = 0;
        let mut pending: Option<u64> = counted;
        while let Some(w) = self.waiting.front() {
            if policy == PriorityPolicy::PinnedClient {
                let held = w.group.as_ref().map(|g| g.id.as_str()).filter(|id| !id.is_empty());
                match (&self.pin, held) {
                    (None, Some(_)) => {
                        self.refuse_front_with_wrong_pin();
                        continue;
                    }
                    (None, None) => {
                        debug_assert!(need_pin);
                        self.pin_front(wall);
                        return true;
                    }
                    (Some(pin), Some(id)) if pin.id == id => return true,
                    (Some(_), Some(_)) => {
                        self.refuse_front_with_wrong_pin();
                        continue;
                    }
                    (Some(_), None) => {
                        cycled += 1;
                        if !self.cycle_waiting(cycled) {
                            return false;
                        }
                        continue;
                    }
                }
            }
            // Overflow: served once either of its minimums is reached.
            let Some(g) = w.group.as_ref().filter(|g| g.min_pending > 0 || g.min_ack_pending > 0) else { return true };
            let (min_pending, min_ack_pending) = (g.min_pending, g.min_ack_pending);
            let pending_now = *pending.get_or_insert_with(|| self.num_pending(store) + u64::from(redelivery));
            let acks_now = self.state.pending.len() as u64;
            if (min_pending > 0 && min_pending <= pending_now) || (min_ack_pending > 0 && min_ack_pending <= acks_now) {
                return true;
            }
            cycled += 1;
            if !self.cycle_waiting(cycled) {
                return false;
            }
        }
        false
    }

    /// Moves the front request to the back; false once every request was looked at.
    fn cycle_waiting(&mut self, cycled: usize) -> bool {
        if let Some(w) = self.waiting.pop_front() {
            self.waiting.push_back(w);
        }
        cycled < self.waiting.len()
    }

    fn refuse_front_with_wrong_pin(&mut self) {
        if let Some(w) = self.waiting.pop_front() {
            let status = w.status_with_pending(423, "Nats-Wrong-Pin-Id");
            self.status(w.reply, status);
        }
    }

    /// Pins the client of the front request, if it names a group.
    fn pin_front(&mut self, wall: UnixNanos) {
        let id = self.new_pin_id(wall);
        let Some(g) = self.waiting.front_mut().and_then(|w| w.group.as_mut()) else { return };
        if g.group.is_empty() {
            return;
        }
        g.id = id.clone();
        let group = g.group.clone();
        let expires_at = UnixNanos(wall.0.saturating_add(self.config.pinned_ttl));
        self.pin = Some(Pin { id: id.clone(), group: group.clone(), since: wall, expires_at });
        self.event(wall, Event::Pinned { group, id });
    }

    /// A pin id: a nuid-like 22 characters, from the consumer's identity,
    /// the clock and a counter (inputs all, so runs replay).
    fn new_pin_id(&mut self, wall: UnixNanos) -> String {
        const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        self.pins_made += 1;
        let mut x = self.name.bytes().chain(self.stream.bytes()).fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        x ^= (wall.0 as u64).rotate_left(17) ^ self.pins_made.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (self.created.0 as u64);
        (0..PIN_ID_LEN)
            .map(|_| {
                x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = x;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                char::from(DIGITS[(z % DIGITS.len() as u64) as usize])
            })
            .collect()
    }

    /// The current pin's id, for the `Nats-Pin-Id` header of deliveries.
    pub(super) fn pin_id(&self) -> Option<&str> {
        (self.config.priority_policy == PriorityPolicy::PinnedClient).then_some(())?;
        self.pin.as_ref().map(|p| p.id.as_str())
    }

    /// The pinned client and since when, for the consumer's info.
    pub fn pinned(&self) -> Option<(&str, UnixNanos)> {
        self.pin.as_ref().map(|p| (p.id.as_str(), p.since))
    }

    /// When the pin runs out.
    pub(super) fn pin_deadline(&self) -> Option<UnixNanos> {
        self.pin.as_ref().map(|p| p.expires_at)
    }

    /// The pin runs out at `wall` if its time has come (`UNPINNED`, "timeout").
    pub(super) fn expire_pin(&mut self, wall: UnixNanos) {
        if let Some(pin) = self.pin.take_if(|p| p.expires_at <= wall) {
            self.event(wall, Event::Unpinned { group: pin.group, reason: "timeout" });
        }
    }

    /// `$JS.API.CONSUMER.UNPIN`: the pin goes (the `UNPINNED` advisory with
    /// reason "admin" is sent whether or not a client was pinned, as
    /// nats-server does), and the next request in line may be pinned.
    pub fn unpin(&mut self, group: &str, wall: UnixNanos, store: &mut dyn MsgStore) {
        self.pin = None;
        self.event(wall, Event::Unpinned { group: group.to_owned(), reason: "admin" });
        self.pump(store, wall);
    }

    /// `$JS.API.CONSUMER.RESET`: the consumer starts again at `seq` (0:
    /// just above its ack floor), as nats-server's `resetStartingSeq`:
    /// everything pending is forgotten, the consumer sequence starts
    /// again at 1. A sequence is allowed for `all`, for
    /// `by_start_sequence` at or above the start, and for `by_start_time`
    /// at or above the first message at that time. Returns the sequence it
    /// starts at, or the reason it refuses.
    pub fn reset(&mut self, seq: u64, wall: UnixNanos, store: &mut dyn MsgStore) -> Result<u64, &'static str> {
        let seq = if seq == 0 {
            self.state.ack_floor.stream_seq.saturating_add(1)
        } else {
            match self.config.deliver_policy {
                DeliverPolicy::All => seq,
                DeliverPolicy::ByStartSequence if seq < self.config.opt_start_seq => return Err("below start seq"),
                DeliverPolicy::ByStartSequence => seq,
                DeliverPolicy::ByStartTime => {
                    let at = self.config.opt_start_time.unwrap_or_default();
                    if seq < super::first_at_or_after(at, store) {
                        return Err("below start time");
                    }
                    seq
                }
                _ => return Err("not allowed"),
            }
        }
        .max(1);
        self.state.pending.clear();
        self.state.redelivered.clear();
        self.redeliver.clear();
        self.deadlines.clear();
        self.deadline_of.clear();
        self.lps = None;
        self.state.delivered = SeqPair { consumer_seq: 0, stream_seq: seq - 1, last_active: None };
        self.state.ack_floor = SeqPair { consumer_seq: 0, stream_seq: seq - 1, last_active: None };
        self.next_seq = seq;
        self.dirty = true;
        self.pump(store, wall);
        Ok(seq)
    }
}
