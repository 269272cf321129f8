//! The simulation: one thread, one seed, one event queue ordered by
//! (virtual time, sequence number). It owns every node, client, connection
//! and fault, drives the core `Server`s through their public API only, and
//! checks the invariants as it goes.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use natrix_core::config::ServerOptions;
use natrix_core::{ConnId, Instant, Server, UnixNanos};

use crate::client::{Client, Role};
use crate::config::{FaultMode, SimConfig};
use crate::disk::{DiskConfig, SharedDisk, SimDisk};
use crate::model::{LinkId, Model, Violation};
use crate::net::{Dir, Link, LinkState};
use crate::rng::SimRng;
use crate::trace::{Recorder, TraceHash};
use crate::wire::ServerParser;

mod clients;
mod faults;
mod network;
mod nodes;

/// Events the queue can hold. Each carries enough to detect that it went
/// stale (a node incarnation, a client's connection generation).
#[derive(Clone, Debug)]
enum Ev {
    NodeTimer { node: usize },
    DiskSync { node: usize },
    NodeRestart { node: usize },
    Pump { link: LinkId, dir: Dir },
    Deliver { link: LinkId, dir: Dir },
    FlushDeadline { link: LinkId },
    ClientConnect { client: usize },
    ClientTick { client: usize, generation: u64 },
    ClientLost { client: usize, link: LinkId },
    Fault,
    HealPartition { id: usize },
    RestoreLink { link: LinkId },
    ResumeReading { client: usize, link: LinkId },
    RestoreDisk { node: usize },
    DrainStart,
}

impl Ev {
    fn hash_into(&self, h: &mut TraceHash) {
        let (tag, a, b) = match *self {
            Ev::NodeTimer { node } => (0, node, 0),
            Ev::DiskSync { node } => (1, node, 0),
            Ev::NodeRestart { node } => (2, node, 0),
            Ev::Pump { link, dir } => (3, link, dir as usize),
            Ev::Deliver { link, dir } => (4, link, dir as usize),
            Ev::FlushDeadline { link } => (5, link, 0),
            Ev::ClientConnect { client } => (6, client, 0),
            Ev::ClientTick { client, generation } => (7, client, generation as usize),
            Ev::ClientLost { client, link } => (8, client, link),
            Ev::Fault => (9, 0, 0),
            Ev::HealPartition { id } => (10, id, 0),
            Ev::RestoreLink { link } => (11, link, 0),
            Ev::ResumeReading { client, link } => (12, client, link),
            Ev::RestoreDisk { node } => (13, node, 0),
            Ev::DrainStart => (14, 0, 0),
        };
        h.u64(tag);
        h.u64(a as u64);
        h.u64(b as u64);
    }
}


/// A node's wall clock: virtual time plus skew, drift and accumulated jumps.
#[derive(Clone, Copy, Debug)]
struct WallClock {
    offset_ns: i64,
    drift_ppm: i64,
}

impl WallClock {
    const EPOCH_NS: i64 = 1_700_000_000_000_000_000;

    fn read(&self, now: Instant) -> UnixNanos {
        let t = now.as_nanos() as i64;
        UnixNanos(Self::EPOCH_NS + self.offset_ns + t + t / 1_000_000 * self.drift_ppm)
    }
}

struct Node {
    server: Option<Server>,
    incarnation: u64,
    disk: SharedDisk,
    wall: WallClock,
    conns: BTreeMap<ConnId, LinkId>,
    timer_at: Option<Instant>,
    rng: SimRng,
}

struct ClientSlot {
    client: Client,
    link: Option<LinkId>,
    generation: u64,
    reading: bool,
    parser: ServerParser,
    rx: Vec<Bytes>,
}

struct Partition {
    node: usize,
    clients: Vec<usize>,
    up: bool,
    down: bool,
}

