//! The server state machine driven through its public surface, byte for
//! byte, the way a runtime drives it. Expected bytes are what nats-server
//! 2.15 sends for the same input.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use natrix_core::config::{ServerOptions, User};
use natrix_core::server::CloseReason;
use natrix_core::{ConnId, Instant, Output, Server, UnixNanos};

/// A server plus a virtual clock, recording what each connection was sent.
struct Node {
    server: Server,
    now: Instant,
    sent: BTreeMap<ConnId, Vec<u8>>,
    closed: BTreeMap<ConnId, CloseReason>,
    /// Connections whose runtime reports every byte as written at once.
    draining: Vec<ConnId>,
}

impl Node {
    fn new(opts: ServerOptions) -> Self {
        let server = Server::new(opts, [7; 32], Instant::ZERO, UnixNanos(1_700_000_000_000_000_000));
        let mut node = Node { server, now: Instant::ZERO, sent: BTreeMap::new(), closed: BTreeMap::new(), draining: Vec::new() };
        node.pump();
        node
    }

    fn connect(&mut self) -> ConnId {
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let conn = self.server.handle_connected(self.now, UnixNanos(0), peer);
        self.draining.push(conn);
        self.pump();
        conn
    }

    /// Connects and completes the handshake; forgets the greeting.
    fn client(&mut self, connect_json: &str) -> ConnId {
        let conn = self.connect();
        self.send(conn, &format!("CONNECT {connect_json}\r\n"));
        self.take(conn);
        conn
    }

    fn send(&mut self, conn: ConnId, text: &str) {
        self.server.handle_received(self.now, conn, Bytes::copy_from_slice(text.as_bytes()));
        self.pump();
    }

    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.server.poll_timeout().filter(|&at| at <= until) {
            self.now = at.max(self.now);
            self.server.handle_timeout(self.now);
            self.pump();
        }
        self.now = until;
    }

    fn pump(&mut self) {
        while let Some(out) = self.server.poll_output() {
            match out {
                Output::Transmit { conn, bytes } => {
                    assert!(!self.closed.contains_key(&conn), "bytes after close for {conn}");
                    self.sent.entry(conn).or_default().extend_from_slice(&bytes);
                    if self.draining.contains(&conn) {
                        self.server.handle_written(self.now, conn, bytes.len());
                    }
                }
                Output::Close { conn, reason } => {
                    assert!(self.closed.insert(conn, reason).is_none(), "closed twice");
                }
                Output::Log(_) => {}
            }
        }
    }

    /// What `conn` was sent since the last call, as text.
    fn take(&mut self, conn: ConnId) -> String {
        String::from_utf8(self.sent.remove(&conn).unwrap_or_default()).unwrap()
    }
}

fn quiet() -> &'static str {
    r#"{"verbose":false,"pedantic":false,"headers":true,"no_responders":true}"#
}

