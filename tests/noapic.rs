//! The 8259 path kept alive (issue #13): with the command-line word `noapic` the
//! kernel leaves device interrupts and the tick on the 8259 PIC, as before the
//! I/O APIC, and swap I/O still completes by the disk's interrupt.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

use kernel::arch::{ioapic, irq, timer};
use kernel::drivers::virtio_blk;
use kernel::proc::{self, task::WaitStatus};

kernel::runner_args!(b"--memory 48M --cmdline noapic --timeout 120");

kernel::test_kernel!();

#[test_case]
fn with_noapic_the_tick_and_the_disk_stay_on_the_8259() {
    assert!(!ioapic::is_active(), "noapic keeps the PIC");
    let line = virtio_blk::swap_disk().expect("no swap disk").lock().irq_line().expect("a line");
    let (master, slave) = irq::pic_masks();
    assert_eq!(master & 1, 0, "the PIT's line 0 is unmasked");
    let (mask, bit) = if line < 8 { (master, line) } else { (slave, line - 8) };
    assert_eq!(mask & (1 << bit), 0, "the swap disk's line {line} is unmasked");
    let (ticks, interrupts) = (timer::ticks(), irq::nr_interrupts(line));
    // pageout sends 64 pages to swap and reads them back: disk requests that sleep.
    let pid = proc::spawn("pageout").expect("spawn pageout");
    assert_eq!(proc::wait(Some(pid)).expect("wait").1, WaitStatus::Exited(0));
    assert!(timer::ticks() > ticks, "the PIT ticks through the 8259");
    assert!(irq::nr_interrupts(line) > interrupts, "the disk's interrupt arrives through the 8259");
}
