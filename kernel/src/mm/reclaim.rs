//! Reclaim: taking frames back from user pages, by swapping them out, when free
//! memory runs low; the replacement policy that chooses which.
//!
//! # Watermarks
//!
//! ```text
//!  free frames
//!    ^
//!    |  high ─────  background reclaim stops here
//!    |  low  ─────  below this, a fault or fork wakes kswapd
//!    |  min  ─────  user-page allocations fail below this (frame::set_reserves):
//!    |              the rest is the kernel's (heap, page tables, stacks)
//!    |  min/2 ───  page tables and kernel stacks fail below this: the rest is the
//!    |              heap's, so reclaim (which allocates) can always run
//!    0
//! ```
//! `min` is 1/128 of memory (64..=1024 frames), fixed at boot; `low` = min + gap
//! and `high` = min + 2 gap, where gap = max(min, managed frames ×
//! `watermark_scale_factor` / 10000) (`mm_core::watermarks`, Linux's rule with our
//! floor). The factor (default 10) is the knob `/proc/sys/vm/watermark_scale_factor`:
//! [`set_watermark_scale_factor`] recomputes `low` and `high` at once.
//! Reclaim runs with no lock held, at the two moments Linux covers:
//! - **background** ([`balance`], in the `kswapd` kernel thread): every user page
//!   fault and fork checks the free frames ([`wake_kswapd`]); below `low` it wakes
//!   kswapd, which reclaims until `high` when it next gets the CPU, and waits on its
//!   `WaitQueue` again (a wake-up that arrives meanwhile is kept in a flag, not lost);
//! - **direct** ([`direct_reclaim`]): when a user-page allocation failed anyway, the
//!   fault path reclaims a batch itself and retries; if nothing could be freed (swap
//!   full too) the OOM killer chooses a victim (`oom.rs`).
//!
//! # Which page: the replacement policy
//!
//! Every resident user frame is tracked by one `mm_core::reclaim` policy (chosen
//! with `policy=NAME` on the command line, one of [`PolicyKind::ALL`]; `clock`,
//! second chance, by default; `twohand_spread=N` sets the two-handed clock's
//! spread) and the victim is whatever it picks. [`set_policy`] switches policy at
//! run time, handing every tracked page over to the new one
//! (`mm_core::reclaim::hand_over`). The policy's ring is threaded
//! through the frame table ([`frame::FrameTableLinks`]): tracking a frame allocates
//! nothing, at any RAM size. The policy never touches page
//! tables: it asks [`RmapProbe`], which reads the hardware Accessed and Dirty bits
//! in *every* PTE that maps the frame, found through the reverse map (the PTE at
//! the frame's page in each space of its fork family), and clears Accessed
//! (with the TLB flush that makes the MMU set it again on the next access). So
//! the clock's second chance is the real one: a page touched since the hand last
//! passed is skipped and its bit cleared.
//!
//! [`pageout`] is `madvise(MADV_PAGEOUT)`: it swaps out the resident pages of a
//! range now, through `swap::evict`, which unmaps each page from *every* process
//! that maps it, so a page shared copy-on-write after `fork` goes out too. (Linux
//! skips pages mapped by other processes; we do not, so tests can put shared pages
//! in swap on purpose.)
//!
//! Files: this one holds the watermarks, the policy and the eviction passes;
//! `reclaim/probe.rs` the [`RmapProbe`]; `reclaim/kswapd.rs` the background thread;
//! `reclaim/record.rs` the reference-string recorder (`run=NAME record`);
//! `reclaim/resident_limit.rs` the per-process resident-set limits of `policy=vms`.
//!
//! Locks: [`POLICY`] (see the lock order in [`crate::mm`]); tracking happens at
//! fault time under the space lock; the probe, called with [`POLICY`] held, only
//! `try_lock`s spaces. Reclaim itself is called with no lock held.
#![deny(unsafe_code)]

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use mm_core::reclaim::{ActiveInactive, BufferedFifo, Clock, Fifo, LruApprox, Random, ReplacementPolicy, SegmentedFifo, TwoHandClock, TwoQueue};

use super::addr_space::VmError;
use super::frame::{self, FrameFlags, FrameState, FrameTableLinks};
use super::rmap::{FamilyPage, SpaceRef};
use super::page_cache::{self, FileEvicted};
use super::swap::{self, Evicted};
use super::vmstat::{self, SwapEvent};
use super::Frame;
use crate::sync::IrqMutex;

mod buffering;
mod kswapd;
mod probe;
pub mod record;
pub mod resident_limit;
mod switch;

pub use buffering::{note_soft_fault, refill_second_chance_lists};
pub use kswapd::{
    balance, hold_kswapd_in_pass_for_test, is_kswapd_held_for_test, is_kswapd_kicked, kswapd_state, start_kswapd,
    wake_kswapd,
};
pub use probe::RmapProbe;
#[doc(hidden)]
pub use probe::set_after_candidates_fn_for_test;
pub use probe::{BUSY_PER_PICK, nr_busy};
pub use switch::SWITCH_BATCH;
use switch::Installed;

/// A replacement policy the kernel can run.
pub type Policy = Box<dyn ReplacementPolicy + Send>;

