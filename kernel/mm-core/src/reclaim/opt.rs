//! Belady's OPT: evicts the page used furthest in the future; simulation only (see [`super`]).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use super::{PageProbe, PageRef, ReplacementPolicy};

/// Belady's optimal policy: evicts the page whose next use lies furthest ahead.
///
/// No policy can fault less, which makes it the yardstick for the others, but it
/// must know the future: it is built from the whole reference string and expects
/// `on_insert`/`on_access` calls in exactly that order, one per reference, as
/// [`simulate`] makes them. Simulation only.
#[derive(Clone, Debug)]
pub struct Opt {
    /// The reference string, as page keys.
    pages: Vec<u64>,
    /// For each position, the position of the next reference to the same page.
    next_use_after: Vec<usize>,
    /// How many references have been consumed so far.
    position: usize,
    /// Each tracked page's next use.
    next_use_of: BTreeMap<u64, usize>,
    /// The tracked pages ordered by next use; the last is the victim.
    by_next_use: BTreeSet<(usize, u64)>,
}

impl Opt {
    /// Marks a page that is never used again.
    const NEVER: usize = usize::MAX;

    /// Creates the policy for the reference string `refs`.
    pub fn new(refs: &[PageRef]) -> Opt {
        let pages: Vec<u64> = refs.iter().map(|r| r.page).collect();
        let mut next_use_after = alloc::vec![Opt::NEVER; pages.len()];
        let mut seen_at: BTreeMap<u64, usize> = BTreeMap::new();
        for (position, &page) in pages.iter().enumerate().rev() {
            if let Some(later) = seen_at.insert(page, position) {
                next_use_after[position] = later;
            }
        }
        Opt { pages, next_use_after, position: 0, next_use_of: BTreeMap::new(), by_next_use: BTreeSet::new() }
    }

    /// Consumes the next reference, which must be to `page`, and records its next use.
    fn consume(&mut self, page: u64) {
        assert_eq!(self.pages.get(self.position), Some(&page), "Opt::consume: out of step with the reference string");
        let next_use = self.next_use_after[self.position];
        self.position += 1;
        if let Some(previous) = self.next_use_of.insert(page, next_use) {
            self.by_next_use.remove(&(previous, page));
        }
        self.by_next_use.insert((next_use, page));
    }
}

impl ReplacementPolicy for Opt {
    fn name(&self) -> &'static str {
        "opt"
    }
    fn nr_tracked(&self) -> usize {
        self.next_use_of.len()
    }
    fn is_tracked(&mut self, page: u64) -> bool {
        self.next_use_of.contains_key(&page)
    }
    fn on_insert(&mut self, page: u64) {
        self.consume(page);
    }
    fn on_access(&mut self, page: u64) {
        self.consume(page);
    }
    fn on_remove(&mut self, page: u64) {
        if let Some(next_use) = self.next_use_of.remove(&page) {
            self.by_next_use.remove(&(next_use, page));
        }
    }
    fn pick_victim(&mut self, _probe: &mut dyn PageProbe) -> Option<u64> {
        let (_, page) = self.by_next_use.pop_last()?;
        self.next_use_of.remove(&page);
        Some(page)
    }
}
