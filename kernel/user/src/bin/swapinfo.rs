//! `swapinfo`: the swap area at a glance, from `/proc/swaps`, `/proc/meminfo`,
//! `/proc/vmstat` and `/proc/sys/vm/page-cluster`: slots used and free, pages in
//! the swap cache, pages swapped out and in since boot, and swap readahead (the
//! largest window, pages read ahead, how many of them a fault then used).
//! An argument: a message and exit code 1.
#![no_std]
#![no_main]

use ulib::procfs::{self, field};

ulib::entry!(main);

fn main() -> i32 {
    if let Some(arg) = ulib::argv::arg(1) {
        ulib::eprintln!("swapinfo: no arguments are taken ({arg:?})\nusage: swapinfo");
        return 1;
    }
    let (mut swaps_buf, mut meminfo_buf, mut vmstat_buf, mut cluster_buf) = ([0u8; 512], [0u8; 2048], [0u8; 2048], [0u8; 16]);
    let files = (
        procfs::read("/proc/swaps", &mut swaps_buf),
        procfs::read("/proc/meminfo", &mut meminfo_buf),
        procfs::read("/proc/vmstat", &mut vmstat_buf),
        procfs::read("/proc/sys/vm/page-cluster", &mut cluster_buf),
    );
    let (Ok(swaps), Ok(meminfo), Ok(vmstat), Ok(cluster)) = files else {
        ulib::eprintln!("swapinfo: cannot read /proc");
        return 1;
    };
    let Some(area) = swaps.lines().nth(1) else {
        ulib::println!("swap: off (no swap area)");
        return 0;
    };
    let total = field(meminfo, "SwapTotal") / 4;
    let free = field(meminfo, "SwapFree") / 4;
    ulib::println!("area:       {}", area.split_whitespace().next().unwrap_or("?"));
    ulib::println!("slots:      {total} ({} KiB), {} used, {free} free", total * 4, total - free);
    ulib::println!("swap cache: {} pages", field(meminfo, "SwapCached") / 4);
    ulib::println!("since boot: {} pages out, {} pages in", field(vmstat, "pswpout"), field(vmstat, "pswpin"));
    let order: u32 = cluster.trim().parse().unwrap_or(0);
    let (ra, hits) = (field(vmstat, "swap_ra"), field(vmstat, "swap_ra_hit"));
    ulib::println!("readahead:  up to {} pages (page-cluster {order}); {ra} pages read ahead, {hits} used", 1u64 << order);
    0
}
