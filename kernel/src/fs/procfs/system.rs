//! `/proc/vmstat`, `/proc/buddyinfo`, `/proc/zoneinfo` and `/proc/swaps`: the
//! counters of the fault and reclaim paths, the buddy allocator and its
//! watermarks, and the swap area.

use alloc::format;
use alloc::string::String;
use core::fmt::Write;

use super::kb;
use crate::mm::vmstat::{self, SwapEvent};
use crate::mm::page_cache::{self, FileEvent};
use crate::mm::{fault::FaultOutcome, frame, swap};

/// `/proc/vmstat`: `name value` lines, Linux's names.
pub(super) fn vmstat() -> String {
    let faults = |outcome| vmstat::nr_faults(outcome);
    let tlb = crate::arch::shootdown::stats();
    let all_faults: u64 = [
        FaultOutcome::AnonymousPage,
        FaultOutcome::ZeroPage,
        FaultOutcome::ImagePage,
        FaultOutcome::CowCopy,
        FaultOutcome::CowReuse,
        FaultOutcome::SharedWrite,
        FaultOutcome::StackGrowth,
        FaultOutcome::Spurious,
        FaultOutcome::SwapIn,
        FaultOutcome::SwapCacheHit,
        FaultOutcome::HugePage,
        FaultOutcome::FilePage,
        FaultOutcome::FileCopy,
    ]
    .into_iter()
    .map(faults)
    .sum();
    let info = frame::buddyinfo();
    let rows = [
        ("nr_free_pages", info.nr_free_frames),
        ("pgfault", all_faults),
        // Major faults: a page read from swap or from its file at fault time (Linux's VM_FAULT_MAJOR).
        ("pgmajfault", faults(FaultOutcome::SwapIn) + page_cache::nr_events(FileEvent::MajorFault)),
        ("pswpin", vmstat::nr_events(SwapEvent::SwapIn)),
        ("pswpout", vmstat::nr_events(SwapEvent::SwapOut)),
        ("pgscan", vmstat::nr_events(SwapEvent::Scanned)),
        ("pgsteal", vmstat::nr_events(SwapEvent::SwapOut) + vmstat::nr_events(SwapEvent::ReclaimedClean)),
        ("pgscan_kswapd_passes", vmstat::nr_events(SwapEvent::BackgroundReclaim)),
        ("pgscan_direct_passes", vmstat::nr_events(SwapEvent::DirectReclaim)),
        ("oom_kill", vmstat::nr_events(SwapEvent::OomKill)),
        // TLB shootdown (`arch::shootdown`): Linux's two names, then ours.
        ("nr_tlb_remote_flush", tlb.shootdowns),
        ("nr_tlb_remote_flush_received", tlb.ipis),
        ("tlb_remote_pages_flushed", tlb.pages),
        ("tlb_remote_full_flushes", tlb.full_flushes),
        ("tlb_lazy_skips", tlb.lazy_skips),
        // KiB read from and written to disks: swap and file pages (Linux's pgpgin/out).
        ("pgpgin", 4 * (vmstat::nr_events(SwapEvent::SwapIn) + page_cache::nr_events(FileEvent::PageRead))),
        ("pgpgout", 4 * (vmstat::nr_events(SwapEvent::SwapOut) + page_cache::nr_events(FileEvent::PageWritten))),
        ("swap_ra", vmstat::nr_events(SwapEvent::ReadaheadPage)),
        ("swap_ra_hit", vmstat::nr_events(SwapEvent::ReadaheadHit)),
        // Page buffering (`policy=vms`): pages unmapped onto the second-chance
        // lists, and those a fault mapped back without I/O.
        ("pgbuffered", vmstat::nr_events(SwapEvent::Buffered)),
        ("pgrescued", vmstat::nr_events(SwapEvent::Rescued)),
        ("nr_file_pages", page_cache::nr_pages()),
        ("nr_dirty", page_cache::nr_dirty()),
    ];
    let mut text = String::new();
    for (name, value) in rows.into_iter().chain(crate::mm::ksm::vmstat_rows()) {
        let _ = writeln!(text, "{name} {value}");
    }
    let _ = writeln!(text, "nr_prezeroed_pages {}", crate::mm::zero_pool::nr_pooled());
    // The per-CPU page lists (`mm::pcp`), summed over the CPUs: `/proc/pcpinfo` per CPU.
    let pcp = crate::mm::pcp::total_stats();
    for (name, value) in [
        ("nr_pcp_pages", pcp.nr_listed),
        ("pcp_alloc", pcp.alloc_hits),
        ("pcp_refill", pcp.refills),
        ("pcp_free", pcp.frees),
        ("pcp_drain_high", pcp.drained_high),
        ("pcp_drain_all", pcp.drained_all),
    ] {
        let _ = writeln!(text, "{name} {value}");
    }
    for (event, name) in vmstat::ZERO_EVENTS {
        let _ = writeln!(text, "{name} {}", vmstat::nr_zero_events(event));
    }
    text
}

