//! The file reverse map (Linux's `i_mmap`): for each page cache, the address spaces
//! that map it; and, through their VMAs, every PTE that may map one of its pages.
//!
//! An anonymous page keeps one virtual address in its whole fork family, so its
//! frame names (family, page) and `rmap.rs` finds every PTE from that. A file page
//! is different: two processes may map the same file at different addresses and
//! different file offsets. So a page-cache frame names only (cache, index) and this
//! map answers "who maps cache C?":
//!
//! ```text
//!  FILE_RMAP: cache id -> { the cache, the file (kept open), [space 3, space 7] }
//!
//!  page `index` of cache C: for each space S of C, for each VMA of S with
//!    Backing::File { cache: C, offset } covering index:
//!      addr = vma.start + (index * PAGE_SIZE - offset)      <- the PTE to look at
//! ```
//! The entry names *spaces*, not VMAs: VMAs split and merge (mprotect, munmap of a
//! middle part) in the VMA tree's own code, and the space's tree is always right
//! about its VMAs, so the map asks it instead of keeping a copy that could drift.
//!
//! Who keeps the file alive: the entry holds the page cache and an opaque `owner`
//! (the VFS inode, which holds the file open on its disk), so a mapping survives
//! `close` and `unlink` (Linux: the VMA's `vm_file`). A space enters at mmap
//! ([`add`]) and at fork ([`add_forked`]); it leaves at munmap ([`prune_space`])
//! and when dropped ([`forget_space`]). An entry with no space left is moved to a
//! release list, emptied by [`release_unmapped`] in a context that may sleep (the
//! last reference to an inode may write its disk: never under a spinlock, never in
//! a zombie).
//!
//! Users: reclaim of a *mapped* file page ([`unmap_page`]), writeback
//! ([`write_protect_pages`]: a shared page written back is read-only again, so the
//! next write dirties it again), truncate ([`unmap_from`]), the audit
//! ([`nr_ptes_mapping`]).
//!
//! Locks: `FILE_RMAP` (rank `FileRmap`, below the address spaces: the fault path
//! reads it under its space's lock). The walkers take it to copy the list of spaces
//! out, drop it, then lock each space with `try_lock` (reclaim, writeback: the
//! caller may hold a space) or `lock` (truncate, a system call holding none).
#![deny(unsafe_code)]

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;

use mm_core::pagetable::FlushBatch;

use super::addr_space::{AddressSpace, Backing};
use super::page_cache::PageCache;
use super::paging::{Pte, PteFlags};
use super::rmap::{SpaceId, SpaceRef};
use super::{Frame, PAGE_SIZE, Page};
use crate::sync::{IrqMutex, LockRank};

/// What keeps a mapped file alive (the VFS inode): opaque to `mm`.
pub type FileOwner = Arc<dyn Any + Send + Sync>;

/// One mapped file.
struct MappedFile {
    cache: Arc<PageCache>,
    owner: FileOwner,
    spaces: Vec<(SpaceId, Weak<IrqMutex<AddressSpace>>)>,
}

/// The map, and the files no space maps any more (released later, where sleeping is allowed).
struct FileRmap {
    files: BTreeMap<u32, MappedFile>,
    released: Vec<(Arc<PageCache>, FileOwner)>,
}

static FILE_RMAP: IrqMutex<FileRmap> =
    IrqMutex::new_ranked(LockRank::FileRmap, FileRmap { files: BTreeMap::new(), released: Vec::new() });

/// Records that `space` (id `space_id`) maps `cache`, the file `owner` keeps alive.
pub fn add(cache: &Arc<PageCache>, owner: FileOwner, space_id: SpaceId, space: &SpaceRef) {
    let mut rmap = FILE_RMAP.lock();
    let file = rmap.files.entry(cache.id()).or_insert_with(|| MappedFile { cache: cache.clone(), owner, spaces: Vec::new() });
    if !file.spaces.iter().any(|&(id, _)| id == space_id) {
        file.spaces.push((space_id, Arc::downgrade(space)));
    }
}

/// Records that the new `child` (forked from `parent_id`) maps every file of `caches`.
pub fn add_forked(caches: &[u32], child_id: SpaceId, child: &SpaceRef) {
    let mut rmap = FILE_RMAP.lock();
    for id in caches {
        if let Some(file) = rmap.files.get_mut(id)
            && !file.spaces.iter().any(|&(s, _)| s == child_id)
        {
            file.spaces.push((child_id, Arc::downgrade(child)));
        }
    }
}

