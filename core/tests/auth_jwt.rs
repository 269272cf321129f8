//! S3: operator mode. User JWTs are checked along the chain operator →
//! account (or its signing key) → user, for expiry and revocation, and the
//! user's nkey must sign the nonce. Every bad credential is refused with
//! `-ERR 'Authorization Violation'`.

mod auth_support;

use auth_support::jwt::{self, creds};
use auth_support::{nonce_of, Node};
use base64::Engine;
use natrix_core::config::{load, MemorySource};
use nkeys::KeyPair;
use serde_json::json;

const VIOLATION: &str = "-ERR 'Authorization Violation'\r\n";

struct Setup {
    op: KeyPair,
    op_signer: KeyPair,
    acc: KeyPair,
    acc_signer: KeyPair,
    other_acc: KeyPair,
    config: String,
}

impl Setup {
    fn new(account_extra: serde_json::Value) -> Setup {
        let (op, op_signer) = (KeyPair::new_operator(), KeyPair::new_operator());
        let (acc, acc_signer, other_acc) = (
            KeyPair::new_account(),
            KeyPair::new_account(),
            KeyPair::new_account(),
        );
        let mut extra = json!({"signing_keys": [acc_signer.public_key()]});
        if let (Some(e), Some(more)) = (extra.as_object_mut(), account_extra.as_object()) {
            e.extend(more.clone());
        }
        let config = format!(
            "operator: {}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {}\n  {}: {}\n}}\n",
            jwt::operator(&op, &[op_signer.public_key()]),
            acc.public_key(),
            jwt::account(&op, &acc, extra),
            other_acc.public_key(),
            jwt::account(&op_signer, &other_acc, json!({})),
        );
        Setup {
            op,
            op_signer,
            acc,
            acc_signer,
            other_acc,
            config,
        }
    }

    fn user(&self, user: &KeyPair) -> String {
        jwt::user(&self.acc, &self.acc, user, json!({}), json!({}))
    }
}

fn sign(kp: &KeyPair, nonce: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(kp.sign(nonce.as_bytes()).unwrap())
}

/// Connects with `jwt`, signing the nonce with `signer`; returns the answer to CONNECT + PING.
fn login(node: &mut Node, jwt: &str, signer: &KeyPair) -> (natrix_core::ConnId, String) {
    let (conn, info) = node.connect();
    assert!(info.contains("\"auth_required\":true"), "{info}");
    let nonce = nonce_of(&info);
    assert!(!nonce.is_empty(), "operator mode sends a nonce: {info}");
    node.send(
        conn,
        &format!(
            "CONNECT {{\"jwt\":\"{jwt}\",\"sig\":\"{}\",\"verbose\":false}}\r\nPING\r\n",
            sign(signer, &nonce)
        ),
    );
    (conn, node.take(conn))
}

