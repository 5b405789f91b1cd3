//! Swap: the swap area on a block device, its slots, and the swap cache.
//!
//! | piece | where |
//! |---|---|
//! | the header page, `swapon` (format a blank disk, refuse a foreign one), `swapoff` | [`area`] |
//! | the slot map (bitmap + share counts, slot 0 = header) | `mm_core::swap_map`, behind [`SWAP`] |
//! | the swap cache: slot -> frame, while a page is both on disk and in memory | here |
//! | swap-out of one frame through the reverse map | [`evict`] |
//! | the swap fault (`do_swap_fault`) and the read that feeds it | [`swapin`] |
//! | slot I/O: one slot = one 4 KiB page = 8 sectors at `8 * slot` | [`read_slot`], [`write_slot`], `mm_core::swap_area` |
//!
//! The disk is whatever `&'static dyn blockdev::BlockDevice` [`swapon`] was given
//! (the block layer's "swap" disk by default, see `crate::block`): swap never sees
//! a driver. Pages reach the disk only as borrowed page bytes, which the swap code
//! gets from a `frame::LockedPage` (a frame it locked for I/O and nobody maps).
//!
//! A swapped-out page is remembered in its non-present PTE as a swap entry
//! (`Pte::swap(SwapEntry::new(0, slot))`, area 0: there is one swap area).
//!
//! # References
//!
//! ```text
//!  slot share count  = swap PTEs naming the slot + 1 while a frame caches it (+ 1 if retired)
//!  frame refcount    = PTEs mapping the frame    + 1 while it is in the swap cache
//! ```
//! `fork` copying a swap PTE calls [`dup`]; dropping one (munmap, exit) calls
//! [`put_swap_pte`]; a slot is free again when its count reaches zero.
//!
//! # The swap cache
//!
//! A frame is in the swap cache (flag `SWAP_CACHE`, `private` = its slot, an entry in
//! the slot -> frame map) while its page is both in memory and in a slot:
//! - **swap-out** puts it there first, rewrites every PTE to the swap entry, writes
//!   the slot (if needed), then takes it out and frees the frame;
//! - **swap-in** reads the slot into a new frame *in the cache*, so a second process
//!   whose PTE names the same slot (a page shared by COW children) finds the frame
//!   there and maps it: written once, read once;
//! - the frame **stays** in the cache while mapped, so if it is evicted again and no
//!   PTE Dirty bit was set since (and it is not flagged `DIRTY`), the slot still holds
//!   its contents and it is dropped **without I/O**.
//!
//! It leaves the cache, giving up its slot reference, when (a) eviction finished,
//! (b) its last PTE went away and nothing needs it there ([`release_unmapped`]: the
//! slot has no other reference, or the page is clean so the slot is a good copy), or
//! (c) the last swap PTE of an unmapped cached page went away ([`put_swap_pte`]). A
//! write fault does not free the slot: the page is dirtied in place (the PTE's Dirty
//! bit), stays in the cache, and its next eviction rewrites the same slot. A slot
//! whose write failed is *retired*: kept allocated, never handed out again.
//!
//! These rules are decided in one place, `mm_core::swap_cache::SlotState` (one
//! method per event: a swap PTE dropped, the last unmap, an eviction done or
//! cancelled, a failed write, a readahead finished); this file reads the counts
//! under [`SWAP`] (`SwapState::slot_state`) and applies the verdict. The host
//! model test (`mm_core::fault`'s `model_tests.rs`) checks them against a reference.
//!
//! Locks: [`SWAP`] (see the lock order in [`crate::mm`]). The disk's own lock is
//! never taken with [`SWAP`] held: slot I/O runs with no lock of ours held (STYLE §5).
#![deny(unsafe_code)]

pub mod area;
mod cache;
pub mod clean;
pub mod buffer;
pub mod evict;
pub mod swapin;

use alloc::collections::{BTreeMap, BTreeSet};

use mm_core::fault::SwapCacheLookup;
use mm_core::swap_cache::{CacheVerdict, CachedPage, SlotState, WriteFailVerdict};
use mm_core::swap_map::{SwapMap, SwapMapError, SwapSlot};
use mm_core::swap_readahead::ReadaheadWindow;

