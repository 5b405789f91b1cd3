//! Transparent huge pages: a write fault maps one 2 MiB page (frames, leaf and
//! counters checked), the modes and MADV_(NO)HUGEPAGE decide where, and every
//! split (partial munmap, mprotect, MADV_DONTNEED,
//! MADV_PAGEOUT and swap-in) keeps every byte and every counter right, with the
//! bookkeeping audit (`mm::check`) clean after each step. Fork shares a huge page
//! whole, and each side's first write copies it (or, for a split, copies it into
//! small pages); frames come back when both sides exit.
//!
//! The tests drive address spaces directly (never loaded: the kernel reads and
//! writes their pages through the direct map), as tests/swap.rs does.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use kernel::mm::addr_space::{AddressSpace, MapRequest, VmProt};
use kernel::mm::fault::{self, FaultOutcome};
use kernel::mm::rmap::SpaceRef;
use kernel::mm::thp::{self, PAGES_PER_HUGE, ThpMode};
use kernel::mm::{Frame, PAGE_SIZE, VirtAddr, check, cow, frame, reclaim};
use kernel::println;
use kernel::testing::{USER_READ, USER_WRITE};

kernel::runner_args!(b"--timeout 120");

kernel::test_kernel!();

/// Returns the free frames plus the frames the kernel heap holds: the count these
/// tests compare. The heap's slab pages come and go with its per-CPU magazines'
/// flushes (`mm::slabmag`), which a THP test does not control.
fn nr_free() -> u64 {
    frame::nr_free_frames_exact() + kernel::mm::heap::nr_frames()
}

const HUGE: u64 = 2 << 20;
/// Where the tests map: 2 MiB-aligned, so a huge page fits at the start.
const BASE: u64 = 0x4000_0000;

/// The byte pattern of page `i` (with a seed, so stale bytes show up).
fn pattern(i: u64, seed: u8) -> Vec<u8> {
    (0..PAGE_SIZE).map(|b| (b as u8) ^ (i as u8).wrapping_mul(37) ^ seed).collect()
}

/// A space with `nr_huge` 2 MiB of anonymous read-write memory at [`BASE`],
/// advised MADV_HUGEPAGE (mode madvise).
fn huge_space(nr_huge: u64) -> (SpaceRef, VirtAddr) {
    thp::set_mode(ThpMode::Madvise);
    let space = AddressSpace::new().expect("new space");
    let req = MapRequest { is_fixed: true, ..MapRequest::default() };
    let start = space.lock().mmap(BASE, nr_huge * HUGE, VmProt::READ_WRITE, req).expect("mmap");
    space.lock().madvise_set_hugepage(start.as_u64(), nr_huge * HUGE, true).expect("madvise");
    (space, start)
}

/// Faults in the huge page at `start` by a write and fills page `i` with `pattern(i, seed)`.
fn fill_huge(space: &SpaceRef, start: VirtAddr, seed: u8) {
    let outcome = fault::handle_page_fault(&mut space.lock(), start + 0x1234, USER_WRITE);
    assert_eq!(outcome, Ok(FaultOutcome::HugePage));
    for i in 0..PAGES_PER_HUGE {
        // SAFETY: the test space is never loaded; its pages are reached only here.
        unsafe { frame::write_bytes(frame_at(space, start + i * PAGE_SIZE), 0, &pattern(i, seed)) };
    }
}

fn frame_at(space: &SpaceRef, addr: VirtAddr) -> Frame {
    let pte = space.lock().pte(addr).expect("no page table");
    assert!(pte.is_present(), "{addr:?} is not present: {pte:?}");
    pte.frame()
}

fn contents(frame: Frame) -> Vec<u8> {
    let mut bytes = vec![0u8; PAGE_SIZE as usize];
    // SAFETY: the test space is never loaded; its pages are reached only here.
    unsafe { frame::read_bytes(frame, 0, &mut bytes) };
    bytes
}

