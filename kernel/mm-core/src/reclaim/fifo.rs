//! FIFO: evicts the page resident longest (see [`super`] for the other policies).

use super::ring::tracked_on_one_ring;
use super::{PageProbe, ReplacementPolicy, Ring, RingStore, VecLinks};

/// First in, first out: evicts the page that has been resident longest.
///
/// Simple and blind to use: a page touched a moment ago goes if it came in first.
/// It also shows Belady's anomaly: more frames can mean *more* faults.
#[derive(Clone, Debug, Default)]
pub struct Fifo<L = VecLinks> {
    ring: Ring<L>,
}

impl Fifo {
    /// Creates an empty FIFO policy keeping its pages in a [`VecLinks`].
    pub fn new() -> Fifo {
        Fifo::default()
    }
}

impl<L: RingStore> Fifo<L> {
    /// Creates an empty FIFO policy keeping its pages in `links`.
    pub fn with_links(links: L) -> Fifo<L> {
        Fifo { ring: Ring::new(links) }
    }
}

impl<L: RingStore> ReplacementPolicy for Fifo<L> {
    fn name(&self) -> &'static str {
        "fifo"
    }
    tracked_on_one_ring!(ring, 0);
    fn upcoming_victims(&mut self, out: &mut [u64]) -> usize {
        self.ring.pages_from_hand(out)
    }
    fn spares_referenced_pages(&self) -> bool {
        false
    }
    fn pick_victim(&mut self, _probe: &mut dyn PageProbe) -> Option<u64> {
        self.ring.take_at_hand()
    }
}
