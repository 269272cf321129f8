//! Routing a published message to the subscriptions that match it: every
//! plain subscriber gets a copy, one member of each queue group gets one.
//! This is the hot path: no allocation per message or per receiver beyond
//! the bytes appended to each receiver's outbound buffer.

use rand_core::RngCore;

use crate::log::Level;
use crate::protocol::{encode, Publish};
use crate::time::Instant;

use super::{CloseReason, Server, Slot, SubRef};

impl Server {
    /// Delivers `p`, published by the client in `from`, within its account
    /// and to the accounts that import it.
    pub(crate) fn deliver(&mut self, now: Instant, from: Slot, p: &Publish) {
        let Some(publisher) = self.client(from) else { return };
        let account = publisher.account;
        let mut delivered = self.deliver_in(now, from, account, p);
        if self.accounts[account].has_routes(&p.subject) {
            delivered += self.deliver_across(now, from, account, p);
        }
        if delivered == 0 {
            self.no_responders(now, from, account, p);
        }
    }

    /// Delivers `p` to the matching subscriptions of `account`; returns how many got it.
    pub(crate) fn deliver_in(&mut self, now: Instant, from: Slot, account: usize, p: &Publish) -> usize {
        let echo = self.client(from).is_none_or(|c| c.flags.echo);
        let result = self.accounts[account].sublist.match_subject(&p.subject);
        let mut delivered = 0usize;
        for &sub in &result.plain {
            if sub.slot == from && !echo {
                continue;
            }
            delivered += usize::from(self.deliver_to(now, sub, p));
        }
        for (_, members) in &result.queues {
            delivered += usize::from(self.deliver_to_queue(now, from, echo, members, p));
        }
        delivered
    }

    /// Delivers to one member of a queue group, starting at a random member
    /// and moving on past those that cannot take it.
    fn deliver_to_queue(&mut self, now: Instant, from: Slot, echo: bool, members: &[SubRef], p: &Publish) -> bool {
        let n = members.len();
        if n == 0 {
            return false;
        }
        let start = (self.rng.next_u64() % n as u64) as usize;
        for i in 0..n {
            let sub = members[(start + i) % n];
            if sub.slot == from && !echo {
                continue;
            }
            if self.deliver_to(now, sub, p) {
                return true;
            }
        }
        false
    }

    /// Appends MSG/HMSG for `sub` to its client's outbound buffer. False if
    /// the subscription is gone (closed earlier in this same delivery).
    fn deliver_to(&mut self, now: Instant, sub: SubRef, p: &Publish) -> bool {
        let max_pending = self.opts.max_pending_bytes;
        let Some(c) = self.client_mut(sub.slot) else { return false };
        let Some(s) = c.subs.get_mut(sub.sub) else { return false };
        if let Some(perms) = c.perms.as_mut() {
            // A wildcard subscription does not receive what the deny list
            // names, nor a queue subscription what its queue is denied.
            if !perms.can_receive(&p.subject, s.queue.as_deref()) {
                return false;
            }
            if let (Some(reply), true) = (p.reply.as_deref(), perms.tracks_responses()) {
                perms.grant_response(now, reply);
            }
        }
        s.delivered += 1;
        let done = s.max_msgs.is_some_and(|max| s.delivered >= max);
        let reply = p.reply.as_deref();
        let size = match (&p.headers, c.flags.headers) {
            (Some(h), true) => {
                encode::write_hmsg(&mut c.outbound, &p.subject, &s.sid, reply, h, &p.payload);
                h.len() + p.payload.len()
            }
            // A client that did not announce headers gets the payload alone, as nats-server does.
            _ => {
                encode::write_msg(&mut c.outbound, &p.subject, &s.sid, reply, &p.payload);
                p.payload.len()
            }
        };
        c.counters.out_msgs += 1;
        c.counters.out_bytes += size as u64;
        let receiver_account = c.account;
        self.producer_stalled |= c.pending_bytes + c.outbound.len() as u64 > max_pending / 2;
        self.counters.out_msgs += 1;
        self.counters.out_bytes += size as u64;
        self.accounts[receiver_account].stats.sent.add(size);
        if self.opts.trace {
            self.trace_delivery(sub, p, size);
        }
        if done {
            self.unsubscribe(sub.slot, sub.sub);
        }
        self.mark_dirty(sub.slot);
        // The same limit as for every other byte queued to a client.
        self.enforce_max_pending(now, sub.slot);
        true
    }

    pub(crate) fn slow_consumer(&mut self, now: Instant, slot: Slot) {
        let max_pending = self.opts.max_pending_bytes;
        if let Some(c) = self.client(slot) {
            let line = format!("{} - {} - Slow Consumer Detected: MaxPending of {max_pending} Exceeded", c.peer, c.cid);
            self.log(Level::Info, line);
        }
        self.counters.slow_consumers += 1;
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
        self.scratch.clear();
        self.scratch.extend_from_slice(b"NATS/1.0 503\r\nNats-Subject: ");
        self.scratch.extend_from_slice(&p.subject);
        self.scratch.extend_from_slice(b"\r\n\r\n");
        let status = Publish {
            subject: p.reply.clone().unwrap_or_default(),
            reply: None,
            headers: Some(self.scratch.split().freeze()),
            payload: bytes::Bytes::new(),
        };
        let result = self.accounts[account].sublist.match_subject(reply);
        let own = result.plain.iter().chain(result.queues.iter().flat_map(|(_, m)| m.iter()));
        if let Some(&sub) = own.into_iter().find(|s| s.slot == from) {
            self.deliver_to(now, sub, &status);
        }
    }
}
