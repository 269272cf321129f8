//! The value tree mapped onto [`ServerOptions`], key by key, with
//! nats-server's key names, aliases and checks. Every problem is collected
//! (nats-server reports them all at once) in source order.

use std::time::Duration;

use super::duration::{format_go_duration, parse_go_duration};
use super::error::Diagnostic;
use super::options::ServerOptions;
use super::value::{ConfigMap, Entry, Pos, Value, ValueKind};

/// What mapping a tree found besides the options themselves.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Fatal problems.
    pub(crate) errors: Vec<Diagnostic>,
    /// Problems nats-server warns about (fatal under `-t`).
    pub(crate) warnings: Vec<Diagnostic>,
    /// Settings nats-server knows that natrix accepts but does not act on.
    pub(crate) unsupported: Vec<Diagnostic>,
}

impl Report {
    pub(crate) fn error(&mut self, pos: &Pos, message: impl Into<String>) {
        self.errors.push(Diagnostic::new(pos, message));
    }

    pub(crate) fn warn(&mut self, pos: &Pos, field: &str, reason: &str) {
        self.warnings.push(Diagnostic::new(
            pos,
            format!("invalid use of field \"{field}\": {reason}"),
        ));
    }

    pub(crate) fn unsupported(&mut self, pos: &Pos, what: &str) {
        self.unsupported.push(Diagnostic::new(
            pos,
            format!("\"{what}\" is not supported by natrix yet and is ignored"),
        ));
    }

    pub(crate) fn unknown_field(&mut self, entry: &Entry) {
        if !entry.used_as_variable {
            self.error(&entry.value.pos, format!("unknown field \"{}\"", entry.key));
        }
    }

    fn wrong_type(&mut self, value: &Value, key: &str, expected: &str) {
        self.error(
            &value.pos,
            format!(
                "expected {expected} for \"{key}\", got {}",
                value.kind.type_name()
            ),
        );
    }

    /// The value as an integer, or an error.
    pub(crate) fn int(&mut self, value: &Value, key: &str) -> Option<i64> {
        match value.kind {
            ValueKind::Integer(i) => Some(i),
            _ => {
                self.wrong_type(value, key, "an integer");
                None
            }
        }
    }

    /// The value as a string, or an error.
    pub(crate) fn string(&mut self, value: &Value, key: &str) -> Option<String> {
        match &value.kind {
            ValueKind::String(s) => Some(s.clone()),
            _ => {
                self.wrong_type(value, key, "a string");
                None
            }
        }
    }

    /// The value as a boolean, or an error.
    pub(crate) fn boolean(&mut self, value: &Value, key: &str) -> Option<bool> {
        match value.kind {
            ValueKind::Bool(b) => Some(b),
            _ => {
                self.wrong_type(value, key, "a boolean");
                None
            }
        }
    }

