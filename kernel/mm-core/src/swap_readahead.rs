//! Swap readahead: how many slots a major fault reads at once.
//!
//! A major fault on slot `s` must read `s`; reading `s+1, s+2, ...` in the same
//! disk request costs little more (one request is ~75 µs under TCG whatever its
//! size), and pays off when the process goes on to touch those pages: pages that
//! were swapped out together (adjacent slots, see swap-out clustering) are often
//! needed together. It is waste when accesses are random: the extra pages take
//! frames and are never used. So the window adapts, like Linux's
//! `swapin_nr_pages`, to how many of the last window's pages were used:
//!
//! ```text
//!  major fault on slot s            (hits: readahead pages mapped since the last one)
//!    hits >= half the last window      -> window x 2   (up to max)
//!    or s == last fault + last window  -> window x 2   (sequential, even at window 1)
//!    else                              -> window / 2   (down to 1: no readahead)
//!  read slots [s, s + window), stopping early at a slot that is free or cached
//! ```
//! The state is tiny and pure; the kernel keeps one [`ReadaheadWindow`] for its
//! swap area and calls [`on_major_fault`](ReadaheadWindow::on_major_fault) and
//! [`on_hit`](ReadaheadWindow::on_hit).

/// The adaptive readahead window of one swap area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadaheadWindow {
    /// Slots the last major fault read (1: no readahead).
    pages: u32,
    /// Readahead pages used since the last major fault.
    hits: u32,
    /// Slot of the last major fault.
    last_slot: Option<u64>,
    /// The largest window.
    max_pages: u32,
}

impl ReadaheadWindow {
    /// A window that starts at one page (no readahead) and grows up to `max_pages`.
    pub const fn new(max_pages: u32) -> Self {
        let max_pages = if max_pages == 0 { 1 } else { max_pages };
        ReadaheadWindow { pages: 1, hits: 0, last_slot: None, max_pages }
    }

    /// A page that readahead brought in was used (mapped by a fault).
    pub fn on_hit(&mut self) {
        self.hits = self.hits.saturating_add(1);
    }

    /// A major fault on `slot`: returns how many slots to read, starting at `slot`.
    pub fn on_major_fault(&mut self, slot: u64) -> u32 {
        let was_used = self.hits > 0 && 2 * self.hits >= self.pages - 1;
        let is_sequential = self.last_slot.is_some_and(|last| slot == last + u64::from(self.pages));
        self.pages = if was_used || is_sequential {
            (self.pages * 2).min(self.max_pages)
        } else {
            (self.pages / 2).max(1)
        };
        self.hits = 0;
        self.last_slot = Some(slot);
        self.pages
    }

    /// Returns the current window, in pages.
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Returns the largest window, in pages.
    pub fn max_pages(&self) -> u32 {
        self.max_pages
    }

    /// Sets the largest window (at least 1: no readahead); the current one shrinks to it.
    pub fn set_max_pages(&mut self, max_pages: u32) {
        self.max_pages = max_pages.max(1);
        self.pages = self.pages.min(self.max_pages);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lower_max_caps_the_window_at_once_and_from_then_on() {
        let mut window = ReadaheadWindow::new(16);
        for slot in [0, 1, 3, 7] {
            window.on_major_fault(slot); // sequential: 2, 4, 8
        }
        assert_eq!(window.pages(), 8);
        window.set_max_pages(2);
        assert_eq!(window.pages(), 2);
        assert_eq!(window.on_major_fault(9), 2, "sequential, but capped");
        window.set_max_pages(0);
        assert_eq!(window.max_pages(), 1, "0 means no readahead: one page");
    }
    use alloc::collections::BTreeSet;
    use alloc::vec::Vec;

    /// Replays accesses to `slots` in order, with a cache of what readahead brought
    /// in; returns (major faults, pages read).
    fn replay(window: &mut ReadaheadWindow, slots: &[u64]) -> (u32, u32) {
        let mut cached = BTreeSet::new();
        let (mut majors, mut reads) = (0, 0);
        for &slot in slots {
            if cached.remove(&slot) {
                window.on_hit();
                continue;
            }
            majors += 1;
            let n = window.on_major_fault(slot);
            reads += n;
            cached.extend(slot + 1..slot + u64::from(n));
        }
        (majors, reads)
    }

    #[test]
    fn sequential_access_grows_the_window_to_its_maximum() {
        let mut window = ReadaheadWindow::new(32);
        let slots: Vec<u64> = (100..100 + 1024).collect();
        let (majors, reads) = replay(&mut window, &slots);
        assert_eq!(window.pages(), 32);
        assert!(majors < 1024 / 16, "{majors} major faults for 1024 sequential pages");
        assert!(reads <= 1024 + 32, "{reads} pages read for 1024 used");
    }

    #[test]
    fn random_access_shrinks_the_window_to_one_page() {
        let mut window = ReadaheadWindow::new(32);
        // Sequential first, so the window is large when the pattern changes.
        let _ = replay(&mut window, &(0..256).collect::<Vec<u64>>());
        let mut rng = crate::xorshift::XorShift(7);
        let random: Vec<u64> = (0..200).map(|_| 10_000 + rng.next_u64() % 100_000).collect();
        let (majors, reads) = replay(&mut window, &random);
        assert_eq!(window.pages(), 1);
        assert!(reads < majors + 64, "{reads} pages read for {majors} random faults: readahead did not back off");
    }

    #[test]
    fn a_sequential_run_after_random_access_turns_readahead_back_on() {
        let mut window = ReadaheadWindow::new(8);
        assert_eq!(window.on_major_fault(500), 1);
        assert_eq!(window.on_major_fault(9), 1);
        assert_eq!(window.on_major_fault(10), 2); // adjacent: sequential
        window.on_hit();
        assert_eq!(window.on_major_fault(12), 4);
        assert_eq!(window.on_major_fault(3000), 2); // nothing used, not adjacent
    }

    #[test]
    fn a_zero_maximum_means_no_readahead() {
        let mut window = ReadaheadWindow::new(0);
        assert_eq!(window.on_major_fault(1), 1);
        assert_eq!(window.on_major_fault(2), 1);
    }
}
