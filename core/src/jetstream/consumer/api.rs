//! The `$JS.API.CONSUMER.…` requests, acknowledgements on `$JS.ACK.…`, and
//! the JetStream manager's side of its consumers: creating, finding,
//! pumping after publishes, running their clocks and deleting them.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use super::config::{self, ConsumerAction, ConsumerConfig, CreateConsumerRequest};
use super::advisories::Lifecycle;
use super::{AckKind, AckSubject, Consumer, Delivery, SeqPair};
use crate::jetstream::api::json::{go_time, to_go_json};
use crate::jetstream::api::{self, ApiError};
use crate::jetstream::{JetStream, Reply};
use crate::time::UnixNanos;

/// How often push consumers without interest ask again, in nanoseconds.
/// How soon a push consumer without interest is asked about again: first
/// after 1 ms (the subscription may be on its way, sent with the request
/// that made the consumer), then twice as long each time, up to 100 ms.
const INTEREST_RECHECK_FIRST_NS: i64 = 1_000_000;
const INTEREST_RECHECK_MAX_NS: i64 = 100_000_000;

/// Response `type`s of the consumer API.
pub mod kinds {
    /// `CONSUMER.CREATE` and `CONSUMER.DURABLE.CREATE`.
    pub const CREATE: &str = "io.nats.jetstream.api.v1.consumer_create_response";
    /// `CONSUMER.INFO`.
    pub const INFO: &str = "io.nats.jetstream.api.v1.consumer_info_response";
    /// `CONSUMER.NAMES`.
    pub const NAMES: &str = "io.nats.jetstream.api.v1.consumer_names_response";
    /// `CONSUMER.LIST`.
    pub const LIST: &str = "io.nats.jetstream.api.v1.consumer_list_response";
    /// `CONSUMER.DELETE`.
    pub const DELETE: &str = "io.nats.jetstream.api.v1.consumer_delete_response";
    /// `CONSUMER.PAUSE`.
    pub const PAUSE: &str = "io.nats.jetstream.api.v1.consumer_pause_response";
    /// `CONSUMER.UNPIN`.
    pub const UNPIN: &str = "io.nats.jetstream.api.v1.consumer_unpin_response";
    /// `CONSUMER.RESET`.
    pub const RESET: &str = "io.nats.jetstream.api.v1.consumer_reset_response";
}

/// A parsed consumer API subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// `CONSUMER.CREATE.<stream>[.<name>[.<filter>]]`.
    Create {
        /// The stream.
        stream: &'a str,
        /// The consumer's name, if in the subject.
        name: Option<&'a str>,
        /// The filter, if in the subject.
        filter: Option<&'a str>,
    },
    /// `CONSUMER.DURABLE.CREATE.<stream>.<durable>`.
    DurableCreate {
        /// The stream.
        stream: &'a str,
        /// The durable name.
        durable: &'a str,
    },
    /// `CONSUMER.INFO.<stream>.<name>`.
    Info(&'a str, &'a str),
    /// `CONSUMER.DELETE.<stream>.<name>`.
    Delete(&'a str, &'a str),
    /// `CONSUMER.NAMES.<stream>`.
    Names(&'a str),
    /// `CONSUMER.LIST.<stream>`.
    List(&'a str),
    /// `CONSUMER.MSG.NEXT.<stream>.<name>`.
    Next(&'a str, &'a str),
    /// `CONSUMER.PAUSE.<stream>.<name>`.
    Pause(&'a str, &'a str),
    /// `CONSUMER.UNPIN.<stream>.<name>`.
    Unpin(&'a str, &'a str),
    /// `CONSUMER.RESET.<stream>.<name>` (answered only by an existing
    /// consumer: nats-server subscribes it per consumer).
    Reset(&'a str, &'a str),
}

impl Request<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Request::Create { .. } | Request::DurableCreate { .. } => kinds::CREATE,
            Request::Info(..) | Request::Next(..) => kinds::INFO,
            Request::Delete(..) => kinds::DELETE,
            Request::Names(_) => kinds::NAMES,
            Request::List(_) => kinds::LIST,
            Request::Pause(..) => kinds::PAUSE,
            Request::Unpin(..) => kinds::UNPIN,
            Request::Reset(..) => kinds::RESET,
        }
    }
}

/// Parses `$JS.API.CONSUMER.…`; `None` for anything else.
pub fn parse(subject: &str) -> Option<Request<'_>> {
    let rest = subject.strip_prefix("$JS.API.CONSUMER.")?;
    let two = |r: &'static str| -> Option<(&str, &str)> {
        let (s, n) = rest.strip_prefix(r)?.split_once('.')?;
        (!s.is_empty() && !n.is_empty() && !n.contains('.')).then_some((s, n))
    };
    let one = |r: &'static str| -> Option<&str> {
        let s = rest.strip_prefix(r)?;
        (!s.is_empty() && !s.contains('.')).then_some(s)
    };
    if let Some(r) = rest.strip_prefix("CREATE.") {
        let mut parts = r.splitn(3, '.');
        let stream = parts.next().filter(|s| !s.is_empty())?;
        let name = parts.next().filter(|s| !s.is_empty());
        let filter = parts.next().filter(|s| !s.is_empty());
        return Some(Request::Create { stream, name, filter });
    }
    if let Some((stream, durable)) = two("DURABLE.CREATE.") {
        return Some(Request::DurableCreate { stream, durable });
    }
    if let Some((s, n)) = two("INFO.") {
        return Some(Request::Info(s, n));
    }
    if let Some((s, n)) = two("DELETE.") {
        return Some(Request::Delete(s, n));
    }
    if let Some((s, n)) = two("PAUSE.") {
        return Some(Request::Pause(s, n));
    }
    if let Some((s, n)) = two("MSG.NEXT.") {
        return Some(Request::Next(s, n));
    }
    if let Some((s, n)) = two("UNPIN.") {
        return Some(Request::Unpin(s, n));
    }
    if let Some((s, n)) = two("RESET.") {
        return Some(Request::Reset(s, n));
    }
    if let Some(s) = one("NAMES.") {
        return Some(Request::Names(s));
    }
    one("LIST.").map(Request::List)
}

