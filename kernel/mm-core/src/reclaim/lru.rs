//! Exact LRU: needs to see every access, so it runs in the simulator only (see [`super`]).

use alloc::collections::BTreeMap;

use super::{PageProbe, ReplacementPolicy};

/// Exact least-recently-used: evicts the page whose last access is oldest.
///
/// Needs every access reported through `on_access`, which only a simulator can do;
/// the kernel uses [`Clock`] or [`LruApprox`] instead.
#[derive(Clone, Debug, Default)]
pub struct Lru {
    /// Logical time of each page's last access.
    last_use_of: BTreeMap<u64, u64>,
    /// The same information ordered by time: last access -> page.
    by_last_use: BTreeMap<u64, u64>,
    /// The next logical time stamp.
    now: u64,
}

impl Lru {
    /// Creates an empty LRU policy.
    pub fn new() -> Lru {
        Lru::default()
    }

    /// Stamps `page` with the current time.
    fn touch(&mut self, page: u64) {
        if let Some(previous) = self.last_use_of.insert(page, self.now) {
            self.by_last_use.remove(&previous);
        }
        self.by_last_use.insert(self.now, page);
        self.now += 1;
    }
}

impl ReplacementPolicy for Lru {
    fn name(&self) -> &'static str {
        "lru"
    }
    fn nr_tracked(&self) -> usize {
        self.last_use_of.len()
    }
    fn is_tracked(&mut self, page: u64) -> bool {
        self.last_use_of.contains_key(&page)
    }
    fn on_insert(&mut self, page: u64) {
        self.touch(page);
    }
    fn on_access(&mut self, page: u64) {
        if self.last_use_of.contains_key(&page) {
            self.touch(page);
        }
    }
    fn on_remove(&mut self, page: u64) {
        if let Some(stamp) = self.last_use_of.remove(&page) {
            self.by_last_use.remove(&stamp);
        }
    }
    fn pick_victim(&mut self, _probe: &mut dyn PageProbe) -> Option<u64> {
        let (_, page) = self.by_last_use.pop_first()?;
        self.last_use_of.remove(&page);
        Some(page)
    }
}
