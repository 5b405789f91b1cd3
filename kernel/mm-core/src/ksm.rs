//! Same-page merging (KSM), the pure parts: the page checksum, the *stable index*
//! (merged pages, by checksum, each with the places that may map it) and the
//! *unstable index* (this pass's not-yet-merged candidates, by checksum).
//!
//! The kernel's `mm/ksm.rs` scans the pages of mergeable VMAs. For each page it
//! computes [`page_checksum`], then:
//! ```text
//!   stable index has a merged page K with that checksum (and equal bytes)?
//!       -> map K here instead, read-only; free this page
//!   unstable index has a page Q seen earlier in this pass with that checksum?
//!       -> Q becomes a merged page K (write-protected, into the stable index),
//!          then this page is merged into K as above
//!   neither -> this page goes into the unstable index
//! ```
//! A checksum only *finds* candidates: two pages are merged only after a full
//! compare of their bytes (in the kernel, under the locks). The unstable index is
//! emptied at the end of every full scan (Linux does the same: its pages are still
//! writable, so what it says goes stale).
//!
//! A merged page is mapped at different addresses in different fork families, so
//! the fork-family reverse map (one place per frame) cannot find its mappings: the
//! stable index keeps, for each merged frame, the list of its *places* (Linux's
//! `rmap_item`s on a stable node). The list may hold places that no longer map the
//! frame (removed lazily), never miss one that does: readers check each place's PTE.
#![forbid(unsafe_code)]

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// Returns a 64-bit checksum of a page's bytes (a word-wise FNV-1a with a final
/// mix): equal pages have equal checksums; different pages almost never do, and
/// when they do the full compare tells them apart.
pub fn page_checksum(bytes: &[u8]) -> u64 {
    page_checksum_words(bytes.chunks(8).map(|chunk| {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        u64::from_le_bytes(word)
    }))
}

/// Returns [`page_checksum`] of the page whose little-endian 64-bit words are
/// `words` (the kernel reads a frame word by word).
pub fn page_checksum_words(words: impl Iterator<Item = u64>) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for word in words {
        hash = (hash ^ word).wrapping_mul(PRIME);
    }
    // Final avalanche (from splitmix64), so nearby inputs spread over the tree.
    hash ^= hash >> 31;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 29)
}

/// One merged page: its checksum and the places that may map it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StableNode<P> {
    /// The page's checksum (its bytes never change while it is merged).
    pub checksum: u64,
    /// Every place mapping the frame, and maybe some that no longer do.
    pub places: Vec<P>,
}

/// The merged pages: by frame number, and by checksum to find candidates.
#[derive(Debug)]
pub struct StableIndex<P> {
    by_pfn: BTreeMap<u64, StableNode<P>>,
    by_checksum: BTreeMap<u64, Vec<u64>>,
}

impl<P: Copy + Eq> Default for StableIndex<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Copy + Eq> StableIndex<P> {
    /// Creates an empty index.
    pub const fn new() -> Self {
        Self { by_pfn: BTreeMap::new(), by_checksum: BTreeMap::new() }
    }

    /// Adds frame `pfn` as a merged page with `checksum`, mapped at `places`.
    ///
    /// # Panics
    /// If `pfn` is already in the index.
    pub fn insert(&mut self, pfn: u64, checksum: u64, places: Vec<P>) {
        let old = self.by_pfn.insert(pfn, StableNode { checksum, places });
        assert!(old.is_none(), "StableIndex::insert: frame {pfn:#x} is already merged");
        self.by_checksum.entry(checksum).or_default().push(pfn);
    }

    /// Removes frame `pfn` (it is being freed); returns its node if it was there.
    pub fn remove(&mut self, pfn: u64) -> Option<StableNode<P>> {
        let node = self.by_pfn.remove(&pfn)?;
        if let Some(pfns) = self.by_checksum.get_mut(&node.checksum) {
            pfns.retain(|&p| p != pfn);
            if pfns.is_empty() {
                self.by_checksum.remove(&node.checksum);
            }
        }
        Some(node)
    }

