//! `/accountz` and the monitoring requests answered over NATS
//! (`$SYS.REQ.ACCOUNT.<acc>.CONNZ` and friends), in nats-server 2.15's
//! shapes, and the isolation of one account's answers from another's.

mod auth_support;

use auth_support::{jwt, Node, WALL_AT_START};
use natrix_core::monitor::{self, ProcessStats};
use natrix_core::ConnId;
use nkeys::KeyPair;
use serde_json::{json, Value};

const CONFIG: &str = r#"
accounts {
  A {
    users = [ {user: a, password: a} ]
    exports = [
      {service: "a.svc", response_type: stream}
      {stream: "a.st.>"}
      {service: "a.priv", accounts: [B]}
    ]
  }
  B {
    users = [ {user: b, password: b} ]
    imports = [
      {stream: {account: A, subject: "a.st.>"}, prefix: "fromA"}
      {service: {account: A, subject: "a.svc"}, to: "svc.a"}
    ]
  }
  C { users = [ {user: c, password: c} ] }
  SYS { users = [ {user: sys, password: sys} ] }
}
system_account: SYS
"#;

fn login(node: &mut Node, user: &str, name: &str) -> ConnId {
    node.client(&format!(
        r#"{{"user":"{user}","pass":"{user}","name":"{name}","verbose":false,"headers":true,"no_responders":true}}"#
    ))
}

/// Everything a request on `subject` got back on a fresh inbox: each reply's
/// headers (if any) and payload.
fn ask_all(
    node: &mut Node,
    conn: ConnId,
    subject: &str,
    payload: &str,
) -> Vec<(Option<String>, String)> {
    let wire = format!(
        "SUB _INBOX.q 77\r\nPUB {subject} _INBOX.q {}\r\n{payload}\r\nUNSUB 77\r\n",
        payload.len()
    );
    let out = node.exchange(conn, &wire);
    messages(&out)
}

/// The one JSON reply to a request, or `None` when nothing (or a status) came back.
fn ask(node: &mut Node, conn: ConnId, subject: &str, payload: &str) -> Option<Value> {
    let replies = ask_all(node, conn, subject, payload);
    assert!(replies.len() <= 1, "{subject}: {replies:?}");
    let (headers, body) = replies.into_iter().next()?;
    if headers.is_some() {
        return None;
    }
    Some(serde_json::from_str(&body).unwrap_or_else(|e| panic!("{subject}: {e}: {body}")))
}

/// Parses MSG/HMSG frames out of what a client received.
fn messages(mut out: &str) -> Vec<(Option<String>, String)> {
    let mut found = Vec::new();
    while let Some(start) = out.find("MSG ") {
        let hmsg = start > 0 && out.as_bytes()[start - 1] == b'H';
        let rest = &out[start..];
        let line_end = rest.find("\r\n").unwrap();
        let fields: Vec<&str> = rest[..line_end].split(' ').collect();
        let total: usize = fields.last().unwrap().parse().unwrap();
        let header_len: usize = if hmsg {
            fields[fields.len() - 2].parse().unwrap()
        } else {
            0
        };
        let body = &rest[line_end + 2..line_end + 2 + total];
        let headers = hmsg.then(|| body[..header_len].to_owned());
        found.push((headers, body[header_len..].to_owned()));
        out = &rest[line_end + 2 + total..];
    }
    found
}

fn http(node: &mut Node, path: &str, query: &str) -> monitor::Response {
    monitor::handle(
        &mut node.server,
        node.now,
        WALL_AT_START,
        &ProcessStats::default(),
        path,
        query,
    )
}

