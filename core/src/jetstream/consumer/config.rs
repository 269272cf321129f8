//! A consumer's configuration as nats-server 2.15.1 reads and writes it
//! (`ConsumerConfig`), the create request around it, nats-server's
//! defaults and its validation.
//!
//! Field names are the JSON keys, in the Go struct's order with its
//! `omitempty` rules, so a config round-trips to the bytes nats-server sends.
//! Durations are nanosecond `i64`s, as Go's `time.Duration` is in JSON.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::jetstream::api::json::{go_time_opt, merge_values};
use crate::jetstream::api::ApiError;
use crate::jetstream::config::{
    is_false, is_zero_i64, is_zero_u64, json_words, nullable, subjects_overlap, RetentionPolicy, StreamConfig, MAX_DESCRIPTION_LEN, MAX_METADATA_LEN,
    METADATA_REQUIRED_LEVEL, METADATA_SERVER_LEVEL, METADATA_SERVER_VERSION, JS_API_LEVEL,
};
use crate::time::UnixNanos;

/// Ack wait when none is given (`JsAckWaitDefault`), in nanoseconds.
pub const ACK_WAIT_DEFAULT_NS: i64 = 30_000_000_000;
/// Most unacknowledged messages when none is given (`JsDefaultMaxAckPending`).
pub const MAX_ACK_PENDING_DEFAULT: i64 = 1000;
/// Most waiting pull requests when none is given (`JSWaitQueueDefaultMax`).
pub const MAX_WAITING_DEFAULT: i64 = 512;
/// Inactivity before an ephemeral consumer is removed, when none is given.
pub const INACTIVE_THRESHOLD_DEFAULT_NS: i64 = 5_000_000_000;
/// How long a pinned client keeps its pin without asking, when no
/// `priority_timeout` is given (`JsDefaultPinnedTTL`), in nanoseconds.
pub const PINNED_TTL_DEFAULT_NS: i64 = 120_000_000_000;
/// Longest priority group name.
pub const GROUP_NAME_MAX_LEN: usize = 16;
/// Longest consumer name (`JSMaxNameLen`).
pub const MAX_NAME_LEN: usize = 255;

/// Where a consumer starts in its stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeliverPolicy {
    /// `"all"`: from the first message.
    #[default]
    All,
    /// `"last"`: from the last message.
    Last,
    /// `"new"`: only messages stored after the consumer was made.
    New,
    /// `"by_start_sequence"`: from `opt_start_seq`.
    ByStartSequence,
    /// `"by_start_time"`: from the first message at or after `opt_start_time`.
    ByStartTime,
    /// `"last_per_subject"`: the last message of each subject, then new ones.
    LastPerSubject,
}

/// How a consumer's messages are acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AckPolicy {
    /// `"none"`: a delivery counts as acknowledged.
    #[default]
    None,
    /// `"all"`: an ack acknowledges every earlier delivery too.
    All,
    /// `"explicit"`: each message is acknowledged on its own.
    Explicit,
    /// `"flow_control"` (nats-server 2.14's `AckFlowControl`): like
    /// `all`, with the acks carried by the answers to flow control
    /// requests; what a stream sourcing through a durable consumer uses.
    FlowControl,
}

/// How fast a consumer replays stored messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplayPolicy {
    /// `"instant"`: as fast as possible.
    #[default]
    Instant,
    /// `"original"`: at the pace they were stored.
    Original,
}

json_words!(DeliverPolicy, case_insensitive: false,
    unknown: |raw| format!("can not unmarshal {:?}", raw.to_string()),
    DeliverPolicy::All => "all", DeliverPolicy::Last => "last", DeliverPolicy::New => "new",
    DeliverPolicy::ByStartSequence => "by_start_sequence", DeliverPolicy::ByStartTime => "by_start_time",
    DeliverPolicy::LastPerSubject => "last_per_subject");
json_words!(AckPolicy, case_insensitive: false,
    unknown: |raw| format!("can not unmarshal {:?}", raw.to_string()),
    AckPolicy::None => "none", AckPolicy::All => "all", AckPolicy::Explicit => "explicit",
    AckPolicy::FlowControl => "flow_control");
