//! Why a connection closed: the reasons `/connz?state=closed` reports, in
//! nats-server's words. The parser names the reason for a protocol error,
//! the server for everything else.

use core::fmt;

/// Why a connection was closed; the texts are nats-server's (`reason` in `/connz`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed the connection.
    ClientClosed,
    /// No CONNECT within the auth timeout.
    AuthenticationTimeout,
    /// Bad credentials.
    AuthenticationViolation,
    /// The user's credentials (a JWT's `exp`) ran out while connected.
    AuthenticationExpired,
    /// The account revoked the user while it was connected.
    AuthenticationRevoked,
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
    /// The account's JWT `limits.conn` reached.
    MaxAccountConnectionsExceeded,
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
    /// CONNECT asked for a protocol level the server does not speak.
    BadClientProtocolVersion,
    /// The server is shutting down (or lame duck mode evicted the client).
    ServerShutdown,
    /// An MQTT client connected with the same client id: the older goes.
    DuplicateClientId,
}

impl CloseReason {
    /// Closed as a slow consumer: its socket is cut, not flushed.
    pub fn is_slow_consumer(self) -> bool {
        matches!(self, CloseReason::SlowConsumerPendingBytes | CloseReason::SlowConsumerWriteDeadline)
    }

    /// nats-server's text for this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "Client Closed",
            CloseReason::AuthenticationTimeout => "Authentication Timeout",
            CloseReason::AuthenticationViolation => "Authentication Failure",
            CloseReason::AuthenticationExpired => "Authentication Expired",
            CloseReason::AuthenticationRevoked => "Authentication Revoked",
            CloseReason::TlsHandshakeError => "TLS Handshake Failure",
            CloseReason::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            CloseReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            CloseReason::WriteError => "Write Error",
            CloseReason::ReadError => "Read Error",
            CloseReason::ParseError => "Parse Error",
            CloseReason::StaleConnection => "Stale Connection",
            CloseReason::ProtocolViolation => "Protocol Violation",
            CloseReason::MaxConnectionsExceeded => "Maximum Connections Exceeded",
            CloseReason::MaxAccountConnectionsExceeded => "Maximum Account Connections Exceeded",
            CloseReason::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            CloseReason::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            CloseReason::MaxSubscriptionsExceeded => "Maximum Subscriptions Exceeded",
            CloseReason::MsgHeaderViolation => "Message Header Violation",
            CloseReason::NoRespondersRequiresHeaders => "No Responders Requires Headers",
            CloseReason::BadClientProtocolVersion => "Bad Client Protocol Version",
            CloseReason::ServerShutdown => "Server Shutdown",
            CloseReason::DuplicateClientId => "Duplicate Client ID",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
