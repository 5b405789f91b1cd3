//! Every replacement policy in the kernel, and switching between them at run time:
//! each reclaims through the real reverse map and leaves `mm::check` clean; a switch
//! hands every tracked page to the new policy; and switching every few ticks while
//! `swapstress` swaps twice RAM loses no page (its workers check every word).
//!
//! This image asks the runner for 64 MiB of RAM.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kernel::arch::timer;

use kernel::mm::reclaim::{self, PolicyKind};
use kernel::mm::vmstat::{self, SwapEvent};
use kernel::mm::{PAGE_SIZE, check, frame, heap, swap};
use kernel::proc::{self, task::WaitStatus};

#[path = "common/only_this_cpu.rs"]
mod only_this_cpu;
use only_this_cpu::OnlyThisCpuIdles;
use kernel::sync::WaitQueue;
use kernel::mm::addr_space::{AddressSpace, MapRequest, VmProt};
use kernel::mm::fault::{self, FaultOutcome};
use kernel::mm::{Frame, VirtAddr};
use kernel::mm::rmap::SpaceRef;
use kernel::testing::space_with_written_pages;
use kernel::testing::{USER_READ, USER_WRITE, balloon_leaving};

kernel::runner_args!(b"--memory 64M --timeout 240");

kernel::test_kernel!();

#[test_case]
fn every_policy_reclaims_through_the_reverse_map_and_leaves_check_clean() {
    for kind in PolicyKind::ALL {
        reclaim::set_policy(kind);
        let (space, start) = space_with_written_pages(64);
        let report = reclaim::shrink(16);
        assert_eq!(report.nr_freed(), 16, "{}: {report:?}", kind.name());
        let frames = space.lock().resident_frames(start.as_u64(), 64 * PAGE_SIZE).expect("range");
        assert_eq!(frames.len(), 48, "{}", kind.name());
        assert!(frames.iter().all(|&f| reclaim::is_tracked(f)), "{}: a resident page is untracked", kind.name());
        check::check_consistency().unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
    }
    reclaim::set_policy(PolicyKind::Clock);
}

/// The byte pattern of page `i` of a test space.
fn pattern(i: u64) -> alloc::vec::Vec<u8> {
    (0..PAGE_SIZE).map(|b| (b as u8) ^ (i as u8).wrapping_mul(37) ^ 0x5a).collect()
}

/// The frame a present PTE at `addr` maps.
fn frame_at(space: &SpaceRef, addr: VirtAddr) -> Frame {
    let pte = space.lock().pte(addr).expect("no page table");
    assert!(pte.is_present(), "{addr:?} is not present: {pte:?}");
    pte.frame()
}

/// A space with `nr_pages` anonymous pages, page `i` filled with `pattern(i)`.
fn filled_space(nr_pages: u64) -> (SpaceRef, VirtAddr) {
    let space = AddressSpace::new().expect("new space");
    let start = space.lock().mmap(0, nr_pages * PAGE_SIZE, VmProt::READ_WRITE, MapRequest::default()).expect("mmap");
    for i in 0..nr_pages {
        let addr = start + i * PAGE_SIZE;
        fault::handle_page_fault(&mut space.lock(), addr, USER_WRITE).expect("fault");
        // SAFETY: the test space is never loaded; its pages are reached only here.
        unsafe { frame::write_bytes(frame_at(&space, addr), 0, &pattern(i)) };
    }
    (space, start)
}

#[test_case]
fn a_pick_counts_a_space_locked_elsewhere_as_referenced_only_for_a_few_pages() {
    // The one space in the ring, locked here as a fault on another CPU holds its
    // space while it waits for the policy lock: a pick that counted every busy page
    // as referenced would go round the ring twice (2 x 1024 busy pages) first.
    reclaim::set_policy(PolicyKind::Clock);
    let (space, start) = filled_space(1024);
    let frames = space.lock().resident_frames(start.as_u64(), 1024 * PAGE_SIZE).expect("range");
    let busy = reclaim::nr_busy();
    let victim = {
        let _held = space.lock();
        reclaim::pick_and_keep_for_test().expect("a victim")
    };
    let nr_busy = reclaim::nr_busy() - busy;
    kernel::println!("one pick with the only space busy: {nr_busy} busy pages looked at");
    assert!(frames.contains(&victim), "the victim is a page of the busy space");
    assert_eq!(nr_busy, u64::from(reclaim::BUSY_PER_PICK) + 1, "the budget of busy answers, then the victim");
    assert!(reclaim::is_tracked(victim), "kept");
    // Unlocked, the space's pages are looked at again: no budget spent.
    let busy = reclaim::nr_busy();
    reclaim::pick_and_keep_for_test().expect("a victim");
    assert_eq!(reclaim::nr_busy(), busy);
    drop(space);
    check::check_consistency().expect("consistent");
}

