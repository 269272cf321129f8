//! Realistic nats-server config files (tests/configs/) loaded into
//! `ServerOptions`. Every fixture except the TLS one (whose certificate
//! files do not exist) and the include cycle passes `nats-server -t`, and the
//! sizes and durations were compared with the real server's `/varz`.

use std::time::Duration;

use natrix_core::config::{
    load, ConfigError, Loaded, MemorySource, ResponsePermission, ServerOptions, SubjectPermission,
    ValueKind,
};

/// Every fixture, compiled in (the core's tests do no file I/O either).
const FIXTURES: &[(&str, &str)] = &[
    ("auth_users.conf", include_str!("configs/auth_users.conf")),
    ("basic.conf", include_str!("configs/basic.conf")),
    (
        "block_string.conf",
        include_str!("configs/block_string.conf"),
    ),
    ("cycle_a.conf", include_str!("configs/cycle_a.conf")),
    ("cycle_b.conf", include_str!("configs/cycle_b.conf")),
    ("env.conf", include_str!("configs/env.conf")),
    ("jetstream.conf", include_str!("configs/jetstream.conf")),
    ("json_style.conf", include_str!("configs/json_style.conf")),
    (
        "main_with_include.conf",
        include_str!("configs/main_with_include.conf"),
    ),
    ("tls.conf", include_str!("configs/tls.conf")),
    ("unsupported.conf", include_str!("configs/unsupported.conf")),
    (
        "includes/limits.conf",
        include_str!("configs/includes/limits.conf"),
    ),
    (
        "includes/logging.conf",
        include_str!("configs/includes/logging.conf"),
    ),
    (
        "includes/nested.conf",
        include_str!("configs/includes/nested.conf"),
    ),
    (
        "includes/users.conf",
        include_str!("configs/includes/users.conf"),
    ),
];

