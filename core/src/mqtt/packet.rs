//! The MQTT 3.1.1 packet codec: bytes in any split to [`Packet`]s, and the
//! packets the server sends back to bytes. Limits and protocol errors are
//! nats-server's: before CONNECT a packet may not exceed `max_payload`,
//! fixed-header flags and remaining lengths are checked per packet type,
//! packet identifiers may not be 0, and a CONNECT the server refuses with a
//! return code is an [`Error::Refused`] carrying the CONNACK code.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// CONNACK return codes (MQTT 3.1.1 §3.2.2.3).
pub mod rc {
    /// Connection accepted.
    pub const ACCEPTED: u8 = 0;
    /// Unacceptable protocol version.
    pub const UNACCEPTABLE_PROTOCOL_VERSION: u8 = 1;
    /// Identifier rejected.
    pub const IDENTIFIER_REJECTED: u8 = 2;
    /// Server unavailable.
    pub const SERVER_UNAVAILABLE: u8 = 3;
    /// Bad user name or password.
    pub const BAD_USER_OR_PASSWORD: u8 = 4;
    /// Not authorized.
    pub const NOT_AUTHORIZED: u8 = 5;
}

const CONNECT: u8 = 0x10;
const CONNACK: u8 = 0x20;
const PUBLISH: u8 = 0x30;
const PUBACK: u8 = 0x40;
const PUBREC: u8 = 0x50;
const PUBREL: u8 = 0x60;
const PUBCOMP: u8 = 0x70;
const SUBSCRIBE: u8 = 0x80;
const SUBACK: u8 = 0x90;
const UNSUBSCRIBE: u8 = 0xa0;
const UNSUBACK: u8 = 0xb0;
const PINGREQ: u8 = 0xc0;
const PINGRESP: u8 = 0xd0;
const DISCONNECT: u8 = 0xe0;

/// The largest remaining length the variable-length encoding can carry.
pub const MAX_REMAINING_BYTES: usize = 0x0FFF_FFFF;

/// A will message, as CONNECT carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Will {
    /// The topic (never empty).
    pub topic: String,
    /// The payload.
    pub message: Bytes,
    /// 0, 1 or 2.
    pub qos: u8,
    /// Whether the will is retained.
    pub retain: bool,
}

/// A CONNECT packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connect {
    /// The client identifier; empty only with `clean`.
    pub client_id: String,
    /// The clean-session flag.
    pub clean: bool,
    /// Keep-alive in seconds; 0 is none.
    pub keep_alive_secs: u16,
    /// The will, if any.
    pub will: Option<Will>,
    /// The user name, if any (never empty).
    pub username: Option<String>,
    /// The password, if any.
    pub password: Option<Bytes>,
}

/// A PUBLISH packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// The topic name (no wildcards are checked here: see `topic`).
    pub topic: String,
    /// The packet identifier; 0 at QoS 0.
    pub pi: u16,
    /// 0, 1 or 2.
    pub qos: u8,
    /// RETAIN.
    pub retain: bool,
    /// DUP.
    pub dup: bool,
    /// The application message.
    pub payload: Bytes,
}

/// A packet a client sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// CONNECT.
    Connect(Connect),
    /// PUBLISH.
    Publish(Publish),
    /// PUBACK with its packet identifier.
    PubAck(u16),
    /// PUBREC.
    PubRec(u16),
    /// PUBREL.
    PubRel(u16),
    /// PUBCOMP.
    PubComp(u16),
    /// SUBSCRIBE: the packet identifier and (filter, requested QoS) pairs.
    Subscribe(u16, Vec<(String, u8)>),
    /// UNSUBSCRIBE: the packet identifier and filters.
    Unsubscribe(u16, Vec<String>),
    /// PINGREQ.
    PingReq,
    /// DISCONNECT.
    Disconnect,
}