pub use area::{SwapOffError, SwapOn, SwapOnError, swapoff, swapon, swapon_device};
pub use evict::{EvictError, Evicted, evict, evict_many};
pub use mm_core::pte::SwapEntry;
pub use swapin::{do_swap_fault, read_into_cache};

pub use mm_core::swap_area::slot_sector;

use blockdev::{BlockDevice, BlockError};

use super::Frame;
use super::frame::{self, FrameFlags, LockedPage, PageBytes};
use crate::sync::IrqMutex;
use core::sync::atomic::{AtomicU32, Ordering};

/// The one swap area's state: which slots are used, by how many references, and
/// which frames cache which slots.
pub(crate) struct SwapState {
    /// The disk the area is on.
    pub(crate) disk: &'static dyn BlockDevice,
    /// Slot bitmap and share counts.
    pub(crate) map: SwapMap,
    /// The swap cache: slot -> the frame holding its page (an array: see [`cache`]).
    pub(crate) cache: cache::SlotCache,
    /// Slots whose write failed: allocated forever, never handed out again.
    pub(crate) retired: BTreeSet<u32>,
    /// How many slots the next major fault reads (see `mm_core::swap_readahead`).
    pub(crate) readahead: ReadaheadWindow,
}

impl SwapState {
    /// Creates the state of a swap area with the slots of `map`, none cached; fails if
    /// the heap cannot hold the cache's index.
    fn new(map: SwapMap, disk: &'static dyn BlockDevice) -> Result<Self, alloc::collections::TryReserveError> {
        let cache = cache::SlotCache::with_slots(map.nr_slots())?;
        Ok(Self { disk, map, cache, retired: BTreeSet::new(), readahead: ReadaheadWindow::new(readahead_max_pages()) })
    }

    /// Returns true if readahead may read `slot`: it holds a page (in use, not
    /// retired, not held by a wipe) that is not already in memory (not cached).
    fn is_worth_reading(&self, slot: u32) -> bool {
        slot < self.map.nr_slots()
            && self.map.count(SwapSlot::from_index(slot)).unwrap_or(0) > 0
            && !self.map.is_wiping(SwapSlot::from_index(slot))
            && !self.cache.contains(slot)
            && !self.retired.contains(&slot)
    }

    /// Returns what the swap cache's rules (`mm_core::swap_cache`) need to know of
    /// `slot`: its share count and the state of the frame caching it.
    fn slot_state(&self, slot: u32) -> SlotState {
        let refs = self.map.count(SwapSlot::from_index(slot)).unwrap_or(0);
        let page = self.cache.get(slot).map(|frame| {
            frame::with_desc(frame, |d| CachedPage {
                map_count: d.map_count(),
                is_locked: d.has_flags(FrameFlags::LOCKED),
                is_dirty: d.has_flags(FrameFlags::DIRTY),
            })
        });
        SlotState::new(refs, page)
    }

    /// Puts `frame` in the cache for `slot`: the cache's slot reference is taken by
    /// the caller (a fresh slot's first reference, or a `dup`).
    fn cache_insert(&mut self, slot: u32, frame: Frame) {
        let old = self.cache.insert(slot, frame);
        assert!(old.is_none(), "swap: slot {slot} cached twice");
        frame::with_desc(frame, |d| {
            d.insert_flags(FrameFlags::SWAP_CACHE);
            d.set_private(slot);
        });
    }

    /// Takes `frame` out of the cache: drops the cache's slot reference and its
    /// frame reference. Returns true if the frame was freed (no reference left).
    fn cache_remove(&mut self, slot: u32, frame: Frame) -> bool {
        let removed = self.cache.remove(slot);
        assert_eq!(removed, Some(frame), "swap: slot {slot} is not cached by {frame:?}");
        if let Err(e) = self.map.put(SwapSlot::from_index(slot)) {
            panic!("swap: cache reference of slot {slot}: {e:?}");
        }
        frame::with_desc(frame, |d| {
            d.remove_flags(FrameFlags::SWAP_CACHE | FrameFlags::DIRTY | FrameFlags::READAHEAD);
            d.set_private(0);
        });
        if frame::put_ref(frame) == 0 {
            super::rmap::free_user_frame(frame);
            return true;
        }
        false
    }
}

