//! procfs at `/proc`: every file is parsed as a Linux tool would, and its numbers
//! are checked against the kernel's own counters read at the same moment (MemFree
//! against the buddy allocator's free frames, VmRSS against the address space's
//! resident pages, the maps lines against its VMAs, ...).
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

use kernel::fs::{self, FsError, path};
use kernel::mm::vmstat::{self, SwapEvent};
use kernel::mm::{frame, swap};
use kernel::proc::{self, task};

kernel::test_kernel!();

#[path = "common/proc_files.rs"]
mod proc_files;

use proc_files::{field, read, write};

#[path = "common/only_this_cpu.rs"]
mod only_this_cpu;
use only_this_cpu::OnlyThisCpuIdles;

/// Reads `path` until the kernel's view (`now_fn`) is the same before and after
/// the read, and returns the text with that view (the read itself may allocate).
fn read_steady<T: PartialEq + Copy>(path_text: &str, now_fn: impl Fn() -> T) -> (String, T) {
    for _ in 0..20 {
        let before = now_fn();
        let text = read(path_text).expect("read");
        if now_fn() == before {
            return (text, before);
        }
    }
    panic!("{path_text}: the counters never held still");
}

#[test_case]
fn meminfo_memfree_is_the_buddy_allocators_free_frames() {
    // The file and the allocator are read one after the other: with `--smp 2` they
    // differed by a frame once (the other CPU moves frames in between).
    let _only_this_cpu = OnlyThisCpuIdles::new();
    let (text, (free, total)) = read_steady("/proc/meminfo", || {
        let info = frame::buddyinfo();
        (info.nr_free_frames, info.nr_managed_frames)
    });
    assert_eq!(field(&text, "MemTotal"), total * 4);
    assert_eq!(field(&text, "MemFree"), free * 4);
    let (free_slots, total_slots) = swap::slot_counts();
    assert_eq!(field(&text, "SwapTotal"), total_slots * 4);
    assert_eq!(field(&text, "SwapFree"), free_slots * 4);
    for name in ["MemAvailable", "Buffers", "Cached", "SwapCached", "Dirty", "Writeback", "AnonPages", "Mapped", "Shmem"] {
        field(&text, name); // present and a number
    }
}

#[test_case]
fn buddyinfo_lists_the_free_blocks_of_each_order() {
    use kernel::mm::{pcp, zero_pool};
    let (text, (info, nr_listed, nr_pooled)) =
        read_steady("/proc/buddyinfo", || (frame::buddyinfo(), pcp::nr_listed(), zero_pool::nr_pooled()));
    let counts: Vec<u64> = text.split_whitespace().skip(4).map(|w| w.parse().expect("a count")).collect();
    assert!(text.starts_with("Node 0, zone   Normal"), "{text}");
    assert_eq!(counts, info.nr_free_blocks.to_vec());
    let frames: u64 = counts.iter().enumerate().map(|(order, n)| n << order).sum();
    // The free frames are the buddy's blocks plus the frames on the per-CPU lists
    // (`mm::pcp`) and in the pre-zeroed pool (`mm::zero_pool`, which an idle second
    // CPU fills at any time), which /proc/buddyinfo does not show (as in Linux).
    assert_eq!(frames + nr_listed + nr_pooled, info.nr_free_frames, "the blocks, the per-CPU lists and the pool add up to the free frames");
}

#[test_case]
fn vmstat_counts_are_the_kernels_counters() {
    let (text, (outs, ins, scanned, clean)) = read_steady("/proc/vmstat", || {
        let n = vmstat::nr_events;
        (n(SwapEvent::SwapOut), n(SwapEvent::SwapIn), n(SwapEvent::Scanned), n(SwapEvent::ReclaimedClean))
    });
    assert_eq!(field(&text, "pswpout"), outs);
    assert_eq!(field(&text, "pswpin"), ins);
    assert_eq!(field(&text, "pgscan"), scanned, "pages the policy looked at");
    assert_eq!(field(&text, "pgsteal"), outs + clean, "pages reclaimed: swapped out or dropped clean");
    let file_major = kernel::mm::page_cache::nr_events(kernel::mm::page_cache::FileEvent::MajorFault);
    assert_eq!(field(&text, "pgmajfault"), vmstat::nr_faults(kernel::mm::fault::FaultOutcome::SwapIn) + file_major);
    assert!(field(&text, "pgfault") >= field(&text, "pgmajfault"));
}

#[test_case]
fn swaps_shows_the_swap_disk_size_and_use() {
    let (text, (free, total)) = read_steady("/proc/swaps", swap::slot_counts);
    let line = text.lines().nth(1).expect("a swap line");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[1], "partition");
    assert_eq!(words[2].parse::<u64>().unwrap(), total * 4);
    assert_eq!(words[3].parse::<u64>().unwrap(), (total - free) * 4);
}

