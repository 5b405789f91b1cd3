//! Transparent huge pages: one 2 MiB page, one fault and one TLB entry, for
//! anonymous memory; and splitting it back into 512 small pages when something
//! needs 4 KiB granularity.
//!
//! ```text
//!  write fault at A in an anonymous, private, writable VMA
//!    ├─ mode never, or madvise and the VMA lacks MADV_HUGEPAGE, or MADV_NOHUGEPAGE -> 4 KiB
//!    ├─ [A rounded down to 2 MiB, + 2 MiB) not inside the VMA                      -> 4 KiB
//!    ├─ a level-1 table already there (a page of the range is in use)               -> 4 KiB
//!    ├─ no free order-9 block, and compaction (`compact.rs`) cannot free one
//!    │                                                           -> fallback (counted), 4 KiB
//!    └─ zeroed order-9 block mapped by one level-2 entry (PS)    -> huge fault (counted)
//! ```
//! Read faults still map the shared zero page (4 KiB), as the brief allows; a range
//! read before it is written therefore stays in small pages (no background
//! collapse, khugepaged, here).
//!
//! **The frame table.** A huge page is an allocated order-9 `User` block: the head
//! (`ALLOC_HEAD`, order 9: [`FrameDesc::is_compound_head`]) holds the counts (refcount
//! and map count 1, the reverse-map place = the 2 MiB range's first page); the 511
//! tails hold none; fork raises both counts. It is not on the replacement policy's
//! ring: reclaim cannot take it whole. `mm::check` knows this shape.
//!
//! **Splitting** ([`split_huge_leaf`]) replaces the 2 MiB leaf by a level-1 table of
//! 512 PTEs mapping the same frames with the same flags (no byte moves), turns the
//! block into 512 order-0 frames (`BuddyAllocator::split_allocated`), gives each
//! its own count and reverse-map place and puts it on the policy's ring. It happens:
//! - at the edges of a munmap / MADV_DONTNEED / MAP_FIXED / brk shrink that cuts a
//!   huge page (a huge page wholly inside is freed whole);
//! - on an mprotect that covers part of a huge page (a whole one keeps its leaf);
//! - for MADV_FREE and MADV_PAGEOUT (swap-out: split, then evict the 512 small
//!   pages through the ordinary path);
//! - on a fault the 2 MiB leaf does not allow (a read of a PROT_NONE page, say).
//!
//! **Fork** shares each huge page whole: both spaces map it with a read-only
//! 2 MiB leaf (the head's refcount and map count 2; both spaces are in one fork
//! family, so the reverse-map place, the range's first page, names both). The
//! first write in either side ([`do_huge_wp_fault`]) copies the 2 MiB into a free
//! order-9 block, or, with none free, into 512 small pages; a write after the
//! other side exited or copied makes the leaf writable in place. A split of a
//! shared leaf (partial munmap, mprotect...) also copies into small pages, so a
//! huge page's frames are never mapped both by a 2 MiB leaf and by 4 KiB PTEs.
//! MADV_PAGEOUT leaves shared huge pages alone (as Linux leaves pages mapped more
//! than once); KSM and compaction leave every huge page alone. Linux splits the
//! PMD at the first write and copies 4 KiB: docs/18-huge-pages.md measures both
//! and says why this kernel copies. `thp_fork=split` on the command line makes
//! fork split every huge page first (the old way), for that measurement.
//!
//! Locks: the callers hold the address-space lock; the frame lock and the policy's
//! are taken inside, in the order `crate::mm` gives.
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use mm_core::addr::HUGE_PAGE_SIZE;
use mm_core::fault::{FaultAction, decide_empty};
use mm_core::pagetable::{FlushBatch, LeafEntry, MapError, PageSize, SplitError};

