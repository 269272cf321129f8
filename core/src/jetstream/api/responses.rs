//! Response bodies of the stream API, `$JS.API.INFO`, publish acks and the
//! stream action advisory, in nats-server 2.15.1's field order with its
//! `omitempty` rules. Builders return the bytes to send
//! (see [`to_go_json`]).

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::errors::ApiError;
use super::json::{go_time, go_time_opt, to_go_json};
use super::kinds;
use crate::jetstream::config::{ExternalStream, StreamConfig, SubjectTransformConfig};
pub use crate::time::UnixNanos;

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

/// A stream's configuration and state at a moment (nats-server's
/// `StreamInfo`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// The configuration (with `_nats.*` metadata where nats-server adds it).
    pub config: StreamConfig,
    /// When the stream was created.
    #[serde(with = "go_time")]
    pub created: UnixNanos,
    /// Message counts and bounds.
    pub state: StreamStateJson,
    /// The server's JetStream domain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// Leader and replicas; a single server names itself leader in info
    /// responses (not in create, update or list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfoJson>,
    /// The mirror's progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<StreamSourceInfo>,
    /// Each source's progress.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<StreamSourceInfo>,
    /// When the info was gathered.
    #[serde(with = "go_time")]
    pub ts: UnixNanos,
}

/// A stream's state (nats-server's `StreamState`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamStateJson {
    /// Messages held.
    pub messages: u64,
    /// Bytes held.
    pub bytes: u64,
    /// Sequence of the first message (next sequence when empty).
    pub first_seq: u64,
    /// Time of the first message; `None` (Go's zero time) when empty.
    #[serde(with = "go_time_opt")]
    pub first_ts: Option<UnixNanos>,
    /// Sequence of the last message ever stored.
    pub last_seq: u64,
    /// Time of the last message; `None` (Go's zero time) if never any.
    #[serde(with = "go_time_opt")]
    pub last_ts: Option<UnixNanos>,
    /// Distinct subjects held.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub num_subjects: u64,
    /// Per-subject counts, when asked for with `subjects_filter`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subjects: BTreeMap<String, u64>,
    /// Deleted sequences between first and last.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub num_deleted: u64,
    /// Those sequences, when asked for with `deleted_details`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<u64>,
    /// Messages lost to store corruption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<LostStreamData>,
    /// Consumers of the stream.
    pub consumer_count: u64,
}

/// Messages a store lost (nats-server's `LostStreamData`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostStreamData {
    /// Their sequences.
    pub msgs: Vec<u64>,
    /// Their size.
    pub bytes: u64,
}

/// The servers behind a stream (nats-server's `ClusterInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfoJson {
    /// Cluster name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Raft group name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub raft_group: String,
    /// Leader's server name (a standalone server: its own name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub leader: String,
    /// Since when it leads.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "go_time_opt")]
    pub leader_since: Option<UnixNanos>,
    /// Other peers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<PeerInfoJson>,
}

/// A replica (nats-server's `PeerInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfoJson {
    /// Server name.
    pub name: String,
    /// Caught up and seen recently.
    pub current: bool,
    /// Not seen recently.
    #[serde(default, skip_serializing_if = "is_false")]
    pub offline: bool,
    /// Nanoseconds since last seen.
    pub active: i64,
    /// Operations behind.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub lag: u64,
    /// Peer id.
    pub peer: String,
}

/// Progress of a mirror or source (nats-server's `StreamSourceInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSourceInfo {
    /// Upstream stream name.
    pub name: String,
    /// Its external prefixes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalStream>,
    /// Messages behind.
    pub lag: u64,
    /// The last origin sequence a source took (not shown for a mirror).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub seq: u64,
    /// Nanoseconds since last contact, -1 if never.
    pub active: i64,
    /// Why sourcing fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// Filter in use.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    /// Transforms in use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_transforms: Vec<SubjectTransformConfig>,
}

#[derive(Serialize)]
struct Typed<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(flatten)]
    body: T,
}

/// `STREAM.CREATE` success: the info, then `"did_create":true` (also for a
/// repeated identical create, as nats-server 2.15.1 answers).
pub fn stream_create_response(info: &StreamInfo) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'a> {
        #[serde(flatten)]
        info: &'a StreamInfo,
        did_create: bool,
    }
    to_go_json(&Typed {
        kind: kinds::STREAM_CREATE,
        body: Body {
            info,
            did_create: true,
        },
    })
}

/// `STREAM.UPDATE` success.
pub fn stream_update_response(info: &StreamInfo) -> Vec<u8> {
    to_go_json(&Typed {
        kind: kinds::STREAM_UPDATE,
        body: info,
    })
}

