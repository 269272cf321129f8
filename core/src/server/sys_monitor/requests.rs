//! The monitoring requests of the system account, as data: which subject
//! asks what ([`parse`]), the options a request body carries (decoded as
//! nats-server decodes them) and the shapes of the replies. The answers are
//! built in the parent module.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::server::monitor::{Connz, Query};
use crate::server::AccountStats;
use crate::time::UnixNanos;

/// `$SYS.REQ.SERVER.{PING|<id>}.<kind>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ServerKind {
    Varz,
    Statsz,
    Jsz,
    Routez,
    Gatewayz,
    Leafz,
    Connz,
    Subsz,
    Accountz,
    Healthz,
    Idz,
}

/// `$SYS.REQ.ACCOUNT.<account>.<kind>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AccountKind {
    Jsz,
    Leafz,
    Connz,
    Subsz,
    Statz,
    Info,
    Conns,
}

/// A monitoring request the server answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Request {
    Server(ServerKind),
    Account(String, AccountKind),
    /// `$SYS.REQ.ACCOUNT.PING.STATZ` in the system account: every account.
    PingStatz,
    /// `$SYS.REQ.USER.INFO`: who the requester is.
    UserInfo,
}

/// What a builder made of a request.
pub(super) enum Answer<T> {
    Data(T),
    /// A 500 error reply with `"data": null`, as nats-server sends.
    Failed(String),
    /// No reply at all (nothing to report, as nats-server does).
    Skip,
}

/// Which subject this is, for a requester in `own` (`in_system` when that
/// is the system account).
pub(super) fn parse(subject: &str, own: &str, in_system: bool, server_id: &str) -> Option<Request> {
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
        // The older spelling of `PING.STATSZ`, still answered.
        ["$SYS", "REQ", "SERVER", "PING"] => Request::Server(ServerKind::Statsz),
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

pub(super) fn server_kind(kind: &str) -> Option<ServerKind> {
    Some(match kind {
        "VARZ" => ServerKind::Varz,
        "STATSZ" => ServerKind::Statsz,
        "JSZ" => ServerKind::Jsz,
        "ROUTEZ" => ServerKind::Routez,
        "GATEWAYZ" => ServerKind::Gatewayz,
        "LEAFZ" => ServerKind::Leafz,
        "CONNZ" => ServerKind::Connz,
        "SUBSZ" => ServerKind::Subsz,
        "ACCOUNTZ" => ServerKind::Accountz,
        "HEALTHZ" => ServerKind::Healthz,
        "IDZ" => ServerKind::Idz,
        _ => return None,
    })
}

pub(super) fn account_kind(kind: &str) -> Option<AccountKind> {
    Some(match kind {
        "JSZ" => AccountKind::Jsz,
        "LEAFZ" => AccountKind::Leafz,
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
pub(super) struct EventFilter {
    pub(super) server_name: String,
    pub(super) cluster: String,
    pub(super) host: String,
    pub(super) exact_match: bool,
    pub(super) tags: Vec<String>,
    pub(super) domain: String,
}

/// Request options that carry the filters.
pub(super) trait Filtered {
    fn filter(&self) -> &EventFilter;
}

macro_rules! filtered {
    ($($t:ty),*) => {$(impl Filtered for $t { fn filter(&self) -> &EventFilter { &self.filter } })*};
}
filtered!(
    JszOptions,
    ConnzOptions,
    SubszOptions,
    AccountzOptions,
    StatzOptions,
    PlainOptions
);

/// `CONNZ` options (nats-server's `ConnzOptions` JSON).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ConnzOptions {
    #[serde(flatten)]
    pub(super) filter: EventFilter,
    pub(super) sort: String,
    /// Show each connection's user and account.
    pub(super) auth: bool,
    pub(super) subscriptions: bool,
    pub(super) subscriptions_detail: bool,
    pub(super) offset: i64,
    pub(super) limit: i64,
    /// 0 open, 1 closed, 2 any.
    pub(super) state: i64,
    pub(super) acc: String,
}

/// `JSZ` options (those natrix's `/jsz` knows).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct JszOptions {
    #[serde(flatten)]
    pub(super) filter: EventFilter,
    pub(super) account: String,
    pub(super) accounts: bool,
    pub(super) streams: bool,
    pub(super) config: bool,
    pub(super) offset: i64,
    pub(super) limit: i64,
}

/// `SUBSZ` options.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct SubszOptions {
    #[serde(flatten)]
    pub(super) filter: EventFilter,
    pub(super) offset: i64,
    pub(super) limit: i64,
    pub(super) subscriptions: bool,
    pub(super) account: String,
    pub(super) test: String,
}

/// `ACCOUNTZ` options.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct AccountzOptions {
    #[serde(flatten)]
    pub(super) filter: EventFilter,
    pub(super) account: String,
}

/// `STATZ` options.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct StatzOptions {
    #[serde(flatten)]
    pub(super) filter: EventFilter,
    pub(super) accounts: Vec<String>,
    pub(super) include_unused: bool,
}

/// Requests whose only options are the filters.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct PlainOptions {
    #[serde(flatten)]
    pub(super) filter: EventFilter,
}

/// The `server` object of every system reply.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ServerStamp {
    pub(super) name: String,
    pub(super) host: String,
    pub(super) id: String,
    pub(super) ver: &'static str,
    pub(super) jetstream: bool,
    pub(super) flags: u64,
    pub(super) seq: u64,
    pub(super) time: String,
}

