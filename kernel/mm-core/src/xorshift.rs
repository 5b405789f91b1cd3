//! A tiny deterministic pseudo-random generator for randomized tests and benchmarks.
//!
//! xorshift64* (Marsaglia's xorshift with a multiplicative output step): a few
//! instructions, no dependency, the same sequence on every machine, so a failing
//! randomized test fails again with the same seed. Not for anything that needs
//! real randomness.

/// The generator's state; any non-zero seed works: `XorShift(0x9e37_79b9_7f4a_7c15)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XorShift(pub u64);

impl XorShift {
    /// Returns the next 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Returns a value in `0..bound` (`bound` > 0; the slight modulo bias is harmless here).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

#[cfg(test)]
mod tests {
    use super::XorShift;

    #[test]
    fn same_seed_same_sequence_and_values_stay_below_the_bound() {
        let (mut a, mut b) = (XorShift(42), XorShift(42));
        for _ in 0..1000 {
            let x = a.below(7);
            assert_eq!(x, b.below(7));
            assert!(x < 7);
        }
        assert_ne!(XorShift(1).next_u64(), XorShift(2).next_u64());
    }
}