    /// Returns the merged frames whose checksum is `checksum`.
    pub fn with_checksum(&self, checksum: u64) -> &[u64] {
        self.by_checksum.get(&checksum).map_or(&[], Vec::as_slice)
    }

    /// Returns the node of frame `pfn`, if it is merged.
    pub fn node(&self, pfn: u64) -> Option<&StableNode<P>> {
        self.by_pfn.get(&pfn)
    }

    /// Records that `place` maps frame `pfn` (once: a place already listed is not
    /// added again). Returns false if the frame is not in the index.
    pub fn add_place(&mut self, pfn: u64, place: P) -> bool {
        let Some(node) = self.by_pfn.get_mut(&pfn) else {
            return false;
        };
        if !node.places.contains(&place) {
            node.places.push(place);
        }
        true
    }

    /// Keeps only the places of frame `pfn` for which `keep_fn` says true (the
    /// lazy removal of places that no longer map it).
    pub fn retain_places(&mut self, pfn: u64, keep_fn: impl FnMut(&P) -> bool) {
        if let Some(node) = self.by_pfn.get_mut(&pfn) {
            node.places.retain(keep_fn);
        }
    }

    /// Returns the number of merged frames.
    pub fn len(&self) -> usize {
        self.by_pfn.len()
    }

    /// Returns true if no frame is merged.
    pub fn is_empty(&self) -> bool {
        self.by_pfn.is_empty()
    }

    /// Returns every merged frame number, in order.
    pub fn pfns(&self) -> Vec<u64> {
        self.by_pfn.keys().copied().collect()
    }

    /// Checks that the two views agree: each frame is listed once under its own
    /// checksum and nowhere else, no checksum lists nothing. Panics if not.
    pub fn check_invariants(&self) {
        let mut nr_listed = 0;
        for (sum, pfns) in &self.by_checksum {
            assert!(!pfns.is_empty(), "StableIndex: checksum {sum:#x} lists no frame");
            for pfn in pfns {
                let node = self.by_pfn.get(pfn).unwrap_or_else(|| panic!("StableIndex: {pfn:#x} listed, not merged"));
                assert_eq!(node.checksum, *sum, "StableIndex: {pfn:#x} listed under the wrong checksum");
            }
            nr_listed += pfns.len();
        }
        assert_eq!(nr_listed, self.by_pfn.len(), "StableIndex: a frame is listed twice or not at all");
    }
}

/// This pass's unmerged candidates: one per checksum (the first page seen with it).
#[derive(Debug)]
pub struct UnstableIndex<K> {
    by_checksum: BTreeMap<u64, K>,
}

impl<K> Default for UnstableIndex<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> UnstableIndex<K> {
    /// Creates an empty index.
    pub const fn new() -> Self {
        Self { by_checksum: BTreeMap::new() }
    }

    /// Takes out the candidate with `checksum`, if there is one.
    pub fn take(&mut self, checksum: u64) -> Option<K> {
        self.by_checksum.remove(&checksum)
    }

    /// Records `candidate` under `checksum` (replacing an older one).
    pub fn insert(&mut self, checksum: u64, candidate: K) {
        self.by_checksum.insert(checksum, candidate);
    }

    /// Returns the number of candidates (Linux's `pages_unshared`).
    pub fn len(&self) -> usize {
        self.by_checksum.len()
    }

    /// Returns true if there is no candidate.
    pub fn is_empty(&self) -> bool {
        self.by_checksum.is_empty()
    }

    /// Forgets every candidate (the end of a full scan).
    pub fn clear(&mut self) {
        self.by_checksum.clear();
    }
}

