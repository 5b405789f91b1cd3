//! `RmapProbe`: how a replacement policy sees the hardware Accessed and Dirty bits of
//! a user frame, through the reverse map (every PTE that maps it). Called with the
//! policy lock held; it only `try_lock`s address spaces (see the lock order in
//! [`crate::mm`]).

use mm_core::reclaim::PageProbe;

use crate::mm::frame::{self, FrameFlags};
use crate::mm::paging::{Pte, PteFlags};
use crate::mm::rmap;
use crate::mm::{Frame, Page};

/// The hardware bits of a frame, read and cleared through the reverse map.
pub struct RmapProbe;

impl RmapProbe {
    /// Calls `pte_fn` on each PTE mapping the frame `pfn`; returns true if any call
    /// did. A space of the frame's family that cannot be locked right now counts as
    /// "true" (in use).
    fn any_pte(pfn: u64, mut pte_fn: impl FnMut(&mut crate::mm::addr_space::AddressSpace, Page, Pte) -> bool) -> bool {
        let frame = Frame::from_pfn(pfn);
        let mut any = false;
        for candidate in rmap::candidates(frame) {
            let Some(mut space) = candidate.space.try_lock() else {
                any = true;
                continue;
            };
            if let Some(pte) = rmap::pte_mapping(&space, candidate.page, frame) {
                any |= pte_fn(&mut space, candidate.page, pte);
            }
        }
        any
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
        sampled_reference(pfn, false) || Self::any_pte(pfn, |_, _, pte| pte.flags().contains(PteFlags::ACCESSED))
    }

    fn test_and_clear_referenced(&mut self, pfn: u64) -> bool {
        let was_sampled = sampled_reference(pfn, true);
        was_sampled | Self::any_pte(pfn, |space, page, mut pte| {
            if !pte.flags().contains(PteFlags::ACCESSED) {
                return false;
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
        Self::any_pte(pfn, |_, _, pte| pte.flags().contains(PteFlags::DIRTY))
    }
}
