//! `sleeper`: two processes that never finish by themselves, for kill tests.
//!
//! The parent fills 4 MiB and forks; the child unmaps its copy (so the parent is
//! by far the larger) and then yields forever; the parent waits for the child,
//! blocked in `wait4`. Only a kill ends them. Exit codes, should they ever exit by
//! themselves: 2 (child) and 3 (parent).
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, map, pattern, prot};

ulib::entry!(main);

const NR_PAGES: usize = 1024;

fn main() -> i32 {
    let base = ulib::mmap(NR_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    // SAFETY: a fresh private mapping, only used through `base`.
    unsafe { pattern::fill(base, NR_PAGES, 1) };
    match ulib::fork().expect("fork") {
        Fork::Child => {
            // SAFETY: nothing refers to the mapping any more.
            unsafe { ulib::munmap(base as *mut u8, NR_PAGES * PAGE_SIZE) }.expect("munmap");
            loop {
                ulib::yield_now();
            }
        }
        Fork::Parent(child) => {
            let _ = ulib::waitpid(child);
            3
        }
    }
}
