//! Page buffering for the `vms` policy (VAX/VMS segmented FIFO,
//! `mm_core::reclaim::BufferedFifo`): moving the FIFO's oldest pages onto the
//! second-chance lists *unmapped*, writing the dirty list, and counting the faults
//! that rescue pages from the lists.
//!
//! ```text
//!  shrink() (reclaim.rs), before each batch of victims: refill_second_chance_lists()
//!    policy.take_for_buffering  (POLICY held)   the FIFO's oldest, as many as the lists lack
//!    swap::buffer::unmap_keep   (no lock held)  PTEs -> swap entries, frame kept in the swap cache
//!    policy.on_buffered         (POLICY held)   onto the clean or the dirty list
//!    the dirty list holds a cluster or more?  write it (swap::buffer::write_buffered,
//!    adjacent slots in one request): those pages move to the clean list
//!  the victims then come from the clean list's head: evicting an unmapped clean
//!  swap-cache page frees it without I/O (evict.rs)
//!
//!  a fault on a listed page (swapin.rs, do_swap_fault): a swap-cache hit; it calls
//!  note_soft_fault -> policy.on_soft_fault: back to the FIFO's newest end, a rescue
//!  (/proc/vmstat `pgrescued`, and the policy's own count)
//! ```
//! A page that cannot be unmapped (a file page, a busy space, swap full) goes on
//! the clean list still mapped and leaves by plain eviction when reached. Policies
//! without page buffering take nothing, so this costs them one lock round trip.
//!
//! Lock state: called with no lock held; takes [`super::POLICY`] only around the
//! policy's calls, never across an unmap or a write.
#![deny(unsafe_code)]

use super::{POLICY, SWAP_CLUSTER, is_live_user_frame};
use super::switch::Installed;
use crate::mm::Frame;
use crate::mm::swap::buffer::{unmap_keep, write_buffered};
use crate::mm::vmstat::{self, SwapEvent};

/// Tops up the policy's second-chance lists by unmapping the pages it hands out,
/// then writes a cluster of the dirty list if it holds one; returns the pages
/// unmapped. Does nothing under a policy without page buffering. Call with no
/// lock held.
pub fn refill_second_chance_lists() -> usize {
    let nr_unmapped = buffer_pages(|policy, pages| policy.take_for_buffering(pages));
    clean_dirty_list();
    nr_unmapped
}

/// Unmaps the pages `take` hands out (with the policy lock held), in batches, and
/// reports each back (`on_buffered`) onto the second-chance lists, until `take`
/// gives less than a batch; returns the pages unmapped. Call with no lock held.
pub(super) fn buffer_pages(mut take: impl FnMut(&mut Installed, &mut [u64]) -> usize) -> usize {
    let mut pages = [0u64; SWAP_CLUSTER];
    let mut nr_unmapped = 0;
    loop {
        let nr_taken = POLICY.lock().as_mut().map_or(0, |p| take(p, &mut pages));
        for &pfn in &pages[..nr_taken] {
            let frame = Frame::from_pfn(pfn);
            let result = unmap_keep(frame);
            nr_unmapped += usize::from(result.is_ok());
            let mut policy = POLICY.lock();
            if let Some(policy) = policy.as_mut()
                && is_live_user_frame(frame)
            {
                // Not unmapped (Err): on the clean list mapped, evicted as usual.
                policy.on_buffered(pfn, result.unwrap_or(false));
            }
        }
        if nr_taken < pages.len() {
            break;
        }
    }
    nr_unmapped
}

/// Writes the dirty list's oldest [`SWAP_CLUSTER`] pages if it holds that many
/// (VMS's modified page writer: in clusters), moving them to the clean list.
fn clean_dirty_list() {
    let mut pages = [0u64; SWAP_CLUSTER];
    let nr_taken = {
        let mut policy = POLICY.lock();
        match policy.as_mut() {
            Some(p) if p.nr_dirty_buffered() >= SWAP_CLUSTER => p.take_for_cleaning(&mut pages),
            _ => 0,
        }
    };
    if nr_taken == 0 {
        return;
    }
    let mut frames = [Frame::from_pfn(0); SWAP_CLUSTER];
    for (frame, &pfn) in frames.iter_mut().zip(&pages[..nr_taken]) {
        *frame = Frame::from_pfn(pfn);
    }
    write_buffered(&frames[..nr_taken]);
    let mut policy = POLICY.lock();
    let Some(policy) = policy.as_mut() else { return };
    for &frame in &frames[..nr_taken] {
        if is_live_user_frame(frame) {
            // Written, or not (mapped again, a failed write): the clean list either
            // way; eviction writes whatever is still dirty.
            policy.on_cleaned(frame.pfn());
        }
    }
}

/// A fault mapped `frame` from the swap cache without I/O: if it was on a
/// second-chance list, that is a rescue (counted, and moved back to the FIFO).
/// Called under the faulting space's lock (the lock order allows the policy's).
pub fn note_soft_fault(frame: Frame) {
    let is_rescue = POLICY.lock().as_mut().is_some_and(|p| p.on_soft_fault(frame.pfn()));
    if is_rescue {
        vmstat::count(SwapEvent::Rescued);
    }
}