/// Asserts that page `i` of the huge range at `start` holds `pattern(i, seed)`.
fn assert_bytes(space: &SpaceRef, start: VirtAddr, i: u64, seed: u8) {
    assert!(contents(frame_at(space, start + i * PAGE_SIZE)) == pattern(i, seed), "page {i} lost its bytes");
}

fn assert_consistent() -> check::Census {
    check::check_consistency().unwrap_or_else(|e| panic!("inconsistent: {e}"))
}

/// (RSS pages, huge pages) of `space`.
fn rss(space: &SpaceRef) -> (u64, u64) {
    let stats = space.lock().stats;
    (stats.rss_pages, stats.anon_huge_pages)
}

#[test_case]
fn a_write_fault_maps_one_2mib_page() {
    let (space, start) = huge_space(2);
    let (before, free) = (thp::counters(), nr_free());
    fill_huge(&space, start, 1);
    assert_eq!(thp::counters().fault_alloc, before.fault_alloc + 1);
    let head = frame_at(&space, start);
    assert!(head.pfn().is_multiple_of(PAGES_PER_HUGE), "the block is 2 MiB-aligned");
    for i in [0, 1, 255, 511] {
        assert_eq!(frame_at(&space, start + i * PAGE_SIZE), head + i, "page {i} is frame {i} of the block");
    }
    let (is_head, order, map_count, refcount) = frame::with_desc(head, |d| (d.is_compound_head(), d.order(), d.map_count(), d.refcount()));
    assert_eq!((is_head, order, map_count, refcount), (true, 9, 1, 1));
    assert_eq!(frame::with_desc(head + 7, |d| (d.map_count(), d.refcount())), (0, 0), "tails hold no counts");
    assert_eq!(rss(&space), (512, 1));
    // One block of 512 frames, plus the PDPT and PD above the leaf: no level-1 table.
    assert_eq!(nr_free(), free - 512 - 2);
    assert!(!reclaim::is_tracked(head), "a huge page is not on the policy's ring");
    // A second write inside it is no fault at all; one in the next 2 MiB is a second huge page.
    assert_eq!(fault::handle_page_fault(&mut space.lock(), start + HUGE, USER_WRITE), Ok(FaultOutcome::HugePage));
    assert_eq!(rss(&space), (1024, 2));
    let census = assert_consistent();
    assert!(census.nr_present >= 1024);
    drop(space);
    assert_eq!(nr_free(), free + 1, "exit freed both blocks, the tables and the root");
    assert_consistent();
}

#[test_case]
fn modes_and_advice_decide_where_huge_pages_go() {
    let (space, start) = huge_space(1);
    thp::set_mode(ThpMode::Never);
    assert_eq!(fault::handle_page_fault(&mut space.lock(), start, USER_WRITE), Ok(FaultOutcome::AnonymousPage));
    drop(space);

    thp::set_mode(ThpMode::Always);
    let plain = AddressSpace::new().expect("new space");
    let req = MapRequest { is_fixed: true, ..MapRequest::default() };
    plain.lock().mmap(BASE, 2 * HUGE, VmProt::READ_WRITE, req).expect("mmap");
    assert_eq!(fault::handle_page_fault(&mut plain.lock(), VirtAddr::new(BASE), USER_WRITE), Ok(FaultOutcome::HugePage));
    plain.lock().madvise_set_hugepage(BASE + HUGE, HUGE, false).expect("MADV_NOHUGEPAGE");
    assert_eq!(fault::handle_page_fault(&mut plain.lock(), VirtAddr::new(BASE + HUGE), USER_WRITE), Ok(FaultOutcome::AnonymousPage));
    thp::set_mode(ThpMode::Madvise);
    // Without MADV_HUGEPAGE, madvise mode maps small pages.
    let unadvised = AddressSpace::new().expect("new space");
    unadvised.lock().mmap(BASE, HUGE, VmProt::READ_WRITE, req).expect("mmap");
    assert_eq!(fault::handle_page_fault(&mut unadvised.lock(), VirtAddr::new(BASE), USER_WRITE), Ok(FaultOutcome::AnonymousPage));
    // A range that does not hold a whole aligned 2 MiB gets small pages too.
    let (space, start) = huge_space(1);
    space.lock().munmap(start.as_u64() + HUGE - PAGE_SIZE, PAGE_SIZE).expect("munmap");
    assert_eq!(fault::handle_page_fault(&mut space.lock(), start, USER_WRITE), Ok(FaultOutcome::AnonymousPage));
    // A read maps the zero page; the write after it stays small (the table is there).
    let (space, start) = huge_space(1);
    assert_eq!(fault::handle_page_fault(&mut space.lock(), start, USER_READ), Ok(FaultOutcome::ZeroPage));
    assert_eq!(fault::handle_page_fault(&mut space.lock(), start + PAGE_SIZE, USER_WRITE), Ok(FaultOutcome::AnonymousPage));
    assert_consistent();
}

