//! Self-checking payloads: every message carries its publisher id, its
//! sequence number and a checksum over the whole payload, so a receiver can
//! tell a lost, duplicated, reordered or corrupted message on its own.
//!
//! Layout (little endian): `publisher u32 | seq u64 | checksum u32 | filler`.

use std::fmt;

/// Bytes taken by the header; payloads are at least this long.
pub const HEADER_BYTES: usize = 16;

/// What is wrong with a received payload.
#[derive(Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// The payload does not have the size every publisher used.
    Size { got: usize, want: usize },
    /// The checksum does not match the bytes.
    Corrupt { publisher: u32, seq: u64 },
    /// The publisher id is not one of the publishers of this run.
    UnknownPublisher(u32),
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::Size { got, want } => {
                write!(f, "payload of {got} bytes, expected {want}")
            }
            PayloadError::Corrupt { publisher, seq } => {
                write!(
                    f,
                    "corrupted payload (publisher {publisher} seq {seq}): checksum mismatch"
                )
            }
            PayloadError::UnknownPublisher(p) => write!(f, "payload names unknown publisher {p}"),
        }
    }
}

/// Builds the payloads of one publisher, reusing one buffer.
pub struct PayloadWriter {
    buf: Vec<u8>,
    filler_hash: u64,
    publisher: u32,
}

impl PayloadWriter {
    /// A writer for `publisher` producing payloads of `size` bytes
    /// (`size >= HEADER_BYTES`).
    pub fn new(publisher: u32, size: usize) -> PayloadWriter {
        assert!(size >= HEADER_BYTES, "payload size below {HEADER_BYTES}");
        let mut buf = vec![0u8; size];
        for (i, b) in buf[HEADER_BYTES..].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(publisher as u8);
        }
        let filler_hash = hash_bytes(&buf[HEADER_BYTES..]);
        PayloadWriter {
            buf,
            filler_hash,
            publisher,
        }
    }

    /// The payload for sequence `seq`; the filler is fixed, so only the
    /// header is rewritten and the checksum costs O(1).
    pub fn payload(&mut self, seq: u64) -> &[u8] {
        let sum = checksum(self.publisher, seq, self.filler_hash);
        self.buf[0..4].copy_from_slice(&self.publisher.to_le_bytes());
        self.buf[4..12].copy_from_slice(&seq.to_le_bytes());
        self.buf[12..16].copy_from_slice(&sum.to_le_bytes());
        &self.buf
    }
}

/// Verifies a payload and returns `(publisher, seq)`.
pub fn check(payload: &[u8], size: usize, publishers: u32) -> Result<(u32, u64), PayloadError> {
    if payload.len() != size {
        return Err(PayloadError::Size {
            got: payload.len(),
            want: size,
        });
    }
    let publisher = u32::from_le_bytes(payload[0..4].try_into().expect("4 bytes"));
    let seq = u64::from_le_bytes(payload[4..12].try_into().expect("8 bytes"));
    let sum = u32::from_le_bytes(payload[12..16].try_into().expect("4 bytes"));
    if sum != checksum(publisher, seq, hash_bytes(&payload[HEADER_BYTES..])) {
        return Err(PayloadError::Corrupt { publisher, seq });
    }
    if publisher >= publishers {
        return Err(PayloadError::UnknownPublisher(publisher));
    }
    Ok((publisher, seq))
}

fn checksum(publisher: u32, seq: u64, filler_hash: u64) -> u32 {
    let mut h = filler_hash ^ (u64::from(publisher)).rotate_left(40);
    h = (h ^ seq).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^= h >> 29;
    (h >> 32) as u32 ^ h as u32
}

/// FNV-style hash over 8-byte words: fast enough to check every byte of
/// every message at line rate, strong enough to catch flipped or shifted bytes.
fn hash_bytes(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01B3;
    let mut h: u64 = 0xCBF2_9CE4_8422_2325 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().expect("8 bytes"))).wrapping_mul(PRIME);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        for size in [16, 17, 1024, 65536] {
            let mut w = PayloadWriter::new(3, size);
            let p = w.payload(42).to_vec();
            assert_eq!(check(&p, size, 4), Ok((3, 42)));
            assert_eq!(check(&p, size, 3), Err(PayloadError::UnknownPublisher(3)));
            for i in [0, 5, 13, size - 1] {
                let mut bad = p.clone();
                bad[i] ^= 0x10;
                assert!(
                    check(&bad, size, 4).is_err(),
                    "flip at {i} of {size} undetected"
                );
            }
            assert!(check(&p[1..], size, 4).is_err());
        }
    }
}
