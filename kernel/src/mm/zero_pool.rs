//! Pre-zeroed frames: free frames zeroed while the CPU has nothing else to do, kept
//! in a pool and handed to anonymous faults first, so such a fault skips its zeroing.
//!
//! ```text
//!  idle (the scheduler finds no runnable task)          a fault wants a zeroed page
//!    fill_while_idle:                                      NewPage::alloc_zeroed:
//!      take a free frame (buddy, state Kernel)               take(): pop the pool,
//!      zero it, interrupts on, no lock held                    Zeroed -> User  (no zeroing)
//!      lock POOL; Kernel -> Zeroed; push                     pool empty: buddy + zero it
//!      stop when a task is queued or the pool is full
//! ```
//! The marker is the frame table's state [`FrameState::Zeroed`]: a frame is in that
//! state exactly while it sits in the pool (the state changes under the pool's lock,
//! on the way in and on the way out), and only a frame this module zeroed itself,
//! after allocating it, gets there. Nothing can write a frame in the pool: it is
//! allocated (not on a free list), owned by the pool, and mapped nowhere but in the
//! direct map. A frame that leaves the pool becomes `User` (or is freed) and loses
//! the marker; a user frame that is freed goes back to the buddy allocator as
//! `Free`, never to the pool, so a written frame is never handed out as zero.
//! `mm::check` verifies both directions (Zeroed state iff in the pool) and reads
//! every pooled frame back as zero.
//!
//! Free memory: the pool's frames are free memory that happens to be zero, so
//! [`super::frame::nr_free_frames`] counts them; the pool fills only while the buddy
//! allocator has more than twice the high watermark plus the pool's size free, and
//! an allocation that finds the buddy allocator short gives the whole pool back
//! ([`drain`]) and tries again, so the pool never causes a reclaim or an OOM kill.
//!
//! Who runs it: [`fill_while_idle`] is called by the scheduler's idle branch (no task
//! runnable, before `hlt`), and returns as soon as an interrupt queues a task, so it
//! uses only time the CPU would spend halted (Linux had the same idea in its
//! PowerPC idle loop; FreeBSD's `vm_page_zero_idle`).
//!
//! Counters ([`super::vmstat::ZeroEvent`], in `/proc/vmstat`): frames zeroed in the
//! background, zeroed pages taken from the pool, pages zeroed at allocation.
//!
//! Locks: `POOL` (`ZeroPool`), just above `frame::FRAMES`, which is taken inside it
//! to change a frame's state; nothing else is taken under it.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::frame::{self, FrameState, Reserve};
use super::vmstat::{self, ZeroEvent};
use super::{Frame, Order, memops};
use crate::sync::{IrqMutex, LockRank};

/// The most frames the pool holds: 16 MiB, the anonymous pages a burst of faults
/// (a program touching its heap after a pause) can get without zeroing.
pub const CAPACITY: usize = 4096;

/// The pool: a stack of frame numbers, all in state `Zeroed`.
struct Pool {
    pfns: [u64; CAPACITY],
    len: usize,
}

static POOL: IrqMutex<Pool> = IrqMutex::new_ranked(LockRank::ZeroPool, Pool { pfns: [0; CAPACITY], len: 0 });

/// The frames in the pool *and* those an idle CPU is zeroing for it (taken from the
/// buddy allocator, not pushed yet), readable without the lock: free memory for
/// `frame::nr_free_frames`. Counting the frame being zeroed matters with several
/// CPUs: an idle CPU spends most of its filling time zeroing, and a count of free
/// frames taken on another CPU meanwhile was one frame short (`hello_c` "leaked" a
/// frame under `--smp 2`). It changes in the same hold of the pool's lock as the
/// buddy allocator's count (a fill takes and counts a frame in one hold, a drain
/// frees and uncounts one in one), so `frame::nr_free_frames_exact`, reading both
/// under that lock, never sees a frame twice or not at all; [`nr_pooled`], read
/// alone, may be a move behind.
static NR_POOLED: AtomicU64 = AtomicU64::new(0);

/// Whether idle time fills the pool (`prezero=off` on the command line, or
/// [`set_enabled`], turns it off: for measuring the fault path without it).
static IS_ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns background zeroing on or off; off also gives the pool back to the buddy allocator.
pub fn set_enabled(is_on: bool) {
    IS_ENABLED.store(is_on, Ordering::Relaxed);
    if !is_on {
        drain();
    }
}

/// Returns true if background zeroing is on.
pub fn is_enabled() -> bool {
    IS_ENABLED.load(Ordering::Relaxed)
}

