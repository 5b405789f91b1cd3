//! Writeback: the kernel thread that writes dirty page-cache pages to their files
//! (Linux's flusher threads), and the limits that wake it.
//!
//! A `write` only dirties pages in the cache; they reach the disk later, when
//! - they are old: every [`WRITEBACK_INTERVAL_MS`] the thread writes back each file
//!   whose first dirty page has waited [`DIRTY_EXPIRE_MS`] or more
//!   (`dirty_expire_centisecs`); or
//! - there are too many: above [`background_limit`] dirty pages (a tenth of RAM,
//!   `dirty_background_ratio`) a writer wakes the thread, which writes back every
//!   file; above [`hard_limit`] (a fifth, `dirty_ratio`) the writer writes back its
//!   own file before returning (`balance_dirty_pages`, simplified: it throttles the
//!   writer that makes the dirt);
//! - someone asks: `msync(MS_ASYNC)` ([`start_async`]), which only asks: the thread
//!   writes that file at once, and the caller does not wait for it (Linux's
//!   `MS_ASYNC` leaves the pages to its flushers too);
//!   `fsync` ([`crate::fs::Inode::sync`]); kswapd, which writes a dirty
//!   victim to its file (`page_cache::reclaim_file_frame`); direct reclaim, which
//!   does not write file pages itself but wakes this thread ([`wake`]).
//!
//! The thread runs with no lock held and takes each cache's `io_lock` through
//! `PageCache::write_back`.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::page_cache::{self, PageCache};
use crate::sync::WaitQueue;

/// How often the thread looks for old dirty pages.
pub const WRITEBACK_INTERVAL_MS: u64 = 500;
/// How old a file's dirty data gets before the thread writes it.
pub const DIRTY_EXPIRE_MS: u64 = 1000;

/// Where the thread sleeps.
static QUEUE: WaitQueue = WaitQueue::new();
/// Set when the background limit is crossed; the thread clears it.
static IS_KICKED: AtomicBool = AtomicBool::new(false);
/// Set when a file asked for its write-back ([`start_async`]); the thread clears it.
static HAS_REQUESTS: AtomicBool = AtomicBool::new(false);
/// True once the thread runs.
static IS_RUNNING: AtomicBool = AtomicBool::new(false);
/// Passes the thread has finished.
static NR_PASSES: AtomicU64 = AtomicU64::new(0);

/// Returns the number of dirty pages above which the thread writes every file.
pub fn background_limit() -> u64 {
    (super::frame::buddyinfo().nr_managed_frames / 10).max(16)
}

/// Returns the number of dirty pages above which a writer writes its own file back.
pub fn hard_limit() -> u64 {
    2 * background_limit()
}

/// Starts the writeback thread.
pub fn start() {
    match crate::sync::kthread::spawn("writeback", writeback_main) {
        Ok(_) => IS_RUNNING.store(true, Ordering::Release),
        Err(e) => log::warn!("writeback: thread not started ({e:?}); dirty pages go out on fsync and reclaim only"),
    }
}

/// Returns the number of passes the thread has finished.
pub fn nr_passes() -> u64 {
    NR_PASSES.load(Ordering::Acquire)
}

/// True while the thread is in a pass (pages of it locked for their writes).
static IS_IN_PASS: AtomicBool = AtomicBool::new(false);

/// Returns true while the thread is writing pages back (for the audit, which
/// waits for the pass to end: a page under write-back is locked).
pub fn is_in_pass() -> bool {
    IS_IN_PASS.load(Ordering::Acquire)
}

extern "C" fn writeback_main() -> ! {
    let interval_ticks = (WRITEBACK_INTERVAL_MS * crate::arch::timer::TICK_HZ / 1000).max(1);
    loop {
        let deadline = crate::arch::timer::ticks() + interval_ticks;
        let is_woken = || IS_KICKED.load(Ordering::Acquire) || HAS_REQUESTS.load(Ordering::Acquire);
        let _ = QUEUE.wait_until_deadline(is_woken, deadline);
        let is_over_limit = IS_KICKED.swap(false, Ordering::AcqRel);
        HAS_REQUESTS.store(false, Ordering::Release); // a request after this waits for the next pass
        IS_IN_PASS.store(true, Ordering::Release);
        write_back_pass(is_over_limit);
        IS_IN_PASS.store(false, Ordering::Release);
        NR_PASSES.fetch_add(1, Ordering::AcqRel);
    }
}

/// One pass: writes back every file whose dirty data expired or that asked for it
/// ([`start_async`]), or every file at all when `is_over_limit`. Errors stay in the
/// pages (dirty) and are logged.
pub fn write_back_pass(is_over_limit: bool) {
    // Files no process maps any more are closed here, where sleeping is allowed.
    super::file_rmap::release_unmapped();
    let now = crate::arch::timer::uptime_ms();
    for cache in page_cache::all_caches() {
        let is_expired = cache.dirtied_at_ms().is_some_and(|at| now.saturating_sub(at) >= DIRTY_EXPIRE_MS);
        let is_requested = cache.take_writeback_request();
        if (is_over_limit && cache.dirtied_at_ms().is_some()) || is_expired || is_requested {
            write_back_file(&cache);
        }
    }
}

fn write_back_file(cache: &PageCache) {
    if let Err(e) = cache.write_back(0, u64::MAX) {
        log::warn!("writeback: cache {}: {e:?} (pages kept dirty)", cache.id());
    }
}

/// Called when a page becomes dirty: above the background limit, wakes the thread.
pub fn note_dirty() {
    if page_cache::nr_dirty() > background_limit() && !IS_KICKED.swap(true, Ordering::AcqRel) {
        QUEUE.wake_one();
    }
}

/// Wakes the thread for a pass over every dirty file (reclaim found dirty file
/// pages it could not write itself).
pub fn wake() {
    if !IS_KICKED.swap(true, Ordering::AcqRel) {
        QUEUE.wake_one();
    }
}

/// Called by a writer after dirtying pages of `cache` (no lock held): above the
/// hard limit, it writes its own file back now.
pub fn throttle_writer(cache: &PageCache) {
    if page_cache::nr_dirty() > hard_limit() {
        write_back_file(cache);
    }
}

/// Starts the write-back of `cache`'s dirty pages and returns without waiting
/// (`msync(MS_ASYNC)`): the thread writes the file at its next pass, which this
/// wakes. Without the thread, the pages are written now.
pub fn start_async(cache: &PageCache) -> Result<(), crate::fs::FsError> {
    if !IS_RUNNING.load(Ordering::Acquire) {
        return cache.write_back(0, u64::MAX);
    }
    cache.request_writeback();
    if !HAS_REQUESTS.swap(true, Ordering::AcqRel) {
        QUEUE.wake_one();
    }
    Ok(())
}