/// The policy tracking every resident user frame (by pfn).
static POLICY: IrqMutex<Option<Installed>> = IrqMutex::new_ranked(crate::sync::LockRank::ReclaimPolicy, None);
/// The watermarks, in frames: `min` is 0 until [`init`] sets them. Each is read on
/// its own (a reader between two stores of a knob write sees one old and one new
/// mark, which only moves a threshold by the difference for that one check).
static WATERMARK_MIN: AtomicU64 = AtomicU64::new(0);
static WATERMARK_LOW: AtomicU64 = AtomicU64::new(0);
static WATERMARK_HIGH: AtomicU64 = AtomicU64::new(0);
/// `/proc/sys/vm/watermark_scale_factor`, in 1/10000 of memory.
static WATERMARK_SCALE_FACTOR: AtomicU64 = AtomicU64::new(mm_core::watermarks::DEFAULT_SCALE_FACTOR);
/// Policy switches since boot.
/// The index in [`PolicyKind::ALL`] of the policy in force (its name for `/proc`).
static CURRENT_KIND: AtomicUsize = AtomicUsize::new(0);
static NR_POLICY_SWITCHES: AtomicU64 = AtomicU64::new(0);
/// Pages rescued from second-chance lists by policies no longer installed.
static NR_RESCUED_BY_OLD_POLICIES: AtomicU64 = AtomicU64::new(0);
/// The two-handed clock's spread, in pages (`twohand_spread=N`).
static TWO_HAND_SPREAD: AtomicUsize = AtomicUsize::new(DEFAULT_TWO_HAND_SPREAD);
/// The two-handed clock's default spread: 1/4 of the tracked pages of the `thrash`
/// benchmark at 64 MiB.
const DEFAULT_TWO_HAND_SPREAD: usize = 1024;
/// The seed of the random policy: the same victims on every boot.
const RANDOM_SEED: u64 = 0x9e37_79b9_7f4a_7c15;
/// When the policy last aged its pages (uptime ms), for `lru`.
static LAST_AGING_MS: AtomicU64 = AtomicU64::new(0);
/// How often aging may run (it visits every tracked page).
const AGING_INTERVAL_MS: u64 = 100;
/// Pages direct reclaim tries to free at least.
const DIRECT_BATCH: u64 = 32;
/// Victims evicted together: their writes go to adjacent slots in one disk request
/// (Linux's `SWAP_CLUSTER_MAX` is 32 too).
const SWAP_CLUSTER: usize = blockdev::MAX_PAGES_PER_REQUEST;

/// The free-frame watermarks (see the module docs).
pub use mm_core::watermarks::Watermarks;

/// The policies selectable with `policy=NAME` on the command line or [`set_policy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    /// The second-chance clock: the default.
    Clock,
    /// The enhanced clock: by (referenced, dirty) class, clean pages first.
    EnhancedClock,
    /// First in, first out.
    Fifo,
    /// LRU approximated by aging the Accessed bits.
    Lru,
    /// A page at random (seeded): the baseline.
    Random,
    /// The two-handed clock: the front hand clears, the back hand evicts.
    TwoHandClock,
    /// Linux-style active and inactive lists.
    ActiveInactive,
    /// VAX/VMS segmented FIFO with clean and dirty second-chance lists.
    SegmentedFifo,
    /// The same with true page buffering: listed pages are unmapped, a fault rescues.
    Vms,
    /// 2Q: new pages on a short probation queue, promoted to a clock if used there.
    TwoQueue,
}

impl PolicyKind {
    /// Every kind, in table order.
    pub const ALL: [PolicyKind; 10] = [
        PolicyKind::Clock,
        PolicyKind::EnhancedClock,
        PolicyKind::Fifo,
        PolicyKind::Lru,
        PolicyKind::Random,
        PolicyKind::TwoHandClock,
        PolicyKind::ActiveInactive,
        PolicyKind::SegmentedFifo,
        PolicyKind::Vms,
        PolicyKind::TwoQueue,
    ];

    /// Parses a `policy=` value.
    pub fn parse(name: &str) -> Option<PolicyKind> {
        PolicyKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Returns the position of this kind in [`ALL`](Self::ALL).
    fn index(self) -> usize {
        PolicyKind::ALL.iter().position(|&k| k == self).unwrap_or(0)
    }

    /// Returns the command-line name.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Clock => "clock",
            PolicyKind::EnhancedClock => "eclock",
            PolicyKind::Fifo => "fifo",
            PolicyKind::Lru => "lru",
            PolicyKind::Random => "random",
            PolicyKind::TwoHandClock => "twohand",
            PolicyKind::ActiveInactive => "lists",
            PolicyKind::SegmentedFifo => "segfifo",
            PolicyKind::Vms => "vms",
            PolicyKind::TwoQueue => "2q",
        }
    }

    fn build(self) -> Policy {
        match self {
            PolicyKind::Clock => Box::new(Clock::with_links(FrameTableLinks, false)),
            PolicyKind::EnhancedClock => Box::new(Clock::with_links(FrameTableLinks, true)),
            PolicyKind::Fifo => Box::new(Fifo::with_links(FrameTableLinks)),
            PolicyKind::Lru => Box::new(LruApprox::with_links(FrameTableLinks)),
            PolicyKind::Random => Box::new(Random::with_links(FrameTableLinks, RANDOM_SEED)),
            PolicyKind::TwoHandClock => {
                Box::new(TwoHandClock::with_links(FrameTableLinks, TWO_HAND_SPREAD.load(Ordering::Relaxed)))
            }
            PolicyKind::ActiveInactive => Box::new(ActiveInactive::with_links(FrameTableLinks)),
            PolicyKind::SegmentedFifo => Box::new(SegmentedFifo::with_links(FrameTableLinks)),
            PolicyKind::Vms => Box::new(BufferedFifo::with_links(FrameTableLinks)),
            PolicyKind::TwoQueue => Box::new(TwoQueue::with_links(FrameTableLinks)),
        }
    }
}

