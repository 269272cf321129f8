//! `/accountz`: the accounts the server knows and, with `acc=NAME`, one
//! account in detail (its exports, imports, JWT and subscription index), in
//! nats-server's shape. The same detail answers `$SYS.REQ.ACCOUNT.<acc>.INFO`.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};

use crate::auth::jwt::{AccountNats, Claims, ExportClaim, ImportClaim};
use crate::account::{AccountConfig, Export, Import, ImportKind, ResponseType};
use crate::server::{Account, Control};
use crate::subject::sublist::SublistStats;
use crate::time::UnixNanos;

use super::{Query, Response};

/// The `/accountz` document.
#[derive(Clone, Debug, Serialize)]
pub struct Accountz {
    /// Server id.
    pub server_id: String,
    /// Snapshot time.
    pub now: String,
    /// The system account's name, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_account: Option<String>,
    /// Every account's name (without `acc=`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// The account asked for with `acc=`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_detail: Option<AccountInfo>,
}

/// One account in detail (nats-server's `AccountInfo`).
#[derive(Clone, Debug, Serialize)]
pub struct AccountInfo {
    /// The account's name (its public key in operator mode).
    pub account_name: String,
    /// When the server last (re)loaded the account.
    pub update_time: String,
    /// True for the system account (omitted otherwise).
    #[serde(skip_serializing_if = "is_false")]
    pub is_system: bool,
    /// The account's JWT has expired.
    pub expired: bool,
    /// Always true: natrix loads every account whole.
    pub complete: bool,
    /// JetStream is enabled for the account (not yet in natrix).
    pub jetstream_enabled: bool,
    /// Leaf node connections (none yet).
    pub leafnode_connections: u64,
    /// Clients connected to the account.
    pub client_connections: u64,
    /// Subscriptions in the account's index.
    pub subscriptions: u64,
    /// What the account exports.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exports: Vec<ExtExport>,
    /// What the account imports.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<ExtImport>,
    /// The account JWT (operator mode).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub jwt: String,
    /// Who signed the account JWT.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub issuer_key: String,
    /// The account's human name: the JWT's `name`, else the account name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name_tag: String,
    /// The JWT's tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The JWT's claims.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoded_jwt: Option<Value>,
    /// Revoked users: public key → revoked at or before this time.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub revoked_user: BTreeMap<String, String>,
    /// The account's subscription index figures.
    pub sublist_stats: SublistStatsJson,
    /// Outstanding service responses: made-up reply subject → where it goes.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub responses: BTreeMap<String, ExtImport>,
}

/// One export, as `/accountz` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExtExport {
    /// The exported subject.
    pub subject: String,
    /// `stream` or `service`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Importers need an activation token.
    #[serde(skip_serializing_if = "is_false")]
    pub token_req: bool,
    /// `Singleton`, `Streamed` or `Chunked` (services).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_type: Option<&'static str>,
    /// The accounts allowed to import (empty: public).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approved_accounts: Vec<String>,
}

/// One import (or outstanding response), as `/accountz` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExtImport {
    /// The subject in the exporting account.
    pub subject: String,
    /// The exporting account.
    pub account: String,
    /// Services: the local subject (nats-server's deprecated duplicate).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub to: String,
    /// The subject in this account.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub local_subject: String,
    /// `stream` or `service`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The exporter does not allow it (or is unknown).
    pub invalid: bool,
    /// Requester details are shared with the exporter.
    pub share: bool,
    /// Latency tracking is on.
    pub tracking: bool,
}

/// A sublist's figures in nats-server's JSON shape.
#[derive(Clone, Debug, Serialize)]
pub struct SublistStatsJson {
    /// Subscriptions.
    pub num_subscriptions: u32,
    /// Cached match results.
    pub num_cache: u32,
    /// Inserts since start.
    pub num_inserts: u64,
    /// Removes since start.
    pub num_removes: u64,
    /// Matches since start.
    pub num_matches: u64,
    /// Cache hits per match.
    #[serde(serialize_with = "super::go_float")]
    pub cache_hit_rate: f64,
    /// Largest fan-out of a cached result.
    pub max_fanout: u32,
    /// Average fan-out of cached results.
    #[serde(serialize_with = "super::go_float")]
    pub avg_fanout: f64,
}

