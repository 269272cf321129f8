//! Command-line behaviour: random ports, the ports file, `-t` config test.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use natrix_conformance::{run_to_exit, Target, TempDir};

#[test]
fn random_port_and_ports_file() {
    let a = Server::start(ServerOptions::new().monitoring());
    let b = Server::start(ServerOptions::new());
    assert_ne!(a.client_port, 0);
    assert_ne!(a.client_port, 4222, "-p -1 must pick a random port");
    assert_ne!(a.client_port, b.client_port);
    assert!(
        a.client_url.starts_with("nats://127.0.0.1:"),
        "{}",
        a.client_url
    );
    let monitor = a
        .monitor_url
        .as_deref()
        .expect("ports file lists the monitor");
    assert!(monitor.starts_with("http://127.0.0.1:"), "{monitor}");
    assert!(b.monitor_url.is_none(), "no monitor without -m");
    // The advertised port really serves the protocol: INFO comes first.
    let stream = TcpStream::connect(a.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).unwrap();
    assert!(line.starts_with("INFO {"), "{line:?}");
    (&stream).write_all(b"PING\r\n").unwrap();
}

#[test]
fn config_test_flag_accepts_valid_config() {
    let dir = TempDir::new("cfg");
    let conf = dir.write("ok.conf", "port: 4222\nmax_payload: 1024\n");
    let out = run_to_exit(Target::from_env(), &["-t", "-c", conf.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "valid config rejected: {}",
        out.output
    );
}

#[test]
fn config_test_flag_rejects_broken_config() {
    let dir = TempDir::new("cfg");
    let syntax = dir.write("syntax.conf", "port: 4222\nauthorization {\n");
    let out = run_to_exit(Target::from_env(), &["-t", "-c", syntax.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "syntax error: {}", out.output);
    let missing = dir.path().join("missing.conf");
    let out = run_to_exit(Target::from_env(), &["-t", "-c", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "missing file: {}", out.output);
}

/// `natrix mappings SRC DEST SUBJECT` prints the mapped subject (natrix's
/// own command: nats-server has none).
#[test]
fn mappings_command_prints_the_mapped_subject() {
    if Target::from_env() != Target::Natrix {
        return;
    }
    let out = run_to_exit(Target::Natrix, &["mappings", "foo.*.*", "bar.{{wildcard(2)}}.{{wildcard(1)}}", "foo.10.40"]);
    assert!(out.status.success(), "{}", out.output);
    assert_eq!(out.output.trim(), "bar.40.10");
    let out = run_to_exit(Target::Natrix, &["mappings", "*", "bar.{{partition(10)}}", "qux"]);
    assert_eq!(out.output.trim(), "bar.9", "nats-server's hash");
    let out = run_to_exit(Target::Natrix, &["mappings", "a.*", "b.{{nope(1)}}", "a.1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.output.contains("unknown function in {{nope(1)}}"), "{}", out.output);
}
