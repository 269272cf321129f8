//! Command-line flags, with Go `flag` package rules and nats-server's texts
//! (compared with `nats-server 2.15.1` run with the same arguments).

use natrix_core::config::{
    apply_overrides, load, parse_args, CliCommand, CliError, ConfigError, MemorySource, Overrides,
    ServerOptions, SignalCommand, USAGE,
};

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn run(list: &[&str]) -> (Option<String>, Overrides) {
    match parse_args(&args(list)) {
        Ok(CliCommand::Run {
            config_file,
            overrides,
        }) => (config_file, overrides),
        other => panic!("{list:?}: expected Run, got {other:?}"),
    }
}

fn options(list: &[&str]) -> ServerOptions {
    let (_, overrides) = run(list);
    let mut opts = ServerOptions::default();
    apply_overrides(&mut opts, &overrides).expect("applies");
    opts
}

fn cli_error(list: &[&str]) -> CliError {
    parse_args(&args(list)).expect_err("must fail")
}

#[test]
fn short_long_and_double_dash_spellings() {
    for list in [
        &["-a", "127.0.0.1", "-p", "4333", "-n", "srv"][..],
        &["--addr", "127.0.0.1", "--port", "4333", "--name", "srv"],
        &["-net=127.0.0.1", "-port=4333", "--server_name=srv"],
    ] {
        let o = options(list);
        assert_eq!(
            (o.host.as_str(), o.port, o.server_name.as_deref()),
            ("127.0.0.1", 4333, Some("srv")),
            "{list:?}"
        );
    }
}

#[test]
fn values_may_start_with_a_dash() {
    assert_eq!(options(&["-p", "-1"]).port, -1);
    assert_eq!(options(&["-m", "-1"]).http_port, -1);
    assert_eq!(options(&["-ms", "8443"]).https_port, 8443);
    assert_eq!(
        options(&["--http_port=0x10"]).http_port,
        16,
        "Go integer syntax"
    );
}

#[test]
fn booleans_and_log_combinations() {
    let o = options(&["-D", "-V"]);
    assert!(o.debug && o.trace && !o.trace_verbose);
    let o = options(&["-DV"]);
    assert!(o.debug && o.trace);
    let o = options(&["-VV"]);
    assert!(!o.debug && o.trace && o.trace_verbose);
    let o = options(&["-DVV"]);
    assert!(o.debug && o.trace && o.trace_verbose);
    let o = options(&["-D=false", "-DV"]);
    assert!(o.debug, "combined flags apply after single ones");
    let o = options(&["-DV=false", "-V"]);
    assert!(!o.trace, "-DV=false wins over -V as in nats-server");
    let o = options(&["-T=false", "--logtime_utc", "-s"]);
    assert!(!o.logtime && o.logtime_utc && o.syslog);
    // A boolean never takes the next argument.
    let (_, overrides) = run(&["-D", "-p", "5"]);
    assert_eq!((overrides.debug, overrides.port), (Some(true), Some(5)));
}

#[test]
fn files_jetstream_and_auth() {
    let o = options(&[
        "-l",
        "/tmp/n.log",
        "-P",
        "/tmp/n.pid",
        "--ports_file_dir",
        "/tmp",
        "-js",
        "-sd",
        "/data",
        "--user",
        "u",
        "--pass",
        "p",
        "--auth",
        "tok",
        "--client_advertise",
        "nats.example.com:4222",
        "-r",
        "udp://localhost:514",
        "--max_traced_msg_len",
        "100",
        "--log_size_limit",
        "1000",
    ]);
    assert_eq!(o.log_file.as_deref(), Some("/tmp/n.log"));
    assert_eq!(o.pid_file.as_deref(), Some("/tmp/n.pid"));
    assert_eq!(o.ports_file_dir.as_deref(), Some("/tmp"));
    assert!(o.jetstream);
    assert_eq!(o.store_dir.as_deref(), Some("/data"));
    assert_eq!(o.authorization.user.as_deref(), Some("u"));
    assert_eq!(o.authorization.password.as_deref(), Some("p"));
    assert_eq!(o.authorization.token.as_deref(), Some("tok"));
    assert_eq!(o.client_advertise.as_deref(), Some("nats.example.com:4222"));
    assert_eq!(o.remote_syslog.as_deref(), Some("udp://localhost:514"));
    assert_eq!(o.max_traced_msg_len, 100);
    assert_eq!(o.log_size_limit_bytes, 1000);
}

#[test]
fn tls_flags() {
    let tls = options(&["--tls", "--tlscert", "c.pem", "--tlskey", "k.pem"])
        .tls
        .expect("tls");
    assert_eq!(
        (
            tls.cert_file.as_deref(),
            tls.key_file.as_deref(),
            tls.verify
        ),
        (Some("c.pem"), Some("k.pem"), false)
    );
    let tls = options(&["--tlsverify", "--tlscert=c", "--tlskey=k", "--tlscacert=ca"])
        .tls
        .expect("tls");
    assert!(tls.verify);
    assert_eq!(tls.ca_file.as_deref(), Some("ca"));

    let (_, overrides) = run(&["--tls"]);
    let err = apply_overrides(&mut ServerOptions::default(), &overrides).expect_err("no cert");
    assert_eq!(
        err.to_string(),
        "TLS Server certificate must be present and valid"
    );
    let (_, overrides) = run(&["--tlscert", "c"]);
    let err = apply_overrides(&mut ServerOptions::default(), &overrides).expect_err("no key");
    assert_eq!(
        err.to_string(),
        "TLS Server private key must be present and valid"
    );

    // --tls=false turns off TLS from the file.
    let source = MemorySource::new().with_file("t.conf", "tls { cert_file: c, key_file: k }\n");
    let loaded = load(
        &args(&["-c", "t.conf", "--tls=false", "--tlscert", "x"]),
        &source,
        &natrix_core::auth::verify_operators,
    )
    .expect("loads");
    assert!(loaded.options.tls.is_none());
}

