//! The page-fault handler: one entry point, four outcomes.
//!
//! ```text
//!  handle_page_fault(space, addr, error code)
//!    ├─ kernel address, or no VMA (and not a stack to grow)    -> Segv
//!    ├─ access not allowed by the VMA's protection             -> Segv
//!    ├─ PTE empty                  -> do_anonymous_fault: zero page (read) or zeroed frame (write),
//!    │                                or do_image_fault: a frame filled from the program image
//!    ├─ PTE holds a swap entry     -> do_swap_fault (swap/swapin.rs): map the page from the
//!    │                                swap cache, or ask the caller to read it in and retry
//!    ├─ PTE present, write, RO     -> do_wp_fault (cow.rs): copy-on-write, or reuse if last reference;
//!    │                                in a shared VMA: made writable in place (never copied)
//!    └─ PTE present, access allowed -> spurious: a stale TLB entry, flushed
//! ```
//! No I/O happens here: a page that must be read from swap comes back as
//! [`FaultError::NeedsSwapIn`], and the caller (`proc/fault.rs`) reads it with no
//! lock held and calls [`handle_page_fault_after_read`].
//! The error code's bits say what was attempted: bit 0 P (page present: a protection
//! fault), bit 1 W (write), bit 2 U (from ring 3), bit 4 I (instruction fetch).
//!
//! Read faults on anonymous memory map one shared, read-only zero frame, so reading
//! a huge untouched mapping costs no memory; the first write replaces it.
//! Lock state: enters and returns with the address-space lock held.
#![deny(unsafe_code)]

use core::fmt;

use mm_core::pagetable::MapError;
use spin::Once;

use super::addr_space::{AddressSpace, Backing, STACK_GUARD_GAP_BYTES, STACK_MAX_BYTES, Vma, VmProt, leaf_flags_for};
use super::frame::{self, FrameState};
use super::paging::{PteFlags, SwapEntry};
use super::{Frame, Order, Page, VirtAddr};
use crate::arch::tlb;
use blockdev::BlockError;

/// What the faulting instruction tried to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Exec,
}

impl Access {
    /// Decodes the access from a page-fault error code.
    pub fn from_error_code(error_code: u64) -> Access {
        if error_code & (1 << 4) != 0 {
            Access::Exec
        } else if error_code & (1 << 1) != 0 {
            Access::Write
        } else {
            Access::Read
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Access::Read => "read from",
            Access::Write => "write to",
            Access::Exec => "execute at",
        }
    }
}

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

/// Returns true if `prot` allows `access`.
///
/// Any protection but PROT_NONE allows reads: x86 page tables cannot express
/// write-only or execute-only pages (a present user page is readable), and Linux
/// on x86 lets PROT_WRITE and PROT_EXEC pages be read, so we do too.
pub fn allows(prot: VmProt, access: Access) -> bool {
    match access {
        Access::Read => prot != VmProt::NONE,
        Access::Write => prot.contains(VmProt::WRITE),
        Access::Exec => prot.contains(VmProt::EXEC),
    }
}

/// Resolves a page fault at `addr` in `space`.
pub fn handle_page_fault(space: &mut AddressSpace, addr: VirtAddr, error_code: u64) -> Result<FaultOutcome, FaultError> {
    handle_page_fault_after_read(space, addr, error_code, None)
}

