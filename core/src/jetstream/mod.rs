//! JetStream on one node: the streams of every account and their
//! consumers, the `$JS.API` requests that manage them, the publish path
//! into them, and the acknowledgements (`$JS.ACK.…`) and flow control
//! responses (`$JS.FC.…`) coming back from consumers' clients.
//!
//! [`JetStream`] is fed what the control plane routes to it (API requests,
//! publishes on stream subjects, sync completions, the clock) and answers
//! with [`Reply`]s for the control plane to deliver. A reply that depends
//! on a write (a PubAck, a stream created on disk) is released only once
//! the sync covering that write completed: writes are synced in groups, at
//! [`JetStream::flush`], once per batch of input, so one fsync covers every
//! publish of the batch.

pub mod advisories;
pub mod api;
pub mod audit;
pub mod config;
pub mod consumer;
pub mod headers;
pub mod limits;
mod requests;
pub mod store;
mod sourcing;
mod stream;
mod sync_waits;
pub mod ttl;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::log::{Level, LogEvent};
use crate::storage::Storage as _;
use crate::time::UnixNanos;

use api::{AccountLimits, ApiError};
use config::{CheckLimits, StorageType, StreamConfig};
use limits::{Footprint, Quota, ServerBudget};
use store::{escape_name, unescape_name, FileStore, MemStore, MsgStore, SharedStorage};
pub use stream::{Lookup, Stored, Stream};
pub use requests::is_api as is_api_subject;

/// Message blocks roll over at this size.
const BLOCK_SIZE_MAX: u64 = 8 * 1024 * 1024;

/// A sync is asked for as soon as this many replies wait on writes, not
/// only at the end of a batch of input: the disk works on one group while
/// the rest of the batch is written, instead of after it.
const GROUP_COMMIT_REPLIES: usize = 32;

/// After a stream's writes could not be written or synced (a full disk),
/// the flush is tried again this soon, if no input's end tried it first.
const SYNC_RETRY: Duration = Duration::from_millis(100);

/// A message for the control plane to publish in an account: an API
/// response, a PubAck, an advisory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The account it is published in.
    pub account: String,
    /// Its subject (the requester's reply subject).
    pub subject: Bytes,
    /// Its header block, if any.
    pub headers: Option<Bytes>,
    /// Its payload.
    pub payload: Bytes,
}

/// One account's JetStream: its limits and its streams.
#[derive(Debug, Default)]
pub struct JsAccount {
    limits: AccountLimits,
    streams: BTreeMap<String, Stream>,
    api_total: u64,
    api_errors: u64,
    /// Each stream's consumers, by stream name.
    consumers: BTreeMap<String, consumer::Consumers>,
    /// The mirror and sources feeding each stream that has any, by name.
    upstreams: BTreeMap<String, sourcing::Upstreams>,
}

impl JsAccount {
    /// What each stream takes from the account's limits.
    fn footprints(&self) -> impl Iterator<Item = Footprint<'_>> + Clone {
        self.streams.values().map(|s| Footprint::of(s.config()))
    }

    /// Bytes the account's streams use in `storage`.
    fn used(&self, storage: StorageType) -> u64 {
        self.streams.values().filter(|s| s.config().storage == storage).map(|s| s.store().bytes()).sum()
    }
}

/// One account's JetStream figures, for monitoring.
#[derive(Clone, Copy, Debug)]
pub struct AccountReport<'a> {
    /// Its limits.
    pub limits: &'a AccountLimits,
    /// Memory bytes its streams use.
    pub memory: u64,
    /// File bytes its streams use.
    pub storage: u64,
    /// API requests it made.
    pub api_total: u64,
    /// Those that failed.
    pub api_errors: u64,
}

/// What a stream's metadata file holds.
#[derive(Serialize, Deserialize)]
struct Meta {
    created_ns: i64,
    config: StreamConfig,
}

