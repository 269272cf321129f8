//! Per-connection state: the parser, what CONNECT said, the subscriptions,
//! the outbound buffer and the timers of one client.

use std::collections::BTreeMap;
use core::net::SocketAddr;

use bytes::{Bytes, BytesMut};

use crate::auth::jwt::{AccountLimitClaims, UserLimits};
use crate::auth::ClientPermissions;
use crate::protocol::{ConnectInfo, Parser, ParserLimits};
use crate::server::ConnId;
use crate::slab::{Key, Slab};
use crate::time::{Instant, UnixNanos};

/// A client in the server's slab: its position and generation, so a slot
/// kept anywhere (the subscription index, a timer) never reaches a later
/// connection that reuses the position.
pub(crate) type Slot = Key<Client>;

/// One subscription of one client.
pub(crate) type SubId = Key<Subscription>;

/// A subscription as the sublist stores it: which client (generation
/// checked), which of its subscriptions (generation checked). A reference
/// that outlived its subscription or its connection resolves to nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SubRef {
    pub slot: Slot,
    pub sub: SubId,
}

/// One subscription of a client.
#[derive(Debug)]
pub(crate) struct Subscription {
    pub subject: Bytes,
    pub queue: Option<Bytes>,
    pub sid: Bytes,
    /// Auto-unsubscribe once `delivered` reaches this.
    pub max_msgs: Option<u64>,
    pub delivered: u64,
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

/// One client connection.
#[derive(Debug)]
pub(crate) struct Client {
    pub cid: ConnId,
    pub peer: SocketAddr,
    pub parser: Parser,
    /// CONNECT received and accepted.
    pub connected: bool,
    pub flags: ClientFlags,
    pub meta: ClientMeta,
    pub account: usize,
    pub subs: Slab<Subscription>,
    pub sids: BTreeMap<Bytes, SubId>,
    /// What the last accepted CONNECT said: a later CONNECT is read over it,
    /// as nats-server decodes each CONNECT into the options it already has.
    pub connect: Option<Box<ConnectInfo>>,
    /// Bytes produced by the core and not yet handed to the runtime.
    pub outbound: BytesMut,
    /// Queued in [`Server`](super::Server)'s dirty list.
    pub dirty: bool,
    /// Bytes handed to the runtime and not yet reported written.
    pub pending_bytes: u64,
    /// When the runtime last made write progress while bytes were pending.
    pub write_progress_at: Option<Instant>,
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
    pub last_in_at: Instant,
    pub auth_deadline: Option<Instant>,
    /// When the user's credentials expire (a user JWT's `exp`).
    pub auth_expires_at: Option<Instant>,
    pub next_ping_at: Instant,
    /// The deadline currently registered in the server's timer set.
    pub armed_deadline: Option<Instant>,
    pub counters: Counters,
    pub started: UnixNanos,
    pub last_activity: UnixNanos,
    /// The nonce sent in INFO for an nkey user to sign.
    pub nonce: Option<String>,
    /// The user's permissions; `None` allows everything.
    pub perms: Option<Box<ClientPermissions>>,
    /// A JWT user's public key and `iat`, to apply revocations that arrive later.
    pub jwt_user: Option<(String, i64)>,
    /// A JWT user's own limits and its account's, kept to apply account
    /// claim updates that arrive later.
    pub jwt_limits: Option<Box<JwtLimits>>,
    /// The subscriptions a JWT user may hold (user and account limits
    /// combined); `max_subscriptions` applies besides. `None` is unlimited.
    pub subs_max: Option<u64>,
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
    pub fn new(cid: ConnId, peer: SocketAddr, limits: ParserLimits, now: Instant, wall: UnixNanos) -> Self {
        Client {
            cid,
            peer,
            parser: Parser::new(limits),
            connected: false,
            flags: ClientFlags::default(),
            meta: ClientMeta::default(),
            account: 0,
            subs: Slab::default(),
            sids: BTreeMap::new(),
            connect: None,
            outbound: BytesMut::new(),
            dirty: false,
            pending_bytes: 0,
            write_progress_at: None,
            pings_out: 0,
            accepted_at: now,
            first_pong_sent: false,
            first_ping_sent: false,
            ping_sent_at: None,
            rtt: None,
            last_in_at: now,
            auth_deadline: None,
            auth_expires_at: None,
            next_ping_at: now,
            armed_deadline: None,
            counters: Counters::default(),
            started: wall,
            last_activity: wall,
            nonce: None,
            perms: None,
            jwt_user: None,
            jwt_limits: None,
            subs_max: None,
        }
    }

    /// Adds a subscription; returns its id, or None if the sid is taken
    /// (nats-server keeps the first and ignores the duplicate).
    pub fn add_sub(&mut self, sub: Subscription) -> Option<SubId> {
        if self.sids.contains_key(&sub.sid) {
            return None;
        }
        let sid = sub.sid.clone();
        let id = self.subs.insert(sub);
        self.sids.insert(sid, id);
        Some(id)
    }

    /// Removes a subscription.
    pub fn remove_sub(&mut self, id: SubId) -> Option<Subscription> {
        let sub = self.subs.remove(id)?;
        let removed = self.sids.remove(&sub.sid);
        debug_assert_eq!(removed, Some(id), "a subscription's sid names another");
        Some(sub)
    }

    /// Number of live subscriptions.
    pub fn sub_count(&self) -> usize {
        debug_assert_eq!(self.subs.len(), self.sids.len(), "every subscription has one sid");
        self.subs.len()
    }

    /// The earliest instant this client's timers need attention.
    pub fn next_deadline(&self, write_deadline: std::time::Duration) -> Instant {
        let mut at = self.next_ping_at;
        for deadline in [self.auth_deadline, self.auth_expires_at].into_iter().flatten() {
            at = at.min(deadline);
        }
        if let Some(progress) = self.write_progress_at {
            at = at.min(progress + write_deadline);
        }
        at
    }
}
