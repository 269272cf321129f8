//! S3: the built-in NATS resolver (`resolver { type: full }`) taking claim
//! updates and lookups from the system account at runtime.

mod common;
mod jwt_support;

use async_nats::ConnectOptions;
use common::*;
use jwt_support as jwt;
use natrix_conformance::TempDir;
use nkeys::KeyPair;
use serde_json::json;

struct Setup {
    op: KeyPair,
    sys: KeyPair,
    acc: KeyPair,
    config: String,
    _dir: TempDir,
}

fn setup() -> Setup {
    let (op, sys, acc) = (
        KeyPair::new_operator(),
        KeyPair::new_account(),
        KeyPair::new_account(),
    );
    let dir = TempDir::new("resolver");
    let config = format!(
        "operator: {}\nsystem_account: {}\nresolver: {{ type: full, dir: \"{}\" }}\nresolver_preload: {{\n {}: {}\n {}: {}\n}}\n",
        jwt::operator(&op, &[]),
        sys.public_key(),
        dir.path().join("jwt").display(),
        sys.public_key(),
        jwt::account(&op, &sys, json!({})),
        acc.public_key(),
        jwt::account(&op, &acc, json!({})),
    );
    Setup {
        op,
        sys,
        acc,
        config,
        _dir: dir,
    }
}

async fn connect_as(
    server: &Server,
    signer: &KeyPair,
    acc: &KeyPair,
    user: &KeyPair,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    let creds = jwt::creds(&jwt::user(signer, acc, user, json!({}), json!({})), user);
    let opts = ConnectOptions::with_credentials(&creds).expect("creds parse");
    tokio::time::timeout(STEP, opts.connect(server.client_url.as_str()))
        .await
        .expect("connect timed out")
}

/// The `data` or `error` object of a system reply (the `server` object
/// differs between servers by nature).
fn outcome(reply: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(reply).unwrap_or_else(|e| panic!("{e}: {reply}"));
    assert!(v["server"]["id"].is_string(), "{reply}");
    if v.get("data").is_some() {
        json!({"data": v["data"]})
    } else {
        json!({"error": v["error"]})
    }
}

async fn request(client: &async_nats::Client, subject: String, body: String) -> String {
    let reply = tokio::time::timeout(STEP, client.request(subject, body.into()))
        .await
        .expect("request timed out")
        .expect("request answered");
    String::from_utf8(reply.payload.to_vec()).unwrap()
}

#[tokio::test]
async fn claim_update_adds_an_account_at_runtime() {
    let s = setup();
    let server = Server::start(ServerOptions::new().config(s.config.clone()));
    let sys_client = connect_as(&server, &s.sys, &s.sys, &KeyPair::new_user())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let late = KeyPair::new_account();
    let u = KeyPair::new_user();
    assert!(
        connect_as(&server, &late, &late, &u).await.is_err(),
        "unknown before the update"
    );
    let late_jwt = jwt::account(&s.op, &late, json!({}));
    let answer = request(
        &sys_client,
        "$SYS.REQ.CLAIMS.UPDATE".into(),
        late_jwt.clone(),
    )
    .await;
    assert_eq!(
        outcome(&answer),
        json!({"data": {"account": late.public_key(), "code": 200, "message": "jwt updated"}})
    );
    let client = connect_as(&server, &late, &late, &u)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    sync(&client).await;
    let lookup = request(
        &sys_client,
        format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP", late.public_key()),
        String::new(),
    )
    .await;
    assert_eq!(lookup, late_jwt);
    let bad = request(
        &sys_client,
        "$SYS.REQ.CLAIMS.UPDATE".into(),
        "not a jwt".into(),
    )
    .await;
    assert_eq!(
        outcome(&bad),
        json!({"error": {"account": "n/a", "code": 500, "description": "jwt update resulted in error - expected 3 chunks"}})
    );
    // Stored like any other, as nats-server does; its issuer is checked on use.
    let (rogue_op, rogue_acc) = (KeyPair::new_operator(), KeyPair::new_account());
    let rogue = jwt::account(&rogue_op, &rogue_acc, json!({}));
    let rogue_answer = request(&sys_client, "$SYS.REQ.CLAIMS.UPDATE".into(), rogue).await;
    assert_eq!(outcome(&rogue_answer)["data"]["code"], 200);
    assert!(
        connect_as(&server, &rogue_acc, &rogue_acc, &KeyPair::new_user())
            .await
            .is_err()
    );
    let u2 = KeyPair::new_user();
    let revoke = jwt::account(
        &s.op,
        &s.acc,
        json!({"revocations": {u2.public_key(): 1_800_000_000i64}}),
    );
    let by_id = request(
        &sys_client,
        format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", s.acc.public_key()),
        revoke,
    )
    .await;
    assert_eq!(outcome(&by_id)["data"]["account"], s.acc.public_key());
    assert!(connect_as(&server, &s.acc, &s.acc, &u2).await.is_err());
}

