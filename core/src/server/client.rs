//! Per-connection state: the parser, what CONNECT said, the subscriptions,
//! the outbound buffer and the timers of one client.

use std::sync::Arc;
use core::net::SocketAddr;


use crate::auth::jwt::{AccountLimitClaims, UserLimits};
use crate::server::ConnId;
use crate::slab::Key;
use crate::time::{Instant, UnixNanos};

use super::outbox::Outbox;
use super::subs::Subscription;

/// A client in the server's slab: its position and generation, so a slot
/// kept anywhere (the subscription index, a timer) never reaches a later
/// connection that reuses the position.
pub(crate) type Slot = Key<Client>;

/// One subscription of one client.
pub(crate) type SubId = Key<Subscription>;

/// A subscription as the sublist stores it: which client (generation
/// checked), which of its subscriptions (generation checked), and the
/// client's outbox, so a delivery goes straight there. A reference that
/// outlived its subscription finds no subscription in the outbox; one that
/// outlived its connection finds the outbox closed.
///
/// Compared and ordered by `(slot, sub)` alone: the order of a match result
/// never depends on where an outbox happens to be allocated.
#[derive(Clone, Debug)]
pub(crate) struct SubRef {
    pub slot: Slot,
    pub sub: SubId,
    pub outbox: Arc<Outbox>,
}

impl SubRef {
    fn key(&self) -> (Slot, SubId) {
        (self.slot, self.sub)
    }
}

impl PartialEq for SubRef {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for SubRef {}

impl PartialOrd for SubRef {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SubRef {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// What the client asked for in CONNECT. Before CONNECT, nats-server treats
/// a client as verbose and pedantic; so do we.
#[derive(Clone, Debug)]
pub(crate) struct ClientFlags {
    pub verbose: bool,
    pub pedantic: bool,
    pub echo: bool,
    pub headers: bool,
    pub no_responders: bool,
    /// CONNECT said `protocol >= 1`: the client understands INFO updates.
    pub info_updates: bool,
}

impl Default for ClientFlags {
    fn default() -> Self {
        ClientFlags { verbose: true, pedantic: true, echo: true, headers: false, no_responders: false, info_updates: false }
    }
}

/// Descriptive fields from CONNECT, for monitoring.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientMeta {
    pub name: String,
    pub lang: String,
    pub version: String,
    pub user: Option<String>,
}

/// Message and byte counters, as `/connz` reports them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    pub in_msgs: u64,
    pub in_bytes: u64,
    pub out_msgs: u64,
    pub out_bytes: u64,
}

/// One client connection, as the control plane keeps it. What deliveries
/// touch lives in its [`Outbox`]; its parser lives in its session.
#[derive(Debug)]
pub(crate) struct Client {
    pub cid: ConnId,
    pub peer: SocketAddr,
    pub outbox: Arc<Outbox>,
    /// CONNECT received and accepted.
    pub connected: bool,
    pub flags: ClientFlags,
    pub meta: ClientMeta,
    pub account: usize,
    pub pings_out: u32,
    /// When the connection was accepted.
    pub accepted_at: Instant,
    /// The server has answered the client's first PING.
    pub first_pong_sent: bool,
    /// The early first PING (round-trip measurement) went out.
    pub first_ping_sent: bool,
    /// When the last PING went out; its PONG measures the round trip.
    pub ping_sent_at: Option<Instant>,
    /// Round-trip time: the handshake's, then the last PING/PONG's.
    pub rtt: Option<std::time::Duration>,
    pub auth_deadline: Option<Instant>,
    /// When the user's credentials expire (a user JWT's `exp`).
    pub auth_expires_at: Option<Instant>,
    pub next_ping_at: Instant,
    /// The deadline currently registered in the server's timer set.
    pub armed_deadline: Option<Instant>,
    pub started: UnixNanos,
    /// The nonce sent in INFO for an nkey user to sign.
    pub nonce: Option<String>,
    /// The user has permissions (kept in the outbox, where they are used).
    pub has_perms: bool,
    /// The parser limits the connection's session applies.
    pub parser_limits: crate::protocol::ParserLimits,
    /// A JWT user's public key and `iat`, to apply revocations that arrive later.
    pub jwt_user: Option<(String, i64)>,
    /// A JWT user's own limits and its account's, kept to apply account
    /// claim updates that arrive later.
    pub jwt_limits: Option<Box<JwtLimits>>,
    /// The subscriptions a JWT user may hold (user and account limits
    /// combined); `max_subscriptions` applies besides. `None` is unlimited.
    pub subs_max: Option<u64>,
    /// How the client reached the server.
    pub transport: super::Transport,
    /// The user's permissions as configured (for `$SYS.REQ.USER.INFO`).
    pub permissions: Option<Box<crate::config::Permissions>>,
    /// The accepted CONNECT: a config reload checks its credentials again.
    pub connect: Option<Box<crate::protocol::ConnectInfo>>,
}

/// Where a JWT user's limits come from.
#[derive(Clone, Debug, Default)]
pub(crate) struct JwtLimits {
    /// The user's own (or its scoped signing key's).
    pub user: UserLimits,
    /// Its account's, as of the account's latest claims.
    pub account: AccountLimitClaims,
    /// The user JWT is a bearer token (an account may stop allowing those).
    pub bearer: bool,
}

impl Client {
    pub fn new(
        cid: ConnId,
        peer: SocketAddr,
        outbox: Arc<Outbox>,
        limits: crate::protocol::ParserLimits,
        now: Instant,
        wall: UnixNanos,
    ) -> Self {
        Client {
            cid,
            peer,
            outbox,
            connected: false,
            flags: ClientFlags::default(),
            meta: ClientMeta::default(),
            account: 0,
            pings_out: 0,
            accepted_at: now,
            first_pong_sent: false,
            first_ping_sent: false,
            ping_sent_at: None,
            rtt: None,
            auth_deadline: None,
            auth_expires_at: None,
            next_ping_at: now,
            armed_deadline: None,
            started: wall,
            nonce: None,
            has_perms: false,
            parser_limits: limits,
            jwt_user: None,
            jwt_limits: None,
            subs_max: None,
            transport: super::Transport::Tcp,
            permissions: None,
            connect: None,
        }
    }

    /// Number of live subscriptions (takes the outbox's lock).
    pub fn sub_count(&self) -> usize {
        self.outbox.lock().subs.len()
    }

    /// The earliest instant this client's timers need attention.
    pub fn next_deadline(&self, write_deadline: std::time::Duration) -> Instant {
        let mut at = self.next_ping_at;
        for deadline in [self.auth_deadline, self.auth_expires_at].into_iter().flatten() {
            at = at.min(deadline);
        }
        if let Some(progress) = self.outbox.lock().write_progress_at {
            at = at.min(progress + write_deadline);
        }
        at
    }
}