/// The largest readahead window, in pages: what one disk request carries.
const READAHEAD_MAX_PAGES: u32 = blockdev::MAX_PAGES_PER_REQUEST as u32;

/// The largest readahead window set by `/proc/sys/vm/page-cluster` (at most
/// [`READAHEAD_MAX_PAGES`]); a swap area turned on later starts with it.
static READAHEAD_LIMIT: AtomicU32 = AtomicU32::new(READAHEAD_MAX_PAGES);

/// Returns the largest swap readahead window, in pages (1: no readahead).
pub fn readahead_max_pages() -> u32 {
    READAHEAD_LIMIT.load(Ordering::Relaxed)
}

/// Returns the largest window `set_readahead_max_pages` accepts: one disk request.
pub fn readahead_limit_pages() -> u32 {
    READAHEAD_MAX_PAGES
}

/// Sets the largest swap readahead window to `max_pages` (1..=[`readahead_limit_pages`]);
/// returns false and changes nothing if it is out of range.
pub fn set_readahead_max_pages(max_pages: u32) -> bool {
    if max_pages == 0 || max_pages > READAHEAD_MAX_PAGES {
        return false;
    }
    READAHEAD_LIMIT.store(max_pages, Ordering::Relaxed);
    if let Some(state) = SWAP.lock().as_mut() {
        state.readahead.set_max_pages(max_pages);
    }
    true
}

/// The swap area (`None` while swap is off).
static SWAP: IrqMutex<Option<SwapState>> = IrqMutex::new_ranked(crate::sync::LockRank::Swap, None);

/// Slots one wipe request covers at most.
const WIPE_RUN_SLOTS: u32 = 1024;

/// Wipes every freed slot that still holds a dead page (zeroes it on the disk, or
/// discards it), in runs of adjacent slots; returns how many were wiped. Called
/// by the wiper thread with no lock held (it does disk I/O); a no-op when the disk cannot
/// wipe. A failed wipe is logged and the slots are freed all the same: they hold
/// nothing anyone can read through swap.
pub fn wipe_freed_slots() -> u64 {
    let Some(disk) = disk() else { return 0 };
    let mut nr_wiped = 0;
    loop {
        let Some((first, len)) = SWAP.lock().as_mut().and_then(|s| s.map.take_unwiped_run(WIPE_RUN_SLOTS)) else {
            break;
        };
        if let Err(e) = mm_core::swap_area::wipe_slots(disk, u64::from(first.index()), u64::from(len)) {
            log::warn!("swap: wiping slots {}..{} on {}: {e}", first.index(), first.index() + len, disk.name());
        } else {
            nr_wiped += u64::from(len);
            super::vmstat::count_n(super::vmstat::SwapEvent::SlotWiped, u64::from(len));
        }
        if let Some(state) = SWAP.lock().as_mut()
            && let Err(e) = state.map.finish_wipe(first, len)
        {
            panic!("swap: slots {}+{len} changed during their wipe: {e:?}", first.index());
        }
    }
    nr_wiped
}

/// Where the wiper thread waits for freed slots.
static WIPER_QUEUE: crate::sync::WaitQueue = crate::sync::WaitQueue::new();

/// Starts the wiper: a kernel thread that sleeps until freed slots wait to be
/// wiped and wipes them ([`wipe_freed_slots`]). Without it (it could not be
/// started, or the disk cannot wipe) freed slots keep their old contents.
///
/// Who wakes it: an exit, after dropping its space ([`kick_wiper`]), and kswapd
/// and the cleaner after each pass. A space's last reference is not always the
/// exit's, though: with several CPUs, reclaim or a `process_vm_readv` on another
/// CPU may hold it then, and drop it later where no wake-up can be sent (the
/// space's drop may run under other locks). So the wiper also looks once every
/// [`WIPER_PERIOD_TICKS`] by itself: a freed slot waits at most that long.
pub fn start_wiper() {
    if !SWAP.lock().as_ref().is_some_and(|s| s.map.is_tracking_wipes()) {
        return; // swap is off or the disk cannot wipe: nothing will ever need it
    }
    if let Err(e) = crate::sync::kthread::spawn("swapwipe", wiper_main) {
        log::warn!("swap: wiper not started ({e:?}): freed slots keep their old contents");
    }
}

