//! Routing a published message to the subscriptions that match it: every
//! plain subscriber gets a copy, one member of each queue group gets one.
//! This is the hot path, run by whichever thread read the publish (see
//! [`Session`](super::Session)) or by the control plane for what crosses
//! accounts: no allocation per message or per receiver beyond the bytes
//! appended to each receiver's outbox, and no lock but each receiver's for
//! the length of one message (or of a run of messages to one subject, which
//! a session delivers together: see [`Route::deliver_many`]).

use std::sync::Arc;

use bytes::Bytes;
use rand_core::RngCore;

use crate::log::Level;
use crate::protocol::{encode, Publish};
use crate::subject::sublist::SublistResult;
use crate::time::Instant;

use super::{AccountShared, MsgBytes};
use super::outbox::{OutboxState, Touched};
use super::{CloseReason, Control, Slot, SubId, SubRef};

/// What a MSG or HMSG adds beyond its subject, sid, reply, headers and
/// payload: the verb, spaces, sizes and line ends.
const ENCODE_SLACK_BYTES: usize = 64;

/// Accounts a session's deliveries stay counted for between batches.
const SENT_ACCOUNTS_KEPT: usize = 8;

/// What a batch of deliveries leaves to do once it has released every
/// outbox: wakes, counters, and the changes only the control plane makes.
#[derive(Debug, Default)]
pub(crate) struct Work {
    pub touched: Touched,
    /// Payload bytes published (by the session's client).
    pub received: MsgBytes,
    /// Delivered, server-wide.
    pub delivered: MsgBytes,
    /// Delivered, by receiving account (a batch seldom reaches more than one).
    pub sent: Vec<(Arc<AccountShared>, MsgBytes)>,
    /// Subscriptions that took their last message (`UNSUB <sid> <max>`).
    pub expired: Vec<(Slot, SubId)>,
    /// Receivers that went over `max_pending`, closed at delivery.
    pub slow: Vec<Slot>,
    /// Whether a receiver asks the producer to pause (see [`Stall`]).
    pub stall: Stall,
    /// JetStream wrote: the batch ends with a sync request.
    pub jetstream_flush: bool,
}

impl Work {
    fn count_sent(&mut self, account: &Arc<AccountShared>, m: MsgBytes) {
        match self.sent.iter_mut().find(|(a, _)| Arc::ptr_eq(a, account)) {
            Some((_, total)) => total.merge(m),
            None => self.sent.push((Arc::clone(account), m)),
        }
    }

    /// Adds the batch's deliveries to their accounts' counters. The
    /// accounts stay listed (at zero), so the next batch clones no `Arc`:
    /// its count lives on the line beside the account's index.
    pub fn count_sent_into_accounts(&mut self) {
        if self.sent.len() > SENT_ACCOUNTS_KEPT {
            for (account, m) in self.sent.drain(..) {
                account.sent.add(m);
            }
            return;
        }
        for (account, m) in &mut self.sent {
            account.sent.add(std::mem::take(m));
        }
    }

    /// Leaves nothing to do but the wakes and the control plane's changes.
    pub fn needs_control(&self) -> bool {
        !self.expired.is_empty() || !self.slow.is_empty() || self.jetstream_flush
    }
}

/// How a delivery is done: the limit it enforces, the trace it keeps.
pub(crate) struct Route<'a, R: RngCore> {
    pub now: Instant,
    pub max_pending: u64,
    pub rng: &'a mut R,
    pub work: &'a mut Work,
    /// `-V`: the receivers' `MSG` lines, for the control plane to log.
    pub trace: Option<&'a mut Vec<(Slot, String)>>,
}

