//! Per-client timers: the auth timeout, pings and stale detection, and the
//! write deadline. Each client has one entry in the server's timer set, at
//! its earliest deadline.

use crate::log::Level;
use crate::protocol::encode;
use crate::time::Instant;

use super::{CloseReason, Control, Slot};

impl Control {
    /// Re-registers `slot` in the timer set at its current earliest deadline.
    /// [`Control::arm`] by connection id.
    pub(crate) fn arm_conn(&mut self, conn: super::ConnId) {
        if let Some(&slot) = self.by_cid.get(&conn) {
            self.arm(slot);
        }
    }

    pub(crate) fn arm(&mut self, slot: Slot) {
        let write_deadline = self.opts.write_deadline;
        let Some(c) = self.client_mut(slot) else { return };
        let at = c.next_deadline(write_deadline);
        let old = c.armed_deadline.replace(at);
        if old == Some(at) {
            return;
        }
        if let Some(old) = old {
            self.timers.remove(&(old, slot));
        }
        self.timers.insert((at, slot));
    }

    /// The runtime's write to `conn` made no progress for a while: closes
    /// it as a slow consumer if that while is `write_deadline`.
    pub fn handle_write_stalled(&mut self, now: Instant, conn: super::ConnId) {
        if let Some(&slot) = self.by_cid.get(&conn) {
            self.write_deadline_passed(now, slot);
            self.wake();
        }
    }

    /// Closes the client if its pending bytes saw no write progress for
    /// `write_deadline`; true if it did.
    fn write_deadline_passed(&mut self, now: Instant, slot: Slot) -> bool {
        let write_deadline = self.opts.write_deadline;
        let Some(c) = self.client(slot) else { return false };
        let stuck = {
            let o = c.outbox.lock();
            o.pending_bytes > 0 && o.write_progress_at.is_some_and(|at| at + write_deadline <= now)
        };
        if stuck {
            let msg = format!("{} - {} - Slow Consumer Detected: WriteDeadline of {write_deadline:?} exceeded", c.peer, c.cid);
            self.traffic.slow_consumer();
            self.log(Level::Info, msg);
            self.close(now, slot, CloseReason::SlowConsumerWriteDeadline, None);
        }
        stuck
    }

    pub(crate) fn run_client_timers(&mut self, now: Instant, slot: Slot) {
        let (ping_interval, ping_max) = (self.opts.ping_interval, self.opts.ping_max);
        let Some(c) = self.client_mut(slot) else { return };
        if c.auth_deadline.is_some_and(|at| at <= now) {
            let line = format!("{} - {} - Authentication Timeout", c.peer, c.cid);
            self.log(Level::Error, line);
            return self.close(now, slot, CloseReason::AuthenticationTimeout, Some("Authentication Timeout"));
        }
        if c.auth_expires_at.is_some_and(|at| at <= now) {
            let line = format!("{} - {} - User JWT has expired", c.peer, c.cid);
            self.log(Level::Debug, line);
            return self.close(now, slot, CloseReason::AuthenticationExpired, Some("User Authentication Expired"));
        }
        let last_in_at = c.outbox.lock().last_in_at;
        if self.write_deadline_passed(now, slot) {
            return;
        }
        let Some(c) = self.client_mut(slot) else { return };
        if c.next_ping_at <= now {
            c.next_ping_at = now + ping_interval;
            // Traffic from the client since the last tick proves it alive.
            let quiet = now.saturating_duration_since(last_in_at) >= ping_interval;
            if quiet || c.pings_out > 0 || !c.first_ping_sent {
                c.first_ping_sent = true;
                if c.pings_out + 1 > ping_max {
                    let msg = format!("{} - {} - Stale Client Connection - Closing", c.peer, c.cid);
                    self.log(Level::Debug, msg);
                    self.counters.stale_connections += 1;
                    return self.close(now, slot, CloseReason::StaleConnection, Some("Stale Connection"));
                }
                c.pings_out += 1;
                c.ping_sent_at = Some(now);
                self.queue(slot, |b| b.extend_from_slice(encode::PING));
                self.enforce_max_pending(now, slot);
                if self.client(slot).is_none() {
                    return;
                }
            }
        }
        self.arm(slot);
    }
}
