//! `/proc/meminfo`: the whole machine's memory in kB, Linux's field names.

use alloc::format;
use alloc::string::String;
use core::fmt::Write;

use super::kb;
use crate::mm::{frame, swap};
use crate::proc::task;

/// `/proc/meminfo`. MemAvailable is free memory plus what reclaim can drop without
/// I/O (here: nothing is counted beyond free: there is no page cache yet). The
/// fields this kernel has no such memory for (Buffers, Cached, ...) are 0, as on
/// a Linux with none of it; they are kept so that parsers find them.
pub(super) fn meminfo() -> String {
    let info = frame::buddyinfo();
    let (free_slots, total_slots) = swap::slot_counts();
    let mut text = String::new();
    let mut line = |name: &str, value_kb: u64| {
        let _ = writeln!(text, "{:<16}{:>8} kB", format!("{name}:"), value_kb);
    };
    line("MemTotal", kb(info.nr_managed_frames));
    line("MemFree", kb(info.nr_free_frames));
    line("MemAvailable", kb(info.nr_free_frames));
    line("Buffers", 0);
    line("Cached", 0);
    line("SwapCached", 0);
    line("SwapTotal", kb(total_slots));
    line("SwapFree", kb(free_slots));
    line("Dirty", 0);
    line("Writeback", 0);
    line("AnonPages", kb(total_rss_pages()));
    line("Mapped", 0);
    line("Shmem", 0);
    text
}

/// Returns the resident pages of every live user process, summed.
fn total_rss_pages() -> u64 {
    let spaces: alloc::vec::Vec<_> = task::TASKS.lock().values().filter_map(|t| t.space.clone()).collect();
    spaces.iter().map(|s| s.lock().stats.rss_pages).sum()
}

