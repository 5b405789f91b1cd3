//! The reverse map: for a user frame, every PTE that maps it; and the registry of
//! address spaces those PTEs live in.
//!
//! Page tables answer "page -> frame". Eviction needs the other direction: to take a
//! frame away it must find and rewrite *every* PTE that maps it, in every process
//! (after `fork` one frame may be mapped by dozens). So each mapping of a user frame
//! is also recorded here, as a key in one ordered set:
//!
//! ```text
//!   RMAP: BTreeSet<(pfn, space id, virtual page number)>
//!         (0x1a2b, 3, 0x7effffff8)   <- frame 0x1a2b mapped by space 3 at 0x7effffff8000
//!         (0x1a2b, 4, 0x7effffff8)   <- ... and by its fork child, space 4
//!         (0x1a2c, 3, 0x400)
//!   mappings(frame) = the range (pfn, 0, 0)..=(pfn, MAX, MAX): O(log n + k)
//! ```
//! A space id names an [`AddressSpace`] through [`SPACES`], a registry of weak
//! references: a space is registered when created ([`AddressSpace::new`]) and
//! unregistered when dropped, after its last PTE is gone, so an rmap entry always
//! names a live space.
//!
//! The frame descriptor's counts follow the same events: `map_count` is the number
//! of rmap entries of the frame, and `refcount` is `map_count` plus one while the
//! frame is in the swap cache. Every place that sets or clears a user PTE calls
//! [`map_new`] / [`map`] / [`unmap`] (fault install, fork, the COW copy, munmap,
//! madvise, exit, swap-in and swap-out); `check::check_consistency` verifies it all
//! against the page tables. The shared zero frame is never recorded.
//!
//! Lock order: an address-space lock, then [`SPACES`] or [`RMAP`] (never both),
//! then the frame allocator.
#![deny(unsafe_code)]

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use super::addr_space::AddressSpace;
use super::frame::{self, FrameFlags};
use super::{Frame, Page, VirtAddr};
use crate::sync::IrqMutex;

/// Names an address space in the rmap (never reused).
pub type SpaceId = u64;

/// A shared, locked address space, as tasks hold it.
pub type SpaceRef = Arc<IrqMutex<AddressSpace>>;

/// Every live address space, by id.
static SPACES: IrqMutex<BTreeMap<SpaceId, Weak<IrqMutex<AddressSpace>>>> = IrqMutex::new(BTreeMap::new());
/// Every mapping of a user frame: (pfn, space id, virtual page number).
static RMAP: IrqMutex<BTreeSet<(u64, SpaceId, u64)>> = IrqMutex::new(BTreeSet::new());
static NEXT_SPACE_ID: AtomicU64 = AtomicU64::new(1);

/// Returns a fresh space id.
pub(super) fn new_space_id() -> SpaceId {
    NEXT_SPACE_ID.fetch_add(1, Ordering::Relaxed)
}

/// Adds `space` to the registry under its id.
pub(super) fn register(id: SpaceId, space: &SpaceRef) {
    SPACES.lock().insert(id, Arc::downgrade(space));
}

/// Removes space `id` from the registry (it is being dropped).
pub(super) fn unregister(id: SpaceId) {
    SPACES.lock().remove(&id);
}

/// Returns the address space `id`, if it is still alive.
pub fn space(id: SpaceId) -> Option<SpaceRef> {
    SPACES.lock().get(&id).and_then(Weak::upgrade)
}

/// Returns every live address space.
pub fn all_spaces() -> Vec<(SpaceId, SpaceRef)> {
    let spaces = SPACES.lock();
    spaces.iter().filter_map(|(&id, weak)| Some((id, weak.upgrade()?))).collect()
}

fn key(frame: Frame, id: SpaceId, page: Page) -> (u64, SpaceId, u64) {
    (frame.pfn(), id, page.start_address().as_u64() / super::PAGE_SIZE)
}

