//! The installed policy, and switching to another in bounded batches.
//!
//! A switch used to move every tracked page from the old policy to the new one in
//! one go, with the policy lock held and so with interrupts off: 164-426 ms for
//! ~14 000 pages in the debug build under load, 1.09 s once (a disk request timed
//! out meanwhile). Now [`Installed::begin_switch`] makes the new policy current
//! and keeps the old one beside it; the switching thread then moves
//! [`SWITCH_BATCH`] pages at a time ([`Installed::hand_over_batch`]), taking the
//! lock for each batch and dropping it between, so interrupts are never off for
//! more than one batch.
//!
//! While both policies hold pages, every operation must know which one holds a
//! given page. Both thread their rings through the same links in the frame table,
//! so "has links" says only that *some* policy tracks it, and the frame table has
//! no bit left (the age byte belongs to the policies). So a bitmap beside it, one
//! bit a frame, says "moved to (or tracked first by) the new policy"
//! ([`MOVED`]): cleared when a switch begins, set for each page the new policy
//! takes, read only while a switch is under way.
//!
//! ```text
//!   tracked?  links in the frame table     moved bit     held by
//!   no        -                            -             nobody
//!   yes       yes                          set           the new policy
//!   yes       yes                          clear         the old policy (not moved yet)
//! ```
//! - a page made resident meanwhile (`track`) goes to the new policy;
//! - a page freed (`untrack`) leaves whichever holds it;
//! - reclaim picks from the old policy first (its pages are the older), then the new.
//!
//! Lock state: everything here runs under `reclaim::POLICY`; the bitmap is atomic
//! words, written only under that lock, cleared before a switch under it too.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use super::{Policy, RmapProbe};
use crate::mm::frame;

/// Pages moved per batch (one lock hold).
pub const SWITCH_BATCH: usize = 64;

/// One bit per managed frame: the new policy holds it (see the module docs).
static MOVED: spin::Once<(u64, Vec<AtomicU64>)> = spin::Once::new();

/// Allocates the bitmap; called once at boot. Without it (no memory), switches
/// move every page in one hold of the lock, as before.
pub fn init() {
    let (first, nr_frames) = frame::managed_frames();
    let nr_words = nr_frames.div_ceil(64) as usize;
    let mut words = Vec::new();
    if words.try_reserve_exact(nr_words).is_err() {
        log::warn!("reclaim: no memory for the switch bitmap; policy switches move every page at once");
        return;
    }
    words.resize_with(nr_words, || AtomicU64::new(0));
    MOVED.call_once(|| (first.pfn(), words));
}

fn bit_of(pfn: u64) -> Option<(&'static AtomicU64, u64)> {
    let (first_pfn, words) = MOVED.get()?;
    let index = pfn.checked_sub(*first_pfn)?;
    Some((words.get((index / 64) as usize)?, 1 << (index % 64)))
}

fn is_moved(pfn: u64) -> bool {
    bit_of(pfn).is_some_and(|(word, bit)| word.load(Ordering::Acquire) & bit != 0)
}

fn set_moved(pfn: u64, is_moved: bool) {
    if let Some((word, bit)) = bit_of(pfn) {
        if is_moved {
            word.fetch_or(bit, Ordering::AcqRel);
        } else {
            word.fetch_and(!bit, Ordering::AcqRel);
        }
    }
}

/// The policy tracking every resident user frame, and, during a switch, the one
/// it replaces (still holding the pages not moved yet).
pub struct Installed {
    current: Policy,
    old: Option<Policy>,
}

impl Installed {
    /// Installs `policy` alone.
    pub fn new(policy: Policy) -> Installed {
        Installed { current: policy, old: None }
    }

    /// Returns the current policy (the new one during a switch).
    pub fn current(&self) -> &Policy {
        &self.current
    }

    /// Returns true while a switch is under way.
    pub fn is_switching(&self) -> bool {
        self.old.is_some()
    }

