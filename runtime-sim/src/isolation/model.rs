//! What every client is owed: the live subscriptions of each node, in the
//! order the node processed them, and the deliveries each processed publish
//! makes according to the account [`Plan`]. The checker settles every MSG a
//! client receives against it.
//!
//! Requests crossing a service import reach the exporter with a reply
//! subject the node makes up (`_R_.…`); the model learns it from the first
//! such delivery, and the first response published on it in the exporter
//! goes back to the requester's account under the original reply subject,
//! as nats-server routes singleton responses. Stream imports and local
//! deliveries keep the reply subject as published.

use std::collections::BTreeMap;

use super::plan::Plan;
use crate::subject::matches;

/// A subscription the node has processed.
#[derive(Clone, Debug)]
struct LiveSub {
    link: usize,
    sid: u64,
    pattern: String,
    account: usize,
}

/// A publish the node has processed.
#[derive(Clone, Debug)]
pub struct Published {
    /// The publisher's account.
    pub account: usize,
    /// The subject it was published on.
    pub subject: String,
    /// The model's (account, subject) deliveries.
    pub targets: Vec<(usize, String)>,
    /// The reply subject it was published with.
    pub reply: Option<String>,
}

/// A response route the node made for a request crossing a service import.
#[derive(Clone, Debug)]
struct ResponseRoute {
    /// The account the responder publishes in.
    exporter: usize,
    /// The requester's account and reply subject.
    requester: usize,
    reply: String,
    /// Singleton responses: only the first one goes back.
    used: bool,
}

/// Why a delivery is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wrong {
    /// The receiver's account is none the publish may reach.
    OtherAccount,
    /// The account may be reached, but not this subscription, under this
    /// subject, or not this many times.
    NotOwed,
    /// The payload names no publish.
    Unknown,
    /// The delivery's reply subject is not the one it must carry.
    Reply,
    /// The publish was one its publisher's permissions denied.
    DeniedPublish,
}

/// The model of one run.
#[derive(Debug, Default)]
pub struct Model {
    subs: BTreeMap<usize, Vec<LiveSub>>,
    publishes: BTreeMap<u64, Published>,
    /// (link, sid, publish id) → (subject, account the subscription was
    /// in) still owed, one per path. A link that logged in again as another
    /// account is still owed what its earlier subscriptions were.
    owed: BTreeMap<(usize, u64, u64), Vec<(String, usize)>>,
    /// `_R_.…` reply subjects seen by responders → where responses go.
    responses: BTreeMap<String, ResponseRoute>,
    /// What a link's user may not receive (or publish), since a reload.
    denied: BTreeMap<usize, Vec<String>>,
    /// Publishes their publisher's permissions denied: they go nowhere.
    denied_publishes: std::collections::BTreeSet<u64>,
}

impl Model {
    /// The node processed `SUB pattern sid` from `link` in `account`.
    pub fn subscribed(
        &mut self,
        node: usize,
        link: usize,
        account: usize,
        sid: u64,
        pattern: &str,
    ) {
        let pattern = pattern.to_owned();
        self.subs.entry(node).or_default().push(LiveSub {
            link,
            sid,
            pattern,
            account,
        });
    }

    /// The node processed publish `id` (its payload names it) of `subject`
    /// with `reply` in `account`: records whom it owes.
    pub fn published(
        &mut self,
        plan: &Plan,
        node: usize,
        account: usize,
        id: u64,
        subject: &str,
        reply: Option<String>,
    ) {
        let mut targets = plan.targets(account, subject);
        if let Some(route) = self.responses.get_mut(subject) {
            if route.exporter == account && !route.used {
                route.used = true;
                targets.push((route.requester, route.reply.clone()));
            }
        }
        for (to_account, delivered) in &targets {
            for s in self.subs.get(&node).into_iter().flatten() {
                let denied = self.denied.get(&s.link).is_some_and(|d| d.iter().any(|p| matches(p, delivered)));
                if s.account == *to_account && matches(&s.pattern, delivered) && !denied {
                    self.owed
                        .entry((s.link, s.sid, id))
                        .or_default()
                        .push((delivered.clone(), s.account));
                }
            }
        }
        let subject = subject.to_owned();
        self.publishes.insert(
            id,
            Published {
                account,
                subject,
                targets,
                reply,
            },
        );
    }

