//! S1 against a live server: bcrypt passwords, nkey users, and permission
//! violations (reported as `-ERR`, the connection stays up).

mod common;

use std::time::Duration;

use async_nats::{ConnectOptions, Event};
use common::*;
use tokio::sync::mpsc;

// OpenBSD's bcrypt test vector: password "U*U".
const BCRYPT_UU: &str = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

async fn try_connect(
    server: &Server,
    opts: ConnectOptions,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    tokio::time::timeout(STEP, opts.connect(server.client_url.as_str()))
        .await
        .expect("connect timed out")
}

async fn assert_refused(server: &Server, opts: ConnectOptions) {
    let Err(err) = try_connect(server, opts).await else { panic!("connection must be refused") };
    assert!(
        matches!(
            err.kind(),
            async_nats::ConnectErrorKind::AuthorizationViolation
        ),
        "expected an authorization violation, got {err}"
    );
}

/// Connects and forwards the server's `-ERR`s to a channel.
async fn connect_with_errors(
    server: &Server,
    opts: ConnectOptions,
) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let opts = opts.event_callback(move |event| {
        let tx = tx.clone();
        async move {
            if let Event::ServerError(e) = event {
                // async-nats reports `-ERR` texts lowercased, after "nats: ".
                let text = e.to_string().to_lowercase();
                let _ = tx.send(text.trim_start_matches("nats: ").to_owned());
            }
        }
    });
    let client = try_connect(server, opts)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.log()));
    (client, rx)
}

async fn next_error(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(STEP, rx.recv())
        .await
        .expect("no -ERR within timeout")
        .expect("event channel closed")
}

#[tokio::test]
async fn bcrypt_password() {
    let config =
        format!("authorization {{ users = [ {{ user: a, password: \"{BCRYPT_UU}\" }} ] }}");
    let server = Server::start(ServerOptions::new().config(config));
    let client = try_connect(
        &server,
        ConnectOptions::with_user_and_password("a".into(), "U*U".into()),
    )
    .await
    .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.log()));
    sync(&client).await;
    assert_refused(
        &server,
        ConnectOptions::with_user_and_password("a".into(), "U*U*".into()),
    )
    .await;
    assert_refused(
        &server,
        ConnectOptions::with_user_and_password("a".into(), BCRYPT_UU.into()),
    )
    .await;
}

#[tokio::test]
async fn nkey_user() {
    let user = nkeys::KeyPair::new_user();
    let config = format!(
        "authorization {{ users = [ {{ nkey: {} }} ] }}",
        user.public_key()
    );
    let server = Server::start(ServerOptions::new().config(config));
    let client = try_connect(&server, ConnectOptions::with_nkey(user.seed().unwrap()))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", server.log()));
    sync(&client).await;
    let stranger = nkeys::KeyPair::new_user();
    assert_refused(&server, ConnectOptions::with_nkey(stranger.seed().unwrap())).await;
    assert_refused(&server, ConnectOptions::new()).await;
}

const PERMS: &str = r#"
authorization {
  users = [
    { user: a, password: a, permissions: { publish: { allow: ["foo.>", "svc", "_INBOX.>"], deny: ["foo.bar"] }, subscribe: { allow: ["foo.*", "_INBOX.>", "q.> grp"], deny: ["foo.baz"] } } }
    { user: svc, password: svc, permissions: { subscribe: "svc", allow_responses: true } }
  ]
}
"#;

#[tokio::test]
async fn permission_violations_keep_the_connection() {
    let server = Server::start(ServerOptions::new().config(PERMS));
    let (client, mut errors) = connect_with_errors(
        &server,
        ConnectOptions::with_user_and_password("a".into(), "a".into()),
    )
    .await;

    client.publish("foo.bar", "x".into()).await.unwrap();
    assert_eq!(
        next_error(&mut errors).await,
        "permissions violation for publish to \"foo.bar\""
    );
    let _denied = client.subscribe("nope").await.unwrap();
    assert_eq!(
        next_error(&mut errors).await,
        "permissions violation for subscription to \"nope\""
    );
    let _denied = client.queue_subscribe("q.x", "other".into()).await.unwrap();
    assert_eq!(
        next_error(&mut errors).await,
        "permissions violation for subscription to \"q.x\" using queue \"other\""
    );

    // Still connected: allowed traffic flows, denied subjects stay silent.
    let mut wide = client.subscribe("foo.*").await.unwrap();
    let mut queue = client.queue_subscribe("q.x", "grp".into()).await.unwrap();
    client
        .publish("foo.baz", "denied to subscribers".into())
        .await
        .unwrap();
    client.publish("foo.ok", "ok".into()).await.unwrap();
    assert_eq!(next(&mut wide).await.subject.as_str(), "foo.ok");
    assert_silent(&mut queue, Duration::from_millis(50)).await;
    sync(&client).await;
}

#[tokio::test]
async fn allow_responses_lets_a_service_answer_once() {
    let server = Server::start(ServerOptions::new().config(PERMS));
    let (svc, mut svc_errors) = connect_with_errors(
        &server,
        ConnectOptions::with_user_and_password("svc".into(), "svc".into()),
    )
    .await;
    let mut requests = svc.subscribe("svc").await.unwrap();
    sync_denied(&svc, &mut svc_errors).await;
    let (client, _) = connect_with_errors(
        &server,
        ConnectOptions::with_user_and_password("a".into(), "a".into()),
    )
    .await;

    let request = tokio::spawn(async move { client.request("svc", "ping".into()).await });
    let msg = next(&mut requests).await;
    let reply = msg.reply.clone().expect("request has a reply subject");
    svc.publish(reply.clone(), "pong".into()).await.unwrap();
    svc.publish(reply.clone(), "again".into()).await.unwrap();
    let answer = tokio::time::timeout(STEP, request)
        .await
        .unwrap()
        .unwrap()
        .expect("request answered");
    assert_eq!(answer.payload, "pong");
    let second = next_error(&mut svc_errors).await;
    assert_eq!(
        second,
        format!("permissions violation for publish to \"{reply}\"").to_lowercase()
    );
}

/// The service may not publish on its own subjects; its `sync` goes through a
/// denied inbox, so wait for that `-ERR` instead.
async fn sync_denied(client: &async_nats::Client, errors: &mut mpsc::UnboundedReceiver<String>) {
    client.publish("not.allowed", "x".into()).await.unwrap();
    client.flush().await.unwrap();
    assert!(next_error(errors).await.contains("not.allowed"));
}
