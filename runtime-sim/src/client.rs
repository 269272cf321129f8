//! Simulated NATS clients: publishers, subscribers (plain, wildcard, queue),
//! requesters and responders. They speak the real wire protocol through
//! [`crate::wire`], reconnect after losing their connection, and tell the
//! world what they sent (as [`ModelOp`]s) and what they received.

use std::time::Duration;

use bytes::BytesMut;

use crate::model::{ClientId, ModelOp, MsgKey, ReqKey, Violation};
use crate::rng::SimRng;
use crate::wire::{encode, status, Delivery, ServerOp};

/// What a client does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Publishes to the data subjects.
    Publisher,
    /// Subscribes to filters, some in queue groups, and churns its subscriptions.
    Subscriber,
    /// Sends requests and waits for replies or 503s.
    Requester,
    /// Answers requests, in a queue group or alone.
    Responder,
}

/// Subjects publishers send to.
const SUBJECTS: &[&str] = &[
    "orders.new",
    "orders.old",
    "events.a.b",
    "events.b.b",
    "events.a.c",
    "metrics",
];
/// Filters subscribers pick from, with the queue group they use, if any.
const FILTERS: &[(&str, Option<&str>)] = &[
    ("orders.new", None),
    ("orders.*", None),
    ("orders.*", Some("oq")),
    ("events.>", None),
    ("events.*.b", None),
    ("events.>", Some("eq")),
    ("metrics", None),
    ("metrics", Some("mq")),
    (">", None),
];
/// Services requesters call; responders serve `svc.*`.
const SERVICES: &[&str] = &["svc.a", "svc.b"];
/// The header block `HPUB` sends.
const HEADERS: &[u8] = b"NATS/1.0\r\nSim: 1\r\n\r\n";

/// Bytes to send and the model operations they carry, each with the offset
/// (in `buf`) just past its last byte.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Wire bytes.
    pub buf: BytesMut,
    /// Operations, in order.
    pub ops: Vec<(usize, ModelOp)>,
}

impl Outbox {
    fn op(&mut self, op: ModelOp) {
        self.ops.push((self.buf.len(), op));
    }
}

/// What a received operation meant, for the checkers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A message arrived on `sid`.
    Delivery {
        /// Subscription.
        sid: u64,
        /// Identity of the message.
        key: MsgKey,
        /// Set when this message is a reply to one of our requests.
        reply_to: Option<ReqKey>,
    },
    /// A 503 no-responders status for one of our requests.
    NoResponders(ReqKey),
    /// `-ERR`.
    ServerError(String),
}

/// What a tick asks of the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickAction {
    /// Carry on; tick again after this long.
    Again(Duration),
    /// Close the connection gracefully, reconnect later.
    Disconnect,
    /// Nothing more to do.
    Idle,
}

#[derive(Clone, Debug)]
struct SubSpec {
    subject: String,
    queue: Option<String>,
    sid: u64,
}

/// One simulated client.
#[derive(Debug)]
pub struct Client {
    /// Its id, stable across reconnects.
    pub id: ClientId,
    /// What it does.
    pub role: Role,
    /// The node it connects to.
    pub home: usize,
    rng: SimRng,
    subs: Vec<SubSpec>,
    next_sid: u64,
    next_seq: u64,
    next_req: u64,
    /// PINGs sent on the current connection.
    pub pings_sent: u64,
    /// PONGs received on the current connection.
    pub pongs_received: u64,
    /// True once the server's INFO arrived and CONNECT was sent.
    pub session_started: bool,
    tick_min: Duration,
    tick_max: Duration,
    churn: bool,
}

