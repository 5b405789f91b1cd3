//! Per-CPU page lists in front of the buddy allocator (Linux's pcp lists), on by
//! default (`pcp=off` turns them off): most single-frame allocations touch only the
//! running CPU's list, under that CPU's own lock, and never the buddy allocator's
//! global lock (`frame::FRAMES`); a free pushes onto the list in the one hold of
//! `FRAMES` it takes anyway to check the descriptor, with no list lock (the rules
//! are at `PerCpu`).
//!
//! ```text
//!  CPU 0: [User: f7 f3 ..] [PageTable: ..] [Kernel: ..] [Slab: ..]   pop: PCP[0]; push: FRAMES
//!  CPU 1: [User: f9 ..   ] [PageTable: ..] [Kernel: ..] [Slab: ..]   pop: PCP[1]; push: FRAMES
//!            |  ^  batch frames at a time, under FRAMES
//!            v  |
//!        the buddy allocator (FRAMES)
//! ```
//! The sizes are Linux's (`mm_core::pcp::PcpSizes::for_zone`): a list is refilled
//! with `batch` frames when it is empty, and gives `batch` frames back when a free
//! leaves it longer than `high`.
//!
//! **What a frame on a list looks like.** Its descriptor is that of a fresh
//! allocation in the state of its list (refcount 1, `ALLOC_HEAD`, order 0: the free
//! path resets it with `BuddyAllocator::recycle_single` under the frame lock it
//! already holds to check the free), so handing it out again writes no descriptor:
//! that is why there is one list per state (user pages, page tables, kernel pages,
//! slab pages). What says "free" is a bit per frame beside the frame table
//! (`is_listed`, Linux's refcount 0 on a pcp page): set under the frame lock
//! in the same hold that checks and resets the descriptor (a free, or a refill), and
//! cleared by the pop with one atomic instruction under this CPU's list lock (or by
//! a drain, under both locks). So a
//! scan of descriptors under the frame lock that finds the bit clear can trust the
//! descriptor, and one that finds it set skips a free frame: reclaim's
//! `is_live_user_frame` (which, before the bit, re-tracked a free listed frame after
//! a failed eviction and corrupted the policy's ring: the `memcg` image's "set_next
//! of a frame not on the ring"), the censuses of `frame.rs` (meminfo's PageTables,
//! the audit's counts, compaction's block census), kpageflags, `explain`, the
//! cleaner, and this module's own check.
//!
//! **Free memory.** Listed frames are free memory: [`nr_listed`] is added to
//! `frame::nr_free_frames` (meminfo's MemFree, the watermarks), and an allocation
//! the buddy allocator cannot satisfy first empties every CPU's lists
//! ([`drain_all`], Linux's `drain_all_pages`) and tries again, so a frame sitting on
//! a list never makes the kernel reclaim or OOM-kill; compaction drains them too
//! before it counts a block's free frames.
//!
//! **Remote frees.** A frame allocated on CPU 0 and freed on CPU 1 goes onto CPU 1's
//! list: a list is a set of free frames, not of frames its CPU allocated. Another
//! CPU takes a list's lock (then `FRAMES`) only to drain or read it.
//!
//! **Double frees.** The free path checks the frame table and the listed bit under
//! the frame lock: a frame freed twice is refused (`FreeError::AlreadyFree`)
//! whichever CPUs free it, with no search of a list.
//!
//! **On by default** since session 7 (`pcp=off`, or [`set_enabled`], turns them
//! off; [`turned_on`] turns them on for a test whatever the command line said).
//! Session 6 left them off after five images failed with them on (a free listed
//! frame accepted for DMA; kpageflags showing a listed frame with no flag, so
//! memmap's free count was not MemFree: it shows BUDDY now; `swap`, `fuzz` and
//! `pressure`, which pass with them on). On one CPU a pair costs fewer instructions
//! with the lists than without (764 against 792, dev build): the free path holds
//! `FRAMES` once (check, reset, mark, push, and past `high` the give-back of
//! `batch` frames) and takes no list lock. Measured in docs/benchmarks.md
//! ("Per-CPU page lists and slab magazines"). Counters per CPU in `/proc/pcpinfo`
//! (Linux shows the same in `/proc/zoneinfo`'s "pagesets") and as sums in
//! `/proc/vmstat`.
//!
//! Locks: `PCP[cpu]` (`Pcp`), just above `frame::FRAMES`, which the refill and the
//! drain take inside it; nothing else is taken under it. The free path takes
//! `FRAMES` alone.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use mm_core::pcp::{PcpList, PcpSizes};

