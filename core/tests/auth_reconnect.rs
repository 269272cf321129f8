//! A CONNECT after the first, on the same connection: nats-server (2.15.1,
//! checked by hand and in conformance/differential) drops every
//! subscription, reads the new JSON over the old options, and checks the
//! credentials again. Nothing subscribed under one identity may receive
//! anything once the connection is someone else, or is gone.

mod auth_support;

use auth_support::Node;

const TWO_ACCOUNTS: &str = r#"
accounts {
  A: { users: [ {user: a, password: a} ] }
  B: { users: [ {user: b, password: b},
                {user: r, password: r, permissions: { publish: "r.>", subscribe: "r.>" }} ] }
}
"#;

fn connect_line(user: &str) -> String {
    format!("CONNECT {{\"user\":\"{user}\",\"pass\":\"{user}\",\"verbose\":false}}\r\n")
}

#[test]
fn a_connection_moved_to_another_account_leaks_nothing_after_it_closes() {
    let mut node = Node::new(TWO_ACCOUNTS);
    let c1 = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    assert_eq!(node.exchange(c1, "SUB foo 1\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(c1, &connect_line("b")), "PONG\r\n");
    node.server.handle_closed(node.now, c1, natrix_core::server::CloseReason::ClientClosed);
    // c2 takes the slot c1 had.
    let c2 = node.client(r#"{"user":"b","pass":"b","verbose":false}"#);
    assert_eq!(node.exchange(c2, "SUB bar 1\r\n"), "PONG\r\n");
    let c3 = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    assert_eq!(node.exchange(c3, "PUB foo 6\r\nsecret\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(c2, ""), "PONG\r\n", "account B must not see account A's message");
}

#[test]
fn a_second_connect_drops_the_subscriptions_of_the_first() {
    let mut node = Node::new(TWO_ACCOUNTS);
    let c1 = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    assert_eq!(node.exchange(c1, "SUB foo 1\r\nSUB baz 5\r\nUNSUB 5 3\r\n"), "PONG\r\n");
    // Same account, same user: the subscriptions still go.
    assert_eq!(node.exchange(c1, &connect_line("a")), "PONG\r\n");
    let c3 = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    assert_eq!(node.exchange(c3, "PUB foo 1\r\nx\r\nPUB baz 1\r\ny\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(c1, ""), "PONG\r\n");
    // The sids are free again.
    assert_eq!(node.exchange(c1, "SUB foo 1\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(c3, "PUB foo 1\r\nz\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(c1, ""), "MSG foo 1 1\r\nz\r\nPONG\r\n");
}

#[test]
fn a_moved_connection_gets_the_new_accounts_messages_only() {
    let mut node = Node::new(TWO_ACCOUNTS);
    let c1 = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    assert_eq!(node.exchange(c1, "SUB foo 1\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(c1, &connect_line("b")), "PONG\r\n");
    let a = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    let b = node.client(r#"{"user":"b","pass":"b","verbose":false}"#);
    assert_eq!(node.exchange(a, "PUB foo 1\r\nx\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(b, "PUB foo 1\r\ny\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(c1, ""), "PONG\r\n", "the old subscription is gone in both accounts");
    assert_eq!(node.exchange(c1, "SUB bar 2\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(b, "PUB bar 1\r\nz\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(c1, ""), "MSG bar 2 1\r\nz\r\nPONG\r\n");
    assert_eq!(node.exchange(a, "PUB bar 1\r\nw\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(c1, ""), "PONG\r\n");
}

#[test]
fn a_second_connect_takes_the_new_users_permissions() {
    let mut node = Node::new(TWO_ACCOUNTS);
    let c1 = node.client(r#"{"user":"b","pass":"b","verbose":false}"#);
    assert_eq!(node.exchange(c1, &connect_line("r")), "PONG\r\n");
    assert_eq!(
        node.exchange(c1, "SUB x 1\r\n"),
        "-ERR 'Permissions Violation for Subscription to \"x\"'\r\nPONG\r\n"
    );
    assert_eq!(
        node.exchange(c1, "PUB x 1\r\nm\r\n"),
        "-ERR 'Permissions Violation for Publish to \"x\"'\r\nPONG\r\n"
    );
    // Back to the unrestricted user: nothing of r's permissions stays.
    assert_eq!(node.exchange(c1, &connect_line("b")), "PONG\r\n");
    assert_eq!(node.exchange(c1, "SUB x 1\r\nPUB x 1\r\nm\r\n"), "MSG x 1 1\r\nm\r\nPONG\r\n");
}

#[test]
fn a_second_connect_is_read_over_the_first() {
    let mut node = Node::new(TWO_ACCOUNTS);
    // Fields it leaves out keep their values: the credentials and echo.
    let c1 = node.client(r#"{"user":"a","pass":"a","verbose":false,"echo":false}"#);
    assert_eq!(node.exchange(c1, "CONNECT {}\r\nSUB x 1\r\nPUB x 1\r\nm\r\n"), "PONG\r\n");
    // Another user with the first one's password: refused, and closed.
    let c2 = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    assert_eq!(
        node.exchange(c2, "CONNECT {\"user\":\"b\"}\r\n"),
        "-ERR 'Authorization Violation'\r\n"
    );
    assert!(node.is_closed(c2));
    // Headers turned off under no_responders: closed as nats-server does.
    let c3 = node.client(r#"{"user":"a","pass":"a","verbose":false,"headers":true,"no_responders":true}"#);
    assert_eq!(
        node.exchange(c3, "CONNECT {\"headers\":false}\r\n"),
        "-ERR 'no responders requires headers support'\r\n"
    );
    assert!(node.is_closed(c3));
}

#[test]
fn a_protocol_level_the_server_does_not_speak_is_refused() {
    let mut node = Node::new(TWO_ACCOUNTS);
    let (c1, answer) = node.login(r#"{"user":"a","pass":"a","verbose":false,"protocol":2}"#);
    assert_eq!(answer, "-ERR 'invalid client protocol'\r\n");
    assert_eq!(node.closed.get(&c1), Some(&natrix_core::server::CloseReason::BadClientProtocolVersion));
    let c2 = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    assert_eq!(node.exchange(c2, "CONNECT {\"protocol\":-1}\r\n"), "-ERR 'invalid client protocol'\r\n");
    assert!(node.is_closed(c2));
}

#[test]
fn account_figures_follow_a_connection_that_moves() {
    let mut node = Node::new(TWO_ACCOUNTS);
    let c1 = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    assert_eq!(node.exchange(c1, "SUB foo 1\r\nSUB bar 2\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(c1, &connect_line("b")), "PONG\r\n");
    let stats = node.server.account_stats();
    let of = |name: &str| stats.iter().find(|s| s.acc == name).unwrap().clone();
    assert_eq!((of("A").conns, of("A").total_conns, of("A").num_subscriptions), (0, 0, 0));
    assert_eq!((of("B").conns, of("B").total_conns, of("B").num_subscriptions), (1, 1, 0));
}

/// Slots are reused after every close: a subscription reference of a
/// previous owner must never reach the next one, whatever the order of
/// connects, re-CONNECTs, subscriptions and closes.
#[test]
fn reused_slots_never_receive_what_their_previous_owner_was_owed() {
    let mut node = Node::new(TWO_ACCOUNTS);
    let publisher_a = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    for round in 0..50 {
        let c = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
        let subs: String = (0..=round % 7).map(|i| format!("SUB foo.{i} {i}\r\n")).collect();
        assert_eq!(node.exchange(c, &subs), "PONG\r\n");
        if round % 2 == 0 {
            assert_eq!(node.exchange(c, &connect_line("b")), "PONG\r\n");
        }
        node.server.handle_closed(node.now, c, natrix_core::server::CloseReason::ClientClosed);
        let b = node.client(r#"{"user":"b","pass":"b","verbose":false}"#);
        assert_eq!(node.exchange(b, "SUB other 1\r\n"), "PONG\r\n");
        let pubs: String = (0..7).map(|i| format!("PUB foo.{i} 1\r\nx\r\n")).collect();
        assert_eq!(node.exchange(publisher_a, &pubs), "PONG\r\n");
        assert_eq!(node.exchange(b, ""), "PONG\r\n", "round {round}");
        node.server.handle_closed(node.now, b, natrix_core::server::CloseReason::ClientClosed);
    }
}
