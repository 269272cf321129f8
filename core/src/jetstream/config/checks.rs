//! nats-server's validation and defaulting of stream configs on create and
//! update (`checkStreamCfg`, `configUpdateCheck`), for a server whose
//! JetStream is not clustered. Checks run in nats-server's order, so a
//! config with several faults reports the same one.

use super::{
    validate_mapping, DiscardPolicy, PersistMode, RetentionPolicy, StorageType, StreamConfig,
    StreamSource, MAX_DESCRIPTION_LEN, MAX_METADATA_LEN,
};
use crate::jetstream::api::errors::ApiError;
use crate::subject::{is_literal, is_valid_publish_subject, is_valid_subject, subject_is_subset};

/// Longest stream name (`JSMaxNameLen`).
pub const STREAM_MAX_NAME_LEN: usize = 255;
/// Most replicas a stream may ask for (`StreamMaxReplicas`).
pub const STREAM_MAX_REPLICAS: i64 = 5;
/// Default duplicate window: 2 minutes, in nanoseconds.
pub const STREAM_DEFAULT_DUPLICATE_WINDOW_NS: i64 = 120_000_000_000;
/// Shortest `max_age` and `duplicate_window` other than 0: 100 ms.
const MIN_WINDOW_NS: i64 = 100_000_000;
/// Shortest `subject_delete_marker_ttl`: 1 s.
const MIN_MARKER_TTL_NS: i64 = 1_000_000_000;

/// What the checks need to know about the server and the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckLimits {
    /// The server's `max_payload`; kept for message-size checks (nats-server
    /// 2.15.1 does not bound `max_msg_size` by it at config time).
    pub max_payload: i64,
    /// The server's JetStream memory limit in bytes.
    pub jetstream_max_memory: i64,
    /// The server's JetStream storage limit in bytes.
    pub jetstream_max_store: i64,
    /// The server's JetStream domain.
    pub domain: Option<String>,
    /// The server's `limits { duplicate_window }` in nanoseconds, 0 for none.
    pub max_duplicate_window_ns: i64,
    /// The account requires `max_bytes` on every stream.
    pub max_bytes_required: bool,
    /// The account's largest memory stream, 0 or less for no limit.
    pub memory_max_stream_bytes: i64,
    /// The account's largest file stream, 0 or less for no limit.
    pub storage_max_stream_bytes: i64,
    /// JetStream runs clustered (replicas above 1 are allowed).
    pub clustered: bool,
    /// The request asked for pedantic mode: refuse instead of adjusting.
    pub pedantic: bool,
}

impl Default for CheckLimits {
    /// A standalone server with nats-server's defaults and no account limits.
    fn default() -> Self {
        CheckLimits {
            max_payload: 1024 * 1024,
            jetstream_max_memory: -1,
            jetstream_max_store: -1,
            domain: None,
            max_duplicate_window_ns: 0,
            max_bytes_required: false,
            memory_max_stream_bytes: 0,
            storage_max_stream_bytes: 0,
            clustered: false,
            pedantic: false,
        }
    }
}

/// A stream name nats-server accepts: non-empty, at most
/// [`STREAM_MAX_NAME_LEN`] bytes, none of whitespace, `.`, `*`, `>`, `/`, `\`.
pub fn valid_stream_name(name: &str) -> bool {
    is_valid_asset_name(name) && name.len() <= STREAM_MAX_NAME_LEN
}

/// nats-server's `isValidAssetName` (no length limit).
fn is_valid_asset_name(name: &str) -> bool {
    !name.is_empty()
        && !name.chars().any(|c| {
            matches!(
                c,
                ' ' | '\t' | '\r' | '\n' | '\x0c' | '.' | '*' | '>' | '/' | '\\'
            )
        })
}

/// Could a message match both subjects (nats-server's `SubjectsCollide`)?
pub fn subjects_collide(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let ta: Vec<&str> = a.split('.').collect();
    let tb: Vec<&str> = b.split('.').collect();
    let a_fwc = ta.last() == Some(&">");
    let b_fwc = tb.last() == Some(&">");
    if (ta.len() < tb.len() && !a_fwc) || (tb.len() < ta.len() && !b_fwc) {
        return false;
    }
    if ta.len() != tb.len() && !a_fwc && !b_fwc {
        return false;
    }
    for (x, y) in ta.iter().zip(&tb) {
        if *x == ">" || *y == ">" {
            return true;
        }
        if *x != "*" && *y != "*" && x != y {
            return false;
        }
    }
    true
}

