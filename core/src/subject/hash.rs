//! A small, fast, seedable hasher for subject tokens.
//!
//! std's `HashMap` is randomly seeded, which the core must not depend on
//! (see DESIGN.md, "Deterministic iteration"). This hasher takes its seed
//! as an input instead: a fixed one in tests, one drawn from the node's
//! seeded RNG in the server, so a client cannot precompute colliding
//! subjects and yet a simulation replays bit for bit. Nothing that hashes
//! with it lets iteration order reach an output.

use std::hash::{BuildHasher, Hasher};

/// The multiplier of FxHash (as used by rustc), a good odd 64-bit constant.
const MULTIPLIER: u64 = 0xf135_7aea_2e62_a9c5;

/// Builds [`TokenHasher`]s that all start from one seed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeededState {
    seed: u64,
}

impl SeededState {
    /// A state whose hashes depend on `seed`.
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }
}

impl BuildHasher for SeededState {
    type Hasher = TokenHasher;

    fn build_hasher(&self) -> TokenHasher {
        TokenHasher { hash: self.seed }
    }
}

/// Multiply-rotate hashing, eight bytes at a time.
#[derive(Clone, Copy, Debug)]
pub struct TokenHasher {
    hash: u64,
}

impl TokenHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash ^ word).wrapping_mul(MULTIPLIER).rotate_left(26);
    }
}

impl Hasher for TokenHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // Fold the high bits down: hashbrown picks buckets with the low bits
        // and its control byte from the top seven.
        let h = self.hash;
        (h ^ (h >> 32)).wrapping_mul(MULTIPLIER) ^ (h >> 29)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(seed: u64, bytes: &[u8]) -> u64 {
        SeededState::new(seed).hash_one(bytes)
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        assert_eq!(hash(1, b"foo.bar"), hash(1, b"foo.bar"));
        assert_ne!(hash(1, b"foo.bar"), hash(2, b"foo.bar"));
        assert_ne!(hash(1, b"foo"), hash(1, b"foo\0"));
        assert_ne!(hash(1, b"abcdefgh"), hash(1, b"abcdefgi"));
    }

    #[test]
    fn spreads_sequential_tokens() {
        let mut buckets = [0u32; 64];
        for i in 0..64_000u32 {
            buckets[(hash(7, i.to_string().as_bytes()) % 64) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (700..1300).contains(&n)),
            "{buckets:?}"
        );
    }
}
