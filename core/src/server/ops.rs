//! What the server does with each client operation.

use std::sync::Arc;

use bytes::Bytes;

use crate::auth;
use crate::log::Level;
use crate::auth::{AuthError, Identity};
use crate::protocol::connect::ConnectError;
use crate::protocol::{encode, ClientOp, ConnectInfo, ParseError, ParserLimits, Publish};
use crate::subject;
use crate::time::Instant;

use super::client::SubId;
use super::subs::Subscription;
use super::{CloseReason, Control, Slot, SubRef};

/// A CONNECT as the connection's session prepared it: read over the one
/// before, and checked against the configured users where that needs no
/// shared state (so a bcrypt password costs the connection's own thread,
/// not the control plane's).
#[derive(Debug)]
pub(crate) struct PreparedConnect {
    pub parsed: Result<ConnectInfo, ConnectError>,
    /// `None` when the credentials need the control plane (operator mode).
    pub identity: Option<Result<Identity, AuthError>>,
}

impl Control {
    /// Carries out one op of the client in `slot`; a CONNECT comes with
    /// what its session prepared of it.
    pub(crate) fn process_op(&mut self, now: Instant, slot: Slot, op: ClientOp, prepared: Option<PreparedConnect>) {
        let Some(c) = self.client(slot) else { return };
        let (connected, transport) = (c.connected, c.transport);
        if self.trace_enabled() {
            let line = format!("{} - {} - <<- [{}]", c.peer, c.cid, trace_text(&op));
            self.log(Level::Trace, line);
        }
        if !connected && self.auth_required_via(transport) && !matches!(op, ClientOp::Connect(_)) {
            return self.auth_violation(now, slot, "authentication required before CONNECT");
        }
        match op {
            ClientOp::Connect(json) => {
                // Sessions always prepare CONNECT; without that, it is read as a first one.
                let prepared = prepared.unwrap_or_else(|| PreparedConnect { parsed: ConnectInfo::parse(&json), identity: None });
                self.on_connect(now, slot, prepared);
            }
            ClientOp::Pub(p) => self.on_pub(now, slot, p),
            ClientOp::Sub { subject, queue, sid } => self.on_sub(slot, subject, queue, sid),
            ClientOp::Unsub { sid, max_msgs } => self.on_unsub(now, slot, &sid, max_msgs),
            ClientOp::Ping => self.on_ping(slot),
            ClientOp::Pong => {
                if let Some(c) = self.client_mut(slot) {
                    c.pings_out = 0;
                    if let Some(sent) = c.ping_sent_at.take() {
                        c.rtt = Some(now.saturating_duration_since(sent));
                    }
                }
            }
            ClientOp::Ok | ClientOp::Err(_) => {}
        }
        self.enforce_max_pending(now, slot);
    }

    /// The client's bytes could not be parsed: nats-server's error, and
    /// the connection closes.
    pub(crate) fn parse_error(&mut self, now: Instant, slot: Slot, e: &ParseError) {
        let Some(c) = self.client(slot) else { return };
        let line = format!("{} - {} - {e}", c.peer, c.cid);
        self.log(Level::Error, line);
        self.close(now, slot, e.close_reason(), e.err_text());
    }

    /// A client that does not read the server's replies (PONG, +OK, -ERR)
    /// is a slow consumer as surely as one that does not read its messages.
    pub(crate) fn enforce_max_pending(&mut self, now: Instant, slot: Slot) {
        let max_pending = self.effective_max_pending();
        let over = self.client(slot).is_some_and(|c| {
            let o = c.outbox.lock();
            o.closed.is_none() && o.over_limit(now, max_pending)
        });
        if over {
            self.slow_consumer(now, slot);
        }
    }

    fn send(&mut self, slot: Slot, bytes: &[u8]) {
        self.queue(slot, |b| b.extend_from_slice(bytes));
        if self.trace_enabled() {
            let op = String::from_utf8_lossy(bytes.strip_prefix(b"+").unwrap_or(bytes)).trim_end().to_owned();
            self.trace_out(slot, &op);
        }
    }

    /// `-V`: logs what the server sends, as nats-server's `->> [OP]` traces.
    pub(crate) fn trace_out(&mut self, slot: Slot, op: &str) {
        if let Some(c) = self.client(slot) {
            let line = format!("{} - {} - ->> [{op}]", c.peer, c.cid);
            self.log(Level::Trace, line);
        }
    }

