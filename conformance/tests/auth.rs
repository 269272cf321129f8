//! Connecting with each authentication mode, and being refused without it.

mod common;

use async_nats::ConnectOptions;
use common::*;

const USERS_CONFIG: &str = r#"
authorization {
  users = [
    { user: alice, password: "wonder land" }
    { user: bob, password: b0bpass }
  ]
}
"#;

/// Connects with `opts` and proves the connection works with a round trip.
async fn connect_ok(server: &Server, opts: ConnectOptions) {
    let client = tokio::time::timeout(STEP, opts.connect(server.client_url.as_str()))
        .await
        .expect("connect timed out")
        .unwrap_or_else(|e| panic!("connect to {}: {e}\n{}", server.target(), server.log()));
    let mut sub = client.subscribe("auth.ok").await.unwrap();
    client.publish("auth.ok", "yes".into()).await.unwrap();
    assert_eq!(next(&mut sub).await.payload, "yes");
}

/// Asserts that connecting with `opts` is refused (no retries).
async fn connect_refused(server: &Server, opts: ConnectOptions) {
    let result = tokio::time::timeout(STEP, opts.connect(server.client_url.as_str()))
        .await
        .expect("a refused connect must fail fast, not hang");
    let Err(err) = result else { panic!("connection must be refused") };
    let kind = err.kind();
    assert!(
        matches!(kind, async_nats::ConnectErrorKind::AuthorizationViolation),
        "expected an authorization violation, got {kind:?}: {err}"
    );
}

#[tokio::test]
async fn no_auth_accepts_anyone() {
    let server = Server::start(ServerOptions::new());
    connect_ok(&server, ConnectOptions::new()).await;
    connect_ok(
        &server,
        ConnectOptions::with_user_and_password("any".into(), "thing".into()),
    )
    .await;
}

#[tokio::test]
async fn user_and_password_from_flags() {
    let server = Server::start(ServerOptions::new().args(["--user", "derek", "--pass", "s3cr3t"]));
    connect_ok(
        &server,
        ConnectOptions::with_user_and_password("derek".into(), "s3cr3t".into()),
    )
    .await;
    connect_refused(
        &server,
        ConnectOptions::with_user_and_password("derek".into(), "wrong".into()),
    )
    .await;
    connect_refused(&server, ConnectOptions::new()).await;
}

#[tokio::test]
async fn token_from_flag() {
    let server = Server::start(ServerOptions::new().args(["--auth", "t0ken-abc"]));
    connect_ok(&server, ConnectOptions::with_token("t0ken-abc".into())).await;
    connect_refused(&server, ConnectOptions::with_token("nope".into())).await;
    connect_refused(&server, ConnectOptions::new()).await;
}

#[tokio::test]
async fn users_from_config_file() {
    let server = Server::start(ServerOptions::new().config(USERS_CONFIG));
    connect_ok(
        &server,
        ConnectOptions::with_user_and_password("alice".into(), "wonder land".into()),
    )
    .await;
    connect_ok(
        &server,
        ConnectOptions::with_user_and_password("bob".into(), "b0bpass".into()),
    )
    .await;
    connect_refused(
        &server,
        ConnectOptions::with_user_and_password("alice".into(), "b0bpass".into()),
    )
    .await;
    connect_refused(
        &server,
        ConnectOptions::with_user_and_password("carol".into(), "x".into()),
    )
    .await;
}
