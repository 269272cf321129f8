//! Harness for starting natrix and nats-server processes.
//!
//! Every conformance test starts its own server process on 127.0.0.1 with
//! `-p -1 --ports_file_dir <fresh dir>`, waits for the ports file the server
//! writes there (`<exe>_<pid>.ports`, JSON with `nats` and `monitoring`
//! URL lists), and kills the process when the [`Server`] is dropped.
//!
//! The target is chosen by `NATRIX_SERVER=natrix|nats-server` (default
//! `natrix`), so the same test proves natrix and the reference alike.
//! `NATRIX_BIN` and `NATS_SERVER_BIN` override the binary paths.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to write its ports file before we give up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a one-shot run (`-t`, `--help`) may take before it is killed.
const RUN_TIMEOUT: Duration = Duration::from_secs(15);
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Which server binary a test drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `target/debug/natrix`, built from this workspace.
    Natrix,
    /// The reference `nats-server`, from `.venv/bin` or `PATH`.
    NatsServer,
}

impl Target {
    /// Reads `NATRIX_SERVER`; unset or empty means natrix.
    ///
    /// # Panics
    /// On any other value, so a typo never silently tests the wrong server.
    pub fn from_env() -> Target {
        match std::env::var("NATRIX_SERVER").as_deref() {
            Err(_) | Ok("") | Ok("natrix") => Target::Natrix,
            Ok("nats-server") => Target::NatsServer,
            Ok(other) => panic!("NATRIX_SERVER={other}: expected natrix or nats-server"),
        }
    }

    /// The executable this target runs.
    pub fn binary(self) -> PathBuf {
        match self {
            Target::Natrix => env_path("NATRIX_BIN")
                .unwrap_or_else(|| workspace_root().join("target/debug/natrix")),
            Target::NatsServer => env_path("NATS_SERVER_BIN").unwrap_or_else(|| {
                let venv = workspace_root().join(".venv/bin/nats-server");
                if venv.exists() {
                    venv
                } else {
                    PathBuf::from("nats-server")
                }
            }),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Natrix => "natrix",
            Target::NatsServer => "nats-server",
        })
    }
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("conformance crate sits inside the workspace")
        .to_path_buf()
}

/// A scratch directory removed on drop; one per server or test.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, empty directory under the system temp dir.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("natrix-conf-{label}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` inside the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let file = self.path.join(name);
        fs::write(&file, contents).expect("write temp file");
        file
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// What to start: extra flags and an optional config file body.
#[derive(Debug, Default, Clone)]
pub struct ServerOptions {
    /// Extra command-line arguments, after the harness's own.
    pub args: Vec<String>,
    /// Config file contents; written to `server.conf` and passed with `-c`.
    pub config: Option<String>,
    /// Start the HTTP monitor on a random port (`-m -1`).
    pub monitoring: bool,
}

impl ServerOptions {
    /// No extra flags, no config file.
    pub fn new() -> ServerOptions {
        ServerOptions::default()
    }

    /// Adds command-line arguments.
    pub fn args<I, S>(mut self, args: I) -> ServerOptions
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets the config file contents.
    pub fn config(mut self, body: impl Into<String>) -> ServerOptions {
        self.config = Some(body.into());
        self
    }

    /// Enables the HTTP monitor.
    pub fn monitoring(mut self) -> ServerOptions {
        self.monitoring = true;
        self
    }
}

/// A running server process; killed and cleaned up on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    dir: TempDir,
    target: Target,
    /// Client URL from the ports file, e.g. `nats://127.0.0.1:41259`.
    pub client_url: String,
    /// Client port parsed from [`Server::client_url`].
    pub client_port: u16,
    /// Monitoring URL, when monitoring was enabled.
    pub monitor_url: Option<String>,
}

/// Why a server could not be started.
#[derive(Debug)]
pub enum StartError {
    /// The binary does not exist or could not be executed.
    Spawn(PathBuf, std::io::Error),
    /// The process exited before writing its ports file.
    Exited(ExitStatus, String),
    /// No ports file appeared in time.
    Timeout(String),
    /// The ports file was not the expected JSON.
    BadPortsFile(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Spawn(p, e) => write!(
                f,
                "cannot run {}: {e} (build it with `cargo build -p natrix`, or set NATRIX_SERVER=nats-server)",
                p.display()
            ),
            StartError::Exited(s, log) => write!(f, "server exited early ({s}); log:\n{log}"),
            StartError::Timeout(log) => {
                write!(f, "no ports file after {STARTUP_TIMEOUT:?}; log:\n{log}")
            }
            StartError::BadPortsFile(s) => write!(f, "unreadable ports file: {s}"),
        }
    }
}

