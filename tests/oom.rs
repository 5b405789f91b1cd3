//! The OOM killer: when memory and swap are both exhausted, the process with the
//! most memory is killed with a message, the others finish with their data intact,
//! and the kernel goes on, with every frame and slot back where they were.
//!
//! This image asks the runner for 64 MiB of RAM and 32 MiB of swap.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use kernel::mm::oom::{self, OomOutcome};
use kernel::mm::vmstat::{self, SwapEvent};
use kernel::mm::{check, frame, heap, swap};
use kernel::proc::{self, sched, task, task::WaitStatus};

#[path = "common/only_this_cpu.rs"]
mod only_this_cpu;
use only_this_cpu::OnlyThisCpuIdles;

// Usually 10 s. Before reclaim's swap-full path gave pages in use a second chance,
// 5 runs in 16 took 64 s to over 240 s: with swap full, kswapd kept free frames
// above `low` by dropping the processes' cached pages in slot order, so no
// allocation failed and the OOM killer was not called while they thrashed. A
// worker can still thrash on its own cold pages (seen: 50-100 s on a loaded host);
// an open bug (docs/09-oom.md), and the time limit leaves room for it.
kernel::runner_args!(b"--memory 64M --swap-size 32M --timeout 480");

kernel::test_kernel!();

fn run(name: &str) -> WaitStatus {
    let pid = proc::spawn(name).unwrap_or_else(|e| panic!("spawn {name}: {e:?}"));
    let (_, status) = proc::wait(Some(pid)).expect("wait");
    proc::task::wait_all(60_000).unwrap_or_else(|n| panic!("{name}: {n} processes never exited"));
    status
}

/// Runs `oomparty` once and checks the kill and the books.
fn oom_party() {
    let (kills, direct) = (vmstat::nr_events(SwapEvent::OomKill), vmstat::nr_events(SwapEvent::DirectReclaim));
    assert_eq!(run("oomparty"), WaitStatus::Exited(0), "oomparty failed");
    assert_eq!(vmstat::nr_events(SwapEvent::OomKill), kills + 1, "exactly one OOM kill");
    assert!(vmstat::nr_events(SwapEvent::DirectReclaim) > direct, "allocations failed and direct reclaim ran");
    check::check_consistency().expect("consistent");
}

#[test_case]
fn oom_kills_the_largest_process_and_the_others_finish() {
    // Counts exactly, as on one CPU: with `--smp 2` the two reads differed by 5
    // frames once (the other CPU's tasks and background zeroing move frames).
    let _only_this_cpu = OnlyThisCpuIdles::new();
    // The first run also grows the kernel's tables for good (fork families, swap
    // cache, task table nodes); the second must give back every frame it took.
    oom_party();
    heap::shrink();
    let (free, slots) = (frame::nr_free_frames(), swap::slot_counts());
    oom_party();
    vmstat::print_swap_counters();
    heap::shrink();
    assert_eq!(swap::slot_counts(), slots, "slots leaked");
    assert_eq!(frame::nr_free_frames(), free, "frames leaked");
}

#[test_case]
fn fork_that_cannot_fill_its_shared_mapping_fails_with_enomem() {
    // Issue #10, item 4: the fork retry loop ends, in ENOMEM (exit 0) or, since RAM
    // and swap are full then, an OOM kill at the process's next fault. Run twice:
    // the second run must give back every frame and slot.
    let ends_well = |status| matches!(status, WaitStatus::Exited(0) | WaitStatus::Killed(abi::SIGKILL));
    let _only_this_cpu = OnlyThisCpuIdles::new(); // counts exactly, as above
    let first = run("forkenomem");
    assert!(ends_well(first), "forkenomem ended with {first:?}");
    heap::shrink();
    let (free, slots) = (frame::nr_free_frames(), swap::slot_counts());
    let second = run("forkenomem");
    assert!(ends_well(second), "forkenomem ended with {second:?}");
    kernel::println!("forkenomem ended with {first:?}, then {second:?}");
    check::check_consistency().expect("consistent");
    heap::shrink();
    assert_eq!(swap::slot_counts(), slots, "slots leaked");
    assert_eq!(frame::nr_free_frames(), free, "frames leaked");
}

#[test_case]
fn the_kernel_runs_programs_after_an_oom_kill() {
    assert_eq!(run("hello"), WaitStatus::Exited(0));
    assert_eq!(run("pageout"), WaitStatus::Exited(0));
    check::check_consistency().expect("consistent");
}

/// Yields until `parent` holds at least 1024 resident pages and its child (the
/// other user task) has unmapped its copy.
fn wait_for_sleepers(parent: task::Pid) {
    for _ in 0..10_000 {
        let rss: alloc::vec::Vec<(task::Pid, u64)> =
            task::user_tasks().iter().map(|t| (t.pid, t.space.lock().stats.rss_pages)).collect();
        let is_parent_ready = rss.iter().any(|&(pid, n)| pid == parent && n >= 1024);
        let is_child_ready = rss.iter().any(|&(pid, n)| pid != parent && n < 64);
        if is_parent_ready && is_child_ready {
            return;
        }
        sched::yield_now();
    }
    panic!("sleeper {parent} never settled");
}

#[test_case]
fn the_oom_killer_kills_another_process_even_while_it_waits() {
    // As on one CPU: "one victim at a time" asks again before the victim has run;
    // with `--smp 2` it had woken and exited on the other CPU in between, and the
    // second call rightly chose its child ("Killed(28)" for "AlreadyDying(27)").
    let _only_this_cpu = OnlyThisCpuIdles::new();
    let parent = proc::spawn("sleeper").expect("spawn");
    wait_for_sleepers(parent);
    // Task 0 has no memory of its own: the victim is another process, the parent,
    // which is blocked in wait4; it must wake up and exit.
    assert_eq!(oom::out_of_memory(), OomOutcome::Killed(parent));
    assert_eq!(oom::out_of_memory(), OomOutcome::AlreadyDying(parent), "one victim at a time");
    assert_eq!(proc::wait(Some(parent)), Some((parent, WaitStatus::Killed(abi::SIGKILL))));
    // Its child (now the reaper's) yields forever: it is next, exits on its way back
    // to user mode, and the reaper reaps it.
    let child = task::user_tasks().first().map(|t| t.pid).expect("the orphaned child");
    assert_eq!(oom::out_of_memory(), OomOutcome::Killed(child));
    assert_eq!(proc::wait(None), None, "the orphan is not task 0's child");
    task::wait_all(60_000).expect("the reaper reaps the killed orphan");
    assert_eq!(oom::out_of_memory(), OomOutcome::NoVictim);
    check::check_consistency().expect("consistent");
}
