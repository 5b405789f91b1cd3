//! `mprotect`: a page made read-only can be read but not written.
//!
//! Maps a read-write page, writes it, makes it read-only, reads it back (exit 2
//! if the value is wrong), then writes. Expected outcome: killed (status SIGKILL)
//! at that write. Reaching `exit` is a failure.
#![no_std]
#![no_main]

use ulib::{PAGE_SIZE, map, println, prot};

ulib::entry!(main);

fn main() -> i32 {
    let page = ulib::mmap(PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap");
    // SAFETY: a fresh read-write page that nothing else uses.
    unsafe { page.write_volatile(42) };
    // SAFETY: no reference points into the page, only this raw pointer.
    unsafe { ulib::mprotect(page, PAGE_SIZE, prot::READ) }.expect("mprotect");
    // SAFETY: the page is still mapped and readable.
    let value = unsafe { page.read_volatile() };
    if value != 42 {
        println!("FAIL: the read-only page holds {}, not 42", value);
        return 2;
    }
    println!("mprotect: read {} from the read-only page; now writing, the kernel must kill me", value);
    // SAFETY: none: this write is meant to fault on the read-only page.
    unsafe { page.write_volatile(43) };
    println!("FAIL: wrote to a read-only page");
    1
}
