//! The whole server state machine, driven like a runtime drives it, and
//! the monitoring endpoints on top of it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use natrix_core::account::AccountConfig;
use natrix_core::config::{
    Authorization, Permissions, ResponsePermission, ServerOptions, SubjectPermission,
    User,
};
use natrix_core::monitor::{self, ProcessStats, Query, QueryError};
use natrix_core::server::CloseReason;
use natrix_core::{ConnId, Instant, Output, Server, UnixNanos};

use super::nul_fields;

const WALL_START: UnixNanos = UnixNanos(1_700_000_000_000_000_000);
const MAX_PENDING: [u64; 4] = [1024, 4096, 65536, 64 * 1024 * 1024];
const MAX_PAYLOAD: [u32; 4] = [0, 16, 1024, 1024 * 1024];
const MAX_CONTROL_LINE: [u32; 4] = [16, 64, 256, 4096];
const TOKENS: [&str; 6] = ["a", "b", "*", ">", "foo", ""];
const PATHS: [&str; 8] = [
    "/varz",
    "/connz",
    "/subsz",
    "/healthz",
    "",
    "/connz/",
    "/nope",
    "/subscriptionsz",
];
/// Caps what one Send action builds (nested repeats grow fast).
const WIRE_MAX_BYTES: usize = 64 * 1024;
/// Bytes a reply, `-ERR` or INFO may add beyond one message.
const SLACK_BYTES: u64 = 1024;

#[derive(Arbitrary, Debug)]
struct Setup {
    max_pending: u8,
    max_payload: u8,
    max_control_line: u8,
    max_connections: u8,
    max_subscriptions: u8,
    ping_interval_ms: u16,
    ping_max: u8,
    write_deadline_ms: u16,
    auth: AuthSetup,
    no_header_support: bool,
    disable_sublist_cache: bool,
    max_closed_clients: u8,
    trace: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum AuthSetup {
    None,
    Token,
    UserPass,
    /// Two users, one with publish/subscribe permissions.
    Users,
    /// The same two users in two accounts (u in A, v in B): clients log
    /// in, log in again as the other, close and come back on reused slots,
    /// and no message may reach a connection that never was in an account
    /// its publisher was ever in.
    Accounts,
}

impl Setup {
    fn options(&self) -> ServerOptions {
        let mut o = ServerOptions {
            max_pending_bytes: MAX_PENDING[usize::from(self.max_pending % 4)],
            max_payload_bytes: MAX_PAYLOAD[usize::from(self.max_payload % 4)],
            max_control_line_bytes: MAX_CONTROL_LINE[usize::from(self.max_control_line % 4)],
            max_connections: u32::from(self.max_connections % 8) + 1,
            max_subscriptions: u32::from(self.max_subscriptions % 8),
            ping_interval: Duration::from_millis(u64::from(self.ping_interval_ms) + 1),
            ping_max: u32::from(self.ping_max % 4),
            write_deadline: Duration::from_millis(u64::from(self.write_deadline_ms) + 1),
            no_header_support: self.no_header_support,
            disable_sublist_cache: self.disable_sublist_cache,
            max_closed_clients: u32::from(self.max_closed_clients % 4),
            trace: self.trace,
            ..ServerOptions::default()
        };
        o.authorization = match self.auth {
            AuthSetup::None => Authorization::default(),
            AuthSetup::Token => Authorization {
                token: Some("s3cret".to_owned()),
                ..Authorization::default()
            },
            AuthSetup::UserPass => Authorization {
                user: Some("u".to_owned()),
                password: Some("p".to_owned()),
                ..Authorization::default()
            },
            AuthSetup::Users => Authorization {
                users: users(),
                ..Authorization::default()
            },
            AuthSetup::Accounts => {
                o.accounts = ["A", "B"]
                    .map(|name| AccountConfig { name: name.to_owned(), ..AccountConfig::default() })
                    .into();
                let mut users = users();
                for (user, account) in users.iter_mut().zip(["A", "B"]) {
                    user.account = Some(account.to_owned());
                }
                Authorization { users, ..Authorization::default() }
            }
        };
        o
    }

