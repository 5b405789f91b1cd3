//! The models, one file each, and what they share: the seeded random generator.

pub mod bounds;
pub mod freelist;
pub mod paging;
pub mod replacement;
pub mod segmentation;
pub mod tlb;

use crate::args::{ArgError, Args};
use mm_core::xorshift::XorShift;

/// Returns the generator for `--seed` (seed 0 when none is given: the default exercise).
pub fn rng_from(args: &Args) -> Result<XorShift, ArgError> {
    let seed = args.number_or("seed", 0)?;
    // xorshift stays at zero from zero: mix the seed into a non-zero state.
    Ok(XorShift(
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d | 1,
    ))
}

/// Returns a number in `low..=high` (inclusive) from `rng`.
pub fn between(rng: &mut XorShift, low: u64, high: u64) -> u64 {
    low + rng.below(high - low + 1)
}
