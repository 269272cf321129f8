//! The `accounts {}` block: each account's users, exports and imports,
//! checked as nats-server checks them at start-up (an import must name a
//! defined account and a subject that account exports to the importer).

use std::time::Duration;

use crate::account::checks::{check_imports, service_import_local};
use crate::account::{AccountConfig, Export, Import, ImportKind, ResponseType, DEFAULT_RESPONSE_THRESHOLD};
use crate::subject::is_valid_subject;

use super::apply::{set_some, Report};
use super::apply_blocks::{permissions, users};
use super::options::{Resolver, ResolverDelete, ServerOptions, User};
use super::value::{ConfigMap, Entry, Pos, Value, ValueKind};
use crate::jetstream::api::AccountLimits;

/// Applies `accounts { NAME: { users, exports, imports, default_permissions } }`.
pub(crate) fn accounts(v: &Value, opts: &mut ServerOptions, r: &mut Report) {
    let Some(map) = r.map(v, "accounts") else {
        return;
    };
    let errors_before = r.errors.len();
    for entry in map.entries() {
        let name = entry.key.clone();
        if opts.accounts.iter().any(|a| a.name == name) {
            r.error(&entry.value.pos, format!("Duplicate Account Entry: {name}"));
            continue;
        }
        let mut account = AccountConfig {
            name: name.clone(),
            ..AccountConfig::default()
        };
        // A name without a map (`accounts { A, B }` style) is an empty account.
        if let ValueKind::Map(body) = &entry.value.kind {
            one_account(body, &mut account, opts, r);
        }
        opts.accounts.push(account);
    }
    // Like nats-server, check exports and imports across accounts only when
    // the accounts themselves parsed cleanly, and report every refusal
    // against the `accounts` block.
    if r.errors.len() == errors_before {
        for e in check_imports(&opts.accounts).errors {
            r.error(&v.pos, e.to_string());
        }
    }
}

fn one_account(
    body: &ConfigMap,
    account: &mut AccountConfig,
    opts: &mut ServerOptions,
    r: &mut Report,
) {
    let mut account_users = Vec::new();
    let mut users_pos = None;
    let mut defaults = None;
    for entry in body.entries() {
        let ev = &entry.value;
        match entry.key.to_ascii_lowercase().as_str() {
            "users" => {
                account_users = users(ev, r);
                users_pos = Some(ev.pos.clone());
            }
            "exports" => account.exports = list(ev, r, export),
            "imports" => account.imports = drop_duplicate_services(list(ev, r, import), r),
            "default_permissions" => defaults = permissions(ev, r),
            "jetstream" => account.jetstream = account_jetstream(ev, r),
            "mappings" | "maps" => account.mappings = super::mappings::mappings(ev, r),
            "limits" | "nkey" | "msg_trace" | "trace_dest" => {
                r.unsupported(&ev.pos, &format!("accounts.{}.{}", account.name, entry.key))
            }
            _ if entry.used_as_variable => {}
            _ => r.unknown_field(entry),
        }
    }
    for mut user in account_users {
        // A user name (or nkey) names one user in the whole file, as in nats-server.
        let id = |u: &User| u.nkey.clone().unwrap_or_else(|| u.user.clone());
        if let Some(pos) = &users_pos {
            if opts.authorization.users.iter().any(|u| id(u) == id(&user)) {
                let what = if user.nkey.is_some() { "nkey" } else { "user" };
                r.error(pos, format!("Duplicate {what} \"{}\" detected", id(&user)));
                continue;
            }
        }
        user.account = Some(account.name.clone());
        if user.permissions.is_none() {
            user.permissions.clone_from(&defaults);
        }
        opts.authorization.users.push(user);
    }
}

fn list<T>(
    v: &Value,
    r: &mut Report,
    one: fn(&ConfigMap, &Value, &mut Report) -> Option<T>,
) -> Vec<T> {
    let ValueKind::Array(items) = &v.kind else {
        r.error(
            &v.pos,
            format!(
                "Exports and imports should be an array, got {}",
                v.kind.type_name()
            ),
        );
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match &item.kind {
            ValueKind::Map(m) => one(m, item, r),
            other => {
                r.error(
                    &item.pos,
                    format!(
                        "Export and import entries should be a map, got {}",
                        other.type_name()
                    ),
                );
                None
            }
        })
        .collect()
}

