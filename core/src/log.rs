//! Log events. The core emits them; the runtime formats and prints them in
//! nats-server's shape (`[pid] date [INF] text`).

use std::fmt;

/// Severity, in nats-server's order and with its three-letter tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `[TRC]`: protocol traces (`-V`).
    Trace,
    /// `[DBG]`: `-D`.
    Debug,
    /// `[INF]`.
    Info,
    /// `[WRN]`.
    Warn,
    /// `[ERR]`.
    Error,
    /// `[FTL]`: the server cannot go on.
    Fatal,
}

impl Level {
    /// nats-server's tag for the level.
    pub fn tag(self) -> &'static str {
        match self {
            Level::Trace => "TRC",
            Level::Debug => "DBG",
            Level::Info => "INF",
            Level::Warn => "WRN",
            Level::Error => "ERR",
            Level::Fatal => "FTL",
        }
    }
}

/// One line of log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEvent {
    /// Severity.
    pub level: Level,
    /// The text, without level or timestamp.
    pub message: String,
}

impl fmt::Display for LogEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.level.tag(), self.message)
    }
}
