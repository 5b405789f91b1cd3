//! The README's walkthrough, `/etc/demo.sh` from the root disk, run by `/bin/sh`
//! with its output in a file that is then checked step by step: the hog is bigger
//! than RAM and swaps (vmstat's `so`, free's swap used), `pmap -x` shows its 16 TiB
//! mapping, `explain` walks to one of its pages, `policy` switches, `memmap`'s
//! free frames match the legend's totals, the trace holds the hog's faults, and
//! after `kill` the swap is empty again and the memory free; then `mmapdemo` maps
//! a file, writes through the mapping, msyncs and reads it back.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use abi::o;
use kernel::fs::file::{FdTable, FileObject, OpenFile};
use kernel::fs::{self, path};
use kernel::proc::{self, task::WaitStatus};

kernel::runner_args!(b"--memory 64M --timeout 300");

kernel::test_kernel!();

/// Returns the whole text of the file at `path_text`.
fn read_file(path_text: &str) -> String {
    let inode = path::resolve(&fs::root(), path_text).expect("the file");
    let mut text = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = inode.read_at(text.len() as u64, &mut chunk).expect("read");
        if n == 0 {
            return String::from_utf8(text).expect("UTF-8");
        }
        text.extend_from_slice(&chunk[..n]);
    }
}

/// Returns the lines of step `n` (from its `== n.` heading to the next heading).
fn step(text: &str, n: u32) -> Vec<&str> {
    let heading = alloc::format!("== {n}.");
    let mut lines = text.lines().skip_while(|l| !l.starts_with(&heading));
    assert!(lines.next().is_some(), "no step {n} in:\n{text}");
    lines.take_while(|l| !l.starts_with("== ")).collect()
}

/// The numbers of the line of `lines` that starts with `label` (free's `Swap:`).
fn numbers_after(lines: &[&str], label: &str) -> Vec<u64> {
    let line = lines.iter().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label} line in {lines:?}"));
    line.split_whitespace().filter_map(|w| w.parse().ok()).collect()
}

