//! `remanence`: a freed frame never reaches another process with its old contents,
//! with or without swap in between.
//!
//! Twice: a child (A) fills most of free memory with a nonzero pattern (every 8th
//! word) and exits; then this process (B) maps as much, makes every page its own
//! (one write of 0 at the end of the page) and checks that every word A wrote, at
//! the same offsets of every page, reads 0. A and B together ask for more than the free memory, so B gets A's old
//! frames. In the second round (32 MiB) A pages its memory out first (its data goes through
//! swap slots that are freed at its exit), and B pages its own pages out and back
//! in before checking: a stale slot or an unzeroed frame shows as A's pattern.
//! Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, WaitStatus, check, madv, map, println, prot};

ulib::entry!(main);

/// Words per page.
const WORDS: usize = PAGE_SIZE / 8;
/// A fills every this-many-th word.
const FILL_STRIDE: usize = 8;
/// Pages of the round through swap.
const SWAP_ROUND_PAGES: usize = 8192;

/// Returns the value A writes at `addr` (never 0).
fn pattern(addr: u64) -> u64 {
    (addr.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xa5a5_5a5a_dead_beef) | 1
}

/// Maps `nr_pages` private read-write pages.
fn map_pages(nr_pages: usize) -> *mut u64 {
    ulib::mmap(nr_pages * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap").cast()
}

/// Pages out `nr_pages` from `base`.
fn page_out(base: *mut u64, nr_pages: usize) {
    // SAFETY: PAGEOUT keeps the contents; no reference points into the mapping.
    unsafe { ulib::madvise(base.cast(), nr_pages * PAGE_SIZE, madv::PAGEOUT) }.expect("madvise(PAGEOUT)");
}

/// Process A: fills `nr_pages` with the pattern, optionally pages them out, exits.
fn fill_and_exit(nr_pages: usize, through_swap: bool) -> ! {
    let base = map_pages(nr_pages);
    for i in (0..nr_pages * WORDS).step_by(FILL_STRIDE) {
        // SAFETY: inside the fresh mapping, which only this loop uses.
        unsafe {
            let p = base.add(i);
            p.write_volatile(pattern(p as u64));
        }
    }
    if through_swap {
        page_out(base, nr_pages);
    }
    ulib::exit(0)
}

/// Process B: maps `nr_pages`, makes each its own, optionally sends them through
/// swap, and checks that the words A wrote (same offsets in every frame) are 0.
fn check_zeros(nr_pages: usize, through_swap: bool) {
    let base = map_pages(nr_pages);
    for page in 0..nr_pages {
        // SAFETY: the last word of a page of the fresh mapping.
        unsafe { base.add(page * WORDS + WORDS - 1).write_volatile(0) };
    }
    if through_swap {
        page_out(base, nr_pages);
    }
    // A's words sit at the same offsets of every frame: checking those finds them.
    for i in (0..nr_pages * WORDS).step_by(FILL_STRIDE) {
        // SAFETY: inside the mapping.
        let (addr, word) = unsafe { (base.add(i) as u64, base.add(i).read_volatile()) };
        check!(word == 0, "word {:#x} of a fresh page holds {:#x}: old contents of another process", addr, word);
    }
    // SAFETY: no reference points into the mapping.
    unsafe { ulib::munmap(base.cast(), nr_pages * PAGE_SIZE) }.expect("munmap");
}

fn main() -> i32 {
    for through_swap in [false, true] {
        let free = ulib::memstat().expect("memstat").free_frames as usize;
        // Without swap: 3/4 of free memory each, so B must get A's frames. Through
        // swap: 32 MiB each, whose slots A frees and B is given again.
        let nr_pages = if through_swap { (free * 3 / 4).min(SWAP_ROUND_PAGES) } else { free * 3 / 4 };
        match ulib::fork().expect("fork") {
            Fork::Child => fill_and_exit(nr_pages, through_swap),
            Fork::Parent(pid) => {
                let status = ulib::waitpid(pid).expect("wait");
                check!(status == (pid, WaitStatus::Exited(0)), "process A ended {:?}", status);
            }
        }
        check_zeros(nr_pages, through_swap);
        let how = if through_swap { "through swap" } else { "directly" };
        println!("remanence: {nr_pages} pages of process A reached B {how}: every word 0");
    }
    0
}
