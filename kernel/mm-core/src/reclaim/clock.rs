//! The clock (second chance), optionally dirty-aware (see [`super`] for the other policies).

use super::ring::tracked_on_one_ring;
use super::{PageProbe, ReplacementPolicy, Ring, RingStore, VecLinks};

// The clock algorithm (second chance).
//
// Picture the resident pages on a clock face, in the order they arrived, with a
// hand pointing at the oldest. FIFO would evict whatever the hand points at. The
// clock first asks the MMU whether the page was used: every time the CPU touches a
// page it sets the Accessed bit in the PTE, for free. If the bit is set, the page
// was used since the hand last passed; the clock clears the bit ("you have one more
// revolution to prove you are still in use") and moves on. The first page found
// with the bit clear is the victim. If every page was referenced, the hand clears
// them all in one revolution and comes back to where it started, so the search
// ends after at most n + 1 steps and degenerates to FIFO. The result approximates
// LRU at a cost of one bit per page and no work on the access path, which is why
// real kernels (Linux's active/inactive lists, BSD's page daemon) descend from it.
//
// The enhanced clock also looks at the Dirty bit, because evicting a dirty page
// costs a disk write and a clean one costs nothing. Each page falls in one of four
// classes, best victim first:
//
//   (referenced 0, dirty 0)  not used lately, clean: free to drop
//   (referenced 0, dirty 1)  not used lately, dirty: must be written out first
//   (referenced 1, dirty 0)  used lately, clean: will probably be needed again
//   (referenced 1, dirty 1)  used lately and dirty: the worst choice
//
// The textbook version (Silberschatz, Stallings) makes up to four sweeps: first look
// for (0, 0) over the *whole* ring without touching a bit, then for (0, 1) clearing
// Accessed bits, then both again. Its first sweep is its cost: when clean pages are
// rare (a thrashing workload that writes), every single choice walks every page,
// and with 6 000 pages the kernel spent 13x the time of the plain clock on the same
// work (docs/benchmarks.md). This one makes one sweep, like the plain clock, and
// looks only a little way ahead for a clean page:
//
//   - a referenced page gets its second chance (bit cleared, passed over), as in
//     the plain clock: classes (1, 0) and (1, 1);
//   - the first unreferenced clean page, (0, 0), is the victim;
//   - an unreferenced dirty page, (0, 1), is passed over *without* change, and the
//     first one is remembered; after DIRTY_LOOKAHEAD of them, or when the hand
//     completes the revolution in which it found it (every other page was
//     referenced), the remembered one is the victim.
//
// So a clean page is still preferred when one is near the hand, an unreferenced
// dirty page still beats a referenced clean one (the revolution rule), and a
// choice costs what the plain clock's costs plus at most DIRTY_LOOKAHEAD steps.

/// How many unreferenced dirty pages the enhanced clock passes over looking for a
/// clean one before it settles for the first of them.
pub const DIRTY_LOOKAHEAD: usize = 16;

/// The clock (second-chance) policy, optionally preferring clean pages.
#[derive(Clone, Debug, Default)]
pub struct Clock<L = VecLinks> {
    ring: Ring<L>,
    prefers_clean: bool,
}

impl Clock {
    /// Creates the classic second-chance clock, which ignores the Dirty bit.
    pub fn second_chance() -> Clock {
        Clock::with_links(VecLinks::default(), false)
    }

    /// Creates the enhanced clock, which picks by (referenced, dirty) class.
    pub fn enhanced() -> Clock {
        Clock::with_links(VecLinks::default(), true)
    }
}

impl<L: RingStore> Clock<L> {
    /// Creates a clock keeping its pages in `links`: the enhanced clock if
    /// `prefers_clean`, else the second-chance clock.
    pub fn with_links(links: L, prefers_clean: bool) -> Clock<L> {
        Clock { ring: Ring::new(links), prefers_clean }
    }

    /// Runs the second-chance sweep: skips (and clears) referenced pages.
    fn pick_second_chance(&mut self, probe: &mut dyn PageProbe) -> Option<u64> {
        // n + 1 steps always suffice with a working probe; the bound only keeps a
        // broken probe (one that never clears) from looping forever.
        for _ in 0..=2 * self.ring.len() {
            let page = self.ring.hand_page()?;
            if !probe.test_and_clear_referenced(page) {
                return self.ring.take_at_hand();
            }
            self.ring.advance();
        }
        self.ring.take_at_hand()
    }

    /// Runs the one-sweep enhanced clock over the (referenced, dirty) classes; see above.
    fn pick_enhanced(&mut self, probe: &mut dyn PageProbe) -> Option<u64> {
        let nr_pages = self.ring.len();
        let mut first_dirty = None;
        let mut is_first_dirty_from_first_round = false;
        let mut nr_dirty_passed = 0;
        for step in 0..=2 * nr_pages {
            if step >= nr_pages && is_first_dirty_from_first_round {
                break; // an unreferenced dirty page beats the referenced ones passed
            }
            let page = self.ring.hand_page()?;
            if probe.test_and_clear_referenced(page) {
                self.ring.advance();
                continue;
            }
            if !probe.is_dirty(page) {
                return self.ring.take_at_hand();
            }
            if first_dirty.is_none() {
                first_dirty = Some(page);
                is_first_dirty_from_first_round = step < nr_pages;
            }
            nr_dirty_passed += 1;
            if nr_dirty_passed > DIRTY_LOOKAHEAD {
                break;
            }
            self.ring.advance();
        }
        match first_dirty {
            Some(page) => {
                self.ring.remove(page);
                Some(page)
            }
            None => self.ring.take_at_hand(),
        }
    }
}

impl<L: RingStore> ReplacementPolicy for Clock<L> {
    fn name(&self) -> &'static str {
        if self.prefers_clean { "enhanced-clock" } else { "clock" }
    }
    tracked_on_one_ring!(ring, 0);
    fn upcoming_victims(&mut self, out: &mut [u64]) -> usize {
        self.ring.pages_from_hand(out)
    }
    fn pick_victim(&mut self, probe: &mut dyn PageProbe) -> Option<u64> {
        if self.prefers_clean { self.pick_enhanced(probe) } else { self.pick_second_chance(probe) }
    }
}
