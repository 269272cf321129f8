//! Core NATS modes: pub, pubsub, queue and reqrep.
//!
//! Every worker connects and registers its subscriptions (proved by a
//! PING/PONG) before a barrier; the clock starts when all have passed it.
//! After the publishers finish (their own PING/PONG proves the server took
//! every message) the receivers are told to drain: each sends a PING and
//! stops at its PONG, since the server writes a connection's PONG after
//! every message it routed to that connection before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::opts::{Mode, Opts};
use crate::payload::{self, PayloadWriter};
use crate::report::{new_histogram, Progress, Summary};
use crate::tracker::{merge_shares, share, Expect, Tracker};
use crate::wire::{Conn, Event};

/// How often an idle receiver looks at the drain flag.
const POLL: Duration = Duration::from_millis(50);

/// Messages between two updates of the shared progress counters.
const PROGRESS_BATCH: u64 = 1024;

/// Shared by all workers of a run.
pub struct Ctx {
    /// The options.
    pub opts: Opts,
    /// `host:port`.
    pub addr: String,
    /// Progress counters.
    pub progress: Arc<Progress>,
    /// Set once all publishers are done: receivers drain and stop.
    pub drain: AtomicBool,
}

/// The result of a worker thread.
type Worker<T> = JoinHandle<Result<T, String>>;

/// What a receiver hands back.
struct Received {
    tracker: Tracker,
    last_at: Option<Instant>,
}

/// Connects, turning the error into a message naming the server.
pub fn connect(ctx: &Ctx) -> Result<Conn, String> {
    let conn = Conn::connect(&ctx.addr).map_err(|e| format!("connect to {}: {e}", ctx.addr))?;
    if conn.max_payload() < ctx.opts.size {
        return Err(format!(
            "--size {} exceeds the server's max_payload {}",
            ctx.opts.size,
            conn.max_payload()
        ));
    }
    Ok(conn)
}

