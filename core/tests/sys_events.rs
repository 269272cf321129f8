//! The system account's events: connect, disconnect and auth-error
//! advisories, account connection counts, and STATSZ on its timer only
//! while someone listens — in nats-server 2.15's shapes.

mod auth_support;

use std::time::Duration;

use auth_support::Node;
use natrix_core::monitor::ProcessStats;
use natrix_core::ConnId;
use serde_json::Value;

const CONFIG: &str = r#"
accounts {
  A { users = [ {user: a, password: a} ] }
  SYS { users = [ {user: sys, password: sys} ] }
}
system_account: SYS
"#;

/// (subject, JSON body) of every MSG in `out`.
fn events(out: &str) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    let mut rest = out;
    while let Some(start) = rest.find("MSG ") {
        let tail = &rest[start..];
        let end = tail.find("\r\n").unwrap();
        let fields: Vec<&str> = tail[..end].split(' ').collect();
        let size: usize = fields.last().unwrap().parse().unwrap();
        let body = &tail[end + 2..end + 2 + size];
        found.push((fields[1].to_owned(), serde_json::from_str(body).unwrap()));
        rest = &tail[end + 2 + size..];
    }
    found
}

/// The server's id, from the INFO a new connection gets.
fn server_id(node: &mut Node) -> String {
    let (_, info) = node.connect();
    let info: Value = serde_json::from_str(info.trim_start_matches("INFO ").trim()).unwrap();
    info["server_id"].as_str().unwrap().to_owned()
}

