//! Durations rendered the way nats-server's JSON renders them.

use std::time::Duration;

/// Go's `time.Duration.String()`: `1.20559ms`, `2m3.5s`, `0s`.
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", trim_fraction(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim_fraction(nanos, 1_000_000));
    }
    let secs = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let sec_text = trim_fraction(u128::from(s as u32) * 1_000_000_000 + frac, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{sec_text}s"),
        (0, m) => format!("{m}m{sec_text}s"),
        (h, m) => format!("{h}h{m}m{sec_text}s"),
    }
}

/// `value / unit` with up to 9 decimals, trailing zeros trimmed.
fn trim_fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let frac = value % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = unit.ilog10() as usize;
    let text = format!("{frac:0digits$}");
    format!("{whole}.{}", text.trim_end_matches('0'))
}

/// nats-server's uptime format: `1y2d3h4m5s`, leading zero units dropped, `0s` minimum.
pub fn uptime(d: Duration) -> String {
    let mut secs = d.as_secs();
    let years = secs / (365 * 86_400);
    secs %= 365 * 86_400;
    let days = secs / 86_400;
    secs %= 86_400;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    let mut started = false;
    for (value, unit) in [(years, "y"), (days, "d"), (h, "h"), (m, "m")] {
        if value > 0 || started {
            out.push_str(&format!("{value}{unit}"));
            started = true;
        }
    }
    out.push_str(&format!("{s}s"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_matches_go() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(1_205_590)), "1.20559ms");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(go_duration(Duration::from_nanos(999)), "999ns");
        assert_eq!(go_duration(Duration::from_millis(123_500)), "2m3.5s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_secs(2)), "2s");
    }

    #[test]
    fn uptime_matches_nats_server() {
        assert_eq!(uptime(Duration::ZERO), "0s");
        assert_eq!(uptime(Duration::from_secs(61)), "1m1s");
        assert_eq!(uptime(Duration::from_secs(86_400 + 5)), "1d0h0m5s");
    }
}
