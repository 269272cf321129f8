//! S3 against a live server: operator mode with a MEMORY resolver, clients
//! connecting with `.creds`, and refused bad, expired or revoked users.
//! The JWTs and nkeys are made in the test.

mod common;
mod jwt_support;

use async_nats::ConnectOptions;
use common::*;
use jwt_support as jwt;
use natrix_conformance::TempDir;
use nkeys::KeyPair;
use serde_json::json;

struct Operator {
    acc: KeyPair,
    other: KeyPair,
    config: String,
    _dir: TempDir,
}

/// An operator (read from a file) trusting two accounts, the first with
/// `account_extra` in its claims.
fn operator(account_extra: serde_json::Value) -> Operator {
    let (op, acc, other) = (
        KeyPair::new_operator(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let dir = TempDir::new("jwt");
    let op_jwt = jwt::operator(&op, &[]);
    let op_file = dir.write(
        "op.jwt",
        format!("-----BEGIN NATS OPERATOR JWT-----\n{op_jwt}\n------END NATS OPERATOR JWT------\n"),
    );
    let config = format!(
        "operator: \"{}\"\nresolver: MEMORY\nresolver_preload: {{\n  {}: {}\n  {}: {}\n}}\n",
        op_file.display(),
        acc.public_key(),
        jwt::account(&op, &acc, account_extra),
        other.public_key(),
        jwt::account(&op, &other, json!({})),
    );
    Operator {
        acc,
        other,
        config,
        _dir: dir,
    }
}

async fn connect_creds(
    server: &Server,
    creds: &str,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    let opts = ConnectOptions::with_credentials(creds).expect("creds parse");
    tokio::time::timeout(STEP, opts.connect(server.client_url.as_str()))
        .await
        .expect("connect timed out")
}

/// Connects with `creds` and forwards the server's `-ERR`s, lowercased as
/// async-nats reports them, to a channel.
async fn connect_with_errors(
    server: &Server,
    creds: &str,
) -> (
    async_nats::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = ConnectOptions::with_credentials(creds)
        .expect("creds parse")
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let text = e.to_string().to_lowercase();
                    let _ = tx.send(text.trim_start_matches("nats: ").to_owned());
                }
            }
        });
    let client = tokio::time::timeout(STEP, opts.connect(server.client_url.as_str()))
        .await
        .expect("connect timed out")
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.log()));
    (client, rx)
}

async fn next_error(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(STEP, rx.recv())
        .await
        .expect("no -ERR within timeout")
        .expect("event channel closed")
}

fn user_creds(
    signer: &KeyPair,
    acc: &KeyPair,
    user: &KeyPair,
    nats: serde_json::Value,
    extra: serde_json::Value,
) -> String {
    jwt::creds(&jwt::user(signer, acc, user, nats, extra), user)
}

#[tokio::test]
async fn creds_users_connect_and_accounts_stay_isolated() {
    let o = operator(json!({}));
    let server = Server::start(ServerOptions::new().config(o.config.clone()));
    let (u1, u2, u3) = (
        KeyPair::new_user(),
        KeyPair::new_user(),
        KeyPair::new_user(),
    );
    let a1 = connect_creds(
        &server,
        &user_creds(&o.acc, &o.acc, &u1, json!({}), json!({})),
    )
    .await
    .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.log()));
    let a2 = connect_creds(
        &server,
        &user_creds(&o.acc, &o.acc, &u2, json!({}), json!({})),
    )
    .await
    .unwrap();
    let b = connect_creds(
        &server,
        &user_creds(&o.other, &o.other, &u3, json!({}), json!({})),
    )
    .await
    .unwrap();
    let mut same = a2.subscribe("greet").await.unwrap();
    let mut other = b.subscribe("greet").await.unwrap();
    sync(&a2).await;
    sync(&b).await;
    a1.publish("greet", "hi".into()).await.unwrap();
    assert_eq!(next(&mut same).await.payload, "hi");
    assert_silent(&mut other, std::time::Duration::from_millis(100)).await;
}

