//! Swap-out and swap-in: eviction through the reverse map, the swap cache, the swap
//! fault, and MADV_PAGEOUT from user programs, with the bookkeeping audited after
//! every step.
//!
//! The first tests drive an address space directly (it is never loaded: the kernel
//! reads and writes its pages through the direct map); the last run user programs.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec;

use kernel::drivers::virtio_blk;
use kernel::mm::addr_space::{AddressSpace, MapRequest, VmProt};
use kernel::mm::fault::{self, FaultError, FaultOutcome};
use kernel::mm::paging::{Pte, PteFlags};
use kernel::mm::rmap::SpaceRef;
use kernel::mm::swap::{self, EvictError, Evicted};
use kernel::mm::vmstat::{self, SwapEvent};
use kernel::mm::{Frame, PAGE_SIZE, Page, VirtAddr, check, cow, frame, heap};
use kernel::proc::{self, task::WaitStatus};
use kernel::testing::{USER_READ, USER_WRITE};

kernel::runner_args!(b"--timeout 120");

kernel::test_kernel!();

/// The byte pattern of page `i` of a test space.
fn pattern(i: u64) -> alloc::vec::Vec<u8> {
    (0..PAGE_SIZE).map(|b| (b as u8) ^ (i as u8).wrapping_mul(37) ^ 0xa5).collect()
}

/// A space with `nr_pages` anonymous pages, page `i` filled with `pattern(i)`,
/// touched from the top down if `is_top_down`.
fn space_touched_in_order(nr_pages: u64, is_top_down: bool) -> (SpaceRef, VirtAddr) {
    let space = AddressSpace::new().expect("new space");
    let start = space.lock().mmap(0, nr_pages * PAGE_SIZE, VmProt::READ_WRITE, MapRequest::default()).expect("mmap");
    for j in 0..nr_pages {
        let i = if is_top_down { nr_pages - 1 - j } else { j };
        let addr = start + i * PAGE_SIZE;
        fault::handle_page_fault(&mut space.lock(), addr, USER_WRITE).expect("fault");
        // SAFETY: the test space is never loaded; its pages are reached only here.
        unsafe { frame::write_bytes(frame_at(&space, addr), 0, &pattern(i)) };
    }
    (space, start)
}

/// A space with `nr_pages` anonymous pages, page `i` filled with `pattern(i)`.
fn filled_space(nr_pages: u64) -> (SpaceRef, VirtAddr) {
    space_touched_in_order(nr_pages, false)
}

fn pte_at(space: &SpaceRef, addr: VirtAddr) -> Pte {
    space.lock().pte(addr).expect("no page table")
}

fn frame_at(space: &SpaceRef, addr: VirtAddr) -> Frame {
    let pte = pte_at(space, addr);
    assert!(pte.is_present(), "{addr:?} is not present: {pte:?}");
    pte.frame()
}

fn contents(frame: Frame) -> alloc::vec::Vec<u8> {
    let mut bytes = vec![0u8; PAGE_SIZE as usize];
    // SAFETY: the test space is never loaded; its pages are reached only here.
    unsafe { frame::read_bytes(frame, 0, &mut bytes) };
    bytes
}

/// Resolves a fault through the process fault path, `mm::fault::fault_in`: it reads
/// the slot when the handler asks, with the space unlocked.
fn fault_in(space: &SpaceRef, addr: VirtAddr, code: u64) -> FaultOutcome {
    fault::fault_in(space, addr, code).expect("fault")
}

/// A one-page space whose page was evicted and read back into the swap cache, not
/// mapped yet: its space, address and swap entry.
fn page_read_back_into_the_swap_cache() -> (SpaceRef, VirtAddr, swap::SwapEntry) {
    let (space, start) = filled_space(1);
    swap::evict(frame_at(&space, start)).expect("evict");
    let entry = pte_at(&space, start).as_swap().expect("in swap");
    swap::read_into_cache(entry).expect("read");
    (space, start, entry)
}

fn disk_writes() -> u64 {
    virtio_blk::swap_disk().expect("no disk").lock().stats().nr_writes
}

fn disk_reads() -> u64 {
    virtio_blk::swap_disk().expect("no disk").lock().stats().nr_reads
}

fn assert_consistent() -> check::Census {
    check::check_consistency().unwrap_or_else(|e| panic!("inconsistent: {e}"))
}

