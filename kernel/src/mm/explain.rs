//! `explain`: everything the memory manager knows about one address of one
//! process, and what the next fault there would do: a teaching tool's data.
//!
//! ```text
//!  explain(space, addr)
//!    ├─ the walk: PML4 -> PDPT -> PD -> PT entries read as the MMU would (pagetable::walk)
//!    ├─ the VMA covering addr (range, prot, flags, backing)
//!    ├─ the frame: the PTE's, or the swap cache's for a swap entry (frame table:
//!    │  state, refcount, map count, flags, swap slot, page-cache file and index)
//!    └─ for a read, a write and an instruction fetch: the next fault's action,
//!       from the fault handler's own questions, in its own order:
//!       kernel address? huge leaf? VMA or stack growth? then mm_core::fault::decide
//!       with the handler's KernelFacts, then the huge-page check (thp.rs)
//! ```
//! Nothing here changes the space: `decide` only decides, and the stack-growth and
//! huge-page checks are the read-only halves the fault handler itself calls
//! (`fault::stack_growth_for`, `fault::may_be_huge`, `thp::huge_fault_range`), so
//! the answer is what `handle_page_fault` would do at this moment (a later
//! eviction, fork or reclaim can change it).
//!
//! Lock state: called with the space's lock held; takes the frame-table and swap
//! locks for a moment each, as the fault handler's `KernelFacts` does.
#![deny(unsafe_code)]

use abi::explain::{self, next_fault};
use mm_core::fault::{Access, FaultAction, Refusal, WritableBecause, decide};
use mm_core::vma::Backing;

use super::addr_space::{AddressSpace, Vma};
use super::fault::{self, KernelFacts};
use super::frame::{self, FrameFlags};
use super::{Frame, Page, VirtAddr};

/// Explains `addr` in `space` (see the module docs).
pub fn explain(space: &AddressSpace, addr: VirtAddr) -> abi::Explain {
    let mut out = abi::Explain { addr: addr.as_u64(), ..Default::default() };
    let walk = space.pt.walk(&space.tables, addr);
    out.nr_levels = walk.nr_steps as u64;
    for (i, step) in walk.taken().iter().enumerate() {
        out.entries[i] = step.entry.bits();
    }
    let vma = if addr.is_lower_half() { space.vmas.find(addr).copied() } else { None };
    describe_vma(&mut out, vma.as_ref());
    describe_frame(&mut out, space, addr);
    for (i, access) in [Access::Read, Access::Write, Access::Exec].into_iter().enumerate() {
        (out.on_access[i], out.on_access_arg[i]) = next_fault(space, vma.as_ref(), addr, access);
    }
    out
}

fn describe_vma(out: &mut abi::Explain, vma: Option<&Vma>) {
    (out.backing_id, out.backing_offset) = (explain::NONE, 0);
    let Some(vma) = vma else { return };
    (out.vma_start, out.vma_end) = (vma.start.as_u64(), vma.end.as_u64());
    out.vma_prot = u64::from(vma.prot.bits());
    out.vma_flags = u64::from(vma.flags.bits());
    out.backing = match vma.backing {
        Backing::Anonymous => explain::backing::ANONYMOUS,
        Backing::Image { id, offset } => {
            (out.backing_id, out.backing_offset) = (u64::from(id), offset);
            explain::backing::IMAGE
        }
        Backing::File { cache, offset } => {
            (out.backing_id, out.backing_offset) = (u64::from(cache), offset);
            explain::backing::FILE
        }
    };
}

/// Fills the frame fields: the frame the address translates to, or the swap
/// cache's frame for a swap PTE (whose slot is reported either way).
fn describe_frame(out: &mut abi::Explain, space: &AddressSpace, addr: VirtAddr) {
    (out.frame, out.swap_slot, out.file_id) = (explain::NONE, explain::NONE, explain::NONE);
    let frame = match space.pt.translate(&space.tables, addr) {
        Some((phys, _, _)) => Some(Frame::containing_address(phys)),
        None => {
            let swap = if addr.is_lower_half() { space.pt.entry(&space.tables, Page::containing_address(addr)) } else { None };
            match swap.and_then(|pte| pte.as_swap()) {
                Some(entry) => {
                    out.swap_slot = entry.slot();
                    match super::swap::cache_lookup(entry) {
                        mm_core::fault::SwapCacheLookup::Cached { frame, .. } => Some(frame),
                        _ => None,
                    }
                }
                None => None,
            }
        }
    };
    let Some(frame) = frame else { return };
    out.frame = frame.pfn();
    let (first, nr) = frame::managed_frames();
    if frame.pfn() < first.pfn() || frame.pfn() >= first.pfn() + nr {
        out.frame_state = explain::frame_state::NOT_RAM;
        return;
    }
    if super::pcp::is_listed(frame) {
        out.frame_state = explain::frame_state::FREE; // on a per-CPU list (`mm::pcp`)
        return;
    }
    frame::with_desc(frame, |d| {
        out.frame_state = d.state() as u64;
        out.refcount = u64::from(d.refcount());
        out.map_count = u64::from(d.map_count());
        out.frame_flags = u64::from(d.flags().bits());
        if d.has_flags(FrameFlags::SWAP_CACHE) {
            out.swap_slot = u64::from(d.private());
        }
        if let Some((id, index)) = d.file_owner() {
            (out.file_id, out.file_index) = (u64::from(id), index);
        }
    });
}

