//! A minimal NATS client connection over `std::net`: enough of the wire
//! protocol to drive a server hard (PUB, SUB, UNSUB, PING/PONG, MSG, HMSG)
//! without a client library in the hot loop.
//!
//! One thread owns one `Conn` and both reads and writes through it. Writes go
//! into a buffer that is flushed before the thread blocks on a read, so a
//! publisher batches thousands of messages per syscall and a responder
//! answers a whole read's worth of requests in one write.

use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// How many bytes one read asks the kernel for; also the write buffer size.
const IO_CHUNK_BYTES: usize = 64 * 1024;

/// An event read from the server. Slices borrow the connection's buffer and
/// live until the next call that reads.
#[derive(Debug)]
pub enum Event<'a> {
    /// `MSG` or `HMSG`.
    Msg(Msg<'a>),
    /// `PONG` (the reply to one of our `PING`s).
    Pong,
    /// `-ERR '...'`: the text inside the quotes.
    Err(&'a str),
    /// The read timeout set with [`Conn::set_read_timeout`] expired.
    Timeout,
}

/// A delivered message.
#[derive(Debug)]
pub struct Msg<'a> {
    /// Subject the message was published to.
    pub subject: &'a [u8],
    /// Reply subject, if any.
    pub reply: Option<&'a [u8]>,
    /// `HMSG` only: the header block (`NATS/1.0 ...` through the blank line).
    pub headers: Option<&'a [u8]>,
    /// The payload.
    pub payload: &'a [u8],
}

impl Msg<'_> {
    /// The status code of a header-only status message (`NATS/1.0 408 ...`),
    /// as JetStream sends for pull requests that end without messages.
    pub fn status(&self) -> Option<u16> {
        let headers = self.headers?;
        let line = headers.split(|&b| b == b'\r').next()?;
        let code = line.strip_prefix(b"NATS/1.0 ")?.get(..3)?;
        std::str::from_utf8(code).ok()?.parse().ok()
    }
}

/// Where a parsed operation lies in the read buffer (positions, so the
/// borrow of the buffer starts only once parsing is done).
enum Raw {
    Msg {
        subject: (usize, usize),
        reply: Option<(usize, usize)>,
        headers: Option<(usize, usize)>,
        payload: (usize, usize),
    },
    Ping,
    Pong,
    Ok,
    Info,
    Err((usize, usize)),
}

/// One client connection.
pub struct Conn {
    stream: Arc<TcpStream>,
    writer: BufWriter<Writes>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_payload: usize,
}

/// The write half of a connection: the same socket as the read half, so a
/// connection costs one file descriptor (10,000 of them fit a 20,000 limit).
struct Writes(Arc<TcpStream>);

impl Write for Writes {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        (&*self.0).write(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
    }
}

/// Options sent in `CONNECT`.
const CONNECT_LINE: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true,\"lang\":\"rust\",\"version\":\"natrix-bench\",\"protocol\":1,\"name\":\"natrix-bench\"}\r\n";

