//! Working sets and page-fault frequency, per process, measured on its own CPU time.
//!
//! Denning's working set W(t, τ) is the set of pages a process referenced in the
//! last τ of its *own* virtual time (CPU time, not wall time: a process that waits
//! for the disk does not age its pages). The kernel estimates its size |W| the way
//! Linux's idle-page tracking and the classic textbook WSClock do, from the
//! hardware Accessed bits:
//!
//! ```text
//!  timer tick while process P runs:  P.cpu_ticks += 1
//!  every τ of P's CPU time:          walk P's page tables; for every present page:
//!                                      A bit set?  count it, clear it, flush its TLB entry,
//!                                                  and mark the frame referenced for the clock
//!                                    WS(τ) = the count; push it on P's history
//!                                    PFF   = faults in the interval / its CPU seconds
//! ```
//! Clearing the A bit is what makes the next sample see only the pages used since
//! this one: the MMU sets it again on the next access, but only after the stale
//! TLB entry (which still says "accessed") is gone, hence the flush. The bit is
//! carried over to a mark in the frame's descriptor (`mark_sampled_reference`), so the replacement policy's second
//! chance (`reclaim/probe.rs`) does not lose the reference the sampler consumed.
//!
//! Page-fault frequency (faults per second of CPU time) is the other classic
//! signal: a process whose PFF is high lacks frames for its working set; the
//! load controller (`load_control.rs`) uses the major-fault part.
//!
//! τ is `wss.tau_ms=N` on the command line (CPU milliseconds, a multiple of the
//! 10 ms tick), [`DEFAULT_TAU_MS`] otherwise, or [`set_tau_ms`] at run time.
//!
//! What it touches: the address space (its lock, its page tables and counters),
//! the frame table (the sampled-reference mark); called from the timer interrupt through
//! `proc` ([`on_cpu_tick`]), where no spinlock is held (every spinlock keeps
//! interrupts off).
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use mm_core::pagetable::{FlushBatch, LeafAction, PageSize};

use super::addr_space::AddressSpace;
use super::frame;
use super::layout::USER_END;
use super::paging::PteFlags;
use super::{PAGE_SIZE, Page, VirtAddr};
use crate::arch::timer::TICK_HZ;

/// The default τ: 50 ms of the process's CPU time (five timer ticks).
pub const DEFAULT_TAU_MS: u64 = 50;
/// Samples kept per process.
pub const WS_HISTORY: usize = 8;

/// τ in timer ticks (0: not read from the command line yet).
static TAU_TICKS: AtomicU64 = AtomicU64::new(0);

/// Returns τ in timer ticks.
fn tau_ticks() -> u64 {
    let ticks = TAU_TICKS.load(Ordering::Relaxed);
    if ticks != 0 {
        return ticks;
    }
    let ms = crate::cmdline::value("wss.tau_ms").and_then(|v| v.parse::<u64>().ok()).unwrap_or(DEFAULT_TAU_MS);
    let ticks = (ms * TICK_HZ / 1000).max(1);
    TAU_TICKS.store(ticks, Ordering::Relaxed);
    ticks
}

/// Sets τ (CPU milliseconds, rounded to whole ticks, at least one).
pub fn set_tau_ms(ms: u64) {
    TAU_TICKS.store((ms * TICK_HZ / 1000).max(1), Ordering::Relaxed);
}

/// Returns τ in CPU milliseconds.
pub fn tau_ms() -> u64 {
    tau_ticks() * 1000 / TICK_HZ
}

/// A process's working-set state, kept in its address space.
#[derive(Clone, Copy, Debug, Default)]
pub struct WsState {
    /// Timer ticks this process has run (its CPU time).
    cpu_ticks: u64,
    /// `cpu_ticks` at the last sample.
    ticks_at_sample: u64,
    /// Minor + major faults at the last sample.
    faults_at_sample: u64,
    /// Major faults at the last sample.
    major_at_sample: u64,
    /// The last samples, oldest overwritten first; `history[(nr_samples - 1) % N]` is the newest.
    history: [u32; WS_HISTORY],
    /// Samples taken.
    nr_samples: u64,
    /// Faults per CPU second over the last interval.
    pff: u64,
    /// Major faults per CPU second over the last interval.
    major_pff: u64,
    /// Its resident-set limit under `policy=vms`, in pages (0: the default,
    /// `reclaim::resident_limit`); /proc/PID/vms_limit.
    pub resident_limit: u64,
}

/// What a process's working set looks like now (a copy, for syscalls, /proc and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WsSnapshot {
    /// WS(τ): pages referenced in the last complete interval (0 before the first).
    pub ws_pages: u64,
    /// The last samples, oldest first (only `min(nr_samples, WS_HISTORY)` are valid).
    pub history: [u32; WS_HISTORY],
    /// Samples taken so far.
    pub nr_samples: u64,
    /// τ, CPU milliseconds.
    pub tau_ms: u64,
    /// CPU time used so far, milliseconds.
    pub cpu_ms: u64,
    /// Page-fault frequency over the last interval: faults per CPU second.
    pub pff: u64,
    /// The major-fault part of it: swap-ins per CPU second.
    pub major_pff: u64,
    /// Pages resident now.
    pub rss_pages: u64,
}

impl WsState {
    /// Returns the newest sample (0 before the first).
    pub fn ws_pages(&self) -> u64 {
        if self.nr_samples == 0 { 0 } else { u64::from(self.history[((self.nr_samples - 1) % WS_HISTORY as u64) as usize]) }
    }

