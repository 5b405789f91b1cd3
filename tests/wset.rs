//! Working sets, page-fault frequency and load control (issue #15): WS(τ) of a
//! program that touches a known number of pages is that number, whatever its RSS;
//! its PFF rises when memory is ballooned down under it; four processes whose
//! working sets total twice memory all finish with load control on and off,
//! the controller deactivates some of them, and none is kept out longer than
//! its bound (the times are printed; which is faster is `benchonly=loadctl`'s).
//!
//! This image asks the runner for 64 MiB of RAM and 128 MiB of swap.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;


use kernel::mm::frame;
use kernel::mm::wss::WsSnapshot;
use kernel::mm::{check, reclaim};
use kernel::println;
use kernel::bench::loadctl;
use kernel::proc::{self, load_control, sched, task, task::WaitStatus};
use kernel::testing::balloon_leaving;

kernel::runner_args!(b"--memory 64M --swap-size 128M --timeout 300");

kernel::test_kernel!();

/// Runs program `name` with `args` to its end, polling its working set while it
/// runs; returns the last figures seen.
fn run_watching(name: &str, args: &str) -> WsSnapshot {
    let pid = proc::spawn_with_args(name, args).unwrap_or_else(|e| panic!("spawn {name}: {e:?}"));
    let mut last = WsSnapshot::default();
    let status = loop {
        if let Some(snapshot) = task::ws_snapshot(pid) {
            last = snapshot;
        }
        if let Some(status) = task::try_reap(pid) {
            break status;
        }
        sched::yield_now();
    };
    assert_eq!(status, WaitStatus::Exited(0), "{name} {args} failed");
    task::wait_all(10_000).expect("every process exited");
    // kswapd may still be in a pass it started under the program (frames LOCKED
    // for its writes): let it finish before anyone audits.
    while reclaim::kswapd_state().1 {
        sched::yield_now();
    }
    last
}

#[test_case]
fn ws_of_a_program_touching_64_of_256_pages_is_64() {
    let ws = run_watching("wsprobe", "pages=64 mapped=256 samples=4");
    println!("WS history {:?}, rss {}", &ws.history[..ws.nr_samples.min(8) as usize], ws.rss_pages);
    assert!(ws.nr_samples >= 4, "sampled every tau of CPU time: {ws:?}");
    assert!(ws.rss_pages >= 256, "all 256 pages resident: {ws:?}");
    // 64 data pages plus its code, stack and the page the loop reads `wsstat` into.
    assert!((64..=72).contains(&ws.ws_pages), "WS(tau) is 64 (+ code and stack): {ws:?}");
    check::check_consistency().expect("consistent");
}

#[test_case]
fn ws_follows_the_number_of_pages_touched() {
    let small = run_watching("wsprobe", "pages=32 mapped=512 samples=3");
    let large = run_watching("wsprobe", "pages=384 mapped=512 samples=3");
    println!("WS {} pages touching 32, {} touching 384 (of 512)", small.ws_pages, large.ws_pages);
    assert!((32..=40).contains(&small.ws_pages), "{small:?}");
    assert!((384..=392).contains(&large.ws_pages), "{large:?}");
}

#[test_case]
fn pff_rises_when_memory_is_ballooned_down() {
    // 2048 pages (8 MiB) touched round after round: with memory to spare it faults
    // only while it fills them; with 1024 frames left it must page.
    let roomy = run_watching("wsprobe", "pages=2048 mapped=2048 samples=4 write");
    let balloon = balloon_leaving(1024);
    let squeezed = run_watching("wsprobe", "pages=2048 mapped=2048 samples=4 write");
    drop(balloon);
    println!(
        "PFF {}/s (major {}/s) with room, {}/s (major {}/s) with 1024 frames free",
        roomy.pff, roomy.major_pff, squeezed.pff, squeezed.major_pff
    );
    assert_eq!(roomy.major_pff, 0, "no swap-in with memory to spare: {roomy:?}");
    assert!(squeezed.major_pff > 0, "swap-ins once squeezed: {squeezed:?}");
    assert!(squeezed.pff > roomy.pff + 100, "PFF rose: {roomy:?} -> {squeezed:?}");
    check::check_consistency().expect("consistent");
}

#[test_case]
fn load_control_acts_on_a_mix_of_twice_memory_and_starves_nobody() {
    // Four working sets of 55 % of free memory each: 2.2 times what fits. Each
    // writes its pages, waits at a start line until all have (or are parked),
    // then makes NR_ROUNDS passes: at the line more than half of the pages are in
    // swap, and the passes need them all, so "off" reads back at least
    // 4 x nr_pages - the frames (well over nr_pages) whatever the host's load.
    let nr_pages = frame::nr_free_frames() * loadctl::SHARE_PERCENT / 100;
    let off = loadctl::run_mix(nr_pages, loadctl::NR_ROUNDS, false);
    let on = loadctl::run_mix(nr_pages, loadctl::NR_ROUNDS, true);
    println!(
        "4 x {nr_pages} pages, {} passes: load control off {} ms (longest stall {} ms, {} swap-ins), on {} ms (longest stall {} ms, longest out {} ms, {} deactivations, {} swap-ins)",
        loadctl::NR_ROUNDS,
        off.wall_ms,
        off.longest_stall_ms,
        off.nr_swap_ins,
        on.wall_ms,
        on.longest_stall_ms,
        on.longest_out_ms,
        on.nr_deactivations,
        on.nr_swap_ins
    );
    assert_eq!((off.nr_failed, on.nr_failed), (0, 0), "every wsprobe completes, exit 0: nobody starves");
    assert_eq!(off.nr_deactivations, 0, "off means off");
    assert_eq!(off.longest_out_ms, 0, "off: nobody out");
    assert!(on.nr_deactivations > 0, "load control acted");
    // The direction (on finishes sooner) is a speed, and speed is a benchmark's
    // business, not a test's: `benchonly=loadctl` alternates several off/on pairs
    // and prints each ratio (docs/benchmarks.md, "Load control"). As a test it
    // failed CI once on a loaded host (on 7230 ms against off 5470 ms) although
    // the controller did what it promises; both times are printed above.
    assert!(off.nr_swap_ins > nr_pages, "off thrashes: {} pages read back for 4 x {nr_pages}", off.nr_swap_ins);
    // The bound is the controller's promise (load_control.rs, "Bounded wait"): out
    // at most OUT_BOUND_MS, plus the poller's own lateness (it polls between
    // yields; 1 s for a loaded host). The longest *stall* (no CPU time) is printed
    // only: a process in the balance set may still wait for the disk and the CPU,
    // which the controller does not promise (8.7 s once in a full suite run).
    let bound_ms = load_control::OUT_BOUND_MS + 1000;
    assert!(on.longest_out_ms <= bound_ms, "a process was out {} ms > {bound_ms} ms", on.longest_out_ms);
    check::check_consistency().expect("consistent");
}
