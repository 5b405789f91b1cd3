//! kswapd: the kernel thread of background reclaim. A fault or fork that sees free
//! frames below `low` kicks it ([`wake_kswapd`]); it reclaims up to `high`
//! ([`balance`]) and sleeps on its wait queue again. Runs with no lock held.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::mm::frame;
use crate::mm::swap;
use crate::mm::vmstat::{self, SwapEvent};
use super::{shrink, try_watermarks};

/// True once kswapd runs.
static IS_KSWAPD_RUNNING: AtomicBool = AtomicBool::new(false);
/// Set by [`wake_kswapd`], cleared by kswapd when it starts a pass: a wake-up that
/// arrives while kswapd is busy stays here, so its next check sees it and it runs
/// another pass instead of sleeping (the old `balance(); sleep()` loop lost it).
static IS_KSWAPD_KICKED: AtomicBool = AtomicBool::new(false);
/// Where kswapd sleeps.
static KSWAPD_QUEUE: crate::sync::WaitQueue = crate::sync::WaitQueue::new();
/// True while kswapd is inside a pass (between waking and going back to its queue).
static IS_KSWAPD_IN_PASS: AtomicBool = AtomicBool::new(false);
/// Passes kswapd has finished since boot.
static NR_KSWAPD_PASSES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
/// Test hook ([`hold_kswapd_in_pass_for_test`]): while set, kswapd stops inside its
/// next pass, before it reclaims, until the test clears it.
static IS_HOLD_REQUESTED: AtomicBool = AtomicBool::new(false);
/// True while kswapd is stopped by [`IS_HOLD_REQUESTED`].
static IS_HELD: AtomicBool = AtomicBool::new(false);
/// Where kswapd waits while it is held.
static HOLD_QUEUE: crate::sync::WaitQueue = crate::sync::WaitQueue::new();

/// Returns (kswapd's finished passes, whether it is inside one now).
pub fn kswapd_state() -> (u64, bool) {
    (NR_KSWAPD_PASSES.load(Ordering::Acquire), IS_KSWAPD_IN_PASS.load(Ordering::Acquire))
}

/// Starts kswapd: a kernel thread that sleeps until free frames drop below `low`,
/// then reclaims up to `high` (Linux's kswapd). Without it (it could not be
/// started), faulting processes do that work themselves in [`wake_kswapd`].
pub fn start_kswapd() {
    match crate::sync::kthread::spawn("kswapd", kswapd_main) {
        Ok(_) => IS_KSWAPD_RUNNING.store(true, Ordering::Release),
        Err(e) => log::warn!("reclaim: kswapd not started ({e:?}); faulting processes reclaim themselves"),
    }
}

extern "C" fn kswapd_main() -> ! {
    loop {
        KSWAPD_QUEUE.wait_until(|| IS_KSWAPD_KICKED.swap(false, Ordering::AcqRel));
        IS_KSWAPD_IN_PASS.store(true, Ordering::Release);
        if IS_HOLD_REQUESTED.load(Ordering::Acquire) {
            IS_HELD.store(true, Ordering::Release);
            HOLD_QUEUE.wait_until(|| !IS_HOLD_REQUESTED.load(Ordering::Acquire));
            IS_HELD.store(false, Ordering::Release);
        }
        crate::mm::cleaner::kick(); // cleans the victims after this pass's
        balance();
        // Slots freed by this pass (a page dropped from the swap cache whose
        // process exited while it was being written) wait for the wiper.
        crate::mm::swap::kick_wiper();
        IS_KSWAPD_IN_PASS.store(false, Ordering::Release);
        NR_KSWAPD_PASSES.fetch_add(1, Ordering::AcqRel);
    }
}

/// Test hook: with `is_held` true, kswapd stops inside its next pass (after
/// [`kswapd_state`] says it is in one, before it reclaims) until this is called with
/// false. Lets a test land a wake-up while kswapd is busy every time, instead of
/// hoping to catch a pass of a few milliseconds (`tests/pressure.rs`).
#[doc(hidden)]
pub fn hold_kswapd_in_pass_for_test(is_held: bool) {
    IS_HOLD_REQUESTED.store(is_held, Ordering::Release);
    if !is_held {
        HOLD_QUEUE.wake_all();
    }
}

/// Returns true while kswapd is stopped by [`hold_kswapd_in_pass_for_test`].
#[doc(hidden)]
pub fn is_kswapd_held_for_test() -> bool {
    IS_HELD.load(Ordering::Acquire)
}

/// Called with no lock held at every user fault and fork: below the `low` watermark
/// wakes kswapd (which runs when the faulting task next gives up the CPU); direct
/// reclaim still backs up an allocation that fails before kswapd has caught up.
#[inline]
pub fn wake_kswapd() {
    let Some(marks) = try_watermarks() else { return };
    // The common case, plenty free, is decided by the buddy allocator's and the
    // pre-zeroed pool's counts alone (two loads), inline in the caller: the per-CPU
    // lists (one count per CPU to sum) could only add to them.
    let nr_free_unlisted = frame::nr_free_buddy_frames() + crate::mm::zero_pool::nr_pooled();
    if nr_free_unlisted >= marks.low.max(crate::mm::cleaner::kick_below(marks.high)) {
        return;
    }
    wake_kswapd_near_watermarks(marks);
}

/// [`wake_kswapd`] once the buddy allocator's and the pool's counts alone are
/// below the watermarks: the whole count, the cleaner's note, and the wake-up.
#[inline(never)]
fn wake_kswapd_near_watermarks(marks: super::Watermarks) {
    let nr_free = frame::nr_free_frames();
    crate::mm::cleaner::note_free_frames(nr_free, marks.high);
    if nr_free >= marks.low || !has_reclaimable() {
        return;
    }
    if IS_KSWAPD_RUNNING.load(Ordering::Acquire) {
        IS_KSWAPD_KICKED.store(true, Ordering::Release);
        KSWAPD_QUEUE.wake_one();
    } else {
        balance();
    }
}

/// Returns true if a wake-up is waiting for kswapd (for tests: it is consumed when
/// kswapd starts its next pass).
pub fn is_kswapd_kicked() -> bool {
    IS_KSWAPD_KICKED.load(Ordering::Acquire)
}

/// Returns true if reclaim has somewhere to put pages: swap is on, or files have
/// pages in the cache (dropped or written to their files).
fn has_reclaimable() -> bool {
    swap::is_on() || crate::mm::page_cache::nr_pages() > 0
}

/// Background reclaim: if free frames are below `low`, reclaims up to `high`.
/// Runs in kswapd, with no lock held.
pub fn balance() {
    let Some(marks) = try_watermarks() else { return };
    let nr_free = frame::nr_free_frames();
    if nr_free < marks.low && has_reclaimable() {
        vmstat::count(SwapEvent::BackgroundReclaim);
        shrink(marks.high - nr_free);
    }
}
