//! The simulation's only source of randomness: a seeded ChaCha8 stream, with
//! the few helpers the simulator needs. Components fork their own stream so
//! that adding a draw in one place does not perturb every other component.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::time::Duration;

/// A seeded random stream.
#[derive(Clone, Debug)]
pub struct SimRng(ChaCha8Rng);

impl SimRng {
    /// The stream for `seed`.
    pub fn new(seed: u64) -> Self {
        SimRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// An independent child stream, derived from this one.
    pub fn fork(&mut self) -> SimRng {
        SimRng(ChaCha8Rng::seed_from_u64(self.0.next_u64()))
    }

    /// 32 bytes, to seed a node's own RNG.
    pub fn seed32(&mut self) -> [u8; 32] {
        let mut seed = [0u8; 32];
        self.0.fill_bytes(&mut seed);
        seed
    }

    /// A uniform `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n`; `n` must be positive.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        // Multiply-shift (Lemire) without the rejection step: the bias is
        // below 2^-32 for the ranges used here, and it stays deterministic.
        ((u128::from(self.0.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi, "range({lo}, {hi})");
        lo + self.below(hi - lo + 1)
    }

    /// Uniform index into a slice of length `len`.
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True with probability `num / den`.
    pub fn ratio(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }

    /// A duration uniform in `lo..=hi`.
    pub fn duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        let (lo, hi) = (lo.as_nanos() as u64, hi.as_nanos() as u64);
        Duration::from_nanos(self.range(lo, hi))
    }

    /// A size from a heavy-tailed mix: mostly small, sometimes up to `max`.
    /// Used for network chunks so that every parser boundary is exercised.
    pub fn chunk_size(&mut self, max: usize) -> usize {
        let max = max.max(1) as u64;
        let cap = match self.below(10) {
            0..=1 => 8,
            2..=4 => 512,
            5..=7 => 8 * 1024,
            _ => 64 * 1024,
        };
        self.range(1, cap.min(max)) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_forks_differ() {
        let (mut a, mut b) = (SimRng::new(7), SimRng::new(7));
        assert_eq!(a.next_u64(), b.next_u64());
        let mut fa = a.fork();
        assert_ne!(fa.next_u64(), a.next_u64());
    }

    #[test]
    fn ranges_hold_their_bounds() {
        let mut r = SimRng::new(1);
        for _ in 0..10_000 {
            let v = r.range(3, 9);
            assert!((3..=9).contains(&v));
            let c = r.chunk_size(100);
            assert!((1..=100).contains(&c));
        }
        let hits = (0..10_000).filter(|_| r.ratio(1, 4)).count();
        assert!((2_000..3_000).contains(&hits), "{hits}");
    }
}
