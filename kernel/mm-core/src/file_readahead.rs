//! File readahead: which pages of a file to read before a reader asks for them.
//!
//! A `read` that misses the page cache waits for the disk. When a file is read
//! sequentially, the next pages are known in advance, so the kernel reads them
//! *ahead*, in bigger requests, before the reader gets there. It is waste on a
//! random access pattern (pages read and never used), so the window adapts, like
//! Linux's `ondemand_readahead`:
//!
//! ```text
//!  read of pages [first, last]
//!    not sequential (first is not where the last read ended)  -> window 0: read nothing ahead
//!    sequential, and readahead is less than half a window ahead of `last`:
//!        window = 4 pages the first time, then x 2 (up to max)
//!        read [max(ahead_end, last + 1), + window) ahead;  ahead_end = its end
//! ```
//! So a sequential reader finds its pages already cached, and readahead stays at
//! least half a window ahead of it; a random reader costs one page per miss.
//! The state is per file (per page cache); the kernel calls
//! [`ReadaheadWindow::on_read`] before copying and reads the range it returns.

/// The first window of a sequential read, in pages.
pub const INITIAL_WINDOW: u32 = 4;
/// The largest window, in pages (128 KiB... 256 KiB: Linux's default is 128 KiB).
pub const MAX_WINDOW: u32 = 64;

/// The adaptive readahead state of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadaheadWindow {
    /// The last page of the previous read.
    prev_last: Option<u64>,
    /// Pages the last readahead read (0: none since the pattern was sequential).
    window: u32,
    /// The first page after what readahead has read so far.
    ahead_end: u64,
    /// The largest window.
    max_window: u32,
}

impl Default for ReadaheadWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReadaheadWindow {
    /// A fresh file: nothing read yet, windows up to [`MAX_WINDOW`].
    pub const fn new() -> Self {
        Self::with_max(MAX_WINDOW)
    }

    /// A fresh file whose windows grow up to `max_window` pages (0: no readahead).
    pub const fn with_max(max_window: u32) -> Self {
        ReadaheadWindow { prev_last: None, window: 0, ahead_end: 0, max_window }
    }

    /// A read of pages `[first, last]` is about to be served: returns the pages to
    /// read ahead, as (first page, number of pages), or `None`.
    pub fn on_read(&mut self, first: u64, last: u64) -> Option<(u64, u32)> {
        let last = last.max(first);
        let is_sequential = match self.prev_last {
            None => first == 0,
            Some(prev) => first == prev || first == prev + 1,
        };
        self.prev_last = Some(last);
        if !is_sequential || self.max_window == 0 {
            self.window = 0;
            self.ahead_end = last + 1;
            return None;
        }
        if self.window > 0 && self.ahead_end > last + u64::from(self.window / 2) {
            return None; // far enough ahead already
        }
        self.window = if self.window == 0 { INITIAL_WINDOW.min(self.max_window) } else { (self.window * 2).min(self.max_window) };
        let start = self.ahead_end.max(last + 1);
        self.ahead_end = start + u64::from(self.window);
        Some((start, self.window))
    }

    /// Returns the current window in pages (0: not reading ahead).
    pub fn window(&self) -> u32 {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;

    /// Replays reads of one page each at `pages`; returns (pages the reader had to
    /// wait for, pages read ahead, readahead pages used).
    fn replay(window: &mut ReadaheadWindow, pages: impl IntoIterator<Item = u64>) -> (u32, u32, u32) {
        let mut cached = BTreeSet::new();
        let (mut waits, mut ahead, mut used) = (0, 0, 0);
        for page in pages {
            if let Some((start, n)) = window.on_read(page, page) {
                for p in start..start + u64::from(n) {
                    if cached.insert(p) {
                        ahead += 1;
                    }
                }
            }
            if cached.remove(&page) {
                used += 1;
            } else {
                waits += 1;
            }
        }
        (waits, ahead, used)
    }

    #[test]
    fn a_sequential_reader_waits_for_the_first_page_only() {
        let mut window = ReadaheadWindow::new();
        let (waits, ahead, used) = replay(&mut window, 0..4096);
        assert_eq!(waits, 1, "only page 0 is read on demand");
        assert_eq!(used, 4095);
        assert!(ahead <= 4095 + MAX_WINDOW, "{ahead} pages read ahead for 4095 used");
        assert_eq!(window.window(), MAX_WINDOW);
    }

    #[test]
    fn the_window_doubles_from_four_pages() {
        let mut window = ReadaheadWindow::new();
        assert_eq!(window.on_read(0, 0), Some((1, 4)));
        assert_eq!(window.on_read(1, 1), None, "still 3 pages ahead");
        assert_eq!(window.on_read(2, 2), None);
        assert_eq!(window.on_read(3, 3), Some((5, 8)), "less than half a window ahead: the next, doubled");
    }

    #[test]
    fn random_reads_read_nothing_ahead() {
        let mut window = ReadaheadWindow::new();
        let mut rng = crate::xorshift::XorShift(11);
        let pages: alloc::vec::Vec<u64> = (0..500).map(|_| 1 + rng.next_u64() % 100_000).collect();
        let (waits, ahead, _) = replay(&mut window, pages);
        assert!(ahead <= 8, "{ahead} pages read ahead for random reads");
        assert!(waits >= 490);
        assert_eq!(window.window(), 0);
    }

    #[test]
    fn a_sequential_run_after_a_seek_starts_again_small() {
        let mut window = ReadaheadWindow::new();
        let _ = replay(&mut window, 0..512);
        assert_eq!(window.on_read(10_000, 10_000), None, "a seek is not sequential");
        assert_eq!(window.on_read(10_001, 10_001), Some((10_002, INITIAL_WINDOW)));
    }

    #[test]
    fn a_zero_maximum_means_no_readahead() {
        let mut window = ReadaheadWindow::with_max(0);
        assert_eq!(replay(&mut window, 0..100).1, 0);
    }

    #[test]
    fn a_multi_page_read_reads_ahead_past_its_end() {
        let mut window = ReadaheadWindow::new();
        assert_eq!(window.on_read(0, 15), Some((16, 4)));
        assert_eq!(window.on_read(16, 31), Some((32, 8)), "the reader went past the window: the next one starts after it");
    }
}