    /// The value as a map, or an error.
    pub(crate) fn map<'v>(&mut self, value: &'v Value, key: &str) -> Option<&'v ConfigMap> {
        match &value.kind {
            ValueKind::Map(m) => Some(m),
            _ => {
                self.wrong_type(value, key, "a map");
                None
            }
        }
    }

    /// An integer that must fit `0..=i32::MAX` (nats-server's `int32` limits).
    fn limit_u32(&mut self, value: &Value, key: &str) -> Option<u32> {
        let n = self.int(value, key)?;
        if n > i64::from(i32::MAX) {
            self.error(&value.pos, format!("{key} value is too big"));
            return None;
        }
        u32::try_from(n).ok().or_else(|| {
            self.error(&value.pos, format!("{key} value can not be negative"));
            None
        })
    }

    /// A port number: `-1` (random) to 65535.
    pub(crate) fn port(&mut self, value: &Value, key: &str) -> Option<i32> {
        let n = self.int(value, key)?;
        i32::try_from(n)
            .ok()
            .filter(|p| (-1..=65535).contains(p))
            .or_else(|| {
                self.error(&value.pos, format!("invalid port {n} for \"{key}\""));
                None
            })
    }

    /// A Go duration string; a bare integer is seconds and draws
    /// nats-server's "should be converted to a duration" warning.
    pub(crate) fn duration(&mut self, value: &Value, key: &str) -> Option<Duration> {
        match &value.kind {
            ValueKind::String(s) => match parse_go_duration(s) {
                Ok(nanos) => Some(Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))),
                Err(e) => {
                    self.error(&value.pos, format!("error parsing {key}: {e}"));
                    None
                }
            },
            ValueKind::Integer(secs) => {
                self.warn(
                    &value.pos,
                    key,
                    &format!("{key} should be converted to a duration"),
                );
                Some(Duration::from_secs(u64::try_from(*secs).unwrap_or(0)))
            }
            _ => {
                self.wrong_type(value, key, "a duration");
                None
            }
        }
    }

    /// Seconds as an integer, a float or a duration string (auth and TLS timeouts).
    pub(crate) fn seconds(&mut self, value: &Value, what: &str) -> Option<Duration> {
        let secs = match &value.kind {
            ValueKind::Integer(i) => *i as f64,
            ValueKind::Float(f) => *f,
            ValueKind::String(s) => match parse_go_duration(s) {
                Ok(nanos) => nanos as f64 / 1e9,
                Err(e) => {
                    self.error(&value.pos, format!("error parsing {what}, 'timeout' {e}"));
                    return None;
                }
            },
            _ => {
                self.error(
                    &value.pos,
                    format!("error parsing {what}, 'timeout' wrong type"),
                );
                return None;
            }
        };
        Duration::try_from_secs_f64(secs.max(0.0)).ok()
    }
}

/// Keys nats-server accepts that natrix parses but does not act on yet.
const UNSUPPORTED_TOP_LEVEL: &[&str] = &[
    "cluster",
    "gateway",
    "leaf",
    "leafnodes",
    "operator",
    "operators",
    "roots",
    "root",
    "root_operators",
    "root_operator",
    "resolver",
    "account_resolver",
    "accounts_resolver",
    "resolver_tls",
    "resolver_preload",
    "resolver_pinned_accounts",
    "trusted",
    "trusted_keys",
    "server_tags",
    "server_metadata",
    "feature_flags",
    "default_js_domain",
    "ocsp",
    "ocsp_cache",
    "default_sentinel",
    "proxy_protocol",
    "proxies",
    "prof_block_rate",
    "max_sub_tokens",
    "max_subscription_tokens",
    "allow_non_tls",
    "write_timeout",
    "no_fast_producer_stall",
    "trace_headers",
];

/// Applies every top-level entry of `map` to `opts`.
pub(crate) fn apply_tree(map: &ConfigMap, opts: &mut ServerOptions, report: &mut Report) {
    for entry in map.entries() {
        let key = entry.key.to_ascii_lowercase();
        if !apply_server(&key, entry, opts, report)
            && !apply_logging(&key, entry, opts, report)
            && !apply_limits(&key, entry, opts, report)
            && !super::apply_blocks::apply_block(&key, entry, opts, report)
        {
            if UNSUPPORTED_TOP_LEVEL.contains(&key.as_str()) {
                report.unsupported(&entry.value.pos, &entry.key);
            } else {
                report.unknown_field(entry);
            }
        }
    }
}

