//! Page-replacement policies as pure logic, and a simulator to compare them.
//!
//! When memory runs out, reclaim must choose a resident page to evict. This module
//! holds the choosers behind one trait, [`ReplacementPolicy`]:
//!
//! | policy | idea | usable in the kernel? |
//! |---|---|---|
//! | [`Fifo`] | evict the page resident longest | yes |
//! | [`Random`] | evict a page chosen at random (seeded): the baseline | yes |
//! | [`Clock`] | FIFO, but a referenced page gets a second chance; optionally dirty-aware | yes |
//! | [`TwoHandClock`] | a front hand clears Accessed bits, a back hand `spread` behind evicts | yes |
//! | [`ActiveInactive`] | Linux: new pages inactive, a second use promotes, active aged down | yes |
//! | [`TwoQueue`] | 2Q: new pages on a short probation FIFO, used again there: to a clock | yes |
//! | [`SegmentedFifo`] | VAX/VMS: FIFO, then clean/dirty second-chance lists that rescue | yes |
//! | [`BufferedFifo`] | the same with true page buffering: listed pages unmapped, a fault rescues | yes |
//! | [`LruApprox`] | aging: an 8-bit history of the Accessed bit per page | yes |
//! | [`Lru`] | exact least recently used; needs to see every access | simulation only |
//! | [`ClockPro`] | CLOCK-Pro: LIRS on a clock with Accessed bits; hot, cold and ghost pages | simulation only (ghosts) |
//! | [`Lirs`] | LIRS: pages by inter-reference recency; loops stay mostly resident | simulation only |
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

mod active_inactive;
pub(crate) mod buffered_fifo;
mod clock;
mod clock_pro;
mod fifo;
mod lirs;
mod lru;
mod lru_approx;
mod opt;
mod random;
mod ring;
mod segmented_fifo;
mod sim;
mod two_hand;
mod two_queue;
mod vms_lists;
pub mod trace;

pub use active_inactive::{ACTIVE_PER_INACTIVE, ActiveInactive};
pub use buffered_fifo::BufferedFifo;
pub use clock::{Clock, DIRTY_LOOKAHEAD};
pub use clock_pro::ClockPro;
pub use fifo::Fifo;
pub use lirs::{HIR_SHARE, Lirs};
pub use lru::Lru;
pub use lru_approx::LruApprox;
pub use opt::Opt;
pub use random::Random;
pub use ring::{Ring, RingLinks, RingStore, SharedRingStore, SharedVecLinks, VecLinks};
pub use segmented_fifo::{SECOND_CHANCE_SHARE, SegmentedFifo};
pub use two_hand::TwoHandClock;
pub use two_queue::{PROBATION_SHARE, TwoQueue};
pub use sim::{PageRef, SimResult, reads, simulate};