#[test_case]
fn evict_writes_the_page_and_a_fault_reads_it_back() {
    let (space, start) = filled_space(4);
    let victim = frame_at(&space, start);
    let (free, slots, writes) = (frame::nr_free_frames(), swap::slot_counts().0, disk_writes());
    assert_eq!(swap::evict(victim), Ok(Evicted::Written));
    assert_eq!(disk_writes(), writes + 1);
    assert_eq!(frame::nr_free_frames(), free + 1, "the frame was freed");
    assert_eq!(swap::slot_counts().0, slots - 1);
    let pte = pte_at(&space, start);
    let entry = pte.as_swap().expect("a swap entry in the PTE");
    assert_eq!(swap::slot_count(entry), Ok(1));
    let stats = space.lock().stats;
    assert_eq!((stats.rss_pages, stats.swap_pages), (3, 1));
    assert_consistent();

    let majors = space.lock().stats.major_faults;
    assert_eq!(fault_in(&space, start, USER_READ), FaultOutcome::SwapIn);
    assert_eq!(space.lock().stats.major_faults, majors + 1);
    let back = frame_at(&space, start);
    assert_eq!(contents(back), pattern(0));
    assert!(pte_at(&space, start).flags().contains(PteFlags::WRITABLE), "an exclusive page is mapped writable");
    assert_eq!(swap::lookup(entry), Some(back), "the page stays in the swap cache");
    assert_eq!(swap::slot_count(entry), Ok(1), "only the cache holds the slot now");
    assert_consistent();
}

#[test_case]
fn a_clean_swap_cache_page_is_dropped_without_io() {
    let (space, start) = filled_space(2);
    swap::evict(frame_at(&space, start)).expect("evict");
    fault_in(&space, start, USER_READ);
    let (writes, clean) = (disk_writes(), vmstat::nr_events(SwapEvent::ReclaimedClean));
    assert_eq!(swap::evict(frame_at(&space, start)), Ok(Evicted::Clean));
    assert_eq!(disk_writes(), writes, "a clean page must not be written");
    assert_eq!(vmstat::nr_events(SwapEvent::ReclaimedClean), clean + 1);
    fault_in(&space, start, USER_READ);
    assert_eq!(contents(frame_at(&space, start)), pattern(0));
    assert_consistent();
}

#[test_case]
fn a_dirtied_swap_cache_page_is_written_again() {
    let (space, start) = filled_space(1);
    swap::evict(frame_at(&space, start)).expect("evict");
    fault_in(&space, start, USER_READ);
    let frame = frame_at(&space, start);
    // SAFETY: the test space is never loaded; its pages are reached only here.
    unsafe { frame::write_bytes(frame, 0, &pattern(9)) };
    // What the MMU does on the write: set the PTE's Dirty bit.
    let mut pte = pte_at(&space, start);
    pte.insert_flags(PteFlags::DIRTY);
    space.lock().replace_pte(Page::containing_address(start), pte);
    let writes = disk_writes();
    assert_eq!(swap::evict(frame), Ok(Evicted::Written));
    assert_eq!(disk_writes(), writes + 1);
    fault_in(&space, start, USER_READ);
    assert_eq!(contents(frame_at(&space, start)), pattern(9));
    assert_consistent();
}

#[test_case]
fn a_swapped_page_shared_by_fork_is_read_once_and_mapped_copy_on_write() {
    let (parent, start) = filled_space(1);
    swap::evict(frame_at(&parent, start)).expect("evict");
    let child = cow::fork(&mut parent.lock()).expect("fork");
    let entry = pte_at(&child, start).as_swap().expect("the child inherits the swap PTE");
    assert_eq!(swap::slot_count(entry), Ok(2));
    assert_consistent();
    let reads = disk_reads();
    assert_eq!(fault_in(&parent, start, USER_READ), FaultOutcome::SwapIn);
    let hits = vmstat::nr_events(SwapEvent::CacheHit);
    assert_eq!(fault_in(&child, start, USER_READ), FaultOutcome::SwapCacheHit);
    assert_eq!(vmstat::nr_events(SwapEvent::CacheHit), hits + 1);
    assert_eq!(disk_reads(), reads + 1, "one read for both processes");
    let shared = frame_at(&parent, start);
    assert_eq!(frame_at(&child, start), shared);
    assert!(!pte_at(&parent, start).flags().contains(PteFlags::WRITABLE), "a shared page is mapped read-only");
    assert_consistent();
    assert_eq!(fault_in(&child, start, USER_WRITE | 1), FaultOutcome::CowCopy);
    assert_ne!(frame_at(&child, start), shared);
    assert_eq!(contents(frame_at(&child, start)), pattern(0));
    assert_eq!(fault_in(&parent, start, USER_WRITE | 1), FaultOutcome::CowReuse, "the parent is alone now");
    assert_consistent();
}

