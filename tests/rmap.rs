//! The reverse map: every user frame names its fork family and page, through
//! faults, fork, copy-on-write copies, munmap and exit; the family's members are
//! the spaces that fork joined; and `mappings` finds exactly the PTEs that map a
//! frame, with the frame counts agreeing.
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

use kernel::mm::addr_space::AddressSpace;
use kernel::mm::fault::{self, FaultOutcome};
use kernel::mm::rmap::{self, FamilyPage, SpaceRef};
use kernel::mm::{Frame, PAGE_SIZE, Page, VirtAddr, check, cow, frame, heap};
use kernel::proc::{self, sched, task};
use kernel::testing::space_with_written_pages;
use kernel::testing::USER_WRITE;

kernel::test_kernel!();

#[path = "common/only_this_cpu.rs"]
mod only_this_cpu;
use only_this_cpu::OnlyThisCpuIdles;

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

/// Returns `frame`'s mappings, sorted, or panics if a space of its family is busy.
fn mappings(frame: Frame) -> Vec<(rmap::SpaceId, Page)> {
    let mut found = rmap::mappings(frame).unwrap_or_else(|id| panic!("space {id} is locked"));
    found.sort();
    found
}

/// Returns the (map count, refcount, reverse-map place) of `frame`.
fn counts(frame: Frame) -> (u32, u32, Option<FamilyPage>) {
    frame::with_desc(frame, |d| (d.map_count(), d.refcount(), d.family_page()))
}

/// Creates 5 000 address spaces (more than the 4 095 PCIDs) while 64 stay alive
/// throughout and 64 more are replaced round-robin: no two live spaces ever share a
/// PCID (a wrapping counter hands the long-lived spaces' tags out again).
#[test_case]
fn live_address_spaces_never_share_a_pcid() {
    let long_lived: Vec<SpaceRef> = (0..64).map(|_| AddressSpace::new().expect("new space")).collect();
    let mut recent: Vec<SpaceRef> = Vec::new();
    for i in 0..5_000 {
        let space = AddressSpace::new().expect("new space");
        let pcid = space.lock().pcid();
        let is_shared = long_lived.iter().chain(recent.iter()).any(|s| s.lock().pcid() == pcid);
        assert!(!is_shared, "space {i} got PCID {pcid}, which a live space holds");
        if recent.len() == 64 {
            recent.swap_remove(i % 64);
        }
        recent.push(space);
    }
}

#[test_case]
fn a_fault_names_the_frames_family_and_page() {
    let families = rmap::nr_families();
    let (space, start) = space_with_written_pages(3);
    let (id, family) = {
        let space = space.lock();
        (space.id(), space.family())
    };
    assert_eq!(rmap::nr_families(), families + 1, "a new space starts a family of its own");
    for i in 0..3 {
        let addr = start + i * PAGE_SIZE;
        let frame = frame_at(&space, addr);
        assert_eq!(mappings(frame), [(id, page(addr))]);
        assert_eq!(counts(frame), (1, 1, Some(FamilyPage { family, page: page(addr) })));
    }
    assert_consistent();
}

#[test_case]
fn fork_puts_the_child_in_the_family_and_both_spaces_map_every_frame() {
    let (parent, start) = space_with_written_pages(4);
    let families = rmap::nr_families();
    let child = cow::fork(&mut parent.lock()).expect("fork");
    let pid = parent.lock().id(); // one space lock at a time (lock order, mm/mod.rs)
    let cid = child.lock().id();
    assert_ne!(pid, cid);
    let child_family = child.lock().family();
    assert_eq!(child_family, parent.lock().family());
    assert_eq!(rmap::nr_families(), families, "fork starts no family");
    for i in 0..4 {
        let addr = start + i * PAGE_SIZE;
        let frame = frame_at(&parent, addr);
        assert_eq!(frame_at(&child, addr), frame);
        assert_eq!(mappings(frame), [(pid, page(addr)), (cid, page(addr))]);
        assert_eq!(counts(frame), (2, 2, Some(parent.lock().family_page(page(addr)))));
    }
    assert_consistent();
}

