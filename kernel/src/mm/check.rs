//! The bookkeeping audit: every count memory management keeps, checked against the
//! page tables, which are the truth.
//!
//! [`check_consistency`] walks every registered address space and verifies the
//! invariants DESIGN.md lists for an auditor:
//! - each registered space is listed under its own fork family, and every live
//!   family has a live space;
//! - each present or swap user PTE lies inside a VMA of its space, and a present
//!   one allows no more than the VMA does: not WRITABLE unless the VMA is
//!   writable, and never on the zero page or on a private frame other PTEs map
//!   too (copy-on-write); executable (no NO_EXECUTE) only in an executable VMA;
//!   USER never in a PROT_NONE VMA;
//! - each present user PTE maps a User frame whose reverse-map place
//!   (`FrameDesc::family_page`) is this space's family at this page, so the reverse
//!   map finds every PTE; a frame no PTE maps names no place; a mapped page-cache
//!   page (`FILE`) names no place, and the file rmap (`file_rmap.rs`) finds exactly
//!   its `map_count` PTEs;
//! - a merged page (KSM) is exactly a frame `ksm.rs`'s stable index lists, and
//!   the place of each PTE mapping it is among its listed places (the reverse map
//!   of merged pages); its map count is checked as any frame's below;
//! - each user frame's `map_count` is its number of present PTEs and its `refcount`
//!   is that plus one if it is in the swap cache; a frame is flagged `SWAP_CACHE` exactly
//!   when the cache lists it, with `private` = its slot; no frame is LOCKED (no I/O
//!   is in flight when the check runs);
//! - each swap PTE names an allocated slot, and each slot's share count is its swap
//!   PTEs + 1 if cached + 1 if retired + 1 while a wipe holds it (then nothing
//!   else may);
//! - a 2 MiB leaf (a transparent huge page) lies wholly inside one VMA and maps
//!   the head of an allocated order-9 `User` block, which holds its counts (map
//!   count = the 2 MiB leaves mapping it: more than 1 after fork, and then none
//!   writable) and its place (the range's first page); it counts 512 pages of RSS,
//!   one huge page of the space's `anon_huge_pages`, and is not on the policy's ring;
//! - each space's RSS and swap counters match its table;
//! - each page-cache page (`page_cache::snapshot`) is a User frame flagged FILE
//!   whose descriptor names its cache and index, with one reference for the cache
//!   plus one per PTE; no other frame is flagged FILE;
//! - the replacement policy tracks exactly the user frames (mapped, swap-cached or
//!   page-cached),
//!   checked frame by frame;
//! - the buddy allocator's own invariants hold (so free + used = total);
//! - the pre-zeroed pool (`zero_pool.rs`) holds exactly the frames in state
//!   `Zeroed`, and each of them reads zero;
//! - each frame on a per-CPU list (`pcp.rs`) looks like a fresh single allocation
//!   in its list's state, and each CPU's count of listed frames is right.
//!
//! It is O(mapped pages + slots) and takes every lock in turn: for tests and
//! debugging, called with no lock held.
#![deny(unsafe_code)]

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::String;

use super::addr_space::{AddressSpace, VmProt};
use super::frame::{self, FrameFlags, FrameState};
use super::paging::{Pte, PteFlags};
use mm_core::pagetable::PageSize;
use super::rmap;
use super::{Frame, Page, swap};

/// What [`check_consistency`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Registered address spaces.
    pub nr_spaces: usize,
    /// Live fork families.
    pub nr_families: usize,
    /// Present user PTEs (the zero page not counted).
    pub nr_present: u64,
    /// Swap PTEs.
    pub nr_swap_ptes: u64,
    /// Distinct user frames a PTE maps or the swap cache holds: a process's memory
    /// (a page-cache page that no PTE maps is not counted: the cache outlives
    /// processes; see `nr_file_pages`).
    pub nr_frames: u64,
    /// Page-cache pages (file pages, mapped or not).
    pub nr_file_pages: u64,
    /// Frames in the swap cache.
    pub nr_cached: u64,
    /// Swap slots in use.
    pub nr_slots_used: u64,
    /// Free frames.
    pub nr_free_frames: u64,
}

