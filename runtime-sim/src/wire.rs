//! The client side of the NATS wire protocol, written independently of the
//! core's parser and encoder so that the simulated clients check them rather
//! than share their bugs.

use bytes::{BufMut, Bytes, BytesMut};

/// Longest control line the client accepts from a server before calling it garbage.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// Encodes client operations.
pub mod encode {
    use super::*;

    /// `CONNECT` as the simulated clients send it: no echo suppression,
    /// headers and no-responders on, so requests without responders get a 503.
    pub fn connect(out: &mut BytesMut, name: &str) {
        out.put_slice(
            b"CONNECT {\"verbose\":false,\"pedantic\":false,\"lang\":\"sim\",\"version\":\"0\",",
        );
        out.put_slice(
            b"\"protocol\":1,\"headers\":true,\"no_responders\":true,\"echo\":true,\"name\":\"",
        );
        out.put_slice(name.as_bytes());
        out.put_slice(b"\"}\r\n");
    }

    /// `SUB subject [queue] sid`.
    pub fn sub(out: &mut BytesMut, subject: &str, queue: Option<&str>, sid: u64) {
        out.put_slice(b"SUB ");
        out.put_slice(subject.as_bytes());
        if let Some(q) = queue {
            out.put_u8(b' ');
            out.put_slice(q.as_bytes());
        }
        out.put_slice(format!(" {sid}\r\n").as_bytes());
    }

    /// `UNSUB sid`.
    pub fn unsub(out: &mut BytesMut, sid: u64) {
        out.put_slice(format!("UNSUB {sid}\r\n").as_bytes());
    }

    /// `PUB`, or `HPUB` when `headers` is given (the full header block).
    pub fn publish(
        out: &mut BytesMut,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&[u8]>,
        payload: &[u8],
    ) {
        out.put_slice(if headers.is_some() { b"HPUB " } else { b"PUB " });
        out.put_slice(subject.as_bytes());
        if let Some(r) = reply {
            out.put_u8(b' ');
            out.put_slice(r.as_bytes());
        }
        match headers {
            Some(h) => {
                let line = format!(" {} {}\r\n", h.len(), h.len() + payload.len());
                out.put_slice(line.as_bytes());
                out.put_slice(h);
            }
            None => out.put_slice(format!(" {}\r\n", payload.len()).as_bytes()),
        }
        out.put_slice(payload);
        out.put_slice(b"\r\n");
    }

    /// `PING`.
    pub fn ping(out: &mut BytesMut) {
        out.put_slice(b"PING\r\n");
    }

    /// `PONG`.
    pub fn pong(out: &mut BytesMut) {
        out.put_slice(b"PONG\r\n");
    }
}

/// One operation sent by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerOp {
    /// `INFO {json}`.
    Info(Bytes),
    /// `MSG` or `HMSG`.
    Msg(Delivery),
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `+OK`.
    Ok,
    /// `-ERR 'text'`.
    Err(Bytes),
}

/// A message delivered to a subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The subject it was published to.
    pub subject: Bytes,
    /// The subscription it matched.
    pub sid: u64,
    /// Reply subject.
    pub reply: Option<Bytes>,
    /// `HMSG` only: the header block.
    pub headers: Option<Bytes>,
    /// The payload.
    pub payload: Bytes,
}

/// The server sent something the protocol does not allow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError(pub String);

/// Splits the server's byte stream into operations, whatever the chunking.
#[derive(Debug, Default)]
pub struct ServerParser {
    buf: BytesMut,
}

impl ServerParser {
    /// An empty parser.
    pub fn new() -> Self {
        ServerParser::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes received but not yet parsed into a whole operation.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole operation and its raw bytes, if one has fully arrived.
    pub fn next_frame(&mut self) -> Result<Option<(ServerOp, Bytes)>, WireError> {
        let Some(eol) = find_crlf(&self.buf) else {
            if self.buf.len() > MAX_LINE_BYTES {
                return Err(WireError(format!(
                    "control line over {MAX_LINE_BYTES} bytes"
                )));
            }
            return Ok(None);
        };
        let line = &self.buf[..eol];
        let (verb, args) = split_verb(line);
        let body_len = match verb.to_ascii_uppercase().as_slice() {
            b"MSG" => Some(msg_sizes(args, false)?.1),
            b"HMSG" => Some(msg_sizes(args, true)?.1),
            _ => None,
        };
        let frame_len = match body_len {
            Some(n) => eol + 2 + n + 2,
            None => eol + 2,
        };
        if self.buf.len() < frame_len {
            return Ok(None);
        }
        let raw = self.buf.split_to(frame_len).freeze();
        let op = parse_frame(&raw, eol)?;
        Ok(Some((op, raw)))
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn split_verb(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &[]),
    }
}

fn fields(args: &[u8]) -> Vec<&[u8]> {
    args.split(|&b| b == b' ' || b == b'\t')
        .filter(|f| !f.is_empty())
        .collect()
}

fn number(field: &[u8]) -> Result<usize, WireError> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| WireError(format!("bad number {:?}", String::from_utf8_lossy(field))))
}

/// (header size, total size) of a `MSG`/`HMSG` control line's arguments.
fn msg_sizes(args: &[u8], headers: bool) -> Result<(usize, usize), WireError> {
    let f = fields(args);
    let expect = if headers { [4, 5] } else { [3, 4] };
    if !expect.contains(&f.len()) {
        return Err(WireError(format!(
            "MSG with {} fields: {:?}",
            f.len(),
            String::from_utf8_lossy(args)
        )));
    }
    let total = number(f[f.len() - 1])?;
    let hdr = if headers { number(f[f.len() - 2])? } else { 0 };
    if hdr > total {
        return Err(WireError("header size over total size".into()));
    }
    Ok((hdr, total))
}