#[test_case]
fn a_cow_copy_moves_the_writer_to_its_new_frame() {
    let (parent, start) = space_with_written_pages(2);
    let child = cow::fork(&mut parent.lock()).expect("fork");
    let pid = parent.lock().id(); // one space lock at a time (lock order, mm/mod.rs)
    let cid = child.lock().id();
    let shared = frame_at(&parent, start);
    let outcome = fault::handle_page_fault(&mut child.lock(), start, USER_WRITE | 1);
    assert_eq!(outcome, Ok(FaultOutcome::CowCopy));
    let copy = frame_at(&child, start);
    assert_ne!(copy, shared);
    // Both frames name the same family and page; each member's PTE there decides.
    let at = Some(parent.lock().family_page(page(start)));
    assert_eq!((counts(copy), counts(shared)), ((1, 1, at), (1, 1, at)));
    assert_eq!(mappings(copy), [(cid, page(start))]);
    assert_eq!(mappings(shared), [(pid, page(start))]);
    // The parent is now the only user: its write reuses the frame in place.
    let outcome = fault::handle_page_fault(&mut parent.lock(), start, USER_WRITE | 1);
    assert_eq!(outcome, Ok(FaultOutcome::CowReuse));
    assert_eq!(frame_at(&parent, start), shared);
    assert_consistent();
}

#[test_case]
fn a_family_outlives_its_first_member() {
    let families = rmap::nr_families();
    let (parent, start) = space_with_written_pages(2);
    let child = cow::fork(&mut parent.lock()).expect("fork");
    let (cid, family) = {
        let child = child.lock();
        (child.id(), child.family())
    };
    let frame = frame_at(&child, start);
    drop(parent);
    assert_eq!(rmap::nr_families(), families + 1);
    assert_eq!(mappings(frame), [(cid, page(start))]);
    assert_eq!(counts(frame), (1, 1, Some(FamilyPage { family, page: page(start) })));
    // The child is alone now: a write reuses the frame in place.
    let outcome = fault::handle_page_fault(&mut child.lock(), start, USER_WRITE | 1);
    assert_eq!(outcome, Ok(FaultOutcome::CowReuse));
    assert_consistent();
    drop(child);
    assert_eq!(rmap::nr_families(), families, "the family dies with its last member");
}

#[test_case]
fn a_locked_member_is_reported_not_skipped() {
    let (parent, start) = space_with_written_pages(1);
    let child = cow::fork(&mut parent.lock()).expect("fork");
    let frame = frame_at(&parent, start);
    let guard = child.lock();
    assert_eq!(rmap::mappings(frame), Err(guard.id()));
    drop(guard);
    assert_eq!(mappings(frame).len(), 2);
}

#[test_case]
fn munmap_and_drop_unmap_every_frame_and_end_the_family() {
    heap::shrink();
    let (families, spaces, free) = (rmap::nr_families(), rmap::all_spaces().len(), frame::nr_free_frames());
    let (parent, start) = space_with_written_pages(8);
    let child = cow::fork(&mut parent.lock()).expect("fork");
    let pid = parent.lock().id(); // one space lock at a time (lock order, mm/mod.rs)
    let cid = child.lock().id();
    let frames: Vec<Frame> = (0..8).map(|i| frame_at(&parent, start + i * PAGE_SIZE)).collect();
    assert!(frames.iter().all(|&f| counts(f).0 == 2));
    parent.lock().munmap(start.as_u64(), 4 * PAGE_SIZE).expect("munmap");
    for (i, &frame) in frames.iter().enumerate() {
        let at = page(start + i as u64 * PAGE_SIZE);
        let mut want = alloc::vec![(pid, at), (cid, at)];
        if i < 4 {
            want.remove(0); // unmapped from the parent
        }
        assert_eq!(mappings(frame), want, "page {i}");
    }
    assert_consistent();
    drop(child);
    assert!(frames[4..].iter().all(|&f| counts(f).0 == 1));
    drop(frames); // a heap object: it must not count as a leak below
    assert_eq!(rmap::all_spaces().len(), spaces + 1);
    drop(parent);
    assert_eq!((rmap::nr_families(), rmap::all_spaces().len()), (families, spaces));
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
    proc::task::wait_all(60_000).unwrap_or_else(|n| panic!("{n} processes never exited"));
    nr_checks
}

