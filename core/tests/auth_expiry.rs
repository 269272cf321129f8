//! Account JWTs and activation tokens that expire while the server runs.
//! As in nats-server 2.15.1 (observed against it): when an account JWT's
//! `exp` passes, its clients get `-ERR 'Account Authentication Expired'`
//! and are closed, and new ones are refused; when an activation token's
//! `exp` passes, its import stops carrying messages and requests. The
//! server's timeout is the earliest such expiry, so nothing waits for the
//! next claim update.

mod auth_support;

use auth_support::jwt;
use auth_support::{nonce_of, Node};
use base64::Engine;
use natrix_core::server::CloseReason;
use natrix_core::{ConnId, Instant};
use nkeys::KeyPair;
use serde_json::{json, Value};

const EXPIRED: &str = "-ERR 'Account Authentication Expired'\r\n";
const VIOLATION: &str = "-ERR 'Authorization Violation'\r\n";
/// The test node's wall clock at start, in Unix seconds.
const START: i64 = 1_700_000_000;

/// An account JWT signed by `op` with these `nats` claims and top-level `extra`.
fn account(op: &KeyPair, acc: &KeyPair, nats: Value, extra: Value) -> String {
    let mut all = json!({
        "type": "account", "version": 2,
        "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1}
    });
    for (k, v) in nats.as_object().unwrap() {
        all[k] = v.clone();
    }
    jwt::encode(op, &acc.public_key(), "ACC", all, extra)
}

/// A node under the NATS resolver whose system account is `sys`,
/// preloaded with these (account, JWT) pairs besides the system account's.
fn node(op: &KeyPair, sys: &KeyPair, accounts: &[(&KeyPair, String)]) -> Node {
    let mut preload = format!(
        " {}: {}\n",
        sys.public_key(),
        jwt::account(op, sys, json!({}))
    );
    for (acc, token) in accounts {
        preload.push_str(&format!(" {}: {}\n", acc.public_key(), token));
    }
    Node::new(&format!(
        "operator: {}\nsystem_account: {}\nresolver: {{ type: full, dir: \"./jwt\" }}\nresolver_preload: {{\n{preload}}}\n",
        jwt::operator(op, &[]),
        sys.public_key(),
    ))
}

/// Connects as a new user of `acc`; returns the connection and the answer
/// to CONNECT + PING.
fn login(node: &mut Node, acc: &KeyPair) -> (ConnId, String) {
    let u = KeyPair::new_user();
    let token = jwt::user(acc, acc, &u, json!({}), json!({}));
    let (conn, info) = node.connect();
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(u.sign(nonce_of(&info).as_bytes()).unwrap());
    let connect = format!("CONNECT {{\"jwt\":\"{token}\",\"sig\":\"{sig}\",\"verbose\":false,\"protocol\":1,\"headers\":true,\"no_responders\":true}}\r\nPING\r\n");
    node.send(conn, &connect);
    let answer = node.take(conn);
    (conn, answer)
}

/// Logs in and asserts the user was admitted.
fn client(node: &mut Node, acc: &KeyPair) -> ConnId {
    let (conn, answer) = login(node, acc);
    assert!(answer.starts_with("PONG\r\nINFO "), "admitted: {answer}");
    conn
}

/// The instant at which the node's wall clock reads `unix_secs`.
fn instant_at(unix_secs: i64) -> Instant {
    Instant::from_nanos(u64::try_from(unix_secs - START).unwrap() * 1_000_000_000)
}

/// Advances the node's clock to `at`.
fn advance_to(node: &mut Node, at: Instant) {
    let by = at.saturating_duration_since(node.now);
    node.advance(by);
}

