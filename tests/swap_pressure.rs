//! Reclaim under memory pressure: the clock picks its victims by the real Accessed
//! bits, the watermarks start reclaim, and processes whose memory is twice RAM run
//! to the end with every word intact, leaving every frame and slot as they found them;
//! `fork` reclaims when the shared mapping it fills does not fit in free memory.
//!
//! This image asks the runner for 64 MiB of RAM.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec::Vec;

use kernel::mm::paging::PteFlags;
use kernel::mm::reclaim::{self, PolicyKind};
use kernel::mm::rmap::SpaceRef;
use kernel::mm::vmstat::{self, SwapEvent};
use kernel::mm::{PAGE_SIZE, Page, VirtAddr, check, frame, heap, swap};
use kernel::proc::{self, task::WaitStatus};
use kernel::testing::space_with_written_pages;

kernel::runner_args!(b"--memory 64M --timeout 240");

kernel::test_kernel!();


/// Sets the Accessed bit of the PTE at `addr`, as the MMU does on an access.
fn touch(space: &SpaceRef, addr: VirtAddr) {
    let mut space = space.lock();
    let mut pte = space.pte(addr).expect("no table");
    pte.insert_flags(PteFlags::ACCESSED);
    space.replace_pte(Page::containing_address(addr), pte);
}

/// Returns which of the `nr_pages` pages from `start` are in swap.
fn swapped(space: &SpaceRef, start: VirtAddr, nr_pages: u64) -> Vec<u64> {
    let space = space.lock();
    (0..nr_pages).filter(|&i| space.pte(start + i * PAGE_SIZE).is_some_and(|p| p.as_swap().is_some())).collect()
}

#[test_case]
fn the_clock_gives_a_referenced_page_a_second_chance() {
    reclaim::set_policy(PolicyKind::Clock);
    let (space, start) = space_with_written_pages(8);
    touch(&space, start); // the oldest page, first under the hand, was used
    let report = reclaim::shrink(1);
    assert_eq!(report.nr_freed(), 1);
    assert_eq!(swapped(&space, start, 8), [1], "page 0 was referenced: page 1 goes instead");
    let pte = space.lock().pte(start).expect("no table");
    assert!(pte.is_present() && !pte.flags().contains(PteFlags::ACCESSED), "the hand cleared page 0's bit");
    reclaim::shrink(1);
    assert_eq!(swapped(&space, start, 8), [1, 2]);
    check::check_consistency().expect("consistent");
}

/// With swap full, reclaim takes its frames straight from the swap cache, in slot
/// order. It took pages in use too (their Accessed bits unread), and the `oom`
/// image thrashed for minutes instead of reaching its OOM kill: kswapd kept memory
/// free by dropping pages that came back at the next instruction. A cached page
/// used since the last look now stays, once.
#[test_case]
fn with_swap_full_a_cached_page_in_use_gets_a_second_chance() {
    let (space, start) = space_with_written_pages(2);
    for i in 0..2 {
        let addr = start + i * PAGE_SIZE;
        let frame = space.lock().pte(addr).expect("no table").frame();
        swap::evict(frame).expect("evict");
        // Read back: in the swap cache (its slot kept) and mapped again.
        kernel::mm::fault::fault_in(&space, addr, kernel::testing::USER_READ).expect("fault");
    }
    touch(&space, start); // page 0 used since it came back
    let is_cached = |space: &SpaceRef, addr| {
        let pte = space.lock().pte(addr).expect("no table");
        pte.is_present() && frame::with_desc(pte.frame(), |d| d.has_flags(frame::FrameFlags::SWAP_CACHE))
    };
    assert!(is_cached(&space, start) && is_cached(&space, start + PAGE_SIZE));
    reclaim::shrink_swap_cache_for_test(u64::MAX);
    assert_eq!(swapped(&space, start, 2), [1], "page 0 was in use: only page 1 goes");
    let pte = space.lock().pte(start).expect("no table");
    assert!(!pte.flags().contains(PteFlags::ACCESSED), "the look cleared page 0's bit");
    reclaim::shrink_swap_cache_for_test(u64::MAX);
    assert_eq!(swapped(&space, start, 2), [0, 1], "unused since the last look: page 0 goes");
    check::check_consistency().expect("consistent");
}