#[test_case]
fn vms_unmaps_its_oldest_pages_and_a_touch_rescues_them_without_io_content_intact() {
    reclaim::set_policy(PolicyKind::Vms);
    let (space, start) = filled_space(64);
    let (ins, outs, rescued) =
        (vmstat::nr_events(SwapEvent::SwapIn), vmstat::nr_events(SwapEvent::SwapOut), reclaim::nr_rescued());
    let nr_unmapped = reclaim::refill_second_chance_lists() as u64;
    // The lists take a quarter of the tracked pages, the FIFO's oldest: ours first.
    assert!(nr_unmapped >= 16, "{nr_unmapped} pages unmapped");
    let nr_ours = nr_unmapped.min(64);
    for i in 0..nr_ours {
        let pte = space.lock().pte(start + i * PAGE_SIZE).expect("table");
        let entry = pte.as_swap().unwrap_or_else(|| panic!("page {i} still mapped: {pte:?}"));
        assert!(swap::lookup(entry).is_some(), "page {i}: its frame is kept, in the swap cache");
    }
    assert_eq!(vmstat::nr_events(SwapEvent::SwapOut), outs, "nothing written yet");
    check::check_consistency().expect("a buffered page is a known state");
    // Touch every unmapped page: each fault maps the kept frame back, no disk read.
    for i in 0..nr_ours {
        let addr = start + i * PAGE_SIZE;
        let outcome = fault::fault_in(&space, addr, if i % 2 == 0 { USER_READ } else { USER_WRITE }).expect("fault");
        assert_eq!(outcome, FaultOutcome::SwapCacheHit, "page {i}");
        let mut bytes = alloc::vec![0u8; PAGE_SIZE as usize];
        // SAFETY: the test space is never loaded; its pages are reached only here.
        unsafe { frame::read_bytes(frame_at(&space, addr), 0, &mut bytes) };
        assert!(bytes == pattern(i), "page {i}: content changed");
    }
    assert_eq!(vmstat::nr_events(SwapEvent::SwapIn), ins, "a rescue reads nothing (pswpin unchanged)");
    assert_eq!(reclaim::nr_rescued() - rescued, nr_ours, "every touch was a rescue");
    check::check_consistency().expect("consistent after the rescues");
    drop(space);
    reclaim::set_policy(PolicyKind::Clock);
}

#[test_case]
fn vms_frees_frames_from_its_clean_list_and_writes_the_dirty_one() {
    reclaim::set_policy(PolicyKind::Vms);
    let (space, start) = filled_space(256);
    let outs = vmstat::nr_events(SwapEvent::SwapOut);
    let report = reclaim::shrink(64);
    assert_eq!(report.nr_freed(), 64, "{report:?}");
    // Every page of ours is either mapped or a swap entry, and reads back intact.
    for i in 0..256 {
        let addr = start + i * PAGE_SIZE;
        fault::fault_in(&space, addr, USER_READ).expect("fault");
        let mut bytes = alloc::vec![0u8; PAGE_SIZE as usize];
        // SAFETY: the test space is never loaded; its pages are reached only here.
        unsafe { frame::read_bytes(frame_at(&space, addr), 0, &mut bytes) };
        assert!(bytes == pattern(i), "page {i}: content changed");
    }
    assert!(vmstat::nr_events(SwapEvent::SwapOut) - outs >= 64, "the dirty victims were written");
    check::check_consistency().expect("consistent");
    drop(space);
    reclaim::set_policy(PolicyKind::Clock);
}

