//! `writecode`: code pages are read-only: writing to its own code kills the process.
//!
//! Expected outcome: killed (status SIGKILL). Reaching `exit` is a failure.
#![no_std]
#![no_main]

use ulib::println;

ulib::entry!(main);

fn main() -> i32 {
    let code = main as fn() -> i32 as *mut u8;
    println!("writecode: writing to my own code at {:p}; the kernel must kill me", code);
    // SAFETY: none: this write is meant to fault. The page is in the read-execute
    // segment, so the CPU raises a page fault and the kernel kills us.
    unsafe { code.write_volatile(0xc3) };
    println!("FAIL: wrote to my own code");
    1
}
