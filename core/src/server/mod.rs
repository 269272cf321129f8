//! The server: one per node, in three kinds of pieces.
//!
//! - [`Session`]: one per connection, owned by whoever reads its bytes. It
//!   parses, checks and delivers the connection's publishes itself, through
//!   its account's shared index, into the receivers' outboxes.
//! - [`Outbox`]: one per connection, shared. What deliveries write to and
//!   the runtime drains.
//! - [`Control`]: one per node, the control plane. CONNECT and auth, SUB
//!   and UNSUB, timers, accounts and their routes, monitoring, the
//!   resolver: everything that changes shared state, which sessions reach
//!   only through it, one at a time.
//!
//! Each keeps the four verbs of a sans-IO protocol object (`handle_*` to
//! feed it, `poll_*` to drain it, `poll_timeout` / `handle_timeout` for
//! timers). The production runtime runs sessions on every worker thread
//! and holds the control plane behind a lock; [`Server`] runs every piece
//! on one thread, for the simulator and the tests.

mod auth;
mod client;
mod deliver;
mod imports;
mod jetstream;
mod lame_duck;
pub mod monitor;
#[cfg(all(test, loom))]
mod loom_outbox;
mod matches;
pub mod memory;
mod ops;
mod outbox;
mod reload;
mod resolver;
mod session;
mod single;
mod subs;
mod sys_events;
mod sys_monitor;
mod timers;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use core::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::account::routes::SYSTEM_ACCOUNT;
use crate::config::ServerOptions;
use crate::log::{Level, LogEvent};
use crate::server::monitor::ConnInfo;
use crate::protocol::{encode, ParserLimits, ServerInfo};
use crate::slab::Slab;
use crate::sync::{AtomicU64, Ordering};
use crate::time::{Instant, UnixNanos};

pub use crate::close::CloseReason;
pub use crate::account::{AccountStats, MsgBytes, TrafficStats};
/// An account as this server keeps it: its index holds [`SubRef`]s.
pub(crate) type Account = crate::account::state::Account<SubRef>;
/// The part of an [`Account`] that sessions share.
pub(crate) type AccountShared = crate::account::state::AccountShared<SubRef>;
pub(crate) use client::{Client, Slot, SubId, SubRef};
pub(crate) use subs::Subscription;
pub use deliver::DRAIN_GRACE;
pub use outbox::{Outbox, Taken, Wake};
pub use session::{Session, WithControl};
pub use single::Server;
pub use reload::ReloadError;

/// The `version` natrix reports in INFO, `/varz` and system replies: the
/// nats-server release whose client-visible behaviour natrix implements.
///
/// Clients gate features on it (nats.js refuses several JetStream calls
/// below 2.9 or 2.10, nats-py expects major version 2), and natrix's JSON
/// shapes and error codes are checked against this release, so this is the
/// version a client must believe it talks to. natrix's own version is
/// [`NATRIX_VERSION`].
pub const VERSION: &str = "2.15.1";

/// natrix's own release, reported in a field of its own (`natrix_version`
/// in INFO and `/varz`) and in the start-up log.
pub const NATRIX_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A client connection's id: `cid` in nats-server's monitoring, assigned by
/// the server in accept order starting at 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cid:{}", self.0)
    }
}

/// How a client reached the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// Plain TCP (TLS or not): the NATS protocol as is.
    #[default]
    Tcp,
    /// WebSocket frames carrying the NATS protocol.
    Websocket,
    /// An MQTT device, whose session speaks NATS for it (`crate::mqtt`).
    Mqtt,
}

impl Transport {
    /// `/connz`'s `type`.
    pub fn conn_type(self) -> &'static str {
        match self {
            Transport::Tcp => "nats",
            Transport::Websocket => "websocket",
            Transport::Mqtt => "mqtt",
        }
    }

    /// The type a user's `allowed_connection_types` names this transport by.
    pub fn connection_type(self) -> &'static str {
        match self {
            Transport::Tcp => crate::auth::restrictions::STANDARD,
            Transport::Websocket => crate::auth::restrictions::WEBSOCKET,
            Transport::Mqtt => crate::auth::restrictions::MQTT,
        }
    }
}

