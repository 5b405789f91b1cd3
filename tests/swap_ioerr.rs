//! Swap I/O errors, injected by QEMU's blkdebug (rules in `tests/swap_ioerr.blkdebug`,
//! asked for in this image's runner options): a failed swap-in kills only the
//! process that needed the page; a failed swap-out keeps the page resident, retires
//! the slot and is reported; the kernel and the other processes go on.
//!
//! The rules fail the first read of slot 1 and the first write of slot 20, once each,
//! so the steps run in one test, in order, from a fresh boot.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec;

use blockdev::BlockError;
use kernel::mm::addr_space::{AddressSpace, MapRequest, VmProt};
use kernel::mm::swap::{self, EvictError, Evicted};
use kernel::mm::vmstat::{self, SwapEvent};
use kernel::mm::{PAGE_SIZE, check, fault, frame, heap};
use kernel::proc::{self, task::WaitStatus};

kernel::runner_args!(b"--swap-blkdebug tests/swap_ioerr.blkdebug --timeout 120");

kernel::test_kernel!();

fn wait_for(pid: proc::Pid) -> WaitStatus {
    proc::wait(Some(pid)).expect("wait").1
}

/// Steps 1: the read error. `swapioerr` swaps its page out first (slot 1) and reads
/// it back; `forkcow` runs beside it without touching swap.
fn a_failed_swap_in_kills_only_the_process_that_needed_the_page() {
    let errors = vmstat::nr_events(SwapEvent::ReadError);
    let victim = proc::spawn("swapioerr").expect("spawn");
    let bystander = proc::spawn("forkcow").expect("spawn");
    assert_eq!(wait_for(victim), WaitStatus::Killed(abi::SIGKILL), "swapioerr was not killed");
    assert_eq!(wait_for(bystander), WaitStatus::Exited(0), "the bystander suffered");
    assert_eq!(vmstat::nr_events(SwapEvent::ReadError), errors + 1);
    check::check_consistency().expect("consistent");
}

/// Step 2: the write error, on slot 20: the page stays mapped and intact, the slot is
/// retired (never handed out again), and the next attempt uses another slot.
fn a_failed_swap_out_keeps_the_page_and_retires_the_slot() {
    let mut held = vec![];
    while let Some(entry) = swap::alloc_slot() {
        let slot = entry.slot();
        held.push(entry);
        if slot == 19 {
            break;
        }
        assert!(slot < 19, "the slot cursor went past 19");
    }
    for entry in held {
        swap::put(entry).expect("put");
    }
    let space = AddressSpace::new().expect("space");
    let addr = space.lock().mmap(0, PAGE_SIZE, VmProt::READ_WRITE, MapRequest::default()).expect("mmap");
    fault::handle_page_fault(&mut space.lock(), addr, 0b110).expect("fault");
    let page = space.lock().pte(addr).expect("table").frame();
    let pattern: alloc::vec::Vec<u8> = (0..PAGE_SIZE).map(|i| (i * 13) as u8).collect();
    // SAFETY: the test owns this page (mapped by a space it holds, not loaded).
    unsafe { frame::write_bytes(page, 0, &pattern) };
    let errors = vmstat::nr_events(SwapEvent::WriteError);
    assert_eq!(swap::evict(page), Err(EvictError::WriteFailed(BlockError::Io)));
    assert_eq!(vmstat::nr_events(SwapEvent::WriteError), errors + 1);
    let pte = space.lock().pte(addr).expect("table");
    assert!(pte.is_present() && pte.frame() == page, "the page stays resident, mapped as before");
    let mut back = vec![0u8; PAGE_SIZE as usize];
    // SAFETY: the test owns this page (mapped by a space it holds, not loaded).
    unsafe { frame::read_bytes(page, 0, &mut back) };
    assert_eq!(back, pattern);
    assert_eq!(swap::nr_retired_slots(), 1);
    check::check_consistency().expect("consistent");
    assert_eq!(swap::evict(page), Ok(Evicted::Written), "the next attempt takes another slot");
    let entry = space.lock().pte(addr).expect("table").as_swap().expect("in swap now");
    assert_ne!(entry.slot(), 20, "a retired slot is never handed out again");
}

/// Step 3: the kernel and other processes go on, swapping normally.
fn others_swap_normally() {
    for name in ["pageout", "swapfork"] {
        let pid = proc::spawn(name).expect("spawn");
        assert_eq!(wait_for(pid), WaitStatus::Exited(0), "{name} failed");
    }
    check::check_consistency().expect("consistent");
}

#[test_case]
fn swap_io_errors_hurt_only_who_needs_the_page() {
    let (free_slots, _) = swap::slot_counts();
    a_failed_swap_in_kills_only_the_process_that_needed_the_page();
    a_failed_swap_out_keeps_the_page_and_retires_the_slot();
    others_swap_normally();
    assert_eq!(swap::slot_counts().0, free_slots - 1, "every slot back but the retired one");
    // Once the kernel's tables have grown, another round gives back every frame.
    heap::shrink();
    let free = frame::nr_free_frames();
    others_swap_normally();
    heap::shrink();
    assert_eq!(frame::nr_free_frames(), free, "frames leaked");
    assert_eq!(swap::slot_counts().0, free_slots - 1);
}
