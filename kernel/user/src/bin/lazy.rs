//! `lazy`: mapping memory costs nothing until it is touched (demand paging).
//!
//! Maps 1 GiB of anonymous memory and checks that RSS did not move; writes one
//! byte in each of 16 pages spread over the gigabyte and checks that RSS grew by
//! exactly 16 pages; unmaps it and checks they are gone. Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{MemStat, check, map, println, prot};

ulib::entry!(main);

const LEN: usize = 1 << 30;
const NR_TOUCHES: usize = 16;

fn memstat() -> MemStat {
    ulib::memstat().expect("memstat")
}

fn main() -> i32 {
    let before = memstat();
    let base = ulib::mmap(LEN, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap of 1 GiB");
    let mapped = memstat();
    // Nothing else happens between the two measurements: printing first would fault
    // in the formatting code's pages, which count in RSS too.
    for i in 0..NR_TOUCHES {
        // SAFETY: the offset is inside the fresh read-write mapping, which nothing else uses.
        unsafe { base.add(i * (LEN / NR_TOUCHES)).write_volatile(i as u8 + 1) };
    }
    let touched = memstat();
    println!("lazy: mapped 1 GiB at {:p}; rss {} -> {} pages", base, before.rss_pages, mapped.rss_pages);
    check!(mapped.rss_pages == before.rss_pages, "mmap alone changed rss");
    let nr_new = touched.rss_pages - mapped.rss_pages;
    let nr_faults = touched.minor_faults - mapped.minor_faults;
    println!("lazy: touched {} pages: rss +{}, minor faults +{}", NR_TOUCHES, nr_new, nr_faults);
    check!(nr_new == NR_TOUCHES as u64, "expected rss +{}", NR_TOUCHES);
    check!(nr_faults >= NR_TOUCHES as u64, "expected at least {} minor faults", NR_TOUCHES);
    for i in 0..NR_TOUCHES {
        // SAFETY: as above; the page was written in the loop before.
        let value = unsafe { base.add(i * (LEN / NR_TOUCHES)).read_volatile() };
        check!(value == i as u8 + 1, "page {} holds {}", i, value);
    }

    // Printing above may have faulted in code pages: measure again right before.
    let before_unmap = memstat();
    // SAFETY: only the raw pointer `base` points into the mapping, and it is not used again.
    unsafe { ulib::munmap(base, LEN) }.expect("munmap");
    let unmapped = memstat();
    println!("lazy: unmapped: rss {} -> {} pages", before_unmap.rss_pages, unmapped.rss_pages);
    check!(
        unmapped.rss_pages == before_unmap.rss_pages - NR_TOUCHES as u64,
        "munmap left rss at {}",
        unmapped.rss_pages
    );
    0
}