#[test_case]
fn vms_under_thrash_rescues_pages_and_thrash_checks_every_word() {
    reclaim::set_policy(PolicyKind::Vms);
    let balloon = balloon_leaving(3000);
    let (rescued, vm_rescued, ins) =
        (reclaim::nr_rescued(), vmstat::nr_events(SwapEvent::Rescued), vmstat::nr_events(SwapEvent::SwapIn));
    let start_ms = timer::uptime_ms();
    let pid = proc::spawn("thrash").expect("spawn");
    let (_, status) = proc::wait(Some(pid)).expect("wait");
    drop(balloon);
    let (rescued, vm_rescued, ins) = (
        reclaim::nr_rescued() - rescued,
        vmstat::nr_events(SwapEvent::Rescued) - vm_rescued,
        vmstat::nr_events(SwapEvent::SwapIn) - ins,
    );
    kernel::println!("thrash under vms: {rescued} pages rescued, {ins} read, {} ms", timer::uptime_ms() - start_ms);
    assert_eq!(status, WaitStatus::Exited(0), "thrash saw a wrong word");
    assert!(rescued > 100, "a workload with reuse rescues pages: {rescued}");
    assert_eq!(vm_rescued, rescued, "/proc/vmstat's pgrescued counts the policy's rescues");
    reclaim::set_policy(PolicyKind::Clock);
    check::check_consistency().expect("consistent");
}

#[test_case]
fn a_switch_hands_every_tracked_page_to_the_new_policy() {
    reclaim::set_policy(PolicyKind::Fifo);
    let (space, start) = space_with_written_pages(100);
    let nr_tracked = reclaim::nr_tracked();
    assert!(nr_tracked >= 100);
    for kind in PolicyKind::ALL.into_iter().rev() {
        assert_eq!(reclaim::set_policy(kind), nr_tracked, "{}: every page moves", kind.name());
        assert_eq!(reclaim::nr_tracked(), nr_tracked);
        let frames = space.lock().resident_frames(start.as_u64(), 100 * PAGE_SIZE).expect("range");
        assert!(frames.iter().all(|&f| reclaim::is_tracked(f)), "{}", kind.name());
        check::check_consistency().unwrap_or_else(|e| panic!("{}: {e}", kind.name()));
    }
    // FIFO's order survives a round trip through FIFO: the oldest page goes first.
    reclaim::set_policy(PolicyKind::Fifo);
    reclaim::set_policy(PolicyKind::Fifo);
    reclaim::shrink(1);
    let pte = space.lock().pte(start).expect("table");
    assert!(pte.as_swap().is_some(), "the first page faulted in was the first out");
    drop(space);
    reclaim::set_policy(PolicyKind::Clock);
}

/// True while the switcher thread should keep switching.
static IS_SWITCHING: AtomicBool = AtomicBool::new(false);
/// Where the switcher sleeps between switches, and parks when told to stop.
static SWITCHER_QUEUE: WaitQueue = WaitQueue::new();

/// The longest switch (hand-over of every tracked page), in microseconds.
static MAX_SWITCH_US: AtomicU64 = AtomicU64::new(0);
/// The longest stretch with the policy lock held (interrupts off) by a switch in
/// batches, and by one that moves every page at once, in microseconds.
static MAX_BATCHED_HOLD_US: AtomicU64 = AtomicU64::new(0);
static MAX_AT_ONCE_HOLD_US: AtomicU64 = AtomicU64::new(0);
/// Each switch's longest hold, in microseconds, by kind (the first 64 of each).
/// The maximum above is at the mercy of the host: a QEMU thread descheduled by a
/// loaded host for 0.4 s inside one batch counts as 0.4 s with interrupts off.
/// The medians are what the test compares.
static BATCHED_HOLDS_US: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];
static AT_ONCE_HOLDS_US: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];
static NR_BATCHED: AtomicU64 = AtomicU64::new(0);
static NR_AT_ONCE: AtomicU64 = AtomicU64::new(0);

