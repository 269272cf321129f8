//! JetStream modes: `js-pub` (publish with a window of outstanding PubAcks)
//! and `js-pull` (fill a stream, then pull-consume it with explicit acks);
//! `js-push` lives in [`crate::js_push`] and shares the helpers here.
//!
//! They talk to the JetStream API as plain requests on `$JS.API.>`, so they
//! run against any server that answers it, and both start from a freshly
//! created file-backed stream so stream sequences must come out `1..=msgs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use crate::core_modes::{connect, join_all, Ctx};
use crate::payload::{self, PayloadWriter};
use crate::report::{new_histogram, Summary};
use crate::tracker::{merge_shares, share, Expect, Tracker};
use crate::wire::{write_decimal, Conn, Event};

/// The durable consumer `js-pull` and `js-push` create.
pub(crate) const CONSUMER: &str = "natrix-bench";

/// How long a pull request waits for messages before the server ends it.
const PULL_EXPIRES_NS: u64 = 1_000_000_000;

/// A connection for JetStream API requests.
pub(crate) struct Api {
    conn: Conn,
    inbox: String,
}

impl Api {
    pub(crate) fn open(ctx: &Ctx) -> Result<Api, String> {
        let mut conn = connect(ctx)?;
        let inbox = format!("_INBOX.natrix-bench.{}.api", std::process::id());
        conn.sub(&inbox, None, 1).map_err(|e| e.to_string())?;
        conn.wait_pong().map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        Ok(Api { conn, inbox })
    }

    /// Sends a request to `$JS.API.<what>` and returns the JSON answer, or
    /// the API error it carries.
    pub(crate) fn call(&mut self, what: &str, body: &Value) -> Result<Value, String> {
        let subject = format!("$JS.API.{what}");
        let raw = serde_json::to_vec(body).expect("JSON serialises");
        let reply = self
            .conn
            .request(&subject, &self.inbox, &raw)
            .map_err(|e| {
                if e.to_string().contains("no responders") {
                    format!("{subject}: no responders (is JetStream enabled on the server?)")
                } else {
                    format!("{subject}: {e}")
                }
            })?;
        let v: Value = serde_json::from_slice(&reply)
            .map_err(|e| format!("{subject}: bad JSON reply: {e}"))?;
        if let Some(err) = v.get("error") {
            return Err(format!("{subject}: {err}"));
        }
        Ok(v)
    }

    /// Deletes the stream if it exists and creates it afresh on file storage.
    pub(crate) fn recreate_stream(&mut self, o: &crate::opts::Opts) -> Result<(), String> {
        let _ = self.call(&format!("STREAM.DELETE.{}", o.stream), &json!({}));
        let config = json!({
            "name": o.stream,
            "subjects": [o.subject],
            "storage": "file",
            "retention": "limits",
            "discard": "old",
            "num_replicas": 1,
        });
        self.call(&format!("STREAM.CREATE.{}", o.stream), &config)?;
        Ok(())
    }

    fn stream_messages(&mut self, stream: &str) -> Result<u64, String> {
        let info = self.call(&format!("STREAM.INFO.{stream}"), &json!({}))?;
        info["state"]["messages"]
            .as_u64()
            .ok_or_else(|| format!("stream info without state.messages: {info}"))
    }
}

/// What one publisher got back.
pub(crate) struct PubResult {
    stream_seqs: Vec<u64>,
    latency: Histogram<u64>,
}

/// Runs `js-pub`.
pub fn run_js_pub(ctx: Arc<Ctx>) -> Result<Summary, String> {
    let o = &ctx.opts;
    let mut api = Api::open(&ctx)?;
    api.recreate_stream(o)?;
    let (seconds, results) = publish_all(&ctx)?;
    let mut latency = new_histogram();
    let mut seqs = Vec::with_capacity(o.msgs as usize);
    for r in results {
        latency.add(&r.latency).map_err(|e| e.to_string())?;
        seqs.extend(r.stream_seqs);
    }
    check_stream_seqs(seqs, o.msgs)?;
    let stored = api.stream_messages(&o.stream)?;
    if stored != o.msgs {
        return Err(format!(
            "stream holds {stored} messages, expected {}",
            o.msgs
        ));
    }
    let _ = api.call(&format!("STREAM.DELETE.{}", o.stream), &json!({}));
    let mut extra = Map::new();
    extra.insert("window".into(), json!(o.window));
    Ok(Summary {
        mode: o.mode.name(),
        msgs: o.msgs,
        size: o.size,
        seconds,
        delivered: 0,
        latency: Some(latency),
        extra,
    })
}

