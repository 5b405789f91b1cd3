//! The reference-string recorder: samples a process's Accessed bits every timer
//! tick and prints the pages it used, framed for the host's replay tool
//! (`cargo run -p mm-core --example replay -- FILE`; the format is
//! `mm_core::reclaim::trace`).
//!
//! How: [`record`] runs in the kernel task that started the process, instead of
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

use alloc::vec::Vec;

use mm_core::pagetable::PageSize;

use crate::mm::paging::PteFlags;
use crate::mm::process_hooks::{self, Pid};
use crate::println;
use crate::sync::WaitQueue;

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