/// nats-server's `ServerAPIResponse`. `data` is `Some(None)` for the
/// `"data": null` nats-server sends beside a builder's error; the claims
/// requests send errors of their own shape (`E`).
#[derive(Serialize)]
pub(super) struct ApiResponse<T, E = ApiError> {
    pub(super) server: ServerStamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) data: Option<Option<T>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<E>,
}

#[derive(Serialize)]
pub(super) struct ApiError {
    pub(super) code: u16,
    pub(super) description: String,
}

/// `CONNZ` of an account the server does not know: nats-server answers an
/// empty document without its id.
#[derive(Serialize)]
pub(super) struct BlankConnz {
    pub(super) server_id: &'static str,
    pub(super) now: String,
    pub(super) num_connections: u32,
    pub(super) total: u32,
    pub(super) offset: u64,
    pub(super) limit: u64,
    pub(super) connections: Option<()>,
}

impl BlankConnz {
    pub(super) fn new(wall: UnixNanos, o: &ConnzOptions) -> BlankConnz {
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
pub(super) enum ConnzReply {
    Known(Connz),
    Unknown(BlankConnz),
}

#[derive(Serialize)]
pub(super) struct Health {
    pub(super) status: &'static str,
    pub(super) status_code: u16,
}

/// `IDZ`: sent bare, without the envelope.
#[derive(Serialize)]
pub(super) struct ServerId<'a> {
    pub(super) name: &'a str,
    pub(super) host: &'a str,
    pub(super) id: &'a str,
}

/// `CONNS`: nats-server's account connections event.
#[derive(Serialize)]
pub(super) struct AccountConns {
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    pub(super) id: String,
    pub(super) timestamp: String,
    pub(super) server: ServerStamp,
    #[serde(flatten)]
    pub(super) stat: AccountStats,
}

/// `USER.INFO`: the requester's identity.
#[derive(Serialize)]
pub(super) struct UserInfo {
    pub(super) user: String,
    pub(super) account: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(super) account_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(super) user_name: String,
    /// The user's permissions, as configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) permissions: Option<PermissionsJson>,
    /// Nanoseconds until the user's credentials expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) expires: Option<u64>,
}

/// nats-server's `Permissions` JSON.
#[derive(Serialize)]
pub(super) struct PermissionsJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) publish: Option<SubjectPermissionJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) subscribe: Option<SubjectPermissionJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) responses: Option<ResponsesJson>,
}

#[derive(Serialize)]
pub(super) struct SubjectPermissionJson {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) allow: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) deny: Vec<String>,
}

#[derive(Serialize)]
pub(super) struct ResponsesJson {
    pub(super) max: i64,
    /// Nanoseconds.
    pub(super) ttl: i64,
}

impl ResponsesJson {
    /// No limit is a negative value, as nats-server keeps it.
    fn of(r: &crate::config::ResponsePermission) -> ResponsesJson {
        ResponsesJson {
            max: r.max_msgs.map_or(-1, i64::from),
            ttl: r.expires.map_or(-1, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        }
    }
}

impl PermissionsJson {
    pub(super) fn of(p: &crate::config::Permissions) -> PermissionsJson {
        let subjects = |s: &crate::config::SubjectPermission| SubjectPermissionJson {
            allow: s.allow.clone(),
            deny: s.deny.clone(),
        };
        PermissionsJson {
            publish: p.publish.as_ref().map(subjects),
            subscribe: p.subscribe.as_ref().map(subjects),
            responses: p.allow_responses.as_ref().map(ResponsesJson::of),
        }
    }
}

/// Options decoded as nats-server decodes them: an empty body (or `null`)
/// leaves the defaults.
pub(super) fn decode<O: DeserializeOwned + Default>(
    payload: &[u8],
) -> Result<O, serde_json::Error> {
    if payload.is_empty() || payload == b"null" {
        return Ok(O::default());
    }
    serde_json::from_slice(payload)
}

pub(crate) fn to_bytes(value: &impl Serialize) -> Bytes {
    // Plain structs with string keys: serializing cannot fail.
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// A query string from option values, each percent-encoded; empty values are left out.
pub(super) fn query(pairs: &[(&str, String)]) -> Result<Query, String> {
    let raw: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    Query::parse(&raw.join("&")).map_err(|e| e.to_string())
}

pub(super) fn percent_encode(value: &str) -> String {
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
pub(super) fn positive(n: i64) -> String {
    if n > 0 {
        n.to_string()
    } else {
        String::new()
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
        assert_eq!(
            p("$SYS.REQ.SERVER.PING.VARZ", "SYS", true),
            Some(Request::Server(ServerKind::Varz))
        );
        assert_eq!(
            p("$SYS.REQ.SERVER.PING", "SYS", true),
            Some(Request::Server(ServerKind::Statsz))
        );
        assert_eq!(p("$SYS.REQ.SERVER.PING", "A", false), None);
        assert_eq!(p("$SYS.REQ.SERVER.PING.PROFILEZ", "SYS", true), None);
        assert_eq!(
            p("$SYS.REQ.ACCOUNT.A.JSZ", "SYS", true),
            Some(Request::Account("A".to_owned(), AccountKind::Jsz))
        );
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
