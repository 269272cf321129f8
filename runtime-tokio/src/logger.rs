//! Prints the core's log events in nats-server's shape:
//! `[pid] 2006/01/02 15:04:05.000000 [INF] message`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;

use natrix_core::log::{Level, LogEvent};
use natrix_core::UnixNanos;

use crate::clock;

/// Where log lines go and which ones are kept.
pub struct Logger {
    pid: u32,
    /// The lowest [`Level`] printed, as its rank (see [`rank`]).
    min_level: AtomicU8,
    with_time: AtomicBool,
    sink: Mutex<Sink>,
    path: Mutex<Option<String>>,
}

enum Sink {
    Stderr,
    File(File),
}

impl Logger {
    /// A logger honouring `-D`, `-V`, `-T` and `-l`.
    pub fn new(debug: bool, trace: bool, with_time: bool, log_file: Option<&str>) -> io::Result<Self> {
        let sink = match log_file {
            Some(path) => Sink::File(OpenOptions::new().create(true).append(true).open(path)?),
            None => Sink::Stderr,
        };
        let path = log_file.map(str::to_owned);
        Ok(Logger {
            pid: std::process::id(),
            min_level: AtomicU8::new(rank(min_level(debug, trace))),
            with_time: AtomicBool::new(with_time),
            sink: Mutex::new(sink),
            path: Mutex::new(path),
        })
    }

    /// A config reload changed `debug`, `trace` or `logtime`.
    pub fn set_levels(&self, debug: bool, trace: bool, with_time: bool) {
        self.min_level.store(rank(min_level(debug, trace)), Ordering::Relaxed);
        self.with_time.store(with_time, Ordering::Relaxed);
    }

    /// A config reload changed `log_file`: lines go to the new file (or
    /// to stderr without one) from now on.
    pub fn set_file(&self, log_file: Option<&str>) -> io::Result<()> {
        let sink = match log_file {
            Some(path) => Sink::File(OpenOptions::new().create(true).append(true).open(path)?),
            None => Sink::Stderr,
        };
        *self.sink.lock().unwrap_or_else(|p| p.into_inner()) = sink;
        *self.path.lock().unwrap_or_else(|p| p.into_inner()) = log_file.map(str::to_owned);
        Ok(())
    }

    /// `--signal reopen` (SIGUSR1): reopens the log file, after a rotation
    /// moved it away, as nats-server does.
    pub fn reopen(&self) {
        let path = self.path.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(path) = path else {
            self.at(Level::Warn, "File log re-open ignored, not a file logger");
            return;
        };
        match OpenOptions::new().create(true).append(true).open(&path) {
            Ok(file) => {
                *self.sink.lock().unwrap_or_else(|p| p.into_inner()) = Sink::File(file);
                self.at(Level::Info, "File log re-opened");
            }
            Err(e) => self.at(Level::Error, format!("Unable to re-open the log file: {e}")),
        }
    }

    /// True when events of `level` are printed (lets callers skip formatting).
    pub fn enabled(&self, level: Level) -> bool {
        rank(level) >= self.min_level.load(Ordering::Relaxed)
    }

    /// Prints one event.
    pub fn log(&self, event: &LogEvent) {
        if !self.enabled(event.level) {
            return;
        }
        let mut line = format!("[{}] ", self.pid);
        if self.with_time.load(Ordering::Relaxed) {
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

fn min_level(debug: bool, trace: bool) -> Level {
    if trace {
        Level::Trace
    } else if debug {
        Level::Debug
    } else {
        Level::Info
    }
}

/// A level's place in the order of severity.
fn rank(level: Level) -> u8 {
    match level {
        Level::Trace => 0,
        Level::Debug => 1,
        Level::Info => 2,
        Level::Warn => 3,
        Level::Error => 4,
        Level::Fatal => 5,
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