/// Returns the median of the first `nr` (at most 64) of `holds`.
fn median_us(holds: &[AtomicU64; 64], nr: &AtomicU64) -> u64 {
    let nr = (nr.load(Ordering::Relaxed) as usize).min(64);
    let mut values: alloc::vec::Vec<u64> = holds[..nr].iter().map(|h| h.load(Ordering::Relaxed)).collect();
    values.sort_unstable();
    values.get(nr / 2).copied().unwrap_or(0)
}
/// Every this many switches, one moves every page at once (the way switches
/// worked before they moved pages in batches), for the comparison. Not more
/// often: a long stretch with interrupts off can make a swap-in time out under a
/// loaded host (one run with every fourth switch at once had a worker killed so).
const AT_ONCE_EVERY: usize = 8;
/// Timer ticks between switches (10 ms each). A switch at once moves every tracked
/// page with interrupts off (about 14 000 here): doing that much more often starves
/// the disk's completions (see docs/16-replacement-policies.md).
const SWITCH_INTERVAL_TICKS: u64 = 50;

/// A kernel thread that installs the next policy every 500 ms while told to.
extern "C" fn switcher_main() -> ! {
    let mut next = 0;
    loop {
        SWITCHER_QUEUE.wait_until(|| IS_SWITCHING.load(Ordering::Acquire));
        let start = timer::rdtsc();
        let kind = PolicyKind::ALL[next % PolicyKind::ALL.len()];
        let (longest_hold, holds, nr_holds) = if next % AT_ONCE_EVERY == AT_ONCE_EVERY - 1 {
            reclaim::set_policy_at_once(kind);
            (&MAX_AT_ONCE_HOLD_US, &AT_ONCE_HOLDS_US, &NR_AT_ONCE)
        } else {
            reclaim::set_policy(kind);
            (&MAX_BATCHED_HOLD_US, &BATCHED_HOLDS_US, &NR_BATCHED)
        };
        MAX_SWITCH_US.fetch_max(timer::cycles_to_ns(timer::rdtsc() - start) / 1000, Ordering::Relaxed);
        let hold_us = reclaim::last_switch_longest_hold_ns() / 1000;
        longest_hold.fetch_max(hold_us, Ordering::Relaxed);
        let i = nr_holds.fetch_add(1, Ordering::Relaxed) as usize;
        if i < holds.len() {
            holds[i].store(hold_us, Ordering::Relaxed);
        }
        next += 1;
        let deadline = timer::ticks() + SWITCH_INTERVAL_TICKS;
        SWITCHER_QUEUE.wait_until_deadline(|| false, deadline);
    }
}

