//! Monitoring: the JSON documents nats-server serves on its HTTP port
//! (`/varz`, `/connz`, `/subsz`, `/accstatz`, `/accountz`, `/healthz`), built from the core's state.
//! The runtime serves HTTP and supplies process figures (memory, CPU); the
//! core routes the request, parses its query string and renders the answer.

mod accountz;
mod accstatz;
mod connz;
mod duration;
mod jsz;
mod metrics;
mod query;
mod subsz;
mod varz;

pub use accountz::{AccountInfo, Accountz, AccountzError, ExtExport, ExtImport, SublistStatsJson};
pub use accstatz::Accstatz;
pub use connz::{ConnInfo, Connz, SubDetail};
pub use duration::{go_duration, uptime};
pub use query::{Query, QueryError};
pub use jsz::{AccountDetail, JsConfig, JsStats, Jsz, StreamDetail, VarzJetStream};
pub use subsz::Subsz;
pub use varz::{KindCounts, Varz};

use crate::server::Control;

/// The builders behind the endpoints, shared with the monitoring requests
/// the server answers over NATS in the system account.
pub(crate) mod build {
    pub(crate) use super::accountz::{account_info as account, build as accountz, name_tag};
    pub(crate) use super::connz::build as connz;
    pub(crate) use super::subsz::build as subsz;
    pub(crate) use super::varz::build as varz;
    pub(crate) use super::jsz::build as jsz;
}

/// `/varz`'s `jetstream` section, which STATSZ carries too.
pub(crate) fn jsz_varz(server: &Control) -> serde_json::Value {
    jsz::varz(server)
}

/// `/routez`, `/gatewayz` or `/leafz` (`path`) of this unclustered server.
pub(crate) fn unclustered_doc(server: &Control, wall: UnixNanos, path: &str) -> serde_json::Value {
    unclustered(server, wall, path)
}
use crate::time::{Instant, UnixNanos};

/// Serializes a float as Go's `encoding/json` does: whole numbers without a
/// fraction (`2`, not `2.0`), so clients parsing nats-server's JSON see the same text.
pub(crate) fn go_float<S: serde::Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        s.serialize_i64(*value as i64)
    } else {
        s.serialize_f64(*value)
    }
}

/// Snapshot of a client about to be closed, for `/connz?state=closed`.
pub(crate) fn closed_conn_info(server: &Control, client: &crate::server::Client, now: Instant) -> ConnInfo {
    connz::conn_info(server, client, now, connz::SubsMode::None)
}

/// Figures about the process that only the runtime can read.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessStats {
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// CPU use, percent of one core.
    pub cpu_percent: f64,
    /// Logical cores.
    pub cores: u32,
}

/// An HTTP answer: status, content type and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type` header.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Response {
    fn json(value: &impl serde::Serialize) -> Response {
        // Serializing these plain structs cannot fail: no maps with non-string keys.
        let body = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        Response { status: 200, content_type: "application/json", body }
    }

    fn error(status: u16, text: &str) -> Response {
        let body = serde_json::json!({ "error": text }).to_string();
        Response { status, content_type: "application/json", body }
    }
}

/// Answers one monitoring request: `path` without the base path, `query`
/// the raw query string (without `?`).
pub fn handle(server: &mut Control, now: Instant, wall: UnixNanos, process: &ProcessStats, path: &str, query: &str) -> Response {
    let query = match Query::parse(query) {
        Ok(q) => q,
        Err(e) => return Response::error(400, &e.to_string()),
    };
    let path = path.trim_end_matches('/');
    if let Some(endpoint) = ENDPOINTS.iter().find(|&&e| e == path) {
        *server.counters_mut().http_requests.entry(endpoint).or_default() += 1;
    }
    match path {
        "" => Response { status: 200, content_type: "text/html; charset=utf-8", body: index_page() },
        "/varz" => Response::json(&varz::build(server, now, wall, process)),
        "/connz" => match connz::build(server, now, wall, &query) {
            Ok(c) => Response::json(&c),
            Err(e) => Response::error(400, &e.to_string()),
        },
        "/subsz" | "/subscriptionsz" => match subsz::build(server, wall, &query) {
            Ok(s) => Response::json(&s),
            Err(e) => Response::error(400, &e.to_string()),
        },
        "/accstatz" => Response::json(&accstatz::build(server, wall, &query)),
        "/accountz" => accountz::response(server, wall, &query),
        "/jsz" => match jsz::build(server, wall, &query) {
            Ok(j) => Response::json(&j),
            Err(e) => Response::error(400, &e.to_string()),
        },
        "/healthz" => Response::json(&serde_json::json!({ "status": "ok" })),
        "/metrics" => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: metrics::build(server, now, wall, process),
        },
        "/routez" | "/gatewayz" | "/leafz" => Response::json(&unclustered(server, wall, path)),
        _ => Response { status: 404, content_type: "text/plain; charset=utf-8", body: "404 page not found\n".to_owned() },
    }
}

/// `/routez`, `/gatewayz` and `/leafz` of a server without routes,
/// gateways or leaf nodes, in nats-server's shapes.
fn unclustered(server: &Control, wall: UnixNanos, path: &str) -> serde_json::Value {
    let (id, now) = (server.server_id(), wall.to_rfc3339());
    match path {
        "/routez" => serde_json::json!({
            "server_id": id, "server_name": server.server_name, "now": now, "num_routes": 0, "routes": [],
        }),
        "/gatewayz" => serde_json::json!({
            "server_id": id, "now": now, "outbound_gateways": {}, "inbound_gateways": {},
        }),
        _ => serde_json::json!({ "server_id": id, "now": now, "leafnodes": 0, "leafs": [] }),
    }
}

/// The endpoints served, as counted in `/varz`'s `http_req_stats`.
const ENDPOINTS: &[&str] = &[
    "/varz", "/connz", "/routez", "/gatewayz", "/leafz", "/subsz", "/subscriptionsz", "/accstatz", "/accountz",
    "/jsz", "/healthz",
];

fn index_page() -> String {
    let links = ["varz", "connz", "routez", "gatewayz", "leafz", "subsz", "accstatz", "accountz", "jsz", "healthz"]
        .iter()
        .map(|p| format!("<a href=\"./{p}\">{p}</a><br/>"))
        .collect::<String>();
    format!("<html><body><h1>natrix monitoring</h1>{links}</body></html>")
}
