//! Imports across more than one account: service imports chained through
//! several accounts (each hop mapping the reply subject), what does not
//! chain (stream imports are not re-exported, requests do not feed stream
//! exports), the bound on chains, and the config checks nats-server makes at
//! start-up (cycles, undefined accounts, unauthorized imports…). Expected
//! outputs are what nats-server 2.15.1 does with the same configs.

mod auth_support;

use auth_support::Node;
use natrix_core::account::checks::{check_imports, ImportError, Refusal};
use natrix_core::account::{AccountConfig, Export, Import, ImportKind, ResponseType};
use natrix_core::config::{apply_config, parse_str, MemorySource, ServerOptions};

/// A imports `q` from B, which imports it from C: requests from A reach C.
const CHAIN: &str = r#"
accounts {
  A: {
    users: [ {user: a, password: a} ]
    imports: [ {service: {account: B, subject: "q"}} ]
  }
  B: {
    users: [ {user: b, password: b} ]
    exports: [ {service: "q"}, {stream: "q"}, {stream: "s"} ]
    imports: [ {service: {account: C, subject: "q"}}, {stream: {account: C, subject: "s"}} ]
  }
  C: {
    users: [ {user: c, password: c} ]
    exports: [ {service: "q"}, {stream: "s"} ]
  }
  D: {
    users: [ {user: d, password: d} ]
    imports: [ {stream: {account: B, subject: "q"}}, {stream: {account: B, subject: "s"}} ]
  }
}
"#;

/// A client without headers: it sees requests as plain MSG, without the
/// `Nats-Request-Info` header nats-server adds to them.
fn login(node: &mut Node, user: &str) -> natrix_core::ConnId {
    node.client(&format!(
        r#"{{"user":"{user}","pass":"{user}","verbose":false}}"#
    ))
}

/// A client taking headers and asking for no-responders statuses.
fn login_with_headers(node: &mut Node, user: &str) -> natrix_core::ConnId {
    node.client(&format!(
        r#"{{"user":"{user}","pass":"{user}","verbose":false,"headers":true,"no_responders":true}}"#
    ))
}

/// The reply subjects of the MSG lines in `text`.
fn replies(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("MSG "))
        .filter_map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            (parts.len() == 5).then(|| parts[3].to_owned())
        })
        .collect()
}

