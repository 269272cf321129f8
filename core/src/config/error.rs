//! Config errors. Positions and texts follow nats-server so a user sees the
//! same `file:line:col: reason` lines from natrix.

use std::fmt;

use super::cli::CliError;
use super::value::Pos;

/// One problem found in a config file, with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the offending key or token is.
    pub pos: Pos,
    /// What is wrong, in nats-server's words where it has some.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn new(pos: &Pos, message: impl Into<String>) -> Self {
        Diagnostic {
            pos: pos.clone(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

/// A failure to read a file or an include through the [`ConfigSource`](super::ConfigSource).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ReadError {
    /// The reason as the runtime's file system reported it.
    pub reason: String,
}

/// Why a configuration could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The main config file could not be read.
    #[error("error opening config file: {source}")]
    Open {
        /// The path given with `-c`.
        path: String,
        /// The reader's reason.
        source: ReadError,
    },
    /// The text is not valid config syntax (includes, variables and
    /// nesting limits are reported here too).
    #[error("{0}")]
    Syntax(Diagnostic),
    /// The syntax is fine but keys or values are wrong. nats-server reports
    /// every problem at once, warnings first; so does natrix.
    #[error("{}", join_lines(warnings, errors))]
    Invalid {
        /// Problems that nats-server only warns about, fatal under `-t`.
        warnings: Vec<Diagnostic>,
        /// Problems that stop the server.
        errors: Vec<Diagnostic>,
    },
    /// `-t` on a file without a single setting (nats-server only warns
    /// when running, but refuses it under `-t`).
    #[error("{path}: config has no values or is empty")]
    EmptyConfig {
        /// The path given with `-c`.
        path: String,
    },
    /// `-t` without `-c`.
    #[error("must specify [-c, --config] option to check configuration file syntax")]
    TestWithoutConfig,
    /// `--tls*` flags without a certificate or key.
    #[error("{0}")]
    TlsFlags(&'static str),
    /// The command line is wrong.
    #[error(transparent)]
    Cli(#[from] CliError),
}

fn join_lines(warnings: &[Diagnostic], errors: &[Diagnostic]) -> String {
    let lines: Vec<String> = warnings
        .iter()
        .chain(errors.iter())
        .map(ToString::to_string)
        .collect();
    lines.join("\n")
}
