//! A stream's configuration as nats-server 2.15.1 reads and writes it.
//!
//! Rust field names are the JSON keys, so a reader of nats-server's wire
//! format finds every field by its name. Durations are nanosecond `i64`s, as
//! Go's `time.Duration` is in JSON. Deserialising gives Go's zero values for
//! absent fields (`max_msgs` 0, no subjects); [`check_stream_config`] then
//! applies nats-server's defaults (`-1`, `[name]`, a 2-minute duplicate
//! window). Serialising follows the Go struct's field order and `omitempty`
//! tags, so a config round-trips to the bytes nats-server sends.

mod checks;
mod transform;
mod update;

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

pub use checks::{
    check_stream_config, check_stream_config_with, subjects_collide,
    subjects_overlap, valid_stream_name, CheckLimits, STREAM_DEFAULT_DUPLICATE_WINDOW_NS,
    STREAM_MAX_NAME_LEN, STREAM_MAX_REPLICAS,
};
pub use transform::validate_mapping;
pub use update::{check_stream_update, check_stream_update_with};

/// nats-server's maximum description length (`JSMaxDescriptionLen`).
pub const MAX_DESCRIPTION_LEN: usize = 4 * 1024;
/// nats-server's maximum total of metadata key and value bytes
/// (`JSMaxMetadataLen`).
pub const MAX_METADATA_LEN: usize = 128 * 1024;
/// The JetStream API level nats-server 2.15.1 implements (`JSApiLevel`).
pub const JS_API_LEVEL: u32 = 5;
/// Metadata key holding the API level a stream requires.
pub const METADATA_REQUIRED_LEVEL: &str = "_nats.req.level";
/// Metadata key with the server version, added to responses only.
pub const METADATA_SERVER_VERSION: &str = "_nats.ver";
/// Metadata key with the server's API level, added to responses only.
pub const METADATA_SERVER_LEVEL: &str = "_nats.level";

/// What a stream keeps: up to its limits, while a consumer is interested,
/// or until one consumer acknowledges (work queue).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RetentionPolicy {
    /// `"limits"`: keep messages until a limit removes them.
    #[default]
    Limits,
    /// `"interest"`: keep messages while some consumer has not acked them.
    Interest,
    /// `"workqueue"`: remove a message once a consumer acks it.
    WorkQueue,
}

/// What a full stream does with a new message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DiscardPolicy {
    /// `"old"`: drop the oldest messages to make room.
    #[default]
    Old,
    /// `"new"`: refuse the new message.
    New,
}

/// Where a stream keeps its messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StorageType {
    /// `"file"`, nats-server's default.
    #[default]
    File,
    /// `"memory"`.
    Memory,
}

/// Compression of a file store's blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// `"none"`.
    #[default]
    None,
    /// `"s2"`.
    S2,
}

/// When a publish is acknowledged relative to its write reaching disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PersistMode {
    /// `"default"`: ack after the write is flushed (omitted from JSON).
    #[default]
    Default,
    /// `"async"`: ack may precede the flush.
    Async,
}

/// The JSON words of a unit enum, and the Go-like error for anything else.
macro_rules! json_words {
    ($ty:ty, case_insensitive: $ci:expr, unknown: $unknown:expr, $($variant:path => $word:literal),+) => {
        impl $ty {
            /// The word nats-server writes in JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($variant => $word),+ }
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = serde_json::Value::deserialize(d)?;
                if let serde_json::Value::String(word) = &raw {
                    let word = if $ci { word.to_ascii_lowercase() } else { word.clone() };
                    $(if word == $word { return Ok($variant); })+
                }
                let unknown: fn(&serde_json::Value) -> String = $unknown;
                Err(de::Error::custom(unknown(&raw)))
            }
        }
    };
}

pub(crate) use json_words;

/// nats-server's `can not unmarshal %q` of the raw JSON value.
fn go_cannot_unmarshal(raw: &serde_json::Value) -> String {
    format!("can not unmarshal {:?}", raw.to_string())
}

