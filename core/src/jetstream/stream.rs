//! One stream: its configuration, its store, its de-duplication window, and
//! the decisions of the publish path (expected-* headers, rollups, limits,
//! discard policy, expiry by age).
//!
//! A stream is a state machine of its own: fed publishes and the clock, it
//! answers with sequences or errors and keeps its store within its limits.
//! It knows nothing of connections or accounts, so that it can later sit
//! behind a replication group and run beside other streams elsewhere.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use super::api::ApiError;
use super::config::{DiscardPolicy, StreamConfig};
use super::headers;
use super::store::{record_size, MsgStore, PurgeRequest, StoreError, StoredMsg};
use crate::storage::StorageError;
use crate::subject::subject_matches;
use crate::time::UnixNanos;

/// At most this many message ids are remembered for de-duplication,
/// whatever the window (nats-server bounds it by the window alone).
pub const DEDUPE_IDS_MAX: usize = 1_000_000;

/// What a publish into the stream came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The message's sequence (the original's, for a duplicate).
    pub seq: u64,
    /// The message id was seen within the duplicate window: nothing stored.
    pub duplicate: bool,
}

/// The message ids seen within the duplicate window.
#[derive(Debug, Default)]
struct Dedupe {
    ids: BTreeMap<Bytes, u64>,
    /// (when stored, id), oldest first.
    order: VecDeque<(UnixNanos, Bytes)>,
}

impl Dedupe {
    fn forget_before(&mut self, cutoff: UnixNanos) {
        while let Some((at, _)) = self.order.front() {
            if *at >= cutoff && self.order.len() <= DEDUPE_IDS_MAX {
                break;
            }
            let (_, id) = self.order.pop_front().expect("front exists");
            self.ids.remove(&id);
        }
    }
}

/// One stream (see the [module](self) documentation).
#[derive(Debug)]
pub struct Stream {
    config: StreamConfig,
    created: UnixNanos,
    store: Box<dyn MsgStore>,
    dedupe: Dedupe,
    last_msg_id: Option<Bytes>,
}

