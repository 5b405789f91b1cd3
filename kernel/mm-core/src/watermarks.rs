//! The free-frame watermarks `min`, `low` and `high` (reclaim's thresholds) computed
//! from the memory size and `/proc/sys/vm/watermark_scale_factor`, by Linux's rule
//! (`mm/page_alloc.c`, `__setup_per_zone_wmarks`, since Linux 4.6):
//!
//! ```text
//!  gap  = max(floor, managed * watermark_scale_factor / 10000)
//!  low  = min + gap
//!  high = min + 2 * gap
//! ```
//! `min` (Linux's `min_free_kbytes`) does not depend on the factor: it is the
//! kernel's reserve and is fixed at boot. The factor is in units of 0.01 % of
//! memory: the default 10 puts 0.1 % of memory between two watermarks, the largest,
//! 3000, 30 %. A larger gap makes kswapd start earlier and keep more frames free,
//! so that bursts of allocations find free frames without reclaiming directly.
//!
//! The one difference from Linux: the floor. Linux's is `min / 4`; ours is `min`
//! itself, the gap this kernel had before the factor existed (low = 2 min, high =
//! 3 min), because its reclaim and writeback were tuned on those marks. So at the
//! default factor nothing changes on small machines (0.1 % of 64 MiB is about 14
//! frames, less than `min`, 106); a factor above `10000 / 128`, about 78, moves the
//! marks.

/// Linux's default `watermark_scale_factor`.
pub const DEFAULT_SCALE_FACTOR: u64 = 10;
/// The values `watermark_scale_factor` accepts (Linux's range).
pub const SCALE_FACTOR_RANGE: core::ops::RangeInclusive<u64> = 1..=3000;

/// The three watermarks, in frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watermarks {
    /// User allocations fail below this: the rest is the kernel's reserve.
    pub min: u64,
    /// Background reclaim (kswapd) starts below this.
    pub low: u64,
    /// Background reclaim stops here.
    pub high: u64,
}

/// Returns `min`, the kernel's reserve, for `managed` frames: 1/128 of memory,
/// at least 64 and at most 1024 frames.
pub fn min_for(managed: u64) -> u64 {
    (managed / 128).clamp(64, 1024)
}

/// Returns the watermarks for `managed` frames, reserve `min` and `scale_factor`
/// (in 1/10000 of memory; see the module docs).
pub fn compute(managed: u64, min: u64, scale_factor: u64) -> Watermarks {
    let scaled = (u128::from(managed) * u128::from(scale_factor) / 10_000) as u64;
    let gap = min.max(scaled);
    Watermarks { min, low: min + gap, high: min + 2 * gap }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_factor_keeps_the_boot_marks_on_small_machines() {
        // 64 MiB: 16384 frames, min 128; 0.1 % is 16 frames, below the floor.
        let marks = compute(16384, min_for(16384), DEFAULT_SCALE_FACTOR);
        assert_eq!(marks, Watermarks { min: 128, low: 256, high: 384 });
    }

    #[test]
    fn the_gap_is_the_factor_times_memory_once_above_the_floor() {
        // 1000 = 10 % of 16384 frames: 1638 between the marks.
        let marks = compute(16384, 128, 1000);
        assert_eq!(marks, Watermarks { min: 128, low: 128 + 1638, high: 128 + 2 * 1638 });
        // The largest factor: 30 %.
        let marks = compute(16384, 128, 3000);
        assert_eq!(marks.high - marks.low, 16384 * 3 / 10);
    }

    #[test]
    fn a_larger_factor_never_lowers_a_mark() {
        for managed in [16384u64, 262_144, 4 << 20] {
            let min = min_for(managed);
            let mut last = compute(managed, min, 1);
            for factor in SCALE_FACTOR_RANGE {
                let marks = compute(managed, min, factor);
                assert_eq!(marks.min, min, "min does not depend on the factor");
                assert!(marks.low >= last.low && marks.high >= last.high, "{managed} frames, factor {factor}");
                assert!(marks.min < marks.low && marks.low < marks.high);
                last = marks;
            }
        }
    }

    #[test]
    fn on_large_machines_the_default_factor_is_linuxs_gap() {
        // 4 GiB: 1 Mi frames, min capped at 1024; 0.1 % is 1048 frames.
        let marks = compute(1 << 20, min_for(1 << 20), DEFAULT_SCALE_FACTOR);
        assert_eq!(marks, Watermarks { min: 1024, low: 1024 + 1048, high: 1024 + 2 * 1048 });
    }

    #[test]
    fn min_is_one_128th_of_memory_within_its_bounds() {
        assert_eq!(min_for(1000), 64);
        assert_eq!(min_for(16384), 128);
        assert_eq!(min_for(1 << 30), 1024);
    }
}
