//! VAX/VMS segmented FIFO with *true* page buffering: pages pushed out of the FIFO
//! are unmapped (the caller does that) but keep their frames on a clean or a dirty
//! list, and a fault on one maps it back without I/O (see [`super`] for the others).

use super::vms_lists::{self, VmsLists};
use super::{PageProbe, ReplacementPolicy, SharedRingStore, SharedVecLinks};

// [`super::SegmentedFifo`] keeps the pages on its second-chance lists mapped and
// learns of a touch from the Accessed bit when it gets to them. VMS did not: a page
// leaving the resident set was *unmapped* (its PTE not valid, the frame kept) and
// put at the tail of the free list (clean) or the modified list (dirty). A touch
// then faults at once, the fault handler finds the frame on a list and maps it
// back: a "soft fault", a rescue, no disk I/O. Frames for new pages come from the
// head of the free list; the modified page writer writes the modified list in
// clusters and moves the pages to the free list, where they can still be rescued
// until their frame is reused.
//
// The policy cannot unmap pages itself (it never touches page tables), so the
// caller does it in two steps:
//
//   take_for_buffering(out)   the FIFO's oldest pages, as many as the lists lack
//                             to hold 1/SECOND_CHANCE_SHARE of the pages; they
//                             are untracked until reported back
//   on_buffered(page, dirty)  the caller unmapped it: onto the dirty or clean list
//                             (also for a page it could NOT unmap: it then sits on
//                             the clean list mapped, and goes by plain eviction)
//   on_soft_fault(page)       a fault mapped a listed page back: to the FIFO's
//                             newest end, counted as a rescue
//   take_for_cleaning(out)    the dirty list's oldest pages, to write
//   on_cleaned(page)          written: onto the clean list
//
// `pick_victim` takes the head of the clean list, else of the dirty list (its
// eviction writes it), else the FIFO's head; it reads no Accessed bit (the VAX had
// none). The kernel calls these from reclaim (`kernel/src/mm/reclaim/buffering.rs`);
// the simulator (`simulate`) does the same over its toy MMU.

/// VAX/VMS segmented FIFO whose second-chance lists hold *unmapped* pages (true
/// page buffering); the caller unmaps them and reports faults on them.
#[derive(Clone, Debug)]
pub struct BufferedFifo<L = SharedVecLinks> {
    lists: VmsLists<L>,
}

vms_lists::vms_policy_constructors!(BufferedFifo);

impl<L: SharedRingStore> ReplacementPolicy for BufferedFifo<L> {
    vms_lists::tracked_on_vms_lists!();
    fn name(&self) -> &'static str {
        "vms"
    }
    fn pick_victim(&mut self, _probe: &mut dyn PageProbe) -> Option<u64> {
        self.lists.take_first()
    }
    fn spares_referenced_pages(&self) -> bool {
        false
    }
    fn take_for_hand_over(&mut self) -> Option<u64> {
        self.pick_victim(&mut super::NoBitsProbe)
    }
    fn take_for_buffering(&mut self, out: &mut [u64]) -> usize {
        let nr_wanted = self.lists.nr_to_list().saturating_sub(self.lists.nr_listed()).min(out.len());
        vms_lists::take_from_head(&mut self.lists.fifo, &mut out[..nr_wanted])
    }
    fn on_buffered(&mut self, page: u64, is_dirty: bool) {
        if self.lists.place_of(page).is_none() {
            self.lists.put_on_list(page, is_dirty);
        }
    }
    fn on_soft_fault(&mut self, page: u64) -> bool {
        self.lists.rescue(page)
    }
    fn nr_dirty_buffered(&self) -> usize {
        self.lists.dirty.len()
    }
    fn take_for_cleaning(&mut self, out: &mut [u64]) -> usize {
        vms_lists::take_from_head(&mut self.lists.dirty, out)
    }
    fn on_cleaned(&mut self, page: u64) {
        if self.lists.place_of(page).is_none() {
            self.lists.put_on_list(page, false);
        }
    }
}
