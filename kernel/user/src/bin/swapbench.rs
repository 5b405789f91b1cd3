//! `swapbench`: swap throughput and major-fault latency, measured from user space
//! with `clock_gettime` (the kernel's bench mode runs it).
//!
//! On 2048 pages (8 MiB): write them all, page them out (swap-out of dirty pages),
//! read them back in address order (sequential swap-in: one major fault each), page
//! them out again (clean swap-cache pages: no I/O), rewrite them, page them out, and
//! read them back in a random order (random swap-in). Prints one line per step:
//! MiB/s and microseconds per page. Exit 0, or 1 if any word came back wrong.
#![no_std]
#![no_main]

use ulib::{MemStat, PAGE_SIZE, check, madv, map, pattern, println, prot};

ulib::entry!(main);

const NR_PAGES: usize = 2048;

fn page_out(base: *mut u64) {
    // SAFETY: PAGEOUT keeps the contents; no reference points into the mapping.
    unsafe { ulib::madvise(base as *mut u8, NR_PAGES * PAGE_SIZE, madv::PAGEOUT) }.expect("madvise(PAGEOUT)");
}

/// Prints a result line for `nr_pages` pages moved in `ns` nanoseconds.
fn report(what: &str, ns: u64, before: &MemStat, after: &MemStat) {
    let ns = ns.max(1);
    let mib_per_s = (NR_PAGES * PAGE_SIZE) as u64 * 1_000_000_000 / ns / (1 << 20);
    println!(
        "swapbench: {:<36} {:>6} MiB/s {:>8} ns/page  ({} major faults, {} swap-outs)",
        what,
        mib_per_s,
        ns / NR_PAGES as u64,
        after.major_faults - before.major_faults,
        after.swap_out_pages - before.swap_out_pages
    );
}

/// Times `f` and reports it.
fn timed(what: &str, f: impl FnOnce()) {
    let before = ulib::memstat().expect("memstat");
    let start = ulib::now_ns();
    f();
    let ns = ulib::now_ns() - start;
    report(what, ns, &before, &ulib::memstat().expect("memstat"));
}

/// Reads one word of every page, in the order of a fixed random permutation.
fn touch_randomly(base: *mut u64, seed: u64) -> usize {
    let mut order = [0u16; NR_PAGES];
    for (i, slot) in order.iter_mut().enumerate() {
        *slot = i as u16;
    }
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..NR_PAGES).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let mut nr_bad = 0;
    for &page in &order {
        // SAFETY: page < NR_PAGES, inside the mapping.
        let word = unsafe { base.add(page as usize * 512) };
        // SAFETY: as above.
        nr_bad += usize::from(unsafe { word.read_volatile() } != pattern::word(seed, word as u64));
    }
    nr_bad
}

fn main() -> i32 {
    let base = ulib::mmap(NR_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    // SAFETY: a fresh private mapping, only used through `base`.
    unsafe { pattern::fill(base, NR_PAGES, 1) };
    timed("swap-out, dirty pages (PAGEOUT)", || page_out(base));
    let mut bad = 0;
    // SAFETY: the mapping is intact.
    timed("swap-in, sequential touch", || bad += unsafe { pattern::nr_bad_pages(base, NR_PAGES, 1) });
    timed("evict clean swap-cache pages (no I/O)", || page_out(base));
    // SAFETY: as above.
    timed("swap-in again, sequential touch", || bad += unsafe { pattern::nr_bad_pages(base, NR_PAGES, 1) });
    // SAFETY: as above.
    unsafe { pattern::fill(base, NR_PAGES, 2) };
    timed("swap-out, rewritten pages", || page_out(base));
    timed("swap-in, random touch", || bad += touch_randomly(base, 2));
    check!(bad == 0, "{} pages came back wrong", bad);
    0
}
