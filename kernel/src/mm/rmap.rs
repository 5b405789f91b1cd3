//! The reverse map: for a user frame, every PTE that maps it; and the registry of
//! address spaces, grouped in fork families.
//!
//! Page tables answer "page -> frame". Eviction needs the other direction: to take a
//! frame away it must find and rewrite *every* PTE that maps it, in every process
//! (after `fork` one frame may be mapped by dozens). Linux's `anon_vma` answer,
//! which this follows: a private anonymous page keeps its virtual address in every
//! process that inherits it (there is no `mremap`), so a frame only has to name
//! **which fork family** and **which virtual page** ([`FamilyPage`], packed into its
//! frame descriptor); the family lists its address spaces:
//!
//! ```text
//!  FAMILIES (id -> members)                 frame descriptors (family_page)
//!   family 1: [space 3, space 4, space 5]    pfn 0x1a2b: family 1, page 0x7effffff8
//!   family 2: [space 6]                      pfn 0x1a2c: family 1, page 0x7effffff8 (4's COW copy)
//!                                            pfn 0x2000: family 2, page 0x400
//!  mappings(0x1a2b) = for each member of family 1, the PTE at 0x7effffff8000,
//!                     kept if it maps 0x1a2b:  [(3, page), (5, page)]  (4 has its copy)
//! ```
//! - A space joins a family at birth: a new one at spawn ([`AddressSpace::new`]),
//!   its parent's at fork; it leaves when dropped, after its last PTE is gone. A
//!   family dies with its last member and its id is reused.
//! - A frame names its place when its map count goes from 0 to 1 and forgets it when
//!   the count is back at 0 ([`map_new`], [`map`], [`unmap`]). Every PTE that maps it
//!   is at that page in a member of that family: fork copies PTEs at the same address
//!   into a member, a swap entry is shared only by fork, and a MAP_SHARED page is
//!   faulted in before fork (`cow::populate_shared`). So a frame names only a live
//!   family.
//! - So `fork` does no rmap work per page beyond the counts, and map/unmap only
//!   change counts; the cost moves to the reader, [`candidates`]: one look at the PTE
//!   at that page in each member, which is reclaim's business, not the fault path's.
//!
//! The frame descriptor's counts follow the same events: `map_count` is the number
//! of PTEs that map the frame, and `refcount` is `map_count` plus one while the
//! frame is in the swap cache. Every place that sets or clears a user PTE calls
//! [`map_new`] / [`map`] / [`unmap`] (fault install, fork, the COW copy, munmap,
//! madvise, exit, swap-in and swap-out); `check::check_consistency` verifies it all
//! against the page tables. The shared zero frame is never recorded.
//!
//! Locks: [`FAMILIES`] (see the lock order in [`crate::mm`]). A reader of the rmap holds no space lock while it asks for [`candidates`], then
//! locks each member with `try_lock` (the caller may hold one of them itself).
#![deny(unsafe_code)]

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

pub use mm_core::fork_family::{FamilyId, FamilyPage};
use mm_core::fault::FrameUse;
use mm_core::fork_family::FamilyTable;

use super::addr_space::AddressSpace;
use super::frame::{self, FrameFlags};
use super::paging::Pte;
use super::{Frame, Page};
use crate::sync::IrqMutex;

/// Names an address space (never reused).
pub type SpaceId = u64;

/// A shared, locked address space, as tasks hold it.
pub type SpaceRef = Arc<IrqMutex<AddressSpace>>;

/// A member of a family: the space's id, and the space (a weak reference: the
/// registry does not keep a space alive).
type Member = (SpaceId, Weak<IrqMutex<AddressSpace>>);

/// Every live address space, by fork family.
static FAMILIES: IrqMutex<FamilyTable<Member>> = IrqMutex::new_ranked(crate::sync::LockRank::RmapFamilies, FamilyTable::new());
static NEXT_SPACE_ID: AtomicU64 = AtomicU64::new(1);

/// Returns a fresh space id.
pub(super) fn new_space_id() -> SpaceId {
    NEXT_SPACE_ID.fetch_add(1, Ordering::Relaxed)
}

/// Registers space `id` (being built behind `space`) in `family`, or in a new
/// family if `None`; returns its family.
///
/// # Panics
/// If `FamilyId::MAX` families are alive (each holds a page table: impossible
/// below 1 TiB of RAM).
pub(super) fn register(id: SpaceId, space: Weak<IrqMutex<AddressSpace>>, family: Option<FamilyId>) -> FamilyId {
    let mut families = FAMILIES.lock();
    match family {
        Some(family) => {
            families.join(family, (id, space));
            family
        }
        None => families.create((id, space)).expect("rmap::register: out of family ids"),
    }
}

/// Removes space `id` from `family` (it is being dropped, its PTEs are gone).
pub(super) fn unregister(family: FamilyId, id: SpaceId) {
    FAMILIES.lock().leave(family, |&(member, _)| member == id);
}

/// A live registered address space.
pub struct Registered {
    /// Its family.
    pub family: FamilyId,
    /// Its id.
    pub id: SpaceId,
    /// The space.
    pub space: SpaceRef,
}

