//! A server in operator mode under the NATS resolver, with its directory on
//! an in-memory disk, fed the system account's requests: claim updates,
//! lookups, lists and deletes with valid, mutated and damaged JWTs, and
//! monitoring requests with random JSON options; plus JWT users logging in
//! and random `/accountz`, `/connz`, `/subsz` and `/varz` queries.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine;
use bytes::Bytes;
use natrix_core::config::{Resolver, ResolverDelete, ServerOptions};
use natrix_core::monitor::{self, ProcessStats};
use natrix_core::server::CloseReason;
use natrix_core::storage::MemStorage;
use natrix_core::{ConnId, Instant, Output, Server, UnixNanos};
use serde_json::{json, Value};

use super::auth::{
    keys, sign, Json, JwtSpec, Text, ACC_A, ACC_SIGNER, NOW_UNIX, OPERATOR, OPERATOR_SIGNER, SYS,
    USER_U,
};

const WALL_START: UnixNanos = UnixNanos(NOW_UNIX * 1_000_000_000);
/// Where the server's replies go; no request is published there.
const REPLY: &str = "_R";
/// Most bytes one step may send all clients together: far above any
/// honest answer, far below what a runaway would build.
const STEP_OUTPUT_MAX: usize = 64 << 20;

/// The disk under the resolver directory: syncs complete when the fuzzer
/// says, and it fails the writes it is told to.
type Disk = MemStorage;

/// How the server is set up.
#[derive(Arbitrary, Debug)]
struct Setup {
    cache: bool,
    delete: u8,
    limit: Option<u8>,
    /// Extra claims of account A's preloaded JWT.
    account_a: Vec<(u8, Json)>,
}

/// The `$SYS` subjects the server answers; `{}` is an account.
const SUBJECTS: &[&str] = &[
    "$SYS.REQ.CLAIMS.UPDATE",
    "$SYS.REQ.CLAIMS.LIST",
    "$SYS.REQ.CLAIMS.DELETE",
    "$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE",
    "$SYS.ACCOUNT.{}.CLAIMS.UPDATE",
    "$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP",
    "$SYS.REQ.SERVER.PING.CONNZ",
    "$SYS.REQ.SERVER.PING.SUBSZ",
    "$SYS.REQ.SERVER.PING.ACCOUNTZ",
    "$SYS.REQ.SERVER.PING.HEALTHZ",
    "$SYS.REQ.SERVER.PING.IDZ",
    "$SYS.REQ.SERVER.{}.IDZ",
    "$SYS.REQ.ACCOUNT.{}.CONNZ",
    "$SYS.REQ.ACCOUNT.{}.SUBSZ",
    "$SYS.REQ.ACCOUNT.{}.STATZ",
    "$SYS.REQ.ACCOUNT.{}.INFO",
    "$SYS.REQ.ACCOUNT.{}.CONNS",
    "$SYS.REQ.ACCOUNT.PING.STATZ",
    "$SYS.REQ.ACCOUNT.PING.CONNZ",
    "$SYS.REQ.USER.INFO",
    "$SYS.REQ.USER.{}.INFO",
];

/// Monitoring option names (nats-server's JSON).
const OPTIONS: &[&str] = &[
    "sort",
    "auth",
    "subscriptions",
    "subscriptions_detail",
    "offset",
    "limit",
    "state",
    "acc",
    "account",
    "accounts",
    "test",
    "include_unused",
    "server_name",
    "cluster",
    "host",
    "exact_match",
    "tags",
    "domain",
];

const PATHS: &[&str] = &["/accountz", "/connz", "/subsz", "/varz", "/accstatz"];
const QUERY_KEYS: &[&str] = &[
    "acc", "auth", "subs", "limit", "offset", "state", "sort", "cid", "user", "test", "unused",
];

#[derive(Arbitrary, Debug)]
enum Body {
    Empty,
    Options(Vec<(u8, Json)>),
    /// A claim update: an account JWT (unless `any_kind`), maybe mutated.
    Account {
        spec: JwtSpec,
        any_kind: bool,
    },
    /// A delete request signed by `signer` for `subject`.
    Delete {
        signer: u8,
        subject: u8,
        accounts: Vec<Text>,
        extra: Option<Json>,
    },
    Raw(Vec<u8>),
}