/// Returns the number of zeroed frames waiting in the pool, and being zeroed for it.
#[inline]
pub fn nr_pooled() -> u64 {
    NR_POOLED.load(Ordering::Relaxed)
}

/// Returns true if `frame` is in the pool (a linear search: for tests and the audit).
pub fn contains(frame: Frame) -> bool {
    let pool = POOL.lock();
    pool.pfns[..pool.len].contains(&frame.pfn())
}

/// Returns the frames in the pool (for the audit), into `out`; returns how many.
pub fn snapshot(out: &mut alloc::vec::Vec<Frame>) -> usize {
    // Room first: the heap's lock ranks above the pool's, so no allocation under it.
    out.reserve(CAPACITY);
    let pool = POOL.lock();
    out.extend(pool.pfns[..pool.len].iter().map(|&pfn| Frame::from_pfn(pfn)));
    pool.len
}

/// Takes a zeroed frame from the pool for a user page: the frame comes back in state
/// `User` with one reference, as `frame::alloc` would give it, and zero-filled.
/// Returns `None` when the pool is empty (the caller allocates and zeroes).
#[inline]
pub fn take() -> Option<Frame> {
    // The common case under a burst of faults is an empty pool: say so without the
    // lock, inline (one load; the call and its frame cost the fault more than that).
    if nr_pooled() == 0 {
        return None;
    }
    take_pooled()
}

/// [`take`] once the pool's count says it holds frames.
#[inline(never)]
fn take_pooled() -> Option<Frame> {
    let mut pool = POOL.lock();
    if pool.len == 0 {
        return None;
    }
    pool.len -= 1;
    let frame = Frame::from_pfn(pool.pfns[pool.len]);
    NR_POOLED.fetch_sub(1, Ordering::Relaxed);
    frame::with_desc(frame, |desc| {
        assert_eq!(desc.state(), FrameState::Zeroed, "zero_pool::take: {frame:?} in the pool lost its marker");
        desc.set_state(FrameState::User);
    });
    Some(frame)
}

/// Gives every pooled frame back to the buddy allocator (an allocation found it
/// short, or background zeroing was turned off). Returns how many were given back.
pub fn drain() -> u64 {
    let mut nr_drained = 0;
    loop {
        // One frame per hold of the pool's lock, freed in that hold: a frame moving
        // from the pool to the buddy allocator is never out of both counts while
        // `frame::nr_free_frames_exact` (which takes this lock) reads them.
        let mut pool = POOL.lock();
        if pool.len == 0 {
            return nr_drained;
        }
        pool.len -= 1;
        let frame = Frame::from_pfn(pool.pfns[pool.len]);
        frame::with_desc(frame, |desc| desc.set_state(FrameState::Kernel));
        // SAFETY: the frame was the pool's alone (allocated by `fill_one`, mapped
        // nowhere, known to nobody else), and it just left the pool.
        if let Err(e) = unsafe { frame::free(frame, Order(0)) } {
            panic!("zero_pool::drain: {e}");
        }
        NR_POOLED.fetch_sub(1, Ordering::Relaxed);
        drop(pool);
        nr_drained += 1;
    }
}

/// Runs `f` with the pool's lock held and returns what it returns, with the count
/// of pooled frames (zeroed, and being zeroed): for `frame::nr_free_frames_exact`,
/// which reads the buddy allocator's and the per-CPU lists' counts in `f`. No frame
/// is between the pool and the buddy allocator while the lock is held.
pub(super) fn with_pool_counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let _pool = POOL.lock();
    (f(), NR_POOLED.load(Ordering::Relaxed))
}

/// Returns true if the pool has room and the buddy allocator has frames to spare:
/// more than twice the high watermark plus the pool's capacity, so filling the pool
/// never pushes free memory toward reclaim.
fn should_fill() -> bool {
    if !is_enabled() || nr_pooled() as usize >= CAPACITY {
        return false;
    }
    let high = super::reclaim::try_watermarks().map_or(u64::MAX / 4, |w| w.high);
    frame::nr_free_buddy_frames() > 2 * high + CAPACITY as u64
}