/// How a pull consumer chooses among the waiting requests of its priority
/// group (nats-server's `PriorityPolicy`, 2.11 onwards).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PriorityPolicy {
    /// `"none"` (omitted in JSON): no priority groups.
    #[default]
    None,
    /// `"overflow"`: a request with `min_pending` or `min_ack_pending` is
    /// served only once the consumer is that far behind.
    Overflow,
    /// `"pinned_client"`: one client (its pin id) gets every message until
    /// it stops asking for `priority_timeout` or is unpinned.
    PinnedClient,
    /// `"prioritized"`: the requests of the lowest `priority` go first.
    Prioritized,
}

impl PriorityPolicy {
    fn is_none(&self) -> bool {
        *self == PriorityPolicy::None
    }
}

json_words!(PriorityPolicy, case_insensitive: false,
    unknown: |raw| format!("unknown priority policy: {raw}"),
    PriorityPolicy::None => "none", PriorityPolicy::Overflow => "overflow",
    PriorityPolicy::PinnedClient => "pinned_client", PriorityPolicy::Prioritized => "prioritized");
json_words!(ReplayPolicy, case_insensitive: false,
    unknown: |raw| format!("can not unmarshal {:?}", raw.to_string()),
    ReplayPolicy::Instant => "instant", ReplayPolicy::Original => "original");


/// A consumer's configuration (nats-server's `ConsumerConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerConfig {
    /// Set for a durable consumer: its name.
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "nullable")]
    pub durable_name: String,
    /// The consumer's name.
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "nullable")]
    pub name: String,
    /// Free text.
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "nullable")]
    pub description: String,
    /// Where delivery starts.
    pub deliver_policy: DeliverPolicy,
    /// The start sequence of `by_start_sequence`.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub opt_start_seq: u64,
    /// The start time of `by_start_time`.
    #[serde(skip_serializing_if = "Option::is_none", with = "go_time_opt")]
    pub opt_start_time: Option<UnixNanos>,
    /// How deliveries are acknowledged.
    pub ack_policy: AckPolicy,
    /// How long an unacknowledged delivery waits before redelivery, ns.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub ack_wait: i64,
    /// Most deliveries of one message, `-1` for no limit.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_deliver: i64,
    /// Ack waits of successive redeliveries, ns.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub backoff: Vec<i64>,
    /// Only messages on this subject.
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "nullable")]
    pub filter_subject: String,
    /// Only messages on these subjects.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub filter_subjects: Vec<String>,
    /// Replay pace.
    pub replay_policy: ReplayPolicy,
    /// Push rate limit, bits per second.
    #[serde(rename = "rate_limit_bps", skip_serializing_if = "is_zero_u64")]
    pub rate_limit: u64,
    /// Sampling of ack advisories (`"50%"`).
    #[serde(rename = "sample_freq", skip_serializing_if = "String::is_empty", deserialize_with = "nullable")]
    pub sample_frequency: String,
    /// Most waiting pull requests.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_waiting: i64,
    /// Most unacknowledged deliveries, `-1` for no limit.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_ack_pending: i64,
    /// Push flow control.
    #[serde(skip_serializing_if = "is_false")]
    pub flow_control: bool,
    /// Deliver headers only, with the payload size in `Nats-Msg-Size`.
    #[serde(skip_serializing_if = "is_false")]
    pub headers_only: bool,
    /// Largest batch of one pull request.
    #[serde(rename = "max_batch", skip_serializing_if = "is_zero_i64")]
    pub max_request_batch: i64,
    /// Longest expiry of one pull request, ns.
    #[serde(rename = "max_expires", skip_serializing_if = "is_zero_i64")]
    pub max_request_expires: i64,
    /// Largest `max_bytes` of one pull request.
    #[serde(rename = "max_bytes", skip_serializing_if = "is_zero_i64")]
    pub max_request_max_bytes: i64,
    /// Push consumers: where messages go.
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "nullable")]
    pub deliver_subject: String,
    /// Push consumers: the queue group of the deliver subject's subscribers.
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "nullable")]
    pub deliver_group: String,
    /// Idle heartbeat interval of a push consumer, ns.
    #[serde(rename = "idle_heartbeat", skip_serializing_if = "is_zero_i64")]
    pub heartbeat: i64,
    /// Inactivity before removal, ns.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub inactive_threshold: i64,
    /// Replicas (0: the stream's).
    #[serde(rename = "num_replicas")]
    pub replicas: i64,
    /// Keep state in memory whatever the stream's storage.
    #[serde(rename = "mem_storage", skip_serializing_if = "is_false")]
    pub memory_storage: bool,
    /// Internal consumers of sources and mirrors.
    #[serde(skip_serializing_if = "is_false")]
    pub direct: bool,
    /// Set by sourcing streams.
    #[serde(skip_serializing_if = "is_false")]
    pub sourcing: bool,
    /// User metadata (and nats-server's `_nats.*` keys).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "nullable")]
    pub metadata: BTreeMap<String, String>,
    /// Paused until this time.
    #[serde(skip_serializing_if = "Option::is_none", with = "go_time_opt")]
    pub pause_until: Option<UnixNanos>,
    /// Priority group names.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub priority_groups: Vec<String>,
    /// Priority policy (`"none"` is omitted).
    #[serde(skip_serializing_if = "PriorityPolicy::is_none", deserialize_with = "nullable")]
    pub priority_policy: PriorityPolicy,
    /// Pinned client timeout, ns.
    #[serde(rename = "priority_timeout", skip_serializing_if = "is_zero_i64")]
    pub pinned_ttl: i64,
}

