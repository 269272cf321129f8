//! Request bodies of the stream API, each with the parse nats-server applies
//! (which bodies may be empty, which are ignored unless they are a JSON
//! object, and the errors otherwise).

use serde::Deserialize;
use serde_json::Value;

use super::errors::ApiError;
use super::json::{merge_values, parse_request};
use crate::jetstream::config::StreamConfig;

/// nats-server's `isJSONObjectOrArray`: only such bodies are decoded by
/// the names, list, info and purge requests; anything else is ignored.
pub fn is_json_object_or_array(body: &[u8]) -> bool {
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    matches!(first, Some(b'{' | b'['))
}

/// nats-server's `isEmptyRequest`: nothing, or an empty JSON object.
pub fn is_empty_request(body: &[u8]) -> bool {
    body.is_empty()
        || body == b"{}"
        || matches!(serde_json::from_slice::<Value>(body), Ok(Value::Object(m)) if m.is_empty())
}

/// Parses `body` if it is a JSON object or array, else the default.
fn parse_optional<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
    go_type: &str,
) -> Result<T, ApiError> {
    if is_json_object_or_array(body) {
        parse_request(body, go_type)
    } else {
        Ok(T::default())
    }
}

/// Body of `STREAM.CREATE` and `STREAM.UPDATE`: a config plus `pedantic`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamConfigRequest {
    /// The requested configuration, Go zero values for absent fields.
    pub config: StreamConfig,
    /// Refuse rather than adjust questionable settings.
    pub pedantic: bool,
}

impl StreamConfigRequest {
    /// Decodes a create or update body. An empty body is a zero config
    /// (which then fails the name check with `stream_mismatch`).
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        const GO_TYPE: &str = "StreamConfigRequest";
        let Some(mut fields) = merge_values(body, GO_TYPE)? else {
            return Ok(Self::default());
        };
        let pedantic = match fields.remove("pedantic") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(other) => return Err(ApiError::invalid_json(format!(
                "json: cannot unmarshal {} into Go struct field {GO_TYPE}.pedantic of type bool",
                if other.is_number() {
                    format!("number {other}")
                } else {
                    "string".into()
                }
            ))),
        };
        let config = parse_request::<StreamConfig>(
            &serde_json::to_vec(&fields).unwrap_or_default(),
            GO_TYPE,
        )?;
        Ok(StreamConfigRequest { config, pedantic })
    }
}

/// Body of `STREAM.INFO.<name>` (optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamInfoRequest {
    /// Page offset into the subject details.
    pub offset: i64,
    /// List deleted sequences in the state.
    pub deleted_details: bool,
    /// Report per-subject counts for subjects matching this filter.
    pub subjects_filter: String,
}

impl StreamInfoRequest {
    /// Decodes the body if it is a JSON object or array; else defaults.
    /// A negative offset reads as 0.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let mut req: Self = parse_optional(body, "JSApiStreamInfoRequest")?;
        req.offset = req.offset.max(0);
        Ok(req)
    }
}

/// Body of `STREAM.NAMES` (optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamNamesRequest {
    /// Page offset.
    pub offset: i64,
    /// Only streams with a subject colliding with this one.
    pub subject: String,
}

impl StreamNamesRequest {
    /// Decodes the body if it is a JSON object or array; else defaults.
    /// A negative offset reads as 0.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let mut req: Self = parse_optional(body, "JSApiStreamNamesRequest")?;
        req.offset = req.offset.max(0);
        Ok(req)
    }
}

/// Body of `STREAM.LIST` (optional); same fields as [`StreamNamesRequest`].
pub type StreamListRequest = StreamNamesRequest;

/// Body of `STREAM.PURGE.<name>` (optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamPurgeRequest {
    /// Only messages on subjects matching this filter.
    pub filter: String,
    /// Purge up to, not including, this sequence.
    pub seq: u64,
    /// Keep this many of the newest messages.
    pub keep: u64,
}

impl StreamPurgeRequest {
    /// Decodes the body if it is a JSON object or array (`None` otherwise:
    /// purge everything). `seq` and `keep` together are a bad request.
    pub fn parse(body: &[u8]) -> Result<Option<Self>, ApiError> {
        if !is_json_object_or_array(body) {
            return Ok(None);
        }
        let req: Self = parse_request(body, "JSApiStreamPurgeRequest")?;
        if req.seq > 0 && req.keep > 0 {
            return Err(ApiError::bad_request());
        }
        Ok(Some(req))
    }
}

/// Body of `STREAM.MSG.GET.<name>`. The batch fields are accepted so that
/// strict decoding does not refuse them, then refused as nats-server does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MsgGetRequest {
    /// The message at this sequence (or the first at or after it with
    /// `next_by_subj`).
    pub seq: u64,
    /// The last message on this subject.
    pub last_by_subj: String,
    /// The first message at or after `seq` matching this subject.
    pub next_by_subj: String,
    /// Batch size (direct get only; a bad request here).
    pub batch: i64,
    /// Batch byte limit (direct get only; a bad request here).
    pub max_bytes: i64,
    /// The first message at or after this time (RFC 3339, as sent).
    pub start_time: Option<String>,
    /// Direct get's multi-subject last messages.
    pub multi_last: Vec<String>,
    /// Direct get's upper sequence bound.
    pub up_to_seq: u64,
    /// Direct get's upper time bound (RFC 3339, as sent).
    pub up_to_time: Option<String>,
    /// Leave the headers out of the response.
    pub no_hdr: bool,
}

impl MsgGetRequest {
    /// Decodes and validates: the body may not be empty, batching is a bad
    /// request, and exactly one of `seq`, `last_by_subj`, `start_time` must
    /// be given (`next_by_subj` may stand alone or pair with `seq` or
    /// `start_time`).
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        if is_empty_request(body) {
            return Err(ApiError::bad_request());
        }
        let req: Self = parse_request(body, "JSApiMsgGetRequest")?;
        if req.batch > 0 || req.max_bytes > 0 {
            return Err(ApiError::bad_request());
        }
        req.check_one_way()?;
        Ok(req)
    }

    fn check_one_way(&self) -> Result<(), ApiError> {
        let (seq, last, next, time) = (
            self.seq > 0,
            !self.last_by_subj.is_empty(),
            !self.next_by_subj.is_empty(),
            self.start_time.is_some(),
        );
        let conflicting = (seq && last)
            || (!seq && !last && !next && !time)
            || (seq && time)
            || (time && last)
            || (last && next);
        if conflicting {
            return Err(ApiError::bad_request());
        }
        Ok(())
    }
}

/// Body of `$JS.API.DIRECT.GET.<name>` (the single-message forms).
pub type DirectGetRequest = MsgGetRequest;

/// Body of `STREAM.MSG.DELETE.<name>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MsgDeleteRequest {
    /// The sequence to delete.
    pub seq: u64,
    /// Remove without overwriting the stored bytes.
    pub no_erase: bool,
}

impl MsgDeleteRequest {
    /// Decodes; an empty body is a bad request.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        if is_empty_request(body) {
            return Err(ApiError::bad_request());
        }
        parse_request(body, "JSApiMsgDeleteRequest")
    }
}

/// `STREAM.DELETE` takes no body: anything but an empty one is refused.
pub fn check_empty_request(body: &[u8]) -> Result<(), ApiError> {
    if is_empty_request(body) {
        Ok(())
    } else {
        Err(ApiError::not_empty_request())
    }
}
