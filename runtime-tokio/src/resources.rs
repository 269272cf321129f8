//! What the machine offers JetStream when the configuration leaves its
//! budget open: three quarters of the memory, and three quarters of the
//! disk space available where the store lives, as nats-server sizes them.

use std::path::Path;

/// nats-server's memory budget when the machine's memory is unknown: 256 MiB.
const MEMORY_FALLBACK: i64 = 256 * 1024 * 1024;
/// nats-server's storage budget when the disk's free space is unknown: 1 TiB.
const STORAGE_FALLBACK: i64 = 1024 * 1024 * 1024 * 1024;

/// Three quarters of `n`, saturating into an `i64`.
fn three_quarters(n: u64) -> i64 {
    i64::try_from(n / 4 * 3).unwrap_or(i64::MAX)
}

/// The memory budget: three quarters of the machine's memory.
pub fn memory_budget() -> i64 {
    match rustix::system::sysinfo() {
        info if info.totalram > 0 => three_quarters(info.totalram.saturating_mul(u64::from(info.mem_unit.max(1)))),
        _ => MEMORY_FALLBACK,
    }
}

/// The storage budget: three quarters of the space available to an
/// unprivileged user under `dir` (made first, so that it can be asked).
pub fn storage_budget(dir: &Path) -> i64 {
    let _ = std::fs::create_dir_all(dir);
    match rustix::fs::statvfs(dir) {
        Ok(st) => three_quarters(st.f_bavail.saturating_mul(st.f_frsize)),
        Err(_) => STORAGE_FALLBACK,
    }
}

/// A byte count as nats-server prints it in its start-up lines: `1.00 TB`.
pub fn friendly_bytes(bytes: i64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let units = ["K", "M", "G", "T", "P", "E"];
    let exp = ((bytes as f64).ln() / 1024f64.ln()).floor() as usize;
    let exp = exp.clamp(1, units.len());
    format!("{:.2} {}B", bytes as f64 / 1024f64.powi(exp as i32), units[exp - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_nats_server() {
        assert_eq!(friendly_bytes(512), "512 B");
        assert_eq!(friendly_bytes(1024 * 1024 * 1024 * 1024), "1.00 TB");
        assert_eq!(friendly_bytes(3 * 1024 * 1024 / 2), "1.50 MB");
    }

    #[test]
    fn three_quarters_saturates() {
        assert_eq!(three_quarters(400), 300);
        assert_eq!(three_quarters(u64::MAX), i64::MAX);
    }
}
