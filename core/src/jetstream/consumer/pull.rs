//! Waiting pull requests (`$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`):
//! what a request asks for, and the status messages nats-server answers
//! them with.

use bytes::Bytes;
use serde::Deserialize;

use crate::jetstream::headers;
use crate::time::UnixNanos;

/// The body of a `MSG.NEXT` request (nats-server's `JSApiConsumerGetNextRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct NextRequest {
    /// Expiry, a duration in nanoseconds.
    pub expires: i64,
    /// Most messages.
    pub batch: i64,
    /// Most bytes (0: no limit).
    pub max_bytes: i64,
    /// Answer `404 No Messages` instead of waiting when nothing is there.
    pub no_wait: bool,
    /// Idle heartbeat interval, ns.
    pub idle_heartbeat: i64,
    /// The priority group asked for (nats-server's `PriorityGroup`, inlined).
    pub group: String,
    /// `overflow`: serve only once this many messages are pending.
    pub min_pending: i64,
    /// `overflow`: serve only once this many acks are pending.
    pub min_ack_pending: i64,
    /// `pinned_client`: the pin id the client was given.
    pub id: String,
    /// `prioritized`: 0 (first) to 9.
    pub priority: i64,
    /// True when the body was JSON: only then does nats-server look at
    /// the priority fields.
    #[serde(skip)]
    pub json: bool,
}

impl NextRequest {
    /// Parses a body: empty is one message; a bare number is a batch size;
    /// otherwise JSON. The error is the text of the `400 Bad Request` status.
    pub fn parse(body: &[u8]) -> Result<NextRequest, String> {
        let trimmed = body.trim_ascii();
        if trimmed.is_empty() {
            return Ok(NextRequest { batch: 1, ..Default::default() });
        }
        if trimmed[0] != b'{' {
            let n: i64 = std::str::from_utf8(trimmed).ok().and_then(|t| t.parse().ok()).unwrap_or(1);
            return Ok(NextRequest { batch: n.max(1), ..Default::default() });
        }
        let mut value: serde_json::Value = serde_json::from_slice(trimmed)
            .map_err(|e| crate::jetstream::api::json::go_unmarshal_syntax_error(&e, trimmed).unwrap_or_else(|| e.to_string()))?;
        // Go leaves a field it reads `null` for at its zero value (clients
        // send `"min_pending":null`).
        if let serde_json::Value::Object(fields) = &mut value {
            fields.retain(|_, v| !v.is_null());
        }
        let mut req: NextRequest = serde_json::from_value(value).map_err(|e| e.to_string())?;
        if req.expires < 0 || req.idle_heartbeat < 0 {
            return Err("invalid request".to_owned());
        }
        // A heartbeat needs an expiry at least twice as long: a request
        // without one (expires 0) cannot have a heartbeat either.
        if req.idle_heartbeat > 0 && req.idle_heartbeat.saturating_mul(2) > req.expires {
            return Err("heartbeat value too large".to_owned());
        }
        req.batch = req.batch.max(1);
        req.json = true;
        Ok(req)
    }
}

/// A pull request waiting for messages.
#[derive(Clone, Debug)]
pub struct Waiting {
    /// Where its messages and statuses go.
    pub reply: Bytes,
    /// Messages still owed.
    pub batch_left: u64,
    /// Bytes still allowed (0: no limit was asked).
    pub bytes_left: u64,
    /// True when `max_bytes` was asked.
    pub bytes_limited: bool,
    /// When it expires, if it does.
    pub expires_at: Option<UnixNanos>,
    /// `no_wait`.
    pub no_wait: bool,
    /// Idle heartbeat interval, ns (0: none).
    pub heartbeat_ns: i64,
    /// When the next heartbeat is due.
    pub next_heartbeat: Option<UnixNanos>,
    /// Messages delivered to it so far.
    pub delivered: u64,
    /// Its priority group fields, when the request was JSON.
    pub group: Option<PriorityGroup>,
}

/// The priority group part of a waiting request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriorityGroup {
    /// The group's name.
    pub group: String,
    /// `overflow`: least pending messages.
    pub min_pending: u64,
    /// `overflow`: least pending acks.
    pub min_ack_pending: u64,
    /// `pinned_client`: the pin id it holds (empty: none).
    pub id: String,
    /// `prioritized`: lower goes first.
    pub priority: u8,
}

