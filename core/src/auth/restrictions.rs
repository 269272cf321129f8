//! Where and when a user may connect: `src` networks (CIDR blocks),
//! `times` windows of the day, and `allowed_connection_types`, as user JWTs
//! carry them. The peer address and the wall clock are inputs.

use core::net::IpAddr;

use serde_json::Value;

use super::jwt::UserLimitClaims;

/// The connection type of a plain NATS client, the only kind the core serves.
pub const STANDARD: &str = "STANDARD";

/// Connection types nats-server knows.
const KNOWN_TYPES: &[&str] = &[
    "STANDARD",
    "WEBSOCKET",
    "LEAFNODE",
    "LEAFNODE_WS",
    "MQTT",
    "MQTT_WS",
    "IN_PROCESS",
];

/// Why a user may not connect from here, now, or this way.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestrictionError {
    /// The peer is in none of the `src` networks.
    #[error("client address {0} is not in an allowed source network")]
    Source(IpAddr),
    /// A `src` entry is not a CIDR block or address.
    #[error("invalid source network {0:?}")]
    BadSource(String),
    /// The wall clock is outside every `times` window.
    #[error("connection outside the allowed times")]
    Time,
    /// A `times` entry or location natrix cannot read.
    #[error("invalid time window: {0}")]
    BadTime(String),
    /// The connection type is not in `allowed_connection_types`.
    #[error("connection type {0} not allowed")]
    ConnectionType(String),
}

/// Checks a user's `src`, `times` (with `times_location`) and
/// `allowed_connection_types` against the peer, the wall clock (Unix
/// seconds) and the connection type.
pub fn check(
    limits: &UserLimitClaims,
    peer: IpAddr,
    now_unix_secs: i64,
    connection_type: &str,
) -> Result<(), RestrictionError> {
    check_source(limits.src.as_ref(), peer)?;
    check_times(limits.times.as_ref(), &limits.times_location, now_unix_secs)?;
    check_connection_type(
        limits
            .allowed_connection_types
            .as_deref()
            .unwrap_or_default(),
        connection_type,
    )
}

/// nats-server ignores types it does not know; an empty list allows all.
pub fn check_connection_type(
    allowed: &[String],
    connection_type: &str,
) -> Result<(), RestrictionError> {
    let known: Vec<&String> = allowed
        .iter()
        .filter(|t| KNOWN_TYPES.contains(&t.to_ascii_uppercase().as_str()))
        .collect();
    if known.is_empty()
        || known
            .iter()
            .any(|t| t.eq_ignore_ascii_case(connection_type))
    {
        Ok(())
    } else {
        Err(RestrictionError::ConnectionType(connection_type.to_owned()))
    }
}

/// `src` is a list of CIDR blocks (older JWTs: one comma-separated string).
fn check_source(src: Option<&Value>, peer: IpAddr) -> Result<(), RestrictionError> {
    let entries: Vec<String> = match src {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) => s
            .split(',')
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(other) => return Err(RestrictionError::BadSource(other.to_string())),
    };
    if entries.is_empty() {
        return Ok(());
    }
    for entry in &entries {
        if cidr_contains(entry, peer).ok_or_else(|| RestrictionError::BadSource(entry.clone()))? {
            return Ok(());
        }
    }
    Err(RestrictionError::Source(peer))
}

