//! JSON as nats-server's Go encoder writes and its strict decoder reads it.
//!
//! Writing: Go escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings
//! (`"foo.\u003e"`); [`to_go_json`] does the same after serde. Reading: a
//! request body may hold several JSON values, decoded one after another
//! into the same struct; unknown fields are refused (nats-server's default
//! strict mode); errors carry Go's texts where clients may show them.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::errors::ApiError;
use crate::time::UnixNanos;

/// Serialises `value` as nats-server would send it.
pub fn to_go_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Serialising plain data types to a Vec cannot fail.
    let plain = serde_json::to_vec(value).unwrap_or_default();
    go_escape(plain)
}

/// Escapes what Go's encoder escapes. `<`, `>`, `&` and the two line
/// separators can only occur inside strings in JSON text, so a byte-level
/// rewrite is safe.
fn go_escape(plain: Vec<u8>) -> Vec<u8> {
    let needs = plain
        .windows(3)
        .any(|w| w == "\u{2028}".as_bytes() || w == "\u{2029}".as_bytes())
        || plain.iter().any(|b| matches!(b, b'<' | b'>' | b'&'));
    if !needs {
        return plain;
    }
    let mut out = Vec::with_capacity(plain.len() + 16);
    let mut i = 0;
    while i < plain.len() {
        match plain[i] {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            0xE2 if plain.get(i + 1) == Some(&0x80)
                && matches!(plain.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                let last = if plain[i + 2] == 0xA8 { b'8' } else { b'9' };
                out.extend_from_slice(b"\\u202");
                out.push(last);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Go's zero `time.Time` in JSON, which nats-server sends for the first and
/// last message times of an empty stream.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Serde helpers for a `time.Time` that may be Go's zero time (`None`).
pub mod go_time_opt {
    use super::*;

    /// `None` is Go's zero time; `Some(t)` is RFC 3339 with nanoseconds.
    pub fn serialize<S: Serializer>(t: &Option<UnixNanos>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_rfc3339()),
            None => s.serialize_str(GO_ZERO_TIME),
        }
    }

    /// Reads RFC 3339; Go's zero time (or `null`) is `None`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<UnixNanos>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        if text == GO_ZERO_TIME {
            return Ok(None);
        }
        parse_rfc3339(&text)
            .map(|n| Some(UnixNanos(n)))
            .ok_or_else(|| {
                serde::de::Error::custom(format!("parsing time {text:?}: invalid format"))
            })
    }
}

/// Serde helpers for a `time.Time` that is always set.
pub mod go_time {
    use super::*;

    /// RFC 3339 with nanoseconds, UTC.
    pub fn serialize<S: Serializer>(t: &UnixNanos, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339())
    }

    /// Reads RFC 3339 (Go's zero time reads as the Unix epoch).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<UnixNanos, D::Error> {
        Ok(super::go_time_opt::deserialize(d)?.unwrap_or_default())
    }
}

