//! VAX/VMS segmented FIFO with page buffering: a FIFO resident set backed by
//! second-chance clean and dirty lists (see [`super`] for the other policies).

use super::vms_lists::{self, VmsLists};
use super::{PageProbe, ReplacementPolicy, SharedRingStore, SharedVecLinks};

// VAX/VMS (Levy and Lipman, 1982) replaced pages FIFO, which needs no reference
// bit (the VAX had none), and made up for FIFO's blindness with *page buffering*:
// a page pushed out of a process's FIFO resident set is not freed but unmapped and
// put at the end of a global list, the free (clean) list or the modified (dirty)
// list. Frames for new pages come from the front of the clean list. A page touched
// while it waits on a list faults, and the fault finds it there and maps it back:
// a *rescue*, with no disk I/O. So a page is lost only if it is not used for as
// long as it takes to travel through the FIFO *and* the list: the lists are a
// second segment that catches FIFO's mistakes (Turner and Levy's "segmented
// FIFO"; Babaoglu and Joy did the same for 4BSD on the VAX).
//
// Here the three lists share one per-page store, the age byte saying where a page
// is. Pages enter the FIFO. After each choice (and before one, if the lists are
// empty), the oldest FIFO pages move to the clean or dirty list (by the Dirty bit)
// until the lists hold 1/SECOND_CHANCE_SHARE of the tracked pages, their Accessed
// bits cleared as they go: that is the unmapping. A touch while on a list sets the bit again, which stands for VMS's
// soft fault: the choice finds it and rescues the page to the FIFO's newest end
// ([`nr_rescued`](ReplacementPolicy::nr_rescued) counts them). Victims come from
// the clean list first (free to drop), then the dirty list (a write), then, if
// both are empty (very few pages), the FIFO itself.
//
// What this is not: VMS gave each process its own FIFO and resident limit; this
// FIFO is global. And a page on a list stays *mapped*, its touch seen through the
// Accessed bit when reclaim gets there rather than by a fault: [`super::BufferedFifo`]
// (`policy=vms`) is the version whose lists hold unmapped pages.

/// The second-chance lists hold 1/SECOND_CHANCE_SHARE of the tracked pages.
pub const SECOND_CHANCE_SHARE: usize = 4;

/// VAX/VMS segmented FIFO: a FIFO resident set whose evictions wait on global
/// clean and dirty second-chance lists, rescued without I/O if used again.
#[derive(Clone, Debug)]
pub struct SegmentedFifo<L = SharedVecLinks> {
    lists: VmsLists<L>,
}

vms_lists::vms_policy_constructors!(SegmentedFifo);

impl<L: SharedRingStore> SegmentedFifo<L> {
    /// Moves the FIFO's oldest pages to the second-chance lists until these hold
    /// their share, clearing each one's Accessed bit (the "unmapping").
    fn fill_lists(&mut self, probe: &mut dyn PageProbe) {
        while self.lists.nr_listed() < self.lists.nr_to_list() {
            let Some(page) = self.lists.fifo.take_at_hand() else { return };
            probe.test_and_clear_referenced(page);
            self.lists.put_on_list(page, probe.is_dirty(page));
        }
    }
}

impl<L: SharedRingStore> ReplacementPolicy for SegmentedFifo<L> {
    vms_lists::tracked_on_vms_lists!();
    fn name(&self) -> &'static str {
        "segmented-fifo"
    }
    fn pick_victim(&mut self, probe: &mut dyn PageProbe) -> Option<u64> {
        // The lists are refilled *after* a victim is taken, so the pages moved there
        // wait until the next choice: that wait is their second chance. A rescued
        // page goes to the FIFO's newest end; n + 1 steps always end the loop.
        for _ in 0..=2 * self.nr_tracked() {
            if self.lists.nr_listed() == 0 {
                self.fill_lists(probe);
            }
            let list = if !self.lists.clean.is_empty() {
                &mut self.lists.clean
            } else if !self.lists.dirty.is_empty() {
                &mut self.lists.dirty
            } else {
                return self.lists.fifo.take_at_hand();
            };
            let page = list.hand_page()?;
            if !probe.test_and_clear_referenced(page) {
                list.take_at_hand();
                self.fill_lists(probe);
                return Some(page);
            }
            self.lists.rescue(page);
        }
        self.lists.take_first()
    }
}
