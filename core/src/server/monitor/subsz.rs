//! `/subsz`: the subscription index's statistics, optionally with the
//! subscriptions themselves.

use serde::Serialize;

use crate::server::Control;
use crate::subject;
use crate::time::UnixNanos;

use super::{Query, QueryError, SubDetail, SublistStatsJson};

/// The `/subsz` document.
#[derive(Clone, Debug, Serialize)]
pub struct Subsz {
    /// Server id.
    pub server_id: String,
    /// Snapshot time.
    pub now: String,
    /// The index's figures, summed over the accounts shown.
    #[serde(flatten)]
    pub stats: SublistStatsJson,
    /// Subscriptions listed in total (with `subs=1`).
    pub total: usize,
    /// Page offset.
    pub offset: u64,
    /// Page size.
    pub limit: u64,
    /// The page (with `subs=1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions_list: Option<Vec<SubDetail>>,
}

pub(crate) fn build(server: &Control, wall: UnixNanos, q: &Query) -> Result<Subsz, QueryError> {
    let (offset, limit) = super::connz::paging(q)?;
    let test = q.get("test").filter(|t| !t.is_empty());
    if let Some(t) = test {
        if !subject::is_valid_literal_subject(t.as_bytes()) {
            return Err(QueryError::BadValue { key: "test".into(), value: t.into() });
        }
    }
    // `acc=NAME`: one account's index and subscriptions.
    let only = q.get("acc").filter(|a| !a.is_empty());
    let accounts = || server.accounts().iter().filter(move |a| only.is_none_or(|o| a.name == o));
    let mut stats = crate::subject::sublist::SublistStats::default();
    for account in accounts() {
        stats.add(&account.shared.index.read().stats());
    }
    let mut list = Vec::new();
    if q.flag("subs") {
        for account in accounts() {
            let tag = super::accountz::name_tag(server, &account.name);
            let subs = match test {
                Some(t) => account.shared.index.read().subscriptions_matching(t.as_bytes()),
                None => account.shared.index.read().all_subscriptions(),
            };
            for (_, _, sref) in subs {
                let Some(c) = server.client(sref.slot) else { continue };
                let o = sref.outbox.lock();
                let Some(sub) = o.subs.get(sref.sub) else { continue };
                let detail = SubDetail::of(sub, c.cid.0, Some(account.name.clone()));
                list.push(SubDetail { account_tag: Some(tag.clone()), ..detail });
            }
        }
    }
    let total = list.len();
    let page: Vec<SubDetail> = list.into_iter().skip(offset as usize).take(limit as usize).collect();
    Ok(Subsz {
        server_id: server.server_id().to_owned(),
        now: wall.to_rfc3339(),
        stats: stats.into(),
        total,
        offset,
        limit,
        // Go leaves out an empty list.
        subscriptions_list: (!page.is_empty()).then_some(page),
    })
}