/// Returns the ids of the caches the file VMAs of `space` map, without repeats.
pub fn caches_mapped_by(space: &AddressSpace) -> Vec<u32> {
    let mut ids: Vec<u32> = space
        .vmas()
        .iter()
        .filter_map(|v| match v.backing {
            Backing::File { cache, .. } => Some(cache),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Removes space `space_id` from every file (it is being dropped); files no space
/// maps any more wait for [`release_unmapped`].
pub fn forget_space(space_id: SpaceId) {
    let mut rmap = FILE_RMAP.lock();
    let rmap = &mut *rmap;
    rmap.files.retain(|_, file| {
        file.spaces.retain(|&(id, _)| id != space_id);
        if file.spaces.is_empty() {
            rmap.released.push((file.cache.clone(), file.owner.clone()));
            return false;
        }
        true
    });
}

/// After a munmap: removes `space` from the files its VMAs no longer map.
///
/// The space stays locked until the map is pruned: another thread of the space may
/// be in `mmap` of a file on another CPU, which [`add`]s the space to the file and
/// inserts its VMA under this lock (`proc/mmap_file.rs`). Reading the VMAs and
/// pruning under one hold of the lock sees both steps or neither; with the lock
/// dropped between them, that new VMA's file left the map and its first fault
/// found no cache (`do_file_fault`).
pub fn prune_space(space: &SpaceRef) {
    let space = space.lock();
    let (space_id, still_mapped) = (space.id(), caches_mapped_by(&space));
    let mut rmap = FILE_RMAP.lock();
    let rmap = &mut *rmap;
    rmap.files.retain(|cache_id, file| {
        if still_mapped.contains(cache_id) {
            return true;
        }
        file.spaces.retain(|&(id, _)| id != space_id);
        if file.spaces.is_empty() {
            rmap.released.push((file.cache.clone(), file.owner.clone()));
            return false;
        }
        true
    });
}

/// Drops the files no space maps any more (their last reference may close an
/// inode, which may sleep): call with no spinlock held, from a task that can sleep.
pub fn release_unmapped() {
    let released = core::mem::take(&mut FILE_RMAP.lock().released);
    drop(released);
    crate::fs::ext2fs::release_deferred(); // inode handles dropped under a lock
}

/// Returns the page cache with id `cache_id` if a space maps it (the fault path:
/// every file VMA's cache is here while the VMA exists).
pub fn cache_of(cache_id: u32) -> Option<Arc<PageCache>> {
    FILE_RMAP.lock().files.get(&cache_id).map(|f| f.cache.clone())
}

/// Returns the number of files mapped now.
pub fn nr_mapped_files() -> usize {
    FILE_RMAP.lock().files.len()
}

/// Returns the live spaces that map cache `cache_id`.
fn spaces_of(cache_id: u32) -> Vec<(SpaceId, SpaceRef)> {
    let rmap = FILE_RMAP.lock();
    let Some(file) = rmap.files.get(&cache_id) else { return Vec::new() };
    file.spaces.iter().filter_map(|(id, weak)| Some((*id, weak.upgrade()?))).collect()
}

/// Returns the pages of `space` where page `index` of cache `cache_id` may be mapped
/// (one per file VMA of that cache covering the index).
pub fn places_in(space: &AddressSpace, cache_id: u32, index: u64) -> Vec<Page> {
    let at = index * PAGE_SIZE;
    space
        .vmas()
        .iter()
        .filter_map(|vma| match vma.backing {
            Backing::File { cache, offset } if cache == cache_id && at >= offset && at - offset < vma.end - vma.start => {
                Some(Page::containing_address(vma.start + (at - offset)))
            }
            _ => None,
        })
        .collect()
}

/// Runs `f` on every present PTE that maps `frame` (page `index` of cache
/// `cache_id`), with its space locked; false if a space was busy (`try_lock`).
fn for_each_pte(cache_id: u32, index: u64, frame: Frame, mut f: impl FnMut(&mut AddressSpace, Page, Pte)) -> bool {
    for (_, space) in spaces_of(cache_id) {
        let Some(mut space) = space.try_lock() else {
            return false;
        };
        for page in places_in(&space, cache_id, index) {
            if let Some(pte) = space.pte(page.start_address())
                && pte.is_present()
                && pte.frame() == frame
            {
                f(&mut space, page, pte);
            }
        }
    }
    true
}

/// Unmaps `frame`, page `index` of cache `cache_id`, from every PTE (reclaim of a
/// mapped file page): a PTE's Dirty bit makes the page dirty in its cache (it goes
/// to its file, never to swap). Returns true if no PTE maps it any more.
pub fn unmap_page(cache_id: u32, index: u64, frame: Frame) -> bool {
    let is_done = for_each_pte(cache_id, index, frame, |space, page, _| {
        let old = space.replace_pte(page, Pte::UNUSED);
        space.stats.rss_pages -= 1;
        let at = space.family_page(page);
        super::rmap::unmap(frame, at, old.flags().contains(PteFlags::DIRTY));
    });
    is_done && super::frame::with_desc(frame, |d| d.map_count()) == 0
}

/// Write-protects every PTE that maps a page of a batch of cache `cache_id`,
/// given as (index, frame), before the pages are written back: the next write
/// through a shared mapping faults and dirties the page again (`page_mkwrite`).
/// Each space that maps the file is locked once and flushed once for the whole
/// batch (one TLB flush, or one shootdown, per space, not per page), as Linux's
/// `page_mkclean` over a writeback batch. Returns the indices whose PTE was dirty
/// (the caller marks those pages dirty). A busy space (`try_lock`) is skipped.
pub fn write_protect_pages(cache_id: u32, pages: &[(u64, Frame)]) -> Vec<u64> {
    let mut dirty = Vec::new();
    for (_, space) in spaces_of(cache_id) {
        let Some(mut guard) = space.try_lock() else { continue };
        let space: &mut AddressSpace = &mut guard;
        let mut batch = FlushBatch::new();
        for &(index, frame) in pages {
            for page in places_in(space, cache_id, index) {
                let Some(pte) = space.pte(page.start_address()) else { continue };
                let flags = pte.flags();
                if !pte.is_present() || pte.frame() != frame || !flags.intersects(PteFlags::WRITABLE | PteFlags::DIRTY) {
                    continue;
                }
                if flags.contains(PteFlags::DIRTY) {
                    dirty.push(index);
                }
                let mut clean = pte;
                clean.set_flags(flags - PteFlags::WRITABLE - PteFlags::DIRTY);
                if let Ok((_, flush)) = space.pt.set_entry(&mut space.tables, page, clean) {
                    batch.push(flush);
                }
            }
        }
        space.flush(batch);
    }
    dirty
}

/// Unmaps every PTE of cache `cache_id`'s mappings at page `first` of the file and
/// beyond, private copies included (truncate: an access past the new end must
/// fault, and then finds no page: SIGBUS, as Linux's `unmap_mapping_range`).
/// Call from a system call: it waits for each space's lock.
pub fn unmap_from(cache_id: u32, first: u64) {
    for (_, space) in spaces_of(cache_id) {
        let mut space = space.lock();
        let cut: Vec<(Page, u64)> = space
            .vmas()
            .iter()
            .filter_map(|vma| match vma.backing {
                Backing::File { cache, offset } if cache == cache_id => {
                    let start = (first * PAGE_SIZE).max(offset);
                    let end_offset = offset + (vma.end - vma.start);
                    (start < end_offset).then(|| (Page::containing_address(vma.start + (start - offset)), (end_offset - start) / PAGE_SIZE))
                }
                _ => None,
            })
            .collect();
        for (page, nr_pages) in cut {
            space.unmap_pages_of(page.start_address(), page.start_address() + nr_pages * PAGE_SIZE);
        }
    }
}

/// A PTE that mapped page `index` of cache `cache_id` was dirty: the page is.
pub fn note_dirty_pte(cache_id: u32, index: u64) {
    if let Some(cache) = super::page_cache::cache_by_id(cache_id) {
        cache.mark_dirty(index);
    }
}

/// Returns how many PTEs of the spaces that map `frame`'s cache map it (the audit:
/// `check.rs` compares it with the frame's map count); `None` if a space was busy.
pub fn nr_ptes_mapping(cache_id: u32, index: u64, frame: Frame) -> Option<u32> {
    let mut n = 0;
    for_each_pte(cache_id, index, frame, |_, _, _| n += 1).then_some(n)
}
