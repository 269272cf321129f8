//! `natrix-sim`: run, replay and CI-check deterministic simulations.
//!
//! ```text
//! natrix-sim run --seeds N [--faults none|network|all] [--start S]
//! natrix-sim replay SEED [--faults none|network|all]
//! natrix-sim ci
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use natrix_sim::{ci_seeds, run_seed, FaultMode, RunReport};

const USAGE: &str = "usage:
  natrix-sim run --seeds N [--faults none|network|all] [--start S]
  natrix-sim replay SEED [--faults none|network|all]
  natrix-sim ci";

/// Totals over several runs.
#[derive(Default)]
struct Summary {
    runs: u64,
    events: u64,
    virtual_time: Duration,
    failures: Vec<(u64, FaultMode)>,
}

impl Summary {
    fn add(&mut self, r: &RunReport, faults: FaultMode) {
        self.runs += 1;
        self.events += r.events;
        self.virtual_time += r.virtual_time;
        if r.failure.is_some() {
            self.failures.push((r.seed, faults));
        }
    }

    fn print(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64().max(1e-9);
        println!(
            "{} runs, {:.1} virtual seconds, {} events in {:.2}s ({:.0} events/s), {} failures",
            self.runs,
            self.virtual_time.as_secs_f64(),
            self.events,
            secs,
            self.events as f64 / secs,
            self.failures.len()
        );
        for (seed, faults) in &self.failures {
            println!("  failed: natrix-sim replay {seed} --faults {faults}");
        }
    }
}

fn report(r: &RunReport, faults: FaultMode) {
    match &r.failure {
        None => {}
        Some(f) => {
            let t = f.at.as_nanos();
            eprintln!(
                "FAILED seed {} (--faults {faults}): invariant {} at t={}.{:09}s",
                r.seed,
                f.invariant,
                t / 1_000_000_000,
                t % 1_000_000_000
            );
            eprintln!("  {}", f.detail);
            eprintln!("last events:\n{}", f.recent);
            eprintln!(
                "trace hash {:016x}; replay: cargo run -p natrix-sim -- replay {} --faults {faults}",
                r.trace_hash, r.seed
            );
        }
    }
}

fn run_many(seeds: impl Iterator<Item = (u64, FaultMode)>, total: u64) -> ExitCode {
    let start = Instant::now();
    let mut summary = Summary::default();
    let mut last_progress = Instant::now();
    for (seed, faults) in seeds {
        let r = run_seed(seed, faults);
        report(&r, faults);
        summary.add(&r, faults);
        if last_progress.elapsed() > Duration::from_secs(1) || summary.runs == total {
            let rate = summary.events as f64 / start.elapsed().as_secs_f64().max(1e-9);
            eprint!(
                "\r{}/{total} runs, {} failures, {:.0} events/s   ",
                summary.runs,
                summary.failures.len(),
                rate
            );
            last_progress = Instant::now();
        }
    }
    eprintln!();
    summary.print(start.elapsed());
    if summary.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

struct Args {
    command: String,
    positional: Option<u64>,
    seeds: u64,
    start: u64,
    faults: FaultMode,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let command = it.next().ok_or("missing command")?;
    let mut args = Args {
        command,
        positional: None,
        seeds: 100,
        start: 0,
        faults: FaultMode::Network,
    };
    let number = |v: Option<String>, what: &str| -> Result<u64, String> {
        v.ok_or(format!("{what} needs a value"))?
            .parse()
            .map_err(|e| format!("{what}: {e}"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seeds" => args.seeds = number(it.next(), "--seeds")?,
            "--start" => args.start = number(it.next(), "--start")?,
            "--faults" => args.faults = it.next().ok_or("--faults needs a value")?.parse()?,
            _ if args.positional.is_none() && !a.starts_with('-') => {
                args.positional = Some(number(Some(a), "SEED")?)
            }
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match args.command.as_str() {
        "run" => {
            let faults = args.faults;
            run_many(
                (args.start..args.start + args.seeds).map(|s| (s, faults)),
                args.seeds,
            )
        }
        "replay" => {
            let Some(seed) = args.positional else {
                eprintln!("replay needs a SEED\n{USAGE}");
                return ExitCode::from(2);
            };
            let start = Instant::now();
            let r = run_seed(seed, args.faults);
            report(&r, args.faults);
            let secs = start.elapsed().as_secs_f64();
            println!(
                "seed {seed} --faults {}: {} events, {:.1} virtual s, {} published, {} delivered, {} excused, {} replies, {} 503s, {} faults, server closes {:?}, trace {:016x}, {:.2}s ({:.0} events/s): {}",
                args.faults,
                r.events,
                r.virtual_time.as_secs_f64(),
                r.published,
                r.delivered,
                r.excused,
                r.replies,
                r.no_responders,
                r.faults,
                r.server_closes,
                r.trace_hash,
                secs,
                r.events as f64 / secs.max(1e-9),
                if r.failure.is_some() { "FAILED" } else { "ok" }
            );
            if r.failure.is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        "ci" => {
            let seeds = ci_seeds();
            let total = seeds.len() as u64;
            run_many(seeds.into_iter(), total)
        }
        other => {
            eprintln!("unknown command {other:?}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
