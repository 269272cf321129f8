//! The runtime's clocks, turned into the core's time inputs.

use std::sync::OnceLock;
use std::time::SystemTime;

use natrix_core::{Instant, UnixNanos};

static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();

/// Monotonic time since the process's first call.
pub fn now() -> Instant {
    let epoch = *EPOCH.get_or_init(std::time::Instant::now);
    let nanos = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
    Instant::from_nanos(nanos)
}

/// The monotonic instant as a tokio instant, for sleeping until a core deadline.
pub fn to_tokio(at: Instant) -> tokio::time::Instant {
    let epoch = *EPOCH.get_or_init(std::time::Instant::now);
    tokio::time::Instant::from_std(epoch + std::time::Duration::from_nanos(at.as_nanos()))
}

/// Wall-clock time.
pub fn wall() -> UnixNanos {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    UnixNanos(i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
}