impl Client {
    /// A client with its subscriptions chosen from `rng`.
    pub fn new(id: ClientId, role: Role, home: usize, mut rng: SimRng, churn: bool) -> Self {
        let (tick_min, tick_max) = match role {
            Role::Publisher => (Duration::from_micros(500), Duration::from_millis(20)),
            Role::Requester => (Duration::from_millis(2), Duration::from_millis(40)),
            Role::Subscriber | Role::Responder => {
                (Duration::from_millis(100), Duration::from_millis(1000))
            }
        };
        let mut c = Client {
            id,
            role,
            home,
            rng: rng.fork(),
            subs: Vec::new(),
            next_sid: 1,
            next_seq: 1,
            next_req: 1,
            pings_sent: 0,
            pongs_received: 0,
            session_started: false,
            tick_min,
            tick_max,
            churn,
        };
        c.choose_subs(&mut rng);
        c
    }

    fn choose_subs(&mut self, rng: &mut SimRng) {
        let specs: Vec<(String, Option<String>)> = match self.role {
            Role::Publisher => Vec::new(),
            Role::Subscriber => (0..rng.range(1, 3))
                .map(|_| FILTERS[rng.index(FILTERS.len())])
                .map(|(s, q)| (s.to_owned(), q.map(str::to_owned)))
                .collect(),
            Role::Requester => vec![(format!("_INBOX.{}.*", self.id), None)],
            Role::Responder if rng.ratio(2, 3) => {
                vec![("svc.*".to_owned(), Some("workers".to_owned()))]
            }
            Role::Responder => vec![(SERVICES[rng.index(SERVICES.len())].to_owned(), None)],
        };
        self.subs = specs
            .into_iter()
            .map(|(subject, queue)| SubSpec {
                subject,
                queue,
                sid: 0,
            })
            .collect();
    }

    /// A new connection is being made: forget the old one's state.
    pub fn reset_session(&mut self) {
        self.session_started = false;
        self.pings_sent = 0;
        self.pongs_received = 0;
    }

    /// Delay before reconnecting.
    pub fn reconnect_delay(&mut self) -> Duration {
        self.rng
            .duration(Duration::from_millis(10), Duration::from_millis(500))
    }

    /// First tick after the session starts.
    pub fn first_tick(&mut self) -> Duration {
        self.rng.duration(Duration::ZERO, self.tick_max)
    }

    fn subscribe(&mut self, i: usize, out: &mut Outbox) {
        let sid = self.next_sid;
        self.next_sid += 1;
        let s = &mut self.subs[i];
        s.sid = sid;
        encode::sub(&mut out.buf, &s.subject, s.queue.as_deref(), sid);
        out.op(ModelOp::Sub {
            sid,
            subject: s.subject.clone(),
            queue: s.queue.clone(),
        });
    }

    fn ping(&mut self, out: &mut Outbox) {
        encode::ping(&mut out.buf);
        self.pings_sent += 1;
    }

    /// The server's INFO arrived: CONNECT, subscribe, PING (as real clients do).
    fn start_session(&mut self, out: &mut Outbox) {
        self.session_started = true;
        encode::connect(&mut out.buf, &format!("sim-{}", self.id));
        for i in 0..self.subs.len() {
            self.subscribe(i, out);
        }
        self.ping(out);
    }

    fn payload(&mut self, key: MsgKey, tail: &str) -> Vec<u8> {
        let mut p = format!("{}.{}|{tail}", key.publisher, key.seq).into_bytes();
        let filler = match self.rng.below(20) {
            0..=11 => self.rng.below(64),
            12..=18 => self.rng.range(64, 2048),
            _ => self.rng.range(2048, 32 * 1024),
        };
        p.resize(p.len() + filler as usize, b'x');
        p
    }

