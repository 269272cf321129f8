//! The NATS protocol as a client reads it, for the MQTT session's side of
//! its NATS connection: what the core writes to the connection's outbox
//! (`INFO`, `MSG`, `HMSG`, `PING`, `PONG`, `+OK`, `-ERR`), split anywhere.
//! Only the core writes these bytes, so a line the reader does not know is
//! skipped rather than trusted.

use bytes::{Buf, Bytes, BytesMut};

/// A message delivered to one of the session's subscriptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    /// The subject it was published to.
    pub subject: String,
    /// The subscription id.
    pub sid: u64,
    /// The reply subject, if any.
    pub reply: Option<String>,
    /// The header block (`NATS/1.0…\r\n\r\n`), empty without headers.
    pub headers: Bytes,
    /// The payload.
    pub payload: Bytes,
}

/// What the core said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A message.
    Msg(Msg),
    /// A PING to answer.
    Ping,
    /// The PONG answering the session's PING.
    Pong,
    /// `-ERR 'text'`.
    Err(String),
}

/// Reads the core's bytes into [`Event`]s.
#[derive(Debug, Default)]
pub struct Reader {
    buf: BytesMut,
}

impl Reader {
    /// Appends bytes from the outbox.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event, if any.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let end = memchr::memmem::find(&self.buf, b"\r\n")?;
            let line = std::str::from_utf8(&self.buf[..end]).unwrap_or("").to_owned();
            let mut words = line.split(' ').filter(|w| !w.is_empty());
            let op = words.next().unwrap_or("").to_ascii_uppercase();
            let args: Vec<&str> = words.collect();
            match op.as_str() {
                "MSG" | "HMSG" => {
                    let headers = op == "HMSG";
                    let msg = self.message(end, headers, &args)?;
                    match msg {
                        Some(m) => return Some(Event::Msg(m)),
                        None => continue,
                    }
                }
                "PING" => {
                    self.buf.advance(end + 2);
                    return Some(Event::Ping);
                }
                "PONG" => {
                    self.buf.advance(end + 2);
                    return Some(Event::Pong);
                }
                "-ERR" => {
                    self.buf.advance(end + 2);
                    let text = line[4..].trim().trim_matches('\'').to_owned();
                    return Some(Event::Err(text));
                }
                _ => self.buf.advance(end + 2),
            }
        }
    }

    /// A message whose control line ends at `end`: `None` while its body is
    /// incomplete, `Some(None)` when the line was malformed and skipped.
    fn message(&mut self, end: usize, headers: bool, args: &[&str]) -> Option<Option<Msg>> {
        let sizes = usize::from(headers) + 1;
        let parsed = (args.len() == 2 + sizes || args.len() == 3 + sizes)
            .then(|| {
                let n = args.len();
                let total: usize = args[n - 1].parse().ok()?;
                let hdr: usize = if headers { args[n - 2].parse().ok()? } else { 0 };
                let sid: u64 = args[1].parse().ok()?;
                let reply = (n == 3 + sizes).then(|| args[2].to_owned());
                (hdr <= total).then(|| (args[0].to_owned(), sid, reply, hdr, total))
            })
            .flatten();
        let Some((subject, sid, reply, hdr, total)) = parsed else {
            self.buf.advance(end + 2);
            return Some(None);
        };
        if self.buf.len() < end + 2 + total + 2 {
            return None;
        }
        self.buf.advance(end + 2);
        let mut body = self.buf.split_to(total).freeze();
        self.buf.advance(2);
        let headers = body.split_to(hdr);
        Some(Some(Msg { subject, sid, reply, headers, payload: body }))
    }
}

/// The value of header `name` in a `NATS/1.0` header block.
pub fn header<'a>(block: &'a [u8], name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(block).ok()?;
    text.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The status code of a header block (`NATS/1.0 404 …`), if any.
pub fn status(block: &[u8]) -> Option<u16> {
    let line = block.split(|&b| b == b'\r').next()?;
    std::str::from_utf8(line).ok()?.split(' ').nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_core_writes_in_any_split() {
        let wire = b"INFO {\"a\":1}\r\nPING\r\nMSG a.b 3 5\r\nhello\r\nHMSG x 4 r.1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n-ERR 'Authorization Violation'\r\nPONG\r\n";
        for chunk in [1, 3, 200] {
            let mut r = Reader::default();
            let mut events = Vec::new();
            for part in wire.chunks(chunk) {
                r.extend(part);
                while let Some(e) = r.next_event() {
                    events.push(e);
                }
            }
            assert_eq!(events.len(), 5, "{events:?}");
            assert_eq!(events[0], Event::Ping);
            let Event::Msg(m) = &events[1] else { panic!() };
            assert_eq!((m.subject.as_str(), m.sid, &m.payload[..]), ("a.b", 3, &b"hello"[..]));
            let Event::Msg(m) = &events[2] else { panic!() };
            assert_eq!((m.reply.as_deref(), &m.headers[..], &m.payload[..]), (Some("r.1"), &b"NATS/1.0\r\n\r\n"[..], &b"hi"[..]));
            assert_eq!(events[3], Event::Err("Authorization Violation".into()));
            assert_eq!(events[4], Event::Pong);
        }
    }

    #[test]
    fn headers_and_statuses_are_read() {
        let block = b"NATS/1.0 404 No Messages\r\nNmqtt-Pub: 1\r\n\r\n";
        assert_eq!(header(block, "nmqtt-pub"), Some("1"));
        assert_eq!(status(block), Some(404));
        assert_eq!(status(b"NATS/1.0\r\n\r\n"), None);
    }
}