#[test_case]
fn the_rmap_stays_consistent_while_processes_fork_and_exit() {
    // The audit reads the spaces, the frames and the policy one after another, which
    // only a single CPU keeps still (kernel code is not preempted): with `--smp 2` a
    // process exiting on the other CPU between two of its steps made it fail ("the
    // replacement policy tracks 0 frames, 1 user frames exist"). The processes run
    // on this CPU, between the audits.
    let _only_this_cpu = OnlyThisCpuIdles::new();
    let (spaces, families) = (rmap::all_spaces().len(), rmap::nr_families());
    let nr_checks = run_checking("forkcow") + run_checking("forkstorm");
    assert!(nr_checks >= 2, "only {nr_checks} checks saw a live process");
    assert_eq!((rmap::all_spaces().len(), rmap::nr_families()), (spaces, families));
}

/// The space the probe hook of the next test lets go of.
static LAST_OWNER: kernel::sync::IrqMutex<Option<SpaceRef>> = kernel::sync::IrqMutex::new(None);

/// Drops the test's own reference to [`LAST_OWNER`]'s space once the probe has it
/// among its candidates, as the space's exit on another CPU may: the probe then
/// holds the last reference.
fn let_go_of_the_owner(candidates: &[rmap::Candidate]) {
    let mut owner = LAST_OWNER.lock();
    let is_probed = owner.as_ref().is_some_and(|o| candidates.iter().any(|c| alloc::sync::Arc::ptr_eq(&c.space, o)));
    let taken = if is_probed { owner.take() } else { None };
    drop(owner);
    drop(taken); // not the last reference: the candidate list holds one
}

/// Issue #13: the replacement policy probes a frame's PTEs under its lock through
/// the reverse map, which hands out strong references to the spaces; a process that
/// exited on another CPU meanwhile left the probe with the last one, and the space
/// was torn down under the policy lock (fuzz image with `--smp 2`: "lock order:
/// taking Swap lock ... while holding ReclaimPolicy lock"). It is dropped after the
/// lock now, with every frame back.
#[test_case]
fn a_space_whose_last_reference_the_reclaim_probe_holds_is_freed_after_the_policy_lock() {
    heap::shrink();
    let (free, spaces) = (frame::nr_free_frames(), rmap::all_spaces().len());
    {
        let (space, _start) = space_with_written_pages(4);
        *LAST_OWNER.lock() = Some(space);
    }
    kernel::mm::reclaim::set_after_candidates_fn_for_test(Some(let_go_of_the_owner));
    for _ in 0..64 {
        if LAST_OWNER.lock().is_none() {
            break;
        }
        kernel::mm::reclaim::shrink(1);
    }
    kernel::mm::reclaim::set_after_candidates_fn_for_test(None);
    assert!(LAST_OWNER.lock().take().is_none(), "the probe never looked at the space's frames");
    assert_eq!(rmap::all_spaces().len(), spaces, "the space outlived its last reference");
    assert_consistent();
    heap::shrink();
    assert!(frame::nr_free_frames() + 4 >= free, "the space's frames did not come back");
}

/// Puts `n` frames on this CPU's page list (allocated, then freed: a free pushes
/// onto the running CPU's list), so the fault fast path has frames at hand.
fn stock_page_list(n: usize) {
    let frames: Vec<Frame> = (0..n).map(|_| frame::alloc(kernel::mm::Order(0), frame::FrameState::User).expect("frame")).collect();
    for f in frames {
        // SAFETY: allocated just above, mapped nowhere, known to nobody else.
        unsafe { frame::free(f, kernel::mm::Order(0)) }.expect("free");
    }
}

