//! Minimal reproductions of what the fuzz targets found in natrix-core.
//! Each test is the smallest input that broke a target's invariant.

use std::net::SocketAddr;

use bytes::Bytes;
use natrix_core::config::ServerOptions;
use natrix_core::{Instant, Output, Server, UnixNanos};

/// Transmitted bytes per connection, for a runtime that never writes.
fn unwritten_after(opts: ServerOptions, wire: &[u8]) -> (u64, bool) {
    let mut server = Server::new(opts, [9; 32], Instant::ZERO, UnixNanos(0));
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let conn = server.handle_connected(Instant::ZERO, UnixNanos(0), peer);
    server.handle_received(Instant::ZERO, conn, Bytes::copy_from_slice(wire));
    let (mut unwritten, mut closed) = (0, false);
    while let Some(out) = server.poll_output() {
        match out {
            Output::Transmit { bytes, .. } => unwritten += bytes.len() as u64,
            Output::Close { .. } => closed = true,
            Output::Log(_) => {}
        }
    }
    (unwritten, closed)
}

/// server_node: a client that never reads but keeps sending PING gets a
/// PONG for each, past `max_pending`, without being closed as a slow
/// consumer.
#[test]
fn pongs_respect_max_pending() {
    let opts = ServerOptions {
        max_pending_bytes: 1024,
        ..ServerOptions::default()
    };
    let mut wire = b"CONNECT {\"verbose\":false}\r\n".to_vec();
    for _ in 0..10_000 {
        wire.extend_from_slice(b"PING\r\n");
    }
    let (unwritten, closed) = unwritten_after(opts, &wire);
    assert!(
        closed || unwritten <= 1024 + 1024,
        "{unwritten} bytes queued for a client with max_pending 1024"
    );
}

