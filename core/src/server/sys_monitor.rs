//! Monitoring over NATS: the `$SYS.REQ.SERVER.…`, `$SYS.REQ.ACCOUNT.…` and
//! `$SYS.REQ.USER.INFO` requests that nats-server answers wherever a system
//! account exists (config accounts, with or without `system_account`, and
//! operator mode). Published in the system account they reach every
//! account; published in another account only that account's own `CONNZ`,
//! `STATZ` and user info answer, as nats-server's automatic imports from
//! the system account allow. Bodies come from the monitor module's
//! builders, wrapped as nats-server wraps them:
//! `{"server":{…},"data":{…}}`, or `{"server":{…},"error":{"code":…,"description":…}}`.

use bytes::Bytes;
use rand_core::RngCore;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::auth::Trust;
use crate::config::Resolver;
use crate::monitor::{build, AccountInfo, Accountz, Accstatz, Connz, Query, Subsz};
use crate::protocol::Publish;
use crate::subject::is_valid_literal_subject;
use crate::time::{Instant, UnixNanos};

use super::imports::SYSTEM_ACCOUNT;
use super::{AccountStats, Server, Slot, VERSION};

/// Stands for the server as the publisher of its replies: no client holds
/// it, so a requester with `echo: false` still gets its answer.
pub(super) const SERVER_SLOT: Slot = Slot::MAX;

/// `$SYS.REQ.SERVER.{PING|<id>}.<kind>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ServerKind {
    Connz,
    Subsz,
    Accountz,
    Healthz,
    Idz,
}

/// `$SYS.REQ.ACCOUNT.<account>.<kind>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AccountKind {
    Connz,
    Subsz,
    Statz,
    Info,
    Conns,
}

/// A monitoring request the server answers.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Request {
    Server(ServerKind),
    Account(String, AccountKind),
    /// `$SYS.REQ.ACCOUNT.PING.STATZ` in the system account: every account.
    PingStatz,
    /// `$SYS.REQ.USER.INFO`: who the requester is.
    UserInfo,
}

/// What a builder made of a request.
enum Answer<T> {
    Data(T),
    /// A 500 error reply with `"data": null`, as nats-server sends.
    Failed(String),
    /// No reply at all (nothing to report, as nats-server does).
    Skip,
}

/// Which subject this is, for a requester in `own` (`in_system` when that
/// is the system account).
fn parse(subject: &str, own: &str, in_system: bool, server_id: &str) -> Option<Request> {
    let t: Vec<&str> = subject.split('.').collect();
    let request = match t.as_slice() {
        ["$SYS", "REQ", "USER", "INFO"] => Request::UserInfo,
        ["$SYS", "REQ", "ACCOUNT" | "SERVER", "PING", "CONNZ"] if !in_system => {
            Request::Account(own.to_owned(), AccountKind::Connz)
        }
        ["$SYS", "REQ", "ACCOUNT", "PING", "STATZ"] if !in_system => {
            Request::Account(own.to_owned(), AccountKind::Statz)
        }
        _ if !in_system => return None,
        ["$SYS", "REQ", "USER", _, "INFO"] => Request::UserInfo,
        ["$SYS", "REQ", "SERVER", who, kind] if *who == "PING" || *who == server_id => {
            Request::Server(server_kind(kind)?)
        }
        ["$SYS", "REQ", "ACCOUNT", "PING", "STATZ"] => Request::PingStatz,
        ["$SYS", "REQ", "ACCOUNT", acc, kind] => {
            Request::Account((*acc).to_owned(), account_kind(kind)?)
        }
        _ => return None,
    };
    Some(request)
}

fn server_kind(kind: &str) -> Option<ServerKind> {
    Some(match kind {
        "CONNZ" => ServerKind::Connz,
        "SUBSZ" => ServerKind::Subsz,
        "ACCOUNTZ" => ServerKind::Accountz,
        "HEALTHZ" => ServerKind::Healthz,
        "IDZ" => ServerKind::Idz,
        _ => return None,
    })
}

