//! MQTT sessions under simulation (`js-mqtt`): one real core `Server` on
//! its [`SimDisk`], killed (kill -9) or powered off and restarted, with
//! device links dropped; each device connection is a real
//! [`MqttSession`] bridged to the core as the runtime bridges it.
//!
//! A publisher device publishes QoS 1 messages (clean session; what is
//! not acknowledged when its link goes is published again), a subscriber
//! device keeps a persistent session subscribed at QoS 1 and acknowledges
//! every delivery. Invariant `mqtt-qos1-at-least-once`: every message whose
//! PUBACK the publisher got after the subscriber's SUBACK reaches the
//! subscriber, across every crash and reconnect. `mqtt-session-kept`: once
//! subscribed, the subscriber's CONNACK always says its session is there.
//! The self-test mutation [`MMutation::SwallowDelivery`] loses a delivery
//! between the session and the device (acknowledged all the same): the
//! checker must catch it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use natrix_core::config::ServerOptions;
use natrix_core::mqtt::packet::{encode_client, Connect, Packet, Publish};
use natrix_core::mqtt::{MqttSession, Setup};
use natrix_core::server::{CloseReason, Transport};
use natrix_core::storage::Storage;
use natrix_core::{ConnId, Instant, Output, Server, UnixNanos};

use crate::disk::{DiskConfig, SharedDisk, SimDisk};
use crate::rng::SimRng;
use crate::trace::{Recorder, TraceHash};
use crate::world::{Failure, RunReport};

/// How long after the active phase every acknowledged message may take to arrive.
const DRAIN_DEADLINE: Duration = Duration::from_secs(20);
/// The topic everything is published to.
const TOPIC: &str = "sim/q1";

/// A deliberate break the checker must catch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MMutation {
    /// Run faithfully.
    None,
    /// The `nth` delivery to the subscriber is lost on its way and
    /// acknowledged all the same (a session that skips a message).
    SwallowDelivery {
        /// Which one (0-based).
        nth: u64,
    },
}

/// The shape of one run, all derived from its seed.
#[derive(Clone, Debug)]
pub struct MConfig {
    /// The seed.
    pub seed: u64,
    /// Checker self-test mutation.
    pub mutation: MMutation,
    /// PUBLISHes awaiting PUBACK at once.
    pub window: usize,
    /// Messages published at most.
    pub max_msgs: u64,
    /// Virtual time during which the devices work and faults happen.
    pub active: Duration,
    /// How long a delivery waits for its PUBACK before it is redelivered.
    pub ack_wait: Duration,
}

impl MConfig {
    /// The standard run for `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = SimRng::new(seed ^ 0x6d71_7474_0000_0018);
        MConfig {
            seed,
            mutation: MMutation::None,
            window: rng.range(1, 9) as usize,
            max_msgs: rng.range(30, 150),
            active: Duration::from_millis(rng.range(1_000, 2_500)),
            ack_wait: Duration::from_millis(rng.range(200, 700)),
        }
    }
}

/// Runs one configuration.
pub fn run(cfg: MConfig) -> RunReport {
    MWorld::new(cfg).run()
}

#[derive(Clone, Debug)]
enum Ev {
    NodeTimer,
    DiskSync,
    Restart,
    Connect { device: usize },
    Tick { device: usize, generation: u64 },
    Kill,
    DropLink,
    EndActive,
    Deadline,
}

impl Ev {
    fn tag(&self) -> (u64, u64) {
        match self {
            Ev::NodeTimer => (0, 0),
            Ev::DiskSync => (1, 0),
            Ev::Restart => (2, 0),
            Ev::Connect { device } => (3, *device as u64),
            Ev::Tick { device, generation } => (4, (*device as u64) << 32 | generation),
            Ev::Kill => (5, 0),
            Ev::DropLink => (6, 0),
            Ev::EndActive => (7, 0),
            Ev::Deadline => (8, 0),
        }
    }
}

/// One device connection: the core's connection and the session between.
struct Link {
    conn: ConnId,
    session: MqttSession,
    /// Bytes from the session not yet read as whole packets.
    inbound: Vec<u8>,
    connacked: bool,
}

