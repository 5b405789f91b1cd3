//! The reference-string recorder, two ways: sampling a process's Accessed bits
//! every timer tick ([`record`], `record` on the command line), or tracing its
//! faults with its pages made not-present ([`record_faults`], `record=faults`);
//! either prints the pages it used, framed for the host's replay tool
//! (`cargo run -p mm-core --example replay -- FILE`; the format is
//! `mm_core::reclaim::trace`).
//!
//! **Fault tracing** (the exact one). At the start every anonymous page the
//! process has is unmapped but kept (`swap::buffer::unmap_keep`: the PTE becomes a
//! swap entry, the frame stays in the swap cache, so a touch is a soft fault with
//! no I/O). Every fault of the process that maps a page then appends `r PAGE` or
//! `w PAGE` (the fault's access) to the trace ([`trace_after_fault`], called by
//! the fault retry loop with no lock held), and the page joins a window of the
//! last [`FAULT_WINDOW`] pages faulted in (`record_window=N` on the command line);
//! the page that leaves the window is unmapped again. So the trace is the
//! process's reference string in its exact order, except for what it misses: a
//! touch of a page still in the window (one of the last N faulted in: a hit for
//! every policy with N frames or more; the window is FIFO, so a page touched
//! constantly, its stack, faults once every N faults), a read of a page before its
//! write in the window (the write faults and is recorded), the pages that cannot
//! be unmapped (file pages: its code; the shared zero page; swap full; each of
//! their touches after the first is missed; their number is printed), and
//! everything before the recorder starts (the process runs after its spawn
//! returns; on one CPU it has not run yet). Each traced touch costs a soft fault
//! and an unmap with its TLB flush: the process runs many times slower, which does
//! not change its reference string. Record with enough RAM that nothing is evicted.
//!
//! **Sampling**: [`record`] runs in the kernel task that started the process, instead of
//! waiting for it. Every tick (10 ms) it locks the process's address space, walks
//! its page tables (`for_each_user_leaf`), and for each present PTE with the
//! Accessed bit set prints `r PAGE` (or `w PAGE` if the Dirty bit is set) and clears
//! the bit (with the TLB flush that makes the MMU set it again). The references
//! are kept in memory (up to [`MAX_REFS`]) and printed when the process has exited,
//! so that printing does not stretch the sampling interval; each sample sleeps a
//! tick while the process runs.
//!
//! What it misses (say so with every trace): the order of the references within one
//! tick (a sample lists its pages in address order), how many times a page was
//! used within a tick (once, however many), and reads versus writes after a page's
//! first write (the Dirty bit stays set until the page is written out, so every
//! later sample says `w`). Pages the process touches and the kernel swaps out within
//! one tick show up through their fault instead. So the trace is the process's
//! reference string at a 10 ms grain: good for comparing policies over working
//! sets larger than a tick's worth of pages, useless for within-tick order. Record
//! with enough RAM that nothing swaps, or the recording measures the kernel too.
//!
//! Locks: the address-space lock, for one walk at a time; printing happens after it
//! is dropped. Uses no lock of reclaim's own.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mm_core::fault::Access;
use mm_core::pagetable::PageSize;

use crate::mm::paging::PteFlags;
use crate::mm::process_hooks::{self, Pid};
use crate::mm::rmap::{SpaceId, SpaceRef};
use crate::mm::swap::buffer::unmap_keep;
use crate::mm::{VirtAddr, wss};
use crate::println;
use crate::sync::{IrqMutex, WaitQueue};

/// The most references kept (8 bytes each); a longer recording is cut short, and
/// says so.
pub const MAX_REFS: usize = 1 << 20;

/// Where the recorder sleeps between samples (nobody wakes it: the deadline does).
static TICK_QUEUE: WaitQueue = WaitQueue::new();

/// What a recording saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordReport {
    /// Samples taken (ticks).
    pub nr_samples: u64,
    /// References printed.
    pub nr_refs: u64,
    /// True if [`MAX_REFS`] cut the recording short.
    pub is_truncated: bool,
}

