//! The MQTT session against a scripted core: what it sends, when.

use super::*;
use crate::mqtt::packet::{encode_client, Connect};

fn setup() -> Setup {
    Setup {
        server_name: "srv".into(),
        max_payload_bytes: 1 << 20,
        ack_wait: Duration::from_secs(30),
        max_ack_pending: 16,
        js_api: "$JS.API".into(),
        consumer_memory_storage: false,
        reject_qos2_publish: false,
        downgrade_qos2_subscribe: false,
    }
}

fn connect(clean: bool) -> Vec<u8> {
    let mut out = BytesMut::new();
    let c = Connect { client_id: "dev".into(), clean, keep_alive_secs: 10, will: None, username: Some("u".into()), password: Some(Bytes::from_static(b"p")) };
    encode_client(&mut out, &Packet::Connect(c));
    out.to_vec()
}

fn server_text(s: &mut MqttSession) -> String {
    s.take_to_server().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// Answers every JetStream request in `text` with `reply(subject)`.
fn answer(s: &mut MqttSession, text: &str, reply: impl Fn(&str) -> String) {
    for line in text.split("\r\n") {
        let words: Vec<&str> = line.split(' ').collect();
        if words.len() == 4 && words[0] == "PUB" && words[2].starts_with("$MQTT.JSA.") {
            let body = reply(words[1]);
            let msg = format!("MSG {} 1 {}\r\n{body}\r\n", words[2], body.len());
            s.handle_nats(Instant::from_nanos(1), msg.as_bytes());
        }
    }
}

fn connected(clean: bool) -> MqttSession {
    let now = Instant::from_nanos(1);
    let mut s = MqttSession::new(setup(), 7);
    s.handle_received(now, &connect(clean));
    let text = server_text(&mut s);
    assert!(text.starts_with("CONNECT {") && text.contains("\"user\":\"u\"") && text.contains("PING\r\n"), "{text}");
    assert_eq!(s.take_to_client(), None, "no CONNACK before the credentials are checked");
    s.handle_nats(now, b"INFO {}\r\nPONG\r\n");
    let creates = server_text(&mut s);
    assert_eq!(creates.matches("STREAM.CREATE").count(), 4, "{creates}");
    assert!(creates.contains("STREAM.CREATE.$MQTT_qos2in"), "{creates}");
    answer(&mut s, &creates, |_| "{\"error\":{\"code\":400,\"err_code\":10058}}".into());
    let load = server_text(&mut s);
    assert!(load.contains("$JS.API.STREAM.MSG.GET.$MQTT_sess"), "{load}");
    answer(&mut s, &load, |_| "{\"error\":{\"code\":404,\"err_code\":10037}}".into());
    assert_eq!(s.take_to_client().as_deref(), Some(&[0x20, 2, 0, 0][..]));
    s
}

#[test]
fn connack_waits_for_the_credentials_and_the_streams() {
    let mut s = connected(false);
    assert!(server_text(&mut s).contains("$MQTT.sess."), "a persistent session is stored");
    assert_eq!(s.closed(), None);
}

#[test]
fn bad_credentials_get_return_code_5() {
    let mut s = MqttSession::new(setup(), 7);
    s.handle_received(Instant::from_nanos(1), &connect(true));
    s.handle_nats(Instant::from_nanos(1), b"INFO {}\r\n-ERR 'Authorization Violation'\r\n");
    assert_eq!(s.take_to_client().as_deref(), Some(&[0x20, 2, 0, 5][..]));
    assert_eq!(s.closed(), Some(CloseReason::AuthenticationViolation));
}

#[test]
fn qos1_publish_is_acknowledged_once_stored() {
    let mut s = connected(true);
    let _ = server_text(&mut s);
    let mut wire = BytesMut::new();
    let p = Publish { topic: "a/b".into(), pi: 9, qos: 1, retain: false, dup: false, payload: Bytes::from_static(b"x") };
    encode_client(&mut wire, &Packet::Publish(p));
    s.handle_received(Instant::from_nanos(2), &wire);
    let text = server_text(&mut s);
    assert_eq!(text, "HPUB a.b 25 26\r\nNATS/1.0\r\nNmqtt-Pub:1\r\n\r\nx\r\nPING\r\n", "the store waits for the PONG");
    s.handle_nats(Instant::from_nanos(2), b"PONG\r\n");
    let text = server_text(&mut s);
    assert!(text.starts_with("HPUB $MQTT.msgs.a.b $MQTT.JSA."), "{text}");
    assert_eq!(s.take_to_client(), None, "no PUBACK before JetStream stored it");
    for line in text.split("\r\n").filter(|l| l.starts_with("HPUB $MQTT.msgs.")) {
        let reply = line.split(' ').nth(2).unwrap_or_default();
        let ack = "{\"stream\":\"$MQTT_msgs\",\"seq\":1}";
        s.handle_nats(Instant::from_nanos(3), format!("MSG {reply} 1 {}\r\n{ack}\r\n", ack.len()).as_bytes());
    }
    assert_eq!(s.take_to_client().as_deref(), Some(&[0x40, 2, 0, 9][..]));
}

#[test]
fn deliveries_become_publishes_and_pubacks_become_acks() {
    let mut s = connected(true);
    let _ = server_text(&mut s);
    let mut wire = BytesMut::new();
    encode_client(&mut wire, &Packet::Subscribe(1, vec![("a/+".into(), 1)]));
    s.handle_received(Instant::from_nanos(2), &wire);
    let text = server_text(&mut s);
    // sid 1 takes JetStream replies, sid 2 hears takeovers.
    assert_eq!(text, "SUB a.* 3\r\nPING\r\n", "the consumer waits for the SUB to pass the core");
    s.handle_nats(Instant::from_nanos(2), b"PONG\r\n");
    let text = server_text(&mut s);
    assert!(text.contains("SUB $MQTT.sub."), "{text}");
    answer(&mut s, &text, |_| "{\"name\":\"eph\",\"num_pending\":0}".into());
    let suback = s.take_to_client().unwrap_or_default();
    assert_eq!(&suback[..], &[0x90, 3, 0, 1, 1]);
    let retained = server_text(&mut s);
    assert!(retained.contains("CONSUMER.CREATE.$MQTT_rmsgs") && retained.contains("last_per_subject"), "{retained}");
    // A NATS publish reaches the plain subscription at QoS 0.
    s.handle_nats(Instant::from_nanos(3), b"MSG a.b 3 2\r\nhi\r\n");
    let mut d = packet::Decoder::new(1 << 20, 1 << 20);
    let mut connect_first = BytesMut::new();
    encode_client(&mut connect_first, &Packet::Connect(Connect { client_id: "x".into(), clean: true, keep_alive_secs: 0, will: None, username: None, password: None }));
    d.extend(&connect_first);
    let _ = d.next_packet();
    d.extend(&s.take_to_client().unwrap_or_default());
    let Ok(Some(Packet::Publish(p))) = d.next_packet() else { panic!("no PUBLISH") };
    assert_eq!((p.topic.as_str(), p.qos, &p.payload[..]), ("a/b", 0, &b"hi"[..]));
    // A stored QoS 1 message comes from the consumer, with a packet id.
    let hdr = "NATS/1.0\r\nNmqtt-Pub:1\r\n\r\n";
    let msg = format!("HMSG $MQTT.msgs.a.c 4 $JS.ACK.$MQTT_msgs.eph.1.5.1.0.0 {} {}\r\n{hdr}yo\r\n", hdr.len(), hdr.len() + 2);
    s.handle_nats(Instant::from_nanos(4), msg.as_bytes());
    d.extend(&s.take_to_client().unwrap_or_default());
    let Ok(Some(Packet::Publish(p))) = d.next_packet() else { panic!("no PUBLISH") };
    assert_eq!((p.topic.as_str(), p.qos, p.dup, &p.payload[..]), ("a/c", 1, false, &b"yo"[..]));
    // The redelivery reuses the id with DUP; the PUBACK acks JetStream.
    s.handle_nats(Instant::from_nanos(5), msg.replace(".eph.1.5.", ".eph.2.5.").as_bytes());
    d.extend(&s.take_to_client().unwrap_or_default());
    let Ok(Some(Packet::Publish(again))) = d.next_packet() else { panic!("no redelivery") };
    assert_eq!((again.pi, again.dup), (p.pi, true));
    let mut ack = BytesMut::new();
    encode_client(&mut ack, &Packet::PubAck(p.pi));
    s.handle_received(Instant::from_nanos(6), &ack);
    assert_eq!(server_text(&mut s), "PUB $JS.ACK.$MQTT_msgs.eph.2.5.1.0.0 0\r\n\r\n");
}

#[test]
fn keep_alive_expiry_closes_and_publishes_the_will() {
    let mut s = MqttSession::new(setup(), 7);
    let mut out = BytesMut::new();
    let will = packet::Will { topic: "w".into(), message: Bytes::from_static(b"bye"), qos: 0, retain: false };
    let c = Connect { client_id: "d".into(), clean: true, keep_alive_secs: 2, will: Some(will), username: None, password: None };
    encode_client(&mut out, &Packet::Connect(c));
    s.handle_received(Instant::from_nanos(0), &out);
    s.handle_nats(Instant::from_nanos(0), b"PONG\r\n");
    let creates = server_text(&mut s);
    answer(&mut s, &creates, |_| "{}".into());
    let load = server_text(&mut s);
    answer(&mut s, &load, |_| "{\"error\":{\"err_code\":10037}}".into());
    let _ = server_text(&mut s);
    assert_eq!(s.poll_timeout(), Some(Instant::from_nanos(3_000_000_000)), "1.5 times the keep-alive");
    s.handle_timeout(Instant::from_nanos(2_999_999_999));
    assert_eq!(s.closed(), None);
    s.handle_timeout(Instant::from_nanos(3_000_000_000));
    assert_eq!(s.closed(), Some(CloseReason::StaleConnection));
    assert!(server_text(&mut s).starts_with("HPUB w 25 28\r\n"));
}

proptest::proptest! {
    /// Any bytes, from the device or from the core, in any state: no panic,
    /// and the packet buffer stays bounded.
    #[test]
    fn any_bytes_from_either_side_are_survived(
        device in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        core in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        connect_first in proptest::prelude::any::<bool>(),
    ) {
        let mut s = MqttSession::new(setup(), 1);
        let now = Instant::from_nanos(1);
        if connect_first {
            s.handle_received(now, &connect(false));
            s.handle_nats(now, b"PONG\r\n");
        }
        for (d, c) in device.chunks(7).zip(core.chunks(5)) {
            s.handle_received(now, d);
            s.handle_nats(now, c);
            let _ = s.take_to_client();
            let _ = s.take_to_server();
        }
        s.handle_lost();
    }
}

#[test]
fn a_client_flooding_while_the_session_waits_is_cut_off() {
    let mut s = connected(true);
    let _ = server_text(&mut s);
    let mut wire = BytesMut::new();
    // A QoS 1 SUBSCRIBE waits for its consumer; nothing answers it here.
    encode_client(&mut wire, &Packet::Subscribe(1, vec![("a".into(), 1)]));
    s.handle_received(Instant::from_nanos(2), &wire);
    let mut wire = BytesMut::new();
    for _ in 0..MAX_QUEUED_PACKETS {
        encode_client(&mut wire, &Packet::PingReq);
    }
    s.handle_received(Instant::from_nanos(2), &wire);
    assert_eq!(s.take_to_client(), None, "no PINGRESP overtakes the SUBACK");
    assert_eq!(s.closed(), None, "up to the limit, packets wait their turn");
    let mut more = BytesMut::new();
    encode_client(&mut more, &Packet::PingReq);
    s.handle_received(Instant::from_nanos(3), &more);
    assert_eq!(s.closed(), Some(CloseReason::SlowConsumerPendingBytes));
}


fn send(s: &mut MqttSession, p: Packet) {
    let mut wire = BytesMut::new();
    encode_client(&mut wire, &p);
    s.handle_received(Instant::from_nanos(2), &wire);
}

/// Packets the session sent the device.
fn to_device(s: &mut MqttSession) -> Vec<Packet> {
    let mut d = packet::Decoder::new(1 << 20, 1 << 20);
    let mut first = BytesMut::new();
    encode_client(&mut first, &Packet::Connect(Connect { client_id: "x".into(), clean: true, keep_alive_secs: 0, will: None, username: None, password: None }));
    d.extend(&first);
    let _ = d.next_packet();
    let bytes = s.take_to_client().unwrap_or_default();
    // SUBACK, PUBREC… are server-to-client packets the decoder reads too,
    // except SUBACK: read its bytes raw.
    if bytes.first() == Some(&0x90) {
        return vec![Packet::Subscribe(u16::from_be_bytes([bytes[2], bytes[3]]), bytes[4..].iter().map(|&c| (String::new(), c)).collect())];
    }
    d.extend(&bytes);
    let mut out = Vec::new();
    while let Ok(Some(p)) = d.next_packet() {
        out.push(p);
    }
    out
}

/// Acknowledges every `$MQTT.JSA` store in `text` as JetStream would.
fn ack_stores(s: &mut MqttSession, text: &str) {
    for line in text.split("\r\n").filter(|l| l.starts_with("HPUB $MQTT.") || l.starts_with("PUB $MQTT.")) {
        let Some(reply) = line.split(' ').nth(2).filter(|r| r.starts_with("$MQTT.JSA.")) else { continue };
        let ack = "{\"stream\":\"x\",\"seq\":1}";
        s.handle_nats(Instant::from_nanos(3), format!("MSG {reply} 1 {}\r\n{ack}\r\n", ack.len()).as_bytes());
    }
}

#[test]
fn qos2_publish_is_held_in_jetstream_until_pubrel() {
    let mut s = connected(true);
    let _ = server_text(&mut s);
    let p = Publish { topic: "q/2".into(), pi: 7, qos: 2, retain: false, dup: false, payload: Bytes::from_static(b"once") };
    send(&mut s, Packet::Publish(p));
    let text = server_text(&mut s);
    assert!(text.starts_with("HPUB $MQTT.qos2.in.") && text.contains("Nmqtt-Pub:24\r\nNmqtt-Subject:q.2\r\n"), "{text}");
    assert!(!text.contains("HPUB q.2"), "not delivered before PUBREL: {text}");
    assert_eq!(s.take_to_client(), None, "PUBREC once stored");
    ack_stores(&mut s, &text);
    assert_eq!(s.take_to_client().as_deref(), Some(&[0x50, 2, 0, 7][..]));
    // PUBREL: the held message is read back, deleted, published.
    send(&mut s, Packet::PubRel(7));
    let get = server_text(&mut s);
    assert!(get.contains("STREAM.MSG.GET.$MQTT_qos2in") && get.contains(".7\"}"), "{get}");
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let stored = format!(
        "{{\"message\":{{\"subject\":\"x\",\"seq\":4,\"hdrs\":\"{}\",\"data\":\"{}\"}}}}",
        b64(b"NATS/1.0\r\nNmqtt-Pub:24\r\nNmqtt-Subject:q.2\r\n\r\n"),
        b64(b"once")
    );
    answer(&mut s, &get, |_| stored.clone());
    let text = server_text(&mut s);
    assert!(text.contains("STREAM.MSG.DELETE.$MQTT_qos2in") && text.contains("\"seq\":4"), "{text}");
    assert!(text.contains("HPUB q.2 25 29\r\nNATS/1.0\r\nNmqtt-Pub:2\r\n\r\nonce\r\nPING\r\n"), "{text}");
    s.handle_nats(Instant::from_nanos(3), b"PONG\r\n");
    let stores = server_text(&mut s);
    assert!(stores.contains("HPUB $MQTT.msgs.q.2 $MQTT.JSA."), "{stores}");
    assert_eq!(s.take_to_client(), None, "PUBCOMP once stored");
    ack_stores(&mut s, &stores);
    assert_eq!(s.take_to_client().as_deref(), Some(&[0x70, 2, 0, 7][..]));
    // A PUBREL for nothing held: PUBCOMP all the same.
    send(&mut s, Packet::PubRel(8));
    let get = server_text(&mut s);
    answer(&mut s, &get, |_| "{\"error\":{\"code\":404,\"err_code\":10037}}".into());
    assert_eq!(s.take_to_client().as_deref(), Some(&[0x70, 2, 0, 8][..]));
}

#[test]
fn denied_publishes_are_acknowledged_and_not_stored() {
    let mut s = connected(true);
    let _ = server_text(&mut s);
    let p = Publish { topic: "no".into(), pi: 3, qos: 1, retain: true, dup: false, payload: Bytes::from_static(b"x") };
    send(&mut s, Packet::Publish(p));
    let _ = server_text(&mut s);
    s.handle_nats(Instant::from_nanos(3), b"-ERR 'Permissions Violation for Publish to \"no\"'\r\nPONG\r\n");
    assert_eq!(server_text(&mut s), "", "neither stored nor retained");
    assert_eq!(s.take_to_client().as_deref(), Some(&[0x40, 2, 0, 3][..]), "PUBACK as nats-server sends it");
    // The session's own subjects are not the device's.
    let p = Publish { topic: "$MQTT/msgs/x".into(), pi: 4, qos: 1, retain: false, dup: false, payload: Bytes::from_static(b"x") };
    send(&mut s, Packet::Publish(p));
    assert_eq!(server_text(&mut s), "");
    assert_eq!(s.take_to_client().as_deref(), Some(&[0x40, 2, 0, 4][..]));
}

#[test]
fn denied_subscriptions_get_0x80() {
    let mut s = connected(true);
    let _ = server_text(&mut s);
    send(&mut s, Packet::Subscribe(5, vec![("ok/#".into(), 1), ("no/+".into(), 0), ("$MQTT/msgs/#".into(), 0)]));
    let text = server_text(&mut s);
    assert_eq!(text, "SUB ok.> 3\r\nSUB ok 4\r\nSUB no.* 5\r\nPING\r\n");
    s.handle_nats(Instant::from_nanos(3), b"-ERR 'Permissions Violation for Subscription to \"no.*\"'\r\nPONG\r\n");
    let text = server_text(&mut s);
    assert!(text.contains("UNSUB 5\r\n") && text.contains("CONSUMER.CREATE.$MQTT_msgs"), "{text}");
    answer(&mut s, &text, |_| "{\"name\":\"eph\"}".into());
    let [Packet::Subscribe(5, codes)] = &to_device(&mut s)[..] else { panic!("no SUBACK") };
    assert_eq!(codes.iter().map(|c| c.1).collect::<Vec<_>>(), vec![1, 0x80, 0x80]);
}

#[test]
fn qos2_subscriptions_deliver_at_qos2_with_pubrel() {
    let mut s = connected(true);
    let _ = server_text(&mut s);
    send(&mut s, Packet::Subscribe(1, vec![("t".into(), 2)]));
    s.handle_nats(Instant::from_nanos(3), b"PONG\r\n");
    let text = server_text(&mut s);
    answer(&mut s, &text, |_| "{\"name\":\"eph\",\"num_pending\":0}".into());
    let [Packet::Subscribe(1, codes)] = &to_device(&mut s)[..] else { panic!("no SUBACK") };
    assert_eq!(codes[0].1, 2, "QoS 2 granted, as nats-server 2.15.1 grants it");
    let hdr = "NATS/1.0\r\nNmqtt-Pub:2\r\n\r\n";
    let msg = format!("HMSG $MQTT.msgs.t 4 $JS.ACK.$MQTT_msgs.eph.1.9.1.0.0 {} {}\r\n{hdr}yo\r\n", hdr.len(), hdr.len() + 2);
    s.handle_nats(Instant::from_nanos(4), msg.as_bytes());
    let [Packet::Publish(p)] = &to_device(&mut s)[..] else { panic!("no PUBLISH") };
    assert_eq!(p.qos, 2);
    let pi = p.pi;
    let _ = server_text(&mut s);
    send(&mut s, Packet::PubRec(pi));
    assert_eq!(server_text(&mut s), "PUB $JS.ACK.$MQTT_msgs.eph.1.9.1.0.0 0\r\n\r\n");
    assert_eq!(s.take_to_client().as_deref(), Some(&[0x62, 2, (pi >> 8) as u8, pi as u8][..]), "PUBREL");
    assert!(s.pubrel_pending.contains(&pi), "the id stays in use until PUBCOMP");
    send(&mut s, Packet::PubComp(pi));
    assert!(s.pubrel_pending.is_empty());
}

#[test]
fn a_persistent_sessions_suback_waits_for_the_stored_session() {
    let mut s = connected(false);
    let _ = server_text(&mut s);
    send(&mut s, Packet::Subscribe(3, vec![("a".into(), 0)]));
    s.handle_nats(Instant::from_nanos(3), b"PONG\r\n");
    let text = server_text(&mut s);
    assert!(text.contains("PUB $MQTT.sess.") && text.contains("\"subs\":{\"a\":0}"), "{text}");
    assert_eq!(s.take_to_client(), None, "no SUBACK before the session is stored");
    answer_stores(&mut s, &text);
    assert_eq!(s.take_to_client().as_deref(), Some(&[0x90, 3, 0, 3, 0][..]));
}

/// Acknowledges every request in `text` whose subject starts with `$MQTT.`.
fn answer_stores(s: &mut MqttSession, text: &str) {
    for line in text.split("\r\n").filter(|l| l.starts_with("PUB $MQTT.")) {
        let Some(reply) = line.split(' ').nth(2).filter(|r| r.starts_with("$MQTT.JSA.")) else { continue };
        let ack = "{\"stream\":\"$MQTT_sess\",\"seq\":2}";
        s.handle_nats(Instant::from_nanos(3), format!("MSG {reply} 1 {}\r\n{ack}\r\n", ack.len()).as_bytes());
    }
}
