//! The background cleaner: a kernel thread that writes dirty pages near the
//! eviction end of the replacement policy to swap *ahead of reclaim*, so that when
//! reclaim reaches them they are clean and their frames go back without a write
//! (VMS's modified page writer, Linux's old `pdflush` for anonymous memory).
//!
//! ```text
//!   policy:  hand -> [v1 v2 v3 ... vK] ......................... newest
//!                     \_ the next K victims (upcoming_victims) _/
//!   cleaner: for each dirty anonymous page among them: write it to its slot,
//!            keep it mapped, Dirty bit cleared   (swap/clean.rs)
//!            dirty file pages among them: wake the writeback thread (writeback.rs)
//!   reclaim, later: v1 clean?  -> freed without I/O ("victim found clean")
//!                   v1 written again since? -> written again ("wasted write")
//! ```
//!
//! **When it runs.** It sleeps on its wait queue until kicked: by a fault that sees
//! free frames below twice the `high` watermark (ahead of `low`, where kswapd
//! starts: [`note_free_frames`]) and by kswapd at the start of each pass. Each
//! wake-up runs one pass: it looks at the next [`LOOKAHEAD`] victims, leaves out
//! those used since the policy last looked if the policy will give them a second
//! chance (the clocks, the lists, aging: `spares_referenced_pages`; cleaning them
//! now would mostly be wasted, they stay), and cleans the dirty anonymous ones, [`CLUSTER`] at a time, only while at least one in
//! [`MIN_DIRTY_SHARE`] of the pages it looks at is dirty (below that, reclaim's own
//! writes are few and the cleaner's would mostly be wasted on pages it will never
//! evict). It is **rate-limited** to [`MAX_PAGES_PER_TICK`] pages per timer tick
//! (it sleeps to the next tick when over) and leaves the last eighth of the swap
//! slots to reclaim.
//!
//! **Counted** ([`stats`]): pages cleaned (written by the cleaner), cleaned pages
//! that reclaim found clean (the writes it saved), cleaned pages written again
//! before their eviction (wasted writes). Which pages the cleaner wrote is kept in
//! a bitmap beside the frame table (one bit a frame; the frame table's own bits are
//! all taken), set when it writes a page, tested and cleared when reclaim evicts it,
//! cleared when the frame is freed.
//!
//! **Switch.** On by default; `cleaner=off` on the command line, or
//! [`set_enabled`] at run time (the tests; `/proc/sys/vm` when it has the knob).
//!
//! Lock state: the thread runs with no lock held; it takes the policy lock only to
//! read the upcoming victims, then works as `swap/clean.rs` says.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::frame::{self, FrameFlags, FrameState, OwnedFrames};
use super::swap::clean::{Cleaned, clean_many};
use super::{Frame, Order};
use crate::sync::WaitQueue;

/// Victims the cleaner looks at, from the eviction end.
pub const LOOKAHEAD: usize = 256;
/// Pages cleaned together: one disk request when their slots are adjacent.
pub const CLUSTER: usize = 32;
/// The cleaner writes only while at least 1 in this many of the pages it looks at
/// is dirty.
pub const MIN_DIRTY_SHARE: usize = 8;
/// The rate limit: pages cleaned per timer tick (10 ms) at most.
pub const MAX_PAGES_PER_TICK: u64 = 256;

static IS_ENABLED: AtomicBool = AtomicBool::new(true);
static IS_RUNNING: AtomicBool = AtomicBool::new(false);
static IS_KICKED: AtomicBool = AtomicBool::new(false);
static IS_IN_PASS: AtomicBool = AtomicBool::new(false);
static QUEUE: WaitQueue = WaitQueue::new();

static NR_CLEANED: AtomicU64 = AtomicU64::new(0);
static NR_CLEAN_AT_EVICTION: AtomicU64 = AtomicU64::new(0);
static NR_WASTED: AtomicU64 = AtomicU64::new(0);
static NR_PASSES: AtomicU64 = AtomicU64::new(0);
static NR_FILE_WAKEUPS: AtomicU64 = AtomicU64::new(0);

/// The pages the cleaner copies pages into for their writes: the cleaner
/// thread's alone (it is their only user), allocated at boot.
static BOUNCE_PAGES: spin::Once<Vec<OwnedFrames>> = spin::Once::new();
/// One bit per managed frame: the cleaner wrote it and reclaim has not evicted it.
static CLEANED_MARKS: spin::Once<(u64, Vec<AtomicU64>)> = spin::Once::new();

/// What the cleaner did since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanerStats {
    /// Pages the cleaner wrote to swap.
    pub nr_cleaned: u64,
    /// Cleaned pages that reclaim then evicted without writing: writes it saved.
    pub nr_clean_at_eviction: u64,
    /// Cleaned pages written again before reclaim evicted them: wasted writes.
    pub nr_wasted: u64,
    /// Passes finished.
    pub nr_passes: u64,
    /// Passes that found dirty file pages among the next victims and woke the
    /// writeback thread for them.
    pub nr_file_wakeups: u64,
}

