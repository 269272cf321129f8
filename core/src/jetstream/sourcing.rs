//! Mirrors and sources: streams fed by other streams.
//!
//! nats-server feeds a mirror or a source through an ordered push consumer
//! it makes on the origin stream; on one node natrix reads the origin's
//! store directly, which is what that consumer delivers: the origin's
//! messages matching the filters, in sequence order, from a start position.
//! Each [`Upstream`] is a cursor over one origin (the last origin sequence
//! taken); [`JetStream::pump_upstreams`] moves every cursor forward in
//! bounded rounds, storing what it reads in the downstream stream, which
//! stays the only owner of its store: messages in, messages out.
//!
//! Progress is kept in the downstream's own messages, so it is exactly as
//! durable as they are and a restart resumes without duplicates or gaps: a
//! mirror's sequences are its origin's (its last sequence is the cursor);
//! a sourced message carries a `Nats-Stream-Source` header naming its
//! origin and origin sequence, read back on recovery, as nats-server does.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::api::responses::StreamSourceInfo;
use super::config::{StreamConfig, StreamSource, SubjectTransformConfig};
use super::store::StoredMsg;
use super::{headers, JetStream};
use crate::log::Level;
use crate::subject::subject_matches;
use crate::subject::transform::{SplitMix, Transform};
use crate::time::UnixNanos;

/// The header a sourced message carries: `<origin> <origin seq> <filter>
/// <destination> <original subject>`.
pub const STREAM_SOURCE: &[u8] = b"Nats-Stream-Source";

/// At most this many messages move from origins to downstreams per round;
/// more waits for the next round (asked for at once by the clock), so one
/// long catch-up never holds up other work.
const PUMP_MSGS_MAX: usize = 4096;

/// nats-server's mirror and source consumers send a heartbeat every
/// second: `active` never reads more than that while the origin is there.
const HEARTBEAT_NS: i64 = 1_000_000_000;

/// One origin feeding a stream: a mirror's or one of its sources.
#[derive(Clone, Debug)]
pub(super) struct Upstream {
    /// Its configuration.
    source: StreamSource,
    /// The first part of `Nats-Stream-Source` and of nats-server's index
    /// name: the origin's name, with hashes of the external prefix and
    /// consumer name when there are.
    ident: String,
    /// `(filter, transform)` pairs; an empty filter takes everything.
    filters: Vec<(String, Option<Transform>)>,
    /// The last origin sequence taken (stored or passed over).
    sseq: u64,
    /// The start position is still to be found in the origin (a start time).
    start_pending: bool,
    /// Origin messages not yet taken.
    lag: u64,
    /// The origin sequence of the last message taken (stored, or a
    /// duplicate), 0 before any.
    taken: u64,
    /// When the origin was first found, the heartbeats' phase.
    found_at: Option<UnixNanos>,
    /// When a message last came.
    last_msg_at: Option<UnixNanos>,
    /// Why the last message could not be stored, if it could not.
    error: Option<super::api::ApiError>,
    /// Recovery found this source's newest message.
    found_resume: bool,
    /// Through a durable consumer: the origin sequence acknowledged to it
    /// (the ack queued behind the writes that stored what it covers).
    acked: u64,
}

impl Upstream {
    fn new(source: &StreamSource) -> Self {
        let mut ident = source.name.clone();
        if let Some(ext) = &source.external {
            ident.push(':');
            ident.push_str(&name_hash(&ext.api_prefix));
        }
        if let Some(c) = &source.consumer {
            ident.push_str(":C=");
            ident.push_str(&name_hash(&c.name));
        }
        let filters = if source.subject_transforms.is_empty() {
            vec![(source.filter_subject.clone(), None)]
        } else {
            source
                .subject_transforms
                .iter()
                .map(|t| (t.src.clone(), (!t.dest.is_empty()).then(|| Transform::new(or_all(&t.src), &t.dest).ok()).flatten()))
                .collect()
        };
        Upstream {
            source: source.clone(),
            ident,
            filters,
            sseq: source.opt_start_seq.saturating_sub(1),
            start_pending: source.opt_start_seq == 0 && source.opt_start_time.is_some(),
            lag: 0,
            taken: 0,
            found_at: None,
            last_msg_at: None,
            error: None,
            found_resume: false,
            acked: 0,
        }
    }

