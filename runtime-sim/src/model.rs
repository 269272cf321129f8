//! The reference model the checkers compare the server against.
//!
//! The simulator knows the exact moment the server processes each client
//! operation: the server is a synchronous state machine, so an operation
//! takes effect when the chunk holding its last byte is handed to
//! `handle_received`. The model applies the operation at that same point and
//! computes which subscriptions must receive each published message. Client
//! deliveries are then checked against it: nothing extra, nothing twice, one
//! member per queue group, per-publisher order; and after the run, nothing
//! missing unless the connection it was headed for was closed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::subject::matches;

/// A connection (one simulated TCP stream, `LinkId`) in the simulator.
pub type LinkId = usize;
/// A simulated client, stable across its reconnects.
pub type ClientId = usize;

/// A published message's identity: (publisher client, its sequence number).
/// Carried at the start of every payload so deliveries can be traced back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgKey {
    /// The publishing client.
    pub publisher: ClientId,
    /// Increases with every message that client publishes, across reconnects.
    pub seq: u64,
}

/// A request's identity: (requester client, request number).
pub type ReqKey = (ClientId, u64);

/// A client operation as the model sees it.
#[derive(Clone, Debug)]
pub enum ModelOp {
    /// `SUB`.
    Sub {
        /// Client-chosen id.
        sid: u64,
        /// Filter.
        subject: String,
        /// Queue group.
        queue: Option<String>,
    },
    /// `UNSUB`.
    Unsub {
        /// Client-chosen id.
        sid: u64,
    },
    /// `PUB`/`HPUB`.
    Pub {
        /// Destination.
        subject: String,
        /// Reply subject.
        reply: Option<String>,
        /// Identity.
        key: MsgKey,
        /// Set when this is a request expecting a reply or a 503.
        request: Option<ReqKey>,
    },
}

/// An invariant the run broke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant, as a short stable name.
    pub invariant: &'static str,
    /// What happened.
    pub detail: String,
}

impl Violation {
    fn new(invariant: &'static str, detail: String) -> Self {
        Violation { invariant, detail }
    }
}

#[derive(Clone, Debug)]
struct SubInfo {
    node: usize,
    client: ClientId,
    subject: String,
    queue: Option<String>,
    live: bool,
}

#[derive(Clone, Debug)]
struct QueueExpect {
    candidates: Vec<(LinkId, u64)>,
    delivered_to: Option<(LinkId, u64)>,
    optional: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum ReqWait {
    /// Responders got it; a reply must come back.
    Reply { responders: Vec<LinkId> },
    /// Nobody was subscribed: the server must answer 503 on this sid.
    NoResponders,
    /// Only non-responders matched, or no inbox to answer on.
    Nothing,
}

#[derive(Clone, Debug)]
struct ReqState {
    link: LinkId,
    /// Connections whose subscriptions matched the request.
    matched: Vec<LinkId>,
    wait: ReqWait,
    resolved: bool,
}

/// Counts for the run summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Messages the server accepted.
    pub published: u64,
    /// Deliveries checked.
    pub delivered: u64,
    /// Expected deliveries excused because their connection closed.
    pub excused: u64,
    /// Requests answered by a responder.
    pub replies: u64,
    /// Requests answered with 503.
    pub no_responders: u64,
}

/// Per publishing connection, the sequence numbers owed to one
/// subscription, in order, each with its optional flag.
type Owed = BTreeMap<LinkId, VecDeque<(u64, bool)>>;

/// The model of every node's subscriptions and of every delivery owed.
#[derive(Debug, Default)]
pub struct Model {
    subs: BTreeMap<(LinkId, u64), SubInfo>,
    /// Live subscriptions per node, for matching.
    live_by_node: BTreeMap<usize, BTreeSet<(LinkId, u64)>>,
    /// Per subscription, per publishing connection: sequence numbers owed, in order.
    /// An entry marked optional may be skipped (see [`Model::set_uncertain`]).
    plain: BTreeMap<(LinkId, u64), Owed>,
    queue: BTreeMap<(MsgKey, String), QueueExpect>,
    /// The connection each message was published on: order is promised per
    /// connection, not across a publisher's reconnects.
    origin: BTreeMap<MsgKey, LinkId>,
    last_seq: BTreeMap<(LinkId, u64, LinkId), u64>,
    requests: BTreeMap<ReqKey, ReqState>,
    closed: BTreeSet<LinkId>,
    /// Connections the server has forgotten (closed, or closing and flushing).
    ended: BTreeSet<LinkId>,
    uncertain: bool,
    responders: BTreeSet<ClientId>,
    stats: ModelStats,
}

