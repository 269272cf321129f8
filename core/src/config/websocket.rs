//! The `websocket {}` block (alias `ws`), with nats-server's keys, aliases
//! and the checks it makes before it starts a WebSocket listener.

use super::apply::{listen, set_some, Report};
use super::apply_blocks::tls;
use super::options::{ServerOptions, WebsocketOptions};
use super::value::{ConfigMap, Value, ValueKind};
use crate::websocket::origin::Origin;

/// Headers the upgrade response writes itself: `headers {}` may not set them.
const RESERVED_HEADERS: [&str; 5] = ["host", "content-length", "connection", "upgrade", "nats-no-masking"];

/// Applies a `websocket {}` block.
pub(crate) fn websocket(v: &Value, opts: &mut ServerOptions, r: &mut Report) {
    let Some(map) = r.map(v, "websocket") else { return };
    let ws = &mut opts.websocket;
    for entry in map.entries() {
        let ev = &entry.value;
        let key = entry.key.to_ascii_lowercase();
        match key.as_str() {
            "listen" => {
                if let Some((host, port)) = listen(ev, &entry.key, r) {
                    if let Some(host) = host {
                        ws.host = host;
                    }
                    ws.port = port;
                }
            }
            "port" => {
                if let Some(port) = r.port(ev, &entry.key) {
                    ws.port = port;
                }
            }
            "host" | "net" => {
                if let Some(host) = r.string(ev, &entry.key) {
                    ws.host = host;
                }
            }
            "advertise" => set_some(&mut ws.advertise, r.string(ev, &entry.key)),
            "no_tls" => ws.no_tls = r.boolean(ev, &entry.key).unwrap_or(ws.no_tls),
            "tls" => ws.tls = tls(ev, r).or(ws.tls.take()),
            "same_origin" => ws.same_origin = r.boolean(ev, &entry.key).unwrap_or(ws.same_origin),
            "allowed_origins" | "allowed_origin" | "allow_origins" | "allow_origin" | "origins" | "origin" => {
                ws.allowed_origins = string_array(ev, &entry.key, r);
            }
            "handshake_timeout" => {
                if let Some(t) = handshake_timeout(ev, r) {
                    ws.handshake_timeout = t;
                }
            }
            "compress" | "compression" => ws.compression = r.boolean(ev, &entry.key).unwrap_or(ws.compression),
            "authorization" | "authentication" => simple_auth(ev, ws, r),
            "jwt_cookie" => set_some(&mut ws.jwt_cookie, r.string(ev, &entry.key)),
            "user_cookie" => set_some(&mut ws.user_cookie, r.string(ev, &entry.key)),
            "pass_cookie" => set_some(&mut ws.pass_cookie, r.string(ev, &entry.key)),
            "token_cookie" => set_some(&mut ws.token_cookie, r.string(ev, &entry.key)),
            "no_auth_user" => set_some(&mut ws.no_auth_user, r.string(ev, &entry.key)),
            "headers" => ws.headers = headers(ev, r),
            "ping_interval" => set_some(&mut ws.ping_interval, r.duration(ev, &entry.key)),
            _ => r.unknown_field(entry),
        }
    }
}

/// A string or a list of strings.
fn string_array(v: &Value, key: &str, r: &mut Report) -> Vec<String> {
    match &v.kind {
        ValueKind::String(s) => vec![s.clone()],
        ValueKind::Array(items) => items.iter().filter_map(|item| r.string(item, key)).collect(),
        other => {
            r.error(
                &v.pos,
                format!("error parsing allowed origins: unsupported type {}", other.type_name()),
            );
            Vec::new()
        }
    }
}

/// Seconds as an integer, or a Go duration string.
fn handshake_timeout(v: &Value, r: &mut Report) -> Option<std::time::Duration> {
    match &v.kind {
        ValueKind::Integer(secs) => Some(std::time::Duration::from_secs(u64::try_from(*secs).unwrap_or(0))),
        ValueKind::String(_) => r.duration(v, "handshake_timeout"),
        other => {
            r.error(
                &v.pos,
                format!("error parsing handshake timeout: unsupported type {}", other.type_name()),
            );
            None
        }
    }
}

