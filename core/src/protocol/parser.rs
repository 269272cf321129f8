//! The parser for what clients send: a state machine that survives any split
//! of its input, like nats-server's, but scanning whole slices (`memchr`)
//! instead of dispatching on every byte where the grammar allows it.
//!
//! # What nats-server 2.15.1 accepts (observed by sending it raw bytes)
//!
//! - Op names are case-insensitive (`ping`, `PiNg`); `MSG`, `HMSG`, `INFO`-like
//!   server ops and route/leaf ops (`RS+`, `A+`, `LS+`) are unknown for clients,
//!   except `INFO`, which is read and ignored.
//! - A control line ends at `\n`; one `\r` right before it is dropped, so a bare
//!   `\n` works (`PING\n`, `PUB foo 2\nhi\r\n`). A payload must end in `\r\n`.
//! - After `PING`, `PONG` and `+OK` everything up to `\n` is ignored
//!   (`PINGX\r\n` is a PING), with no length limit.
//! - `PUB`, `HPUB`, `SUB`, `UNSUB` and `-ERR` need a space or tab after the
//!   name; `CONNECT` and `INFO` do not (`CONNECT{}`). Arguments are separated
//!   by runs of spaces and tabs (`SUB`/`UNSUB` also split on a stray `\r`).
//! - Sizes are 1 to 9 ASCII digits (`02` is 2; `+2`, `-1`, `0000000002` are bad).
//! - An `UNSUB` max that is not a size is ignored (`UNSUB 1 x` unsubscribes now).
//! - The control line after the op name (the "arg", without the `\r\n`) may be
//!   `max_control_line` bytes long; one more is an error.
//!
//! Where nats-server's own behaviour depends on how the input was split (it
//! drops every `\r` from an arg it had to buffer, but only the last from one it
//! did not), natrix does what nats-server does for unsplit input, always.
//!
//! | input (after a CONNECT)        | nats-server replies                           | then   |
//! |--------------------------------|-----------------------------------------------|--------|
//! | `FOO\r\n`, `\r\n`, ` PING`     | `-ERR 'Unknown Protocol Operation'`           | closes |
//! | `MSG foo 1 2\r\n`, `-ERRX`     | `-ERR 'Unknown Protocol Operation'`           | closes |
//! | `PUB foo 2\r\nhiX`             | `-ERR 'Unknown Protocol Operation'`           | closes |
//! | `PUB ` + 4097-byte arg         | `-ERR 'maximum control line exceeded'`        | closes |
//! | `PUB foo 1048577\r\n`          | `-ERR 'Maximum Payload Violation'`            | closes |
//! | `HPUB foo 12 1048577\r\n`      | `-ERR 'Maximum Payload Violation'`            | closes |
//! | `PUB foo\r\n`, `PUB a b c 2`   | nothing (logs `processPub Parse Error: "foo"`)| closes |
//! | `PUB foo -1`, `x`, `+2`        | nothing (`processPub Bad or Missing Size`)    | closes |
//! | `HPUB foo 12\r\n`              | nothing (`processHeaderPub Parse Error`)      | closes |
//! | `HPUB foo x 14`                | nothing (`... Bad or Missing Header Size`)    | closes |
//! | `HPUB foo 12 x`                | nothing (`... Bad or Missing Total Size`)     | closes |
//! | `HPUB foo 14 12`               | nothing (`... Header Size larger then TotalSize`) | closes |
//! | `SUB foo\r\n`, `SUB a b c d`   | nothing (`processSub Parse Error`)            | closes |
//! | `UNSUB 1 2 3\r\n`              | nothing (`processUnsub Parse Error`)          | closes |
//! | `PUB\r\n`, `SUB\r\n`           | `-ERR 'Unknown Protocol Operation'`           | closes |
//!
//! `/connz?state=closed` gives the reasons "Protocol Violation",
//! "Maximum Message Payload Exceeded" and "Maximum Control Line Exceeded".

use bytes::{Buf, Bytes, BytesMut};

use super::{ClientOp, Publish};
use crate::close::CloseReason;