    /// Returns the major-fault frequency of the last interval.
    pub fn major_pff(&self) -> u64 {
        self.major_pff
    }

    /// Returns the CPU ticks used.
    pub fn cpu_ticks(&self) -> u64 {
        self.cpu_ticks
    }

    /// Returns the samples, oldest first.
    fn history_oldest_first(&self) -> [u32; WS_HISTORY] {
        let mut out = [0; WS_HISTORY];
        let nr_valid = self.nr_samples.min(WS_HISTORY as u64) as usize;
        for (i, slot) in out.iter_mut().take(nr_valid).enumerate() {
            let index = (self.nr_samples - nr_valid as u64 + i as u64) % WS_HISTORY as u64;
            *slot = self.history[index as usize];
        }
        out
    }

    fn record(&mut self, ws_pages: u64, faults: u64, major: u64) {
        let ticks = (self.cpu_ticks - self.ticks_at_sample).max(1);
        self.pff = (faults - self.faults_at_sample) * TICK_HZ / ticks;
        self.major_pff = (major - self.major_at_sample) * TICK_HZ / ticks;
        self.history[(self.nr_samples % WS_HISTORY as u64) as usize] = ws_pages.min(u64::from(u32::MAX)) as u32;
        self.nr_samples += 1;
        self.ticks_at_sample = self.cpu_ticks;
        self.faults_at_sample = faults;
        self.major_at_sample = major;
    }
}

/// Counts one timer tick of CPU time for the process owning `space`, and samples
/// its working set when τ has passed and `can_sample` (the tick interrupted user
/// mode: no kernel path of this process is half-way through its page tables).
/// Called from the timer interrupt with no lock held; returns true if it sampled.
pub fn on_cpu_tick(space: &mut AddressSpace, can_sample: bool) -> bool {
    space.wss.cpu_ticks += 1;
    if !can_sample || space.wss.cpu_ticks - space.wss.ticks_at_sample < tau_ticks() {
        return false;
    }
    sample(space);
    true
}

/// Takes one working-set sample of `space` now: counts and clears the Accessed bits
/// of its present pages (see the module docs); returns WS, the count.
pub fn sample(space: &mut AddressSpace) -> u64 {
    let ws_pages = clear_accessed_bits(space);
    let (faults, major) = (space.stats.minor_faults + space.stats.major_faults, space.stats.major_faults);
    space.wss.record(ws_pages, faults, major);
    ws_pages
}

/// Clears the Accessed bit of every present user page of `space` that has it, with
/// the TLB flushes that needs, marks the frames referenced for the replacement
/// policy, and returns how many there were (the shared zero page not counted).
fn clear_accessed_bits(space: &mut AddressSpace) -> u64 {
    let zero = super::fault::zero_frame();
    let mut nr_referenced = 0;
    let mut batch = FlushBatch::new();
    let start = Page::containing_address(VirtAddr::new(0));
    space.pt.update_leaves(&mut space.tables, start, USER_END / PAGE_SIZE, &mut batch, |leaf| {
        if !leaf.pte.is_present() || !leaf.pte.flags().contains(PteFlags::ACCESSED) {
            return LeafAction::Keep;
        }
        let mut pte = leaf.pte;
        pte.remove_flags(PteFlags::ACCESSED);
        if pte.frame() != zero {
            nr_referenced += 1;
            frame::with_desc(pte.frame(), |d| d.mark_sampled_reference());
        }
        LeafAction::Replace(pte)
    });
    space.flush(batch);
    nr_referenced
}

/// Returns the working-set figures of `space`.
pub fn snapshot(space: &AddressSpace) -> WsSnapshot {
    let wss = &space.wss;
    WsSnapshot {
        ws_pages: wss.ws_pages(),
        history: wss.history_oldest_first(),
        nr_samples: wss.nr_samples,
        tau_ms: tau_ms(),
        cpu_ms: wss.cpu_ticks * 1000 / TICK_HZ,
        pff: wss.pff,
        major_pff: wss.major_pff,
        rss_pages: space.stats.rss_pages,
    }
}

/// Returns the frames of `space`'s present pages (the shared zero page left out),
/// those outside its working set first (Accessed bit clear since the last sample),
/// each once: the order in which load control and memory groups evict a process's
/// own pages.
pub fn resident_frames_coldest_first(space: &AddressSpace) -> alloc::vec::Vec<super::Frame> {
    let zero = super::fault::zero_frame();
    let (mut cold, mut hot) = (alloc::vec::Vec::new(), alloc::vec::Vec::new());
    // A transparent huge page is left out: reclaim takes 4 KiB pages, and a huge
    // one must be split first (`thp`), which this read-only walk cannot do.
    space.for_each_user_leaf(|_, pte, size| {
        if size == PageSize::Size4KiB && pte.is_present() && pte.frame() != zero {
            let list = if pte.flags().contains(PteFlags::ACCESSED) { &mut hot } else { &mut cold };
            list.push(pte.frame());
        }
    });
    // Distinct frames, each list kept in address order (not sorted by frame number:
    // swap-out gives a batch adjacent slots in list order, and swap-in reads ahead
    // the slots after a faulting one; see `AddressSpace::resident_frames`). A frame
    // mapped twice goes once, cold if any of its mappings is.
    let cold_set: alloc::collections::BTreeSet<super::Frame> = cold.iter().copied().collect();
    let mut seen = alloc::collections::BTreeSet::new();
    cold.retain(|&f| seen.insert(f));
    hot.retain(|&f| !cold_set.contains(&f) && seen.insert(f));
    cold.extend(hot);
    cold
}