/// Resolves a page fault after the caller read `read` into the swap cache for it
/// (so a swap-cache hit on that entry is the end of a major fault).
pub fn handle_page_fault_after_read(
    space: &mut AddressSpace,
    addr: VirtAddr,
    error_code: u64,
    read: Option<SwapEntry>,
) -> Result<FaultOutcome, FaultError> {
    let access = Access::from_error_code(error_code);
    if !addr.is_lower_half() {
        return Err(segv(addr, access, None));
    }
    let mut grew = false;
    let vma = match space.vmas.find(addr) {
        Some(vma) => *vma,
        None => {
            grew = true;
            grow_stack(space, addr).ok_or_else(|| segv(addr, access, None))?
        }
    };
    if !allows(vma.prot, access) {
        return Err(segv(addr, access, Some(&vma)));
    }
    let page = Page::containing_address(addr);
    let outcome = match space.pt.entry(&space.tables, page) {
        None => do_no_page(space, &vma, page, access)?,
        Some(pte) if pte.is_unused() => do_no_page(space, &vma, page, access)?,
        Some(pte) if pte.is_present() && access == Access::Write && !pte.flags().contains(PteFlags::WRITABLE) => {
            super::cow::do_wp_fault(space, &vma, page, pte)?
        }
        Some(pte) if pte.is_present() => {
            // The faulting space is the loaded one: flush the stale entry directly.
            tlb::flush_page(page.start_address());
            FaultOutcome::Spurious
        }
        Some(pte) => match pte.as_swap() {
            Some(entry) => super::swap::do_swap_fault(space, &vma, page, entry, read == Some(entry))?,
            None => panic!("handle_page_fault: {page:?}: unknown non-present PTE {pte:?}"),
        },
    };
    if outcome == FaultOutcome::SwapIn {
        space.stats.major_faults += 1;
    } else {
        space.stats.minor_faults += 1;
    }
    Ok(if grew { FaultOutcome::StackGrowth } else { outcome })
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
    if space.pt.entry(&space.tables, page).is_some_and(|pte| !pte.is_unused()) {
        return Ok(());
    }
    let access = if vma.flags.is_shared() || vma.prot.contains(VmProt::WRITE) { Access::Write } else { Access::Read };
    do_no_page(space, &vma, page, access)?;
    space.stats.minor_faults += 1;
    Ok(())
}

/// Grows the stack VMA above `addr` down to cover it, if that is a legal growth.
fn grow_stack(space: &mut AddressSpace, addr: VirtAddr) -> Option<Vma> {
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
    let grown = Vma::new(new_start, stack.start, stack.prot, stack.flags, stack.backing);
    space.vmas.insert(grown).ok()?;
    space.vmas.find(addr).copied()
}

/// Maps a page where the PTE was empty: from the image, or zero-filled.
fn do_no_page(space: &mut AddressSpace, vma: &Vma, page: Page, access: Access) -> Result<FaultOutcome, FaultError> {
    match vma.backing {
        Backing::Anonymous => do_anonymous_fault(space, vma, page, access),
        Backing::Image { id, offset } => do_image_fault(space, vma, page, id, offset),
    }
}

/// Maps `frame` at `page` with `flags` in `space` (the entry was empty).
fn map_empty(space: &mut AddressSpace, page: Page, frame: Frame, flags: PteFlags) -> Result<(), FaultError> {
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
    let frame = new.into_mapped();
    space.stats.rss_pages += 1;
    super::rmap::map_new(frame, space.family_page(page));
    Ok(())
}

/// Not present, never touched, anonymous: the shared zero page for a read, else a
/// fresh zeroed frame.
fn do_anonymous_fault(space: &mut AddressSpace, vma: &Vma, page: Page, access: Access) -> Result<FaultOutcome, FaultError> {
    let flags = leaf_flags_for(vma.prot);
    if access != Access::Write && !vma.flags.is_shared() {
        map_empty(space, page, zero_frame(), flags - PteFlags::WRITABLE)?;
        return Ok(FaultOutcome::ZeroPage);
    }
    let new = frame::NewPage::alloc_zeroed().map_err(|_| FaultError::OutOfMemory)?;
    install_page(space, page, new, flags)?;
    Ok(FaultOutcome::AnonymousPage)
}

/// Not present, image-backed: a private frame holding the image's bytes for this
/// page (zero past the end of the file part, as for `.bss`).
fn do_image_fault(space: &mut AddressSpace, vma: &Vma, page: Page, id: u32, offset: u64) -> Result<FaultOutcome, FaultError> {
    let mut new = frame::NewPage::alloc_zeroed().map_err(|_| FaultError::OutOfMemory)?;
    let file_offset = offset + (page.start_address() - vma.start);
    new.write_bytes(0, crate::proc::image::page_bytes(id, file_offset));
    install_page(space, page, new, leaf_flags_for(vma.prot))?;
    Ok(FaultOutcome::ImagePage)
}
