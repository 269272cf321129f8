//! A user's publish and subscribe permissions, compiled once at CONNECT and
//! checked per operation, with nats-server's semantics:
//!
//! - no allow list allows everything; a deny match always wins;
//! - subjects are matched token by token with the permission as the
//!   pattern and the client's subject taken literally (so `foo.*` allows a
//!   subscription to `foo.>`, as in nats-server);
//! - subscribe entries may carry a queue (`"foo.> workers"`): such an entry
//!   only allows (or denies) queue subscriptions in a matching queue group;
//! - `allow_responses` lets a client publish to the reply subjects of the
//!   requests it received, a bounded number of times within a time limit.
//!
//! Publish decisions are cached per client (bounded), so the PUB hot path
//! does not re-match patterns for every message.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::config::{Permissions, ResponsePermission, SubjectPermission};
use crate::subject::subject_matches;
use crate::time::Instant;

/// Decisions remembered per client before the cache is cleared.
pub const DECISION_CACHE_MAX: usize = 128;

/// Reply subjects one client may hold grants for at once. nats-server keeps
/// them unbounded (pruned by age); natrix bounds them, and when the table
/// is full of live grants it refuses the new one rather than forget an
/// older live one, so a flood of requests from one requester cannot take
/// away the answers another requester is owed.
pub const RESPONSE_GRANTS_MAX: usize = 65_536;

/// One permission entry: a subject pattern and, for subscriptions, a queue pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    subject: Bytes,
    queue: Option<Bytes>,
}

impl Entry {
    fn parse(text: &str) -> Entry {
        let mut parts = text.split_whitespace();
        let subject = Bytes::copy_from_slice(parts.next().unwrap_or_default().as_bytes());
        let queue = parts.next().map(|q| Bytes::copy_from_slice(q.as_bytes()));
        Entry { subject, queue }
    }

    /// Does this queue entry name `queue`? (A queue pattern may use
    /// wildcards, and `*`/`>` are also valid queue names taken literally.)
    fn names_queue(&self, queue: &[u8]) -> bool {
        self.queue.as_deref().is_some_and(|pattern| pattern == queue || subject_matches(pattern, queue))
    }
}

/// Allow and deny lists of one direction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Rules {
    /// `None`: everything not denied is allowed.
    allow: Option<Vec<Entry>>,
    deny: Vec<Entry>,
}

impl Rules {
    fn compile(p: &SubjectPermission, empty_allow_denies_all: bool) -> Rules {
        let allow = if p.allow.is_empty() && !empty_allow_denies_all {
            None
        } else {
            Some(p.allow.iter().map(|s| Entry::parse(s)).collect())
        };
        Rules {
            allow,
            deny: p.deny.iter().map(|s| Entry::parse(s)).collect(),
        }
    }

    /// nats-server's rule: a plain entry matching the subject allows it;
    /// but once a queue entry matches the subject, a queue subscription must
    /// be in a queue one of them names, whatever the plain entries say.
    fn allows(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let allowed = self.allow.as_ref().is_none_or(|list| {
            let mut matching = list.iter().filter(|e| subject_matches(&e.subject, subject));
            match queue {
                None => matching.any(|e| e.queue.is_none()),
                Some(q) => {
                    let (mut plain, mut queued, mut named) = (false, false, false);
                    for e in matching {
                        match e.queue {
                            None => plain = true,
                            Some(_) => {
                                queued = true;
                                named |= e.names_queue(q);
                            }
                        }
                    }
                    if queued { named } else { plain }
                }
            }
        });
        allowed && !self.denies(subject, queue)
    }

    /// A plain deny entry denies queue subscriptions too; a queue entry
    /// denies only the queue groups it names.
    fn denies(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        self.deny.iter().any(|e| {
            subject_matches(&e.subject, subject)
                && match (&e.queue, queue) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(_), Some(q)) => e.names_queue(q),
                }
        })
    }

    fn has_queue_denies(&self) -> bool {
        self.deny.iter().any(|e| e.queue.is_some())
    }
}

/// A reply subject a client may publish to, from a request it received.
#[derive(Clone, Copy, Debug)]
struct Grant {
    /// Responses sent on it so far.
    used: u32,
    granted_at: Instant,
    /// Which grant of this reply subject it is (a request reusing a reply
    /// subject grants anew); the expiry queue names grants by it.
    seq: u64,
}

