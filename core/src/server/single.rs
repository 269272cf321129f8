//! Every piece of a node on one thread: the control plane, each
//! connection's session, and the outboxes drained into
//! [`Output::Transmit`]s. The simulator and the tests drive this; it runs
//! exactly the code the production runtime spreads over its threads, in
//! one order chosen by its caller.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use core::net::SocketAddr;

use bytes::Bytes;

use crate::config::ServerOptions;
use crate::storage::{Storage, SyncToken};
use crate::sync::Lock;
use crate::time::{Instant, UnixNanos};

use super::{CloseReason, ConnId, Control, Output, Session, Wake, WithControl};

/// A node run on one thread (see the [module](self) documentation). It
/// dereferences to its [`Control`] for everything that only reads.
pub struct Server {
    control: Control,
    sessions: BTreeMap<ConnId, Session>,
    /// Connections whose outbox asked to be drained, in the order they asked.
    ready: Arc<Lock<Vec<ConnId>>>,
    outputs: VecDeque<Output>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.control.fmt(f)
    }
}

/// An outbox's wake: its connection joins the ready list.
struct Ready(Arc<Lock<Vec<ConnId>>>);

impl Wake for Ready {
    fn wake(&self, conn: ConnId) {
        self.0.lock().push(conn);
    }
}

/// The control plane, reached directly.
struct Direct<'a>(&'a mut Control);

impl WithControl for Direct<'_> {
    fn with_control<R>(&mut self, f: impl FnOnce(&mut Control) -> R) -> R {
        f(self.0)
    }
}

impl Server {
    /// A server with these options (see [`Control::new`]).
    pub fn new(opts: ServerOptions, seed: [u8; 32], now: Instant, wall: UnixNanos) -> Self {
        Self::around(Control::new(opts, seed, now, wall))
    }

    /// A server whose resolver keeps its JWTs on `storage` (see [`Control::with_storage`]).
    pub fn with_storage(
        opts: ServerOptions,
        seed: [u8; 32],
        now: Instant,
        wall: UnixNanos,
        storage: Box<dyn Storage + Send>,
    ) -> Self {
        Self::around(Control::with_storage(opts, seed, now, wall, storage))
    }

    /// A server with storage for the resolver and for JetStream (see [`Control::with_storages`]).
    pub fn with_storages(
        opts: ServerOptions,
        seed: [u8; 32],
        now: Instant,
        wall: UnixNanos,
        resolver: Option<Box<dyn Storage + Send>>,
        jetstream: Option<Box<dyn Storage + Send>>,
    ) -> Self {
        Self::around(Control::with_storages(opts, seed, now, wall, resolver, jetstream))
    }

    fn around(control: Control) -> Self {
        let mut server = Server {
            control,
            sessions: BTreeMap::new(),
            ready: Arc::default(),
            outputs: VecDeque::new(),
        };
        server.collect(Instant::ZERO);
        server
    }

    /// A client connected from `peer`; the server greets it with INFO.
    pub fn handle_connected(&mut self, now: Instant, wall: UnixNanos, peer: SocketAddr) -> ConnId {
        let waker = Box::new(Ready(Arc::clone(&self.ready)));
        let session = self.control.handle_connected(now, wall, peer, waker);
        let conn = session.cid();
        self.sessions.insert(conn, session);
        self.collect(now);
        conn
    }

    /// [`Server::handle_connected`] for a client that came over `transport`
    /// (see [`Control::handle_connected_via`]).
    pub fn handle_connected_via(&mut self, now: Instant, wall: UnixNanos, peer: SocketAddr, transport: super::Transport) -> ConnId {
        let waker = Box::new(Ready(Arc::clone(&self.ready)));
        let session = self.control.handle_connected_via(now, wall, peer, waker, transport);
        let conn = session.cid();
        self.sessions.insert(conn, session);
        self.collect(now);
        conn
    }

    /// The credentials a WebSocket client's upgrade carried in cookies
    /// (see [`Session::set_cookies`]).
    pub fn set_cookies(&mut self, conn: ConnId, cookies: crate::websocket::handshake::Cookies) {
        if let Some(session) = self.sessions.get_mut(&conn) {
            session.set_cookies(cookies);
        }
    }

