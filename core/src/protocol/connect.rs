//! The JSON a client sends in `CONNECT`, decoded the way nats-server's Go
//! `encoding/json` decodes it into its `ClientOpts`:
//!
//! - keys match field names ignoring case (`{"VERBOSE":false}` works), a key
//!   given twice takes its last value, unknown keys are ignored;
//! - `null`, for the whole object or a field, leaves the defaults
//!   (`CONNECT null` is accepted: verbose and pedantic stay on);
//! - a value of the wrong JSON type fails the CONNECT, as does bad JSON;
//! - bytes that are not UTF-8 become U+FFFD inside strings, as in Go, and
//!   so do `\u` escapes of lone UTF-16 surrogates (`"\ud83d x"`), which
//!   `serde_json` would refuse.
//!
//! nats-server answers a CONNECT it cannot decode by closing the connection
//! with no `-ERR` (reason "Parse Error" in `/connz`) and logs Go's error, e.g.
//! `json: cannot unmarshal string into Go struct field ClientOpts.verbose of
//! type bool` or `invalid character 'b' looking for beginning of object key
//! string`. [`ConnectError`]'s `Display` gives the same text for type errors
//! and for truncated input; other syntax errors are worded by `serde_json`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Subjects a route or leaf node may import or export (`import`/`export` in
/// CONNECT; clients do not send them, but nats-server still type-checks them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SubjectPermission {
    /// Subjects allowed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Subjects denied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

/// The options a client announces in CONNECT. Strings nats-server treats as
/// unset when empty are `None` when absent, `null` or `""`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectInfo {
    /// Reply `+OK` to every op. Default true, as in nats-server.
    pub verbose: bool,
    /// Check subjects strictly. Default true, as in nats-server.
    pub pedantic: bool,
    /// The client requires TLS.
    pub tls_required: bool,
    /// Token for token auth (`auth_token`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<String>,
    /// User name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    /// Client name, shown in monitoring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Client library language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Client library version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Protocol level: 0 original, 1 understands async INFO. Go `int`.
    pub protocol: i64,
    /// Receive messages one publishes oneself; nats-server's default is true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo: Option<bool>,
    /// The nonce signed with the nkey or JWT's key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
    /// User JWT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<String>,
    /// Public nkey.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nkey: Option<String>,
    /// Wants a 503 status message when a request has no responders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_responders: Option<bool>,
    /// Supports headers (`HPUB`/`HMSG`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<bool>,
    /// Account to bind to (for routes/leafs and JWT setups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Create `account` if missing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub new_account: bool,
    /// Route/leaf only: what the remote may import.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<SubjectPermission>,
    /// Route/leaf only: what the remote may export.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<SubjectPermission>,
    /// Leaf only: the account on the remote side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_account: Option<String>,
    /// A proxy's own signature of the nonce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_sig: Option<String>,
}

impl Default for ConnectInfo {
    /// nats-server's defaults before CONNECT: verbose and pedantic on.
    fn default() -> Self {
        ConnectInfo {
            verbose: true,
            pedantic: true,
            tls_required: false,
            auth_token: None,
            user: None,
            pass: None,
            name: None,
            lang: None,
            version: None,
            protocol: 0,
            echo: None,
            sig: None,
            jwt: None,
            nkey: None,
            no_responders: None,
            headers: None,
            account: None,
            new_account: false,
            import: None,
            export: None,
            remote_account: None,
            proxy_sig: None,
        }
    }
}

/// Why a CONNECT's JSON was refused. `Display` is Go's error text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// Not JSON, or JSON followed by more than whitespace.
    #[error("{0}")]
    Syntax(String),
    /// A field had the wrong JSON type.
    #[error(
        "json: cannot unmarshal {found} into Go struct field ClientOpts.{field} of type {go_type}"
    )]
    FieldType {
        /// The field's JSON name.
        field: &'static str,
        /// What was there: `string`, `number 1.5`, `array`...
        found: String,
        /// The Go type nats-server expected.
        go_type: &'static str,
    },
    /// The JSON was not an object (or null).
    #[error("json: cannot unmarshal {found} into Go value of type server.ClientOpts")]
    NotObject {
        /// What was there: `array`, `string`...
        found: &'static str,
    },
}