/// Records the first mapping of `frame`, allocated just now for `page` of space `id`:
/// the allocation's reference becomes the mapping's. The frame is now resident: the
/// replacement policy starts tracking it.
pub fn map_new(frame: Frame, id: SpaceId, page: Page) {
    RMAP.lock().insert(key(frame, id, page));
    frame::map_new_user_page(frame);
    super::reclaim::track(frame);
}

/// Records one more mapping of `frame` (fork, swap-in): a reference for the PTE.
pub fn map(frame: Frame, id: SpaceId, page: Page) {
    let is_new = RMAP.lock().insert(key(frame, id, page));
    assert!(is_new, "rmap::map: {frame:?} already mapped by space {id} at {page:?}");
    frame::get_user_page(frame);
}

/// Forgets the mapping of `frame` at `page` of space `id` and drops its reference;
/// frees the frame if that was the last. `is_dirty`: the PTE had its Dirty bit.
/// Returns true if the frame was freed.
///
/// A frame in the swap cache that loses its last mapping is handed to
/// `swap::release_unmapped`, which drops it from the cache when nothing needs it
/// there (see the swap-cache rules in `swap.rs`); a LOCKED frame is left alone: the
/// I/O path that locked it decides.
pub fn unmap(frame: Frame, id: SpaceId, page: Page, is_dirty: bool) -> bool {
    let was_there = RMAP.lock().remove(&key(frame, id, page));
    assert!(was_there, "rmap::unmap: {frame:?} not mapped by space {id} at {page:?}");
    if frame::put_user_page(frame, is_dirty) == 0 {
        free_user_frame(frame);
        return true;
    }
    let (map_count, flags) = frame::with_desc(frame, |d| (d.map_count(), d.flags()));
    if map_count == 0 && flags.contains(FrameFlags::SWAP_CACHE) && !flags.contains(FrameFlags::LOCKED) {
        return super::swap::release_unmapped(frame);
    }
    false
}

/// Returns a user frame whose last reference is gone to the allocator.
pub(super) fn free_user_frame(frame: Frame) {
    super::reclaim::untrack(frame);
    if let Err(e) = frame::free(frame, super::Order(0)) {
        panic!("rmap::free_user_frame: {frame:?}: {e:?}");
    }
}

/// Returns true if exactly one PTE holds `frame` and nothing else shares the page,
/// so a write may go to it in place (no copy-on-write copy is needed).
///
/// A frame in the swap cache is shared with every swap PTE still naming its slot
/// (they will map this frame, or read the slot): it is exclusive only if the cache
/// holds the slot's only reference.
pub fn is_exclusive(frame: Frame) -> bool {
    let (map_count, refcount, flags, slot) = frame::with_desc(frame, |d| (d.map_count(), d.refcount(), d.flags(), d.private()));
    if map_count != 1 {
        return false;
    }
    match flags.contains(FrameFlags::SWAP_CACHE) {
        false => refcount == 1,
        true => refcount == 2 && super::swap::slot_refs(slot) == 1,
    }
}

/// Returns every (space, page) that maps `frame`.
pub fn mappings(frame: Frame) -> Vec<(SpaceId, Page)> {
    let pfn = frame.pfn();
    RMAP.lock()
        .range((pfn, 0, 0)..=(pfn, u64::MAX, u64::MAX))
        .map(|&(_, id, vpn)| (id, Page::containing_address(VirtAddr::new(vpn * super::PAGE_SIZE))))
        .collect()
}

/// Returns the number of mappings recorded, all frames together.
pub fn nr_mappings() -> usize {
    RMAP.lock().len()
}

/// Returns a copy of every recorded mapping, (pfn, space id, virtual page number),
/// for consistency checks (`check.rs`).
pub fn snapshot() -> BTreeSet<(u64, SpaceId, u64)> {
    RMAP.lock().clone()
}

/// Returns the rmap key of a mapping, as [`snapshot`] lists it.
pub fn key_of(frame: Frame, id: SpaceId, page: Page) -> (u64, SpaceId, u64) {
    key(frame, id, page)
}
