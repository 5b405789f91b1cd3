//! Address spaces: a PML4 (kernel half shared) plus a VMA tree, and the mmap family.
//!
//! An [`AddressSpace`] is what a process owns of memory. Its [`VmaTree`] (from
//! `mm-core`) says what *may* be mapped where and how; its page table says what *is*
//! mapped now. The two meet in the page-fault handler (`fault.rs`), which fills the
//! page table lazily from the VMAs. The operations here follow Linux semantics and
//! return a [`VmError`] that the syscall layer turns into an errno:
//!
//! | operation | effect |
//! |---|---|
//! | [`mmap`](AddressSpace::mmap) | new anonymous VMA: hint honoured when free, else top-down gap search; `MAP_FIXED` replaces |
//! | [`munmap`](AddressSpace::munmap) | splits VMAs at the edges, drops their pages and empty page tables |
//! | [`mprotect`](AddressSpace::mprotect) | splits/merges VMAs, narrows existing PTEs (with TLB flush) |
//! | [`madvise_dontneed`](AddressSpace::madvise_dontneed) | drops pages; the next touch sees zeros |
//! | `pageout` (in `reclaim.rs`) | MADV_PAGEOUT: swaps the range's pages out now |
//! | [`brk`](AddressSpace::brk) | grows or shrinks the heap VMA |
//! | `fork` (in `cow.rs`) | copy-on-write duplicate |
//!
//! Every operation validates its arguments before it changes anything.
//! Lock state: callers hold the owning process's address-space lock.
//!
//! Each space has an id and belongs to a fork family, in the reverse map's registry
//! from birth to drop: [`AddressSpace::new`] (spawn) starts a family,
//! [`AddressSpace::new_forked`] (fork) joins its parent's; both return the space
//! already shared and registered. A mapped user frame names its family and page, so
//! reclaim can find every PTE that maps it (`rmap.rs`).
#![deny(unsafe_code)]

use alloc::string::String;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU16, Ordering};

use mm_core::pagetable::{FlushBatch, LeafEntry, PageTable};
pub use mm_core::vma::{Backing, Vma, VmaError, VmaTree, VmFlags, VmProt};

use super::layout::USER_END;
use super::rmap::{self, FamilyId, FamilyPage, SpaceId, SpaceRef};
use super::paging::{self, DirectMapTables, PteFlags};
use super::{Frame, PAGE_SIZE, Page, VirtAddr};
use crate::arch::tlb;

/// Lowest address mmap hands out (page 0 and the first 64 KiB stay unmapped).
pub const MMAP_MIN: u64 = 0x1_0000;
/// Top of the area the top-down gap search uses (below the stack's reach).
pub const MMAP_TOP: u64 = 0x0000_7f00_0000_0000;
/// The top of the user stack (exclusive; the page above it stays unmapped, so the
/// stack pointer a process starts with is canonical and 16-byte aligned).
pub const STACK_TOP: u64 = USER_END - PAGE_SIZE;
/// The stack VMA at exec: this much is mapped (lazily); it grows down on faults.
pub const STACK_INITIAL_BYTES: u64 = 64 * 1024;
/// Free space the stack keeps below itself when it grows (Linux: `stack_guard_gap`).
pub const STACK_GUARD_GAP_BYTES: u64 = 64 * 1024;
/// The most the stack may grow to.
pub const STACK_MAX_BYTES: u64 = 8 << 20;
/// The largest heap `brk` gives.
pub const BRK_MAX_BYTES: u64 = 1 << 30;

/// Why an address-space operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmError {
    /// A bad argument: unaligned, zero length, unknown flags (EINVAL).
    Invalid,
    /// No room in the address space, outside the user range, or no memory (ENOMEM).
    NoMemory,
    /// The operation is not supported (for example a file-backed mmap) (ENODEV).
    Unsupported,
}

impl From<VmaError> for VmError {
    fn from(e: VmaError) -> Self {
        match e {
            VmaError::Unaligned | VmaError::Empty | VmaError::OutOfRange => VmError::Invalid,
            VmaError::Overlap | VmaError::NotFound | VmaError::NoSpace => VmError::NoMemory,
        }
    }
}

