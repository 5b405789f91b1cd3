//! Swap-in: the fault on a swap entry (`do_swap_fault`) and the slot read behind it.
//!
//! A swap fault happens under the faulting space's lock, and no I/O may happen
//! under a spinlock, so it is resolved in two steps, the way Linux drops
//! `mmap_lock` around I/O and retries:
//!
//! ```text
//!  handle_page_fault (space locked)             the retry loop (fault/retry.rs, no lock held)
//!   PTE = swap entry S
//!   └─ mm_core::fault::decide asks cache_lookup(S):
//!       S in the swap cache, frame unlocked -> do_swap_fault maps it (a swap-cache hit, or
//!                                              the end of a major fault)
//!       S in the cache, frame LOCKED        -> PageLocked  ───> yield, retry
//!       S not in the cache                  -> NeedsSwapIn ───> read_into_cache(S):
//!                                                                 new frame, LOCKED, in the cache;
//!                                                                 read slot S; unlock
//!                                                               retry: now a cache hit
//! ```
//! The frame stays in the swap cache after it is mapped (see `swap.rs`), so other
//! PTEs naming S (COW children) map the same frame without reading again, and a
//! page that is only read can later be dropped without a write.
//!
//! Mapping a cached page: a private writable VMA gets a writable PTE only if this
//! PTE is the page's only user (no other swap PTE names S, no other PTE maps the
//! frame); otherwise it is mapped read-only and copy-on-write, exactly as after
//! `fork`. A shared VMA always maps it writable. The PTE starts with its Dirty bit
//! clear, so a later eviction can tell whether the slot is still a good copy.
//!
//! Lock state: [`do_swap_fault`] enters and returns with the space lock held and
//! does no I/O; [`read_into_cache`] is called with no lock held.
#![deny(unsafe_code)]

use alloc::vec::Vec;

use blockdev::{BlockDevice, BlockError};
use mm_core::swap_cache::CacheVerdict;

use super::{READAHEAD_MAX_PAGES, SWAP, SwapEntry, SwapState};
use crate::mm::addr_space::AddressSpace;
use crate::mm::fault::{FaultError, FaultOutcome};
use crate::mm::frame::{self, FrameFlags, FrameState, LockedPage, PageBytes};
use crate::mm::paging::{Pte, PteFlags};
use crate::mm::vmstat::{self, SwapEvent, SwapInPhase};
use crate::mm::{Frame, Order, Page, rmap};
use crate::sync::test_hook::TestHook;

/// Maps `frame`, the swap cache's page for `entry`, at `page` with `flags` (as
/// `mm_core::fault::decide` chose them: writable only for the page's one user),
/// in place of the swap PTE, whose slot reference is dropped.
///
/// `was_read`: the caller has just read this entry's slot (the fault is major).
/// `PageLocked` if the frame was locked for I/O since the caller's lookup (the
/// retry loop waits and tries again); nothing is changed then.
pub fn do_swap_fault(
    space: &mut AddressSpace,
    page: Page,
    entry: SwapEntry,
    frame: Frame,
    flags: PteFlags,
    was_read: bool,
) -> Result<FaultOutcome, FaultError> {
    BEFORE_MAP.call(frame);
    // The lookup found the frame unlocked and in the cache, but on several CPUs an
    // eviction or page buffering may have locked it since, or reclaim dropped it
    // from the cache (issue #13): then wait and look again, as for a page found
    // locked.
    if !rmap::map_if_still_cached(frame, entry.slot() as u32, space.family_page(page)) {
        return Err(FaultError::PageLocked);
    }
    super::note_use(frame);
    let old = space.replace_pte(page, Pte::new(frame, flags));
    debug_assert_eq!(old, Pte::swap(entry), "do_swap_fault: the PTE changed under the lock");
    super::put_swap_pte(entry);
    space.stats.rss_pages += 1;
    space.stats.swap_pages -= 1;
    space.stats.swap_in_pages += 1;
    if was_read {
        Ok(FaultOutcome::SwapIn)
    } else {
        crate::mm::reclaim::note_soft_fault(frame); // page buffering's rescue (`vms`)
        vmstat::count(SwapEvent::CacheHit);
        Ok(FaultOutcome::SwapCacheHit)
    }
}

/// What [`do_swap_fault`] calls with the frame its lookup found, just before it
/// maps it: `None` in a running system. Tests set it to drop the frame from the
/// cache there, as reclaim on another CPU may ([`set_before_map_fn_for_test`]).
static BEFORE_MAP: TestHook<Frame> = TestHook::new();

/// Sets (or, with `None`, clears) the hook [`BEFORE_MAP`] describes. The hook
/// runs with the faulting space locked and no other lock held.
#[doc(hidden)]
pub fn set_before_map_fn_for_test(before_map_fn: Option<fn(Frame)>) {
    BEFORE_MAP.set(before_map_fn);
}

