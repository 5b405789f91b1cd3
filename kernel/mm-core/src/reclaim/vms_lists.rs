//! The three lists of both VAX/VMS policies, [`super::SegmentedFifo`] (listed pages
//! stay mapped) and [`super::BufferedFifo`] (listed pages are unmapped): the FIFO
//! resident set, the clean and the dirty second-chance list, and the count of pages
//! rescued from the lists. The two policies differ in how pages reach the lists and
//! how a rescue is seen; what they do to the lists is here.

use super::{Ring, SECOND_CHANCE_SHARE, SharedRingStore};

/// Writes the constructors (`new`, `Default`, `with_links`) and `list_sizes` of a
/// VMS policy, a struct whose one field is `lists: VmsLists<L>`.
macro_rules! vms_policy_constructors {
    ($policy:ident) => {
        impl $policy {
            /// Creates empty lists over a fresh [`SharedVecLinks`](super::SharedVecLinks).
            pub fn new() -> $policy {
                $policy::with_links(super::SharedVecLinks::default())
            }
        }

        impl Default for $policy {
            fn default() -> $policy {
                $policy::new()
            }
        }

        impl<L: SharedRingStore> $policy<L> {
            /// Creates empty lists keeping their pages in (clones of) `links`.
            pub fn with_links(links: L) -> $policy<L> {
                $policy { lists: VmsLists::with_links(links) }
            }

            /// Returns (pages in the FIFO, on the clean list, on the dirty list).
            pub fn list_sizes(&self) -> (usize, usize, usize) {
                self.lists.sizes()
            }
        }
    };
}
pub(super) use vms_policy_constructors;

/// Writes the [`ReplacementPolicy`](super::ReplacementPolicy) methods a VMS policy
/// answers from its `lists` alone, as `tracked_on_one_ring!` does for one ring.
macro_rules! tracked_on_vms_lists {
    () => {
        fn nr_tracked(&self) -> usize {
            self.lists.nr_tracked()
        }
        fn is_tracked(&mut self, page: u64) -> bool {
            self.lists.place_of(page).is_some()
        }
        fn on_insert(&mut self, page: u64) {
            self.lists.insert(page);
        }
        fn on_access(&mut self, _page: u64) {}
        fn on_remove(&mut self, page: u64) {
            self.lists.remove(page);
        }
        fn nr_rescued(&self) -> u64 {
            self.lists.nr_rescued
        }
        /// The clean list, then the dirty list (the pages the modified-page writer
        /// would write), then the FIFO's oldest pages.
        fn upcoming_victims(&mut self, out: &mut [u64]) -> usize {
            self.lists.upcoming(out)
        }
    };
}
pub(super) use tracked_on_vms_lists;

/// A page's place, its age byte in the store the three lists share.
pub(super) const IN_FIFO: u8 = 1;
/// On the clean second-chance list.
pub(super) const ON_CLEAN_LIST: u8 = 2;
/// On the dirty second-chance list.
pub(super) const ON_DIRTY_LIST: u8 = 3;

/// The FIFO and the clean and dirty lists over one per-page store.
#[derive(Clone, Debug)]
pub(super) struct VmsLists<L> {
    pub(super) fifo: Ring<L>,
    pub(super) clean: Ring<L>,
    pub(super) dirty: Ring<L>,
    /// Pages taken back from a list to the FIFO.
    pub(super) nr_rescued: u64,
}

impl<L: SharedRingStore> VmsLists<L> {
    /// Creates empty lists keeping their pages in (clones of) `links`.
    pub(super) fn with_links(links: L) -> VmsLists<L> {
        VmsLists { fifo: Ring::new(links.clone()), clean: Ring::new(links.clone()), dirty: Ring::new(links), nr_rescued: 0 }
    }

    /// Returns (pages in the FIFO, on the clean list, on the dirty list).
    pub(super) fn sizes(&self) -> (usize, usize, usize) {
        (self.fifo.len(), self.clean.len(), self.dirty.len())
    }

    /// Returns the number of pages on the three lists.
    pub(super) fn nr_tracked(&self) -> usize {
        self.fifo.len() + self.clean.len() + self.dirty.len()
    }

    /// Returns the number of pages on the clean and dirty lists.
    pub(super) fn nr_listed(&self) -> usize {
        self.clean.len() + self.dirty.len()
    }

    /// Returns how many pages the lists should hold: 1/SECOND_CHANCE_SHARE of all,
    /// at least one.
    pub(super) fn nr_to_list(&self) -> usize {
        (self.nr_tracked() / SECOND_CHANCE_SHARE).max(1)
    }

    /// Returns where `page` is (its age byte), or `None` if it is not tracked.
    pub(super) fn place_of(&mut self, page: u64) -> Option<u8> {
        self.fifo.contains(page).then(|| self.fifo.age(page))
    }

    /// Puts a new page at the FIFO's newest end; no-op if it is tracked.
    pub(super) fn insert(&mut self, page: u64) {
        if self.place_of(page).is_none() {
            self.fifo.insert_behind_hand(page, IN_FIFO);
        }
    }

    /// Forgets `page`, wherever it is.
    pub(super) fn remove(&mut self, page: u64) {
        match self.place_of(page) {
            Some(IN_FIFO) => self.fifo.remove(page),
            Some(ON_CLEAN_LIST) => self.clean.remove(page),
            Some(_) => self.dirty.remove(page),
            None => {}
        }
    }

    /// Puts `page`, taken off the FIFO, at the end of the dirty or the clean list.
    pub(super) fn put_on_list(&mut self, page: u64, is_dirty: bool) {
        if is_dirty {
            self.dirty.insert_behind_hand(page, ON_DIRTY_LIST);
        } else {
            self.clean.insert_behind_hand(page, ON_CLEAN_LIST);
        }
    }

    /// Moves a listed `page` back to the FIFO's newest end, counted as a rescue;
    /// returns false (and does nothing) if `page` is on neither list.
    pub(super) fn rescue(&mut self, page: u64) -> bool {
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

    /// Takes the head of the clean list, else of the dirty list, else of the FIFO.
    pub(super) fn take_first(&mut self) -> Option<u64> {
        self.clean.take_at_hand().or_else(|| self.dirty.take_at_hand()).or_else(|| self.fifo.take_at_hand())
    }

    /// Writes the pages in the order [`take_first`](Self::take_first) would take
    /// them into `out`: the clean list, then the dirty list, then the FIFO's oldest.
    pub(super) fn upcoming(&mut self, out: &mut [u64]) -> usize {
        let mut nr_found = self.clean.pages_from_hand(out);
        nr_found += self.dirty.pages_from_hand(&mut out[nr_found..]);
        nr_found + self.fifo.pages_from_hand(&mut out[nr_found..])
    }
}

/// Takes up to `out.len()` pages from the head of `ring` into `out`; returns how many.
pub(super) fn take_from_head<L: SharedRingStore>(ring: &mut Ring<L>, out: &mut [u64]) -> usize {
    let mut nr_taken = 0;
    while nr_taken < out.len() {
        let Some(page) = ring.take_at_hand() else { break };
        out[nr_taken] = page;
        nr_taken += 1;
    }
    nr_taken
}
