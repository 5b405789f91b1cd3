//! Copy-on-write: `fork` shares every private page read-only, and the first write
//! to such a page copies it (`do_wp_fault`).
//!
//! ```text
//!  fork:   parent PTE  [frame F, RW]      ->  parent [F, RO, COW]   child [F, RO, COW]
//!          refcount(F) = 1                ->  refcount(F) = 2       (no data copied)
//!  write by the child: #PF (present, write) in a writable VMA -> do_wp_fault
//!          refcount(F) > 1: copy F to a new frame G, child maps [G, RW], refcount(F) -= 1
//!  write by the parent afterwards: refcount(F) == 1 -> reuse: [F, RW] in place, no copy
//! ```
//! Swap PTEs are copied as they are, each taking one more reference on its slot: the
//! page is read once, by whichever side touches it first, and the other side finds
//! it in the swap cache. Shared mappings (MAP_SHARED) are not copied: both sides map the same frames
//! writable. Their pages are populated in the parent at fork, so the two sides can
//! never fault in different frames for the same page; a write to a shared page
//! whose PTE is read-only (after an mprotect) makes it writable, never copies it.
//! VMAs marked MADV_DONTFORK are left out of the child altogether. A transparent
//! huge page is shared whole, read-only, in the same way (its copy-on-write is
//! `thp::do_huge_wp_fault`).
//! Lock state: the parent's address-space lock is held throughout `fork`.
#![deny(unsafe_code)]

use mm_core::fault::{FaultAction, WritableBecause, fork_flags};
use mm_core::pagetable::{FlushBatch, LeafSlot, PageSize};

use super::addr_space::{AddressSpace, VmError, VmFlags};
use super::fault::{self, FaultError, FaultOutcome, zero_frame};
use super::frame;
use super::rmap::{self, FamilyId, FamilyPage, SpaceRef};
use super::swap;
use super::paging::{Pte, PteFlags};
use super::{Frame, PAGE_SIZE, Page};

/// Duplicates `parent` copy-on-write; returns the child's address space.
///
/// No page is copied: both sides map the same frames read-only (private writable
/// VMAs) and the frame refcounts and map counts go up; the child joins the parent's
/// fork family, so the reverse map finds its PTEs with no work per page (every
/// frame already names the family and its page). Swap PTEs are copied with one more
/// reference on their slot. The page tables are copied in one walk per VMA
/// (`PageTable::fork_range`), and the counts are raised in batches, one frame-lock
/// acquisition each. On failure (out of memory, a full slot count) the child is
/// dropped, which releases what it had taken, and the parent is left valid.
pub fn fork(parent: &mut AddressSpace) -> Result<SpaceRef, VmError> {
    populate_shared(parent)?;
    // Huge pages are shared whole (`thp.rs`), unless `thp_fork=split` asks to split
    // them first (the old way, kept to measure the choice).
    if !super::thp::fork_shares() {
        let inherited: alloc::vec::Vec<_> =
            parent.vmas.iter().filter(|v| !v.flags.contains(VmFlags::DONT_FORK)).map(|v| (v.start, v.end)).collect();
        for (start, end) in inherited {
            super::thp::split_huge_in(parent, start, end).map_err(|_| VmError::NoMemory)?;
        }
    }
    let child_ref = AddressSpace::new_forked(parent)?;
    let mut child_guard = child_ref.lock_nested(); // parent, then the child nobody else can reach yet
    let child = &mut *child_guard;
    let mut maps = MapBatch::new(child.family());
    child.vmas = parent.vmas.clone();
    let vmas: alloc::vec::Vec<_> = parent.vmas.iter().copied().filter(|v| !v.flags.contains(VmFlags::DONT_FORK)).collect();
    for vma in parent.vmas.iter().filter(|v| v.flags.contains(VmFlags::DONT_FORK)) {
        child.vmas.unmap_range(vma.start, vma.end).expect("fork: a VMA's own range is valid");
    }
    child.brk_start = parent.brk_start;
    child.brk_end = parent.brk_end;
    let mut batch = FlushBatch::new();
    let zero = zero_frame();
    let mut result = Ok(());
    for vma in vmas {
        let is_cow = !vma.flags.is_shared();
        let child_stats = &mut child.stats;
        let maps = &mut maps;
        let page = Page::containing_address(vma.start);
        result = parent.pt.fork_range(&mut parent.tables, &mut child.pt, page, vma.nr_pages(), &mut batch, |leaf| {
            if !leaf.pte.is_present() {
                let entry = leaf.pte.as_swap().unwrap_or_else(|| panic!("fork: unknown non-present PTE {:?}", leaf.pte));
                swap::dup(entry).ok()?; // the child's reference on the slot
                child_stats.swap_pages += 1;
                return Some((leaf.pte, leaf.pte));
            }
            let mut pte = leaf.pte;
            pte.set_flags(fork_flags(pte.flags(), !is_cow));
            let frame = pte.frame();
            if leaf.size == PageSize::Size2MiB {
                // A huge page, shared whole: one mapping of its head (`thp.rs`).
                maps.push(frame, Page::containing_address(leaf.addr));
                child_stats.rss_pages += super::thp::PAGES_PER_HUGE;
                child_stats.anon_huge_pages += 1;
            } else if frame != zero {
                maps.push(frame, Page::containing_address(leaf.addr));
                child_stats.rss_pages += 1;
            }
            Some((pte, pte))
        });
        maps.flush(); // before the child can be dropped: its PTEs must all be counted
        if result.is_err() {
            break;
        }
    }
    parent.flush(batch);
    // The child maps the parent's files too (a DONT_FORK file VMA was removed above).
    let child_id = child.id();
    let files = super::file_rmap::caches_mapped_by(child);
    drop(child_guard);
    super::file_rmap::add_forked(&files, child_id, &child_ref);
    result.map_err(|_| VmError::NoMemory)?; // on error `child_ref` drops here and puts back every reference
    Ok(child_ref)
}

