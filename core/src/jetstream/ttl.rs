//! Per-message TTLs (`Nats-TTL`, on streams with `allow_msg_ttl`): the
//! header's syntax as nats-server reads it, and the schedule of messages
//! waiting to expire.

use std::collections::BTreeSet;

use crate::time::UnixNanos;

/// The header naming a message's TTL.
pub const HEADER: &[u8] = b"Nats-TTL";

/// A `Nats-TTL` value as nats-server reads it (`parseMessageTTL`): `never`
/// (any case) is -1; a Go duration of at least one second is its whole
/// seconds; otherwise a non-negative integer of seconds (0: no TTL).
/// `None` is an invalid TTL.
pub fn parse(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    if text.eq_ignore_ascii_case("never") {
        return Some(-1);
    }
    if let Some(ns) = parse_go_duration(text) {
        return (ns >= 1_000_000_000).then_some(ns / 1_000_000_000);
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Go's `time.ParseDuration`: an optional sign, then one or more decimal
/// numbers each with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), or a
/// bare `0`. Nanoseconds; `None` on a syntax error or overflow.
fn parse_go_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        let number = &rest[..number_len];
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * unit;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let ns = total as i64;
    Some(if negative { -ns } else { ns })
}

/// Messages waiting for their TTL, by expiry time.
#[derive(Debug, Default)]
pub struct Schedule {
    due: BTreeSet<(i64, u64)>,
}

impl Schedule {
    /// `seq`, stored at `stored`, expires `ttl_secs` later (if positive).
    pub fn add(&mut self, seq: u64, stored: UnixNanos, ttl_secs: i64) {
        if ttl_secs > 0 {
            let at = stored.0.saturating_add(ttl_secs.saturating_mul(1_000_000_000));
            self.due.insert((at, seq));
        }
    }

    /// When the next message expires.
    pub fn next(&self) -> Option<i64> {
        self.due.first().map(|&(at, _)| at)
    }

    /// Takes the sequences due at `wall`.
    pub fn take_due(&mut self, wall: UnixNanos) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some(&(at, seq)) = self.due.first() {
            if at > wall.0 {
                break;
            }
            self.due.pop_first();
            out.push(seq);
        }
        out
    }

    /// Forgets entries for sequences below `first_seq` (gone by limits or
    /// purges), so the schedule stays within the stream's messages.
    pub fn forget_below(&mut self, first_seq: u64) {
        self.due.retain(|&(_, seq)| seq >= first_seq);
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.due.len()
    }

    /// True when nothing waits to expire.
    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ttls_as_nats_server() {
        assert_eq!(parse(b"never"), Some(-1));
        assert_eq!(parse(b"NEVER"), Some(-1));
        assert_eq!(parse(b"2s"), Some(2));
        assert_eq!(parse(b"1m30s"), Some(90));
        assert_eq!(parse(b"1.5s"), Some(1));
        assert_eq!(parse(b"1h"), Some(3600));
        assert_eq!(parse(b"30"), Some(30));
        // Go reads "0" as a zero duration, under a second: invalid.
        assert_eq!(parse(b"0"), None);
        // Under a second, negative, or not a number: invalid.
        assert_eq!(parse(b"500ms"), None);
        assert_eq!(parse(b"-5s"), None);
        assert_eq!(parse(b"-5"), None);
        assert_eq!(parse(b"abc"), None);
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"5x"), None);
    }

    #[test]
    fn schedule_releases_in_time_order() {
        let mut s = Schedule::default();
        s.add(1, UnixNanos(0), 3);
        s.add(2, UnixNanos(0), 1);
        s.add(3, UnixNanos(0), -1);
        s.add(4, UnixNanos(0), 0);
        assert_eq!(s.len(), 2);
        assert_eq!(s.next(), Some(1_000_000_000));
        assert_eq!(s.take_due(UnixNanos(2_000_000_000)), vec![2]);
        s.forget_below(2);
        assert_eq!(s.len(), 0);
    }
}
