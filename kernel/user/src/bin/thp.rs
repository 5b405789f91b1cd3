//! `thp`: transparent huge pages from ring 3, on the real MMU.
//!
//! Maps 6 MiB, advises MADV_HUGEPAGE on the 4 MiB aligned inside it, and fills it
//! with a pattern: two write faults map two 2 MiB pages (memstat: 2 huge pages,
//! 2 faults). Then each split in turn, the pattern checked after each: munmap of
//! one page in the middle of the first (1 huge page left), fork (shares the second
//! whole: the child checks it, writes one page of it, exits; the parent's bytes are unchanged),
//! and MADV_PAGEOUT of the second (out to swap and back). Then measures the write
//! fault per 4 KiB with huge pages and with 4 KiB pages. Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, WaitStatus, check, madv, map, pattern, println, prot};

ulib::entry!(main);

const HUGE: usize = 2 << 20;
const PAGES_PER_HUGE: usize = HUGE / PAGE_SIZE;

fn main() -> i32 {
    let seed = 0x7e57_0000 + ulib::getpid() as u64;
    let raw = ulib::mmap(3 * HUGE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as usize;
    let base = raw.next_multiple_of(HUGE) as *mut u64;
    // SAFETY: the advice changes no contents; the range is inside the mapping.
    unsafe { ulib::madvise(base as *mut u8, 2 * HUGE, madv::HUGEPAGE) }.expect("madvise(HUGEPAGE)");
    let before = ulib::memstat().expect("memstat");
    let t0 = ulib::now_ns();
    // SAFETY: 2 MiB-aligned, 4 MiB inside the fresh private mapping, used only through `base`.
    unsafe { pattern::fill(base, 2 * PAGES_PER_HUGE, seed) };
    let ns = ulib::now_ns() - t0;
    let filled = ulib::memstat().expect("memstat");
    let faults = filled.minor_faults - before.minor_faults;
    println!(
        "thp: 4 MiB written with {} faults, {} huge pages mapped, {} ns per 4 KiB (fault + fill)",
        faults,
        filled.anon_huge_pages,
        ns / (2 * PAGES_PER_HUGE) as u64
    );
    check!(filled.anon_huge_pages == 2, "{} huge pages", filled.anon_huge_pages);
    check!(faults == 2, "{} faults for two huge pages", faults);
    check!(filled.rss_pages - before.rss_pages == 1024, "rss grew by {}", filled.rss_pages - before.rss_pages);

    // Split by a partial munmap: the other 511 pages keep their bytes.
    // SAFETY: page 100 of the first huge page; nothing refers to it.
    unsafe { ulib::munmap(base.add(100 * 512) as *mut u8, PAGE_SIZE) }.expect("munmap");
    let cut = ulib::memstat().expect("memstat");
    check!(cut.anon_huge_pages == 1, "after a partial munmap: {} huge pages", cut.anon_huge_pages);
    // SAFETY: the pages before and after the hole are still mapped.
    let bad = unsafe { pattern::nr_bad_pages(base, 100, seed) + pattern::nr_bad_pages(base.add(101 * 512), 2 * PAGES_PER_HUGE - 101, seed) };
    check!(bad == 0, "{} pages lost their bytes in the split", bad);

    // Fork: the child sees the same bytes and its write stays its own.
    // SAFETY: the second huge page.
    let second = unsafe { base.add(PAGES_PER_HUGE * 512) };
    match ulib::fork().expect("fork") {
        Fork::Child => {
            // Fork shared the huge page whole: still one huge page here.
            let shared = ulib::memstat().expect("memstat").anon_huge_pages;
            // SAFETY: the child's view of the second huge page (shared copy-on-write).
            let bad = unsafe { pattern::nr_bad_pages(second, PAGES_PER_HUGE, seed) };
            if shared != 1 {
                println!("thp child: {} huge pages after fork, 1 expected", shared);
                ulib::exit(2);
            }
            // SAFETY: as above; one page rewritten (a copy-on-write copy).
            unsafe { pattern::fill(second.add(7 * 512), 1, seed + 1) };
            ulib::exit(if bad == 0 { 0 } else { 1 });
        }
        Fork::Parent(pid) => {
            let (_, status) = ulib::waitpid(pid).expect("waitpid");
            check!(status == WaitStatus::Exited(0), "child: {:?}", status);
        }
    }
    // SAFETY: the parent's second huge page, shared with nobody now the child exited.
    let bad = unsafe { pattern::nr_bad_pages(second, PAGES_PER_HUGE, seed) };
    check!(bad == 0, "after fork: {} pages changed under the parent", bad);

    // Swap-out and back of the (now small) pages, every byte checked.
    if ulib::memstat().expect("memstat").total_swap_slots > 0 {
        // SAFETY: PAGEOUT keeps the contents.
        unsafe { ulib::madvise(second as *mut u8, HUGE, madv::PAGEOUT) }.expect("madvise(PAGEOUT)");
        let out = ulib::memstat().expect("memstat");
        check!(out.swap_pages >= PAGES_PER_HUGE as u64, "{} pages in swap", out.swap_pages);
        // SAFETY: as above.
        let bad = unsafe { pattern::nr_bad_pages(second, PAGES_PER_HUGE, seed) };
        check!(bad == 0, "after swap-in: {} bad pages", bad);
    }
    println!("thp: split by munmap, fork and pageout: every byte intact");
    fault_benchmark();
    0
}

/// The write-fault cost per 4 KiB of 8 MiB touched one word a page: with huge
/// pages (4 faults, each zeroing 2 MiB) and with 4 KiB pages (2048 faults), the
/// best of 3 rounds each (docs/benchmarks.md).
fn fault_benchmark() {
    const LEN: usize = 4 * HUGE;
    let mut best = [u64::MAX; 2];
    for _ in 0..3 {
        for (i, advice) in [madv::HUGEPAGE, madv::NOHUGEPAGE].into_iter().enumerate() {
            let raw = ulib::mmap(LEN + HUGE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as usize;
            let base = raw.next_multiple_of(HUGE) as *mut u64;
            // SAFETY: the advice changes no contents; the range is inside the mapping.
            unsafe { ulib::madvise(base as *mut u8, LEN, advice) }.expect("madvise");
            let t0 = ulib::now_ns();
            for page in 0..LEN / PAGE_SIZE {
                // SAFETY: inside the fresh private read-write mapping.
                unsafe { base.add(page * 512).write_volatile(page as u64) };
            }
            best[i] = best[i].min((ulib::now_ns() - t0) / (LEN / PAGE_SIZE) as u64);
            // SAFETY: nothing refers to the mapping any more.
            unsafe { ulib::munmap(raw as *mut u8, LEN + HUGE) }.expect("munmap");
        }
    }
    println!("thp bench: write fault per 4 KiB, one word a page over 8 MiB: huge pages {} ns, 4 KiB pages {} ns", best[0], best[1]);
}
