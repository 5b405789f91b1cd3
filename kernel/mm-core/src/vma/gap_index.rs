//! The free gaps of an address space, kept in a tree that knows its largest gap,
//! so that `mmap` finds a hole in O(log n) however many VMAs there are.
//!
//! `mmap` without a fixed address needs the highest free range of `len` bytes
//! below the top of the mmap area. Walking the VMAs from the top down costs one
//! step per VMA passed: with 10 000 small mappings just below the top, every new
//! mapping walked all of them (682 us for an mmap+munmap, against 8 us with one
//! VMA). Linux answers the same question with its maple tree, whose nodes record
//! the largest gap below them (`vm_unmapped_area`; before 6.1, an rbtree augmented
//! with `rb_subtree_gap`). This module does the same with a *treap*: a binary
//! search tree of the gaps, keyed by gap start, balanced by a heap order on a
//! priority, and *augmented* with the largest gap length in each subtree.
//!
//! ```text
//!  address space:   [VMA]....[VMA][VMA]..........[VMA]...[VMA]   (.... = a gap)
//!  gaps, by start:       g1                g2            g3
//!
//!                        g2 (max 10)          each node: its gap [start, end)
//!                       /      \              and `max_len`, the longest gap in
//!               g1 (max 4)   g3 (max 3)       its subtree
//!
//!  search(len 5, below hi): visit right subtrees first (higher addresses), skip
//!  any subtree whose max_len < len without entering it: O(depth) when nothing
//!  is skipped wrongly, and the depth of a treap is O(log n) expected.
//! ```
//!
//! The priorities are a hash of the gap's start page (no random state to carry,
//! and a clone of the tree is the same tree). The gaps cover the whole `u64`
//! range not covered by a VMA, including the one below the first VMA and the one
//! above the last (which ends at `u64::MAX`); the caller clips them to its
//! `[lo, hi)`. With an alignment above a page, a gap at least `len` long may still
//! not hold an aligned start: the search then tries the next candidate, so it is
//! exact (the same answer as the walk) but can visit more gaps.
//!
//! Neighbours: only [`super::VmaTree`] uses it; it recomputes the gaps around
//! every range it maps or unmaps ([`super::VmaTree::check_invariants`] checks
//! that the index matches the VMAs). Pure data structure, host-tested.

use alloc::boxed::Box;

/// One free gap `[start, end)` and the subtree below it.
#[derive(Clone, Debug)]
struct Node {
    /// First free byte; the search key.
    start: u64,
    /// One past the last free byte.
    end: u64,
    /// Heap order: every node's priority is at least its children's.
    priority: u64,
    /// The longest `end - start` in this subtree (this node included).
    max_len: u64,
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
}

type Link = Option<Box<Node>>;

/// A pseudo-random priority for the gap starting at `start` (Fibonacci hashing of
/// its page number).
fn priority_of(start: u64) -> u64 {
    (start >> 12).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)
}

impl Node {
    fn new(start: u64, end: u64) -> Box<Node> {
        Box::new(Node { start, end, priority: priority_of(start), max_len: end - start, left: None, right: None })
    }

    /// Recomputes `max_len` from the node and its children.
    fn update(&mut self) {
        let mut max_len = self.end - self.start;
        for child in [&self.left, &self.right].into_iter().flatten() {
            max_len = max_len.max(child.max_len);
        }
        self.max_len = max_len;
    }
}

/// Splits `link` into the gaps starting below `key` and the others.
fn split(link: Link, key: u64) -> (Link, Link) {
    match link {
        None => (None, None),
        Some(mut node) => {
            if node.start < key {
                let (low, high) = split(node.right.take(), key);
                node.right = low;
                node.update();
                (Some(node), high)
            } else {
                let (low, high) = split(node.left.take(), key);
                node.left = high;
                node.update();
                (low, Some(node))
            }
        }
    }
}

