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
//! | [`madvise_dontneed`](AddressSpace::madvise_dontneed) | drops private pages; the next touch sees zeros (shared pages keep their contents) |
//! | [`madvise_free`](AddressSpace::madvise_free) | MADV_FREE: private anonymous pages stay until reclaim drops them (if not written again) |
//! | [`madvise_set_mergeable`](AddressSpace::madvise_set_mergeable) | MADV_MERGEABLE/UNMERGEABLE: same-page merging may (not) merge the range's pages (`ksm.rs`) |
//! | [`madvise_set_dontfork`](AddressSpace::madvise_set_dontfork) | MADV_DONTFORK/DOFORK: the VMA is (not) given to fork children |
//! | `pageout` (in `reclaim.rs`) | MADV_PAGEOUT: swaps the range's pages out now |
//! | [`brk`](AddressSpace::brk) | grows or shrinks the heap VMA |
//! | `fork` (in `cow.rs`) | copy-on-write duplicate |
//!
//! Every operation validates its arguments before it changes anything, with the
//! errno Linux gives for each bad argument (mmap(2), munmap(2), mprotect(2),
//! madvise(2), brk(2)); `docs/linux-differences.md` lists what still differs.
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
use core::sync::atomic::{AtomicU64, Ordering};

use mm_core::pagetable::{FlushBatch, LeafEntry, PageTable};
use mm_core::pcid::{OVERFLOW_PCID, PcidAllocator};
pub use mm_core::fault::leaf_flags_for;
pub use mm_core::vma::{Backing, Vma, VmaError, VmaTree, VmFlags, VmProt};

use super::layout::{USER_END, USER_MAP_END};
use super::rmap::{self, FamilyId, FamilyPage, SpaceId, SpaceRef};
use super::frame::FrameFlags;
use super::paging::{self, DirectMapTables, PteFlags};
use super::{Frame, PAGE_SIZE, Page, VirtAddr};
use crate::arch::{shootdown, tlb};

mod gather;
use gather::UnmapGather;

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
    /// A fixed mapping below [`MMAP_MIN`] (EPERM, as Linux's `mmap_min_addr`).
    Permission,
    /// `MAP_FIXED_NOREPLACE` over an existing mapping (EEXIST).
    Exists,
}

