//! Account and user JWT limits (`conn`, `subs`, `payload`, and the
//! `imports`/`exports`/`wildcards` rules an account JWT must keep), and
//! claim updates that re-wire imports and exports and apply new limits to
//! connected clients. The expected texts and actions are nats-server
//! 2.15.1's, observed against it.

mod auth_support;

use auth_support::jwt;
use auth_support::{nonce_of, Node};
use base64::Engine;
use natrix_core::server::CloseReason;
use natrix_core::ConnId;
use nkeys::KeyPair;
use serde_json::{json, Value};

const VIOLATION: &str = "-ERR 'Authorization Violation'\r\n";
const CONNS_EXCEEDED: &str = "-ERR 'maximum account active connections exceeded'\r\n";
const SUBS_EXCEEDED: &str = "-ERR 'maximum subscriptions exceeded'\r\n";
const PAYLOAD_VIOLATION: &str = "-ERR 'Maximum Payload Violation'\r\n";

/// `limits` of an account JWT: nsc's unlimited defaults with `changes`.
fn limits(changes: Value) -> Value {
    let mut l = json!({"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1});
    for (k, v) in changes.as_object().unwrap() {
        l[k] = v.clone();
    }
    l
}

struct Setup {
    acc: KeyPair,
    node: Node,
}

/// A server under the NATS resolver with a system account and `acc`,
/// whose JWT carries `acc_nats`.
fn setup(acc_nats: Value) -> Setup {
    let (op, sys, acc) = (
        KeyPair::new_operator(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let config = jwt::resolver_config(&op, &sys, "", &[(&acc, jwt::account(&op, &acc, acc_nats))]);
    Setup {
        acc,
        node: Node::new(&config),
    }
}

fn sign(kp: &KeyPair, nonce: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(kp.sign(nonce.as_bytes()).unwrap())
}

/// Connects as a new user of `acc` whose JWT (signed by `signer`) carries
/// `nats`; returns the connection and the answer to CONNECT + PING.
fn login_as(node: &mut Node, signer: &KeyPair, acc: &KeyPair, nats: Value) -> (ConnId, String) {
    let u = KeyPair::new_user();
    let token = jwt::user(signer, acc, &u, nats, json!({}));
    let (conn, info) = node.connect();
    let sig = sign(&u, &nonce_of(&info));
    let connect = format!("CONNECT {{\"jwt\":\"{token}\",\"sig\":\"{sig}\",\"verbose\":false,\"protocol\":1}}\r\nPING\r\n");
    node.send(conn, &connect);
    let answer = node.take(conn);
    (conn, answer)
}

fn login(node: &mut Node, acc: &KeyPair, nats: Value) -> (ConnId, String) {
    login_as(node, acc, acc, nats)
}

/// Logs in and asserts the user was admitted; returns its connection.
fn client(node: &mut Node, acc: &KeyPair, nats: Value) -> ConnId {
    let (conn, answer) = login(node, acc, nats);
    assert!(answer.starts_with("PONG\r\nINFO "), "admitted: {answer}");
    conn
}

/// The `max_payload` of the INFO a protocol-1 client gets after its first PONG.
fn max_payload_after_connect(answer: &str) -> u64 {
    let info = answer
        .lines()
        .find_map(|l| l.strip_prefix("INFO "))
        .expect("INFO after PONG");
    let v: Value = serde_json::from_str(info).unwrap();
    assert_eq!(v["connect_info"], true);
    v["max_payload"].as_u64().unwrap()
}

/// Sends an account JWT as a claim update from a system account user and
/// returns the reply's `data` (or `error`) object.
fn claim_update(node: &mut Node, sys_conn: ConnId, account_jwt: &str) -> Value {
    let out = node.exchange(
        sys_conn,
        &format!(
            "PUB $SYS.REQ.CLAIMS.UPDATE r {}\r\n{account_jwt}\r\n",
            account_jwt.len()
        ),
    );
    let body = out
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no reply: {out}"));
    let v: Value = serde_json::from_str(body).unwrap();
    if v.get("data").is_some() {
        v["data"].clone()
    } else {
        v["error"].clone()
    }
}

/// A user of the system account subscribed to `r`, where claim update replies go.
fn system_client(node: &mut Node, sys: &KeyPair) -> ConnId {
    let conn = client(node, sys, json!({}));
    assert_eq!(node.exchange(conn, "SUB r 1\r\n"), "PONG\r\n");
    conn
}

#[test]
fn account_conn_limit_refuses_the_connection_over_it() {
    let mut s = setup(json!({"limits": limits(json!({"conn": 2}))}));
    let first = client(&mut s.node, &s.acc, json!({}));
    client(&mut s.node, &s.acc, json!({}));
    let (third, answer) = login(&mut s.node, &s.acc, json!({}));
    assert_eq!(answer, CONNS_EXCEEDED, "no PONG: refused at CONNECT");
    assert_eq!(
        s.node.closed.get(&third),
        Some(&CloseReason::MaxAccountConnectionsExceeded)
    );
    assert_eq!(
        CloseReason::MaxAccountConnectionsExceeded.as_str(),
        "Maximum Account Connections Exceeded"
    );
    // A place frees up when a client leaves.
    s.node
        .server
        .handle_closed(s.node.now, first, CloseReason::ClientClosed);
    client(&mut s.node, &s.acc, json!({}));
    assert!(login(&mut s.node, &s.acc, json!({})).1.starts_with("-ERR"));
}

#[test]
fn subscription_limits_are_per_connection_and_the_tighter_wins() {
    let mut s = setup(json!({"limits": limits(json!({"subs": 3}))}));
    let a = client(&mut s.node, &s.acc, json!({}));
    let out = s
        .node
        .exchange(a, "SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nSUB d 4\r\n");
    assert_eq!(out, format!("{SUBS_EXCEEDED}PONG\r\n"));
    assert_eq!(
        s.node.exchange(a, "UNSUB 1\r\nSUB d 4\r\n"),
        "PONG\r\n",
        "the connection stays, and a freed place counts"
    );
    // The account's limit bounds each connection, not their sum.
    let b = client(&mut s.node, &s.acc, json!({"subs": 2}));
    let out = s.node.exchange(b, "SUB a 1\r\nSUB b 2\r\nSUB c 3\r\n");
    assert_eq!(
        out,
        format!("{SUBS_EXCEEDED}PONG\r\n"),
        "the user's tighter limit"
    );
    let c = client(&mut s.node, &s.acc, json!({"subs": 10}));
    let out = s
        .node
        .exchange(c, "SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nSUB d 4\r\n");
    assert_eq!(
        out,
        format!("{SUBS_EXCEEDED}PONG\r\n"),
        "the account's tighter limit"
    );
    assert!(!s.node.is_closed(a) && !s.node.is_closed(b) && !s.node.is_closed(c));
}

#[test]
fn payload_limit_lowers_max_payload_and_closes_on_violation() {
    let mut s = setup(json!({"limits": limits(json!({"payload": 100}))}));
    let (a, answer) = login(&mut s.node, &s.acc, json!({}));
    assert_eq!(max_payload_after_connect(&answer), 100);
    let (b, answer) = login(&mut s.node, &s.acc, json!({"payload": 50}));
    assert_eq!(max_payload_after_connect(&answer), 50);
    let ok = format!("PUB x 50\r\n{}\r\n", "x".repeat(50));
    assert_eq!(s.node.exchange(b, &ok), "PONG\r\n");
    s.node
        .send(b, &format!("PUB x 60\r\n{}\r\n", "x".repeat(60)));
    assert_eq!(s.node.take(b), PAYLOAD_VIOLATION);
    assert_eq!(
        s.node.closed.get(&b),
        Some(&CloseReason::MaxPayloadExceeded)
    );
    s.node
        .send(a, &format!("PUB x 101\r\n{}\r\n", "x".repeat(101)));
    assert_eq!(s.node.take(a), PAYLOAD_VIOLATION);
    assert!(s.node.is_closed(a));
}

#[test]
fn limits_left_out_of_a_jwt_are_zero() {
    // nsc writes -1 for unlimited; a limit left out is 0, as in nats-server.
    let mut s = setup(json!({"limits": {"conn": -1}}));
    let (conn, answer) = login(&mut s.node, &s.acc, json!({}));
    assert_eq!(
        answer, SUBS_EXCEEDED,
        "no subscription allowed: closed at once"
    );
    assert_eq!(
        s.node.closed.get(&conn),
        Some(&CloseReason::MaxSubscriptionsExceeded)
    );

    let mut s = setup(json!({"limits": {}}));
    assert_eq!(login(&mut s.node, &s.acc, json!({})).1, CONNS_EXCEEDED);

    let mut s = setup(json!({}));
    // The helper's `scoped` form writes a user JWT with no limits at all.
    let user_without_limits = json!({"scoped": true});
    let (_, answer) = login(&mut s.node, &s.acc, user_without_limits);
    assert_eq!(answer, SUBS_EXCEEDED);
}

#[test]
fn a_scoped_signing_key_template_carries_the_user_limits() {
    let scoped = KeyPair::new_account();
    let template = json!({"pub": {}, "sub": {}, "subs": 1, "payload": 20});
    let keys = json!({"signing_keys": [{"kind": "user_scope", "key": scoped.public_key(), "role": "r", "template": template}]});
    let mut s = setup(keys);
    let (conn, answer) = login_as(&mut s.node, &scoped, &s.acc, json!({"scoped": true}));
    assert_eq!(max_payload_after_connect(&answer), 20);
    assert_eq!(
        s.node.exchange(conn, "SUB a 1\r\nSUB b 2\r\n"),
        format!("{SUBS_EXCEEDED}PONG\r\n")
    );
    // A template without limits leaves the user unlimited.
    let scoped2 = KeyPair::new_account();
    let keys = json!({"signing_keys": [{"kind": "user_scope", "key": scoped2.public_key(), "role": "r", "template": {"pub": {}}}]});
    let mut s = setup(keys);
    let (_, answer) = login_as(&mut s.node, &scoped2, &s.acc, json!({"scoped": true}));
    assert_eq!(max_payload_after_connect(&answer), 1024 * 1024);
}

#[test]
fn an_account_breaking_its_export_rules_is_refused() {
    let wild = json!({"limits": limits(json!({"exports": 5, "wildcards": false})), "exports": [{"type": "stream", "subject": "w.>"}]});
    let mut s = setup(wild);
    assert_eq!(login(&mut s.node, &s.acc, json!({})).1, VIOLATION);
    let many = json!({"limits": limits(json!({"exports": 1})), "exports": [{"type": "stream", "subject": "a"}, {"type": "stream", "subject": "b"}]});
    let mut s = setup(many);
    assert_eq!(login(&mut s.node, &s.acc, json!({})).1, VIOLATION);
    // Wildcards are only checked when exports are limited, as nats-server does.
    let unlimited = json!({"limits": limits(json!({"wildcards": false})), "exports": [{"type": "stream", "subject": "w.>"}]});
    let mut s = setup(unlimited);
    client(&mut s.node, &s.acc, json!({}));
}

#[test]
fn the_jwt_validation_errors_read_as_nats_servers() {
    use natrix_core::auth::jwt::{AccountNats, JwtError};
    let nats: AccountNats = serde_json::from_value(json!({
        "type": "account",
        "limits": limits(json!({"imports": 0, "exports": 1, "wildcards": false})),
        "imports": [{"type": "stream", "subject": "x", "account": "A"}],
        "exports": [{"type": "stream", "subject": "a.*"}, {"type": "service", "subject": "b"}],
    }))
    .unwrap();
    let err = nats.validate().unwrap_err();
    assert!(matches!(err, JwtError::Invalid(_)));
    assert_eq!(
        err.to_string(),
        "validation errors: [the account contains more imports than allowed by the operator \
         the account contains more imports than allowed by the operator \
         the account contains more exports than allowed by the operator \
         the account contains wildcard exports that are not allowed by the operator]"
    );
}

/// Two accounts: `exporter` (whose JWT the test updates) and `importer`,
/// which imports `feed.>` as a stream and `svc` as a service from it.
struct Pair {
    op: KeyPair,
    node: Node,
    exporter: KeyPair,
    importer: KeyPair,
    sys_conn: ConnId,
}

fn pair() -> Pair {
    let (op, sys, exporter, importer) = (
        KeyPair::new_operator(),
        KeyPair::new_account(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let imports = json!({"imports": [
        {"type": "stream", "subject": "feed.>", "account": exporter.public_key()},
        {"type": "service", "subject": "svc", "account": exporter.public_key()},
    ]});
    let preload = [
        (&exporter, jwt::account(&op, &exporter, json!({}))),
        (&importer, jwt::account(&op, &importer, imports)),
    ];
    let config = jwt::resolver_config(&op, &sys, "", &preload);
    let mut node = Node::new(&config);
    let sys_conn = system_client(&mut node, &sys);
    Pair {
        op,
        node,
        exporter,
        importer,
        sys_conn,
    }
}

fn exports(subjects: &[(&str, &str)]) -> Value {
    let list: Vec<Value> = subjects
        .iter()
        .map(|(kind, subject)| json!({"type": kind, "subject": subject}))
        .collect();
    json!({"exports": list})
}

#[test]
fn a_claim_update_adding_and_removing_exports_rewires_the_imports() {
    let mut p = pair();
    let node = &mut p.node;
    let pubber = client(node, &p.exporter, json!({}));
    let subber = client(node, &p.importer, json!({}));
    assert_eq!(
        node.exchange(subber, "SUB feed.> 1\r\nSUB _INBOX.1 2\r\n"),
        "PONG\r\n"
    );
    assert_eq!(
        node.exchange(pubber, "SUB svc 9\r\nPUB feed.x 2\r\nhi\r\n"),
        "PONG\r\n"
    );
    assert_eq!(
        node.exchange(subber, ""),
        "PONG\r\n",
        "nothing crosses before the export exists"
    );
    assert_eq!(
        node.exchange(subber, "PUB svc _INBOX.1 1\r\nq\r\n"),
        "PONG\r\n"
    );
    assert_eq!(node.take(pubber), "");

    let update = jwt::account(
        &p.op,
        &p.exporter,
        exports(&[("stream", "feed.>"), ("service", "svc")]),
    );
    assert_eq!(claim_update(node, p.sys_conn, &update)["code"], 200);
    assert_eq!(node.exchange(pubber, "PUB feed.x 2\r\nhi\r\n"), "PONG\r\n");
    assert_eq!(
        node.exchange(subber, ""),
        "MSG feed.x 1 2\r\nhi\r\nPONG\r\n",
        "the stream import works now"
    );
    assert_eq!(
        node.exchange(subber, "PUB svc _INBOX.1 1\r\nq\r\n"),
        "PONG\r\n"
    );
    let request = node.take(pubber);
    let reply = request
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("request: {request}"))
        .to_owned();
    assert!(request.starts_with("MSG svc 9 _R_."), "{request}");

    // Removing the stream export stops the stream; the response in flight still arrives.
    let update = jwt::account(&p.op, &p.exporter, exports(&[("service", "svc")]));
    assert_eq!(claim_update(node, p.sys_conn, &update)["code"], 200);
    assert_eq!(
        node.exchange(
            pubber,
            &format!("PUB feed.x 2\r\nhi\r\nPUB {reply} 1\r\na\r\n")
        ),
        "PONG\r\n"
    );
    assert_eq!(
        node.exchange(subber, ""),
        "MSG _INBOX.1 2 1\r\na\r\nPONG\r\n"
    );
    // The service export stays.
    assert_eq!(
        node.exchange(subber, "PUB svc _INBOX.1 1\r\nq\r\n"),
        "PONG\r\n"
    );
    assert!(node.take(pubber).starts_with("MSG svc 9 _R_."));
}

#[test]
fn a_claim_update_of_the_importer_adds_and_drops_its_imports() {
    let mut p = pair();
    let node = &mut p.node;
    let update = jwt::account(
        &p.op,
        &p.exporter,
        exports(&[("stream", "feed.>"), ("stream", "more.>")]),
    );
    assert_eq!(claim_update(node, p.sys_conn, &update)["code"], 200);
    let pubber = client(node, &p.exporter, json!({}));
    let subber = client(node, &p.importer, json!({}));
    assert_eq!(
        node.exchange(subber, "SUB feed.> 1\r\nSUB more.> 2\r\n"),
        "PONG\r\n"
    );
    let publish = "PUB feed.x 1\r\na\r\nPUB more.y 1\r\nb\r\n";
    assert_eq!(node.exchange(pubber, publish), "PONG\r\n");
    assert_eq!(node.exchange(subber, ""), "MSG feed.x 1 1\r\na\r\nPONG\r\n");

    let imports = json!({"imports": [{"type": "stream", "subject": "more.>", "account": p.exporter.public_key()}]});
    let update = jwt::account(&p.op, &p.importer, imports);
    assert_eq!(claim_update(node, p.sys_conn, &update)["code"], 200);
    assert_eq!(node.exchange(pubber, publish), "PONG\r\n");
    assert_eq!(node.exchange(subber, ""), "MSG more.y 2 1\r\nb\r\nPONG\r\n");
}

#[test]
fn a_private_export_needs_an_activation_token_for_each_importer() {
    let mut p = pair();
    let node = &mut p.node;
    let private = json!({"exports": [{"type": "stream", "subject": "feed.>", "token_req": true}]});
    let update = jwt::account(&p.op, &p.exporter, private.clone());
    assert_eq!(claim_update(node, p.sys_conn, &update)["code"], 200);
    let pubber = client(node, &p.exporter, json!({}));
    let subber = client(node, &p.importer, json!({}));
    assert_eq!(node.exchange(subber, "SUB feed.> 1\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(pubber, "PUB feed.x 1\r\na\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(subber, ""), "PONG\r\n", "no token yet");

    let token = jwt::encode(
        &p.exporter,
        &p.importer.public_key(),
        "act",
        json!({"type": "activation", "version": 2, "subject": "feed.>", "kind": "stream"}),
        json!({}),
    );
    let imports = json!({"imports": [{"type": "stream", "subject": "feed.>", "account": p.exporter.public_key(), "token": token}]});
    let update = jwt::account(&p.op, &p.importer, imports);
    assert_eq!(claim_update(node, p.sys_conn, &update)["code"], 200);
    assert_eq!(node.exchange(pubber, "PUB feed.x 1\r\na\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(subber, ""), "MSG feed.x 1 1\r\na\r\nPONG\r\n");
}

#[test]
fn a_claim_update_lowering_conn_closes_the_newest_clients() {
    let mut p = pair();
    let node = &mut p.node;
    let oldest = client(node, &p.exporter, json!({}));
    let middle = client(node, &p.exporter, json!({}));
    let newest = client(node, &p.exporter, json!({}));
    let other = client(node, &p.importer, json!({}));
    let update = jwt::account(
        &p.op,
        &p.exporter,
        json!({"limits": limits(json!({"conn": 1}))}),
    );
    assert_eq!(claim_update(node, p.sys_conn, &update)["code"], 200);
    for conn in [middle, newest] {
        assert_eq!(node.take(conn), CONNS_EXCEEDED);
        assert_eq!(
            node.closed.get(&conn),
            Some(&CloseReason::MaxAccountConnectionsExceeded)
        );
    }
    assert_eq!(node.exchange(oldest, ""), "PONG\r\n");
    assert_eq!(
        node.exchange(other, ""),
        "PONG\r\n",
        "other accounts are untouched"
    );
    assert_eq!(login(node, &p.exporter, json!({})).1, CONNS_EXCEEDED);
}

#[test]
fn a_claim_update_applies_new_subscription_and_payload_limits() {
    let mut p = pair();
    let node = &mut p.node;
    let over = client(node, &p.exporter, json!({}));
    let under = client(node, &p.exporter, json!({}));
    let at_limit = over;
    assert_eq!(
        node.exchange(at_limit, "SUB a 1\r\nSUB b 2\r\n"),
        "PONG\r\n"
    );
    assert_eq!(node.exchange(under, "SUB a 1\r\n"), "PONG\r\n");
    let update = jwt::account(
        &p.op,
        &p.exporter,
        json!({"limits": limits(json!({"subs": 2, "payload": 10}))}),
    );
    assert_eq!(claim_update(node, p.sys_conn, &update)["code"], 200);
    // nats-server closes a client holding as many subscriptions as it may now.
    assert_eq!(node.take(over), SUBS_EXCEEDED);
    assert_eq!(
        node.closed.get(&over),
        Some(&CloseReason::MaxSubscriptionsExceeded)
    );
    assert_eq!(
        node.exchange(under, "SUB b 2\r\nSUB c 3\r\n"),
        format!("{SUBS_EXCEEDED}PONG\r\n")
    );
    node.send(under, "PUB x 11\r\n01234567890\r\n");
    assert_eq!(node.take(under), PAYLOAD_VIOLATION);
    // Raising the limits again lifts them for new clients.
    let update = jwt::account(&p.op, &p.exporter, json!({}));
    assert_eq!(claim_update(node, p.sys_conn, &update)["code"], 200);
    let (_, answer) = login(node, &p.exporter, json!({}));
    assert_eq!(max_payload_after_connect(&answer), 1024 * 1024);
}

#[test]
fn an_account_disallowing_bearer_tokens_refuses_and_drops_their_users() {
    let mut s = setup(json!({"limits": limits(json!({"disallow_bearer": true}))}));
    assert_eq!(
        login(&mut s.node, &s.acc, json!({"bearer_token": true})).1,
        VIOLATION
    );
    client(&mut s.node, &s.acc, json!({}));

    let mut p = pair();
    let node = &mut p.node;
    let bearer = client(node, &p.exporter, json!({"bearer_token": true}));
    let signed = client(node, &p.exporter, json!({}));
    let update = jwt::account(
        &p.op,
        &p.exporter,
        json!({"limits": limits(json!({"disallow_bearer": true}))}),
    );
    assert_eq!(claim_update(node, p.sys_conn, &update)["code"], 200);
    assert_eq!(node.take(bearer), VIOLATION);
    assert_eq!(
        node.closed.get(&bearer),
        Some(&CloseReason::AuthenticationViolation)
    );
    assert_eq!(node.exchange(signed, ""), "PONG\r\n");
}

/// An activation token by `exporter` for `importer` to import `feed.>`.
fn activation_token(exporter: &KeyPair, importer: &KeyPair, extra: Value) -> String {
    jwt::encode(
        exporter,
        &importer.public_key(),
        "act",
        json!({"type": "activation", "version": 2, "subject": "feed.>", "kind": "stream"}),
        extra,
    )
}

#[test]
fn expired_and_revoked_activation_tokens_open_nothing() {
    let mut p = pair();
    let node = &mut p.node;
    let private = json!({"exports": [{"type": "stream", "subject": "feed.>", "token_req": true}]});
    let update = jwt::account(&p.op, &p.exporter, private);
    assert_eq!(claim_update(node, p.sys_conn, &update)["code"], 200);
    let pubber = client(node, &p.exporter, json!({}));
    let subber = client(node, &p.importer, json!({}));
    assert_eq!(node.exchange(subber, "SUB feed.> 1\r\n"), "PONG\r\n");
    let import_with = |token: String| json!({"imports": [{"type": "stream", "subject": "feed.>", "account": p.exporter.public_key(), "token": token}]});

    // The node's wall clock reads 1_700_000_000.
    let expired = activation_token(&p.exporter, &p.importer, json!({"exp": 1_600_000_000i64}));
    let update = jwt::account(&p.op, &p.importer, import_with(expired));
    assert_eq!(claim_update(node, p.sys_conn, &update)["code"], 200);
    assert_eq!(node.exchange(pubber, "PUB feed.x 1\r\na\r\n"), "PONG\r\n");
    assert_eq!(
        node.exchange(subber, ""),
        "PONG\r\n",
        "an expired token opens nothing"
    );

    let valid = activation_token(&p.exporter, &p.importer, json!({}));
    let update = jwt::account(&p.op, &p.importer, import_with(valid));
    assert_eq!(claim_update(node, p.sys_conn, &update)["code"], 200);
    assert_eq!(node.exchange(pubber, "PUB feed.x 1\r\na\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(subber, ""), "MSG feed.x 1 1\r\na\r\nPONG\r\n");

    // The helper issues every token at 1_700_000_000: revoking up to then closes the import.
    let revoked = json!({"exports": [{"type": "stream", "subject": "feed.>", "token_req": true,
        "revocations": {p.importer.public_key(): 1_700_000_000i64}}]});
    let update = jwt::account(&p.op, &p.exporter, revoked);
    assert_eq!(claim_update(node, p.sys_conn, &update)["code"], 200);
    assert_eq!(node.exchange(pubber, "PUB feed.x 1\r\na\r\n"), "PONG\r\n");
    assert_eq!(
        node.exchange(subber, ""),
        "PONG\r\n",
        "a revoked token opens nothing"
    );
}