/// Every PubAck sequence exactly once: a fresh stream numbers `1..=msgs`.
fn check_stream_seqs(mut seqs: Vec<u64>, msgs: u64) -> Result<(), String> {
    seqs.sort_unstable();
    for (i, &s) in seqs.iter().enumerate() {
        if s != i as u64 + 1 {
            return Err(format!(
                "PubAck stream sequences are not 1..={msgs}: position {i} holds {s}"
            ));
        }
    }
    if seqs.len() as u64 != msgs {
        return Err(format!("{} PubAcks for {msgs} messages", seqs.len()));
    }
    Ok(())
}

/// Runs the publishers to completion; returns the seconds it took.
pub(crate) fn publish_all(ctx: &Arc<Ctx>) -> Result<(f64, Vec<PubResult>), String> {
    let o = &ctx.opts;
    let barrier = Arc::new(Barrier::new(o.pubs as usize + 1));
    let workers = (0..o.pubs)
        .map(|i| {
            let (ctx, barrier) = (ctx.clone(), barrier.clone());
            thread::spawn(move || js_publisher(&ctx, i, &barrier))
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let results = join_all(workers)?;
    Ok((start.elapsed().as_secs_f64(), results))
}

/// Publishes this publisher's share, keeping up to `--window` messages
/// waiting for their PubAck. Each message's reply subject ends in its
/// sequence, so every ack is matched to exactly one message.
fn js_publisher(ctx: &Ctx, index: u32, barrier: &Barrier) -> Result<PubResult, String> {
    let o = &ctx.opts;
    let prefix = format!("_INBOX.natrix-bench.{}.jsp{index}.", std::process::id());
    let setup = || -> Result<Conn, String> {
        let mut c = connect(ctx)?;
        c.sub(&format!("{prefix}*"), None, 1)
            .map_err(|e| e.to_string())?;
        c.wait_pong().map_err(|e| e.to_string())?;
        Ok(c)
    };
    let conn = setup();
    barrier.wait();
    let mut conn = conn?;
    let n = share(o.msgs, o.pubs, index);
    let window = u64::from(o.window);
    let mut in_flight: Vec<Option<(u64, Instant)>> = vec![None; o.window as usize];
    let mut payloads = PayloadWriter::new(index, o.size);
    let mut reply = Vec::with_capacity(prefix.len() + 20);
    let mut out = PubResult {
        stream_seqs: Vec::with_capacity(n as usize),
        latency: new_histogram(),
    };
    let (mut next, mut outstanding) = (1u64, 0u64);
    let io = |e: std::io::Error| format!("js publisher {index}: {e}");
    while (out.stream_seqs.len() as u64) < n {
        while next <= n && outstanding < window {
            reply.clear();
            reply.extend_from_slice(prefix.as_bytes());
            write_decimal(&mut reply, next).map_err(io)?;
            conn.publish(o.subject.as_bytes(), Some(&reply), payloads.payload(next))
                .map_err(io)?;
            in_flight[(next % window) as usize] = Some((next, Instant::now()));
            next += 1;
            outstanding += 1;
        }
        match conn.next_event().map_err(io)? {
            Event::Msg(m) => {
                let (seq, stream_seq) = parse_ack(m.subject, m.payload, m.status(), &o.stream)?;
                let slot = &mut in_flight[(seq % window) as usize];
                match slot.take() {
                    Some((s, at)) if s == seq => out
                        .latency
                        .record(at.elapsed().as_nanos() as u64)
                        .map_err(|e| e.to_string())?,
                    _ => {
                        return Err(format!(
                        "js publisher {index}: unexpected or duplicate PubAck for message {seq}"
                    ))
                    }
                }
                out.stream_seqs.push(stream_seq);
                outstanding -= 1;
                ctx.progress.add_published(1);
            }
            Event::Err(e) => return Err(format!("js publisher {index}: server error -ERR '{e}'")),
            Event::Pong | Event::Timeout => {}
        }
    }
    conn.close();
    Ok(out)
}

/// Reads a PubAck: which of our messages it answers and its stream sequence.
fn parse_ack(
    subject: &[u8],
    payload: &[u8],
    status: Option<u16>,
    stream: &str,
) -> Result<(u64, u64), String> {
    if status == Some(503) {
        return Err("no responders: the subject is not bound to a stream".into());
    }
    let token = subject.rsplit(|&b| b == b'.').next().unwrap_or_default();
    let seq: u64 = std::str::from_utf8(token)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| {
            format!(
                "PubAck on unexpected subject {:?}",
                String::from_utf8_lossy(subject)
            )
        })?;
    let ack: Value = serde_json::from_slice(payload).map_err(|e| {
        format!(
            "PubAck is not JSON ({e}): {:?}",
            String::from_utf8_lossy(payload)
        )
    })?;
    if let Some(err) = ack.get("error") {
        return Err(format!("PubAck error for message {seq}: {err}"));
    }
    if ack.get("duplicate").and_then(Value::as_bool) == Some(true) {
        return Err(format!("PubAck marks message {seq} as a duplicate"));
    }
    if ack["stream"] != stream {
        return Err(format!(
            "PubAck from stream {} instead of {stream}",
            ack["stream"]
        ));
    }
    let stream_seq = ack["seq"]
        .as_u64()
        .ok_or_else(|| format!("PubAck without seq: {ack}"))?;
    Ok((seq, stream_seq))
}

/// Runs `js-pull`: fills the stream with `--msgs` (untimed), then `--subs`
/// consumers share one durable pull consumer, fetching `--window` messages
/// per request and acking each.
pub fn run_js_pull(ctx: Arc<Ctx>) -> Result<Summary, String> {
    let o = &ctx.opts;
    let mut api = Api::open(&ctx)?;
    api.recreate_stream(o)?;
    let (fill_seconds, _) = publish_all(&ctx)?;
    let max_ack_pending = (2 * u64::from(o.subs) * u64::from(o.window)).max(1000);
    let config = json!({
        "stream_name": o.stream,
        "config": {
            "name": CONSUMER,
            "durable_name": CONSUMER,
            "ack_policy": "explicit",
            "deliver_policy": "all",
            "ack_wait": 60_000_000_000u64,
            "max_ack_pending": max_ack_pending,
        }
    });
    api.call(&format!("CONSUMER.CREATE.{}.{CONSUMER}", o.stream), &config)?;
    let (seconds, trackers) = pull_all(&ctx)?;
    merge_shares(&trackers.iter().collect::<Vec<_>>())?;
    check_consumer_drained(&mut api, &o.stream)?;
    let _ = api.call(&format!("STREAM.DELETE.{}", o.stream), &json!({}));
    let mut extra = Map::new();
    extra.insert("window".into(), json!(o.window));
    extra.insert(
        "fill_msgs_per_sec".into(),
        json!((o.msgs as f64 / fill_seconds).round()),
    );
    let delivered = trackers.iter().map(|t| t.received).sum();
    Ok(Summary {
        mode: o.mode.name(),
        msgs: o.msgs,
        size: o.size,
        seconds,
        delivered,
        latency: None,
        extra,
    })
}

/// Acks are applied asynchronously by some servers: give them a moment.
pub(crate) fn check_consumer_drained(api: &mut Api, stream: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = api.call(&format!("CONSUMER.INFO.{stream}.{CONSUMER}"), &json!({}))?;
        let field = |k: &str| info[k].as_u64().unwrap_or(u64::MAX);
        if field("num_redelivered") != 0 {
            return Err(format!(
                "consumer redelivered {} messages",
                info["num_redelivered"]
            ));
        }
        if field("num_pending") == 0 && field("num_ack_pending") == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "consumer not drained: num_pending {} num_ack_pending {}",
                info["num_pending"], info["num_ack_pending"]
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn pull_all(ctx: &Arc<Ctx>) -> Result<(f64, Vec<Tracker>), String> {
    let o = &ctx.opts;
    let barrier = Arc::new(Barrier::new(o.subs as usize + 1));
    let consumed = Arc::new(AtomicU64::new(0));
    let workers = (0..o.subs)
        .map(|i| {
            let (ctx, barrier, consumed) = (ctx.clone(), barrier.clone(), consumed.clone());
            thread::spawn(move || puller(&ctx, i, &barrier, &consumed))
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    let results: Vec<(Tracker, Option<Instant>)> = join_all(workers)?;
    let end = results
        .iter()
        .filter_map(|r| r.1)
        .max()
        .unwrap_or_else(Instant::now);
    Ok((
        (end - start).as_secs_f64(),
        results.into_iter().map(|r| r.0).collect(),
    ))
}

fn puller(
    ctx: &Ctx,
    index: u32,
    barrier: &Barrier,
    consumed: &AtomicU64,
) -> Result<(Tracker, Option<Instant>), String> {
    let o = &ctx.opts;
    let inbox = format!("_INBOX.natrix-bench.{}.pull{index}", std::process::id());
    let setup = || -> Result<Conn, String> {
        let mut c = connect(ctx)?;
        c.sub(&inbox, None, 1).map_err(|e| e.to_string())?;
        c.wait_pong().map_err(|e| e.to_string())?;
        c.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        Ok(c)
    };
    let conn = setup();
    barrier.wait();
    let mut conn = conn?;
    let next_subject = format!("$JS.API.CONSUMER.MSG.NEXT.{}.{CONSUMER}", o.stream);
    let request = json!({"batch": o.window, "expires": PULL_EXPIRES_NS}).to_string();
    let mut tracker = Tracker::new(Expect::Share, o.msgs, o.pubs);
    let (mut waiting, mut last_at, mut reply) = (0u32, None, Vec::new());
    let io = |e: std::io::Error| format!("puller {index}: {e}");
    while consumed.load(Ordering::SeqCst) < o.msgs {
        if waiting == 0 {
            conn.publish(
                next_subject.as_bytes(),
                Some(inbox.as_bytes()),
                request.as_bytes(),
            )
            .map_err(io)?;
            waiting = o.window;
        }
        let m = match conn.next_event().map_err(io)? {
            Event::Msg(m) => m,
            Event::Err(e) => return Err(format!("puller {index}: server error -ERR '{e}'")),
            Event::Pong | Event::Timeout => continue,
        };
        match m.status() {
            Some(404 | 408) => {
                waiting = 0;
                continue;
            }
            Some(code) => {
                return Err(format!(
                    "puller {index}: pull request ended with status {code}"
                ))
            }
            None => {}
        }
        let ack = m
            .reply
            .ok_or_else(|| format!("puller {index}: message without ack subject"))?;
        if delivery_count(ack) != Some(1) {
            return Err(format!(
                "puller {index}: redelivery ({:?})",
                String::from_utf8_lossy(ack)
            ));
        }
        let (p, seq) = payload::check(m.payload, o.size, o.pubs).map_err(|e| e.to_string())?;
        tracker
            .record(p, seq)
            .map_err(|e| format!("puller {index}: {e}"))?;
        reply.clear();
        reply.extend_from_slice(ack);
        conn.publish(&reply, None, b"").map_err(io)?;
        waiting -= 1;
        last_at = Some(Instant::now());
        consumed.fetch_add(1, Ordering::SeqCst);
        ctx.progress.add_received(1);
    }
    conn.wait_pong().map_err(io)?;
    conn.close();
    Ok((tracker, last_at))
}

/// The delivery count in a `$JS.ACK` subject (both the 9-token form and the
/// longer form with domain and account hash).
pub(crate) fn delivery_count(ack: &[u8]) -> Option<u64> {
    let tokens: Vec<&[u8]> = ack.split(|&b| b == b'.').collect();
    let idx = match tokens.len() {
        9 => 4,
        n if n >= 11 => 6,
        _ => return None,
    };
    std::str::from_utf8(tokens[idx]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_acks() {
        let ok = parse_ack(b"_INBOX.x.17", br#"{"stream":"S","seq":5}"#, None, "S");
        assert_eq!(ok, Ok((17, 5)));
        assert!(parse_ack(
            b"_INBOX.x.17",
            br#"{"stream":"S","seq":5,"duplicate":true}"#,
            None,
            "S"
        )
        .is_err());
        assert!(parse_ack(b"_INBOX.x.17", br#"{"error":{"code":503}}"#, None, "S").is_err());
        assert!(parse_ack(b"_INBOX.x.17", b"", Some(503), "S").is_err());
        assert!(check_stream_seqs(vec![2, 1, 3], 3).is_ok());
        assert!(check_stream_seqs(vec![1, 1, 3], 3).is_err());
        assert!(check_stream_seqs(vec![1, 2], 3).is_err());
    }

    #[test]
    fn delivery_counts() {
        assert_eq!(delivery_count(b"$JS.ACK.S.C.1.10.10.1700000000.5"), Some(1));
        assert_eq!(
            delivery_count(b"$JS.ACK.dom.hash.S.C.3.10.10.1700000000.5.tok"),
            Some(3)
        );
        assert_eq!(delivery_count(b"$JS.ACK.S"), None);
    }
}
