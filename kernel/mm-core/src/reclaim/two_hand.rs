//! The two-handed clock: a front hand clears, a back hand evicts (see [`super`]).

use super::ring::tracked_on_one_ring;
use super::{PageProbe, ReplacementPolicy, Ring, RingStore, VecLinks};

// The two-handed clock (SunOS 4, System V Release 4's page daemon).
//
// The one-handed clock clears a page's Accessed bit and only comes back to it a
// whole revolution later: with a lot of memory that is a long time, and most bits
// are set again by then, so the clock cannot tell hot pages from warm ones. The two
// hands fix the window: the *front* hand clears the Accessed bit of the page it
// passes, and the *back* hand, `spread` pages behind, evicts the page it reaches
// unless its bit was set again meanwhile (it then moves on without changing it;
// the front hand will clear it on its next pass). A page survives if it is used
// within the time the hands take to move `spread` pages:
//
//   spread 0       the back hand sees every bit just cleared: FIFO;
//   spread n - 1   a page has almost a whole revolution: the one-handed clock.
//
// Here the back hand is the ring's hand (the oldest page) and new pages go in just
// behind it. Evictions and exits take pages out from between the hands, so instead
// of remembering where the front hand was, each choice puts it `spread` pages ahead
// of the back hand (one walk, in one opening of the store) and moves both together.

/// The two-handed clock: the front hand clears Accessed bits, the back hand,
/// `spread` pages behind, evicts the first page whose bit is still clear.
#[derive(Clone, Debug)]
pub struct TwoHandClock<L = VecLinks> {
    ring: Ring<L>,
    spread: usize,
}

impl TwoHandClock {
    /// Creates an empty two-handed clock with the hands `spread` pages apart.
    pub fn new(spread: usize) -> TwoHandClock {
        TwoHandClock::with_links(VecLinks::default(), spread)
    }
}

impl<L: RingStore> TwoHandClock<L> {
    /// Creates an empty two-handed clock keeping its pages in `links`.
    pub fn with_links(links: L, spread: usize) -> TwoHandClock<L> {
        TwoHandClock { ring: Ring::new(links), spread }
    }

    /// Returns the distance between the hands, in pages.
    pub fn spread(&self) -> usize {
        self.spread
    }
}

impl<L: RingStore> ReplacementPolicy for TwoHandClock<L> {
    fn name(&self) -> &'static str {
        "2hand-clock"
    }
    tracked_on_one_ring!(ring, 0);
    /// The back hand's pages: it evicts them unless the front hand, passing first,
    /// finds them used again.
    fn upcoming_victims(&mut self, out: &mut [u64]) -> usize {
        self.ring.pages_from_hand(out)
    }
    fn take_for_hand_over(&mut self) -> Option<u64> {
        self.ring.take_at_hand()
    }
    fn pick_victim(&mut self, probe: &mut dyn PageProbe) -> Option<u64> {
        let nr_pages = self.ring.len();
        let mut front = self.ring.nth_from_hand(self.spread.min(nr_pages.saturating_sub(1)))?;
        // Each step clears one bit ahead and tests one behind: after n steps the
        // front hand has cleared every page, so within n more the back hand finds
        // one still clear (the bound only guards against a probe that never clears).
        for _ in 0..=2 * nr_pages {
            probe.test_and_clear_referenced(front);
            front = self.ring.next_of(front);
            let back = self.ring.hand_page()?;
            if !probe.is_referenced(back) {
                return self.ring.take_at_hand();
            }
            self.ring.advance();
        }
        self.ring.take_at_hand()
    }
}
