//! `reclaimscale`: what reclaim costs per evicted page, to run at several RAM
//! sizes (`cargo run --release -- --memory 64M --cmdline "run=reclaimscale"`, then
//! 256M, 1G, 4G: docs/benchmarks.md's scaling table). The design claims O(1) per
//! page: the replacement policy's ring and the reverse map make the choice and the
//! unmap of a victim independent of how much memory there is.
//!
//! 1. the baseline: 16 MiB written one word a page with memory free (faults only);
//! 2. memory filled: all free memory but 8 MiB written once (the old pages);
//! 3. 16 MiB more written one word a page: each fault needs a frame, so reclaim
//!    evicts old pages to swap. The cost per evicted page is (time of 3 - time of
//!    1) / pages evicted (the process's `swap_out_pages`, from memstat).
//!
//! Exit 0 when reclaim evicted at least the 16 MiB and every old page reads back.
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

fn main() -> i32 {
    let stat = ulib::memstat().expect("memstat");
    let ram_mib = stat.total_frames as usize * PAGE_SIZE / MIB;
    check!(stat.free_swap_slots as usize * PAGE_SIZE > 2 * PROBE, "needs swap: {} slots free", stat.free_swap_slots);
    let (probe, baseline_ns) = touched(PROBE, 0);
    // SAFETY: nothing refers to the mapping any more.
    unsafe { ulib::munmap(probe as *mut u8, PROBE) }.expect("munmap");
    let free = ulib::memstat().expect("memstat").free_frames as usize * PAGE_SIZE;
    let old_len = (free.saturating_sub(8 * MIB)) / PAGE_SIZE * PAGE_SIZE;
    let (old, _) = touched(old_len, 7);
    let before = ulib::memstat().expect("memstat");
    let (probe, pressed_ns) = touched(PROBE, 0);
    let after = ulib::memstat().expect("memstat");
    let evicted = after.swap_out_pages - before.swap_out_pages;
    check!(evicted as usize >= PROBE / PAGE_SIZE / 2, "reclaim evicted only {} pages", evicted);
    let ns = pressed_ns.saturating_sub(baseline_ns) / evicted.max(1);
    println!(
        "reclaimscale: {} MiB RAM, {} MiB old pages, {} evicted while writing 16 MiB: {} ns per evicted page ({} ms against {} ms with memory free)",
        ram_mib,
        old_len / MIB,
        evicted,
        ns,
        pressed_ns / 1_000_000,
        baseline_ns / 1_000_000
    );
    println!("bench: op=reclaim, {} MiB RAM (per evicted page) ns={}.0", ram_mib, ns);
    // SAFETY: the old pages, some now in swap: reading them swaps them back in.
    let bad = (0..old_len / PAGE_SIZE).filter(|&p| unsafe { old.add(p * 512).read_volatile() } != p as u64 + 7).count();
    check!(bad == 0, "{} old pages lost their word", bad);
    // SAFETY: nothing refers to the mappings any more.
    unsafe { ulib::munmap(probe as *mut u8, PROBE) }.expect("munmap");
    0
}