    /// PONG; after the first one, a client that speaks protocol 1 gets an
    /// INFO confirming its connection (`connect_info`), as nats-server sends.
    fn on_ping(&mut self, slot: Slot) {
        self.send(slot, encode::PONG);
        let Some(c) = self.client_mut(slot) else { return };
        // The first PONG that counts is the first after CONNECT.
        if !c.connected || std::mem::replace(&mut c.first_pong_sent, true) || !c.flags.info_updates {
            return;
        }
        let (cid, peer, account) = (c.cid, c.peer, c.account);
        let c_max_payload = c.parser_limits.max_payload_bytes;
        let mut info = self.client_info(cid, peer);
        info.connect_info = true;
        info.remote_account = self.accounts[account].name.clone();
        info.acc_is_sys = self.system_account_name() == Some(info.remote_account.as_str());
        // A JWT user's limits may lower max_payload; the client learns it here.
        info.max_payload = c_max_payload;
        self.queue(slot, |b| encode::write_info(b, &info));
    }

    fn send_ok(&mut self, slot: Slot) {
        if self.client(slot).is_some_and(|c| c.flags.verbose) {
            self.send(slot, encode::OK);
        }
    }

    pub(crate) fn send_err(&mut self, slot: Slot, text: &str) {
        self.queue(slot, |b| encode::write_err(b, text));
        if self.trace_enabled() {
            self.trace_out(slot, &format!("-ERR '{text}'"));
        }
    }

    pub(crate) fn auth_violation(&mut self, now: Instant, slot: Slot, why: &str) {
        if let Some(c) = self.client(slot) {
            let line = format!("{} - {} - authentication error: {why}", c.peer, c.cid);
            self.log(Level::Error, line);
        }
        self.close(now, slot, CloseReason::AuthenticationViolation, Some("Authorization Violation"));
    }

    /// nats-server's answer to a denied PUB or SUB: an `-ERR`, and the
    /// connection stays open.
    fn permission_violation(&mut self, slot: Slot, what: &str, subject: &[u8], queue: Option<&[u8]>) {
        let Some(c) = self.client(slot) else { return };
        let subject = String::from_utf8_lossy(subject);
        let account = &self.accounts[c.account].name;
        let user = c.meta.user.as_deref().unwrap_or_default();
        let (err, detail) = match queue {
            Some(q) => {
                let q = String::from_utf8_lossy(q);
                (
                    format!("Permissions Violation for {what} to \"{subject}\" using queue \"{q}\""),
                    format!("Subject \"{subject}\", Queue: \"{q}\""),
                )
            }
            None => (format!("Permissions Violation for {what} to \"{subject}\""), format!("Subject \"{subject}\"")),
        };
        let line = format!("{} - {} - \"{account}/user:{user}\" - {what} Violation - {detail}", c.peer, c.cid);
        self.log(Level::Error, line);
        self.send_err(slot, &err);
    }

    /// CONNECT. A later CONNECT on the same connection is read over the
    /// one before (fields it leaves out keep their values) and starts the
    /// session over, as in nats-server: every subscription is dropped
    /// before the credentials are checked again, so nothing subscribed
    /// under one identity (or account) survives into the next.
    fn on_connect(&mut self, now: Instant, slot: Slot, prepared: PreparedConnect) {
        let Some(c) = self.client(slot) else { return };
        let repeated = c.connected;
        let info = match prepared.parsed {
            Ok(info) => info,
            Err(e) => {
                let line = format!("{} - {} - invalid CONNECT: {e}", c.peer, c.cid);
                self.log(Level::Error, line);
                // nats-server closes without an -ERR on unparseable CONNECT JSON.
                return self.close(now, slot, CloseReason::ParseError, None);
            }
        };
        if repeated {
            self.end_session(slot);
        }
        let identity = prepared.identity.unwrap_or_else(|| self.authenticate(now, slot, &info));
        let identity = match identity {
            Ok(identity) => identity,
            Err(e) => {
                self.auth_error_event(now, slot, &info);
                return self.auth_violation(now, slot, &e.to_string());
            }
        };
        if !(0..=1).contains(&info.protocol) {
            self.send_err(slot, "invalid client protocol");
            return self.close(now, slot, CloseReason::BadClientProtocolVersion, None);
        }
        let headers = info.headers.unwrap_or(false) && !self.opts.no_header_support;
        if info.no_responders.unwrap_or(false) && !headers {
            return self.close(
                now,
                slot,
                CloseReason::NoRespondersRequiresHeaders,
                Some("no responders requires headers support"),
            );
        }
        let account = self.account_index(identity.account.as_deref());
        if !self.admit_jwt_user(now, slot, account) {
            return;
        }
        self.start_session(now, slot, info, identity, account);
    }

