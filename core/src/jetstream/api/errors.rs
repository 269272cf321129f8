//! The JetStream API's error values: nats-server's `ApiError` with its HTTP-like
//! `code`, its stable `err_code` and the description a client shows.
//!
//! One constructor per nats-server error the stream, message, publish and
//! account paths can return, named after nats-server's `NewJS…Error`
//! (snake case, without the affixes). Codes and texts are nats-server
//! 2.15.1's; templated texts (`{err}`, `{seq}`) take their value as an
//! argument.

use std::fmt::Display;

use serde::{Deserialize, Serialize};

/// A JetStream API error, serialised as nats-server does:
/// `{"code":404,"err_code":10059,"description":"stream not found"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{description}")]
pub struct ApiError {
    /// HTTP-like status: 400, 404, 409, 412, 429, 500 or 503.
    pub code: u16,
    /// nats-server's stable error identifier (`10059` is "stream not found").
    pub err_code: u16,
    /// The human-readable text.
    pub description: String,
}

impl ApiError {
    /// An error with the given code, identifier and text.
    pub fn new(code: u16, err_code: u16, description: impl Into<String>) -> Self {
        ApiError {
            code,
            err_code,
            description: description.into(),
        }
    }

    /// True if this is the nats-server error with identifier `err_code`.
    pub fn is(&self, err_code: u16) -> bool {
        self.err_code == err_code
    }
}

/// Constructors for the errors whose text has no placeholder.
macro_rules! fixed_errors {
    ($($name:ident => ($code:literal, $err_code:literal, $text:literal);)*) => {
        impl ApiError {
            $(
                #[doc = concat!("`", $text, "` (", stringify!($code), "/", stringify!($err_code), ").")]
                pub fn $name() -> ApiError {
                    ApiError::new($code, $err_code, $text)
                }
            )*
        }
    };
}

/// Constructors for the errors whose whole text is a detail (`{err}`) or
/// that put one value into a fixed sentence.
macro_rules! detail_errors {
    ($($name:ident => ($code:literal, $err_code:literal, $prefix:literal);)*) => {
        impl ApiError {
            $(
                #[doc = concat!("`", $prefix, "{detail}` (", stringify!($code), "/", stringify!($err_code), ").")]
                pub fn $name(detail: impl Display) -> ApiError {
                    ApiError::new($code, $err_code, format!(concat!($prefix, "{}"), detail))
                }
            )*
        }
    };
}