struct Device {
    subscriber: bool,
    generation: u64,
    link: Option<Link>,
    reconnect_pending: bool,
    /// Publisher: packet id → (message, counted by the checker).
    inflight: BTreeMap<u16, (u64, bool)>,
    /// Publisher: messages to publish again after a reconnect.
    unsent: Vec<(u64, bool)>,
    next_pi: u16,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Active,
    Draining,
    Done,
}

struct MWorld {
    cfg: MConfig,
    now: Instant,
    queue: crate::schedule::EventQueue<Ev>,
    rng: SimRng,
    fault_rng: SimRng,
    disk: SharedDisk,
    server: Option<Server>,
    options: ServerOptions,
    setup: Setup,
    timer_at: Option<Instant>,
    sync_at: Option<Instant>,
    devices: Vec<Device>,
    conns: BTreeMap<ConnId, usize>,
    phase: Phase,
    next_msg: u64,
    /// The subscriber's first SUBACK came: publishes from now on are owed to it.
    subscribed: bool,
    /// Messages acknowledged to the publisher that the subscriber is owed.
    owed: BTreeSet<u64>,
    received: BTreeSet<u64>,
    deliveries: u64,
    faults: u64,
    hash: TraceHash,
    recorder: Recorder,
    events: u64,
    failure: Option<Failure>,
}

impl MWorld {
    fn new(cfg: MConfig) -> Self {
        let mut rng = SimRng::new(cfg.seed);
        let fault_rng = rng.fork();
        let disk_config = DiskConfig {
            sync_latency_min: Duration::from_micros(50),
            sync_latency_max: Duration::from_millis(5),
            ..DiskConfig::default()
        };
        let disk = SharedDisk::new(SimDisk::new(disk_config, rng.fork()));
        let options = ServerOptions {
            server_name: Some("mqtt-sim".to_owned()),
            host: "127.0.0.1".to_owned(),
            jetstream: true,
            ..ServerOptions::default()
        };
        let mut setup = Setup::from_options(&options, "mqtt-sim");
        setup.ack_wait = cfg.ack_wait;
        let device = |subscriber| Device {
            subscriber,
            generation: 0,
            link: None,
            reconnect_pending: false,
            inflight: BTreeMap::new(),
            unsent: Vec::new(),
            next_pi: 0,
        };
        MWorld {
            cfg,
            now: Instant::ZERO,
            queue: Default::default(),
            rng,
            fault_rng,
            disk,
            server: None,
            options,
            setup,
            timer_at: None,
            sync_at: None,
            devices: vec![device(true), device(false)],
            conns: BTreeMap::new(),
            phase: Phase::Active,
            next_msg: 0,
            subscribed: false,
            owed: BTreeSet::new(),
            received: BTreeSet::new(),
            deliveries: 0,
            faults: 0,
            hash: TraceHash::default(),
            recorder: Recorder::new(60),
            events: 0,
            failure: None,
        }
    }