/// Addresses, ports and identity. `false` when `key` is not one of them.
fn apply_server(key: &str, entry: &Entry, opts: &mut ServerOptions, r: &mut Report) -> bool {
    let v = &entry.value;
    match key {
        "listen" => {
            if let Some((host, port)) = listen(v, key, r) {
                opts.host = host.unwrap_or_else(|| opts.host.clone());
                opts.port = port;
            }
        }
        "host" | "net" => set(&mut opts.host, r.string(v, key)),
        "port" => set(&mut opts.port, r.port(v, key)),
        "server_name" => match r.string(v, key) {
            Some(name) if name.contains(' ') => {
                r.error(&v.pos, "server name cannot contain spaces")
            }
            name => set_some(&mut opts.server_name, name),
        },
        "client_advertise" => set_some(&mut opts.client_advertise, r.string(v, key)),
        "http" | "https" => {
            if let Some((host, port)) = listen(v, key, r) {
                set_some(&mut opts.http_host, host);
                let slot = if key == "http" {
                    &mut opts.http_port
                } else {
                    &mut opts.https_port
                };
                *slot = port;
            }
        }
        "http_port" | "monitor_port" => set(&mut opts.http_port, r.port(v, key)),
        "https_port" => set(&mut opts.https_port, r.port(v, key)),
        "http_host" => set_some(&mut opts.http_host, r.string(v, key)),
        "http_base_path" => set(&mut opts.http_base_path, r.string(v, key)),
        "pidfile" | "pid_file" => set_some(&mut opts.pid_file, r.string(v, key)),
        "ports_file_dir" => set_some(&mut opts.ports_file_dir, r.string(v, key)),
        "prof_port" => set(&mut opts.prof_port, r.port(v, key)),
        "no_auth_user" => set_some(&mut opts.no_auth_user, r.string(v, key)),
        "system_account" | "system" => set_some(&mut opts.system_account, r.string(v, key)),
        "no_system_account" | "no_system" | "no_sys_acc" => {
            set(&mut opts.no_system_account, r.boolean(v, key))
        }
        _ => return false,
    }
    true
}

/// Logging switches. `false` when `key` is not one of them.
fn apply_logging(key: &str, entry: &Entry, opts: &mut ServerOptions, r: &mut Report) -> bool {
    let v = &entry.value;
    match key {
        "debug" => set(&mut opts.debug, r.boolean(v, key)),
        "trace" => set(&mut opts.trace, r.boolean(v, key)),
        "trace_verbose" => {
            if let Some(b) = r.boolean(v, key) {
                opts.trace_verbose = b;
                opts.trace = b;
            }
        }
        "logtime" => set(&mut opts.logtime, r.boolean(v, key)),
        "logtime_utc" => set(&mut opts.logtime_utc, r.boolean(v, key)),
        "logfile" | "log_file" => set_some(&mut opts.log_file, r.string(v, key)),
        "logfile_size_limit" | "log_size_limit" => {
            set(&mut opts.log_size_limit_bytes, r.int(v, key))
        }
        "logfile_max_num" | "log_max_num" => set(&mut opts.log_max_files, r.int(v, key)),
        "syslog" => set(&mut opts.syslog, r.boolean(v, key)),
        "remote_syslog" => set_some(&mut opts.remote_syslog, r.string(v, key)),
        "max_traced_msg_len" => set(&mut opts.max_traced_msg_len, r.limit_u32(v, key)),
        "connect_error_reports" => set(&mut opts.connect_error_reports, r.limit_u32(v, key)),
        "reconnect_error_reports" => set(&mut opts.reconnect_error_reports, r.limit_u32(v, key)),
        _ => return false,
    }
    true
}

