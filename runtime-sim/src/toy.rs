//! A deliberately tiny NATS broker, used only by the simulator's own tests to
//! exercise the network, clients and checkers independently of the core.
//! It implements just what the simulated clients use.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use natrix_core::config::ServerOptions;
use natrix_core::server::CloseReason;
use natrix_core::{ConnId, Instant, Output, UnixNanos};

use crate::server::SimServer;
use crate::subject::matches;

struct Conn {
    inbuf: BytesMut,
    subs: BTreeMap<u64, (String, Option<String>)>,
    pending: u64,
    pings_out: u32,
    next_ping: Instant,
}

pub struct Toy {
    opts: ServerOptions,
    conns: BTreeMap<ConnId, Conn>,
    next_cid: u64,
    out: std::collections::VecDeque<Output>,
    lcg: u64,
}

impl Toy {
    fn send(&mut self, conn: ConnId, bytes: Vec<u8>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.pending += bytes.len() as u64;
        self.out.push_back(Output::Transmit {
            conn,
            bytes: Bytes::from(bytes),
        });
        if c.pending > self.opts.max_pending_bytes {
            self.close(conn, CloseReason::SlowConsumerPendingBytes);
        }
    }

    fn close(&mut self, conn: ConnId, reason: CloseReason) {
        if self.conns.remove(&conn).is_some() {
            self.out.push_back(Output::Close { conn, reason });
        }
    }

    fn publish(
        &mut self,
        from: ConnId,
        subject: &str,
        reply: Option<&str>,
        hdr: Option<&[u8]>,
        body: &[u8],
    ) {
        let mut plain = Vec::new();
        let mut groups: BTreeMap<String, Vec<(ConnId, u64)>> = BTreeMap::new();
        for (&cid, c) in &self.conns {
            for (&sid, (filter, queue)) in &c.subs {
                if matches(filter, subject) {
                    match queue {
                        None => plain.push((cid, sid)),
                        Some(q) => groups.entry(q.clone()).or_default().push((cid, sid)),
                    }
                }
            }
        }
        for members in groups.into_values() {
            self.lcg = self
                .lcg
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            plain.push(members[(self.lcg >> 33) as usize % members.len()]);
        }
        if plain.is_empty() {
            if let Some(r) = reply {
                let inbox = self.conns[&from]
                    .subs
                    .iter()
                    .find(|(_, (f, _))| matches(f, r))
                    .map(|(s, _)| *s);
                if let Some(sid) = inbox {
                    let h = "NATS/1.0 503\r\n\r\n";
                    let m = format!("HMSG {r} {sid} {} {}\r\n{h}\r\n", h.len(), h.len());
                    self.send(from, m.into_bytes());
                }
            }
        }
        for (cid, sid) in plain {
            let r = reply.map(|r| format!(" {r}")).unwrap_or_default();
            let mut m = match hdr {
                Some(h) => format!(
                    "HMSG {subject} {sid}{r} {} {}\r\n",
                    h.len(),
                    h.len() + body.len()
                )
                .into_bytes(),
                None => format!("MSG {subject} {sid}{r} {}\r\n", body.len()).into_bytes(),
            };
            m.extend_from_slice(hdr.unwrap_or_default());
            m.extend_from_slice(body);
            m.extend_from_slice(b"\r\n");
            self.send(cid, m);
        }
    }

    /// Parses and runs one operation if whole; false when more bytes are needed.
    fn step(&mut self, conn: ConnId) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        let Some(eol) = c.inbuf.windows(2).position(|w| w == b"\r\n") else {
            return false;
        };
        let line = String::from_utf8_lossy(&c.inbuf[..eol]).into_owned();
        let f: Vec<&str> = line.split(' ').collect();
        let (hdr, total) = match f[0] {
            "PUB" => (0, f[f.len() - 1].parse::<usize>().unwrap()),
            "HPUB" => (
                f[f.len() - 2].parse().unwrap(),
                f[f.len() - 1].parse().unwrap(),
            ),
            _ => (0, 0),
        };
        let is_pub = f[0] == "PUB" || f[0] == "HPUB";
        let need = eol + 2 + if is_pub { total + 2 } else { 0 };
        if c.inbuf.len() < need {
            return false;
        }
        let frame = c.inbuf.split_to(need);
        match f[0] {
            "SUB" => {
                let queue = (f.len() == 4).then(|| f[2].to_owned());
                c.subs
                    .insert(f[f.len() - 1].parse().unwrap(), (f[1].to_owned(), queue));
            }
            "UNSUB" => {
                c.subs.remove(&f[1].parse().unwrap());
            }
            "PING" => self.send(conn, b"PONG\r\n".to_vec()),
            "PONG" => c.pings_out = 0,
            _ if is_pub => {
                let reply =
                    (f.len() == if hdr > 0 || f[0] == "HPUB" { 5 } else { 4 }).then_some(f[2]);
                let body = &frame[eol + 2..eol + 2 + total];
                let h = (f[0] == "HPUB").then(|| &body[..hdr]);
                self.publish(conn, f[1], reply, h, &body[hdr..]);
            }
            _ => {}
        }
        true
    }
}