/// Per-address-space counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct AsStats {
    /// Pages mapped to a frame of their own (the shared zero page does not count).
    pub rss_pages: u64,
    /// Faults resolved without I/O.
    pub minor_faults: u64,
    /// Faults that read from swap.
    pub major_faults: u64,
    /// Write faults that copied (or reclaimed) a shared page.
    pub cow_faults: u64,
    /// Pages of this space that are in swap (swap PTEs).
    pub swap_pages: u64,
    /// PTEs of this space turned into swap entries by eviction.
    pub swap_out_pages: u64,
    /// Swap PTEs of this space mapped back to a frame (read from disk or found in
    /// the swap cache).
    pub swap_in_pages: u64,
}

/// Flags of an mmap request.
#[derive(Clone, Copy, Debug, Default)]
pub struct MapRequest {
    /// MAP_SHARED: share the pages with children after fork (not copy-on-write).
    pub is_shared: bool,
    /// MAP_FIXED: use the address exactly, replacing what is there.
    pub is_fixed: bool,
}

/// A user address space.
pub struct AddressSpace {
    /// Its name in the registry.
    id: SpaceId,
    /// Its fork family: the spaces that may share its anonymous frames.
    family: FamilyId,
    /// The page table (PML4 with the kernel half shared).
    pub(super) pt: PageTable,
    /// The licence to change `pt` through the direct map (see `paging::new_user_tree`);
    /// it came with the tree, and is used with this space's trees only.
    pub(super) tables: DirectMapTables,
    /// What may be mapped, and how.
    pub(super) vmas: VmaTree,
    /// Counters shown by memstat and maps.
    pub stats: AsStats,
    /// Start of the heap (end of the program image).
    pub(super) brk_start: VirtAddr,
    /// Current end of the heap.
    pub(super) brk_end: VirtAddr,
    /// The PCID tagging this space's TLB entries (when the CPU has PCIDs).
    pcid: u16,
    /// True if a change was made while another space was loaded: with PCIDs the TLB
    /// may still hold old entries tagged with `pcid`, so the next load must flush them.
    tlb_stale: AtomicBool,
}

/// The next PCID to hand out (1..=4095; 0 is the kernel's).
static NEXT_PCID: AtomicU16 = AtomicU16::new(0);

/// Returns the leaf flags for a user page of a VMA with `prot`.
///
/// PROT_NONE pages keep a present entry without USER, so their contents survive
/// until the protection is restored; user accesses fault and the VMA check refuses.
pub fn leaf_flags_for(prot: VmProt) -> PteFlags {
    let mut flags = PteFlags::PRESENT;
    if prot != VmProt::NONE {
        flags |= PteFlags::USER;
    }
    if prot.contains(VmProt::WRITE) {
        flags |= PteFlags::WRITABLE;
    }
    if !prot.contains(VmProt::EXEC) {
        flags |= PteFlags::NO_EXECUTE;
    }
    flags
}

/// Drops the page reference held by one unmapped leaf of a space of `family`.
pub(super) fn release_leaf(leaf: LeafEntry, stats: &mut AsStats, family: FamilyId) {
    if leaf.pte.is_present() {
        let frame = leaf.pte.frame();
        if frame != super::fault::zero_frame() {
            stats.rss_pages -= 1;
            let is_dirty = leaf.pte.flags().contains(PteFlags::DIRTY);
            rmap::unmap(frame, FamilyPage { family, page: Page::containing_address(leaf.addr) }, is_dirty);
        }
    } else {
        let entry = leaf.pte.as_swap().unwrap_or_else(|| panic!("release_leaf: unknown non-present PTE {:?}", leaf.pte));
        stats.swap_pages -= 1;
        super::swap::put_swap_pte(entry);
    }
}

/// Checks that `[addr, addr + len)` is page aligned, non-empty and in the user half.
fn user_range(addr: u64, len: u64) -> Result<(VirtAddr, VirtAddr), VmError> {
    if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
        return Err(VmError::Invalid);
    }
    let len = len.checked_next_multiple_of(PAGE_SIZE).ok_or(VmError::Invalid)?;
    let end = addr.checked_add(len).ok_or(VmError::NoMemory)?;
    if end > USER_END {
        return Err(VmError::NoMemory);
    }
    Ok((VirtAddr::new(addr), VirtAddr::new(end)))
}

impl AddressSpace {
    /// Creates an empty address space sharing the kernel half, registered in a new
    /// fork family (see the module docs): a process of its own (spawn, exec).
    pub fn new() -> Result<SpaceRef, VmError> {
        Self::new_in(None)
    }

    /// Creates an empty address space in `parent`'s fork family, for `cow::fork`.
    pub fn new_forked(parent: &AddressSpace) -> Result<SpaceRef, VmError> {
        Self::new_in(Some(parent.family))
    }