fixed_errors! {
    account_resources_exceeded => (400, 10002, "resource limits exceeded for account");
    bad_request => (400, 10003, "bad request");
    cluster_not_avail => (503, 10008, "JetStream system temporarily unavailable");
    cluster_required => (503, 10010, "JetStream clustering support required");
    cluster_unsupported_feature => (503, 10036, "not currently supported in clustered mode");
    insufficient_resources => (503, 10023, "insufficient resources");
    maximum_consumers_limit => (400, 10026, "maximum consumers limit reached");
    maximum_streams_limit => (400, 10027, "maximum number of streams reached");
    memory_resources_exceeded => (500, 10028, "insufficient memory resources available");
    storage_resources_exceeded => (500, 10047, "insufficient storage resources available");
    no_account => (503, 10035, "account not found");
    no_limits => (400, 10120, "no JetStream default or applicable tiered limit present");
    no_message_found => (404, 10037, "no message found");
    not_empty_request => (400, 10038, "expected an empty request payload");
    not_enabled => (503, 10076, "JetStream not enabled");
    not_enabled_for_account => (503, 10039, "JetStream not enabled for account");
    replicas_count_cannot_be_negative => (400, 10133, "replicas count cannot be negative");
    required_api_level => (412, 10185, "JetStream minimum api level required");
    message_ttl_disabled => (400, 10166, "per-message TTL is disabled");
    message_ttl_invalid => (400, 10165, "invalid per-message TTL");
    message_incr_disabled => (400, 10168, "message counters is disabled");
    message_schedules_disabled => (400, 10188, "message schedules is disabled");
    atomic_publish_disabled => (400, 10174, "atomic publish is disabled");
    batch_publish_disabled => (400, 10205, "batch publish is disabled");
    mirror_durable_consumer_cfg_invalid => (400, 10213, "stream mirror consumer config is invalid");
    mirror_invalid_stream_name => (400, 10142, "mirrored stream name is invalid");
    mirror_max_message_size_too_big => (400, 10030, "stream mirror must have max message size >= source");
    mirror_multiple_filters_not_allowed => (400, 10150, "mirror with multiple subject transforms cannot also have a single subject filter");
    mirror_overlapping_subject_filters => (400, 10152, "mirror subject filters can not overlap");
    mirror_with_atomic_publish => (400, 10198, "stream mirrors can not also use atomic publishing");
    mirror_with_batch_publish => (400, 10209, "stream mirrors can not also use batch publishing");
    mirror_with_counters => (400, 10173, "stream mirrors can not also calculate counters");
    mirror_with_first_seq => (400, 10143, "stream mirrors can not have first sequence configured");
    mirror_with_msg_schedules => (400, 10186, "stream mirrors can not also schedule messages");
    mirror_with_sources => (400, 10031, "stream mirrors can not also contain other sources");
    mirror_with_start_seq_and_time => (400, 10032, "stream mirrors can not have both start seq and start time configured");
    mirror_with_subject_filters => (400, 10033, "stream mirrors can not contain filtered subjects");
    mirror_with_subjects => (400, 10034, "stream mirrors can not contain subjects");
    source_duplicate_detected => (400, 10140, "duplicate source configuration detected");
    source_durable_consumer_cfg_invalid => (400, 10215, "stream source consumer config is invalid");
    source_durable_consumer_duplicate_detected => (400, 10216, "duplicate stream source consumer detected");
    source_consumer_requires_ack_fc => (400, 10217, "stream source consumer requires flow control ack policy");
    consumer_ack_fc_requires_push => (400, 10218, "flow control ack policy requires a push based consumer");
    consumer_ack_fc_requires_fc => (400, 10219, "flow control ack policy requires flow control");
    consumer_ack_fc_requires_max_ack_pending => (400, 10220, "flow control ack policy requires max ack pending");
    consumer_ack_fc_requires_no_ack_wait => (400, 10221, "flow control ack policy requires unset ack wait");
    consumer_ack_fc_requires_no_max_deliver => (400, 10222, "flow control ack policy requires unset max deliver");
    source_invalid_stream_name => (400, 10141, "sourced stream name is invalid");
    source_max_message_size_too_big => (400, 10046, "stream source must have max message size >= target");
    source_multiple_filters_not_allowed => (400, 10144, "source with multiple subject transforms cannot also have a single subject filter");
    source_overlapping_subject_filters => (400, 10147, "source filters can not overlap");
    source_with_msg_schedules => (400, 10187, "stream source can not also schedule messages");
    stream_duplicate_message_conflict => (409, 10158, "duplicate message id is in process");
    stream_expected_last_seq_per_subject_invalid => (400, 10193, "missing sequence for expected last sequence per subject");
    stream_expected_last_seq_per_subject_not_ready => (503, 10163, "expected last sequence per subject temporarily unavailable");
    stream_header_exceeds_maximum => (400, 10097, "header size exceeds maximum allowed of 64k");
    stream_info_max_subjects => (500, 10117, "subject details would exceed maximum allowed");
    stream_invalid => (500, 10096, "stream not valid");
    stream_max_bytes_required => (400, 10113, "account requires a stream config to have max bytes set");
    stream_max_stream_bytes_exceeded => (400, 10122, "stream max bytes exceeds account limit max stream bytes");
    stream_message_exceeds_maximum => (400, 10054, "message size exceeds maximum allowed");
    stream_min_last_seq => (412, 10180, "min last sequence");
    stream_mirror_not_updatable => (400, 10055, "stream mirror configuration can not be updated");
    stream_mismatch => (400, 10056, "stream name in subject does not match request");
    stream_name_contains_path_separators => (400, 10128, "Stream name can not contain path separators");
    stream_name_exist => (400, 10058, "stream name already in use with a different configuration");
    stream_name_exist_restore_failed => (400, 10130, "stream name already in use, cannot restore");
    stream_not_found => (404, 10059, "stream not found");
    stream_not_match => (400, 10060, "expected stream does not match");
    stream_offline => (500, 10118, "stream is offline");
    stream_replicas_not_supported => (500, 10074, "replicas > 1 not supported in non-clustered mode");
    stream_replicas_not_updatable => (400, 10061, "Replicas configuration can not be updated");
    stream_sealed => (400, 10109, "invalid operation on sealed stream");
    stream_sequence_not_match => (503, 10063, "expected stream sequence does not match");
    stream_subject_overlap => (400, 10065, "subjects overlap with an existing stream");
    stream_too_many_requests => (429, 10167, "too many requests");
    stream_wrong_last_sequence_constant => (400, 10164, "wrong last sequence");
}

