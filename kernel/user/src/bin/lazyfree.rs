//! `lazyfree`: `MADV_FREE` frees lazily, as Linux: pages keep their contents until
//! reclaim takes them, reclaim drops the ones not written since the advice without
//! any swap I/O, and a page written again is kept (swapped like any other).
//!
//! Maps 16 pages and writes a value into each; advises MADV_FREE; checks every page
//! still reads its value (no memory pressure: nothing was freed yet); rewrites the
//! first 8 pages; forces reclaim of the range with MADV_PAGEOUT. Then: RSS fell by
//! 16 pages, exactly 8 pages were written to swap (the rewritten ones), the first 8
//! read back their new values and the last 8 read zeros. Last, the documented
//! difference: a page in the swap cache is not freed by MADV_FREE. Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{PAGE_SIZE, check, madv, map, println, prot};

ulib::entry!(main);

const NR_PAGES: usize = 16;
const NR_REWRITTEN: usize = 8;

fn word(base: *mut u64, page: usize) -> *mut u64 {
    base.wrapping_add(page * PAGE_SIZE / 8 + page)
}

fn main() -> i32 {
    let base = ulib::mmap(NR_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    for i in 0..NR_PAGES {
        // SAFETY: inside the fresh mapping, used only through raw pointers.
        unsafe { word(base, i).write_volatile(0x1000 + i as u64) };
    }
    // SAFETY: no reference points into the mapping.
    unsafe { ulib::madvise(base as *mut u8, NR_PAGES * PAGE_SIZE, madv::FREE) }.expect("MADV_FREE");
    for i in 0..NR_PAGES {
        // SAFETY: as above.
        let value = unsafe { word(base, i).read_volatile() };
        check!(value == 0x1000 + i as u64, "page {} reads {:#x} right after MADV_FREE: freed too early", i, value);
    }
    for i in 0..NR_REWRITTEN {
        // SAFETY: as above.
        unsafe { word(base, i).write_volatile(0x2000 + i as u64) };
    }
    let before = ulib::memstat().expect("memstat");
    // SAFETY: as above; PAGEOUT does not change contents.
    unsafe { ulib::madvise(base as *mut u8, NR_PAGES * PAGE_SIZE, madv::PAGEOUT) }.expect("MADV_PAGEOUT");
    let after = ulib::memstat().expect("memstat");
    let (nr_dropped, nr_written) = (before.rss_pages - after.rss_pages, after.swap_writes - before.swap_writes);
    println!("lazyfree: reclaim took {} pages, wrote {} to swap", nr_dropped, nr_written);
    check!(nr_dropped == NR_PAGES as u64, "reclaim took {} pages, want {}", nr_dropped, NR_PAGES);
    check!(nr_written == NR_REWRITTEN as u64, "{} pages written to swap, want {} (the rewritten ones)", nr_written, NR_REWRITTEN);
    for i in 0..NR_PAGES {
        // SAFETY: as above.
        let value = unsafe { word(base, i).read_volatile() };
        let want = if i < NR_REWRITTEN { 0x2000 + i as u64 } else { 0 };
        check!(value == want, "page {} reads {:#x} after reclaim, want {:#x}", i, value, want);
    }
    swap_cache_page_is_not_freed(base);
    0
}

/// Ours (docs/linux-differences.md): a page in the swap cache when MADV_FREE comes
/// is left as it is. Page 0 was just read back from swap, so its frame is in the
/// swap cache; after MADV_FREE and reclaim it still reads its value (Linux would
/// have freed it: zeros).
fn swap_cache_page_is_not_freed(base: *mut u64) {
    // SAFETY: as in main: inside the mapping, no reference into it.
    unsafe { ulib::madvise(base as *mut u8, PAGE_SIZE, madv::FREE) }.expect("MADV_FREE");
    // SAFETY: as above.
    unsafe { ulib::madvise(base as *mut u8, PAGE_SIZE, madv::PAGEOUT) }.expect("MADV_PAGEOUT");
    // SAFETY: as above.
    let value = unsafe { word(base, 0).read_volatile() };
    check!(value == 0x2000, "ours: a swap-cache page after MADV_FREE and reclaim reads {:#x}, want 0x2000", value);
}
