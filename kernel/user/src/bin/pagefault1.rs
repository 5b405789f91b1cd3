//! `pagefault1`: will-it-scale's `page_fault1`, in processes. Each of `procs=N`
//! processes (default 1) maps 4 MiB of anonymous memory, writes one word in every
//! page (a fault each), checks the words, and unmaps it, `rounds=R` times (default
//! 16). The parent forks them all, waits for all, and prints the page faults per
//! second of the whole run, for the scaling table of chapter 19 (1 CPU against 2).
//! Exit 0 if every child exited 0 and saw its own words.
#![no_std]
#![no_main]

use ulib::{Fork, WaitStatus, check, map, prot, println};

ulib::entry!(main);

const MAP_BYTES: usize = 4 << 20;
const NR_PAGES: usize = MAP_BYTES / ulib::PAGE_SIZE;

fn main() -> i32 {
    let mut buf = [0u8; 256];
    let args = ulib::args(&mut buf);
    let number = |key, default: u64| ulib::arg_value(args, key).and_then(|v| v.parse().ok()).unwrap_or(default);
    let (nr_procs, nr_rounds) = (number("procs", 1).clamp(1, 64), number("rounds", 16).clamp(1, 10_000));
    let start = ulib::now_ns();
    for child in 0..nr_procs {
        match ulib::fork() {
            Ok(Fork::Child) => ulib::exit(fault_rounds(child, nr_rounds)),
            Ok(Fork::Parent(_)) => {}
            Err(e) => {
                println!("FAIL: fork {}: {:?}", child, e);
                return 1;
            }
        }
    }
    for _ in 0..nr_procs {
        let (pid, status) = ulib::wait().expect("wait");
        check!(status == WaitStatus::Exited(0), "child {} {}", pid, status);
    }
    let ns = (ulib::now_ns() - start).max(1);
    let faults = nr_procs * nr_rounds * NR_PAGES as u64;
    println!(
        "pagefault1: {} processes x {} rounds x {} pages: {} faults in {} ms: {} faults/s",
        nr_procs,
        nr_rounds,
        NR_PAGES,
        faults,
        ns / 1_000_000,
        faults * 1_000_000_000 / ns
    );
    0
}

/// One process's loop: map, write every page, check, unmap. Returns its exit code.
fn fault_rounds(child: u64, nr_rounds: u64) -> i32 {
    for round in 0..nr_rounds {
        let base = match ulib::mmap(MAP_BYTES, prot::READ | prot::WRITE, map::PRIVATE) {
            Ok(p) => p as *mut u64,
            Err(e) => {
                println!("FAIL: child {} mmap: {:?}", child, e);
                return 1;
            }
        };
        let word = |page: usize| (child << 48) | (round << 24) | page as u64;
        let stride = ulib::PAGE_SIZE / 8;
        for page in 0..NR_PAGES {
            // SAFETY: inside the fresh private mapping, aligned.
            unsafe { base.add(page * stride).write_volatile(word(page)) };
        }
        for page in 0..NR_PAGES {
            // SAFETY: as above.
            let found = unsafe { base.add(page * stride).read_volatile() };
            if found != word(page) {
                println!("FAIL: child {} round {} page {}: {:#x}", child, round, page, found);
                return 1;
            }
        }
        // SAFETY: no reference into the mapping remains.
        if let Err(e) = unsafe { ulib::munmap(base as *mut u8, MAP_BYTES) } {
            println!("FAIL: child {} munmap: {:?}", child, e);
            return 1;
        }
    }
    0
}
