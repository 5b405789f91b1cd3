//! `forkenomem`: fork fails with ENOMEM, in bounded time, when the shared mapping it
//! must fill cannot fit in RAM and swap together (issue #10, item 4).
//!
//! Run on a machine with 64 MiB of RAM and 32 MiB of swap (the `oom` test image):
//! the parent maps 160 MiB `MAP_SHARED`, untouched, and forks. Fork gives every
//! shared page a frame first, reclaiming as it goes; when RAM and swap are both
//! full, reclaim frees nothing and fork must return ENOMEM (not loop, not panic).
//! The parent then unmaps the mapping and forks again, which must work: the memory
//! fork filled went back with the mapping. Exit 0 on success. With RAM and swap
//! full, the OOM killer may also choose this process at its next page fault,
//! before it can unmap: that is a correct end too (the kernel test accepts it).
#![no_std]
#![no_main]

use ulib::{Errno, Fork, PAGE_SIZE, WaitStatus, check, map, println, prot};

ulib::entry!(main);

const MAPPING_BYTES: usize = 160 << 20;

fn main() -> i32 {
    let shared = ulib::mmap(MAPPING_BYTES, prot::READ | prot::WRITE, map::SHARED).expect("mmap");
    let start_ns = ulib::now_ns();
    let result = ulib::fork();
    if result == Ok(Fork::Child) {
        ulib::exit(0);
    }
    let elapsed_ms = (ulib::now_ns() - start_ns) / 1_000_000;
    // Unmap first: RAM and swap are full now, and printing may need a page.
    // SAFETY: nothing references the mapping.
    unsafe { ulib::munmap(shared, MAPPING_BYTES) }.expect("munmap");
    println!("forkenomem: fork with {} MiB shared: {:?} after {} ms", MAPPING_BYTES >> 20, result, elapsed_ms);
    check!(result == Err(Errno::ENOMEM), "fork of a mapping larger than RAM + swap: {:?}, want ENOMEM", result);
    let small = ulib::mmap(PAGE_SIZE, prot::READ | prot::WRITE, map::SHARED).expect("mmap");
    match ulib::fork().expect("fork after munmap") {
        Fork::Child => ulib::exit(0),
        Fork::Parent(pid) => {
            let (_, status) = ulib::waitpid(pid).expect("wait");
            check!(status == WaitStatus::Exited(0), "child ended with {:?}", status);
        }
    }
    // SAFETY: as above.
    unsafe { ulib::munmap(small, PAGE_SIZE) }.expect("munmap");
    0
}
