//! The simulation: one thread, one seed, one event queue ordered by
//! (virtual time, sequence number). It owns every node, client, connection
//! and fault, drives the core `Server`s through their public API only, and
//! checks the invariants as it goes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use natrix_core::config::ServerOptions;
use natrix_core::server::CloseReason;
use natrix_core::{ConnId, Instant, Output, UnixNanos};

use crate::client::{Client, Observed, Outbox, Role, TickAction};
use crate::config::{FaultMode, Mutation, SimConfig};
use crate::disk::{DiskConfig, SimDisk};
use crate::model::{LinkId, Model, ModelOp, Violation};
use crate::net::{Dir, Link, LinkState, Pipe};
use crate::rng::SimRng;
use crate::server::SimServer;
use crate::trace::{Recorder, TraceHash};
use crate::wire::{ServerOp, ServerParser};

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

struct Scheduled {
    at: Instant,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
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

struct Node<S> {
    server: Option<S>,
    incarnation: u64,
    disk: SimDisk,
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

/// One simulation run, of nodes running `S` (the real `natrix_core::Server`
/// unless a test substitutes another implementation of [`SimServer`]).
pub struct World<S: SimServer = natrix_core::Server> {
    cfg: SimConfig,
    now: Instant,
    end: Instant,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled>>,
    net_rng: SimRng,
    fault_rng: SimRng,
    nodes: Vec<Node<S>>,
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

impl<S: SimServer> World<S> {
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
            seq: 0,
            queue: BinaryHeap::new(),
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

    fn make_node(rng: &mut SimRng) -> Node<S> {
        let wall = WallClock {
            offset_ns: rng.range(0, 2_000_000_000) as i64 - 1_000_000_000,
            drift_ppm: rng.range(0, 200) as i64 - 100,
        };
        Node {
            server: None,
            incarnation: 0,
            disk: SimDisk::new(DiskConfig::default(), rng.fork()),
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
        while let Some(Reverse(s)) = self.queue.pop() {
            if s.at > self.end {
                break;
            }
            self.now = s.at;
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
                .set_capacity(DiskConfig::default().capacity_bytes),
            Ev::DrainStart => self.drain_start(),
        }
    }

    fn schedule(&mut self, after: Duration, ev: Ev) {
        self.schedule_at(self.now + after, ev);
    }

    fn schedule_at(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            ev,
        }));
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

    // ---- nodes -------------------------------------------------------------

    fn start_node(&mut self, node: usize) {
        let now = self.now;
        let n = &mut self.nodes[node];
        if n.server.is_some() {
            return;
        }
        n.incarnation += 1;
        n.timer_at = None;
        n.conns.clear();
        let wall = n.wall.read(now);
        let seed = n.rng.seed32();
        n.server = Some(S::new(self.options.clone(), seed, now, wall));
        self.recorder.push(
            now,
            format!("node {node} started (incarnation {})", n.incarnation),
        );
        self.drain_node(node);
    }

    fn crash_node(&mut self, node: usize) {
        if self.nodes[node].server.take().is_none() {
            return;
        }
        let links: Vec<LinkId> = self.nodes[node].conns.values().copied().collect();
        self.nodes[node].conns.clear();
        for link in links {
            self.close_link(link, None);
        }
        self.nodes[node].disk.crash();
        self.model.node_reset(node);
        let after = self
            .fault_rng
            .duration(Duration::from_millis(200), Duration::from_secs(2));
        self.schedule(after, Ev::NodeRestart { node });
    }

    fn node_timer(&mut self, node: usize) {
        let now = self.now;
        let n = &mut self.nodes[node];
        if n.timer_at.is_some_and(|t| t <= now) {
            n.timer_at = None;
        }
        let Some(server) = n.server.as_mut() else {
            return;
        };
        if server.poll_timeout().is_some_and(|t| t <= now) {
            server.handle_timeout(now);
            self.drain_node(node);
        }
    }

