// The body shared by the thread images (issue #13, threads): musl's pthreads run,
// and TLB shootdown is checked from user space with threads of one process on
// different CPUs: a page munmapped or write-protected under another thread faults
// at its next access, a COW fork under a writing sibling keeps the child's copy
// still, pages swapped out under a thread come back intact, N threads fault
// disjoint pages. After each program: every task gone, mm::check clean, every
// user frame back. And the order of an unmap: no frame is freed before every CPU
// that may reach it has flushed (`mm::addr_space::gather`). Included by
// `tests/threads2.rs` and `tests/threads4.rs`, which set `EXPECTED_CPUS`.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kernel::arch::{shootdown, smp, tlb};
use kernel::mm::frame::{self, FrameState};
use kernel::mm::rmap::SpaceRef;
use kernel::mm::vmstat::{self, SwapEvent};
use kernel::mm::{Frame, PAGE_SIZE, PhysAddr, check, paging};
use kernel::proc::{self, task::WaitStatus};

kernel::test_kernel!();

/// Runs C program `name` with `args` to its end and returns how it ended, after
/// checking that every task (every thread) is gone, the audit is clean and no
/// user frame is left.
fn run(name: &str, args: &str) -> WaitStatus {
    // The idle CPU's background zeroing (`mm::zero_pool`) would change the frame
    // table under the consistency check: off in this image.
    kernel::mm::zero_pool::set_enabled(false);
    let pid = proc::spawn_with_args(name, args).unwrap_or_else(|e| panic!("spawn {name}: {e:?}"));
    let (reaped, status) = proc::wait(Some(pid)).expect("no child to wait for");
    assert_eq!(reaped, pid);
    proc::task::wait_all(60_000).unwrap_or_else(|n| panic!("{name} {args}: {n} tasks never exited"));
    let census = check::check_consistency().unwrap_or_else(|e| panic!("{name} {args}: inconsistent after it was reaped: {e}"));
    assert_eq!(census.nr_frames, 0, "{name} {args}: user frames left: {census:?}");
    status
}

#[test_case]
fn a_musl_program_with_pthread_create_join_a_mutex_and_a_condition_variable_runs() {
    assert_eq!(smp::nr_online(), EXPECTED_CPUS, "every CPU is up");
    assert_eq!(run("pthread_c", ""), WaitStatus::Exited(0));
}

#[test_case]
fn a_thread_reading_a_page_another_thread_munmaps_faults_at_its_next_read() {
    // Exited(1): a read after munmap returned still succeeded (a stale TLB entry);
    // Exited(2): the reader never faulted.
    assert_eq!(run("shootdown_c", "munmap"), WaitStatus::Killed(abi::SIGKILL));
}

#[test_case]
fn a_thread_writing_a_page_another_thread_makes_read_only_faults_at_its_next_write() {
    assert_eq!(run("shootdown_c", "mprotect"), WaitStatus::Killed(abi::SIGKILL));
}

#[test_case]
fn a_fork_while_a_sibling_thread_writes_gives_the_child_a_copy_that_holds_still() {
    assert_eq!(run("shootdown_c", "cow"), WaitStatus::Exited(0));
}

#[test_case]
fn threads_faulting_disjoint_pages_of_one_mapping_lose_nothing_and_give_every_frame_back() {
    let nr_threads = alloc::format!("faults {}", 2 * EXPECTED_CPUS);
    kernel::mm::heap::shrink();
    let _ = run("shootdown_c", &nr_threads); // warms up what outlives a process
    kernel::mm::heap::shrink();
    let free_before = frame::nr_free_frames();
    assert_eq!(run("shootdown_c", &nr_threads), WaitStatus::Exited(0));
    kernel::mm::heap::shrink();
    assert_eq!(frame::nr_free_frames(), free_before, "the threads leaked frames");
}

#[test_case]
fn pages_swapped_out_while_a_thread_on_another_cpu_uses_them_come_back_intact() {
    let out_before = vmstat::nr_events(SwapEvent::SwapOut);
    let in_before = vmstat::nr_events(SwapEvent::SwapIn);
    assert_eq!(run("shootdown_c", "swap"), WaitStatus::Exited(0));
    let nr_out = vmstat::nr_events(SwapEvent::SwapOut) - out_before;
    let nr_in = vmstat::nr_events(SwapEvent::SwapIn) - in_before;
    assert!(nr_out > 0 && nr_in > 0, "the region went to swap and came back ({nr_out} out, {nr_in} in)");
}

