//! Property tests of the client protocol parser: random valid op streams
//! survive any split, and random garbage never panics nor buffers more than
//! the limits allow.

use bytes::Bytes;
use std::mem::{discriminant, Discriminant};

use natrix_core::protocol::{ClientOp, ParseError, Parser, ParserLimits, Publish};
use proptest::prelude::*;

/// A subject, reply, queue or sid: no blanks, no line ends.
fn token() -> impl Strategy<Value = Bytes> {
    "[A-Za-z0-9_.>*$-]{1,12}".prop_map(Bytes::from)
}

/// A line's text (CONNECT JSON, -ERR text): starts with a non-blank and has
/// no `\n` and no trailing `\r`, since the parser drops those.
fn line_text() -> impl Strategy<Value = Bytes> {
    "[^ \t\r\n][^\r\n]{0,30}".prop_map(Bytes::from)
}

fn any_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

fn publish() -> impl Strategy<Value = ClientOp> {
    (
        token(),
        prop::option::of(token()),
        prop::option::of(any_bytes(40)),
        any_bytes(80),
    )
        .prop_map(|(subject, reply, headers, payload)| {
            ClientOp::Pub(Publish {
                subject,
                reply,
                headers,
                payload,
            })
        })
}

fn client_op() -> impl Strategy<Value = ClientOp> {
    prop_oneof![
        4 => publish(),
        2 => (token(), prop::option::of(token()), token())
            .prop_map(|(subject, queue, sid)| ClientOp::Sub { subject, queue, sid }),
        1 => (token(), prop::option::of(0u64..1_000_000_000))
            .prop_map(|(sid, max_msgs)| ClientOp::Unsub { sid, max_msgs }),
        1 => line_text().prop_map(ClientOp::Connect),
        1 => line_text().prop_map(ClientOp::Err),
        1 => Just(ClientOp::Ping),
        1 => Just(ClientOp::Pong),
        1 => Just(ClientOp::Ok),
    ]
}

/// Writes `name` with each letter's case chosen by the bits of `case_bits`,
/// since op names are case-insensitive.
fn push_name(out: &mut Vec<u8>, name: &str, case_bits: u32) {
    for (i, c) in name.bytes().enumerate() {
        let lower = case_bits >> (i % 32) & 1 == 1;
        out.push(if lower { c.to_ascii_lowercase() } else { c });
    }
}

/// The client-side encoding of `op`.
fn encode(out: &mut Vec<u8>, op: &ClientOp, case_bits: u32) {
    let line = |out: &mut Vec<u8>, name: &str, parts: &[&[u8]]| {
        push_name(out, name, case_bits);
        for part in parts {
            out.push(b' ');
            out.extend_from_slice(part);
        }
        out.extend_from_slice(b"\r\n");
    };
    match op {
        ClientOp::Pub(p) => {
            let mut parts: Vec<&[u8]> = vec![&p.subject];
            parts.extend(p.reply.as_deref());
            let hdr_len = p.headers.as_ref().map(|h| h.len().to_string());
            let total = (p.headers.as_ref().map_or(0, |h| h.len()) + p.payload.len()).to_string();
            parts.extend(hdr_len.as_deref().map(str::as_bytes));
            parts.push(total.as_bytes());
            line(
                out,
                if p.headers.is_some() { "HPUB" } else { "PUB" },
                &parts,
            );
            out.extend_from_slice(p.headers.as_deref().unwrap_or_default());
            out.extend_from_slice(&p.payload);
            out.extend_from_slice(b"\r\n");
        }
        ClientOp::Sub {
            subject,
            queue,
            sid,
        } => {
            let mut parts: Vec<&[u8]> = vec![subject];
            parts.extend(queue.as_deref());
            parts.push(sid);
            line(out, "SUB", &parts);
        }
        ClientOp::Unsub { sid, max_msgs } => {
            let max = max_msgs.map(|m| m.to_string());
            let mut parts: Vec<&[u8]> = vec![sid];
            parts.extend(max.as_deref().map(str::as_bytes));
            line(out, "UNSUB", &parts);
        }
        ClientOp::Connect(json) => line(out, "CONNECT", &[json]),
        ClientOp::Err(text) => line(out, "-ERR", &[text]),
        ClientOp::Ping => line(out, "PING", &[]),
        ClientOp::Pong => line(out, "PONG", &[]),
        ClientOp::Ok => line(out, "+OK", &[]),
    }
}