/// Paging fields of names, list and info responses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiPaged {
    /// Items in all pages.
    pub total: usize,
    /// First item of this page.
    pub offset: usize,
    /// Page size.
    pub limit: usize,
}

/// `STREAM.INFO` success; `paged` is zero unless subject details were
/// asked for (then `limit` is [`super::MAX_SUBJECT_DETAILS`]).
pub fn stream_info_response(info: &StreamInfo, paged: ApiPaged) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'a> {
        #[serde(flatten)]
        paged: ApiPaged,
        #[serde(flatten)]
        info: &'a StreamInfo,
    }
    to_go_json(&Typed {
        kind: kinds::STREAM_INFO,
        body: Body { paged, info },
    })
}

/// `STREAM.NAMES` success: one page of sorted names.
pub fn stream_names_response(names: &[String], paged: ApiPaged) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'a> {
        #[serde(flatten)]
        paged: ApiPaged,
        streams: Option<&'a [String]>,
    }
    // Go's nil slice: no names reads as null.
    let streams = (!names.is_empty()).then_some(names);
    to_go_json(&Typed {
        kind: kinds::STREAM_NAMES,
        body: Body { paged, streams },
    })
}

/// `STREAM.LIST` success; `missing` names streams that could not report.
pub fn stream_list_response(infos: &[StreamInfo], missing: &[String], paged: ApiPaged) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body<'a> {
        #[serde(flatten)]
        paged: ApiPaged,
        streams: &'a [StreamInfo],
        #[serde(skip_serializing_if = "<[String]>::is_empty")]
        missing: &'a [String],
    }
    to_go_json(&Typed {
        kind: kinds::STREAM_LIST,
        body: Body {
            paged,
            streams: infos,
            missing,
        },
    })
}

/// `STREAM.PURGE` success.
pub fn stream_purge_response(purged: u64) -> Vec<u8> {
    format!(
        r#"{{"type":"{}","success":true,"purged":{purged}}}"#,
        kinds::STREAM_PURGE
    )
    .into_bytes()
}

/// A stored message as `STREAM.MSG.GET` returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredMsgJson {
    /// Its subject.
    pub subject: String,
    /// Its sequence.
    pub seq: u64,
    /// Raw header block (`NATS/1.0\r\n…`), empty for none.
    pub hdrs: Vec<u8>,
    /// Payload.
    pub data: Vec<u8>,
    /// When it was stored.
    pub time: UnixNanos,
}

/// `STREAM.MSG.GET` success (`hdrs` and `data` base64, omitted when empty).
pub fn stream_msg_get_response(msg: &StoredMsgJson) -> Vec<u8> {
    #[derive(Serialize)]
    struct Message<'a> {
        subject: &'a str,
        seq: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        hdrs: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<String>,
        #[serde(with = "go_time")]
        time: UnixNanos,
    }
    #[derive(Serialize)]
    struct Body<'a> {
        message: Message<'a>,
    }
    let b64 =
        |b: &[u8]| (!b.is_empty()).then(|| base64::engine::general_purpose::STANDARD.encode(b));
    let message = Message {
        subject: &msg.subject,
        seq: msg.seq,
        hdrs: b64(&msg.hdrs),
        data: b64(&msg.data),
        time: msg.time,
    };
    to_go_json(&Typed {
        kind: kinds::STREAM_MSG_GET,
        body: Body { message },
    })
}

/// An account's JetStream limits (nats-server's `JetStreamAccountLimits`);
/// -1 means unlimited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountLimits {
    /// Memory bytes.
    pub max_memory: i64,
    /// Storage bytes.
    pub max_storage: i64,
    /// Streams.
    pub max_streams: i64,
    /// Consumers.
    pub max_consumers: i64,
    /// Unacknowledged messages per consumer.
    pub max_ack_pending: i64,
    /// Largest memory stream.
    pub memory_max_stream_bytes: i64,
    /// Largest file stream.
    pub storage_max_stream_bytes: i64,
    /// Streams must set `max_bytes`.
    pub max_bytes_required: bool,
}

impl Default for AccountLimits {
    /// No limits, as `jetstream: enabled` gives an account.
    fn default() -> Self {
        AccountLimits {
            max_memory: -1,
            max_storage: -1,
            max_streams: -1,
            max_consumers: -1,
            max_ack_pending: -1,
            memory_max_stream_bytes: -1,
            storage_max_stream_bytes: -1,
            max_bytes_required: false,
        }
    }
}

/// API request counters (nats-server's `JetStreamAPIStats`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiStats {
    /// API level ([`crate::jetstream::config::JS_API_LEVEL`]).
    pub level: u32,
    /// Requests.
    pub total: u64,
    /// Requests answered with an error.
    pub errors: u64,
}

