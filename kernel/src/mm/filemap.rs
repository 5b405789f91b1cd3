//! File pages mapped from the page cache: the fault on a `Backing::File` VMA
//! (Linux's `filemap_fault`, `do_read_fault`, `do_cow_fault`, `do_shared_fault`).
//!
//! ```text
//!  fault at addr in VMA [start, end), Backing::File { cache, offset }
//!   index = (offset + addr - start) / PAGE_SIZE
//!   index wholly past the end of the file ............. Err(BeyondEof): killed (SIGBUS)
//!   page not in the cache .............................. Err(NeedsFileRead): the retry loop
//!                                                        reads it (readahead applies) with
//!                                                        no lock held, and faults again
//!   private, read/exec ....... map the cache frame read-only (+ fault-around)
//!   private, write ........... copy the cache page into a new anonymous page, map that
//!   shared, read/exec ........ map the cache frame read-only, even in a writable VMA
//!                              (+ fault-around)
//!   shared, write ............ map it writable and mark the page dirty in its cache
//! ```
//! A later write to a read-only file PTE is a write-protect fault (`cow.rs`): in a
//! private VMA it copies (the frame is shared with the cache: never exclusive), in a
//! shared one it makes the PTE writable and dirties the page, so a page is marked
//! dirty exactly when it is written and clean pages are never written back
//! (Linux's `page_mkwrite`). Writeback write-protects the PTEs again before it
//! writes (`file_rmap::write_protect_pages`).
//!
//! A mapped cache frame keeps its `FILE` owner (cache, index); each PTE is one
//! reference and one count in `map_count`, and the file rmap (`file_rmap.rs`) finds
//! the PTEs. The private copy is an ordinary anonymous page (it joins the fork
//! family's rmap, and goes to swap like any other).
//!
//! Fault-around: after a read fault, the neighbours already in the cache (no I/O)
//! in the same 64 KiB-aligned window and VMA are mapped read-only too (Linux's
//! `fault_around_bytes`), so a sequential reader takes one fault per 16 pages; the
//! whole window with one page-table walk and one hold of the cache's lock. A fault
//! that maps the cache's frame (a read, or a write to a shared mapping) takes the
//! same path with the faulting page in the window (a window of one page with
//! fault-around off, and for writes): one walk, one hold of the lock, no page
//! handle (`map_from_cache`); the first fault under a missing level-1 table, or on
//! a page not cached, goes the longer way (`find_page`, `map_cached`).
//!
//! Lock state: called with the address-space lock held; takes a cache's `pages`
//! lock and `FILE_RMAP` briefly (both below the space lock); never does I/O.
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::addr_space::{AddressSpace, Vma};
use super::fault::{Access, FaultError, FaultOutcome};
use super::frame::{self, FrameFlags, NewPage};
use super::paging::PteFlags;
use super::{PAGE_SIZE, Page, VirtAddr};

/// Pages mapped around a read fault: 64 KiB, Linux's default `fault_around_bytes`.
pub const FAULT_AROUND_PAGES: u64 = 16;
/// Fault-around on (the benchmark switches it off to measure the difference).
static IS_FAULT_AROUND_ON: AtomicBool = AtomicBool::new(true);
/// Pages mapped by fault-around (besides the faulting page).
static NR_FAULT_AROUND: AtomicU64 = AtomicU64::new(0);

/// Switches fault-around on or off.
pub fn set_fault_around(is_on: bool) {
    IS_FAULT_AROUND_ON.store(is_on, Ordering::Release);
}

/// Returns true while fault-around is on (`/proc/sys/vm/fault_around_bytes`).
pub fn is_fault_around_on() -> bool {
    IS_FAULT_AROUND_ON.load(Ordering::Acquire)
}

/// Returns the number of pages fault-around has mapped since boot.
pub fn nr_fault_around() -> u64 {
    NR_FAULT_AROUND.load(Ordering::Relaxed)
}

/// Resolves a fault on an empty PTE of a file VMA (see the module doc). `flags`
/// are the VMA's leaf flags.
pub fn do_file_fault(
    space: &mut AddressSpace,
    vma: &Vma,
    page: Page,
    access: Access,
    cache_id: u32,
    offset: u64,
    flags: PteFlags,
) -> Result<FaultOutcome, FaultError> {
    let cache = super::file_rmap::cache_of(cache_id).expect("do_file_fault: a mapped file is in the file rmap");
    let index = (offset + (page.start_address() - vma.start)) / PAGE_SIZE;
    let size = cache.size();
    if index * PAGE_SIZE >= size {
        return Err(FaultError::BeyondEof { addr: page.start_address(), size });
    }
    let is_shared = vma.flags.is_shared();
    let is_private_write = access == Access::Write && !is_shared;
    if !is_private_write && map_from_cache(space, vma, page, &cache, offset, access, flags) {
        return Ok(FaultOutcome::FilePage);
    }
    let Some(cached) = cache.find_page(index) else {
        return Err(FaultError::NeedsFileRead { cache: cache_id, index });
    };
    if is_private_write {
        // A write to a private mapping: the process gets its own copy now.
        let mut new = NewPage::alloc().map_err(|_| FaultError::OutOfMemory)?;
        new.copy_from(cached.frame());
        super::fault::install_page(space, page, new, flags)?;
        return Ok(FaultOutcome::FileCopy);
    }
    let pte_flags = if access == Access::Write { flags } else { flags - PteFlags::WRITABLE };
    map_cached(space, page, cached.frame(), pte_flags)?;
    if access == Access::Write {
        cache.mark_dirty(index);
    } else if IS_FAULT_AROUND_ON.load(Ordering::Relaxed) {
        fault_around(space, vma, page, &cache, offset, flags - PteFlags::WRITABLE);
    }
    Ok(FaultOutcome::FilePage)
}