/// What the server asks the runtime to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Write these bytes to the connection, after everything sent before
    /// (only [`Server`] gives this: a runtime with its own sessions takes
    /// the bytes from each connection's [`Outbox`]). The runtime reports
    /// progress with [`Server::handle_written`].
    Transmit {
        /// The connection.
        conn: ConnId,
        /// Bytes to write.
        bytes: Bytes,
    },
    /// Flush what was transmitted, then close the connection. The server has
    /// already forgotten it; no [`Control::handle_closed`] is expected.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why, as `/connz?state=closed` reports it.
        reason: CloseReason,
    },
    /// A line for the log.
    Log(LogEvent),
}

/// Server-wide message and connection counters (`/varz`).
#[derive(Clone, Debug, Default)]
pub struct ServerCounters {
    /// Messages received from clients.
    pub in_msgs: u64,
    /// Payload bytes received from clients.
    pub in_bytes: u64,
    /// Messages delivered to clients.
    pub out_msgs: u64,
    /// Payload bytes delivered to clients.
    pub out_bytes: u64,
    /// Connections closed as slow consumers.
    pub slow_consumers: u64,
    /// Connections accepted since start.
    pub total_connections: u64,
    /// Connections closed as stale (unanswered pings).
    pub stale_connections: u64,
    /// Times a producer was slowed down for a lagging receiver.
    pub stalled_clients: u64,
    /// Monitoring requests served, by endpoint (`/varz` → 3).
    pub http_requests: BTreeMap<&'static str, u64>,
}

/// What every session adds to as traffic passes: `/varz`'s message
/// counters, shared by every thread (on cache lines of their own).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Traffic {
    in_msgs: AtomicU64,
    in_bytes: AtomicU64,
    out_msgs: AtomicU64,
    out_bytes: AtomicU64,
    slow_consumers: AtomicU64,
    stalled_clients: AtomicU64,
    /// Resident memory is over the memory limit's high-water mark (see [`memory`]).
    memory_pressure: crate::sync::AtomicBool,
}

impl Traffic {
    /// Adds a batch: what a client published, what was delivered.
    pub fn add(&self, received: MsgBytes, delivered: MsgBytes) {
        for (counter, n) in [
            (&self.in_msgs, received.msgs),
            (&self.in_bytes, received.bytes),
            (&self.out_msgs, delivered.msgs),
            (&self.out_bytes, delivered.bytes),
        ] {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    pub fn slow_consumer(&self) {
        self.slow_consumers.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stalled(&self) {
        self.stalled_clients.fetch_add(1, Ordering::Relaxed);
    }

    /// `max_pending` as sessions apply it now (lowered under memory pressure).
    pub fn max_pending(&self, configured: u64) -> u64 {
        memory::effective_max_pending(configured, self.memory_pressure.load(Ordering::Relaxed))
    }
}

/// The configured users, for sessions to check credentials against
/// without the control plane: outside operator mode nothing else decides.
/// One per transport, as the `websocket {}` and `mqtt {}` blocks may
/// override the server's (see `PlainAuth::for_transport`).
#[derive(Debug)]
pub(crate) struct PlainAuth {
    pub authorization: crate::config::Authorization,
    pub no_auth_user: Option<String>,
    pub connection_type: &'static str,
}

/// A node's control plane (see the [module](self) documentation).
pub struct Control {
    opts: ServerOptions,
    rng: ChaCha8Rng,
    server_id: String,
    server_name: String,
    started_wall: UnixNanos,
    started_at: Instant,
    clients: Slab<Client>,
    by_cid: BTreeMap<ConnId, Slot>,
    next_cid: u64,
    accounts: Vec<Account>,
    /// What the control plane's own deliveries and replies left to do.
    work: deliver::Work,
    outputs: VecDeque<Output>,
    /// (deadline, slot): each live client appears once, at its earliest deadline.
    timers: BTreeSet<(Instant, Slot)>,
    counters: ServerCounters,
    traffic: Arc<Traffic>,
    /// Set outside operator mode (see [`PlainAuth`]), by [`Transport`].
    plain_auth: Option<[Arc<PlainAuth>; 3]>,
    /// Recently closed connections for `/connz?state=closed`, oldest first,
    /// at most `max_closed_clients`.
    closed: VecDeque<ConnInfo>,
    /// Reused for encoding no-responder headers and the like.
    scratch: BytesMut,
    /// The control plane's own match caches, by account index.
    matches: Vec<matches::MatchCache>,
    /// Keys the hashing of those caches.
    match_seed: u64,
    /// Operator mode: the trusted operators and known accounts.
    trust: Option<crate::auth::Trust>,
    /// Sequence number of the server's system replies.
    system_seq: u64,
    /// Set while handling received bytes when a receiver of the messages
    /// is past the stall gate: the producer should pause.
    producer_stall: deliver::Stall,
    /// The NATS resolver's directory, when the runtime attached storage.
    jwt_dir: Option<resolver::dir::JwtDir<resolver::Durable>>,
    /// When an account JWT or activation token in force next expires.
    claims_clock: resolver::claims::ClaimsClock,
    /// JetStream, when enabled (`-js`).
    jetstream: Option<crate::jetstream::JetStream>,
    /// When JetStream next has something to expire.
    jetstream_deadline: Option<Instant>,
    /// While a run of acknowledgements is processed: JetStream's drain
    /// waits for the end of the run (true once one is owed).
    jetstream_drain_deferred: Option<bool>,
    /// Scratch for a burst of consumer deliveries (see
    /// `Control::deliver_consumer_burst`).
    consumer_burst: Vec<crate::protocol::Publish>,
    /// Lame duck mode, once entered.
    lame_duck: Option<lame_duck::LameDuck>,
    /// The system account's event timers and the process figures.
    events: sys_events::SysEvents,
    /// When the configuration in force was loaded: at start, then at each reload.
    config_loaded_wall: UnixNanos,
}

impl fmt::Debug for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Control")
            .field("server_id", &self.server_id)
            .field("clients", &self.by_cid.len())
            .finish_non_exhaustive()
    }
}

impl Control {
    /// A server with these options. `seed` seeds the node's only RNG (queue
    /// member choice, nonces, the server id); `now` and `wall` are the clocks
    /// at start.
    pub fn new(opts: ServerOptions, seed: [u8; 32], now: Instant, wall: UnixNanos) -> Self {
        Self::build(opts, seed, now, wall, None, None)
    }

