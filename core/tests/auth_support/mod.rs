//! A server driven byte for byte from a config text, for the auth tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
pub mod jwt;

use std::time::Duration;

use bytes::Bytes;
use natrix_core::config::{apply_config, parse_str, MemorySource, ServerOptions};
use natrix_core::log::LogEvent;
use natrix_core::{ConnId, Instant, Output, Server, UnixNanos};

/// The wall clock of a test node at its start: 1_700_000_000 s.
pub const WALL_AT_START: UnixNanos = UnixNanos(1_700_000_000_000_000_000);

/// A server plus a virtual clock, recording what each connection was sent.
pub struct Node {
    pub server: Server,
    pub now: Instant,
    sent: BTreeMap<ConnId, Vec<u8>>,
    pub closed: BTreeMap<ConnId, natrix_core::server::CloseReason>,
    pub logs: Vec<LogEvent>,
}

/// Options from a config file text.
pub fn options(config: &str) -> ServerOptions {
    let source = MemorySource::default();
    let tree = parse_str(config, "test.conf", &source).expect("config parses");
    let mut opts = ServerOptions::default();
    apply_config(&tree, &mut opts, false).expect("config applies");
    opts
}

impl Node {
    pub fn new(config: &str) -> Node {
        Node::with_options(options(config))
    }

    pub fn with_options(opts: ServerOptions) -> Node {
        let server = Server::new(opts, [9; 32], Instant::ZERO, WALL_AT_START);
        Node::with_server(server)
    }

    /// Drives a server built by the test (e.g. with storage attached).
    pub fn with_server(server: Server) -> Node {
        let mut node = Node {
            server,
            now: Instant::ZERO,
            sent: BTreeMap::new(),
            closed: BTreeMap::new(),
            logs: Vec::new(),
        };
        node.pump();
        node
    }

    /// Opens a connection; returns it and the INFO line the server sent.
    pub fn connect(&mut self) -> (ConnId, String) {
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let conn = self.server.handle_connected(self.now, UnixNanos(0), peer);
        self.pump();
        let info = self.take(conn);
        (conn, info)
    }

    /// Connects with this CONNECT JSON and returns what the server answered
    /// to `CONNECT …` followed by `PING`.
    pub fn login(&mut self, connect_json: &str) -> (ConnId, String) {
        let (conn, _) = self.connect();
        self.send(conn, &format!("CONNECT {connect_json}\r\nPING\r\n"));
        let answer = self.take(conn);
        (conn, answer)
    }

    /// Connects and asserts the login worked.
    pub fn client(&mut self, connect_json: &str) -> ConnId {
        let (conn, answer) = self.login(connect_json);
        assert_eq!(answer, "PONG\r\n", "login {connect_json}");
        conn
    }

    pub fn send(&mut self, conn: ConnId, text: &str) {
        self.server
            .handle_received(self.now, conn, Bytes::copy_from_slice(text.as_bytes()));
        self.pump();
    }

    /// Sends `text` then a PING, and returns everything received (the PONG included).
    pub fn exchange(&mut self, conn: ConnId, text: &str) -> String {
        self.send(conn, &format!("{text}PING\r\n"));
        self.take(conn)
    }

    pub fn advance(&mut self, by: Duration) {
        self.now = self.now + by;
        self.server.handle_timeout(self.now);
        self.pump();
    }

    pub fn take(&mut self, conn: ConnId) -> String {
        String::from_utf8(self.sent.remove(&conn).unwrap_or_default()).unwrap()
    }

    pub fn is_closed(&self, conn: ConnId) -> bool {
        self.closed.contains_key(&conn)
    }

    pub fn pump(&mut self) {
        while let Some(out) = self.server.poll_output() {
            match out {
                Output::Transmit { conn, bytes } => {
                    self.sent.entry(conn).or_default().extend_from_slice(&bytes);
                    self.server.handle_written(self.now, conn, bytes.len());
                }
                Output::Close { conn, reason } => {
                    self.closed.insert(conn, reason);
                }
                Output::Log(e) => self.logs.push(e),
            }
        }
    }
}

/// The `nonce` field of an INFO line.
pub fn nonce_of(info: &str) -> String {
    let json = info.trim_start_matches("INFO ").trim_end();
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["nonce"].as_str().unwrap_or_default().to_owned()
}