/// Zeroes one free frame and puts it in the pool; returns false if there was no
/// room or no frame to spare.
fn fill_one() -> bool {
    if !should_fill() {
        return false;
    }
    // Taken and counted in one hold of the pool's lock (free memory on its way to
    // the pool: `frame::nr_free_frames_exact` never sees it in both counts or in
    // neither), and only while the frames in the pool and in hand leave room, so
    // the push below always fits, whichever CPUs fill at once.
    let frame = {
        let _pool = POOL.lock();
        if nr_pooled() as usize >= CAPACITY {
            return false;
        }
        let Ok(frame) = frame::alloc_from_buddy(Order(0), FrameState::Kernel, Reserve::User) else {
            return false;
        };
        NR_POOLED.fetch_add(1, Ordering::Relaxed);
        frame
    };
    // SAFETY: just allocated: nobody else knows the frame.
    unsafe { memops::zero_page(frame) };
    let mut pool = POOL.lock();
    assert!(pool.len < CAPACITY, "zero_pool::fill_one: more frames in hand than room");
    frame::with_desc(frame, |desc| desc.set_state(FrameState::Zeroed));
    let len = pool.len;
    pool.pfns[len] = frame.pfn();
    pool.len += 1; // counted in NR_POOLED since it was taken
    vmstat::count_zero(ZeroEvent::ZeroedInBackground);
    true
}

/// Zeroes free frames into the pool until `has_work_fn` says a task is runnable, the
/// pool is full, or free memory is short; called by the scheduler's idle branch with
/// interrupts off and no lock held. Each frame is zeroed with interrupts **on**, so
/// an interrupt that wakes a task is taken at once and the loop stops after at most
/// one more frame (about a microsecond).
pub fn fill_while_idle(has_work_fn: impl Fn() -> bool) {
    while !has_work_fn() {
        x86_64::instructions::interrupts::enable();
        let is_filled = fill_one();
        x86_64::instructions::interrupts::disable();
        if !is_filled {
            return;
        }
    }
}

/// Allocates a zero-filled user frame: from the pool if it has one (no zeroing),
/// else from the buddy allocator, zeroed here. Counts which.
/// Fault injection (`super::fail`) fails it as it fails any user page.
pub fn alloc_zeroed_user() -> Result<Frame, frame::AllocError> {
    if super::fail::should_fail(super::fail::FailSite::UserPage) {
        return Err(frame::AllocError::OutOfMemory);
    }
    if let Some(frame) = take() {
        vmstat::count_zero(ZeroEvent::TakenPreZeroed);
        return Ok(frame);
    }
    let frame = frame::alloc_without_injection(Order(0), FrameState::User)?;
    // SAFETY: just allocated: nobody else knows the frame.
    unsafe { memops::zero_page(frame) };
    vmstat::count_zero(ZeroEvent::ZeroedAtAllocation);
    Ok(frame)
}

/// [`alloc_zeroed_user`] for the fault fast path: from the pool, or from the
/// running CPU's page list (zeroed here; `frame::alloc_user_at_hand`); `None`
/// where `alloc_zeroed_user` would drain the pools. No fault injection (the
/// caller leaves that to the general path).
#[inline]
pub fn take_zeroed_at_hand() -> Option<Frame> {
    if let Some(frame) = take() {
        vmstat::count_zero(ZeroEvent::TakenPreZeroed);
        return Some(frame);
    }
    let frame = frame::alloc_user_at_hand()?;
    // SAFETY: just allocated: nobody else knows the frame.
    unsafe { memops::zero_page(frame) };
    vmstat::count_zero(ZeroEvent::ZeroedAtAllocation);
    Some(frame)
}

/// Checks the pool for the audit: every pooled frame is in state `Zeroed` and reads
/// zero, and no other frame is `Zeroed` (the frame table is counted here, under the
/// pool's lock: every change of a frame to or from `Zeroed` happens under it, so an
/// idle CPU filling the pool meanwhile cannot make the two counts disagree).
/// Returns a description of the first violation.
pub fn check() -> Result<u64, alloc::string::String> {
    let mut frames = alloc::vec::Vec::with_capacity(CAPACITY); // the heap's lock ranks above the pool's
    let (nr, nr_zeroed_in_table) = {
        let pool = POOL.lock();
        frames.extend(pool.pfns[..pool.len].iter().map(|&pfn| Frame::from_pfn(pfn)));
        (pool.len as u64, frame::nr_frames_in_state(FrameState::Zeroed))
    };
    if nr != nr_zeroed_in_table {
        return Err(alloc::format!("zero pool holds {nr} frames but {nr_zeroed_in_table} frames are in state Zeroed"));
    }
    for frame in frames {
        let state = frame::with_desc(frame, |desc| desc.state());
        if state != FrameState::Zeroed && contains(frame) {
            return Err(alloc::format!("zero pool: {frame:?} is in state {state:?}, not Zeroed"));
        }
        // A fault may take it (and write it) between the snapshot and here: only a
        // frame still in the pool after the read is a violation.
        if !frame::is_zero(frame) && contains(frame) {
            return Err(alloc::format!("zero pool: {frame:?} is marked zero but holds non-zero bytes"));
        }
    }
    Ok(nr)
}
