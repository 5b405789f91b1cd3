//! `protnone`: the kernel's user copies honour PROT_NONE, and write-only and
//! execute-only pages are readable, as on x86 Linux (issue #10, items 6 and 7).
//!
//! 1. A page written, then made PROT_NONE: `write(1, page, n)` must fail with EFAULT
//!    (before the fix it printed the bytes: the PTE stays present without USER,
//!    and the kernel's copy could read it), and so must a syscall that writes into
//!    it (`memstat`). After `mprotect(PROT_READ)` the bytes are still there.
//! 2. A PROT_WRITE-only page can be read (zeros, then what was written) by the
//!    process and by `write()`; a PROT_EXEC-only page can be read.
//!
//! Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{Errno, PAGE_SIZE, check, map, println, prot};

ulib::entry!(main);

const SECRET: &[u8] = b"secret bytes\n";

fn main() -> i32 {
    let page = ulib::mmap(PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap");
    // SAFETY: a fresh read-write page; SECRET fits in it.
    unsafe { core::ptr::copy_nonoverlapping(SECRET.as_ptr(), page, SECRET.len()) };
    // SAFETY: only raw pointers point into the page, and it is not touched while PROT_NONE.
    unsafe { ulib::mprotect(page, PAGE_SIZE, prot::NONE) }.expect("mprotect NONE");
    // SAFETY: `page` is valid for SECRET.len() bytes of address space; the kernel
    // must refuse to read it.
    let written = ulib::write(1, unsafe { core::slice::from_raw_parts(page, SECRET.len()) });
    check!(written == Err(Errno::EFAULT), "write() of a PROT_NONE page returned {:?}, not EFAULT", written);
    // SAFETY: memstat writes size_of::<MemStat>() bytes at its argument: the kernel must refuse.
    let ret = unsafe { ulib::syscall::syscall1(ulib::nr::MEMSTAT, page as u64) };
    check!(Errno::from_ret(ret) == Err(Errno::EFAULT), "memstat into a PROT_NONE page: {:?}", Errno::from_ret(ret));
    // SAFETY: readable again; nothing references the page but raw pointers.
    unsafe { ulib::mprotect(page, PAGE_SIZE, prot::READ) }.expect("mprotect READ");
    // SAFETY: the page is readable now.
    let kept = unsafe { core::slice::from_raw_parts(page, SECRET.len()) } == SECRET;
    check!(kept, "the contents did not survive PROT_NONE");

    let write_only = ulib::mmap(PAGE_SIZE, prot::WRITE, map::PRIVATE).expect("mmap WRITE") as *mut u64;
    // SAFETY: x86 (and Linux on it) lets a PROT_WRITE page be read; the test checks it.
    check!(unsafe { write_only.read_volatile() } == 0, "untouched PROT_WRITE page is not zero");
    // SAFETY: the page is writable.
    unsafe { write_only.write_volatile(0x77) };
    // SAFETY: as the read above.
    check!(unsafe { write_only.read_volatile() } == 0x77, "PROT_WRITE page lost its value");
    // SAFETY: the page is mapped for 8 bytes; the kernel reads it.
    let echoed = ulib::write(1, unsafe { core::slice::from_raw_parts(write_only as *const u8, 1) });
    check!(echoed == Ok(1), "write() of a PROT_WRITE page: {:?}", echoed);
    let exec_only = ulib::mmap(PAGE_SIZE, prot::EXEC, map::PRIVATE).expect("mmap EXEC") as *const u64;
    // SAFETY: x86 (and Linux on it) lets a PROT_EXEC page be read.
    check!(unsafe { exec_only.read_volatile() } == 0, "untouched PROT_EXEC page is not zero");
    short_write_at_a_prot_none_page();
    println!("\nprotnone: PROT_NONE refused to the kernel's copies; write-only and exec-only pages readable");
    0
}

/// Ours (docs/linux-differences.md): a `write()` whose buffer runs into a PROT_NONE
/// page part-way through its first 256 bytes fails with EFAULT, where Linux writes
/// the readable part and returns its length (here 100).
fn short_write_at_a_prot_none_page() {
    let two = ulib::mmap(2 * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap");
    // SAFETY: the second page is not used while PROT_NONE; only raw pointers.
    unsafe { ulib::mprotect(two.wrapping_add(PAGE_SIZE), PAGE_SIZE, prot::NONE) }.expect("mprotect");
    // SAFETY: the first 100 bytes are in the readable page (zeros, printed as
    // nothing visible), the rest in the PROT_NONE page: the kernel must stop there.
    let buffer = unsafe { core::slice::from_raw_parts(two.wrapping_add(PAGE_SIZE - 100), 200) };
    let result = ulib::write(1, buffer);
    check!(result == Err(Errno::EFAULT), "ours: write() running into PROT_NONE returned {:?}, want EFAULT", result);
}
