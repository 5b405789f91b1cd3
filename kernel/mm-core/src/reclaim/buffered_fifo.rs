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
// none).
//
// Per-process resident-set limits (VMS's working-set limit, local replacement):
//
//   claim_for(page, owner, limit)  a fault mapped `page` for process `owner`:
//                                  it moves to that process's own FIFO ring;
//                                  true if the ring now holds more than `limit`
//   take_over_limit(out)           the oldest pages of every ring over its
//                                  limit, for the caller to unmap and report
//                                  with on_buffered (onto the global lists)
//
// A page never claimed (a page cache page, one handed over from another policy)
// stays in the global FIFO. Each ring's pages carry its own age byte
// (FIRST_SET + slot), so `on_remove` knows the ring without a search; there are
// MAX_SETS slots, and a process that finds none free is not limited (its pages
// stay global). When the global FIFO is empty, the oldest page of the largest
// ring is the next to buffer or evict (VMS's swapper trimming working sets). The kernel calls these from reclaim (`kernel/src/mm/reclaim/buffering.rs`);
// the simulator (`simulate`) does the same over its toy MMU.

const IN_FIFO: u8 = 1;
const ON_CLEAN_LIST: u8 = 2;
const ON_DIRTY_LIST: u8 = 3;
/// The age byte of the first per-process ring; slot `i` has `FIRST_SET + i`.
const FIRST_SET: u8 = 4;
/// Per-process rings: one per age byte left.
pub const MAX_SETS: usize = (u8::MAX - FIRST_SET) as usize + 1;
/// The owner of a free slot.
const NO_OWNER: u64 = u64::MAX;

/// One process's resident set: its own FIFO ring and limit.
#[derive(Clone, Debug)]
struct ResidentSet<L> {
    owner: u64,
    limit: usize,
    ring: Ring<L>,
}

/// VAX/VMS segmented FIFO whose second-chance lists hold *unmapped* pages (true
/// page buffering); the caller unmaps them and reports faults on them.
#[derive(Clone, Debug)]
pub struct BufferedFifo<L = SharedVecLinks> {
    fifo: Ring<L>,
    clean: Ring<L>,
    dirty: Ring<L>,
    nr_rescued: u64,
    /// Per-process rings, indexed by slot (age byte - FIRST_SET).
    sets: alloc::vec::Vec<ResidentSet<L>>,
    /// Pages on all of them.
    nr_in_sets: usize,
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
        let sets = (0..MAX_SETS).map(|_| ResidentSet { owner: NO_OWNER, limit: 0, ring: Ring::new(links.clone()) }).collect();
        BufferedFifo {
            fifo: Ring::new(links.clone()),
            clean: Ring::new(links.clone()),
            dirty: Ring::new(links),
            nr_rescued: 0,
            sets,
            nr_in_sets: 0,
        }
    }

    /// Returns the pages in `owner`'s own FIFO ring and its limit, or `None` if it
    /// has none (no page claimed, or no slot free).
    pub fn resident_set(&self, owner: u64) -> Option<(usize, usize)> {
        self.sets.iter().find(|s| s.owner == owner && !s.ring.is_empty()).map(|s| (s.ring.len(), s.limit))
    }

    /// Returns the slot of `owner`'s ring, giving it a free one if it has none.
    fn slot_for(&mut self, owner: u64) -> Option<usize> {
        let mut free = None;
        for (slot, set) in self.sets.iter().enumerate() {
            if set.owner == owner {
                return Some(slot);
            }
            if free.is_none() && set.ring.is_empty() {
                free = Some(slot);
            }
        }
        let slot = free?;
        self.sets[slot].owner = owner;
        Some(slot)
    }

    /// Takes the oldest page of the global FIFO, else of the largest ring.
    fn take_oldest(&mut self) -> Option<u64> {
        if let Some(page) = self.fifo.take_at_hand() {
            return Some(page);
        }
        let set = self.sets.iter_mut().max_by_key(|s| s.ring.len())?;
        let page = set.ring.take_at_hand()?;
        self.nr_in_sets -= 1;
        Some(page)
    }

    /// Removes `page` from the ring of `slot`, freeing the slot once empty.
    fn remove_from_set(&mut self, slot: usize, page: u64) {
        let set = &mut self.sets[slot];
        if set.ring.contains(page) {
            set.ring.remove(page);
            self.nr_in_sets -= 1;
        }
        if set.ring.is_empty() {
            set.owner = NO_OWNER;
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
        self.fifo.len() + self.clean.len() + self.dirty.len() + self.nr_in_sets
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
            Some(ON_DIRTY_LIST) => self.dirty.remove(page),
            Some(age) if age >= FIRST_SET => self.remove_from_set(usize::from(age - FIRST_SET), page),
            _ => {}
        }
    }
    fn pick_victim(&mut self, _probe: &mut dyn PageProbe) -> Option<u64> {
        self.clean.take_at_hand().or_else(|| self.dirty.take_at_hand()).or_else(|| self.take_oldest())
    }
    /// The clean list, then the dirty list, then the FIFO's oldest pages, then
    /// the largest resident set's.
    fn upcoming_victims(&mut self, out: &mut [u64]) -> usize {
        let mut nr_found = self.clean.pages_from_hand(out);
        nr_found += self.dirty.pages_from_hand(&mut out[nr_found..]);
        nr_found += self.fifo.pages_from_hand(&mut out[nr_found..]);
        match self.sets.iter_mut().max_by_key(|s| s.ring.len()) {
            Some(set) => nr_found + set.ring.pages_from_hand(&mut out[nr_found..]),
            None => nr_found,
        }
    }
    fn claim_for(&mut self, page: u64, owner: u64, limit: usize) -> bool {
        let place = self.place_of(page);
        match place {
            Some(IN_FIFO) | None => {}
            Some(age) if age >= FIRST_SET => {
                // Some ring's already (a page shared after fork stays its first owner's).
                let set = &mut self.sets[usize::from(age - FIRST_SET)];
                if set.owner == owner {
                    set.limit = limit;
                }
                return set.owner == owner && set.ring.len() > limit;
            }
            Some(_) => return false, // on a list: the caller's rescue comes first
        }
        let Some(slot) = self.slot_for(owner) else { return false };
        if place == Some(IN_FIFO) {
            self.fifo.remove(page);
        }
        let set = &mut self.sets[slot];
        set.limit = limit;
        set.ring.insert_behind_hand(page, FIRST_SET + slot as u8);
        self.nr_in_sets += 1;
        set.ring.len() > limit
    }
    fn take_over_limit(&mut self, out: &mut [u64]) -> usize {
        let mut nr_taken = 0;
        for set in &mut self.sets {
            while nr_taken < out.len() && set.ring.len() > set.limit {
                let Some(page) = set.ring.take_at_hand() else { break };
                out[nr_taken] = page;
                nr_taken += 1;
                self.nr_in_sets -= 1;
            }
            if set.ring.is_empty() {
                set.owner = NO_OWNER;
            }
        }
        nr_taken
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
            let Some(page) = self.take_oldest() else { break };
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
        super::vms_lists::take_from_head(&mut self.dirty, out)
    }
    fn on_cleaned(&mut self, page: u64) {
        if self.place_of(page).is_none() {
            self.clean.insert_behind_hand(page, ON_CLEAN_LIST);
        }
    }
    fn resident_set_of(&self, owner: u64) -> Option<(usize, usize)> {
        self.resident_set(owner)
    }
}
