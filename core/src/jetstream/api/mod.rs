//! The JSON surface of JetStream's stream API (`$JS.API.STREAM.*`,
//! `$JS.API.INFO`, publish acks and stream advisories): request parsing with
//! nats-server's errors, and responses serialised byte for byte as
//! nats-server 2.15.1 sends them.

pub mod errors;
pub mod json;
pub mod requests;
pub mod responses;

pub use errors::ApiError;
pub use json::to_go_json;
pub use requests::{
    DirectGetRequest, MsgDeleteRequest, MsgGetRequest, StreamConfigRequest, StreamInfoRequest,
    StreamListRequest, StreamNamesRequest, StreamPurgeRequest,
};
pub use responses::{
    AccountInfo, AccountLimits, ApiStats, ClusterInfoJson, PubAck, StoredMsgJson,
    StreamActionAdvisory, StreamInfo, StreamSourceInfo, StreamStateJson, UnixNanos,
};

use serde::Serialize;

/// Most names in one `STREAM.NAMES` page (`JSApiNamesLimit`).
pub const NAMES_LIMIT: usize = 1024;
/// Most stream infos in one `STREAM.LIST` page (`JSApiListLimit`).
pub const LIST_LIMIT: usize = 256;
/// Most subjects in one stream info's `subjects` (`JSMaxSubjectDetails`).
pub const MAX_SUBJECT_DETAILS: usize = 100_000;

/// The `type` of each response, as nats-server names them.
pub mod kinds {
    /// `$JS.API.INFO`.
    pub const ACCOUNT_INFO: &str = "io.nats.jetstream.api.v1.account_info_response";
    /// `$JS.API.ACCOUNT.PURGE.*`.
    pub const ACCOUNT_PURGE: &str = "io.nats.jetstream.api.v1.account_purge_response";
    /// `$JS.API.STREAM.CREATE.*`.
    pub const STREAM_CREATE: &str = "io.nats.jetstream.api.v1.stream_create_response";
    /// `$JS.API.STREAM.UPDATE.*`.
    pub const STREAM_UPDATE: &str = "io.nats.jetstream.api.v1.stream_update_response";
    /// `$JS.API.STREAM.INFO.*`.
    pub const STREAM_INFO: &str = "io.nats.jetstream.api.v1.stream_info_response";
    /// `$JS.API.STREAM.DELETE.*`.
    pub const STREAM_DELETE: &str = "io.nats.jetstream.api.v1.stream_delete_response";
    /// `$JS.API.STREAM.NAMES`.
    pub const STREAM_NAMES: &str = "io.nats.jetstream.api.v1.stream_names_response";
    /// `$JS.API.STREAM.LIST`.
    pub const STREAM_LIST: &str = "io.nats.jetstream.api.v1.stream_list_response";
    /// `$JS.API.STREAM.PURGE.*`.
    pub const STREAM_PURGE: &str = "io.nats.jetstream.api.v1.stream_purge_response";
    /// `$JS.API.STREAM.MSG.GET.*`.
    pub const STREAM_MSG_GET: &str = "io.nats.jetstream.api.v1.stream_msg_get_response";
    /// `$JS.API.STREAM.MSG.DELETE.*`.
    pub const STREAM_MSG_DELETE: &str = "io.nats.jetstream.api.v1.stream_msg_delete_response";
    /// Any request the server cannot route (`$JS.API.>` unknown).
    pub const SYSTEM: &str = "io.nats.jetstream.api.v1.system_response";
    /// The stream created/updated/deleted advisory.
    pub const STREAM_ACTION_ADVISORY: &str = "io.nats.jetstream.advisory.v1.stream_action";
}

/// `{"type":kind,"error":{…}}`, plus the fields nats-server's response
/// struct always writes for that kind (`total`/`offset`/`limit` on info
/// and names, `"streams":null` on names, `"streams":[]` on list,
/// `"purged":0` on purge).
pub fn error_response(kind: &str, err: &ApiError) -> Vec<u8> {
    #[derive(Serialize)]
    struct Envelope<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        error: &'a ApiError,
    }
    let mut out = to_go_json(&Envelope { kind, error: err });
    let tail: &[u8] = match kind {
        kinds::STREAM_INFO => br#","total":0,"offset":0,"limit":0}"#,
        kinds::STREAM_NAMES => br#","total":0,"offset":0,"limit":0,"streams":null}"#,
        kinds::STREAM_LIST => br#","total":0,"offset":0,"limit":0,"streams":[]}"#,
        kinds::STREAM_PURGE => br#","purged":0}"#,
        _ => b"",
    };
    if !tail.is_empty() {
        out.pop();
        out.extend_from_slice(tail);
    }
    out
}

/// `{"type":kind,"success":true}`: stream delete and message delete.
pub fn success_response(kind: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(kind.len() + 30);
    out.extend_from_slice(br#"{"type":""#);
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(br#"","success":true}"#);
    out
}

#[cfg(test)]
mod tests;