    /// The most one connection may have unwritten: twice `max_pending` (a
    /// receiver that drains is not cut before; the node's clock stands
    /// still, so every receiver counts as draining) plus one message (its
    /// payload and control line) plus a reply or two.
    fn pending_bound(&self, o: &ServerOptions) -> u64 {
        2 * o.max_pending_bytes
            + u64::from(o.max_payload_bytes)
            + u64::from(o.max_control_line_bytes)
            + SLACK_BYTES
    }
}

/// The subjects user v may subscribe to (in any queue group but those its
/// queue entries name).
const V_SUBSCRIBE: [&str; 2] = ["a.*", "foo"];

fn users() -> Vec<User> {
    let limited = Permissions {
        publish: Some(SubjectPermission {
            allow: vec!["a.>".to_owned(), "_INBOX.>".to_owned()],
            deny: vec!["a.b".to_owned()],
        }),
        // Queue entries: `a.*` only in group q1, `foo` in any group but q2.
        subscribe: Some(SubjectPermission {
            allow: V_SUBSCRIBE.iter().map(|&s| s.to_owned()).chain(["a.* q1".to_owned()]).collect(),
            deny: vec!["foo q2".to_owned()],
        }),
        // Grants that run out, by count and over time.
        allow_responses: Some(ResponsePermission {
            max_msgs: Some(1),
            expires: Some(Duration::from_secs(1)),
        }),
    };
    vec![
        User {
            user: "u".to_owned(),
            password: Some("p".to_owned()),
            ..User::default()
        },
        User {
            user: "v".to_owned(),
            password: Some("p".to_owned()),
            permissions: Some(limited),
            ..User::default()
        },
    ]
}

/// A subject from [`TOKENS`].
#[derive(Arbitrary, Debug)]
struct Subj(Vec<u8>);

impl Subj {
    fn text(&self) -> String {
        let toks: Vec<&str> = self
            .0
            .iter()
            .take(4)
            .map(|&i| TOKENS[usize::from(i) % TOKENS.len()])
            .collect();
        if toks.is_empty() {
            return "a".to_owned();
        }
        toks.join(".")
    }
}

/// One protocol op a client may send, well-formed or not.
#[derive(Arbitrary, Debug)]
enum Frame {
    Connect {
        verbose: bool,
        pedantic: bool,
        headers: bool,
        echo: bool,
        no_responders: bool,
        cred: u8,
    },
    Sub {
        subject: Subj,
        queue: Option<u8>,
        sid: u8,
    },
    Unsub {
        sid: u8,
        max: Option<u8>,
    },
    Pub {
        subject: Subj,
        reply: Option<Subj>,
        size: u16,
    },
    Hpub {
        subject: Subj,
        reply: Option<Subj>,
        size: u16,
    },
    Ping,
    Pong,
    Raw(Vec<u8>),
    /// The same frame many times in a row (floods of PING, +OK-provoking
    /// PUBs, `-ERR`-provoking SUBs).
    Repeat {
        times: u8,
        frame: Box<Frame>,
    },
}

/// The accounts a connection ever logged in to (bit 0: A as user u, bit
/// 1: B as user v), as the harness sent them. Every publish carries its
/// publisher's as the first payload byte (`b'0' + bits`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Claims(u8);

impl Claims {
    fn tag(self) -> u8 {
        b'0' + self.0
    }

