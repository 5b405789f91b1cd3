//! Same-page merging (`mm/ksm.rs`): identical pages of mergeable VMAs become one
//! write-protected frame (frames counted), a write copies just its page, MADV_UNMERGEABLE
//! gives every page its own copy back, different pages never merge, merged pages
//! go to swap once and come back to every process, fork shares them, and exit
//! frees them; the bookkeeping audit (`mm::check`, which checks the merged pages'
//! reverse map) is clean after every step.
//!
//! The tests drive address spaces directly (never loaded: the kernel reads and
//! writes their pages through the direct map), as tests/swap.rs does, and run the
//! scanner with `ksm::scan` (ksmd is off: `run` is 0 at boot).
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;

use kernel::mm::addr_space::{AddressSpace, MapRequest, VmFlags, VmProt};
use kernel::mm::fault::{self, FaultOutcome};
use kernel::mm::ksm;
use kernel::mm::rmap::SpaceRef;
use kernel::mm::swap::{self, Evicted};
use kernel::mm::{Frame, PAGE_SIZE, VirtAddr, check, cow, frame};
use kernel::testing::{USER_READ, USER_WRITE};

kernel::runner_args!(b"--timeout 180 --memory 256M");

kernel::test_kernel!();

/// A write to a present page (the error code's P bit too).
const USER_WRITE_PRESENT: u64 = USER_WRITE | 1;

/// The bytes of a page with pattern `seed`.
fn pattern(seed: u8) -> Vec<u8> {
    (0..PAGE_SIZE).map(|b| (b as u8).wrapping_mul(7) ^ seed).collect()
}

/// A space with one anonymous VMA of `seeds.len()` pages, page `i` filled with
/// `pattern(seeds[i])`, advised MADV_MERGEABLE if `is_mergeable`.
fn space_with(seeds: &[u8], is_mergeable: bool) -> (SpaceRef, VirtAddr) {
    let space = AddressSpace::new().expect("new space");
    let len = seeds.len() as u64 * PAGE_SIZE;
    let start = space.lock().mmap(0, len, VmProt::READ_WRITE, MapRequest::default()).expect("mmap");
    for (i, &seed) in seeds.iter().enumerate() {
        let addr = start + i as u64 * PAGE_SIZE;
        fault::handle_page_fault(&mut space.lock(), addr, USER_WRITE).expect("fault");
        // SAFETY: the test space is never loaded; its pages are reached only here.
        unsafe { frame::write_bytes(frame_at(&space, addr), 0, &pattern(seed)) };
    }
    if is_mergeable {
        space.lock().madvise_set_mergeable(start.as_u64(), len, true).expect("madvise");
    }
    (space, start)
}

fn frame_at(space: &SpaceRef, addr: VirtAddr) -> Frame {
    let pte = space.lock().pte(addr).expect("no page table");
    assert!(pte.is_present(), "{addr:?} is not present: {pte:?}");
    pte.frame()
}

fn frames_of(space: &SpaceRef, start: VirtAddr, nr: u64) -> Vec<Frame> {
    (0..nr).map(|i| frame_at(space, start + i * PAGE_SIZE)).collect()
}

fn distinct(frames: &[Frame]) -> usize {
    frames.iter().map(|f| f.pfn()).collect::<BTreeSet<_>>().len()
}

fn contents(frame: Frame) -> Vec<u8> {
    let mut bytes = vec![0u8; PAGE_SIZE as usize];
    // SAFETY: the test space is never loaded; its pages are reached only here.
    unsafe { frame::read_bytes(frame, 0, &mut bytes) };
    bytes
}

fn assert_bytes(space: &SpaceRef, start: VirtAddr, seeds: &[u8]) {
    for (i, &seed) in seeds.iter().enumerate() {
        let frame = frame_at(space, start + i as u64 * PAGE_SIZE);
        assert!(contents(frame) == pattern(seed), "page {i} lost its bytes");
    }
}

