//! `sortstorm`: many processes swapping at once, the workload that once panicked the
//! kernel (issue #10, item 1: "memory allocation of 768 bytes failed" on the reclaim
//! path).
//!
//! The parent maps a 4 MiB `MAP_SHARED` buffer and fills it with pseudo-random
//! words, then forks 16 children. Each child maps 6 MiB of private memory and fills
//! it with its own pattern, sorts its sixteenth of the shared buffer in place,
//! checks its private memory, and exits 0. The parent waits for all of them and
//! checks that every chunk is sorted and still holds the same multiset of words (a
//! sum and an xor per chunk). On a 40 MiB machine the children need ~100 MiB: the
//! kernel swaps hard, with 17 processes faulting at once. Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, Pid, WaitStatus, check, map, pattern, println, prot};

ulib::entry!(main);

const SHARED_BYTES: usize = 4 << 20;
const NR_CHILDREN: usize = 16;
const PRIVATE_PAGES: usize = (6 << 20) / PAGE_SIZE;
const CHUNK_WORDS: usize = SHARED_BYTES / 8 / NR_CHILDREN;

/// Returns the pseudo-random word at index `i` of the shared buffer.
fn shared_word(i: usize) -> u64 {
    pattern::word(0x5eed, i as u64 * 8)
}

/// Returns (wrapping sum, xor) of the words chunk `chunk` starts with.
fn chunk_digest(chunk: usize) -> (u64, u64) {
    let words = (chunk * CHUNK_WORDS..(chunk + 1) * CHUNK_WORDS).map(shared_word);
    words.fold((0u64, 0u64), |(sum, xor), w| (sum.wrapping_add(w), xor ^ w))
}

fn child(shared: *mut u64, chunk: usize) -> i32 {
    let seed = ulib::getpid() as u64;
    let private = ulib::mmap(PRIVATE_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    // SAFETY: a fresh private mapping, only used through `private`.
    unsafe { pattern::fill(private, PRIVATE_PAGES, seed) };
    // SAFETY: chunk `chunk` of the shared buffer is this child's alone until it exits;
    // the parent reads it only after wait.
    let words = unsafe { core::slice::from_raw_parts_mut(shared.add(chunk * CHUNK_WORDS), CHUNK_WORDS) };
    words.sort_unstable();
    // SAFETY: as above.
    let bad = unsafe { pattern::nr_bad_pages(private, PRIVATE_PAGES, seed) };
    check!(bad == 0, "sortstorm: child {} found {} private pages wrong", chunk, bad);
    0
}

fn main() -> i32 {
    let shared = ulib::mmap(SHARED_BYTES, prot::READ | prot::WRITE, map::SHARED).expect("mmap shared") as *mut u64;
    for i in 0..SHARED_BYTES / 8 {
        // SAFETY: inside the shared mapping, which no child exists yet to touch.
        unsafe { shared.add(i).write_volatile(shared_word(i)) };
    }
    let mut children: [Pid; NR_CHILDREN] = [0; NR_CHILDREN];
    for (chunk, pid) in children.iter_mut().enumerate() {
        *pid = match ulib::fork() {
            Ok(Fork::Child) => ulib::exit(child(shared, chunk)),
            Ok(Fork::Parent(pid)) => pid,
            Err(e) => {
                println!("sortstorm: fork {} failed: {:?}", chunk, e);
                return 2;
            }
        };
    }
    let mut nr_failed = 0;
    for pid in children {
        let (pid, status) = ulib::waitpid(pid).expect("wait");
        if status != WaitStatus::Exited(0) {
            println!("sortstorm: child {} {}", pid, status);
            nr_failed += 1;
        }
    }
    check!(nr_failed == 0, "sortstorm: {} children failed", nr_failed);
    for chunk in 0..NR_CHILDREN {
        // SAFETY: every child has exited; the mapping is ours.
        let words = unsafe { core::slice::from_raw_parts(shared.add(chunk * CHUNK_WORDS), CHUNK_WORDS) };
        check!(words.is_sorted(), "sortstorm: chunk {} is not sorted", chunk);
        let digest = words.iter().fold((0u64, 0u64), |(sum, xor), &w| (sum.wrapping_add(w), xor ^ w));
        check!(digest == chunk_digest(chunk), "sortstorm: chunk {} lost or changed words", chunk);
    }
    println!("sortstorm: {} children sorted {} MiB of shared memory, each holding {} MiB private", NR_CHILDREN, SHARED_BYTES >> 20, (PRIVATE_PAGES * PAGE_SIZE) >> 20);
    0
}
