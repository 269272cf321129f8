//! `natrix-sim`: run, replay and CI-check deterministic simulations.
//!
//! ```text
//! natrix-sim run --seeds N [--faults none|network|all|js-…] [--start S] [--isolation]
//! natrix-sim replay SEED [--faults none|network|all|js-…] [--isolation]
//! natrix-sim ci
//! ```
//!
//! `--isolation` runs the account-isolation simulation instead of the
//! delivery one; a JetStream scenario (`--faults js-kill`, `js-power-loss`,
//! `js-bitflip-block`, `js-bitflip-meta`, `js-full-disk`) runs the
//! JetStream durability simulation; `js-consumer`, `js-work-queue` and
//! `js-kv` run the consumer and key-value simulation; `ci` runs the fixed
//! seeds of all of them.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use natrix_sim::jetstream::{self, Scenario};
use natrix_sim::{ci_seeds, isolation, run_seed, FaultMode, RunReport};

const USAGE: &str = "usage:
  natrix-sim run --seeds N [--faults none|network|all|js-kill|js-power-loss|js-bitflip-block|js-bitflip-meta|js-full-disk|js-consumer|js-work-queue|js-kv|js-mqtt] [--start S] [--isolation]
  natrix-sim replay SEED [--faults ...] [--isolation]
  natrix-sim ci";

/// What `--faults` names: a fault mode of the delivery and isolation
/// suites, or a JetStream scenario.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Faults {
    Mode(FaultMode),
    Js(Scenario),
}

impl std::str::FromStr for Faults {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.starts_with("js-") {
            s.parse().map(Faults::Js)
        } else {
            s.parse().map(Faults::Mode)
        }
    }
}

impl std::fmt::Display for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Faults::Mode(m) => m.fmt(f),
            Faults::Js(s) => s.fmt(f),
        }
    }
}

/// Which simulation a seed runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Suite {
    /// Delivery, ordering, queue groups, request-reply under faults.
    Delivery,
    /// Account isolation (`--isolation`).
    Isolation,
}

impl Suite {
    fn run(self, seed: u64, faults: Faults) -> RunReport {
        match (self, faults) {
            (_, Faults::Js(scenario)) => jetstream::run_seed(seed, scenario),
            (Suite::Delivery, Faults::Mode(m)) => run_seed(seed, m),
            (Suite::Isolation, Faults::Mode(m)) => isolation::run_seed(seed, m),
        }
    }

    /// What to add to a replay command.
    fn flag(self) -> &'static str {
        match self {
            Suite::Delivery => "",
            Suite::Isolation => " --isolation",
        }
    }
}

/// Totals over several runs.
#[derive(Default)]
struct Summary {
    runs: u64,
    events: u64,
    virtual_time: Duration,
    failures: Vec<(u64, Faults, Suite)>,
}

impl Summary {
    fn add(&mut self, r: &RunReport, faults: Faults, suite: Suite) {
        self.runs += 1;
        self.events += r.events;
        self.virtual_time += r.virtual_time;
        if r.failure.is_some() {
            self.failures.push((r.seed, faults, suite));
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
        for (seed, faults, suite) in &self.failures {
            println!(
                "  failed: natrix-sim replay {seed} --faults {faults}{}",
                suite.flag()
            );
        }
    }
}

fn report(r: &RunReport, faults: Faults, suite: Suite) {
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
                "trace hash {:016x}; replay: cargo run -p natrix-sim -- replay {} --faults {faults}{}",
                r.trace_hash,
                r.seed,
                suite.flag()
            );
        }
    }
}

fn run_many(seeds: impl Iterator<Item = (u64, Faults, Suite)>, total: u64) -> ExitCode {
    let start = Instant::now();
    let mut summary = Summary::default();
    let mut last_progress = Instant::now();
    for (seed, faults, suite) in seeds {
        let r = suite.run(seed, faults);
        report(&r, faults, suite);
        summary.add(&r, faults, suite);
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
    faults: Faults,
    suite: Suite,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let command = it.next().ok_or("missing command")?;
    let mut args = Args {
        command,
        positional: None,
        seeds: 100,
        start: 0,
        faults: Faults::Mode(FaultMode::Network),
        suite: Suite::Delivery,
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
            "--isolation" => args.suite = Suite::Isolation,
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
            let (faults, suite) = (args.faults, args.suite);
            run_many(
                (args.start..args.start + args.seeds).map(|s| (s, faults, suite)),
                args.seeds,
            )
        }
        "replay" => {
            let Some(seed) = args.positional else {
                eprintln!("replay needs a SEED\n{USAGE}");
                return ExitCode::from(2);
            };
            let start = Instant::now();
            let r = args.suite.run(seed, args.faults);
            report(&r, args.faults, args.suite);
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
            let seeds: Vec<(u64, Faults, Suite)> = ci_seeds()
                .into_iter()
                .map(|(s, f)| (s, Faults::Mode(f), Suite::Delivery))
                .chain(
                    isolation::ci_seeds()
                        .into_iter()
                        .map(|(s, f)| (s, Faults::Mode(f), Suite::Isolation)),
                )
                .chain(
                    jetstream::ci_seeds()
                        .into_iter()
                        .map(|(s, sc)| (s, Faults::Js(sc), Suite::Delivery)),
                )
                .collect();
            let total = seeds.len() as u64;
            run_many(seeds.into_iter(), total)
        }
        other => {
            eprintln!("unknown command {other:?}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