#[test]
fn an_expiring_account_closes_its_clients_at_its_exp() {
    let (op, sys, doomed, other) = (
        KeyPair::new_operator(),
        KeyPair::new_account(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let exp = START + 1;
    let mut node = node(
        &op,
        &sys,
        &[
            (
                &doomed,
                account(&op, &doomed, json!({}), json!({"exp": exp})),
            ),
            (&other, account(&op, &other, json!({}), json!({}))),
        ],
    );
    assert_eq!(node.server.poll_timeout(), Some(instant_at(exp)));
    let first = client(&mut node, &doomed);
    let second = client(&mut node, &doomed);
    let survivor = client(&mut node, &other);

    advance_to(&mut node, Instant::from_nanos(999_999_999));
    assert_eq!(node.exchange(first, ""), "PONG\r\n", "not expired yet");
    advance_to(&mut node, instant_at(exp));
    for conn in [first, second] {
        assert_eq!(node.take(conn), EXPIRED);
        assert_eq!(
            node.closed.get(&conn),
            Some(&CloseReason::AuthenticationExpired)
        );
    }
    assert_eq!(node.exchange(survivor, ""), "PONG\r\n");
    assert!(!node.is_closed(survivor));
    let (_, answer) = login(&mut node, &doomed);
    assert_eq!(answer, VIOLATION, "a new client of the expired account");
    assert!(
        node.logs
            .iter()
            .any(|l| l.message.ends_with("- Account Authentication Expired")),
        "{:?}",
        node.logs
    );
}

/// An exporter of a private `feed.>` stream and `svc` service, and an
/// importer of both whose activation tokens expire at `exp`.
struct Pair {
    op: KeyPair,
    sys: KeyPair,
    exporter: KeyPair,
    importer: KeyPair,
    node: Node,
}

fn activation(
    exporter: &KeyPair,
    importer: &KeyPair,
    subject: &str,
    kind: &str,
    exp: i64,
) -> String {
    jwt::encode(
        exporter,
        &importer.public_key(),
        "act",
        json!({"type": "activation", "version": 2, "subject": subject, "kind": kind}),
        json!({"exp": exp}),
    )
}

fn importer_nats(exporter: &KeyPair, importer: &KeyPair, exp: i64) -> Value {
    json!({"imports": [
        {"type": "stream", "subject": "feed.>", "account": exporter.public_key(),
         "token": activation(exporter, importer, "feed.>", "stream", exp)},
        {"type": "service", "subject": "svc", "account": exporter.public_key(),
         "token": activation(exporter, importer, "svc", "service", exp)},
    ]})
}

fn pair(exp: i64) -> Pair {
    let (op, sys, exporter, importer) = (
        KeyPair::new_operator(),
        KeyPair::new_account(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let exports = json!({"exports": [
        {"type": "stream", "subject": "feed.>", "token_req": true},
        {"type": "service", "subject": "svc", "token_req": true},
    ]});
    let node = node(
        &op,
        &sys,
        &[
            (&exporter, account(&op, &exporter, exports, json!({}))),
            (
                &importer,
                account(
                    &op,
                    &importer,
                    importer_nats(&exporter, &importer, exp),
                    json!({}),
                ),
            ),
        ],
    );
    Pair {
        op,
        sys,
        exporter,
        importer,
        node,
    }
}

/// Clients of the pair: a publisher and service responder in the
/// exporter, a stream subscriber and requester in the importer.
fn pair_clients(node: &mut Node, p_exporter: &KeyPair, p_importer: &KeyPair) -> (ConnId, ConnId) {
    let exporter = client(node, p_exporter);
    let importer = client(node, p_importer);
    assert_eq!(node.exchange(exporter, "SUB svc 1\r\n"), "PONG\r\n");
    assert_eq!(
        node.exchange(importer, "SUB feed.> 1\r\nSUB reply 2\r\n"),
        "PONG\r\n"
    );
    (exporter, importer)
}

/// Whether the import of `feed.>` and of `svc` carry a message now. A
/// request nobody can take is answered with a no-responders status.
fn crossings(node: &mut Node, exporter: ConnId, importer: ConnId) -> (bool, bool) {
    assert_eq!(node.exchange(exporter, "PUB feed.x 1\r\na\r\n"), "PONG\r\n");
    let stream = node.exchange(importer, "");
    let asked = node.exchange(importer, "PUB svc reply 1\r\nq\r\n");
    let request = node.exchange(exporter, "");
    let taken = request.contains("MSG svc 1 ");
    let no_responders =
        "HMSG reply 2 35 35\r\nNATS/1.0 503\r\nNats-Subject: svc\r\n\r\n\r\nPONG\r\n";
    assert_eq!(asked, if taken { "PONG\r\n" } else { no_responders });
    (stream.contains("MSG feed.x 1 1\r\na\r\n"), taken)
}

#[test]
fn an_expiring_activation_token_closes_its_imports_at_its_exp() {
    let exp = START + 1;
    let mut p = pair(exp);
    assert_eq!(p.node.server.poll_timeout(), Some(instant_at(exp)));
    let (exporter, importer) = pair_clients(&mut p.node, &p.exporter, &p.importer);
    assert_eq!(crossings(&mut p.node, exporter, importer), (true, true));

    advance_to(&mut p.node, instant_at(exp));
    assert_eq!(crossings(&mut p.node, exporter, importer), (false, false));
    assert!(!p.node.is_closed(exporter) && !p.node.is_closed(importer));
    // The passed deadline is gone: the next timeout lies ahead.
    let now = p.node.now;
    assert!(p.node.server.poll_timeout().is_some_and(|at| at > now));
}

/// Sends an account JWT as a claim update from a system account user.
fn claim_update(node: &mut Node, sys_conn: ConnId, account_jwt: &str) {
    let out = node.exchange(
        sys_conn,
        &format!(
            "PUB $SYS.REQ.CLAIMS.UPDATE r {}\r\n{account_jwt}\r\n",
            account_jwt.len()
        ),
    );
    assert!(out.contains("\"code\":200"), "claim update: {out}");
}

#[test]
fn claim_updates_move_the_deadline() {
    let mut p = pair(START + 1);
    let sys_conn = client(&mut p.node, &p.sys);
    assert_eq!(p.node.exchange(sys_conn, "SUB r 1\r\n"), "PONG\r\n");
    let (exporter, importer) = pair_clients(&mut p.node, &p.exporter, &p.importer);

    // New tokens, good for a minute longer, replace the ones about to expire.
    let later = START + 61;
    let renewed = account(
        &p.op,
        &p.importer,
        importer_nats(&p.exporter, &p.importer, later),
        json!({}),
    );
    claim_update(&mut p.node, sys_conn, &renewed);
    assert_eq!(
        p.node
            .server
            .poll_timeout()
            .map(|at| at <= instant_at(later)),
        Some(true)
    );
    advance_to(&mut p.node, instant_at(START + 1));
    answer_pings(&mut p.node, &[sys_conn, exporter, importer]);
    assert_eq!(crossings(&mut p.node, exporter, importer), (true, true));

    // An account JWT that now expires: its clients go when it does.
    let mortal = account(
        &p.op,
        &p.exporter,
        json!({"exports": [
            {"type": "stream", "subject": "feed.>", "token_req": true},
            {"type": "service", "subject": "svc", "token_req": true},
        ]}),
        json!({"exp": START + 30}),
    );
    claim_update(&mut p.node, sys_conn, &mortal);
    advance_to(&mut p.node, instant_at(START + 30));
    assert_eq!(p.node.take(exporter), EXPIRED);
    assert_eq!(
        p.node.closed.get(&exporter),
        Some(&CloseReason::AuthenticationExpired)
    );
    assert!(!p.node.is_closed(importer) && !p.node.is_closed(sys_conn));
}

/// Answers the server's PINGs so the clients stay connected.
fn answer_pings(node: &mut Node, conns: &[ConnId]) {
    for &conn in conns {
        let got = node.take(conn);
        assert!(
            got.is_empty() || got.chars().all(|c| "PING\r\n".contains(c)),
            "{got}"
        );
        if !got.is_empty() {
            assert_eq!(node.exchange(conn, "PONG\r\n"), "PONG\r\n");
        }
    }
}

#[test]
fn a_claim_update_already_expired_drops_no_client() {
    // nats-server stores such a JWT but never runs an expiry timer for it:
    // the clients connected stay.
    let (op, sys, acc) = (
        KeyPair::new_operator(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let mut node = node(
        &op,
        &sys,
        &[(&acc, account(&op, &acc, json!({}), json!({})))],
    );
    let sys_conn = client(&mut node, &sys);
    assert_eq!(node.exchange(sys_conn, "SUB r 1\r\n"), "PONG\r\n");
    let kept = client(&mut node, &acc);
    // Expired a moment ago, since the last look at expiries.
    advance_to(&mut node, Instant::from_nanos(1_500_000_000));
    let expired = account(&op, &acc, json!({}), json!({"exp": START + 1}));
    claim_update(&mut node, sys_conn, &expired);
    advance_to(&mut node, Instant::from_nanos(1_900_000_000));
    assert_eq!(node.exchange(kept, ""), "PONG\r\n");
    assert!(!node.is_closed(kept));
}