    fn disk_sync(&mut self, node: usize) {
        let now = self.now;
        let done = self.nodes[node].disk.complete_due(now);
        for token in done {
            self.hash.u64(token.0);
        }
    }

    /// Carries out everything the node's server asked for, then rearms its timer.
    fn drain_node(&mut self, node: usize) {
        loop {
            let Some(server) = self.nodes[node].server.as_mut() else {
                return;
            };
            let Some(out) = server.poll_output() else {
                break;
            };
            match out {
                Output::Transmit { conn, bytes } => self.transmit(node, conn, bytes),
                Output::Close { conn, reason } => self.server_close(node, conn, reason),
                Output::Log(line) => {
                    let text = format!("node {node} log {line}");
                    self.recorder.push(self.now, text);
                }
            }
        }
        self.rearm_timer(node);
        self.rearm_disk(node);
    }

    fn rearm_timer(&mut self, node: usize) {
        let now = self.now;
        let n = &mut self.nodes[node];
        let Some(t) = n.server.as_ref().and_then(S::poll_timeout) else {
            return;
        };
        let t = t.max(now);
        if n.timer_at.is_none_or(|at| t < at) {
            n.timer_at = Some(t);
            self.schedule_at(t, Ev::NodeTimer { node });
        }
    }

    fn rearm_disk(&mut self, node: usize) {
        if let Some(due) = self.nodes[node].disk.next_sync_due() {
            self.schedule_at(due.max(self.now), Ev::DiskSync { node });
        }
    }

    fn link_of(&mut self, node: usize, conn: ConnId, what: &str) -> Option<LinkId> {
        let link = self.nodes[node].conns.get(&conn).copied();
        if link.is_none() {
            let d = format!("node {node} sent {what} for {conn}, which is closed or unknown");
            self.fail(Violation {
                invariant: "no-output-after-close",
                detail: d,
            });
        }
        link
    }

    fn transmit(&mut self, node: usize, conn: ConnId, bytes: Bytes) {
        let Some(link) = self.link_of(node, conn, "Transmit") else {
            return;
        };
        // The server's output, byte for byte: replays must agree on content.
        self.hash.data(&bytes);
        let max_pending = self.options.max_pending_bytes;
        let l = &mut self.links[link];
        if l.server_pending > max_pending {
            let d = format!(
                "{conn} had {} bytes pending (max_pending {max_pending}) and got {} more",
                l.server_pending,
                bytes.len()
            );
            self.fail(Violation {
                invariant: "max-pending",
                detail: d,
            });
            return;
        }
        if l.server_pending == 0 {
            l.progress_at = self.now;
        }
        l.server_pending += bytes.len() as u64;
        l.down.queued.extend_from_slice(&bytes);
        self.kick(link, Dir::Down);
        self.check_memory(node);
    }

    fn check_memory(&mut self, node: usize) {
        let per_conn =
            self.options.max_pending_bytes + u64::from(self.options.max_payload_bytes) + 4096;
        let conns = self.nodes[node].conns.len() as u64;
        let total: u64 = self.nodes[node]
            .conns
            .values()
            .map(|&l| self.links[l].server_pending)
            .sum();
        if total > conns * per_conn {
            let d = format!("node {node} holds {total} outbound bytes for {conns} connections");
            self.fail(Violation {
                invariant: "memory-bounded",
                detail: d,
            });
        }
    }

    fn server_close(&mut self, node: usize, conn: ConnId, reason: CloseReason) {
        let Some(link) = self.link_of(node, conn, "Close") else {
            return;
        };
        self.nodes[node].conns.remove(&conn);
        if let Err(why) = self.close_justified(link, reason) {
            let d = format!("node {node} closed {conn} ({reason}) but {why}");
            self.fail(Violation {
                invariant: "no-unexplained-close",
                detail: d,
            });
            return;
        }
        *self.server_closes.entry(reason.as_str()).or_default() += 1;
        self.links[link].state = LinkState::Flushing;
        self.recorder.push(
            self.now,
            format!("node {node} closes link {link} ({reason})"),
        );
        match &mut self.deferred_ends {
            Some(later) => later.push((node, link)),
            None => self.model.link_ended(node, link),
        }
        self.schedule(FLUSH_DEADLINE, Ev::FlushDeadline { link });
        self.maybe_finish(link);
    }