/// Returns the counters.
pub fn stats() -> CleanerStats {
    CleanerStats {
        nr_cleaned: NR_CLEANED.load(Ordering::Relaxed),
        nr_clean_at_eviction: NR_CLEAN_AT_EVICTION.load(Ordering::Relaxed),
        nr_wasted: NR_WASTED.load(Ordering::Relaxed),
        nr_passes: NR_PASSES.load(Ordering::Acquire),
        nr_file_wakeups: NR_FILE_WAKEUPS.load(Ordering::Relaxed),
    }
}

/// Turns the cleaner on or off (off: it finishes its pass and sleeps).
pub fn set_enabled(is_enabled: bool) {
    IS_ENABLED.store(is_enabled, Ordering::Release);
}

/// Returns true if the cleaner is switched on.
pub fn is_enabled() -> bool {
    IS_ENABLED.load(Ordering::Acquire)
}

/// Returns true while the cleaner is in a pass (pages of it locked for their
/// writes): the audit waits for the pass to end.
pub fn is_in_pass() -> bool {
    IS_IN_PASS.load(Ordering::Acquire)
}

/// Starts the cleaner thread (unless `cleaner=off`) and allocates its bitmap.
pub fn start() {
    if crate::cmdline::value("cleaner") == Some("off") {
        IS_ENABLED.store(false, Ordering::Release);
    }
    let (first, nr_frames) = frame::managed_frames();
    let mut marks = Vec::new();
    if marks.try_reserve_exact(nr_frames.div_ceil(64) as usize).is_err() {
        log::warn!("cleaner: no memory for its bitmap; not started");
        return;
    }
    marks.resize_with(nr_frames.div_ceil(64) as usize, || AtomicU64::new(0));
    CLEANED_MARKS.call_once(|| (first.pfn(), marks));
    // Allocated now and kept: the cleaner needs them when memory is short.
    let mut bounce = Vec::with_capacity(CLUSTER);
    while bounce.len() < CLUSTER {
        match OwnedFrames::new_zeroed(Order(0)) {
            Ok(page) => bounce.push(page),
            Err(_) => break,
        }
    }
    if bounce.is_empty() {
        log::warn!("cleaner: no frame for its bounce pages; not started");
        return;
    }
    BOUNCE_PAGES.call_once(|| bounce);
    match crate::sync::kthread::spawn("cleaner", cleaner_main) {
        Ok(_) => IS_RUNNING.store(true, Ordering::Release),
        Err(e) => log::warn!("cleaner: thread not started ({e:?}); reclaim writes its dirty victims itself"),
    }
}

/// Kicks the cleaner (kswapd at each pass, and [`note_free_frames`]).
pub fn kick() {
    if IS_RUNNING.load(Ordering::Acquire) && is_enabled() && !IS_KICKED.swap(true, Ordering::AcqRel) {
        QUEUE.wake_one();
    }
}

/// Called at each user fault with the free frames: below twice the `high`
/// watermark, kicks the cleaner, so it works before kswapd has to.
/// (The pass checks it again when it runs.)
pub fn note_free_frames(nr_free: u64, high: u64) {
    if nr_free < kick_below(high) {
        kick();
    }
}

/// The free-frame count under which [`note_free_frames`] kicks the cleaner, for
/// the `high` watermark.
#[inline]
pub fn kick_below(high: u64) -> u64 {
    2 * high
}

/// Returns the (word, bit) of `frame` in the bitmap.
fn mark_of(frame: Frame) -> Option<(&'static AtomicU64, u64)> {
    let (first_pfn, marks) = CLEANED_MARKS.get()?;
    let index = frame.pfn().checked_sub(*first_pfn)?;
    Some((marks.get((index / 64) as usize)?, 1 << (index % 64)))
}

/// Clears `frame`'s mark; returns true if it was set.
fn take_mark(frame: Frame) -> bool {
    mark_of(frame).is_some_and(|(word, bit)| word.fetch_and(!bit, Ordering::AcqRel) & bit != 0)
}

