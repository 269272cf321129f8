//! The events the server publishes in the system account, with
//! nats-server's subjects and JSON:
//!
//! - `$SYS.ACCOUNT.<acc>.CONNECT` and `.DISCONNECT` for every client
//!   (`io.nats.server.advisory.v1.client_connect` / `client_disconnect`);
//! - `$SYS.SERVER.<id>.CLIENT.AUTH.ERR` when a client fails to authenticate;
//! - `$SYS.ACCOUNT.<acc>.SERVER.CONNS` (and the older
//!   `$SYS.SERVER.ACCOUNT.<acc>.CONNS`) when an account's connection count
//!   changes, and every 30 s while it has clients (not for `$G`);
//! - `$SYS.SERVER.<id>.STATSZ`: the server's statistics, first 250 ms after
//!   start, then at doubling intervals up to every 10 s, and only while
//!   someone subscribes to it (a server with no routes, gateways or leaf
//!   nodes checks for interest, as nats-server does). The timer rests
//!   while the system account has no client, since nobody can listen then.
//!
//! Figures only the process knows (memory, CPU, cores) come from the
//! runtime through [`Control::handle_process_stats`], like the clock.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::protocol::{ConnectInfo, Publish};
use crate::server::monitor::{build, ProcessStats};
use crate::time::{Instant, UnixNanos};

use super::sys_monitor::{event_id, to_json, ServerStamp, SERVER_SLOT};
use super::{CloseReason, Control, Slot};

/// How often an account's connection count is repeated while it has clients.
const CONNS_HEARTBEAT: Duration = Duration::from_secs(30);
/// The first STATSZ after start; the interval then doubles up to [`STATSZ_INTERVAL`].
const STATSZ_FIRST: Duration = Duration::from_millis(250);
/// The steady STATSZ interval.
const STATSZ_INTERVAL: Duration = Duration::from_secs(10);
/// No two STATSZ broadcasts closer than this (nats-server's rate limit).
const STATSZ_RATE_LIMIT: Duration = Duration::from_secs(1);

/// The event timers and the process figures last reported by the runtime.
#[derive(Debug, Default)]
pub(crate) struct SysEvents {
    /// The next STATSZ broadcast, when there is a system account.
    statsz_at: Option<Instant>,
    /// The current STATSZ interval (doubling up to [`STATSZ_INTERVAL`]).
    statsz_every: Duration,
    /// When the last STATSZ broadcast went out.
    statsz_last: Option<Instant>,
    /// Accounts (by index) with clients, and when their count is next repeated.
    conns_at: BTreeMap<usize, Instant>,
    /// Clients connected in the system account: without any, nobody can
    /// listen to STATSZ and its timer rests.
    system_clients: usize,
    /// What the runtime last measured of the process.
    pub(crate) process: ProcessStats,
}

impl SysEvents {
    /// The timers of a server started at `now`, with events on when `on`.
    pub(crate) fn new(now: Instant, on: bool) -> SysEvents {
        SysEvents {
            statsz_at: on.then(|| now + STATSZ_FIRST),
            statsz_every: STATSZ_FIRST,
            ..SysEvents::default()
        }
    }

    /// The earliest event timer.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let conns = self.conns_at.values().min().copied();
        let statsz = self.statsz_at.filter(|_| self.system_clients > 0);
        statsz.into_iter().chain(conns).min()
    }
}

/// nats-server's `ClientInfo`, as the connect and disconnect events carry it.
#[derive(Serialize)]
struct ClientInfo {
    start: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    host: String,
    id: u64,
    acc: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    lang: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    ver: String,
    #[serde(skip_serializing_if = "is_zero")]
    rtt: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    name_tag: String,
    kind: &'static str,
    client_type: &'static str,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct MsgBytes {
    msgs: u64,
    bytes: u64,
}

#[derive(Serialize)]
struct ConnectEvent {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: String,
    server: ServerStamp,
    client: ClientInfo,
}

/// A disconnect event before it is stamped and sent.
pub(super) struct Disconnect {
    client: ClientInfo,
    sent: MsgBytes,
    received: MsgBytes,
    reason: &'static str,
}