/// Sets the watermarks from the memory size, reserves `min` for the kernel, and
/// builds the policy the command line asks for. Called once at boot.
pub fn init() {
    let managed = frame::buddyinfo().nr_managed_frames;
    let min = mm_core::watermarks::min_for(managed);
    let marks = store_watermarks(min, WATERMARK_SCALE_FACTOR.load(Ordering::Relaxed));
    frame::set_reserves(marks.min, marks.min / 2);
    let nr_blocks = super::heap::refill_pool();
    log::debug!("reclaim: heap emergency pool of {nr_blocks} blocks");
    let kind = policy_from_cmdline();
    install(kind);
    log::info!("reclaim: policy {}, watermarks min {} low {} high {} frames", kind.name(), marks.min, marks.low, marks.high);
}

/// Returns the policy the command line names (`policy=...`), or the default; sets
/// the two-handed clock's spread from `twohand_spread=N`.
fn policy_from_cmdline() -> PolicyKind {
    if let Some(word) = crate::cmdline::value("twohand_spread") {
        match word.parse::<usize>() {
            Ok(spread) => TWO_HAND_SPREAD.store(spread, Ordering::Relaxed),
            Err(_) => log::warn!("reclaim: twohand_spread={word:?} is not a number: using {DEFAULT_TWO_HAND_SPREAD}"),
        }
    }
    let Some(word) = crate::cmdline::value("policy") else {
        return PolicyKind::Clock;
    };
    PolicyKind::parse(word).unwrap_or_else(|| {
        log::warn!("reclaim: unknown policy {word:?}: using clock");
        PolicyKind::Clock
    })
}

fn install(kind: PolicyKind) {
    switch::init();
    *POLICY.lock() = Some(Installed::new(kind.build()));
    CURRENT_KIND.store(kind.index(), Ordering::Relaxed);
}

/// Returns the kind of the policy in force (its `policy=` name: `name()`).
pub fn policy_kind() -> PolicyKind {
    PolicyKind::ALL[CURRENT_KIND.load(Ordering::Relaxed)]
}

/// Switches to policy `kind` at any time, even while processes swap; returns the
/// number of pages handed over.
///
/// The new policy is built first (on the heap, no lock held) and made current at
/// once: pages made resident from then on go to it. The pages the old one tracks
/// move to it in the old one's eviction order (no page table is touched, so the
/// Accessed bits carry over), [`SWITCH_BATCH`] at a time, with the policy lock
/// dropped between batches so that interrupts are never off for long
/// (`reclaim/switch.rs` says how each page's holder is known meanwhile). No
/// resident page is ever untracked. The old policy is freed after the lock is
/// dropped. Returns once every page has moved; one switch at a time (a second
/// caller yields until the first is done, so call it with no lock held, from a
/// task).
pub fn set_policy(kind: PolicyKind) -> usize {
    switch_policy(kind, true)
}

/// Switches to policy `kind` moving every page in one hold of the policy lock, as
/// [`set_policy`] did before it moved them in batches: kept to measure the
/// difference (`tests/policies.rs`), and used when the switch bitmap is missing.
pub fn set_policy_at_once(kind: PolicyKind) -> usize {
    switch_policy(kind, false)
}

/// Returns the longest time the last policy switch held the policy lock at a
/// stretch (with interrupts off), in nanoseconds.
pub fn last_switch_longest_hold_ns() -> u64 {
    LAST_SWITCH_LONGEST_HOLD_NS.load(Ordering::Relaxed)
}

static LAST_SWITCH_LONGEST_HOLD_NS: AtomicU64 = AtomicU64::new(0);

/// Takes the policy lock, runs `f`, and adds the time held to `longest_ns`.
fn timed_hold<R>(longest_ns: &mut u64, f: impl FnOnce(&mut Option<Installed>) -> R) -> R {
    let mut guard = POLICY.lock();
    let start = crate::arch::timer::rdtsc();
    let result = f(&mut guard);
    *longest_ns = (*longest_ns).max(crate::arch::timer::cycles_to_ns(crate::arch::timer::rdtsc() - start));
    drop(guard);
    result
}