#[tokio::test]
async fn jwt_permissions_apply() {
    let o = operator(json!({}));
    let server = Server::start(ServerOptions::new().config(o.config.clone()));
    let u = KeyPair::new_user();
    let perms =
        json!({"pub": {"allow": ["ok.>", "_INBOX.>"]}, "sub": {"allow": ["ok.>", "_INBOX.>"]}});
    let client = connect_creds(&server, &user_creds(&o.acc, &o.acc, &u, perms, json!({})))
        .await
        .unwrap();
    let mut sub = client.subscribe("ok.>").await.unwrap();
    client.publish("denied", "x".into()).await.unwrap();
    client.publish("ok.1", "y".into()).await.unwrap();
    assert_eq!(next(&mut sub).await.subject.as_str(), "ok.1");
}

#[tokio::test]
async fn bad_users_are_refused() {
    let u = KeyPair::new_user();
    let o = operator(json!({"revocations": {u.public_key(): 1_800_000_000i64}}));
    let server = Server::start(ServerOptions::new().config(o.config.clone()));
    let v = KeyPair::new_user();
    let stranger = KeyPair::new_account();
    let cases = [
        (
            "revoked",
            user_creds(&o.acc, &o.acc, &u, json!({}), json!({})),
        ),
        (
            "expired",
            user_creds(
                &o.acc,
                &o.acc,
                &v,
                json!({}),
                json!({"exp": 1_600_000_000i64}),
            ),
        ),
        (
            "unknown account",
            user_creds(&stranger, &stranger, &v, json!({}), json!({})),
        ),
        (
            "issuer not the account",
            user_creds(&stranger, &o.acc, &v, json!({}), json!({})),
        ),
        (
            "seed of another user",
            jwt::creds(&jwt::user(&o.acc, &o.acc, &v, json!({}), json!({})), &u),
        ),
    ];
    for (what, creds) in cases {
        let err = connect_creds(&server, &creds)
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: must be refused"));
        assert!(
            matches!(
                err.kind(),
                async_nats::ConnectErrorKind::AuthorizationViolation
            ),
            "{what}: expected an authorization violation, got {err}"
        );
    }
}