    /// Creates an empty space registered in `family`, or in a new family if `None`.
    fn new_in(family: Option<FamilyId>) -> Result<SpaceRef, VmError> {
        let (pt, tables) = paging::new_user_tree().ok_or(VmError::NoMemory)?;
        let pcid = NEXT_PCID.fetch_add(1, Ordering::Relaxed) % 4095 + 1;
        let id = rmap::new_space_id();
        // Registered while being built: the registry holds a weak reference, which
        // cannot be upgraded before the space exists.
        let space = SpaceRef::new_cyclic(|weak| crate::sync::IrqMutex::new(Self {
            id,
            family: rmap::register(id, weak.clone(), family),
            pt,
            tables,
            vmas: VmaTree::new(),
            stats: AsStats::default(),
            brk_start: VirtAddr::new(0),
            brk_end: VirtAddr::new(0),
            pcid,
            // A PCID may have been used by a space that is gone: flush on first load.
            tlb_stale: AtomicBool::new(true),
        }));
        Ok(space)
    }

    /// Returns this space's id in the registry.
    pub fn id(&self) -> SpaceId {
        self.id
    }

    /// Returns this space's fork family.
    pub fn family(&self) -> FamilyId {
        self.family
    }

    /// Returns where a frame mapped at `page` of this space sits in the reverse map:
    /// this space's family, and `page`.
    pub fn family_page(&self, page: Page) -> FamilyPage {
        FamilyPage { family: self.family, page }
    }

    /// Returns what CR3 must get to load this space: root, PCID, and whether the TLB
    /// entries tagged with the PCID may be kept (no change was missed since the last load).
    pub fn activation(&self) -> (Frame, u16, bool) {
        let is_stale = self.tlb_stale.swap(false, Ordering::Relaxed);
        (self.pt.root(), self.pcid, !is_stale)
    }

    /// Returns the PML4 frame, for CR3.
    pub fn root(&self) -> Frame {
        self.pt.root()
    }

    /// Returns the PTE of the page containing `addr` (present, swap or unused), or
    /// `None` if no page table covers it.
    pub fn pte(&self, addr: VirtAddr) -> Option<super::paging::Pte> {
        self.pt.entry(&self.tables, Page::containing_address(addr))
    }

    /// Writes the level-1 entry of `page` (present, swap, or unused), flushes the
    /// old translation, and returns the old entry. Tables are created as needed.
    ///
    /// For the swap paths, which keep the reverse map, the frame counts and the RSS
    /// and swap counters themselves.
    pub fn replace_pte(&mut self, page: Page, pte: super::paging::Pte) -> super::paging::Pte {
        let (old, flush) = self
            .pt
            .set_entry(&mut self.tables, page, pte)
            .unwrap_or_else(|e| panic!("replace_pte: {page:?}: {e:?} (the old entry's tables exist)"));
        if old.is_present() {
            self.flush_one(flush);
        } else {
            flush.ignore();
        }
        old
    }

    /// Returns the VMA tree.
    pub fn vmas(&self) -> &VmaTree {
        &self.vmas
    }

    /// Returns true if CR3 holds this space now (its TLB entries must be flushed).
    fn is_current(&self) -> bool {
        tlb::current_root().0 == self.pt.root()
    }

    /// Honours a batch of flushes if this space is loaded. Otherwise no TLB entry of
    /// it is in use; with PCIDs some may still be cached, so the next load flushes.
    pub(super) fn flush(&self, batch: FlushBatch) {
        let plan = batch.into_plan();
        if self.is_current() {
            tlb::flush_plan(plan);
        } else {
            self.tlb_stale.store(true, Ordering::Relaxed);
        }
    }

    /// Honours one flush token (see [`flush`](Self::flush)).
    pub(super) fn flush_one(&self, token: mm_core::pagetable::Flush) {
        if self.is_current() {
            tlb::flush(token);
        } else {
            self.tlb_stale.store(true, Ordering::Relaxed);
        }
    }

    /// Inserts a VMA (used by the ELF loader and the stack setup).
    pub fn insert_vma(&mut self, vma: Vma) -> Result<(), VmError> {
        Ok(self.vmas.insert(vma)?)
    }

    /// Sets where the heap starts (just above the program image).
    pub fn set_brk_start(&mut self, addr: VirtAddr) {
        self.brk_start = addr.align_up(PAGE_SIZE);
        self.brk_end = self.brk_start;
    }

