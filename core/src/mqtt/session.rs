//! One MQTT connection's session: MQTT packets in, NATS protocol out to the
//! core; the core's NATS protocol in, MQTT packets out to the device. See
//! the [module](super) documentation for the design.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{json, Value};

use super::nats::{self, Event, Msg};
use super::packet::{self, rc, Connect, Decoder, Packet, Publish};
use super::topic;
use super::{MSGS_PREFIX, QOS2IN_PREFIX, QOS2IN_STREAM, RMSGS_PREFIX, RMSGS_STREAM};
use crate::close::CloseReason;
use crate::time::Instant;

mod js;

/// What every session of a listener shares: the `mqtt {}` options that
/// apply to sessions, and the server's limits.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The server's name (`Nmqtt-ROrigin` of retained messages).
    pub server_name: String,
    /// `max_payload`: the largest CONNECT packet.
    pub max_payload_bytes: usize,
    /// How long a QoS 1 delivery waits for its PUBACK.
    pub ack_wait: Duration,
    /// Unacknowledged QoS 1 deliveries per subscription.
    pub max_ack_pending: u16,
    /// `$JS.API` or `$JS.<domain>.API`.
    pub js_api: String,
    /// QoS 1 consumers kept in memory.
    pub consumer_memory_storage: bool,
    /// `reject_qos2_publish`: a QoS 2 PUBLISH (or will) closes the connection.
    pub reject_qos2_publish: bool,
    /// `downgrade_qos2_subscribe`: QoS 2 subscriptions are granted QoS 1.
    pub downgrade_qos2_subscribe: bool,
}

impl Setup {
    /// The setup from the server's options.
    pub fn from_options(opts: &crate::config::ServerOptions, server_name: &str) -> Self {
        let m = &opts.mqtt;
        Setup {
            server_name: server_name.to_owned(),
            max_payload_bytes: usize::try_from(opts.max_payload_bytes).unwrap_or(usize::MAX),
            ack_wait: m.ack_wait(),
            max_ack_pending: m.max_ack_pending(),
            js_api: match m.js_domain.as_deref() {
                Some(d) if !d.is_empty() => format!("$JS.{d}.API"),
                _ => "$JS.API".to_owned(),
            },
            consumer_memory_storage: m.consumer_memory_storage,
            reject_qos2_publish: m.reject_qos2_publish,
            downgrade_qos2_subscribe: m.downgrade_qos2_subscribe,
        }
    }
}

/// Packets read ahead while a SUBSCRIBE, UNSUBSCRIBE or CONNECT waits on
/// JetStream; past this the client is flooding and is cut off.
const MAX_QUEUED_PACKETS: usize = 4096;
/// Bytes of the packets read ahead (payloads and topics), likewise.
const MAX_QUEUED_BYTES: usize = 16 << 20;
/// JetStream requests (stores of QoS 1 messages included) awaiting replies:
/// past this JetStream is not keeping up and the client is cut off.
const MAX_OPEN_REQUESTS: usize = 65_536;
/// Work waiting for the core's PONG (or PUBRELs for their PUBCOMP): past
/// this the client is flooding and is cut off.
const MAX_AWAITING: usize = 65_536;
/// The sid of the subscription to JetStream API replies.
const REPLY_SID: u64 = 1;

/// Where the session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for CONNECT.
    New,
    /// NATS CONNECT and PING sent; the PONG says the credentials were good.
    Authorizing,
    /// Creating the MQTT streams.
    Streams,
    /// Loading the stored session.
    Loading,
    /// CONNACK sent.
    Connected,
    /// Closing.
    Closed,
}

/// A JetStream API request waiting for its reply.
#[derive(Debug)]
enum Request {
    StreamCreate,
    SessionLoad,
    Ignored,
    /// Storing a QoS 1 message or a retained one: the PUBACK ticket.
    Store(u64),
    ConsumerCreate { subject: String },
    RetainedConsumer { sid: u64 },
    /// The session stored for a SUBSCRIBE, whose SUBACK waits for it.
    SubscribeSaved,
    /// A QoS 2 PUBLISH stored in `$MQTT_qos2in`: PUBREC once it is.
    Qos2Stored(u16),
    /// The `$MQTT_qos2in` message a PUBREL released (or none).
    Qos2Released(u16),
}

/// What waits for the PONG to a PING the session sent after it: the core
/// answers a denied PUB or SUB with an `-ERR` before that PONG, so by then
/// the session knows what the device's permissions refused.
#[derive(Debug)]
enum AwaitPong {
    /// A SUBSCRIBE whose SUBs were sent: packet id, (filter subject or
    /// `None` for a refused filter, granted QoS).
    Subscribe(u16, Vec<(Option<String>, u8)>),
    /// A PUBLISH sent to NATS: its stores (and retained message) follow
    /// unless the publish was denied.
    Publish { subject: String, publish: Publish, ticket: Option<u64> },
}

