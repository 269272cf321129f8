//! Progress line, latency histograms and the final summary.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

/// Counters the workers bump and the progress line reads.
#[derive(Default)]
pub struct Progress {
    /// Messages published.
    pub published: AtomicU64,
    /// Messages received (all receivers together).
    pub received: AtomicU64,
    /// Set when the run is over.
    pub done: AtomicBool,
}

impl Progress {
    /// Adds to the published count.
    pub fn add_published(&self, n: u64) {
        self.published.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds to the received count.
    pub fn add_received(&self, n: u64) {
        self.received.fetch_add(n, Ordering::Relaxed);
    }
}

/// Prints a progress line to stderr every half second while stderr is a
/// terminal (a captured run stays clean).
pub fn spawn_progress(
    progress: Arc<Progress>,
    total: u64,
    quiet: bool,
) -> Option<thread::JoinHandle<()>> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    Some(thread::spawn(move || {
        let started = Instant::now();
        while !progress.done.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(500));
            let p = progress.published.load(Ordering::Relaxed);
            let r = progress.received.load(Ordering::Relaxed);
            let s = started.elapsed().as_secs_f64();
            eprint!("\r  {s:6.1}s  published {p}/{total}  received {r}        ");
            let _ = std::io::stderr().flush();
        }
        eprint!("\r{:70}\r", "");
    }))
}

/// Exits with status 2 if the run is still going after `timeout`.
pub fn spawn_watchdog(timeout: Duration, progress: Arc<Progress>) {
    thread::spawn(move || {
        thread::sleep(timeout);
        let p = progress.published.load(Ordering::Relaxed);
        let r = progress.received.load(Ordering::Relaxed);
        eprintln!("\nFAIL: timed out after {timeout:?} (published {p}, received {r})");
        std::process::exit(2);
    });
}

/// A latency histogram in nanoseconds, 1 ns to 60 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Latency percentiles in microseconds, as JSON.
pub fn latency_json(h: &Histogram<u64>) -> Value {
    let us = |ns: u64| (ns as f64 / 1000.0 * 10.0).round() / 10.0;
    json!({
        "count": h.len(),
        "min": us(h.min()),
        "mean": us(h.mean() as u64),
        "p50": us(h.value_at_quantile(0.50)),
        "p90": us(h.value_at_quantile(0.90)),
        "p99": us(h.value_at_quantile(0.99)),
        "p99_9": us(h.value_at_quantile(0.999)),
        "max": us(h.max()),
    })
}

/// What one throughput run measured.
pub struct Summary {
    /// Mode name.
    pub mode: &'static str,
    /// Messages published.
    pub msgs: u64,
    /// Payload bytes per message.
    pub size: usize,
    /// Seconds from the first publish to the last delivery (or flush).
    pub seconds: f64,
    /// Messages delivered to receivers in total (fan-out counts each copy).
    pub delivered: u64,
    /// Latency, for modes that measure it.
    pub latency: Option<Histogram<u64>>,
    /// Mode-specific fields.
    pub extra: Map<String, Value>,
}

impl Summary {
    /// Prints the human report and the JSON line (the last line of stdout).
    pub fn print(&self, pubs: u32, subs: u32) {
        let rate = self.msgs as f64 / self.seconds;
        let bytes = self.msgs * self.size as u64;
        println!(
            "{}: {} msgs x {} B in {:.3}s: {:.0} msgs/s, {:.1} MiB/s",
            self.mode,
            self.msgs,
            self.size,
            self.seconds,
            rate,
            bytes as f64 / self.seconds / (1 << 20) as f64
        );
        if self.delivered > 0 {
            println!(
                "  delivered {} ({:.0} msgs/s)",
                self.delivered,
                self.delivered as f64 / self.seconds
            );
        }
        if let Some(h) = &self.latency {
            let l = latency_json(h);
            println!(
                "  latency us: p50 {} p90 {} p99 {} p99.9 {} max {}",
                l["p50"], l["p90"], l["p99"], l["p99_9"], l["max"]
            );
        }
        let mut j = json!({
            "mode": self.mode,
            "msgs": self.msgs,
            "size": self.size,
            "pubs": pubs,
            "subs": subs,
            "bytes": bytes,
            "seconds": (self.seconds * 1e6).round() / 1e6,
            "msgs_per_sec": rate.round(),
            "bytes_per_sec": (bytes as f64 / self.seconds).round(),
            "delivered": self.delivered,
            "delivered_per_sec": (self.delivered as f64 / self.seconds).round(),
        });
        if let Some(h) = &self.latency {
            j["latency_us"] = latency_json(h);
        }
        for (k, v) in &self.extra {
            j[k] = v.clone();
        }
        println!("{j}");
    }
}