/// The fault fast path (`mm/fault/fast.rs`) takes the first write to an anonymous
/// page once its page table exists, and the copy-on-write copy after fork, and
/// leaves the same frame counts, reverse-map places, RSS and bytes as the general
/// path; the first fault of a fresh range (no page table yet) goes the general way.
#[test_case]
fn the_fault_fast_path_takes_anonymous_writes_and_cow_copies_with_the_same_bookkeeping() {
    let space = AddressSpace::new().expect("new space");
    let req = kernel::mm::addr_space::MapRequest::default();
    let start = space.lock().mmap(0, 16 * PAGE_SIZE, kernel::mm::addr_space::VmProt::READ_WRITE, req).expect("mmap");
    stock_page_list(16);
    let before = fault::nr_fast_faults();
    // Page 0: no level-1 table yet, so the general path (it creates the table).
    assert_eq!(fault::handle_page_fault(&mut space.lock(), start, USER_WRITE), Ok(FaultOutcome::AnonymousPage));
    assert_eq!(fault::nr_fast_faults(), before, "a fault that must create its page table went the fast way");
    for i in 1..9 {
        let outcome = fault::handle_page_fault(&mut space.lock(), start + i * PAGE_SIZE, USER_WRITE);
        assert_eq!(outcome, Ok(FaultOutcome::AnonymousPage), "page {i}");
    }
    let after = fault::nr_fast_faults();
    assert_eq!(after.anonymous, before.anonymous + 8, "pages 1..9 went the fast way");
    let (id, rss, minor) = {
        let s = space.lock();
        (s.id(), s.stats.rss_pages, s.stats.minor_faults)
    };
    assert_eq!((rss, minor), (9, 9));
    for i in 0..9 {
        let addr = start + i * PAGE_SIZE;
        let frame = frame_at(&space, addr);
        assert!(frame::is_zero(frame), "page {i} is not zero-filled");
        assert_eq!(mappings(frame), [(id, page(addr))]);
        assert_eq!(counts(frame), (1, 1, Some(space.lock().family_page(page(addr)))));
        // SAFETY: the test space is never loaded; its pages are reached only here.
        unsafe { frame::write_bytes(frame, 0, &[i as u8 + 1; 64]) };
    }
    assert_consistent();
    // Copy-on-write after fork: the child's write copies through the fast path.
    let child = cow::fork(&mut space.lock()).expect("fork");
    let cid = child.lock().id();
    let addr = start + 3 * PAGE_SIZE;
    let shared = frame_at(&space, addr);
    stock_page_list(4);
    let before = fault::nr_fast_faults();
    assert_eq!(fault::handle_page_fault(&mut child.lock(), addr, USER_WRITE | 1), Ok(FaultOutcome::CowCopy));
    assert_eq!(fault::nr_fast_faults().write_protect, before.write_protect + 1, "the COW copy went the fast way");
    let copy = frame_at(&child, addr);
    assert_ne!(copy, shared);
    let mut bytes = [0u8; 64];
    // SAFETY: as above.
    unsafe { frame::read_bytes(copy, 0, &mut bytes) };
    assert_eq!(bytes, [4u8; 64], "the copy holds the shared page's bytes");
    assert_eq!(mappings(copy), [(cid, page(addr))]);
    assert_eq!(mappings(shared), [(id, page(addr))]);
    assert_eq!(child.lock().stats.cow_faults, 1);
    // The parent is the last user now: its write reuses the frame in place.
    assert_eq!(fault::handle_page_fault(&mut space.lock(), addr, USER_WRITE | 1), Ok(FaultOutcome::CowReuse));
    assert_eq!(frame_at(&space, addr), shared);
    assert_consistent();
}

