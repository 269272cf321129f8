//! Config reload (SIGHUP, `--signal reload`): the config file is read and
//! parsed again, with the command line's flags over it as at start-up,
//! and the core decides what changes (see `natrix_core::server::Control::reload`).
//! The runtime then applies its own part: TLS certificates for new
//! handshakes, the log's levels and file, the write deadline, the pid file.

use std::sync::{Arc, RwLock};

use natrix_core::config::{self, ConfigSource, ReadError, ServerOptions};
use natrix_core::log::Level;
use natrix_core::server::ReloadError;

use crate::clock;
use crate::driver::Shared;
use crate::tls::{self, TlsSetup};

/// Reads config files and environment variables for the core's config parser.
pub struct FsSource;

impl ConfigSource for FsSource {
    fn read_file(&self, path: &str) -> Result<String, ReadError> {
        std::fs::read_to_string(path).map_err(|e| ReadError { reason: e.to_string() })
    }

    fn env_var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// TLS for new client connections: what the accept loop hands each one.
pub type ClientTls = Arc<RwLock<Option<Arc<TlsSetup>>>>;

/// What a reload needs from the start-up.
pub struct Reloader {
    /// The command line, read again with the file.
    args: Vec<String>,
    /// The options as the file and the flags gave them, before the runtime
    /// resolved anything (a random port, the store directory, budgets).
    configured: ServerOptions,
    /// Swapped when the `tls {}` block changed.
    tls: ClientTls,
}

impl Reloader {
    /// `configured` are the options the process started with, as loaded.
    pub fn new(args: Vec<String>, configured: ServerOptions, tls: ClientTls) -> Self {
        Reloader { args, configured, tls }
    }

    /// Reloads; a failure is logged as nats-server logs it, and changes nothing.
    pub fn reload(&mut self, shared: &Shared) {
        if let Err(e) = self.try_reload(shared) {
            shared.logger.at(Level::Error, format!("Failed to reload server configuration: {e}"));
        }
    }

    fn try_reload(&mut self, shared: &Shared) -> Result<(), String> {
        if self.configured.config_file.is_none() {
            return Err(ReloadError::NoConfigFile.to_string());
        }
        let loaded =
            config::load(&self.args, &FsSource, &natrix_core::auth::verify_operators).map_err(|e| e.to_string())?;
        for w in &loaded.warnings {
            shared.logger.at(Level::Warn, w.clone());
        }
        let configured = loaded.options;
        let effective = shared.with_control(|c| c.options().clone());
        let new = carry_over(&self.configured, &configured, &effective);
        // A certificate that cannot be read refuses the reload before the
        // core sees it, so the old configuration stays entirely in force.
        let tls = match &new.tls {
            Some(t) if new.tls != effective.tls => Some(Some(Arc::new(tls::setup(t).map_err(|e| e.to_string())?))),
            None if effective.tls.is_some() => Some(None),
            _ => None,
        };
        shared.with_control(|c| c.reload(clock::now(), clock::wall(), new.clone())).map_err(|e| e.to_string())?;
        if let Some(tls) = tls {
            *self.tls.write().unwrap_or_else(std::sync::PoisonError::into_inner) = tls;
        }
        shared.set_write_deadline(new.write_deadline);
        shared.logger.set_levels(new.debug, new.trace, new.logtime);
        if new.log_file != effective.log_file {
            if let Err(e) = shared.logger.set_file(new.log_file.as_deref()) {
                shared.logger.at(Level::Error, format!("Unable to open the new log file: {e}"));
            }
        }
        if let Some(path) = new.pid_file.as_deref().filter(|_| new.pid_file != effective.pid_file) {
            if let Err(e) = std::fs::write(path, std::process::id().to_string()) {
                shared.logger.at(Level::Error, format!("Failed to write pidfile: {e}"));
            }
        }
        self.configured = configured;
        Ok(())
    }
}

/// The new options, with what the runtime resolved at start-up kept where
/// the file still asks for the same thing (nats-server keeps a random
/// port the same way).
fn carry_over(before: &ServerOptions, configured: &ServerOptions, effective: &ServerOptions) -> ServerOptions {
    let mut new = configured.clone();
    macro_rules! keep {
        ($($field:tt).+) => {
            if configured.$($field).+ == before.$($field).+ {
                new.$($field).+ = effective.$($field).+.clone();
            }
        };
    }
    keep!(port);
    keep!(http_port);
    keep!(websocket.port);
    keep!(mqtt.port);
    keep!(store_dir);
    keep!(jetstream_max_memory_bytes);
    keep!(jetstream_max_store_bytes);
    // A limit from NATRIX_MEMORY_LIMIT or GOMEMLIMIT stays unless the file sets one.
    keep!(memory_limit_bytes);
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_settings_are_kept_while_the_file_asks_the_same() {
        let before = ServerOptions { port: -1, ..ServerOptions::default() };
        let effective = ServerOptions { port: 40_123, store_dir: Some("/tmp/nats".into()), ..before.clone() };
        let same = carry_over(&before, &before, &effective);
        assert_eq!((same.port, same.store_dir.as_deref()), (40_123, Some("/tmp/nats")));
        let moved = ServerOptions { port: 5000, ..before.clone() };
        assert_eq!(carry_over(&before, &moved, &effective).port, 5000);
    }
}