/// nats-server logs at most this many bytes of the offending input.
const SNIPPET_BYTES: usize = 32;
/// `parseSize` in nats-server refuses sizes longer than this ("999M").
const SIZE_DIGITS_MAX: usize = 9;
/// The most arguments any client op takes (`HPUB subject reply hdr total`).
const ARGS_MAX: usize = 4;

/// The limits the parser enforces; nats-server's `max_control_line` and
/// `max_payload` (which an account or user JWT may lower after CONNECT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParserLimits {
    /// Longest control line after the op name, without `\r\n`.
    pub max_control_line_bytes: u32,
    /// Largest `PUB` size or `HPUB` total size.
    pub max_payload_bytes: u32,
}

impl Default for ParserLimits {
    /// nats-server's defaults: 4 KiB control lines, 1 MiB payloads.
    fn default() -> Self {
        ParserLimits {
            max_control_line_bytes: 4096,
            max_payload_bytes: 1024 * 1024,
        }
    }
}

/// Why the input is not the client protocol. Every one of these makes
/// nats-server close the connection; [`ParseError::err_text`] says whether it
/// first sends an `-ERR`. `Display` is the line nats-server logs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not an op a client may send (or garbage where an op must start).
    #[error("Client parser ERROR: proto='{}...'", GoQuote(.snippet))]
    UnknownOperation {
        /// The input from the offending byte on (at most 32 bytes).
        snippet: Bytes,
    },
    /// A payload was not followed by `\r\n`.
    #[error("Client parser ERROR: payload not followed by CRLF: proto='{}...'", GoQuote(.snippet))]
    PayloadNotTerminated {
        /// The input from the offending byte on (at most 32 bytes).
        snippet: Bytes,
    },
    /// The control line is longer than `max_control_line`.
    #[error("maximum control line exceeded")]
    MaxControlLineExceeded {
        /// The limit in force.
        max_control_line_bytes: u32,
    },
    /// A `PUB`/`HPUB` size above `max_payload`.
    #[error("maximum payload exceeded: {size} vs {max_payload_bytes}")]
    MaxPayloadExceeded {
        /// The size the client announced.
        size: u32,
        /// The limit in force.
        max_payload_bytes: u32,
    },
    /// `PUB` with other than 2 or 3 arguments.
    #[error("processPub Parse Error: {}", GoQuote(.arg))]
    PubArgs {
        /// The control line after `PUB `.
        arg: Bytes,
    },
    /// `PUB` whose size is not 1-9 digits.
    #[error("processPub Bad or Missing Size: {}", GoQuote(.arg))]
    PubSize {
        /// The control line after `PUB `.
        arg: Bytes,
    },
    /// `HPUB` with other than 3 or 4 arguments.
    #[error("processHeaderPub Parse Error: {}", GoQuote(.arg))]
    HpubArgs {
        /// The control line after `HPUB `.
        arg: Bytes,
    },
    /// `HPUB` whose header size is not 1-9 digits.
    #[error("processHeaderPub Bad or Missing Header Size: {}", GoQuote(.arg))]
    HpubHeaderSize {
        /// The control line after `HPUB `.
        arg: Bytes,
    },
    /// `HPUB` whose total size is not 1-9 digits.
    #[error("processHeaderPub Bad or Missing Total Size: {}", GoQuote(.arg))]
    HpubTotalSize {
        /// The control line after `HPUB `.
        arg: Bytes,
    },
    /// `HPUB` whose header size exceeds its total size (nats-server's spelling).
    #[error("processHeaderPub Header Size larger then TotalSize: {}", GoQuote(.arg))]
    HpubHeaderLargerThanTotal {
        /// The control line after `HPUB `.
        arg: Bytes,
    },
    /// `SUB` with other than 2 or 3 arguments.
    #[error("processSub Parse Error: {}", GoQuote(.arg))]
    SubArgs {
        /// The control line after `SUB `.
        arg: Bytes,
    },
    /// `UNSUB` with other than 1 or 2 arguments.
    #[error("processUnsub Parse Error: {}", GoQuote(.arg))]
    UnsubArgs {
        /// The control line after `UNSUB `.
        arg: Bytes,
    },
}

