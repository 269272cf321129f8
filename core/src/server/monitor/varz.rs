//! `/varz`: the server's configuration and counters.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::server::{Control, NATRIX_VERSION, VERSION};
use crate::time::{Instant, UnixNanos};

use super::{duration, ProcessStats};

/// The `/varz` document, with nats-server's field names.
#[derive(Clone, Debug, Serialize)]
pub struct Varz {
    /// Server id.
    pub server_id: String,
    /// Server name.
    pub server_name: String,
    /// The nats-server release natrix implements ([`VERSION`]).
    pub version: String,
    /// natrix's own version ([`NATRIX_VERSION`]); not a nats-server field.
    pub natrix_version: String,
    /// Protocol version.
    pub proto: u32,
    /// The toolchain natrix was built with (nats-server: its Go version).
    pub go: String,
    /// Client listen host.
    pub host: String,
    /// Client port.
    pub port: i32,
    /// Clients must authenticate.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub auth_required: bool,
    /// `max_connections`.
    pub max_connections: u32,
    /// `ping_interval`, nanoseconds.
    pub ping_interval: u64,
    /// `ping_max`.
    pub ping_max: u32,
    /// Monitoring host.
    pub http_host: String,
    /// Monitoring port.
    pub http_port: i32,
    /// Monitoring base path.
    pub http_base_path: String,
    /// Monitoring TLS port.
    pub https_port: i32,
    /// Auth timeout, seconds.
    #[serde(serialize_with = "super::go_float")]
    pub auth_timeout: f64,
    /// `max_control_line`.
    pub max_control_line: u32,
    /// `max_payload`.
    pub max_payload: u32,
    /// `max_pending`.
    pub max_pending: u64,
    /// TLS handshake timeout, seconds.
    #[serde(serialize_with = "super::go_float")]
    pub tls_timeout: f64,
    /// `write_deadline`, nanoseconds.
    pub write_deadline: u64,
    /// Cluster settings (`{}` without a cluster).
    pub cluster: serde_json::Value,
    /// Gateway settings.
    pub gateway: serde_json::Value,
    /// Leaf node settings.
    pub leaf: serde_json::Value,
    /// MQTT settings.
    pub mqtt: serde_json::Value,
    /// WebSocket settings.
    pub websocket: serde_json::Value,
    /// JetStream settings and usage.
    pub jetstream: serde_json::Value,
    /// Start time.
    pub start: String,
    /// Time of this snapshot.
    pub now: String,
    /// Uptime in nats-server's format.
    pub uptime: String,
    /// Resident memory, bytes.
    pub mem: u64,
    /// The memory limit (`memory_limit`, `NATRIX_MEMORY_LIMIT` or
    /// `GOMEMLIMIT`), bytes; nats-server's field for `GOMEMLIMIT`.
    #[serde(skip_serializing_if = "is_zero")]
    pub gomemlimit: u64,
    /// Resident memory is over the limit's high-water mark: new connections
    /// are refused and slow consumers cut sooner (natrix's own field).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub memory_limit_exceeded: bool,
    /// Logical cores.
    pub cores: u32,
    /// Worker threads the runtime may use (nats-server: GOMAXPROCS).
    pub gomaxprocs: u32,
    /// CPU percent.
    #[serde(serialize_with = "super::go_float")]
    pub cpu: f64,
    /// Open client connections.
    pub connections: usize,
    /// Connections accepted since start.
    pub total_connections: u64,
    /// Routes (clustering).
    pub routes: u32,
    /// Remote servers.
    pub remotes: u32,
    /// Leaf node connections.
    pub leafnodes: u32,
    /// Messages received.
    pub in_msgs: u64,
    /// Bytes received.
    pub in_bytes: u64,
    /// Messages received from clients.
    pub in_client_msgs: u64,
    /// Bytes received from clients.
    pub in_client_bytes: u64,
    /// Messages sent.
    pub out_msgs: u64,
    /// Bytes sent.
    pub out_bytes: u64,
    /// Messages sent to clients.
    pub out_client_msgs: u64,
    /// Bytes sent to clients.
    pub out_client_bytes: u64,
    /// Slow consumers closed since start.
    pub slow_consumers: u64,
    /// Connections closed as stale.
    pub stale_connections: u64,
    /// Times producers were slowed down for lagging receivers.
    pub stalled_clients: u64,
    /// Subscriptions across accounts.
    pub subscriptions: usize,
    /// Monitoring requests served, by endpoint.
    pub http_req_stats: BTreeMap<&'static str, u64>,
    /// When the configuration was loaded.
    pub config_load_time: String,
    /// Digest of the configuration file (empty without one).
    pub config_digest: String,
    /// The system account.
    pub system_account: String,
    /// Slow consumers by connection kind.
    pub slow_consumer_stats: KindCounts,
    /// Waits on disk I/O (`waiters`, `waits`, `wait_time`, `max_wait_time`).
    pub disk_io_wait_stats: DiskIoWaitStats,
    /// Stale connections by connection kind.
    pub stale_connection_stats: KindCounts,
}

