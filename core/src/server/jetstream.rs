//! The control plane's side of JetStream: which accounts have it, routing
//! their API requests and stream publishes to [`JetStream`], delivering
//! its replies, and the group commit at the end of each batch.

use bytes::Bytes;

use crate::jetstream::api::AccountLimits;
use crate::jetstream::config::CheckLimits;
use crate::jetstream::store::{share_storage, SharedStorage};
use crate::jetstream::JetStream;
use crate::log::Level;
use crate::protocol::Publish;
use crate::storage::SyncToken;
use crate::sync::Ordering;
use crate::time::Instant;

use super::sys_monitor::SERVER_SLOT;
use super::Control;

/// How many messages JetStream's own output may add to streams in one
/// drain (see [`Control::drain_jetstream`]).
const MAX_INGESTED_PER_DRAIN: usize = 100_000;

/// The most consumer deliveries routed as one burst (at most 64: which of
/// them reached nobody is kept as bits of a `u64`).
const CONSUMER_BURST_MAX: usize = 64;

/// The JetStream APIs `account` imports from other accounts, as (prefix,
/// exporter): a service import of `$JS.API.>` mapped to `<prefix>.>`, as
/// nats-server's docs set up a cross-account source or mirror (whose
/// `external.api` is that prefix).
fn jetstream_api_imports(account: &crate::account::AccountConfig) -> Vec<(String, String)> {
    account
        .imports
        .iter()
        .filter(|i| i.kind == crate::account::ImportKind::Service && i.subject == "$JS.API.>")
        .filter_map(|i| Some((i.to.as_deref()?.strip_suffix(".>")?.to_owned(), i.account.clone())))
        .collect()
}

impl Control {
    /// Starts JetStream when the options ask for it, on `storage` when given.
    pub(super) fn start_jetstream(&mut self, storage: Option<Box<dyn crate::storage::Storage + Send>>) {
        if !self.opts.jetstream {
            return;
        }
        let limits = CheckLimits {
            max_payload: i64::from(self.opts.max_payload_bytes),
            jetstream_max_memory: self.opts.jetstream_max_memory_bytes.unwrap_or(-1),
            jetstream_max_store: self.opts.jetstream_max_store_bytes.unwrap_or(-1),
            domain: self.opts.jetstream_domain.clone(),
            ..CheckLimits::default()
        };
        let storage: Option<SharedStorage> = storage.map(share_storage);
        let mut js = JetStream::new(limits, storage);
        js.set_server_name(&self.server_name);
        js.set_id_seed(rand_core::RngCore::next_u64(&mut self.rng));
        js.set_system_account(self.system_account_name());
        if let Some(crate::config::JetStreamSync::Interval(every)) = self.opts.jetstream_sync {
            js.set_sync_interval(every);
            self.log(crate::log::Level::Warn, format!(
                "JetStream acknowledges writes before they are synced (sync_interval {every:?}): a crash may lose up to that much"
            ));
        }
        let system = self.system_account_name().map(str::to_owned);
        let configured: Vec<(String, AccountLimits)> = self
            .opts
            .accounts
            .iter()
            .filter_map(|a| Some((a.name.clone(), a.jetstream.clone()?)))
            .collect();
        // Without accounts of its own, the global account has JetStream,
        // as in nats-server; the system account never does.
        let global = crate::account::routes::GLOBAL_ACCOUNT;
        let operator_mode = self.trust.is_some();
        if !operator_mode && (configured.is_empty() || self.opts.accounts.iter().all(|a| a.name == global)) {
            js.enable(global, AccountLimits::default());
        }
        for (name, limits) in configured {
            if Some(&name) != system.as_ref() {
                js.enable(&name, limits);
            }
        }
        for account in &self.opts.accounts {
            js.set_api_imports(&account.name, jetstream_api_imports(account));
        }
        self.jetstream = Some(js);
        if let Some(trust) = &self.trust {
            let (configs, _) = trust.account_configs(self.wall_at(Instant::ZERO).0.div_euclid(1_000_000_000));
            self.apply_jetstream_claims(&configs);
        }
        self.share_stream_subjects();
        self.log(crate::log::Level::Info, "Starting JetStream".to_owned());
        self.drain_jetstream(Instant::ZERO);
    }

