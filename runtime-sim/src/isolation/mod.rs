//! Account isolation under simulation. Nodes run the real core `Server`
//! with a random `accounts {}` config ([`plan::Plan`]); wire-speaking
//! clients log in as users of different accounts, subscribe, and publish
//! random subjects over a network that splits, delays and (with faults)
//! resets connections and crashes nodes. The checker fails the run when a
//! client receives a message its account may not see (`account-isolation`),
//! one not owed to that subscription (`no-extra-delivery`), or misses one
//! it was owed while its connection stayed up (`no-lost-message`).
//!
//! Each node is a separate server with the same config; the model tracks
//! subscriptions per node in the order the node processed them. Now and
//! then a client sends CONNECT again on the same connection as a user of
//! another account (or the same one) and subscribes anew: nothing its
//! earlier subscriptions matched may reach it afterwards, and nothing may
//! reach whoever takes its connection's place once it is gone.
//!
//! Now and then the operator edits the config and reloads it on every node
//! (`Control::reload`, as SIGHUP does): each reload narrows one user's
//! permissions (a subject or pattern it may no longer publish or receive).
//! From the reload on, nothing may reach that user's connections on a
//! subject it denies, and nothing it publishes there may go anywhere
//! (`reload-permissions`); the subscriptions the node removed are owed
//! nothing more, those it kept are owed what they were.

mod events;
pub mod model;
pub mod plan;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use natrix_core::config::{apply_config, parse_str, MemorySource, ServerOptions};
use natrix_core::{ConnId, Instant, Server, UnixNanos};

use crate::config::FaultMode;
use crate::rng::SimRng;
use crate::trace::{Recorder, TraceHash};
use crate::wire::{encode, ServerParser};
use crate::world::{Failure, RunReport};
use model::Model;
use plan::Plan;

/// A deliberate break that the checker must catch. It lives in the
/// simulator (the options handed to the core, or the delivery path),
/// never in the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsolationMutation {
    /// Run faithfully.
    None,
    /// The nodes put every user in the first account: a server that
    /// leaks everything across accounts.
    OneAccount,
    /// The `nth` message delivered is also handed to a subscription of a
    /// client in another account.
    CopyToOtherAccount {
        /// Which delivery (0-based).
        nth: u64,
    },
    /// The config is edited but the nodes are never told: a server that
    /// ignores reloads, and keeps delivering what the new permissions deny.
    IgnoreReload,
}

/// The shape of one isolation run.
#[derive(Clone, Debug)]
pub struct IsolationConfig {
    /// The seed everything derives from.
    pub seed: u64,
    /// Faults to inject: `network` resets connections, `all` also crashes nodes.
    pub faults: FaultMode,
    /// The checker self-test's break.
    pub mutation: IsolationMutation,
    /// Virtual time during which clients publish and faults happen.
    pub active: Duration,
    /// Virtual time after that for every owed message to arrive.
    pub drain: Duration,
}

impl IsolationConfig {
    /// The standard run for `seed`.
    pub fn new(seed: u64, faults: FaultMode) -> Self {
        let mut rng = SimRng::new(seed ^ 0x150_1a7e_d000_0001);
        IsolationConfig {
            seed,
            faults,
            mutation: IsolationMutation::None,
            active: Duration::from_millis(rng.range(2_000, 6_000)),
            drain: Duration::from_secs(2),
        }
    }
}

/// The seeds `natrix-sim ci` runs for isolation: thirty per fault mode.
pub fn ci_seeds() -> Vec<(u64, FaultMode)> {
    [
        (0, FaultMode::None),
        (1_000, FaultMode::Network),
        (2_000, FaultMode::All),
    ]
    .iter()
    .flat_map(|&(base, mode)| (1..=30).map(move |s| (base + s, mode)))
    .collect()
}

/// Runs the isolation simulation for `seed`.
pub fn run_seed(seed: u64, faults: FaultMode) -> RunReport {
    run(IsolationConfig::new(seed, faults))
}

/// Runs one isolation simulation.
pub fn run(cfg: IsolationConfig) -> RunReport {
    IsolationWorld::new(cfg).run()
}