#[test]
fn a_request_crosses_two_service_imports_and_its_response_comes_back() {
    let mut node = Node::new(CHAIN);
    let (a, b, c) = (
        login(&mut node, "a"),
        login(&mut node, "b"),
        login(&mut node, "c"),
    );
    assert_eq!(node.exchange(a, "SUB _INBOX.a 1\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(b, "SUB q 1\r\nSUB _R_.> 2\r\n"), "PONG\r\n");
    assert_eq!(node.exchange(c, "SUB q 1\r\n"), "PONG\r\n");
    node.exchange(a, "PUB q _INBOX.a 2\r\nhi\r\n");
    // B's own subscribers see the request as well, with B's reply subject.
    let at_b = node.exchange(b, "");
    let at_c = node.exchange(c, "");
    let (b_reply, c_reply) = (replies(&at_b), replies(&at_c));
    assert_eq!(b_reply.len(), 1, "{at_b}");
    assert_eq!(c_reply.len(), 1, "{at_c}");
    assert!(b_reply[0].starts_with("_R_.") && c_reply[0].starts_with("_R_."));
    assert_ne!(
        b_reply[0], c_reply[0],
        "each hop makes its own reply subject"
    );
    assert_eq!(at_c, format!("MSG q 1 {} 2\r\nhi\r\nPONG\r\n", c_reply[0]));
    node.exchange(c, &format!("PUB {} 3\r\nres\r\n", c_reply[0]));
    assert_eq!(node.exchange(a, ""), "MSG _INBOX.a 1 3\r\nres\r\nPONG\r\n");
    // The response passes through B on B's reply subject, as in nats-server.
    assert_eq!(
        node.exchange(b, ""),
        format!("MSG {} 2 3\r\nres\r\nPONG\r\n", b_reply[0])
    );
    // B's mapping was a singleton: a second response goes nowhere.
    node.exchange(c, &format!("PUB {} 3\r\nres\r\n", c_reply[0]));
    assert_eq!(node.exchange(a, ""), "PONG\r\n");
}

#[test]
fn chained_imports_map_subjects_at_each_hop() {
    let mut node = Node::new(
        r#"
accounts {
  A: { users: [ {user: a, password: a} ], imports: [ {service: {account: B, subject: "b.q.*"}, to: "a.q.*"} ] }
  B: { users: [ {user: b, password: b} ], exports: [ {service: "b.q.*"} ], imports: [ {service: {account: C, subject: "c.>"}, to: "b.>"} ] }
  C: { users: [ {user: c, password: c} ], exports: [ {service: "c.>", response_type: stream} ] }
}
"#,
    );
    let (a, b, c) = (
        login(&mut node, "a"),
        login(&mut node, "b"),
        login(&mut node, "c"),
    );
    node.exchange(a, "SUB _INBOX.a 1\r\n");
    node.exchange(b, "SUB b.> 1\r\n");
    node.exchange(c, "SUB c.> 1\r\n");
    node.exchange(a, "PUB a.q.7 _INBOX.a 2\r\nhi\r\n");
    let at_b = node.exchange(b, "");
    assert!(at_b.starts_with("MSG b.q.7 1 _R_."), "{at_b}");
    let at_c = node.exchange(c, "");
    assert!(at_c.starts_with("MSG c.q.7 1 _R_."), "{at_c}");
    let reply = &replies(&at_c)[0];
    // C streams responses, but B's export is a singleton: A gets one.
    node.exchange(
        c,
        &format!("PUB {reply} 2\r\nr1\r\nPUB {reply} 2\r\nr2\r\n"),
    );
    assert_eq!(node.exchange(a, ""), "MSG _INBOX.a 1 2\r\nr1\r\nPONG\r\n");
}

#[test]
fn streams_are_not_re_exported_and_requests_do_not_feed_stream_exports() {
    let mut node = Node::new(CHAIN);
    let (a, b, c, d) = (
        login(&mut node, "a"),
        login(&mut node, "b"),
        login(&mut node, "c"),
        login(&mut node, "d"),
    );
    node.exchange(b, "SUB s 1\r\n");
    node.exchange(d, "SUB s 1\r\nSUB q 2\r\nSUB _R_.> 3\r\n");
    node.exchange(c, "SUB q 1\r\nPUB s 6\r\nstream\r\n");
    assert_eq!(node.exchange(b, ""), "MSG s 1 6\r\nstream\r\nPONG\r\n");
    node.exchange(a, "PUB q 5\r\nplain\r\n");
    assert_eq!(
        node.exchange(c, ""),
        "MSG q 1 5\r\nplain\r\nPONG\r\n",
        "plain publishes cross the chain too"
    );
    // D imports s and q from B: neither C's stream nor A's request reaches it.
    assert_eq!(node.exchange(d, ""), "PONG\r\n");
    // B's own publishes on q do reach D.
    node.exchange(b, "PUB q 1\r\nx\r\n");
    assert_eq!(node.exchange(d, ""), "MSG q 2 1\r\nx\r\nPONG\r\n");
}

#[test]
fn a_chain_without_responders_answers_503() {
    let mut node = Node::new(CHAIN);
    let a = login_with_headers(&mut node, "a");
    assert_eq!(
        node.exchange(a, "SUB _INBOX.y 1\r\nPUB q _INBOX.y 0\r\n\r\n"),
        "HMSG _INBOX.y 1 33 33\r\nNATS/1.0 503\r\nNats-Subject: q\r\n\r\n\r\nPONG\r\n"
    );
}

#[test]
fn a_self_import_delivers_twice_and_does_not_loop() {
    let mut node = Node::new(
        r#"accounts { A: { users: [ {user: a, password: a} ], exports: [ {service: "self"} ], imports: [ {service: {account: A, subject: "self"}} ] } }"#,
    );
    let a = login(&mut node, "a");
    node.exchange(a, "SUB self 1\r\n");
    let got = node.exchange(a, "PUB self rep 2\r\nme\r\n");
    // nats-server 2.15.1: once as published, once through the import.
    let lines: Vec<&str> = got.lines().filter(|l| l.starts_with("MSG")).collect();
    assert_eq!(lines.len(), 2, "{got}");
    assert_eq!(lines[0], "MSG self 1 rep 2");
    assert!(lines[1].starts_with("MSG self 1 _R_."), "{got}");
}

/// Accounts `N0` … `N{n-1}`, each importing `q` from the next.
fn long_chain(n: usize) -> String {
    let mut text = String::from("accounts {\n");
    for i in 0..n {
        let import = if i + 1 < n {
            format!(
                r#", imports: [ {{service: {{account: N{}, subject: "q"}}}} ]"#,
                i + 1
            )
        } else {
            String::new()
        };
        text += &format!("  N{i}: {{ users: [ {{user: u{i}, password: u{i}}} ], exports: [ {{service: \"q\"}} ]{import} }}\n");
    }
    text + "}\n"
}

#[test]
fn chains_are_bounded() {
    let max = 32; // natrix's SERVICE_IMPORT_HOPS_MAX
    let mut node = Node::new(&long_chain(max + 2));
    let first = login(&mut node, "u0");
    let last_reached = login(&mut node, &format!("u{max}"));
    let beyond = login(&mut node, &format!("u{}", max + 1));
    node.exchange(last_reached, "SUB q 1\r\n");
    node.exchange(beyond, "SUB q 1\r\n");
    node.exchange(first, "PUB q 1\r\nx\r\n");
    assert_eq!(
        node.exchange(last_reached, ""),
        "MSG q 1 1\r\nx\r\nPONG\r\n",
        "{max} hops are taken"
    );
    assert_eq!(
        node.exchange(beyond, ""),
        "PONG\r\n",
        "hop {} is not",
        max + 1
    );
}

fn config_errors(text: &str) -> String {
    let tree = parse_str(text, "acc.conf", &MemorySource::default()).unwrap();
    let mut opts = ServerOptions::default();
    apply_config(&tree, &mut opts, false)
        .expect_err("config must be refused")
        .to_string()
}

fn config_is_valid(text: &str) {
    let tree = parse_str(text, "acc.conf", &MemorySource::default()).unwrap();
    let mut opts = ServerOptions::default();
    if let Err(e) = apply_config(&tree, &mut opts, true) {
        panic!("{e}");
    }
}

#[test]
fn service_import_cycles_are_config_errors() {
    let two = config_errors(
        r#"port: -1
accounts {
  A: { exports: [ {service: "q"} ], imports: [ {service: {account: B, subject: "q"}} ] }
  B: { exports: [ {service: "q"} ], imports: [ {service: {account: A, subject: "q"}} ] }
}
"#,
    );
    assert_eq!(
        two,
        r#"acc.conf:2:1: Error adding service import "q": import forms a cycle"#
    );
    let three = config_errors(
        r#"accounts {
  A: { exports: [ {service: "q"} ], imports: [ {service: {account: B, subject: "q"}} ] }
  B: { exports: [ {service: "q"} ], imports: [ {service: {account: C, subject: "q"}} ] }
  C: { exports: [ {service: "q"} ], imports: [ {service: {account: A, subject: "q"}} ] }
}
"#,
    );
    assert_eq!(
        three,
        r#"acc.conf:1:0: Error adding service import "q": import forms a cycle"#
    );
    let wildcards = config_errors(
        r#"accounts {
  A: { exports: [ {service: "x.>"} ], imports: [ {service: {account: B, subject: "x.>"}} ] }
  B: { exports: [ {service: "x.>"} ], imports: [ {service: {account: A, subject: "x.a"}} ] }
}
"#,
    );
    assert_eq!(
        wildcards,
        r#"acc.conf:1:0: Error adding service import "x.a": import forms a cycle"#
    );
    let renamed = config_errors(
        r#"accounts {
  A: { exports: [ {service: "q"} ], imports: [ {service: {account: B, subject: "r"}, to: "q"} ] }
  B: { exports: [ {service: "r"} ], imports: [ {service: {account: A, subject: "q"}, to: "r"} ] }
}
"#,
    );
    assert_eq!(
        renamed,
        r#"acc.conf:1:0: Error adding service import "q": import forms a cycle"#
    );
}

