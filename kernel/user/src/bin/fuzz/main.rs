//! `fuzz`: a model-checked random-operation fuzzer of the memory manager (issue #10).
//!
//! For each seed, a *worker* process runs `ops` random operations, each drawn from
//! a xorshift generator seeded with it: mmap (random sizes and protections,
//! private and shared, MAP_FIXED into its own arena, and where the kernel likes),
//! munmap, mprotect and madvise (DONTNEED, PAGEOUT, WILLNEED, HUGEPAGE,
//! NOHUGEPAGE, MERGEABLE, UNMERGEABLE) over random and partly unmapped ranges, transparent huge pages
//! (a 2 MiB block mapped, advised, written, and cut by a partial munmap), same-page
//! merging (a MERGEABLE range, some of its pages zeroed, a `ksm_ctl` scan), bad arguments with Linux's errno, brk up and down,
//! reads and writes checked against a model of every page's contents, syscalls
//! writing into random pages, synchronous and background children, forbidden
//! accesses that must get a child killed (`worker.rs`, `children.rs`), and a file
//! mapped shared and private, written through the mappings and with `write(2)`,
//! msynced, truncated, unmapped and read back both ways (`files.rs`). The model
//! (`model.rs`) is Linux's behaviour: every case issue #10 reported as a
//! difference from Linux is fixed, so the generator steers around none.
//!
//! The program itself is the *driver*: before and after each worker it asks the
//! kernel for its consistency audit (`audit` syscall) and checks that free frames
//! and free swap slots are back where they were. It exits 0 when every seed passed.
//!
//! Arguments (words of the `args` string; `run=fuzz` passes the kernel command line):
//! `seed=N` or `seeds=A,B,C` (default 1), `ops=M` per seed (default 10000),
//! `pages=P` arena pages (default 2048 = 8 MiB), `ballast=MIB` of memory each worker
//! fills once and checks at its end (default 0; it pushes the machine into reclaim
//! and swap), `lie=N` (a self-test: at operation N the model is told one wrong
//! thing about a page, so the run must fail). A failure prints the seed, the operation index,
//! the last operations and the command that replays it:
//! `cargo run --release -- --memory 64M --cmdline "run=fuzz seed=N ops=M"`.
#![no_std]
#![no_main]

mod children;
mod files;
mod garbage;
mod log;
mod model;
mod worker;

use ulib::{Fork, MemStat, WaitStatus, println};

use model::{MAX_BRK_PAGES, PageModel};
use worker::{Config, Worker};

ulib::entry!(main);

/// The most seeds one run takes.
const MAX_SEEDS: usize = 64;
/// The largest arena.
const MAX_ARENA_PAGES: usize = 1 << 16;

fn main() -> i32 {
    let mut buf = [0u8; 512];
    let args = ulib::args(&mut buf);
    let Some((cfg, seeds, nr_seeds)) = parse(args) else { return 2 };
    println!(
        "fuzz: {} seed(s) x {} operations, arena {} pages, ballast {} pages",
        nr_seeds, cfg.nr_ops, cfg.nr_arena, cfg.nr_ballast
    );
    let model_len = (cfg.nr_arena + MAX_BRK_PAGES) * core::mem::size_of::<PageModel>();
    let Ok(model_mem) = ulib::mmap(model_len, ulib::prot::READ | ulib::prot::WRITE, ulib::map::PRIVATE) else {
        println!("fuzz: FAIL: no memory for the model");
        return 1;
    };
    let start_ns = ulib::now_ns();
    let mut total_ops = 0;
    for &seed in &seeds[..nr_seeds] {
        let before = settled_counts("before", seed);
        match ulib::fork() {
            Ok(Fork::Child) => {
                let nr = cfg.nr_arena + MAX_BRK_PAGES;
                // SAFETY: `model_mem` is a fresh private read-write mapping of
                // `nr` `PageModel`s (zero bytes are a valid, unmapped `PageModel`),
                // and only this slice refers to it in this process.
                let pages = unsafe { core::slice::from_raw_parts_mut(model_mem.cast::<PageModel>(), nr) };
                let mut worker = Worker::new(cfg, seed, pages);
                worker.run(cfg.nr_ops);
                ulib::exit(0)
            }
            Ok(Fork::Parent(pid)) => match ulib::waitpid(pid) {
                Ok((_, WaitStatus::Exited(0))) => {}
                other => {
                    println!("fuzz: FAIL: seed {seed}: worker {pid} ended {other:?} (report above)");
                    return 1;
                }
            },
            Err(e) => {
                println!("fuzz: FAIL: fork of the worker for seed {seed}: {e:?}");
                return 1;
            }
        }
        let after = settled_counts("after", seed);
        total_ops += cfg.nr_ops;
        if after.0 != before.0 {
            println!("fuzz: FAIL: seed {seed}: free + heap + user frames {} before, {} after (leak)", before.0, after.0);
            return 1;
        }
        println!("fuzz: seed {seed}: {} operations OK; no frame or slot leaked", cfg.nr_ops);
    }
    let ms = (ulib::now_ns() - start_ns) / 1_000_000;
    println!("fuzz: PASS: {nr_seeds} seed(s), {total_ops} operations, 0 mismatches, 0 leaks, in {ms} ms");
    0
}

