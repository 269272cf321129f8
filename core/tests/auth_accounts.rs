//! S2: accounts isolate subjects; stream and service imports carry
//! messages across, with nats-server's subjects, reply mapping and
//! response types; bad imports are config errors.

mod auth_support;

use auth_support::{options, Node};
use natrix_core::config::{apply_config, parse_str, MemorySource, ServerOptions};

const ACCOUNTS: &str = r#"
accounts {
  A: {
    users: [ {user: a, password: a} ]
    imports: [
      {stream: {account: B, subject: "news.>"}, prefix: "b"}
      {stream: {account: B, subject: "feed.*"}, to: "myfeed.*"}
      {service: {account: B, subject: "svc.a"}, to: "local.a"}
      {service: {account: B, subject: "svc.s"}}
    ]
  }
  B: {
    users: [ {user: b, password: b} ]
    exports: [
      {stream: "news.>"}
      {stream: "feed.*"}
      {service: "svc.a"}
      {service: "svc.s", response_type: stream}
      {stream: "private.>", accounts: [C]}
    ]
  }
  C: {
    users: [ {user: c, password: c}, {user: c2, password: c2} ]
    imports: [ {stream: {account: B, subject: "private.>"}} ]
    default_permissions: { publish: "c.>" }
  }
}
"#;

fn login(node: &mut Node, user: &str) -> natrix_core::ConnId {
    node.client(&format!(
        r#"{{"user":"{user}","pass":"{user}","verbose":false}}"#
    ))
}

#[test]
fn accounts_are_isolated() {
    let mut node = Node::new(ACCOUNTS);
    let a = login(&mut node, "a");
    let b = login(&mut node, "b");
    let c = login(&mut node, "c");
    for conn in [a, b, c] {
        assert_eq!(node.exchange(conn, "SUB x.> 1\r\n"), "PONG\r\n");
    }
    assert_eq!(
        node.exchange(b, "PUB x.y 1\r\nm\r\n"),
        "MSG x.y 1 1\r\nm\r\nPONG\r\n"
    );
    assert_eq!(node.exchange(a, ""), "PONG\r\n");
    assert_eq!(node.exchange(c, ""), "PONG\r\n");
}

#[test]
fn stream_imports_with_prefix_and_to() {
    let mut node = Node::new(ACCOUNTS);
    let a = login(&mut node, "a");
    let b = login(&mut node, "b");
    let c = login(&mut node, "c");
    assert_eq!(
        node.exchange(
            a,
            "SUB b.news.> 1\r\nSUB myfeed.* 2\r\nSUB news.> 3\r\nSUB private.> 4\r\n"
        ),
        "PONG\r\n"
    );
    assert_eq!(
        node.exchange(c, "SUB private.> 1\r\nSUB news.> 2\r\n"),
        "PONG\r\n"
    );
    node.exchange(
        b,
        "PUB news.x 2\r\nhi\r\nPUB feed.y 2\r\nhf\r\nPUB private.z 2\r\npz\r\n",
    );
    // Exactly what nats-server 2.15 sends for the same config.
    assert_eq!(
        node.exchange(a, ""),
        "MSG b.news.x 1 2\r\nhi\r\nMSG myfeed.y 2 2\r\nhf\r\nPONG\r\n"
    );
    assert_eq!(node.exchange(c, ""), "MSG private.z 1 2\r\npz\r\nPONG\r\n");
}

#[test]
fn service_imports_route_responses_by_type() {
    let mut node = Node::new(ACCOUNTS);
    let a = login(&mut node, "a");
    let b = login(&mut node, "b");
    assert_eq!(
        node.exchange(a, "SUB _INBOX.x 4\r\nSUB local.a 5\r\n"),
        "PONG\r\n"
    );
    assert_eq!(node.exchange(b, "SUB svc.* 1\r\n"), "PONG\r\n");
    let local = node.exchange(a, "PUB local.a _INBOX.x 1\r\nq\r\nPUB svc.s _INBOX.x 2\r\nq2\r\nPUB svc.a _INBOX.x 2\r\nq3\r\n");
    assert_eq!(
        local, "MSG local.a 5 _INBOX.x 1\r\nq\r\nPONG\r\n",
        "the importer's own subscribers get it too"
    );
    let requests = node.exchange(b, "");
    let replies: Vec<&str> = requests
        .lines()
        .filter(|l| l.starts_with("MSG"))
        .map(|l| l.split(' ').nth(3).unwrap())
        .collect();
    assert_eq!(replies.len(), 2, "{requests}");
    assert!(requests.starts_with("MSG svc.a 1 _R_."), "{requests}");
    for reply in &replies {
        assert_eq!(reply.len(), "_R_.abcdef.ghijkl".len(), "{reply}");
    }
    let answers: String = replies
        .iter()
        .map(|r| format!("PUB {r} 2\r\nr1\r\nPUB {r} 2\r\nr2\r\n"))
        .collect();
    node.exchange(b, &answers);
    // svc.a is a singleton: its second response is dropped; svc.s streams.
    assert_eq!(
        node.exchange(a, ""),
        "MSG _INBOX.x 4 2\r\nr1\r\nMSG _INBOX.x 4 2\r\nr1\r\nMSG _INBOX.x 4 2\r\nr2\r\nPONG\r\n"
    );
}

