//! Another process's pages, for `process_vm_readv`/`process_vm_writev`: pinned and
//! copied through the direct map, never through the target's page tables.
//!
//! The caller (`proc::vm_rw`) holds the target's address-space lock only around the
//! calls here. A page that is not resident and accessible in the target is faulted
//! in *on the target's behalf* (`mm::fault::fault_in`, the same path as the
//! target's own faults: demand-zero, swap-in, copy-on-write), then looked up again.
//!
//! - Reading: [`pin_resident`] finds the frame under the lock and takes a reference
//!   (a pin: the frame cannot be freed or reused, even if the target unmaps it or
//!   reclaim evicts it); the lock is dropped and the bytes are copied out of the
//!   pinned frame; dropping the [`PinnedPage`] gives the reference back (and frees
//!   the frame if the target let go of it meanwhile).
//! - Writing: [`write_resident`] writes under the lock, to a PTE that is present and
//!   *writable*: a copy-on-write page was copied by the fault handler first, so the
//!   write lands in the target's own copy and never in a frame it shares with its
//!   parent or children. The frame is pinned for the copy and, if it is in the swap
//!   cache, flagged DIRTY: the slot no longer holds the page, and eviction must write
//!   it again (the PTE's Dirty bit is not set: the write did not go through it).
#![deny(unsafe_code)]

use super::addr_space::AddressSpace;
use super::frame::{self, FrameFlags};
use super::paging::PteFlags;
use super::{Frame, PAGE_SIZE, VirtAddr};

/// A reference held on a user frame for the length of one copy.
pub struct PinnedPage {
    frame: Frame,
    /// The frame whose refcount the pin holds: `frame`, or the head of the
    /// transparent huge page `frame` is part of.
    holder: Frame,
    /// False for the shared zero frame, which is never freed and needs no pin.
    is_pinned: bool,
}

impl PinnedPage {
    /// Takes a reference to `frame` (under the owning space's lock).
    fn pin(frame: Frame) -> PinnedPage {
        let is_pinned = frame != super::fault::zero_frame();
        let holder = if is_pinned { frame::reference_holder(frame) } else { frame };
        if is_pinned {
            frame::with_desc(holder, |d| d.get_ref());
        }
        PinnedPage { frame, holder, is_pinned }
    }

    /// Copies the page's bytes from `offset` into `buf` (no lock needed: it is pinned).
    #[allow(unsafe_code)] // the one read of a frame this module makes; argued below
    pub fn read(&self, offset: usize, buf: &mut [u8]) {
        // SAFETY: the pin keeps the frame allocated (it cannot be freed or reused
        // while the reference is held), and no device DMAs into a user frame that a
        // PTE maps or a pin holds; the target may write it meanwhile, which changes
        // the bytes read but cannot corrupt anything.
        unsafe { frame::read_bytes(self.frame, offset, buf) };
    }
}

impl Drop for PinnedPage {
    fn drop(&mut self) {
        if self.is_pinned && frame::put_ref(self.holder) == 0 {
            // The target unmapped the page while we copied: ours was the last reference.
            super::rmap::free_user_frame(self.holder);
        }
    }
}

/// Returns true if `addr` lies in a VMA of `space` (no stack growth on another's behalf).
pub fn is_mapped(space: &AddressSpace, addr: VirtAddr) -> bool {
    space.vmas().find(addr).is_some()
}

/// Returns true if the page of `addr` has a present PTE (a fault on it is a protection fault).
pub fn is_present(space: &AddressSpace, addr: VirtAddr) -> bool {
    space.pte(addr).is_some_and(|pte| pte.is_present())
}

/// Pins the frame of `addr` if it is resident in `space`; `None` if it must be faulted in.
///
/// Lock state: called with `space` locked; the pin outlives the lock.
pub fn pin_resident(space: &AddressSpace, addr: VirtAddr) -> Option<PinnedPage> {
    let pte = space.pte(addr).filter(|pte| pte.is_present())?;
    Some(PinnedPage::pin(pte.frame()))
}

/// Writes `bytes` at `addr` (within one page) if its PTE is present and writable;
/// returns false, writing nothing, if the page must be faulted in for writing first.
///
/// Lock state: called with `space` locked, which keeps the PTE (and so the frame's
/// place in the target) as it is for the whole write.
#[allow(unsafe_code)] // the one write of a frame this module makes; argued below
pub fn write_resident(space: &AddressSpace, addr: VirtAddr, bytes: &[u8]) -> bool {
    let offset = addr.page_offset() as usize;
    debug_assert!(offset + bytes.len() <= PAGE_SIZE as usize, "write_resident: crosses a page");
    let Some(pte) = space.pte(addr).filter(|p| p.is_present() && p.flags().contains(PteFlags::WRITABLE)) else {
        return false;
    };
    let pinned = PinnedPage::pin(pte.frame());
    // SAFETY: the frame is the target's own page: its PTE is present and writable
    // (a COW page was copied first, so no other process maps it), the target's lock
    // is held, and the pin keeps it allocated; the write is what the target could
    // have done itself through that PTE.
    unsafe { frame::write_bytes(pinned.frame, offset, bytes) };
    frame::with_desc(pinned.frame, |d| {
        if d.has_flags(FrameFlags::SWAP_CACHE) {
            d.insert_flags(FrameFlags::DIRTY);
        }
    });
    true
}