#[test]
fn imports_that_do_not_loop_are_accepted() {
    // Different subjects each way, a self-import, and a renaming chain.
    config_is_valid(
        r#"accounts {
  A: { exports: [ {service: "q"}, {service: "self"} ], imports: [ {service: {account: B, subject: "r"}}, {service: {account: A, subject: "self"}} ] }
  B: { exports: [ {service: "r"} ], imports: [ {service: {account: A, subject: "q"}} ] }
  C: { exports: [ {service: "c"} ] }
  D: { exports: [ {service: "d"} ], imports: [ {service: {account: C, subject: "c"}, to: "d"} ] }
  E: { imports: [ {service: {account: D, subject: "d"}} ] }
}
"#,
    );
}

#[test]
fn stream_import_cycles_are_config_errors() {
    let errors = config_errors(
        r#"accounts {
  A: { exports: [ {stream: "s"} ], imports: [ {stream: {account: B, subject: "s"}} ] }
  B: { exports: [ {stream: "s"} ], imports: [ {stream: {account: A, subject: "s"}} ] }
}
"#,
    );
    assert_eq!(
        errors,
        r#"acc.conf:1:0: Error adding stream import "s": import forms a cycle"#
    );
}

#[test]
fn export_and_import_errors_in_nats_server_order() {
    let errors = config_errors(
        r#"accounts {
  A: { exports: [ {service: "q"} ], imports: [ {service: {account: B, subject: "q"}}, {stream: {account: Z, subject: "s"}} ] }
  B: { exports: [ {service: "q"}, {stream: "x", accounts: [W]} ], imports: [ {service: {account: A, subject: "q"}}, {stream: {account: A, subject: "nope"}} ] }
}
"#,
    );
    // Stream exports, service exports, stream imports, service imports.
    assert_eq!(
        errors,
        r#"acc.conf:1:0: "W" account not defined for stream export
acc.conf:1:0: "Z" account not defined for stream import
acc.conf:1:0: Error adding stream import "nope": stream import not authorized
acc.conf:1:0: Error adding service import "q": import forms a cycle"#
    );
}

