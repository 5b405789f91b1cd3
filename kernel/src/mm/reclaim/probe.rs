//! `RmapProbe`: how a replacement policy sees the hardware Accessed and Dirty bits of
//! a user frame, through the reverse map (every PTE that maps it). Called with the
//! policy lock held; it only `try_lock`s address spaces (see the lock order in
//! [`crate::mm`]).
//!
//! The reverse map hands out strong references to the spaces it finds. On several
//! CPUs a process may exit meanwhile, leaving the probe with the last reference;
//! dropping it there would tear the space down under the policy lock (swap, frame
//! and policy locks again: fuzz image with `--smp 2`, "lock order: taking Swap lock
//! ... while holding ReclaimPolicy lock"). Such a space is parked instead and
//! dropped by [`release_deferred`], which the policy lock's holder calls after
//! letting go of it.
//!
//! A space another CPU holds locked is *busy*: its pages count as referenced, as
//! Linux's `folio_referenced` keeps a folio whose rmap lock it could not try-lock.
//! But that CPU may be the one waiting for the policy lock (a fault maps and tracks
//! its page under both: space, then policy), and a clock whose ring is mostly that
//! space's pages would go round twice, every page busy, before it gives up, while
//! the other CPU spins: `swapstress` with `--smp 2` wrote 180 pages a second
//! against 5300 on one CPU. So a pick has a budget of busy answers
//! ([`BUSY_PER_PICK`]); past it a busy page counts as not referenced, and the hand
//! takes it (its eviction locks the space after the policy lock is let go, as
//! every eviction does), as Linux bounds a scan by the pages it isolates.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use mm_core::reclaim::PageProbe;

use crate::mm::frame::{self, FrameFlags};
use crate::mm::paging::{Pte, PteFlags};
use crate::mm::rmap;
use alloc::vec::Vec;

use crate::mm::addr_space::AddressSpace;
use crate::mm::{Frame, Page};
use crate::sync::IrqMutex;

/// Spaces whose last reference a probe held under the policy lock, to be dropped
/// without it ([`release_deferred`]).
static DEFERRED: IrqMutex<Vec<IrqMutex<AddressSpace>>> = IrqMutex::new_ranked(crate::sync::LockRank::DeferredSpaces, Vec::new());

/// Drops the spaces probes parked (see the module docs). Call with no lock held.
pub fn release_deferred() {
    let parked = core::mem::take(&mut *DEFERRED.lock());
    drop(parked); // each space is torn down here, with no lock held
}

/// What the probe calls with each list of candidates the reverse map gives it,
/// before it looks at them: `None` in a running system. Only for tests
/// (`tests/rmap.rs`), which drop a space's other references from there, as its
/// exit on another CPU may ([`set_after_candidates_fn_for_test`]).
static AFTER_CANDIDATES_FN: IrqMutex<Option<CandidatesFn>> = IrqMutex::new(None);

/// The probe's test hook: called with the candidates it is about to look at.
type CandidatesFn = fn(&[rmap::Candidate]);

/// Sets (or, with `None`, clears) the probe's test hook.
#[doc(hidden)]
pub fn set_after_candidates_fn_for_test(after_candidates_fn: Option<CandidatesFn>) {
    *AFTER_CANDIDATES_FN.lock() = after_candidates_fn;
}

/// Busy answers one pick may give as "referenced" (see the module docs).
pub const BUSY_PER_PICK: u32 = 32;

/// Busy answers left in this pick as "referenced"; `u32::MAX` outside a pick
/// (aging, policy switches: no budget). Changed only under the policy lock.
static BUSY_BUDGET: AtomicU32 = AtomicU32::new(u32::MAX);

/// Spaces the probe found busy since boot (each candidate it could not try-lock).
static NR_BUSY: AtomicU64 = AtomicU64::new(0);

/// Gives the pick about to run, under the policy lock, its budget of busy answers.
pub(super) fn start_pick() {
    BUSY_BUDGET.store(BUSY_PER_PICK, Ordering::Relaxed);
}

/// Ends the pick's budget (still under the policy lock).
pub(super) fn end_pick() {
    BUSY_BUDGET.store(u32::MAX, Ordering::Relaxed);
}