/// How often the wiper looks for freed slots when nobody woke it (1 s).
pub const WIPER_PERIOD_TICKS: u64 = crate::arch::timer::TICK_HZ;

extern "C" fn wiper_main() -> ! {
    loop {
        let next_look = crate::arch::timer::ticks() + WIPER_PERIOD_TICKS;
        WIPER_QUEUE.wait_until_deadline(|| nr_unwiped_slots() > 0, next_look);
        wipe_freed_slots();
    }
}

/// Wakes the wiper if freed slots wait to be wiped. Called with no lock held
/// where slots are freed: an exit, the end of a kswapd or cleaner pass.
pub fn kick_wiper() {
    if nr_unwiped_slots() > 0 {
        WIPER_QUEUE.wake_one();
    }
}

/// Returns the number of freed slots not wiped yet: waiting, or being wiped now.
pub fn nr_slots_to_wipe() -> u32 {
    SWAP.lock().as_ref().map_or(0, |s| s.map.nr_unwiped() + s.map.nr_wiping())
}

/// Returns the number of freed slots waiting to be wiped.
pub fn nr_unwiped_slots() -> u32 {
    SWAP.lock().as_ref().map_or(0, |s| s.map.nr_unwiped())
}

/// Returns the disk swap is on (`None` while swap is off).
pub fn disk() -> Option<&'static dyn BlockDevice> {
    SWAP.lock().as_ref().map(|s| s.disk)
}

/// Turns swap on at boot (on the disk `swapdev=` names, see [`area::device_name`])
/// and logs the outcome; swap stays off (with a reason) if the disk is missing or
/// refused.
pub fn init() {
    match swapon() {
        Ok(on) => log::info!(
            "swap: {} slots ({} MiB) on {}{}",
            on.nr_slots - 1,
            (u64::from(on.nr_slots - 1) * super::PAGE_SIZE) >> 20,
            disk().map_or("?", |d| d.name()),
            if on.is_formatted_now { ", formatted now (the header page was blank)" } else { "" }
        ),
        Err(e) => log::warn!("swap: off: {e}"),
    }
}

/// Returns true if swap is on.
pub fn is_on() -> bool {
    SWAP.lock().is_some()
}

/// Returns (free slots, usable slots): both 0 while swap is off. Slots a wipe
/// holds for a moment count as free: nobody's page is in them.
pub fn slot_counts() -> (u64, u64) {
    SWAP.lock().as_ref().map_or((0, 0), |s| {
        (u64::from(s.map.nr_free() + s.map.nr_wiping()), u64::from(s.map.nr_slots() - 1))
    })
}

/// Returns the slot a swap entry names.
fn slot_of(entry: SwapEntry) -> SwapSlot {
    SwapSlot::from_index(entry.slot() as u32)
}

/// Allocates a free slot with one reference; `None` if swap is off or full.
pub fn alloc_slot() -> Option<SwapEntry> {
    let slot = SWAP.lock().as_mut()?.map.alloc()?;
    Some(SwapEntry::new(0, u64::from(slot.index())))
}

/// Adds a reference to the slot of `entry` (a copied swap PTE).
pub fn dup(entry: SwapEntry) -> Result<u16, SwapMapError> {
    SWAP.lock().as_mut().ok_or(SwapMapError::BadSlot)?.map.dup(slot_of(entry))
}

/// Drops a reference to the slot of `entry`; returns the references left.
///
/// For slots that are not cached (tests, and undoing a fresh allocation); a swap PTE
/// going away calls [`put_swap_pte`].
pub fn put(entry: SwapEntry) -> Result<u16, SwapMapError> {
    SWAP.lock().as_mut().ok_or(SwapMapError::BadSlot)?.map.put(slot_of(entry))
}

/// Returns the references to the slot of `entry` (0: free).
pub fn slot_count(entry: SwapEntry) -> Result<u16, SwapMapError> {
    SWAP.lock().as_ref().ok_or(SwapMapError::BadSlot)?.map.count(slot_of(entry))
}

/// Returns the references to slot `slot` (0 for a free or invalid slot).
pub fn slot_refs(slot: u64) -> u16 {
    let slot = SwapSlot::from_index(slot as u32);
    SWAP.lock().as_ref().and_then(|s| s.map.count(slot).ok()).unwrap_or(0)
}

