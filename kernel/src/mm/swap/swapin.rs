//! Swap-in: the fault on a swap entry (`do_swap_fault`) and the slot read behind it.
//!
//! A swap fault happens under the faulting space's lock, and no I/O may happen
//! under a spinlock, so it is resolved in two steps, the way Linux drops
//! `mmap_lock` around I/O and retries:
//!
//! ```text
//!  handle_page_fault (space locked)             the fault path (proc/fault.rs, no lock held)
//!   PTE = swap entry S
//!   └─ do_swap_fault:
//!       S in the swap cache, frame unlocked -> map it: done (a swap-cache hit, or the
//!                                              end of a major fault)
//!       S in the cache, frame LOCKED        -> PageLocked  ───> yield, retry
//!       S not in the cache                  -> NeedsSwapIn ───> read_into_cache(S):
//!                                                                 new frame, LOCKED, in the cache;
//!                                                                 read slot S; unlock
//!                                                               retry: now a cache hit
//! ```
//! The frame stays in the swap cache after it is mapped (see `swap.rs`), so other
//! PTEs naming S (COW children) map the same frame without reading again, and a
//! page that is only read can later be dropped without a write.
//!
//! Mapping a cached page: a private writable VMA gets a writable PTE only if this
//! PTE is the page's only user (no other swap PTE names S, no other PTE maps the
//! frame); otherwise it is mapped read-only and copy-on-write, exactly as after
//! `fork`. A shared VMA always maps it writable. The PTE starts with its Dirty bit
//! clear, so a later eviction can tell whether the slot is still a good copy.
//!
//! Lock state: [`do_swap_fault`] enters and returns with the space lock held and
//! does no I/O; [`read_into_cache`] is called with no lock held.
#![deny(unsafe_code)]

use super::{SWAP, SwapEntry, read_slot};
use crate::drivers::virtio_blk::BlkError;
use crate::mm::addr_space::{AddressSpace, Vma, VmProt, leaf_flags_for};
use crate::mm::fault::{FaultError, FaultOutcome};
use crate::mm::frame::{self, FrameFlags, FrameState};
use crate::mm::paging::{Pte, PteFlags};
use crate::mm::vmstat::{self, SwapEvent};
use crate::mm::{Order, Page, rmap};

/// Resolves a fault on a PTE holding `entry`, if the page is in the swap cache.
///
/// `was_read`: the caller has just read this entry's slot (the fault is major).
pub fn do_swap_fault(
    space: &mut AddressSpace,
    vma: &Vma,
    page: Page,
    entry: SwapEntry,
    was_read: bool,
) -> Result<FaultOutcome, FaultError> {
    let Some(frame) = super::lookup(entry) else {
        return Err(FaultError::NeedsSwapIn(entry));
    };
    let (is_locked, map_count) = frame::with_desc(frame, |d| (d.has_flags(FrameFlags::LOCKED), d.map_count()));
    if is_locked {
        return Err(FaultError::PageLocked);
    }
    let is_exclusive = map_count == 0 && super::slot_refs(entry.slot()) == 2; // our PTE + the cache
    let mut flags = leaf_flags_for(vma.prot);
    if vma.prot.contains(VmProt::WRITE) && !vma.flags.is_shared() && !is_exclusive {
        flags = (flags - PteFlags::WRITABLE) | PteFlags::COW;
    }
    let old = space.replace_pte(page, Pte::new(frame, flags));
    debug_assert_eq!(old, Pte::swap(entry), "do_swap_fault: the PTE changed under the lock");
    rmap::map(frame, space.family_page(page));
    super::put_swap_pte(entry);
    space.stats.rss_pages += 1;
    space.stats.swap_pages -= 1;
    space.stats.swap_in_pages += 1;
    if was_read {
        Ok(FaultOutcome::SwapIn)
    } else {
        vmstat::count(SwapEvent::CacheHit);
        Ok(FaultOutcome::SwapCacheHit)
    }
}

/// Why a slot could not be read into the swap cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapInError {
    /// No frame to read into.
    NoMemory,
    /// The disk failed the read.
    Io(BlkError),
}

/// Reads the slot of `entry` into a new frame in the swap cache. Call with no lock
/// held. Does nothing if another path put the page in the cache first.
///
/// On a read error the frame is dropped again and nothing changes: the swap PTEs
/// still name the slot, and the caller decides the faulting process's fate.
pub fn read_into_cache(entry: SwapEntry) -> Result<(), SwapInError> {
    if super::lookup(entry).is_some() {
        return Ok(());
    }
    let frame = frame::alloc(Order(0), FrameState::User).map_err(|_| SwapInError::NoMemory)?;
    {
        let mut swap = SWAP.lock();
        let state = swap.as_mut().expect("read_into_cache: a swap PTE while swap is off");
        let slot = entry.slot() as u32;
        if state.cache.contains_key(&slot) {
            drop(swap);
            rmap::free_user_frame(frame);
            return Ok(());
        }
        if let Err(e) = state.map.dup(mm_core::swap_map::SwapSlot::from_index(slot)) {
            panic!("read_into_cache: {entry:?} names a slot that is not in use: {e:?}");
        }
        state.cache_insert(slot, frame); // the allocation's reference is the cache's
        frame::with_desc(frame, |d| d.insert_flags(FrameFlags::LOCKED));
    }
    let result = read_slot(entry, frame);
    let mut swap = SWAP.lock();
    let state = swap.as_mut().expect("read_into_cache: swap went off during a read");
    frame::with_desc(frame, |d| d.remove_flags(FrameFlags::LOCKED));
    match result {
        Ok(()) => {
            drop(swap);
            vmstat::count(SwapEvent::SwapIn);
            crate::mm::reclaim::track(frame);
            Ok(())
        }
        Err(e) => {
            vmstat::count(SwapEvent::ReadError);
            let is_freed = state.cache_remove(entry.slot() as u32, frame);
            debug_assert!(is_freed, "read_into_cache: a frame under I/O was mapped");
            Err(SwapInError::Io(e))
        }
    }
}