#[test_case]
fn switching_policy_twice_a_second_while_swapstress_swaps_loses_no_page() {
    // The switcher's stack is taken before the frames are counted.
    kernel::sync::kthread::spawn("switcher", switcher_main).expect("spawn the switcher");
    heap::shrink();
    let (free, slots) = (frame::nr_free_frames(), swap::slot_counts());
    let (outs, switches) = (vmstat::nr_events(SwapEvent::SwapOut), reclaim::nr_policy_switches());
    IS_SWITCHING.store(true, Ordering::Release);
    SWITCHER_QUEUE.wake_one();
    let start_ms = timer::uptime_ms();
    // On a quiet host the workers can run nearly one after another (one that is not
    // faulting keeps the CPU while the others wait for their pages), and one run
    // then writes only a few thousand pages in under a second: run swapstress again
    // until it swapped a lot under several switches (at most four runs).
    let mut nr_runs = 0;
    let (outs, switches) = loop {
        let pid = proc::spawn("swapstress").expect("spawn");
        let (_, status) = proc::wait(Some(pid)).expect("wait");
        assert_eq!(status, WaitStatus::Exited(0), "a worker saw a wrong word");
        nr_runs += 1;
        let done = (vmstat::nr_events(SwapEvent::SwapOut) - outs, reclaim::nr_policy_switches() - switches);
        if nr_runs == 4 || (done.0 > 8192 && done.1 as usize > PolicyKind::ALL.len()) {
            break done;
        }
    };
    IS_SWITCHING.store(false, Ordering::Release);
    let (batched_us, at_once_us) = (MAX_BATCHED_HOLD_US.load(Ordering::Relaxed), MAX_AT_ONCE_HOLD_US.load(Ordering::Relaxed));
    kernel::println!(
        "swapstress under switching: {outs} pages written, {switches} policy switches in {} ms ({nr_runs} runs), the longest {} us",
        timer::uptime_ms() - start_ms,
        MAX_SWITCH_US.load(Ordering::Relaxed)
    );
    let (batched_median, at_once_median) = (median_us(&BATCHED_HOLDS_US, &NR_BATCHED), median_us(&AT_ONCE_HOLDS_US, &NR_AT_ONCE));
    kernel::println!(
        "longest stretch with interrupts off in a switch: {batched_us} us in batches of {} (median over switches {batched_median} us), {at_once_us} us moving every page at once (median {at_once_median} us)",
        reclaim::SWITCH_BATCH
    );
    assert!(outs > 8192, "four times 32 MiB on 64 MiB must swap a lot");
    assert!(switches as usize > PolicyKind::ALL.len(), "every policy ran: {switches} switches");
    assert!(at_once_median > 0 && batched_median < at_once_median, "batches hold the lock for less than a whole switch");
    // Let the switcher finish a switch it may be in, then park.
    let deadline = timer::ticks() + SWITCH_INTERVAL_TICKS + 5;
    SWITCHER_QUEUE.wait_until_deadline(|| false, deadline);
    reclaim::set_policy(PolicyKind::Clock);
    check::check_consistency().expect("consistent");
    heap::shrink();
    assert_eq!(swap::slot_counts(), slots, "slots leaked");
    assert_eq!(frame::nr_free_frames(), free, "frames leaked");
}

/// Returns the anonymous pages `space` maps now (present, not the zero page, not a
/// page-cache page), walking its page table: what the process holds resident
/// outside the second-chance lists.
fn mapped_anonymous_pages(space: &SpaceRef) -> u64 {
    let zero = fault::zero_frame();
    let mut nr_pages = 0;
    space.lock().for_each_user_leaf(|_, pte, size| {
        if pte.is_present() && pte.frame() != zero && frame::with_desc(pte.frame(), |d| !d.has_flags(frame::FrameFlags::FILE)) {
            nr_pages += size.size_bytes() / PAGE_SIZE;
        }
    });
    nr_pages
}

