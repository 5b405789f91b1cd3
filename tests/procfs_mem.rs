//! procfs, the last items of issue #14: `/proc/sys/vm/watermark_scale_factor`
//! moves the watermarks that `/proc/zoneinfo` shows and kswapd then keeps more
//! frames free under a hog; meminfo's Shmem (with Cached, AnonPages, Mapped),
//! status's RssShmem and smaps count shared anonymous pages and tmpfs pages as
//! Linux counts its shmem; and every tool named in the issue fails with a
//! message and a non-zero status on a bad PID or argument.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use kernel::arch::timer;
use kernel::fs::{self, FsError};
use kernel::mm::vmstat::{self, SwapEvent};
use kernel::mm::{frame, page_cache, reclaim};
use kernel::proc::{self, task};
use mm_core::watermarks;

kernel::runner_args!(b"--memory 64M --timeout 300");

kernel::test_kernel!();

#[path = "common/proc_files.rs"]
mod proc_files;

use proc_files::{field, read, write};

const KNOB: &str = "/proc/sys/vm/watermark_scale_factor";

/// Returns the zone's (min, low, high, managed) as `/proc/zoneinfo` prints them.
fn zoneinfo_marks() -> (u64, u64, u64, u64) {
    let text = read("/proc/zoneinfo").expect("zoneinfo");
    assert!(text.starts_with("Node 0, zone   Normal\n"), "{text}");
    (field(&text, "min"), field(&text, "low"), field(&text, "high"), field(&text, "managed"))
}

#[test_case]
fn watermark_scale_factor_moves_low_and_high_and_bad_values_change_nothing() {
    let managed = frame::buddyinfo().nr_managed_frames;
    let boot = reclaim::watermarks();
    assert_eq!(read(KNOB).unwrap(), "10\n", "Linux's default");
    assert_eq!(boot, watermarks::compute(managed, boot.min, 10));
    assert_eq!(zoneinfo_marks(), (boot.min, boot.low, boot.high, managed));
    let zoneinfo = read("/proc/zoneinfo").unwrap();
    let free_line = zoneinfo.lines().find(|l| l.starts_with("  pages free ")).expect("a pages free line");
    let free_now: u64 = free_line["  pages free ".len()..].trim().parse().expect("a number");
    assert!(free_now.abs_diff(frame::buddyinfo().nr_free_frames) < 64, "pages free is the buddy's free frames");
    for bad in ["0", "3001", "-1", "ten", "", "10 20"] {
        assert_eq!(write(KNOB, bad), Err(FsError::Invalid), "{bad:?}");
        assert_eq!(read(KNOB).unwrap(), "10\n", "{bad:?} changed nothing");
        assert_eq!(reclaim::watermarks(), boot, "{bad:?} moved no mark");
    }
    // 1000: 10 % of memory between two marks (6553 frames at 64 MiB, against 125).
    write(KNOB, "1000\n").expect("a good value");
    assert_eq!(read(KNOB).unwrap(), "1000\n");
    let gap = managed * 1000 / 10_000;
    assert!(gap > boot.low - boot.min, "the factor is above the floor");
    assert_eq!(zoneinfo_marks(), (boot.min, boot.min + gap, boot.min + 2 * gap, managed), "low and high moved, min stayed");
    assert_eq!(reclaim::watermarks().low, boot.min + gap);
    write(KNOB, "3000").expect("the largest value");
    assert_eq!(reclaim::watermarks().high - reclaim::watermarks().low, managed * 3 / 10);
    write(KNOB, "10").expect("back");
    assert_eq!(reclaim::watermarks(), boot, "the default gives the boot marks back");
}

/// Samples the free frames every few milliseconds for `ms` and returns their mean.
fn mean_free_frames(ms: u64) -> u64 {
    let end = timer::uptime_ms() + ms;
    let (mut sum, mut nr) = (0, 0);
    while timer::uptime_ms() < end {
        sum += frame::nr_free_frames();
        nr += 1;
        let tick = timer::ticks();
        while timer::ticks() == tick {
            proc::sched::yield_now();
        }
    }
    sum / nr.max(1)
}

