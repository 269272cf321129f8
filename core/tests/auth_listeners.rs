//! The `websocket {}` and `mqtt {}` blocks' own `authorization {}` and
//! `no_auth_user`, applied as nats-server applies them: a block with a
//! user, a token or a `no_auth_user` replaces the server's for its
//! clients only; its `timeout` is their time to authenticate; a user's
//! `allowed_connection_types` names the transport; WebSocket cookies stand
//! in for missing CONNECT credentials.

mod auth_support;

use std::net::SocketAddr;
use std::time::Duration;

use auth_support::{options, Node};
use natrix_core::server::Transport;
use natrix_core::websocket::handshake::Cookies;
use natrix_core::{ConnId, UnixNanos};

const VIOLATION: &str = "-ERR 'Authorization Violation'\r\n";

fn server(config: &str) -> Node {
    Node::with_options(options(config))
}

/// Opens a connection over `transport`; returns it and its INFO.
fn open(node: &mut Node, transport: Transport) -> (ConnId, String) {
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let conn = node.server.handle_connected_via(node.now, UnixNanos(0), peer, transport);
    node.pump();
    let info = node.take(conn);
    (conn, info)
}

/// What CONNECT with `json` then PING gets over `transport`.
fn login(node: &mut Node, transport: Transport, json: &str) -> String {
    let (conn, _) = open(node, transport);
    let json = json.replacen('{', "{\"verbose\":false,", 1).replace(",}", "}");
    node.send(conn, &format!("CONNECT {json}\r\nPING\r\n"));
    node.take(conn)
}

fn auth_required(info: &str) -> bool {
    let v: serde_json::Value = serde_json::from_str(info.trim_start_matches("INFO ").trim_end()).unwrap();
    v["auth_required"].as_bool().unwrap_or(false)
}

const WS: &str = "websocket { port: 8080, no_tls: true";
const MQTT: &str = "jetstream: true\nserver_name: s\nmqtt { port: 1883";