#[test_case]
fn pid_status_and_maps_match_the_processs_address_space() {
    let pid = proc::spawn("spin").expect("spawn spin");
    // Let it run until it has printed (its pages are in).
    let idle = kernel::sync::WaitQueue::new();
    idle.wait_until_deadline(|| false, kernel::arch::timer::ticks() + 50);
    let space = task::TASKS.lock().get(&pid).and_then(|t| t.space.clone()).expect("spin's space");
    let (status, (rss, nr_vmas, size)) = read_steady(&format!("/proc/{pid}/status"), || {
        let space = space.lock();
        let size: u64 = space.vmas().iter().map(|v| v.nr_pages()).sum();
        (space.stats.rss_pages, space.vmas().len(), size)
    });
    assert_eq!(status.lines().next(), Some("Name:\tspin"));
    assert_eq!(field(&status, "Pid"), pid);
    assert_eq!(field(&status, "VmRSS"), rss * 4);
    assert_eq!(field(&status, "VmSize"), size * 4);
    assert!(rss > 0, "spin touched some pages");
    let maps = read(&format!("/proc/{pid}/maps")).expect("maps");
    assert_eq!(maps.lines().count(), nr_vmas);
    for (line, vma) in maps.lines().zip(space.lock().vmas().iter()) {
        let range = line.split(' ').next().unwrap();
        let (start, end) = range.split_once('-').unwrap();
        assert_eq!(u64::from_str_radix(start, 16).unwrap(), vma.start.as_u64());
        assert_eq!(u64::from_str_radix(end, 16).unwrap(), vma.end.as_u64());
    }
    assert!(maps.contains("[stack]"), "{maps}");
    drop(space);
    assert!(task::kill(pid, format_args!("test over")));
    let _ = proc::wait(Some(pid));
    assert_eq!(read(&format!("/proc/{pid}/status")).err(), Some(FsError::NotFound), "a reaped pid has no directory");
}

#[test_case]
fn proc_files_refuse_writes_and_unknown_names() {
    let meminfo = path::resolve(&fs::root(), "/proc/meminfo").expect("meminfo");
    assert_eq!(meminfo.write_at(0, b"MemFree: 1"), Err(FsError::Invalid));
    assert_eq!(read("/proc/nosuchfile").err(), Some(FsError::NotFound));
    assert_eq!(read("/proc/999999/status").err(), Some(FsError::NotFound));
    let up = path::resolve(&fs::root(), "/proc/..").expect("/proc/..");
    assert_eq!(up.stat().ino, fs::root().stat().ino, "/proc/.. is /");
}

/// Runs tool `name` with `args`, its standard output into a tmpfs file; returns
/// how it ended and what it printed.
fn run_tool(name: &str, args: &str) -> (task::WaitStatus, String) {
    use kernel::fs::file::{FdTable, FileObject, OpenFile};
    let out_name = format!("{name}.out");
    let out = fs::root().create(&out_name, 0o644).expect("create the output file");
    let mut files = FdTable::new_console();
    let _ = files.replace(1, OpenFile::new(FileObject::Inode(out.clone()), abi::o::WRONLY)).expect("fd 1");
    let pid = task::spawn_with_files(name, args, files).expect("spawn");
    let (_, status) = proc::wait(Some(pid)).expect("wait");
    let mut text = alloc::vec![0u8; 16384];
    let n = out.read_at(0, &mut text).expect("read the output");
    text.truncate(n);
    fs::root().unlink(&out_name).expect("unlink");
    (status, String::from_utf8(text).expect("UTF-8"))
}

#[test_case]
fn free_m_prints_meminfos_totals_in_mib() {
    let (status, text) = run_tool("free", "-m");
    assert_eq!(status, task::WaitStatus::Exited(0), "{text}");
    let info = frame::buddyinfo();
    let mem: Vec<&str> = text.lines().nth(1).expect("a Mem: line").split_whitespace().collect();
    assert_eq!(mem[0], "Mem:");
    assert_eq!(mem[1].parse::<u64>().unwrap(), (info.nr_managed_frames * 4) >> 10, "{text}");
    let (_, total_slots) = swap::slot_counts();
    let swap: Vec<&str> = text.lines().nth(2).expect("a Swap: line").split_whitespace().collect();
    assert_eq!(swap[1].parse::<u64>().unwrap(), (total_slots * 4) >> 10, "{text}");
}

#[test_case]
fn free_with_a_bad_option_exits_1() {
    let (status, text) = run_tool("free", "-z");
    assert_eq!(status, task::WaitStatus::Exited(1));
    assert_eq!(text, "", "the message goes to standard error, not standard output");
}

