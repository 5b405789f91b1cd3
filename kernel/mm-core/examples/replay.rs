//! Replays reference strings through every page-replacement policy and prints a
//! table of fault counts per number of frames.
//!
//! Run it with:
//!
//! ```text
//! cargo run -p mm-core --example replay              # the three built-in workloads
//! cargo run -p mm-core --example replay -- FILE      # a recorded trace
//! cargo run -p mm-core --example replay -- FILE 384,3072,6144   # at these frame counts only
//! ```
//!
//! With a FILE (a trace: `mm_core::reclaim::trace`, e.g. a serial log holding
//! `@@trace begin` ... `@@trace end`), it prints the faults of every policy and OPT
//! for frame counts from 1/8 to all of the trace's distinct pages, each policy's
//! ratio to OPT, and every frame count where FIFO faults more than with one frame
//! less (Belady's anomaly).
//!
//! Without one, three workloads:
//! - Belady's classic string `1,2,3,4,1,2,5,1,2,3,4,5`: FIFO faults *more* with 4
//!   frames than with 3 (Belady's anomaly); LRU and OPT never do.
//! - A loop over 10 pages, 20 times: every LRU-like policy faults on every reference
//!   until the whole loop fits, then only on the first pass; OPT degrades gently,
//!   and so do LIRS and (from 6 frames) CLOCK-Pro, which keep part of the loop.
//! - A hot set of 4 pages (written often) mixed with a cold scan over 60 pages:
//!   shows how many dirty pages each policy writes back (`faults/writebacks`).
//!
//! The policies live in `mm_core::reclaim`; this file only generates workloads and
//! formats the results. For any other string, step by step, with exercises:
//! `cargo run -p sim -- replace --refs 1,2,3,4,1,2,5 --frames 3 --sweep`
//! (docs/simulators.md).

use mm_core::reclaim::trace::{self, all_policies};
use mm_core::reclaim::{self, PageRef, SimResult};
use std::ops::RangeInclusive;

/// Returns `nr_loops` passes over pages `0..nr_pages`, all reads.
fn looping(nr_pages: u64, nr_loops: usize) -> Vec<PageRef> {
    let pages: Vec<u64> = (0..nr_loops).flat_map(|_| 0..nr_pages).collect();
    reclaim::reads(&pages)
}

/// Returns a mix of writes to a hot set of 4 pages and reads of a cold scan over 60.
fn hot_and_cold(len: usize) -> Vec<PageRef> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next_random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut cold_page = 0;
    (0..len)
        .map(|_| {
            if next_random() % 2 == 0 {
                PageRef::write(next_random() % 4)
            } else {
                cold_page = (cold_page + 1) % 60;
                PageRef::read(100 + cold_page)
            }
        })
        .collect()
}

/// Prints one row per frame count and one column per policy, each cell made by `cell_fn`.
fn print_table(title: &str, refs: &[PageRef], frame_counts: RangeInclusive<usize>, cell_fn: fn(&SimResult) -> String) {
    println!("{title} ({} references)", refs.len());
    print!("{:>6}", "frames");
    for policy in all_policies(refs) {
        print!(" {:>15}", policy.name());
    }
    println!();
    for nr_frames in frame_counts {
        print!("{nr_frames:>6}");
        for mut policy in all_policies(refs) {
            let result = reclaim::simulate(policy.as_mut(), nr_frames, refs);
            print!(" {:>15}", cell_fn(&result));
        }
        println!();
    }
    println!();
}

/// Replays the trace in `path` and prints faults, ratios to OPT and FIFO's anomalies.
fn replay_file(path: &str, frames_arg: Option<&str>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("replay: cannot read {path}: {e}"));
    let refs = trace::parse(&text).unwrap_or_else(|e| panic!("replay: {path}: {e:?}"));
    let nr_pages = refs.iter().map(|r| r.page).max().map_or(0, |p| p as usize + 1);
    let nr_writes = refs.iter().filter(|r| r.is_write).count();
    println!("{path}: {} references ({nr_writes} writes) to {nr_pages} distinct pages", refs.len());
    let step = (nr_pages / 16).max(1);
    let frame_counts: Vec<usize> = match frames_arg {
        Some(list) => list.split(',').map(|n| n.trim().parse().unwrap_or_else(|_| panic!("replay: bad frame count {n:?}"))).collect(),
        None => (1..=16).map(|i| i * step).filter(|&n| n <= nr_pages).collect(),
    };
    let table = fault_table_in_parallel(&refs, &frame_counts);
    let names: Vec<&str> = all_policies(&[]).iter().map(|p| p.name()).collect();
    println!("faults (ratio to OPT):");
    print!("{:>6}", "frames");
    for name in &names {
        print!(" {name:>15}");
    }
    println!();
    for row in &table {
        print!("{:>6}", row.nr_frames);
        for &faults in &row.faults {
            let ratio = faults as f64 / row.opt_faults().max(1) as f64;
            print!(" {:>15}", format!("{faults} ({ratio:.2})"));
        }
        println!();
    }
    let anomalies = trace::anomalies(&table, 0);
    if anomalies.is_empty() {
        println!("FIFO shows no Belady anomaly at these frame counts.");
    }
    for (nr_frames, before, after) in anomalies {
        let fewer = table.iter().take_while(|row| row.nr_frames < nr_frames).last().map_or(0, |row| row.nr_frames);
        println!("Belady's anomaly: FIFO faults {after} times with {nr_frames} frames, {before} with {fewer}");
    }
}

/// [`trace::fault_table`] with one frame count per thread at a time, on every CPU
/// the host gives (a 100 000-reference trace takes minutes per frame count: the
/// aging LRU ages every page at every reference), rows in frame-count order.
fn fault_table_in_parallel(refs: &[PageRef], frame_counts: &[usize]) -> Vec<trace::FaultRow> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let nr_threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(frame_counts.len().max(1));
    let mut rows: Vec<trace::FaultRow> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..nr_threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut rows = Vec::new();
                    while let Some(&nr_frames) = frame_counts.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
                        let row = trace::fault_table(refs, [nr_frames]);
                        eprintln!("replay: {nr_frames} frames: {:?}", row[0].faults);
                        rows.extend(row);
                    }
                    rows
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a replay thread panicked")).collect()
    });
    rows.sort_by_key(|row| row.nr_frames);
    rows
}

fn main() {
    if let Some(path) = std::env::args().nth(1) {
        replay_file(&path, std::env::args().nth(2).as_deref());
        return;
    }
    let faults_fn: fn(&SimResult) -> String = |r| r.faults.to_string();
    let belady = reclaim::reads(&[1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5]);
    print_table("Belady's string 1,2,3,4,1,2,5,1,2,3,4,5: faults", &belady, 1..=6, faults_fn);
    print_table("Loop over 10 pages x 20: faults", &looping(10, 20), 4..=11, faults_fn);
    let writebacks_fn: fn(&SimResult) -> String = |r| format!("{}/{}", r.faults, r.dirty_writebacks);
    print_table(
        "Hot 4 pages (writes) + cold scan of 60: faults/writebacks",
        &hot_and_cold(2000),
        4..=12,
        writebacks_fn,
    );
}