fn fixtures() -> MemorySource {
    FIXTURES
        .iter()
        .fold(MemorySource::new(), |source, (name, text)| {
            source.with_file(name, text)
        })
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn load_fixture(name: &str) -> Loaded {
    load(&args(&["-c", name]), &fixtures(), &natrix_core::auth::verify_operators).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn load_err(name: &str, source: &MemorySource) -> String {
    load(&args(&["-c", name]), source, &natrix_core::auth::verify_operators)
        .expect_err("must fail")
        .to_string()
}

#[test]
fn basic_server_settings() {
    let loaded = load_fixture("basic.conf");
    let o = &loaded.options;
    assert_eq!(o.host, "127.0.0.1");
    assert_eq!(o.port, 4333);
    assert_eq!(o.server_name.as_deref(), Some("natrix-1"));
    assert_eq!(o.http_port, 8333);
    assert_eq!(o.max_payload_bytes, 2 * 1024 * 1024);
    assert_eq!(o.max_control_line_bytes, 8192);
    assert_eq!(o.max_pending_bytes, 64_000_000);
    assert_eq!(o.max_connections, 1000);
    assert_eq!(o.max_subscriptions, 500);
    assert_eq!(o.ping_interval, Duration::from_secs(30));
    assert_eq!(o.ping_max, 3);
    assert_eq!(o.write_deadline, Duration::from_millis(2500));
    assert_eq!(o.lame_duck_duration, Duration::from_secs(90));
    assert_eq!(o.lame_duck_grace_period, Duration::from_secs(5));
    assert!(!o.debug && o.trace && o.logtime && o.logtime_utc);
    assert_eq!(o.log_file.as_deref(), Some("/var/log/natrix.log"));
    assert_eq!(o.pid_file.as_deref(), Some("/var/run/natrix.pid"));
    assert_eq!(o.ports_file_dir.as_deref(), Some("/tmp"));
    assert!(!o.no_header_support && o.disable_sublist_cache);
    assert_eq!(o.max_closed_clients, 100);
    assert_eq!(o.config_file.as_deref(), Some("basic.conf"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn users_permissions_and_variables() {
    let loaded = load_fixture("auth_users.conf");
    let o = &loaded.options;
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(o.auth_timeout, Duration::from_millis(1500));
    let auth = &o.authorization;
    assert!(auth.is_required());
    let names: Vec<&str> = auth.users.iter().map(|u| u.user.as_str()).collect();
    assert_eq!(names, ["admin", "client", "monitor", "service", ""]);
    assert_eq!(auth.users[0].password.as_deref(), Some("s3cr3t"));
    // `$2a$…` is a bcrypt hash, not a variable.
    assert!(auth.users[1]
        .password
        .as_deref()
        .unwrap()
        .starts_with("$2a$11$3kID"));

    let default = auth.default_permissions.clone().expect("defaults");
    assert_eq!(
        default.publish,
        Some(SubjectPermission {
            allow: vec!["public.>".into()],
            deny: vec![]
        })
    );
    assert_eq!(
        auth.users[0].permissions.as_ref(),
        Some(&default),
        "defaults fill in"
    );

    let client = auth.users[1].permissions.as_ref().expect("client perms");
    let publish = client.publish.as_ref().expect("publish");
    assert_eq!(publish.allow, ["req.>", "events.*"]);
    assert_eq!(publish.deny, ["req.admin.>"]);
    let subscribe = client.subscribe.as_ref().expect("subscribe");
    assert!(subscribe.allow.is_empty());
    assert_eq!(subscribe.deny, ["secret.>"]);
    assert_eq!(
        client.allow_responses,
        Some(ResponsePermission {
            max_msgs: Some(5),
            expires: Some(Duration::from_secs(60))
        })
    );

    let monitor = auth.users[2].permissions.as_ref().expect("monitor perms");
    assert_eq!(
        monitor.subscribe.as_ref().unwrap().allow,
        ["$SYS.>", "monitor.*"]
    );

    let service = auth.users[3].permissions.as_ref().expect("service perms");
    assert_eq!(service.subscribe.as_ref().unwrap().allow, ["svc.* workers"]);
    assert_eq!(
        service.allow_responses,
        Some(ResponsePermission {
            max_msgs: Some(1),
            expires: Some(Duration::from_secs(120))
        }),
        "allow_responses: true is nats-server's defaults: one response within two minutes"
    );
    assert_eq!(
        service.publish,
        Some(SubjectPermission::default()),
        "responses turn off blanket publish"
    );

    assert_eq!(
        auth.users[4].nkey.as_deref(),
        Some("UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4")
    );
}

#[test]
fn tls_block() {
    let tls = load_fixture("tls.conf").options.tls.expect("tls");
    assert_eq!(tls.cert_file.as_deref(), Some("./certs/server-cert.pem"));
    assert_eq!(tls.key_file.as_deref(), Some("./certs/server-key.pem"));
    assert_eq!(tls.ca_file.as_deref(), Some("./certs/ca.pem"));
    assert!(tls.verify && !tls.verify_and_map && tls.handshake_first);
    assert_eq!(tls.timeout, Duration::from_secs(3));
}

#[test]
fn jetstream_block() {
    let o = load_fixture("jetstream.conf").options;
    assert!(o.jetstream);
    assert_eq!(o.store_dir.as_deref(), Some("/data/jetstream"));
    assert_eq!(o.jetstream_max_memory_bytes, Some(1_000_000_000));
    assert_eq!(o.jetstream_max_store_bytes, Some(10 << 30));
    assert_eq!(o.jetstream_domain.as_deref(), Some("hub"));
}

#[test]
fn includes_nest_and_resolve_relative_to_the_including_file() {
    let loaded = load_fixture("main_with_include.conf");
    let o = &loaded.options;
    assert_eq!(o.port, 4336);
    assert_eq!(o.max_payload_bytes, 512 * 1024);
    assert_eq!(o.ping_interval, Duration::from_secs(60));
    let users: Vec<&str> = o
        .authorization
        .users
        .iter()
        .map(|u| u.user.as_str())
        .collect();
    assert_eq!(users, ["alice", "bob"]);
    assert!(
        o.debug && o.trace,
        "includes/logging.conf includes ../includes/nested.conf"
    );
}

#[test]
fn include_cycle_is_an_error_not_a_crash() {
    let err = load_err("cycle_a.conf", &fixtures());
    assert!(
        err.contains("include cycle: cycle_a.conf -> cycle_b.conf -> cycle_a.conf"),
        "{err}"
    );
    assert!(err.starts_with("cycle_b.conf:1:"), "{err}");
}

#[test]
fn environment_variables_are_parsed_as_values() {
    let source = fixtures()
        .with_env("NATRIX_TEST_PORT", "4341")
        .with_env("NATRIX_TEST_NAME", "from-env")
        .with_env("NATRIX_TEST_MAX_PAYLOAD", "256K")
        .with_env("NATRIX_TEST_TOKEN", "t0k3n");
    let o = load(&args(&["-c", "env.conf"]), &source, &natrix_core::auth::verify_operators)
        .expect("env.conf")
        .options;
    assert_eq!(o.port, 4341);
    assert_eq!(o.server_name.as_deref(), Some("from-env"));
    assert_eq!(o.max_payload_bytes, 256_000);
    assert_eq!(o.authorization.token.as_deref(), Some("t0k3n"));

    let err = load_err("env.conf", &fixtures());
    assert_eq!(
        err,
        "env.conf:2:7: variable reference for 'NATRIX_TEST_PORT' on line 2 can not be found"
    );
}

#[test]
fn json_style_file() {
    let o = load_fixture("json_style.conf").options;
    assert_eq!(o.port, 4338);
    assert_eq!(o.server_name.as_deref(), Some("json"));
    assert_eq!(o.authorization.user.as_deref(), Some("u"));
    assert_eq!(o.auth_timeout, Duration::from_secs(3));
    assert!(o.jetstream);
}

#[test]
fn features_natrix_lacks_are_kept_and_warned_about() {
    let loaded = load_fixture("unsupported.conf");
    assert_eq!(loaded.options.port, 4339);
    assert_eq!(loaded.options.system_account.as_deref(), Some("SYS"));
    let warned: Vec<&str> = loaded
        .warnings
        .iter()
        .map(|w| w.split('"').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        warned,
        ["cluster", "leafnodes"]
    );
    // WebSocket and MQTT are supported now: read, not warned about.
    assert_eq!(loaded.options.websocket.port, 8080);
    assert!(loaded.options.mqtt.enabled());
    // Accounts are supported: their users join the authorization users.
    assert_eq!(loaded.options.accounts[0].name, "A");
    assert_eq!(loaded.options.authorization.users[0].account.as_deref(), Some("A"));
    assert!(
        loaded.warnings[0].starts_with("unsupported.conf:4:1: "),
        "{}",
        loaded.warnings[0]
    );
    let tree = loaded.tree.expect("tree kept");
    let cluster = tree.get("cluster").expect("cluster kept");
    let ValueKind::Map(cluster) = &cluster.kind else {
        panic!("cluster is a map")
    };
    assert_eq!(
        cluster.get("name").map(|v| &v.kind),
        Some(&ValueKind::String("c1".into()))
    );
}

#[test]
fn block_strings_keep_their_lines() {
    let o = load_fixture("block_string.conf").options;
    assert_eq!(o.pid_file.as_deref(), Some("\nmulti line\nname\n"));
}

fn load_text(text: &str) -> Result<Loaded, ConfigError> {
    load(
        &args(&["-c", "t.conf"]),
        &MemorySource::new().with_file("t.conf", text),
        &natrix_core::auth::verify_operators,
    )
}

fn error_text(text: &str) -> String {
    load_text(text).expect_err("must fail").to_string()
}

#[test]
fn unknown_fields_are_refused_with_position_like_nats_server() {
    // Texts and positions as `nats-server -t` prints them.
    assert_eq!(
        error_text("foo: 1\nport: 4333\n"),
        "t.conf:1:0: unknown field \"foo\""
    );
    assert_eq!(
        error_text("port: 4333\nfoo: 1\n  bar = 2\n"),
        "t.conf:2:1: unknown field \"foo\"\nt.conf:3:3: unknown field \"bar\""
    );
    assert_eq!(
        error_text("port 4333\nauthorization {\n  user: a\n  password: b\n  bogus: 1\n}\n"),
        "t.conf:5:3: unknown field \"bogus\""
    );
    let include = MemorySource::new()
        .with_file("j.conf", "port: 4333\ninclude ./inc.conf\n")
        .with_file("inc.conf", "zzz: 1\n");
    assert_eq!(
        load_err("j.conf", &include),
        "inc.conf:1:0: unknown field \"zzz\""
    );
}

#[test]
fn wrong_types_and_bad_values_carry_positions() {
    assert_eq!(
        error_text("port: \"abc\"\n"),
        "t.conf:1:0: expected an integer for \"port\", got string"
    );
    assert_eq!(
        error_text("port: 4333\nping_interval: 60\nwrite_deadline: \"abc\"\n"),
        "t.conf:2:1: invalid use of field \"ping_interval\": ping_interval should be converted to a duration\n\
         t.conf:3:1: error parsing write_deadline: time: invalid duration \"abc\""
    );
    assert_eq!(
        error_text("max_payload: 3GB\n"),
        "t.conf:1:0: max_payload value is too big"
    );
    assert_eq!(
        error_text("lame_duck_duration: \"10s\"\n"),
        "t.conf:1:0: invalid lame_duck_duration of 10s, minimum is 30 seconds"
    );
    assert_eq!(
        error_text("listen: \"nohost\"\n"),
        "t.conf:1:0: could not parse address string \"nohost\""
    );
    assert_eq!(
        error_text("authorization { user: a, token: b }\n"),
        "t.conf:1:0: Cannot have a user/pass and token"
    );
    assert_eq!(
        error_text("authorization { users: [ {password: x} ] }\n"),
        "t.conf:1:26: User entry requires a user"
    );
    assert_eq!(
        error_text("authorization {\n users: [{user: a, permissions: {publish: \"a..b\"}}]\n}\n"),
        "t.conf:2:34: subject \"a..b\" is not a valid subject"
    );
    assert_eq!(
        error_text("store_dir: /a\njetstream { store_dir: /b }\n"),
        "t.conf:2:13: Duplicate 'store_dir' configuration"
    );
    assert_eq!(
        error_text("tls { cert_file: a, bogus: 1 }\n"),
        "t.conf:1:20: error parsing tls config, unknown field \"bogus\""
    );
}

#[test]
fn warnings_are_returned_and_fail_only_under_test_mode() {
    let source = MemorySource::new().with_file("w.conf", "ping_interval: 60\n");
    let loaded = load(&args(&["-c", "w.conf"]), &source, &natrix_core::auth::verify_operators).expect("warnings do not stop the server");
    assert_eq!(loaded.options.ping_interval, Duration::from_secs(60));
    assert_eq!(
        loaded.warnings,
        ["w.conf:1:0: invalid use of field \"ping_interval\": ping_interval should be converted to a duration"]
    );
    let err = load(&args(&["-t", "-c", "w.conf"]), &source, &natrix_core::auth::verify_operators).expect_err("-t is strict");
    assert!(
        matches!(err, ConfigError::Invalid { ref errors, ref warnings } if errors.is_empty() && warnings.len() == 1)
    );
}

#[test]
fn integer_durations_are_seconds() {
    let source = MemorySource::new().with_file("d.conf", "ping_interval: 2m\n");
    // Unquoted `2m` is the integer 2,000,000 (m is the mega suffix), as in nats-server.
    let loaded = load(&args(&["-c", "d.conf"]), &source, &natrix_core::auth::verify_operators).expect("loads with a warning");
    assert_eq!(loaded.options.ping_interval, Duration::from_secs(2_000_000));
}

#[test]
fn flags_win_over_the_file() {
    let loaded = load(
        &args(&[
            "-c",
            "basic.conf",
            "-p",
            "-1",
            "-a",
            "0.0.0.0",
            "--debug",
            "-V=false",
            "--user",
            "x",
            "--pass",
            "y",
        ]),
        &fixtures(),
        &natrix_core::auth::verify_operators,
    )
    .expect("loads");
    let o = &loaded.options;
    assert_eq!(o.port, -1);
    assert_eq!(o.host, "0.0.0.0");
    assert!(o.debug && !o.trace);
    assert_eq!(o.authorization.user.as_deref(), Some("x"));
    assert_eq!(o.authorization.password.as_deref(), Some("y"));
    assert_eq!(o.max_payload_bytes, 2 * 1024 * 1024, "file values stay");
}

#[test]
fn an_empty_file_warns_and_fails_the_test() {
    let source = MemorySource::new().with_file("empty.conf", "# nothing\n");
    let loaded = load(&args(&["-c", "empty.conf"]), &source, &natrix_core::auth::verify_operators).expect("runs");
    assert_eq!(
        loaded.warnings,
        ["empty.conf: config has no values or is empty"]
    );
    let err = load(&args(&["-t", "-c", "empty.conf"]), &source, &natrix_core::auth::verify_operators).expect_err("-t refuses it");
    assert_eq!(
        err.to_string(),
        "empty.conf: config has no values or is empty"
    );
}

#[test]
fn no_config_means_defaults() {
    let loaded = load(&[], &MemorySource::new(), &natrix_core::auth::verify_operators).expect("defaults");
    assert_eq!(loaded.options, ServerOptions::default());
    assert!(loaded.tree.is_none());
    assert_eq!(
        load(&args(&["-t"]), &MemorySource::new(), &natrix_core::auth::verify_operators)
            .expect_err("-t needs -c")
            .to_string(),
        "must specify [-c, --config] option to check configuration file syntax"
    );
    assert_eq!(
        load(&args(&["-c", "missing.conf"]), &MemorySource::new(), &natrix_core::auth::verify_operators)
            .expect_err("missing")
            .to_string(),
        "error opening config file: open missing.conf: no such file or directory"
    );
}

#[test]
fn account_jetstream_limits_are_read_with_nats_server_aliases() {
    let text = "accounts {\n A { jetstream { max_mem: 1M, disk: 2G, streams: 3, consumers: 4, max_bytes_required: true, \
                mem_max_stream_bytes: 5, store_max_stream_bytes: 6, max_ack_pending: 7 } }\n \
                B { jetstream: enabled }\n C { jetstream: disabled }\n D {}\n}\n";
    let o = load_text(text).expect("loads").options;
    let limits = |name: &str| o.accounts.iter().find(|a| a.name == name).unwrap().jetstream.clone();
    let a = limits("A").expect("on");
    assert_eq!((a.max_memory, a.max_storage, a.max_streams, a.max_consumers), (1_000_000, 2_000_000_000, 3, 4));
    assert!(a.max_bytes_required);
    assert_eq!((a.memory_max_stream_bytes, a.storage_max_stream_bytes, a.max_ack_pending), (5, 6, 7));
    assert_eq!(limits("B"), Some(natrix_core::jetstream::api::AccountLimits::default()));
    assert_eq!(limits("C"), None);
    assert_eq!(limits("D"), None);
    assert_eq!(
        error_text("accounts { A { jetstream { max_streams: many } } }\n"),
        "t.conf:1:27: Expected a parseable size for \"max_streams\", got many"
    );
}

#[test]
fn jetstream_sync_interval_is_always_or_a_duration() {
    use natrix_core::config::JetStreamSync;
    let sync = |text: &str| load_text(text).expect("loads").options.jetstream_sync;
    assert_eq!(sync("jetstream { sync_interval: always }\n"), Some(JetStreamSync::Always));
    assert_eq!(sync("jetstream { sync: \"2m\" }\n"), Some(JetStreamSync::Interval(Duration::from_secs(120))));
    assert_eq!(sync("jetstream { strict: true }\n"), None);
    assert!(error_text("jetstream { sync_interval: \"soon\" }\n").contains("sync_interval"));
}

#[test]
fn max_payload_must_fit_in_max_pending() {
    let source = MemorySource::new().with_file("p.conf", "max_pending: 65536\nmax_payload: 65537\n");
    let err = load_err("p.conf", &source);
    assert!(err.contains("p.conf:2:") && err.contains("max_payload (65537) cannot be higher than max_pending (65536)"), "{err}");
    // The default max_payload (1 MiB) against a smaller max_pending, pointed at where max_pending is set.
    let source = MemorySource::new().with_file("d.conf", "port: 4222\nmax_pending: 65536\n");
    let err = load_err("d.conf", &source);
    assert!(err.contains("d.conf:2:") && err.contains("max_payload (1048576) cannot be higher"), "{err}");
    let source = MemorySource::new().with_file("ok.conf", "max_pending: 65536\nmax_payload: 65536\n");
    load(&args(&["-c", "ok.conf"]), &source, &natrix_core::auth::verify_operators).expect("equal is allowed");
}
