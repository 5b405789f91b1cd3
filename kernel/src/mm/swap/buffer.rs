//! Page buffering (the `vms` policy, VAX/VMS): a page leaves its process's resident
//! set *unmapped but kept*: every PTE becomes its swap entry, the frame stays in the
//! swap cache, and a fault on it maps it back with no I/O (a swap-cache hit, which
//! `reclaim::note_soft_fault` counts as a rescue). The dirty ones are written later
//! in clusters ([`write_buffered`]) and become clean.
//!
//! ```text
//!  unmap_keep(F):
//!   1-3. as evict (evict.rs): lock F, give it a slot (F enters the swap cache),
//!        every PTE mapping F -> swap entry S (rmap, fork family, KSM places)
//!   4'.  no write: F flagged DIRTY if a PTE was dirty (S does not hold it yet)
//!   5'.  F unlocked, left in the swap cache, mapped by nobody: the same state as a
//!        readahead page (swapin.rs), so the audit, fork (which dup()s the swap
//!        PTE), munmap/exit (put_swap_pte drops F with its last swap PTE) and
//!        eviction (evict: nothing to unmap; clean -> freed without I/O) already
//!        know it.
//!  write_buffered(F...):  F unmapped, in the cache, DIRTY: locked, written
//!        (adjacent slots in one request), DIRTY cleared, unlocked.
//! ```
//! A process may exit while we hold F LOCKED: its last swap PTE's `put_swap_pte`
//! then leaves the locked frame in the cache, so unlocking goes through
//! `swap::unlock_buffered`, which drops such an orphan (a leaked slot and frame
//! otherwise: `switching_policy_twice_a_second_while_swapstress_swaps_loses_no_page`
//! caught 24 of them before it did).
//! Lock state: called with no lock held; spaces are `try_lock`ed, one at a time.
#![deny(unsafe_code)]

use alloc::vec::Vec;

use super::evict::{EvictError, restore_all, unmap_all};
use super::{SwapEntry, cancel_eviction, ensure_slot, unlock_buffered};
use crate::mm::Frame;
use crate::mm::frame::{self, FrameFlags, LockedPage, PageBytes};
use crate::mm::vmstat::{self, SwapEvent};

/// Unmaps `frame` from every PTE, keeping it in the swap cache (steps 1-3, 4', 5'
/// above); returns whether it is dirty (its slot does not hold it). On an error
/// everything is as it was. Anonymous (and KSM) pages only: a page-cache page has
/// its own cache and is `NotEvictable` here. Call with no lock held.
pub fn unmap_keep(frame: Frame) -> Result<bool, EvictError> {
    let is_anonymous = frame::with_desc(frame, |d| {
        !d.has_flags(FrameFlags::FILE) && !d.has_flags(FrameFlags::LAZYFREE) && d.map_count() > 0
    });
    if !is_anonymous || frame == crate::mm::fault::zero_frame() {
        return Err(EvictError::NotEvictable);
    }
    let _reclaim = crate::mm::heap::enter_reclaim();
    let page = LockedPage::lock_resident(frame).ok_or(EvictError::NotEvictable)?;
    let entry = ensure_slot(frame).ok_or(EvictError::SwapFull)?;
    let (is_dirty, _undo) = match unmap_all(frame, entry) {
        Ok(done) => done,
        Err(undo) => {
            restore_all(frame, entry, &undo);
            cancel_eviction(page.into_frame(), entry);
            return Err(EvictError::Busy);
        }
    };
    let is_dirty = frame::with_desc(frame, |d| {
        if is_dirty {
            d.insert_flags(FrameFlags::DIRTY);
        }
        d.has_flags(FrameFlags::DIRTY)
    });
    vmstat::count(SwapEvent::Buffered);
    // Unlocked: a fault on the swap entry now maps it back. If its process exited
    // meanwhile, the frame is freed here (and then not reported to the policy).
    unlock_buffered(page.into_frame());
    Ok(is_dirty)
}

/// Writes the buffered dirty `frames` to their slots, adjacent slots in one
/// request, and clears their DIRTY flag: they are clean buffered pages now. A frame
/// that is no longer buffered and dirty (mapped again, freed, locked by someone
/// else) is skipped; so is one whose write fails (it stays DIRTY: its eviction
/// will write it, and deal with a failure as evictions do). Returns how many were
/// written. Call with no lock held.
pub fn write_buffered(frames: &[Frame]) -> usize {
    let _reclaim = crate::mm::heap::enter_reclaim();
    let mut locked: Vec<(SwapEntry, LockedPage)> = Vec::new();
    if locked.try_reserve_exact(frames.len()).is_err() {
        return 0; // memory is short: eviction writes them instead
    }
    for &frame in frames {
        let Some(page) = LockedPage::lock_resident(frame) else { continue };
        let (is_buffered_dirty, slot) = frame::with_desc(frame, |d| {
            (d.map_count() == 0 && d.has_flags(FrameFlags::SWAP_CACHE) && d.has_flags(FrameFlags::DIRTY), d.private())
        });
        if is_buffered_dirty {
            locked.push((SwapEntry::new(0, u64::from(slot)), page));
        } else {
            unlock_buffered(page.into_frame());
        }
    }
    locked.sort_unstable_by_key(|(entry, _)| entry.slot());
    let mut nr_written = 0;
    let is_next = |(a, _): &(SwapEntry, LockedPage), (b, _): &(SwapEntry, LockedPage)| b.slot() == a.slot() + 1;
    for run in locked.chunk_by(is_next) {
        for request in run.chunks(blockdev::MAX_PAGES_PER_REQUEST) {
            let pages: Vec<&PageBytes> = request.iter().map(|(_, p)| p.bytes()).collect();
            vmstat::count(SwapEvent::WriteRequest);
            if super::write_slots(request[0].0, &pages).is_err() {
                continue;
            }
            for (_, page) in request {
                frame::with_desc(page.frame(), |d| d.remove_flags(FrameFlags::DIRTY));
            }
            vmstat::count_n(SwapEvent::SwapOut, request.len() as u64);
            nr_written += request.len();
        }
    }
    for (_, page) in locked {
        unlock_buffered(page.into_frame());
    }
    nr_written
}
