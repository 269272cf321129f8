//! What a config reload may change, as nats-server decides it: the old and
//! the new options compared setting by setting, in the order of
//! nats-server's `Options` (so the first refusal is the one it reports),
//! giving the `Reloaded: …` lines of what changed, or the refusal.

use std::fmt::Display;
use std::time::Duration;

use crate::config::duration::format_go_duration;
use crate::config::{Authorization, ServerOptions, User};

/// Why a reload was refused; the old configuration stays in force.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// A setting nats-server cannot change at runtime changed. `field` is
    /// nats-server's name for it (`Port`, `MaxPending`…), the values as it
    /// prints them.
    #[error("config reload not supported for {field}: old={old}, new={new}")]
    Unsupported {
        /// nats-server's option name.
        field: &'static str,
        /// The value in force.
        old: String,
        /// The value the new file asks for.
        new: String,
    },
    /// A refusal nats-server words on its own (`config reload does not
    /// support moving to or from an account resolver`…).
    #[error("{0}")]
    Refused(&'static str),
    /// The new options do not hold together (nats-server's option
    /// validation, run before the comparison).
    #[error("{0}")]
    Invalid(String),
    /// The server was started without a config file.
    #[error("can only reload config when a file is provided using -c or --config")]
    NoConfigFile,
}

