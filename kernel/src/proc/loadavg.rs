//! The load average (`/proc/loadavg`, `top`'s first line): Linux's exponentially
//! decaying averages of the number of runnable tasks over 1, 5 and 15 minutes.
//!
//! Every 5 seconds (`LOAD_FREQ`) the timer tick samples the runnable tasks `n`
//! and moves each average towards it, in fixed point with 11 fraction bits
//! (Linux's `calc_load`, `kernel/sched/loadavg.c`):
//! ```text
//! avg = avg * e + n * (1 - e),   e = exp(-5 s / 1 min), exp(-5 s / 5 min), exp(-5 s / 15 min)
//!                                  = 1884/2048,          2014/2048,          2037/2048
//! ```
//! Linux counts tasks in uninterruptible sleep too; this kernel cannot tell a disk
//! wait from any other, so only runnable tasks count. Only the boot CPU's tick samples.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::timer;

/// Fraction bits of the fixed-point averages.
const FSHIFT: u32 = 11;
/// 1.0 in fixed point.
const FIXED_1: u64 = 1 << FSHIFT;
/// The decay factors for 1, 5 and 15 minutes.
const EXP: [u64; 3] = [1884, 2014, 2037];
/// Ticks between samples: 5 seconds and one tick (Linux's LOAD_FREQ).
const LOAD_FREQ_TICKS: u64 = 5 * timer::TICK_HZ + 1;

static AVERAGES: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];

/// Returns the averages moved one step towards `nr_active` tasks.
fn calc_load(load: u64, exp: u64, nr_active: u64) -> u64 {
    let active = nr_active * FIXED_1;
    let mut new = load * exp + active * (FIXED_1 - exp);
    if active >= load {
        new += FIXED_1 - 1; // round up while rising, as Linux does
    }
    new / FIXED_1
}

/// Samples the runnable tasks every [`LOAD_FREQ_TICKS`]. Called from the timer tick.
pub fn on_tick() {
    if !timer::ticks().is_multiple_of(LOAD_FREQ_TICKS) {
        return;
    }
    let nr_active = super::task::nr_runnable();
    for (avg, exp) in AVERAGES.iter().zip(EXP) {
        avg.store(calc_load(avg.load(Ordering::Relaxed), exp, nr_active), Ordering::Relaxed);
    }
}

/// Returns the 1, 5 and 15 minute averages in hundredths (1.50 is 150).
pub fn averages_hundredths() -> [u64; 3] {
    core::array::from_fn(|i| {
        let avg = AVERAGES[i].load(Ordering::Relaxed);
        // Linux's LOAD_INT and LOAD_FRAC, with its rounding.
        let avg = avg + FIXED_1 / 200;
        (avg >> FSHIFT) * 100 + (((avg & (FIXED_1 - 1)) * 100) >> FSHIFT)
    })
}
