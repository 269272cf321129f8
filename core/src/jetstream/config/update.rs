//! nats-server's rules for what a stream update may change
//! (`configUpdateCheck`) on a server whose JetStream is not clustered.

use super::checks::{check_common, check_discard_new_per_subject, invalid, CheckLimits};
use super::{DiscardPolicy, RetentionPolicy, StreamConfig};
use crate::jetstream::api::errors::ApiError;

/// Validates an update of `old` to `new` as nats-server's update request
/// does on a single server: `checkStreamCfg` on `new`, then what an update
/// may not change, then the adjustments a seal implies. The caller checks
/// the stream exists, the subject's name matches, subject overlap with the
/// other streams and the account's limits.
pub fn check_stream_update(
    old: &StreamConfig,
    new: StreamConfig,
    limits: &CheckLimits,
) -> Result<StreamConfig, ApiError> {
    check_stream_update_with(old, new, limits, &|_| None)
}

/// [`check_stream_update`] with `lookup` returning the config of another
/// stream of the account by name, for the mirror and source checks.
pub fn check_stream_update_with(
    old: &StreamConfig,
    new: StreamConfig,
    limits: &CheckLimits,
    lookup: &dyn Fn(&str) -> Option<StreamConfig>,
) -> Result<StreamConfig, ApiError> {
    let mut cfg = check_common(new, limits, lookup)?;
    if cfg.name != old.name {
        return Err(invalid("stream configuration name must match original"));
    }
    if !limits.clustered && cfg.num_replicas > 1 {
        return Err(ApiError::stream_replicas_not_supported());
    }
    if cfg.storage != old.storage {
        return Err(invalid(
            "stream configuration update can not change storage type",
        ));
    }
    let workqueue = RetentionPolicy::WorkQueue;
    if cfg.retention != old.retention && (old.retention == workqueue || cfg.retention == workqueue)
    {
        return Err(invalid(
            "stream configuration update can not change retention policy to/from workqueue",
        ));
    }
    let unset = |was: bool, is: bool| was && !is;
    if unset(old.sealed, cfg.sealed) {
        return Err(invalid(
            "stream configuration update can not unseal a sealed stream",
        ));
    }
    if unset(old.deny_delete, cfg.deny_delete) {
        return Err(invalid(
            "stream configuration update can not cancel deny message deletes",
        ));
    }
    if unset(old.deny_purge, cfg.deny_purge) {
        return Err(invalid(
            "stream configuration update can not cancel deny purge",
        ));
    }
    // Removing the mirror promotes the stream; changing it is refused.
    if cfg.mirror.is_some() && cfg.mirror != old.mirror {
        return Err(ApiError::stream_mirror_not_updatable());
    }
    check_discard_new_per_subject(&cfg)?;
    if unset(old.allow_msg_ttl, cfg.allow_msg_ttl) {
        return Err(invalid("message TTL status can not be disabled"));
    }
    if cfg.allow_msg_counter != old.allow_msg_counter {
        return Err(invalid(
            "stream configuration update can not change message counter setting",
        ));
    }
    if unset(old.allow_msg_schedules, cfg.allow_msg_schedules) {
        return Err(invalid("message schedules can not be disabled"));
    }
    if cfg.persist_mode != old.persist_mode {
        return Err(invalid(
            "stream configuration update can not change persist mode",
        ));
    }
    if cfg.sealed {
        cfg.max_age = 0;
        cfg.discard = DiscardPolicy::New;
        cfg.deny_delete = true;
        cfg.deny_purge = true;
        cfg.allow_rollup_hdrs = false;
    }
    Ok(cfg)
}