/// Do two streams' subject lists conflict (some subject of one collides
/// with some subject of the other)? A new or updated stream whose subjects
/// overlap another stream's gets [`ApiError::stream_subject_overlap`].
pub fn subjects_overlap(a: &[String], b: &[String]) -> bool {
    a.iter().any(|x| b.iter().any(|y| subjects_collide(x, y)))
}

pub(super) fn invalid(detail: &str) -> ApiError {
    ApiError::stream_invalid_config(detail)
}

/// Validates and completes the config of a stream being created, as
/// nats-server's create request does on a single server: the create-only
/// refusals (path separators, `sealed`, `mirror_direct` without a mirror),
/// then `checkStreamCfg`, then replicas above 1 on a non-clustered server.
/// Checks needing other streams (subject overlap, limits, source cycles) are
/// the caller's; [`check_stream_config_with`] takes a lookup for the ones
/// about mirrors and sources.
pub fn check_stream_config(
    cfg: StreamConfig,
    limits: &CheckLimits,
) -> Result<StreamConfig, ApiError> {
    check_stream_config_with(cfg, limits, &|_| None)
}

/// [`check_stream_config`] with `lookup` returning the config of another
/// stream of the account by name, for the mirror and source checks
/// (message size, inherited `mirror_direct`, cycles).
pub fn check_stream_config_with(
    cfg: StreamConfig,
    limits: &CheckLimits,
    lookup: &dyn Fn(&str) -> Option<StreamConfig>,
) -> Result<StreamConfig, ApiError> {
    if cfg.name.contains(['/', '\\']) {
        return Err(ApiError::stream_name_contains_path_separators());
    }
    if cfg.sealed {
        return Err(invalid("stream configuration for create can not be sealed"));
    }
    if cfg.mirror_direct && cfg.mirror.is_none() {
        return Err(invalid("stream has no mirror but does have mirror direct"));
    }
    let cfg = check_common(cfg, limits, lookup)?;
    if !limits.clustered && cfg.num_replicas > 1 {
        return Err(ApiError::stream_replicas_not_supported());
    }
    Ok(cfg)
}

/// nats-server's `checkStreamCfg`: validation and defaults shared by create
/// and update.
pub fn check_common(
    mut cfg: StreamConfig,
    limits: &CheckLimits,
    lookup: &dyn Fn(&str) -> Option<StreamConfig>,
) -> Result<StreamConfig, ApiError> {
    check_identity(&cfg)?;
    check_numbers(&mut cfg, limits)?;
    check_features(&mut cfg, limits.pedantic)?;
    check_mirror(&mut cfg, limits.pedantic, lookup)?;
    check_sources(&cfg, lookup)?;
    check_external_prefixes(&cfg, lookup)?;
    check_cycles(&cfg, lookup)?;
    check_subjects(&mut cfg)?;
    check_account_bytes(&cfg, limits)?;
    check_transform_and_republish(&mut cfg, limits.pedantic)?;
    if cfg
        .placement
        .as_ref()
        .is_some_and(|p| *p == Default::default())
    {
        cfg.placement = None;
    }
    if cfg
        .placement
        .as_ref()
        .is_some_and(|p| !p.preferred.is_empty())
    {
        return Err(invalid("preferred server not permitted in placement"));
    }
    Ok(cfg)
}

fn check_identity(cfg: &StreamConfig) -> Result<(), ApiError> {
    if !is_valid_asset_name(&cfg.name) {
        return Err(ApiError::stream_name_required());
    }
    if cfg.name.len() > STREAM_MAX_NAME_LEN {
        return Err(invalid(&format!(
            "stream name is too long, maximum allowed is {STREAM_MAX_NAME_LEN}"
        )));
    }
    if cfg.description.len() > MAX_DESCRIPTION_LEN {
        return Err(invalid(&format!(
            "stream description is too long, maximum allowed is {MAX_DESCRIPTION_LEN}"
        )));
    }
    let metadata_len: usize = cfg.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if metadata_len > MAX_METADATA_LEN {
        return Err(invalid(&format!(
            "stream metadata exceeds maximum size of {MAX_METADATA_LEN} bytes"
        )));
    }
    Ok(())
}