#[test_case]
fn a_larger_watermark_scale_factor_makes_kswapd_keep_more_frames_free_under_a_hog() {
    let outs = vmstat::nr_events(SwapEvent::SwapOut);
    let hog = task::spawn_with_args("hog", "125%").expect("spawn hog");
    // Settled: the hog has filled memory and swaps steadily.
    let start = timer::uptime_ms();
    while vmstat::nr_events(SwapEvent::SwapOut) - outs < 4096 {
        assert!(timer::uptime_ms() - start < 120_000, "the hog never swapped");
        proc::sched::yield_now();
    }
    let boot = reclaim::watermarks();
    let passes = vmstat::nr_events(SwapEvent::BackgroundReclaim);
    let free_default = mean_free_frames(3000);
    write(KNOB, "1000").expect("1000");
    let large = reclaim::watermarks();
    let _ = mean_free_frames(500); // kswapd catches up with the new marks
    let free_large = mean_free_frames(3000);
    write(KNOB, "10").expect("back to 10");
    let passes = vmstat::nr_events(SwapEvent::BackgroundReclaim) - passes;
    kernel::println!(
        "watermarks {}/{}/{} -> {}/{}/{}: mean free frames under the hog {free_default} -> {free_large} ({passes} kswapd passes)",
        boot.min, boot.low, boot.high, large.min, large.low, large.high
    );
    assert!(task::kill(hog, format_args!("test over")));
    let _ = proc::wait(Some(hog));
    assert!(passes > 0, "kswapd worked");
    assert!(free_large > free_default, "more frames free with the larger factor: {free_large} vs {free_default}");
    assert!(free_large > boot.high, "kswapd keeps free frames above the old high mark: {free_large}");
}

/// Waits until `pid`'s status shows `kb` kB of RssShmem, and returns its status.
fn status_with_rss_shmem(pid: task::Pid, kb: u64) -> String {
    for _ in 0..100_000 {
        let status = read(&format!("/proc/{pid}/status")).expect("status");
        if field(&status, "RssShmem") == kb {
            return status;
        }
        proc::sched::yield_now();
    }
    panic!("RssShmem never reached {kb} kB");
}

#[test_case]
fn shmem_counts_shared_anonymous_pages_once_and_drops_back_at_exit() {
    let before = read("/proc/meminfo").unwrap();
    let hog = task::spawn_with_args("hog", "4 shared").expect("spawn hog");
    let status = status_with_rss_shmem(hog, 4096);
    // RssAnon + RssFile + RssShmem = VmRSS, and the 4 MiB are not RssAnon.
    let rss = field(&status, "VmRSS");
    assert_eq!(field(&status, "RssAnon") + field(&status, "RssFile") + 4096, rss, "{status}");
    assert!(field(&status, "RssAnon") < 4096, "{status}");
    let after = read("/proc/meminfo").unwrap();
    assert_eq!(field(&after, "Shmem") - field(&before, "Shmem"), 4096, "Shmem grew by the 1024 pages");
    assert_eq!(field(&after, "Cached") - field(&before, "Cached"), 4096, "Cached holds Shmem");
    assert_eq!(field(&after, "Mapped") - field(&before, "Mapped"), 4096, "mapped shmem is Mapped");
    assert!(field(&after, "AnonPages") < field(&before, "AnonPages") + 4096, "and not AnonPages");
    // smaps: the shared mapping holds 4 MiB, none of it Anonymous; the rollup's Pss_Shmem.
    let smaps = read(&format!("/proc/{hog}/smaps")).unwrap();
    let entry: Vec<&str> = smaps.lines().skip_while(|l| !l.contains(" rw-s ")).take(16).collect();
    assert!(!entry.is_empty(), "a shared mapping in:\n{smaps}");
    let entry = entry.join("\n");
    assert_eq!(field(&entry, "Rss"), 4096, "{entry}");
    assert_eq!(field(&entry, "Anonymous"), 0, "{entry}");
    let rollup = read(&format!("/proc/{hog}/smaps_rollup")).unwrap();
    assert_eq!(field(&rollup, "Pss_Shmem"), 4096, "{rollup}");
    let statm: Vec<u64> = read(&format!("/proc/{hog}/statm")).unwrap().split_whitespace().map(|w| w.parse().unwrap()).collect();
    assert!(statm[2] >= 1024, "statm's shared holds the shmem pages: {statm:?}");
    assert!(task::kill(hog, format_args!("test over")));
    let _ = proc::wait(Some(hog));
    let end = read("/proc/meminfo").unwrap();
    assert_eq!(field(&end, "Shmem"), field(&before, "Shmem"), "and drops back at exit");
}

