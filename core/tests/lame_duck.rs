//! C7: lame duck mode. Clients that announced `protocol: 1` get an INFO
//! with `ldm: true` at once; after the grace period clients are closed
//! one by one over the rest of `lame_duck_duration`; then the server is
//! finished. Timed by the core's clock only.

mod auth_support;

use std::time::Duration;

use auth_support::Node;

#[test]
fn lame_duck_informs_then_evicts_over_the_duration() {
    let mut node = Node::new("lame_duck_duration: 30s\nlame_duck_grace_period: 10s\n");
    let aware: Vec<_> = (0..3).map(|_| node.login(r#"{"verbose":false,"protocol":1}"#).0).collect();
    let legacy = node.client(r#"{"verbose":false}"#);
    for c in &aware {
        node.take(*c);
    }
    node.take(legacy);
    let now = node.now;
    assert!(node.server.enter_lame_duck(now));
    assert!(!node.server.enter_lame_duck(now), "entered once");
    node.pump();
    for c in &aware {
        let got = node.take(*c);
        assert!(got.starts_with("INFO {") && got.contains("\"ldm\":true"), "{got}");
    }
    assert_eq!(node.take(legacy), "", "protocol 0 clients get no INFO");
    // Nobody is closed during the grace period.
    node.advance(Duration::from_millis(9_999));
    assert!(aware.iter().chain([&legacy]).all(|c| !node.is_closed(*c)));
    assert!(!node.server.lame_duck_finished());
    // Then 20 s for 4 clients: a share of 5 s each, capped at 1 s, so one
    // at once and the next ones half a second to a second apart.
    node.advance(Duration::from_millis(1));
    let open = |node: &Node| aware.iter().chain([&legacy]).filter(|c| !node.is_closed(**c)).count();
    assert_eq!(open(&node), 3);
    node.advance(Duration::from_millis(499));
    assert_eq!(open(&node), 3, "at least half the share apart");
    // The second close comes at most a share after the first (the third
    // too, when both gaps drew half a share).
    node.advance(Duration::from_millis(501));
    assert!(open(&node) <= 2, "at most the share apart");
    assert!(!node.server.lame_duck_finished());
    node.advance(Duration::from_secs(2));
    assert_eq!(open(&node), 0);
    assert!(node.server.lame_duck_finished());
    // A connection accepted meanwhile is turned away.
    let (late, _) = node.connect();
    assert!(node.is_closed(late));
}

#[test]
fn lame_duck_without_clients_finishes_at_once() {
    let mut node = Node::new("");
    let now = node.now;
    assert!(node.server.enter_lame_duck(now));
    assert!(node.server.lame_duck_finished());
}
