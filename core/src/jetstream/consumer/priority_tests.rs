//! Unit tests of priority groups and the consumer reset, against a memory
//! store; expected statuses are those nats-server 2.15.1 sent.

use bytes::Bytes;

use super::*;
use crate::jetstream::store::MemStore;

fn store_with(n: u64) -> MemStore {
    let mut s = MemStore::new(1);
    for i in 0..n {
        s.store(b"s.a", None, b"hi", UnixNanos(1_000 + i as i64)).unwrap();
    }
    s
}

fn cfg(policy: PriorityPolicy) -> ConsumerConfig {
    ConsumerConfig {
        name: "C".into(),
        ack_policy: AckPolicy::Explicit,
        ack_wait: 1_000_000_000,
        max_deliver: -1,
        max_waiting: 512,
        max_ack_pending: 1000,
        priority_policy: policy,
        priority_groups: vec!["A".into()],
        pinned_ttl: if policy == PriorityPolicy::PinnedClient { 5_000 } else { 0 },
        ..Default::default()
    }
}

fn drain(c: &mut Consumer) -> Vec<Delivery> {
    std::iter::from_fn(|| c.poll_delivery()).collect()
}

fn status_of(d: &Delivery) -> String {
    let h = d.headers.as_deref().unwrap_or_default();
    String::from_utf8_lossy(h.split(|&b| b == b'\r').next().unwrap()).into_owned()
}

fn header<'a>(d: &'a Delivery, name: &str) -> Option<&'a str> {
    let h = std::str::from_utf8(d.headers.as_deref()?).ok()?;
    h.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

fn pull(c: &mut Consumer, s: &mut MemStore, reply: &'static str, body: &str, at: i64) -> Vec<Delivery> {
    c.handle_pull(Bytes::from_static(reply.as_bytes()), body.as_bytes(), UnixNanos(at), s);
    drain(c)
}

