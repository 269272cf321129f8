//! The structured top-level keys: `authorization`, `tls`, `jetstream` and
//! `store_dir`, with nats-server's aliases, checks and error texts.

use std::time::Duration;

use super::apply::{set_some, Report};
use super::duration::parse_go_duration;
use super::options::{
    Authorization, JetStreamSync, Permissions, ResponsePermission, ServerOptions, SubjectPermission, TlsOptions,
    User,
};
use super::value::{ConfigMap, Entry, Value, ValueKind};

/// nats-server's TLS handshake timeout when none is configured.
pub const DEFAULT_TLS_TIMEOUT: Duration = Duration::from_secs(2);

/// Applies a structured key. `false` when `key` is not one of them.
pub(crate) fn apply_block(
    key: &str,
    entry: &Entry,
    opts: &mut ServerOptions,
    r: &mut Report,
) -> bool {
    let v = &entry.value;
    match key {
        "authorization" => authorization(v, opts, r),
        "accounts" => super::accounts::accounts(v, opts, r),
        "mappings" | "maps" => {
            let more = super::mappings::mappings(v, r);
            opts.mappings.extend(more);
        }
        "operator" | "operators" | "root_operator" | "root_operators" => super::accounts::operators(v, opts, r),
        "resolver" | "account_resolver" | "accounts_resolver" => super::accounts::resolver(v, opts, r),
        "resolver_preload" => super::accounts::resolver_preload(v, opts, r),
        "tls" => opts.tls = tls(v, r).or(opts.tls.take()),
        "jetstream" => jetstream(v, opts, r),
        "store_dir" | "storedir" => store_dir(v, key, opts, r),
        "websocket" | "ws" => super::websocket::websocket(v, opts, r),
        "mqtt" => super::mqtt::mqtt(v, opts, r),
        _ => return false,
    }
    true
}

fn store_dir(v: &Value, key: &str, opts: &mut ServerOptions, r: &mut Report) {
    if opts.store_dir.is_some() {
        r.error(&v.pos, "Duplicate 'store_dir' configuration");
        return;
    }
    set_some(&mut opts.store_dir, r.string(v, key));
}

fn authorization(v: &Value, opts: &mut ServerOptions, r: &mut Report) {
    let Some(map) = r.map(v, "authorization") else {
        return;
    };
    let mut auth = Authorization::default();
    let mut users_given = false;
    for entry in map.entries() {
        let ev = &entry.value;
        match entry.key.to_ascii_lowercase().as_str() {
            "user" | "username" => set_some(&mut auth.user, r.string(ev, &entry.key)),
            "pass" | "password" => set_some(&mut auth.password, r.string(ev, &entry.key)),
            "token" => set_some(&mut auth.token, r.string(ev, &entry.key)),
            "timeout" => auth_timeout(entry, opts, r),
            "users" => {
                users_given = true;
                auth.users = users(ev, r);
            }
            "default_permission" | "default_permissions" | "permissions" => {
                auth.default_permissions = permissions(ev, r);
            }
            "auth_callout" | "auth_hook" | "proxy_required" => r.unsupported(&ev.pos, &entry.key),
            _ => r.unknown_field(entry),
        }
    }
    if let Some(default) = &auth.default_permissions {
        for user in auth.users.iter_mut().filter(|u| u.permissions.is_none()) {
            user.permissions = Some(default.clone());
        }
    }
    check_auth(&auth, users_given, v, r);
    // Users of an `accounts {}` block read earlier in the file stay; a
    // name may not be both theirs and this block's.
    let account_users: Vec<User> = opts.authorization.users.drain(..).filter(|u| u.account.is_some()).collect();
    for user in &account_users {
        let id = user.nkey.as_deref().unwrap_or(&user.user);
        if auth.users.iter().any(|u| u.nkey.as_deref().unwrap_or(&u.user) == id) {
            let what = if user.nkey.is_some() { "nkey" } else { "user" };
            r.error(&v.pos, format!("Duplicate {what} \"{id}\" detected"));
        }
    }
    auth.users.extend(account_users);
    opts.authorization = auth;
}

fn check_auth(auth: &Authorization, users_given: bool, v: &Value, r: &mut Report) {
    let single = auth.user.is_some() || auth.password.is_some();
    if single && auth.token.is_some() {
        r.error(&v.pos, "Cannot have a user/pass and token");
    } else if users_given && auth.user.is_some() {
        r.error(&v.pos, "Can not have a single user/pass and a users array");
    } else if users_given && auth.token.is_some() {
        r.error(&v.pos, "Can not have a token and a users array");
    }
    let mut seen: Vec<&str> = Vec::new();
    for user in &auth.users {
        let id = user.nkey.as_deref().unwrap_or(&user.user);
        if seen.contains(&id) {
            let what = if user.nkey.is_some() { "nkey" } else { "user" };
            r.error(&v.pos, format!("Duplicate {what} \"{id}\" detected"));
        }
        seen.push(id);
    }
}