/// What the page tables say.
#[derive(Default)]
struct Walk {
    /// Present PTEs per user frame (by pfn).
    present: BTreeMap<u64, u32>,
    swap_refs: BTreeMap<u32, u32>,
    nr_swap_ptes: u64,
    /// Heads of transparent huge pages (by pfn): not on the policy's ring.
    huge_heads: BTreeSet<u64>,
    /// Merged pages (`ksm.rs`) and the places their stable node lists.
    merged: BTreeMap<u64, alloc::vec::Vec<rmap::FamilyPage>>,
}

/// Walks every space's user half; checks frame states and each space's counters.
fn walk_spaces(census: &mut Census) -> Result<Walk, String> {
    let zero = super::fault::zero_frame();
    let merged = super::ksm::snapshot().into_iter().map(|(frame, places)| (frame.pfn(), places)).collect();
    let mut walk = Walk { merged, ..Walk::default() };
    let spaces = rmap::all_spaces();
    census.nr_spaces = spaces.len();
    census.nr_families = rmap::nr_families();
    let families: BTreeSet<_> = spaces.iter().map(|s| s.family).collect();
    if families.len() != census.nr_families {
        return Err(format!("{} families alive, {} with a live space", census.nr_families, families.len()));
    }
    for rmap::Registered { family, id, space } in spaces {
        let space = space.try_lock().ok_or_else(|| format!("space {id} is locked"))?;
        if (space.id(), space.family()) != (id, family) {
            return Err(format!("space {} of {:?} is registered as {id} in {family:?}", space.id(), space.family()));
        }
        let (mut nr_present, mut nr_swap, mut nr_huge, mut error) = (0, 0, 0, None);
        space.for_each_user_leaf(|page, pte, size| {
            if error.is_none() {
                error = check_pte_against_vma(&space, page, pte).map(|e| format!("space {id} {page:?}: {e}"));
            }
            if size != PageSize::Size4KiB {
                nr_huge += 1;
                nr_present += crate::mm::thp::PAGES_PER_HUGE;
                if let Some(e) = check_huge_leaf(&space, page, pte, size, &mut walk) {
                    error.get_or_insert(format!("space {id} {page:?}: {e}"));
                }
            } else if let Some(entry) = pte.as_swap() {
                nr_swap += 1;
                *walk.swap_refs.entry(entry.slot() as u32).or_default() += 1;
            } else if !pte.is_present() {
                error.get_or_insert(format!("space {id} {page:?}: unknown non-present PTE {pte:?}"));
            } else if pte.frame() != zero {
                nr_present += 1;
                *walk.present.entry(pte.frame().pfn()).or_default() += 1;
                // A page-cache page (FILE) has no place: the file rmap finds its PTEs.
                // A merged page (KSM) has no one place: its stable node lists them.
                let (state, place, is_file, is_ksm) = frame::with_desc(pte.frame(), |d| {
                    (d.state(), d.family_page(), d.has_flags(FrameFlags::FILE), d.is_ksm())
                });
                let listed = walk.merged.get(&pte.frame().pfn());
                if state != FrameState::User {
                    error.get_or_insert(format!("space {id} {page:?} maps {:?} in state {state:?}", pte.frame()));
                } else if is_ksm != listed.is_some() {
                    error.get_or_insert(format!("{:?}: merged {is_ksm}, in the stable index {}", pte.frame(), listed.is_some()));
                } else if let Some(places) = listed.filter(|p| !p.contains(&space.family_page(page))) {
                    error.get_or_insert(format!(
                        "space {id} maps merged {:?} at {page:?}, not among its places {places:?}",
                        pte.frame()
                    ));
                } else if !is_file && !is_ksm && place != Some(space.family_page(page)) {
                    error.get_or_insert(format!(
                        "space {id} ({family:?}) maps {:?} at {page:?}, but the frame's reverse-map place is {place:?}",
                        pte.frame()
                    ));
                }
            }
        });
        if let Some(e) = error {
            return Err(e);
        }
        if nr_present != space.stats.rss_pages || nr_swap != space.stats.swap_pages || nr_huge != space.stats.anon_huge_pages {
            return Err(format!(
                "space {id}: table has {nr_present} present pages ({nr_huge} huge) + {nr_swap} swap PTEs, counters say {} ({}) + {}",
                space.stats.rss_pages, space.stats.anon_huge_pages, space.stats.swap_pages
            ));
        }
        census.nr_present += nr_present;
        walk.nr_swap_ptes += nr_swap;
    }
    census.nr_swap_ptes = walk.nr_swap_ptes;
    Ok(walk)
}