impl Model {
    /// An empty model.
    pub fn new() -> Self {
        Model::default()
    }

    /// Marks `client` as a responder: requests it receives must be answered.
    pub fn set_responder(&mut self, client: ClientId) {
        self.responders.insert(client);
    }

    /// The counters.
    pub fn stats(&self) -> &ModelStats {
        &self.stats
    }

    /// The server on `node` processed `op` from `client` on `link`.
    pub fn apply(&mut self, node: usize, link: LinkId, client: ClientId, op: ModelOp) {
        match op {
            ModelOp::Sub {
                sid,
                subject,
                queue,
            } => {
                let info = SubInfo {
                    node,
                    client,
                    subject,
                    queue,
                    live: true,
                };
                self.subs.insert((link, sid), info);
                self.live_by_node
                    .entry(node)
                    .or_default()
                    .insert((link, sid));
            }
            ModelOp::Unsub { sid } => self.unsub(node, link, sid),
            ModelOp::Pub {
                subject,
                reply,
                key,
                request,
            } => self.publish(node, link, &subject, reply.as_deref(), key, request),
        }
    }

    fn unsub(&mut self, node: usize, link: LinkId, sid: u64) {
        if let Some(s) = self.subs.get_mut(&(link, sid)) {
            s.live = false;
        }
        if let Some(set) = self.live_by_node.get_mut(&node) {
            set.remove(&(link, sid));
        }
    }

    fn publish(
        &mut self,
        node: usize,
        link: LinkId,
        subject: &str,
        reply: Option<&str>,
        key: MsgKey,
        request: Option<ReqKey>,
    ) {
        self.stats.published += 1;
        let mut groups: BTreeMap<&str, Vec<(LinkId, u64)>> = BTreeMap::new();
        let mut any = false;
        let mut responders = Vec::new();
        let mut matched = Vec::new();
        let live = self.live_by_node.get(&node).into_iter().flatten();
        for &(l, sid) in live {
            let s = &self.subs[&(l, sid)];
            if !matches(&s.subject, subject) {
                continue;
            }
            any = true;
            matched.push(l);
            if self.responders.contains(&s.client) {
                responders.push(l);
            }
            match &s.queue {
                Some(q) => groups.entry(q.as_str()).or_default().push((l, sid)),
                None => {
                    let q = self
                        .plain
                        .entry((l, sid))
                        .or_default()
                        .entry(link)
                        .or_default();
                    q.push_back((key.seq, self.uncertain));
                }
            }
        }
        if any {
            self.origin.insert(key, link);
        }
        for (group, candidates) in groups {
            let e = QueueExpect {
                candidates,
                delivered_to: None,
                optional: self.uncertain,
            };
            self.queue.insert((key, group.to_owned()), e);
        }
        if let Some(req) = request {
            let wait = if self.uncertain {
                ReqWait::Nothing
            } else if !responders.is_empty() {
                ReqWait::Reply { responders }
            } else if !any && reply.is_some_and(|r| self.has_live_match(node, link, r)) {
                ReqWait::NoResponders
            } else {
                ReqWait::Nothing
            };
            self.requests.insert(
                req,
                ReqState {
                    link,
                    matched,
                    wait,
                    resolved: false,
                },
            );
        }
    }

    fn has_live_match(&self, node: usize, link: LinkId, subject: &str) -> bool {
        let live = self.live_by_node.get(&node).into_iter().flatten();
        live.filter(|(l, _)| *l == link)
            .any(|k| matches(&self.subs[k].subject, subject))
    }