#[test]
fn account_default_permissions_and_no_auth_user() {
    let mut node = Node::new(&format!("{ACCOUNTS}\nno_auth_user: c2\n"));
    let anon = node.client(r#"{"verbose":false}"#);
    assert_eq!(
        node.exchange(anon, "PUB x 1\r\nm\r\nPUB c.ok 1\r\nm\r\n"),
        "-ERR 'Permissions Violation for Publish to \"x\"'\r\nPONG\r\n"
    );
    let c = login(&mut node, "c");
    assert_eq!(node.exchange(c, "SUB c.> 1\r\n"), "PONG\r\n");
    node.exchange(anon, "PUB c.hello 1\r\nm\r\n");
    assert_eq!(
        node.exchange(c, ""),
        "MSG c.hello 1 1\r\nm\r\nPONG\r\n",
        "no_auth_user lands in its account"
    );
}

#[test]
fn requests_without_responders_in_the_exporter_get_503() {
    let mut node = Node::new(ACCOUNTS);
    let a = node
        .client(r#"{"user":"a","pass":"a","verbose":false,"headers":true,"no_responders":true}"#);
    assert_eq!(
        node.exchange(a, "SUB _INBOX.y 1\r\nPUB local.a _INBOX.y 0\r\n\r\n"),
        "HMSG _INBOX.y 1 39 39\r\nNATS/1.0 503\r\nNats-Subject: local.a\r\n\r\n\r\nPONG\r\n"
    );
}

fn config_errors(text: &str) -> String {
    let tree = parse_str(text, "acc.conf", &MemorySource::default()).unwrap();
    let mut opts = ServerOptions::default();
    apply_config(&tree, &mut opts, false)
        .expect_err("config must be refused")
        .to_string()
}

#[test]
fn bad_imports_are_config_errors_with_positions() {
    let errors = config_errors(
        r#"port: 4222
accounts {
  A: { imports: [ {stream: {account: B, subject: "nope.>"}} ] }
  B: { exports: [ {stream: "news.>"}, {stream: "private.>", accounts: [C]} ] }
  C: { imports: [ {stream: {account: B, subject: "private.x"}} ] }
  D: { imports: [ {stream: {account: B, subject: "private.x"}}, {service: {account: Z, subject: "x"}} ] }
}
"#,
    );
    assert!(errors.contains("acc.conf:2:"), "{errors}");
    assert!(
        errors.contains("Error adding stream import \"nope.>\": stream import not authorized"),
        "{errors}"
    );
    assert!(
        errors.contains("Error adding stream import \"private.x\": stream import not authorized"),
        "{errors}"
    );
    assert!(
        errors.contains("\"Z\" account not defined for service import"),
        "{errors}"
    );
    assert_eq!(
        errors.matches("private.x").count(),
        1,
        "C may import private.x: {errors}"
    );
}

#[test]
fn an_export_of_the_exact_subject_decides_alone() {
    let errors = config_errors(
        r#"accounts {
  A: { imports: [ {stream: {account: B, subject: "s.a"}}, {stream: {account: B, subject: "s.b"}}, {service: {account: B, subject: "q.a"}} ] }
  B: { exports: [ {stream: "s.*"}, {stream: "s.a", accounts: [C]}, {service: "q.*"}, {service: "q.a", accounts: [C]} ] }
  C: {}
}
"#,
    );
    assert!(
        errors.contains("Error adding stream import \"s.a\": stream import not authorized"),
        "{errors}"
    );
    assert!(
        errors.contains("Error adding service import \"q.a\": service import not authorized"),
        "{errors}"
    );
    assert!(!errors.contains("s.b"), "the wildcard export admits s.b: {errors}");
}

#[test]
fn system_account_exists_by_default() {
    let opts =
        options("accounts { SYS: { users: [ {user: s, password: s} ] } }\nsystem_account: SYS\n");
    assert_eq!(opts.system_account.as_deref(), Some("SYS"));
    let mut node = Node::with_options(opts);
    login(&mut node, "s");
    let opts = options("accounts { A: {} }");
    assert!(opts.accounts.iter().any(|a| a.name == "A"));
}

#[test]
fn connect_info_marks_the_system_account() {
    let text = "accounts { SYS: { users: [ {user: s, password: s} ] }, A: { users: [ {user: a, password: a} ] } }\nsystem_account: SYS\n";
    let mut node = Node::with_options(options(text));
    for (user, is_sys) in [("s", true), ("a", false)] {
        let (_, info) = node.login(&format!(
            r#"{{"user":"{user}","pass":"{user}","verbose":false,"protocol":1}}"#
        ));
        assert!(info.contains(r#""connect_info":true"#), "{info}");
        assert_eq!(info.contains(r#""acc_is_sys":true"#), is_sys, "{info}");
    }
}

#[test]
fn top_level_default_permissions_skip_account_users() {
    // Accounts first, then authorization: the account users must survive.
    let mut node = Node::new(
        r#"
accounts { A: { users: [ {user: a, password: a} ] }, B: { users: [ {user: b, password: b} ], default_permissions: { publish: "b.>" } } }
authorization { default_permissions: { publish: "ok.>" }, users: [ {user: g, password: g} ] }
"#,
    );
    // What nats-server 2.15 answers for the same config.
    let a = login(&mut node, "a");
    assert_eq!(
        node.exchange(a, "PUB x 1\r\n1\r\nPUB ok.1 1\r\n1\r\n"),
        "PONG\r\n"
    );
    let b = login(&mut node, "b");
    assert_eq!(
        node.exchange(b, "PUB x 1\r\n1\r\nPUB ok.1 1\r\n1\r\nPUB b.1 1\r\n1\r\n"),
        "-ERR 'Permissions Violation for Publish to \"x\"'\r\n-ERR 'Permissions Violation for Publish to \"ok.1\"'\r\nPONG\r\n"
    );
    let g = login(&mut node, "g");
    assert_eq!(
        node.exchange(g, "PUB x 1\r\n1\r\n"),
        "-ERR 'Permissions Violation for Publish to \"x\"'\r\nPONG\r\n"
    );
}

#[test]
fn per_account_statistics() {
    let mut node = Node::new(ACCOUNTS);
    let a = login(&mut node, "a");
    let b = login(&mut node, "b");
    assert_eq!(
        node.exchange(a, "SUB x 1\r\nSUB b.news.> 2\r\n"),
        "PONG\r\n"
    );
    node.exchange(a, "PUB x 3\r\nabc\r\n");
    node.exchange(b, "PUB news.1 2\r\nhi\r\n");
    let stats = node.server.account_stats();
    let of = |name: &str| stats.iter().find(|s| s.name == name).unwrap().clone();
    let (sa, sb) = (of("A"), of("B"));
    assert_eq!((sa.conns, sa.total_conns, sa.num_subscriptions), (1, 1, 2));
    assert_eq!((sa.received.msgs, sa.received.bytes), (1, 3));
    assert_eq!(
        (sa.sent.msgs, sa.sent.bytes),
        (2, 5),
        "its own message and the imported one"
    );
    assert_eq!((sb.received.msgs, sb.sent.msgs), (1, 0));
    assert_eq!(of("C").conns, 0);
    let json = serde_json::to_value(&sa).unwrap();
    for key in [
        "acc",
        "name",
        "conns",
        "leafnodes",
        "total_conns",
        "num_subscriptions",
        "sent",
        "received",
        "slow_consumers",
    ] {
        assert!(
            json.get(key).is_some(),
            "nats-server's /accstatz field {key}: {json}"
        );
    }
    assert_eq!(
        json["sent"]["routes"],
        serde_json::json!({"msgs": 0, "bytes": 0})
    );
}
