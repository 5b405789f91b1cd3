//! `heapsqueeze`: system calls that need kernel-heap memory, made while the kernel's
//! free frames and its heap's emergency pool are gone (issue #10, item 1: heap
//! exhaustion outside reclaim must be an OOM decision, never a panic).
//!
//! 1. Writes a pattern into 4 MiB of private memory (what reclaim can take back).
//! 2. Waits, yielding, until the machine's free frames drop below 16 or pages go to
//!    swap: the test (`tests/pressure.rs`) takes every free frame and the heap's pool
//!    meanwhile. On its own (no test draining memory) it waits at most 20 000
//!    yields, then goes on.
//! 3. Splits VMAs: 64 rounds of mmap 16 pages, mprotect every other page read-only
//!    (each split needs a new VMA node from the kernel heap), munmap.
//! 4. Checks every word of the 4 MiB; exit 0 if all is well.
#![no_std]
#![no_main]

use ulib::{PAGE_SIZE, map, pattern, println, prot};

ulib::entry!(main);

const NR_PAGES: usize = 1024;
const SEED: u64 = 0x5eed_4ea9;

fn main() -> i32 {
    let swap_writes_before = ulib::memstat().expect("memstat").swap_writes;
    let len = NR_PAGES * PAGE_SIZE;
    let base = ulib::mmap(len, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap");
    let words = len / 8;
    for i in 0..words {
        // SAFETY: inside the mapping just made, which nothing else uses.
        unsafe { (base as *mut u64).add(i).write_volatile(pattern::word(SEED, i as u64)) };
    }

    // The test's draining shows as free frames near zero, or, if a system call's
    // headroom check has already reclaimed (memstat is a system call too), as pages
    // written to swap.
    let mut nr_yields = 0;
    while nr_yields < 20_000 {
        let stat = ulib::memstat().expect("memstat");
        if stat.free_frames < 16 || stat.swap_writes > swap_writes_before {
            break;
        }
        ulib::yield_now();
        nr_yields += 1;
    }
    let free = ulib::memstat().expect("memstat").free_frames;
    println!("heapsqueeze: {free} frames free after {nr_yields} yields; splitting VMAs");

    for round in 0..64 {
        let area = ulib::mmap(16 * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap");
        for page in (0..16).step_by(2) {
            // SAFETY: a page of the area just mapped; no reference points into it.
            if let Err(e) = unsafe { ulib::mprotect(area.add(page * PAGE_SIZE), PAGE_SIZE, prot::READ) } {
                println!("FAIL: mprotect in round {round}: {e:?}");
                return 2;
            }
        }
        // SAFETY: the whole area is ours and unused.
        unsafe { ulib::munmap(area, 16 * PAGE_SIZE) }.expect("munmap");
    }

    for i in 0..words {
        // SAFETY: inside the mapping, still mapped.
        let got = unsafe { (base as *const u64).add(i).read_volatile() };
        if got != pattern::word(SEED, i as u64) {
            println!("FAIL: word {i} is {got:#x}");
            return 3;
        }
    }
    println!("heapsqueeze: 64 rounds of VMA splits done, 4 MiB intact");
    0
}