/// The common case of a fault that maps the cache's own frame (a read, or a write to
/// a shared mapping) where `page`'s level-1 table exists: the faulting page, and with
/// fault-around on a read its cached neighbours in the aligned window of
/// [`FAULT_AROUND_PAGES`], mapped with one page-table walk and one hold of the
/// cache's lock, each PTE taking its reference and map count as [`map_cached`]
/// does (a write maps the faulting page writable and dirties it under the same
/// hold). Returns false if the faulting page was not mapped (no table yet, or not
/// cached: the caller's slower path decides); neighbours mapped meanwhile stay.
fn map_from_cache(
    space: &mut AddressSpace,
    vma: &Vma,
    page: Page,
    cache: &super::page_cache::PageCache,
    offset: u64,
    access: Access,
    flags: PteFlags,
) -> bool {
    let addr = page.start_address().as_u64();
    let is_write = access == Access::Write;
    let window = if !is_write && IS_FAULT_AROUND_ON.load(Ordering::Relaxed) { FAULT_AROUND_PAGES * PAGE_SIZE } else { PAGE_SIZE };
    let start = (addr & !(window - 1)).max(vma.start.as_u64());
    let end = ((addr & !(window - 1)) + window).min(vma.end.as_u64());
    let end_index = cache.size().div_ceil(PAGE_SIZE);
    let first_index = (offset + (start - vma.start.as_u64())) / PAGE_SIZE;
    let first_page = Page::containing_address(VirtAddr::new(start));
    let read_flags = flags - PteFlags::WRITABLE;
    let mut is_mapped = false;
    let nr_mapped = cache.with_pages(|pages| {
        space.pt.map_unused_in_table(&mut space.tables, first_page, (end - start) / PAGE_SIZE, |p| {
            let index = first_index + (p.start_address().as_u64() - start) / PAGE_SIZE;
            if index >= end_index {
                return None; // past the end of the file: a fault there is a SIGBUS
            }
            let &frame = pages.get(&index)?;
            let is_faulting = p == page;
            frame::with_desc(frame, |d| {
                d.get_ref();
                d.add_file_mapping();
                d.remove_flags(FrameFlags::READAHEAD);
            });
            if is_faulting && is_write {
                cache.mark_frame_dirty(frame);
            }
            is_mapped |= is_faulting;
            Some((frame, if is_faulting && is_write { flags } else { read_flags }))
        })
    }) as u64;
    space.stats.rss_pages += nr_mapped;
    NR_FAULT_AROUND.fetch_add(nr_mapped.saturating_sub(u64::from(is_mapped)), Ordering::Relaxed);
    is_mapped
}

/// Maps page-cache `frame` at the empty `page`: one more reference and map count
/// for the frame (no anonymous rmap place: the file rmap finds it).
fn map_cached(space: &mut AddressSpace, page: Page, frame: super::Frame, flags: PteFlags) -> Result<(), FaultError> {
    super::fault::map_empty(space, page, frame, flags)?;
    frame::with_desc(frame, |d| {
        d.get_ref();
        d.add_file_mapping();
    });
    space.stats.rss_pages += 1;
    Ok(())
}

/// Maps read-only the cached neighbours of `page` in its aligned window of
/// [`FAULT_AROUND_PAGES`], inside `vma` and the file, whose PTEs are empty: with
/// one page-table walk (the window lies in the level-1 table that maps `page`) and
/// one hold of the cache's lock for the whole window, as Linux's `filemap_map_pages`.
fn fault_around(space: &mut AddressSpace, vma: &Vma, page: Page, cache: &super::page_cache::PageCache, offset: u64, flags: PteFlags) {
    let window = FAULT_AROUND_PAGES * PAGE_SIZE;
    let addr = page.start_address().as_u64();
    let start = (addr & !(window - 1)).max(vma.start.as_u64());
    let end = ((addr & !(window - 1)) + window).min(vma.end.as_u64());
    let end_index = cache.size().div_ceil(PAGE_SIZE);
    let first_index = (offset + (start - vma.start.as_u64())) / PAGE_SIZE;
    let first_page = Page::containing_address(VirtAddr::new(start));
    let nr_mapped = cache.with_pages(|pages| {
        space.pt.map_unused_in_table(&mut space.tables, first_page, (end - start) / PAGE_SIZE, |neighbour| {
            let index = first_index + (neighbour.start_address().as_u64() - start) / PAGE_SIZE;
            if index >= end_index {
                return None; // past the end of the file: a fault there is a SIGBUS
            }
            let &frame = pages.get(&index)?;
            // The PTE's reference and map count, as `map_cached` takes them.
            frame::with_desc(frame, |d| {
                d.get_ref();
                d.add_file_mapping();
                d.remove_flags(FrameFlags::READAHEAD);
            });
            Some((frame, flags))
        })
    }) as u64;
    space.stats.rss_pages += nr_mapped;
    NR_FAULT_AROUND.fetch_add(nr_mapped, Ordering::Relaxed);
}

/// The retry loop's side of `NeedsFileRead`: reads page `index` of cache
/// `cache_id` into the cache (readahead first, if the faults look sequential),
/// with no lock held. `Err(NoMemory)` asks the loop to reclaim and retry.
pub fn read_for_fault(cache_id: u32, index: u64) -> Result<(), crate::fs::FsError> {
    let Some(cache) = super::file_rmap::cache_of(cache_id) else {
        return Ok(()); // unmapped meanwhile: the retry finds out
    };
    super::readahead::before_read(&cache, index, index);
    cache.get_page(index).map(drop)
}