/// Why the byte stream cannot go on; the connection closes. The texts are
/// nats-server's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A packet other than CONNECT came first.
    #[error("the first packet should be a CONNECT (16), got {0}")]
    NotConnect(u8),
    /// An HTTP request on the MQTT port.
    #[error("MQTT clients over websocket must connect to the Websocket port, not the MQTT port")]
    WebsocketOnMqttPort,
    /// A second CONNECT.
    #[error("received a second CONNECT packet")]
    SecondConnect,
    /// Flags of the fixed header that the packet type does not allow.
    #[error("invalid fixed header flags {flags:x} for packet type {packet:x}")]
    FixedHeaderFlags {
        /// The packet type (high nibble).
        packet: u8,
        /// The flags (low nibble).
        flags: u8,
    },
    /// A remaining length the packet type does not allow.
    #[error("invalid remaining length {len} for packet type {packet:x}")]
    RemainingLength {
        /// The packet type.
        packet: u8,
        /// The length.
        len: usize,
    },
    /// A remaining length of more than four bytes.
    #[error("malformed variable int")]
    MalformedVarInt,
    /// A packet over the limit.
    #[error("maximum payload exceeded")]
    MaxPayload,
    /// A field ran past the end of its packet.
    #[error("error reading {0}: unexpected EOF")]
    Truncated(&'static str),
    /// A packet type MQTT 3.1.1 clients do not send.
    #[error("received unknown packet type {0}")]
    UnknownPacket(u8),
    /// Packet identifier 0.
    #[error("packet identifier cannot be 0")]
    ZeroPacketId,
    /// A string that is not UTF-8 or holds a NUL.
    #[error("invalid {what} for {field}")]
    BadString {
        /// The field.
        field: &'static str,
        /// `utf8` or `null character`.
        what: &'static str,
    },
    /// A protocol name other than MQTT.
    #[error("expected connect packet with protocol name \"MQTT\", got {0:?}")]
    ProtocolName(String),
    /// The reserved CONNECT flag.
    #[error("connect flags reserved bit not set to 0")]
    ConnFlagReserved,
    /// Will QoS or retain without the will flag, or will QoS 3.
    #[error("invalid Will flags")]
    WillFlags,
    /// A password without a user name.
    #[error("password flag set but username flag is not")]
    PasswordWithoutUser,
    /// An empty will topic.
    #[error("empty Will topic not allowed")]
    EmptyWillTopic,
    /// CONNECT refused with a CONNACK return code.
    #[error("{reason}")]
    Refused {
        /// The CONNACK return code.
        code: u8,
        /// Why.
        reason: &'static str,
    },
    /// A PUBLISH with QoS 3.
    #[error("QoS=3 is invalid in MQTT")]
    BadQos,
    /// A PUBLISH with an empty topic.
    #[error("topic cannot be empty")]
    EmptyTopic,
    /// An empty topic filter.
    #[error("topic filter cannot be empty")]
    EmptyFilter,
    /// A SUBSCRIBE QoS over 2.
    #[error("subscribe QoS value must be 0, 1 or 2, got {0}")]
    BadSubscribeQos(u8),
    /// SUBSCRIBE or UNSUBSCRIBE without filters.
    #[error("{0}subscribe protocol must contain at least 1 topic filter")]
    NoFilters(&'static str),
}

/// Reads packets from a byte stream split anywhere.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    connected: bool,
    max_connect_bytes: usize,
    max_packet_bytes: usize,
}