/// Returns every live address space, family by family.
pub fn all_spaces() -> Vec<Registered> {
    let families = FAMILIES.lock();
    let mut all = Vec::new();
    for (family, members) in families.iter() {
        let live = members.iter().filter_map(|(id, weak)| Some(Registered { family, id: *id, space: weak.upgrade()? }));
        all.extend(live);
    }
    all
}

/// Returns the number of live fork families.
pub fn nr_families() -> usize {
    FAMILIES.lock().nr_families()
}

/// Checks the family table's own invariants (free ids are exactly the dead
/// families); panics if not.
pub fn check_families() {
    FAMILIES.lock().check_invariants();
}

/// Records the first mapping of `frame`, allocated just now for the page `at`: the
/// allocation's reference becomes the mapping's. The frame is now resident: the
/// replacement policy starts tracking it.
pub fn map_new(frame: Frame, at: FamilyPage) {
    super::reclaim::track_new(frame, at); // maps it too, under the policy lock
}

/// Records one more mapping of `frame`, at `at` (swap-in, the undo of an
/// eviction): a reference for the PTE. A frame mapped nowhere (in the swap cache)
/// takes `at` as its place.
///
/// A frame already mapped at another place becomes a merged page (`ksm.rs`): that
/// happens only to a merged page that came back from swap.
pub fn map(frame: Frame, at: FamilyPage) {
    super::ksm::map_place(frame, at);
}

/// [`map`] if `frame` is still the swap cache's page for `slot` and not LOCKED for
/// I/O, both checked under the frame lock in the hold that adds the mapping;
/// returns false, with nothing done, otherwise. A swap fault maps a swap-cache page
/// so: its lookup holds no reference, and on several CPUs an eviction or page
/// buffering may lock the frame after it, or reclaim may drop it from the cache,
/// free it and hand it to another process (whose page this fault would then map:
/// `fuzz` with `--smp 2`, "FrameDesc::remove_mapping: unmapped at A, mapped 1 times
/// at B"). While the frame is in the cache for `slot`, the cache's reference keeps
/// it allocated, and it leaves the cache only under the frame lock.
pub fn map_if_still_cached(frame: Frame, slot: u32, at: FamilyPage) -> bool {
    super::ksm::map_place_if(frame, at, |d| {
        d.has_flags(FrameFlags::SWAP_CACHE) && d.private() == slot && !d.has_flags(FrameFlags::LOCKED)
    })
}

/// Records one more mapping of each frame in `mappings`, as [`map`] does, taking
/// the frame lock once for all of them (fork's batches).
pub fn map_all(mappings: &[(Frame, FamilyPage)]) {
    frame::add_mapping_refs(mappings);
}

/// Forgets the mapping of `frame` at `at` and drops its reference; frees the frame
/// if that was the last. `is_dirty`: the PTE had its Dirty bit (a page-cache page
/// then becomes dirty in its cache). A page-cache page (`FILE`) has no place: `at`
/// is ignored for it. Returns true if the
/// frame was freed.
///
/// A frame in the swap cache that loses its last mapping is handed to
/// `swap::release_unmapped`, which drops it from the cache when nothing needs it
/// there (see the swap-cache rules in `swap.rs`); a LOCKED frame is left alone: the
/// I/O path that locked it decides.
pub fn unmap(frame: Frame, at: FamilyPage, is_dirty: bool) -> bool {
    let (refcount, map_count, flags, owner) = frame::drop_mapping_ref_and_owner(frame, at, is_dirty);
    if let Some((cache_id, index)) = owner {
        // A shared file page written through this PTE: its cache must write it back.
        super::file_rmap::note_dirty_pte(cache_id, index);
    }
    if refcount == 0 {
        free_user_frame(frame);
        return true;
    }
    if map_count == 0 && flags.contains(FrameFlags::SWAP_CACHE) && !flags.contains(FrameFlags::LOCKED) {
        return super::swap::release_unmapped(frame);
    }
    false
}

/// Mappings [`unmap_batch`] handles per hold of each lock.
pub const UNMAP_BATCH: usize = frame::FREE_BATCH;

/// Does what [`unmap`] does for each `(frame, place, is_dirty)` of `unmapped`
/// (munmap and exit: `addr_space/gather.rs`), in batches of [`UNMAP_BATCH`], with
/// each lock taken once a batch rather than once a page: the frame lock to drop
/// the references, the policy lock to untrack the frames whose last reference
/// went, the frame lock again to free them. A merged page, a huge page's head, a
/// swap-cache page and a dirty page-cache page take the one-page path after the
/// first step, as in [`unmap`].
pub fn unmap_batch(unmapped: &[(Frame, FamilyPage, bool)]) {
    for chunk in unmapped.chunks(UNMAP_BATCH) {
        let mut dropped = [frame::DroppedRef::default(); UNMAP_BATCH];
        frame::drop_mapping_refs(chunk, &mut dropped);
        let mut to_free = [Frame::from_pfn(0); UNMAP_BATCH];
        let mut nr_free = 0;
        for (&(frame, _, _), d) in chunk.iter().zip(&dropped) {
            if let Some((cache_id, index)) = d.dirty_file_owner {
                super::file_rmap::note_dirty_pte(cache_id, index);
            }
            if d.refcount == 0 && !d.is_special {
                to_free[nr_free] = frame;
                nr_free += 1;
            } else if d.refcount == 0 {
                free_user_frame(frame);
            } else if d.map_count == 0 && d.flags.contains(FrameFlags::SWAP_CACHE) && !d.flags.contains(FrameFlags::LOCKED) {
                super::swap::release_unmapped(frame);
            }
        }
        let to_free = &to_free[..nr_free];
        super::reclaim::untrack_all(to_free);
        if let Err(e) = frame::free_unreferenced_user_frames(to_free) {
            panic!("rmap::unmap_batch: {e}");
        }
    }
}

