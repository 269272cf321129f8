//! The memory limit (natrix's counterpart of Go's `GOMEMLIMIT`): with
//! `memory_limit` configured (or `NATRIX_MEMORY_LIMIT` / `GOMEMLIMIT` in
//! the environment, which the runtime reads), the server sheds work before
//! the process is killed for its memory.
//!
//! The runtime measures the process's resident memory on a timer and hands
//! it in ([`Control::handle_process_stats`]). At or above the high-water
//! mark ([`HIGH_WATER_PERCENT`] of the limit) the server is under memory
//! pressure until usage falls below the low-water mark
//! ([`LOW_WATER_PERCENT`]); meanwhile it refuses new connections (with
//! `-ERR 'maximum connections exceeded: memory limit reached'`, as a full
//! server refuses them) and cuts slow consumers at a quarter of
//! `max_pending`, since their buffers are what grows. Entering and leaving
//! are logged, and `/varz` shows `memory_limit_exceeded: true` meanwhile.

use crate::log::Level;
use crate::sync::Ordering;
use crate::time::Instant;

use super::Control;

/// Pressure starts when resident memory reaches this share of the limit.
pub const HIGH_WATER_PERCENT: u64 = 90;
/// Pressure ends when resident memory falls below this share of the limit.
pub const LOW_WATER_PERCENT: u64 = 80;
/// Under pressure a receiver is a slow consumer at `max_pending` divided by this.
pub const PRESSURE_PENDING_DIVISOR: u64 = 4;

/// The `-ERR` a connection refused for memory gets.
pub(crate) const REFUSED: &str = "maximum connections exceeded: memory limit reached";

/// Parses a memory limit as Go's `GOMEMLIMIT` spells it (a byte count
/// with an optional `B`, `KiB`, `MiB`, `GiB` or `TiB` suffix), also taking
/// `K`/`KB`, `M`/`MB`, `G`/`GB`, `T`/`TB` (binary units, as nats-server's
/// config sizes). `off` is no limit.
pub fn parse_memory_limit(text: &str) -> Result<Option<u64>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(format!("invalid memory limit {text:?}: unknown unit {unit:?}")),
    };
    let n: u64 = number.parse().map_err(|_| format!("invalid memory limit {text:?}"))?;
    let bytes = n.checked_mul(1 << shift).ok_or_else(|| format!("memory limit {text:?} is too large"))?;
    Ok((bytes > 0).then_some(bytes))
}

impl Control {
    /// The configured memory limit, if any.
    pub(crate) fn memory_limit_bytes(&self) -> Option<u64> {
        self.opts.memory_limit_bytes.filter(|&b| b > 0)
    }

    /// True while resident memory is over the high-water mark (and not yet
    /// back under the low-water mark).
    pub fn under_memory_pressure(&self) -> bool {
        self.traffic.memory_pressure.load(Ordering::Relaxed)
    }

    /// `max_pending` as it applies now: a quarter of it under memory pressure.
    pub(crate) fn effective_max_pending(&self) -> u64 {
        effective_max_pending(self.opts.max_pending_bytes, self.under_memory_pressure())
    }

    /// A new measurement arrived: enter or leave memory pressure.
    pub(super) fn memory_sampled(&mut self, _now: Instant) {
        let Some(limit) = self.memory_limit_bytes() else { return };
        let rss = self.events.process.rss_bytes;
        let was = self.under_memory_pressure();
        let high = limit / 100 * HIGH_WATER_PERCENT;
        let low = limit / 100 * LOW_WATER_PERCENT;
        let now_over = if was { rss >= low } else { rss >= high };
        if now_over == was {
            return;
        }
        self.traffic.memory_pressure.store(now_over, Ordering::Relaxed);
        let (mib, limit_mib) = (rss >> 20, limit >> 20);
        if now_over {
            self.log(
                Level::Warn,
                format!(
                    "Memory limit: {mib} MiB resident of {limit_mib} MiB; refusing new connections and \
                     cutting slow consumers at {} bytes pending",
                    self.effective_max_pending()
                ),
            );
        } else {
            self.log(Level::Info, format!("Memory limit: {mib} MiB resident of {limit_mib} MiB; accepting connections again"));
        }
    }
}

/// `max_pending` under pressure or not.
pub(crate) fn effective_max_pending(max_pending: u64, pressure: bool) -> u64 {
    if pressure {
        (max_pending / PRESSURE_PENDING_DIVISOR).max(1)
    } else {
        max_pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_as_gomemlimit_and_config_sizes() {
        assert_eq!(parse_memory_limit("1073741824"), Ok(Some(1 << 30)));
        assert_eq!(parse_memory_limit("512MiB"), Ok(Some(512 << 20)));
        assert_eq!(parse_memory_limit("2GB"), Ok(Some(2 << 30)));
        assert_eq!(parse_memory_limit("64k"), Ok(Some(64 << 10)));
        assert_eq!(parse_memory_limit("100B"), Ok(Some(100)));
        assert_eq!(parse_memory_limit("off"), Ok(None));
        assert_eq!(parse_memory_limit("0"), Ok(None));
        assert!(parse_memory_limit("12 parsecs").is_err());
        assert!(parse_memory_limit("GiB").is_err());
        assert!(parse_memory_limit("99999999999999TiB").is_err());
    }

    #[test]
    fn pressure_quarters_max_pending() {
        assert_eq!(effective_max_pending(64 << 20, false), 64 << 20);
        assert_eq!(effective_max_pending(64 << 20, true), 16 << 20);
        assert_eq!(effective_max_pending(2, true), 1);
    }
}