    /// Checks a server-initiated close against what the simulator saw: slow
    /// consumers must really be over `max_pending` or stalled past
    /// `write_deadline`; a stale connection or an auth timeout needs a fault.
    fn close_justified(&self, link: LinkId, reason: CloseReason) -> Result<(), String> {
        let l = &self.links[link];
        let (pending, max) = (l.server_pending, self.options.max_pending_bytes);
        match reason {
            CloseReason::SlowConsumerPendingBytes if pending > max => Ok(()),
            CloseReason::SlowConsumerPendingBytes => Err(format!(
                "only {pending} bytes were pending (max_pending {max})"
            )),
            CloseReason::SlowConsumerWriteDeadline => {
                let stalled = self.now - l.progress_at;
                if pending > 0 && stalled >= self.options.write_deadline {
                    Ok(())
                } else {
                    Err(format!(
                        "{pending} bytes pending, last write progress {stalled:?} ago"
                    ))
                }
            }
            CloseReason::StaleConnection | CloseReason::AuthenticationTimeout if l.faulted => {
                Ok(())
            }
            _ => Err(format!(
                "no fault explains it (link faulted: {})",
                l.faulted
            )),
        }
    }

    // ---- network -----------------------------------------------------------

    fn pipe(&mut self, link: LinkId, dir: Dir) -> &mut Pipe {
        let l = &mut self.links[link];
        match dir {
            Dir::Up => &mut l.up,
            Dir::Down => &mut l.down,
        }
    }

    /// Makes sure a pump will move `dir`'s queued bytes.
    fn kick(&mut self, link: LinkId, dir: Dir) {
        let p = self.pipe(link, dir);
        if p.pump_scheduled || p.queued.is_empty() || p.in_flight >= p.window {
            return;
        }
        p.pump_scheduled = true;
        self.schedule(Duration::ZERO, Ev::Pump { link, dir });
    }

    fn blocked(&self, link: LinkId, dir: Dir) -> bool {
        let l = &self.links[link];
        self.partitions.iter().flatten().any(|p| {
            p.node == l.node
                && p.clients.contains(&l.client)
                && if dir == Dir::Up { p.up } else { p.down }
        })
    }

    fn pump(&mut self, link: LinkId, dir: Dir) {
        if self.links[link].state == LinkState::Closed {
            return;
        }
        let latency = self.links[link].latency + self.links[link].slow_extra;
        let jitter = self.net_rng.duration(Duration::ZERO, latency / 4);
        let l = &mut self.links[link];
        let ns_per_byte = l.ns_per_byte;
        let p = match dir {
            Dir::Up => &mut l.up,
            Dir::Down => &mut l.down,
        };
        p.pump_scheduled = false;
        let room = p.window.saturating_sub(p.in_flight).min(p.queued.len());
        if room == 0 {
            return;
        }
        let n = self.net_rng.chunk_size(room);
        let chunk = p.queued.split_to(n).freeze();
        p.in_flight += n;
        let due = (self.now + latency + jitter).max(p.last_due);
        p.last_due = due;
        p.net.push_back((due, chunk));
        let more = !p.queued.is_empty() && p.in_flight < p.window;
        if more {
            p.pump_scheduled = true;
        }
        self.schedule_at(due, Ev::Deliver { link, dir });
        if more {
            self.schedule(
                Duration::from_nanos(n as u64 * ns_per_byte),
                Ev::Pump { link, dir },
            );
        }
        if dir == Dir::Down {
            self.written(link, n);
        }
    }