impl ConnectInfo {
    /// Decodes the JSON after `CONNECT ` as nats-server does (see the module
    /// docs for the Go rules it follows).
    pub fn parse(json: &[u8]) -> Result<ConnectInfo, ConnectError> {
        Self::parse_over(&ConnectInfo::default(), json)
    }

    /// Decodes a later CONNECT of the same connection: like Go decoding
    /// into the options it already holds, a field the JSON leaves out keeps
    /// its value from `base` (the CONNECT before), credentials included.
    pub fn parse_over(base: &ConnectInfo, json: &[u8]) -> Result<ConnectInfo, ConnectError> {
        let text = String::from_utf8_lossy(json);
        let text = replace_lone_surrogates(&text);
        let top = text.trim_start_matches([' ', '\t', '\n', '\r']);
        if top.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            // A number is a type error once its syntax checks, however large
            // (Go checks `1e400` as syntax only); serde_json would refuse it.
            let mut de = serde_json::Deserializer::from_str(&text);
            IgnoredAny::deserialize(&mut de).map_err(syntax_error)?;
            de.end().map_err(syntax_error)?;
            return Err(ConnectError::NotObject { found: "number" });
        }
        match decode(base, &text) {
            // A number beyond f64 in a known field: Go checks its syntax
            // only, then fails to store it (no field is a float), a type
            // error; serde_json refuses it before the field sees it.
            Err(ConnectError::Syntax(m))
                if m.starts_with("number out of range") && syntax_is_valid(&text) =>
            {
                decode(base, &cap_huge_numbers(&text))
            }
            decoded => decoded,
        }
    }
}

fn decode(base: &ConnectInfo, text: &str) -> Result<ConnectInfo, ConnectError> {
    let mut de = serde_json::Deserializer::from_str(text);
    // Go checks the whole input is valid JSON before decoding, so a
    // syntax error anywhere wins over a type error before it.
    let decoded = (&mut de)
        .deserialize_any(ConnectVisitor(base))
        .map_err(syntax_error)?;
    de.end().map_err(syntax_error)?;
    decoded
}

/// JSON syntax alone, numbers of any size included, as Go's `checkValid`.
fn syntax_is_valid(text: &str) -> bool {
    let mut de = serde_json::Deserializer::from_str(text);
    IgnoredAny::deserialize(&mut de).is_ok() && de.end().is_ok()
}