/// Drops the reference of a swap PTE that went away (munmap, exit, a swap-in that
/// mapped the page). If only the swap cache still holds the slot and its frame is
/// mapped nowhere and not under I/O, the cached copy is dropped too.
pub fn put_swap_pte(entry: SwapEntry) {
    let mut swap = SWAP.lock();
    let state = swap.as_mut().expect("swap: a swap PTE while swap is off");
    let slot = slot_of(entry);
    if let Err(e) = state.map.put(slot) {
        panic!("put_swap_pte: {entry:?}: {e:?}");
    }
    let Some(frame) = state.cache.get(slot.index()) else {
        return; // the references left are other swap PTEs', or the retired list's
    };
    if state.slot_state(slot.index()).on_swap_pte_dropped() == CacheVerdict::Drop {
        state.cache_remove(slot.index(), frame);
    }
}

/// A fault is mapping `frame`, a swap-cache page: if readahead brought it in, that
/// was a good guess; the readahead window hears of it.
pub(super) fn note_use(frame: Frame) {
    let was_readahead = frame::with_desc(frame, |d| {
        let was = d.has_flags(FrameFlags::READAHEAD);
        d.remove_flags(FrameFlags::READAHEAD);
        was
    });
    if was_readahead {
        if let Some(state) = SWAP.lock().as_mut() {
            state.readahead.on_hit();
        }
        super::vmstat::count(super::vmstat::SwapEvent::ReadaheadHit);
    }
}

/// Returns the frame caching the slot of `entry`, if any.
pub fn lookup(entry: SwapEntry) -> Option<Frame> {
    SWAP.lock().as_ref()?.cache.get(entry.slot() as u32)
}

/// Returns what the swap cache holds for the slot of `entry`, for the fault
/// decision (`mm_core::fault::decide`): nothing, a frame under I/O, or a frame
/// with its slot's state.
pub fn cache_lookup(entry: SwapEntry) -> SwapCacheLookup {
    let swap = SWAP.lock();
    let Some(state) = swap.as_ref() else { return SwapCacheLookup::NotCached };
    let slot = entry.slot() as u32;
    let Some(frame) = state.cache.get(slot) else { return SwapCacheLookup::NotCached };
    let slot_state = state.slot_state(slot);
    match slot_state.page {
        Some(page) if page.is_locked => SwapCacheLookup::Locked,
        _ => SwapCacheLookup::Cached { frame, slot: slot_state },
    }
}

/// Called when a swap-cached frame lost its last mapping: drops it from the cache
/// (freeing it) unless it holds data the slot does not (DIRTY) that another swap PTE
/// still needs, in which case it stays cached for eviction to write. Returns true
/// if the frame was freed.
pub fn release_unmapped(frame: Frame) -> bool {
    let mut swap = SWAP.lock();
    let Some(state) = swap.as_mut() else {
        return false;
    };
    let (slot, is_cached) = frame::with_desc(frame, |d| (d.private(), d.has_flags(FrameFlags::SWAP_CACHE)));
    if is_cached && state.slot_state(slot).on_last_unmap() == CacheVerdict::Drop {
        return state.cache_remove(slot, frame);
    }
    false
}

/// Ensures `frame` has a slot: its swap-cache slot, or a fresh one (the frame then
/// enters the cache, flagged DIRTY: the slot does not hold its contents yet).
/// Returns the slot's entry, or `None` if swap is off or full.
pub(super) fn ensure_slot(frame: Frame) -> Option<SwapEntry> {
    let mut swap = SWAP.lock();
    let state = swap.as_mut()?;
    let (flags, private) = frame::with_desc(frame, |d| (d.flags(), d.private()));
    if flags.contains(FrameFlags::SWAP_CACHE) {
        return Some(SwapEntry::new(0, u64::from(private)));
    }
    let slot = state.map.alloc()?;
    state.cache_insert(slot.index(), frame);
    frame::with_desc(frame, |d| {
        d.get_ref(); // the cache's reference
        d.insert_flags(FrameFlags::DIRTY);
    });
    Some(SwapEntry::new(0, u64::from(slot.index())))
}