#[test_case]
fn page_replacement_switches_the_policy_and_refuses_unknown_names() {
    use kernel::mm::reclaim;
    let before = reclaim::policy_kind().name();
    let text = read("/proc/sys/vm/page_replacement").unwrap();
    assert!(text.contains(&format!("[{before}]")), "{text}");
    assert!(text.contains("fifo") && text.contains("lists"), "every policy is listed: {text}");
    assert_eq!(write("/proc/sys/vm/page_replacement", "fifo\n"), Ok(5));
    assert_eq!(reclaim::policy_kind().name(), "fifo");
    assert!(read("/proc/sys/vm/page_replacement").unwrap().contains("[fifo]"));
    let switches = reclaim::nr_policy_switches();
    assert_eq!(write("/proc/sys/vm/page_replacement", "belady\n"), Err(FsError::Invalid));
    assert_eq!(reclaim::policy_kind().name(), "fifo", "a bad name changes nothing");
    assert_eq!(reclaim::nr_policy_switches(), switches);
    write("/proc/sys/vm/page_replacement", before).unwrap();
    assert_eq!(reclaim::policy_kind().name(), before);
}

#[test_case]
fn page_cluster_sets_the_swap_readahead_window_as_a_power_of_two() {
    let before = read("/proc/sys/vm/page-cluster").unwrap();
    assert_eq!(field(&format!("v {before}"), "v"), u64::from(swap::readahead_max_pages().ilog2()));
    write("/proc/sys/vm/page-cluster", "2\n").unwrap();
    assert_eq!(swap::readahead_max_pages(), 4);
    assert_eq!(read("/proc/sys/vm/page-cluster").unwrap(), "2\n");
    let too_big = swap::readahead_limit_pages().ilog2() + 1;
    for bad in [format!("{too_big}"), "-1".into(), "two".into(), "".into()] {
        assert_eq!(write("/proc/sys/vm/page-cluster", &bad), Err(FsError::Invalid), "{bad:?}");
        assert_eq!(swap::readahead_max_pages(), 4, "{bad:?} changed nothing");
    }
    write("/proc/sys/vm/page-cluster", &before).unwrap();
}

#[test_case]
fn read_ahead_kb_sets_the_file_readahead_window() {
    use kernel::mm::page_cache;
    let before = read("/proc/sys/vm/read_ahead_kb").unwrap();
    assert_eq!(before.trim().parse::<u64>().unwrap(), u64::from(page_cache::readahead_max_pages()) * 4);
    write("/proc/sys/vm/read_ahead_kb", "32").unwrap();
    assert_eq!(page_cache::readahead_max_pages(), 8);
    for bad in ["5", "99999999", "lots"] {
        assert_eq!(write("/proc/sys/vm/read_ahead_kb", bad), Err(FsError::Invalid), "{bad:?}");
        assert_eq!(page_cache::readahead_max_pages(), 8, "{bad:?} changed nothing");
    }
    write("/proc/sys/vm/read_ahead_kb", &before).unwrap();
}

#[test_case]
fn transparent_hugepage_and_load_control_knobs_set_their_modes() {
    use kernel::mm::thp;
    use kernel::proc::load_control;
    let before = thp::mode();
    write("/proc/sys/vm/transparent_hugepage", "always\n").unwrap();
    assert_eq!(thp::mode(), thp::ThpMode::Always);
    assert_eq!(read("/proc/sys/vm/transparent_hugepage").unwrap(), "[always] madvise never\n");
    assert_eq!(write("/proc/sys/vm/transparent_hugepage", "sometimes"), Err(FsError::Invalid));
    assert_eq!(thp::mode(), thp::ThpMode::Always);
    thp::set_mode(before);
    let was_on = load_control::is_enabled();
    write("/proc/sys/vm/load_control", "1").unwrap();
    assert!(load_control::is_enabled());
    assert_eq!(write("/proc/sys/vm/load_control", "2"), Err(FsError::Invalid));
    assert!(load_control::is_enabled());
    write("/proc/sys/vm/load_control", "0").unwrap();
    assert!(!load_control::is_enabled());
    load_control::set_enabled(was_on);
}