impl ParseError {
    /// The text of the `-ERR '...'` nats-server sends before closing, if any.
    /// Argument errors close silently: nats-server only logs them.
    pub fn err_text(&self) -> Option<&'static str> {
        match self {
            ParseError::UnknownOperation { .. } | ParseError::PayloadNotTerminated { .. } => {
                Some("Unknown Protocol Operation")
            }
            // nats-server sends this one in lower case, unlike the others.
            ParseError::MaxControlLineExceeded { .. } => Some("maximum control line exceeded"),
            ParseError::MaxPayloadExceeded { .. } => Some("Maximum Payload Violation"),
            _ => None,
        }
    }

    /// Whether nats-server closes the connection: always, for a parse error.
    pub fn closes_connection(&self) -> bool {
        true
    }

    /// The reason `/connz?state=closed` shows for the closed connection.
    pub fn close_reason(&self) -> CloseReason {
        match self {
            ParseError::MaxControlLineExceeded { .. } => CloseReason::MaxControlLineExceeded,
            ParseError::MaxPayloadExceeded { .. } => CloseReason::MaxPayloadExceeded,
            _ => CloseReason::ProtocolViolation,
        }
    }
}

/// Formats bytes like Go's `%q` does, for log lines that match nats-server's.
struct GoQuote<'a>(&'a [u8]);

impl std::fmt::Display for GoQuote<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"")?;
        for chunk in self.0.utf8_chunks() {
            for c in chunk.valid().chars() {
                match c {
                    '"' => f.write_str("\\\"")?,
                    '\\' => f.write_str("\\\\")?,
                    '\n' => f.write_str("\\n")?,
                    '\r' => f.write_str("\\r")?,
                    '\t' => f.write_str("\\t")?,
                    c if c.is_control() => write!(f, "\\x{:02x}", c as u32)?,
                    c => write!(f, "{c}")?,
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_str("\"")
    }
}

/// An op name, matched one byte at a time so a name may be split anywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Word {
    Connect,
    Pub,
    Hpub,
    Sub,
    Unsub,
    Ping,
    Pong,
    Info,
    Ok,
    Err,
}

impl Word {
    /// The name in upper case; input matches it ignoring ASCII case.
    fn name(self) -> &'static [u8] {
        match self {
            Word::Connect => b"CONNECT",
            Word::Pub => b"PUB",
            Word::Hpub => b"HPUB",
            Word::Sub => b"SUB",
            Word::Unsub => b"UNSUB",
            Word::Ping => b"PING",
            Word::Pong => b"PONG",
            Word::Info => b"INFO",
            Word::Ok => b"+OK",
            Word::Err => b"-ERR",
        }
    }

    /// The op a first byte starts; `P` is resolved by the second byte.
    fn from_first(b: u8) -> Option<Word> {
        match b.to_ascii_uppercase() {
            b'C' => Some(Word::Connect),
            b'P' => Some(Word::Pub),
            b'H' => Some(Word::Hpub),
            b'S' => Some(Word::Sub),
            b'U' => Some(Word::Unsub),
            b'I' => Some(Word::Info),
            b'+' => Some(Word::Ok),
            b'-' => Some(Word::Err),
            _ => None,
        }
    }
}

/// A `PUB`/`HPUB` whose control line is parsed and whose payload is awaited.
#[derive(Clone, Debug)]
struct PendingPub {
    subject: Bytes,
    reply: Option<Bytes>,
    /// `HPUB` only: how many of the `size` bytes are headers.
    header_len: Option<usize>,
    /// Headers plus payload.
    size: usize,
}

#[derive(Clone, Debug)]
enum State {
    /// Between ops.
    Start,
    /// `name[..matched]` of the op seen so far.
    Name { word: Word, matched: u8 },
    /// The op name is complete and must be followed by a space or tab.
    NeedSpace { word: Word },
    /// Skipping spaces and tabs before the arguments.
    SkipSpace { word: Word },
    /// Reading the control line up to `\n`; `Parser::line` holds what was
    /// read in earlier calls.
    Arg { word: Word },
    /// `PING`, `PONG`, `+OK`: ignoring everything up to `\n`.
    SkipLine { word: Word },
    /// Reading the payload; `Parser::payload` holds what was read so far.
    Payload(PendingPub),
    /// The payload is complete; expecting `\r`.
    PayloadCr(PendingPub),
    /// Expecting the `\n` after the payload's `\r`.
    PayloadLf(PendingPub),
}