fn switch_policy(kind: PolicyKind, is_batched: bool) -> usize {
    while IS_SWITCHING.swap(true, Ordering::AcqRel) {
        crate::sync::hooks::yield_now();
    }
    let new_policy = kind.build();
    let mut nr_moved = 0;
    let mut longest_ns = 0;
    let begun = timed_hold(&mut longest_ns, |installed| {
        match installed.as_mut() {
            None => {
                *installed = Some(Installed::new(new_policy));
                Ok(())
            }
            Some(installed) if is_batched => installed.begin_switch(new_policy),
            Some(_) => Err(new_policy),
        }
    });
    let old_policy = match begun {
        Ok(()) => loop {
            let (nr, old, is_done) = timed_hold(&mut longest_ns, |installed| match installed.as_mut() {
                None => (0, None, true),
                Some(installed) => {
                    let (nr, old) = installed.hand_over_batch(SWITCH_BATCH);
                    let is_done = old.is_some() || !installed.is_switching();
                    (nr, old, is_done)
                }
            });
            nr_moved += nr;
            if is_done {
                break old;
            }
            // The lock is dropped: interrupts come in, and other tasks run.
            crate::sync::hooks::yield_now();
        },
        // Asked for, or no bitmap (a switch under way IS_SWITCHING rules out): at once.
        Err(new_policy) => {
            let (old, nr) = timed_hold(&mut longest_ns, |installed| {
                installed.as_mut().map(|i| i.replace_at_once(new_policy)).expect("installed")
            });
            nr_moved = nr;
            Some(old)
        }
    };
    CURRENT_KIND.store(kind.index(), Ordering::Relaxed);
    if let Some(old) = &old_policy {
        NR_RESCUED_BY_OLD_POLICIES.fetch_add(old.nr_rescued(), Ordering::Relaxed);
    }
    drop(old_policy);
    NR_POLICY_SWITCHES.fetch_add(1, Ordering::Relaxed);
    LAST_SWITCH_LONGEST_HOLD_NS.store(longest_ns, Ordering::Relaxed);
    IS_SWITCHING.store(false, Ordering::Release);
    nr_moved
}

/// True while a [`set_policy`] is under way (one at a time).
static IS_SWITCHING: AtomicBool = AtomicBool::new(false);

/// Returns the number of policy switches since boot.
pub fn nr_policy_switches() -> u64 {
    NR_POLICY_SWITCHES.load(Ordering::Relaxed)
}

/// Returns the pages rescued from second-chance lists without I/O since boot, by
/// every policy that had such lists (the segmented FIFO's page buffering).
pub fn nr_rescued() -> u64 {
    let current = POLICY.lock().as_ref().map_or(0, |p| p.nr_rescued());
    NR_RESCUED_BY_OLD_POLICIES.load(Ordering::Relaxed) + current
}

/// Returns the policy's name.
pub fn policy_name() -> &'static str {
    POLICY.lock().as_ref().map_or("none", |p| p.current().name())
}

/// Computes the watermarks for reserve `min` and `scale_factor` and makes them the
/// ones in force; returns them.
fn store_watermarks(min: u64, scale_factor: u64) -> Watermarks {
    let managed = frame::buddyinfo().nr_managed_frames;
    let marks = mm_core::watermarks::compute(managed, min, scale_factor);
    WATERMARK_LOW.store(marks.low, Ordering::Relaxed);
    WATERMARK_HIGH.store(marks.high, Ordering::Relaxed);
    WATERMARK_MIN.store(marks.min, Ordering::Release);
    marks
}

/// Returns the watermarks.
pub fn watermarks() -> Watermarks {
    try_watermarks().expect("reclaim: used before init")
}

/// Returns the watermarks, or `None` before `init` set them.
#[inline]
pub fn try_watermarks() -> Option<Watermarks> {
    let min = WATERMARK_MIN.load(Ordering::Acquire);
    (min != 0).then(|| Watermarks {
        min,
        low: WATERMARK_LOW.load(Ordering::Relaxed),
        high: WATERMARK_HIGH.load(Ordering::Relaxed),
    })
}

/// Returns `watermark_scale_factor` (in 1/10000 of memory).
pub fn watermark_scale_factor() -> u64 {
    WATERMARK_SCALE_FACTOR.load(Ordering::Relaxed)
}

/// Sets `watermark_scale_factor` and recomputes `low` and `high` from it (Linux's
/// `watermark_scale_factor_sysctl_handler`); `min` stays. A factor outside
/// `mm_core::watermarks::SCALE_FACTOR_RANGE` is refused (`false`), changing nothing.
/// The next fault that finds free frames below the new `low` wakes kswapd.
pub fn set_watermark_scale_factor(factor: u64) -> bool {
    if !mm_core::watermarks::SCALE_FACTOR_RANGE.contains(&factor) {
        return false;
    }
    WATERMARK_SCALE_FACTOR.store(factor, Ordering::Relaxed);
    let Some(Watermarks { min, .. }) = try_watermarks() else { return true };
    // No lock: two writers at once each recompute until the marks they stored are
    // those of the factor in force, so the last one's marks stay.
    loop {
        let factor = WATERMARK_SCALE_FACTOR.load(Ordering::Relaxed);
        let marks = store_watermarks(min, factor);
        if WATERMARK_SCALE_FACTOR.load(Ordering::Relaxed) == factor {
            log::info!("reclaim: watermark_scale_factor {factor}: min {} low {} high {} frames", marks.min, marks.low, marks.high);
            return true;
        }
    }
}