fn export(m: &ConfigMap, item: &Value, r: &mut Report) -> Option<Export> {
    let mut e = Export {
        kind: ImportKind::Stream,
        subject: String::new(),
        accounts: Vec::new(),
        response_type: ResponseType::Singleton,
        response_threshold: DEFAULT_RESPONSE_THRESHOLD,
    };
    let mut subject = None;
    for entry in m.entries() {
        let ev = &entry.value;
        match entry.key.to_ascii_lowercase().as_str() {
            "stream" => {
                e.kind = ImportKind::Stream;
                set_some(&mut subject, r.string(ev, &entry.key));
            }
            "service" => {
                e.kind = ImportKind::Service;
                set_some(&mut subject, r.string(ev, &entry.key));
            }
            "accounts" => e.accounts = names(ev, r),
            "response" | "response_type" => e.response_type = response_type(ev, r)?,
            "threshold" | "response_threshold" | "response_max_time" | "response_time" => {
                e.response_threshold = r.duration(ev, &entry.key)?
            }
            "latency" | "account_token_position" | "advertise" | "allow_trace" => {
                r.unsupported(&ev.pos, &format!("exports.{}", entry.key))
            }
            _ if entry.used_as_variable => {}
            _ => r.unknown_field(entry),
        }
    }
    e.subject = checked_subject(subject, item, r)?;
    Some(e)
}

fn import(m: &ConfigMap, item: &Value, r: &mut Report) -> Option<(Import, Pos)> {
    import_entry(m, item, r).map(|i| (i, item.pos.clone()))
}

fn import_entry(m: &ConfigMap, item: &Value, r: &mut Report) -> Option<Import> {
    let mut i = Import {
        kind: ImportKind::Stream,
        account: String::new(),
        subject: String::new(),
        to: None,
        prefix: None,
    };
    let mut source = None;
    let mut to_value = None;
    for entry in m.entries() {
        let ev = &entry.value;
        match entry.key.to_ascii_lowercase().as_str() {
            "stream" => {
                i.kind = ImportKind::Stream;
                source = r.map(ev, &entry.key).map(|m| (m, ev));
            }
            "service" => {
                i.kind = ImportKind::Service;
                source = r.map(ev, &entry.key).map(|m| (m, ev));
            }
            "to" => {
                set_some(&mut i.to, r.string(ev, &entry.key));
                to_value = Some(ev);
            }
            "prefix" => set_some(&mut i.prefix, r.string(ev, &entry.key)),
            "share" | "allow_trace" => r.unsupported(&ev.pos, &format!("imports.{}", entry.key)),
            _ if entry.used_as_variable => {}
            _ => r.unknown_field(entry),
        }
    }
    let Some((source, source_value)) = source else {
        r.error(&item.pos, "Import entry requires a stream or service");
        return None;
    };
    for entry in source.entries() {
        match entry.key.to_ascii_lowercase().as_str() {
            "account" => i.account = r.string(&entry.value, &entry.key).unwrap_or_default(),
            "subject" => i.subject = r.string(&entry.value, &entry.key).unwrap_or_default(),
            _ if entry.used_as_variable => {}
            _ => r.unknown_field(entry),
        }
    }
    // nats-server names the `stream`/`service` key; an invalid (but present)
    // subject is refused later, with the other cross-account checks.
    if i.account.is_empty() || i.subject.is_empty() {
        r.error(&source_value.pos, "Expect an account name and a subject");
        return None;
    }
    if let (ImportKind::Stream, Some(_), Some(to)) = (i.kind, &i.prefix, to_value) {
        r.error(
            &to.pos,
            "Stream import can not have a 'prefix' and a 'to' property",
        );
        return None;
    }
    Some(i)
}

/// nats-server refuses a second service import from the same account on the
/// same local subject, naming the entry.
fn drop_duplicate_services(imports: Vec<(Import, Pos)>, r: &mut Report) -> Vec<Import> {
    let mut kept: Vec<Import> = Vec::with_capacity(imports.len());
    for (i, pos) in imports {
        let local = service_import_local(&i);
        let earlier = kept.iter().find(|k| {
            k.kind == ImportKind::Service
                && i.kind == ImportKind::Service
                && k.account == i.account
                && service_import_local(k) == local
        });
        if let Some(earlier) = earlier {
            let message = format!(
                "Duplicate service import subject \"{local}\", previously used in import for account \"{}\", subject \"{}\"",
                earlier.account, earlier.subject
            );
            r.error(&pos, message);
            continue;
        }
        kept.push(i);
    }
    kept
}

fn checked_subject(subject: Option<String>, item: &Value, r: &mut Report) -> Option<String> {
    match subject {
        Some(s) if is_valid_subject(s.as_bytes()) => Some(s),
        Some(s) => {
            r.error(&item.pos, format!("subject \"{s}\" is not a valid subject"));
            None
        }
        None => {
            r.error(&item.pos, "Export and import entries require a subject");
            None
        }
    }
}