    /// Turns JetStream on or off, with their limits, for the accounts whose
    /// JWTs are in force (never for the system account).
    pub(super) fn apply_jetstream_claims(&mut self, configs: &[crate::account::AccountConfig]) {
        let system = self.system_account_name().map(str::to_owned);
        let Some(js) = self.jetstream.as_mut() else { return };
        for config in configs {
            match &config.jetstream {
                Some(limits) if Some(&config.name) != system.as_ref() => js.enable(&config.name, limits.clone()),
                _ => js.disable(&config.name),
            }
        }
    }

    /// Tells each account's sessions which subjects JetStream takes.
    pub(super) fn share_stream_subjects(&self) {
        let Some(js) = &self.jetstream else { return };
        // Every account's API requests reach JetStream: those of accounts
        // without it are answered with an error, not "no responders".
        for account in &self.accounts {
            account.shared.share_stream_subjects(js.subjects(&account.name));
        }
    }

    /// Hands a publish in `account` to JetStream: an API request, or a
    /// message for a stream. Returns how many "receivers" it counts as.
    pub(super) fn jetstream_publish(&mut self, now: Instant, from: super::client::Slot, account: usize, p: &Publish) -> usize {
        let wall = self.wall_at(now);
        let name = self.accounts[account].name.clone();
        let pull = self.jetstream.as_ref().and_then(|js| js.api_subject(&p.subject)).is_some_and(|api| api.starts_with(b"$JS.API.CONSUMER.MSG.NEXT."));
        if pull && p.reply.as_ref().is_some_and(|r| !r.starts_with(b"_R_.") && self.match_in(account, r).is_empty()) {
            // Nobody would receive what the request asks for: nats-server
            // drops a waiting request whose reply lost its interest before
            // delivering to it, and so no message is spent on it.
            return 1;
        }
        let api = self.jetstream.as_ref().and_then(|js| js.api_subject(&p.subject));
        let caller = if api.is_some() { self.api_caller(from, account) } else { None };
        let hint = api.as_deref().and_then(|api| self.deliver_interest(account, api, &p.payload));
        let Some(js) = self.jetstream.as_mut() else { return 0 };
        let taken = if let Some(api) = api {
            let layout = js.layout();
            js.set_api_caller(caller);
            js.set_interest_hint(hint);
            let answered = js.handle_api(&name, &api, p.reply.as_ref(), &p.payload, wall);
            js.set_api_caller(None);
            js.set_interest_hint(None);
            if js.layout() != layout {
                self.share_stream_subjects();
            }
            answered
        } else if p.subject.starts_with(b"$JS.ACK.") {
            js.handle_ack(&name, &p.subject, p.reply.as_ref(), &p.payload, wall)
        } else if p.subject.starts_with(b"$JS.FC.") {
            js.handle_flow_control(&name, &p.subject, wall)
        } else {
            js.handle_publish(&name, &p.subject, p.reply.as_ref(), p.headers.as_ref(), &p.payload, wall)
        };
        match &mut self.jetstream_drain_deferred {
            Some(deferred) => *deferred = true,
            None => self.drain_jetstream(now),
        }
        usize::from(taken)
    }

    /// Runs a client's JetStream acknowledgements, in order, as publishes
    /// (permissions, counts, subscribers of the subject), and drains
    /// JetStream once after them all rather than once per ack: the
    /// deliveries they free go out together. Stops early once `closed`
    /// says the client is gone, as its session drops the rest of its read.
    pub(crate) fn process_acks(&mut self, now: Instant, slot: super::client::Slot, acks: &mut Vec<Publish>, closed: impl Fn() -> bool) {
        self.jetstream_drain_deferred = Some(false);
        for p in acks.drain(..) {
            if closed() {
                break;
            }
            self.process_op(now, slot, crate::protocol::ClientOp::Pub(p), None);
        }
        if self.jetstream_drain_deferred.take() == Some(true) {
            self.drain_jetstream(now);
        }
    }