/// Returns the (active, inactive) list sizes if the policy in force has those
/// lists (`lists`), else `None`.
pub fn active_inactive_sizes() -> Option<(usize, usize)> {
    // Mid-switch the pages are split between two policies: no list sizes then.
    POLICY.lock().as_ref().filter(|p| !p.is_switching()).and_then(|p| p.current().active_inactive_sizes())
}

/// Returns the number of frames the policy tracks.
pub fn nr_tracked() -> usize {
    POLICY.lock().as_ref().map_or(0, |p| p.nr_tracked())
}

/// Returns true if the policy tracks `frame` (false when no policy is set up).
pub fn is_tracked(frame: Frame) -> bool {
    POLICY.lock().as_mut().is_some_and(|p| p.is_tracked(frame.pfn()))
}

/// Starts tracking a user frame that just became resident.
///
/// A frame that is no longer a live user frame is not tracked: callers track after
/// dropping their locks (a swap-in, a failed eviction), and meanwhile the page's
/// last user may have freed it. The ring lives in the frame table, so linking a
/// free frame would corrupt the buddy's free lists; with the policy lock held (IRQs
/// off, one CPU) the frame cannot be freed between the check and the link.
pub fn track(frame: Frame) {
    if let Some(policy) = POLICY.lock().as_mut()
        && is_live_user_frame(frame)
    {
        policy.track(frame.pfn());
    }
}

/// Tracks `frame` without [`track`]'s liveness check. Only for the audit's own
/// tests (`tests/audit.rs`), which plant a frame nothing maps in the policy to see
/// the audit catch it; the frame must be an allocated user frame the caller owns.
#[doc(hidden)]
pub fn track_unchecked_for_audit_test(frame: Frame) {
    if let Some(policy) = POLICY.lock().as_mut() {
        debug_assert_eq!(frame::with_desc(frame, |d| d.state()), frame::FrameState::User, "not a user frame");
        policy.track(frame.pfn());
    }
}

/// Records the first mapping of a user frame the caller has just allocated (a
/// fault's new page, a COW copy: `frame::map_new_user_page`) and starts tracking
/// it: the fault path's [`track`], without its two checks. The caller holds the
/// frame's only reference under its address-space lock, so the frame is live, and
/// a frame fresh from the allocator is on no ring (`frame::free` refuses a tracked
/// frame in debug builds, and debug builds check it here too).
///
/// Both under the policy lock: a [`track`] by another CPU with a stale frame
/// number (a swap-in or a failed eviction whose page was freed meanwhile) sees the
/// frame either unmapped (not live: left alone) or mapped and tracked (a no-op);
/// never mapped and not yet tracked, which it would track and this would find
/// tracked already.
///
/// The mapping is recorded in the policy's own hold of the frame lock for the ring
/// insert (`frame::defer_first_mapping`): one hold of each lock.
pub fn track_new(frame: Frame, at: FamilyPage) {
    let mut policy = POLICY.lock();
    let Some(policy) = policy.as_mut() else {
        frame::map_new_user_page(frame, at);
        return;
    };
    frame::defer_first_mapping(frame, at);
    policy.track_new(frame.pfn());
    frame::finish_first_mapping();
    debug_assert!(is_live_user_frame(frame), "reclaim::track_new: {frame:?} is not a live user frame");
}

/// Stops tracking a user frame (freed, or about to be evicted by PAGEOUT).
pub fn untrack(frame: Frame) {
    if let Some(policy) = POLICY.lock().as_mut() {
        policy.untrack(frame.pfn());
    }
    super::cleaner::forget(frame);
}

/// Stops tracking each of `frames` (freed by munmap or exit: `rmap::unmap_batch`),
/// as [`untrack`] does for one, with the policy lock taken once, and the frame
/// lock once if no switch of policy is under way.
pub fn untrack_all(frames: &[Frame]) {
    if frames.is_empty() {
        return;
    }
    let mut pfns = [0u64; 64];
    for chunk in frames.chunks(pfns.len()) {
        pfns.iter_mut().zip(chunk).for_each(|(pfn, frame)| *pfn = frame.pfn());
        if let Some(policy) = POLICY.lock().as_mut() {
            policy.untrack_all(&pfns[..chunk.len()]);
        }
    }
    for &frame in frames {
        super::cleaner::forget(frame);
    }
}

/// Fills `out` with the pfns of the policy's next likely victims, without changing
/// anything (`ReplacementPolicy::upcoming_victims`); returns how many. For the
/// background cleaner.
/// Also returns whether the policy spares the pages used since it last looked
/// (`ReplacementPolicy::spares_referenced_pages`).
pub fn upcoming_victims(out: &mut [u64]) -> (usize, bool) {
    POLICY.lock().as_mut().map_or((0, false), |p| p.upcoming_victims(out))
}

/// Returns true if a PTE mapping `frame` has its Accessed bit set (or the
/// working-set sampler saw it used); changes nothing. Call with no lock held.
pub fn is_referenced(frame: Frame) -> bool {
    let is_referenced = mm_core::reclaim::PageProbe::is_referenced(&mut RmapProbe, frame.pfn());
    probe::release_deferred();
    is_referenced
}

/// Returns true if evicting anonymous `frame` needs a write: it has no slot yet,
/// its slot is stale (flag DIRTY), or a PTE wrote it since (the probe's answer).
/// Call with no lock held (it only `try_lock`s spaces).
pub fn is_anonymous_page_dirty(frame: Frame) -> bool {
    let is_dirty = mm_core::reclaim::PageProbe::is_dirty(&mut RmapProbe, frame.pfn());
    probe::release_deferred();
    is_dirty
}

