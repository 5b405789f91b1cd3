//! Fault injection (issue #10, item 3): with frame allocations failing on purpose
//! (3 % of user pages, page tables and kernel-stack frames, seeded), fork storms under swap
//! pressure end in retries, ENOMEM or OOM decisions, never a kernel panic; the data
//! every process checks is intact; afterwards the audit is clean, every frame and
//! swap slot is back, and programs run normally again.
//!
//! This image asks the runner for 40 MiB of RAM, so `failstorm` swaps as it runs.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use kernel::mm::fail::{self, FailPlan, FailSite};
use kernel::mm::vmstat::{self, SwapEvent};
use kernel::mm::{check, frame, heap, swap};
use kernel::proc::{self, sched, task::WaitStatus};

#[path = "common/stable_count.rs"]
mod stable_count;
use stable_count::stable_count;

kernel::runner_args!(b"--memory 40M --timeout 280");

kernel::test_kernel!();

/// Injected failures the test asks for at least (the figure).
const MIN_INJECTED: u64 = 1000;

/// Spawns `name`, retrying while spawning itself runs out of (injected) memory;
/// returns how it ended.
fn run(name: &str) -> WaitStatus {
    let pid = loop {
        match proc::spawn(name) {
            Ok(pid) => break pid,
            Err(_) => sched::yield_now(), // an injected failure: ENOMEM for spawn; try again
        }
    };
    let (_, status) = proc::wait(Some(pid)).expect("wait");
    status
}

/// Free frames after shrinking the heap, once other CPUs are done moving frames
/// and the swap wiper is done ("frames leaked" in about half the runs with
/// `--smp 2` before).
fn stable_free_frames() -> u64 {
    let read = || {
        heap::shrink();
        frame::nr_free_frames()
    };
    stable_count(read, || swap::nr_slots_to_wipe() == 0)
}

#[test_case]
fn injected_allocation_failures_never_panic_the_kernel() {
    // One round without injection first: it grows the kernel's tables for good.
    assert_eq!(run("failstorm"), WaitStatus::Exited(0), "failstorm without injection");
    let free = stable_free_frames();
    let slots = swap::slot_counts();
    let kills = vmstat::nr_events(SwapEvent::OomKill);

    fail::start(FailPlan::percent(&FailSite::ALL, 3, 42));
    let mut nr_runs = 0;
    while fail::counts().1 < MIN_INJECTED && nr_runs < 20 {
        let status = run("failstorm");
        nr_runs += 1;
        // Killed by the OOM killer is an allowed outcome of an injected failure;
        // exiting non-zero is not (it means wrong data or a lost child).
        assert!(matches!(status, WaitStatus::Exited(0) | WaitStatus::Killed(abi::SIGKILL)), "failstorm {status}");
    }
    let (nr_seen, nr_injected) = fail::stop();
    assert!(nr_injected >= MIN_INJECTED, "only {nr_injected} failures injected in {nr_runs} runs");

    check::check_consistency().expect("consistent after injection");
    let free_after = stable_free_frames();
    assert_eq!(swap::slot_counts(), slots, "swap slots leaked");
    assert_eq!(free_after, free, "frames leaked");
    kernel::println!(
        "fail_inject: {nr_injected} of {nr_seen} allocations failed on purpose in {nr_runs} failstorm runs; 0 panics; {} OOM kills; frames and slots balanced",
        vmstat::nr_events(SwapEvent::OomKill) - kills
    );
}

#[test_case]
fn programs_run_normally_after_injection_ends() {
    for name in ["hello", "forkcow", "forkstorm", "pageout", "failstorm"] {
        assert_eq!(run(name), WaitStatus::Exited(0), "{name}");
    }
    check::check_consistency().expect("consistent");
}