/// Returns how many times the probe found a space busy since boot.
pub fn nr_busy() -> u64 {
    NR_BUSY.load(Ordering::Relaxed)
}

/// What a busy space's page counts as for "referenced?": true while the pick's
/// budget lasts.
fn busy_is_referenced() -> bool {
    NR_BUSY.fetch_add(1, Ordering::Relaxed);
    let budget = BUSY_BUDGET.load(Ordering::Relaxed);
    if budget == u32::MAX {
        return true;
    }
    BUSY_BUDGET.store(budget.saturating_sub(1), Ordering::Relaxed);
    budget > 0
}

/// The hardware bits of a frame, read and cleared through the reverse map.
pub struct RmapProbe;

impl RmapProbe {
    /// Calls `pte_fn` on each PTE mapping the frame `pfn`; returns true if any call
    /// did. A space of the frame's family that cannot be locked right now counts as
    /// `busy()` says.
    fn any_pte(
        pfn: u64,
        busy: fn() -> bool,
        mut pte_fn: impl FnMut(&mut crate::mm::addr_space::AddressSpace, Page, Pte) -> bool,
    ) -> bool {
        let frame = Frame::from_pfn(pfn);
        let mut any = false;
        let candidates = rmap::candidates(frame);
        let after_candidates_fn = *AFTER_CANDIDATES_FN.lock();
        if let Some(after_candidates_fn) = after_candidates_fn {
            after_candidates_fn(&candidates);
        }
        for candidate in candidates {
            {
                let Some(mut space) = candidate.space.try_lock() else {
                    any |= busy();
                    park_if_last(candidate.space);
                    continue;
                };
                if let Some(pte) = rmap::pte_mapping(&space, candidate.page, frame) {
                    any |= pte_fn(&mut space, candidate.page, pte);
                }
            }
            park_if_last(candidate.space);
        }
        any
    }
}

/// Lets go of `space`; if that was its last reference, parks it for
/// [`release_deferred`] rather than tearing it down here.
fn park_if_last(space: rmap::SpaceRef) {
    if let Some(space) = alloc::sync::Arc::into_inner(space) {
        DEFERRED.lock().push(space);
    }
}

/// Returns true if the working-set sampler (`mm::wss`) consumed an Accessed bit of
/// the frame since the policy last looked (it leaves a mark in the frame's
/// descriptor, `FrameDesc::mark_sampled_reference`); with `is_clearing`, clears it.
fn sampled_reference(pfn: u64, is_clearing: bool) -> bool {
    frame::with_desc(Frame::from_pfn(pfn), |d| d.sampled_reference(is_clearing))
}

impl PageProbe for RmapProbe {
    fn is_referenced(&mut self, pfn: u64) -> bool {
        sampled_reference(pfn, false) || Self::any_pte(pfn, busy_is_referenced, |_, _, pte| pte.flags().contains(PteFlags::ACCESSED))
    }

    fn test_and_clear_referenced(&mut self, pfn: u64) -> bool {
        let was_sampled = sampled_reference(pfn, true);
        was_sampled | Self::any_pte(pfn, busy_is_referenced, |space, page, mut pte| {
            if !pte.flags().contains(PteFlags::ACCESSED) {
                return false;
            }
            // A 4 KiB entry: cleared atomically, with no shootdown (see the method).
            if let Some(was_young) = space.test_and_clear_young(page) {
                return was_young;
            }
            pte.remove_flags(PteFlags::ACCESSED);
            space.replace_pte(page, pte); // flushes, so the MMU sets the bit again
            true
        })
    }

    fn is_dirty(&mut self, pfn: u64) -> bool {
        let frame = Frame::from_pfn(pfn);
        let flags = frame::with_desc(frame, |d| d.flags());
        // A file page: dirty if the cache says so or a PTE wrote it (the file rmap's).
        if flags.contains(FrameFlags::FILE) {
            return flags.contains(FrameFlags::DIRTY);
        }
        // Not in the swap cache: no slot holds it yet, so evicting means a write.
        if !flags.contains(FrameFlags::SWAP_CACHE) || flags.contains(FrameFlags::DIRTY) {
            return true;
        }
        Self::any_pte(pfn, || true, |_, _, pte| pte.flags().contains(PteFlags::DIRTY)) // busy: dirty
    }
}