    /// Forgets what the connection's last CONNECT set up: its subscriptions
    /// (out of its account's index), its permissions and its limits.
    fn end_session(&mut self, slot: Slot) {
        let server_limits = ParserLimits {
            max_control_line_bytes: self.opts.max_control_line_bytes,
            max_payload_bytes: self.opts.max_payload_bytes,
        };
        let Some(c) = self.client_mut(slot) else { return };
        let account = c.account;
        c.has_perms = false;
        c.jwt_user = None;
        c.jwt_limits = None;
        c.subs_max = None;
        c.auth_expires_at = None;
        c.parser_limits = server_limits;
        let outbox = Arc::clone(&c.outbox);
        let subs = {
            let mut o = outbox.lock();
            o.perms = None;
            o.subs.drain()
        };
        let shared = &self.accounts[account].shared;
        for (id, sub) in subs {
            let sref = SubRef { slot, sub: id, outbox: Arc::clone(&outbox) };
            shared.remove(sub.subject(), sub.queue(), &sref);
        }
        self.share_profile(slot);
    }

    /// Binds an authenticated connection to its identity and account.
    fn start_session(&mut self, now: Instant, slot: Slot, info: ConnectInfo, identity: auth::Identity, account: usize) {
        let headers = info.headers.unwrap_or(false) && !self.opts.no_header_support;
        let now_unix_secs = self.wall_at(now).0.div_euclid(1_000_000_000);
        let Some(c) = self.client_mut(slot) else { return };
        let was_connected = std::mem::replace(&mut c.connected, true);
        c.auth_deadline = None;
        // Saturating: a wall clock before 1970 (or a far `exp`) must not overflow.
        c.auth_expires_at = identity.expires_at.map(|exp| {
            let left_secs = u64::try_from(exp.saturating_sub(now_unix_secs)).unwrap_or(0);
            now + std::time::Duration::from_secs(left_secs)
        });
        c.flags.verbose = info.verbose;
        c.flags.pedantic = info.pedantic;
        c.flags.echo = info.echo.unwrap_or(true);
        c.flags.headers = headers;
        c.flags.no_responders = info.no_responders.unwrap_or(false);
        c.flags.info_updates = info.protocol >= 1;
        // Until a PING measures it, nats-server estimates the round trip by the handshake.
        c.rtt = Some(now.saturating_duration_since(c.accepted_at).max(std::time::Duration::from_nanos(1)));
        c.meta.name = info.name.clone().unwrap_or_default();
        c.meta.lang = info.lang.clone().unwrap_or_default();
        c.meta.version = info.version.clone().unwrap_or_default();
        c.meta.user = identity.user;
        c.jwt_user = identity.jwt_user;
        let mqtt = c.transport == super::Transport::Mqtt;
        let perms = identity.permissions.as_ref().map(|p| {
            let perms = auth::ClientPermissions::new(p);
            Box::new(if mqtt { perms.for_mqtt() } else { perms })
        });
        c.permissions = identity.permissions.clone().map(Box::new);
        c.has_perms = perms.is_some();
        c.outbox.lock().perms = perms;
        c.connect = Some(Box::new(info));
        let previous = std::mem::replace(&mut c.account, account);
        if !was_connected || previous != account {
            self.accounts[account].stats.conns_ever += 1;
        }
        self.share_profile(slot);
        self.arm(slot);
        self.send_ok(slot);
        self.client_connected_event(now, slot, was_connected.then_some(previous));
    }

    fn on_pub(&mut self, now: Instant, slot: Slot, p: Publish) {
        let Some(c) = self.client_mut(slot) else { return };
        if p.headers.is_some() && !c.flags.headers {
            // nats-server drops a client that sends HPUB without announcing headers.
            return self.close(now, slot, CloseReason::ProtocolViolation, None);
        }
        let pedantic = c.flags.pedantic;
        let account = c.account;
        let size = p.payload.len() + p.headers.as_ref().map_or(0, Bytes::len);
        {
            let mut o = c.outbox.lock();
            if let Some(perms) = o.perms.as_mut() {
                if !perms.can_publish(now, &p.subject) {
                    drop(o);
                    return self.permission_violation(slot, "Publish", &p.subject, None);
                }
            }
            o.counters.in_msgs += 1;
            o.counters.in_bytes += size as u64;
        }
        let m = super::MsgBytes { msgs: 1, bytes: size as u64 };
        self.traffic.add(m, super::MsgBytes::default());
        self.accounts[account].shared.received.add(m);
        if pedantic && !subject::is_valid_literal_subject(&p.subject) {
            // nats-server reports the subject but still routes the message.
            self.send_err(slot, "Invalid Publish Subject");
        }
        self.send_ok(slot);
        self.deliver(now, slot, &p);
    }

