//! The memory limit's decisions: over the high-water mark new connections
//! are refused and slow consumers are cut at a quarter of `max_pending`;
//! back under the low-water mark, business as usual. Each change is logged
//! and `/varz` tells.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use natrix_core::config::ServerOptions;
use natrix_core::log::LogEvent;
use natrix_core::monitor::{self, ProcessStats};
use natrix_core::server::CloseReason;
use natrix_core::{ConnId, Instant, Output, Server, UnixNanos};

const MIB: u64 = 1 << 20;

struct Node {
    server: Server,
    sent: BTreeMap<ConnId, Vec<u8>>,
    closed: BTreeMap<ConnId, CloseReason>,
    logs: Vec<LogEvent>,
    /// Connections whose runtime never manages to write.
    stuck: Vec<ConnId>,
}

impl Node {
    fn new(opts: ServerOptions) -> Node {
        let server = Server::new(opts, [5; 32], Instant::ZERO, UnixNanos(1_700_000_000_000_000_000));
        let mut node = Node { server, sent: BTreeMap::new(), closed: BTreeMap::new(), logs: Vec::new(), stuck: Vec::new() };
        node.pump();
        node
    }

    fn rss(&mut self, bytes: u64) {
        self.server.handle_process_stats(Instant::ZERO, ProcessStats { rss_bytes: bytes, cpu_percent: 0.0, cores: 2 });
        self.pump();
    }

    fn connect(&mut self) -> ConnId {
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let conn = self.server.handle_connected(Instant::ZERO, UnixNanos(0), peer);
        self.pump();
        conn
    }

    fn client(&mut self) -> ConnId {
        let conn = self.connect();
        self.send(conn, "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n");
        conn
    }

    fn send(&mut self, conn: ConnId, text: &str) {
        self.server.handle_received(Instant::ZERO, conn, Bytes::copy_from_slice(text.as_bytes()));
        self.pump();
    }

    fn pump(&mut self) {
        while let Some(out) = self.server.poll_output() {
            match out {
                Output::Transmit { conn, bytes } => {
                    self.sent.entry(conn).or_default().extend_from_slice(&bytes);
                    if !self.stuck.contains(&conn) {
                        self.server.handle_written(Instant::ZERO, conn, bytes.len());
                    }
                }
                Output::Close { conn, reason } => {
                    self.closed.insert(conn, reason);
                }
                Output::Log(e) => self.logs.push(e),
            }
        }
    }

    fn varz(&mut self) -> serde_json::Value {
        let r = monitor::handle(&mut self.server, Instant::ZERO, UnixNanos(0), &ProcessStats::default(), "/varz", "");
        serde_json::from_str(&r.body).unwrap()
    }

    /// Sends 40 KB to a subscriber that never reads; true if it was cut.
    fn cut_after_40k(&mut self) -> bool {
        let slow = self.client();
        self.stuck.push(slow);
        self.send(slow, "SUB data 1\r\n");
        let publisher = self.client();
        let payload = "x".repeat(1000);
        for _ in 0..40 {
            self.send(publisher, &format!("PUB data 1000\r\n{payload}\r\n"));
        }
        self.closed.get(&slow) == Some(&CloseReason::SlowConsumerPendingBytes)
    }
}

fn limited() -> ServerOptions {
    ServerOptions { memory_limit_bytes: Some(100 * MIB), max_pending_bytes: 64 * 1024, ..ServerOptions::default() }
}

#[test]
fn over_the_high_water_mark_new_connections_are_refused() {
    let mut node = Node::new(limited());
    node.rss(50 * MIB);
    let early = node.client();
    node.rss(95 * MIB);
    assert!(node.logs.iter().any(|l| l.message.contains("Memory limit: 95 MiB resident of 100 MiB")), "{:?}", node.logs);
    let refused = node.connect();
    assert_eq!(node.closed.get(&refused), Some(&CloseReason::MaxConnectionsExceeded));
    let text = String::from_utf8(node.sent.remove(&refused).unwrap()).unwrap();
    assert!(text.ends_with("-ERR 'maximum connections exceeded: memory limit reached'\r\n"), "{text}");
    assert!(!node.closed.contains_key(&early), "connections already there stay");
    let varz = node.varz();
    assert_eq!(varz["memory_limit_exceeded"], true);
    assert_eq!(varz["gomemlimit"], 100 * MIB);
    // Between the marks the pressure holds; under the low mark it ends.
    node.rss(85 * MIB);
    let still = node.connect();
    assert!(node.closed.contains_key(&still));
    node.rss(70 * MIB);
    let welcome = node.client();
    assert!(!node.closed.contains_key(&welcome));
    assert!(node.varz().get("memory_limit_exceeded").is_none());
    assert!(node.logs.iter().any(|l| l.message.contains("accepting connections again")));
}

#[test]
fn under_pressure_slow_consumers_are_cut_at_a_quarter_of_max_pending() {
    let mut calm = Node::new(limited());
    calm.rss(10 * MIB);
    assert!(!calm.cut_after_40k(), "40 KB is under max_pending (64 KiB)");
    let mut pressed = Node::new(limited());
    pressed.rss(10 * MIB);
    // Both connect before the pressure begins (new ones would be refused).
    let slow = pressed.client();
    pressed.stuck.push(slow);
    pressed.send(slow, "SUB data 1\r\n");
    let publisher = pressed.client();
    pressed.rss(99 * MIB);
    // A receiver that wrote lately is given twice the limit: 32 KiB here.
    let payload = "x".repeat(1000);
    for _ in 0..40 {
        pressed.send(publisher, &format!("PUB data 1000\r\n{payload}\r\n"));
    }
    assert_eq!(pressed.closed.get(&slow), Some(&CloseReason::SlowConsumerPendingBytes));
    assert!(!pressed.closed.contains_key(&publisher));
    assert!(pressed.logs.iter().any(|l| l.message.contains("MaxPending of 16384 Exceeded")), "{:?}", pressed.logs);
}

#[test]
fn without_a_limit_nothing_changes() {
    let mut node = Node::new(ServerOptions::default());
    node.rss(64 << 30);
    let conn = node.client();
    assert!(!node.closed.contains_key(&conn));
    assert!(node.varz().get("gomemlimit").is_none());
}