/// Time spent waiting for the disk, as nats-server reports it.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct DiskIoWaitStats {
    /// Waiting right now.
    pub waiters: u64,
    /// Waits since start.
    pub waits: u64,
    /// Total wait, nanoseconds.
    pub wait_time: u64,
    /// Longest wait, nanoseconds.
    pub max_wait_time: u64,
}

/// A count per connection kind, as nats-server breaks its slow-consumer and
/// stale-connection figures down.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct KindCounts {
    /// Client connections.
    pub clients: u64,
    /// Routes.
    pub routes: u64,
    /// Gateways.
    pub gateways: u64,
    /// Leaf nodes.
    pub leafs: u64,
}

pub(crate) fn build(server: &Control, now: Instant, wall: UnixNanos, process: &ProcessStats) -> Varz {
    let opts = server.options();
    let counters = server.counters();
    let (started_at, started_wall) = server.started();
    let subscriptions = server.accounts().iter().map(|a| a.shared.index.read().count()).sum();
    Varz {
        server_id: server.server_id().to_owned(),
        server_name: server.server_name().to_owned(),
        version: VERSION.to_owned(),
        natrix_version: NATRIX_VERSION.to_owned(),
        proto: 1,
        go: crate::protocol::info::RUNTIME_VERSION.to_owned(),
        host: opts.host.clone(),
        port: opts.port,
        auth_required: server.auth_required(),
        max_connections: opts.max_connections,
        ping_interval: duration_nanos(opts.ping_interval),
        ping_max: opts.ping_max,
        http_host: opts.http_host.clone().unwrap_or_else(|| opts.host.clone()),
        http_port: opts.http_port,
        http_base_path: opts.http_base_path.clone(),
        https_port: opts.https_port,
        auth_timeout: opts.auth_timeout.as_secs_f64(),
        max_control_line: opts.max_control_line_bytes,
        max_payload: opts.max_payload_bytes,
        max_pending: opts.max_pending_bytes,
        tls_timeout: opts.tls.as_ref().map_or(2.0, |t| if t.timeout.is_zero() { 2.0 } else { t.timeout.as_secs_f64() }),
        write_deadline: duration_nanos(opts.write_deadline),
        cluster: empty(),
        gateway: empty(),
        leaf: empty(),
        mqtt: mqtt(&opts.mqtt),
        websocket: websocket(&opts.websocket),
        jetstream: super::jsz::varz(server),
        start: started_wall.to_rfc3339(),
        now: wall.to_rfc3339(),
        uptime: duration::uptime(now.saturating_duration_since(started_at)),
        mem: process.rss_bytes,
        gomemlimit: server.memory_limit_bytes().unwrap_or(0),
        memory_limit_exceeded: server.under_memory_pressure(),
        cores: process.cores,
        gomaxprocs: process.cores,
        cpu: process.cpu_percent,
        connections: server.num_clients(),
        total_connections: counters.total_connections,
        routes: 0,
        remotes: 0,
        leafnodes: 0,
        in_msgs: counters.in_msgs,
        in_bytes: counters.in_bytes,
        in_client_msgs: counters.in_msgs,
        in_client_bytes: counters.in_bytes,
        out_msgs: counters.out_msgs,
        out_bytes: counters.out_bytes,
        out_client_msgs: counters.out_msgs,
        out_client_bytes: counters.out_bytes,
        slow_consumers: counters.slow_consumers,
        stale_connections: counters.stale_connections,
        stalled_clients: counters.stalled_clients,
        subscriptions,
        http_req_stats: counters.http_requests.clone(),
        config_load_time: server.config_loaded_at().to_rfc3339(),
        config_digest: String::new(),
        system_account: "$SYS".to_owned(),
        slow_consumer_stats: KindCounts { clients: counters.slow_consumers, ..KindCounts::default() },
        stale_connection_stats: KindCounts { clients: counters.stale_connections, ..KindCounts::default() },
        disk_io_wait_stats: DiskIoWaitStats::default(),
    }
}