#[tokio::test]
async fn revoking_a_connected_user_disconnects_it() {
    let s = setup();
    let server = Server::start(ServerOptions::new().config(s.config.clone()));
    let sys_client = connect_as(&server, &s.sys, &s.sys, &KeyPair::new_user())
        .await
        .unwrap();
    let u = KeyPair::new_user();
    let creds = jwt::creds(&jwt::user(&s.acc, &s.acc, &u, json!({}), json!({})), &u);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = ConnectOptions::with_credentials(&creds)
        .unwrap()
        .max_reconnects(1)
        .event_callback(move |ev| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(format!("{ev:?}"));
            }
        });
    let client = opts.connect(server.client_url.as_str()).await.unwrap();
    sync(&client).await;
    let revoke = jwt::account(
        &s.op,
        &s.acc,
        json!({"revocations": {u.public_key(): 1_800_000_000i64}}),
    );
    let answer = request(&sys_client, "$SYS.REQ.CLAIMS.UPDATE".into(), revoke).await;
    assert_eq!(outcome(&answer)["data"]["code"], 200);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    assert!(
        events
            .iter()
            .any(|e| e.contains("User Authentication Revoked")),
        "the server says why: {events:?}"
    );
    assert!(events.iter().any(|e| e == "Disconnected"), "{events:?}");
}

/// An account JWT with its own `jti` and `iat`, so that it is newer than the
/// preloaded one (a restart keeps the stored JWT unless the preload is newer).
fn newer_account(
    signer: &KeyPair,
    acc: &KeyPair,
    nats_extra: serde_json::Value,
    iat: i64,
) -> String {
    let mut nats = json!({"type": "account", "version": 2, "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1}});
    if let (Some(n), Some(e)) = (nats.as_object_mut(), nats_extra.as_object()) {
        n.extend(e.clone());
    }
    jwt::encode(
        signer,
        &acc.public_key(),
        "ACC",
        nats,
        json!({"iat": iat, "jti": format!("JTI-{iat}-{}", &acc.public_key()[..8])}),
    )
}

/// A request to delete accounts, signed by the operator as `nsc` signs one.
fn delete_request(op: &KeyPair, accounts: &[String]) -> String {
    jwt::encode(
        op,
        &op.public_key(),
        "delete",
        json!({"accounts": accounts, "type": "generic", "version": 2}),
        json!({}),
    )
}

#[tokio::test]
async fn claim_updates_survive_a_restart() {
    let s = setup();
    let signer = KeyPair::new_account();
    let late = KeyPair::new_account();
    {
        let server = Server::start(ServerOptions::new().config(s.config.clone()));
        let sys_client = connect_as(&server, &s.sys, &s.sys, &KeyPair::new_user())
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
        let updated = newer_account(
            &s.op,
            &s.acc,
            json!({"signing_keys": [signer.public_key()]}),
            1_700_000_100,
        );
        let answer = request(&sys_client, "$SYS.REQ.CLAIMS.UPDATE".into(), updated).await;
        assert_eq!(
            outcome(&answer)["data"]["message"],
            "jwt updated",
            "{answer}"
        );
        let added = jwt::account(&s.op, &late, json!({}));
        let answer = request(&sys_client, "$SYS.REQ.CLAIMS.UPDATE".into(), added).await;
        assert_eq!(
            outcome(&answer)["data"]["message"],
            "jwt updated",
            "{answer}"
        );
    }
    let server = Server::start(ServerOptions::new().config(s.config.clone()));
    let u = KeyPair::new_user();
    let by_signer = connect_as(&server, &signer, &s.acc, &u)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "the updated JWT's signing key after a restart: {e}\n{}",
                server.log()
            )
        });
    sync(&by_signer).await;
    let in_late = connect_as(&server, &late, &late, &KeyPair::new_user())
        .await
        .unwrap_or_else(|e| panic!("the added account after a restart: {e}\n{}", server.log()));
    sync(&in_late).await;
}