/// Runs the scanner to the end of a full scan (one whole scan when the last ended).
fn scan_all() -> ksm::PassReport {
    let report = ksm::scan(u64::MAX);
    assert_eq!(report.nr_full_scans, 1);
    report
}

fn assert_consistent() -> check::Census {
    check::check_consistency().unwrap_or_else(|e| panic!("inconsistent: {e}"))
}

#[test_case]
fn identical_pages_merge_into_one_frame() {
    let before = assert_consistent();
    let stats = ksm::stats();
    let (space, start) = space_with(&[9; 16], true);
    assert_eq!(assert_consistent().nr_frames, before.nr_frames + 16);
    let report = scan_all();
    assert_eq!(report.nr_merged, 15, "15 pages merged into the first");
    let frames = frames_of(&space, start, 16);
    assert_eq!(distinct(&frames), 1, "every page maps one frame");
    assert_eq!(assert_consistent().nr_frames, before.nr_frames + 1, "15 frames freed");
    let merged = frames[0];
    assert!(frame::with_desc(merged, |d| d.is_ksm() && d.map_count() == 16 && d.refcount() == 16));
    let pte = space.lock().pte(start).unwrap();
    assert!(!pte.flags().contains(kernel::mm::paging::PteFlags::WRITABLE), "write-protected");
    let now = ksm::stats();
    assert_eq!((now.pages_shared, now.pages_sharing), (stats.pages_shared + 1, stats.pages_sharing + 15));
    assert_eq!(space.lock().stats.rss_pages, 16, "each mapping still counts in the RSS, as in Linux");
    assert_bytes(&space, start, &[9; 16]);
    drop(space);
    assert_eq!(ksm::stats().pages_shared, stats.pages_shared, "exit freed the merged page");
    assert_eq!(assert_consistent().nr_frames, before.nr_frames);
}

#[test_case]
fn a_write_copies_just_the_written_page() {
    let (space, start) = space_with(&[3; 8], true);
    scan_all();
    let merged = frame_at(&space, start);
    let addr = start + 5 * PAGE_SIZE;
    assert_eq!(fault::handle_page_fault(&mut space.lock(), addr, USER_WRITE_PRESENT), Ok(FaultOutcome::CowCopy));
    let copy = frame_at(&space, addr);
    assert_ne!(copy, merged);
    assert!(!frame::with_desc(copy, |d| d.is_ksm()), "the copy is an ordinary page");
    assert!(contents(copy) == pattern(3), "the copy has the merged bytes");
    // SAFETY: the test space is never loaded; its pages are reached only here.
    unsafe { frame::write_bytes(copy, 0, &pattern(4)) };
    let frames = frames_of(&space, start, 8);
    assert_eq!(frames.iter().filter(|&&f| f == merged).count(), 7, "the other seven stay merged");
    assert_eq!(frame::with_desc(merged, |d| d.map_count()), 7);
    assert_bytes(&space, start, &[3, 3, 3, 3, 3, 4, 3, 3]);
    assert_consistent();
}

#[test_case]
fn the_last_mapping_of_a_merged_page_copies_too_and_frees_it() {
    let (space, start) = space_with(&[5; 2], true);
    scan_all();
    let merged = frame_at(&space, start);
    for i in 0..2 {
        let outcome = fault::handle_page_fault(&mut space.lock(), start + i * PAGE_SIZE, USER_WRITE_PRESENT);
        assert_eq!(outcome, Ok(FaultOutcome::CowCopy), "page {i}: a merged page is never reused in place");
    }
    assert!(!ksm::snapshot().iter().any(|(f, _)| *f == merged), "freed and forgotten");
    assert_bytes(&space, start, &[5; 2]);
    assert_consistent();
}