/// Ends an eviction of `frame` (LOCKED, cached under `entry`, with the lock's
/// reference: `LockedPage::into_frame`): if no PTE maps it any more it leaves the
/// cache and is freed (true); otherwise it stays, unlocked.
pub(super) fn finish_eviction(frame: Frame, entry: SwapEntry) -> bool {
    let mut swap = SWAP.lock();
    let state = swap.as_mut().expect("finish_eviction: swap went off during an eviction");
    frame::with_desc(frame, |d| d.remove_flags(FrameFlags::LOCKED));
    let slot = entry.slot() as u32;
    if state.slot_state(slot).on_eviction_done() == CacheVerdict::Drop {
        state.cache_remove(slot, frame);
    }
    LockedPage::put_ref(frame)
}

/// Ends page buffering's hold on `frame` (`buffer.rs`: unmapped or mapped, LOCKED
/// by the caller, with the lock's reference): unlocks it and, if it sits in the
/// cache mapped by nobody while no swap PTE names its slot any more (its process
/// exited meanwhile, and [`put_swap_pte`] had to leave the locked frame alone),
/// drops it from the cache, as that call would have. Returns true if the frame
/// was freed.
pub(super) fn unlock_buffered(frame: Frame) -> bool {
    let mut swap = SWAP.lock();
    frame::with_desc(frame, |d| d.remove_flags(FrameFlags::LOCKED));
    if let Some(state) = swap.as_mut() {
        let (slot, is_cached) = frame::with_desc(frame, |d| (d.private(), d.has_flags(FrameFlags::SWAP_CACHE)));
        if is_cached && state.slot_state(slot).on_swap_pte_dropped() == CacheVerdict::Drop {
            state.cache_remove(slot, frame);
        }
    }
    LockedPage::put_ref(frame)
}

/// Undoes [`ensure_slot`] for an eviction that stopped before any I/O (every PTE
/// is back): unlocks the frame (LOCKED, with the lock's reference), drops the
/// lock's reference, and gives a slot that never received the page back.
pub(super) fn cancel_eviction(frame: Frame, entry: SwapEntry) {
    let mut swap = SWAP.lock();
    let state = swap.as_mut().expect("cancel_eviction: swap went off during an eviction");
    let slot = entry.slot() as u32;
    frame::with_desc(frame, |d| d.remove_flags(FrameFlags::LOCKED));
    if state.slot_state(slot).on_eviction_cancelled() == CacheVerdict::Drop {
        state.cache_remove(slot, frame);
    }
    LockedPage::put_ref(frame);
}

/// After a failed write of `frame` to `entry`'s slot: the slot is retired (kept
/// allocated, never reused) and the frame leaves the cache, unless a swap PTE still
/// names the slot: then the frame must stay cached (and DIRTY) to serve it.
/// Returns true if the slot was retired.
pub(super) fn abandon_slot(frame: Frame, entry: SwapEntry) -> bool {
    let mut swap = SWAP.lock();
    let state = swap.as_mut().expect("abandon_slot: swap went off during an eviction");
    let slot = entry.slot() as u32;
    frame::with_desc(frame, |d| {
        d.remove_flags(FrameFlags::LOCKED);
        d.insert_flags(FrameFlags::DIRTY);
    });
    let is_retired = match state.slot_state(slot).on_write_failed(state.retired.contains(&slot)) {
        WriteFailVerdict::RetireSlot => {
            // The retired list takes over the cache's slot reference.
            state.retired.insert(slot);
            let _ = state.map.dup(SwapSlot::from_index(slot));
            state.cache_remove(slot, frame);
            true
        }
        WriteFailVerdict::KeepCached => false,
    };
    LockedPage::put_ref(frame); // the page's owner may have let it go meanwhile
    is_retired
}

/// Returns the number of slots retired after write errors.
pub fn nr_retired_slots() -> usize {
    SWAP.lock().as_ref().map_or(0, |s| s.retired.len())
}