/// Replaces 0 and values below -1 by -1 (or refuses them when pedantic).
fn default_limit(value: &mut i64, field: &str, pedantic: bool) -> Result<(), ApiError> {
    if *value == 0 || *value < -1 {
        if pedantic && *value < -1 {
            return Err(ApiError::pedantic(format!("{field} must be set to -1")));
        }
        *value = -1;
    }
    Ok(())
}

fn check_numbers(cfg: &mut StreamConfig, limits: &CheckLimits) -> Result<(), ApiError> {
    let pedantic = limits.pedantic;
    if cfg.num_replicas == 0 {
        cfg.num_replicas = 1;
    }
    if cfg.num_replicas > STREAM_MAX_REPLICAS {
        return Err(invalid(&format!(
            "maximum replicas is {STREAM_MAX_REPLICAS}"
        )));
    }
    if cfg.num_replicas < 0 {
        return Err(ApiError::replicas_count_cannot_be_negative());
    }
    default_limit(&mut cfg.max_msgs, "max_msgs", pedantic)?;
    default_limit(
        &mut cfg.max_msgs_per_subject,
        "max_msgs_per_subject",
        pedantic,
    )?;
    default_limit(&mut cfg.max_bytes, "max_bytes", pedantic)?;
    let mut max_msg_size = i64::from(cfg.max_msg_size);
    default_limit(&mut max_msg_size, "max_msg_size", pedantic)?;
    cfg.max_msg_size = max_msg_size as i32; // -1 or the original value: fits.
    default_limit(&mut cfg.max_consumers, "max_consumers", pedantic)?;
    if cfg.max_age < 0 {
        return Err(invalid("max age can not be negative"));
    }
    if cfg.max_age != 0 && cfg.max_age < MIN_WINDOW_NS {
        return Err(invalid("max age needs to be >= 100ms"));
    }
    check_duplicate_window(cfg, limits)
}

fn check_duplicate_window(cfg: &mut StreamConfig, limits: &CheckLimits) -> Result<(), ApiError> {
    let server_max = limits.max_duplicate_window_ns;
    if cfg.duplicate_window == 0 && cfg.mirror.is_none() && cfg.sources.is_empty() {
        let mut window = STREAM_DEFAULT_DUPLICATE_WINDOW_NS;
        if server_max > 0 && window > server_max {
            if limits.pedantic {
                return Err(ApiError::pedantic(
                    "duplicate window limits are higher than current limits",
                ));
            }
            window = server_max;
        }
        if cfg.max_age != 0 && cfg.max_age < window {
            if limits.pedantic {
                return Err(ApiError::pedantic(
                    "duplicate window cannot be bigger than max age",
                ));
            }
            window = cfg.max_age;
        }
        cfg.duplicate_window = window;
    }
    if cfg.duplicate_window < 0 {
        return Err(invalid("duplicates window can not be negative"));
    }
    if cfg.max_age != 0 && cfg.duplicate_window > cfg.max_age {
        return Err(invalid("duplicates window can not be larger then max age"));
    }
    if server_max > 0 && cfg.duplicate_window > server_max {
        return Err(invalid(&format!(
            "duplicates window can not be larger then server limit of {}",
            go_duration(server_max)
        )));
    }
    if cfg.duplicate_window > 0 && cfg.duplicate_window < MIN_WINDOW_NS {
        return Err(invalid("duplicates window needs to be >= 100ms"));
    }
    Ok(())
}

