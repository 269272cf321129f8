//! JetStream durability under simulation: one real core `Server` with
//! JetStream on its [`SimDisk`], publishing clients that speak the wire
//! protocol, and the fault classes that lost acknowledged writes in
//! nats-server under test, each a named [`Scenario`].
//!
//! Every client creates the file stream `S` (`$JS.API.STREAM.CREATE.S`,
//! again on every reconnect: creating an existing stream with the same
//! config is a no-op, so a stream recovery forgot would show), then
//! publishes messages with reply subjects and records every PubAck
//! `(seq → message)` in the acknowledged history. Each message's subject
//! and payload are a pure function of (client, number), so any stored
//! message can be checked byte for byte. At the end the node goes down
//! once more (and, in the bit-flip scenarios, its files are damaged),
//! comes back, and client 0 reads the stream back (`STREAM.INFO` with
//! `deleted_details`, then `DIRECT.GET` of every sequence); [`check`]
//! compares what it read with the history.

mod check;
pub mod consumer;
pub mod mqtt;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use natrix_core::config::ServerOptions;
use natrix_core::storage::Storage;
use natrix_core::{ConnId, Instant, Output, Server, UnixNanos};

use crate::disk::{DiskConfig, SharedDisk, SimDisk};
use crate::rng::SimRng;
use crate::trace::{Recorder, TraceHash};
use crate::wire::{encode, Delivery, ServerOp, ServerParser};
use crate::world::{Failure, RunReport};

/// The stream every client writes to.
const STREAM: &str = "S";
/// Its config, as every client sends it.
const STREAM_CONFIG: &str =
    r#"{"name":"S","subjects":["js.>"],"storage":"file","allow_direct":true}"#;
/// DIRECT.GETs the verifier keeps in flight.
const VERIFY_WINDOW: usize = 16;
/// How long after the active phase the read-back may take, at most.
const VERIFY_DEADLINE: Duration = Duration::from_secs(20);

/// A fault class, run as its own scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// The server process is killed (kill -9) again and again while
    /// clients publish: written data stays in the page cache.
    Kill,
    /// The machine loses power again and again: unsynced writes are lost,
    /// the last one may be torn.
    PowerLoss,
    /// One bit of a message block file flips while the node is down.
    BitflipBlock,
    /// A bit flips in each of the stream's metadata files while the node
    /// is down: the stream must come back with its data.
    BitflipMeta,
    /// The disk fills up now and then while clients publish: publishes
    /// are refused with nats-server's error, then work again.
    FullDisk,
    /// A durable explicit-ack pull consumer shared by several pullers,
    /// under kills, power losses and dropped connections ([`consumer`]).
    Consumer,
    /// A work-queue stream with two consumers and several pullers each,
    /// under the same faults.
    WorkQueue,
    /// Single-key KV operations by several clients, under the same faults.
    Kv,
    /// MQTT devices, a QoS 1 publisher and a persistent-session subscriber,
    /// under kills, power losses and dropped links ([`mqtt`]).
    Mqtt,
}

/// Every durability scenario, in CI order.
pub const SCENARIOS: [Scenario; 5] = [
    Scenario::Kill,
    Scenario::PowerLoss,
    Scenario::BitflipBlock,
    Scenario::BitflipMeta,
    Scenario::FullDisk,
];

/// The consumer and KV scenarios ([`consumer`]), in CI order.
pub const CONSUMER_SCENARIOS: [Scenario; 3] = [Scenario::Consumer, Scenario::WorkQueue, Scenario::Kv];

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SCENARIOS
            .iter()
            .chain(&CONSUMER_SCENARIOS)
            .chain(&[Scenario::Mqtt])
            .copied()
            .find(|sc| sc.to_string() == s)
            .ok_or_else(|| format!("unknown JetStream scenario {s:?}"))
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scenario::Kill => "js-kill",
            Scenario::PowerLoss => "js-power-loss",
            Scenario::BitflipBlock => "js-bitflip-block",
            Scenario::BitflipMeta => "js-bitflip-meta",
            Scenario::FullDisk => "js-full-disk",
            Scenario::Consumer => "js-consumer",
            Scenario::WorkQueue => "js-work-queue",
            Scenario::Kv => "js-kv",
            Scenario::Mqtt => "js-mqtt",
        })
    }
}

/// A deliberate break the checker must catch; it lives in the simulated
/// disk, never in the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsMutation {
    /// Run faithfully.
    None,
    /// The disk reports syncs complete without making anything durable.
    LyingDisk,
}

