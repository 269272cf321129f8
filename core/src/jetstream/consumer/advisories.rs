//! Consumer advisories on `$JS.EVENT.ADVISORY.CONSUMER.…`: created and
//! deleted, and the delivery events a consumer reports (nak, terminated,
//! max deliveries), in nats-server's JSON.

use bytes::Bytes;
use serde::Serialize;

use super::Event;
use crate::jetstream::{JetStream, Reply};
use crate::time::UnixNanos;

/// `type` of the created and deleted advisories.
const ACTION: &str = "io.nats.jetstream.advisory.v1.consumer_action";
/// `type` of the nak advisory.
const NAK: &str = "io.nats.jetstream.advisory.v1.nak";
/// `type` of the terminated advisory.
const TERMINATED: &str = "io.nats.jetstream.advisory.v1.terminated";
/// `type` of the pause advisory.
const PAUSE: &str = "io.nats.jetstream.advisory.v1.consumer_pause";
/// `type` of the pinned advisory.
const PINNED: &str = "io.nats.jetstream.advisory.v1.consumer_group_pinned";
/// `type` of the unpinned advisory.
const UNPINNED: &str = "io.nats.jetstream.advisory.v1.consumer_group_unpinned";
/// `type` of the max deliveries advisory.
const MAX_DELIVER: &str = "io.nats.jetstream.advisory.v1.max_deliver";

/// What happened to a consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// Created.
    Create,
    /// Deleted (by request, for inactivity, or with its stream).
    Delete,
}

/// The fields every consumer advisory starts with, in nats-server's order.
#[derive(Serialize)]
struct Head<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    #[serde(with = "crate::jetstream::api::json::go_time")]
    timestamp: UnixNanos,
    stream: &'a str,
    consumer: &'a str,
}

#[derive(Serialize)]
struct Action<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    action: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    domain: &'a str,
}

#[derive(Serialize)]
struct Delivery<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consumer_seq: Option<u64>,
    stream_seq: u64,
    deliveries: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    domain: &'a str,
}

#[derive(Serialize)]
struct Pause<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    paused: bool,
    #[serde(with = "crate::jetstream::api::json::go_time_opt")]
    pause_until: Option<UnixNanos>,
    #[serde(skip_serializing_if = "str::is_empty")]
    domain: &'a str,
}