#[test]
fn priority_fields_are_checked_as_nats_server_does() {
    let mut s = store_with(1);
    let mut none = Consumer::new("S", "N", ConsumerConfig { priority_groups: vec![], ..cfg(PriorityPolicy::None) }, UnixNanos(0), &mut s);
    let out = pull(&mut none, &mut s, "in", r#"{"batch":1,"min_pending":3}"#, 1);
    assert_eq!(status_of(&out[0]), "NATS/1.0 400 Bad Request - Not a Overflow Priority consumer");
    let out = pull(&mut none, &mut s, "in", r#"{"batch":1,"id":"x"}"#, 1);
    assert_eq!(status_of(&out[0]), "NATS/1.0 400 Bad Request - Not a Pinned Client Priority consumer");
    let out = pull(&mut none, &mut s, "in", r#"{"batch":1,"priority":10}"#, 1);
    assert_eq!(status_of(&out[0]), "NATS/1.0 400 Bad Request - Priority must be between 0 and 9");
    let out = pull(&mut none, &mut s, "in", r#"{"batch":1,"group":"A"}"#, 1);
    assert_eq!(out.len(), 1, "a group is ignored without a policy");
    assert!(out[0].reply.is_some());
    let mut ov = Consumer::new("S", "C", cfg(PriorityPolicy::Overflow), UnixNanos(0), &mut s);
    let out = pull(&mut ov, &mut s, "in", r#"{"batch":1}"#, 1);
    assert_eq!(status_of(&out[0]), "NATS/1.0 400 Bad Request - Priority Group missing");
    let out = pull(&mut ov, &mut s, "in", r#"{"batch":1,"group":"B"}"#, 1);
    assert_eq!(status_of(&out[0]), "NATS/1.0 400 Bad Request - Invalid Priority Group");
}

#[test]
fn overflow_serves_a_request_once_its_minimum_is_reached() {
    let mut s = store_with(5);
    let mut c = Consumer::new("S", "C", cfg(PriorityPolicy::Overflow), UnixNanos(0), &mut s);
    let out = pull(&mut c, &mut s, "wait", r#"{"batch":1,"group":"A","min_pending":10,"expires":1000000}"#, 1);
    assert!(out.is_empty(), "5 pending is below 10: {out:?}");
    let out = pull(&mut c, &mut s, "now", r#"{"batch":1,"group":"A","min_pending":5,"expires":1000000}"#, 2);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0].to[..], b"now", "the waiting one is passed over");
    let out = pull(&mut c, &mut s, "acks", r#"{"batch":1,"group":"A","min_ack_pending":1,"expires":1000000}"#, 3);
    assert_eq!(&out[0].to[..], b"acks");
    for i in 0..6 {
        s.store(b"s.a", None, b"hi", UnixNanos(2_000 + i)).unwrap();
    }
    c.pump(&mut s, UnixNanos(4));
    assert!(drain(&mut c).is_empty(), "9 pending, the one at hand counted");
    s.store(b"s.a", None, b"hi", UnixNanos(3_000)).unwrap();
    c.pump(&mut s, UnixNanos(5));
    let out = drain(&mut c);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0].to[..], b"wait", "10 pending");
}

#[test]
fn pinned_client_gets_everything_until_its_pin_runs_out() {
    let mut s = store_with(4);
    let mut c = Consumer::new("S", "C", cfg(PriorityPolicy::PinnedClient), UnixNanos(0), &mut s);
    let out = pull(&mut c, &mut s, "x", r#"{"batch":1,"group":"A","id":"stale","expires":100000}"#, 1);
    assert_eq!(status_of(&out[0]), "NATS/1.0 423 Nats-Wrong-Pin-Id");
    let out = pull(&mut c, &mut s, "first", r#"{"batch":1,"group":"A","expires":100000}"#, 2);
    let pin = header(&out[0], "Nats-Pin-Id").expect("pinned").to_owned();
    assert_eq!(pin.len(), 22);
    assert!(matches!(c.poll_event(), Some((_, Event::Pinned { .. }))));
    let out = pull(&mut c, &mut s, "other", r#"{"batch":1,"group":"A","expires":100000}"#, 3);
    assert!(out.is_empty(), "an unpinned client waits: {out:?}");
    let out = pull(&mut c, &mut s, "x", r#"{"batch":1,"group":"A","id":"bad","expires":100000}"#, 4);
    assert_eq!(status_of(&out[0]), "NATS/1.0 423 Nats-Pin-Id mismatch");
    let body = format!(r#"{{"batch":1,"group":"A","id":"{pin}","expires":100000}}"#);
    c.handle_pull(Bytes::from_static(b"first"), body.as_bytes(), UnixNanos(5), &mut s);
    let out = drain(&mut c);
    assert_eq!(&out[0].to[..], b"first");
    assert_eq!(header(&out[0], "Nats-Pin-Id"), Some(pin.as_str()));
    // Asked again at 5, so the pin runs out at 5 + 5000.
    assert_eq!(c.pinned().map(|(id, _)| id.to_owned()), Some(pin.clone()));
    c.handle_timeout(UnixNanos(5_005), &mut s);
    let events: Vec<Event> = std::iter::from_fn(|| c.poll_event()).map(|(_, e)| e).collect();
    assert!(events.contains(&Event::Unpinned { group: "A".into(), reason: "timeout" }), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::Pinned { .. })), "the waiting client is pinned: {events:?}");
    let out = drain(&mut c);
    assert_eq!(&out[0].to[..], b"other");
    assert_ne!(header(&out[0], "Nats-Pin-Id"), Some(pin.as_str()));
}

#[test]
fn unpin_lets_the_next_client_in() {
    let mut s = store_with(3);
    let mut c = Consumer::new("S", "C", cfg(PriorityPolicy::PinnedClient), UnixNanos(0), &mut s);
    pull(&mut c, &mut s, "first", r#"{"batch":1,"group":"A","expires":100000}"#, 1);
    assert!(pull(&mut c, &mut s, "other", r#"{"batch":1,"group":"A","expires":100000}"#, 2).is_empty());
    c.unpin("A", UnixNanos(3), &mut s);
    let out = drain(&mut c);
    assert_eq!(&out[0].to[..], b"other");
}

#[test]
fn prioritized_serves_the_lowest_priority_first() {
    let mut s = store_with(0);
    let mut c = Consumer::new("S", "C", cfg(PriorityPolicy::Prioritized), UnixNanos(0), &mut s);
    assert!(pull(&mut c, &mut s, "low", r#"{"batch":5,"group":"A","priority":5,"expires":1000000}"#, 1).is_empty());
    assert!(pull(&mut c, &mut s, "high", r#"{"batch":2,"group":"A","priority":1,"expires":1000000}"#, 2).is_empty());
    for i in 0..3 {
        s.store(b"s.a", None, b"hi", UnixNanos(2_000 + i)).unwrap();
    }
    c.pump(&mut s, UnixNanos(3));
    let to: Vec<Bytes> = drain(&mut c).into_iter().map(|d| d.to).collect();
    assert_eq!(to, vec![Bytes::from_static(b"high"), Bytes::from_static(b"high"), Bytes::from_static(b"low")]);
}

#[test]
fn reset_moves_the_start_as_nats_server_does() {
    let mut s = store_with(6);
    let mut all = ConsumerConfig { priority_groups: vec![], ..cfg(PriorityPolicy::None) };
    all.ack_wait = 1_000;
    let mut c = Consumer::new("S", "C", all.clone(), UnixNanos(0), &mut s);
    assert_eq!(pull(&mut c, &mut s, "in", r#"{"batch":4}"#, 1).len(), 4);
    c.handle_ack(&AckSubject::parse("$JS.ACK.S.C.1.2.2.1001.4").unwrap(), AckKind::Ack, None, UnixNanos(2), &mut s);
    c.handle_ack(&AckSubject::parse("$JS.ACK.S.C.1.1.1.1000.5").unwrap(), AckKind::Ack, None, UnixNanos(2), &mut s);
    assert_eq!(c.reset(0, UnixNanos(3), &mut s), Ok(3), "just above the ack floor");
    assert!(c.state().pending.is_empty());
    assert_eq!((c.state().delivered.consumer_seq, c.state().delivered.stream_seq), (0, 2));
    assert_eq!(c.next_deadline(), None, "nothing pending waits for an ack");
    let out = pull(&mut c, &mut s, "in", r#"{"batch":1}"#, 4);
    assert_eq!(out[0].reply.as_deref().unwrap(), b"$JS.ACK.S.C.1.3.1.1002.3");
    assert_eq!(c.reset(100, UnixNanos(5), &mut s), Ok(100));
    assert_eq!(c.state().ack_floor.stream_seq, 99);
    let by_seq = ConsumerConfig { deliver_policy: DeliverPolicy::ByStartSequence, opt_start_seq: 3, ..all.clone() };
    let mut c = Consumer::new("S", "B", by_seq, UnixNanos(0), &mut s);
    assert_eq!(c.reset(1, UnixNanos(1), &mut s), Err("below start seq"));
    assert_eq!(c.reset(4, UnixNanos(1), &mut s), Ok(4));
    let last = ConsumerConfig { deliver_policy: DeliverPolicy::Last, ..all };
    let mut c = Consumer::new("S", "L", last, UnixNanos(0), &mut s);
    assert_eq!(c.reset(4, UnixNanos(1), &mut s), Err("not allowed"));
    assert_eq!(c.reset(0, UnixNanos(1), &mut s), Ok(6));
}

#[test]
fn an_update_away_from_pinned_client_drops_the_pin() {
    let mut s = store_with(2);
    let mut c = Consumer::new("S", "C", cfg(PriorityPolicy::PinnedClient), UnixNanos(0), &mut s);
    pull(&mut c, &mut s, "first", r#"{"batch":1,"group":"A","expires":100000}"#, 1);
    assert!(c.pinned().is_some());
    c.update(cfg(PriorityPolicy::Overflow), UnixNanos(2));
    assert_eq!(c.pinned(), None);
    assert_eq!(c.next_deadline().map(|t| t.0), Some(1_000_000_001), "only the ack wait is left");
}