#[test_case]
fn madv_unmergeable_gives_every_page_its_own_copy() {
    let (space, start) = space_with(&[6; 8], true);
    scan_all();
    assert_eq!(distinct(&frames_of(&space, start, 8)), 1);
    space.lock().madvise_set_mergeable(start.as_u64(), 8 * PAGE_SIZE, false).expect("unmergeable");
    let frames = frames_of(&space, start, 8);
    assert_eq!(distinct(&frames), 8);
    assert!(frames.iter().all(|&f| !frame::with_desc(f, |d| d.is_ksm())));
    assert!(!space.lock().vmas().iter().any(|v| v.flags.contains(VmFlags::MERGEABLE)));
    assert_bytes(&space, start, &[6; 8]);
    assert_eq!(scan_all().nr_merged, 0, "no longer scanned");
    assert_consistent();
}

#[test_case]
fn pages_with_different_bytes_never_merge() {
    let seeds: Vec<u8> = (0..16).collect();
    let (space, start) = space_with(&seeds, true);
    // Two pages that differ only in their last byte.
    let twin = start + 15 * PAGE_SIZE;
    let mut almost = pattern(0);
    almost[PAGE_SIZE as usize - 1] ^= 1;
    // SAFETY: the test space is never loaded; its pages are reached only here.
    unsafe { frame::write_bytes(frame_at(&space, twin), 0, &almost) };
    assert_eq!(scan_all().nr_merged, 0);
    assert_eq!(scan_all().nr_merged, 0, "nor on a second scan");
    assert_eq!(distinct(&frames_of(&space, start, 16)), 16);
    assert!(contents(frame_at(&space, twin)) == almost);
    assert_consistent();
}

#[test_case]
fn pages_outside_mergeable_vmas_are_not_merged() {
    let (space, start) = space_with(&[8; 4], false);
    assert_eq!(scan_all().nr_merged, 0);
    assert_eq!(distinct(&frames_of(&space, start, 4)), 4);
    assert_consistent();
}

#[test_case]
fn merged_pages_of_two_processes_go_to_swap_once_and_come_back_to_both() {
    let (a, a_start) = space_with(&[0x11; 4], true);
    let (b, b_start) = space_with(&[0x11; 4], true);
    scan_all();
    let merged = frame_at(&a, a_start);
    assert_eq!(frame_at(&b, b_start + 3 * PAGE_SIZE), merged, "merged across processes (two families)");
    assert_eq!(ksm::snapshot().iter().find(|(f, _)| *f == merged).map(|(_, p)| p.len()), Some(8), "each page of A and of B is one place");
    assert_eq!(swap::evict(merged), Ok(Evicted::Written));
    let entry = a.lock().pte(a_start).unwrap().as_swap().expect("A's PTE is a swap entry");
    for (space, start) in [(&a, a_start), (&b, b_start)] {
        for i in 0..4 {
            assert_eq!(space.lock().pte(start + i * PAGE_SIZE).unwrap().as_swap(), Some(entry), "one slot for all eight");
        }
    }
    assert_eq!(swap::slot_count(entry), Ok(8));
    assert_consistent();
    // Back: read by B first (one family), then A (another): merged again.
    for (space, start) in [(&b, b_start), (&a, a_start)] {
        for i in 0..4 {
            fault::fault_in(space, start + i * PAGE_SIZE, USER_READ).expect("swap-in");
        }
    }
    let back = frame_at(&a, a_start);
    assert_eq!(distinct(&[frames_of(&a, a_start, 4), frames_of(&b, b_start, 4)].concat()), 1);
    assert!(frame::with_desc(back, |d| d.is_ksm()), "a page mapped by two families is a merged page again");
    assert_bytes(&a, a_start, &[0x11; 4]);
    assert_bytes(&b, b_start, &[0x11; 4]);
    assert_consistent();
    // A write still copies.
    let outcome = fault::fault_in(&b, b_start, USER_WRITE_PRESENT).expect("write");
    assert_eq!(outcome, FaultOutcome::CowCopy);
    assert_consistent();
    drop((a, b));
    assert_consistent();
}