#[test]
fn greets_with_info() {
    let mut node = Node::new(ServerOptions::default());
    let conn = node.connect();
    let info = node.take(conn);
    // nats-server ends INFO with a space before CRLF.
    assert!(info.starts_with("INFO {") && info.ends_with("} \r\n"), "{info}");
    let json: serde_json::Value = serde_json::from_str(info[5..].trim_end()).unwrap();
    assert_eq!(json["max_payload"], 1_048_576);
    assert_eq!(json["headers"], true);
    assert_eq!(json["client_id"], conn.0);
    assert_eq!(json["proto"], 1);
    assert!(json["go"].as_str().unwrap().starts_with("rust"));
    // Clients gate features on `version`: it names the nats-server release
    // natrix implements; natrix's own version has a field of its own.
    assert_eq!(json["version"], "2.15.1");
    assert_eq!(json["natrix_version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn delivers_to_literal_and_wildcard_subscribers() {
    let mut node = Node::new(ServerOptions::default());
    let sub = node.client(quiet());
    node.send(sub, "SUB foo.bar 1\r\nSUB foo.* 2\r\nSUB foo.> 3\r\nSUB > 4\r\nSUB bar 5\r\n");
    let publisher = node.client(quiet());
    node.send(publisher, "PUB foo.bar reply.to 5\r\nhello\r\n");
    let got = node.take(sub);
    for sid in 1..=4 {
        assert!(got.contains(&format!("MSG foo.bar {sid} reply.to 5\r\nhello\r\n")), "sid {sid} in {got:?}");
    }
    assert!(!got.contains("MSG foo.bar 5"));
    assert_eq!(got.matches("MSG ").count(), 4);
}

#[test]
fn verbose_acknowledges_and_pong_answers_ping() {
    let mut node = Node::new(ServerOptions::default());
    let conn = node.connect();
    node.take(conn);
    node.send(conn, "CONNECT {\"verbose\":true}\r\nSUB a 1\r\nPING\r\nUNSUB 1\r\n");
    assert_eq!(node.take(conn), "+OK\r\n+OK\r\nPONG\r\n+OK\r\n");
}

#[test]
fn invalid_subjects_are_reported_without_closing() {
    let mut node = Node::new(ServerOptions::default());
    // Pedantic is on unless CONNECT turns it off, as in nats-server.
    let conn = node.client(r#"{"verbose":false}"#);
    node.send(conn, "SUB foo..bar 1\r\nSUB foo.> 2\r\nPUB foo.* 1\r\nx\r\nPING\r\n");
    assert_eq!(node.take(conn), "-ERR 'Invalid Subject'\r\n-ERR 'Invalid Publish Subject'\r\nMSG foo.* 2 1\r\nx\r\nPONG\r\n");
    let lax = node.client(r#"{"verbose":false,"pedantic":false}"#);
    node.send(lax, "SUB foo.> 2\r\nPUB foo.* 1\r\nx\r\nPING\r\n");
    assert_eq!(node.take(lax), "MSG foo.* 2 1\r\nx\r\nPONG\r\n");
    assert!(node.closed.is_empty());
}

#[test]
fn queue_group_delivers_each_message_to_exactly_one_member() {
    let mut node = Node::new(ServerOptions::default());
    let members: Vec<ConnId> = (0..3).map(|_| node.client(quiet())).collect();
    for (i, &m) in members.iter().enumerate() {
        node.send(m, &format!("SUB work workers {i}\r\n"));
    }
    let watcher = node.client(quiet());
    node.send(watcher, "SUB work 9\r\n");
    let publisher = node.client(quiet());
    for i in 0..300 {
        node.send(publisher, &format!("PUB work 3\r\n{i:03}\r\n"));
    }
    let mut seen = BTreeMap::new();
    for &m in &members {
        let got = node.take(m);
        assert!(got.matches("MSG work").count() > 0, "every member gets some of the work");
        for line in got.lines().filter(|l| !l.starts_with("MSG")) {
            *seen.entry(line.to_owned()).or_insert(0) += 1;
        }
    }
    assert_eq!(seen.len(), 300, "every message delivered to the group");
    assert!(seen.values().all(|&n| n == 1), "no message delivered twice");
    assert_eq!(node.take(watcher).matches("MSG work 9").count(), 300);
}

#[test]
fn auto_unsubscribe_after_max_messages() {
    let mut node = Node::new(ServerOptions::default());
    let conn = node.client(quiet());
    node.send(conn, "SUB foo 1\r\nUNSUB 1 2\r\n");
    for _ in 0..4 {
        node.send(conn, "PUB foo 1\r\nx\r\n");
    }
    assert_eq!(node.take(conn).matches("MSG foo 1 1").count(), 2);
    node.send(conn, "SUB bar 2\r\nPUB bar 1\r\ny\r\nUNSUB 2 1\r\nPUB bar 1\r\nz\r\n");
    assert_eq!(node.take(conn), "MSG bar 2 1\r\ny\r\n", "max already reached: removed at once");
}

#[test]
fn echo_off_skips_own_messages() {
    let mut node = Node::new(ServerOptions::default());
    let conn = node.client(r#"{"verbose":false,"echo":false}"#);
    let other = node.client(quiet());
    node.send(conn, "SUB foo 1\r\n");
    node.send(other, "SUB foo 1\r\n");
    node.send(conn, "PUB foo 1\r\nx\r\n");
    assert_eq!(node.take(conn), "");
    assert_eq!(node.take(other), "MSG foo 1 1\r\nx\r\n");
}

#[test]
fn headers_reach_header_clients_and_are_stripped_for_others() {
    let mut node = Node::new(ServerOptions::default());
    let modern = node.client(quiet());
    let legacy = node.client(r#"{"verbose":false}"#);
    node.send(modern, "SUB h 1\r\n");
    node.send(legacy, "SUB h 1\r\n");
    node.send(modern, "HPUB h 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    assert_eq!(node.take(modern), "HMSG h 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    assert_eq!(node.take(legacy), "MSG h 1 2\r\nhi\r\n");
}

#[test]
fn no_responders_sends_503_to_the_requester() {
    let mut node = Node::new(ServerOptions::default());
    let conn = node.client(quiet());
    node.send(conn, "SUB inbox 1\r\nPUB nobody inbox 1\r\nx\r\n");
    assert_eq!(node.take(conn), "HMSG inbox 1 38 38\r\nNATS/1.0 503\r\nNats-Subject: nobody\r\n\r\n\r\n");
}

#[test]
fn no_responders_without_headers_is_refused() {
    let mut node = Node::new(ServerOptions::default());
    let conn = node.connect();
    node.take(conn);
    node.send(conn, "CONNECT {\"no_responders\":true}\r\n");
    assert_eq!(node.take(conn), "-ERR 'no responders requires headers support'\r\n");
    assert_eq!(node.closed.get(&conn), Some(&CloseReason::NoRespondersRequiresHeaders));
}

fn with_user() -> ServerOptions {
    let mut opts = ServerOptions::default();
    opts.authorization.users.push(User { user: "alice".into(), password: Some("s3cr3t".into()), ..User::default() });
    opts
}

#[test]
fn wrong_password_is_an_authorization_violation() {
    let mut node = Node::new(with_user());
    let good = node.client(r#"{"verbose":true,"user":"alice","pass":"s3cr3t"}"#);
    assert!(!node.closed.contains_key(&good));
    let bad = node.connect();
    node.take(bad);
    node.send(bad, r#"CONNECT {"user":"alice","pass":"nope"}"#);
    node.send(bad, "\r\n");
    assert_eq!(node.take(bad), "-ERR 'Authorization Violation'\r\n");
    assert_eq!(node.closed.get(&bad), Some(&CloseReason::AuthenticationViolation));
}

#[test]
fn operations_before_connect_need_auth_when_required() {
    let mut node = Node::new(with_user());
    let conn = node.connect();
    node.take(conn);
    node.send(conn, "PING\r\n");
    assert_eq!(node.take(conn), "-ERR 'Authorization Violation'\r\n");
    assert_eq!(node.closed.get(&conn), Some(&CloseReason::AuthenticationViolation));
}

#[test]
fn silent_client_hits_the_auth_timeout() {
    let mut node = Node::new(with_user());
    let conn = node.connect();
    node.take(conn);
    node.advance(Duration::from_millis(1900));
    assert!(!node.closed.contains_key(&conn));
    node.advance(Duration::from_millis(200));
    assert_eq!(node.take(conn), "-ERR 'Authentication Timeout'\r\n");
    assert_eq!(node.closed.get(&conn), Some(&CloseReason::AuthenticationTimeout));
}

#[test]
fn bad_input_gets_nats_server_errors_then_close() {
    for (input, err, reason) in [
        ("FOO\r\n", "-ERR 'Unknown Protocol Operation'\r\n", CloseReason::ProtocolViolation),
        ("PUB foo 2000000\r\n", "-ERR 'Maximum Payload Violation'\r\n", CloseReason::MaxPayloadExceeded),
    ] {
        let mut node = Node::new(ServerOptions::default());
        let conn = node.client(quiet());
        node.send(conn, input);
        assert_eq!(node.take(conn), err, "for {input:?}");
        assert_eq!(node.closed.get(&conn), Some(&reason), "for {input:?}");
    }
}

#[test]
fn max_subscriptions_refuses_more_but_keeps_the_connection() {
    let opts = ServerOptions { max_subscriptions: 2, ..ServerOptions::default() };
    let mut node = Node::new(opts);
    let conn = node.client(quiet());
    node.send(conn, "SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPING\r\n");
    assert_eq!(node.take(conn), "-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n");
    assert!(node.closed.is_empty());
}

#[test]
fn max_connections_refuses_the_extra_client() {
    let opts = ServerOptions { max_connections: 1, ..ServerOptions::default() };
    let mut node = Node::new(opts);
    let _first = node.client(quiet());
    let second = node.connect();
    assert!(node.take(second).ends_with("-ERR 'maximum connections exceeded'\r\n"));
    assert_eq!(node.closed.get(&second), Some(&CloseReason::MaxConnectionsExceeded));
}

#[test]
fn slow_consumer_is_cut_off_while_a_fast_one_keeps_receiving() {
    let opts = ServerOptions { max_pending_bytes: 4096, ..ServerOptions::default() };
    let mut node = Node::new(opts);
    let fast = node.client(quiet());
    let slow = node.client(quiet());
    node.draining.retain(|&c| c != slow); // its runtime never manages to write
    node.send(fast, "SUB data 1\r\n");
    node.send(slow, "SUB data 1\r\n");
    let publisher = node.client(quiet());
    let payload = "x".repeat(100);
    for _ in 0..100 {
        node.send(publisher, &format!("PUB data 100\r\n{payload}\r\n"));
    }
    assert_eq!(node.closed.get(&slow), Some(&CloseReason::SlowConsumerPendingBytes));
    assert_eq!(node.take(fast).matches("MSG data 1 100").count(), 100);
    assert!(!node.closed.contains_key(&fast));
    assert_eq!(node.server.counters().slow_consumers, 1);
}

#[test]
fn stalled_writes_hit_the_write_deadline() {
    let mut node = Node::new(ServerOptions::default());
    let conn = node.client(quiet());
    node.draining.retain(|&c| c != conn);
    node.send(conn, "SUB a 1\r\nPUB a 1\r\nx\r\n");
    node.advance(Duration::from_secs(9));
    assert!(!node.closed.contains_key(&conn));
    node.advance(Duration::from_secs(2));
    assert_eq!(node.closed.get(&conn), Some(&CloseReason::SlowConsumerWriteDeadline));
}

#[test]
fn unanswered_pings_make_a_stale_connection() {
    let opts = ServerOptions { ping_interval: Duration::from_secs(10), ping_max: 2, ..ServerOptions::default() };
    let mut node = Node::new(opts);
    let alive = node.client(quiet());
    let dead = node.client(quiet());
    for _ in 0..5 {
        node.advance(Duration::from_secs(10));
        if node.take(alive).contains("PING\r\n") {
            node.send(alive, "PONG\r\n");
        }
    }
    assert!(!node.closed.contains_key(&alive), "a client answering pings stays");
    assert_eq!(node.closed.get(&dead), Some(&CloseReason::StaleConnection));
    assert!(node.take(dead).ends_with("-ERR 'Stale Connection'\r\n"));
}

#[test]
fn closing_removes_subscriptions() {
    let mut node = Node::new(ServerOptions::default());
    let sub = node.client(quiet());
    node.send(sub, "SUB foo 1\r\nSUB foo q 2\r\n");
    node.server.handle_closed(node.now, sub, CloseReason::ClientClosed);
    let publisher = node.client(quiet());
    node.send(publisher, "SUB reply 1\r\nPUB foo reply 1\r\nx\r\n");
    // Nobody left on `foo`: the requester hears no responders.
    assert!(node.take(publisher).contains("NATS/1.0 503"));
}

#[test]
fn same_seed_same_queue_choices() {
    let run = || {
        let mut node = Node::new(ServerOptions::default());
        let members: Vec<ConnId> = (0..4).map(|_| node.client(quiet())).collect();
        for &m in &members {
            node.send(m, "SUB q g 1\r\n");
        }
        let p = node.client(quiet());
        for _ in 0..50 {
            node.send(p, "PUB q 0\r\n\r\n");
        }
        members.iter().map(|&m| node.take(m).len()).collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn a_lagging_receiver_stalls_its_producer() {
    let opts = ServerOptions { max_pending_bytes: 4096, ..ServerOptions::default() };
    let mut node = Node::new(opts);
    let slow = node.client(quiet());
    node.draining.retain(|&c| c != slow);
    node.send(slow, "SUB data 1\r\n");
    let publisher = node.client(quiet());
    let msg = format!("PUB data 100\r\n{}\r\n", "x".repeat(100));
    // Nobody ever writes the receiver's bytes: it ends up cut off, but the
    // producer must have been told to slow down well before that.
    let mut stalls = Vec::new();
    while !node.closed.contains_key(&slow) && stalls.len() < 1000 {
        stalls.push(node.server.handle_received(node.now, publisher, Bytes::from(msg.clone())).is_some());
        node.pump();
    }
    let cut_at = stalls.len();
    assert!(node.closed.contains_key(&slow), "an unread receiver is cut off at max_pending");
    let first = stalls.iter().position(|&s| s).expect("the producer is told to slow down");
    assert!(first > 5, "not before the receiver is half way to max_pending");
    assert!(first < cut_at / 2 + 2, "slowed down at half of max_pending, long before the cut ({first} vs {cut_at})");
}

#[test]
fn first_pong_is_followed_by_connect_info_for_protocol_1_clients() {
    let mut node = Node::new(ServerOptions::default());
    let modern = node.client(r#"{"verbose":false,"protocol":1}"#);
    node.send(modern, "PING\r\n");
    let got = node.take(modern);
    assert!(got.starts_with("PONG\r\nINFO {"), "{got}");
    assert!(got.contains(r#""connect_info":true"#) && got.contains(r#""remote_account":"$G""#), "{got}");
    node.send(modern, "PING\r\n");
    assert_eq!(node.take(modern), "PONG\r\n", "only after the first PONG");
    let early = node.connect();
    node.take(early);
    node.send(early, "PING\r\n");
    assert_eq!(node.take(early), "PONG\r\n");
    node.send(early, "CONNECT {\"verbose\":false,\"protocol\":1}\r\nPING\r\n");
    assert!(node.take(early).starts_with("PONG\r\nINFO {"), "a PONG before CONNECT does not count");
    let legacy = node.client(r#"{"verbose":false,"protocol":0}"#);
    node.send(legacy, "PING\r\n");
    assert_eq!(node.take(legacy), "PONG\r\n");
}

#[test]
fn trace_logs_both_directions() {
    let opts = ServerOptions { trace: true, ..ServerOptions::default() };
    let mut server = Server::new(opts, [1; 32], Instant::ZERO, UnixNanos(0));
    let conn = server.handle_connected(Instant::ZERO, UnixNanos(0), "127.0.0.1:4000".parse().unwrap());
    let wire = "CONNECT {\"verbose\":false}\r\nSUB a 1\r\nPUB a 2\r\nhi\r\nPING\r\n";
    server.handle_received(Instant::ZERO, conn, Bytes::from(wire));
    let mut traces = Vec::new();
    while let Some(out) = server.poll_output() {
        if let Output::Log(e) = out {
            traces.push(e.message);
        }
    }
    let has = |needle: &str| traces.iter().any(|t| t.ends_with(needle));
    assert!(has("<<- [SUB a 1]") && has("<<- [PUB a 2]"), "{traces:#?}");
    assert!(has("->> [MSG a 1 2]") && has("->> [PONG]"), "{traces:#?}");
}

#[test]
fn a_receiver_that_drains_is_not_cut_before_twice_max_pending() {
    let opts = ServerOptions { max_pending_bytes: 4096, ..ServerOptions::default() };
    let mut node = Node::new(opts);
    let slow = node.client(quiet());
    node.draining.retain(|&c| c != slow);
    node.send(slow, "SUB data 1\r\n");
    let publisher = node.client(quiet());
    let msg = format!("PUB data 100\r\n{}\r\n", "x".repeat(100));
    // "MSG data 1 100\r\n" + 100 + "\r\n": 118 bytes a message. The
    // receiver's bytes were taken just now: it counts as draining.
    for _ in 0..50 {
        node.send(publisher, &msg);
    }
    assert!(!node.closed.contains_key(&slow), "5,900 bytes pending, past max_pending but draining");
    // Nothing written for the drain grace: past max_pending, it is cut.
    node.advance(natrix_core::server::DRAIN_GRACE);
    node.send(publisher, &msg);
    assert_eq!(node.closed.get(&slow), Some(&CloseReason::SlowConsumerPendingBytes));
    // However it drains, past twice max_pending a receiver is cut.
    let fresh = node.client(quiet());
    node.draining.retain(|&c| c != fresh);
    node.send(fresh, "SUB data 1\r\n");
    for _ in 0..70 {
        node.send(publisher, &msg);
    }
    assert_eq!(node.closed.get(&fresh), Some(&CloseReason::SlowConsumerPendingBytes), "8,260 bytes pending");
    assert!(!node.closed.contains_key(&publisher));
}