impl<R: RngCore> Route<'_, R> {
    /// Delivers `p`, published by `from` (with `echo` as it asked), to every
    /// match in `result`; returns how many got it.
    pub fn deliver(&mut self, result: &SublistResult<SubRef>, from: Slot, echo: bool, p: &Publish) -> usize {
        let mut delivered = 0usize;
        for sub in &result.plain {
            if sub.slot == from && !echo {
                continue;
            }
            delivered += usize::from(self.deliver_to(sub, p));
        }
        for (_, members) in &result.queues {
            delivered += usize::from(self.deliver_to_queue(from, echo, members, p));
        }
        delivered
    }

    /// Delivers to one member of a queue group, starting at a random member
    /// and moving on past those that cannot take it.
    fn deliver_to_queue(&mut self, from: Slot, echo: bool, members: &[SubRef], p: &Publish) -> bool {
        let n = members.len();
        if n == 0 {
            return false;
        }
        let start = (self.rng.next_u64() % n as u64) as usize;
        for i in 0..n {
            let sub = &members[(start + i) % n];
            if sub.slot == from && !echo {
                continue;
            }
            if self.deliver_to(sub, p) {
                return true;
            }
        }
        false
    }

    /// Appends MSG/HMSG for `sub` to its outbox. False if the subscription
    /// cannot take it: gone, closed, done with its `max_msgs`, or denied.
    pub fn deliver_to(&mut self, sub: &SubRef, p: &Publish) -> bool {
        let mut guard = sub.outbox.lock();
        let delivered = self.deliver_locked(&mut guard, sub, p);
        if delivered {
            self.queued(&mut guard, sub);
        }
        delivered
    }

    /// Delivers `msgs`, in order, published by `from` (with `echo` as it
    /// asked) to every match in `result`, which has no queue groups: each
    /// receiver's outbox is locked once for all of them, and what each
    /// receiver gets, in which order, is what delivering the messages one
    /// by one would give it. `order` is scratch space.
    pub fn deliver_many(
        &mut self,
        result: &SublistResult<SubRef>,
        from: Slot,
        echo: bool,
        msgs: &[Publish],
        order: &mut Vec<usize>,
    ) {
        debug_assert!(result.queues.is_empty(), "queue members are picked one message at a time");
        // The receivers, grouped by connection (one may have several
        // matching subscriptions), each group in the result's order. By
        // slot, not by address: the simulator replays wakes in this order.
        order.clear();
        order.extend((0..result.plain.len()).filter(|&i| echo || result.plain[i].slot != from));
        order.sort_by_key(|&i| result.plain[i].slot);
        let mut rest = &order[..];
        while let Some(&first) = rest.first() {
            let (slot, outbox) = (result.plain[first].slot, &result.plain[first].outbox);
            let same = |i: usize| result.plain[i].slot == slot && Arc::ptr_eq(&result.plain[i].outbox, outbox);
            let n = rest.iter().take_while(|&&i| same(i)).count();
            let (subs, next) = rest.split_at(n);
            rest = next;
            let mut guard = outbox.lock();
            let mut any = false;
            for p in msgs {
                for &i in subs {
                    any |= self.deliver_locked(&mut guard, &result.plain[i], p);
                }
            }
            if any {
                self.queued(&mut guard, &result.plain[first]);
            }
        }
    }

    /// [`Route::deliver_to`] with `sub`'s outbox locked (`o`).
    fn deliver_locked(&mut self, o: &mut OutboxState, sub: &SubRef, p: &Publish) -> bool {
        if o.closed.is_some() {
            return false;
        }
        let Some(s) = o.subs.get_mut(sub.sub) else { return false };
        if s.max_msgs.is_some_and(|max| s.delivered >= max) {
            return false;
        }
        if let Some(perms) = o.perms.as_mut() {
            // A wildcard subscription does not receive what the deny list
            // names, nor a queue subscription what its queue is denied.
            if !perms.can_receive(&p.subject, s.queue()) {
                return false;
            }
            if let (Some(reply), true) = (p.reply.as_deref(), perms.tracks_responses()) {
                perms.grant_response(self.now, reply);
            }
        }
        s.delivered += 1;
        if s.max_msgs.is_some_and(|max| s.delivered >= max) {
            self.work.expired.push((sub.slot, sub.sub));
        }
        let reply = p.reply.as_deref();
        let headers = p.headers.as_ref().filter(|_| o.profile.headers);
        // The control line's fixed parts and numbers fit in the slack.
        let need = p.subject.len() + s.sid().len() + reply.map_or(0, <[u8]>::len) + p.payload.len()
            + headers.map_or(0, Bytes::len) + ENCODE_SLACK_BYTES;
        let buf = o.queued.buf(need);
        let size = match headers {
            Some(h) => {
                encode::write_hmsg(buf, &p.subject, s.sid(), reply, h, &p.payload);
                h.len() + p.payload.len()
            }
            // A client that did not announce headers gets the payload alone, as nats-server does.
            None => {
                encode::write_msg(buf, &p.subject, s.sid(), reply, &p.payload);
                p.payload.len()
            }
        };
        if let Some(trace) = self.trace.as_deref_mut() {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let reply = reply.map(|r| format!(" {}", text(r))).unwrap_or_default();
            trace.push((sub.slot, format!("MSG {} {}{reply} {size}", text(&p.subject), text(s.sid()))));
        }
        o.counters.out_msgs += 1;
        o.counters.out_bytes += size as u64;
        let m = MsgBytes { msgs: 1, bytes: size as u64 };
        self.work.delivered.merge(m);
        self.work.count_sent(&o.profile.account, m);
        let unread = o.unread_bytes();
        if unread > stall_gate(self.max_pending) {
            let draining = o.draining(self.now);
            self.work.stall = self.work.stall.max(if draining { Stall::Always } else { Stall::WithinBudget });
            if o.over_limit(self.now, self.max_pending) {
                // The same limit as for every other byte queued to a client:
                // nothing more is queued, the control plane closes it.
                sub.outbox.close(o, CloseReason::SlowConsumerPendingBytes);
                self.work.slow.push(sub.slot);
            }
        }
        true
    }

    /// After queueing to `sub`'s outbox (`o`, still locked): the wake owed.
    fn queued(&mut self, o: &mut OutboxState, sub: &SubRef) {
        if o.mark_dirty() {
            self.work.touched.push(&sub.outbox);
        }
    }
}