/// The client protocol parser: one per connection. Feed it what the socket
/// gave, in order, in pieces of any size.
#[derive(Debug)]
pub struct Parser {
    limits: ParserLimits,
    state: State,
    /// A control line split over calls: at most `max_control_line + 1` bytes.
    line: BytesMut,
    /// A payload split over calls: at most `max_payload` bytes.
    payload: BytesMut,
}

impl Parser {
    /// A parser between ops, enforcing `limits`.
    pub fn new(limits: ParserLimits) -> Self {
        Parser {
            limits,
            state: State::Start,
            line: BytesMut::new(),
            payload: BytesMut::new(),
        }
    }

    /// Changes the limits for the ops that follow (e.g. a user's JWT lowers
    /// `max_payload` once CONNECT is processed).
    pub fn set_limits(&mut self, limits: ParserLimits) {
        self.limits = limits;
    }

    /// The limits in force.
    pub fn limits(&self) -> ParserLimits {
        self.limits
    }

    /// Whether the parser is between ops, so the next byte starts one. The
    /// server uses it to mirror nats-server's auth check: before CONNECT, an
    /// op that does not start with `C` is an authorization violation.
    pub fn at_op_start(&self) -> bool {
        matches!(self.state, State::Start)
    }

    /// Bytes held over from earlier calls (a split control line or payload);
    /// bounded by the limits.
    pub fn buffered_len(&self) -> usize {
        self.line.len() + self.payload.len()
    }

