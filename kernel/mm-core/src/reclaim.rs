//! Page-replacement policies as pure logic, and a simulator to compare them.
//!
//! When memory runs out, reclaim must choose a resident page to evict. This module
//! holds the choosers behind one trait, [`ReplacementPolicy`]:
//!
//! | policy | idea | usable in the kernel? |
//! |---|---|---|
//! | [`Fifo`] | evict the page resident longest | yes |
//! | [`Clock`] | FIFO, but a referenced page gets a second chance; optionally dirty-aware | yes |
//! | [`LruApprox`] | aging: an 8-bit history of the Accessed bit per page | yes |
//! | [`Lru`] | exact least recently used; needs to see every access | simulation only |
//! | [`Opt`] | Belady's optimum: evict the page used furthest in the future | simulation only |
//!
//! A policy never reads page tables itself. It names pages by a `u64` key (the
//! kernel uses frame numbers, the simulator page numbers) and asks a [`PageProbe`]
//! about the hardware bits: the kernel implements the probe by walking every PTE
//! that maps the frame (its reverse map) and testing/clearing the Accessed and
//! Dirty bits, then flushing the TLB; [`simulate`] implements it over a toy MMU.
//!
//! [`simulate`] replays a reference string (pages with read/write) through a policy
//! with a fixed number of frames and counts faults, hits, evictions and dirty
//! write-backs. `examples/replay.rs` uses it to print every policy side by side.
//!
//! Neighbours: the kernel's `mm/swap.rs` owns the policy object behind a lock,
//! feeds it `on_insert`/`on_remove` as user pages come and go, and calls
//! `pick_victim` from its reclaim path; [`crate::swap_map`] provides the slot the
//! victim is written to.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

mod ring;

pub use ring::{Ring, RingLinks, RingStore, VecLinks};

/// Answers questions about the hardware state of a page; implemented by the kernel.
pub trait PageProbe {
    /// Returns true if any PTE mapping `page` has its Accessed bit set; changes nothing.
    fn is_referenced(&mut self, page: u64) -> bool;
    /// Clears the Accessed bit of every PTE mapping `page`; returns true if any was set.
    fn test_and_clear_referenced(&mut self, page: u64) -> bool;
    /// Returns true if `page` must be written back before its frame can be reused.
    fn is_dirty(&mut self, page: u64) -> bool;
}

/// A page-replacement policy: tracks the resident pages and picks the next to evict.
///
/// The caller tells the policy when a page becomes resident (`on_insert`) and when
/// it leaves for any reason other than eviction (`on_remove`: unmapped, process
/// exit). `pick_victim` removes the page it returns from the policy; if the caller
/// then fails to evict it (the page is pinned, say), it hands it back with
/// `on_insert`. Inserting a tracked page or removing an untracked one does nothing.
pub trait ReplacementPolicy {
    /// Returns a short name for tables, like `"clock"`.
    fn name(&self) -> &'static str;

    /// Returns the number of pages the policy is tracking.
    fn nr_tracked(&self) -> usize;

    /// Returns true if the policy is tracking `page` (the kernel's audit compares
    /// the tracked set with the resident user frames one by one).
    fn is_tracked(&mut self, page: u64) -> bool;

    /// Starts tracking `page`, which was just brought into memory.
    fn on_insert(&mut self, page: u64);

    /// Records an access to resident `page` that the caller saw happen.
    ///
    /// The kernel does not see ordinary accesses (the MMU only sets the Accessed bit),
    /// so policies meant for the kernel ignore this; [`Lru`] and [`Opt`] need it.
    fn on_access(&mut self, page: u64);

    /// Stops tracking `page`, which left memory other than by eviction.
    fn on_remove(&mut self, page: u64);

    /// Runs the periodic work of a timer tick, such as aging; most policies have none.
    fn on_tick(&mut self, probe: &mut dyn PageProbe) {
        let _ = probe;
    }

    /// Chooses a page to evict, stops tracking it and returns it; `None` if none is tracked.
    fn pick_victim(&mut self, probe: &mut dyn PageProbe) -> Option<u64>;
}

// ---------------------------------------------------------------------------
// FIFO

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
    fn nr_tracked(&self) -> usize {
        self.ring.len()
    }
    fn is_tracked(&mut self, page: u64) -> bool {
        self.ring.contains(page)
    }
    fn on_insert(&mut self, page: u64) {
        self.ring.insert_behind_hand(page, 0);
    }
    fn on_access(&mut self, _page: u64) {}
    fn on_remove(&mut self, page: u64) {
        self.ring.remove(page);
    }
    fn pick_victim(&mut self, _probe: &mut dyn PageProbe) -> Option<u64> {
        self.ring.take_at_hand()
    }
}