#[test_case]
fn vms_holds_a_process_to_its_resident_limit_and_rescues_its_pages_without_io() {
    use kernel::mm::reclaim::resident_limit;
    use kernel::proc::task;
    // Above thrash's hot quarter (1536 pages), a third of its 6144: a FIFO this size
    // still pushes hot pages out, and they come back from the lists.
    const LIMIT: u64 = 2048;
    // One CPU's view: the walk below holds thrash's space lock, and a trim on
    // another CPU that finds it held leaves its page mapped on the clean list (a
    // `Busy` unmap, evicted as usual later): 2102 mapped with `--smp 2`.
    let _only_this_cpu = OnlyThisCpuIdles::new();
    reclaim::set_policy(PolicyKind::Vms);
    assert!(!resident_limit::set_default_limit(resident_limit::MIN_LIMIT - 1), "below the minimum: refused");
    assert!(resident_limit::set_default_limit(LIMIT));
    let (rescued, ins) = (reclaim::nr_rescued(), vmstat::nr_events(SwapEvent::SwapIn));
    // It lingers 300 ms before it exits, its pages mapped: this task gets the CPU
    // while thrash touches only when a tick finds it in user mode (2 walks in a
    // second, sometimes), and its exit unmaps everything.
    let pid = proc::spawn_with_args("thrash", "linger=300").expect("spawn");
    let space = task::TASKS.lock().get(&pid).and_then(|t| t.space.clone()).expect("a space");
    let id = space.lock().id();
    let (mut max_mapped, mut max_in_set, mut nr_polls, mut walked_at) = (0, 0, 0, 0);
    let status = loop {
        // The page-table walk holds thrash's space lock: every 20 ms, not every yield.
        if timer::uptime_ms() >= walked_at + 20 {
            max_mapped = max_mapped.max(mapped_anonymous_pages(&space));
            walked_at = timer::uptime_ms();
            nr_polls += 1;
        }
        if let Some((nr_in_set, limit)) = resident_limit::resident_set_of(id) {
            assert_eq!(limit as u64, LIMIT, "the default limit");
            max_in_set = max_in_set.max(nr_in_set as u64);
        }
        if let Some(status) = task::try_reap(pid) {
            break status;
        }
        proc::sched::yield_now();
    };
    assert!(resident_limit::set_default_limit(0));
    let (rescued, ins) = (reclaim::nr_rescued() - rescued, vmstat::nr_events(SwapEvent::SwapIn) - ins);
    let major = space.lock().stats.major_faults;
    drop(space);
    kernel::println!(
        "thrash, vms limit {LIMIT}: at most {max_mapped} anonymous pages mapped ({max_in_set} in its FIFO) over {nr_polls} polls, {rescued} rescued, {ins} read, {major} major faults"
    );
    assert_eq!(status, WaitStatus::Exited(0), "thrash saw a wrong word");
    // At least one walk while it ran. How many depends on how often the scheduler
    // hands this task the CPU while thrash runs (2 walks in 745 ms in two suite
    // runs, sessions 9 and 10): that the walks saw thrash at its limit is the
    // `LIMIT / 2` check below.
    assert!(nr_polls >= 1, "never walked its page tables while it ran");
    // The page a fault has just mapped counts until the fault trims the set.
    assert!(max_mapped <= LIMIT + 1, "{max_mapped} pages mapped > the limit {LIMIT} (+1)");
    assert!(max_in_set <= LIMIT + 1, "{max_in_set} in its FIFO");
    assert!(max_mapped >= LIMIT / 2, "it used its resident set: {max_mapped}");
    // 6144 pages in 64 MiB: every frame stays, on the lists; a touch maps it back.
    assert!(rescued > 1000, "pages pushed out by the limit and touched again are rescued: {rescued}");
    assert_eq!(ins, 0, "memory was plenty: nothing read from swap");
    assert_eq!(major, 0, "no major fault");
    reclaim::set_policy(PolicyKind::Clock);
    check::check_consistency().expect("consistent");
}

#[test_case]
fn a_fault_trace_records_every_touch_outside_its_window_in_order() {
    use kernel::mm::reclaim::record;
    // wsprobe maps 64 pages, writes each once, then writes one word of each, in
    // address order, 4 passes: 5 sequential passes over 64 pages. A window of 8
    // keeps fewer than 64 mapped, so every one of those 320 writes faults.
    let pid = proc::spawn_with_args("wsprobe", "pages=64 mapped=64 rounds=4 write").expect("spawn wsprobe");
    let trace = record::record_faults(pid, 8).expect("a trace");
    assert_eq!(proc::wait(Some(pid)), Some((pid, WaitStatus::Exited(0))));
    assert!(!trace.is_truncated);
    let refs: alloc::vec::Vec<u64> = trace.refs().collect();
    let pages: alloc::vec::Vec<u64> = refs.iter().map(|r| r >> 1).collect();
    // Its data: 64 adjacent pages that each appear 5 times in the trace.
    let nr_refs_to = |q: u64| pages.iter().filter(|&&p| p == q).count();
    let start = pages
        .iter()
        .copied()
        .filter(|&p| (p..p + 64).all(|q| nr_refs_to(q) == 5))
        .min()
        .unwrap_or_else(|| panic!("no 64 adjacent pages in the trace: {pages:x?}"));
    let data: alloc::vec::Vec<u64> =
        refs.iter().filter(|r| (start..start + 64).contains(&(*r >> 1))).copied().collect();
    let expected: alloc::vec::Vec<u64> = (0..5).flat_map(|_| 0..64).map(|i| (start + i) << 1 | 1).collect();
    assert_eq!(data, expected, "5 passes of writes over the 64 pages, in order (trace of {} references)", refs.len());
    // The window at work: besides its data, its stack faults again and again.
    assert!(refs.len() > data.len(), "its stack and the rest are traced too");
    check::check_consistency().expect("consistent");
}
