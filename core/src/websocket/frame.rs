//! WebSocket frames (RFC 6455 §5) as nats-server reads and writes them:
//! the reader unmasks client frames in place and hands out the NATS bytes
//! they carry, in whatever pieces the socket delivered them (the protocol
//! parser survives any split); compressed messages (RFC 7692) are gathered
//! whole, then inflated, within bounds.

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
const RSV23: u8 = 0x30;
const MASK: u8 = 0x80;
/// Longest control frame payload.
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// nats-server compresses only buffers larger than this.
pub const COMPRESS_THRESHOLD: usize = 64;
/// nats-server's frame size for browsers, which cope badly with larger ones.
pub const BROWSER_FRAME_SIZE: usize = 4096;
/// The tail a deflate sender strips from each message (RFC 7692 §7.2.1),
/// put back before inflating, then an empty final block to end the stream.
const DEFLATE_TAIL: [u8; 9] = [0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff];

/// Frame opcodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCode {
    /// Continuation of a fragmented message.
    Continuation = 0,
    /// Text message.
    Text = 1,
    /// Binary message.
    Binary = 2,
    /// Close.
    Close = 8,
    /// Ping.
    Ping = 9,
    /// Pong.
    Pong = 10,
}

/// Close statuses nats-server uses (RFC 6455 §7.4.1).
pub mod status {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Going away.
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// No status received (never sent).
    pub const NO_STATUS: u16 = 1005;
    /// Invalid payload data.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Policy violation.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// Message too big.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// Internal server error.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// TLS handshake failure.
    pub const TLS_HANDSHAKE: u16 = 1015;
}

/// What the reader found besides NATS bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// NATS protocol bytes.
    Data(Bytes),
    /// A ping: answer with a pong carrying this payload.
    Ping(Bytes),
    /// The client closed: send back this close frame (none for a close
    /// without status) and end the connection as closed by the client.
    Close(Option<Bytes>),
}

/// Why the reader gave up on a connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A broken frame: answer with a 1002 close frame carrying the text.
    #[error("{0}")]
    Protocol(String),
    /// A compressed message over its bounds (nats-server's max payload error).
    #[error("maximum payload exceeded")]
    TooBig,
    /// A compressed message that does not inflate.
    #[error("invalid compressed data: {0}")]
    Inflate(String),
}

impl FrameError {
    /// The close frame to send before cutting the connection.
    pub fn close_frame(&self) -> Bytes {
        match self {
            FrameError::Protocol(m) => close_frame(status::PROTOCOL_ERROR, m),
            FrameError::TooBig => close_frame(status::MESSAGE_TOO_BIG, "Maximum Payload Exceeded"),
            FrameError::Inflate(m) => close_frame(status::INVALID_PAYLOAD, m),
        }
    }
}

fn protocol(message: impl Into<String>) -> FrameError {
    FrameError::Protocol(message.into())
}

/// Where the reader is in the byte stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Gathering a frame header.
    Header,
    /// Inside a data frame's payload.
    Data,
    /// Inside a control frame's payload.
    Control(OpCode),
}

/// Decodes the frames a client sends.
#[derive(Debug)]
pub struct FrameReader {
    stage: Stage,
    header: [u8; 14],
    header_len: usize,
    mask: [u8; 4],
    mask_pos: usize,
    /// Payload bytes left in the current frame.
    remaining: u64,
    /// The current message's last frame has been seen (no message open).
    message_done: bool,
    /// The current message is compressed.
    message_compressed: bool,
    compress: bool,
    control: Vec<u8>,
    compressed: Vec<u8>,
    compressed_max: usize,
    inflated_max: usize,
}

