//! `bigfork`: forking a process that holds two thirds of RAM copies no data.
//!
//! Maps and fills about 2/3 of all frames (`total_frames * 2 / 3` pages, less a
//! margin for page tables), then forks three children. Each fork must succeed and
//! take only the child's page tables from the free frames (about 0.25% of the
//! region; the reverse map costs nothing per page: the child joins the parent's
//! fork family), under 1%; a copying fork would need the whole region again and
//! fail. The children wait for a "go" word in a `MAP_SHARED` page, so the parent
//! measures each fork before any child writes. Child `k` then rewrites its own 1/16 of the region (COW
//! copies: after one word it checks the rest of the copied page still holds the
//! parent's data, then fills and checks the page) and only reads the rest, which
//! must still show the parent's pattern. The parent reaps all three (exit 0) and
//! checks its whole region is unchanged. Exit 0 on success.
#![no_std]
#![no_main]

use core::ops::Range;

use ulib::{Errno, Fork, PAGE_SIZE, Pid, WaitStatus, check, map, println, prot};

ulib::entry!(main);

const NR_CHILDREN: usize = 3;
/// Each child rewrites 1/SLICES of the region, so the children copy at most 3/16 of it.
const SLICES: usize = 16;
/// Pages kept back from the 2/3 for page tables, kernel stacks and the kernel heap.
const MARGIN_PAGES: usize = 1024;
const WORDS_PER_PAGE: usize = PAGE_SIZE / 8;
/// The most the free-frame count may drop per fork: 1% of the region, in frames
/// (the child's page tables take about 0.25%; copying the data would cost 100%).
const MAX_FORK_COST_PERCENT: usize = 1;
/// How long a child waits for the parent's "go" before giving up (the parent failed).
const GO_TIMEOUT_NS: u64 = 30_000_000_000;

