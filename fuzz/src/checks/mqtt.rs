//! The MQTT packet codec and session: any bytes, split anywhere.

use bytes::BytesMut;
use natrix_core::mqtt::packet::{encode_client, Decoder, Packet};
use natrix_core::mqtt::{MqttSession, Setup};
use natrix_core::Instant;

use super::InputRng;

/// Decodes `chunks` in order: the packets and the error it stopped on.
fn decode(chunks: &[&[u8]]) -> (Vec<Packet>, Option<String>) {
    let mut d = Decoder::new(4096, 64 * 1024);
    let mut out = Vec::new();
    for chunk in chunks {
        d.extend(chunk);
        loop {
            match d.next_packet() {
                Ok(Some(p)) => out.push(p),
                Ok(None) => break,
                Err(e) => return (out, Some(e.to_string())),
            }
        }
        assert!(d.buffered() <= 64 * 1024 + 5 + chunk.len(), "the decoder holds at most one packet");
    }
    (out, None)
}

/// Packets decode the same however the socket splits them; what decoded
/// encodes back to bytes that decode to the same packets; a session fed
/// the bytes from either side never panics.
pub fn mqtt_packets(data: &[u8]) {
    let mut rng = InputRng::from_input(data);
    let mut chunks = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let n = rng.between_one_and(data.len() - at);
        chunks.push(&data[at..at + n]);
        at += n;
    }
    let whole = decode(&[data]);
    let split = decode(&chunks);
    assert_eq!(whole, split, "the same packets and error either way");

    let mut wire = BytesMut::new();
    for p in &whole.0 {
        encode_client(&mut wire, p);
    }
    let again = decode(&[&wire]);
    assert_eq!(again.0, whole.0, "encoded packets decode to themselves");

    let setup = Setup {
        server_name: "fuzz".into(),
        max_payload_bytes: 4096,
        ack_wait: std::time::Duration::from_secs(30),
        max_ack_pending: 16,
        js_api: "$JS.API".into(),
        consumer_memory_storage: false,
        reject_qos2_publish: false,
        downgrade_qos2_subscribe: false,
    };
    let mut session = MqttSession::new(setup, rng.next());
    let now = Instant::from_nanos(1);
    for chunk in &chunks {
        session.handle_received(now, chunk);
        session.handle_nats(now, chunk);
        let _ = session.take_to_client();
        let _ = session.take_to_server();
    }
    session.handle_timeout(Instant::from_nanos(u64::MAX / 2));
    session.handle_lost();
}