#[tokio::test]
async fn claims_list_and_delete() {
    let mut s = setup();
    s.config = s
        .config
        .replace("type: full,", "type: full, allow_delete: true,");
    let (late, other) = (KeyPair::new_account(), KeyPair::new_account());
    let mut sorted = vec![s.sys.public_key(), s.acc.public_key(), late.public_key()];
    sorted.sort();
    {
        let server = Server::start(ServerOptions::new().config(s.config.clone()));
        let sys_client = connect_as(&server, &s.sys, &s.sys, &KeyPair::new_user())
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
        let added = jwt::account(&s.op, &late, json!({}));
        let answer = request(&sys_client, "$SYS.REQ.CLAIMS.UPDATE".into(), added).await;
        assert_eq!(outcome(&answer)["data"]["code"], 200, "{answer}");
        let list = request(&sys_client, "$SYS.REQ.CLAIMS.LIST".into(), String::new()).await;
        assert_eq!(outcome(&list), json!({"data": sorted}), "{list}");

        let not_self_signed = jwt::encode(
            &s.op,
            &late.public_key(),
            "delete",
            json!({"accounts": [late.public_key()], "type": "generic", "version": 2}),
            json!({}),
        );
        let answer = request(
            &sys_client,
            "$SYS.REQ.CLAIMS.DELETE".into(),
            not_self_signed,
        )
        .await;
        assert_eq!(
            outcome(&answer),
            json!({"error": {"code": 500, "description": format!("delete accounts request by {} failed - not self signed", late.public_key())}})
        );
        let rogue = KeyPair::new_operator();
        let answer = request(
            &sys_client,
            "$SYS.REQ.CLAIMS.DELETE".into(),
            delete_request(&rogue, &[late.public_key()]),
        )
        .await;
        assert_eq!(
            outcome(&answer),
            json!({"error": {"code": 500, "description": format!("delete accounts request by {} failed - not trusted", rogue.public_key())}})
        );
        let answer = request(
            &sys_client,
            "$SYS.REQ.CLAIMS.DELETE".into(),
            delete_request(&s.op, &[s.sys.public_key()]),
        )
        .await;
        assert_eq!(
            outcome(&answer),
            json!({"error": {"code": 500, "description": format!("delete accounts request by {} failed - not allowed to delete system account", s.op.public_key())}})
        );
        let answer = request(
            &sys_client,
            "$SYS.REQ.CLAIMS.DELETE".into(),
            delete_request(&s.op, &["nope".to_owned()]),
        )
        .await;
        assert_eq!(
            outcome(&answer),
            json!({"error": {"code": 500, "description": format!("delete accounts request by {} failed - malformed request", s.op.public_key())}})
        );
        let answer = request(&sys_client, "$SYS.REQ.CLAIMS.DELETE".into(), "junk".into()).await;
        assert_eq!(
            outcome(&answer),
            json!({"error": {"code": 500, "description": "delete accounts request by  failed - expected 3 chunks"}})
        );

        let u = KeyPair::new_user();
        let creds = jwt::creds(&jwt::user(&late, &late, &u, json!({}), json!({})), &u);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let in_late = ConnectOptions::with_credentials(&creds)
            .unwrap()
            .max_reconnects(1)
            .event_callback(move |ev| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(format!("{ev:?}"));
                }
            })
            .connect(server.client_url.as_str())
            .await
            .unwrap();
        sync(&in_late).await;
        let answer = request(
            &sys_client,
            "$SYS.REQ.CLAIMS.DELETE".into(),
            delete_request(&s.op, &[late.public_key(), other.public_key()]),
        )
        .await;
        assert_eq!(
            outcome(&answer),
            json!({"data": {"code": 200, "message": "deleted 2 accounts"}})
        );
        assert!(
            connect_as(&server, &late, &late, &u).await.is_err(),
            "deleted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut events = Vec::new();
        while let Ok(e) = rx.try_recv() {
            events.push(e);
        }
        assert!(
            events
                .iter()
                .any(|e| e.contains("Account Authentication Expired")),
            "the deleted account's users are told why: {events:?}"
        );
        let list = request(&sys_client, "$SYS.REQ.CLAIMS.LIST".into(), String::new()).await;
        let mut left = vec![s.sys.public_key(), s.acc.public_key()];
        left.sort();
        assert_eq!(outcome(&list), json!({"data": left}), "{list}");
    }
    let server = Server::start(ServerOptions::new().config(s.config.clone()));
    assert!(
        connect_as(&server, &late, &late, &KeyPair::new_user())
            .await
            .is_err(),
        "still deleted after a restart"
    );
}

