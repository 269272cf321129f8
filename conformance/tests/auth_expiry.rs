//! Account JWTs and activation tokens that expire while the server runs:
//! an expired account's clients are disconnected with
//! `Account Authentication Expired` and new ones refused, and an import
//! whose activation token expires stops carrying messages. Seen by
//! async-nats against the natrix binary (or nats-server with
//! `NATRIX_SERVER=nats-server`).

mod common;
mod jwt_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::ConnectOptions;
use common::*;
use jwt_support as jwt;
use nkeys::KeyPair;
use serde_json::{json, Value};

/// How far ahead the JWTs of these tests expire.
const LIFETIME_SECS: i64 = 2;

/// Unix seconds `LIFETIME_SECS` from now.
fn soon() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(now.as_secs()).unwrap() + LIFETIME_SECS
}

/// Sleeps until wall clock `exp` (Unix seconds) has passed, plus a margin
/// for the server's timer.
async fn sleep_past(exp: i64) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let at = Duration::from_secs(u64::try_from(exp).unwrap());
    let wait = at.saturating_sub(now) + Duration::from_millis(1500);
    tokio::time::sleep(wait).await;
}

/// An account JWT signed by `op` with these `nats` claims and top-level `extra`.
fn account(op: &KeyPair, acc: &KeyPair, nats: Value, extra: Value) -> String {
    let mut nats_all = json!({
        "type": "account", "version": 2,
        "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1}
    });
    for (k, v) in nats.as_object().unwrap() {
        nats_all[k] = v.clone();
    }
    jwt::encode(op, &acc.public_key(), "ACC", nats_all, extra)
}

/// A memory resolver preloading these (account, JWT) pairs.
fn config(op: &KeyPair, accounts: &[(&KeyPair, String)]) -> String {
    let preload: String = accounts
        .iter()
        .map(|(acc, jwt)| format!(" {}: {}\n", acc.public_key(), jwt))
        .collect();
    format!(
        "operator: {}\nresolver: MEMORY\nresolver_preload: {{\n{preload}}}\n",
        jwt::operator(op, &[])
    )
}

/// Connects a new user of `acc`, sending every client event to `events`.
async fn connect_as(
    server: &Server,
    acc: &KeyPair,
    events: Option<tokio::sync::mpsc::UnboundedSender<String>>,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    let user = KeyPair::new_user();
    let creds = jwt::creds(&jwt::user(acc, acc, &user, json!({}), json!({})), &user);
    let mut opts = ConnectOptions::with_credentials(&creds)
        .expect("creds parse")
        .max_reconnects(1);
    if let Some(tx) = events {
        opts = opts.event_callback(move |ev| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(format!("{ev:?}"));
            }
        });
    }
    tokio::time::timeout(STEP, opts.connect(server.client_url.as_str()))
        .await
        .expect("connect timed out")
}

/// Events received so far.
fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    events
}

