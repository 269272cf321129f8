//! `/jsz` and `/varz`'s `jetstream` section: JetStream's settings, its
//! usage on this server, and (when asked) each account's and stream's.

use serde::Serialize;

use super::query::{Query, QueryError};
use crate::jetstream::api::responses::{ApiStats, ClusterInfoJson, StreamInfo, StreamStateJson};
use crate::jetstream::config::{StreamConfig, JS_API_LEVEL};
use crate::jetstream::JetStream;
use crate::server::Control;
use crate::time::UnixNanos;

/// nats-server's `JetStreamConfig` as monitoring shows it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct JsConfig {
    /// Memory budget in bytes.
    pub max_memory: i64,
    /// Storage budget in bytes.
    pub max_storage: i64,
    /// Where the files are.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub store_dir: String,
    /// How often writes are synced, in nanoseconds, when acknowledgements
    /// do not wait for syncs.
    #[serde(skip_serializing_if = "is_zero")]
    pub sync_interval: u64,
    /// Every write is synced before it is acknowledged (natrix's default).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sync_always: bool,
    /// The JetStream domain.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// API requests are parsed strictly (unknown fields refused).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
}

/// nats-server's `JetStreamStats`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct JsStats {
    /// Memory bytes used.
    pub memory: u64,
    /// Storage bytes used.
    pub storage: u64,
    /// Memory bytes reserved.
    pub reserved_memory: u64,
    /// Storage bytes reserved.
    pub reserved_storage: u64,
    /// Accounts with JetStream.
    pub accounts: usize,
    /// Replicated assets (none on one node).
    pub ha_assets: usize,
    /// API counters.
    pub api: ApiStats,
}

/// `/varz`'s `jetstream`.
#[derive(Clone, Debug, Serialize)]
pub struct VarzJetStream {
    /// Settings.
    pub config: JsConfig,
    /// Usage.
    pub stats: JsStats,
    /// Server-wide API limits (none set).
    pub limits: serde_json::Map<String, serde_json::Value>,
}

/// One stream in `/jsz?streams=true`.
#[derive(Clone, Debug, Serialize)]
pub struct StreamDetail {
    /// Its name.
    pub name: String,
    /// When it was made.
    #[serde(with = "crate::jetstream::api::json::go_time")]
    pub created: UnixNanos,
    /// Its leader (this server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfoJson>,
    /// Its configuration, with `config=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<StreamConfig>,
    /// Its figures.
    pub state: StreamStateJson,
}

/// One account in `/jsz?accounts=true`.
#[derive(Clone, Debug, Serialize)]
pub struct AccountDetail {
    /// Its name.
    pub name: String,
    /// Its name again (nats-server's id).
    pub id: String,
    /// Its usage.
    #[serde(flatten)]
    pub stats: JsStats,
    /// Its streams, with `streams=true`.
    #[serde(rename = "stream_detail", skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<StreamDetail>,
}