use super::addr_space::{AddressSpace, AsStats, Vma, VmFlags, VmProt};
use super::fault::{Access, FaultError, FaultOutcome};
use super::frame::{self, FrameState};
use super::paging::{Pte, PteFlags};
use super::rmap::{FamilyId, FamilyPage};
use super::{Frame, Order, PAGE_SIZE, Page, VirtAddr};

/// Pages of 4 KiB in one huge page.
pub const PAGES_PER_HUGE: u64 = HUGE_PAGE_SIZE / PAGE_SIZE;
/// The buddy order of a huge page.
pub const HUGE_ORDER: Order = Order(9);

/// When write faults may map huge pages (Linux's
/// `/sys/kernel/mm/transparent_hugepage/enabled`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ThpMode {
    /// In every eligible VMA not marked `MADV_NOHUGEPAGE`.
    Always = 0,
    /// Only in VMAs marked `MADV_HUGEPAGE` (the default).
    Madvise = 1,
    /// Never.
    Never = 2,
}

impl ThpMode {
    /// Parses `always`, `madvise` or `never`.
    pub fn parse(word: &str) -> Option<ThpMode> {
        match word {
            "always" => Some(ThpMode::Always),
            "madvise" => Some(ThpMode::Madvise),
            "never" => Some(ThpMode::Never),
            _ => None,
        }
    }

    /// Returns the mode's name, as [`parse`](Self::parse) reads it.
    pub fn name(self) -> &'static str {
        match self {
            ThpMode::Always => "always",
            ThpMode::Madvise => "madvise",
            ThpMode::Never => "never",
        }
    }
}

static MODE: AtomicU8 = AtomicU8::new(ThpMode::Madvise as u8);

/// Returns the mode in force.
pub fn mode() -> ThpMode {
    match MODE.load(Ordering::Relaxed) {
        0 => ThpMode::Always,
        1 => ThpMode::Madvise,
        _ => ThpMode::Never,
    }
}

/// Sets the mode from now on (huge pages already mapped stay). For `/proc` and tests.
pub fn set_mode(mode: ThpMode) {
    MODE.store(mode as u8, Ordering::Relaxed);
}

/// Reads `thp=always|madvise|never` from the kernel command line, if present.
pub fn init_from_cmdline() {
    if let Some(word) = crate::cmdline::value("thp") {
        match ThpMode::parse(word) {
            Some(mode) => set_mode(mode),
            None => crate::println!("thp: unknown mode {word:?} (always, madvise, never): keeping {}", mode().name()),
        }
    }
    match crate::cmdline::value("thp_fork") {
        Some("share") => set_fork_shares(true),
        Some("split") => set_fork_shares(false),
        Some(word) => crate::println!("thp: unknown thp_fork={word:?} (share, split): keeping {}", if fork_shares() { "share" } else { "split" }),
        None => {}
    }
}

static FORK_SHARES: AtomicBool = AtomicBool::new(true);

/// Returns true if fork shares huge pages whole (the default), false if it splits
/// them first (`thp_fork=split` on the command line: the old way, kept to measure
/// the choice; see docs/18-huge-pages.md).
pub fn fork_shares() -> bool {
    FORK_SHARES.load(Ordering::Relaxed)
}

/// Chooses between sharing huge pages at fork (`true`) and splitting them first.
pub fn set_fork_shares(is_shared: bool) {
    FORK_SHARES.store(is_shared, Ordering::Relaxed);
}

static FAULT_ALLOC: AtomicU64 = AtomicU64::new(0);
static FAULT_FALLBACK: AtomicU64 = AtomicU64::new(0);
static SPLITS: AtomicU64 = AtomicU64::new(0);
static COW_COPIES: AtomicU64 = AtomicU64::new(0);
static COW_REUSES: AtomicU64 = AtomicU64::new(0);
static COW_SMALL_COPIES: AtomicU64 = AtomicU64::new(0);