#[test_case]
fn a_fault_on_a_page_under_io_waits_until_it_is_unlocked() {
    let (space, start, entry) = page_read_back_into_the_swap_cache();
    let cached = swap::lookup(entry).expect("in the swap cache");
    // What an in-flight read or write looks like to a faulting process.
    frame::with_desc(cached, |d| d.insert_flags(frame::FrameFlags::LOCKED));
    let outcome = fault::handle_page_fault(&mut space.lock(), start, USER_READ);
    assert_eq!(outcome, Err(FaultError::PageLocked), "the fault must wait, not map a page under I/O");
    assert!(pte_at(&space, start).as_swap().is_some(), "the PTE is untouched while it waits");
    frame::with_desc(cached, |d| d.remove_flags(frame::FrameFlags::LOCKED));
    assert_eq!(fault_in(&space, start, USER_READ), FaultOutcome::SwapCacheHit);
    assert_eq!(frame_at(&space, start), cached);
    assert_consistent();
}

/// Issue #13: a swap fault looks the slot up (cached, unlocked), and only then maps
/// the frame; on another CPU an eviction or page buffering may lock the frame in
/// between and hand its bytes to the disk, checking that nothing maps it (seen in
/// the fuzz image with `--smp 2`: "LockedPage: ... is mapped (1) or unlocked").
/// The mapping step itself must refuse a LOCKED frame, and the fault retry.
#[test_case]
fn a_swap_fault_does_not_map_a_frame_locked_after_its_lookup() {
    let (space, start, entry) = page_read_back_into_the_swap_cache();
    let cached = swap::lookup(entry).expect("in the swap cache");
    // The fault's lookup found it unlocked; now the other CPU locks it.
    let locked = frame::LockedPage::lock_resident(cached).expect("lock the cached page");
    let page = Page::containing_address(start);
    let flags = PteFlags::PRESENT | PteFlags::USER;
    let _ = swap::do_swap_fault(&mut space.lock(), page, entry, cached, flags, false);
    assert_eq!(pte_at(&space, start), Pte::swap(entry), "a LOCKED frame was mapped");
    assert_eq!(frame::with_desc(cached, |d| d.map_count()), 0, "a LOCKED frame was mapped");
    drop(locked);
    assert_eq!(fault_in(&space, start, USER_READ), FaultOutcome::SwapCacheHit);
    assert_eq!(frame_at(&space, start), cached);
    assert_eq!(contents(cached), pattern(0));
    assert_consistent();
}

#[test_case]
fn evicting_a_shared_page_unmaps_it_from_every_space() {
    let (parent, start) = filled_space(1);
    let child = cow::fork(&mut parent.lock()).expect("fork");
    let shared = frame_at(&parent, start);
    assert_eq!(swap::evict(shared), Ok(Evicted::Written));
    let entry = pte_at(&parent, start).as_swap().expect("parent's PTE is a swap entry");
    assert_eq!(pte_at(&child, start).as_swap(), Some(entry), "one slot for both");
    assert_eq!(swap::slot_count(entry), Ok(2));
    assert_consistent();
    fault_in(&child, start, USER_READ);
    assert_eq!(contents(frame_at(&child, start)), pattern(0));
    drop(child);
    assert_consistent();
}

#[test_case]
fn evicting_a_page_skips_the_family_member_that_has_its_own_copy() {
    let (parent, start) = filled_space(1);
    let copier = cow::fork(&mut parent.lock()).expect("fork");
    let sharer = cow::fork(&mut parent.lock()).expect("fork");
    let shared = frame_at(&parent, start);
    // The copier writes: its PTE at the same page of the same family now names a copy.
    assert_eq!(fault_in(&copier, start, USER_WRITE | 1), FaultOutcome::CowCopy);
    let copy = frame_at(&copier, start);
    // SAFETY: the test space is never loaded; its pages are reached only here.
    unsafe { frame::write_bytes(copy, 0, &pattern(7)) };
    assert_eq!(swap::evict(shared), Ok(Evicted::Written));
    let entry = pte_at(&parent, start).as_swap().expect("parent's PTE is a swap entry");
    assert_eq!(pte_at(&sharer, start).as_swap(), Some(entry), "the other sharer's too");
    assert_eq!(swap::slot_count(entry), Ok(2), "two swap PTEs, no cache");
    assert_eq!(frame_at(&copier, start), copy, "the copy stays mapped");
    assert_eq!(frame::with_desc(copy, |d| (d.map_count(), d.refcount())), (1, 1));
    assert_eq!(contents(copy), pattern(7));
    assert_consistent();
    fault_in(&sharer, start, USER_READ);
    assert_eq!(contents(frame_at(&sharer, start)), pattern(0));
    drop((parent, copier, sharer));
    assert_consistent();
}