/// Go's `time.Duration.String()` for the whole-unit values limits use
/// (`2m0s`, `1h0m0s`, `500ms`).
fn go_duration(ns: i64) -> String {
    if ns % 1_000_000_000 != 0 || ns < 1_000_000_000 {
        let ms = ns as f64 / 1e6;
        return format!("{ms}ms");
    }
    let secs = ns / 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

fn check_features(cfg: &mut StreamConfig, pedantic: bool) -> Result<(), ApiError> {
    if cfg.deny_purge && cfg.allow_rollup_hdrs {
        return Err(invalid("roll-ups require the purge permission"));
    }
    if cfg.allow_msg_counter {
        if cfg.discard == DiscardPolicy::New {
            return Err(invalid("counter stream cannot use discard new"));
        }
        if cfg.allow_msg_ttl {
            return Err(invalid("counter stream cannot use message TTLs"));
        }
        if cfg.allow_msg_schedules {
            return Err(invalid("counter stream cannot use message schedules"));
        }
        if cfg.retention != RetentionPolicy::Limits {
            return Err(invalid("counter stream can only use limits retention"));
        }
    }
    check_discard_new_per_subject(cfg)?;
    if cfg.subject_delete_marker_ttl > 0 {
        if cfg.subject_delete_marker_ttl < MIN_MARKER_TTL_NS {
            return Err(invalid(
                "subject delete marker TTL must be at least 1 second",
            ));
        }
        if !cfg.allow_msg_ttl {
            if pedantic {
                return Err(invalid(
                    "subject delete marker cannot be set if message TTLs are disabled",
                ));
            }
            cfg.allow_msg_ttl = true;
        }
        if !cfg.allow_rollup_hdrs {
            if pedantic {
                return Err(invalid(
                    "subject delete marker cannot be set if roll-ups are disabled",
                ));
            }
            cfg.allow_rollup_hdrs = true;
            cfg.deny_purge = false;
        }
    } else if cfg.subject_delete_marker_ttl < 0 {
        return Err(invalid("subject delete marker TTL must not be negative"));
    }
    if cfg.allow_msg_schedules {
        if cfg.discard == DiscardPolicy::New {
            return Err(invalid("message scheduling cannot use discard new"));
        }
        if !cfg.allow_rollup_hdrs {
            if pedantic {
                return Err(invalid(
                    "message scheduling cannot be set if roll-ups are disabled",
                ));
            }
            cfg.allow_rollup_hdrs = true;
            cfg.deny_purge = false;
        }
    }
    if cfg.persist_mode == PersistMode::Async {
        if cfg.storage != StorageType::File {
            return Err(invalid(
                "async persist mode is only supported on file storage",
            ));
        }
        if cfg.num_replicas > 1 {
            return Err(invalid(
                "async persist mode is not supported on replicated streams",
            ));
        }
        if cfg.allow_atomic {
            return Err(invalid(
                "async persist mode is not supported with atomic batch publish",
            ));
        }
    }
    Ok(())
}

pub(super) fn check_discard_new_per_subject(cfg: &StreamConfig) -> Result<(), ApiError> {
    if cfg.discard_new_per_subject {
        if cfg.discard != DiscardPolicy::New {
            return Err(invalid(
                "discard new per subject requires discard new policy to be set",
            ));
        }
        if cfg.max_msgs_per_subject <= 0 {
            return Err(invalid(
                "discard new per subject requires max msgs per subject > 0",
            ));
        }
    }
    Ok(())
}

/// A durable consumer a source or mirror reads through must be named, have a
/// literal deliver subject and no start position or filter of its own.
fn durable_consumer_ok(src: &StreamSource) -> bool {
    let Some(c) = &src.consumer else { return true };
    is_valid_asset_name(&c.name)
        && is_literal(c.deliver_subject.as_bytes())
        && is_valid_subject(c.deliver_subject.as_bytes())
        && !c.deliver_subject.is_empty()
        && src.opt_start_seq == 0
        && src.opt_start_time.is_none()
        && src.filter_subject.is_empty()
}

fn check_mirror(
    cfg: &mut StreamConfig,
    pedantic: bool,
    lookup: &dyn Fn(&str) -> Option<StreamConfig>,
) -> Result<(), ApiError> {
    let Some(mirror) = cfg.mirror.clone() else {
        return Ok(());
    };
    let refusals = [
        (
            cfg.first_seq > 0,
            ApiError::mirror_with_first_seq as fn() -> ApiError,
        ),
        (!cfg.subjects.is_empty(), ApiError::mirror_with_subjects),
        (!cfg.sources.is_empty(), ApiError::mirror_with_sources),
        (cfg.allow_msg_counter, ApiError::mirror_with_counters),
        (cfg.allow_atomic, ApiError::mirror_with_atomic_publish),
        (cfg.allow_batched, ApiError::mirror_with_batch_publish),
        (cfg.allow_msg_schedules, ApiError::mirror_with_msg_schedules),
        (
            !durable_consumer_ok(&mirror),
            ApiError::mirror_durable_consumer_cfg_invalid,
        ),
    ];
    if let Some((_, err)) = refusals.iter().find(|(refused, _)| *refused) {
        return Err(err());
    }
    if !mirror.filter_subject.is_empty() && !mirror.subject_transforms.is_empty() {
        return Err(ApiError::mirror_multiple_filters_not_allowed());
    }
    if cfg.subject_delete_marker_ttl > 0 {
        return Err(invalid("subject delete markers forbidden on mirrors"));
    }
    for (i, tr) in mirror.subject_transforms.iter().enumerate() {
        if !tr.src.is_empty() && !is_valid_subject(tr.src.as_bytes()) {
            return Err(ApiError::mirror_invalid_subject_filter(format!(
                "invalid subject {}",
                tr.src
            )));
        }
        validate_mapping(&tr.src, &tr.dest)
            .map_err(ApiError::mirror_invalid_transform_destination)?;
        let others = mirror
            .subject_transforms
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i);
        if others
            .into_iter()
            .any(|(_, o)| subjects_collide(&tr.src, &o.src))
        {
            return Err(ApiError::mirror_overlapping_subject_filters());
        }
    }
    if mirror.external.is_none() {
        if !is_valid_asset_name(&mirror.name) {
            return Err(ApiError::mirror_invalid_stream_name());
        }
        if let Some(origin) = lookup(&mirror.name) {
            if cfg.max_msg_size > 0
                && origin.max_msg_size > 0
                && cfg.max_msg_size < origin.max_msg_size
            {
                return Err(ApiError::mirror_max_message_size_too_big());
            }
            if pedantic && cfg.mirror_direct != origin.allow_direct {
                return Err(ApiError::pedantic(
                    "origin stream has direct get set, mirror has it disabled",
                ));
            }
            cfg.mirror_direct = origin.allow_direct;
        }
    }
    Ok(())
}