impl From<SublistStats> for SublistStatsJson {
    fn from(s: SublistStats) -> Self {
        SublistStatsJson {
            num_subscriptions: s.num_subscriptions,
            num_cache: s.num_cache,
            num_inserts: s.num_inserts,
            num_removes: s.num_removes,
            num_matches: s.num_matches,
            cache_hit_rate: s.cache_hit_rate,
            max_fanout: s.max_fanout,
            avg_fanout: s.avg_fanout,
        }
    }
}

/// Why an account cannot be described.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccountzError {
    /// No account of that name (nats-server's text).
    #[error("Account {0} does not exist")]
    NoSuchAccount(String),
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The HTTP answer: the document, or nats-server's plain-text 400.
pub(crate) fn response(server: &Control, wall: UnixNanos, q: &Query) -> Response {
    let acc = q.get("acc").filter(|a| !a.is_empty());
    match build(server, wall, acc) {
        Ok(doc) => Response::json(&doc),
        Err(e) => Response {
            status: 400,
            content_type: "text/plain; charset=utf-8",
            body: e.to_string(),
        },
    }
}

/// The list of accounts, or with `acc` that account in detail.
pub(crate) fn build(
    server: &Control,
    wall: UnixNanos,
    acc: Option<&str>,
) -> Result<Accountz, AccountzError> {
    let names = server.accounts().iter().map(|a| a.name.clone());
    let (accounts, account_detail) = match acc {
        None => (names.collect(), None),
        Some(name) => (Vec::new(), Some(account_info(server, wall, name)?)),
    };
    Ok(Accountz {
        server_id: server.server_id().to_owned(),
        now: wall.to_rfc3339(),
        system_account: system_name(server).map(str::to_owned),
        accounts,
        account_detail,
    })
}

/// The system account's name, when that account exists.
fn system_name(server: &Control) -> Option<&str> {
    let name = server.system_account_name()?;
    server
        .accounts()
        .iter()
        .any(|a| a.name == name)
        .then_some(name)
}

/// Account `name` in detail.
pub(crate) fn account_info(
    server: &Control,
    wall: UnixNanos,
    name: &str,
) -> Result<AccountInfo, AccountzError> {
    let (index, account) = server
        .accounts()
        .iter()
        .enumerate()
        .find(|(_, a)| a.name == name)
        .ok_or_else(|| AccountzError::NoSuchAccount(name.to_owned()))?;
    let is_system = system_name(server) == Some(name);
    let client_connections = server
        .clients_by_cid()
        .filter(|c| c.connected && c.account == index)
        .count();
    let mut info = AccountInfo {
        account_name: name.to_owned(),
        update_time: server.started().1.to_rfc3339(),
        is_system,
        expired: false,
        complete: true,
        jetstream_enabled: false,
        leafnode_connections: 0,
        client_connections: client_connections as u64,
        subscriptions: account.shared.index.read().count() as u64,
        exports: Vec::new(),
        imports: Vec::new(),
        jwt: String::new(),
        issuer_key: String::new(),
        name_tag: name.to_owned(),
        tags: Vec::new(),
        decoded_jwt: None,
        revoked_user: BTreeMap::new(),
        sublist_stats: account.shared.index.read().stats().into(),
        responses: responses(server, account),
    };
    if let Some(config) = server.options().accounts.iter().find(|a| a.name == name) {
        fill_from_config(&mut info, config);
    } else if let Some(trust) = server.trust() {
        if let Some(text) = trust.account_jwt(name) {
            fill_from_jwt(&mut info, text, trust.account_claims(name), wall);
        }
    }
    add_system_services(server, &mut info);
    Ok(info)
}

/// The human name of account `name`: its JWT's `name`, else the name
/// itself. The JWT was decoded when stored: STATZ asks this of every
/// account.
pub(crate) fn name_tag(server: &Control, name: &str) -> String {
    server
        .trust()
        .and_then(|t| t.account_claims(name))
        .map(|c| c.name.as_str())
        .filter(|n| !n.is_empty())
        .unwrap_or(name)
        .to_owned()
}

