//! Signals (SIGINT/SIGTERM to stop, SIGHUP to reload, SIGUSR2 for lame
//! duck mode), `--signal`, and the pid and ports files nats-server writes.

use std::net::SocketAddr;
use std::process::ExitCode;

use natrix_core::config::{ServerOptions, SignalCommand};
use natrix_core::log::Level;
use tokio::signal::unix::{signal, SignalKind};

use crate::driver::Shared;

/// Waits until the process is asked to stop, or lame duck mode is over.
/// `stop_accepting` is called once when lame duck mode starts (the core
/// decides who is closed when; the runtime only stops its listeners);
/// `reload` on each SIGHUP.
pub async fn wait_for_shutdown(shared: &Shared, mut stop_accepting: impl FnMut(), mut reload: impl FnMut(&Shared)) {
    let (Ok(mut int), Ok(mut term), Ok(mut hup), Ok(mut usr1), Ok(mut usr2)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
    ) else {
        shared.logger.at(Level::Error, "cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    let mut lame_duck = false;
    let mut check = tokio::time::interval(std::time::Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = int.recv() => { shared.logger.at(Level::Debug, "Trapped \"interrupt\" signal"); break }
            _ = term.recv() => { shared.logger.at(Level::Debug, "Trapped \"terminated\" signal"); break }
            _ = hup.recv() => {
                shared.logger.at(Level::Info, "Trapped \"hangup\" signal");
                reload(shared);
            }
            _ = usr1.recv() => {
                shared.logger.at(Level::Debug, "Trapped \"user defined signal 1\" signal");
                shared.logger.reopen();
            }
            _ = usr2.recv() => {
                shared.logger.at(Level::Debug, "Trapped \"user defined signal 2\" signal");
                if shared.with_control(|c| c.enter_lame_duck(crate::clock::now())) {
                    stop_accepting();
                    lame_duck = true;
                }
            }
            _ = check.tick(), if lame_duck => {
                if shared.with_control(|c| c.lame_duck_finished()) {
                    break;
                }
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

/// `--signal CMD[=PID]`, as nats-server does it: `PID` may be a pid, a
/// pid file (`pid_file`/`-P`), or a pid prefix ending in `*`; without it
/// the one running `natrix` process is signalled (found with `pgrep`).
pub fn send(command: SignalCommand, pid: Option<&str>) -> ExitCode {
    match process_signal(command, pid.unwrap_or("")) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("natrix: {e}");
            ExitCode::from(1)
        }
    }
}

fn command_name(command: SignalCommand) -> &'static str {
    match command {
        SignalCommand::Stop => "stop",
        SignalCommand::Quit => "quit",
        SignalCommand::Term => "term",
        SignalCommand::Reopen => "reopen",
        SignalCommand::Reload => "reload",
        SignalCommand::LameDuck => "ldm",
    }
}

fn process_signal(command: SignalCommand, pid_expr: &str) -> Result<(), String> {
    use rustix::process::{kill_process, Pid, Signal};
    // A readable file holds the pid; anything else is the pid itself.
    let pid_expr = match std::fs::read_to_string(pid_expr) {
        Ok(text) if !pid_expr.is_empty() => text.trim().to_owned(),
        _ => pid_expr.to_owned(),
    };
    let is_glob = pid_expr.ends_with('*');
    let pid_str = pid_expr.trim_end_matches('*');
    let mut pids: Vec<i32> = Vec::new();
    if !pid_str.is_empty() {
        pids.push(pid_str.parse().map_err(|_| format!("invalid pid: {pid_str}"))?);
    }
    if pid_str.is_empty() || is_glob {
        pids = running_pids()?;
    }
    if pids.len() > 1 && !is_glob {
        let list: String = pids.iter().map(|p| format!("\n{p}")).collect();
        return Err(format!("multiple natrix processes running:{list}"));
    }
    if pids.is_empty() {
        return Err("no natrix processes running".to_owned());
    }
    let signal = match command {
        SignalCommand::Stop => Signal::KILL,
        SignalCommand::Quit => Signal::INT,
        SignalCommand::Term => Signal::TERM,
        SignalCommand::Reopen => Signal::USR1,
        SignalCommand::Reload => Signal::HUP,
        SignalCommand::LameDuck => Signal::USR2,
    };
    let mut errors = String::new();
    for pid in pids {
        let text = pid.to_string();
        if !pid_str.is_empty() && text != pid_str && !(is_glob && text.starts_with(pid_str)) {
            continue;
        }
        let sent = Pid::from_raw(pid).ok_or(rustix::io::Errno::SRCH).and_then(|p| kill_process(p, signal));
        if let Err(e) = sent {
            let reason = if e == rustix::io::Errno::SRCH { "no such process".to_owned() } else { e.to_string() };
            errors.push_str(&format!("\nsignal {:?} {pid}: {reason}", command_name(command)));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The pids of the other running `natrix` processes.
fn running_pids() -> Result<Vec<i32>, String> {
    let unresolved = || "unable to resolve pid, try providing one".to_owned();
    let output = std::process::Command::new("pgrep").arg("natrix").output().map_err(|_| unresolved())?;
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    let mut pids = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines().filter(|l| !l.is_empty()) {
        let pid: i32 = line.trim().parse().map_err(|_| unresolved())?;
        if pid != me {
            pids.push(pid);
        }
    }
    Ok(pids)
}