/// A consumer's info (nats-server's `ConsumerInfo`).
#[derive(Clone, Debug, Serialize)]
pub struct ConsumerInfo {
    /// The stream.
    pub stream_name: String,
    /// The consumer.
    pub name: String,
    /// When it was made.
    #[serde(with = "go_time")]
    pub created: UnixNanos,
    /// Its configuration.
    pub config: ConsumerConfig,
    /// The last delivery.
    pub delivered: SeqPair,
    /// The ack floor.
    pub ack_floor: SeqPair,
    /// Unacknowledged deliveries.
    pub num_ack_pending: u64,
    /// Messages redelivered and still pending.
    pub num_redelivered: u64,
    /// Waiting pull requests.
    pub num_waiting: u64,
    /// Messages not yet delivered.
    pub num_pending: u64,
    /// A push consumer with interest in its deliver subject.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub push_bound: bool,
    /// Paused now.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// How much longer, ns.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub pause_remaining: i64,
    /// When gathered.
    #[serde(with = "go_time")]
    pub ts: UnixNanos,
    /// Priority groups: the first one, with its pinned client (nats-server
    /// reports only the first group).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub priority_groups: Vec<PriorityGroupState>,
}

/// A priority group in a consumer's info (nats-server's `PriorityGroupState`).
#[derive(Clone, Debug, Serialize)]
pub struct PriorityGroupState {
    /// The group.
    pub group: String,
    /// The pinned client's id, if one is pinned.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pinned_client_id: String,
    /// Since when (Go's zero time when none is pinned).
    #[serde(with = "crate::jetstream::api::json::go_time_opt")]
    pub pinned_ts: Option<UnixNanos>,
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

fn with_type(kind: &str, body: &impl Serialize) -> Vec<u8> {
    let inner = to_go_json(body);
    let mut out = Vec::with_capacity(inner.len() + kind.len() + 12);
    out.extend_from_slice(br#"{"type":""#);
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\"");
    if inner.len() > 2 {
        out.push(b',');
        out.extend_from_slice(&inner[1..]);
    } else {
        out.push(b'}');
    }
    out
}

/// An error answer, with the fields nats-server's response always writes.
fn error_body(kind: &str, e: &ApiError) -> Vec<u8> {
    let mut out = api::error_response(kind, e);
    let tail: &[u8] = match kind {
        kinds::NAMES => br#","total":0,"offset":0,"limit":0,"consumers":null}"#,
        kinds::LIST => br#","total":0,"offset":0,"limit":0,"consumers":[]}"#,
        _ => b"",
    };
    if !tail.is_empty() {
        out.pop();
        out.extend_from_slice(tail);
    }
    out
}

/// An ephemeral consumer's name: 8 letters and digits, from a counter mixed
/// with the clock (both inputs, so the choice is deterministic).
fn ephemeral_name(seed: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed;
    (0..8)
        .map(|_| {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            char::from(ALPHABET[(z % ALPHABET.len() as u64) as usize])
        })
        .collect()
}

impl JetStream {
    /// A `$JS.API.CONSUMER.…` request. Returns false when nothing listens
    /// on the subject (a pull request to a consumer that does not exist).
    pub(crate) fn handle_consumer_api(
        &mut self,
        account: &str,
        subject: &[u8],
        request: Request<'_>,
        reply: Option<&Bytes>,
        payload: &Bytes,
        wall: UnixNanos,
    ) -> bool {
        if let Request::Next(stream, name) = request {
            let Some(reply) = reply.cloned() else { return true };
            let Some(acc) = self.accounts.get_mut(account) else { return false };
            let (Some(s), Some(c)) = (acc.streams.get_mut(stream), acc.consumers.get_mut(stream).and_then(|m| m.get_mut(name))) else {
                return false;
            };
            c.handle_pull(reply, payload, wall, s.store_mut());
            self.collect_deliveries(account, stream);
            return true;
        }
        if let Request::Reset(stream, name) = request {
            // Only the consumer itself answers (nats-server subscribes it
            // per consumer); without one, the request meets `$JS.API.>`,
            // which says nothing, so the client times out.
            let exists = self.accounts.get(account).and_then(|a| a.consumers.get(stream)).is_some_and(|m| m.contains_key(name));
            let Some(reply) = reply.cloned().filter(|_| exists) else { return true };
            let body = self.reset_consumer(account, stream, name, payload, wall).unwrap_or_else(|e| {
                let mut body = error_body(kinds::RESET, &e);
                body.pop();
                body.extend_from_slice(br#","reset_seq":0}"#);
                body
            });
            self.confirms_consumers = true;
            self.queue_after_writes(Reply { account: account.to_owned(), subject: reply, headers: None, payload: body.into() });
            return true;
        }
        let Some(reply) = reply.cloned() else { return true };
        let kind = request.kind();
        let body = match self.answer_consumer(account, request, payload, wall) {
            Ok(body) => body,
            Err(e) => {
                self.count_api_error(account);
                error_body(kind, &e)
            }
        };
        self.count_api(account);
        let audit = self.audit(account, subject, payload, &body, wall);
        // A consumer's state is saved with its stream's next sync; the
        // answer waits behind every write asked for so far.
        self.confirms_consumers = true;
        self.queue_after_writes(Reply { account: account.to_owned(), subject: reply, headers: None, payload: body.into() });
        if let Some(audit) = audit {
            self.queue_after_writes(audit);
        }
        true
    }

    fn answer_consumer(&mut self, account: &str, request: Request<'_>, payload: &Bytes, wall: UnixNanos) -> Result<Vec<u8>, ApiError> {
        match request {
            Request::Create { stream, name, filter } => self.create_consumer(account, stream, name, filter, false, payload, wall),
            Request::DurableCreate { stream, durable } => {
                self.create_consumer(account, stream, Some(durable), None, true, payload, wall)
            }
            Request::Info(stream, name) => {
                api::requests::check_empty_request(payload)?;
                let info = self.consumer_info(account, stream, name, wall, true)?;
                Ok(with_type(kinds::INFO, &info))
            }
            Request::Delete(stream, name) => {
                api::requests::check_empty_request(payload)?;
                self.stream(account, stream)?;
                let acc = self.accounts.get_mut(account).ok_or_else(ApiError::consumer_not_found)?;
                let mut c = acc.consumers.get_mut(stream).and_then(|m| m.remove(name)).ok_or_else(ApiError::consumer_not_found)?;
                c.close();
                self.drain_consumer(account, &mut c);
                self.forget_consumer_files(account, stream, name);
                self.advise_consumer(account, stream, name, Lifecycle::Delete, wall);
                Ok(api::success_response(kinds::DELETE))
            }
            Request::Names(stream) => {
                let offset = paging_offset(payload)?;
                self.stream(account, stream)?;
                let names: Vec<String> = self.consumer_names(account, stream);
                #[derive(Serialize)]
                struct Names<'a> {
                    total: usize,
                    offset: usize,
                    limit: usize,
                    consumers: &'a [String],
                }
                let page: Vec<String> = names.iter().skip(offset).take(api::NAMES_LIMIT).cloned().collect();
                Ok(with_type(kinds::NAMES, &Names { total: names.len(), offset, limit: api::NAMES_LIMIT, consumers: &page }))
            }
            Request::List(stream) => {
                let offset = paging_offset(payload)?;
                self.stream(account, stream)?;
                let names = self.consumer_names(account, stream);
                let mut infos = Vec::new();
                for n in names.iter().skip(offset).take(api::LIST_LIMIT) {
                    infos.push(self.consumer_info(account, stream, n, wall, false)?);
                }
                #[derive(Serialize)]
                struct List<'a> {
                    total: usize,
                    offset: usize,
                    limit: usize,
                    consumers: &'a [ConsumerInfo],
                }
                Ok(with_type(kinds::LIST, &List { total: names.len(), offset, limit: api::LIST_LIMIT, consumers: &infos }))
            }
            Request::Pause(stream, name) => self.pause_consumer(account, stream, name, payload, wall),
            Request::Unpin(stream, name) => self.unpin_consumer(account, stream, name, payload, wall),
            Request::Next(..) | Request::Reset(..) => unreachable!("handled before"),
        }
    }