    /// Consumes bytes from the front of `input` up to the end of the next
    /// complete op and returns it, or `Ok(None)` once `input` is empty with any
    /// partial op kept inside the parser. Payloads that arrive whole are
    /// slices of `input`, not copies.
    ///
    /// After an error the connection must be closed (see [`ParseError`]);
    /// the parser is reset and `input` is left at the offending byte.
    pub fn next_op(&mut self, input: &mut Bytes) -> Result<Option<ClientOp>, ParseError> {
        let mut pos = 0;
        let result = self.run(input, &mut pos);
        input.advance(pos);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn reset(&mut self) {
        self.state = State::Start;
        self.line.clear();
        self.payload.clear();
    }

    fn run(&mut self, input: &Bytes, pos: &mut usize) -> Result<Option<ClientOp>, ParseError> {
        if matches!(self.state, State::Start) {
            if let Some(op) = fast_op(input, pos, self.limits) {
                return Ok(Some(op));
            }
        }
        while *pos < input.len() {
            let state = std::mem::replace(&mut self.state, State::Start);
            if let Some(op) = self.step(state, input, pos)? {
                return Ok(Some(op));
            }
        }
        Ok(None)
    }

    /// Advances from `state` over at least one byte of input, leaving the
    /// next state in `self.state`.
    fn step(
        &mut self,
        state: State,
        input: &Bytes,
        pos: &mut usize,
    ) -> Result<Option<ClientOp>, ParseError> {
        match state {
            State::Start => self.state = start_op(input, pos)?,
            State::Name { word, matched } => self.state = match_name(word, matched, input, pos)?,
            State::NeedSpace { word } => {
                if !matches!(input[*pos], b' ' | b'\t') {
                    return Err(unknown(input, *pos));
                }
                *pos += 1;
                self.state = State::SkipSpace { word };
            }
            State::SkipSpace { word } => {
                match input[*pos..].iter().position(|&b| b != b' ' && b != b'\t') {
                    Some(n) => {
                        *pos += n;
                        self.state = State::Arg { word };
                    }
                    None => {
                        *pos = input.len();
                        self.state = State::SkipSpace { word };
                    }
                }
            }
            State::Arg { word } => match self.take_line(input, pos)? {
                Some(line) => return self.finish_line(word, line),
                None => self.state = State::Arg { word },
            },
            State::SkipLine { word } => match memchr::memchr(b'\n', &input[*pos..]) {
                Some(n) => {
                    *pos += n + 1;
                    return Ok(Some(match word {
                        Word::Ping => ClientOp::Ping,
                        Word::Pong => ClientOp::Pong,
                        _ => ClientOp::Ok,
                    }));
                }
                None => {
                    *pos = input.len();
                    self.state = State::SkipLine { word };
                }
            },
            State::Payload(pending) => return self.read_payload(pending, input, pos),
            State::PayloadCr(pending) => {
                if input[*pos] != b'\r' {
                    return Err(not_terminated(input, *pos));
                }
                *pos += 1;
                self.state = State::PayloadLf(pending);
            }
            State::PayloadLf(pending) => {
                if input[*pos] != b'\n' {
                    return Err(not_terminated(input, *pos));
                }
                *pos += 1;
                let body = self.payload.split().freeze();
                return Ok(Some(ClientOp::Pub(publish(pending, body))));
            }
        }
        Ok(None)
    }

    /// The control line up to `\n` (without it or a `\r` before it), or
    /// `None` if `input` ends first, in which case the part read is kept.
    fn take_line(&mut self, input: &Bytes, pos: &mut usize) -> Result<Option<Bytes>, ParseError> {
        let max = self.limits.max_control_line_bytes as usize;
        let rest = &input[*pos..];
        let Some(n) = memchr::memchr(b'\n', rest) else {
            // Keep one byte more than the limit: it may be the `\r` that the
            // line's end drops.
            if self.line.len() + rest.len() > max + 1 {
                return Err(ParseError::MaxControlLineExceeded {
                    max_control_line_bytes: max as u32,
                });
            }
            self.line.extend_from_slice(rest);
            *pos = input.len();
            return Ok(None);
        };
        let mut line = if self.line.is_empty() {
            input.slice(*pos..*pos + n)
        } else {
            if self.line.len() + n > max + 1 {
                return Err(ParseError::MaxControlLineExceeded {
                    max_control_line_bytes: max as u32,
                });
            }
            self.line.extend_from_slice(&rest[..n]);
            self.line.split().freeze()
        };
        *pos += n + 1;
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        if line.len() > max {
            return Err(ParseError::MaxControlLineExceeded {
                max_control_line_bytes: max as u32,
            });
        }
        Ok(Some(line))
    }

    /// Turns a complete control line into an op, or into the payload state.
    fn finish_line(&mut self, word: Word, line: Bytes) -> Result<Option<ClientOp>, ParseError> {
        match word {
            Word::Connect => Ok(Some(ClientOp::Connect(line))),
            Word::Err => Ok(Some(ClientOp::Err(line))),
            // Clients may send INFO; nats-server reads and ignores it.
            Word::Info => Ok(None),
            Word::Sub => parse_sub(line).map(Some),
            Word::Unsub => parse_unsub(line).map(Some),
            Word::Pub | Word::Hpub => {
                let pending = if word == Word::Pub {
                    parse_pub(line, self.limits)?
                } else {
                    parse_hpub(line, self.limits)?
                };
                self.state = State::Payload(pending);
                Ok(None)
            }
            Word::Ping | Word::Pong | Word::Ok => unreachable!("ops without arguments"),
        }
    }

    /// Reads payload bytes: a slice of `input` when the payload and its
    /// `\r\n` are all there and nothing was buffered, else into `payload`.
    fn read_payload(
        &mut self,
        pending: PendingPub,
        input: &Bytes,
        pos: &mut usize,
    ) -> Result<Option<ClientOp>, ParseError> {
        let size = pending.size;
        let avail = input.len() - *pos;
        if self.payload.is_empty() && avail >= size + 2 {
            let end = *pos + size;
            if input[end] != b'\r' {
                return Err(not_terminated(input, end));
            }
            if input[end + 1] != b'\n' {
                return Err(not_terminated(input, end + 1));
            }
            let body = input.slice(*pos..end);
            *pos = end + 2;
            return Ok(Some(ClientOp::Pub(publish(pending, body))));
        }
        if self.payload.is_empty() {
            self.payload.reserve(size);
        }
        let take = (size - self.payload.len()).min(avail);
        self.payload.extend_from_slice(&input[*pos..*pos + take]);
        *pos += take;
        debug_assert!(self.payload.len() <= size);
        self.state = if self.payload.len() == size {
            State::PayloadCr(pending)
        } else {
            State::Payload(pending)
        };
        Ok(None)
    }
}

/// The fast path: an op that lies whole in `input` at `pos`, well formed,
/// parsed straight from the slice without stepping through states. Anything
/// else (a split op, an error, a rare op) returns `None` and consumes nothing,
/// and the state machine takes it from the same byte: the two paths must
/// agree, which the split tests check by feeding every op both ways.
fn fast_op(input: &Bytes, pos: &mut usize, limits: ParserLimits) -> Option<ClientOp> {
    let rest = &input[*pos..];
    let nl = memchr::memchr(b'\n', rest)?;
    let line = rest[..nl].strip_suffix(b"\r").unwrap_or(&rest[..nl]);
    let (word, name_len) = fast_word(line)?;
    let line_end = *pos + nl + 1;
    let op = match word {
        Word::Ping => ClientOp::Ping,
        Word::Pong => ClientOp::Pong,
        _ => {
            let arg = &line[name_len..];
            let blanks = arg
                .iter()
                .position(|&b| b != b' ' && b != b'\t')
                .unwrap_or(arg.len());
            let arg_start = *pos + name_len + blanks;
            if arg.len() - blanks > limits.max_control_line_bytes as usize {
                return None;
            }
            let line = input.slice(arg_start..arg_start + arg.len() - blanks);
            match word {
                Word::Sub => parse_sub(line).ok()?,
                Word::Unsub => parse_unsub(line).ok()?,
                _ => {
                    let pending = if word == Word::Pub {
                        parse_pub(line, limits).ok()?
                    } else {
                        parse_hpub(line, limits).ok()?
                    };
                    return fast_payload(input, pos, line_end, pending);
                }
            }
        }
    };
    *pos = line_end;
    Some(op)
}

/// The common ops the fast path handles, by their name (any case) and the
/// blank after it; returns the op and the name's length.
fn fast_word(line: &[u8]) -> Option<(Word, usize)> {
    let named =
        |name: &[u8]| line.len() > name.len() && line[..name.len()].eq_ignore_ascii_case(name);
    let blank_after = |n: usize| matches!(line[n], b' ' | b'\t');
    if named(b"PUB") && blank_after(3) {
        Some((Word::Pub, 3))
    } else if named(b"HPUB") && blank_after(4) {
        Some((Word::Hpub, 4))
    } else if named(b"SUB") && blank_after(3) {
        Some((Word::Sub, 3))
    } else if named(b"UNSUB") && blank_after(5) {
        Some((Word::Unsub, 5))
    } else if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"PING") {
        Some((Word::Ping, 4))
    } else if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"PONG") {
        Some((Word::Pong, 4))
    } else {
        None
    }
}

