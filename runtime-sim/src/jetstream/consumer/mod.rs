//! JetStream consumers and the key-value store under simulation: one real
//! core `Server` on its [`SimDisk`], killed (kill -9 or power loss) and
//! restarted, with client connections dropped, and clients that speak the
//! wire protocol.
//!
//! - `js-consumer`: a publisher fills the file stream `S`; pullers share
//!   the durable explicit-ack pull consumer `C`, each keeping one to three
//!   `MSG.NEXT` requests waiting, and acknowledge with a reply (double
//!   ack), now and then with `-NAK` or not at all (the ack wait runs out).
//! - `js-work-queue`: the same on the work-queue stream `W` with two
//!   consumers `A` (`wq.a.>`) and `B` (`wq.b.>`), pullers on each.
//! - `js-kv`: clients put, delete, conditionally update (expected
//!   revision) and read (`DIRECT.GET` of the last message) a few keys of
//!   the bucket `KV_B`.
//!
//! Every byte the node sends passes a tap ([`Tap`]) that parses it in the
//! node's order; the consumer checks run there, and the checker
//! self-tests' mutations ([`CMutation`]) act there, between the node and
//! the network, never in the core. Invariants: see the crate README.

mod check;
mod kv;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use natrix_core::config::ServerOptions;
use natrix_core::storage::Storage;
use natrix_core::server::CloseReason;
use natrix_core::{ConnId, Instant, Output, Server, UnixNanos};

use super::{parse_name, payload_of, Scenario};
use crate::disk::{DiskConfig, SharedDisk, SimDisk};
use crate::rng::SimRng;
use crate::trace::{Recorder, TraceHash};
use crate::wire::{encode, Delivery, ServerOp, ServerParser};
use crate::world::{Failure, RunReport};
use check::{PullRequest, RoundRobin};

/// How long after the active phase everything may take to be acknowledged.
const DRAIN_DEADLINE: Duration = Duration::from_secs(25);
/// The sid of a client's inbox for API answers, PubAcks and ack confirmations.
const INBOX_SID: u64 = 1;

/// A deliberate break the checkers must catch, applied to what the node
/// sends before it reaches the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CMutation {
    /// Run faithfully.
    None,
    /// The `nth` first delivery of a message is acknowledged and never
    /// reaches its client (a consumer that skips a message).
    AckWithoutDelivery {
        /// Which one (0-based).
        nth: u64,
    },
    /// From the `nth` delivery of consumer `A` on, the first one that can
    /// is also handed to a waiting request of consumer `B`.
    CrossConsumer {
        /// Deliveries to let through first.
        nth: u64,
    },
    /// From the `nth` pull delivery on, the first one that can goes to
    /// the request served just before it, skipping the one whose turn it was.
    RepeatRequest {
        /// Deliveries to let through first.
        nth: u64,
    },
    /// Reads of a key after a write to it was acknowledged answer "no
    /// value" (a stale read).
    StaleRead,
    /// The first message whose ack the node confirmed is delivered again
    /// (a consumer that forgot the ack).
    RedeliverAfterAck,
}

/// The shape of one run, all derived from its seed.
#[derive(Clone, Debug)]
pub struct CConfig {
    /// The seed.
    pub seed: u64,
    /// `js-consumer`, `js-work-queue` or `js-kv`.
    pub scenario: Scenario,
    /// Checker self-test mutation.
    pub mutation: CMutation,
    /// Clients besides the publisher (pullers, or KV clients).
    pub workers: usize,
    /// Pull requests each puller keeps waiting.
    pub requests: usize,
    /// Unacknowledged publishes in flight.
    pub window: usize,
    /// Messages published at most.
    pub max_msgs: u64,
    /// The consumers' ack wait, ns.
    pub ack_wait_ns: i64,
    /// The consumers' `max_ack_pending` (0: the default, 1000).
    pub max_ack_pending: u64,
    /// Keys of the KV bucket.
    pub keys: u64,
    /// Virtual time during which clients work and faults happen.
    pub active: Duration,
}

impl CConfig {
    /// The standard run of `scenario` for `seed`.
    pub fn new(seed: u64, scenario: Scenario) -> Self {
        let mut rng = SimRng::new(seed ^ 0xc05e_77e5_0000_0016);
        CConfig {
            seed,
            scenario,
            mutation: CMutation::None,
            workers: rng.range(2, 6) as usize,
            requests: rng.range(1, 4) as usize,
            window: rng.range(1, 7) as usize,
            max_msgs: rng.range(40, 160),
            ack_wait_ns: rng.range(200, 800) as i64 * 1_000_000,
            max_ack_pending: if rng.ratio(1, 2) { 0 } else { rng.range(1, 16) },
            keys: rng.range(1, 4),
            active: Duration::from_millis(rng.range(1_000, 2_500)),
        }
    }

    fn stream(&self) -> &'static str {
        match self.scenario {
            Scenario::WorkQueue => "W",
            Scenario::Kv => "KV_B",
            _ => "S",
        }
    }

    fn stream_config(&self) -> &'static str {
        match self.scenario {
            Scenario::WorkQueue => {
                r#"{"name":"W","subjects":["wq.>"],"retention":"workqueue","storage":"file"}"#
            }
            Scenario::Kv => {
                r#"{"name":"KV_B","subjects":["$KV.B.>"],"max_msgs_per_subject":1,"discard":"new","allow_rollup_hdrs":true,"deny_delete":true,"allow_direct":true,"storage":"file"}"#
            }
            _ => r#"{"name":"S","subjects":["js.>"],"storage":"file"}"#,
        }
    }

    /// The consumers (name, filter).
    fn consumers(&self) -> &'static [(&'static str, &'static str)] {
        match self.scenario {
            Scenario::WorkQueue => &[("A", "wq.a.>"), ("B", "wq.b.>")],
            Scenario::Kv => &[],
            _ => &[("C", "")],
        }
    }

    /// The subject of message `n`.
    fn subject_of(&self, n: u64) -> String {
        match self.scenario {
            Scenario::WorkQueue => format!("wq.{}.{}", ["a", "b"][(n % 2) as usize], n % 3),
            _ => format!("js.m.{}", n % 3),
        }
    }
}

/// Runs one configuration.
pub fn run(cfg: CConfig) -> RunReport {
    CWorld::new(cfg).run()
}

#[derive(Clone, Debug)]
enum Ev {
    NodeTimer,
    DiskSync,
    Restart,
    Connect { client: usize },
    ToServer { client: usize, generation: u64, bytes: Bytes },
    ToClient { client: usize, generation: u64, bytes: Bytes },
    Tick { client: usize, generation: u64 },
    Ack { client: usize, generation: u64, reply: Bytes, seq: u64, n: u64 },
    Kill,
    DropLink,
    EndActive,
    Recheck,
    Deadline,
}

