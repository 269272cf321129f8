//! One consumer: its configuration, where it is in its stream, what it
//! delivered and what is still unacknowledged, its waiting pull requests,
//! and the decisions of delivery, acknowledgement and redelivery.
//!
//! A consumer is a state machine of its own, like a stream: it is fed pull
//! requests, acknowledgements, the clock and its stream's store (to read
//! messages from), and answers with [`Delivery`]s for the control plane to
//! publish. It knows nothing of connections or accounts.

pub mod advisories;
pub mod api;
pub mod config;
pub(crate) mod persist;
pub mod priority;
pub mod pull;
pub mod state;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::{Bytes, BytesMut};

use crate::jetstream::headers;
use crate::jetstream::store::{MsgStore, StoredMsg};
use crate::subject::subject_matches;
use crate::time::UnixNanos;

pub use config::{AckPolicy, ConsumerConfig, DeliverPolicy, PriorityPolicy, ReplayPolicy};
use pull::{NextRequest, Waiting};
pub use state::{ConsumerState, Pending, SeqPair};

/// A message for the control plane to publish for a consumer: a delivery
/// (routed on the deliver subject or the pull request's reply, shown with
/// the stored message's subject) or a status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The subject it is routed on.
    pub to: Bytes,
    /// The subject subscribers see (the stored one, or `to` for a status).
    pub subject: Bytes,
    /// The ack subject, if any.
    pub reply: Option<Bytes>,
    /// The header block.
    pub headers: Option<Bytes>,
    /// The payload.
    pub payload: Bytes,
}

/// Something a consumer announces on `$JS.EVENT.ADVISORY.CONSUMER.…`
/// (nats-server's delivery advisories).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A delivery was negatively acknowledged (`MSG_NAKED`).
    Nak {
        /// The delivery's consumer sequence.
        consumer_seq: u64,
        /// Its stream sequence.
        stream_seq: u64,
        /// How many times it was delivered.
        deliveries: u64,
    },
    /// A delivery was terminated (`MSG_TERMINATED`).
    Terminated {
        /// The delivery's consumer sequence.
        consumer_seq: u64,
        /// Its stream sequence.
        stream_seq: u64,
        /// How many times it was delivered.
        deliveries: u64,
        /// The reason given after `+TERM`, if any.
        reason: String,
    },
    /// The consumer was paused or resumed (`PAUSE`): by request, by an
    /// update, at creation, or because its pause ran out.
    Pause {
        /// Paused now.
        paused: bool,
        /// Until when (none once resumed by request).
        until: Option<UnixNanos>,
    },
    /// A client was pinned in a priority group (`PINNED`).
    Pinned {
        /// The group.
        group: String,
        /// The client's pin id.
        id: String,
    },
    /// A priority group's pinned client lost its pin (`UNPINNED`).
    Unpinned {
        /// The group.
        group: String,
        /// `"timeout"` or `"admin"`.
        reason: &'static str,
    },
    /// A message was delivered `max_deliver` times and is given up on (`MAX_DELIVERIES`).
    MaxDeliveries {
        /// Its stream sequence.
        stream_seq: u64,
        /// How many times it was delivered.
        deliveries: u64,
    },
}

/// Most events a consumer holds before the control plane takes them
/// (it takes them after every input; past this the oldest are dropped,
/// as advisories are best effort).
const EVENTS_MAX: usize = 4096;

/// What a client's message on a consumer's ack subject asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AckKind {
    /// `+ACK` (or an empty body).
    Ack,
    /// `-NAK`, with a redelivery delay in nanoseconds.
    Nak(i64),
    /// `+WPI`: still working, restart the ack wait.
    Progress,
    /// `+NXT`: ack, and a pull request for more.
    Next(NextRequest),
    /// `+TERM`, with the reason given after it: never redeliver.
    Term(String),
}

impl AckKind {
    /// Reads an ack body as nats-server does; `None` for what it ignores.
    pub fn parse(body: &[u8]) -> Option<AckKind> {
        let body = body.trim_ascii();
        if body.is_empty() || body.starts_with(b"+ACK") {
            return Some(AckKind::Ack);
        }
        if let Some(rest) = body.strip_prefix(b"-NAK") {
            return Some(AckKind::Nak(nak_delay(rest.trim_ascii())));
        }
        if body.starts_with(b"+WPI") {
            return Some(AckKind::Progress);
        }
        if let Some(rest) = body.strip_prefix(b"+NXT") {
            return NextRequest::parse(rest.trim_ascii()).ok().map(AckKind::Next);
        }
        if let Some(rest) = body.strip_prefix(b"+TERM") {
            return Some(AckKind::Term(String::from_utf8_lossy(rest.trim_ascii()).into_owned()));
        }
        None
    }
}

/// `-NAK {"delay":ns}` or `-NAK 1s`.
fn nak_delay(rest: &[u8]) -> i64 {
    #[derive(serde::Deserialize)]
    struct Delay {
        #[serde(default)]
        delay: i64,
    }
    if rest.first() == Some(&b'{') {
        return serde_json::from_slice::<Delay>(rest).map_or(0, |d| d.delay.max(0));
    }
    let text = std::str::from_utf8(rest).unwrap_or("");
    parse_go_duration(text).unwrap_or(0)
}

/// A subset of Go's `time.ParseDuration`: `500ms`, `2s`, `1m`, `1h`, `10us`, `10ns`.
fn parse_go_duration(text: &str) -> Option<i64> {
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (num, unit) = text.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    };
    Some((n * scale) as i64)
}

/// An ack subject's fields (`$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`,
/// or the domain form with two more tokens in front and one behind).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckSubject<'a> {
    /// The stream.
    pub stream: &'a str,
    /// The consumer.
    pub consumer: &'a str,
    /// How many times the message was delivered.
    pub delivered: u64,
    /// Its stream sequence.
    pub stream_seq: u64,
    /// Its consumer sequence.
    pub consumer_seq: u64,
}

