//! Swap over a block device that is not virtio: booted with `swapdev=ram`, the
//! kernel makes a 16 MiB RAM disk (`blockdev::RamDisk` on the kernel heap), registers
//! it with the block layer as "ram" and swaps to it. Existing swap workloads run to
//! the end with their data intact and the consistency audit passes after each,
//! while the virtio swap disk the runner still attaches sees no request at all.
//!
//! This image asks the runner for 48 MiB of RAM, so `thrash` (24 MiB) must swap.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use kernel::drivers::virtio_blk;
use kernel::mm::swap::{self, SwapOnError};
use kernel::mm::vmstat::{self, SwapEvent};
use kernel::mm::{check, heap};
use kernel::proc::{self, task::WaitStatus};

kernel::runner_args!(b"--memory 48M --cmdline swapdev=ram --timeout 180");

kernel::test_kernel!();

/// Requests the virtio swap disk has served: (reads, writes).
fn virtio_requests() -> (u64, u64) {
    let stats = virtio_blk::swap_disk().expect("the runner attaches a virtio swap disk").lock().stats();
    (stats.nr_reads, stats.nr_writes)
}

/// Runs the user program `name`, checks it exits 0, then audits the kernel.
fn run(name: &str) {
    let pid = proc::spawn(name).expect("spawn");
    assert_eq!(proc::wait(Some(pid)).expect("wait").1, WaitStatus::Exited(0), "{name} failed");
    check::check_consistency().expect("consistent");
}

#[test_case]
fn swap_is_on_the_ram_disk() {
    let disk = swap::disk().expect("swap is on");
    assert_eq!(disk.name(), "ram");
    assert_eq!(disk.capacity_bytes(), swap::area::RAM_SWAP_BYTES);
    assert!(kernel::block::find("swap").is_some(), "the virtio disk is registered too");
    let (free, usable) = swap::slot_counts();
    assert_eq!(usable, swap::area::RAM_SWAP_BYTES / 4096 - 1, "every slot but the header");
    assert_eq!(free, usable);
    assert_eq!(swap::swapon(), Err(SwapOnError::AlreadyOn));
}

#[test_case]
fn swap_workloads_run_over_the_ram_disk_never_touch_virtio_and_get_wiped() {
    let virtio_before = virtio_requests();
    let (outs, ins) = (vmstat::nr_events(SwapEvent::SwapOut), vmstat::nr_events(SwapEvent::SwapIn));
    heap::shrink();
    let slots = swap::slot_counts();
    for name in ["pageout", "swapfork", "thrash"] {
        run(name);
    }
    let (outs, ins) = (vmstat::nr_events(SwapEvent::SwapOut) - outs, vmstat::nr_events(SwapEvent::SwapIn) - ins);
    kernel::println!("over the RAM disk: {outs} pages written, {ins} read");
    assert!(outs > 1024 && ins > 1024, "thrash on 48 MiB must swap (wrote {outs}, read {ins})");
    assert_eq!(virtio_requests(), virtio_before, "swap went to the virtio disk");
    heap::shrink();
    // A slot still held names its holder: in session 14 (`--smp 2`) a swap-cache
    // page whose process exited while an eviction or the cleaner held it locked.
    let held = swap::snapshot();
    assert_eq!(swap::slot_counts(), slots, "slots leaked: in use {:?}, swap cache {:?}", held.counts, held.cache);
    // The RAM disk can write zeroes, so swap tracks freed slots and the wiper
    // clears them: after the workloads, no freed slot still waits. With 2 CPUs the
    // wiper may run on the other one, where this task's yields do not wait for it
    // (1000 yields once left 1023 slots): wait for it, at most a minute.
    let deadline = kernel::arch::timer::uptime_ms() + 60_000;
    while swap::nr_slots_to_wipe() > 0 && kernel::arch::timer::uptime_ms() < deadline {
        proc::sched::yield_now();
    }
    assert_eq!(swap::nr_slots_to_wipe(), 0, "freed slots still wait to be wiped");
    assert!(vmstat::nr_events(SwapEvent::SlotWiped) > 0, "the wiper wiped RAM-disk slots");
}
