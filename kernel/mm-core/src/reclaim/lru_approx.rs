//! LRU approximated by aging an 8-bit history of the Accessed bit (see [`super`]).

use super::ring::tracked_on_one_ring;
use super::{PageProbe, ReplacementPolicy, Ring, RingStore, VecLinks};

/// LRU approximated by aging (Tanenbaum, "Modern Operating Systems").
///
/// Each page keeps an 8-bit history. On every tick the history shifts right by one
/// and the page's Accessed bit (tested and cleared) enters at the top, so a page
/// used in the last tick outranks one used only before it. The victim is the page
/// with the smallest history, the oldest arrival among equals. A new page starts
/// with the top bit set: the access that faulted it in counts as recent.
///
/// The pages sit on a [`Ring`] in arrival order (the hand never moves on its own, so
/// it stays at the oldest) and the history is the page's age in the ring's store:
/// the kernel keeps it in the frame descriptor, so tracking allocates nothing. A
/// tick and a pick each walk the whole ring, as the map did before.
#[derive(Clone, Debug, Default)]
pub struct LruApprox<L = VecLinks> {
    ring: Ring<L>,
}

impl LruApprox {
    /// Creates an empty aging policy keeping its pages in a [`VecLinks`].
    pub fn new() -> LruApprox {
        LruApprox::default()
    }
}

impl<L: RingStore> LruApprox<L> {
    /// Creates an empty aging policy keeping its pages (and their ages) in `links`.
    pub fn with_links(links: L) -> LruApprox<L> {
        LruApprox { ring: Ring::new(links) }
    }
}

impl<L: RingStore> ReplacementPolicy for LruApprox<L> {
    fn name(&self) -> &'static str {
        "lru-aging"
    }
    tracked_on_one_ring!(ring, 0x80);
    /// The pages of age 0 (not seen used for eight agings) from the hand on, the
    /// first the smallest-age search would find, looking at most at
    /// `4 * out.len()` pages (a full search is what `pick_victim` pays).
    fn upcoming_victims(&mut self, out: &mut [u64]) -> usize {
        let Some(mut page) = self.ring.hand_page() else { return 0 };
        let mut nr_found = 0;
        for _ in 0..self.ring.len().min(4 * out.len()) {
            if nr_found == out.len() {
                break;
            }
            if self.ring.age(page) == 0 {
                out[nr_found] = page;
                nr_found += 1;
            }
            page = self.ring.next_of(page);
        }
        nr_found
    }
    fn on_tick(&mut self, probe: &mut dyn PageProbe) {
        let Some(mut page) = self.ring.hand_page() else { return };
        for _ in 0..self.ring.len() {
            let newest = if probe.test_and_clear_referenced(page) { 0x80 } else { 0 };
            page = self.ring.update_age(page, |history| (history >> 1) | newest);
        }
    }
    fn take_for_hand_over(&mut self) -> Option<u64> {
        self.ring.take_at_hand()
    }
    fn pick_victim(&mut self, _probe: &mut dyn PageProbe) -> Option<u64> {
        let victim = self.ring.smallest_age_page()?;
        self.ring.remove(victim);
        Some(victim)
    }
}