/// A subscription of the MQTT session, by NATS subject.
#[derive(Clone, Debug)]
struct Sub {
    qos: u8,
    /// NATS sids: the subject, and its parent for `a/#`.
    sids: Vec<u64>,
    /// The JetStream consumer of a QoS 1 subscription.
    consumer: Option<ConsumerRec>,
}

#[derive(Clone, Debug)]
struct ConsumerRec {
    /// The durable name, or the server-given name of an ephemeral one.
    name: Option<String>,
    deliver_sid: u64,
    /// The create request body, re-sent on restore.
    config: Value,
}

/// A SUBACK waiting for consumers: its packet id, return codes, and the
/// (subject, QoS) subscriptions granted.
type PendingSuback = (u16, Vec<u8>, Vec<(String, u8)>);

/// How a QoS 1 delivery is acknowledged: the JetStream ack subject, and
/// the (consumer, stream sequence) that recognizes a redelivery.
type Tracking = (Option<String>, Option<(String, u64)>);

/// What a sid carries.
#[derive(Clone, Debug)]
enum SidKind {
    /// Messages on the subscribed subject (QoS 0 path).
    Plain { subject: String, reserved: bool },
    /// A QoS 1 consumer's deliveries.
    Consumer { subject: String, reserved: bool },
    /// Another connection took this client id over.
    Takeover,
    /// Retained messages for a new subscription.
    Retained { qos: u8, reserved: bool, expected: Option<u64>, got: u64, name: Option<String> },
}

/// A PUBLISH awaiting PUBACK (or PUBREC for QoS 2) from this session.
#[derive(Debug)]
struct InboundAck {
    ticket: u64,
    pi: u16,
    outstanding: u8,
    qos2: bool,
}

/// A delivery awaiting the device's PUBACK.
#[derive(Debug)]
struct Outbound {
    /// The JetStream ack subject, for consumer deliveries.
    ack: Option<String>,
    key: Option<(String, u64)>,
}

/// An MQTT connection's session (see the [module](super) documentation).
pub struct MqttSession {
    setup: Setup,
    rng: ChaCha8Rng,
    phase: Phase,
    decoder: Decoder,
    reader: nats::Reader,
    to_client: BytesMut,
    to_server: BytesMut,
    close: Option<CloseReason>,
    connect: Option<Connect>,
    client_id: String,
    id_hash: String,
    reply_prefix: String,
    keep_alive: Option<Duration>,
    deadline: Option<Instant>,
    queued: VecDeque<Packet>,
    queued_bytes: usize,
    /// Requests the packet being processed waits for.
    blocking: usize,
    /// The SUBSCRIBE waiting for its consumers: pi, codes, new subjects.
    suback: Option<PendingSuback>,
    requests: BTreeMap<u64, Request>,
    next_id: u64,
    next_sid: u64,
    subs: BTreeMap<String, Sub>,
    sids: BTreeMap<u64, SidKind>,
    inbound: VecDeque<InboundAck>,
    next_ticket: u64,
    outbound: BTreeMap<u16, Outbound>,
    outbound_by_key: BTreeMap<(String, u64), u16>,
    next_pi: u16,
    /// QoS 2 deliveries PUBREC'd and PUBREL'd, waiting for PUBCOMP.
    pubrel_pending: BTreeSet<u16>,
    awaiting_pong: VecDeque<AwaitPong>,
    /// Subjects the core refused since the last PONG: publishes, subscriptions.
    denied_pub: BTreeSet<String>,
    denied_sub: BTreeSet<String>,
    /// The pending SUBACK's session store was asked for.
    suback_saved: bool,
    session_present: bool,
    streams_pending: usize,
}

impl std::fmt::Debug for MqttSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSession").field("client_id", &self.client_id).field("phase", &self.phase).finish_non_exhaustive()
    }
}

impl MqttSession {
    /// A session for a new connection; `seed` seeds its ids.
    pub fn new(setup: Setup, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let token = random_token(&mut rng, 10);
        let max_connect = setup.max_payload_bytes;
        // A PUBLISH may carry max_payload and a 64 KiB topic; the core
        // refuses a larger message after it.
        let max_packet = setup.max_payload_bytes.saturating_add(70 * 1024).min(packet::MAX_REMAINING_BYTES + 5);
        MqttSession {
            setup,
            rng,
            phase: Phase::New,
            decoder: Decoder::new(max_connect, max_packet),
            reader: nats::Reader::default(),
            to_client: BytesMut::new(),
            to_server: BytesMut::new(),
            close: None,
            connect: None,
            client_id: String::new(),
            id_hash: String::new(),
            reply_prefix: format!("$MQTT.JSA.{token}"),
            keep_alive: None,
            deadline: None,
            queued: VecDeque::new(),
            queued_bytes: 0,
            blocking: 0,
            suback: None,
            requests: BTreeMap::new(),
            next_id: 1,
            next_sid: REPLY_SID + 1,
            subs: BTreeMap::new(),
            sids: BTreeMap::new(),
            inbound: VecDeque::new(),
            next_ticket: 0,
            outbound: BTreeMap::new(),
            outbound_by_key: BTreeMap::new(),
            next_pi: 0,
            pubrel_pending: BTreeSet::new(),
            awaiting_pong: VecDeque::new(),
            denied_pub: BTreeSet::new(),
            denied_sub: BTreeSet::new(),
            suback_saved: false,
            session_present: false,
            streams_pending: 0,
        }
    }

