//! The page-fault handler: one entry point; the decision is `mm_core::fault::decide`.
//!
//! This file gathers the facts (the VMA, the PTE, the access; on the rows that need
//! them, the frame's counts and the swap cache's state, through [`KernelFacts`]),
//! asks `decide`, and carries out its answer (the table, with its reasons, is in
//! the `mm_core::fault` module docs, where host tests drive it against a model):
//!
//! ```text
//!  handle_page_fault(space, addr, error code)
//!    ├─ the common anonymous write and COW fault: fast::try_fault (fast.rs);
//!    │     what it refuses goes on below (handle_general), unchanged
//!    ├─ kernel address                                         -> Segv
//!    ├─ no VMA: grow the stack if it is one; then decide(VMA, access, PTE, facts):
//!    ├─ Refuse (no VMA, access not allowed)                    -> Segv
//!    ├─ MapZeroPage / MapZeroedFrame / MapImagePage (PTE empty) -> do_no_page
//!    │     (an image page comes from the VMA's backing object: backing.rs)
//!    ├─ MapFilePage (PTE empty, file VMA)                      -> filemap::do_file_fault
//!    │     maps the page-cache page; not cached: NeedsFileRead (the loop reads it)
//!    ├─ MapSwapCache / ReadFromSwap / WaitForIo (swap entry)   -> do_swap_fault
//!    │     (swap/swapin.rs) maps the cached page; or the caller reads it in, or waits
//!    ├─ MakeWritable / CopyOnWrite / ReplaceZeroPage           -> do_wp_fault (cow.rs):
//!    │     reuse if last reference or a shared VMA, else copy
//!    └─ FlushStaleTlb (PTE present, access allowed)            -> spurious: flushed
//! ```
//! No I/O, no reclaim and no waiting happens here: a page that must be read from
//! swap comes back as [`FaultError::NeedsSwapIn`], a frame that cannot be had as
//! [`FaultError::OutOfMemory`]; the retry loop ([`retry`], entered through
//! [`fault_in`]) reads the page, reclaims or calls the OOM killer with no lock held,
//! and calls [`handle_page_fault_after_read`] again. Both are `mm`'s memory policy;
//! `proc::trap` only turns what is left into a kill or an `EFAULT`.
//! The error code's bits say what was attempted (`mm_core::fault_code` decodes them):
//! [`Access::from_error_code`] reads a write or an instruction fetch from it.
//!
//! Read faults on anonymous memory map one shared, read-only zero frame, so reading
//! a huge untouched mapping costs no memory; the first write replaces it.
//! Lock state: `handle_page_fault*` enter and return with the address-space lock
//! held; [`fault_in`] with no lock held.
#![deny(unsafe_code)]

use core::fmt;

use mm_core::fault::{FaultAction, FaultFacts, FrameUse, SwapCacheLookup, decide, decide_empty};
use mm_core::pagetable::{LeafSlot, MapError};
use spin::Once;

use super::addr_space::{AddressSpace, Backing, STACK_GUARD_GAP_BYTES, STACK_MAX_BYTES, Vma, VmProt};
use super::frame::{self, FrameState};
use super::paging::{Pte, PteFlags, SwapEntry};
use super::{Frame, Order, Page, VirtAddr};
use crate::arch::tlb;
use blockdev::BlockError;

pub mod fast;
pub mod retry;
pub use fast::{FastFaults, nr_fast_faults};
pub use retry::fault_in;

pub use mm_core::fault::{Access, allows};

/// How a fault was resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultOutcome {
    /// A zeroed frame (write) was mapped.
    AnonymousPage,
    /// The shared zero frame was mapped read-only (read).
    ZeroPage,
    /// A frame was filled from the program image.
    ImagePage,
    /// A shared page was copied for the writer.
    CowCopy,
    /// The writer held the last reference: the page was made writable in place.
    CowReuse,
    /// A write to a shared mapping's page (read-only after an mprotect): made
    /// writable in place, the frame stays shared.
    SharedWrite,
    /// The stack VMA grew down to cover the address, then a page was mapped.
    StackGrowth,
    /// The PTE already allowed the access; the TLB entry was stale.
    Spurious,
    /// The page was read back from swap (a major fault).
    SwapIn,
    /// The page was still in the swap cache: mapped without I/O.
    SwapCacheHit,
    /// A zeroed 2 MiB page was mapped by one level-2 entry (`thp.rs`).
    HugePage,
    /// A page-cache page of a mapped file was mapped (`filemap.rs`).
    FilePage,
    /// A write to a private file mapping: the page-cache page was copied.
    FileCopy,
}