#[tokio::test]
async fn delete_needs_allow_delete() {
    let s = setup();
    let server = Server::start(ServerOptions::new().config(s.config.clone()));
    let sys_client = connect_as(&server, &s.sys, &s.sys, &KeyPair::new_user())
        .await
        .unwrap();
    let answer = request(
        &sys_client,
        "$SYS.REQ.CLAIMS.DELETE".into(),
        delete_request(&s.op, &[s.acc.public_key()]),
    )
    .await;
    assert_eq!(
        outcome(&answer),
        json!({"error": {"code": 500, "description": format!("delete accounts request by {} failed - delete must be enabled in server config", s.op.public_key())}})
    );
}

#[tokio::test]
async fn a_cache_resolver_updates_only_accounts_in_use() {
    let s = setup();
    let config = s.config.replace("type: full", "type: cache");
    let server = Server::start(ServerOptions::new().config(config));
    let sys_client = connect_as(&server, &s.sys, &s.sys, &KeyPair::new_user())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let late = KeyPair::new_account();
    let answer = request(
        &sys_client,
        "$SYS.REQ.CLAIMS.UPDATE".into(),
        jwt::account(&s.op, &late, json!({})),
    )
    .await;
    assert_eq!(
        outcome(&answer),
        json!({"data": {"account": late.public_key(), "code": 200, "message": "jwt update cache skipped"}})
    );
    let early = newer_account(&s.op, &s.acc, json!({}), 1_700_000_050);
    let answer = request(&sys_client, "$SYS.REQ.CLAIMS.UPDATE".into(), early).await;
    assert_eq!(
        outcome(&answer)["data"]["message"],
        "jwt update cache skipped",
        "known but no client yet: {answer}"
    );
    let user = connect_as(&server, &s.acc, &s.acc, &KeyPair::new_user())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    sync(&user).await;
    let updated = newer_account(&s.op, &s.acc, json!({}), 1_700_000_100);
    let answer = request(&sys_client, "$SYS.REQ.CLAIMS.UPDATE".into(), updated).await;
    assert_eq!(
        outcome(&answer),
        json!({"data": {"account": s.acc.public_key(), "code": 200, "message": "jwt updated cache"}})
    );
}

#[tokio::test]
async fn looking_up_an_unknown_account_answers_empty() {
    let s = setup();
    let server = Server::start(ServerOptions::new().config(s.config.clone()));
    let sys_client = connect_as(&server, &s.sys, &s.sys, &KeyPair::new_user())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let unknown = KeyPair::new_account();
    let reply = tokio::time::timeout(
        STEP,
        sys_client.request(
            format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP", unknown.public_key()),
            "".into(),
        ),
    )
    .await
    .expect("request timed out")
    .expect("answered, not 'no responders'");
    assert!(reply.payload.is_empty(), "{reply:?}");
}

/// A directory nats-server wrote (`<key>.jwt` files) is read by the server
/// under test as it is: moving from nats-server keeps the accounts.
#[tokio::test]
async fn a_directory_nats_server_wrote_is_taken_over() {
    let s = setup();
    let late = KeyPair::new_account();
    {
        let reference = match Server::try_start(
            natrix_conformance::Target::NatsServer,
            ServerOptions::new().config(s.config.clone()),
        ) {
            Ok(server) => server,
            Err(natrix_conformance::StartError::Spawn(path, e)) => {
                eprintln!("skipped: no nats-server at {}: {e}", path.display());
                return;
            }
            Err(e) => panic!("starting nats-server: {e}"),
        };
        let sys_client = connect_as(&reference, &s.sys, &s.sys, &KeyPair::new_user())
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", reference.log()));
        let added = jwt::account(&s.op, &late, json!({}));
        let answer = request(&sys_client, "$SYS.REQ.CLAIMS.UPDATE".into(), added).await;
        assert_eq!(outcome(&answer)["data"]["code"], 200, "{answer}");
    }
    let server = Server::start(ServerOptions::new().config(s.config.clone()));
    let client = connect_as(&server, &late, &late, &KeyPair::new_user())
        .await
        .unwrap_or_else(|e| panic!("the account nats-server stored: {e}\n{}", server.log()));
    sync(&client).await;
}