/// JetStream on one node (see the [module](self) documentation).
pub struct JetStream {
    limits: CheckLimits,
    storage: Option<SharedStorage>,
    accounts: BTreeMap<String, JsAccount>,
    /// Accounts JetStream is enabled for.
    enabled: BTreeSet<String>,
    /// Replies whose writes still need a sync to be asked for, in order;
    /// a PubAck (or a republished copy) names its stream, and waits for
    /// that stream's syncs only.
    unsynced: Vec<(Option<String>, Reply)>,
    /// A reply queued since the last flush confirms consumer state (a
    /// double ack, a consumer API answer, an API answer that waits for
    /// writes): that flush saves every changed consumer, holding none
    /// back. PubAcks do not set it: they depend on their stream's writes
    /// only.
    confirms_consumers: bool,
    /// Replies waiting for requested syncs to complete, oldest first.
    waiting: VecDeque<sync_waits::Waiting>,
    /// Replies free to go.
    ready: VecDeque<Reply>,
    /// File streams written since the last flush: (account, stream).
    dirty: BTreeSet<(String, String)>,
    logs: VecDeque<LogEvent>,
    api_total: u64,
    api_errors: u64,
    /// The server's name, which stream info gives as the stream's leader.
    server_name: String,
    /// `None`: acknowledgements wait for the sync covering their writes.
    /// Some interval: they go at once, and writes are synced that often.
    sync_interval: Option<Duration>,
    /// When writes were last synced on the interval.
    last_sync: UnixNanos,
    /// The latest wall time an input brought.
    last_wall: UnixNanos,
    /// After a write or sync that failed, when the flush is tried again
    /// (if no batch's end tried it before).
    sync_retry_at: Option<UnixNanos>,
    /// A file stream was written since the last flush that wrote every
    /// held write out (with a sync interval, `dirty` stays set until the
    /// interval's sync, so it cannot say whether a flush has work).
    unwritten: bool,
    /// Advisories raised by the request being answered.
    advisories: Vec<Reply>,
    /// Seeds advisory ids.
    id_seed: u64,
    /// Moves whenever streams are made, changed or removed: their subjects
    /// may have changed.
    layout: u64,
    /// The system account, which alone may purge an account.
    system_account: Option<String>,
    /// Advisory ids handed out.
    ids_made: u64,
    /// Consumer deliveries and statuses to publish, with their account.
    deliveries: VecDeque<(std::sync::Arc<str>, consumer::Delivery)>,
    /// The account name the last deliveries were queued with (see
    /// `JetStream::delivery_account`).
    delivery_account: Option<std::sync::Arc<str>>,
    /// Consumers' saved files.
    consumer_files: consumer::persist::SavedFiles,
    /// When push consumers without interest are asked about again.
    interest_recheck_at: Option<UnixNanos>,
    /// How long until the next interest check, when the last found none.
    interest_backoff_ns: i64,
    /// File prefixes of streams whose files are on disk with metadata that
    /// could not be read: kept as they are, never overwritten by a new
    /// stream of the same name.
    unrecovered: BTreeSet<String>,
    /// Mirrors or sources may have messages to move.
    upstream_work: bool,
    /// The client of the API request being handled, when its account
    /// listens for audit advisories.
    api_caller: Option<audit::ApiCaller>,
    /// For the consumer create request being handled: its deliver subject
    /// and whether anything subscribes to it, so that a new push consumer
    /// is bound from the start (see [`JetStream::set_interest_hint`]).
    interest_hint: Option<(Bytes, bool)>,
    /// Per account, the JetStream APIs of other accounts it imports: (API
    /// prefix, exporting account).
    api_imports: BTreeMap<String, Vec<(String, String)>>,
}

impl std::fmt::Debug for JetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStream").field("accounts", &self.accounts).finish_non_exhaustive()
    }
}