    /// Makes `new` current, keeping the old one for [`hand_over_batch`](Self::hand_over_batch);
    /// returns `Err(new)` if a switch is already under way or there is no bitmap
    /// (the caller then moves everything at once). Clears the bitmap first.
    pub fn begin_switch(&mut self, new: Policy) -> Result<(), Policy> {
        if self.old.is_some() || MOVED.get().is_none() {
            return Err(new);
        }
        if let Some((_, words)) = MOVED.get() {
            words.iter().for_each(|w| w.store(0, Ordering::Release));
        }
        self.old = Some(core::mem::replace(&mut self.current, new));
        Ok(())
    }

    /// Replaces the current policy, moving every page at once (no switch under way).
    pub fn replace_at_once(&mut self, mut new: Policy) -> (Policy, usize) {
        let nr_moved = mm_core::reclaim::hand_over(self.current.as_mut(), new.as_mut());
        (core::mem::replace(&mut self.current, new), nr_moved)
    }

    /// Moves up to `nr_pages` pages from the old policy to the new one, in the old
    /// one's eviction order; returns how many moved and, once the old one is empty,
    /// the old policy (the switch is over; the caller frees it, lock dropped).
    pub fn hand_over_batch(&mut self, nr_pages: usize) -> (usize, Option<Policy>) {
        let Some(old) = self.old.as_mut() else { return (0, None) };
        let mut nr_moved = 0;
        while nr_moved < nr_pages {
            let Some(page) = old.take_for_hand_over() else { break };
            self.current.on_insert(page);
            set_moved(page, true);
            nr_moved += 1;
        }
        if old.nr_tracked() == 0 { (nr_moved, self.old.take()) } else { (nr_moved, None) }
    }

    /// Returns the policy holding tracked `pfn` (see the module docs).
    fn holder(&mut self, pfn: u64) -> &mut Policy {
        match self.old.as_mut() {
            Some(old) if !is_moved(pfn) => old,
            _ => &mut self.current,
        }
    }

    /// Starts tracking `pfn` (no-op if some policy does): the current policy takes it.
    pub fn track(&mut self, pfn: u64) {
        // Every kernel policy's `is_tracked` is "has links in the frame table":
        // true whichever of the two holds it.
        if self.current.is_tracked(pfn) {
            return;
        }
        self.current.on_insert(pfn);
        if self.old.is_some() {
            set_moved(pfn, true);
        }
    }

    /// Starts tracking `pfn`, fresh from the allocator and so tracked by no policy
    /// (checked in debug builds): [`track`](Self::track) without its lookup.
    pub fn track_new(&mut self, pfn: u64) {
        debug_assert!(!self.current.is_tracked(pfn), "track_new: pfn {pfn:#x} is tracked already");
        self.current.on_insert(pfn);
        if self.old.is_some() {
            set_moved(pfn, true);
        }
    }

    /// Stops tracking `pfn`, whichever policy holds it.
    pub fn untrack(&mut self, pfn: u64) {
        if !self.current.is_tracked(pfn) {
            return;
        }
        self.holder(pfn).on_remove(pfn);
        if self.old.is_some() {
            set_moved(pfn, false);
        }
    }

    /// Stops tracking each of `pfns`, whichever policy holds it: in one call to
    /// the current policy when no switch is under way.
    pub fn untrack_all(&mut self, pfns: &[u64]) {
        if self.old.is_some() {
            pfns.iter().for_each(|&pfn| self.untrack(pfn));
        } else {
            // `on_remove` of an untracked page does nothing: no membership test needed.
            self.current.on_remove_all(pfns);
        }
    }

    /// Returns true if some policy tracks `pfn`.
    pub fn is_tracked(&mut self, pfn: u64) -> bool {
        self.current.is_tracked(pfn)
    }

    /// Returns the pages tracked by both.
    pub fn nr_tracked(&self) -> usize {
        self.current.nr_tracked() + self.old.as_ref().map_or(0, |old| old.nr_tracked())
    }