/// Fills `frames` with frames of the swap cache caching slots from `first_slot` on,
/// in slot order; returns how many it found and the slot to continue from. Allocates
/// nothing: reclaim calls it when memory is shortest.
pub fn cached_frames_from(first_slot: u32, frames: &mut [Frame]) -> (usize, u32) {
    let swap = SWAP.lock();
    let Some(state) = swap.as_ref() else { return (0, first_slot) };
    let mut next_slot = first_slot;
    let mut nr_found = 0;
    for ((slot, frame), out) in state.cache.iter_from(first_slot).zip(frames.iter_mut()) {
        *out = frame;
        nr_found += 1;
        next_slot = slot + 1;
    }
    (nr_found, next_slot)
}

/// Returns the number of frames in the swap cache.
pub fn nr_cached() -> usize {
    SWAP.lock().as_ref().map_or(0, |s| s.cache.len())
}

/// A snapshot of the swap area for consistency checks: each used slot's share
/// count, the cache, the retired slots.
pub struct SwapSnapshot {
    /// (slot, share count) of every slot in use.
    pub counts: BTreeMap<u32, u16>,
    /// The swap cache, slot -> frame.
    pub cache: BTreeMap<u32, Frame>,
    /// Retired slots.
    pub retired: BTreeSet<u32>,
    /// Slots held by a wipe in progress (see [`wipe_freed_slots`]).
    pub wiping: BTreeSet<u32>,
}

/// Returns a snapshot of the slot counts, the cache and the retired slots (empty
/// while swap is off).
pub fn snapshot() -> SwapSnapshot {
    let swap = SWAP.lock();
    let mut snap = SwapSnapshot {
        counts: BTreeMap::new(),
        cache: BTreeMap::new(),
        retired: BTreeSet::new(),
        wiping: BTreeSet::new(),
    };
    if let Some(state) = swap.as_ref() {
        for index in 1..state.map.nr_slots() {
            let count = state.map.count(SwapSlot::from_index(index)).unwrap_or(0);
            if count > 0 {
                snap.counts.insert(index, count);
            }
            if state.map.is_wiping(SwapSlot::from_index(index)) {
                snap.wiping.insert(index);
            }
        }
        snap.cache = state.cache.iter_from(0).collect();
        snap.retired = state.retired.clone();
    }
    snap
}

/// Writes `page` to the slot of `entry`. Takes only the disk's lock.
pub fn write_slot(entry: SwapEntry, page: &PageBytes) -> Result<(), BlockError> {
    write_slots(entry, &[page])
}

/// Reads the slot of `entry` into `page`. Takes only the disk's lock.
pub fn read_slot(entry: SwapEntry, page: &mut PageBytes) -> Result<(), BlockError> {
    read_slots(entry, &mut [page])
}

/// Writes `pages` to the adjacent slots starting at `first` (page i to slot
/// `first + i`): one disk request per `max_pages_per_request` pages (32 on the
/// virtio disk). Takes only the disk's lock. The pages are borrowed for the call:
/// user pages come from `frame::LockedPage`s the caller holds.
pub fn write_slots(first: SwapEntry, pages: &[&PageBytes]) -> Result<(), BlockError> {
    // With several CPUs the lock may be another CPU's (a thread of the same
    // process faulting there): the check holds only with one.
    debug_assert!(crate::arch::smp::nr_online() > 1 || !SWAP.is_locked(), "write_slots: swap lock held across I/O");
    let disk = disk().ok_or(BlockError::DeviceBroken)?;
    mm_core::swap_area::write_slots(disk, first.slot(), pages)
}

/// Reads the adjacent slots starting at `first` into `pages` (slot `first + i`
/// into page i), in as few requests as [`write_slots`]. Takes only the disk's lock.
pub fn read_slots(first: SwapEntry, pages: &mut [&mut PageBytes]) -> Result<(), BlockError> {
    // With several CPUs the lock may be another CPU's (a thread of the same
    // process faulting there): the check holds only with one.
    debug_assert!(crate::arch::smp::nr_online() > 1 || !SWAP.is_locked(), "read_slots: swap lock held across I/O");
    let disk = disk().ok_or(BlockError::DeviceBroken)?;
    mm_core::swap_area::read_slots(disk, first.slot(), pages)
}

/// Checks the slot map's own invariants (bitmap agrees with share counts); panics if not.
pub fn check_slot_map() {
    if let Some(state) = SWAP.lock().as_ref() {
        state.map.check_invariants();
    }
}
