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

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::config::{Permissions, ResponsePermission, SubjectPermission};
use crate::subject::subject_matches;
use crate::time::Instant;

/// Decisions remembered per client before the cache is cleared.
pub const DECISION_CACHE_MAX: usize = 128;

/// Reply subjects a client may answer at once; nats-server prunes at the same size.
pub const RESPONSE_GRANTS_MAX: usize = 5_000;

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

    /// Does this entry cover `subject` (and, for queue entries, `queue`)?
    /// A queue entry never covers a plain subscription.
    fn covers(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        if !subject_matches(&self.subject, subject) {
            return false;
        }
        match (&self.queue, queue) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(pattern), Some(q)) => subject_matches(pattern, q),
        }
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

    fn allows(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let allowed = self
            .allow
            .as_ref()
            .is_none_or(|list| list.iter().any(|e| e.covers(subject, queue)));
        allowed && !self.denies(subject, queue)
    }

    fn denies(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        self.deny.iter().any(|e| {
            // A plain deny entry denies queue subscriptions too; a queue
            // entry denies only that queue group.
            subject_matches(&e.subject, subject)
                && match (&e.queue, queue) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(pattern), Some(q)) => subject_matches(pattern, q),
                }
        })
    }
}

/// A reply subject a client may publish to, from a request it received.
#[derive(Clone, Copy, Debug)]
struct Grant {
    remaining: u32,
    expires_at: Option<Instant>,
}

/// One client's compiled permissions and its decision caches.
#[derive(Clone, Debug)]
pub struct ClientPermissions {
    publish: Option<Rules>,
    subscribe: Option<Rules>,
    responses: Option<ResponsePermission>,
    publish_cache: BTreeMap<Bytes, bool>,
    deliver_cache: BTreeMap<Bytes, bool>,
    grants: BTreeMap<Bytes, Grant>,
}

impl ClientPermissions {
    /// Compiles the configured permissions.
    pub fn new(p: &Permissions) -> ClientPermissions {
        // With allow_responses, a missing publish allow list means "allow
        // nothing but responses", as nats-server turns off the blanket allow.
        let responses = p.allow_responses.clone();
        ClientPermissions {
            publish: p
                .publish
                .as_ref()
                .map(|s| Rules::compile(s, responses.is_some())),
            subscribe: p.subscribe.as_ref().map(|s| Rules::compile(s, false)),
            responses,
            publish_cache: BTreeMap::new(),
            deliver_cache: BTreeMap::new(),
            grants: BTreeMap::new(),
        }
    }

    /// May the client publish to `subject` at `now`? Uses up a response grant
    /// when that is what allows it.
    pub fn can_publish(&mut self, now: Instant, subject: &[u8]) -> bool {
        let Some(rules) = &self.publish else {
            return true;
        };
        let allowed = match self.publish_cache.get(subject) {
            Some(&allowed) => allowed,
            None => {
                let allowed = rules.allows(subject, None);
                remember(&mut self.publish_cache, subject, allowed);
                allowed
            }
        };
        allowed || self.use_grant(now, subject)
    }

    /// May the client subscribe to `subject` (in `queue`)?
    pub fn can_subscribe(&self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        self.subscribe
            .as_ref()
            .is_none_or(|r| r.allows(subject, queue))
    }

    /// May a message on `subject` be delivered to this client? A wildcard
    /// subscription does not receive subjects its deny list names.
    pub fn can_receive(&mut self, subject: &[u8]) -> bool {
        let Some(rules) = &self.subscribe else {
            return true;
        };
        if rules.deny.is_empty() {
            return true;
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

    /// The client received a request with reply subject `reply`: let it answer.
    pub fn grant_response(&mut self, now: Instant, reply: &[u8]) {
        let Some(rp) = &self.responses else { return };
        if self.grants.len() >= RESPONSE_GRANTS_MAX {
            self.grants
                .retain(|_, g| g.expires_at.is_none_or(|at| at > now));
            if self.grants.len() >= RESPONSE_GRANTS_MAX {
                self.grants.pop_first();
            }
        }
        let expires_at = (!rp.expires.is_zero()).then(|| now + rp.expires);
        let grant = Grant {
            remaining: rp.max_msgs.max(1),
            expires_at,
        };
        self.grants.insert(Bytes::copy_from_slice(reply), grant);
    }

    fn use_grant(&mut self, now: Instant, subject: &[u8]) -> bool {
        let Some(g) = self.grants.get_mut(subject) else {
            return false;
        };
        if g.expires_at.is_some_and(|at| at <= now) {
            self.grants.remove(subject);
            return false;
        }
        g.remaining -= 1;
        if g.remaining == 0 {
            self.grants.remove(subject);
        }
        true
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
        assert!(!c.can_receive(b"foo.baz"));
        assert!(c.can_receive(b"foo.x"));
    }

    #[test]
    fn responses_are_bounded_in_count_and_time() {
        let p = Permissions {
            publish: Some(SubjectPermission::default()),
            subscribe: None,
            allow_responses: Some(ResponsePermission {
                max_msgs: 2,
                expires: Duration::from_secs(1),
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
}