/// Compares `old` with `new`: the log lines of the reloadable settings
/// that changed, or the first refusal.
///
/// Every field of [`ServerOptions`] is named here (the destructuring has
/// no `..`), so a new setting cannot be added without deciding whether a
/// reload may change it.
pub(crate) fn diff(old: &ServerOptions, new: &ServerOptions) -> Result<Vec<String>, ReloadError> {
    let ServerOptions {
        server_name,
        host,
        port,
        client_advertise,
        http_host,
        http_port,
        https_port,
        http_base_path,
        max_payload_bytes,
        max_control_line_bytes,
        max_connections,
        max_subscriptions,
        max_pending_bytes,
        memory_limit_bytes,
        ping_interval,
        ping_max,
        auth_timeout,
        write_deadline,
        lame_duck_duration,
        lame_duck_grace_period,
        max_closed_clients,
        no_header_support,
        disable_sublist_cache,
        max_traced_msg_len,
        authorization,
        no_auth_user,
        tls,
        debug,
        trace,
        trace_verbose,
        logtime,
        logtime_utc,
        log_file,
        syslog,
        pid_file,
        ports_file_dir,
        jetstream,
        store_dir,
        connect_error_reports,
        reconnect_error_reports,
        // Where the options came from, not a setting.
        config_file: _,
        remote_syslog,
        log_size_limit_bytes,
        log_max_files,
        prof_port,
        system_account,
        no_system_account,
        jetstream_max_memory_bytes,
        jetstream_max_store_bytes,
        jetstream_domain,
        jetstream_sync,
        // Accounts and mappings are always reloaded, as nats-server does.
        accounts: _,
        mappings: _,
        operators,
        resolver,
        resolver_preload,
        websocket,
        mqtt,
    } = new;
    if u64::from(*max_payload_bytes) > *max_pending_bytes {
        return Err(ReloadError::Invalid(format!(
            "max_payload ({max_payload_bytes}) cannot be higher than max_pending ({max_pending_bytes})"
        )));
    }
    let mut d = Diff { lines: Vec::new() };
    d.fixed("ServerName", &old.server_name, server_name, opt)?;
    d.fixed("Host", &old.host, host, plain)?;
    d.fixed("Port", &old.port, port, plain)?;
    d.note(&old.client_advertise, client_advertise, |v| format!("Reload: client_advertise = {}", opt(v)));
    d.note(&old.trace, trace, |v| format!("Reloaded: trace = {v}"));
    d.note(&old.debug, debug, |v| format!("Reloaded: debug = {v}"));
    d.note(&old.trace_verbose, trace_verbose, |v| format!("Reloaded: trace_verbose = {v}"));
    d.fixed("NoSublistCache", &old.disable_sublist_cache, disable_sublist_cache, plain)?;
    d.fixed("NoHeaderSupport", &old.no_header_support, no_header_support, plain)?;
    d.note(&old.logtime, logtime, |v| format!("Reloaded: logtime = {v}"));
    d.note(&old.logtime_utc, logtime_utc, |v| format!("Reloaded: logtime_utc = {v}"));
    d.note(&old.max_connections, max_connections, |v| format!("Reloaded: max_connections = {v}"));
    d.fixed("MaxSubs", &old.max_subscriptions, max_subscriptions, plain)?;
    d.users(&old.authorization, authorization);
    // nats-server reloads the accounts on every reload, changed or not.
    d.lines.push("Reloaded: accounts".to_owned());
    no_auth_user_change(&old.no_auth_user, no_auth_user, &authorization.users)?;
    system_account_change(&old.system_account, system_account)?;
    d.fixed("NoSystemAccount", &old.no_system_account, no_system_account, plain)?;
    d.single_user(&old.authorization, authorization);
    d.note(&old.ping_interval, ping_interval, |v| format!("Reloaded: ping_interval = {}", format_go_duration(*v)));
    d.note(&old.ping_max, ping_max, |v| format!("Reloaded: ping_max = {v}"));
    d.fixed("HTTPHost", &old.http_host, http_host, opt)?;
    d.fixed("HTTPPort", &old.http_port, http_port, plain)?;
    d.fixed("HTTPBasePath", &old.http_base_path, http_base_path, plain)?;
    d.fixed("HTTPSPort", &old.https_port, https_port, plain)?;
    d.note(&old.auth_timeout, auth_timeout, |v| format!("Reloaded: authorization timeout = {}", seconds(*v)));
    d.note(&old.max_control_line_bytes, max_control_line_bytes, |v| format!("Reloaded: max_control_line = {v}"));
    d.note(&old.max_payload_bytes, max_payload_bytes, |v| format!("Reloaded: max_payload = {v}"));
    d.fixed("MaxPending", &old.max_pending_bytes, max_pending_bytes, plain)?;
    // natrix's own: the next measurement applies the new limit.
    d.note(&old.memory_limit_bytes, memory_limit_bytes, |v| format!("Reloaded: memory_limit = {}", v.unwrap_or(0)));
    // nats-server can turn JetStream on and off at runtime; natrix cannot yet.
    d.fixed("JetStream", &old.jetstream, jetstream, plain)?;
    jetstream_limits(old, jetstream_max_memory_bytes, jetstream_max_store_bytes)?;
    d.fixed("JetStreamDomain", &old.jetstream_domain, jetstream_domain, opt)?;
    if old.jetstream && old.store_dir != *store_dir {
        return Err(ReloadError::Refused("config reload not supported for jetstream storage directory"));
    }
    d.fixed("SyncInterval", &old.jetstream_sync, jetstream_sync, |v| format!("{v:?}"))?;
    websocket_change(&old.websocket, websocket)?;
    d.fixed("MQTT", &old.mqtt, mqtt, |v| format!("{v:?}"))?;
    d.fixed("ProfPort", &old.prof_port, prof_port, plain)?;
    d.note(&old.pid_file, pid_file, |v| format!("Reloaded: pid_file = {}", opt(v)));
    d.note(&old.ports_file_dir, ports_file_dir, |v| format!("Reloaded: ports_file_dir = {}", opt(v)));
    d.note(&old.log_file, log_file, |v| format!("Reloaded: log_file = {}", opt(v)));
    d.fixed("LogSizeLimit", &old.log_size_limit_bytes, log_size_limit_bytes, plain)?;
    d.fixed("LogMaxFiles", &old.log_max_files, log_max_files, plain)?;
    d.note(&old.syslog, syslog, |v| format!("Reloaded: syslog = {v}"));
    d.note(&old.remote_syslog, remote_syslog, |v| format!("Reloaded: remote_syslog = {}", opt(v)));
    d.tls(old, tls);
    d.note(&old.write_deadline, write_deadline, |v| format!("Reloaded: write_deadline = {}", format_go_duration(*v)));
    d.fixed("MaxClosedClients", &old.max_closed_clients, max_closed_clients, plain)?;
    d.fixed("LameDuckDuration", &old.lame_duck_duration, lame_duck_duration, |v| format_go_duration(*v))?;
    d.fixed("LameDuckGracePeriod", &old.lame_duck_grace_period, lame_duck_grace_period, |v| {
        format_go_duration(*v)
    })?;
    d.note(&old.max_traced_msg_len, max_traced_msg_len, |v| format!("Reloaded: max_traced_msg_len = {v}"));
    d.fixed("TrustedOperators", &old.operators, operators, |v| format!("{v:?}"))?;
    if old.resolver.is_some() != resolver.is_some() {
        return Err(ReloadError::Refused("config reload does not support moving to or from an account resolver"));
    }
    // nats-server re-reads the resolver's accounts on a reload; natrix
    // keeps the ones it started with, so it refuses a change it would not apply.
    d.fixed("AccountResolver", &old.resolver, resolver, |v| format!("{v:?}"))?;
    d.fixed("ResolverPreload", &old.resolver_preload, resolver_preload, |v| format!("{} accounts", v.len()))?;
    d.note(&old.connect_error_reports, connect_error_reports, |v| format!("Reloaded: connect_error_reports = {v}"));
    d.note(&old.reconnect_error_reports, reconnect_error_reports, |v| {
        format!("Reloaded: reconnect_error_reports = {v}")
    });
    Ok(d.lines)
}

struct Diff {
    lines: Vec<String>,
}

impl Diff {
    /// A setting a reload may not change.
    fn fixed<T: PartialEq>(
        &self,
        field: &'static str,
        old: &T,
        new: &T,
        show: impl Fn(&T) -> String,
    ) -> Result<(), ReloadError> {
        if old == new {
            return Ok(());
        }
        Err(ReloadError::Unsupported { field, old: show(old), new: show(new) })
    }

