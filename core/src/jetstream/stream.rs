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
use super::config::{Compression, DiscardPolicy, StreamConfig};
use super::limits::Quota;
use super::store::{MsgStore, PurgeRequest, StoreError, StoredMsg};
use super::{headers, ttl};
use crate::storage::StorageError;
use crate::subject::subject_matches;
use crate::subject::transform::{SplitMix, Transform};
use crate::time::UnixNanos;

/// At most this many message ids are remembered for de-duplication,
/// whatever the window (nats-server bounds it by the window alone).
pub const DEDUPE_IDS_MAX: usize = 1_000_000;

/// What a publish into the stream came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The message's sequence (the original's, for a duplicate).
    pub seq: u64,
    /// The message id was seen within the duplicate window: nothing stored.
    pub duplicate: bool,
    /// The copy `republish` asks for, to publish in the stream's account.
    pub republish: Option<Republished>,
}

/// A stored message's republished copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Republished {
    /// Its subject (the stored subject, mapped).
    pub subject: Bytes,
    /// The original headers with `Nats-Stream`, `Nats-Subject`,
    /// `Nats-Sequence`, `Nats-Time-Stamp` and `Nats-Last-Sequence` (and
    /// `Nats-Msg-Size` when only headers are sent).
    pub headers: Bytes,
    /// The payload (empty when only headers are sent).
    pub payload: Bytes,
}

/// The subject mappings a stream applies: to what it stores, and to what
/// it republishes.
#[derive(Clone, Debug, Default)]
struct Mappings {
    /// `subject_transform`: subjects matching its source are stored mapped.
    input: Option<Transform>,
    /// `republish`: stored subjects matching its source are republished
    /// mapped, with headers only when asked.
    republish: Option<(Transform, bool)>,
}

impl Mappings {
    fn of(cfg: &StreamConfig) -> Self {
        // Checked when the stream was made: a transform that does not
        // compile cannot get here, and is left out should one.
        let map = |src: &str, dest: &str| Transform::new(src, dest).ok();
        Mappings {
            input: cfg.subject_transform.as_ref().and_then(|t| map(&t.src, &t.dest)),
            republish: cfg.republish.as_ref().and_then(|r| Some((map(&r.src, &r.dest)?, r.headers_only))),
        }
    }
}

/// `subject` through `map`, when it matches the map's source.
/// `{{random(n)}}` draws from a generator seeded with the message's wall time.
fn mapped(map: &Transform, subject: &[u8], wall: UnixNanos) -> Option<Bytes> {
    let subject = std::str::from_utf8(subject).ok()?;
    subject_matches(map.src().as_bytes(), subject.as_bytes()).then(|| {
        let mut out = String::with_capacity(map.dest().len() + subject.len());
        map.apply(subject, &mut SplitMix(wall.0.unsigned_abs()), &mut out);
        Bytes::from(out)
    })
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
    mappings: Mappings,
    ttls: ttl::Schedule,
}

impl Stream {
    /// A stream over `store`, with a checked configuration.
    pub fn new(config: StreamConfig, created: UnixNanos, mut store: Box<dyn MsgStore>) -> Self {
        let mappings = Mappings::of(&config);
        store.set_compression(config.compression == Compression::S2);
        Stream { config, created, store, dedupe: Dedupe::default(), last_msg_id: None, mappings, ttls: ttl::Schedule::default() }
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
        self.mappings = Mappings::of(&config);
        self.store.set_compression(config.compression == Compression::S2);
        self.config = config;
        self.enforce_limits(wall)
    }

    /// True when a message on `subject` belongs to this stream.
    pub fn captures(&self, subject: &[u8]) -> bool {
        self.config.subjects.iter().any(|s| subject_matches(s.as_bytes(), subject))
    }

