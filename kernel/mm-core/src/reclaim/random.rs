//! Random replacement: evicts a page chosen uniformly at random (see [`super`]).

use super::ring::tracked_on_one_ring;
use super::{PageProbe, ReplacementPolicy, Ring, RingStore, VecLinks};
use crate::xorshift::XorShift;

/// Evicts a tracked page chosen uniformly at random, from a seeded [`XorShift`].
///
/// It knows nothing about use, so it is the baseline every other policy must beat:
/// on a loop slightly larger than memory it does better than FIFO and LRU (which
/// evict exactly the page needed next), and on anything with locality it does worse.
/// The same seed gives the same victims, so a run can be repeated. A pick walks
/// from the hand to the chosen page: O(n) steps, in one opening of the store.
#[derive(Clone, Debug)]
pub struct Random<L = VecLinks> {
    ring: Ring<L>,
    rng: XorShift,
}

impl Random {
    /// Creates an empty random policy drawing from `seed` (0 is taken as 1).
    pub fn new(seed: u64) -> Random {
        Random::with_links(VecLinks::default(), seed)
    }
}

impl<L: RingStore> Random<L> {
    /// Creates an empty random policy keeping its pages in `links`.
    pub fn with_links(links: L, seed: u64) -> Random<L> {
        Random { ring: Ring::new(links), rng: XorShift(seed.max(1)) }
    }
}

impl<L: RingStore> ReplacementPolicy for Random<L> {
    fn name(&self) -> &'static str {
        "random"
    }
    tracked_on_one_ring!(ring, 0);
    /// Any page is as likely as another: the pages from the hand, where the walk
    /// to a random victim starts.
    fn upcoming_victims(&mut self, out: &mut [u64]) -> usize {
        self.ring.pages_from_hand(out)
    }
    fn spares_referenced_pages(&self) -> bool {
        false
    }
    fn take_for_hand_over(&mut self) -> Option<u64> {
        self.ring.take_at_hand()
    }
    fn pick_victim(&mut self, _probe: &mut dyn PageProbe) -> Option<u64> {
        if self.ring.is_empty() {
            return None;
        }
        let nr_steps = self.rng.below(self.ring.len() as u64) as usize;
        let victim = self.ring.nth_from_hand(nr_steps)?;
        self.ring.remove(victim);
        Some(victim)
    }
}
