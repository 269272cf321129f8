//! One connection's session: the parser and the publish path, run by
//! whichever thread read the connection's bytes.
//!
//! A publish is checked, matched and delivered here, without the control
//! plane: the match comes from the session's own cache of its account's
//! index (checked against the index's generation on every publish, so it
//! is never used after a change), the deliveries lock one receiver's
//! outbox at a time. Everything else the client sends (CONNECT, SUB,
//! UNSUB, PING…), and the publishes that need the control plane (those
//! that may cross accounts, are denied, or are traced), the session hands
//! to [`Control`] through [`WithControl`], in order, so that a SUB followed
//! by a PUB in one read sees its own subscription.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::account::mapping::Mapped;
use crate::auth;
use crate::protocol::{encode, ClientOp, ConnectInfo, Parser, Publish};
use crate::subject::is_valid_literal_subject;
use crate::time::{Instant, UnixNanos};

use super::matches::MatchCache;
use super::deliver::{no_responders_status, own_subscription, Route, Stall, Work};
use super::ops::PreparedConnect;
use super::outbox::{Outbox, Profile};
use super::{ConnId, Control, Slot, Traffic, PRODUCER_STALL, PRODUCER_STALL_BUDGET};

/// How a session reaches the control plane: the runtime's lock around it,
/// or plain `&mut` where one thread runs everything.
pub trait WithControl {
    /// Runs `f` on the control plane, alone.
    fn with_control<R>(&mut self, f: impl FnOnce(&mut Control) -> R) -> R;
}

/// One connection's session (see the [module](self) documentation).
pub struct Session {
    slot: Slot,
    outbox: Arc<Outbox>,
    parser: Parser,
    profile: Arc<Profile>,
    cache: MatchCache,
    /// Picks queue members for this connection's publishes.
    rng: ChaCha8Rng,
    work: Work,
    traffic: Arc<Traffic>,
    max_pending: u64,
    /// The clocks at the server's start, to tell the wall time of `now`.
    started: (Instant, UnixNanos),
    scratch: BytesMut,
    /// What the last CONNECT said: a later CONNECT is read over it, as
    /// nats-server decodes each CONNECT into the options it already has.
    connect: Option<Box<ConnectInfo>>,
    /// The nonce the server's INFO asked the client to sign.
    nonce: Option<String>,
    /// Credentials a WebSocket client's upgrade request carried in cookies.
    cookies: Option<Box<crate::websocket::handshake::Cookies>>,
    /// When the session last asked its runtime to pause (the next call
    /// resumes the same read), and how long this read has paused so far.
    stalled_at: Option<Instant>,
    stall_spent: Duration,
    /// Publishes to one subject read one after the other, delivered
    /// together (see [`Session::flush_run`]), and their size.
    run: Vec<Publish>,
    run_bytes: usize,
    /// Scratch for [`Route::deliver_many`].
    order: Vec<usize>,
    /// JetStream acknowledgements read one after the other, handed to the
    /// control plane together (see [`Session::flush_acks`]).
    acks: Vec<Publish>,
}

/// The most acknowledgements handed to the control plane at once: a read
/// of acks is taken in a few turns of the lock, each followed by one
/// JetStream drain, instead of one of each per ack.
const ACKS_MAX: usize = 256;

/// The most messages, and bytes, a run holds before it is delivered: the
/// bytes are capped by an eighth of `max_pending` too, so that a run
/// overshoots the stall gate by little.
const RUN_MAX_MSGS: usize = 64;
const RUN_MAX_BYTES: usize = 32 * 1024;

/// What a [`Session`] starts with, from the control plane.
pub(crate) struct SessionSetup {
    pub slot: Slot,
    pub outbox: Arc<Outbox>,
    pub profile: Arc<Profile>,
    pub traffic: Arc<Traffic>,
    pub max_pending: u64,
    pub started: (Instant, UnixNanos),
    pub seed: u64,
    pub nonce: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("cid", &self.outbox.cid()).finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(setup: SessionSetup) -> Self {
        let seed = setup.seed;
        Session {
            slot: setup.slot,
            parser: Parser::new(setup.profile.parser_limits),
            outbox: setup.outbox,
            profile: setup.profile,
            cache: MatchCache::new(seed),
            rng: ChaCha8Rng::seed_from_u64(seed),
            work: Work::default(),
            traffic: setup.traffic,
            max_pending: setup.max_pending,
            started: setup.started,
            scratch: BytesMut::new(),
            connect: None,
            nonce: setup.nonce,
            cookies: None,
            stalled_at: None,
            stall_spent: Duration::ZERO,
            run: Vec::new(),
            run_bytes: 0,
            order: Vec::new(),
            acks: Vec::new(),
        }
    }