#[derive(Serialize)]
struct DisconnectEvent {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: String,
    server: ServerStamp,
    client: ClientInfo,
    /// What the client sent (the server received).
    sent: MsgBytes,
    /// What the client received.
    received: MsgBytes,
    reason: &'static str,
}

/// nats-server's `ServerStats`.
#[derive(Serialize)]
pub(super) struct Statsz {
    start: String,
    mem: u64,
    cores: u32,
    #[serde(serialize_with = "crate::server::monitor::go_float")]
    cpu: f64,
    connections: usize,
    total_connections: u64,
    active_accounts: usize,
    subscriptions: u64,
    sent: MsgBytes,
    sent_to_clients: MsgBytes,
    received: MsgBytes,
    received_from_clients: MsgBytes,
    slow_consumers: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    slow_consumer_stats: Option<KindCounts>,
    #[serde(skip_serializing_if = "is_zero")]
    stale_connections: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    stale_connection_stats: Option<KindCounts>,
    #[serde(skip_serializing_if = "is_zero")]
    stalled_clients: u64,
    active_servers: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    jetstream: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "is_zero")]
    gomemlimit: u64,
    gomaxprocs: u32,
}

#[derive(Serialize)]
struct KindCounts {
    clients: u64,
    routes: u64,
    gateways: u64,
    leafs: u64,
}

impl KindCounts {
    fn clients(n: u64) -> Option<KindCounts> {
        (n > 0).then_some(KindCounts { clients: n, routes: 0, gateways: 0, leafs: 0 })
    }
}

/// `{"server":…,"statsz":…}`: the STATSZ event and the PING reply.
#[derive(Serialize)]
pub(super) struct StatszMsg {
    pub(super) server: ServerStamp,
    pub(super) statsz: Statsz,
}

impl Control {
    /// The runtime's latest figures about the process (resident memory,
    /// CPU, cores), for STATSZ, VARZ and the memory limit.
    pub fn handle_process_stats(&mut self, now: Instant, stats: ProcessStats) {
        self.events.process = stats;
        self.memory_sampled(now);
    }

    /// The system account's index, when the server has one.
    pub(super) fn system_index(&self) -> Option<usize> {
        let name = self.system_account_name()?;
        self.accounts.iter().position(|a| a.name == name)
    }

    /// Publishes `body` on `subject` in the system account.
    fn publish_event(&mut self, now: Instant, subject: String, body: Bytes) {
        let Some(system) = self.system_index() else { return };
        let p = Publish { subject: Bytes::from(subject), reply: None, headers: None, payload: body };
        self.deliver_in(now, SERVER_SLOT, system, &p);
    }

    /// True when a client of the system account listens on `subject`.
    fn has_listener(&mut self, subject: &str) -> bool {
        let Some(system) = self.system_index() else { return false };
        let result = self.match_in(system, subject.as_bytes());
        !result.plain.is_empty() || !result.queues.is_empty()
    }

    fn event_client_info(&self, slot: Slot, stop: Option<UnixNanos>) -> Option<ClientInfo> {
        let c = self.client(slot)?;
        let acc = self.accounts.get(c.account)?.name.clone();
        let user = match (&c.jwt_user, &c.meta.user) {
            (Some((key, _)), _) => key.clone(),
            (None, user) => user.clone().unwrap_or_default(),
        };
        Some(ClientInfo {
            start: c.started.to_rfc3339(),
            host: c.peer.ip().to_string(),
            id: c.cid.0,
            name_tag: build::name_tag(self, &acc),
            acc,
            user,
            name: c.meta.name.clone(),
            lang: c.meta.lang.clone(),
            ver: c.meta.version.clone(),
            rtt: c.rtt.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            stop: stop.map(UnixNanos::to_rfc3339),
            kind: "Client",
            client_type: c.transport.conn_type(),
        })
    }