/// Runs `pub`, `pubsub` or `queue`.
pub fn run_pubsub(ctx: Arc<Ctx>) -> Result<Summary, String> {
    let o = &ctx.opts;
    let receivers = match o.mode {
        Mode::Pub => 0,
        _ => o.subs,
    };
    let barrier = Arc::new(Barrier::new((o.pubs + receivers + 1) as usize));
    let subs: Vec<Worker<Received>> = (0..receivers)
        .map(|_| {
            let (ctx, barrier) = (ctx.clone(), barrier.clone());
            thread::spawn(move || receiver(&ctx, &barrier))
        })
        .collect();
    let pubs: Vec<Worker<()>> = (0..o.pubs)
        .map(|i| {
            let (ctx, barrier) = (ctx.clone(), barrier.clone());
            thread::spawn(move || match ctx.opts.mode {
                Mode::MqttQos0 | Mode::MqttQos1 => crate::mqtt::publisher(&ctx, i, &barrier),
                _ => publisher(&ctx, i, &barrier),
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let pub_results = join_all(pubs);
    let published_at = Instant::now();
    ctx.drain.store(true, Ordering::SeqCst);
    let sub_results = join_all(subs);
    pub_results?;
    let received = sub_results?;
    let end = received
        .iter()
        .filter_map(|r| r.last_at)
        .max()
        .unwrap_or(published_at)
        .max(published_at);
    check_delivery(o.mode, &received)?;
    Ok(Summary {
        mode: o.mode.name(),
        msgs: o.msgs,
        size: o.size,
        seconds: (end - start).as_secs_f64(),
        delivered: received.iter().map(|r| r.tracker.received).sum(),
        latency: None,
        extra: Default::default(),
    })
}

fn check_delivery(mode: Mode, received: &[Received]) -> Result<(), String> {
    match mode {
        Mode::Queue => {
            let trackers: Vec<&Tracker> = received.iter().map(|r| &r.tracker).collect();
            merge_shares(&trackers)
        }
        _ => received.iter().enumerate().try_for_each(|(i, r)| {
            r.tracker
                .check_complete()
                .map_err(|e| format!("subscriber {i}: {e}"))
        }),
    }
}

/// Joins workers; the first error wins.
pub fn join_all<T>(workers: Vec<Worker<T>>) -> Result<Vec<T>, String> {
    let mut out = Vec::with_capacity(workers.len());
    let mut first_err = None;
    for w in workers {
        match w.join() {
            Ok(Ok(v)) => out.push(v),
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert("a worker thread panicked".to_string());
            }
        }
    }
    first_err.map_or(Ok(out), Err)
}

fn publisher(ctx: &Ctx, index: u32, barrier: &Barrier) -> Result<(), String> {
    let o = &ctx.opts;
    let conn = connect(ctx);
    barrier.wait();
    let mut conn = conn?;
    let mut payloads = PayloadWriter::new(index, o.size);
    let n = share(o.msgs, o.pubs, index);
    let subject = o.subject.as_bytes();
    let io = |e: std::io::Error| format!("publisher {index}: {e}");
    for seq in 1..=n {
        conn.publish(subject, None, payloads.payload(seq))
            .map_err(io)?;
        if seq % PROGRESS_BATCH == 0 {
            ctx.progress.add_published(PROGRESS_BATCH);
        }
    }
    conn.wait_pong().map_err(io)?;
    ctx.progress.add_published(n % PROGRESS_BATCH);
    Ok(())
}

fn receiver(ctx: &Ctx, barrier: &Barrier) -> Result<Received, String> {
    let o = &ctx.opts;
    let setup = || -> Result<Conn, String> {
        let mut c = connect(ctx)?;
        let queue = (o.mode == Mode::Queue).then_some("natrix-bench-q");
        c.sub(&o.subject, queue, 1).map_err(|e| e.to_string())?;
        c.wait_pong().map_err(|e| e.to_string())?;
        c.set_read_timeout(Some(POLL)).map_err(|e| e.to_string())?;
        Ok(c)
    };
    let conn = setup();
    barrier.wait();
    let mut conn = conn?;
    let expect = if o.mode == Mode::Queue {
        Expect::Share
    } else {
        Expect::All
    };
    let mut got = Received {
        tracker: Tracker::new(expect, o.msgs, o.pubs),
        last_at: None,
    };
    let mut pinged = false;
    let mut batch = 0;
    loop {
        match conn.next_event().map_err(|e| format!("subscriber: {e}"))? {
            Event::Msg(m) => {
                let (p, seq) =
                    payload::check(m.payload, o.size, o.pubs).map_err(|e| e.to_string())?;
                got.tracker.record(p, seq)?;
                got.last_at = Some(Instant::now());
                batch += 1;
                if batch == PROGRESS_BATCH {
                    ctx.progress.add_received(batch);
                    batch = 0;
                }
            }
            Event::Timeout => {
                if !pinged && ctx.drain.load(Ordering::SeqCst) {
                    conn.write_raw(b"PING\r\n").map_err(|e| e.to_string())?;
                    pinged = true;
                }
            }
            Event::Pong if pinged => break,
            Event::Pong => {}
            Event::Err(e) => return Err(format!("subscriber: server error -ERR '{e}'")),
        }
    }
    ctx.progress.add_received(batch);
    conn.close();
    Ok(got)
}

/// Runs `reqrep`: `--pubs` requesters each send `--msgs / --pubs` requests
/// one at a time; `--subs` responders in a queue group echo them.
pub fn run_reqrep(ctx: Arc<Ctx>) -> Result<Summary, String> {
    let o = &ctx.opts;
    let barrier = Arc::new(Barrier::new((o.pubs + o.subs + 1) as usize));
    let responders: Vec<Worker<u64>> = (0..o.subs)
        .map(|_| {
            let (ctx, barrier) = (ctx.clone(), barrier.clone());
            thread::spawn(move || responder(&ctx, &barrier))
        })
        .collect();
    let requesters: Vec<Worker<Histogram<u64>>> = (0..o.pubs)
        .map(|i| {
            let (ctx, barrier) = (ctx.clone(), barrier.clone());
            thread::spawn(move || requester(&ctx, i, &barrier))
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let hists = join_all(requesters);
    let seconds = start.elapsed().as_secs_f64();
    ctx.drain.store(true, Ordering::SeqCst);
    let answered = join_all(responders);
    let hists = hists?;
    let answered: u64 = answered?.iter().sum();
    let mut latency = new_histogram();
    for h in &hists {
        latency.add(h).map_err(|e| e.to_string())?;
    }
    if answered != o.msgs {
        return Err(format!(
            "responders answered {answered} requests, expected {}",
            o.msgs
        ));
    }
    Ok(Summary {
        mode: o.mode.name(),
        msgs: o.msgs,
        size: o.size,
        seconds,
        delivered: answered,
        latency: Some(latency),
        extra: Default::default(),
    })
}

fn requester(ctx: &Ctx, index: u32, barrier: &Barrier) -> Result<Histogram<u64>, String> {
    let o = &ctx.opts;
    let inbox = format!("_INBOX.natrix-bench.{}.{index}", std::process::id());
    let setup = || -> Result<Conn, String> {
        let mut c = connect(ctx)?;
        c.sub(&inbox, None, 1).map_err(|e| e.to_string())?;
        c.wait_pong().map_err(|e| e.to_string())?;
        Ok(c)
    };
    let conn = setup();
    barrier.wait();
    let mut conn = conn?;
    let mut payloads = PayloadWriter::new(index, o.size);
    let mut hist = new_histogram();
    let io = |e: std::io::Error| format!("requester {index}: {e}");
    for seq in 1..=share(o.msgs, o.pubs, index) {
        let sent_at = Instant::now();
        conn.publish(
            o.subject.as_bytes(),
            Some(inbox.as_bytes()),
            payloads.payload(seq),
        )
        .map_err(io)?;
        loop {
            match conn.next_event().map_err(io)? {
                Event::Msg(m) => {
                    if m.status() == Some(503) {
                        return Err(format!("requester {index}: no responders"));
                    }
                    let got =
                        payload::check(m.payload, o.size, o.pubs).map_err(|e| e.to_string())?;
                    if got != (index, seq) {
                        return Err(format!(
                            "requester {index}: reply {got:?} for request {seq}"
                        ));
                    }
                    break;
                }
                Event::Err(e) => return Err(format!("requester {index}: server error -ERR '{e}'")),
                Event::Pong | Event::Timeout => {}
            }
        }
        hist.record(sent_at.elapsed().as_nanos() as u64)
            .map_err(|e| e.to_string())?;
        if seq % 256 == 0 {
            ctx.progress.add_published(256);
            ctx.progress.add_received(256);
        }
    }
    conn.close();
    Ok(hist)
}

fn responder(ctx: &Ctx, barrier: &Barrier) -> Result<u64, String> {
    let o = &ctx.opts;
    let setup = || -> Result<Conn, String> {
        let mut c = connect(ctx)?;
        c.sub(&o.subject, Some("natrix-bench-responders"), 1)
            .map_err(|e| e.to_string())?;
        c.wait_pong().map_err(|e| e.to_string())?;
        c.set_read_timeout(Some(POLL)).map_err(|e| e.to_string())?;
        Ok(c)
    };
    let conn = setup();
    barrier.wait();
    let mut conn = conn?;
    let (mut reply, mut body) = (Vec::new(), Vec::new());
    let mut answered = 0u64;
    loop {
        match conn.next_event().map_err(|e| format!("responder: {e}"))? {
            Event::Msg(m) => {
                let Some(r) = m.reply else {
                    return Err("responder: request without reply subject".into());
                };
                reply.clear();
                reply.extend_from_slice(r);
                body.clear();
                body.extend_from_slice(m.payload);
                conn.publish(&reply, None, &body)
                    .map_err(|e| format!("responder: {e}"))?;
                answered += 1;
            }
            Event::Timeout if ctx.drain.load(Ordering::SeqCst) => break,
            Event::Timeout | Event::Pong => {}
            Event::Err(e) => return Err(format!("responder: server error -ERR '{e}'")),
        }
    }
    conn.close();
    Ok(answered)
}
