//! `/connz`: open (and recently closed) client connections, with paging,
//! sorting and optional subscription lists.

use std::time::Duration;

use serde::Serialize;

use crate::server::{Client, Control};
use crate::time::{Instant, UnixNanos};

use super::{duration, Query, QueryError};

/// nats-server's default and largest page.
const DEFAULT_LIMIT: u64 = 1024;

/// The `/connz` document.
#[derive(Clone, Debug, Serialize)]
pub struct Connz {
    /// Server id.
    pub server_id: String,
    /// Snapshot time.
    pub now: String,
    /// Connections in this page.
    pub num_connections: usize,
    /// Connections in the selected state.
    pub total: usize,
    /// Page offset.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
    /// The page.
    pub connections: Vec<ConnInfo>,
}

/// One connection, as `/connz` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ConnInfo {
    /// Connection id.
    pub cid: u64,
    /// Always `Client` here.
    pub kind: &'static str,
    /// `nats` for the client protocol over TCP, `websocket` over WebSocket.
    #[serde(rename = "type")]
    pub conn_type: &'static str,
    /// Peer IP.
    pub ip: String,
    /// Peer port.
    pub port: u16,
    /// Connect time.
    pub start: String,
    /// Last activity.
    pub last_activity: String,
    /// Close time (closed connections only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    /// Close reason (closed connections only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Round-trip time.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rtt: String,
    /// Time connected.
    pub uptime: String,
    /// Time since last activity.
    pub idle: String,
    /// Outbound bytes not yet written.
    pub pending_bytes: u64,
    /// Messages received from the client.
    pub in_msgs: u64,
    /// Messages sent to the client.
    pub out_msgs: u64,
    /// Bytes received from the client.
    pub in_bytes: u64,
    /// Bytes sent to the client.
    pub out_bytes: u64,
    /// Subscriptions.
    pub subscriptions: usize,
    /// Client name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Client language.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub lang: String,
    /// Client version.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Authenticated user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorized_user: Option<String>,
    /// Account (shown when not the global account).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `subs=1`: subjects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions_list: Option<Vec<String>>,
    /// `subs=detail`: subscriptions in detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions_list_detail: Option<Vec<SubDetail>>,
    #[serde(skip)]
    idle_for: Duration,
    #[serde(skip)]
    uptime_for: Duration,
    #[serde(skip)]
    start_nanos: i64,
    #[serde(skip)]
    last_nanos: i64,
}

/// One subscription in `subs=detail`.
#[derive(Clone, Debug, Serialize)]
pub struct SubDetail {
    /// Account (shown in `/subsz`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The account's human name (shown in `/subsz`): a JWT account's `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_tag: Option<String>,
    /// Subject.
    pub subject: String,
    /// Queue group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qgroup: Option<String>,
    /// Subscription id.
    pub sid: String,
    /// Messages delivered.
    pub msgs: u64,
    /// Auto-unsubscribe limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u64>,
    /// Connection id.
    pub cid: u64,
}

impl SubDetail {
    /// A subscription of client `cid`, with its account when listed across accounts.
    pub(crate) fn of(sub: &crate::server::Subscription, cid: u64, account: Option<String>) -> Self {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        SubDetail {
            account_tag: account.clone(),
            account,
            subject: s(sub.subject()),
            qgroup: sub.queue().map(s),
            sid: s(sub.sid()),
            msgs: sub.delivered,
            max: sub.max_msgs,
            cid,
        }
    }
}

/// `offset` and `limit` of a paged listing; a zero or absent limit is nats-server's 1024.
pub(crate) fn paging(q: &Query) -> Result<(u64, u64), QueryError> {
    let offset = q.number("offset", 0)?;
    let limit = match q.number("limit", DEFAULT_LIMIT)? {
        0 => DEFAULT_LIMIT,
        n => n,
    };
    Ok((offset, limit))
}

/// Which subscription list to include.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SubsMode {
    None,
    Subjects,
    Detail,
}