impl ConsumerConfig {
    /// True for a push consumer.
    pub fn is_push(&self) -> bool {
        !self.deliver_subject.is_empty()
    }

    /// True for a durable consumer.
    pub fn is_durable(&self) -> bool {
        !self.durable_name.is_empty()
    }

    /// The filters, `filter_subject` or `filter_subjects` (empty: all).
    pub fn filters(&self) -> Vec<String> {
        if self.filter_subject.is_empty() {
            self.filter_subjects.clone()
        } else {
            vec![self.filter_subject.clone()]
        }
    }

    /// Drops the response-only metadata and sets `_nats.req.level`.
    pub fn set_static_metadata(&mut self) {
        self.metadata.remove(METADATA_SERVER_VERSION);
        self.metadata.remove(METADATA_SERVER_LEVEL);
        let level = if self.ack_policy == AckPolicy::FlowControl {
            4
        } else if self.pause_until.is_some() || !self.priority_groups.is_empty() {
            1
        } else {
            0
        };
        self.metadata.insert(METADATA_REQUIRED_LEVEL.to_owned(), level.to_string());
    }

    /// A copy with `_nats.ver` and `_nats.level` added, as create and info
    /// responses carry.
    pub fn with_dynamic_metadata(&self, version: &str) -> ConsumerConfig {
        let mut cfg = self.clone();
        cfg.metadata.insert(METADATA_SERVER_VERSION.to_owned(), version.to_owned());
        cfg.metadata.insert(METADATA_SERVER_LEVEL.to_owned(), JS_API_LEVEL.to_string());
        cfg
    }
}

/// What a create request asks: create only, update only, or either.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConsumerAction {
    /// `""`: create, or update if it exists.
    #[default]
    CreateOrUpdate,
    /// `"create"`: fail if it exists with another config.
    Create,
    /// `"update"`: fail if it does not exist.
    Update,
}

/// Body of `CONSUMER.CREATE` and `CONSUMER.DURABLE.CREATE`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreateConsumerRequest {
    /// The stream named in the body.
    pub stream_name: String,
    /// The config, absent when the body has none (nats-server then uses
    /// an empty one).
    pub config: Option<ConsumerConfig>,
    /// Create, update or either.
    pub action: ConsumerAction,
    /// Refuse rather than adjust questionable settings.
    pub pedantic: bool,
}