/// The shape of one JetStream run, all derived from its seed.
#[derive(Clone, Debug)]
pub struct JsConfig {
    /// The seed.
    pub seed: u64,
    /// The fault class.
    pub scenario: Scenario,
    /// Checker self-test mutation.
    pub mutation: JsMutation,
    /// Publishing clients (each on its own connection).
    pub clients: usize,
    /// Unacknowledged publishes each client keeps in flight.
    pub window: usize,
    /// Virtual time during which clients publish and faults happen.
    pub active: Duration,
    /// Longest payload.
    pub max_payload: u64,
    /// Messages each client publishes at most (keeps a run short).
    pub max_msgs: u64,
}

impl JsConfig {
    /// The standard run of `scenario` for `seed`.
    pub fn new(seed: u64, scenario: Scenario) -> Self {
        let mut rng = SimRng::new(seed ^ 0x1e75_7a3e_d00d_0001);
        JsConfig {
            seed,
            scenario,
            mutation: JsMutation::None,
            clients: rng.range(1, 4) as usize,
            window: rng.range(1, 9) as usize,
            active: Duration::from_millis(rng.range(800, 2_500)),
            max_payload: [16, 300, 4_000][rng.index(3)],
            max_msgs: rng.range(50, 250),
        }
    }
}

/// Runs `scenario` for `seed`.
pub fn run_seed(seed: u64, scenario: Scenario) -> RunReport {
    if scenario == Scenario::Mqtt {
        return mqtt::run(mqtt::MConfig::new(seed));
    }
    if CONSUMER_SCENARIOS.contains(&scenario) {
        return consumer::run(consumer::CConfig::new(seed, scenario));
    }
    run(JsConfig::new(seed, scenario))
}

/// Runs one configuration.
pub fn run(cfg: JsConfig) -> RunReport {
    JsWorld::new(cfg).run()
}

/// The seeds `natrix-sim ci` runs per scenario: fixed, a few seconds in all.
pub fn ci_seeds() -> Vec<(u64, Scenario)> {
    SCENARIOS
        .iter()
        .chain(&CONSUMER_SCENARIOS)
        .flat_map(|&sc| (1..=6).map(move |s| (s, sc)))
        .chain(REGRESSION_SEEDS.iter().copied())
        .collect()
}

/// Every JetStream seed that ever failed, with its scenario.
pub const REGRESSION_SEEDS: &[(u64, Scenario)] = &[
    // One copy of the metadata: a flipped bit lost the stream's config,
    // and the next create wiped its messages.
    (0, Scenario::BitflipMeta),
    // A full disk answered 10077 "no space left on device", not
    // nats-server's 10023 "insufficient resources".
    (0, Scenario::FullDisk),
    // The last record damaged (and reported lost): the checker wrongly
    // required the last sequence to be held.
    (5_209, Scenario::BitflipBlock),
    // Every client had published all its messages before space came back:
    // the checker wrongly required an ack after it.
    (5_031, Scenario::FullDisk),
    // Writes held in memory while the disk is full: acknowledging them
    // when their write-out failed (a mutant of the held-write rule) loses
    // acknowledged messages here.
    (1_200_454, Scenario::FullDisk),
    (1_200_476, Scenario::FullDisk),
    // Messages lost in a power loss before their sync, their sequences
    // reused: a work-queue consumer still held one as pending and
    // redelivered the new message under it, outside its filter (the
    // consumer is now reconciled with the stream on recovery).
    (600_110, Scenario::WorkQueue),
    (600_264, Scenario::WorkQueue),
    // A consumer save cut short by a power loss left a broken newer
    // generation file; the next incarnation appended its saves to it, and
    // a later recovery fell back to a stale generation: a confirmed ack
    // came back as pending (generations now go on above any file left).
    (604_787, Scenario::Consumer),
    // A crash kept the consumer's acks (its state was synced) and lost the
    // removals they caused: the work queue never emptied (acknowledged
    // messages are now dropped again when the consumers are restored).
    (601_847, Scenario::WorkQueue),
    (602_343, Scenario::WorkQueue),
    // A message delivered afresh after its ack was confirmed, across a
    // crash; passes on the merged core, kept to hold it there.
    (600_762, Scenario::Consumer),
    // The stream lost its last messages in a crash that kept the
    // consumer's save: recovery moved the consumer's delivered pointer back
    // to its highest pending message, so messages above it that were
    // acknowledged (and confirmed) went out again, and a work-queue
    // consumer's ack floor stayed below acks it had confirmed (recovery
    // now moves it back only to the stream's end).
    (605_754, Scenario::Consumer),
    (605_351, Scenario::WorkQueue),
];