#[test_case]
fn a_partial_munmap_splits_and_keeps_the_other_pages() {
    let (space, start) = huge_space(1);
    fill_huge(&space, start, 2);
    let (splits, free) = (thp::counters().splits, nr_free());
    space.lock().munmap(start.as_u64() + 100 * PAGE_SIZE, 2 * PAGE_SIZE).expect("munmap");
    assert_eq!(thp::counters().splits, splits + 1);
    assert_eq!(rss(&space), (510, 0));
    // Two frames freed, one page table allocated for the 512 small PTEs.
    assert_eq!(nr_free(), free + 2 - 1);
    assert!(space.lock().pte(start + 100 * PAGE_SIZE).is_some_and(|p| p.is_unused()));
    for i in (0..PAGES_PER_HUGE).filter(|i| !(100..102).contains(i)) {
        assert_bytes(&space, start, i, 2);
    }
    let head = frame_at(&space, start);
    assert!(reclaim::is_tracked(head) && reclaim::is_tracked(head + 511), "the small pages are reclaimable");
    assert_consistent();
    drop(space);
    assert_consistent();
}

#[test_case]
fn unmapping_a_whole_huge_page_frees_the_block() {
    let (space, start) = huge_space(2);
    fill_huge(&space, start, 3);
    fill_huge(&space, start + HUGE, 4);
    let (splits, free) = (thp::counters().splits, nr_free());
    space.lock().munmap(start.as_u64(), HUGE).expect("munmap");
    assert_eq!(thp::counters().splits, splits, "no split");
    assert_eq!(nr_free(), free + 512);
    assert_eq!(rss(&space), (512, 1));
    assert_bytes(&space, start + HUGE, 5, 4);
    assert_consistent();
}

#[test_case]
fn mprotect_of_part_splits_and_of_the_whole_keeps_the_huge_leaf() {
    let (space, start) = huge_space(2);
    fill_huge(&space, start, 5);
    fill_huge(&space, start + HUGE, 6);
    let splits = thp::counters().splits;
    space.lock().mprotect(start.as_u64() + HUGE, HUGE, VmProt::READ).expect("mprotect whole");
    assert_eq!((thp::counters().splits, rss(&space)), (splits, (1024, 2)));
    let pte = space.lock().pte(start + HUGE).expect("mapped");
    assert!(!pte.flags().contains(kernel::mm::paging::PteFlags::WRITABLE), "the huge leaf is read-only now");
    space.lock().mprotect(start.as_u64(), PAGE_SIZE, VmProt::READ).expect("mprotect part");
    assert_eq!((thp::counters().splits, rss(&space)), (splits + 1, (1024, 1)));
    for i in 0..PAGES_PER_HUGE {
        assert_bytes(&space, start, i, 5);
    }
    // A write to the read-only part is refused; the rest of the split page is writable.
    assert!(fault::handle_page_fault(&mut space.lock(), start, USER_WRITE).is_err());
    assert_consistent();
}

