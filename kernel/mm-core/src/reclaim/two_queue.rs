//! 2Q (Johnson and Shasha, 1994, the "simplified 2Q"), with Accessed bits instead of
//! seen accesses (see [`super`] for the other policies).

use super::{PageProbe, ReplacementPolicy, Ring, SharedRingStore, SharedVecLinks};

// Two queues over one shared per-page store, like the active/inactive lists:
//
// - A1, the *probation* queue (first in, first out), holds the pages faulted in
//   lately. It is kept small: one page in PROBATION_SHARE of those tracked.
// - Am, the *main* queue, a second-chance clock, holds the pages that proved
//   themselves: used again while on probation.
//
// A page faulted in joins A1's newest end. While A1 holds more than its share,
// reclaim takes from A1's oldest end; otherwise from Am with the clock. A page at
// A1's oldest end is looked at twice: the first time its Accessed bit is the
// fault's own, so the bit is cleared and the page goes round A1 once more; the
// second time, a set bit means it was used while on probation and it is promoted
// to Am, a clear one that it was not, and it is the victim.
//
// The difference from the active/inactive lists (1 : 1 there, and Am's pages are
// demoted back to the inactive list before they can go): A1 is a small share, so
// a page must be used again within a short time to stay, and Am's clock evicts
// directly. On a string whose pages are drawn independently with different
// frequencies (the recorded `thrash`, docs/16-replacement-policies.md) most pages
// faulted in are rare ones, and a short probation throws them out before they
// can push a frequent page out of Am; scans (pages used once) never reach Am.
// The full 2Q also remembers pages evicted from A1 (the A1out ghost queue) to
// promote them when they fault again; the kernel has no name for a page once its
// frame is gone, and on the recorded trace the ghosts made it worse, so this one
// has none.
//
// Each page's age byte says where it is: IN_A1_NEW, IN_A1_SEEN, IN_AM.

/// A1 (probation) is kept at one page in this many of those tracked (at least 1).
pub const PROBATION_SHARE: usize = 32;

const IN_A1_NEW: u8 = 1;
const IN_A1_SEEN: u8 = 2;
const IN_AM: u8 = 3;

/// 2Q: new pages on a short probation queue, promoted to a clock when used again.
#[derive(Clone, Debug)]
pub struct TwoQueue<L = SharedVecLinks> {
    probation: Ring<L>,
    main: Ring<L>,
    nr_promoted: u64,
}

impl TwoQueue {
    /// Creates empty queues over a fresh [`SharedVecLinks`].
    pub fn new() -> TwoQueue {
        TwoQueue::with_links(SharedVecLinks::default())
    }
}

impl Default for TwoQueue {
    fn default() -> TwoQueue {
        TwoQueue::new()
    }
}

impl<L: SharedRingStore> TwoQueue<L> {
    /// Creates empty queues keeping their pages in (clones of) `links`.
    pub fn with_links(links: L) -> TwoQueue<L> {
        TwoQueue { probation: Ring::new(links.clone()), main: Ring::new(links), nr_promoted: 0 }
    }

    /// Returns (pages in Am, pages in A1).
    pub fn queue_sizes(&self) -> (usize, usize) {
        (self.main.len(), self.probation.len())
    }

    /// Returns the pages promoted from A1 to Am since creation.
    pub fn nr_promoted(&self) -> u64 {
        self.nr_promoted
    }

    /// Returns where `page` is (its age byte), or `None` if it is not tracked.
    fn place_of(&mut self, page: u64) -> Option<u8> {
        // The store is shared: being on any ring means being on one of ours.
        self.probation.contains(page).then(|| self.probation.age(page))
    }

    /// Returns true if the next victim comes from A1 (over its share, or Am empty).
    fn takes_from_probation(&self) -> bool {
        let share = ((self.probation.len() + self.main.len()) / PROBATION_SHARE).max(1);
        self.probation.len() > share || self.main.is_empty()
    }
}

impl<L: SharedRingStore> ReplacementPolicy for TwoQueue<L> {
    fn name(&self) -> &'static str {
        "2q"
    }
    /// Am's pages (the clock's order) count as active, A1's as inactive.
    fn active_inactive_sizes(&self) -> Option<(usize, usize)> {
        Some(self.queue_sizes())
    }
    fn nr_tracked(&self) -> usize {
        self.probation.len() + self.main.len()
    }
    fn is_tracked(&mut self, page: u64) -> bool {
        self.place_of(page).is_some()
    }
    fn on_insert(&mut self, page: u64) {
        if self.place_of(page).is_none() {
            self.probation.insert_behind_hand(page, IN_A1_NEW);
        }
    }
    fn on_access(&mut self, _page: u64) {}
    fn on_remove(&mut self, page: u64) {
        match self.place_of(page) {
            Some(IN_AM) => self.main.remove(page),
            Some(_) => self.probation.remove(page),
            None => {}
        }
    }
    /// A1's oldest pages while A1 is over its share, else Am's from the hand.
    fn upcoming_victims(&mut self, out: &mut [u64]) -> usize {
        if self.takes_from_probation() { self.probation.pages_from_hand(out) } else { self.main.pages_from_hand(out) }
    }
    fn pick_victim(&mut self, probe: &mut dyn PageProbe) -> Option<u64> {
        // Each page goes round A1 at most once, is promoted at most once and has
        // its bit cleared by Am's hand at most once per choice: 3n + 1 steps end
        // it; the bound only guards against a broken probe.
        for _ in 0..=3 * self.nr_tracked() + 1 {
            if !self.takes_from_probation() {
                let page = self.main.hand_page()?;
                if !probe.test_and_clear_referenced(page) {
                    return self.main.take_at_hand();
                }
                self.main.advance();
                continue;
            }
            let page = self.probation.hand_page()?;
            let is_new = self.probation.age(page) == IN_A1_NEW;
            let was_used = probe.test_and_clear_referenced(page);
            if !is_new && !was_used {
                return self.probation.take_at_hand();
            }
            self.probation.remove(page);
            if is_new {
                self.probation.insert_behind_hand(page, IN_A1_SEEN);
            } else {
                self.nr_promoted += 1;
                self.main.insert_behind_hand(page, IN_AM);
            }
        }
        self.probation.take_at_hand().or_else(|| self.main.take_at_hand())
    }
}
