//! Monitoring documents rendered by the core for a live server.

use bytes::Bytes;
use natrix_core::account::AccountConfig;
use natrix_core::config::{ServerOptions, User};
use natrix_core::monitor::{self, ProcessStats};
use natrix_core::{Instant, Server, UnixNanos};

fn get(server: &mut Server, path: &str, query: &str) -> serde_json::Value {
    let r = monitor::handle(server, Instant::ZERO, UnixNanos(0), &ProcessStats::default(), path, query);
    assert_eq!(r.status, 200, "{path}?{query}: {}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

fn connect(server: &mut Server, wire: &str) {
    let conn = server.handle_connected(Instant::ZERO, UnixNanos(0), "127.0.0.1:5000".parse().unwrap());
    server.handle_received(Instant::ZERO, conn, Bytes::copy_from_slice(wire.as_bytes()));
    while server.poll_output().is_some() {}
}

#[test]
fn accstatz_and_connz_filter_by_account() {
    let mut opts = ServerOptions::default();
    opts.accounts.push(AccountConfig { name: "A".into(), ..AccountConfig::default() });
    opts.authorization.users.push(User {
        user: "a".into(),
        password: Some("pa".into()),
        account: Some("A".into()),
        ..User::default()
    });
    opts.authorization.users.push(User { user: "g".into(), password: Some("pg".into()), ..User::default() });
    let mut server = Server::new(opts, [3; 32], Instant::ZERO, UnixNanos(0));
    connect(&mut server, "CONNECT {\"user\":\"a\",\"pass\":\"pa\",\"verbose\":false}\r\nSUB x 1\r\nPUB x 2\r\nhi\r\n");
    connect(&mut server, "CONNECT {\"user\":\"g\",\"pass\":\"pg\",\"verbose\":false}\r\n");

    let stats = get(&mut server, "/accstatz", "");
    let names: Vec<&str> = stats["account_statz"].as_array().unwrap().iter().map(|a| a["acc"].as_str().unwrap()).collect();
    assert!(names.contains(&"A") && names.contains(&"$G") && !names.contains(&"$SYS"), "{names:?}");
    let a = &get(&mut server, "/accstatz", "acc=A")["account_statz"][0];
    assert_eq!((a["conns"].as_u64(), a["num_subscriptions"].as_u64()), (Some(1), Some(1)));
    assert_eq!((a["sent"]["msgs"].as_u64(), a["received"]["msgs"].as_u64()), (Some(1), Some(1)));
    let all = get(&mut server, "/accstatz", "unused=1");
    assert!(all["account_statz"].as_array().unwrap().iter().any(|a| a["acc"] == "$SYS"));

    let only_a = get(&mut server, "/connz", "acc=A");
    assert_eq!(only_a["total"], 1);
    assert!(only_a["connections"][0].get("account").is_none(), "who is connected shows only with auth");
    assert!(only_a["connections"][0].get("authorized_user").is_none());
    let with_auth = &get(&mut server, "/connz", "acc=A&auth=1")["connections"][0];
    assert_eq!((&with_auth["account"], &with_auth["authorized_user"]), (&"A".into(), &"a".into()));
    assert_eq!(get(&mut server, "/connz", "acc=%24G")["total"], 1);
    assert_eq!(get(&mut server, "/connz", "acc=nope")["total"], 0);

    let detail = get(&mut server, "/connz", "acc=A&subs=detail");
    let sub = &detail["connections"][0]["subscriptions_list_detail"][0];
    assert_eq!((sub["subject"].as_str(), sub["sid"].as_str(), sub["msgs"].as_u64()), (Some("x"), Some("1"), Some(1)));
    let subsz = get(&mut server, "/subsz", "subs=1");
    assert_eq!(subsz["total"], 1);
    assert_eq!(subsz["subscriptions_list"][0]["account"], "A");
    let page = get(&mut server, "/connz", "offset=1&limit=1");
    assert_eq!((page["total"].as_u64(), page["num_connections"].as_u64(), page["limit"].as_u64()), (Some(2), Some(1), Some(1)));
}

/// N4: `/metrics` in Prometheus' text format, with prometheus-nats-exporter's names.
#[test]
fn metrics_in_prometheus_text_format() {
    let mut opts = ServerOptions::default();
    opts.accounts.push(AccountConfig { name: "A".into(), ..AccountConfig::default() });
    opts.authorization.users.push(User {
        user: "a".into(),
        password: Some("pa".into()),
        account: Some("A".into()),
        ..User::default()
    });
    let mut server = Server::new(opts, [3; 32], Instant::ZERO, UnixNanos(0));
    connect(&mut server, "CONNECT {\"user\":\"a\",\"pass\":\"pa\",\"verbose\":false}\r\nSUB x 1\r\nPUB x 2\r\nhi\r\nPUB x 3\r\nhey\r\n");
    let r = monitor::handle(&mut server, Instant::ZERO, UnixNanos(0), &ProcessStats::default(), "/metrics", "");
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/plain; version=0.0.4"), "{}", r.content_type);
    let body = r.body;
    let sample = |name: &str| -> f64 {
        body.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{body}"))
    };
    assert!(body.contains("# TYPE gnatsd_varz_in_msgs counter"), "{body}");
    assert!(body.contains("# TYPE gnatsd_varz_connections gauge"), "{body}");
    assert_eq!(sample("gnatsd_varz_in_msgs"), 2.0);
    assert_eq!(sample("gnatsd_varz_in_bytes"), 5.0);
    assert_eq!(sample("gnatsd_varz_connections"), 1.0);
    assert!(body.contains("gnatsd_accstatz_received_msgs{server_id=\"") && body.contains(",account=\"A\"} 2"), "{body}");
    // Every line is a comment or `name{labels} value`.
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(series.contains('{') && series.ends_with('}') && value.parse::<f64>().is_ok(), "{line}");
    }
}