impl CreateConsumerRequest {
    /// Decodes a create body with nats-server's errors.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        const GO_TYPE: &str = "CreateConsumerRequest";
        let Some(mut fields) = merge_values(body, GO_TYPE)? else {
            return Err(ApiError::bad_request());
        };
        let bad = |what: &str, v: &Value| {
            ApiError::invalid_json(format!(
                "json: cannot unmarshal {v} into Go struct field CreateConsumerRequest.{what}"
            ))
        };
        let stream_name = match fields.remove("stream_name") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s,
            Some(v) => return Err(bad("stream_name", &v)),
        };
        let action = match fields.remove("action") {
            None | Some(Value::Null) => ConsumerAction::CreateOrUpdate,
            Some(Value::String(s)) => match s.as_str() {
                "" => ConsumerAction::CreateOrUpdate,
                "create" => ConsumerAction::Create,
                "update" => ConsumerAction::Update,
                _ => return Err(ApiError::invalid_json(format!("unknown consumer action: {s}"))),
            },
            Some(v) => return Err(bad("action", &v)),
        };
        let pedantic = match fields.remove("pedantic") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(v) => return Err(bad("pedantic", &v)),
        };
        let config = match fields.remove("config") {
            None | Some(Value::Null) => None,
            Some(v) => Some(serde_json::from_value::<ConsumerConfig>(v).map_err(|e| ApiError::invalid_json(go_json_error(&e)))?),
        };
        if let Some(unknown) = fields.keys().next() {
            return Err(ApiError::invalid_json(format!("json: unknown field {unknown:?}")));
        }
        Ok(CreateConsumerRequest { stream_name, config, action, pedantic })
    }
}

/// A decoding error as Go's `encoding/json` words the ones a client can
/// tell apart: an unknown field is `json: unknown field "x"`.
fn go_json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.strip_prefix("unknown field `").and_then(|rest| rest.split_once('`')) {
        Some((field, _)) => format!("json: unknown field {field:?}"),
        None => text,
    }
}

/// nats-server's `isValidAssetName`: no `.`, `*`, `>`, path separators or
/// whitespace.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| matches!(c, '.' | '*' | '>' | '/' | '\\') || c.is_whitespace())
}

fn valid_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.split('.').all(|t| !t.is_empty() && !t.chars().any(char::is_whitespace))
        && subject.split('.').enumerate().all(|(i, t)| t != ">" || i == subject.split('.').count() - 1)
}

fn is_literal(subject: &str) -> bool {
    subject.split('.').all(|t| t != "*" && t != ">")
}