/// Runs the kernel's audit and returns (free frames + kernel-heap frames + user
/// frames, swap slots in use); exits with 1 if the audit fails.
///
/// Between workers the only user memory is the driver's own, which reclaim may
/// move between frames, the swap cache and swap: a frame is leaked when it is none
/// of free, heap or user (the audit checks the user frames and every slot's users).
/// The slot count is printed; a slot nobody uses fails the audit itself.
fn settled_counts(when: &str, seed: u64) -> (u64, u64) {
    let report = match ulib::audit() {
        Ok(report) => report,
        Err(e) => {
            println!("fuzz: FAIL: the kernel's audit {when} seed {seed}: {e:?} (violation above)");
            ulib::exit(1)
        }
    };
    let stat: MemStat = ulib::memstat().unwrap_or_default();
    println!(
        "fuzz: audit {when} seed {seed}: consistent; free {} heap {} user {} frames; {} slots used (the driver has {} pages in swap)",
        report.free_frames, report.heap_frames, report.user_frames, report.used_slots, stat.swap_pages
    );
    (report.free_frames + report.heap_frames + report.user_frames, report.used_slots)
}

/// Reads the arguments; prints what is wrong and returns `None` on a bad word.
fn parse(args: &str) -> Option<(Config, [u64; MAX_SEEDS], usize)> {
    let number = |key: &str, default: u64| -> Option<u64> {
        match ulib::arg_value(args, key) {
            None => Some(default),
            Some(text) => text.parse().ok().or_else(|| {
                println!("fuzz: {key}={text}: not a number");
                None
            }),
        }
    };
    let mut seeds = [0u64; MAX_SEEDS];
    let mut nr_seeds = 0;
    let list = ulib::arg_value(args, "seeds").or(ulib::arg_value(args, "seed")).unwrap_or("1");
    for word in list.split(',') {
        let Ok(seed) = word.parse() else {
            println!("fuzz: seed {word:?}: not a number");
            return None;
        };
        if nr_seeds == MAX_SEEDS {
            println!("fuzz: at most {MAX_SEEDS} seeds");
            return None;
        }
        seeds[nr_seeds] = seed;
        nr_seeds += 1;
    }
    let nr_arena = number("pages", 2048)? as usize;
    if !(64..=MAX_ARENA_PAGES).contains(&nr_arena) {
        println!("fuzz: pages={nr_arena}: must be 64..={MAX_ARENA_PAGES}");
        return None;
    }
    let nr_ballast = number("ballast", 0)? as usize * 256;
    let lie_at = number("lie", 0)?;
    Some((Config { nr_arena, nr_ops: number("ops", 10_000)?, lie_at, nr_ballast }, seeds, nr_seeds))
}
