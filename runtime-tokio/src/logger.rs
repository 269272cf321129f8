//! Prints the core's log events in nats-server's shape:
//! `[pid] 2006/01/02 15:04:05.000000 [INF] message`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::Mutex;

use natrix_core::log::{Level, LogEvent};
use natrix_core::UnixNanos;

use crate::clock;

/// Where log lines go and which ones are kept.
pub struct Logger {
    pid: u32,
    min_level: Level,
    with_time: bool,
    sink: Mutex<Sink>,
    path: Option<String>,
}

enum Sink {
    Stderr,
    File(File),
}

impl Logger {
    /// A logger honouring `-D`, `-V`, `-T` and `-l`.
    pub fn new(debug: bool, trace: bool, with_time: bool, log_file: Option<&str>) -> io::Result<Self> {
        let min_level = if trace {
            Level::Trace
        } else if debug {
            Level::Debug
        } else {
            Level::Info
        };
        let sink = match log_file {
            Some(path) => Sink::File(OpenOptions::new().create(true).append(true).open(path)?),
            None => Sink::Stderr,
        };
        let path = log_file.map(str::to_owned);
        Ok(Logger { pid: std::process::id(), min_level, with_time, sink: Mutex::new(sink), path })
    }

    /// `--signal reopen` (SIGUSR1): reopens the log file, after a rotation
    /// moved it away, as nats-server does.
    pub fn reopen(&self) {
        let Some(path) = &self.path else {
            self.at(Level::Warn, "File log re-open ignored, not a file logger");
            return;
        };
        match OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => {
                *self.sink.lock().unwrap_or_else(|p| p.into_inner()) = Sink::File(file);
                self.at(Level::Info, "File log re-opened");
            }
            Err(e) => self.at(Level::Error, format!("Unable to re-open the log file: {e}")),
        }
    }

    /// True when events of `level` are printed (lets callers skip formatting).
    pub fn enabled(&self, level: Level) -> bool {
        level >= self.min_level
    }

    /// Prints one event.
    pub fn log(&self, event: &LogEvent) {
        if !self.enabled(event.level) {
            return;
        }
        let mut line = format!("[{}] ", self.pid);
        if self.with_time {
            line.push_str(&format_local(clock::wall()));
            line.push(' ');
        }
        line.push_str(&event.to_string());
        line.push('\n');
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        // A log line that cannot be written has nowhere better to go.
        let _ = match &mut *sink {
            Sink::Stderr => io::stderr().write_all(line.as_bytes()),
            Sink::File(f) => f.write_all(line.as_bytes()),
        };
    }

    /// Logs a message at `level`.
    pub fn at(&self, level: Level, message: impl Into<String>) {
        self.log(&LogEvent { level, message: message.into() });
    }
}

/// `2006/01/02 15:04:05.000000` in UTC.
fn format_local(t: UnixNanos) -> String {
    let iso = t.to_rfc3339();
    let (date, rest) = iso.split_once('T').unwrap_or((&iso, ""));
    let clock = rest.trim_end_matches('Z');
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let micros = format!("{frac:0<6}");
    format!("{} {}.{}", date.replace('-', "/"), hms, &micros[..6])
}
