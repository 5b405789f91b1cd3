//! The swap cache's reference rules, as a state machine over one slot.
//!
//! A page is in the swap cache while it is both in a frame and in a slot. Two
//! counts say who needs it, and this module decides, at each event, whether the
//! cached frame may leave the cache (giving up one slot reference and one frame
//! reference) or must stay. The kernel (`mm/swap.rs`) reads the counts under its
//! swap lock, asks, and applies the verdict; the host model test asks the same
//! questions of its simulated swap cache.
//!
//! ```text
//!  slot refs  = swap PTEs naming the slot + 1 while a frame caches it (+ 1 if retired)
//!  frame refs = PTEs mapping the frame     + 1 while it is in the swap cache
//!
//!  event (counts already updated)         the cached page leaves the cache when
//!  a swap PTE went away                   refs == 1 (only the cache's) and no PTE maps
//!                                         the page and it is not under I/O
//!  the page's last PTE went away          not under I/O, and refs == 1 (nobody else will
//!                                         want it) or it is clean (the slot holds it)
//!  an eviction wrote it / found it clean  no PTE maps it any more
//!  an eviction was cancelled before I/O   refs == 1 and the slot never got the page (DIRTY)
//!                                         or no PTE maps the page any more
//!  the eviction's write failed            refs == 1: the slot is retired, the page leaves
//!  readahead finished                     the read worked and refs > 1 (a swap PTE wants it)
//! ```
//! A swap fault may map the cached page writable only if the faulting swap PTE is
//! its only user: no PTE maps the frame and the slot's references are that PTE's
//! and the cache's ([`SlotState::is_only_user_of_swap_pte`]).
#![forbid(unsafe_code)]

/// The state of a cached page, as the swap cache's rules need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachedPage {
    /// PTEs that map the frame.
    pub map_count: u32,
    /// The frame is LOCKED: an I/O (a read into it, an eviction's write) is under way.
    pub is_locked: bool,
    /// The frame holds data its slot does not (flag DIRTY: the slot was never written,
    /// or a write to the page since its last write-out was recorded).
    pub is_dirty: bool,
}

/// One slot, as the swap cache sees it: its share count and its cached page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotState {
    /// The slot's share count (see the module docs).
    pub refs: u16,
    /// The page caching the slot, if any.
    pub page: Option<CachedPage>,
}

/// What happens to the cached page after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheVerdict {
    /// It stays in the cache.
    Keep,
    /// It leaves the cache: the slot loses the cache's reference, the frame loses
    /// the cache's reference (and is freed if that was its last).
    Drop,
}

/// What happens after the write of an evicted page to its slot failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteFailVerdict {
    /// Nobody else names the slot: it is retired (never handed out again: the
    /// retired list takes the cache's reference) and the page leaves the cache.
    RetireSlot,
    /// A swap PTE still names the slot: the page stays cached (and DIRTY) to serve it.
    KeepCached,
}

impl SlotState {
    /// Returns the state of a slot with `refs` references cached by `page`.
    pub const fn new(refs: u16, page: Option<CachedPage>) -> SlotState {
        SlotState { refs, page }
    }

    /// Returns true if a cached page is here, mapped by no PTE and not under I/O.
    fn has_idle_page(self) -> bool {
        self.page.is_some_and(|p| p.map_count == 0 && !p.is_locked)
    }

    /// A swap PTE naming the slot went away (munmap, exit, or a fault that mapped
    /// the page); `self.refs` is the count after its reference was dropped.
    pub fn on_swap_pte_dropped(self) -> CacheVerdict {
        #[cfg(test)]
        if crate::fault::tests::injected(crate::fault::tests::InjectedBug::SwapCacheKeepsOrphans) {
            return CacheVerdict::Keep;
        }
        if self.refs == 1 && self.has_idle_page() { CacheVerdict::Drop } else { CacheVerdict::Keep }
    }

    /// The cached page's last PTE went away (its map count is now 0).
    ///
    /// It may leave unless it holds data (DIRTY) that a swap PTE still needs: then
    /// it stays cached for an eviction to write. A page under I/O is left to the
    /// path that locked it.
    pub fn on_last_unmap(self) -> CacheVerdict {
        let Some(page) = self.page else { return CacheVerdict::Keep };
        if page.map_count != 0 || page.is_locked {
            return CacheVerdict::Keep;
        }
        if self.refs == 1 || !page.is_dirty { CacheVerdict::Drop } else { CacheVerdict::Keep }
    }

    /// An eviction finished with the page in its slot (written, or clean); the
    /// evictor's lock is released. It leaves if no PTE mapped it again meanwhile.
    pub fn on_eviction_done(self) -> CacheVerdict {
        match self.page {
            Some(page) if page.map_count == 0 => CacheVerdict::Drop,
            _ => CacheVerdict::Keep,
        }
    }

    /// An eviction (or a write-ahead clean) stopped before any I/O, every PTE put
    /// back; the evictor's lock is released. If nobody else names the slot, the
    /// page leaves when the slot never received it (DIRTY), or when no PTE maps it
    /// any more: its process went away while the page was locked (with several
    /// CPUs, an exit on one while the cleaner on another held the page), and
    /// [`on_swap_pte_dropped`](Self::on_swap_pte_dropped) had to leave it.
    pub fn on_eviction_cancelled(self) -> CacheVerdict {
        match self.page {
            Some(page) if self.refs == 1 && (page.is_dirty || page.map_count == 0) => CacheVerdict::Drop,
            _ => CacheVerdict::Keep,
        }
    }