#[tokio::test]
async fn an_expiring_account_disconnects_its_clients_and_refuses_new_ones() {
    let (op, doomed, other) = (
        KeyPair::new_operator(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let exp = soon();
    let config = config(
        &op,
        &[
            (
                &doomed,
                account(&op, &doomed, json!({}), json!({"exp": exp})),
            ),
            (&other, account(&op, &other, json!({}), json!({}))),
        ],
    );
    let server = Server::start(ServerOptions::new().config(config));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let client = connect_as(&server, &doomed, Some(tx))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let survivor = connect_as(&server, &other, None).await.unwrap();
    sync(&client).await;

    sleep_past(exp).await;
    let events = drain(&mut rx);
    assert!(
        events
            .iter()
            .any(|e| e.to_lowercase().contains("account authentication expired")),
        "{events:?}\n{}",
        server.log()
    );
    assert!(events.iter().any(|e| e == "Disconnected"), "{events:?}");
    let refused = connect_as(&server, &doomed, None).await;
    assert!(refused.is_err(), "a new client of the expired account");
    // Other accounts are untouched.
    sync(&survivor).await;
}

/// Account JWTs of an exporter of a private `feed.>` stream and `svc`
/// service, and of an importer of both whose activation tokens expire at `exp`.
fn activation_setup(exp: i64) -> (KeyPair, KeyPair, String) {
    let (op, exporter, importer) = (
        KeyPair::new_operator(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let token = |subject: &str, kind: &str| {
        jwt::encode(
            &exporter,
            &importer.public_key(),
            "act",
            json!({"type": "activation", "version": 2, "subject": subject, "kind": kind}),
            json!({"exp": exp}),
        )
    };
    let exports = json!({"exports": [
        {"type": "stream", "subject": "feed.>", "token_req": true},
        {"type": "service", "subject": "svc", "token_req": true},
    ]});
    let imports = json!({"imports": [
        {"type": "stream", "subject": "feed.>", "account": exporter.public_key(), "token": token("feed.>", "stream")},
        {"type": "service", "subject": "svc", "account": exporter.public_key(), "token": token("svc", "service")},
    ]});
    let config = config(
        &op,
        &[
            (&exporter, account(&op, &exporter, exports, json!({}))),
            (&importer, account(&op, &importer, imports, json!({}))),
        ],
    );
    (exporter, importer, config)
}

#[tokio::test]
async fn an_expiring_activation_token_closes_the_import() {
    let exp = soon();
    let (exporter, importer, config) = activation_setup(exp);
    let server = Server::start(ServerOptions::new().config(config));
    let publisher = connect_as(&server, &exporter, None)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let subscriber = connect_as(&server, &importer, None).await.unwrap();
    let mut feed = subscriber.subscribe("feed.>").await.unwrap();
    let mut svc = publisher.subscribe("svc").await.unwrap();
    let responder = tokio::spawn({
        let publisher = publisher.clone();
        async move {
            while let Some(req) = futures_util::StreamExt::next(&mut svc).await {
                if let Some(reply) = req.reply {
                    publisher.publish(reply, "answer".into()).await.unwrap();
                }
            }
        }
    });
    sync(&subscriber).await;
    sync(&publisher).await;
    publisher
        .publish("feed.before", "while the token holds".into())
        .await
        .unwrap();
    let msg = next(&mut feed).await;
    assert_eq!(msg.subject.as_str(), "feed.before");
    let answer = tokio::time::timeout(STEP, subscriber.request("svc", "q".into()))
        .await
        .expect("request timed out")
        .expect("answered while the token holds");
    assert_eq!(&answer.payload[..], b"answer");

    sleep_past(exp).await;
    publisher
        .publish("feed.after", "token expired".into())
        .await
        .unwrap();
    sync(&publisher).await;
    assert_silent(&mut feed, Duration::from_millis(300)).await;
    let refused = tokio::time::timeout(STEP, subscriber.request("svc", "q".into()))
        .await
        .expect("request timed out");
    let err = refused.expect_err("no service import any more");
    assert_eq!(
        err.kind(),
        async_nats::RequestErrorKind::NoResponders,
        "{err:?}"
    );
    // Both clients stay connected: only the imports are gone.
    sync(&subscriber).await;
    sync(&publisher).await;
    responder.abort();
}

/// A JWT that arrives already expired is stored, but nats-server's expiry
/// timer never runs for it: the clients connected stay.
#[tokio::test]
async fn a_claim_update_already_expired_keeps_the_clients() {
    let (op, sys, acc) = (
        KeyPair::new_operator(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let dir = natrix_conformance::TempDir::new("expiry");
    let config = format!(
        "operator: {}\nsystem_account: {}\nresolver: {{ type: full, dir: \"{}\" }}\nresolver_preload: {{\n {}: {}\n {}: {}\n}}\n",
        jwt::operator(&op, &[]),
        sys.public_key(),
        dir.path().join("jwt").display(),
        sys.public_key(),
        account(&op, &sys, json!({}), json!({})),
        acc.public_key(),
        account(&op, &acc, json!({}), json!({})),
    );
    let server = Server::start(ServerOptions::new().config(config));
    let sys_client = connect_as(&server, &sys, None)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let kept = connect_as(&server, &acc, Some(tx)).await.unwrap();
    sync(&kept).await;

    let expired = account(&op, &acc, json!({}), json!({"exp": soon() - 60}));
    let reply = tokio::time::timeout(
        STEP,
        sys_client.request("$SYS.REQ.CLAIMS.UPDATE", expired.into()),
    )
    .await
    .expect("request timed out")
    .expect("request answered");
    let answer: Value = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(answer["data"]["code"], 200, "{answer}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    sync(&kept).await;
    let events = drain(&mut rx);
    assert_eq!(events, ["Connected"], "the client stays");
}