/// Applies nats-server's defaults (`setConsumerConfigDefaults`) for a
/// consumer of `stream`.
pub fn set_defaults(cfg: &mut ConsumerConfig, stream: &StreamConfig, pedantic: bool) -> Result<(), ApiError> {
    let negative = |v: i64, what: &str| -> Result<(), ApiError> {
        if pedantic && v < 0 {
            return Err(ApiError::pedantic(format!("{what} must not be negative")));
        }
        Ok(())
    };
    if cfg.max_deliver == 0 || cfg.max_deliver < -1 {
        if pedantic && cfg.max_deliver < -1 {
            return Err(ApiError::pedantic("max_deliver must be set to -1"));
        }
        cfg.max_deliver = -1;
    }
    negative(cfg.max_waiting, "max_waiting")?;
    cfg.max_waiting = cfg.max_waiting.max(0);
    if cfg.max_ack_pending < -1 {
        if pedantic {
            return Err(ApiError::pedantic("max_ack_pending must be set to -1"));
        }
        cfg.max_ack_pending = -1;
    }
    negative(cfg.max_request_batch, "max_batch")?;
    cfg.max_request_batch = cfg.max_request_batch.max(0);
    negative(cfg.max_request_expires, "max_expires")?;
    cfg.max_request_expires = cfg.max_request_expires.max(0);
    negative(cfg.max_request_max_bytes, "max_bytes")?;
    cfg.max_request_max_bytes = cfg.max_request_max_bytes.max(0);
    negative(cfg.heartbeat, "idle_heartbeat")?;
    cfg.heartbeat = cfg.heartbeat.max(0);
    negative(cfg.inactive_threshold, "inactive_threshold")?;
    cfg.inactive_threshold = cfg.inactive_threshold.max(0);
    negative(cfg.pinned_ttl, "priority_timeout")?;
    cfg.pinned_ttl = cfg.pinned_ttl.max(0);
    if !cfg.is_push() && cfg.max_waiting == 0 {
        cfg.max_waiting = MAX_WAITING_DEFAULT;
    }
    if cfg.ack_wait == 0 && matches!(cfg.ack_policy, AckPolicy::Explicit | AckPolicy::All) {
        cfg.ack_wait = ACK_WAIT_DEFAULT_NS;
    }
    if let Some(&first) = cfg.backoff.first() {
        if pedantic && cfg.ack_wait != first {
            return Err(ApiError::pedantic("first backoff value has to equal batch AckWait"));
        }
        cfg.ack_wait = first;
    }
    if cfg.max_ack_pending == 0 {
        cfg.max_ack_pending = stream.consumer_limits.max_ack_pending;
    }
    if cfg.inactive_threshold == 0 {
        cfg.inactive_threshold = stream.consumer_limits.inactive_threshold;
    }
    if cfg.max_ack_pending == 0 && cfg.ack_policy != AckPolicy::None {
        cfg.max_ack_pending = MAX_ACK_PENDING_DEFAULT;
    }
    if cfg.priority_policy == PriorityPolicy::PinnedClient && cfg.pinned_ttl == 0 {
        cfg.pinned_ttl = PINNED_TTL_DEFAULT_NS;
    }
    if cfg.ack_policy == AckPolicy::FlowControl && !pedantic {
        cfg.flow_control = true;
        cfg.heartbeat = ACK_FC_HEARTBEAT_NS;
    }
    Ok(())
}

/// The heartbeat a `flow_control` ack policy consumer must have: the one
/// of the consumers nats-server makes for sources.
pub const ACK_FC_HEARTBEAT_NS: i64 = 1_000_000_000;

/// nats-server's checks of the `flow_control` ack policy.
fn check_ack_flow_control(cfg: &ConsumerConfig) -> Result<(), ApiError> {
    if cfg.ack_policy != AckPolicy::FlowControl {
        return Ok(());
    }
    if !cfg.is_push() {
        return Err(ApiError::consumer_ack_fc_requires_push());
    }
    if !cfg.flow_control {
        return Err(ApiError::consumer_ack_fc_requires_fc());
    }
    if cfg.heartbeat != ACK_FC_HEARTBEAT_NS {
        return Err(ApiError::stream_invalid_config("flow control ack policy heartbeat needs to be 1s"));
    }
    if cfg.max_ack_pending <= 0 {
        return Err(ApiError::consumer_ack_fc_requires_max_ack_pending());
    }
    if cfg.ack_wait != 0 || !cfg.backoff.is_empty() {
        return Err(ApiError::consumer_ack_fc_requires_no_ack_wait());
    }
    if cfg.max_deliver > 0 {
        return Err(ApiError::consumer_ack_fc_requires_no_max_deliver());
    }
    Ok(())
}