/// Returns a user frame whose last reference is gone to the allocator.
pub(super) fn free_user_frame(frame: Frame) {
    let (is_huge, is_ksm) = frame::with_desc(frame, |d| (d.is_compound_head(), d.is_ksm()));
    if is_ksm {
        super::ksm::forget(frame); // before the frame can be reused
    }
    if is_huge {
        // A transparent huge page (never on the policy's ring): freed whole.
        if let Err(e) = frame::free_unreferenced_huge_block(frame) {
            panic!("rmap::free_user_frame: {e}");
        }
        return;
    }
    super::reclaim::untrack(frame);
    if let Err(e) = frame::free_unreferenced_user_frame(frame) {
        panic!("rmap::free_user_frame: {e}");
    }
}

/// Returns who uses `frame`: its map count and refcount, and its slot's share
/// count if it is in the swap cache (for `mm_core::fault::FrameUse::is_exclusive`).
pub fn frame_use(frame: Frame) -> FrameUse {
    let (map_count, refcount, flags, slot, is_ksm) =
        frame::with_desc(frame, |d| (d.map_count(), d.refcount(), d.flags(), d.private(), d.is_ksm()));
    let slot_refs = flags.contains(FrameFlags::SWAP_CACHE).then(|| super::swap::slot_refs(u64::from(slot)));
    // A merged page is never written in place, even by its last mapper (as in
    // Linux): the stable index may hand it to a new mapper at any time. Counting
    // the index as one more holder makes every write copy it. A LOCKED frame
    // carries its I/O's reference (`frame::LockedPage`, page-cache write-back);
    // the I/O (the cleaner's copy of a mapped page, say) shares nothing with a
    // writer, so that reference is not counted.
    let lock_ref = u32::from(flags.contains(FrameFlags::LOCKED));
    FrameUse { map_count, refcount: refcount - lock_ref + u32::from(is_ksm), slot_refs }
}

/// Returns true if exactly one PTE holds `frame` and nothing else shares the page,
/// so a write may go to it in place (no copy-on-write copy is needed): the rule
/// is `mm_core::fault::FrameUse::is_exclusive`.
pub fn is_exclusive(frame: Frame) -> bool {
    frame_use(frame).is_exclusive()
}

/// A place that may hold a PTE mapping a frame: a live member of the frame's family,
/// at the frame's page. Whether it does, only that space's page table can say
/// (its PTE may name its own COW copy, a swap entry, or nothing).
pub struct Candidate {
    /// The space's id.
    pub id: SpaceId,
    /// The space.
    pub space: SpaceRef,
    /// The frame's page.
    pub page: Page,
}

/// Returns every place that may map `frame`: each live space of its family, at its
/// page; none if no PTE maps it. Call with no space lock held; check each candidate
/// under its space's lock with [`pte_mapping`].
///
/// A merged page (`ksm.rs`) has several places: every live space of each place's
/// family, at that place's page.
pub fn candidates(frame: Frame) -> Vec<Candidate> {
    let families = FAMILIES.lock();
    let (place, is_ksm) = frame::with_desc(frame, |d| (d.family_page(), d.is_ksm()));
    let places = match place {
        Some(at) => alloc::vec![at],
        None if is_ksm => super::ksm::places(frame),
        None => return Vec::new(),
    };
    let mut found = Vec::new();
    for at in places {
        let members = families.members(at.family).iter();
        found.extend(members.filter_map(|(id, weak)| Some(Candidate { id: *id, space: weak.upgrade()?, page: at.page })));
    }
    found
}

/// Returns the PTE of `page` in `space` if it maps `frame`.
pub fn pte_mapping(space: &AddressSpace, page: Page, frame: Frame) -> Option<Pte> {
    space.pte(page.start_address()).filter(|pte| pte.is_present() && pte.frame() == frame)
}

/// Returns every (space, page) whose PTE maps `frame`, in no particular order; or, as the
/// error, the id of a space of the family that is locked (its PTE cannot be read).
pub fn mappings(frame: Frame) -> Result<Vec<(SpaceId, Page)>, SpaceId> {
    let mut found = Vec::new();
    for c in candidates(frame) {
        let space = c.space.try_lock().ok_or(c.id)?;
        if pte_mapping(&space, c.page, frame).is_some() {
            found.push((c.id, c.page));
        }
    }
    Ok(found)
}