    fn pause_consumer(&mut self, account: &str, stream: &str, name: &str, payload: &[u8], wall: UnixNanos) -> Result<Vec<u8>, ApiError> {
        #[derive(serde::Deserialize, Default)]
        struct PauseRequest {
            #[serde(default, with = "crate::jetstream::api::json::go_time_opt")]
            pause_until: Option<UnixNanos>,
        }
        let req: PauseRequest = if api::requests::is_json_object_or_array(payload) {
            serde_json::from_slice(payload).map_err(|e| ApiError::invalid_json(e.to_string()))?
        } else {
            PauseRequest::default()
        };
        let acc = self.accounts.get_mut(account).ok_or_else(ApiError::stream_not_found)?;
        let s = acc.streams.get_mut(stream).ok_or_else(ApiError::stream_not_found)?;
        let c = acc.consumers.get_mut(stream).and_then(|m| m.get_mut(name)).ok_or_else(ApiError::consumer_not_found)?;
        c.pause(req.pause_until, wall, s.store_mut());
        let remaining = c.paused(wall);
        #[derive(Serialize)]
        struct PauseResponse {
            paused: bool,
            #[serde(with = "crate::jetstream::api::json::go_time_opt")]
            pause_until: Option<UnixNanos>,
            #[serde(skip_serializing_if = "is_zero_i64")]
            pause_remaining: i64,
        }
        let body = with_type(
            kinds::PAUSE,
            &PauseResponse { paused: remaining.is_some(), pause_until: req.pause_until, pause_remaining: remaining.unwrap_or(0) },
        );
        self.save_consumer(account, stream, name);
        self.collect_deliveries(account, stream);
        Ok(body)
    }

