//! The 8259 path kept alive (issue #13): with the command-line word `noapic` the
//! kernel leaves device interrupts and the tick on the 8259 PIC, as before the
//! I/O APIC, and a disk request still completes by the disk's interrupt.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use kernel::arch::{ioapic, irq, timer};
use kernel::drivers::virtio_blk::{self, VirtioBlk};
use kernel::drivers::{pci, virtio_pci};

// A disk whose every request takes 20 ms (as in tests/interrupts.rs): its requests
// sleep until its interrupt, where the swap disk's are often done by polling.
kernel::runner_args!(
    b"--memory 48M --cmdline noapic --timeout 120 --qemu-arg -drive \
      --qemu-arg driver=null-aio,size=64M,latency-ns=20000000,read-zeroes=on,if=none,id=slow \
      --qemu-arg -device --qemu-arg virtio-blk-pci,drive=slow,serial=slow"
);

kernel::test_kernel!();

/// The 20 ms disk (serial "slow").
fn slow_disk() -> VirtioBlk {
    let swap_addr = virtio_blk::swap_disk().expect("no swap disk").lock().pci_address();
    let root_addr = virtio_blk::pci_address_of("root");
    let slow = pci::devices()
        .iter()
        .filter(|d| d.addr != swap_addr && Some(d.addr) != root_addr)
        .filter(|d| virtio_pci::device_type(d) == Some(virtio_pci::DEVICE_TYPE_BLOCK))
        .filter_map(|d| VirtioBlk::new(d).ok())
        .find(|blk| blk.serial() == "slow");
    slow.expect("no virtio-blk disk with serial \"slow\" (see runner_args)")
}

#[test_case]
fn with_noapic_the_tick_and_the_disk_stay_on_the_8259() {
    assert!(!ioapic::is_active(), "noapic keeps the PIC");
    let mut disk = slow_disk();
    let line = disk.irq_line().expect("a line");
    let (master, slave) = irq::pic_masks();
    assert_eq!(master & 1, 0, "the PIT's line 0 is unmasked");
    let (mask, bit) = if line < 8 { (master, line) } else { (slave, line - 8) };
    assert_eq!(mask & (1 << bit), 0, "the slow disk's line {line} is unmasked");
    let (ticks, interrupts) = (timer::ticks(), irq::nr_interrupts(line));
    let mut buf = alloc::vec![0u8; 4096];
    for i in 0..4 {
        disk.read(8 * i, &mut buf).expect("read"); // 20 ms, woken by the interrupt
    }
    assert!(timer::ticks() >= ticks + 4, "the PIT ticks through the 8259");
    assert!(irq::nr_interrupts(line) >= interrupts + 4, "the disk's interrupts arrive through the 8259");
}