/// What went wrong in a failed run.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The invariant broken.
    pub invariant: &'static str,
    /// Details.
    pub detail: String,
    /// Virtual time of the failure.
    pub at: Instant,
    /// The last events before it, formatted.
    pub recent: String,
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// Hash of every event of the run: equal hashes, equal runs.
    pub trace_hash: u64,
    /// Events processed.
    pub events: u64,
    /// Virtual time simulated.
    pub virtual_time: Duration,
    /// Messages published and accepted.
    pub published: u64,
    /// Deliveries checked.
    pub delivered: u64,
    /// Faults injected.
    pub faults: u64,
    /// Connections the server closed (slow consumer, stale), by reason.
    pub server_closes: BTreeMap<&'static str, u64>,
    /// Deliveries owed to connections that closed, hence excused.
    pub excused: u64,
    /// Requests answered by a responder.
    pub replies: u64,
    /// Requests answered with a 503.
    pub no_responders: u64,
    /// The broken invariant, if any.
    pub failure: Option<Failure>,
}

/// Longest time a closing connection may take to flush before it is cut.
const FLUSH_DEADLINE: Duration = Duration::from_secs(2);
/// A bound on the simulator's own queue: more means something runs away.
const MAX_QUEUED_EVENTS: usize = 2_000_000;

/// One simulation run of real `natrix_core::Server` nodes.
pub struct World {
    cfg: SimConfig,
    now: Instant,
    end: Instant,
    queue: crate::schedule::EventQueue<Ev>,
    net_rng: SimRng,
    fault_rng: SimRng,
    nodes: Vec<Node>,
    clients: Vec<ClientSlot>,
    links: Vec<Link>,
    partitions: Vec<Option<Partition>>,
    model: Model,
    hash: TraceHash,
    recorder: Recorder,
    events: u64,
    faults: u64,
    delivered_msgs: u64,
    server_closes: BTreeMap<&'static str, u64>,
    deferred_ends: Option<Vec<(usize, LinkId)>>,
    draining: bool,
    options: ServerOptions,
    failure: Option<Failure>,
}

impl World {
    /// Builds the world the seed describes.
    pub fn new(cfg: SimConfig) -> Self {
        let mut rng = SimRng::new(cfg.seed);
        let options = cfg.server_options(&mut rng);
        let net_rng = rng.fork();
        let fault_rng = rng.fork();
        let nodes = (0..cfg.nodes).map(|_| Self::make_node(&mut rng)).collect();
        let mut model = Model::new();
        let clients = cfg
            .roles(&mut rng)
            .into_iter()
            .enumerate()
            .map(|(id, role)| {
                if role == Role::Responder {
                    model.set_responder(id);
                }
                let home = rng.index(cfg.nodes);
                let churn = cfg.faults != FaultMode::None;
                let client = Client::new(id, role, home, rng.fork(), churn);
                ClientSlot {
                    client,
                    link: None,
                    generation: 0,
                    reading: true,
                    parser: ServerParser::new(),
                    rx: Vec::new(),
                }
            })
            .collect();
        let end = Instant::ZERO + cfg.active + cfg.drain;
        World {
            cfg,
            now: Instant::ZERO,
            end,
            queue: Default::default(),
            net_rng,
            fault_rng,
            nodes,
            clients,
            links: Vec::new(),
            partitions: Vec::new(),
            model,
            hash: TraceHash::default(),
            recorder: Recorder::new(50),
            events: 0,
            faults: 0,
            delivered_msgs: 0,
            server_closes: BTreeMap::new(),
            deferred_ends: None,
            draining: false,
            options,
            failure: None,
        }
    }

    fn make_node(rng: &mut SimRng) -> Node {
        let wall = WallClock {
            offset_ns: rng.range(0, 2_000_000_000) as i64 - 1_000_000_000,
            drift_ppm: rng.range(0, 200) as i64 - 100,
        };
        Node {
            server: None,
            incarnation: 0,
            disk: SharedDisk::new(SimDisk::new(DiskConfig::default(), rng.fork())),
            wall,
            conns: BTreeMap::new(),
            timer_at: None,
            rng: rng.fork(),
        }
    }