    fn of_tag(byte: u8) -> Option<Claims> {
        (b'1'..=b'3').contains(&byte).then(|| Claims(byte - b'0'))
    }
}

impl Frame {
    fn encode(&self, out: &mut Vec<u8>, claims: &mut Claims) {
        match self {
            Frame::Connect {
                verbose,
                pedantic,
                headers,
                echo,
                no_responders,
                cred,
            } => {
                claims.0 |= match cred % 5 {
                    2 => 1,
                    3 => 2,
                    _ => 0,
                };
                let cred = match cred % 5 {
                    0 => "",
                    1 => r#","auth_token":"s3cret""#,
                    2 => r#","user":"u","pass":"p""#,
                    3 => r#","user":"v","pass":"p""#,
                    _ => r#","user":"u","pass":"wrong""#,
                };
                let json = format!(
                    r#"{{"verbose":{verbose},"pedantic":{pedantic},"headers":{headers},"echo":{echo},"no_responders":{no_responders},"lang":"fuzz"{cred}}}"#
                );
                out.extend_from_slice(format!("CONNECT {json}\r\n").as_bytes());
            }
            Frame::Sub {
                subject,
                queue,
                sid,
            } => {
                let queue = queue.map(|q| format!(" q{}", q % 3)).unwrap_or_default();
                out.extend_from_slice(
                    format!("SUB {}{queue} {}\r\n", subject.text(), sid % 16).as_bytes(),
                );
            }
            Frame::Unsub { sid, max } => {
                let max = max.map(|m| format!(" {}", m % 4)).unwrap_or_default();
                out.extend_from_slice(format!("UNSUB {}{max}\r\n", sid % 16).as_bytes());
            }
            Frame::Pub {
                subject,
                reply,
                size,
            } => {
                let reply = reply
                    .as_ref()
                    .map(|r| format!(" {}", r.text()))
                    .unwrap_or_default();
                let size = usize::from(*size) % 2048;
                out.extend_from_slice(
                    format!("PUB {}{reply} {size}\r\n", subject.text()).as_bytes(),
                );
                push_payload(out, size, b'x', *claims);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Hpub {
                subject,
                reply,
                size,
            } => {
                let reply = reply
                    .as_ref()
                    .map(|r| format!(" {}", r.text()))
                    .unwrap_or_default();
                let headers = b"NATS/1.0\r\nK: v\r\n\r\n";
                let size = usize::from(*size) % 2048;
                let total = headers.len() + size;
                out.extend_from_slice(
                    format!(
                        "HPUB {}{reply} {} {total}\r\n",
                        subject.text(),
                        headers.len()
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(headers);
                push_payload(out, size, b'y', *claims);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Ping => out.extend_from_slice(b"PING\r\n"),
            Frame::Pong => out.extend_from_slice(b"PONG\r\n"),
            Frame::Raw(bytes) => out.extend_from_slice(bytes),
            Frame::Repeat { times, frame } => {
                for _ in 0..usize::from(*times) * 4 {
                    let before = out.len();
                    if before > WIRE_MAX_BYTES {
                        break;
                    }
                    frame.encode(out, claims);
                    // Nested repeats of nothing would loop (4·times)^depth times.
                    if out.len() == before {
                        break;
                    }
                }
            }
        }
    }
}

/// `size` payload bytes: the publisher's claims, then `fill`.
fn push_payload(out: &mut Vec<u8>, size: usize, fill: u8, claims: Claims) {
    if size > 0 {
        out.push(claims.tag());
        out.resize(out.len() + size - 1, fill);
    }
}

/// What the runtime does next.
#[derive(Arbitrary, Debug)]
enum Action {
    Connect,
    /// The frames, concatenated, arrive in reads of the given sizes.
    Send {
        conn: u8,
        frames: Vec<Frame>,
        reads: Vec<u16>,
    },
    /// The socket took `n` bytes (all of them when `all`).
    Written {
        conn: u8,
        n: u16,
        all: bool,
    },
    /// Time passes; timers run as a runtime would run them.
    Advance {
        ms: u32,
    },
    /// The peer hung up.
    Close {
        conn: u8,
    },
    Monitor {
        path: u8,
        query: String,
    },
}

/// A server and the runtime's view of it.
struct Node {
    server: Server,
    now: Instant,
    /// Every connection ever accepted, in order (handles may go stale).
    conns: Vec<ConnId>,
    /// Live connections and their transmitted-but-unwritten bytes.
    live: BTreeMap<ConnId, u64>,
    /// Connections the server closed or the peer closed.
    gone: BTreeSet<ConnId>,
    pending_bound: u64,
    /// With users u and v: what each connection claimed, and the bytes it
    /// was sent not yet split into whole messages.
    accounts: Option<BTreeMap<ConnId, (Claims, Vec<u8>)>>,
    /// u and v are in accounts of their own ([`AuthSetup::Accounts`]).
    isolated: bool,
    /// Messages the account and permission checks have seen.
    checked: u64,
}

impl Node {
    fn new(setup: &Setup) -> Node {
        let opts = setup.options();
        let pending_bound = setup.pending_bound(&opts);
        let server = Server::new(opts, [9; 32], Instant::ZERO, WALL_START);
        let mut node = Node {
            server,
            now: Instant::ZERO,
            conns: Vec::new(),
            live: BTreeMap::new(),
            gone: BTreeSet::new(),
            pending_bound,
            accounts: matches!(setup.auth, AuthSetup::Users | AuthSetup::Accounts)
                .then(BTreeMap::new),
            isolated: matches!(setup.auth, AuthSetup::Accounts),
            checked: 0,
        };
        node.drain();
        node
    }

    fn wall(&self) -> UnixNanos {
        UnixNanos(WALL_START.0 + self.now.as_nanos() as i64)
    }

    /// A handle the runtime might pass: usually a real one, live or stale,
    /// sometimes one the server never issued.
    fn pick(&self, i: u8) -> ConnId {
        match self.conns.get(usize::from(i)) {
            Some(&c) => c,
            None if self.conns.is_empty() || i == 255 => ConnId(1_000 + u64::from(i)),
            None => self.conns[usize::from(i) % self.conns.len()],
        }
    }

    /// Takes every output, checking each against the runtime's view.
    fn drain(&mut self) {
        while let Some(out) = self.server.poll_output() {
            match out {
                Output::Transmit { conn, bytes } => {
                    assert!(!bytes.is_empty(), "empty Transmit to {conn}");
                    let gone = self.gone.contains(&conn);
                    let Some(unwritten) = self.live.get_mut(&conn) else {
                        panic!("Transmit to {conn}, which is not live (closed before: {gone})");
                    };
                    *unwritten += bytes.len() as u64;
                    self.check_accounts(conn, &bytes);
                }
                Output::Close { conn, reason } => {
                    assert!(
                        self.live.remove(&conn).is_some(),
                        "Close({reason}) of {conn}, which is not live"
                    );
                    self.gone.insert(conn);
                }
                Output::Log(event) => {
                    let _ = event;
                }
            }
        }
        assert_eq!(
            self.server.num_clients(),
            self.live.len(),
            "the server and the runtime disagree on live connections"
        );
        for (conn, &unwritten) in &self.live {
            assert!(
                unwritten <= self.pending_bound,
                "{conn} has {unwritten} unwritten bytes, over twice max_pending {} plus one message (bound {})",
                self.server.options().max_pending_bytes,
                self.pending_bound
            );
        }
    }

    fn step(&mut self, action: &Action) {
        match action {
            Action::Connect => self.connect(),
            Action::Send {
                conn,
                frames,
                reads,
            } => self.send(*conn, frames, reads),
            Action::Written { conn, n, all } => {
                let conn = self.pick(*conn);
                let unwritten = self.live.get(&conn).copied().unwrap_or(0);
                let n = if *all {
                    unwritten
                } else {
                    u64::from(*n) % (unwritten + 1)
                };
                self.server.handle_written(self.now, conn, n as usize);
                if let Some(u) = self.live.get_mut(&conn) {
                    *u -= n;
                }
            }
            Action::Advance { ms } => self.advance(Duration::from_millis(u64::from(*ms % 600_000))),
            Action::Close { conn } => {
                let conn = self.pick(*conn);
                self.server
                    .handle_closed(self.now, conn, CloseReason::ClientClosed);
                if self.live.remove(&conn).is_some() {
                    self.gone.insert(conn);
                }
            }
            Action::Monitor { path, query } => {
                let path = PATHS[usize::from(*path) % PATHS.len()];
                self.monitor(path, query);
            }
        }
        self.drain();
    }

    /// No message reaches a connection that was never in an account its
    /// publisher was ever in, nor one only ever of user v on a subject v
    /// may not subscribe to.
    fn check_accounts(&mut self, conn: ConnId, bytes: &[u8]) {
        let isolated = self.isolated;
        let Some((claims, stream)) = self.accounts.as_mut().map(|a| a.entry(conn).or_default()) else {
            return;
        };
        stream.extend_from_slice(bytes);
        let messages = take_messages(stream);
        self.checked += messages.len() as u64;
        for (subject, payload) in messages {
            // Only ever user v: only what v may subscribe to.
            assert!(
                *claims != Claims(2) || v_may_receive(&subject),
                "{conn}, only ever user v, got a message on {:?}",
                String::from_utf8_lossy(&subject)
            );
            let Some(from) = payload.first().copied().and_then(Claims::of_tag) else { continue };
            assert!(
                !isolated || from.0 & claims.0 != 0,
                "{conn}, only ever in accounts {claims:?}, got a message published from {from:?}"
            );
        }
    }

    fn monitor(&mut self, path: &str, query: &str) {
        let (now, wall) = (self.now, self.wall());
        check_response(&mut self.server, now, wall, path, query);
    }

    fn connect(&mut self) {
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("a socket address");
        let conn = self.server.handle_connected(self.now, self.wall(), peer);
        assert!(
            !self.live.contains_key(&conn) && !self.gone.contains(&conn),
            "{conn} issued twice"
        );
        self.conns.push(conn);
        self.live.insert(conn, 0);
    }

    fn send(&mut self, conn: u8, frames: &[Frame], reads: &[u16]) {
        let conn = self.pick(conn);
        let mut wire = Vec::new();
        let mut claims = self.claims(conn);
        for frame in frames.iter().take(256) {
            if wire.len() > WIRE_MAX_BYTES {
                break;
            }
            frame.encode(&mut wire, &mut claims);
        }
        if let Some(accounts) = self.accounts.as_mut() {
            accounts.entry(conn).or_default().0 = claims;
        }
        let wire = Bytes::from(wire);
        let mut at = 0;
        let mut reads = reads.iter();
        while at < wire.len() {
            let n = reads.next().map_or(wire.len() - at, |&n| {
                (usize::from(n) % (wire.len() - at)) + 1
            });
            self.server
                .handle_received(self.now, conn, wire.slice(at..at + n));
            at += n;
            self.drain();
        }
    }

    fn claims(&self, conn: ConnId) -> Claims {
        self.accounts.as_ref().and_then(|a| a.get(&conn)).map(|(c, _)| *c).unwrap_or_default()
    }

    /// Runs each timer at its deadline up to `now + by`, as a runtime's
    /// sleep-until-`poll_timeout` loop would.
    fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        for _ in 0..1_000 {
            let Some(at) = self.server.poll_timeout().filter(|&at| at <= until) else {
                break;
            };
            self.now = at.max(self.now);
            self.server.handle_timeout(self.now);
            let next = self.server.poll_timeout();
            assert!(
                next.is_none_or(|t| t > self.now),
                "timer at {next:?} still due after handle_timeout({:?})",
                self.now
            );
            self.drain();
        }
        self.now = until;
    }
}

/// Input: an `arbitrary` server setup and up to 64 runtime actions.
///
/// Never panics; outputs only name live connections, nothing follows a
/// connection's Close; the server's live set matches the runtime's; no
/// connection's unwritten bytes exceed twice `max_pending` plus one message;
/// timers are never left due; every JSON monitoring answer is valid JSON.
pub fn server_node(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let Ok(actions) = Vec::<Action>::arbitrary(&mut u) else {
        return;
    };
    let mut node = Node::new(&setup);
    for action in actions.iter().take(64) {
        node.step(action);
    }
    node.server.shutdown(node.now);
    node.drain();
    assert!(
        node.live.is_empty(),
        "connections survived shutdown: {:?}",
        node.live
    );
}

/// Whether user v's subscribe allow list ([`users`]) covers a message on
/// `subject`.
fn v_may_receive(subject: &[u8]) -> bool {
    V_SUBSCRIBE.iter().any(|pattern| natrix_core::subject::subject_matches(pattern.as_bytes(), subject))
}

/// Splits the whole MSG/HMSG frames off the front of `stream`; returns their
/// subjects and payloads (without headers). Other lines (INFO, +OK, -ERR, PING, PONG)
/// are dropped; an incomplete frame stays for the next bytes.
fn take_messages(stream: &mut Vec<u8>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut payloads = Vec::new();
    let mut at = 0;
    while let Some(end) = stream[at..].windows(2).position(|w| w == b"\r\n") {
        let line = &stream[at..at + end];
        let words: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let number = |w: &[u8]| std::str::from_utf8(w).ok().and_then(|s| s.parse::<usize>().ok());
        let (header, total) = match words.first().copied() {
            Some(b"MSG") => (0, words.last().copied().and_then(number)),
            Some(b"HMSG") => {
                let header = words.get(words.len().saturating_sub(2)).copied().and_then(number);
                (header.unwrap_or(0), words.last().copied().and_then(number))
            }
            _ => {
                at += end + 2;
                continue;
            }
        };
        let Some(total) = total else { panic!("a MSG line without a size: {:?}", String::from_utf8_lossy(line)) };
        let body = at + end + 2;
        if stream.len() < body + total + 2 {
            break;
        }
        let subject = words.get(1).copied().unwrap_or_default().to_vec();
        payloads.push((subject, stream[body + header.min(total)..body + total].to_vec()));
        at = body + total + 2;
    }
    stream.drain(..at);
    payloads
}

/// Answers `path?query` and checks the answer's shape.
fn check_response(server: &mut Server, now: Instant, wall: UnixNanos, path: &str, query: &str) {
    let process = ProcessStats {
        rss_bytes: 1 << 20,
        cpu_percent: 1.5,
        cores: 2,
    };
    let r = monitor::handle(server, now, wall, &process, path, query);
    match r.status {
        200 | 400 if r.content_type == "application/json" => {
            let value: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_else(|e| {
                panic!(
                    "{path}?{query} gave {} with bad JSON ({e}): {}",
                    r.status, r.body
                )
            });
            if r.status == 400 {
                assert!(
                    value.get("error").is_some(),
                    "400 without an error field: {}",
                    r.body
                );
            }
            if let (Some(conns), Some(limit)) = (value.get("connections"), value.get("limit")) {
                let n = conns.as_array().map_or(0, Vec::len) as u64;
                assert!(
                    n <= limit.as_u64().unwrap_or(u64::MAX),
                    "{n} connections over limit {limit}"
                );
            }
        }
        200 => assert!(
            path.trim_end_matches('/').is_empty(),
            "non-JSON 200 for {path}"
        ),
        404 => {}
        other => panic!("{path}?{query} gave status {other}"),
    }
}

/// Input: NUL-separated path and query string.
///
/// `Query::parse` never panics, refuses over-long input, and (for plain
/// `k=v` pairs) the last value of a key wins; `monitor::handle` on a server
/// with clients, subscriptions and closed connections always answers 200,
/// 400 or 404, with valid JSON where it says JSON.
pub fn monitor_query(data: &[u8]) {
    let fields = nul_fields(data);
    let (path, query) = match fields.as_slice() {
        [query] => ("/connz", query.as_str()),
        [path, query, ..] => (path.as_str(), query.as_str()),
        [] => return,
    };
    check_query(query);
    let mut node = Node::new(&Setup {
        max_pending: 3,
        max_payload: 3,
        max_control_line: 3,
        max_connections: 7,
        max_subscriptions: 0,
        ping_interval_ms: 60_000,
        ping_max: 2,
        write_deadline_ms: 10_000,
        auth: AuthSetup::None,
        no_header_support: false,
        disable_sublist_cache: false,
        max_closed_clients: 3,
        trace: false,
    });
    populate(&mut node);
    node.monitor(path, query);
    for p in PATHS {
        node.monitor(p, query);
    }
}

fn check_query(raw: &str) {
    let parsed = Query::parse(raw);
    if raw.len() > 4096 {
        assert_eq!(parsed, Err(QueryError::TooLong));
        return;
    }
    let q = parsed.unwrap_or_else(|e| panic!("{raw:?} refused: {e}"));
    if raw.contains(['%', '+']) {
        return;
    }
    let mut last = BTreeMap::new();
    for kv in raw.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        last.insert(k, v);
    }
    for (k, v) in last {
        assert_eq!(q.get(k), Some(v), "{raw:?}: {k}");
    }
}

/// Three clients with subscriptions and traffic, and one closed.
fn populate(node: &mut Node) {
    let script: [&[u8]; 4] = [
        b"CONNECT {\"verbose\":false,\"name\":\"one\",\"lang\":\"rust\"}\r\nSUB foo 1\r\nSUB a.* q1 2\r\nSUB > 3\r\nPUB foo 2\r\nhi\r\n",
        b"CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB foo.> 1\r\nHPUB foo.bar 18 20\r\nNATS/1.0\r\nK: v\r\n\r\nok\r\n",
        b"CONNECT {}\r\nSUB a.b q1 9\r\nUNSUB 9 5\r\nPING\r\n",
        b"CONNECT {\"verbose\":false}\r\nSUB x 1\r\n",
    ];
    for wire in script {
        node.connect();
        let conn = *node.conns.last().expect("just connected");
        node.server
            .handle_received(node.now, conn, Bytes::from_static(wire));
        node.drain();
    }
    node.advance(Duration::from_millis(1500));
    let last = *node.conns.last().expect("four clients");
    node.server
        .handle_closed(node.now, last, CloseReason::ClientClosed);
    node.live.remove(&last);
    node.gone.insert(last);
    node.drain();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(auth: AuthSetup) -> Node {
        Node::new(&Setup {
            max_pending: 255,
            max_payload: 255,
            max_control_line: 255,
            max_connections: 7,
            max_subscriptions: 0,
            ping_interval_ms: 60_000,
            ping_max: 2,
            write_deadline_ms: 10_000,
            auth,
            no_header_support: false,
            disable_sublist_cache: false,
            max_closed_clients: 3,
            trace: false,
        })
    }

    /// Logs connection `i` in with credential `cred` (2: u, 3: v), then sends `frames`.
    fn as_user(node: &mut Node, i: u8, cred: u8, frames: Vec<Frame>) {
        let connect = Frame::Connect { verbose: false, pedantic: false, headers: true, echo: true, no_responders: false, cred };
        node.send(i, &[connect].into_iter().chain(frames).chain([Frame::Ping]).collect::<Vec<_>>(), &[]);
    }

    fn sub(tokens: &[u8], sid: u8) -> Frame {
        Frame::Sub { subject: Subj(tokens.to_vec()), queue: None, sid }
    }

    fn publish(tokens: &[u8]) -> Frame {
        Frame::Pub { subject: Subj(tokens.to_vec()), reply: None, size: 4 }
    }

    /// v subscribes to `a.*` and `foo`; u publishes `a.b` and `foo`.
    fn v_hears_u(auth: AuthSetup) -> Node {
        let mut node = node(auth);
        node.connect();
        node.connect();
        as_user(&mut node, 0, 3, vec![sub(&[0, 2], 1), sub(&[4], 2)]);
        as_user(&mut node, 1, 2, vec![publish(&[0, 1]), publish(&[4])]);
        node
    }

    #[test]
    fn deliveries_reach_the_checks() {
        assert_eq!(v_hears_u(AuthSetup::Users).checked, 2, "v gets both messages, and the checks see them");
        assert_eq!(v_hears_u(AuthSetup::Accounts).checked, 0, "nothing crosses from A to B");
    }

    #[test]
    #[should_panic(expected = "only ever user v")]
    fn a_subject_v_may_not_subscribe_to_is_caught() {
        let mut node = v_hears_u(AuthSetup::Users);
        let v = node.pick(0);
        node.check_accounts(v, b"MSG b.b 1 4\r\n2xxx\r\n");
    }

    #[test]
    #[should_panic(expected = "only ever in accounts")]
    fn a_message_from_another_account_is_caught() {
        let mut node = v_hears_u(AuthSetup::Accounts);
        let v = node.pick(0);
        node.check_accounts(v, b"MSG a.b 1 4\r\n1xxx\r\n");
    }
}