#[tokio::test]
async fn account_jwt_imports_and_exports() {
    let op = KeyPair::new_operator();
    let (exp, imp) = (KeyPair::new_account(), KeyPair::new_account());
    let exports = json!({"exports": [
        {"name": "news", "subject": "news.>", "type": "stream"},
        {"name": "svc", "subject": "svc.>", "type": "service", "token_req": true},
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
    let config = format!(
        "operator: {}\nresolver: MEMORY\nresolver_preload: {{\n {}: {}\n {}: {}\n}}\n",
        jwt::operator(&op, &[]),
        exp.public_key(),
        jwt::account(&op, &exp, exports),
        imp.public_key(),
        jwt::account(&op, &imp, imports),
    );
    let server = Server::start(ServerOptions::new().config(config));
    let (ue, ui) = (KeyPair::new_user(), KeyPair::new_user());
    let e = connect_creds(&server, &user_creds(&exp, &exp, &ue, json!({}), json!({})))
        .await
        .unwrap_or_else(|err| panic!("connect: {err}\n{}", server.log()));
    let i = connect_creds(&server, &user_creds(&imp, &imp, &ui, json!({}), json!({})))
        .await
        .unwrap();
    let mut news = i.subscribe("ext.news.>").await.unwrap();
    let mut service = e.subscribe("svc.>").await.unwrap();
    sync(&i).await;
    sync(&e).await;
    e.publish("news.a", "n".into()).await.unwrap();
    assert_eq!(next(&mut news).await.subject.as_str(), "ext.news.a");
    let responder = tokio::spawn(async move {
        let msg = next(&mut service).await;
        assert_eq!(msg.subject.as_str(), "svc.echo");
        e.publish(msg.reply.unwrap(), msg.payload).await.unwrap();
        e.flush().await.unwrap();
        e
    });
    let answer = tokio::time::timeout(STEP, i.request("echo", "ping".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.payload, "ping");
    responder.await.unwrap();
}

#[tokio::test]
async fn scoped_signing_key_templates() {
    let op = KeyPair::new_operator();
    let (acc, scoped) = (KeyPair::new_account(), KeyPair::new_account());
    let template = json!({
        "pub": {"allow": ["{{account-name()}}.{{name()}}.>", "dept.{{tag(dept)}}", "_INBOX.>"]},
        "sub": {"allow": ["{{account-subject()}}.>", "dept.>", "_INBOX.>"]}
    });
    let keys = json!({"signing_keys": [{"kind": "user_scope", "key": scoped.public_key(), "role": "dev", "template": template}]});
    let config = format!(
        "operator: {}\nresolver: MEMORY\nresolver_preload: {{ {}: {} }}\n",
        jwt::operator(&op, &[]),
        acc.public_key(),
        jwt::account(&op, &acc, keys)
    );
    let server = Server::start(ServerOptions::new().config(config));
    let u = KeyPair::new_user();
    let creds = user_creds(
        &scoped,
        &acc,
        &u,
        json!({"scoped": true, "tags": ["dept:eng"]}),
        json!({}),
    );
    let own_perms = user_creds(
        &scoped,
        &acc,
        &u,
        json!({"scoped": true, "pub": {"allow": [">"]}}),
        json!({}),
    );
    let refused = connect_creds(&server, &own_perms).await.err();
    assert!(
        refused.is_some(),
        "a scoped key's user may not carry permissions of its own"
    );
    let client = connect_creds(&server, &creds)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.log()));
    let mut dept = client.subscribe("dept.>").await.unwrap();
    client
        .publish("dept.hr", "denied by the template".into())
        .await
        .unwrap();
    client.publish("dept.eng", "allowed".into()).await.unwrap();
    let msg = next(&mut dept).await;
    assert_eq!(msg.subject.as_str(), "dept.eng");
    let mut own = client
        .subscribe(format!("{}.x", acc.public_key()))
        .await
        .unwrap();
    client
        .publish(format!("{}.x", acc.public_key()), "not in pub allow".into())
        .await
        .unwrap();
    client.publish("ACC.U.x", "allowed".into()).await.unwrap();
    sync(&client).await;
    assert_silent(&mut own, std::time::Duration::from_millis(100)).await;

    // A template naming a tag the user lacks drops that entry; the user is admitted.
    let bare = KeyPair::new_user();
    let (client, mut errors) = connect_with_errors(
        &server,
        &user_creds(&scoped, &acc, &bare, json!({"scoped": true}), json!({})),
    )
    .await;
    client.publish("dept.x", "x".into()).await.unwrap();
    client.flush().await.unwrap();
    assert_eq!(
        next_error(&mut errors).await,
        "permissions violation for publish to \"dept.x\""
    );
}

/// `HH:MM:SS` in UTC, `offset_secs` from now.
fn utc_clock(offset_secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let s = (now + offset_secs).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[tokio::test]
async fn source_time_and_connection_type_restrictions() {
    let o = operator(json!({}));
    let server = Server::start(ServerOptions::new().config(o.config.clone()));
    let window = |from: i64, to: i64| json!([{"start": utc_clock(from), "end": utc_clock(to)}]);
    let cases = [
        (json!({"src": ["127.0.0.0/8"]}), true),
        (json!({"src": ["10.0.0.0/8"]}), false),
        (
            json!({"times": window(-3600, 3600), "times_location": "UTC"}),
            true,
        ),
        (
            json!({"times": window(3 * 3600, 5 * 3600), "times_location": "UTC"}),
            false,
        ),
        (json!({"allowed_connection_types": ["STANDARD"]}), true),
        (json!({"allowed_connection_types": ["WEBSOCKET"]}), false),
    ];
    for (limits, admitted) in cases {
        let u = KeyPair::new_user();
        let result = connect_creds(
            &server,
            &user_creds(&o.acc, &o.acc, &u, limits.clone(), json!({})),
        )
        .await;
        match (result, admitted) {
            (Ok(client), true) => sync(&client).await,
            (Err(e), false) => assert!(
                matches!(
                    e.kind(),
                    async_nats::ConnectErrorKind::AuthorizationViolation
                ),
                "{limits}: {e}"
            ),
            (Ok(_), false) => panic!("{limits}: must be refused"),
            (Err(e), true) => panic!("{limits}: must be admitted: {e}\n{}", server.log()),
        }
    }
}