use super::Frame;
use super::frame::{AllocError, BuddyAllocator, FrameState};
use crate::arch::smp::{MAX_CPUS, cpu_id};
use crate::sync::{IrqMutex, IrqMutexGuard, LockRank};

/// The frame states that have a list: the order-0 allocations that are frequent.
const KINDS: [FrameState; 4] = [FrameState::User, FrameState::PageTable, FrameState::Kernel, FrameState::Slab];

/// Returns the index of the list for frames of `state` in [`KINDS`], if it has one.
#[inline]
fn kind_of(state: FrameState) -> Option<usize> {
    match state {
        FrameState::User => Some(0),
        FrameState::PageTable => Some(1),
        FrameState::Kernel => Some(2),
        FrameState::Slab => Some(3),
        _ => None,
    }
}

/// Returns true if single frames of `state` go through the per-CPU lists.
pub fn has_list(state: FrameState) -> bool {
    kind_of(state).is_some()
}

/// One CPU's lists, one per state in [`KINDS`].
struct CpuLists {
    lists: [PcpList; KINDS.len()],
}

/// One CPU's lists and their lock. Who may touch CPU `c`'s lists:
/// (a) CPU `c` itself with its lock held (IRQs off): a pop, a refill;
/// (b) CPU `c` itself with the frame lock held (IRQs off): a free's push, and the
///     drain past `high` that follows it ([`free_locked`]);
/// (c) any CPU holding both this lock and the frame lock: a drain of every list, the
///     audit, a test's search.
/// (a) and (b) run on the same CPU with interrupts off and never inside each other,
/// so they never overlap; (a) and (c) share this lock, (b) and (c) the frame lock.
/// That leaves the free path one lock (the frame lock it takes anyway to check the
/// descriptor) instead of two.
struct PerCpu {
    lock: IrqMutex<()>,
    lists: UnsafeCell<CpuLists>,
}

// SAFETY: `lists` is only reached under the rules of `PerCpu`'s docs, which make
// every access exclusive (the same CPU with interrupts off, or a shared lock).
unsafe impl Sync for PerCpu {}

static PCP: [PerCpu; MAX_CPUS] = [const {
    PerCpu {
        lock: IrqMutex::new_ranked(LockRank::Pcp, ()),
        lists: UnsafeCell::new(CpuLists { lists: [const { PcpList::new() }; KINDS.len()] }),
    }
}; MAX_CPUS];

/// Locks the running CPU's lists; returns the CPU and the guard. The CPU is read
/// again once interrupts are off (the lock turns them off), so a task moved between
/// the two reads never holds another CPU's lock for rule (a).
#[inline]
fn lock_local() -> (usize, IrqMutexGuard<'static, ()>) {
    loop {
        let cpu = cpu_id();
        let guard = PCP[cpu].lock.lock();
        if cpu_id() == cpu {
            return (cpu, guard);
        }
    }
}

/// What one CPU's lists did (`/proc/pcpinfo`, `/proc/vmstat`). Aligned to a cache
/// line, so two CPUs counting their own allocations never share one.
#[repr(align(64))]
struct CpuCounters {
    /// Frames handed out from the list.
    alloc_hits: AtomicU64,
    /// Allocations that found the list empty and refilled it.
    refills: AtomicU64,
    /// Frames freed onto the list.
    frees: AtomicU64,
    /// Frames given back to the buddy allocator because the list passed `high`.
    drained_high: AtomicU64,
    /// Frames given back by [`drain_all`] (memory pressure, compaction, the audit).
    drained_all: AtomicU64,
    /// Frames on the list now (all states), readable without the lock.
    nr_listed: AtomicU64,
}

