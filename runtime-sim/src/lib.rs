//! natrix-sim: deterministic simulation of natrix nodes.
//!
//! One thread, one seed, one event queue ordered by (virtual time, sequence
//! number). The simulator runs real `natrix_core::Server`s, drives them only
//! through their public sans-IO API, and surrounds them with a simulated
//! network (latency, arbitrary chunking, resets, partitions, slow links,
//! clients that stop reading), simulated disks ([`disk::SimDisk`]), skewed
//! and jumping wall clocks, and clients that speak the real wire protocol
//! through their own encoder and parser. Checkers compare every delivery
//! with a model ([`model::Model`]). A failing seed prints itself and replays
//! exactly; every run ends with a trace hash that proves it.
//!
//! See README.md in this crate for how to run, replay and extend it.

#![forbid(unsafe_code)]

pub mod client;
pub mod config;
pub mod disk;
pub mod isolation;
pub mod jetstream;
pub mod model;
pub mod net;
pub mod rng;
mod schedule;
pub mod subject;
pub mod trace;
pub mod wire;
pub mod world;

pub use config::{FaultMode, Mutation, SimConfig};
pub use world::{Failure, RunReport, World};

/// Runs the standard simulation for `seed`.
pub fn run_seed(seed: u64, faults: FaultMode) -> RunReport {
    World::new(SimConfig::new(seed, faults)).run()
}

/// Runs a simulation with an explicit configuration.
pub fn run(config: SimConfig) -> RunReport {
    World::new(config).run()
}

/// The seeds `natrix-sim ci` runs: fixed, so CI is reproducible, twenty
/// per fault mode (a few seconds in all).
pub fn ci_seeds() -> Vec<(u64, FaultMode)> {
    let modes = [
        (0, FaultMode::None),
        (1_000, FaultMode::Network),
        (2_000, FaultMode::All),
    ];
    modes
        .iter()
        .flat_map(|&(base, mode)| (1..=20).map(move |s| (base + s, mode)))
        .chain(REGRESSION_SEEDS.iter().copied())
        .collect()
}

/// Every seed that ever failed, with the fault mode it failed in, so that
/// what it found stays fixed.
pub const REGRESSION_SEEDS: &[(u64, FaultMode)] = &[
    // The client read bytes left in the receive buffer of a connection the
    // network had already closed (and the model had already written off).
    (102_564, FaultMode::All),
    // A client hung up while a partition held back its last bytes and its
    // FIN; the server rightly closed the half-open link as stale, and the
    // checker, which marked only open links as partitioned, called it
    // unexplained.
    (610_226, FaultMode::Network),
    // A receiver that was draining and also sent ops was cut as a slow
    // consumer by the check after each op, which ignored draining.
    (700_563, FaultMode::All),
];