/// `authorization { user, password, token, timeout }`.
fn simple_auth(v: &Value, ws: &mut WebsocketOptions, r: &mut Report) {
    let Some(map) = r.map(v, "authorization") else { return };
    for entry in map.entries() {
        let ev = &entry.value;
        match entry.key.to_ascii_lowercase().as_str() {
            "user" | "username" => set_some(&mut ws.username, r.string(ev, &entry.key)),
            "pass" | "password" => set_some(&mut ws.password, r.string(ev, &entry.key)),
            "token" => set_some(&mut ws.token, r.string(ev, &entry.key)),
            "timeout" => {
                // nats-server takes a number of seconds and reads anything else as 1.
                let secs = match ev.kind {
                    ValueKind::Integer(i) => i as f64,
                    ValueKind::Float(f) => f,
                    _ => 1.0,
                };
                ws.auth_timeout = std::time::Duration::try_from_secs_f64(secs).ok();
            }
            _ => r.unknown_field(entry),
        }
    }
}

/// `headers { Name: value }`: extra headers of the upgrade response.
fn headers(v: &Value, r: &mut Report) -> Vec<(String, String)> {
    let ValueKind::Map(map) = &v.kind else {
        r.error(
            &v.pos,
            format!("error parsing headers: unsupported type {}", v.kind.type_name()),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in map.entries() {
        match &entry.value.kind {
            ValueKind::String(s) => out.push((entry.key.clone(), s.clone())),
            other => r.error(
                &entry.value.pos,
                format!("error parsing header key {}: unsupported type {}", entry.key, other.type_name()),
            ),
        }
    }
    out
}

/// nats-server's checks of a configured WebSocket listener (its
/// `validateWebsocketOptions`), reported at the block; the host defaults
/// as nats-server's does.
pub(crate) fn validate(tree: &ConfigMap, opts: &mut ServerOptions, r: &mut Report) {
    if !opts.websocket.enabled() {
        return;
    }
    if opts.websocket.host.is_empty() {
        opts.websocket.host = "0.0.0.0".to_owned();
    }
    let Some(entry) = tree
        .entries()
        .iter()
        .find(|e| matches!(e.key.to_ascii_lowercase().as_str(), "websocket" | "ws"))
    else {
        return;
    };
    let pos = &entry.value.pos;
    if let Some(message) = first_problem(opts) {
        r.error(pos, message);
    }
}

/// The first reason nats-server would refuse these WebSocket options.
pub(crate) fn first_problem(opts: &ServerOptions) -> Option<String> {
    let ws = &opts.websocket;
    if ws.tls.is_none() && !ws.no_tls {
        return Some("websocket requires TLS configuration".to_owned());
    }
    for origin in &ws.allowed_origins {
        if let Err(e) = Origin::parse_allowed(origin) {
            return Some(e);
        }
    }
    if let Some(problem) = ws.no_auth_user.as_deref().and_then(|u| super::mqtt::no_auth_user_problem(opts, u)) {
        return Some(problem);
    }
    if !opts.authorization.users.is_empty() {
        if ws.username.is_some() {
            return Some("websocket authentication username not compatible with presence of users/nkeys".to_owned());
        }
        if ws.token.is_some() {
            return Some("websocket authentication token not compatible with presence of users/nkeys".to_owned());
        }
    }
    if let Some(cookie) = &ws.jwt_cookie {
        if opts.operators.is_empty() {
            return Some(format!(
                "trusted operators or trusted keys configuration is required for JWT authentication via cookie \"{cookie}\""
            ));
        }
    }
    for (name, _) in &ws.headers {
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Some(format!("websocket: invalid header \"{name}\" not allowed"));
        }
        if lower.starts_with("sec-websocket-") {
            return Some(format!("websocket: invalid header \"{name}\", \"Sec-WebSocket-\" prefix not allowed"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::test_support::load;

    #[test]
    fn reads_every_key_with_aliases() {
        let opts = load(
            r#"websocket {
                listen: "127.0.0.1:8080"
                no_tls: true
                compression: true
                same_origin: true
                allowed_origins: ["http://a.example", "https://b.example:8443"]
                handshake_timeout: "3s"
                authorization { user: u, password: p, timeout: 2.5 }
                jwt_cookie: "jwt"
                no_auth_user: u
                headers { X-Extra: "1" }
            }"#,
        )
        .unwrap_err();
        // `no_auth_user` names a user where there are none: refused as nats-server does.
        assert!(opts.contains("no_auth_user: \"u\" present, but users/nkeys are not defined"), "{opts}");
        let opts = load(
            r#"ws {
                listen: "127.0.0.1:8080"
                no_tls: true
                compress: true
                same_origin: true
                origins: ["http://a.example", "https://b.example:8443"]
                handshake_timeout: 3
                headers { X-Extra: "1" }
            }"#,
        )
        .unwrap();
        let ws = &opts.websocket;
        assert_eq!((ws.host.as_str(), ws.port), ("127.0.0.1", 8080));
        assert!(ws.no_tls && ws.compression && ws.same_origin);
        assert_eq!(ws.allowed_origins.len(), 2);
        assert_eq!(ws.handshake_timeout, std::time::Duration::from_secs(3));
        assert_eq!(ws.headers, vec![("X-Extra".to_owned(), "1".to_owned())]);
        let opts = load("ws { port: 1, no_tls: true, authentication { username: u, pass: p, timeout: 2 } }").unwrap();
        assert_eq!((opts.websocket.username.as_deref(), opts.websocket.password.as_deref()), (Some("u"), Some("p")));
        assert_eq!(opts.websocket.auth_timeout, Some(std::time::Duration::from_secs(2)));
        let err = load("authorization { users: [{user: a, password: b}] }\nws { port: 1, no_tls: true, authorization { token: t } }")
            .unwrap_err();
        assert!(err.contains("websocket authentication token not compatible with presence of users/nkeys"), "{err}");
        let err = load("ws { port: 1, no_tls: true, no_auth_user: a }").unwrap_err();
        assert!(err.contains("no_auth_user: \"a\" present, but users/nkeys are not defined"), "{err}");
        let err = load("ws { port: 1, no_tls: true, jwt_cookie: jwt }").unwrap_err();
        assert!(err.contains("trusted operators or trusted keys configuration is required"), "{err}");
    }

    #[test]
    fn refuses_what_nats_server_refuses() {
        let cases = [
            ("websocket { port: 8080 }", "websocket requires TLS configuration"),
            ("websocket { port: 8080, no_tls: true, allowed_origins: [\"ftp://x\"] }", "http or https scheme"),
            ("websocket { port: 8080, no_tls: true, allowed_origins: [\"nourl\"] }", "unable to parse allowed origin"),
            ("websocket { port: 8080, no_tls: true, jwt_cookie: c }", "trusted operators"),
            ("websocket { port: 8080, no_tls: true, headers { Upgrade: x } }", "invalid header \"Upgrade\""),
            ("websocket { port: 8080, no_tls: true, headers { Sec-WebSocket-X: x } }", "prefix not allowed"),
            ("websocket { port: 8080, no_tls: true, bogus: 1 }", "unknown field \"bogus\""),
            ("websocket { port: 8080, no_tls: true, authorization { what: 1 } }", "unknown field \"what\""),
            (
                "authorization { users: [{user: a, password: b}] }\nwebsocket { port: 8080, no_tls: true, authorization { token: t } }",
                "websocket authentication token not compatible",
            ),
            ("websocket { port: 8080, no_tls: \"yes\" }", "expected a boolean"),
            ("websocket: 1", "expected a map"),
        ];
        for (text, expected) in cases {
            let err = load(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn an_unused_block_is_not_checked() {
        // nats-server checks nothing while the port is 0.
        let opts = load("websocket { compression: true }").unwrap();
        assert!(!opts.websocket.enabled());
    }
}