#[test]
fn import_entry_errors_match_nats_server() {
    let cases = [
        (
            r#"accounts {
  A: { exports: [ {stream: "s"} ] }
  B: { imports: [ {stream: {account: A, subject: "s"}, prefix: "p.*"} ] }
}"#,
            r#"acc.conf:1:0: Error adding stream import "s": stream import prefix can not contain wildcard tokens"#,
        ),
        (
            r#"accounts {
  A: { exports: [ {stream: "s"} ] }
  B: { imports: [ {stream: {account: A, subject: "s"}}, {stream: {account: A, subject: "s"}, to: "t"} ] }
}"#,
            r#"acc.conf:1:0: Error adding stream import "s": stream import already exists"#,
        ),
        (
            r#"accounts {
  A: { exports: [ {stream: "s"} ] }
  B: { imports: [ {stream: {account: A}} ] }
}"#,
            "acc.conf:3:20: Expect an account name and a subject",
        ),
        (
            r#"accounts {
  A: { exports: [ {stream: ">"} ] }
  B: { imports: [ {stream: {account: A, subject: "s"}, prefix: "p", to: "t"} ] }
}"#,
            "acc.conf:3:69: Stream import can not have a 'prefix' and a 'to' property",
        ),
        (
            r#"accounts {
  A: { exports: [ {service: ">"} ] }
  B: { imports: [ {service: {account: A, subject: "q..a"}} ] }
}"#,
            r#"acc.conf:1:0: Error adding service import "q..a": sublist: invalid subject"#,
        ),
        (
            r#"accounts {
  A: { exports: [ {service: "q", accounts: [C]} ] }
  B: { imports: [ {service: {account: A, subject: "q"}} ] }
  C: {}
}"#,
            r#"acc.conf:1:0: Error adding service import "q": service import not authorized"#,
        ),
        (
            r#"accounts {
  A: { exports: [ {stream: "q"} ] }
  B: { imports: [ {service: {account: A, subject: "q"}} ] }
}"#,
            r#"acc.conf:1:0: Error adding service import "q": service import not authorized"#,
        ),
    ];
    for (config, expected) in cases {
        assert_eq!(config_errors(config), expected, "{config}");
    }
}

#[test]
fn a_duplicate_service_import_names_the_entry() {
    let errors = config_errors(
        r#"accounts {
  A: { exports: [ {service: "q"} ] }
  B: { imports: [ {service: {account: A, subject: "q"}}, {service: {account: A, subject: "q"}} ] }
}"#,
    );
    // nats-server points at the entry's closing brace (3:95); natrix at its opening one.
    assert_eq!(
        errors,
        r#"acc.conf:3:58: Duplicate service import subject "q", previously used in import for account "A", subject "q""#
    );
}

