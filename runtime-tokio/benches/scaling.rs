//! How publishing scales with threads, without sockets: the production
//! routing path (the runtime's driver around the core) driven by N threads,
//! each with a publisher and a subscriber of its own on a subject of its
//! own, so nothing but the server's shape stops N threads from going N
//! times as fast as one.
//!
//! Each thread hands its publisher's session a read of 64 PUBs of 16
//! bytes, as a connection task does (the session matches and delivers
//! into the subscriber's outbox, taking the control lock only if it must),
//! then takes its subscriber's bytes from the outbox and reports them
//! written, as a writer task does.
//!
//! ```sh
//! cargo bench -p natrix --bench scaling            # 1 and 2 threads, 3 s each
//! cargo bench -p natrix --bench scaling -- 1 2 4   # other thread counts
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use natrix::clock;
use natrix::driver::{Locked, Shared};
use natrix::logger::Logger;
use natrix_core::config::ServerOptions;
use natrix_core::server::{Control, Outbox, Session};

const PAYLOAD: usize = 16;
const BATCH: usize = 64;
const RUN: Duration = Duration::from_secs(3);

fn main() {
    let counts: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let counts = if counts.is_empty() { vec![1, 2] } else { counts };
    let mut first = None;
    for threads in counts {
        let rate = run(threads);
        let (base_threads, base) = *first.get_or_insert((threads, rate));
        println!("{threads} thread(s): {rate:>12.0} msgs/s delivered, {:.2}x of {base_threads}", rate / base);
    }
}

/// One thread's publisher and subscriber.
struct Pair {
    publisher: Session,
    /// The subscriber's outbox (its session is done once subscribed).
    inbox: Arc<Outbox>,
    subject: String,
}

fn connect(shared: &Shared, setup: &str) -> Session {
    let peer: SocketAddr = "127.0.0.1:40000".parse().expect("an address");
    let (mut session, _signal) = shared.connect(peer);
    let setup = Bytes::from(setup.to_owned());
    session.handle_received_all(clock::now(), setup, &mut Locked(shared));
    session
}

/// Delivered messages per second over all threads.
fn run(threads: usize) -> f64 {
    let opts = ServerOptions::default();
    let control = Control::new(opts, [7; 32], clock::now(), clock::wall());
    let logger = Logger::new(false, false, false, None).expect("a stderr logger");
    let shared = Shared::new(control, Arc::new(logger), None, None);
    let pairs: Vec<Pair> = (0..threads)
        .map(|t| {
            let subject = format!("bench.{t}");
            let subscriber =
                connect(&shared, &format!("CONNECT {{\"verbose\":false}}\r\nSUB {subject} 1\r\nPING\r\n"));
            let publisher = connect(&shared, "CONNECT {\"verbose\":false}\r\n");
            let inbox = Arc::clone(subscriber.outbox());
            // INFO and PONG: the subscription is in place.
            drain(&inbox);
            Pair { publisher, inbox, subject }
        })
        .collect();
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = pairs
        .into_iter()
        .map(|pair| {
            let (shared, start) = (shared.clone(), start.clone());
            std::thread::spawn(move || publish(&shared, pair, &start))
        })
        .collect();
    let (mut delivered, mut elapsed) = (0u64, Duration::ZERO);
    for handle in handles {
        let (n, took) = handle.join().expect("a bench thread");
        delivered += n;
        elapsed = elapsed.max(took);
    }
    delivered as f64 / elapsed.as_secs_f64()
}

/// Publishes for [`RUN`]; returns the messages its subscriber got and the time taken.
fn publish(shared: &Shared, mut pair: Pair, start: &Barrier) -> (u64, Duration) {
    let mut read = Vec::new();
    for _ in 0..BATCH {
        read.extend_from_slice(format!("PUB {} {PAYLOAD}\r\n", pair.subject).as_bytes());
        read.extend_from_slice(&[b'x'; PAYLOAD]);
        read.extend_from_slice(b"\r\n");
    }
    let read = Bytes::from(read);
    let msg_len = format!("MSG {} 1 {PAYLOAD}\r\n", pair.subject).len() + PAYLOAD + 2;
    start.wait();
    let began = Instant::now();
    let mut bytes = 0u64;
    while began.elapsed() < RUN {
        for _ in 0..16 {
            let read = read.clone();
            pair.publisher.handle_received_all(clock::now(), read, &mut Locked(shared));
            bytes += drain(&pair.inbox);
        }
    }
    (bytes / msg_len as u64, began.elapsed())
}

/// Takes what the outbox holds and reports it written; returns its length.
fn drain(inbox: &Outbox) -> u64 {
    let Some(bytes) = inbox.take(clock::now()).bytes else { return 0 };
    inbox.written(clock::now(), bytes.len());
    bytes.len() as u64
}
