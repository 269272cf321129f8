//! The system account's events and requests against a live server (natrix
//! or, with `NATRIX_SERVER=nats-server`, the reference), and natrix's
//! memory limit end to end.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use async_nats::ConnectOptions;
use common::*;
use natrix_conformance::Target;
use serde_json::Value;

const CONFIG: &str = r#"
accounts {
  A: { users: [
    {user: a, password: a}
    {user: p, password: p, permissions: {publish: ["foo", "$SYS.REQ.USER.INFO"], subscribe: ["_INBOX.>"]}}
  ] }
  SYS: { users: [ {user: sys, password: sys} ] }
}
system_account: SYS
"#;

async fn login(server: &Server, user: &str, name: &str) -> async_nats::Client {
    let opts = ConnectOptions::with_user_and_password(user.into(), user.into()).name(name);
    tokio::time::timeout(STEP, opts.connect(server.client_url.as_str()))
        .await
        .expect("connect timed out")
        .unwrap_or_else(|e| panic!("connect as {user}: {e}\n{}", server.log()))
}

fn json(m: &async_nats::Message) -> Value {
    serde_json::from_slice(&m.payload).unwrap()
}

#[tokio::test]
async fn connect_and_disconnect_events_reach_the_system_account() {
    let server = Server::start(ServerOptions::new().config(CONFIG));
    let sys = login(&server, "sys", "watcher").await;
    let mut connects = sys.subscribe("$SYS.ACCOUNT.A.CONNECT").await.unwrap();
    let mut disconnects = sys.subscribe("$SYS.ACCOUNT.A.DISCONNECT").await.unwrap();
    let mut conns = sys.subscribe("$SYS.ACCOUNT.A.SERVER.CONNS").await.unwrap();
    sync(&sys).await;
    let a = login(&server, "a", "worker").await;
    let event = json(&next(&mut connects).await);
    assert_eq!(event["type"], "io.nats.server.advisory.v1.client_connect");
    assert_eq!(event["client"]["acc"], "A");
    assert_eq!(event["client"]["user"], "a");
    assert_eq!(event["client"]["name"], "worker");
    assert_eq!(event["client"]["lang"], "rust");
    assert_eq!(json(&next(&mut conns).await)["conns"], 1);
    a.publish("foo", "hello".into()).await.unwrap();
    a.flush().await.unwrap();
    drop(a);
    let event = json(&next(&mut disconnects).await);
    assert_eq!(event["type"], "io.nats.server.advisory.v1.client_disconnect");
    assert_eq!(event["reason"], "Client Closed");
    assert_eq!(event["sent"]["msgs"], 1);
    assert_eq!(event["sent"]["bytes"], 5);
    assert!(event["client"]["stop"].is_string());
    assert_eq!(json(&next(&mut conns).await)["conns"], 0);
}

#[tokio::test]
async fn auth_errors_and_statsz_requests() {
    let server = Server::start(ServerOptions::new().config(CONFIG));
    let sys = login(&server, "sys", "watcher").await;
    let mut errors = sys.subscribe("$SYS.SERVER.*.CLIENT.AUTH.ERR").await.unwrap();
    sync(&sys).await;
    let refused = ConnectOptions::with_user_and_password("a".into(), "wrong".into())
        .name("intruder")
        .connect(server.client_url.as_str())
        .await;
    assert!(refused.is_err());
    let event = json(&next(&mut errors).await);
    assert_eq!(event["reason"], "Authentication Failure");
    assert_eq!(event["client"]["user"], "a");
    assert_eq!(event["client"]["name"], "intruder");

    let reply = tokio::time::timeout(STEP, sys.request("$SYS.REQ.SERVER.PING", "".into())).await.unwrap().unwrap();
    let statsz = json(&reply);
    assert_eq!(statsz["statsz"]["connections"], 1, "{statsz}");
    assert!(statsz["statsz"]["mem"].as_u64().unwrap() > 0, "{statsz}");
    assert!(statsz["server"]["id"].is_string());
    let varz = json(&tokio::time::timeout(STEP, sys.request("$SYS.REQ.SERVER.PING.VARZ", "".into())).await.unwrap().unwrap());
    assert_eq!(varz["data"]["server_id"], statsz["server"]["id"]);
    assert_eq!(varz["data"]["connections"], 1);

    let p = login(&server, "p", "limited").await;
    let me = json(&tokio::time::timeout(STEP, p.request("$SYS.REQ.USER.INFO", "".into())).await.unwrap().unwrap());
    assert_eq!(me["data"]["user"], "p");
    assert_eq!(me["data"]["account"], "A");
    assert_eq!(me["data"]["permissions"]["publish"]["allow"][0], "foo");
    assert_eq!(me["data"]["permissions"]["subscribe"]["allow"][0], "_INBOX.>");
}

#[test]
fn memory_limit_refuses_new_connections_and_says_so() {
    if Target::from_env() != Target::Natrix {
        return; // natrix's own setting
    }
    // Any process is over 1 MiB resident: the limit is reached at the first measurement.
    let server = Server::start(ServerOptions::new().config("memory_limit: \"1MiB\"\n").monitoring());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let stream = TcpStream::connect(server.addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut lines = BufReader::new(stream);
        let (mut info, mut next_line) = (String::new(), String::new());
        lines.read_line(&mut info).unwrap();
        let _ = lines.get_mut().write_all(b"CONNECT {}\r\nPING\r\n");
        let _ = lines.read_line(&mut next_line);
        if next_line.starts_with("-ERR") || std::time::Instant::now() > deadline {
            break next_line;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(refused, "-ERR 'maximum connections exceeded: memory limit reached'\r\n");
    let varz: Value = serde_json::from_str(&http_get(&server, "/varz")).unwrap();
    assert_eq!(varz["memory_limit_exceeded"], true, "{varz}");
    assert_eq!(varz["gomemlimit"], 1 << 20);
    assert!(server.log().contains("Memory limit:"), "{}", server.log());
    assert!(server.log().contains("connection refused: memory limit reached"), "{}", server.log());
}

/// The body of a plain HTTP GET of the monitor.
fn http_get(server: &Server, path: &str) -> String {
    let url = server.monitor_url.as_deref().expect("monitoring on");
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()
}