#[test_case]
fn unmapping_and_exit_free_every_slot_and_frame() {
    heap::shrink();
    let (free, slots) = (frame::nr_free_frames(), swap::slot_counts());
    {
        let (space, start) = filled_space(6);
        for i in 0..6 {
            swap::evict(frame_at(&space, start + i * PAGE_SIZE)).expect("evict");
        }
        let child = cow::fork(&mut space.lock()).expect("fork");
        fault_in(&space, start, USER_READ); // one page in the cache, mapped
        space.lock().munmap((start + 3 * PAGE_SIZE).as_u64(), 3 * PAGE_SIZE).expect("munmap");
        assert_consistent();
        drop(space);
        assert_consistent();
        drop(child);
    }
    assert_consistent();
    assert_eq!(swap::slot_counts(), slots, "slots leaked");
    assert_eq!(swap::nr_cached(), 0);
    heap::shrink();
    assert_eq!(frame::nr_free_frames(), free, "frames leaked");
}

/// Reads `entry`'s slot into the swap cache, as a fault on another CPU may while
/// `read_into_cache` allocates its own frame (the hook of the next test).
fn read_the_slot_first(entry: swap::SwapEntry) {
    swap::swapin::set_after_alloc_fn_for_test(None); // the nested read runs no hook
    swap::read_into_cache(entry).expect("the other CPU's read");
}

/// Issue #13: two faults on one swap entry both missed the cache; the second to
/// take the swap lock found the slot read by the first and freed its own fresh
/// frame with `rmap::free_user_frame`, which wants no reference left (fuzz image
/// with `--smp 2`: "still in use: User, refcount 1, map count 0, ALLOC_HEAD").
/// The loser's frame goes back, the winner's stays cached, nothing leaks.
#[test_case]
fn a_read_that_finds_the_slot_already_cached_frees_its_own_frame() {
    heap::shrink();
    let (space, start) = filled_space(1);
    swap::evict(frame_at(&space, start)).expect("evict");
    let entry = pte_at(&space, start).as_swap().expect("in swap");
    assert!(swap::lookup(entry).is_none(), "still cached after the eviction");
    heap::shrink();
    let (free, nr_cached) = (frame::nr_free_frames(), swap::nr_cached());
    swap::swapin::set_after_alloc_fn_for_test(Some(read_the_slot_first));
    let result = swap::read_into_cache(entry);
    swap::swapin::set_after_alloc_fn_for_test(None);
    assert_eq!(result, Ok(()));
    let cached = swap::lookup(entry).expect("the other read's frame is cached");
    assert_eq!(contents(cached), pattern(0));
    heap::shrink();
    // The frames in use now are the cache's new pages (this one, and any the other
    // read took ahead): the loser's frame is free again.
    let nr_read = (swap::nr_cached() - nr_cached) as u64;
    assert_eq!(free - frame::nr_free_frames(), nr_read, "a frame besides the cached ones went");
    assert_eq!(fault_in(&space, start, USER_READ), FaultOutcome::SwapCacheHit);
    assert_eq!(frame_at(&space, start), cached);
    assert_consistent();
}

