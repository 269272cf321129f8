//! The run's fingerprint and flight recorder: every event feeds a hash (two
//! runs of one seed must end with the same hash), and the last events are
//! kept to explain a failure.

use std::collections::VecDeque;
use std::fmt;

use natrix_core::Instant;

/// FNV-1a, 64 bits: stable across Rust versions and platforms, unlike
/// `DefaultHasher`, so a trace hash printed today still means the same run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceHash(u64);

impl Default for TraceHash {
    fn default() -> Self {
        TraceHash(0xcbf2_9ce4_8422_2325)
    }
}

impl TraceHash {
    /// Mixes in bytes.
    pub fn bytes(&mut self, data: &[u8]) {
        for &b in data {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Mixes in a bulk payload, eight bytes per step (FNV-style over words:
    /// fast enough to hash every byte the servers send).
    pub fn data(&mut self, data: &[u8]) {
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            let v = u64::from_le_bytes(w.try_into().expect("eight bytes"));
            self.0 = (self.0 ^ v).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.bytes(words.remainder());
        self.u64(data.len() as u64);
    }

    /// Mixes in a number.
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    /// The hash so far.
    pub fn value(&self) -> u64 {
        self.0
    }
}

impl fmt::Display for TraceHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The most recent events, formatted only when a failure needs them.
#[derive(Debug)]
pub struct Recorder {
    capacity: usize,
    events: VecDeque<(Instant, String)>,
}

impl Recorder {
    /// Keeps the last `capacity` events.
    pub fn new(capacity: usize) -> Self {
        Recorder {
            capacity,
            events: VecDeque::with_capacity(capacity),
        }
    }

    /// Records one event; `describe` runs only here, so keep it cheap.
    pub fn push(&mut self, at: Instant, line: String) {
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back((at, line));
    }

    /// The kept events, oldest first, one per line with their virtual time.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for (at, line) in &self.events {
            let ns = at.as_nanos();
            out.push_str(&format!(
                "  t={}.{:09}s {line}\n",
                ns / 1_000_000_000,
                ns % 1_000_000_000
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_vector_and_order_sensitivity() {
        let mut h = TraceHash::default();
        h.bytes(b"a");
        assert_eq!(h.value(), 0xaf63_dc4c_8601_ec8c);
        let (mut x, mut y) = (TraceHash::default(), TraceHash::default());
        x.u64(1);
        x.u64(2);
        y.u64(2);
        y.u64(1);
        assert_ne!(x, y);
    }

    #[test]
    fn recorder_keeps_the_last_events() {
        let mut r = Recorder::new(2);
        for i in 0..5 {
            r.push(Instant::from_nanos(i), format!("e{i}"));
        }
        let d = r.dump();
        assert!(
            !d.contains("e2") && d.contains("e3") && d.contains("e4"),
            "{d}"
        );
    }
}