/// nats-server's `checkConsumerCfg`, for a consumer of `stream`.
pub fn check(cfg: &ConsumerConfig, stream: &StreamConfig) -> Result<(), ApiError> {
    if !cfg.name.is_empty() && !valid_name(&cfg.name) {
        return Err(ApiError::stream_invalid_config("consumer name can not contain '.', '*', '>', '\\', '/'"));
    }
    if !cfg.durable_name.is_empty() && !valid_name(&cfg.durable_name) {
        return Err(ApiError::stream_invalid_config("consumer durable name can not contain '.', '*', '>', '\\', '/'"));
    }
    if cfg.replicas > 0 && cfg.replicas > stream.num_replicas {
        return Err(ApiError::consumer_replicas_exceeds_stream());
    }
    if cfg.replicas < 0 {
        return Err(ApiError::replicas_count_cannot_be_negative());
    }
    if cfg.backoff.iter().any(|&b| b < 0) {
        return Err(ApiError::consumer_backoff_negative());
    }
    if cfg.ack_wait < 0 {
        return Err(ApiError::consumer_ack_wait_negative());
    }
    check_ack_flow_control(cfg)?;
    if !cfg.backoff.is_empty() && cfg.max_deliver != -1 && cfg.backoff.len() as i64 > cfg.max_deliver {
        return Err(ApiError::consumer_max_deliver_backoff());
    }
    if cfg.description.len() > MAX_DESCRIPTION_LEN {
        return Err(ApiError::consumer_description_too_long(MAX_DESCRIPTION_LEN));
    }
    if cfg.is_push() {
        check_push(cfg, stream)?;
    } else {
        check_pull(cfg, stream)?;
    }
    let limits = &stream.consumer_limits;
    if limits.max_ack_pending > 0 && cfg.max_ack_pending > limits.max_ack_pending {
        return Err(ApiError::consumer_max_pending_ack_excess(limits.max_ack_pending));
    }
    if limits.inactive_threshold > 0 && cfg.inactive_threshold > limits.inactive_threshold {
        return Err(ApiError::consumer_inactive_threshold_excess(go_duration(limits.inactive_threshold)));
    }
    check_filters(cfg, stream)?;
    check_start(cfg)?;
    if cfg.flow_control && cfg.heartbeat == 0 {
        return Err(ApiError::consumer_with_flow_control_needs_heartbeats());
    }
    let metadata: usize = cfg.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if metadata > MAX_METADATA_LEN {
        return Err(ApiError::consumer_metadata_length(MAX_METADATA_LEN));
    }
    check_priority(cfg)?;
    if stream.retention == RetentionPolicy::WorkQueue {
        if !matches!(cfg.ack_policy, AckPolicy::Explicit | AckPolicy::FlowControl) {
            return Err(ApiError::consumer_wq_requires_explicit_ack());
        }
        if cfg.deliver_policy != DeliverPolicy::All {
            return Err(ApiError::consumer_wq_consumer_not_deliver_all());
        }
    }
    Ok(())
}

/// A valid priority group name: 1 to 16 of `A-Z a-z 0-9 / _ = -`.
pub fn valid_group_name(name: &str) -> bool {
    (1..=GROUP_NAME_MAX_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'=' | b'-'))
}

fn check_priority(cfg: &ConsumerConfig) -> Result<(), ApiError> {
    if cfg.priority_policy == PriorityPolicy::None {
        if !cfg.priority_groups.is_empty() {
            return Err(ApiError::consumer_priority_group_with_policy_none());
        }
        if cfg.pinned_ttl > 0 {
            return Err(ApiError::consumer_pinned_ttl_without_priority_policy_none());
        }
        return Ok(());
    }
    if cfg.is_push() {
        return Err(ApiError::consumer_push_with_priority_group());
    }
    if cfg.priority_groups.is_empty() {
        return Err(ApiError::consumer_priority_policy_without_group());
    }
    for group in &cfg.priority_groups {
        if group.is_empty() {
            return Err(ApiError::consumer_empty_group_name());
        }
        if !valid_group_name(group) {
            return Err(ApiError::consumer_invalid_group_name());
        }
    }
    Ok(())
}

fn check_push(cfg: &ConsumerConfig, stream: &StreamConfig) -> Result<(), ApiError> {
    if !is_literal(&cfg.deliver_subject) {
        return Err(ApiError::consumer_deliver_to_wildcards());
    }
    if !valid_subject(&cfg.deliver_subject) {
        return Err(ApiError::consumer_invalid_deliver_subject());
    }
    if stream.subjects.iter().any(|s| subjects_overlap(std::slice::from_ref(s), std::slice::from_ref(&cfg.deliver_subject))) {
        return Err(ApiError::consumer_deliver_cycle());
    }
    if cfg.max_waiting != 0 {
        return Err(ApiError::consumer_push_max_waiting());
    }
    if cfg.max_ack_pending > 0 && cfg.ack_policy == AckPolicy::None {
        return Err(ApiError::consumer_max_pending_ack_policy_required());
    }
    if cfg.heartbeat > 0 && cfg.heartbeat < 100_000_000 {
        return Err(ApiError::consumer_small_heartbeat());
    }
    Ok(())
}