json_words!(RetentionPolicy, case_insensitive: false, unknown: go_cannot_unmarshal,
    RetentionPolicy::Limits => "limits", RetentionPolicy::Interest => "interest",
    RetentionPolicy::WorkQueue => "workqueue");
json_words!(DiscardPolicy, case_insensitive: true, unknown: go_cannot_unmarshal,
    DiscardPolicy::Old => "old", DiscardPolicy::New => "new");
json_words!(StorageType, case_insensitive: false, unknown: go_cannot_unmarshal,
    StorageType::File => "file", StorageType::Memory => "memory");
json_words!(Compression, case_insensitive: false,
    unknown: |_| "unknown compression algorithm".to_string(),
    Compression::None => "none", Compression::S2 => "s2");

impl PersistMode {
    /// The word nats-server writes in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PersistMode::Default => "default",
            PersistMode::Async => "async",
        }
    }
}

impl Serialize for PersistMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PersistMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = serde_json::Value::deserialize(d)?;
        match raw.as_str() {
            Some("default" | "") => Ok(PersistMode::Default),
            Some("async") => Ok(PersistMode::Async),
            _ => Err(de::Error::custom(go_cannot_unmarshal(&raw))),
        }
    }
}

/// Go's `null` leaves a field at its zero value; serde would refuse it.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

pub(crate) fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}
pub(crate) fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
pub(crate) fn is_false(v: &bool) -> bool {
    !*v
}
fn is_default_persist(v: &PersistMode) -> bool {
    *v == PersistMode::Default
}

/// A stream's configuration (nats-server's `StreamConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// The stream's name, unique in its account.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// Free text, at most [`MAX_DESCRIPTION_LEN`] bytes.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub description: String,
    /// Subjects the stream captures; `[name]` when none are given.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub subjects: Vec<String>,
    /// What the stream keeps.
    pub retention: RetentionPolicy,
    /// Most consumers, `-1` for no limit.
    pub max_consumers: i64,
    /// Most messages, `-1` for no limit.
    pub max_msgs: i64,
    /// Most bytes, `-1` for no limit.
    pub max_bytes: i64,
    /// Oldest message age in nanoseconds, `0` for no limit.
    pub max_age: i64,
    /// Most messages per subject, `-1` for no limit.
    pub max_msgs_per_subject: i64,
    /// Largest message, `-1` for no limit (a Go `int32`).
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub max_msg_size: i32,
    /// What a full stream drops.
    pub discard: DiscardPolicy,
    /// Where messages live.
    pub storage: StorageType,
    /// Copies kept in a cluster; `0` means 1.
    pub num_replicas: i64,
    /// Publishes are not acknowledged.
    #[serde(skip_serializing_if = "is_false")]
    pub no_ack: bool,
    /// Window for `Nats-Msg-Id` de-duplication, in nanoseconds.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub duplicate_window: i64,
    /// Cluster placement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// The stream this one mirrors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSource>,
    /// Streams this one sources from.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub sources: Vec<StreamSource>,
    /// Block compression.
    pub compression: Compression,
    /// Sequence of the first message of a new stream.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub first_seq: u64,
    /// Rewrite applied to incoming subjects before storing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_transform: Option<SubjectTransformConfig>,
    /// Republish stored messages to another subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub republish: Option<RePublish>,
    /// Answer `$JS.API.DIRECT.GET`.
    pub allow_direct: bool,
    /// A mirror answers direct gets for its origin.
    pub mirror_direct: bool,
    /// Discard new applies per subject (`max_msgs_per_subject`).
    #[serde(skip_serializing_if = "is_false")]
    pub discard_new_per_subject: bool,
    /// No message may be added, deleted or purged; cannot be undone.
    pub sealed: bool,
    /// Refuse message deletes.
    pub deny_delete: bool,
    /// Refuse purges.
    pub deny_purge: bool,
    /// Honour `Nats-Rollup` headers.
    pub allow_rollup_hdrs: bool,
    /// Defaults for consumers of this stream.
    pub consumer_limits: StreamConsumerLimits,
    /// Honour `Nats-TTL` headers.
    pub allow_msg_ttl: bool,
    /// TTL of the markers left when a subject's last message ages out, ns.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub subject_delete_marker_ttl: i64,
    /// The stream holds counters (`Nats-Incr`).
    #[serde(skip_serializing_if = "is_false")]
    pub allow_msg_counter: bool,
    /// Atomic batch publishing.
    #[serde(skip_serializing_if = "is_false")]
    pub allow_atomic: bool,
    /// Message schedules.
    #[serde(skip_serializing_if = "is_false")]
    pub allow_msg_schedules: bool,
    /// When publishes are acknowledged.
    #[serde(skip_serializing_if = "is_default_persist")]
    pub persist_mode: PersistMode,
    /// Fast batch publishing.
    #[serde(skip_serializing_if = "is_false")]
    pub allow_batched: bool,
    /// User metadata (and nats-server's `_nats.*` keys); sorted as Go sorts
    /// map keys in JSON.
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub metadata: BTreeMap<String, String>,
}

