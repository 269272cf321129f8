//! Properties of subscribe permissions with queue groups, and of response
//! grants over time, against models written from nats-server's rules:
//!
//! - subscribe: the allow entries matching the subject split into plain and
//!   queue ones; a plain subscription needs a plain one; a queue
//!   subscription needs a queue entry naming its queue when any queue entry
//!   matches, else a plain one. A plain deny entry matching denies; a queue
//!   deny entry denies the queues it names. Delivery applies the deny
//!   rules to the subscription's subject and queue.
//! - responses: a delivered request grants its reply subject (unless the
//!   publish rules allow it anyway); each publish on it uses one response;
//!   past `max` or past `expires` after the grant, publishing is refused.

use std::collections::BTreeMap;
use std::time::Duration;

use natrix_core::auth::ClientPermissions;
use natrix_core::config::{Permissions, ResponsePermission, SubjectPermission};
use natrix_core::subject::subject_matches;
use natrix_core::Instant;
use proptest::prelude::*;

const TOKENS: [&str; 4] = ["a", "b", "*", ">"];
const QUEUES: [&str; 4] = ["q1", "q2", "q*", "*"];

fn subject_pattern() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(&TOKENS[..]), 1..4).prop_map(|t| {
        // `>` only last, as a valid subject has it.
        let mut out: Vec<&str> = Vec::new();
        for tok in t {
            out.push(tok);
            if tok == ">" {
                break;
            }
        }
        out.join(".")
    })
}

fn queue_name() -> impl Strategy<Value = String> {
    prop::sample::select(&QUEUES[..]).prop_map(str::to_owned)
}

/// A permission entry: `subject` or `subject queue`.
fn entry() -> impl Strategy<Value = (String, Option<String>)> {
    (subject_pattern(), prop::option::of(queue_name()))
}

fn text((subject, queue): &(String, Option<String>)) -> String {
    match queue {
        Some(q) => format!("{subject} {q}"),
        None => subject.clone(),
    }
}

fn queue_named(pattern: &str, queue: &str) -> bool {
    pattern == queue || subject_matches(pattern.as_bytes(), queue.as_bytes())
}

fn model_allows(allow: &Option<Vec<(String, Option<String>)>>, subject: &str, queue: Option<&str>) -> bool {
    let Some(list) = allow else { return true };
    let matching: Vec<_> = list.iter().filter(|(s, _)| subject_matches(s.as_bytes(), subject.as_bytes())).collect();
    let plain = matching.iter().any(|(_, q)| q.is_none());
    let queued: Vec<&str> = matching.iter().filter_map(|(_, q)| q.as_deref()).collect();
    match queue {
        None => plain,
        Some(q) if !queued.is_empty() => queued.iter().any(|p| queue_named(p, q)),
        Some(_) => plain,
    }
}

fn model_denies(deny: &[(String, Option<String>)], subject: &str, queue: Option<&str>) -> bool {
    deny.iter().any(|(s, q)| {
        subject_matches(s.as_bytes(), subject.as_bytes())
            && match (q, queue) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(p), Some(q)) => queue_named(p, q),
            }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn queue_entries_decide_as_nats_server_does(
        allow in prop::option::of(prop::collection::vec(entry(), 1..5)),
        deny in prop::collection::vec(entry(), 0..4),
        subs in prop::collection::vec((subject_pattern(), prop::option::of(queue_name())), 1..12),
        delivered in prop::collection::vec(subject_pattern(), 1..8),
    ) {
        let perms = Permissions {
            publish: None,
            subscribe: Some(SubjectPermission {
                allow: allow.iter().flatten().map(text).collect(),
                deny: deny.iter().map(text).collect(),
            }),
            allow_responses: None,
        };
        let mut c = ClientPermissions::new(&perms);
        for (subject, queue) in &subs {
            let expected = model_allows(&allow, subject, queue.as_deref()) && !model_denies(&deny, subject, queue.as_deref());
            prop_assert_eq!(c.can_subscribe(subject.as_bytes(), queue.as_deref().map(str::as_bytes)), expected,
                "SUB {} {:?} with allow {:?} deny {:?}", subject, queue, allow, deny);
            for literal in delivered.iter().filter(|s| !s.contains('*') && !s.contains('>')) {
                // Twice: the second answer may come from the cache.
                for _ in 0..2 {
                    prop_assert_eq!(
                        c.can_receive(literal.as_bytes(), queue.as_deref().map(str::as_bytes)),
                        !model_denies(&deny, literal, queue.as_deref()),
                        "deliver {} to a subscription in {:?} with deny {:?}", literal, queue, deny
                    );
                }
            }
        }
    }

    #[test]
    fn response_grants_follow_count_and_time(
        max in prop::sample::select(&[-1i64, 0, 1, 2, 5][..]),
        expires_ms in prop::sample::select(&[-1i64, 0, 10, 100, 1000][..]),
        steps in prop::collection::vec((any::<bool>(), 0u8..6, 0u32..300), 1..60),
    ) {
        let rule = ResponsePermission::from_limits(max, expires_ms.saturating_mul(1_000_000));
        let mut c = ClientPermissions::new(&Permissions {
            publish: Some(SubjectPermission { allow: vec!["open.>".to_owned()], deny: Vec::new() }),
            subscribe: None,
            allow_responses: Some(rule.clone()),
        });
        let mut now = Instant::ZERO;
        // reply → (granted at, responses used)
        let mut model: BTreeMap<String, (Instant, u32)> = BTreeMap::new();
        for (grant, n, advance_ms) in steps {
            now = now + Duration::from_millis(u64::from(advance_ms));
            let reply = if n == 5 { "open.r".to_owned() } else { format!("inbox.{n}") };
            if grant {
                c.grant_response(now, reply.as_bytes());
                if !reply.starts_with("open.") {
                    model.insert(reply, (now, 0));
                }
                continue;
            }
            let expected = if reply.starts_with("open.") {
                true
            } else {
                match model.get_mut(&reply) {
                    None => false,
                    Some((at, used)) => {
                        *used += 1;
                        let within_count = rule.max_msgs.is_none_or(|m| *used <= m);
                        let within_time = rule.expires.is_none_or(|ttl| now.saturating_duration_since(*at) <= ttl);
                        if !within_count || !within_time || rule.max_msgs == Some(*used) {
                            let ok = within_count && within_time;
                            model.remove(&reply);
                            ok
                        } else {
                            true
                        }
                    }
                }
            };
            prop_assert_eq!(c.can_publish(now, reply.as_bytes()), expected, "PUB {} at {:?} under {:?}", reply, now, rule);
        }
    }
}