    /// The client identifier, once CONNECT came.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// MQTT bytes from the device.
    pub fn handle_received(&mut self, now: Instant, bytes: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        self.decoder.extend(bytes);
        loop {
            match self.decoder.next_packet() {
                Ok(Some(p)) => {
                    if let Some(ka) = self.keep_alive {
                        self.deadline = Some(now + ka);
                    }
                    self.queued_bytes += queued_size(&p);
                    if self.queued.len() >= MAX_QUEUED_PACKETS || self.queued_bytes > MAX_QUEUED_BYTES {
                        return self.fail(CloseReason::SlowConsumerPendingBytes);
                    }
                    self.queued.push_back(p);
                }
                Ok(None) => break,
                Err(packet::Error::Refused { code, .. }) => {
                    packet::connack(&mut self.to_client, false, code);
                    return self.fail(CloseReason::ProtocolViolation);
                }
                Err(packet::Error::MaxPayload) => return self.fail(CloseReason::MaxPayloadExceeded),
                Err(_) => return self.fail(CloseReason::ProtocolViolation),
            }
        }
        self.run_queue(now);
        if self.requests.len() > MAX_OPEN_REQUESTS
            || self.inbound.len() > MAX_OPEN_REQUESTS
            || self.awaiting_pong.len() > MAX_AWAITING
            || self.pubrel_pending.len() > MAX_AWAITING
        {
            self.fail(CloseReason::SlowConsumerPendingBytes);
        }
    }

    /// NATS bytes the core wrote to this connection's outbox.
    pub fn handle_nats(&mut self, now: Instant, bytes: &[u8]) {
        self.reader.extend(bytes);
        while let Some(event) = self.reader.next_event() {
            if self.phase == Phase::Closed {
                return;
            }
            match event {
                Event::Ping => self.to_server.extend_from_slice(b"PONG\r\n"),
                Event::Pong => {
                    if self.phase == Phase::Authorizing {
                        self.create_streams();
                    } else if let Some(work) = self.awaiting_pong.pop_front() {
                        self.pong(work);
                    }
                }
                Event::Err(text) => {
                    if self.phase == Phase::Authorizing && text.starts_with("Authorization Violation") {
                        packet::connack(&mut self.to_client, false, rc::NOT_AUTHORIZED);
                        self.fail(CloseReason::AuthenticationViolation);
                    } else if let Some((what, subject)) = permission_violation(&text) {
                        let denied = if what == "Publish" { &mut self.denied_pub } else { &mut self.denied_sub };
                        if denied.len() < MAX_AWAITING {
                            denied.insert(subject);
                        }
                    }
                }
                Event::Msg(m) if m.sid == REPLY_SID => self.handle_reply(now, m),
                Event::Msg(m) => self.deliver(m),
            }
        }
        self.run_queue(now);
    }

