//! Property: messages never cross accounts except through imports. Random
//! clients in random accounts subscribe and publish random subjects; what
//! each client receives must equal what a model of accounts, one stream
//! import (with a prefix) and one service import says.

mod auth_support;

use std::collections::BTreeMap;

use auth_support::Node;
use natrix_core::subject::subject_matches;
use proptest::prelude::*;

const CONFIG: &str = r#"
accounts {
  A: {
    users: [ {user: a, password: a} ]
    imports: [
      {stream: {account: B, subject: "s.>"}, prefix: "imp"}
      {service: {account: B, subject: "svc.*"}}
    ]
  }
  B: { users: [ {user: b, password: b} ], exports: [ {stream: "s.>"}, {service: "svc.*"} ] }
  C: { users: [ {user: c, password: c} ] }
}
"#;

const ACCOUNTS: [&str; 3] = ["a", "b", "c"];
const LITERALS: [&str; 5] = ["s", "imp", "svc", "x", "y"];

fn literal_subject() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(&LITERALS[..]), 1..4).prop_map(|t| t.join("."))
}

fn pattern() -> impl Strategy<Value = String> {
    let token = prop::sample::select(&["s", "imp", "svc", "x", "*"][..]);
    (prop::collection::vec(token, 1..4), any::<bool>()).prop_map(|(t, full)| {
        let mut s = t.join(".");
        if full {
            s.push_str(".>");
        }
        s
    })
}

/// Which (account index, subject) deliveries a publish in `account` makes.
fn model_targets(account: usize, subject: &str) -> Vec<(usize, String)> {
    let mut out = vec![(account, subject.to_owned())];
    if account == 1 && subject_matches(b"s.>", subject.as_bytes()) {
        out.push((0, format!("imp.{subject}")));
    }
    if account == 0 && subject_matches(b"svc.*", subject.as_bytes()) {
        out.push((1, subject.to_owned()));
    }
    out
}

fn received(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = text
        .split("\r\n")
        .filter(|l| l.starts_with("MSG "))
        .map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            (parts[2].to_owned(), parts[1].to_owned())
        })
        .collect();
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn nothing_crosses_accounts_except_through_imports(
        clients in prop::collection::vec((0usize..3, prop::collection::vec(pattern(), 0..4)), 1..6),
        publishes in prop::collection::vec((any::<prop::sample::Index>(), literal_subject()), 0..20),
    ) {
        let mut node = Node::new(CONFIG);
        let mut conns = Vec::new();
        for (account, patterns) in &clients {
            let user = ACCOUNTS[*account];
            let conn = node.client(&format!(r#"{{"user":"{user}","pass":"{user}","verbose":false}}"#));
            let subs: String = patterns.iter().enumerate().map(|(i, p)| format!("SUB {p} {i}\r\n")).collect();
            prop_assert_eq!(node.exchange(conn, &subs), "PONG\r\n");
            conns.push(conn);
        }
        let mut expected: BTreeMap<usize, Vec<(String, String)>> = BTreeMap::new();
        for (who, subject) in &publishes {
            let from = who.index(conns.len());
            node.send(conns[from], &format!("PUB {subject} 1\r\nm\r\n"));
            for (account, delivered) in model_targets(clients[from].0, subject) {
                for (c, (acc, patterns)) in clients.iter().enumerate() {
                    if *acc != account {
                        continue;
                    }
                    for (sid, p) in patterns.iter().enumerate() {
                        if subject_matches(p.as_bytes(), delivered.as_bytes()) {
                            expected.entry(c).or_default().push((sid.to_string(), delivered.clone()));
                        }
                    }
                }
            }
        }
        for (c, conn) in conns.iter().enumerate() {
            let got = received(&node.exchange(*conn, ""));
            let mut want = expected.remove(&c).unwrap_or_default();
            want.sort();
            prop_assert_eq!(got, want, "client {} in account {}", c, ACCOUNTS[clients[c].0]);
        }
    }
}
