//! C8: config reload. The options of an edited config file are handed to a
//! running server; it refuses what nats-server cannot change at runtime
//! (and keeps the old configuration entirely), and applies the rest to
//! every connected client: users, permissions, accounts, limits.

mod auth_support;

use auth_support::{options, Node, WALL_AT_START};
use natrix_core::server::{CloseReason, ReloadError};
use natrix_core::UnixNanos;

const USERS: &str = r#"
authorization {
  users = [
    { user: a, password: a }
    { user: b, password: b, permissions: { publish: ">", subscribe: ">" } }
  ]
}
"#;

const LATER: UnixNanos = UnixNanos(WALL_AT_START.0 + 5_000_000_000);

fn reload(node: &mut Node, config: &str) -> Result<(), ReloadError> {
    let now = node.now;
    let result = node.server.reload(now, LATER, options(config));
    node.pump();
    result
}

fn logged(node: &Node, text: &str) -> bool {
    node.logs.iter().any(|e| e.message.contains(text))
}

#[test]
fn a_removed_user_is_closed_and_a_changed_password_is_a_violation() {
    let mut node = Node::new(USERS);
    let a = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    let b = node.client(r#"{"user":"b","pass":"b","verbose":false}"#);
    reload(
        &mut node,
        r#"authorization { users = [ { user: b, password: changed }, { user: c, password: c } ] }"#,
    )
    .unwrap();
    // Gone from the users: closed without an error, as nats-server does.
    assert_eq!(node.closed.get(&a), Some(&CloseReason::ClientClosed));
    assert_eq!(node.take(a), "");
    // Still there with another password: an authorization violation.
    assert_eq!(node.closed.get(&b), Some(&CloseReason::AuthenticationViolation));
    assert_eq!(node.take(b), "-ERR 'Authorization Violation'\r\n");
    // The new user logs in, the old credentials do not.
    node.client(r#"{"user":"c","pass":"c","verbose":false}"#);
    let (_, answer) = node.login(r#"{"user":"a","pass":"a","verbose":false}"#);
    assert_eq!(answer, "-ERR 'Authorization Violation'\r\n");
    assert!(logged(&node, "Reloaded: authorization users"));
    assert!(logged(&node, "Reloaded server configuration"));
    assert_eq!(node.server.config_loaded_at(), LATER);
}

#[test]
fn narrowed_permissions_remove_subscriptions_and_deny_publishes() {
    let mut node = Node::new(USERS);
    let b = node.client(r#"{"user":"b","pass":"b","verbose":false}"#);
    let a = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    assert_eq!(node.exchange(b, "SUB foo.1 1\r\nSUB bar.1 2\r\nSUB > q 3\r\n"), "PONG\r\n");
    reload(
        &mut node,
        r#"authorization { users = [
             { user: a, password: a }
             { user: b, password: b, permissions: { publish: "bar.>", subscribe: "bar.>" } }
           ] }"#,
    )
    .unwrap();
    assert_eq!(
        node.take(b),
        "-ERR 'Permissions Violation for Subscription to \"foo.1\" (sid \"1\")'\r\n\
         -ERR 'Permissions Violation for Subscription to \">\" using queue \"q\" (sid \"3\")'\r\n"
    );
    assert!(logged(&node, "Removed sub \"foo.1\" (sid \"1\") for User \"b\" - not authorized"));
    assert!(!node.is_closed(b));
    // Nothing more on the removed subscriptions; the allowed one still works.
    node.send(a, "PUB foo.1 2\r\nhi\r\nPUB bar.1 2\r\nok\r\n");
    assert_eq!(node.exchange(b, ""), "MSG bar.1 2 2\r\nok\r\nPONG\r\n");
    // Publishes are checked against the new rules.
    assert_eq!(
        node.exchange(b, "PUB foo.1 1\r\nx\r\n"),
        "-ERR 'Permissions Violation for Publish to \"foo.1\"'\r\nPONG\r\n"
    );
    assert_eq!(
        node.exchange(b, "SUB foo.2 4\r\n"),
        "-ERR 'Permissions Violation for Subscription to \"foo.2\"'\r\nPONG\r\n"
    );
}

#[test]
fn permissions_given_to_a_user_without_them_apply() {
    let mut node = Node::new(USERS);
    let a = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    assert_eq!(node.exchange(a, "SUB x 1\r\n"), "PONG\r\n");
    reload(
        &mut node,
        r#"authorization { users = [ { user: a, password: a, permissions: { subscribe: { deny: "x" } } } ] }"#,
    )
    .unwrap();
    assert_eq!(node.take(a), "-ERR 'Permissions Violation for Subscription to \"x\" (sid \"1\")'\r\n");
    node.send(a, "PUB x 1\r\n1\r\n");
    assert_eq!(node.exchange(a, ""), "PONG\r\n");
}

#[test]
fn an_unreloadable_change_is_refused_and_nothing_changes() {
    let mut node = Node::new(&format!("port: 4222\n{USERS}"));
    let a = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    let err = reload(&mut node, "port: 4333\nauthorization { users = [ { user: z, password: z } ] }\n").unwrap_err();
    assert_eq!(err.to_string(), "config reload not supported for Port: old=4222, new=4333");
    assert!(!node.is_closed(a));
    assert_eq!(node.exchange(a, "SUB x 1\r\n"), "PONG\r\n");
    node.client(r#"{"user":"b","pass":"b","verbose":false}"#);
    let (_, answer) = node.login(r#"{"user":"z","pass":"z","verbose":false}"#);
    assert_eq!(answer, "-ERR 'Authorization Violation'\r\n");
    assert_eq!(node.server.config_loaded_at(), WALL_AT_START);
    assert!(!logged(&node, "Reloaded"));
}

#[test]
fn max_payload_and_max_connections_apply_to_every_client() {
    let mut node = Node::new("max_payload: 1000\n");
    let old = node.client(r#"{"verbose":false}"#);
    let newer = node.client(r#"{"verbose":false}"#);
    reload(&mut node, "max_payload: 10\nmax_connections: 1\n").unwrap();
    assert_eq!(node.closed.get(&newer), Some(&CloseReason::MaxConnectionsExceeded));
    assert_eq!(node.take(newer), "-ERR 'maximum connections exceeded'\r\n");
    assert!(logged(&node, "Closed 1 connections to fall within max_connections"));
    assert!(logged(&node, "Reloaded: max_payload = 10"));
    assert_eq!(node.exchange(old, "PUB x 5\r\nhello\r\n"), "PONG\r\n");
    node.send(old, "PUB x 11\r\nhello world\r\n");
    assert_eq!(node.take(old), "-ERR 'Maximum Payload Violation'\r\n");
    assert!(node.is_closed(old));
    reload(&mut node, "max_payload: 10\nmax_connections: 5\n").unwrap();
    let (_, info) = node.connect();
    assert!(info.contains("\"max_payload\":10"), "{info}");
}

#[test]
fn a_new_import_takes_effect_and_a_moved_user_is_closed() {
    let before = r#"
accounts {
  A { users = [ { user: a, password: a } ], exports = [ { stream: "feed.>" } ] }
  B { users = [ { user: b, password: b }, { user: m, password: m } ] }
}
"#;
    let after = r#"
accounts {
  A { users = [ { user: a, password: a }, { user: m, password: m } ], exports = [ { stream: "feed.>" } ] }
  B { users = [ { user: b, password: b } ], imports = [ { stream: { account: A, subject: "feed.>" } } ] }
}
"#;
    let mut node = Node::new(before);
    let a = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    let b = node.client(r#"{"user":"b","pass":"b","verbose":false}"#);
    let m = node.client(r#"{"user":"m","pass":"m","verbose":false}"#);
    assert_eq!(node.exchange(b, "SUB feed.x 1\r\n"), "PONG\r\n");
    node.send(a, "PUB feed.x 1\r\n1\r\n");
    assert_eq!(node.exchange(b, ""), "PONG\r\n", "no import yet");
    reload(&mut node, after).unwrap();
    assert_eq!(node.closed.get(&m), Some(&CloseReason::ClientClosed), "m moved to A");
    assert!(!node.is_closed(a) && !node.is_closed(b));
    node.send(a, "PUB feed.x 1\r\n2\r\n");
    assert_eq!(node.exchange(b, ""), "MSG feed.x 1 1\r\n2\r\nPONG\r\n");
}

#[test]
fn mappings_are_reloaded() {
    let mut node = Node::new("mappings { a: b }\n");
    let c = node.client(r#"{"verbose":false}"#);
    assert_eq!(node.exchange(c, "SUB b 1\r\nSUB c 2\r\n"), "PONG\r\n");
    node.send(c, "PUB a 1\r\n1\r\n");
    assert_eq!(node.exchange(c, ""), "MSG b 1 1\r\n1\r\nPONG\r\n");
    reload(&mut node, "mappings { a: c }\n").unwrap();
    node.send(c, "PUB a 1\r\n2\r\n");
    assert_eq!(node.exchange(c, ""), "MSG c 2 1\r\n2\r\nPONG\r\n");
    reload(&mut node, "").unwrap();
    node.send(c, "PUB a 1\r\n3\r\n");
    assert_eq!(node.exchange(c, ""), "PONG\r\n");
}

#[test]
fn requiring_auth_closes_clients_without_credentials() {
    let mut node = Node::new("");
    let c = node.client(r#"{"verbose":false}"#);
    let (pending, _) = node.connect();
    reload(&mut node, "authorization { token: s3cret }\n").unwrap();
    assert_eq!(node.take(c), "-ERR 'Authorization Violation'\r\n");
    assert!(node.is_closed(c));
    // A client that had not sent CONNECT yet must now do so in time.
    assert!(!node.is_closed(pending));
    node.advance(std::time::Duration::from_secs(3));
    assert_eq!(node.closed.get(&pending), Some(&CloseReason::AuthenticationTimeout));
    node.client(r#"{"auth_token":"s3cret","verbose":false}"#);
}