fn check_pull(cfg: &ConsumerConfig, stream: &StreamConfig) -> Result<(), ApiError> {
    if cfg.ack_policy == AckPolicy::None && stream.retention == RetentionPolicy::WorkQueue {
        return Err(ApiError::consumer_pull_requires_ack());
    }
    if cfg.rate_limit > 0 {
        return Err(ApiError::consumer_pull_with_rate_limit());
    }
    if cfg.max_waiting < 0 {
        return Err(ApiError::consumer_max_waiting_negative());
    }
    if cfg.heartbeat > 0 {
        return Err(ApiError::consumer_hb_requires_push());
    }
    if cfg.flow_control {
        return Err(ApiError::consumer_fc_requires_push());
    }
    if cfg.max_request_batch < 0 {
        return Err(ApiError::consumer_max_request_batch_negative());
    }
    if cfg.max_request_expires != 0 && cfg.max_request_expires < 1_000_000 {
        return Err(ApiError::consumer_max_request_expires_too_small());
    }
    Ok(())
}

fn check_filters(cfg: &ConsumerConfig, stream: &StreamConfig) -> Result<(), ApiError> {
    if !cfg.filter_subject.is_empty() && !cfg.filter_subjects.is_empty() {
        return Err(ApiError::consumer_duplicate_filter_subjects());
    }
    if !cfg.filter_subject.is_empty() && !valid_subject(&cfg.filter_subject) {
        return Err(ApiError::stream_invalid_config("invalid subject"));
    }
    for (i, f) in cfg.filter_subjects.iter().enumerate() {
        if f.is_empty() {
            return Err(ApiError::consumer_empty_filter());
        }
        if !valid_subject(f) {
            return Err(ApiError::stream_invalid_config("invalid subject"));
        }
        if cfg.filter_subjects[..i].iter().any(|g| subjects_overlap(std::slice::from_ref(g), std::slice::from_ref(f))) {
            return Err(ApiError::consumer_overlapping_subject_filters());
        }
    }
    let _ = stream;
    Ok(())
}

fn check_start(cfg: &ConsumerConfig) -> Result<(), ApiError> {
    let policy = |text: &str| Err(ApiError::consumer_invalid_policy(text));
    match cfg.deliver_policy {
        DeliverPolicy::All | DeliverPolicy::Last | DeliverPolicy::New | DeliverPolicy::LastPerSubject => {
            if cfg.opt_start_seq > 0 {
                return policy(&format!(
                    "consumer delivery policy is deliver {}, but optional start sequence is also set",
                    policy_word(cfg.deliver_policy)
                ));
            }
            if cfg.opt_start_time.is_some() {
                return policy(&format!(
                    "consumer delivery policy is deliver {}, but optional start time is also set",
                    policy_word(cfg.deliver_policy)
                ));
            }
        }
        DeliverPolicy::ByStartSequence => {
            if cfg.opt_start_seq == 0 {
                return policy("consumer delivery policy is deliver by start sequence, but optional start sequence is not set");
            }
            if cfg.opt_start_time.is_some() {
                return policy("consumer delivery policy is deliver by start sequence, but optional start time is also set");
            }
        }
        DeliverPolicy::ByStartTime => {
            if cfg.opt_start_time.is_none() {
                return policy("consumer delivery policy is deliver by start time, but optional start time is not set");
            }
            if cfg.opt_start_seq != 0 {
                return policy("consumer delivery policy is deliver by start time, but optional start sequence is also set");
            }
        }
    }
    Ok(())
}