detail_errors! {
    invalid_json => (400, 10025, "invalid JSON: ");
    pedantic => (400, 10157, "pedantic mode: ");
    stream_invalid_config => (500, 10052, "");
    stream_create => (500, 10049, "");
    stream_update => (500, 10069, "");
    stream_delete => (500, 10050, "");
    stream_general => (500, 10051, "");
    stream_limits => (500, 10053, "");
    stream_msg_delete_failed => (500, 10057, "");
    stream_purge_failed => (500, 10110, "");
    stream_rollup_failed => (500, 10111, "");
    stream_store_failed => (503, 10077, "");
    stream_offline_reason => (500, 10194, "stream is offline: ");
    stream_wrong_last_msg_id => (400, 10070, "wrong last msg ID: ");
    stream_wrong_last_sequence => (400, 10071, "wrong last sequence: ");
    stream_transform_invalid_source => (400, 10155, "stream transform source: ");
    stream_transform_invalid_destination => (400, 10156, "stream transform: ");
    mirror_invalid_subject_filter => (400, 10151, "mirror transform source: ");
    mirror_invalid_transform_destination => (400, 10154, "mirror transform: ");
    source_invalid_subject_filter => (400, 10145, "source transform source: ");
    source_invalid_transform_destination => (400, 10146, "source transform: ");
    atomic_publish_too_large_batch => (400, 10199, "atomic publish batch is too large: ");
    atomic_publish_unsupported_header_batch => (400, 10177, "atomic publish unsupported header used: ");
}

impl ApiError {
    /// `sequence {seq} not found` (400/10043): a message delete of a
    /// sequence the stream does not hold.
    pub fn sequence_not_found(seq: u64) -> ApiError {
        ApiError::new(400, 10043, format!("sequence {seq} not found"))
    }

    /// `stream external api prefix {prefix} must not overlap with {subject}`
    /// (400/10021).
    pub fn stream_external_api_overlap(prefix: &str, subject: &str) -> ApiError {
        ApiError::new(
            400,
            10021,
            format!("stream external api prefix {prefix} must not overlap with {subject}"),
        )
    }

    /// `stream external delivery prefix {prefix} overlaps with stream subject
    /// {subject}` (400/10022).
    pub fn stream_external_del_prefix_overlaps(prefix: &str, subject: &str) -> ApiError {
        ApiError::new(
            400,
            10022,
            format!(
                "stream external delivery prefix {prefix} overlaps with stream subject {subject}"
            ),
        )
    }

    /// `stream external delivery prefix {prefix} must not contain wildcards`
    /// (400/10024).
    pub fn stream_invalid_external_delivery_subj(prefix: &str) -> ApiError {
        ApiError::new(
            400,
            10024,
            format!("stream external delivery prefix {prefix} must not contain wildcards"),
        )
    }

    /// A purge of a stream with `deny_purge`: nats-server's
    /// `stream_purge_failed("stream purge not permitted")` (500/10110).
    pub fn stream_purge_not_allowed() -> ApiError {
        ApiError::stream_purge_failed("stream purge not permitted")
    }

    /// A message delete on a stream with `deny_delete`: nats-server's
    /// `stream_msg_delete_failed("message delete not permitted")` (500/10057).
    pub fn stream_msg_delete_not_allowed() -> ApiError {
        ApiError::stream_msg_delete_failed("message delete not permitted")
    }

    /// A `Nats-Rollup` header on a stream without `allow_rollup_hdrs`:
    /// `stream_rollup_failed("rollup not permitted")` (500/10111).
    pub fn stream_rollup_not_allowed() -> ApiError {
        ApiError::stream_rollup_failed("rollup not permitted")
    }