/// Records process `pid`'s reference string until it exits, printing it between
/// `@@trace begin` and `@@trace end` (see the module docs); returns the counts.
/// Call from a kernel task with no lock held; the caller then reaps the process.
pub fn record(pid: Pid) -> RecordReport {
    let mut report = RecordReport::default();
    // Each entry: the page number, shifted left once, with the low bit for "dirty".
    let mut refs: Vec<u64> = Vec::new();
    let mut used: Vec<(u64, bool)> = Vec::new();
    loop {
        let Some(process) = process_hooks::user_processes().into_iter().find(|p| p.pid == pid) else { break };
        used.clear();
        {
            let mut space = process.space.lock();
            // 4 KiB pages only: a transparent huge page is left out of the trace.
            space.for_each_user_leaf(|page, pte, size| {
                if size == PageSize::Size4KiB && pte.is_present() && pte.flags().contains(PteFlags::ACCESSED) {
                    used.push((page.start_address().as_u64(), pte.flags().contains(PteFlags::DIRTY)));
                }
            });
            for &(addr, _) in &used {
                let page = crate::mm::Page::containing_address(crate::mm::VirtAddr::new(addr));
                if let Some(mut pte) = space.pte(page.start_address()) {
                    pte.remove_flags(PteFlags::ACCESSED);
                    space.replace_pte(page, pte);
                }
            }
        }
        drop(process);
        report.nr_samples += 1;
        for &(addr, is_dirty) in &used {
            if refs.len() == MAX_REFS {
                report.is_truncated = true;
                break;
            }
            refs.push((addr >> 12) << 1 | u64::from(is_dirty));
        }
        let deadline = crate::arch::timer::ticks() + 1;
        TICK_QUEUE.wait_until_deadline(|| false, deadline);
    }
    println!("{}", mm_core::reclaim::trace::TRACE_BEGIN);
    println!(
        "# pid {pid}: Accessed bits sampled every timer tick ({} ms), {} samples{}",
        1000 / crate::arch::timer::TICK_HZ,
        report.nr_samples,
        if report.is_truncated { ", cut short" } else { "" }
    );
    for &entry in &refs {
        println!("{} {:x}", if entry & 1 == 1 { 'w' } else { 'r' }, entry >> 1);
    }
    println!("{}", mm_core::reclaim::trace::TRACE_END);
    report.nr_refs = refs.len() as u64;
    report
}

/// Pages a fault-traced process keeps mapped: the last this many it faulted in.
pub const FAULT_WINDOW: usize = 8;
/// The most references a fault trace keeps; a longer one is cut short, and says so.
pub const MAX_FAULT_REFS: usize = 1 << 18;
/// References per chunk of a fault trace's store (a page: the heap has no room
/// for one large block, and the store is all allocated before the trace starts).
const REFS_PER_CHUNK: usize = 512;

/// True while a fault trace runs: the fault path's one check when none does.
static IS_FAULT_TRACING: AtomicBool = AtomicBool::new(false);
/// Pages that could not be unmapped for the trace (they stay mapped).
static NR_NOT_UNMAPPED: AtomicU64 = AtomicU64::new(0);
/// The fault trace being recorded (one at a time). A leaf lock: nothing is taken
/// under it, and nothing allocates under it (both stores are reserved up front).
static FAULT_TRACE: IrqMutex<Option<FaultTrace>> = IrqMutex::new(None);

/// A fault trace under way.
struct FaultTrace {
    /// The traced process's address space.
    space_id: SpaceId,
    /// The references: page number shifted left once, the low bit for a write;
    /// in chunks of [`REFS_PER_CHUNK`], all allocated up front.
    chunks: Vec<Vec<u64>>,
    nr_refs: usize,
    /// The pages mapped since their fault, oldest first, at most `window_len`.
    window: VecDeque<u64>,
    window_len: usize,
    is_truncated: bool,
}

/// Records a fault of a traced process that mapped the page at `addr` (see the
/// module docs); nothing when no trace runs or `space` is not the traced one.
/// Called by the fault retry loop after a fault that mapped a page, no lock held.
/// Inline: the common case, no trace, is one load.
#[inline]
pub fn trace_after_fault(space: &SpaceRef, addr: VirtAddr, error_code: u64) {
    if IS_FAULT_TRACING.load(Ordering::Relaxed) {
        record_traced_fault(space, addr, error_code);
    }
}

/// [`trace_after_fault`] while a trace runs.
#[inline(never)]
fn record_traced_fault(space: &SpaceRef, addr: VirtAddr, error_code: u64) {
    let space_id = space.lock().id();
    let page = addr.as_u64() >> 12;
    let is_write = Access::from_error_code(error_code) == Access::Write;
    let leaving = {
        let mut trace = FAULT_TRACE.lock();
        let Some(trace) = trace.as_mut().filter(|t| t.space_id == space_id) else { return };
        let nr_refs = trace.nr_refs;
        match trace.chunks.get_mut(nr_refs / REFS_PER_CHUNK) {
            Some(chunk) => {
                chunk.push(page << 1 | u64::from(is_write));
                trace.nr_refs += 1;
            }
            None => trace.is_truncated = true,
        }
        if trace.window.contains(&page) {
            None
        } else {
            let leaving = if trace.window.len() >= trace.window_len { trace.window.pop_front() } else { None };
            trace.window.push_back(page);
            leaving
        }
    };
    if let Some(page) = leaving {
        unmap_for_trace(space, page);
    }
}

