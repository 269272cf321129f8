//! Where and when a user may connect: `src` networks (CIDR blocks),
//! `times` windows of the day, and `allowed_connection_types`, as user JWTs
//! carry them. The peer address and the wall clock are inputs.

use core::net::IpAddr;

use serde_json::Value;

use super::jwt::UserLimitClaims;

/// The connection type of a plain NATS client.
pub const STANDARD: &str = "STANDARD";
/// The connection type of a NATS client over WebSocket.
pub const WEBSOCKET: &str = "WEBSOCKET";
/// The connection type of an MQTT client.
pub const MQTT: &str = "MQTT";

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
    /// The wall clock is outside every `times` window (nats-server logs
    /// "Outside connect times").
    #[error("outside connect times")]
    Time,
    /// A `times` entry is not a window of `HH:MM:SS` times.
    #[error("invalid time window: {0}")]
    BadTime(String),
    /// `times_location` names no zone of the IANA database.
    #[error("could not parse iana time zone by name: unknown time zone {0}")]
    UnknownZone(String),
    /// The connection type is not in `allowed_connection_types`.
    #[error("connection type {0} not allowed")]
    ConnectionType(String),
}

/// Checks a user's `src`, `times` (with `times_location`) and
/// `allowed_connection_types` against the peer, the wall clock (Unix
/// seconds) and the connection type. On success, returns when the `times`
/// window that admits the user ends (Unix seconds), if it has windows:
/// nats-server closes the connection then, as when the JWT expires.
pub fn check(
    limits: &UserLimitClaims,
    peer: IpAddr,
    now_unix_secs: i64,
    connection_type: &str,
) -> Result<Option<i64>, RestrictionError> {
    // nats-server validates the zone and the windows' syntax with the rest
    // of the JWT, before it looks at the peer's address.
    let times = check_times(limits.times.as_ref(), &limits.times_location, now_unix_secs);
    if let Err(e @ (RestrictionError::UnknownZone(_) | RestrictionError::BadTime(_))) = times {
        return Err(e);
    }
    check_source(limits.src.as_ref(), peer)?;
    let window_end = times?;
    check_connection_type(
        limits
            .allowed_connection_types
            .as_deref()
            .unwrap_or_default(),
        connection_type,
    )?;
    Ok(window_end)
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

/// Where `times` windows are read: UTC, or a zone of the embedded IANA
/// database.
enum Zone {
    Utc,
    Named(jiff::tz::TimeZone),
}

/// Seconds in a day; windows are wall-clock times of a day.
const DAY_SECS: i64 = 86_400;

/// `times_location` as nats-server loads it (Go's `time.LoadLocation`, after
/// the JWT library's validation). Go looks names up in the system's
/// zoneinfo files, so it is case-sensitive: `utc` or `america/new_york` are
/// unknown. An empty location and `Local` are the server's local zone to
/// nats-server; the core has no local zone and reads them as UTC.
fn load_zone(location: &str) -> Result<Zone, RestrictionError> {
    if matches!(location, "" | "UTC" | "Local") {
        return Ok(Zone::Utc);
    }
    let unknown = || RestrictionError::UnknownZone(location.to_owned());
    let zone = jiff::tz::TimeZone::get(location).map_err(|_| unknown())?;
    // The embedded database matches names case-insensitively; Go does not.
    if zone.iana_name() != Some(location) {
        return Err(unknown());
    }
    Ok(Zone::Named(zone))
}

impl Zone {
    /// Seconds east of UTC at the instant `unix_secs`.
    fn offset_at(&self, unix_secs: i64) -> i64 {
        let Zone::Named(tz) = self else { return 0 };
        // Timestamps outside jiff's range (±9999 years) are not wall clocks.
        jiff::Timestamp::from_second(unix_secs)
            .map_or(0, |ts| i64::from(tz.to_offset(ts).seconds()))
    }

    /// The instant of `second_of_day` on the local day `day` (days since
    /// 1970-01-01 in local wall-clock time), resolved as Go's `time.Date`
    /// does: read the wall time as UTC, take the zone's offset there, and
    /// if the instant that gives is under another offset, use that one.
    /// West of UTC a time skipped by a DST jump lands an hour early and a
    /// repeated time is its first occurrence (02:30 in New York in March is
    /// 01:30 EST); east of UTC a skipped time lands an hour late and a
    /// repeated one is the second (02:30 in Berlin in March is 03:30 CEST).
    ///
    /// Saturates at the ends of the i64 range, where no real clock is.
    fn instant(&self, day: i64, second_of_day: i64) -> i64 {
        let wall = day.saturating_mul(DAY_SECS).saturating_add(second_of_day);
        let mut offset = self.offset_at(wall);
        let guess = wall.saturating_sub(offset);
        if self.offset_at(guess) != offset {
            offset = self.offset_at(guess);
        }
        wall.saturating_sub(offset)
    }

    /// The local day and second of day at instant `unix_secs`.
    fn wall_clock(&self, unix_secs: i64) -> (i64, i64) {
        let wall = unix_secs.saturating_add(self.offset_at(unix_secs));
        (wall.div_euclid(DAY_SECS), wall.rem_euclid(DAY_SECS))
    }
}

/// `times: [{start: "HH:MM:SS", end: "HH:MM:SS"}]` read in `times_location`.
/// Returns when the window admitting `now` ends (the latest end when several
/// do): nats-server expires the connection then. `Ok(None)` when there are
/// no windows.
fn check_times(
    times: Option<&Value>,
    location: &str,
    now: i64,
) -> Result<Option<i64>, RestrictionError> {
    // The JWT library validates the location whether or not there are windows.
    let zone = load_zone(location)?;
    let windows = match times {
        Some(Value::Array(windows)) if !windows.is_empty() => windows,
        _ => return Ok(None),
    };
    let windows = windows
        .iter()
        .map(parse_window)
        .collect::<Result<Vec<_>, _>>()?;
    windows
        .iter()
        .filter_map(|&(start, end)| window_end(&zone, start, end, now))
        .max()
        .map(Some)
        .ok_or(RestrictionError::Time)
}

/// When the window `start..end` (seconds of the local day) holding `now`
/// ends, or `None` if it does not hold `now`. Windows are built on the
/// local day of `now` and half-open: nats-server compares its nanosecond
/// clock strictly against both ends, so with whole seconds the start
/// second is inside and the end second outside. A window whose start is
/// after its end crosses midnight; one whose start equals its end is empty.
fn window_end(zone: &Zone, start: i64, end: i64, now: i64) -> Option<i64> {
    let (today, _) = zone.wall_clock(now);
    let (start, end) = (zone.instant(today, start), zone.instant(today, end));
    if start <= now && now < end {
        return Some(end);
    }
    if start <= end {
        return None;
    }
    if now < end {
        // After midnight, before the end of a window that began yesterday.
        return Some(end);
    }
    // Before midnight: the window ends tomorrow at the same wall time.
    let (end_day, end_second) = zone.wall_clock(end);
    let end = zone.instant(end_day.saturating_add(1), end_second);
    (start <= now && now < end).then_some(end)
}

/// One `{start, end}` window as seconds of the day, validated as the JWT
/// library validates it.
fn parse_window(w: &Value) -> Result<(i64, i64), RestrictionError> {
    let field = |k: &str| {
        let text = w.get(k).and_then(Value::as_str).unwrap_or_default();
        if text.is_empty() {
            return Err(RestrictionError::BadTime(format!(
                "time ranges {k} must contain a{} {k}",
                if k == "end" { "n" } else { "" }
            )));
        }
        parse_hms(text).ok_or_else(|| {
            RestrictionError::BadTime(format!("{k} in time range is invalid {text:?}"))
        })
    };
    Ok((field("start")?, field("end")?))
}

/// Go's `time.Parse("15:04:05", s)`: a one- or two-digit hour, two-digit
/// minutes and seconds, optionally a fraction of a second (dropped, as
/// nats-server keeps only whole seconds), nothing else.
fn parse_hms(s: &str) -> Option<i64> {
    let (h, rest) = s.split_once(':')?;
    let (m, rest) = rest.split_once(':')?;
    let (sec, fraction) = match rest.find(['.', ',']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let digits = |t: &str, lens: &[usize]| {
        (lens.contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<i64>().ok())
            .flatten()
    };
    let (h, m, sec) = (digits(h, &[1, 2])?, digits(m, &[2])?, digits(sec, &[2])?);
    if fraction.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    (h < 24 && m < 60 && sec < 60).then_some(h * 3600 + m * 60 + sec)
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

    /// The `times` check alone for one window in `zone` at `now`.
    fn window(
        zone: &str,
        start: &str,
        end: &str,
        now: i64,
    ) -> Result<Option<i64>, RestrictionError> {
        let l = in_zone(json!({"times": [{"start": start, "end": end}]}), zone);
        check(&l, "1.2.3.4".parse().unwrap(), now, STANDARD)
    }

    #[test]
    fn time_windows_in_utc() {
        let windows = json!({"times": [{"start": "08:00:00", "end": "17:00:00"}, {"start": "22:00:00", "end": "02:00:00"}]});
        let l = in_zone(windows.clone(), "UTC");
        // 1_700_006_400 is a UTC midnight.
        let midnight = 1_700_006_400;
        let at = |h: i64| {
            check(
                &l,
                "1.2.3.4".parse().unwrap(),
                midnight + h * 3600,
                STANDARD,
            )
        };
        assert_eq!(at(9), Ok(Some(midnight + 17 * 3600)));
        assert_eq!(at(18), Err(RestrictionError::Time));
        assert_eq!(at(23), Ok(Some(midnight + 26 * 3600)), "ends tomorrow");
        assert_eq!(at(1), Ok(Some(midnight + 2 * 3600)));
        // No location and `Local` are the server's zone; natrix reads UTC.
        for zone in ["", "Local"] {
            assert_eq!(
                check(
                    &in_zone(windows.clone(), zone),
                    "1.2.3.4".parse().unwrap(),
                    midnight + 9 * 3600,
                    STANDARD
                ),
                Ok(Some(midnight + 17 * 3600))
            );
        }
        // Half-open: the start second is inside, the end second outside.
        assert_eq!(
            window("UTC", "08:00:00", "17:00:00", midnight + 8 * 3600),
            Ok(Some(midnight + 17 * 3600))
        );
        assert_eq!(
            window("UTC", "08:00:00", "17:00:00", midnight + 17 * 3600),
            Err(RestrictionError::Time)
        );
        assert_eq!(
            window("UTC", "05:00:00", "05:00:00", midnight + 5 * 3600),
            Err(RestrictionError::Time),
            "an empty window"
        );
        let no_times = limits(json!({}));
        assert_eq!(
            check(&no_times, "1.2.3.4".parse().unwrap(), 0, STANDARD),
            Ok(None)
        );
    }

    #[test]
    fn zones_west_and_east_of_utc() {
        // 2024-07-01 12:00:00 UTC: 08:00 EDT in New York, 21:00 JST in Tokyo.
        let noon = 1_719_835_200;
        assert_eq!(
            window("America/New_York", "07:00:00", "09:00:00", noon),
            Ok(Some(noon + 3600))
        );
        assert_eq!(
            window("UTC", "07:00:00", "09:00:00", noon),
            Err(RestrictionError::Time)
        );
        assert_eq!(
            window("Asia/Tokyo", "20:00:00", "22:00:00", noon),
            Ok(Some(noon + 3600))
        );
        assert_eq!(
            window("Asia/Tokyo", "07:00:00", "09:00:00", noon),
            Err(RestrictionError::Time)
        );
        // Half-hour and quarter-hour offsets: 17:30 IST, 17:45 NPT.
        assert_eq!(
            window("Asia/Kolkata", "17:00:00", "18:00:00", noon),
            Ok(Some(noon + 1800))
        );
        assert_eq!(
            window("Asia/Kathmandu", "17:44:00", "17:46:00", noon),
            Ok(Some(noon + 60))
        );
        // 20:00 UTC is already 05:00 on July 2nd in Tokyo: the window is built on the local day.
        let evening = noon + 8 * 3600;
        assert_eq!(
            window("Asia/Tokyo", "04:00:00", "06:00:00", evening),
            Ok(Some(evening + 3600))
        );
        // Names of links and POSIX-style zones load as Go loads them.
        assert_eq!(
            window("US/Eastern", "07:00:00", "09:00:00", noon),
            Ok(Some(noon + 3600))
        );
        assert_eq!(
            window("EST5EDT", "07:00:00", "09:00:00", noon),
            Ok(Some(noon + 3600))
        );
    }

    #[test]
    fn windows_crossing_midnight_in_a_zone() {
        // 2024-07-02 03:30 UTC is 23:30 EDT on July 1st in New York.
        let late = 1_719_891_000;
        let ny = |start, end, now| window("America/New_York", start, end, now);
        assert_eq!(
            ny("22:00:00", "02:00:00", late),
            Ok(Some(late + 2 * 3600 + 1800)),
            "ends 02:00 EDT tomorrow"
        );
        assert_eq!(
            ny("22:00:00", "02:00:00", late + 2 * 3600),
            Ok(Some(late + 2 * 3600 + 1800)),
            "01:30 EDT"
        );
        assert_eq!(
            ny("22:00:00", "02:00:00", late + 3 * 3600),
            Err(RestrictionError::Time),
            "02:30 EDT"
        );
        assert_eq!(
            ny("23:45:00", "02:00:00", late),
            Err(RestrictionError::Time),
            "before the start"
        );
        // The same instant is 12:30 in Tokyo: a window across Tokyo's midnight misses it.
        assert_eq!(
            window("Asia/Tokyo", "22:00:00", "02:00:00", late),
            Err(RestrictionError::Time)
        );
    }

    #[test]
    fn daylight_saving_transitions() {
        // New York springs forward at 2024-03-10 07:00 UTC: 02:00 EST becomes 03:00 EDT.
        let jump = 1_710_054_000;
        let ny = |start, end, now| window("America/New_York", start, end, now);
        // 01:00-03:00 local is one real hour that day; 03:00 EDT is the jump itself.
        assert_eq!(ny("01:00:00", "03:00:00", jump - 1800), Ok(Some(jump)));
        assert_eq!(
            ny("01:00:00", "03:00:00", jump),
            Err(RestrictionError::Time)
        );
        // 02:30 does not exist; as in Go it resolves to 01:30 EST, before the jump.
        assert_eq!(
            ny("02:30:00", "04:00:00", jump - 15 * 60),
            Ok(Some(jump + 3600))
        );
        assert_eq!(
            ny("02:30:00", "04:00:00", jump - 45 * 60),
            Err(RestrictionError::Time)
        );
        // Berlin jumps at 2024-03-31 01:00 UTC (02:00 CET to 03:00 CEST); 02:30 resolves to 03:30 CEST.
        let berlin_jump = 1_711_846_800;
        let berlin = |start, end, now| window("Europe/Berlin", start, end, now);
        assert_eq!(
            berlin("02:30:00", "04:00:00", berlin_jump + 15 * 60),
            Err(RestrictionError::Time)
        );
        assert_eq!(
            berlin("02:30:00", "04:00:00", berlin_jump + 45 * 60),
            Ok(Some(berlin_jump + 3600))
        );
        // New York falls back at 2024-11-03 06:00 UTC (02:00 EDT to 01:00 EST):
        // 01:00-01:59:59 is its first occurrence, in EDT.
        let fall = 1_730_613_600;
        assert_eq!(ny("01:00:00", "01:59:59", fall - 1800), Ok(Some(fall - 1)));
        assert_eq!(
            ny("01:00:00", "01:59:59", fall + 1800),
            Err(RestrictionError::Time),
            "01:30 EST"
        );
        // A window across midnight on the night the clocks go back lasts an hour longer.
        let evening = fall - 4 * 3600; // 22:00 EDT on Nov 2nd
        assert_eq!(
            ny("21:00:00", "03:00:00", evening),
            Ok(Some(fall + 2 * 3600)),
            "03:00 EST"
        );
    }

    #[test]
    fn unknown_zones_refuse_the_user() {
        let noon = 1_719_835_200;
        let unknown = |zone: &str| Err(RestrictionError::UnknownZone(zone.to_owned()));
        assert_eq!(
            window("Nowhere/Land", "00:00:00", "23:59:59", noon),
            unknown("Nowhere/Land")
        );
        // Go reads zoneinfo files by name: case matters.
        assert_eq!(
            window("america/new_york", "00:00:00", "23:59:59", noon),
            unknown("america/new_york")
        );
        assert_eq!(window("utc", "00:00:00", "23:59:59", noon), unknown("utc"));
        assert_eq!(
            window("../../etc/passwd", "00:00:00", "23:59:59", noon),
            unknown("../../etc/passwd")
        );
        // The location is checked even without windows.
        let l = in_zone(json!({}), "Nowhere/Land");
        assert_eq!(
            check(&l, "1.2.3.4".parse().unwrap(), noon, STANDARD),
            unknown("Nowhere/Land")
        );
        assert_eq!(
            RestrictionError::UnknownZone("X/Y".into()).to_string(),
            "could not parse iana time zone by name: unknown time zone X/Y"
        );
    }

    #[test]
    fn window_syntax_is_go_time_syntax() {
        let noon = 1_719_835_200;
        assert_eq!(
            window("UTC", "9:00:00", "12:00:01", noon),
            Ok(Some(noon + 1)),
            "a one-digit hour"
        );
        assert_eq!(
            window("UTC", "11:59:59.250", "12:00:01,5", noon),
            Ok(Some(noon + 1)),
            "fractions are dropped"
        );
        for bad in [
            "09:00",
            "24:00:00",
            "12:60:00",
            "12:00:60",
            "12:0:00",
            "012:00:00",
            "12:00:00 ",
            "12:00:00.",
            "noon",
        ] {
            assert!(
                matches!(
                    window("UTC", bad, "23:00:00", noon),
                    Err(RestrictionError::BadTime(_))
                ),
                "{bad}"
            );
        }
        let missing = in_zone(json!({"times": [{"end": "23:00:00"}]}), "UTC");
        assert_eq!(
            check(&missing, "1.2.3.4".parse().unwrap(), noon, STANDARD),
            Err(RestrictionError::BadTime(
                "time ranges start must contain a start".into()
            ))
        );
        // A bad window refuses the user even when another admits them.
        let mixed = in_zone(
            json!({"times": [{"start": "00:00:00", "end": "23:59:59"}, {"start": "x", "end": "y"}]}),
            "UTC",
        );
        assert!(matches!(
            check(&mixed, "1.2.3.4".parse().unwrap(), noon, STANDARD),
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