/// The child's new mappings, gathered so the frame lock is taken once per batch
/// rather than once per page.
struct MapBatch {
    family: FamilyId,
    mappings: [(Frame, FamilyPage); 64],
    len: usize,
}

impl MapBatch {
    fn new(family: FamilyId) -> Self {
        let unused = (Frame::from_pfn(0), FamilyPage { family, page: Page::default() });
        Self { family, mappings: [unused; 64], len: 0 }
    }

    fn push(&mut self, frame: Frame, page: Page) {
        self.mappings[self.len] = (frame, FamilyPage { family: self.family, page });
        self.len += 1;
        if self.len == self.mappings.len() {
            self.flush();
        }
    }

    /// Records every gathered mapping (`rmap::map_all`).
    fn flush(&mut self) {
        rmap::map_all(&self.mappings[..self.len]);
        self.len = 0;
    }
}

/// Gives every page of every shared VMA of `space` that the child inherits its
/// frame (see the module docs), whatever the VMA's protection: a PROT_NONE or
/// PROT_EXEC shared mapping is shared too. Fails only when memory runs out.
fn populate_shared(space: &mut AddressSpace) -> Result<(), VmError> {
    let shared: alloc::vec::Vec<_> = space
        .vmas
        .iter()
        // A shared file mapping's pages live in the page cache: the child finds them there.
        .filter(|v| v.flags.is_shared() && !v.flags.contains(VmFlags::DONT_FORK))
        .filter(|v| !matches!(v.backing, super::addr_space::Backing::File { .. }))
        .copied()
        .collect();
    for vma in shared {
        for i in 0..vma.nr_pages() {
            fault::populate_page(space, vma.start + i * PAGE_SIZE).map_err(|_| VmError::NoMemory)?;
        }
    }
    Ok(())
}

/// Write to a present, read-only PTE in a writable VMA: carries out what
/// `mm_core::fault::decide` said (see its table).
///
/// * `MakeWritable`: a shared VMA's page (every mapper must keep writing the same
///   frame; the PTE was read-only after an mprotect), or the writer holds the last
///   reference: the PTE is made writable in place (no copy);
/// * `ReplaceZeroPage`: the shared zero page: map a fresh zeroed frame instead;
/// * `CopyOnWrite`: a frame with other references: copy it to a new frame, map the
///   copy writable, drop this space's reference to the old one.
///
/// `slot` is where the fault's walk found `pte` (under this hold of the space's
/// lock): the entry is written back through it, with no second walk.
pub fn do_wp_fault(space: &mut AddressSpace, slot: LeafSlot, pte: Pte, action: FaultAction) -> Result<FaultOutcome, FaultError> {
    let old = pte.frame();
    let page = slot.page();
    let flags = match action {
        FaultAction::MakeWritable { pte: new_pte, because } => {
            let (_, flush) = space.pt.write_slot(&mut space.tables, slot, new_pte);
            space.flush_one(flush);
            if because == WritableBecause::SharedMapping {
                // A page-cache page written through a shared mapping: dirty now
                // (Linux's `page_mkwrite`; writeback write-protects it again).
                if let Some((cache_id, index)) = frame::with_desc(old, |d| d.file_owner()) {
                    super::file_rmap::note_dirty_pte(cache_id, index);
                }
                return Ok(FaultOutcome::SharedWrite);
            }
            space.stats.cow_faults += 1;
            return Ok(FaultOutcome::CowReuse);
        }
        FaultAction::ReplaceZeroPage { flags } | FaultAction::CopyOnWrite { flags } => flags,
        action => panic!("do_wp_fault: {page:?}: {action:?} is not a write-protect fault's"),
    };
    let is_zero_page = matches!(action, FaultAction::ReplaceZeroPage { .. });
    let new = frame::NewPage::alloc().map_err(|_| FaultError::OutOfMemory)?;
    Ok(map_private_copy(space, slot, pte, new, flags, is_zero_page))
}

/// Maps `new` writable (with `flags`) through `slot` in place of the read-only
/// `pte`: zeroed if `pte` maps the shared zero page, else a copy of its frame,
/// whose reference this space then drops. The copy half of a write-protect fault,
/// shared by `do_wp_fault` and the fault fast path.
#[inline]
pub(in crate::mm) fn map_private_copy(
    space: &mut AddressSpace,
    slot: LeafSlot,
    pte: Pte,
    mut new: frame::NewPage,
    flags: PteFlags,
    is_zero_page: bool,
) -> FaultOutcome {
    let (old, page) = (pte.frame(), slot.page());
    if is_zero_page {
        new.zero();
    } else {
        new.copy_from(old); // mapped read-only by every holder: nobody writes it now
    }
    let (_, flush) = space.pt.write_slot(&mut space.tables, slot, Pte::new(new.frame(), flags));
    let new = new.into_mapped();
    space.flush_one(flush);
    rmap::map_new(new, space.family_page(page));
    if is_zero_page {
        space.stats.rss_pages += 1;
        return FaultOutcome::AnonymousPage;
    }
    rmap::unmap(old, space.family_page(page), pte.flags().contains(PteFlags::DIRTY));
    space.stats.cow_faults += 1;
    FaultOutcome::CowCopy
}
