//! `stackgrow`: a 64 KiB array on the stack, every byte written and read back.
//!
//! The function with the array is not inlined, so its frame really is 64 KiB;
//! the compiler's stack probes touch each page on the way down. Exit 0 on success.
#![no_std]
#![no_main]

use core::hint::black_box;

use ulib::{check, println};

ulib::entry!(main);

const ARRAY_BYTES: usize = 64 * 1024;

/// Fills a stack array with `seed`-derived bytes and returns their sum.
#[inline(never)]
fn fill_and_sum(seed: u8) -> u64 {
    let mut array = [0u8; ARRAY_BYTES];
    for (i, byte) in array.iter_mut().enumerate() {
        *byte = i as u8 ^ seed;
    }
    black_box(&mut array).iter().map(|&b| u64::from(b)).sum()
}

fn main() -> i32 {
    let before = ulib::memstat().expect("memstat");
    let sum = fill_and_sum(black_box(0x5a));
    let after = ulib::memstat().expect("memstat");
    let expected: u64 = (0..ARRAY_BYTES).map(|i| u64::from(i as u8 ^ 0x5a)).sum();
    println!(
        "stackgrow: {} KiB stack array summed to {}; rss {} -> {} pages",
        ARRAY_BYTES / 1024,
        sum,
        before.rss_pages,
        after.rss_pages
    );
    check!(sum == expected, "expected the sum {}", expected);
    0
}
