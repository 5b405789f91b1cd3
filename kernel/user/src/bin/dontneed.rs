//! `dontneed`: `madvise(MADV_DONTNEED)` drops anonymous pages; they come back as zeros.
//!
//! Writes a pattern over 4 pages, advises DONTNEED, checks RSS fell by 4 pages
//! and every word reads back as zero, then writes again. Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{PAGE_SIZE, check, madv, map, println, prot};

ulib::entry!(main);

const NR_PAGES: usize = 4;
const NR_WORDS: usize = NR_PAGES * PAGE_SIZE / 8;

fn main() -> i32 {
    let base = ulib::mmap(NR_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    for i in 0..NR_WORDS {
        // SAFETY: word `i` is inside the fresh read-write mapping, used only through `base`.
        unsafe { base.add(i).write_volatile(0x5a5a_0000_0000_0000 | i as u64) };
    }
    let before = ulib::memstat().expect("memstat");
    // SAFETY: no reference points into the mapping; the volatile accesses see the zeros.
    unsafe { ulib::madvise(base as *mut u8, NR_PAGES * PAGE_SIZE, madv::DONTNEED) }.expect("madvise");
    let after = ulib::memstat().expect("memstat");
    println!("dontneed: rss {} -> {} pages after MADV_DONTNEED", before.rss_pages, after.rss_pages);
    check!(before.rss_pages - after.rss_pages == NR_PAGES as u64, "expected rss -{}", NR_PAGES);
    for i in 0..NR_WORDS {
        // SAFETY: as above; the mapping is still there, only its pages were dropped.
        let word = unsafe { base.add(i).read_volatile() };
        check!(word == 0, "word {} reads {:#x} after DONTNEED", i, word);
        // SAFETY: as above.
        unsafe { base.add(i).write_volatile(!0) };
    }
    println!("dontneed: {} pages read back as zeros and are writable again", NR_PAGES);
    0
}