/// Why a fault could not be resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// The access is not allowed: the process gets killed.
    Segv(SegvReason),
    /// No frame for the page (and nothing could be reclaimed).
    OutOfMemory,
    /// The page is in swap and not in memory: read its slot into the swap cache
    /// (no lock held) and retry.
    NeedsSwapIn(SwapEntry),
    /// The page's frame is locked for I/O: let the I/O finish, then retry.
    PageLocked,
    /// Reading the page back from swap failed.
    SwapIo {
        /// The slot that could not be read.
        slot: u64,
        /// What the disk said.
        error: BlockError,
    },
    /// The process was killed (by the OOM killer) while its fault waited.
    Killed,
    /// A file page not in the page cache: read it (no lock held) and retry.
    NeedsFileRead {
        /// The page cache's id.
        cache: u32,
        /// The page's index in the file.
        index: u64,
    },
    /// An access to a file mapping's page wholly past the end of the file (Linux: SIGBUS).
    BeyondEof {
        /// The faulting page.
        addr: VirtAddr,
        /// The file's size in bytes.
        size: u64,
    },
    /// Reading a mapped file's page failed.
    FileIo(crate::fs::FsError),
}

/// The details of a bad access, for the kill message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegvReason {
    /// The faulting address.
    pub addr: VirtAddr,
    /// What was attempted.
    pub access: Access,
    /// The VMA containing the address, if any.
    pub vma: Option<(VirtAddr, VirtAddr, VmProt)>,
}

impl fmt::Display for SegvReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:#x}", self.access.verb(), self.addr.as_u64())?;
        match self.vma {
            Some((start, end, prot)) => write!(f, " in {prot} VMA [{:#x},{:#x})", start.as_u64(), end.as_u64()),
            None if !self.addr.is_lower_half() => write!(f, " (a kernel address)"),
            None => write!(f, " (no VMA there)"),
        }
    }
}

static ZERO_FRAME: Once<Frame> = Once::new();

/// Returns the shared zero frame (allocated on first use, never freed).
pub fn zero_frame() -> Frame {
    *ZERO_FRAME.call_once(|| frame::alloc_zeroed(Order(0), FrameState::Kernel).expect("fault: no frame for the zero page"))
}

fn segv(addr: VirtAddr, access: Access, vma: Option<&Vma>) -> FaultError {
    FaultError::Segv(SegvReason { addr, access, vma: vma.map(|v| (v.start, v.end, v.prot)) })
}

/// The kernel's answers to the decision table's questions (`mm_core::fault::FaultFacts`),
/// read from the frame table and the swap cache.
pub struct KernelFacts;

impl FaultFacts for KernelFacts {
    fn is_zero_page(&self, frame: Frame) -> bool {
        frame == zero_frame()
    }

    fn frame_use(&self, frame: Frame) -> FrameUse {
        super::rmap::frame_use(frame)
    }

    fn swap_cache(&self, entry: SwapEntry) -> SwapCacheLookup {
        super::swap::cache_lookup(entry)
    }
}

/// Resolves a page fault at `addr` in `space`.
pub fn handle_page_fault(space: &mut AddressSpace, addr: VirtAddr, error_code: u64) -> Result<FaultOutcome, FaultError> {
    handle_page_fault_after_read(space, addr, error_code, None)
}

/// Resolves a page fault after the caller read `read` into the swap cache for it
/// (so a swap-cache hit on that entry is the end of a major fault). The common
/// cases go through the fast path (`fast.rs`); the rest, and whatever it refuses,
/// through the decision tree of the module docs.
#[inline]
pub fn handle_page_fault_after_read(
    space: &mut AddressSpace,
    addr: VirtAddr,
    error_code: u64,
    read: Option<SwapEntry>,
) -> Result<FaultOutcome, FaultError> {
    if read.is_none()
        && let Some(result) = fast::try_fault(space, addr, error_code, None)
    {
        return result;
    }
    handle_general(space, addr, error_code, read)
}

