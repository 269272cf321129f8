//! The server state machine: one per node. It owns every client connection's
//! protocol state, the accounts and their subscription indexes, and routes
//! messages between them. Its whole surface is the four verbs of a sans-IO
//! protocol object: `handle_*` to feed it, [`Server::poll_output`] to drain
//! what it wants done, and [`Server::poll_timeout`] / [`Server::handle_timeout`]
//! for timers.

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;

use crate::config::ServerOptions;
use crate::log::LogEvent;
use crate::time::{Instant, UnixNanos};

/// A client connection's id: `cid` in nats-server's monitoring, assigned by
/// the server in accept order starting at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cid:{}", self.0)
    }
}

/// What the server asks the runtime to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Write these bytes to the connection, after everything sent before.
    /// The runtime reports progress with [`Server::handle_written`].
    Transmit {
        /// The connection.
        conn: ConnId,
        /// Bytes to write.
        bytes: Bytes,
    },
    /// Flush what was transmitted, then close the connection. The server has
    /// already forgotten it; no [`Server::handle_closed`] is expected.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why, as `/connz?state=closed` reports it.
        reason: CloseReason,
    },
    /// A line for the log.
    Log(LogEvent),
}

/// Why a connection was closed; the texts are nats-server's (`reason` in `/connz`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed the connection.
    ClientClosed,
    /// No CONNECT within the auth timeout.
    AuthenticationTimeout,
    /// Bad credentials.
    AuthenticationViolation,
    /// The TLS handshake failed.
    TlsHandshakeError,
    /// Outbound bytes exceeded `max_pending`.
    SlowConsumerPendingBytes,
    /// A write stalled past `write_deadline`.
    SlowConsumerWriteDeadline,
    /// Writing to the socket failed.
    WriteError,
    /// Reading from the socket failed.
    ReadError,
    /// The client sent something unparseable.
    ParseError,
    /// Too many unanswered PINGs.
    StaleConnection,
    /// The client broke the protocol (e.g. PUB before CONNECT).
    ProtocolViolation,
    /// `max_connections` reached.
    MaxConnectionsExceeded,
    /// A payload larger than `max_payload`.
    MaxPayloadExceeded,
    /// A protocol line longer than `max_control_line`.
    MaxControlLineExceeded,
    /// `max_subscriptions` reached.
    MaxSubscriptionsExceeded,
    /// Headers used without `headers: true`.
    MsgHeaderViolation,
    /// `no_responders` without `headers`.
    NoRespondersRequiresHeaders,
    /// The server is shutting down (or lame duck mode evicted the client).
    ServerShutdown,
}

impl CloseReason {
    /// nats-server's text for this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "Client Closed",
            CloseReason::AuthenticationTimeout => "Authentication Timeout",
            CloseReason::AuthenticationViolation => "Authentication Failure",
            CloseReason::TlsHandshakeError => "TLS Handshake Failure",
            CloseReason::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            CloseReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            CloseReason::WriteError => "Write Error",
            CloseReason::ReadError => "Read Error",
            CloseReason::ParseError => "Parse Error",
            CloseReason::StaleConnection => "Stale Connection",
            CloseReason::ProtocolViolation => "Protocol Violation",
            CloseReason::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            CloseReason::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            CloseReason::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            CloseReason::MaxSubscriptionsExceeded => "Maximum Subscriptions Exceeded",
            CloseReason::MsgHeaderViolation => "Message Header Violation",
            CloseReason::NoRespondersRequiresHeaders => "No Responders Requires Headers",
            CloseReason::ServerShutdown => "Server Shutdown",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One NATS server node.
#[derive(Debug)]
pub struct Server {
    _opts: ServerOptions,
}

impl Server {
    /// A server with these options. `seed` seeds the node's only RNG (queue
    /// member choice, nonces, the server id); `now` and `wall` are the clocks
    /// at start.
    pub fn new(opts: ServerOptions, seed: [u8; 32], now: Instant, wall: UnixNanos) -> Self {
        let _ = (seed, now, wall);
        Server { _opts: opts }
    }

    /// A client connected from `peer`. The server sends INFO (as an
    /// [`Output::Transmit`]) and starts the auth timer.
    pub fn handle_connected(&mut self, now: Instant, wall: UnixNanos, peer: SocketAddr) -> ConnId {
        let _ = (now, wall, peer);
        ConnId(0)
    }

    /// Bytes arrived on `conn`.
    pub fn handle_received(&mut self, now: Instant, conn: ConnId, bytes: Bytes) {
        let _ = (now, conn, bytes);
    }

    /// The runtime wrote `n` more bytes of `conn`'s transmitted data to the socket.
    pub fn handle_written(&mut self, now: Instant, conn: ConnId, n: usize) {
        let _ = (now, conn, n);
    }

    /// The connection closed under the server (peer hang-up or I/O error).
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId, reason: CloseReason) {
        let _ = (now, conn, reason);
    }

    /// The earliest instant at which [`Server::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Run the timers due at `now` (pings, auth timeouts, write deadlines).
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
    }

    /// The next thing the runtime must do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        None
    }
}