#[test]
fn users_of_trusted_accounts_connect_and_stay_isolated() {
    let s = Setup::new(json!({}));
    let mut node = Node::new(&s.config);
    let (alice, bob, carol) = (
        KeyPair::new_user(),
        KeyPair::new_user(),
        KeyPair::new_user(),
    );
    let (a, answer) = login(&mut node, &s.user(&alice), &alice);
    assert_eq!(answer, "PONG\r\n");
    // Signed by the account's signing key.
    let by_signer = jwt::user(&s.acc_signer, &s.acc, &bob, json!({}), json!({}));
    let (b, answer) = login(&mut node, &by_signer, &bob);
    assert_eq!(answer, "PONG\r\n");
    // An account signed by the operator's signing key.
    let other = jwt::user(&s.other_acc, &s.other_acc, &carol, json!({}), json!({}));
    let (c, answer) = login(&mut node, &other, &carol);
    assert_eq!(answer, "PONG\r\n");
    assert_eq!(node.exchange(a, "SUB x 1\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(c, "SUB x 1\r\n"), "PONG\r\n");
    node.exchange(b, "PUB x 2\r\nhi\r\n");
    assert_eq!(node.exchange(a, ""), "MSG x 1 2\r\nhi\r\nPONG\r\n");
    assert_eq!(
        node.exchange(c, ""),
        "PONG\r\n",
        "another account sees nothing"
    );
}

#[test]
fn user_jwt_permissions_apply() {
    let s = Setup::new(json!({}));
    let mut node = Node::new(&s.config);
    let u = KeyPair::new_user();
    let perms = json!({"pub": {"allow": ["ok.>"]}, "sub": {"deny": ["secret"]}});
    let token = jwt::user(&s.acc, &s.acc, &u, perms, json!({}));
    let (conn, answer) = login(&mut node, &token, &u);
    assert_eq!(answer, "PONG\r\n");
    assert_eq!(
        node.exchange(
            conn,
            "PUB no 1\r\nx\r\nSUB secret 1\r\nSUB ok.> 2\r\nPUB ok.1 1\r\nx\r\n"
        ),
        "-ERR 'Permissions Violation for Publish to \"no\"'\r\n\
         -ERR 'Permissions Violation for Subscription to \"secret\"'\r\n\
         MSG ok.1 2 1\r\nx\r\nPONG\r\n"
    );
}

#[test]
fn bad_credentials_are_refused() {
    let s = Setup::new(json!({}));
    let u = KeyPair::new_user();
    let good = s.user(&u);
    let stranger_op = KeyPair::new_operator();
    let stranger_acc = KeyPair::new_account();
    let mut tampered = good.clone();
    let body_start = tampered.find('.').unwrap() + 3;
    let replacement = if &tampered[body_start..=body_start] == "A" {
        "B"
    } else {
        "A"
    };
    tampered.replace_range(body_start..=body_start, replacement);
    let cases: Vec<(&str, String, KeyPair)> = vec![
        (
            "nonce signed by another key",
            good.clone(),
            KeyPair::new_user(),
        ),
        (
            "tampered claims",
            tampered,
            KeyPair::from_seed(&u.seed().unwrap()).unwrap(),
        ),
        (
            "expired",
            jwt::user(&s.acc, &s.acc, &u, json!({}), json!({"exp": 1_600_000_000})),
            KeyPair::from_seed(&u.seed().unwrap()).unwrap(),
        ),
        (
            "not yet valid",
            jwt::user(&s.acc, &s.acc, &u, json!({}), json!({"nbf": 1_900_000_000})),
            KeyPair::from_seed(&u.seed().unwrap()).unwrap(),
        ),
        (
            "unknown account",
            jwt::user(&stranger_acc, &stranger_acc, &u, json!({}), json!({})),
            KeyPair::from_seed(&u.seed().unwrap()).unwrap(),
        ),
        (
            "signer not an account key",
            jwt::user(&KeyPair::new_account(), &s.acc, &u, json!({}), json!({})),
            KeyPair::from_seed(&u.seed().unwrap()).unwrap(),
        ),
        (
            "not a JWT",
            "garbage".to_owned(),
            KeyPair::from_seed(&u.seed().unwrap()).unwrap(),
        ),
        (
            "bad base64",
            "e30.!!!.x".to_owned(),
            KeyPair::from_seed(&u.seed().unwrap()).unwrap(),
        ),
        (
            "account JWT as user",
            jwt::account(&stranger_op, &stranger_acc, json!({})),
            KeyPair::from_seed(&u.seed().unwrap()).unwrap(),
        ),
    ];
    let mut node = Node::new(&s.config);
    for (what, token, signer) in cases {
        let (conn, answer) = login(&mut node, &token, &signer);
        assert_eq!(answer, VIOLATION, "{what}");
        assert!(node.is_closed(conn), "{what}");
    }
    let (conn, _) = node.connect();
    node.send(conn, "CONNECT {\"verbose\":false}\r\n");
    assert_eq!(node.take(conn), VIOLATION, "no JWT at all");
    assert!(
        node.logs.iter().any(|l| l.message.contains("JWT expired")),
        "reasons are logged"
    );
}

#[test]
fn revoked_users_and_untrusted_accounts_are_refused() {
    let u = KeyPair::new_user();
    let s = Setup::new(json!({"revocations": {u.public_key(): 1_700_000_000i64}}));
    let mut node = Node::new(&s.config);
    assert_eq!(
        login(&mut node, &s.user(&u), &u).1,
        VIOLATION,
        "revoked at issue time"
    );
    let fresh = jwt::user(
        &s.acc,
        &s.acc,
        &u,
        json!({}),
        json!({"iat": 1_700_000_001i64}),
    );
    assert_eq!(
        login(&mut node, &fresh, &u).1,
        "PONG\r\n",
        "issued after the revocation"
    );

    // An account JWT not signed by the trusted operator.
    let rogue_op = KeyPair::new_operator();
    let acc = KeyPair::new_account();
    let config = format!(
        "operator: {}\nresolver: MEMORY\nresolver_preload: {{ {}: {} }}\n",
        jwt::operator(&s.op, &[]),
        acc.public_key(),
        jwt::account(&rogue_op, &acc, json!({}))
    );
    let mut node = Node::new(&config);
    let token = jwt::user(&acc, &acc, &u, json!({}), json!({}));
    assert_eq!(login(&mut node, &token, &u).1, VIOLATION);
    let _ = &s.op_signer;
}

#[test]
fn operator_from_a_file_and_creds_format() {
    let s = Setup::new(json!({}));
    let op_jwt = jwt::operator(&s.op, &[]);
    let file =
        format!("-----BEGIN NATS OPERATOR JWT-----\n{op_jwt}\n------END NATS OPERATOR JWT------\n");
    let config = s.config.replacen(
        &format!(
            "operator: {}",
            jwt::operator(&s.op, &[s.op_signer.public_key()])
        ),
        "operator: op.jwt",
        1,
    );
    assert!(config.contains("operator: op.jwt"));
    let source = MemorySource::new()
        .with_file("n.conf", &config)
        .with_file("op.jwt", &file);
    let loaded = load(&["-c".into(), "n.conf".into()], &source, &natrix_core::auth::verify_operators).expect("loads");
    assert_eq!(loaded.options.operators, vec![op_jwt]);
    let u = KeyPair::new_user();
    let mut node = Node::with_options(loaded.options);
    assert_eq!(login(&mut node, &s.user(&u), &u).1, "PONG\r\n");
    assert!(creds(&s.user(&u), &u).contains("BEGIN USER NKEY SEED"));

    let bad = MemorySource::new()
        .with_file("n.conf", &config)
        .with_file("op.jwt", "not a jwt");
    let err = load(&["-c".into(), "n.conf".into()], &bad, &natrix_core::auth::verify_operators)
        .unwrap_err()
        .to_string();
    assert!(err.contains("error parsing operator JWT"), "{err}");
    let missing = MemorySource::new().with_file("n.conf", &config);
    let err = load(&["-c".into(), "n.conf".into()], &missing, &natrix_core::auth::verify_operators)
        .unwrap_err()
        .to_string();
    assert!(err.contains("n.conf:1:"), "{err}");
}

#[test]
fn account_jwt_exports_and_imports() {
    let op = KeyPair::new_operator();
    let (exp, imp, outsider) = (
        KeyPair::new_account(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let exports = json!({"exports": [
        {"name": "news", "subject": "news.>", "type": "stream"},
        {"name": "svc", "subject": "svc.>", "type": "service", "token_req": true, "response_type": "Stream"},
    ]});
    let activation = jwt::encode(
        &exp,
        &imp.public_key(),
        "act",
        json!({"type": "activation", "version": 2, "subject": "svc.>", "kind": "service"}),
        json!({}),
    );
    let imports = json!({"imports": [
        {"name": "news", "subject": "news.>", "account": exp.public_key(), "type": "stream", "local_subject": "ext.news.>"},
        {"name": "svc", "subject": "svc.echo", "account": exp.public_key(), "type": "service", "local_subject": "echo", "token": activation},
    ]});
    let forged = jwt::encode(
        &outsider,
        &outsider.public_key(),
        "act",
        json!({"type": "activation", "version": 2, "subject": "svc.>"}),
        json!({}),
    );
    let outsider_imports = json!({"imports": [
        {"name": "svc", "subject": "svc.echo", "account": exp.public_key(), "type": "service", "token": forged},
    ]});
    let config = format!(
        "operator: {}\nresolver: MEMORY\nresolver_preload: {{\n {}: {}\n {}: {}\n {}: {}\n}}\n",
        jwt::operator(&op, &[]),
        exp.public_key(),
        jwt::account(&op, &exp, exports),
        imp.public_key(),
        jwt::account(&op, &imp, imports),
        outsider.public_key(),
        jwt::account(&op, &outsider, outsider_imports),
    );
    let mut node = Node::new(&config);
    assert!(
        node.logs
            .iter()
            .any(|l| l.message.contains("activation token")),
        "the forged token is refused and logged"
    );
    let (ue, ui, uo) = (
        KeyPair::new_user(),
        KeyPair::new_user(),
        KeyPair::new_user(),
    );
    let (e, _) = login(
        &mut node,
        &jwt::user(&exp, &exp, &ue, json!({}), json!({})),
        &ue,
    );
    let (i, _) = login(
        &mut node,
        &jwt::user(&imp, &imp, &ui, json!({}), json!({})),
        &ui,
    );
    let (o, _) = login(
        &mut node,
        &jwt::user(&outsider, &outsider, &uo, json!({}), json!({})),
        &uo,
    );
    assert_eq!(
        node.exchange(i, "SUB ext.news.> 1\r\nSUB _INBOX.i 2\r\n"),
        "PONG\r\n"
    );
    assert_eq!(
        node.exchange(e, "SUB svc.> 1\r\nPUB news.a 1\r\nn\r\n"),
        "PONG\r\n"
    );
    assert_eq!(
        node.exchange(i, "PUB echo _INBOX.i 1\r\nq\r\n"),
        "MSG ext.news.a 1 1\r\nn\r\nPONG\r\n"
    );
    let request = node.exchange(e, "");
    let reply = request.split(' ').nth(3).unwrap().to_owned();
    assert!(request.starts_with("MSG svc.echo 1 _R_."), "{request}");
    node.exchange(e, &format!("PUB {reply} 1\r\n1\r\nPUB {reply} 1\r\n2\r\n"));
    assert_eq!(
        node.exchange(i, ""),
        "MSG _INBOX.i 2 1\r\n1\r\nMSG _INBOX.i 2 1\r\n2\r\nPONG\r\n",
        "stream responses"
    );
    // The outsider's forged activation opens nothing.
    assert_eq!(node.exchange(o, "PUB svc.echo 1\r\nx\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(e, ""), "PONG\r\n");
}

#[test]
fn scoped_signing_key_templates() {
    let op = KeyPair::new_operator();
    let (acc, scoped) = (KeyPair::new_account(), KeyPair::new_account());
    let template = json!({
        "pub": {"allow": ["{{account-name()}}.{{name()}}.>", "dept.{{tag(dept)}}", "id.{{subject()}}"]},
        "sub": {"allow": ["{{account-subject()}}.>", "dept.>", "_INBOX.>"]}
    });
    let keys = json!({"signing_keys": [{"kind": "user_scope", "key": scoped.public_key(), "role": "dev", "template": template}]});
    let config = format!(
        "operator: {}\nresolver: MEMORY\nresolver_preload: {{ {}: {} }}\n",
        jwt::operator(&op, &[]),
        acc.public_key(),
        jwt::account(&op, &acc, keys)
    );
    let mut node = Node::new(&config);
    let u = KeyPair::new_user();
    // A scoped key's user may not carry permissions or limits of its own.
    let own = json!({"scoped": true, "pub": {"allow": [">"]}, "tags": ["dept:eng"]});
    let token = jwt::user(&scoped, &acc, &u, own, json!({}));
    assert_eq!(login(&mut node, &token, &u).1, VIOLATION);
    let limited = jwt::user(&scoped, &acc, &u, json!({"tags": ["dept:eng"]}), json!({}));
    assert_eq!(
        login(&mut node, &limited, &u).1,
        VIOLATION,
        "limits count too"
    );
    let token = jwt::user(
        &scoped,
        &acc,
        &u,
        json!({"scoped": true, "tags": ["dept:eng", "dept:ops"]}),
        json!({}),
    );
    let (conn, answer) = login(&mut node, &token, &u);
    assert_eq!(answer, "PONG\r\n");
    let out = node.exchange(
        conn,
        &format!(
            "PUB ACC.U.x 1\r\na\r\nPUB dept.eng 1\r\nb\r\nPUB dept.ops 1\r\nc\r\nPUB dept.hr 1\r\nd\r\nPUB id.{} 1\r\ne\r\nSUB {}.> 1\r\nSUB other 2\r\n",
            u.public_key(),
            acc.public_key()
        ),
    );
    assert_eq!(
        out,
        "-ERR 'Permissions Violation for Publish to \"dept.hr\"'\r\n\
         -ERR 'Permissions Violation for Subscription to \"other\"'\r\nPONG\r\n"
    );
    // A template naming a tag the user lacks drops that entry; the user is admitted.
    let bare = KeyPair::new_user();
    let token = jwt::user(&scoped, &acc, &bare, json!({"scoped": true}), json!({}));
    let (conn, answer) = login(&mut node, &token, &bare);
    assert_eq!(answer, "PONG\r\n");
    assert_eq!(
        node.exchange(conn, "PUB dept.x 1\r\na\r\nPUB ACC.U.x 1\r\nb\r\n"),
        "-ERR 'Permissions Violation for Publish to \"dept.x\"'\r\nPONG\r\n"
    );
}

#[test]
fn source_time_and_connection_type_restrictions() {
    let s = Setup::new(json!({}));
    let mut node = Node::new(&s.config);
    // The node's wall clock reads 22:13:20 UTC; clients connect from 127.0.0.1.
    let cases = [
        (json!({"src": ["127.0.0.0/8"]}), true),
        (json!({"src": ["10.0.0.0/8", "192.168.0.0/16"]}), false),
        (
            json!({"times": [{"start": "22:00:00", "end": "23:00:00"}], "times_location": "UTC"}),
            true,
        ),
        (
            json!({"times": [{"start": "08:00:00", "end": "17:00:00"}], "times_location": "UTC"}),
            false,
        ),
        (
            json!({"times": [{"start": "21:00:00", "end": "01:00:00"}]}),
            true,
        ),
        (json!({"allowed_connection_types": ["STANDARD"]}), true),
        (
            json!({"allowed_connection_types": ["WEBSOCKET", "MQTT"]}),
            false,
        ),
    ];
    for (limits, admitted) in cases {
        let u = KeyPair::new_user();
        let token = jwt::user(&s.acc, &s.acc, &u, limits.clone(), json!({}));
        let want = if admitted { "PONG\r\n" } else { VIOLATION };
        assert_eq!(login(&mut node, &token, &u).1, want, "{limits}");
    }
}

#[test]
fn nats_resolver_takes_claim_updates_from_the_system_account() {
    let op = KeyPair::new_operator();
    let (sys, acc, late) = (
        KeyPair::new_account(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let config = jwt::resolver_config(&op, &sys, "", &[(&acc, jwt::account(&op, &acc, json!({})))]);
    let mut node = Node::new(&config);
    let (su, au, lu) = (
        KeyPair::new_user(),
        KeyPair::new_user(),
        KeyPair::new_user(),
    );
    let (s, _) = login(
        &mut node,
        &jwt::user(&sys, &sys, &su, json!({}), json!({})),
        &su,
    );
    let (a, _) = login(
        &mut node,
        &jwt::user(&acc, &acc, &au, json!({}), json!({})),
        &au,
    );
    let late_user = jwt::user(&late, &late, &lu, json!({}), json!({}));
    assert_eq!(
        login(&mut node, &late_user, &lu).1,
        VIOLATION,
        "unknown before the update"
    );

    let update = jwt::account(&op, &late, json!({}));
    let out = node.exchange(
        s,
        &format!(
            "SUB r 1\r\nPUB $SYS.REQ.CLAIMS.UPDATE r {}\r\n{update}\r\n",
            update.len()
        ),
    );
    let body = out.lines().nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        v["data"],
        json!({"account": late.public_key(), "code": 200, "message": "jwt updated"})
    );
    assert_eq!(
        login(&mut node, &late_user, &lu).1,
        "PONG\r\n",
        "known after the update"
    );

    let lookup = node.exchange(
        s,
        &format!(
            "PUB $SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP r 0\r\n\r\n",
            late.public_key()
        ),
    );
    assert!(lookup.contains(&update), "{lookup}");
    let bad = node.exchange(s, "PUB $SYS.REQ.CLAIMS.UPDATE r 3\r\nbad\r\n");
    assert!(
        bad.contains(r#""description":"jwt update resulted in error - expected 3 chunks""#),
        "{bad}"
    );
    // Other accounts cannot reach the server's system services.
    assert_eq!(
        node.exchange(
            a,
            &format!(
                "SUB r 1\r\nPUB $SYS.REQ.CLAIMS.UPDATE r {}\r\n{update}\r\n",
                update.len()
            )
        ),
        "PONG\r\n"
    );
}

#[test]
fn claim_update_revoking_a_connected_user_closes_it() {
    let op = KeyPair::new_operator();
    let (sys, acc) = (KeyPair::new_account(), KeyPair::new_account());
    let config = format!(
        "operator: {}\nsystem_account: {}\nresolver: {{ type: full, dir: \"jwt\" }}\nresolver_preload: {{\n {}: {}\n {}: {}\n}}\n",
        jwt::operator(&op, &[]),
        sys.public_key(),
        sys.public_key(),
        jwt::account(&op, &sys, json!({})),
        acc.public_key(),
        jwt::account(&op, &acc, json!({})),
    );
    let mut node = Node::new(&config);
    let (su, doomed, kept) = (
        KeyPair::new_user(),
        KeyPair::new_user(),
        KeyPair::new_user(),
    );
    let (s, _) = login(
        &mut node,
        &jwt::user(&sys, &sys, &su, json!({}), json!({})),
        &su,
    );
    let (d, _) = login(
        &mut node,
        &jwt::user(&acc, &acc, &doomed, json!({}), json!({})),
        &doomed,
    );
    let (k, _) = login(
        &mut node,
        &jwt::user(&acc, &acc, &kept, json!({}), json!({})),
        &kept,
    );
    let update = jwt::account(
        &op,
        &acc,
        json!({"revocations": {doomed.public_key(): 1_700_000_000i64}}),
    );
    node.send(
        s,
        &format!(
            "PUB $SYS.REQ.CLAIMS.UPDATE {}\r\n{update}\r\n",
            update.len()
        ),
    );
    assert_eq!(node.take(d), "-ERR 'User Authentication Revoked'\r\n");
    assert_eq!(
        node.closed.get(&d),
        Some(&natrix_core::server::CloseReason::AuthenticationRevoked)
    );
    assert!(!node.is_closed(k));
    assert_eq!(node.exchange(k, ""), "PONG\r\n");
}

#[test]
fn a_user_whose_jwt_expires_while_connected_is_closed() {
    let s = Setup::new(json!({}));
    let u = KeyPair::new_user();
    // The test node's wall clock starts at 1_700_000_000 s.
    let token = jwt::user(
        &s.acc,
        &s.acc,
        &u,
        json!({}),
        json!({"exp": 1_700_000_060i64}),
    );
    let mut node = Node::new(&s.config);
    let (conn, answer) = login(&mut node, &token, &u);
    assert_eq!(answer, "PONG\r\n");
    node.advance(std::time::Duration::from_secs(59));
    assert!(!node.is_closed(conn), "still valid");
    node.take(conn);
    node.advance(std::time::Duration::from_secs(2));
    assert!(node
        .take(conn)
        .ends_with("-ERR 'User Authentication Expired'\r\n"));
    assert_eq!(
        node.closed.get(&conn),
        Some(&natrix_core::server::CloseReason::AuthenticationExpired)
    );
}

/// Version-1 JWTs (nats-py's own operator-mode tests use a 2019 operator
/// and accounts): accepted for the operator, the accounts and the users,
/// as nats-server accepts them.
#[test]
fn version_1_jwts_are_accepted() {
    let (op, acc, other, user) = (KeyPair::new_operator(), KeyPair::new_account(), KeyPair::new_account(), KeyPair::new_user());
    let limits = json!({"limits": {"subs": -1, "conn": -1, "imports": -1, "exports": -1, "data": -1, "payload": -1, "wildcards": true}});
    let config = format!(
        "operator: {}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {}\n  {}: {}\n}}\n",
        jwt::encode_v1(&op, &op.public_key(), "operator", json!({})),
        acc.public_key(),
        jwt::encode_v1(&op, &acc.public_key(), "account", limits.clone()),
        other.public_key(),
        jwt::encode_v1(&op, &other.public_key(), "account", limits),
    );
    let mut node = Node::new(&config);
    let user_jwt = jwt::encode_v1(&acc, &user.public_key(), "user", json!({"pub": {"allow": ["ok.>"]}}));
    let (conn, answer) = login(&mut node, &user_jwt, &user);
    assert_eq!(answer, "PONG\r\n");
    assert_eq!(node.exchange(conn, "SUB ok.1 1\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(conn, "PUB ok.1 1\r\nx\r\n"), "MSG ok.1 1 1\r\nx\r\nPONG\r\n");
    let denied = node.exchange(conn, "PUB no 1\r\nx\r\n");
    assert!(denied.contains("Permissions Violation for Publish to \"no\""), "the v1 user's permissions apply: {denied}");
    // A v1 user of an account the operator did not sign is refused.
    let stranger = KeyPair::new_account();
    let bad = jwt::encode_v1(&stranger, &user.public_key(), "user", json!({}));
    let (_, answer) = login(&mut node, &bad, &user);
    assert_eq!(answer, VIOLATION);
}