impl Ev {
    fn hash_into(&self, h: &mut TraceHash) {
        let (tag, a, b) = match self {
            Ev::NodeTimer => (0, 0, 0),
            Ev::DiskSync => (1, 0, 0),
            Ev::Restart => (2, 0, 0),
            Ev::Connect { client } => (3, *client as u64, 0),
            Ev::ToServer { client, generation, bytes } | Ev::ToClient { client, generation, bytes } => {
                h.data(bytes);
                (4, *client as u64, *generation)
            }
            Ev::Tick { client, generation } => (6, *client as u64, *generation),
            Ev::Ack { client, generation, seq, .. } => (7, *client as u64, generation ^ (seq << 20)),
            Ev::Kill => (8, 0, 0),
            Ev::DropLink => (9, 0, 0),
            Ev::EndActive => (10, 0, 0),
            Ev::Deadline => (11, 0, 0),
            Ev::Recheck => (12, 0, 0),
        };
        h.u64(tag);
        h.u64(a);
        h.u64(b);
    }
}

/// What an answer on a client's inbox is for.
#[derive(Clone, Debug)]
enum Api {
    CreateStream,
    CreateConsumer,
    /// The overlapping consumer a work-queue stream must refuse.
    CreateOverlap,
    ConsumerInfo(usize, u64),
    StreamInfo(u64),
    Publish(u64),
    /// An ack of `seq` by consumer `consumer`, confirmed.
    AckConfirm,
    /// A KV operation (index into the key's history).
    Kv { key: u64, op: usize },
}

/// What a client does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Publisher,
    Puller { consumer: usize },
    Kv,
}

struct Client {
    role: Role,
    generation: u64,
    conn: Option<ConnId>,
    parser: ServerParser,
    up_due: Instant,
    down_due: Instant,
    /// Bytes sent on this connection, to learn when the node has read a request.
    sent: u64,
    /// The stream (and consumer) exist for this connection's purposes.
    ready: bool,
    next_token: u64,
    /// The first token of this connection.
    first_token: u64,
    apis: BTreeMap<u64, Api>,
    /// Publisher: next message, and those awaiting their PubAck.
    next_msg: u64,
    inflight: BTreeSet<u64>,
    /// Puller: its waiting requests (token → messages still owed).
    pulls: BTreeMap<u64, u64>,
    /// KV: an operation is awaiting its answer.
    kv_busy: bool,
    kv_ops: u64,
}

/// Where the run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Clients work, faults happen.
    Active,
    /// No more faults or publishes: everything must get acknowledged.
    Draining,
    /// Checked.
    Done,
}

/// The node's output, parsed per connection in the order it was sent.
#[derive(Default)]
struct Tap {
    parsers: BTreeMap<ConnId, ServerParser>,
}

/// What the consumers did, as observed.
#[derive(Debug, Default)]
struct Ledger {
    /// Acknowledged publishes: sequence → message number.
    acked_pub: BTreeMap<u64, u64>,
    /// Per stream sequence: the consumer that delivered it first.
    consumer_of: BTreeMap<(u64, u64), usize>,
    /// Acks sent with a reply: (client, token) → sequence.
    acks: BTreeMap<(usize, u64), (u64, u64)>,
    /// Sequences whose ack the node confirmed.
    confirmed: BTreeSet<(u64, u64)>,
    /// Sequences that reached a client.
    received: BTreeSet<(u64, u64)>,
    deliveries: u64,
    /// Highest consumer delivery count seen per sequence.
    redeliveries: u64,
}

struct CWorld {
    cfg: CConfig,
    now: Instant,
    queue: crate::schedule::EventQueue<Ev>,
    rng: SimRng,
    fault_rng: SimRng,
    disk: SharedDisk,
    server: Option<Server>,
    incarnation: u64,
    timer_at: Option<Instant>,
    sync_at: Option<Instant>,
    options: ServerOptions,
    conns: BTreeMap<ConnId, usize>,
    /// Bytes the node read per open connection.
    received: BTreeMap<ConnId, u64>,
    /// Requests sent and not yet read by the node: (conn, end offset) → key.
    unread: BTreeMap<(ConnId, u64), (usize, u64)>,
    clients: Vec<Client>,
    phase: Phase,
    /// Server calls made (handle_received, handle_timeout, …).
    step: u64,
    tap: Tap,
    rr: RoundRobin,
    ledger: Ledger,
    kv: kv::KvHistory,
    /// Deliveries seen by the mutations.
    mutation_count: u64,
    /// `RedeliverAfterAck` only: each message's last delivery and consumer.
    last_delivery: BTreeMap<(u64, u64), (Delivery, usize)>,
    /// The last pull delivery: (connection, sid, consumer).
    last_pull: Option<(ConnId, u64, usize)>,
    faults: u64,
    infos_pending: usize,
    /// Which read of the consumers' state is current.
    info_round: u64,
    /// The last state read that was not drained yet.
    last_info: String,
    hash: TraceHash,
    recorder: Recorder,
    events: u64,
    failure: Option<Failure>,
}

impl CWorld {
    fn new(cfg: CConfig) -> Self {
        let mut rng = SimRng::new(cfg.seed);
        let fault_rng = rng.fork();
        let disk_config = DiskConfig {
            sync_latency_min: Duration::from_micros(50),
            sync_latency_max: Duration::from_millis(5),
            ..DiskConfig::default()
        };
        let disk = SharedDisk::new(SimDisk::new(disk_config, rng.fork()));
        let options = ServerOptions {
            server_name: Some("js-sim".to_owned()),
            host: "127.0.0.1".to_owned(),
            jetstream: true,
            ..ServerOptions::default()
        };
        let roles: Vec<Role> = match cfg.scenario {
            Scenario::Kv => vec![Role::Kv; cfg.workers],
            _ => {
                let n = cfg.consumers().len();
                std::iter::once(Role::Publisher)
                    .chain((0..cfg.workers).map(|i| Role::Puller { consumer: i % n }))
                    .collect()
            }
        };
        let clients = roles
            .into_iter()
            .map(|role| Client {
                role,
                generation: 0,
                conn: None,
                parser: ServerParser::new(),
                up_due: Instant::ZERO,
                down_due: Instant::ZERO,
                sent: 0,
                ready: false,
                next_token: 0,
                first_token: 0,
                apis: BTreeMap::new(),
                next_msg: 0,
                inflight: BTreeSet::new(),
                pulls: BTreeMap::new(),
                kv_busy: false,
                kv_ops: 0,
            })
            .collect();
        let kv = kv::KvHistory::new(cfg.keys);
        CWorld {
            cfg,
            now: Instant::ZERO,
            queue: Default::default(),
            rng,
            fault_rng,
            disk,
            server: None,
            incarnation: 0,
            timer_at: None,
            sync_at: None,
            options,
            conns: BTreeMap::new(),
            received: BTreeMap::new(),
            unread: BTreeMap::new(),
            clients,
            phase: Phase::Active,
            step: 0,
            tap: Tap::default(),
            rr: RoundRobin::default(),
            ledger: Ledger::default(),
            kv,
            mutation_count: 0,
            last_delivery: BTreeMap::new(),
            last_pull: None,
            faults: 0,
            infos_pending: 0,
            info_round: 0,
            last_info: String::new(),
            hash: TraceHash::default(),
            recorder: Recorder::new(60),
            events: 0,
            failure: None,
        }
    }