    /// A server whose NATS resolver keeps its account JWTs on `storage` (the
    /// resolver's `dir`): it starts with the JWTs stored there, and
    /// acknowledges a claim update only once it is durable. The runtime
    /// reports the completion of the syncs it asks for with
    /// [`Control::handle_synced`]. Without the NATS resolver the storage is unused.
    pub fn with_storage(
        opts: ServerOptions,
        seed: [u8; 32],
        now: Instant,
        wall: UnixNanos,
        storage: Box<dyn crate::storage::Storage + Send>,
    ) -> Self {
        Self::build(opts, seed, now, wall, Some(resolver::dir::JwtDir::new(storage)), None)
    }

    /// A server with storage for the NATS resolver's directory (if any)
    /// and for JetStream's streams (if any): see [`Control::with_storage`].
    /// JetStream recovers its streams from its storage now; completions of
    /// the syncs it asks for come back through [`Control::handle_jetstream_synced`].
    pub fn with_storages(
        opts: ServerOptions,
        seed: [u8; 32],
        now: Instant,
        wall: UnixNanos,
        resolver: Option<Box<dyn crate::storage::Storage + Send>>,
        jetstream: Option<Box<dyn crate::storage::Storage + Send>>,
    ) -> Self {
        Self::build(opts, seed, now, wall, resolver.map(resolver::dir::JwtDir::new), jetstream)
    }