/// What [`read_into_cache`] calls right after allocating its frame, before it
/// takes the swap lock, with no lock held: `None` in a running system. Tests set it
/// to read the slot from there, as a fault on another CPU may
/// ([`set_after_alloc_fn_for_test`]).
static AFTER_ALLOC: TestHook<SwapEntry> = TestHook::new();

/// What [`read_into_cache`] calls with each frame it reads into, once the frame is
/// in the swap cache (findable by reclaim): `None` in a running system. Only for
/// tests (`tests/swap.rs`), which look at the frame from there as reclaim on another
/// CPU may, holding a frame number read before ([`set_after_publish_fn_for_test`]).
static AFTER_PUBLISH: TestHook<Frame> = TestHook::new();

/// Sets (or, with `None`, clears) the hook [`AFTER_PUBLISH`] describes. Called
/// with the swap lock held: the hook may take only the frame lock.
#[doc(hidden)]
pub fn set_after_publish_fn_for_test(after_publish_fn: Option<fn(Frame)>) {
    AFTER_PUBLISH.set(after_publish_fn);
}

/// Makes every [`read_into_cache`] call `after_alloc_fn` with its entry right after
/// allocating the frame to read into (`None`: stop). Only for tests (`tests/swap.rs`).
#[doc(hidden)]
pub fn set_after_alloc_fn_for_test(after_alloc_fn: Option<fn(SwapEntry)>) {
    AFTER_ALLOC.set(after_alloc_fn);
}

/// Why a slot could not be read into the swap cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapInError {
    /// No frame to read into.
    NoMemory,
    /// The disk failed the read.
    Io(BlockError),
}

/// Reads the slot of `entry` into a new frame in the swap cache, and with it, in
/// the same disk request, up to a readahead window of the following slots (see
/// `mm_core::swap_readahead`): each one that holds a page not already in memory,
/// while free frames are above the `low` watermark. Call with no lock held. Does
/// nothing if another path put the page in the cache first.
///
/// Readahead pages wait in the swap cache, unmapped and tracked by the replacement
/// policy (so reclaim drops them, without I/O, if nobody uses them); the fault that
/// maps one counts a hit, which keeps the window open. If the combined request
/// fails, the readahead pages are dropped and the needed slot is read alone, so a
/// bad neighbour slot never costs this process its page. On a read error of the
/// needed slot the frame is dropped again and nothing changes: the swap PTEs still
/// name the slot, and the caller decides the faulting process's fate.
pub fn read_into_cache(entry: SwapEntry) -> Result<(), SwapInError> {
    let started_at = crate::arch::timer::rdtsc(); // the swap-in clock (vmstat::SwapInPhase)
    if super::lookup(entry).is_some() {
        return Ok(());
    }
    let frame = frame::alloc(Order(0), FrameState::User).map_err(|_| SwapInError::NoMemory)?;
    AFTER_ALLOC.call(entry);
    let slot = entry.slot() as u32;
    // On the stack, not the heap: a fault runs when memory may be shortest.
    let mut frame_array = [frame; READAHEAD_MAX_PAGES as usize]; // [i] caches slot + i
    // The I/O handle of each frame (LOCKED while the read runs).
    let mut locked: [Option<LockedPage>; READAHEAD_MAX_PAGES as usize] = [const { None }; READAHEAD_MAX_PAGES as usize];
    let mut nr_frames = 1;
    // Taken here, under the lock this function holds anyway, not by `swap::disk()`.
    let disk = {
        let mut swap = SWAP.lock();
        let state = swap.as_mut().expect("read_into_cache: a swap PTE while swap is off");
        if state.cache.contains(slot) {
            // Read into the cache since the lookup above (a fault on another CPU, or
            // one that ran while the allocation reclaimed): our frame was never used
            // and holds only its allocation's reference, which goes now. (It went to
            // `rmap::free_user_frame`, which wants no reference left: "still in use:
            // User, refcount 1, map count 0" in the fuzz image with `--smp 2`.)
            drop(swap);
            let refcount = frame::put_ref(frame);
            debug_assert_eq!(refcount, 0, "read_into_cache: a frame nobody knows has references");
            if let Err(e) = frame::free_unreferenced_user_frame(frame) {
                panic!("read_into_cache: {e}");
            }
            return Ok(());
        }
        locked[0] = Some(cache_for_read(state, slot, frame));
        let window = state.readahead.on_major_fault(u64::from(slot)).min(READAHEAD_MAX_PAGES);
        let low = crate::mm::reclaim::watermarks().low;
        for next in slot + 1..slot.saturating_add(window) {
            if !state.is_worth_reading(next) || frame::nr_free_frames() <= low {
                break;
            }
            let Ok(extra) = frame::alloc(Order(0), FrameState::User) else { break };
            locked[nr_frames] = Some(cache_for_read(state, next, extra));
            frame::with_desc(extra, |d| d.insert_flags(FrameFlags::READAHEAD));
            frame_array[nr_frames] = extra;
            nr_frames += 1;
        }
        state.disk
    };
    let frames = &frame_array[..nr_frames];
    let read_at = vmstat::clock_swap_in(SwapInPhase::Prepare, started_at);
    let (result, is_readahead_ok) = match read_locked(disk, entry, &mut locked[..nr_frames]) {
        Ok(()) => (Ok(()), true),
        Err(e) if frames.len() == 1 => (Err(e), false),
        Err(_) => (read_locked(disk, entry, &mut locked[..1]), false),
    };
    let finish_at = vmstat::clock_swap_in(SwapInPhase::Read, read_at);
    let mut kept_array = [frame; READAHEAD_MAX_PAGES as usize];
    let mut nr_kept = 0;
    let mut swap = SWAP.lock();
    let state = swap.as_mut().expect("read_into_cache: swap went off during a read");
    for page in &mut locked[..nr_frames] {
        drop(page.take()); // unlocks the frame
    }
    for (next, &extra) in (slot + 1..).zip(&frames[1..]) {
        // Dropped if the read failed, or if the slot's last swap PTE went away
        // meanwhile (only the cache's reference is left: nobody needs the page).
        if state.slot_state(next).on_readahead_done(is_readahead_ok) == CacheVerdict::Keep {
            kept_array[nr_kept] = extra;
            nr_kept += 1;
        } else {
            state.cache_remove(next, extra);
        }
    }
    match result {
        Ok(()) => {
            drop(swap);
            kept_array[nr_kept] = frame;
            nr_kept += 1;
            // Pages read from the disk, kept or not (Linux's pswpin counts them so too).
            let nr_read = if is_readahead_ok { frames.len() as u64 } else { 1 };
            vmstat::count_n(SwapEvent::SwapIn, nr_read);
            vmstat::count_n(SwapEvent::ReadaheadPage, nr_read - 1);
            for &f in &kept_array[..nr_kept] {
                crate::mm::reclaim::track(f);
            }
            vmstat::clock_swap_in(SwapInPhase::Finish, finish_at);
            Ok(())
        }
        Err(e) => {
            vmstat::count(SwapEvent::ReadError);
            debug_assert!(nr_kept == 0, "read_into_cache: readahead pages kept after a failed read");
            let is_freed = state.cache_remove(slot, frame);
            debug_assert!(is_freed, "read_into_cache: a frame under I/O was mapped");
            Err(SwapInError::Io(e))
        }
    }
}