#[test_case]
fn drop_caches_drops_clean_unmapped_file_pages_and_keeps_dirty_ones() {
    const NR_PAGES: usize = 16;
    let file = fs::root().create("dropme", 0o644).expect("create");
    file.write_at(0, &alloc::vec![7u8; NR_PAGES * 4096]).expect("write");
    fs::sync_inode(&*file).expect("sync");
    let cache = file.page_cache().expect("a file on the root disk has a page cache");
    let mut byte = [0u8; 1];
    for page in 0..NR_PAGES {
        file.read_at((page * 4096) as u64, &mut byte).expect("read");
    }
    assert_eq!(cache.nr_cached(), NR_PAGES);
    file.write_at(0, b"x").expect("dirty page 0"); // not synced: stays dirty
    assert_eq!(write("/proc/sys/vm/drop_caches", "5"), Err(FsError::Invalid));
    assert_eq!(cache.nr_cached(), NR_PAGES, "a refused write drops nothing");
    write("/proc/sys/vm/drop_caches", "1\n").expect("drop_caches");
    assert_eq!(cache.nr_cached(), 1, "only the dirty page stays");
    assert_eq!(cache.nr_dirty(), 1);
    file.read_at(5 * 4096, &mut byte).expect("read again from the disk");
    assert_eq!(byte[0], 7);
    assert_eq!(read("/proc/sys/vm/drop_caches").unwrap(), "1\n");
    drop(cache);
    drop(file);
    fs::root().unlink("dropme").expect("unlink");
}

/// Spawns `sleeper` (a parent with 4 MiB, blocked in wait4, and a child that
/// unmapped its copy and yields) and returns (parent, child) once both settled.
fn spawn_sleepers() -> (task::Pid, task::Pid) {
    let parent = proc::spawn("sleeper").expect("spawn sleeper");
    for _ in 0..10_000 {
        let rss: Vec<(task::Pid, u64)> =
            task::user_tasks().iter().map(|t| (t.pid, t.space.lock().stats.rss_pages)).collect();
        let is_parent_ready = rss.iter().any(|&(pid, n)| pid == parent && n >= 1024);
        let child = rss.iter().find(|&&(pid, n)| pid != parent && n < 64).map(|&(pid, _)| pid);
        if is_parent_ready && let Some(child) = child {
            return (parent, child);
        }
        proc::sched::yield_now();
    }
    panic!("sleeper never settled");
}

/// Kills and reaps the two sleepers.
fn end_sleepers(parent: task::Pid, child: task::Pid) {
    assert!(task::kill(child, format_args!("test over")));
    assert!(task::kill(parent, format_args!("test over")));
    let _ = proc::wait(Some(parent));
    task::wait_all(60_000).expect("the sleepers exit");
}

/// Returns the frames (not the zero page) mapped in `pid`'s space, and its VmRSS in pages.
fn mapped_frames(pid: task::Pid) -> (alloc::collections::BTreeSet<u64>, u64) {
    let space = task::TASKS.lock().get(&pid).and_then(|t| t.space.clone()).expect("a space");
    let space = space.lock();
    let zero = kernel::mm::fault::zero_frame();
    let mut frames = alloc::collections::BTreeSet::new();
    space.for_each_user_leaf(|_, pte, size| {
        if pte.is_present() && pte.frame() != zero {
            for i in 0..size.size_bytes() / 4096 {
                frames.insert(pte.frame().pfn() + i);
            }
        }
    });
    (frames, space.stats.rss_pages)
}

/// Returns the sum of the `name:` lines of an smaps text, in kB.
fn sum_field(text: &str, name: &str) -> u64 {
    text.lines().filter(|l| l.starts_with(&format!("{name}:"))).map(|l| field(l, name)).sum()
}

#[test_case]
fn smaps_rss_adds_up_to_vmrss_and_pss_to_the_memory_really_used() {
    let (parent, child) = spawn_sleepers();
    let mut all_frames = alloc::collections::BTreeSet::new();
    let mut pss_kb = 0;
    for pid in [parent, child] {
        let (smaps, (frames, rss)) = read_steady(&format!("/proc/{pid}/smaps"), || {
            let (frames, rss) = mapped_frames(pid);
            (frames.len(), rss)
        });
        let (frames_now, _) = mapped_frames(pid);
        assert_eq!(frames, frames_now.len());
        assert_eq!(sum_field(&smaps, "Rss"), rss * 4, "the sum of Rss is VmRSS:\n{smaps}");
        let vmas = smaps.lines().filter(|l| l.starts_with("VmFlags:")).count();
        assert_eq!(vmas, read(&format!("/proc/{pid}/maps")).unwrap().lines().count(), "one entry per VMA");
        let shared = sum_field(&smaps, "Shared_Clean") + sum_field(&smaps, "Shared_Dirty");
        let private = sum_field(&smaps, "Private_Clean") + sum_field(&smaps, "Private_Dirty");
        assert_eq!(shared + private, rss * 4, "every resident page is shared or private");
        assert!(shared > 0, "after fork, parent and child share pages:\n{smaps}");
        let rollup = read(&format!("/proc/{pid}/smaps_rollup")).unwrap();
        assert!(rollup.lines().next().unwrap().ends_with("[rollup]"), "{rollup}");
        assert_eq!(field(&rollup, "Rss"), rss * 4);
        let pss = field(&rollup, "Pss");
        assert!(pss < rss * 4, "shared pages count a part each: Pss {pss} < Rss {}", rss * 4);
        assert!(pss.abs_diff(sum_field(&smaps, "Pss")) <= vmas as u64, "rollup and smaps agree");
        pss_kb += pss;
        all_frames.extend(frames_now);
    }
    // Only these two processes map user pages: their Pss adds up to the distinct
    // frames they map (each rollup rounds down by less than 1 kB).
    let used_kb = all_frames.len() as u64 * 4;
    assert!(pss_kb <= used_kb && used_kb - pss_kb <= 2, "Pss {pss_kb} kB, frames used {used_kb} kB");
    end_sleepers(parent, child);
}

