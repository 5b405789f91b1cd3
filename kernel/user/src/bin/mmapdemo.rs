//! `mmapdemo`: a file mapped, written through the mapping, written back and read
//! again, each step printed (the non-interactive demo of `cargo run` runs it, and
//! so can the shell: `mmapdemo`).
//!
//! ```text
//!  write(2) a line to /mmapdemo.txt         the page cache holds it, dirty
//!  mmap(MAP_SHARED) the file                 nothing read or mapped yet (lazy)
//!  read a byte through the mapping           a read fault maps the cache page read-only
//!  store bytes through the mapping           a write fault: PTE writable, page dirty
//!  msync(MS_SYNC)                            the dirty page is written to the disk
//!  munmap, then read(2) the file             the same bytes, from the same page cache
//! ```
//! After the write, the stores and the msync it prints the page cache's counters
//! (`/proc/meminfo`'s Cached, Dirty and Writeback).
#![no_std]
#![no_main]

use ulib::fs::{self, o};
use ulib::syscall::{syscall2, syscall3, syscall6};
use ulib::{Errno, check, map, nr, println, prot};
use ulib::expect_ok as ok;

ulib::entry!(main);

const LINE: &[u8] = b"written by write(2): hello, page cache\n";
const STORED: &[u8] = b"STORED THROUGH MMAP";

/// Prints the page cache's counters (`/proc/meminfo`: Cached, Dirty, Writeback, in kB).
fn print_counters(when: &str) {
    let mut text = [0u8; 2048];
    let Ok(len) = ulib::linux::read_file(c"/proc/meminfo", &mut text) else { return };
    let field = |name| ulib::linux::field(&text[..len], name).unwrap_or(0);
    println!(
        "mmapdemo:   page cache {when}: Cached {} kB, Dirty {} kB, Writeback {} kB",
        field("Cached"),
        field("Dirty"),
        field("Writeback")
    );
}

fn main() -> i32 {
    let path = c"/mmapdemo.txt";
    let fd = ok("create", fs::open(path, o::CREAT | o::TRUNC | o::RDWR, 0o644));
    ok("write", fs::write_all(fd, LINE));
    println!("mmapdemo: wrote {} bytes to /mmapdemo.txt with write(2)", LINE.len());
    print_counters("after write(2)");
    // SAFETY: no MAP_FIXED: mmap only adds a new mapping.
    let ret = unsafe { syscall6(nr::MMAP, 0, LINE.len() as u64, prot::READ | prot::WRITE, map::SHARED, fd as u64, 0) };
    let base = ok("mmap", Errno::from_ret(ret)) as *mut u8;
    println!("mmapdemo: mapped it MAP_SHARED at {base:p} (nothing mapped until touched)");
    // SAFETY: inside the one-page mapping.
    let first = unsafe { base.read_volatile() };
    println!("mmapdemo: first byte through the mapping: {:?} (a read fault mapped the page-cache page read-only)", first as char);
    for (i, &b) in STORED.iter().enumerate() {
        // SAFETY: inside the mapping, which is writable.
        unsafe { base.add(i).write_volatile(b) };
    }
    println!("mmapdemo: stored {:?} through the mapping (a write fault made the PTE writable and the page dirty)", core::str::from_utf8(STORED).unwrap());
    print_counters("after the stores");
    // SAFETY: msync changes no memory.
    let ret = unsafe { syscall3(nr::MSYNC, base as u64, LINE.len() as u64, abi::ms::SYNC) };
    ok("msync", Errno::from_ret(ret));
    println!("mmapdemo: msync(MS_SYNC): the dirty page is on the disk");
    print_counters("after msync");
    // SAFETY: nothing uses the mapping any more.
    ok("munmap", Errno::from_ret(unsafe { syscall2(nr::MUNMAP, base as u64, LINE.len() as u64) }));
    let mut back = [0u8; LINE.len()];
    ok("lseek", fs::lseek(fd, 0, fs::SEEK_SET));
    ok("read", fs::read_full(fd, &mut back));
    ok("close", fs::close(fd));
    let text = core::str::from_utf8(&back).unwrap_or("?").trim_end();
    println!("mmapdemo: read(2) after munmap: {text:?}");
    check!(back.starts_with(STORED) && back[STORED.len()..] == LINE[STORED.len()..], "the file holds the stores");
    ok("unlink", fs::unlink(path));
    0
}