impl Stream {
    /// A stream over `store`, with a checked configuration.
    pub fn new(config: StreamConfig, created: UnixNanos, store: Box<dyn MsgStore>) -> Self {
        Stream { config, created, store, dedupe: Dedupe::default(), last_msg_id: None }
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Its configuration.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// When it was created.
    pub fn created(&self) -> UnixNanos {
        self.created
    }

    /// Its store.
    pub fn store(&self) -> &dyn MsgStore {
        &*self.store
    }

    /// Its store, to read or change.
    pub fn store_mut(&mut self) -> &mut dyn MsgStore {
        &mut *self.store
    }

    /// Replaces the stream's metadata in its store (a file store keeps it
    /// beside the messages; a memory store has nothing to keep).
    pub fn write_meta(&mut self, meta: &[u8]) -> Result<(), StoreError> {
        self.store.write_meta(meta)
    }

    /// Replaces the configuration with a checked update and applies the
    /// limits it may have tightened.
    pub fn update(&mut self, config: StreamConfig, wall: UnixNanos) -> Result<(), StoreError> {
        self.config = config;
        self.enforce_limits(wall)
    }

    /// True when a message on `subject` belongs to this stream.
    pub fn captures(&self, subject: &[u8]) -> bool {
        self.config.subjects.iter().any(|s| subject_matches(s.as_bytes(), subject))
    }

    /// Stores a published message, or says why not (nats-server's checks,
    /// in its order).
    pub fn publish(
        &mut self,
        subject: &[u8],
        hdrs: Option<&[u8]>,
        payload: &[u8],
        wall: UnixNanos,
    ) -> Result<Stored, ApiError> {
        let cfg = &self.config;
        if cfg.sealed {
            return Err(ApiError::stream_sealed());
        }
        let size = payload.len() + hdrs.map_or(0, <[u8]>::len);
        if cfg.max_msg_size > 0 && size as i64 > i64::from(cfg.max_msg_size) {
            return Err(ApiError::stream_message_exceeds_maximum());
        }
        if hdrs.is_some_and(|h| h.len() > usize::from(u16::MAX)) {
            return Err(ApiError::stream_header_exceeds_maximum());
        }
        if let Some(expected) = headers::text(hdrs, headers::EXPECTED_STREAM) {
            if expected != cfg.name {
                return Err(ApiError::stream_not_match());
            }
        }
        self.forget_old_ids(wall);
        let msg_id = hdrs.and_then(|h| headers::value(h, headers::MSG_ID)).filter(|v| !v.is_empty());
        if let Some(id) = msg_id {
            if let Some(&seq) = self.dedupe.ids.get(id) {
                return Ok(Stored { seq, duplicate: true });
            }
        }
        self.check_expectations(subject, hdrs)?;
        let rollup = self.rollup(hdrs)?;
        self.check_discard_new(subject, size)?;
        let seq = self.store.store(subject, hdrs, payload, wall).map_err(store_failed)?;
        if let Some(id) = msg_id {
            let id = Bytes::copy_from_slice(id);
            if self.config.duplicate_window > 0 {
                self.dedupe.ids.insert(id.clone(), seq);
                self.dedupe.order.push_back((wall, id.clone()));
            }
            self.last_msg_id = Some(id);
        } else {
            self.last_msg_id = None;
        }
        let purged = match rollup {
            Some(Rollup::Subject) => self.store.purge(&PurgeRequest {
                filter: Some(Bytes::copy_from_slice(subject)),
                below_seq: Some(seq),
                keep: None,
            }),
            Some(Rollup::All) => self.store.purge(&PurgeRequest { filter: None, below_seq: Some(seq), keep: None }),
            None => Ok(0),
        };
        purged.and_then(|_| self.enforce_limits(wall)).map_err(store_failed)?;
        Ok(Stored { seq, duplicate: false })
    }

    fn forget_old_ids(&mut self, wall: UnixNanos) {
        let window = self.config.duplicate_window.max(0);
        self.dedupe.forget_before(UnixNanos(wall.0.saturating_sub(window)));
    }

    /// The `Nats-Expected-*` headers other than the stream's name.
    fn check_expectations(&mut self, subject: &[u8], hdrs: Option<&[u8]>) -> Result<(), ApiError> {
        let state = self.store.state();
        if let Some(id) = hdrs.and_then(|h| headers::value(h, headers::EXPECTED_LAST_MSG_ID)) {
            let last = self.last_msg_id.as_deref().unwrap_or_default();
            if id != last {
                return Err(ApiError::stream_wrong_last_msg_id(String::from_utf8_lossy(last)));
            }
        }
        if let Some(v) = hdrs.and_then(|h| headers::value(h, headers::EXPECTED_LAST_SEQ)) {
            let expected = parse_seq(v);
            if expected != Some(state.last_seq) {
                return Err(ApiError::stream_wrong_last_sequence(state.last_seq));
            }
        }
        if let Some(v) = hdrs.and_then(|h| headers::value(h, headers::EXPECTED_LAST_SUBJECT_SEQ)) {
            let last = self.store.load_last(subject).ok().flatten().map_or(0, |m| m.seq);
            if parse_seq(v) != Some(last) {
                return Err(ApiError::stream_wrong_last_sequence(last));
            }
        }
        Ok(())
    }

    fn rollup(&self, hdrs: Option<&[u8]>) -> Result<Option<Rollup>, ApiError> {
        let Some(value) = hdrs.and_then(|h| headers::value(h, headers::ROLLUP)) else {
            return Ok(None);
        };
        if !self.config.allow_rollup_hdrs {
            return Err(ApiError::stream_rollup_failed("rollup not permitted"));
        }
        match value {
            b"sub" => Ok(Some(Rollup::Subject)),
            b"all" if self.config.deny_purge => Err(ApiError::stream_rollup_failed("roll-ups not permitted")),
            b"all" => Ok(Some(Rollup::All)),
            other => Err(ApiError::stream_rollup_failed(format!(
                "rollup value invalid: {:?}",
                String::from_utf8_lossy(other)
            ))),
        }
    }

    /// With `discard: new`, a message over a limit is refused instead of
    /// making room.
    fn check_discard_new(&self, subject: &[u8], size: usize) -> Result<(), ApiError> {
        let cfg = &self.config;
        if cfg.discard != DiscardPolicy::New {
            return Ok(());
        }
        let state = self.store.state();
        if cfg.max_msgs > 0 && state.msgs >= cfg.max_msgs as u64 {
            return Err(ApiError::stream_store_failed("maximum messages exceeded"));
        }
        let record = record_size(subject, None, &[]) + size as u64;
        if cfg.max_bytes > 0 && state.bytes + record > cfg.max_bytes as u64 {
            return Err(ApiError::stream_store_failed("maximum bytes exceeded"));
        }
        if cfg.discard_new_per_subject && cfg.max_msgs_per_subject > 0 {
            let held = self.store.subject_state(subject).map_or(0, |(n, _)| n);
            if held >= cfg.max_msgs_per_subject as u64 {
                return Err(ApiError::stream_store_failed("maximum messages per subject exceeded"));
            }
        }
        Ok(())
    }

    /// Removes what the limits no longer allow: the oldest messages past
    /// `max_msgs`, `max_bytes`, the per-subject limit and `max_age`.
    pub fn enforce_limits(&mut self, wall: UnixNanos) -> Result<(), StoreError> {
        let cfg = self.config.clone();
        if cfg.max_msgs_per_subject > 0 {
            self.enforce_per_subject(cfg.max_msgs_per_subject as u64)?;
        }
        if cfg.max_msgs > 0 {
            while self.store.state().msgs > cfg.max_msgs as u64 {
                self.remove_first()?;
            }
        }
        if cfg.max_bytes > 0 {
            while self.store.state().bytes > cfg.max_bytes as u64 {
                self.remove_first()?;
            }
        }
        self.expire(wall)
    }

    fn enforce_per_subject(&mut self, max: u64) -> Result<(), StoreError> {
        let over: Vec<(Bytes, u64)> =
            self.store.subject_counts(b">").into_iter().filter(|&(_, n)| n > max).collect();
        for (subject, n) in over {
            for _ in 0..n - max {
                match self.store.subject_state(&subject) {
                    Some((_, first)) => {
                        self.store.remove(first, false)?;
                    }
                    None => break,
                }
            }
        }
        Ok(())
    }

    fn remove_first(&mut self) -> Result<(), StoreError> {
        let first = self.store.state().first_seq;
        match self.store.load_next(b">", first)? {
            Some(m) => self.store.remove(m.seq, false).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Removes the messages older than `max_age`.
    pub fn expire(&mut self, wall: UnixNanos) -> Result<(), StoreError> {
        if self.config.max_age <= 0 {
            return Ok(());
        }
        let cutoff = wall.0.saturating_sub(self.config.max_age);
        loop {
            let state = self.store.state();
            if state.msgs == 0 || state.first_time.0 > cutoff {
                return Ok(());
            }
            self.remove_first()?;
        }
    }

    /// How long until the oldest message passes `max_age` (or an id leaves
    /// the duplicate window), if anything is waiting to.
    pub fn next_expiry(&self, wall: UnixNanos) -> Option<Duration> {
        let state = self.store.state();
        let age = (self.config.max_age > 0 && state.msgs > 0)
            .then(|| state.first_time.0.saturating_add(self.config.max_age));
        let dedupe = self
            .dedupe
            .order
            .front()
            .map(|(at, _)| at.0.saturating_add(self.config.duplicate_window.max(0)));
        let at = age.into_iter().chain(dedupe).min()?;
        Some(Duration::from_nanos(u64::try_from(at.saturating_sub(wall.0)).unwrap_or(0)))
    }

    /// Runs the clock: expiry by age and the duplicate window.
    pub fn handle_timeout(&mut self, wall: UnixNanos) -> Result<(), StoreError> {
        self.forget_old_ids(wall);
        self.expire(wall)
    }

    /// The message a `MSG.GET` or direct get asks for.
    pub fn get(&mut self, how: &Lookup) -> Result<Option<StoredMsg>, StoreError> {
        match how {
            Lookup::Seq(seq) => self.store.load(*seq),
            Lookup::LastBySubject(subject) => self.store.load_last(subject),
            Lookup::NextBySubject(subject, seq) => self.store.load_next(subject, (*seq).max(1)),
        }
    }
}

/// How a message is looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// By sequence.
    Seq(u64),
    /// The last on a subject (wildcards allowed).
    LastBySubject(Bytes),
    /// The first on a subject at or after a sequence.
    NextBySubject(Bytes, u64),
}

/// What a `Nats-Rollup` header asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rollup {
    Subject,
    All,
}

fn parse_seq(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The answer to a publish the store could not take: a full disk is
/// nats-server's "insufficient resources" (503, 10023), as it answers when
/// its store is over its limits; any other failure is a store failure.
fn store_failed(e: StoreError) -> ApiError {
    match e {
        StoreError::Storage(StorageError::NoSpace { .. }) => ApiError::insufficient_resources(),
        other => ApiError::stream_store_failed(other),
    }
}