/// Wall clock of every node at virtual time zero.
const WALL_START_NANOS: i64 = 1_700_000_000_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// A client acts: connects, or publishes.
    Tick(usize),
    /// The next chunk from a client reaches its node.
    Up(usize),
    /// The next chunk from a node reaches its client.
    Down(usize),
    /// A node's timer.
    Timer(usize),
    /// A network reset or (with `all`) a node crash.
    Fault,
    /// The config is edited and reloaded on every node.
    Reload,
    /// Publishing and faults stop; what is owed must arrive.
    Drain,
}

/// One client operation, with the byte offset where the node has read it all.
#[derive(Clone, Debug)]
enum Op {
    /// A CONNECT logging the link in as a user of `account`.
    Login {
        account: usize,
        user: String,
    },
    Sub {
        sid: u64,
        pattern: String,
    },
    Pub {
        id: u64,
        subject: String,
        reply: Option<String>,
    },
}

/// A TCP connection between a client and a node.
struct Link {
    node: usize,
    conn: ConnId,
    client: usize,
    /// The account the node bound the link to by the last CONNECT it read.
    account: usize,
    /// The node has read a CONNECT of this link.
    logged_in: bool,
    /// The user of the last CONNECT the node read on this link.
    user: Option<String>,
    open: bool,
    up: BytesMut,
    up_ops: Vec<(u64, Op)>,
    up_written: u64,
    up_read: u64,
    up_busy: bool,
    down: BytesMut,
    down_busy: bool,
    parser: ServerParser,
}

struct Client {
    account: usize,
    user: String,
    patterns: Vec<String>,
    link: Option<usize>,
    ready: bool,
}

struct Node {
    server: Server,
    conns: BTreeMap<ConnId, usize>,
    timer_at: Option<Instant>,
}

struct IsolationWorld {
    cfg: IsolationConfig,
    rng: SimRng,
    plan: Plan,
    subjects: Vec<String>,
    opts: ServerOptions,
    now: Instant,
    seq: u64,
    queue: BinaryHeap<Reverse<(Instant, u64, Ev)>>,
    nodes: Vec<Node>,
    links: Vec<Link>,
    clients: Vec<Client>,
    model: Model,
    /// Each user's subjects denied by the reloads so far.
    denied: BTreeMap<String, Vec<String>>,
    /// Reloads done.
    reloads: u64,
    draining: bool,
    next_publish: u64,
    deliveries: u64,
    trace: TraceHash,
    recent: Recorder,
    report: RunReport,
}

impl IsolationWorld {
    fn new(cfg: IsolationConfig) -> Self {
        let mut rng = SimRng::new(cfg.seed);
        let plan = Plan::random(&mut rng);
        let subjects = plan.subjects();
        let report = RunReport {
            seed: cfg.seed,
            trace_hash: 0,
            events: 0,
            virtual_time: Duration::ZERO,
            published: 0,
            delivered: 0,
            faults: 0,
            server_closes: BTreeMap::new(),
            excused: 0,
            replies: 0,
            no_responders: 0,
            failure: None,
        };
        let mut world = IsolationWorld {
            opts: ServerOptions::default(),
            cfg,
            rng,
            plan,
            subjects,
            now: Instant::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes: Vec::new(),
            links: Vec::new(),
            clients: Vec::new(),
            model: Model::default(),
            denied: BTreeMap::new(),
            reloads: 0,
            draining: false,
            next_publish: 0,
            deliveries: 0,
            trace: TraceHash::default(),
            recent: Recorder::new(50),
            report,
        };
        world.setup();
        world
    }

    fn setup(&mut self) {
        match self.options() {
            Ok(opts) => self.opts = opts,
            Err(e) => return self.fail("config", format!("{e}\n{}", self.plan.render())),
        }
        for _ in 0..self.rng.range(1, 2) {
            let server = self.new_server();
            self.nodes.push(Node {
                server,
                conns: BTreeMap::new(),
                timer_at: None,
            });
        }
        for node in 0..self.nodes.len() {
            self.drain_node(node);
        }
        for _ in 0..self.rng.range(3, 12) {
            self.add_client();
        }
        if self.cfg.faults != FaultMode::None {
            self.schedule_within(100, 600, Ev::Fault);
        }
        self.schedule_within(200, 1_500, Ev::Reload);
        self.schedule(self.cfg.active, Ev::Drain);
    }