#[test_case]
fn pid_stat_and_statm_have_linuxs_fields() {
    let (parent, child) = spawn_sleepers();
    let space = task::TASKS.lock().get(&parent).and_then(|t| t.space.clone()).expect("space");
    let (stat, (rss, size, minflt)) = read_steady(&format!("/proc/{parent}/stat"), || {
        let space = space.lock();
        (space.stats.rss_pages, space.vmas().iter().map(|v| v.nr_pages()).sum::<u64>(), space.stats.minor_faults)
    });
    assert!(stat.starts_with(&format!("{parent} (sleeper) S 0 ")), "{stat}");
    let after_comm: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    assert_eq!(after_comm.len(), 50, "52 fields in all: {stat}");
    let f = |n: usize| after_comm[n - 3].parse::<i64>().unwrap(); // field n, 1-based as in proc(5)
    assert_eq!(f(10) as u64, minflt, "minflt");
    assert_eq!(f(20), 1, "num_threads");
    assert_eq!(f(23) as u64, size * 4096, "vsize in bytes");
    assert_eq!(f(24) as u64, rss, "rss in pages");
    assert!(f(22) as u64 <= kernel::arch::timer::ticks(), "starttime");
    let child_stat = read(&format!("/proc/{child}/stat")).unwrap();
    let child_fields: Vec<&str> = child_stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    assert_eq!(child_fields[1].parse::<u64>().unwrap(), parent, "the child's ppid");
    // The child yields in user mode forever: it is charged user ticks.
    let statm = read(&format!("/proc/{parent}/statm")).unwrap();
    let statm: Vec<u64> = statm.split_whitespace().map(|w| w.parse().unwrap()).collect();
    assert_eq!(statm.len(), 7);
    assert_eq!(statm[0], size);
    assert_eq!(statm[1], rss);
    end_sleepers(parent, child);
}

#[test_case]
fn oom_score_adj_minus_1000_through_proc_protects_the_would_be_victim() {
    use kernel::mm::oom::{self, OomOutcome};
    let (parent, child) = spawn_sleepers();
    let score = |pid| read(&format!("/proc/{pid}/oom_score")).unwrap().trim().parse::<u64>().unwrap();
    assert!(score(parent) > score(child), "the parent holds more: {} vs {}", score(parent), score(child));
    assert!((1000..=2000).contains(&score(parent)));
    let adj_path = format!("/proc/{parent}/oom_score_adj");
    assert_eq!(read(&adj_path).unwrap(), "0\n");
    for bad in ["-1001", "1001", "a lot", ""] {
        assert_eq!(write(&adj_path, bad), Err(FsError::Invalid), "{bad:?}");
        assert_eq!(read(&adj_path).unwrap(), "0\n", "{bad:?} changed nothing");
    }
    write(&adj_path, "-1000\n").unwrap();
    assert_eq!(read(&adj_path).unwrap(), "-1000\n");
    assert_eq!(score(parent), 0, "never chosen");
    assert_eq!(oom::out_of_memory(), OomOutcome::Killed(child), "the protected parent is passed over");
    let _ = proc::wait(Some(parent)); // the parent's wait4 returns: it exits with 3
    task::wait_all(60_000).expect("both exit");
}

