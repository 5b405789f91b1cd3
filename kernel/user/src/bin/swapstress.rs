//! `swapstress`: four processes whose memory together is twice the machine's RAM
//! (with the 64 MiB the swap tests run with), every page checked after heavy swapping.
//!
//! Each worker maps 32 MiB, fills every word with a pattern of (pid, address), reads
//! everything back and rewrites it with a second pattern, and checks everything a
//! last time. The four run at once, preempted every tick, so
//! their pages are evicted and read back over and over. A worker exits 0 if no word
//! was ever wrong, 1 otherwise; the parent exits 0 if all four did (with the
//! argument `tolerate=kills`: if none exited 1, some may have been killed by an
//! injected swap read error).
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, WaitStatus, check, map, pattern, println, prot};

ulib::entry!(main);

const NR_WORKERS: usize = 4;
const WORKER_PAGES: usize = 8192;
const NR_ROUNDS: u64 = 1;

/// The pattern seed of round `round` of process `pid`.
fn seed(pid: u64, round: u64) -> u64 {
    (pid << 32) | round
}

fn worker() -> i32 {
    let pid = ulib::getpid() as u64;
    let base = ulib::mmap(WORKER_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    // SAFETY: a fresh private mapping of WORKER_PAGES pages, only used through `base`.
    unsafe { pattern::fill(base, WORKER_PAGES, seed(pid, 0)) };
    for round in 0..NR_ROUNDS {
        // SAFETY: as above.
        let bad = unsafe { pattern::nr_bad_pages(base, WORKER_PAGES, seed(pid, round)) };
        check!(bad == 0, "worker {}: {} pages wrong in round {}", pid, bad, round);
        // SAFETY: as above.
        unsafe { pattern::fill(base, WORKER_PAGES, seed(pid, round + 1)) };
    }
    // SAFETY: as above.
    let bad = unsafe { pattern::nr_bad_pages(base, WORKER_PAGES, seed(pid, NR_ROUNDS)) };
    check!(bad == 0, "worker {}: {} pages wrong at the end", pid, bad);
    let stat = ulib::memstat().expect("memstat");
    println!(
        "swapstress: worker {} verified {} pages x {} rounds: {} major faults, {} swapped out, {} swapped in",
        pid,
        WORKER_PAGES,
        NR_ROUNDS + 1,
        stat.major_faults,
        stat.swap_out_pages,
        stat.swap_in_pages
    );
    // Not every worker must swap: one that runs while the others wait for the disk
    // may fit in RAM (32 MiB of the 52 MiB free) and end with no major fault (CI,
    // session 14, once the exit gave memory back at once). The callers check that
    // the four together swapped a lot (`tests/swap_pressure.rs`: > 8 192 pages each way).
    0
}

fn main() -> i32 {
    let stat = ulib::memstat().expect("memstat");
    println!(
        "swapstress: {} workers x {} MiB on {} MiB of RAM, {} MiB of swap",
        NR_WORKERS,
        (WORKER_PAGES * PAGE_SIZE) >> 20,
        (stat.total_frames * PAGE_SIZE as u64) >> 20,
        (stat.total_swap_slots * PAGE_SIZE as u64) >> 20
    );
    for _ in 0..NR_WORKERS {
        if let Fork::Child = ulib::fork().expect("fork") {
            ulib::exit(worker());
        }
    }
    // `tolerate=kills` (for runs with injected disk errors): a worker killed because
    // a page it needed could not be read back is expected; one that saw a wrong
    // word (exit 1) never is.
    let mut args = [0u8; 128];
    let tolerates_kills = ulib::arg_value(ulib::args(&mut args), "tolerate") == Some("kills");
    let (mut nr_ok, mut nr_killed) = (0, 0);
    for _ in 0..NR_WORKERS {
        let (pid, status) = ulib::wait().expect("wait");
        println!("swapstress: worker {} {}", pid, status);
        nr_ok += usize::from(status == WaitStatus::Exited(0));
        nr_killed += usize::from(status == WaitStatus::Killed(ulib::SIGKILL));
    }
    println!("swapstress: {nr_ok} workers intact, {nr_killed} killed, {} failed", NR_WORKERS - nr_ok - nr_killed);
    let nr_allowed = if tolerates_kills { nr_ok + nr_killed } else { nr_ok };
    check!(nr_allowed == NR_WORKERS, "{} of {} workers failed", NR_WORKERS - nr_allowed, NR_WORKERS);
    0
}
