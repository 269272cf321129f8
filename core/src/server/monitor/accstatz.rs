//! `/accstatz`: per-account traffic, connections and subscriptions.

use serde::Serialize;

use crate::server::{AccountStats, Control};
use crate::time::UnixNanos;

use super::Query;

/// The `/accstatz` document.
#[derive(Clone, Debug, Serialize)]
pub struct Accstatz {
    /// Server id.
    pub server_id: String,
    /// Snapshot time.
    pub now: String,
    /// One entry per account shown.
    pub account_statz: Vec<AccountStats>,
}

/// Accounts with connections, or every account with `unused=1`; `acc=NAME`
/// narrows to one account, as nats-server does.
pub(crate) fn build(server: &Control, wall: UnixNanos, q: &Query) -> Accstatz {
    let unused = q.flag("unused");
    let only = q.get("acc").filter(|a| !a.is_empty());
    let account_statz = server
        .account_stats()
        .into_iter()
        .filter(|s| only.is_none_or(|a| s.acc == a))
        .filter(|s| unused || s.conns > 0)
        .collect();
    Accstatz { server_id: server.server_id().to_owned(), now: wall.to_rfc3339(), account_statz }
}
