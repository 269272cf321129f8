//! The HTTP upgrade request (RFC 6455 §4.2), checked in nats-server's
//! order with its statuses, and the response to it.

use base64::Engine as _;
use sha1::{Digest, Sha1};

use super::origin::{host_and_port, Origin};

/// The GUID a `Sec-WebSocket-Accept` is derived with (RFC 6455).
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Headers read before the request is refused (Go's HTTP server allows
/// 1 MiB; a browser's upgrade request is well under this).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Headers parsed at most.
const MAX_HEADERS: usize = 64;

/// What the listener's configuration says about upgrades.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// `compression`: accept `permessage-deflate`.
    pub compression: bool,
    /// `same_origin`.
    pub same_origin: bool,
    /// `allowed_origins`, parsed.
    pub allowed_origins: Vec<Origin>,
    /// The listener is `wss://` (same-origin checks compare with `https`).
    pub tls: bool,
    /// `headers {}`: extra response headers.
    pub headers: Vec<(String, String)>,
    /// Cookie names: `jwt_cookie`, `user_cookie`, `pass_cookie`, `token_cookie`.
    pub cookie_names: CookieNames,
    /// Whether an MQTT listener exists (else `/mqtt` gets a 404).
    pub mqtt: bool,
}

/// The cookies whose values stand in for CONNECT's credentials.
#[derive(Clone, Debug, Default)]
pub struct CookieNames {
    /// `jwt_cookie`.
    pub jwt: Option<String>,
    /// `user_cookie`.
    pub user: Option<String>,
    /// `pass_cookie`.
    pub pass: Option<String>,
    /// `token_cookie`.
    pub token: Option<String>,
}

/// Credentials found in cookies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cookies {
    /// The `jwt_cookie` value.
    pub jwt: Option<String>,
    /// The `user_cookie` value.
    pub user: Option<String>,
    /// The `pass_cookie` value.
    pub pass: Option<String>,
    /// The `token_cookie` value.
    pub token: Option<String>,
}

/// An accepted upgrade.
#[derive(Clone, Debug)]
pub struct Upgrade {
    /// The `101 Switching Protocols` response.
    pub response: Vec<u8>,
    /// `permessage-deflate` was negotiated.
    pub compress: bool,
    /// The client looks like a browser (its frames are kept small).
    pub browser: bool,
    /// Credentials from cookies.
    pub cookies: Cookies,
    /// A valid IP from `X-Forwarded-For`.
    pub forwarded_ip: Option<core::net::IpAddr>,
    /// The path ends in `/mqtt`: an MQTT client (the response names the
    /// `mqtt` subprotocol, as nats-server's does).
    pub mqtt: bool,
}

/// A refused upgrade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status.
    pub status: u16,
    /// Why, for the log (nats-server's texts).
    pub reason: String,
}

impl Rejection {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Rejection { status, reason: reason.into() }
    }

    /// The response nats-server's HTTP server writes (`http.Error`).
    pub fn response(&self) -> Vec<u8> {
        let text = status_text(self.status);
        let body = format!("{text}\n");
        format!(
            "HTTP/1.1 {} {text}\r\nContent-Type: text/plain; charset=utf-8\r\nSec-Websocket-Version: 13\r\n\
             X-Content-Type-Options: nosniff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.status,
            body.len()
        )
        .into_bytes()
    }
}

fn status_text(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Internal Server Error",
    }
}

/// What reading the request so far gives.
#[derive(Debug)]
pub enum Outcome {
    /// The request is not complete yet.
    Incomplete,
    /// Upgrade.
    Accept(Box<Upgrade>),
    /// Answer with an error status and close.
    Reject(Rejection),
}

/// Reads the upgrade request at the start of `buf`. The request must be
/// all of `buf`: a client that sends frames before the response is
/// refused, as nats-server refuses it.
pub fn handshake(buf: &[u8], policy: &Policy) -> Outcome {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let consumed = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_REQUEST_BYTES => {
            return Outcome::Reject(Rejection::new(431, "request headers too large"))
        }
        Ok(httparse::Status::Partial) => return Outcome::Incomplete,
        Err(httparse::Error::TooManyHeaders) => {
            return Outcome::Reject(Rejection::new(431, "too many headers"));
        }
        Err(e) => return Outcome::Reject(Rejection::new(400, format!("malformed request: {e}"))),
    };
    let request = Request { method: req.method.unwrap_or(""), path: req.path.unwrap_or("/"), headers: req.headers };
    match check(&request, policy) {
        Err(rejection) => Outcome::Reject(rejection),
        Ok(_) if consumed != buf.len() => {
            Outcome::Reject(Rejection::new(400, "client sent data before handshake is complete"))
        }
        Ok(upgrade) => Outcome::Accept(Box::new(upgrade)),
    }
}

struct Request<'a> {
    method: &'a str,
    path: &'a str,
    headers: &'a [httparse::Header<'a>],
}

