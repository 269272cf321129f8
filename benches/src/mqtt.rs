//! MQTT publish modes, `mqtt-qos0` and `mqtt-qos1`: publishers are MQTT
//! 3.1.1 clients on the server's MQTT listener (`--mqtt host:port`),
//! publishing to the topic of `--subject` (`natrix.bench` is the topic
//! `natrix/bench`); NATS subscribers receive every message and check it,
//! as in `pubsub`. At QoS 1 each publisher keeps `--window` PUBLISHes
//! awaiting their PUBACK (at most 65535, the packet ids there are).
//!
//! The client is a few packets written by hand over `std::net`, like the
//! NATS client of the other modes, so what is measured is the server.

use std::io::{BufWriter, Read, Write};
use std::net::TcpStream;
use std::sync::Barrier;
use std::time::Duration;

use crate::core_modes::Ctx;
use crate::opts::Mode;
use crate::payload::PayloadWriter;
use crate::tracker::share;

/// Messages between two updates of the shared progress counters.
const PROGRESS_BATCH: u64 = 1024;

/// One publisher: connects, publishes its share, and at QoS 0 ends with a
/// PINGREQ whose PINGRESP says the server read everything before it.
pub fn publisher(ctx: &Ctx, index: u32, barrier: &Barrier) -> Result<(), String> {
    let o = &ctx.opts;
    let err = |e: std::io::Error| format!("mqtt publisher {index}: {e}");
    let conn = Client::connect(&o.mqtt, &format!("natrix-bench-{}-{index}", std::process::id()));
    barrier.wait();
    let mut c = conn?;
    let topic = o.subject.replace('.', "/");
    let mut payloads = PayloadWriter::new(index, o.size);
    let n = share(o.msgs, o.pubs, index);
    let qos1 = o.mode == Mode::MqttQos1;
    let window = u64::from(o.window.min(u32::from(u16::MAX)));
    let mut acked = 0u64;
    for seq in 1..=n {
        let pi = if qos1 { ((seq - 1) % u64::from(u16::MAX)) as u16 + 1 } else { 0 };
        c.publish(&topic, pi, payloads.payload(seq)).map_err(err)?;
        if qos1 {
            while seq - acked >= window {
                c.flush().map_err(err)?;
                acked += c.wait_for(0x40).map_err(err)?;
            }
        }
        if seq % PROGRESS_BATCH == 0 {
            ctx.progress.add_published(PROGRESS_BATCH);
        }
    }
    c.flush().map_err(err)?;
    while qos1 && acked < n {
        acked += c.wait_for(0x40).map_err(err)?;
    }
    c.write(&[0xC0, 0]).map_err(err)?;
    c.flush().map_err(err)?;
    c.wait_for(0xD0).map_err(err)?;
    ctx.progress.add_published(n % PROGRESS_BATCH);
    let _ = c.write(&[0xE0, 0]).and_then(|()| c.flush());
    Ok(())
}

/// A minimal MQTT 3.1.1 client connection.
struct Client {
    reader: TcpStream,
    writer: BufWriter<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: &str, client_id: &str) -> Result<Client, String> {
        let fail = |e: std::io::Error| format!("MQTT connect to {addr}: {e}");
        let stream = TcpStream::connect(addr).map_err(fail)?;
        stream.set_nodelay(true).map_err(fail)?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(fail)?;
        let mut c = Client {
            reader: stream.try_clone().map_err(fail)?,
            writer: BufWriter::with_capacity(64 * 1024, stream),
            buf: Vec::with_capacity(64 * 1024),
        };
        let mut body = Vec::new();
        put_str(&mut body, b"MQTT");
        body.extend_from_slice(&[4, 0x02, 0, 60]); // level 4, clean session, keep-alive 60 s
        put_str(&mut body, client_id.as_bytes());
        c.packet(0x10, &body).map_err(fail)?;
        c.flush().map_err(fail)?;
        let (first, rest) = c.next_packet().map_err(fail)?;
        if first != 0x20 || rest.get(1) != Some(&0) {
            return Err(format!("MQTT connect to {addr}: CONNACK {first:#x} {rest:?}"));
        }
        Ok(c)
    }

    fn publish(&mut self, topic: &str, pi: u16, payload: &[u8]) -> std::io::Result<()> {
        let mut head = Vec::with_capacity(topic.len() + 4);
        put_str(&mut head, topic.as_bytes());
        if pi != 0 {
            head.extend_from_slice(&pi.to_be_bytes());
        }
        let first = if pi != 0 { 0x32 } else { 0x30 };
        self.header(first, head.len() + payload.len())?;
        self.write(&head)?;
        self.write(payload)
    }

    fn packet(&mut self, first: u8, body: &[u8]) -> std::io::Result<()> {
        self.header(first, body.len())?;
        self.write(body)
    }

    fn header(&mut self, first: u8, mut len: usize) -> std::io::Result<()> {
        let mut out = [0u8; 5];
        out[0] = first;
        let mut i = 1;
        loop {
            let byte = (len % 128) as u8;
            len /= 128;
            out[i] = byte | if len > 0 { 0x80 } else { 0 };
            i += 1;
            if len == 0 {
                break;
            }
        }
        self.write(&out[..i])
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }

    /// Reads packets until at least one of type `first` came; returns how many.
    fn wait_for(&mut self, first: u8) -> std::io::Result<u64> {
        let mut n = 0;
        loop {
            let (got, _) = self.next_packet()?;
            if got & 0xF0 == first {
                n += 1;
            } else if got & 0xF0 != 0x30 {
                return Err(std::io::Error::other(format!("unexpected MQTT packet {got:#x}")));
            }
            if n > 0 && self.whole_packet().is_none() {
                return Ok(n);
            }
        }
    }

    /// The length of the whole packet at the front of the buffer, if there is one.
    fn whole_packet(&self) -> Option<(usize, usize)> {
        let mut len = 0usize;
        for i in 1..5 {
            let b = *self.buf.get(i)?;
            len |= usize::from(b & 0x7F) << (7 * (i - 1));
            if b & 0x80 == 0 {
                return (self.buf.len() >= i + 1 + len).then_some((i + 1, len));
            }
        }
        None
    }

    fn next_packet(&mut self) -> std::io::Result<(u8, Vec<u8>)> {
        loop {
            if let Some((start, len)) = self.whole_packet() {
                let first = self.buf[0];
                let body = self.buf[start..start + len].to_vec();
                self.buf.drain(..start + len);
                return Ok((first, body));
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.reader.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed by the server"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}