    fn build(
        opts: ServerOptions,
        seed: [u8; 32],
        now: Instant,
        wall: UnixNanos,
        jwt_dir: Option<resolver::dir::JwtDir<resolver::Durable>>,
        js_storage: Option<Box<dyn crate::storage::Storage + Send>>,
    ) -> Self {
        let mut rng = ChaCha8Rng::from_seed(seed);
        let server_id = server_id(&mut rng);
        let server_name = opts.server_name.clone().unwrap_or_else(|| server_id.clone());
        let system = (!opts.no_system_account).then(|| opts.system_account.as_deref().unwrap_or(SYSTEM_ACCOUNT));
        let cache = !opts.disable_sublist_cache;
        let accounts = crate::account::routes::build_accounts(&opts.accounts, &opts.mappings, system, cache, &mut rng);
        let events_on = system.is_some();
        let mut server = Control {
            opts,
            rng,
            server_id,
            server_name,
            started_wall: wall,
            started_at: now,
            clients: Slab::default(),
            by_cid: BTreeMap::new(),
            next_cid: 1,
            accounts,
            work: deliver::Work::default(),
            outputs: VecDeque::new(),
            timers: BTreeSet::new(),
            counters: ServerCounters::default(),
            traffic: Arc::default(),
            plain_auth: None,
            closed: VecDeque::new(),
            scratch: BytesMut::new(),
            matches: Vec::new(),
            match_seed: 0,
            trust: None,
            system_seq: 0,
            producer_stall: deliver::Stall::No,
            jwt_dir,
            claims_clock: resolver::claims::ClaimsClock::default(),
            jetstream: None,
            jetstream_deadline: None,
            jetstream_drain_deferred: None,
            consumer_burst: Vec::new(),
            lame_duck: None,
            events: sys_events::SysEvents::new(now, events_on),
            config_loaded_wall: wall,
        };
        server.enter_operator_mode(wall);
        if server.trust.is_none() {
            server.plain_auth = Some(
                [Transport::Tcp, Transport::Websocket, Transport::Mqtt]
                    .map(|t| Arc::new(PlainAuth::for_transport(&server.opts, t))),
            );
        }
        server.start_claims_clock(now);
        server.enable_system_services();
        server.share_routes();
        server.log(Level::Info, format!("Starting natrix {NATRIX_VERSION}"));
        server.log(Level::Info, format!("  Version:  {VERSION} (the nats-server release natrix implements)"));
        server.log(Level::Info, format!("  Name:     {}", server.server_name));
        server.log(Level::Info, format!("  ID:       {}", server.server_id));
        server.start_jetstream(js_storage);
        server.match_seed = server.rng.next_u64();
        server
    }

    /// The options the server runs with.
    pub fn options(&self) -> &ServerOptions {
        &self.opts
    }

    /// The server's id (an nkey-shaped public id, like nats-server's).
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// `server_name`, or the id when none was configured.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// Number of client connections.
    pub fn num_clients(&self) -> usize {
        self.by_cid.len()
    }

    /// Server-wide counters, as of now.
    pub fn counters(&self) -> ServerCounters {
        let t = &self.traffic;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ServerCounters {
            in_msgs: get(&t.in_msgs),
            in_bytes: get(&t.in_bytes),
            out_msgs: get(&t.out_msgs),
            out_bytes: get(&t.out_bytes),
            slow_consumers: get(&t.slow_consumers),
            stalled_clients: get(&t.stalled_clients),
            ..self.counters.clone()
        }
    }

    pub(crate) fn counters_mut(&mut self) -> &mut ServerCounters {
        &mut self.counters
    }

    /// A client connected from `peer`: the server queues INFO in its new
    /// outbox and starts the auth timer. `waker` is how the runtime is told
    /// that the outbox has bytes; the returned session is the connection's,
    /// to be fed everything it receives.
    pub fn handle_connected(&mut self, now: Instant, wall: UnixNanos, peer: SocketAddr, waker: Box<dyn Wake>) -> Session {
        self.handle_connected_via(now, wall, peer, waker, Transport::Tcp)
    }