/// What a reclaim pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReclaimReport {
    /// Victims the policy picked.
    pub nr_scanned: u64,
    /// Frames freed after writing them to swap.
    pub nr_written: u64,
    /// Frames freed without I/O (clean swap-cache pages, clean file pages).
    pub nr_clean: u64,
    /// Page-cache frames freed after writing them to their files (never to swap).
    pub nr_file_written: u64,
    /// Victims that could not be evicted (swap full, busy, write error).
    pub nr_kept: u64,
}

impl ReclaimReport {
    /// Returns the frames freed.
    pub fn nr_freed(&self) -> u64 {
        self.nr_written + self.nr_clean + self.nr_file_written
    }
}

/// Returns true if `frame` is still a user frame worth tracking after a failed
/// eviction: a user frame with a reference and a place (mapped, in the swap cache
/// or in a page cache), and not a free frame on a per-CPU list (whose descriptor
/// looks like a fresh allocation: `pcp::is_listed`). A frame allocated on another
/// CPU and not mapped yet has no place: [`track_new`] tracks it when it maps it.
fn is_live_user_frame(frame: Frame) -> bool {
    frame::with_desc(frame, |d| {
        let has_place = d.map_count() > 0 || d.flags().intersects(FrameFlags::SWAP_CACHE | FrameFlags::FILE);
        d.state() == FrameState::User && d.refcount() > 0 && has_place && !super::pcp::is_listed(frame)
    })
}

/// Address spaces whose pages reclaim takes before asking the policy, the first
/// first: load control's deactivated processes (`proc::load_control`, the last
/// out first), so that the active ones keep theirs. A fixed array: reclaim takes
/// nothing from the heap.
static EVICT_FIRST: IrqMutex<[Option<SpaceRef>; 8]> = IrqMutex::new([const { None }; 8]);

/// Sets the spaces reclaim evicts from first (at most 8; empty: none). Call with
/// no lock held.
pub fn set_evict_first(spaces: &[SpaceRef]) {
    let mut new: [Option<SpaceRef>; 8] = [const { None }; 8];
    for (slot, space) in new.iter_mut().zip(spaces) {
        *slot = Some(space.clone());
    }
    // The old references are dropped here, after the lock.
    let _old = core::mem::replace(&mut *EVICT_FIRST.lock(), new);
}

/// Evicts present pages of the [`set_evict_first`] spaces, a cluster from each
/// in turn, until `nr_wanted` frames are freed in `report`, whatever their
/// Accessed bits say (a parked process references nothing). Call with no lock held.
fn evict_first(nr_wanted: u64, report: &mut ReclaimReport) {
    let spaces = EVICT_FIRST.lock().clone();
    let zero = super::fault::zero_frame();
    for space in spaces.iter().flatten() {
        if report.nr_freed() >= nr_wanted {
            break;
        }
        let nr_batch = (nr_wanted - report.nr_freed()).min(SWAP_CLUSTER as u64) as usize;
        let mut frames = [Frame::from_pfn(0); SWAP_CLUSTER];
        let mut nr_frames = 0;
        space.lock().for_each_user_leaf(|_, pte, size| {
            if nr_frames < nr_batch && size == mm_core::pagetable::PageSize::Size4KiB && pte.is_present() && pte.frame() != zero {
                frames[nr_frames] = pte.frame();
                nr_frames += 1;
            }
        });
        for &frame in &frames[..nr_frames] {
            untrack(frame);
        }
        report.nr_scanned += nr_frames as u64;
        evict_victims(&frames[..nr_frames], report, None);
    }
}

/// Asks the policy for a victim (aging first if it is time).
fn pick_victim() -> Option<Frame> {
    let victim = {
        let mut policy = POLICY.lock();
        let policy = policy.as_mut()?;
        let now = crate::arch::timer::uptime_ms();
        if now.saturating_sub(LAST_AGING_MS.load(Ordering::Relaxed)) >= AGING_INTERVAL_MS {
            LAST_AGING_MS.store(now, Ordering::Relaxed);
            policy.on_tick();
        }
        probe::start_pick();
        let victim = policy.pick_victim().map(Frame::from_pfn);
        probe::end_pick();
        victim
    };
    probe::release_deferred(); // spaces whose exit the probe saw (`reclaim/probe.rs`)
    victim
}

/// Picks the policy's next victim and tracks it again at once: what a reclaim pass
/// would pick now, changing nothing but the policy's hand. Only for tests.
#[doc(hidden)]
pub fn pick_and_keep_for_test() -> Option<Frame> {
    let victim = pick_victim()?;
    track(victim);
    Some(victim)
}