fn fill_from_config(info: &mut AccountInfo, config: &AccountConfig) {
    // nats-server lists service exports before stream exports, and stream
    // imports before service imports.
    let exports = config.exports.iter();
    info.exports.extend(
        exports
            .clone()
            .filter(|e| e.kind == ImportKind::Service)
            .map(config_export),
    );
    info.exports.extend(
        exports
            .filter(|e| e.kind == ImportKind::Stream)
            .map(config_export),
    );
    let imports = config.imports.iter();
    info.imports.extend(
        imports
            .clone()
            .filter(|i| i.kind == ImportKind::Stream)
            .map(config_import),
    );
    info.imports.extend(
        imports
            .filter(|i| i.kind == ImportKind::Service)
            .map(config_import),
    );
}

fn config_export(e: &Export) -> ExtExport {
    let service = e.kind == ImportKind::Service;
    ExtExport {
        subject: e.subject.clone(),
        kind: if service { "service" } else { "stream" },
        token_req: false,
        response_type: service.then(|| response_type_name(e.response_type)),
        approved_accounts: e.accounts.clone(),
    }
}

fn config_import(i: &Import) -> ExtImport {
    let local = match (&i.prefix, &i.to) {
        (Some(prefix), _) if i.kind == ImportKind::Stream => format!("{prefix}.{}", i.subject),
        (_, Some(to)) => to.clone(),
        _ => i.subject.clone(),
    };
    import_entry(i.kind, &i.subject, &i.account, local, false)
}

/// An import entry: services repeat their local subject in the deprecated `to`.
fn import_entry(
    kind: ImportKind,
    subject: &str,
    account: &str,
    local: String,
    invalid: bool,
) -> ExtImport {
    let service = kind == ImportKind::Service;
    ExtImport {
        subject: subject.to_owned(),
        account: account.to_owned(),
        to: if service {
            local.clone()
        } else {
            String::new()
        },
        local_subject: local,
        kind: if service { "service" } else { "stream" },
        invalid,
        share: false,
        tracking: false,
    }
}

fn response_type_name(t: ResponseType) -> &'static str {
    match t {
        ResponseType::Singleton => "Singleton",
        ResponseType::Stream => "Streamed",
        ResponseType::Chunked => "Chunked",
    }
}

/// Fills `info` from account JWT `text` and its claims, when it is a
/// signed account JWT.
fn fill_from_jwt(
    info: &mut AccountInfo,
    text: &str,
    claims: Option<&Claims<AccountNats>>,
    wall: UnixNanos,
) {
    info.jwt = text.to_owned();
    info.decoded_jwt = decoded_claims(text);
    let Some(claims) = claims else {
        return;
    };
    let now_secs = wall.0.div_euclid(1_000_000_000);
    info.expired = claims.exp > 0 && now_secs >= claims.exp;
    info.issuer_key.clone_from(&claims.iss);
    if !claims.name.is_empty() {
        info.name_tag.clone_from(&claims.name);
    }
    info.tags.clone_from(&claims.nats.tags);
    info.revoked_user = claims
        .nats
        .revocations
        .iter()
        .map(|(user, secs)| {
            (
                user.clone(),
                UnixNanos(secs.saturating_mul(1_000_000_000)).to_rfc3339(),
            )
        })
        .collect();
    jwt_exports_imports(info, claims);
}

fn jwt_exports_imports(info: &mut AccountInfo, claims: &Claims<AccountNats>) {
    let exports = claims.nats.exports.iter();
    info.exports.extend(
        exports
            .clone()
            .filter(|e| e.kind == "service")
            .map(jwt_export),
    );
    info.exports
        .extend(exports.filter(|e| e.kind == "stream").map(jwt_export));
    let imports = claims.nats.imports.iter();
    info.imports.extend(
        imports
            .clone()
            .filter(|i| i.kind == "stream")
            .map(jwt_import),
    );
    info.imports
        .extend(imports.filter(|i| i.kind == "service").map(jwt_import));
}