    /// Checks that `[addr, addr + len)` is a valid user range (for advice calls).
    pub fn check_range(&self, addr: u64, len: u64) -> Result<(), VmError> {
        user_range(addr, len).map(|_| ())
    }

    /// Maps `len` bytes of anonymous memory; returns the start address.
    pub fn mmap(&mut self, hint: u64, len: u64, prot: VmProt, req: MapRequest) -> Result<VirtAddr, VmError> {
        if len == 0 || (!hint.is_multiple_of(PAGE_SIZE) && req.is_fixed) {
            return Err(VmError::Invalid);
        }
        let len = len.checked_next_multiple_of(PAGE_SIZE).ok_or(VmError::NoMemory)?;
        let flags = if req.is_shared { VmFlags::SHARED } else { VmFlags::empty() };
        let start = if req.is_fixed {
            let (start, end) = user_range(hint, len)?;
            if start.as_u64() < MMAP_MIN {
                return Err(VmError::NoMemory);
            }
            self.munmap(start.as_u64(), end - start)?;
            start
        } else {
            let hint = hint & !(PAGE_SIZE - 1);
            let hinted = (hint >= MMAP_MIN)
                .then(|| user_range(hint, len).ok())
                .flatten()
                .filter(|&(s, e)| self.vmas.is_range_free(s, e));
            match hinted {
                Some((start, _)) => start,
                None => self
                    .vmas
                    .find_gap_top_down(len, PAGE_SIZE, VirtAddr::new(MMAP_MIN), VirtAddr::new(MMAP_TOP))
                    .ok_or(VmError::NoMemory)?,
            }
        };
        self.vmas.insert(Vma::new(start, start + len, prot, flags, Backing::Anonymous))?;
        Ok(start)
    }

    /// Unmaps `[addr, addr + len)`: VMAs are cut, pages released, empty tables freed.
    pub fn munmap(&mut self, addr: u64, len: u64) -> Result<(), VmError> {
        let (start, end) = user_range(addr, len)?;
        let removed = self.vmas.unmap_range(start, end)?;
        let mut batch = FlushBatch::new();
        for piece in removed {
            self.unmap_pages(piece.start, piece.end, &mut batch);
        }
        self.flush(batch);
        Ok(())
    }

    /// Removes the PTEs of `[start, end)` and releases their pages (VMAs untouched).
    fn unmap_pages(&mut self, start: VirtAddr, end: VirtAddr, batch: &mut FlushBatch) {
        let (stats, family) = (&mut self.stats, self.family);
        let nr_pages = (end - start) / PAGE_SIZE;
        self.pt
            .unmap_range(&mut self.tables, Page::containing_address(start), nr_pages, batch, |leaf| {
                release_leaf(leaf, stats, family)
            })
            .expect("munmap: user mappings are 4 KiB pages");
    }

    /// Changes the protection of `[addr, addr + len)`; the whole range must be mapped.
    ///
    /// Existing PTEs are narrowed at once (write permission removed, execute and
    /// user access set from the new protection) and flushed from the TLB. Write
    /// permission is never added to a PTE here: the next write faults and
    /// `do_wp_fault` grants it, copying first if the page is shared.
    pub fn mprotect(&mut self, addr: u64, len: u64, prot: VmProt) -> Result<(), VmError> {
        let (start, end) = user_range(addr, len)?;
        let changed = self.vmas.protect_range(start, end, prot)?;
        let target = leaf_flags_for(prot);
        let mut batch = FlushBatch::new();
        for piece in changed {
            let nr_pages = piece.nr_pages();
            let page = Page::containing_address(piece.start);
            self.pt.update_leaves(&mut self.tables, page, nr_pages, &mut batch, |leaf| {
                if !leaf.pte.is_present() {
                    return mm_core::pagetable::LeafAction::Keep;
                }
                let old = leaf.pte.flags();
                let mut flags = (old - (PteFlags::USER | PteFlags::NO_EXECUTE | PteFlags::WRITABLE))
                    | (target - PteFlags::WRITABLE);
                if !target.contains(PteFlags::WRITABLE) {
                    flags.remove(PteFlags::COW);
                } else if old.contains(PteFlags::WRITABLE) {
                    flags.insert(PteFlags::WRITABLE);
                }
                let mut pte = leaf.pte;
                pte.set_flags(flags);
                mm_core::pagetable::LeafAction::Replace(pte)
            });
        }
        self.flush(batch);
        Ok(())
    }