#[test_case]
fn dontneed_of_part_splits_and_the_dropped_pages_read_zero() {
    let (space, start) = huge_space(1);
    fill_huge(&space, start, 7);
    space.lock().madvise_dontneed(start.as_u64() + 10 * PAGE_SIZE, 3 * PAGE_SIZE).expect("dontneed");
    assert_eq!(rss(&space), (509, 0));
    assert_eq!(fault::handle_page_fault(&mut space.lock(), start + 11 * PAGE_SIZE, USER_READ), Ok(FaultOutcome::ZeroPage));
    assert!(contents(frame_at(&space, start + 11 * PAGE_SIZE)).iter().all(|&b| b == 0));
    assert_bytes(&space, start, 9, 7);
    assert_bytes(&space, start, 13, 7);
    assert_consistent();
}

/// The 2 MiB leaf of `space` at `start`: its head frame and whether it is writable.
fn huge_leaf(space: &SpaceRef, start: VirtAddr) -> (Frame, bool) {
    let space = space.lock();
    let (_, leaf) = space.huge_leaf(start).expect("a 2 MiB leaf");
    (leaf.frame(), leaf.flags().contains(kernel::mm::paging::PteFlags::WRITABLE))
}

/// Writes `pattern(i, seed)` into page `i` of the huge page at `start` of `space`
/// by a user write fault (resolving copy-on-write) and then through the frame.
fn write_page(space: &SpaceRef, start: VirtAddr, i: u64, seed: u8) -> FaultOutcome {
    let addr = start + i * PAGE_SIZE;
    let outcome = fault::handle_page_fault(&mut space.lock(), addr, USER_WRITE | 1).unwrap_or_else(|e| panic!("write fault: {e:?}"));
    // SAFETY: the test space is never loaded; its pages are reached only here.
    unsafe { frame::write_bytes(frame_at(space, addr), 0, &pattern(i, seed)) };
    outcome
}

#[test_case]
fn fork_shares_the_huge_page_and_each_side_copies_it_on_its_first_write() {
    let free = nr_free();
    let (parent, start) = huge_space(1);
    fill_huge(&parent, start, 8);
    let before = thp::counters();
    let child = cow::fork(&mut parent.lock()).expect("fork");
    assert_eq!(thp::counters().splits, before.splits, "fork splits nothing");
    assert_eq!((rss(&parent), rss(&child)), ((512, 1), (512, 1)));
    let (shared, _) = huge_leaf(&parent, start);
    assert_eq!(huge_leaf(&parent, start), (shared, false), "the parent's leaf is read-only");
    assert_eq!(huge_leaf(&child, start), (shared, false), "the child maps the same huge page, read-only");
    assert_eq!(frame::with_desc(shared, |d| (d.map_count(), d.refcount())), (2, 2));
    assert_consistent();

    // The child's first write copies the 2 MiB into a block of its own.
    let after_fork = nr_free();
    assert_eq!(write_page(&child, start, 3, 0x55), FaultOutcome::CowCopy);
    let (copy, is_writable) = huge_leaf(&child, start);
    assert!(copy != shared && is_writable, "the child maps its own writable copy");
    assert_eq!(nr_free(), after_fork - 512, "one 2 MiB copy");
    assert_eq!(frame::with_desc(shared, |d| (d.map_count(), d.refcount())), (1, 1));
    assert_eq!(thp::counters().cow_copies, before.cow_copies + 1);
    assert_eq!(rss(&child), (512, 1));
    // The parent's first write finds the page its own now: no copy.
    assert_eq!(write_page(&parent, start, 5, 0x66), FaultOutcome::CowReuse);
    assert_eq!(huge_leaf(&parent, start), (shared, true));
    assert_eq!(thp::counters().cow_reuses, before.cow_reuses + 1);
    for i in 0..PAGES_PER_HUGE {
        assert_bytes(&child, start, i, if i == 3 { 0x55 } else { 8 });
        assert_bytes(&parent, start, i, if i == 5 { 0x66 } else { 8 });
    }
    assert_consistent();
    drop(child);
    drop(parent);
    assert_eq!(nr_free(), free, "both exits gave back both blocks and every table");
    assert_consistent();
}