impl JetStream {
    /// JetStream with these limits; file streams live on `storage` (and
    /// are recovered from it now), without it only memory streams can be made.
    pub fn new(limits: CheckLimits, storage: Option<SharedStorage>) -> Self {
        let mut js = JetStream {
            limits,
            storage,
            accounts: BTreeMap::new(),
            enabled: BTreeSet::new(),
            unsynced: Vec::new(),
            confirms_consumers: false,
            waiting: VecDeque::new(),
            ready: VecDeque::new(),
            dirty: BTreeSet::new(),
            logs: VecDeque::new(),
            api_total: 0,
            api_errors: 0,
            server_name: String::new(),
            sync_interval: None,
            last_sync: UnixNanos(0),
            last_wall: UnixNanos(0),
            sync_retry_at: None,
            unwritten: false,
            advisories: Vec::new(),
            id_seed: 0,
            layout: 0,
            system_account: None,
            ids_made: 0,
            deliveries: VecDeque::new(),
            delivery_account: None,
            consumer_files: consumer::persist::SavedFiles::default(),
            interest_recheck_at: None,
            interest_backoff_ns: 0,
            unrecovered: BTreeSet::new(),
            upstream_work: false,
            api_caller: None,
            interest_hint: None,
            api_imports: BTreeMap::new(),
        };
        js.recover();
        js.recover_consumers();
        // A crash can keep a consumer's acknowledgement (its state was
        // synced) and lose the removal it caused (the stream's was not):
        // interest and work-queue streams drop such messages again now, as
        // nats-server does when it checks an interest stream's state.
        let streams: Vec<(String, String)> = js
            .accounts
            .iter()
            .flat_map(|(a, acc)| acc.consumers.keys().map(move |s| (a.clone(), s.clone())))
            .collect();
        for (account, stream) in streams {
            js.apply_retention(&account, &stream);
        }
        js
    }

    /// Acknowledges writes before they are synced, and syncs them every
    /// `interval` instead (nats-server's default behaviour, which a crash
    /// can cost the last interval's acknowledged messages).
    pub fn set_sync_interval(&mut self, interval: Duration) {
        self.sync_interval = Some(interval);
    }

    /// The interval writes are synced at, when acknowledgements do not wait
    /// for syncs.
    pub fn sync_interval(&self) -> Option<Duration> {
        self.sync_interval
    }

    /// Names the system account, which may purge other accounts.
    pub fn set_system_account(&mut self, account: Option<&str>) {
        self.system_account = account.map(str::to_owned);
    }

    /// A number that moves whenever a stream is made, changed or removed.
    pub fn layout(&self) -> u64 {
        self.layout
    }

    /// Names the server, as stream info reports its leader.
    pub fn set_server_name(&mut self, name: &str) {
        name.clone_into(&mut self.server_name);
    }

    /// Turns JetStream on for `account`, within `limits`.
    pub fn enable(&mut self, account: &str, limits: AccountLimits) {
        self.enabled.insert(account.to_owned());
        self.accounts.entry(account.to_owned()).or_default().limits = limits;
    }

    /// Turns JetStream off for `account`: its streams stay on disk, unused.
    pub fn disable(&mut self, account: &str) {
        self.enabled.remove(account);
    }

    /// `account`'s limits (none, when JetStream is off for it).
    pub fn account_limits(&self, account: &str) -> Option<&AccountLimits> {
        self.is_enabled(account).then(|| self.accounts.get(account).map(|a| &a.limits)).flatten()
    }

    /// Counts an API request of `account` once answered.
    fn count_api(&mut self, account: &str) {
        self.api_total += 1;
        if let Some(a) = self.accounts.get_mut(account) {
            a.api_total += 1;
        }
    }

    /// Counts an API request of `account` that failed.
    fn count_api_error(&mut self, account: &str) {
        self.api_errors += 1;
        if let Some(a) = self.accounts.get_mut(account) {
            a.api_errors += 1;
        }
    }

    /// The server's memory and storage budget.
    pub fn budget(&self) -> ServerBudget {
        ServerBudget { max_memory: self.limits.jetstream_max_memory, max_store: self.limits.jetstream_max_store }
    }