    fn run(mut self) -> RunReport {
        self.start_node();
        for client in 0..self.clients.len() {
            let at = self.rng.duration(Duration::ZERO, Duration::from_millis(20));
            self.schedule(at, Ev::Connect { client });
        }
        let first = self.fault_rng.duration(Duration::from_millis(150), Duration::from_millis(700));
        self.schedule(first, Ev::Kill);
        let drop = self.fault_rng.duration(Duration::from_millis(30), Duration::from_millis(300));
        self.schedule(drop, Ev::DropLink);
        self.schedule(self.cfg.active, Ev::EndActive);
        self.schedule(self.cfg.active + DRAIN_DEADLINE, Ev::Deadline);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.event_loop()));
        if let Err(panic) = outcome {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            self.fail("no-panic", text);
        }
        self.hash.u64(self.events);
        RunReport {
            seed: self.cfg.seed,
            trace_hash: self.hash.value(),
            events: self.events,
            virtual_time: self.now - Instant::ZERO,
            published: self.ledger.acked_pub.len() as u64 + self.kv.writes(),
            delivered: self.ledger.deliveries + self.kv.reads(),
            faults: self.faults,
            server_closes: BTreeMap::new(),
            excused: self.ledger.redeliveries,
            replies: self.ledger.confirmed.len() as u64 + self.kv.ops(),
            no_responders: 0,
            failure: self.failure,
        }
    }

    fn event_loop(&mut self) {
        while let Some(s) = self.queue.pop() {
            if self.phase == Phase::Done || self.failure.is_some() {
                return;
            }
            self.now = s.at;
            self.disk.lock().set_now(s.at);
            self.events += 1;
            self.hash.u64(s.at.as_nanos());
            s.ev.hash_into(&mut self.hash);
            self.recorder.push(s.at, short(&s.ev));
            self.dispatch(s.ev);
        }
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::NodeTimer => self.node_timer(),
            Ev::DiskSync => self.disk_sync(),
            Ev::Restart => self.start_node(),
            Ev::Connect { client } => self.connect(client),
            Ev::ToServer { client, generation, bytes } => self.reach_server(client, generation, bytes),
            Ev::ToClient { client, generation, bytes } => self.reach_client(client, generation, &bytes),
            Ev::Tick { client, generation } => self.tick(client, generation),
            Ev::Ack { client, generation, reply, seq, n } => self.send_ack(client, generation, &reply, (seq, n)),
            Ev::Kill => self.kill(),
            Ev::DropLink => self.drop_link(),
            Ev::EndActive => self.end_active(),
            Ev::Recheck => self.recheck(),
            Ev::Deadline => self.deadline(),
        }
    }

    fn schedule(&mut self, after: Duration, ev: Ev) {
        self.queue.push(self.now + after, ev);
    }

    fn fail(&mut self, invariant: &'static str, detail: String) {
        if self.failure.is_none() {
            self.failure = Some(Failure { invariant, detail, at: self.now, recent: self.recorder.dump() });
        }
    }

    fn note(&mut self, line: String) {
        self.recorder.push(self.now, line);
    }

    fn wall(&self) -> UnixNanos {
        UnixNanos(1_700_000_000_000_000_000 + self.now.as_nanos() as i64)
    }

    // --- the node ---------------------------------------------------------

    fn start_node(&mut self) {
        if self.server.is_some() {
            return;
        }
        self.incarnation += 1;
        self.timer_at = None;
        self.sync_at = None;
        let disk: Box<dyn Storage + Send> = Box::new(self.disk.clone());
        let seed = self.rng.seed32();
        let server = Server::with_storages(self.options.clone(), seed, self.now, self.wall(), None, Some(disk));
        self.step += 1;
        self.server = Some(server);
        self.note(format!("node started (incarnation {})", self.incarnation));
        self.drain();
    }

    fn kill(&mut self) {
        if self.phase != Phase::Active {
            return;
        }
        if self.server.is_some() {
            let power = self.fault_rng.ratio(1, 3);
            self.server = None;
            self.faults += 1;
            if power {
                self.disk.lock().crash();
            } else {
                self.disk.lock().kill();
            }
            self.note(format!("node {}", if power { "lost power" } else { "killed" }));
            for conn in std::mem::take(&mut self.conns).into_keys() {
                self.forget_conn(conn);
            }
            for client in 0..self.clients.len() {
                self.disconnect(client);
            }
            let back = self.fault_rng.duration(Duration::from_millis(5), Duration::from_millis(150));
            self.schedule(back, Ev::Restart);
        }
        let next = self.fault_rng.duration(Duration::from_millis(200), Duration::from_millis(900));
        self.schedule(next, Ev::Kill);
    }

    /// A client's connection drops (reset): the node hears of it at once.
    fn drop_link(&mut self) {
        if self.phase != Phase::Active {
            return;
        }
        let client = self.fault_rng.index(self.clients.len());
        if let Some(conn) = self.clients[client].conn {
            self.faults += 1;
            self.note(format!("link of client {client} dropped"));
            self.conns.remove(&conn);
            self.forget_conn(conn);
            let now = self.now;
            if let Some(server) = self.server.as_mut() {
                self.step += 1;
                server.handle_closed(now, conn, CloseReason::ClientClosed);
            }
            self.disconnect(client);
            self.drain();
        }
        let next = self.fault_rng.duration(Duration::from_millis(30), Duration::from_millis(400));
        self.schedule(next, Ev::DropLink);
    }

    /// A connection is gone: its requests are no longer waiting.
    fn forget_conn(&mut self, conn: ConnId) {
        self.tap.parsers.remove(&conn);
        self.received.remove(&conn);
        self.unread.retain(|(c, _), _| *c != conn);
        if let Some(client) = self.clients.iter().position(|c| c.conn == Some(conn)) {
            self.rr.live.retain(|(c, _), _| *c != client);
        }
        if self.last_pull.is_some_and(|(c, _, _)| c == conn) {
            self.last_pull = None;
        }
    }

    fn node_timer(&mut self) {
        let now = self.now;
        if self.timer_at.is_some_and(|t| t <= now) {
            self.timer_at = None;
        }
        let Some(server) = self.server.as_mut() else { return };
        if server.poll_timeout().is_some_and(|t| t <= now) {
            self.step += 1;
            server.handle_timeout(now);
        }
        self.drain();
    }

    fn disk_sync(&mut self) {
        let now = self.now;
        if self.sync_at.is_some_and(|t| t <= now) {
            self.sync_at = None;
        }
        let done = self.disk.lock().complete_due(now);
        for token in &done {
            self.hash.u64(token.0);
        }
        if let (false, Some(server)) = (done.is_empty(), self.server.as_mut()) {
            self.step += 1;
            server.handle_jetstream_synced(now, &done);
        }
        self.drain();
    }

    /// Carries out the server's outputs through the tap, then rearms its
    /// timer and the disk's.
    fn drain(&mut self) {
        let mut outputs = Vec::new();
        if let Some(server) = self.server.as_mut() {
            while let Some(out) = server.poll_output() {
                outputs.push(out);
            }
        }
        for out in outputs {
            match out {
                Output::Transmit { conn, bytes } => {
                    if !self.conns.contains_key(&conn) {
                        self.fail("no-output-after-close", format!("transmit on {conn}"));
                        return;
                    }
                    let n = bytes.len();
                    self.tap_output(conn, &bytes);
                    if let Some(server) = self.server.as_mut() {
                        server.handle_written(self.now, conn, n);
                    }
                }
                Output::Close { conn, reason } => {
                    let Some(client) = self.conns.remove(&conn) else { continue };
                    self.forget_conn(conn);
                    self.fail("no-unexplained-close", format!("client {client} closed: {reason}"));
                    self.disconnect(client);
                }
                Output::Log(line) => self.note(format!("log {line}")),
            }
        }
        let wall = self.wall().0;
        if let Err(v) = self.rr.end_call(self.step, wall) {
            self.fail(v.invariant, v.detail);
        }
        let now = self.now;
        if let Some(t) = self.server.as_ref().and_then(Server::poll_timeout) {
            let t = t.max(now);
            if self.timer_at.is_none_or(|at| t < at) {
                self.timer_at = Some(t);
                self.queue.push(t, Ev::NodeTimer);
            }
        }
        let due = self.disk.lock().next_sync_due();
        if let Some(t) = due {
            let t = t.max(now);
            if self.sync_at.is_none_or(|at| t < at) {
                self.sync_at = Some(t);
                self.queue.push(t, Ev::DiskSync);
            }
        }
    }

    // --- the tap ----------------------------------------------------------

    /// Parses what the node sent on `conn`, checks it, mutates it as the
    /// self-tests ask, and hands it to the network.
    fn tap_output(&mut self, conn: ConnId, bytes: &[u8]) {
        let Some(&client) = self.conns.get(&conn) else { return };
        let parser = self.tap.parsers.entry(conn).or_default();
        parser.push(bytes);
        let mut frames = Vec::new();
        loop {
            match parser.next_frame() {
                Ok(Some((op, raw))) => frames.push((op, raw)),
                Ok(None) => break,
                Err(e) => {
                    self.fail("well-formed-output", format!("client {client}: {}", e.0));
                    return;
                }
            }
        }
        let mut out = BytesMut::new();
        for (op, raw) in frames {
            let ServerOp::Msg(d) = op else {
                out.extend_from_slice(&raw);
                continue;
            };
            if d.sid == INBOX_SID {
                self.observe_inbox(client, &d);
                out.extend_from_slice(&raw);
                continue;
            }
            for (to_conn, frame, forward) in self.mutate(conn, client, d, raw) {
                let ServerOp::Msg(d) = parse_one(&frame) else { continue };
                let Some(&to) = self.conns.get(&to_conn) else { continue };
                self.observe_pull(to, &d);
                if !forward {
                    continue;
                }
                if to_conn == conn {
                    out.extend_from_slice(&frame);
                } else {
                    self.send_down(to, frame);
                }
            }
            if self.failure.is_some() {
                return;
            }
        }
        if !out.is_empty() {
            self.send_down(client, out.freeze());
        }
    }

    /// An answer on a client's inbox: ack confirmations matter here.
    fn observe_inbox(&mut self, client: usize, d: &Delivery) {
        let Some(token) = inbox_token(client, &d.subject) else { return };
        if let Some(&msg) = self.ledger.acks.get(&(client, token)) {
            self.ledger.confirmed.insert(msg);
            if self.cfg.mutation == CMutation::RedeliverAfterAck {
                self.redeliver_acked(msg);
            }
        }
    }

    /// The `RedeliverAfterAck` mutation: a consumer that forgot an ack
    /// hands the message to a waiting request of its consumer again.
    fn redeliver_acked(&mut self, msg: (u64, u64)) {
        let Some((d, consumer)) = self.last_delivery.get(&msg).cloned() else { return };
        let target = self.rr.live.iter().find(|(_, r)| r.consumer == consumer && r.arrived.is_some()).map(|(k, _)| *k);
        let Some((to, token)) = target else { return };
        if self.clients[to].conn.is_none() {
            return;
        }
        self.cfg.mutation = CMutation::None;
        let reply = String::from_utf8_lossy(d.reply.as_deref().unwrap_or_default()).into_owned();
        let frame = encode_msg(&d, PULL_SID_BASE + token, &reply);
        if let ServerOp::Msg(copy) = parse_one(&frame) {
            self.observe_pull(to, &copy);
        }
        self.send_down(to, frame);
    }

    /// A message on a pull request's inbox: a delivery or a status.
    fn observe_pull(&mut self, client: usize, d: &Delivery) {
        let token = d.sid - PULL_SID_BASE;
        let key = (client, token);
        if let Some(status) = d.headers.as_deref().and_then(crate::wire::status) {
            if status != 100 {
                self.rr.live.remove(&key);
            }
            return;
        }
        let Some(ack) = d.reply.as_deref().and_then(parse_ack) else {
            self.fail("consumer-delivery", format!("client {client}: a delivery without an ack subject: {d:?}"));
            return;
        };
        let Some(consumer) = self.cfg.consumers().iter().position(|(n, _)| *n == ack.consumer) else {
            self.fail("consumer-delivery", format!("a delivery for unknown consumer {}", ack.consumer));
            return;
        };
        self.ledger.deliveries += 1;
        if ack.delivered > 1 {
            self.ledger.redeliveries += 1;
        }
        let seq = ack.stream_seq;
        let (subject, filter) = (String::from_utf8_lossy(&d.subject).into_owned(), self.cfg.consumers()[consumer].1);
        let named = parse_name(&d.payload);
        // A sequence names a message only with its content: one the stream
        // never acknowledged may be lost in a crash and its sequence reused.
        let msg = (seq, named.map_or(u64::MAX, |(_, n)| n));
        if self.ledger.confirmed.contains(&msg) {
            self.fail("no-delivery-after-ack", format!("seq {seq} delivered again (delivery {}) by consumer {} after its ack was confirmed", ack.delivered, ack.consumer));
            return;
        }
        if self.cfg.mutation == CMutation::RedeliverAfterAck {
            self.last_delivery.insert(msg, (d.clone(), consumer));
        }
        let first = *self.ledger.consumer_of.entry(msg).or_insert(consumer);
        if first != consumer {
            self.fail("work-queue-one-consumer", format!("seq {seq} delivered by consumer {} and by consumer {}", self.cfg.consumers()[first].0, ack.consumer));
            return;
        }
        let right = named.is_some_and(|(c, n)| {
            c == 0 && d.payload[..] == payload_of(0, n, 200)[..] && subject == self.cfg.subject_of(n)
        }) && (filter.is_empty() || subject.starts_with(filter.trim_end_matches('>')));
        if !right || self.ledger.acked_pub.get(&seq).is_some_and(|&n| Some((0, n)) != named) {
            self.fail("consumer-delivery", format!("seq {seq} delivered by {} as {subject} {:?}", ack.consumer, d.payload));
            return;
        }
        self.rr.delivered(key, self.step);
    }

    /// Applies the self-test mutation to one pull-inbox message: what the
    /// node is taken to have sent (connection, frame bytes) and whether
    /// it goes on to the network.
    fn mutate(&mut self, conn: ConnId, client: usize, d: Delivery, raw: Bytes) -> Vec<(ConnId, Bytes, bool)> {
        let ack = d.reply.as_deref().and_then(parse_ack);
        let Some(ack) = ack else { return vec![(conn, raw, true)] };
        let consumer = self.cfg.consumers().iter().position(|(n, _)| *n == ack.consumer).unwrap_or(0);
        let this = (conn, d.sid, consumer);
        let last = self.last_pull.replace(this);
        let n = self.mutation_count;
        self.mutation_count += 1;
        match self.cfg.mutation {
            CMutation::AckWithoutDelivery { nth } if n >= nth && ack.delivered == 1 => {
                let reply = String::from_utf8_lossy(d.reply.as_deref().unwrap_or_default()).into_owned();
                let mut up = BytesMut::new();
                encode::publish(&mut up, &reply, None, None, b"+ACK");
                self.note(format!("mutation: seq {} acked, not delivered", ack.stream_seq));
                self.send_up(client, up.freeze());
                self.mutation_count = u64::MAX / 2;
                vec![(conn, raw, false)]
            }
            CMutation::CrossConsumer { nth } if n >= nth && consumer == 0 => {
                let other = self.rr.live.iter().find(|(_, r)| r.consumer == 1 && r.arrived.is_some()).map(|(k, _)| *k);
                let Some((oc, token)) = other else { return vec![(conn, raw, true)] };
                let Some(oconn) = self.clients[oc].conn else { return vec![(conn, raw, true)] };
                let reply = String::from_utf8_lossy(d.reply.as_deref().unwrap_or_default()).replace(".A.", ".B.");
                let copy = encode_msg(&d, PULL_SID_BASE + token, &reply);
                self.mutation_count = 0;
                self.cfg.mutation = CMutation::None;
                vec![(conn, raw, true), (oconn, copy, true)]
            }
            CMutation::RepeatRequest { nth } if n >= nth => {
                let Some((lconn, lsid, lconsumer)) = last else { return vec![(conn, raw, true)] };
                let prev = self.rr.live.get(&(client, lsid.wrapping_sub(PULL_SID_BASE)));
                let open = prev.is_some_and(|r| r.got + 1 < r.batch);
                if lconn != conn || lsid == d.sid || lconsumer != consumer || !open {
                    return vec![(conn, raw, true)];
                }
                self.cfg.mutation = CMutation::None;
                self.note(format!("mutation: delivery for sid {} readdressed to sid {lsid}", d.sid));
                let reply = String::from_utf8_lossy(d.reply.as_deref().unwrap_or_default()).into_owned();
                vec![(conn, encode_msg(&d, lsid, &reply), true)]
            }
            _ => vec![(conn, raw, true)],
        }
    }

    // --- clients ----------------------------------------------------------

    fn disconnect(&mut self, client: usize) {
        let c = &mut self.clients[client];
        c.conn = None;
        c.generation += 1;
        c.parser = ServerParser::new();
        c.ready = false;
        c.inflight.clear();
        c.pulls.clear();
        let kv_lost: Vec<(u64, usize)> = c
            .apis
            .values()
            .filter_map(|a| match a {
                Api::Kv { key, op } => Some((*key, *op)),
                _ => None,
            })
            .collect();
        c.apis.clear();
        c.kv_busy = false;
        for (key, op) in kv_lost {
            self.kv.unanswered(key, op);
        }
        let after = self.rng.duration(Duration::from_millis(1), Duration::from_millis(60));
        self.schedule(after, Ev::Connect { client });
    }

    fn connect(&mut self, client: usize) {
        if self.clients[client].conn.is_some() || self.phase == Phase::Done {
            return;
        }
        let now = self.now;
        let wall = self.wall();
        let Some(server) = self.server.as_mut() else {
            self.schedule(Duration::from_millis(20), Ev::Connect { client });
            return;
        };
        let peer = SocketAddr::from(([10, 0, 0, 1 + client as u8], 40_000 + (self.clients[client].generation % 20_000) as u16));
        self.step += 1;
        let conn = server.handle_connected(now, wall, peer);
        self.conns.insert(conn, client);
        self.received.insert(conn, 0);
        let c = &mut self.clients[client];
        c.conn = Some(conn);
        c.generation += 1;
        c.up_due = now;
        c.down_due = now;
        c.sent = 0;
        c.first_token = c.next_token;
        let mut out = BytesMut::new();
        encode::connect(&mut out, &format!("c{client}"));
        encode::sub(&mut out, &format!("_INBOX.c{client}.x.>"), None, INBOX_SID);
        self.api(client, &mut out, Api::CreateStream);
        self.send_up(client, out.freeze());
        self.drain();
    }

    /// Encodes an API request (or a publish awaiting an answer) on the
    /// client's inbox.
    fn api(&mut self, client: usize, out: &mut BytesMut, what: Api) {
        let c = &mut self.clients[client];
        let k = c.next_token;
        c.next_token += 1;
        let reply = format!("_INBOX.c{client}.x.{k}");
        let stream = self.cfg.stream();
        let (subject, body, headers): (String, Vec<u8>, Option<Vec<u8>>) = match &what {
            Api::CreateStream => (format!("$JS.API.STREAM.CREATE.{stream}"), self.cfg.stream_config().into(), None),
            Api::CreateConsumer | Api::CreateOverlap => {
                let (name, filter) = match (&what, c.role) {
                    (Api::CreateConsumer, Role::Puller { consumer }) => self.cfg.consumers()[consumer],
                    _ => ("X", "wq.>"),
                };
                let mut filter = if filter.is_empty() { String::new() } else { format!(r#","filter_subject":"{filter}""#) };
                if self.cfg.max_ack_pending > 0 {
                    filter.push_str(&format!(r#","max_ack_pending":{}"#, self.cfg.max_ack_pending));
                }
                let body = format!(
                    r#"{{"stream_name":"{stream}","config":{{"durable_name":"{name}","ack_policy":"explicit","ack_wait":{}{filter}}}}}"#,
                    self.cfg.ack_wait_ns
                );
                (format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{name}"), body.into(), None)
            }
            Api::ConsumerInfo(i, _) => (format!("$JS.API.CONSUMER.INFO.{stream}.{}", self.cfg.consumers()[*i].0), Vec::new(), None),
            Api::StreamInfo(_) => (format!("$JS.API.STREAM.INFO.{stream}"), Vec::new(), None),
            Api::Publish(n) => (self.cfg.subject_of(*n), payload_of(0, *n, 200), None),
            Api::AckConfirm => unreachable!("acks are sent by send_ack"),
            Api::Kv { key, op } => self.kv.request(*key, *op),
        };
        c.apis.insert(k, what);
        encode::publish(out, &subject, Some(&reply), headers.as_deref(), &body);
    }

    /// Client bytes towards the server, in random chunks, in order.
    fn send_up(&mut self, client: usize, bytes: Bytes) {
        self.clients[client].sent += bytes.len() as u64;
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = (self.rng.range(1, 2_048) as usize).min(rest.len());
            let chunk = rest.split_to(n);
            let lat = self.rng.duration(Duration::from_micros(10), Duration::from_micros(500));
            let c = &mut self.clients[client];
            let at = (self.now + lat).max(c.up_due);
            c.up_due = at;
            let generation = c.generation;
            self.queue.push(at, Ev::ToServer { client, generation, bytes: chunk });
        }
    }

    fn send_down(&mut self, client: usize, bytes: Bytes) {
        let lat = self.rng.duration(Duration::from_micros(10), Duration::from_micros(500));
        let c = &mut self.clients[client];
        let at = (self.now + lat).max(c.down_due);
        c.down_due = at;
        let generation = c.generation;
        self.queue.push(at, Ev::ToClient { client, generation, bytes });
    }

    fn reach_server(&mut self, client: usize, generation: u64, bytes: Bytes) {
        let c = &self.clients[client];
        let (Some(conn), true) = (c.conn, c.generation == generation) else { return };
        let now = self.now;
        let n = bytes.len() as u64;
        let Some(server) = self.server.as_mut() else { return };
        self.step += 1;
        let _ = server.handle_received(now, conn, bytes);
        // Requests whose last byte the node has now read are waiting.
        let total = {
            let r = self.received.entry(conn).or_default();
            *r += n;
            *r
        };
        let arrived: Vec<(u64, (usize, u64))> = self.unread.range((conn, 0)..=(conn, total)).map(|(&(_, end), &key)| (end, key)).collect();
        let expires_base = self.wall().0;
        for (end, key) in arrived {
            self.unread.remove(&(conn, end));
            if let Some(r) = self.rr.live.get_mut(&key) {
                r.arrived = Some((self.step, expires_base.saturating_add(r_expires(key))));
            }
        }
        self.drain();
    }

    fn reach_client(&mut self, client: usize, generation: u64, bytes: &[u8]) {
        if self.clients[client].generation != generation {
            return;
        }
        self.clients[client].parser.push(bytes);
        let mut pong = false;
        loop {
            let frame = self.clients[client].parser.next_frame();
            match frame {
                Ok(Some((ServerOp::Ping, _))) => pong = true,
                Ok(Some((ServerOp::Msg(d), _))) => self.receive(client, d),
                Ok(Some((ServerOp::Err(text), _))) => {
                    let d = format!("client {client} got -ERR {}", String::from_utf8_lossy(&text));
                    self.fail("no-unexplained-error", d);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    self.fail("well-formed-output", format!("client {client}: {}", e.0));
                    break;
                }
            }
            if self.failure.is_some() || self.clients[client].generation != generation {
                return;
            }
        }
        if pong {
            let mut out = BytesMut::new();
            encode::pong(&mut out);
            self.send_up(client, out.freeze());
        }
    }

    fn receive(&mut self, client: usize, d: Delivery) {
        if d.sid >= PULL_SID_BASE {
            self.pulled(client, d);
            return;
        }
        let Some(token) = inbox_token(client, &d.subject) else {
            self.fail("no-extra-delivery", format!("client {client} got {:?}", d.subject));
            return;
        };
        if token < self.clients[client].first_token {
            // An answer to a request of an earlier connection (an ack
            // confirmation that waited for a sync): the inbox is the same.
            return;
        }
        let Some(what) = self.clients[client].apis.remove(&token) else {
            self.fail("no-extra-delivery", format!("client {client}: a second answer to request {token}"));
            return;
        };
        let json: serde_json::Value = serde_json::from_slice(&d.payload).unwrap_or_default();
        let status = d.headers.as_deref().and_then(crate::wire::status);
        match what {
            Api::CreateStream => self.stream_created(client, &json),
            Api::CreateConsumer => self.consumer_created(client, &json),
            Api::CreateOverlap => {
                let code = json["error"]["err_code"].as_u64();
                if code != Some(10_100) && code != Some(10_099) {
                    self.fail("work-queue-overlap-refused", format!("an overlapping work-queue consumer was answered {json}"));
                }
            }
            Api::ConsumerInfo(_, r) | Api::StreamInfo(r) if r != self.info_round => {}
            Api::ConsumerInfo(i, _) => self.consumer_info(i, &json),
            Api::StreamInfo(_) => self.stream_info(&json),
            Api::Publish(n) => self.pub_ack(client, n, status, &json),
            Api::AckConfirm => {}
            Api::Kv { key, op } => {
                let mutated = self.cfg.mutation == CMutation::StaleRead;
                if let Err(v) = self.kv.answered(key, op, self.now, &d, mutated) {
                    self.fail(v.invariant, v.detail);
                    return;
                }
                self.clients[client].kv_busy = false;
                let generation = self.clients[client].generation;
                let pause = self.rng.duration(Duration::ZERO, Duration::from_millis(15));
                self.schedule(pause, Ev::Tick { client, generation });
            }
        }
    }

    fn stream_created(&mut self, client: usize, json: &serde_json::Value) {
        if json.get("error").is_some() || json.get("config").is_none() {
            self.fail("stream-create", format!("client {client}: {json}"));
            return;
        }
        let role = self.clients[client].role;
        match role {
            Role::Puller { .. } => {
                let mut out = BytesMut::new();
                self.api(client, &mut out, Api::CreateConsumer);
                self.send_up(client, out.freeze());
            }
            Role::Publisher | Role::Kv => self.ready(client),
        }
    }

    fn consumer_created(&mut self, client: usize, json: &serde_json::Value) {
        if json.get("error").is_some() || json.get("config").is_none() {
            // Consumer B may be created before A on the work-queue stream:
            // both filters are disjoint, so any error is a failure.
            self.fail("consumer-create", format!("client {client}: {json}"));
            return;
        }
        // Now that a consumer exists, one overlapping it must be refused.
        if self.cfg.scenario == Scenario::WorkQueue && client == 1 && self.clients[client].generation == 1 {
            let mut out = BytesMut::new();
            self.api(client, &mut out, Api::CreateOverlap);
            self.send_up(client, out.freeze());
        }
        self.ready(client);
    }

    fn ready(&mut self, client: usize) {
        self.clients[client].ready = true;
        let generation = self.clients[client].generation;
        self.schedule(Duration::ZERO, Ev::Tick { client, generation });
    }

    fn pub_ack(&mut self, client: usize, n: u64, status: Option<u16>, json: &serde_json::Value) {
        self.clients[client].inflight.remove(&n);
        let seq = json["seq"].as_u64().unwrap_or(0);
        if status.is_some() || json.get("error").is_some() || seq == 0 {
            self.fail("pub-ack", format!("message {n}: status {status:?} {json}"));
            return;
        }
        if let Some(other) = self.ledger.acked_pub.insert(seq, n) {
            self.fail("sequence-reused", format!("seq {seq} acknowledged for messages {other} and {n}"));
        }
        let generation = self.clients[client].generation;
        self.schedule(Duration::ZERO, Ev::Tick { client, generation });
    }

    fn tick(&mut self, client: usize, generation: u64) {
        let c = &self.clients[client];
        if c.generation != generation || !c.ready || self.phase == Phase::Done {
            return;
        }
        match c.role {
            Role::Publisher => self.publish_more(client),
            Role::Puller { consumer } => self.pull_more(client, consumer),
            Role::Kv => self.kv_next(client),
        }
    }

    fn publish_more(&mut self, client: usize) {
        if self.phase != Phase::Active {
            return;
        }
        let mut out = BytesMut::new();
        while self.clients[client].inflight.len() < self.cfg.window && self.clients[client].next_msg < self.cfg.max_msgs {
            let c = &mut self.clients[client];
            let n = c.next_msg;
            c.next_msg += 1;
            c.inflight.insert(n);
            self.api(client, &mut out, Api::Publish(n));
        }
        if !out.is_empty() {
            self.send_up(client, out.freeze());
        }
    }

    /// Keeps the puller's requests waiting.
    fn pull_more(&mut self, client: usize, consumer: usize) {
        let mut out = BytesMut::new();
        while self.clients[client].pulls.len() < self.cfg.requests {
            let c = &mut self.clients[client];
            let token = c.next_token;
            c.next_token += 1;
            let batch = self.rng.range(1, 5);
            c.pulls.insert(token, batch);
            let inbox = format!("_INBOX.c{client}.r{token}");
            encode::sub(&mut out, &inbox, None, PULL_SID_BASE + token);
            let body = format!(r#"{{"batch":{batch},"expires":{}}}"#, r_expires((client, token)));
            let (stream, name) = (self.cfg.stream(), self.cfg.consumers()[consumer].0);
            encode::publish(&mut out, &format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}"), Some(&inbox), None, body.as_bytes());
            let (Some(conn), sent) = (self.clients[client].conn, self.clients[client].sent + out.len() as u64) else { return };
            self.unread.insert((conn, sent), (client, token));
            self.rr.live.insert((client, token), PullRequest { consumer, batch, arrived: None, got: 0, last: None });
        }
        if !out.is_empty() {
            self.send_up(client, out.freeze());
        }
    }

    /// A message on one of the puller's request inboxes.
    fn pulled(&mut self, client: usize, d: Delivery) {
        let token = d.sid - PULL_SID_BASE;
        if !matches!(self.clients[client].role, Role::Puller { .. }) {
            return;
        }
        let status = d.headers.as_deref().and_then(crate::wire::status);
        let finished = match status {
            Some(100) => false,
            Some(404 | 408 | 409) => true,
            Some(other) => {
                self.fail("pull-status", format!("client {client}: status {other} {:?}", d.headers));
                return;
            }
            None => {
                let Some(ack) = d.reply.as_deref().and_then(parse_ack) else { return };
                let seq = ack.stream_seq;
                let n = parse_name(&d.payload).map_or(u64::MAX, |(_, n)| n);
                self.ledger.received.insert((seq, n));
                let reply = d.reply.clone().unwrap_or_default();
                let delay = self.rng.duration(Duration::from_millis(1), Duration::from_millis(40));
                let generation = self.clients[client].generation;
                if !self.rng.ratio(1, 20) {
                    self.schedule(delay, Ev::Ack { client, generation, reply, seq, n });
                }
                let left = self.clients[client].pulls.get_mut(&token);
                match left {
                    Some(n) => {
                        *n = n.saturating_sub(1);
                        *n == 0
                    }
                    None => false,
                }
            }
        };
        if finished && self.clients[client].pulls.remove(&token).is_some() {
            let mut out = BytesMut::new();
            encode::unsub(&mut out, PULL_SID_BASE + token);
            self.send_up(client, out.freeze());
            self.rr.live.remove(&(client, token));
            let generation = self.clients[client].generation;
            let pause = self.rng.duration(Duration::ZERO, Duration::from_millis(10));
            self.schedule(pause, Ev::Tick { client, generation });
        }
    }

    /// Acknowledges (with a reply, so the node confirms), or now and then
    /// naks, a delivery.
    fn send_ack(&mut self, client: usize, generation: u64, reply: &[u8], msg: (u64, u64)) {
        if self.clients[client].generation != generation {
            return;
        }
        let reply = String::from_utf8_lossy(reply).into_owned();
        let mut out = BytesMut::new();
        if self.rng.ratio(1, 10) {
            let delay = self.rng.range(0, 3) * 40_000_000;
            let body = if delay == 0 { "-NAK".to_owned() } else { format!(r#"-NAK {{"delay":{delay}}}"#) };
            encode::publish(&mut out, &reply, None, None, body.as_bytes());
        } else if self.rng.ratio(1, 12) {
            // Still working: the ack wait starts again, then the ack comes.
            encode::publish(&mut out, &reply, None, None, b"+WPI");
            let generation = self.clients[client].generation;
            let later = self.rng.duration(Duration::from_millis(1), Duration::from_millis(40));
            let reply = Bytes::from(reply);
            self.schedule(later, Ev::Ack { client, generation, reply, seq: msg.0, n: msg.1 });
        } else {
            let c = &mut self.clients[client];
            let k = c.next_token;
            c.next_token += 1;
            c.apis.insert(k, Api::AckConfirm);
            self.ledger.acks.insert((client, k), msg);
            encode::publish(&mut out, &reply, Some(&format!("_INBOX.c{client}.x.{k}")), None, b"+ACK");
        }
        self.send_up(client, out.freeze());
    }

    fn kv_next(&mut self, client: usize) {
        if self.phase != Phase::Active || self.clients[client].kv_busy {
            return;
        }
        let n = self.clients[client].kv_ops;
        self.clients[client].kv_ops += 1;
        let (key, op) = self.kv.invoke(client, n, self.now, &mut self.rng);
        self.clients[client].kv_busy = true;
        let mut out = BytesMut::new();
        self.api(client, &mut out, Api::Kv { key, op });
        self.send_up(client, out.freeze());
    }

    // --- the end ----------------------------------------------------------

    fn end_active(&mut self) {
        self.phase = Phase::Draining;
        self.note("faults stop".to_owned());
        if self.server.is_none() {
            self.start_node();
        }
        if self.cfg.scenario == Scenario::Kv {
            // Let the operations in flight finish.
            self.schedule(Duration::from_millis(500), Ev::Deadline);
        } else {
            self.schedule(Duration::ZERO, Ev::Recheck);
        }
    }

    /// Draining: once every acknowledged publish is confirmed acked, the
    /// consumers' and the stream's state is read.
    fn check_drained(&mut self) {
        if self.phase != Phase::Draining || self.infos_pending > 0 || self.cfg.scenario == Scenario::Kv {
            return;
        }
        if !self.ledger.acked_pub.iter().all(|(&s, &n)| self.ledger.received.contains(&(s, n))) {
            return;
        }
        let Some(client) = (0..self.clients.len()).find(|&c| self.clients[c].ready) else { return };
        let mut out = BytesMut::new();
        for i in 0..self.cfg.consumers().len() {
            self.api(client, &mut out, Api::ConsumerInfo(i, self.info_round));
            self.infos_pending += 1;
        }
        if self.cfg.scenario == Scenario::WorkQueue {
            self.api(client, &mut out, Api::StreamInfo(self.info_round));
            self.infos_pending += 1;
        }
        self.send_up(client, out.freeze());
    }

    fn consumer_info(&mut self, i: usize, json: &serde_json::Value) {
        self.infos_pending -= 1;
        let pending = json["num_ack_pending"].as_u64().unwrap_or(u64::MAX);
        let new = json["num_pending"].as_u64().unwrap_or(u64::MAX);
        let floor = json["ack_floor"]["stream_seq"].as_u64().unwrap_or(0);
        let top = self.ledger.acked_pub.iter().filter(|(&s, &n)| self.ledger.consumer_of.get(&(s, n)) == Some(&i)).map(|(&s, _)| s).max().unwrap_or(0);
        if pending != 0 || new != 0 || floor < top {
            self.last_info = json.to_string();
            // Unacknowledged publishes may still be on their way: look again.
            self.retry_info();
            return;
        }
        self.maybe_done();
    }

    fn stream_info(&mut self, json: &serde_json::Value) {
        self.infos_pending -= 1;
        if json["state"]["messages"].as_u64() != Some(0) {
            self.last_info = json.to_string();
            self.retry_info();
            return;
        }
        self.maybe_done();
    }

    /// Asks for the consumers' state again a little later (the answers
    /// still out are dropped).
    fn retry_info(&mut self) {
        self.infos_pending = 0;
        self.info_round += 1;
        self.schedule(Duration::from_millis(100), Ev::Recheck);
    }

    fn recheck(&mut self) {
        if self.phase != Phase::Draining || self.infos_pending > 0 {
            return;
        }
        self.check_drained();
        if self.infos_pending == 0 {
            self.schedule(Duration::from_millis(50), Ev::Recheck);
        }
    }

    fn maybe_done(&mut self) {
        if self.infos_pending == 0 && self.failure.is_none() {
            self.phase = Phase::Done;
        }
    }

    fn deadline(&mut self) {
        if self.phase == Phase::Done {
            return;
        }
        if self.cfg.scenario == Scenario::Kv {
            if let Err(v) = self.kv.check() {
                self.fail(v.invariant, v.detail);
            }
            self.phase = Phase::Done;
            return;
        }
        let never = self.ledger.acked_pub.iter().find(|(&s, &n)| !self.ledger.received.contains(&(s, n)));
        if let Some((seq, n)) = never {
            let d = format!("seq {seq} (message {n}) was acknowledged by the stream and never reached a puller");
            self.fail("consumer-at-least-once", d);
            return;
        }
        let d = format!("every acknowledged message reached a puller, but the consumers never showed all acknowledged: {}", self.last_info);
        self.fail("consumer-eventually-acked", d);
    }
}

/// Sids of pull request inboxes start here (sid = base + token).
const PULL_SID_BASE: u64 = 1_000;

/// A request's expiry (ns), a pure function of it so the model knows it.
fn r_expires(key: (usize, u64)) -> i64 {
    let x = (key.0 as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ key.1.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (150 + (x >> 7) % 450) as i64 * 1_000_000
}

/// The token of an answer on `client`'s inbox.
fn inbox_token(client: usize, subject: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(subject).ok()?;
    text.strip_prefix(&format!("_INBOX.c{client}.x."))?.parse().ok()
}

/// An ack subject's fields.
struct AckFields {
    consumer: String,
    delivered: u64,
    stream_seq: u64,
}

/// Parses `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`.
fn parse_ack(reply: &[u8]) -> Option<AckFields> {
    let text = std::str::from_utf8(reply).ok()?;
    let t: Vec<&str> = text.strip_prefix("$JS.ACK.")?.split('.').collect();
    if t.len() != 7 {
        return None;
    }
    Some(AckFields { consumer: t[1].to_owned(), delivered: t[2].parse().ok()?, stream_seq: t[3].parse().ok()? })
}

/// One whole frame's operation.
fn parse_one(frame: &[u8]) -> ServerOp {
    let mut p = ServerParser::new();
    p.push(frame);
    match p.next_frame() {
        Ok(Some((op, _))) => op,
        _ => ServerOp::Ok,
    }
}

/// Encodes a delivery as the node would, to another sid and ack subject.
fn encode_msg(d: &Delivery, sid: u64, reply: &str) -> Bytes {
    let mut out = BytesMut::new();
    let subject = String::from_utf8_lossy(&d.subject);
    let total = d.headers.as_ref().map_or(0, Bytes::len) + d.payload.len();
    match &d.headers {
        Some(h) => out.put_slice(format!("HMSG {subject} {sid} {reply} {} {total}\r\n", h.len()).as_bytes()),
        None => out.put_slice(format!("MSG {subject} {sid} {reply} {total}\r\n").as_bytes()),
    }
    if let Some(h) = &d.headers {
        out.put_slice(h);
    }
    out.put_slice(&d.payload);
    out.put_slice(b"\r\n");
    out.freeze()
}

/// An event without its bytes, for the flight recorder.
fn short(ev: &Ev) -> String {
    match ev {
        Ev::ToServer { client, generation, bytes } => format!("ToServer c{client} g{generation} {}B", bytes.len()),
        Ev::ToClient { client, generation, bytes } => format!("ToClient c{client} g{generation} {}B", bytes.len()),
        Ev::Ack { client, seq, .. } => format!("Ack c{client} seq {seq}"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests;