/// Returns what a fault by `access` at `addr` would do now, and its argument (a
/// swap slot), asking the fault handler's questions in its order.
fn next_fault(space: &AddressSpace, vma: Option<&Vma>, addr: VirtAddr, access: Access) -> (u64, u64) {
    if !addr.is_lower_half() {
        return (next_fault::SEGV_KERNEL_ADDRESS, 0);
    }
    let grown = if vma.is_none() { fault::stack_growth_for(space, addr) } else { None };
    let vma = vma.copied().or(grown);
    if let Some((_, huge)) = space.pt.huge_leaf(&space.tables, addr)
        && let Some(vma) = vma
    {
        // The handler splits a huge leaf that does not allow the access, then
        // decides on the 4 KiB PTE, which refuses what the VMA does not allow.
        let code = if super::thp::leaf_allows(huge.flags(), access) {
            next_fault::NO_FAULT
        } else if !mm_core::fault::allows(vma.prot, access) {
            next_fault::SEGV_PROTECTION
        } else {
            next_fault::SPLIT_HUGE
        };
        return (code, 0);
    }
    let pte = space.pt.entry(&space.tables, Page::containing_address(addr));
    let action = decide(vma.as_ref(), access, pte, &KernelFacts);
    if grown.is_some() && !matches!(action, FaultAction::Refuse(_)) {
        return (next_fault::STACK_GROWTH, 0);
    }
    let code = match action {
        FaultAction::Refuse(Refusal::NoVma) => next_fault::SEGV_NO_VMA,
        FaultAction::Refuse(Refusal::NotAllowed) => next_fault::SEGV_PROTECTION,
        FaultAction::MapZeroPage { .. } => next_fault::ZERO_PAGE,
        FaultAction::MapZeroedFrame { .. } => {
            let vma = vma.as_ref().expect("explain: a VMA for a page to map");
            if fault::may_be_huge(action, pte) && super::thp::huge_fault_range(space, vma, addr, access).is_some() {
                next_fault::HUGE_PAGE
            } else {
                next_fault::ZEROED_FRAME
            }
        }
        FaultAction::MapImagePage { .. } => next_fault::IMAGE_PAGE,
        FaultAction::MapFilePage { .. } => match vma.as_ref().map(|v| v.backing) {
            Some(Backing::File { cache, offset }) => {
                let index = (offset + (addr.align_down(super::PAGE_SIZE) - vma.as_ref().map_or(addr, |v| v.start))) / super::PAGE_SIZE;
                let is_cached = super::page_cache::cache_by_id(cache).is_some_and(|c| c.find_page(index).is_some());
                if is_cached { next_fault::FILE_CACHED } else { next_fault::FILE_READ }
            }
            _ => next_fault::FILE_READ,
        },
        FaultAction::MakeWritable { because: WritableBecause::SoleOwner, .. } => next_fault::COW_REUSE,
        FaultAction::MakeWritable { because: WritableBecause::SharedMapping, .. } => next_fault::SHARED_WRITE,
        FaultAction::ReplaceZeroPage { .. } => next_fault::REPLACE_ZERO_PAGE,
        FaultAction::CopyOnWrite { .. } => next_fault::COW_COPY,
        FaultAction::MapSwapCache { .. } => {
            let slot = pte.and_then(|p| p.as_swap()).map_or(0, |e| e.slot());
            return (next_fault::SWAP_CACHE_HIT, slot);
        }
        FaultAction::ReadFromSwap(entry) => return (next_fault::SWAP_IN, entry.slot()),
        FaultAction::WaitForIo => next_fault::WAIT_FOR_IO,
        FaultAction::FlushStaleTlb => next_fault::NO_FAULT,
        FaultAction::CorruptPte(_) => next_fault::CORRUPT_PTE,
    };
    (code, 0)
}
