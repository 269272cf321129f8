//! The reload diff: what nats-server refuses, in its words, and the
//! `Reloaded: …` lines of what it applies.

use std::time::Duration;

use super::diff::{diff, ReloadError};
use crate::config::ServerOptions;

fn refused(change: impl FnOnce(&mut ServerOptions)) -> String {
    let old = ServerOptions::default();
    let mut new = old.clone();
    change(&mut new);
    diff(&old, &new).expect_err("refused").to_string()
}

fn lines(change: impl FnOnce(&mut ServerOptions)) -> Vec<String> {
    let old = ServerOptions::default();
    let mut new = old.clone();
    change(&mut new);
    diff(&old, &new).expect("reloadable")
}

#[test]
fn settings_nats_server_cannot_reload_are_refused_in_its_words() {
    assert_eq!(refused(|o| o.port = 4333), "config reload not supported for Port: old=4222, new=4333");
    assert_eq!(refused(|o| o.host = "127.0.0.1".into()), "config reload not supported for Host: old=0.0.0.0, new=127.0.0.1");
    assert_eq!(
        refused(|o| o.server_name = Some("x".into())),
        "config reload not supported for ServerName: old=, new=x"
    );
    assert_eq!(
        refused(|o| o.max_pending_bytes = 2_000_000),
        "config reload not supported for MaxPending: old=67108864, new=2000000"
    );
    // nats-server validates the new options before comparing them.
    assert_eq!(
        refused(|o| o.max_pending_bytes = 1),
        "max_payload (1048576) cannot be higher than max_pending (1)"
    );
    assert_eq!(refused(|o| o.max_subscriptions = 20), "config reload not supported for MaxSubs: old=0, new=20");
    assert_eq!(
        refused(|o| o.lame_duck_duration = Duration::from_secs(30)),
        "config reload not supported for LameDuckDuration: old=2m0s, new=30s"
    );
    assert_eq!(refused(|o| o.http_port = 8222), "config reload not supported for HTTPPort: old=0, new=8222");
    assert_eq!(
        refused(|o| o.no_auth_user = Some("a".into())),
        "config reload not supported for NoAuthUser: old=, new=a"
    );
    assert_eq!(
        refused(|o| o.resolver = Some(crate::config::Resolver::Memory)),
        "config reload does not support moving to or from an account resolver"
    );
    // The first refusal in nats-server's order of options is the one reported.
    assert!(refused(|o| {
        o.max_pending_bytes = 2_000_000;
        o.server_name = Some("x".into());
    })
    .contains("ServerName"));
}

#[test]
fn the_jetstream_store_directory_cannot_move() {
    let old = ServerOptions { jetstream: true, store_dir: Some("/a".into()), ..ServerOptions::default() };
    let new = ServerOptions { store_dir: Some("/b".into()), ..old.clone() };
    assert_eq!(
        diff(&old, &new).unwrap_err(),
        ReloadError::Refused("config reload not supported for jetstream storage directory")
    );
}

#[test]
fn no_auth_user_may_only_go_with_its_user() {
    let mut old = ServerOptions { no_auth_user: Some("a".into()), ..ServerOptions::default() };
    old.authorization.users.push(crate::config::User { user: "a".into(), ..Default::default() });
    let mut new = old.clone();
    new.no_auth_user = None;
    assert!(diff(&old, &new).unwrap_err().to_string().contains("NoAuthUser"));
    new.authorization.users.clear();
    assert!(diff(&old, &new).is_ok());
}

#[test]
fn reloadable_changes_are_logged_as_nats_server_does() {
    let got = lines(|o| {
        o.debug = true;
        o.max_connections = 5;
        o.ping_interval = Duration::from_secs(60);
        o.ping_max = 3;
        o.max_control_line_bytes = 2048;
        o.max_payload_bytes = 2000;
        o.write_deadline = Duration::from_secs(3);
    });
    assert_eq!(
        got,
        [
            "Reloaded: debug = true",
            "Reloaded: max_connections = 5",
            "Reloaded: authorization users",
            "Reloaded: accounts",
            "Reloaded: ping_interval = 1m0s",
            "Reloaded: ping_max = 3",
            "Reloaded: max_control_line = 2048",
            "Reloaded: max_payload = 2000",
            "Reloaded: write_deadline = 3s",
        ]
    );
    // Users and accounts are reloaded even when nothing changed.
    assert_eq!(lines(|_| {}), ["Reloaded: authorization users", "Reloaded: accounts"]);
    assert!(lines(|o| o.authorization.token = Some("t".into())).contains(&"Reloaded: authorization token".to_owned()));
    assert!(lines(|o| o.tls = Some(crate::config::TlsOptions::default())).contains(&"Reloaded: tls = enabled".to_owned()));
}