fn check_sources(
    cfg: &StreamConfig,
    lookup: &dyn Fn(&str) -> Option<StreamConfig>,
) -> Result<(), ApiError> {
    if !cfg.sources.is_empty() && cfg.allow_msg_schedules {
        return Err(ApiError::source_with_msg_schedules());
    }
    let mut index_names = std::collections::BTreeSet::new();
    let mut consumer_names = std::collections::BTreeSet::new();
    for src in &cfg.sources {
        if !is_valid_asset_name(&src.name) {
            return Err(ApiError::source_invalid_stream_name());
        }
        if !index_names.insert(src.index_name()) {
            return Err(ApiError::source_duplicate_detected());
        }
        if !src.filter_subject.is_empty() && !src.subject_transforms.is_empty() {
            return Err(ApiError::source_multiple_filters_not_allowed());
        }
        for tr in &src.subject_transforms {
            if !tr.src.is_empty() && !is_valid_subject(tr.src.as_bytes()) {
                return Err(ApiError::source_invalid_subject_filter(format!(
                    "invalid subject {}",
                    tr.src
                )));
            }
            validate_mapping(&tr.src, &tr.dest)
                .map_err(ApiError::source_invalid_transform_destination)?;
        }
        for (i, tr) in src.subject_transforms.iter().enumerate() {
            for (j, other) in src.subject_transforms.iter().enumerate() {
                if i != j && subject_is_subset(tr.src.as_bytes(), other.src.as_bytes()) {
                    return Err(ApiError::source_overlapping_subject_filters());
                }
            }
        }
        if src.consumer.is_some() {
            if !durable_consumer_ok(src) {
                return Err(ApiError::source_durable_consumer_cfg_invalid());
            }
            if !consumer_names.insert(src.consumer_index_name()) {
                return Err(ApiError::source_durable_consumer_duplicate_detected());
            }
        }
        if src.external.is_none() {
            if let Some(upstream) = lookup(&src.name) {
                if cfg.max_msg_size > 0
                    && upstream.max_msg_size > 0
                    && cfg.max_msg_size < upstream.max_msg_size
                {
                    return Err(ApiError::source_max_message_size_too_big());
                }
            }
        }
    }
    Ok(())
}