#[test_case]
fn fifo_ignores_the_accessed_bit() {
    reclaim::set_policy(PolicyKind::Fifo);
    let (space, start) = space_with_written_pages(8);
    touch(&space, start);
    reclaim::shrink(2);
    assert_eq!(swapped(&space, start, 8), [0, 1], "FIFO evicts the oldest, used or not");
    check::check_consistency().expect("consistent");
    drop(space);
    reclaim::set_policy(PolicyKind::Clock);
}

/// Waits past the policy's aging interval (100 ms), so the next reclaim ages first.
fn wait_for_aging() {
    let until = kernel::arch::timer::uptime_ms() + 120;
    while kernel::arch::timer::uptime_ms() < until {
        x86_64::instructions::hlt();
    }
}

#[test_case]
fn lru_aging_evicts_the_page_unused_for_longest() {
    reclaim::set_policy(PolicyKind::Lru);
    let (space, start) = space_with_written_pages(8);
    // Every page starts with history 1000_0000. Page 0 is used, then a tick ages
    // them all: page 0 becomes 1100_0000, the others 0100_0000.
    touch(&space, start);
    wait_for_aging();
    reclaim::shrink(1);
    assert_eq!(swapped(&space, start, 8), [1], "the oldest of the unused pages goes first");
    // Now page 5 is used: after the next tick it has 1010_0000, page 0 0110_0000,
    // the rest 0010_0000; six victims leave page 5 alone.
    touch(&space, start + 5 * PAGE_SIZE);
    wait_for_aging();
    reclaim::shrink(6);
    assert_eq!(swapped(&space, start, 8), [0, 1, 2, 3, 4, 6, 7], "page 5 was used most recently");
    check::check_consistency().expect("consistent");
    drop(space);
    reclaim::set_policy(PolicyKind::Clock);
}

#[test_case]
fn watermarks_scale_with_memory_and_reserve_frames_for_the_kernel() {
    let marks = reclaim::watermarks();
    assert!(marks.min >= 64 && marks.low == 2 * marks.min && marks.high == 3 * marks.min);
    assert!(frame::buddyinfo().nr_managed_frames < 64 * 256, "this image runs with 64 MiB");
    check::check_consistency().expect("consistent");
}

#[test_case]
fn working_sets_twice_ram_survive_heavy_swapping() {
    heap::shrink();
    let (free, slots) = (frame::nr_free_frames(), swap::slot_counts());
    let (outs, ins) = (vmstat::nr_events(SwapEvent::SwapOut), vmstat::nr_events(SwapEvent::SwapIn));
    let pid = proc::spawn("swapstress").expect("spawn");
    let (_, status) = proc::wait(Some(pid)).expect("wait");
    assert_eq!(status, WaitStatus::Exited(0), "swapstress failed");
    let (outs, ins) = (vmstat::nr_events(SwapEvent::SwapOut) - outs, vmstat::nr_events(SwapEvent::SwapIn) - ins);
    kernel::println!("swapstress: {outs} pages written, {ins} read");
    vmstat::print_swap_counters();
    // Reads: when the workers happen to run one after another (one faults while the
    // others wait for the disk), only the first one's pages come back from swap:
    // 8 182 reads in one CI run (session 14), about 17 000 in most.
    assert!(outs > 8192 && ins > 4096, "four times 32 MiB on 64 MiB must swap a lot ({outs} written, {ins} read)");
    check::check_consistency().expect("consistent");
    heap::shrink();
    assert_eq!(swap::slot_counts(), slots, "slots leaked");
    assert_eq!(frame::nr_free_frames(), free, "frames leaked");
}

#[test_case]
fn fork_reclaims_to_fill_a_shared_mapping_larger_than_free_memory() {
    heap::shrink();
    let (free, slots) = (frame::nr_free_frames(), swap::slot_counts());
    assert!(free < 80 * 256, "the 80 MiB shared mapping must not fit in free memory");
    let direct = vmstat::nr_events(SwapEvent::DirectReclaim);
    let pid = proc::spawn("sharedbig").expect("spawn");
    let (_, status) = proc::wait(Some(pid)).expect("wait");
    assert_eq!(status, WaitStatus::Exited(0), "sharedbig failed");
    assert!(vmstat::nr_events(SwapEvent::DirectReclaim) > direct, "fork had to reclaim");
    check::check_consistency().expect("consistent");
    heap::shrink();
    assert_eq!(swap::slot_counts(), slots, "slots leaked");
    assert_eq!(frame::nr_free_frames(), free, "frames leaked");
}