    /// Bytes arrived on `conn`, all run at once (see
    /// [`Session::handle_received_all`]): the longest pause asked for.
    pub fn handle_received(&mut self, now: Instant, conn: ConnId, bytes: Bytes) -> Option<std::time::Duration> {
        let session = self.sessions.get_mut(&conn)?;
        let stall = session.handle_received_all(now, bytes, &mut Direct(&mut self.control));
        self.collect(now);
        stall
    }

    /// Bytes arrived on `conn`, run as the runtime runs them (see
    /// [`Session::handle_received`]): after a pause, what is left in
    /// `bytes` is handed in again before anything newer.
    pub fn handle_received_paced(
        &mut self,
        now: Instant,
        conn: ConnId,
        bytes: &mut Bytes,
    ) -> Option<std::time::Duration> {
        let Some(session) = self.sessions.get_mut(&conn) else {
            bytes.clear();
            return None;
        };
        let stall = session.handle_received(now, bytes, &mut Direct(&mut self.control));
        self.collect(now);
        stall
    }

    /// The runtime wrote `n` more bytes of `conn`'s transmitted data to the socket.
    pub fn handle_written(&mut self, now: Instant, conn: ConnId, n: usize) {
        let Some(session) = self.sessions.get(&conn) else { return };
        session.outbox().written(now, n);
        self.control.arm_conn(conn);
    }

    /// The connection closed under the server (peer hang-up or I/O error).
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId, reason: CloseReason) {
        self.control.handle_closed(now, conn, reason);
        self.sessions.remove(&conn);
        self.collect(now);
    }

    /// The earliest instant at which [`Server::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.control.poll_timeout()
    }

    /// Runs the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.control.handle_timeout(now);
        self.collect(now);
    }

    /// The process's figures (see [`Control::handle_process_stats`]).
    pub fn handle_process_stats(&mut self, now: Instant, stats: crate::server::monitor::ProcessStats) {
        self.control.handle_process_stats(now, stats);
        self.collect(now);
    }

    /// Syncs the server asked for completed (see [`Control::handle_synced`]).
    pub fn handle_synced(&mut self, now: Instant, tokens: &[SyncToken]) {
        self.control.handle_synced(now, tokens);
        self.collect(now);
    }

    /// Syncs of JetStream's storage completed (see [`Control::handle_jetstream_synced`]).
    pub fn handle_jetstream_synced(&mut self, now: Instant, tokens: &[SyncToken]) {
        self.control.handle_jetstream_synced(now, tokens);
        self.collect(now);
    }

    /// Enters lame duck mode (see [`Control::enter_lame_duck`]).
    pub fn enter_lame_duck(&mut self, now: Instant) -> bool {
        let entered = self.control.enter_lame_duck(now);
        self.collect(now);
        entered
    }

    /// Reloads the configuration (see [`Control::reload`]).
    pub fn reload(&mut self, now: Instant, wall: UnixNanos, opts: ServerOptions) -> Result<(), super::ReloadError> {
        let reloaded = self.control.reload(now, wall, opts);
        self.collect(now);
        reloaded
    }

    /// True once lame duck mode closed every client.
    pub fn lame_duck_finished(&self) -> bool {
        self.control.lame_duck_finished()
    }

    /// Closes every connection (server shutdown).
    pub fn shutdown(&mut self, now: Instant) {
        self.control.shutdown(now);
        self.collect(now);
    }

    /// The next thing the runtime must do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Drains the outboxes that asked for it, then the control plane's
    /// outputs; a closed connection's last bytes go out before its close.
    fn collect(&mut self, now: Instant) {
        let ready = std::mem::take(&mut *self.ready.lock());
        for conn in ready {
            self.transmit(now, conn);
        }
        while let Some(output) = self.control.poll_output() {
            if let Output::Close { conn, .. } = output {
                self.transmit(now, conn);
                self.sessions.remove(&conn);
            }
            self.outputs.push_back(output);
        }
    }

    fn transmit(&mut self, now: Instant, conn: ConnId) {
        let Some(session) = self.sessions.get(&conn) else { return };
        if let Some(bytes) = session.outbox().take(now).bytes {
            self.outputs.push_back(Output::Transmit { conn, bytes });
            // Pending bytes start the write deadline.
            self.control.arm_conn(conn);
        }
    }
}

impl std::ops::Deref for Server {
    type Target = Control;

    fn deref(&self) -> &Control {
        &self.control
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Control {
        &mut self.control
    }
}