fn account_kind(kind: &str) -> Option<AccountKind> {
    Some(match kind {
        "CONNZ" => AccountKind::Connz,
        "SUBSZ" => AccountKind::Subsz,
        "STATZ" => AccountKind::Statz,
        "INFO" => AccountKind::Info,
        "CONNS" => AccountKind::Conns,
        _ => return None,
    })
}

/// The filters every request may carry: a server answers only if it matches.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct EventFilter {
    server_name: String,
    cluster: String,
    host: String,
    exact_match: bool,
    tags: Vec<String>,
    domain: String,
}

/// Request options that carry the filters.
trait Filtered {
    fn filter(&self) -> &EventFilter;
}

macro_rules! filtered {
    ($($t:ty),*) => {$(impl Filtered for $t { fn filter(&self) -> &EventFilter { &self.filter } })*};
}
filtered!(
    ConnzOptions,
    SubszOptions,
    AccountzOptions,
    StatzOptions,
    PlainOptions
);

/// `CONNZ` options (nats-server's `ConnzOptions` JSON).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct ConnzOptions {
    #[serde(flatten)]
    filter: EventFilter,
    sort: String,
    /// Show each connection's user and account.
    auth: bool,
    subscriptions: bool,
    subscriptions_detail: bool,
    offset: i64,
    limit: i64,
    /// 0 open, 1 closed, 2 any.
    state: i64,
    acc: String,
}

/// `SUBSZ` options.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct SubszOptions {
    #[serde(flatten)]
    filter: EventFilter,
    offset: i64,
    limit: i64,
    subscriptions: bool,
    account: String,
    test: String,
}

/// `ACCOUNTZ` options.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct AccountzOptions {
    #[serde(flatten)]
    filter: EventFilter,
    account: String,
}

/// `STATZ` options.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct StatzOptions {
    #[serde(flatten)]
    filter: EventFilter,
    accounts: Vec<String>,
    include_unused: bool,
}

/// Requests whose only options are the filters.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
struct PlainOptions {
    #[serde(flatten)]
    filter: EventFilter,
}

/// The `server` object of every system reply.
#[derive(Clone, Debug, Serialize)]
struct ServerStamp {
    name: String,
    host: String,
    id: String,
    ver: &'static str,
    jetstream: bool,
    flags: u64,
    seq: u64,
    time: String,
}

/// nats-server's `ServerAPIResponse`. `data` is `Some(None)` for the
/// `"data": null` nats-server sends beside a builder's error; the claims
/// requests send errors of their own shape (`E`).
#[derive(Serialize)]
struct ApiResponse<T, E = ApiError> {
    server: ServerStamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Option<T>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<E>,
}

#[derive(Serialize)]
struct ApiError {
    code: u16,
    description: String,
}

/// `CONNZ` of an account the server does not know: nats-server answers an
/// empty document without its id.
#[derive(Serialize)]
struct BlankConnz {
    server_id: &'static str,
    now: String,
    num_connections: u32,
    total: u32,
    offset: u64,
    limit: u64,
    connections: Option<()>,
}

