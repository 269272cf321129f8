//! The flag table (every nats-server flag and its aliases) and the typed
//! overrides the flags produce.

/// How a flag takes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FlagKind {
    Bool,
    Int,
    Text,
}

/// One accepted spelling of a flag, and the setting it writes.
pub(super) struct Flag {
    pub(super) kind: FlagKind,
    pub(super) key: &'static str,
}

use FlagKind::{Bool, Int, Text};

/// Every spelling nats-server 2.15 defines → (kind, setting).
const FLAGS: &[(&str, FlagKind, &str)] = &[
    ("h", Bool, "help"),
    ("help", Bool, "help"),
    ("help_tls", Bool, "help_tls"),
    ("v", Bool, "version"),
    ("version", Bool, "version"),
    ("t", Bool, "t"),
    ("c", Text, "config"),
    ("config", Text, "config"),
    ("sl", Text, "signal"),
    ("signal", Text, "signal"),
    ("p", Int, "port"),
    ("port", Int, "port"),
    ("a", Text, "host"),
    ("addr", Text, "host"),
    ("net", Text, "host"),
    ("n", Text, "server_name"),
    ("name", Text, "server_name"),
    ("server_name", Text, "server_name"),
    ("client_advertise", Text, "client_advertise"),
    ("m", Int, "http_port"),
    ("http_port", Int, "http_port"),
    ("ms", Int, "https_port"),
    ("https_port", Int, "https_port"),
    ("P", Text, "pid_file"),
    ("pid", Text, "pid_file"),
    ("ports_file_dir", Text, "ports_file_dir"),
    ("D", Bool, "debug"),
    ("debug", Bool, "debug"),
    ("V", Bool, "trace"),
    ("trace", Bool, "trace"),
    ("VV", Bool, "VV"),
    ("DV", Bool, "DV"),
    ("DVV", Bool, "DVV"),
    ("T", Bool, "logtime"),
    ("logtime", Bool, "logtime"),
    ("logtime_utc", Bool, "logtime_utc"),
    ("l", Text, "log_file"),
    ("log", Text, "log_file"),
    ("log_size_limit", Int, "log_size_limit"),
    ("max_traced_msg_len", Int, "max_traced_msg_len"),
    ("s", Bool, "syslog"),
    ("syslog", Bool, "syslog"),
    ("r", Text, "remote_syslog"),
    ("remote_syslog", Text, "remote_syslog"),
    ("js", Bool, "jetstream"),
    ("jetstream", Bool, "jetstream"),
    ("sd", Text, "store_dir"),
    ("store_dir", Text, "store_dir"),
    ("user", Text, "user"),
    ("pass", Text, "pass"),
    ("auth", Text, "auth"),
    ("tls", Bool, "tls"),
    ("tlsverify", Bool, "tlsverify"),
    ("tlscert", Text, "tlscert"),
    ("tlskey", Text, "tlskey"),
    ("tlscacert", Text, "tlscacert"),
    ("routes", Text, "routes"),
    ("cluster", Text, "cluster"),
    ("cluster_listen", Text, "cluster"),
    ("cluster_name", Text, "cluster_name"),
    ("cluster_advertise", Text, "cluster_advertise"),
    ("no_advertise", Bool, "no_advertise"),
    ("connect_retries", Int, "connect_retries"),
    ("profile", Int, "profile"),
];

/// The flag spelled `name` (case matters, as in Go).
pub(super) fn lookup(name: &str) -> Option<Flag> {
    FLAGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, kind, key)| Flag { kind, key })
}