/// Machine-wide huge-page counters (Linux's `thp_*` lines in `/proc/vmstat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThpCounters {
    /// Write faults that mapped a huge page (`thp_fault_alloc`).
    pub fault_alloc: u64,
    /// Eligible faults that found no free order-9 block and mapped 4 KiB (`thp_fault_fallback`).
    pub fault_fallback: u64,
    /// Huge mappings split into 512 small ones (`thp_split_pmd`).
    pub splits: u64,
    /// Write faults on a huge page shared by fork that copied it into a new huge page.
    pub cow_copies: u64,
    /// Write faults on a huge page shared by fork that found it no longer shared
    /// (the other side had exited or copied): made writable in place.
    pub cow_reuses: u64,
    /// Shared huge pages copied into 512 small pages of one space: a write fault
    /// that found no free order-9 block, or a split (partial munmap, mprotect...).
    pub cow_small_copies: u64,
}

/// Returns the counters.
pub fn counters() -> ThpCounters {
    ThpCounters {
        fault_alloc: FAULT_ALLOC.load(Ordering::Relaxed),
        fault_fallback: FAULT_FALLBACK.load(Ordering::Relaxed),
        splits: SPLITS.load(Ordering::Relaxed),
        cow_copies: COW_COPIES.load(Ordering::Relaxed),
        cow_reuses: COW_REUSES.load(Ordering::Relaxed),
        cow_small_copies: COW_SMALL_COPIES.load(Ordering::Relaxed),
    }
}

/// Prints the counters and the mode.
pub fn print_counters() {
    let c = counters();
    crate::println!(
        "thp ({}): {} huge faults, {} fallbacks, {} splits; after fork: {} huge copies, {} reuses, {} copies in small pages",
        mode().name(),
        c.fault_alloc,
        c.fault_fallback,
        c.splits,
        c.cow_copies,
        c.cow_reuses,
        c.cow_small_copies
    );
}

/// Returns the 2 MiB range a write fault at `addr` in `vma` may map with one huge
/// page, if the mode and the VMA allow it (see the module docs).
pub fn huge_range_for(vma: &Vma, addr: VirtAddr) -> Option<VirtAddr> {
    let wanted = match mode() {
        ThpMode::Never => false,
        ThpMode::Madvise => vma.flags.contains(VmFlags::HUGEPAGE),
        ThpMode::Always => true,
    };
    let special = VmFlags::SHARED | VmFlags::GROWS_DOWN | VmFlags::STACK | VmFlags::NO_HUGEPAGE;
    if !wanted || !vma.is_anonymous() || vma.flags.bits() & special.bits() != 0 || !vma.prot.contains(VmProt::WRITE) {
        return None;
    }
    let start = addr.align_down(HUGE_PAGE_SIZE);
    (start >= vma.start && start + HUGE_PAGE_SIZE <= vma.end).then_some(start)
}

/// Returns the 2 MiB range a fault by `access` at `addr` in `vma` would try to map
/// with one huge page (a write, the mode and the VMA allow it, and no level-1 table
/// is there yet), changing nothing: [`try_huge_fault`] and `explain` both ask it.
pub(super) fn huge_fault_range(space: &AddressSpace, vma: &Vma, addr: VirtAddr, access: Access) -> Option<VirtAddr> {
    if access != Access::Write {
        return None;
    }
    let start = huge_range_for(vma, addr)?;
    space.pt.is_huge_slot_empty(&space.tables, start).then_some(start)
}

