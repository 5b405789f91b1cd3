//! Writing ahead: a dirty anonymous page written to its swap slot while it stays
//! mapped, so that when reclaim reaches it, it is clean and goes without I/O. The
//! background cleaner (`mm/cleaner.rs`) chooses the pages; this file cleans them.
//!
//! ```text
//!  clean(F):   F: a private anonymous user frame, mapped by exactly one PTE
//!   1. lock F (flag LOCKED): eviction, swap-in and other cleaners leave it alone
//!   2. slot S: F's swap-cache slot, or a fresh one (F enters the swap cache, DIRTY)
//!   3. under the space lock: the PTE still maps F, F is dirty (Dirty bit, or flag DIRTY)?
//!        PTE := PTE - DIRTY - WRITABLE; flush   (nobody can write F now)
//!        copy F into a bounce page;  F not DIRTY (S will hold this copy)
//!        PTE := PTE - DIRTY (writable again)
//!   4. no lock held: the bounce pages go to their slots, adjacent slots in one request
//!   5. F unlocked; it stays mapped, in the swap cache, clean
//! ```
//!
//! Afterwards the PTE is *writable with its Dirty bit clear*, not write-protected.
//! A later write sets the Dirty bit again through the MMU, with no fault, and every
//! reader of "is this page dirty" already looks at that bit: eviction's
//! `unmap_all` (a Dirty bit means write again), the policy's probe
//! (`RmapProbe::is_dirty`). Write-protecting it would cost a fault per page written
//! again, only to set the same bit by hand. The write protection in step 3 lasts
//! for the copy alone: with the space lock held no fault on the page can be
//! handled, and with WRITABLE gone (and the TLB flushed) no CPU can write the page
//! through a stale translation, so the copy is a snapshot of one moment. A write
//! attempted meanwhile faults, waits for the space lock, and finds the PTE
//! writable again.
//!
//! Why a bounce page and not the frame itself: the disk reads the page while the
//! process runs; a `LockedPage`'s bytes are handed to a disk only when no PTE maps
//! the frame (`frame::LockedPage::bytes`). The copy (4 KiB) costs far less than
//! the write.
//!
//! If the write fails, the frame is flagged DIRTY again and the slot retired
//! (`abandon_slot`): eviction later writes it elsewhere. Nothing is lost: the frame
//! still holds the data.
//!
//! Lock state: called with no lock held; takes one address-space lock at a time
//! (`try_lock`: a busy space is skipped), never across the write.
#![deny(unsafe_code)]

use alloc::vec::Vec;

use blockdev::MAX_PAGES_PER_REQUEST;

use super::{SwapEntry, abandon_slot, cancel_eviction, ensure_slot, finish_eviction};
use crate::mm::frame::{self, FrameFlags, FrameState, LockedPage, OwnedFrames};
use crate::mm::paging::PteFlags;
use crate::mm::rmap;
use crate::mm::vmstat::{self, SwapEvent};
use crate::mm::Frame;

/// How a page came out of [`clean_many`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cleaned {
    /// Written to its slot; the frame stays mapped, clean.
    Written,
    /// Already clean (its slot held its contents): nothing to do.
    AlreadyClean,
    /// Not cleaned now: not a private anonymous page mapped once, locked by other
    /// I/O, its space busy, swap full or off. Nothing changed.
    Skipped,
    /// The write failed: the page stays dirty (and mapped), its slot is retired.
    WriteFailed,
}

/// A page copied into its bounce page, waiting for its write (steps 1-3 done).
struct Copied {
    /// The frame, LOCKED by us.
    page: LockedPage,
    entry: SwapEntry,
    /// Index into `frames` (the result's place) and into the bounce pages.
    index: usize,
    is_write_ok: bool,
}

/// Cleans `frames` (see the module docs), using `bounce[i]` for `frames[i]`; returns
/// each one's outcome, in order. At most `bounce.len()` frames. The bounce pages
/// are the caller's alone: nothing else reads or writes them during the call (the
/// cleaner thread, their only user, is the only caller). Call with no lock held.
pub fn clean_many(frames: &[Frame], bounce: &[OwnedFrames]) -> Vec<Cleaned> {
    assert!(frames.len() <= bounce.len(), "clean_many: {} frames, {} bounce pages", frames.len(), bounce.len());
    let mut results: Vec<Cleaned> = frames.iter().map(|_| Cleaned::Skipped).collect();
    let mut copied: Vec<Copied> = Vec::with_capacity(frames.len());
    for (index, (&frame, bounce_page)) in frames.iter().zip(bounce.iter()).enumerate() {
        match copy_out(frame, bounce_page) {
            Ok(Some((page, entry))) => copied.push(Copied { page, entry, index, is_write_ok: false }),
            Ok(None) => results[index] = Cleaned::AlreadyClean,
            Err(()) => {}
        }
    }
    copied.sort_unstable_by_key(|c| c.entry.slot());
    let is_next_slot = |a: &Copied, b: &Copied| b.entry.slot() == a.entry.slot() + 1;
    for run in copied.chunk_by_mut(is_next_slot) {
        for request in run.chunks_mut(MAX_PAGES_PER_REQUEST) {
            write_run(request, bounce);
        }
    }
    for c in copied {
        let frame = c.page.frame();
        if c.is_write_ok {
            results[c.index] = Cleaned::Written;
            finish_eviction(c.page.into_frame(), c.entry);
        } else {
            results[c.index] = Cleaned::WriteFailed;
            vmstat::count(SwapEvent::WriteError);
            let is_retired = abandon_slot(c.page.into_frame(), c.entry);
            log::warn!(
                "cleaner: writing {frame:?} to slot {} failed; the page stays dirty{}",
                c.entry.slot(),
                if is_retired { ", the slot is retired" } else { "" }
            );
        }
    }
    results
}