/// Returns what is wrong with the 2 MiB leaf `pte` at `page` of `space`, if
/// anything; records its head in `walk`.
fn check_huge_leaf(space: &AddressSpace, page: Page, pte: Pte, size: PageSize, walk: &mut Walk) -> Option<String> {
    if size != PageSize::Size2MiB || !pte.is_present() {
        return Some(format!("{pte:?}: a user leaf of {size:?}"));
    }
    let vma = space.vmas().find(page.start_address())?;
    if vma.end < page.start_address() + size.size_bytes() {
        return Some(format!("huge {pte:?} runs past the end of {vma:?}"));
    }
    let head = pte.frame();
    let (state, is_head, place) = frame::with_desc(head, |d| (d.state(), d.is_compound_head() && d.order() == 9, d.family_page()));
    if state != FrameState::User || !is_head {
        return Some(format!("huge {pte:?} maps {head:?} in state {state:?}, not the head of an order-9 block"));
    }
    if place != Some(space.family_page(page)) {
        return Some(format!("huge {pte:?}: the head's reverse-map place is {place:?}"));
    }
    *walk.present.entry(head.pfn()).or_default() += 1;
    walk.huge_heads.insert(head.pfn());
    None
}

/// Returns what is wrong with user PTE `pte` at `page` of `space` compared with
/// the VMA there, if anything: a PTE outside every VMA, or one that allows more than
/// the VMA (or copy-on-write) does.
fn check_pte_against_vma(space: &AddressSpace, page: Page, pte: Pte) -> Option<String> {
    let Some(vma) = space.vmas().find(page.start_address()) else {
        return Some(format!("{pte:?} lies outside every VMA"));
    };
    if !pte.is_present() {
        return None;
    }
    let flags = pte.flags();
    let is_writable = flags.contains(PteFlags::WRITABLE);
    if is_writable && !vma.prot.contains(VmProt::WRITE) {
        return Some(format!("{pte:?} is WRITABLE in a VMA without write: {vma:?}"));
    }
    if is_writable && pte.frame() == super::fault::zero_frame() {
        return Some(format!("{pte:?} maps the zero page WRITABLE"));
    }
    if is_writable && !vma.flags.is_shared() && frame::with_desc(pte.frame(), |d| d.map_count()) > 1 {
        return Some(format!("{pte:?} is WRITABLE on a private frame other PTEs map (copy-on-write)"));
    }
    if !flags.contains(PteFlags::NO_EXECUTE) && !vma.prot.contains(VmProt::EXEC) {
        return Some(format!("{pte:?} is executable in a VMA without exec: {vma:?}"));
    }
    if flags.contains(PteFlags::USER) && vma.prot == VmProt::NONE {
        return Some(format!("{pte:?} is USER in a PROT_NONE VMA: {vma:?}"));
    }
    None
}

