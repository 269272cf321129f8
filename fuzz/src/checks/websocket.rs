//! The WebSocket upgrade and frame codec: any bytes, split anywhere.

use bytes::{Bytes, BytesMut};
use natrix_core::websocket::frame::{Event, FrameError, FrameReader, FrameWriter};
use natrix_core::websocket::handshake::{handshake, Outcome, Policy};

use super::InputRng;

/// What a reader made of a byte stream: the NATS bytes joined, the other
/// events, and the error it stopped on.
fn decode(compress: bool, max_payload: usize, chunks: &[&[u8]]) -> (Vec<u8>, Vec<Event>, Option<FrameError>) {
    let mut reader = FrameReader::new(compress, max_payload);
    let (mut data, mut others) = (Vec::new(), Vec::new());
    for chunk in chunks {
        let mut out = Vec::new();
        let result = reader.read(BytesMut::from(*chunk), &mut out);
        for e in out {
            match e {
                Event::Data(b) => data.extend_from_slice(&b),
                e => others.push(e),
            }
        }
        if let Err(e) = result {
            return (data, others, Some(e));
        }
    }
    (data, others, None)
}

/// Upgrade requests never panic; frames decode the same however the
/// socket splits them; what the server frames, a client's masked copy of
/// decodes back to the same bytes.
pub fn websocket_frames(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let compress = flags & 1 != 0;
    if let Outcome::Accept(up) = handshake(rest, &Policy { compression: compress, ..Policy::default() }) {
        assert!(up.response.starts_with(b"HTTP/1.1 101 "));
    }
    let mut rng = InputRng::from_input(data);
    let mut chunks = Vec::new();
    let mut at = 0;
    while at < rest.len() {
        let n = rng.between_one_and(rest.len() - at);
        chunks.push(&rest[at..at + n]);
        at += n;
    }
    let whole = decode(compress, 64 * 1024, &[rest]);
    let split = decode(compress, 64 * 1024, &chunks);
    assert_eq!(whole.2, split.2, "the same error either way");
    assert_eq!(whole.0, split.0, "the same NATS bytes either way");
    assert_eq!(whole.1, split.1, "the same control events either way");

    let mut batch = vec![Bytes::copy_from_slice(rest)];
    FrameWriter::new(compress, flags & 2 != 0).frame(&mut batch);
    let wire: Vec<u8> = batch.iter().flat_map(|b| b.iter().copied()).collect();
    let masked = mask_frames(&wire, rng.next().to_be_bytes());
    let (back, events, error) = decode(compress, rest.len().max(1), &[&masked]);
    assert!(error.is_none() && events.is_empty(), "{error:?} {events:?}");
    assert_eq!(back, rest);
}

/// A client's copy of server frames: the mask bit set and each payload masked.
fn mask_frames(wire: &[u8], key: [u8; 8]) -> Vec<u8> {
    let key = [key[0], key[1], key[2], key[3]];
    let mut out = Vec::with_capacity(wire.len() + wire.len() / 8 + 8);
    let mut at = 0;
    while at < wire.len() {
        let (b0, b1) = (wire[at], wire[at + 1]);
        let (len, ext) = match b1 & 0x7f {
            126 => (usize::from(u16::from_be_bytes([wire[at + 2], wire[at + 3]])), 2),
            127 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&wire[at + 2..at + 10]);
                (usize::try_from(u64::from_be_bytes(n)).expect("a length that fits"), 8)
            }
            n => (usize::from(n), 0),
        };
        out.push(b0);
        out.push(b1 | 0x80);
        out.extend_from_slice(&wire[at + 2..at + 2 + ext]);
        out.extend_from_slice(&key);
        let start = at + 2 + ext;
        out.extend(wire[start..start + len].iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
        at = start + len;
    }
    out
}
