//! `vmaflood`: one process splits a mapping into as many VMAs as it can.
//!
//! Every VMA costs kernel heap, so the kernel caps them per address space at
//! Linux's `vm.max_map_count` (65 530): an `mprotect` that would split past it
//! fails with ENOMEM and changes nothing, as on Linux. Maps 80 000 pages
//! (untouched: no frame is used), makes every other page read-only until
//! `mprotect` refuses, checks the count and the errno, unmaps everything, exit 0.
#![no_std]
#![no_main]

use ulib::{Errno, PAGE_SIZE, map, println, prot};

ulib::entry!(main);

const NR_PAGES: usize = 80_000;
const MAX_MAP_COUNT: u64 = 65_530;

fn main() -> i32 {
    let base = ulib::mmap(NR_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap");
    let nr_before = ulib::memstat().expect("memstat").nr_vmas;
    let mut refused = None;
    for i in (1..NR_PAGES - 1).step_by(2) {
        // SAFETY: a page inside the mapping, which nothing reads or writes.
        if let Err(e) = unsafe { ulib::mprotect(base.add(i * PAGE_SIZE), PAGE_SIZE, prot::READ) } {
            refused = Some((i, e));
            break;
        }
    }
    let nr_vmas = ulib::memstat().expect("memstat").nr_vmas;
    println!("vmaflood: {nr_before} VMAs at the start, {nr_vmas} when mprotect refused: {refused:?}");
    let Some((_, errno)) = refused else {
        println!("FAIL: 80 000 pages split without reaching the limit");
        return 2;
    };
    if errno != Errno::ENOMEM || !(MAX_MAP_COUNT - 1..=MAX_MAP_COUNT).contains(&nr_vmas) {
        println!("FAIL: expected ENOMEM with {} or {} VMAs", MAX_MAP_COUNT - 1, MAX_MAP_COUNT);
        return 3;
    }
    // SAFETY: the whole mapping is ours and unused.
    unsafe { ulib::munmap(base, NR_PAGES * PAGE_SIZE) }.expect("munmap");
    let nr_after = ulib::memstat().expect("memstat").nr_vmas;
    if nr_after != nr_before - 1 {
        println!("FAIL: {nr_after} VMAs after munmap, expected {}", nr_before - 1);
        return 4;
    }
    0
}
