//! A consumer's delivery and acknowledgement state: what it delivered, its
//! ack floor, what is unacknowledged and how often each was redelivered,
//! and the bytes it is saved as (a checksummed JSON record, so a torn or
//! damaged save is told apart from a good one).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::jetstream::api::json::go_time_opt;
use crate::time::UnixNanos;

/// A consumer and stream sequence pair (nats-server's `SequenceInfo`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqPair {
    /// Consumer sequence.
    pub consumer_seq: u64,
    /// Stream sequence.
    pub stream_seq: u64,
    /// When it last moved.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "go_time_opt")]
    pub last_active: Option<UnixNanos>,
}

/// An unacknowledged delivery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Its consumer sequence.
    pub consumer_seq: u64,
    /// When it was delivered, ns since the epoch.
    pub timestamp: i64,
}

/// What a consumer saves (nats-server's `ConsumerState`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerState {
    /// The last delivery.
    pub delivered: SeqPair,
    /// Everything at or below is acknowledged.
    pub ack_floor: SeqPair,
    /// Unacknowledged deliveries by stream sequence.
    pub pending: BTreeMap<u64, Pending>,
    /// Deliveries of redelivered messages by stream sequence (2 or more).
    pub redelivered: BTreeMap<u64, u64>,
}

/// FNV-1a over `bytes`: enough to tell a torn or flipped record from a good one.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A saved record: 8 bytes of length, 8 of checksum, then the body.
pub fn encode(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&checksum(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The body of a saved record, if it is whole and intact.
pub fn decode(record: &[u8]) -> Option<&[u8]> {
    let len = u64::from_le_bytes(record.get(..8)?.try_into().ok()?);
    let sum = u64::from_le_bytes(record.get(8..16)?.try_into().ok()?);
    let body = record.get(16..16usize.checked_add(usize::try_from(len).ok()?)?)?;
    (checksum(body) == sum).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_catch_damage() {
        let r = encode(b"hello");
        assert_eq!(decode(&r), Some(&b"hello"[..]));
        assert_eq!(decode(&r[..r.len() - 1]), None);
        let mut bad = r.clone();
        bad[17] ^= 1;
        assert_eq!(decode(&bad), None);
    }
}
