//! `/proc/meminfo`: the whole machine's memory in kB, Linux's field names.
//!
//! Each figure comes from the structure that owns it: the buddy allocator (free),
//! the page cache's gauges (Cached, Dirty, Writeback), the swap area (SwapTotal,
//! SwapFree, SwapCached), the slab caches (Slab), and one walk of the frame table
//! (`frame::mem_census`: AnonPages, Mapped, PageTables, AnonHugePages), so that
//! a page shared by several processes counts once, as on Linux.
//! MemAvailable is free memory plus the clean page cache (what reclaim or
//! `drop_caches` can free without I/O); Linux also adds reclaimable slab and keeps
//! back the reserves. Buffers is 0: there is no buffer cache (the page cache holds
//! file pages only).
//! Shmem is what Linux keeps in shmem, its in-memory file system: the pages of
//! tmpfs files (`fs::tmpfs::nr_pages`) and the resident pages of shared anonymous
//! mappings (`MAP_SHARED | MAP_ANONYMOUS`), each counted once however many
//! processes map it ([`super::smaps::shmem_in`], summed over every process). As on
//! Linux, Shmem is part of Cached (which is not all reclaimable: MemAvailable
//! leaves it out), and its mapped pages are in Mapped, not AnonPages. A shared
//! anonymous page in swap is not in Shmem (Linux counts it while its swap-cache
//! copy stays).
//! Active and Inactive are there while the `lists` policy (Linux's two lists) is
//! in force, the sizes of its lists (anonymous and file pages together).
//! PageTables counts every page-table frame, the kernel's own tables too (Linux
//! counts only those of processes); with few processes running, most are the kernel's.

use alloc::format;
use alloc::string::String;
use core::fmt::Write;

use super::kb;
use crate::fs::tmpfs;
use crate::mm::{frame, heap, page_cache, reclaim, swap};
use crate::proc::task;

/// Returns the frames mapped by shared anonymous mappings, each counted once: the
/// sum over every process of its proportional share of them.
pub(crate) fn shmem_mapped_pages() -> u64 {
    let shifted: u64 = task::user_tasks().iter().map(|p| super::smaps::shmem_in(&p.space.lock()).1).sum();
    // Thirds of a page from three processes add up to just under one: round.
    (shifted + (1 << (super::smaps::PSS_SHIFT - 1))) >> super::smaps::PSS_SHIFT
}

/// `/proc/meminfo`.
pub(super) fn meminfo() -> String {
    let info = frame::buddyinfo();
    let census = frame::mem_census();
    let (free_slots, total_slots) = swap::slot_counts();
    let (cached, dirty, writeback) = (page_cache::nr_pages(), page_cache::nr_dirty(), page_cache::nr_writeback());
    let slab: u64 = heap::all_slabinfo().iter().map(|s| s.nr_pages()).sum();
    let shmem_mapped = shmem_mapped_pages();
    let shmem = tmpfs::nr_pages() + shmem_mapped;
    let mut text = String::new();
    let mut line = |name: &str, value_kb: u64| {
        let _ = writeln!(text, "{:<16}{:>8} kB", format!("{name}:"), value_kb);
    };
    line("MemTotal", kb(info.nr_managed_frames));
    line("MemFree", kb(info.nr_free_frames));
    line("MemAvailable", kb(info.nr_free_frames + cached.saturating_sub(dirty + writeback)));
    line("Buffers", 0);
    line("Cached", kb(cached + shmem));
    line("SwapCached", kb(swap::nr_cached() as u64));
    if let Some((active, inactive)) = reclaim::active_inactive_sizes() {
        line("Active", kb(active as u64));
        line("Inactive", kb(inactive as u64));
    }
    line("SwapTotal", kb(total_slots));
    line("SwapFree", kb(free_slots));
    line("Dirty", kb(dirty));
    line("Writeback", kb(writeback));
    line("AnonPages", kb(census.nr_anon_mapped.saturating_sub(shmem_mapped)));
    line("Mapped", kb(census.nr_file_mapped + shmem_mapped));
    line("Shmem", kb(shmem));
    line("Slab", kb(slab));
    line("SReclaimable", 0);
    line("SUnreclaim", kb(slab));
    line("PageTables", kb(census.nr_page_table));
    line("AnonHugePages", kb(census.nr_anon_huge));
    text
}