#[test_case]
fn meminfo_fields_are_the_kernels_counters() {
    use kernel::mm::{heap, page_cache};
    let (parent, child) = spawn_sleepers();
    let (text, (census, cached, dirty, swap_cached, slab, writeback)) = read_steady("/proc/meminfo", || {
        let slab: u64 = heap::all_slabinfo().iter().map(|s| s.nr_pages()).sum();
        let (cached, dirty, writeback) = (page_cache::nr_pages(), page_cache::nr_dirty(), page_cache::nr_writeback());
        (frame::mem_census(), cached, dirty, swap::nr_cached() as u64, slab, writeback)
    });
    assert_eq!(field(&text, "Writeback"), writeback * 4);
    assert_eq!(field(&text, "Cached"), (cached + kernel::fs::tmpfs::nr_pages()) * 4, "the page cache and Shmem (tmpfs; no shared anonymous mapping here)");
    assert_eq!(field(&text, "Dirty"), dirty * 4);
    assert_eq!(field(&text, "SwapCached"), swap_cached * 4);
    assert_eq!(field(&text, "Slab"), slab * 4);
    assert!(slab > 0, "the kernel heap has slabs");
    assert_eq!(field(&text, "AnonPages"), census.nr_anon_mapped * 4);
    assert_eq!(field(&text, "Mapped"), census.nr_file_mapped * 4);
    assert_eq!(field(&text, "PageTables"), census.nr_page_table * 4);
    assert_eq!(field(&text, "AnonHugePages"), census.nr_anon_huge * 4);
    assert!(census.nr_page_table > 0, "two processes have page tables");
    // The sleepers' frames are the only mapped user frames: AnonPages counts each
    // once, however many processes map it.
    let (mut frames, _) = mapped_frames(parent);
    frames.extend(mapped_frames(child).0);
    assert_eq!(census.nr_anon_mapped + census.nr_file_mapped, frames.len() as u64);
    end_sleepers(parent, child);
}

#[test_case]
fn swapfree_moves_by_the_pages_a_program_paged_out() {
    let before = field(&read("/proc/meminfo").unwrap(), "SwapFree");
    let outs = vmstat::nr_events(SwapEvent::SwapOut);
    let (parent, child) = spawn_sleepers();
    let space = task::TASKS.lock().get(&parent).and_then(|t| t.space.clone()).expect("space");
    let (start, len) = {
        let space = space.lock();
        let big = space.vmas().iter().find(|v| v.nr_pages() >= 1024 && !v.flags.contains(mm_core::vma::VmFlags::STACK)).copied();
        let big = big.expect("the 4 MiB mapping");
        (big.start.as_u64(), big.len_bytes())
    };
    kernel::mm::reclaim::pageout(&space, start, len).expect("pageout");
    let swapped = space.lock().stats.swap_pages;
    assert!(swapped >= 1000, "most of the 4 MiB went to swap: {swapped}");
    let after = field(&read("/proc/meminfo").unwrap(), "SwapFree");
    assert_eq!(before - after, swapped * 4, "SwapFree fell by the pages paged out");
    assert_eq!(vmstat::nr_events(SwapEvent::SwapOut) - outs, swapped);
    let smaps = read(&format!("/proc/{parent}/smaps")).unwrap();
    assert_eq!(sum_field(&smaps, "Swap"), swapped * 4, "smaps shows them as Swap");
    assert_eq!(field(&read(&format!("/proc/{parent}/status")).unwrap(), "VmSwap"), swapped * 4);
    drop(space);
    end_sleepers(parent, child);
    assert_eq!(field(&read("/proc/meminfo").unwrap(), "SwapFree"), before, "and came back at exit");
}

#[test_case]
fn slabinfo_stat_uptime_and_loadavg_have_linuxs_layouts() {
    let slabinfo = read("/proc/slabinfo").unwrap();
    let mut lines = slabinfo.lines();
    assert_eq!(lines.next(), Some("slabinfo - version: 2.1"));
    assert!(lines.next().unwrap().starts_with("# name            <active_objs> <num_objs>"));
    let infos = kernel::mm::heap::all_slabinfo();
    assert_eq!(lines.clone().count(), infos.len());
    for (line, info) in lines.zip(&infos) {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.len(), 16, "{line}");
        assert_eq!(words[0], info.name);
        assert_eq!(words[2].parse::<u64>().unwrap(), info.nr_total_objects, "{line}");
        assert_eq!(words[14].parse::<u64>().unwrap(), info.nr_slabs(), "{line}");
    }
    let stat = read("/proc/stat").unwrap();
    let cpu: Vec<u64> = stat.lines().next().unwrap().split_whitespace().skip(1).map(|w| w.parse().unwrap()).collect();
    assert_eq!(cpu.len(), 10);
    let (user, system, idle) = task::cpu_ticks();
    assert!(cpu[0] <= user && cpu[2] <= system && cpu[3] <= idle);
    assert!(cpu[0] + cpu[2] + cpu[3] > 0, "ticks were charged: {stat}");
    assert!(field(&stat, "ctxt") > 0);
    assert_eq!(field(&stat, "processes"), task::nr_created());
    let uptime = read("/proc/uptime").unwrap();
    let secs: f64 = uptime.split_whitespace().next().unwrap().parse().unwrap();
    let ticks = kernel::arch::timer::ticks();
    assert!((secs * 100.0) as u64 <= ticks && ticks - (secs * 100.0) as u64 <= 2, "{uptime} at tick {ticks}");
    let loadavg = read("/proc/loadavg").unwrap();
    let words: Vec<&str> = loadavg.split_whitespace().collect();
    assert_eq!(words.len(), 5, "{loadavg}");
    for avg in &words[..3] {
        avg.parse::<f64>().unwrap_or_else(|_| panic!("{loadavg}"));
    }
    assert!(words[3].contains('/'));
}