impl<'a> AckSubject<'a> {
    /// Parses an ack subject; `None` if it is not one.
    pub fn parse(subject: &'a str) -> Option<AckSubject<'a>> {
        let rest = subject.strip_prefix("$JS.ACK.")?;
        // At most ten tokens, gathered without allocating: this runs once
        // per acknowledged message.
        let mut t = [""; 10];
        let mut count = 0;
        for token in rest.split('.') {
            if count == t.len() {
                return None;
            }
            t[count] = token;
            count += 1;
        }
        let at = match count {
            7 => 0,
            9..=10 => 2,
            _ => return None,
        };
        let n = |i: usize| t[at + i].parse::<u64>().ok();
        Some(AckSubject { stream: t[at], consumer: t[at + 1], delivered: n(2)?, stream_seq: n(3)?, consumer_seq: n(4)? })
    }
}

/// One consumer (see the [module](self) documentation).
#[derive(Debug)]
pub struct Consumer {
    stream: String,
    name: String,
    config: ConsumerConfig,
    created: UnixNanos,
    filters: Vec<Bytes>,
    /// The push deliver subject (empty for a pull consumer), shared by
    /// every delivery.
    deliver_to: Bytes,
    state: ConsumerState,
    /// Next stream sequence to look at for new messages.
    next_seq: u64,
    /// Unacked deliveries by ack deadline: (deadline, stream sequence).
    deadlines: BTreeSet<(i64, u64)>,
    /// Each entry of `deadlines` by stream sequence, to remove it in O(log n).
    deadline_of: BTreeMap<u64, i64>,
    /// Messages to redeliver, in order.
    redeliver: VecDeque<u64>,
    /// `last_per_subject`: the sequences to deliver up to `lps_until`.
    lps: Option<(BTreeSet<u64>, u64)>,
    waiting: VecDeque<Waiting>,
    out: VecDeque<Delivery>,
    events: VecDeque<(UnixNanos, Event)>,
    /// When a pull request or delivery last happened, for `inactive_threshold`.
    last_active: UnixNanos,
    /// Next push idle heartbeat.
    next_push_heartbeat: Option<UnixNanos>,
    /// State changed since it was last saved.
    dirty: bool,
    /// Push consumers: something subscribes to the deliver subject.
    interest: bool,
    /// Delivery waits for `pause_until` to pass.
    held_by_pause: bool,
    /// Push flow control: bytes delivered and not yet covered by a response,
    /// the current window, and the outstanding request (reply, bytes it covers).
    fc_pending_bytes: u64,
    fc_window_bytes: u64,
    fc_outstanding: Option<(Bytes, u64)>,
    fc_requests: u64,
    /// The next delivery waits until then (for `replay_policy: original`
    /// or `rate_limit_bps`); once that time comes it goes without waiting again.
    hold_until: Option<UnixNanos>,
    /// When the pause runs out, to announce it.
    pause_timer: Option<UnixNanos>,
    /// `replay_policy: original`: armed until the first pump, then the
    /// stream sequence the replay runs to (nats-server replays at the
    /// original pace until it has caught up with the stream's last
    /// message as of the start, then delivers instantly).
    replay_armed: bool,
    replay_until_seq: Option<u64>,
    /// Timestamp of the last message delivered during the replay.
    replay_last_time: Option<UnixNanos>,
    /// `rate_limit_bps`: a token bucket in bytes, as Go's `rate.Limiter`
    /// (burst: the stream's largest message, or the server's max payload).
    rate: RateLimiter,
    /// `pinned_client`: the client pinned now.
    pin: Option<priority::Pin>,
    /// Pin ids made so far (an input of the next one).
    pins_made: u64,
    /// Where ack reply subjects are written: each delivery's is split off
    /// it, so a run of deliveries shares one allocation.
    reply_buf: BytesMut,
}

/// A token bucket of bytes: `burst` tokens at most, refilled at
/// `bytes_per_sec`; a reservation may take it below zero, and the one
/// who made it waits until it would be paid back.
#[derive(Debug, Clone, Copy)]
struct RateLimiter {
    bytes_per_sec: u64,
    burst_bytes: u64,
    tokens: f64,
    last: Option<UnixNanos>,
}

impl RateLimiter {
    fn new(bits_per_sec: u64, burst_bytes: u64) -> RateLimiter {
        let burst_bytes = burst_bytes.max(1);
        RateLimiter { bytes_per_sec: bits_per_sec / 8, burst_bytes, tokens: burst_bytes as f64, last: None }
    }

    fn enabled(&self) -> bool {
        self.bytes_per_sec > 0
    }

    /// Takes `bytes` at `wall`; how long (ns) the delivery must wait.
    fn reserve(&mut self, bytes: u64, wall: UnixNanos) -> i64 {
        if !self.enabled() {
            return 0;
        }
        let rate = self.bytes_per_sec as f64;
        let elapsed_s = self.last.map_or(0.0, |l| (wall.0.saturating_sub(l.0)).max(0) as f64 / 1e9);
        self.tokens = (self.tokens + elapsed_s * rate).min(self.burst_bytes as f64);
        self.last = Some(wall);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            0
        } else {
            (-self.tokens / rate * 1e9).ceil() as i64
        }
    }
}

/// Server max payload, the default burst of a rate-limited consumer.
const RATE_BURST_DEFAULT_BYTES: u64 = 1024 * 1024;

/// Most bytes a flow-controlled push consumer has outstanding
/// (nats-server's `JsFlowControlMaxPending`); the window starts at a 16th.
const FC_LIMIT_BYTES: u64 = 32 * 1024 * 1024;

impl Consumer {
    /// A new consumer of `stream` (named `name`), starting where its
    /// deliver policy says in `store`.
    pub fn new(stream: &str, name: &str, config: ConsumerConfig, created: UnixNanos, store: &mut dyn MsgStore) -> Consumer {
        let mut c = Consumer::restore(stream, name, config, created, ConsumerState::default());
        c.start(store);
        c.dirty = true;
        if let Some(until) = c.config.pause_until.filter(|&t| t > created) {
            c.pause_timer = Some(until);
            c.event(created, Event::Pause { paused: true, until: Some(until) });
        }
        c
    }

