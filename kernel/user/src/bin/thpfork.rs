//! `thpfork`: huge pages against 4 KiB pages on the same workloads, as rows both
//! this kernel and Linux print (`cargo run --release -- --linux-peer=thp` runs it
//! on both; Linux syscalls and `/proc/meminfo` only). After a warm-up that
//! writes three quarters of free memory once, each row once with
//! MADV_HUGEPAGE and once with MADV_NOHUGEPAGE:
//! - the write fault per 4 KiB, 8 MiB written one word a page (best of 3);
//! - fork against the resident size, 16 MiB to 512 MiB (those that fit in half the
//!   free memory; best of 3; the child exits at once);
//! - munmap of 64 MiB touched, per 4 KiB page;
//! - after fork of 64 MiB of huge pages, the child's first write in each 2 MiB
//!   (the copy-on-write of a huge page) and then one word in each other 4 KiB
//!   page; every word is checked on both sides.
//!
//! Run it with `thp_fork=split` on our command line to measure fork's other
//! choice (docs/18-huge-pages.md). Exit 0 when every check passed.
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, WaitStatus, check, madv, map, println, prot};

ulib::entry!(main);

const HUGE: usize = 2 << 20;
const MIB: usize = 1 << 20;
/// The advice of each row, and its name in the row.
const ADVICE: [(u64, &str); 2] = [(madv::HUGEPAGE, "huge"), (madv::NOHUGEPAGE, "4K")];

/// Prints one row: `bench: op=WHAT ns=N`.
fn print_row(what: core::fmt::Arguments<'_>, ps: u64) {
    println!("bench: op={} ns={}.{}", what, ps / 1000, ps % 1000 / 100);
}

fn main() -> i32 {
    let t0 = ulib::now_ns();
    let free = free_bytes();
    println!("thpfork: huge against 4 KiB pages, {} MiB free", free / MIB);
    warm_up(free / 4 * 3);
    for (advice, name) in ADVICE {
        print_row(format_args!("THP write fault, {} (per 4 KiB)", name), write_fault_ps(advice));
    }
    for mib in [16usize, 64, 128, 256, 512] {
        if mib * MIB > free / 2 {
            println!("thpfork: fork of {} MiB skipped: more than half the free memory", mib);
            continue;
        }
        for (advice, name) in ADVICE {
            print_row(format_args!("fork, {} MiB resident, {} (per fork)", mib, name), fork_ps(mib * MIB, advice));
        }
    }
    for (advice, name) in ADVICE {
        let (raw, _) = filled_region(64 * MIB, advice);
        let t1 = ulib::now_ns();
        // SAFETY: nothing refers to the mapping any more.
        unsafe { ulib::munmap(raw as *mut u8, 64 * MIB + HUGE) }.expect("munmap");
        print_row(format_args!("munmap 64 MiB touched, {} (per 4 KiB)", name), (ulib::now_ns() - t1) * 1000 / (64 * MIB / PAGE_SIZE) as u64);
    }
    check!(cow_after_fork(64 * MIB), "the child's writes after fork");
    println!("bench: done in {} ms", (ulib::now_ns() - t0) / 1_000_000);
    0
}

/// Returns the free memory in bytes (`/proc/meminfo`'s MemFree), or 0.
fn free_bytes() -> usize {
    let mut buf = [0u8; 4096];
    let text = ulib::procfs::read("/proc/meminfo", &mut buf).unwrap_or("");
    ulib::procfs::field(text, "MemFree") as usize * 1024
}

/// Writes `len` bytes once and unmaps them, so that the guest's RAM has been
/// touched before anything is timed: QEMU allocates host memory for a guest page
/// at its first touch, which would be charged to whichever kernel touches it first
/// (bench's warm-up does the same).
fn warm_up(len: usize) {
    let len = len / HUGE * HUGE;
    let t0 = ulib::now_ns();
    let (raw, _) = filled_region(len, madv::NOHUGEPAGE);
    // SAFETY: nothing refers to the mapping any more.
    unsafe { ulib::munmap(raw as *mut u8, len + HUGE) }.expect("munmap");
    println!("thpfork: warm-up wrote {} MiB first, {} ns per 4 KiB", len / MIB, (ulib::now_ns() - t0) / (len / PAGE_SIZE).max(1) as u64);
}

/// Maps `len` bytes 2 MiB-aligned with `advice` and writes one word per 4 KiB;
/// returns the mapping (`len` + 2 MiB from the first) and the aligned start.
fn filled_region(len: usize, advice: u64) -> (usize, *mut u64) {
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

/// The write fault per 4 KiB (ps), 8 MiB written one word a page, best of 3.
fn write_fault_ps(advice: u64) -> u64 {
    const LEN: usize = 8 * MIB;
    let mut best = u64::MAX;
    for _ in 0..3 {
        let t0 = ulib::now_ns();
        let (raw, _) = filled_region(LEN, advice);
        best = best.min((ulib::now_ns() - t0) * 1000 / (LEN / PAGE_SIZE) as u64);
        // SAFETY: nothing refers to the mapping any more.
        unsafe { ulib::munmap(raw as *mut u8, LEN + HUGE) }.expect("munmap");
    }
    best
}

/// The best of 3 fork times (ps, in the parent) with `len` bytes resident.
fn fork_ps(len: usize, advice: u64) -> u64 {
    let (raw, _) = filled_region(len, advice);
    let mut best = u64::MAX;
    for _ in 0..3 {
        let t0 = ulib::now_ns();
        match ulib::fork().expect("fork") {
            Fork::Child => ulib::exit(0),
            Fork::Parent(pid) => {
                best = best.min((ulib::now_ns() - t0) * 1000);
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
/// 2 MiB, then the other pages, and checks every word. True if both sides passed.
fn cow_after_fork(len: usize) -> bool {
    let (raw, base) = filled_region(len, madv::HUGEPAGE);
    let nr_huge = len / HUGE;
    let pid = match ulib::fork().expect("fork") {
        Fork::Parent(pid) => pid,
        Fork::Child => {
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
            print_row(format_args!("write after fork, huge, 1st in 2 MiB (per 2 MiB)"), first_ns * 1000 / nr_huge as u64);
            print_row(format_args!("write after fork, huge, the 511 others (per 4 KiB)"), rest_ns * 1000 / (nr_huge * 511) as u64);
            let want = |p: usize| if p % 512 == 0 { !0 } else { !(p as u64) };
            // SAFETY: as above.
            let bad = (0..len / PAGE_SIZE).filter(|&p| unsafe { base.add(p * 512).read_volatile() } != want(p)).count();
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