/// Checks that the replacement policy tracks exactly the user frames `frames`
/// (mapped or cached): the count, then each frame.
fn check_policy(frames: &BTreeSet<u64>) -> Result<(), String> {
    let nr_tracked = super::reclaim::nr_tracked() as u64;
    if nr_tracked != frames.len() as u64 {
        return Err(format!("the replacement policy tracks {nr_tracked} frames, {} user frames exist", frames.len()));
    }
    match frames.iter().find(|&&pfn| !super::reclaim::is_tracked(Frame::from_pfn(pfn))) {
        Some(&pfn) => Err(format!("user frame {:?} is not tracked by the replacement policy", Frame::from_pfn(pfn))),
        None => Ok(()),
    }
}

/// Builds a map by inserting each pair. `collect()` would first sort a copy of all
/// of them in one contiguous buffer (24 bytes a page for the page cache's), which
/// the audit may not get when memory is short, and the tests run it under pressure
/// (`mmap_files`: "memory allocation of 151584 bytes failed" in `collect`'s sort).
fn map_of<K: Ord, V>(pairs: impl Iterator<Item = (K, V)>) -> BTreeMap<K, V> {
    let mut map = BTreeMap::new();
    map.extend(pairs);
    map
}

/// Builds a set by inserting each key (see [`map_of`]).
fn set_of<K: Ord>(keys: impl Iterator<Item = K>) -> BTreeSet<K> {
    let mut set = BTreeSet::new();
    set.extend(keys);
    set
}

/// Checks every user frame's counts, flags and reverse-map place.
fn check_frames(walk: &Walk, cache: &BTreeMap<u32, Frame>, census: &mut Census) -> Result<BTreeSet<u64>, String> {
    let cached: BTreeMap<u64, u32> = map_of(cache.iter().map(|(&slot, frame)| (frame.pfn(), slot)));
    let file_pages: BTreeMap<u64, (u32, u64)> =
        map_of(super::page_cache::snapshot().into_iter().map(|(frame, id, index)| (frame.pfn(), (id, index))));
    census.nr_frames = set_of(walk.present.keys().chain(cached.keys()).copied()).len() as u64;
    census.nr_file_pages = file_pages.len() as u64;
    let frames: BTreeSet<u64> = set_of(walk.present.keys().chain(cached.keys()).chain(file_pages.keys()).copied());
    for &pfn in &frames {
        let frame = Frame::from_pfn(pfn);
        let count = walk.present.get(&pfn).copied().unwrap_or(0);
        let slot = cached.get(&pfn).copied();
        let (state, map_count, refcount, flags, private, place) = frame::with_desc(frame, |d| {
            (d.state(), d.map_count(), d.refcount(), d.flags(), d.private(), d.family_page())
        });
        let file_owner = file_pages.get(&pfn).copied();
        let want_refcount = count + u32::from(slot.is_some()) + u32::from(file_owner.is_some());
        let is_flagged = flags.contains(FrameFlags::SWAP_CACHE);
        let desc_owner = frame::with_desc(frame, |d| d.file_owner());
        if desc_owner != file_owner {
            return Err(format!("{frame:?}: owner in the descriptor {desc_owner:?}, the page caches say {file_owner:?}"));
        }
        if state != FrameState::User || map_count != count || refcount != want_refcount {
            return Err(format!(
                "{frame:?} ({state:?}): {count} present PTEs, cached {slot:?}: map_count {map_count}, refcount {refcount}"
            ));
        }
        if let Some((cache_id, index)) = file_owner
            && count > 0
        {
            // Every PTE of a mapped page-cache page must be found through the file rmap.
            match super::file_rmap::nr_ptes_mapping(cache_id, index, frame) {
                Some(found) if found == count => {}
                Some(found) => {
                    return Err(format!(
                        "{frame:?} (cache {cache_id} page {index}): {count} present PTEs, the file rmap finds {found}"
                    ));
                }
                None => return Err(format!("{frame:?}: a space mapping cache {cache_id} is locked")),
            }
        }
        let is_merged = walk.merged.contains_key(&pfn);
        if file_owner.is_none() && !is_merged && place.is_some() != (count > 0) {
            return Err(format!("{frame:?}: {count} present PTEs, reverse-map place {place:?}"));
        }
        if is_flagged != slot.is_some() || slot.is_some_and(|s| s != private) {
            return Err(format!("{frame:?}: flags {flags:?}, private {private}, swap cache says slot {slot:?}"));
        }
        if flags.contains(FrameFlags::LOCKED) {
            return Err(format!("{frame:?} is LOCKED with no I/O in flight"));
        }
    }
    Ok(frames)
}

