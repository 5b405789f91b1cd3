//! Per-CPU page lists in front of the buddy allocator (Linux's pcp lists): most
//! single-frame allocations and frees touch only the running CPU's list, under that
//! CPU's own lock, and never the buddy allocator's global lock (`frame::FRAMES`).
//!
//! ```text
//!  CPU 0: [User: f7 f3 ..] [PageTable: ..] [Kernel: ..] [Slab: ..]   lock PCP[0]
//!  CPU 1: [User: f9 ..   ] [PageTable: ..] [Kernel: ..] [Slab: ..]   lock PCP[1]
//!            |  ^  batch frames at a time, under FRAMES
//!            v  |
//!        the buddy allocator (FRAMES)
//! ```
//! The sizes are Linux's (`mm_core::pcp::PcpSizes::for_zone`): a list is refilled
//! with `batch` frames when it is empty, and gives `batch` frames back when a free
//! leaves it longer than `high`.
//!
//! **What a frame on a list looks like.** The frame table has no bit left to mark
//! "on a per-CPU list", and writing a descriptor without the frame table's lock
//! would race with the scans that read every descriptor under it. So a listed frame
//! stays *allocated* in the frame table, in the state of its list, exactly as a
//! fresh allocation looks (refcount 1, `ALLOC_HEAD`, order 0: the free path resets
//! it with `BuddyAllocator::recycle_single` under the lock it already holds to check
//! the free). Handing it out again is then a pop, with no descriptor to write: that
//! is why there is one list per state (user pages, page tables, kernel pages, slab
//! pages). Only the list knows the frame is free.
//!
//! **Free memory.** Listed frames are free memory: [`nr_listed`] is added to
//! `frame::nr_free_frames` (meminfo's MemFree, the watermarks), and an allocation
//! the buddy allocator cannot satisfy first empties every CPU's lists
//! ([`drain_all`], Linux's `drain_all_pages`) and tries again, so a frame sitting on
//! a list never makes the kernel reclaim or OOM-kill; compaction drains them too
//! before it counts a block's free frames, and the audit (`mm::check`) drains them
//! before it checks the buddy allocator.
//!
//! **Remote frees.** A frame allocated on CPU 0 and freed on CPU 1 goes onto CPU 1's
//! list: a list is a set of free frames, not of frames its CPU allocated. Another
//! CPU takes a list's lock only to drain it.
//!
//! **Double frees.** The free path checks the frame table (a frame on a list looks
//! allocated, so that check cannot see it) and searches the running CPU's list of
//! that state; a frame freed twice on two different CPUs is not caught (nor is it
//! by Linux without `CONFIG_DEBUG_VM`).
//!
//! **Off by default** (`pcp=on` on the command line, or [`set_enabled`], turns them
//! on; `pcp=off` is the default). Two reasons, both measured or found at the merge
//! of this module: on one CPU the lists cost instructions instead of saving them
//! (an order-0 alloc+free pair 436 -> ~480 guest instructions in a release build,
//! the anonymous write fault +60), and a listed user frame looks *live* to the
//! frame-table checks that reclaim makes after a failed eviction
//! (`reclaim::is_live_user_frame`: state User, refcount 1), so reclaim could put a
//! free frame back on the replacement policy's ring, and the `memcg` image did
//! corrupt the ring that way ("set_next of a frame not on the ring"). The fix needs
//! a "listed" mark those checks can read, which the full frame table has no bit
//! for. Counters per CPU in
//! `/proc/pcpinfo` (Linux shows the same in `/proc/zoneinfo`'s "pagesets") and as
//! sums in `/proc/vmstat`.
//!
//! Locks: `PCP[cpu]` (`Pcp`), just above `frame::FRAMES`, which the refill and the
//! drain take inside it; nothing else is taken under it.

use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use mm_core::pcp::{PcpList, PcpSizes};

use super::Frame;
use super::frame::{AllocError, FrameState};
use crate::arch::smp::{MAX_CPUS, cpu_id};
use crate::sync::{IrqMutex, LockRank};

/// The frame states that have a list: the order-0 allocations that are frequent.
const KINDS: [FrameState; 4] = [FrameState::User, FrameState::PageTable, FrameState::Kernel, FrameState::Slab];

/// Returns the index of the list for frames of `state`, if it has one.
fn kind_of(state: FrameState) -> Option<usize> {
    KINDS.iter().position(|&s| s == state)
}

/// Returns true if single frames of `state` go through the per-CPU lists.
pub fn has_list(state: FrameState) -> bool {
    kind_of(state).is_some()
}

/// One CPU's lists, one per state in [`KINDS`].
struct CpuLists {
    lists: [PcpList; KINDS.len()],
}

static PCP: [IrqMutex<CpuLists>; MAX_CPUS] =
    [const { IrqMutex::new_ranked(LockRank::Pcp, CpuLists { lists: [const { PcpList::new() }; KINDS.len()] }) }; MAX_CPUS];

/// What one CPU's lists did (`/proc/pcpinfo`, `/proc/vmstat`).
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

/// `batch` and `high`, set by [`init`] from the size of memory (0 = lists unused).
static BATCH: AtomicUsize = AtomicUsize::new(0);
static HIGH: AtomicUsize = AtomicUsize::new(0);

/// Whether the lists are used: off unless `pcp=on` (see the module docs, "Off by
/// default").
static IS_ENABLED: AtomicBool = AtomicBool::new(false);

/// Sizes the lists for `nr_managed_frames` of RAM (Linux's `zone_batchsize`).
/// Called by `frame::init`; until then nothing is listed.
pub(super) fn init(nr_managed_frames: u64) {
    let sizes = PcpSizes::for_zone(nr_managed_frames);
    BATCH.store(sizes.batch, Ordering::Relaxed);
    HIGH.store(sizes.high, Ordering::Relaxed);
}