/// The payload of a fast-path PUB/HPUB, if it and its `\r\n` are in `input`.
fn fast_payload(
    input: &Bytes,
    pos: &mut usize,
    start: usize,
    pending: PendingPub,
) -> Option<ClientOp> {
    let end = start + pending.size;
    if input.len() < end + 2 || &input[end..end + 2] != b"\r\n" {
        return None;
    }
    *pos = end + 2;
    Some(ClientOp::Pub(publish(pending, input.slice(start..end))))
}

/// The first byte of an op.
fn start_op(input: &Bytes, pos: &mut usize) -> Result<State, ParseError> {
    let b = input[*pos];
    let Some(word) = Word::from_first(b) else {
        return Err(unknown(input, *pos));
    };
    *pos += 1;
    Ok(State::Name { word, matched: 1 })
}

/// Continues matching an op name; `P` is `PUB`, `PING` or `PONG` by its
/// second byte.
fn match_name(
    word: Word,
    matched: u8,
    input: &Bytes,
    pos: &mut usize,
) -> Result<State, ParseError> {
    let mut word = word;
    let mut matched = matched as usize;
    while *pos < input.len() && matched < word.name().len() {
        let b = input[*pos].to_ascii_uppercase();
        if word == Word::Pub && matched == 1 {
            word = match b {
                b'U' => Word::Pub,
                b'I' => Word::Ping,
                b'O' => Word::Pong,
                _ => return Err(unknown(input, *pos)),
            };
        } else if b != word.name()[matched] {
            return Err(unknown(input, *pos));
        }
        matched += 1;
        *pos += 1;
    }
    if matched < word.name().len() {
        return Ok(State::Name {
            word,
            matched: matched as u8,
        });
    }
    Ok(match word {
        Word::Ping | Word::Pong | Word::Ok => State::SkipLine { word },
        Word::Connect | Word::Info => State::SkipSpace { word },
        Word::Pub | Word::Hpub | Word::Sub | Word::Unsub | Word::Err => State::NeedSpace { word },
    })
}