#[test_case]
fn a_split_of_a_shared_huge_page_copies_it_into_small_pages_of_that_side_only() {
    let (parent, start) = huge_space(1);
    fill_huge(&parent, start, 0x21);
    let child = cow::fork(&mut parent.lock()).expect("fork");
    let (shared, _) = huge_leaf(&parent, start);
    let before = thp::counters();
    // MADV_PAGEOUT leaves a shared huge page alone.
    let report = reclaim::pageout(&child, start.as_u64(), HUGE).expect("pageout");
    assert_eq!((report.nr_scanned, rss(&child)), (0, (512, 1)), "{report:?}");
    // A partial munmap in the child: the child copies into 511 small pages; the
    // parent keeps the huge page, now its alone.
    child.lock().munmap(start.as_u64() + 10 * PAGE_SIZE, PAGE_SIZE).expect("munmap");
    assert_eq!(thp::counters().cow_small_copies, before.cow_small_copies + 1);
    assert_eq!((rss(&parent), rss(&child)), ((512, 1), (511, 0)));
    assert_eq!(frame::with_desc(shared, |d| (d.map_count(), d.refcount())), (1, 1));
    for i in (0..PAGES_PER_HUGE).filter(|&i| i != 10) {
        assert_bytes(&child, start, i, 0x21);
        assert_ne!(frame_at(&child, start + i * PAGE_SIZE), shared + i, "page {i} is the child's own copy");
    }
    // The child's small pages are private: a write makes them writable, no copy.
    assert_eq!(write_page(&child, start, 11, 0x22), FaultOutcome::CowReuse);
    assert_eq!(write_page(&parent, start, 12, 0x23), FaultOutcome::CowReuse);
    for i in (0..PAGES_PER_HUGE).filter(|&i| i != 10) {
        assert_bytes(&child, start, i, if i == 11 { 0x22 } else { 0x21 });
        assert_bytes(&parent, start, i, if i == 12 { 0x23 } else { 0x21 });
    }
    assert_consistent();
    drop(parent);
    assert_consistent();
}

/// Fork of 64 MiB of huge pages, shared whole and (`thp_fork=split`, the old way)
/// split first: sharing maps 32 leaves in the child where splitting builds 32
/// tables of 512 PTEs on each side. Prints both costs.
#[test_case]
fn fork_of_64_mib_of_huge_pages_costs_far_less_shared_than_split() {
    const NR_HUGE: u64 = 32;
    let mut ns = [0u64; 2];
    for (round, is_shared) in [true, false].into_iter().enumerate() {
        let (parent, start) = huge_space(NR_HUGE);
        for h in 0..NR_HUGE {
            assert_eq!(fault::handle_page_fault(&mut parent.lock(), start + h * HUGE, USER_WRITE), Ok(FaultOutcome::HugePage));
        }
        thp::set_fork_shares(is_shared);
        let free = nr_free();
        let t0 = kernel::arch::timer::rdtsc();
        let child = cow::fork(&mut parent.lock()).expect("fork");
        ns[round] = kernel::arch::timer::cycles_to_ns(kernel::arch::timer::rdtsc() - t0);
        thp::set_fork_shares(true);
        let tables = free - nr_free();
        println!("fork of 64 MiB of huge pages, {}: {} us, {tables} frames of page tables", if is_shared { "shared" } else { "split" }, ns[round] / 1000);
        if is_shared {
            assert!(tables < 8, "sharing needs no level-1 table: {tables} frames taken");
            assert_eq!(rss(&child), (NR_HUGE * 512, NR_HUGE));
        } else {
            assert_eq!(rss(&child), (NR_HUGE * 512, 0));
        }
        assert_consistent();
    }
    assert!(ns[0] < ns[1], "sharing took {} us, splitting {} us", ns[0] / 1000, ns[1] / 1000);
}