    /// When [`MqttSession::handle_timeout`] has work: the keep-alive deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// The keep-alive ran out: the will is published and the connection closes.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) {
            self.deadline = None;
            self.fail(CloseReason::StaleConnection);
        }
    }

    /// The device went away without DISCONNECT: the will is published.
    pub fn handle_lost(&mut self) {
        self.fail(CloseReason::ClientClosed);
    }

    /// MQTT bytes for the device.
    pub fn take_to_client(&mut self) -> Option<Bytes> {
        (!self.to_client.is_empty()).then(|| self.to_client.split().freeze())
    }

    /// NATS bytes for the core's session of this connection.
    pub fn take_to_server(&mut self) -> Option<Bytes> {
        (!self.to_server.is_empty()).then(|| self.to_server.split().freeze())
    }

    /// Set once the connection must close (after its bytes are written).
    pub fn closed(&self) -> Option<CloseReason> {
        self.close
    }

    /// Closes: publishes the will (unless DISCONNECT cleared it).
    fn fail(&mut self, reason: CloseReason) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.phase == Phase::Connected {
            if let Some(will) = self.connect.as_mut().and_then(|c| c.will.take()) {
                let p = Publish { topic: will.topic, pi: 0, qos: will.qos, retain: will.retain, dup: false, payload: will.message };
                if let Ok(subject) = topic::topic_to_subject(&p.topic) {
                    // No PONG will come: the core checks the stores against
                    // the device's permissions (`ClientPermissions::for_mqtt`).
                    if !internal(&subject) {
                        self.publish_nats(&subject, &p, None);
                        self.store(&subject, &p, None);
                    }
                }
            }
        }
        self.phase = Phase::Closed;
        self.close = Some(reason);
        self.queued.clear();
        self.queued_bytes = 0;
    }

    fn run_queue(&mut self, now: Instant) {
        while self.blocking == 0 && self.phase != Phase::Closed {
            if matches!(self.phase, Phase::Authorizing | Phase::Streams | Phase::Loading) {
                return;
            }
            let Some(p) = self.queued.pop_front() else { return };
            self.queued_bytes -= queued_size(&p);
            self.handle_packet(now, p);
        }
    }

    fn handle_packet(&mut self, now: Instant, p: Packet) {
        match p {
            Packet::Connect(c) => self.on_connect(now, c),
            Packet::Publish(p) => self.on_publish(p),
            Packet::PubAck(pi) => self.on_puback(pi),
            Packet::PubRec(pi) => self.on_pubrec(pi),
            Packet::PubComp(pi) => {
                self.pubrel_pending.remove(&pi);
            }
            Packet::PubRel(pi) => self.on_pubrel(pi),
            Packet::Subscribe(pi, filters) => self.on_subscribe(pi, filters),
            Packet::Unsubscribe(pi, filters) => self.on_unsubscribe(pi, &filters),
            Packet::PingReq => packet::pingresp(&mut self.to_client),
            Packet::Disconnect => {
                if let Some(c) = self.connect.as_mut() {
                    c.will = None;
                }
                self.fail(CloseReason::ClientClosed);
            }
        }
    }

    fn on_connect(&mut self, now: Instant, mut c: Connect) {
        if c.client_id.is_empty() {
            c.client_id = random_token(&mut self.rng, 22);
        }
        if let Some(w) = &c.will {
            if topic::topic_to_subject(&w.topic).is_err() {
                return self.fail(CloseReason::ProtocolViolation);
            }
        }
        self.client_id.clone_from(&c.client_id);
        self.id_hash = id_hash(&c.client_id);
        if c.keep_alive_secs > 0 {
            let ka = Duration::from_millis(u64::from(c.keep_alive_secs) * 1500);
            self.keep_alive = Some(ka);
            self.deadline = Some(now + ka);
        }
        let mut connect = json!({
            "verbose": false,
            "pedantic": false,
            "lang": "mqtt",
            "version": "3.1.1",
            "protocol": 1,
            "headers": true,
            "echo": true,
            "name": c.client_id,
        });
        if let Some(user) = &c.username {
            connect["user"] = json!(user);
        }
        if let Some(pass) = &c.password {
            let pass = String::from_utf8_lossy(pass);
            connect["pass"] = json!(pass);
            connect["auth_token"] = json!(pass);
        }
        let _ = write!(self.to_server, "CONNECT {connect}\r\nPING\r\n");
        let _ = write!(self.to_server, "SUB {}.* {REPLY_SID}\r\n", self.reply_prefix);
        self.connect = Some(c);
        self.phase = Phase::Authorizing;
    }

    fn on_publish(&mut self, p: Publish) {
        let subject = match topic::topic_to_subject(&p.topic) {
            Ok(s) => s,
            Err(_) => return self.fail(CloseReason::ProtocolViolation),
        };
        if p.qos == 2 && self.setup.reject_qos2_publish {
            return self.fail(CloseReason::ProtocolViolation);
        }
        match p.qos {
            0 if !p.retain => {
                if !internal(&subject) {
                    self.publish_nats(&subject, &p, None);
                }
            }
            0 => self.publish_checked(subject, p, None),
            1 => {
                let ticket = self.ticket(p.pi, false);
                self.publish_checked(subject, p, Some(ticket));
            }
            _ => {
                // QoS 2, method A, as nats-server: stored once per packet id
                // in `$MQTT_qos2in` (a second store of the id is refused
                // and acknowledged alike), PUBREC once stored; delivered at
                // PUBREL, even by a later connection of the session.
                let retain_flags = 0x4 | u8::from(p.retain);
                let hdr = format!("NATS/1.0\r\nNmqtt-Pub:2{retain_flags:x}\r\nNmqtt-Subject:{subject}\r\n\r\n");
                let reply = self.reply_to(Request::Qos2Stored(p.pi));
                let held = self.qos2_subject(p.pi);
                hpub(&mut self.to_server, &held, Some(&reply), hdr.as_bytes(), &p.payload);
            }
        }
    }

    /// Where a QoS 2 PUBLISH waits for its PUBREL.
    fn qos2_subject(&self, pi: u16) -> String {
        format!("{QOS2IN_PREFIX}{}.{pi}", self.id_hash)
    }

    /// Publishes to NATS, then waits for the core's PONG to learn whether
    /// the device may publish there before storing the message.
    fn publish_checked(&mut self, subject: String, publish: Publish, ticket: Option<u64>) {
        if internal(&subject) {
            // The session's own subjects are not the device's to publish
            // to: dropped, and acknowledged as a denied publish is.
            return self.flush_acks();
        }
        self.publish_nats(&subject, &publish, None);
        self.to_server.extend_from_slice(b"PING\r\n");
        self.awaiting_pong.push_back(AwaitPong::Publish { subject, publish, ticket });
    }

    fn on_pubrel(&mut self, pi: u16) {
        let subject = format!("{}.STREAM.MSG.GET.{QOS2IN_STREAM}", self.setup.js_api);
        let body = json!({"last_by_subj": self.qos2_subject(pi)});
        self.request(&subject, body.to_string().as_bytes(), Request::Qos2Released(pi));
        // PUBCOMPs go in the order of the PUBRELs, after what they release.
        self.blocking += 1;
    }

    /// The message a PUBREL released: published at QoS 2 and removed; the
    /// PUBCOMP follows its stores.
    pub(super) fn qos2_released(&mut self, pi: u16, stored: Option<(u64, Bytes, Bytes)>) {
        self.blocking = self.blocking.saturating_sub(1);
        let ticket = self.ticket(pi, true);
        let Some((seq, headers, payload)) = stored else { return self.flush_acks() };
        let api = format!("{}.STREAM.MSG.DELETE.{QOS2IN_STREAM}", self.setup.js_api);
        let body = json!({"seq": seq, "no_erase": true});
        self.request(&api, body.to_string().as_bytes(), Request::Ignored);
        let subject = nats::header(&headers, "Nmqtt-Subject").map(str::to_owned);
        let flags = nats::header(&headers, "Nmqtt-Pub").and_then(|v| v.get(1..2)).and_then(|f| u8::from_str_radix(f, 16).ok());
        match subject.filter(|s| topic::topic_to_subject(&topic::subject_to_topic(s)).is_ok()) {
            Some(subject) => {
                let topic = topic::subject_to_topic(&subject);
                let retain = flags.is_some_and(|f| f & 1 == 1);
                let p = Publish { topic, pi, qos: 2, retain, dup: false, payload };
                self.publish_checked(subject, p, Some(ticket));
            }
            None => self.flush_acks(),
        }
    }

    /// The PONG to a PING sent after `work`: what the core refused came before it.
    fn pong(&mut self, work: AwaitPong) {
        let denied_pub = std::mem::take(&mut self.denied_pub);
        let denied_sub = std::mem::take(&mut self.denied_sub);
        match work {
            AwaitPong::Publish { subject, publish, ticket } => {
                if !denied_pub.contains(&subject) {
                    self.store(&subject, &publish, ticket);
                }
                self.flush_acks();
            }
            AwaitPong::Subscribe(pi, filters) => {
                self.blocking = self.blocking.saturating_sub(1);
                self.subscribe_checked(pi, filters, &denied_sub);
            }
        }
    }

    fn ticket(&mut self, pi: u16, qos2: bool) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.inbound.push_back(InboundAck { ticket, pi, outstanding: 0, qos2 });
        ticket
    }

    /// Publishes to NATS subscribers (header `Nmqtt-Pub:<qos>`).
    fn publish_nats(&mut self, subject: &str, p: &Publish, reply: Option<&str>) {
        let hdr = format!("NATS/1.0\r\nNmqtt-Pub:{}\r\n\r\n", p.qos);
        hpub(&mut self.to_server, subject, reply, hdr.as_bytes(), &p.payload);
    }

    /// Stores QoS 1 and 2 messages for QoS 1 and 2 subscriptions, and keeps
    /// (or drops) the retained message. A ticket waits for every store it
    /// asked for.
    fn store(&mut self, subject: &str, p: &Publish, ticket: Option<u64>) {
        let hdr = format!("NATS/1.0\r\nNmqtt-Pub:{}\r\n\r\n", p.qos);
        let mut stores = 0u8;
        if p.qos > 0 {
            let reply = ticket.map(|t| self.reply_to(Request::Store(t)));
            hpub(&mut self.to_server, &format!("{MSGS_PREFIX}{subject}"), reply.as_deref(), hdr.as_bytes(), &p.payload);
            stores += u8::from(reply.is_some());
        }
        if p.retain {
            let reply = ticket.map(|t| self.reply_to(Request::Store(t)));
            stores += u8::from(reply.is_some());
            if p.payload.is_empty() {
                let api = format!("{}.STREAM.PURGE.{RMSGS_STREAM}", self.setup.js_api);
                let body = json!({"filter": format!("{RMSGS_PREFIX}{subject}")}).to_string();
                let _ = write!(self.to_server, "PUB {api} {} {}\r\n{body}\r\n", reply.as_deref().unwrap_or(""), body.len());
            } else {
                let flags = u8::from(p.retain) | (p.qos << 1);
                let hdr = format!(
                    "NATS/1.0\r\nNmqtt-RTopic:{}\r\nNmqtt-RFlags:{flags:x}\r\nNmqtt-ROrigin:{}\r\n\r\n",
                    p.topic, self.setup.server_name
                );
                hpub(&mut self.to_server, &format!("{RMSGS_PREFIX}{subject}"), reply.as_deref(), hdr.as_bytes(), &p.payload);
            }
        }
        if let Some(t) = ticket {
            if let Some(a) = self.inbound.iter_mut().find(|a| a.ticket == t) {
                a.outstanding = stores;
            }
        }
    }

    /// Sends PUBACKs (PUBCOMPs) in the order their PUBLISHes came, each
    /// once every store it waited for is acknowledged.
    fn flush_acks(&mut self) {
        while self.inbound.front().is_some_and(|a| a.outstanding == 0 && !self.ticket_waits(a.ticket)) {
            let Some(a) = self.inbound.pop_front() else { break };
            if a.qos2 {
                packet::pubcomp(&mut self.to_client, a.pi);
            } else {
                packet::puback(&mut self.to_client, a.pi);
            }
        }
    }

    /// Whether a ticket's publish still waits for the core's PONG.
    fn ticket_waits(&self, ticket: u64) -> bool {
        self.awaiting_pong.iter().any(|w| matches!(w, AwaitPong::Publish { ticket: Some(t), .. } if *t == ticket))
    }

    fn on_puback(&mut self, pi: u16) {
        let Some(out) = self.outbound.remove(&pi) else { return };
        if let Some(key) = out.key {
            self.outbound_by_key.remove(&key);
        }
        if let Some(ack) = out.ack {
            let _ = write!(self.to_server, "PUB {ack} 0\r\n\r\n");
        }
    }

    /// A QoS 2 delivery received: acknowledged to JetStream as a PUBACK
    /// is, then PUBREL, and the packet id stays in use until PUBCOMP.
    fn on_pubrec(&mut self, pi: u16) {
        if self.outbound.contains_key(&pi) {
            self.on_puback(pi);
            self.pubrel_pending.insert(pi);
        }
        packet::pubrel(&mut self.to_client, pi);
    }

    fn on_subscribe(&mut self, pi: u16, filters: Vec<(String, u8)>) {
        let mut checked = Vec::with_capacity(filters.len());
        for (filter, qos) in filters {
            // nats-server refuses filters on its internal subjects.
            let subject = topic::filter_to_subject(&filter).ok().filter(|s| !s.starts_with("$MQTT."));
            let mut qos = qos.min(2);
            if qos == 2 && self.setup.downgrade_qos2_subscribe {
                qos = 1;
            }
            if let Some(subject) = &subject {
                if !self.subs.contains_key(subject) {
                    let sids = self.subscribe_plain(subject);
                    self.subs.insert(subject.clone(), Sub { qos: 0, sids, consumer: None });
                }
            }
            checked.push((subject, qos));
        }
        self.to_server.extend_from_slice(b"PING\r\n");
        self.awaiting_pong.push_back(AwaitPong::Subscribe(pi, checked));
        self.blocking += 1;
    }

    /// The SUBs of a SUBSCRIBE went through the core: a filter it refused
    /// gets 0x80 in the SUBACK, as in nats-server; the others their QoS,
    /// with a consumer at QoS 1 and 2.
    fn subscribe_checked(&mut self, pi: u16, filters: Vec<(Option<String>, u8)>, denied: &BTreeSet<String>) {
        let mut codes = Vec::with_capacity(filters.len());
        let mut granted = Vec::new();
        for (subject, qos) in filters {
            let Some(subject) = subject else {
                codes.push(0x80);
                continue;
            };
            let refused = topic::level_up(&subject).is_some_and(|parent| denied.contains(parent)) || denied.contains(&subject);
            if refused {
                codes.push(0x80);
                if self.subs.get(&subject).is_some_and(|s| s.qos == 0 && s.consumer.is_none()) {
                    if let Some(sub) = self.subs.remove(&subject) {
                        for sid in sub.sids {
                            self.remove_sid(sid);
                        }
                    }
                }
                continue;
            }
            codes.push(qos);
            granted.push((subject.clone(), qos));
            let existing = self.subs.get(&subject).map(|s| (s.qos, s.consumer.is_some()));
            if existing == Some((qos, qos > 0)) {
                continue;
            }
            self.drop_consumer(&subject);
            if let Some(sub) = self.subs.get_mut(&subject) {
                sub.qos = qos;
            }
            if qos > 0 {
                self.add_consumer(&subject);
            }
        }
        self.suback = Some((pi, codes, granted));
        if self.blocking == 0 {
            self.finish_subscribe();
        }
    }

    fn finish_subscribe(&mut self) {
        if self.suback.is_none() {
            return;
        }
        // A persistent session's SUBACK waits until the session naming the
        // subscription is stored: a crash after it must not lose it.
        if self.connect.as_ref().is_some_and(|c| !c.clean) && !self.suback_saved {
            self.suback_saved = true;
            self.blocking += 1;
            return self.save_session_for(Request::SubscribeSaved);
        }
        self.suback_saved = false;
        let Some((pi, codes, granted)) = self.suback.take() else { return };
        packet::suback(&mut self.to_client, pi, &codes);
        for (subject, qos) in granted {
            if self.subs.contains_key(&subject) {
                self.fetch_retained(&subject, qos);
            }
        }
    }

    fn on_unsubscribe(&mut self, pi: u16, filters: &[String]) {
        for filter in filters {
            let Ok(subject) = topic::filter_to_subject(filter) else { continue };
            self.drop_consumer(&subject);
            if let Some(sub) = self.subs.remove(&subject) {
                for sid in sub.sids {
                    self.remove_sid(sid);
                }
            }
        }
        packet::unsuback(&mut self.to_client, pi);
        if self.connect.as_ref().is_some_and(|c| !c.clean) {
            self.save_session();
        }
    }

    /// SUBs a subject (and its parent for `a/#`): the sids.
    fn subscribe_plain(&mut self, subject: &str) -> Vec<u64> {
        let kind = SidKind::Plain { subject: subject.to_owned(), reserved: reserved(subject) };
        let mut sids = vec![self.add_sid(subject, kind.clone())];
        if let Some(parent) = topic::level_up(subject) {
            let parent = parent.to_owned();
            sids.push(self.add_sid(&parent, kind));
        }
        sids
    }

    fn add_sid(&mut self, subject: &str, kind: SidKind) -> u64 {
        let sid = self.next_sid;
        self.next_sid += 1;
        let _ = write!(self.to_server, "SUB {subject} {sid}\r\n");
        self.sids.insert(sid, kind);
        sid
    }

    fn remove_sid(&mut self, sid: u64) {
        if self.sids.remove(&sid).is_some() {
            let _ = write!(self.to_server, "UNSUB {sid}\r\n");
        }
    }

    /// A message for one of the session's subscriptions becomes a PUBLISH.
    fn deliver(&mut self, m: Msg) {
        let Some(kind) = self.sids.get_mut(&m.sid) else { return };
        let published_qos = nats::header(&m.headers, "Nmqtt-Pub").and_then(|v| v.bytes().next()).map(|b| b.saturating_sub(b'0'));
        match kind {
            SidKind::Plain { subject, reserved } => {
                if *reserved && m.subject.starts_with('$') {
                    return;
                }
                let sub_qos = self.subs.get(subject.as_str()).map_or(0, |s| s.qos);
                if sub_qos > 0 && published_qos.unwrap_or(0) > 0 {
                    return; // the consumer delivers it
                }
                let topic = topic::subject_to_topic(&m.subject);
                self.send_publish(topic, 0, false, m.payload, None);
            }
            SidKind::Consumer { subject, reserved } => {
                let Some(stored) = m.subject.strip_prefix(MSGS_PREFIX) else { return };
                let ack = m.reply.clone();
                if *reserved && stored.starts_with('$') {
                    if let Some(ack) = ack {
                        let _ = write!(self.to_server, "PUB {ack} 0\r\n\r\n");
                    }
                    return;
                }
                let sub_qos = self.subs.get(subject.as_str()).map_or(0, |s| s.qos);
                let qos = published_qos.unwrap_or(1).min(sub_qos).clamp(1, 2);
                let key = ack.as_deref().and_then(ack_key);
                let topic = topic::subject_to_topic(stored);
                self.send_publish(topic, qos, false, m.payload, Some((ack, key)));
            }
            SidKind::Takeover => {
                // nats-server drops the will of the connection it replaces.
                if let Some(c) = self.connect.as_mut() {
                    c.will = None;
                }
                self.fail(CloseReason::DuplicateClientId);
            }
            SidKind::Retained { qos, reserved, got, .. } => {
                *got += 1;
                let (qos, reserved) = (*qos, *reserved);
                let topic = nats::header(&m.headers, "Nmqtt-RTopic").map(str::to_owned);
                let flags = nats::header(&m.headers, "Nmqtt-RFlags").and_then(|f| u8::from_str_radix(f, 16).ok()).unwrap_or(0);
                if let Some(topic) = topic {
                    if !(reserved && topic.starts_with('$')) {
                        let qos = qos.min((flags >> 1) & 3).min(2);
                        self.send_publish(topic, qos, true, m.payload, Some((None, None)));
                    }
                }
                self.retained_progress(m.sid);
            }
        }
    }

    /// Queues a PUBLISH; at QoS 1 it gets a packet id (the same one again
    /// for a redelivery, marked DUP) unless every id is in use.
    fn send_publish(&mut self, topic: String, qos: u8, retain: bool, payload: Bytes, track: Option<Tracking>) {
        let mut pi = 0;
        let mut dup = false;
        if qos > 0 {
            let (ack, key) = track.unwrap_or((None, None));
            if let Some(&known) = key.as_ref().and_then(|k| self.outbound_by_key.get(k)) {
                pi = known;
                dup = true;
                if let Some(o) = self.outbound.get_mut(&pi) {
                    o.ack = ack;
                }
            } else {
                let Some(free) = self.free_pi() else { return };
                pi = free;
                if let Some(k) = &key {
                    self.outbound_by_key.insert(k.clone(), pi);
                }
                self.outbound.insert(pi, Outbound { ack, key });
            }
        }
        packet::publish_packet(&mut self.to_client, &Publish { topic, pi, qos, retain, dup, payload });
    }

    fn free_pi(&mut self) -> Option<u16> {
        if self.outbound.len() + self.pubrel_pending.len() >= usize::from(u16::MAX) {
            return None;
        }
        loop {
            self.next_pi = self.next_pi.wrapping_add(1);
            if self.next_pi != 0 && !self.outbound.contains_key(&self.next_pi) && !self.pubrel_pending.contains(&self.next_pi) {
                return Some(self.next_pi);
            }
        }
    }
}

