//! `swapioerr`: a page whose slot cannot be read back. Run on a fresh boot with the
//! swap disk's rules from `tests/swap_ioerr.blkdebug`, the page this program swaps
//! out first lands in slot 1, whose first read fails: touching the page again must
//! get this process, and only it, killed (status SIGKILL).
//!
//! Fills one page, pages it out, checks it went to swap, then reads it. Exit 1 if
//! the read succeeds (the error was not injected), 2 if the page did not go out.
#![no_std]
#![no_main]

use ulib::{PAGE_SIZE, madv, map, pattern, println, prot};

ulib::entry!(main);

fn main() -> i32 {
    let base = ulib::mmap(PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    // SAFETY: a fresh private one-page mapping, only used through `base`.
    unsafe { pattern::fill(base, 1, 42) };
    // SAFETY: PAGEOUT keeps the contents; no reference points into the mapping.
    unsafe { ulib::madvise(base as *mut u8, PAGE_SIZE, madv::PAGEOUT) }.expect("madvise(PAGEOUT)");
    if ulib::memstat().expect("memstat").swap_pages != 1 {
        println!("swapioerr: the page did not go to swap");
        return 2;
    }
    println!("swapioerr: page in swap; reading it back (the disk will fail the read)");
    // SAFETY: the mapping is intact; its page is in swap.
    let bad = unsafe { pattern::first_mismatch(base, 1, 42) };
    println!("swapioerr: the read succeeded ({:x?}): no error was injected", bad);
    1
}