    fn run(mut self) -> RunReport {
        self.start_node();
        for device in 0..self.devices.len() {
            self.schedule(Duration::from_millis(1 + device as u64), Ev::Connect { device });
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
            published: self.owed.len() as u64,
            delivered: self.deliveries,
            faults: self.faults,
            server_closes: BTreeMap::new(),
            excused: 0,
            replies: self.received.len() as u64,
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
            let (tag, arg) = s.ev.tag();
            self.hash.u64(tag);
            self.hash.u64(arg);
            self.recorder.push(s.at, format!("{:?}", s.ev));
            match s.ev {
                Ev::NodeTimer => self.node_timer(),
                Ev::DiskSync => self.disk_sync(),
                Ev::Restart => self.start_node(),
                Ev::Connect { device } => self.connect(device),
                Ev::Tick { device, generation } => self.tick(device, generation),
                Ev::Kill => self.kill(),
                Ev::DropLink => self.drop_link(),
                Ev::EndActive => self.phase = Phase::Draining,
                Ev::Deadline => self.deadline(),
            }
            self.check_done();
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
        self.timer_at = None;
        self.sync_at = None;
        let disk: Box<dyn Storage + Send> = Box::new(self.disk.clone());
        let seed = self.rng.seed32();
        self.server = Some(Server::with_storages(self.options.clone(), seed, self.now, self.wall(), None, Some(disk)));
        self.note("node started".to_owned());
        self.pump();
    }

    fn kill(&mut self) {
        if self.phase != Phase::Active {
            return;
        }
        if self.server.take().is_some() {
            let power = self.fault_rng.ratio(1, 3);
            self.faults += 1;
            if power {
                self.disk.lock().crash();
            } else {
                self.disk.lock().kill();
            }
            self.note(format!("node {}", if power { "lost power" } else { "killed" }));
            self.conns.clear();
            for device in 0..self.devices.len() {
                self.lose_link(device);
            }
            let back = self.fault_rng.duration(Duration::from_millis(5), Duration::from_millis(150));
            self.schedule(back, Ev::Restart);
        }
        let next = self.fault_rng.duration(Duration::from_millis(200), Duration::from_millis(900));
        self.schedule(next, Ev::Kill);
    }

    /// A device's link resets: the session hears of it, then the core.
    fn drop_link(&mut self) {
        if self.phase != Phase::Active {
            return;
        }
        let device = self.fault_rng.index(self.devices.len());
        if let Some(mut link) = self.devices[device].link.take() {
            self.faults += 1;
            self.note(format!("link of device {device} dropped"));
            link.session.handle_lost();
            self.feed_core(link.conn, &mut link.session);
            self.conns.remove(&link.conn);
            let now = self.now;
            if let Some(server) = self.server.as_mut() {
                server.handle_closed(now, link.conn, CloseReason::ClientClosed);
            }
            self.lose_link(device);
            self.pump();
        }
        let next = self.fault_rng.duration(Duration::from_millis(30), Duration::from_millis(400));
        self.schedule(next, Ev::DropLink);
    }

    fn node_timer(&mut self) {
        let now = self.now;
        if self.timer_at.is_some_and(|t| t <= now) {
            self.timer_at = None;
        }
        let Some(server) = self.server.as_mut() else { return };
        if server.poll_timeout().is_some_and(|t| t <= now) {
            server.handle_timeout(now);
        }
        self.pump();
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
        self.pump();
    }

    /// Carries the core's output to the sessions and theirs back, until
    /// nothing moves; then rearms the node's timer and the disk's.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut outputs = Vec::new();
            if let Some(server) = self.server.as_mut() {
                while let Some(out) = server.poll_output() {
                    outputs.push(out);
                }
            }
            let mut moved = !outputs.is_empty();
            for out in outputs {
                match out {
                    Output::Transmit { conn, bytes } => {
                        let n = bytes.len();
                        if let Some(&device) = self.conns.get(&conn) {
                            if let Some(link) = self.devices[device].link.as_mut() {
                                link.session.handle_nats(self.now, &bytes);
                            }
                        }
                        if let Some(server) = self.server.as_mut() {
                            server.handle_written(self.now, conn, n);
                        }
                    }
                    Output::Close { conn, reason } => {
                        if let Some(device) = self.conns.remove(&conn) {
                            self.note(format!("core closed device {device}: {reason}"));
                            if let Some(link) = self.devices[device].link.take() {
                                drop(link);
                            }
                            self.lose_link(device);
                        }
                    }
                    Output::Log(_) => {}
                }
            }
            for device in 0..self.devices.len() {
                moved |= self.service(device);
            }
            if !moved {
                break;
            }
        }
        self.rearm();
    }

    fn rearm(&mut self) {
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

    /// Moves a device's bytes: session → core, session → device (which may
    /// answer). True if anything moved.
    fn service(&mut self, device: usize) -> bool {
        let Some(mut link) = self.devices[device].link.take() else { return false };
        let mut moved = self.feed_core(link.conn, &mut link.session);
        if let Some(bytes) = link.session.take_to_client() {
            moved = true;
            link.inbound.extend_from_slice(&bytes);
            let answer = self.device_reads(device, &mut link);
            if !answer.is_empty() {
                link.session.handle_received(self.now, &answer);
            }
        }
        if link.session.closed().is_some() {
            self.feed_core(link.conn, &mut link.session);
            self.note(format!("session of device {device} closed: {:?}", link.session.closed()));
            self.conns.remove(&link.conn);
            let now = self.now;
            if let Some(server) = self.server.as_mut() {
                server.handle_closed(now, link.conn, CloseReason::ClientClosed);
            }
            self.lose_link(device);
            return true;
        }
        self.devices[device].link = Some(link);
        moved
    }

    fn feed_core(&mut self, conn: ConnId, session: &mut MqttSession) -> bool {
        let mut moved = false;
        while let Some(bytes) = session.take_to_server() {
            moved = true;
            let now = self.now;
            if let Some(server) = self.server.as_mut() {
                server.handle_received(now, conn, bytes);
            }
        }
        moved
    }

    // --- the devices ------------------------------------------------------

    fn connect(&mut self, device: usize) {
        self.devices[device].reconnect_pending = false;
        if self.devices[device].link.is_some() || self.phase == Phase::Done {
            return;
        }
        let (now, wall) = (self.now, self.wall());
        let Some(server) = self.server.as_mut() else {
            return self.reconnect_later(device);
        };
        let peer: SocketAddr = "127.0.0.1:50000".parse().expect("address");
        let conn = server.handle_connected_via(now, wall, peer, Transport::Mqtt);
        let mut session = MqttSession::new(self.setup.clone(), self.rng.next_u64());
        let d = &mut self.devices[device];
        d.generation += 1;
        let client_id = if d.subscriber { "sim-sub" } else { "sim-pub" };
        let connect = Connect {
            client_id: client_id.into(),
            clean: !d.subscriber,
            keep_alive_secs: 0,
            will: None,
            username: None,
            password: None,
        };
        let mut out = BytesMut::new();
        encode_client(&mut out, &Packet::Connect(connect));
        session.handle_received(self.now, &out);
        self.conns.insert(conn, device);
        self.devices[device].link = Some(Link { conn, session, inbound: Vec::new(), connacked: false });
        self.note(format!("device {device} connecting on {conn}"));
        self.pump();
    }

    fn reconnect_later(&mut self, device: usize) {
        if self.devices[device].reconnect_pending || self.phase == Phase::Done {
            return;
        }
        self.devices[device].reconnect_pending = true;
        let after = self.rng.duration(Duration::from_millis(5), Duration::from_millis(80));
        self.schedule(after, Ev::Connect { device });
    }

    /// The device's link is gone: a publisher will publish again what was
    /// not acknowledged.
    fn lose_link(&mut self, device: usize) {
        let d = &mut self.devices[device];
        d.link = None;
        let pending: Vec<(u64, bool)> = std::mem::take(&mut d.inflight).into_values().collect();
        d.unsent.extend(pending);
        d.unsent.sort_unstable();
        self.reconnect_later(device);
    }

    /// The device reads whole packets; returns what it answers.
    fn device_reads(&mut self, device: usize, link: &mut Link) -> Vec<u8> {
        let mut answer = BytesMut::new();
        while let Some((first, body)) = take_packet(&mut link.inbound) {
            match first >> 4 {
                2 => {
                    link.connacked = true;
                    let present = body.first() == Some(&1);
                    self.on_connack(device, present, &mut answer);
                }
                9 if body.get(2) == Some(&1) && !self.subscribed => {
                    self.subscribed = true;
                    self.note("subscriber subscribed".to_owned());
                }
                3 => self.on_delivery(first, &body, &mut answer),
                4 if body.len() >= 2 => {
                    let pi = u16::from_be_bytes([body[0], body[1]]);
                    if let Some((n, counted)) = self.devices[device].inflight.remove(&pi) {
                        if counted {
                            self.owed.insert(n);
                        }
                    }
                }
                _ => {}
            }
        }
        answer.to_vec()
    }

    fn on_connack(&mut self, device: usize, present: bool, answer: &mut BytesMut) {
        if !self.devices[device].subscriber {
            let generation = self.devices[device].generation;
            self.queue.push(self.now, Ev::Tick { device, generation });
            return;
        }
        if self.subscribed && !present {
            return self.fail("mqtt-session-kept", "the subscriber's persistent session was not there".to_owned());
        }
        if !present {
            encode_client(answer, &Packet::Subscribe(1, vec![(TOPIC.to_owned(), 1)]));
        }
    }

    fn on_delivery(&mut self, first: u8, body: &[u8], answer: &mut BytesMut) {
        let qos = (first >> 1) & 3;
        let Some(topic_len) = body.get(..2).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))) else { return };
        let mut rest = body.get(2 + topic_len..).unwrap_or_default();
        let mut pi = 0;
        if qos > 0 && rest.len() >= 2 {
            pi = u16::from_be_bytes([rest[0], rest[1]]);
            rest = &rest[2..];
        }
        let n = std::str::from_utf8(rest).ok().and_then(|s| s.strip_prefix('m')).and_then(|s| s.parse::<u64>().ok());
        let swallowed = matches!(self.cfg.mutation, MMutation::SwallowDelivery { nth } if nth == self.deliveries && qos == 1);
        self.deliveries += 1;
        if let (Some(n), false) = (n, swallowed) {
            self.received.insert(n);
        }
        if qos == 1 {
            encode_client(answer, &Packet::PubAck(pi));
        }
    }

    /// The publisher publishes while its window allows.
    fn tick(&mut self, device: usize, generation: u64) {
        let d = &self.devices[device];
        if d.generation != generation || d.subscriber || !d.link.as_ref().is_some_and(|l| l.connacked) {
            return;
        }
        let mut out = BytesMut::new();
        while self.devices[device].inflight.len() < self.cfg.window {
            let d = &mut self.devices[device];
            let (n, counted) = if let Some(again) = (!d.unsent.is_empty()).then(|| d.unsent.remove(0)) {
                again
            } else if self.phase == Phase::Active && self.next_msg < self.cfg.max_msgs {
                self.next_msg += 1;
                (self.next_msg, self.subscribed)
            } else {
                break;
            };
            let d = &mut self.devices[device];
            d.next_pi = d.next_pi.checked_add(1).unwrap_or(1);
            let pi = d.next_pi;
            d.inflight.insert(pi, (n, counted));
            let p = Publish { topic: TOPIC.into(), pi, qos: 1, retain: false, dup: false, payload: Bytes::from(format!("m{n}")) };
            encode_client(&mut out, &Packet::Publish(p));
        }
        if let Some(link) = self.devices[device].link.as_mut() {
            if !out.is_empty() {
                link.session.handle_received(self.now, &out);
            }
        }
        self.pump();
        let after = self.rng.duration(Duration::from_millis(1), Duration::from_millis(15));
        self.schedule(after, Ev::Tick { device, generation });
    }

    // --- the checks -------------------------------------------------------

    fn check_done(&mut self) {
        let publisher_idle = self.devices.iter().all(|d| d.subscriber || (d.inflight.is_empty() && d.unsent.is_empty()));
        if self.phase == Phase::Draining && publisher_idle && self.owed.is_subset(&self.received) {
            self.phase = Phase::Done;
        }
    }

    fn deadline(&mut self) {
        if self.phase == Phase::Done {
            return;
        }
        let missing: Vec<u64> = self.owed.difference(&self.received).copied().take(10).collect();
        if !missing.is_empty() {
            return self.fail(
                "mqtt-qos1-at-least-once",
                format!("acknowledged QoS 1 messages never delivered to the subscriber: {missing:?}"),
            );
        }
        let stuck: usize = self.devices.iter().map(|d| d.inflight.len() + d.unsent.len()).sum();
        self.fail("mqtt-publishes-acknowledged", format!("{stuck} QoS 1 publishes never acknowledged"));
    }
}