    /// The key `Nats-Stream-Source` headers are matched on: ident, filter
    /// and destination.
    fn key(&self) -> String {
        let iname = self.source.index_name();
        let rest = iname.split_once(' ').map_or("", |(_, r)| r);
        format!("{} {rest}", self.ident)
    }

    /// The subject a message of the origin is stored under, when one of
    /// the filters takes it.
    fn map(&self, subject: &[u8], wall: UnixNanos) -> Option<Bytes> {
        for (filter, transform) in &self.filters {
            if !subject_matches(or_all(filter).as_bytes(), subject) {
                continue;
            }
            let Some(t) = transform else { return Some(Bytes::copy_from_slice(subject)) };
            let text = std::str::from_utf8(subject).ok()?;
            let mut out = String::with_capacity(t.dest().len() + text.len());
            t.apply(text, &mut SplitMix(wall.0.unsigned_abs()), &mut out);
            return Some(Bytes::from(out));
        }
        None
    }

    /// What `STREAM.INFO` shows of it.
    fn info(&self, wall: UnixNanos) -> StreamSourceInfo {
        let active = match (self.found_at, self.last_msg_at) {
            (None, _) => -1,
            (Some(found), last) => {
                let beat = wall.0.saturating_sub(found.0).max(0) % HEARTBEAT_NS;
                last.map_or(beat, |l| beat.min(wall.0.saturating_sub(l.0).max(0)))
            }
        };
        StreamSourceInfo {
            name: self.source.name.clone(),
            external: self.source.external.clone(),
            lag: self.lag,
            seq: self.taken,
            active,
            error: self.error.clone(),
            filter_subject: self.source.filter_subject.clone(),
            subject_transforms: self
                .source
                .subject_transforms
                .iter()
                .map(|t| SubjectTransformConfig { src: t.src.clone(), dest: t.dest.clone() })
                .collect(),
        }
    }
}

fn or_all(filter: &str) -> &str {
    if filter.is_empty() {
        ">"
    } else {
        filter
    }
}

/// nats-server's 8-character hash of a name (`getHash`): SHA-256, each of
/// the first eight bytes taken modulo 62 as a digit or letter.
fn name_hash(name: &str) -> String {
    use sha2::{Digest, Sha256};
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let sum = Sha256::digest(name.as_bytes());
    sum.iter().take(8).map(|b| char::from(DIGITS[usize::from(b % 62)])).collect()
}

/// The origins feeding one stream.
#[derive(Clone, Debug, Default)]
pub(super) struct Upstreams {
    mirror: Option<Upstream>,
    /// Sources by their key.
    sources: BTreeMap<String, Upstream>,
}

impl Upstreams {
    /// The origins `config` names, none yet read.
    pub(super) fn of(config: &StreamConfig) -> Option<Self> {
        if config.mirror.is_none() && config.sources.is_empty() {
            return None;
        }
        let sources = config.sources.iter().map(Upstream::new).map(|u| (u.key(), u)).collect();
        Some(Upstreams { mirror: config.mirror.as_ref().map(Upstream::new), sources })
    }

    /// After an update: the sources still configured keep their progress.
    pub(super) fn updated(self, config: &StreamConfig) -> Option<Self> {
        let mut next = Self::of(config)?;
        for (key, old) in self.sources {
            if let Some(u) = next.sources.get_mut(&key) {
                *u = Upstream { source: u.source.clone(), ..old };
            }
        }
        if let (Some(new), Some(old)) = (next.mirror.as_mut(), self.mirror) {
            *new = old;
        }
        Some(next)
    }

    /// The mirror's progress, for `STREAM.INFO`.
    pub(super) fn mirror_info(&self, wall: UnixNanos) -> Option<StreamSourceInfo> {
        // nats-server does not show a mirror's position.
        self.mirror.as_ref().map(|m| StreamSourceInfo { seq: 0, ..m.info(wall) })
    }

    /// The sources' progress, for `STREAM.INFO`.
    pub(super) fn sources_info(&self, wall: UnixNanos) -> Vec<StreamSourceInfo> {
        self.sources.values().map(|s| s.info(wall)).collect()
    }

