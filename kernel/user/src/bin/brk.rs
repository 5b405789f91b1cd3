//! `brk`: the heap grows and shrinks with the program break.
//!
//! Moves the break up by 3 pages, writes and reads them, moves it back, checks
//! `brk(0)`, then grows again and checks the pages came back zeroed (shrinking
//! freed them). Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{PAGE_SIZE, check, println};

ulib::entry!(main);

const NR_PAGES: usize = 3;

fn main() -> i32 {
    let start = ulib::brk(0).expect("brk(0)");
    // Work on whole pages above the break: the page holding an unaligned break
    // may also hold the end of .bss, which shrinking does not free.
    let base = start.next_multiple_of(PAGE_SIZE);
    let top = base + NR_PAGES * PAGE_SIZE;
    check!(ulib::brk(top) == Ok(top), "growing the break from {:#x} to {:#x}", start, top);
    println!("brk: break {:#x} -> {:#x}", start, top);
    for page in 0..NR_PAGES {
        let p = (base + page * PAGE_SIZE) as *mut u64;
        // SAFETY: the page is below the new break, so it is mapped read-write heap.
        unsafe { p.write_volatile(0xb4ea_0000 + page as u64) };
        // SAFETY: as above.
        let value = unsafe { p.read_volatile() };
        check!(value == 0xb4ea_0000 + page as u64, "heap page {} reads {:#x}", page, value);
    }
    check!(ulib::brk(start) == Ok(start), "shrinking the break back to {:#x}", start);
    check!(ulib::brk(0) == Ok(start), "brk(0) after shrinking");

    check!(ulib::brk(top) == Ok(top), "growing the break again");
    for page in 0..NR_PAGES {
        // SAFETY: as above.
        let value = unsafe { ((base + page * PAGE_SIZE) as *const u64).read_volatile() };
        check!(value == 0, "heap page {} kept {:#x} across shrink and grow", page, value);
    }
    check!(ulib::brk(start) == Ok(start), "shrinking the break at the end");
    println!("brk: {} pages written, freed, and back as zeros", NR_PAGES);
    0
}