    /// The server's bytes entered the network: report them written.
    fn written(&mut self, link: LinkId, n: usize) {
        let l = &mut self.links[link];
        l.server_pending = l.server_pending.saturating_sub(n as u64);
        l.progress_at = self.now;
        let (node, inc, conn, state) = (l.node, l.node_inc, l.conn, l.state);
        if state != LinkState::Open && state != LinkState::ClientFin {
            return;
        }
        let now = self.now;
        let nd = &mut self.nodes[node];
        if nd.incarnation != inc {
            return;
        }
        if let Some(server) = nd.server.as_mut() {
            server.handle_written(now, conn, n);
            self.drain_node(node);
        }
    }

    fn deliver(&mut self, link: LinkId, dir: Dir) {
        loop {
            if self.links[link].state == LinkState::Closed
                || self.blocked(link, dir)
                || self.failure.is_some()
            {
                return;
            }
            let now = self.now;
            if dir == Dir::Up && self.links[link].read_paused_until > now {
                return;
            }
            let p = self.pipe(link, dir);
            if p.net.front().is_none_or(|(due, _)| *due > now) {
                return;
            }
            let (_, chunk) = p.net.pop_front().expect("checked");
            self.hash.u64(chunk.len() as u64);
            match dir {
                Dir::Up => self.arrive_at_server(link, chunk),
                Dir::Down => self.arrive_at_client(link, chunk),
            }
        }
    }

    fn arrive_at_server(&mut self, link: LinkId, chunk: Bytes) {
        let l = &mut self.links[link];
        l.up.in_flight -= chunk.len();
        l.up_delivered += chunk.len() as u64;
        let (node, inc, conn, state, client) = (l.node, l.node_inc, l.conn, l.state, l.client);
        if matches!(state, LinkState::Open | LinkState::ClientFin)
            && self.nodes[node].incarnation == inc
        {
            let now = self.now;
            if let Some(server) = self.nodes[node].server.as_mut() {
                if let Some(pause) = server.handle_received(now, conn, chunk) {
                    // Backpressure: the server reads nothing more from this
                    // client for a while; its bytes wait in the network.
                    self.links[link].read_paused_until = now + pause;
                    self.schedule(pause, Ev::Deliver { link, dir: Dir::Up });
                }
                // Outputs first: if the server closed this very connection
                // while processing the chunk, the chunk's operations may or
                // may not have taken effect.
                // Outputs first, holding back what server-side closes mean
                // for the model: they may have happened before or after any
                // operation of the chunk. Ops are applied with every
                // connection still live (deliveries a closed one misses are
                // excused when it closes), then the closes.
                self.deferred_ends = Some(Vec::new());
                self.drain_node(node);
                let closed_mid_batch = self.links[link].state != state;
                self.model.set_uncertain(closed_mid_batch);
                self.apply_ops(node, link, client);
                self.model.set_uncertain(false);
                for (n, l) in self.deferred_ends.take().unwrap_or_default() {
                    self.model.link_ended(n, l);
                }
            }
        }
        self.kick(link, Dir::Up);
        self.maybe_finish(link);
    }

    /// The server has processed everything up to `up_delivered`: so does the model.
    fn apply_ops(&mut self, node: usize, link: LinkId, client: usize) {
        loop {
            let l = &mut self.links[link];
            if l.ops.front().is_none_or(|(end, _)| *end > l.up_delivered) {
                return;
            }
            let (_, op) = l.ops.pop_front().expect("checked");
            if !matches!(op, ModelOp::Pub { .. }) {
                self.recorder
                    .push(self.now, format!("node {node} link {link} applied {op:?}"));
            }
            self.model.apply(node, link, client, op);
        }
    }

    fn arrive_at_client(&mut self, link: LinkId, chunk: Bytes) {
        let client = self.links[link].client;
        let slot = &mut self.clients[client];
        if slot.link != Some(link) {
            // The client already let go of this connection.
            self.links[link].down.in_flight -= chunk.len();
            self.maybe_finish(link);
            return;
        }
        slot.rx.push(chunk);
        if slot.reading {
            self.client_read(client);
        }
    }

