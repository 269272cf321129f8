//! The NATS client protocol: the parser for what clients send, and the
//! encoder for what the server sends back.
//!
//! The parser is a byte-at-a-time state machine that survives any split of
//! its input (a `PUB` may arrive one byte per read); payloads are sliced out
//! of the received `Bytes` without copying whenever they arrive whole.

pub mod connect;
pub mod encode;
pub mod info;
pub mod parser;

use bytes::Bytes;

pub use connect::ConnectInfo;
pub use info::ServerInfo;
pub use parser::{ParseError, Parser, ParserLimits};

/// One operation sent by a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOp {
    /// `CONNECT {json}`: the raw JSON, decoded by [`ConnectInfo::parse`].
    Connect(Bytes),
    /// `PUB` or `HPUB`.
    Pub(Publish),
    /// `SUB <subject> [queue] <sid>`.
    Sub {
        /// Subject, possibly with wildcards (validated by the server, not the parser).
        subject: Bytes,
        /// Queue group.
        queue: Option<Bytes>,
        /// Client-chosen subscription id.
        sid: Bytes,
    },
    /// `UNSUB <sid> [max_msgs]`.
    Unsub {
        /// Subscription id.
        sid: Bytes,
        /// Auto-unsubscribe after this many messages in total.
        max_msgs: Option<u64>,
    },
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `+OK` (clients may echo it; ignored).
    Ok,
    /// `-ERR ...` (clients may send it; ignored).
    Err(Bytes),
}

/// A message published by a client (`PUB` or `HPUB`). All fields are slices
/// of the received buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// Destination subject (validated by the server, not the parser).
    pub subject: Bytes,
    /// Reply subject.
    pub reply: Option<Bytes>,
    /// `HPUB` only: the header block, from `NATS/1.0` through the blank line.
    pub headers: Option<Bytes>,
    /// The payload, without the trailing CRLF.
    pub payload: Bytes,
}
