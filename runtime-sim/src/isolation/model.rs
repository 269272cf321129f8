//! What every client is owed: the live subscriptions of each node, in the
//! order the node processed them, and the deliveries each processed publish
//! makes according to the account [`Plan`]. The checker settles every MSG a
//! client receives against it.

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
}

/// The model of one run.
#[derive(Debug, Default)]
pub struct Model {
    subs: BTreeMap<usize, Vec<LiveSub>>,
    publishes: BTreeMap<u64, Published>,
    /// (link, sid, publish id) → subjects still owed, one per path.
    owed: BTreeMap<(usize, u64, u64), Vec<String>>,
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
    /// in `account`: records whom it owes.
    pub fn published(&mut self, plan: &Plan, node: usize, account: usize, id: u64, subject: &str) {
        let targets = plan.targets(account, subject);
        for (to_account, delivered) in &targets {
            for s in self.subs.get(&node).into_iter().flatten() {
                if s.account == *to_account && matches(&s.pattern, delivered) {
                    self.owed
                        .entry((s.link, s.sid, id))
                        .or_default()
                        .push(delivered.clone());
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
            },
        );
    }

    /// The publish `id`, if a node processed it.
    pub fn publish(&self, id: u64) -> Option<&Published> {
        self.publishes.get(&id)
    }

    /// `link` (a client in `account`) received publish `id` under `subject`
    /// for `sid`: settles it, or says why it is wrong.
    pub fn delivered(
        &mut self,
        link: usize,
        account: usize,
        sid: u64,
        id: u64,
        subject: &str,
    ) -> Result<(), Wrong> {
        let published = self.publish(id).ok_or(Wrong::Unknown)?;
        if !published.targets.iter().any(|(a, _)| *a == account) {
            return Err(Wrong::OtherAccount);
        }
        let key = (link, sid, id);
        let subjects = self.owed.get_mut(&key).ok_or(Wrong::NotOwed)?;
        let at = subjects
            .iter()
            .position(|s| s == subject)
            .ok_or(Wrong::NotOwed)?;
        subjects.swap_remove(at);
        if subjects.is_empty() {
            self.owed.remove(&key);
        }
        Ok(())
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

    /// A node restarted: every subscription on it is gone.
    pub fn node_restarted(&mut self, node: usize) {
        self.subs.remove(&node);
    }

    /// Deliveries still owed, as (link, sid, publish id, subject).
    pub fn outstanding(&self) -> impl Iterator<Item = (usize, u64, u64, &str)> + '_ {
        self.owed.iter().flat_map(|(&(link, sid, id), subjects)| {
            subjects.iter().map(move |s| (link, sid, id, s.as_str()))
        })
    }
}