// ---------------------------------------------------------------------------
// Clock
//
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
// The hand makes up to four sweeps (the "enhanced second chance" of Silberschatz
// and Stallings):
//   1. Look for (0, 0) without changing any bit; take the first one found.
//   2. Look for (0, 1), clearing the Accessed bit of every page passed over; take
//      the first one found.
//   3. Every Accessed bit is now clear: repeat 1, then 2. A page is sure to turn up.
// So clean pages are preferred in the first sweep and the disk is only used when
// no unused clean page exists.

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

    /// Runs the enhanced sweeps over the (referenced, dirty) classes; see above.
    fn pick_enhanced(&mut self, probe: &mut dyn PageProbe) -> Option<u64> {
        let nr_pages = self.ring.len();
        for _round in 0..2 {
            for _ in 0..nr_pages {
                let page = self.ring.hand_page()?;
                // Dirty first: a kernel often knows it from the frame alone (a page
                // that was never written out), without walking page tables.
                if !probe.is_dirty(page) && !probe.is_referenced(page) {
                    return self.ring.take_at_hand();
                }
                self.ring.advance();
            }
            for _ in 0..nr_pages {
                let page = self.ring.hand_page()?;
                if !probe.test_and_clear_referenced(page) {
                    return self.ring.take_at_hand();
                }
                self.ring.advance();
            }
        }
        self.ring.take_at_hand()
    }
}

impl<L: RingStore> ReplacementPolicy for Clock<L> {
    fn name(&self) -> &'static str {
        if self.prefers_clean { "enhanced-clock" } else { "clock" }
    }
    fn nr_tracked(&self) -> usize {
        self.ring.len()
    }
    fn is_tracked(&mut self, page: u64) -> bool {
        self.ring.contains(page)
    }
    fn on_insert(&mut self, page: u64) {
        self.ring.insert_behind_hand(page, 0);
    }
    fn on_access(&mut self, _page: u64) {}
    fn on_remove(&mut self, page: u64) {
        self.ring.remove(page);
    }
    fn pick_victim(&mut self, probe: &mut dyn PageProbe) -> Option<u64> {
        if self.prefers_clean { self.pick_enhanced(probe) } else { self.pick_second_chance(probe) }
    }
}

// ---------------------------------------------------------------------------
// Exact LRU

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

// ---------------------------------------------------------------------------
// LRU approximation by aging

/// LRU approximated by aging (Tanenbaum, "Modern Operating Systems").
///
/// Each page keeps an 8-bit history. On every tick the history shifts right by one
/// and the page's Accessed bit (tested and cleared) enters at the top, so a page
/// used in the last tick outranks one used only before it. The victim is the page
/// with the smallest history, the oldest arrival among equals. A new page starts
/// with the top bit set: the access that faulted it in counts as recent.
///
/// The pages sit on a [`Ring`] in arrival order (the hand never moves on its own, so
/// it stays at the oldest) and the history is the page's age in the ring's store:
/// the kernel keeps it in the frame descriptor, so tracking allocates nothing. A
/// tick and a pick each walk the whole ring, as the map did before.
#[derive(Clone, Debug, Default)]
pub struct LruApprox<L = VecLinks> {
    ring: Ring<L>,
}

impl LruApprox {
    /// Creates an empty aging policy keeping its pages in a [`VecLinks`].
    pub fn new() -> LruApprox {
        LruApprox::default()
    }
}

impl<L: RingStore> LruApprox<L> {
    /// Creates an empty aging policy keeping its pages (and their ages) in `links`.
    pub fn with_links(links: L) -> LruApprox<L> {
        LruApprox { ring: Ring::new(links) }
    }
}

