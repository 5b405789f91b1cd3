//! `reclaimscale`: what reclaim costs per evicted page, to run at several RAM
//! sizes (`cargo run --release -- --memory 64M --cmdline "run=reclaimscale"`, then
//! 256M, 1G, 4G: docs/benchmarks.md's scaling table). The design claims O(1) per
//! page: the replacement policy's ring and the reverse map make the choice and the
//! unmap of a victim independent of how much memory there is.
//!
//! 0. the warm-up: all free memory but 8 MiB written once and unmapped, so that
//!    QEMU has given the guest's RAM host memory before anything is timed (it does
//!    at a guest page's first touch; without this the baseline below paid for it
//!    and came out slower than the run under pressure);
//! 1. the baseline: 16 MiB written one word a page with memory free (faults only),
//!    best of 3;
//! 2. memory filled: all free memory but 8 MiB written once (the old pages);
//! 3. three rounds of 16 MiB more written one word a page: each fault needs a
//!    frame, so reclaim evicts old pages to swap. A round's cost per evicted page
//!    is (its time - the baseline) / pages evicted in it (the process's
//!    `swap_out_pages`, from memstat); the row is the median round. Each round
//!    also prints the victims reclaim scanned (`/proc/vmstat` `pgscan`), which
//!    the host's load does not change.
//!
//! Exit 0 when each round evicted at least half its 16 MiB and every old page
//! reads back.
#![no_std]
#![no_main]

use ulib::{PAGE_SIZE, check, map, println, prot};

ulib::entry!(main);

const MIB: usize = 1 << 20;
const PROBE: usize = 16 * MIB;

/// Maps `len` bytes and writes one word per 4 KiB (`page + salt`); returns the
/// mapping and the ns it took.
fn touched(len: usize, salt: u64) -> (*mut u64, u64) {
    let t0 = ulib::now_ns();
    let base = ulib::mmap(len, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    for page in 0..len / PAGE_SIZE {
        // SAFETY: inside the fresh private read-write mapping.
        unsafe { base.add(page * 512).write_volatile(page as u64 + salt) };
    }
    (base, ulib::now_ns() - t0)
}

/// Pressured rounds: each writes [`PROBE`] more bytes with memory full.
const ROUNDS: usize = 3;

fn main() -> i32 {
    let stat = ulib::memstat().expect("memstat");
    let ram_mib = stat.total_frames as usize * PAGE_SIZE / MIB;
    check!(stat.free_swap_slots as usize * PAGE_SIZE > (ROUNDS + 1) * PROBE, "needs swap: {} slots free", stat.free_swap_slots);
    let warm_len = free_len();
    let (warm, warm_ns) = touched(warm_len, 3);
    // SAFETY: nothing refers to the mapping any more.
    unsafe { ulib::munmap(warm as *mut u8, warm_len) }.expect("munmap");
    let mut baseline_ns = u64::MAX;
    for _ in 0..3 {
        let (probe, ns) = touched(PROBE, 0);
        baseline_ns = baseline_ns.min(ns);
        // SAFETY: nothing refers to the mapping any more.
        unsafe { ulib::munmap(probe as *mut u8, PROBE) }.expect("munmap");
    }
    let old_len = free_len();
    let (old, _) = touched(old_len, 7);
    let mut per_page = [0u64; ROUNDS];
    let mut probes = [core::ptr::null_mut(); ROUNDS];
    for round in 0..ROUNDS {
        let (before, scanned_before) = (ulib::memstat().expect("memstat"), pages_scanned());
        let (probe, pressed_ns) = touched(PROBE, 0);
        let evicted = ulib::memstat().expect("memstat").swap_out_pages - before.swap_out_pages;
        let scanned = pages_scanned() - scanned_before;
        check!(evicted as usize >= PROBE / PAGE_SIZE / 2, "round {}: reclaim evicted only {} pages", round, evicted);
        per_page[round] = pressed_ns.saturating_sub(baseline_ns) / evicted.max(1);
        probes[round] = probe;
        println!(
            "reclaimscale: {} MiB RAM, {} MiB old pages, round {}: {} evicted ({} scanned) while writing 16 MiB: {} ns per evicted page ({} ms against {} ms with memory free)",
            ram_mib,
            old_len / MIB,
            round + 1,
            evicted,
            scanned,
            per_page[round],
            pressed_ns / 1_000_000,
            baseline_ns / 1_000_000
        );
    }
    per_page.sort_unstable();
    println!("reclaimscale: warm-up wrote {} MiB in {} ms", warm_len / MIB, warm_ns / 1_000_000);
    println!("bench: op=reclaim, {} MiB RAM (per evicted page) ns={}.0", ram_mib, per_page[ROUNDS / 2]);
    // SAFETY: the old pages, some now in swap: reading them swaps them back in.
    let bad = (0..old_len / PAGE_SIZE).filter(|&p| unsafe { old.add(p * 512).read_volatile() } != p as u64 + 7).count();
    check!(bad == 0, "{} old pages lost their word", bad);
    for probe in probes {
        // SAFETY: nothing refers to the mappings any more.
        unsafe { ulib::munmap(probe as *mut u8, PROBE) }.expect("munmap");
    }
    0
}

/// Returns the victims reclaim has looked at since boot (`/proc/vmstat`'s
/// `pgscan`): how many it scans per page evicted shows whether the choice of a
/// victim grows with memory, whatever the host's load.
fn pages_scanned() -> u64 {
    let mut buf = [0u8; 4096];
    ulib::procfs::field(ulib::procfs::read("/proc/vmstat", &mut buf).unwrap_or(""), "pgscan")
}

/// Returns all free memory but 8 MiB, in whole pages (memstat's free frames).
fn free_len() -> usize {
    let free = ulib::memstat().expect("memstat").free_frames as usize * PAGE_SIZE;
    free.saturating_sub(8 * MIB) / PAGE_SIZE * PAGE_SIZE
}