fn http_json(node: &mut Node, path: &str, query: &str) -> Value {
    let r = http(node, path, query);
    assert_eq!(r.status, 200, "{path}?{query}: {}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn names(connz: &Value) -> Vec<&str> {
    connz["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap_or(""))
        .collect()
}

#[test]
fn accountz_lists_accounts_and_describes_one() {
    let mut node = Node::new(CONFIG);
    let a = login(&mut node, "a", "a1");
    node.exchange(a, "SUB a.x 1\r\n");

    let list = http_json(&mut node, "/accountz", "");
    assert_eq!(
        keys(&list),
        ["accounts", "now", "server_id", "system_account"]
    );
    assert_eq!(list["system_account"], "SYS");
    assert_eq!(list["accounts"], json!(["$G", "A", "B", "C", "SYS"]));

    let doc = http_json(&mut node, "/accountz", "acc=A");
    assert_eq!(
        keys(&doc),
        ["account_detail", "now", "server_id", "system_account"]
    );
    let a_info = &doc["account_detail"];
    assert_eq!(a_info["account_name"], "A");
    assert_eq!(a_info["update_time"], WALL_AT_START.to_rfc3339());
    assert!(a_info.get("is_system").is_none(), "omitted unless true");
    assert_eq!(
        (a_info["expired"].as_bool(), a_info["complete"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(a_info["jetstream_enabled"], false);
    assert_eq!(
        (
            a_info["client_connections"].as_u64(),
            a_info["subscriptions"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(a_info["leafnode_connections"], 0);
    assert_eq!(a_info["name_tag"], "A");
    assert_eq!(
        a_info["exports"],
        json!([
            {"subject": "a.svc", "type": "service", "response_type": "Streamed"},
            {"subject": "a.priv", "type": "service", "response_type": "Singleton", "approved_accounts": ["B"]},
            {"subject": "a.st.>", "type": "stream"},
        ])
    );
    let imports = a_info["imports"].as_array().unwrap();
    assert_eq!(
        imports[0],
        json!({"subject": "$SYS.REQ.ACCOUNT.A.CONNZ", "account": "SYS", "to": "$SYS.REQ.ACCOUNT.PING.CONNZ",
               "local_subject": "$SYS.REQ.ACCOUNT.PING.CONNZ", "type": "service",
               "invalid": false, "share": false, "tracking": false})
    );
    assert_eq!(
        imports.last().unwrap()["local_subject"],
        "$SYS.REQ.USER.INFO"
    );
    assert_eq!(imports.last().unwrap()["share"], true);
    assert_eq!(a_info["sublist_stats"]["num_subscriptions"], 1);
    assert!(a_info.get("jwt").is_none() && a_info.get("responses").is_none());

    let b_imports = http_json(&mut node, "/accountz", "acc=B")["account_detail"]["imports"].clone();
    assert_eq!(
        b_imports[0],
        json!({"subject": "a.st.>", "account": "A", "local_subject": "fromA.a.st.>", "type": "stream",
               "invalid": false, "share": false, "tracking": false})
    );
    assert_eq!(
        (
            b_imports[1]["subject"].as_str(),
            b_imports[1]["to"].as_str()
        ),
        (Some("a.svc"), Some("svc.a"))
    );

    let sys = http_json(&mut node, "/accountz", "acc=SYS")["account_detail"].clone();
    assert_eq!(sys["is_system"], true);
    assert_eq!(
        sys["exports"][0],
        json!({"subject": "$SYS.REQ.ACCOUNT.*.CONNZ", "type": "service", "response_type": "Streamed"})
    );
    assert_eq!(
        sys["imports"],
        json!([{"subject": "$SYS.REQ.USER.SYS.INFO", "account": "SYS",
        "to": "$SYS.REQ.USER.INFO", "local_subject": "$SYS.REQ.USER.INFO", "type": "service",
        "invalid": false, "share": true, "tracking": false}])
    );

    let missing = http(&mut node, "/accountz", "acc=NOPE");
    assert_eq!(
        (missing.status, missing.content_type),
        (400, "text/plain; charset=utf-8")
    );
    assert_eq!(missing.body, "Account NOPE does not exist");
    assert_eq!(
        http_json(&mut node, "/accountz", "acc=")["accounts"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let varz = http_json(&mut node, "/varz", "");
    assert_eq!(varz["http_req_stats"]["/accountz"], 6);
    assert_eq!(varz["version"], "2.15.1");
    assert_eq!(varz["natrix_version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn accountz_shows_outstanding_responses() {
    let mut node = Node::new(CONFIG);
    let a = login(&mut node, "a", "a1");
    let b = login(&mut node, "b", "b1");
    node.exchange(a, "SUB a.svc 1\r\n");
    node.exchange(b, "SUB inbox.b 1\r\nPUB svc.a inbox.b 2\r\nhi\r\n");
    let made = node.take(a);
    let info = &http_json(&mut node, "/accountz", "acc=A")["account_detail"];
    let responses = info["responses"].as_object().unwrap();
    assert_eq!(responses.len(), 1, "{info}");
    let (reply, route) = responses.iter().next().unwrap();
    assert!(
        reply.starts_with("_R_.") && made.contains(reply.as_str()),
        "{reply} {made}"
    );
    assert_eq!(
        (route["subject"].as_str(), route["account"].as_str()),
        (Some("inbox.b"), Some("B"))
    );
    assert_eq!(route["local_subject"].as_str(), Some(reply.as_str()));
}

#[test]
fn accountz_in_operator_mode_shows_the_jwt() {
    let op = KeyPair::new_operator();
    let (sys, acc) = (KeyPair::new_account(), KeyPair::new_account());
    let revoked = KeyPair::new_user();
    let acc_jwt = jwt::encode(
        &op,
        &acc.public_key(),
        "AccA",
        json!({"type": "account", "version": 2, "tags": ["team:x"],
               "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                          "wildcards": true, "conn": -1, "leaf": -1},
               "exports": [{"subject": "a.svc", "type": "service", "response_type": "Stream"},
                           {"subject": "a.st.>", "type": "stream", "token_req": true}],
               "revocations": {revoked.public_key(): 1_600_000_000}}),
        json!({"exp": 4_000_000_000i64}),
    );
    let config = format!(
        "operator: {}\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{\n {}: {}\n {}: {}\n}}\n",
        jwt::operator(&op, &[]),
        sys.public_key(),
        sys.public_key(),
        jwt::account(&op, &sys, json!({})),
        acc.public_key(),
        acc_jwt,
    );
    let mut node = Node::new(&config);
    let list = http_json(&mut node, "/accountz", "");
    assert_eq!(list["system_account"], sys.public_key());
    let detail =
        &http_json(&mut node, "/accountz", &format!("acc={}", acc.public_key()))["account_detail"];
    assert_eq!(detail["jwt"], acc_jwt);
    assert_eq!(detail["issuer_key"], op.public_key());
    assert_eq!(detail["name_tag"], "AccA");
    assert_eq!(detail["tags"], json!(["team:x"]));
    assert_eq!(detail["expired"], false);
    assert_eq!(detail["decoded_jwt"]["sub"], acc.public_key());
    assert_eq!(detail["decoded_jwt"]["nats"]["authorization"], json!({}));
    assert_eq!(
        detail["revoked_user"],
        json!({revoked.public_key(): "2020-09-13T12:26:40Z"})
    );
    assert_eq!(
        detail["exports"],
        json!([{"subject": "a.svc", "type": "service", "response_type": "Streamed"},
               {"subject": "a.st.>", "type": "stream", "token_req": true}])
    );
    let user = KeyPair::new_user();
    let user_jwt = jwt::user(&acc, &acc, &user, json!({}), json!({}));
    let (conn, info) = node.connect();
    let sig = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        user.sign(auth_support::nonce_of(&info).as_bytes()).unwrap(),
    );
    node.send(
        conn,
        &format!("CONNECT {{\"jwt\":\"{user_jwt}\",\"sig\":\"{sig}\",\"verbose\":false}}\r\n"),
    );
    let me = ask(&mut node, conn, "$SYS.REQ.USER.INFO", "").unwrap();
    assert_eq!(
        me["data"],
        json!({"user": user.public_key(), "account": acc.public_key(), "account_name": "AccA", "user_name": "U"})
    );
    let connz = ask(
        &mut node,
        conn,
        "$SYS.REQ.ACCOUNT.PING.CONNZ",
        r#"{"auth":true}"#,
    )
    .unwrap();
    assert_eq!(
        connz["data"]["connections"][0]["authorized_user"],
        user.public_key()
    );
    let sys_detail =
        &http_json(&mut node, "/accountz", &format!("acc={}", sys.public_key()))["account_detail"];
    assert_eq!(
        (
            sys_detail["is_system"].as_bool(),
            sys_detail["name_tag"].as_str()
        ),
        (Some(true), Some("ACC"))
    );
}

#[test]
fn system_user_asks_for_an_accounts_connz() {
    let mut node = Node::new(CONFIG);
    let a1 = login(&mut node, "a", "a1");
    login(&mut node, "a", "a2");
    login(&mut node, "b", "b1");
    let s = login(&mut node, "sys", "s1");
    node.exchange(a1, "SUB a.x 1\r\n");

    let reply = ask(&mut node, s, "$SYS.REQ.ACCOUNT.A.CONNZ", "").expect("a reply");
    assert_eq!(keys(&reply), ["data", "server"]);
    let server = &reply["server"];
    assert_eq!(
        keys(server),
        [
            "flags",
            "host",
            "id",
            "jetstream",
            "name",
            "seq",
            "time",
            "ver"
        ]
    );
    assert_eq!(server["id"], node.server.server_id());
    let data = &reply["data"];
    assert_eq!(
        keys(data),
        [
            "connections",
            "limit",
            "now",
            "num_connections",
            "offset",
            "server_id",
            "total"
        ]
    );
    assert_eq!(names(data), ["a1", "a2"]);
    assert_eq!(data["total"], 2);
    assert_eq!(data["connections"][0]["subscriptions"], 1);
    // Users and accounts show only when asked for, as in nats-server.
    assert!(data["connections"][0].get("authorized_user").is_none());
    assert!(data["connections"][0].get("account").is_none());
    let auth = ask(&mut node, s, "$SYS.REQ.ACCOUNT.A.CONNZ", r#"{"auth":true}"#).unwrap();
    let first = &auth["data"]["connections"][0];
    assert_eq!(
        (first["authorized_user"].as_str(), first["account"].as_str()),
        (Some("a"), Some("A"))
    );

    // The subject names the account; the body cannot widen it.
    let pinned = ask(&mut node, s, "$SYS.REQ.ACCOUNT.A.CONNZ", r#"{"acc":"B"}"#).unwrap();
    assert_eq!(names(&pinned["data"]), ["a1", "a2"]);
    let paged = ask(
        &mut node,
        s,
        "$SYS.REQ.ACCOUNT.A.CONNZ",
        r#"{"limit":1,"offset":1,"subscriptions":true}"#,
    )
    .unwrap();
    assert_eq!(
        (names(&paged["data"]), paged["data"]["total"].as_u64()),
        (vec!["a2"], Some(2))
    );

    let every = ask(&mut node, s, "$SYS.REQ.SERVER.PING.CONNZ", "").unwrap();
    assert_eq!(names(&every["data"]), ["a1", "a2", "b1", "s1"]);
    let only_b = ask(&mut node, s, "$SYS.REQ.SERVER.PING.CONNZ", r#"{"acc":"B"}"#).unwrap();
    assert_eq!(names(&only_b["data"]), ["b1"]);
    let by_id = format!("$SYS.REQ.SERVER.{}.CONNZ", node.server.server_id());
    assert_eq!(
        names(&ask(&mut node, s, &by_id, "").unwrap()["data"]).len(),
        4
    );
    let seqs: Vec<u64> = [&reply, &pinned, &paged, &every]
        .iter()
        .map(|r| r["server"]["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
}

#[test]
fn an_accounts_connz_never_shows_another_accounts_connections() {
    let mut node = Node::new(CONFIG);
    let mut conns = Vec::new();
    // Interleave the accounts so cids of different accounts alternate.
    for i in 0..12 {
        let user = ["a", "b", "c"][i % 3];
        conns.push((user, login(&mut node, user, &format!("{user}{i}"))));
    }
    let s = login(&mut node, "sys", "s");
    for (user, acc) in [("a", "A"), ("b", "B"), ("c", "C")] {
        let expected: Vec<String> = (0..12)
            .filter(|i| ["a", "b", "c"][i % 3] == user)
            .map(|i| format!("{user}{i}"))
            .collect();
        let by_system = ask(&mut node, s, &format!("$SYS.REQ.ACCOUNT.{acc}.CONNZ"), "").unwrap();
        assert_eq!(
            names(&by_system["data"]),
            expected,
            "{acc} asked by the system account"
        );
        let &(_, own) = conns.iter().find(|(u, _)| *u == user).unwrap();
        for subject in ["$SYS.REQ.ACCOUNT.PING.CONNZ", "$SYS.REQ.SERVER.PING.CONNZ"] {
            for body in ["", r#"{"acc":"A"}"#, r#"{"acc":"SYS"}"#, r#"{"state":2}"#] {
                let own_view = ask(&mut node, own, subject, body).unwrap();
                assert_eq!(
                    names(&own_view["data"]),
                    expected,
                    "{acc} asking {subject} {body}"
                );
            }
        }
        // Naming another account (or itself) directly is not an import: no one answers.
        for other in ["A", "B", "C", "SYS"] {
            let replies = ask_all(
                &mut node,
                own,
                &format!("$SYS.REQ.ACCOUNT.{other}.CONNZ"),
                "",
            );
            assert_eq!(replies.len(), 1);
            assert!(
                replies[0].0.as_deref().unwrap().starts_with("NATS/1.0 503"),
                "{replies:?}"
            );
        }
        assert!(ask(&mut node, own, "$SYS.REQ.SERVER.PING.SUBSZ", "").is_none());
        assert!(ask(&mut node, own, "$SYS.REQ.ACCOUNT.PING.CONNS", "").is_none());
    }
}

#[test]
fn statz_info_conns_subsz_and_server_requests() {
    let mut node = Node::new(CONFIG);
    let a = login(&mut node, "a", "a1");
    let b = login(&mut node, "b", "b1");
    let s = login(&mut node, "sys", "s1");
    node.exchange(a, "SUB a.x 1\r\nSUB a.y q 2\r\n");

    let statz = ask(&mut node, s, "$SYS.REQ.ACCOUNT.A.STATZ", "").unwrap();
    let stat = &statz["data"]["account_statz"];
    assert_eq!(
        (
            stat[0]["acc"].as_str(),
            stat[0]["conns"].as_u64(),
            stat.as_array().unwrap().len()
        ),
        (Some("A"), Some(1), 1)
    );
    assert!(
        ask(&mut node, s, "$SYS.REQ.ACCOUNT.C.STATZ", "").is_none(),
        "no connections, no reply"
    );
    let unused = ask(
        &mut node,
        s,
        "$SYS.REQ.ACCOUNT.C.STATZ",
        r#"{"include_unused":true}"#,
    )
    .unwrap();
    assert_eq!(unused["data"]["account_statz"][0]["conns"], 0);
    let all = ask(&mut node, s, "$SYS.REQ.ACCOUNT.PING.STATZ", "").unwrap();
    let accs: Vec<&str> = all["data"]["account_statz"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["acc"].as_str().unwrap())
        .collect();
    assert_eq!(accs, ["A", "B", "SYS"]);
    let chosen = ask(
        &mut node,
        s,
        "$SYS.REQ.ACCOUNT.PING.STATZ",
        r#"{"accounts":["B","C"]}"#,
    )
    .unwrap();
    assert_eq!(chosen["data"]["account_statz"].as_array().unwrap().len(), 1);
    // An account's own STATZ ignores the accounts it names.
    let own = ask(
        &mut node,
        b,
        "$SYS.REQ.ACCOUNT.PING.STATZ",
        r#"{"accounts":["A"]}"#,
    )
    .unwrap();
    assert_eq!(own["data"]["account_statz"][0]["acc"], "B");

    let info = ask(&mut node, s, "$SYS.REQ.ACCOUNT.A.INFO", "").unwrap();
    assert_eq!(
        (
            info["data"]["account_name"].as_str(),
            info["data"]["client_connections"].as_u64()
        ),
        (Some("A"), Some(1))
    );
    let missing = ask(&mut node, s, "$SYS.REQ.ACCOUNT.NOPE.INFO", "").unwrap();
    assert_eq!(missing["data"], Value::Null);
    assert_eq!(
        missing["error"],
        json!({"code": 500, "description": "Account NOPE does not exist"})
    );

    let conns = ask(&mut node, s, "$SYS.REQ.ACCOUNT.A.CONNS", "").unwrap();
    assert_eq!(
        conns["type"],
        "io.nats.server.advisory.v1.account_connections"
    );
    assert_eq!(conns["id"].as_str().unwrap().len(), 22);
    assert_eq!(
        (conns["acc"].as_str(), conns["conns"].as_u64()),
        (Some("A"), Some(1))
    );
    assert_eq!(conns["server"]["id"], node.server.server_id());
    assert!(ask(&mut node, s, "$SYS.REQ.ACCOUNT.C.CONNS", "").is_none());
    assert!(ask(&mut node, s, "$SYS.REQ.ACCOUNT.A.CONNS", r#"{"acc":"B"}"#).is_none());

    let subsz = ask(&mut node, s, "$SYS.REQ.ACCOUNT.A.SUBSZ", "").unwrap();
    assert_eq!(
        (
            subsz["data"]["num_subscriptions"].as_u64(),
            subsz["data"]["total"].as_u64()
        ),
        (Some(2), Some(2))
    );
    let subjects: Vec<&str> = subsz["data"]["subscriptions_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects.len(), 2);
    assert!(subjects.contains(&"a.x") && subjects.contains(&"a.y"));
    let first = &subsz["data"]["subscriptions_list"][0];
    assert_eq!(
        (first["account"].as_str(), first["account_tag"].as_str()),
        (Some("A"), Some("A"))
    );
    let nobody = ask(&mut node, s, "$SYS.REQ.ACCOUNT.NOPE.SUBSZ", "").unwrap();
    assert!(nobody["data"].get("subscriptions_list").is_none());
    let server_subsz = ask(&mut node, s, "$SYS.REQ.SERVER.PING.SUBSZ", "").unwrap();
    assert!(server_subsz["data"].get("subscriptions_list").is_none());
    assert!(server_subsz["data"]["num_subscriptions"].as_u64().unwrap() >= 3);

    let accountz = ask(&mut node, s, "$SYS.REQ.SERVER.PING.ACCOUNTZ", "").unwrap();
    assert_eq!(
        accountz["data"]["accounts"],
        json!(["$G", "A", "B", "C", "SYS"])
    );
    let one = ask(
        &mut node,
        s,
        "$SYS.REQ.SERVER.PING.ACCOUNTZ",
        r#"{"account":"B"}"#,
    )
    .unwrap();
    assert_eq!(one["data"]["account_detail"]["account_name"], "B");
    let health = ask(&mut node, s, "$SYS.REQ.SERVER.PING.HEALTHZ", "").unwrap();
    assert_eq!(health["data"], json!({"status": "ok", "status_code": 200}));
    let idz = ask(&mut node, s, "$SYS.REQ.SERVER.PING.IDZ", "").unwrap();
    assert_eq!(keys(&idz), ["host", "id", "name"]);

    let user = ask(&mut node, a, "$SYS.REQ.USER.INFO", "").unwrap();
    assert_eq!(
        user["data"],
        json!({"user": "a", "account": "A", "account_name": "A"})
    );
    let sys_user = ask(&mut node, s, "$SYS.REQ.USER.INFO", "").unwrap();
    assert_eq!(sys_user["data"]["account"], "SYS");
}

#[test]
fn bad_options_unknown_accounts_and_filters() {
    let mut node = Node::new(CONFIG);
    let s = login(&mut node, "sys", "s1");
    let bad = ask(&mut node, s, "$SYS.REQ.SERVER.PING.CONNZ", "{bad").unwrap();
    assert_eq!(
        keys(&bad),
        ["error", "server"],
        "no data beside a decode error"
    );
    assert_eq!(bad["error"]["code"], 400);
    let wrong_type = ask(
        &mut node,
        s,
        "$SYS.REQ.SERVER.PING.CONNZ",
        r#"{"state":"closed"}"#,
    )
    .unwrap();
    assert_eq!(wrong_type["error"]["code"], 400);
    let sort = ask(
        &mut node,
        s,
        "$SYS.REQ.SERVER.PING.CONNZ",
        r#"{"sort":"bogus"}"#,
    )
    .unwrap();
    assert_eq!(sort["data"], Value::Null);
    assert_eq!(
        sort["error"],
        json!({"code": 500, "description": "invalid sorting option: bogus"})
    );
    let stop = ask(
        &mut node,
        s,
        "$SYS.REQ.SERVER.PING.CONNZ",
        r#"{"sort":"stop"}"#,
    )
    .unwrap();
    assert_eq!(
        stop["error"]["description"],
        "sort by stop only valid on closed connections"
    );
    let test = ask(
        &mut node,
        s,
        "$SYS.REQ.SERVER.PING.SUBSZ",
        r#"{"test":"a.*"}"#,
    )
    .unwrap();
    assert_eq!(
        test["error"]["description"],
        "invalid test subject, must be valid publish subject: a.*"
    );

    // nats-server answers an unknown account's CONNZ with an empty document without its id.
    let blank = ask(&mut node, s, "$SYS.REQ.ACCOUNT.NOPE.CONNZ", "").unwrap();
    assert_eq!(blank["data"]["server_id"], "");
    assert_eq!(blank["data"]["connections"], Value::Null);
    let ping = ask(&mut node, s, "$SYS.REQ.ACCOUNT.PING.CONNZ", "").unwrap();
    assert_eq!(ping["data"]["total"], 0);

    // Requests for other servers get no answer, and no no-responders status either.
    for body in [
        r#"{"server_name":"elsewhere"}"#,
        r#"{"cluster":"c1"}"#,
        r#"{"tags":["x"]}"#,
        r#"{"domain":"d"}"#,
    ] {
        assert!(
            ask_all(&mut node, s, "$SYS.REQ.SERVER.PING.CONNZ", body).is_empty(),
            "{body}"
        );
    }
    let name = node.server.server_name().to_owned();
    let exact = format!(r#"{{"server_name":"{name}","exact_match":true}}"#);
    assert!(ask(&mut node, s, "$SYS.REQ.SERVER.PING.CONNZ", &exact).is_some());
    let partial = format!(r#"{{"server_name":"{}"}}"#, &name[..5]);
    assert!(ask(&mut node, s, "$SYS.REQ.SERVER.PING.CONNZ", &partial).is_some());
    // A kind no server answers falls through to no responders.
    let unknown = ask_all(&mut node, s, "$SYS.REQ.SERVER.PING.NOPEZ", "");
    assert!(
        unknown[0].0.as_deref().unwrap().starts_with("NATS/1.0 503"),
        "{unknown:?}"
    );
    let varz = ask(&mut node, s, "$SYS.REQ.SERVER.PING.VARZ", "").unwrap();
    assert_eq!(varz["data"]["server_id"], varz["server"]["id"]);
    // Without a reply subject the server takes the request silently.
    assert_eq!(
        node.exchange(s, "PUB $SYS.REQ.SERVER.PING.CONNZ 0\r\n\r\n"),
        "PONG\r\n"
    );
}

#[test]
fn replies_reach_requesters_without_echo() {
    let mut node = Node::new(CONFIG);
    let s = node.client(r#"{"user":"sys","pass":"sys","verbose":false,"echo":false}"#);
    assert!(ask(&mut node, s, "$SYS.REQ.SERVER.PING.HEALTHZ", "").is_some());
}

#[test]
fn the_global_account_asks_about_itself_without_any_config() {
    let mut node = Node::new("");
    let g = node.client(r#"{"verbose":false,"name":"g1"}"#);
    let own = ask(&mut node, g, "$SYS.REQ.SERVER.PING.CONNZ", "").unwrap();
    assert_eq!(names(&own["data"]), ["g1"]);
    let user = ask(&mut node, g, "$SYS.REQ.USER.INFO", "").unwrap();
    assert_eq!(
        user["data"],
        json!({"user": "", "account": "$G", "account_name": "$G"})
    );
    assert_eq!(
        http_json(&mut node, "/accountz", "")["system_account"],
        "$SYS"
    );

    let mut bare = Node::new("no_system_account: true");
    let g = bare.client(r#"{"verbose":false}"#);
    assert!(ask(&mut bare, g, "$SYS.REQ.SERVER.PING.CONNZ", "").is_none());
    let list = http_json(&mut bare, "/accountz", "");
    assert!(list.get("system_account").is_none());
    assert_eq!(list["accounts"], json!(["$G"]));
    let detail = &http_json(&mut bare, "/accountz", "acc=%24G")["account_detail"];
    assert!(
        detail.get("imports").is_none(),
        "no system account, no system imports: {detail}"
    );
}

#[test]
fn claims_are_still_taken_only_under_the_nats_resolver() {
    let mut node = Node::new(CONFIG);
    let s = login(&mut node, "sys", "s1");
    let replies = ask_all(&mut node, s, "$SYS.REQ.CLAIMS.UPDATE", "x.y.z");
    assert!(
        replies[0]
            .0
            .as_deref()
            .is_some_and(|h| h.starts_with("NATS/1.0 503")),
        "{replies:?}"
    );
}

#[test]
fn statz_names_a_jwt_account_by_its_jwt_name() {
    let op = KeyPair::new_operator();
    let (sys, acc) = (KeyPair::new_account(), KeyPair::new_account());
    let acc_jwt = jwt::encode(
        &op,
        &acc.public_key(),
        "AccA",
        json!({"type": "account", "version": 2}),
        json!({}),
    );
    let config = format!(
        "operator: {}\nsystem_account: {}\nresolver: MEMORY\nresolver_preload: {{\n {}: {}\n {}: {}\n}}\n",
        jwt::operator(&op, &[]),
        sys.public_key(),
        sys.public_key(),
        jwt::account(&op, &sys, json!({})),
        acc.public_key(),
        acc_jwt,
    );
    let mut node = Node::new(&config);
    let statz = http_json(&mut node, "/accstatz", "unused=1");
    let entry = statz["account_statz"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["acc"] == acc.public_key()))
        .cloned()
        .unwrap_or_else(|| panic!("{statz}"));
    assert_eq!(entry["name"], "AccA", "nats-server shows the JWT's name");
}