/// Evicts policy victims, up to [`SWAP_CLUSTER`] at a time, until `nr_wanted`
/// frames are freed or the policy has gone round twice without success. Once swap
/// has no free slot, only pages that already have one (the swap cache) can go:
/// then the cache is reclaimed directly instead of scanning every page for the few
/// that could. Call with no lock held.
///
/// The victims of a batch sit in an array on the stack: reclaim runs when memory is
/// shortest, so it takes nothing from the heap for its own bookkeeping.
pub fn shrink(nr_wanted: u64) -> ReclaimReport {
    let _reclaim = super::heap::enter_reclaim();
    let mut report = ReclaimReport::default();
    let mut budget = 2 * nr_tracked() as u64 + 16;
    let mut victims = [Frame::from_pfn(0); SWAP_CLUSTER];
    let is_swap_full = swap::slot_counts().0 == 0;
    if !is_swap_full {
        evict_first(nr_wanted, &mut report); // load control's parked processes
    }
    while report.nr_freed() < nr_wanted && budget > 0 {
        if is_swap_full && page_cache::nr_pages() == 0 {
            break; // only the swap cache can give frames back (below)
        }
        let batch = (nr_wanted - report.nr_freed()).min(SWAP_CLUSTER as u64) as usize;
        refill_second_chance_lists(); // page buffering (`vms`): nothing for the others
        let mut nr_victims = 0;
        while nr_victims < batch && budget > 0 {
            budget -= 1;
            let Some(victim) = pick_victim() else { break };
            report.nr_scanned += 1;
            vmstat::count(SwapEvent::Scanned);
            victims[nr_victims] = victim;
            nr_victims += 1;
        }
        if nr_victims == 0 {
            break;
        }
        evict_victims(&victims[..nr_victims], &mut report, None);
    }
    if is_swap_full && report.nr_freed() < nr_wanted {
        shrink_swap_cache(nr_wanted, &mut report);
    }
    if report.nr_freed() > 0 {
        super::heap::refill_pool();
    }
    report
}

/// Evicts `victims` (no longer tracked) together and counts the outcomes; a victim
/// that stays is tracked again. Page-cache victims go to their files
/// (`page_cache::reclaim_file_frame`), the others to swap.
fn evict_victims(victims: &[Frame], report: &mut ReclaimReport, mut busy: Option<&mut Vec<Frame>>) {
    let mut anonymous = [Frame::from_pfn(0); SWAP_CLUSTER];
    let mut nr_anonymous = 0;
    for &victim in victims {
        match page_cache::reclaim_file_frame(victim) {
            FileEvicted::NotFile if nr_anonymous < SWAP_CLUSTER => {
                anonymous[nr_anonymous] = victim;
                nr_anonymous += 1;
            }
            FileEvicted::NotFile => evict_anonymous(&[victim], report, busy.as_deref_mut()),
            FileEvicted::Clean => report.nr_clean += 1,
            FileEvicted::Written => report.nr_file_written += 1,
            FileEvicted::Kept => report.nr_kept += 1,
            FileEvicted::Gone => {}
        }
    }
    evict_anonymous(&anonymous[..nr_anonymous], report, busy);
}

/// Swaps out anonymous `victims` together (see [`evict_victims`]).
/// With `busy`, a victim whose space was locked by someone else goes there (not
/// counted, not tracked again) for the caller to retry.
fn evict_anonymous(victims: &[Frame], report: &mut ReclaimReport, mut busy: Option<&mut Vec<Frame>>) {
    if victims.is_empty() {
        return;
    }
    for (&victim, result) in victims.iter().zip(swap::evict_many(victims)) {
        match result {
            Ok(Evicted::Written) => report.nr_written += 1,
            Ok(Evicted::Clean | Evicted::LazyFreed) => report.nr_clean += 1,
            Ok(Evicted::SavedButMappedAgain) => {
                report.nr_kept += 1;
                track(victim);
            }
            Err(e) => {
                // (Room taken fallibly: these callers run when memory is short, and
                // a page with no room to wait is simply kept, as before.)
                if matches!(e, swap::EvictError::Busy)
                    && let Some(busy) = busy.as_deref_mut()
                    && busy.try_reserve(1).is_ok()
                {
                    busy.push(victim);
                    continue;
                }
                report.nr_kept += 1;
                if is_live_user_frame(victim) {
                    track(victim);
                }
            }
        }
    }
}

/// Swap is full: evicts swap-cache pages (each has its slot already; clean ones go
/// without I/O, dirty ones are rewritten to their own slot) until `nr_wanted`
/// frames are freed in all, in slot order. A page used since the last look (an
/// Accessed bit, read and cleared through the reverse map) stays, as the clock's
/// second chance: it goes at a later call if nothing used it meanwhile.
///
/// Without the second chance, pages in use (a process's code and stack, a worker's
/// data) went in slot order and came back at the next instruction: with swap full,
/// kswapd kept free frames above `low` that way, no allocation failed and the OOM
/// killer never ran while three processes thrashed (the `oom` image, one run in ten:
/// minutes of major faults, RSS unchanged). Now, once every cached page is in use,
/// reclaim frees nothing and the fault that needs a frame gets the OOM decision.
fn shrink_swap_cache(nr_wanted: u64, report: &mut ReclaimReport) {
    let mut batch = [Frame::from_pfn(0); SWAP_CLUSTER];
    let mut next_slot = 0;
    'slots: loop {
        let (nr_found, after) = swap::cached_frames_from(next_slot, &mut batch);
        next_slot = after;
        for &frame in &batch[..nr_found] {
            if report.nr_freed() >= nr_wanted {
                break 'slots;
            }
            if frame::with_desc(frame, |d| d.has_flags(FrameFlags::LOCKED)) {
                continue;
            }
            report.nr_scanned += 1;
            vmstat::count(SwapEvent::Scanned);
            if mm_core::reclaim::PageProbe::test_and_clear_referenced(&mut RmapProbe, frame.pfn()) {
                continue;
            }
            untrack(frame);
            evict_victims(&[frame], report, None);
        }
        if nr_found < batch.len() {
            break;
        }
    }
    probe::release_deferred(); // spaces the Accessed-bit reads saw exit
}

