//! Per-CPU page lists (Linux's "pcp" lists, `struct per_cpu_pages`): the pure part.
//!
//! Each CPU keeps a few single frames in front of the buddy allocator, so that most
//! order-0 allocations and frees touch only the CPU's own list and never the
//! buddy's global lock. The list is filled from the buddy allocator [`batch`]
//! frames at a time when it is empty, and when a free makes it longer than
//! [`high`] frames, [`batch`] of them go back at once: one trip to the global lock
//! per `batch` operations instead of one per operation.
//!
//! ```text
//!   alloc: pop  <--  [ f7 f3 f9 ... ]  <-- push: free
//!                        |    ^
//!     len > high: drain  |    |  empty: refill
//!     `batch` frames     v    |  `batch` frames
//!                  the buddy allocator (one global lock)
//! ```
//!
//! This file holds the sizes ([`PcpSizes::for_zone`], Linux's `zone_batchsize`)
//! and the list itself ([`PcpList`]: a bounded stack of frame numbers, most
//! recently freed first, so a frame still warm in the CPU's cache is reused first).
//! The kernel (`kernel/src/mm/pcp.rs`) keeps one set of lists per CPU behind a lock
//! of that CPU, and does the refill and the drain under the buddy's lock.

/// The most frames one list can hold: Linux's largest `high` (6 x 63).
pub const CAPACITY: usize = 378;

/// How many frames move between a per-CPU list and the buddy allocator at a time
/// (`batch`), and how long a list may grow before a batch goes back (`high`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcpSizes {
    /// Frames moved per refill or drain.
    pub batch: usize,
    /// The longest a list may be after a free.
    pub high: usize,
}

impl PcpSizes {
    /// Returns Linux's sizes for a zone of `nr_managed_frames` (its `zone_batchsize`
    /// and the classic `high = 6 * batch`): about a quarter of a 1/1024th of the zone,
    /// at most 1 MiB worth before the quarter, rounded to `2^n - 1` (Linux: so
    /// that batches of different CPUs do not fall on the same cache colours), at
    /// least 1. So 64 MiB gets batch 3 / high 18, 128 MiB 7 / 42, 1 GiB and up 63 / 378.
    pub fn for_zone(nr_managed_frames: u64) -> PcpSizes {
        let per_1024 = (nr_managed_frames / 1024).min(256) as usize; // 1 MiB of 4 KiB frames
        let quarter = (per_1024 / 4).max(1);
        let rounded = prev_power_of_two(quarter + quarter / 2);
        let batch = (rounded - 1).max(1);
        PcpSizes { batch, high: (6 * batch).min(CAPACITY) }
    }
}

/// Returns the largest power of two `<= n` (`n >= 1`).
fn prev_power_of_two(n: usize) -> usize {
    1 << (usize::BITS - 1 - n.leading_zeros())
}

/// One per-CPU list of free single frames, as frame numbers (a bounded stack).
#[derive(Clone, Debug)]
pub struct PcpList {
    pfns: [u32; CAPACITY],
    len: usize,
}

impl Default for PcpList {
    fn default() -> Self {
        Self::new()
    }
}

impl PcpList {
    /// Returns an empty list.
    pub const fn new() -> PcpList {
        PcpList { pfns: [0; CAPACITY], len: 0 }
    }

    /// Returns the number of frames on the list.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns true if the list holds no frame.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes the most recently freed frame, if any.
    pub fn pop(&mut self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        Some(u64::from(self.pfns[self.len]))
    }

    /// Puts a frame on the list; returns false (and keeps nothing) if it is full.
    /// A frame number above 32 bits (16 TiB) is refused the same way.
    pub fn push(&mut self, pfn: u64) -> bool {
        let Ok(pfn) = u32::try_from(pfn) else { return false };
        if self.len == CAPACITY {
            return false;
        }
        self.pfns[self.len] = pfn;
        self.len += 1;
        true
    }

    /// Returns true if `pfn` is on the list (a linear search over at most `high`
    /// entries: for tests; the kernel's free path asks its listed bit instead).
    pub fn contains(&self, pfn: u64) -> bool {
        self.pfns[..self.len].iter().any(|&p| u64::from(p) == pfn)
    }

