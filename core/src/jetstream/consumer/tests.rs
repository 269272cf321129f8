//! Unit tests of the consumer state machine against a memory store.

use bytes::Bytes;

use super::*;
use crate::jetstream::store::MemStore;

fn store_with(n: u64) -> MemStore {
    let mut s = MemStore::new(1);
    for i in 0..n {
        let subject = if i % 2 == 0 { "s.a" } else { "s.b" };
        s.store(subject.as_bytes(), None, b"hi", UnixNanos(1_000 + i as i64)).unwrap();
    }
    s
}

fn pull_cfg() -> ConsumerConfig {
    ConsumerConfig {
        name: "C".into(),
        ack_policy: AckPolicy::Explicit,
        ack_wait: 1_000,
        max_deliver: -1,
        max_waiting: 512,
        max_ack_pending: 1000,
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

#[test]
fn pull_batch_then_no_messages_then_acks_move_the_floor() {
    let mut s = store_with(3);
    let mut c = Consumer::new("S", "C", pull_cfg(), UnixNanos(0), &mut s);
    c.handle_pull(Bytes::from_static(b"in"), br#"{"batch":5,"no_wait":true}"#, UnixNanos(10), &mut s);
    let out = drain(&mut c);
    assert_eq!(out.len(), 4);
    assert_eq!(out[0].reply.as_deref().unwrap(), b"$JS.ACK.S.C.1.1.1.1000.2");
    assert_eq!(&out[0].subject[..], b"s.a");
    assert_eq!(&out[0].to[..], b"in");
    assert_eq!(status_of(&out[3]), "NATS/1.0 404 No Messages");
    assert_eq!(c.state().pending.len(), 3);
    let ack = AckSubject::parse("$JS.ACK.S.C.1.2.2.1001.1").unwrap();
    c.handle_ack(&ack, AckKind::Ack, None, UnixNanos(11), &mut s);
    assert_eq!(c.state().ack_floor.stream_seq, 0, "1 is still pending");
    let ack = AckSubject::parse("$JS.ACK.S.C.1.1.1.1000.2").unwrap();
    c.handle_ack(&ack, AckKind::Ack, None, UnixNanos(12), &mut s);
    assert_eq!(c.state().ack_floor.stream_seq, 2);
    assert_eq!(c.state().ack_floor.consumer_seq, 2);
}

#[test]
fn unacked_messages_are_redelivered_after_ack_wait_up_to_max_deliver() {
    let mut s = store_with(1);
    let mut cfg = pull_cfg();
    cfg.max_deliver = 2;
    let mut c = Consumer::new("S", "C", cfg, UnixNanos(0), &mut s);
    c.handle_pull(Bytes::from_static(b"in"), br#"{"batch":10,"expires":100000}"#, UnixNanos(10), &mut s);
    assert_eq!(drain(&mut c).len(), 1);
    assert_eq!(c.next_deadline(), Some(UnixNanos(1_010)));
    c.handle_timeout(UnixNanos(1_010), &mut s);
    let again = drain(&mut c);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].reply.as_deref().unwrap(), b"$JS.ACK.S.C.2.1.2.1000.0");
    assert_eq!(c.state().redelivered.get(&1), Some(&2));
    c.handle_timeout(UnixNanos(2_010), &mut s);
    assert!(drain(&mut c).is_empty(), "max_deliver reached");
    assert!(c.state().pending.is_empty());
    c.handle_timeout(UnixNanos(100_010), &mut s);
    let out = drain(&mut c);
    assert_eq!(status_of(&out[0]), "NATS/1.0 408 Request Timeout");
}

#[test]
fn waiting_requests_are_served_round_robin() {
    let mut s = store_with(0);
    let mut c = Consumer::new("S", "C", pull_cfg(), UnixNanos(0), &mut s);
    for inbox in ["a", "b", "c"] {
        c.handle_pull(Bytes::from(inbox), br#"{"batch":10,"expires":1000000}"#, UnixNanos(1), &mut s);
    }
    for i in 0..6 {
        s.store(b"s.a", None, b"x", UnixNanos(10 + i)).unwrap();
        c.pump(&mut s, UnixNanos(10 + i));
    }
    let to: Vec<String> = drain(&mut c).into_iter().map(|d| String::from_utf8_lossy(&d.to).into_owned()).collect();
    assert_eq!(to, ["a", "b", "c", "a", "b", "c"]);
}

#[test]
fn filters_nak_term_and_pull_limits() {
    let mut s = store_with(4);
    let mut cfg = pull_cfg();
    cfg.filter_subject = "s.b".into();
    cfg.max_request_batch = 2;
    let mut c = Consumer::new("S", "C", cfg, UnixNanos(0), &mut s);
    assert_eq!(c.num_pending(&mut s), 2);
    c.handle_pull(Bytes::from_static(b"in"), br#"{"batch":3}"#, UnixNanos(1), &mut s);
    assert_eq!(status_of(&drain(&mut c)[0]), "NATS/1.0 409 Exceeded MaxRequestBatch of 2");
    c.handle_pull(Bytes::from_static(b"in"), br#"{"batch":2}"#, UnixNanos(1), &mut s);
    let out = drain(&mut c);
    assert_eq!(out.iter().map(|d| d.subject.clone()).collect::<Vec<_>>(), vec![Bytes::from_static(b"s.b"); 2]);
    let first = AckSubject::parse("$JS.ACK.S.C.1.2.1.0.1").unwrap();
    c.handle_ack(&first, AckKind::Term(String::new()), None, UnixNanos(2), &mut s);
    let second = AckSubject::parse("$JS.ACK.S.C.1.4.2.0.0").unwrap();
    c.handle_ack(&second, AckKind::Nak(0), None, UnixNanos(2), &mut s);
    c.handle_pull(Bytes::from_static(b"in"), br#"{"batch":2,"no_wait":true}"#, UnixNanos(3), &mut s);
    let out = drain(&mut c);
    assert_eq!(&out[0].reply.as_deref().unwrap()[..8 + 9], b"$JS.ACK.S.C.2.4.3");
    assert_eq!(status_of(&out[1]), "NATS/1.0 404 No Messages");
    assert_eq!(AckKind::parse(br#"-NAK {"delay":5}"#), Some(AckKind::Nak(5)));
    assert_eq!(AckKind::parse(b"-NAK 2s"), Some(AckKind::Nak(2_000_000_000)));
}

#[test]
fn deliver_policies_pick_their_start() {
    let mut s = store_with(4);
    let mk = |p: DeliverPolicy, s: &mut MemStore| {
        let cfg = ConsumerConfig { deliver_policy: p, opt_start_seq: if p == DeliverPolicy::ByStartSequence { 3 } else { 0 }, ..pull_cfg() };
        Consumer::new("S", "C", cfg, UnixNanos(0), s)
    };
    assert_eq!(mk(DeliverPolicy::All, &mut s).num_pending(&mut s), 4);
    assert_eq!(mk(DeliverPolicy::Last, &mut s).num_pending(&mut s), 1);
    assert_eq!(mk(DeliverPolicy::New, &mut s).num_pending(&mut s), 0);
    assert_eq!(mk(DeliverPolicy::ByStartSequence, &mut s).num_pending(&mut s), 2);
    assert_eq!(mk(DeliverPolicy::LastPerSubject, &mut s).num_pending(&mut s), 2);
    assert_eq!(mk(DeliverPolicy::New, &mut s).state().delivered.stream_seq, 4);
}

#[test]
fn max_ack_pending_holds_back_new_messages() {
    let mut s = store_with(3);
    let mut cfg = pull_cfg();
    cfg.max_ack_pending = 1;
    let mut c = Consumer::new("S", "C", cfg, UnixNanos(0), &mut s);
    c.handle_pull(Bytes::from_static(b"in"), br#"{"batch":3,"expires":1000000}"#, UnixNanos(1), &mut s);
    assert_eq!(drain(&mut c).len(), 1);
    let ack = AckSubject::parse("$JS.ACK.S.C.1.1.1.0.2").unwrap();
    c.handle_ack(&ack, AckKind::Ack, None, UnixNanos(2), &mut s);
    assert_eq!(drain(&mut c).len(), 1);
}

#[test]
fn ack_subjects_parse_in_both_forms() {
    let a = AckSubject::parse("$JS.ACK.S.C.3.10.12.99.0").unwrap();
    assert_eq!((a.stream, a.consumer, a.delivered, a.stream_seq, a.consumer_seq), ("S", "C", 3, 10, 12));
    let d = AckSubject::parse("$JS.ACK.dom.hash.S.C.3.10.12.99.0.rnd").unwrap();
    assert_eq!((d.stream, d.consumer), ("S", "C"));
    assert!(AckSubject::parse("$JS.ACK.S.C.x.10.12.99.0").is_none());
}

#[test]
fn a_delivery_nobody_received_goes_to_the_next_request_first() {
    let mut s = store_with(2);
    let mut c = Consumer::new("S", "C", pull_cfg(), UnixNanos(0), &mut s);
    c.handle_pull(Bytes::from_static(b"gone"), br#"{"batch":1,"expires":1000000}"#, UnixNanos(1), &mut s);
    let first = drain(&mut c);
    assert_eq!(&first[0].to[..], b"gone");
    c.handle_pull(Bytes::from_static(b"gone"), br#"{"batch":1,"expires":1000000}"#, UnixNanos(2), &mut s);
    drain(&mut c);
    c.handle_pull(Bytes::from_static(b"here"), br#"{"batch":1,"expires":1000000}"#, UnixNanos(3), &mut s);
    assert!(drain(&mut c).is_empty());
    c.undelivered(b"gone", Some(1), UnixNanos(4), &mut s);
    let out = drain(&mut c);
    assert_eq!(&out[0].to[..], b"here");
    assert_eq!(out[0].reply.as_deref().unwrap(), b"$JS.ACK.S.C.2.1.3.1000.0");
}

#[test]
fn push_flow_control_stalls_until_the_client_answers() {
    let mut s = MemStore::new(1);
    let big = vec![b'x'; 512 * 1024];
    for i in 0..16 {
        s.store(b"s.a", None, &big, UnixNanos(i)).unwrap();
    }
    let cfg = ConsumerConfig {
        name: "P".into(),
        deliver_subject: "dlv".into(),
        flow_control: true,
        heartbeat: 1_000_000_000,
        max_deliver: -1,
        ..Default::default()
    };
    let mut c = Consumer::new("S", "P", cfg, UnixNanos(0), &mut s);
    c.pump(&mut s, UnixNanos(1));
    assert!(drain(&mut c).is_empty(), "no interest yet");
    c.set_interest(true, UnixNanos(2), &mut s);
    let out = drain(&mut c);
    let fc: Vec<&Delivery> = out.iter().filter(|d| status_of(d) == "NATS/1.0 100 FlowControl Request").collect();
    assert_eq!(fc.len(), 1);
    let msgs = out.len() - 1;
    assert!(msgs < 16, "stalled after the window: {msgs}");
    let reply = fc[0].reply.clone().unwrap();
    assert!(reply.starts_with(b"$JS.FC.S.P."));
    assert!(!c.handle_flow_control(b"$JS.FC.S.P.nope", UnixNanos(3), &mut s));
    // Each answer lets more through (the window grows) until all are out.
    let (mut delivered, mut reply, mut rounds) = (msgs, reply, 0);
    while delivered < 16 {
        assert!(c.handle_flow_control(&reply, UnixNanos(3), &mut s));
        let out = drain(&mut c);
        delivered += out.iter().filter(|d| d.reply.as_ref().is_some_and(|r| r.starts_with(b"$JS.ACK."))).count();
        if let Some(next) = out.iter().find_map(|d| d.reply.clone().filter(|r| r.starts_with(b"$JS.FC."))) {
            reply = next;
        }
        rounds += 1;
        assert!(rounds < 8);
    }
    assert_eq!(delivered, 16);
}

fn push_cfg() -> ConsumerConfig {
    ConsumerConfig { name: "P".into(), deliver_subject: "dlv".into(), max_deliver: -1, ..Default::default() }
}

fn messages(out: &[Delivery]) -> usize {
    out.iter().filter(|d| d.reply.as_ref().is_some_and(|r| r.starts_with(b"$JS.ACK."))).count()
}

#[test]
fn replay_original_keeps_the_gaps_between_messages_until_caught_up() {
    let ms = 1_000_000;
    let mut s = MemStore::new(1);
    for at in [0, 100 * ms, 100 * ms, 400 * ms] {
        s.store(b"s.a", None, b"x", UnixNanos(at)).unwrap();
    }
    let cfg = ConsumerConfig { replay_policy: ReplayPolicy::Original, ..push_cfg() };
    let mut c = Consumer::new("S", "P", cfg, UnixNanos(0), &mut s);
    let t0 = 10_000 * ms;
    c.set_interest(true, UnixNanos(t0), &mut s);
    assert_eq!(messages(&drain(&mut c)), 1, "the first goes at once");
    assert_eq!(c.next_deadline(), Some(UnixNanos(t0 + 100 * ms)));
    c.handle_timeout(UnixNanos(t0 + 100 * ms), &mut s);
    // The third was stored with the second: no gap to keep.
    assert_eq!(messages(&drain(&mut c)), 2);
    assert_eq!(c.next_deadline(), Some(UnixNanos(t0 + 400 * ms)));
    c.handle_timeout(UnixNanos(t0 + 399 * ms), &mut s);
    assert_eq!(messages(&drain(&mut c)), 0);
    c.handle_timeout(UnixNanos(t0 + 400 * ms), &mut s);
    assert_eq!(messages(&drain(&mut c)), 1);
    // Caught up: what comes next is delivered as it comes.
    s.store(b"s.a", None, b"x", UnixNanos(t0 + 5_000 * ms)).unwrap();
    c.pump(&mut s, UnixNanos(t0 + 5_000 * ms));
    assert_eq!(messages(&drain(&mut c)), 1);
    assert_eq!(c.next_deadline(), None);
}

#[test]
fn rate_limit_paces_deliveries_after_the_burst() {
    let mut s = MemStore::new(1);
    for i in 0..10 {
        s.store(b"s.a", None, &[b'x'; 1000], UnixNanos(i)).unwrap();
    }
    // 8,000 bytes a second (64,000 bits), a burst of 3,000 bytes.
    let cfg = ConsumerConfig { rate_limit: 64_000, ..push_cfg() };
    let mut c = Consumer::new("S", "P", cfg, UnixNanos(0), &mut s);
    c.set_rate_burst(3_000);
    c.set_interest(true, UnixNanos(0), &mut s);
    // Each delivery counts about 1,050 bytes: two fit the burst, the third waits.
    assert_eq!(messages(&drain(&mut c)), 2);
    let mut delivered = 2;
    let mut now = 0;
    while delivered < 10 {
        let next = c.next_deadline().expect("more to deliver").0;
        assert!(next > now);
        now = next;
        c.handle_timeout(UnixNanos(now), &mut s);
        delivered += messages(&drain(&mut c));
    }
    // Ten deliveries of ~1,050 bytes less the 3,000 burst at 8,000 B/s.
    let secs = now as f64 / 1e9;
    assert!((0.85..1.05).contains(&secs), "took {secs}s");
}

/// A crash lost the stream's last message but kept the consumer's save:
/// the messages below it that were acknowledged out of order (above a
/// still pending one) must not be delivered again.
#[test]
fn reconciling_with_a_shorter_stream_keeps_acks_above_a_pending_message() {
    let mut s = store_with(4);
    let pending = |consumer_seq| Pending { consumer_seq, timestamp: 1 };
    let state = ConsumerState {
        delivered: SeqPair { consumer_seq: 5, stream_seq: 5, last_active: None },
        ack_floor: SeqPair { consumer_seq: 1, stream_seq: 1, last_active: None },
        pending: [(2, pending(2))].into_iter().collect(),
        redelivered: BTreeMap::new(),
    };
    let mut c = Consumer::restore("S", "C", pull_cfg(), UnixNanos(0), state);
    assert!(c.reconcile_with_stream(4));
    assert_eq!(c.state().delivered.stream_seq, 4);
    assert_eq!(c.state().delivered.consumer_seq, 5, "consumer sequences are not reused");
    c.handle_pull(Bytes::from_static(b"in"), br#"{"batch":5,"no_wait":true}"#, UnixNanos(10), &mut s);
    let out = drain(&mut c);
    assert_eq!(out.len(), 1, "3 and 4 were acknowledged: {out:?}");
    assert_eq!(status_of(&out[0]), "NATS/1.0 404 No Messages");
    s.store(b"s.a", None, b"new", UnixNanos(2_000)).unwrap();
    c.handle_pull(Bytes::from_static(b"in"), br#"{"batch":5,"no_wait":true}"#, UnixNanos(11), &mut s);
    let out = drain(&mut c);
    assert_eq!(out[0].reply.as_deref().unwrap(), b"$JS.ACK.S.C.1.5.6.2000.0");
    let ack = AckSubject::parse("$JS.ACK.S.C.1.2.2.1001.1").unwrap();
    c.handle_ack(&ack, AckKind::Ack, None, UnixNanos(12), &mut s);
    assert_eq!(c.state().ack_floor.stream_seq, 4, "2 was the only one below 5 outstanding");
}

/// With nothing pending, the ack floor follows the stream's new end.
#[test]
fn reconciling_with_nothing_pending_moves_the_floor_to_the_stream_end() {
    let state = ConsumerState {
        delivered: SeqPair { consumer_seq: 9, stream_seq: 9, last_active: None },
        ack_floor: SeqPair { consumer_seq: 3, stream_seq: 3, last_active: None },
        pending: BTreeMap::new(),
        redelivered: BTreeMap::new(),
    };
    let mut c = Consumer::restore("S", "C", pull_cfg(), UnixNanos(0), state);
    assert!(c.reconcile_with_stream(7));
    assert_eq!((c.state().ack_floor.stream_seq, c.state().ack_floor.consumer_seq), (7, 9));
    assert!(!c.reconcile_with_stream(7));
}

#[test]
fn ack_replies_stay_intact_across_many_deliveries() {
    // More replies than one chunk of the shared reply buffer holds: each
    // keeps its own bytes after later ones are written.
    let n = 300u64;
    let mut s = store_with(n);
    let mut c = Consumer::new("STREAM", "CONSUMER", pull_cfg(), UnixNanos(0), &mut s);
    c.handle_pull(Bytes::from_static(b"in"), br#"{"batch":300}"#, UnixNanos(10), &mut s);
    let out = drain(&mut c);
    assert_eq!(out.len() as u64, n);
    for (i, d) in out.iter().enumerate() {
        let i = i as u64;
        let want = format!("$JS.ACK.STREAM.CONSUMER.1.{}.{}.{}.{}", i + 1, i + 1, 1_000 + i, n - i - 1);
        assert_eq!(d.reply.as_deref().unwrap(), want.as_bytes());
    }
}

#[test]
fn an_expired_request_is_not_served_even_before_its_timer_fires() {
    let mut s = store_with(0);
    let mut c = Consumer::new("S", "C", pull_cfg(), UnixNanos(0), &mut s);
    c.handle_pull(Bytes::from_static(b"old"), br#"{"batch":1,"expires":1000}"#, UnixNanos(10), &mut s);
    assert!(drain(&mut c).is_empty());
    // A message comes after the request expired, before its timer ran.
    s.store(b"s.a", None, b"hi", UnixNanos(2_000)).unwrap();
    c.pump(&mut s, UnixNanos(2_000));
    let out = drain(&mut c);
    assert_eq!(out.len(), 1);
    assert_eq!(status_of(&out[0]), "NATS/1.0 408 Request Timeout");
    assert_eq!(&out[0].to[..], b"old");
    // The message waits for the next request.
    c.handle_pull(Bytes::from_static(b"new"), br#"{"batch":1,"expires":1000000}"#, UnixNanos(2_001), &mut s);
    let out = drain(&mut c);
    assert_eq!((out.len(), &out[0].to[..], &out[0].subject[..]), (1, &b"new"[..], &b"s.a"[..]));
}
