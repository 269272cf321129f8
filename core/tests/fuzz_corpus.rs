//! Replays every file in `fuzz/corpus/<target>/` through the checks the fuzz
//! targets run, so that `cargo test` (stable, no libFuzzer) keeps every
//! input the fuzzers ever kept, including past crashes, passing.
//! The checks live in `fuzz/src/checks/` and are included here by path.

// It reads the corpus files and times the slowest input; the no-I/O and
// no-clock rules are for the library.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

#[allow(dead_code)]
#[path = "../../fuzz/src/checks/mod.rs"]
mod checks;

use std::path::PathBuf;
use std::time::Duration;

/// No corpus input may take longer than this in a debug build.
const SLOW_INPUT: Duration = Duration::from_secs(2);

fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, check) = checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no check named {target}"));
    let files = corpus_files(target);
    assert!(!files.is_empty(), "fuzz/corpus/{target} has no seeds");
    for file in files {
        let data = std::fs::read(&file).expect("a readable corpus file");
        let started = std::time::Instant::now();
        let result = std::panic::catch_unwind(|| check(&data));
        assert!(
            result.is_ok(),
            "{target}: {} fails its check",
            file.display()
        );
        // The whole replay must stay quick; a slow input is a finding too.
        let took = started.elapsed();
        assert!(
            took < SLOW_INPUT,
            "{target}: {} took {took:?}",
            file.display()
        );
    }
}

#[test]
fn every_target_has_a_corpus_and_a_test() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/fuzz_targets");
    for (name, _) in checks::TARGETS {
        assert!(
            dir.join(format!("{name}.rs")).is_file(),
            "no fuzz target for {name}"
        );
    }
}

#[test]
fn protocol_parser() {
    replay("protocol_parser");
}

#[test]
fn server_node() {
    replay("server_node");
}

#[test]
fn connect_json() {
    replay("connect_json");
}

#[test]
fn config_parse() {
    replay("config_parse");
}

#[test]
fn cli_args() {
    replay("cli_args");
}

#[test]
fn subject_validation() {
    replay("subject_validation");
}

#[test]
fn sublist_ops() {
    replay("sublist_ops");
}

#[test]
fn monitor_query() {
    replay("monitor_query");
}

#[test]
fn jwt_auth() {
    replay("jwt_auth");
}

#[test]
fn system_requests() {
    replay("system_requests");
}

#[test]
fn websocket_frames() {
    replay("websocket_frames");
}

#[test]
fn js_api() {
    replay("js_api");
}

#[test]
fn js_store_recovery() {
    replay("js_store_recovery");
}