impl Waiting {
    /// Its priority for `prioritized` ordering (no group: last).
    pub fn priority(&self) -> u8 {
        self.group.as_ref().map_or(u8::MAX, |g| g.priority)
    }
}

impl Waiting {
    /// A waiting request for `req`, received at `wall`.
    pub fn new(reply: Bytes, req: &NextRequest, wall: UnixNanos) -> Waiting {
        let at = |ns: i64| (ns > 0).then(|| UnixNanos(wall.0.saturating_add(ns)));
        Waiting {
            reply,
            batch_left: u64::try_from(req.batch).unwrap_or(1),
            bytes_left: u64::try_from(req.max_bytes).unwrap_or(0),
            bytes_limited: req.max_bytes > 0,
            expires_at: at(req.expires),
            no_wait: req.no_wait,
            heartbeat_ns: req.idle_heartbeat,
            next_heartbeat: at(req.idle_heartbeat),
            delivered: 0,
            group: req.json.then(|| PriorityGroup {
                group: req.group.clone(),
                min_pending: u64::try_from(req.min_pending).unwrap_or(0),
                min_ack_pending: u64::try_from(req.min_ack_pending).unwrap_or(0),
                id: req.id.clone(),
                priority: u8::try_from(req.priority).unwrap_or(u8::MAX),
            }),
        }
    }

    /// The earliest of its expiry and its next heartbeat.
    pub fn deadline(&self) -> Option<UnixNanos> {
        match (self.expires_at, self.next_heartbeat) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A status with the request's pending messages and bytes
    /// (`408 Request Timeout`, `409 Message Size Exceeds MaxBytes`…).
    pub fn status_with_pending(&self, code: u16, text: &str) -> Bytes {
        let msgs = self.batch_left.to_string();
        let bytes = self.bytes_left.to_string();
        headers::block(
            Some((code, text)),
            &[(b"Nats-Pending-Messages", msgs.as_bytes()), (b"Nats-Pending-Bytes", bytes.as_bytes())],
        )
    }
}

/// A bare status block (`NATS/1.0 404 No Messages`).
pub fn status(code: u16, text: &str) -> Bytes {
    headers::block(Some((code, text)), &[])
}

/// `100 Idle Heartbeat` naming the last delivery.
pub fn heartbeat(last_consumer_seq: u64, last_stream_seq: u64) -> Bytes {
    let c = last_consumer_seq.to_string();
    let s = last_stream_seq.to_string();
    headers::block(
        Some((100, "Idle Heartbeat")),
        &[(b"Nats-Last-Consumer", c.as_bytes()), (b"Nats-Last-Stream", s.as_bytes())],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bodies_as_nats_server() {
        assert_eq!(NextRequest::parse(b"").unwrap().batch, 1);
        assert_eq!(NextRequest::parse(b"5").unwrap().batch, 5);
        let r = NextRequest::parse(br#"{"batch":3,"no_wait":true,"expires":1000}"#).unwrap();
        assert_eq!((r.batch, r.no_wait, r.expires), (3, true, 1000));
        assert!(NextRequest::parse(br#"{"batch":3,"expires":1000,"idle_heartbeat":900}"#).is_err());
        // No expiry leaves no room for a heartbeat (async-nats's pull_stream_error).
        assert_eq!(NextRequest::parse(br#"{"batch":3,"idle_heartbeat":900}"#).unwrap_err(), "heartbeat value too large");
        assert!(NextRequest::parse(br#"{"batch":3,"expires":1800,"idle_heartbeat":900}"#).is_ok());
        // async-nats writes the priority fields it does not use as null.
        let nulls = NextRequest::parse(br#"{"batch":2,"min_pending":null,"min_ack_pending":null,"group":"A","priority":null}"#).unwrap();
        assert_eq!((nulls.batch, nulls.min_pending, nulls.group.as_str(), nulls.json), (2, 0, "A", true));
        let w = Waiting::new(Bytes::from_static(b"r"), &r, UnixNanos(10));
        assert_eq!(
            &w.status_with_pending(408, "Request Timeout")[..],
            b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\nNats-Pending-Bytes: 0\r\n\r\n"
        );
        assert_eq!(
            &heartbeat(3, 4)[..],
            b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 3\r\nNats-Last-Stream: 4\r\n\r\n"
        );
    }
}