impl Request<'_> {
    fn values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| std::str::from_utf8(h.value).ok())
    }

    fn first<'s>(&'s self, name: &'s str) -> &'s str {
        self.values(name).next().unwrap_or("")
    }

    /// Whether a comma-separated header has `token` (any case).
    fn contains(&self, name: &str, token: &str) -> bool {
        self.values(name).any(|v| v.split(',').any(|t| t.trim_matches([' ', '\t']).eq_ignore_ascii_case(token)))
    }
}

fn check(r: &Request<'_>, policy: &Policy) -> Result<Upgrade, Rejection> {
    let path = r.path.split('?').next().unwrap_or("");
    let mqtt = path.ends_with("/mqtt");
    if mqtt && !policy.mqtt {
        return Err(Rejection::new(404, "mqtt websocket endpoint not enabled"));
    }
    if r.method != "GET" {
        return Err(Rejection::new(405, "request method must be GET"));
    }
    let host = r.first("Host");
    if host.is_empty() {
        return Err(Rejection::new(400, "'Host' missing in request"));
    }
    if !r.contains("Upgrade", "websocket") {
        return Err(Rejection::new(400, "invalid value for header 'Upgrade'"));
    }
    if !r.contains("Connection", "Upgrade") {
        return Err(Rejection::new(400, "invalid value for header 'Connection'"));
    }
    let key = r.first("Sec-WebSocket-Key");
    if key.is_empty() {
        return Err(Rejection::new(400, "key missing"));
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(key);
    if decoded.map_or(true, |k| k.len() != 16) {
        return Err(Rejection::new(400, "invalid websocket key"));
    }
    if !r.contains("Sec-WebSocket-Version", "13") {
        return Err(Rejection::new(400, "invalid version"));
    }
    check_origin(r, host, policy).map_err(|e| Rejection::new(403, format!("origin not allowed: {e}")))?;
    let compress = policy.compression && asks_for_deflate(r);
    let ua = r.first("User-Agent");
    Ok(Upgrade {
        response: response(key, compress, mqtt, policy),
        compress,
        browser: ua.starts_with("Mozilla/"),
        cookies: cookies(r, &policy.cookie_names),
        forwarded_ip: r.values("X-Forwarded-For").next().and_then(|ip| ip.trim().parse().ok()),
        mqtt,
    })
}

/// nats-server accepts a missing `Origin`; otherwise it must match the
/// request's host (`same_origin`) and be in `allowed_origins` when set.
fn check_origin(r: &Request<'_>, host: &str, policy: &Policy) -> Result<(), String> {
    if !policy.same_origin && policy.allowed_origins.is_empty() {
        return Ok(());
    }
    let mut origin = r.first("Origin");
    if origin.is_empty() {
        origin = r.first("Sec-WebSocket-Origin");
    }
    if origin.is_empty() {
        return Ok(());
    }
    let o = Origin::parse(origin)?;
    if policy.same_origin {
        let (rh, rp) = host_and_port(policy.tls, host)?;
        let scheme = if policy.tls { "https" } else { "http" };
        if o.host != rh || o.port != rp || !o.scheme.eq_ignore_ascii_case(scheme) {
            return Err("not same origin".to_owned());
        }
    }
    if !policy.allowed_origins.is_empty()
        && !policy.allowed_origins.iter().any(|a| a.host == o.host && a.scheme == o.scheme && a.port == o.port)
    {
        return Err("not in the allowed list".to_owned());
    }
    Ok(())
}

/// `permessage-deflate` among the offered extensions (nats-server then
/// always answers with no context takeover both ways).
fn asks_for_deflate(r: &Request<'_>) -> bool {
    r.values("Sec-WebSocket-Extensions").any(|list| {
        list.split(',')
            .flat_map(|ext| ext.split(';'))
            .any(|p| p.trim_matches([' ', '\t']).eq_ignore_ascii_case("permessage-deflate"))
    })
}

fn cookies(r: &Request<'_>, names: &CookieNames) -> Cookies {
    let mut found = Cookies::default();
    for pair in r.values("Cookie").flat_map(|v| v.split(';')) {
        let Some((name, value)) = pair.trim().split_once('=') else { continue };
        let value = value.trim_matches('"').to_owned();
        let is = |n: &Option<String>| n.as_deref() == Some(name);
        if is(&names.jwt) {
            found.jwt = Some(value);
        } else if is(&names.user) {
            found.user = Some(value);
        } else if is(&names.pass) {
            found.pass = Some(value);
        } else if is(&names.token) {
            found.token = Some(value);
        }
    }
    found
}

/// The `Sec-WebSocket-Accept` value for a client's key.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(ACCEPT_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

fn response(key: &str, compress: bool, mqtt: bool, policy: &Policy) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    out.push_str("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
    out.push_str(&accept_key(key));
    out.push_str("\r\n");
    if mqtt {
        out.push_str("Sec-WebSocket-Protocol: mqtt\r\n");
    }
    if compress {
        out.push_str(
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n",
        );
    }
    for (name, value) in &policy.headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn request(extra: &str) -> String {
        format!(
            "GET / HTTP/1.1\r\nHost: localhost:8080\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    fn accept(text: &str, policy: &Policy) -> Upgrade {
        match handshake(text.as_bytes(), policy) {
            Outcome::Accept(u) => *u,
            other => panic!("not accepted: {other:?}"),
        }
    }

    fn status(text: &str, policy: &Policy) -> (u16, String) {
        match handshake(text.as_bytes(), policy) {
            Outcome::Reject(r) => (r.status, r.reason),
            other => panic!("not rejected: {other:?}"),
        }
    }

    #[test]
    fn accepts_an_upgrade_with_rfc_accept_key() {
        // The example of RFC 6455 §1.3.
        assert_eq!(accept_key(KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let up = accept(&request(""), &Policy::default());
        let text = String::from_utf8(up.response).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(!up.compress && !text.contains("permessage-deflate"));
    }

    #[test]
    fn waits_for_the_whole_request() {
        let full = request("");
        for cut in [0, 10, full.len() - 1] {
            assert!(matches!(handshake(&full.as_bytes()[..cut], &Policy::default()), Outcome::Incomplete));
        }
        let huge = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_REQUEST_BYTES));
        assert_eq!(status(&huge, &Policy::default()).0, 431);
    }

    #[test]
    fn refuses_bad_requests_with_nats_server_statuses() {
        let p = Policy::default();
        let ok = request("");
        assert_eq!(status(&ok.replacen("GET", "POST", 1), &p).0, 405);
        assert_eq!(status(&ok.replacen("Host: localhost:8080\r\n", "", 1), &p), (400, "'Host' missing in request".into()));
        assert_eq!(status(&ok.replacen("Upgrade: websocket\r\n", "", 1), &p).1, "invalid value for header 'Upgrade'");
        assert_eq!(status(&ok.replacen("keep-alive, Upgrade", "close", 1), &p).1, "invalid value for header 'Connection'");
        assert_eq!(status(&ok.replacen(&format!("Sec-WebSocket-Key: {KEY}\r\n"), "", 1), &p).1, "key missing");
        assert_eq!(status(&ok.replacen(KEY, "c2hvcnQ=", 1), &p).1, "invalid websocket key");
        assert_eq!(status(&ok.replacen("Version: 13", "Version: 8", 1), &p).1, "invalid version");
        assert_eq!(status(&request("").replacen("GET / ", "GET /mqtt ", 1), &p).0, 404);
        let mqtt = accept(&request("").replacen("GET / ", "GET /mqtt ", 1), &Policy { mqtt: true, ..Policy::default() });
        assert!(mqtt.mqtt && String::from_utf8_lossy(&mqtt.response).contains("Sec-WebSocket-Protocol: mqtt\r\n"));
        assert!(!accept(&ok, &Policy { mqtt: true, ..Policy::default() }).mqtt);
        assert_eq!(status(&format!("{ok}\u{82}"), &p).1, "client sent data before handshake is complete");
        assert_eq!(status("GARBAGE\r\n\r\n", &p).0, 400);
        let r = Rejection::new(405, "x").response();
        assert!(String::from_utf8(r).unwrap().starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
    }

    #[test]
    fn checks_origins() {
        let same = Policy { same_origin: true, ..Policy::default() };
        accept(&request(""), &same);
        accept(&request("Origin: http://localhost:8080\r\n"), &same);
        assert_eq!(status(&request("Origin: http://other:8080\r\n"), &same), (403, "origin not allowed: not same origin".into()));
        assert_eq!(status(&request("Origin: https://localhost:8080\r\n"), &same).0, 403);
        let listed = Policy { allowed_origins: vec![Origin::parse("https://a.example").unwrap()], ..Policy::default() };
        accept(&request("Origin: https://a.example:443\r\n"), &listed);
        assert_eq!(status(&request("Origin: http://a.example\r\n"), &listed).1, "origin not allowed: not in the allowed list");
    }

    #[test]
    fn negotiates_compression_only_when_configured() {
        let ext = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
        assert!(!accept(&request(ext), &Policy::default()).compress);
        let up = accept(&request(ext), &Policy { compression: true, ..Policy::default() });
        assert!(up.compress);
        assert!(String::from_utf8(up.response).unwrap().contains(
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"
        ));
        assert!(!accept(&request(""), &Policy { compression: true, ..Policy::default() }).compress);
    }

    #[test]
    fn reads_cookies_and_forwarded_ip() {
        let policy = Policy {
            cookie_names: CookieNames { jwt: Some("jwt".into()), token: Some("tok".into()), ..CookieNames::default() },
            ..Policy::default()
        };
        let up = accept(
            &request("Cookie: a=b; jwt=eyJ.x.y; tok=\"secret\"\r\nX-Forwarded-For: 10.1.2.3\r\nUser-Agent: Mozilla/5.0\r\n"),
            &policy,
        );
        assert_eq!(up.cookies.jwt.as_deref(), Some("eyJ.x.y"));
        assert_eq!(up.cookies.token.as_deref(), Some("secret"));
        assert_eq!(up.forwarded_ip, Some("10.1.2.3".parse().unwrap()));
        assert!(up.browser);
    }
}