    /// Every stream of every account, as far as the limits care.
    fn all_footprints(&self) -> impl Iterator<Item = Footprint<'_>> + Clone {
        self.accounts.values().flat_map(JsAccount::footprints)
    }

    /// The limits a stream configuration of `account` is checked against:
    /// the server's, with the account's bounds on a stream's `max_bytes`.
    fn check_limits(&self, account: &str) -> CheckLimits {
        let mut limits = self.limits.clone();
        if let Some(a) = self.accounts.get(account) {
            limits.max_bytes_required = a.limits.max_bytes_required;
            limits.memory_max_stream_bytes = a.limits.memory_max_stream_bytes;
            limits.storage_max_stream_bytes = a.limits.storage_max_stream_bytes;
        }
        limits
    }

    /// True when JetStream is on for `account`.
    pub fn is_enabled(&self, account: &str) -> bool {
        self.enabled.contains(account)
    }

    /// The subjects of every stream of `account`: publishes on them (and on
    /// `$JS.API.>`) must reach [`JetStream::handle_publish`].
    pub fn subjects(&self, account: &str) -> Vec<Bytes> {
        self.accounts.get(account).map_or_else(Vec::new, |a| {
            a.streams.values().flat_map(|s| s.config().subjects.iter().map(|x| Bytes::copy_from_slice(x.as_bytes()))).collect()
        })
    }

    fn recover(&mut self) {
        let Some(storage) = self.storage.clone() else { return };
        let listed = storage.lock().list();
        let names = match listed {
            Ok(names) => names,
            Err(e) => {
                // Streams that cannot be seen must not be taken for
                // absent: a new one could be made over their files.
                self.storage = None;
                return self.log(Level::Error, format!("JetStream's store cannot be read, file streams are unavailable: {e}"));
            }
        };
        let mut prefixes = BTreeSet::new();
        for name in &names {
            let mut parts = name.splitn(3, '.');
            if let (Some(a), Some(s), Some(_)) = (parts.next(), parts.next(), parts.next()) {
                prefixes.insert((a.to_owned(), s.to_owned()));
            }
        }
        for (a, s) in prefixes {
            let (Some(account), Some(name)) = (unescape_name(&a), unescape_name(&s)) else { continue };
            let prefix = format!("{a}.{s}.");
            match self.open_stream(&storage, &prefix) {
                Ok(stream) => {
                    self.log(Level::Info, format!("  Restored stream '{account} > {name}'"));
                    self.accounts.entry(account.clone()).or_default().streams.insert(name.clone(), stream);
                    self.attach_upstreams(&account, &name, true);
                }
                Err((why, keep)) => {
                    // Whole metadata that does not read is damage, not a
                    // creation cut short: its messages stay for an operator.
                    if keep {
                        self.unrecovered.insert(prefix);
                    }
                    self.log(Level::Error, format!("Could not restore stream '{account} > {name}': {why}"));
                }
            }
        }
    }

    /// Opens the stream whose files start with `prefix`; on failure, says
    /// why and whether its files must be kept (they hold a stream, not
    /// what a crash left of a creation never acknowledged).
    fn open_stream(&mut self, storage: &SharedStorage, prefix: &str) -> Result<Stream, (String, bool)> {
        let mut store =
            FileStore::open(storage.clone(), prefix.to_owned(), BLOCK_SIZE_MAX).map_err(|e| (e.to_string(), true))?;
        let meta = match store.read_meta() {
            Ok(Some(meta)) => meta,
            Ok(None) => return Err(("no intact metadata".to_owned(), store.has_whole_meta())),
            Err(e) => return Err((e.to_string(), true)),
        };
        let meta: Meta = serde_json::from_slice(&meta).map_err(|e| (e.to_string(), true))?;
        if let Some(lost) = store.state().lost {
            self.log(
                Level::Warn,
                format!("Stream '{}' lost {} damaged messages ({} bytes) on recovery", meta.config.name, lost.msgs.len(), lost.bytes),
            );
        }
        let mut stream = Stream::new(meta.config, UnixNanos(meta.created_ns), Box::new(store));
        stream.schedule_stored_ttls().map_err(|e| (e.to_string(), true))?;
        Ok(stream)
    }

    /// Makes a store for a new stream.
    fn make_store(&self, account: &str, config: &StreamConfig, created: UnixNanos) -> Result<Box<dyn MsgStore>, ApiError> {
        let first_seq = config.first_seq.max(1);
        match config.storage {
            StorageType::Memory => Ok(Box::new(MemStore::new(first_seq))),
            StorageType::File => {
                let storage = self.storage.clone().ok_or_else(ApiError::storage_resources_exceeded)?;
                let prefix = format!("{}.{}.", escape_name(account), escape_name(&config.name));
                if self.unrecovered.contains(&prefix) {
                    return Err(ApiError::stream_store_failed(
                        "the stream's files are on disk but its metadata is damaged; they are kept",
                    ));
                }
                let mut store = FileStore::create(storage, prefix, first_seq, BLOCK_SIZE_MAX)
                    .map_err(ApiError::stream_store_failed)?;
                let meta = Meta { created_ns: created.0, config: config.clone() };
                let json = serde_json::to_vec(&meta).expect("a stream config serialises");
                store.write_meta(&json).map_err(ApiError::stream_store_failed)?;
                Ok(Box::new(store))
            }
        }
    }

    /// Rewrites a file stream's metadata after an update.
    fn rewrite_meta(stream: &mut Stream) -> Result<(), ApiError> {
        let meta = Meta { created_ns: stream.created().0, config: stream.config().clone() };
        let json = serde_json::to_vec(&meta).expect("a stream config serialises");
        stream.write_meta(&json).map_err(ApiError::stream_store_failed)
    }

    /// A message published in `account` on `subject`: stored by the stream
    /// that captures the subject, if any. Returns true when a stream took
    /// it (it then counts as delivered; the reply, if any, follows).
    pub fn handle_publish(
        &mut self,
        account: &str,
        subject: &[u8],
        reply: Option<&Bytes>,
        hdrs: Option<&Bytes>,
        payload: &Bytes,
        wall: UnixNanos,
    ) -> bool {
        if !self.is_enabled(account) {
            return false;
        }
        self.last_wall = self.last_wall.max(wall);
        let Some(acc) = self.accounts.get(account) else { return false };
        let Some((name, storage)) =
            acc.streams.iter().find(|(_, s)| s.captures(subject)).map(|(n, s)| (n.clone(), s.config().storage))
        else {
            return false;
        };
        let quota = self.quota_for(account, &name);
        let stream = self.accounts.get_mut(account).and_then(|a| a.streams.get_mut(&name)).expect("found above");
        let file = storage == StorageType::File;
        let mut outcome = stream.publish(subject, hdrs.map(|h| &h[..]), payload, wall, &quota);
        let republished = outcome.as_mut().ok().and_then(|s| s.republish.take());
        let domain = self.limits.domain.as_deref().unwrap_or_default();
        let body = match &outcome {
            Ok(stored) => api::responses::PubAck::json(&name, domain, stored.seq, stored.duplicate),
            Err(e) => api::responses::PubAck::error_json(&name, domain, e),
        };
        let wrote = matches!(outcome, Ok(Stored { duplicate: false, .. }));
        if wrote {
            self.pump_consumers(account, &name, wall);
            if self.accounts.values().any(|a| !a.upstreams.is_empty()) {
                self.upstream_work = true;
            }
        }
        if wrote && file {
            self.unwritten = true;
            if !self.dirty.iter().any(|(a, n)| a == account && *n == name) {
                self.mark_dirty((account.to_owned(), name.clone()));
            }
        }
        // The republished copy goes out when the ack would: after the sync.
        if let Some(copy) = republished {
            let r = Reply { account: account.to_owned(), subject: copy.subject, headers: Some(copy.headers), payload: copy.payload };
            if file {
                self.unsynced.push((Some(name.clone()), r));
            } else {
                self.queue_after_writes(r);
            }
        }
        if let Some(reply) = reply {
            let r = Reply { account: account.to_owned(), subject: reply.clone(), headers: None, payload: body.into() };
            if wrote && file {
                self.unsynced.push((Some(name), r));
            } else if outcome.is_err() && self.sync_retry_at.is_some() {
                // Held writes wait for a failing disk; a refusal stores
                // nothing and need not wait behind them.
                self.ready.push_back(r);
            } else {
                // A duplicate's original may still be waiting for its
                // sync: its ack goes behind every ack asked for so far.
                self.queue_after_writes(r);
            }
        }
        if self.unsynced.len() >= GROUP_COMMIT_REPLIES && self.sync_interval.is_none() {
            self.flush();
        }
        true
    }

    /// The room `account` and the server have for a write to stream `name`.
    fn quota_for(&self, account: &str, name: &str) -> Quota {
        let Some(acc) = self.accounts.get(account) else { return Quota { server_full: false, account_room: None } };
        let storage = acc.streams.get(name).map_or(StorageType::File, |s| s.config().storage);
        let server_used = self.accounts.values().map(|a| a.used(storage)).sum();
        Quota::new(&acc.limits, &self.budget(), storage, acc.used(storage), server_used)
    }

    /// Queues a reply that must not overtake the writes made before it
    /// (a duplicate's PubAck must not overtake its original's sync, even
    /// when nothing waits on that sync).
    fn queue_after_writes(&mut self, reply: Reply) {
        let synced = self.storage.as_ref().is_none_or(|s| s.lock().all_done());
        if self.unsynced.is_empty() && self.waiting.is_empty() && self.dirty.is_empty() && synced {
            self.ready.push_back(reply);
        } else {
            self.unsynced.push((None, reply));
        }
    }

    /// Asks for one sync covering every write since the last flush; the
    /// replies that waited on those writes go out when it completes.
    pub fn flush(&mut self) {
        if self.sync_interval.is_some() {
            // Nothing waits for a sync: consumer state is saved as always,
            // stream writes wait for the interval's timer, and replies go
            // once their writes reached the storage.
            self.save_consumers();
            if self.write_out_dirty() {
                self.unwritten = false;
                let replies = std::mem::take(&mut self.unsynced);
                self.ready.extend(replies.into_iter().map(|(_, r)| r));
            }
            return;
        }
        self.save_consumers();
        self.sync_dirty();
    }

    /// Hands every dirty stream's held writes to the storage; false (with
    /// a retry scheduled) when one could not be written.
    fn write_out_dirty(&mut self) -> bool {
        let mut failed = Vec::new();
        for (account, name) in &self.dirty {
            let Some(stream) = self.accounts.get_mut(account).and_then(|a| a.streams.get_mut(name)) else { continue };
            if let Err(e) = stream.store_mut().write_out() {
                failed.push((account.clone(), name.clone(), e));
            }
        }
        let written = failed.is_empty();
        for (account, name, e) in failed {
            self.sync_failed(&account, &name, &e);
        }
        written
    }

    /// A stream's writes could not be written or synced: its replies (and
    /// every other reply not yet covered by a sync) wait, and the flush is
    /// tried again after [`SYNC_RETRY`].
    fn sync_failed(&mut self, account: &str, name: &str, e: &store::StoreError) {
        let line = format!("JetStream sync of stream '{account} > {name}' failed: {e}");
        self.log(Level::Error, line);
        let retry = i64::try_from(SYNC_RETRY.as_nanos()).unwrap_or(i64::MAX);
        self.sync_retry_at.get_or_insert(UnixNanos(self.last_wall.0.saturating_add(retry)));
    }

    /// True when writes wait for [`JetStream::flush`].
    pub fn needs_flush(&self) -> bool {
        // With a sync interval, streams written since the last flush still
        // hand their held writes to the storage at the input's end.
        !self.unsynced.is_empty()
            || self.consumers_fresh()
            || self.unwritten
            || (self.sync_interval.is_none() && !self.dirty.is_empty())
    }

    /// When the interval's next sync is due, if writes wait for one.
    fn next_sync(&self, wall: UnixNanos) -> Option<Duration> {
        let interval = self.sync_interval?;
        if self.dirty.is_empty() {
            return None;
        }
        let due = self.last_sync.0.saturating_add(i64::try_from(interval.as_nanos()).unwrap_or(i64::MAX));
        Some(Duration::from_nanos(u64::try_from(due.saturating_sub(wall.0)).unwrap_or(0)))
    }

    /// Notes that a file stream was written: its writes need a flush (a
    /// write-out, and a sync unless a sync interval is set).
    fn mark_dirty(&mut self, stream: (String, String)) {
        self.dirty.insert(stream);
        self.unwritten = true;
    }

    /// The next reply to deliver.
    pub fn poll_reply(&mut self) -> Option<Reply> {
        self.ready.pop_front()
    }

    /// The next line for the log.
    pub fn poll_log(&mut self) -> Option<LogEvent> {
        self.logs.pop_front()
    }

    /// How long until a stream has something to expire.
    pub fn poll_timeout(&self, wall: UnixNanos) -> Option<Duration> {
        let streams = self.accounts.values().flat_map(|a| a.streams.values()).filter_map(|s| s.next_expiry(wall)).min();
        let until = |at: UnixNanos| Duration::from_nanos(u64::try_from(at.0.saturating_sub(wall.0)).unwrap_or(0));
        let consumers = self.consumers_deadline().map(until);
        let upstreams = self.upstreams_busy().then_some(Duration::ZERO);
        let retry = self.sync_retry_at.map(until);
        let saves = self.consumers_save_due().map(until);
        streams.into_iter().chain(consumers).chain(self.next_sync(wall)).chain(upstreams).chain(retry).chain(saves).min()
    }

    /// Runs the streams' clocks, and the interval's syncs.
    pub fn handle_timeout(&mut self, wall: UnixNanos) {
        self.last_wall = self.last_wall.max(wall);
        // The flush that follows every timeout is the retry, and the save
        // of consumers held back until now.
        self.sync_retry_at = self.sync_retry_at.filter(|&at| at > wall);
        self.consumer_saves_timeout(wall);
        if self.next_sync(wall).is_some_and(|d| d.is_zero()) {
            self.last_sync = wall;
            self.sync_dirty();
        }
        let mut failed = Vec::new();
        let mut grown = Vec::new();
        for (account, acc) in &mut self.accounts {
            for (name, stream) in &mut acc.streams {
                let before = stream.store().state();
                if let Err(e) = stream.handle_timeout(wall) {
                    failed.push(format!("JetStream expiry in stream '{account} > {name}' failed: {e}"));
                }
                let after = stream.store().state();
                // Only a stream that expired something has writes to sync.
                if stream.config().storage == StorageType::File && (after.first_seq, after.last_seq) != (before.first_seq, before.last_seq) {
                    self.dirty.insert((account.clone(), name.clone()));
                    self.unwritten = true;
                }
                // Delete markers written in place of expired messages go to consumers.
                if after.last_seq != before.last_seq {
                    grown.push((account.clone(), name.clone()));
                }
            }
        }
        for line in failed {
            self.log(Level::Error, line);
        }
        for (account, name) in grown {
            self.pump_consumers(&account, &name, wall);
        }
        self.consumers_timeout(wall);
        if self.upstreams_busy() {
            self.pump_upstreams(wall);
        }
    }

    fn log(&mut self, level: Level, message: String) {
        self.logs.push_back(LogEvent { level, message });
    }

    /// Memory and file bytes used by `account`'s streams (or every account's).
    fn usage(&self, account: Option<&str>) -> (u64, u64, usize) {
        let (mut mem, mut file, mut streams) = (0, 0, 0);
        for (name, acc) in &self.accounts {
            if account.is_some_and(|a| a != name) {
                continue;
            }
            for s in acc.streams.values() {
                streams += 1;
                let bytes = s.store().state().bytes;
                match s.config().storage {
                    StorageType::Memory => mem += bytes,
                    StorageType::File => file += bytes,
                }
            }
        }
        (mem, file, streams)
    }

    /// `/varz`'s and `/jsz`'s figures: (memory bytes, file bytes, streams, accounts).
    pub fn totals(&self) -> (u64, u64, usize, usize) {
        let (mem, file, streams) = self.usage(None);
        (mem, file, streams, self.enabled.len())
    }

    /// The limits JetStream was started with.
    pub fn limits(&self) -> &CheckLimits {
        &self.limits
    }

    /// API requests served, and how many were errors.
    pub fn api_counts(&self) -> (u64, u64) {
        (self.api_total, self.api_errors)
    }

    /// Bytes reserved by streams' `max_bytes` on the server: (memory, file).
    pub fn reserved(&self) -> (u64, u64) {
        let of = |storage| limits::reserved(self.all_footprints(), storage, None).max(0) as u64;
        (of(StorageType::Memory), of(StorageType::File))
    }

    /// The accounts JetStream is on for, by name.
    pub fn enabled_accounts(&self) -> impl Iterator<Item = &str> {
        self.enabled.iter().map(String::as_str)
    }

    /// What monitoring shows of `account`.
    pub fn account_report(&self, account: &str) -> Option<AccountReport<'_>> {
        let a = self.accounts.get(account)?;
        Some(AccountReport {
            limits: &a.limits,
            memory: a.used(StorageType::Memory),
            storage: a.used(StorageType::File),
            api_total: a.api_total,
            api_errors: a.api_errors,
        })
    }
}

#[cfg(test)]
mod durability_tests;
#[cfg(test)]
mod sourcing_tests;
