//! `sortsearch`: a program with the locality of a real one, to record (issue #15:
//! a reference string to replay against OPT that is not independent draws).
//!
//! Arguments: `pages=N` (default 1024: the array, N pages of u64; a buffer of as
//! many), `lookups=Q` (default 20000), `seed=S`. Three phases, as a program that
//! builds an index and then serves queries: it fills the array with pseudo-random
//! words; sorts it (each page sorted in place, then bottom-up merge passes between
//! the array and the buffer: sequential streams, two inputs and one output);
//! then looks up Q keys drawn from the array by binary search (the first probes
//! land on the few pages at the top of the implicit search tree, the last ones
//! inside one page: a hot set of index pages and a cold tail). It checks the
//! order and that every key is found, prints what it did, and exits 0 (1 if a
//! check fails).
#![no_std]
#![no_main]

use ulib::{PAGE_SIZE, map, pattern, println, prot};

ulib::entry!(main);

/// u64 words per page.
const WORDS: usize = PAGE_SIZE / 8;

/// Sorts `words` in place (heap sort: no allocation, stays inside the slice).
fn heap_sort(words: &mut [u64]) {
    let n = words.len();
    let sift_down = |words: &mut [u64], mut root: usize, end: usize| {
        while 2 * root + 1 < end {
            let mut child = 2 * root + 1;
            if child + 1 < end && words[child] < words[child + 1] {
                child += 1;
            }
            if words[root] >= words[child] {
                return;
            }
            words.swap(root, child);
            root = child;
        }
    };
    for start in (0..n / 2).rev() {
        sift_down(words, start, n);
    }
    for end in (1..n).rev() {
        words.swap(0, end);
        sift_down(words, 0, end);
    }
}

/// Merges the sorted runs `from[lo..mid]` and `from[mid..hi]` into `to[lo..hi]`.
fn merge(from: &[u64], to: &mut [u64], lo: usize, mid: usize, hi: usize) {
    let (mut i, mut j) = (lo, mid);
    for slot in &mut to[lo..hi] {
        if i < mid && (j >= hi || from[i] <= from[j]) {
            *slot = from[i];
            i += 1;
        } else {
            *slot = from[j];
            j += 1;
        }
    }
}

fn main() -> i32 {
    let mut buf = [0u8; 128];
    let args = ulib::args(&mut buf);
    let number = |key: &str, default: usize| ulib::arg_value(args, key).and_then(|v| v.parse().ok()).unwrap_or(default);
    let nr_pages = number("pages", 1024).max(1);
    let nr_lookups = number("lookups", 20_000);
    let seed = number("seed", 1) as u64;
    let nr_words = nr_pages * WORDS;
    let start_ns = ulib::now_ns();
    let map_words = |n: usize| ulib::mmap(n * 8, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    // SAFETY: two fresh private mappings of nr_words words each, used only through these slices.
    let (mut a, mut b) = unsafe { (core::slice::from_raw_parts_mut(map_words(nr_words), nr_words), core::slice::from_raw_parts_mut(map_words(nr_words), nr_words)) };
    // Phase 1: fill.
    let mut sum = 0u64;
    for (i, word) in a.iter_mut().enumerate() {
        *word = pattern::word(seed, i as u64 * 8);
        sum = sum.wrapping_add(*word);
    }
    // Phase 2: sort, each page in place, then runs of 1, 2, 4, ... pages merged.
    for page in a.chunks_mut(WORDS) {
        heap_sort(page);
    }
    let mut run = WORDS;
    let mut nr_passes = 0;
    while run < nr_words {
        let mut lo = 0;
        while lo < nr_words {
            let mid = (lo + run).min(nr_words);
            let hi = (lo + 2 * run).min(nr_words);
            merge(a, b, lo, mid, hi);
            lo = hi;
        }
        core::mem::swap(&mut a, &mut b);
        run *= 2;
        nr_passes += 1;
    }
    let is_sorted = a.windows(2).all(|w| w[0] <= w[1]) && a.iter().fold(0u64, |s, w| s.wrapping_add(*w)) == sum;
    // Phase 3: look up keys taken from the array (so each must be found).
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut nr_found = 0;
    for _ in 0..nr_lookups {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let key = pattern::word(seed, (state % nr_words as u64) * 8);
        if a.binary_search(&key).is_ok() {
            nr_found += 1;
        }
    }
    println!(
        "sortsearch: {nr_pages} pages sorted in {nr_passes} merge passes ({}), {nr_found} of {nr_lookups} keys found, {} ms",
        if is_sorted { "in order" } else { "NOT in order" },
        (ulib::now_ns() - start_ns) / 1_000_000
    );
    i32::from(!(is_sorted && nr_found == nr_lookups))
}