/// connect_json: Go checks only the syntax of a number it then ignores,
/// so nats-server accepts `CONNECT {"foo":1e400,"verbose":true}` (it
/// answers +OK). serde_json's `Value` refuses numbers beyond f64.
#[test]
fn connect_ignores_out_of_range_numbers_in_unknown_fields() {
    let info = natrix_core::protocol::ConnectInfo::parse(br#"{"foo":1e400,"verbose":true}"#);
    assert!(
        info.is_ok_and(|i| i.verbose),
        "refused a CONNECT nats-server accepts"
    );
}

/// jwt_auth: a scoped signing key's template was expanded again after each
/// substitution, so a user named `{{name()}}` (any user JWT can carry that
/// name) recursed without end and overflowed the stack. nats-server replaces
/// the templates of the original subject only.
#[test]
fn template_values_are_not_templates() {
    use natrix_core::auth::template::{expand_subject, TemplateContext};
    let tags = vec!["t:{{tag(t)}}".to_owned()];
    let ctx = TemplateContext {
        name: "{{name()}}",
        subject: "UKEY",
        account_name: "acc",
        account_subject: "AKEY",
        tags: &tags,
        account_tags: &[],
    };
    assert_eq!(
        expand_subject("a.{{name()}}.b", &ctx),
        Ok(vec!["a.{{name()}}.b".to_owned()])
    );
    assert_eq!(
        expand_subject("{{tag(t)}}", &ctx),
        Ok(vec!["{{tag(t)}}".to_owned()])
    );
}

/// jwt_auth: tag templates multiply (one subject per combination of tag
/// values), so a few templates over a user's tags built millions of
/// subjects at each login. Past a bound the template is refused.
#[test]
fn template_expansion_is_bounded() {
    use natrix_core::auth::template::{expand_subject, TemplateContext, TemplateError};
    let tags: Vec<String> = (0..100).map(|i| format!("t:{i}")).collect();
    let ctx = TemplateContext {
        name: "u",
        subject: "UKEY",
        account_name: "acc",
        account_subject: "AKEY",
        tags: &tags,
        account_tags: &[],
    };
    assert_eq!(
        expand_subject("{{tag(t)}}.{{tag(t)}}", &ctx).map(|v| v.len()),
        Ok(10_000)
    );
    let four = "{{tag(t)}}.{{tag(t)}}.{{tag(t)}}.{{tag(t)}}";
    assert!(matches!(
        expand_subject(four, &ctx),
        Err(TemplateError::TooMany(_))
    ));
}

/// jwt_auth: a `times` window is built on the local day of `now`, in
/// seconds; at the ends of the i64 range (a wall clock nobody has, but an
/// input all the same) building it overflowed.
#[test]
fn time_windows_at_the_ends_of_time() {
    use natrix_core::auth::jwt::UserLimitClaims;
    use natrix_core::auth::restrictions::{check, RestrictionError, STANDARD};
    let limits: UserLimitClaims = serde_json::from_value(serde_json::json!({
        "times": [{"start": "00:00:01", "end": "23:59:59"}, {"start": "23:00:00", "end": "01:00:00"}],
        "times_location": "America/New_York"
    }))
    .unwrap();
    let peer = "127.0.0.1".parse().unwrap();
    for now in [i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX] {
        let result = check(&limits, peer, now, STANDARD);
        assert!(
            matches!(result, Ok(Some(_)) | Err(RestrictionError::Time)),
            "{now}: {result:?}"
        );
    }
}

/// connect_json: `serde_json` refuses a `\u` escape of an unpaired UTF-16
/// surrogate in a string it decodes, so `CONNECT {"name":"\ud83d x"}` was a
/// syntax error and closed the connection; Go reads it as U+FFFD and
/// nats-server answers +OK (verified on 2.15.1, keys included).
#[test]
fn connect_reads_lone_surrogates_as_replacement_characters() {
    use natrix_core::protocol::connect::{ConnectError, ConnectInfo};
    let name = |json: &str| ConnectInfo::parse(json.as_bytes()).map(|i| i.name);
    let fffd = |s: &str| Ok(Some(s.replace('?', "\u{fffd}")));
    assert_eq!(name(r#"{"name":"\ud83d x"}"#), fffd("? x"));
    assert_eq!(name(r#"{"name":"\udc00\ud83d\ude00"}"#), fffd("?\u{1f600}"));
    assert_eq!(name(r#"{"name":"\ud83d\u0041\ud83d"}"#), fffd("?A?"));
    assert_eq!(
        name(r#"{"name":"\\ud83d"}"#),
        Ok(Some("\\ud83d".to_owned()))
    );
    let key = ConnectInfo::parse(br#"{"\udc00":1,"verbose":false}"#);
    assert!(key.is_ok_and(|i| !i.verbose));
    assert!(matches!(
        ConnectInfo::parse(br#"{"name":"\ud83d"#),
        Err(ConnectError::Syntax(_))
    ));
}

/// connect_json: a top-level number beyond f64 (`CONNECT 4444e333`) was a
/// syntax error, as `serde_json` refuses it; Go checks it as syntax only and
/// then fails to put a number into the options: a type error, as for any
/// other number (nats-server closes the connection either way).
#[test]
fn connect_of_a_huge_number_is_a_type_error() {
    use natrix_core::protocol::connect::{ConnectError, ConnectInfo};
    let number = Err(ConnectError::NotObject { found: "number" });
    assert_eq!(ConnectInfo::parse(b" 4444e333\n"), number);
    assert_eq!(ConnectInfo::parse(b"-1e400"), number);
    assert_eq!(ConnectInfo::parse(b"12"), number);
    assert!(matches!(
        ConnectInfo::parse(b"1e400 x"),
        Err(ConnectError::Syntax(_))
    ));
    assert!(matches!(
        ConnectInfo::parse(b"-"),
        Err(ConnectError::Syntax(_))
    ));
}

/// connect_json: the same inside an object, in a known field: serde_json
/// refused `{"verbose":9999e99999999999999999999}` as a syntax error; Go
/// fails to store the number in the bool, a type error.
#[test]
fn connect_of_a_huge_number_in_a_known_field_is_a_type_error() {
    use natrix_core::protocol::connect::{ConnectError, ConnectInfo};
    let parsed = ConnectInfo::parse(br#"{"verbose":9999e99999999999999999999}"#);
    assert!(
        matches!(parsed, Err(ConnectError::FieldType { .. })),
        "{parsed:?}"
    );
    let parsed = ConnectInfo::parse(br#"{"name":"1e999","protocol":-1e999}"#);
    assert!(
        matches!(parsed, Err(ConnectError::FieldType { .. })),
        "{parsed:?}"
    );
    let parsed = ConnectInfo::parse(br#"{"x":"\"1e999","verbose":1e999"#);
    assert!(matches!(parsed, Err(ConnectError::Syntax(_))), "{parsed:?}");
}
