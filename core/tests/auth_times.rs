//! User JWT `times` windows read in their `times_location`, as nats-server
//! reads them: the zone's wall clock decides, an unknown zone refuses the
//! user, and a connection admitted by a window is closed when it ends.

mod auth_support;

use std::time::Duration;

use auth_support::jwt;
use auth_support::{nonce_of, Node};
use base64::Engine;
use natrix_core::server::CloseReason;
use nkeys::KeyPair;
use serde_json::{json, Value};

const VIOLATION: &str = "-ERR 'Authorization Violation'\r\n";

/// An operator-mode node with one account; its wall clock starts at
/// 1_700_000_000 s: 2023-11-14 22:13:20 UTC, 17:13:20 EST in New York,
/// 07:13:20 JST on the 15th in Tokyo.
struct Setup {
    acc: KeyPair,
    node: Node,
}

impl Setup {
    fn new() -> Setup {
        let (op, acc) = (KeyPair::new_operator(), KeyPair::new_account());
        let config = format!(
            "operator: {}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {}\n}}\n",
            jwt::operator(&op, &[]),
            acc.public_key(),
            jwt::account(&op, &acc, json!({})),
        );
        Setup {
            acc,
            node: Node::new(&config),
        }
    }

    /// Logs in a new user with these limits; returns the connection and
    /// the answer to CONNECT + PING.
    fn login(&mut self, limits: Value) -> (natrix_core::ConnId, String) {
        let user = KeyPair::new_user();
        let token = jwt::user(&self.acc, &self.acc, &user, limits, json!({}));
        let (conn, info) = self.node.connect();
        let nonce = nonce_of(&info);
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(user.sign(nonce.as_bytes()).unwrap());
        self.node.send(
            conn,
            &format!(
                "CONNECT {{\"jwt\":\"{token}\",\"sig\":\"{sig}\",\"verbose\":false}}\r\nPING\r\n"
            ),
        );
        (conn, self.node.take(conn))
    }

    /// Lets `secs` of virtual time pass, answering the server's PINGs.
    fn pass(&mut self, conn: natrix_core::ConnId, secs: u64) {
        for step in (0..secs).step_by(30) {
            self.node
                .advance(Duration::from_secs((secs - step).min(30)));
            if !self.node.is_closed(conn) {
                self.node.send(conn, "PONG\r\n");
            }
        }
    }
}

fn window(zone: &str, start: &str, end: &str) -> Value {
    json!({"times": [{"start": start, "end": end}], "times_location": zone})
}

#[test]
fn the_zone_wall_clock_decides() {
    let mut s = Setup::new();
    let cases = [
        (window("America/New_York", "17:00:00", "18:00:00"), true),
        (window("America/New_York", "22:00:00", "23:00:00"), false),
        (window("UTC", "22:00:00", "23:00:00"), true),
        (window("Asia/Tokyo", "07:00:00", "08:00:00"), true),
        (window("Asia/Tokyo", "22:00:00", "23:00:00"), false),
        // Across Tokyo's midnight, after it.
        (window("Asia/Tokyo", "23:00:00", "07:30:00"), true),
        (window("Nowhere/Land", "00:00:00", "23:59:59"), false),
        (window("america/new_york", "17:00:00", "18:00:00"), false),
        (json!({"times_location": "Nowhere/Land"}), false),
        (window("UTC", "22:00", "23:00"), false),
    ];
    for (limits, admitted) in cases {
        let want = if admitted { "PONG\r\n" } else { VIOLATION };
        assert_eq!(s.login(limits.clone()).1, want, "{limits}");
    }
}

#[test]
fn a_connection_ends_with_its_window() {
    let mut s = Setup::new();
    // 17:13:20 EST; the window ends at 17:15:00, 100 s later.
    let (conn, answer) = s.login(window("America/New_York", "17:00:00", "17:15:00"));
    assert_eq!(answer, "PONG\r\n");
    s.pass(conn, 99);
    assert!(!s.node.is_closed(conn), "still inside the window");
    s.node.take(conn);
    s.node.advance(Duration::from_secs(2));
    assert!(s
        .node
        .take(conn)
        .ends_with("-ERR 'User Authentication Expired'\r\n"));
    assert_eq!(
        s.node.closed.get(&conn),
        Some(&CloseReason::AuthenticationExpired)
    );
}

#[test]
fn a_window_across_midnight_lasts_until_tomorrow() {
    let mut s = Setup::new();
    // 22:13:20 UTC, inside 22:00-00:00:30: the connection lasts 6_430 s.
    let (conn, answer) = s.login(window("UTC", "22:00:00", "00:00:30"));
    assert_eq!(answer, "PONG\r\n");
    s.pass(conn, 6_429);
    assert!(!s.node.is_closed(conn));
    s.node.advance(Duration::from_secs(2));
    assert_eq!(
        s.node.closed.get(&conn),
        Some(&CloseReason::AuthenticationExpired)
    );
}

#[test]
fn of_two_windows_the_later_end_counts() {
    let mut s = Setup::new();
    let (conn, answer) = s.login(json!({"times": [
        {"start": "22:00:00", "end": "23:00:00"},
        {"start": "20:00:00", "end": "22:30:00"}
    ]}));
    assert_eq!(answer, "PONG\r\n");
    s.pass(conn, 20 * 60);
    assert!(!s.node.is_closed(conn), "23:00 is the end, not 22:30");
    s.pass(conn, 27 * 60);
    assert_eq!(
        s.node.closed.get(&conn),
        Some(&CloseReason::AuthenticationExpired)
    );
}