impl BlankConnz {
    fn new(wall: UnixNanos, o: &ConnzOptions) -> BlankConnz {
        BlankConnz {
            server_id: "",
            now: wall.to_rfc3339(),
            num_connections: 0,
            total: 0,
            offset: u64::try_from(o.offset).unwrap_or(0),
            limit: u64::try_from(o.limit)
                .ok()
                .filter(|&l| l > 0)
                .unwrap_or(1024),
            connections: None,
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum ConnzReply {
    Known(Connz),
    Unknown(BlankConnz),
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    status_code: u16,
}

/// `IDZ`: sent bare, without the envelope.
#[derive(Serialize)]
struct ServerId<'a> {
    name: &'a str,
    host: &'a str,
    id: &'a str,
}

/// `CONNS`: nats-server's account connections event.
#[derive(Serialize)]
struct AccountConns {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    timestamp: String,
    server: ServerStamp,
    #[serde(flatten)]
    stat: AccountStats,
}

/// `USER.INFO`: the requester's identity.
#[derive(Serialize)]
struct UserInfo {
    user: String,
    account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    account_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    user_name: String,
    /// Nanoseconds until the user's credentials expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<u64>,
}

/// Options decoded as nats-server decodes them: an empty body (or `null`)
/// leaves the defaults.
fn decode<O: DeserializeOwned + Default>(payload: &[u8]) -> Result<O, serde_json::Error> {
    if payload.is_empty() || payload == b"null" {
        return Ok(O::default());
    }
    serde_json::from_slice(payload)
}

fn to_bytes(value: &impl Serialize) -> Bytes {
    // Plain structs with string keys: serializing cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// A query string from option values, each percent-encoded; empty values are left out.
fn query(pairs: &[(&str, String)]) -> Result<Query, String> {
    let raw: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    Query::parse(&raw.join("&")).map_err(|e| e.to_string())
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Go's `offset` and `limit`: negatives mean the defaults.
fn positive(n: i64) -> String {
    if n > 0 {
        n.to_string()
    } else {
        String::new()
    }
}

impl Server {
    /// The system account's name: `system_account`, else the one the
    /// operator JWT names, else `$SYS`; none with `no_system_account`.
    pub(crate) fn system_account_name(&self) -> Option<&str> {
        if self.opts.no_system_account {
            return None;
        }
        let configured = self.opts.system_account.as_deref();
        Some(
            configured
                .or(self.trust.as_ref().and_then(Trust::system_account))
                .unwrap_or(SYSTEM_ACCOUNT),
        )
    }

    /// The trusted operators and account JWTs, in operator mode.
    pub(crate) fn trust(&self) -> Option<&Trust> {
        self.trust.as_ref()
    }

    /// True when the server answers `$SYS.REQ.…` in every account: whenever
    /// there is a system account, as in nats-server.
    pub(super) fn system_services_on(&self) -> bool {
        !self.opts.no_system_account
    }

    /// Turns on the monitoring requests in every account made at start-up.
    pub(super) fn enable_system_services(&mut self) {
        let on = self.system_services_on();
        for account in &mut self.accounts {
            account.system_services |= on;
        }
    }

    /// Claim updates and lookups are taken only in the system account, and
    /// only under the NATS resolver.
    pub(super) fn answers_claims(&self, account: usize) -> bool {
        matches!(self.opts.resolver, Some(Resolver::Nats { .. }))
            && self.accounts.get(account).map(|a| a.name.as_str()) == self.system_account_name()
    }

    /// Answers a monitoring request published in `account` by the client in
    /// `from`. Returns 1 when the server listens on the subject (whether or
    /// not it replies), so the request does not get a no-responders status.
    pub(super) fn monitor_request(
        &mut self,
        now: Instant,
        from: Slot,
        account: usize,
        p: &Publish,
    ) -> usize {
        let Ok(subject) = std::str::from_utf8(&p.subject) else {
            return 0;
        };
        let Some(own) = self.accounts.get(account).map(|a| a.name.as_str()) else {
            return 0;
        };
        let in_system = self.system_account_name() == Some(own);
        let Some(request) = parse(subject, own, in_system, &self.server_id) else {
            return 0;
        };
        let Some(reply) = p.reply.clone() else {
            return 1;
        };
        if let Some(payload) = self.answer(now, from, request, &p.payload) {
            let response = Publish {
                subject: reply,
                reply: None,
                headers: None,
                payload,
            };
            self.deliver_in(now, SERVER_SLOT, account, &response);
        }
        1
    }

    fn answer(
        &mut self,
        now: Instant,
        from: Slot,
        request: Request,
        payload: &[u8],
    ) -> Option<Bytes> {
        let wall = self.wall_at(now);
        match request {
            Request::Server(ServerKind::Idz) => Some(to_bytes(&ServerId {
                name: &self.server_name,
                host: &self.opts.host,
                id: &self.server_id,
            })),
            Request::Server(ServerKind::Connz) => {
                self.z_request(now, payload, |s, o| s.connz(now, wall, o))
            }
            Request::Server(ServerKind::Subsz) => {
                self.z_request(now, payload, |s, o| s.subsz(wall, o))
            }
            Request::Server(ServerKind::Accountz) => {
                self.z_request(now, payload, |s, o| s.accountz(wall, o))
            }
            Request::Server(ServerKind::Healthz) => {
                self.z_request(now, payload, |_, _: PlainOptions| {
                    Answer::Data(Health {
                        status: "ok",
                        status_code: 200,
                    })
                })
            }
            Request::Account(acc, kind) => self.account_request(now, wall, &acc, kind, payload),
            Request::PingStatz => self.z_request(now, payload, |s, o: StatzOptions| {
                s.statz(wall, &o.accounts, o.include_unused)
            }),
            Request::UserInfo => {
                let info = self.user_info(now, from)?;
                Some(to_bytes(&self.envelope(now, Some(Some(info)), None)))
            }
        }
    }

    fn account_request(
        &mut self,
        now: Instant,
        wall: UnixNanos,
        acc: &str,
        kind: AccountKind,
        payload: &[u8],
    ) -> Option<Bytes> {
        match kind {
            AccountKind::Connz => self.z_request(now, payload, |s, o| {
                s.connz(
                    now,
                    wall,
                    ConnzOptions {
                        acc: acc.to_owned(),
                        ..o
                    },
                )
            }),
            AccountKind::Subsz => self.z_request(now, payload, |s, o| {
                s.subsz(
                    wall,
                    SubszOptions {
                        subscriptions: true,
                        account: acc.to_owned(),
                        ..o
                    },
                )
            }),
            AccountKind::Statz if acc == "PING" => None,
            AccountKind::Statz => self.z_request(now, payload, |s, o: StatzOptions| {
                s.statz(wall, &[acc.to_owned()], o.include_unused)
            }),
            AccountKind::Info => self.z_request(now, payload, |s, _: PlainOptions| {
                match build::account(s, wall, acc) {
                    Ok(info) => Answer::<AccountInfo>::Data(info),
                    Err(e) => Answer::Failed(e.to_string()),
                }
            }),
            AccountKind::Conns => self.conns(now, acc, payload),
        }
    }

    /// Decodes the options, applies the server filters, runs the builder
    /// and wraps its answer; `None` when no reply is due.
    fn z_request<O, T>(
        &mut self,
        now: Instant,
        payload: &[u8],
        build: impl FnOnce(&Self, O) -> Answer<T>,
    ) -> Option<Bytes>
    where
        O: DeserializeOwned + Default + Filtered,
        T: Serialize,
    {
        let options: O = match decode(payload) {
            Ok(o) => o,
            Err(e) => {
                let error = ApiError {
                    code: 400,
                    description: e.to_string(),
                };
                return Some(to_bytes(&self.envelope::<T>(now, None, Some(error))));
            }
        };
        if self.filtered_out(options.filter()) {
            return None;
        }
        let response = match build(self, options) {
            Answer::Data(data) => self.envelope(now, Some(Some(data)), None),
            Answer::Failed(description) => self.envelope::<T>(
                now,
                Some(None),
                Some(ApiError {
                    code: 500,
                    description,
                }),
            ),
            Answer::Skip => return None,
        };
        Some(to_bytes(&response))
    }

    fn envelope<T>(
        &mut self,
        now: Instant,
        data: Option<Option<T>>,
        error: Option<ApiError>,
    ) -> ApiResponse<T> {
        ApiResponse {
            server: self.stamp(now),
            data,
            error,
        }
    }

    /// A system reply carrying `data`, stamped with the next sequence number.
    pub(crate) fn reply_data(&mut self, now: Instant, data: impl Serialize) -> Bytes {
        let response: ApiResponse<_> = self.envelope(now, Some(Some(data)), None);
        to_bytes(&response)
    }

    /// A system reply carrying `error`, stamped with the next sequence number.
    pub(crate) fn reply_error(&mut self, now: Instant, error: impl Serialize) -> Bytes {
        let response = ApiResponse::<(), _> {
            server: self.stamp(now),
            data: None,
            error: Some(error),
        };
        to_bytes(&response)
    }

    /// The `server` object; each reply takes the next sequence number.
    fn stamp(&mut self, now: Instant) -> ServerStamp {
        self.system_seq += 1;
        ServerStamp {
            name: self.server_name.clone(),
            host: self.opts.host.clone(),
            id: self.server_id.clone(),
            ver: VERSION,
            jetstream: false,
            flags: 0,
            seq: self.system_seq,
            time: self.wall_at(now).to_rfc3339(),
        }
    }

    /// nats-server's filter: names and hosts match by substring unless
    /// `exact_match`. natrix has no cluster, tags or JetStream domain, so a
    /// request asking for any of them is not for this server.
    fn filtered_out(&self, f: &EventFilter) -> bool {
        let differs = |want: &str, have: &str| {
            !want.is_empty()
                && if f.exact_match {
                    want != have
                } else {
                    !have.contains(want)
                }
        };
        differs(&f.server_name, &self.server_name)
            || differs(&f.host, &self.opts.host)
            || differs(&f.cluster, "")
            || !f.tags.is_empty()
            || !f.domain.is_empty()
    }

    fn connz(&self, now: Instant, wall: UnixNanos, o: ConnzOptions) -> Answer<ConnzReply> {
        let closed = o.state == 1;
        if matches!(o.sort.as_str(), "stop" | "reason") && !closed {
            return Answer::Failed(format!(
                "sort by {} only valid on closed connections",
                o.sort
            ));
        }
        if !o.acc.is_empty() && !self.accounts.iter().any(|a| a.name == o.acc) {
            return Answer::Data(ConnzReply::Unknown(BlankConnz::new(wall, &o)));
        }
        let subs = match (o.subscriptions_detail, o.subscriptions) {
            (true, _) => "detail",
            (false, true) => "1",
            (false, false) => "",
        };
        let state = ["open", "closed", "any"]
            .get(usize::try_from(o.state).unwrap_or(0))
            .copied()
            .unwrap_or("open");
        let pairs = [
            ("sort", o.sort.clone()),
            ("subs", subs.to_owned()),
            ("offset", positive(o.offset)),
            ("limit", positive(o.limit)),
            ("state", state.to_owned()),
            ("acc", o.acc),
            ("auth", if o.auth { "1" } else { "" }.to_owned()),
        ];
        let result = query(&pairs)
            .and_then(|q| build::connz(self, now, wall, &q).map_err(|e| e.to_string()));
        match result {
            Ok(connz) => Answer::Data(ConnzReply::Known(connz)),
            Err(_) if !o.sort.is_empty() => {
                Answer::Failed(format!("invalid sorting option: {}", o.sort))
            }
            Err(e) => Answer::Failed(e),
        }
    }

    fn subsz(&self, wall: UnixNanos, o: SubszOptions) -> Answer<Subsz> {
        if !o.test.is_empty() && !is_valid_literal_subject(o.test.as_bytes()) {
            return Answer::Failed(format!(
                "invalid test subject, must be valid publish subject: {}",
                o.test
            ));
        }
        let pairs = [
            (
                "subs",
                if o.subscriptions {
                    "1".to_owned()
                } else {
                    String::new()
                },
            ),
            ("offset", positive(o.offset)),
            ("limit", positive(o.limit)),
            ("acc", o.account),
            ("test", o.test),
        ];
        match query(&pairs).and_then(|q| build::subsz(self, wall, &q).map_err(|e| e.to_string())) {
            Ok(subsz) => Answer::Data(subsz),
            Err(e) => Answer::Failed(e),
        }
    }

    fn accountz(&self, wall: UnixNanos, o: AccountzOptions) -> Answer<Accountz> {
        let acc = Some(o.account.as_str()).filter(|a| !a.is_empty());
        match build::accountz(self, wall, acc) {
            Ok(doc) => Answer::Data(doc),
            Err(e) => Answer::Failed(e.to_string()),
        }
    }

    /// Account statistics of `accounts` (every account when empty); only
    /// accounts with connections unless `unused`, and no reply when none is left.
    fn statz(&self, wall: UnixNanos, accounts: &[String], unused: bool) -> Answer<Accstatz> {
        let all = self.account_stats();
        let chosen: Vec<AccountStats> = if accounts.is_empty() {
            all.into_iter().filter(|s| unused || s.conns > 0).collect()
        } else {
            accounts
                .iter()
                .filter_map(|a| all.iter().find(|s| s.acc == *a))
                .filter(|s| unused || s.conns > 0)
                .cloned()
                .collect()
        };
        if chosen.is_empty() && !unused {
            return Answer::Skip;
        }
        Answer::Data(Accstatz {
            server_id: self.server_id.clone(),
            now: wall.to_rfc3339(),
            account_statz: chosen,
        })
    }

    /// `CONNS`: the account's connection counts as an event, only when it
    /// has clients here. A body naming another account is ignored.
    fn conns(&mut self, now: Instant, acc: &str, payload: &[u8]) -> Option<Bytes> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct ConnsRequest {
            acc: Option<String>,
        }
        let request: ConnsRequest = decode(payload).ok()?;
        if request.acc.is_some_and(|a| a != acc) {
            return None;
        }
        let stat = self
            .account_stats()
            .into_iter()
            .find(|s| s.acc == acc && s.conns > 0)?;
        let event = AccountConns {
            kind: "io.nats.server.advisory.v1.account_connections",
            id: self.event_id(),
            timestamp: self.wall_at(now).to_rfc3339(),
            server: self.stamp(now),
            stat,
        };
        Some(to_bytes(&event))
    }

    /// A 22-character event id, like nats-server's NUIDs.
    fn event_id(&mut self) -> String {
        const ALPHABET: &[u8; 62] =
            b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        (0..22)
            .map(|_| ALPHABET[(self.rng.next_u32() % 62) as usize] as char)
            .collect()
    }

    /// Who the requester is: its user (a JWT user's public key), account,
    /// the account's and user's names, and how long its credentials last.
    fn user_info(&self, now: Instant, from: Slot) -> Option<UserInfo> {
        let c = self.client(from)?;
        let account = &self.accounts.get(c.account)?.name;
        let (user, user_name) = match (&c.jwt_user, &c.meta.user) {
            (Some((key, _)), Some(name)) if name != key => (key.clone(), name.clone()),
            (Some((key, _)), _) => (key.clone(), String::new()),
            (None, user) => (user.clone().unwrap_or_default(), String::new()),
        };
        let expires = c.auth_expires_at.map(|at| {
            u64::try_from(at.saturating_duration_since(now).as_nanos()).unwrap_or(u64::MAX)
        });
        Some(UserInfo {
            user,
            account: account.clone(),
            account_name: build::name_tag(self, account),
            user_name,
            expires,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(subject: &str, own: &str, in_system: bool) -> Option<Request> {
        parse(subject, own, in_system, "NSERVER")
    }

    #[test]
    fn system_account_reaches_every_account_and_the_server() {
        let acc = |a: &str, k| Some(Request::Account(a.to_owned(), k));
        assert_eq!(
            p("$SYS.REQ.ACCOUNT.A.CONNZ", "SYS", true),
            acc("A", AccountKind::Connz)
        );
        assert_eq!(
            p("$SYS.REQ.ACCOUNT.B.CONNS", "SYS", true),
            acc("B", AccountKind::Conns)
        );
        assert_eq!(
            p("$SYS.REQ.ACCOUNT.PING.CONNZ", "SYS", true),
            acc("PING", AccountKind::Connz)
        );
        assert_eq!(
            p("$SYS.REQ.ACCOUNT.PING.STATZ", "SYS", true),
            Some(Request::PingStatz)
        );
        assert_eq!(
            p("$SYS.REQ.SERVER.PING.SUBSZ", "SYS", true),
            Some(Request::Server(ServerKind::Subsz))
        );
        assert_eq!(
            p("$SYS.REQ.SERVER.NSERVER.IDZ", "SYS", true),
            Some(Request::Server(ServerKind::Idz))
        );
        assert_eq!(p("$SYS.REQ.SERVER.NOTME.IDZ", "SYS", true), None);
        assert_eq!(p("$SYS.REQ.SERVER.PING.VARZ", "SYS", true), None);
        assert_eq!(p("$SYS.REQ.ACCOUNT.A.CLAIMS.LOOKUP", "SYS", true), None);
        assert_eq!(
            p("$SYS.REQ.USER.X.INFO", "SYS", true),
            Some(Request::UserInfo)
        );
    }

    #[test]
    fn other_accounts_only_ask_about_themselves() {
        let own = |k| Some(Request::Account("A".to_owned(), k));
        assert_eq!(
            p("$SYS.REQ.ACCOUNT.PING.CONNZ", "A", false),
            own(AccountKind::Connz)
        );
        assert_eq!(
            p("$SYS.REQ.SERVER.PING.CONNZ", "A", false),
            own(AccountKind::Connz)
        );
        assert_eq!(
            p("$SYS.REQ.ACCOUNT.PING.STATZ", "A", false),
            own(AccountKind::Statz)
        );
        assert_eq!(p("$SYS.REQ.USER.INFO", "A", false), Some(Request::UserInfo));
        assert_eq!(p("$SYS.REQ.ACCOUNT.B.CONNZ", "A", false), None);
        assert_eq!(p("$SYS.REQ.ACCOUNT.A.CONNZ", "A", false), None);
        assert_eq!(p("$SYS.REQ.SERVER.PING.SUBSZ", "A", false), None);
        assert_eq!(p("$SYS.REQ.SERVER.NSERVER.CONNZ", "A", false), None);
    }

    #[test]
    fn options_decode_like_go() {
        let o: ConnzOptions =
            decode(br#"{"acc":"B","limit":2,"subscriptions":true,"other":1}"#).unwrap();
        assert_eq!((o.acc.as_str(), o.limit, o.subscriptions), ("B", 2, true));
        assert!(decode::<ConnzOptions>(b"null").is_ok());
        assert!(decode::<ConnzOptions>(b"").is_ok());
        assert!(decode::<ConnzOptions>(b"{bad").is_err());
        assert!(decode::<ConnzOptions>(br#"{"state":"closed"}"#).is_err());
        let f: StatzOptions =
            decode(br#"{"accounts":["A"],"server_name":"x","exact_match":true}"#).unwrap();
        assert_eq!(
            (
                f.accounts.len(),
                f.filter.server_name.as_str(),
                f.filter.exact_match
            ),
            (1, "x", true)
        );
    }

    #[test]
    fn query_values_are_encoded() {
        let q = query(&[("acc", "$G&x=1".to_owned()), ("sort", String::new())]).unwrap();
        assert_eq!(q.get("acc"), Some("$G&x=1"));
        assert_eq!(q.get("sort"), None);
    }
}