/// nats-server's `WebsocketOptsVarz`: unset fields are left out.
fn websocket(ws: &crate::config::WebsocketOptions) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        m.insert(k.to_owned(), v);
    };
    if !ws.host.is_empty() {
        put("host", ws.host.clone().into());
    }
    if ws.port != 0 {
        put("port", ws.port.into());
    }
    for (key, value) in [("advertise", &ws.advertise), ("no_auth_user", &ws.no_auth_user), ("jwt_cookie", &ws.jwt_cookie)] {
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            put(key, v.clone().into());
        }
    }
    if !ws.handshake_timeout.is_zero() {
        put("handshake_timeout", duration_nanos(ws.handshake_timeout).into());
    }
    if let Some(t) = ws.auth_timeout.filter(|t| !t.is_zero()) {
        put("auth_timeout", t.as_secs_f64().into());
    }
    for (key, on) in [("no_tls", ws.no_tls), ("same_origin", ws.same_origin)] {
        if on {
            put(key, true.into());
        }
    }
    if !ws.allowed_origins.is_empty() {
        put("allowed_origins", ws.allowed_origins.clone().into());
    }
    if ws.compression {
        put("compression", true.into());
    }
    serde_json::Value::Object(m)
}

/// nats-server's `MQTTOptsVarz`: unset fields are left out; a configured
/// listener shows its TLS timeout (2s by default) even without TLS.
fn mqtt(m: &crate::config::MqttOptions) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    if m.port == 0 {
        return serde_json::Value::Object(out);
    }
    if !m.host.is_empty() {
        out.insert("host".into(), m.host.clone().into());
    }
    out.insert("port".into(), m.port.into());
    if let Some(user) = m.no_auth_user.as_ref().filter(|u| !u.is_empty()) {
        out.insert("no_auth_user".into(), user.clone().into());
    }
    if let Some(t) = m.auth_timeout.filter(|t| !t.is_zero()) {
        out.insert("auth_timeout".into(), t.as_secs_f64().into());
    }
    let tls_timeout = m.tls.as_ref().map_or(2.0, |t| t.timeout.as_secs_f64());
    out.insert("tls_timeout".into(), tls_timeout.into());
    if let Some(d) = m.js_domain.as_ref().filter(|d| !d.is_empty()) {
        out.insert("js_domain".into(), d.clone().into());
    }
    if let Some(ns) = m.ack_wait.filter(|&ns| ns > 0) {
        out.insert("ack_wait".into(), ns.into());
    }
    if m.max_ack_pending > 0 {
        out.insert("max_ack_pending".into(), m.max_ack_pending.into());
    }
    serde_json::Value::Object(out)
}

fn empty() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

fn duration_nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