/// [`handle_page_fault_after_read`] for what the fast path left: the decision tree.
#[inline(never)]
fn handle_general(space: &mut AddressSpace, addr: VirtAddr, error_code: u64, read: Option<SwapEntry>) -> Result<FaultOutcome, FaultError> {
    let access = Access::from_error_code(error_code);
    if !addr.is_lower_half() {
        return Err(segv(addr, access, None));
    }
    let mut grew = false;
    let vma = match space.vmas.find_copy(addr) {
        Some(vma) => Some(vma),
        None => {
            grew = true;
            grow_stack(space, addr)
        }
    };
    let page = Page::containing_address(addr);
    // One walk for the common case: a level-1 entry exists, so no 2 MiB leaf covers
    // the page. Only when the walk stops above level 1 can a huge leaf be there.
    // The slot is kept to write the entry back without a second walk: nothing below
    // frees or replaces the level-1 table while this space's lock is held.
    let mut slot = space.pt.leaf_slot(&space.tables, page);
    let pte = slot.map(|slot| slot.read(&space.tables));
    let huge_leaf = if pte.is_none() { space.pt.huge_leaf(&space.tables, addr) } else { None };
    if let Some((_, huge)) = huge_leaf {
        if vma.is_some() && super::thp::leaf_allows(huge.flags(), access) {
            // The 2 MiB leaf allows the access: the TLB entry was stale.
            tlb::flush_page(addr.align_down(mm_core::addr::HUGE_PAGE_SIZE));
            space.stats.minor_faults += 1;
            return Ok(FaultOutcome::Spurious);
        }
        if vma.as_ref().is_some_and(|v| super::thp::is_huge_wp_fault(v, huge.flags(), access)) {
            // A write to a huge page fork shared: copy-on-write of the 2 MiB.
            let outcome = super::thp::do_huge_wp_fault(space, addr, huge)?;
            space.stats.minor_faults += 1;
            return Ok(if grew { FaultOutcome::StackGrowth } else { outcome });
        }
        // Something the huge leaf does not allow: decide on 4 KiB pages.
        super::thp::split_huge_leaf(space, addr).map_err(|_| FaultError::OutOfMemory)?;
    }
    if huge_leaf.is_some() {
        slot = space.pt.leaf_slot(&space.tables, page);
    }
    let pte = if huge_leaf.is_some() { slot.map(|slot| slot.read(&space.tables)) } else { pte };
    let outcome = match decide(vma.as_ref(), access, pte, &KernelFacts) {
        FaultAction::Refuse(_) => return Err(segv(addr, access, vma.as_ref())),
        FaultAction::FlushStaleTlb => {
            // The faulting space is the loaded one: flush the stale entry directly.
            tlb::flush_page(page.start_address());
            FaultOutcome::Spurious
        }
        FaultAction::ReadFromSwap(entry) => return Err(FaultError::NeedsSwapIn(entry)),
        FaultAction::WaitForIo => return Err(FaultError::PageLocked),
        FaultAction::MapSwapCache { frame, flags } => {
            let entry = pte.and_then(|pte| pte.as_swap()).expect("handle_page_fault: a swap fault on a swap PTE");
            super::swap::do_swap_fault(space, page, entry, frame, flags, read == Some(entry))?
        }
        action @ FaultAction::MapFilePage { .. } => {
            let vma = vma.expect("handle_page_fault: a VMA for a page to map");
            do_no_page(space, &vma, page, action, access)?
        }
        FaultAction::CorruptPte(pte) => panic!("handle_page_fault: {page:?}: unknown non-present PTE {pte:?}"),
        action @ (FaultAction::MakeWritable { .. } | FaultAction::ReplaceZeroPage { .. } | FaultAction::CopyOnWrite { .. }) => {
            let (slot, pte) = slot.zip(pte).expect("handle_page_fault: a write-protect fault on a present PTE");
            super::cow::do_wp_fault(space, slot, pte, action)?
        }
        action => {
            let vma = vma.expect("handle_page_fault: a VMA for a page to map");
            let huge = if may_be_huge(action, pte) { super::thp::try_huge_fault(space, &vma, addr, access) } else { None };
            match huge {
                Some(result) => result?,
                None => do_no_page_at(space, &vma, page, slot, action, access)?,
            }
        }
    };
    if outcome == FaultOutcome::SwapIn {
        space.stats.major_faults += 1;
    } else {
        space.stats.minor_faults += 1;
    }
    Ok(if grew { FaultOutcome::StackGrowth } else { outcome })
}

