//! Swap-out of one frame: find every PTE through the reverse map, turn each into a
//! swap entry, write the page if the slot does not already hold it, free the frame.
//!
//! ```text
//!  evict(F):
//!   1. lock F (flag LOCKED): a fault on its swap entry now waits; nobody else evicts it
//!   2. slot S: F's swap-cache slot, or a fresh one (F enters the swap cache, DIRTY)
//!   3. for each space of F's fork family, under its lock, the PTE at F's page:
//!        maps F?  PTE [F, flags] -> swap entry S;  share count of S += 1;  invlpg (or
//!        mark the space's TLB stale); remember the Dirty bit; F's map count and
//!        refcount -= 1.   Anything else (a COW copy, a swap entry, none)?  skip it
//!   4. dirty (a Dirty bit, or F flagged DIRTY)?  write F to S  -- no lock of ours held
//!      clean?  S already holds the page: no I/O at all
//!   5. no PTE mapped F again meanwhile: F leaves the swap cache and is freed
//! ```
//! A frame that `MADV_FREE` gave up and that was not written since is not swapped
//! at all: its PTE is cleared and the frame freed ([`drop_lazyfree`]).
//!
//! Reclaim evicts victims in batches ([`evict_many`]): steps 1-3 for each, then one
//! disk request writes a whole run of adjacent slots (step 4 *clustered*), then
//! step 5 for each. A request costs about 75 µs under TCG whether it carries one
//! page or 32, so this is most of the swap-out throughput.
//!
//! If a space of the family cannot be locked (it is busy) the PTEs changed so far
//! are put back and the frame stays. If the write fails, every PTE is put back as it
//! was (the page stays resident), the slot is retired, and the error is returned for
//! the caller to report. The driver yields the CPU while the disk works, so other
//! tasks run between steps 3 and 5: one that faults on the page finds F LOCKED in
//! the swap cache and waits (`swapin.rs`).
//!
//! Lock state: called with no lock held; takes one address-space lock at a time
//! (`try_lock`: reclaim may be asked for memory while a space is busy), never across
//! the write.
#![deny(unsafe_code)]

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use blockdev::{BlockError, MAX_PAGES_PER_REQUEST};

use super::{SwapEntry, abandon_slot, cancel_eviction, ensure_slot, finish_eviction, put};
use crate::mm::frame::{self, FrameFlags, LockedPage, PageBytes};
use crate::mm::addr_space::AddressSpace;
use crate::mm::paging::{Pte, PteFlags};
use crate::mm::rmap;
use crate::mm::vmstat::{self, SwapEvent};
use crate::mm::{Frame, Page};
use crate::sync::IrqMutex;
use crate::sync::test_hook::TestHook;

/// How an eviction ended well.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evicted {
    /// The page was written to its slot and the frame freed.
    Written,
    /// The slot already held the page (clean swap-cache page): freed without I/O.
    Clean,
    /// The slot holds the page (written now, or clean already), but a fault mapped
    /// the frame again meanwhile, from the swap cache: the frame stays, in use.
    SavedButMappedAgain,
    /// A `MADV_FREE` page not written since the advice: dropped, no I/O, no slot;
    /// the next touch sees a zero page.
    LazyFreed,
}

/// Why a frame was not evicted. The frame and its PTEs are as they were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictError {
    /// Not an evictable user page (free, kernel memory, the zero page, or locked for I/O).
    NotEvictable,
    /// Swap is off, or has no free slot for a page that needs one.
    SwapFull,
    /// A space of the frame's family is locked by someone else.
    Busy,
    /// The write failed; the page stays resident and its slot is retired.
    WriteFailed(BlockError),
}

/// One PTE changed by an eviction, to put back if the eviction is abandoned.
pub(super) struct Unmapped {
    /// The space (not kept alive by the eviction: if it exits meanwhile, its swap
    /// PTE goes with it).
    space: Weak<IrqMutex<AddressSpace>>,
    page: Page,
    old: Pte,
}

/// Sets LOCKED on a user frame that is in use and not already locked (not the
/// zero page); the handle is what lets us hand the page to the disk.
fn lock_page(frame: Frame) -> Result<LockedPage, EvictError> {
    if frame == crate::mm::fault::zero_frame() {
        return Err(EvictError::NotEvictable);
    }
    LockedPage::lock_resident(frame).ok_or(EvictError::NotEvictable)
}

/// Swaps `frame` out: see the module docs. Call with no lock held.
pub fn evict(frame: Frame) -> Result<Evicted, EvictError> {
    evict_many(&[frame]).pop().expect("evict_many: one result per frame")
}

