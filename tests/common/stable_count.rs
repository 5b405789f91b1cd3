//! Reading a count of frames that other CPUs are still moving: an idle CPU fills
//! the pre-zeroed pool, the swap wiper and kswapd run, and a count taken meanwhile
//! is off by a few frames (`tests/fuzz.rs`: 4 frames high in 4 of 4 runs with
//! `--smp 2`; `tests/fail_inject.rs`: "frames leaked" in about half). Included with
//! `#[path = "common/stable_count.rs"] mod stable_count;`.

use kernel::arch::timer;
use kernel::proc::sched;

/// Returns `read()` once two reads a tick apart agree and `is_quiet()` holds, or
/// the last read after 2 s. A real leak stays in the count: this only waits out
/// memory in motion.
pub fn stable_count(mut read: impl FnMut() -> u64, is_quiet: impl Fn() -> bool) -> u64 {
    let deadline = timer::ticks() + 2 * timer::TICK_HZ;
    let mut last = read();
    loop {
        let next_tick = timer::ticks() + 1;
        while timer::ticks() < next_tick {
            sched::yield_now();
        }
        let now = read();
        if (now == last && is_quiet()) || timer::ticks() >= deadline {
            return now;
        }
        last = now;
    }
}