    /// The write of the evicted page to this slot failed (every PTE was put back);
    /// `is_retired`: the slot is on the retired list already.
    pub fn on_write_failed(self, is_retired: bool) -> WriteFailVerdict {
        if self.refs == 1 && !is_retired { WriteFailVerdict::RetireSlot } else { WriteFailVerdict::KeepCached }
    }

    /// A readahead read of this slot finished (`is_read_ok`: it worked). The page
    /// stays only if the read worked and a swap PTE still names the slot.
    pub fn on_readahead_done(self, is_read_ok: bool) -> CacheVerdict {
        if is_read_ok && self.refs > 1 { CacheVerdict::Keep } else { CacheVerdict::Drop }
    }

    /// Returns true if the swap PTE faulting on this slot is the page's only user:
    /// no PTE maps the cached frame, and the slot's references are that PTE's and
    /// the cache's. Only then may a private writable mapping get it writable.
    pub fn is_only_user_of_swap_pte(self) -> bool {
        self.refs == 2 && self.page.is_some_and(|p| p.map_count == 0)
    }

    /// Returns the state after `verdict` was applied: a dropped page takes its slot
    /// reference with it.
    pub fn after(self, verdict: CacheVerdict) -> SlotState {
        match verdict {
            CacheVerdict::Keep => self,
            CacheVerdict::Drop => SlotState { refs: self.refs - 1, page: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE_CLEAN: CachedPage = CachedPage { map_count: 0, is_locked: false, is_dirty: false };
    const IDLE_DIRTY: CachedPage = CachedPage { map_count: 0, is_locked: false, is_dirty: true };
    const LOCKED: CachedPage = CachedPage { map_count: 0, is_locked: true, is_dirty: false };
    const MAPPED: CachedPage = CachedPage { map_count: 1, is_locked: false, is_dirty: false };

    #[test]
    fn the_last_swap_pte_going_away_drops_an_idle_cached_page_only() {
        assert_eq!(SlotState::new(1, Some(IDLE_CLEAN)).on_swap_pte_dropped(), CacheVerdict::Drop);
        assert_eq!(SlotState::new(1, Some(IDLE_DIRTY)).on_swap_pte_dropped(), CacheVerdict::Drop);
        assert_eq!(SlotState::new(2, Some(IDLE_CLEAN)).on_swap_pte_dropped(), CacheVerdict::Keep);
        assert_eq!(SlotState::new(1, Some(LOCKED)).on_swap_pte_dropped(), CacheVerdict::Keep);
        assert_eq!(SlotState::new(1, Some(MAPPED)).on_swap_pte_dropped(), CacheVerdict::Keep);
        assert_eq!(SlotState::new(1, None).on_swap_pte_dropped(), CacheVerdict::Keep);
    }

    #[test]
    fn an_unmapped_dirty_page_stays_while_a_swap_pte_needs_it() {
        assert_eq!(SlotState::new(2, Some(IDLE_DIRTY)).on_last_unmap(), CacheVerdict::Keep);
        assert_eq!(SlotState::new(2, Some(IDLE_CLEAN)).on_last_unmap(), CacheVerdict::Drop);
        assert_eq!(SlotState::new(1, Some(IDLE_DIRTY)).on_last_unmap(), CacheVerdict::Drop);
        assert_eq!(SlotState::new(1, Some(LOCKED)).on_last_unmap(), CacheVerdict::Keep);
    }

    #[test]
    fn eviction_outcomes_follow_the_map_count_and_the_slot_refs() {
        assert_eq!(SlotState::new(3, Some(IDLE_CLEAN)).on_eviction_done(), CacheVerdict::Drop);
        assert_eq!(SlotState::new(3, Some(MAPPED)).on_eviction_done(), CacheVerdict::Keep);
        assert_eq!(SlotState::new(1, Some(MAPPED)).on_eviction_cancelled(), CacheVerdict::Keep);
        // Its process exited while the page was locked: nobody maps or names it.
        assert_eq!(SlotState::new(1, Some(IDLE_CLEAN)).on_eviction_cancelled(), CacheVerdict::Drop);
        assert_eq!(SlotState::new(2, Some(IDLE_CLEAN)).on_eviction_cancelled(), CacheVerdict::Keep);
        let dirty_mapped = CachedPage { is_dirty: true, ..MAPPED };
        assert_eq!(SlotState::new(1, Some(dirty_mapped)).on_eviction_cancelled(), CacheVerdict::Drop);
        assert_eq!(SlotState::new(1, Some(dirty_mapped)).on_write_failed(false), WriteFailVerdict::RetireSlot);
        assert_eq!(SlotState::new(1, Some(dirty_mapped)).on_write_failed(true), WriteFailVerdict::KeepCached);
        assert_eq!(SlotState::new(2, Some(dirty_mapped)).on_write_failed(false), WriteFailVerdict::KeepCached);
    }

    #[test]
    fn a_swap_in_is_writable_only_for_the_pages_one_user() {
        assert!(SlotState::new(2, Some(IDLE_CLEAN)).is_only_user_of_swap_pte());
        assert!(!SlotState::new(3, Some(IDLE_CLEAN)).is_only_user_of_swap_pte());
        assert!(!SlotState::new(2, Some(MAPPED)).is_only_user_of_swap_pte());
        assert_eq!(SlotState::new(2, Some(IDLE_CLEAN)).after(CacheVerdict::Drop), SlotState::new(1, None));
        assert!(SlotState::new(2, None).on_readahead_done(true) == CacheVerdict::Keep);
        assert!(SlotState::new(1, None).on_readahead_done(true) == CacheVerdict::Drop);
        assert!(SlotState::new(2, None).on_readahead_done(false) == CacheVerdict::Drop);
    }
}