/// A snapshot of one client.
pub(crate) fn conn_info(server: &Control, c: &Client, now: Instant, subs: SubsMode) -> ConnInfo {
    let wall_now = server.wall_at(now);
    let start = c.started;
    // One look at the outbox: its figures are consistent with each other
    // while deliveries go on.
    let o = c.outbox.lock();
    let last = o.last_activity;
    let live = || o.subs.iter().map(|(_, s)| s);
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let account = &server.accounts()[c.account].name;
    ConnInfo {
        cid: c.cid.0,
        kind: "Client",
        conn_type: c.transport.conn_type(),
        ip: c.peer.ip().to_string(),
        port: c.peer.port(),
        start: start.to_rfc3339(),
        last_activity: last.to_rfc3339(),
        stop: None,
        reason: None,
        rtt: c.rtt.map(duration::go_duration).unwrap_or_default(),
        uptime: duration::uptime(nanos_between(start, wall_now)),
        idle: duration::uptime(nanos_between(last, wall_now)),
        pending_bytes: o.unread_bytes(),
        in_msgs: o.counters.in_msgs,
        out_msgs: o.counters.out_msgs,
        in_bytes: o.counters.in_bytes,
        out_bytes: o.counters.out_bytes,
        subscriptions: o.subs.len(),
        name: c.meta.name.clone(),
        lang: c.meta.lang.clone(),
        version: c.meta.version.clone(),
        // A JWT user shows as its public key, as in nats-server.
        authorized_user: c.jwt_user.as_ref().map(|(key, _)| key.clone()).or_else(|| c.meta.user.clone()),
        account: (account != "$G").then(|| account.clone()),
        subscriptions_list: (subs == SubsMode::Subjects).then(|| live().map(|x| s(x.subject())).collect()),
        subscriptions_list_detail: (subs == SubsMode::Detail)
            .then(|| live().map(|x| SubDetail::of(x, c.cid.0, None)).collect()),
        idle_for: nanos_between(last, wall_now),
        uptime_for: nanos_between(start, wall_now),
        start_nanos: start.0,
        last_nanos: last.0,
    }
}

impl ConnInfo {
    /// Marks the snapshot as a closed connection.
    pub(crate) fn closed(mut self, stop: UnixNanos, reason: &str) -> Self {
        self.stop = Some(stop.to_rfc3339());
        self.reason = Some(reason.to_owned());
        self
    }
}

fn nanos_between(earlier: UnixNanos, later: UnixNanos) -> Duration {
    Duration::from_nanos(u64::try_from(later.0.saturating_sub(earlier.0)).unwrap_or(0))
}

pub(crate) fn build(server: &Control, now: Instant, wall: UnixNanos, q: &Query) -> Result<Connz, QueryError> {
    let (offset, limit) = paging(q)?;
    let subs = match q.get("subs") {
        Some("detail") => SubsMode::Detail,
        _ if q.flag("subs") => SubsMode::Subjects,
        _ => SubsMode::None,
    };
    let mut conns: Vec<ConnInfo> = match q.get("state").unwrap_or("open") {
        "open" => server.clients_by_cid().map(|c| conn_info(server, c, now, subs)).collect(),
        "closed" => server.closed_connections().cloned().collect(),
        "any" | "all" => server
            .clients_by_cid()
            .map(|c| conn_info(server, c, now, subs))
            .chain(server.closed_connections().cloned())
            .collect(),
        other => return Err(QueryError::BadValue { key: "state".into(), value: other.into() }),
    };
    // `acc=NAME`: one account's connections (the global account shows as no account).
    if let Some(acc) = q.get("acc").filter(|a| !a.is_empty()) {
        conns.retain(|c| c.account.as_deref().unwrap_or("$G") == acc);
    }
    // Who is connected, and as which account, shows only with `auth`.
    if !q.flag("auth") {
        for c in &mut conns {
            (c.authorized_user, c.account) = (None, None);
        }
    }
    sort(&mut conns, q.get("sort").unwrap_or("cid"))?;
    let total = conns.len();
    let page: Vec<ConnInfo> = conns.into_iter().skip(offset as usize).take(limit as usize).collect();
    Ok(Connz {
        server_id: server.server_id().to_owned(),
        now: wall.to_rfc3339(),
        num_connections: page.len(),
        total,
        offset,
        limit,
        connections: page,
    })
}

/// nats-server's sort options: `cid` ascending, the others descending.
fn sort(conns: &mut [ConnInfo], by: &str) -> Result<(), QueryError> {
    match by {
        "" | "cid" => conns.sort_by_key(|c| c.cid),
        "start" => conns.sort_by_key(|c| c.start_nanos),
        "subs" => conns.sort_by_key(|c| std::cmp::Reverse(c.subscriptions)),
        "pending" => conns.sort_by_key(|c| std::cmp::Reverse(c.pending_bytes)),
        "msgs_to" => conns.sort_by_key(|c| std::cmp::Reverse(c.out_msgs)),
        "msgs_from" => conns.sort_by_key(|c| std::cmp::Reverse(c.in_msgs)),
        "bytes_to" => conns.sort_by_key(|c| std::cmp::Reverse(c.out_bytes)),
        "bytes_from" => conns.sort_by_key(|c| std::cmp::Reverse(c.in_bytes)),
        "last" => conns.sort_by_key(|c| std::cmp::Reverse(c.last_nanos)),
        "idle" => conns.sort_by_key(|c| std::cmp::Reverse(c.idle_for)),
        "uptime" => conns.sort_by_key(|c| std::cmp::Reverse(c.uptime_for)),
        "stop" => conns.sort_by(|a, b| b.stop.cmp(&a.stop)),
        "reason" => conns.sort_by(|a, b| a.reason.cmp(&b.reason)),
        other => return Err(QueryError::BadValue { key: "sort".into(), value: other.into() }),
    }
    Ok(())
}