    /// [`Server::handle_connected`] for a client that came over `transport`:
    /// a WebSocket client's INFO names the WebSocket listener and asks for
    /// no TLS upgrade (TLS, if any, is the transport's), as nats-server's does.
    pub fn handle_connected_via(
        &mut self,
        now: Instant,
        wall: UnixNanos,
        peer: SocketAddr,
        waker: Box<dyn Wake>,
        transport: Transport,
    ) -> Session {
        let cid = ConnId(self.next_cid);
        self.next_cid += 1;
        self.counters.total_connections += 1;
        let limits = ParserLimits {
            max_control_line_bytes: self.opts.max_control_line_bytes,
            max_payload_bytes: self.opts.max_payload_bytes,
        };
        let profile = Arc::new(outbox::Profile {
            connected: false,
            account: Arc::clone(&self.accounts[0].shared),
            verbose: true,
            pedantic: true,
            echo: true,
            headers: false,
            no_responders: false,
            guarded: false,
            parser_limits: limits,
            trace: self.opts.trace,
            plain_auth: self.plain_auth.as_ref().map(|by| Arc::clone(&by[transport as usize])),
        });
        // One seed keys the session's match cache and the outbox's sid index.
        let seed = self.rng.next_u64();
        let outbox = Arc::new(Outbox::new(cid, waker, Arc::clone(&profile), seed, now, wall));
        let mut client = Client::new(cid, peer, Arc::clone(&outbox), limits, now, wall);
        client.transport = transport;
        client.next_ping_at = now + self.opts.ping_interval.min(FIRST_PING_INTERVAL);
        if self.auth_required_via(transport) {
            client.auth_deadline = Some(now + self.auth_timeout_via(transport));
        }
        let mut info = self.client_info(cid, peer);
        info.auth_required = self.auth_required_via(transport);
        if transport == Transport::Websocket {
            let ws = &self.opts.websocket;
            info.host.clone_from(&ws.host);
            info.port = u16::try_from(ws.port).unwrap_or(0);
            info.tls_required = false;
            info.tls_verify = false;
        }
        if self.needs_nonce() {
            let nonce = nonce(&mut self.rng);
            info.nonce.clone_from(&nonce);
            client.nonce = Some(nonce);
        }
        let slot = self.insert_client(client);
        self.queue(slot, |bytes| encode::write_info(bytes, &info));
        let session = Session::new(session::SessionSetup {
            slot,
            outbox,
            profile,
            traffic: Arc::clone(&self.traffic),
            max_pending: self.opts.max_pending_bytes,
            started: (self.started_at, self.started_wall),
            seed,
            nonce: self.client(slot).and_then(|c| c.nonce.clone()),
        });
        if self.lame_duck.is_some() {
            // Accepted before the runtime stopped accepting: turned away.
            self.close(now, slot, CloseReason::ServerShutdown, None);
        } else if self.under_memory_pressure() {
            self.log(Level::Error, format!("{peer} - {cid} - connection refused: memory limit reached"));
            self.close(now, slot, CloseReason::MaxConnectionsExceeded, Some(memory::REFUSED));
        } else if self.by_cid.len() > self.opts.max_connections as usize {
            self.log(Level::Error, format!("{peer} - {cid} - maximum connections exceeded"));
            self.close(now, slot, CloseReason::MaxConnectionsExceeded, Some("maximum connections exceeded"));
        } else {
            self.log(Level::Debug, format!("{peer} - {cid} - Client connection created"));
        }
        self.wake();
        session
    }

    /// The connection closed under the server (peer hang-up or I/O error).
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId, reason: CloseReason) {
        let Some(&slot) = self.by_cid.get(&conn) else { return };
        self.remove_client(now, slot, reason);
        self.wake();
    }