/// What a packet read ahead counts against [`MAX_QUEUED_BYTES`].
fn queued_size(p: &Packet) -> usize {
    match p {
        Packet::Publish(p) => p.payload.len() + p.topic.len(),
        Packet::Subscribe(_, filters) => filters.iter().map(|(f, _)| f.len() + 1).sum(),
        Packet::Unsubscribe(_, filters) => filters.iter().map(String::len).sum(),
        Packet::Connect(c) => c.client_id.len() + c.will.as_ref().map_or(0, |w| w.message.len() + w.topic.len()),
        _ => 2,
    }
}

/// Subjects the session uses on the device's behalf: a device may not
/// publish there (see `ClientPermissions::for_mqtt`).
fn internal(subject: &str) -> bool {
    subject.starts_with("$MQTT.") || subject.starts_with("$JS.")
}

/// The verb and subject of an `-ERR 'Permissions Violation for <verb> to "<subject>"…'`.
fn permission_violation(text: &str) -> Option<(&str, String)> {
    let rest = text.strip_prefix("Permissions Violation for ")?;
    let (what, rest) = rest.split_once(" to \"")?;
    let (subject, _) = rest.split_once('"')?;
    Some((what, subject.to_owned()))
}

/// Whether an MQTT filter starts with a wildcard level (see
/// [`topic::filter_starts_with_wildcard`]), from its NATS subject.
fn reserved(subject: &str) -> bool {
    subject.starts_with('*') || subject.starts_with('>')
}