#[tokio::test]
async fn a_full_store_refuses_new_accounts() {
    let mut s = setup();
    // The two preloaded accounts fill it.
    s.config = s.config.replace("type: full,", "type: full, limit: 2,");
    let server = Server::start(ServerOptions::new().config(s.config.clone()));
    let sys_client = connect_as(&server, &s.sys, &s.sys, &KeyPair::new_user())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let late = KeyPair::new_account();
    let answer = request(
        &sys_client,
        "$SYS.REQ.CLAIMS.UPDATE".into(),
        jwt::account(&s.op, &late, json!({})),
    )
    .await;
    assert_eq!(
        outcome(&answer),
        json!({"error": {"account": late.public_key(), "code": 500, "description": "jwt update resulted in error - jwt store is full"}})
    );
    let updated = newer_account(&s.op, &s.acc, json!({}), 1_700_000_100);
    let answer = request(&sys_client, "$SYS.REQ.CLAIMS.UPDATE".into(), updated).await;
    assert_eq!(
        outcome(&answer)["data"]["code"],
        200,
        "a stored account still updates: {answer}"
    );
}

#[tokio::test]
async fn an_invalid_account_jwt_is_refused() {
    let s = setup();
    let server = Server::start(ServerOptions::new().config(s.config.clone()));
    let sys_client = connect_as(&server, &s.sys, &s.sys, &KeyPair::new_user())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let late = KeyPair::new_account();
    let invalid = newer_account(
        &s.op,
        &late,
        json!({
            "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": 0, "wildcards": true, "conn": -1, "leaf": -1},
            "exports": [{"name": "x", "subject": "x", "type": "stream"}]
        }),
        1_700_000_100,
    );
    for subject in [
        "$SYS.REQ.CLAIMS.UPDATE".to_owned(),
        format!("$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE", s.acc.public_key()),
    ] {
        let answer = request(&sys_client, subject, invalid.clone()).await;
        assert_eq!(
            outcome(&answer),
            json!({"error": {"account": late.public_key(), "code": 500, "description": "jwt validation failed - validation errors: [the account contains more exports than allowed by the operator]"}}),
            "validated before the subject is compared"
        );
    }
}

/// Going natrix → nats-server → the server under test: the directory the
/// server under test wrote is nats-server's layout, so nats-server uses the
/// updated account; the JWT nats-server then stores (issued later) wins
/// when the server under test takes the directory back.
#[tokio::test]
async fn nats_server_takes_over_a_directory_and_hands_it_back() {
    let s = setup();
    let (first, second) = (KeyPair::new_account(), KeyPair::new_account());
    let dir = s._dir.path().join("jwt");
    {
        let server = Server::start(ServerOptions::new().config(s.config.clone()));
        let sys_client = connect_as(&server, &s.sys, &s.sys, &KeyPair::new_user())
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
        let updated = newer_account(
            &s.op,
            &s.acc,
            json!({"signing_keys": [first.public_key()]}),
            1_700_000_100,
        );
        let answer = request(&sys_client, "$SYS.REQ.CLAIMS.UPDATE".into(), updated).await;
        assert_eq!(outcome(&answer)["data"]["code"], 200, "{answer}");
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the resolver directory")
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    assert!(
        names.iter().all(|n| n.ends_with(".jwt")),
        "nats-server's layout only: {names:?}"
    );
    {
        let reference = match Server::try_start(
            natrix_conformance::Target::NatsServer,
            ServerOptions::new().config(s.config.clone()),
        ) {
            Ok(server) => server,
            Err(natrix_conformance::StartError::Spawn(path, e)) => {
                eprintln!("skipped: no nats-server at {}: {e}", path.display());
                return;
            }
            Err(e) => panic!("starting nats-server: {e}"),
        };
        let by_first = connect_as(&reference, &first, &s.acc, &KeyPair::new_user())
            .await
            .unwrap_or_else(|e| {
                panic!("nats-server uses the updated JWT: {e}\n{}", reference.log())
            });
        sync(&by_first).await;
        let sys_client = connect_as(&reference, &s.sys, &s.sys, &KeyPair::new_user())
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", reference.log()));
        let later = newer_account(
            &s.op,
            &s.acc,
            json!({"signing_keys": [second.public_key()]}),
            1_700_000_200,
        );
        let answer = request(&sys_client, "$SYS.REQ.CLAIMS.UPDATE".into(), later).await;
        assert_eq!(outcome(&answer)["data"]["code"], 200, "{answer}");
    }
    let server = Server::start(ServerOptions::new().config(s.config.clone()));
    let by_second = connect_as(&server, &second, &s.acc, &KeyPair::new_user())
        .await
        .unwrap_or_else(|e| panic!("the JWT nats-server stored: {e}\n{}", server.log()));
    sync(&by_second).await;
    assert!(
        connect_as(&server, &first, &s.acc, &KeyPair::new_user())
            .await
            .is_err(),
        "the older JWT is not back"
    );
}