    /// A consumer with saved `state`, as recovered after a restart.
    pub fn restore(stream: &str, name: &str, config: ConsumerConfig, created: UnixNanos, state: ConsumerState) -> Consumer {
        let filters = config.filters().into_iter().map(Bytes::from).collect();
        let next_seq = state.delivered.stream_seq + 1;
        let deliver_to = Bytes::from(config.deliver_subject.clone());
        let mut c = Consumer {
            stream: stream.to_owned(),
            name: name.to_owned(),
            config,
            created,
            filters,
            deliver_to,
            state,
            next_seq,
            deadlines: BTreeSet::new(),
            deadline_of: BTreeMap::new(),
            redeliver: VecDeque::new(),
            lps: None,
            waiting: VecDeque::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            last_active: created,
            next_push_heartbeat: None,
            dirty: false,
            interest: false,
            held_by_pause: false,
            fc_pending_bytes: 0,
            fc_window_bytes: FC_LIMIT_BYTES / 16,
            fc_outstanding: None,
            fc_requests: 0,
            hold_until: None,
            pause_timer: None,
            replay_armed: false,
            replay_until_seq: None,
            replay_last_time: None,
            rate: RateLimiter::new(0, RATE_BURST_DEFAULT_BYTES),
            pin: None,
            pins_made: 0,
            reply_buf: BytesMut::new(),
        };
        c.replay_armed = c.config.replay_policy == ReplayPolicy::Original;
        c.rate = RateLimiter::new(c.config.rate_limit, RATE_BURST_DEFAULT_BYTES);
        // What was unacknowledged is redelivered once its ack wait, counted
        // from its delivery before the restart, runs out.
        let due: Vec<(i64, u64)> = c
            .state
            .pending
            .iter()
            .map(|(&seq, p)| {
                let deliveries = c.state.redelivered.get(&seq).copied().unwrap_or(1);
                (p.timestamp.saturating_add(c.ack_wait_for(deliveries)), seq)
            })
            .collect();
        for (at, seq) in due {
            c.set_deadline(seq, at);
        }
        c
    }

    /// After a restart, brings a recovered consumer back within its
    /// stream when the stream lost messages (a crash before their sync)
    /// and now ends at `stream_last_seq`, below what the consumer
    /// delivered: what it delivered or acknowledged beyond that is
    /// forgotten, so that the messages the stream stores next under the
    /// same sequences are delivered, and none of them is taken for an
    /// earlier message (after nats-server's `reconcileStateWithStream`).
    ///
    /// Unlike nats-server, the delivered pointer goes back to the stream's
    /// end, not to the highest pending message: every message up to the
    /// stream's end was delivered, and those not pending were acknowledged
    /// (and maybe confirmed to the client), so they must not go out again.
    /// Consumer sequences are not reused either: the next delivery follows
    /// the highest one handed out. Returns true when it changed the state.
    pub fn reconcile_with_stream(&mut self, stream_last_seq: u64) -> bool {
        if self.state.delivered.stream_seq <= stream_last_seq {
            return false;
        }
        let st = &mut self.state;
        if st.ack_floor.stream_seq > stream_last_seq {
            st.ack_floor.stream_seq = stream_last_seq;
            st.ack_floor.consumer_seq = st.delivered.consumer_seq;
            st.pending.clear();
            st.redelivered.clear();
        }
        st.pending.retain(|&seq, _| seq <= stream_last_seq);
        st.redelivered.retain(|&seq, _| seq <= stream_last_seq);
        st.delivered.stream_seq = stream_last_seq;
        if st.pending.is_empty() {
            // Nothing is outstanding: everything delivered is acknowledged.
            st.ack_floor.stream_seq = stream_last_seq;
            st.ack_floor.consumer_seq = st.delivered.consumer_seq;
        }
        self.next_seq = stream_last_seq + 1;
        let gone: Vec<u64> = self.deadline_of.keys().copied().filter(|s| !self.state.pending.contains_key(s)).collect();
        for seq in gone {
            self.clear_deadline(seq);
        }
        self.redeliver.retain(|s| self.state.pending.contains_key(s));
        self.dirty = true;
        true
    }

    fn start(&mut self, store: &mut dyn MsgStore) {
        let s = store.state();
        let first = s.first_seq.max(1);
        self.next_seq = match self.config.deliver_policy {
            DeliverPolicy::All => first,
            DeliverPolicy::New => s.last_seq + 1,
            DeliverPolicy::Last => self.last_matching(store).unwrap_or(s.last_seq + 1),
            DeliverPolicy::ByStartSequence => self.config.opt_start_seq.max(1),
            DeliverPolicy::ByStartTime => first_at_or_after(self.config.opt_start_time.unwrap_or_default(), store),
            DeliverPolicy::LastPerSubject => {
                let mut lasts = BTreeSet::new();
                for f in self.filter_list() {
                    for subject in store.subject_counts(f).into_keys() {
                        if let Ok(Some(m)) = store.load_last(&subject) {
                            lasts.insert(m.seq);
                        }
                    }
                }
                let start = lasts.first().copied().unwrap_or(s.last_seq + 1);
                self.lps = Some((lasts, s.last_seq));
                start
            }
        };
        let floor = self.next_seq.saturating_sub(1);
        self.state.delivered = SeqPair { consumer_seq: 0, stream_seq: floor, last_active: None };
        self.state.ack_floor = SeqPair { consumer_seq: 0, stream_seq: floor, last_active: None };
    }

    fn filter_list(&self) -> &[Bytes] {
        /// A consumer without filters takes every subject.
        static ALL: [Bytes; 1] = [Bytes::from_static(b">")];
        if self.filters.is_empty() {
            &ALL
        } else {
            &self.filters
        }
    }

    fn last_matching(&self, store: &mut dyn MsgStore) -> Option<u64> {
        self.filter_list().iter().filter_map(|f| store.load_last(f).ok().flatten().map(|m| m.seq)).max()
    }