/// Linux's `pages_sharing` from the map counts of the merged frames: the mappings
/// beyond the first of each frame, i.e. the pages merging saved.
pub fn pages_sharing(map_counts: impl Iterator<Item = u32>) -> u64 {
    map_counts.map(|c| u64::from(c.saturating_sub(1))).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xorshift::XorShift;
    use alloc::vec;
    use std::collections::BTreeSet;

    #[test]
    fn equal_pages_have_equal_checksums_and_one_changed_byte_changes_it() {
        let a = vec![0x5au8; 4096];
        let mut b = a.clone();
        assert_eq!(page_checksum(&a), page_checksum(&b));
        for i in [0, 7, 8, 2048, 4095] {
            b[i] ^= 1;
            assert_ne!(page_checksum(&a), page_checksum(&b), "byte {i}");
            b[i] ^= 1;
        }
        assert_ne!(page_checksum(&[0u8; 4096]), page_checksum(&a));
    }

    #[test]
    fn pages_that_differ_in_one_word_rarely_collide() {
        let mut seen = BTreeSet::new();
        let mut page = vec![0u8; 4096];
        for i in 0..4096u32 {
            page[..4].copy_from_slice(&i.to_le_bytes());
            assert!(seen.insert(page_checksum(&page)), "collision at {i}");
        }
    }

    #[test]
    fn stable_index_finds_frames_by_checksum_and_forgets_removed_ones() {
        let mut index: StableIndex<u32> = StableIndex::new();
        index.insert(10, 0xaa, vec![1]);
        index.insert(11, 0xaa, vec![2]);
        index.insert(12, 0xbb, vec![]);
        index.check_invariants();
        assert_eq!(index.with_checksum(0xaa), &[10, 11]);
        assert!(index.add_place(10, 3));
        assert!(index.add_place(10, 3), "a second add of the same place is accepted");
        assert_eq!(index.node(10).unwrap().places, vec![1, 3], "and listed once");
        assert!(!index.add_place(99, 1));
        index.retain_places(10, |&p| p != 1);
        assert_eq!(index.node(10).unwrap().places, vec![3]);
        assert_eq!(index.remove(10).unwrap().checksum, 0xaa);
        assert_eq!(index.with_checksum(0xaa), &[11]);
        assert!(index.remove(10).is_none());
        index.remove(11);
        assert_eq!(index.with_checksum(0xaa), &[] as &[u64]);
        index.check_invariants();
        assert_eq!(index.len(), 1);
    }

    #[test]
    #[should_panic(expected = "already merged")]
    fn a_frame_is_merged_once() {
        let mut index: StableIndex<u32> = StableIndex::new();
        index.insert(10, 1, vec![]);
        index.insert(10, 2, vec![]);
    }

    #[test]
    fn stable_index_agrees_with_a_model_over_random_operations() {
        let mut rng = XorShift(0x16_5eed);
        let mut index: StableIndex<u32> = StableIndex::new();
        let mut model: BTreeMap<u64, u64> = BTreeMap::new();
        for _ in 0..5000 {
            let pfn = rng.next_u64() % 64;
            let sum = rng.next_u64() % 8;
            if let Some(was) = model.remove(&pfn) {
                assert_eq!(index.remove(pfn).map(|n| n.checksum), Some(was));
            } else {
                index.insert(pfn, sum, vec![]);
                model.insert(pfn, sum);
            }
            index.check_invariants();
            for s in 0..8 {
                let want: Vec<u64> = model.iter().filter(|&(_, &m)| m == s).map(|(&p, _)| p).collect();
                let mut got = index.with_checksum(s).to_vec();
                got.sort_unstable();
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn unstable_index_hands_out_each_candidate_once() {
        let mut index: UnstableIndex<&str> = UnstableIndex::new();
        index.insert(5, "a");
        assert_eq!(index.len(), 1);
        assert_eq!(index.take(5), Some("a"));
        assert_eq!(index.take(5), None);
        index.insert(6, "b");
        index.clear();
        assert!(index.is_empty());
    }

    #[test]
    fn pages_sharing_counts_the_mappings_beyond_the_first() {
        assert_eq!(pages_sharing([4, 1, 0, 3].into_iter()), 3 + 2);
    }
}