fn jwt_export(e: &ExportClaim) -> ExtExport {
    let service = e.kind == "service";
    let response_type = match e.response_type.as_str() {
        "Stream" => ResponseType::Stream,
        "Chunked" => ResponseType::Chunked,
        _ => ResponseType::Singleton,
    };
    ExtExport {
        subject: e.subject.clone(),
        kind: if service { "service" } else { "stream" },
        token_req: e.token_req,
        response_type: service.then(|| response_type_name(response_type)),
        approved_accounts: Vec::new(),
    }
}

/// A JWT import: `local_subject` wins; the older `to` is a stream's prefix
/// or a service's local subject.
fn jwt_import(i: &ImportClaim) -> ExtImport {
    let kind = if i.kind == "service" {
        ImportKind::Service
    } else {
        ImportKind::Stream
    };
    let local = match (i.local_subject.is_empty(), i.to.is_empty(), kind) {
        (false, _, _) => i.local_subject.clone(),
        (true, false, ImportKind::Stream) => format!("{}.{}", i.to, i.subject),
        (true, false, ImportKind::Service) => i.to.clone(),
        (true, true, _) => i.subject.clone(),
    };
    import_entry(kind, &i.subject, &i.account, local, false)
}

/// The claims of a JWT as JSON. nats-server re-encodes the claims it
/// decoded, which always carries `default_permissions` and `authorization`;
/// they are added when the JWT left them out, so the shapes agree.
fn decoded_claims(text: &str) -> Option<Value> {
    let body = text.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body.trim_end_matches('='))
        .ok()?;
    let mut claims: Value = serde_json::from_slice(&bytes).ok()?;
    if let Some(nats) = claims.get_mut("nats").and_then(Value::as_object_mut) {
        nats.entry("default_permissions")
            .or_insert_with(|| json!({"pub": {}, "sub": {}}));
        nats.entry("authorization").or_insert_with(|| json!({}));
    }
    Some(claims)
}

/// Replies this account's responders owe: where each made-up reply subject leads.
fn responses(server: &Control, account: &Account) -> BTreeMap<String, ExtImport> {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    account
        .responses
        .iter()
        .map(|(made, route)| {
            let requester = server
                .accounts()
                .get(route.requester)
                .map_or("", |a| a.name.as_str());
            (
                s(made),
                import_entry(
                    ImportKind::Service,
                    &s(&route.reply),
                    requester,
                    s(made),
                    false,
                ),
            )
        })
        .collect()
}

/// The monitoring requests the server answers show as nats-server shows
/// them: exports of the system account, and in every other account the
/// imports that let its users ask about themselves.
fn add_system_services(server: &Control, info: &mut AccountInfo) {
    let Some(system) = system_name(server) else {
        return;
    };
    let name = info.account_name.clone();
    let service = |subject: String, local: &str, share: bool| ExtImport {
        share,
        ..import_entry(
            ImportKind::Service,
            &subject,
            system,
            local.to_owned(),
            false,
        )
    };
    if info.is_system {
        for &(subject, response_type) in SYSTEM_EXPORTS {
            info.exports.push(ExtExport {
                subject: subject.to_owned(),
                kind: "service",
                token_req: false,
                response_type: Some(response_type),
                approved_accounts: Vec::new(),
            });
        }
    } else {
        let connz = format!("$SYS.REQ.ACCOUNT.{name}.CONNZ");
        info.imports
            .push(service(connz.clone(), "$SYS.REQ.ACCOUNT.PING.CONNZ", false));
        info.imports
            .push(service(connz, "$SYS.REQ.SERVER.PING.CONNZ", false));
        info.imports.push(service(
            format!("$SYS.REQ.ACCOUNT.{name}.STATZ"),
            "$SYS.REQ.ACCOUNT.PING.STATZ",
            false,
        ));
    }
    info.imports.push(service(
        format!("$SYS.REQ.USER.{name}.INFO"),
        "$SYS.REQ.USER.INFO",
        true,
    ));
}

/// What the system account exports to every other account.
const SYSTEM_EXPORTS: &[(&str, &str)] = &[
    ("$SYS.REQ.ACCOUNT.*.CONNZ", "Streamed"),
    ("$SYS.REQ.ACCOUNT.*.STATZ", "Streamed"),
    ("$SYS.REQ.USER.*.INFO", "Singleton"),
];