    /// For a consumer create request: its deliver subject and whether
    /// anything in `account` subscribes to it.
    fn deliver_interest(&mut self, account: usize, api: &[u8], payload: &[u8]) -> Option<(Bytes, bool)> {
        if !api.starts_with(b"$JS.API.CONSUMER.CREATE.") && !api.starts_with(b"$JS.API.CONSUMER.DURABLE.CREATE.") {
            return None;
        }
        #[derive(serde::Deserialize)]
        struct Request {
            config: Option<Config>,
        }
        #[derive(serde::Deserialize)]
        struct Config {
            deliver_subject: Option<String>,
        }
        let request: Request = serde_json::from_slice(payload).ok()?;
        let subject = Bytes::from(request.config?.deliver_subject.filter(|s| !s.is_empty())?);
        let bound = !self.match_in(account, &subject).is_empty();
        Some((subject, bound))
    }

    /// The client in `from` as an API audit advisory names it, when someone
    /// in `account` listens for those advisories.
    fn api_caller(&mut self, from: super::client::Slot, account: usize) -> Option<crate::jetstream::audit::ApiCaller> {
        if self.match_in(account, crate::jetstream::audit::AUDIT_SUBJECT.as_bytes()).is_empty() {
            return None;
        }
        let c = self.client(from)?;
        Some(crate::jetstream::audit::ApiCaller {
            start: c.started,
            host: c.peer.ip().to_string(),
            id: c.cid.0,
            account: self.accounts[account].name.clone(),
            user: c.meta.user.clone().unwrap_or_default(),
            name: c.meta.name.clone(),
            lang: c.meta.lang.clone(),
            version: c.meta.version.clone(),
            rtt: c.rtt.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            server: self.server_name.clone(),
            kind: "Client",
            client_type: c.transport.conn_type(),
        })
    }

    /// Delivers what JetStream has ready, and logs what it said.
    ///
    /// What JetStream publishes (republished messages, advisories, replies)
    /// goes where any publish goes, streams included, as nats-server's
    /// internal clients send it: a stream on `dest.>` stores what another
    /// stream republishes there. Streams that republish into each other in
    /// a ring would feed each other forever; past [`MAX_INGESTED_PER_DRAIN`]
    /// copies in one drain the rest reach subscribers only.
    pub(super) fn drain_jetstream(&mut self, now: Instant) {
        self.answer_interest_queries(now);
        let mut ingested = 0;
        loop {
            let Some(js) = self.jetstream.as_mut() else { return };
            if let Some(event) = js.poll_log() {
                self.log(event.level, event.message);
                continue;
            }
            if let Some((account, d)) = js.poll_delivery() {
                self.deliver_consumer_burst(now, &account, d);
                continue;
            }
            let Some(reply) = js.poll_reply() else { break };
            let Some(account) = self.accounts.iter().position(|a| a.name == reply.account) else { continue };
            let p = Publish { subject: reply.subject, reply: None, headers: reply.headers, payload: reply.payload };
            self.deliver_reply_in(now, account, &p);
            if p.subject.starts_with(b"$JS.ACK.") {
                // A stream sourcing through a durable consumer acknowledges
                // what it stored, once on disk, as a client would.
                let wall = self.wall_at(now);
                let name = self.accounts[account].name.clone();
                if let Some(js) = self.jetstream.as_mut() {
                    js.handle_ack(&name, &p.subject, None, &p.payload, wall);
                }
                continue;
            }
            if self.stream_takes(account, &p.subject) {
                ingested += 1;
                if ingested == MAX_INGESTED_PER_DRAIN {
                    self.log(Level::Warn, "JetStream: streams republish into each other in a ring; copies beyond this are not stored".to_owned());
                }
                if ingested <= MAX_INGESTED_PER_DRAIN {
                    let wall = self.wall_at(now);
                    let name = self.accounts[account].name.clone();
                    if let Some(js) = self.jetstream.as_mut() {
                        js.handle_publish(&name, &p.subject, None, p.headers.as_ref(), &p.payload, wall);
                    }
                }
            }
        }
        let wall = self.wall_at(now);
        self.jetstream_deadline = self.jetstream.as_ref().and_then(|js| js.poll_timeout(wall)).map(|d| now + d);
        self.wake();
    }