/// The subject of client `c`'s message `n`.
fn subject_of(c: usize, n: u64) -> String {
    format!("js.c{c}.{}", n % 5)
}

/// The payload of client `c`'s message `n`: its name, then filler bytes
/// that depend on both, of a length that does too.
fn payload_of(c: usize, n: u64, max: u64) -> Vec<u8> {
    let mut x =
        (c as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ n.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let mut next = || {
        x ^= x >> 31;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 29;
        x
    };
    let len = next() % (max + 1);
    let mut out = format!("c{c}n{n}|").into_bytes();
    out.extend((0..len).map(|_| (next() % 251) as u8));
    out
}

/// Which client and message a payload claims to be.
fn parse_name(payload: &[u8]) -> Option<(usize, u64)> {
    let end = payload.iter().position(|&b| b == b'|')?;
    let text = std::str::from_utf8(&payload[..end]).ok()?;
    let (c, n) = text.strip_prefix('c')?.split_once('n')?;
    Some((c.parse().ok()?, n.parse().ok()?))
}

#[derive(Clone, Debug)]
enum Ev {
    NodeTimer,
    DiskSync,
    Restart,
    Connect {
        client: usize,
    },
    ToServer {
        client: usize,
        generation: u64,
        bytes: Bytes,
    },
    ToClient {
        client: usize,
        generation: u64,
        bytes: Bytes,
    },
    Tick {
        client: usize,
        generation: u64,
    },
    Fault,
    RestoreSpace,
    FinalFault,
    Deadline,
}

impl Ev {
    fn hash_into(&self, h: &mut TraceHash) {
        let (tag, a, b) = match self {
            Ev::NodeTimer => (0, 0, 0),
            Ev::DiskSync => (1, 0, 0),
            Ev::Restart => (2, 0, 0),
            Ev::Connect { client } => (3, *client as u64, 0),
            Ev::ToServer {
                client,
                generation,
                bytes,
            } => {
                h.data(bytes);
                (4, *client as u64, *generation)
            }
            Ev::ToClient {
                client,
                generation,
                bytes,
            } => {
                h.data(bytes);
                (5, *client as u64, *generation)
            }
            Ev::Tick { client, generation } => (6, *client as u64, *generation),
            Ev::Fault => (7, 0, 0),
            Ev::RestoreSpace => (8, 0, 0),
            Ev::FinalFault => (9, 0, 0),
            Ev::Deadline => (10, 0, 0),
        };
        h.u64(tag);
        h.u64(a);
        h.u64(b);
    }
}


/// What an API request of a client was.
#[derive(Clone, Copy, Debug)]
enum Api {
    Create,
    Info,
    Get(u64),
}

struct Client {
    generation: u64,
    conn: Option<ConnId>,
    parser: ServerParser,
    /// When the last chunk sent to the server arrives (bytes stay in order).
    up_due: Instant,
    down_due: Instant,
    /// The stream was created (or found) on this connection.
    ready: bool,
    next_msg: u64,
    /// The first message published since disk space last came back.
    space_from: u64,
    /// Messages published on this connection whose answer is awaited.
    inflight: BTreeSet<u64>,
    next_api: u64,
    apis: BTreeMap<u64, Api>,
}

/// Where the run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Clients publish, faults happen.
    Active,
    /// Publishing stopped; the last fault comes.
    Settling,
    /// The node is back: client 0 reads the stream.
    Verifying,
    /// Read back and checked.
    Done,
}

/// What the read-back found.
#[derive(Debug, Default)]
struct ReadBack {
    info: Option<serde_json::Value>,
    first: u64,
    last: u64,
    next: u64,
    outstanding: usize,
    /// Per sequence: the message served (subject, payload), or `None`
    /// when the server had none (404).
    got: BTreeMap<u64, Option<(Bytes, Bytes)>>,
}

struct JsWorld {
    cfg: JsConfig,
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
    clients: Vec<Client>,
    phase: Phase,
    /// The acknowledged history: sequence → (client, message).
    acked: BTreeMap<u64, (usize, u64)>,
    /// Publishes refused for lack of space.
    refused: u64,
    disk_full: bool,
    /// Acknowledged messages the injected damage may cost.
    damage_budget: u64,
    published: u64,
    no_responders: u64,
    faults: u64,
    read: ReadBack,
    hash: TraceHash,
    recorder: Recorder,
    events: u64,
    failure: Option<Failure>,
}