    /// The nodes' options: the plan's accounts (through the real config
    /// parser), short ping timers, and the mutation if there is one.
    fn options(&mut self) -> Result<ServerOptions, String> {
        let text = self.plan.render();
        let tree = parse_str(&text, "isolation.conf", &MemorySource::default())
            .map_err(|e| format!("config does not parse: {e:?}"))?;
        let mut opts = ServerOptions::default();
        apply_config(&tree, &mut opts, false).map_err(|e| format!("config refused: {e:?}"))?;
        opts.ping_interval = self
            .rng
            .duration(Duration::from_millis(300), Duration::from_secs(2));
        opts.ping_max = 2;
        if self.cfg.mutation == IsolationMutation::OneAccount {
            for user in &mut opts.authorization.users {
                user.account = Some("A0".to_owned());
            }
        }
        Ok(opts)
    }

    fn new_server(&mut self) -> Server {
        let wall = self.wall();
        Server::new(self.opts.clone(), self.rng.seed32(), self.now, wall)
    }

    fn wall(&self) -> UnixNanos {
        UnixNanos(WALL_START_NANOS + self.now.as_nanos() as i64)
    }

    fn add_client(&mut self) {
        let account = self.rng.index(self.plan.accounts);
        let user = Plan::user(account, self.rng.index(self.plan.users_per_account));
        let c = self.clients.len();
        let mut patterns: Vec<String> = (0..self.rng.range(0, 3))
            .map(|_| {
                let subject = self.subjects[self.rng.index(self.subjects.len())].clone();
                pattern_of(&subject, &mut self.rng)
            })
            .collect();
        // Where its requests' responses come back.
        patterns.push(format!("_INBOX.c{c}.>"));
        self.clients.push(Client {
            account,
            user,
            patterns,
            link: None,
            ready: false,
        });
        self.schedule_within(0, 200, Ev::Tick(c));
    }