    /// Publishes a consumer's delivery, with the deliveries queued right
    /// behind it for the same subject of the same account (a burst, up to
    /// [`CONSUMER_BURST_MAX`]): routed on its deliver subject (or pull
    /// request inbox), shown with the stored message's subject, as
    /// nats-server delivers. The subject is matched once for the burst;
    /// each message is still routed on its own and in order, and one that
    /// reaches nobody is handed back to JetStream.
    fn deliver_consumer_burst(&mut self, now: Instant, account: &str, first: crate::jetstream::consumer::Delivery) {
        let Some(account) = self.accounts.iter().position(|a| a.name == account) else { return };
        let to = first.to;
        let mut burst = std::mem::take(&mut self.consumer_burst);
        burst.clear();
        burst.push(Publish { subject: first.subject, reply: first.reply, headers: first.headers, payload: first.payload });
        if let Some(js) = self.jetstream.as_mut() {
            while burst.len() < CONSUMER_BURST_MAX && js.next_delivery_is(&self.accounts[account].name, &to) {
                let Some((_, d)) = js.poll_delivery() else { break };
                burst.push(Publish { subject: d.subject, reply: d.reply, headers: d.headers, payload: d.payload });
            }
        }
        // Bit i: message i reached nobody.
        let mut missed = 0u64;
        let mut start = 0;
        while start < burst.len() {
            let result = self.match_in(account, &to);
            start = self.route(now, |route| {
                for (i, p) in burst.iter().enumerate().skip(start) {
                    if route.deliver(&result, SERVER_SLOT, true, p) == 0 {
                        missed |= 1 << i;
                    }
                    // A subscription done with its max_msgs leaves the
                    // index, a slow consumer is closed, before the next
                    // message is matched: as when they go one by one.
                    if !route.work.expired.is_empty() || !route.work.slow.is_empty() {
                        return i + 1;
                    }
                }
                burst.len()
            });
        }
        if missed != 0 {
            // Interest went: push consumers on this subject stop until it
            // returns, pull requests answered there are dropped.
            let wall = self.wall_at(now);
            let name = self.accounts[account].name.clone();
            for (i, p) in burst.drain(..).enumerate() {
                if missed & (1 << i) == 0 {
                    continue;
                }
                let d = crate::jetstream::consumer::Delivery { to: to.clone(), subject: p.subject, reply: p.reply, headers: p.headers, payload: p.payload };
                if let Some(js) = self.jetstream.as_mut() {
                    js.undelivered(&name, &d, wall);
                }
            }
        }
        burst.clear();
        self.consumer_burst = burst;
    }

    /// Subscriptions on these literal subjects went with their client:
    /// push consumers delivering there stop at once when nothing else
    /// listens, as nats-server's do, instead of delivering into the void
    /// until a delivery finds nobody (which would leave the message
    /// waiting for its ack wait, across a restart too).
    pub(super) fn interest_gone(&mut self, now: Instant, account: usize, subjects: &[Bytes]) {
        let Some(js) = self.jetstream.as_ref() else { return };
        let name = self.accounts[account].name.clone();
        let delivered: Vec<&Bytes> = subjects.iter().filter(|s| js.delivers_to(&name, s)).collect();
        if delivered.is_empty() {
            return;
        }
        let wall = self.wall_at(now);
        for subject in delivered {
            if self.match_in(account, subject).is_empty() {
                if let Some(js) = self.jetstream.as_mut() {
                    js.set_interest(&name, subject, false, wall);
                }
            }
        }
        self.drain_jetstream(now);
    }