    /// The publish `id`, if a node processed it.
    pub fn publish(&self, id: u64) -> Option<&Published> {
        self.publishes.get(&id)
    }

    /// `link` (a client now in `account`) received publish `id` under
    /// `subject` for `sid`, with `reply`: settles it, or says why it is wrong.
    pub fn delivered(
        &mut self,
        plan: &Plan,
        (link, account): (usize, usize),
        (sid, id): (u64, u64),
        subject: &str,
        reply: Option<&str>,
    ) -> Result<(), Wrong> {
        if self.denied_publishes.contains(&id) {
            return Err(Wrong::DeniedPublish);
        }
        let published = self.publishes.get(&id).ok_or(Wrong::Unknown)?;
        let key = (link, sid, id);
        let owed_at = self
            .owed
            .get(&key)
            .and_then(|owed| owed.iter().position(|(s, _)| s == subject));
        let Some(at) = owed_at else {
            return Err(if published.targets.iter().any(|(a, _)| *a == account) {
                Wrong::NotOwed
            } else {
                Wrong::OtherAccount
            });
        };
        let (from, requested) = (published.account, published.reply.clone());
        let subjects = self.owed.get_mut(&key).ok_or(Wrong::NotOwed)?;
        let (_, account) = subjects.swap_remove(at);
        let via_service = from != account && plan.serves(from, account, &published.subject);
        if subjects.is_empty() {
            self.owed.remove(&key);
        }
        match (via_service, requested, reply) {
            (true, Some(original), Some(r)) if r.starts_with("_R_.") => {
                let route = ResponseRoute {
                    exporter: account,
                    requester: from,
                    reply: original,
                    used: false,
                };
                self.responses.entry(r.to_owned()).or_insert(route);
                Ok(())
            }
            (true, None, None) => Ok(()),
            (false, requested, reply) if requested.as_deref() == reply => Ok(()),
            _ => Err(Wrong::Reply),
        }
    }

    /// `link` closed: its subscriptions end and what it was owed is excused.
    /// Returns how many deliveries were excused.
    pub fn closed(&mut self, link: usize) -> u64 {
        for subs in self.subs.values_mut() {
            subs.retain(|s| s.link != link);
        }
        let mut excused = 0;
        self.owed.retain(|&(l, _, _), subjects| {
            if l == link {
                excused += subjects.len() as u64;
            }
            l != link
        });
        excused
    }

    /// `link` sent a CONNECT again (the node processed it): its
    /// subscriptions end, but what they were owed is already on its way.
    pub fn logged_in_again(&mut self, link: usize) {
        for subs in self.subs.values_mut() {
            subs.retain(|s| s.link != link);
        }
    }

    /// What `link`'s user may not receive from now on (after a reload, or
    /// a CONNECT as another user).
    pub fn denies(&mut self, link: usize, denied: Vec<String>) {
        if denied.is_empty() {
            self.denied.remove(&link);
        } else {
            self.denied.insert(link, denied);
        }
    }

    /// A reload narrowed `link`'s permissions to `denied`: the node removed
    /// the subscriptions `removed` says; what was owed is on its way.
    pub fn narrowed(&mut self, link: usize, denied: Vec<String>, removed: impl Fn(&str) -> bool) {
        for subs in self.subs.values_mut() {
            subs.retain(|s| s.link != link || !removed(&s.pattern));
        }
        self.denies(link, denied);
    }

    /// The subjects `link`'s user may not receive.
    pub fn denied_to(&self, link: usize) -> &[String] {
        self.denied.get(&link).map_or(&[], Vec::as_slice)
    }

    /// The node refused publish `id`: its publisher may not publish there.
    pub fn denied_publish(&mut self, id: u64) {
        self.denied_publishes.insert(id);
    }

    /// A node restarted: every subscription on it is gone.
    pub fn node_restarted(&mut self, node: usize) {
        self.subs.remove(&node);
    }

    /// Responses routed back across accounts so far.
    pub fn responses_routed(&self) -> u64 {
        self.responses.values().filter(|r| r.used).count() as u64
    }

    /// Deliveries still owed, as (link, sid, publish id, subject).
    pub fn outstanding(&self) -> impl Iterator<Item = (usize, u64, u64, &str)> + '_ {
        self.owed.iter().flat_map(|(&(link, sid, id), subjects)| {
            subjects.iter().map(move |(s, _)| (link, sid, id, s.as_str()))
        })
    }
}