    fn run(mut self) -> RunReport {
        let end = Instant::ZERO + self.cfg.active + self.cfg.drain;
        while self.report.failure.is_none() {
            let Some(Reverse((at, _, ev))) = self.queue.pop() else {
                break;
            };
            if at > end {
                break;
            }
            self.now = at;
            self.report.events += 1;
            self.trace.u64(at.as_nanos());
            self.trace.bytes(format!("{ev:?}").as_bytes());
            self.dispatch(ev);
        }
        if self.report.failure.is_none() {
            self.now = end;
            self.final_checks();
        }
        self.report.replies = self.model.responses_routed();
        self.report.virtual_time = self.now.saturating_duration_since(Instant::ZERO);
        self.report.trace_hash = self.trace.value();
        self.report
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Tick(c) => self.tick(c),
            Ev::Up(link) => self.up(link),
            Ev::Down(link) => self.down(link),
            Ev::Timer(node) => self.timer(node),
            Ev::Fault => self.fault(),
            Ev::Reload => self.reload(),
            Ev::Drain => self.draining = true,
        }
    }

    fn schedule(&mut self, after: Duration, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + after, self.seq, ev)));
    }

    /// Schedules `ev` after a uniform delay of `lo_ms..=hi_ms` milliseconds.
    fn schedule_within(&mut self, lo_ms: u64, hi_ms: u64, ev: Ev) {
        let after = Duration::from_millis(self.rng.range(lo_ms, hi_ms));
        self.schedule(after, ev);
    }

    fn fail(&mut self, invariant: &'static str, detail: String) {
        if self.report.failure.is_none() {
            self.report.failure = Some(Failure {
                invariant,
                detail,
                at: self.now,
                recent: self.recent.dump(),
            });
        }
    }

    fn note(&mut self, line: String) {
        self.recent.push(self.now, line);
    }

    /// A client connects if it has no connection, else publishes once its
    /// first PONG proved the login; reconnecting continues while draining.
    fn tick(&mut self, c: usize) {
        match self.clients[c].link {
            None => self.connect(c),
            Some(link) if self.clients[c].ready && !self.draining && self.rng.ratio(1, 40) => {
                self.login_again(c, link);
            }
            Some(link) if self.clients[c].ready && !self.draining => {
                for _ in 0..self.rng.range(1, 4) {
                    let subject = self.subjects[self.rng.index(self.subjects.len())].clone();
                    let request = self.rng.ratio(1, 3);
                    self.client_publish(link, subject, request);
                }
            }
            Some(_) => {}
        }
        if !self.draining || self.clients[c].link.is_none() {
            self.schedule_within(2, 40, Ev::Tick(c));
        }
    }

    fn connect(&mut self, c: usize) {
        let node = self.rng.index(self.nodes.len());
        let id = self.links.len();
        let peer = SocketAddr::from(([127, 0, 0, 1], 20_000 + (id % 40_000) as u16));
        let wall = self.wall();
        let conn = self.nodes[node]
            .server
            .handle_connected(self.now, wall, peer);
        self.nodes[node].conns.insert(conn, id);
        self.links.push(Link {
            node,
            conn,
            client: c,
            account: self.clients[c].account,
            logged_in: false,
            user: None,
            open: true,
            up: BytesMut::new(),
            up_ops: Vec::new(),
            up_written: 0,
            up_read: 0,
            up_busy: false,
            down: BytesMut::new(),
            down_busy: false,
            parser: ServerParser::new(),
        });
        self.clients[c].link = Some(id);
        self.note(format!(
            "client {c} (A{}) connects to node {node} as link {id}",
            self.clients[c].account
        ));
        self.login(c, id);
        self.drain_node(node);
    }

    /// Sends CONNECT as the client's user, its subscriptions and a PING.
    fn login(&mut self, c: usize, id: usize) {
        let connect = format!(
            "CONNECT {{\"user\":\"{}\",\"pass\":\"p\",\"verbose\":false,\"pedantic\":false,\"echo\":true,\"protocol\":1}}\r\n",
            self.clients[c].user
        );
        let account = self.clients[c].account;
        let user = self.clients[c].user.clone();
        self.client_write(id, connect.as_bytes(), Some(Op::Login { account, user }));
        for (sid, pattern) in self.clients[c].patterns.clone().into_iter().enumerate() {
            let mut out = BytesMut::new();
            encode::sub(&mut out, &pattern, None, sid as u64);
            self.client_write(
                id,
                &out,
                Some(Op::Sub {
                    sid: sid as u64,
                    pattern,
                }),
            );
        }
        let mut out = BytesMut::new();
        encode::ping(&mut out);
        self.client_write(id, &out, None);
    }

    /// The client becomes a user of a random account (often another one)
    /// on the connection it has, and subscribes again with the same sids.
    fn login_again(&mut self, c: usize, link: usize) {
        let account = self.rng.index(self.plan.accounts);
        self.clients[c].account = account;
        self.clients[c].user = Plan::user(account, self.rng.index(self.plan.users_per_account));
        self.note(format!("client {c} logs in again on link {link} as A{account}"));
        self.login(c, link);
    }

    /// The payload names the publish: ids are unique in the run.
    /// A request's reply subject is under the client's own inbox.
    fn client_publish(&mut self, link: usize, subject: String, request: bool) {
        let id = self.next_publish;
        self.next_publish += 1;
        let reply = request.then(|| format!("_INBOX.c{}.{id}", self.links[link].client));
        let mut out = BytesMut::new();
        encode::publish(
            &mut out,
            &subject,
            reply.as_deref(),
            None,
            format!("m{id}").as_bytes(),
        );
        self.client_write(link, &out, Some(Op::Pub { id, subject, reply }));
    }

    fn client_write(&mut self, link: usize, bytes: &[u8], op: Option<Op>) {
        let l = &mut self.links[link];
        l.up.put_slice(bytes);
        l.up_written += bytes.len() as u64;
        if let Some(op) = op {
            l.up_ops.push((l.up_written, op));
        }
        if !l.up_busy {
            l.up_busy = true;
            let latency = self.latency();
            self.schedule(latency, Ev::Up(link));
        }
    }

    fn latency(&mut self) -> Duration {
        self.rng
            .duration(Duration::from_micros(20), Duration::from_millis(3))
    }

    fn up(&mut self, link: usize) {
        let l = &mut self.links[link];
        if !l.open || l.up.is_empty() {
            l.up_busy = false;
            return;
        }
        let n = self.rng.chunk_size(l.up.len());
        let l = &mut self.links[link];
        let chunk = l.up.split_to(n).freeze();
        l.up_read += n as u64;
        let (node, conn, read) = (l.node, l.conn, l.up_read);
        let done: Vec<Op> = {
            let split = l.up_ops.iter().take_while(|(end, _)| *end <= read).count();
            l.up_ops.drain(..split).map(|(_, op)| op).collect()
        };
        self.trace.bytes(&chunk);
        let _pause = self.nodes[node]
            .server
            .handle_received(self.now, conn, chunk);
        for op in done {
            self.apply_op(link, op);
        }
        self.drain_node(node);
        let l = &mut self.links[link];
        if l.open && !l.up.is_empty() {
            let latency = self.latency();
            self.schedule(latency, Ev::Up(link));
        } else {
            l.up_busy = false;
        }
    }

    /// The node has read the whole of `op`: the model learns it now, in
    /// the node's order.
    fn apply_op(&mut self, link: usize, op: Op) {
        let node = self.links[link].node;
        let account = self.links[link].account;
        match op {
            Op::Login { account, user } => {
                let l = &mut self.links[link];
                if std::mem::replace(&mut l.logged_in, true) {
                    self.model.logged_in_again(link);
                }
                l.account = account;
                let denied = self.denied.get(&user).cloned().unwrap_or_default();
                l.user = Some(user);
                self.model.denies(link, denied);
            }
            Op::Sub { sid, pattern } => {
                // A SUB the user's permissions refuse gets an -ERR and no subscription.
                if self.may_subscribe(link, &pattern) {
                    self.model.subscribed(node, link, account, sid, &pattern);
                }
            }
            Op::Pub { id, subject, reply } => {
                let denied = self.denied_to(link).iter().any(|d| crate::subject::matches(d, &subject));
                if denied {
                    self.model.denied_publish(id);
                } else {
                    self.model
                        .published(&self.plan, node, account, id, &subject, reply);
                }
                self.report.published += 1;
            }
        }
    }
}