    fn on_sub(&mut self, slot: Slot, subject: Bytes, queue: Option<Bytes>, sid: Bytes) {
        let server_max = (self.opts.max_subscriptions > 0).then_some(u64::from(self.opts.max_subscriptions));
        let Some(c) = self.client_mut(slot) else { return };
        let queue_ok = queue.as_deref().is_none_or(subject::is_valid_queue_name);
        if !subject::is_valid_subject(&subject) || !queue_ok {
            return self.send_err(slot, "Invalid Subject");
        }
        let denied = c.has_perms
            && c.outbox.lock().perms.as_ref().is_some_and(|p| !p.can_subscribe(&subject, queue.as_deref()));
        if denied {
            return self.permission_violation(slot, "Subscription", &subject, queue.as_deref());
        }
        if auth::jwt::tighter(server_max, c.subs_max).is_some_and(|max| c.sub_count() as u64 >= max) {
            let line = format!("{} - {} - {}", c.peer, c.cid, super::resolver::claims::SUBS_EXCEEDED);
            self.log(Level::Error, line);
            return self.send_err(slot, super::resolver::claims::SUBS_EXCEEDED);
        }
        let account = c.account;
        let outbox = Arc::clone(&c.outbox);
        // The parsed arguments are slices of the read buffer: kept as they
        // are, each subscription would hold its whole buffer (64 KiB in the
        // tokio runtime) alive for as long as it lives. A second
        // subscription under a taken sid is ignored, as nats-server does.
        let sub = Subscription::new(&subject, queue.as_deref(), &sid);
        let inserted = outbox.lock().subs.insert(sub);
        if let Some(id) = inserted {
            let sref = SubRef { slot, sub: id, outbox };
            self.accounts[account].shared.insert(&subject, queue.as_deref(), sref);
        }
        self.send_ok(slot);
    }

    fn on_unsub(&mut self, now: Instant, slot: Slot, sid: &[u8], max_msgs: Option<u64>) {
        let Some(c) = self.client_mut(slot) else { return };
        let done = {
            let mut o = c.outbox.lock();
            let id = o.subs.by_sid(sid);
            // UNSUB with a max the subscription has not reached yet keeps it
            // until then; otherwise it goes now.
            id.filter(|&id| match (max_msgs, o.subs.get_mut(id)) {
                (Some(max), Some(sub)) if sub.delivered < max => {
                    sub.max_msgs = Some(max);
                    false
                }
                _ => true,
            })
        };
        if let Some(id) = done {
            self.unsubscribe(now, slot, id);
        }
        self.send_ok(slot);
    }

    /// Removes one subscription from its client and from the account's
    /// index; a push consumer delivering to its subject stops if nothing
    /// else subscribes there.
    pub(crate) fn unsubscribe(&mut self, now: Instant, slot: Slot, id: SubId) {
        let Some(c) = self.client_mut(slot) else { return };
        let account = c.account;
        let outbox = Arc::clone(&c.outbox);
        let Some(sub) = outbox.lock().subs.remove(id) else { return };
        let sref = SubRef { slot, sub: id, outbox };
        self.accounts[account].shared.remove(sub.subject(), sub.queue(), &sref);
        self.interest_lost(now, account, sub.subject());
    }
}

/// The op as nats-server traces it: its control line, without the payload.
fn trace_text(op: &ClientOp) -> String {
    let s = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    match op {
        ClientOp::Connect(json) => format!("CONNECT {}", s(json)),
        ClientOp::Pub(p) => {
            let reply = p.reply.as_ref().map(|r| format!(" {}", s(r))).unwrap_or_default();
            match &p.headers {
                Some(h) => format!("HPUB {}{reply} {} {}", s(&p.subject), h.len(), h.len() + p.payload.len()),
                None => format!("PUB {}{reply} {}", s(&p.subject), p.payload.len()),
            }
        }
        ClientOp::Sub { subject, queue, sid } => match queue {
            Some(q) => format!("SUB {} {} {}", s(subject), s(q), s(sid)),
            None => format!("SUB {} {}", s(subject), s(sid)),
        },
        ClientOp::Unsub { sid, max_msgs } => match max_msgs {
            Some(max) => format!("UNSUB {} {max}", s(sid)),
            None => format!("UNSUB {}", s(sid)),
        },
        ClientOp::Ping => "PING".to_owned(),
        ClientOp::Pong => "PONG".to_owned(),
        ClientOp::Ok => "+OK".to_owned(),
        ClientOp::Err(e) => format!("-ERR {}", s(e)),
    }
}
