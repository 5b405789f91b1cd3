//! `thpfork`: what fork costs against resident size, with 4 KiB pages and with
//! huge pages, and what the first writes after fork cost (the copy-on-write of a
//! huge page). Linux syscalls only, so the same binary runs on Linux.
//!
//! For each size (16 MiB to 512 MiB, those that fit in a third of free memory),
//! with MADV_NOHUGEPAGE and with MADV_HUGEPAGE: fill the region (one word per
//! 4 KiB), then time `fork` in the parent (the child exits at once), best of 3.
//! Then, on 64 MiB of huge pages: fork, and the child times its first write in
//! each 2 MiB (one word per 2 MiB: the copy-on-write fault) and then one word in
//! each of the other 4 KiB pages. Run it with `thp_fork=split` on the command
//! line to measure the other choice (docs/18-huge-pages.md). Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, WaitStatus, check, madv, map, println, prot};

ulib::entry!(main);

const HUGE: usize = 2 << 20;
const MIB: usize = 1 << 20;

fn main() -> i32 {
    let free = free_bytes();
    println!("thpfork: fork cost against resident size (best of 3), {} MiB free", free / MIB);
    for mib in [16usize, 32, 64, 128, 256, 512] {
        if mib * MIB > free / 3 {
            println!("thpfork: {} MiB skipped: more than a third of free memory", mib);
            continue;
        }
        let small = fork_cost(mib * MIB, madv::NOHUGEPAGE);
        let huge = fork_cost(mib * MIB, madv::HUGEPAGE);
        println!(
            "thpfork: fork {:>3} MiB resident: 4 KiB pages {:>7} us ({} us/MiB), huge pages {:>5} us ({} us/MiB)",
            mib,
            small / 1000,
            small / 1000 / mib as u64,
            huge / 1000,
            huge / 1000 / mib as u64
        );
    }
    if 64 * MIB <= free / 3 {
        check!(cow_after_fork(64 * MIB), "the child's writes after fork");
    }
    0
}

/// Returns the free memory in bytes (`/proc/meminfo`'s MemFree), or 0.
fn free_bytes() -> usize {
    let mut buf = [0u8; 4096];
    let text = ulib::procfs::read("/proc/meminfo", &mut buf).unwrap_or("");
    ulib::procfs::field(text, "MemFree") as usize * 1024
}

/// Maps `len` bytes 2 MiB-aligned with `advice` and writes one word per 4 KiB.
fn filled_region(len: usize, advice: usize) -> (usize, *mut u64) {
    let raw = ulib::mmap(len + HUGE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as usize;
    let base = raw.next_multiple_of(HUGE) as *mut u64;
    // SAFETY: the advice changes no contents; the range is inside the mapping.
    unsafe { ulib::madvise(base as *mut u8, len, advice) }.expect("madvise");
    for page in 0..len / PAGE_SIZE {
        // SAFETY: inside the fresh private read-write mapping.
        unsafe { base.add(page * 512).write_volatile(page as u64) };
    }
    (raw, base)
}

/// The best of 3 fork times (ns, in the parent) with `len` bytes resident.
fn fork_cost(len: usize, advice: usize) -> u64 {
    let (raw, _) = filled_region(len, advice);
    let mut best = u64::MAX;
    for _ in 0..3 {
        let t0 = ulib::now_ns();
        match ulib::fork().expect("fork") {
            Fork::Child => ulib::exit(0),
            Fork::Parent(pid) => {
                best = best.min(ulib::now_ns() - t0);
                let (_, status) = ulib::waitpid(pid).expect("waitpid");
                check!(status == WaitStatus::Exited(0), "child: {:?}", status);
            }
        }
    }
    // SAFETY: nothing refers to the mapping any more.
    unsafe { ulib::munmap(raw as *mut u8, len + HUGE) }.expect("munmap");
    best
}

/// Forks with `len` bytes of huge pages; the child times its first write in each
/// 2 MiB, then the other pages, and checks every word. True if the child passed.
fn cow_after_fork(len: usize) -> bool {
    let (raw, base) = filled_region(len, madv::HUGEPAGE);
    let nr_huge = len / HUGE;
    let t0 = ulib::now_ns();
    let pid = match ulib::fork().expect("fork") {
        Fork::Parent(pid) => pid,
        Fork::Child => {
            let fork_ns = ulib::now_ns() - t0;
            let t1 = ulib::now_ns();
            for h in 0..nr_huge {
                // SAFETY: the child's private copy-on-write view of the region.
                unsafe { base.add(h * HUGE / 8).write_volatile(!0) };
            }
            let first_ns = ulib::now_ns() - t1;
            let t2 = ulib::now_ns();
            for page in (0..len / PAGE_SIZE).filter(|p| p % 512 != 0) {
                // SAFETY: as above.
                unsafe { base.add(page * 512).write_volatile(!(page as u64)) };
            }
            let rest_ns = ulib::now_ns() - t2;
            println!(
                "thpfork: after fork of {} MiB of huge pages: first write per 2 MiB {} us, the other 511 pages of each 2 MiB {} us per 2 MiB (fork took {} us)",
                len / MIB,
                first_ns / 1000 / nr_huge as u64,
                rest_ns / 1000 / nr_huge as u64,
                fork_ns / 1000
            );
            // SAFETY: as above.
            let bad = (0..len / PAGE_SIZE).filter(|&p| unsafe { base.add(p * 512).read_volatile() } != if p % 512 == 0 { !0 } else { !(p as u64) }).count();
            ulib::exit(if bad == 0 { 0 } else { 1 });
        }
    };
    let (_, status) = ulib::waitpid(pid).expect("waitpid");
    // SAFETY: the parent's view, unchanged by the child's writes.
    let bad = (0..len / PAGE_SIZE).filter(|&p| unsafe { base.add(p * 512).read_volatile() } != p as u64).count();
    check!(bad == 0, "{} pages of the parent changed under it", bad);
    // SAFETY: nothing refers to the mapping any more.
    unsafe { ulib::munmap(raw as *mut u8, len + HUGE) }.expect("munmap");
    status == WaitStatus::Exited(0)
}