#[test]
fn commands() {
    assert_eq!(parse_args(&args(&["-v"])), Ok(CliCommand::ShowVersion));
    assert_eq!(
        parse_args(&args(&["--version"])),
        Ok(CliCommand::ShowVersion)
    );
    assert_eq!(parse_args(&args(&["version"])), Ok(CliCommand::ShowVersion));
    assert_eq!(parse_args(&args(&["-h"])), Ok(CliCommand::ShowHelp));
    assert_eq!(
        parse_args(&args(&["--help", "-p", "1"])),
        Ok(CliCommand::ShowHelp)
    );
    assert_eq!(parse_args(&args(&["help"])), Ok(CliCommand::ShowHelp));
    assert_eq!(
        parse_args(&args(&["--help_tls"])),
        Ok(CliCommand::ShowTlsHelp)
    );
    assert!(matches!(
        parse_args(&args(&["-t", "-c", "a.conf"])),
        Ok(CliCommand::TestConfig { config_file: Some(ref c), .. }) if c == "a.conf"
    ));
    assert_eq!(run(&["--config", "b.conf"]).0.as_deref(), Some("b.conf"));
    assert_eq!(run(&[]).0, None);
    // "--" ends the flags; what follows is a positional argument.
    assert_eq!(parse_args(&args(&["--", "help"])), Ok(CliCommand::ShowHelp));
}

#[test]
fn signals() {
    assert_eq!(
        parse_args(&args(&["--signal", "reload"])),
        Ok(CliCommand::Signal {
            command: SignalCommand::Reload,
            pid: None
        })
    );
    assert_eq!(
        parse_args(&args(&["-sl", "stop=1234"])),
        Ok(CliCommand::Signal {
            command: SignalCommand::Stop,
            pid: Some("1234".into())
        })
    );
    assert_eq!(
        parse_args(&args(&["--signal=ldm=/var/run/nats.pid"])),
        Ok(CliCommand::Signal {
            command: SignalCommand::LameDuck,
            pid: Some("/var/run/nats.pid".into())
        })
    );
    for (name, command) in [
        ("quit", SignalCommand::Quit),
        ("term", SignalCommand::Term),
        ("reopen", SignalCommand::Reopen),
    ] {
        assert_eq!(
            parse_args(&args(&["--signal", name])),
            Ok(CliCommand::Signal { command, pid: None })
        );
    }
    assert_eq!(
        cli_error(&["--signal", "a=b=c=d"]).to_string(),
        "invalid signal parameters: [c d]"
    );
    assert_eq!(
        cli_error(&["--signal", "bogus"]).to_string(),
        "unknown signal \"bogus\""
    );
}

#[test]
fn errors_match_go_flag_texts() {
    let cases: [(&[&str], &str); 7] = [
        (&["-xyz"], "flag provided but not defined: -xyz"),
        (&["--xyz=1"], "flag provided but not defined: -xyz"),
        (
            &["-p", "abc"],
            "invalid value \"abc\" for flag -p: parse error",
        ),
        (&["-D=x"], "invalid boolean value \"x\" for -D: parse error"),
        (&["-p"], "flag needs an argument: -p"),
        (&["---p"], "bad flag syntax: ---p"),
        (&["foo"], "unrecognized command: \"foo\""),
    ];
    for (list, text) in cases {
        assert_eq!(cli_error(list).to_string(), text, "{list:?}");
    }
    // nats-server prints the usage and exits 0 after a flag error.
    let err = cli_error(&["-xyz"]);
    assert!(err.shows_usage());
    assert_eq!(err.exit_code(), 0);
    let err = cli_error(&["foo"]);
    assert!(!err.shows_usage());
    assert_eq!(err.exit_code(), 1);
    assert!(matches!(
        load(&args(&["-xyz"]), &MemorySource::new(), &natrix_core::auth::verify_operators),
        Err(ConfigError::Cli(_))
    ));
}

#[test]
fn parsing_stops_at_the_first_non_flag() {
    assert_eq!(
        cli_error(&["-p", "1", "extra", "-D"]).to_string(),
        "unrecognized command: \"extra\""
    );
    // A single "-" is not a flag either.
    assert_eq!(cli_error(&["-"]).to_string(), "unrecognized command: \"-\"");
}

#[test]
fn unsupported_cluster_flags_are_accepted_with_a_warning() {
    let loaded = load(
        &args(&[
            "--cluster",
            "nats://127.0.0.1:6222",
            "--routes",
            "nats://a:6222",
            "--cluster_name",
            "c",
        ]),
        &MemorySource::new(),
        &natrix_core::auth::verify_operators,
    )
    .expect("accepted");
    assert_eq!(loaded.warnings.len(), 3);
    assert!(loaded.warnings[0].contains("--routes"));
}

#[test]
fn usage_lists_every_flag_group() {
    for section in [
        "Server Options:",
        "Logging Options:",
        "JetStream Options:",
        "Authorization Options:",
        "TLS Options:",
        "Cluster Options:",
        "Common Options:",
    ] {
        assert!(USAGE.contains(section), "{section}");
    }
    for flag in [
        "--addr",
        "--port",
        "--http_port",
        "--https_port",
        "--config",
        "--signal",
        "--ports_file_dir",
        "-DVV",
        "--store_dir",
        "--tlscacert",
        "--help_tls",
    ] {
        assert!(USAGE.contains(flag), "{flag}");
    }
}