fn snippet(input: &Bytes, at: usize) -> Bytes {
    input.slice(at..input.len().min(at + SNIPPET_BYTES))
}

fn unknown(input: &Bytes, at: usize) -> ParseError {
    ParseError::UnknownOperation {
        snippet: snippet(input, at),
    }
}

fn not_terminated(input: &Bytes, at: usize) -> ParseError {
    ParseError::PayloadNotTerminated {
        snippet: snippet(input, at),
    }
}

fn publish(pending: PendingPub, mut body: Bytes) -> Publish {
    let headers = pending.header_len.map(|n| body.split_to(n));
    Publish {
        subject: pending.subject,
        reply: pending.reply,
        headers,
        payload: body,
    }
}

/// Up to [`ARGS_MAX`] arguments of a control line and how many there were.
struct Args {
    ranges: [(usize, usize); ARGS_MAX],
    count: usize,
}

impl Args {
    /// Splits on runs of spaces and tabs, and also `\r` when `split_cr`
    /// (nats-server's `SUB`/`UNSUB` splitting does, its `PUB` splitting not).
    fn split(line: &[u8], split_cr: bool) -> Args {
        const NONE: usize = usize::MAX;
        let mut args = Args {
            ranges: [(0, 0); ARGS_MAX],
            count: 0,
        };
        let mut start = NONE;
        for (i, &b) in line.iter().enumerate() {
            let sep = b == b' ' || b == b'\t' || (split_cr && b == b'\r');
            if sep && start != NONE {
                args.push(start, i);
                start = NONE;
            } else if !sep && start == NONE {
                start = i;
            }
        }
        if start != NONE {
            args.push(start, line.len());
        }
        args
    }

    fn push(&mut self, start: usize, end: usize) {
        if let Some(slot) = self.ranges.get_mut(self.count) {
            *slot = (start, end);
        }
        self.count += 1;
    }

    fn get(&self, line: &Bytes, i: usize) -> Bytes {
        let (start, end) = self.ranges[i];
        line.slice(start..end)
    }

    fn raw<'a>(&self, line: &'a [u8], i: usize) -> &'a [u8] {
        let (start, end) = self.ranges[i];
        &line[start..end]
    }
}

/// nats-server's `parseSize`: 1 to 9 ASCII digits, nothing else.
fn parse_size(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > SIZE_DIGITS_MAX {
        return None;
    }
    let mut n: u32 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(d - b'0');
    }
    Some(n)
}

fn check_payload(size: u32, limits: ParserLimits) -> Result<usize, ParseError> {
    if size > limits.max_payload_bytes {
        return Err(ParseError::MaxPayloadExceeded {
            size,
            max_payload_bytes: limits.max_payload_bytes,
        });
    }
    Ok(size as usize)
}

/// `PUB <subject> [reply] <size>`.
fn parse_pub(line: Bytes, limits: ParserLimits) -> Result<PendingPub, ParseError> {
    let args = Args::split(&line, false);
    let (reply, size_at) = match args.count {
        2 => (None, 1),
        3 => (Some(args.get(&line, 1)), 2),
        _ => return Err(ParseError::PubArgs { arg: line }),
    };
    let Some(size) = parse_size(args.raw(&line, size_at)) else {
        return Err(ParseError::PubSize { arg: line });
    };
    let size = check_payload(size, limits)?;
    Ok(PendingPub {
        subject: args.get(&line, 0),
        reply,
        header_len: None,
        size,
    })
}

