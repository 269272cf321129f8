//! S3: the NATS resolver's `dir` on a [`Storage`]. Claim updates and
//! deletes are acknowledged only once durable, and a crash at any point
//! never loses an acknowledged JWT nor puts a damaged one in use.

mod auth_support;

use std::collections::BTreeMap;
use std::time::Duration;

use auth_support::jwt;
use auth_support::{nonce_of, options, Node, WALL_AT_START};
use base64::Engine;
use natrix_core::storage::{MemStorage, Storage as _, StorageExt as _, SyncToken};
use natrix_core::{ConnId, Instant, Server};
use nkeys::KeyPair;
use serde_json::json;

/// A disk whose syncs complete only when the test says so, and whose crash
/// keeps what was synced plus, for one chosen file, a torn unsynced tail.
#[derive(Clone, Default)]
struct SharedDisk(MemStorage);

impl SharedDisk {
    /// Completes every requested sync; returns their tokens newest first
    /// (different files' syncs may complete in any order).
    fn complete_all(&self) -> Vec<SyncToken> {
        let mut tokens = self.0.complete_syncs();
        tokens.reverse();
        tokens
    }

    /// Loses every unsynced change; `torn` keeps `torn_len` bytes of its unsynced content.
    fn crash(&self, torn: Option<(&str, usize)>) {
        match torn {
            Some((name, len)) => self.0.crash_tearing(name, len),
            None => self.0.crash(0),
        }
    }

    fn names(&self) -> Vec<String> {
        self.0.list().unwrap()
    }
}

struct Setup {
    op: KeyPair,
    sys: KeyPair,
    acc: KeyPair,
    config: String,
}

