//! The client protocol parser against the NATS protocol docs' examples and
//! against what nats-server 2.15.1 was observed to do with raw bytes.

use bytes::Bytes;
use natrix_core::protocol::{ClientOp, ParseError, Parser, ParserLimits, Publish};
use natrix_core::server::CloseReason;

/// Feeds `chunks` in order; returns the ops, and the error if one ended it.
fn feed(parser: &mut Parser, chunks: &[&[u8]]) -> (Vec<ClientOp>, Option<ParseError>) {
    let mut ops = Vec::new();
    for chunk in chunks {
        let mut input = Bytes::copy_from_slice(chunk);
        loop {
            match parser.next_op(&mut input) {
                Ok(Some(op)) => ops.push(op),
                Ok(None) => {
                    assert!(input.is_empty(), "Ok(None) with input left");
                    break;
                }
                Err(e) => return (ops, Some(e)),
            }
        }
    }
    (ops, None)
}

/// The snippet of an error depends on where the input was split (as in
/// nats-server's logs); everything else must not.
fn without_snippet(
    result: (Vec<ClientOp>, Option<ParseError>),
) -> (Vec<ClientOp>, Option<ParseError>) {
    let (ops, err) = result;
    let err = err.map(|e| match e {
        ParseError::UnknownOperation { .. } => ParseError::UnknownOperation {
            snippet: Bytes::new(),
        },
        ParseError::PayloadNotTerminated { .. } => ParseError::PayloadNotTerminated {
            snippet: Bytes::new(),
        },
        other => other,
    });
    (ops, err)
}

fn parse_whole(stream: &[u8]) -> (Vec<ClientOp>, Option<ParseError>) {
    feed(&mut Parser::new(ParserLimits::default()), &[stream])
}