/// Returns the lists' `batch` and `high`.
pub fn sizes() -> PcpSizes {
    PcpSizes { batch: BATCH.load(Ordering::Relaxed), high: HIGH.load(Ordering::Relaxed) }
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
    let cpu = cpu_id();
    let mut lists = PCP[cpu].lock();
    let list = &mut lists.lists[kind];
    if let Some(pfn) = list.pop() {
        COUNTERS[cpu].alloc_hits.fetch_add(1, Ordering::Relaxed);
        COUNTERS[cpu].nr_listed.fetch_sub(1, Ordering::Relaxed);
        return Some(Ok(Frame::from_pfn(pfn)));
    }
    COUNTERS[cpu].refills.fetch_add(1, Ordering::Relaxed);
    let nr = refill_fn(sizes().batch, &mut |frame| {
        let is_pushed = list.push(frame.pfn());
        debug_assert!(is_pushed, "pcp: a refill overfilled an empty list");
    });
    COUNTERS[cpu].nr_listed.fetch_add(nr as u64, Ordering::Relaxed);
    match list.pop() {
        Some(pfn) => {
            COUNTERS[cpu].alloc_hits.fetch_add(1, Ordering::Relaxed);
            COUNTERS[cpu].nr_listed.fetch_sub(1, Ordering::Relaxed);
            Some(Ok(Frame::from_pfn(pfn)))
        }
        None => Some(Err(AllocError::OutOfMemory)),
    }
}

/// What [`free`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Freed {
    /// The frame is on the running CPU's list.
    Listed,
    /// The frame was on that list already: a double free, refused (nothing changed).
    AlreadyListed,
}

/// Puts `frame`, a single frame of `state` that `BuddyAllocator::recycle_single`
/// has just checked and reset, on the running CPU's list; if that leaves the list
/// longer than `high`, gives `batch` of its oldest frames back with `free_fn`
/// (which frees a frame to the buddy allocator under its lock).
pub(super) fn free(frame: Frame, state: FrameState, free_fn: impl Fn(Frame)) -> Freed {
    let kind = kind_of(state).expect("pcp::free: a state without a list");
    let cpu = cpu_id();
    let mut lists = PCP[cpu].lock();
    let list = &mut lists.lists[kind];
    if list.contains(frame.pfn()) {
        return Freed::AlreadyListed;
    }
    if !list.push(frame.pfn()) {
        drop(lists);
        free_fn(frame); // full (high is below the capacity, so only if sizes changed)
        return Freed::Listed;
    }
    COUNTERS[cpu].frees.fetch_add(1, Ordering::Relaxed);
    COUNTERS[cpu].nr_listed.fetch_add(1, Ordering::Relaxed);
    let nr = list.nr_to_drain(sizes());
    for _ in 0..nr {
        let pfn = list.pop_oldest().expect("pcp: drained more than listed");
        free_fn(Frame::from_pfn(pfn));
    }
    COUNTERS[cpu].drained_high.fetch_add(nr as u64, Ordering::Relaxed);
    COUNTERS[cpu].nr_listed.fetch_sub(nr as u64, Ordering::Relaxed);
    Freed::Listed
}

/// Returns true if `frame` is on some CPU's list (a search of every list: for tests).
pub fn contains(frame: Frame) -> bool {
    PCP.iter().any(|cpu| cpu.lock().lists.iter().any(|list| list.contains(frame.pfn())))
}

/// Empties every CPU's lists into the buddy allocator (memory pressure,
/// compaction, the audit, `pcp=off`); returns how many frames went back. Takes each
/// CPU's lock in turn: a CPU allocating meanwhile just refills.
pub fn drain_all() -> u64 {
    let mut nr_drained = 0;
    for (cpu, pcp) in PCP.iter().enumerate() {
        if COUNTERS[cpu].nr_listed.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let mut lists = pcp.lock();
        let mut nr = 0;
        for list in &mut lists.lists {
            while let Some(pfn) = list.pop() {
                super::frame::free_listed(Frame::from_pfn(pfn));
                nr += 1;
            }
        }
        COUNTERS[cpu].drained_all.fetch_add(nr, Ordering::Relaxed);
        COUNTERS[cpu].nr_listed.fetch_sub(nr, Ordering::Relaxed);
        nr_drained += nr;
    }
    nr_drained
}

/// Checks that every listed frame looks like a fresh allocation in its list's state
/// (for `mm::check`); returns how many frames are listed, or what is wrong.
pub fn check() -> Result<u64, alloc::string::String> {
    let mut nr = 0;
    for (cpu, pcp) in PCP.iter().enumerate() {
        let lists = pcp.lock();
        for (kind, list) in lists.lists.iter().enumerate() {
            for pfn in list.pfns() {
                let frame = Frame::from_pfn(pfn);
                let (state, refcount, map_count, order, flags) =
                    super::frame::with_desc(frame, |d| (d.state(), d.refcount(), d.map_count(), d.order(), d.flags()));
                if state != KINDS[kind] || refcount != 1 || map_count != 0 || order != 0 || flags != super::frame::FrameFlags::ALLOC_HEAD {
                    return Err(alloc::format!(
                        "pcp: cpu {cpu}'s {:?} list holds {frame:?} in state {state:?}, refcount {refcount}, map count {map_count}, order {order}, flags {flags:?}",
                        KINDS[kind]
                    ));
                }
                nr += 1;
            }
        }
        let counted = COUNTERS[cpu].nr_listed.load(Ordering::Relaxed);
        let listed: u64 = lists.lists.iter().map(|l| l.len() as u64).sum();
        if counted != listed {
            return Err(alloc::format!("pcp: cpu {cpu} lists {listed} frames, its counter says {counted}"));
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