/// The consumer and stream sequence of a `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.…` subject.
fn ack_key(ack: &str) -> Option<(String, u64)> {
    let tokens: Vec<&str> = ack.split('.').collect();
    if tokens.len() < 9 || tokens[0] != "$JS" || tokens[1] != "ACK" {
        return None;
    }
    let base = tokens.len() - 9;
    Some((tokens[3 + base].to_owned(), tokens[5 + base].parse().ok()?))
}

/// Writes an HPUB.
fn hpub(out: &mut BytesMut, subject: &str, reply: Option<&str>, headers: &[u8], payload: &[u8]) {
    let total = headers.len() + payload.len();
    match reply {
        Some(r) => {
            let _ = write!(out, "HPUB {subject} {r} {} {total}\r\n", headers.len());
        }
        None => {
            let _ = write!(out, "HPUB {subject} {} {total}\r\n", headers.len());
        }
    }
    out.reserve(total + 2);
    out.put_slice(headers);
    out.put_slice(payload);
    out.put_slice(b"\r\n");
}

/// A random token of letters and digits.
fn random_token(rng: &mut ChaCha8Rng, len: usize) -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len).map(|_| ALPHABET[(rng.next_u32() % 62) as usize] as char).collect()
}

/// nats-server's hash of a client id, the token of its session subject:
/// SHA-256, base64url without padding, the first 8 characters.
pub fn id_hash(client_id: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(client_id.as_bytes());
    let mut s = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    s.truncate(8);
    s
}

#[cfg(test)]
mod tests;
