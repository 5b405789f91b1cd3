//! `readkernel`: reading kernel memory from ring 3 gets the process killed.
//!
//! Expected outcome: killed (status SIGKILL). Reaching `exit` is a failure.
#![no_std]
#![no_main]

use ulib::println;

ulib::entry!(main);

/// The first byte of the kernel image: mapped, but for the kernel only.
const KERNEL_TEXT: u64 = 0xffff_ffff_8000_0000;

fn main() -> i32 {
    println!("readkernel: reading {:#x}; the kernel must kill me", KERNEL_TEXT);
    // SAFETY: none: this read is meant to fault. The page is supervisor-only, so
    // the CPU raises a page fault and the kernel kills us before a value arrives.
    let value = unsafe { (KERNEL_TEXT as *const u64).read_volatile() };
    println!("FAIL: read {:#x} from kernel memory", value);
    1
}
