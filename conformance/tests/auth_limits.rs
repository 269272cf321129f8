//! S3: account and user JWT limits, and claim updates that re-wire imports
//! and exports at runtime, seen by async-nats against the natrix binary.

mod common;
mod jwt_support;

use async_nats::ConnectOptions;
use common::*;
use jwt_support as jwt;
use natrix_conformance::TempDir;
use nkeys::KeyPair;
use serde_json::{json, Value};

/// `limits` of an account JWT: nsc's unlimited defaults with `changes`.
fn limits(changes: Value) -> Value {
    let mut l = json!({"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1});
    for (k, v) in changes.as_object().unwrap() {
        l[k] = v.clone();
    }
    l
}

struct Setup {
    op: KeyPair,
    sys: KeyPair,
    exporter: KeyPair,
    importer: KeyPair,
    config: String,
    _dir: TempDir,
}

/// The NATS resolver with a system account, an exporter whose JWT carries
/// `exporter_nats`, and an importer of its `feed.>` stream.
fn setup(exporter_nats: Value) -> Setup {
    let (op, sys, exporter, importer) = (
        KeyPair::new_operator(),
        KeyPair::new_account(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let imports = json!({"imports": [{"type": "stream", "subject": "feed.>", "account": exporter.public_key()}]});
    let dir = TempDir::new("limits");
    let config = format!(
        "operator: {}\nsystem_account: {}\nresolver: {{ type: full, dir: \"{}\" }}\nresolver_preload: {{\n {}: {}\n {}: {}\n {}: {}\n}}\n",
        jwt::operator(&op, &[]),
        sys.public_key(),
        dir.path().join("jwt").display(),
        sys.public_key(),
        jwt::account(&op, &sys, json!({})),
        exporter.public_key(),
        jwt::account(&op, &exporter, exporter_nats),
        importer.public_key(),
        jwt::account(&op, &importer, imports),
    );
    Setup {
        op,
        sys,
        exporter,
        importer,
        config,
        _dir: dir,
    }
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

async fn claim_update(sys_client: &async_nats::Client, account_jwt: String) -> Value {
    let reply = tokio::time::timeout(
        STEP,
        sys_client.request("$SYS.REQ.CLAIMS.UPDATE", account_jwt.into()),
    )
    .await
    .expect("request timed out")
    .expect("request answered");
    serde_json::from_slice(&reply.payload).unwrap()
}

#[tokio::test]
async fn a_claim_update_adding_an_export_opens_the_import_at_runtime() {
    let s = setup(json!({}));
    let server = Server::start(ServerOptions::new().config(s.config.clone()));
    let sys_client = connect_as(&server, &s.sys, None)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let publisher = connect_as(&server, &s.exporter, None).await.unwrap();
    let subscriber = connect_as(&server, &s.importer, None).await.unwrap();
    let mut feed = subscriber.subscribe("feed.>").await.unwrap();
    sync(&subscriber).await;
    publisher
        .publish("feed.before", "not exported yet".into())
        .await
        .unwrap();
    sync(&publisher).await;
    assert_silent(&mut feed, std::time::Duration::from_millis(200)).await;

    let exports = json!({"exports": [{"type": "stream", "subject": "feed.>"}]});
    let answer = claim_update(&sys_client, jwt::account(&s.op, &s.exporter, exports)).await;
    assert_eq!(answer["data"]["code"], 200, "{answer}");
    publisher
        .publish("feed.after", "exported".into())
        .await
        .unwrap();
    let msg = next(&mut feed).await;
    assert_eq!(
        (msg.subject.as_str(), &msg.payload[..]),
        ("feed.after", &b"exported"[..])
    );

    // Taking the export back closes the import again.
    let answer = claim_update(&sys_client, jwt::account(&s.op, &s.exporter, json!({}))).await;
    assert_eq!(answer["data"]["code"], 200, "{answer}");
    publisher
        .publish("feed.gone", "no longer exported".into())
        .await
        .unwrap();
    sync(&publisher).await;
    assert_silent(&mut feed, std::time::Duration::from_millis(200)).await;
}

#[tokio::test]
async fn the_account_connection_limit_refuses_one_more_client() {
    let s = setup(json!({"limits": limits(json!({"conn": 1}))}));
    let server = Server::start(ServerOptions::new().config(s.config.clone()));
    let first = connect_as(&server, &s.exporter, None)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    sync(&first).await;
    let refused = connect_as(&server, &s.exporter, None).await;
    let Err(err) = refused else { panic!("over the account's conn limit") };
    assert!(
        format!("{err:?}").contains("maximum account active connections exceeded"),
        "{err:?}"
    );
    // Other accounts are not counted against it.
    connect_as(&server, &s.importer, None).await.unwrap();
    sync(&first).await;
}

#[tokio::test]
async fn lowering_the_connection_limit_disconnects_the_newest_client() {
    let s = setup(json!({}));
    let server = Server::start(ServerOptions::new().config(s.config.clone()));
    let sys_client = connect_as(&server, &s.sys, None)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let oldest = connect_as(&server, &s.exporter, None).await.unwrap();
    sync(&oldest).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let newest = connect_as(&server, &s.exporter, Some(tx)).await.unwrap();
    sync(&newest).await;
    let update = jwt::account(
        &s.op,
        &s.exporter,
        json!({"limits": limits(json!({"conn": 1}))}),
    );
    assert_eq!(claim_update(&sys_client, update).await["data"]["code"], 200);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let events = drain(&mut rx);
    assert!(
        events
            .iter()
            .any(|e| e.contains("maximum account active connections exceeded")),
        "{events:?}"
    );
    sync(&oldest).await;
}

#[tokio::test]
async fn subscription_and_payload_limits() {
    let s = setup(json!({"limits": limits(json!({"subs": 2, "payload": 100}))}));
    let server = Server::start(ServerOptions::new().config(s.config.clone()));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let client = connect_as(&server, &s.exporter, Some(tx))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let mut a = client.subscribe("a").await.unwrap();
    let _b = client.subscribe("b").await.unwrap();
    let mut c = client.subscribe("c").await.unwrap();
    client.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let events = drain(&mut rx);
    assert!(
        events
            .iter()
            .any(|e| e.contains("maximum subscriptions exceeded")),
        "{events:?}"
    );
    // The connection stays; the third subscription gets nothing.
    client.publish("c", "x".into()).await.unwrap();
    client.publish("a", "y".into()).await.unwrap();
    assert_eq!(&next(&mut a).await.payload[..], b"y");
    assert_silent(&mut c, std::time::Duration::from_millis(200)).await;

    // async-nats checks the INFO before CONNECT (the server's 1 MB), so the
    // server is the one to refuse a payload over the account's 100 bytes.
    client.publish("a", vec![b'x'; 101].into()).await.unwrap();
    client.flush().await.ok();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let events = drain(&mut rx);
    assert!(
        events
            .iter()
            .any(|e| e.contains("Maximum Payload Violation")),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e == "Disconnected"), "{events:?}");
}
