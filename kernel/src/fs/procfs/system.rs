//! `/proc/vmstat`, `/proc/buddyinfo` and `/proc/swaps`: the counters of the
//! fault and reclaim paths, the buddy allocator and the swap area.

use alloc::string::String;
use core::fmt::Write;

use super::kb;
use crate::mm::vmstat::{self, SwapEvent};
use crate::mm::{fault::FaultOutcome, frame, swap};

/// `/proc/vmstat`: `name value` lines, Linux's names.
pub(super) fn vmstat() -> String {
    let faults = |outcome| vmstat::nr_faults(outcome);
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
    ]
    .into_iter()
    .map(faults)
    .sum();
    let info = frame::buddyinfo();
    let rows = [
        ("nr_free_pages", info.nr_free_frames),
        ("pgfault", all_faults),
        ("pgmajfault", faults(FaultOutcome::SwapIn)),
        ("pswpin", vmstat::nr_events(SwapEvent::SwapIn)),
        ("pswpout", vmstat::nr_events(SwapEvent::SwapOut)),
        ("pgscan", vmstat::nr_events(SwapEvent::Scanned)),
        ("pgsteal", vmstat::nr_events(SwapEvent::SwapOut) + vmstat::nr_events(SwapEvent::ReclaimedClean)),
        ("pgscan_kswapd_passes", vmstat::nr_events(SwapEvent::BackgroundReclaim)),
        ("pgscan_direct_passes", vmstat::nr_events(SwapEvent::DirectReclaim)),
        ("oom_kill", vmstat::nr_events(SwapEvent::OomKill)),
    ];
    let mut text = String::new();
    for (name, value) in rows {
        let _ = writeln!(text, "{name} {value}");
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