/// The `/jsz` document (nats-server's `JSInfo`).
#[derive(Clone, Debug, Serialize)]
pub struct Jsz {
    /// Server-wide usage.
    #[serde(flatten)]
    pub stats: JsStats,
    /// This server.
    pub server_id: String,
    /// When the figures were read.
    #[serde(with = "crate::jetstream::api::json::go_time")]
    pub now: UnixNanos,
    /// JetStream is off.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// Settings.
    pub config: JsConfig,
    /// Server-wide API limits (none set); absent when JetStream is off, as in nats-server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<serde_json::Map<String, serde_json::Value>>,
    /// Streams.
    pub streams: usize,
    /// Consumers.
    pub consumers: usize,
    /// Messages held.
    pub messages: u64,
    /// Bytes held.
    pub bytes: u64,
    /// Accounts, when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub account_details: Vec<AccountDetail>,
    /// Accounts in the answer before paging.
    pub total: usize,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn config(server: &Control, js: &JetStream) -> JsConfig {
    let budget = js.budget();
    let store_dir = server.options().store_dir.as_deref().filter(|d| !d.is_empty());
    JsConfig {
        max_memory: budget.max_memory,
        max_storage: budget.max_store,
        store_dir: store_dir.map(|d| format!("{}/jetstream", d.trim_end_matches('/'))).unwrap_or_default(),
        sync_interval: js.sync_interval().map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        sync_always: js.sync_interval().is_none(),
        domain: js.limits().domain.clone().unwrap_or_default(),
        strict: true,
    }
}

fn stats(js: &JetStream) -> JsStats {
    let (memory, storage, _, accounts) = js.totals();
    let (reserved_memory, reserved_storage) = js.reserved();
    let (total, errors) = js.api_counts();
    JsStats {
        memory,
        storage,
        reserved_memory,
        reserved_storage,
        accounts,
        ha_assets: 0,
        api: ApiStats { level: JS_API_LEVEL, total, errors },
    }
}

/// `/varz`'s `jetstream`: empty when JetStream is off.
pub(crate) fn varz(server: &Control) -> serde_json::Value {
    let Some(js) = server.jetstream() else { return serde_json::Value::Object(serde_json::Map::new()) };
    let section = VarzJetStream { config: config(server, js), stats: stats(js), limits: serde_json::Map::new() };
    serde_json::to_value(section).unwrap_or_default()
}

fn account_detail(js: &JetStream, name: &str, streams: bool, with_config: bool, wall: UnixNanos) -> Option<AccountDetail> {
    let report = js.account_report(name)?;
    let streams = if streams {
        js.stream_infos(name, wall)
            .into_iter()
            .map(|StreamInfo { config, created, state, cluster, .. }| StreamDetail {
                name: config.name.clone(),
                created,
                cluster,
                config: with_config.then_some(config),
                state,
            })
            .collect()
    } else {
        Vec::new()
    };
    Some(AccountDetail {
        name: name.to_owned(),
        id: name.to_owned(),
        stats: JsStats {
            memory: report.memory,
            storage: report.storage,
            // nats-server reports the account's limits here, as unsigned.
            reserved_memory: report.limits.max_memory as u64,
            reserved_storage: report.limits.max_storage as u64,
            accounts: 0,
            ha_assets: 0,
            api: ApiStats { level: 0, total: report.api_total, errors: report.api_errors },
        },
        streams,
    })
}

/// The `/jsz` document for `query` (`acc`, `accounts`, `streams`,
/// `config`, `offset`, `limit`).
pub(crate) fn build(server: &Control, wall: UnixNanos, query: &Query) -> Result<Jsz, QueryError> {
    let offset = usize::try_from(query.number("offset", 0)?).unwrap_or(usize::MAX);
    let limit = usize::try_from(query.number("limit", 1024)?).unwrap_or(usize::MAX);
    let Some(js) = server.jetstream() else {
        return Ok(Jsz {
            stats: JsStats::default(),
            server_id: server.server_id().to_owned(),
            now: wall,
            disabled: true,
            config: JsConfig::default(),
            limits: None,
            streams: 0,
            consumers: 0,
            messages: 0,
            bytes: 0,
            account_details: Vec::new(),
            total: 0,
        });
    };
    let only = query.get("acc").filter(|a| !a.is_empty());
    let streams_too = query.flag("streams");
    let with_config = query.flag("config");
    let accounts: Vec<&str> = js.enabled_accounts().filter(|a| only.is_none_or(|o| o == *a)).collect();
    let (mut streams, mut messages, mut bytes) = (0, 0, 0);
    for name in js.enabled_accounts() {
        for info in js.stream_infos(name, wall) {
            streams += 1;
            messages += info.state.messages;
            bytes += info.state.bytes;
        }
    }
    let details = if query.flag("accounts") || only.is_some() {
        accounts
            .iter()
            .skip(offset)
            .take(limit)
            .filter_map(|a| account_detail(js, a, streams_too, with_config, wall))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Jsz {
        stats: stats(js),
        server_id: server.server_id().to_owned(),
        now: wall,
        disabled: false,
        config: config(server, js),
        limits: Some(serde_json::Map::new()),
        streams,
        consumers: 0,
        messages,
        bytes,
        account_details: details,
        total: accounts.len(),
    })
}