/// Limits and timers. `false` when `key` is not one of them.
fn apply_limits(key: &str, entry: &Entry, opts: &mut ServerOptions, r: &mut Report) -> bool {
    let v = &entry.value;
    match key {
        "max_payload" => set(&mut opts.max_payload_bytes, r.limit_u32(v, key)),
        "max_control_line" => set(&mut opts.max_control_line_bytes, r.limit_u32(v, key)),
        "max_pending" => match r.int(v, key).map(u64::try_from) {
            Some(Ok(n)) => opts.max_pending_bytes = n,
            Some(Err(_)) => r.error(&v.pos, format!("{key} value can not be negative")),
            None => {}
        },
        // nats-server turns 0 (and any negative) into "refuse every client".
        "max_connections" | "max_conn" => set(
            &mut opts.max_connections,
            r.int(v, key)
                .map(|n| u32::try_from(n.min(i64::from(u32::MAX))).unwrap_or(0)),
        ),
        "max_subscriptions" | "max_subs" => set(
            &mut opts.max_subscriptions,
            r.int(v, key)
                .map(|n| u32::try_from(n.clamp(0, i64::from(u32::MAX))).unwrap_or(0)),
        ),
        "max_closed_clients" => set(&mut opts.max_closed_clients, r.limit_u32(v, key)),
        "ping_interval" => set(&mut opts.ping_interval, r.duration(v, key)),
        "ping_max" => set(&mut opts.ping_max, r.limit_u32(v, key)),
        "write_deadline" => set(&mut opts.write_deadline, r.duration(v, key)),
        "lame_duck_duration" => set(&mut opts.lame_duck_duration, lame_duck_duration(v, key, r)),
        "lame_duck_grace_period" => {
            set(&mut opts.lame_duck_grace_period, lame_duck_grace(v, key, r))
        }
        "no_header_support" => set(&mut opts.no_header_support, r.boolean(v, key)),
        "disable_sublist_cache" | "no_sublist_cache" => {
            set(&mut opts.disable_sublist_cache, r.boolean(v, key))
        }
        _ => return false,
    }
    true
}

fn lame_duck_duration(v: &Value, key: &str, r: &mut Report) -> Option<Duration> {
    let text = r.string(v, key)?;
    match parse_go_duration(&text) {
        Err(e) => r.error(&v.pos, format!("error parsing {key}: {e}")),
        Ok(n) if n < 30_000_000_000 => r.error(
            &v.pos,
            format!(
                "invalid {key} of {}{}, minimum is 30 seconds",
                if n < 0 { "-" } else { "" },
                format_go_duration(Duration::from_nanos(n.unsigned_abs()))
            ),
        ),
        Ok(n) => return Some(Duration::from_nanos(n.unsigned_abs())),
    }
    None
}

fn lame_duck_grace(v: &Value, key: &str, r: &mut Report) -> Option<Duration> {
    let text = r.string(v, key)?;
    match parse_go_duration(&text) {
        Err(e) => r.error(&v.pos, format!("error parsing {key}: {e}")),
        Ok(n) if n < 0 => r.error(&v.pos, format!("invalid {key}, needs to be positive")),
        Ok(n) => return Some(Duration::from_nanos(n.unsigned_abs())),
    }
    None
}

/// `listen`/`http`/`https`: a port alone or `host:port` (`[v6]:port`).
pub(crate) fn listen(v: &Value, key: &str, r: &mut Report) -> Option<(Option<String>, i32)> {
    match &v.kind {
        ValueKind::Integer(_) => r.port(v, key).map(|p| (None, p)),
        ValueKind::String(s) => {
            let parsed = split_host_port(s);
            let Some((host, port)) = parsed else {
                r.error(&v.pos, format!("could not parse address string \"{s}\""));
                return None;
            };
            match port.parse::<i32>() {
                Ok(p) => Some((Some(host.to_owned()), p)),
                Err(_) => {
                    r.error(&v.pos, format!("could not parse port \"{port}\""));
                    None
                }
            }
        }
        other => {
            r.error(
                &v.pos,
                format!("expected port or host:port, got {}", other.type_name()),
            );
            None
        }
    }
}

/// Go's `net.SplitHostPort` for the forms a listen address takes.
pub(crate) fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return Some((host, after.strip_prefix(':')?));
    }
    let (host, port) = s.rsplit_once(':')?;
    (!host.contains(':')).then_some((host, port))
}

pub(crate) fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

pub(crate) fn set_some<T>(slot: &mut Option<T>, value: Option<T>) {
    if let Some(v) = value {
        *slot = Some(v);
    }
}