/// Checks every slot's share count against the swap PTEs, the cache and the retired list.
fn check_slots(walk: &Walk, snap: &swap::SwapSnapshot, census: &mut Census) -> Result<(), String> {
    census.nr_cached = snap.cache.len() as u64;
    // A slot a wipe holds is free to everyone else: not counted as used.
    census.nr_slots_used = snap.counts.keys().filter(|slot| !snap.wiping.contains(slot)).count() as u64;
    if let Some((slot, refs)) = walk.swap_refs.iter().find(|(slot, _)| !snap.counts.contains_key(slot)) {
        return Err(format!("{refs} swap PTEs name slot {slot}, which is free"));
    }
    for (&slot, &count) in &snap.counts {
        let ptes = walk.swap_refs.get(&slot).copied().unwrap_or(0);
        let (is_cached, is_retired, is_wiping) =
            (snap.cache.contains_key(&slot), snap.retired.contains(&slot), snap.wiping.contains(&slot));
        if is_wiping && (ptes > 0 || is_cached || is_retired) {
            return Err(format!("slot {slot} is being wiped but still used: {ptes} swap PTEs, cached {is_cached}"));
        }
        let want = ptes + u32::from(is_cached) + u32::from(is_retired) + u32::from(is_wiping);
        if u32::from(count) != want {
            return Err(format!(
                "slot {slot}: share count {count}, but {ptes} swap PTEs, cached {is_cached}, retired {is_retired}, \
                 being wiped {is_wiping}"
            ));
        }
    }
    Ok(())
}

/// Waits, at most 2 s, until neither kswapd, the writeback thread nor the cleaner
/// is in a pass.
/// The audit is a picture of a quiet system: a background pass holds frames locked
/// for its writes and slots half assigned, which would read as violations (a frame
/// "LOCKED with no I/O in flight", seen right after a program that swapped hard
/// exited while kswapd was finishing its pass). Past the deadline the audit runs
/// anyway, and reports what it sees.
fn wait_for_background_passes() {
    let deadline = crate::arch::timer::ticks() + 2 * crate::arch::timer::TICK_HZ;
    while (super::reclaim::kswapd_state().1 || super::writeback::is_in_pass() || super::cleaner::is_in_pass()) && crate::arch::timer::ticks() < deadline {
        crate::sync::hooks::yield_now();
    }
}

/// Checks every invariant in the module docs; returns what it counted, or the
/// first violation found. Call from a task with no lock held: it first waits for
/// background reclaim and write-back passes to end.
pub fn check_consistency() -> Result<Census, String> {
    wait_for_background_passes();
    let mut census = Census::default();
    let walk = walk_spaces(&mut census)?;
    let snap = swap::snapshot();
    let frames = check_frames(&walk, &snap.cache, &mut census)?;
    if let Some(pfn) = walk.merged.keys().find(|pfn| !frames.contains(pfn)) {
        return Err(format!("merged page {pfn:#x} is in the stable index, but neither mapped nor in the swap cache"));
    }
    check_slots(&walk, &snap, &mut census)?;
    swap::check_slot_map();
    rmap::check_families();
    frame::check_invariants().map_err(|e| format!("buddy allocator: {e:?}"))?;
    super::zero_pool::check()?;
    super::pcp::check()?;
    // Objects waiting in the magazines keep their slabs: check them, then empty
    // them, so the frame counts the tests compare do not depend on them.
    super::slabmag::check()?;
    super::slabmag::drain_all();
    census.nr_free_frames = frame::nr_free_frames_exact();
    let small: BTreeSet<u64> = set_of(frames.difference(&walk.huge_heads).copied());
    check_policy(&small)?;
    Ok(census)
}