/// Called by eviction for each victim with whether it must be written: counts a
/// page the cleaner wrote as saved (clean) or wasted (written again since).
pub fn note_eviction(frame: Frame, is_dirty: bool) {
    if take_mark(frame) {
        let counter = if is_dirty { &NR_WASTED } else { &NR_CLEAN_AT_EVICTION };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Called when a user frame is freed (it leaves the policy): forgets its mark.
pub fn forget(frame: Frame) {
    take_mark(frame);
}

extern "C" fn cleaner_main() -> ! {
    let bounce = BOUNCE_PAGES.get().map_or(&[][..], |pages| &pages[..]);
    loop {
        QUEUE.wait_until(|| is_enabled() && IS_KICKED.swap(false, Ordering::AcqRel));
        IS_IN_PASS.store(true, Ordering::Release);
        clean_pass(bounce);
        crate::mm::swap::kick_wiper(); // slots the pass freed (see kswapd's)
        IS_IN_PASS.store(false, Ordering::Release);
        NR_PASSES.fetch_add(1, Ordering::AcqRel);
        // At most one pass a tick: a pass probes LOOKAHEAD pages even when it
        // writes nothing, and faults kick the cleaner at every fault under pressure.
        let next_tick = crate::arch::timer::ticks() + 1;
        let _ = QUEUE.wait_until_deadline(|| false, next_tick);
    }
}

/// What one look at the upcoming victims found.
struct Upcoming {
    /// Dirty anonymous pages, in eviction order.
    dirty: [Frame; LOOKAHEAD],
    nr_dirty: usize,
    /// Pages looked at that the policy will take when reached (not used since it
    /// last looked, for a policy that spares those).
    nr_seen: usize,
    /// Dirty file pages among them.
    nr_dirty_file: usize,
}

/// One pass: cleans the dirty anonymous pages among the next [`LOOKAHEAD`] victims,
/// a cluster at a time, within the rate limit.
fn clean_pass(bounce: &[OwnedFrames]) {
    // A kick may be old (memory was short when a fault saw it): work only while
    // memory still is, so that an idle machine's dirty file pages wait for their
    // expiry as the writeback thread's rules say.
    if !is_memory_short() {
        return;
    }
    let upcoming = find_dirty_upcoming();
    if upcoming.nr_dirty_file > 0 {
        NR_FILE_WAKEUPS.fetch_add(1, Ordering::Relaxed);
        super::writeback::wake(); // the writeback thread writes files: not done twice
    }
    if upcoming.nr_dirty * MIN_DIRTY_SHARE < upcoming.nr_seen {
        return;
    }
    let mut tick = crate::arch::timer::ticks();
    let mut nr_this_tick = 0;
    for cluster in upcoming.dirty[..upcoming.nr_dirty].chunks(bounce.len()) {
        if !is_enabled() || !has_spare_slots() {
            return;
        }
        if nr_this_tick >= MAX_PAGES_PER_TICK {
            let _ = QUEUE.wait_until_deadline(|| false, tick + 1);
            nr_this_tick = 0;
        }
        if crate::arch::timer::ticks() != tick {
            tick = crate::arch::timer::ticks();
            nr_this_tick = 0;
        }
        for (&frame, outcome) in cluster.iter().zip(clean_many(cluster, bounce)) {
            if outcome == Cleaned::Written {
                nr_this_tick += 1;
                NR_CLEANED.fetch_add(1, Ordering::Relaxed);
                if let Some((word, bit)) = mark_of(frame) {
                    word.fetch_or(bit, Ordering::AcqRel);
                }
            }
        }
    }
}

/// Returns true if free frames are below twice the `high` watermark (where faults
/// kick the cleaner).
fn is_memory_short() -> bool {
    frame::nr_free_frames() < 2 * super::reclaim::watermarks().high
}

/// Returns true if more than an eighth of the swap slots are free: the rest is
/// left to reclaim.
fn has_spare_slots() -> bool {
    let (nr_free, nr_total) = super::swap::slot_counts();
    nr_free > nr_total / 8
}

/// Reads the next victims from the policy and keeps the dirty ones.
fn find_dirty_upcoming() -> Upcoming {
    let mut pfns = [0u64; LOOKAHEAD];
    let (nr_named, spares_referenced) = super::reclaim::upcoming_victims(&mut pfns);
    let mut upcoming = Upcoming { dirty: [Frame::from_pfn(0); LOOKAHEAD], nr_dirty: 0, nr_seen: 0, nr_dirty_file: 0 };
    for &pfn in &pfns[..nr_named] {
        let frame = Frame::from_pfn(pfn);
        if spares_referenced && super::reclaim::is_referenced(frame) {
            continue; // it gets a second chance: cleaning it now would likely be wasted
        }
        upcoming.nr_seen += 1;
        let flags = frame::with_desc(frame, |d| (d.state() == FrameState::User && !super::pcp::is_listed(frame)).then(|| d.flags()));
        let Some(flags) = flags else { continue };
        if flags.contains(FrameFlags::FILE) {
            upcoming.nr_dirty_file += usize::from(flags.contains(FrameFlags::DIRTY));
            continue;
        }
        if super::reclaim::is_anonymous_page_dirty(frame) {
            upcoming.dirty[upcoming.nr_dirty] = frame;
            upcoming.nr_dirty += 1;
        }
    }
    upcoming
}
