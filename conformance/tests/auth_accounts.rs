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

/// A imports `q` from B, which imports it from C: a two-hop service import.
const CHAIN: &str = r#"
accounts {
  A: {
    users: [ {user: a, password: a} ]
    imports: [ {service: {account: B, subject: "q"}} ]
  }
  B: {
    users: [ {user: b, password: b} ]
    exports: [ {service: "q"} ]
    imports: [ {service: {account: C, subject: "c.q"}, to: "q"} ]
  }
  C: {
    users: [ {user: c, password: c} ]
    exports: [ {service: "c.q"} ]
  }
}
"#;

#[tokio::test]
async fn service_requests_cross_two_imports() {
    let server = Server::start(ServerOptions::new().config(CHAIN));
    let (a, b, c) = (
        login(&server, "a").await,
        login(&server, "b").await,
        login(&server, "c").await,
    );
    let mut at_b = b.subscribe("q").await.unwrap();
    let mut service = c.subscribe("c.q").await.unwrap();
    sync(&b).await;
    sync(&c).await;
    let responder = tokio::spawn(async move {
        let msg = next(&mut service).await;
        let reply = msg.reply.expect("request has a reply");
        assert!(
            reply.starts_with("_R_."),
            "C sees its own reply subject: {reply}"
        );
        c.publish(reply, format!("c got {}", msg.subject).into())
            .await
            .unwrap();
        c.flush().await.unwrap();
        c
    });
    let answer = tokio::time::timeout(STEP, a.request("q", "ping".into()))
        .await
        .expect("request timed out")
        .unwrap_or_else(|e| panic!("two-hop request: {e}\n{}", server.log()));
    assert_eq!(answer.payload, "c got c.q");
    responder.await.unwrap();
    // B, in the middle, sees the request too, with a reply subject of its own.
    let seen = next(&mut at_b).await;
    assert_eq!(seen.payload, "ping");
    assert!(seen.reply.is_some_and(|r| r.starts_with("_R_.")));
}

#[tokio::test]
async fn a_two_hop_request_without_responders_fails_fast() {
    let server = Server::start(ServerOptions::new().config(CHAIN));
    let a = login(&server, "a").await;
    let err = tokio::time::timeout(STEP, a.request("q", "ping".into()))
        .await
        .expect("no-responders answer timed out")
        .expect_err("nobody answers");
    assert_eq!(
        err.kind(),
        async_nats::RequestErrorKind::NoResponders,
        "{err}"
    );
}

#[test]
fn an_import_cycle_is_refused_at_start_up() {
    let dir = natrix_conformance::TempDir::new("cycle");
    let conf = dir.write(
        "cycle.conf",
        r#"port: -1
accounts {
  A: { exports: [ {service: "q"} ], imports: [ {service: {account: B, subject: "q"}} ] }
  B: { exports: [ {service: "q"} ], imports: [ {service: {account: A, subject: "q"}} ] }
}
"#,
    );
    let path = conf.to_str().unwrap();
    let expected = "cycle.conf:2:1: Error adding service import \"q\": import forms a cycle";
    let target = natrix_conformance::Target::from_env();
    for args in [vec!["-t", "-c", path], vec!["-c", path]] {
        let out = natrix_conformance::run_to_exit(target, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", out.output);
        assert!(out.output.contains(expected), "{args:?}: {}", out.output);
    }
}
