//! The config file parser (with includes and `$VAR`) and the command line.

use natrix_core::config::{
    self, apply_config, load, parse_args, parse_file, MemorySource, ServerOptions,
};

use super::nul_fields;

/// Files an input can fill: the main file, then includes it can name.
const FILES: [&str; 4] = ["main.conf", "a.conf", "inc/b.conf", "inc/c.conf"];
/// Environment variables an input can set, after the files.
const ENV: [&str; 3] = ["A", "B", "NATS_PORT"];

/// Input: NUL-separated fields: `main.conf`, `a.conf`, `inc/b.conf`,
/// `inc/c.conf`, then the values of `$A`, `$B` and `$NATS_PORT`.
///
/// Parsing never panics and is deterministic; an accepted tree applies
/// without panicking; `load` (run and `-t`) agrees with parsing on whether
/// the file is readable at all.
pub fn config_parse(data: &[u8]) {
    let fields = nul_fields(data);
    let mut source = MemorySource::new();
    for (path, text) in FILES.iter().zip(&fields) {
        source = source.with_file(path, text);
    }
    for (name, value) in ENV.iter().zip(fields.iter().skip(FILES.len())) {
        source = source.with_env(name, value);
    }
    let tree = parse_file("main.conf", &source);
    assert_eq!(
        tree,
        parse_file("main.conf", &source),
        "parsing is not deterministic"
    );
    if let Err(e) = &tree {
        let _ = e.to_string();
    }
    if let Ok(tree) = &tree {
        let mut options = ServerOptions::default();
        if let Ok(warnings) = apply_config(tree, &mut options, false) {
            let _ = warnings;
        }
        let _ = apply_config(tree, &mut ServerOptions::default(), true);
    }
    for flag in ["-c", "-t"] {
        let mut args = vec!["-c".to_owned(), "main.conf".to_owned()];
        if flag == "-t" {
            args.push("-t".to_owned());
        }
        let loaded = load(&args, &source, &natrix_core::auth::verify_operators);
        if tree.is_err() {
            assert!(loaded.is_err(), "load accepted a file parse_file refused");
        }
        if let Err(e) = loaded {
            let _ = e.to_string();
        }
    }
}

/// Input: NUL-separated command-line arguments (after the program name).
///
/// `parse_args` and `load` never panic and are deterministic; `load`
/// fails whenever `parse_args` does.
pub fn cli_args(data: &[u8]) {
    let args: Vec<String> = if data.is_empty() {
        Vec::new()
    } else {
        nul_fields(data)
    };
    let source = MemorySource::new()
        .with_file(
            "nats.conf",
            "port: 4333\nmax_payload: 2MB\ninclude inc.conf\n",
        )
        .with_file("inc.conf", "authorization { user: a, password: b }\n")
        .with_env("PORT", "4444");
    let parsed = parse_args(&args);
    assert_eq!(parsed, parse_args(&args), "parse_args is not deterministic");
    let loaded = load(&args, &source, &natrix_core::auth::verify_operators);
    match (&parsed, &loaded) {
        (Err(_), Ok(l)) => panic!(
            "load accepted {args:?} that parse_args refused: {:?}",
            l.command
        ),
        (Ok(cmd), Ok(l)) => assert_eq!(cmd, &l.command, "load changed the command"),
        (Err(e), Err(_)) => {
            let _ = e.to_string();
        }
        (Ok(_), Err(e)) => {
            let _ = e.to_string();
        }
    }
    let _ = config::USAGE.len();
}