/// `text` with each number beyond f64 outside strings replaced by the
/// largest finite one of its sign, so that it reaches the field it is in.
fn cap_huge_numbers(text: &str) -> String {
    let b = text.as_bytes();
    let (mut out, mut copied, mut i, mut in_string) = (String::new(), 0, 0, false);
    while i < b.len() {
        match b[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string => i += 1,
            b'-' | b'0'..=b'9' if !in_string => {
                let len = b[i..]
                    .iter()
                    .take_while(|c| matches!(c, b'0'..=b'9' | b'+' | b'-' | b'.' | b'e' | b'E'))
                    .count();
                let number = &text[i..i + len];
                if number.parse::<f64>().is_ok_and(f64::is_infinite) {
                    out.push_str(&text[copied..i]);
                    out.push_str(if b[i] == b'-' { "-1e308" } else { "1e308" });
                    copied = i + len;
                }
                i += len;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

/// `text` with every `\u` escape of an unpaired UTF-16 surrogate inside a
/// string replaced by `\uFFFD`, as Go decodes it. Only escapes are touched,
/// so the syntax (and any syntax error) stays where it was.
fn replace_lone_surrogates(text: &str) -> Cow<'_, str> {
    if !text.contains("\\u") {
        return Cow::Borrowed(text);
    }
    let b = text.as_bytes();
    let surrogate = |at: usize| -> Option<u16> {
        let hex = b.get(at..at + 6)?.strip_prefix(b"\\u")?;
        let n = u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
        (0xD800..0xE000).contains(&n).then_some(n)
    };
    let (mut out, mut copied, mut i, mut in_string) = (String::new(), 0, 0, false);
    while i < b.len() {
        match b[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string => {
                let paired = match surrogate(i) {
                    Some(0xD800..=0xDBFF) => surrogate(i + 6).is_some_and(|lo| lo >= 0xDC00),
                    Some(_) => false,
                    None => {
                        i += 2; // any other escape, e.g. `\"`
                        continue;
                    }
                };
                if paired {
                    i += 12;
                    continue;
                }
                out.push_str(&text[copied..i]);
                out.push_str("\\uFFFD");
                i += 6;
                copied = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn syntax_error(e: serde_json::Error) -> ConnectError {
    if e.is_eof() {
        return ConnectError::Syntax("unexpected end of JSON input".to_owned());
    }
    ConnectError::Syntax(e.to_string())
}

impl<'de> Deserialize<'de> for ConnectInfo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(ConnectVisitor(&ConnectInfo::default()))?
            .map_err(de::Error::custom)
    }
}

/// Walks the JSON in document order, so repeated keys end with the last
/// value and the first type error is the one Go reports. It decodes over
/// the options it holds (the defaults, or an earlier CONNECT's).
struct ConnectVisitor<'b>(&'b ConnectInfo);

impl<'de> Visitor<'de> for ConnectVisitor<'_> {
    type Value = Result<ConnectInfo, ConnectError>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CONNECT JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut info = self.0.clone();
        let mut first_error = None;
        while let Some(key) = map.next_key::<String>()? {
            if !is_known_field(&key) {
                // Go checks only the syntax of a value it ignores (even `1e400`).
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value: Value = map.next_value()?;
            if let Err(e) = apply(&mut info, &key, value) {
                first_error.get_or_insert(e);
            }
        }
        Ok(first_error.map_or(Ok(info), Err))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(self.0.clone()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err(ConnectError::NotObject { found: "array" }))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err(ConnectError::NotObject { found: "bool" }))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err(ConnectError::NotObject { found: "number" }))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err(ConnectError::NotObject { found: "number" }))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err(ConnectError::NotObject { found: "number" }))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err(ConnectError::NotObject { found: "string" }))
    }
}

/// Go's name for the JSON kind of `value`, as its type errors print it.
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(_) => "bool".to_owned(),
        Value::Number(n) => format!("number {n}"),
        Value::String(_) => "string".to_owned(),
        Value::Array(_) => "array".to_owned(),
        Value::Object(_) => "object".to_owned(),
    }
}

fn type_error(field: &'static str, value: &Value, go_type: &'static str) -> ConnectError {
    let found = match value {
        // Go names the literal only when a number does not fit the field.
        Value::Number(_) if go_type != "int" => "number".to_owned(),
        _ => kind(value),
    };
    ConnectError::FieldType {
        field,
        found,
        go_type,
    }
}

fn set_bool(slot: &mut bool, field: &'static str, value: Value) -> Result<(), ConnectError> {
    match value {
        Value::Null => Ok(()),
        Value::Bool(b) => {
            *slot = b;
            Ok(())
        }
        other => Err(type_error(field, &other, "bool")),
    }
}

fn set_opt_bool(
    slot: &mut Option<bool>,
    field: &'static str,
    value: Value,
) -> Result<(), ConnectError> {
    let mut b = slot.unwrap_or(false);
    if value.is_null() {
        return Ok(());
    }
    set_bool(&mut b, field, value)?;
    *slot = Some(b);
    Ok(())
}

fn set_string(
    slot: &mut Option<String>,
    field: &'static str,
    value: Value,
) -> Result<(), ConnectError> {
    match value {
        Value::Null => Ok(()),
        Value::String(s) => {
            *slot = (!s.is_empty()).then_some(s);
            Ok(())
        }
        other => Err(type_error(field, &other, "string")),
    }
}

fn set_int(slot: &mut i64, field: &'static str, value: Value) -> Result<(), ConnectError> {
    match &value {
        Value::Null => Ok(()),
        Value::Number(n) => match n.as_i64() {
            Some(i) => {
                *slot = i;
                Ok(())
            }
            None => Err(type_error(field, &value, "int")),
        },
        other => Err(type_error(field, other, "int")),
    }
}