#[test]
fn a_block_without_override_authenticates_as_tcp_does() {
    let mut node = server(&format!("authorization {{ users: [{{user: a, password: pa}}] }}\n{WS} }}\n{MQTT} }}"));
    for transport in [Transport::Tcp, Transport::Websocket, Transport::Mqtt] {
        assert_eq!(login(&mut node, transport, r#"{"user":"a","pass":"pa"}"#), "PONG\r\n", "{transport:?}");
        assert_eq!(login(&mut node, transport, "{}"), VIOLATION, "{transport:?}");
    }
}

#[test]
fn a_blocks_no_auth_user_is_for_its_clients_only() {
    let mut node = server(&format!(
        "authorization {{ users: [{{user: a, password: pa}}, {{user: b, password: pb, permissions: {{publish: \"only.b\"}}}}] }}\n\
         no_auth_user: a\n{WS}, no_auth_user: b }}\n{MQTT} }}"
    ));
    // TCP and MQTT clients without credentials become the server's `a`.
    assert_eq!(login(&mut node, Transport::Tcp, "{}"), "PONG\r\n");
    assert_eq!(login(&mut node, Transport::Mqtt, "{}"), "PONG\r\n");
    // A WebSocket client becomes `b`, with `b`'s permissions.
    let (conn, _) = open(&mut node, Transport::Websocket);
    node.send(conn, "CONNECT {\"verbose\":false}\r\nPUB x 1\r\nx\r\nPING\r\n");
    assert_eq!(node.take(conn), "-ERR 'Permissions Violation for Publish to \"x\"'\r\nPONG\r\n");
    // Credentials still name any user.
    assert_eq!(login(&mut node, Transport::Websocket, r#"{"user":"a","pass":"pa"}"#), "PONG\r\n");
    assert_eq!(login(&mut node, Transport::Websocket, r#"{"user":"a","pass":"pb"}"#), VIOLATION);
}

#[test]
fn a_blocks_user_or_token_replaces_the_servers() {
    // The server asks nothing; the MQTT block asks for its own user.
    let mut node = server(&format!("{MQTT}, authorization {{ username: dev, password: s3cret }} }}\n{WS} }}"));
    let (_, info) = open(&mut node, Transport::Tcp);
    assert!(!auth_required(&info), "{info}");
    assert_eq!(login(&mut node, Transport::Tcp, "{}"), "PONG\r\n");
    assert_eq!(login(&mut node, Transport::Websocket, "{}"), "PONG\r\n");
    assert_eq!(login(&mut node, Transport::Mqtt, "{}"), VIOLATION);
    assert_eq!(login(&mut node, Transport::Mqtt, r#"{"user":"dev","pass":"wrong"}"#), VIOLATION);
    assert_eq!(login(&mut node, Transport::Mqtt, r#"{"user":"dev","pass":"s3cret"}"#), "PONG\r\n");
    assert_eq!(login(&mut node, Transport::Tcp, r#"{"user":"dev","pass":"s3cret"}"#), "PONG\r\n", "no auth on TCP");

    // The server's token and the WebSocket block's token: each for its own.
    let mut node = server(&format!("authorization {{ token: main }}\n{WS}, authorization {{ token: web }} }}\n{MQTT} }}"));
    let (_, info) = open(&mut node, Transport::Websocket);
    assert!(auth_required(&info), "{info}");
    assert_eq!(login(&mut node, Transport::Websocket, r#"{"auth_token":"main"}"#), VIOLATION);
    assert_eq!(login(&mut node, Transport::Websocket, r#"{"auth_token":"web"}"#), "PONG\r\n");
    assert_eq!(login(&mut node, Transport::Tcp, r#"{"auth_token":"web"}"#), VIOLATION);
    assert_eq!(login(&mut node, Transport::Tcp, r#"{"auth_token":"main"}"#), "PONG\r\n");
    assert_eq!(login(&mut node, Transport::Mqtt, r#"{"auth_token":"main"}"#), "PONG\r\n", "MQTT has no override");
}

#[test]
fn a_blocks_timeout_is_its_clients_time_to_authenticate() {
    let mut node = server(&format!(
        "authorization {{ user: u, password: p, timeout: 1 }}\n{MQTT}, authorization {{ timeout: 4 }} }}"
    ));
    let (tcp, _) = open(&mut node, Transport::Tcp);
    let (mqtt, _) = open(&mut node, Transport::Mqtt);
    node.advance(Duration::from_millis(1500));
    assert!(node.is_closed(tcp));
    assert!(!node.is_closed(mqtt), "the MQTT block's 4s");
    node.advance(Duration::from_secs(3));
    assert!(node.is_closed(mqtt));
}

#[test]
fn allowed_connection_types_name_the_transport() {
    let mut node = server(&format!(
        "authorization {{ users: [{{user: m, password: p, allowed_connection_types: [\"MQTT\"]}}, \
         {{user: w, password: p, allowed_connection_types: [\"WEBSOCKET\"]}}] }}\n{WS} }}\n{MQTT} }}"
    ));
    let m = r#"{"user":"m","pass":"p"}"#;
    let w = r#"{"user":"w","pass":"p"}"#;
    assert_eq!(login(&mut node, Transport::Mqtt, m), "PONG\r\n");
    assert_eq!(login(&mut node, Transport::Tcp, m), VIOLATION);
    assert_eq!(login(&mut node, Transport::Websocket, m), VIOLATION);
    assert_eq!(login(&mut node, Transport::Websocket, w), "PONG\r\n");
    assert_eq!(login(&mut node, Transport::Mqtt, w), VIOLATION);
}

#[test]
fn websocket_cookies_stand_in_for_missing_credentials() {
    let mut node = server(&format!(
        "authorization {{ users: [{{user: a, password: pa}}] }}\n{WS}, user_cookie: u, pass_cookie: p }}"
    ));
    let (conn, _) = open(&mut node, Transport::Websocket);
    node.server.set_cookies(conn, Cookies { user: Some("a".into()), pass: Some("pa".into()), ..Cookies::default() });
    node.send(conn, "CONNECT {\"verbose\":false}\r\nPING\r\n");
    assert_eq!(node.take(conn), "PONG\r\n");
    // The CONNECT's own fields win over the cookies.
    let (conn, _) = open(&mut node, Transport::Websocket);
    node.server.set_cookies(conn, Cookies { user: Some("a".into()), pass: Some("pa".into()), ..Cookies::default() });
    node.send(conn, "CONNECT {\"verbose\":false,\"pass\":\"nope\"}\r\nPING\r\n");
    assert_eq!(node.take(conn), VIOLATION);
}