/// Unmaps (keeping the frame) the 4 KiB anonymous page `page` of `space`, so that
/// its next touch faults; a page that cannot be is counted and stays mapped.
fn unmap_for_trace(space: &SpaceRef, page: u64) {
    let addr = VirtAddr::new(page << 12);
    let frame = {
        let space = space.lock();
        if space.huge_leaf(addr).is_some() {
            None
        } else {
            space.pte(addr).filter(|p| p.is_present()).map(|p| p.frame())
        }
    };
    if let Some(frame) = frame
        && unmap_keep(frame).is_err()
    {
        NR_NOT_UNMAPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// A finished fault trace.
#[derive(Clone, Debug, Default)]
pub struct FaultTraceReport {
    /// The references in order: page number shifted left once, the low bit set
    /// for a write; in chunks ([`FaultTraceReport::refs`] runs through them).
    pub chunks: Vec<Vec<u64>>,
    /// The window it was recorded with.
    pub window_len: usize,
    /// Pages that could not be unmapped (their later touches are missed).
    pub nr_not_unmapped: u64,
    /// True if [`MAX_REFS`] cut it short.
    pub is_truncated: bool,
}

/// Records process `pid`'s reference string by fault tracing, with a window of
/// `window_len` pages (see the module docs), until it exits, and returns it;
/// `None` if the process is gone or there is no memory for the trace. Call from a
/// kernel task with no lock held, right after the spawn; the caller then reaps the
/// process.
pub fn record_faults(pid: Pid, window_len: usize) -> Option<FaultTraceReport> {
    let space = process_hooks::user_processes().into_iter().find(|p| p.pid == pid).map(|p| p.space.clone())?;
    let window_len = window_len.max(1);
    let (mut chunks, mut window) = (Vec::new(), VecDeque::new());
    let nr_chunks = MAX_FAULT_REFS / REFS_PER_CHUNK;
    let has_memory = chunks.try_reserve_exact(nr_chunks).is_ok()
        && window.try_reserve_exact(window_len).is_ok()
        && (0..nr_chunks).all(|_| {
            let mut chunk = Vec::new();
            let is_ok = chunk.try_reserve_exact(REFS_PER_CHUNK).is_ok();
            chunks.push(chunk);
            is_ok
        });
    if !has_memory {
        println!("record: no memory for a trace of {MAX_FAULT_REFS} references");
        return None;
    }
    let space_id = space.lock().id();
    NR_NOT_UNMAPPED.store(0, Ordering::Relaxed);
    *FAULT_TRACE.lock() = Some(FaultTrace { space_id, chunks, nr_refs: 0, window, window_len, is_truncated: false });
    IS_FAULT_TRACING.store(true, Ordering::Relaxed);
    // What it has mapped already (its stack, the pages exec filled) faults too.
    let frames = wss::resident_frames_coldest_first(&space.lock());
    for frame in frames {
        if unmap_keep(frame).is_err() {
            NR_NOT_UNMAPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
    drop(space);
    while process_hooks::user_processes().iter().any(|p| p.pid == pid) {
        let deadline = crate::arch::timer::ticks() + 1;
        TICK_QUEUE.wait_until_deadline(|| false, deadline);
    }
    IS_FAULT_TRACING.store(false, Ordering::Relaxed);
    let trace = FAULT_TRACE.lock().take()?;
    Some(FaultTraceReport {
        chunks: trace.chunks,
        window_len,
        nr_not_unmapped: NR_NOT_UNMAPPED.load(Ordering::Relaxed),
        is_truncated: trace.is_truncated,
    })
}

/// Prints a fault trace of process `pid` between `@@trace begin` and `@@trace end`,
/// with a header saying how it was recorded.
pub fn print_fault_trace(pid: Pid, trace: &FaultTraceReport) {
    println!("{}", mm_core::reclaim::trace::TRACE_BEGIN);
    println!(
        "# pid {pid}: fault trace, pages not present but the last {} faulted in; {} pages could not be unmapped (file pages, zero page){}",
        trace.window_len,
        trace.nr_not_unmapped,
        if trace.is_truncated { ", cut short" } else { "" }
    );
    for entry in trace.refs() {
        println!("{} {:x}", if entry & 1 == 1 { 'w' } else { 'r' }, entry >> 1);
    }
    println!("{}", mm_core::reclaim::trace::TRACE_END);
}

impl FaultTraceReport {
    /// The references in order (page number shifted left once, the low bit set for
    /// a write).
    pub fn refs(&self) -> impl Iterator<Item = u64> + '_ {
        self.chunks.iter().flatten().copied()
    }

    /// How many references it holds.
    pub fn nr_refs(&self) -> usize {
        self.chunks.iter().map(Vec::len).sum()
    }
}
