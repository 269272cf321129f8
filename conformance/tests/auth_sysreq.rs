//! Monitoring over NATS against a live server: a system-account user asks
//! `$SYS.REQ.ACCOUNT.<acc>.CONNZ` and gets that account's connections only,
//! in nats-server's `{"server":…,"data":…}` envelope; other accounts see
//! only themselves; `/accountz` answers over HTTP.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use async_nats::ConnectOptions;
use common::*;
use serde_json::Value;

const CONFIG: &str = r#"
accounts {
  A: { users: [ {user: a, password: a} ], exports: [ {service: "a.svc"} ] }
  B: { users: [ {user: b, password: b} ], imports: [ {service: {account: A, subject: "a.svc"}} ] }
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

async fn request(client: &async_nats::Client, subject: &str, body: &str) -> Result<Value, String> {
    let answer = tokio::time::timeout(
        STEP,
        client.request(subject.to_owned(), body.to_owned().into()),
    )
    .await
    .map_err(|_| format!("{subject}: no answer"))?
    .map_err(|e| format!("{subject}: {e}"))?;
    serde_json::from_slice(&answer.payload).map_err(|e| format!("{subject}: {e}"))
}

fn names(reply: &Value) -> Vec<String> {
    let conns = reply["data"]["connections"]
        .as_array()
        .expect("a connection list");
    let mut names: Vec<String> = conns
        .iter()
        .map(|c| c["name"].as_str().unwrap_or("").to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn system_user_asks_for_one_accounts_connections() {
    let server = Server::start(ServerOptions::new().config(CONFIG));
    let _a1 = login(&server, "a", "a1").await;
    let _a2 = login(&server, "a", "a2").await;
    let _b1 = login(&server, "b", "b1").await;
    let sys = login(&server, "sys", "s1").await;

    let reply = request(&sys, "$SYS.REQ.ACCOUNT.A.CONNZ", "").await.unwrap();
    let server_info = &reply["server"];
    for key in [
        "name",
        "host",
        "id",
        "ver",
        "jetstream",
        "flags",
        "seq",
        "time",
    ] {
        assert!(
            server_info.get(key).is_some(),
            "server.{key} missing: {reply}"
        );
    }
    let data = &reply["data"];
    assert_eq!(data["server_id"], server_info["id"]);
    assert_eq!(
        (data["num_connections"].as_u64(), data["total"].as_u64()),
        (Some(2), Some(2)),
        "{reply}"
    );
    assert_eq!(names(&reply), ["a1", "a2"]);

    // The subject names the account: a body asking for another does not widen it.
    let pinned = request(&sys, "$SYS.REQ.ACCOUNT.A.CONNZ", r#"{"acc":"B"}"#)
        .await
        .unwrap();
    assert_eq!(names(&pinned), ["a1", "a2"]);
    let b_only = request(&sys, "$SYS.REQ.ACCOUNT.B.CONNZ", "").await.unwrap();
    assert_eq!(names(&b_only), ["b1"]);
    let everyone = request(&sys, "$SYS.REQ.SERVER.PING.CONNZ", "")
        .await
        .unwrap();
    assert_eq!(names(&everyone), ["a1", "a2", "b1", "s1"]);

    let statz = request(&sys, "$SYS.REQ.ACCOUNT.A.STATZ", "").await.unwrap();
    assert_eq!(statz["data"]["account_statz"][0]["conns"], 2, "{statz}");
    let info = request(&sys, "$SYS.REQ.ACCOUNT.A.INFO", "").await.unwrap();
    assert_eq!(info["data"]["account_name"], "A", "{info}");
    let bad = request(&sys, "$SYS.REQ.SERVER.PING.CONNZ", "{bad")
        .await
        .unwrap();
    assert_eq!(bad["error"]["code"], 400, "{bad}");
}

#[tokio::test]
async fn accounts_see_only_their_own_connections() {
    let server = Server::start(ServerOptions::new().config(CONFIG));
    let _a1 = login(&server, "a", "a1").await;
    let b1 = login(&server, "b", "b1").await;
    let _b2 = login(&server, "b", "b2").await;

    for subject in ["$SYS.REQ.ACCOUNT.PING.CONNZ", "$SYS.REQ.SERVER.PING.CONNZ"] {
        for body in ["", r#"{"acc":"A"}"#] {
            let own = request(&b1, subject, body).await.unwrap();
            assert_eq!(names(&own), ["b1", "b2"], "{subject} {body}");
        }
    }
    let statz = request(&b1, "$SYS.REQ.ACCOUNT.PING.STATZ", r#"{"accounts":["A"]}"#)
        .await
        .unwrap();
    assert_eq!(statz["data"]["account_statz"][0]["acc"], "B", "{statz}");
    let me = request(&b1, "$SYS.REQ.USER.INFO", "").await.unwrap();
    assert_eq!(
        (me["data"]["user"].as_str(), me["data"]["account"].as_str()),
        (Some("b"), Some("B")),
        "{me}"
    );
    // Another account's monitoring subject is not imported: nobody answers.
    let err = request(&b1, "$SYS.REQ.ACCOUNT.A.CONNZ", "")
        .await
        .unwrap_err();
    assert!(err.contains("no responders"), "{err}");
}

/// A plain HTTP GET of the monitor; returns the status and body.
fn http_get(server: &Server, path: &str) -> (u16, String) {
    let url = server.monitor_url.as_deref().expect("monitoring on");
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    )
}

/// The body of a chunked HTTP/1.1 response (Go's server chunks larger bodies).
fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}

#[tokio::test]
async fn accountz_over_http() {
    let server = Server::start(ServerOptions::new().config(CONFIG).monitoring());
    let _a1 = login(&server, "a", "a1").await;
    let (status, body) = http_get(&server, "/accountz");
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["system_account"], "SYS");
    let mut accounts: Vec<&str> = list["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    accounts.sort_unstable();
    assert_eq!(accounts, ["$G", "A", "B", "SYS"]);

    let (status, body) = http_get(&server, "/accountz?acc=B");
    assert_eq!(status, 200, "{body}");
    let detail: Value = serde_json::from_str(&body).unwrap();
    let b = &detail["account_detail"];
    assert_eq!(
        (b["account_name"].as_str(), b["client_connections"].as_u64()),
        (Some("B"), Some(0))
    );
    let imported = b["imports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["account"] == "A")
        .expect("the import of A");
    assert_eq!(
        (imported["subject"].as_str(), imported["type"].as_str()),
        (Some("a.svc"), Some("service"))
    );

    let (status, body) = http_get(&server, "/accountz?acc=NOPE");
    assert_eq!((status, body.trim()), (400, "Account NOPE does not exist"));
}