    /// Closes a connection now. `tell_server`: the reason to report to the
    /// server, if it still knows the connection.
    fn close_link(&mut self, link: LinkId, tell_server: Option<CloseReason>) {
        let l = &mut self.links[link];
        if l.state == LinkState::Closed {
            return;
        }
        l.state = LinkState::Closed;
        self.recorder.push(
            self.now,
            format!("link {link} closed (server told: {tell_server:?})"),
        );
        let l = &mut self.links[link];
        l.up = Pipe::new(0);
        l.down = Pipe::new(0);
        l.ops.clear();
        let (node, inc, conn, client, latency) = (l.node, l.node_inc, l.conn, l.client, l.latency);
        let now = self.now;
        let nd = &mut self.nodes[node];
        let known = nd.incarnation == inc && nd.conns.remove(&conn).is_some();
        if let (true, Some(reason), Some(server)) = (known, tell_server, nd.server.as_mut()) {
            server.handle_closed(now, conn, reason);
            self.drain_node(node);
        }
        self.model.link_closed(node, link);
        if self.clients[client].link == Some(link) {
            // The socket is gone: bytes the client had not read yet go with
            // it. (The model forgot what this link was owed; a message read
            // from here later would look like one it never was.)
            self.clients[client].rx.clear();
            self.schedule(latency, Ev::ClientLost { client, link });
        }
    }

    /// A flushing or half-closed connection whose bytes are all through closes.
    fn maybe_finish(&mut self, link: LinkId) {
        let l = &self.links[link];
        match l.state {
            LinkState::Flushing if l.down.is_idle() => self.close_link(link, None),
            LinkState::ClientFin if l.up.is_idle() => {
                self.close_link(link, Some(CloseReason::ClientClosed))
            }
            _ => {}
        }
    }

    // ---- clients -----------------------------------------------------------

    fn connect(&mut self, client: usize) {
        let slot = &self.clients[client];
        if slot.link.is_some() {
            return;
        }
        let node = slot.client.home;
        let now = self.now;
        let wall = self.nodes[node].wall.read(now);
        let Some(server) = self.nodes[node].server.as_mut() else {
            // Connection refused: try again later.
            let after = self.clients[client].client.reconnect_delay();
            self.schedule(after, Ev::ClientConnect { client });
            return;
        };
        let slot = &mut self.clients[client];
        slot.generation += 1;
        let port = 20_000 + (slot.generation % 40_000) as u16;
        let peer = SocketAddr::from((
            [10, 0, (client / 250) as u8, (client % 250) as u8 + 1],
            port,
        ));
        let conn = server.handle_connected(now, wall, peer);
        let link = self.links.len();
        self.recorder.push(
            now,
            format!("client {client} connects to node {node}: link {link}, {conn}"),
        );
        let latency = self
            .net_rng
            .duration(Duration::from_micros(20), Duration::from_millis(2));
        let window = self.net_rng.range(64 * 1024, 512 * 1024) as usize;
        let n = &self.nodes[node];
        self.links.push(Link {
            node,
            node_inc: n.incarnation,
            conn,
            client,
            up: Pipe::new(1 << 20),
            down: Pipe::new(window),
            state: LinkState::Open,
            latency,
            ns_per_byte: 1,
            slow_extra: Duration::ZERO,
            faulted: false,
            server_pending: 0,
            progress_at: now,
            read_paused_until: now,
            up_sent: 0,
            up_delivered: 0,
            ops: Default::default(),
        });
        if self.nodes[node].conns.insert(conn, link).is_some() {
            let d = format!("node {node} reused {conn} for a new connection");
            self.fail(Violation {
                invariant: "unique-conn-id",
                detail: d,
            });
        }
        self.links[link].faulted = self.blocked(link, Dir::Up) || self.blocked(link, Dir::Down);
        let slot = &mut self.clients[client];
        slot.link = Some(link);
        slot.reading = true;
        slot.parser = ServerParser::new();
        slot.rx.clear();
        slot.client.reset_session();
        self.drain_node(node);
    }