/// `HPUB <subject> [reply] <header size> <total size>`.
fn parse_hpub(line: Bytes, limits: ParserLimits) -> Result<PendingPub, ParseError> {
    let args = Args::split(&line, false);
    let (reply, sizes_at) = match args.count {
        3 => (None, 1),
        4 => (Some(args.get(&line, 1)), 2),
        _ => return Err(ParseError::HpubArgs { arg: line }),
    };
    let Some(header_len) = parse_size(args.raw(&line, sizes_at)) else {
        return Err(ParseError::HpubHeaderSize { arg: line });
    };
    let Some(size) = parse_size(args.raw(&line, sizes_at + 1)) else {
        return Err(ParseError::HpubTotalSize { arg: line });
    };
    if header_len > size {
        return Err(ParseError::HpubHeaderLargerThanTotal { arg: line });
    }
    let size = check_payload(size, limits)?;
    let subject = args.get(&line, 0);
    Ok(PendingPub {
        subject,
        reply,
        header_len: Some(header_len as usize),
        size,
    })
}

/// `SUB <subject> [queue] <sid>`.
fn parse_sub(line: Bytes) -> Result<ClientOp, ParseError> {
    let args = Args::split(&line, true);
    let (queue, sid_at) = match args.count {
        2 => (None, 1),
        3 => (Some(args.get(&line, 1)), 2),
        _ => return Err(ParseError::SubArgs { arg: line }),
    };
    Ok(ClientOp::Sub {
        subject: args.get(&line, 0),
        queue,
        sid: args.get(&line, sid_at),
    })
}

/// `UNSUB <sid> [max_msgs]`; a max that is not a size counts as absent.
fn parse_unsub(line: Bytes) -> Result<ClientOp, ParseError> {
    let args = Args::split(&line, true);
    let max_msgs = match args.count {
        1 => None,
        2 => parse_size(args.raw(&line, 1)).map(u64::from),
        _ => return Err(ParseError::UnsubArgs { arg: line }),
    };
    Ok(ClientOp::Unsub {
        sid: args.get(&line, 0),
        max_msgs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_one_to_nine_digits() {
        assert_eq!(parse_size(b"0"), Some(0));
        assert_eq!(parse_size(b"02"), Some(2));
        assert_eq!(parse_size(b"999999999"), Some(999_999_999));
        for bad in [
            &b""[..],
            b"1000000000",
            b"0000000002",
            b"-1",
            b"+2",
            b"x",
            b"1 ",
        ] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn args_split_on_runs_of_blanks() {
        let line = b"  a\t\tbb  c ";
        let args = Args::split(line, false);
        assert_eq!(args.count, 3);
        assert_eq!(args.raw(line, 1), b"bb");
        let args = Args::split(b"a\rb", true);
        assert_eq!(args.count, 2);
        assert_eq!(Args::split(b"a\rb", false).count, 1);
        assert_eq!(Args::split(b"a b c d e f", false).count, 6);
    }

    #[test]
    fn go_quote_escapes_like_percent_q() {
        let s = GoQuote(b"foo 2\r\n\t\"\\\x01\xffz\xc3\xa9").to_string();
        assert_eq!(s, r#""foo 2\r\n\t\"\\\x01\xffzé""#);
    }

    #[test]
    fn log_lines_match_nats_server() {
        let arg = Bytes::from_static(b"foo -1");
        assert_eq!(
            ParseError::PubSize { arg }.to_string(),
            r#"processPub Bad or Missing Size: "foo -1""#
        );
        let e = ParseError::MaxPayloadExceeded {
            size: 2_000_000,
            max_payload_bytes: 1_048_576,
        };
        assert_eq!(
            e.to_string(),
            "maximum payload exceeded: 2000000 vs 1048576"
        );
        let arg = Bytes::from_static(b"foo 14 12");
        assert_eq!(
            ParseError::HpubHeaderLargerThanTotal { arg }.to_string(),
            r#"processHeaderPub Header Size larger then TotalSize: "foo 14 12""#
        );
    }

    #[test]
    fn p_resolves_to_pub_ping_or_pong_across_splits() {
        for (text, want) in [
            (&b"PING\r\n"[..], ClientOp::Ping),
            (b"pong\r\n", ClientOp::Pong),
        ] {
            let mut parser = Parser::new(ParserLimits::default());
            let mut first = Bytes::copy_from_slice(&text[..1]);
            assert_eq!(parser.next_op(&mut first), Ok(None));
            let mut rest = Bytes::copy_from_slice(&text[1..]);
            assert_eq!(parser.next_op(&mut rest), Ok(Some(want)));
        }
    }
}