/// Returns word `word` of page `page` as process `who` (0 = parent) writes it.
fn pattern(who: usize, page: usize, word: usize) -> u64 {
    ((who as u64 + 1) << 56) ^ ((page as u64) << 12 | word as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Returns page `page` of `region` as words.
fn page_words(region: &mut [u64], page: usize) -> &mut [u64] {
    &mut region[page * WORDS_PER_PAGE..(page + 1) * WORDS_PER_PAGE]
}

/// Fills pages `pages` with `who`'s pattern.
fn fill(region: &mut [u64], pages: Range<usize>, who: usize) {
    for page in pages {
        for (i, w) in page_words(region, page).iter_mut().enumerate() {
            *w = pattern(who, page, i);
        }
    }
}

/// Returns the first (page, word) in `pages` that does not hold `who`'s pattern.
fn first_mismatch(region: &[u64], pages: Range<usize>, who: usize) -> Option<(usize, usize)> {
    pages.into_iter().find_map(|page| {
        let words = &region[page * WORDS_PER_PAGE..(page + 1) * WORDS_PER_PAGE];
        words.iter().enumerate().position(|(i, &w)| w != pattern(who, page, i)).map(|i| (page, i))
    })
}

fn main() -> i32 {
    let start = ulib::memstat().expect("memstat");
    let nr_pages = (start.total_frames as usize * 2 / 3).saturating_sub(MARGIN_PAGES);
    let slice_pages = nr_pages / SLICES;
    // The children's copies come on top of the region; both must fit with the margin.
    let needed = nr_pages + NR_CHILDREN * slice_pages + MARGIN_PAGES;
    println!(
        "bigfork: {} frames in all, {} free; mapping {} pages ({} MiB), children copy {} pages each",
        start.total_frames,
        start.free_frames,
        nr_pages,
        (nr_pages * PAGE_SIZE) >> 20,
        slice_pages
    );
    check!(needed as u64 <= start.free_frames, "{} pages needed, only {} frames free", needed, start.free_frames);

    // The "go" word: children do not write the region before the parent has measured.
    let go = ulib::mmap(PAGE_SIZE, prot::READ | prot::WRITE, map::SHARED).expect("mmap shared") as *mut u64;
    let base = ulib::mmap(nr_pages * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap region");
    // SAFETY: a fresh private read-write mapping of this many words, never unmapped,
    // used only through this slice.
    let region = unsafe { core::slice::from_raw_parts_mut(base as *mut u64, nr_pages * WORDS_PER_PAGE) };
    fill(region, 0..nr_pages, 0);
    let filled = ulib::memstat().expect("memstat");
    println!("bigfork: filled: rss {} pages, {} frames free", filled.rss_pages, filled.free_frames);
    check!(filled.rss_pages >= nr_pages as u64, "rss {} after touching {} pages", filled.rss_pages, nr_pages);

    let max_cost = (nr_pages * MAX_FORK_COST_PERCENT / 100) as u64;
    let mut children: [Pid; NR_CHILDREN] = [0; NR_CHILDREN];
    for (k, child_pid) in children.iter_mut().enumerate() {
        let before = ulib::memstat().expect("memstat").free_frames;
        let t0 = ulib::now_ns();
        match ulib::fork() {
            Ok(Fork::Child) => ulib::exit(child(region, go, k + 1)),
            Ok(Fork::Parent(pid)) => *child_pid = pid,
            Err(e) => {
                println!("FAIL: fork {} of a {}-page process failed: {:?}", k + 1, nr_pages, e);
                return 1;
            }
        }
        let elapsed_us = (ulib::now_ns() - t0) / 1000;
        let after = ulib::memstat().expect("memstat").free_frames;
        let cost = before.saturating_sub(after);
        println!(
            "bigfork: fork {} (pid {}) took {} us and {} frames ({}.{:02}% of the region; limit {})",
            k + 1,
            child_pid,
            elapsed_us,
            cost,
            cost * 100 / nr_pages as u64,
            cost * 10_000 / nr_pages as u64 % 100,
            max_cost
        );
        check!(cost < max_cost, "fork {} took {} frames: data was copied", k + 1, cost);
    }
    // SAFETY: `go` is the shared page mapped above; only volatile accesses touch it.
    unsafe { go.write_volatile(1) };

    for _ in 0..NR_CHILDREN {
        let (pid, status) = ulib::wait().expect("wait");
        println!("bigfork: child {} {}", pid, status);
        check!(children.contains(&pid), "reaped {}, not one of our children", pid);
        check!(status == WaitStatus::Exited(0), "child {} failed", pid);
    }
    check!(ulib::wait() == Err(Errno::ECHILD), "a fourth child to wait for");
    if let Some((page, word)) = first_mismatch(region, 0..nr_pages, 0) {
        println!("FAIL: the parent's page {} word {} changed under it", page, word);
        return 1;
    }
    let end = ulib::memstat().expect("memstat");
    println!("bigfork: parent's {} pages unchanged; {} frames free after the children", nr_pages, end.free_frames);
    0
}

/// Runs child number `who` (1..=3): rewrites its own slice, reads everything else.
fn child(region: &mut [u64], go: *mut u64, who: usize) -> i32 {
    let deadline = ulib::now_ns() + GO_TIMEOUT_NS;
    // SAFETY: `go` is the shared page the parent mapped before forking; volatile reads.
    while unsafe { go.read_volatile() } == 0 {
        check!(ulib::now_ns() < deadline, "child {}: the parent never said go", who);
        ulib::yield_now();
    }
    let nr_pages = region.len() / WORDS_PER_PAGE;
    let slice_pages = nr_pages / SLICES;
    let mine = (who - 1) * slice_pages..who * slice_pages;
    let before = ulib::memstat().expect("memstat");
    for page in mine.clone() {
        let words = page_words(region, page);
        words[0] = pattern(who, page, 0); // the COW fault: the page is copied here
        let torn = words[1..].iter().enumerate().position(|(i, &w)| w != pattern(0, page, i + 1));
        check!(torn.is_none(), "child {}: page {} word {:?} not copied from the parent", who, page, torn);
    }
    fill(region, mine.clone(), who);
    let after = ulib::memstat().expect("memstat");
    let nr_cow = after.cow_faults - before.cow_faults;
    check!(first_mismatch(region, mine.clone(), who).is_none(), "child {} lost its own pattern", who);
    check!(nr_cow >= slice_pages as u64, "child {}: {} COW faults for {} pages", who, nr_cow, slice_pages);
    let others = [0..mine.start, mine.end..nr_pages];
    for range in others {
        if let Some((page, word)) = first_mismatch(region, range, 0) {
            println!("FAIL: child {} sees page {} word {} changed", who, page, word);
            return 1;
        }
    }
    let done = ulib::memstat().expect("memstat");
    check!(done.cow_faults == after.cow_faults, "child {}: reading took COW faults", who);
    println!(
        "bigfork: child {} (pid {}) copied {} pages ({} COW faults), read {} more unchanged; rss {}",
        who,
        ulib::getpid(),
        slice_pages,
        nr_cow,
        nr_pages - slice_pages,
        done.rss_pages
    );
    0
}
