//! `swapfork`: fork and swap together. Children inherit pages that are in swap, and
//! pages shared copy-on-write go to swap; everyone sees the right data.
//!
//! 1. Fills 32 pages with the parent's pattern and pages them out; forks 3 children.
//!    Each child checks it reads the parent's pattern (the first reads the disk, the
//!    others find the pages in the swap cache), writes its own pattern over the
//!    pages (copy-on-write faults) and checks it.
//! 2. Forks a child that pages out the range *while it is shared* with the parent
//!    (both lose the frames), checks the parent's pattern, writes its own, pages it
//!    out and reads it back.
//!
//! The parent checks its pattern after each step. Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, WaitStatus, check, madv, map, pattern, println, prot};

ulib::entry!(main);

const NR_PAGES: usize = 32;
const NR_CHILDREN: usize = 3;

fn page_out(base: *mut u64) {
    // SAFETY: PAGEOUT keeps the contents; no reference points into the mapping.
    unsafe { ulib::madvise(base as *mut u8, NR_PAGES * PAGE_SIZE, madv::PAGEOUT) }.expect("madvise(PAGEOUT)");
}

fn verify(base: *mut u64, seed: u64, what: &str) {
    // SAFETY: the mapping is intact (maybe in swap).
    let bad = unsafe { pattern::first_mismatch(base, NR_PAGES, seed) };
    check!(bad.is_none(), "{}: {:x?} (address, found, expected)", what, bad);
}

/// A child of step 1: reads the parent's pattern, then writes and checks its own.
fn inheritor(base: *mut u64, parent_seed: u64) -> i32 {
    let seed = ulib::getpid() as u64;
    let before = ulib::memstat().expect("memstat");
    check!(before.swap_pages == NR_PAGES as u64, "child sees {} pages in swap", before.swap_pages);
    verify(base, parent_seed, "child reading the parent's swapped pages");
    let read = ulib::memstat().expect("memstat");
    // SAFETY: the whole private mapping, only used through `base`.
    unsafe { pattern::fill(base, NR_PAGES, seed) };
    let written = ulib::memstat().expect("memstat");
    verify(base, seed, "child's own pattern");
    println!(
        "swapfork: child {} read {} pages ({} major faults), rewrote them ({} COW faults)",
        seed,
        NR_PAGES,
        read.major_faults - before.major_faults,
        written.cow_faults - read.cow_faults
    );
    check!(read.swap_in_pages - before.swap_in_pages == NR_PAGES as u64, "swap-ins");
    check!(written.cow_faults - read.cow_faults == NR_PAGES as u64, "the pages were shared: COW faults");
    0
}

/// The child of step 2: evicts the pages it shares with the parent, then diverges.
fn evictor(base: *mut u64, parent_seed: u64) -> i32 {
    let seed = ulib::getpid() as u64;
    page_out(base);
    let out = ulib::memstat().expect("memstat");
    check!(out.swap_pages == NR_PAGES as u64, "{} shared pages in swap", out.swap_pages);
    verify(base, parent_seed, "shared pages after pageout");
    // SAFETY: the whole private mapping, only used through `base`.
    unsafe { pattern::fill(base, NR_PAGES, seed) };
    page_out(base);
    verify(base, seed, "child's pattern after its own pageout");
    0
}

fn wait_all(n: usize) {
    for _ in 0..n {
        let (pid, status) = ulib::wait().expect("wait");
        check!(status == WaitStatus::Exited(0), "child {} {}", pid, status);
    }
}

fn main() -> i32 {
    let seed = ulib::getpid() as u64;
    let base = ulib::mmap(NR_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    // SAFETY: a fresh private mapping of NR_PAGES pages, only used through `base`.
    unsafe { pattern::fill(base, NR_PAGES, seed) };
    page_out(base);
    for _ in 0..NR_CHILDREN {
        match ulib::fork().expect("fork") {
            Fork::Child => ulib::exit(inheritor(base, seed)),
            Fork::Parent(_) => {}
        }
    }
    wait_all(NR_CHILDREN);
    verify(base, seed, "parent after its children rewrote the pages");
    println!("swapfork: {} children inherited {} swapped pages; parent's pages intact", NR_CHILDREN, NR_PAGES);

    match ulib::fork().expect("fork") {
        Fork::Child => ulib::exit(evictor(base, seed)),
        Fork::Parent(_) => wait_all(1),
    }
    let stat = ulib::memstat().expect("memstat");
    check!(stat.swap_pages == NR_PAGES as u64, "the child's pageout took the parent's shared pages too");
    verify(base, seed, "parent after the child paged out their shared pages");
    println!("swapfork: shared COW pages paged out by the child; parent's pages intact");
    0
}