impl IsolationWorld {
    /// The subjects the node denies `link`'s user, as of the reloads so far.
    fn denied_to(&self, link: usize) -> &[String] {
        self.links[link].user.as_ref().and_then(|u| self.denied.get(u)).map_or(&[], Vec::as_slice)
    }

    /// Whether the node lets `link` subscribe to `pattern` (its user's
    /// permissions decide, as the core compiles them).
    fn may_subscribe(&self, link: usize, pattern: &str) -> bool {
        let denied = self.denied_to(link);
        denied.is_empty()
            || natrix_core::auth::ClientPermissions::new(&deny_permissions(denied)).can_subscribe(pattern.as_bytes(), None)
    }
}

/// Permissions that deny publishing and receiving `denied` (and allow the rest).
fn deny_permissions(denied: &[String]) -> natrix_core::config::Permissions {
    let rules = natrix_core::config::SubjectPermission { allow: Vec::new(), deny: denied.to_vec() };
    natrix_core::config::Permissions { publish: Some(rules.clone()), subscribe: Some(rules), allow_responses: None }
}

/// A subscription pattern derived from a subject: itself, one token a
/// `*`, or a tail cut into `>`.
fn pattern_of(subject: &str, rng: &mut SimRng) -> String {
    let mut tokens: Vec<&str> = subject.split('.').collect();
    let i = rng.index(tokens.len());
    match rng.below(4) {
        1 => tokens[i] = "*",
        2 => {
            tokens.truncate(i);
            tokens.push(">");
        }
        _ => {}
    }
    tokens.join(".")
}

#[cfg(test)]
mod tests;