/// A priority group's pin advisories (they name the account, unlike the others).
#[derive(Serialize)]
struct Pinning<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    #[serde(with = "crate::jetstream::api::json::go_time")]
    timestamp: UnixNanos,
    #[serde(skip_serializing_if = "str::is_empty")]
    account: &'a str,
    stream: &'a str,
    consumer: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    domain: &'a str,
    group: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pinned_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl JetStream {
    /// Announces that `consumer` of `stream` was created or deleted,
    /// ordered with the replies of the request that caused it.
    pub(crate) fn advise_consumer(&mut self, account: &str, stream: &str, consumer: &str, action: Lifecycle, wall: UnixNanos) {
        let (token, name) = match action {
            Lifecycle::Create => ("CREATED", "create"),
            Lifecycle::Delete => ("DELETED", "delete"),
        };
        let head = Head { kind: ACTION, id: self.next_id(), timestamp: wall, stream, consumer };
        let domain = self.limits.domain.clone().unwrap_or_default();
        let body = serde_json::to_vec(&Action { head, action: name, domain: &domain }).expect("an advisory serialises");
        self.queue_advisory(account, format!("$JS.EVENT.ADVISORY.CONSUMER.{token}.{stream}.{consumer}"), body);
    }

    /// Announces a consumer's delivery event.
    pub(crate) fn advise_consumer_event(&mut self, account: &str, stream: &str, consumer: &str, at: UnixNanos, event: &Event) {
        if let Event::Pause { paused, until } = event {
            let head = Head { kind: PAUSE, id: self.next_id(), timestamp: at, stream, consumer };
            let domain = self.limits.domain.clone().unwrap_or_default();
            let body = Pause { head, paused: *paused, pause_until: *until, domain: &domain };
            let body = serde_json::to_vec(&body).expect("an advisory serialises");
            self.queue_advisory(account, format!("$JS.EVENT.ADVISORY.CONSUMER.PAUSE.{stream}.{consumer}"), body);
            return;
        }
        if let Event::Pinned { group, .. } | Event::Unpinned { group, .. } = event {
            let (token, kind, pinned_id, reason) = match event {
                Event::Pinned { id, .. } => ("PINNED", PINNED, Some(id.as_str()), None),
                Event::Unpinned { reason, .. } => ("UNPINNED", UNPINNED, None, Some(*reason)),
                _ => return,
            };
            let domain = self.limits.domain.clone().unwrap_or_default();
            let body = Pinning { kind, id: self.next_id(), timestamp: at, account, stream, consumer, domain: &domain, group, pinned_id, reason };
            let body = serde_json::to_vec(&body).expect("an advisory serialises");
            self.queue_advisory(account, format!("$JS.EVENT.ADVISORY.CONSUMER.{token}.{stream}.{consumer}"), body);
            return;
        }
        let (token, kind, consumer_seq, stream_seq, deliveries, reason) = match event {
            Event::Nak { consumer_seq, stream_seq, deliveries } => ("MSG_NAKED", NAK, Some(*consumer_seq), *stream_seq, *deliveries, ""),
            Event::Terminated { consumer_seq, stream_seq, deliveries, reason } => {
                ("MSG_TERMINATED", TERMINATED, Some(*consumer_seq), *stream_seq, *deliveries, reason.as_str())
            }
            Event::MaxDeliveries { stream_seq, deliveries } => ("MAX_DELIVERIES", MAX_DELIVER, None, *stream_seq, *deliveries, ""),
            Event::Pause { .. } | Event::Pinned { .. } | Event::Unpinned { .. } => return,
        };
        let head = Head { kind, id: self.next_id(), timestamp: at, stream, consumer };
        let domain = self.limits.domain.clone().unwrap_or_default();
        let body = Delivery { head, consumer_seq, stream_seq, deliveries, reason, domain: &domain };
        let body = serde_json::to_vec(&body).expect("an advisory serialises");
        self.queue_advisory(account, format!("$JS.EVENT.ADVISORY.CONSUMER.{token}.{stream}.{consumer}"), body);
    }

    fn queue_advisory(&mut self, account: &str, subject: String, body: Vec<u8>) {
        let r = Reply { account: account.to_owned(), subject: Bytes::from(subject), headers: None, payload: body.into() };
        self.queue_after_writes(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jetstream::config::CheckLimits;

    fn normalised(js: &mut JetStream) -> Vec<(String, String)> {
        js.flush();
        std::iter::from_fn(|| js.poll_reply())
            .map(|r| {
                let mut v: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
                v["id"] = "ID".into();
                v["timestamp"] = "TS".into();
                (String::from_utf8(r.subject.to_vec()).unwrap(), v.to_string())
            })
            .collect()
    }

    #[test]
    fn consumer_advisories_read_like_nats_server_s() {
        // Bodies as nats-server 2.15.1 sent them, ids and times normalised
        // (serde_json sorts keys in `to_string`, so compare as values).
        let mut js = JetStream::new(CheckLimits::default(), None);
        js.advise_consumer("A", "AD", "C", Lifecycle::Create, UnixNanos(0));
        js.advise_consumer_event("A", "AD", "C", UnixNanos(0), &Event::Nak { consumer_seq: 1, stream_seq: 1, deliveries: 1 });
        let term = Event::Terminated { consumer_seq: 2, stream_seq: 2, deliveries: 1, reason: "bad one".to_owned() };
        js.advise_consumer_event("A", "AD", "C", UnixNanos(0), &term);
        js.advise_consumer_event("A", "AD", "C", UnixNanos(0), &Event::MaxDeliveries { stream_seq: 1, deliveries: 2 });
        js.advise_consumer("A", "AD", "C", Lifecycle::Delete, UnixNanos(0));
        let expected = [
            ("$JS.EVENT.ADVISORY.CONSUMER.CREATED.AD.C", r#"{"type":"io.nats.jetstream.advisory.v1.consumer_action","id":"ID","timestamp":"TS","stream":"AD","consumer":"C","action":"create"}"#),
            ("$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.AD.C", r#"{"type":"io.nats.jetstream.advisory.v1.nak","id":"ID","timestamp":"TS","stream":"AD","consumer":"C","consumer_seq":1,"stream_seq":1,"deliveries":1}"#),
            ("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.AD.C", r#"{"type":"io.nats.jetstream.advisory.v1.terminated","id":"ID","timestamp":"TS","stream":"AD","consumer":"C","consumer_seq":2,"stream_seq":2,"deliveries":1,"reason":"bad one"}"#),
            ("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.AD.C", r#"{"type":"io.nats.jetstream.advisory.v1.max_deliver","id":"ID","timestamp":"TS","stream":"AD","consumer":"C","stream_seq":1,"deliveries":2}"#),
            ("$JS.EVENT.ADVISORY.CONSUMER.DELETED.AD.C", r#"{"type":"io.nats.jetstream.advisory.v1.consumer_action","id":"ID","timestamp":"TS","stream":"AD","consumer":"C","action":"delete"}"#),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(s, b)| (s.to_string(), serde_json::from_str::<serde_json::Value>(b).unwrap().to_string()))
            .collect();
        assert_eq!(normalised(&mut js), expected);
    }

    #[test]
    fn a_pause_reads_like_nats_server_s() {
        let mut js = JetStream::new(CheckLimits::default(), None);
        js.advise_consumer_event("A", "PS", "C", UnixNanos(0), &Event::Pause { paused: false, until: None });
        js.flush();
        let r = js.poll_reply().unwrap();
        assert_eq!(&r.subject[..], b"$JS.EVENT.ADVISORY.CONSUMER.PAUSE.PS.C");
        let text = String::from_utf8(r.payload.to_vec()).unwrap();
        assert!(text.starts_with(r#"{"type":"io.nats.jetstream.advisory.v1.consumer_pause","id":""#), "{text}");
        let tail = text.split_once(r#""timestamp":"1970-01-01T00:00:00Z","#).unwrap().1;
        assert_eq!(tail, r#""stream":"PS","consumer":"C","paused":false,"pause_until":"0001-01-01T00:00:00Z"}"#);
    }

    #[test]
    fn pin_advisories_read_like_nats_server_s() {
        let mut js = JetStream::new(CheckLimits::default(), None);
        js.advise_consumer_event("$G", "U", "C", UnixNanos(0), &Event::Pinned { group: "A".into(), id: "PIN".into() });
        js.advise_consumer_event("$G", "U", "C", UnixNanos(0), &Event::Unpinned { group: "A".into(), reason: "admin" });
        js.flush();
        let tails: Vec<(String, String)> = std::iter::from_fn(|| js.poll_reply())
            .map(|r| {
                let text = String::from_utf8(r.payload.to_vec()).unwrap();
                let tail = text.split_once(r#""timestamp":"1970-01-01T00:00:00Z","#).unwrap().1.to_owned();
                (String::from_utf8(r.subject.to_vec()).unwrap(), tail)
            })
            .collect();
        // As nats-server 2.15.1 sent them, after the type, id and timestamp.
        assert_eq!(
            tails,
            vec![
                ("$JS.EVENT.ADVISORY.CONSUMER.PINNED.U.C".to_owned(), r#""account":"$G","stream":"U","consumer":"C","group":"A","pinned_id":"PIN"}"#.to_owned()),
                ("$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.U.C".to_owned(), r#""account":"$G","stream":"U","consumer":"C","group":"A","reason":"admin"}"#.to_owned()),
            ]
        );
    }

    #[test]
    fn key_order_is_nats_server_s() {
        let mut js = JetStream::new(CheckLimits::default(), None);
        let term = Event::Terminated { consumer_seq: 2, stream_seq: 3, deliveries: 4, reason: String::new() };
        js.advise_consumer_event("A", "S", "C", UnixNanos(0), &term);
        js.flush();
        let r = js.poll_reply().unwrap();
        let text = String::from_utf8(r.payload.to_vec()).unwrap();
        let tail = text.split_once(r#""timestamp":"1970-01-01T00:00:00Z","#).unwrap().1;
        assert_eq!(tail, r#""stream":"S","consumer":"C","consumer_seq":2,"stream_seq":3,"deliveries":4}"#);
    }
}