impl Conn {
    /// Connects to `addr` (`host:port`), reads `INFO`, sends `CONNECT` and
    /// waits for the `PONG` that proves the server accepted it.
    pub fn connect(addr: &str) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let stream = Arc::new(stream);
        let writer = BufWriter::with_capacity(IO_CHUNK_BYTES, Writes(Arc::clone(&stream)));
        let mut conn = Conn {
            stream,
            writer,
            buf: vec![0; IO_CHUNK_BYTES * 2],
            start: 0,
            end: 0,
            max_payload: 1024 * 1024,
        };
        conn.read_info()?;
        conn.writer.write_all(CONNECT_LINE)?;
        conn.wait_pong()?;
        Ok(conn)
    }

    fn read_info(&mut self) -> io::Result<()> {
        loop {
            if let Some(nl) = self.buf[self.start..self.end]
                .iter()
                .position(|&b| b == b'\n')
            {
                let line = &self.buf[self.start..self.start + nl];
                if !line.starts_with(b"INFO ") {
                    return Err(proto_err(format!("expected INFO, got {:?}", lossy(line))));
                }
                if let Ok(info) = serde_json::from_slice::<serde_json::Value>(&line[5..]) {
                    if let Some(mp) = info.get("max_payload").and_then(|v| v.as_u64()) {
                        self.max_payload = mp as usize;
                    }
                }
                self.start += nl + 1;
                return Ok(());
            }
            if self.read_more()? == 0 {
                return Err(closed());
            }
        }
    }

    /// The server's advertised `max_payload`.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Sets a read timeout: `next_event` returns [`Event::Timeout`] when it expires.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    /// Queues raw protocol bytes.
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Queues `SUB subject [queue] sid`.
    pub fn sub(&mut self, subject: &str, queue: Option<&str>, sid: u64) -> io::Result<()> {
        match queue {
            Some(q) => write!(self.writer, "SUB {subject} {q} {sid}\r\n"),
            None => write!(self.writer, "SUB {subject} {sid}\r\n"),
        }
    }

    /// Queues `PUB subject [reply] len` and the payload.
    pub fn publish(
        &mut self,
        subject: &[u8],
        reply: Option<&[u8]>,
        payload: &[u8],
    ) -> io::Result<()> {
        let w = &mut self.writer;
        w.write_all(b"PUB ")?;
        w.write_all(subject)?;
        w.write_all(b" ")?;
        if let Some(r) = reply {
            w.write_all(r)?;
            w.write_all(b" ")?;
        }
        write_decimal(w, payload.len() as u64)?;
        w.write_all(b"\r\n")?;
        w.write_all(payload)?;
        w.write_all(b"\r\n")
    }

    /// Sends `PING` and reads until its `PONG`: a barrier proving the server
    /// processed everything sent before. Messages read meanwhile are dropped,
    /// so call it only where none are expected.
    pub fn wait_pong(&mut self) -> io::Result<()> {
        self.writer.write_all(b"PING\r\n")?;
        loop {
            match self.next_event()? {
                Event::Pong => return Ok(()),
                Event::Err(e) => return Err(proto_err(format!("server error: -ERR '{e}'"))),
                Event::Msg(_) | Event::Timeout => {}
            }
        }
    }

    /// Sends a request and returns the first reply on `inbox` (which the
    /// caller subscribed), ignoring other messages.
    pub fn request(&mut self, subject: &str, inbox: &str, payload: &[u8]) -> io::Result<Vec<u8>> {
        self.publish(subject.as_bytes(), Some(inbox.as_bytes()), payload)?;
        loop {
            match self.next_event()? {
                Event::Msg(m) if m.subject == inbox.as_bytes() => {
                    if m.status() == Some(503) {
                        return Err(proto_err(format!("no responders for {subject}")));
                    }
                    return Ok(m.payload.to_vec());
                }
                Event::Err(e) => return Err(proto_err(format!("server error: -ERR '{e}'"))),
                Event::Timeout => return Err(proto_err(format!("request to {subject} timed out"))),
                _ => {}
            }
        }
    }

    /// Reads the next event. Flushes queued writes before blocking, answers
    /// server `PING`s, and skips `+OK` and `INFO`.
    pub fn next_event(&mut self) -> io::Result<Event<'_>> {
        let raw = loop {
            match self.parse_one()? {
                Some(Raw::Ping) => self.writer.write_all(b"PONG\r\n")?,
                Some(Raw::Ok) | Some(Raw::Info) => {}
                Some(raw) => break raw,
                None => {
                    self.writer.flush()?;
                    match self.read_more() {
                        Ok(0) => return Err(closed()),
                        Ok(_) => {}
                        Err(e) if is_timeout(&e) => return Ok(Event::Timeout),
                        Err(e) => return Err(e),
                    }
                }
            }
        };
        Ok(self.materialize(raw))
    }

    /// Closes both directions.
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    fn materialize(&self, raw: Raw) -> Event<'_> {
        let s = |(a, b): (usize, usize)| &self.buf[a..b];
        match raw {
            Raw::Msg {
                subject,
                reply,
                headers,
                payload,
            } => Event::Msg(Msg {
                subject: s(subject),
                reply: reply.map(s),
                headers: headers.map(s),
                payload: s(payload),
            }),
            Raw::Pong => Event::Pong,
            Raw::Err(r) => Event::Err(std::str::from_utf8(s(r)).unwrap_or("?")),
            Raw::Ping | Raw::Ok | Raw::Info => unreachable!("handled in next_event"),
        }
    }

    /// Reads into the free tail of the buffer, compacting or growing it first.
    fn read_more(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.len() - self.end < IO_CHUNK_BYTES {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            // A message larger than the buffer needs room for all of it.
            if self.buf.len() - self.end < IO_CHUNK_BYTES {
                self.buf.resize(self.end + IO_CHUNK_BYTES, 0);
            }
        }
        let n = (&*self.stream).read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Parses one operation from the buffer, or returns `None` when more
    /// bytes are needed.
    fn parse_one(&mut self) -> io::Result<Option<Raw>> {
        let avail = &self.buf[self.start..self.end];
        let Some(nl) = avail.iter().position(|&b| b == b'\n') else {
            if avail.len() > 4096 {
                return Err(proto_err("control line longer than 4096 bytes".into()));
            }
            return Ok(None);
        };
        let line_end = if nl > 0 && avail[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        let base = self.start;
        let line = &avail[..line_end];
        let after_line = base + nl + 1;
        let raw = if line.starts_with(b"MSG ") || line.starts_with(b"HMSG ") {
            let Some((raw, total)) = parse_msg_line(line, base, after_line)? else {
                return Ok(None);
            };
            // The payload and its CRLF must be buffered too.
            if self.end < after_line + total + 2 {
                return Ok(None);
            }
            self.start = after_line + total + 2;
            return Ok(Some(raw));
        } else if line == b"PING" {
            Raw::Ping
        } else if line == b"PONG" {
            Raw::Pong
        } else if line == b"+OK" {
            Raw::Ok
        } else if line.starts_with(b"INFO ") {
            Raw::Info
        } else if let Some(rest) = line.strip_prefix(b"-ERR ") {
            let text = trim_quotes(rest);
            let off = base + (text.as_ptr() as usize - line.as_ptr() as usize);
            Raw::Err((off, off + text.len()))
        } else {
            return Err(proto_err(format!(
                "unexpected line from server: {:?}",
                lossy(line)
            )));
        };
        self.start = after_line;
        Ok(Some(raw))
    }
}

/// Splits a `MSG`/`HMSG` control line into positions; returns the raw op and
/// the total payload length (headers included).
fn parse_msg_line(line: &[u8], base: usize, body: usize) -> io::Result<Option<(Raw, usize)>> {
    let hmsg = line.starts_with(b"H");
    let mut fields: [(usize, usize); 6] = [(0, 0); 6];
    let mut n = 0;
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && line[i] == b' ' {
            i += 1;
        }
        let s = i;
        while i < line.len() && line[i] != b' ' {
            i += 1;
        }
        if s < i {
            if n == fields.len() {
                return Err(proto_err(format!("too many fields: {:?}", lossy(line))));
            }
            fields[n] = (s, i);
            n += 1;
        }
    }
    // MSG subj sid [reply] len  /  HMSG subj sid [reply] hlen tlen
    let fixed = if hmsg { 5 } else { 4 };
    if n != fixed && n != fixed + 1 {
        return Err(proto_err(format!("bad message line: {:?}", lossy(line))));
    }
    let num = |k: usize| -> io::Result<usize> {
        let (a, b) = fields[k];
        std::str::from_utf8(&line[a..b])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| proto_err(format!("bad size in {:?}", lossy(line))))
    };
    let abs = |(a, b): (usize, usize)| (base + a, base + b);
    let reply = (n == fixed + 1).then(|| abs(fields[3]));
    let total = num(n - 1)?;
    let hdr_len = if hmsg { num(n - 2)? } else { 0 };
    if hdr_len > total {
        return Err(proto_err(format!(
            "header size exceeds total: {:?}",
            lossy(line)
        )));
    }
    let raw = Raw::Msg {
        subject: abs(fields[1]),
        reply,
        headers: hmsg.then_some((body, body + hdr_len)),
        payload: (body + hdr_len, body + total),
    };
    Ok(Some((raw, total)))
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the server closed the connection (slow consumer, or an error)",
    )
}