/// Joins two trees; every gap of `low` starts below every gap of `high`.
fn merge(low: Link, high: Link) -> Link {
    match (low, high) {
        (None, tree) | (tree, None) => tree,
        (Some(mut low), Some(mut high)) => {
            if low.priority >= high.priority {
                low.right = merge(low.right.take(), Some(high));
                low.update();
                Some(low)
            } else {
                high.left = merge(Some(low), high.left.take());
                high.update();
                Some(high)
            }
        }
    }
}

/// What a search looks for: `len` bytes at an `align`-aligned start inside `[lo, hi)`.
struct Query {
    len: u64,
    align: u64,
    lo: u64,
    hi: u64,
}

/// Returns the highest `align`-aligned start of `len` bytes inside `[start, end)`.
pub(super) fn highest_fit(start: u64, end: u64, len: u64, align: u64) -> Option<u64> {
    let candidate = end.checked_sub(len)? & !(align - 1);
    (candidate >= start).then_some(candidate)
}

/// The highest fit for `query` in the subtree `link`, visiting high addresses first.
fn search(link: &Link, query: &Query) -> Option<u64> {
    let node = link.as_deref()?;
    if node.max_len < query.len {
        return None;
    }
    if node.start >= query.hi {
        // This gap and everything to its right start at or above `hi`.
        return search(&node.left, query);
    }
    if let Some(found) = search(&node.right, query) {
        return Some(found);
    }
    if node.end <= query.lo {
        // This gap and everything to its left end at or below `lo`.
        return None;
    }
    highest_fit(node.start.max(query.lo), node.end.min(query.hi), query.len, query.align)
        .or_else(|| search(&node.left, query))
}

/// The free gaps of one address space, searchable by size in O(log n).
#[derive(Clone, Debug)]
pub struct GapIndex {
    root: Link,
    len: usize,
}

impl Default for GapIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl GapIndex {
    /// An address space with nothing mapped: one gap, `[0, u64::MAX)`.
    pub fn new() -> GapIndex {
        GapIndex { root: Some(Node::new(0, u64::MAX)), len: 1 }
    }

    /// Returns the number of gaps.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns true if there is no gap at all (everything mapped).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds the gap `[start, end)`; the caller guarantees it overlaps no other.
    pub fn insert(&mut self, start: u64, end: u64) {
        debug_assert!(start < end, "GapIndex::insert: empty gap");
        let (low, high) = split(self.root.take(), start);
        self.root = merge(merge(low, Some(Node::new(start, end))), high);
        self.len += 1;
    }

    /// Returns the gap with the highest start at or below `addr`, as `(start, end)`.
    pub fn floor(&self, addr: u64) -> Option<(u64, u64)> {
        let mut link = &self.root;
        let mut best = None;
        while let Some(node) = link.as_deref() {
            if node.start <= addr {
                best = Some((node.start, node.end));
                link = &node.right;
            } else {
                link = &node.left;
            }
        }
        best
    }

    /// Removes every gap whose start lies in `[first, last]`; returns the highest
    /// end among them, or `None` if there was none.
    pub fn remove_starting_in(&mut self, first: u64, last: u64) -> Option<u64> {
        let (low, rest) = split(self.root.take(), first);
        let (removed, high) = match last.checked_add(1) {
            Some(past_last) => split(rest, past_last),
            None => (rest, None),
        };
        self.root = merge(low, high);
        let mut highest_end = None;
        let mut count = 0;
        visit(&removed, &mut |_, end| {
            count += 1;
            highest_end = Some(end);
        });
        self.len -= count;
        highest_end
    }

    /// Returns the highest `align`-aligned address (`align` a power of two) where
    /// `len` bytes fit inside `[lo, hi)` and inside one gap, or `None`.
    pub fn find_top_down(&self, len: u64, align: u64, lo: u64, hi: u64) -> Option<u64> {
        search(&self.root, &Query { len, align, lo, hi })
    }

    /// Calls `f(start, end)` for every gap in address order.
    pub fn for_each(&self, mut f: impl FnMut(u64, u64)) {
        visit(&self.root, &mut f);
    }