#[test_case]
fn fork_shares_merged_pages_and_exit_frees_them() {
    let before = assert_consistent();
    let (parent, start) = space_with(&[0x22; 8], true);
    scan_all();
    let merged = frame_at(&parent, start);
    let child = cow::fork(&mut parent.lock()).expect("fork");
    assert_eq!(frames_of(&child, start, 8), vec![merged; 8]);
    assert_eq!(frame::with_desc(merged, |d| d.map_count()), 16);
    assert_consistent();
    assert_eq!(fault::handle_page_fault(&mut child.lock(), start, USER_WRITE_PRESENT), Ok(FaultOutcome::CowCopy));
    assert_bytes(&child, start, &[0x22; 8]);
    assert_consistent();
    drop(child);
    assert_eq!(frame::with_desc(merged, |d| d.map_count()), 8);
    assert_consistent();
    drop(parent);
    let after = assert_consistent();
    assert_eq!(after.nr_frames, before.nr_frames, "every frame back");
    assert!(!ksm::snapshot().iter().any(|(f, _)| *f == merged), "the merged page forgotten");
}

#[test_case]
fn a_second_scan_merges_into_the_stable_page() {
    let (a, a_start) = space_with(&[0x33; 2], true);
    scan_all();
    let merged = frame_at(&a, a_start);
    let (b, b_start) = space_with(&[0x33; 3], true);
    let report = scan_all();
    assert_eq!(report.nr_merged, 3, "the new pages found the merged page in the stable index");
    assert_eq!(frames_of(&b, b_start, 3), vec![merged; 3]);
    assert_consistent();
}

/// Runs the user program `ksm` (four processes, identical 16 MiB each, merged by
/// `ksm_ctl(SCAN)`, every byte checked in ring 3, one COW write each): it exits 0,
/// the books balance, and exit gives every frame back (the merged ones too).
#[test_case]
fn the_ksm_program_passes_in_ring_3() {
    use kernel::mm::heap;
    use kernel::proc::{self, task::WaitStatus};
    heap::shrink();
    let (free, shared) = (frame::nr_free_frames(), ksm::stats().pages_shared);
    let pid = proc::spawn("ksm").expect("spawn ksm");
    let (_, status) = proc::wait(Some(pid)).expect("wait");
    proc::task::wait_all(60_000).unwrap_or_else(|n| panic!("{n} processes never exited"));
    assert_eq!(status, WaitStatus::Exited(0));
    assert_consistent();
    assert_eq!(ksm::stats().pages_shared, shared, "every merged page freed");
    heap::shrink();
    assert_eq!(frame::nr_free_frames(), free, "ksm leaked frames");
}

/// MADV_MERGEABLE on a range that cuts a transparent huge page splits the VMA
/// there, so the huge page is split first (a 2 MiB leaf never spans two VMAs).
/// Found by the fuzzer: before the fix the audit failed and a later munmap of the
/// whole 2 MiB panicked ("huge pages cut by the range were split first").
#[test_case]
fn madv_mergeable_inside_a_huge_page_splits_it() {
    use kernel::mm::thp::{self, ThpMode};
    const HUGE: u64 = 2 << 20;
    const BASE: u64 = 0x4000_0000;
    thp::set_mode(ThpMode::Madvise);
    let space = AddressSpace::new().expect("new space");
    let req = MapRequest { is_fixed: true, ..MapRequest::default() };
    let start = space.lock().mmap(BASE, HUGE, VmProt::READ_WRITE, req).expect("mmap");
    space.lock().madvise_set_hugepage(BASE, HUGE, true).expect("madvise(HUGEPAGE)");
    assert_eq!(fault::handle_page_fault(&mut space.lock(), start, USER_WRITE), Ok(FaultOutcome::HugePage));
    space.lock().madvise_set_mergeable(BASE + 16 * PAGE_SIZE, 16 * PAGE_SIZE, true).expect("madvise(MERGEABLE)");
    assert_consistent();
    space.lock().munmap(BASE, HUGE).expect("munmap");
    assert_consistent();
    thp::set_mode(ThpMode::Madvise);
}