    /// Returns how many frames a free that left the list at its current length must
    /// send back to the buddy allocator: `batch` once it is longer than `high`.
    pub fn nr_to_drain(&self, sizes: PcpSizes) -> usize {
        if self.len > sizes.high { sizes.batch.min(self.len) } else { 0 }
    }

    /// Takes the oldest frame (the bottom of the stack: the coldest), if any; the
    /// drain sends back cold frames and keeps the warm ones.
    pub fn pop_oldest(&mut self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let pfn = self.pfns[0];
        self.pfns.copy_within(1..self.len, 0);
        self.len -= 1;
        Some(u64::from(pfn))
    }

    /// Takes the `n` oldest frames (fewer if the list is shorter), oldest first,
    /// handing each to `f`: the drain sends back cold frames and keeps the warm ones,
    /// with one move of the rest.
    pub fn drain_oldest(&mut self, n: usize, mut f: impl FnMut(u64)) {
        let n = n.min(self.len);
        self.pfns[..n].iter().for_each(|&p| f(u64::from(p)));
        self.pfns.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Returns the frames on the list, oldest first.
    pub fn pfns(&self) -> impl Iterator<Item = u64> + '_ {
        self.pfns[..self.len].iter().map(|&p| u64::from(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_linux_zone_batchsize() {
        // 4 KiB frames: 64 MiB, 128 MiB, 256 MiB, 1 GiB, 8 GiB.
        assert_eq!(PcpSizes::for_zone(16 * 1024), PcpSizes { batch: 3, high: 18 });
        assert_eq!(PcpSizes::for_zone(32 * 1024), PcpSizes { batch: 7, high: 42 });
        assert_eq!(PcpSizes::for_zone(64 * 1024), PcpSizes { batch: 15, high: 90 });
        assert_eq!(PcpSizes::for_zone(256 * 1024), PcpSizes { batch: 63, high: 378 });
        assert_eq!(PcpSizes::for_zone(2 * 1024 * 1024), PcpSizes { batch: 63, high: 378 });
        // A tiny zone still gets a list of one batch.
        assert_eq!(PcpSizes::for_zone(100), PcpSizes { batch: 1, high: 6 });
    }

    #[test]
    fn the_list_is_last_freed_first_out() {
        let mut list = PcpList::new();
        assert!(list.is_empty());
        assert!(list.push(5) && list.push(9) && list.push(7));
        assert_eq!(list.len(), 3);
        assert!(list.contains(9) && !list.contains(6));
        assert_eq!(list.pop(), Some(7));
        assert_eq!(list.pop_oldest(), Some(5));
        assert_eq!(list.pfns().collect::<std::vec::Vec<_>>(), [9]);
        assert_eq!(list.pop(), Some(9));
        assert_eq!(list.pop(), None);
        assert_eq!(list.pop_oldest(), None);
    }

    #[test]
    fn a_drain_takes_the_oldest_and_keeps_the_order_of_the_rest() {
        let mut list = PcpList::new();
        for pfn in [4, 8, 15, 16, 23] {
            assert!(list.push(pfn));
        }
        let mut drained = std::vec::Vec::new();
        list.drain_oldest(3, |pfn| drained.push(pfn));
        assert_eq!(drained, [4, 8, 15]);
        assert_eq!(list.pfns().collect::<std::vec::Vec<_>>(), [16, 23]);
        assert_eq!(list.pop(), Some(23));
        list.drain_oldest(5, |pfn| drained.push(pfn));
        assert_eq!(drained, [4, 8, 15, 16]);
        assert!(list.is_empty());
    }

    #[test]
    fn a_full_list_refuses_and_a_long_one_drains_a_batch() {
        let sizes = PcpSizes { batch: 3, high: 5 };
        let mut list = PcpList::new();
        for pfn in 0..5 {
            assert!(list.push(pfn));
            assert_eq!(list.nr_to_drain(sizes), 0, "not longer than high yet");
        }
        assert!(list.push(5));
        assert_eq!(list.nr_to_drain(sizes), 3);
        while list.len() < CAPACITY {
            assert!(list.push(1));
        }
        assert!(!list.push(2), "a full list keeps nothing");
        assert!(!PcpList::new().push(1 << 32), "a frame number past 32 bits is refused");
    }
}