static COUNTERS: [CpuCounters; MAX_CPUS] = [const {
    CpuCounters {
        alloc_hits: AtomicU64::new(0),
        refills: AtomicU64::new(0),
        frees: AtomicU64::new(0),
        drained_high: AtomicU64::new(0),
        drained_all: AtomicU64::new(0),
        nr_listed: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// `batch` and `high`, set by [`init_listed_bits`] from the sizes [`init`] chose
/// (0 = lists unused: before the listed bits exist).
static BATCH: AtomicUsize = AtomicUsize::new(0);
static HIGH: AtomicUsize = AtomicUsize::new(0);
/// The sizes [`init`] chose for the size of memory, until the lists are usable.
static SIZES_AT_BOOT: spin::Once<PcpSizes> = spin::Once::new();

/// One bit per frame, set while the frame is free on a per-CPU list (or on its way
/// onto one): the "listed" mark the descriptor has no room for (module docs). Set
/// under the frame lock ([`set_listed`]), cleared by the pop without it
/// ([`clear_listed`]); read by every scan that may meet a free frame ([`is_listed`]).
static LISTED: spin::Once<&'static [AtomicU64]> = spin::Once::new();

/// Whether the lists are used: on unless `pcp=off`.
static IS_ENABLED: AtomicBool = AtomicBool::new(true);

/// Sizes the lists for `nr_managed_frames` of RAM (Linux's `zone_batchsize`).
/// Called by `frame::init`; until then nothing is listed.
pub(super) fn init(nr_managed_frames: u64) {
    SIZES_AT_BOOT.call_once(|| PcpSizes::for_zone(nr_managed_frames));
}

/// Allocates the listed bits (one per frame of the table: 256 KiB for 8 GiB) from
/// the heap, then makes the lists usable. Called by `mm::init` once the heap works;
/// until then every single frame goes to and from the buddy allocator.
pub(super) fn init_listed_bits() {
    let (first, nr) = super::frame::managed_frames();
    let nr_words = (first.pfn() + nr).div_ceil(64) as usize;
    let bits: alloc::vec::Vec<AtomicU64> = (0..nr_words).map(|_| AtomicU64::new(0)).collect();
    LISTED.call_once(|| alloc::boxed::Box::leak(bits.into_boxed_slice()));
    let sizes = *SIZES_AT_BOOT.get().expect("pcp: init_listed_bits before init");
    HIGH.store(sizes.high, Ordering::Relaxed);
    BATCH.store(sizes.batch, Ordering::Relaxed);
}

/// Returns the word of [`LISTED`] holding `frame`'s bit, and the bit.
#[inline]
fn listed_bit(frame: Frame) -> Option<(&'static AtomicU64, u64)> {
    let pfn = frame.pfn();
    let word = LISTED.get()?.get((pfn / 64) as usize)?;
    Some((word, 1 << (pfn % 64)))
}

/// Returns true if `frame` is free on a per-CPU list (or on its way onto one): its
/// descriptor then looks like a fresh allocation, but the frame is free memory.
/// Every scan of descriptors that may meet a free frame asks this.
#[inline]
pub fn is_listed(frame: Frame) -> bool {
    listed_bit(frame).is_some_and(|(word, bit)| word.load(Ordering::Relaxed) & bit != 0)
}

/// Marks `frame` listed. Call with the frame lock held, in the hold that checked
/// (or allocated) the frame, so that no scan sees it free-but-unmarked.
#[inline]
pub(super) fn set_listed(frame: Frame) {
    if let Some((word, bit)) = listed_bit(frame) {
        word.fetch_or(bit, Ordering::Relaxed);
    }
}

/// Clears `frame`'s listed mark: it leaves a list, allocated (a pop, under the
/// CPU's list lock) or for the buddy allocator (a drain, under the frame lock too).
#[inline]
pub(super) fn clear_listed(frame: Frame) {
    if let Some((word, bit)) = listed_bit(frame) {
        word.fetch_and(!bit, Ordering::Relaxed);
    }
}

/// Returns the lists' `batch` and `high`.
pub fn sizes() -> PcpSizes {
    PcpSizes { batch: BATCH.load(Ordering::Relaxed), high: HIGH.load(Ordering::Relaxed) }
}

/// Turns the lists on until the returned guard is dropped (then back to what they
/// were; off also drains them): for tests and measurements that need them even
/// under `pcp=off`.
pub fn turned_on() -> super::Switched {
    super::Switched::new(set_enabled, is_enabled, true)
}

/// Turns the per-CPU lists on or off; off also empties them into the buddy allocator.
pub fn set_enabled(is_on: bool) {
    IS_ENABLED.store(is_on, Ordering::Relaxed);
    if !is_on {
        drain_all();
    }
}

/// Returns true if single-frame allocations go through the per-CPU lists.
pub fn is_enabled() -> bool {
    IS_ENABLED.load(Ordering::Relaxed) && BATCH.load(Ordering::Relaxed) > 0
}

/// Returns the number of free frames on every CPU's lists (read without the locks).
pub fn nr_listed() -> u64 {
    COUNTERS.iter().map(|c| c.nr_listed.load(Ordering::Relaxed)).sum()
}

/// Allocates one frame for `state` from the running CPU's list, refilling it from
/// the buddy allocator with `refill_fn(n)` (which allocates up to `n` frames under
/// the buddy's lock, leaving the caller's reserve, and returns how many it pushed
/// through `push`) when it is empty. `None` if `state` has no list; `Some(Err)` if
/// the list is empty and the buddy allocator had nothing to give.
pub(super) fn alloc(state: FrameState, refill_fn: impl FnOnce(usize, &mut dyn FnMut(Frame)) -> usize) -> Option<Result<Frame, AllocError>> {
    let kind = kind_of(state)?;
    let (cpu, _guard) = lock_local();
    // SAFETY: rule (a) of `PerCpu`: this CPU, its lock held, interrupts off; the
    // refill takes the frame lock inside, and nothing in it frees a frame.
    let lists = unsafe { &mut *PCP[cpu].lists.get() };
    let list = &mut lists.lists[kind];
    if let Some(pfn) = list.pop() {
        return Some(Ok(take(cpu, Frame::from_pfn(pfn))));
    }
    COUNTERS[cpu].refills.fetch_add(1, Ordering::Relaxed);
    // Each frame is counted as it is pushed, in the refill's hold of the frame lock,
    // the hold that takes it off the buddy allocator's count: to
    // `frame::nr_free_frames_exact`, which reads both under that lock, the frame is
    // never free twice or not at all.
    refill_fn(sizes().batch, &mut |frame| {
        let is_pushed = list.push(frame.pfn());
        debug_assert!(is_pushed, "pcp: a refill overfilled an empty list");
        COUNTERS[cpu].nr_listed.fetch_add(1, Ordering::Relaxed);
    });
    match list.pop() {
        Some(pfn) => Some(Ok(take(cpu, Frame::from_pfn(pfn)))),
        None => Some(Err(AllocError::OutOfMemory)),
    }
}

/// Hands out `frame`, just popped from CPU `cpu`'s list (its lock held): clears its
/// listed mark, after which its descriptor (a fresh allocation) is the truth.
#[inline]
fn take(cpu: usize, frame: Frame) -> Frame {
    clear_listed(frame);
    COUNTERS[cpu].alloc_hits.fetch_add(1, Ordering::Relaxed);
    COUNTERS[cpu].nr_listed.fetch_sub(1, Ordering::Relaxed);
    frame
}

/// Puts `frame`, a single frame of `state` that `frame::free` has just checked,
/// reset (`BuddyAllocator::recycle_single`) and marked listed, on the running CPU's
/// list, in the same hold of the frame lock (`buddy` is its data: rule (b) of
/// `PerCpu`, no list lock); if that leaves the list longer than `high`, gives
/// `batch` of its oldest frames back to the buddy allocator in that hold too.
pub(super) fn free_locked(buddy: &mut BuddyAllocator<'static>, frame: Frame, state: FrameState) {
    let kind = kind_of(state).expect("pcp::free_locked: a state without a list");
    let cpu = cpu_id(); // the frame lock keeps interrupts off: this task stays here
    // SAFETY: rule (b) of `PerCpu`: this CPU, the frame lock held, interrupts off.
    let lists = unsafe { &mut *PCP[cpu].lists.get() };
    let list = &mut lists.lists[kind];
    if !list.push(frame.pfn()) {
        // Full (high is below the capacity, so only if the sizes changed).
        super::frame::free_listed(buddy, frame);
        return;
    }
    let counters = &COUNTERS[cpu];
    counters.frees.fetch_add(1, Ordering::Relaxed);
    counters.nr_listed.fetch_add(1, Ordering::Relaxed);
    let nr = list.nr_to_drain(sizes());
    if nr == 0 {
        return;
    }
    list.drain_oldest(nr, |pfn| super::frame::free_listed(buddy, Frame::from_pfn(pfn)));
    counters.drained_high.fetch_add(nr as u64, Ordering::Relaxed);
    counters.nr_listed.fetch_sub(nr as u64, Ordering::Relaxed);
}

/// Runs `f` on CPU `cpu`'s lists under rule (c) of `PerCpu`: its lock, then the
/// frame lock.
fn with_lists_of<R>(cpu: usize, f: impl FnOnce(&mut CpuLists, &mut BuddyAllocator<'static>) -> R) -> R {
    let _guard = PCP[cpu].lock.lock();
    super::frame::with_buddy(|buddy| {
        // SAFETY: rule (c) of `PerCpu`: both locks held.
        let lists = unsafe { &mut *PCP[cpu].lists.get() };
        f(lists, buddy)
    })
}

/// Returns true if `frame` is on some CPU's list (a search of every list: for tests).
pub fn contains(frame: Frame) -> bool {
    (0..MAX_CPUS).any(|cpu| with_lists_of(cpu, |lists, _| lists.lists.iter().any(|list| list.contains(frame.pfn()))))
}

/// Empties every CPU's lists into the buddy allocator (memory pressure,
/// compaction, the audit, turning the lists off); returns how many frames went back. Takes each
/// CPU's lock in turn: a CPU allocating meanwhile just refills.
pub fn drain_all() -> u64 {
    let mut nr_drained = 0;
    for (cpu, counters) in COUNTERS.iter().enumerate() {
        if counters.nr_listed.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let nr = with_lists_of(cpu, |lists, buddy| {
            let nr: u64 = lists.lists.iter().map(|l| l.len() as u64).sum();
            for list in &mut lists.lists {
                list.drain_oldest(list.len(), |pfn| super::frame::free_listed(buddy, Frame::from_pfn(pfn)));
            }
            counters.drained_all.fetch_add(nr, Ordering::Relaxed);
            counters.nr_listed.fetch_sub(nr, Ordering::Relaxed);
            nr
        });
        nr_drained += nr;
    }
    nr_drained
}

/// Checks that every listed frame looks like a fresh allocation in its list's state
/// (for `mm::check`); returns how many frames are listed, or what is wrong.
pub fn check() -> Result<u64, alloc::string::String> {
    /// What is wrong, found under the locks and formatted after them (formatting
    /// allocates, and the heap takes the frame lock).
    enum Wrong {
        Frame(usize, Frame, bool, FrameState, u32, u32, u8, super::frame::FrameFlags),
        Count(u64, u64),
    }
    let mut nr = 0;
    for (cpu, counters) in COUNTERS.iter().enumerate() {
        let wrong = with_lists_of(cpu, |lists, buddy| {
            for (kind, list) in lists.lists.iter().enumerate() {
                for pfn in list.pfns() {
                    let frame = Frame::from_pfn(pfn);
                    let d = buddy.desc(frame);
                    let (state, refcount, map_count, order, flags) = (d.state(), d.refcount(), d.map_count(), d.order(), d.flags());
                    let is_marked = is_listed(frame);
                    if !is_marked || state != KINDS[kind] || refcount != 1 || map_count != 0 || order != 0 || flags != super::frame::FrameFlags::ALLOC_HEAD {
                        return Some(Wrong::Frame(kind, frame, is_marked, state, refcount, map_count, order, flags));
                    }
                    nr += 1;
                }
            }
            let counted = counters.nr_listed.load(Ordering::Relaxed);
            let listed: u64 = lists.lists.iter().map(|l| l.len() as u64).sum();
            (counted != listed).then_some(Wrong::Count(listed, counted))
        });
        match wrong {
            Some(Wrong::Frame(kind, frame, is_marked, state, refcount, map_count, order, flags)) => {
                return Err(alloc::format!(
                    "pcp: cpu {cpu}'s {:?} list holds {frame:?} (listed mark {is_marked}) in state {state:?}, refcount {refcount}, map count {map_count}, order {order}, flags {flags:?}",
                    KINDS[kind]
                ));
            }
            Some(Wrong::Count(listed, counted)) => return Err(alloc::format!("pcp: cpu {cpu} lists {listed} frames, its counter says {counted}")),
            None => {}
        }
    }
    Ok(nr)
}

/// One CPU's counters, as `/proc/pcpinfo` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Frames on the lists now.
    pub nr_listed: u64,
    /// Frames handed out from the lists.
    pub alloc_hits: u64,
    /// Refills from the buddy allocator.
    pub refills: u64,
    /// Frames freed onto the lists.
    pub frees: u64,
    /// Frames given back because a list passed `high`.
    pub drained_high: u64,
    /// Frames given back by a drain of every list.
    pub drained_all: u64,
}

/// Returns the counters of CPU `cpu`.
pub fn stats(cpu: usize) -> CpuStats {
    let c = &COUNTERS[cpu];
    CpuStats {
        nr_listed: c.nr_listed.load(Ordering::Relaxed),
        alloc_hits: c.alloc_hits.load(Ordering::Relaxed),
        refills: c.refills.load(Ordering::Relaxed),
        frees: c.frees.load(Ordering::Relaxed),
        drained_high: c.drained_high.load(Ordering::Relaxed),
        drained_all: c.drained_all.load(Ordering::Relaxed),
    }
}

/// Returns the counters summed over every CPU.
pub fn total_stats() -> CpuStats {
    (0..MAX_CPUS).map(stats).fold(CpuStats::default(), |a, b| CpuStats {
        nr_listed: a.nr_listed + b.nr_listed,
        alloc_hits: a.alloc_hits + b.alloc_hits,
        refills: a.refills + b.refills,
        frees: a.frees + b.frees,
        drained_high: a.drained_high + b.drained_high,
        drained_all: a.drained_all + b.drained_all,
    })
}