/// What the fast path must refuse goes the general way and comes out right: a
/// space in a memory group, and a range where a transparent huge page may go.
#[test_case]
fn the_fault_fast_path_leaves_memory_groups_and_huge_page_ranges_to_the_general_path() {
    use kernel::mm::thp::{self, ThpMode};
    // A space in a memory group, its page table already there (page 0's fault,
    // before the group, made it).
    let space = AddressSpace::new().expect("new space");
    let req = kernel::mm::addr_space::MapRequest { is_fixed: true, ..Default::default() };
    let start = space.lock().mmap(0x5000_0000, 8 * PAGE_SIZE, kernel::mm::addr_space::VmProt::READ_WRITE, req).expect("mmap");
    assert_eq!(fault::handle_page_fault(&mut space.lock(), start, USER_WRITE), Ok(FaultOutcome::AnonymousPage));
    let group = kernel::mm::memcg::create(u64::MAX, u64::MAX).expect("group");
    kernel::mm::memcg::attach(&space, group).expect("attach");
    stock_page_list(8);
    let before = fault::nr_fast_faults();
    for i in 1..5 {
        let outcome = fault::handle_page_fault(&mut space.lock(), start + i * PAGE_SIZE, USER_WRITE);
        assert_eq!(outcome, Ok(FaultOutcome::AnonymousPage), "page {i}");
    }
    assert_eq!(fault::nr_fast_faults(), before, "a memory group's fault went the fast way");
    assert_eq!(space.lock().stats.rss_pages, 5);
    assert_consistent();
    // A 2 MiB-aligned range advised MADV_HUGEPAGE: the general path maps a huge page.
    let mode = thp::mode();
    thp::set_mode(ThpMode::Madvise);
    const HUGE: u64 = 2 << 20;
    let huge = AddressSpace::new().expect("new space");
    let req = kernel::mm::addr_space::MapRequest { is_fixed: true, ..Default::default() };
    let base = huge.lock().mmap(0x4000_0000, 2 * HUGE, kernel::mm::addr_space::VmProt::READ_WRITE, req).expect("mmap");
    huge.lock().madvise_set_hugepage(base.as_u64(), 2 * HUGE, true).expect("madvise");
    let before = fault::nr_fast_faults();
    let outcome = fault::handle_page_fault(&mut huge.lock(), base + 0x1234, USER_WRITE);
    thp::set_mode(mode);
    assert_eq!(outcome, Ok(FaultOutcome::HugePage));
    assert_eq!(fault::nr_fast_faults(), before, "a huge-page fault went the fast way");
    assert_eq!(huge.lock().stats.rss_pages, thp::PAGES_PER_HUGE);
    assert_consistent();
}

/// A first write after an anonymous one gets its frame zeroed before the space's
/// lock is taken (`fault::fast::zeroed_before_lock`, through `fault_in`), and a
/// first write the fast path then refuses frees that frame and stops the guessing:
/// one frame zeroed for nothing per refusal, not one per fault.
#[test_case]
fn first_writes_after_an_anonymous_one_are_zeroed_before_the_space_lock() {
    let space = AddressSpace::new().expect("new space");
    let req = kernel::mm::addr_space::MapRequest { is_fixed: true, ..Default::default() };
    let near = space.lock().mmap(0x6000_0000, 16 * PAGE_SIZE, kernel::mm::addr_space::VmProt::READ_WRITE, req).expect("mmap");
    let far = space.lock().mmap(0x7000_0000, 4 * PAGE_SIZE, kernel::mm::addr_space::VmProt::READ_WRITE, req).expect("mmap");
    stock_page_list(32);
    let write = |addr: VirtAddr| fault::fault_in(&space, addr, USER_WRITE);
    // Page 0 makes the level-1 table (the general path), page 1 goes the fast way
    // with its zeroing under the lock: the streak starts after it.
    assert_eq!(write(near), Ok(FaultOutcome::AnonymousPage));
    assert_eq!(write(near + PAGE_SIZE), Ok(FaultOutcome::AnonymousPage));
    let before = fault::nr_fast_faults();
    for i in 2..10 {
        assert_eq!(write(near + i * PAGE_SIZE), Ok(FaultOutcome::AnonymousPage), "page {i}");
    }
    let after = fault::nr_fast_faults();
    assert_eq!(after.zeroed_early - before.zeroed_early, 8, "pages 2..10 were zeroed before the lock");
    assert_eq!(after.zeroed_early_unused, before.zeroed_early_unused);
    // The far range has no level-1 table: the fast path refuses its first write,
    // the frame zeroed for it is freed, and the next write is zeroed under the lock.
    assert_eq!(write(far), Ok(FaultOutcome::AnonymousPage));
    assert_eq!(write(far + PAGE_SIZE), Ok(FaultOutcome::AnonymousPage));
    let last = fault::nr_fast_faults();
    assert_eq!(last.zeroed_early_unused - after.zeroed_early_unused, 1, "one frame zeroed for the refused write");
    assert_eq!(last.zeroed_early, after.zeroed_early, "the write after a refusal was zeroed under the lock");
    for addr in (0..10).map(|i| near + i * PAGE_SIZE).chain([far, far + PAGE_SIZE]) {
        assert!(frame::is_zero(frame_at(&space, addr)), "{addr:?} is not zero-filled");
    }
    assert_eq!(space.lock().stats.rss_pages, 12);
    assert_consistent();
}