    /// The upstream with this id (`None`: the mirror).
    fn get_mut(&mut self, id: Option<&str>) -> Option<&mut Upstream> {
        match id {
            None => self.mirror.as_mut(),
            Some(key) => self.sources.get_mut(key),
        }
    }

    /// The ids of its upstreams.
    fn ids(&self) -> Vec<Option<String>> {
        let mirror = self.mirror.as_ref().map(|_| None);
        mirror.into_iter().chain(self.sources.keys().map(|k| Some(k.clone()))).collect()
    }

    /// Sets each source's position from the newest `Nats-Stream-Source`
    /// header naming it among `msgs` (newest first); true once all are set.
    fn resume_from(&mut self, msg: &StoredMsg) -> bool {
        if let Some(value) = msg.headers.as_deref().and_then(|h| headers::text(Some(h), STREAM_SOURCE)) {
            let fields: Vec<&str> = value.split(' ').collect();
            if fields.len() >= 4 {
                let key = format!("{} {} {}", fields[0], fields[2], fields[3]);
                if let (Some(u), Ok(seq)) = (self.sources.get_mut(&key), fields[1].parse::<u64>()) {
                    if u.start_pending || u.sseq < seq {
                        u.sseq = seq;
                        u.taken = seq;
                        u.start_pending = false;
                    }
                    u.found_resume = true;
                }
            }
        }
        self.sources.values().all(|u| u.found_resume)
    }
}

/// Where in an origin a downstream reads from.
struct Origin {
    account: String,
    stream: String,
}