fn setup(resolver_extra: &str) -> Setup {
    let (op, sys, acc) = (
        KeyPair::new_operator(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let config = jwt::resolver_config(
        &op,
        &sys,
        resolver_extra,
        &[(&acc, jwt::account(&op, &acc, json!({})))],
    );
    Setup {
        op,
        sys,
        acc,
        config,
    }
}

/// Version `n` of an account JWT: issued at `1_700_000_000 + n`, tagged `v<n>`.
fn version(op: &KeyPair, acc: &KeyPair, n: i64, extra: serde_json::Value) -> String {
    let mut nats = json!({
        "type": "account", "version": 2, "tags": [format!("v{n}")],
        "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1}
    });
    if let (Some(o), Some(e)) = (nats.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    jwt::encode(
        op,
        &acc.public_key(),
        "ACC",
        nats,
        json!({"iat": 1_700_000_000i64 + n, "jti": format!("J{n}{}", acc.public_key())}),
    )
}

fn start(config: &str, disk: &SharedDisk) -> Node {
    let server = Server::with_storage(
        options(config),
        [9; 32],
        Instant::ZERO,
        WALL_AT_START,
        Box::new(disk.0.clone()),
    );
    let mut node = Node::with_server(server);
    settle(&mut node, disk);
    node
}

/// Completes the syncs the disk was asked for and tells the server, until
/// none are left: an update's later steps ask for more.
fn settle(node: &mut Node, disk: &SharedDisk) {
    while complete_once(node, disk) {}
}

/// Completes the syncs asked for so far (not those their completion asks for).
fn complete_once(node: &mut Node, disk: &SharedDisk) -> bool {
    let tokens = disk.complete_all();
    if tokens.is_empty() {
        return false;
    }
    node.server.handle_synced(node.now, &tokens);
    node.advance(Duration::ZERO);
    true
}

/// The files of `acc` on the disk with their contents.
fn files_of(disk: &SharedDisk, acc: &KeyPair) -> BTreeMap<String, String> {
    disk.names()
        .into_iter()
        .filter(|name| name.starts_with(&acc.public_key()))
        .map(|name| {
            let text = disk.0.clone().read_all(&name).unwrap();
            (name, String::from_utf8_lossy(&text).into_owned())
        })
        .collect()
}

/// Puts `name` on the disk as durable, as another server would have left it.
fn put_durable(disk: &SharedDisk, name: &str, text: &str) {
    disk.0.put_durable(name, text.as_bytes());
}

fn login(node: &mut Node, signer: &KeyPair, acc: &KeyPair) -> (ConnId, String) {
    let u = KeyPair::new_user();
    let token = jwt::user(signer, acc, &u, json!({}), json!({}));
    let (conn, info) = node.connect();
    let nonce = nonce_of(&info);
    let sig =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(u.sign(nonce.as_bytes()).unwrap());
    node.send(
        conn,
        &format!("CONNECT {{\"jwt\":\"{token}\",\"sig\":\"{sig}\",\"verbose\":false}}\r\nPING\r\n"),
    );
    (conn, node.take(conn))
}

fn system_client(node: &mut Node, s: &Setup) -> ConnId {
    let (conn, answer) = login(node, &s.sys, &s.sys);
    assert_eq!(answer, "PONG\r\n");
    assert_eq!(node.exchange(conn, "SUB r 1\r\n"), "PONG\r\n");
    conn
}

fn publish(node: &mut Node, conn: ConnId, subject: &str, payload: &str) -> String {
    node.exchange(
        conn,
        &format!("PUB {subject} r {}\r\n{payload}\r\n", payload.len()),
    )
}

/// The JSON payloads of the MSGs in `text`.
fn replies(text: &str) -> Vec<serde_json::Value> {
    text.split("\r\n")
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn lookup(node: &mut Node, conn: ConnId, acc: &KeyPair) -> String {
    let subject = format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP", acc.public_key());
    let out = publish(node, conn, &subject, "");
    out.split("\r\n").nth(1).unwrap_or_default().to_owned()
}

/// The name of the highest generation file of `acc` on the disk.
fn newest_generation(disk: &SharedDisk, acc: &KeyPair) -> Option<String> {
    let prefix = format!("{}.jwt.", acc.public_key());
    disk.names()
        .into_iter()
        .filter_map(|n| Some((n.strip_prefix(&prefix)?.parse::<u64>().ok()?, n.clone())))
        .max()
        .map(|(_, n)| n)
}

#[test]
fn an_update_is_acknowledged_and_takes_effect_only_once_durable() {
    let s = setup("");
    let disk = SharedDisk::default();
    let mut node = start(&s.config, &disk);
    let sys = system_client(&mut node, &s);
    let late = KeyPair::new_account();
    let update = version(&s.op, &late, 1, json!({}));
    let out = publish(&mut node, sys, "$SYS.REQ.CLAIMS.UPDATE", &update);
    assert_eq!(out, "PONG\r\n", "no reply before the sync completes");
    assert_ne!(
        login(&mut node, &late, &late).1,
        "PONG\r\n",
        "not in effect yet"
    );
    assert!(disk
        .names()
        .contains(&format!("{}.jwt.1", late.public_key())));
    settle(&mut node, &disk);
    let answer = replies(&node.take(sys));
    assert_eq!(
        answer[0]["data"],
        json!({"account": late.public_key(), "code": 200, "message": "jwt updated"})
    );
    assert_eq!(login(&mut node, &late, &late).1, "PONG\r\n");
}

#[test]
fn a_restart_keeps_acknowledged_updates_over_older_preloads() {
    let s = setup("");
    let disk = SharedDisk::default();
    let signer = KeyPair::new_account();
    {
        let mut node = start(&s.config, &disk);
        let sys = system_client(&mut node, &s);
        let update = version(
            &s.op,
            &s.acc,
            5,
            json!({"signing_keys": [signer.public_key()]}),
        );
        publish(&mut node, sys, "$SYS.REQ.CLAIMS.UPDATE", &update);
        settle(&mut node, &disk);
        assert_eq!(replies(&node.take(sys))[0]["data"]["code"], 200);
    }
    let mut node = start(&s.config, &disk);
    assert_eq!(login(&mut node, &signer, &s.acc).1, "PONG\r\n");
    let files: Vec<String> = files_of(&disk, &s.acc).into_keys().collect();
    assert_eq!(
        files,
        [format!("{}.jwt", s.acc.public_key())],
        "nats-server's layout: the write-ahead files are gone"
    );
}

#[test]
fn a_crash_before_the_sync_falls_back_to_the_acknowledged_jwt() {
    let s = setup("");
    let acked = version(&s.op, &s.acc, 1, json!({}));
    let lost = version(&s.op, &s.acc, 2, json!({}));
    for torn_len in [0, 10, lost.len() - 1, lost.len()] {
        let disk = SharedDisk::default();
        let mut node = start(&s.config, &disk);
        let sys = system_client(&mut node, &s);
        publish(&mut node, sys, "$SYS.REQ.CLAIMS.UPDATE", &acked);
        settle(&mut node, &disk);
        assert_eq!(replies(&node.take(sys))[0]["data"]["code"], 200);
        publish(&mut node, sys, "$SYS.REQ.CLAIMS.UPDATE", &lost);
        let newest = newest_generation(&disk, &s.acc).unwrap();
        disk.crash(Some((&newest, torn_len)));
        let mut node = start(&s.config, &disk);
        let sys = system_client(&mut node, &s);
        let found = lookup(&mut node, sys, &s.acc);
        if torn_len == lost.len() {
            assert!(
                found == lost || found == acked,
                "a whole unsynced JWT may survive"
            );
        } else {
            assert_eq!(found, acked, "torn at {torn_len}");
        }
    }
}

#[test]
fn crashes_at_random_points_never_lose_an_acknowledged_jwt() {
    let s = setup("");
    let disk = SharedDisk::default();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let versions: Vec<String> = (1..=40)
        .map(|n| version(&s.op, &s.acc, n, json!({})))
        .collect();
    let mut acked: Option<usize> = None;
    let mut node = start(&s.config, &disk);
    let mut sys = system_client(&mut node, &s);
    let mut sent = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        publish(&mut node, sys, "$SYS.REQ.CLAIMS.UPDATE", v);
        sent.push(i);
        match next(4) {
            0 => {
                settle(&mut node, &disk);
                let n = replies(&node.take(sys)).len();
                assert_eq!(n, sent.len(), "every pending update answered");
                acked = sent.drain(..).next_back().or(acked);
            }
            1 => {
                let newest = newest_generation(&disk, &s.acc);
                let torn = newest
                    .as_deref()
                    .map(|n| (n, next(v.len() as u64 + 1) as usize));
                disk.crash(torn);
                sent.clear();
                node = start(&s.config, &disk);
                sys = system_client(&mut node, &s);
                let found = lookup(&mut node, sys, &s.acc);
                let at = versions.iter().position(|v| *v == found);
                match acked {
                    Some(a) => assert!(at.is_some_and(|at| at >= a), "acked v{a}, found {at:?}"),
                    None => {
                        assert!(at.is_some() || found == jwt::account(&s.op, &s.acc, json!({})))
                    }
                }
            }
            _ => {}
        }
    }
}

#[test]
fn list_and_delete_are_durable() {
    let s = setup(", allow_delete: true");
    let disk = SharedDisk::default();
    let late = KeyPair::new_account();
    {
        let mut node = start(&s.config, &disk);
        let sys = system_client(&mut node, &s);
        publish(
            &mut node,
            sys,
            "$SYS.REQ.CLAIMS.UPDATE",
            &version(&s.op, &late, 1, json!({})),
        );
        settle(&mut node, &disk);
        node.take(sys);
        let out = publish(&mut node, sys, "$SYS.REQ.CLAIMS.LIST", "");
        let mut all = vec![s.sys.public_key(), s.acc.public_key(), late.public_key()];
        all.sort();
        assert_eq!(replies(&out)[0]["data"], json!(all));
        let (user, _) = login(&mut node, &late, &late);
        let delete = jwt::encode(
            &s.op,
            &s.op.public_key(),
            "delete",
            json!({"accounts": [late.public_key()], "type": "generic", "version": 2}),
            json!({}),
        );
        let out = publish(&mut node, sys, "$SYS.REQ.CLAIMS.DELETE", &delete);
        assert_eq!(out, "PONG\r\n", "answered once durable");
        settle(&mut node, &disk);
        assert_eq!(
            replies(&node.take(sys))[0]["data"],
            json!({"code": 200, "message": "deleted 1 accounts"})
        );
        assert!(node
            .take(user)
            .ends_with("-ERR 'Account Authentication Expired'\r\n"));
        assert!(node.is_closed(user));
    }
    let kept = format!("{}.jwt.deleted", late.public_key());
    assert!(
        disk.names().contains(&kept),
        "allow_delete keeps the JWT aside"
    );
    disk.crash(None);
    let mut node = start(&s.config, &disk);
    assert_ne!(
        login(&mut node, &late, &late).1,
        "PONG\r\n",
        "still deleted"
    );
}

#[test]
fn resolver_settings_are_checked_like_nats_server() {
    let bad = |resolver: &str| {
        let text = format!("resolver: {resolver}\n");
        let source = natrix_core::config::MemorySource::default();
        let tree = natrix_core::config::parse_str(&text, "t.conf", &source).unwrap();
        let mut opts = natrix_core::config::ServerOptions::default();
        natrix_core::config::apply_config(&tree, &mut opts, false)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(bad("{ type: cache, dir: x, allow_delete: true }")
        .contains("CACHE does not accept allow_delete"));
    assert!(bad("{ type: full, dir: x, hard_delete: true }")
        .contains("hard_delete has no effect without delete"));
    assert!(bad("{ type: full, dir: x, ttl: \"1m\" }").contains("FULL does not accept ttl"));
    assert!(bad("{ type: full }").contains("dir has no value and needs to point to a directory"));
    assert_eq!(bad("{ type: full, dir: x, allow_delete: true, hard_delete: true, limit: 3, interval: \"2m\", timeout: \"3s\" }"), "");
}

#[test]
fn list_leaves_out_expired_accounts_as_nats_server_does() {
    let s = setup("");
    let disk = SharedDisk::default();
    let mut node = start(&s.config, &disk);
    let sys = system_client(&mut node, &s);
    let expired = KeyPair::new_account();
    // Stored anyway: expiry is checked when the account is used.
    let nats = json!({"type": "account", "version": 2});
    let expired_jwt = jwt::encode(
        &s.op,
        &expired.public_key(),
        "ACC",
        nats,
        json!({"exp": 1_600_000_000i64}),
    );
    publish(&mut node, sys, "$SYS.REQ.CLAIMS.UPDATE", &expired_jwt);
    settle(&mut node, &disk);
    assert_eq!(replies(&node.take(sys))[0]["data"]["code"], 200);
    let out = publish(&mut node, sys, "$SYS.REQ.CLAIMS.LIST", "");
    let mut live = vec![s.sys.public_key(), s.acc.public_key()];
    live.sort();
    assert_eq!(replies(&out)[0]["data"], json!(live));
}

#[test]
fn updates_are_refused_as_nats_server_refuses_them() {
    let s = setup("");
    let disk = SharedDisk::default();
    let mut node = start(&s.config, &disk);
    let sys = system_client(&mut node, &s);
    let nats = json!({"type": "account", "version": 2});
    let mut refusal = |jwt: String| {
        let out = publish(&mut node, sys, "$SYS.REQ.CLAIMS.UPDATE", &jwt);
        settle(&mut node, &disk);
        let reply = replies(&(out + &node.take(sys))).remove(0);
        (
            reply["error"]["account"].clone(),
            reply["error"]["description"].clone(),
        )
    };
    // The key names the file: nats-server refuses one that is no public nkey.
    let garbage = jwt::encode(&s.op, "garbage", "ACC", nats.clone(), json!({}));
    assert_eq!(
        refusal(garbage),
        (
            json!("garbage"),
            json!("jwt update resulted in error - invalid public key")
        )
    );
    // Only an operator or an account may issue an account JWT.
    let by_user = jwt::encode(
        &KeyPair::new_user(),
        &s.acc.public_key(),
        "ACC",
        nats,
        json!({}),
    );
    assert_eq!(
        refusal(by_user),
        (
            json!("n/a"),
            json!("jwt update resulted in error - unable to validate expected prefixes - [account operator]")
        )
    );
    assert!(
        disk.names().iter().all(|n| !n.starts_with("garbage")),
        "{:?}",
        disk.names()
    );
}

#[test]
fn malformed_claims_are_refused_in_nats_server_words() {
    let s = setup(", allow_delete: true");
    let disk = SharedDisk::default();
    let mut node = start(&s.config, &disk);
    let sys = system_client(&mut node, &s);
    let mut refused = |subject: &str, jwt: String| {
        let out = publish(&mut node, sys, subject, &jwt);
        replies(&out).remove(0)["error"]["description"].clone()
    };
    let update = "$SYS.REQ.CLAIMS.UPDATE";
    let of_type = |kind: &str| {
        let nats = json!({"type": kind, "version": 2});
        jwt::encode(&s.op, &s.acc.public_key(), "ACC", nats, json!({}))
    };
    let cases = [
        ("user", "not account claim"),
        ("operator", "not account claim"),
        ("generic", "claim failed V1 signature verification"),
        ("no-such-type", "claim failed V1 signature verification"),
        ("cluster", "ClusterClaims are not supported"),
        ("server", "ServerClaims are not supported"),
    ];
    for (kind, words) in cases {
        let why = format!("jwt update resulted in error - {words}");
        assert_eq!(refused(update, of_type(kind)), json!(why), "type {kind}");
    }
    let good = version(&s.op, &s.acc, 1, json!({}));
    let (head, rest) = good.rsplit_once('.').unwrap();
    let flipped = if rest.starts_with('A') { "B" } else { "A" };
    let tampered = format!("{head}.{flipped}{}", &rest[1..]);
    assert_eq!(
        refused(update, tampered),
        json!("jwt update resulted in error - claim failed V2 signature verification")
    );
    assert_eq!(
        refused(update, format!("{good}.x")),
        json!("jwt update resulted in error - expected 3 chunks")
    );
    let delete = jwt::encode(
        &s.op,
        &s.op.public_key(),
        "del",
        json!({"type": "generic", "version": 2, "accounts": [s.acc.public_key()]}),
        json!({}),
    );
    assert_eq!(
        refused("$SYS.REQ.CLAIMS.DELETE", format!("{delete}.x")),
        json!("delete accounts request by  failed - expected 3 chunks")
    );
    // A lookup of a key no account could have gets no reply at all.
    let out = publish(&mut node, sys, "$SYS.REQ.ACCOUNT.garbage.CLAIMS.LOOKUP", "");
    assert_eq!(out, "PONG\r\n");
}

#[test]
fn updates_waiting_for_their_sync_count_against_the_limit() {
    // The system account and `acc` are stored already: room for one more.
    let s = setup(", limit: 3");
    let disk = SharedDisk::default();
    let mut node = start(&s.config, &disk);
    let sys = system_client(&mut node, &s);
    let (first, second) = (KeyPair::new_account(), KeyPair::new_account());
    let mut out = String::new();
    for acc in [&first, &second] {
        let update = version(&s.op, acc, 1, json!({}));
        out += &publish(&mut node, sys, "$SYS.REQ.CLAIMS.UPDATE", &update);
    }
    settle(&mut node, &disk);
    out += &node.take(sys);
    let codes: Vec<_> = replies(&out)
        .iter()
        .map(|r| {
            let body = if r["data"].is_null() {
                &r["error"]
            } else {
                &r["data"]
            };
            (body["account"].clone(), body["code"].clone())
        })
        .collect();
    assert!(
        codes.contains(&(json!(first.public_key()), json!(200)))
            && codes.contains(&(json!(second.public_key()), json!(500))),
        "the second new account is over the limit: {codes:?}"
    );
    assert!(newest_generation(&disk, &second).is_none());
}

#[test]
fn the_older_update_subject_is_answered_too() {
    let s = setup("");
    let disk = SharedDisk::default();
    let mut node = start(&s.config, &disk);
    let sys = system_client(&mut node, &s);
    let late = KeyPair::new_account();
    let update = version(&s.op, &late, 1, json!({}));
    let subject = format!("$SYS.ACCOUNT.{}.CLAIMS.UPDATE", late.public_key());
    let mut out = publish(&mut node, sys, &subject, &update);
    settle(&mut node, &disk);
    out += &node.take(sys);
    assert_eq!(replies(&out)[0]["data"]["message"], "jwt updated", "{out}");
    assert_eq!(lookup(&mut node, sys, &late), update);
}

#[test]
fn a_cache_resolver_deletes_as_a_hard_delete() {
    // nats-server's cache takes deletes without `allow_delete` (which it
    // refuses in its config) and removes the JWT outright.
    let mut s = setup("");
    s.config = s.config.replace("type: full", "type: cache");
    let disk = SharedDisk::default();
    let mut node = start(&s.config, &disk);
    let sys = system_client(&mut node, &s);
    assert!(disk
        .names()
        .contains(&format!("{}.jwt", s.acc.public_key())));
    let delete = jwt::encode(
        &s.op,
        &s.op.public_key(),
        "delete",
        json!({"accounts": [s.acc.public_key()], "type": "generic", "version": 2}),
        json!({}),
    );
    let mut out = publish(&mut node, sys, "$SYS.REQ.CLAIMS.DELETE", &delete);
    settle(&mut node, &disk);
    out += &node.take(sys);
    assert_eq!(
        replies(&out)[0]["data"],
        json!({"code": 200, "message": "deleted 1 accounts"}),
        "{out}"
    );
    let acc = s.acc.public_key();
    assert!(
        !disk.names().iter().any(|n| n.starts_with(&acc)),
        "{:?}",
        disk.names()
    );
}

#[test]
fn a_delete_right_after_an_update_is_not_undone_by_its_sync() {
    let s = setup(", allow_delete: true, hard_delete: true");
    let disk = SharedDisk::default();
    let mut node = start(&s.config, &disk);
    let sys = system_client(&mut node, &s);
    let late = KeyPair::new_account();
    let update = version(&s.op, &late, 1, json!({}));
    let mut out = publish(&mut node, sys, "$SYS.REQ.CLAIMS.UPDATE", &update);
    let delete = jwt::encode(
        &s.op,
        &s.op.public_key(),
        "delete",
        json!({"accounts": [late.public_key()], "type": "generic", "version": 2}),
        json!({}),
    );
    // Sent before the update's sync completed.
    out += &publish(&mut node, sys, "$SYS.REQ.CLAIMS.DELETE", &delete);
    for _ in 0..3 {
        settle(&mut node, &disk);
    }
    out += &node.take(sys);
    let answers: Vec<_> = replies(&out)
        .iter()
        .map(|r| r["data"]["message"].clone())
        .collect();
    assert_eq!(
        answers,
        [json!("jwt updated"), json!("deleted 1 accounts")],
        "answered in the order asked"
    );
    assert_eq!(lookup(&mut node, sys, &late), "", "deleted last");
    disk.crash(None);
    let mut node = start(&s.config, &disk);
    let sys = system_client(&mut node, &s);
    assert_eq!(
        lookup(&mut node, sys, &late),
        "",
        "the delete survives a crash"
    );
}

#[test]
fn a_requester_without_echo_still_gets_its_replies() {
    let s = setup("");
    let disk = SharedDisk::default();
    let mut node = start(&s.config, &disk);
    let u = KeyPair::new_user();
    let token = jwt::user(&s.sys, &s.sys, &u, json!({}), json!({}));
    let (sys, info) = node.connect();
    let nonce = nonce_of(&info);
    let sig =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(u.sign(nonce.as_bytes()).unwrap());
    let connect = format!(
        "CONNECT {{\"jwt\":\"{token}\",\"sig\":\"{sig}\",\"verbose\":false,\"echo\":false}}\r\nSUB r 1\r\nPING\r\n"
    );
    node.send(sys, &connect);
    assert!(node.take(sys).ends_with("PONG\r\n"));
    let out = publish(&mut node, sys, "$SYS.REQ.CLAIMS.LIST", "");
    assert_eq!(replies(&out).len(), 1, "{out}");
    let late = KeyPair::new_account();
    let update = version(&s.op, &late, 1, json!({}));
    publish(&mut node, sys, "$SYS.REQ.CLAIMS.UPDATE", &update);
    settle(&mut node, &disk);
    assert_eq!(replies(&node.take(sys))[0]["data"]["code"], 200);
}

fn delete_request(s: &Setup, acc: &KeyPair) -> String {
    jwt::encode(
        &s.op,
        &s.op.public_key(),
        "delete",
        json!({"accounts": [acc.public_key()], "type": "generic", "version": 2}),
        json!({}),
    )
}

/// The `message` (or error description) of every reply in `out`.
fn messages(out: &str) -> Vec<serde_json::Value> {
    replies(out)
        .iter()
        .map(|r| {
            let m = r["data"]["message"].clone();
            if m.is_null() {
                r["error"]["description"].clone()
            } else {
                m
            }
        })
        .collect()
}

#[test]
fn an_update_is_answered_once_the_jwt_file_holds_it_and_an_undone_rename_is_finished() {
    let s = setup("");
    let key = s.acc.public_key();
    let written = version(&s.op, &s.acc, 1, json!({}));
    for torn_len in [0, 10, written.len() - 1] {
        let disk = SharedDisk::default();
        let mut node = start(&s.config, &disk);
        let sys = system_client(&mut node, &s);
        publish(&mut node, sys, "$SYS.REQ.CLAIMS.UPDATE", &written);
        assert!(
            complete_once(&mut node, &disk),
            "the write-ahead file synced"
        );
        assert_eq!(
            node.take(sys),
            "",
            "answered only once {key}.jwt holds it, for nats-server to find"
        );
        // The write-ahead file is being renamed to `<key>.jwt`; the crash
        // undoes the rename (and, in this disk, leaves a torn `<key>.jwt`
        // besides, which must not win either).
        disk.crash(Some((&format!("{key}.jwt"), torn_len)));
        let mut node = start(&s.config, &disk);
        let sys = system_client(&mut node, &s);
        assert_eq!(
            lookup(&mut node, sys, &s.acc),
            written,
            "the durable write-ahead copy wins, torn at {torn_len}"
        );
        assert_eq!(
            files_of(&disk, &s.acc),
            BTreeMap::from([(format!("{key}.jwt"), written.clone())]),
            "the start finished the rewrite"
        );
    }
}

#[test]
fn a_directory_nats_server_wrote_is_taken_over_in_its_layout() {
    let s = setup("");
    let key = s.acc.public_key();
    let disk = SharedDisk::default();
    // nats-server's directory: one `<key>.jwt` per account, raw JWT, a newline after.
    let theirs = version(&s.op, &s.acc, 3, json!({}));
    put_durable(&disk, &format!("{key}.jwt"), &format!("{theirs}\n"));
    let mut node = start(&s.config, &disk);
    let sys = system_client(&mut node, &s);
    assert_eq!(
        lookup(&mut node, sys, &s.acc),
        theirs,
        "their JWT wins over the older preload"
    );
    let ours = version(&s.op, &s.acc, 4, json!({}));
    publish(&mut node, sys, "$SYS.REQ.CLAIMS.UPDATE", &ours);
    settle(&mut node, &disk);
    assert_eq!(messages(&node.take(sys)), [json!("jwt updated")]);
    assert_eq!(
        files_of(&disk, &s.acc),
        BTreeMap::from([(format!("{key}.jwt"), ours)]),
        "left as nats-server would leave it"
    );
}

#[test]
fn a_newer_jwt_nats_server_stored_after_natrix_wins_at_the_next_start() {
    // natrix ran, then nats-server took the directory over and stored a
    // newer JWT, then natrix runs again. A write-ahead file natrix left
    // behind (a crash before its rewrite finished) must not roll it back.
    let s = setup("");
    let key = s.acc.public_key();
    let disk = SharedDisk::default();
    let revoked_user = KeyPair::new_user();
    {
        let mut node = start(&s.config, &disk);
        let sys = system_client(&mut node, &s);
        publish(
            &mut node,
            sys,
            "$SYS.REQ.CLAIMS.UPDATE",
            &version(&s.op, &s.acc, 4, json!({})),
        );
        settle(&mut node, &disk);
    }
    let leftover = version(&s.op, &s.acc, 5, json!({}));
    put_durable(&disk, &format!("{key}.jwt.9"), &leftover);
    let revocations = json!({"revocations": {revoked_user.public_key(): 1_800_000_000i64}});
    let by_nats_server = version(&s.op, &s.acc, 6, revocations);
    put_durable(&disk, &format!("{key}.jwt"), &by_nats_server);
    let mut node = start(&s.config, &disk);
    let sys = system_client(&mut node, &s);
    assert_eq!(lookup(&mut node, sys, &s.acc), by_nats_server);
    assert_eq!(
        files_of(&disk, &s.acc),
        BTreeMap::from([(format!("{key}.jwt"), by_nats_server)]),
        "the stale write-ahead file is gone"
    );
}

#[test]
fn requests_take_effect_in_the_order_they_arrive() {
    // An update, a delete, then another update of the same account, all
    // before any sync completes: the delete removes the first update's JWT
    // only, and the second update lives on.
    let s = setup(", allow_delete: true");
    let key = s.acc.public_key();
    let disk = SharedDisk::default();
    let mut node = start(&s.config, &disk);
    let sys = system_client(&mut node, &s);
    let (first, second) = (
        version(&s.op, &s.acc, 1, json!({})),
        version(&s.op, &s.acc, 2, json!({})),
    );
    let mut out = publish(&mut node, sys, "$SYS.REQ.CLAIMS.UPDATE", &first);
    out += &publish(
        &mut node,
        sys,
        "$SYS.REQ.CLAIMS.DELETE",
        &delete_request(&s, &s.acc),
    );
    out += &publish(&mut node, sys, "$SYS.REQ.CLAIMS.UPDATE", &second);
    settle(&mut node, &disk);
    out += &node.take(sys);
    assert_eq!(
        messages(&out),
        [
            json!("jwt updated"),
            json!("deleted 1 accounts"),
            json!("jwt updated")
        ]
    );
    assert_eq!(lookup(&mut node, sys, &s.acc), second);
    let expected = BTreeMap::from([
        (format!("{key}.jwt"), second.clone()),
        (format!("{key}.jwt.deleted"), first),
    ]);
    assert_eq!(files_of(&disk, &s.acc), expected);
    disk.crash(None);
    let mut node = start(&s.config, &disk);
    let sys = system_client(&mut node, &s);
    assert_eq!(lookup(&mut node, sys, &s.acc), second, "after a crash too");
}

#[test]
fn an_update_not_newer_than_the_stored_jwt_changes_nothing() {
    // nats-server keeps the stored JWT when the update was issued earlier,
    // or is the same JWT, and answers "jwt updated" all the same.
    let s = setup("");
    let disk = SharedDisk::default();
    let mut node = start(&s.config, &disk);
    let sys = system_client(&mut node, &s);
    let newer = version(&s.op, &s.acc, 5, json!({}));
    let mut out = publish(&mut node, sys, "$SYS.REQ.CLAIMS.UPDATE", &newer);
    out += &publish(
        &mut node,
        sys,
        "$SYS.REQ.CLAIMS.UPDATE",
        &version(&s.op, &s.acc, 3, json!({})),
    );
    out += &publish(&mut node, sys, "$SYS.REQ.CLAIMS.UPDATE", &newer);
    assert_eq!(
        out, "PONG\r\nPONG\r\nPONG\r\n",
        "none answered before the first is durable"
    );
    settle(&mut node, &disk);
    out += &node.take(sys);
    assert_eq!(messages(&out), vec![json!("jwt updated"); 3]);
    assert_eq!(lookup(&mut node, sys, &s.acc), newer);
    let key = s.acc.public_key();
    assert_eq!(
        files_of(&disk, &s.acc),
        BTreeMap::from([(format!("{key}.jwt"), newer)])
    );
}
