//! `usefree`: touching memory after `munmap` gets the process killed.
//!
//! Expected outcome: killed (status SIGKILL). Reaching `exit` is a failure.
#![no_std]
#![no_main]

use ulib::{PAGE_SIZE, map, println, prot};

ulib::entry!(main);

fn main() -> i32 {
    let page = ulib::mmap(PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap");
    // SAFETY: a fresh read-write page that nothing else uses.
    unsafe { page.write_volatile(42) };
    // SAFETY: no reference points into the page, only the raw pointer misused below.
    unsafe { ulib::munmap(page, PAGE_SIZE) }.expect("munmap");
    println!("usefree: reading {:p} after munmap; the kernel must kill me", page);
    // SAFETY: none: this read is meant to fault on the unmapped page.
    let value = unsafe { page.read_volatile() };
    println!("FAIL: read {} from an unmapped page", value);
    1
}