/// `$JS.API.INFO` body (nats-server's `JetStreamAccountStats`, untiered).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// Memory bytes used.
    pub memory: u64,
    /// Storage bytes used.
    pub storage: u64,
    /// Memory bytes reserved by streams' `max_bytes`.
    pub reserved_memory: u64,
    /// Storage bytes reserved by streams' `max_bytes`.
    pub reserved_storage: u64,
    /// Streams.
    pub streams: u64,
    /// Consumers.
    pub consumers: u64,
    /// Limits.
    pub limits: AccountLimits,
    /// JetStream domain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// API counters.
    pub api: ApiStats,
}

/// `$JS.API.INFO` success.
pub fn account_info_response(info: &AccountInfo) -> Vec<u8> {
    to_go_json(&Typed {
        kind: kinds::ACCOUNT_INFO,
        body: info,
    })
}

/// A publish acknowledgement.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubAck {
    /// Stream that stored the message.
    pub stream: String,
    /// Its sequence (of the original, for a duplicate).
    pub seq: u64,
    /// The server's JetStream domain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
    /// The message was a duplicate by `Nats-Msg-Id`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub duplicate: bool,
}

impl PubAck {
    /// The bytes nats-server sends: `{"stream":"S","seq":1}`, with the
    /// domain before `seq` when set, and `,"duplicate": true` (with its
    /// space) for a duplicate.
    pub fn to_json(&self) -> Vec<u8> {
        Self::json(&self.stream, &self.domain, self.seq, self.duplicate)
    }

    /// [`PubAck::to_json`] of the fields, without building a `PubAck`.
    pub fn json(stream: &str, domain: &str, seq: u64, duplicate: bool) -> Vec<u8> {
        use std::io::Write as _;
        // Most names need no escaping: they go out as they are.
        let quote = |out: &mut Vec<u8>, s: &str| {
            if s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                out.push(b'"');
                out.extend_from_slice(s.as_bytes());
                out.push(b'"');
            } else {
                out.extend(to_go_json(s));
            }
        };
        let mut out = Vec::with_capacity(48 + stream.len() + domain.len());
        out.extend_from_slice(br#"{"stream":"#);
        quote(&mut out, stream);
        if !domain.is_empty() {
            out.extend_from_slice(br#","domain":"#);
            quote(&mut out, domain);
        }
        let _ = write!(out, r#","seq":{seq}"#);
        if duplicate {
            out.extend_from_slice(br#","duplicate": true"#);
        }
        out.push(b'}');
        out
    }

    /// A refused publish: `{"error":{…},"stream":"S","seq":0}` (then
    /// `"domain"` if set).
    pub fn error_json(stream: &str, domain: &str, err: &ApiError) -> Vec<u8> {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a ApiError,
            stream: &'a str,
            seq: u64,
            #[serde(skip_serializing_if = "str::is_empty")]
            domain: &'a str,
        }
        to_go_json(&Body {
            error: err,
            stream,
            seq: 0,
            domain,
        })
    }
}

/// What happened to a stream, in its advisory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamAction {
    /// Created (`$JS.EVENT.ADVISORY.STREAM.CREATED.<name>`).
    Create,
    /// Updated (`…STREAM.UPDATED.<name>`); nats-server writes `"modify"`.
    Modify,
    /// Deleted (`…STREAM.DELETED.<name>`).
    Delete,
}

/// `io.nats.jetstream.advisory.v1.stream_action`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamActionAdvisory {
    /// Always [`kinds::STREAM_ACTION_ADVISORY`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Unique event id (a NUID).
    pub id: String,
    /// When.
    #[serde(with = "go_time")]
    pub timestamp: UnixNanos,
    /// The stream.
    pub stream: String,
    /// What happened.
    pub action: StreamAction,
    /// The server's JetStream domain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub domain: String,
}

impl StreamActionAdvisory {
    /// An advisory with the fixed `type`.
    pub fn new(
        id: String,
        timestamp: UnixNanos,
        stream: String,
        action: StreamAction,
        domain: String,
    ) -> Self {
        StreamActionAdvisory {
            kind: kinds::STREAM_ACTION_ADVISORY.to_string(),
            id,
            timestamp,
            stream,
            action,
            domain,
        }
    }

    /// The subject it is published on.
    pub fn subject(&self) -> String {
        let verb = match self.action {
            StreamAction::Create => "CREATED",
            StreamAction::Modify => "UPDATED",
            StreamAction::Delete => "DELETED",
        };
        format!("$JS.EVENT.ADVISORY.STREAM.{verb}.{}", self.stream)
    }

    /// The body nats-server sends.
    pub fn to_json(&self) -> Vec<u8> {
        to_go_json(self)
    }
}