/// Swaps `frames` out together and returns each one's outcome, in order.
///
/// Every frame goes through steps 1-3 first; then the dirty ones are written
/// sorted by slot, each run of adjacent slots (the slot allocator hands them out
/// in order, so a batch usually is one run) in one disk request of up to
/// [`MAX_PAGES_PER_REQUEST`] pages (swap-out *clustering*, Linux's
/// `SWAP_CLUSTER_MAX`); then step 5 for each. If a run's request fails, its pages
/// are written one by one, so only the slot that really fails is retired.
/// Call with no lock held.
pub fn evict_many(frames: &[Frame]) -> Vec<Result<Evicted, EvictError>> {
    // Eviction gets memory back: its bookkeeping may use the heap's reclaim reserve.
    let _reclaim = crate::mm::heap::enter_reclaim();
    let mut prepared: Vec<(usize, Prepared)> = Vec::new();
    if frames.len() > SMALL_BATCH && prepared.try_reserve_exact(frames.len()).is_err() {
        // Memory is short (or fragmented) exactly when reclaim runs: the batch's
        // bookkeeping (~3 KiB for 32 victims) may not fit in one heap block. Evict
        // in small batches instead, whose blocks fit in a page (issue #10 item 1:
        // this allocation failing was a kernel panic under pressure).
        return frames.chunks(SMALL_BATCH).flat_map(evict_many).collect();
    }
    let mut results: Vec<Option<Result<Evicted, EvictError>>> = frames.iter().map(|_| None).collect();
    for (i, &frame) in frames.iter().enumerate() {
        if drop_lazyfree(frame) {
            results[i] = Some(Ok(Evicted::LazyFreed));
            continue;
        }
        match prepare(frame) {
            Ok(p) => prepared.push((i, p)),
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    prepared.sort_unstable_by_key(|(_, p)| p.entry.slot());
    let is_next_slot = |(_, a): &(usize, Prepared), (_, b): &(usize, Prepared)| {
        a.is_dirty && b.is_dirty && b.entry.slot() == a.entry.slot() + 1
    };
    for run in prepared.chunk_by_mut(is_next_slot).filter(|run| run[0].1.is_dirty) {
        for request in run.chunks_mut(MAX_PAGES_PER_REQUEST) {
            write_run(request);
        }
    }
    for (i, p) in prepared {
        results[i] = Some(match p.write_error {
            None => Ok(finish(p)),
            Some(e) => Err(abandon(p, e)),
        });
    }
    results.into_iter().map(|r| r.expect("evict_many: every frame has an outcome")).collect()
}

/// Victims evicted together when the heap cannot hold a full batch's bookkeeping.
const SMALL_BATCH: usize = 4;

/// A frame whose PTEs are swap entries now, waiting for its write (steps 1-3 done).
struct Prepared {
    /// The frame, LOCKED by us.
    page: LockedPage,
    entry: SwapEntry,
    /// The slot does not hold the page yet: it must be written.
    is_dirty: bool,
    /// The PTEs changed, to put back if the write fails.
    undo: Vec<Unmapped>,
    /// The write failed with this.
    write_error: Option<BlockError>,
}

/// Drops `frame` without I/O if `MADV_FREE` gave it up and it was not written
/// since (its one PTE's Dirty bit is clear): the PTE is cleared and the frame
/// freed. A frame written again loses the `LAZYFREE` flag and is evicted as usual.
/// Returns true if the frame was dropped.
fn drop_lazyfree(frame: Frame) -> bool {
    let is_candidate = frame::with_desc(frame, |d| {
        d.has_flags(FrameFlags::LAZYFREE)
            && d.map_count() == 1
            && !d.has_flags(FrameFlags::SWAP_CACHE)
            && !d.has_flags(FrameFlags::LOCKED)
    });
    if !is_candidate {
        return false;
    }
    for candidate in rmap::candidates(frame) {
        let page = candidate.page;
        let Some(mut space) = candidate.space.try_lock() else {
            return false; // busy: evict it the usual way (or later)
        };
        let Some(pte) = rmap::pte_mapping(&space, page, frame) else {
            continue;
        };
        if pte.flags().contains(PteFlags::DIRTY) {
            frame::with_desc(frame, |d| d.remove_flags(FrameFlags::LAZYFREE));
            return false;
        }
        space.replace_pte(page, Pte::UNUSED);
        space.stats.rss_pages -= 1;
        rmap::unmap(frame, space.family_page(page), false);
        vmstat::count(SwapEvent::LazyFreed);
        return true;
    }
    false
}

/// What [`prepare`] calls between locking a victim (step 1) and giving it a slot
/// (step 2), with no lock held: `None` in a running system. Tests set it to run
/// another path exactly there (on several CPUs the owner's `munmap` may land there:
/// issue #13), see [`set_after_lock_fn_for_test`].
static AFTER_LOCK: TestHook<Frame> = TestHook::new();

/// Makes every eviction call `after_lock_fn` with its victim right after locking
/// it, before it has a slot (`None`: stop). Only for tests (`tests/swap.rs`), which
/// use it to interleave an unmap with an eviction deterministically.
#[doc(hidden)]
pub fn set_after_lock_fn_for_test(after_lock_fn: Option<fn(Frame)>) {
    AFTER_LOCK.set(after_lock_fn);
}

/// Steps 1-3 for `frame`: lock it, give it a slot, turn its PTEs into swap entries.
/// On failure everything is as it was.
fn prepare(frame: Frame) -> Result<Prepared, EvictError> {
    let page = lock_page(frame)?;
    AFTER_LOCK.call(frame);
    let Some(entry) = ensure_slot(frame) else {
        return Err(EvictError::SwapFull); // dropping `page` unlocks the frame
    };
    let (mut is_dirty, undo) = match unmap_all(frame, entry) {
        Ok(done) => done,
        Err(undo) => {
            restore_all(frame, entry, &undo);
            cancel_eviction(page.into_frame(), entry);
            return Err(EvictError::Busy);
        }
    };
    if frame::with_desc(frame, |d| d.map_count()) != 0 {
        // Still mapped by a PTE the walk did not see: on several CPUs a fork that
        // joined the family after `rmap::candidates` copied the PTE before we
        // replaced it (issue #13; Linux's shrink_folio_list likewise keeps a folio
        // still mapped after try_to_unmap). Put everything back; try again later.
        restore_all(frame, entry, &undo);
        cancel_eviction(page.into_frame(), entry);
        return Err(EvictError::Busy);
    }
    is_dirty |= frame::with_desc(frame, |d| {
        let was = d.has_flags(FrameFlags::DIRTY);
        d.remove_flags(FrameFlags::DIRTY);
        was
    });
    crate::mm::cleaner::note_eviction(frame, is_dirty);
    Ok(Prepared { page, entry, is_dirty, undo, write_error: None })
}

/// Step 4 for a run of dirty frames with adjacent slots: one request, or one per
/// page if that fails.
fn write_run(run: &mut [(usize, Prepared)]) {
    let pages: Vec<&PageBytes> = run.iter().map(|(_, p)| p.page.bytes()).collect();
    vmstat::count(SwapEvent::WriteRequest);
    let Err(e) = super::write_slots(run[0].1.entry, &pages) else {
        return;
    };
    drop(pages);
    if run.len() == 1 {
        run[0].1.write_error = Some(e);
        return;
    }
    for (_, p) in run.iter_mut() {
        vmstat::count(SwapEvent::WriteRequest);
        p.write_error = super::write_slot(p.entry, p.page.bytes()).err();
    }
}

/// Step 5: the slot holds the page; the frame is freed unless a PTE mapped it again.
fn finish(p: Prepared) -> Evicted {
    vmstat::count(if p.is_dirty { SwapEvent::SwapOut } else { SwapEvent::ReclaimedClean });
    if !finish_eviction(p.page.into_frame(), p.entry) {
        return Evicted::SavedButMappedAgain;
    }
    if p.is_dirty { Evicted::Written } else { Evicted::Clean }
}

/// The write failed: every PTE is put back (the page stays resident), the slot is retired.
fn abandon(p: Prepared, e: BlockError) -> EvictError {
    vmstat::count(SwapEvent::WriteError);
    let frame = p.page.frame();
    restore_all(frame, p.entry, &p.undo);
    let is_retired = abandon_slot(p.page.into_frame(), p.entry);
    log::warn!(
        "swap: writing {:?} to slot {} failed: {e}; the page stays resident{}",
        frame,
        p.entry.slot(),
        if is_retired { ", the slot is retired" } else { "" }
    );
    EvictError::WriteFailed(e)
}

/// Replaces every PTE mapping `frame` with the swap entry. Returns whether any had
/// its Dirty bit, and what was changed; on a busy space, returns what was changed so
/// far (to undo) as the error.
pub(super) fn unmap_all(frame: Frame, entry: SwapEntry) -> Result<(bool, Vec<Unmapped>), Vec<Unmapped>> {
    let mut undo = Vec::new();
    let mut is_dirty = false;
    for candidate in rmap::candidates(frame) {
        let page = candidate.page;
        let Some(mut space) = candidate.space.try_lock() else {
            return Err(undo);
        };
        if rmap::pte_mapping(&space, page, frame).is_none() {
            continue; // this member has its own copy, a swap entry, or nothing there
        }
        if super::dup(entry).is_err() {
            return Err(undo);
        }
        let old = space.replace_pte(page, Pte::swap(entry));
        is_dirty |= old.flags().contains(PteFlags::DIRTY);
        space.stats.rss_pages -= 1;
        space.stats.swap_pages += 1;
        space.stats.swap_out_pages += 1;
        rmap::unmap(frame, space.family_page(page), false);
        undo.push(Unmapped { space: Arc::downgrade(&candidate.space), page, old });
    }
    Ok((is_dirty, undo))
}

/// Puts back every PTE in `undo` that still holds the swap entry.
pub(super) fn restore_all(frame: Frame, entry: SwapEntry, undo: &[Unmapped]) {
    for u in undo {
        let Some(space) = u.space.upgrade() else {
            continue; // the space is gone, and its swap PTE with it
        };
        let mut space = space.lock();
        if space.pte(u.page.start_address()) != Some(Pte::swap(entry)) {
            continue; // changed meanwhile (unmapped): nothing to restore
        }
        space.replace_pte(u.page, u.old);
        rmap::map(frame, space.family_page(u.page));
        if let Err(e) = put(entry) {
            panic!("evict: undo of {:?}: slot reference: {e:?}", u.page);
        }
        space.stats.rss_pages += 1;
        space.stats.swap_pages -= 1;
        space.stats.swap_out_pages -= 1;
    }
}
