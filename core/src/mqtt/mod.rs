//! MQTT 3.1.1, on top of the NATS core and JetStream, as nats-server maps it.
//!
//! # Design
//!
//! An MQTT connection is a client of the core like any other. The runtime
//! accepts it on the `mqtt {}` listener and opens an ordinary core
//! connection for it (shown as `mqtt` in `/connz`); an [`MqttSession`]
//! stands between the device's socket and that connection, and speaks the
//! NATS protocol to the core on the device's behalf:
//!
//! ```text
//! device ──MQTT──▶ MqttSession ──NATS (CONNECT, SUB, HPUB…)──▶ core Session
//! device ◀─MQTT─── MqttSession ◀─NATS (MSG, HMSG, PING…)────── core Outbox
//! ```
//!
//! So accounts, users, passwords, permissions, limits and monitoring are the
//! core's, unchanged: an MQTT CONNECT becomes a NATS `CONNECT` with the
//! user name and password (the password doubling as a token, as in
//! nats-server), and the PONG to the PING after it is the CONNACK's cue; an
//! `Authorization Violation` becomes CONNACK return code 5.
//!
//! The session is sans-IO like the rest of the core: bytes from the device
//! ([`MqttSession::handle_received`]), bytes from the core
//! ([`MqttSession::handle_nats`]), the keep-alive timer
//! ([`MqttSession::poll_timeout`] / [`MqttSession::handle_timeout`]), and
//! two byte queues to drain, one per direction. Randomness (delivery
//! subjects, generated client ids) comes from a seed the runtime passes in.
//! The packet codec ([`packet`]) and the topic mapping ([`topic`]) are pure
//! functions with their own tests and a fuzz target.
//!
//! # The mapping, as nats-server does it
//!
//! - Topics: `/` ↔ `.`, `+` ↔ `*`, `#` ↔ `>` (see [`topic`]); a filter
//!   `a/#` also subscribes to `a`. Wildcard-first filters skip subjects
//!   that start with `$`.
//! - PUBLISH QoS 0 is an `HPUB` on the subject with the header
//!   `Nmqtt-Pub:0`, so NATS subscribers receive MQTT messages and MQTT
//!   subscriptions receive NATS messages.
//! - PUBLISH QoS 1 is the same `HPUB` (header `Nmqtt-Pub:1`), and the
//!   message is also stored in the stream `$MQTT_msgs` under
//!   `$MQTT.msgs.<subject>` (interest retention); the PUBACK waits for
//!   JetStream's acknowledgement, so it means the message is on disk.
//! - A QoS 1 subscription is a JetStream push consumer of `$MQTT_msgs`
//!   filtered on `$MQTT.msgs.<subject>`, delivering to `$MQTT.sub.<id>`
//!   with explicit acks, `ack_wait` and `max_ack_pending` from the
//!   `mqtt {}` block. Each delivery gets a packet id; JetStream redelivers
//!   until the device's PUBACK, which the session turns into the JetStream
//!   ack; a redelivery reuses the packet id with DUP set. The plain NATS
//!   subscription of a QoS 1 subscription skips messages published at
//!   QoS 1 or more (the consumer delivers them).
//! - Retained messages live in `$MQTT_rmsgs` (one per subject) under
//!   `$MQTT.rmsgs.<subject>`, with the topic and flags in `Nmqtt-RTopic`
//!   and `Nmqtt-RFlags`; an empty retained payload purges the subject.
//!   A new subscription gets them from an ephemeral consumer delivering the
//!   last message per subject, deleted once its `num_pending` arrived.
//! - Sessions: a persistent session (clean session 0) is a JSON record in
//!   `$MQTT_sess` under `$MQTT.sess.<hash of the client id>` with its
//!   subscriptions and its consumers' configs (durable consumers named
//!   `<hash>_<id>`); on reconnect it is loaded, its subscriptions and
//!   consumers restored and CONNACK says the session was present. A clean
//!   session deletes what was stored and uses ephemeral consumers, which
//!   JetStream removes once nobody listens.
//! - Will: published (and stored, retained) as a PUBLISH would be when the
//!   connection ends without DISCONNECT, the keep-alive (1.5 × the
//!   client's) included.
//! - A second connection with a client id in use closes the first
//!   (`Duplicate Client ID`) without its will, as nats-server does.
//! - QoS 2 from devices (method A, as nats-server): stored once per packet
//!   id in `$MQTT_qos2in` under `$MQTT.qos2.in.<hash>.<packet id>` (a
//!   resent PUBLISH finds it stored), PUBREC once stored; a PUBREL, on this
//!   connection or a later one of the session, reads it back, deletes it and
//!   publishes it at QoS 2, then PUBCOMP. Subscriptions are granted QoS 2
//!   (QoS 1 with `downgrade_qos2_subscribe`); a QoS 2 delivery's PUBREC
//!   acknowledges it to JetStream and is answered with PUBREL, its packet id
//!   kept until PUBCOMP (in memory: nats-server also keeps pending PUBRELs
//!   in a `$MQTT_out` stream across reconnects, natrix does not yet).
//!   `reject_qos2_publish` closes a connection that publishes at QoS 2.
//! - Permissions: the device's user's, as in nats-server. The core lets an
//!   MQTT connection's session use its `$MQTT.` and `$JS.` subjects
//!   (nats-server uses an internal client for them) and checks a store
//!   under `$MQTT.msgs.<subject>` as a publish to `<subject>`
//!   (`ClientPermissions::for_mqtt`); the session keeps the device off those
//!   subjects (a filter on `$MQTT.` gets 0x80, as in nats-server; a publish
//!   to `$MQTT.` or `$JS.` is dropped). A PING after the SUBs of a SUBSCRIBE,
//!   or after a QoS 1, QoS 2 or retained PUBLISH, tells the session through
//!   the `-ERR`s before its PONG what the core refused: a refused filter
//!   gets 0x80 in the SUBACK, a refused publish is not stored (and still
//!   acknowledged, as nats-server acknowledges it).
//!
//! JetStream's API is reached the way any client reaches it, with replies
//! on `$MQTT.JSA.<token>.<n>`.

pub mod nats;
pub mod packet;
mod session;
pub mod topic;

pub use session::{id_hash, MqttSession, Setup};

/// The stream of QoS 1 messages.
pub const MSGS_STREAM: &str = "$MQTT_msgs";
/// The subject prefix of `$MQTT_msgs`.
pub const MSGS_PREFIX: &str = "$MQTT.msgs.";
/// The stream of retained messages.
pub const RMSGS_STREAM: &str = "$MQTT_rmsgs";
/// The subject prefix of `$MQTT_rmsgs`.
pub const RMSGS_PREFIX: &str = "$MQTT.rmsgs.";
/// The stream of persistent sessions.
pub const SESS_STREAM: &str = "$MQTT_sess";
/// The subject prefix of `$MQTT_sess`.
pub const SESS_PREFIX: &str = "$MQTT.sess.";
/// The stream of QoS 2 messages waiting for their PUBREL.
pub const QOS2IN_STREAM: &str = "$MQTT_qos2in";
/// The subject prefix of `$MQTT_qos2in`: `<prefix><hash of the client id>.<packet id>`.
pub const QOS2IN_PREFIX: &str = "$MQTT.qos2.in.";
/// The prefix of QoS 1 delivery subjects.
pub const SUB_PREFIX: &str = "$MQTT.sub.";
/// natrix's own: a session listens on `<prefix><hash of its client id>`,
/// and a new connection with that client id publishes there to close it.
pub const TAKEOVER_PREFIX: &str = "$MQTT.takeover.";
