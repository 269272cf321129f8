//! Signals (SIGINT/SIGTERM to stop, SIGHUP to reload), `--signal`, and the
//! pid and ports files nats-server writes.

use std::net::SocketAddr;
use std::process::ExitCode;

use natrix_core::config::{ServerOptions, SignalCommand};
use natrix_core::log::Level;
use tokio::signal::unix::{signal, SignalKind};

use crate::driver::Shared;

/// Waits until the process is asked to stop.
pub async fn wait_for_shutdown(shared: &Shared) {
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) =
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
    else {
        shared.logger.at(Level::Error, "cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = int.recv() => { shared.logger.at(Level::Debug, "Trapped \"interrupt\" signal"); break }
            _ = term.recv() => { shared.logger.at(Level::Debug, "Trapped \"terminated\" signal"); break }
            _ = hup.recv() => {
                shared.logger.at(Level::Warn, "Trapped \"hangup\" signal: configuration reload is not supported yet");
            }
        }
    }
    shared.logger.at(Level::Info, "Initiating Shutdown...");
}

/// The pid file and ports file, removed on shutdown.
pub struct ProcessFiles {
    paths: Vec<String>,
}

impl ProcessFiles {
    /// Writes `pid_file` and `ports_file_dir/natrix_<pid>.ports` if configured.
    pub fn write(opts: &ServerOptions, client: SocketAddr, http: Option<SocketAddr>) -> Result<Self, String> {
        let pid = std::process::id();
        let mut paths = Vec::new();
        if let Some(path) = &opts.pid_file {
            std::fs::write(path, pid.to_string()).map_err(|e| format!("Could not write pidfile: {e}"))?;
            paths.push(path.clone());
        }
        if let Some(dir) = &opts.ports_file_dir {
            let host = match opts.host.as_str() {
                "0.0.0.0" | "::" | "[::]" | "" => "127.0.0.1".to_owned(),
                h => h.to_owned(),
            };
            let mut ports = serde_json::json!({ "nats": [format!("nats://{host}:{}", client.port())] });
            if let Some(h) = http {
                ports["monitoring"] = serde_json::json!([format!("http://{host}:{}", h.port())]);
            }
            let ws = &opts.websocket;
            if ws.enabled() {
                let scheme = if ws.tls.is_some() { "wss" } else { "ws" };
                let ws_host = match ws.host.as_str() {
                    "0.0.0.0" | "::" | "[::]" | "" => "127.0.0.1",
                    h => h,
                };
                ports["websocket"] = serde_json::json!([format!("{scheme}://{ws_host}:{}", ws.port)]);
            }
            let exe = std::env::args()
                .next()
                .and_then(|a| std::path::Path::new(&a).file_name().map(|f| f.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "natrix".to_owned());
            let path = format!("{}/{exe}_{pid}.ports", dir.trim_end_matches('/'));
            std::fs::write(&path, ports.to_string()).map_err(|e| format!("Error writing ports file ({path}): {e}"))?;
            paths.push(path);
        }
        Ok(ProcessFiles { paths })
    }

    /// Removes the files.
    pub fn remove(&self) {
        for p in &self.paths {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `--signal CMD[=PID]`: sends the signal with `kill(1)`.
pub fn send(command: SignalCommand, pid: Option<&str>) -> ExitCode {
    let sig = match command {
        SignalCommand::Stop => "KILL",
        SignalCommand::Quit => "INT",
        SignalCommand::Term => "TERM",
        SignalCommand::Reopen => "USR1",
        SignalCommand::Reload => "HUP",
        SignalCommand::LameDuck => "USR2",
    };
    let pid = match pid {
        Some(p) if p.chars().all(|c| c.is_ascii_digit()) => p.to_owned(),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => text.trim().to_owned(),
            Err(e) => {
                eprintln!("natrix: could not read pid file {path}: {e}");
                return ExitCode::from(1);
            }
        },
        None => {
            eprintln!("natrix: --signal needs a pid or pid file: --signal {sig}=<pid>");
            return ExitCode::from(1);
        }
    };
    match std::process::Command::new("kill").arg(format!("-{sig}")).arg(&pid).status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        _ => {
            eprintln!("natrix: could not signal process {pid}");
            ExitCode::from(1)
        }
    }
}
