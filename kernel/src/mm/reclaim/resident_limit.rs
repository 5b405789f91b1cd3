//! Per-process resident-set limits under `policy=vms` (VAX/VMS's working-set
//! limit): local replacement. A process whose own FIFO holds more pages than its
//! limit gives up its oldest ones, unmapped onto the global clean and dirty
//! second-chance lists (page buffering, `buffering.rs`), where a touch rescues
//! them without I/O and global reclaim takes its frames from.
//!
//! ```text
//!  fault_in (fault/retry.rs), after a fault that mapped a page, no lock held:
//!    enforce_after_fault(space, addr)
//!      space locked: the frame at addr, anonymous?   policy.claim_for(pfn, space id, limit)
//!                                                    -> the process's own FIFO; over the limit?
//!      no lock held: trim()  policy.take_over_limit -> unmap_keep -> policy.on_buffered
//! ```
//! So a process never holds more than its limit of anonymous pages mapped, give or
//! take the page its fault just mapped (trimmed before the fault returns) and the
//! pages of other threads faulting at the same moment. Page-cache pages stay in the
//! global FIFO (shared with other processes and the cache, not one process's).
//!
//! The limit is the process's own (`/proc/PID/vms_limit`, in pages; kept in its
//! working-set state, `wss::WsState::resident_limit`, a fork child starts with the
//! default) or else the default, `/proc/sys/vm/vms_resident_limit`: half the
//! managed frames unless set. At least [`MIN_LIMIT`] pages: one instruction may need
//! several pages at once, and a limit below what it needs would fault forever.
//!
//! Lock state: the space lock, then [`super::POLICY`] inside it (the lock order's
//! AddressSpace < ReclaimPolicy); the unmapping with no lock held.
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use super::buffering::buffer_pages;
use super::{POLICY, PolicyKind};
use crate::mm::frame::{self, FrameFlags};
use crate::mm::rmap::SpaceRef;
use crate::mm::{VirtAddr, fault};

/// The smallest limit accepted, in pages.
pub const MIN_LIMIT: u64 = 32;
/// The default limit in pages (0: half the managed frames).
static DEFAULT_LIMIT: AtomicU64 = AtomicU64::new(0);

/// Returns the default resident-set limit, in pages.
pub fn default_limit() -> u64 {
    match DEFAULT_LIMIT.load(Ordering::Relaxed) {
        0 => (frame::buddyinfo().nr_managed_frames / 2).max(MIN_LIMIT),
        limit => limit,
    }
}

/// Sets the default limit (`/proc/sys/vm/vms_resident_limit`); 0 goes back to
/// half the managed frames. False (nothing changes) below [`MIN_LIMIT`].
pub fn set_default_limit(nr_pages: u64) -> bool {
    if nr_pages != 0 && nr_pages < MIN_LIMIT {
        return false;
    }
    DEFAULT_LIMIT.store(nr_pages, Ordering::Relaxed);
    true
}

/// Returns the limit of a process whose own setting is `own` (0: the default).
pub fn effective_limit(own: u64) -> u64 {
    if own == 0 { default_limit() } else { own }
}

/// Sets the limit of `space` (0: the default); false below [`MIN_LIMIT`]. Takes
/// effect at its next fault.
pub fn set_limit(space: &SpaceRef, nr_pages: u64) -> bool {
    if nr_pages != 0 && nr_pages < MIN_LIMIT {
        return false;
    }
    space.lock().wss.resident_limit = nr_pages;
    true
}

/// Returns the pages in the resident set of the space with id `owner` and its
/// limit, under `policy=vms`; `None` otherwise or if it has none.
pub fn resident_set_of(owner: u64) -> Option<(usize, usize)> {
    POLICY.lock().as_ref().and_then(|p| p.resident_set_of(owner))
}

/// After a fault at `addr` in `space` mapped a page: under `policy=vms`, the
/// page joins the process's own FIFO, and if that is over the limit its oldest
/// pages go to the second-chance lists. Call with no lock held.
///
/// Inline: the fault path's common case, another policy, is one load here.
#[inline]
pub fn enforce_after_fault(space: &SpaceRef, addr: VirtAddr) {
    if super::policy_kind() == PolicyKind::Vms {
        enforce_vms_after_fault(space, addr);
    }
}

/// [`enforce_after_fault`] under `policy=vms`.
#[inline(never)]
fn enforce_vms_after_fault(space: &SpaceRef, addr: VirtAddr) {
    let is_over = {
        let space = space.lock();
        let Some(pte) = space.pte(addr).filter(|p| p.is_present()) else { return };
        let frame = pte.frame();
        let is_anonymous = frame != fault::zero_frame()
            && frame::with_desc(frame, |d| !d.has_flags(FrameFlags::FILE) && d.map_count() > 0);
        let limit = effective_limit(space.wss.resident_limit) as usize;
        is_anonymous && POLICY.lock().as_mut().is_some_and(|p| p.claim_for(frame.pfn(), space.id(), limit))
    };
    if is_over {
        trim();
    }
}

/// Unmaps the pages of every resident set over its limit onto the second-chance
/// lists; returns how many were unmapped. Call with no lock held.
pub fn trim() -> usize {
    buffer_pages(|policy, pages| policy.take_over_limit(pages))
}