fn parse_frame(raw: &Bytes, eol: usize) -> Result<ServerOp, WireError> {
    let (verb, args) = split_verb(&raw[..eol]);
    let args_at = eol - args.len();
    match verb.to_ascii_uppercase().as_slice() {
        b"INFO" => Ok(ServerOp::Info(raw.slice(args_at..eol))),
        b"PING" if args.is_empty() => Ok(ServerOp::Ping),
        b"PONG" if args.is_empty() => Ok(ServerOp::Pong),
        b"+OK" => Ok(ServerOp::Ok),
        b"-ERR" => Ok(ServerOp::Err(raw.slice(args_at..eol))),
        b"MSG" => parse_msg(raw, eol, args, false),
        b"HMSG" => parse_msg(raw, eol, args, true),
        _ => Err(WireError(format!(
            "unknown operation {:?}",
            String::from_utf8_lossy(&raw[..eol])
        ))),
    }
}

fn parse_msg(raw: &Bytes, eol: usize, args: &[u8], headers: bool) -> Result<ServerOp, WireError> {
    let (hdr, total) = msg_sizes(args, headers)?;
    let f = fields(args);
    let body = eol + 2;
    if &raw[body + total..] != b"\r\n" {
        return Err(WireError("message body not followed by CRLF".into()));
    }
    let sid = std::str::from_utf8(f[1]).ok().and_then(|s| s.parse().ok());
    let sid =
        sid.ok_or_else(|| WireError(format!("bad sid {:?}", String::from_utf8_lossy(f[1]))))?;
    let has_reply = f.len() == if headers { 5 } else { 4 };
    let slice_of = |field: &[u8]| raw.slice_ref(field);
    Ok(ServerOp::Msg(Delivery {
        subject: slice_of(f[0]),
        sid,
        reply: has_reply.then(|| slice_of(f[2])),
        headers: headers.then(|| raw.slice(body..body + hdr)),
        payload: raw.slice(body + hdr..body + total),
    }))
}

/// The status code of an `HMSG` header block (`NATS/1.0 503` gives 503).
pub fn status(headers: &[u8]) -> Option<u16> {
    let line = headers.split(|&b| b == b'\r').next()?;
    let rest = line.strip_prefix(b"NATS/1.0")?;
    let code = std::str::from_utf8(rest).ok()?.split_whitespace().next()?;
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_ops(stream: &[u8], chunk: usize) -> Vec<ServerOp> {
        let mut p = ServerParser::new();
        let mut ops = Vec::new();
        for c in stream.chunks(chunk) {
            p.push(c);
            while let Some((op, _)) = p.next_frame().unwrap() {
                ops.push(op);
            }
        }
        assert_eq!(p.buffered(), 0);
        ops
    }

    #[test]
    fn parses_every_server_op_at_every_split() {
        let stream: &[u8] = b"INFO {\"a\":1} \r\nPING\r\nMSG a.b 1 5\r\nhello\r\nMSG a.b 22 r.x 0\r\n\r\n\
HMSG _INBOX.a.1 8 37 37\r\nNATS/1.0 503\r\nNats-Subject: req.x\r\n\r\n\r\nPONG\r\n+OK\r\n-ERR 'Stale Connection'\r\n";
        let whole = all_ops(stream, stream.len());
        assert_eq!(whole.len(), 8);
        for chunk in 1..stream.len() {
            assert_eq!(all_ops(stream, chunk), whole, "chunk {chunk}");
        }
        let ServerOp::Msg(m) = &whole[3] else {
            panic!()
        };
        assert_eq!(
            (m.sid, m.reply.as_deref(), &m.payload[..]),
            (22, Some(&b"r.x"[..]), &b""[..])
        );
        let ServerOp::Msg(h) = &whole[4] else {
            panic!()
        };
        assert_eq!(status(h.headers.as_ref().unwrap()), Some(503));
        assert!(h.payload.is_empty());
    }

    #[test]
    fn payload_may_contain_crlf() {
        let ops = all_ops(b"MSG s 1 4\r\n\r\n\r\n\r\n", 3);
        let ServerOp::Msg(m) = &ops[0] else { panic!() };
        assert_eq!(&m.payload[..], b"\r\n\r\n");
    }

    #[test]
    fn garbage_is_an_error() {
        let mut p = ServerParser::new();
        p.push(b"MSG a b c d e f\r\n");
        assert!(p.next_frame().is_err());
        let mut p = ServerParser::new();
        p.push(b"MSG a 1 2\r\nabXY");
        assert!(p.next_frame().is_err());
        let mut p = ServerParser::new();
        p.push(b"WHAT\r\n");
        assert!(p.next_frame().is_err());
    }

    #[test]
    fn encoder_output_is_well_formed() {
        let mut out = BytesMut::new();
        encode::sub(&mut out, "a.*", Some("q"), 3);
        encode::publish(
            &mut out,
            "a.b",
            Some("r"),
            Some(b"NATS/1.0\r\nX: 1\r\n\r\n"),
            b"hi",
        );
        encode::publish(&mut out, "a.b", None, None, b"");
        assert_eq!(
            &out[..],
            b"SUB a.* q 3\r\nHPUB a.b r 18 20\r\nNATS/1.0\r\nX: 1\r\n\r\nhi\r\nPUB a.b 0\r\n\r\n"
        );
    }
}