    fn client_lost(&mut self, client: usize, link: LinkId) {
        let slot = &mut self.clients[client];
        if slot.link != Some(link) {
            return;
        }
        slot.link = None;
        slot.rx.clear();
        let after = slot.client.reconnect_delay();
        self.schedule(after, Ev::ClientConnect { client });
    }

    fn client_tick(&mut self, client: usize, generation: u64) {
        let slot = &mut self.clients[client];
        if slot.generation != generation || slot.link.is_none() {
            return;
        }
        let mut out = Outbox::default();
        match slot.client.tick(&mut out, self.draining) {
            TickAction::Again(after) => self.schedule(after, Ev::ClientTick { client, generation }),
            TickAction::Idle => {}
            TickAction::Disconnect => return self.disconnect(client),
        }
        self.client_send(client, out);
    }

    /// The client closes its connection gracefully and reconnects later.
    fn disconnect(&mut self, client: usize) {
        let slot = &mut self.clients[client];
        let Some(link) = slot.link.take() else { return };
        slot.rx.clear();
        let after = slot.client.reconnect_delay();
        self.schedule(after, Ev::ClientConnect { client });
        let l = &mut self.links[link];
        if l.state == LinkState::Open {
            l.state = LinkState::ClientFin;
        }
        // Unread bytes are discarded with the socket.
        l.down.in_flight = l.down.net.iter().map(|(_, c)| c.len()).sum();
        self.maybe_finish(link);
    }

    fn client_send(&mut self, client: usize, out: Outbox) {
        let Some(link) = self.clients[client].link else {
            return;
        };
        if out.buf.is_empty() {
            return;
        }
        let l = &mut self.links[link];
        if l.state != LinkState::Open {
            return;
        }
        let base = l.up_sent;
        l.ops
            .extend(out.ops.into_iter().map(|(end, op)| (base + end as u64, op)));
        l.up_sent += out.buf.len() as u64;
        l.up.queued.extend_from_slice(&out.buf);
        self.kick(link, Dir::Up);
    }

    /// The client reads everything that arrived and acts on it.
    fn client_read(&mut self, client: usize) {
        let Some(link) = self.clients[client].link else {
            return;
        };
        let chunks = std::mem::take(&mut self.clients[client].rx);
        let mut out = Outbox::default();
        for chunk in chunks {
            let pipe = &mut self.links[link].down;
            pipe.in_flight = pipe
                .in_flight
                .checked_sub(chunk.len())
                .expect("a chunk the client reads was counted in flight");
            self.clients[client].parser.push(&chunk);
            loop {
                let frame = self.clients[client].parser.next_frame();
                let op = match frame {
                    Ok(Some((op, _raw))) => op,
                    Ok(None) => break,
                    Err(e) => {
                        let d = format!("client {client} on link {link}: {}", e.0);
                        return self.fail(Violation {
                            invariant: "well-formed-output",
                            detail: d,
                        });
                    }
                };
                for (target, op) in self.mutate(client, link, op) {
                    if target == client {
                        self.client_op(target, op, &mut out);
                    } else {
                        let mut other = Outbox::default();
                        self.client_op(target, op, &mut other);
                        self.client_send(target, other);
                    }
                    if self.failure.is_some() {
                        return;
                    }
                }
            }
        }
        self.client_send(client, out);
        self.kick(link, Dir::Down);
        self.maybe_finish(link);
    }