/// Cluster placement of a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Placement {
    /// Cluster name.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub cluster: String,
    /// Server tags every peer must carry.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub tags: Vec<String>,
    /// Preferred leader (refused by stream create and update).
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub preferred: String,
}

/// An upstream stream for a mirror or a source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamSource {
    /// The upstream stream's name.
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    /// Start at this upstream sequence.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub opt_start_seq: u64,
    /// Start at this time (RFC 3339, kept as sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<String>,
    /// Only upstream messages matching this subject.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub filter_subject: String,
    /// Filters with rewrites, instead of `filter_subject`.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub subject_transforms: Vec<SubjectTransformConfig>,
    /// The upstream lives in another account or domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStream>,
    /// A durable upstream consumer to source through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer: Option<StreamConsumerSource>,
}

/// A durable consumer a source or mirror reads through.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConsumerSource {
    /// The consumer's name.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub name: String,
    /// Its deliver subject.
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub deliver_subject: String,
}

/// The API and delivery prefixes of a stream in another account or domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExternalStream {
    /// API prefix (`$JS.<domain>.API`).
    #[serde(rename = "api", deserialize_with = "nullable")]
    pub api_prefix: String,
    /// Delivery prefix.
    #[serde(rename = "deliver", deserialize_with = "nullable")]
    pub deliver_prefix: String,
}

/// A subject rewrite: `src` (empty means `>`) to `dest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SubjectTransformConfig {
    /// Subjects to rewrite.
    #[serde(deserialize_with = "nullable")]
    pub src: String,
    /// What they become.
    #[serde(deserialize_with = "nullable")]
    pub dest: String,
}

/// Republishing of stored messages.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RePublish {
    /// Stored subjects to republish (empty means `>`).
    #[serde(
        skip_serializing_if = "String::is_empty",
        deserialize_with = "nullable"
    )]
    pub src: String,
    /// Where they go.
    #[serde(deserialize_with = "nullable")]
    pub dest: String,
    /// Send headers only, with the size in `Nats-Msg-Size`.
    #[serde(skip_serializing_if = "is_false")]
    pub headers_only: bool,
}

/// Defaults a stream imposes on its consumers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConsumerLimits {
    /// Inactivity before a consumer is removed, in nanoseconds.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub inactive_threshold: i64,
    /// Most unacknowledged messages per consumer.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_ack_pending: i64,
}

impl fmt::Display for RetentionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for StorageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl StreamSource {
    /// The domain of an external source (the second token of its API
    /// prefix), or `""`.
    pub fn external_domain(&self) -> &str {
        match &self.external {
            Some(ext) => ext.api_prefix.split('.').nth(1).unwrap_or(""),
            None => "",
        }
    }

