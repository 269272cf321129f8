//! S1: users with bcrypt passwords and tokens, nkey users signing the
//! nonce, and per-user publish/subscribe permissions, with the bytes
//! nats-server 2.15 sends for the same input.

mod auth_support;

use auth_support::{nonce_of, Node};
use base64::Engine;
use nkeys::KeyPair;

const VIOLATION: &str = "-ERR 'Authorization Violation'\r\n";

// OpenBSD's bcrypt test vector: password "U*U".
const BCRYPT_UU: &str = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

#[test]
fn bcrypt_password_and_token() {
    let mut node = Node::new(&format!(
        "authorization {{ users = [ {{ user: a, password: \"{BCRYPT_UU}\" }} ] }}"
    ));
    node.client(r#"{"user":"a","pass":"U*U","verbose":false}"#);
    let (conn, answer) = node.login(r#"{"user":"a","pass":"U*U*","verbose":false}"#);
    assert_eq!(answer, VIOLATION);
    assert!(node.is_closed(conn));
    // The hash itself is not a password.
    let (_, answer) = node.login(&format!(r#"{{"user":"a","pass":"{BCRYPT_UU}"}}"#));
    assert_eq!(answer, VIOLATION);

    let mut node = Node::new(&format!("authorization {{ token: \"{BCRYPT_UU}\" }}"));
    node.client(r#"{"auth_token":"U*U","verbose":false}"#);
    assert_eq!(node.login(r#"{"auth_token":"nope"}"#).1, VIOLATION);
}

fn sign(kp: &KeyPair, nonce: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(kp.sign(nonce.as_bytes()).unwrap())
}

#[test]
fn nkey_user_signs_the_nonce() {
    let kp = KeyPair::new_user();
    let config = format!(
        "authorization {{ users = [ {{ nkey: {} }}, {{ user: p, password: p }} ] }}",
        kp.public_key()
    );
    let mut node = Node::new(&config);

    let (conn, info) = node.connect();
    let nonce = nonce_of(&info);
    assert_eq!(nonce.len(), 15, "nonce shaped like nats-server's: {info}");
    let connect = format!(
        r#"{{"nkey":"{}","sig":"{}","verbose":false}}"#,
        kp.public_key(),
        sign(&kp, &nonce)
    );
    node.send(conn, &format!("CONNECT {connect}\r\nPING\r\n"));
    assert_eq!(node.take(conn), "PONG\r\n");

    // A signature of another nonce (replayed from the first connection).
    let (conn, info) = node.connect();
    assert_ne!(
        nonce_of(&info),
        nonce,
        "every connection gets its own nonce"
    );
    node.send(conn, &format!("CONNECT {connect}\r\n"));
    assert_eq!(node.take(conn), VIOLATION);
    assert!(node.is_closed(conn));

    // Signed by a different key, no signature, unknown key, garbage.
    let other = KeyPair::new_user();
    for (key, sig) in [
        (kp.public_key(), Some(sign(&other, "x"))),
        (kp.public_key(), None),
        (other.public_key(), Some(String::new())),
        ("UNOTAKEY".to_owned(), Some("!!".to_owned())),
    ] {
        let (conn, info) = node.connect();
        let sig = sig.map(|s| {
            if s.is_empty() {
                sign(&other, &nonce_of(&info))
            } else {
                s
            }
        });
        let json = match sig {
            Some(sig) => format!(r#"{{"nkey":"{key}","sig":"{sig}"}}"#),
            None => format!(r#"{{"nkey":"{key}"}}"#),
        };
        node.send(conn, &format!("CONNECT {json}\r\n"));
        assert_eq!(node.take(conn), VIOLATION, "{json}");
    }
    // Password users still work beside nkey users.
    node.client(r#"{"user":"p","pass":"p","verbose":false}"#);
}

const PERMS: &str = r#"
authorization {
  users = [
    { user: a, password: a, permissions: { publish: { allow: ["foo.>", "req"], deny: ["foo.bar"] }, subscribe: { allow: ["foo.*", "q.> grp"], deny: ["foo.baz"] } } }
    { user: r, password: r, permissions: { subscribe: "req", allow_responses: true } }
  ]
}
"#;

#[test]
fn publish_and_subscribe_permissions() {
    let mut node = Node::new(PERMS);
    let a = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    let out = node.exchange(
        a,
        "PUB foo.bar 1\r\nx\r\nPUB bar 1\r\nx\r\nSUB foo.baz 1\r\nSUB q.x 2\r\nSUB q.x grp 3\r\nSUB q.x other 4\r\nSUB foo.> 5\r\n",
    );
    assert_eq!(
        out,
        "-ERR 'Permissions Violation for Publish to \"foo.bar\"'\r\n\
         -ERR 'Permissions Violation for Publish to \"bar\"'\r\n\
         -ERR 'Permissions Violation for Subscription to \"foo.baz\"'\r\n\
         -ERR 'Permissions Violation for Subscription to \"q.x\"'\r\n\
         -ERR 'Permissions Violation for Subscription to \"q.x\" using queue \"other\"'\r\n\
         PONG\r\n"
    );
    assert!(
        !node.is_closed(a),
        "a permission violation keeps the connection"
    );
    let a2 = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    assert_eq!(node.exchange(a2, "SUB foo.* 1\r\n"), "PONG\r\n");
    // foo.baz is denied to subscribers: neither a's foo.> nor a2's foo.* get it.
    assert_eq!(node.exchange(a, "PUB foo.baz 1\r\nx\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(a2, ""), "PONG\r\n");
    assert_eq!(
        node.exchange(a, "PUB foo.ok 1\r\nx\r\n"),
        "MSG foo.ok 5 1\r\nx\r\nPONG\r\n"
    );
    assert_eq!(node.exchange(a2, ""), "MSG foo.ok 1 1\r\nx\r\nPONG\r\n");
    let logs: Vec<&str> = node.logs.iter().map(|l| l.message.as_str()).collect();
    assert!(
        logs.iter().any(|l| l.ends_with(
            "\"$G/user:a\" - Subscription Violation - Subject \"q.x\", Queue: \"other\""
        )),
        "{logs:?}"
    );
}

#[test]
fn allow_responses_once() {
    let mut node = Node::new(PERMS);
    let r = node.client(r#"{"user":"r","pass":"r","verbose":false}"#);
    let a = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    assert_eq!(
        node.exchange(r, "SUB req 1\r\nPUB foo.x 1\r\nx\r\n"),
        "-ERR 'Permissions Violation for Publish to \"foo.x\"'\r\nPONG\r\n"
    );
    assert_eq!(
        node.exchange(a, "SUB foo.reply 9\r\nPUB req foo.reply 1\r\nq\r\n"),
        "PONG\r\n"
    );
    assert_eq!(
        node.exchange(r, "PUB foo.reply 1\r\nA\r\nPUB foo.reply 1\r\nB\r\n"),
        "MSG req 1 foo.reply 1\r\nq\r\n-ERR 'Permissions Violation for Publish to \"foo.reply\"'\r\nPONG\r\n"
    );
    assert_eq!(node.exchange(a, ""), "MSG foo.reply 9 1\r\nA\r\nPONG\r\n");
}

#[test]
fn allowed_connection_types_of_configured_users() {
    let mut node = Node::new(
        r#"authorization { users = [
            { user: w, password: w, allowed_connection_types: ["WEBSOCKET"] }
            { user: s, password: s, allowed_connection_types: ["STANDARD", "MQTT"] }
        ] }"#,
    );
    // Exactly as nats-server 2.15 answers a plain client.
    assert_eq!(
        node.login(r#"{"user":"w","pass":"w","verbose":false}"#).1,
        VIOLATION
    );
    node.client(r#"{"user":"s","pass":"s","verbose":false}"#);
}