    /// A subscription on `subject` left `account`'s index: push consumers
    /// delivering there stop when nothing else listens (see
    /// [`Control::interest_gone`]), without draining JetStream here, as
    /// this runs in the middle of deliveries.
    pub(super) fn interest_lost(&mut self, now: Instant, account: usize, subject: &[u8]) {
        let Some(js) = self.jetstream.as_ref() else { return };
        if subject.iter().any(|&b| b == b'*' || b == b'>') || !js.delivers_to(&self.accounts[account].name, subject) {
            return;
        }
        if self.match_in(account, subject).is_empty() {
            let wall = self.wall_at(now);
            if let Some(js) = self.jetstream.as_mut() {
                js.set_interest(&self.accounts[account].name, subject, false, wall);
            }
        }
    }

    /// Tells JetStream which push consumers' deliver subjects have subscribers.
    fn answer_interest_queries(&mut self, now: Instant) {
        let wall = self.wall_at(now);
        let Some(js) = self.jetstream.as_mut() else { return };
        let queries = js.interest_queries(wall);
        for (account, subject) in queries {
            let Some(i) = self.accounts.iter().position(|a| a.name == account) else { continue };
            let result = self.match_in(i, &subject);
            let interest = !result.is_empty();
            if let Some(js) = self.jetstream.as_mut() {
                js.set_interest(&account, &subject, interest, wall);
            }
        }
    }

    /// True when JetStream holds writes that a sync should cover.
    pub(crate) fn jetstream_needs_flush(&self) -> bool {
        self.jetstream.as_ref().is_some_and(JetStream::needs_flush)
    }

    /// Ends a batch: one sync request covers every JetStream write of it.
    pub fn flush_jetstream(&mut self, now: Instant) {
        if let Some(js) = self.jetstream.as_mut() {
            js.flush();
        }
        self.drain_jetstream(now);
    }

    /// Syncs of JetStream's storage completed, each reported once, in any
    /// order across files: the acknowledgements they held go out.
    pub fn handle_jetstream_synced(&mut self, now: Instant, tokens: &[SyncToken]) {
        if let Some(js) = self.jetstream.as_mut() {
            js.handle_synced(tokens);
        }
        self.drain_jetstream(now);
    }


    /// Runs JetStream's clock.
    pub(super) fn jetstream_timeout(&mut self, now: Instant) {
        let wall = self.wall_at(now);
        if let Some(js) = self.jetstream.as_mut() {
            if js.poll_timeout(wall).is_some_and(|d| d.is_zero()) {
                js.handle_timeout(wall);
                js.flush();
            }
        }
        self.drain_jetstream(now);
    }

    /// JetStream, when on.
    pub fn jetstream(&self) -> Option<&JetStream> {
        self.jetstream.as_ref()
    }

    /// True when a publish in `account` on `p`'s subject is JetStream's.
    pub(super) fn jetstream_takes(&self, account: usize, p: &Publish) -> bool {
        let shared = &self.accounts[account].shared;
        let Some(js) = &self.jetstream else { return false };
        shared.jetstream.load(Ordering::Acquire)
            && (js.api_subject(&p.subject).is_some()
                || p.subject.starts_with(b"$JS.ACK.")
                || p.subject.starts_with(b"$JS.FC.")
                || self.stream_takes(account, &p.subject))
    }

    /// True when a stream of `account` captures `subject`.
    fn stream_takes(&self, account: usize, subject: &[u8]) -> bool {
        let shared = &self.accounts[account].shared;
        shared.has_streams.load(Ordering::Acquire)
            && shared.stream_subjects.read().iter().any(|s| crate::subject::subject_matches(s, subject))
    }
}
