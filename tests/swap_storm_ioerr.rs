//! Disk errors at scattered points of a swap storm (issue #10, fault injection): the
//! swap disk fails 40 reads (once each) and every write to 20 slots, drawn at random once
//! (`tests/swap_storm_ioerr.blkdebug`) while `swapstress` moves four times RAM
//! through it. A failed swap-in kills only the process that needed the page, with
//! a message; a failed swap-out keeps the page and retires the slot; no surviving
//! worker sees a wrong word, and the machine ends where it started (retired slots
//! aside).
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

use kernel::mm::vmstat::{self, SwapEvent};
use kernel::mm::{check, frame, heap, swap};
use kernel::proc::{self, trap::NR_KILLED, task::WaitStatus};

kernel::runner_args!(b"--memory 32M --swap-size 256M --timeout 240 --swap-blkdebug tests/swap_storm_ioerr.blkdebug");

kernel::test_kernel!();

#[test_case]
fn disk_errors_during_a_swap_storm_hurt_only_who_needs_the_lost_pages() {
    use core::sync::atomic::Ordering;
    heap::shrink();
    // Free frames plus the kernel heap's: the first storm may grow kernel tables
    // for good (a fork family, the task table), which is not a leak.
    let free_and_heap = || frame::nr_free_frames() + heap::nr_frames();
    let (free, (free_slots, _)) = (free_and_heap(), swap::slot_counts());
    let (read_errors, write_errors) = (vmstat::nr_events(SwapEvent::ReadError), vmstat::nr_events(SwapEvent::WriteError));
    let killed = NR_KILLED.load(Ordering::Relaxed);
    let pid = proc::spawn_with_args("swapstress", "tolerate=kills").expect("spawn swapstress");
    assert_eq!(proc::wait(Some(pid)), Some((pid, WaitStatus::Exited(0))), "a surviving worker saw a wrong word");
    proc::task::wait_all(60_000).unwrap_or_else(|n| panic!("{n} processes never exited"));
    let nr_read_errors = vmstat::nr_events(SwapEvent::ReadError) - read_errors;
    let nr_write_errors = vmstat::nr_events(SwapEvent::WriteError) - write_errors;
    let nr_killed = NR_KILLED.load(Ordering::Relaxed) - killed;
    kernel::println!(
        "swap storm with disk errors: {nr_read_errors} read errors, {nr_write_errors} write errors, {nr_killed} processes killed, {} slots retired",
        swap::nr_retired_slots()
    );
    assert!(nr_write_errors >= 1, "no injected write error was hit");
    assert!(nr_read_errors + nr_write_errors >= 2, "too few injected errors were hit");
    assert!(nr_killed <= nr_read_errors, "{nr_killed} kills for {nr_read_errors} read errors: someone else died");
    let census = check::check_consistency().unwrap_or_else(|e| panic!("inconsistent: {e}"));
    assert_eq!(census.nr_frames, 0, "user frames left: {census:?}");
    heap::shrink();
    let retired = swap::nr_retired_slots() as u64;
    assert_eq!(swap::slot_counts().0 + retired, free_slots, "slots leaked (beyond the {retired} retired)");
    assert_eq!(free_and_heap(), free, "frames leaked");
}
