//! The outbox protocol under every interleaving loom can find: two
//! publishers deliver to one receiver through the real delivery code while
//! its writer drains the outbox each time it is woken.
//!
//! Checked: no wake is lost (the writer, which takes only when woken, ends
//! with the outbox empty), messages arrive whole, and each publisher's
//! arrive in the order it sent them.
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test -p natrix-core --release --lib loom_outbox
//! ```

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use loom::sync::{Condvar, Mutex};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::protocol::{ParserLimits, Publish};
use crate::time::{Instant, UnixNanos};

use super::Account;
use super::subs::Subscription;
use super::deliver::{Route, Work};
use super::outbox::{Outbox, Profile, Wake};
use super::{ConnId, Slot, SubRef};

/// The writer's wake-up call: a count of wakes and a condition to wait on.
#[derive(Default)]
struct Signal {
    wakes: Mutex<(u64, bool)>,
    changed: Condvar,
}

struct Waker(Arc<Signal>);

impl Wake for Waker {
    fn wake(&self, _conn: ConnId) {
        let mut state = self.0.wakes.lock().expect("signal lock");
        state.0 += 1;
        self.0.changed.notify_one();
    }
}

fn receiver(signal: &Arc<Signal>) -> SubRef {
    let account = Account::new("A", false, 0);
    let profile = Arc::new(Profile {
        connected: true,
        account: Arc::clone(&account.shared),
        verbose: false,
        pedantic: false,
        echo: true,
        headers: false,
        no_responders: false,
        guarded: false,
        parser_limits: ParserLimits { max_control_line_bytes: 4096, max_payload_bytes: 1024 },
        trace: false,
        plain_auth: None,
    });
    let waker = Box::new(Waker(Arc::clone(signal)));
    let outbox = Arc::new(Outbox::new(ConnId(1), waker, profile, 1, Instant::ZERO, UnixNanos(0)));
    let sub = Subscription::new(b"s", None, b"1");
    let id = outbox.lock().subs.insert(sub).expect("a fresh sid");
    SubRef { slot: Slot::NONE, sub: id, outbox }
}

/// One publisher's batch: its messages, then the wakes it owes.
fn publish(sub: &SubRef, from: u8) {
    let mut work = Work::default();
    let mut rng = ChaCha8Rng::seed_from_u64(u64::from(from));
    for n in 0..2u8 {
        let p = Publish {
            subject: Bytes::from_static(b"s"),
            reply: None,
            headers: None,
            payload: Bytes::from(vec![from, b'0' + n]),
        };
        let mut route = Route { now: Instant::ZERO, max_pending: 1 << 20, rng: &mut rng, work: &mut work, trace: None };
        assert!(route.deliver_to(sub, &p), "the subscription takes every message");
    }
    work.touched.wake_all();
}

/// Takes the outbox each time it is woken until the publishers are done.
fn write(outbox: &Outbox, signal: &Signal) -> BytesMut {
    let mut out = BytesMut::new();
    let mut seen = 0;
    loop {
        let mut state = signal.wakes.lock().expect("signal lock");
        while state.0 == seen && !state.1 {
            state = signal.changed.wait(state).expect("signal wait");
        }
        if state.0 == seen {
            return out;
        }
        seen = state.0;
        drop(state);
        if let Some(bytes) = outbox.take(Instant::ZERO).bytes {
            out.extend_from_slice(&bytes);
            outbox.written(Instant::ZERO, bytes.len());
        }
    }
}

/// The payloads in `stream`, each from one whole `MSG s 1 2` frame.
fn payloads(stream: &[u8]) -> Vec<[u8; 2]> {
    const FRAME: &[u8] = b"MSG s 1 2\r\n";
    let mut rest = stream;
    let mut out = Vec::new();
    while !rest.is_empty() {
        assert!(rest.starts_with(FRAME), "a message torn or interleaved: {:?}", String::from_utf8_lossy(stream));
        let body = &rest[FRAME.len()..];
        assert_eq!(&body[2..4], b"\r\n", "a payload torn");
        out.push([body[0], body[1]]);
        rest = &body[4..];
    }
    out
}

#[test]
fn no_wake_is_lost_and_messages_stay_whole_and_in_order() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let signal = Arc::new(Signal::default());
        let sub = receiver(&signal);
        let publishers: Vec<_> = [b'A', b'B']
            .into_iter()
            .map(|from| {
                let sub = sub.clone();
                loom::thread::spawn(move || publish(&sub, from))
            })
            .collect();
        let writer = {
            let (outbox, signal) = (Arc::clone(&sub.outbox), Arc::clone(&signal));
            loom::thread::spawn(move || write(&outbox, &signal))
        };
        for p in publishers {
            p.join().expect("a publisher");
        }
        {
            let mut state = signal.wakes.lock().expect("signal lock");
            state.1 = true;
            signal.changed.notify_one();
        }
        let stream = writer.join().expect("the writer");
        let left = sub.outbox.lock().queued.len();
        assert_eq!(left, 0, "bytes left in the outbox with no wake owed: a lost wake");
        let got = payloads(&stream);
        assert_eq!(got.len(), 4, "every message arrives once");
        for from in [b'A', b'B'] {
            let order: Vec<u8> = got.iter().filter(|p| p[0] == from).map(|p| p[1]).collect();
            assert_eq!(order, b"01", "publisher {} out of order", from as char);
        }
    });
}