    /// MADV_DONTNEED: drops the pages of `[addr, addr + len)`; the VMAs stay, so the
    /// next touch faults in a zero page (anonymous) or the image bytes again.
    pub fn madvise_dontneed(&mut self, addr: u64, len: u64) -> Result<(), VmError> {
        let (start, end) = user_range(addr, len)?;
        let pieces: alloc::vec::Vec<(VirtAddr, VirtAddr)> = self
            .vmas
            .iter()
            .filter(|v| v.start < end && v.end > start)
            .map(|v| (v.start.max(start), v.end.min(end)))
            .collect();
        let mut batch = FlushBatch::new();
        for (s, e) in pieces {
            self.unmap_pages(s, e, &mut batch);
        }
        self.flush(batch);
        Ok(())
    }

    /// Returns the distinct frames mapped in `[addr, addr + len)` (the zero page not
    /// included), for MADV_PAGEOUT; only pages inside VMAs count.
    pub fn resident_frames(&self, addr: u64, len: u64) -> Result<alloc::vec::Vec<Frame>, VmError> {
        let (start, end) = user_range(addr, len)?;
        let zero = super::fault::zero_frame();
        let mut frames = alloc::collections::BTreeSet::new();
        for vma in self.vmas.iter().filter(|v| v.start < end && v.end > start) {
            let (s, e) = (vma.start.max(start), vma.end.min(end));
            self.pt.for_each_leaf(&self.tables, Page::containing_address(s), (e - s) / PAGE_SIZE, |leaf| {
                if leaf.pte.is_present() && leaf.pte.frame() != zero {
                    frames.insert(leaf.pte.frame());
                }
            });
        }
        Ok(frames.into_iter().collect())
    }

    /// Sets the heap's end to `new_end` (0 asks for the current end); returns the end
    /// in force afterwards, which is the old one if the request could not be met.
    pub fn brk(&mut self, new_end: u64) -> VirtAddr {
        let new_end = VirtAddr::new_truncate(new_end).align_up(PAGE_SIZE);
        let (start, old_end) = (self.brk_start, self.brk_end);
        if new_end.as_u64() == 0 || new_end < start || new_end - start > BRK_MAX_BYTES {
            return old_end;
        }
        if new_end > old_end {
            if !self.vmas.is_range_free(old_end, new_end) {
                return old_end;
            }
            let heap = Vma::new(old_end, new_end, VmProt::READ_WRITE, VmFlags::HEAP, Backing::Anonymous);
            if self.vmas.insert(heap).is_err() {
                return old_end;
            }
        } else if new_end < old_end && self.munmap(new_end.as_u64(), old_end - new_end).is_err() {
            return old_end;
        }
        self.brk_end = new_end;
        new_end
    }

    /// Returns the maps text, one line a VMA, like `/proc/self/maps`.
    pub fn maps_text(&self) -> String {
        let mut text = String::new();
        for vma in self.vmas.iter() {
            let _ = writeln!(text, "{vma}");
        }
        text
    }

    /// Calls `visit_fn` with every used leaf of the user half (present or swap), in
    /// address order.
    pub fn for_each_user_leaf(&self, mut visit_fn: impl FnMut(Page, super::paging::Pte)) {
        let start = Page::containing_address(VirtAddr::new(0));
        self.pt.for_each_leaf(&self.tables, start, USER_END / PAGE_SIZE, |leaf| {
            visit_fn(Page::containing_address(leaf.addr), leaf.pte);
        });
    }
}

impl Drop for AddressSpace {
    /// Releases every page, page table and VMA. The space must not be loaded in CR3.
    fn drop(&mut self) {
        assert!(!self.is_current(), "AddressSpace::drop: dropping the loaded address space");
        let (stats, family) = (&mut self.stats, self.family);
        let batch = self.pt.free_user_tables(&mut self.tables, |leaf| release_leaf(leaf, stats, family));
        let _ = batch.into_plan(); // not loaded: no TLB holds its entries
        // `PageTable` has no destructor: swap in a dummy handle and free the real root.
        let root = core::mem::replace(&mut self.pt, PageTable::from_root(Frame::from_pfn(0)));
        root.free_root(&mut self.tables);
        debug_assert_eq!(self.stats.rss_pages, 0, "AddressSpace::drop: RSS counter drifted");
        rmap::unregister(self.family, self.id);
    }
}