impl<L: RingStore> ReplacementPolicy for LruApprox<L> {
    fn name(&self) -> &'static str {
        "lru-aging"
    }
    fn nr_tracked(&self) -> usize {
        self.ring.len()
    }
    fn is_tracked(&mut self, page: u64) -> bool {
        self.ring.contains(page)
    }
    fn on_insert(&mut self, page: u64) {
        self.ring.insert_behind_hand(page, 0x80);
    }
    fn on_access(&mut self, _page: u64) {}
    fn on_remove(&mut self, page: u64) {
        self.ring.remove(page);
    }
    fn on_tick(&mut self, probe: &mut dyn PageProbe) {
        let Some(mut page) = self.ring.hand_page() else { return };
        for _ in 0..self.ring.len() {
            let newest = if probe.test_and_clear_referenced(page) { 0x80 } else { 0 };
            page = self.ring.update_age(page, |history| (history >> 1) | newest);
        }
    }
    fn pick_victim(&mut self, _probe: &mut dyn PageProbe) -> Option<u64> {
        let victim = self.ring.smallest_age_page()?;
        self.ring.remove(victim);
        Some(victim)
    }
}

// ---------------------------------------------------------------------------
// OPT

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

// ---------------------------------------------------------------------------
// The simulator

/// One entry of a reference string: a page, read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRef {
    /// The page referenced.
    pub page: u64,
    /// True for a write (which dirties the page), false for a read.
    pub is_write: bool,
}

impl PageRef {
    /// Creates a read of `page`.
    pub const fn read(page: u64) -> PageRef {
        PageRef { page, is_write: false }
    }

    /// Creates a write to `page`.
    pub const fn write(page: u64) -> PageRef {
        PageRef { page, is_write: true }
    }
}

/// Returns a reference string that reads each of `pages` in turn.
pub fn reads(pages: &[u64]) -> Vec<PageRef> {
    pages.iter().map(|&page| PageRef::read(page)).collect()
}

/// What a simulation counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimResult {
    /// References to a page that was not resident.
    pub faults: u64,
    /// References to a resident page.
    pub hits: u64,
    /// Pages evicted to make room.
    pub evictions: u64,
    /// Evicted pages that were dirty and had to be written out first.
    pub dirty_writebacks: u64,
}

/// The Accessed and Dirty bits of one resident page in the simulated MMU.
#[derive(Clone, Copy, Debug)]
struct SimPte {
    is_referenced: bool,
    is_dirty: bool,
}

/// A toy MMU: the resident pages and their Accessed/Dirty bits.
#[derive(Debug, Default)]
struct SimMmu {
    resident: BTreeMap<u64, SimPte>,
}

impl PageProbe for SimMmu {
    fn is_referenced(&mut self, page: u64) -> bool {
        self.resident.get(&page).is_some_and(|pte| pte.is_referenced)
    }
    fn test_and_clear_referenced(&mut self, page: u64) -> bool {
        match self.resident.get_mut(&page) {
            Some(pte) => core::mem::replace(&mut pte.is_referenced, false),
            None => false,
        }
    }
    fn is_dirty(&mut self, page: u64) -> bool {
        self.resident.get(&page).is_some_and(|pte| pte.is_dirty)
    }
}

/// Replays `refs` through `policy` with `nr_frames` frames of memory and counts events.
///
/// Models demand paging: a reference to a resident page is a hit and sets the
/// page's Accessed bit (and Dirty bit on a write), as the MMU would; any other
/// reference is a fault, which evicts the policy's victim if all frames are full
/// (a write-back if it was dirty) and loads the page with Accessed set. A timer
/// tick follows every reference. `policy` should start empty.
pub fn simulate(policy: &mut dyn ReplacementPolicy, nr_frames: usize, refs: &[PageRef]) -> SimResult {
    let mut mmu = SimMmu::default();
    let mut result = SimResult::default();
    for reference in refs {
        if let Some(pte) = mmu.resident.get_mut(&reference.page) {
            result.hits += 1;
            pte.is_referenced = true;
            pte.is_dirty |= reference.is_write;
            policy.on_access(reference.page);
        } else {
            result.faults += 1;
            if nr_frames == 0 {
                continue;
            }
            if mmu.resident.len() == nr_frames {
                let victim = policy.pick_victim(&mut mmu);
                let evicted = victim.and_then(|page| mmu.resident.remove(&page));
                let evicted =
                    evicted.unwrap_or_else(|| panic!("simulate: {} picked no resident victim", policy.name()));
                result.evictions += 1;
                result.dirty_writebacks += u64::from(evicted.is_dirty);
            }
            mmu.resident.insert(reference.page, SimPte { is_referenced: true, is_dirty: reference.is_write });
            policy.on_insert(reference.page);
        }
        policy.on_tick(&mut mmu);
    }
    result
}

#[cfg(test)]
mod tests;