/// Unread bytes past which a receiver slows its producers down: three
/// quarters of `max_pending`, as nats-server gates its fast producers.
pub(crate) fn stall_gate(max_pending: u64) -> u64 {
    max_pending / 4 * 3
}

/// What a batch's receivers ask of its producer, the strongest wins.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stall {
    /// Every receiver keeps up.
    #[default]
    No,
    /// A receiver past the stall gate has not drained for
    /// [`DRAIN_GRACE`]: the producer pauses within its budget for the read,
    /// then goes on, and the receiver is cut once past `max_pending`.
    WithinBudget,
    /// A receiver past the stall gate is draining: the producer pauses
    /// whatever its budget, so that the receiver is not cut for being
    /// slower than one producer's burst.
    Always,
}

/// How recently a receiver must have drained (made write progress) to
/// count as draining: one that did is not cut for pending bytes until
/// twice `max_pending` (each message is at most `max_payload`, which is
/// at most `max_pending`); one that did not is cut past `max_pending`.
pub const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// The publisher's own subscription on `reply` among `result`, for a
/// no-responders status.
pub(crate) fn own_subscription(result: &SublistResult<SubRef>, from: Slot) -> Option<&SubRef> {
    let mut all = result.plain.iter().chain(result.queues.iter().flat_map(|(_, m)| m.iter()));
    all.find(|s| s.slot == from)
}

/// The `NATS/1.0 503` status a requester gets when nobody listens.
pub(crate) fn no_responders_status(p: &Publish, scratch: &mut bytes::BytesMut) -> Publish {
    scratch.clear();
    scratch.extend_from_slice(b"NATS/1.0 503\r\nNats-Subject: ");
    scratch.extend_from_slice(&p.subject);
    scratch.extend_from_slice(b"\r\n\r\n");
    Publish {
        subject: p.reply.clone().unwrap_or_default(),
        reply: None,
        headers: Some(scratch.split().freeze()),
        payload: bytes::Bytes::new(),
    }
}

impl Control {
    /// Delivers `p`, published by the client in `from`, within its account
    /// and to the accounts that import it: the control plane's path, for
    /// what the publisher's session does not deliver itself.
    pub(crate) fn deliver(&mut self, now: Instant, from: Slot, p: &Publish) {
        let Some(publisher) = self.client(from) else { return };
        let account = publisher.account;
        let mut delivered = self.deliver_in(now, from, account, p);
        if self.accounts[account].has_routes(&p.subject) {
            delivered += self.deliver_across(now, from, account, p);
        }
        if self.jetstream_takes(account, p) {
            delivered += self.jetstream_publish(now, from, account, p);
        }
        if delivered == 0 {
            self.no_responders(now, from, account, p);
        }
    }