/// Writes a run of bounce pages with adjacent slots in one request; if that fails,
/// one by one, so only the page whose write really fails is left dirty.
fn write_run(run: &mut [Copied], bounce: &[OwnedFrames]) {
    let pages: Vec<&frame::PageBytes> = run.iter().map(|c| bounce[c.index].page()).collect();
    vmstat::count(SwapEvent::WriteRequest);
    if super::write_slots(run[0].entry, &pages).is_ok() {
        run.iter_mut().for_each(|c| c.is_write_ok = true);
        return;
    }
    for c in run.iter_mut() {
        vmstat::count(SwapEvent::WriteRequest);
        c.is_write_ok = super::write_slot(c.entry, bounce[c.index].page()).is_ok();
    }
}

/// Steps 1-3 for `frame`: `Ok(Some)` with the locked page and its slot once the
/// bounce page holds its copy; `Ok(None)` if it was clean already; `Err` if it
/// cannot be cleaned now (everything as it was).
fn copy_out(frame: Frame, bounce_page: &OwnedFrames) -> Result<Option<(LockedPage, SwapEntry)>, ()> {
    let is_candidate = frame::with_desc(frame, |d| {
        d.state() == FrameState::User
            && d.map_count() == 1
            && !d.is_compound_head()
            && !d.flags().intersects(FrameFlags::FILE | FrameFlags::LOCKED | FrameFlags::LAZYFREE)
    });
    if !is_candidate || frame == crate::mm::fault::zero_frame() {
        return Err(());
    }
    let page = LockedPage::lock_resident(frame).ok_or(())?;
    let Some(entry) = ensure_slot(frame) else {
        return Err(()); // swap off or full; dropping `page` unlocks the frame
    };
    match protect_and_copy(frame, bounce_page) {
        Ok(true) => Ok(Some((page, entry))),
        Ok(false) => {
            cancel_eviction(page.into_frame(), entry);
            Ok(None)
        }
        Err(()) => {
            cancel_eviction(page.into_frame(), entry);
            Err(())
        }
    }
}

/// Step 3: under the lock of the one space that maps `frame`, copies it into
/// `bounce_page` if it is dirty, write-protected for the copy (see the module docs).
/// Returns true if it copied, false if the page was clean; `Err` if no PTE maps it
/// only once any more, or the space is busy. The one `unsafe` of this file: the
/// copy out of a frame a process maps.
#[allow(unsafe_code)]
fn protect_and_copy(frame: Frame, bounce_page: &OwnedFrames) -> Result<bool, ()> {
    for candidate in rmap::candidates(frame) {
        let page = candidate.page;
        let Some(mut space) = candidate.space.try_lock() else {
            return Err(());
        };
        let Some(pte) = rmap::pte_mapping(&space, page, frame) else {
            continue; // this member has its own copy, a swap entry, or nothing there
        };
        // Fork takes this lock to share the page: under it, "mapped once" holds.
        let (map_count, is_flagged_dirty) = frame::with_desc(frame, |d| (d.map_count(), d.has_flags(FrameFlags::DIRTY)));
        if map_count != 1 {
            return Err(());
        }
        if !pte.flags().contains(PteFlags::DIRTY) && !is_flagged_dirty {
            return Ok(false);
        }
        let mut protected = pte;
        protected.remove_flags(PteFlags::DIRTY | PteFlags::WRITABLE);
        space.replace_pte(page, protected); // flushes: no CPU writes the page now
        // SAFETY: `bounce_page` is a kernel frame owned by the cleaner thread, which
        // is the only caller (see `clean_many`): the destination is ours alone; the source stays allocated (LOCKED by us, and
        // mapped) and unwritten during the copy: its one PTE is read-only and
        // flushed, the space lock held keeps a write fault from making it writable,
        // and the kernel writes user pages only through user mappings or while
        // holding that lock (fault fills, `remote.rs`).
        unsafe { crate::mm::memops::copy_page(bounce_page.start(), frame) };
        frame::with_desc(frame, |d| d.remove_flags(FrameFlags::DIRTY));
        let mut writable_again = pte;
        writable_again.remove_flags(PteFlags::DIRTY);
        space.replace_pte(page, writable_again);
        return Ok(true);
    }
    Err(())
}