/// The space another CPU loads in the unmap-order test.
static SPACE_ON_OTHER_CPU: spin::Mutex<Option<SpaceRef>> = spin::Mutex::new(None);
/// The frame the acknowledgement hook looks at (its physical address; 0: none).
static WATCHED_FRAME: AtomicU64 = AtomicU64::new(0);
/// Set by the hook if it found the watched frame free before acknowledging.
static IS_FREED_BEFORE_ACK: AtomicBool = AtomicBool::new(false);
/// How many acknowledgements the hook saw while watching.
static NR_ACKS_WATCHED: AtomicU64 = AtomicU64::new(0);

/// Runs on another CPU (in its call IPI): loads the test space, as a switch does.
fn load_test_space(_: usize) {
    let space = SPACE_ON_OTHER_CPU.lock().clone().expect("test space");
    let (root, pcid, keep_tlb) = space.lock().activation();
    // SAFETY: a user space's PML4 shares the kernel half; the idle task running here
    // touches no user memory.
    unsafe { tlb::write_cr3(root, pcid, keep_tlb) };
}

/// Runs on that CPU: goes back to the kernel's tables, as a switch away does.
fn unload_test_space(_: usize) {
    let space = SPACE_ON_OTHER_CPU.lock().clone().expect("test space");
    // SAFETY: the kernel's tree maps everything the kernel uses.
    unsafe { tlb::write_cr3(paging::kernel_root(), 0, false) };
    space.lock().deactivate_on_this_cpu();
}

/// The acknowledgement hook: is the watched frame still allocated while this CPU
/// has not yet said it flushed?
fn watch_frame() {
    let addr = WATCHED_FRAME.load(Ordering::SeqCst);
    if addr == 0 {
        return;
    }
    NR_ACKS_WATCHED.fetch_add(1, Ordering::SeqCst);
    let frame = Frame::containing_address(PhysAddr::new(addr));
    // Free: in the buddy allocator, or on a per-CPU list (whose descriptor still
    // reads User: `pcp::is_listed` says it is free).
    if frame::with_desc(frame, |d| d.state()) == FrameState::Free || kernel::mm::pcp::is_listed(frame) {
        IS_FREED_BEFORE_ACK.store(true, Ordering::SeqCst);
    }
}

#[test_case]
fn munmap_frees_a_frame_only_after_every_cpu_running_the_space_flushed_it() {
    const NR_PAGES: u64 = 16;
    let (space, start) = kernel::testing::space_with_written_pages(NR_PAGES);
    let frame = space.lock().pte(start).expect("mapped").frame();
    *SPACE_ON_OTHER_CPU.lock() = Some(space.clone());
    // The test task may run on any CPU (kernel code is not preempted, so it stays
    // on this one until it blocks): the space goes to another.
    let other = (smp::cpu_id() + 1) % EXPECTED_CPUS;
    smp::call_on(other, load_test_space, 0).expect("cpu online");
    IS_FREED_BEFORE_ACK.store(false, Ordering::SeqCst);
    NR_ACKS_WATCHED.store(0, Ordering::SeqCst);
    WATCHED_FRAME.store(frame.start_address().as_u64(), Ordering::SeqCst);
    shootdown::set_before_ack_hook(Some(watch_frame));
    let active = space.lock().cpus_active();
    let before = shootdown::stats();
    space.lock().munmap(start.as_u64(), NR_PAGES * PAGE_SIZE).expect("munmap");
    let after = shootdown::stats();
    WATCHED_FRAME.store(0, Ordering::SeqCst);
    shootdown::set_before_ack_hook(None);
    kernel::println!("unmap order: space active on {active:#b}, {} IPI(s)", after.ipis - before.ipis);
    smp::call_on(other, unload_test_space, 0).expect("cpu online");
    *SPACE_ON_OTHER_CPU.lock() = None;
    assert!(NR_ACKS_WATCHED.load(Ordering::SeqCst) >= 1, "cpu {other} had the space loaded: it got the shootdown");
    assert!(
        !IS_FREED_BEFORE_ACK.load(Ordering::SeqCst),
        "a frame was freed while cpu {other} could still reach it through its TLB (free before flush)"
    );
    let is_free = frame::with_desc(frame, |d| d.state()) != FrameState::User || kernel::mm::pcp::is_listed(frame);
    assert!(is_free, "and freed after the flush");
}