/// The reply subjects a client under `allow_responses` may answer, and
/// when each stops being answerable. Every grant lasts the same time, so
/// grant order is expiry order: the oldest are pruned from the front of a
/// queue, in constant time per grant.
#[derive(Clone, Debug)]
struct ResponseGrants {
    rule: ResponsePermission,
    grants: BTreeMap<Bytes, Grant>,
    /// (reply, seq) in grant order; entries whose seq is no longer the
    /// reply's are stale and skipped.
    expiry: VecDeque<(Bytes, u64)>,
    next_seq: u64,
}

impl ResponseGrants {
    fn new(rule: ResponsePermission) -> Self {
        ResponseGrants { rule, grants: BTreeMap::new(), expiry: VecDeque::new(), next_seq: 0 }
    }

    fn expired(&self, g: &Grant, now: Instant) -> bool {
        // Allowed up to and including the moment the expiry falls, as nats-server.
        self.rule.expires.is_some_and(|ttl| now.saturating_duration_since(g.granted_at) > ttl)
    }

    /// Forgets the grants that expired by `now`, oldest first.
    fn prune(&mut self, now: Instant) {
        while let Some((reply, seq)) = self.expiry.front() {
            match self.grants.get(reply) {
                Some(g) if g.seq == *seq && !self.expired(g, now) => break,
                Some(g) if g.seq == *seq => {
                    self.grants.remove(reply);
                }
                _ => {}
            }
            self.expiry.pop_front();
        }
        // Re-granted replies leave stale entries behind; keep the queue
        // within a constant factor of the table.
        if self.expiry.len() > 2 * RESPONSE_GRANTS_MAX {
            let grants = &self.grants;
            self.expiry.retain(|(reply, seq)| grants.get(reply).is_some_and(|g| g.seq == *seq));
        }
    }

    /// Lets the client answer `reply`, unless the table is full of live grants.
    fn grant(&mut self, now: Instant, reply: &[u8]) {
        self.prune(now);
        if self.grants.len() >= RESPONSE_GRANTS_MAX && !self.grants.contains_key(reply) {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let reply = Bytes::copy_from_slice(reply);
        self.grants.insert(reply.clone(), Grant { used: 0, granted_at: now, seq });
        if self.rule.expires.is_some() {
            self.expiry.push_back((reply, seq));
        }
    }

    /// Uses up one response on `subject`, if a live grant allows it.
    fn take(&mut self, now: Instant, subject: &[u8]) -> bool {
        let Some(g) = self.grants.get(subject).copied() else { return false };
        let used = g.used.saturating_add(1);
        let spent = self.rule.max_msgs.is_some_and(|max| used > max);
        if spent || self.expired(&g, now) {
            self.grants.remove(subject);
            return false;
        }
        if self.rule.max_msgs == Some(used) {
            // The last response it allows: nothing more to keep.
            self.grants.remove(subject);
        } else if let Some(g) = self.grants.get_mut(subject) {
            g.used = used;
        }
        true
    }
}

/// One client's compiled permissions and its decision caches.
#[derive(Clone, Debug)]
pub struct ClientPermissions {
    publish: Option<Rules>,
    subscribe: Option<Rules>,
    responses: Option<ResponseGrants>,
    publish_cache: BTreeMap<Bytes, bool>,
    deliver_cache: BTreeMap<Bytes, bool>,
    /// An MQTT connection, whose session uses `$MQTT.` and `$JS.` subjects
    /// on the device's behalf (see [`ClientPermissions::for_mqtt`]).
    mqtt: bool,
}

/// Subject prefixes under which an MQTT session stores a device's messages:
/// the rest of the subject is what the device published to.
const MQTT_STORED: [&[u8]; 2] = [b"$MQTT.msgs.", b"$MQTT.rmsgs."];

impl ClientPermissions {
    /// Compiles the configured permissions.
    pub fn new(p: &Permissions) -> ClientPermissions {
        // With allow_responses, a missing publish allow list means "allow
        // nothing but responses", as nats-server turns off the blanket allow.
        let responses = p.allow_responses.clone();
        let publish = match (&p.publish, &responses) {
            (Some(s), _) => Some(Rules::compile(s, responses.is_some())),
            (None, Some(_)) => Some(Rules::compile(&SubjectPermission::default(), true)),
            (None, None) => None,
        };
        ClientPermissions {
            publish,
            subscribe: p.subscribe.as_ref().map(|s| Rules::compile(s, false)),
            responses: responses.map(ResponseGrants::new),
            publish_cache: BTreeMap::new(),
            deliver_cache: BTreeMap::new(),
            mqtt: false,
        }
    }