    /// The identity nats-server uses to spot duplicate sources: name,
    /// external API prefix, consumer, and the filters with their rewrites
    /// (empty ones read as `>`). nats-server hashes the prefix and the
    /// consumer name; the raw strings identify the same sources.
    pub fn index_name(&self) -> String {
        let mut iname = self.name.clone();
        if let Some(ext) = &self.external {
            iname.push(':');
            iname.push_str(&ext.api_prefix);
        }
        if let Some(consumer) = &self.consumer {
            iname.push_str(":C=");
            iname.push_str(&consumer.name);
        }
        let or_all = |s: &str| {
            if s.is_empty() {
                ">".to_string()
            } else {
                s.to_string()
            }
        };
        let (src, dest) = if self.subject_transforms.is_empty() {
            (or_all(&self.filter_subject), ">".to_string())
        } else {
            let srcs: Vec<String> = self
                .subject_transforms
                .iter()
                .map(|t| or_all(&t.src))
                .collect();
            let dests: Vec<String> = self
                .subject_transforms
                .iter()
                .map(|t| or_all(&t.dest))
                .collect();
            (srcs.join("\x0c"), dests.join("\x0c"))
        };
        format!("{iname} {src} {dest}")
    }

    /// The identity of the durable consumer a source reads through: the
    /// stream (with external prefix) and the consumer name.
    pub fn consumer_index_name(&self) -> String {
        let mut iname = self.name.clone();
        if let Some(ext) = &self.external {
            iname.push(':');
            iname.push_str(&ext.api_prefix);
        }
        let consumer = self.consumer.as_ref().map_or("", |c| c.name.as_str());
        format!("{iname} {consumer}")
    }
}

impl StreamConfig {
    /// Sets `_nats.req.level` to the API level the config's features
    /// require and drops the response-only keys, as nats-server does before
    /// storing a created or updated config.
    pub fn set_static_metadata(&mut self) {
        self.metadata.remove(METADATA_SERVER_VERSION);
        self.metadata.remove(METADATA_SERVER_LEVEL);
        let mut level = 0;
        if self.allow_msg_ttl || self.subject_delete_marker_ttl > 0 {
            level = level.max(1);
        }
        if self.allow_msg_counter
            || self.allow_atomic
            || self.allow_msg_schedules
            || self.persist_mode == PersistMode::Async
        {
            level = level.max(2);
        }
        if self.allow_batched {
            level = level.max(4);
        }
        self.metadata
            .insert(METADATA_REQUIRED_LEVEL.to_string(), level.to_string());
    }

    /// A copy with the response-only metadata (`_nats.ver` = `version`,
    /// `_nats.level`) added, as create, update and info responses carry.
    pub fn with_dynamic_metadata(&self, version: &str) -> StreamConfig {
        let mut cfg = self.clone();
        cfg.metadata
            .insert(METADATA_SERVER_VERSION.to_string(), version.to_string());
        cfg.metadata
            .insert(METADATA_SERVER_LEVEL.to_string(), JS_API_LEVEL.to_string());
        cfg
    }

    /// Before comparing a repeated create with the existing stream: take
    /// `_nats.req.level` from `existing` (or drop it) and drop the
    /// response-only keys, so versioning metadata never makes two
    /// otherwise equal configs differ.
    pub fn copy_metadata_from(&mut self, existing: &StreamConfig) {
        self.metadata.remove(METADATA_SERVER_VERSION);
        self.metadata.remove(METADATA_SERVER_LEVEL);
        match existing.metadata.get(METADATA_REQUIRED_LEVEL) {
            Some(level) => {
                self.metadata
                    .insert(METADATA_REQUIRED_LEVEL.to_string(), level.clone());
            }
            None => {
                self.metadata.remove(METADATA_REQUIRED_LEVEL);
            }
        }
    }
}

#[cfg(test)]
mod tests;