fn listener(node: &mut Node, subject: &str) -> ConnId {
    let sys = node.client(r#"{"user":"sys","pass":"sys","verbose":false}"#);
    node.exchange(sys, &format!("SUB {subject} 1\r\n"));
    sys
}

#[test]
fn connect_disconnect_and_auth_error_events() {
    let mut node = Node::new(CONFIG);
    let id = server_id(&mut node);
    let sys = listener(&mut node, "$SYS.>");
    let a = node.client(r#"{"user":"a","pass":"a","name":"cli","lang":"rust","version":"1.0","verbose":false}"#);
    node.exchange(a, "SUB foo 1\r\nPUB foo 5\r\nhello\r\n");
    node.server.handle_closed(node.now, a, natrix_core::server::CloseReason::ClientClosed);
    node.pump();
    let (bad, _) = node.login(r#"{"user":"a","pass":"wrong","name":"bad"}"#);
    assert!(node.is_closed(bad));
    let got = events(&node.exchange(sys, ""));
    let subjects: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "$SYS.SERVER.ACCOUNT.A.CONNS",
            "$SYS.ACCOUNT.A.SERVER.CONNS",
            "$SYS.ACCOUNT.A.CONNECT",
            "$SYS.SERVER.ACCOUNT.A.CONNS",
            "$SYS.ACCOUNT.A.SERVER.CONNS",
            "$SYS.ACCOUNT.A.DISCONNECT",
            &format!("$SYS.SERVER.{id}.CLIENT.AUTH.ERR"),
            "$SYS.ACCOUNT.$G.DISCONNECT",
        ]
    );
    let connect = &got[2].1;
    assert_eq!(connect["type"], "io.nats.server.advisory.v1.client_connect");
    assert_eq!(connect["client"]["acc"], "A");
    assert_eq!(connect["client"]["user"], "a");
    assert_eq!(connect["client"]["name"], "cli");
    assert_eq!(connect["client"]["lang"], "rust");
    assert_eq!(connect["client"]["ver"], "1.0");
    assert_eq!(connect["client"]["kind"], "Client");
    assert!(connect["client"].get("rtt").is_none(), "{connect}");
    assert_eq!(got[0].1["conns"], 1);
    assert_eq!(got[3].1["conns"], 0);
    let disconnect = &got[5].1;
    assert_eq!(disconnect["type"], "io.nats.server.advisory.v1.client_disconnect");
    assert_eq!(disconnect["reason"], "Client Closed");
    assert_eq!(disconnect["sent"], serde_json::json!({"msgs": 1, "bytes": 5}));
    assert_eq!(disconnect["received"], serde_json::json!({"msgs": 1, "bytes": 5}));
    assert!(disconnect["client"]["stop"].is_string());
    let auth = &got[6].1;
    assert_eq!(auth["reason"], "Authentication Failure");
    assert_eq!(auth["client"]["acc"], "$G");
    assert_eq!(auth["client"]["user"], "a");
    assert_eq!(auth["client"]["name"], "bad");
    // Every event takes the next sequence number.
    // Each event takes the next sequence number (both CONNS subjects share one).
    let seqs: Vec<u64> = got.iter().map(|(_, e)| e["server"]["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{seqs:?}");
}

#[test]
fn statsz_only_while_someone_listens() {
    let mut node = Node::new(CONFIG);
    let id = server_id(&mut node);
    let stats = ProcessStats { rss_bytes: 12_345_678, cpu_percent: 1.5, cores: 4 };
    node.server.handle_process_stats(node.now, stats);
    let sys = node.client(r#"{"user":"sys","pass":"sys","verbose":false}"#);
    node.advance(Duration::from_millis(300));
    assert_eq!(events(&node.take(sys)), []);
    node.exchange(sys, &format!("SUB $SYS.SERVER.{id}.STATSZ 1\r\n"));
    // The interval doubles after the first (250 ms, 500 ms, 1 s, ...).
    for _ in 0..40 {
        node.advance(Duration::from_millis(250));
    }
    let got = events(&node.take(sys));
    assert!((3..=6).contains(&got.len()), "{} STATSZ in 10 s", got.len());
    let statsz = &got[0].1["statsz"];
    assert_eq!(statsz["mem"], 12_345_678);
    assert_eq!(statsz["cores"], 4);
    assert_eq!(statsz["cpu"], 1.5);
    assert_eq!(statsz["connections"], 2, "the listener and the connection that read the id");
    assert_eq!(statsz["active_servers"], 1);
    // Steady state: one every 10 s.
    node.take(sys);
    for _ in 0..120 {
        node.advance(Duration::from_millis(250));
    }
    assert_eq!(events(&node.take(sys)).len(), 3);
    // A PING without a reply subject broadcasts at once.
    let got = events(&node.exchange(sys, "PUB $SYS.REQ.SERVER.PING 0\r\n\r\n"));
    assert_eq!(got.len(), 1);
    assert!(got[0].1["statsz"].is_object());
}

#[test]
fn account_connections_repeat_while_clients_stay() {
    let mut node = Node::new(CONFIG);
    let sys = listener(&mut node, "$SYS.ACCOUNT.A.SERVER.CONNS");
    let a = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    assert_eq!(events(&node.take(sys)).len(), 1);
    node.advance(Duration::from_secs(31));
    node.exchange(a, "");
    let got = events(&node.take(sys));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1["conns"], 1);
    node.server.handle_closed(node.now, a, natrix_core::server::CloseReason::ClientClosed);
    node.pump();
    node.advance(Duration::from_secs(61));
    let got = events(&node.exchange(sys, ""));
    assert_eq!(got.len(), 1, "only the drop to zero, no heartbeat after");
    assert_eq!(got[0].1["conns"], 0);
}

#[test]
fn no_events_without_a_system_account() {
    let mut node = Node::new("accounts { A { users = [ {user: a, password: a} ] } }\nno_system_account: true\n");
    let a = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    node.exchange(a, "SUB $SYS.> 1\r\n");
    let b = node.client(r#"{"user":"a","pass":"a","verbose":false}"#);
    node.advance(Duration::from_secs(2));
    node.server.handle_closed(node.now, b, natrix_core::server::CloseReason::ClientClosed);
    node.pump();
    assert_eq!(events(&node.exchange(a, "")), []);
}
