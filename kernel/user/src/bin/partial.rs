//! `partial`: `munmap` and `mprotect` of part of a VMA split it.
//!
//! Unmapping the middle page of a 3-page mapping leaves two VMAs; making the
//! middle page of another 3-page read-write mapping read-only leaves three (rw-,
//! r--, rw-). Counts the `maps` lines inside each range, checks that `maps` has as
//! many lines as `memstat` says there are VMAs, and prints the map. Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{PAGE_SIZE, check, map, println, prot};

ulib::entry!(main);

/// Room for the text of `maps`; a handful of lines of under 100 bytes each.
const MAPS_BYTES: usize = 4096;

/// One line of `maps`: `start-end perms ...`, hex addresses.
struct MapsLine<'a> {
    start: usize,
    end: usize,
    perms: &'a str,
}

fn parse_line(line: &str) -> Option<MapsLine<'_>> {
    let (range, rest) = line.split_once(' ')?;
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    Some(MapsLine { start, end, perms: rest.get(..3)? })
}

/// Reads `maps` into `buf` and returns its text.
fn read_maps(buf: &mut [u8; MAPS_BYTES]) -> &str {
    let len = ulib::maps(buf).expect("maps");
    check!(len < MAPS_BYTES, "maps filled the whole {}-byte buffer", MAPS_BYTES);
    core::str::from_utf8(&buf[..len]).expect("maps text is not UTF-8")
}

/// Returns the permissions of every `maps` line that overlaps `[start, start + 3 pages)`.
fn perms_in_range(text: &str, start: usize) -> [&str; 4] {
    let end = start + 3 * PAGE_SIZE;
    let mut perms = [""; 4];
    let lines = text.lines().filter_map(parse_line).filter(|l| l.start < end && start < l.end);
    for (slot, line) in perms.iter_mut().zip(lines) {
        *slot = line.perms;
    }
    perms
}

fn main() -> i32 {
    let mut buf = [0u8; MAPS_BYTES];
    let rw = prot::READ | prot::WRITE;

    let a = ulib::mmap(3 * PAGE_SIZE, rw, map::PRIVATE).expect("mmap") as usize;
    check!(perms_in_range(read_maps(&mut buf), a) == ["rw-", "", "", ""], "a fresh mapping is not one rw- VMA");
    // SAFETY: nothing points into the mapping; only its address is kept.
    unsafe { ulib::munmap((a + PAGE_SIZE) as *mut u8, PAGE_SIZE) }.expect("munmap of the middle page");
    let perms = perms_in_range(read_maps(&mut buf), a);
    println!("partial: munmap of the middle page of {:#x}: {:?}", a, perms);
    check!(perms == ["rw-", "rw-", "", ""], "expected two rw- VMAs");

    let b = ulib::mmap(3 * PAGE_SIZE, rw, map::PRIVATE).expect("mmap") as usize;
    // SAFETY: as above.
    unsafe { ulib::mprotect((b + PAGE_SIZE) as *mut u8, PAGE_SIZE, prot::READ) }.expect("mprotect");
    let text = read_maps(&mut buf);
    let perms = perms_in_range(text, b);
    println!("partial: mprotect(READ) of the middle page of {:#x}: {:?}", b, perms);
    check!(perms == ["rw-", "r--", "rw-", ""], "expected rw-, r--, rw-");

    let nr_vmas = ulib::memstat().expect("memstat").nr_vmas;
    println!("partial: {} VMAs:\n{}", nr_vmas, text);
    check!(text.lines().count() as u64 == nr_vmas, "maps has {} lines", text.lines().count());
    0
}
