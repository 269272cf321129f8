//! The simulated network: each connection is a pair of ordered byte pipes.
//!
//! A sender's bytes wait in `queued` until the pump moves a seeded-size chunk
//! (1 byte to 64 KiB) into the network, where it travels for the link's
//! latency and arrives in order. `window` bounds the bytes in the network
//! plus those delivered but not yet read by the receiver — TCP's socket
//! buffers and flow control — so a client that stops reading stalls the
//! server's writes, and the server sees `handle_written` only for bytes that
//! fit. Partitions hold arrivals (TCP retransmits; nothing is lost) until
//! they heal; a reset drops everything.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use natrix_core::{ConnId, Instant};

use crate::model::{ClientId, ModelOp};

/// A direction of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dir {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

/// One direction's bytes.
#[derive(Debug)]
pub struct Pipe {
    /// Written by the sender, not yet in the network.
    pub queued: BytesMut,
    /// In the network: arrival time and chunk, in order.
    pub net: VecDeque<(Instant, Bytes)>,
    /// Bytes in the network or delivered but unread.
    pub in_flight: usize,
    /// Bound on `in_flight`.
    pub window: usize,
    /// A pump event is pending.
    pub pump_scheduled: bool,
    /// Arrival time of the last chunk sent, so arrivals stay ordered.
    pub last_due: Instant,
}

impl Pipe {
    /// An empty pipe.
    pub fn new(window: usize) -> Self {
        Pipe {
            queued: BytesMut::new(),
            net: VecDeque::new(),
            in_flight: 0,
            window,
            pump_scheduled: false,
            last_due: Instant::ZERO,
        }
    }

    /// Nothing left anywhere in this direction.
    pub fn is_idle(&self) -> bool {
        self.queued.is_empty() && self.net.is_empty() && self.in_flight == 0
    }
}

/// Lifecycle of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Both ends use it.
    Open,
    /// The server sent Close: flush what it transmitted, then close.
    Flushing,
    /// The client closed its end: deliver what it sent, then tell the server.
    ClientFin,
    /// Gone.
    Closed,
}

/// One simulated TCP connection between a client and a node.
#[derive(Debug)]
pub struct Link {
    /// The node.
    pub node: usize,
    /// The node's incarnation when the link was made.
    pub node_inc: u64,
    /// The server's id for it.
    pub conn: ConnId,
    /// The client.
    pub client: ClientId,
    /// Client to server.
    pub up: Pipe,
    /// Server to client.
    pub down: Pipe,
    /// Lifecycle.
    pub state: LinkState,
    /// One-way latency.
    pub latency: Duration,
    /// Transmission time per byte (0: instant).
    pub ns_per_byte: u64,
    /// Extra latency while a slow-link fault lasts.
    pub slow_extra: Duration,
    /// Some fault touched this link; the server may legitimately drop it.
    pub faulted: bool,
    /// Bytes the server transmitted minus bytes reported written.
    pub server_pending: u64,
    /// The server asked to stop reading from this client until then.
    pub read_paused_until: Instant,
    /// Last time the server's pending bytes started or moved.
    pub progress_at: Instant,
    /// Client bytes sent so far (offsets of `ops`).
    pub up_sent: u64,
    /// Client bytes handed to the server so far.
    pub up_delivered: u64,
    /// Model operations not yet processed by the server, with the offset just
    /// past their last byte.
    pub ops: VecDeque<(u64, ModelOp)>,
}