// The update keeps the helper compiling when AccountConfig gains fields.
#[allow(clippy::needless_update)]
fn account(name: &str, exports: Vec<Export>, imports: Vec<Import>) -> AccountConfig {
    AccountConfig {
        name: name.to_owned(),
        exports,
        imports,
        ..AccountConfig::default()
    }
}

fn service_export(subject: &str) -> Export {
    Export {
        kind: ImportKind::Service,
        subject: subject.to_owned(),
        accounts: Vec::new(),
        response_type: ResponseType::Singleton,
        response_threshold: std::time::Duration::from_secs(120),
    }
}

fn service_import(account: &str, subject: &str) -> Import {
    Import {
        kind: ImportKind::Service,
        account: account.to_owned(),
        subject: subject.to_owned(),
        to: None,
        prefix: None,
    }
}

#[test]
fn the_check_keeps_the_earlier_import_of_a_cycle() {
    // What JWT accounts go through: the refused import is left out.
    let configs = vec![
        account(
            "A",
            vec![service_export("q")],
            vec![service_import("B", "q")],
        ),
        account(
            "B",
            vec![service_export("q")],
            vec![service_import("A", "q")],
        ),
    ];
    let check = check_imports(&configs);
    assert_eq!(check.accepted.len(), 1);
    assert_eq!(
        (check.accepted[0].importer, check.accepted[0].exporter),
        (0, 1)
    );
    assert_eq!(
        check.errors,
        vec![ImportError::Refused {
            importer: "B".into(),
            kind: "service",
            subject: "q".into(),
            reason: Refusal::Cycle
        }]
    );
    assert_eq!(
        check.errors[0].jwt_log_line().as_deref(),
        Some("Error adding service import to account [B]: import forms a cycle")
    );
}

#[test]
fn stream_imports_may_name_wildcards_by_number() {
    let mut node = Node::new(
        r#"accounts {
  A: { users: [ {user: a, password: a} ], exports: [ {stream: "s.*.*"}, {stream: "w.*.>"} ] }
  B: { users: [ {user: b, password: b} ], imports: [ {stream: {account: A, subject: "s.*.*"}, to: "t.$2.{{wildcard(1)}}"}, {stream: {account: A, subject: "w.*.>"}, to: "v.$1.>"} ] }
}"#,
    );
    let (a, b) = (login(&mut node, "a"), login(&mut node, "b"));
    node.exchange(b, "SUB > 1\r\n");
    node.exchange(a, "PUB s.x.y 1\r\n1\r\nPUB w.k.l.m 1\r\n2\r\n");
    // What nats-server 2.15.1 delivers for the same config.
    assert_eq!(
        node.exchange(b, ""),
        "MSG t.y.x 1 1\r\n1\r\nMSG v.k.l.m 1 1\r\n2\r\nPONG\r\n"
    );
}

#[test]
fn import_mappings_that_cannot_be_reversed_are_config_errors() {
    let config = |kind: &str, subject: &str, to: &str| {
        format!(
            "accounts {{\n  A: {{ exports: [ {{stream: \">\"}}, {{service: \">\"}} ] }}\n  B: {{ imports: [ {{{kind}: {{account: A, subject: \"{subject}\"}}, to: \"{to}\"}} ] }}\n}}\n"
        )
    };
    let prefix = "acc.conf:1:0: Error adding";
    let cases = [
        (
            config("stream", "s.*", "t.*.*"),
            r#"stream import "s.*": failed to create mapping transform for stream import subject from "s.*" to "t.*.*": invalid mapping destination: wildcard index out of range in $2: [2]"#,
        ),
        (
            config("stream", "s.*.*", "t.*"),
            r#"stream import "s.*.*": failed to create mapping transform for stream import subject from "s.*.*" to "t.*": invalid mapping destination: not using all of the token wildcard(s) in t.$1"#,
        ),
        (
            config("stream", "s.>", "t.*"),
            r#"stream import "s.>": failed to create mapping transform for stream import subject from "s.>" to "t.*": invalid subject"#,
        ),
        (
            config("service", "q.*", "r"),
            r#"service import "q.*": failed to create mapping transform for service import subject from "r" to "q.*": invalid mapping destination: not using all of the token wildcard(s) in r"#,
        ),
        (
            config("service", "q.>", "r.*"),
            r#"service import "q.>": failed to create mapping transform for service import subject from "r.*" to "q.>": invalid subject"#,
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            config_errors(&text),
            format!("{prefix} {expected}"),
            "{text}"
        );
    }
    for (kind, subject, to) in [
        ("stream", "s.*.*", "t.$2.$1"),
        ("stream", "s.x", "t.*"),
        ("service", "q.*", "r.*"),
    ] {
        config_is_valid(&config(kind, subject, to));
    }
}

