//! Random and mutated protocol streams fed to a whole server: it never
//! panics, never sends to a closed connection, and keeps each connection's
//! unwritten bytes within max_pending plus one message.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use natrix_core::config::ServerOptions;
use natrix_core::server::CloseReason;
use natrix_core::{ConnId, Instant, Output, Server, UnixNanos};
use proptest::prelude::*;

const MAX_PENDING: u64 = 2048;
const MAX_PAYLOAD: u32 = 512;

/// Well-formed fragments that mutation turns into realistic bad input.
const FRAGMENTS: &[&str] = &[
    "CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\n",
    "CONNECT {\"verbose\":true,\"pedantic\":true}\r\n",
    "SUB foo 1\r\n",
    "SUB foo.* q 2\r\n",
    "SUB > 3\r\n",
    "UNSUB 1 3\r\n",
    "UNSUB 2\r\n",
    "PUB foo 5\r\nhello\r\n",
    "PUB foo.bar reply 0\r\n\r\n",
    "HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
    "PING\r\n",
    "PONG\r\n",
    "PUB foo 600\r\n",
    "SUB foo..bar 9\r\n",
];

#[derive(Clone, Debug)]
enum Action {
    Connect,
    Send { conn: usize, data: Vec<u8>, split: usize },
    Written { conn: usize, n: usize },
    Advance { ms: u64 },
    Close { conn: usize },
}

fn mutated_fragment() -> impl Strategy<Value = Vec<u8>> {
    (0..FRAGMENTS.len(), proptest::collection::vec((any::<usize>(), any::<u8>()), 0..3), any::<bool>()).prop_map(
        |(i, edits, truncate)| {
            let mut data = FRAGMENTS[i].as_bytes().to_vec();
            for (at, byte) in edits {
                let at = at % data.len();
                data[at] = byte;
            }
            if truncate {
                data.truncate(data.len() / 2);
            }
            data
        },
    )
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        1 => Just(Action::Connect),
        6 => (0..4usize, proptest::collection::vec(mutated_fragment(), 1..6), any::<usize>())
            .prop_map(|(conn, parts, split)| Action::Send { conn, data: parts.concat(), split }),
        1 => (0..4usize, proptest::collection::vec(any::<u8>(), 0..64), any::<usize>())
            .prop_map(|(conn, data, split)| Action::Send { conn, data, split }),
        2 => (0..4usize, 0..4096usize).prop_map(|(conn, n)| Action::Written { conn, n }),
        1 => (0..200_000u64).prop_map(|ms| Action::Advance { ms }),
        1 => (0..4usize).prop_map(|conn| Action::Close { conn }),
    ]
}

struct Harness {
    server: Server,
    now: Instant,
    conns: Vec<ConnId>,
    closed: BTreeSet<ConnId>,
    unwritten: BTreeMap<ConnId, u64>,
}

impl Harness {
    fn pump(&mut self) {
        while let Some(out) = self.server.poll_output() {
            match out {
                Output::Transmit { conn, bytes } => {
                    assert!(!self.closed.contains(&conn), "transmit after close to {conn}");
                    *self.unwritten.entry(conn).or_default() += bytes.len() as u64;
                }
                Output::Close { conn, .. } => {
                    assert!(self.closed.insert(conn), "{conn} closed twice");
                }
                Output::Log(_) => {}
            }
        }
        for (conn, &n) in &self.unwritten {
            if !self.closed.contains(conn) {
                let bound = MAX_PENDING + u64::from(MAX_PAYLOAD) + 1024;
                assert!(n <= bound, "{conn} has {n} unwritten bytes, bound {bound}");
            }
        }
    }

    fn run(&mut self, action: Action) {
        let pick = |conns: &[ConnId], i: usize| conns.get(i % conns.len().max(1)).copied();
        match action {
            Action::Connect => {
                let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
                let conn = self.server.handle_connected(self.now, UnixNanos(0), peer);
                self.conns.push(conn);
            }
            Action::Send { conn, data, split } => {
                let Some(conn) = pick(&self.conns, conn) else { return };
                let data = Bytes::from(data);
                let at = if data.is_empty() { 0 } else { split % data.len() };
                self.server.handle_received(self.now, conn, data.slice(..at));
                self.pump();
                self.server.handle_received(self.now, conn, data.slice(at..));
            }
            Action::Written { conn, n } => {
                let Some(conn) = pick(&self.conns, conn) else { return };
                let pending = self.unwritten.entry(conn).or_default();
                let n = (n as u64).min(*pending);
                *pending -= n;
                self.server.handle_written(self.now, conn, n as usize);
            }
            Action::Advance { ms } => {
                self.now = self.now + Duration::from_millis(ms);
                self.server.handle_timeout(self.now);
            }
            Action::Close { conn } => {
                let Some(conn) = pick(&self.conns, conn) else { return };
                self.server.handle_closed(self.now, conn, CloseReason::ClientClosed);
            }
        }
        self.pump();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_streams_never_break_the_server(actions in proptest::collection::vec(action(), 1..60), seed in any::<[u8; 32]>()) {
        let opts = ServerOptions {
            max_pending_bytes: MAX_PENDING,
            max_payload_bytes: MAX_PAYLOAD,
            max_control_line_bytes: 256,
            ping_interval: Duration::from_secs(30),
            ..ServerOptions::default()
        };
        let server = Server::new(opts, seed, Instant::ZERO, UnixNanos(0));
        let mut h = Harness { server, now: Instant::ZERO, conns: Vec::new(), closed: BTreeSet::new(), unwritten: BTreeMap::new() };
        h.pump();
        for a in actions {
            h.run(a);
        }
        // Everything still open can be shut down cleanly.
        h.server.shutdown(h.now);
        h.pump();
        prop_assert_eq!(h.server.num_clients(), 0);
    }
}
