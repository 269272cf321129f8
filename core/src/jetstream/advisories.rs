//! Advisories: what JetStream tells an account's listeners on
//! `$JS.EVENT.ADVISORY.…` about changes to its streams, in nats-server's
//! JSON.

use bytes::Bytes;
use serde::Serialize;

use super::api::kinds::STREAM_ACTION_ADVISORY as STREAM_ACTION;
use super::{JetStream, Reply};
use crate::time::UnixNanos;


/// What happened to a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamAction {
    /// Created.
    Create,
    /// Its configuration changed.
    Modify,
    /// Deleted.
    Delete,
}

impl StreamAction {
    /// The advisory's subject token and its `action`.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            StreamAction::Create => ("CREATED", "create"),
            StreamAction::Modify => ("UPDATED", "modify"),
            StreamAction::Delete => ("DELETED", "delete"),
        }
    }
}

#[derive(Serialize)]
struct StreamActionAdvisory<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: String,
    #[serde(with = "super::api::json::go_time")]
    timestamp: UnixNanos,
    stream: &'a str,
    action: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    domain: &'a str,
}

/// The characters of an advisory id (nats-server's NUIDs use the same).
const ID_DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// An advisory id's length.
const ID_LEN: usize = 22;

/// SplitMix64: spreads a counter into well-mixed bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl JetStream {
    /// Seeds the ids advisories carry (from the server's random source, so
    /// that a replay gives the same ids).
    pub fn set_id_seed(&mut self, seed: u64) {
        self.id_seed = seed;
    }

    /// A fresh 22-character id.
    pub(super) fn next_id(&mut self) -> String {
        self.ids_made += 1;
        let (mut a, mut b) = (mix(self.id_seed ^ self.ids_made), mix(self.id_seed.rotate_left(32) ^ self.ids_made));
        (0..ID_LEN)
            .map(|i| {
                let word = if i < 11 { &mut a } else { &mut b };
                let digit = ID_DIGITS[(*word % 62) as usize];
                *word /= 62;
                char::from(digit)
            })
            .collect()
    }

    /// Announces `action` on `stream` of `account`, ordered with the
    /// replies of the request that caused it.
    pub(super) fn advise_stream(&mut self, account: &str, stream: &str, action: StreamAction, wall: UnixNanos) {
        let (token, name) = action.names();
        let body = StreamActionAdvisory {
            kind: STREAM_ACTION,
            id: self.next_id(),
            timestamp: wall,
            stream,
            action: name,
            domain: self.limits.domain.as_deref().unwrap_or_default(),
        };
        let payload = serde_json::to_vec(&body).expect("an advisory serialises");
        self.advisories.push(Reply {
            account: account.to_owned(),
            subject: Bytes::from(format!("$JS.EVENT.ADVISORY.STREAM.{token}.{stream}")),
            headers: None,
            payload: payload.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jetstream::config::CheckLimits;

    #[test]
    fn ids_are_distinct_and_look_like_nuids() {
        let mut js = JetStream::new(CheckLimits::default(), None);
        js.set_id_seed(7);
        let ids: std::collections::BTreeSet<String> = (0..1000).map(|_| js.next_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == ID_LEN && id.bytes().all(|c| c.is_ascii_alphanumeric())));
    }

    #[test]
    fn a_stream_action_reads_like_nats_server_s() {
        let mut js = JetStream::new(CheckLimits::default(), None);
        js.advise_stream("A", "S", StreamAction::Modify, UnixNanos(0));
        let advisory = js.advisories.pop().expect("one advisory");
        assert_eq!(&advisory.subject[..], b"$JS.EVENT.ADVISORY.STREAM.UPDATED.S");
        let json: serde_json::Value = serde_json::from_slice(&advisory.payload).unwrap();
        assert_eq!(json["type"], STREAM_ACTION);
        assert_eq!(json["timestamp"], "1970-01-01T00:00:00Z");
        assert_eq!((json["stream"].as_str(), json["action"].as_str()), (Some("S"), Some("modify")));
        assert!(json.get("domain").is_none());
    }
}