    /// The generalised store failure nats-server reports when a stream's
    /// store cannot be created: `error creating store for stream` (500/10049).
    pub fn stream_create_store_failed() -> ApiError {
        ApiError::stream_create("error creating store for stream")
    }

    /// The config error for an empty or invalid stream name (500/10052).
    pub fn stream_name_required() -> ApiError {
        ApiError::stream_invalid_config(
            "stream name is required and can not contain '.', '*', '>', '\\', '/'",
        )
    }
}

/// nats-server's stable `err_code` identifiers the server wiring matches on.
pub mod codes {
    /// `stream not found`.
    pub const STREAM_NOT_FOUND: u16 = 10059;
    /// `no message found`.
    pub const NO_MESSAGE_FOUND: u16 = 10037;
    /// Stream configuration validation error.
    pub const STREAM_INVALID_CONFIG: u16 = 10052;
    /// `stream name already in use with a different configuration`.
    pub const STREAM_NAME_EXIST: u16 = 10058;
    /// `subjects overlap with an existing stream`.
    pub const STREAM_SUBJECT_OVERLAP: u16 = 10065;
    /// `wrong last sequence: {seq}`.
    pub const STREAM_WRONG_LAST_SEQUENCE: u16 = 10071;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_like_nats_server() {
        let json = serde_json::to_string(&ApiError::stream_not_found()).unwrap();
        assert_eq!(
            json,
            r#"{"code":404,"err_code":10059,"description":"stream not found"}"#
        );
    }

    #[test]
    fn display_is_the_description() {
        assert_eq!(ApiError::bad_request().to_string(), "bad request");
        assert_eq!(
            ApiError::stream_wrong_last_sequence(1).to_string(),
            "wrong last sequence: 1"
        );
    }

    #[test]
    fn codes_match_nats_server() {
        let cases = [
            (ApiError::stream_name_exist(), 400, 10058),
            (ApiError::no_message_found(), 404, 10037),
            (ApiError::stream_invalid_config("x"), 500, 10052),
            (ApiError::stream_replicas_not_supported(), 500, 10074),
            (ApiError::not_enabled_for_account(), 503, 10039),
            (ApiError::not_enabled(), 503, 10076),
            (ApiError::stream_store_failed("x"), 503, 10077),
            (ApiError::stream_not_match(), 400, 10060),
            (ApiError::stream_wrong_last_msg_id("a1"), 400, 10070),
            (ApiError::stream_purge_not_allowed(), 500, 10110),
            (ApiError::stream_msg_delete_not_allowed(), 500, 10057),
        ];
        for (err, code, err_code) in cases {
            assert_eq!((err.code, err.err_code), (code, err_code), "{err}");
        }
        assert_eq!(
            ApiError::sequence_not_found(9).description,
            "sequence 9 not found"
        );
        assert_eq!(
            ApiError::invalid_json("unexpected EOF").description,
            "invalid JSON: unexpected EOF"
        );
    }
}

