//! Page-cache counters: pages cached, dirty and under write-back now (gauges), and
//! file I/O events since boot (Linux's `nr_file_pages`, `nr_dirty`, `nr_writeback`,
//! `pgpgin`/`pgpgout` for files). Printed by [`print_counters`].

use core::sync::atomic::{AtomicU64, Ordering};

/// File I/O events, counted machine-wide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum FileEvent {
    /// A page read from its file's device (a miss or readahead).
    PageRead,
    /// A page written back to its file's device.
    PageWritten,
    /// A page lookup that found the page cached.
    CacheHit,
    /// A page lookup that had to read the page.
    CacheMiss,
    /// A page read ahead of any use.
    ReadaheadPage,
    /// A readahead page that a read then used.
    ReadaheadHit,
    /// A clean page-cache page dropped by reclaim (no I/O).
    ReclaimedClean,
    /// A dirty page-cache page written to its file by reclaim, then dropped.
    ReclaimedWritten,
    /// A write-back that failed (the page stayed dirty).
    WriteError,
    /// Bytes `read_at` copied out of the cache.
    BytesRead,
    /// Bytes `write_at` copied into the cache.
    BytesWritten,
    /// A mapped page-cache page unmapped from every page table by reclaim (file rmap).
    UnmappedForReclaim,
    /// A fault that had to read its file page from the device (a major fault:
    /// `/proc/vmstat`'s `pgmajfault` counts these with the swap-ins).
    MajorFault,
}

const EVENTS: [(FileEvent, &str); 13] = [
    (FileEvent::PageRead, "file pages read from the device"),
    (FileEvent::PageWritten, "file pages written back"),
    (FileEvent::CacheHit, "page-cache hits"),
    (FileEvent::CacheMiss, "page-cache misses"),
    (FileEvent::ReadaheadPage, "of the pages read, read ahead (readahead)"),
    (FileEvent::ReadaheadHit, "readahead pages a read then used"),
    (FileEvent::ReclaimedClean, "clean file pages dropped by reclaim"),
    (FileEvent::ReclaimedWritten, "dirty file pages written to their file by reclaim"),
    (FileEvent::WriteError, "file write-back errors (page kept dirty)"),
    (FileEvent::BytesRead, "bytes read through the cache"),
    (FileEvent::BytesWritten, "bytes written through the cache"),
    (FileEvent::UnmappedForReclaim, "mapped file pages unmapped by reclaim (file rmap)"),
    (FileEvent::MajorFault, "faults that read their file page from the device (major)"),
];

static EVENT_COUNTS: [AtomicU64; EVENTS.len()] = [const { AtomicU64::new(0) }; EVENTS.len()];
static NR_PAGES: AtomicU64 = AtomicU64::new(0);
static NR_DIRTY: AtomicU64 = AtomicU64::new(0);
static NR_WRITEBACK: AtomicU64 = AtomicU64::new(0);

/// Counts one event.
pub(super) fn count(event: FileEvent) {
    EVENT_COUNTS[event as usize].fetch_add(1, Ordering::Relaxed);
}

/// Counts `n` events.
pub(super) fn count_n(event: FileEvent, n: u64) {
    EVENT_COUNTS[event as usize].fetch_add(n, Ordering::Relaxed);
}

/// Counts a fault that read its file page from the device (`fault::retry`).
pub fn count_major_fault() {
    count(FileEvent::MajorFault);
}

/// Returns how many times `event` happened since boot.
pub fn nr_events(event: FileEvent) -> u64 {
    EVENT_COUNTS[event as usize].load(Ordering::Relaxed)
}

/// Returns the number of pages in every page cache now.
pub fn nr_pages() -> u64 {
    NR_PAGES.load(Ordering::Relaxed)
}

/// Returns the number of dirty page-cache pages now.
pub fn nr_dirty() -> u64 {
    NR_DIRTY.load(Ordering::Relaxed)
}

/// Returns the number of page-cache pages being written back now.
pub fn nr_writeback() -> u64 {
    NR_WRITEBACK.load(Ordering::Relaxed)
}

pub(super) fn page_added() {
    NR_PAGES.fetch_add(1, Ordering::Relaxed);
}

pub(super) fn page_removed(was_dirty: bool) {
    NR_PAGES.fetch_sub(1, Ordering::Relaxed);
    if was_dirty {
        NR_DIRTY.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) fn dirtied() {
    NR_DIRTY.fetch_add(1, Ordering::Relaxed);
}

/// A dirty page was taken for write-back (it is clean, and LOCKED, from now on).
pub(super) fn writeback_started() {
    NR_DIRTY.fetch_sub(1, Ordering::Relaxed);
    NR_WRITEBACK.fetch_add(1, Ordering::Relaxed);
}

/// A write-back ended; `is_redirtied`: it failed and made the page dirty again.
pub(super) fn writeback_done(is_redirtied: bool) {
    NR_WRITEBACK.fetch_sub(1, Ordering::Relaxed);
    if is_redirtied {
        NR_DIRTY.fetch_add(1, Ordering::Relaxed);
    }
}

/// Prints the page-cache gauges and the file I/O counters.
pub fn print_counters() {
    crate::println!(
        "page cache: {} pages ({} KiB), {} dirty, {} under write-back",
        nr_pages(),
        nr_pages() * 4,
        nr_dirty(),
        nr_writeback()
    );
    for (event, name) in EVENTS {
        crate::println!("  {:>10}  {}", nr_events(event), name);
    }
}
