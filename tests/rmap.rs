//! The reverse map: every PTE that maps a user frame is recorded, through faults,
//! fork, copy-on-write copies, munmap and exit, and the frame counts agree with it.
//!
//! The first tests drive address spaces directly (faults on a space that is not
//! loaded, fork, drop); the last runs real processes and checks the whole machine
//! between their time slices.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec::Vec;

use kernel::mm::addr_space::{AddressSpace, MapRequest, VmProt};
use kernel::mm::fault::{self, FaultOutcome};
use kernel::mm::rmap::{self, SpaceRef};
use kernel::mm::{Frame, PAGE_SIZE, Page, VirtAddr, check, cow, frame, heap};
use kernel::proc::{self, sched, task};

kernel::test_kernel!();

/// Page-fault error code bits: a write from user mode.
const USER_WRITE: u64 = (1 << 1) | (1 << 2);

/// A fresh space with `nr_pages` of anonymous memory written (faulted in); returns
/// the space and the start of the memory.
fn space_with_pages(nr_pages: u64) -> (SpaceRef, VirtAddr) {
    let space = AddressSpace::new().expect("new space");
    let start = space.lock().mmap(0, nr_pages * PAGE_SIZE, VmProt::READ_WRITE, MapRequest::default()).expect("mmap");
    for i in 0..nr_pages {
        let outcome = fault::handle_page_fault(&mut space.lock(), start + i * PAGE_SIZE, USER_WRITE);
        assert_eq!(outcome, Ok(FaultOutcome::AnonymousPage));
    }
    (space, start)
}

/// Returns the frame `addr` maps in `space`.
fn frame_at(space: &SpaceRef, addr: VirtAddr) -> Frame {
    let pte = space.lock().pte(addr).expect("no page table");
    assert!(pte.is_present(), "{addr:?} is not present");
    pte.frame()
}

fn page(addr: VirtAddr) -> Page {
    Page::containing_address(addr)
}

fn assert_consistent() -> check::Census {
    check::check_consistency().unwrap_or_else(|e| panic!("inconsistent: {e}"))
}

#[test_case]
fn a_fault_records_its_one_mapping() {
    let before = rmap::nr_mappings();
    let (space, start) = space_with_pages(3);
    let id = space.lock().id();
    for i in 0..3 {
        let addr = start + i * PAGE_SIZE;
        let frame = frame_at(&space, addr);
        assert_eq!(rmap::mappings(frame), [(id, page(addr))]);
        assert_eq!(frame::with_desc(frame, |d| (d.map_count(), d.refcount())), (1, 1));
    }
    assert_eq!(rmap::nr_mappings(), before + 3);
    assert_consistent();
}

#[test_case]
fn fork_maps_every_frame_in_both_spaces() {
    let (parent, start) = space_with_pages(4);
    let child = cow::fork(&mut parent.lock()).expect("fork");
    let (pid, cid) = (parent.lock().id(), child.lock().id());
    assert_ne!(pid, cid);
    for i in 0..4 {
        let addr = start + i * PAGE_SIZE;
        let frame = frame_at(&parent, addr);
        assert_eq!(frame_at(&child, addr), frame);
        let mut who: Vec<_> = rmap::mappings(frame);
        who.sort();
        assert_eq!(who, [(pid, page(addr)), (cid, page(addr))]);
        assert_eq!(frame::with_desc(frame, |d| d.map_count()), 2);
    }
    assert_consistent();
}

#[test_case]
fn a_cow_copy_moves_the_writer_to_its_new_frame() {
    let (parent, start) = space_with_pages(2);
    let child = cow::fork(&mut parent.lock()).expect("fork");
    let cid = child.lock().id();
    let shared = frame_at(&parent, start);
    let outcome = fault::handle_page_fault(&mut child.lock(), start, USER_WRITE | 1);
    assert_eq!(outcome, Ok(FaultOutcome::CowCopy));
    let copy = frame_at(&child, start);
    assert_ne!(copy, shared);
    assert_eq!(rmap::mappings(copy), [(cid, page(start))]);
    assert_eq!(rmap::mappings(shared), [(parent.lock().id(), page(start))]);
    // The parent is now the only user: its write reuses the frame in place.
    let outcome = fault::handle_page_fault(&mut parent.lock(), start, USER_WRITE | 1);
    assert_eq!(outcome, Ok(FaultOutcome::CowReuse));
    assert_eq!(frame_at(&parent, start), shared);
    assert_consistent();
}

#[test_case]
fn munmap_and_drop_remove_every_entry_and_frame() {
    heap::shrink();
    let (mappings, spaces, free) = (rmap::nr_mappings(), rmap::all_spaces().len(), frame::nr_free_frames());
    let (parent, start) = space_with_pages(8);
    let child = cow::fork(&mut parent.lock()).expect("fork");
    assert_eq!(rmap::nr_mappings(), mappings + 16);
    parent.lock().munmap(start.as_u64(), 4 * PAGE_SIZE).expect("munmap");
    assert_eq!(rmap::nr_mappings(), mappings + 12);
    assert_consistent();
    drop(child);
    assert_eq!(rmap::nr_mappings(), mappings + 4);
    assert_eq!(rmap::all_spaces().len(), spaces + 1);
    drop(parent);
    assert_eq!((rmap::nr_mappings(), rmap::all_spaces().len()), (mappings, spaces));
    heap::shrink();
    assert_eq!(frame::nr_free_frames(), free, "frames leaked");
}

/// Spawns `name` and checks the whole rmap every time task 0 gets the CPU back,
/// until the program (and its children) are gone; returns how many checks ran.
fn run_checking(name: &str) -> u64 {
    let pid = proc::spawn(name).expect("spawn");
    let mut nr_checks = 0;
    loop {
        let census = assert_consistent();
        nr_checks += u64::from(census.nr_present > 0);
        if let Some(status) = task::try_reap(pid) {
            assert_eq!(status, task::WaitStatus::Exited(0), "{name} failed");
            break;
        }
        sched::yield_now();
    }
    while proc::wait(None).is_some() {}
    nr_checks
}

#[test_case]
fn the_rmap_stays_consistent_while_processes_fork_and_exit() {
    let spaces = rmap::all_spaces().len();
    let mappings = rmap::nr_mappings();
    let nr_checks = run_checking("forkcow") + run_checking("forkstorm");
    assert!(nr_checks >= 2, "only {nr_checks} checks saw a live process");
    assert_eq!(rmap::all_spaces().len(), spaces);
    assert_eq!(rmap::nr_mappings(), mappings);
}