    /// The earliest instant at which [`Server::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let client = self.timers.first().map(|&(at, _)| at);
        client
            .into_iter()
            .chain(self.claims_clock.deadline)
            .chain(self.jetstream_deadline)
            .chain(self.lame_duck_deadline())
            .chain(self.events.deadline())
            .min()
    }

    /// Run the timers due at `now` (pings, auth timeouts, write deadlines,
    /// the expiry of account JWTs and activation tokens).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.claims_clock.deadline.is_some_and(|at| at <= now) {
            self.claims_deadline_passed(now);
        }
        if self.jetstream_deadline.is_some_and(|at| at <= now) {
            self.jetstream_timeout(now);
        }
        if self.lame_duck_deadline().is_some_and(|at| at <= now) {
            self.lame_duck_timeout(now);
        }
        if self.events.deadline().is_some_and(|at| at <= now) {
            self.events_timeout(now);
        }
        while let Some(&(at, slot)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            if let Some(c) = self.client_mut(slot) {
                c.armed_deadline = None;
                self.run_client_timers(now, slot);
            }
        }
        self.finish_work(now);
        self.wake();
    }

    /// The next thing the runtime must do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Closes every connection (server shutdown).
    pub fn shutdown(&mut self, now: Instant) {
        let slots: Vec<Slot> = self.by_cid.values().copied().collect();
        for slot in slots {
            self.close(now, slot, CloseReason::ServerShutdown, None);
        }
        self.wake();
    }

    /// Tells the runtime about every outbox the control plane queued bytes in.
    pub(crate) fn wake(&mut self) {
        self.work.touched.wake_all();
    }

    /// Queues bytes for the client in `slot`, written by `write`.
    pub(crate) fn queue(&mut self, slot: Slot, write: impl FnOnce(&mut BytesMut)) {
        let Some(c) = self.clients.get(slot) else { return };
        let outbox = Arc::clone(&c.outbox);
        let mut o = outbox.lock();
        if o.closed.is_some() {
            return;
        }
        write(o.queued.buf(0));
        if o.mark_dirty() {
            self.work.touched.push(&outbox);
        }
    }

    /// Hands the connection's session what the control plane decided for
    /// its publishes (after CONNECT, or when its limits change).
    pub(crate) fn share_profile(&mut self, slot: Slot) {
        let Some(c) = self.clients.get(slot) else { return };
        let profile = outbox::Profile {
            connected: c.connected,
            account: Arc::clone(&self.accounts[c.account].shared),
            verbose: c.flags.verbose,
            pedantic: c.flags.pedantic,
            echo: c.flags.echo,
            headers: c.flags.headers,
            no_responders: c.flags.no_responders,
            guarded: c.has_perms,
            parser_limits: c.parser_limits,
            trace: self.opts.trace,
            plain_auth: self.plain_auth.as_ref().map(|by| Arc::clone(&by[c.transport as usize])),
        };
        c.outbox.lock().profile = Arc::new(profile);
    }

    /// Tells every account's sessions whether its publishes may cross accounts.
    pub(crate) fn share_routes(&self) {
        for account in &self.accounts {
            account.share_routes();
        }
    }

    fn client_info(&self, cid: ConnId, peer: SocketAddr) -> ServerInfo {
        let tls = self.opts.tls.as_ref();
        ServerInfo {
            server_id: self.server_id.clone(),
            server_name: self.server_name.clone(),
            version: VERSION.to_owned(),
            natrix_version: NATRIX_VERSION.to_owned(),
            proto: 1,
            go: crate::protocol::info::RUNTIME_VERSION.to_owned(),
            host: self.opts.host.clone(),
            port: u16::try_from(self.opts.port).unwrap_or(0),
            headers: !self.opts.no_header_support,
            auth_required: self.auth_required(),
            tls_required: tls.is_some(),
            tls_verify: tls.is_some_and(|t| t.verify),
            max_payload: self.opts.max_payload_bytes,
            // nats-server reports whether the server runs JetStream.
            jetstream: self.jetstream.is_some(),
            client_id: cid.0,
            client_ip: peer.ip().to_string(),
            ..ServerInfo::default()
        }
    }

    fn insert_client(&mut self, client: Client) -> Slot {
        let cid = client.cid;
        let slot = self.clients.insert(client);
        self.by_cid.insert(cid, slot);
        self.arm(slot);
        slot
    }

    pub(crate) fn client(&self, slot: Slot) -> Option<&Client> {
        self.clients.get(slot)
    }

    pub(crate) fn client_mut(&mut self, slot: Slot) -> Option<&mut Client> {
        self.clients.get_mut(slot)
    }

    /// Iterates over live clients in cid order.
    pub(crate) fn clients_by_cid(&self) -> impl Iterator<Item = &Client> + '_ {
        self.by_cid.values().filter_map(|&slot| self.client(slot))
    }

    pub(crate) fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    pub(crate) fn started(&self) -> (Instant, UnixNanos) {
        (self.started_at, self.started_wall)
    }

    /// The wall clock at monotonic `now`, derived from the clocks at start.
    pub(crate) fn wall_at(&self, now: Instant) -> UnixNanos {
        let since = now.saturating_duration_since(self.started_at).as_nanos();
        UnixNanos(self.started_wall.0.saturating_add(i64::try_from(since).unwrap_or(i64::MAX)))
    }

    /// Recently closed connections, oldest first.
    pub(crate) fn closed_connections(&self) -> impl Iterator<Item = &ConnInfo> + '_ {
        self.closed.iter()
    }

    /// Sends `-ERR 'text'` (if any), flushes, and closes the connection.
    pub(crate) fn close(&mut self, now: Instant, slot: Slot, reason: CloseReason, err: Option<&str>) {
        let Some(c) = self.client(slot) else { return };
        let conn = c.cid;
        if let Some(text) = err {
            self.queue(slot, |bytes| encode::write_err(bytes, text));
        }
        self.outputs.push_back(Output::Close { conn, reason });
        self.remove_client(now, slot, reason);
    }

    fn remove_client(&mut self, now: Instant, slot: Slot, reason: CloseReason) {
        if self.opts.max_closed_clients > 0 {
            if let Some(c) = self.client(slot) {
                let info = crate::server::monitor::closed_conn_info(self, c, now).closed(self.wall_at(now), reason.as_str());
                if self.closed.len() >= self.opts.max_closed_clients as usize {
                    self.closed.pop_front();
                }
                self.closed.push_back(info);
            }
        }
        let disconnect = self.disconnect_event(now, slot, reason);
        let Some(client) = self.clients.remove(slot) else { return };
        if let Some(at) = client.armed_deadline {
            self.timers.remove(&(at, slot));
        }
        // Closed first: a delivery holding a stale match queues nothing more.
        let subs = {
            let mut o = client.outbox.lock();
            client.outbox.close(&mut o, reason);
            if o.mark_dirty() {
                self.work.touched.push(&client.outbox);
            }
            o.subs.drain()
        };
        let shared = &self.accounts[client.account].shared;
        let mut literal = Vec::new();
        for (id, sub) in subs {
            let sref = SubRef { slot, sub: id, outbox: Arc::clone(&client.outbox) };
            shared.remove(sub.subject(), sub.queue(), &sref);
            if self.jetstream.is_some() && !sub.subject().iter().any(|&b| b == b'*' || b == b'>') {
                literal.push(Bytes::copy_from_slice(sub.subject()));
            }
        }
        self.interest_gone(now, client.account, &literal);
        self.by_cid.remove(&client.cid);
        self.log(
            Level::Debug,
            format!("{} - {} - Client connection closed: {reason}", client.peer, client.cid),
        );
        self.client_gone_events(now, client.connected.then_some(client.account), disconnect);
    }

    pub(crate) fn log(&mut self, level: Level, message: String) {
        self.outputs.push_back(Output::Log(LogEvent { level, message }));
    }

    pub(crate) fn trace_enabled(&self) -> bool {
        self.opts.trace
    }
}