#[test_case]
fn the_walkthrough_script_runs_and_each_step_shows_what_the_readme_says() {
    let out = fs::root().create("walkthrough.out", 0o644).expect("create /walkthrough.out");
    let mut files = FdTable::new_console();
    let into_file = OpenFile::new(FileObject::Inode(out), o::WRONLY | o::APPEND);
    let _ = files.replace(1, into_file.clone()).expect("fd 1");
    let _ = files.replace(2, into_file).expect("fd 2");
    let pid = proc::task::spawn_with_files("sh", "/etc/demo.sh", files).expect("spawn sh /etc/demo.sh");
    let (_, status) = proc::wait(Some(pid)).expect("wait sh");
    let text = read_file("/walkthrough.out");
    kernel::println!("{text}");
    assert_eq!(status, WaitStatus::Exited(0), "the script ran to its end");

    // 1. Nothing in swap before.
    assert_eq!(numbers_after(&step(&text, 1), "Swap:")[1], 0, "swap used before the hog");

    // 2. The hog is at its hint address; its pid is what $! gives the later steps.
    // (The hog prints its line once its memory is written: during step 2 or 3.)
    let hog_line = text.lines().find(|l| l.starts_with("hog: pid ")).expect("the hog's line");
    let hog_pid: u64 = hog_line["hog: pid ".len()..].split(' ').next().unwrap().parse().unwrap();
    assert!(hog_line.contains("at 0x100000000000.."), "{hog_line}");

    // 3. vmstat's `so` (pages swapped out) moves, and free shows swap in use.
    let three = step(&text, 3);
    let samples: Vec<Vec<u64>> =
        three.iter().map(|l| l.split_whitespace().filter_map(|w| w.parse().ok()).collect::<Vec<u64>>()).filter(|n| n.len() == 17).collect();
    // (17 numbers: vmstat's sample lines; the hog's own line has fewer.)
    assert_eq!(samples.len(), 3, "vmstat 1 3 prints three samples: {three:?}");
    assert!(samples.iter().any(|s| s[7] > 0), "so > 0 while the hog swaps: {three:?}");
    assert!(numbers_after(&three, "Swap:")[1] > 0, "swap in use: {three:?}");

    // 4. pmap -x lists the hog's 16 TiB mapping, mostly resident or swapped.
    let four = step(&text, 4);
    assert!(four[0].starts_with(&alloc::format!("{hog_pid}:")), "{four:?}");
    assert!(four.iter().any(|l| l.starts_with("0000100000000000")), "{four:?}");

    // 5. explain walks four levels to the hog's first page, in its VMA.
    let five = step(&text, 5);
    assert_eq!(five[0], alloc::format!("explain 0x100000000000 in pid {hog_pid}"));
    assert!(five.iter().any(|l| l.trim_start().starts_with("PML4[ 32]")), "{five:?}");
    assert!(five.iter().any(|l| l.starts_with("VMA   100000000000-")), "{five:?}");
    let write = five.iter().find(|l| l.trim_start().starts_with("write")).expect("the write answer");
    assert!(
        ["no fault", "major fault: read the page back from swap slot", "minor fault: map the page from the swap cache"]
            .iter()
            .any(|answer| write.contains(answer)),
        "a written page is resident or in swap: {write}"
    );
    assert!(five.iter().any(|l| l.trim_start().starts_with("exec") && l.contains("SIGSEGV")), "rw- is not executable");

    // 6. The policy switched.
    assert!(step(&text, 6).contains(&"policy: now fifo"), "{text}");

    // 7. memmap: the legend's totals add up to the frames it drew.
    let seven = step(&text, 7);
    let nr_frames: u64 = seven[0].split_whitespace().nth(2).unwrap().parse().unwrap();
    let total: u64 = seven
        .iter()
        .filter(|l| l.ends_with(" MiB") && l.contains(" frames "))
        .map(|l| l.split_whitespace().rev().nth(3).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, nr_frames, "{seven:?}");
    assert!(seven.iter().any(|l| l.contains('w') && l.contains(" |")), "swap-cache frames drawn: {seven:?}");

    // 8. The trace shows the hog's faults, by its pid.
    let eight = step(&text, 8);
    let faults: Vec<&&str> = eight.iter().filter(|l| l.contains(" 0x0000100")).collect();
    assert!(!faults.is_empty(), "the hog faulted while traced: {eight:?}");
    assert!(faults.iter().all(|l| l.split_whitespace().nth(1) == Some(alloc::format!("{hog_pid}").as_str())));

    // 9. After kill: swap empty again, memory free again.
    let nine = step(&text, 9);
    assert!(!kernel::proc::task::is_live_user_process(hog_pid), "the hog is gone");
    assert_eq!(numbers_after(&nine, "Swap:")[1], 0, "every swap slot came back: {nine:?}");
    let (before, after) = (numbers_after(&step(&text, 1), "Mem:"), numbers_after(&nine, "Mem:"));
    assert!(after[2] + 2 >= before[2], "free memory came back: {before:?} -> {after:?}");

    // 10. A file mapped and written through the mapping, msynced, read back with
    // read(2), with the page cache's counters after each step (issue #12's "Done
    // when"; other files' pages, the script's own output, move the counters too, so
    // only their presence is checked; mmapdemo itself checks the bytes).
    let ten = step(&text, 10);
    for when in ["after write(2)", "after the stores", "after msync"] {
        assert!(ten.iter().any(|l| l.contains(when) && l.contains("Dirty")), "no counters {when}: {ten:?}");
    }
    assert!(ten.iter().any(|l| l.contains("read(2) after munmap: \"STORED THROUGH MMAP")), "{ten:?}");
    proc::task::wait_all(10_000).unwrap_or_else(|n| panic!("{n} processes left running"));
}
