//! A push consumer's acknowledgements read together (one read holding a run
//! of `$JS.ACK` publishes), driven through the server's public surface:
//! every ack counts, the deliveries they free go out in order and before
//! anything the client asked for after them, and a double ack in the run
//! is confirmed.

use std::net::SocketAddr;

use bytes::Bytes;
use natrix_core::config::ServerOptions;
use natrix_core::{ConnId, Instant, Output, Server, UnixNanos};

struct Node {
    server: Server,
    now: Instant,
    sent: Vec<u8>,
}

impl Node {
    fn new() -> (Self, ConnId) {
        let opts = ServerOptions { jetstream: true, ..ServerOptions::default() };
        let server = Server::new(opts, [3; 32], Instant::ZERO, UnixNanos(1_700_000_000_000_000_000));
        let mut node = Node { server, now: Instant::ZERO, sent: Vec::new() };
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let conn = node.server.handle_connected(Instant::ZERO, UnixNanos(0), peer);
        node.send(conn, "CONNECT {\"verbose\":false,\"headers\":true,\"no_responders\":true}\r\nSUB _INBOX.> 1\r\n");
        node.take();
        (node, conn)
    }

    fn send(&mut self, conn: ConnId, text: &str) {
        self.server.handle_received(self.now, conn, Bytes::copy_from_slice(text.as_bytes()));
        self.pump();
    }

    fn pump(&mut self) {
        while let Some(out) = self.server.poll_output() {
            if let Output::Transmit { conn, bytes } = out {
                self.sent.extend_from_slice(&bytes);
                self.server.handle_written(self.now, conn, bytes.len());
            }
        }
    }

    /// Runs the clocks for `by` (a push consumer finds its new subscriber
    /// when it next asks for interest).
    fn advance(&mut self, by: std::time::Duration) {
        let until = self.now + by;
        while let Some(at) = self.server.poll_timeout().filter(|&at| at <= until) {
            self.now = at.max(self.now);
            self.server.handle_timeout(self.now);
            self.pump();
        }
        self.now = until;
    }

    fn take(&mut self) -> String {
        String::from_utf8(std::mem::take(&mut self.sent)).unwrap()
    }
}

fn publish(subject: &str, reply: Option<&str>, payload: &str) -> String {
    match reply {
        Some(r) => format!("PUB {subject} {r} {}\r\n{payload}\r\n", payload.len()),
        None => format!("PUB {subject} {}\r\n{payload}\r\n", payload.len()),
    }
}

/// The deliveries in `text`, as (payload, ack subject), in order.
fn deliveries(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.split("\r\n").collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t: Vec<&str> = line.split(' ').collect();
        if t.len() == 5 && t[0] == "MSG" && t[1].starts_with("orders.") {
            out.push((lines[i + 1].to_owned(), t[3].to_owned()));
        }
    }
    out
}

#[test]
fn a_run_of_acks_frees_deliveries_in_order_before_later_replies() {
    let (mut node, conn) = Node::new();
    let stream = r#"{"name":"S","subjects":["orders.*"],"storage":"memory"}"#;
    node.send(conn, &publish("$JS.API.STREAM.CREATE.S", Some("_INBOX.c"), stream));
    let consumer = r#"{"stream_name":"S","config":{"durable_name":"C","deliver_subject":"push.c","ack_policy":"explicit","max_ack_pending":3}}"#;
    node.send(conn, &publish("$JS.API.CONSUMER.CREATE.S.C", Some("_INBOX.c"), consumer));
    let mut all = String::new();
    for i in 0..9 {
        all.push_str(&publish("orders.a", Some("_INBOX.p"), &format!("m{i}")));
    }
    node.send(conn, &all);
    let created = node.take();
    assert!(created.contains("\"durable_name\":\"C\""), "{created}");
    node.send(conn, "SUB push.c 2\r\nPING\r\n");
    node.advance(std::time::Duration::from_secs(2));
    let first = deliveries(&node.take());
    let payloads: Vec<&str> = first.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(payloads, ["m0", "m1", "m2"], "max_ack_pending holds the rest back");

    // Three acks in one read, the last a double ack, then a PING: the
    // three deliveries they free come before the PONG, the confirmation
    // of the double ack too.
    let acks = format!(
        "{}{}{}PING\r\n",
        publish(&first[0].1, None, "+ACK"),
        publish(&first[1].1, None, "+ACK"),
        publish(&first[2].1, Some("_INBOX.double"), "+ACK"),
    );
    node.send(conn, &acks);
    let text = node.take();
    let second = deliveries(&text);
    let payloads: Vec<&str> = second.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(payloads, ["m3", "m4", "m5"], "{text}");
    let pong = text.find("PONG").expect("a PONG");
    let last = text.find("\r\nm5\r\n").expect("m5");
    assert!(last < pong, "the freed deliveries precede the later PONG: {text}");
    assert!(text.contains("MSG _INBOX.double 1 0"), "the double ack is confirmed: {text}");

    // The rest, acked the same way, drains the consumer.
    let acks: String = second.iter().map(|(_, ack)| publish(ack, None, "+ACK")).collect();
    node.send(conn, &acks);
    let third = deliveries(&node.take());
    let payloads: Vec<&str> = third.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(payloads, ["m6", "m7", "m8"]);
    let acks: String = third.iter().map(|(_, ack)| publish(ack, None, "+ACK")).collect();
    node.send(conn, &acks);
    node.send(conn, &publish("$JS.API.CONSUMER.INFO.S.C", Some("_INBOX.i"), ""));
    let info = node.take();
    assert!(info.contains("\"num_ack_pending\":0"), "{info}");
    assert!(info.contains("\"ack_floor\":{\"consumer_seq\":9,\"stream_seq\":9"), "{info}");
}