/// Asserts the stream parses the same whole, split at every single point,
/// split at every pair of points (if short), and one byte at a time.
fn assert_split_invariant(stream: &[u8]) -> (Vec<ClientOp>, Option<ParseError>) {
    let whole = parse_whole(stream);
    let expected = without_snippet(whole.clone());
    let limits = ParserLimits::default();
    for i in 0..=stream.len() {
        let split = feed(&mut Parser::new(limits), &[&stream[..i], &stream[i..]]);
        assert_eq!(
            without_snippet(split),
            expected,
            "split at {i} of {:?}",
            String::from_utf8_lossy(stream)
        );
    }
    if stream.len() <= 200 {
        for i in 0..=stream.len() {
            for j in i..=stream.len() {
                let chunks = [&stream[..i], &stream[i..j], &stream[j..]];
                let split = feed(&mut Parser::new(limits), &chunks);
                assert_eq!(without_snippet(split), expected, "split at {i},{j}");
            }
        }
    }
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    let split = feed(&mut Parser::new(limits), &bytes);
    assert_eq!(without_snippet(split), expected, "one byte at a time");
    whole
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn publish(
    subject: &'static str,
    reply: Option<&'static str>,
    headers: Option<&'static str>,
    payload: &'static str,
) -> ClientOp {
    ClientOp::Pub(Publish {
        subject: b(subject),
        reply: reply.map(b),
        headers: headers.map(b),
        payload: b(payload),
    })
}

fn sub(subject: &'static str, queue: Option<&'static str>, sid: &'static str) -> ClientOp {
    ClientOp::Sub {
        subject: b(subject),
        queue: queue.map(b),
        sid: b(sid),
    }
}

/// Every example from the client protocol docs (docs.nats.io, "Client Protocol").
fn doc_examples() -> Vec<(&'static str, ClientOp)> {
    let connect = r#"{"verbose":false,"pedantic":false,"tls_required":false,"name":"","lang":"go","version":"1.2.2","protocol":1}"#;
    vec![
        (
            "CONNECT {\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"name\":\"\",\"lang\":\"go\",\"version\":\"1.2.2\",\"protocol\":1}\r\n",
            ClientOp::Connect(b(connect)),
        ),
        ("PUB FOO 11\r\nHello NATS!\r\n", publish("FOO", None, None, "Hello NATS!")),
        ("PUB FRONT.DOOR JOKE.22 11\r\nKnock Knock\r\n", publish("FRONT.DOOR", Some("JOKE.22"), None, "Knock Knock")),
        ("PUB NOTIFY 0\r\n\r\n", publish("NOTIFY", None, None, "")),
        (
            "HPUB FOO 22 33\r\nNATS/1.0\r\nBar: Baz\r\n\r\nHello NATS!\r\n",
            publish("FOO", None, Some("NATS/1.0\r\nBar: Baz\r\n\r\n"), "Hello NATS!"),
        ),
        (
            "HPUB FRONT.DOOR JOKE.22 45 56\r\nNATS/1.0\r\nBREAKFAST: donut\r\nLUNCH: burger\r\n\r\nKnock Knock\r\n",
            publish(
                "FRONT.DOOR",
                Some("JOKE.22"),
                Some("NATS/1.0\r\nBREAKFAST: donut\r\nLUNCH: burger\r\n\r\n"),
                "Knock Knock",
            ),
        ),
        ("HPUB NOTIFY 22 22\r\nNATS/1.0\r\nBar: Baz\r\n\r\n\r\n", publish("NOTIFY", None, Some("NATS/1.0\r\nBar: Baz\r\n\r\n"), "")),
        (
            "HPUB MORNING.MENU 47 51\r\nNATS/1.0\r\nBREAKFAST: donut\r\nBREAKFAST: eggs\r\n\r\nYum!\r\n",
            publish("MORNING.MENU", None, Some("NATS/1.0\r\nBREAKFAST: donut\r\nBREAKFAST: eggs\r\n\r\n"), "Yum!"),
        ),
        ("SUB FOO 1\r\n", sub("FOO", None, "1")),
        ("SUB BAR G1 44\r\n", sub("BAR", Some("G1"), "44")),
        ("UNSUB 1\r\n", ClientOp::Unsub { sid: b("1"), max_msgs: None }),
        ("UNSUB 1 5\r\n", ClientOp::Unsub { sid: b("1"), max_msgs: Some(5) }),
        ("PING\r\n", ClientOp::Ping),
        ("PONG\r\n", ClientOp::Pong),
        ("+OK\r\n", ClientOp::Ok),
        ("-ERR 'Unknown Protocol Operation'\r\n", ClientOp::Err(b("'Unknown Protocol Operation'"))),
    ]
}

#[test]
fn doc_examples_parse_alone_and_split_anywhere() {
    for (text, want) in doc_examples() {
        let (ops, err) = assert_split_invariant(text.as_bytes());
        assert_eq!((ops, err), (vec![want], None), "{text:?}");
    }
}

#[test]
fn doc_examples_back_to_back_split_anywhere() {
    let (texts, wants): (Vec<_>, Vec<_>) = doc_examples().into_iter().unzip();
    let stream = texts.concat();
    let (ops, err) = assert_split_invariant(stream.as_bytes());
    assert_eq!(err, None);
    assert_eq!(ops, wants);
}

/// Inputs nats-server 2.15.1 accepted, with what it did (observed).
#[test]
fn lenient_forms_nats_server_accepts() {
    let cases: Vec<(&str, Vec<ClientOp>)> = vec![
        ("ping\r\nPiNg\r\n", vec![ClientOp::Ping, ClientOp::Ping]),
        ("PING\n", vec![ClientOp::Ping]),
        ("PING \r\n", vec![ClientOp::Ping]),
        ("PINGX\r\n", vec![ClientOp::Ping]),
        ("PING foo\r\n", vec![ClientOp::Ping]),
        ("PING\r\r\n", vec![ClientOp::Ping]),
        (
            "PONGX\r\n+OKX\r\n+OK \r\n",
            vec![ClientOp::Pong, ClientOp::Ok, ClientOp::Ok],
        ),
        (
            "pub foo 2\r\nhi\r\n",
            vec![publish("foo", None, None, "hi")],
        ),
        ("PUB foo 2\nhi\r\n", vec![publish("foo", None, None, "hi")]),
        (
            "PUB\tfoo\t2\r\nhi\r\n",
            vec![publish("foo", None, None, "hi")],
        ),
        (
            "PUB  foo   2 \r\nhi\r\n",
            vec![publish("foo", None, None, "hi")],
        ),
        (
            "PUB foo\t\t 2\t\r\nhi\r\n",
            vec![publish("foo", None, None, "hi")],
        ),
        (
            "PUB foo 02\r\nhi\r\n",
            vec![publish("foo", None, None, "hi")],
        ),
        (
            "PUB foo 000000002\r\nhi\r\n",
            vec![publish("foo", None, None, "hi")],
        ),
        // A `\r` inside a PUB line is part of the subject (nats-server takes it too).
        (
            "PUB foo\r 2\r\nhi\r\n",
            vec![publish("foo\r", None, None, "hi")],
        ),
        (
            "HPUB foo 0 2\r\nhi\r\n",
            vec![publish("foo", None, Some(""), "hi")],
        ),
        (
            "HPUB foo 2 2\r\nhi\r\n",
            vec![publish("foo", None, Some("hi"), "")],
        ),
        ("SUB foo  1 \r\n", vec![sub("foo", None, "1")]),
        ("SUB foo\r 1\r\n", vec![sub("foo", None, "1")]),
        ("sub foo q 1\r\n", vec![sub("foo", Some("q"), "1")]),
        (
            "UNSUB 1 x\r\n",
            vec![ClientOp::Unsub {
                sid: b("1"),
                max_msgs: None,
            }],
        ),
        (
            "UNSUB 1 -1\r\n",
            vec![ClientOp::Unsub {
                sid: b("1"),
                max_msgs: None,
            }],
        ),
        (
            "UNSUB 1 0\r\n",
            vec![ClientOp::Unsub {
                sid: b("1"),
                max_msgs: Some(0),
            }],
        ),
        ("CONNECT{}\r\n", vec![ClientOp::Connect(b("{}"))]),
        ("connect {}  \r\n", vec![ClientOp::Connect(b("{}  "))]),
        ("CONNECT\r\n", vec![ClientOp::Connect(b(""))]),
        ("-ERR\t\tfoo\r\n", vec![ClientOp::Err(b("foo"))]),
        // INFO from a client is read and ignored.
        ("INFO {}\r\nPING\r\n", vec![ClientOp::Ping]),
    ];
    for (text, want) in cases {
        let (ops, err) = assert_split_invariant(text.as_bytes());
        assert_eq!(err, None, "{text:?}");
        assert_eq!(ops, want, "{text:?}");
    }
}

#[test]
fn ping_ignores_unbounded_trailing_bytes_without_buffering() {
    let mut parser = Parser::new(ParserLimits::default());
    let mut head = Bytes::from_static(b"PING");
    assert_eq!(parser.next_op(&mut head), Ok(None));
    for _ in 0..100 {
        let mut junk = Bytes::from(vec![b'x'; 10_000]);
        assert_eq!(parser.next_op(&mut junk), Ok(None));
        assert_eq!(parser.buffered_len(), 0);
    }
    let mut end = Bytes::from_static(b"\r\n");
    assert_eq!(parser.next_op(&mut end), Ok(Some(ClientOp::Ping)));
}

/// What nats-server 2.15.1 sent back for each input (after a valid CONNECT),
/// observed with raw sockets; every one was followed by closing the connection.
#[test]
fn error_table_matches_nats_server() {
    let unknown = Some("Unknown Protocol Operation");
    let cases: Vec<(&str, Option<&str>, CloseReason)> = vec![
        ("FOO\r\n", unknown, CloseReason::ProtocolViolation),
        ("PI NG\r\n", unknown, CloseReason::ProtocolViolation),
        (" PING\r\n", unknown, CloseReason::ProtocolViolation),
        ("\r\n", unknown, CloseReason::ProtocolViolation),
        ("\n", unknown, CloseReason::ProtocolViolation),
        ("-ERRX\r\n", unknown, CloseReason::ProtocolViolation),
        ("+XK\r\n", unknown, CloseReason::ProtocolViolation),
        ("PUB\r\n", unknown, CloseReason::ProtocolViolation),
        ("SUB\r\n", unknown, CloseReason::ProtocolViolation),
        ("UNSUB\r\n", unknown, CloseReason::ProtocolViolation),
        ("PUBX foo 2\r\n", unknown, CloseReason::ProtocolViolation),
        ("MSG foo 1 2\r\n", unknown, CloseReason::ProtocolViolation),
        (
            "HMSG foo 1 2 4\r\n",
            unknown,
            CloseReason::ProtocolViolation,
        ),
        ("RS+ foo\r\n", unknown, CloseReason::ProtocolViolation),
        ("A+ foo\r\n", unknown, CloseReason::ProtocolViolation),
        ("LS+ foo\r\n", unknown, CloseReason::ProtocolViolation),
        (
            "PUB foo 2\r\nhiX\r\n",
            unknown,
            CloseReason::ProtocolViolation,
        ),
        (
            "PUB foo 2\r\nhi\rX",
            unknown,
            CloseReason::ProtocolViolation,
        ),
        (
            "PUB foo 2\r\nhi\nPING\r\n",
            unknown,
            CloseReason::ProtocolViolation,
        ),
        (
            "PUB foo 2\r\nhi\r\n\r\n",
            unknown,
            CloseReason::ProtocolViolation,
        ),
        (
            "PUB foo 2000000\r\n",
            Some("Maximum Payload Violation"),
            CloseReason::MaxPayloadExceeded,
        ),
        (
            "PUB foo 1048577\r\n",
            Some("Maximum Payload Violation"),
            CloseReason::MaxPayloadExceeded,
        ),
        (
            "PUB foo 999999999\r\n",
            Some("Maximum Payload Violation"),
            CloseReason::MaxPayloadExceeded,
        ),
        (
            "HPUB foo 12 1048577\r\n",
            Some("Maximum Payload Violation"),
            CloseReason::MaxPayloadExceeded,
        ),
        ("PUB foo\r\n", None, CloseReason::ProtocolViolation),
        (
            "PUB foo bar baz 2\r\nhi\r\n",
            None,
            CloseReason::ProtocolViolation,
        ),
        ("PUB foo -1\r\n", None, CloseReason::ProtocolViolation),
        ("PUB foo x\r\n", None, CloseReason::ProtocolViolation),
        ("PUB foo +2\r\n", None, CloseReason::ProtocolViolation),
        (
            "PUB foo 0000000002\r\n",
            None,
            CloseReason::ProtocolViolation,
        ),
        (
            "PUB foo 1000000000\r\n",
            None,
            CloseReason::ProtocolViolation,
        ),
        (
            "PUB foo 99999999999999999999\r\n",
            None,
            CloseReason::ProtocolViolation,
        ),
        (
            "PUB foo 2\r\r\nhi\r\n",
            None,
            CloseReason::ProtocolViolation,
        ),
        ("HPUB foo\r\n", None, CloseReason::ProtocolViolation),
        ("HPUB foo 12\r\n", None, CloseReason::ProtocolViolation),
        (
            "HPUB foo bar baz 12 14\r\n",
            None,
            CloseReason::ProtocolViolation,
        ),
        ("HPUB foo -1 14\r\n", None, CloseReason::ProtocolViolation),
        ("HPUB foo x 14\r\n", None, CloseReason::ProtocolViolation),
        ("HPUB foo 12 x\r\n", None, CloseReason::ProtocolViolation),
        ("HPUB foo 14 12\r\n", None, CloseReason::ProtocolViolation),
        ("SUB foo\r\n", None, CloseReason::ProtocolViolation),
        ("SUB foo q 1 x\r\n", None, CloseReason::ProtocolViolation),
        ("SUB foo q 1 x y\r\n", None, CloseReason::ProtocolViolation),
        ("UNSUB 1 2 3\r\n", None, CloseReason::ProtocolViolation),
    ];
    for (text, err_text, reason) in cases {
        let (_, err) = assert_split_invariant(text.as_bytes());
        let err = err.unwrap_or_else(|| panic!("{text:?} should fail"));
        assert_eq!(err.err_text(), err_text, "{text:?}: {err}");
        assert_eq!(err.close_reason(), reason, "{text:?}: {err}");
        assert!(err.closes_connection());
    }
}

#[test]
fn error_variants_name_the_failure() {
    type IsExpected = fn(&ParseError) -> bool;
    let cases: Vec<(&str, IsExpected)> = vec![
        ("FOO\r\n", |e| {
            matches!(e, ParseError::UnknownOperation { .. })
        }),
        ("PUB foo 2\r\nhiX", |e| {
            matches!(e, ParseError::PayloadNotTerminated { .. })
        }),
        ("PUB foo\r\n", |e| matches!(e, ParseError::PubArgs { .. })),
        ("PUB foo x\r\n", |e| matches!(e, ParseError::PubSize { .. })),
        ("HPUB foo 1\r\n", |e| {
            matches!(e, ParseError::HpubArgs { .. })
        }),
        ("HPUB foo x 1\r\n", |e| {
            matches!(e, ParseError::HpubHeaderSize { .. })
        }),
        ("HPUB foo 1 x\r\n", |e| {
            matches!(e, ParseError::HpubTotalSize { .. })
        }),
        ("HPUB foo 2 1\r\n", |e| {
            matches!(e, ParseError::HpubHeaderLargerThanTotal { .. })
        }),
        ("SUB foo\r\n", |e| matches!(e, ParseError::SubArgs { .. })),
        ("UNSUB 1 2 3\r\n", |e| {
            matches!(e, ParseError::UnsubArgs { .. })
        }),
        ("PUB foo 2000000\r\n", |e| {
            matches!(
                e,
                ParseError::MaxPayloadExceeded {
                    size: 2_000_000,
                    ..
                }
            )
        }),
    ];
    for (text, is_expected) in cases {
        let (_, err) = parse_whole(text.as_bytes());
        let err = err.unwrap();
        assert!(is_expected(&err), "{text:?} gave {err:?}");
    }
}

#[test]
fn ops_before_an_error_are_still_returned() {
    let (ops, err) = assert_split_invariant(b"PING\r\nSUB foo 1\r\nFOO\r\n");
    assert_eq!(ops, vec![ClientOp::Ping, sub("foo", None, "1")]);
    assert!(matches!(err, Some(ParseError::UnknownOperation { .. })));
}

fn line_with_arg_len(op: &str, arg_len: usize) -> Vec<u8> {
    // `<op>   aaa…a 1\r\n`: the arg is the a's, a space and the size/sid.
    let mut line = format!("{op}   ").into_bytes();
    line.extend(std::iter::repeat_n(b'a', arg_len - 2));
    line.extend_from_slice(b" 1\r\n");
    line
}

/// nats-server 2.15.1 with the default max_control_line (4096) accepts a
/// SUB or PUB whose arguments take 4096 bytes and refuses 4097, whole or split.
#[test]
fn control_line_limit_is_exact() {
    for op in ["SUB", "PUB"] {
        let mut ok = line_with_arg_len(op, 4096);
        let mut bad = line_with_arg_len(op, 4097);
        if op == "PUB" {
            ok.extend_from_slice(b"x\r\n");
            bad.extend_from_slice(b"x\r\n");
        }
        let (ops, err) = assert_split_invariant(&ok);
        assert_eq!((ops.len(), err), (1, None), "{op} 4096");
        let (_, err) = assert_split_invariant(&bad);
        let err = err.expect("4097 must fail");
        assert_eq!(err.err_text(), Some("maximum control line exceeded"));
        assert_eq!(err.close_reason(), CloseReason::MaxControlLineExceeded);
    }
}

#[test]
fn connect_json_is_bounded_by_the_control_line() {
    let json = format!("{{\"name\":\"{}\"}}", "a".repeat(5000));
    let (_, err) = parse_whole(format!("CONNECT {json}\r\n").as_bytes());
    assert!(matches!(
        err,
        Some(ParseError::MaxControlLineExceeded { .. })
    ));
    let (_, err) = parse_whole(format!("INFO {json}\r\n").as_bytes());
    assert!(matches!(
        err,
        Some(ParseError::MaxControlLineExceeded { .. })
    ));
}

#[test]
fn an_unterminated_long_line_fails_before_buffering_more_than_the_limit() {
    let limits = ParserLimits {
        max_control_line_bytes: 64,
        max_payload_bytes: 1024,
    };
    let mut parser = Parser::new(limits);
    let mut input = Bytes::from_static(b"SUB ");
    assert_eq!(parser.next_op(&mut input), Ok(None));
    let mut failed = false;
    for _ in 0..100 {
        let mut chunk = Bytes::from_static(b"aaaaaaaaaa");
        match parser.next_op(&mut chunk) {
            Ok(None) => assert!(parser.buffered_len() <= 65),
            Err(e) => {
                assert!(matches!(
                    e,
                    ParseError::MaxControlLineExceeded {
                        max_control_line_bytes: 64
                    }
                ));
                failed = true;
                break;
            }
            Ok(Some(op)) => panic!("unexpected {op:?}"),
        }
    }
    assert!(failed);
}

#[test]
fn payload_limit_is_exact_and_follows_set_limits() {
    let mut parser = Parser::new(ParserLimits {
        max_control_line_bytes: 4096,
        max_payload_bytes: 4,
    });
    let (ops, err) = feed(&mut parser, &[b"PUB a 4\r\nabcd\r\nHPUB a 2 4\r\nhiok\r\n"]);
    assert_eq!(err, None);
    assert_eq!(ops.len(), 2);
    let (_, err) = feed(&mut parser, &[b"PUB a 5\r\n"]);
    assert_eq!(
        err,
        Some(ParseError::MaxPayloadExceeded {
            size: 5,
            max_payload_bytes: 4
        })
    );
    parser.set_limits(ParserLimits {
        max_control_line_bytes: 4096,
        max_payload_bytes: 5,
    });
    let (ops, err) = feed(&mut parser, &[b"PUB a 5\r\nabcde\r\n"]);
    assert_eq!((ops.len(), err), (1, None));
}

#[test]
fn whole_payloads_are_slices_of_the_input() {
    let mut parser = Parser::new(ParserLimits::default());
    let mut input =
        Bytes::from_static(b"PUB foo r 5\r\nhello\r\nHPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    let range = input.as_ptr() as usize..input.as_ptr() as usize + input.len();
    let inside = |b: &Bytes| b.is_empty() || range.contains(&(b.as_ptr() as usize));
    for _ in 0..2 {
        let Ok(Some(ClientOp::Pub(p))) = parser.next_op(&mut input) else {
            panic!("expected a PUB")
        };
        assert!(inside(&p.subject) && inside(&p.payload));
        assert!(p.headers.as_ref().is_none_or(inside));
        assert!(p.reply.as_ref().is_none_or(inside));
    }
    assert!(input.is_empty());
    assert_eq!(parser.buffered_len(), 0);
}

#[test]
fn a_payload_after_a_split_control_line_is_still_a_slice() {
    let mut parser = Parser::new(ParserLimits::default());
    let mut head = Bytes::from_static(b"PUB foo 5");
    assert_eq!(parser.next_op(&mut head), Ok(None));
    let mut rest = Bytes::from_static(b"\r\nhello\r\n");
    let range = rest.as_ptr() as usize..rest.as_ptr() as usize + rest.len();
    let Ok(Some(ClientOp::Pub(p))) = parser.next_op(&mut rest) else {
        panic!("expected a PUB")
    };
    assert!(range.contains(&(p.payload.as_ptr() as usize)));
    assert_eq!(p.subject, "foo");
}

#[test]
fn next_op_consumes_only_up_to_the_op_it_returns() {
    let mut parser = Parser::new(ParserLimits::default());
    let mut input = Bytes::from_static(b"PING\r\nPUB a 1\r\nx\r\nPO");
    assert_eq!(parser.next_op(&mut input), Ok(Some(ClientOp::Ping)));
    assert_eq!(&input[..], b"PUB a 1\r\nx\r\nPO");
    assert!(matches!(
        parser.next_op(&mut input),
        Ok(Some(ClientOp::Pub(_)))
    ));
    assert_eq!(&input[..], b"PO");
    assert!(parser.at_op_start());
    assert_eq!(parser.next_op(&mut input), Ok(None));
    assert!(input.is_empty());
    assert!(!parser.at_op_start());
}

#[test]
fn error_snippet_starts_at_the_offending_byte() {
    let (_, err) = parse_whole(b"PING\r\nFOO\r\n");
    assert_eq!(
        err,
        Some(ParseError::UnknownOperation {
            snippet: b("FOO\r\n")
        })
    );
    assert_eq!(
        err.unwrap().to_string(),
        r#"Client parser ERROR: proto='"FOO\r\n"...'"#
    );
}