// The consumer API's errors (nats-server 2.15.1's `JSConsumer…` errors).
fixed_errors! {
    consumer_ack_policy_invalid => (400, 10181, "consumer ack policy invalid");
    consumer_ack_wait_negative => (400, 10183, "consumer ack wait needs to be positive");
    consumer_already_exists => (400, 10148, "consumer already exists");
    consumer_backoff_negative => (400, 10184, "consumer backoff needs to be positive");
    consumer_config_required => (400, 10078, "consumer config required");
    consumer_create_filter_subject_mismatch => (400, 10131, "Consumer create request did not match filtered subject from create subject");
    consumer_deliver_cycle => (400, 10081, "consumer deliver subject forms a cycle");
    consumer_deliver_to_wildcards => (400, 10079, "consumer deliver subject has wildcards");
    consumer_does_not_exist => (400, 10149, "consumer does not exist");
    consumer_duplicate_filter_subjects => (400, 10136, "consumer cannot have both FilterSubject and FilterSubjects specified");
    consumer_durable_name_not_in_subject => (400, 10016, "consumer expected to be durable but no durable name set in subject");
    consumer_durable_name_not_match_subject => (400, 10017, "consumer name in subject does not match durable name in request");
    consumer_durable_name_not_set => (400, 10018, "consumer expected to be durable but a durable name was not set");
    consumer_empty_filter => (400, 10139, "consumer filter in FilterSubjects cannot be empty");
    consumer_ephemeral_with_durable_name => (400, 10020, "consumer expected to be ephemeral but a durable name was set in request");
    consumer_fc_requires_push => (400, 10089, "consumer flow control requires a push based consumer");
    consumer_hb_requires_push => (400, 10088, "consumer idle heartbeat requires a push based consumer");
    consumer_invalid_deliver_subject => (400, 10112, "invalid push consumer deliver subject");
    consumer_max_deliver_backoff => (400, 10116, "max deliver is required to be > length of backoff values");
    consumer_max_pending_ack_policy_required => (400, 10082, "consumer requires ack policy for max ack pending");
    consumer_max_request_batch_negative => (400, 10114, "consumer max request batch needs to be > 0");
    consumer_max_request_expires_too_small => (400, 10115, "consumer max request expires needs to be >= 1ms");
    consumer_max_waiting_negative => (400, 10087, "consumer max waiting needs to be positive");
    consumer_multiple_filters_not_allowed => (400, 10137, "consumer with multiple subject filters cannot use subject based API");
    consumer_name_exist => (400, 10013, "consumer name already in use");
    consumer_not_found => (404, 10014, "consumer not found");
    consumer_overlapping_subject_filters => (400, 10138, "consumer subject filters cannot overlap");
    consumer_pull_requires_ack => (400, 10084, "consumer in pull mode requires explicit ack policy on workqueue stream");
    consumer_pull_with_rate_limit => (400, 10086, "consumer in pull mode can not have rate limit set");
    consumer_push_max_waiting => (400, 10080, "consumer in push mode can not set max waiting");
    consumer_replicas_exceeds_stream => (400, 10126, "consumer config replica count exceeds parent stream");
    consumer_small_heartbeat => (400, 10083, "consumer idle heartbeat needs to be >= 100ms");
    consumer_wq_consumer_not_deliver_all => (400, 10101, "consumer must be deliver all on workqueue stream");
    consumer_wq_consumer_not_unique => (400, 10100, "filtered consumer not unique on workqueue stream");
    consumer_wq_multiple_unfiltered => (400, 10099, "multiple non-filtered consumers not allowed on workqueue stream");
    consumer_wq_requires_explicit_ack => (400, 10098, "workqueue stream requires explicit ack");
    consumer_with_flow_control_needs_heartbeats => (400, 10108, "consumer with flow control also needs heartbeats");
    consumer_priority_policy_without_group => (400, 10159, "Setting PriorityPolicy requires at least one PriorityGroup to be set");
    consumer_invalid_priority_group => (400, 10160, "Provided priority group does not exist for this consumer");
    consumer_empty_group_name => (400, 10161, "Group name cannot be an empty string");
    consumer_invalid_group_name => (400, 10162, "Valid priority group name must match A-Z, a-z, 0-9, -_/=)+ and may not exceed 16 characters");
    consumer_push_with_priority_group => (400, 10178, "priority groups can not be used with push consumers");
    consumer_priority_group_with_policy_none => (400, 10196, "consumer can not have priority groups when policy is none");
    consumer_pinned_ttl_without_priority_policy_none => (400, 10197, "PinnedTTL cannot be set when PriorityPolicy is none");
}

detail_errors! {
    consumer_create => (500, 10012, "");
    consumer_invalid_policy => (400, 10094, "");
    consumer_invalid_reset => (400, 10204, "invalid reset: ");
    consumer_store_failed => (500, 10104, "error creating store for consumer: ");
    consumer_description_too_long => (400, 10107, "consumer description is too long, maximum allowed is ");
    consumer_metadata_length => (400, 10135, "consumer metadata exceeds maximum size of ");
    consumer_name_too_long => (400, 10102, "consumer name is too long, maximum allowed is ");
    consumer_max_pending_ack_excess => (400, 10121, "consumer max ack pending exceeds system limit of ");
    consumer_inactive_threshold_excess => (400, 10153, "consumer inactive threshold exceeds system limit of ");
}