    /// Checks the tree's own invariants (search order, heap order, `max_len`, the
    /// count) and panics naming the broken one.
    pub fn check_invariants(&self) {
        fn check(link: &Link, lower: Option<u64>) -> (usize, u64, Option<u64>) {
            let Some(node) = link.as_deref() else {
                return (0, 0, lower);
            };
            for child in [&node.left, &node.right].into_iter().flatten() {
                assert!(child.priority <= node.priority, "GapIndex: heap order broken at gap {:#x}", node.start);
            }
            let (left_count, left_max, left_end) = check(&node.left, lower);
            if let Some(previous_end) = left_end {
                assert!(previous_end < node.start, "GapIndex: gaps out of order or touching at {:#x}", node.start);
            }
            assert!(node.start < node.end, "GapIndex: empty gap at {:#x}", node.start);
            let (right_count, right_max, right_end) = check(&node.right, Some(node.end));
            let max_len = (node.end - node.start).max(left_max).max(right_max);
            assert_eq!(node.max_len, max_len, "GapIndex: stale max_len at gap {:#x}", node.start);
            (left_count + 1 + right_count, max_len, right_end)
        }
        let (count, _, _) = check(&self.root, None);
        assert_eq!(count, self.len, "GapIndex: count is {} but {} gaps are in the tree", self.len, count);
    }
}

/// In-order walk of a subtree.
fn visit(link: &Link, f: &mut impl FnMut(u64, u64)) {
    if let Some(node) = link.as_deref() {
        visit(&node.left, f);
        f(node.start, node.end);
        visit(&node.right, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn depth(link: &Link) -> usize {
        link.as_deref().map_or(0, |node| 1 + depth(&node.left).max(depth(&node.right)))
    }

    #[test]
    fn sequential_gaps_still_make_a_shallow_tree() {
        // mmap places mappings one below the other, so gaps arrive in address
        // order: the hashed priorities must still balance the treap.
        let mut index = GapIndex { root: None, len: 0 };
        for i in 0..100_000u64 {
            index.insert(i * 0x3000, i * 0x3000 + 0x1000);
        }
        index.check_invariants();
        let depth = depth(&index.root);
        assert!(depth < 60, "depth {depth} for 100 000 gaps: the treap is not balanced");
    }

    #[test]
    fn the_search_skips_subtrees_whose_largest_gap_is_too_small() {
        let mut index = GapIndex { root: None, len: 0 };
        for i in 0..1000u64 {
            index.insert(0x10_0000 + i * 0x2000, 0x10_0000 + i * 0x2000 + 0x1000);
        }
        index.insert(0x1000, 0x9000);
        index.check_invariants();
        assert_eq!(index.find_top_down(0x1000, 0x1000, 0, u64::MAX), Some(0x10_0000 + 999 * 0x2000));
        assert_eq!(index.find_top_down(0x2000, 0x1000, 0, u64::MAX), Some(0x7000));
        assert_eq!(index.find_top_down(0x2000, 0x4000, 0, u64::MAX), Some(0x4000));
        assert_eq!(index.find_top_down(0x9000, 0x1000, 0, u64::MAX), None);
        assert_eq!(index.find_top_down(0x1000, 0x1000, 0x2000, 0x3000), Some(0x2000), "clipped to [lo, hi)");
    }

    #[test]
    fn removing_a_span_returns_the_highest_end_and_keeps_the_rest() {
        let mut index = GapIndex::new();
        assert_eq!(index.remove_starting_in(0, 0), Some(u64::MAX));
        assert!(index.is_empty());
        for start in [0x1000u64, 0x5000, 0x9000, 0xd000] {
            index.insert(start, start + 0x2000);
        }
        assert_eq!(index.remove_starting_in(0x4000, 0x9000), Some(0xb000));
        let mut left = Vec::new();
        index.for_each(|start, end| left.push((start, end)));
        assert_eq!(left, [(0x1000, 0x3000), (0xd000, 0xf000)]);
        assert_eq!(index.len(), 2);
        assert_eq!(index.floor(0xc000), Some((0x1000, 0x3000)));
        assert_eq!(index.remove_starting_in(0x4000, 0x9000), None);
        index.check_invariants();
    }
}
