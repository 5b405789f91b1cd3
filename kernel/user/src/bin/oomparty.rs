//! `oomparty`: one process eats memory until memory and swap are both gone; the OOM
//! killer must kill it (it is the largest), and two small workers must finish with
//! their data intact.
//!
//! The parent maps one shared page (a flag), forks two workers that fill 2 MiB each
//! and re-verify it in a loop until the flag is set, then forks the hog, which maps
//! and fills 1 MiB after 1 MiB forever. The parent waits for the hog and expects it
//! killed (SIGKILL), sets the flag, and expects both workers to exit 0. Exit 0 on
//! success; run with little RAM and swap (the oom test boots with 64 + 32 MiB).
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, Pid, SIGKILL, WaitStatus, check, map, pattern, println, prot};

ulib::entry!(main);

const WORKER_PAGES: usize = 512;
const HOG_CHUNK_PAGES: usize = 256;

fn worker(flag: *mut u64) -> i32 {
    let seed = ulib::getpid() as u64;
    let base = ulib::mmap(WORKER_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    // SAFETY: a fresh private mapping, only used through `base`.
    unsafe { pattern::fill(base, WORKER_PAGES, seed) };
    let mut rounds = 0u64;
    loop {
        // SAFETY: as above.
        let bad = unsafe { pattern::nr_bad_pages(base, WORKER_PAGES, seed) };
        check!(bad == 0, "worker {}: {} pages wrong after {} rounds", seed, bad, rounds);
        rounds += 1;
        // SAFETY: the shared flag page stays mapped for the program's life.
        if unsafe { flag.read_volatile() } != 0 {
            break;
        }
        ulib::yield_now();
    }
    println!("oomparty: worker {} verified its {} pages {} times and survived", seed, WORKER_PAGES, rounds);
    0
}

fn hog() -> i32 {
    let seed = ulib::getpid() as u64;
    let mut nr_chunks = 0usize;
    loop {
        let Ok(chunk) = ulib::mmap(HOG_CHUNK_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE) else {
            println!("oomparty: hog: mmap failed after {} MiB", (nr_chunks * HOG_CHUNK_PAGES * PAGE_SIZE) >> 20);
            return 3;
        };
        // SAFETY: a fresh private mapping, only used through `chunk`.
        unsafe { pattern::fill(chunk as *mut u64, HOG_CHUNK_PAGES, seed) };
        nr_chunks += 1;
        if nr_chunks % 16 == 0 {
            let stat = ulib::memstat().expect("memstat");
            println!("oomparty: hog at {} MiB: rss {} pages, {} in swap", (nr_chunks * HOG_CHUNK_PAGES * PAGE_SIZE) >> 20, stat.rss_pages, stat.swap_pages);
        }
    }
}

fn spawn(child: impl FnOnce() -> i32) -> Pid {
    match ulib::fork().expect("fork") {
        Fork::Child => ulib::exit(child()),
        Fork::Parent(pid) => pid,
    }
}

fn main() -> i32 {
    let flag = ulib::mmap(PAGE_SIZE, prot::READ | prot::WRITE, map::SHARED).expect("mmap shared") as *mut u64;
    let workers = [spawn(|| worker(flag)), spawn(|| worker(flag))];
    let hog_pid = spawn(hog);
    let (pid, status) = ulib::waitpid(hog_pid).expect("wait for the hog");
    println!("oomparty: hog {} {}", pid, status);
    check!(status == WaitStatus::Killed(SIGKILL), "the hog was not killed: {}", status);
    // SAFETY: the shared page is mapped; the workers read it with volatile loads.
    unsafe { flag.write_volatile(1) };
    for worker in workers {
        let (pid, status) = ulib::waitpid(worker).expect("wait for a worker");
        check!(status == WaitStatus::Exited(0), "worker {} {}", pid, status);
    }
    println!("oomparty: the hog was killed, both workers finished");
    0
}

