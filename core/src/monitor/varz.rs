//! `/varz`: the server's configuration and counters.

use serde::Serialize;

use crate::server::{Server, VERSION};
use crate::time::{Instant, UnixNanos};

use super::{duration, ProcessStats};

/// The `/varz` document, with nats-server's field names.
#[derive(Clone, Debug, Serialize)]
pub struct Varz {
    /// Server id.
    pub server_id: String,
    /// Server name.
    pub server_name: String,
    /// natrix version.
    pub version: String,
    /// Protocol version.
    pub proto: u32,
    /// Client listen host.
    pub host: String,
    /// Client port.
    pub port: i32,
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
    /// Start time.
    pub start: String,
    /// Time of this snapshot.
    pub now: String,
    /// Uptime in nats-server's format.
    pub uptime: String,
    /// Resident memory, bytes.
    pub mem: u64,
    /// Logical cores.
    pub cores: u32,
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
    /// Subscriptions across accounts.
    pub subscriptions: usize,
    /// When the configuration was loaded.
    pub config_load_time: String,
    /// The system account.
    pub system_account: String,
}

pub(crate) fn build(server: &Server, now: Instant, wall: UnixNanos, process: &ProcessStats) -> Varz {
    let opts = server.options();
    let counters = server.counters();
    let (started_at, started_wall) = server.started();
    let subscriptions = server.accounts().iter().map(|a| a.sublist.count()).sum();
    Varz {
        server_id: server.server_id().to_owned(),
        server_name: server.server_name().to_owned(),
        version: VERSION.to_owned(),
        proto: 1,
        host: opts.host.clone(),
        port: opts.port,
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
        start: started_wall.to_rfc3339(),
        now: wall.to_rfc3339(),
        uptime: duration::uptime(now.saturating_duration_since(started_at)),
        mem: process.rss_bytes,
        cores: process.cores,
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
        subscriptions,
        config_load_time: started_wall.to_rfc3339(),
        system_account: "$SYS".to_owned(),
    }
}

fn duration_nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