fn check_external_prefixes(
    cfg: &StreamConfig,
    lookup: &dyn Fn(&str) -> Option<StreamConfig>,
) -> Result<(), ApiError> {
    let upstreams = cfg.mirror.iter().chain(&cfg.sources);
    let mut stream_subjects = Vec::new();
    let (mut deliver_prefixes, mut api_prefixes) = (Vec::new(), Vec::new());
    for src in upstreams {
        match &src.external {
            None => {
                if let Some(upstream) = lookup(&src.name) {
                    stream_subjects.extend(upstream.subjects);
                }
            }
            Some(ext) => {
                if !ext.deliver_prefix.is_empty() {
                    deliver_prefixes.push(ext.deliver_prefix.clone());
                }
                if !ext.api_prefix.is_empty() {
                    api_prefixes.push(ext.api_prefix.clone());
                }
            }
        }
    }
    for pfx in &deliver_prefixes {
        if !is_valid_publish_subject(pfx.as_bytes()) {
            return Err(ApiError::stream_invalid_external_delivery_subj(pfx));
        }
        for subj in &stream_subjects {
            if subjects_collide(subj, &format!("{pfx}.{subj}")) {
                return Err(ApiError::stream_external_del_prefix_overlaps(pfx, subj));
            }
        }
    }
    for pfx in &api_prefixes {
        if !is_valid_publish_subject(pfx.as_bytes()) {
            return Err(invalid(&format!(
                "stream external api prefix {pfx:?} must be a valid subject without wildcards"
            )));
        }
        if subjects_collide(pfx, "$JS.API") {
            return Err(ApiError::stream_external_api_overlap(pfx, "$JS.API"));
        }
    }
    Ok(())
}

/// Walks sources and mirrors through `lookup`; reaching a stream already
/// visited (with overlapping subjects for sources) is a cycle.
fn check_cycles(
    cfg: &StreamConfig,
    lookup: &dyn Fn(&str) -> Option<StreamConfig>,
) -> Result<(), ApiError> {
    let mut to_visit = vec![cfg.clone()];
    let mut visited = std::collections::BTreeSet::new();
    // Bounded: each stream of the account is expanded at most once.
    while let Some(current) = to_visit.pop() {
        if !visited.insert(current.name.clone()) {
            continue;
        }
        for src in current.sources.iter().filter(|s| s.external.is_none()) {
            if visited.contains(&src.name) {
                let overlaps = src.filter_subject.is_empty()
                    || current
                        .subjects
                        .iter()
                        .any(|s| subjects_collide(s, &src.filter_subject));
                if overlaps {
                    return Err(invalid("detected cycle"));
                }
            } else if let Some(upstream) = lookup(&src.name) {
                to_visit.push(upstream);
            }
        }
        if let Some(m) = current.mirror.as_ref().filter(|m| m.external.is_none()) {
            if visited.contains(&m.name) {
                return Err(invalid("detected cycle"));
            }
            if let Some(origin) = lookup(&m.name) {
                to_visit.push(origin);
            }
        }
    }
    Ok(())
}

