//! `pageout`: `madvise(MADV_PAGEOUT)` sends pages to swap; touching them reads them
//! back (major faults) with their contents intact.
//!
//! Fills 64 pages with a pattern of (pid, address), pages them out and checks the
//! counters (RSS down, pages in swap, swap-outs), reads everything back and checks
//! the data, the swap-ins and the major faults (at least one; readahead may bring
//! the following pages in with it). Pages them out again (now clean swap-cache pages:
//! the kernel drops them without writing), rewrites half with a new pattern, pages
//! out once more and checks both halves. Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{MemStat, PAGE_SIZE, check, madv, map, pattern, println, prot};

ulib::entry!(main);

const NR_PAGES: usize = 64;

/// Pages out the whole region; returns the counters after.
fn page_out(base: *mut u64) -> MemStat {
    // SAFETY: PAGEOUT keeps the contents; no reference points into the mapping.
    unsafe { ulib::madvise(base as *mut u8, NR_PAGES * PAGE_SIZE, madv::PAGEOUT) }.expect("madvise(PAGEOUT)");
    ulib::memstat().expect("memstat")
}

fn main() -> i32 {
    let seed = ulib::getpid() as u64;
    let base = ulib::mmap(NR_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    // SAFETY: a fresh private mapping of NR_PAGES pages, only used through `base`.
    unsafe { pattern::fill(base, NR_PAGES, seed) };
    let filled = ulib::memstat().expect("memstat");
    check!(filled.total_swap_slots > 0, "no swap");

    let out = page_out(base);
    println!(
        "pageout: rss {} -> {} pages, {} in swap, {} swap-outs",
        filled.rss_pages, out.rss_pages, out.swap_pages, out.swap_out_pages
    );
    check!(filled.rss_pages - out.rss_pages == NR_PAGES as u64, "rss fell by {}", filled.rss_pages - out.rss_pages);
    check!(out.swap_pages == NR_PAGES as u64, "{} pages in swap", out.swap_pages);
    check!(out.swap_out_pages - filled.swap_out_pages == NR_PAGES as u64, "swap-outs");
    check!(filled.free_swap_slots - out.free_swap_slots == NR_PAGES as u64, "slots used");

    // SAFETY: the mapping is intact; its pages are in swap.
    let bad = unsafe { pattern::first_mismatch(base, NR_PAGES, seed) };
    check!(bad.is_none(), "after swap-in: {:x?} (address, found, expected)", bad);
    let back = ulib::memstat().expect("memstat");
    let majors = back.major_faults - out.major_faults;
    println!("pageout: read back with {} major faults (readahead brought the rest)", majors);
    check!((1..=NR_PAGES as u64).contains(&majors), "{} major faults", majors);
    check!(back.swap_in_pages - out.swap_in_pages == NR_PAGES as u64, "swap-ins");
    check!(
        back.swap_pages == 0 && back.rss_pages >= filled.rss_pages,
        "all resident again: rss {}, {} in swap",
        back.rss_pages,
        back.swap_pages
    );

    // Clean pages: out and back again, still intact.
    let out2 = page_out(base);
    check!(out2.swap_pages == NR_PAGES as u64, "second pageout");
    // SAFETY: as above.
    let bad = unsafe { pattern::first_mismatch(base, NR_PAGES, seed) };
    check!(bad.is_none(), "after the second swap-in: {:x?}", bad);

    // Dirty half of them: the new contents must be written, the old half kept.
    let half = NR_PAGES / 2;
    // SAFETY: the first half of the mapping.
    unsafe { pattern::fill(base, half, seed + 1) };
    page_out(base);
    // SAFETY: both halves of the mapping.
    let (bad_new, bad_old) = unsafe {
        (pattern::nr_bad_pages(base, half, seed + 1), pattern::nr_bad_pages(base.add(half * 512), half, seed))
    };
    check!(bad_new == 0 && bad_old == 0, "{} rewritten and {} untouched pages came back wrong", bad_new, bad_old);
    println!("pageout: {} pages out and back 3 times, {} rewritten in between: all intact", NR_PAGES, half);
    0
}
