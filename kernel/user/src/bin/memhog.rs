//! `memhog`: takes memory until there is none, checking that none of it is corrupted.
//!
//! Maps and touches 4 MiB at a time. Each page gets a tag derived from the pid and
//! the page's address in its first and last word; every 16 MiB all pages so far
//! are checked (which reads swapped-out pages back in). Ends with exit 0 when
//! `mmap` fails or after 4 GiB, exit 1 on a wrong tag; with overcommit, the
//! expected end on a small machine is being killed by the OOM killer.
#![no_std]
#![no_main]

use ulib::{PAGE_SIZE, Pid, check, map, println, prot};

ulib::entry!(main);

const CHUNK_BYTES: usize = 4 << 20;
const MAX_CHUNKS: usize = 1024;
const VERIFY_EVERY: usize = 4;
const LAST_WORD: usize = PAGE_SIZE / 8 - 1;

/// The value page `page` of process `pid` holds.
fn tag(pid: Pid, page: *mut u64) -> u64 {
    (page as u64) ^ ((pid as u64) << 48) ^ 0x6d65_6d68_6f67
}

/// Writes the tag into every page of the chunk.
fn fill(pid: Pid, chunk: *mut u8) {
    for offset in (0..CHUNK_BYTES).step_by(PAGE_SIZE) {
        // SAFETY: the page is inside a read-write mapping only this program uses, by raw pointer.
        unsafe {
            let page = chunk.add(offset) as *mut u64;
            page.write_volatile(tag(pid, page));
            page.add(LAST_WORD).write_volatile(!tag(pid, page));
        }
    }
}

/// Checks every tag in the chunks; exits with 1 at the first wrong one.
fn verify(pid: Pid, chunks: &[*mut u8]) {
    for &chunk in chunks {
        for offset in (0..CHUNK_BYTES).step_by(PAGE_SIZE) {
            // SAFETY: as in `fill`.
            let (first, last, page) = unsafe {
                let page = chunk.add(offset) as *mut u64;
                (page.read_volatile(), page.add(LAST_WORD).read_volatile(), page)
            };
            check!(
                first == tag(pid, page) && last == !tag(pid, page),
                "page {:p} holds {:#x} {:#x}",
                page,
                first,
                last
            );
        }
    }
}

fn main() -> i32 {
    let pid = ulib::getpid();
    let mut chunks = [core::ptr::null_mut(); MAX_CHUNKS];
    let mut nr_chunks = 0;
    while nr_chunks < MAX_CHUNKS {
        let chunk = match ulib::mmap(CHUNK_BYTES, prot::READ | prot::WRITE, map::PRIVATE) {
            Ok(chunk) => chunk,
            Err(e) => {
                println!("memhog: mmap failed with {:?}", e);
                break;
            }
        };
        fill(pid, chunk);
        chunks[nr_chunks] = chunk;
        nr_chunks += 1;
        if nr_chunks % VERIFY_EVERY == 0 {
            verify(pid, &chunks[..nr_chunks]);
            let stat = ulib::memstat().expect("memstat");
            println!(
                "memhog: {} MiB touched and verified; rss {} pages, {} in swap, {} free frames",
                (nr_chunks * CHUNK_BYTES) >> 20,
                stat.rss_pages,
                stat.swap_pages,
                stat.free_frames
            );
        }
    }
    verify(pid, &chunks[..nr_chunks]);
    println!("memhog: done after {} MiB, all verified", (nr_chunks * CHUNK_BYTES) >> 20);
    0
}
