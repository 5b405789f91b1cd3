//! `swapload`: swap throughput under memory pressure; the same binary runs on this
//! kernel and on Linux (`cargo run --release -- --linux-peer` boots both with it).
//!
//! Maps [`REGION_MIB`] MiB, twice the RAM the peer benchmark gives each guest, and
//! makes three passes over it:
//! 1. **write**: fills every word with a pattern of (seed, address); once free RAM
//!    is gone, every new page costs a page written to swap;
//! 2. **sequential read**: checks every word in address order: mostly swap-ins;
//! 3. **random read**: checks one word of every page in a pseudo-random order.
//!
//! Each pass prints a line of `key=value` words (the runner parses them): its time,
//! the pages read from and written to the swap disk meanwhile (machine-wide:
//! `memstat` here, `pswpin`/`pswpout` of `/proc/vmstat` on Linux) and the major
//! faults. Exit 0, or 1 if any word came back wrong.
#![no_std]
#![no_main]

use ulib::{PAGE_SIZE, check, linux, map, pattern, println, prot};

ulib::entry!(main);

/// The size of the region, in MiB.
const REGION_MIB: usize = 256;
/// The region in pages: a power of two, for [`RandomOrder`].
const NR_PAGES: usize = REGION_MIB << 20 >> 12;

/// Swap traffic so far, machine-wide.
#[derive(Clone, Copy)]
struct Counters {
    /// Pages read from the swap disk.
    reads: u64,
    /// Pages written to the swap disk.
    writes: u64,
    /// Major faults (swap-ins that waited for the disk).
    majflt: u64,
}

/// Which kernel we run on: ours answers `memstat`, Linux has `/proc/vmstat`.
fn counters() -> Counters {
    if let Ok(m) = ulib::memstat() {
        return Counters { reads: m.swap_reads, writes: m.swap_writes, majflt: m.major_faults };
    }
    let mut buf = [0u8; 16 * 1024];
    let len = linux::read_file(c"/proc/vmstat", &mut buf).unwrap_or(0);
    let value = |name| linux::field(&buf[..len], name).unwrap_or(0);
    Counters { reads: value("pswpin"), writes: value("pswpout"), majflt: value("pgmajfault") }
}

/// Prints the size of RAM and what is free of it, from `memstat` or `/proc/meminfo`.
fn print_memory() {
    let (total_kib, free_kib) = match ulib::memstat() {
        Ok(m) => (m.total_frames * 4, m.free_frames * 4),
        Err(_) => {
            let mut buf = [0u8; 8 * 1024];
            let len = linux::read_file(c"/proc/meminfo", &mut buf).unwrap_or(0);
            let value = |name| linux::field(&buf[..len], name).unwrap_or(0);
            (value("MemTotal"), value("MemFree"))
        }
    };
    println!("swapload: region_mib={} ram_mib={} free_mib={}", REGION_MIB, total_kib / 1024, free_kib / 1024);
}

/// Times `pass` and prints its line; returns what `pass` returned.
fn timed(name: &str, pass: impl FnOnce() -> usize) -> usize {
    let before = counters();
    let start = ulib::now_ns();
    let result = pass();
    let ms = (ulib::now_ns() - start) / 1_000_000;
    let after = counters();
    println!(
        "swapload: pass={} ms={} read={} written={} majflt={}",
        name,
        ms,
        after.reads - before.reads,
        after.writes - before.writes,
        after.majflt - before.majflt
    );
    result
}

/// Every page number below [`NR_PAGES`] once, in a scattered order: the linear
/// congruential sequence `x -> a*x + c mod 2^k` visits all 2^k values when `c` is
/// odd and `a % 4 == 1` (Hull-Dobell), so no table of 65 536 entries is needed.
struct RandomOrder {
    x: usize,
    left: usize,
}

impl Iterator for RandomOrder {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        const A: usize = 25_173;
        const C: usize = 13_849;
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.x = (self.x.wrapping_mul(A).wrapping_add(C)) & (NR_PAGES - 1);
        Some(self.x)
    }
}

fn main() -> i32 {
    const _: () = assert!(NR_PAGES.is_power_of_two());
    print_memory();
    let base = ulib::mmap(NR_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    let seed = 7;
    // SAFETY: a fresh private mapping, only used through `base`.
    timed("write", || unsafe {
        pattern::fill(base, NR_PAGES, seed);
        0
    });
    // SAFETY: the mapping is intact.
    let mut bad = timed("seq-read", || unsafe { pattern::nr_bad_pages(base, NR_PAGES, seed) });
    bad += timed("random-read", || {
        let order = RandomOrder { x: 0, left: NR_PAGES };
        order
            .filter(|&page| {
                // SAFETY: page < NR_PAGES: inside the mapping.
                let word = unsafe { base.add(page * pattern::WORDS_PER_PAGE) };
                // SAFETY: as above.
                let found = unsafe { word.read_volatile() };
                found != pattern::word(seed, word as u64)
            })
            .count()
    });
    check!(bad == 0, "{} pages came back wrong", bad);
    println!("swapload: ok, every page came back intact");
    0
}