#[test_case]
fn pageout_splits_a_huge_page_and_every_byte_comes_back_from_swap() {
    let (space, start) = huge_space(1);
    fill_huge(&space, start, 9);
    let report = reclaim::pageout(&space, start.as_u64(), HUGE).expect("pageout");
    assert_eq!(report.nr_scanned, 512);
    let stats = space.lock().stats;
    assert_eq!((stats.rss_pages, stats.anon_huge_pages, stats.swap_pages), (0, 0, 512), "{report:?}");
    assert_consistent();
    for i in 0..PAGES_PER_HUGE {
        let outcome = fault::fault_in(&space, start + i * PAGE_SIZE, USER_READ).expect("swap-in");
        assert!(matches!(outcome, FaultOutcome::SwapIn | FaultOutcome::SwapCacheHit), "page {i}: {outcome:?}");
        assert_bytes(&space, start, i, 9);
    }
    assert_eq!(space.lock().stats.swap_pages, 0);
    assert_consistent();
}

/// Runs the user program `thp` (real ring-3 accesses through the 2 MiB leaves):
/// it checks its own bytes and counters; afterwards the books balance and it
/// leaves no frame behind.
#[test_case]
fn the_thp_program_passes_in_ring_3() {
    use kernel::mm::{heap, swap};
    use kernel::proc::{self, task::WaitStatus};
    heap::shrink();
    let (free, slots) = (nr_free(), swap::slot_counts());
    let pid = proc::spawn("thp").expect("spawn thp");
    let (_, status) = proc::wait(Some(pid)).expect("wait");
    proc::task::wait_all(60_000).unwrap_or_else(|n| panic!("{n} processes never exited"));
    assert_eq!(status, WaitStatus::Exited(0));
    assert_consistent();
    heap::shrink();
    assert_eq!(swap::slot_counts(), slots, "thp left slots in use");
    assert_eq!(nr_free(), free, "thp leaked frames");
}

