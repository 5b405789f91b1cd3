//! Page patterns for memory tests: every word's value derived from a seed (a pid,
//! say) and the word's own address, so a page that comes back from swap in the
//! wrong place, from the wrong process, or stale, is caught.
//!
//! Memory is handled as raw `*mut u64` with volatile accesses: the kernel changes
//! what backs these addresses (swap-out, copy-on-write) behind the compiler's back.

use crate::PAGE_SIZE;

/// Words in a page.
pub const WORDS_PER_PAGE: usize = PAGE_SIZE / 8;

/// Returns the value the word at `addr` holds under `seed`.
pub fn word(seed: u64, addr: u64) -> u64 {
    (addr ^ seed.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed
}

/// Fills `nr_pages` pages from `base` with the pattern of `seed`.
///
/// # Safety
/// `[base, base + nr_pages pages)` must be mapped writable, and no Rust reference
/// may point into it.
pub unsafe fn fill(base: *mut u64, nr_pages: usize, seed: u64) {
    for i in 0..nr_pages * WORDS_PER_PAGE {
        // SAFETY: inside the range the caller vouched for.
        unsafe {
            let p = base.add(i);
            p.write_volatile(word(seed, p as u64));
        }
    }
}

/// Returns the first word of `nr_pages` pages from `base` that does not hold
/// `seed`'s pattern: (address, value found, value expected).
///
/// # Safety
/// `[base, base + nr_pages pages)` must be mapped readable.
pub unsafe fn first_mismatch(base: *const u64, nr_pages: usize, seed: u64) -> Option<(u64, u64, u64)> {
    (0..nr_pages * WORDS_PER_PAGE).find_map(|i| {
        // SAFETY: inside the range the caller vouched for.
        let (addr, found) = unsafe {
            let p = base.add(i);
            (p as u64, p.read_volatile())
        };
        let want = word(seed, addr);
        (found != want).then_some((addr, found, want))
    })
}

/// Returns the number of pages of `nr_pages` from `base` whose words do not all
/// hold `seed`'s pattern.
///
/// # Safety
/// As for [`first_mismatch`].
pub unsafe fn nr_bad_pages(base: *const u64, nr_pages: usize, seed: u64) -> usize {
    (0..nr_pages)
        // SAFETY: each page is inside the caller's range.
        .filter(|&page| unsafe { first_mismatch(base.add(page * WORDS_PER_PAGE), 1, seed) }.is_some())
        .count()
}
