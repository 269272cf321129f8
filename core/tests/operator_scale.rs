//! Operator mode with many accounts: what a claim update, a connect and
//! the account statistics cost once thousands of account JWTs are known.
//! The times are printed, not asserted (they depend on the machine); the
//! test checks that every step still does its work at that scale.
//! `cargo test -p natrix-core --release --test operator_scale -- --nocapture`
//! shows them.
// Measuring is the point here: the host clock times the core from outside.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod auth_support;

use std::time::Instant as Clock;

use auth_support::jwt;
use auth_support::{nonce_of, options, Node};
use base64::Engine;
use nkeys::KeyPair;
use serde_json::json;

/// How many accounts the server knows.
const ACCOUNTS: usize = 2_000;

fn sign(kp: &KeyPair, nonce: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(kp.sign(nonce.as_bytes()).unwrap())
}

fn login(node: &mut Node, jwt: &str, signer: &KeyPair) -> (natrix_core::ConnId, String) {
    let (conn, info) = node.connect();
    let nonce = nonce_of(&info);
    let connect = format!(
        "CONNECT {{\"jwt\":\"{jwt}\",\"sig\":\"{}\",\"verbose\":false}}\r\nPING\r\n",
        sign(signer, &nonce)
    );
    node.send(conn, &connect);
    (conn, node.take(conn))
}

/// Prints how long `step` took, in microseconds.
fn timed<T>(what: &str, step: impl FnOnce() -> T) -> T {
    let start = Clock::now();
    let out = step();
    let micros = start.elapsed().as_micros();
    println!("operator mode, {ACCOUNTS} accounts: {what}: {micros} µs");
    out
}

#[test]
fn many_accounts_claim_update_connect_and_statz() {
    let op = KeyPair::new_operator();
    let sys = KeyPair::new_account();
    let keys: Vec<KeyPair> = (0..ACCOUNTS).map(|_| KeyPair::new_account()).collect();
    let mut opts = options(&format!(
        "operator: {}\nsystem_account: {}\nresolver: {{ type: full, dir: \"./jwt\" }}\n",
        jwt::operator(&op, &[]),
        sys.public_key(),
    ));
    let preload = &mut opts.resolver_preload;
    preload.insert(sys.public_key(), jwt::account(&op, &sys, json!({})));
    // Each account exports a service and imports its neighbour's.
    for (i, acc) in keys.iter().enumerate() {
        let neighbour = &keys[(i + 1) % ACCOUNTS];
        let claims = json!({
            "exports": [{"subject": format!("svc.{i}"), "type": "service"}],
            "imports": [{"subject": format!("svc.{}", (i + 1) % ACCOUNTS),
                         "account": neighbour.public_key(), "type": "service"}],
        });
        preload.insert(acc.public_key(), jwt::account(&op, acc, claims));
    }
    let mut node = timed("start", || Node::with_options(opts));

    let su = KeyPair::new_user();
    let sys_user = jwt::user(&sys, &sys, &su, json!({}), json!({}));
    let (s, pong) = login(&mut node, &sys_user, &su);
    assert_eq!(pong, "PONG\r\n");

    // A later JWT for one account, allowing it a single connection.
    let limits = json!({"subs": -1, "data": -1, "payload": -1, "imports": -1,
        "exports": -1, "wildcards": true, "conn": 1, "leaf": -1});
    let nats = json!({"type": "account", "version": 2, "limits": limits});
    let later = json!({"iat": 1_700_000_001i64, "jti": "UPDATED"});
    let update = jwt::encode(&op, &keys[7].public_key(), "ACC", nats, later);
    let request = format!(
        "SUB r 1\r\nPUB $SYS.REQ.CLAIMS.UPDATE r {}\r\n{update}\r\n",
        update.len()
    );
    let out = timed("one claim update", || node.exchange(s, &request));
    assert!(out.contains("\"code\":200"), "{out}");

    let uu = KeyPair::new_user();
    let user = jwt::user(&keys[7], &keys[7], &uu, json!({}), json!({}));
    let (_, pong) = timed("one connect", || login(&mut node, &user, &uu));
    assert_eq!(pong, "PONG\r\n");
    let (_, second) = login(&mut node, &user, &uu);
    assert_eq!(
        second, "-ERR 'maximum account active connections exceeded'\r\n",
        "the update is in force"
    );

    let stats = timed("account statistics", || node.server.account_stats());
    assert!(stats.len() > ACCOUNTS, "{}", stats.len());
}