/// One whole MQTT packet off the front of `buf`: (first byte, body).
fn take_packet(buf: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    let mut len = 0usize;
    for i in 1..5 {
        let b = *buf.get(i)?;
        len |= usize::from(b & 0x7F) << (7 * (i - 1));
        if b & 0x80 == 0 {
            if buf.len() < i + 1 + len {
                return None;
            }
            let first = buf[0];
            let body = buf[i + 1..i + 1 + len].to_vec();
            buf.drain(..i + 1 + len);
            return Some((first, body));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_seeds_pass_and_replay_exactly() {
        for seed in 1..=6 {
            let r = run(MConfig::new(seed));
            assert!(r.failure.is_none(), "seed {seed}: {:?}", r.failure.map(|f| (f.invariant, f.detail, f.recent)));
            assert!(r.published > 0, "seed {seed}: nothing was owed to the subscriber");
            assert_eq!(r.trace_hash, run(MConfig::new(seed)).trace_hash, "seed {seed} replays");
        }
    }

    #[test]
    fn a_swallowed_delivery_is_caught() {
        let caught = (1..=10).any(|seed| {
            let mut cfg = MConfig::new(seed);
            cfg.mutation = MMutation::SwallowDelivery { nth: 5 };
            run(cfg).failure.is_some_and(|f| f.invariant == "mqtt-qos1-at-least-once")
        });
        assert!(caught, "the checker missed a lost delivery in every seed");
    }
}