    /// The permissions of an MQTT connection. nats-server's MQTT sessions
    /// reach JetStream through an internal client of the account, so a
    /// device's permissions apply only to what the device publishes and
    /// subscribes to; natrix's session speaks for the device on its own
    /// connection, so its internal subjects are let through here: `$MQTT.`
    /// and `$JS.` publishes (a store under `$MQTT.msgs.<subject>` or
    /// `$MQTT.rmsgs.<subject>` is checked as a publish to `<subject>`),
    /// `$MQTT.` subscriptions and deliveries. The session itself keeps the
    /// device off these subjects.
    pub fn for_mqtt(mut self) -> ClientPermissions {
        self.mqtt = true;
        self
    }

    /// May the client publish to `subject` at `now`? Uses up a response grant
    /// when that is what allows it.
    pub fn can_publish(&mut self, now: Instant, subject: &[u8]) -> bool {
        if self.mqtt {
            if let Some(rest) = MQTT_STORED.iter().find_map(|p| subject.strip_prefix(*p)) {
                return self.can_publish(now, rest);
            }
            if subject.starts_with(b"$MQTT.") || subject.starts_with(b"$JS.") {
                return true;
            }
        }
        self.publish_rules_allow(subject)
            || self.responses.as_mut().is_some_and(|r| r.take(now, subject))
    }

    /// The publish allow and deny lists alone, without response grants.
    fn publish_rules_allow(&mut self, subject: &[u8]) -> bool {
        let Some(rules) = &self.publish else {
            return true;
        };
        if let Some(&allowed) = self.publish_cache.get(subject) {
            return allowed;
        }
        let allowed = rules.allows(subject, None);
        remember(&mut self.publish_cache, subject, allowed);
        allowed
    }

    /// May the client subscribe to `subject` (in `queue`)?
    pub fn can_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        if self.mqtt && subject.starts_with(b"$MQTT.") {
            return true;
        }
        self.subscribe
            .as_ref()
            .is_none_or(|r| r.allows(subject, queue))
    }

    /// May a message on `subject` be delivered to this client's
    /// subscription (in `queue`)? A wildcard subscription does not receive
    /// subjects its deny list names, nor a queue subscription what is denied
    /// to its queue group.
    pub fn can_receive(&mut self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let Some(rules) = &self.subscribe else {
            return true;
        };
        if self.mqtt && subject.starts_with(b"$MQTT.") {
            return true;
        }
        if rules.deny.is_empty() {
            return true;
        }
        if queue.is_some() && rules.has_queue_denies() {
            // Rare: queue-specific deny entries. The list is short; no cache.
            return !rules.denies(subject, queue);
        }
        if let Some(&ok) = self.deliver_cache.get(subject) {
            return ok;
        }
        let ok = !rules.denies(subject, None);
        remember(&mut self.deliver_cache, subject, ok);
        ok
    }

    /// True when the client answers requests under `allow_responses`.
    pub fn tracks_responses(&self) -> bool {
        self.responses.is_some()
    }

    /// The client received a request with reply subject `reply`: let it
    /// answer, unless its publish permissions allow that subject anyway.
    pub fn grant_response(&mut self, now: Instant, reply: &[u8]) {
        if self.responses.is_none() || self.publish_rules_allow(reply) {
            return;
        }
        if let Some(r) = self.responses.as_mut() {
            r.grant(now, reply);
        }
    }
}