/// `/proc/zoneinfo`: the one zone's free frames, its watermarks (which
/// `/proc/sys/vm/watermark_scale_factor` moves) and its size, in pages, in the
/// lines and columns of Linux's (`mm/vmstat.c`, `zoneinfo_show_print`), which has
/// many more.
pub(super) fn zoneinfo() -> String {
    let info = frame::buddyinfo();
    let marks = crate::mm::reclaim::watermarks();
    let mut text = String::from("Node 0, zone   Normal\n");
    let _ = writeln!(text, "  pages free     {}", info.nr_free_frames);
    for (name, value) in [("min", marks.min), ("low", marks.low), ("high", marks.high), ("managed", info.nr_managed_frames)] {
        let _ = writeln!(text, "        {name:<8} {value}");
    }
    text
}

/// `/proc/pcpinfo`: the per-CPU page lists (`mm::pcp`), one line per online CPU,
/// like the "pagesets" of Linux's `/proc/zoneinfo`: frames listed now, `high`,
/// `batch`, then what the lists did.
pub(super) fn pcpinfo() -> String {
    let sizes = crate::mm::pcp::sizes();
    let mut text = format!(
        "per-CPU page lists: {} (pcp=off turns them off)\ncpu    count  high batch      alloc    refill      free drain_high drain_all\n",
        if crate::mm::pcp::is_enabled() { "on" } else { "off" }
    );
    for cpu in 0..crate::arch::smp::nr_online() {
        let s = crate::mm::pcp::stats(cpu);
        let _ = writeln!(
            text,
            "{cpu:<3} {:>8} {:>5} {:>5} {:>10} {:>9} {:>9} {:>10} {:>9}",
            s.nr_listed, sizes.high, sizes.batch, s.alloc_hits, s.refills, s.frees, s.drained_high, s.drained_all
        );
    }
    text
}

/// `/proc/slabmaginfo`: the per-CPU slab magazines in front of kmalloc's caches
/// (`mm::slabmag`), one line per online CPU: objects cached now, then what the
/// magazines did. (Linux has no such file; its SLUB per-CPU slabs show only in
/// `/sys/kernel/slab/*/cpu_slabs` and the `SLUB_STATS` counters.)
pub(super) fn slabmaginfo() -> String {
    let mut text = format!(
        "per-CPU slab magazines: {} (slabmag=off turns them off)\ncpu   cached      alloc    refill      free    flush   drained\n",
        if crate::mm::slabmag::is_enabled() { "on" } else { "off" }
    );
    for cpu in 0..crate::arch::smp::nr_online() {
        let s = crate::mm::slabmag::stats(cpu);
        let _ = writeln!(
            text,
            "{cpu:<3} {:>8} {:>10} {:>9} {:>9} {:>8} {:>9}",
            s.nr_cached, s.alloc_hits, s.refills, s.frees, s.flushes, s.drained
        );
    }
    text
}

/// `/proc/buddyinfo`: free blocks of each order 0..=10 in the one zone.
pub(super) fn buddyinfo() -> String {
    let info = frame::buddyinfo();
    let mut text = String::from("Node 0, zone   Normal ");
    for nr_blocks in info.nr_free_blocks {
        let _ = write!(text, "{nr_blocks:>6} ");
    }
    text.push('\n');
    text
}

/// `/proc/lock_stat`: for each lock class ever found held, how many acquisitions
/// had to wait and for how long in all (`sync::lock_stat`). Linux's file has a
/// dozen columns per lock; these are its `contentions` and `waittime-total`.
pub(super) fn lock_stat() -> String {
    let mut text = String::from("class                contentions   waittime-total-us\n");
    for class in crate::sync::lock_stat::contended_classes() {
        let _ = writeln!(text, "{:<20} {:>11} {:>19}", format!("{:?}", class.rank), class.contended, class.wait_ns / 1000);
    }
    text
}