impl SimServer for Toy {
    fn new(opts: ServerOptions, seed: [u8; 32], _now: Instant, _wall: UnixNanos) -> Self {
        let lcg = u64::from_le_bytes(seed[..8].try_into().unwrap());
        Toy {
            opts,
            conns: BTreeMap::new(),
            next_cid: 1,
            out: Default::default(),
            lcg,
        }
    }

    fn handle_connected(&mut self, now: Instant, _wall: UnixNanos, _peer: SocketAddr) -> ConnId {
        let conn = ConnId(self.next_cid);
        self.next_cid += 1;
        let next_ping = now + self.opts.ping_interval;
        let c = Conn {
            inbuf: BytesMut::new(),
            subs: BTreeMap::new(),
            pending: 0,
            pings_out: 0,
            next_ping,
        };
        self.conns.insert(conn, c);
        self.send(
            conn,
            b"INFO {\"server_id\":\"toy\",\"headers\":true} \r\n".to_vec(),
        );
        conn
    }

    fn handle_received(&mut self, _now: Instant, conn: ConnId, bytes: Bytes) -> Option<Duration> {
        let c = self.conns.get_mut(&conn)?;
        c.inbuf.extend_from_slice(&bytes);
        while self.step(conn) {}
        None
    }

    fn handle_written(&mut self, _now: Instant, conn: ConnId, n: usize) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.pending -= n as u64;
        }
    }

    fn handle_closed(&mut self, _now: Instant, conn: ConnId, _reason: CloseReason) {
        self.conns.remove(&conn);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.conns.values().map(|c| c.next_ping).min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.next_ping <= now)
            .map(|(k, _)| *k)
            .collect();
        for conn in due {
            let c = self.conns.get_mut(&conn).unwrap();
            c.next_ping = now + self.opts.ping_interval.max(Duration::from_millis(1));
            c.pings_out += 1;
            if c.pings_out > self.opts.ping_max {
                self.close(conn, CloseReason::StaleConnection);
            } else {
                self.send(conn, b"PING\r\n".to_vec());
            }
        }
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::Toy;
    use crate::{FaultMode, SimConfig, World};

    fn run(seed: u64, faults: FaultMode) -> crate::RunReport {
        World::<Toy>::new(SimConfig::new(seed, faults)).run()
    }

    fn assert_ok(r: &crate::RunReport) {
        if let Some(f) = &r.failure {
            panic!(
                "seed {} {:?} failed: {} {}\n{}",
                r.seed, r.faults, f.invariant, f.detail, f.recent
            );
        }
        assert!(r.published > 100 && r.delivered > 100, "{r:?}");
    }

    #[test]
    fn toy_broker_passes_without_faults() {
        for seed in 0..4 {
            assert_ok(&run(seed, FaultMode::None));
        }
    }

    #[test]
    fn toy_broker_passes_with_faults() {
        for seed in 0..6 {
            assert_ok(&run(seed, FaultMode::Network));
            assert_ok(&run(seed, FaultMode::All));
        }
    }

    #[test]
    fn one_seed_one_trace_hash() {
        let (a, b, c) = (
            run(9, FaultMode::All),
            run(9, FaultMode::All),
            run(10, FaultMode::All),
        );
        assert_eq!((a.trace_hash, a.events), (b.trace_hash, b.events));
        assert_ne!(a.trace_hash, c.trace_hash);
    }

    #[test]
    #[ignore = "long: many seeds against the toy broker"]
    fn toy_broker_many_seeds() {
        let start = std::time::Instant::now();
        let mut events = 0;
        for seed in 100..160 {
            for mode in [FaultMode::None, FaultMode::Network, FaultMode::All] {
                let r = run(seed, mode);
                events += r.events;
                if let Some(f) = &r.failure {
                    panic!(
                        "seed {seed} {mode} failed: {} {}\n{}",
                        f.invariant, f.detail, f.recent
                    );
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{events} events in {secs:.2}s: {:.0}/s",
            events as f64 / secs
        );
    }
}