impl JsWorld {
    fn new(cfg: JsConfig) -> Self {
        let mut rng = SimRng::new(cfg.seed);
        let fault_rng = rng.fork();
        let disk_config = DiskConfig {
            sync_latency_min: Duration::from_micros(50),
            sync_latency_max: Duration::from_millis(5),
            lie_about_syncs: cfg.mutation == JsMutation::LyingDisk,
            ..DiskConfig::default()
        };
        let disk = SharedDisk::new(SimDisk::new(disk_config, rng.fork()));
        let options = ServerOptions {
            server_name: Some("js-sim".to_owned()),
            host: "127.0.0.1".to_owned(),
            jetstream: true,
            ..ServerOptions::default()
        };
        let clients = (0..cfg.clients)
            .map(|_| Client {
                generation: 0,
                conn: None,
                parser: ServerParser::new(),
                up_due: Instant::ZERO,
                down_due: Instant::ZERO,
                ready: false,
                next_msg: 0,
                space_from: 0,
                inflight: BTreeSet::new(),
                next_api: 0,
                apis: BTreeMap::new(),
            })
            .collect();
        JsWorld {
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
            clients,
            phase: Phase::Active,
            acked: BTreeMap::new(),
            refused: 0,
            disk_full: false,
            damage_budget: 0,
            published: 0,
            no_responders: 0,
            faults: 0,
            read: ReadBack::default(),
            hash: TraceHash::default(),
            recorder: Recorder::new(50),
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
        let first = self
            .fault_rng
            .duration(Duration::from_millis(100), Duration::from_millis(600));
        self.schedule(first, Ev::Fault);
        self.schedule(self.cfg.active, Ev::FinalFault);
        self.schedule(self.cfg.active + VERIFY_DEADLINE, Ev::Deadline);
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
            published: self.published,
            delivered: self.acked.len() as u64,
            faults: self.faults,
            server_closes: BTreeMap::new(),
            excused: self.refused,
            replies: self.read.got.len() as u64,
            no_responders: self.no_responders,
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
            self.recorder.push(s.at, format!("{:?}", short(&s.ev)));
            self.dispatch(s.ev);
        }
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::NodeTimer => self.node_timer(),
            Ev::DiskSync => self.disk_sync(),
            Ev::Restart => self.start_node(),
            Ev::Connect { client } => self.connect(client),
            Ev::ToServer {
                client,
                generation,
                bytes,
            } => self.reach_server(client, generation, bytes),
            Ev::ToClient {
                client,
                generation,
                bytes,
            } => self.reach_client(client, generation, &bytes),
            Ev::Tick { client, generation } => self.tick(client, generation),
            Ev::Fault => self.fault(),
            Ev::RestoreSpace => self.restore_space(),
            Ev::FinalFault => self.final_fault(),
            Ev::Deadline => {
                let d = format!(
                    "the read-back did not finish ({:?}, {:?})",
                    self.phase, self.read
                );
                self.fail("read-back-completes", d);
            }
        }
    }

    fn schedule(&mut self, after: Duration, ev: Ev) {
        self.schedule_at(self.now + after, ev);
    }

    fn schedule_at(&mut self, at: Instant, ev: Ev) {
        self.queue.push(at, ev);
    }

    fn fail(&mut self, invariant: &'static str, detail: String) {
        if self.failure.is_none() {
            self.failure = Some(Failure {
                invariant,
                detail,
                at: self.now,
                recent: self.recorder.dump(),
            });
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
        let server = Server::with_storages(
            self.options.clone(),
            seed,
            self.now,
            self.wall(),
            None,
            Some(disk),
        );
        self.server = Some(server);
        self.note(format!("node started (incarnation {})", self.incarnation));
        self.drain();
    }

    /// The node goes down: killed, or with the power (`power_loss`).
    fn stop_node(&mut self, power_loss: bool) {
        if self.server.take().is_none() {
            return;
        }
        self.faults += 1;
        if power_loss {
            self.disk.lock().crash();
        } else {
            self.disk.lock().kill();
        }
        self.note(format!(
            "node {}",
            if power_loss { "lost power" } else { "killed" }
        ));
        self.conns.clear();
        for client in 0..self.clients.len() {
            self.disconnect(client);
        }
    }

    fn node_timer(&mut self) {
        let now = self.now;
        if self.timer_at.is_some_and(|t| t <= now) {
            self.timer_at = None;
        }
        let Some(server) = self.server.as_mut() else {
            return;
        };
        if server.poll_timeout().is_some_and(|t| t <= now) {
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
            server.handle_jetstream_synced(now, &done);
        }
        self.drain();
    }

    /// Carries out the server's outputs, then rearms its timer and the disk's.
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
                    let Some(&client) = self.conns.get(&conn) else {
                        self.fail("no-output-after-close", format!("transmit on {conn}"));
                        return;
                    };
                    let n = bytes.len();
                    self.send_down(client, bytes);
                    if let Some(server) = self.server.as_mut() {
                        server.handle_written(self.now, conn, n);
                    }
                }
                Output::Close { conn, reason } => {
                    let Some(client) = self.conns.remove(&conn) else {
                        continue;
                    };
                    self.note(format!("server closed client {client}: {reason}"));
                    self.fail(
                        "no-unexplained-close",
                        format!("client {client} closed: {reason}"),
                    );
                    self.disconnect(client);
                }
                Output::Log(line) => {
                    let text = format!("log {line}");
                    self.note(text);
                }
            }
        }
        let now = self.now;
        if let Some(t) = self.server.as_ref().and_then(Server::poll_timeout) {
            let t = t.max(now);
            if self.timer_at.is_none_or(|at| t < at) {
                self.timer_at = Some(t);
                self.schedule_at(t, Ev::NodeTimer);
            }
        }
        let due = self.disk.lock().next_sync_due();
        if let Some(t) = due {
            let t = t.max(now);
            if self.sync_at.is_none_or(|at| t < at) {
                self.sync_at = Some(t);
                self.schedule_at(t, Ev::DiskSync);
            }
        }
    }

    // --- faults -----------------------------------------------------------

    fn fault(&mut self) {
        if self.phase != Phase::Active {
            return;
        }
        let ms = |lo, hi| (Duration::from_millis(lo), Duration::from_millis(hi));
        let (next_lo, next_hi) = match self.cfg.scenario {
            // The consumer scenarios run in their own world; here they
            // would be kills.
            Scenario::Kill | Scenario::Consumer | Scenario::WorkQueue | Scenario::Kv | Scenario::Mqtt => {
                self.stop_node(false);
                ms(150, 600)
            }
            Scenario::PowerLoss => {
                self.stop_node(true);
                ms(200, 900)
            }
            Scenario::BitflipBlock | Scenario::BitflipMeta => {
                let power = self.fault_rng.ratio(1, 3);
                self.stop_node(power);
                ms(300, 1_200)
            }
            Scenario::FullDisk => {
                if self.server.is_some() && !self.disk_full {
                    let mut disk = self.disk.lock();
                    let used = disk.used_bytes();
                    let room = self.fault_rng.range(0, 600);
                    disk.set_capacity(used + room);
                    drop(disk);
                    self.disk_full = true;
                    self.faults += 1;
                    self.note(format!("disk full ({room} bytes left)"));
                    let back = self
                        .fault_rng
                        .duration(Duration::from_millis(50), Duration::from_millis(400));
                    self.schedule(back, Ev::RestoreSpace);
                } else if self.fault_rng.ratio(1, 3) {
                    self.stop_node(false);
                }
                ms(150, 600)
            }
        };
        if self.server.is_none() {
            let back = self
                .fault_rng
                .duration(Duration::from_millis(5), Duration::from_millis(150));
            self.schedule(back, Ev::Restart);
        }
        let next = self.fault_rng.duration(next_lo, next_hi);
        self.schedule(next, Ev::Fault);
    }

    fn restore_space(&mut self) {
        self.disk
            .lock()
            .set_capacity(DiskConfig::default().capacity_bytes);
        self.disk_full = false;
        // What is published from now on must be stored again.
        for c in &mut self.clients {
            c.space_from = c.next_msg;
        }
        self.note("disk space back".to_owned());
    }

    /// Publishing stops; the node goes down once more (its files damaged
    /// in the bit-flip scenarios) and comes back for the read-back.
    fn final_fault(&mut self) {
        if self.phase == Phase::Active {
            // Let some of the acks in flight arrive first.
            self.phase = Phase::Settling;
            let settle = self
                .fault_rng
                .duration(Duration::ZERO, Duration::from_millis(30));
            self.schedule(settle, Ev::FinalFault);
            return;
        }
        if self.disk_full {
            self.restore_space();
        }
        let power = match self.cfg.scenario {
            Scenario::PowerLoss => true,
            Scenario::Kill | Scenario::FullDisk => false,
            Scenario::Consumer | Scenario::WorkQueue | Scenario::Kv | Scenario::Mqtt => false,
            Scenario::BitflipBlock | Scenario::BitflipMeta => self.fault_rng.ratio(1, 3),
        };
        self.stop_node(power);
        self.damage();
        self.phase = Phase::Verifying;
        self.schedule(Duration::from_millis(20), Ev::Restart);
    }

    /// Flips stored bits as the scenario asks (the node is down).
    fn damage(&mut self) {
        let files = self.disk.lock().file_lengths();
        let pick: Vec<(String, u64)> = match self.cfg.scenario {
            Scenario::BitflipBlock => {
                let blocks: Vec<_> = files
                    .into_iter()
                    .filter(|(n, l)| n.ends_with(".blk") && *l > 0)
                    .collect();
                if blocks.is_empty() {
                    Vec::new()
                } else {
                    vec![blocks[self.fault_rng.index(blocks.len())].clone()]
                }
            }
            Scenario::BitflipMeta => files
                .into_iter()
                .filter(|(n, l)| n.contains(".meta.") && *l > 0)
                .collect(),
            _ => Vec::new(),
        };
        for (name, len) in pick {
            let bit = self.fault_rng.below(len * 8);
            if self.disk.lock().flip_stored_bit(&name, bit) {
                self.faults += 1;
                self.note(format!("flipped bit {bit} of {name}"));
                if name.ends_with(".blk") {
                    self.damage_budget += 1;
                }
            }
        }
    }

    // --- clients ----------------------------------------------------------

    fn disconnect(&mut self, client: usize) {
        let c = &mut self.clients[client];
        if let Some(conn) = c.conn.take() {
            self.conns.remove(&conn);
        }
        c.generation += 1;
        c.parser = ServerParser::new();
        c.ready = false;
        c.inflight.clear();
        c.apis.clear();
        let after = self
            .rng
            .duration(Duration::from_millis(1), Duration::from_millis(60));
        self.schedule(after, Ev::Connect { client });
    }

    fn connect(&mut self, client: usize) {
        if self.clients[client].conn.is_some() || self.phase == Phase::Done {
            return;
        }
        if self.phase == Phase::Verifying && client != 0 {
            return;
        }
        let now = self.now;
        let wall = self.wall();
        let Some(server) = self.server.as_mut() else {
            self.schedule(Duration::from_millis(20), Ev::Connect { client });
            return;
        };
        let peer = SocketAddr::from((
            [10, 0, 0, 1 + client as u8],
            40_000 + self.clients[client].generation as u16,
        ));
        let conn = server.handle_connected(now, wall, peer);
        self.conns.insert(conn, client);
        let c = &mut self.clients[client];
        c.conn = Some(conn);
        c.generation += 1;
        c.up_due = now;
        c.down_due = now;
        let mut out = BytesMut::new();
        encode::connect(&mut out, &format!("js{client}"));
        encode::sub(&mut out, &format!("_INBOX.c{client}.>"), None, 1);
        self.api(client, &mut out, Api::Create);
        self.send_up(client, out.freeze());
        // Every other connection publishes right behind its create, before
        // the answer: the first PubAcks then depend on the creation's
        // syncs as well as their own (a stream that is not there yet
        // answers 503, and nothing is stored).
        let generation = self.clients[client].generation;
        if self.phase == Phase::Active && (generation + client as u64) % 2 == 1 {
            self.clients[client].ready = true;
            self.schedule(Duration::ZERO, Ev::Tick { client, generation });
        }
        self.drain();
    }

    fn api(&mut self, client: usize, out: &mut BytesMut, what: Api) {
        let c = &mut self.clients[client];
        let k = c.next_api;
        c.next_api += 1;
        c.apis.insert(k, what);
        let reply = format!("_INBOX.c{client}.a{k}");
        let (subject, body) = match what {
            Api::Create => (
                format!("$JS.API.STREAM.CREATE.{STREAM}"),
                STREAM_CONFIG.to_owned(),
            ),
            Api::Info => (
                format!("$JS.API.STREAM.INFO.{STREAM}"),
                r#"{"deleted_details":true}"#.to_owned(),
            ),
            Api::Get(seq) => (
                format!("$JS.API.DIRECT.GET.{STREAM}"),
                format!(r#"{{"seq":{seq}}}"#),
            ),
        };
        encode::publish(out, &subject, Some(&reply), None, body.as_bytes());
    }

    /// Client bytes towards the server, in random chunks, in order.
    fn send_up(&mut self, client: usize, bytes: Bytes) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = (self.rng.range(1, 2_048) as usize).min(rest.len());
            let chunk = rest.split_to(n);
            let lat = self
                .rng
                .duration(Duration::from_micros(10), Duration::from_micros(500));
            let c = &mut self.clients[client];
            let at = (self.now + lat).max(c.up_due);
            c.up_due = at;
            let generation = c.generation;
            self.schedule_at(
                at,
                Ev::ToServer {
                    client,
                    generation,
                    bytes: chunk,
                },
            );
        }
    }

    fn send_down(&mut self, client: usize, bytes: Bytes) {
        let lat = self
            .rng
            .duration(Duration::from_micros(10), Duration::from_micros(500));
        let c = &mut self.clients[client];
        let at = (self.now + lat).max(c.down_due);
        c.down_due = at;
        let generation = c.generation;
        self.schedule_at(
            at,
            Ev::ToClient {
                client,
                generation,
                bytes,
            },
        );
    }

    fn reach_server(&mut self, client: usize, generation: u64, bytes: Bytes) {
        let c = &self.clients[client];
        let (Some(conn), true) = (c.conn, c.generation == generation) else {
            return;
        };
        let now = self.now;
        if let Some(server) = self.server.as_mut() {
            // A producer stall only slows the publisher; the simulated
            // client has nothing else to slow.
            let _ = server.handle_received(now, conn, bytes);
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
                    let d = format!(
                        "client {client} got -ERR {}",
                        String::from_utf8_lossy(&text)
                    );
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

    fn tick(&mut self, client: usize, generation: u64) {
        let c = &self.clients[client];
        if c.generation != generation || !c.ready || self.phase != Phase::Active {
            return;
        }
        let mut out = BytesMut::new();
        while self.clients[client].inflight.len() < self.cfg.window
            && self.clients[client].next_msg < self.cfg.max_msgs
        {
            let c = &mut self.clients[client];
            let n = c.next_msg;
            c.next_msg += 1;
            c.inflight.insert(n);
            let payload = payload_of(client, n, self.cfg.max_payload);
            let reply = format!("_INBOX.c{client}.p{n}");
            encode::publish(
                &mut out,
                &subject_of(client, n),
                Some(&reply),
                None,
                &payload,
            );
            self.published += 1;
        }
        if !out.is_empty() {
            self.send_up(client, out.freeze());
        }
        let next = self
            .rng
            .duration(Duration::from_millis(2), Duration::from_millis(20));
        self.schedule(next, Ev::Tick { client, generation });
    }

    fn receive(&mut self, client: usize, d: Delivery) {
        let subject = String::from_utf8_lossy(&d.subject).into_owned();
        let prefix = format!("_INBOX.c{client}.");
        let Some(tail) = subject.strip_prefix(&prefix) else {
            self.fail(
                "no-extra-delivery",
                format!("client {client} got a message on {subject}"),
            );
            return;
        };
        if let Some(n) = tail.strip_prefix('p').and_then(|n| n.parse::<u64>().ok()) {
            if !self.clients[client].inflight.remove(&n) {
                self.fail(
                    "no-extra-delivery",
                    format!("client {client}: a second answer to publish {n}"),
                );
                return;
            }
            self.pub_ack(client, n, &d);
            return;
        }
        let Some(k) = tail.strip_prefix('a').and_then(|k| k.parse::<u64>().ok()) else {
            self.fail(
                "no-extra-delivery",
                format!("client {client} got a message on {subject}"),
            );
            return;
        };
        let Some(what) = self.clients[client].apis.remove(&k) else {
            self.fail(
                "no-extra-delivery",
                format!("client {client}: a second answer to request {k}"),
            );
            return;
        };
        match what {
            Api::Create => self.created(client, &d),
            Api::Info => self.info(client, &d),
            Api::Get(seq) => self.got(client, seq, &d),
        }
    }

    fn pub_ack(&mut self, client: usize, n: u64, d: &Delivery) {
        if let Some(status) = d.headers.as_deref().and_then(crate::wire::status) {
            // No stream took it (503 no responders): not stored.
            if status == 503 {
                self.no_responders += 1;
                return;
            }
            self.fail(
                "pub-ack",
                format!("client {client} msg {n}: status {status}"),
            );
            return;
        }
        let json: serde_json::Value = match serde_json::from_slice(&d.payload) {
            Ok(v) => v,
            Err(e) => {
                self.fail(
                    "pub-ack",
                    format!("client {client} msg {n}: {e}: {:?}", d.payload),
                );
                return;
            }
        };
        if let Some(err) = json.get("error") {
            let code = err.get("code").and_then(serde_json::Value::as_u64);
            let err_code = err.get("err_code").and_then(serde_json::Value::as_u64);
            // nats-server refuses a publish it has no room for with
            // 503 / 10023 "insufficient resources".
            if self.cfg.scenario == Scenario::FullDisk
                && code == Some(503)
                && err_code == Some(10023)
            {
                if !self.disk_full && n >= self.clients[client].space_from {
                    let d = format!("client {client} msg {n}, published after space came back, was refused: {json}");
                    self.fail("works-after-full-disk", d);
                }
                self.refused += 1;
                return;
            }
            self.fail(
                "publish-refused",
                format!("client {client} msg {n}: {json}"),
            );
            return;
        }
        let seq = json
            .get("seq")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let stream = json
            .get("stream")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        if seq == 0 || stream != STREAM || json.get("duplicate").is_some() {
            self.fail("pub-ack", format!("client {client} msg {n}: {json}"));
            return;
        }
        if let Some(&(c0, n0)) = self.acked.get(&seq) {
            let d = format!("seq {seq} acknowledged for client {c0} msg {n0} and again for client {client} msg {n}");
            self.fail("sequence-reused", d);
            return;
        }
        self.acked.insert(seq, (client, n));
    }

    fn created(&mut self, client: usize, d: &Delivery) {
        let json: serde_json::Value = serde_json::from_slice(&d.payload).unwrap_or_default();
        if json.get("error").is_some() || json.get("config").is_none() {
            // Full disk, most likely: try again on a new connection.
            if self.cfg.scenario != Scenario::FullDisk {
                self.fail("stream-create", format!("client {client}: {json}"));
                return;
            }
            let mut out = BytesMut::new();
            self.api(client, &mut out, Api::Create);
            let c = &mut self.clients[client];
            c.up_due = c.up_due.max(self.now + Duration::from_millis(20));
            self.send_up(client, out.freeze());
            return;
        }
        let pipelined = std::mem::replace(&mut self.clients[client].ready, true);
        match self.phase {
            Phase::Active if pipelined => {}
            Phase::Active => {
                let generation = self.clients[client].generation;
                self.schedule(Duration::ZERO, Ev::Tick { client, generation });
            }
            Phase::Verifying if client == 0 && self.read.info.is_none() => {
                let mut out = BytesMut::new();
                self.api(0, &mut out, Api::Info);
                self.send_up(0, out.freeze());
            }
            _ => {}
        }
    }

    fn info(&mut self, client: usize, d: &Delivery) {
        let json: serde_json::Value = serde_json::from_slice(&d.payload).unwrap_or_default();
        let state = json.get("state").cloned();
        let Some(state) = state else {
            self.fail(
                "stream-recovered",
                format!("client {client}: STREAM.INFO answered {json}"),
            );
            return;
        };
        let num = |k: &str| {
            state
                .get(k)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0)
        };
        self.read.first = num("first_seq");
        self.read.last = num("last_seq");
        self.read.next = self.read.first.max(1);
        self.read.info = Some(json);
        self.more_gets();
    }

    fn more_gets(&mut self) {
        let mut out = BytesMut::new();
        while self.read.outstanding < VERIFY_WINDOW && self.read.next <= self.read.last {
            let seq = self.read.next;
            self.read.next += 1;
            self.read.outstanding += 1;
            self.api(0, &mut out, Api::Get(seq));
        }
        if !out.is_empty() {
            self.send_up(0, out.freeze());
        }
        if self.read.outstanding == 0 && self.read.next > self.read.last {
            let verdict = check::check(self);
            self.phase = Phase::Done;
            if let Err(v) = verdict {
                self.fail(v.invariant, v.detail);
            }
        }
    }

    fn got(&mut self, _client: usize, seq: u64, d: &Delivery) {
        self.read.outstanding -= 1;
        let status = d.headers.as_deref().and_then(crate::wire::status);
        let served = match status {
            Some(404) => None,
            Some(other) => {
                self.fail("direct-get", format!("seq {seq}: status {other}"));
                return;
            }
            None => {
                let h = d.headers.clone().unwrap_or_default();
                let header = |name: &str| -> Option<String> {
                    let text = String::from_utf8_lossy(&h).into_owned();
                    text.split("\r\n").find_map(|l| {
                        l.split_once(':')
                            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                            .map(|(_, v)| v.trim().to_owned())
                    })
                };
                if header("Nats-Sequence").as_deref() != Some(seq.to_string().as_str()) {
                    self.fail(
                        "corrupt-served",
                        format!("DIRECT.GET {seq} answered with headers {h:?}"),
                    );
                    return;
                }
                let subject = Bytes::from(header("Nats-Subject").unwrap_or_default());
                Some((subject, d.payload.clone()))
            }
        };
        self.read.got.insert(seq, served);
        self.more_gets();
    }
}

/// An event without its bytes, for the flight recorder.
fn short(ev: &Ev) -> String {
    match ev {
        Ev::ToServer {
            client,
            generation,
            bytes,
        } => format!("ToServer c{client} g{generation} {}B", bytes.len()),
        Ev::ToClient {
            client,
            generation,
            bytes,
        } => format!("ToClient c{client} g{generation} {}B", bytes.len()),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests;