fn names(v: &Value, r: &mut Report) -> Vec<String> {
    let ValueKind::Array(items) = &v.kind else {
        r.error(&v.pos, "accounts should be an array of account names");
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|i| r.string(i, "accounts"))
        .collect()
}

fn response_type(v: &Value, r: &mut Report) -> Option<ResponseType> {
    match r.string(v, "response_type")?.to_ascii_lowercase().as_str() {
        "single" | "singleton" => Some(ResponseType::Singleton),
        "stream" => Some(ResponseType::Stream),
        "chunk" | "chunked" => Some(ResponseType::Chunked),
        other => {
            r.error(&v.pos, format!("Unknown response type: {other:?}"));
            None
        }
    }
}


/// `operator: JWT | path | [ ... ]`.
pub(crate) fn operators(v: &Value, opts: &mut ServerOptions, r: &mut Report) {
    match &v.kind {
        ValueKind::String(s) => opts.operators.push(s.clone()),
        ValueKind::Array(items) => {
            for item in items {
                if let Some(s) = r.string(item, "operator") {
                    opts.operators.push(s);
                }
            }
        }
        other => r.error(
            &v.pos,
            format!(
                "operator should be a JWT, a file or an array of them, got {}",
                other.type_name()
            ),
        ),
    }
}

/// `resolver: MEMORY` or the NATS resolver's
/// `{ type: full | cache, dir, allow_delete, hard_delete, limit, interval, timeout, ttl }`,
/// with nats-server's checks of which settings go with which type.
pub(crate) fn resolver(v: &Value, opts: &mut ServerOptions, r: &mut Report) {
    match &v.kind {
        ValueKind::String(s) if s.eq_ignore_ascii_case("memory") => {
            opts.resolver = Some(Resolver::Memory)
        }
        ValueKind::Map(m) => opts.resolver = nats_resolver(m, v, r),
        _ => r.unsupported(
            &v.pos,
            "resolver (only MEMORY and the NATS resolver are supported)",
        ),
    }
}

/// The settings of a `resolver { … }` map, as nats-server reads them.
#[derive(Default)]
struct ResolverFields {
    dir: Option<String>,
    kind: Option<String>,
    allow_delete: bool,
    hard_delete: Option<bool>,
    limit: Option<i64>,
    interval: Option<Duration>,
    timeout: Option<Duration>,
    ttl: Option<Duration>,
}

fn resolver_fields(m: &ConfigMap, r: &mut Report) -> ResolverFields {
    let mut f = ResolverFields::default();
    for entry in m.entries() {
        let (ev, key) = (&entry.value, entry.key.as_str());
        match key {
            "dir" => f.dir = r.string(ev, key),
            "type" => f.kind = r.string(ev, key),
            "allow_delete" => f.allow_delete = r.boolean(ev, key).unwrap_or(false),
            "hard_delete" => f.hard_delete = r.boolean(ev, key),
            "limit" => f.limit = r.int(ev, key),
            "interval" => f.interval = r.duration(ev, key),
            "timeout" => f.timeout = r.duration(ev, key),
            "ttl" => f.ttl = r.duration(ev, key),
            // nats-server ignores the keys it does not know here.
            _ => {}
        }
    }
    f
}

fn nats_resolver(m: &ConfigMap, v: &Value, r: &mut Report) -> Option<Resolver> {
    let f = resolver_fields(m, r);
    let kind = f.kind.as_deref().map(str::to_ascii_uppercase);
    let cache = match kind.as_deref() {
        Some("CACHE") => true,
        Some("FULL") => false,
        Some("MEM" | "MEMORY") => return Some(Resolver::Memory),
        _ => {
            r.error(
                &v.pos,
                "error parsing account resolver, should be MEM or  URL(\"url\") or a map containing dir and type state=[FULL|CACHE])",
            );
            return None;
        }
    };
    if f.dir.as_deref().unwrap_or_default().is_empty() {
        r.error(&v.pos, "dir has no value and needs to point to a directory");
    }
    let delete = if cache {
        cache_conflicts(&f, v, r);
        // nats-server's cache takes deletes anyway, and removes the JWT.
        ResolverDelete::Remove
    } else {
        full_delete(&f, v, r)
    };
    Some(Resolver::Nats {
        dir: f.dir,
        cache,
        delete,
        limit: f.limit.and_then(|l| u64::try_from(l).ok()).filter(|&l| l > 0),
        interval: f.interval,
        timeout: f.timeout,
        ttl: f.ttl,
    })
}