    fn publish(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        tail: &str,
        request: Option<ReqKey>,
        out: &mut Outbox,
    ) {
        let key = MsgKey {
            publisher: self.id,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let payload = self.payload(key, tail);
        let headers = self.rng.ratio(1, 5).then_some(HEADERS);
        encode::publish(&mut out.buf, subject, reply, headers, &payload);
        let reply = reply.map(str::to_owned);
        out.op(ModelOp::Pub {
            subject: subject.to_owned(),
            reply,
            key,
            request,
        });
    }

    /// Time to act. `draining`: the run is winding down, stop creating work.
    pub fn tick(&mut self, out: &mut Outbox, draining: bool) -> TickAction {
        if draining {
            return TickAction::Idle;
        }
        if self.churn && self.rng.ratio(1, 400) {
            return TickAction::Disconnect;
        }
        match self.role {
            Role::Publisher => {
                for _ in 0..self.rng.range(1, 4) {
                    let subject = SUBJECTS[self.rng.index(SUBJECTS.len())];
                    self.publish(subject, None, "", None, out);
                }
            }
            Role::Requester => {
                let n = self.next_req;
                self.next_req += 1;
                let service = SERVICES[self.rng.index(SERVICES.len())];
                let reply = format!("_INBOX.{}.{n}", self.id);
                self.publish(service, Some(&reply), "", Some((self.id, n)), out);
            }
            Role::Subscriber if !self.subs.is_empty() && self.rng.ratio(1, 5) => {
                // Churn: drop one subscription and take it again under a new sid.
                let i = self.rng.index(self.subs.len());
                encode::unsub(&mut out.buf, self.subs[i].sid);
                out.op(ModelOp::Unsub {
                    sid: self.subs[i].sid,
                });
                self.subscribe(i, out);
            }
            Role::Subscriber | Role::Responder => {}
        }
        if self.rng.ratio(1, 20) {
            self.ping(out);
        }
        TickAction::Again(self.rng.duration(self.tick_min, self.tick_max))
    }

    /// Handles one operation from the server.
    pub fn receive(
        &mut self,
        op: ServerOp,
        out: &mut Outbox,
    ) -> Result<Option<Observed>, Violation> {
        match op {
            ServerOp::Info(_) if !self.session_started => {
                self.start_session(out);
                Ok(None)
            }
            ServerOp::Info(_) | ServerOp::Ok => Ok(None),
            ServerOp::Ping => {
                encode::pong(&mut out.buf);
                Ok(None)
            }
            ServerOp::Pong => {
                self.pongs_received += 1;
                if self.pongs_received > self.pings_sent {
                    let d = format!(
                        "client {} got PONG #{} after {} PINGs",
                        self.id, self.pongs_received, self.pings_sent
                    );
                    return Err(Violation {
                        invariant: "ping-pong",
                        detail: d,
                    });
                }
                Ok(None)
            }
            ServerOp::Err(text) => Ok(Some(Observed::ServerError(
                String::from_utf8_lossy(&text).into_owned(),
            ))),
            ServerOp::Msg(d) => self.message(d, out).map(Some),
        }
    }

    fn message(&mut self, d: Delivery, out: &mut Outbox) -> Result<Observed, Violation> {
        let bad = |why: &str| Violation {
            invariant: "well-formed-delivery",
            detail: format!("{why}: {d:?}"),
        };
        let inbox_req = parse_inbox(&d.subject);
        if let Some(h) = &d.headers {
            if status(h) == Some(503) {
                let req = inbox_req
                    .filter(|r| r.0 == self.id)
                    .ok_or_else(|| bad("503 not on our inbox"))?;
                return if d.payload.is_empty() {
                    Ok(Observed::NoResponders(req))
                } else {
                    Err(bad("503 with payload"))
                };
            }
        }
        let (key, tail) =
            parse_payload(&d.payload).ok_or_else(|| bad("payload not from a simulated client"))?;
        if self.role == Role::Responder {
            if let Some(reply) = &d.reply {
                let reply = String::from_utf8_lossy(reply).into_owned();
                let tail = format!("re:{}", String::from_utf8_lossy(&d.subject));
                self.publish(&reply, None, &tail, None, out);
            }
        }
        let reply_to = inbox_req.filter(|r| r.0 == self.id && tail.starts_with(b"re:"));
        Ok(Observed::Delivery {
            sid: d.sid,
            key,
            reply_to,
        })
    }
}

/// `_INBOX.<client>.<n>` to `(client, n)`.
fn parse_inbox(subject: &[u8]) -> Option<ReqKey> {
    let s = std::str::from_utf8(subject).ok()?.strip_prefix("_INBOX.")?;
    let (c, n) = s.split_once('.')?;
    Some((c.parse().ok()?, n.parse().ok()?))
}

/// `<publisher>.<seq>|<tail>` to the key and the tail.
fn parse_payload(payload: &[u8]) -> Option<(MsgKey, &[u8])> {
    let bar = payload.iter().position(|&b| b == b'|')?;
    let head = std::str::from_utf8(&payload[..bar]).ok()?;
    let (p, s) = head.split_once('.')?;
    let key = MsgKey {
        publisher: p.parse().ok()?,
        seq: s.parse().ok()?,
    };
    Some((key, &payload[bar + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ServerParser;
    use bytes::Bytes;

    #[test]
    fn session_start_sends_connect_subs_and_ping() {
        let mut c = Client::new(3, Role::Requester, 0, SimRng::new(1), false);
        let mut out = Outbox::default();
        c.receive(ServerOp::Info(Bytes::from_static(b"{}")), &mut out)
            .unwrap();
        let text = String::from_utf8(out.buf.to_vec()).unwrap();
        assert!(text.starts_with("CONNECT {"), "{text}");
        assert!(
            text.contains("SUB _INBOX.3.* 1\r\n") && text.ends_with("PING\r\n"),
            "{text}"
        );
        assert_eq!(out.ops.len(), 1);
        assert_eq!(out.ops[0].0, text.find("PING").unwrap());
    }

    #[test]
    fn responder_replies_and_requester_recognises_reply_and_503() {
        let mut r = Client::new(7, Role::Responder, 0, SimRng::new(2), false);
        let mut out = Outbox::default();
        let req = ServerOp::Msg(Delivery {
            subject: Bytes::from_static(b"svc.a"),
            sid: 1,
            reply: Some(Bytes::from_static(b"_INBOX.3.9")),
            headers: None,
            payload: Bytes::from_static(b"3.9|"),
        });
        let seen = r.receive(req, &mut out).unwrap();
        assert_eq!(
            seen,
            Some(Observed::Delivery {
                sid: 1,
                key: MsgKey {
                    publisher: 3,
                    seq: 9
                },
                reply_to: None
            })
        );
        let mut p = ServerParser::new();
        p.push(&out.buf.to_vec().replace_pub_with_msg());
        let (op, _) = p.next_frame().unwrap().unwrap();
        let mut q = Client::new(3, Role::Requester, 0, SimRng::new(3), false);
        let seen = q.receive(op, &mut Outbox::default()).unwrap();
        let Some(Observed::Delivery { reply_to, .. }) = seen else {
            panic!("{seen:?}")
        };
        assert_eq!(reply_to, Some((3, 9)));
        let status = ServerOp::Msg(Delivery {
            subject: Bytes::from_static(b"_INBOX.3.4"),
            sid: 1,
            reply: None,
            headers: Some(Bytes::from_static(b"NATS/1.0 503\r\n\r\n")),
            payload: Bytes::new(),
        });
        assert_eq!(
            q.receive(status, &mut Outbox::default()).unwrap(),
            Some(Observed::NoResponders((3, 4)))
        );
    }

    /// Turns the responder's `PUB`/`HPUB` into the `MSG`/`HMSG` a server would deliver on sid 1.
    trait PubToMsg {
        fn replace_pub_with_msg(&self) -> Vec<u8>;
    }

    impl PubToMsg for Vec<u8> {
        fn replace_pub_with_msg(&self) -> Vec<u8> {
            let text = String::from_utf8_lossy(self).into_owned();
            let (line, rest) = text.split_once("\r\n").unwrap();
            let mut f: Vec<&str> = line.split(' ').collect();
            let verb = if f[0] == "HPUB" { "HMSG" } else { "MSG" };
            f[0] = verb;
            f.insert(2, "1");
            format!("{}\r\n{rest}", f.join(" ")).into_bytes()
        }
    }

    #[test]
    fn pong_without_ping_is_a_violation() {
        let mut c = Client::new(1, Role::Publisher, 0, SimRng::new(4), false);
        assert!(c.receive(ServerOp::Pong, &mut Outbox::default()).is_err());
    }
}