fn check_subjects(cfg: &mut StreamConfig) -> Result<(), ApiError> {
    if cfg.subjects.is_empty() {
        if cfg.mirror.is_none() && cfg.sources.is_empty() {
            cfg.subjects.push(cfg.name.clone());
        }
        return Ok(());
    }
    if cfg.mirror.is_some() {
        return Err(ApiError::mirror_with_subjects());
    }
    for (i, subj) in cfg.subjects.iter().enumerate() {
        if !is_valid_subject(subj.as_bytes()) || subj.is_empty() {
            return Err(invalid("invalid subject"));
        }
        if cfg.subjects[..i].contains(subj) {
            return Err(invalid("duplicate subjects detected"));
        }
        if subj == ">" {
            if !cfg.no_ack {
                return Err(invalid("capturing all subjects requires no-ack to be true"));
            }
            if cfg.num_replicas != 1 {
                return Err(invalid("capturing all subjects requires replicas of 1"));
            }
        }
        if !cfg.no_ack {
            let js_api = ["$JS.>", "$JSC.>", "$NRG.>"]
                .iter()
                .any(|ns| subjects_collide(subj, ns));
            if js_api && !subject_is_subset(subj.as_bytes(), b"$JS.EVENT.>") {
                return Err(invalid(
                    "subjects that overlap with jetstream api require no-ack to be true",
                ));
            }
            if subjects_collide(subj, "$SYS.>")
                && !subject_is_subset(subj.as_bytes(), b"$SYS.ACCOUNT.>")
            {
                return Err(invalid(
                    "subjects that overlap with system api require no-ack to be true",
                ));
            }
        }
        if let Some(other) = cfg.subjects[i + 1..]
            .iter()
            .find(|t| subjects_collide(t, subj))
        {
            return Err(invalid(&format!(
                "subject {subj:?} overlaps with {other:?}"
            )));
        }
    }
    Ok(())
}

fn check_account_bytes(cfg: &StreamConfig, limits: &CheckLimits) -> Result<(), ApiError> {
    if cfg.subjects.is_empty() && cfg.sources.is_empty() && cfg.mirror.is_none() {
        return Err(invalid(
            "stream needs at least one configured subject or be a source/mirror",
        ));
    }
    let stream_max = match cfg.storage {
        StorageType::Memory => limits.memory_max_stream_bytes,
        StorageType::File => limits.storage_max_stream_bytes,
    };
    if limits.max_bytes_required && cfg.max_bytes <= 0 {
        return Err(ApiError::stream_max_bytes_required());
    }
    if stream_max > 0 && cfg.max_bytes > stream_max {
        return Err(ApiError::stream_max_stream_bytes_exceeded());
    }
    Ok(())
}

/// Refuses a transform the stream could not apply (every one that passed
/// [`validate_mapping`] compiles; this keeps the two from drifting apart).
fn refuse_unapplied(src: &str, dest: &str) -> Result<(), ApiError> {
    match crate::subject::transform::Transform::new(src, dest) {
        Ok(_) => Ok(()),
        Err(e) => Err(ApiError::stream_transform_invalid_destination(e.to_string())),
    }
}

fn check_transform_and_republish(cfg: &mut StreamConfig, pedantic: bool) -> Result<(), ApiError> {
    if let Some(tr) = &cfg.subject_transform {
        if !tr.src.is_empty() && !is_valid_subject(tr.src.as_bytes()) {
            return Err(ApiError::stream_transform_invalid_source(format!(
                "invalid subject {}",
                tr.src
            )));
        }
        validate_mapping(&tr.src, &tr.dest)
            .map_err(ApiError::stream_transform_invalid_destination)?;
        refuse_unapplied(&tr.src, &tr.dest)?;
    }
    let Some(mut rp) = cfg.republish.take() else {
        return Ok(());
    };
    if rp.src.is_empty() {
        if pedantic {
            return Err(ApiError::pedantic("republish source can not be empty"));
        }
        rp.src = ">".to_string();
    }
    if let Some(tr) = &cfg.subject_transform {
        let implicit =
            rp.dest == ">" && rp.src == ">" && cfg.subjects.len() == 1 && tr.src == cfg.subjects[0];
        if implicit {
            if pedantic {
                return Err(ApiError::pedantic(
                    "implicit republish based on subject transform",
                ));
            }
            rp.src = tr.dest.clone();
            rp.dest = tr.dest.clone();
        }
    }
    if cfg.subjects.iter().any(|s| subjects_collide(&rp.dest, s)) {
        return Err(invalid(
            "stream configuration for republish destination forms a cycle",
        ));
    }
    if rp.dest.is_empty() || validate_mapping(&rp.src, &rp.dest).is_err() {
        return Err(invalid(&format!(
            "stream configuration for republish with transform from '{}' to '{}' not valid",
            rp.src, rp.dest
        )));
    }
    refuse_unapplied(&rp.src, &rp.dest)?;
    cfg.republish = Some(rp);
    Ok(())
}