#[test]
fn forking_chains_are_bounded_in_all() {
    // Each account imports q from both accounts of the next layer: 2^k paths
    // reach layer k, 4094 crossings in all without a bound.
    let layers = 12;
    let mut text = String::from("accounts {\n");
    for layer in 0..layers {
        for side in ["x", "y"] {
            let imports = if layer + 1 < layers {
                format!(
                    r#", imports: [ {{service: {{account: L{0}x, subject: "q"}}}}, {{service: {{account: L{0}y, subject: "q"}}}} ]"#,
                    layer + 1
                )
            } else {
                String::new()
            };
            text += &format!(
                "  L{layer}{side}: {{ users: [ {{user: u{layer}{side}, password: u{layer}{side}}} ], exports: [ {{service: \"q\"}} ]{imports} }}\n"
            );
        }
    }
    text += "}\n";
    let mut node = Node::new(&text);
    let mut subscribers = Vec::new();
    for layer in 1..layers {
        for side in ["x", "y"] {
            let conn = login(&mut node, &format!("u{layer}{side}"));
            node.exchange(conn, "SUB q 1\r\n");
            subscribers.push(conn);
        }
    }
    let publisher = login(&mut node, "u0x");
    node.exchange(publisher, "PUB q 1\r\nx\r\n");
    let delivered: usize = subscribers
        .iter()
        .map(|&conn| node.exchange(conn, "").matches("MSG q 1 1").count())
        .sum();
    assert_eq!(delivered, 1024, "natrix's SERVICE_IMPORT_CROSSINGS_MAX");
}

#[test]
fn requests_say_who_asked_at_every_hop() {
    let mut node = Node::new(CHAIN);
    let a = login_with_headers(&mut node, "a");
    let (b, c) = (
        login_with_headers(&mut node, "b"),
        login_with_headers(&mut node, "c"),
    );
    node.exchange(b, "SUB q 1\r\n");
    node.exchange(c, "SUB q 1\r\n");
    // The publisher's own Nats-Request-Info is replaced; its other headers stay.
    let h = "NATS/1.0\r\nX-Mine: 1\r\nNats-Request-Info: forged\r\n\r\n";
    node.exchange(
        a,
        &format!("HPUB q _INBOX.a {} {}\r\n{h}hi\r\n", h.len(), h.len() + 2),
    );
    // nats-server 2.15.1 sends, for the same config and publish:
    //   B: NATS/1.0 / X-Mine: 1 / Nats-Request-Info: {"acc":"A","rtt":644307}
    //   C: NATS/1.0 / X-Mine: 1 / Nats-Request-Info: {"acc":"A","svc":"B","rtt":644307}
    let at_b = node.exchange(b, "");
    let at_c = node.exchange(c, "");
    for (got, info) in [
        (&at_b, r#"{"acc":"A","rtt":"#),
        (&at_c, r#"{"acc":"A","svc":"B","rtt":"#),
    ] {
        let headers = format!("\r\nNATS/1.0\r\nX-Mine: 1\r\nNats-Request-Info: {info}");
        assert!(
            got.starts_with("HMSG q 1 _R_.") && got.contains(&headers),
            "{got}"
        );
        assert!(
            got.ends_with("}\r\n\r\nhi\r\nPONG\r\n") && !got.contains("forged"),
            "{got}"
        );
    }
    // A client without headers gets the request alone.
    let plain = login(&mut node, "c");
    node.exchange(plain, "SUB q 2\r\n");
    node.exchange(a, "PUB q 2\r\nhi\r\n");
    assert!(node.exchange(plain, "").starts_with("MSG q 2 2\r\nhi\r\n"));
}
