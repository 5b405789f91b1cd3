//! `sharedbig`: `fork` of a process whose untouched `MAP_SHARED` mapping is larger
//! than free memory. The kernel fills a shared mapping's pages at fork (so both sides
//! see the same frames); here that needs reclaim on the way, and fork must succeed.
//!
//! Maps [`SHARED_MIB`] MiB shared (the test image has 64 MiB of RAM), forks without
//! touching it; the child writes a pattern of (seed, address) to every page and
//! exits; the parent checks every word the child wrote. Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, WaitStatus, check, map, pattern, println, prot};

ulib::entry!(main);

/// The shared mapping, in MiB: more than the free memory of a 64 MiB machine.
const SHARED_MIB: usize = 80;
const NR_PAGES: usize = SHARED_MIB << 20 >> 12;

fn main() -> i32 {
    let base = ulib::mmap(NR_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::SHARED).expect("mmap") as *mut u64;
    let before = ulib::memstat().expect("memstat");
    println!("sharedbig: {} MiB shared, {} MiB free: fork", SHARED_MIB, before.free_frames / 256);
    let seed = 0x5348_4152;
    match ulib::fork() {
        Ok(Fork::Child) => {
            // SAFETY: the shared mapping, used only through `base`.
            unsafe { pattern::fill(base, NR_PAGES, seed) };
            0
        }
        Ok(Fork::Parent(pid)) => {
            let (_, status) = ulib::waitpid(pid).expect("wait");
            check!(status == WaitStatus::exited(0), "child: {:?}", status);
            // SAFETY: the mapping is intact.
            let bad = unsafe { pattern::nr_bad_pages(base, NR_PAGES, seed) };
            check!(bad == 0, "{} shared pages do not hold what the child wrote", bad);
            let after = ulib::memstat().expect("memstat");
            println!(
                "sharedbig: the child's {} pages all seen by the parent; {} pages went to swap meanwhile",
                NR_PAGES,
                after.swap_writes - before.swap_writes
            );
            0
        }
        Err(e) => {
            println!("FAIL: fork: {:?}", e);
            1
        }
    }
}