fn set_permission(
    slot: &mut Option<SubjectPermission>,
    field: &'static str,
    value: Value,
) -> Result<(), ConnectError> {
    const GO_TYPE: &str = "server.SubjectPermission";
    let map = match value {
        Value::Null => return Ok(()),
        Value::Object(map) => map,
        other => return Err(type_error(field, &other, GO_TYPE)),
    };
    let mut perm = slot.take().unwrap_or_default();
    for (key, list) in map {
        let target = match key.to_ascii_lowercase().as_str() {
            "allow" => &mut perm.allow,
            "deny" => &mut perm.deny,
            _ => continue,
        };
        match list {
            Value::Null => {}
            Value::Array(items) => {
                *target = items
                    .into_iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(s),
                        other => Err(type_error(field, &other, "string")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            other => return Err(type_error(field, &other, "[]string")),
        }
    }
    *slot = Some(perm);
    Ok(())
}

/// The CONNECT fields nats-server decodes, lower case.
const KNOWN_FIELDS: &[&str] = &[
    "verbose",
    "pedantic",
    "tls_required",
    "auth_token",
    "user",
    "pass",
    "name",
    "lang",
    "version",
    "protocol",
    "echo",
    "sig",
    "jwt",
    "nkey",
    "no_responders",
    "headers",
    "account",
    "new_account",
    "import",
    "export",
    "remote_account",
    "proxy_sig",
];

fn is_known_field(key: &str) -> bool {
    KNOWN_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(key))
}

/// Sets the field `key` names (ignoring ASCII case) to `value`.
fn apply(info: &mut ConnectInfo, key: &str, value: Value) -> Result<(), ConnectError> {
    match key.to_ascii_lowercase().as_str() {
        "verbose" => set_bool(&mut info.verbose, "verbose", value),
        "pedantic" => set_bool(&mut info.pedantic, "pedantic", value),
        "tls_required" => set_bool(&mut info.tls_required, "tls_required", value),
        "auth_token" => set_string(&mut info.auth_token, "auth_token", value),
        "user" => set_string(&mut info.user, "user", value),
        "pass" => set_string(&mut info.pass, "pass", value),
        "name" => set_string(&mut info.name, "name", value),
        "lang" => set_string(&mut info.lang, "lang", value),
        "version" => set_string(&mut info.version, "version", value),
        "protocol" => set_int(&mut info.protocol, "protocol", value),
        "echo" => set_opt_bool(&mut info.echo, "echo", value),
        "sig" => set_string(&mut info.sig, "sig", value),
        "jwt" => set_string(&mut info.jwt, "jwt", value),
        "nkey" => set_string(&mut info.nkey, "nkey", value),
        "no_responders" => set_opt_bool(&mut info.no_responders, "no_responders", value),
        "headers" => set_opt_bool(&mut info.headers, "headers", value),
        "account" => set_string(&mut info.account, "account", value),
        "new_account" => set_bool(&mut info.new_account, "new_account", value),
        "import" => set_permission(&mut info.import, "import", value),
        "export" => set_permission(&mut info.export, "export", value),
        "remote_account" => set_string(&mut info.remote_account, "remote_account", value),
        "proxy_sig" => set_string(&mut info.proxy_sig, "proxy_sig", value),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical_client_connect() {
        let json = br#"{"verbose":false,"pedantic":false,"tls_required":false,"name":"svc","lang":"go","version":"1.31.0","protocol":1,"echo":true,"headers":true,"no_responders":true,"user":"u","pass":"p"}"#;
        let info = ConnectInfo::parse(json).unwrap();
        assert!(!info.verbose && !info.pedantic && !info.tls_required);
        assert_eq!(info.name.as_deref(), Some("svc"));
        assert_eq!(info.lang.as_deref(), Some("go"));
        assert_eq!(info.version.as_deref(), Some("1.31.0"));
        assert_eq!(info.protocol, 1);
        assert_eq!(
            (info.echo, info.headers, info.no_responders),
            (Some(true), Some(true), Some(true))
        );
        assert_eq!(
            (info.user.as_deref(), info.pass.as_deref()),
            (Some("u"), Some("p"))
        );
    }

    #[test]
    fn empty_object_and_null_keep_nats_server_defaults() {
        // nats-server answers `CONNECT {}` and `CONNECT null` + PING with +OK, PONG.
        for json in [&b"{}"[..], b"null", b"  {}  "] {
            let info = ConnectInfo::parse(json).unwrap();
            assert_eq!(info, ConnectInfo::default());
            assert!(info.verbose && info.pedantic);
        }
    }

    #[test]
    fn keys_ignore_case_nulls_keep_and_last_wins() {
        // Observed: {"VERBOSE":false,"Pedantic":false,"verbose":null} gets no +OK.
        let info =
            ConnectInfo::parse(br#"{"VERBOSE":false,"Pedantic":false,"verbose":null}"#).unwrap();
        assert!(!info.verbose && !info.pedantic);
        // Observed: {"verbose":false,"verbose":true} gets +OK.
        assert!(
            ConnectInfo::parse(br#"{"verbose":false,"verbose":true}"#)
                .unwrap()
                .verbose
        );
        assert!(
            !ConnectInfo::parse(br#"{"verbose":true,"VERBOSE":false}"#)
                .unwrap()
                .verbose
        );
    }

    #[test]
    fn empty_strings_are_unset_and_unknown_keys_ignored() {
        let info = ConnectInfo::parse(br#"{"user":"","auth_token":"","foo":{"x":[1]}}"#).unwrap();
        assert_eq!((info.user, info.auth_token), (None, None));
    }

    #[test]
    fn errors_have_go_texts() {
        // Texts logged by nats-server 2.15.1 for these CONNECTs.
        let cases: [(&[u8], &str); 5] = [
            (b"", "unexpected end of JSON input"),
            (b"{", "unexpected end of JSON input"),
            (br#"{"verbose":"x"}"#, "json: cannot unmarshal string into Go struct field ClientOpts.verbose of type bool"),
            (br#"{"protocol":"1"}"#, "json: cannot unmarshal string into Go struct field ClientOpts.protocol of type int"),
            (b"[1]", "json: cannot unmarshal array into Go value of type server.ClientOpts"),
        ];
        for (json, text) in cases {
            let err = ConnectInfo::parse(json).unwrap_err();
            assert_eq!(
                err.to_string(),
                text,
                "for {:?}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn syntax_errors_are_refused() {
        for json in [&b"{bad"[..], b"{} extra", b"{\"a\":}", b"{'a':1}"] {
            assert!(
                matches!(ConnectInfo::parse(json), Err(ConnectError::Syntax(_))),
                "{json:?}"
            );
        }
    }

    #[test]
    fn syntax_error_wins_over_an_earlier_type_error() {
        let err = ConnectInfo::parse(br#"{"verbose":"x", bad}"#).unwrap_err();
        assert!(matches!(err, ConnectError::Syntax(_)), "{err}");
    }

    #[test]
    fn numbers_must_fit_int() {
        let err = ConnectInfo::parse(br#"{"protocol":1.5}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "json: cannot unmarshal number 1.5 into Go struct field ClientOpts.protocol of type int"
        );
        assert_eq!(
            ConnectInfo::parse(br#"{"protocol":-1}"#).unwrap().protocol,
            -1
        );
        let err = ConnectInfo::parse(br#"{"echo":1}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "json: cannot unmarshal number into Go struct field ClientOpts.echo of type bool"
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let info = ConnectInfo::parse(b"{\"name\":\"a\xffb\"}").unwrap();
        assert_eq!(info.name.as_deref(), Some("a\u{fffd}b"));
    }

    #[test]
    fn permissions_parse_and_type_check() {
        let info = ConnectInfo::parse(br#"{"import":{"Allow":["a.>"],"deny":null}}"#).unwrap();
        assert_eq!(
            info.import,
            Some(SubjectPermission {
                allow: vec!["a.>".into()],
                deny: vec![]
            })
        );
        assert!(ConnectInfo::parse(br#"{"export":"x"}"#).is_err());
    }

    #[test]
    fn serde_round_trip() {
        let info = ConnectInfo {
            name: Some("n".into()),
            headers: Some(true),
            ..ConnectInfo::default()
        };
        let json = serde_json::to_vec(&info).unwrap();
        assert_eq!(ConnectInfo::parse(&json).unwrap(), info);
        let via_serde: ConnectInfo = serde_json::from_slice(&json).unwrap();
        assert_eq!(via_serde, info);
    }
}
