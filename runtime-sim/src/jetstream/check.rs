//! The read-back checker: what the recovered stream serves against the
//! acknowledged history.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{parse_name, payload_of, subject_of, JsWorld};
use crate::model::Violation;

fn violation(invariant: &'static str, detail: String) -> Result<(), Violation> {
    Err(Violation { invariant, detail })
}

fn seqs(v: Option<&Value>) -> BTreeSet<u64> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// Checks the read-back of `w` (see the invariants in the crate README).
pub(super) fn check(w: &JsWorld) -> Result<(), Violation> {
    let info = w
        .read
        .info
        .as_ref()
        .expect("the read-back starts with STREAM.INFO");
    let state = &info["state"];
    let num = |k: &str| state.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (msgs, first, last, num_deleted) = (
        num("messages"),
        num("first_seq"),
        num("last_seq"),
        num("num_deleted"),
    );
    let deleted = seqs(state.get("deleted"));
    let lost = seqs(state.get("lost").and_then(|l| l.get("msgs")));
    let subjects = info["config"]["subjects"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if subjects != [Value::from("js.>")] || info["config"]["storage"] != "file" {
        return violation(
            "stream-recovered",
            format!("the stream came back with config {}", info["config"]),
        );
    }

    // Nothing served is corrupt, and nothing is stored twice.
    let mut held: BTreeMap<(usize, u64), u64> = BTreeMap::new();
    for (&seq, served) in &w.read.got {
        let Some((subject, payload)) = served else {
            continue;
        };
        let Some((c, n)) = parse_name(payload) else {
            return violation(
                "corrupt-served",
                format!("seq {seq}: payload {payload:?} names no message"),
            );
        };
        if c >= w.cfg.clients
            || payload[..] != payload_of(c, n, w.cfg.max_payload)[..]
            || subject[..] != *subject_of(c, n).as_bytes()
        {
            return violation(
                "corrupt-served",
                format!(
                    "seq {seq}: {subject:?} {payload:?} is not client {c} msg {n} as published"
                ),
            );
        }
        if let Some(other) = held.insert((c, n), seq) {
            return violation(
                "no-duplicate",
                format!("client {c} msg {n} stored at seq {other} and {seq}"),
            );
        }
    }

    // Every acknowledged message is there, as published; one the injected
    // damage cost must be reported gone.
    let mut damaged = 0;
    for (&seq, &(c, n)) in &w.acked {
        match w.read.got.get(&seq) {
            Some(Some(_)) if held.get(&(c, n)) == Some(&seq) => continue,
            Some(Some((subject, _))) => {
                return violation("lost-acked-write", format!("seq {seq} was acked for client {c} msg {n} but holds another ({subject:?})"));
            }
            _ => {}
        }
        let reported = lost.contains(&seq) || deleted.contains(&seq);
        damaged += 1;
        if !reported || damaged > w.damage_budget {
            let why = if reported {
                "more than the damage injected explains"
            } else {
                "not reported lost or deleted"
            };
            let d = format!(
                "seq {seq} (client {c} msg {n}) was acked and is gone, {why}; stream first {first} last {last} msgs {msgs}, lost {lost:?}, {} acked, damage budget {}",
                w.acked.len(),
                w.damage_budget
            );
            return violation("lost-acked-write", d);
        }
    }

    // The stream's figures agree with its messages.
    let served = w.read.got.values().filter(|s| s.is_some()).count() as u64;
    let span = if last >= first { last - first + 1 } else { 0 };
    let gaps: BTreeSet<u64> = w
        .read
        .got
        .iter()
        .filter(|(_, s)| s.is_none())
        .map(|(&q, _)| q)
        .collect();
    let consistent = served == msgs
        && span == msgs + num_deleted
        && (msgs == 0 || w.read.got.get(&first).is_some_and(Option::is_some))
        && deleted == gaps
        && w.acked.keys().next_back().is_none_or(|&top| top <= last);
    if !consistent {
        let d = format!(
            "state says msgs {msgs} first {first} last {last} num_deleted {num_deleted} deleted {deleted:?}; read back {served} messages, gaps {gaps:?}; highest acked {:?}",
            w.acked.keys().next_back()
        );
        return violation("consistent-state", d);
    }

    Ok(())
}