impl Decoder {
    /// A decoder for a new connection: until CONNECT a packet may be at most
    /// `max_connect_bytes` (nats-server: `max_payload`), then at most
    /// `max_packet_bytes`.
    pub fn new(max_connect_bytes: usize, max_packet_bytes: usize) -> Self {
        Decoder { buf: BytesMut::new(), connected: false, max_connect_bytes, max_packet_bytes }
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole packet, `None` until one is complete. After an error
    /// the stream is unusable.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, Error> {
        let Some(&first) = self.buf.first() else { return Ok(None) };
        let (packet, flags) = (first & 0xf0, first & 0x0f);
        if !self.connected && packet != CONNECT {
            if self.buf.starts_with(b"GET ") {
                return Err(Error::WebsocketOnMqttPort);
            }
            return Err(Error::NotConnect(packet >> 4));
        }
        check_flags(packet, flags)?;
        let Some((len, header)) = remaining_length(&self.buf[1..])? else { return Ok(None) };
        let limit = if self.connected { self.max_packet_bytes } else { self.max_connect_bytes };
        if 1 + header + len > limit {
            return Err(Error::MaxPayload);
        }
        check_length(packet, len)?;
        if self.buf.len() < 1 + header + len {
            return Ok(None);
        }
        self.buf.advance(1 + header);
        let body = self.buf.split_to(len).freeze();
        let parsed = parse(packet, flags, body)?;
        if let Packet::Connect(_) = parsed {
            if self.connected {
                return Err(Error::SecondConnect);
            }
            self.connected = true;
        }
        Ok(Some(parsed))
    }
}

fn check_flags(packet: u8, flags: u8) -> Result<(), Error> {
    let expected = match packet {
        CONNECT | PUBACK | PUBREC | PUBCOMP | PINGREQ | DISCONNECT => 0,
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => 2,
        _ => return Ok(()),
    };
    if flags == expected {
        Ok(())
    } else {
        Err(Error::FixedHeaderFlags { packet, flags })
    }
}

fn check_length(packet: u8, len: usize) -> Result<(), Error> {
    let expected = match packet {
        PUBACK | PUBREC | PUBREL | PUBCOMP => 2,
        PINGREQ | DISCONNECT => 0,
        _ => return Ok(()),
    };
    if len == expected {
        Ok(())
    } else {
        Err(Error::RemainingLength { packet, len })
    }
}

/// The remaining length and the bytes it took, `None` while incomplete.
fn remaining_length(bytes: &[u8]) -> Result<Option<(usize, usize)>, Error> {
    let mut value = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        if i == 4 {
            return Err(Error::MalformedVarInt);
        }
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= 4 {
        return Err(Error::MalformedVarInt);
    }
    Ok(None)
}

/// A cursor over one packet's body.
struct Reader(Bytes);