    /// A client authenticated into `account`, coming from `previous` if it
    /// was connected in another account: the accounts' new counts, then
    /// the connect event.
    pub(super) fn client_connected_event(&mut self, now: Instant, slot: Slot, previous: Option<usize>) {
        let Some(system) = self.system_index() else { return };
        let Some(account) = self.client(slot).map(|c| c.account) else { return };
        if previous == Some(system) && account != system {
            self.events.system_clients = self.events.system_clients.saturating_sub(1);
        } else if previous != Some(system) && account == system {
            self.events.system_clients += 1;
        }
        if previous != Some(account) {
            if let Some(old) = previous {
                self.account_conns_event(now, old);
            }
            self.account_conns_event(now, account);
        }
        let Some(mut client) = self.event_client_info(slot, None) else { return };
        // nats-server's connect event carries no round trip yet.
        client.rtt = 0;
        let wall = self.wall_at(now);
        let subject = format!("$SYS.ACCOUNT.{}.CONNECT", client.acc);
        let event = ConnectEvent {
            kind: "io.nats.server.advisory.v1.client_connect",
            id: event_id(&mut self.rng),
            timestamp: wall.to_rfc3339(),
            server: self.stamp(now),
            client,
        };
        self.publish_event(now, subject, to_json(&event));
    }

    /// What the disconnect event says of the client in `slot`, taken while
    /// it is still known; published by [`Control::client_gone_events`].
    pub(super) fn disconnect_event(&mut self, now: Instant, slot: Slot, reason: CloseReason) -> Option<Disconnect> {
        self.system_index()?;
        let client = self.event_client_info(slot, Some(self.wall_at(now)))?;
        let counters = self.client(slot)?.outbox.lock().counters;
        Some(Disconnect {
            client,
            sent: MsgBytes { msgs: counters.in_msgs, bytes: counters.in_bytes },
            received: MsgBytes { msgs: counters.out_msgs, bytes: counters.out_bytes },
            reason: reason.as_str(),
        })
    }

    fn disconnect_body(&mut self, now: Instant, d: Disconnect) -> (String, Bytes) {
        let subject = format!("$SYS.ACCOUNT.{}.DISCONNECT", d.client.acc);
        let event = DisconnectEvent {
            kind: "io.nats.server.advisory.v1.client_disconnect",
            id: event_id(&mut self.rng),
            timestamp: self.wall_at(now).to_rfc3339(),
            server: self.stamp(now),
            client: d.client,
            sent: d.sent,
            received: d.received,
            reason: d.reason,
        };
        (subject, to_json(&event))
    }

    /// After a client is gone: its account's new count (if it had
    /// authenticated), then its disconnect event.
    pub(super) fn client_gone_events(&mut self, now: Instant, account: Option<usize>, disconnect: Option<Disconnect>) {
        if account.is_some() && account == self.system_index() {
            self.events.system_clients = self.events.system_clients.saturating_sub(1);
        }
        if let Some(account) = account {
            self.account_conns_event(now, account);
        }
        if let Some(d) = disconnect {
            let (subject, body) = self.disconnect_body(now, d);
            self.publish_event(now, subject, body);
        }
    }

    /// A CONNECT whose credentials were refused: the server-level auth
    /// error event, with what the CONNECT said about the client.
    pub(super) fn auth_error_event(&mut self, now: Instant, slot: Slot, info: &ConnectInfo) {
        if self.system_index().is_none() {
            return;
        }
        if let Some(c) = self.client_mut(slot) {
            c.meta.name = info.name.clone().unwrap_or_default();
            c.meta.lang = info.lang.clone().unwrap_or_default();
            c.meta.version = info.version.clone().unwrap_or_default();
            c.meta.user = info.nkey.clone().or_else(|| info.user.clone());
            c.rtt = Some(now.saturating_duration_since(c.accepted_at).max(Duration::from_nanos(1)));
        }
        let Some(d) = self.disconnect_event(now, slot, CloseReason::AuthenticationViolation) else { return };
        let (_, body) = self.disconnect_body(now, d);
        let subject = format!("$SYS.SERVER.{}.CLIENT.AUTH.ERR", self.server_id);
        self.publish_event(now, subject, body);
    }