    /// Returns the pages rescued from second-chance lists by both.
    pub fn nr_rescued(&self) -> u64 {
        self.current.nr_rescued() + self.old.as_ref().map_or(0, |old| old.nr_rescued())
    }

    /// Ages the current policy's pages (the old one's are moved soon).
    pub fn on_tick(&mut self) {
        self.current.on_tick(&mut RmapProbe);
    }

    /// Picks a victim: from the old policy first (its pages are the older).
    pub fn pick_victim(&mut self) -> Option<u64> {
        if let Some(old) = self.old.as_mut()
            && let Some(victim) = old.pick_victim(&mut RmapProbe)
        {
            return Some(victim);
        }
        self.current.pick_victim(&mut RmapProbe)
    }

    /// Page buffering: the current policy's pages to unmap now (see
    /// `ReplacementPolicy::take_for_buffering`).
    pub fn take_for_buffering(&mut self, out: &mut [u64]) -> usize {
        self.current.take_for_buffering(out)
    }

    /// A page from [`take_for_buffering`](Self::take_for_buffering) is back:
    /// unmapped (or not) and dirty (or not). Tracked again by the current policy.
    pub fn on_buffered(&mut self, pfn: u64, is_dirty: bool) {
        if self.current.is_tracked(pfn) {
            return;
        }
        self.current.on_buffered(pfn, is_dirty);
        if self.old.is_some() {
            set_moved(pfn, true);
        }
    }

    /// A fault mapped `pfn` back without I/O: true if it was on a second-chance list.
    pub fn on_soft_fault(&mut self, pfn: u64) -> bool {
        if !self.current.is_tracked(pfn) {
            return false;
        }
        self.holder(pfn).on_soft_fault(pfn)
    }

    /// Per-process resident sets (`vms`): `pfn`, just mapped by process `owner`,
    /// joins its set; true if the set is over `limit` now. Not during a switch
    /// (the page may still be the old policy's): false.
    pub fn claim_for(&mut self, pfn: u64, owner: u64, limit: usize) -> bool {
        self.old.is_none() && self.current.claim_for(pfn, owner, limit)
    }

    /// The oldest pages of the resident sets over their limits, to unmap
    /// (untracked until [`on_buffered`](Self::on_buffered)).
    pub fn take_over_limit(&mut self, out: &mut [u64]) -> usize {
        self.current.take_over_limit(out)
    }

    /// The pages in `owner`'s resident set and its limit (`vms` only).
    pub fn resident_set_of(&self, owner: u64) -> Option<(usize, usize)> {
        self.current.resident_set_of(owner)
    }

    /// The current policy's dirty second-chance pages.
    pub fn nr_dirty_buffered(&self) -> usize {
        self.current.nr_dirty_buffered()
    }

    /// The oldest dirty second-chance pages, to write (untracked meanwhile).
    pub fn take_for_cleaning(&mut self, out: &mut [u64]) -> usize {
        self.current.take_for_cleaning(out)
    }

    /// A page from [`take_for_cleaning`](Self::take_for_cleaning) is back.
    pub fn on_cleaned(&mut self, pfn: u64) {
        if self.current.is_tracked(pfn) {
            return;
        }
        self.current.on_cleaned(pfn);
        if self.old.is_some() {
            set_moved(pfn, true);
        }
    }

    /// The next likely victims (the old policy's first) and whether the policy
    /// spares used pages (see `ReplacementPolicy::upcoming_victims`).
    pub fn upcoming_victims(&mut self, out: &mut [u64]) -> (usize, bool) {
        let mut nr_named = 0;
        let mut spares = self.current.spares_referenced_pages();
        if let Some(old) = self.old.as_mut() {
            nr_named = old.upcoming_victims(out);
            spares = old.spares_referenced_pages();
        }
        (nr_named + self.current.upcoming_victims(&mut out[nr_named..]), spares)
    }
}