    /// Runs to the end (or the first violation) and reports.
    pub fn run(mut self) -> RunReport {
        for node in 0..self.nodes.len() {
            self.start_node(node);
        }
        for client in 0..self.clients.len() {
            let at = self
                .net_rng
                .duration(Duration::ZERO, Duration::from_millis(50));
            self.schedule(at, Ev::ClientConnect { client });
        }
        if self.cfg.faults != FaultMode::None {
            self.schedule(Duration::from_millis(100), Ev::Fault);
        }
        self.schedule(self.cfg.active, Ev::DrainStart);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.event_loop()));
        if let Err(panic) = outcome {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            self.fail(Violation {
                invariant: "no-panic",
                detail: text,
            });
        }
        if self.failure.is_none() {
            self.final_checks();
        }
        self.hash.u64(self.events);
        let stats = self.model.stats().clone();
        RunReport {
            seed: self.cfg.seed,
            trace_hash: self.hash.value(),
            events: self.events,
            virtual_time: self.now - Instant::ZERO,
            published: stats.published,
            delivered: stats.delivered,
            faults: self.faults,
            server_closes: self.server_closes,
            excused: stats.excused,
            replies: stats.replies,
            no_responders: stats.no_responders,
            failure: self.failure,
        }
    }

    fn event_loop(&mut self) {
        while let Some(s) = self.queue.pop() {
            if s.at > self.end {
                break;
            }
            self.now = s.at;
            for node in &self.nodes {
                node.disk.lock().set_now(s.at);
            }
            self.events += 1;
            self.hash.u64(s.at.as_nanos());
            s.ev.hash_into(&mut self.hash);
            self.recorder.push(s.at, format!("{:?}", s.ev));
            self.dispatch(s.ev);
            if self.failure.is_some() {
                return;
            }
            if self.queue.len() > MAX_QUEUED_EVENTS {
                let d = format!("{} events queued", self.queue.len());
                self.fail(Violation {
                    invariant: "memory-bounded",
                    detail: d,
                });
                return;
            }
        }
        self.now = self.now.max(self.end);
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::NodeTimer { node } => self.node_timer(node),
            Ev::DiskSync { node } => self.disk_sync(node),
            Ev::NodeRestart { node } => self.start_node(node),
            Ev::Pump { link, dir } => self.pump(link, dir),
            Ev::Deliver { link, dir } => self.deliver(link, dir),
            Ev::FlushDeadline { link } => self.close_link(link, None),
            Ev::ClientConnect { client } => self.connect(client),
            Ev::ClientTick { client, generation } => self.client_tick(client, generation),
            Ev::ClientLost { client, link } => self.client_lost(client, link),
            Ev::Fault => self.inject_fault(),
            Ev::HealPartition { id } => self.heal_partition(id),
            Ev::RestoreLink { link } => self.restore_link(link),
            Ev::ResumeReading { client, link } => self.resume_reading(client, link),
            Ev::RestoreDisk { node } => self.nodes[node]
                .disk
                .lock()
                .set_capacity(DiskConfig::default().capacity_bytes),
            Ev::DrainStart => self.drain_start(),
        }
    }

    fn schedule(&mut self, after: Duration, ev: Ev) {
        self.schedule_at(self.now + after, ev);
    }

    fn schedule_at(&mut self, at: Instant, ev: Ev) {
        self.queue.push(at, ev);
    }

    fn fail(&mut self, v: Violation) {
        if self.failure.is_none() {
            let recent = self.recorder.dump();
            self.failure = Some(Failure {
                invariant: v.invariant,
                detail: v.detail,
                at: self.now,
                recent,
            });
        }
    }

    fn check(&mut self, r: Result<(), Violation>) {
        if let Err(v) = r {
            self.fail(v);
        }
    }

    fn final_checks(&mut self) {
        let r = self.model.final_check();
        self.check(r);
        for client in 0..self.clients.len() {
            let slot = &self.clients[client];
            let Some(link) = slot.link else { continue };
            let c = &slot.client;
            if self.links[link].state == LinkState::Open
                && c.session_started
                && c.pongs_received != c.pings_sent
            {
                let d = format!(
                    "client {client} on link {link} sent {} PINGs, got {} PONGs",
                    c.pings_sent, c.pongs_received
                );
                return self.fail(Violation {
                    invariant: "ping-pong",
                    detail: d,
                });
            }
        }
    }
}