    /// The server forgot `link` (it sent Close) but is still flushing what
    /// it transmitted: no new message is owed to it, those already owed may
    /// still arrive.
    pub fn link_ended(&mut self, node: usize, link: LinkId) {
        self.ended.insert(link);
        let keys: Vec<(LinkId, u64)> = self
            .subs
            .range((link, 0)..=(link, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for (l, sid) in keys {
            self.unsub(node, l, sid);
        }
    }

    /// `link` closed (for whatever reason): what was owed to it is excused.
    pub fn link_closed(&mut self, node: usize, link: LinkId) {
        self.closed.insert(link);
        self.link_ended(node, link);
        let keys: Vec<(LinkId, u64)> = self
            .subs
            .range((link, 0)..=(link, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for (l, sid) in keys {
            if let Some(owed) = self.plain.remove(&(l, sid)) {
                self.stats.excused += owed.values().map(|q| q.len() as u64).sum::<u64>();
            }
        }
    }

    /// The node crashed or restarted: none of its subscriptions survive.
    /// (Links are closed one by one by the caller.)
    pub fn node_reset(&mut self, node: usize) {
        self.live_by_node.remove(&node);
    }

    /// Marks the operations applied from now on as uncertain: the server
    /// closed their connection while processing the batch that held them,
    /// so it may or may not have carried them out. What they would owe is
    /// allowed but not required.
    pub fn set_uncertain(&mut self, uncertain: bool) {
        self.uncertain = uncertain;
    }

    /// A client on `link` received a message on `sid` identified by `key`.
    pub fn delivered(&mut self, link: LinkId, sid: u64, key: MsgKey) -> Result<(), Violation> {
        self.stats.delivered += 1;
        let Some(sub) = self.subs.get(&(link, sid)) else {
            return Err(Violation::new(
                "no-extra-delivery",
                format!("link {link} got {key:?} on unknown sid {sid}"),
            ));
        };
        let Some(&from) = self.origin.get(&key) else {
            return Err(Violation::new(
                "no-extra-delivery",
                format!("link {link} sid {sid} got {key:?}, which matched nothing"),
            ));
        };
        let order_key = (link, sid, from);
        if let Some(&last) = self.last_seq.get(&order_key) {
            if key.seq == last {
                let d = format!("link {link} sid {sid} got {key:?} twice in a row");
                return Err(Violation::new("no-extra-delivery", d));
            }
            if key.seq < last {
                let d = format!(
                    "link {link} sid {sid} got {key:?} after seq {last} from the same publisher"
                );
                return Err(Violation::new("per-publisher-order", d));
            }
        }
        self.last_seq.insert(order_key, key.seq);
        match sub.queue.clone() {
            None => self.delivered_plain(link, sid, key, from),
            Some(group) => self.delivered_queue(link, sid, key, group),
        }
    }

    fn delivered_plain(
        &mut self,
        link: LinkId,
        sid: u64,
        key: MsgKey,
        from: LinkId,
    ) -> Result<(), Violation> {
        let owed = self
            .plain
            .get_mut(&(link, sid))
            .and_then(|m| m.get_mut(&from));
        let Some(owed) = owed else {
            let live = self.subs.get(&(link, sid)).map(|s| s.live);
            let d = format!("link {link} sid {sid} (live: {live:?}) got {key:?} published on link {from}, which it was never owed");
            return Err(Violation::new("no-extra-delivery", d));
        };
        match owed.iter().position(|&(s, _)| s == key.seq) {
            Some(i) if owed.iter().take(i).all(|&(_, optional)| optional) => {
                owed.drain(..=i);
                Ok(())
            }
            Some(_) => {
                let first = owed
                    .iter()
                    .find(|(_, optional)| !optional)
                    .map_or(0, |e| e.0);
                let d = format!(
                    "link {link} sid {sid} got {key:?} but seq {first} before it never arrived"
                );
                Err(Violation::new("no-lost-message", d))
            }
            None => {
                let d = format!(
                    "link {link} sid {sid} got {key:?}, not owed (duplicate or never matched)"
                );
                Err(Violation::new("no-extra-delivery", d))
            }
        }
    }

    fn delivered_queue(
        &mut self,
        link: LinkId,
        sid: u64,
        key: MsgKey,
        group: String,
    ) -> Result<(), Violation> {
        let Some(e) = self.queue.get_mut(&(key, group.clone())) else {
            let d = format!(
                "link {link} sid {sid} (queue {group}) got {key:?}, never published to the group"
            );
            return Err(Violation::new("no-extra-delivery", d));
        };
        if let Some(prev) = e.delivered_to {
            let d = format!(
                "queue {group} got {key:?} twice: {prev:?} and {:?}",
                (link, sid)
            );
            return Err(Violation::new("queue-group-exactly-one", d));
        }
        if !e.candidates.contains(&(link, sid)) {
            let d = format!(
                "queue {group}: {key:?} went to {:?}, not a member when published",
                (link, sid)
            );
            return Err(Violation::new("queue-group-exactly-one", d));
        }
        e.delivered_to = Some((link, sid));
        Ok(())
    }

    /// Another live member of the queue group `(link, sid)` belongs to, on
    /// another connection: where a broken server might deliver a second copy.
    pub fn other_queue_member(&self, link: LinkId, sid: u64) -> Option<(LinkId, u64)> {
        let me = self.subs.get(&(link, sid))?;
        let group = me.queue.as_ref()?;
        let live = self.live_by_node.get(&me.node)?;
        live.iter()
            .find(|&&(l, s)| l != link && self.subs[&(l, s)].queue.as_ref() == Some(group))
            .copied()
    }

    /// A reply to request `req` arrived at its requester.
    pub fn replied(&mut self, req: ReqKey) {
        if let Some(r) = self.requests.get_mut(&req) {
            if !r.resolved {
                self.stats.replies += 1;
            }
            r.resolved = true;
        }
    }

    /// The requester got a 503 no-responders status for `req`.
    pub fn no_responders(&mut self, req: ReqKey) -> Result<(), Violation> {
        let Some(r) = self.requests.get_mut(&req) else {
            return Err(Violation::new(
                "request-reply",
                format!("503 for unknown request {req:?}"),
            ));
        };
        // A subscriber the server closed in the same batch as the request
        // (a slow consumer) no longer counts as a match: the model cannot
        // order the two inside one `handle_received` call.
        let matches_gone =
            !r.matched.is_empty() && r.matched.iter().all(|l| self.ended.contains(l));
        if !(r.wait == ReqWait::NoResponders || matches_gone) || r.resolved {
            let d = format!(
                "503 for request {req:?}, which was {:?} (resolved: {})",
                r.wait, r.resolved
            );
            return Err(Violation::new("request-reply", d));
        }
        r.resolved = true;
        self.stats.no_responders += 1;
        Ok(())
    }

    /// After the run has drained: everything owed to a connection that is
    /// still open must have arrived.
    pub fn final_check(&mut self) -> Result<(), Violation> {
        for ((link, sid), per_pub) in &self.plain {
            let missing = per_pub
                .iter()
                .find_map(|(from, q)| q.iter().find(|e| !e.1).map(|e| (from, e.0)));
            if let Some((from, seq)) = missing {
                let d =
                    format!("link {link} sid {sid} never got seq {seq} published on link {from}");
                return Err(Violation::new("no-lost-message", d));
            }
        }
        for ((key, group), e) in &self.queue {
            let excused = e.candidates.iter().any(|(l, _)| self.closed.contains(l));
            if e.delivered_to.is_none() && !excused && !e.optional {
                let d = format!(
                    "queue {group} never got {key:?} (members {:?})",
                    e.candidates
                );
                return Err(Violation::new("no-lost-message", d));
            }
        }
        self.check_requests()
    }

    fn check_requests(&self) -> Result<(), Violation> {
        for (req, r) in &self.requests {
            if r.resolved || self.closed.contains(&r.link) {
                continue;
            }
            let missing = match &r.wait {
                ReqWait::Reply { responders } => {
                    !responders.iter().any(|l| self.closed.contains(l))
                }
                ReqWait::NoResponders => true,
                ReqWait::Nothing => false,
            };
            if missing {
                let d = format!("request {req:?} ({:?}) never answered", r.wait);
                return Err(Violation::new("request-reply", d));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(m: &mut Model, link: LinkId, sid: u64, subject: &str, queue: Option<&str>) {
        let op = ModelOp::Sub {
            sid,
            subject: subject.into(),
            queue: queue.map(Into::into),
        };
        m.apply(0, link, link, op);
    }

    fn publish(m: &mut Model, link: LinkId, subject: &str, seq: u64) -> MsgKey {
        let key = MsgKey {
            publisher: link,
            seq,
        };
        let op = ModelOp::Pub {
            subject: subject.into(),
            reply: None,
            key,
            request: None,
        };
        m.apply(0, link, link, op);
        key
    }

    #[test]
    fn plain_deliveries_must_match_exactly_once_in_order() {
        let mut m = Model::new();
        sub(&mut m, 1, 1, "a.*", None);
        let k1 = publish(&mut m, 9, "a.b", 1);
        let k2 = publish(&mut m, 9, "a.b", 2);
        publish(&mut m, 9, "b.b", 3);
        assert!(m.final_check().is_err(), "two owed");
        assert_eq!(
            m.delivered(1, 1, k2).unwrap_err().invariant,
            "no-lost-message"
        );
        let mut m2 = Model::new();
        sub(&mut m2, 1, 1, "a.*", None);
        let k1b = publish(&mut m2, 9, "a.b", 1);
        m2.delivered(1, 1, k1b).unwrap();
        assert_eq!(
            m2.delivered(1, 1, k1b).unwrap_err().invariant,
            "no-extra-delivery"
        );
        let _ = k1;
    }

    #[test]
    fn unsubscribed_and_closed_links_are_not_owed() {
        let mut m = Model::new();
        sub(&mut m, 1, 1, ">", None);
        sub(&mut m, 2, 1, ">", None);
        m.apply(0, 1, 1, ModelOp::Unsub { sid: 1 });
        let k = publish(&mut m, 9, "x", 1);
        assert_eq!(
            m.delivered(1, 1, k).unwrap_err().invariant,
            "no-extra-delivery"
        );
        m.link_closed(0, 2);
        m.final_check().unwrap();
    }

    #[test]
    fn queue_group_exactly_one_member() {
        let mut m = Model::new();
        sub(&mut m, 1, 1, "q", Some("g"));
        sub(&mut m, 2, 1, "q", Some("g"));
        let k = publish(&mut m, 9, "q", 1);
        assert!(m.final_check().is_err());
        m.delivered(2, 1, k).unwrap();
        m.final_check().unwrap();
        assert_eq!(
            m.delivered(1, 1, k).unwrap_err().invariant,
            "queue-group-exactly-one"
        );
    }

    #[test]
    fn requests_need_a_reply_or_a_503() {
        let mut m = Model::new();
        m.set_responder(5);
        sub(&mut m, 1, 1, "_INBOX.1.*", None);
        let req = |m: &mut Model, n| {
            let key = MsgKey {
                publisher: 1,
                seq: n,
            };
            let op = ModelOp::Pub {
                subject: "svc".into(),
                reply: Some(format!("_INBOX.1.{n}")),
                key,
                request: Some((1, n)),
            };
            m.apply(0, 1, 1, op);
        };
        req(&mut m, 1);
        assert_eq!(m.final_check().unwrap_err().invariant, "request-reply");
        m.no_responders((1, 1)).unwrap();
        m.final_check().unwrap();
        m.apply(
            0,
            5,
            5,
            ModelOp::Sub {
                sid: 1,
                subject: "svc".into(),
                queue: Some("w".into()),
            },
        );
        req(&mut m, 2);
        assert_eq!(
            m.no_responders((1, 2)).unwrap_err().invariant,
            "request-reply"
        );
        m.replied((1, 2));
        m.delivered(
            5,
            1,
            MsgKey {
                publisher: 1,
                seq: 2,
            },
        )
        .unwrap();
        m.final_check().unwrap();
    }
}
