//! `failstorm`: forks, copy-on-write, swap-out and swap-in while the kernel fails
//! allocations on purpose (the `fail_inject` test turns fault injection on).
//!
//! The parent fills a 1 MiB shared mapping and 1 MiB of private memory, then runs 4
//! rounds of 6 concurrent children. Each child fills 2 MiB of its own, rewrites a
//! page of the inherited private memory (a COW copy), forks a grandchild that
//! checks the inherited pages, pages half of its memory out (`MADV_PAGEOUT`) and
//! checks everything again. A fork refused with ENOMEM is retried (it is what an
//! injected failure should look like), up to 1000 times. Every child is waited for,
//! so nothing is orphaned. A child killed by the OOM killer is allowed (an
//! injected failure may end in an OOM decision); wrong data is not.
//!
//! Exit 0 if no process found wrong data; prints how many forks were refused and
//! how the children ended.
#![no_std]
#![no_main]

use ulib::{Errno, Fork, PAGE_SIZE, Pid, SIGKILL, WaitStatus, check, madv, map, pattern, println, prot};

ulib::entry!(main);

const SHARED_PAGES: usize = 256;
const INHERITED_PAGES: usize = 256;
const OWN_PAGES: usize = 512;
const NR_ROUNDS: usize = 4;
const NR_CHILDREN: usize = 6;
const PARENT_SEED: u64 = 0xfa11;
const SHARED_SEED: u64 = 0x5a5a;

/// Forks, retrying while the kernel says ENOMEM; counts the refusals in `nr_enomem`.
fn fork_retrying(nr_enomem: &mut u64) -> Result<Fork, Errno> {
    for _ in 0..1000 {
        match ulib::fork() {
            Err(Errno::ENOMEM) => {
                *nr_enomem += 1;
                ulib::yield_now();
            }
            other => return other,
        }
    }
    Err(Errno::ENOMEM)
}

/// Returns the number of pages of `nr_pages` from `base` not holding `seed`'s pattern.
fn nr_bad(base: *const u64, nr_pages: usize, seed: u64) -> usize {
    // SAFETY: every caller passes a mapping of at least `nr_pages` readable pages.
    unsafe { pattern::nr_bad_pages(base, nr_pages, seed) }
}

fn grandchild(shared: *const u64, inherited: *const u64) -> i32 {
    check!(nr_bad(shared, SHARED_PAGES, SHARED_SEED) == 0, "failstorm: grandchild: shared pages wrong");
    // Page 0 is the child's COW copy (rewritten with the child's seed); the rest is the parent's.
    // SAFETY: page 1 onwards of the inherited mapping.
    let rest = unsafe { inherited.add(PAGE_SIZE / 8) };
    check!(nr_bad(rest, INHERITED_PAGES - 1, PARENT_SEED) == 0, "failstorm: grandchild: inherited pages wrong");
    0
}

fn child(shared: *const u64, inherited: *mut u64) -> i32 {
    let seed = ulib::getpid() as u64;
    let own = ulib::mmap(OWN_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    // SAFETY: a fresh private mapping, and page 0 of our own copy of the inherited one.
    unsafe {
        pattern::fill(own, OWN_PAGES, seed);
        pattern::fill(inherited, 1, seed);
    }
    let mut nr_enomem = 0;
    match fork_retrying(&mut nr_enomem) {
        Ok(Fork::Child) => ulib::exit(grandchild(shared, inherited)),
        Ok(Fork::Parent(pid)) => {
            let (_, status) = ulib::waitpid(pid).expect("wait for the grandchild");
            check!(matches!(status, WaitStatus::Exited(0) | WaitStatus::Killed(SIGKILL)), "failstorm: grandchild {}", status);
        }
        Err(e) => println!("failstorm: child {}: fork gave up: {:?}", seed, e),
    }
    // SAFETY: the first half of our own mapping.
    let _ = unsafe { ulib::madvise(own as *mut u8, OWN_PAGES / 2 * PAGE_SIZE, madv::PAGEOUT) };
    check!(nr_bad(own, OWN_PAGES, seed) == 0, "failstorm: child {}: own pages wrong after pageout", seed);
    check!(nr_bad(inherited, 1, seed) == 0, "failstorm: child {}: its COW copy is wrong", seed);
    // SAFETY: page 1 onwards of the inherited mapping.
    let rest = unsafe { inherited.add(PAGE_SIZE / 8) };
    check!(nr_bad(rest, INHERITED_PAGES - 1, PARENT_SEED) == 0, "failstorm: child {}: inherited pages wrong", seed);
    check!(nr_bad(shared, SHARED_PAGES, SHARED_SEED) == 0, "failstorm: child {}: shared pages wrong", seed);
    0
}

fn main() -> i32 {
    let shared = ulib::mmap(SHARED_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::SHARED).expect("mmap") as *mut u64;
    let inherited = ulib::mmap(INHERITED_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    // SAFETY: fresh mappings of the sizes given.
    unsafe {
        pattern::fill(shared, SHARED_PAGES, SHARED_SEED);
        pattern::fill(inherited, INHERITED_PAGES, PARENT_SEED);
    }
    let (mut nr_enomem, mut nr_ok, mut nr_oom_killed, mut nr_gave_up) = (0u64, 0, 0, 0);
    for _ in 0..NR_ROUNDS {
        let mut pids: [Pid; NR_CHILDREN] = [0; NR_CHILDREN];
        for pid in pids.iter_mut() {
            match fork_retrying(&mut nr_enomem) {
                Ok(Fork::Child) => ulib::exit(child(shared, inherited)),
                Ok(Fork::Parent(child)) => *pid = child,
                Err(_) => nr_gave_up += 1,
            }
        }
        for pid in pids.into_iter().filter(|&pid| pid != 0) {
            let (_, status) = ulib::waitpid(pid).expect("wait");
            match status {
                WaitStatus::Exited(0) => nr_ok += 1,
                WaitStatus::Killed(SIGKILL) => nr_oom_killed += 1,
                other => {
                    println!("failstorm: child {} {}", pid, other);
                    return 1;
                }
            }
        }
    }
    check!(nr_bad(inherited, INHERITED_PAGES, PARENT_SEED) == 0, "failstorm: parent: private pages wrong");
    check!(nr_bad(shared, SHARED_PAGES, SHARED_SEED) == 0, "failstorm: parent: shared pages wrong");
    println!(
        "failstorm: {} children finished, {} killed by the OOM killer, {} forks gave up; {} forks refused with ENOMEM and retried",
        nr_ok, nr_oom_killed, nr_gave_up, nr_enomem
    );
    0
}
