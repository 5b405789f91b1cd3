//! The background cleaner (`mm/cleaner.rs`): with it on, most of the victims
//! reclaim takes under `thrash` are clean (written ahead, so freed without a
//! write), more than with it off; with it on, `swapstress` (every word checked)
//! loses nothing and the audit stays clean.
//!
//! This image asks the runner for 64 MiB of RAM; the `thrash` runs take most of it
//! away first (a balloon), so that its 6144 pages swap.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use kernel::arch::timer;
use kernel::mm::cleaner::{self, CleanerStats};
use kernel::mm::frame;
use kernel::mm::vmstat::{self, SwapEvent};
use kernel::mm::{check, heap, page_cache, swap};
use kernel::println;
use kernel::proc::{self, task::WaitStatus};
use kernel::testing::balloon_leaving;

kernel::runner_args!(b"--memory 64M --timeout 240");

kernel::test_kernel!();

/// What reclaim's victims were during one run.
#[derive(Debug)]
struct VictimCount {
    /// Victims written by reclaim (dirty when reclaim reached them).
    nr_written: u64,
    /// Victims freed without a write (their slot held them).
    nr_clean: u64,
    wall_ms: u64,
    cleaner: CleanerStats,
}

impl VictimCount {
    /// The share of clean victims, in percent.
    fn clean_percent(&self) -> u64 {
        100 * self.nr_clean / (self.nr_clean + self.nr_written).max(1)
    }
}

/// Runs `name` (it must exit 0) with the cleaner on or off and 3000 frames free.
fn run_counting(name: &str, is_cleaner_on: bool) -> VictimCount {
    cleaner::set_enabled(is_cleaner_on);
    let balloon = balloon_leaving(3000);
    let (written, clean, before) =
        (vmstat::nr_events(SwapEvent::SwapOut), vmstat::nr_events(SwapEvent::ReclaimedClean), cleaner::stats());
    let start = timer::uptime_ms();
    let pid = proc::spawn(name).expect("spawn");
    assert_eq!(proc::wait(Some(pid)).expect("wait").1, WaitStatus::Exited(0), "{name} failed");
    let wall_ms = timer::uptime_ms() - start;
    let after = cleaner::stats();
    drop(balloon);
    cleaner::set_enabled(true);
    VictimCount {
        nr_written: vmstat::nr_events(SwapEvent::SwapOut) - written,
        nr_clean: vmstat::nr_events(SwapEvent::ReclaimedClean) - clean,
        wall_ms,
        cleaner: CleanerStats {
            nr_cleaned: after.nr_cleaned - before.nr_cleaned,
            nr_clean_at_eviction: after.nr_clean_at_eviction - before.nr_clean_at_eviction,
            nr_wasted: after.nr_wasted - before.nr_wasted,
            nr_passes: after.nr_passes - before.nr_passes,
            nr_file_wakeups: after.nr_file_wakeups - before.nr_file_wakeups,
        },
    }
}

#[test_case]
fn with_the_cleaner_on_more_victims_under_thrash_are_clean_and_swapstress_loses_no_page() {
    let off = run_counting("thrash", false);
    let on = run_counting("thrash", true);
    println!(
        "thrash, cleaner off: {} victims written, {} clean ({}%), {} ms",
        off.nr_written, off.nr_clean, off.clean_percent(), off.wall_ms
    );
    println!(
        "thrash, cleaner on:  {} victims written, {} clean ({}%), {} ms; cleaner wrote {} pages in {} passes, {} of them evicted clean, {} written again first (wasted)",
        on.nr_written, on.nr_clean, on.clean_percent(), on.wall_ms,
        on.cleaner.nr_cleaned, on.cleaner.nr_passes, on.cleaner.nr_clean_at_eviction, on.cleaner.nr_wasted
    );
    assert!(off.nr_written > 1000, "thrash with 3000 frames free must swap: {off:?}");
    assert_eq!(off.cleaner.nr_cleaned, 0, "off means off: {off:?}");
    assert!(on.cleaner.nr_cleaned > 0 && on.cleaner.nr_clean_at_eviction > 0, "the cleaner worked: {on:?}");
    assert!(on.clean_percent() > off.clean_percent(), "more clean victims with the cleaner than without: {off:?} {on:?}");
    check::check_consistency().expect("consistent");
    // Then (one test, so in this order: the thrash runs have swapped already, and
    // the first heavy swapping of a boot keeps a heap page or so for good):
    swapstress_with_the_cleaner_on_loses_no_page();
}

/// `swapstress` checks every word of its 128 MiB after heavy swapping.
fn swapstress_with_the_cleaner_on_loses_no_page() {
    heap::shrink();
    // Page-cache frames (the program's image) count as free: they are a cache.
    // The exact count: with several CPUs an idle one moves frames into the
    // pre-zeroed pool, and the cheap sum read while it does is a few frames off.
    let (free, slots) = (frame::nr_free_frames_exact() + page_cache::nr_pages(), swap::slot_counts());
    let run = run_counting("swapstress", true);
    println!(
        "swapstress, cleaner on: {} victims written, {} clean ({}%), {} ms; cleaner wrote {} pages, {} evicted clean, {} wasted",
        run.nr_written, run.nr_clean, run.clean_percent(), run.wall_ms,
        run.cleaner.nr_cleaned, run.cleaner.nr_clean_at_eviction, run.cleaner.nr_wasted
    );
    assert!(run.cleaner.nr_cleaned > 0, "the cleaner worked while the workers checked every word: {run:?}");
    check::check_consistency().expect("consistent");
    heap::shrink();
    assert_eq!(swap::slot_counts(), slots, "slots leaked");
    assert_eq!(frame::nr_free_frames_exact() + page_cache::nr_pages(), free, "frames leaked");
}