    /// `CONNS` of the account at `index` on both of nats-server's subjects
    /// (none for `$G`), and its heartbeat set or cleared.
    fn account_conns_event(&mut self, now: Instant, index: usize) {
        if index == 0 || self.system_index().is_none() {
            return;
        }
        let Some(name) = self.accounts.get(index).map(|a| a.name.clone()) else { return };
        let Some(stat) = self.account_stats().into_iter().nth(index) else { return };
        if stat.total_conns == 0 {
            self.events.conns_at.remove(&index);
        } else {
            self.events.conns_at.insert(index, now + CONNS_HEARTBEAT);
        }
        let body = self.conns_body(now, stat);
        self.publish_event(now, format!("$SYS.SERVER.ACCOUNT.{name}.CONNS"), body.clone());
        self.publish_event(now, format!("$SYS.ACCOUNT.{name}.SERVER.CONNS"), body);
    }

    /// The statistics STATSZ carries.
    pub(super) fn statsz(&self) -> Statsz {
        let counters = self.counters();
        let process = self.events.process;
        let stats = self.account_stats();
        let jetstream = self.jetstream.is_some().then(|| crate::server::monitor::jsz_varz(self));
        Statsz {
            start: self.started_wall.to_rfc3339(),
            mem: process.rss_bytes,
            cores: process.cores,
            cpu: process.cpu_percent,
            connections: self.num_clients(),
            total_connections: counters.total_connections,
            active_accounts: stats.iter().filter(|s| s.conns > 0).count(),
            subscriptions: stats.iter().map(|s| s.num_subscriptions).sum(),
            sent: MsgBytes { msgs: counters.out_msgs, bytes: counters.out_bytes },
            sent_to_clients: MsgBytes { msgs: counters.out_msgs, bytes: counters.out_bytes },
            received: MsgBytes { msgs: counters.in_msgs, bytes: counters.in_bytes },
            received_from_clients: MsgBytes { msgs: counters.in_msgs, bytes: counters.in_bytes },
            slow_consumers: counters.slow_consumers,
            slow_consumer_stats: KindCounts::clients(counters.slow_consumers),
            stale_connections: counters.stale_connections,
            stale_connection_stats: KindCounts::clients(counters.stale_connections),
            stalled_clients: counters.stalled_clients,
            active_servers: 1,
            jetstream,
            gomemlimit: self.memory_limit_bytes().unwrap_or(0),
            gomaxprocs: process.cores,
        }
    }

    /// The STATSZ message, stamped with the next sequence number.
    pub(super) fn statsz_msg(&mut self, now: Instant) -> Bytes {
        let statsz = self.statsz();
        to_json(&StatszMsg { server: self.stamp(now), statsz })
    }

    /// Broadcasts STATSZ now if anyone listens and the rate limit allows.
    pub(super) fn broadcast_statsz(&mut self, now: Instant) {
        let every = STATSZ_RATE_LIMIT.min(self.events.statsz_every);
        if self.events.statsz_last.is_some_and(|last| now.saturating_duration_since(last) < every) {
            return;
        }
        let subject = format!("$SYS.SERVER.{}.STATSZ", self.server_id);
        if !self.has_listener(&subject) {
            return;
        }
        self.events.statsz_last = Some(now);
        let body = self.statsz_msg(now);
        self.publish_event(now, subject, body);
    }

    /// A `$SYS.REQ.SERVER.PING` without a reply subject: broadcast at once,
    /// whatever the rate limit.
    pub(super) fn statsz_now(&mut self, now: Instant) {
        self.events.statsz_last = None;
        self.broadcast_statsz(now);
    }

    /// Runs the event timers due at `now`.
    pub(super) fn events_timeout(&mut self, now: Instant) {
        if self.events.system_clients > 0 && self.events.statsz_at.is_some_and(|at| at <= now) {
            let every = (self.events.statsz_every * 2).min(STATSZ_INTERVAL);
            self.events.statsz_every = every;
            self.events.statsz_at = Some(now + every);
            self.broadcast_statsz(now);
        }
        let due: Vec<usize> = self.events.conns_at.iter().filter(|(_, &at)| at <= now).map(|(&i, _)| i).collect();
        for index in due {
            self.account_conns_event(now, index);
        }
    }
}