/// `hdrs` without the headers a sourced message must not carry on (an
/// earlier source's header, expectations already checked upstream, batch
/// headers), as nats-server strips them.
fn strip_for_source(hdrs: Option<&[u8]>) -> Option<Vec<u8>> {
    let h = hdrs?;
    let mut out = Vec::with_capacity(h.len());
    let mut lines = h.split(|&c| c == b'\n');
    let status = lines.next().unwrap_or_default();
    out.extend_from_slice(status.strip_suffix(b"\r").unwrap_or(status));
    out.extend_from_slice(b"\r\n");
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let name = line.iter().position(|&c| c == b':').map_or(line, |colon| &line[..colon]);
        if name == STREAM_SOURCE || name.starts_with(b"Nats-Expected-") || name.starts_with(b"Nats-Batch-") {
            continue;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Some(out)
}

/// A batch read from an origin for one upstream.
struct Batch {
    msgs: Vec<StoredMsg>,
    /// The read reached the origin's end: nothing before `origin_last`
    /// is left for this upstream.
    complete: bool,
    /// The origin's last sequence when read.
    origin_last: u64,
    /// The origin's first message at or after the start time, when that
    /// was still to be found.
    start: Option<u64>,
    /// The origin's identity (nats-server's: a hash of its creation time),
    /// which a recreated origin changes.
    origin_ident: String,
}

impl JetStream {
    /// The account and stream an upstream reads: its own account's unless
    /// `external` names another domain's or account's API prefix, which is
    /// the local one for `$JS.API` or this server's domain, or the account
    /// whose JetStream API this account imports under that prefix.
    fn origin_of(&self, account: &str, source: &StreamSource) -> Option<Origin> {
        let Some(ext) = &source.external else {
            return Some(Origin { account: account.to_owned(), stream: source.name.clone() });
        };
        let prefix = ext.api_prefix.trim_end_matches(".>").trim_end_matches('.');
        let local = prefix == "$JS.API"
            || self.limits.domain.as_deref().is_some_and(|d| !d.is_empty() && prefix == format!("$JS.{d}.API"));
        if local {
            return Some(Origin { account: account.to_owned(), stream: source.name.clone() });
        }
        let exporter = self.api_imports.get(account)?.iter().find(|(p, _)| p == prefix).map(|(_, a)| a.clone())?;
        Some(Origin { account: exporter, stream: source.name.clone() })
    }

    /// Tells JetStream which accounts `account` imports the JetStream API
    /// of, and under which prefix (`$JS.<x>.API` → `$JS.API` service
    /// imports): sources and mirrors with that `external` API prefix read
    /// those accounts' streams.
    pub fn set_api_imports(&mut self, account: &str, imports: Vec<(String, String)>) {
        if imports.is_empty() {
            self.api_imports.remove(account);
        } else {
            self.api_imports.insert(account.to_owned(), imports);
        }
        self.upstream_work = true;
    }

    /// Reads what the upstream `id` of `(account, name)` has not taken yet.
    /// Through a durable consumer, reads what the consumer has not
    /// delivered, as far as its `max_ack_pending` allows; the upstream gets
    /// nothing while the consumer is missing, and an error while it does
    /// not acknowledge by flow control, as from nats-server.
    fn read_upstream(&mut self, account: &str, name: &str, id: Option<&str>, room: usize, wall: UnixNanos) -> Option<Batch> {
        let up = self.accounts.get_mut(account)?.upstreams.get_mut(name)?.get_mut(id)?.clone();
        let origin = self.origin_of(account, &up.source)?;
        if !self.is_enabled(&origin.account) {
            return None;
        }
        let acc = self.accounts.get_mut(&origin.account)?;
        let stream = acc.streams.get_mut(&origin.stream)?;
        let consumer = match &up.source.consumer {
            None => None,
            Some(cs) => {
                let Some(c) = acc.consumers.get(&origin.stream).and_then(|m| m.get(&cs.name)) else {
                    // nats-server shows no error while it waits for the consumer.
                    if let Some(u) = self.upstream_mut(account, name, id) {
                        u.error = None;
                    }
                    return None;
                };
                if c.config().ack_policy != super::consumer::AckPolicy::FlowControl {
                    let e = super::api::ApiError::source_consumer_requires_ack_fc();
                    if let Some(u) = self.upstream_mut(account, name, id) {
                        u.error = Some(e);
                    }
                    return None;
                }
                Some(c)
            }
        };
        let origin_ident = name_hash(&stream.created().to_rfc3339());
        let store = stream.store_mut();
        let origin_last = store.state().last_seq;
        let mut start = None;
        let mut from = up.sseq + 1;
        let mut room = room;
        if let Some(c) = consumer {
            from = from.max(c.source_start());
            room = room.min(c.source_room());
        } else if up.start_pending {
            let at = up.source.opt_start_time.as_deref().and_then(super::api::json::parse_rfc3339).unwrap_or(0);
            let mut seq = store.state().first_seq;
            // The first message stored at or after the start time.
            loop {
                match store.load_next(b">", seq) {
                    Ok(Some(m)) if m.time.0 < at => seq = m.seq + 1,
                    Ok(Some(m)) => break start = Some(m.seq),
                    _ => break start = Some(origin_last + 1),
                }
            }
            from = start.unwrap_or(from);
        }
        let mut msgs = Vec::new();
        let mut complete = true;
        let mut scanned = 0;
        while scanned < PUMP_MSGS_MAX {
            let next = up
                .filters
                .iter()
                .filter_map(|(f, _)| store.load_next(or_all(f).as_bytes(), from).ok().flatten())
                .min_by_key(|m| m.seq);
            let Some(m) = next else { break };
            if msgs.len() == room {
                complete = false;
                break;
            }
            scanned += 1;
            from = m.seq + 1;
            // What the durable consumer does not deliver is not taken.
            if consumer.is_none_or(|c| c.matches(&m.subject)) {
                msgs.push(m);
            }
        }
        if scanned == PUMP_MSGS_MAX {
            complete = false;
        }
        let _ = wall;
        Some(Batch { msgs, complete, origin_last, start, origin_ident })
    }

    /// Counts `msgs`, taken by the upstream `id` of `(account, name)`
    /// through its durable consumer, as delivered by the consumer, and
    /// queues the ack of the last behind the writes that stored them, so
    /// the origin forgets nothing (work queue, interest) before the
    /// sourcing stream has it on disk.
    fn deliver_through_consumer(&mut self, account: &str, name: &str, id: Option<&str>, msgs: &[StoredMsg], wrote: bool, wall: UnixNanos) {
        let Some(up) = self.upstream_mut(account, name, id) else { return };
        let Some(cs) = up.source.consumer.clone() else { return };
        let source = up.source.clone();
        let Some(origin) = self.origin_of(account, &source) else { return };
        let Some(c) = self.accounts.get_mut(&origin.account).and_then(|a| a.consumers.get_mut(&origin.stream)).and_then(|m| m.get_mut(&cs.name)) else {
            return;
        };
        let Some(ack) = msgs.iter().map(|m| c.delivered_to_source(m, wall)).last() else { return };
        let last = msgs.last().map_or(0, |m| m.seq);
        if let Some(up) = self.upstream_mut(account, name, id) {
            up.acked = up.acked.max(last);
        }
        let file = self.stream(account, name).is_ok_and(|s| s.config().storage == super::config::StorageType::File);
        let reply = super::Reply { account: origin.account, subject: Bytes::from(ack), headers: None, payload: Bytes::from_static(b"+ACK") };
        if wrote && file {
            self.unsynced.push((None, reply));
        } else {
            self.queue_after_writes(reply);
        }
    }

    /// Moves every mirror and source forward, at most [`PUMP_MSGS_MAX`]
    /// messages in all; asks for another round at once when some remain.
    pub(super) fn pump_upstreams(&mut self, wall: UnixNanos) {
        self.upstream_work = false;
        let targets: Vec<(String, String)> = self
            .accounts
            .iter()
            .filter(|(a, _)| self.enabled.contains(*a))
            .flat_map(|(a, acc)| acc.upstreams.keys().map(move |n| (a.clone(), n.clone())))
            .collect();
        let mut room = PUMP_MSGS_MAX;
        for (account, name) in targets {
            let ids = self.accounts[&account].upstreams[&name].ids();
            for id in ids {
                if room == 0 {
                    self.upstream_work = true;
                    return;
                }
                room -= self.pump_one(&account, &name, id.as_deref(), room, wall);
            }
        }
    }

    /// Moves one upstream forward; returns how many messages it read.
    fn pump_one(&mut self, account: &str, name: &str, id: Option<&str>, room: usize, wall: UnixNanos) -> usize {
        let batch = self.read_upstream(account, name, id, room, wall);
        let Some(up) = self.upstream_mut(account, name, id) else { return 0 };
        let Some(batch) = batch else {
            // No origin (yet): nothing heard from it.
            up.found_at = None;
            up.lag = 0;
            return 0;
        };
        up.found_at.get_or_insert(wall);
        if let Some(start) = batch.start {
            up.sseq = start.saturating_sub(1);
            up.start_pending = false;
        }
        let read = batch.msgs.len();
        let mut stored = false;
        let mut taken = Vec::new();
        for msg in batch.msgs {
            match self.take_upstream_msg(account, name, id, &msg, &batch.origin_ident, wall) {
                Ok(wrote) => {
                    stored |= wrote;
                    taken.push(msg);
                }
                Err(e) => {
                    let line = format!("Error processing inbound {} for '{account} > {name}': {e}", if id.is_none() { "mirror message" } else { "source message" });
                    self.log(Level::Warn, line);
                    if let Some(up) = self.upstream_mut(account, name, id) {
                        up.error = Some(e);
                    }
                    break;
                }
            }
        }
        self.deliver_through_consumer(account, name, id, &taken, stored, wall);
        let full = read == room;
        if let Some(up) = self.upstream_mut(account, name, id) {
            if batch.complete && up.error.is_none() {
                // Everything up to the origin's last sequence was seen.
                up.sseq = up.sseq.max(batch.origin_last);
            }
            up.lag = batch.origin_last.saturating_sub(up.sseq);
            if full {
                self.upstream_work = true;
            }
        }
        if stored {
            if self.stream(account, name).is_ok_and(|s| s.config().storage == super::config::StorageType::File) {
                self.mark_dirty((account.to_owned(), name.to_owned()));
            }
            self.pump_consumers(account, name, wall);
            // What this stream took may feed streams downstream of it.
            self.upstream_work = true;
        }
        read
    }

    fn upstream_mut(&mut self, account: &str, name: &str, id: Option<&str>) -> Option<&mut Upstream> {
        self.accounts.get_mut(account)?.upstreams.get_mut(name)?.get_mut(id)
    }

    /// Stores one origin message in the downstream; true when written.
    /// A failure leaves the cursor before the message, to try again.
    fn take_upstream_msg(
        &mut self,
        account: &str,
        name: &str,
        id: Option<&str>,
        msg: &StoredMsg,
        origin_ident: &str,
        wall: UnixNanos,
    ) -> Result<bool, super::api::ApiError> {
        let up = self.upstream_mut(account, name, id).expect("pumped");
        let Some(subject) = up.map(&msg.subject, wall) else {
            up.sseq = up.sseq.max(msg.seq);
            return Ok(false);
        };
        let source_header = id.map(|_| {
            let iname = up.source.index_name();
            let mut parts = iname.splitn(3, ' ').skip(1);
            let (filter, dest) = (parts.next().unwrap_or(">"), parts.next().unwrap_or(">"));
            let subject = String::from_utf8_lossy(&msg.subject);
            format!("{} {} {filter} {dest} {subject} {origin_ident}", up.ident, msg.seq)
        });
        let quota = self.quota_for(account, name);
        let stream = self.accounts.get_mut(account).and_then(|a| a.streams.get_mut(name)).expect("pumped");
        let wrote = match source_header {
            None => stream.store_mirrored(msg, &subject, &quota, wall)?,
            Some(value) => {
                let stripped = strip_for_source(msg.headers.as_deref());
                let hdrs = headers::append(stripped.as_deref(), &[(STREAM_SOURCE, value.as_bytes())]);
                let stored = stream.publish(&subject, Some(&hdrs), &msg.payload, wall, &quota)?;
                !stored.duplicate
            }
        };
        let up = self.upstream_mut(account, name, id).expect("pumped");
        up.sseq = up.sseq.max(msg.seq);
        up.taken = msg.seq;
        up.last_msg_at = Some(wall);
        up.error = None;
        Ok(wrote)
    }

    /// Sets up the upstreams of a stream made, changed or recovered; a
    /// recovered one resumes where its stored messages say.
    pub(super) fn attach_upstreams(&mut self, account: &str, name: &str, recovered: bool) {
        let Some(acc) = self.accounts.get_mut(account) else { return };
        let Some(stream) = acc.streams.get_mut(name) else { return };
        let old = acc.upstreams.remove(name);
        let next = match old {
            Some(old) => old.updated(stream.config()),
            None => Upstreams::of(stream.config()),
        };
        let Some(mut ups) = next else { return };
        if recovered {
            resume(&mut ups, stream);
        }
        acc.upstreams.insert(name.to_owned(), ups);
        self.upstream_work = true;
    }

    /// True when a stream reads through the durable consumer `name` of
    /// `(account, stream)`: nats-server then shows it `push_bound`, as the
    /// sourcing stream subscribes to its deliver subject.
    pub(crate) fn sourced_through(&self, account: &str, stream: &str, name: &str) -> bool {
        self.accounts.iter().any(|(down, acc)| {
            acc.upstreams.values().flat_map(|u| u.mirror.iter().chain(u.sources.values())).any(|up| {
                up.found_at.is_some()
                    && up.source.consumer.as_ref().is_some_and(|c| c.name == name)
                    && self.origin_of(down, &up.source).is_some_and(|o| o.account == account && o.stream == stream)
            })
        })
    }

    /// Whether mirrors or sources have messages to move now.
    pub(super) fn upstreams_busy(&self) -> bool {
        self.upstream_work
    }

    /// The mirror and sources progress of `(account, name)`.
    pub(super) fn upstream_info(&self, account: &str, name: &str, wall: UnixNanos) -> (Option<StreamSourceInfo>, Vec<StreamSourceInfo>) {
        match self.accounts.get(account).and_then(|a| a.upstreams.get(name)) {
            Some(u) => (u.mirror_info(wall), u.sources_info(wall)),
            None => (None, Vec::new()),
        }
    }
}

/// Sets a recovered stream's upstream positions from its messages: a
/// mirror's from its last sequence, each source's from the newest message
/// it sourced (scanning back from the newest).
fn resume(ups: &mut Upstreams, stream: &mut super::Stream) {
    let state = stream.store().state();
    if let Some(m) = ups.mirror.as_mut() {
        if state.last_seq > 0 {
            m.sseq = m.sseq.max(state.last_seq);
            m.start_pending = false;
        }
    }
    if ups.sources.is_empty() || state.msgs == 0 {
        return;
    }
    let mut seq = state.last_seq;
    while seq >= state.first_seq && seq > 0 {
        if let Ok(Some(msg)) = stream.store_mut().load(seq) {
            if ups.resume_from(&msg) {
                break;
            }
        }
        seq -= 1;
    }
}
