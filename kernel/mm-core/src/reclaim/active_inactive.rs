//! Linux-style active and inactive lists (see [`super`] for the other policies).

use super::{PageProbe, ReplacementPolicy, Ring, SharedRingStore, SharedVecLinks};

// Two lists instead of one ring (Linux's `mm/vmscan.c`, simplified to anonymous
// pages and without the refault distances of its workingset code).
//
// A page faulted in goes to the *inactive* list: one use proves little, a page read
// once by a scan should not push out pages used all the time. Reclaim takes victims
// from the oldest end of the inactive list. A page it finds there with the Accessed
// bit set was used since it came in: the first time, it is marked "referenced" and
// goes round the inactive list again (Linux's PG_referenced); a page found used
// twice is *promoted* to the active list. Victims never come from the active list
// directly: before each choice the active list is aged down until it holds no more
// than ACTIVE_PER_INACTIVE times the inactive list's pages: its oldest page is
// tested and either moves to the active list's newest end (it was used: this is the
// clock inside the active list) or is *deactivated* to the inactive list, where it
// must prove itself again before reclaim reaches it.
//
// Each page's one age byte says where it is (the lists share the per-page store):
//   ON_INACTIVE, ON_INACTIVE_REFERENCED, ON_ACTIVE.
// Linux keeps inactive : active near 1 : 1 below 1 GiB of memory
// (`inactive_is_low`); so does this.

/// The active list may hold at most this many times the inactive list's pages.
pub const ACTIVE_PER_INACTIVE: usize = 1;

const ON_INACTIVE: u8 = 1;
const ON_INACTIVE_REFERENCED: u8 = 2;
const ON_ACTIVE: u8 = 3;

/// Linux-style replacement: new pages start inactive, a second reference promotes
/// them to the active list, the active list is aged down to keep the ratio.
#[derive(Clone, Debug)]
pub struct ActiveInactive<L = SharedVecLinks> {
    active: Ring<L>,
    inactive: Ring<L>,
    nr_promoted: u64,
    nr_deactivated: u64,
}

impl ActiveInactive {
    /// Creates empty lists over a fresh [`SharedVecLinks`].
    pub fn new() -> ActiveInactive {
        ActiveInactive::with_links(SharedVecLinks::default())
    }
}

impl Default for ActiveInactive {
    fn default() -> ActiveInactive {
        ActiveInactive::new()
    }
}

impl<L: SharedRingStore> ActiveInactive<L> {
    /// Creates empty lists keeping their pages in (clones of) `links`.
    pub fn with_links(links: L) -> ActiveInactive<L> {
        ActiveInactive { active: Ring::new(links.clone()), inactive: Ring::new(links), nr_promoted: 0, nr_deactivated: 0 }
    }

    /// Returns (pages on the active list, pages on the inactive list).
    pub fn list_sizes(&self) -> (usize, usize) {
        (self.active.len(), self.inactive.len())
    }

    /// Returns (pages promoted to active, pages deactivated) since creation.
    pub fn nr_moves(&self) -> (u64, u64) {
        (self.nr_promoted, self.nr_deactivated)
    }

    /// Returns where `page` is (its age byte), or `None` if it is not tracked.
    fn place_of(&mut self, page: u64) -> Option<u8> {
        // The store is shared: being on any ring means being on one of ours.
        self.inactive.contains(page).then(|| self.inactive.age(page))
    }

    /// Moves the active list's oldest pages to the inactive list until the ratio
    /// holds; a used one goes round the active list instead (at most once each).
    fn age_active(&mut self, probe: &mut dyn PageProbe) {
        let mut nr_rotations_left = self.active.len();
        while self.active.len() > ACTIVE_PER_INACTIVE * self.inactive.len() {
            let Some(page) = self.active.hand_page() else { return };
            self.active.remove(page);
            if probe.test_and_clear_referenced(page) && nr_rotations_left > 0 {
                nr_rotations_left -= 1;
                self.active.insert_behind_hand(page, ON_ACTIVE);
            } else {
                self.nr_deactivated += 1;
                self.inactive.insert_behind_hand(page, ON_INACTIVE);
            }
        }
    }
}

impl<L: SharedRingStore> ReplacementPolicy for ActiveInactive<L> {
    /// The inactive list's oldest pages: reclaim takes from there.
    fn upcoming_victims(&mut self, out: &mut [u64]) -> usize {
        self.inactive.pages_from_hand(out)
    }
    fn name(&self) -> &'static str {
        "active-inactive"
    }

    fn active_inactive_sizes(&self) -> Option<(usize, usize)> {
        Some(self.list_sizes())
    }
    fn nr_tracked(&self) -> usize {
        self.active.len() + self.inactive.len()
    }
    fn is_tracked(&mut self, page: u64) -> bool {
        self.place_of(page).is_some()
    }
    fn on_insert(&mut self, page: u64) {
        if self.place_of(page).is_none() {
            self.inactive.insert_behind_hand(page, ON_INACTIVE);
        }
    }
    fn on_access(&mut self, _page: u64) {}
    fn on_remove(&mut self, page: u64) {
        match self.place_of(page) {
            Some(ON_ACTIVE) => self.active.remove(page),
            Some(_) => self.inactive.remove(page),
            None => {}
        }
    }
    fn pick_victim(&mut self, probe: &mut dyn PageProbe) -> Option<u64> {
        // Every page is promoted at most once per choice (a promotion needs two
        // passes), so 2n + 1 steps end it; the bound guards against a broken probe.
        for _ in 0..=2 * self.nr_tracked() {
            self.age_active(probe);
            let page = self.inactive.hand_page()?;
            if !probe.test_and_clear_referenced(page) {
                return self.inactive.take_at_hand();
            }
            let was_referenced = self.inactive.age(page) == ON_INACTIVE_REFERENCED;
            self.inactive.remove(page);
            if was_referenced {
                self.nr_promoted += 1;
                self.active.insert_behind_hand(page, ON_ACTIVE);
            } else {
                self.inactive.insert_behind_hand(page, ON_INACTIVE_REFERENCED);
            }
        }
        self.inactive.take_at_hand().or_else(|| self.active.take_at_hand())
    }
}