    /// True when `subject` passes the consumer's filters.
    pub fn matches(&self, subject: &[u8]) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| subject_matches(f, subject))
    }

    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// When it was created.
    pub fn created(&self) -> UnixNanos {
        self.created
    }

    /// Its delivery and acknowledgement state.
    pub fn state(&self) -> &ConsumerState {
        &self.state
    }

    /// Waiting pull requests.
    pub fn num_waiting(&self) -> usize {
        self.waiting.len()
    }

    /// True when its state changed since [`Consumer::take_dirty`] last said so.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Pauses delivery until `until` (`None` resumes), as `CONSUMER.PAUSE` asks.
    pub fn pause(&mut self, until: Option<UnixNanos>, wall: UnixNanos, store: &mut dyn MsgStore) {
        self.pause_changed(until, wall);
        self.config.pause_until = until;
        self.config.set_static_metadata();
        self.held_by_pause = false;
        self.dirty = true;
        self.pump(store, wall);
    }

    /// Announces a change of `pause_until`, and arms the timer that
    /// announces its end.
    fn pause_changed(&mut self, until: Option<UnixNanos>, wall: UnixNanos) {
        if until == self.config.pause_until {
            return;
        }
        let paused = until.is_some_and(|t| t > wall);
        self.pause_timer = until.filter(|_| paused);
        self.event(wall, Event::Pause { paused, until });
    }

    /// True while paused, and for how long still (ns).
    pub fn paused(&self, wall: UnixNanos) -> Option<i64> {
        self.config.pause_until.filter(|t| *t > wall).map(|t| t.0 - wall.0)
    }

    /// Replaces the mutable parts of the configuration (an update).
    pub fn update(&mut self, config: ConsumerConfig, wall: UnixNanos) {
        self.pause_changed(config.pause_until, wall);
        self.filters = config.filters().into_iter().map(Bytes::from).collect();
        self.deliver_to = Bytes::from(config.deliver_subject.clone());
        if config.rate_limit != self.config.rate_limit {
            self.rate = RateLimiter::new(config.rate_limit, self.rate.burst_bytes);
        }
        // A pin belongs to a pinned_client consumer and to one of its groups.
        if config.priority_policy != PriorityPolicy::PinnedClient || self.pin.as_ref().is_some_and(|p| !config.priority_groups.contains(&p.group)) {
            self.pin = None;
        }
        self.config = config;
    }

    /// The burst of `rate_limit_bps`: the largest message the stream may
    /// hold (its `max_msg_size`, else the server's max payload).
    pub fn set_rate_burst(&mut self, burst_bytes: u64) {
        self.rate = RateLimiter::new(self.config.rate_limit, burst_bytes);
    }

    /// The next message to publish.
    pub fn poll_delivery(&mut self) -> Option<Delivery> {
        self.out.pop_front()
    }

    /// The next event to announce, with when it happened.
    pub fn poll_event(&mut self) -> Option<(UnixNanos, Event)> {
        self.events.pop_front()
    }

    fn event(&mut self, at: UnixNanos, event: Event) {
        if self.events.len() >= EVENTS_MAX {
            self.events.pop_front();
        }
        self.events.push_back((at, event));
    }

    /// Messages the consumer has yet to deliver for the first time.
    pub fn num_pending(&self, store: &mut dyn MsgStore) -> u64 {
        let s = store.state();
        let from = self.next_seq.max(s.first_seq);
        if from > s.last_seq || s.msgs == 0 {
            return 0;
        }
        if self.filters.is_empty() && self.lps.is_none() {
            if from <= s.first_seq {
                return s.msgs;
            }
            let gone = if s.num_deleted == 0 { 0 } else { store.deleted().iter().filter(|&&d| d >= from).count() as u64 };
            return (s.last_seq - from + 1).saturating_sub(gone);
        }
        if from <= s.first_seq && self.lps.is_none() {
            return self.filters.iter().map(|f| store.subject_counts(f).values().sum::<u64>()).sum();
        }
        let mut n = 0;
        let mut seq = from;
        while let Some(m) = self.next_new(store, seq) {
            n += 1;
            seq = m.seq + 1;
        }
        n
    }

    /// The first message at or after `seq` that the consumer delivers.
    fn next_new(&self, store: &mut dyn MsgStore, mut seq: u64) -> Option<StoredMsg> {
        loop {
            let m = self.filter_list().iter().filter_map(|f| store.load_next(f, seq).ok().flatten()).min_by_key(|m| m.seq)?;
            match &self.lps {
                Some((lasts, until)) if m.seq <= *until && !lasts.contains(&m.seq) => seq = m.seq + 1,
                _ => return Some(m),
            }
        }
    }

    /// Sets (or moves) the ack deadline of `seq`.
    fn set_deadline(&mut self, seq: u64, at: i64) {
        self.clear_deadline(seq);
        self.deadlines.insert((at, seq));
        self.deadline_of.insert(seq, at);
    }

    fn clear_deadline(&mut self, seq: u64) {
        if let Some(at) = self.deadline_of.remove(&seq) {
            self.deadlines.remove(&(at, seq));
        }
    }

    fn ack_wait_for(&self, deliveries: u64) -> i64 {
        if self.config.backoff.is_empty() {
            return self.config.ack_wait.max(1);
        }
        let i = usize::try_from(deliveries.saturating_sub(1)).unwrap_or(usize::MAX).min(self.config.backoff.len() - 1);
        self.config.backoff[i].max(1)
    }

    /// A pull request received at `wall` with `reply` as its inbox.
    pub fn handle_pull(&mut self, reply: Bytes, body: &[u8], wall: UnixNanos, store: &mut dyn MsgStore) {
        self.last_active = wall;
        if self.config.is_push() {
            self.status(reply, pull::status(409, "Consumer is push based"));
            return;
        }
        let req = match NextRequest::parse(body) {
            Ok(r) => r,
            Err(e) => {
                self.status(reply, pull::status(400, &format!("Bad Request - {e}")));
                return;
            }
        };
        let cfg = &self.config;
        if cfg.max_request_batch > 0 && req.batch > cfg.max_request_batch {
            let text = format!("Exceeded MaxRequestBatch of {}", cfg.max_request_batch);
            self.status(reply, pull::status(409, &text));
            return;
        }
        if req.expires > 0 && cfg.max_request_expires > 0 && req.expires > cfg.max_request_expires {
            let text = format!("Exceeded MaxRequestExpires of {}", config::go_duration(cfg.max_request_expires));
            self.status(reply, pull::status(409, &text));
            return;
        }
        if req.max_bytes > 0 && cfg.max_request_max_bytes > 0 && req.max_bytes > cfg.max_request_max_bytes {
            let text = format!("Exceeded MaxRequestMaxBytes of {}", cfg.max_request_max_bytes);
            self.status(reply, pull::status(409, &text));
            return;
        }
        if let Some(status) = self.check_priority_request(&req, wall) {
            self.status(reply, status);
            return;
        }
        if req.no_wait && req.expires == 0 && self.redeliver.is_empty() && self.num_pending(store) == 0 {
            self.status(reply, pull::status(404, "No Messages"));
            return;
        }
        let max_waiting = usize::try_from(self.config.max_waiting).unwrap_or(0).max(1);
        if self.waiting.len() >= max_waiting {
            if req.idle_heartbeat == 0 {
                self.status(reply, pull::status(409, "Exceeded MaxWaiting"));
            }
            return;
        }
        self.enqueue_waiting(Waiting::new(reply, &req, wall));
        self.pump(store, wall);
    }

    fn status(&mut self, to: Bytes, headers: Bytes) {
        self.out.push_back(Delivery { subject: to.clone(), to, reply: None, headers: Some(headers), payload: Bytes::new() });
    }

    /// True when nothing more may be delivered for the first time until acks come.
    fn ack_pending_full(&self) -> bool {
        self.config.ack_policy != AckPolicy::None
            && self.config.max_ack_pending > 0
            && self.state.pending.len() as i64 >= self.config.max_ack_pending
    }

    /// The next message to deliver, without taking it: a redelivery first.
    fn peek(&mut self, store: &mut dyn MsgStore, wall: UnixNanos) -> Option<(StoredMsg, bool)> {
        while let Some(&seq) = self.redeliver.front() {
            if self.state.pending.contains_key(&seq) && self.give_up_if_delivered_enough(seq, wall) {
                self.redeliver.pop_front();
                continue;
            }
            match store.load(seq).ok().flatten() {
                Some(m) if self.state.pending.contains_key(&seq) => return Some((m, true)),
                _ => {
                    // Acked meanwhile, or gone from the stream.
                    self.redeliver.pop_front();
                    if self.state.pending.remove(&seq).is_some() {
                        self.state.redelivered.remove(&seq);
                        self.dirty = true;
                        self.update_ack_floor();
                    }
                }
            }
        }
        if self.ack_pending_full() {
            return None;
        }
        self.next_new(store, self.next_seq).map(|m| (m, false))
    }

    /// Delivers what can be delivered now: to the push subject, or to the
    /// waiting pull requests in turn (round-robin, one message each).
    pub fn pump(&mut self, store: &mut dyn MsgStore, wall: UnixNanos) {
        let mut pending_count: Option<u64> = None;
        loop {
            if self.config.pause_until.is_some_and(|t| t > wall) {
                self.held_by_pause = true;
                break;
            }
            if !self.config.is_push() {
                // A request whose time is up gets its 408 rather than a
                // message, even when its timer has not fired yet, as
                // nats-server checks a request's expiry before serving it.
                self.drop_expired_front(wall);
                if self.waiting.is_empty() {
                    break;
                }
            }
            // A push consumer delivers only while someone listens, as nats-server.
            if self.config.is_push() && !self.interest {
                break;
            }
            if self.config.flow_control && self.fc_pending_bytes > self.fc_window_bytes {
                break;
            }
            if self.hold_until.is_some_and(|t| t > wall) {
                break;
            }
            let Some((msg, redelivery)) = self.peek(store, wall) else { break };
            let ack_reply_len = 40 + self.stream.len() + self.name.len();
            let size = (msg.subject.len() + msg.headers.as_ref().map_or(0, Bytes::len) + msg.payload.len() + ack_reply_len) as u64;
            if self.must_wait(&msg, size, store, wall) {
                break;
            }
            let to = if self.config.is_push() {
                self.deliver_to.clone()
            } else {
                if self.config.priority_policy != PriorityPolicy::None {
                    let counted = pending_count.map(|n| n + u64::from(redelivery));
                    if !self.select_waiting(counted, redelivery, store, wall) {
                        break;
                    }
                }
                let w = self.waiting.front_mut().expect("checked not empty");
                if w.bytes_limited && size > w.bytes_left {
                    let status = w.status_with_pending(409, "Message Size Exceeds MaxBytes");
                    let w = self.waiting.pop_front().expect("front exists");
                    self.status(w.reply, status);
                    continue;
                }
                w.reply.clone()
            };
            if redelivery {
                self.redeliver.pop_front();
            } else {
                let n = match pending_count {
                    Some(n) => n,
                    None => self.num_pending(store),
                };
                pending_count = Some(n.saturating_sub(1));
                self.next_seq = msg.seq + 1;
            }
            let remaining = match pending_count {
                Some(n) => n,
                None => self.num_pending(store),
            };
            pending_count = Some(remaining);
            if self.replay_until_seq.is_some() {
                self.replay_last_time = Some(msg.time);
            }
            self.deliver(to, msg, redelivery, remaining, wall);
            if !self.config.is_push() {
                self.after_pull_delivery(size, wall);
            } else if self.config.flow_control {
                self.fc_pending_bytes += size;
                self.maybe_request_flow_control();
            }
        }
        if self.replay_until_seq.is_some_and(|until| self.next_seq > until) && self.hold_until.is_none() {
            // Caught up with the stream as it was: deliveries are instant from now on.
            self.replay_until_seq = None;
        }
        self.finish_no_wait();
    }

    /// Whether the delivery of `msg` (`size` bytes) must wait: during a
    /// replay at the original pace, until as long after the last one as
    /// it was stored after it; with a rate limit, until its bytes are paid
    /// for. A delivery that waited goes once its time has come.
    fn must_wait(&mut self, msg: &StoredMsg, size: u64, store: &mut dyn MsgStore, wall: UnixNanos) -> bool {
        if let Some(t) = self.hold_until {
            if t <= wall {
                self.hold_until = None;
                return false;
            }
            return true;
        }
        if self.replay_armed {
            self.replay_armed = false;
            self.replay_until_seq = Some(store.state().last_seq);
        }
        let mut wait_ns = 0;
        if let (Some(_), Some(last)) = (self.replay_until_seq, self.replay_last_time) {
            // As nats-server, gaps of a millisecond or less are not kept.
            let gap = msg.time.0.saturating_sub(last.0);
            if gap > 1_000_000 {
                wait_ns = gap;
            }
        }
        wait_ns = wait_ns.max(self.rate.reserve(size, wall));
        if wait_ns <= 0 {
            return false;
        }
        self.hold_until = Some(UnixNanos(wall.0.saturating_add(wait_ns)));
        true
    }

    /// Counts a pull delivery against the front request and moves it to the back.
    fn after_pull_delivery(&mut self, size: u64, wall: UnixNanos) {
        let Some(mut w) = self.waiting.pop_front() else { return };
        w.batch_left = w.batch_left.saturating_sub(1);
        w.delivered += 1;
        if w.bytes_limited {
            w.bytes_left = w.bytes_left.saturating_sub(size);
        }
        if w.heartbeat_ns > 0 {
            w.next_heartbeat = Some(UnixNanos(wall.0.saturating_add(w.heartbeat_ns)));
        }
        let bytes_done = w.bytes_limited && w.bytes_left == 0;
        if w.batch_left > 0 && !bytes_done {
            self.requeue_waiting(w);
        }
    }

    /// `no_wait` requests end with `404 No Messages` once nothing more is there.
    fn finish_no_wait(&mut self) {
        if self.hold_until.is_some() {
            // A message is there, only held back: it goes when its time comes.
            return;
        }
        let mut kept = VecDeque::with_capacity(self.waiting.len());
        for w in std::mem::take(&mut self.waiting) {
            if w.no_wait && (w.expires_at.is_none() || w.delivered > 0) {
                self.status(w.reply, pull::status(404, "No Messages"));
            } else {
                kept.push_back(w);
            }
        }
        self.waiting = kept;
    }

    fn deliver(&mut self, to: Bytes, msg: StoredMsg, redelivery: bool, remaining: u64, wall: UnixNanos) {
        let dseq = self.state.delivered.consumer_seq + 1;
        self.state.delivered.consumer_seq = dseq;
        self.state.delivered.stream_seq = self.state.delivered.stream_seq.max(msg.seq);
        self.state.delivered.last_active = Some(wall);
        self.last_active = wall;
        self.dirty = true;
        let deliveries = if redelivery {
            let n = self.state.redelivered.entry(msg.seq).or_insert(1);
            *n += 1;
            *n
        } else {
            1
        };
        let reply = self.ack_reply(deliveries, msg.seq, dseq, msg.time.0, remaining);
        if self.config.ack_policy == AckPolicy::None {
            self.state.ack_floor = SeqPair { consumer_seq: dseq, stream_seq: msg.seq, last_active: None };
        } else {
            self.state.pending.insert(msg.seq, Pending { consumer_seq: dseq, timestamp: wall.0 });
            // Flow control acks have no ack wait: nothing is redelivered
            // on a timer, the next flow control answer acks it.
            if self.config.ack_policy != AckPolicy::FlowControl {
                let deadline = wall.0.saturating_add(self.ack_wait_for(deliveries));
                self.set_deadline(msg.seq, deadline);
            }
        }
        let (mut hdrs, payload) = if self.config.headers_only {
            let size = msg.payload.len().to_string();
            (Some(headers::append(msg.headers.as_deref(), &[(b"Nats-Msg-Size", size.as_bytes())])), Bytes::new())
        } else {
            (msg.headers, msg.payload)
        };
        if let Some(pin) = self.pin_id().filter(|_| !self.config.is_push()) {
            hdrs = Some(headers::append(hdrs.as_deref(), &[(b"Nats-Pin-Id", pin.as_bytes())]));
        }
        if self.config.heartbeat > 0 {
            self.next_push_heartbeat = Some(UnixNanos(wall.0.saturating_add(self.config.heartbeat)));
        }
        self.out.push_back(Delivery { to, subject: msg.subject, reply: Some(reply), headers: hdrs, payload });
    }

    /// `$JS.ACK.<stream>.<consumer>.<deliveries>.<stream seq>.<consumer seq>.<time>.<pending>`,
    /// the reply subject of a delivery.
    fn ack_reply(&mut self, deliveries: u64, seq: u64, dseq: u64, time: i64, pending: u64) -> Bytes {
        /// Room for this many replies is taken at once.
        const REPLIES_PER_CHUNK: usize = 64;
        let len = 8 + self.stream.len() + 1 + self.name.len() + 5 * 21;
        if self.reply_buf.capacity() < len {
            self.reply_buf.reserve(len * REPLIES_PER_CHUNK);
        }
        let mut digits = itoa::Buffer::new();
        let buf = &mut self.reply_buf;
        buf.extend_from_slice(b"$JS.ACK.");
        buf.extend_from_slice(self.stream.as_bytes());
        buf.extend_from_slice(b".");
        buf.extend_from_slice(self.name.as_bytes());
        for n in [deliveries, seq, dseq] {
            buf.extend_from_slice(b".");
            buf.extend_from_slice(digits.format(n).as_bytes());
        }
        buf.extend_from_slice(b".");
        buf.extend_from_slice(digits.format(time).as_bytes());
        buf.extend_from_slice(b".");
        buf.extend_from_slice(digits.format(pending).as_bytes());
        buf.split().freeze()
    }

    /// An acknowledgement of the delivery described by `ack`. Returns
    /// true when it changed the consumer's state.
    pub fn handle_ack(&mut self, ack: &AckSubject<'_>, kind: AckKind, reply: Option<Bytes>, wall: UnixNanos, store: &mut dyn MsgStore) -> bool {
        let seq = ack.stream_seq;
        let changed = match kind {
            AckKind::Ack => self.ack(seq, wall),
            AckKind::Next(req) => {
                let acked = self.ack(seq, wall);
                if let Some(reply) = reply {
                    let body = serde_json::to_vec(&serde_json::json!({
                        "batch": req.batch, "expires": req.expires, "no_wait": req.no_wait, "max_bytes": req.max_bytes,
                    }))
                    .unwrap_or_default();
                    self.handle_pull(reply, &body, wall, store);
                }
                acked
            }
            AckKind::Term(reason) => {
                let acked = self.ack(seq, wall);
                let (consumer_seq, deliveries) = (ack.consumer_seq, ack.delivered);
                self.event(wall, Event::Terminated { consumer_seq, stream_seq: seq, deliveries, reason });
                acked
            }
            AckKind::Progress => {
                if self.state.pending.contains_key(&seq) {
                    let deliveries = self.state.redelivered.get(&seq).copied().unwrap_or(1);
                    self.set_deadline(seq, wall.0.saturating_add(self.ack_wait_for(deliveries)));
                }
                false
            }
            AckKind::Nak(delay) => {
                if self.state.pending.contains_key(&seq) {
                    let (consumer_seq, deliveries) = (ack.consumer_seq, ack.delivered);
                    self.event(wall, Event::Nak { consumer_seq, stream_seq: seq, deliveries });
                    self.clear_deadline(seq);
                    if delay > 0 {
                        self.set_deadline(seq, wall.0.saturating_add(delay));
                    } else if !self.redeliver.contains(&seq) {
                        self.redeliver.push_back(seq);
                    }
                }
                false
            }
        };
        self.pump(store, wall);
        changed
    }

    fn ack(&mut self, seq: u64, wall: UnixNanos) -> bool {
        let acked: Vec<u64> = match self.config.ack_policy {
            AckPolicy::None => return false,
            AckPolicy::Explicit => self.state.pending.contains_key(&seq).then_some(seq).into_iter().collect(),
            AckPolicy::All | AckPolicy::FlowControl => self.state.pending.range(..=seq).map(|(&s, _)| s).collect(),
        };
        if acked.is_empty() {
            return false;
        }
        for s in &acked {
            self.state.pending.remove(s);
            self.state.redelivered.remove(s);
        }
        for &s in &acked {
            self.clear_deadline(s);
        }
        self.state.ack_floor.last_active = Some(wall);
        self.update_ack_floor();
        self.dirty = true;
        true
    }

    fn update_ack_floor(&mut self) {
        let last = self.state.ack_floor.last_active;
        self.state.ack_floor = match self.state.pending.iter().next() {
            None => SeqPair {
                consumer_seq: self.state.delivered.consumer_seq,
                stream_seq: self.state.delivered.stream_seq,
                last_active: last,
            },
            Some((&sseq, p)) => SeqPair {
                consumer_seq: p.consumer_seq.saturating_sub(1).max(self.state.ack_floor.consumer_seq),
                stream_seq: (sseq - 1).max(self.state.ack_floor.stream_seq),
                last_active: last,
            },
        };
    }

    /// True when `seq` was delivered and acknowledged.
    pub fn has_acked(&self, seq: u64) -> bool {
        seq <= self.state.delivered.stream_seq && !self.state.pending.contains_key(&seq) && seq < self.next_seq
    }

    /// When the consumer next needs [`Consumer::handle_timeout`].
    pub fn next_deadline(&self) -> Option<UnixNanos> {
        let acks = self.deadlines.first().map(|&(at, _)| UnixNanos(at));
        let pulls = self.waiting.iter().filter_map(Waiting::deadline).min();
        let hb = if self.config.is_push() { self.next_push_heartbeat } else { None };
        let paused = self.config.pause_until.filter(|_| self.held_by_pause);
        [acks, pulls, hb, paused, self.hold_until, self.pause_timer, self.pin_deadline()].into_iter().flatten().min()
    }

    /// Runs the clock: redeliveries, expired pull requests, heartbeats.
    pub fn handle_timeout(&mut self, wall: UnixNanos, store: &mut dyn MsgStore) {
        if self.config.pause_until.is_none_or(|t| t <= wall) {
            self.held_by_pause = false;
        }
        if self.pause_timer.is_some_and(|t| t <= wall) {
            self.pause_timer = None;
            self.event(wall, Event::Pause { paused: false, until: self.config.pause_until });
        }
        while let Some(&(at, seq)) = self.deadlines.first() {
            if at > wall.0 {
                break;
            }
            self.deadlines.pop_first();
            self.deadline_of.remove(&seq);
            if !self.state.pending.contains_key(&seq) {
                continue;
            }
            if self.give_up_if_delivered_enough(seq, wall) {
                continue;
            }
            if !self.redeliver.contains(&seq) {
                self.redeliver.push_back(seq);
            }
        }
        self.expire_pulls(wall);
        self.expire_pin(wall);
        if self.config.is_push() && self.next_push_heartbeat.is_some_and(|t| t <= wall) {
            let hb = pull::heartbeat(self.state.delivered.consumer_seq, self.state.delivered.stream_seq);
            self.status(self.deliver_to.clone(), hb);
            self.next_push_heartbeat = Some(UnixNanos(wall.0.saturating_add(self.config.heartbeat)));
        }
        self.pump(store, wall);
    }

    /// A pending message delivered `max_deliver` times is no longer
    /// pending, and a `MAX_DELIVERIES` advisory says so. True if so.
    fn give_up_if_delivered_enough(&mut self, seq: u64, wall: UnixNanos) -> bool {
        let deliveries = self.state.redelivered.get(&seq).copied().unwrap_or(1);
        if self.config.max_deliver <= 0 || deliveries < self.config.max_deliver as u64 {
            return false;
        }
        self.state.pending.remove(&seq);
        self.state.redelivered.remove(&seq);
        self.clear_deadline(seq);
        self.update_ack_floor();
        self.dirty = true;
        self.event(wall, Event::MaxDeliveries { stream_seq: seq, deliveries });
        true
    }

    /// Ends the requests at the front of the line that expired by `wall`.
    fn drop_expired_front(&mut self, wall: UnixNanos) {
        while self.waiting.front().is_some_and(|w| w.expires_at.is_some_and(|t| t <= wall)) {
            let w = self.waiting.pop_front().expect("front exists");
            let status = w.status_with_pending(408, "Request Timeout");
            self.status(w.reply, status);
        }
    }

    fn expire_pulls(&mut self, wall: UnixNanos) {
        let mut kept = VecDeque::with_capacity(self.waiting.len());
        for mut w in std::mem::take(&mut self.waiting) {
            if w.expires_at.is_some_and(|t| t <= wall) {
                let status = w.status_with_pending(408, "Request Timeout");
                self.status(w.reply, status);
                continue;
            }
            if w.next_heartbeat.is_some_and(|t| t <= wall) {
                let hb = pull::heartbeat(self.state.delivered.consumer_seq, self.state.delivered.stream_seq);
                self.status(w.reply.clone(), hb);
                w.next_heartbeat = Some(UnixNanos(wall.0.saturating_add(w.heartbeat_ns)));
            }
            kept.push_back(w);
        }
        self.waiting = kept;
    }

    /// Starts push heartbeats (once created).
    pub fn start_heartbeats(&mut self, wall: UnixNanos) {
        if self.config.is_push() && self.config.heartbeat > 0 {
            self.next_push_heartbeat = Some(UnixNanos(wall.0.saturating_add(self.config.heartbeat)));
        }
    }

    /// True when an ephemeral consumer (or one with `inactive_threshold`)
    /// has been idle long enough to be removed: a pull consumer without
    /// requests, a push consumer without interest.
    pub fn inactive(&self, wall: UnixNanos) -> bool {
        self.inactive_at().is_some_and(|at| at <= wall)
    }

    /// When [`Consumer::inactive`] may next become true.
    pub fn inactive_at(&self) -> Option<UnixNanos> {
        let threshold = self.config.inactive_threshold;
        let idle = if self.config.is_push() { !self.interest } else { self.waiting.is_empty() };
        (threshold > 0 && idle).then(|| UnixNanos(self.last_active.0.saturating_add(threshold)))
    }

    /// True for a push consumer that does not know of interest in its deliver subject.
    pub fn wants_interest(&self) -> bool {
        self.config.is_push() && !self.interest
    }

    /// True for a push consumer with interest (`push_bound`).
    pub fn push_bound(&self) -> bool {
        self.config.is_push() && self.interest
    }

    /// Whether something subscribes to the deliver subject; deliveries
    /// resume when interest comes.
    pub fn set_interest(&mut self, interest: bool, wall: UnixNanos, store: &mut dyn MsgStore) {
        if self.interest != interest {
            self.last_active = wall;
        }
        self.interest = interest;
        if interest {
            self.pump(store, wall);
        }
    }

    /// Marks the consumer as in use (a push consumer with interest).
    pub fn touch(&mut self, wall: UnixNanos) {
        self.last_active = wall;
    }

    /// Nobody received what went to `to`: the pull requests answered there
    /// are dropped (their client is gone), and the message `seq`, if still
    /// unacknowledged, goes first in line again.
    pub fn undelivered(&mut self, to: &[u8], seq: Option<u64>, wall: UnixNanos, store: &mut dyn MsgStore) {
        self.waiting.retain(|w| w.reply != to);
        if let Some(seq) = seq.filter(|s| self.state.pending.contains_key(s)) {
            self.clear_deadline(seq);
            self.redeliver.retain(|&s| s != seq);
            self.redeliver.push_front(seq);
        }
        self.pump(store, wall);
    }

    /// Asks the client for a flow control response once half the window is out.
    fn maybe_request_flow_control(&mut self) {
        if self.fc_outstanding.is_some() || self.fc_pending_bytes <= self.fc_window_bytes / 2 {
            return;
        }
        self.fc_requests += 1;
        const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut n = self.fc_requests;
        let tag: String = (0..4)
            .map(|_| {
                let d = DIGITS[(n % DIGITS.len() as u64) as usize];
                n /= DIGITS.len() as u64;
                char::from(d)
            })
            .collect();
        let reply = Bytes::from(format!("$JS.FC.{}.{}.{tag}", self.stream, self.name));
        self.fc_outstanding = Some((reply.clone(), self.fc_pending_bytes));
        let to = self.deliver_to.clone();
        let headers = pull::status(100, "FlowControl Request");
        self.out.push_back(Delivery { subject: to.clone(), to, reply: Some(reply), headers: Some(headers), payload: Bytes::new() });
    }

    /// The client answered a flow control request on `subject`: the bytes
    /// it covered are no longer outstanding, and the window grows.
    pub fn handle_flow_control(&mut self, subject: &[u8], wall: UnixNanos, store: &mut dyn MsgStore) -> bool {
        match &self.fc_outstanding {
            Some((reply, covered)) if &reply[..] == subject => {
                self.fc_pending_bytes = self.fc_pending_bytes.saturating_sub(*covered);
                self.fc_outstanding = None;
                self.fc_window_bytes = (self.fc_window_bytes * 2).min(FC_LIMIT_BYTES);
                self.pump(store, wall);
                true
            }
            _ => false,
        }
    }

    /// Where a stream sourcing through this consumer starts reading: after
    /// its ack floor when some deliveries are unacknowledged (nats-server
    /// resets a source's durable consumer there), else after its last
    /// delivery (its start position, before any).
    pub fn source_start(&self) -> u64 {
        if self.state.pending.is_empty() {
            self.next_seq.max(self.state.ack_floor.stream_seq + 1)
        } else {
            self.state.ack_floor.stream_seq + 1
        }
    }

    /// How many more messages a stream sourcing through this consumer may
    /// take before what it took is acknowledged (`max_ack_pending`).
    pub fn source_room(&self) -> usize {
        let max = usize::try_from(self.config.max_ack_pending).unwrap_or(0);
        if max == 0 {
            return usize::MAX;
        }
        max.saturating_sub(self.state.pending.len())
    }

    /// A stream sourcing through this consumer took the message `msg`:
    /// it counts as delivered (unacknowledged until the sourcing stream
    /// has it on disk). Returns the ack subject that acknowledges it.
    pub fn delivered_to_source(&mut self, msg: &StoredMsg, wall: UnixNanos) -> String {
        let dseq = self.state.delivered.consumer_seq + 1;
        self.state.delivered = SeqPair { consumer_seq: dseq, stream_seq: self.state.delivered.stream_seq.max(msg.seq), last_active: Some(wall) };
        self.next_seq = self.next_seq.max(msg.seq + 1);
        self.last_active = wall;
        self.dirty = true;
        self.state.pending.insert(msg.seq, Pending { consumer_seq: dseq, timestamp: wall.0 });
        format!("$JS.ACK.{}.{}.1.{}.{dseq}.{}.0", self.stream, self.name, msg.seq, msg.time.0)
    }

    /// The consumer is being deleted: waiting requests hear `409 Consumer Deleted`.
    pub fn close(&mut self) {
        for w in std::mem::take(&mut self.waiting) {
            self.status(w.reply, pull::status(409, "Consumer Deleted"));
        }
    }
}

/// A map from consumer name to consumer, for one stream.
pub type Consumers = BTreeMap<String, Consumer>;

#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod priority_tests;
#[cfg(test)]
mod tests;

/// The sequence of the first message of `store` stored at or after `at`
/// (the stream's next sequence when there is none).
fn first_at_or_after(at: UnixNanos, store: &mut dyn MsgStore) -> u64 {
    let s = store.state();
    let mut seq = s.first_seq.max(1);
    loop {
        match store.load_next(b">", seq) {
            Ok(Some(m)) if m.time < at => seq = m.seq + 1,
            Ok(Some(m)) => break m.seq,
            _ => break s.last_seq + 1,
        }
    }
}