/// Compaction, triggered by a huge fault in fragmented memory: 16 MiB of user
/// pages with every other page unmapped leave half-used blocks; every other free
/// block of 2 MiB or more is taken away. The huge fault then finds no order-9
/// block, compaction moves the user pages out of one block (the reverse map finds
/// their PTEs), and the fault maps a huge page. Every moved page keeps its bytes
/// and its mapping, and `mm::check` is clean.
#[test_case]
fn a_huge_fault_in_fragmented_memory_compacts_a_block() {
    use kernel::mm::{Order, compact, frame::FrameState};
    const NR: u64 = 4096;
    // The layout below needs data pages allocated in address order from the buddy
    // allocator; pre-zeroed frames (`mm::zero_pool`) come from wherever idle time
    // found them, next to page tables, and no block would be movable.
    kernel::mm::zero_pool::set_enabled(false);
    let space = AddressSpace::new().expect("new space");
    let req = MapRequest { is_fixed: true, ..MapRequest::default() };
    let start = space.lock().mmap(0x8000_0000, NR * PAGE_SIZE, VmProt::READ_WRITE, req).expect("mmap");
    // Page tables first (one per 2 MiB), so the data pages lie in blocks of their own.
    for i in (0..NR).step_by(PAGES_PER_HUGE as usize) {
        assert_eq!(fault::handle_page_fault(&mut space.lock(), start + i * PAGE_SIZE, USER_READ), Ok(FaultOutcome::ZeroPage));
    }
    for i in 0..NR {
        fault::handle_page_fault(&mut space.lock(), start + i * PAGE_SIZE, USER_WRITE).expect("fault");
        // SAFETY: the test space is never loaded; its pages are reached only here.
        unsafe { frame::write_bytes(frame_at(&space, start + i * PAGE_SIZE), 0, &pattern(i, 12)) };
    }
    // MADV_DONTNEED frees every other page without splitting the VMA: a munmap
    // would cut 2048 VMAs, whose tree and gap-index nodes the heap would place in
    // the very holes just freed, leaving no block of only free and movable frames.
    for i in (1..NR).step_by(2) {
        space.lock().madvise_dontneed((start + i * PAGE_SIZE).as_u64(), PAGE_SIZE).expect("madvise");
    }
    let mut grabbed: Vec<Frame> = Vec::with_capacity(4096);
    while let Ok(block) = frame::alloc(Order(9), FrameState::Kernel) {
        grabbed.push(block);
    }
    assert!(frame::buddyinfo().nr_free_blocks[9..].iter().all(|&n| n == 0), "no free 2 MiB block left");
    let before_frames: Vec<Frame> = (0..NR).step_by(2).map(|i| frame_at(&space, start + i * PAGE_SIZE)).collect();
    let (before, thp_before) = (compact::counters(), thp::counters());

    let (huge, huge_start) = huge_space(1);
    assert_eq!(fault::handle_page_fault(&mut huge.lock(), huge_start, USER_WRITE), Ok(FaultOutcome::HugePage));
    let after = compact::counters();
    let moved = after.pages_migrated - before.pages_migrated;
    println!("compaction: {moved} pages migrated, {} blocks freed", after.blocks_freed - before.blocks_freed);
    assert!(moved > 0 && after.blocks_freed > before.blocks_freed, "{before:?} -> {after:?}");
    assert_eq!(thp::counters().fault_fallback, thp_before.fault_fallback, "no fallback");
    let block = frame_at(&huge, huge_start).pfn()..frame_at(&huge, huge_start).pfn() + PAGES_PER_HUGE;
    let mut nr_moved_here = 0;
    for (n, i) in (0..NR).step_by(2).enumerate() {
        assert_bytes(&space, start, i, 12);
        let now = frame_at(&space, start + i * PAGE_SIZE);
        assert!(!block.contains(&now.pfn()), "page {i} still in the compacted block");
        if now != before_frames[n] {
            nr_moved_here += 1;
            assert!(block.contains(&before_frames[n].pfn()), "page {i} moved from outside the block");
        }
    }
    assert_eq!(nr_moved_here, moved, "the pages that moved are the block's");
    assert_consistent();
    // SAFETY: the blocks were allocated above and nothing refers to them.
    grabbed.into_iter().for_each(|b| unsafe { frame::free(b, Order(9)) }.expect("free"));
    drop((space, huge));
    assert_consistent();
    kernel::mm::zero_pool::set_enabled(true);
}

/// The explicit request (`compact::compact_memory`) frees a block whose pages are
/// all movable, and a block holding a pinned page (a reference beyond its PTE) is
/// left alone.
#[test_case]
fn compact_memory_moves_movable_pages_and_leaves_pinned_ones() {
    use kernel::mm::compact;
    let (space, start) = huge_space(1);
    thp::set_mode(ThpMode::Never);
    for i in 0..PAGES_PER_HUGE {
        fault::handle_page_fault(&mut space.lock(), start + i * PAGE_SIZE, USER_WRITE).expect("fault");
        // SAFETY: the test space is never loaded; its pages are reached only here.
        unsafe { frame::write_bytes(frame_at(&space, start + i * PAGE_SIZE), 0, &pattern(i, 13)) };
    }
    thp::set_mode(ThpMode::Madvise);
    let pinned = frame_at(&space, start + 5 * PAGE_SIZE);
    frame::with_desc(pinned, |d| d.get_ref());
    let block = kernel::mm::Frame::from_pfn(pinned.pfn() & !(PAGES_PER_HUGE - 1));
    assert!(!frame::is_movable(pinned));
    assert_eq!(compact::compact_block(block, None), Err(compact::CompactError::UnmovableBlock));
    assert_eq!(frame_at(&space, start + 5 * PAGE_SIZE), pinned, "the pinned page stayed");
    frame::with_desc(pinned, |d| d.put_ref());
    compact::compact_memory();
    for i in 0..PAGES_PER_HUGE {
        assert_bytes(&space, start, i, 13);
    }
    assert_consistent();
}