#[test_case]
fn vmstat_prints_linuxs_columns_and_refuses_bad_arguments() {
    let (status, text) = run_tool("vmstat", "1 2");
    assert_eq!(status, task::WaitStatus::Exited(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "two headers and COUNT lines:\n{text}");
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), [
        "r", "b", "swpd", "free", "buff", "cache", "si", "so", "bi", "bo", "in", "cs", "us", "sy", "id", "wa", "st"
    ]);
    for line in &lines[2..] {
        let values: Vec<u64> = line.split_whitespace().map(|w| w.parse().expect("a number")).collect();
        assert_eq!(values.len(), 17, "{line}");
        let (free, total) = swap::slot_counts();
        assert_eq!(values[2], (total - free) * 4, "swpd: {line}");
        assert!(values[12] + values[13] + values[14] + values[15] <= 101, "percentages: {line}");
    }
    // Over a one-second interval the timer alone interrupts 100 times.
    let second: Vec<u64> = lines[3].split_whitespace().map(|w| w.parse().unwrap()).collect();
    assert!(second[10] >= 90, "in: {}", lines[3]);
    for bad in ["0", "x", "1 0", "1 2 3"] {
        let (status, text) = run_tool("vmstat", bad);
        assert_eq!(status, task::WaitStatus::Exited(1), "vmstat {bad}");
        assert_eq!(text, "", "the message goes to standard error");
    }
}

#[test_case]
fn pmap_x_totals_are_the_processs_rss_and_bad_pids_fail() {
    let (parent, child) = spawn_sleepers();
    let rss_kb = field(&read(&format!("/proc/{parent}/status")).unwrap(), "VmRSS");
    let nr_vmas = read(&format!("/proc/{parent}/maps")).unwrap().lines().count();
    let (status, text) = run_tool("pmap", &format!("-x {parent}"));
    assert_eq!(status, task::WaitStatus::Exited(0), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("{parent}:   sleeper"));
    assert_eq!(lines[1], "Address           Kbytes     RSS   Dirty Mode  Mapping");
    assert_eq!(lines.len(), 2 + nr_vmas + 2, "one line per mapping, a rule and the total:\n{text}");
    let total: Vec<&str> = lines.last().unwrap().split_whitespace().collect();
    assert_eq!(total[..2], ["total", "kB"]);
    assert_eq!(total[3].parse::<u64>().unwrap(), rss_kb, "{text}");
    assert!(text.contains("[ stack ]"), "{text}");
    let (status, plain) = run_tool("pmap", &format!("{child}"));
    assert_eq!(status, task::WaitStatus::Exited(0));
    assert!(plain.lines().last().unwrap().starts_with(" total"), "{plain}");
    for bad in ["99999", "abc", "", "-q 1", "1 2"] {
        let (status, text) = run_tool("pmap", bad);
        assert_eq!(status, task::WaitStatus::Exited(1), "pmap {bad}: {text}");
    }
    end_sleepers(parent, child);
}

#[test_case]
fn policy_lists_and_switches_and_refuses_unknown_names() {
    use kernel::mm::reclaim;
    let before = reclaim::policy_kind().name();
    let (status, text) = run_tool("policy", "");
    assert_eq!(status, task::WaitStatus::Exited(0));
    assert_eq!(text.lines().count(), reclaim::PolicyKind::ALL.len());
    assert!(text.lines().any(|l| l == format!("* {before}")), "{text}");
    let (status, _) = run_tool("policy", "lru");
    assert_eq!(status, task::WaitStatus::Exited(0));
    assert_eq!(reclaim::policy_kind(), reclaim::PolicyKind::Lru);
    assert!(read("/proc/sys/vm/page_replacement").unwrap().contains("[lru]"), "the kind's name, not the policy's");
    let (status, _) = run_tool("policy", "belady");
    assert_eq!(status, task::WaitStatus::Exited(1));
    assert_eq!(reclaim::policy_kind(), reclaim::PolicyKind::Lru, "unchanged");
    let (status, _) = run_tool("policy", "fifo lru");
    assert_eq!(status, task::WaitStatus::Exited(1));
    reclaim::set_policy(reclaim::PolicyKind::parse(before).unwrap());
}