fn cache_conflicts(f: &ResolverFields, v: &Value, r: &mut Report) {
    if f.interval.is_some_and(|d| !d.is_zero()) {
        r.error(&v.pos, "CACHE does not accept sync");
    }
    if f.allow_delete {
        r.error(&v.pos, "CACHE does not accept allow_delete");
    }
    if f.hard_delete.is_some() {
        r.error(&v.pos, "CACHE does not accept hard_delete");
    }
}

fn full_delete(f: &ResolverFields, v: &Value, r: &mut Report) -> ResolverDelete {
    if f.ttl.is_some_and(|d| !d.is_zero()) {
        r.error(&v.pos, "FULL does not accept ttl");
    }
    if f.hard_delete.is_some() && !f.allow_delete {
        r.error(&v.pos, "hard_delete has no effect without delete");
    }
    match (f.allow_delete, f.hard_delete.unwrap_or(false)) {
        (false, _) => ResolverDelete::Refuse,
        (true, false) => ResolverDelete::Rename,
        (true, true) => ResolverDelete::Remove,
    }
}

/// `resolver_preload { ACCOUNT_KEY: JWT }`.
pub(crate) fn resolver_preload(v: &Value, opts: &mut ServerOptions, r: &mut Report) {
    let Some(map) = r.map(v, "resolver_preload") else {
        return;
    };
    for entry in map.entries() {
        if let Some(jwt) = r.string(&entry.value, &entry.key) {
            opts.resolver_preload.insert(entry.key.clone(), jwt);
        }
    }
}

/// An account's `jetstream`: `enabled`/`disabled`, a bool, or a map of
/// limits, as nats-server reads it. `None` leaves JetStream off.
fn account_jetstream(v: &Value, r: &mut Report) -> Option<AccountLimits> {
    match &v.kind {
        ValueKind::Bool(b) => b.then(AccountLimits::default),
        ValueKind::String(s) => match s.to_ascii_lowercase().as_str() {
            "enabled" | "enable" => Some(AccountLimits::default()),
            "disabled" | "disable" => None,
            _ => {
                r.error(&v.pos, format!("Expected 'enabled' or 'disabled' for string value, got '{s}'"));
                None
            }
        },
        ValueKind::Map(map) => {
            let mut limits = AccountLimits::default();
            for entry in map.entries() {
                account_jetstream_limit(entry, &mut limits, r);
            }
            Some(limits)
        }
        other => {
            r.error(&v.pos, format!("Expected map, bool or string to define JetStream, got {}", other.type_name()));
            None
        }
    }
}

/// A scalar as nats-server's messages print it (Go's `%v`).
fn go_value(v: &Value) -> String {
    match &v.kind {
        ValueKind::String(s) => s.clone(),
        ValueKind::Bool(b) => b.to_string(),
        ValueKind::Integer(i) => i.to_string(),
        other => other.type_name().to_owned(),
    }
}

/// One entry of an account's `jetstream { … }` limits map.
fn account_jetstream_limit(entry: &Entry, limits: &mut AccountLimits, r: &mut Report) {
    let ev = &entry.value;
    let key = entry.key.to_ascii_lowercase();
    let size = |r: &mut Report| match ev.kind {
        ValueKind::Integer(i) => Some(i),
        _ => {
            r.error(&ev.pos, format!("Expected a parseable size for {:?}, got {}", entry.key, go_value(ev)));
            None
        }
    };
    let target = match key.as_str() {
        "max_memory" | "max_mem" | "mem" | "memory" => &mut limits.max_memory,
        "max_store" | "max_file" | "max_disk" | "store" | "disk" => &mut limits.max_storage,
        "max_streams" | "streams" => &mut limits.max_streams,
        "max_consumers" | "consumers" => &mut limits.max_consumers,
        "mem_max_stream_bytes" | "memory_max_stream_bytes" => &mut limits.memory_max_stream_bytes,
        "disk_max_stream_bytes" | "store_max_stream_bytes" => &mut limits.storage_max_stream_bytes,
        "max_ack_pending" => &mut limits.max_ack_pending,
        "max_bytes_required" | "max_stream_bytes" | "max_bytes" => {
            match ev.kind {
                ValueKind::Bool(b) => limits.max_bytes_required = b,
                _ => r.error(&ev.pos, format!("Expected a parseable bool for {:?}, got {}", entry.key, go_value(ev))),
            }
            return;
        }
        "cluster_traffic" => {
            match &ev.kind {
                ValueKind::String(s) if s.is_empty() || s == "system" || s == "owner" => {}
                _ => r.error(&ev.pos, format!("Expected 'system' or 'owner' string value for {:?}", entry.key)),
            }
            return;
        }
        _ => return r.unknown_field(entry),
    };
    if let Some(n) = size(r) {
        *target = n;
    }
}