/// How long a producer pauses, at a message boundary, while a receiver of
/// its messages is past the stall gate (see [`deliver::stall_gate`]).
pub(crate) const PRODUCER_STALL: std::time::Duration = std::time::Duration::from_millis(2);

/// The most a producer pauses in all for one read: a receiver that does not
/// drain slows its producers this much a read, no more, until it is cut.
pub(crate) const PRODUCER_STALL_BUDGET: std::time::Duration = std::time::Duration::from_millis(10);

/// How soon after connecting a client gets its first PING (nats-server pings
/// early to measure round-trip time).
const FIRST_PING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// A nonce for nkey users to sign: 11 random bytes in unpadded base64url,
/// 15 characters like nats-server's.
fn nonce(rng: &mut ChaCha8Rng) -> String {
    use base64::Engine;
    let mut raw = [0u8; 11];
    rng.fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// An nkey-shaped server id: `N` and 55 base32 characters.
fn server_id(rng: &mut ChaCha8Rng) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::with_capacity(56);
    id.push('N');
    for _ in 0..55 {
        id.push(ALPHABET[(rng.next_u32() % 32) as usize] as char);
    }
    id
}

impl Control {
    /// Statistics of every account, in the server's account order.
    pub fn account_stats(&self) -> Vec<AccountStats> {
        let mut conns = vec![0u64; self.accounts.len()];
        for c in self.clients_by_cid().filter(|c| c.connected) {
            conns[c.account] += 1;
        }
        self.accounts
            .iter()
            .zip(conns)
            .map(|(a, conns)| AccountStats {
                acc: a.name.clone(),
                // A JWT account shows under its JWT's `name`, as in nats-server.
                name: crate::server::monitor::build::name_tag(self, &a.name),
                conns,
                leafnodes: 0,
                total_conns: conns,
                num_subscriptions: a.shared.index.read().count() as u64,
                sent: a.shared.sent.get().into(),
                received: a.shared.received.get().into(),
                slow_consumers: a.stats.slow_consumers,
            })
            .collect()
    }
}