impl Reader {
    fn byte(&mut self, field: &'static str) -> Result<u8, Error> {
        if self.0.is_empty() {
            return Err(Error::Truncated(field));
        }
        Ok(self.0.get_u8())
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, Error> {
        if self.0.len() < 2 {
            return Err(Error::Truncated(field));
        }
        Ok(self.0.get_u16())
    }

    fn bytes(&mut self, field: &'static str) -> Result<Bytes, Error> {
        let len = usize::from(self.u16(field)?);
        if self.0.len() < len {
            return Err(Error::Truncated(field));
        }
        Ok(self.0.split_to(len))
    }

    fn string(&mut self, field: &'static str) -> Result<String, Error> {
        let raw = self.bytes(field)?;
        let s = String::from_utf8(raw.to_vec()).map_err(|_| Error::BadString { field, what: "utf8" })?;
        if s.contains('\0') {
            return Err(Error::BadString { field, what: "null character" });
        }
        Ok(s)
    }

    fn pi(&mut self) -> Result<u16, Error> {
        match self.u16("packet identifier")? {
            0 => Err(Error::ZeroPacketId),
            pi => Ok(pi),
        }
    }
}

fn parse(packet: u8, flags: u8, body: Bytes) -> Result<Packet, Error> {
    let mut r = Reader(body);
    Ok(match packet {
        CONNECT => Packet::Connect(connect(&mut r)?),
        PUBLISH => Packet::Publish(publish(flags, r)?),
        PUBACK => Packet::PubAck(r.pi()?),
        PUBREC => Packet::PubRec(r.pi()?),
        PUBREL => Packet::PubRel(r.pi()?),
        PUBCOMP => Packet::PubComp(r.pi()?),
        SUBSCRIBE => {
            let pi = r.pi()?;
            let mut filters = Vec::new();
            while !r.0.is_empty() {
                let filter = filter(&mut r)?;
                let qos = r.byte("QoS")?;
                if qos > 2 {
                    return Err(Error::BadSubscribeQos(qos));
                }
                filters.push((filter, qos));
            }
            if filters.is_empty() {
                return Err(Error::NoFilters(""));
            }
            Packet::Subscribe(pi, filters)
        }
        UNSUBSCRIBE => {
            let pi = r.pi()?;
            let mut filters = Vec::new();
            while !r.0.is_empty() {
                filters.push(filter(&mut r)?);
            }
            if filters.is_empty() {
                return Err(Error::NoFilters("un"));
            }
            Packet::Unsubscribe(pi, filters)
        }
        PINGREQ => Packet::PingReq,
        DISCONNECT => Packet::Disconnect,
        other => return Err(Error::UnknownPacket(other >> 4)),
    })
}

fn filter(r: &mut Reader) -> Result<String, Error> {
    let f = r.string("topic filter")?;
    if f.is_empty() {
        return Err(Error::EmptyFilter);
    }
    Ok(f)
}

fn connect(r: &mut Reader) -> Result<Connect, Error> {
    let proto = r.bytes("protocol name")?;
    if &proto[..] != b"MQTT" {
        return Err(Error::ProtocolName(String::from_utf8_lossy(&proto).into_owned()));
    }
    if r.byte("protocol level")? != 4 {
        return Err(Error::Refused { code: rc::UNACCEPTABLE_PROTOCOL_VERSION, reason: "unacceptable protocol version" });
    }
    let flags = r.byte("flags")?;
    if flags & 0x01 != 0 {
        return Err(Error::ConnFlagReserved);
    }
    let (has_will, will_qos, will_retain) = (flags & 0x04 != 0, (flags & 0x18) >> 3, flags & 0x20 != 0);
    if (!has_will && (will_qos != 0 || will_retain)) || will_qos == 3 {
        return Err(Error::WillFlags);
    }
    let (has_user, has_password) = (flags & 0x80 != 0, flags & 0x40 != 0);
    if has_password && !has_user {
        return Err(Error::PasswordWithoutUser);
    }
    let clean = flags & 0x02 != 0;
    let keep_alive_secs = r.u16("keep alive")?;
    let client_id = r.string("client ID").map_err(|e| match e {
        Error::BadString { .. } => Error::Refused { code: rc::IDENTIFIER_REJECTED, reason: "invalid client ID" },
        e => e,
    })?;
    if client_id.is_empty() && !clean {
        return Err(Error::Refused {
            code: rc::IDENTIFIER_REJECTED,
            reason: "when client ID is empty, clean session flag must be set to 1",
        });
    }
    if client_id.contains([' ', '\t', '\r', '\n', '\x0c', '.', '*', '>']) {
        return Err(Error::Refused { code: rc::IDENTIFIER_REJECTED, reason: "invalid character in client ID" });
    }
    let will = if has_will {
        let topic = r.string("Will topic")?;
        if topic.is_empty() {
            return Err(Error::EmptyWillTopic);
        }
        let message = r.bytes("Will message")?;
        Some(Will { topic, message, qos: will_qos, retain: will_retain })
    } else {
        None
    };
    let username = if has_user {
        let user = r.string("user name").map_err(|e| match e {
            Error::BadString { .. } => Error::Refused { code: rc::BAD_USER_OR_PASSWORD, reason: "invalid user name" },
            e => e,
        })?;
        if user.is_empty() {
            return Err(Error::Refused { code: rc::BAD_USER_OR_PASSWORD, reason: "empty user name not allowed" });
        }
        Some(user)
    } else {
        None
    };
    let password = if has_password { Some(r.bytes("password")?) } else { None };
    Ok(Connect { client_id, clean, keep_alive_secs, will, username, password })
}

fn publish(flags: u8, mut r: Reader) -> Result<Publish, Error> {
    let qos = (flags & 0x06) >> 1;
    if qos > 2 {
        return Err(Error::BadQos);
    }
    let topic = r.string("topic")?;
    if topic.is_empty() {
        return Err(Error::EmptyTopic);
    }
    let pi = if qos > 0 { r.pi()? } else { 0 };
    Ok(Publish { topic, pi, qos, retain: flags & 0x01 != 0, dup: flags & 0x08 != 0, payload: r.0 })
}

/// Writes a remaining length.
fn put_length(out: &mut BytesMut, mut len: usize) {
    debug_assert!(len <= MAX_REMAINING_BYTES);
    loop {
        let mut b = (len & 0x7f) as u8;
        len >>= 7;
        if len > 0 {
            b |= 0x80;
        }
        out.put_u8(b);
        if len == 0 {
            break;
        }
    }
}

/// CONNACK.
pub fn connack(out: &mut BytesMut, session_present: bool, code: u8) {
    out.put_slice(&[CONNACK, 2, u8::from(session_present), code]);
}

/// PUBACK, PUBREC, PUBREL (with its required flags) or PUBCOMP.
fn ack(out: &mut BytesMut, packet: u8, pi: u16) {
    out.put_u8(packet);
    out.put_u8(2);
    out.put_u16(pi);
}

/// PUBACK.
pub fn puback(out: &mut BytesMut, pi: u16) {
    ack(out, PUBACK, pi);
}

/// PUBREC.
pub fn pubrec(out: &mut BytesMut, pi: u16) {
    ack(out, PUBREC, pi);
}

/// PUBREL.
pub fn pubrel(out: &mut BytesMut, pi: u16) {
    ack(out, PUBREL | 2, pi);
}

/// PUBCOMP.
pub fn pubcomp(out: &mut BytesMut, pi: u16) {
    ack(out, PUBCOMP, pi);
}

/// UNSUBACK.
pub fn unsuback(out: &mut BytesMut, pi: u16) {
    ack(out, UNSUBACK, pi);
}

/// SUBACK: one return code per filter (the granted QoS or 0x80).
pub fn suback(out: &mut BytesMut, pi: u16, codes: &[u8]) {
    out.put_u8(SUBACK);
    put_length(out, 2 + codes.len());
    out.put_u16(pi);
    out.put_slice(codes);
}

/// PINGRESP.
pub fn pingresp(out: &mut BytesMut) {
    out.put_slice(&[PINGRESP, 0]);
}

/// PUBLISH: `pi` is ignored at QoS 0. A payload too large for MQTT is cut
/// at the protocol's limit, as nats-server does.
pub fn publish_packet(out: &mut BytesMut, p: &Publish) {
    let topic = p.topic.as_bytes();
    let topic = &topic[..topic.len().min(usize::from(u16::MAX))];
    let id_len = if p.qos > 0 { 2 } else { 0 };
    let room = MAX_REMAINING_BYTES - 2 - topic.len() - id_len;
    let payload = &p.payload[..p.payload.len().min(room)];
    let flags = u8::from(p.retain) | (p.qos << 1) | (u8::from(p.dup) << 3);
    out.reserve(5 + 2 + topic.len() + id_len + payload.len());
    out.put_u8(PUBLISH | flags);
    put_length(out, 2 + topic.len() + id_len + payload.len());
    out.put_u16(topic.len() as u16);
    out.put_slice(topic);
    if p.qos > 0 {
        out.put_u16(p.pi);
    }
    out.put_slice(payload);
}

/// What a client would send: for tests and the fuzz target.
pub fn encode_client(out: &mut BytesMut, p: &Packet) {
    fn string(body: &mut BytesMut, s: &[u8]) {
        body.put_u16(s.len() as u16);
        body.put_slice(s);
    }
    let mut body = BytesMut::new();
    let first = match p {
        Packet::Connect(c) => {
            string(&mut body, b"MQTT");
            body.put_u8(4);
            let mut flags = u8::from(c.clean) << 1;
            if let Some(w) = &c.will {
                flags |= 0x04 | (w.qos << 3) | (u8::from(w.retain) << 5);
            }
            flags |= u8::from(c.username.is_some()) << 7 | u8::from(c.password.is_some()) << 6;
            body.put_u8(flags);
            body.put_u16(c.keep_alive_secs);
            string(&mut body, c.client_id.as_bytes());
            if let Some(w) = &c.will {
                string(&mut body, w.topic.as_bytes());
                string(&mut body, &w.message);
            }
            if let Some(u) = &c.username {
                string(&mut body, u.as_bytes());
            }
            if let Some(pw) = &c.password {
                string(&mut body, pw);
            }
            CONNECT
        }
        Packet::Publish(p) => {
            publish_packet(out, p);
            return;
        }
        Packet::PubAck(pi) | Packet::PubRec(pi) | Packet::PubComp(pi) => {
            let t = match p {
                Packet::PubAck(_) => PUBACK,
                Packet::PubRec(_) => PUBREC,
                _ => PUBCOMP,
            };
            ack(out, t, *pi);
            return;
        }
        Packet::PubRel(pi) => {
            pubrel(out, *pi);
            return;
        }
        Packet::Subscribe(pi, filters) => {
            body.put_u16(*pi);
            for (f, q) in filters {
                string(&mut body, f.as_bytes());
                body.put_u8(*q);
            }
            SUBSCRIBE | 2
        }
        Packet::Unsubscribe(pi, filters) => {
            body.put_u16(*pi);
            for f in filters {
                string(&mut body, f.as_bytes());
            }
            UNSUBSCRIBE | 2
        }
        Packet::PingReq => PINGREQ,
        Packet::Disconnect => DISCONNECT,
    };
    out.put_u8(first);
    put_length(out, body.len());
    out.put_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect_packet() -> Packet {
        Packet::Connect(Connect {
            client_id: "dev1".into(),
            clean: false,
            keep_alive_secs: 30,
            will: Some(Will { topic: "a/b".into(), message: Bytes::from_static(b"bye"), qos: 1, retain: true }),
            username: Some("u".into()),
            password: Some(Bytes::from_static(b"p")),
        })
    }

    fn decode_all(bytes: &[u8], chunk: usize) -> Result<Vec<Packet>, Error> {
        let mut d = Decoder::new(1 << 20, 1 << 20);
        let mut out = Vec::new();
        for part in bytes.chunks(chunk.max(1)) {
            d.extend(part);
            while let Some(p) = d.next_packet()? {
                out.push(p);
            }
        }
        Ok(out)
    }

    #[test]
    fn every_client_packet_round_trips_in_any_split() {
        let packets = vec![
            connect_packet(),
            Packet::Publish(Publish {
                topic: "a/b".into(),
                pi: 7,
                qos: 1,
                retain: true,
                dup: true,
                payload: Bytes::from(vec![b'x'; 300]),
            }),
            Packet::Publish(Publish { topic: "t".into(), pi: 0, qos: 0, retain: false, dup: false, payload: Bytes::new() }),
            Packet::PubAck(1),
            Packet::PubRec(2),
            Packet::PubRel(3),
            Packet::PubComp(4),
            Packet::Subscribe(5, vec![("a/+".into(), 1), ("#".into(), 0)]),
            Packet::Unsubscribe(6, vec!["a/+".into()]),
            Packet::PingReq,
            Packet::Disconnect,
        ];
        let mut wire = BytesMut::new();
        for p in &packets {
            encode_client(&mut wire, p);
        }
        for chunk in [1, 2, 3, 7, 1000] {
            assert_eq!(decode_all(&wire, chunk).unwrap(), packets, "chunk {chunk}");
        }
    }

    #[test]
    fn protocol_errors_are_nats_servers() {
        let mut sub = BytesMut::new();
        encode_client(&mut sub, &Packet::Subscribe(1, vec![("a".into(), 0)]));
        assert_eq!(decode_all(&sub, 100), Err(Error::NotConnect(8)));
        assert_eq!(decode_all(b"GET /mqtt HTTP/1.1\r\n", 100), Err(Error::WebsocketOnMqttPort));
        let mut wire = BytesMut::new();
        encode_client(&mut wire, &connect_packet());
        let mut twice = wire.clone();
        twice.extend_from_slice(&wire);
        assert_eq!(decode_all(&twice, 100), Err(Error::SecondConnect));
        let cases: Vec<(&[u8], Error)> = vec![
            (&[0x41, 2, 0, 1], Error::FixedHeaderFlags { packet: 0x40, flags: 1 }),
            (&[0x40, 3, 0, 1, 0], Error::RemainingLength { packet: 0x40, len: 3 }),
            (&[0x40, 2, 0, 0], Error::ZeroPacketId),
            (&[0xc0, 0xff, 0xff, 0xff, 0xff, 1], Error::MalformedVarInt),
            (&[0xf0, 0], Error::UnknownPacket(15)),
            (&[0x82, 2, 0, 1], Error::NoFilters("")),
            (&[0x82, 5, 0, 1, 0, 0, 0], Error::EmptyFilter),
            (&[0x82, 6, 0, 1, 0, 1, b'a', 3], Error::BadSubscribeQos(3)),
            (&[0x36, 4, 0, 1, b'a', 0], Error::BadQos),
            (&[0x32, 5, 0, 1, b'a', 0, 0], Error::ZeroPacketId),
            (&[0x30, 2, 0, 0], Error::EmptyTopic),
            (&[0x30, 3, 0, 1, 0xff], Error::BadString { field: "topic", what: "utf8" }),
        ];
        for (bytes, err) in cases {
            let mut all = wire.clone();
            all.extend_from_slice(bytes);
            assert_eq!(decode_all(&all, 100), Err(err), "{bytes:?}");
        }
    }

    #[test]
    fn connect_refusals_carry_connack_codes() {
        let base = |f: &dyn Fn(&mut Connect)| {
            let Packet::Connect(mut c) = connect_packet() else { unreachable!() };
            f(&mut c);
            let mut wire = BytesMut::new();
            encode_client(&mut wire, &Packet::Connect(c));
            decode_all(&wire, 100)
        };
        assert!(matches!(base(&|c| c.client_id.clear()), Err(Error::Refused { code: rc::IDENTIFIER_REJECTED, .. })));
        assert!(base(&|c| {
            c.client_id.clear();
            c.clean = true;
        })
        .is_ok());
        assert!(matches!(base(&|c| c.username = Some(String::new())), Err(Error::Refused { code: rc::BAD_USER_OR_PASSWORD, .. })));
        assert!(matches!(base(&|c| c.client_id = "a.b".into()), Err(Error::Refused { code: rc::IDENTIFIER_REJECTED, .. })));
        let mut wire = BytesMut::new();
        encode_client(&mut wire, &connect_packet());
        wire[8] = 3; // protocol level 3
        assert!(matches!(decode_all(&wire, 100), Err(Error::Refused { code: rc::UNACCEPTABLE_PROTOCOL_VERSION, .. })));
        wire[8] = 4;
        wire[9] |= 1;
        assert_eq!(decode_all(&wire, 100), Err(Error::ConnFlagReserved));
    }

    #[test]
    fn packets_over_the_limit_are_refused_before_they_are_buffered() {
        let mut d = Decoder::new(64, 1024);
        d.extend(&[0x10, 0xff, 0x01]);
        assert_eq!(d.next_packet(), Err(Error::MaxPayload));
    }

    #[test]
    fn server_packets_encode_as_mqtt_says() {
        let mut out = BytesMut::new();
        connack(&mut out, true, 0);
        suback(&mut out, 9, &[0, 1, 0x80]);
        pubrel(&mut out, 3);
        pingresp(&mut out);
        assert_eq!(&out[..], &[0x20, 2, 1, 0, 0x90, 5, 0, 9, 0, 1, 0x80, 0x62, 2, 0, 3, 0xd0, 0]);
    }
}
