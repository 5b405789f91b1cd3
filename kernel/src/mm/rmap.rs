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
//! madvise, exit, swap-in and swap-out); [`check_consistency`] verifies it all
//! against the page tables. The shared zero frame is never recorded.
//!
//! Lock order: an address-space lock, then [`SPACES`] or [`RMAP`] (never both),
//! then the frame allocator.
#![deny(unsafe_code)]

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use super::addr_space::AddressSpace;
use super::frame::{self, FrameFlags, FrameState};
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
/// the allocation's reference becomes the mapping's.
pub fn map_new(frame: Frame, id: SpaceId, page: Page) {
    RMAP.lock().insert(key(frame, id, page));
    frame::map_new_user_page(frame);
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
pub fn unmap(frame: Frame, id: SpaceId, page: Page, is_dirty: bool) -> bool {
    let was_there = RMAP.lock().remove(&key(frame, id, page));
    assert!(was_there, "rmap::unmap: {frame:?} not mapped by space {id} at {page:?}");
    let _ = is_dirty; // used once frames can outlive their PTEs (swap cache)
    frame::put_user_page(frame)
}

/// Returns true if exactly one PTE holds `frame` and nothing else does, so a write
/// may go to it in place (no copy-on-write copy is needed).
pub fn is_exclusive(frame: Frame) -> bool {
    frame::with_desc(frame, |d| d.map_count() == 1 && d.refcount() == 1)
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

/// What [`check_consistency`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Registered address spaces.
    pub nr_spaces: usize,
    /// Present user PTEs (the zero page not counted).
    pub nr_present: u64,
    /// Swap PTEs.
    pub nr_swap_ptes: u64,
    /// Distinct user frames mapped.
    pub nr_frames: u64,
}

/// Walks every registered space's page table and checks the rmap and the frame
/// counts against it (O(mapped pages); for tests and debugging). Call with no
/// address-space lock held.
///
/// Checks: each present user PTE has its rmap entry and maps a User frame; the rmap
/// has no other entry; each frame's `map_count` equals its rmap entries; each
/// space's RSS and swap counters equal what its table holds.
pub fn check_consistency() -> Result<Census, String> {
    let zero = super::fault::zero_frame();
    let mut census = Census::default();
    let mut seen: BTreeSet<(u64, SpaceId, u64)> = BTreeSet::new();
    let spaces = all_spaces();
    census.nr_spaces = spaces.len();
    for (id, space) in spaces {
        let space = space.try_lock().ok_or_else(|| format!("space {id} is locked"))?;
        let mut nr_present = 0;
        let mut nr_swap = 0;
        let mut error = None;
        space.for_each_user_leaf(|page, pte| {
            if !pte.is_present() {
                nr_swap += 1;
                return;
            }
            if pte.frame() == zero {
                return;
            }
            nr_present += 1;
            seen.insert(key(pte.frame(), id, page));
            let state = frame::with_desc(pte.frame(), |d| d.state());
            if state != FrameState::User && error.is_none() {
                error = Some(format!("space {id} {page:?} maps {:?} in state {state:?}", pte.frame()));
            }
        });
        if let Some(e) = error {
            return Err(e);
        }
        if nr_present != space.stats.rss_pages || nr_swap != space.stats.swap_pages {
            return Err(format!(
                "space {id}: table has {nr_present} present + {nr_swap} swap PTEs, counters say {} + {}",
                space.stats.rss_pages, space.stats.swap_pages
            ));
        }
        census.nr_present += nr_present;
        census.nr_swap_ptes += nr_swap;
    }
    check_rmap_against(&seen, &mut census)?;
    Ok(census)
}

/// Compares the rmap with the mappings `seen` in the page tables, and each frame's
/// map count with its number of mappings.
fn check_rmap_against(seen: &BTreeSet<(u64, SpaceId, u64)>, census: &mut Census) -> Result<(), String> {
    let rmap: BTreeSet<(u64, SpaceId, u64)> = RMAP.lock().clone();
    if let Some(extra) = rmap.iter().find(|k| !seen.contains(k)) {
        return Err(format!("rmap entry {extra:x?} has no PTE"));
    }
    if let Some(missing) = seen.iter().find(|k| !rmap.contains(k)) {
        return Err(format!("PTE {missing:x?} has no rmap entry"));
    }
    let mut per_frame: BTreeMap<u64, u32> = BTreeMap::new();
    for &(pfn, _, _) in &rmap {
        *per_frame.entry(pfn).or_default() += 1;
    }
    census.nr_frames = per_frame.len() as u64;
    for (pfn, count) in per_frame {
        let frame = Frame::from_pfn(pfn);
        let (map_count, refcount, cache_ref) = frame::with_desc(frame, |d| {
            (d.map_count(), d.refcount(), u32::from(d.has_flags(FrameFlags::SWAP_CACHE)))
        });
        if map_count != count || refcount != count + cache_ref {
            return Err(format!(
                "{frame:?}: {count} mappings, map_count {map_count}, refcount {refcount} (swap cache refs {cache_ref})"
            ));
        }
    }
    Ok(())
}
