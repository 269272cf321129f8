//! S2 against a live server: account isolation, stream imports with
//! remapping, service imports with responses, private exports, no_auth_user.

mod common;

use std::time::Duration;

use async_nats::ConnectOptions;
use common::*;

const ACCOUNTS: &str = r#"
accounts {
  A: {
    users: [ {user: a, password: a} ]
    imports: [
      {stream: {account: B, subject: "news.>"}, prefix: "b"}
      {service: {account: B, subject: "svc.echo"}, to: "echo"}
    ]
  }
  B: {
    users: [ {user: b, password: b} ]
    exports: [
      {stream: "news.>"}
      {service: "svc.echo"}
      {stream: "private.>", accounts: [C]}
    ]
  }
  C: {
    users: [ {user: c, password: c} ]
    imports: [ {stream: {account: B, subject: "private.>"}} ]
  }
}
no_auth_user: c
"#;

async fn login(server: &Server, user: &str) -> async_nats::Client {
    let opts = ConnectOptions::with_user_and_password(user.into(), user.into());
    tokio::time::timeout(STEP, opts.connect(server.client_url.as_str()))
        .await
        .expect("connect timed out")
        .unwrap_or_else(|e| panic!("connect as {user}: {e}\n{}", server.log()))
}

#[tokio::test]
async fn isolation_and_stream_imports() {
    let server = Server::start(ServerOptions::new().config(ACCOUNTS));
    let (a, b, c) = (
        login(&server, "a").await,
        login(&server, "b").await,
        login(&server, "c").await,
    );
    let mut a_same = a.subscribe("news.>").await.unwrap();
    let mut a_imported = a.subscribe("b.news.>").await.unwrap();
    let mut a_private = a.subscribe("private.>").await.unwrap();
    let mut c_private = c.subscribe("private.>").await.unwrap();
    let mut c_news = c.subscribe("news.>").await.unwrap();
    sync(&a).await;
    sync(&c).await;
    b.publish("news.today", "n".into()).await.unwrap();
    b.publish("private.memo", "p".into()).await.unwrap();
    sync(&b).await;
    assert_eq!(next(&mut a_imported).await.subject.as_str(), "b.news.today");
    assert_eq!(next(&mut c_private).await.subject.as_str(), "private.memo");
    let quiet = Duration::from_millis(100);
    assert_silent(&mut a_same, quiet).await;
    assert_silent(&mut a_private, quiet).await;
    assert_silent(&mut c_news, quiet).await;
    // Nothing flows back from importer to exporter.
    let mut b_news = b.subscribe("news.>").await.unwrap();
    sync(&b).await;
    a.publish("news.back", "x".into()).await.unwrap();
    sync(&a).await;
    assert_silent(&mut b_news, quiet).await;
}

#[tokio::test]
async fn service_import_answers_requests() {
    let server = Server::start(ServerOptions::new().config(ACCOUNTS));
    let (a, b) = (login(&server, "a").await, login(&server, "b").await);
    let mut service = b.subscribe("svc.echo").await.unwrap();
    sync(&b).await;
    let responder = tokio::spawn(async move {
        let msg = next(&mut service).await;
        let reply = msg.reply.expect("request has a reply");
        assert!(
            reply.starts_with("_R_."),
            "exporter sees a mapped reply: {reply}"
        );
        b.publish(reply, msg.payload).await.unwrap();
        b.flush().await.unwrap();
        b
    });
    let answer = tokio::time::timeout(STEP, a.request("echo", "ping".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.payload, "ping");
    responder.await.unwrap();
    // Not imported under its exported name.
    let err = tokio::time::timeout(STEP, a.request("svc.echo", "x".into()))
        .await
        .unwrap();
    assert!(err.is_err(), "svc.echo is not imported as such");
}

#[tokio::test]
async fn no_auth_user_joins_its_account() {
    let server = Server::start(ServerOptions::new().config(ACCOUNTS));
    let anon = connect(&server).await;
    let c = login(&server, "c").await;
    let mut sub = c.subscribe("hello").await.unwrap();
    sync(&c).await;
    anon.publish("hello", "from anon".into()).await.unwrap();
    assert_eq!(next(&mut sub).await.payload, "from anon");
}