fn policy_word(p: DeliverPolicy) -> &'static str {
    match p {
        DeliverPolicy::All => "all",
        DeliverPolicy::Last => "last",
        DeliverPolicy::New => "new",
        DeliverPolicy::LastPerSubject => "last per subject",
        DeliverPolicy::ByStartSequence => "by start sequence",
        DeliverPolicy::ByStartTime => "by start time",
    }
}

/// Go's `time.Duration` text for whole seconds and milliseconds (`5s`, `1.5s`, `100ms`).
pub fn go_duration(ns: i64) -> String {
    if ns % 1_000_000_000 == 0 {
        format!("{}s", ns / 1_000_000_000)
    } else if ns < 1_000_000_000 && ns % 1_000_000 == 0 {
        format!("{}ms", ns / 1_000_000)
    } else {
        let secs = ns as f64 / 1e9;
        format!("{secs}s")
    }
}

/// The fields an update may change (nats-server's `acceptable` update
/// check); the error for the first that differs.
pub fn check_update(old: &ConsumerConfig, new: &ConsumerConfig) -> Result<(), ApiError> {
    let refuse = |what: &str| Err(ApiError::consumer_create(format!("{what} can not be updated")));
    if old.deliver_policy != new.deliver_policy {
        return refuse("deliver policy");
    }
    if old.opt_start_seq != new.opt_start_seq {
        return refuse("start sequence");
    }
    if old.opt_start_time != new.opt_start_time {
        return refuse("start time");
    }
    if old.ack_policy != new.ack_policy {
        return refuse("ack policy");
    }
    if old.replay_policy != new.replay_policy {
        return refuse("replay policy");
    }
    if old.is_push() != new.is_push() {
        return Err(ApiError::consumer_create("can not update push consumer to pull based"));
    }
    if old.deliver_group != new.deliver_group {
        return refuse("deliver group");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_nats_server_json() {
        let json = r#"{"durable_name":"D","name":"D","deliver_policy":"all","ack_policy":"explicit","ack_wait":30000000000,"max_deliver":-1,"replay_policy":"instant","max_waiting":512,"max_ack_pending":1000,"num_replicas":0,"metadata":{"_nats.req.level":"0"}}"#;
        let cfg: ConsumerConfig = serde_json::from_str(json).unwrap();
        assert_eq!(String::from_utf8(crate::jetstream::api::to_go_json(&cfg)).unwrap(), json);
    }

    #[test]
    fn defaults_match_nats_server() {
        let stream = StreamConfig { name: "S".into(), num_replicas: 1, subjects: vec!["s.>".into()], ..Default::default() };
        let mut cfg = ConsumerConfig { durable_name: "D".into(), ack_policy: AckPolicy::Explicit, ..Default::default() };
        set_defaults(&mut cfg, &stream, false).unwrap();
        check(&cfg, &stream).unwrap();
        assert_eq!((cfg.ack_wait, cfg.max_deliver, cfg.max_waiting, cfg.max_ack_pending), (30_000_000_000, -1, 512, 1000));
        let mut push = ConsumerConfig { deliver_subject: "s.x".into(), ..Default::default() };
        set_defaults(&mut push, &stream, false).unwrap();
        assert_eq!(check(&push, &stream), Err(ApiError::consumer_deliver_cycle()));
        let mut seq = ConsumerConfig { deliver_policy: DeliverPolicy::ByStartSequence, ..Default::default() };
        set_defaults(&mut seq, &stream, false).unwrap();
        assert_eq!(
            check(&seq, &stream).unwrap_err().description,
            "consumer delivery policy is deliver by start sequence, but optional start sequence is not set"
        );
    }

    #[test]
    fn parses_create_requests() {
        let r = CreateConsumerRequest::parse(br#"{"stream_name":"S","config":{"name":"C"},"action":"create"}"#).unwrap();
        assert_eq!(r.action, ConsumerAction::Create);
        assert_eq!(r.config.unwrap().name, "C");
        assert!(CreateConsumerRequest::parse(br#"{"stream_name":"S","config":{"ack_policy":"maybe"}}"#).is_err());
        assert_eq!(CreateConsumerRequest::parse(b""), Err(ApiError::bad_request()));
    }
}
