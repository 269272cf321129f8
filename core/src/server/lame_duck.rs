//! Lame duck mode (`--signal ldm`, SIGUSR2), decided here and timed by the
//! core's clock, as nats-server does it: the runtime stops accepting; the
//! clients that asked for INFO updates (`protocol: 1`) get an INFO with
//! `ldm: true`; after `lame_duck_grace_period` the clients are closed one
//! by one, spread over what is left of `lame_duck_duration` (each pause a
//! random time between half and all of the duration's share per client,
//! at most a second, in batches when there are more clients than
//! nanoseconds); then the server asks to exit.

use std::collections::VecDeque;
use std::time::Duration;

use rand_core::RngCore;

use crate::log::Level;
use crate::protocol::encode;
use crate::time::Instant;

use super::{CloseReason, ConnId, Control};

/// Where lame duck mode stands.
#[derive(Debug)]
pub(crate) struct LameDuck {
    /// When the next client is closed (the end of the grace period first).
    next_at: Instant,
    /// Clients still to close, in the order they connected.
    queue: VecDeque<ConnId>,
    /// Closed so far.
    closed: usize,
    /// The share of the duration each client gets (nats-server's `si`).
    interval: Duration,
    /// Clients closed per pause when there are more clients than nanoseconds.
    batch: usize,
    /// The grace period is over: clients are being closed.
    evicting: bool,
    /// Every client closed: the runtime should exit.
    finished: bool,
}

impl Control {
    /// Enters lame duck mode; false if already in it. The runtime stops
    /// accepting connections when this returns true.
    pub fn enter_lame_duck(&mut self, now: Instant) -> bool {
        if self.lame_duck.is_some() {
            return false;
        }
        self.log(Level::Info, "Entering lame duck mode, stop accepting new clients".to_owned());
        let grace = self.opts.lame_duck_grace_period;
        let queue: VecDeque<ConnId> = self.by_cid.keys().copied().collect();
        let mut ldm = LameDuck {
            next_at: now + grace,
            queue,
            closed: 0,
            interval: Duration::ZERO,
            batch: 1,
            evicting: false,
            finished: false,
        };
        if ldm.queue.is_empty() {
            ldm.finished = true;
            self.lame_duck = Some(ldm);
            return true;
        }
        let spread = self.opts.lame_duck_duration.saturating_sub(grace);
        let spread_ns = if spread.is_zero() { 1_000_000_000 } else { spread.as_nanos().min(u128::from(u64::MAX)) as u64 };
        let clients = ldm.queue.len() as u64;
        let mut interval_ns = spread_ns / clients;
        if interval_ns < 1 {
            interval_ns = 1;
            ldm.batch = usize::try_from(clients / spread_ns).unwrap_or(usize::MAX).max(1);
        } else if interval_ns > 1_000_000_000 {
            interval_ns = 1_000_000_000;
        }
        ldm.interval = Duration::from_nanos(interval_ns);
        self.lame_duck = Some(ldm);
        self.send_ldm_info();
        self.wake();
        true
    }

    /// True once lame duck mode closed every client: time to exit.
    pub fn lame_duck_finished(&self) -> bool {
        self.lame_duck.as_ref().is_some_and(|l| l.finished)
    }

    /// True while in lame duck mode (new connections are refused).
    pub fn in_lame_duck(&self) -> bool {
        self.lame_duck.is_some()
    }

    /// The INFO with `ldm: true`, to every client that announced
    /// `protocol: 1` and got its first PONG.
    fn send_ldm_info(&mut self) {
        let slots: Vec<_> = self.by_cid.values().copied().collect();
        for slot in slots {
            let Some(c) = self.client(slot) else { continue };
            if !c.connected || !c.first_pong_sent || !c.flags.info_updates {
                continue;
            }
            let (cid, peer, max_payload) = (c.cid, c.peer, c.parser_limits.max_payload_bytes);
            let mut info = self.client_info(cid, peer);
            info.ldm = true;
            info.max_payload = max_payload;
            self.queue(slot, |b| encode::write_info(b, &info));
        }
    }

    /// When lame duck mode next has something to do.
    pub(crate) fn lame_duck_deadline(&self) -> Option<Instant> {
        self.lame_duck.as_ref().filter(|l| !l.finished).map(|l| l.next_at)
    }

    /// Closes the clients due at `now`.
    pub(crate) fn lame_duck_timeout(&mut self, now: Instant) {
        loop {
            let Some(ldm) = self.lame_duck.as_mut() else { return };
            if ldm.finished || ldm.next_at > now {
                return;
            }
            if !ldm.evicting {
                ldm.evicting = true;
                self.log(Level::Info, "Closing existing clients".to_owned());
                continue;
            }
            let Some(conn) = ldm.queue.pop_front() else {
                ldm.finished = true;
                return;
            };
            let i = ldm.closed;
            ldm.closed += 1;
            let last = ldm.queue.is_empty();
            let pause = !last && (ldm.batch == 1 || i % ldm.batch == 0);
            let interval_ns = ldm.interval.as_nanos() as u64;
            if last {
                ldm.finished = true;
            }
            if pause {
                let drawn = self.rng.next_u64() % interval_ns.max(1);
                let wait = drawn.max(interval_ns / 2);
                // From when the close was due, so a late timer does not
                // stretch the schedule.
                if let Some(ldm) = self.lame_duck.as_mut() {
                    ldm.next_at = ldm.next_at + Duration::from_nanos(wait);
                }
            }
            if let Some(&slot) = self.by_cid.get(&conn) {
                self.close(now, slot, CloseReason::ServerShutdown, None);
            }
        }
    }
}