/// Returns true if the fault handler tries a huge page for `action` where the PTE
/// is `pte`: a fresh zeroed frame where no level-1 table exists yet (`thp.rs`
/// checks the rest).
pub(super) fn may_be_huge(action: FaultAction, pte: Option<super::paging::Pte>) -> bool {
    matches!(action, FaultAction::MapZeroedFrame { .. }) && pte.is_none()
}

/// Fills the PTE of the page at `addr` if it is empty, whatever the VMA's
/// protection allows: for MAP_POPULATE and for `fork`, which must give a shared
/// mapping's pages their frames before the two sides can touch them, even in a
/// PROT_NONE mapping. Shared and writable pages get their own frame (a write
/// fault), others what a read would map. A PTE already in use is left alone.
pub fn populate_page(space: &mut AddressSpace, addr: VirtAddr) -> Result<(), FaultError> {
    let Some(vma) = space.vmas.find(addr).copied() else {
        return Err(segv(addr, Access::Read, None));
    };
    let page = Page::containing_address(addr);
    let is_huge = space.pt.huge_leaf(&space.tables, addr).is_some();
    if is_huge || space.pt.entry(&space.tables, page).is_some_and(|pte| !pte.is_unused()) {
        return Ok(());
    }
    // A file page is mapped as a read maps it (a write would dirty it for nothing).
    let is_file = matches!(vma.backing, Backing::File { .. });
    let access = if !is_file && (vma.flags.is_shared() || vma.prot.contains(VmProt::WRITE)) { Access::Write } else { Access::Read };
    do_no_page(space, &vma, page, decide_empty(&vma, access), access)?;
    space.stats.minor_faults += 1;
    Ok(())
}

/// Grows the stack VMA above `addr` down to cover it, if that is a legal growth.
fn grow_stack(space: &mut AddressSpace, addr: VirtAddr) -> Option<Vma> {
    let grown = stack_growth_for(space, addr)?;
    space.vmas.insert(grown).ok()?;
    space.vmas.find(addr).copied()
}

/// Returns the stack VMA grown down to cover `addr`, if a fault there may grow the
/// stack (changing nothing: the fault handler inserts it, `explain` reports it).
pub(super) fn stack_growth_for(space: &AddressSpace, addr: VirtAddr) -> Option<Vma> {
    let stack = *space
        .vmas
        .iter()
        .find(|v| v.flags.contains(super::addr_space::VmFlags::GROWS_DOWN) && v.start > addr)?;
    let new_start = Page::containing_address(addr).start_address();
    let top = VirtAddr::new(super::addr_space::STACK_TOP);
    // Keep a guard gap below the grown stack: it may not run into (or right up to)
    // another mapping, as Linux's `stack_guard_gap`.
    let gap_start = VirtAddr::new(new_start.as_u64().saturating_sub(STACK_GUARD_GAP_BYTES));
    if top - new_start > STACK_MAX_BYTES || !space.vmas.is_range_free(gap_start, stack.start) {
        return None;
    }
    Some(Vma::new(new_start, stack.start, stack.prot, stack.flags, stack.backing))
}

/// Maps a page where the PTE was empty, as `action` (a row of `decide_empty`) says:
/// the shared zero page, a zeroed frame, or a frame filled from the image.
fn do_no_page(space: &mut AddressSpace, vma: &Vma, page: Page, action: FaultAction, access: Access) -> Result<FaultOutcome, FaultError> {
    do_no_page_at(space, vma, page, None, action, access)
}