    /// Who in `account` receives a message published to `subject`: the
    /// control plane's own cache, so its deliveries (PubAcks, consumer
    /// messages, replies) do not take the index's lock on a hit.
    pub(crate) fn match_in(&mut self, account: usize, subject: &[u8]) -> Arc<SublistResult<SubRef>> {
        if self.matches.len() <= account {
            let seed = self.match_seed;
            self.matches.resize_with(account + 1, || super::matches::MatchCache::new(seed));
        }
        Arc::clone(self.matches[account].lookup(&self.accounts[account].shared, subject))
    }

    /// Delivers `p`, published by the server on a subject used once (a
    /// reply to a request), to the matching subscriptions of `account`:
    /// matched without the caches, which such subjects would only churn.
    pub(crate) fn deliver_reply_in(&mut self, now: Instant, account: usize, p: &Publish) -> usize {
        let result = self.accounts[account].shared.index.read().match_uncached(&p.subject);
        self.route(now, |route| route.deliver(&result, super::sys_monitor::SERVER_SLOT, true, p))
    }

    /// Delivers `p` to the matching subscriptions of `account`; returns how many got it.
    pub(crate) fn deliver_in(&mut self, now: Instant, from: Slot, account: usize, p: &Publish) -> usize {
        let echo = self.client(from).is_none_or(|c| c.flags.echo);
        let result = self.match_in(account, &p.subject);
        self.route(now, |route| route.deliver(&result, from, echo, p))
    }

    /// Runs `f` with the control plane's delivery context, then logs what
    /// it traced and closes the slow consumers it found.
    pub(super) fn route<T>(&mut self, now: Instant, f: impl FnOnce(&mut Route<'_, rand_chacha::ChaCha8Rng>) -> T) -> T {
        let mut trace = Vec::new();
        let traced = self.opts.trace;
        let mut route = Route {
            now,
            max_pending: self.effective_max_pending(),
            rng: &mut self.rng,
            work: &mut self.work,
            trace: traced.then_some(&mut trace),
        };
        let out = f(&mut route);
        for (slot, op) in trace {
            self.trace_out(slot, &op);
        }
        self.finish_work(now);
        out
    }

    /// Carries out what deliveries left for the control plane: subscriptions
    /// past their `max_msgs` leave the index, slow consumers are closed.
    pub(crate) fn finish_work(&mut self, now: Instant) {
        for (slot, sub) in std::mem::take(&mut self.work.expired) {
            self.unsubscribe(now, slot, sub);
        }
        for slot in std::mem::take(&mut self.work.slow) {
            self.slow_consumer(now, slot);
        }
        self.count_work();
    }

    /// Adds what the control plane's own deliveries counted.
    fn count_work(&mut self) {
        let work = &mut self.work;
        self.traffic.add(std::mem::take(&mut work.received), std::mem::take(&mut work.delivered));
        work.count_sent_into_accounts();
        self.producer_stall = self.producer_stall.max(std::mem::take(&mut work.stall));
    }

    pub(crate) fn slow_consumer(&mut self, now: Instant, slot: Slot) {
        let max_pending = self.effective_max_pending();
        if let Some(c) = self.client(slot) {
            let line = format!("{} - {} - Slow Consumer Detected: MaxPending of {max_pending} Exceeded", c.peer, c.cid);
            self.log(Level::Info, line);
        } else {
            return;
        }
        self.traffic.slow_consumer();
        if let Some(account) = self.client(slot).map(|c| c.account) {
            self.accounts[account].stats.slow_consumers += 1;
        }
        self.close(now, slot, CloseReason::SlowConsumerPendingBytes, None);
    }

    /// A request nobody answers: if the requester asked for it, send a
    /// `NATS/1.0 503` status to its own subscriptions on the reply subject.
    fn no_responders(&mut self, now: Instant, from: Slot, account: usize, p: &Publish) {
        let Some(reply) = p.reply.as_deref() else { return };
        if !self.client(from).is_some_and(|c| c.flags.no_responders) {
            return;
        }
        let status = no_responders_status(p, &mut self.scratch);
        let result = self.match_in(account, reply);
        if let Some(sub) = own_subscription(&result, from) {
            let sub = sub.clone();
            self.route(now, |route| route.deliver_to(&sub, &status));
        }
    }
}