/// Options set on the command line. `None` means "not given": the config
/// file's value (or the default) stays.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // each field is named after the flag that sets it
pub struct Overrides {
    pub host: Option<String>,
    pub port: Option<i64>,
    pub server_name: Option<String>,
    pub client_advertise: Option<String>,
    pub http_port: Option<i64>,
    pub https_port: Option<i64>,
    pub pid_file: Option<String>,
    pub ports_file_dir: Option<String>,
    pub debug: Option<bool>,
    pub trace: Option<bool>,
    /// `-VV`: trace and verbose trace.
    pub trace_verbose: Option<bool>,
    /// `-DV`: debug and trace.
    pub debug_trace: Option<bool>,
    /// `-DVV`: debug, trace and verbose trace.
    pub debug_trace_verbose: Option<bool>,
    pub logtime: Option<bool>,
    pub logtime_utc: Option<bool>,
    pub log_file: Option<String>,
    pub log_size_limit: Option<i64>,
    pub max_traced_msg_len: Option<i64>,
    pub syslog: Option<bool>,
    pub remote_syslog: Option<String>,
    pub jetstream: Option<bool>,
    pub store_dir: Option<String>,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub auth: Option<String>,
    /// `--tls` (or `--tls=false`, which turns TLS off).
    pub tls: Option<bool>,
    pub tls_verify: Option<bool>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub tls_ca_cert: Option<String>,
    /// `--routes`: comma separated route URLs.
    pub routes: Option<String>,
    /// `--cluster` / `--cluster_listen`.
    pub cluster_listen: Option<String>,
    pub cluster_name: Option<String>,
    pub cluster_advertise: Option<String>,
    pub no_advertise: Option<bool>,
    pub connect_retries: Option<i64>,
    /// `--profile`: profiling port.
    pub profile_port: Option<i64>,
}

impl Overrides {
    pub(super) fn set_bool(&mut self, key: &str, value: bool) {
        let slot = match key {
            "debug" => &mut self.debug,
            "trace" => &mut self.trace,
            "VV" => &mut self.trace_verbose,
            "DV" => &mut self.debug_trace,
            "DVV" => &mut self.debug_trace_verbose,
            "logtime" => &mut self.logtime,
            "logtime_utc" => &mut self.logtime_utc,
            "syslog" => &mut self.syslog,
            "jetstream" => &mut self.jetstream,
            "tls" => &mut self.tls,
            "tlsverify" => &mut self.tls_verify,
            "no_advertise" => &mut self.no_advertise,
            other => unreachable!("flag table names unknown bool setting {other}"),
        };
        *slot = Some(value);
    }

    pub(super) fn set_int(&mut self, key: &str, value: i64) {
        let slot = match key {
            "port" => &mut self.port,
            "http_port" => &mut self.http_port,
            "https_port" => &mut self.https_port,
            "log_size_limit" => &mut self.log_size_limit,
            "max_traced_msg_len" => &mut self.max_traced_msg_len,
            "connect_retries" => &mut self.connect_retries,
            "profile" => &mut self.profile_port,
            other => unreachable!("flag table names unknown int setting {other}"),
        };
        *slot = Some(value);
    }

    pub(super) fn set_text(&mut self, key: &str, value: String) {
        let slot = match key {
            "host" => &mut self.host,
            "server_name" => &mut self.server_name,
            "client_advertise" => &mut self.client_advertise,
            "pid_file" => &mut self.pid_file,
            "ports_file_dir" => &mut self.ports_file_dir,
            "log_file" => &mut self.log_file,
            "remote_syslog" => &mut self.remote_syslog,
            "store_dir" => &mut self.store_dir,
            "user" => &mut self.user,
            "pass" => &mut self.pass,
            "auth" => &mut self.auth,
            "tlscert" => &mut self.tls_cert,
            "tlskey" => &mut self.tls_key,
            "tlscacert" => &mut self.tls_ca_cert,
            "routes" => &mut self.routes,
            "cluster" => &mut self.cluster_listen,
            "cluster_name" => &mut self.cluster_name,
            "cluster_advertise" => &mut self.cluster_advertise,
            other => unreachable!("flag table names unknown text setting {other}"),
        };
        *slot = Some(value);
    }
}

/// What `--signal` sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalCommand {
    /// `stop`: kill the process (SIGKILL).
    Stop,
    /// `quit`: graceful shutdown (SIGINT).
    Quit,
    /// `term`: SIGTERM.
    Term,
    /// `reopen`: reopen the log file (SIGUSR1).
    Reopen,
    /// `reload`: reload the config (SIGHUP).
    Reload,
    /// `ldm`: enter lame duck mode (SIGUSR2).
    LameDuck,
}

impl SignalCommand {
    /// The command for a `--signal` name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "stop" => SignalCommand::Stop,
            "quit" => SignalCommand::Quit,
            "term" => SignalCommand::Term,
            "reopen" => SignalCommand::Reopen,
            "reload" => SignalCommand::Reload,
            "ldm" => SignalCommand::LameDuck,
            _ => return None,
        })
    }
}