/// Splits `stream` at `cuts` (fractions of its length, any order).
fn chunks<'a>(stream: &'a [u8], cuts: &[f64]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|f| (f * stream.len() as f64) as usize)
        .collect();
    points.push(0);
    points.push(stream.len());
    points.sort_unstable();
    points.windows(2).map(|w| &stream[w[0]..w[1]]).collect()
}

/// The ops parsed from `pieces`, and which kind of error stopped them, if
/// any. (An error's log text quotes the input from the offending byte, which
/// a split may cut short, so only its kind is compared.)
fn parse_chunks(
    parser: &mut Parser,
    pieces: &[&[u8]],
) -> (Vec<ClientOp>, Option<Discriminant<ParseError>>) {
    let mut ops = Vec::new();
    for piece in pieces {
        let mut input = Bytes::copy_from_slice(piece);
        loop {
            match parser.next_op(&mut input) {
                Ok(Some(op)) => ops.push(op),
                Ok(None) => break,
                Err(e) => return (ops, Some(discriminant(&e))),
            }
        }
        assert!(input.is_empty(), "input left after Ok(None)");
    }
    (ops, None)
}

/// Pieces of ops, to build inputs that go deep into the state machine.
const OP_FRAGMENTS: &[&[u8]] = &[
    b"PUB ",
    b"HPUB ",
    b"SUB ",
    b"UNSUB ",
    b"PING",
    b"CONNECT ",
    b"-ERR ",
    b"+OK",
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b"1",
    b"12",
    b"a.b",
    b"x",
];

/// Valid ops, a bad one (`PUB a 3` with 2 bytes) and junk.
const WHOLE_OPS_AND_JUNK: &[&[u8]] = &[
    b"PUB a 2\r\nhi\r\n",
    b"HPUB a 1 2\r\nhi\r\n",
    b"SUB a 1\r\n",
    b"PING\r\n",
    b"x",
    b"\r\n",
    b" ",
    b"PUB a 3\r\nhi\r\n",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encoded_ops_round_trip_under_any_split(
        ops in prop::collection::vec(client_op(), 0..12),
        case_bits in any::<u32>(),
        cuts in prop::collection::vec(0.0f64..1.0, 0..8),
    ) {
        let mut stream = Vec::new();
        for op in &ops {
            encode(&mut stream, op, case_bits);
        }
        let mut parser = Parser::new(ParserLimits::default());
        let parsed = parse_chunks(&mut parser, &chunks(&stream, &cuts));
        prop_assert_eq!(parsed, (ops, None));
        prop_assert!(parser.at_op_start());
        prop_assert_eq!(parser.buffered_len(), 0);
    }

    #[test]
    fn garbage_never_panics_nor_outgrows_the_limits(
        pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16),
        mcl in 1u32..64,
        max_payload in 0u32..64,
    ) {
        let mut parser = Parser::new(ParserLimits { max_control_line_bytes: mcl, max_payload_bytes: max_payload });
        for piece in pieces {
            let mut input = Bytes::from(piece);
            loop {
                match parser.next_op(&mut input) {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => break,
                }
                prop_assert!(parser.buffered_len() <= (mcl + 1 + max_payload) as usize);
            }
            prop_assert!(parser.buffered_len() <= (mcl + 1 + max_payload) as usize);
        }
    }

    #[test]
    fn op_shaped_garbage_never_panics(
        pieces in prop::collection::vec(
            prop::collection::vec(
                prop::sample::select(OP_FRAGMENTS),
                0..24,
            ),
            1..4,
        ),
    ) {
        let limits = ParserLimits { max_control_line_bytes: 32, max_payload_bytes: 16 };
        let mut parser = Parser::new(limits);
        for piece in pieces {
            let mut input = Bytes::from(piece.concat());
            while let Ok(Some(_)) = parser.next_op(&mut input) {}
            prop_assert!(parser.buffered_len() <= 33 + 16);
        }
    }

    /// Split or whole, a stream gives the same ops and fails at the same op.
    #[test]
    fn splits_never_change_the_outcome_of_garbage(
        stream in prop::collection::vec(
            prop::sample::select(WHOLE_OPS_AND_JUNK),
            0..10,
        ),
        cuts in prop::collection::vec(0.0f64..1.0, 0..6),
    ) {
        let stream = stream.concat();
        let limits = ParserLimits::default();
        let whole = parse_chunks(&mut Parser::new(limits), &[&stream]);
        let split = parse_chunks(&mut Parser::new(limits), &chunks(&stream, &cuts));
        prop_assert_eq!(whole, split);
    }
}