/// [`do_no_page`], given the page's level-1 slot if the fault's walk found one
/// (the anonymous rows then write the entry with no second walk).
fn do_no_page_at(
    space: &mut AddressSpace,
    vma: &Vma,
    page: Page,
    slot: Option<LeafSlot>,
    action: FaultAction,
    access: Access,
) -> Result<FaultOutcome, FaultError> {
    match (action, vma.backing) {
        (FaultAction::MapZeroPage { flags }, _) => {
            map_empty_at(space, page, slot, zero_frame(), flags)?;
            Ok(FaultOutcome::ZeroPage)
        }
        (FaultAction::MapZeroedFrame { flags }, _) => {
            let new = frame::NewPage::alloc_zeroed().map_err(|_| FaultError::OutOfMemory)?;
            map_empty_at(space, page, slot, new.frame(), flags)?;
            install_mapped(space, page, new);
            Ok(FaultOutcome::AnonymousPage)
        }
        (FaultAction::MapImagePage { flags }, Backing::Image { id, offset }) => do_image_fault(space, vma, page, id, offset, flags),
        (FaultAction::MapFilePage { flags }, Backing::File { cache, offset }) => {
            super::filemap::do_file_fault(space, vma, page, access, cache, offset, flags)
        }
        (action, backing) => panic!("do_no_page: {page:?}: {action:?} for a page backed by {backing:?}"),
    }
}

/// Maps `frame` at `page` with `flags` in `space` (the entry was empty).
pub(super) fn map_empty(space: &mut AddressSpace, page: Page, frame: Frame, flags: PteFlags) -> Result<(), FaultError> {
    map_empty_at(space, page, None, frame, flags)
}

/// [`map_empty`] through `slot`, the page's level-1 slot found under this hold of
/// the space's lock, when there is one (no walk); else with a walk that creates
/// the missing tables.
fn map_empty_at(space: &mut AddressSpace, page: Page, slot: Option<LeafSlot>, frame: Frame, flags: PteFlags) -> Result<(), FaultError> {
    if let Some(slot) = slot {
        let entry = Pte::new(frame, (flags - PteFlags::HUGE) | PteFlags::PRESENT);
        let (old, flush) = space.pt.write_slot(&mut space.tables, slot, entry);
        debug_assert!(old.is_unused(), "map_empty_at: {page:?} held {old:?}");
        flush.ignore(); // the entry was empty: nothing cached
        return Ok(());
    }
    match space.pt.map(&mut space.tables, page, frame, flags) {
        Ok(flush) => flush.ignore(), // the entry was empty: nothing cached
        Err(MapError::FrameAllocationFailed) => return Err(FaultError::OutOfMemory),
        Err(e) => panic!("install_page: {page:?}: {e:?}"),
    }
    Ok(())
}

/// Maps the `new`ly filled frame at `page` with `flags` in `space`, counting it in
/// RSS and recording its place in the reverse map (this space's family, `page`).
/// On failure `new` is dropped, which frees it.
pub(super) fn install_page(space: &mut AddressSpace, page: Page, new: frame::NewPage, flags: PteFlags) -> Result<(), FaultError> {
    map_empty(space, page, new.frame(), flags)?;
    install_mapped(space, page, new);
    Ok(())
}

/// The bookkeeping of [`install_page`] once the PTE maps `new`: RSS, and the
/// frame's place in the reverse map.
fn install_mapped(space: &mut AddressSpace, page: Page, new: frame::NewPage) {
    let frame = new.into_mapped();
    space.stats.rss_pages += 1;
    super::rmap::map_new(frame, space.family_page(page));
}

/// Not present, backed by an object (a program image): a private frame holding the
/// object's bytes for this page (zero past its end, as for `.bss`).
fn do_image_fault(
    space: &mut AddressSpace,
    vma: &Vma,
    page: Page,
    id: u32,
    offset: u64,
    flags: PteFlags,
) -> Result<FaultOutcome, FaultError> {
    let mut new = frame::NewPage::alloc_zeroed().map_err(|_| FaultError::OutOfMemory)?;
    let index = (offset + (page.start_address() - vma.start)) / super::PAGE_SIZE;
    super::backing::read_page(id, index, &mut new);
    install_page(space, page, new, flags)?;
    Ok(FaultOutcome::ImagePage)
}