/// Caches a decision, clearing the cache when it is full (cheap and bounded;
/// a hot subject is re-learned on its next message).
fn remember(cache: &mut BTreeMap<Bytes, bool>, subject: &[u8], decision: bool) {
    if cache.len() >= DECISION_CACHE_MAX {
        cache.clear();
    }
    cache.insert(Bytes::copy_from_slice(subject), decision);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sp(allow: &[&str], deny: &[&str]) -> SubjectPermission {
        SubjectPermission {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn deny_wins_and_wildcards_match() {
        let p = Permissions {
            publish: Some(sp(&["foo.>"], &["foo.bar"])),
            subscribe: Some(sp(&["foo.*", "q.> grp"], &["foo.baz"])),
            allow_responses: None,
        };
        let mut c = ClientPermissions::new(&p);
        let now = Instant::ZERO;
        assert!(c.can_publish(now, b"foo.x"));
        assert!(!c.can_publish(now, b"foo.bar"));
        assert!(
            !c.can_publish(now, b"foo.bar"),
            "cached decision is the same"
        );
        assert!(!c.can_publish(now, b"bar"));
        assert!(c.can_subscribe(b"foo.x", None));
        assert!(
            c.can_subscribe(b"foo.>", None),
            "nats-server matches the subscription subject literally"
        );
        assert!(!c.can_subscribe(b"foo.baz", None));
        assert!(!c.can_subscribe(b"q.x", None));
        assert!(c.can_subscribe(b"q.x", Some(b"grp")));
        assert!(!c.can_subscribe(b"q.x", Some(b"other")));
        assert!(!c.can_receive(b"foo.baz", None));
        assert!(c.can_receive(b"foo.x", None));
    }

    #[test]
    fn responses_are_bounded_in_count_and_time() {
        let p = Permissions {
            publish: Some(SubjectPermission::default()),
            subscribe: None,
            allow_responses: Some(ResponsePermission {
                max_msgs: Some(2),
                expires: Some(Duration::from_secs(1)),
            }),
        };
        let mut c = ClientPermissions::new(&p);
        let t0 = Instant::ZERO;
        assert!(!c.can_publish(t0, b"_INBOX.1"));
        c.grant_response(t0, b"_INBOX.1");
        assert!(c.can_publish(t0, b"_INBOX.1"));
        assert!(c.can_publish(t0, b"_INBOX.1"));
        assert!(!c.can_publish(t0, b"_INBOX.1"));
        c.grant_response(t0, b"_INBOX.2");
        assert!(!c.can_publish(t0 + Duration::from_secs(2), b"_INBOX.2"));
    }

    #[test]
    fn cache_is_bounded() {
        let p = Permissions {
            publish: Some(sp(&["a.*"], &[])),
            ..Permissions::default()
        };
        let mut c = ClientPermissions::new(&p);
        for i in 0..1000 {
            let subject = format!("a.{i}");
            assert!(c.can_publish(Instant::ZERO, subject.as_bytes()));
            assert!(c.publish_cache.len() <= DECISION_CACHE_MAX);
        }
    }

    fn responder(max: i64, expires: Duration) -> ClientPermissions {
        let ns = i64::try_from(expires.as_nanos()).unwrap();
        ClientPermissions::new(&Permissions {
            publish: None,
            subscribe: None,
            allow_responses: Some(ResponsePermission::from_limits(max, ns)),
        })
    }

    #[test]
    fn zero_means_the_defaults_and_negative_means_unlimited() {
        let t0 = Instant::ZERO;
        // max 3, expires 0: nats-server's two minutes.
        let mut c = responder(3, Duration::ZERO);
        c.grant_response(t0, b"inbox.1");
        assert!(c.can_publish(t0 + Duration::from_secs(120), b"inbox.1"));
        assert!(!c.can_publish(t0 + Duration::from_secs(125), b"inbox.1"));
        // max 0: one response.
        let mut c = responder(0, Duration::from_secs(60));
        c.grant_response(t0, b"inbox.1");
        assert!(c.can_publish(t0, b"inbox.1"));
        assert!(!c.can_publish(t0, b"inbox.1"));
        // max -1: any number, within the time.
        let mut c = responder(-1, Duration::from_secs(60));
        c.grant_response(t0, b"inbox.1");
        for _ in 0..1000 {
            assert!(c.can_publish(t0, b"inbox.1"));
        }
        assert!(!c.can_publish(t0 + Duration::from_secs(61), b"inbox.1"));
        assert!(!c.can_publish(t0, b"inbox.2"), "only reply subjects it was given");
    }

    #[test]
    fn a_full_table_refuses_the_newcomer_and_keeps_the_live_grants() {
        let t0 = Instant::ZERO;
        let mut c = responder(1, Duration::from_secs(60));
        for i in 0..100 {
            c.grant_response(t0, format!("cin.{i}").as_bytes());
        }
        for i in 0..RESPONSE_GRANTS_MAX + 1000 {
            c.grant_response(t0, format!("zin.{i}").as_bytes());
        }
        for i in 0..100 {
            assert!(c.can_publish(t0, format!("cin.{i}").as_bytes()), "cin.{i}");
        }
        assert!(!c.can_publish(t0, format!("zin.{}", RESPONSE_GRANTS_MAX + 500).as_bytes()));
        // Once the old grants expire, new ones are taken again.
        let later = t0 + Duration::from_secs(61);
        c.grant_response(later, b"new.1");
        assert!(c.can_publish(later, b"new.1"));
        let r = c.responses.as_ref().unwrap();
        assert!(r.grants.len() <= RESPONSE_GRANTS_MAX && r.expiry.len() <= 2 * RESPONSE_GRANTS_MAX + 1);
    }

    #[test]
    fn regranting_one_reply_keeps_the_queue_bounded() {
        let t0 = Instant::ZERO;
        let mut c = responder(-1, Duration::from_secs(3600));
        for i in 0..3 * RESPONSE_GRANTS_MAX as u64 {
            c.grant_response(t0 + Duration::from_nanos(i), b"same");
        }
        let r = c.responses.as_ref().unwrap();
        assert_eq!(r.grants.len(), 1);
        assert!(r.expiry.len() <= 2 * RESPONSE_GRANTS_MAX + 1);
        assert!(c.can_publish(t0, b"same"));
    }

    #[test]
    fn a_reply_the_publish_rules_allow_takes_no_grant() {
        let mut c = ClientPermissions::new(&Permissions {
            publish: Some(sp(&["ok.>"], &[])),
            subscribe: None,
            allow_responses: Some(ResponsePermission::default()),
        });
        c.grant_response(Instant::ZERO, b"ok.reply");
        assert!(c.responses.as_ref().unwrap().grants.is_empty());
        assert!(c.can_publish(Instant::ZERO, b"ok.reply"));
    }

    #[test]
    fn queue_entries_decide_for_queue_subscriptions() {
        // allow ["foo", "foo workers"]: a queue entry matches foo, so a
        // queue subscription must be in "workers".
        let c = ClientPermissions::new(&Permissions {
            publish: None,
            subscribe: Some(sp(&["foo", "foo workers", "bar.*"], &["bar.secret", "bar.* grp"])),
            allow_responses: None,
        });
        assert!(c.can_subscribe(b"foo", None));
        assert!(c.can_subscribe(b"foo", Some(b"workers")));
        assert!(!c.can_subscribe(b"foo", Some(b"billing")));
        assert!(c.can_subscribe(b"bar.x", Some(b"any")), "only plain entries match: any queue");
        assert!(!c.can_subscribe(b"bar.x", Some(b"grp")), "denied to that queue");
        assert!(c.can_subscribe(b"bar.x", None), "a queue deny entry leaves plain subscriptions");
        assert!(!c.can_subscribe(b"bar.secret", Some(b"any")));
    }

    #[test]
    fn queue_deny_entries_filter_deliveries_to_that_queue() {
        let mut c = ClientPermissions::new(&Permissions {
            publish: None,
            subscribe: Some(sp(&[], &["foo.> grp", "never"])),
            allow_responses: None,
        });
        assert!(c.can_subscribe(b">", Some(b"grp")), "the subscription itself is allowed");
        assert!(!c.can_receive(b"foo.x", Some(b"grp")));
        assert!(c.can_receive(b"foo.x", Some(b"other")));
        assert!(c.can_receive(b"foo.x", None));
        assert!(!c.can_receive(b"never", None));
        assert!(!c.can_receive(b"never", Some(b"grp")));
        assert!(c.can_receive(b"bar", Some(b"grp")));
    }

    #[test]
    fn an_mqtt_session_uses_its_own_subjects_and_stores_only_what_the_device_may_publish() {
        let p = Permissions {
            publish: Some(sp(&["ok.>"], &[])),
            subscribe: Some(sp(&["ok.>"], &[">"])),
            allow_responses: None,
        };
        let t0 = Instant::ZERO;
        let mut plain = ClientPermissions::new(&p);
        assert!(!plain.can_publish(t0, b"$JS.API.STREAM.INFO.x"));
        assert!(!plain.can_subscribe(b"$MQTT.sub.abc", None));
        let mut c = ClientPermissions::new(&p).for_mqtt();
        assert!(c.can_publish(t0, b"$JS.API.STREAM.INFO.x"));
        assert!(c.can_publish(t0, b"$MQTT.qos2.in.h.1"));
        assert!(c.can_publish(t0, b"$MQTT.msgs.ok.a"));
        assert!(!c.can_publish(t0, b"$MQTT.msgs.secret.a"), "stored as the publish it is");
        assert!(!c.can_publish(t0, b"$MQTT.rmsgs.secret"));
        assert!(!c.can_publish(t0, b"secret"));
        assert!(c.can_subscribe(b"$MQTT.sub.abc", None));
        assert!(c.can_receive(b"$MQTT.JSA.x.1", None));
        assert!(!c.can_subscribe(b"secret", None));
        assert!(!c.can_receive(b"secret", None));
    }
}
