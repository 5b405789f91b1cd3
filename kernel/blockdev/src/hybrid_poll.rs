//! How long a driver polls for a request before it sleeps until the interrupt:
//! the window follows the device's measured completion time (hybrid polling).
//!
//! Under QEMU's TCG a request that is not complete at the first look usually
//! completes a few tens of microseconds later, and polling for it (yielding the CPU
//! between looks) costs less than a sleep: the switch to the idle task, its `hlt`,
//! the interrupt, the host's wake-up of the vCPU thread and the switch back. A slow
//! device (a loaded host, a real disk) is better slept for. So the driver polls for
//! a window of [`HybridPoll::spin_window`] and then sleeps; the window is
//! `FACTOR` times the mean completion time of recent requests (an exponentially
//! weighted mean, as Linux's `blk_mq_poll_stats` keeps one per request size), never
//! shorter than `min` nor longer than `max`:
//!
//! ```text
//!   mean completion 30 us  ->  window max(2 x 30, 100) = 100 us: nearly every request polled
//!   mean completion 400 us ->  window 800 us: still polled, the wake-up would cost more
//!   mean completion 5 ms   ->  window max = 2 ms: then sleep; a slow disk frees the CPU
//! ```
//! Linux's hybrid polling sleeps first (half the mean) and polls after; a driver whose
//! requests mostly complete at the first looks has nothing to sleep through first, so
//! this one polls first. Times are in the caller's clock units (TSC cycles in the
//! kernel); this module only does arithmetic.

/// The window is this many times the mean completion time.
pub const FACTOR: u64 = 2;

/// The mean moves 1/2^`MEAN_SHIFT` of the way to each new sample.
const MEAN_SHIFT: u32 = 3;

/// The adaptive poll window of one device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HybridPoll {
    /// Mean completion time of recent requests times 2^`MEAN_SHIFT` (the extra
    /// bits keep the mean from sticking below a steady value); 0 until the first sample.
    mean_scaled: u64,
    min: u64,
    max: u64,
    /// A window fixed by the user (`blk_poll_us=`): no adaptation.
    fixed: Option<u64>,
}

impl HybridPoll {
    /// An adaptive window between `min` and `max` (clock units); `min` until the
    /// first request completes.
    pub const fn adaptive(min: u64, max: u64) -> Self {
        HybridPoll { mean_scaled: 0, min, max, fixed: None }
    }

    /// A fixed window (0: sleep at the first look that finds the request not done).
    pub const fn fixed(window: u64) -> Self {
        HybridPoll { mean_scaled: 0, min: window, max: window, fixed: Some(window) }
    }

    /// How long to poll a request before sleeping, from its submission.
    pub fn spin_window(&self) -> u64 {
        match self.fixed {
            Some(window) => window,
            None => self.mean().saturating_mul(FACTOR).clamp(self.min, self.max),
        }
    }

    /// Records that a request completed `elapsed` after its submission (polled or
    /// slept for alike: a sleep's time is what the device took plus the wake-up).
    pub fn record(&mut self, elapsed: u64) {
        self.mean_scaled = if self.mean_scaled == 0 {
            elapsed.saturating_mul(1 << MEAN_SHIFT)
        } else {
            // mean += (elapsed - mean) / 2^MEAN_SHIFT, kept scaled by 2^MEAN_SHIFT.
            (self.mean_scaled - self.mean()).saturating_add(elapsed)
        };
    }

    /// The mean completion time so far (0 before the first request).
    pub fn mean(&self) -> u64 {
        self.mean_scaled >> MEAN_SHIFT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_starts_at_min_and_follows_twice_the_mean_within_bounds() {
        let mut poll = HybridPoll::adaptive(100, 2000);
        assert_eq!(poll.spin_window(), 100);
        poll.record(30);
        assert_eq!(poll.spin_window(), 100, "2 x 30 is under the floor");
        let mut slow = HybridPoll::adaptive(100, 2000);
        slow.record(400);
        assert_eq!(slow.spin_window(), 800);
        slow.record(100_000);
        assert_eq!(slow.spin_window(), 2000, "capped at max");
    }

    #[test]
    fn mean_converges_to_a_steady_completion_time() {
        let mut poll = HybridPoll::adaptive(1, u64::MAX);
        poll.record(1000);
        for _ in 0..100 {
            poll.record(200);
        }
        assert_eq!(poll.mean(), 200);
        // One outlier moves it an eighth of the way.
        poll.record(200 + 8 * 800);
        assert_eq!(poll.mean(), 1000);
    }

    #[test]
    fn fixed_window_ignores_samples() {
        let mut poll = HybridPoll::fixed(0);
        poll.record(5000);
        assert_eq!(poll.spin_window(), 0);
        let mut poll = HybridPoll::fixed(250);
        poll.record(1);
        assert_eq!(poll.spin_window(), 250);
    }

    #[test]
    fn huge_samples_do_not_overflow() {
        let mut poll = HybridPoll::adaptive(10, 100);
        poll.record(u64::MAX >> 4);
        poll.record(u64::MAX >> 4);
        assert_eq!(poll.spin_window(), 100);
    }
}
