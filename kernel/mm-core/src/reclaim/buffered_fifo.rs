//! VAX/VMS segmented FIFO with *true* page buffering: pages pushed out of the FIFO
//! are unmapped (the caller does that) but keep their frames on a clean or a dirty
//! list, and a fault on one maps it back without I/O (see [`super`] for the others).

use super::{PageProbe, ReplacementPolicy, Ring, SharedRingStore, SharedVecLinks, SECOND_CHANCE_SHARE};

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

const IN_FIFO: u8 = 1;
const ON_CLEAN_LIST: u8 = 2;
const ON_DIRTY_LIST: u8 = 3;

/// VAX/VMS segmented FIFO whose second-chance lists hold *unmapped* pages (true
/// page buffering); the caller unmaps them and reports faults on them.
#[derive(Clone, Debug)]
pub struct BufferedFifo<L = SharedVecLinks> {
    fifo: Ring<L>,
    clean: Ring<L>,
    dirty: Ring<L>,
    nr_rescued: u64,
}

impl BufferedFifo {
    /// Creates empty lists over a fresh [`SharedVecLinks`].
    pub fn new() -> BufferedFifo {
        BufferedFifo::with_links(SharedVecLinks::default())
    }
}

impl Default for BufferedFifo {
    fn default() -> BufferedFifo {
        BufferedFifo::new()
    }
}

impl<L: SharedRingStore> BufferedFifo<L> {
    /// Creates empty lists keeping their pages in (clones of) `links`.
    pub fn with_links(links: L) -> BufferedFifo<L> {
        BufferedFifo {
            fifo: Ring::new(links.clone()),
            clean: Ring::new(links.clone()),
            dirty: Ring::new(links),
            nr_rescued: 0,
        }
    }

    /// Returns (pages in the FIFO, on the clean list, on the dirty list).
    pub fn list_sizes(&self) -> (usize, usize, usize) {
        (self.fifo.len(), self.clean.len(), self.dirty.len())
    }

    /// Returns where `page` is (its age byte), or `None` if it is not tracked.
    fn place_of(&mut self, page: u64) -> Option<u8> {
        self.fifo.contains(page).then(|| self.fifo.age(page))
    }

    /// How many pages the lists should hold: 1/SECOND_CHANCE_SHARE of all, at least one.
    fn lists_target(&self) -> usize {
        (self.nr_tracked() / SECOND_CHANCE_SHARE).max(1)
    }
}

impl<L: SharedRingStore> ReplacementPolicy for BufferedFifo<L> {
    fn name(&self) -> &'static str {
        "vms"
    }
    fn nr_tracked(&self) -> usize {
        self.fifo.len() + self.clean.len() + self.dirty.len()
    }
    fn is_tracked(&mut self, page: u64) -> bool {
        self.place_of(page).is_some()
    }
    fn on_insert(&mut self, page: u64) {
        if self.place_of(page).is_none() {
            self.fifo.insert_behind_hand(page, IN_FIFO);
        }
    }
    fn on_access(&mut self, _page: u64) {}
    fn on_remove(&mut self, page: u64) {
        match self.place_of(page) {
            Some(IN_FIFO) => self.fifo.remove(page),
            Some(ON_CLEAN_LIST) => self.clean.remove(page),
            Some(_) => self.dirty.remove(page),
            None => {}
        }
    }
    fn pick_victim(&mut self, _probe: &mut dyn PageProbe) -> Option<u64> {
        self.clean.take_at_hand().or_else(|| self.dirty.take_at_hand()).or_else(|| self.fifo.take_at_hand())
    }
    /// The clean list, then the dirty list, then the FIFO's oldest pages.
    fn upcoming_victims(&mut self, out: &mut [u64]) -> usize {
        let mut nr_found = self.clean.pages_from_hand(out);
        nr_found += self.dirty.pages_from_hand(&mut out[nr_found..]);
        nr_found + self.fifo.pages_from_hand(&mut out[nr_found..])
    }
    fn spares_referenced_pages(&self) -> bool {
        false
    }
    fn take_for_hand_over(&mut self) -> Option<u64> {
        self.pick_victim(&mut super::NoBitsProbe)
    }
    fn nr_rescued(&self) -> u64 {
        self.nr_rescued
    }
    fn take_for_buffering(&mut self, out: &mut [u64]) -> usize {
        let nr_wanted = self.lists_target().saturating_sub(self.clean.len() + self.dirty.len()).min(out.len());
        let mut nr_taken = 0;
        while nr_taken < nr_wanted {
            let Some(page) = self.fifo.take_at_hand() else { break };
            out[nr_taken] = page;
            nr_taken += 1;
        }
        nr_taken
    }
    fn on_buffered(&mut self, page: u64, is_dirty: bool) {
        if self.place_of(page).is_none() {
            if is_dirty {
                self.dirty.insert_behind_hand(page, ON_DIRTY_LIST);
            } else {
                self.clean.insert_behind_hand(page, ON_CLEAN_LIST);
            }
        }
    }
    fn on_soft_fault(&mut self, page: u64) -> bool {
        let list = match self.place_of(page) {
            Some(ON_CLEAN_LIST) => &mut self.clean,
            Some(ON_DIRTY_LIST) => &mut self.dirty,
            _ => return false,
        };
        list.remove(page);
        self.fifo.insert_behind_hand(page, IN_FIFO);
        self.nr_rescued += 1;
        true
    }
    fn nr_dirty_buffered(&self) -> usize {
        self.dirty.len()
    }
    fn take_for_cleaning(&mut self, out: &mut [u64]) -> usize {
        let mut nr_taken = 0;
        while nr_taken < out.len() {
            let Some(page) = self.dirty.take_at_hand() else { break };
            out[nr_taken] = page;
            nr_taken += 1;
        }
        nr_taken
    }
    fn on_cleaned(&mut self, page: u64) {
        if self.place_of(page).is_none() {
            self.clean.insert_behind_hand(page, ON_CLEAN_LIST);
        }
    }
}