impl std::error::Error for StartError {}

impl Server {
    /// Starts the target from `NATRIX_SERVER` with `opts`, panicking with the
    /// server's log if it does not come up.
    pub fn start(opts: ServerOptions) -> Server {
        let target = Target::from_env();
        Server::try_start(target, opts).unwrap_or_else(|e| panic!("starting {target}: {e}"))
    }

    /// Starts `target` with `opts` and waits for its ports file.
    pub fn try_start(target: Target, opts: ServerOptions) -> Result<Server, StartError> {
        let dir = TempDir::new("srv");
        let ports_dir = dir.path().join("ports");
        fs::create_dir_all(&ports_dir).expect("create ports dir");
        let mut args: Vec<String> = vec!["-a".into(), "127.0.0.1".into(), "-p".into(), "-1".into()];
        args.push("--ports_file_dir".into());
        args.push(ports_dir.display().to_string());
        if opts.monitoring {
            args.extend(["-m".into(), "-1".into()]);
        }
        if let Some(body) = &opts.config {
            let conf = dir.write("server.conf", body);
            args.extend(["-c".into(), conf.display().to_string()]);
        }
        args.extend(opts.args.iter().cloned());
        let log_path = dir.path().join("server.log");
        let log = fs::File::create(&log_path).expect("create log");
        let binary = target.binary();
        let child = Command::new(&binary)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .map_err(|e| StartError::Spawn(binary.clone(), e))?;
        let mut server = PendingServer {
            child: Some(child),
            log_path,
        };
        let ports = server.wait_for_ports(&ports_dir)?;
        let child = server.child.take().expect("child present");
        Server::from_ports(child, dir, target, &ports)
    }

    fn from_ports(
        child: Child,
        dir: TempDir,
        target: Target,
        ports: &str,
    ) -> Result<Server, StartError> {
        let json: serde_json::Value = serde_json::from_str(ports)
            .map_err(|e| StartError::BadPortsFile(format!("{e}: {ports}")))?;
        let first = |key: &str| {
            json.get(key)
                .and_then(|v| v.as_array())
                .and_then(|a| a.first())
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let client_url = first("nats")
            .ok_or_else(|| StartError::BadPortsFile(format!("no nats URL: {ports}")))?;
        let client_port = client_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| StartError::BadPortsFile(format!("no port in {client_url}")))?;
        Ok(Server {
            child,
            dir,
            target,
            client_url,
            client_port,
            monitor_url: first("monitoring"),
        })
    }

    /// Which binary this is.
    pub fn target(&self) -> Target {
        self.target
    }

    /// `127.0.0.1:<client port>`, for raw TCP connections.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// Everything the server printed so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process that has not yet written its ports file; killed if dropped.
struct PendingServer {
    child: Option<Child>,
    log_path: PathBuf,
}

impl PendingServer {
    fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn wait_for_ports(&mut self, ports_dir: &Path) -> Result<String, StartError> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(body) = read_ports_file(ports_dir) {
                return Ok(body);
            }
            let child = self.child.as_mut().expect("child present");
            if let Ok(Some(status)) = child.try_wait() {
                return Err(StartError::Exited(status, self.log()));
            }
            if Instant::now() > deadline {
                return Err(StartError::Timeout(self.log()));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for PendingServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads the first complete `*.ports` file in `dir`, whatever its prefix.
fn read_ports_file(dir: &Path) -> Option<String> {
    let entries = fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "ports") {
            let body = fs::read_to_string(&path).ok()?;
            // The file may be observed half-written; wait for valid JSON.
            if serde_json::from_str::<serde_json::Value>(&body).is_ok() {
                return Some(body);
            }
        }
    }
    None
}

/// The outcome of running the binary to completion (e.g. `-t`).
#[derive(Debug)]
pub struct RunOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output and standard error, concatenated.
    pub output: String,
}

/// Runs `target` with `args` to completion, killing it after a timeout.
///
/// # Panics
/// If the binary cannot be started or does not exit in time.
pub fn run_to_exit(target: Target, args: &[&str]) -> RunOutput {
    let binary = target.binary();
    let mut child = Command::new(&binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}", StartError::Spawn(binary.clone(), e)));
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{target} {args:?} did not exit within {RUN_TIMEOUT:?}");
        }
        thread::sleep(POLL_INTERVAL);
    };
    let mut output = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut output);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut output);
    }
    RunOutput { status, output }
}