/// `/proc/swaps`: the header line and one line for the swap disk (sizes in KiB).
pub(super) fn swaps() -> String {
    let (free_slots, total_slots) = swap::slot_counts();
    let mut text = String::from("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
    if total_slots > 0 {
        let _ = writeln!(
            text,
            "{:<40}partition\t{}\t\t{}\t\t-2",
            "/dev/vda",
            kb(total_slots),
            kb(total_slots - free_slots)
        );
    }
    text
}


/// `/proc/slabinfo`: Linux's version 2.1 layout (`mm/slab_common.c`), one line per
/// slab cache: the kmalloc size classes and the typed caches. `<objsize>` is the
/// space an object takes in its slab (SLUB prints that too); there are no
/// per-CPU tunables here (SLUB's are 0 as well).
pub(super) fn slabinfo() -> String {
    let mut text = String::from("slabinfo - version: 2.1\n");
    text.push_str(
        "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>\n",
    );
    for info in crate::mm::heap::all_slabinfo() {
        let _ = writeln!(
            text,
            "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata {:>6} {:>6} {:>6}",
            info.name,
            info.nr_active_objects,
            info.nr_total_objects,
            info.stride_bytes,
            info.nr_objects_per_slab,
            info.nr_pages_per_slab,
            0,
            0,
            0,
            info.nr_full_slabs + info.nr_partial_slabs,
            info.nr_slabs(),
            0
        );
    }
    text
}

/// `/proc/stat`: the CPU time in ticks (USER_HZ 100), interrupts, context switches,
/// tasks created, tasks runnable (`fs/proc/stat.c`). The cpu lines are the boot
/// CPU's, the one that takes the timer tick; columns this kernel has no such
/// time for (nice, iowait, irq, softirq, steal, guest) are 0.
pub(super) fn stat() -> String {
    let (user, system, idle) = crate::proc::task::cpu_ticks();
    let cpu = format!("{user} 0 {system} {idle} 0 0 0 0 0 0");
    let mut text = String::new();
    let _ = writeln!(text, "cpu  {cpu}");
    let _ = writeln!(text, "cpu0 {cpu}");
    let _ = writeln!(text, "intr {}", crate::trap::nr_interrupts());
    let _ = writeln!(text, "ctxt {}", crate::proc::sched::nr_switches());
    let _ = writeln!(text, "btime 0");
    let _ = writeln!(text, "processes {}", crate::proc::task::nr_created());
    let _ = writeln!(text, "procs_running {}", crate::proc::task::nr_runnable());
    let _ = writeln!(text, "procs_blocked 0");
    text
}

/// `/proc/uptime`: seconds since boot and seconds the idle task ran, two decimals.
pub(super) fn uptime() -> String {
    let ticks = crate::arch::timer::ticks();
    let (_, _, idle) = crate::proc::task::cpu_ticks();
    let hz = crate::arch::timer::TICK_HZ;
    format!("{}.{:02} {}.{:02}\n", ticks / hz, ticks % hz * 100 / hz, idle / hz, idle % hz * 100 / hz)
}

/// `/proc/loadavg`: the 1, 5 and 15 minute load averages, runnable/all tasks, the
/// last pid handed out.
pub(super) fn loadavg() -> String {
    let [one, five, fifteen] = crate::proc::loadavg::averages_hundredths();
    let nr_tasks = crate::proc::task::TASKS.lock().len().saturating_sub(1);
    format!(
        "{}.{:02} {}.{:02} {}.{:02} {}/{} {}\n",
        one / 100,
        one % 100,
        five / 100,
        five % 100,
        fifteen / 100,
        fifteen % 100,
        crate::proc::task::nr_runnable(),
        nr_tasks,
        crate::proc::task::nr_created()
    )
}

/// `/proc/diskstats`: one line per block device that counts its requests, in
/// Linux's layout (major, minor, name, then reads completed, merged, sectors read,
/// ms reading, writes completed, merged, sectors written, ms writing, in flight,
/// ms doing I/O, weighted ms, four discard fields, flushes completed, ms flushing).
/// We count requests and sectors; merges, times and discards are 0. Major 254 is
/// Linux's virtio-blk; the minor numbers follow registration order.
pub(super) fn diskstats() -> String {
    let mut text = String::new();
    for (i, dev) in crate::block::devices().into_iter().enumerate() {
        let Some(s) = dev.io_stats() else { continue };
        let _ = writeln!(
            text,
            " 254 {:>7} {} {} 0 {} 0 {} 0 {} 0 0 0 0 0 0 0 0 {} 0",
            i * 16,
            dev.name(),
            s.nr_reads,
            s.sectors_read,
            s.nr_writes,
            s.sectors_written,
            s.nr_flushes
        );
    }
    text
}
