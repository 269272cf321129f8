//! Process figures for `/varz` (memory, CPU), read from `/proc` on Linux.

use std::sync::Arc;
use std::time::{Duration, Instant};

use natrix_core::monitor::ProcessStats;

use crate::clock;
use crate::driver::Shared;

/// How often the process's figures are measured and handed to the core
/// (STATSZ, `$SYS.REQ.SERVER.*.VARZ` and the memory limit use them).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Measures the process on a timer and gives the figures to the core, as
/// long as the process lives.
pub async fn report(shared: Arc<Shared>) {
    let sampler = ProcessSampler::new();
    let mut ticks = tokio::time::interval(REPORT_INTERVAL);
    loop {
        ticks.tick().await;
        let stats = sampler.sample();
        shared.with_control(|c| c.handle_process_stats(clock::now(), stats));
    }
}

/// Samples the process's resident memory and average CPU use.
pub struct ProcessSampler {
    started: Instant,
    cores: u32,
}

impl Default for ProcessSampler {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessSampler {
    /// A sampler whose CPU average starts now.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        ProcessSampler { started: Instant::now(), cores }
    }

    /// Current figures; zeros where the platform does not tell.
    pub fn sample(&self) -> ProcessStats {
        ProcessStats { rss_bytes: rss_bytes().unwrap_or(0), cpu_percent: self.cpu_percent().unwrap_or(0.0), cores: self.cores }
    }

    fn cpu_percent(&self) -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the parenthesised command name; utime and stime are 14th and 15th overall.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        // Linux reports in clock ticks of 1/100 s on every mainstream configuration.
        Some(((ticks / 100.0) / elapsed * 100.0 * 100.0).round() / 100.0)
    }
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