impl From<VmaError> for VmError {
    fn from(e: VmaError) -> Self {
        match e {
            VmaError::Unaligned | VmaError::Empty | VmaError::OutOfRange => VmError::Invalid,
            VmaError::Overlap | VmaError::NotFound | VmaError::NoSpace | VmaError::TooMany => VmError::NoMemory,
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
    /// Transparent huge pages mapped whole (each also counts 512 pages of RSS);
    /// `/proc`'s AnonHugePages is this times 2048 kB.
    pub anon_huge_pages: u64,
}

/// Flags of an mmap request.
#[derive(Clone, Copy, Debug, Default)]
pub struct MapRequest {
    /// MAP_SHARED: share the pages with children after fork (not copy-on-write).
    pub is_shared: bool,
    /// MAP_FIXED: use the address exactly, replacing what is there.
    pub is_fixed: bool,
    /// MAP_FIXED_NOREPLACE: use the address exactly, fail if anything is there.
    pub is_noreplace: bool,
    /// MAP_POPULATE: fault every page in now.
    pub is_populate: bool,
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
    /// Its working-set estimate and fault frequency (see `mm::wss`).
    pub wss: super::wss::WsState,
    /// Its memory group (`mm::memcg`; 0: the root group, unlimited). Copied by fork.
    pub memcg: super::memcg::GroupId,
    /// Tasks whose space this is (its threads, and a `CLONE_VM` child such as a
    /// vfork's): Linux's `mm_users` without the short-lived holders (reclaim, a
    /// `process_vm_readv`). The last one's exit unmaps everything
    /// ([`unmap_everything`](Self::unmap_everything)); kept by `proc`.
    pub nr_tasks: u32,
    /// Start of the heap (end of the program image).
    pub(super) brk_start: VirtAddr,
    /// Current end of the heap.
    pub(super) brk_end: VirtAddr,
    /// The PCID tagging this space's TLB entries (when the CPU has PCIDs).
    pcid: u16,
    /// Which CPUs may cache this space's translations, for TLB shootdown
    /// (`arch::shootdown`): who has it loaded, who had it, who must flush.
    tlb: TlbCpus,
}

/// The CPUs that may cache an address space's translations (bit n: CPU n).
///
/// ```text
///  active:   CR3 holds the space now       -> a change sends it an IPI and waits
///  may_hold: loaded it since its last flush -> a change marks it stale, no IPI (lazy)
///  stale:    must flush the space's PCID at its next load (a change it missed;
///            all bits at creation: a reused PCID may have old entries anywhere)
/// ```
struct TlbCpus {
    active: AtomicU64,
    may_hold: AtomicU64,
    stale: AtomicU64,
}

/// The PCIDs of the live address spaces (0 is the kernel's): no two share one.
static PCIDS: crate::sync::IrqMutex<PcidAllocator> = crate::sync::IrqMutex::new_ranked(crate::sync::LockRank::Pcids, PcidAllocator::new());

/// Drops the page reference held by one unmapped leaf of a space of `family`.
pub(super) fn release_leaf(leaf: LeafEntry, stats: &mut AsStats, family: FamilyId) {
    if leaf.size != mm_core::pagetable::PageSize::Size4KiB {
        super::thp::release_huge_leaf(leaf, stats, family);
    } else if leaf.pte.is_present() {
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

/// Returns the range `madvise(addr, len)` acts on, Linux's way: `addr` page aligned
/// (else EINVAL), `len` rounded up to pages (EINVAL if that overflows), `None` for
/// an empty range (madvise then succeeds doing nothing). The end may lie beyond the
/// mappable part of the user half ([`USER_MAP_END`]): that part is unmapped, so the
/// call reports ENOMEM after acting.
fn advice_range(addr: u64, len: u64) -> Result<Option<(VirtAddr, VirtAddr)>, VmError> {
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(VmError::Invalid);
    }
    let len = len.checked_next_multiple_of(PAGE_SIZE).ok_or(VmError::Invalid)?;
    let end = addr.checked_add(len).ok_or(VmError::Invalid)?;
    if len == 0 {
        return Ok(None);
    }
    if addr >= USER_MAP_END {
        return Err(VmError::NoMemory);
    }
    Ok(Some((VirtAddr::new(addr), VirtAddr::new(end.min(USER_MAP_END)))))
}

/// Checks that `[addr, addr + len)` is page aligned, non-empty and in the mappable
/// part of the user half (below [`USER_MAP_END`]).
pub(super) fn user_range(addr: u64, len: u64) -> Result<(VirtAddr, VirtAddr), VmError> {
    if !addr.is_multiple_of(PAGE_SIZE) || len == 0 {
        return Err(VmError::Invalid);
    }
    let len = len.checked_next_multiple_of(PAGE_SIZE).ok_or(VmError::Invalid)?;
    let end = addr.checked_add(len).ok_or(VmError::NoMemory)?;
    if end > USER_MAP_END {
        return Err(VmError::NoMemory);
    }
    Ok((VirtAddr::new(addr), VirtAddr::new(end)))
}

impl AddressSpace {
    /// Creates an empty address space sharing the kernel half, registered in a new
    /// fork family (see the module docs): a process of its own (spawn, exec).
    pub fn new() -> Result<SpaceRef, VmError> {
        Self::new_in(None, 0)
    }

    /// Creates an empty address space in `parent`'s fork family, for `cow::fork`.
    pub fn new_forked(parent: &AddressSpace) -> Result<SpaceRef, VmError> {
        // Children stay in the parent's memory group.
        Self::new_in(Some(parent.family), parent.memcg)
    }

    /// Creates an empty space registered in `family`, or in a new family if `None`,
    /// in memory group `memcg`.
    fn new_in(family: Option<FamilyId>, memcg: super::memcg::GroupId) -> Result<SpaceRef, VmError> {
        let (pt, tables) = paging::new_user_tree().ok_or(VmError::NoMemory)?;
        let pcid = PCIDS.lock().alloc();
        let id = rmap::new_space_id();
        // Registered while being built: the registry holds a weak reference, which
        // cannot be upgraded before the space exists.
        let space = SpaceRef::new_cyclic(|weak| crate::sync::IrqMutex::new_ranked(crate::sync::LockRank::AddressSpace, Self {
            id,
            family: rmap::register(id, weak.clone(), family),
            pt,
            tables,
            vmas: VmaTree::new(),
            stats: AsStats::default(),
            wss: super::wss::WsState::default(),
            memcg,
            nr_tasks: 0,
            brk_start: VirtAddr::new(0),
            brk_end: VirtAddr::new(0),
            pcid,
            // A PCID may have been used by a space that is gone: flush on first load,
            // on every CPU.
            tlb: TlbCpus { active: AtomicU64::new(0), may_hold: AtomicU64::new(0), stale: AtomicU64::new(u64::MAX) },
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
    /// A space with the shared overflow PCID is always stale: another space with the
    /// same tag may have filled the TLB since.
    ///
    /// Called by the CPU about to load it: from now on it counts as having the space
    /// loaded (`TlbCpus::active`), so a change to the space sends it a shootdown.
    pub fn activation(&self) -> (Frame, u16, bool) {
        let bit = shootdown::my_bit();
        // SeqCst: a CPU changing this space either sees us active (and sends an IPI)
        // or marks us stale before we read `stale` here (Dekker's pattern).
        self.tlb.active.fetch_or(bit, Ordering::SeqCst);
        self.tlb.may_hold.fetch_or(bit, Ordering::SeqCst);
        let is_stale = self.tlb.stale.fetch_and(!bit, Ordering::SeqCst) & bit != 0 || self.pcid == OVERFLOW_PCID;
        (self.pt.root(), self.pcid, !is_stale)
    }

    /// This CPU has just loaded another space: it no longer needs an IPI for changes
    /// to this one (its PCID-tagged entries may linger: it stays in `may_hold`).
    pub fn deactivate_on_this_cpu(&self) {
        self.tlb.active.fetch_and(!shootdown::my_bit(), Ordering::SeqCst);
    }

    /// Returns the CPUs that have this space loaded now (for tests and /proc).
    pub fn cpus_active(&self) -> u64 {
        self.tlb.active.load(Ordering::Relaxed)
    }

    /// Returns the CPUs that must flush this space's entries at their next load (for tests).
    pub fn cpus_stale(&self) -> u64 {
        self.tlb.stale.load(Ordering::Relaxed)
    }

    /// Returns the PCID tagging this space's TLB entries.
    pub fn pcid(&self) -> u16 {
        self.pcid
    }

    /// Returns the PML4 frame, for CR3.
    pub fn root(&self) -> Frame {
        self.pt.root()
    }

    /// Returns the PTE of the page containing `addr` (present, swap or unused), or
    /// `None` if no page table covers it. Inside a transparent huge page, the 4 KiB
    /// entry it stands for: that frame of the huge page, the huge leaf's flags.
    pub fn pte(&self, addr: VirtAddr) -> Option<super::paging::Pte> {
        if let Some((start, huge)) = self.pt.huge_leaf(&self.tables, addr) {
            let frame = huge.frame() + (addr - start) / PAGE_SIZE;
            return Some(super::paging::Pte::new(frame, huge.flags() - PteFlags::HUGE));
        }
        self.pt.entry(&self.tables, Page::containing_address(addr))
    }

    /// Returns the 2 MiB leaf covering `addr` (a transparent huge page), if one
    /// does: its first address and entry.
    pub fn huge_leaf(&self, addr: VirtAddr) -> Option<(VirtAddr, super::paging::Pte)> {
        self.pt.huge_leaf(&self.tables, addr)
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

    /// Clears the Accessed bit of `page`'s 4 KiB entry and returns whether it was set,
    /// or `None` if no level-1 table maps the page (a huge page: the caller clears it
    /// with [`replace_pte`](Self::replace_pte)). This is what a replacement policy's
    /// reference test needs, and like Linux's `ptep_clear_flush_young` on x86 it
    /// interrupts no other CPU: the bit goes with an atomic AND (a Dirty bit another
    /// CPU's MMU sets meanwhile stays), this CPU flushes its own entry (or marks the
    /// space stale here, as any change does), and every other CPU that may hold the
    /// space is only marked stale, to flush at its next load. A CPU running the space
    /// meanwhile may keep an entry with the bit set and not set it again until that
    /// entry goes: the page looks colder than it is, and nothing is corrupted. With a
    /// shootdown per page, two CPUs reclaiming waited for each other's flushes under
    /// the policy lock (chapter 19).
    pub fn test_and_clear_young(&mut self, page: Page) -> Option<bool> {
        let slot = self.pt.leaf_slot(&self.tables, page)?;
        let was_young = slot.test_and_clear_accessed(&mut self.tables);
        if was_young {
            let me = shootdown::my_bit();
            if self.is_current() {
                tlb::flush_page(page.start_address());
            } else {
                self.tlb.stale.fetch_or(me, Ordering::SeqCst);
            }
            let others = self.tlb.may_hold.load(Ordering::SeqCst) & !me;
            if others != 0 {
                self.tlb.stale.fetch_or(others, Ordering::SeqCst);
            }
        }
        Some(was_young)
    }

    /// Returns the VMA tree.
    pub fn vmas(&self) -> &VmaTree {
        &self.vmas
    }

    /// Returns true if CR3 holds this space now (its TLB entries must be flushed).
    fn is_current(&self) -> bool {
        tlb::current_root().0 == self.pt.root()
    }

    /// Honours a batch of flushes: here if this space is loaded, on the other CPUs
    /// that have it loaded by a shootdown (one IPI each, waited for), and lazily
    /// (marked stale, flushed at their next load) on those that had it loaded.
    pub(super) fn flush(&self, batch: FlushBatch) {
        let mut buffer = [VirtAddr::new(0); shootdown::MAX_PAGES];
        if let Some(flushes) = shootdown::Flushes::of_plan(batch.into_plan(), &mut buffer) {
            self.flush_everywhere(flushes);
        }
    }

    /// Honours one flush token (see [`flush`](Self::flush)).
    pub(super) fn flush_one(&self, token: mm_core::pagetable::Flush) {
        self.flush_everywhere(shootdown::Flushes::Pages(&[token.into_inner()]));
    }

    fn flush_everywhere(&self, flushes: shootdown::Flushes<'_>) {
        let me = shootdown::my_bit();
        if self.is_current() {
            flushes.flush_locally();
        } else {
            self.tlb.stale.fetch_or(me, Ordering::SeqCst);
        }
        if crate::arch::smp::nr_online() <= 1 {
            return;
        }
        let others = !me;
        let active = self.tlb.active.load(Ordering::SeqCst) & others;
        let lazy = self.tlb.may_hold.load(Ordering::SeqCst) & others & !active;
        if lazy != 0 {
            self.tlb.stale.fetch_or(lazy, Ordering::SeqCst);
            shootdown::count_lazy_skips(lazy.count_ones());
        }
        shootdown::shoot(active, Some(self.pt.root()), Some(&self.tlb.stale), flushes);
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

    /// Checks an advice range (see [`advice_range`]) and returns what madvise acts
    /// on: `None` for nothing (length 0), else the range and whether every page of
    /// it is mapped (if not, the call acts on the mapped part and fails with ENOMEM).
    pub fn advice_range(&self, addr: u64, len: u64) -> Result<Option<(VirtAddr, VirtAddr, bool)>, VmError> {
        Ok(advice_range(addr, len)?.map(|(start, end)| (start, end, self.is_fully_mapped(start, end))))
    }

    /// Returns true if every page of `[start, end)` lies in a VMA.
    fn is_fully_mapped(&self, start: VirtAddr, end: VirtAddr) -> bool {
        let covered: u64 = self
            .vmas
            .iter()
            .filter(|v| v.start < end && v.end > start)
            .map(|v| v.end.min(end) - v.start.max(start))
            .sum();
        covered == end - start
    }

    /// Returns the VMA parts inside `[start, end)`, clipped to it.
    fn vma_parts(&self, start: VirtAddr, end: VirtAddr) -> alloc::vec::Vec<Vma> {
        self.vmas
            .iter()
            .filter(|v| v.start < end && v.end > start)
            .map(|v| {
                let (s, e) = (v.start.max(start), v.end.min(end));
                Vma::new(s, e, v.prot, v.flags, v.backing.advanced_by(s - v.start))
            })
            .collect()
    }

    /// Maps `len` bytes of anonymous memory; returns the start address.
    ///
    /// Errors as Linux: length 0 or an unaligned fixed address: EINVAL; a fixed
    /// mapping below [`MMAP_MIN`]: EPERM; beyond the user half or no gap: ENOMEM;
    /// `MAP_FIXED_NOREPLACE` over a mapping: EEXIST.
    pub fn mmap(&mut self, hint: u64, len: u64, prot: VmProt, req: MapRequest) -> Result<VirtAddr, VmError> {
        self.mmap_backed(hint, len, prot, req, Backing::Anonymous)
    }

    /// Maps `len` bytes whose pages come from `backing` (a file's page cache:
    /// `proc::mmap_file`, which also enters the space in the file rmap); the
    /// address rules are [`mmap`](Self::mmap)'s.
    pub fn mmap_backed(&mut self, hint: u64, len: u64, prot: VmProt, req: MapRequest, backing: Backing) -> Result<VirtAddr, VmError> {
        let is_fixed = req.is_fixed || req.is_noreplace;
        if len == 0 || (!hint.is_multiple_of(PAGE_SIZE) && is_fixed) {
            return Err(VmError::Invalid);
        }
        let len = len.checked_next_multiple_of(PAGE_SIZE).ok_or(VmError::NoMemory)?;
        let flags = if req.is_shared { VmFlags::SHARED } else { VmFlags::empty() };
        let start = if is_fixed {
            let end = hint.checked_add(len).filter(|&end| end <= USER_MAP_END).ok_or(VmError::NoMemory)?;
            let (start, end) = (VirtAddr::new(hint), VirtAddr::new(end));
            if start.as_u64() < MMAP_MIN {
                return Err(VmError::Permission);
            }
            if req.is_noreplace && !self.vmas.is_range_free(start, end) {
                return Err(VmError::Exists);
            }
            self.unmap_range(start, end)?;
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
        self.vmas.insert(Vma::new(start, start + len, prot, flags, backing))?;
        if req.is_populate {
            self.populate(start, start + len);
        }
        Ok(start)
    }

    /// MAP_POPULATE: faults in the pages of `[start, end)` now, as a first touch
    /// would (a write for writable and shared mappings, so no later fault is needed;
    /// PROT_NONE private pages are left, as Linux does). Best effort, as in Linux:
    /// when memory runs out the rest stays lazy and mmap still succeeds.
    fn populate(&mut self, start: VirtAddr, end: VirtAddr) {
        for part in self.vma_parts(start, end) {
            if part.prot == VmProt::NONE && !part.flags.is_shared() {
                continue;
            }
            for i in 0..part.nr_pages() {
                if super::fault::populate_page(self, part.start + i * PAGE_SIZE).is_err() {
                    return;
                }
            }
        }
    }

    /// Unmaps `[addr, addr + len)`: VMAs are cut, pages released, empty tables freed.
    ///
    /// As Linux: an unaligned address, length 0, or a range reaching outside the
    /// user half is EINVAL; unmapping a hole is not an error.
    pub fn munmap(&mut self, addr: u64, len: u64) -> Result<(), VmError> {
        let (start, end) = user_range(addr, len).map_err(|_| VmError::Invalid)?;
        self.unmap_range(start, end)
    }

    /// Unmaps the whole user half (a process's exit: Linux's `exit_mmap`): every
    /// VMA, page, swap slot and page table below the root is released, whoever else
    /// still holds the space; the root goes when the space is dropped.
    ///
    /// It allocates nothing (an exit must give memory back when there is none to
    /// spare: the VMA-by-VMA unmap collected the VMAs in a vector, and `fuzz` under
    /// memory pressure with `--smp 2` failed to allocate it): every page goes as in
    /// the space's drop, the tables with them, and the VMA tree is dropped whole.
    /// No task runs the space any more, so no CPU has it loaded; the flush marks
    /// those that had it stale.
    pub fn unmap_everything(&mut self) {
        let (stats, mut release) = (&mut self.stats, gather::ReleaseBatch::new(self.family));
        let batch = self.pt.free_user_tables(&mut self.tables, |leaf| release.push(leaf, stats));
        release.finish();
        self.flush(batch);
        drop(core::mem::replace(&mut self.vmas, VmaTree::new()));
    }

    /// Removes the VMAs of `[start, end)` (cutting those across the edges) and
    /// releases their pages.
    fn unmap_range(&mut self, start: VirtAddr, end: VirtAddr) -> Result<(), VmError> {
        // A huge page the range cuts becomes small pages first (nothing else changes
        // if that fails for want of a page table).
        super::thp::split_huge_at_edges(self, start, end).map_err(|_| VmError::NoMemory)?;
        let removed = self.vmas.unmap_range(start, end)?;
        let (mut batch, mut gather) = (FlushBatch::new(), UnmapGather::new());
        for piece in removed {
            self.gather_unmap(piece.start, piece.end, &mut batch, &mut gather);
        }
        self.flush_and_release(batch, &mut gather);
        Ok(())
    }

    /// Removes the PTEs of `[start, end)` and releases their pages, VMAs untouched
    /// (truncate of a mapped file: `file_rmap::unmap_from`), and flushes the TLB.
    pub(super) fn unmap_pages_of(&mut self, start: VirtAddr, end: VirtAddr) {
        let _ = super::thp::split_huge_at_edges(self, start, end); // file VMAs have no huge pages
        let (mut batch, mut gather) = (FlushBatch::new(), UnmapGather::new());
        self.gather_unmap(start, end, &mut batch, &mut gather);
        self.flush_and_release(batch, &mut gather);
    }

    /// Changes the protection of `[addr, addr + len)`; the whole range must be mapped.
    ///
    /// As Linux: an unaligned address is EINVAL, length 0 succeeds doing nothing, a
    /// range with a hole (or beyond the user half) is ENOMEM and changes nothing.
    ///
    /// Existing PTEs are rewritten at once, as `mm_core::fault::protect_flags` says
    /// (execute and user access from the new protection; write permission added
    /// only in a shared VMA, a private page gets it at its next write fault), and
    /// flushed from the TLB.
    pub fn mprotect(&mut self, addr: u64, len: u64, prot: VmProt) -> Result<(), VmError> {
        if !addr.is_multiple_of(PAGE_SIZE) {
            return Err(VmError::Invalid);
        }
        if len == 0 {
            return Ok(());
        }
        let (start, end) = user_range(addr, len).map_err(|_| VmError::NoMemory)?;
        // A huge page the range covers only in part is split; a whole one keeps
        // its 2 MiB leaf (`protect_flags` keeps the PS bit).
        super::thp::split_huge_at_edges(self, start, end).map_err(|_| VmError::NoMemory)?;
        let changed = self.vmas.protect_range(start, end, prot)?;
        let mut batch = FlushBatch::new();
        for piece in changed {
            // A shared file page gets write permission only at its write fault,
            // which marks it dirty (`filemap.rs`): mprotect adds none to it.
            let is_shared = piece.flags.is_shared() && !matches!(piece.backing, Backing::File { .. });
            let nr_pages = piece.nr_pages();
            let page = Page::containing_address(piece.start);
            self.pt.update_leaves(&mut self.tables, page, nr_pages, &mut batch, |leaf| {
                if !leaf.pte.is_present() {
                    return mm_core::pagetable::LeafAction::Keep;
                }
                let mut pte = leaf.pte;
                pte.set_flags(mm_core::fault::protect_flags(pte.flags(), prot, is_shared));
                mm_core::pagetable::LeafAction::Replace(pte)
            });
        }
        self.flush(batch);
        Ok(())
    }

    /// MADV_DONTNEED: drops the private pages of `[addr, addr + len)`; the VMAs
    /// stay, so the next touch faults in a zero page (anonymous) or the image bytes
    /// again. Shared pages keep their contents: in Linux they live in shmem and the
    /// next touch maps them again; here the page table is their only holder, so
    /// they stay mapped. Holes: the mapped part is done, then ENOMEM.
    pub fn madvise_dontneed(&mut self, addr: u64, len: u64) -> Result<(), VmError> {
        let Some((start, end, is_full)) = self.advice_range(addr, len)? else {
            return Ok(());
        };
        super::thp::split_huge_at_edges(self, start, end).map_err(|_| VmError::NoMemory)?;
        let parts = self.vma_parts(start, end);
        let (mut batch, mut gather) = (FlushBatch::new(), UnmapGather::new());
        for part in parts.iter().filter(|p| !p.flags.is_shared()) {
            self.gather_unmap(part.start, part.end, &mut batch, &mut gather);
        }
        self.flush_and_release(batch, &mut gather);
        if is_full { Ok(()) } else { Err(VmError::NoMemory) }
    }

    /// MADV_FREE: the private anonymous pages of `[addr, addr + len)` may be freed,
    /// lazily, as Linux does.
    ///
    /// Each resident page this space alone holds keeps its frame and contents, but
    /// its PTE loses the Dirty bit and the frame is flagged `LAZYFREE` (with a TLB
    /// flush, so the CPU sets Dirty again on the next write). Reclaim then drops such
    /// a frame without writing it to swap if its PTE is still clean, and the next
    /// touch sees a zero page; a page written again after the advice is swapped like
    /// any other (`swap/evict.rs`). Pages in swap and zero-page mappings are dropped
    /// now; pages shared copy-on-write or in the swap cache are left as they are
    /// (Linux skips shared ones too). Any other kind of VMA in the range is EINVAL,
    /// as in Linux, and then nothing is done.
    pub fn madvise_free(&mut self, addr: u64, len: u64) -> Result<(), VmError> {
        let Some((start, end, is_full)) = self.advice_range(addr, len)? else {
            return Ok(());
        };
        let parts = self.vma_parts(start, end);
        if parts.iter().any(|p| p.flags.is_shared() || !p.is_anonymous()) {
            return Err(VmError::Invalid);
        }
        super::thp::split_huge_in(self, start, end).map_err(|_| VmError::NoMemory)?;
        let zero = super::fault::zero_frame();
        let mut to_drop: alloc::vec::Vec<VirtAddr> = alloc::vec::Vec::new();
        let mut batch = FlushBatch::new();
        for part in &parts {
            let page = Page::containing_address(part.start);
            self.pt.update_leaves(&mut self.tables, page, part.nr_pages(), &mut batch, |leaf| {
                if !leaf.pte.is_present() || leaf.pte.frame() == zero {
                    to_drop.push(leaf.addr);
                    return mm_core::pagetable::LeafAction::Keep;
                }
                let frame = leaf.pte.frame();
                let is_in_swap_cache = super::frame::with_desc(frame, |d| d.has_flags(FrameFlags::SWAP_CACHE));
                if is_in_swap_cache || !rmap::is_exclusive(frame) {
                    return mm_core::pagetable::LeafAction::Keep;
                }
                super::frame::with_desc(frame, |d| d.insert_flags(FrameFlags::LAZYFREE));
                let mut pte = leaf.pte;
                pte.remove_flags(PteFlags::DIRTY);
                mm_core::pagetable::LeafAction::Replace(pte)
            });
        }
        let mut gather = UnmapGather::new();
        for addr in to_drop {
            self.gather_unmap(addr, addr + PAGE_SIZE, &mut batch, &mut gather);
        }
        self.flush_and_release(batch, &mut gather);
        if is_full { Ok(()) } else { Err(VmError::NoMemory) }
    }

    /// MADV_DONTFORK (`is_dontfork`) or MADV_DOFORK: marks the VMAs of the range so
    /// that `fork` leaves them out of the child (or gives them again). Holes: the
    /// mapped part is marked, then ENOMEM.
    pub fn madvise_set_dontfork(&mut self, addr: u64, len: u64, is_dontfork: bool) -> Result<(), VmError> {
        let Some((start, end, _)) = self.advice_range(addr, len)? else {
            return Ok(());
        };
        let (set, clear) = if is_dontfork {
            (VmFlags::DONT_FORK, VmFlags::empty())
        } else {
            (VmFlags::empty(), VmFlags::DONT_FORK)
        };
        let is_full = self.vmas.update_flags(start, end, set, clear)?;
        if is_full { Ok(()) } else { Err(VmError::NoMemory) }
    }

    /// MADV_HUGEPAGE (`is_huge`) or MADV_NOHUGEPAGE: marks the VMAs of the range so
    /// that write faults map transparent huge pages there (in `thp=madvise` mode),
    /// or never do; NOHUGEPAGE also splits the huge pages already in the range.
    /// Holes: the mapped part is marked, then ENOMEM.
    pub fn madvise_set_hugepage(&mut self, addr: u64, len: u64, is_huge: bool) -> Result<(), VmError> {
        let Some((start, end, _)) = self.advice_range(addr, len)? else {
            return Ok(());
        };
        let (set, clear) = if is_huge {
            (VmFlags::HUGEPAGE, VmFlags::NO_HUGEPAGE)
        } else {
            super::thp::split_huge_in(self, start, end).map_err(|_| VmError::NoMemory)?;
            (VmFlags::NO_HUGEPAGE, VmFlags::HUGEPAGE)
        };
        let is_full = self.vmas.update_flags(start, end, set, clear)?;
        if is_full { Ok(()) } else { Err(VmError::NoMemory) }
    }

    /// MADV_MERGEABLE (`is_mergeable`) or MADV_UNMERGEABLE: marks the VMAs of the
    /// range so that same-page merging scans them (`ksm.rs`: private anonymous
    /// ones only), or unmarks them after giving each merged page of the range its
    /// own copy again. Holes: the mapped part is done, then ENOMEM.
    pub fn madvise_set_mergeable(&mut self, addr: u64, len: u64, is_mergeable: bool) -> Result<(), VmError> {
        let Some((start, end, _)) = self.advice_range(addr, len)? else {
            return Ok(());
        };
        // The VMAs are split at the range's edges: a huge page there is split first
        // (a 2 MiB leaf lies inside one VMA).
        super::thp::split_huge_at_edges(self, start, end).map_err(|_| VmError::NoMemory)?;
        let (set, clear) = if is_mergeable {
            (VmFlags::MERGEABLE, VmFlags::empty())
        } else {
            super::ksm::unmerge_range(self, start, end)?;
            (VmFlags::empty(), VmFlags::MERGEABLE)
        };
        let is_full = self.vmas.update_flags(start, end, set, clear)?;
        if is_full { Ok(()) } else { Err(VmError::NoMemory) }
    }

    /// Checks the range of an advice that changes nothing here (the access-pattern
    /// hints, WILLNEED): 0, or ENOMEM if part of it is unmapped.
    pub fn madvise_hint(&self, addr: u64, len: u64) -> Result<(), VmError> {
        match self.advice_range(addr, len)? {
            Some((_, _, false)) => Err(VmError::NoMemory),
            _ => Ok(()),
        }
    }

    /// Returns the distinct frames mapped in `[addr, addr + len)` (the zero page not
    /// included), in the order of their addresses, for MADV_PAGEOUT; only pages
    /// inside VMAs count.
    ///
    /// Address order matters: swap-out gives a batch adjacent slots in this order,
    /// and swap-in's readahead reads the slots *after* a faulting one, so a range
    /// paged out in frame order (which the buddy's history can make the reverse of
    /// address order) would be read back one disk request per page.
    pub fn resident_frames(&self, addr: u64, len: u64) -> Result<alloc::vec::Vec<Frame>, VmError> {
        let (start, end) = user_range(addr, len)?;
        let zero = super::fault::zero_frame();
        let mut frames = alloc::vec::Vec::new();
        let mut seen = alloc::collections::BTreeSet::new(); // a frame mapped twice goes once
        for vma in self.vmas.iter().filter(|v| v.start < end && v.end > start) {
            let (s, e) = (vma.start.max(start), vma.end.min(end));
            self.pt.for_each_leaf(&self.tables, Page::containing_address(s), (e - s) / PAGE_SIZE, |leaf| {
                if leaf.pte.is_present() && leaf.pte.frame() != zero && seen.insert(leaf.pte.frame()) {
                    frames.push(leaf.pte.frame());
                }
            });
        }
        Ok(frames)
    }

    /// Sets the program break to `requested` (0 asks for the current one); returns
    /// the break in force afterwards, which is the old one if the request could not
    /// be met. The break is kept exactly (it need not be page-aligned); the heap VMA
    /// covers the pages up to it.
    ///
    /// An address outside the user half (bits above 47 set, say) is refused like
    /// any other unmeetable request, as Linux does; it is not truncated.
    pub fn brk(&mut self, requested: u64) -> VirtAddr {
        let (start, old_brk) = (self.brk_start, self.brk_end);
        if requested == 0 || requested > USER_END - PAGE_SIZE {
            return old_brk;
        }
        // The break itself is kept exactly as asked (Linux's `mm->brk`); the heap
        // VMA ends at the page boundary above it.
        let new_brk = VirtAddr::new(requested);
        if new_brk < start || new_brk - start > BRK_MAX_BYTES {
            return old_brk;
        }
        let (old_end, new_end) = (old_brk.align_up(PAGE_SIZE), new_brk.align_up(PAGE_SIZE));
        if new_end > old_end {
            if !self.vmas.is_range_free(old_end, new_end) {
                return old_brk;
            }
            let heap = Vma::new(old_end, new_end, VmProt::READ_WRITE, VmFlags::HEAP, Backing::Anonymous);
            if self.vmas.insert(heap).is_err() {
                return old_brk;
            }
        } else if new_end < old_end && self.unmap_range(new_end, old_end).is_err() {
            return old_brk;
        }
        self.brk_end = new_brk;
        new_brk
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
    /// address order: its first page, its entry, and its size (a 2 MiB leaf is a
    /// transparent huge page).
    pub fn for_each_user_leaf(&self, mut visit_fn: impl FnMut(Page, super::paging::Pte, mm_core::pagetable::PageSize)) {
        let start = Page::containing_address(VirtAddr::new(0));
        self.pt.for_each_leaf(&self.tables, start, USER_END / PAGE_SIZE, |leaf| {
            visit_fn(Page::containing_address(leaf.addr), leaf.pte, leaf.size);
        });
    }
}

impl Drop for AddressSpace {
    /// Releases every page, page table and VMA. The space must not be loaded in CR3.
    fn drop(&mut self) {
        assert!(!self.is_current(), "AddressSpace::drop: dropping the loaded address space");
        let (stats, mut release) = (&mut self.stats, gather::ReleaseBatch::new(self.family));
        let batch = self.pt.free_user_tables(&mut self.tables, |leaf| release.push(leaf, stats));
        release.finish();
        let _ = batch.into_plan(); // not loaded: no TLB holds its entries
        // `PageTable` has no destructor: swap in a dummy handle and free the real root.
        let root = core::mem::replace(&mut self.pt, PageTable::from_root(Frame::from_pfn(0)));
        root.free_root(&mut self.tables);
        debug_assert_eq!(self.stats.rss_pages, 0, "AddressSpace::drop: RSS counter drifted");
        rmap::unregister(self.family, self.id);
        super::file_rmap::forget_space(self.id);
        PCIDS.lock().free(self.pcid);
        // Its swap slots are free now, for the wiper; not woken from here: a
        // space may go while its dropper holds other locks (a fork that failed
        // drops the child under the parent's lock), and a wake-up takes the
        // scheduler's. See `swap::start_wiper` for who wakes it.
    }
}