/// Tries to resolve a write fault at `addr` with a huge page. `None`: not eligible,
/// or no order-9 block (a counted fallback): the caller maps a 4 KiB page.
pub(super) fn try_huge_fault(space: &mut AddressSpace, vma: &Vma, addr: VirtAddr, access: Access) -> Option<Result<FaultOutcome, FaultError>> {
    let start = huge_fault_range(space, vma, addr, access)?;
    let FaultAction::MapZeroedFrame { flags } = decide_empty(vma, Access::Write) else {
        return None;
    };
    let allocated = frame::alloc_zeroed(HUGE_ORDER, FrameState::User).or_else(|_| {
        // No free order-9 block: compaction tries to make one (moving user pages,
        // this space's included, out of a 2 MiB block), then the allocation again.
        super::compact::compact_one_block(Some(space)).ok();
        frame::alloc_zeroed(HUGE_ORDER, FrameState::User)
    });
    let Ok(head) = allocated else {
        FAULT_FALLBACK.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    match space.pt.map_huge(&mut space.tables, start, head.start_address(), flags) {
        Ok(flush) => flush.ignore(), // the slot was empty: nothing cached
        Err(e) => {
            // The block was never mapped: give it back whole.
            free_unmapped_block(head);
            return match e {
                MapError::FrameAllocationFailed => Some(Err(FaultError::OutOfMemory)),
                e => panic!("try_huge_fault: {start:?}: {e:?} in an empty slot"),
            };
        }
    }
    frame::map_new_user_page(head, space.family_page(Page::containing_address(start)));
    space.stats.rss_pages += PAGES_PER_HUGE;
    space.stats.anon_huge_pages += 1;
    FAULT_ALLOC.fetch_add(1, Ordering::Relaxed);
    Some(Ok(FaultOutcome::HugePage))
}

/// Returns a huge block allocated for a fault and never mapped.
fn free_unmapped_block(head: Frame) {
    frame::with_desc(head, |d| d.put_ref());
    frame::free_unreferenced_huge_block(head).unwrap_or_else(|e| panic!("thp: freeing an unmapped block: {e}"));
}

/// Returns true if the 2 MiB leaf `pte` allows `access` by a user: then a fault on
/// it was a stale TLB entry.
pub(super) fn leaf_allows(flags: PteFlags, access: Access) -> bool {
    flags.contains(PteFlags::USER)
        && match access {
            Access::Read => true,
            Access::Write => flags.contains(PteFlags::WRITABLE),
            Access::Exec => !flags.contains(PteFlags::NO_EXECUTE),
        }
}

/// Splits the huge leaf covering `addr` in `space` into 512 small ones (see the
/// module docs); does nothing if no huge leaf is there. Fails only when no frame
/// is left for the new page table (nothing changed then).
pub fn split_huge_leaf(space: &mut AddressSpace, addr: VirtAddr) -> Result<(), SplitError> {
    if let Some((start, leaf)) = space.pt.huge_leaf(&space.tables, addr).filter(|(_, leaf)| is_shared(*leaf)) {
        // Shared with a forked space, which keeps its huge leaf: this space takes
        // its own copy, in small pages (see `copy_to_small_pages`).
        return copy_to_small_pages(space, start, leaf, leaf.flags() - PteFlags::HUGE);
    }
    let (head, flush) = match space.pt.split_huge(&mut space.tables, addr) {
        Ok(done) => done,
        Err(SplitError::NotHuge) => return Ok(()),
        Err(e) => return Err(e),
    };
    space.flush_one(flush);
    let start = addr.align_down(HUGE_PAGE_SIZE);
    frame::split_huge_user_block(head, space.family_page(Page::containing_address(start)));
    for i in 0..PAGES_PER_HUGE {
        super::reclaim::track(head + i);
    }
    space.stats.anon_huge_pages -= 1;
    SPLITS.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Splits every huge leaf overlapping `[start, end)` that this space alone maps;
/// leaves those shared with a forked space alone (MADV_PAGEOUT: Linux, too, pages
/// out only pages mapped once).
pub fn split_exclusive_huge_in(space: &mut AddressSpace, start: VirtAddr, end: VirtAddr) -> Result<(), SplitError> {
    if space.stats.anon_huge_pages == 0 || start >= end {
        return Ok(());
    }
    let mut huge = alloc::vec::Vec::new();
    space.pt.for_each_leaf(&space.tables, Page::containing_address(start), (end - start).div_ceil(PAGE_SIZE), |leaf| {
        if leaf.size == PageSize::Size2MiB && !is_shared(leaf.pte) {
            huge.push(leaf.addr);
        }
    });
    huge.into_iter().try_for_each(|addr| split_huge_leaf(space, addr))
}

/// Splits every huge leaf overlapping `[start, end)`.
pub fn split_huge_in(space: &mut AddressSpace, start: VirtAddr, end: VirtAddr) -> Result<(), SplitError> {
    if space.stats.anon_huge_pages == 0 || start >= end {
        return Ok(());
    }
    let mut huge = alloc::vec::Vec::new();
    space.pt.for_each_leaf(&space.tables, Page::containing_address(start), (end - start).div_ceil(PAGE_SIZE), |leaf| {
        if leaf.size == PageSize::Size2MiB {
            huge.push(leaf.addr);
        }
    });
    huge.into_iter().try_for_each(|addr| split_huge_leaf(space, addr))
}

/// Splits the huge leaves that `[start, end)` cuts (cover in part) at its two
/// edges; those wholly inside stay huge.
pub fn split_huge_at_edges(space: &mut AddressSpace, start: VirtAddr, end: VirtAddr) -> Result<(), SplitError> {
    if space.stats.anon_huge_pages == 0 || start >= end {
        return Ok(());
    }
    if !start.is_aligned(HUGE_PAGE_SIZE) {
        split_huge_leaf(space, start)?;
    }
    if !end.is_aligned(HUGE_PAGE_SIZE) {
        split_huge_leaf(space, VirtAddr::new(end.as_u64() - PAGE_SIZE))?;
    }
    Ok(())
}

/// Drops the mapping of a whole huge leaf being unmapped (munmap, exit): the
/// counters, and the block when this was its last reference.
pub(super) fn release_huge_leaf(leaf: LeafEntry, stats: &mut AsStats, family: FamilyId) {
    let head = leaf.pte.frame();
    stats.rss_pages -= PAGES_PER_HUGE;
    stats.anon_huge_pages -= 1;
    let at = FamilyPage { family, page: Page::containing_address(leaf.addr) };
    let (refcount, _, _) = frame::drop_mapping_ref(head, at, false);
    if refcount == 0 {
        frame::free_unreferenced_huge_block(head).unwrap_or_else(|e| panic!("thp: freeing an unmapped huge page: {e}"));
    }
}

/// Returns true if the huge page the 2 MiB leaf `leaf` maps has other references
/// than this leaf (fork shared it).
fn is_shared(leaf: Pte) -> bool {
    frame::with_desc(leaf.frame(), |d| d.refcount()) > 1
}

/// Returns true if a fault by `access` on the 2 MiB leaf `leaf` in `vma` is a
/// copy-on-write fault: a write to a read-only user leaf of a private writable VMA
/// (fork shared the huge page, or an mprotect took write away and gave it back).
pub(super) fn is_huge_wp_fault(vma: &Vma, leaf: PteFlags, access: Access) -> bool {
    access == Access::Write
        && vma.prot.contains(VmProt::WRITE)
        && !vma.flags.is_shared()
        && leaf.contains(PteFlags::USER)
        && !leaf.contains(PteFlags::WRITABLE)
}

/// A write fault on the read-only 2 MiB leaf `leaf` covering `addr`
/// ([`is_huge_wp_fault`]): the copy-on-write of a huge page.
///
/// ```text
///  refcount 1 (the other side exited or copied)  -> the leaf made writable in place
///  shared, a free order-9 block                   -> copy the 2 MiB, map the copy writable
///  shared, no free order-9 block                  -> copy into 512 small pages, writable
/// ```
/// The other sharers keep the old huge page (its refcount goes down by one). Linux
/// instead splits the PMD and copies one 4 KiB page; docs/18-huge-pages.md gives
/// the measurements behind this choice.
pub(super) fn do_huge_wp_fault(space: &mut AddressSpace, addr: VirtAddr, leaf: Pte) -> Result<FaultOutcome, FaultError> {
    let start = addr.align_down(HUGE_PAGE_SIZE);
    let head = leaf.frame();
    let writable = (leaf.flags() - PteFlags::COW - PteFlags::HUGE) | PteFlags::WRITABLE;
    space.stats.cow_faults += 1;
    if !is_shared(leaf) {
        let (_, flush) = space.pt.replace_huge(&mut space.tables, start, head, writable).expect("do_huge_wp_fault: the leaf is there");
        space.flush_one(flush);
        COW_REUSES.fetch_add(1, Ordering::Relaxed);
        return Ok(FaultOutcome::CowReuse);
    }
    let Ok(copy) = frame::alloc_huge_copy(head) else {
        copy_to_small_pages(space, start, leaf, writable).map_err(|_| FaultError::OutOfMemory)?;
        return Ok(FaultOutcome::CowCopy);
    };
    let (_, flush) = space.pt.replace_huge(&mut space.tables, start, copy, writable).expect("do_huge_wp_fault: the leaf is there");
    space.flush_one(flush);
    let at = space.family_page(Page::containing_address(start));
    frame::map_new_user_page(copy, at);
    drop_shared_ref(head, at);
    COW_COPIES.fetch_add(1, Ordering::Relaxed);
    Ok(FaultOutcome::CowCopy)
}

/// Replaces this space's 2 MiB leaf `leaf` at `start`, a huge page shared with a
/// forked space, by 512 small PTEs with `flags` mapping a private copy of each 4
/// KiB; drops this space's reference to the huge page, which the other sharers
/// keep mapping whole. So a huge page is only ever mapped by whole leaves, and
/// its frames by either 2 MiB leaves or 4 KiB PTEs, never both: the frame table
/// needs no per-tail counts. Fails, changing nothing, when the frames run out.
fn copy_to_small_pages(space: &mut AddressSpace, start: VirtAddr, leaf: Pte, flags: PteFlags) -> Result<(), SplitError> {
    let head = leaf.frame();
    let mut copies = alloc::vec::Vec::with_capacity(PAGES_PER_HUGE as usize);
    for i in 0..PAGES_PER_HUGE {
        // Dropping `copies` on failure frees what was allocated.
        let mut page = frame::NewPage::alloc().map_err(|_| SplitError::FrameAllocationFailed)?;
        page.copy_from(head + i); // read-only in every space that maps it
        copies.push(page);
    }
    let (_, flush) = space.pt.split_huge(&mut space.tables, start)?;
    let mut batch = FlushBatch::new();
    batch.push(flush);
    for (i, page) in (0..PAGES_PER_HUGE).zip(copies) {
        let small = Page::containing_address(start + i * PAGE_SIZE);
        let (_, flush) =
            space.pt.set_entry(&mut space.tables, small, Pte::new(page.frame(), flags)).expect("copy_to_small_pages: the table is there");
        batch.push(flush); // another CPU may have cached the 4 KiB entry to the old frame
        super::rmap::map_new(page.into_mapped(), space.family_page(small));
    }
    space.flush(batch);
    drop_shared_ref(head, space.family_page(Page::containing_address(start)));
    space.stats.anon_huge_pages -= 1;
    COW_SMALL_COPIES.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Drops the reference of this space's leaf (at `at`) to the huge page headed by
/// `head`; frees the block if the other sharers dropped theirs meanwhile.
fn drop_shared_ref(head: Frame, at: FamilyPage) {
    let (refcount, _, _) = frame::drop_mapping_ref(head, at, false);
    if refcount == 0 {
        frame::free_unreferenced_huge_block(head).unwrap_or_else(|e| panic!("thp: freeing a huge page after its copy: {e}"));
    }
}
