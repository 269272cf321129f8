//! Configuration: the nats-server config file format and command-line flags,
//! parsed into typed [`ServerOptions`]. Files and environment variables are
//! inputs: the runtime supplies a [`ConfigSource`] for the main file,
//! `include` and `$VAR`.
//!
//! The runtime calls [`load`] with the arguments after the program name and
//! acts on [`Loaded::command`]: run, test the config, print help or the
//! version, or signal a running server.

mod accounts;
mod apply;
mod apply_blocks;
pub mod cli;
mod cursor;
pub mod duration;
mod error;
mod mappings;
pub mod options;
mod overrides;
pub mod parser;
mod source;
mod websocket;
pub mod mqtt;
#[cfg(test)]
mod test_support;
pub mod value;

pub use apply_blocks::DEFAULT_TLS_TIMEOUT;
pub use cli::{parse_args, CliCommand, CliError, Overrides, SignalCommand, USAGE};
pub use error::{ConfigError, Diagnostic, ReadError};
pub use options::*;
pub use overrides::apply_overrides;
pub use parser::{parse_file, parse_str};
pub use source::{clean_path, join_include, parent_dir, ConfigSource, MemorySource};
pub use value::{ConfigMap, Entry, Pos, Value, ValueKind};

/// The outcome of reading the command line and the config file.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// Defaults, then the file, then the flags.
    pub options: ServerOptions,
    /// Lines for the runtime to log as warnings (`file:line:col: …`):
    /// nats-server's config warnings and the settings natrix ignores.
    pub warnings: Vec<String>,
    /// What to do.
    pub command: CliCommand,
    /// The parsed file, kept for features that read their own blocks
    /// (cluster, leafnodes, accounts…). `None` without `-c`.
    pub tree: Option<ConfigMap>,
}

/// Verifies the operator JWTs a config file names (and the resolver's
/// preloaded account JWTs): trust is the auth module's to judge, so the
/// runtime passes its check in (`auth::Trust::new`); the config only knows
/// where each JWT came from, to report a refusal there.
pub type VerifyOperators<'a> = &'a dyn Fn(&[String], &std::collections::BTreeMap<String, String>) -> Result<(), String>;

/// Parses `args` (without the program name), reads the config file through
/// `source` when one is given, applies it and then the flag overrides.
///
/// As nats-server: with `-t`, warnings are errors; otherwise they are
/// returned for logging. Help, version and signal commands read no file.
pub fn load(args: &[String], source: &dyn ConfigSource, verify: VerifyOperators<'_>) -> Result<Loaded, ConfigError> {
    let command = parse_args(args)?;
    let (config_file, overrides, testing) = match &command {
        CliCommand::Run {
            config_file,
            overrides,
        } => (config_file, overrides, false),
        CliCommand::TestConfig {
            config_file,
            overrides,
        } => (config_file, overrides, true),
        _ => {
            return Ok(Loaded {
                options: ServerOptions::default(),
                warnings: Vec::new(),
                command,
                tree: None,
            })
        }
    };
    let mut options = ServerOptions::default();
    let mut warnings = Vec::new();
    let tree = match config_file {
        Some(path) => {
            let tree = parse_file(path, source)?;
            if tree.is_empty() {
                let empty = ConfigError::EmptyConfig { path: path.clone() };
                if testing {
                    return Err(empty);
                }
                warnings.push(empty.to_string());
            }
            warnings.extend(apply_config(&tree, &mut options, testing)?);
            read_operator_files(&tree, &mut options, source, verify)?;
            options.config_file = Some(path.clone());
            Some(tree)
        }
        None if testing => return Err(ConfigError::TestWithoutConfig),
        None => None,
    };
    warnings.extend(apply_overrides(&mut options, overrides)?);
    Ok(Loaded {
        options,
        warnings,
        command,
        tree,
    })
}

/// Replaces each `operator` entry that names a file with the JWT in it,
/// and refuses operator JWTs that do not verify.
fn read_operator_files(
    tree: &ConfigMap,
    options: &mut ServerOptions,
    source: &dyn ConfigSource,
    verify: VerifyOperators<'_>,
) -> Result<(), ConfigError> {
    let pos = tree
        .entries()
        .iter()
        .find(|e| e.key.to_ascii_lowercase().contains("operator"))
        .map(|e| e.value.pos.clone());
    let mut errors = Vec::new();
    for entry in &mut options.operators {
        if !entry.trim_start().starts_with("eyJ") {
            match source.read_file(entry) {
                Ok(text) => match jwt_in_text(&text) {
                    Some(jwt) => *entry = jwt.to_owned(),
                    None => errors.push(format!("error parsing operator JWT: no JWT found in {entry}")),
                },
                Err(e) => errors.push(format!("error parsing operator JWT: {}", e.reason)),
            }
        }
    }
    if errors.is_empty() {
        if let Err(e) = verify(&options.operators, &options.resolver_preload) {
            errors.push(format!("error parsing operator JWT: {e}"));
        }
    }
    match pos {
        Some(pos) if !errors.is_empty() => Err(ConfigError::Invalid {
            warnings: Vec::new(),
            errors: errors.iter().map(|m| Diagnostic::new(&pos, m.clone())).collect(),
        }),
        _ => Ok(()),
    }
}

/// Applies a parsed config tree to `options`. Returns the warning lines;
/// fails on any error, or on any nats-server warning when `strict` (`-t`).
pub fn apply_config(
    tree: &ConfigMap,
    options: &mut ServerOptions,
    strict: bool,
) -> Result<Vec<String>, ConfigError> {
    let mut report = apply::Report::default();
    apply::apply_tree(tree, options, &mut report);
    websocket::validate(tree, options, &mut report);
    check_max_payload(tree, options, &mut report);
    if !report.errors.is_empty() || (strict && !report.warnings.is_empty()) {
        return Err(ConfigError::Invalid {
            warnings: report.warnings,
            errors: report.errors,
        });
    }
    Ok(report
        .warnings
        .iter()
        .chain(report.unsupported.iter())
        .map(ToString::to_string)
        .collect())
}

/// nats-server refuses a `max_payload` that one client could not even
/// have pending: every message must fit in `max_pending`.
fn check_max_payload(tree: &ConfigMap, options: &ServerOptions, report: &mut apply::Report) {
    let (payload, pending) = (u64::from(options.max_payload_bytes), options.max_pending_bytes);
    if payload <= pending {
        return;
    }
    let at = |key: &str| tree.entries().iter().find(|e| e.key.eq_ignore_ascii_case(key)).map(|e| e.value.pos.clone());
    if let Some(pos) = at("max_payload").or_else(|| at("max_pending")) {
        report.error(&pos, format!("max_payload ({payload}) cannot be higher than max_pending ({pending})"));
    }
}

/// The JWT inside a file as `nsc` writes it: either bare, or between
/// `-----BEGIN … JWT-----` / `------END … JWT------` lines (as in `.creds`).
pub fn jwt_in_text(text: &str) -> Option<&str> {
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line.starts_with("---") && line.contains("BEGIN") && line.contains("JWT") {
            return lines.next().filter(|l| !l.is_empty());
        }
    }
    let trimmed = text.trim();
    (trimmed.split('.').count() == 3 && !trimmed.contains(char::is_whitespace)).then_some(trimmed)
}