    fn client_op(&mut self, client: usize, op: ServerOp, out: &mut Outbox) {
        let Some(link) = self.clients[client].link else {
            return;
        };
        let was_started = self.clients[client].client.session_started;
        let observed = self.clients[client].client.receive(op, out);
        if !was_started && self.clients[client].client.session_started {
            let generation = self.clients[client].generation;
            let after = self.clients[client].client.first_tick();
            self.schedule(after, Ev::ClientTick { client, generation });
        }
        match observed {
            Err(v) => self.fail(v),
            Ok(None) => {}
            Ok(Some(Observed::Delivery { sid, key, reply_to })) => {
                self.delivered_msgs += 1;
                let r = self.model.delivered(link, sid, key);
                self.check(r);
                if let Some(req) = reply_to {
                    self.model.replied(req);
                }
            }
            Ok(Some(Observed::NoResponders(req))) => {
                let r = self.model.no_responders(req);
                self.check(r);
            }
            Ok(Some(Observed::ServerError(text))) => {
                if !self.links[link].faulted {
                    let d = format!("client {client} on healthy link {link} got -ERR {text}");
                    self.fail(Violation {
                        invariant: "no-unexplained-error",
                        detail: d,
                    });
                }
            }
        }
    }

    // ---- mutations (checker self-tests) ------------------------------------

    /// Applies the configured mutation to one delivered operation: returns
    /// the operations to hand to clients in its place.
    fn mutate(&mut self, client: usize, link: LinkId, op: ServerOp) -> Vec<(usize, ServerOp)> {
        let ServerOp::Msg(d) = &op else {
            return vec![(client, op)];
        };
        let n = self.delivered_msgs;
        match self.cfg.mutation {
            Mutation::None => vec![(client, op)],
            Mutation::DropMessage { nth } if n == nth => {
                self.delivered_msgs += 1;
                Vec::new()
            }
            Mutation::DuplicateMessage { nth } if n == nth => {
                vec![(client, op.clone()), (client, op)]
            }
            Mutation::QueueDoubleDelivery { nth } if n >= nth => {
                match self.model.other_queue_member(link, d.sid) {
                    Some((other_link, other_sid))
                        if self.clients[self.links[other_link].client].link == Some(other_link) =>
                    {
                        self.cfg.mutation = Mutation::None;
                        let mut copy = d.clone();
                        copy.sid = other_sid;
                        vec![
                            (client, op),
                            (self.links[other_link].client, ServerOp::Msg(copy)),
                        ]
                    }
                    _ => vec![(client, op)],
                }
            }
            _ => vec![(client, op)],
        }
    }

    // ---- faults ------------------------------------------------------------

    fn open_links(&self) -> Vec<LinkId> {
        (0..self.links.len())
            .filter(|&l| self.links[l].state == LinkState::Open)
            .collect()
    }

    fn inject_fault(&mut self) {
        if self.draining {
            return;
        }
        self.faults += 1;
        let all = self.cfg.faults == FaultMode::All;
        let kinds = if all { 8 } else { 4 };
        let kind = self.fault_rng.below(kinds);
        let open = self.open_links();
        let pick = (!open.is_empty()).then(|| open[self.fault_rng.index(open.len())]);
        match (kind, pick) {
            (0, Some(link)) => {
                self.links[link].faulted = true;
                self.recorder
                    .push(self.now, format!("fault: reset link {link}"));
                self.close_link(link, Some(CloseReason::ReadError));
            }
            (1, _) => self.partition(),
            (2, Some(link)) => self.slow_link(link),
            (3, Some(link)) => self.stop_reading(link),
            (4, _) => {
                let node = self.fault_rng.index(self.nodes.len());
                self.recorder
                    .push(self.now, format!("fault: crash node {node}"));
                self.crash_node(node);
            }
            (5, _) => self.clock_jump(),
            (6, _) => self.disk_full(),
            _ => {}
        }
        let after = self
            .fault_rng
            .duration(Duration::from_millis(20), Duration::from_millis(400));
        self.schedule(after, Ev::Fault);
    }

