//! What one run simulates, all derived from its seed.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use natrix_core::config::ServerOptions;

use crate::client::Role;
use crate::rng::SimRng;

/// Which faults a run injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultMode {
    /// A perfect network: nothing may be lost.
    None,
    /// Resets, partitions, slow links, clients that stop reading.
    Network,
    /// The network faults plus node crashes, clock jumps and full disks.
    All,
}

impl FromStr for FaultMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(FaultMode::None),
            "network" => Ok(FaultMode::Network),
            "all" => Ok(FaultMode::All),
            _ => Err(format!("unknown fault mode {s:?} (none, network, all)")),
        }
    }
}

impl fmt::Display for FaultMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultMode::None => "none",
            FaultMode::Network => "network",
            FaultMode::All => "all",
        })
    }
}

/// A deliberate break in the delivery path, to prove the checkers notice.
/// It sits between the server's output and the client, never in the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Deliver faithfully.
    None,
    /// Drop the `nth` message delivered in the run.
    DropMessage {
        /// Which one (0-based).
        nth: u64,
    },
    /// Deliver the `nth` message twice.
    DuplicateMessage {
        /// Which one (0-based).
        nth: u64,
    },
    /// From the `nth` delivery on, the first queue-group message also goes to
    /// a second member of its group.
    QueueDoubleDelivery {
        /// Deliveries to let through first.
        nth: u64,
    },
}

/// The shape of one run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed everything derives from.
    pub seed: u64,
    /// Faults to inject.
    pub faults: FaultMode,
    /// Delivery-path mutation (checker self-tests only).
    pub mutation: Mutation,
    /// Independent server nodes.
    pub nodes: usize,
    /// Virtual time during which clients create work and faults happen.
    pub active: Duration,
    /// Virtual time after that for everything to settle before the final checks.
    pub drain: Duration,
}

impl SimConfig {
    /// The standard run for `seed`.
    pub fn new(seed: u64, faults: FaultMode) -> Self {
        let mut rng = SimRng::new(seed ^ 0x5eed_c0f1_9000_0001);
        SimConfig {
            seed,
            faults,
            mutation: Mutation::None,
            nodes: rng.range(1, 3) as usize,
            active: Duration::from_millis(rng.range(3_000, 12_000)),
            drain: Duration::from_secs(8),
        }
    }

    /// The server options of every node in this run: small buffers and short
    /// timers, so slow-consumer and ping logic run often.
    pub fn server_options(&self, rng: &mut SimRng) -> ServerOptions {
        ServerOptions {
            server_name: None,
            host: "127.0.0.1".to_owned(),
            max_pending_bytes: rng.range(128 * 1024, 4 * 1024 * 1024),
            write_deadline: rng.duration(Duration::from_millis(500), Duration::from_secs(3)),
            ping_interval: rng.duration(Duration::from_millis(500), Duration::from_secs(3)),
            ping_max: 2,
            // JetStream runs on every node, on its simulated disk.
            jetstream: true,
            ..ServerOptions::default()
        }
    }

    /// The clients of this run, by role.
    pub fn roles(&self, rng: &mut SimRng) -> Vec<Role> {
        let mut roles = Vec::new();
        let counts = [
            (Role::Publisher, rng.range(2, 6)),
            (Role::Subscriber, rng.range(3, 10)),
            (Role::Requester, rng.range(1, 4)),
            (Role::Responder, rng.range(0, 4)),
        ];
        for (role, n) in counts {
            roles.extend(std::iter::repeat_n(role, n as usize));
        }
        roles
    }
}