#[test_case]
fn swapinfo_shows_the_swap_areas_slots() {
    let (status, text) = run_tool("swapinfo", "");
    assert_eq!(status, task::WaitStatus::Exited(0), "{text}");
    let (free, total) = swap::slot_counts();
    let slots = text.lines().find(|l| l.starts_with("slots:")).expect("a slots line");
    assert_eq!(slots, format!("slots:      {total} ({} KiB), {} used, {free} free", total * 4, total - free));
    assert!(text.contains(&format!("page-cluster {}", swap::readahead_max_pages().ilog2())), "{text}");
    let (status, _) = run_tool("swapinfo", "-v");
    assert_eq!(status, task::WaitStatus::Exited(1));
}

#[test_case]
fn top_lists_processes_largest_rss_first() {
    let (parent, child) = spawn_sleepers();
    let (status, text) = run_tool("top", "-b -n 2");
    assert_eq!(status, task::WaitStatus::Exited(0), "{text}");
    assert_eq!(text.matches("top - up ").count(), 2, "two screens:\n{text}");
    let screen = text.rsplit("top - up ").next().unwrap();
    let rows: Vec<Vec<&str>> = screen
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("PID"))
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(rows.len() >= 3, "the sleepers and top itself:\n{text}");
    assert_eq!(rows[0][0].parse::<u64>().unwrap(), parent, "the largest first:\n{text}");
    let res: Vec<u64> = rows.iter().map(|r| r[3].parse().unwrap()).collect();
    assert!(res.windows(2).all(|w| w[0] >= w[1]), "sorted by RES: {res:?}");
    assert!(rows.iter().any(|r| r[0].parse::<u64>().unwrap() == child));
    for bad in ["-n x", "-n", "-z", "-d 0"] {
        let (status, _) = run_tool("top", bad);
        assert_eq!(status, task::WaitStatus::Exited(1), "top {bad}");
    }
    end_sleepers(parent, child);
}

#[test_case]
fn meminfo_has_active_and_inactive_while_the_lists_policy_is_in_force() {
    use kernel::mm::reclaim::{self, PolicyKind};
    let before = reclaim::policy_kind();
    reclaim::set_policy(PolicyKind::Clock);
    let text = read("/proc/meminfo").unwrap();
    assert!(!text.contains("Active:") && !text.contains("Inactive:"), "clock has no such lists:\n{text}");
    let (parent, child) = spawn_sleepers();
    reclaim::set_policy(PolicyKind::ActiveInactive);
    let (text, (active, inactive)) =
        read_steady("/proc/meminfo", || reclaim::active_inactive_sizes().expect("the lists policy"));
    assert_eq!(field(&text, "Active"), active as u64 * 4);
    assert_eq!(field(&text, "Inactive"), inactive as u64 * 4);
    assert_eq!(active + inactive, reclaim::nr_tracked(), "the two lists hold every tracked page");
    assert!(active + inactive >= 1024, "the sleeper's 4 MiB are tracked");
    end_sleepers(parent, child);
    reclaim::set_policy(before);
}

#[test_case]
fn vms_limit_knobs_set_the_resident_set_limit_and_refuse_too_small_ones() {
    use kernel::mm::reclaim::resident_limit;
    let default = resident_limit::default_limit();
    assert_eq!(default, frame::buddyinfo().nr_managed_frames / 2, "half the managed frames");
    assert_eq!(read("/proc/sys/vm/vms_resident_limit").unwrap(), format!("{default}\n"));
    let pid = proc::spawn("spin").expect("spawn spin");
    let limit_path = format!("/proc/{pid}/vms_limit");
    assert_eq!(read(&limit_path).unwrap(), format!("{default}\n"), "no own limit: the default");
    assert_eq!(write(&limit_path, "64\n"), Ok(3));
    assert_eq!(read(&limit_path).unwrap(), "64\n");
    let status = read(&format!("/proc/{pid}/status")).unwrap();
    assert_eq!(field(&status, "VmsLimit"), 64, "{status}");
    assert_eq!(write(&limit_path, "31\n"), Err(FsError::Invalid), "below the minimum");
    assert_eq!(write(&limit_path, "many\n"), Err(FsError::Invalid));
    assert_eq!(read(&limit_path).unwrap(), "64\n", "a refused write changes nothing");
    assert_eq!(write("/proc/sys/vm/vms_resident_limit", "16\n"), Err(FsError::Invalid));
    assert_eq!(write("/proc/sys/vm/vms_resident_limit", "4096\n"), Ok(5));
    assert_eq!(read(&limit_path).unwrap(), "64\n", "its own limit outlives the default's change");
    assert_eq!(write(&limit_path, "0\n"), Ok(2));
    assert_eq!(read(&limit_path).unwrap(), "4096\n", "0: back to the default");
    assert_eq!(write("/proc/sys/vm/vms_resident_limit", "0\n"), Ok(2));
    assert_eq!(read("/proc/sys/vm/vms_resident_limit").unwrap(), format!("{default}\n"));
    assert!(task::kill(pid, format_args!("test over")));
    let _ = proc::wait(Some(pid));
}