    /// A reloadable setting: its line when it changed.
    fn note<T: PartialEq>(&mut self, old: &T, new: &T, line: impl Fn(&T) -> String) {
        if old != new {
            self.lines.push(line(new));
        }
    }

    /// nkey users when they changed; the users always (nats-server
    /// compares neither its users nor its accounts, it reloads them).
    fn users(&mut self, old: &Authorization, new: &Authorization) {
        let nkeys = |a: &Authorization| a.users.iter().filter(|u| u.nkey.is_some()).cloned().collect::<Vec<_>>();
        if nkeys(old) != nkeys(new) {
            self.lines.push("Reloaded: authorization nkey users".to_owned());
        }
        self.lines.push("Reloaded: authorization users".to_owned());
    }

    /// The single user, its password and the token.
    fn single_user(&mut self, old: &Authorization, new: &Authorization) {
        if old.user != new.user {
            self.lines.push("Reloaded: authorization username".to_owned());
        }
        if old.password != new.password {
            self.lines.push("Reloaded: authorization password".to_owned());
        }
        if old.token != new.token {
            self.lines.push("Reloaded: authorization token".to_owned());
        }
    }

    fn tls(&mut self, old: &ServerOptions, new: &Option<crate::config::TlsOptions>) {
        if old.tls.as_ref().map(|t| t.timeout) != new.as_ref().map(|t| t.timeout) {
            if let Some(t) = new {
                self.lines.push(format!("Reloaded: tls timeout = {}", seconds(t.timeout)));
            }
        }
        if old.tls != *new {
            let state = if new.is_some() { "enabled" } else { "disabled" };
            self.lines.push(format!("Reloaded: tls = {state}"));
        }
        let first = |t: &Option<crate::config::TlsOptions>| t.as_ref().is_some_and(|t| t.handshake_first);
        if first(&old.tls) != first(new) {
            self.lines.push(format!("Reloaded: Client TLS handshake first: {}", first(new)));
        }
    }
}

/// `no_auth_user` may only be dropped along with its user.
fn no_auth_user_change(old: &Option<String>, new: &Option<String>, users: &[User]) -> Result<(), ReloadError> {
    if old == new {
        return Ok(());
    }
    let refused =
        || ReloadError::Unsupported { field: "NoAuthUser", old: opt(old), new: opt(new) };
    match (old, new) {
        (Some(name), None) if users.iter().any(|u| u.user == *name) => Err(refused()),
        (Some(_), None) => Ok(()),
        _ => Err(refused()),
    }
}

/// `system_account` may only go from nats-server's default to unset.
fn system_account_change(old: &Option<String>, new: &Option<String>) -> Result<(), ReloadError> {
    if old == new || (old.as_deref() == Some("$SYS") && new.is_none()) {
        return Ok(());
    }
    Err(ReloadError::Unsupported { field: "SystemAccount", old: opt(old), new: opt(new) })
}

/// JetStream's memory and storage budgets. nats-server allows raising
/// them at runtime; natrix does not apply a new budget yet, so it refuses
/// any change, with nats-server's words where it has them.
fn jetstream_limits(old: &ServerOptions, memory: &Option<i64>, store: &Option<i64>) -> Result<(), ReloadError> {
    if !old.jetstream || (old.jetstream_max_memory_bytes == *memory && old.jetstream_max_store_bytes == *store) {
        return Ok(());
    }
    let pairs = [(old.jetstream_max_memory_bytes, *memory), (old.jetstream_max_store_bytes, *store)];
    for (before, after) in pairs {
        match (before, after) {
            (None, Some(_)) => {
                return Err(ReloadError::Refused("config reload not supported for jetstream dynamic max memory and store"))
            }
            (Some(b), Some(a)) if a < b => {
                return Err(ReloadError::Refused(
                    "config reload not supported for decreasing jetstream max memory and store",
                ))
            }
            _ => {}
        }
    }
    Err(ReloadError::Refused("config reload not supported for jetstream max memory and max store"))
}

/// The `websocket {}` block. nats-server lets a reload change its TLS
/// certificates; natrix's WebSocket listener keeps the ones it started
/// with, so it refuses every change rather than ignore one.
fn websocket_change(
    old: &crate::config::WebsocketOptions,
    new: &crate::config::WebsocketOptions,
) -> Result<(), ReloadError> {
    if old == new {
        return Ok(());
    }
    let (mut a, mut b) = (old.clone(), new.clone());
    // Certificate paths are not worth printing; the rest says what changed.
    a.tls = None;
    b.tls = None;
    Err(ReloadError::Unsupported { field: "Websocket", old: format!("{a:?}"), new: format!("{b:?}") })
}

fn plain<T: Display>(v: &T) -> String {
    v.to_string()
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// Seconds as Go prints a float64 (`2`, `0.5`).
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", d.as_secs())
    } else {
        format!("{s}")
    }
}
