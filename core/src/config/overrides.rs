//! Command-line flags applied over the file's options: flags win, as in
//! nats-server.

use super::apply_blocks::DEFAULT_TLS_TIMEOUT;
use super::cli::{CliError, Overrides};
use super::error::ConfigError;
use super::options::{ServerOptions, TlsOptions};

/// Applies every flag that was given. Returns warning lines (flags natrix
/// accepts but does not act on yet).
pub fn apply_overrides(
    opts: &mut ServerOptions,
    o: &Overrides,
) -> Result<Vec<String>, ConfigError> {
    apply_text(opts, o);
    apply_numbers(opts, o)?;
    apply_logging(opts, o);
    apply_auth(opts, o);
    apply_tls(opts, o)?;
    Ok(unsupported(o))
}

fn apply_text(opts: &mut ServerOptions, o: &Overrides) {
    let text = |slot: &mut Option<String>, v: &Option<String>| {
        if v.is_some() {
            slot.clone_from(v);
        }
    };
    if let Some(host) = &o.host {
        opts.host.clone_from(host);
    }
    text(&mut opts.server_name, &o.server_name);
    text(&mut opts.client_advertise, &o.client_advertise);
    text(&mut opts.pid_file, &o.pid_file);
    text(&mut opts.ports_file_dir, &o.ports_file_dir);
    text(&mut opts.log_file, &o.log_file);
    text(&mut opts.remote_syslog, &o.remote_syslog);
    text(&mut opts.store_dir, &o.store_dir);
}

fn apply_numbers(opts: &mut ServerOptions, o: &Overrides) -> Result<(), ConfigError> {
    set_i32(&mut opts.port, o.port, "port")?;
    set_i32(&mut opts.http_port, o.http_port, "http_port")?;
    set_i32(&mut opts.https_port, o.https_port, "https_port")?;
    set_i32(&mut opts.prof_port, o.profile_port, "profile")?;
    if let Some(limit) = o.log_size_limit {
        opts.log_size_limit_bytes = limit;
    }
    if let Some(len) = o.max_traced_msg_len {
        opts.max_traced_msg_len = u32::try_from(len.max(0)).unwrap_or(u32::MAX);
    }
    Ok(())
}

fn set_i32(slot: &mut i32, value: Option<i64>, flag: &str) -> Result<(), ConfigError> {
    let Some(v) = value else { return Ok(()) };
    *slot = i32::try_from(v).map_err(|_| CliError::InvalidValue {
        flag: flag.to_owned(),
        value: v.to_string(),
        reason: "value out of range",
    })?;
    Ok(())
}

fn apply_logging(opts: &mut ServerOptions, o: &Overrides) {
    let flag = |slot: &mut bool, v: Option<bool>| {
        if let Some(b) = v {
            *slot = b;
        }
    };
    flag(&mut opts.debug, o.debug);
    flag(&mut opts.trace, o.trace);
    flag(&mut opts.logtime, o.logtime);
    flag(&mut opts.logtime_utc, o.logtime_utc);
    flag(&mut opts.syslog, o.syslog);
    flag(&mut opts.jetstream, o.jetstream);
    // The combined flags come after the single ones, in nats-server's
    // (alphabetical) order: -DV, -DVV, -VV.
    if let Some(b) = o.debug_trace {
        opts.debug = b;
        opts.trace = b;
    }
    if let Some(b) = o.debug_trace_verbose {
        opts.debug = b;
        opts.trace = b;
        opts.trace_verbose = b;
    }
    if let Some(b) = o.trace_verbose {
        opts.trace = b;
        opts.trace_verbose = b;
    }
}

fn apply_auth(opts: &mut ServerOptions, o: &Overrides) {
    let auth = &mut opts.authorization;
    if o.user.is_some() {
        auth.user.clone_from(&o.user);
    }
    if o.pass.is_some() {
        auth.password.clone_from(&o.pass);
    }
    if o.auth.is_some() {
        auth.token.clone_from(&o.auth);
    }
}

/// `--tls=false` turns TLS off; any other TLS flag replaces the file's TLS
/// settings with the flags' and needs both a certificate and a key.
fn apply_tls(opts: &mut ServerOptions, o: &Overrides) -> Result<(), ConfigError> {
    if o.tls == Some(false) {
        opts.tls = None;
        return Ok(());
    }
    let any = o.tls.is_some()
        || o.tls_verify.is_some()
        || o.tls_cert.is_some()
        || o.tls_key.is_some()
        || o.tls_ca_cert.is_some();
    if !any {
        return Ok(());
    }
    let Some(cert) = o.tls_cert.clone().filter(|c| !c.is_empty()) else {
        return Err(ConfigError::TlsFlags(
            "TLS Server certificate must be present and valid",
        ));
    };
    let Some(key) = o.tls_key.clone().filter(|k| !k.is_empty()) else {
        return Err(ConfigError::TlsFlags(
            "TLS Server private key must be present and valid",
        ));
    };
    opts.tls = Some(TlsOptions {
        cert_file: Some(cert),
        key_file: Some(key),
        ca_file: o.tls_ca_cert.clone().filter(|c| !c.is_empty()),
        verify: o.tls_verify.unwrap_or(false),
        timeout: DEFAULT_TLS_TIMEOUT,
        ..TlsOptions::default()
    });
    Ok(())
}

fn unsupported(o: &Overrides) -> Vec<String> {
    let given = [
        ("routes", o.routes.is_some()),
        ("cluster", o.cluster_listen.is_some()),
        ("cluster_name", o.cluster_name.is_some()),
        ("cluster_advertise", o.cluster_advertise.is_some()),
        ("no_advertise", o.no_advertise.is_some()),
        ("connect_retries", o.connect_retries.is_some()),
    ];
    given
        .iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| format!("flag --{name} is not supported by natrix yet and is ignored"))
        .collect()
}