/// Puts `frame`, a fresh frame, in the cache for `slot` (which is in use), LOCKED
/// for the read to come; returns its I/O handle.
///
/// Locked *before* it joins the cache: from then on reclaim can find it (the
/// cleaner and evictions lock frames whose numbers they read earlier, and
/// `LockedPage::lock_resident` accepts a swap-cache frame), and one that locked it
/// first would have had this read's page in its hands ("a fresh frame is already
/// locked", `swap_ramdisk` with `--smp 2`). Until it is in the cache it has no place,
/// and `lock_resident` refuses it.
fn cache_for_read(state: &mut SwapState, slot: u32, frame: Frame) -> LockedPage {
    if let Err(e) = state.map.dup(mm_core::swap_map::SwapSlot::from_index(slot)) {
        panic!("read_into_cache: slot {slot} is not in use: {e:?}");
    }
    let page = LockedPage::lock(frame).expect("read_into_cache: a fresh frame is already locked");
    state.cache_insert(slot, frame); // the allocation's reference is the cache's
    AFTER_PUBLISH.call(frame);
    page
}

/// Returns the bytes of a page being read.
fn locked_bytes(page: &mut Option<LockedPage>) -> &mut PageBytes {
    page.as_mut().expect("read_into_cache: a frame without its I/O handle").bytes_mut()
}

/// Reads the adjacent slots from `first` into `pages` from `disk` (one device
/// request), with no lock held.
///
/// A single page (every random major fault) goes as a one-element list on the
/// stack: no heap allocation in the I/O path. A readahead batch needs a list of
/// up to [`READAHEAD_MAX_PAGES`] page references, one heap allocation for the whole
/// batch; if the heap cannot give it (memory is short), one request per page.
fn read_locked(disk: &dyn BlockDevice, first: SwapEntry, pages: &mut [Option<LockedPage>]) -> Result<(), BlockError> {
    // With several CPUs the lock may be another CPU's: the check holds only with one.
    debug_assert!(crate::arch::smp::nr_online() > 1 || !SWAP.is_locked(), "read_locked: swap lock held across I/O");
    let first_slot = first.slot();
    if let [page] = pages {
        return mm_core::swap_area::read_slots(disk, first_slot, &mut [locked_bytes(page)]);
    }
    let mut list: Vec<&mut PageBytes> = Vec::new();
    if list.try_reserve_exact(pages.len()).is_err() {
        for (i, page) in pages.iter_mut().enumerate() {
            mm_core::swap_area::read_slots(disk, first_slot + i as u64, &mut [locked_bytes(page)])?;
        }
        return Ok(());
    }
    list.extend(pages.iter_mut().map(locked_bytes));
    mm_core::swap_area::read_slots(disk, first_slot, &mut list)
}
