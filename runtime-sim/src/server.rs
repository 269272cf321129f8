//! The surface the simulator drives: exactly the core `Server`'s sans-IO
//! API. It is a trait only so that the simulator's own tests can run a
//! stand-in before touching the real thing; production code never sees it.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use natrix_core::config::ServerOptions;
use natrix_core::server::CloseReason;
use natrix_core::{ConnId, Instant, Output, Server, UnixNanos};

/// A node's state machine as the simulator sees it.
pub trait SimServer {
    /// See [`Server::new`].
    fn new(opts: ServerOptions, seed: [u8; 32], now: Instant, wall: UnixNanos) -> Self;
    /// See [`Server::handle_connected`].
    fn handle_connected(&mut self, now: Instant, wall: UnixNanos, peer: SocketAddr) -> ConnId;
    /// See [`Server::handle_received`]: returns how long to stop reading
    /// from `conn` (the server slows a producer whose receivers fall behind).
    fn handle_received(&mut self, now: Instant, conn: ConnId, bytes: Bytes) -> Option<Duration>;
    /// See [`Server::handle_written`].
    fn handle_written(&mut self, now: Instant, conn: ConnId, n: usize);
    /// See [`Server::handle_closed`].
    fn handle_closed(&mut self, now: Instant, conn: ConnId, reason: CloseReason);
    /// See [`Server::poll_timeout`].
    fn poll_timeout(&self) -> Option<Instant>;
    /// See [`Server::handle_timeout`].
    fn handle_timeout(&mut self, now: Instant);
    /// See [`Server::poll_output`].
    fn poll_output(&mut self) -> Option<Output>;
}

impl SimServer for Server {
    fn new(opts: ServerOptions, seed: [u8; 32], now: Instant, wall: UnixNanos) -> Self {
        Server::new(opts, seed, now, wall)
    }
    fn handle_connected(&mut self, now: Instant, wall: UnixNanos, peer: SocketAddr) -> ConnId {
        Server::handle_connected(self, now, wall, peer)
    }
    fn handle_received(&mut self, now: Instant, conn: ConnId, bytes: Bytes) -> Option<Duration> {
        Server::handle_received(self, now, conn, bytes)
    }
    fn handle_written(&mut self, now: Instant, conn: ConnId, n: usize) {
        Server::handle_written(self, now, conn, n)
    }
    fn handle_closed(&mut self, now: Instant, conn: ConnId, reason: CloseReason) {
        Server::handle_closed(self, now, conn, reason)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Server::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Server::handle_timeout(self, now)
    }
    fn poll_output(&mut self) -> Option<Output> {
        Server::poll_output(self)
    }
}
