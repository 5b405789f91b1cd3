//! `thrash`: a working set larger than memory with a hot part, to compare
//! replacement policies (the kernel's bench mode runs it under each one).
//!
//! Maps 6144 pages (24 MiB), writes each once, and makes 100 000 touches from a fixed pseudo-random
//! sequence: 80 % in the hot quarter of the pages, 20 % anywhere; one touch in four
//! is a write. A policy that keeps the hot pages resident takes fewer major faults.
//! Prints the touches, major faults and time; exit 0. With `linger=MS` it then
//! sleeps MS milliseconds before it exits, its pages still mapped, for an observer
//! that looks at its resident set (`tests/policies.rs`).
#![no_std]
#![no_main]

use ulib::{PAGE_SIZE, map, println, prot};

ulib::entry!(main);

const NR_PAGES: u64 = 6144;
const NR_HOT: u64 = NR_PAGES / 4;
const NR_TOUCHES: u64 = 100_000;

fn main() -> i32 {
    let base = ulib::mmap(NR_PAGES as usize * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    for page in 0..NR_PAGES as usize {
        // SAFETY: the first word of each page of the mapping: every page gets a frame.
        unsafe { base.add(page * 512).write_volatile(page as u64) };
    }
    let before = ulib::memstat().expect("memstat");
    let start = ulib::now_ns();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut sum = 0u64;
    for _ in 0..NR_TOUCHES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let page = if x % 10 < 8 { (x >> 8) % NR_HOT } else { (x >> 8) % NR_PAGES };
        // SAFETY: page < NR_PAGES: one word of the mapping, only used through `base`.
        let word = unsafe { base.add(page as usize * 512 + (x >> 40) as usize % 512) };
        if (x >> 20) % 4 == 0 {
            // SAFETY: as above.
            unsafe { word.write_volatile(x) };
        } else {
            // SAFETY: as above.
            sum = sum.wrapping_add(unsafe { word.read_volatile() });
        }
    }
    let ms = (ulib::now_ns() - start) / 1_000_000;
    let after = ulib::memstat().expect("memstat");
    println!(
        "thrash: {} touches of {} pages ({} hot): {} major faults, {} ms (checksum {:x})",
        NR_TOUCHES,
        NR_PAGES,
        NR_HOT,
        after.major_faults - before.major_faults,
        ms,
        sum & 0xff
    );
    let mut args = [0u8; 64];
    if let Some(ms) = ulib::arg_value(ulib::args(&mut args), "linger").and_then(|v| v.parse::<u64>().ok()) {
        ulib::sleep_ms(ms).expect("sleep");
    }
    0
}
