//! `js-push`: fill a stream (untimed), then consume it through a durable
//! push consumer and time the consumption only.
//!
//! The consumer is set up the way nats.go's `js.Subscribe` sets up a push
//! subscription with a callback, nats-server's most common push usage:
//! explicit acks, each message acked on its own with `+ACK` once handled.
//! With one subscriber it also asks for flow control and idle heartbeats
//! (`nats.EnableFlowControl()`, `nats.IdleHeartbeat(5s)`), answering every
//! flow control request as nats.go does; with several, they share the
//! consumer as a queue group on its `deliver_group` (nats.go allows neither
//! flow control nor heartbeats on a queue subscription). `--window` is the
//! consumer's `max_ack_pending`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Map};

use crate::core_modes::{connect, join_all, Ctx};
use crate::js::{check_consumer_drained, delivery_count, publish_all, Api, CONSUMER};
use crate::payload;
use crate::report::Summary;
use crate::tracker::{merge_shares, Expect, Tracker};
use crate::wire::{Conn, Event};

/// The idle heartbeat asked for (5 s, as nats.go's ordered consumer uses).
const IDLE_HEARTBEAT_NS: u64 = 5_000_000_000;

/// Its queue group when several subscribers share the consumer.
const DELIVER_GROUP: &str = "natrix-bench";

/// Runs `js-push`.
pub fn run_js_push(ctx: Arc<Ctx>) -> Result<Summary, String> {
    let o = &ctx.opts;
    let mut api = Api::open(&ctx)?;
    api.recreate_stream(o)?;
    let (fill_seconds, _) = publish_all(&ctx)?;
    let deliver = format!("_INBOX.natrix-bench.{}.push", std::process::id());
    let mut config = json!({
        "name": CONSUMER,
        "durable_name": CONSUMER,
        "deliver_subject": deliver,
        "ack_policy": "explicit",
        "deliver_policy": "all",
        "ack_wait": 60_000_000_000u64,
        "max_ack_pending": o.window,
    });
    if o.subs == 1 {
        config["flow_control"] = json!(true);
        config["idle_heartbeat"] = json!(IDLE_HEARTBEAT_NS);
    } else {
        config["deliver_group"] = json!(DELIVER_GROUP);
    }
    let body = json!({"stream_name": o.stream, "config": config});
    // Nothing subscribes to the deliver subject yet, so nothing is
    // delivered before the subscribers start (and the clock with them).
    api.call(&format!("CONSUMER.CREATE.{}.{CONSUMER}", o.stream), &body)?;
    let (seconds, results) = receive_all(&ctx, &deliver)?;
    let trackers: Vec<&Tracker> = results.iter().map(|r| &r.tracker).collect();
    merge_shares(&trackers)?;
    check_consumer_drained(&mut api, &o.stream)?;
    let _ = api.call(&format!("STREAM.DELETE.{}", o.stream), &json!({}));
    let mut extra = Map::new();
    extra.insert("max_ack_pending".into(), json!(o.window));
    extra.insert("flow_control".into(), json!(o.subs == 1));
    extra.insert(
        "flow_control_requests".into(),
        json!(results.iter().map(|r| r.fc_requests).sum::<u64>()),
    );
    extra.insert(
        "fill_msgs_per_sec".into(),
        json!((o.msgs as f64 / fill_seconds).round()),
    );
    Ok(Summary {
        mode: o.mode.name(),
        msgs: o.msgs,
        size: o.size,
        seconds,
        delivered: trackers.iter().map(|t| t.received).sum(),
        latency: None,
        extra,
    })
}

/// What one subscriber saw.
struct Received {
    tracker: Tracker,
    last_at: Option<Instant>,
    fc_requests: u64,
}

/// Runs the subscribers until every message was consumed; the seconds
/// from their start to the last message.
fn receive_all(ctx: &Arc<Ctx>, deliver: &str) -> Result<(f64, Vec<Received>), String> {
    let o = &ctx.opts;
    let barrier = Arc::new(Barrier::new(o.subs as usize + 1));
    let consumed = Arc::new(AtomicU64::new(0));
    let workers = (0..o.subs)
        .map(|i| {
            let (ctx, barrier, consumed) = (ctx.clone(), barrier.clone(), consumed.clone());
            let deliver = deliver.to_owned();
            thread::spawn(move || subscriber(&ctx, i, &deliver, &barrier, &consumed))
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let results: Vec<Received> = join_all(workers)?;
    let end = results
        .iter()
        .filter_map(|r| r.last_at)
        .max()
        .unwrap_or_else(Instant::now);
    Ok(((end - start).as_secs_f64(), results))
}

fn subscriber(
    ctx: &Ctx,
    index: u32,
    deliver: &str,
    barrier: &Barrier,
    consumed: &AtomicU64,
) -> Result<Received, String> {
    let o = &ctx.opts;
    let setup = || -> Result<Conn, String> {
        let c = connect(ctx)?;
        c.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        Ok(c)
    };
    let conn = setup();
    barrier.wait();
    let mut conn = conn?;
    let io = |e: std::io::Error| format!("push subscriber {index}: {e}");
    let queue = (o.subs > 1).then_some(DELIVER_GROUP);
    conn.sub(deliver, queue, 1).map_err(io)?;
    let mut got = Received {
        tracker: Tracker::new(Expect::Share, o.msgs, o.pubs),
        last_at: None,
        fc_requests: 0,
    };
    let mut ack = Vec::new();
    while consumed.load(Ordering::SeqCst) < o.msgs {
        let m = match conn.next_event().map_err(io)? {
            Event::Msg(m) => m,
            Event::Err(e) => return Err(format!("push subscriber {index}: server error -ERR '{e}'")),
            Event::Pong | Event::Timeout => continue,
        };
        match m.status() {
            // A flow control request carries a reply to answer; an idle
            // heartbeat has none.
            Some(100) => {
                if let Some(reply) = m.reply {
                    ack.clear();
                    ack.extend_from_slice(reply);
                    conn.publish(&ack, None, b"").map_err(io)?;
                    got.fc_requests += 1;
                }
                continue;
            }
            Some(code) => return Err(format!("push subscriber {index}: status {code}")),
            None => {}
        }
        let reply = m
            .reply
            .ok_or_else(|| format!("push subscriber {index}: message without ack subject"))?;
        if delivery_count(reply) != Some(1) {
            return Err(format!(
                "push subscriber {index}: redelivery ({:?})",
                String::from_utf8_lossy(reply)
            ));
        }
        let (p, seq) = payload::check(m.payload, o.size, o.pubs).map_err(|e| e.to_string())?;
        got.tracker
            .record(p, seq)
            .map_err(|e| format!("push subscriber {index}: {e}"))?;
        ack.clear();
        ack.extend_from_slice(reply);
        conn.publish(&ack, None, b"+ACK").map_err(io)?;
        got.last_at = Some(Instant::now());
        consumed.fetch_add(1, Ordering::SeqCst);
        ctx.progress.add_received(1);
    }
    // Every ack sent is processed before the consumer's state is read.
    conn.wait_pong().map_err(io)?;
    conn.close();
    Ok(got)
}