/// Set by the next test's hook when reclaim could lock a frame being read into.
static LOCKED_DURING_READ: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Locks `frame` as reclaim would with a frame number it read before (the cleaner,
/// an eviction on another CPU), and lets it go at once.
fn lock_as_reclaim_would(frame: Frame) {
    if let Some(page) = frame::LockedPage::lock_resident(frame) {
        LOCKED_DURING_READ.store(true, core::sync::atomic::Ordering::Relaxed);
        drop(page);
    }
}

/// Issue #13: a frame a swap-in had just allocated was found by reclaim once it was
/// in the swap cache and locked before the swap-in locked it for its read
/// (`swap_ramdisk` with `--smp 2`: "read_into_cache: a fresh frame is already
/// locked"). A frame under a read must be locked before anyone can find it.
#[test_case]
fn a_frame_being_read_into_is_locked_before_reclaim_can_find_it() {
    let (space, start) = filled_space(1);
    swap::evict(frame_at(&space, start)).expect("evict");
    let entry = pte_at(&space, start).as_swap().expect("in swap");
    LOCKED_DURING_READ.store(false, core::sync::atomic::Ordering::Relaxed);
    swap::swapin::set_after_publish_fn_for_test(Some(lock_as_reclaim_would));
    let result = swap::read_into_cache(entry);
    swap::swapin::set_after_publish_fn_for_test(None);
    assert_eq!(result, Ok(()));
    assert!(!LOCKED_DURING_READ.load(core::sync::atomic::Ordering::Relaxed), "reclaim locked a frame the read had not");
    let cached = swap::lookup(entry).expect("cached");
    assert_eq!(contents(cached), pattern(0));
    assert_eq!(fault_in(&space, start, USER_READ), FaultOutcome::SwapCacheHit);
    assert_consistent();
}

/// Armed by the next test: its hook drops the frame once, then lets faults be.
static DROP_BEFORE_MAP: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Drops `frame` from the swap cache, and so frees it, as reclaim on another CPU
/// may between a swap fault's lookup and its mapping (once: the hook of the next test).
fn drop_from_the_cache(frame: Frame) {
    if DROP_BEFORE_MAP.swap(false, core::sync::atomic::Ordering::Relaxed) {
        assert_eq!(swap::evict(frame), Ok(Evicted::Clean), "the hook could not drop the page");
    }
}

/// Issue #13: a swap fault's lookup takes no reference to the frame it finds in
/// the swap cache. Reclaim on another CPU dropped the frame from the cache and
/// freed it (another process then had it) before the fault mapped it, and the
/// fault mapped a frame that was not its page (`fuzz` with `--smp 2`:
/// "FrameDesc::remove_mapping: unmapped at A, mapped 1 times at B"). The fault
/// must see that the page left the cache, and read its slot again.
#[test_case]
fn a_swap_cache_page_dropped_between_a_faults_lookup_and_its_mapping_is_read_again() {
    let (space, start, _) = page_read_back_into_the_swap_cache();
    let reads = disk_reads();
    DROP_BEFORE_MAP.store(true, core::sync::atomic::Ordering::Relaxed);
    swap::swapin::set_before_map_fn_for_test(Some(drop_from_the_cache));
    let outcome = fault::fault_in(&space, start, USER_READ);
    swap::swapin::set_before_map_fn_for_test(None);
    assert!(!DROP_BEFORE_MAP.load(core::sync::atomic::Ordering::Relaxed), "the hook did not run");
    assert_eq!(outcome, Ok(FaultOutcome::SwapIn), "the fault mapped the frame it had looked up");
    assert!(disk_reads() > reads, "the slot was not read again");
    assert_eq!(contents(frame_at(&space, start)), pattern(0));
    assert_consistent();
}

/// The page the eviction hook of the next test unmaps: its space and address.
static OWNER_OF_VICTIM: kernel::sync::IrqMutex<Option<(SpaceRef, VirtAddr)>> = kernel::sync::IrqMutex::new(None);

/// Unmaps the victim's page, as its owner's `munmap` on another CPU may right
/// after an eviction locked it (the eviction hook of the next test).
fn unmap_the_victim(_victim: Frame) {
    let (space, addr) = OWNER_OF_VICTIM.lock().take().expect("no victim to unmap");
    space.lock().munmap(addr.as_u64(), PAGE_SIZE).expect("munmap");
}

/// Issue #13: an eviction locked a mapped page, then its owner unmapped it (on
/// another CPU) before the eviction gave it a slot. The unmap dropped the last
/// reference of a LOCKED frame and tried to free it ("rmap::free_user_frame ...
/// still in use: refcount 0, map count 0, LOCKED"). The lock holds a reference
/// now: the frame goes when the eviction lets it go, once, and nothing leaks.
#[test_case]
fn a_page_unmapped_while_an_eviction_holds_it_locked_is_freed_once() {
    heap::shrink();
    let (free, slots) = (frame::nr_free_frames(), swap::slot_counts());
    {
        let (space, start) = filled_space(2);
        let victim = frame_at(&space, start);
        *OWNER_OF_VICTIM.lock() = Some((space.clone(), start));
        swap::evict::set_after_lock_fn_for_test(Some(unmap_the_victim));
        let result = swap::evict(victim);
        swap::evict::set_after_lock_fn_for_test(None);
        assert!(OWNER_OF_VICTIM.lock().is_none(), "the hook did not run");
        assert!(result.is_ok(), "evict: {result:?}");
        assert_eq!(space.lock().pte(start).unwrap_or(Pte::UNUSED), Pte::UNUSED, "the unmapped page came back");
        assert_eq!(contents(frame_at(&space, start + PAGE_SIZE)), pattern(1), "the other page changed");
        assert_consistent();
    }
    assert_consistent();
    assert_eq!(swap::slot_counts(), slots, "slots leaked");
    assert_eq!(swap::nr_cached(), 0);
    heap::shrink();
    assert_eq!(frame::nr_free_frames(), free, "frames leaked");
}

#[test_case]
fn a_full_swap_area_keeps_the_page() {
    let (space, start) = filled_space(1);
    let mut held = alloc::vec::Vec::new();
    while let Some(entry) = swap::alloc_slot() {
        held.push(entry);
    }
    assert_eq!(swap::evict(frame_at(&space, start)), Err(EvictError::SwapFull));
    assert_eq!(contents(frame_at(&space, start)), pattern(0));
    assert!(pte_at(&space, start).is_present(), "the page stays mapped");
    for entry in held {
        swap::put(entry).expect("put");
    }
    assert_consistent();
    assert_eq!(swap::evict(frame_at(&space, start)), Ok(Evicted::Written), "room again");
}

#[test_case]
fn a_batch_of_victims_goes_out_in_one_request_to_adjacent_slots() {
    let (space, start) = filled_space(32);
    let frames: alloc::vec::Vec<Frame> = (0..32).map(|i| frame_at(&space, start + i * PAGE_SIZE)).collect();
    let (writes, requests) = (disk_writes(), vmstat::nr_events(SwapEvent::WriteRequest));
    let results = swap::evict_many(&frames);
    assert!(results.iter().all(|r| *r == Ok(Evicted::Written)), "{results:?}");
    let slots: alloc::vec::Vec<u64> =
        (0..32).map(|i| pte_at(&space, start + i * PAGE_SIZE).as_swap().expect("swap entry").slot()).collect();
    let nr_runs = 1 + slots.windows(2).filter(|w| w[1] != w[0] + 1).count() as u64;
    assert!(nr_runs <= 2, "slots {slots:?}: the allocator should hand out adjacent slots");
    assert_eq!(disk_writes() - writes, nr_runs, "one disk request per run of adjacent slots");
    assert_eq!(vmstat::nr_events(SwapEvent::WriteRequest) - requests, nr_runs);
    assert_consistent();
    for i in 0..32 {
        fault_in(&space, start + i * PAGE_SIZE, USER_READ);
        assert_eq!(contents(frame_at(&space, start + i * PAGE_SIZE)), pattern(i), "page {i}");
    }
    assert_consistent();
}

#[test_case]
fn sequential_swap_in_reads_ahead_and_unused_readahead_pages_are_freed() {
    let (before, slots) = (assert_consistent(), swap::slot_counts());
    let (space, start) = filled_space(128);
    let frames: alloc::vec::Vec<Frame> = (0..128).map(|i| frame_at(&space, start + i * PAGE_SIZE)).collect();
    assert!(swap::evict_many(&frames).iter().all(|r| r.is_ok()));
    let (reads, hits) = (disk_reads(), vmstat::nr_events(SwapEvent::ReadaheadHit));
    let majors = space.lock().stats.major_faults;
    for i in 0..96 {
        fault_in(&space, start + i * PAGE_SIZE, USER_READ);
        assert_eq!(contents(frame_at(&space, start + i * PAGE_SIZE)), pattern(i), "page {i}");
    }
    let (nr_reads, nr_majors) = (disk_reads() - reads, space.lock().stats.major_faults - majors);
    assert!(nr_reads <= 16, "96 sequential swap-ins took {nr_reads} disk reads");
    assert_eq!(nr_reads, nr_majors, "one request per major fault");
    assert!(vmstat::nr_events(SwapEvent::ReadaheadHit) - hits >= 96 - nr_majors, "the other faults were readahead hits");
    assert!(swap::nr_cached() >= 96, "readahead pages wait in the swap cache");
    assert_consistent();
    // Pages read ahead but never mapped belong to the slots of this space: they go
    // when its swap PTEs go.
    drop(space);
    let after = assert_consistent();
    assert_eq!(swap::slot_counts(), slots, "slots left in use");
    assert_eq!((after.nr_frames, after.nr_cached), (before.nr_frames, before.nr_cached), "user frames left behind");
}

/// A space like [`filled_space`] whose frames fall as its addresses rise. Whether
/// the buddy hands out rising or falling frames depends on its free lists' history:
/// touch the range bottom up, then top down, until the frames fall. A refill of the
/// per-CPU list hands out rising frames, and a rejected attempt's frames, freed in
/// address order onto that list, come back falling: so bottom up and top down twice.
fn space_with_falling_frames(nr_pages: u64) -> (SpaceRef, VirtAddr) {
    [false, true, false, true]
        .into_iter()
        .map(|is_top_down| space_touched_in_order(nr_pages, is_top_down))
        .find(|(space, start)| {
            let frames: alloc::vec::Vec<Frame> = (0..nr_pages).map(|i| frame_at(space, *start + i * PAGE_SIZE)).collect();
            frames.windows(2).filter(|w| w[1] < w[0]).count() > frames.len() / 2
        })
        .expect("the setup needs a range whose frames fall as its addresses rise")
}

#[test_case]
fn load_control_and_memory_groups_list_a_process_pages_in_address_order() {
    // They evict a process's pages in the order `resident_frames_coldest_first`
    // gives, which sorted them by frame number once (the same reversal as above).
    const NR_PAGES: u64 = 32;
    let (space, start) = space_with_falling_frames(NR_PAGES);
    let in_address_order: alloc::vec::Vec<Frame> = (0..NR_PAGES).map(|i| frame_at(&space, start + i * PAGE_SIZE)).collect();
    let listed = kernel::mm::wss::resident_frames_coldest_first(&space.lock());
    let ours: alloc::vec::Vec<Frame> = listed.into_iter().filter(|f| in_address_order.contains(f)).collect();
    assert_eq!(ours, in_address_order, "every page once, in address order (all were written: all hot)");
}

#[test_case]
fn pageout_hands_out_slots_in_address_order_whatever_the_frames_order() {
    // MADV_PAGEOUT of a range whose frames lie in the opposite order to its pages
    // (touched top down, or handed out by the pre-zeroed pool's stack) must still
    // give the pages adjacent slots in address order: sequential swap-in's
    // readahead reads the slots after the faulting one. It took the frames sorted by
    // frame number once, and a sequential touch then cost one disk read per page.
    const NR_PAGES: u64 = 64;
    let (space, start) = space_with_falling_frames(NR_PAGES);
    let report = kernel::mm::reclaim::pageout(&space, start.as_u64(), NR_PAGES * PAGE_SIZE).expect("pageout");
    assert_eq!(report.nr_written, NR_PAGES, "{report:?}");
    let slots: alloc::vec::Vec<u64> =
        (0..NR_PAGES).map(|i| pte_at(&space, start + i * PAGE_SIZE).as_swap().expect("swap entry").slot()).collect();
    let nr_rising = slots.windows(2).filter(|w| w[1] == w[0] + 1).count();
    assert!(nr_rising >= slots.len() - 3, "slots {slots:?}: pages in address order should get adjacent slots in order");
    let reads = disk_reads();
    for i in 0..NR_PAGES {
        fault_in(&space, start + i * PAGE_SIZE, USER_READ);
        assert_eq!(contents(frame_at(&space, start + i * PAGE_SIZE)), pattern(i), "page {i}");
    }
    let nr_reads = disk_reads() - reads;
    assert!(nr_reads <= NR_PAGES / 4, "{NR_PAGES} sequential swap-ins took {nr_reads} disk reads");
    assert_consistent();
}

fn run_program(name: &str) -> WaitStatus {
    let pid = proc::spawn(name).unwrap_or_else(|e| panic!("spawn {name}: {e:?}"));
    let (_, status) = proc::wait(Some(pid)).expect("wait");
    proc::task::wait_all(60_000).unwrap_or_else(|n| panic!("{name}: {n} processes never exited"));
    status
}

/// Runs `name` and checks it exits 0, the books balance, and it leaves no frame and
/// no slot behind.
fn assert_program_passes(name: &str) {
    heap::shrink();
    let (free, slots) = (frame::nr_free_frames(), swap::slot_counts());
    assert_eq!(run_program(name), WaitStatus::Exited(0), "{name} failed");
    assert_consistent();
    heap::shrink();
    assert_eq!(swap::slot_counts(), slots, "{name} left slots in use");
    assert_eq!(frame::nr_free_frames(), free, "{name} leaked frames");
}

#[test_case]
fn pageout_sends_pages_to_swap_and_they_come_back_intact() {
    let (out, clean) = (vmstat::nr_events(SwapEvent::SwapOut), vmstat::nr_events(SwapEvent::ReclaimedClean));
    assert_program_passes("pageout");
    assert!(vmstat::nr_events(SwapEvent::SwapOut) - out >= 64 + 32, "the first pageout and the rewritten half");
    assert!(vmstat::nr_events(SwapEvent::ReclaimedClean) - clean >= 64 + 32, "clean pages dropped without I/O");
}

#[test_case]
fn fork_and_swap_together_keep_every_process_data() {
    assert_program_passes("swapfork");
}

/// Reads the page in `slot` straight from the disk.
fn slot_contents(slot: u64) -> alloc::vec::Vec<u8> {
    let mut bytes = vec![0u8; PAGE_SIZE as usize];
    virtio_blk::swap_disk().expect("no disk").lock().read(swap::slot_sector(slot), &mut bytes).expect("read slot");
    bytes
}

#[test_case]
fn a_dead_page_does_not_linger_in_its_slot() {
    // Issue #10 (data remanence): a slot freed by munmap or exit is wiped on the
    // disk, so the page a dead process swapped out cannot be read back by anyone.
    let (space, start) = filled_space(2);
    assert_eq!(swap::evict(frame_at(&space, start)), Ok(Evicted::Written));
    let slot = pte_at(&space, start).as_swap().expect("a swap entry").slot();
    assert_eq!(slot_contents(slot), pattern(0), "the page went to its slot");
    let wiped = vmstat::nr_events(SwapEvent::SlotWiped);
    drop(space); // the last reference: the slot is free and unwiped
    // Free, or held by the background wiper for its wipe (it may run on another CPU).
    let snapshot = swap::snapshot();
    let slot_index = slot as u32;
    assert!(!snapshot.counts.contains_key(&slot_index) || snapshot.wiping.contains(&slot_index), "slot {slot} still in use");
    // Wipe here; the background wiper may be wiping some of them at the same time.
    swap::wipe_freed_slots();
    while swap::nr_slots_to_wipe() > 0 {
        proc::sched::yield_now();
    }
    assert!(vmstat::nr_events(SwapEvent::SlotWiped) > wiped);
    assert!(slot_contents(slot).iter().all(|&b| b == 0), "the dead page is still on the disk");
    assert_consistent();
}

#[test_case]
fn slots_of_a_space_dropped_outside_an_exit_are_wiped_all_the_same() {
    // The swapwipe thread wipes every freed slot while this task only yields, with
    // no exit to wake it: with several CPUs a space's last reference may be
    // reclaim's, and the exit's wake-up then found nothing to wipe (`swap_ramdisk`
    // with `--smp 2` left 4 095 slots unwiped in 1 run of 3). The wiper's own
    // periodic look (`swap::WIPER_PERIOD_TICKS`) finds them.
    let (space, start) = filled_space(8);
    let victims: alloc::vec::Vec<Frame> = (0..8).map(|i| frame_at(&space, start + i * PAGE_SIZE)).collect();
    let report = swap::evict_many(&victims);
    assert!(report.iter().all(|r| *r == Ok(Evicted::Written)), "{report:?}");
    let slots: alloc::vec::Vec<u64> =
        (0..8).map(|i| pte_at(&space, start + i * PAGE_SIZE).as_swap().expect("swap entry").slot()).collect();
    let wiped = vmstat::nr_events(SwapEvent::SlotWiped);
    drop(space); // and nothing else: no exit, no kick
    let deadline = kernel::arch::timer::uptime_ms() + 10_000;
    while swap::nr_slots_to_wipe() > 0 {
        assert!(kernel::arch::timer::uptime_ms() < deadline, "the wiper never ran");
        proc::sched::yield_now();
    }
    assert!(vmstat::nr_events(SwapEvent::SlotWiped) >= wiped + 8);
    for slot in slots {
        assert!(slot_contents(slot).iter().all(|&b| b == 0), "slot {slot} still holds its dead page");
    }
    assert_consistent();
}

#[test_case]
fn a_pinned_page_outlives_its_unmapping_and_goes_with_the_pin() {
    // What process_vm_readv relies on while it copies with the target unlocked.
    let (space, start) = filled_space(1);
    let frame = frame_at(&space, start);
    let pinned = kernel::mm::remote::pin_resident(&space.lock(), start).expect("resident");
    space.lock().munmap(start.as_u64(), PAGE_SIZE).expect("munmap");
    assert_eq!(frame::with_desc(frame, |d| d.refcount()), 1, "only the pin holds the frame");
    let mut bytes = vec![0u8; PAGE_SIZE as usize];
    pinned.read(0, &mut bytes);
    assert_eq!(bytes, pattern(0), "the pinned frame keeps its contents");
    let free = frame::nr_free_frames();
    drop(pinned);
    assert_eq!(frame::nr_free_frames(), free + 1, "the last pin frees the frame");
    drop(space);
    assert_consistent();
}

#[test_case]
fn a_remote_write_to_a_clean_swap_cache_page_is_written_to_swap_again() {
    // process_vm_writev writes through the direct map: no PTE Dirty bit is set, so the
    // frame must be flagged DIRTY or eviction drops the write as a clean page.
    let (space, start) = filled_space(1);
    swap::evict(frame_at(&space, start)).expect("evict");
    fault_in(&space, start, USER_READ);
    if !kernel::mm::remote::write_resident(&space.lock(), start, &pattern(7)) {
        fault_in(&space, start, USER_WRITE | 1);
        assert!(kernel::mm::remote::write_resident(&space.lock(), start, &pattern(7)));
    }
    assert_eq!(swap::evict(frame_at(&space, start)), Ok(Evicted::Written), "not dropped as clean");
    fault_in(&space, start, USER_READ);
    assert_eq!(contents(frame_at(&space, start)), pattern(7));
    assert_consistent();
}

#[test_case]
fn process_vm_readv_and_writev_reach_cow_and_swapped_pages_of_a_child() {
    // vmrw checks the data, partial transfers and errors itself; here: nothing leaks
    // and the books balance after pages were faulted in and COW-copied on a child's behalf.
    assert_program_passes("vmrw");
}
