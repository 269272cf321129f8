//! The client protocol parser and CONNECT's JSON.

use bytes::Bytes;
use natrix_core::protocol::connect::ConnectError;
use natrix_core::protocol::{ClientOp, ConnectInfo, ParseError, Parser, ParserLimits};

use super::InputRng;

/// `max_control_line` choices, picked by the input's first byte.
const CONTROL_LINE_LIMITS: [u32; 8] = [4096, 1, 2, 8, 16, 32, 128, 1024];
/// `max_payload` choices, picked by the input's second byte.
const PAYLOAD_LIMITS: [u32; 8] = [1024 * 1024, 0, 1, 4, 16, 64, 512, 4096];

/// Everything one parse produced: the ops, then the error that stopped it
/// (with the absolute offset the parser left the input at).
#[derive(Debug, Default)]
struct Outcome {
    ops: Vec<ClientOp>,
    error: Option<(ParseError, usize)>,
}

/// Input: two header bytes choosing the limits, then the bytes a client sent.
///
/// Parses the bytes whole, then in pieces of random sizes (derived from the
/// input), then one byte at a time; all three must give the same ops and
/// the same error. Throughout, the parser's buffer stays within its limits
/// and every op respects them.
pub fn protocol_parser(data: &[u8]) {
    let [a, b, wire @ ..] = data else { return };
    let limits = ParserLimits {
        max_control_line_bytes: CONTROL_LINE_LIMITS[usize::from(a % 8)],
        max_payload_bytes: PAYLOAD_LIMITS[usize::from(b % 8)],
    };
    let whole = parse_chunks(limits, wire, &[wire.len()]);
    let mut rng = InputRng::from_input(data);
    let mut sizes = Vec::new();
    let mut left = wire.len();
    while left > 0 {
        let piece_max = 1 + rng.between_one_and(64);
        let n = rng.between_one_and(left.min(piece_max));
        sizes.push(n);
        left -= n;
    }
    let pieces = parse_chunks(limits, wire, &sizes);
    assert_same(&whole, &pieces, "random pieces");
    if wire.len() <= 4096 {
        let bytewise = parse_chunks(limits, wire, &vec![1; wire.len()]);
        assert_same(&whole, &bytewise, "one byte at a time");
    }
}

/// Feeds `wire` to a fresh parser in chunks of `sizes`, as a connection
/// would, stopping at the first error.
fn parse_chunks(limits: ParserLimits, wire: &[u8], sizes: &[usize]) -> Outcome {
    // Slack: the line buffer keeps one byte past the limit (a possible `\r`).
    let buffer_max = limits.max_control_line_bytes as usize + limits.max_payload_bytes as usize + 2;
    let mut parser = Parser::new(limits);
    let mut outcome = Outcome::default();
    let mut start = 0;
    for &size in sizes {
        let mut chunk = Bytes::copy_from_slice(&wire[start..start + size]);
        loop {
            let result = parser.next_op(&mut chunk);
            assert!(
                parser.buffered_len() <= buffer_max,
                "parser buffers {} bytes, limits {limits:?}",
                parser.buffered_len()
            );
            match result {
                Ok(Some(op)) => {
                    check_op_limits(&op, limits);
                    outcome.ops.push(op);
                }
                Ok(None) => {
                    assert!(chunk.is_empty(), "Ok(None) with {} bytes left", chunk.len());
                    break;
                }
                Err(e) => {
                    let _ = (e.to_string(), e.err_text(), e.close_reason());
                    outcome.error = Some((e, start + size - chunk.len()));
                    return outcome;
                }
            }
        }
        start += size;
    }
    outcome
}

fn check_op_limits(op: &ClientOp, limits: ParserLimits) {
    let line_max = limits.max_control_line_bytes as usize;
    match op {
        ClientOp::Pub(p) => {
            let size = p.payload.len() + p.headers.as_ref().map_or(0, Bytes::len);
            assert!(
                size <= limits.max_payload_bytes as usize,
                "payload {size} over {limits:?}"
            );
            assert!(
                p.subject.len() <= line_max,
                "subject over the control line limit"
            );
            assert!(!p.subject.is_empty(), "empty subject");
        }
        ClientOp::Sub { subject, sid, .. } => {
            assert!(subject.len() <= line_max && !subject.is_empty() && !sid.is_empty());
        }
        ClientOp::Unsub { sid, .. } => assert!(!sid.is_empty() && sid.len() <= line_max),
        ClientOp::Connect(line) | ClientOp::Err(line) => {
            assert!(
                line.len() <= line_max,
                "control line {} over {limits:?}",
                line.len()
            );
        }
        ClientOp::Ping | ClientOp::Pong | ClientOp::Ok => {}
    }
}

/// The same ops and the same error, whatever the split. An error's snippet
/// is cut at the end of the chunk that held it, so a split run's snippet
/// need only be a non-empty prefix of the whole run's.
fn assert_same(whole: &Outcome, split: &Outcome, how: &str) {
    assert_eq!(whole.ops, split.ops, "ops differ when parsed in {how}");
    match (&whole.error, &split.error) {
        (None, None) => {}
        (Some((w, w_at)), Some((s, s_at))) => match (w, s) {
            (
                ParseError::UnknownOperation { snippet: ws },
                ParseError::UnknownOperation { snippet: ss },
            ) => {
                assert!(
                    !ss.is_empty() && ws.starts_with(ss),
                    "snippets {ws:?} vs {ss:?} in {how}"
                );
                assert_eq!(w_at, s_at, "error offset differs in {how}");
            }
            // Where the input is left after this error depends on the split
            // (a whole payload is checked before the parser advances over
            // it); the server closes the connection either way.
            (
                ParseError::PayloadNotTerminated { snippet: ws },
                ParseError::PayloadNotTerminated { snippet: ss },
            ) => {
                assert!(
                    !ss.is_empty() && ws.starts_with(ss),
                    "snippets {ws:?} vs {ss:?} in {how}"
                );
            }
            _ => assert_eq!(w, s, "errors differ when parsed in {how}"),
        },
        (w, s) => panic!("whole: {w:?}, {how}: {s:?}"),
    }
}

/// Input: the JSON after `CONNECT `.
///
/// Never panics; it is a syntax error exactly when the text is not JSON
/// (Go checks syntax alone before decoding, so a number too large for f64
/// in an ignored field is fine); an accepted CONNECT was an object or
/// `null`; re-encoding what was decoded decodes to the same options.
pub fn connect_json(data: &[u8]) {
    let parsed = ConnectInfo::parse(data);
    if let Err(e) = &parsed {
        let _ = e.to_string();
    }
    let text = String::from_utf8_lossy(data);
    // `IgnoredAny` checks syntax without converting numbers, like Go's checkValid.
    let syntax_ok = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
    let is_syntax_error = matches!(parsed, Err(ConnectError::Syntax(_)));
    assert_eq!(!syntax_ok, is_syntax_error, "{text:?} gave {parsed:?}");
    let top = text.trim_start_matches([' ', '\t', '\n', '\r']);
    let object_or_null = top.starts_with('{') || top.starts_with("null");
    if syntax_ok && !object_or_null {
        assert!(parsed.is_err(), "accepted a non-object: {text:?}");
    }
    if let Ok(info) = parsed {
        assert!(object_or_null, "accepted a non-object: {text:?}");
        let json = serde_json::to_vec(&info).expect("ConnectInfo serializes");
        let again = ConnectInfo::parse(&json);
        assert_eq!(
            again.as_ref(),
            Ok(&info),
            "re-encoded as {}",
            String::from_utf8_lossy(&json)
        );
    }
}
