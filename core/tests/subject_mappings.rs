//! C9: subject mappings from the config file (top level and per account)
//! and from account JWTs, applied to publishes before routing, with
//! nats-server's config errors.

mod auth_support;

use auth_support::jwt;
use auth_support::{nonce_of, Node};
use base64::Engine;
use natrix_core::config::{apply_config, parse_str, MemorySource, ServerOptions};
use nkeys::KeyPair;
use serde_json::json;

fn config_errors(text: &str) -> String {
    let tree = parse_str(text, "map.conf", &MemorySource::default()).unwrap();
    let mut opts = ServerOptions::default();
    apply_config(&tree, &mut opts, false).expect_err("config must be refused").to_string()
}

#[test]
fn bad_mappings_are_config_errors_with_nats_servers_words() {
    let e = config_errors("mappings { \"foo.*\": \"bar.{{nope(1)}}\" }");
    assert!(
        e.contains("Error adding mapping for \"foo.*\" to \"bar.{{nope(1)}}\" : invalid mapping destination: unknown function in {{nope(1)}}"),
        "{e}"
    );
    assert!(e.contains("map.conf:1:"), "file:line:column kept: {e}");
    let e = config_errors("mappings { baz: [ {destination: q, weight: 60%}, {destination: r, weight: 50%} ] }");
    assert!(e.contains("Error adding mapping for \"baz\" : total weight needs to be <= 100"), "{e}");
    let e = config_errors("mappings { x: \"y.{{wildcard(1)}}\" }");
    assert!(e.contains("wildcard index out of range in {{wildcard(1)}}"), "{e}");
    let e = config_errors("mappings { x: {destination: y} }");
    assert!(e.contains("Missing weight for mapping destination \"y\""), "{e}");
    let e = config_errors("mappings { x: {destination: y, weight: 120} }");
    assert!(e.contains("Invalid weight 120 for mapping destination"), "{e}");
    let e = config_errors("accounts { A: { mappings { \"a.*\": \"b.$2\" } } }");
    assert!(e.contains("wildcard index out of range in $2: [2]"), "{e}");
}

#[test]
fn publishes_are_mapped_before_delivery() {
    let mut node = Node::new(
        "mappings { \"foo.*.*\": \"bar.{{wildcard(2)}}.{{wildcard(1)}}\", \"p.*\": \"p.{{partition(10,1)}}.$1\", \
         \"gone\": [ {destination: gone, weight: 0} ] }",
    );
    let sub = node.client(r#"{"verbose":false}"#);
    let publisher = node.client(r#"{"verbose":false}"#);
    assert_eq!(node.exchange(sub, "SUB > 1\r\n"), "PONG\r\n");
    node.exchange(publisher, "PUB foo.10.40 2\r\nhi\r\nPUB p.foo 0\r\n\r\nPUB gone 0\r\n\r\nPUB plain 0\r\n\r\n");
    assert_eq!(
        node.exchange(sub, ""),
        "MSG bar.40.10 1 2\r\nhi\r\nMSG p.3.foo 1 0\r\n\r\nMSG plain 1 0\r\n\r\nPONG\r\n"
    );
}

#[test]
fn account_mappings_apply_to_their_account_only_and_before_permissions() {
    let mut node = Node::new(
        r#"accounts {
             A: { users: [ {user: a, password: a, permissions: {publish: "dst.>"}} ], mappings { "src.*": "dst.$1" } }
             B: { users: [ {user: b, password: b} ] }
           }"#,
    );
    let login = |node: &mut Node, u: &str| node.client(&format!(r#"{{"user":"{u}","pass":"{u}","verbose":false}}"#));
    let (a_sub, a_pub, b) = (login(&mut node, "a"), login(&mut node, "a"), login(&mut node, "b"));
    assert_eq!(node.exchange(a_sub, "SUB > 1\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(b, "SUB > 1\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(a_pub, "PUB src.1 1\r\nx\r\n"), "PONG\r\n", "allowed once mapped");
    assert_eq!(node.exchange(a_sub, ""), "MSG dst.1 1 1\r\nx\r\nPONG\r\n");
    assert_eq!(node.exchange(b, "PUB src.2 1\r\ny\r\n"), "MSG src.2 1 1\r\ny\r\nPONG\r\n", "B has no mapping");
}

#[test]
fn account_jwt_mappings_apply() {
    let op = KeyPair::new_operator();
    let acc = KeyPair::new_account();
    let account = jwt::account(&op, &acc, json!({"mappings": {"in.*": [{"subject": "out.$1", "weight": 0}]}}));
    let config = format!(
        "operator: {}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {}\n}}\n",
        jwt::operator(&op, &[]),
        acc.public_key(),
        account
    );
    let mut node = Node::new(&config);
    let login = |node: &mut Node| {
        let user = KeyPair::new_user();
        let user_jwt = jwt::user(&acc, &acc, &user, json!({}), json!({}));
        let (conn, info) = node.connect();
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(user.sign(nonce_of(&info).as_bytes()).unwrap());
        node.send(conn, &format!("CONNECT {{\"jwt\":\"{user_jwt}\",\"sig\":\"{sig}\",\"verbose\":false}}\r\nPING\r\n"));
        assert_eq!(node.take(conn), "PONG\r\n");
        conn
    };
    let (sub, publisher) = (login(&mut node), login(&mut node));
    assert_eq!(node.exchange(sub, "SUB > 1\r\n"), "PONG\r\n");
    node.exchange(publisher, "PUB in.7 0\r\n\r\n");
    assert_eq!(node.exchange(sub, ""), "MSG out.7 1 0\r\n\r\nPONG\r\n", "a weight of 0 in a JWT means 100");
}