/// `Some(true)` when `cidr` (`a.b.c.d/n`, or a bare address) holds `ip`.
fn cidr_contains(cidr: &str, ip: IpAddr) -> Option<bool> {
    let (addr, bits) = match cidr.split_once('/') {
        Some((a, b)) => (a.parse::<IpAddr>().ok()?, Some(b.parse::<u32>().ok()?)),
        None => (cidr.parse::<IpAddr>().ok()?, None),
    };
    let ip = match (addr, ip) {
        (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        _ => ip,
    };
    Some(match (addr, ip) {
        (IpAddr::V4(net), IpAddr::V4(ip)) => {
            prefix_eq(&net.octets(), &ip.octets(), bits.unwrap_or(32))?
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) => {
            prefix_eq(&net.octets(), &ip.octets(), bits.unwrap_or(128))?
        }
        _ => false,
    })
}

fn prefix_eq(net: &[u8], ip: &[u8], bits: u32) -> Option<bool> {
    if bits as usize > net.len() * 8 {
        return None;
    }
    let (whole, rest) = ((bits / 8) as usize, bits % 8);
    if net[..whole] != ip[..whole] {
        return Some(false);
    }
    if rest == 0 {
        return Some(true);
    }
    let mask = 0xffu8 << (8 - rest);
    Some(net[whole] & mask == ip[whole] & mask)
}

/// `times: [{start: "HH:MM:SS", end: "HH:MM:SS"}]` in `times_location`.
/// The core has no time zone database: only UTC (or no location, which
/// natrix reads as UTC) is accepted; another location refuses the user
/// rather than guessing.
fn check_times(times: Option<&Value>, location: &str, now: i64) -> Result<(), RestrictionError> {
    let Some(Value::Array(windows)) = times else {
        return Ok(());
    };
    if windows.is_empty() {
        return Ok(());
    }
    if !(location.is_empty() || location.eq_ignore_ascii_case("UTC")) {
        return Err(RestrictionError::BadTime(format!(
            "time zone {location:?} is not supported"
        )));
    }
    let second_of_day = now.rem_euclid(86_400);
    for w in windows {
        let field = |k: &str| w.get(k).and_then(Value::as_str).and_then(parse_hms);
        let (Some(start), Some(end)) = (field("start"), field("end")) else {
            return Err(RestrictionError::BadTime(w.to_string()));
        };
        let inside = if start <= end {
            (start..=end).contains(&second_of_day)
        } else {
            // A window across midnight.
            second_of_day >= start || second_of_day <= end
        };
        if inside {
            return Ok(());
        }
    }
    Err(RestrictionError::Time)
}

fn parse_hms(s: &str) -> Option<i64> {
    let mut parts = s.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, sec) = (
        parts.next()??,
        parts.next()??,
        parts.next().unwrap_or(Some(0))?,
    );
    ((0..24).contains(&h) && (0..60).contains(&m) && (0..60).contains(&sec))
        .then_some(h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn limits(v: Value) -> UserLimitClaims {
        serde_json::from_value(v).unwrap()
    }

    fn in_zone(mut v: Value, zone: &str) -> UserLimitClaims {
        v["times_location"] = json!(zone);
        limits(v)
    }

    #[test]
    fn source_networks() {
        let l = limits(json!({"src": ["10.0.0.0/8", "192.168.1.7"]}));
        let ok = |ip: &str| check(&l, ip.parse().unwrap(), 0, STANDARD);
        assert!(ok("10.1.2.3").is_ok());
        assert!(ok("192.168.1.7").is_ok());
        assert!(
            ok("::ffff:10.0.0.1").is_ok(),
            "IPv4-mapped peers match IPv4 blocks"
        );
        assert_eq!(
            ok("11.0.0.1"),
            Err(RestrictionError::Source("11.0.0.1".parse().unwrap()))
        );
        let old_style = limits(json!({"src": "127.0.0.0/24, 10.0.0.0/8"}));
        assert!(check(&old_style, "127.0.0.1".parse().unwrap(), 0, STANDARD).is_ok());
        let bad = limits(json!({"src": ["10.0.0.0/99"]}));
        assert!(matches!(
            check(&bad, "10.0.0.1".parse().unwrap(), 0, STANDARD),
            Err(RestrictionError::BadSource(_))
        ));
    }

    #[test]
    fn time_windows_in_utc() {
        let windows = json!({"times": [{"start": "08:00:00", "end": "17:00:00"}, {"start": "22:00:00", "end": "02:00:00"}]});
        let l = in_zone(windows.clone(), "UTC");
        let at = |h: i64| {
            check(
                &l,
                "1.2.3.4".parse().unwrap(),
                // 1_700_006_400 is a UTC midnight.
                1_700_006_400 + h * 3600,
                STANDARD,
            )
        };
        assert!(at(9).is_ok());
        assert_eq!(at(18), Err(RestrictionError::Time));
        assert!(at(23).is_ok());
        assert!(at(1).is_ok());
        let paris = in_zone(windows, "Europe/Paris");
        assert!(matches!(
            check(&paris, "1.2.3.4".parse().unwrap(), 0, STANDARD),
            Err(RestrictionError::BadTime(_))
        ));
    }

    #[test]
    fn connection_types() {
        let l = limits(json!({"allowed_connection_types": ["WEBSOCKET"]}));
        assert!(check(&l, "1.2.3.4".parse().unwrap(), 0, STANDARD).is_err());
        let l = limits(json!({"allowed_connection_types": ["STANDARD", "MQTT"]}));
        assert!(check(&l, "1.2.3.4".parse().unwrap(), 0, STANDARD).is_ok());
        let unknown_only = limits(json!({"allowed_connection_types": ["CARRIER_PIGEON"]}));
        assert!(check(&unknown_only, "1.2.3.4".parse().unwrap(), 0, STANDARD).is_ok());
    }
}