    fn partition(&mut self) {
        let node = self.fault_rng.index(self.nodes.len());
        let clients: Vec<usize> = (0..self.clients.len())
            .filter(|_| self.fault_rng.ratio(1, 2))
            .collect();
        let (up, down) = match self.fault_rng.below(3) {
            0 => (true, false),
            1 => (false, true),
            _ => (true, true),
        };
        for link in self.open_links() {
            let l = &mut self.links[link];
            if l.node == node && clients.contains(&l.client) {
                l.faulted = true;
            }
        }
        let id = self.partitions.len();
        let text =
            format!("fault: partition {id} node {node} clients {clients:?} up {up} down {down}");
        self.recorder.push(self.now, text);
        self.partitions.push(Some(Partition {
            node,
            clients,
            up,
            down,
        }));
        let after = self
            .fault_rng
            .duration(Duration::from_millis(50), Duration::from_secs(3));
        self.schedule(after, Ev::HealPartition { id });
    }

    fn heal_partition(&mut self, id: usize) {
        if self.partitions[id].take().is_none() {
            return;
        }
        for link in 0..self.links.len() {
            if self.links[link].state != LinkState::Closed {
                self.schedule(Duration::ZERO, Ev::Deliver { link, dir: Dir::Up });
                self.schedule(
                    Duration::ZERO,
                    Ev::Deliver {
                        link,
                        dir: Dir::Down,
                    },
                );
            }
        }
    }

    fn slow_link(&mut self, link: LinkId) {
        let extra = self
            .fault_rng
            .duration(Duration::from_millis(10), Duration::from_millis(300));
        let ns_per_byte = self.fault_rng.range(1_000, 100_000);
        let l = &mut self.links[link];
        l.faulted = true;
        l.slow_extra = extra;
        l.ns_per_byte = ns_per_byte;
        self.recorder.push(
            self.now,
            format!("fault: slow link {link} +{extra:?} {ns_per_byte}ns/B"),
        );
        let after = self
            .fault_rng
            .duration(Duration::from_millis(200), Duration::from_secs(5));
        self.schedule(after, Ev::RestoreLink { link });
    }

    fn restore_link(&mut self, link: LinkId) {
        let l = &mut self.links[link];
        l.slow_extra = Duration::ZERO;
        l.ns_per_byte = 1;
    }

    fn stop_reading(&mut self, link: LinkId) {
        let client = self.links[link].client;
        if self.clients[client].link != Some(link) {
            return;
        }
        self.links[link].faulted = true;
        self.clients[client].reading = false;
        self.recorder.push(
            self.now,
            format!("fault: client {client} stops reading link {link}"),
        );
        let after = self
            .fault_rng
            .duration(Duration::from_millis(200), Duration::from_secs(8));
        self.schedule(after, Ev::ResumeReading { client, link });
    }

    fn resume_reading(&mut self, client: usize, link: LinkId) {
        let slot = &mut self.clients[client];
        if slot.link != Some(link) || slot.reading {
            return;
        }
        slot.reading = true;
        self.client_read(client);
    }

    fn clock_jump(&mut self) {
        let node = self.fault_rng.index(self.nodes.len());
        let jump = self.fault_rng.range(0, 7_200_000_000_000) as i64 - 3_600_000_000_000;
        self.nodes[node].wall.offset_ns += jump;
        self.recorder.push(
            self.now,
            format!("fault: node {node} wall clock jumps {jump}ns"),
        );
    }

    fn disk_full(&mut self) {
        let node = self.fault_rng.index(self.nodes.len());
        let used = self.nodes[node].disk.used_bytes();
        self.nodes[node].disk.set_capacity(used);
        let after = self
            .fault_rng
            .duration(Duration::from_millis(100), Duration::from_secs(2));
        self.schedule(after, Ev::RestoreDisk { node });
    }

    /// Stops creating work and faults, heals everything, and lets the
    /// system settle so that the final checks can demand completeness.
    fn drain_start(&mut self) {
        self.draining = true;
        for id in 0..self.partitions.len() {
            self.heal_partition(id);
        }
        for link in 0..self.links.len() {
            self.restore_link(link);
        }
        for client in 0..self.clients.len() {
            if let Some(link) = self.clients[client].link {
                self.resume_reading(client, link);
            }
        }
        for node in 0..self.nodes.len() {
            self.start_node(node);
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
