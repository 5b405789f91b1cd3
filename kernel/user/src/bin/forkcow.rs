//! `forkcow`: after `fork`, parent and children share pages copy-on-write.
//!
//! Fills 8 pages with the parent's pattern, forks 3 children; each child checks it
//! sees the parent's pattern, writes its own (taking COW faults) and verifies it.
//! The parent waits for all three, checks they exited 0, and that its own pages
//! still hold its pattern. Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{Errno, Fork, PAGE_SIZE, WaitStatus, check, map, println, prot};

ulib::entry!(main);

const NR_PAGES: usize = 8;
const NR_WORDS: usize = NR_PAGES * PAGE_SIZE / 8;
const NR_CHILDREN: usize = 3;

/// Returns word `i` of the pattern of process number `who` (0 = parent).
fn pattern(who: usize, i: usize) -> u64 {
    ((who as u64 + 1) << 56) ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn fill(words: &mut [u64], who: usize) {
    for (i, w) in words.iter_mut().enumerate() {
        *w = pattern(who, i);
    }
}

/// Returns the index of the first word that does not hold `who`'s pattern.
fn first_mismatch(words: &[u64], who: usize) -> Option<usize> {
    words.iter().enumerate().position(|(i, &w)| w != pattern(who, i))
}

fn main() -> i32 {
    let base = ulib::mmap(NR_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap");
    // SAFETY: a fresh private read-write mapping of NR_WORDS words, used only through this slice.
    let words = unsafe { core::slice::from_raw_parts_mut(base as *mut u64, NR_WORDS) };
    fill(words, 0);

    let mut children = [0; NR_CHILDREN];
    for (k, child_pid) in children.iter_mut().enumerate() {
        match ulib::fork().expect("fork") {
            Fork::Child => ulib::exit(child(words, k + 1)),
            Fork::Parent(pid) => *child_pid = pid,
        }
    }
    println!("forkcow: parent {} forked children {:?}", ulib::getpid(), children);
    for _ in 0..NR_CHILDREN {
        let (pid, status) = ulib::wait().expect("wait");
        println!("forkcow: child {} {}", pid, status);
        check!(children.contains(&pid), "reaped {}, not one of our children", pid);
        check!(status == WaitStatus::Exited(0), "child {} failed", pid);
    }
    check!(ulib::wait() == Err(Errno::ECHILD), "a fourth child to wait for");
    check!(first_mismatch(words, 0).is_none(), "the parent's pages changed under it");
    println!("forkcow: parent's {} pages unchanged", NR_PAGES);
    0
}

/// Runs child number `who`: checks the inherited pattern, writes and checks its own.
fn child(words: &mut [u64], who: usize) -> i32 {
    check!(first_mismatch(words, 0).is_none(), "child {} does not see the parent's pattern", who);
    let before = ulib::memstat().expect("memstat");
    fill(words, who);
    let after = ulib::memstat().expect("memstat");
    let nr_cow = after.cow_faults - before.cow_faults;
    check!(first_mismatch(words, who).is_none(), "child {} lost its own pattern", who);
    check!(nr_cow >= NR_PAGES as u64, "child {}: {} COW faults for {} shared pages", who, nr_cow, NR_PAGES);
    println!("forkcow: child {} (pid {}) rewrote {} pages with {} COW faults", who, ulib::getpid(), NR_PAGES, nr_cow);
    0
}