/// Runs the swap-full path of [`shrink`] (the swap cache, with its second chance)
/// whether or not swap is full, until `nr_wanted` frames are freed. Only for tests.
#[doc(hidden)]
pub fn shrink_swap_cache_for_test(nr_wanted: u64) -> ReclaimReport {
    let _reclaim = super::heap::enter_reclaim();
    let mut report = ReclaimReport::default();
    shrink_swap_cache(nr_wanted, &mut report);
    report
}

/// Direct reclaims running now (the caller of a failed allocation reclaiming).
static NR_DIRECT_RECLAIMERS: AtomicU64 = AtomicU64::new(0);

/// Returns true if reclaim may write a dirty file page to its file now: not in
/// direct reclaim. Writing through a file system takes heap (its block buffers),
/// and direct reclaim runs when memory is shortest, inside any allocation; so, as
/// Linux does, it leaves dirty file pages to kswapd and the writeback thread
/// (which it wakes) and takes clean pages and anonymous ones.
pub fn may_write_file_pages() -> bool {
    NR_DIRECT_RECLAIMERS.load(Ordering::Relaxed) == 0
}

/// Direct reclaim, after a user-page allocation failed: frees a batch; returns the
/// number of frames freed (0: memory and swap are both exhausted).
pub fn direct_reclaim() -> u64 {
    vmstat::count(SwapEvent::DirectReclaim);
    let Some(marks) = try_watermarks() else { return 0 };
    let nr_free = frame::nr_free_frames();
    NR_DIRECT_RECLAIMERS.fetch_add(1, Ordering::Relaxed);
    let nr_freed = shrink((marks.low.saturating_sub(nr_free)).max(DIRECT_BATCH)).nr_freed();
    NR_DIRECT_RECLAIMERS.fetch_sub(1, Ordering::Relaxed);
    nr_freed
}

/// MADV_PAGEOUT: swaps out the resident pages of `[addr, addr + len)` of `space`.
///
/// Fails only on a bad range; pages that cannot go out (swap full, write error) stay
/// and are counted in the report.
pub fn pageout(space: &SpaceRef, addr: u64, len: u64) -> Result<ReclaimReport, VmError> {
    let frames = {
        let mut space = space.lock();
        // Swap-out works on 4 KiB pages: huge pages in the range are split first,
        // except those a forked space shares, which stay (Linux's MADV_PAGEOUT,
        // too, leaves pages mapped more than once).
        if let Ok((start, end)) = super::addr_space::user_range(addr, len) {
            super::thp::split_exclusive_huge_in(&mut space, start, end).map_err(|_| VmError::NoMemory)?;
        }
        let mut frames = space.resident_frames(addr, len)?;
        frames.retain(|&f| !frame::with_desc(f, |d| d.is_compound_head()));
        frames
    };
    Ok(evict_frames(&frames))
}

/// Evicts `frames` (resident user frames), a cluster at a time, whatever their
/// Accessed bits say; pages that cannot go out stay and are counted as kept.
/// For MADV_PAGEOUT, load control's swap-out of a deactivated process and a memory
/// group's local reclaim. Call with no lock held.
pub fn evict_frames(frames: &[Frame]) -> ReclaimReport {
    let mut report = ReclaimReport::default();
    let mut busy = Vec::new();
    for cluster in frames.chunks(SWAP_CLUSTER) {
        for &frame in cluster {
            untrack(frame);
        }
        report.nr_scanned += cluster.len() as u64;
        evict_victims(cluster, &mut report, Some(&mut busy));
    }
    // A page whose space another CPU holds locked (a fork finishing, a fault, the
    // policy's probe) is tried again for a while: these callers asked for these
    // pages, not for any frames. (Reclaim's own victims are not: another will do.)
    let deadline = crate::arch::timer::uptime_ms() + BUSY_RETRY_MS;
    while !busy.is_empty() && crate::arch::timer::uptime_ms() < deadline {
        crate::sync::hooks::yield_now();
        let again = core::mem::take(&mut busy);
        for cluster in again.chunks(SWAP_CLUSTER) {
            let mut live = [Frame::from_pfn(0); SWAP_CLUSTER];
            let mut nr_live = 0;
            for &frame in cluster.iter().filter(|&&f| is_live_user_frame(f)) {
                live[nr_live] = frame;
                nr_live += 1;
            }
            evict_victims(&live[..nr_live], &mut report, Some(&mut busy));
        }
    }
    for &frame in &busy {
        report.nr_kept += 1;
        if is_live_user_frame(frame) {
            track(frame);
        }
    }
    report
}

/// How long [`evict_frames`] keeps trying pages whose space is busy.
const BUSY_RETRY_MS: u64 = 100;