impl Body {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Empty => Vec::new(),
            Body::Options(o) => {
                let map: serde_json::Map<String, Value> = o
                    .iter()
                    .take(8)
                    .map(|(k, v)| (OPTIONS[usize::from(*k) % OPTIONS.len()].to_owned(), v.get()))
                    .collect();
                Value::Object(map).to_string().into_bytes()
            }
            Body::Account { spec, any_kind } => {
                let mut spec = spec.clone();
                if !any_kind {
                    spec.kind = 1;
                }
                spec.encode().into_bytes()
            }
            Body::Delete {
                signer,
                subject,
                accounts,
                extra,
            } => {
                let k = keys();
                let list: Vec<String> = accounts.iter().take(8).map(Text::get).collect();
                let mut nats = json!({"type": "generic", "accounts": list});
                if let Some(extra) = extra {
                    nats["accounts"] = extra.get();
                }
                let claims = json!({"jti": "D", "iat": NOW_UNIX, "iss": k.key(*signer).public_key(),
                    "sub": k.key(*subject).public_key(), "nats": nats});
                sign(k.key(*signer), claims.to_string().as_bytes()).into_bytes()
            }
            Body::Raw(b) => b.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Action {
    /// A request published by the system user (or a user of account A).
    Request {
        subject: u8,
        account: Text,
        any_subject: Option<String>,
        reply: bool,
        body: Body,
        from_user: bool,
    },
    /// Every sync asked for so far completes (or only up to some token).
    Sync {
        all: bool,
        token: u8,
    },
    /// The next storage operations fail.
    FailStorage(u8),
    Advance {
        secs: u32,
    },
    /// A client logs in with this user JWT, signing the nonce as `signer`.
    Login {
        user: JwtSpec,
        signer: u8,
    },
    Close {
        conn: u8,
    },
    Monitor {
        path: u8,
        query: Vec<(u8, Text)>,
        raw: Option<String>,
    },
}

/// The server, its disk and the runtime's view of the connections.
struct Node {
    server: Server,
    disk: Disk,
    now: Instant,
    /// Live connections and what they were sent in this step.
    live: BTreeMap<ConnId, Vec<u8>>,
    /// How much of each buffer holds complete messages already checked.
    checked: BTreeMap<ConnId, usize>,
    conns: Vec<ConnId>,
    system: ConnId,
    user: Option<ConnId>,
}

fn options(setup: &Setup) -> ServerOptions {
    let k = keys();
    let operator = sign(
        &k.all[OPERATOR],
        json!({"jti": "O", "iat": NOW_UNIX, "iss": k.public(OPERATOR), "sub": k.public(OPERATOR),
               "name": "OP", "nats": {"type": "operator", "version": 2,
               "signing_keys": [k.public(OPERATOR_SIGNER)], "system_account": k.public(SYS)}})
        .to_string()
        .as_bytes(),
    );
    let unlimited = json!({"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                           "wildcards": true, "conn": -1, "leaf": -1});
    let account = |key: usize, extra: Value| {
        let mut claims = json!({"jti": format!("A{key}"), "iat": NOW_UNIX - 60, "iss": k.public(OPERATOR),
            "sub": k.public(key), "name": format!("ACC{key}"),
            "nats": {"type": "account", "version": 2, "limits": unlimited}});
        if let (Some(n), Some(e)) = (claims["nats"].as_object_mut(), extra.as_object()) {
            n.extend(e.clone());
        }
        claims
    };
    let mut a = account(
        ACC_A,
        json!({"signing_keys": [k.public(ACC_SIGNER)],
               "exports": [{"subject": "a.>", "type": "service"}, {"subject": "s.>", "type": "stream"}]}),
    );
    a["iss"] = json!(k.public(OPERATOR_SIGNER));
    for (field, value) in setup.account_a.iter().take(4) {
        let key = ["exp", "tags", "limits", "revocations"][usize::from(*field) % 4];
        a["nats"][key] = value.get();
        if key == "exp" {
            a["exp"] = value.get();
        }
    }
    let preload = [
        (
            k.public(SYS),
            sign(
                &k.all[OPERATOR],
                account(SYS, json!({})).to_string().as_bytes(),
            ),
        ),
        (
            k.public(ACC_A),
            sign(&k.all[OPERATOR_SIGNER], a.to_string().as_bytes()),
        ),
    ];
    let delete = [
        ResolverDelete::Refuse,
        ResolverDelete::Rename,
        ResolverDelete::Remove,
    ][usize::from(setup.delete) % 3];
    ServerOptions {
        operators: vec![operator],
        system_account: Some(k.public(SYS)),
        resolver: Some(Resolver::Nats {
            dir: Some("./jwt".to_owned()),
            cache: setup.cache,
            delete,
            limit: setup.limit.map(|l| u64::from(l % 8)),
            interval: None,
            timeout: None,
            ttl: None,
        }),
        resolver_preload: preload.into_iter().collect(),
        ..ServerOptions::default()
    }
}

/// A user JWT of `account` signed by `issuer`, for the user key `user`.
fn user_jwt(issuer: usize, account: usize, user: usize) -> String {
    let k = keys();
    let claims = json!({"jti": "U", "iat": NOW_UNIX - 60, "iss": k.public(issuer),
        "sub": k.public(user), "name": "u",
        "nats": {"type": "user", "version": 2, "issuer_account": k.public(account),
                 "subs": -1, "data": -1, "payload": -1}});
    sign(&k.all[issuer], claims.to_string().as_bytes())
}

impl Node {
    fn new(setup: &Setup) -> Node {
        let disk = Disk::default();
        let server = Server::with_storage(
            options(setup),
            [7; 32],
            Instant::ZERO,
            WALL_START,
            Box::new(disk.clone()),
        );
        let mut node = Node {
            server,
            disk,
            now: Instant::ZERO,
            live: BTreeMap::new(),
            checked: BTreeMap::new(),
            conns: Vec::new(),
            system: ConnId(0),
            user: None,
        };
        node.drain();
        node.sync(true, 0);
        let system = node.login(&user_jwt(SYS, SYS, USER_U), USER_U);
        let answer = node.take_text(system);
        assert!(
            answer.ends_with("PONG\r\n"),
            "the system user cannot log in: {answer}"
        );
        node.system = system;
        let user = node.login(&user_jwt(ACC_SIGNER, ACC_A, USER_U + 1), USER_U + 1);
        node.user = Some(user);
        node.take_text(user);
        node
    }

    fn wall(&self) -> UnixNanos {
        UnixNanos(WALL_START.0 + self.now.as_nanos() as i64)
    }

    /// Connects, answers the nonce of the INFO with `signer`'s signature,
    /// and subscribes to the reply subject.
    fn login(&mut self, jwt: &str, signer: usize) -> ConnId {
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("a socket address");
        let conn = self.server.handle_connected(self.now, self.wall(), peer);
        self.conns.push(conn);
        self.live.insert(conn, Vec::new());
        self.drain();
        let info = self.take_text(conn);
        let nonce = info
            .strip_prefix("INFO ")
            .and_then(|i| serde_json::from_str::<Value>(i.trim()).ok())
            .and_then(|v| v["nonce"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let sig = keys().all[signer % keys().all.len()]
            .sign(nonce.as_bytes())
            .expect("signing works");
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig);
        let connect = json!({"jwt": jwt, "sig": sig, "verbose": false, "headers": false});
        let wire = format!("CONNECT {connect}\r\nSUB {REPLY} 1\r\nPING\r\n");
        self.server
            .handle_received(self.now, conn, Bytes::from(wire.into_bytes()));
        self.drain();
        conn
    }

    fn take_text(&mut self, conn: ConnId) -> String {
        self.checked.remove(&conn);
        let bytes = self
            .live
            .get_mut(&conn)
            .map(std::mem::take)
            .unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Takes every output; the runtime writes everything at once.
    fn drain(&mut self) {
        let mut sent = 0;
        while let Some(out) = self.server.poll_output() {
            match out {
                Output::Transmit { conn, bytes } => {
                    let Some(buffer) = self.live.get_mut(&conn) else {
                        panic!("Transmit to {conn}, which is not live");
                    };
                    sent += bytes.len();
                    assert!(sent <= STEP_OUTPUT_MAX, "{sent} bytes sent in one step");
                    buffer.extend_from_slice(&bytes);
                    self.server.handle_written(self.now, conn, bytes.len());
                }
                Output::Close { conn, .. } => {
                    let Some(rest) = self.live.remove(&conn) else {
                        panic!("Close of {conn}, which is not live");
                    };
                    let checked = self.checked.remove(&conn).unwrap_or(0);
                    check_messages(&rest[checked.min(rest.len())..]);
                }
                Output::Log(_) => {}
            }
        }
        assert_eq!(self.server.num_clients(), self.live.len());
        for (conn, buffer) in &self.live {
            let checked = self.checked.entry(*conn).or_default();
            *checked += check_messages(&buffer[*checked..]);
        }
    }

    /// Completes the syncs asked for so far (all, or the oldest few).
    fn sync(&mut self, all: bool, token: u8) {
        let tokens = if all { self.disk.complete_syncs() } else { self.disk.complete_oldest(usize::from(token % 4) + 1) };
        if !tokens.is_empty() {
            self.server.handle_synced(self.now, &tokens);
        }
        self.drain();
    }

    fn step(&mut self, action: &Action) {
        match action {
            Action::Request {
                subject,
                account,
                any_subject,
                reply,
                body,
                from_user,
            } => {
                let subject = match any_subject {
                    Some(s) => one_subject(s),
                    None => one_subject(
                        &SUBJECTS[usize::from(*subject) % SUBJECTS.len()]
                            .replace("{}", &account.get()),
                    ),
                };
                let conn = if *from_user {
                    self.user.unwrap_or(self.system)
                } else {
                    self.system
                };
                self.publish(conn, &subject, *reply, &body.bytes());
            }
            Action::Sync { all, token } => self.sync(*all, *token),
            Action::FailStorage(n) => self.disk.fail_next(u32::from(n % 4)),
            Action::Advance { secs } => self.advance(*secs),
            Action::Login { user, signer } => {
                if self.conns.len() < 16 {
                    let jwt = user.encode();
                    let conn = self.login(&jwt, usize::from(*signer));
                    let _ = self.take_text(conn);
                }
            }
            Action::Close { conn } => {
                if let Some(&conn) = self.conns.get(usize::from(*conn) % self.conns.len().max(1)) {
                    self.server
                        .handle_closed(self.now, conn, CloseReason::ClientClosed);
                    self.live.remove(&conn);
                    self.checked.remove(&conn);
                }
            }
            Action::Monitor { path, query, raw } => {
                let path = PATHS[usize::from(*path) % PATHS.len()];
                let query = raw.clone().unwrap_or_else(|| query_string(query));
                self.monitor(path, &query);
            }
        }
        self.drain();
        for (conn, buffer) in &mut self.live {
            let checked = self.checked.remove(conn).unwrap_or(0);
            buffer.drain(..checked);
        }
    }

    /// Time passes; timers run as a runtime would run them.
    fn advance(&mut self, secs: u32) {
        self.now = self.now + Duration::from_secs(u64::from(secs % 400_000_000));
        for _ in 0..100 {
            let Some(at) = self.server.poll_timeout().filter(|&at| at <= self.now) else {
                break;
            };
            self.server.handle_timeout(self.now.max(at));
            self.drain();
        }
        let due = self.server.poll_timeout().filter(|&at| at <= self.now);
        assert!(
            due.is_none(),
            "a timer at {due:?} stays due at {:?}",
            self.now
        );
    }

    fn publish(&mut self, conn: ConnId, subject: &str, reply: bool, payload: &[u8]) {
        if !self.live.contains_key(&conn) {
            return;
        }
        let reply = if reply {
            format!(" {REPLY}")
        } else {
            String::new()
        };
        let mut wire = format!("PUB {subject}{reply} {}\r\n", payload.len()).into_bytes();
        wire.extend_from_slice(payload);
        wire.extend_from_slice(b"\r\n");
        self.server
            .handle_received(self.now, conn, Bytes::from(wire));
    }

    fn monitor(&mut self, path: &str, query: &str) {
        let process = ProcessStats {
            rss_bytes: 1 << 20,
            cpu_percent: 0.5,
            cores: 2,
        };
        let wall = self.wall();
        let r = monitor::handle(&mut self.server, self.now, wall, &process, path, query);
        match r.status {
            200 | 400 if r.content_type == "application/json" => {
                if let Err(e) = serde_json::from_str::<Value>(&r.body) {
                    panic!("{path}?{query}: bad JSON ({e}): {}", r.body);
                }
            }
            200 | 400 | 404 => {}
            other => panic!("{path}?{query} gave status {other}"),
        }
    }
}

/// A monitoring query string from picked keys and values.
fn query_string(pairs: &[(u8, Text)]) -> String {
    let pairs: Vec<String> = pairs
        .iter()
        .take(8)
        .map(|(k, v)| {
            let key = QUERY_KEYS[usize::from(*k) % QUERY_KEYS.len()];
            format!("{key}={}", v.get())
        })
        .collect();
    pairs.join("&")
}

/// `s` as one subject token of a PUB line (no separators, no line breaks
/// that would smuggle in other ops), and never the reply subject, which
/// carries only the server's answers.
fn one_subject(s: &str) -> String {
    let s: String = s
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_ascii_control())
        .collect();
    if s.starts_with(REPLY) || s.is_empty() {
        format!("x{s}")
    } else {
        s
    }
}

/// Checks each complete MSG in `buffer`: a system reply is JSON, or a JWT
/// (a lookup), or empty. Returns how many bytes were complete.
fn check_messages(buffer: &[u8]) -> usize {
    let mut at = 0;
    while let Some(end) = find_crlf(&buffer[at..]) {
        let line = &buffer[at..at + end];
        let mut next = at + end + 2;
        if let Some(args) = line.strip_prefix(b"MSG ") {
            let args = String::from_utf8_lossy(args);
            let len: usize = args
                .split(' ')
                .next_back()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("bad MSG line {args:?}"));
            if buffer.len() < next + len + 2 {
                return at;
            }
            check_reply(&buffer[next..next + len]);
            next += len + 2;
        }
        at = next;
    }
    at
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

fn check_reply(payload: &[u8]) {
    // A lookup's answer is the JWT itself (or nothing).
    if payload.first() != Some(&b'{') {
        let parts = payload.split(|&b| b == b'.').count();
        assert!(
            payload.is_empty() || parts == 3,
            "a system reply is neither JSON nor a JWT: {}",
            String::from_utf8_lossy(payload)
        );
        return;
    }
    if let Err(e) = serde_json::from_slice::<Value>(payload) {
        panic!(
            "a system reply is not JSON ({e}): {}",
            String::from_utf8_lossy(payload)
        );
    }
}

/// Input: an `arbitrary` resolver setup and up to 48 actions: system
/// requests (claim updates, lookups, lists, deletes, monitoring) with
/// valid, mutated and damaged JWTs and random JSON options, sync
/// completions, storage failures, time passing, JWT logins, hang-ups and
/// HTTP monitoring queries.
///
/// Never panics or hangs; outputs only name live connections; every system
/// reply is JSON (a lookup's is the JWT); every HTTP JSON answer is valid;
/// no step sends more than 64 MiB; no timer stays due.
pub fn system_requests(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let Ok(actions) = Vec::<Action>::arbitrary(&mut u) else {
        return;
    };
    let mut node = Node::new(&setup);
    for action in actions.iter().take(48) {
        node.step(action);
    }
    node.sync(true, 0);
    node.monitor("/accountz", "");
    node.server.shutdown(node.now);
    node.drain();
    assert!(node.live.is_empty(), "connections survived shutdown");
}
