//! The `js-kv` clients' operations on the bucket `B` (stream `KV_B`), as
//! the KV clients send them, and their history per key.

use std::collections::BTreeMap;

use natrix_core::Instant;

use super::check::{check_kv_key, KvKind, KvOp};
use super::parse_name;
use crate::model::Violation;
use crate::rng::SimRng;
use crate::wire::Delivery;

/// A request on the wire: subject, payload, header block.
type Request = (String, Vec<u8>, Option<Vec<u8>>);

/// Every operation of the run, per key.
#[derive(Debug, Default)]
pub(super) struct KvHistory {
    keys: u64,
    ops: Vec<Vec<KvOp>>,
    /// Requests invoked and not yet encoded.
    requests: BTreeMap<(u64, usize), Request>,
    /// The revision of each key a client last saw.
    seen: BTreeMap<(usize, u64), u64>,
}

fn key_subject(key: u64) -> String {
    format!("$KV.B.k{key}")
}

impl KvHistory {
    pub(super) fn new(keys: u64) -> Self {
        KvHistory { keys, ops: (0..keys).map(|_| Vec::new()).collect(), ..Default::default() }
    }

    /// Client `client` starts its operation number `n`: which key, and the
    /// operation's index in the key's history.
    pub(super) fn invoke(&mut self, client: usize, n: u64, now: Instant, rng: &mut SimRng) -> (u64, usize) {
        let key = rng.below(self.keys);
        let name = (client, n);
        let value = format!("c{client}n{n}|").into_bytes();
        let roll = rng.below(100);
        let (kind, request) = if roll < 40 {
            let subject = format!("$JS.API.DIRECT.GET.KV_B.{}", key_subject(key));
            (KvKind::Read { rev: 0, name: None }, (subject, Vec::new(), None))
        } else {
            let (expected, headers) = if roll < 65 {
                (None, None)
            } else if roll < 85 {
                let e = self.seen.get(&(client, key)).copied().unwrap_or(0);
                (Some(e), Some(format!("NATS/1.0\r\nNats-Expected-Last-Subject-Sequence: {e}\r\n\r\n")))
            } else {
                (None, Some("NATS/1.0\r\nKV-Operation: DEL\r\n\r\n".to_owned()))
            };
            let kind = KvKind::Write { name, expected, rev: None };
            (kind, (key_subject(key), value, headers.map(String::into_bytes)))
        };
        let ops = &mut self.ops[key as usize];
        ops.push(KvOp { client, invoked: now, answered: None, kind });
        let op = ops.len() - 1;
        self.requests.insert((key, op), request);
        (key, op)
    }

    /// The request of operation `op` on `key`, to send.
    pub(super) fn request(&mut self, key: u64, op: usize) -> Request {
        self.requests.remove(&(key, op)).unwrap_or_default()
    }

    /// The connection dropped before the answer came: its effect stays unknown.
    pub(super) fn unanswered(&mut self, key: u64, op: usize) {
        self.requests.remove(&(key, op));
    }

    /// The answer `d` to operation `op` on `key` arrived at `now`. With
    /// `stale`, a read after an acknowledged write answers "no value"
    /// (the checker self-test).
    pub(super) fn answered(&mut self, key: u64, op: usize, now: Instant, d: &Delivery, stale: bool) -> Result<(), Violation> {
        let status = d.headers.as_deref().and_then(crate::wire::status);
        let header = |name: &str| -> Option<String> {
            let text = String::from_utf8_lossy(d.headers.as_deref()?).into_owned();
            text.split("\r\n").find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned()))
        };
        let written_before = |ops: &[KvOp], at: Instant| {
            ops.iter().any(|o| matches!(o.kind, KvKind::Write { rev: Some(_), .. }) && o.answered.is_some_and(|a| a < at))
        };
        let ops = &mut self.ops[key as usize];
        let invoked = ops[op].invoked;
        let stale = stale && written_before(ops, invoked);
        let o = &mut ops[op];
        o.answered = Some(now);
        let fail = |what: String| Err(Violation { invariant: "kv-answer", detail: format!("key k{key}: {what}") });
        let seen = match &mut o.kind {
            KvKind::Read { rev, name } => {
                match status {
                    _ if stale => {}
                    Some(404) => {}
                    None => {
                        *rev = header("Nats-Sequence").and_then(|s| s.parse().ok()).unwrap_or(0);
                        *name = parse_name(&d.payload);
                        if *rev == 0 || name.is_none() {
                            return fail(format!("a read answered {:?} {:?}", d.headers, d.payload));
                        }
                    }
                    Some(other) => return fail(format!("a read answered status {other}")),
                }
                *rev
            }
            KvKind::Write { rev, .. } => {
                if status == Some(503) {
                    // No stream took it: not written.
                    return Ok(());
                }
                let json: serde_json::Value = serde_json::from_slice(&d.payload).unwrap_or_default();
                if let Some(err) = json.get("error") {
                    let text = err["description"].as_str().unwrap_or("");
                    let at = text.strip_prefix("wrong last sequence: ").and_then(|n| n.parse().ok());
                    let (Some(10_071), Some(at)) = (err["err_code"].as_u64(), at) else {
                        return fail(format!("a write answered {json}"));
                    };
                    // A refused update read the key's revision.
                    o.kind = KvKind::Read { rev: at, name: None };
                    at
                } else {
                    let seq = json["seq"].as_u64().unwrap_or(0);
                    if seq == 0 || json["stream"] != "KV_B" {
                        return fail(format!("a write answered {json}"));
                    }
                    *rev = Some(seq);
                    seq
                }
            }
        };
        let client = o.client;
        self.seen.insert((client, key), seen);
        Ok(())
    }

    /// Checks every key's history.
    pub(super) fn check(&self) -> Result<(), Violation> {
        for (key, ops) in self.ops.iter().enumerate() {
            check_kv_key(&format!("k{key}"), ops)?;
        }
        Ok(())
    }

    /// Writes acknowledged.
    pub(super) fn writes(&self) -> u64 {
        self.ops.iter().flatten().filter(|o| matches!(o.kind, KvKind::Write { rev: Some(_), .. })).count() as u64
    }

    /// Reads answered.
    pub(super) fn reads(&self) -> u64 {
        self.ops.iter().flatten().filter(|o| matches!(o.kind, KvKind::Read { .. }) && o.answered.is_some()).count() as u64
    }

    /// Operations answered.
    pub(super) fn ops(&self) -> u64 {
        self.ops.iter().flatten().filter(|o| o.answered.is_some()).count() as u64
    }
}