#[test_case]
fn shmem_counts_tmpfs_pages() {
    let shmem_kb = || field(&read("/proc/meminfo").unwrap(), "Shmem");
    let cached_kb = || field(&read("/proc/meminfo").unwrap(), "Cached") - page_cache::nr_pages() * 4;
    let before = shmem_kb();
    assert_eq!(cached_kb(), before, "Cached is the page cache plus Shmem");
    let dir = kernel::fs::tmpfs::TmpFs::new_root();
    let file = dir.create("pages", 0o644).expect("create");
    file.write_at(0, &[7u8; 3 * 4096]).expect("three pages");
    assert_eq!(shmem_kb() - before, 12, "three tmpfs pages");
    assert_eq!(cached_kb(), before + 12);
    dir.unlink("pages").expect("unlink");
    drop(file);
    assert_eq!(shmem_kb(), before, "freed with the file");
}

/// Runs tool `name` with `args`, its standard output and error into one file;
/// returns how it ended and what it wrote.
fn run_tool(name: &str, args: &str) -> (task::WaitStatus, String) {
    use kernel::fs::file::{FdTable, FileObject, OpenFile};
    let out_name = format!("{name}.err");
    let out = fs::root().create(&out_name, 0o644).expect("create the output file");
    let mut files = FdTable::new_console();
    let into_file = OpenFile::new(FileObject::Inode(out.clone()), abi::o::WRONLY | abi::o::APPEND);
    let _ = files.replace(1, into_file.clone()).expect("fd 1");
    let _ = files.replace(2, into_file).expect("fd 2");
    let pid = task::spawn_with_files(name, args, files).expect("spawn");
    let (_, status) = proc::wait(Some(pid)).expect("wait");
    let mut text = alloc::vec![0u8; 4096];
    let n = out.read_at(0, &mut text).expect("read the output");
    text.truncate(n);
    fs::root().unlink(&out_name).expect("unlink");
    (status, String::from_utf8(text).expect("UTF-8"))
}

#[test_case]
fn every_tool_exits_non_zero_with_a_message_on_a_bad_pid_or_argument() {
    // free, vmstat, top, pmap, policy and swapinfo: tests/procfs.rs.
    let cases = [
        ("ps", "-z"),
        ("kill", ""),
        ("kill", "99999"),
        ("kill", "-x 1"),
        ("kill", "notapid"),
        ("sleep", ""),
        ("sleep", "soon"),
        ("cat", "/no/such/file"),
        ("ls", "/no/such/dir"),
        ("explain", ""),
        ("explain", "zz"),
        ("explain", "0x1000 99999"),
        ("explain", "0x1000 notapid"),
        ("trace", "sideways"),
        ("trace", "show notapid"),
        ("trace", "show 99999"),
        ("memmap", "-z"),
        ("memmap", "-w 5"),
        ("pmap", "99999"),
        ("hog", "0"),
        ("hog", "4 sideways"),
    ];
    for (name, args) in cases {
        let (status, text) = run_tool(name, args);
        assert!(
            matches!(status, task::WaitStatus::Exited(code) if code != 0),
            "{name} {args}: {status:?}\n{text}"
        );
        let message = text.lines().last().unwrap_or("");
        assert!(message.starts_with(&format!("{name}: ")) || message.starts_with("usage: "), "{name} {args}: {text:?}");
    }
}

#[test_case]
fn ps_lists_each_process_with_its_parent_and_rss_from_proc() {
    let hog = task::spawn_with_args("hog", "4 shared").expect("spawn hog");
    let _ = status_with_rss_shmem(hog, 4096);
    let (status, text) = run_tool("ps", "");
    assert_eq!(status, task::WaitStatus::Exited(0), "{text}");
    let mut lines = text.lines();
    assert_eq!(lines.next().map(|l| l.split_whitespace().collect::<Vec<_>>()), Some(alloc::vec!["PID", "PPID", "S", "RSS(kB)", "SWAP(kB)", "CMD"]));
    let row: Vec<&str> = lines
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w[0].parse::<u64>() == Ok(hog))
        .unwrap_or_else(|| panic!("no line for the hog in:\n{text}"));
    let hog_status = read(&format!("/proc/{hog}/status")).unwrap();
    assert_eq!(row[1].parse::<u64>().unwrap(), field(&hog_status, "PPid"), "{text}");
    assert!(row[3].parse::<u64>().unwrap() >= 4096, "its RSS holds the 4 MiB: {text}");
    assert_eq!(row[5], "hog");
    assert!(task::kill(hog, format_args!("test over")));
    let _ = proc::wait(Some(hog));
}