fn trim_quotes(s: &[u8]) -> &[u8] {
    let s = s.strip_prefix(b"'").unwrap_or(s);
    s.strip_suffix(b"'").unwrap_or(s)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned()
}

/// A protocol-level failure, as an `io::Error` so callers use one `?`.
pub fn proto_err(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Writes `n` in decimal without going through `fmt`.
pub fn write_decimal(w: &mut impl Write, mut n: u64) -> io::Result<()> {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    w.write_all(&digits[i..])
}

/// Turns `nats://host:port`, `host:port` or `host` into `host:port`.
pub fn socket_addr(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let rest = rest
        .rsplit('@')
        .next()
        .unwrap_or(rest)
        .trim_end_matches('/');
    if rest.contains(':') {
        rest.to_string()
    } else {
        format!("{rest}:4222")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_msg_and_hmsg_lines() {
        let line = b"MSG a.b 7 _INBOX.x 5";
        let (raw, total) = parse_msg_line(line, 0, 100).unwrap().unwrap();
        assert_eq!(total, 5);
        let Raw::Msg {
            subject,
            reply,
            headers,
            payload,
        } = raw
        else {
            panic!()
        };
        assert_eq!(&line[subject.0..subject.1], b"a.b");
        assert_eq!(reply.map(|(a, b)| &line[a..b]), Some(&b"_INBOX.x"[..]));
        assert!(headers.is_none());
        assert_eq!(payload, (100, 105));

        let (raw, total) = parse_msg_line(b"HMSG a 1 12 20", 0, 50).unwrap().unwrap();
        assert_eq!(total, 20);
        let Raw::Msg {
            headers,
            payload,
            reply,
            ..
        } = raw
        else {
            panic!()
        };
        assert!(reply.is_none());
        assert_eq!(headers, Some((50, 62)));
        assert_eq!(payload, (62, 70));
        assert!(parse_msg_line(b"HMSG a 1 30 20", 0, 0).is_err());
        assert!(parse_msg_line(b"MSG a", 0, 0).is_err());
    }

    #[test]
    fn addresses_from_urls() {
        assert_eq!(socket_addr("nats://127.0.0.1:4333"), "127.0.0.1:4333");
        assert_eq!(socket_addr("nats://u:p@h:1/"), "h:1");
        assert_eq!(socket_addr("localhost"), "localhost:4222");
    }

    #[test]
    fn status_of_header_only_messages() {
        let m = Msg {
            subject: b"x",
            reply: None,
            headers: Some(b"NATS/1.0 408 Request Timeout\r\n\r\n"),
            payload: b"",
        };
        assert_eq!(m.status(), Some(408));
    }
}