/// Parses RFC 3339 (`2024-01-02T03:04:05.123456789Z` or with a `+hh:mm`
/// offset) into nanoseconds since the Unix epoch.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let end = start + b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
        if end == start || end - start > 9 {
            return None;
        }
        let frac = &text[start..end];
        nanos = frac.parse::<i64>().ok()? * 10i64.pow(9 - frac.len() as u32);
        i = end;
    }
    let offset_secs = match &text[i..] {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && matches!(&tz[..1], "+" | "-") && &tz[3..4] == ":" => {
            let sign = if &tz[..1] == "-" { -1 } else { 1 };
            sign * (tz[1..3].parse::<i64>().ok()? * 3600 + tz[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Decodes a request body the way nats-server's strict decoder does, into a
/// `T` (Go type name `go_type`, used in error texts). An empty body or
/// `null` gives `T::default()`; several values are merged in order, later
/// fields replacing earlier ones.
pub fn parse_request<T: DeserializeOwned + Default>(
    body: &[u8],
    go_type: &str,
) -> Result<T, ApiError> {
    let Some(mut merged) = merge_values(body, go_type)? else {
        return Ok(T::default());
    };
    drop_nulls::<T>(&mut merged);
    serde_json::from_value::<T>(Value::Object(merged.clone()))
        .map_err(|err| ApiError::invalid_json(go_decode_error::<T>(&err, &merged, go_type)))
}

/// Removes every `null` member, at any depth: Go's decoder leaves a field
/// it finds `null` for as it was (or nil, which is its zero value), never
/// an error, so a client that writes `"consumer_limits": null` is answered
/// as if it had left the field out.
///
/// A `null` for a field `T` does not have stays, so that the strict
/// decoder still names it as unknown (nested objects are not probed).
fn drop_nulls<T: DeserializeOwned>(fields: &mut Map<String, Value>) {
    fields.retain(|key, v| {
        let unknown = || {
            let probe = Map::from_iter([(key.clone(), Value::Null)]);
            serde_json::from_value::<T>(Value::Object(probe)).is_err_and(|e| e.to_string().starts_with("unknown field"))
        };
        !v.is_null() || unknown()
    });
    let mut nested: Vec<&mut Value> = fields.values_mut().collect();
    while let Some(value) = nested.pop() {
        match value {
            Value::Object(inner) => {
                inner.retain(|_, v| !v.is_null());
                nested.extend(inner.values_mut());
            }
            Value::Array(items) => nested.extend(items.iter_mut()),
            _ => {}
        }
    }
}

/// Reads every JSON value in `body` and merges the objects.
pub fn merge_values(body: &[u8], go_type: &str) -> Result<Option<Map<String, Value>>, ApiError> {
    let mut merged: Option<Map<String, Value>> = None;
    for value in serde_json::Deserializer::from_slice(body).into_iter::<Value>() {
        let value = value.map_err(|err| ApiError::invalid_json(go_syntax_error(&err, body)))?;
        match value {
            Value::Null => {}
            Value::Object(fields) => merged.get_or_insert_with(Map::new).extend(fields),
            other => {
                return Err(ApiError::invalid_json(format!(
                    "json: cannot unmarshal {} into Go value of type server.{go_type}",
                    go_kind(&other, false)
                )))
            }
        }
    }
    Ok(merged)
}

/// Go's name for the kind of a JSON value in decode errors.
fn go_kind(value: &Value, with_number: bool) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) if with_number => format!("number {n}"),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

/// `json.Unmarshal`'s text for unreadable JSON (as nats-server prints it
/// in a `MSG.NEXT` 400 status: without the offset); `None` when `err` is
/// not a syntax error.
pub(crate) fn go_unmarshal_syntax_error(err: &serde_json::Error, body: &[u8]) -> Option<String> {
    if !err.is_syntax() && !err.is_eof() {
        return None;
    }
    let text = go_syntax_error(err, body);
    Some(match text.rfind(" at offset ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    })
}

/// Go's texts for unreadable JSON: `unexpected EOF`, or `invalid character
/// 'x' <what the scanner was doing> at offset N`.
fn go_syntax_error(err: &serde_json::Error, body: &[u8]) -> String {
    if err.is_eof() {
        return "unexpected EOF".into();
    }
    let offset = body
        .split(|&b| b == b'\n')
        .take(err.line().saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum::<usize>()
        + err.column().saturating_sub(1);
    match body.get(offset) {
        Some(&c) => format!(
            "invalid character '{}' {} at offset {}",
            c as char,
            go_scan_context(&body[..offset]),
            offset + 1
        ),
        None => "unexpected EOF".into(),
    }
}

/// What Go's JSON scanner says it was looking for after reading `before`
/// (well-formed so far): the step of the innermost object or array.
/// Errors inside literals, numbers and strings keep the generic text.
fn go_scan_context(before: &[u8]) -> &'static str {
    #[derive(Clone, Copy, PartialEq)]
    enum Step {
        ObjectKey,
        ObjectColon,
        ObjectValue,
        ObjectComma,
        ArrayValue,
        ArrayComma,
    }
    const VALUE: &str = "looking for beginning of value";
    // Bounded by the body, which the caller's payload limit bounds.
    let mut stack: Vec<Step> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut in_scalar = false;
    let value_done = |stack: &mut Vec<Step>| match stack.last_mut() {
        Some(s @ Step::ObjectKey) => *s = Step::ObjectColon,
        Some(s @ Step::ObjectValue) => *s = Step::ObjectComma,
        Some(s @ Step::ArrayValue) => *s = Step::ArrayComma,
        _ => {}
    };
    for &b in before {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => {
                    in_string = false;
                    value_done(&mut stack);
                }
                _ => {}
            }
            continue;
        }
        let scalar = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.');
        if in_scalar && !scalar {
            in_scalar = false;
            value_done(&mut stack);
        }
        match b {
            b'"' => in_string = true,
            b'{' => stack.push(Step::ObjectKey),
            b'[' => stack.push(Step::ArrayValue),
            b'}' | b']' => {
                stack.pop();
                value_done(&mut stack);
            }
            b':' => {
                if let Some(s @ Step::ObjectColon) = stack.last_mut() {
                    *s = Step::ObjectValue;
                }
            }
            b',' => match stack.last_mut() {
                Some(s @ Step::ObjectComma) => *s = Step::ObjectKey,
                Some(s @ Step::ArrayComma) => *s = Step::ArrayValue,
                _ => {}
            },
            _ if scalar => in_scalar = true,
            _ => {}
        }
    }
    if in_string || in_scalar {
        return VALUE;
    }
    match stack.last() {
        Some(Step::ObjectKey) => "looking for beginning of object key string",
        Some(Step::ObjectColon) => "after object key",
        Some(Step::ObjectComma) => "after object key:value pair",
        Some(Step::ArrayComma) => "after array element",
        Some(Step::ObjectValue | Step::ArrayValue) | None => VALUE,
    }
}

/// Go's texts for a well-formed body that does not fit the struct. Custom
/// messages (enum words, compression) pass through unchanged.
fn go_decode_error<T: DeserializeOwned>(
    err: &serde_json::Error,
    merged: &Map<String, Value>,
    go_type: &str,
) -> String {
    let text = err.to_string();
    if let Some(rest) = text.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return format!("json: unknown field {field:?}");
    }
    if !(text.starts_with("invalid type") || text.starts_with("invalid value")) {
        return text;
    }
    // Find the offending top-level field by decoding the fields one at a time.
    for (key, value) in merged {
        let single = Map::from_iter([(key.clone(), value.clone())]);
        let Err(field_err) = serde_json::from_value::<T>(Value::Object(single)) else {
            continue;
        };
        let field_text = field_err.to_string();
        if !(field_text.starts_with("invalid type") || field_text.starts_with("invalid value")) {
            return field_text;
        }
        let expected = field_text.rsplit("expected ").next().unwrap_or_default();
        return format!(
            "json: cannot unmarshal {} into Go struct field {go_type}.{key} of type {}",
            go_kind(value, true),
            go_type_name(expected)
        );
    }
    format!("json: {text}")
}

/// Go's type name for serde's `expected …` phrase.
fn go_type_name(expected: &str) -> &'static str {
    match expected {
        e if e.starts_with("i64") => "int64",
        e if e.starts_with("i32") => "int32",
        e if e.starts_with("u64") => "uint64",
        e if e.starts_with("u16") => "uint16",
        e if e.starts_with("a boolean") => "bool",
        e if e.starts_with("a string") => "string",
        e if e.starts_with("a sequence") => "[]string",
        e if e.starts_with("a map") => "map[string]string",
        _ => "struct",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_go() {
        let out = to_go_json(&serde_json::json!({"s": "foo.> <&\u{2028}"}));
        assert_eq!(out, br#"{"s":"foo.\u003e \u003c\u0026\u2028"}"#.to_vec());
    }

    #[test]
    fn rfc3339_round_trips() {
        for text in [
            "2026-12-06T19:59:27.716123485Z",
            "1970-01-01T00:00:00Z",
            "2000-02-29T00:00:00.5Z",
        ] {
            let nanos = parse_rfc3339(text).unwrap();
            assert_eq!(UnixNanos(nanos).to_rfc3339(), text);
        }
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("nope"), None);
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Probe {
        seq: u64,
        name: String,
    }

    #[test]
    fn nulls_leave_fields_as_they_were() {
        let probe: Probe = parse_request(br#"{"seq":5,"name":null}"#, "Probe").unwrap();
        assert_eq!((probe.seq, probe.name.as_str()), (5, ""));
        let config: crate::jetstream::config::StreamConfig =
            parse_request(br#"{"name":"S","consumer_limits":null,"metadata":{"a":null},"subjects":null}"#, "StreamConfig")
                .unwrap();
        assert_eq!(config.name, "S");
    }

    #[test]
    fn request_errors_read_like_go() {
        let err = |body: &str| {
            parse_request::<Probe>(body.as_bytes(), "Probe")
                .unwrap_err()
                .description
        };
        assert_eq!(
            err(r#"{"foo":1}"#),
            r#"invalid JSON: json: unknown field "foo""#
        );
        assert_eq!(err(r#"{"foo":null}"#), r#"invalid JSON: json: unknown field "foo""#);
        assert_eq!(err(r#"{"name":"#), "invalid JSON: unexpected EOF");
        assert_eq!(
            err("[1]"),
            "invalid JSON: json: cannot unmarshal array into Go value of type server.Probe"
        );
        assert_eq!(
            err(r#"{"seq":"a"}"#),
            "invalid JSON: json: cannot unmarshal string into Go struct field Probe.seq of type uint64"
        );
        // The scanner's step, as Go names it (texts from nats-server 2.15.1
        // and Go's encoding/json).
        assert_eq!(
            err("{not json"),
            "invalid JSON: invalid character 'n' looking for beginning of object key string at offset 2"
        );
        assert_eq!(
            err(r#"{"seq" 1}"#),
            "invalid JSON: invalid character '1' after object key at offset 8"
        );
        assert_eq!(
            err(r#"{"seq":1 "name":"x"}"#),
            "invalid JSON: invalid character '\"' after object key:value pair at offset 10"
        );
        assert_eq!(
            err(r#"{"name":[1 2]}"#),
            "invalid JSON: invalid character '2' after array element at offset 12"
        );
        assert_eq!(
            err(r#"{"seq":}"#),
            "invalid JSON: invalid character '}' looking for beginning of value at offset 8"
        );
        let merged: Probe = parse_request(br#"{"seq":1} {"name":"x"} null"#, "Probe").unwrap();
        assert_eq!((merged.seq, merged.name.as_str()), (1, "x"));
        assert_eq!(parse_request::<Probe>(b"", "Probe").unwrap().seq, 0);
    }
}