    /// The credentials a WebSocket client's upgrade request carried in the
    /// `jwt_cookie`, `user_cookie`, `pass_cookie` and `token_cookie`
    /// cookies: each stands in for the CONNECT field the client leaves
    /// empty, as in nats-server.
    pub fn set_cookies(&mut self, cookies: crate::websocket::handshake::Cookies) {
        let any = cookies.jwt.is_some() || cookies.user.is_some() || cookies.pass.is_some() || cookies.token.is_some();
        self.cookies = any.then(|| Box::new(cookies));
    }

    /// The connection's id.
    pub fn cid(&self) -> ConnId {
        self.outbox.cid()
    }

    /// The connection's outbox, which the runtime drains.
    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Bytes arrived from the client: runs its ops, in order, and consumes
    /// them from `bytes`.
    ///
    /// Back-pressure, as nats-server applies it: when a message leaves one
    /// of its receivers past the stall gate (three quarters of
    /// `max_pending` unread), the session stops after that message and
    /// returns how long the runtime should wait; what is left in `bytes`
    /// is unread, and the runtime hands it in again after the pause, before
    /// reading more. A healthy receiver drains meanwhile instead of being
    /// cut: while the receivers past the gate are draining (see
    /// [`DRAIN_GRACE`](super::DRAIN_GRACE)) the producer pauses as long as
    /// it takes. For a receiver that does not drain the pauses of one read
    /// add up to at most [`PRODUCER_STALL_BUDGET`]: after that the read
    /// goes on, and the receiver crosses `max_pending` and is cut.
    /// Once the connection is closed (see [`Outbox::take`]) the session
    /// drops what it is fed.
    pub fn handle_received(&mut self, now: Instant, bytes: &mut Bytes, control: &mut impl WithControl) -> Option<Duration> {
        // A call after a pause resumes the paused read; any other starts one.
        match self.stalled_at.take() {
            Some(at) => self.stall_spent += now.saturating_duration_since(at),
            None => self.stall_spent = Duration::ZERO,
        }
        if !self.begin(now) {
            bytes.clear();
            return None;
        }
        let mut paused = false;
        while !bytes.is_empty() {
            match self.parser.next_op(bytes) {
                Ok(Some(ClientOp::Pub(mut p))) => {
                    if !self.map_subject(now, &mut p) {
                        continue;
                    }
                    if !self.takes(now, &p) {
                        if p.subject.starts_with(b"$JS.ACK.") {
                            if self.acks.is_empty() {
                                self.flush_run(now);
                            }
                            self.acks.push(p);
                            if self.acks.len() >= ACKS_MAX && !self.flush_acks(now, control) {
                                break;
                            }
                        } else if !self.flush_acks(now, control)
                            || !self.hand_over(now, control, |c, slot| c.process_op(now, slot, ClientOp::Pub(p), None))
                        {
                            break;
                        }
                    } else {
                        if !self.flush_acks(now, control) {
                            break;
                        }
                        // Closed meanwhile (by a timer, a revocation, a slow
                        // consumer check): the rest of the read is dropped.
                        if self.outbox.is_closed() {
                            break;
                        }
                        if self.joins_run(&p) {
                            self.extend_run(now, p);
                        } else {
                            self.flush_run(now);
                            self.publish(now, &p);
                        }
                    }
                    if self.must_pause() {
                        paused = true;
                        break;
                    }
                }
                Ok(Some(ClientOp::Connect(json))) => {
                    if !self.flush_acks(now, control) {
                        break;
                    }
                    let prepared = self.prepare_connect(&json);
                    let op = ClientOp::Connect(json);
                    if !self.hand_over(now, control, |c, slot| c.process_op(now, slot, op, Some(prepared))) {
                        break;
                    }
                }
                Ok(Some(op)) => {
                    if !self.flush_acks(now, control) || !self.hand_over(now, control, |c, slot| c.process_op(now, slot, op, None)) {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    if self.flush_acks(now, control) {
                        self.hand_over(now, control, |c, slot| c.parse_error(now, slot, &e));
                    }
                    break;
                }
            }
        }
        self.flush_acks(now, control);
        if !paused {
            bytes.clear();
        }
        self.flush_run(now);
        self.finish(now, control)
    }

    /// [`Session::handle_received`] for a runtime that cannot pause in the
    /// middle of what it read: runs all of `bytes`, and returns the longest
    /// pause it was asked for, to take before reading more.
    pub fn handle_received_all(&mut self, now: Instant, mut bytes: Bytes, control: &mut impl WithControl) -> Option<Duration> {
        let mut pause = self.handle_received(now, &mut bytes, control);
        while !bytes.is_empty() {
            pause = self.handle_received(now, &mut bytes, control).max(pause);
        }
        pause
    }

    /// A receiver is past the stall gate and this read may still pause.
    fn must_pause(&self) -> bool {
        match self.work.stall {
            Stall::No => false,
            Stall::WithinBudget => self.stall_spent < PRODUCER_STALL_BUDGET,
            Stall::Always => true,
        }
    }

    /// Reads a CONNECT over the one before and, outside operator mode,
    /// checks its credentials here, on the connection's own thread.
    fn prepare_connect(&mut self, json: &[u8]) -> PreparedConnect {
        let mut parsed = match self.connect.as_deref() {
            Some(before) => ConnectInfo::parse_over(before, json),
            None => ConnectInfo::parse(json),
        };
        // The users as of now: a config reload replaces them in the profile.
        self.refresh_profile();
        if let (Ok(info), Some(cookies)) = (&mut parsed, self.cookies.as_deref()) {
            let fill = |field: &mut Option<String>, cookie: &Option<String>| {
                if field.as_deref().is_none_or(str::is_empty) {
                    field.clone_from(cookie);
                }
            };
            fill(&mut info.jwt, &cookies.jwt);
            fill(&mut info.user, &cookies.user);
            fill(&mut info.pass, &cookies.pass);
            fill(&mut info.auth_token, &cookies.token);
        }
        let identity = match (&parsed, &self.profile.plain_auth) {
            (Ok(info), Some(users)) => Some(auth::authenticate_as(
                &users.authorization,
                users.no_auth_user.as_deref(),
                info,
                self.nonce.as_deref(),
                users.connection_type,
            )),
            _ => None,
        };
        if let Ok(info) = &parsed {
            // Every CONNECT that is not accepted closes the connection, so
            // the next one can only follow an accepted one.
            self.connect = Some(Box::new(info.clone()));
        }
        PreparedConnect { parsed, identity }
    }

    /// Notes the arrival; false if the connection is closed.
    fn begin(&mut self, now: Instant) -> bool {
        let (at, wall) = self.started;
        let since = i64::try_from(now.saturating_duration_since(at).as_nanos()).unwrap_or(i64::MAX);
        let mut o = self.outbox.lock();
        if o.closed.is_some() {
            return false;
        }
        o.last_in_at = now;
        o.last_activity = UnixNanos(wall.0.saturating_add(since));
        if !Arc::ptr_eq(&o.profile, &self.profile) {
            self.profile = Arc::clone(&o.profile);
            self.parser.set_limits(self.profile.parser_limits);
        }
        true
    }

    /// Applies the account's subject mappings to `p`, before anything else
    /// looks at it (permissions included), as nats-server does. False when
    /// the mapping dropped the message: it is counted and acknowledged as
    /// any publish, and goes nowhere.
    fn map_subject(&mut self, now: Instant, p: &mut Publish) -> bool {
        if !self.profile.connected {
            return true;
        }
        let Some(mappings) = self.profile.account.mappings() else { return true };
        let Ok(subject) = std::str::from_utf8(&p.subject) else { return true };
        match mappings.select(subject, &mut self.rng) {
            Mapped::Unchanged => true,
            Mapped::To(to) => {
                p.subject = Bytes::from(to);
                true
            }
            Mapped::Dropped => {
                let size = p.payload.len() + p.headers.as_ref().map_or(0, Bytes::len);
                self.work.received.add(size);
                if self.profile.verbose {
                    self.queue_own(now, |b| b.extend_from_slice(encode::OK));
                }
                false
            }
        }
    }

    /// True when this publish can go the session's own way.
    fn takes(&mut self, now: Instant, p: &Publish) -> bool {
        let profile = &self.profile;
        let plain = profile.connected
            && !profile.trace
            && (p.headers.is_none() || profile.headers)
            && !profile.account.has_routes(&p.subject);
        if !plain || !profile.guarded {
            return plain;
        }
        // Denied publishes go to the control plane, which says so.
        let mut o = self.outbox.lock();
        o.perms.as_mut().is_none_or(|perms| perms.can_publish(now, &p.subject))
    }

    /// True when `p` (taking the fast path) may be delivered in a run: it
    /// asks for nothing back (no reply, so no no-responders status; no
    /// `+OK` or pedantic `-ERR` to order among the deliveries).
    fn joins_run(&self, p: &Publish) -> bool {
        p.reply.is_none() && !self.profile.verbose && !self.profile.pedantic
    }

    /// Adds `p` to the run, delivering the run first if `p` goes elsewhere,
    /// and after if the run is full.
    fn extend_run(&mut self, now: Instant, p: Publish) {
        if self.run.first().is_some_and(|first| first.subject != p.subject) {
            self.flush_run(now);
        }
        let size = p.payload.len() + p.headers.as_ref().map_or(0, Bytes::len);
        self.work.received.add(size);
        self.run_bytes += size + p.subject.len();
        self.run.push(p);
        let max_pending = self.traffic.max_pending(self.max_pending);
        let max_bytes = RUN_MAX_BYTES.min(usize::try_from(max_pending / 8).unwrap_or(usize::MAX));
        if self.run.len() >= RUN_MAX_MSGS || self.run_bytes >= max_bytes {
            self.flush_run(now);
        }
    }

    /// Delivers the run: one match for all of it, and (without queue
    /// groups) one lock of each receiver's outbox. Each receiver gets what
    /// delivering the messages one by one would give it, in that order.
    fn flush_run(&mut self, now: Instant) {
        if self.run.is_empty() {
            return;
        }
        let echo = self.profile.echo;
        let result = self.cache.lookup(&self.profile.account, &self.run[0].subject);
        let max_pending = self.traffic.max_pending(self.max_pending);
        let mut route = Route { now, max_pending, rng: &mut self.rng, work: &mut self.work, trace: None };
        // A run of one is a plain delivery: no grouping to pay for.
        if result.queues.is_empty() && self.run.len() > 1 {
            route.deliver_many(result, self.slot, echo, &self.run, &mut self.order);
        } else {
            for p in &self.run {
                route.deliver(result, self.slot, echo, p);
            }
        }
        self.run.clear();
        self.run_bytes = 0;
    }

    /// The fast path: counts, acknowledges and delivers `p`.
    fn publish(&mut self, now: Instant, p: &Publish) {
        let size = p.payload.len() + p.headers.as_ref().map_or(0, Bytes::len);
        self.work.received.add(size);
        let (pedantic, verbose, echo) = (self.profile.pedantic, self.profile.verbose, self.profile.echo);
        if pedantic && !is_valid_literal_subject(&p.subject) {
            // nats-server reports the subject but still routes the message.
            self.queue_own(now, |b| encode::write_err(b, "Invalid Publish Subject"));
        }
        if verbose {
            self.queue_own(now, |b| b.extend_from_slice(encode::OK));
        }
        let result = self.cache.lookup(&self.profile.account, &p.subject);
        let mut route =
            Route { now, max_pending: self.traffic.max_pending(self.max_pending), rng: &mut self.rng, work: &mut self.work, trace: None };
        let delivered = route.deliver(result, self.slot, echo, p);
        if delivered == 0 && self.profile.no_responders {
            if let Some(reply) = p.reply.as_deref() {
                let status = no_responders_status(p, &mut self.scratch);
                let result = self.cache.lookup(&self.profile.account, reply);
                if let Some(sub) = own_subscription(result, self.slot) {
                    let mut route =
                        Route { now, max_pending: self.traffic.max_pending(self.max_pending), rng: &mut self.rng, work: &mut self.work, trace: None };
                    route.deliver_to(sub, &status);
                }
            }
        }
    }

    /// Queues the server's reply to this client (`+OK`, `-ERR`).
    fn queue_own(&mut self, now: Instant, write: impl FnOnce(&mut BytesMut)) {
        let mut o = self.outbox.lock();
        if o.closed.is_some() {
            return;
        }
        write(o.queued.buf(0));
        // A client that does not read the server's replies is a slow
        // consumer as surely as one that does not read its messages.
        if o.over_limit(now, self.traffic.max_pending(self.max_pending)) {
            self.outbox.close(&mut o, super::CloseReason::SlowConsumerPendingBytes);
            self.work.slow.push(self.slot);
        }
        if o.mark_dirty() {
            self.work.touched.push(&self.outbox);
        }
    }

    /// Runs `f` on the control plane with the session's counts flushed
    /// first; takes over what the control plane queued. False once the
    /// connection is closed.
    fn hand_over(&mut self, now: Instant, control: &mut impl WithControl, f: impl FnOnce(&mut Control, Slot)) -> bool {
        self.flush_run(now);
        self.count();
        let (slot, work) = (self.slot, &mut self.work);
        control.with_control(|c| {
            f(c, slot);
            c.hand_over(work);
        });
        self.begin_again()
    }

    /// Hands the acknowledgements read so far to the control plane, in
    /// order, under one turn of its lock and with one JetStream drain after
    /// them all (see [`Control::process_acks`]). False once the connection
    /// is closed.
    fn flush_acks(&mut self, now: Instant, control: &mut impl WithControl) -> bool {
        if self.acks.is_empty() {
            return true;
        }
        self.count();
        let (slot, work, acks, outbox) = (self.slot, &mut self.work, &mut self.acks, &self.outbox);
        control.with_control(|c| {
            c.process_acks(now, slot, acks, || outbox.is_closed());
            c.hand_over(work);
        });
        self.acks.clear();
        self.begin_again()
    }

    /// Picks up the profile the control plane last shared.
    fn refresh_profile(&mut self) {
        let o = self.outbox.lock();
        if !Arc::ptr_eq(&o.profile, &self.profile) {
            self.profile = Arc::clone(&o.profile);
            self.parser.set_limits(self.profile.parser_limits);
        }
    }

    /// Picks up what the control plane changed; false if it closed the connection.
    fn begin_again(&mut self) -> bool {
        let o = self.outbox.lock();
        if o.closed.is_some() {
            return false;
        }
        if !Arc::ptr_eq(&o.profile, &self.profile) {
            self.profile = Arc::clone(&o.profile);
            self.parser.set_limits(self.profile.parser_limits);
        }
        true
    }

    /// Adds the batch's counts to the shared counters.
    fn count(&mut self) {
        let received = std::mem::take(&mut self.work.received);
        let delivered = std::mem::take(&mut self.work.delivered);
        if received.msgs > 0 {
            let mut o = self.outbox.lock();
            o.counters.in_msgs += received.msgs;
            o.counters.in_bytes += received.bytes;
            drop(o);
            self.profile.account.received.add(received);
        }
        self.traffic.add(received, delivered);
        self.work.count_sent_into_accounts();
    }

    /// Ends a batch: counts, has the control plane carry out what the
    /// deliveries left it, and wakes every outbox that got bytes.
    fn finish(&mut self, now: Instant, control: &mut impl WithControl) -> Option<Duration> {
        self.count();
        if self.work.needs_control() {
            let work = &mut self.work;
            control.with_control(|c| {
                for (slot, sub) in work.expired.drain(..) {
                    c.unsubscribe(now, slot, sub);
                }
                for slot in work.slow.drain(..) {
                    c.slow_consumer(now, slot);
                }
                if std::mem::take(&mut work.jetstream_flush) {
                    c.flush_jetstream(now);
                }
                c.hand_over(work);
            });
        }
        self.work.touched.wake_all();
        let pause = self.must_pause();
        let stall = std::mem::take(&mut self.work.stall);
        if !pause {
            return None;
        }
        self.traffic.stalled();
        self.stalled_at = Some(now);
        Some(match stall {
            Stall::Always => PRODUCER_STALL,
            _ => PRODUCER_STALL.min(PRODUCER_STALL_BUDGET.saturating_sub(self.stall_spent)),
        })
    }
}

impl Control {
    /// Gives a session what the control plane queued and noticed while
    /// running one of its ops.
    pub(crate) fn hand_over(&mut self, work: &mut Work) {
        work.touched.append(&mut self.work.touched);
        work.stall = work.stall.max(std::mem::take(&mut self.producer_stall));
        work.jetstream_flush |= self.jetstream_needs_flush();
    }
}