    /// `CONSUMER.UNPIN`: checks in nats-server's order (the body, then the
    /// stream, the consumer and its groups).
    fn unpin_consumer(&mut self, account: &str, stream: &str, name: &str, payload: &[u8], wall: UnixNanos) -> Result<Vec<u8>, ApiError> {
        let group = match go_unmarshal_object(payload, "JSApiConsumerUnpinRequest")?.remove("group") {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(g)) => g,
            Some(v) => return Err(go_field_type_error(&v, "JSApiConsumerUnpinRequest.group", "string")),
        };
        if group.is_empty() {
            return Err(ApiError::invalid_json("consumer group not specified"));
        }
        if !super::config::valid_group_name(&group) {
            return Err(ApiError::consumer_invalid_group_name());
        }
        let acc = self.accounts.get_mut(account).ok_or_else(ApiError::stream_not_found)?;
        let s = acc.streams.get_mut(stream).ok_or_else(ApiError::stream_not_found)?;
        let c = acc.consumers.get_mut(stream).and_then(|m| m.get_mut(name)).ok_or_else(ApiError::consumer_not_found)?;
        if !c.config().priority_groups.contains(&group) {
            return Err(ApiError::consumer_invalid_priority_group());
        }
        c.unpin(&group, wall, s.store_mut());
        self.collect_deliveries(account, stream);
        Ok(with_type(kinds::UNPIN, &serde_json::Map::new()))
    }

    /// `CONSUMER.RESET`: the consumer starts again at the sequence asked
    /// (or just above its ack floor); the answer is its info and `reset_seq`.
    fn reset_consumer(&mut self, account: &str, stream: &str, name: &str, payload: &[u8], wall: UnixNanos) -> Result<Vec<u8>, ApiError> {
        let seq = if payload.is_empty() {
            0
        } else {
            match go_unmarshal_object(payload, "JSApiConsumerResetRequest")?.remove("seq") {
                None | Some(serde_json::Value::Null) => 0,
                Some(serde_json::Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(0),
                Some(v) => return Err(go_field_type_error(&v, "JSApiConsumerResetRequest.seq", "uint64")),
            }
        };
        let acc = self.accounts.get_mut(account).ok_or_else(ApiError::stream_not_found)?;
        let s = acc.streams.get_mut(stream).ok_or_else(ApiError::stream_not_found)?;
        let interest = s.config().retention == crate::jetstream::config::RetentionPolicy::Interest;
        let c = acc.consumers.get_mut(stream).and_then(|m| m.get_mut(name)).ok_or_else(ApiError::consumer_not_found)?;
        let reset_seq = c.reset(seq, wall, s.store_mut()).map_err(ApiError::consumer_invalid_reset)?;
        if interest {
            // Messages skipped over no longer wait for this consumer.
            self.apply_retention(account, stream);
        }
        self.collect_deliveries(account, stream);
        let info = self.consumer_info(account, stream, name, wall, true)?;
        let mut body = with_type(kinds::RESET, &info);
        body.pop();
        body.extend_from_slice(format!(r#","reset_seq":{reset_seq}}}"#).as_bytes());
        Ok(body)
    }

    fn consumer_names(&self, account: &str, stream: &str) -> Vec<String> {
        self.accounts
            .get(account)
            .and_then(|a| a.consumers.get(stream))
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// How many consumers `stream` has.
    pub(crate) fn consumer_count(&self, account: &str, stream: &str) -> u64 {
        self.accounts.get(account).and_then(|a| a.consumers.get(stream)).map_or(0, |m| m.len() as u64)
    }

    fn consumer_info(&mut self, account: &str, stream: &str, name: &str, wall: UnixNanos, dynamic: bool) -> Result<ConsumerInfo, ApiError> {
        let sourced = self.sourced_through(account, stream, name);
        let acc = self.accounts.get_mut(account).ok_or_else(ApiError::stream_not_found)?;
        let s = acc.streams.get_mut(stream).ok_or_else(ApiError::stream_not_found)?;
        let c = acc.consumers.get(stream).and_then(|m| m.get(name)).ok_or_else(ApiError::consumer_not_found)?;
        let state = c.state();
        let config = if dynamic { c.config().with_dynamic_metadata(crate::server::VERSION) } else { c.config().clone() };
        Ok(ConsumerInfo {
            stream_name: stream.to_owned(),
            name: name.to_owned(),
            created: c.created(),
            config,
            delivered: state.delivered,
            ack_floor: state.ack_floor,
            num_ack_pending: state.pending.len() as u64,
            num_redelivered: state.redelivered.len() as u64,
            num_waiting: c.num_waiting() as u64,
            num_pending: c.num_pending(s.store_mut()),
            push_bound: c.push_bound() || sourced,
            paused: c.paused(wall).is_some(),
            pause_remaining: c.paused(wall).unwrap_or(0),
            priority_groups: c
                .config()
                .priority_groups
                .first()
                .map(|g| {
                    let pinned = c.pinned();
                    PriorityGroupState {
                        group: g.clone(),
                        pinned_client_id: pinned.map(|(id, _)| id.to_owned()).unwrap_or_default(),
                        pinned_ts: pinned.map(|(_, at)| at),
                    }
                })
                .into_iter()
                .collect(),
            ts: wall,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn create_consumer(
        &mut self,
        account: &str,
        stream: &str,
        subject_name: Option<&str>,
        subject_filter: Option<&str>,
        durable_api: bool,
        payload: &Bytes,
        wall: UnixNanos,
    ) -> Result<Vec<u8>, ApiError> {
        let req = CreateConsumerRequest::parse(payload)?;
        if req.stream_name != stream {
            return Err(ApiError::stream_mismatch());
        }
        let stream_cfg = self.stream(account, stream)?.config().clone();
        let mut cfg = req.config.unwrap_or_default();
        if durable_api {
            let durable = subject_name.unwrap_or_default();
            if cfg.durable_name.is_empty() {
                return Err(ApiError::consumer_durable_name_not_set());
            }
            if cfg.durable_name != durable {
                return Err(ApiError::consumer_durable_name_not_match_subject());
            }
        } else if let Some(name) = subject_name {
            if !cfg.name.is_empty() && cfg.name != name {
                return Err(ApiError::consumer_create(
                    "consumer name in subject does not match name in request".to_owned(),
                ));
            }
            if !cfg.durable_name.is_empty() && cfg.durable_name != name {
                return Err(ApiError::consumer_durable_name_not_match_subject());
            }
            cfg.name = name.to_owned();
            if let Some(filter) = subject_filter {
                if !cfg.filter_subjects.is_empty() {
                    return Err(ApiError::consumer_multiple_filters_not_allowed());
                }
                if cfg.filter_subject != filter {
                    return Err(ApiError::consumer_create_filter_subject_mismatch());
                }
            }
        } else if !cfg.durable_name.is_empty() {
            return Err(ApiError::consumer_ephemeral_with_durable_name());
        }
        if cfg.name.is_empty() {
            cfg.name.clone_from(&cfg.durable_name);
        }
        if !cfg.durable_name.is_empty() && cfg.name != cfg.durable_name {
            return Err(ApiError::consumer_durable_name_not_match_subject());
        }
        if cfg.name.len() > config::MAX_NAME_LEN {
            return Err(ApiError::consumer_name_too_long(config::MAX_NAME_LEN));
        }
        config::set_defaults(&mut cfg, &stream_cfg, req.pedantic)?;
        // An ephemeral's threshold is defaulted by the consumer itself in
        // nats-server, after `action: create` compared what was asked with
        // an existing consumer: asked without one, it never matches.
        let threshold_defaulted = !cfg.is_durable() && cfg.inactive_threshold == 0;
        if threshold_defaulted {
            cfg.inactive_threshold = config::INACTIVE_THRESHOLD_DEFAULT_NS;
        }
        config::check(&cfg, &stream_cfg)?;
        cfg.set_static_metadata();
        self.place_consumer(account, stream, cfg, req.action, threshold_defaulted, wall)
    }

    /// Adds, updates or returns the consumer `cfg` names.
    fn place_consumer(
        &mut self,
        account: &str,
        stream: &str,
        cfg: ConsumerConfig,
        action: ConsumerAction,
        threshold_defaulted: bool,
        wall: UnixNanos,
    ) -> Result<Vec<u8>, ApiError> {
        let max_payload = self.limits.max_payload;
        let acc = self.accounts.get_mut(account).ok_or_else(ApiError::stream_not_found)?;
        let consumers = acc.consumers.entry(stream.to_owned()).or_default();
        // An ephemeral consumer made without a name gets one; its config
        // keeps none, as nats-server reports it.
        let name = if cfg.name.is_empty() {
            let mut seed = u64::try_from(wall.0).unwrap_or(0) ^ (consumers.len() as u64).rotate_left(32);
            loop {
                let name = ephemeral_name(seed);
                if !consumers.contains_key(&name) {
                    break name;
                }
                seed = seed.wrapping_add(1);
            }
        } else {
            cfg.name.clone()
        };
        let s = acc.streams.get_mut(stream).ok_or_else(ApiError::stream_not_found)?;
        if let Some(existing) = consumers.get_mut(&name) {
            // nats-server 2.15.1 accepts `action: create` of an existing
            // consumer only with the very configuration it has.
            if action == ConsumerAction::Create && (threshold_defaulted || *existing.config() != cfg) {
                return Err(ApiError::consumer_already_exists());
            }
            if *existing.config() != cfg {
                config::check_update(existing.config(), &cfg)?;
                existing.update(cfg, wall);
                existing.pump(s.store_mut(), wall);
            }
        } else {
            if action == ConsumerAction::Update {
                return Err(ApiError::consumer_does_not_exist());
            }
            let max = s.config().max_consumers;
            if max > 0 && consumers.len() as i64 >= max {
                return Err(ApiError::maximum_consumers_limit());
            }
            if s.config().retention == crate::jetstream::config::RetentionPolicy::WorkQueue {
                check_work_queue(consumers, &cfg)?;
            }
            let hint = self.interest_hint.take().filter(|(subject, _)| c_deliver_subject(&cfg) == Some(&subject[..]));
            let mut c = Consumer::new(stream, &name, cfg, wall, s.store_mut());
            c.set_rate_burst(rate_burst(s.config().max_msg_size, max_payload));
            c.start_heartbeats(wall);
            if let Some((_, true)) = hint {
                c.set_interest(true, wall, s.store_mut());
            }
            consumers.insert(name.clone(), c);
            self.advise_consumer(account, stream, &name, Lifecycle::Create, wall);
            // A new push consumer is asked about at once, then soon again.
            self.interest_backoff_ns = INTEREST_RECHECK_FIRST_NS;
            self.interest_recheck_at = None;
        }
        self.save_consumer(account, stream, &name);
        self.collect_deliveries(account, stream);
        // A stream may source through it.
        self.upstream_work = true;
        let info = self.consumer_info(account, stream, &name, wall, true)?;
        Ok(with_type(kinds::CREATE, &info))
    }

    /// Moves what a stream's consumers want published to the delivery queue.
    pub(crate) fn collect_deliveries(&mut self, account: &str, stream: &str) {
        let shared = self.delivery_account(account);
        let Some(consumers) = self.accounts.get_mut(account).and_then(|a| a.consumers.get_mut(stream)) else { return };
        let mut events = Vec::new();
        for (name, c) in consumers.iter_mut() {
            while let Some(d) = c.poll_delivery() {
                self.deliveries.push_back((Arc::clone(&shared), d));
            }
            while let Some((at, e)) = c.poll_event() {
                events.push((name.clone(), at, e));
            }
        }
        for (name, c) in consumers.iter_mut() {
            if c.take_dirty() {
                self.consumer_files.mark_dirty(account, stream, name);
            }
        }
        for (name, at, e) in events {
            self.advise_consumer_event(account, stream, &name, at, &e);
        }
    }

    fn drain_consumer(&mut self, account: &str, c: &mut Consumer) {
        let shared = self.delivery_account(account);
        while let Some(d) = c.poll_delivery() {
            self.deliveries.push_back((Arc::clone(&shared), d));
        }
    }

    /// `account`'s name as deliveries carry it: shared by every delivery
    /// of a run, so that a delivery does not allocate its account's name.
    fn delivery_account(&mut self, account: &str) -> Arc<str> {
        match &self.delivery_account {
            Some(last) if &**last == account => Arc::clone(last),
            _ => {
                let shared: Arc<str> = Arc::from(account);
                self.delivery_account = Some(Arc::clone(&shared));
                shared
            }
        }
    }

    /// True when the next delivery to publish is for `account` on `to`.
    pub fn next_delivery_is(&self, account: &str, to: &[u8]) -> bool {
        self.deliveries.front().is_some_and(|(a, d)| &**a == account && d.to == to)
    }

    /// The next consumer delivery or status to publish, with its account.
    pub fn poll_delivery(&mut self) -> Option<(Arc<str>, Delivery)> {
        self.deliveries.pop_front()
    }

    /// After a message was stored in `stream`: its consumers deliver.
    pub(crate) fn pump_consumers(&mut self, account: &str, stream: &str, wall: UnixNanos) {
        let Some(acc) = self.accounts.get_mut(account) else { return };
        let (Some(s), Some(consumers)) = (acc.streams.get_mut(stream), acc.consumers.get_mut(stream)) else { return };
        for c in consumers.values_mut() {
            c.pump(s.store_mut(), wall);
        }
        // Deliveries without acks (ack policy none) count as acknowledged.
        let unacked = consumers.values().any(|c| c.config().ack_policy == super::AckPolicy::None);
        if unacked {
            self.apply_retention(account, stream);
        }
        self.collect_deliveries(account, stream);
    }

    /// A message published on `$JS.ACK.…`. Returns true when a consumer took it.
    pub fn handle_ack(&mut self, account: &str, subject: &[u8], reply: Option<&Bytes>, payload: &Bytes, wall: UnixNanos) -> bool {
        let Some(text) = std::str::from_utf8(subject).ok() else { return false };
        let Some(ack) = AckSubject::parse(text) else { return false };
        let Some(kind) = AckKind::parse(payload) else { return true };
        self.last_wall = self.last_wall.max(wall);
        let Some(acc) = self.accounts.get_mut(account) else { return false };
        let (Some(s), Some(c)) = (acc.streams.get_mut(ack.stream), acc.consumers.get_mut(ack.stream).and_then(|m| m.get_mut(ack.consumer))) else {
            return false;
        };
        let next = matches!(kind, AckKind::Next(_));
        let flow_control = c.config().ack_policy == super::config::AckPolicy::FlowControl;
        let changed = c.handle_ack(&ack, kind, if next { reply.cloned() } else { None }, wall, s.store_mut());
        if changed {
            self.apply_retention(account, ack.stream);
            if flow_control {
                // A stream sourcing through this consumer may take more.
                self.upstream_work = true;
            }
        }
        self.collect_deliveries(account, ack.stream);
        if let (Some(reply), false) = (reply, next) {
            // Double ack: the confirmation waits for the saved state.
            self.confirms_consumers = true;
            self.unsynced.push((None, Reply { account: account.to_owned(), subject: reply.clone(), headers: None, payload: Bytes::new() }));
        }
        true
    }

    /// Tells the next consumer create request whether its deliver subject
    /// (`subject`) has a subscriber, as the control plane knows: nats-server
    /// binds a push consumer at creation when it has, and says so in the
    /// create response (`push_bound`).
    pub fn set_interest_hint(&mut self, hint: Option<(Bytes, bool)>) {
        self.interest_hint = hint;
    }

    /// Deliver subjects of push consumers waiting for interest, when it is
    /// time to ask again: (account, subject). The control plane answers
    /// with [`JetStream::set_interest`].
    pub fn interest_queries(&mut self, wall: UnixNanos) -> Vec<(String, Bytes)> {
        if self.interest_recheck_at.is_some_and(|t| t > wall) {
            return Vec::new();
        }
        self.interest_recheck_at = None;
        let mut out = Vec::new();
        for (account, acc) in &self.accounts {
            for c in acc.consumers.values().flat_map(|m| m.values()) {
                if c.wants_interest() {
                    out.push((account.clone(), Bytes::from(c.config().deliver_subject.clone())));
                }
            }
        }
        out.dedup();
        out
    }

    /// Whether a push consumer of `account` delivers to `subject`.
    pub fn delivers_to(&self, account: &str, subject: &[u8]) -> bool {
        let Some(acc) = self.accounts.get(account) else { return false };
        acc.consumers
            .values()
            .flat_map(|m| m.values())
            .any(|c| c.config().is_push() && c.config().deliver_subject.as_bytes() == subject)
    }

    /// Whether anything in `account` subscribes to `subject`, for the push
    /// consumers delivering there. Without interest, they are asked about
    /// again shortly.
    pub fn set_interest(&mut self, account: &str, subject: &[u8], interest: bool, wall: UnixNanos) {
        let Some(acc) = self.accounts.get_mut(account) else { return };
        let mut touched = Vec::new();
        for (stream, consumers) in &mut acc.consumers {
            let Some(s) = acc.streams.get_mut(stream) else { continue };
            for c in consumers.values_mut() {
                if c.config().is_push() && c.config().deliver_subject.as_bytes() == subject {
                    c.set_interest(interest, wall, s.store_mut());
                    touched.push(stream.clone());
                }
            }
        }
        if interest {
            self.interest_backoff_ns = INTEREST_RECHECK_FIRST_NS;
        } else {
            let wait = self.interest_backoff_ns.clamp(INTEREST_RECHECK_FIRST_NS, INTEREST_RECHECK_MAX_NS);
            self.interest_backoff_ns = (wait * 2).min(INTEREST_RECHECK_MAX_NS);
            let again = UnixNanos(wall.0.saturating_add(wait));
            self.interest_recheck_at = Some(self.interest_recheck_at.map_or(again, |t| t.min(again)));
        }
        touched.dedup();
        for stream in touched {
            self.collect_deliveries(account, &stream);
        }
    }

    /// A consumer's delivery reached nobody: push consumers on that subject
    /// wait for interest, pull requests answered there are dropped, and
    /// the message is offered again first.
    pub fn undelivered(&mut self, account: &str, d: &Delivery, wall: UnixNanos) {
        let ack = d.reply.as_deref().and_then(|r| std::str::from_utf8(r).ok()).and_then(AckSubject::parse);
        if let Some(ack) = &ack {
            let Some(acc) = self.accounts.get_mut(account) else { return };
            if let (Some(s), Some(c)) = (acc.streams.get_mut(ack.stream), acc.consumers.get_mut(ack.stream).and_then(|m| m.get_mut(ack.consumer))) {
                // A push consumer stops first (nats-server delivers nothing
                // without interest), so the message waits for the next
                // subscriber instead of for its ack wait.
                if c.config().is_push() {
                    c.set_interest(false, wall, s.store_mut());
                }
                c.undelivered(&d.to, Some(ack.stream_seq), wall, s.store_mut());
            }
            let stream = ack.stream.to_owned();
            self.collect_deliveries(account, &stream);
        }
        self.set_interest(account, &d.to, false, wall);
    }

    /// A flow control response on `$JS.FC.<stream>.<consumer>.<id>`.
    pub fn handle_flow_control(&mut self, account: &str, subject: &[u8], wall: UnixNanos) -> bool {
        let Some(text) = std::str::from_utf8(subject).ok() else { return false };
        let mut t = text.strip_prefix("$JS.FC.").into_iter().flat_map(|r| r.split('.'));
        let (Some(stream), Some(consumer)) = (t.next(), t.next()) else { return false };
        let Some(acc) = self.accounts.get_mut(account) else { return false };
        let (Some(s), Some(c)) = (acc.streams.get_mut(stream), acc.consumers.get_mut(stream).and_then(|m| m.get_mut(consumer))) else {
            return false;
        };
        let taken = c.handle_flow_control(subject, wall, s.store_mut());
        let stream = stream.to_owned();
        self.collect_deliveries(account, &stream);
        taken
    }

    /// The earliest time a consumer needs its clock run.
    pub(crate) fn consumers_deadline(&self) -> Option<UnixNanos> {
        let recheck = self.interest_recheck_at;
        self.accounts
            .values()
            .flat_map(|a| a.consumers.values().flat_map(|m| m.values()))
            .filter_map(|c| [c.next_deadline(), c.inactive_at()].into_iter().flatten().min())
            .chain(recheck)
            .min()
    }

    /// Runs the consumers' clocks; removes the inactive ones.
    pub(crate) fn consumers_timeout(&mut self, wall: UnixNanos) {
        let mut touched = Vec::new();
        let mut gone = Vec::new();
        for (account, acc) in &mut self.accounts {
            for (stream, consumers) in &mut acc.consumers {
                let Some(s) = acc.streams.get_mut(stream) else { continue };
                for (name, c) in consumers.iter_mut() {
                    if c.next_deadline().is_some_and(|t| t <= wall) {
                        c.handle_timeout(wall, s.store_mut());
                    }
                    if c.inactive(wall) {
                        gone.push((account.clone(), stream.clone(), name.clone()));
                    }
                }
                touched.push((account.clone(), stream.clone()));
            }
        }
        for (account, stream, name) in gone {
            if let Some(mut c) = self.accounts.get_mut(&account).and_then(|a| a.consumers.get_mut(&stream)).and_then(|m| m.remove(&name)) {
                c.close();
                self.drain_consumer(&account, &mut c);
                self.forget_consumer_files(&account, &stream, &name);
                self.advise_consumer(&account, &stream, &name, Lifecycle::Delete, wall);
            }
        }
        for (account, stream) in touched {
            self.collect_deliveries(&account, &stream);
        }
    }

    /// A stream is going: its consumers go with it (announced as deleted
    /// at `advise_at`, when given).
    pub(crate) fn remove_stream_consumers(&mut self, account: &str, stream: &str, advise_at: Option<UnixNanos>) {
        let Some(consumers) = self.accounts.get_mut(account).and_then(|a| a.consumers.remove(stream)) else { return };
        for (name, mut c) in consumers {
            c.close();
            self.drain_consumer(account, &mut c);
            self.forget_consumer_files(account, stream, &name);
            if let Some(wall) = advise_at {
                self.advise_consumer(account, stream, &name, Lifecycle::Delete, wall);
            }
        }
    }

    /// Interest and work-queue retention: removes the messages every
    /// consumer acknowledged.
    pub(crate) fn apply_retention(&mut self, account: &str, stream: &str) {
        use crate::jetstream::config::RetentionPolicy;
        let Some(acc) = self.accounts.get_mut(account) else { return };
        let Some(s) = acc.streams.get_mut(stream) else { return };
        if s.config().retention == RetentionPolicy::Limits {
            return;
        }
        let Some(consumers) = acc.consumers.get(stream).filter(|m| !m.is_empty()) else { return };
        let state = s.store().state();
        // Nothing past the furthest delivery can be acknowledged yet.
        let last = consumers.values().map(|c| c.state().delivered.stream_seq).max().unwrap_or(0).min(state.last_seq);
        let mut removed = false;
        let mut seq = state.first_seq;
        while seq <= last {
            let Ok(Some(m)) = s.store_mut().load_next(b">", seq) else { break };
            seq = m.seq + 1;
            // A message goes once every consumer it is for acknowledged it
            // (work queues have one such consumer: filters may not overlap).
            let mut interested = consumers.values().filter(|c| c.matches(&m.subject)).peekable();
            let done = interested.peek().is_some() && interested.all(|c| c.has_acked(m.seq));
            if !done {
                continue;
            }
            if s.store_mut().remove(m.seq, false).unwrap_or(false) {
                removed = true;
            }
        }
        if removed && s.config().storage == crate::jetstream::config::StorageType::File {
            self.mark_dirty((account.to_owned(), stream.to_owned()));
        }
    }
}

fn check_work_queue(consumers: &super::Consumers, cfg: &ConsumerConfig) -> Result<(), ApiError> {
    let filters = cfg.filters();
    for other in consumers.values() {
        let theirs = other.config().filters();
        if filters.is_empty() || theirs.is_empty() {
            return Err(if filters.is_empty() && theirs.is_empty() {
                ApiError::consumer_wq_multiple_unfiltered()
            } else {
                ApiError::consumer_wq_consumer_not_unique()
            });
        }
        if crate::jetstream::config::subjects_overlap(&filters, &theirs) {
            return Err(ApiError::consumer_wq_consumer_not_unique());
        }
    }
    Ok(())
}

/// The `offset` of a names or list request (other fields ignored).
fn paging_offset(payload: &[u8]) -> Result<usize, ApiError> {
    if !api::requests::is_json_object_or_array(payload) {
        return Ok(0);
    }
    let v: serde_json::Value = serde_json::from_slice(payload).map_err(|e| ApiError::invalid_json(e.to_string()))?;
    Ok(v.get("offset").and_then(serde_json::Value::as_u64).map_or(0, |o| usize::try_from(o).unwrap_or(usize::MAX)))
}

/// The burst of a consumer's rate limit: the largest message its stream
/// may hold, as nats-server sizes it.
pub(crate) fn rate_burst(max_msg_size: i32, max_payload: i64) -> u64 {
    if max_msg_size > 0 {
        max_msg_size as u64
    } else {
        u64::try_from(max_payload).ok().filter(|&p| p > 0).unwrap_or(1024 * 1024)
    }
}

/// `json.Unmarshal` of a request into a Go struct, as far as nats-server's
/// answers show it: the object's fields, or the error text for an empty or
/// unreadable body or one that is not an object.
fn go_unmarshal_object(payload: &[u8], go_type: &str) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    if payload.trim_ascii().is_empty() {
        return Err(ApiError::invalid_json("unexpected end of JSON input"));
    }
    let value: serde_json::Value = serde_json::from_slice(payload).map_err(|e| {
        ApiError::invalid_json(crate::jetstream::api::json::go_unmarshal_syntax_error(&e, payload).unwrap_or_else(|| e.to_string()))
    })?;
    match value {
        serde_json::Value::Object(fields) => Ok(fields),
        serde_json::Value::Null => Ok(serde_json::Map::new()),
        other => Err(ApiError::invalid_json(format!("json: cannot unmarshal {} into Go value of type server.{go_type}", go_kind_word(&other)))),
    }
}

/// `json: cannot unmarshal <kind> into Go struct field <field> of type <ty>`.
fn go_field_type_error(value: &serde_json::Value, field: &str, ty: &str) -> ApiError {
    let kind = match value {
        serde_json::Value::Number(n) => format!("number {n}"),
        other => go_kind_word(other).to_owned(),
    };
    ApiError::invalid_json(format!("json: cannot unmarshal {kind} into Go struct field {field} of type {ty}"))
}

fn go_kind_word(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// The deliver subject of a push consumer's configuration.
fn c_deliver_subject(cfg: &ConsumerConfig) -> Option<&[u8]> {
    cfg.is_push().then_some(cfg.deliver_subject.as_bytes())
}