fn auth_timeout(entry: &Entry, opts: &mut ServerOptions, r: &mut Report) {
    let Some(timeout) = r.seconds(&entry.value, "authorization config") else {
        return;
    };
    if timeout > Duration::from_secs(60) {
        let reason = format!(
            "timeout of {} seconds is high, consider keeping it under 60 seconds. possibly caused \
             by unquoted duration; use '1m' instead of 1m, for example",
            timeout.as_secs_f64()
        );
        r.warn(&entry.value.pos, &entry.key, &reason);
    }
    opts.auth_timeout = timeout;
}

pub(crate) fn users(v: &Value, r: &mut Report) -> Vec<User> {
    let ValueKind::Array(items) = &v.kind else {
        r.error(
            &v.pos,
            format!(
                "Expected users field to be an array, got {}",
                v.kind.type_name()
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let ValueKind::Map(map) = &item.kind else {
            r.error(
                &item.pos,
                format!(
                    "Expected user entry to be a map/struct, got {}",
                    item.kind.type_name()
                ),
            );
            continue;
        };
        if let Some(user) = one_user(map, item, r) {
            out.push(user);
        }
    }
    out
}

fn one_user(map: &ConfigMap, item: &Value, r: &mut Report) -> Option<User> {
    let mut user = User::default();
    let mut name = None;
    for entry in map.entries() {
        let ev = &entry.value;
        match entry.key.to_ascii_lowercase().as_str() {
            "nkey" => set_some(&mut user.nkey, r.string(ev, &entry.key)),
            "user" | "username" => set_some(&mut name, r.string(ev, &entry.key)),
            "pass" | "password" => set_some(&mut user.password, r.string(ev, &entry.key)),
            "permission" | "permissions" | "authorization" => user.permissions = permissions(ev, r),
            // `account` belongs to users inside `accounts {}` blocks only;
            // nats-server rejects it here, and so does natrix.
            "allowed_connection_types" | "connection_types" | "clients" => {
                user.allowed_connection_types = connection_types(ev, r)
            }
            "proxy_required" => r.unsupported(&ev.pos, &entry.key),
            _ => r.unknown_field(entry),
        }
    }
    match (&user.nkey, name) {
        // nats-server points at the entry's last key.
        (None, None) => {
            let pos = map.entries().last().map_or(&item.pos, |e| &e.value.pos);
            r.error(pos, "User entry requires a user");
        }
        (Some(nkey), name) => {
            if !is_public_user_nkey(nkey) {
                r.error(&item.pos, "Not a valid public nkey for a user");
            } else if name.is_some() || user.password.is_some() {
                r.error(&item.pos, "Nkey users do not take usernames or passwords");
            } else {
                return Some(user);
            }
        }
        (None, Some(name)) => {
            user.user = name;
            return Some(user);
        }
    }
    None
}

/// A list of connection type names, upper-cased as nats-server compares them.
fn connection_types(v: &Value, r: &mut Report) -> Vec<String> {
    let ValueKind::Array(items) = &v.kind else {
        r.error(&v.pos, format!("Expected allowed_connection_types to be an array, got {}", v.kind.type_name()));
        return Vec::new();
    };
    items.iter().filter_map(|i| r.string(i, "allowed_connection_types")).map(|t| t.to_ascii_uppercase()).collect()
}

/// Shape check of a public user nkey: `U`, 56 base32 characters.
fn is_public_user_nkey(key: &str) -> bool {
    key.len() == 56
        && key.starts_with('U')
        && key
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

pub(crate) fn permissions(v: &Value, r: &mut Report) -> Option<Permissions> {
    let ValueKind::Map(map) = &v.kind else {
        r.error(
            &v.pos,
            format!(
                "Expected permissions to be a map/struct, got {}",
                v.kind.type_name()
            ),
        );
        return None;
    };
    let mut p = Permissions::default();
    for entry in map.entries() {
        let ev = &entry.value;
        match entry.key.to_ascii_lowercase().as_str() {
            "pub" | "publish" | "import" => p.publish = subject_permission(ev, false, r),
            "sub" | "subscribe" | "export" => p.subscribe = subject_permission(ev, true, r),
            "publish_allow_responses" | "allow_responses" => p.allow_responses = responses(ev, r),
            _ if entry.used_as_variable => {}
            _ => r.error(
                &ev.pos,
                format!("Unknown field \"{}\" parsing permissions", entry.key),
            ),
        }
    }
    if p.allow_responses.is_some() && p.publish.is_none() {
        // nats-server: allowing responses turns off the blanket publish allow.
        p.publish = Some(SubjectPermission::default());
    }
    Some(p)
}

/// `"subj"`, `["a", "b"]` or `{ allow: …, deny: … }`.
fn subject_permission(v: &Value, allow_queue: bool, r: &mut Report) -> Option<SubjectPermission> {
    let ValueKind::Map(map) = &v.kind else {
        return subjects(v, allow_queue, r).map(|allow| SubjectPermission {
            allow,
            deny: Vec::new(),
        });
    };
    if map.is_empty() {
        return None;
    }
    let mut p = SubjectPermission::default();
    for entry in map.entries() {
        match entry.key.to_ascii_lowercase().as_str() {
            "allow" => p.allow = subjects(&entry.value, allow_queue, r).unwrap_or_default(),
            "deny" => p.deny = subjects(&entry.value, allow_queue, r).unwrap_or_default(),
            _ if entry.used_as_variable => {}
            _ => r.error(&entry.value.pos, format!(
                "Unknown field name \"{}\" parsing subject permissions, only 'allow' or 'deny' are permitted",
                entry.key
            )),
        }
    }
    Some(p)
}

fn subjects(v: &Value, allow_queue: bool, r: &mut Report) -> Option<Vec<String>> {
    let list = match &v.kind {
        ValueKind::String(s) => vec![s.clone()],
        ValueKind::Array(items) => {
            let mut list = Vec::new();
            for item in items {
                let ValueKind::String(s) = &item.kind else {
                    r.error(
                        &item.pos,
                        "Subject in permissions array cannot be cast to string",
                    );
                    return None;
                };
                list.push(s.clone());
            }
            list
        }
        other => {
            r.error(
                &v.pos,
                format!(
                    "Expected subject permissions to be a subject, or array of subjects, got {}",
                    other.type_name()
                ),
            );
            return None;
        }
    };
    match list.iter().find_map(|s| check_perm_subject(s, allow_queue)) {
        Some(problem) => {
            r.error(&v.pos, problem);
            None
        }
        None => Some(list),
    }
}

/// A permission subject, or with `allow_queue` a `subject queue` pair.
fn check_perm_subject(s: &str, allow_queue: bool) -> Option<String> {
    if is_valid_subject(s) {
        return None;
    }
    let parts: Vec<&str> = s.split_whitespace().collect();
    match parts.as_slice() {
        [subject, queue] if allow_queue => {
            if !is_valid_subject(subject) {
                Some(format!("subject \"{subject}\" is not a valid subject"))
            } else if !is_valid_subject(queue) {
                Some(format!("queue \"{queue}\" is not a valid queue"))
            } else {
                None
            }
        }
        _ => Some(format!("subject \"{s}\" is not a valid subject")),
    }
}

/// Tokens separated by `.`, none empty, no whitespace; `>` only last.
fn is_valid_subject(s: &str) -> bool {
    if s.is_empty() || s.chars().any(char::is_whitespace) {
        return false;
    }
    let tokens: Vec<&str> = s.split('.').collect();
    let last = tokens.len() - 1;
    tokens
        .iter()
        .enumerate()
        .all(|(i, t)| !t.is_empty() && (*t != ">" || i == last))
}

fn responses(v: &Value, r: &mut Report) -> Option<ResponsePermission> {
    let map = match &v.kind {
        ValueKind::Bool(true) => return Some(ResponsePermission::default()),
        ValueKind::Bool(false) => return None,
        ValueKind::Map(map) => map,
        _ => {
            r.error(
                &v.pos,
                "error parsing response permissions, expected a boolean or a map",
            );
            return None;
        }
    };
    let (mut max_msgs, mut expires_ns) = (0, 0);
    for entry in map.entries() {
        let ev = &entry.value;
        match entry.key.to_ascii_lowercase().as_str() {
            "max" | "max_msgs" | "max_messages" | "max_responses" => max_msgs = r.int(ev, &entry.key)?,
            "expires" | "expiration" | "ttl" => expires_ns = response_expiry(ev, r)?,
            _ if entry.used_as_variable => {}
            _ => r.error(
                &ev.pos,
                format!("Unknown field \"{}\" parsing permissions", entry.key),
            ),
        }
    }
    Some(ResponsePermission::from_limits(max_msgs, expires_ns))
}

/// A Go duration string, in signed nanoseconds (negative: no expiry).
fn response_expiry(v: &Value, r: &mut Report) -> Option<i64> {
    let ValueKind::String(text) = &v.kind else {
        r.error(&v.pos, "error parsing expires, not a duration string");
        return None;
    };
    match parse_go_duration(text) {
        Ok(n) => Some(n),
        Err(e) => {
            r.error(&v.pos, format!("error parsing expires: {e}"));
            None
        }
    }
}

/// TLS keys natrix accepts without acting on them yet.
const UNSUPPORTED_TLS: &[&str] = &[
    "insecure",
    "verify_cert_and_check_known_urls",
    "allow_insecure_cipher_suites",
    "cipher_suites",
    "curve_preferences",
    "connection_rate_limit",
    "pinned_certs",
    "cert_store",
    "cert_match_by",
    "cert_match",
    "ca_certs_match",
    "cert_match_skip_invalid",
    "ocsp_peer",
    "certs",
    "certificates",
    "min_version",
];

pub(crate) fn tls(v: &Value, r: &mut Report) -> Option<TlsOptions> {
    let map = r.map(v, "tls")?;
    let mut t = TlsOptions {
        timeout: DEFAULT_TLS_TIMEOUT,
        ..TlsOptions::default()
    };
    for entry in map.entries() {
        let ev = &entry.value;
        let key = entry.key.to_ascii_lowercase();
        match key.as_str() {
            "cert_file" => t.cert_file = Some(tls_string(ev, &key, "filename", r)?),
            "key_file" => t.key_file = Some(tls_string(ev, &key, "filename", r)?),
            "ca_file" => t.ca_file = Some(tls_string(ev, &key, "filename", r)?),
            "verify" => t.verify = tls_bool(ev, &key, r)?,
            "verify_and_map" => {
                t.verify_and_map = tls_bool(ev, &key, r)?;
                t.verify |= t.verify_and_map;
            }
            "timeout" => t.timeout = r.seconds(ev, "tls config")?,
            "handshake_first" | "first" | "immediate" => {
                (t.handshake_first, t.handshake_first_fallback) = handshake_first(ev, &entry.key, r)?
            }
            k if UNSUPPORTED_TLS.contains(&k) => {
                r.unsupported(&ev.pos, &format!("tls.{}", entry.key))
            }
            _ => {
                r.error(
                    &ev.pos,
                    format!("error parsing tls config, unknown field \"{}\"", entry.key),
                );
                return None;
            }
        }
    }
    if t.timeout.is_zero() {
        t.timeout = DEFAULT_TLS_TIMEOUT;
    }
    Some(t)
}

fn tls_string(v: &Value, key: &str, what: &str, r: &mut Report) -> Option<String> {
    match &v.kind {
        ValueKind::String(s) => Some(s.clone()),
        _ => {
            r.error(
                &v.pos,
                format!("error parsing tls config, expected '{key}' to be {what}"),
            );
            None
        }
    }
}

fn tls_bool(v: &Value, key: &str, r: &mut Report) -> Option<bool> {
    match v.kind {
        ValueKind::Bool(b) => Some(b),
        _ => {
            r.error(
                &v.pos,
                format!("error parsing tls config, expected '{key}' to be a boolean"),
            );
            None
        }
    }
}

/// nats-server's default wait of `handshake_first: auto`.
const HANDSHAKE_FIRST_FALLBACK_DEFAULT: Duration = Duration::from_millis(50);

/// `true/false`, or `"auto"` / a duration (TLS first with a plain-text
/// fallback after that long): whether TLS comes first, and the fallback.
fn handshake_first(v: &Value, key: &str, r: &mut Report) -> Option<(bool, Option<Duration>)> {
    match &v.kind {
        ValueKind::Bool(b) => Some((*b, None)),
        ValueKind::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "on" => Some((true, None)),
            "auto" | "auto_fallback" => Some((true, Some(HANDSHAKE_FIRST_FALLBACK_DEFAULT))),
            "false" | "off" => Some((false, None)),
            _ if parse_go_duration(s).is_ok() => {
                // Zero or negative waits for nothing: TLS first only.
                let wait = parse_go_duration(s)
                    .ok()
                    .and_then(|ns| u64::try_from(ns).ok())
                    .filter(|ns| *ns > 0)
                    .map(Duration::from_nanos);
                Some((true, wait))
            }
            _ => {
                r.error(
                    &v.pos,
                    format!("field \"{key}\"'s value \"{s}\" is invalid"),
                );
                None
            }
        },
        other => {
            r.error(
                &v.pos,
                format!(
                    "field \"{key}\" should be a boolean or a string, got {}",
                    other.type_name()
                ),
            );
            None
        }
    }
}

/// JetStream keys natrix accepts without acting on them yet.
const UNSUPPORTED_JETSTREAM: &[&str] = &[
    "key",
    "ek",
    "encryption_key",
    "prev_key",
    "prev_ek",
    "prev_encryption_key",
    "cipher",
    "extension_hint",
    "limits",
    "tpm",
    "unique_tag",
    "max_outstanding_catchup",
    "max_buffered_size",
    "max_buffered_msgs",
    "request_queue_limit",
    "info_queue_limit",
    "meta_compact",
    "meta_compact_size",
    "meta_compact_sync",
    "max_concurrent_io",
];

/// `jetstream: true`, `jetstream: enabled` or `jetstream { … }`.
fn jetstream(v: &Value, opts: &mut ServerOptions, r: &mut Report) {
    match &v.kind {
        ValueKind::Bool(b) => opts.jetstream = *b,
        ValueKind::String(s) => match s.to_ascii_lowercase().as_str() {
            "enabled" | "enable" => opts.jetstream = true,
            "disabled" | "disable" => opts.jetstream = false,
            _ => r.error(
                &v.pos,
                format!("Expected 'enabled' or 'disabled' for string value, got '{s}'"),
            ),
        },
        ValueKind::Map(map) => {
            let mut enable = true;
            for entry in map.entries() {
                jetstream_entry(entry, &mut enable, opts, r);
            }
            opts.jetstream = enable;
        }
        other => r.error(
            &v.pos,
            format!(
                "Expected map, bool or string to define JetStream, got {}",
                other.type_name()
            ),
        ),
    }
}

fn jetstream_entry(entry: &Entry, enable: &mut bool, opts: &mut ServerOptions, r: &mut Report) {
    let ev = &entry.value;
    let key = entry.key.to_ascii_lowercase();
    match key.as_str() {
        "store" | "store_dir" | "storedir" => store_dir(ev, &entry.key, opts, r),
        "max_memory_store" | "max_mem_store" | "max_mem" => set_some(
            &mut opts.jetstream_max_memory_bytes,
            storage_size(ev, "max_mem_store", r),
        ),
        "max_file_store" | "max_file" => set_some(
            &mut opts.jetstream_max_store_bytes,
            storage_size(ev, "max_file_store", r),
        ),
        "domain" => set_some(&mut opts.jetstream_domain, r.string(ev, &entry.key)),
        "sync" | "sync_interval" => {
            opts.jetstream_sync = match &ev.kind {
                ValueKind::String(s) if s.eq_ignore_ascii_case("always") => Some(JetStreamSync::Always),
                _ => r.duration(ev, &entry.key).map(JetStreamSync::Interval),
            }
        }
        "strict" => {
            // natrix's API is always strict; only asking for leniency is unsupported.
            if r.boolean(ev, &entry.key) == Some(false) {
                r.unsupported(&ev.pos, "jetstream.strict: false");
            }
        }
        "enable" | "enabled" => {
            if let Some(b) = r.boolean(ev, &entry.key) {
                *enable = b;
            }
        }
        k if UNSUPPORTED_JETSTREAM.contains(&k) => {
            r.unsupported(&ev.pos, &format!("jetstream.{}", entry.key))
        }
        _ => r.unknown_field(entry),
    }
}

/// An integer, or a string ending in `K`, `M`, `G` or `T` (binary units).
fn storage_size(v: &Value, what: &str, r: &mut Report) -> Option<i64> {
    let text = match &v.kind {
        ValueKind::Integer(i) => return Some(*i),
        ValueKind::String(s) if s.is_empty() => return Some(0),
        ValueKind::String(s) => s,
        _ => {
            r.error(&v.pos, format!("{what} must be int64 or string"));
            return None;
        }
    };
    let (number, unit) = text.split_at(text.len() - text.chars().last().map_or(0, char::len_utf8));
    let shift = match unit {
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => {
            r.error(
                &v.pos,
                format!("{what} sizes defined as strings must end in K, M, G, T"),
            );
            return None;
        }
    };
    match number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
    {
        Some(n) => Some(n),
        None => {
            r.error(&v.pos, format!("{what} invalid size \"{text}\""));
            None
        }
    }
}