    /// Stores a published message, or says why not (nats-server's checks,
    /// in its order). `quota` is the room the server and the account have.
    pub fn publish(
        &mut self,
        subject: &[u8],
        hdrs: Option<&[u8]>,
        payload: &[u8],
        wall: UnixNanos,
        quota: &Quota,
    ) -> Result<Stored, ApiError> {
        // A subject transform decides the subject stored, before any check.
        let transformed = self.mappings.input.as_ref().and_then(|m| mapped(m, subject, wall));
        let subject = transformed.as_deref().unwrap_or(subject);
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
        let ttl_header = hdrs.and_then(|h| headers::value(h, ttl::HEADER));
        let ttl_secs = ttl_header.map(ttl::parse);
        // A readable, non-zero TTL on a stream without allow_msg_ttl is
        // refused first; an unreadable one after the expectations.
        if matches!(ttl_secs, Some(Some(t)) if t != 0) && !cfg.allow_msg_ttl {
            return Err(ApiError::message_ttl_disabled());
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
                return Ok(Stored { seq, duplicate: true, republish: None });
            }
        }
        self.check_expectations(subject, hdrs)?;
        let rollup = self.rollup(hdrs)?;
        let mut ttl_secs = match ttl_secs {
            Some(None) => return Err(ApiError::message_ttl_invalid()),
            Some(Some(t)) => t,
            None => 0,
        };
        // With delete markers, a TTL is at least the markers' own, so that
        // a marker is never missed for a subject that already has one (one
        // message per subject is the exception), as nats-server raises it.
        let raised_hdrs;
        let hdrs = match marker_ttl_secs(&self.config) {
            Some(min) if ttl_secs > 0 && ttl_secs < min && self.config.max_msgs_per_subject != 1 => {
                ttl_secs = min;
                raised_hdrs = headers::replace(hdrs, ttl::HEADER, min.to_string().as_bytes());
                Some(&raised_hdrs[..])
            }
            _ => hdrs,
        };
        if quota.server_full {
            return Err(ApiError::insufficient_resources());
        }
        quota.admit(self.store.record_size(subject, hdrs, payload))?;
        self.check_discard_new(subject, self.store.record_size(subject, hdrs, payload))?;
        let republish_to = self.mappings.republish.as_ref().and_then(|(m, only)| Some((mapped(m, subject, wall)?, *only)));
        let last_of_subject = match republish_to {
            Some(_) => self.store.load_last(subject).ok().flatten().map_or(0, |m| m.seq),
            None => 0,
        };
        let seq = self
            .store
            .store(subject, hdrs, payload, wall)
            .map_err(store_failed)?;
        self.schedule_ttl(seq, wall, ttl_secs);
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
        purged.and_then(|_| self.enforce_limits_after_store(subject, wall)).map_err(store_failed)?;
        let republish = republish_to.map(|(to, headers_only)| {
            self.republished(to, subject, hdrs, payload, seq, wall, last_of_subject, headers_only)
        });
        Ok(Stored { seq, duplicate: false, republish })
    }

    /// Stores a message of the stream's mirror origin under the origin's
    /// sequence and time (sequences the origin no longer holds are skipped),
    /// as nats-server's mirror does: none of the publish checks, which the
    /// origin made, but the mirror's own limits. False when the mirror
    /// already holds that sequence.
    pub fn store_mirrored(&mut self, msg: &StoredMsg, subject: &[u8], quota: &Quota, wall: UnixNanos) -> Result<bool, ApiError> {
        let next = self.store.state().last_seq + 1;
        if msg.seq < next {
            return Ok(false);
        }
        let hdrs = msg.headers.as_deref();
        let size = self.store.record_size(subject, hdrs, &msg.payload);
        if quota.server_full {
            return Err(ApiError::insufficient_resources());
        }
        quota.admit(size)?;
        self.check_discard_new(subject, size)?;
        self.store.skip_to(msg.seq).map_err(store_failed)?;
        let seq = self.store.store(subject, hdrs, &msg.payload, msg.time).map_err(store_failed)?;
        debug_assert_eq!(seq, msg.seq, "a mirror's sequences are its origin's");
        self.last_msg_id = None;
        self.enforce_limits_after_store(subject, wall).map_err(store_failed)?;
        Ok(true)
    }

    /// The copy of a stored message that `republish` sends, with
    /// nats-server's headers appended to the message's own.
    #[allow(clippy::too_many_arguments)]
    fn republished(
        &self,
        to: Bytes,
        subject: &[u8],
        hdrs: Option<&[u8]>,
        payload: &[u8],
        seq: u64,
        wall: UnixNanos,
        last: u64,
        headers_only: bool,
    ) -> Republished {
        let seq = seq.to_string();
        let time = wall.to_rfc3339();
        let last = last.to_string();
        let size = payload.len().to_string();
        let mut extra: Vec<(&[u8], &[u8])> = vec![
            (b"Nats-Stream", self.config.name.as_bytes()),
            (b"Nats-Subject", subject),
            (b"Nats-Sequence", seq.as_bytes()),
            (b"Nats-Time-Stamp", time.as_bytes()),
            (b"Nats-Last-Sequence", last.as_bytes()),
        ];
        if headers_only {
            extra.push((b"Nats-Msg-Size", size.as_bytes()));
        }
        let existing = hdrs.filter(|h| !h.is_empty());
        Republished {
            subject: to,
            headers: headers::append(existing, &extra),
            payload: if headers_only { Bytes::new() } else { Bytes::copy_from_slice(payload) },
        }
    }

    fn schedule_ttl(&mut self, seq: u64, stored: UnixNanos, ttl_secs: i64) {
        if ttl_secs <= 0 {
            return;
        }
        self.ttls.add(seq, stored, ttl_secs);
        // Messages gone by limits leave entries behind: keep the schedule
        // within the stream's messages.
        let state = self.store.state();
        if self.ttls.len() as u64 > state.msgs.saturating_mul(2) + 64 {
            self.ttls.forget_below(state.first_seq);
        }
    }

    /// Schedules the TTLs of the messages a recovered stream holds.
    pub fn schedule_stored_ttls(&mut self) -> Result<(), StoreError> {
        if !self.config.allow_msg_ttl {
            return Ok(());
        }
        let mut seq = self.store.state().first_seq;
        while let Some(msg) = self.store.load_next(b">", seq)? {
            let ttl = msg.headers.as_deref().and_then(|h| headers::value(h, ttl::HEADER)).and_then(ttl::parse);
            self.schedule_ttl(msg.seq, msg.time, ttl.unwrap_or(0));
            seq = msg.seq + 1;
        }
        Ok(())
    }

    /// Removes the messages whose TTL ran out.
    fn expire_ttls(&mut self, wall: UnixNanos) -> Result<(), StoreError> {
        for seq in self.ttls.take_due(wall) {
            self.expire_one(seq, wall)?;
        }
        Ok(())
    }

    /// Removes `seq`, aged out by `max_age` or its TTL. With
    /// `subject_delete_marker_ttl`, the last message of a subject is
    /// replaced by a delete marker instead (a roll-up of the subject with
    /// `Nats-Marker-Reason: MaxAge`, itself expiring after the marker TTL),
    /// as nats-server does, so that watchers learn the subject is gone.
    /// False if nothing was removed.
    fn expire_one(&mut self, seq: u64, wall: UnixNanos) -> Result<bool, StoreError> {
        let Some(marker_secs) = marker_ttl_secs(&self.config) else {
            return self.store.remove(seq, false);
        };
        let Some(msg) = self.store.load(seq)? else { return Ok(false) };
        let last_of_subject = self.store.subject_state(&msg.subject).is_some_and(|(n, _)| n == 1);
        if !last_of_subject || is_delete_marker(msg.headers.as_deref()) {
            return self.store.remove(seq, false);
        }
        let ttl_text = go_seconds(marker_secs);
        let hdrs = headers::block(
            None,
            &[(MARKER_REASON, b"MaxAge"), (ttl::HEADER, ttl_text.as_bytes()), (headers::ROLLUP, b"sub")],
        );
        let marker = self.store.store(&msg.subject, Some(&hdrs), &[], wall)?;
        self.schedule_ttl(marker, wall, marker_secs);
        self.last_msg_id = None;
        self.store.purge(&PurgeRequest { filter: Some(msg.subject.clone()), below_seq: Some(marker), keep: None })?;
        self.enforce_limits_after_store(&msg.subject, wall)?;
        Ok(true)
    }

    fn forget_old_ids(&mut self, wall: UnixNanos) {
        let window = self.config.duplicate_window.max(0);
        self.dedupe.forget_before(UnixNanos(wall.0.saturating_sub(window)));
    }

    /// The `Nats-Expected-*` headers other than the stream's name.
    fn check_expectations(&mut self, subject: &[u8], hdrs: Option<&[u8]>) -> Result<(), ApiError> {
        if let Some(id) = hdrs.and_then(|h| headers::value(h, headers::EXPECTED_LAST_MSG_ID)) {
            let last = self.last_msg_id.as_deref().unwrap_or_default();
            if id != last {
                return Err(ApiError::stream_wrong_last_msg_id(String::from_utf8_lossy(last)));
            }
        }
        if let Some(v) = hdrs.and_then(|h| headers::value(h, headers::EXPECTED_LAST_SEQ)) {
            let last = self.store.state().last_seq;
            if parse_seq(v) != Some(last) {
                return Err(ApiError::stream_wrong_last_sequence(last));
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
    fn check_discard_new(&self, subject: &[u8], record: u64) -> Result<(), ApiError> {
        let cfg = &self.config;
        if cfg.discard != DiscardPolicy::New {
            return Ok(());
        }
        let state = self.store.state();
        if cfg.max_msgs > 0 && state.msgs >= cfg.max_msgs as u64 {
            return Err(ApiError::stream_store_failed("maximum messages exceeded"));
        }
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
        if self.config.max_msgs_per_subject > 0 {
            self.enforce_per_subject(self.config.max_msgs_per_subject as u64)?;
        }
        self.enforce_totals(wall)
    }

    /// [`Stream::enforce_limits`] after one message was stored on
    /// `subject`: only that subject can be over its limit.
    fn enforce_limits_after_store(&mut self, subject: &[u8], wall: UnixNanos) -> Result<(), StoreError> {
        let max = self.config.max_msgs_per_subject;
        if max > 0 {
            self.trim_subject(subject, max as u64)?;
        }
        self.enforce_totals(wall)
    }

    /// `max_msgs`, `max_bytes` and `max_age`, oldest messages first.
    fn enforce_totals(&mut self, wall: UnixNanos) -> Result<(), StoreError> {
        let (max_msgs, max_bytes) = (self.config.max_msgs, self.config.max_bytes);
        if max_msgs > 0 {
            while self.store.state().msgs > max_msgs as u64 && self.remove_first()? {}
        }
        if max_bytes > 0 {
            while self.store.bytes() > max_bytes as u64 && self.remove_first()? {}
        }
        self.expire(wall)
    }

    /// Removes `subject`'s oldest messages past `max`.
    fn trim_subject(&mut self, subject: &[u8], max: u64) -> Result<(), StoreError> {
        while let Some((n, first)) = self.store.subject_state(subject) {
            if n <= max || !self.store.remove(first, false)? {
                break;
            }
        }
        Ok(())
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

    /// Removes the oldest message; false when nothing was removed.
    fn remove_first(&mut self) -> Result<bool, StoreError> {
        // The first sequence is held whenever the store holds anything.
        let state = self.store.state();
        if state.msgs == 0 {
            return Ok(false);
        }
        self.store.remove(state.first_seq, false)
    }

    /// Removes the messages older than `max_age`.
    pub fn expire(&mut self, wall: UnixNanos) -> Result<(), StoreError> {
        if self.config.max_age <= 0 {
            return Ok(());
        }
        let cutoff = wall.0.saturating_sub(self.config.max_age);
        loop {
            let state = self.store.state();
            if state.msgs == 0 || state.first_time.0 > cutoff || !self.expire_one(state.first_seq, wall)? {
                return Ok(());
            }
        }
    }

    /// How long until the oldest message passes `max_age` (or an id leaves
    /// the duplicate window), if anything is waiting to.
    pub fn next_expiry(&self, wall: UnixNanos) -> Option<Duration> {
        // Asked after every batch of input: the store's state is built only
        // for a stream that has an age limit.
        let age = (self.config.max_age > 0)
            .then(|| self.store.state())
            .filter(|state| state.msgs > 0)
            .map(|state| state.first_time.0.saturating_add(self.config.max_age));
        let dedupe = self
            .dedupe
            .order
            .front()
            .map(|(at, _)| at.0.saturating_add(self.config.duplicate_window.max(0)));
        let at = age.into_iter().chain(dedupe).chain(self.ttls.next()).min()?;
        Some(Duration::from_nanos(u64::try_from(at.saturating_sub(wall.0)).unwrap_or(0)))
    }

    /// Runs the clock: expiry by age and the duplicate window.
    pub fn handle_timeout(&mut self, wall: UnixNanos) -> Result<(), StoreError> {
        self.forget_old_ids(wall);
        self.expire_ttls(wall)?;
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

/// The header naming why a delete marker was written.
pub const MARKER_REASON: &[u8] = b"Nats-Marker-Reason";

/// The stream's delete marker TTL in whole seconds, when it has markers.
fn marker_ttl_secs(cfg: &StreamConfig) -> Option<i64> {
    let secs = cfg.subject_delete_marker_ttl / 1_000_000_000;
    (secs > 0).then_some(secs)
}

/// True for a delete marker, or a key-value purge marker: neither leaves a
/// marker of its own behind (nats-server's `isSubjectDeleteMarker`).
fn is_delete_marker(hdrs: Option<&[u8]>) -> bool {
    let Some(h) = hdrs else { return false };
    headers::value(h, MARKER_REASON).is_some_and(|v| !v.is_empty()) || headers::value(h, b"KV-Operation") == Some(b"PURGE")
}

/// Whole seconds as Go prints a `time.Duration`: `3s`, `1m0s`, `1h2m3s`.
fn go_seconds(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}
