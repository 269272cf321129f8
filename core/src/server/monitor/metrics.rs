//! `/metrics`: the monitoring figures in Prometheus' text format, so no
//! exporter process is needed. The names are those of
//! prometheus-nats-exporter, which dashboards already use:
//!
//! - `gnatsd_varz_<field>`: every number of `/varz` (`connections`,
//!   `total_connections`, `in_msgs`, `out_msgs`, `in_bytes`, `out_bytes`,
//!   `slow_consumers`, `subscriptions`, `mem`, `cpu`, …); the counters
//!   (`in_*`, `out_*`, `total_connections`, `slow_consumers`) are typed
//!   `counter`, the rest `gauge`;
//! - `gnatsd_accstatz_<field>{account="…"}`: per account, `conns`,
//!   `total_conns`, `num_subscriptions`, `slow_consumers`, and
//!   `sent_msgs`, `sent_bytes`, `received_msgs`, `received_bytes`;
//! - `gnatsd_jsz_<field>`: JetStream's `streams`, `consumers`, `messages`,
//!   `bytes`, `memory`, `storage` (when JetStream is on).
//!
//! Every sample carries `server_id`.

use std::fmt::Write;

use serde_json::Value;

use super::query::Query;
use super::{accstatz, jsz, varz, ProcessStats};
use crate::server::Control;
use crate::time::{Instant, UnixNanos};

/// `/varz` numbers that only grow.
const COUNTERS: &[&str] = &["in_msgs", "out_msgs", "in_bytes", "out_bytes", "total_connections", "slow_consumers"];

/// The whole `/metrics` body.
pub(crate) fn build(server: &Control, now: Instant, wall: UnixNanos, process: &ProcessStats) -> String {
    let id = escape(server.server_id());
    let mut out = String::new();
    let varz = serde_json::to_value(varz::build(server, now, wall, process)).unwrap_or(Value::Null);
    if let Some(fields) = varz.as_object() {
        for (name, value) in fields {
            let Some(n) = value.as_f64() else { continue };
            let kind = if COUNTERS.contains(&name.as_str()) { "counter" } else { "gauge" };
            family(&mut out, &format!("gnatsd_varz_{name}"), kind, &[(format!("server_id=\"{id}\""), n)]);
        }
    }
    let Ok(empty) = Query::parse("") else { return out };
    let accstatz = serde_json::to_value(accstatz::build(server, wall, &empty)).unwrap_or(Value::Null);
    let accounts = accstatz["account_statz"].as_array().cloned().unwrap_or_default();
    let fields = [
        ("conns", "/conns"),
        ("total_conns", "/total_conns"),
        ("num_subscriptions", "/num_subscriptions"),
        ("slow_consumers", "/slow_consumers"),
        ("sent_msgs", "/sent/msgs"),
        ("sent_bytes", "/sent/bytes"),
        ("received_msgs", "/received/msgs"),
        ("received_bytes", "/received/bytes"),
    ];
    for (name, pointer) in fields {
        let samples: Vec<(String, f64)> = accounts
            .iter()
            .filter_map(|a| {
                let n = a.pointer(pointer)?.as_f64()?;
                let account = escape(a["acc"].as_str().unwrap_or_default());
                Some((format!("server_id=\"{id}\",account=\"{account}\""), n))
            })
            .collect();
        let kind = if name.ends_with("_msgs") || name.ends_with("_bytes") || name == "slow_consumers" { "counter" } else { "gauge" };
        family(&mut out, &format!("gnatsd_accstatz_{name}"), kind, &samples);
    }
    if let Ok(jsz) = jsz::build(server, wall, &empty) {
        let jsz = serde_json::to_value(jsz).unwrap_or(Value::Null);
        if jsz["disabled"].as_bool() == Some(false) {
            for name in ["streams", "consumers", "messages", "bytes", "memory", "storage"] {
                if let Some(n) = jsz[name].as_f64() {
                    family(&mut out, &format!("gnatsd_jsz_{name}"), "gauge", &[(format!("server_id=\"{id}\""), n)]);
                }
            }
        }
    }
    out
}

/// One metric family: its `# TYPE` line and its samples.
fn family(out: &mut String, name: &str, kind: &str, samples: &[(String, f64)]) {
    if samples.is_empty() {
        return;
    }
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