use alloc::collections::BTreeSet;

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

    /// Stops tracking each of `pages` (an unmap's batch), as [`on_remove`](Self::on_remove)
    /// does for one; a policy on one ring does it with its store opened once.
    fn on_remove_all(&mut self, pages: &[u64]) {
        for &page in pages {
            self.on_remove(page);
        }
    }

    /// Runs the periodic work of a timer tick, such as aging; most policies have none.
    fn on_tick(&mut self, probe: &mut dyn PageProbe) {
        let _ = probe;
    }

    /// Chooses a page to evict, stops tracking it and returns it; `None` if none is tracked.
    fn pick_victim(&mut self, probe: &mut dyn PageProbe) -> Option<u64>;

    /// Fills `out` with pages near the eviction end, those the policy will most
    /// likely pick next, first the likeliest, without changing anything (no bit
    /// read or cleared, no page moved); returns how many it wrote. The kernel's
    /// background cleaner writes the dirty ones ahead of reclaim.
    ///
    /// A guess, not a promise: the Accessed bits decide the real choice when it is
    /// made (a page used meanwhile gets its second chance instead). Policies that
    /// cannot name their next victims write none (the default): [`Opt`] and
    /// [`Lru`] (simulation only).
    fn upcoming_victims(&mut self, out: &mut [u64]) -> usize {
        let _ = out;
        0
    }

    /// Returns true if a page used since the policy last looked is spared when
    /// reached (a second chance: the clocks, the lists, aging); false if it goes
    /// whatever its Accessed bit says (FIFO, random). The cleaner skips the used
    /// pages among [`upcoming_victims`](Self::upcoming_victims) when this is true.
    fn spares_referenced_pages(&self) -> bool {
        true
    }

    /// Stops tracking some page and returns it, cheaply, for [`hand_over`]; `None`
    /// once empty. By default the next victim as seen with no hardware bits (the
    /// policy's own eviction order); a policy whose choice walks every page
    /// overrides it to give pages up in arrival order.
    fn take_for_hand_over(&mut self) -> Option<u64> {
        self.pick_victim(&mut NoBitsProbe)
    }

    /// Returns how many pages were rescued from a second-chance list without I/O
    /// (page buffering: [`SegmentedFifo`]); 0 for policies without such lists.
    fn nr_rescued(&self) -> u64 {
        0
    }

    /// Page buffering ([`BufferedFifo`]): stops tracking the pages the policy wants
    /// *unmapped* now, its frame kept, and writes them to `out`; returns how many.
    /// The caller unmaps each and reports it back with
    /// [`on_buffered`](Self::on_buffered) (also if it could not unmap it). Policies
    /// without page buffering give none (the default).
    fn take_for_buffering(&mut self, out: &mut [u64]) -> usize {
        let _ = out;
        0
    }

    /// A page from [`take_for_buffering`](Self::take_for_buffering) is unmapped now
    /// (or could not be: then it is still mapped); `is_dirty`: its backing store
    /// does not hold it. By default the page is simply tracked again.
    fn on_buffered(&mut self, page: u64, is_dirty: bool) {
        let _ = is_dirty;
        self.on_insert(page);
    }

    /// A fault mapped `page` back from a second-chance list, without I/O: returns
    /// true if it was on one (a rescue, counted in [`nr_rescued`](Self::nr_rescued)).
    fn on_soft_fault(&mut self, page: u64) -> bool {
        let _ = page;
        false
    }

    /// Returns the pages waiting on a dirty second-chance list (to be written).
    fn nr_dirty_buffered(&self) -> usize {
        0
    }

    /// Stops tracking the oldest pages of the dirty second-chance list and writes
    /// them to `out`, for the caller to write to their backing store and report
    /// back with [`on_cleaned`](Self::on_cleaned); returns how many.
    fn take_for_cleaning(&mut self, out: &mut [u64]) -> usize {
        let _ = out;
        0
    }

    /// A page from [`take_for_cleaning`](Self::take_for_cleaning) was written (or
    /// could not be): by default it is simply tracked again.
    fn on_cleaned(&mut self, page: u64) {
        self.on_insert(page);
    }

    /// Per-process resident-set limits ([`BufferedFifo`], VAX/VMS): a fault mapped
    /// `page` for process `owner` (any id the caller keeps unique), whose resident
    /// set may hold `limit` pages; the page joins that process's own FIFO. Returns
    /// true if the set is over its limit now: the caller then takes the excess with
    /// [`take_over_limit`](Self::take_over_limit). Policies without such sets do
    /// nothing and return false (the default).
    fn claim_for(&mut self, page: u64, owner: u64, limit: usize) -> bool {
        let _ = (page, owner, limit);
        false
    }

    /// Stops tracking the oldest pages of every resident set over its limit and
    /// writes them to `out` (local replacement); the caller unmaps each and
    /// reports it with [`on_buffered`](Self::on_buffered), as for
    /// [`take_for_buffering`](Self::take_for_buffering). None by default.
    fn take_over_limit(&mut self, out: &mut [u64]) -> usize {
        let _ = out;
        0
    }

    /// Returns the pages in `owner`'s resident set and its limit, for a policy
    /// with per-process sets; `None` otherwise (the default).
    fn resident_set_of(&self, owner: u64) -> Option<(usize, usize)> {
        let _ = owner;
        None
    }

    /// Returns (active, inactive) list sizes for a policy with Linux's two lists
    /// ([`ActiveInactive`]: `/proc/meminfo`'s Active and Inactive); `None` for the others.
    fn active_inactive_sizes(&self) -> Option<(usize, usize)> {
        None
    }
}

/// A probe that sees no Accessed and no Dirty bit, and clears nothing.
///
/// Handing pages from one policy to another ([`hand_over`]) picks "victims" with
/// it: each policy then gives its pages up in its own eviction order without
/// touching the hardware bits, which the new policy still sees.
pub struct NoBitsProbe;

impl PageProbe for NoBitsProbe {
    fn is_referenced(&mut self, _page: u64) -> bool {
        false
    }
    fn test_and_clear_referenced(&mut self, _page: u64) -> bool {
        false
    }
    fn is_dirty(&mut self, _page: u64) -> bool {
        false
    }
}

/// A probe whose Accessed and Dirty bits are set by hand: the pages in
/// `referenced` and in `dirty` have them. Testing and clearing takes a page out of
/// `referenced`, as the MMU's bit would be cleared. For tests and exercises that
/// play the MMU themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HandBits {
    /// The pages whose Accessed bit is set.
    pub referenced: BTreeSet<u64>,
    /// The pages whose Dirty bit is set.
    pub dirty: BTreeSet<u64>,
}

impl HandBits {
    /// Creates the bits: Accessed set on `referenced`, Dirty on `dirty`.
    pub fn new(referenced: &[u64], dirty: &[u64]) -> HandBits {
        HandBits { referenced: referenced.iter().copied().collect(), dirty: dirty.iter().copied().collect() }
    }
}

impl PageProbe for HandBits {
    fn is_referenced(&mut self, page: u64) -> bool {
        self.referenced.contains(&page)
    }
    fn test_and_clear_referenced(&mut self, page: u64) -> bool {
        self.referenced.remove(&page)
    }
    fn is_dirty(&mut self, page: u64) -> bool {
        self.dirty.contains(&page)
    }
}

/// Moves every page `from` tracks to `to`, in the order `from` would have evicted
/// them (so the page `from` would have taken first is the oldest in `to`; aging,
/// random and the two-handed clock give theirs in arrival order, see
/// [`ReplacementPolicy::take_for_hand_over`]); returns the number of pages moved.
/// `from` ends empty.
///
/// This is how the kernel switches policy at run time. A page is untracked by
/// `from` before `to` tracks it, so two policies may share one per-page store.
pub fn hand_over(from: &mut dyn ReplacementPolicy, to: &mut dyn ReplacementPolicy) -> usize {
    let mut nr_moved = 0;
    while let Some(page) = from.take_for_hand_over() {
        to.on_insert(page);
        nr_moved += 1;
    }
    nr_moved
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod buffered_fifo_tests;
#[cfg(test)]
mod lirs_tests;
#[cfg(test)]
mod clock_pro_tests;