impl FrameReader {
    /// A reader for a client connection; `compress` when permessage-deflate
    /// was negotiated; `max_payload` bounds a compressed message as
    /// nats-server does (8 × max_payload compressed, capped at 64 MiB, and
    /// max_payload inflated).
    pub fn new(compress: bool, max_payload: usize) -> Self {
        FrameReader {
            stage: Stage::Header,
            header: [0; 14],
            header_len: 0,
            mask: [0; 4],
            mask_pos: 0,
            remaining: 0,
            message_done: true,
            message_compressed: false,
            compress,
            control: Vec::new(),
            compressed: Vec::new(),
            compressed_max: max_payload.saturating_mul(8).min(64 * 1024 * 1024),
            inflated_max: max_payload,
        }
    }

    /// Decodes every frame in `input` (consumed whole; a partial frame is
    /// remembered), appending what it carries to `out`.
    pub fn read(&mut self, mut input: BytesMut, out: &mut Vec<Event>) -> Result<(), FrameError> {
        while !input.is_empty() {
            match self.stage {
                Stage::Header => self.header_bytes(&mut input, out)?,
                Stage::Data => {
                    let n = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(input.len());
                    let mut payload = input.split_to(n);
                    self.unmask(&mut payload);
                    self.remaining -= n as u64;
                    let last = self.remaining == 0;
                    if last {
                        self.stage = Stage::Header;
                    }
                    if self.message_compressed {
                        self.gather_compressed(&payload, last && self.message_done, out)?;
                    } else if !payload.is_empty() {
                        out.push(Event::Data(payload.freeze()));
                    }
                }
                Stage::Control(op) => {
                    let n = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(input.len());
                    let mut payload = input.split_to(n);
                    self.unmask(&mut payload);
                    self.control.extend_from_slice(&payload);
                    self.remaining -= n as u64;
                    if self.remaining == 0 {
                        self.stage = Stage::Header;
                        self.control_frame(op, out)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn header_bytes(&mut self, input: &mut BytesMut, out: &mut Vec<Event>) -> Result<(), FrameError> {
        let need = if self.header_len < 2 { 2 } else { header_size(self.header[1]) };
        let take = (need - self.header_len).min(input.len());
        let head = input.split_to(take);
        self.header[self.header_len..self.header_len + take].copy_from_slice(&head);
        self.header_len += take;
        if self.header_len == 2 {
            self.check_first_bytes()?;
        }
        if self.header_len >= 2 && self.header_len == header_size(self.header[1]) {
            self.start_frame(out)?;
        }
        Ok(())
    }

    /// nats-server's checks, in its order, on the first two bytes.
    fn check_first_bytes(&mut self) -> Result<(), FrameError> {
        let (b0, b1) = (self.header[0], self.header[1]);
        let final_frame = b0 & FIN != 0;
        let compressed = b0 & RSV1 != 0;
        if b0 & RSV23 != 0 {
            return Err(protocol("RSV2 and RSV3 must be clear"));
        }
        if compressed && !self.compress {
            return Err(protocol("compressed frame received without negotiated permessage-deflate"));
        }
        if b1 & MASK == 0 {
            return Err(protocol("mask bit missing"));
        }
        let len7 = usize::from(b1 & 0x7f);
        match opcode(b0 & 0x0f) {
            Some(OpCode::Close | OpCode::Ping | OpCode::Pong) => {
                if len7 > MAX_CONTROL_PAYLOAD {
                    return Err(protocol(format!(
                        "control frame length bigger than maximum allowed of {MAX_CONTROL_PAYLOAD} bytes"
                    )));
                }
                if !final_frame {
                    return Err(protocol("control frame does not have final bit set"));
                }
                if compressed {
                    return Err(protocol("control frame must not be compressed"));
                }
            }
            Some(OpCode::Text | OpCode::Binary) => {
                if !self.message_done {
                    return Err(protocol(
                        "new message started before final frame for previous message was received",
                    ));
                }
                self.message_done = final_frame;
                self.message_compressed = compressed;
            }
            Some(OpCode::Continuation) => {
                if self.message_done || compressed {
                    return Err(protocol("invalid continuation frame"));
                }
                self.message_done = final_frame;
            }
            None => return Err(protocol(format!("unknown opcode {}", b0 & 0x0f))),
        }
        Ok(())
    }

    fn start_frame(&mut self, out: &mut Vec<Event>) -> Result<(), FrameError> {
        let h = &self.header;
        let (len, mask_at) = match h[1] & 0x7f {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => {
                let len = u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]);
                if len & (1 << 63) != 0 {
                    return Err(protocol("invalid 64-bit payload length"));
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        self.mask.copy_from_slice(&h[mask_at..mask_at + 4]);
        self.mask_pos = 0;
        self.remaining = len;
        self.header_len = 0;
        let op = opcode(h[0] & 0x0f).unwrap_or(OpCode::Binary);
        if matches!(op, OpCode::Close | OpCode::Ping | OpCode::Pong) {
            self.control.clear();
            self.stage = Stage::Control(op);
            if len == 0 {
                self.stage = Stage::Header;
                return self.control_frame(op, out);
            }
        } else {
            self.stage = Stage::Data;
            if len == 0 {
                self.stage = Stage::Header;
                if self.message_compressed && self.message_done {
                    return self.gather_compressed(&[], true, out);
                }
            }
        }
        Ok(())
    }

    fn control_frame(&mut self, op: OpCode, out: &mut Vec<Event>) -> Result<(), FrameError> {
        let payload = std::mem::take(&mut self.control);
        match op {
            OpCode::Ping => out.push(Event::Ping(Bytes::from(payload))),
            OpCode::Close => out.push(Event::Close(close_reply(&payload)?)),
            _ => {}
        }
        Ok(())
    }

    fn unmask(&mut self, buf: &mut [u8]) {
        for b in buf.iter_mut() {
            *b ^= self.mask[self.mask_pos & 3];
            self.mask_pos += 1;
        }
        self.mask_pos &= 3;
    }

    fn gather_compressed(&mut self, payload: &[u8], last: bool, out: &mut Vec<Event>) -> Result<(), FrameError> {
        if self.compressed.len() + payload.len() > self.compressed_max {
            return Err(FrameError::TooBig);
        }
        self.compressed.extend_from_slice(payload);
        if !last {
            return Ok(());
        }
        let mut data = std::mem::take(&mut self.compressed);
        data.extend_from_slice(&DEFLATE_TAIL);
        let inflated = inflate(&data, self.inflated_max)?;
        if !inflated.is_empty() {
            out.push(Event::Data(Bytes::from(inflated)));
        }
        Ok(())
    }
}

/// The close frame answering a client's close: its status and reason
/// echoed; none for a close without status.
fn close_reply(payload: &[u8]) -> Result<Option<Bytes>, FrameError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(protocol("close frame payload cannot be 1 byte")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !valid_close_status(code) {
                return Err(protocol(format!("invalid close status code {code}")));
            }
            let body = &payload[2..];
            Ok(Some(match std::str::from_utf8(body) {
                Ok(text) => close_frame(code, text),
                Err(_) => close_frame(status::INVALID_PAYLOAD, "invalid utf8 body in close frame"),
            }))
        }
    }
}

fn valid_close_status(code: u16) -> bool {
    !matches!(code, 1004..=1006 | status::TLS_HANDSHAKE) && (1000..5000).contains(&code) && !(1016..=2999).contains(&code)
}

fn header_size(b1: u8) -> usize {
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & MASK != 0 { 4 } else { 0 }
}

fn opcode(bits: u8) -> Option<OpCode> {
    Some(match bits {
        0 => OpCode::Continuation,
        1 => OpCode::Text,
        2 => OpCode::Binary,
        8 => OpCode::Close,
        9 => OpCode::Ping,
        10 => OpCode::Pong,
        _ => return None,
    })
}

/// Inflates a raw deflate stream, refusing more than `max` bytes out.
fn inflate(data: &[u8], max: usize) -> Result<Vec<u8>, FrameError> {
    let mut d = Decompress::new(false);
    let mut out = Vec::with_capacity(data.len().saturating_mul(2).min(max.saturating_add(1)).max(64));
    loop {
        if out.len() == out.capacity() {
            if out.len() > max {
                return Err(FrameError::TooBig);
            }
            out.reserve((out.len()).clamp(64, max.saturating_add(1).saturating_sub(out.len()).max(64)));
        }
        let consumed = usize::try_from(d.total_in()).unwrap_or(usize::MAX);
        let before = out.len();
        let status = d
            .decompress_vec(&data[consumed.min(data.len())..], &mut out, FlushDecompress::Sync)
            .map_err(|e| FrameError::Inflate(e.to_string()))?;
        if out.len() > max {
            return Err(FrameError::TooBig);
        }
        let done = usize::try_from(d.total_in()).unwrap_or(usize::MAX) >= data.len();
        match status {
            Status::StreamEnd => return Ok(out),
            _ if done && out.len() < out.capacity() => return Ok(out),
            Status::BufError if out.len() == before && out.len() < out.capacity() => {
                return Err(FrameError::Inflate("truncated stream".to_owned()))
            }
            _ => {}
        }
    }
}

/// Writes the frame header of a final `op` frame of `len` bytes (server
/// frames are never masked); returns its length.
pub fn frame_header(out: &mut [u8; 10], op: OpCode, compressed: bool, len: usize) -> usize {
    frame_header_with(out, op as u8, true, compressed, len)
}

fn frame_header_with(out: &mut [u8; 10], op_bits: u8, final_frame: bool, compressed: bool, len: usize) -> usize {
    out[0] = op_bits | if final_frame { FIN } else { 0 } | if compressed { RSV1 } else { 0 };
    if len <= MAX_CONTROL_PAYLOAD {
        out[1] = len as u8;
        2
    } else if let Ok(len) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

/// A close frame with a status and a reason, the reason cut to fit a
/// control frame with "..." as nats-server cuts it.
pub fn close_frame(code: u16, reason: &str) -> Bytes {
    let mut body = reason;
    let mut ellipsis = "";
    if body.len() > MAX_CONTROL_PAYLOAD - 2 {
        let mut end = MAX_CONTROL_PAYLOAD - 5;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body = &body[..end];
        ellipsis = "...";
    }
    let payload_len = 2 + body.len() + ellipsis.len();
    let mut header = [0u8; 10];
    let n = frame_header(&mut header, OpCode::Close, false, payload_len);
    let mut out = Vec::with_capacity(n + payload_len);
    out.extend_from_slice(&header[..n]);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(body.as_bytes());
    out.extend_from_slice(ellipsis.as_bytes());
    Bytes::from(out)
}

/// A control frame (pong) with `payload` (at most 125 bytes: a ping's).
pub fn control_frame(op: OpCode, payload: &[u8]) -> Bytes {
    let payload = &payload[..payload.len().min(MAX_CONTROL_PAYLOAD)];
    let mut header = [0u8; 10];
    let n = frame_header(&mut header, op, false, payload.len());
    let mut out = Vec::with_capacity(n + payload.len());
    out.extend_from_slice(&header[..n]);
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// Frames the server's outbound NATS bytes.
pub struct FrameWriter {
    compressor: Option<Compress>,
    browser: bool,
}

impl std::fmt::Debug for FrameWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameWriter").field("compress", &self.compressor.is_some()).field("browser", &self.browser).finish()
    }
}

impl FrameWriter {
    /// A writer; `compress` when permessage-deflate was negotiated, `browser`
    /// to keep uncompressed frames to [`BROWSER_FRAME_SIZE`].
    pub fn new(compress: bool, browser: bool) -> Self {
        FrameWriter { compressor: compress.then(|| Compress::new(Compression::default(), false)), browser }
    }

    /// Replaces `batch` (NATS bytes) with the frames carrying it: headers
    /// interleaved with the untouched payloads, or one compressed message
    /// when compression is on and the batch is worth it.
    pub fn frame(&mut self, batch: &mut Vec<Bytes>) {
        let total: usize = batch.iter().map(Bytes::len).sum();
        if total == 0 {
            batch.clear();
            return;
        }
        if let Some(c) = self.compressor.as_mut().filter(|_| total > COMPRESS_THRESHOLD) {
            let compressed = deflate(c, batch, total);
            let mut header = [0u8; 10];
            let n = frame_header(&mut header, OpCode::Binary, true, compressed.len());
            batch.clear();
            batch.push(Bytes::copy_from_slice(&header[..n]));
            batch.push(compressed);
            return;
        }
        let limit = if self.browser { BROWSER_FRAME_SIZE } else { usize::MAX };
        let parts = std::mem::take(batch);
        for mut part in parts {
            while !part.is_empty() {
                let piece = part.split_to(part.len().min(limit));
                let mut header = [0u8; 10];
                let n = frame_header(&mut header, OpCode::Binary, false, piece.len());
                batch.push(Bytes::copy_from_slice(&header[..n]));
                batch.push(piece);
            }
        }
    }
}

/// One deflated message without context takeover, its sync tail stripped.
fn deflate(c: &mut Compress, parts: &[Bytes], total: usize) -> Bytes {
    c.reset();
    let mut out = Vec::with_capacity(total / 2 + 64);
    for part in parts {
        let mut input: &[u8] = part;
        while !input.is_empty() {
            out.reserve(input.len() / 2 + 64);
            let before = c.total_in();
            // Compressing into a Vec with room only fails on a full buffer, retried here.
            let _ = c.compress_vec(input, &mut out, FlushCompress::None);
            let used = usize::try_from(c.total_in() - before).unwrap_or(input.len());
            input = &input[used.min(input.len())..];
        }
    }
    loop {
        out.reserve(64);
        let _ = c.compress_vec(&[], &mut out, FlushCompress::Sync);
        if out.len() < out.capacity() {
            break;
        }
    }
    if out.ends_with(&[0x00, 0x00, 0xff, 0xff]) {
        out.truncate(out.len() - 4);
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: masked with a fixed key.
    fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        let key = [1u8, 2, 3, 4];
        let mut out = vec![b0];
        match payload.len() {
            n if n <= 125 => out.push(MASK | n as u8),
            n if n < 65536 => {
                out.push(MASK | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(MASK | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
        out
    }

    fn read_all(reader: &mut FrameReader, input: &[u8], split: usize) -> Result<(Vec<u8>, Vec<Event>), FrameError> {
        let mut data = Vec::new();
        let mut others = Vec::new();
        for chunk in input.chunks(split.max(1)) {
            let mut out = Vec::new();
            reader.read(BytesMut::from(chunk), &mut out)?;
            for e in out {
                match e {
                    Event::Data(b) => data.extend_from_slice(&b),
                    e => others.push(e),
                }
            }
        }
        Ok((data, others))
    }

    #[test]
    fn reads_masked_frames_split_anywhere() {
        let mut input = client_frame(FIN | 2, b"PUB a 2\r\nhi\r\n");
        input.extend(client_frame(2, &[b'x'; 300]));
        input.extend(client_frame(FIN | 9, b"p"));
        input.extend(client_frame(FIN, &[b'y'; 70000]));
        for split in [1, 3, 7, 64, 100_000] {
            let (data, others) = read_all(&mut FrameReader::new(false, 1 << 20), &input, split).unwrap();
            let mut expected = b"PUB a 2\r\nhi\r\n".to_vec();
            expected.extend([b'x'; 300]);
            expected.extend([b'y'; 70000]);
            assert_eq!(data, expected, "split {split}");
            assert_eq!(others, vec![Event::Ping(Bytes::from_static(b"p"))]);
        }
    }

    #[test]
    fn refuses_what_nats_server_refuses() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![FIN | 2, 1, b'x'], "mask bit missing"),
            (client_frame(FIN | RSV1 | 2, b"x"), "compressed frame received without negotiated permessage-deflate"),
            (client_frame(FIN | 0x20 | 2, b"x"), "RSV2 and RSV3 must be clear"),
            (client_frame(9, b"x"), "control frame does not have final bit set"),
            (client_frame(FIN | 9, &[0; 126]), "control frame length bigger than maximum allowed of 125 bytes"),
            (client_frame(FIN, b"x"), "invalid continuation frame"),
            (client_frame(FIN | 3, b"x"), "unknown opcode 3"),
            (client_frame(FIN | 8, b"x"), "close frame payload cannot be 1 byte"),
            (client_frame(FIN | 8, &1005u16.to_be_bytes()), "invalid close status code 1005"),
            ([client_frame(2, b"x"), client_frame(FIN | 2, b"y")].concat(), "new message started before final frame"),
            (vec![FIN | 2, MASK | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4], "invalid 64-bit payload length"),
        ];
        for (input, expected) in cases {
            let err = read_all(&mut FrameReader::new(false, 1 << 20), &input, 1000).unwrap_err();
            assert!(err.to_string().starts_with(expected), "{err} vs {expected}");
            assert_eq!(&err.close_frame()[2..4], &1002u16.to_be_bytes());
        }
    }

    #[test]
    fn echoes_close_frames() {
        let mut close = 1000u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"bye");
        let (_, events) = read_all(&mut FrameReader::new(false, 1024), &client_frame(FIN | 8, &close), 5).unwrap();
        assert_eq!(events, vec![Event::Close(Some(close_frame(1000, "bye")))]);
        let (_, events) = read_all(&mut FrameReader::new(false, 1024), &client_frame(FIN | 8, b""), 5).unwrap();
        assert_eq!(events, vec![Event::Close(None)]);
        let long = close_frame(1002, &"e".repeat(200));
        assert_eq!(long.len(), 2 + 125);
        assert!(long.ends_with(b"..."));
    }

    #[test]
    fn compressed_messages_round_trip() {
        let text = b"PUB subject 30\r\n012345678901234567890123456789\r\n".repeat(50);
        let mut writer = FrameWriter::new(true, false);
        let mut batch = vec![Bytes::from(text.clone())];
        writer.frame(&mut batch);
        assert_eq!(batch[0][0], FIN | RSV1 | 2);
        let compressed = batch[1].clone();
        assert!(compressed.len() < text.len() / 4);
        // Sent back by a client in two fragments.
        let (a, b) = compressed.split_at(compressed.len() / 2);
        let input = [client_frame(RSV1 | 2, a), client_frame(FIN, b)].concat();
        for split in [1, 13, 10_000] {
            let (data, _) = read_all(&mut FrameReader::new(true, 1 << 20), &input, split).unwrap();
            assert_eq!(data, text);
        }
        // Small batches are not worth compressing.
        let mut small = vec![Bytes::from_static(b"PONG\r\n")];
        writer.frame(&mut small);
        assert_eq!(&small[0][..], &[FIN | 2, 6]);
    }

    #[test]
    fn compressed_messages_are_bounded() {
        let big = vec![b'a'; 100_000];
        let mut batch = vec![Bytes::from(big)];
        FrameWriter::new(true, false).frame(&mut batch);
        let input = client_frame(FIN | RSV1 | 2, &batch[1]);
        let err = read_all(&mut FrameReader::new(true, 1000), &input, 10_000).unwrap_err();
        assert_eq!(err, FrameError::TooBig);
        let err = read_all(&mut FrameReader::new(true, 1 << 20), &client_frame(FIN | RSV1 | 2, b"\xff\xff\xff"), 100);
        assert!(matches!(err, Err(FrameError::Inflate(_))), "{err:?}");
    }

    #[test]
    fn frames_outbound_bytes() {
        let mut batch = vec![Bytes::from(vec![b'z'; 300]), Bytes::from_static(b"+OK\r\n")];
        FrameWriter::new(false, false).frame(&mut batch);
        assert_eq!(batch.len(), 4);
        assert_eq!(&batch[0][..], &[FIN | 2, 126, 1, 44]);
        assert_eq!(&batch[2][..], &[FIN | 2, 5]);
        let mut batch = vec![Bytes::from(vec![b'z'; 10_000])];
        FrameWriter::new(false, true).frame(&mut batch);
        assert_eq!(batch.len(), 6);
    }
}
