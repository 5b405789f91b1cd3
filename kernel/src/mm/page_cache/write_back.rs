//! Write-back of a [`PageCache`]'s dirty pages (fsync, msync, the writeback
//! thread, reclaim's write of a dirty victim): batches of dirty pages taken with
//! DIRTY cleared and LOCKED set, their mapped PTEs write-protected first, then each
//! run of consecutive pages handed to
//! [`PageIo::write_pages`](super::PageIo::write_pages) straight from the frames
//! (ext2 sends a run of adjacent blocks in one scatter-gather request), and the
//! file system's `sync` at the end.
//!
//! Locks: the cache's sleeping `io_lock` for the whole write-back; its `pages` lock
//! only while a batch is taken (never across I/O).

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::stats::{self, FileEvent, count};
use super::{CachedPage, PageCache, WRITEBACK_BATCH};
use crate::fs::FsError;
use crate::mm::Frame;
use crate::mm::frame::{self, FrameFlags};

impl PageCache {
    /// Writes every dirty page in `[first, last]` now (fsync, msync, munmap, exit,
    /// the writeback thread); returns the first error (the pages that failed stay
    /// dirty). Written, not flushed: [`sync_range`](Self::sync_range) also flushes.
    pub fn write_back(&self, first: u64, last: u64) -> Result<(), FsError> {
        let _io = self.io_lock.lock();
        self.write_back_locked(first, last, true)
    }

    /// [`write_back`](Self::write_back), then one flush of the device's cache
    /// (`msync(MS_SYNC)`: the range is durable when it returns).
    pub fn sync_range(&self, first: u64, last: u64) -> Result<(), FsError> {
        let written = self.write_back(first, last);
        let flushed = self.io.flush();
        written.and(flushed)
    }

    /// [`write_back`](Self::write_back) with `io_lock` held by the caller.
    ///
    /// Batches of up to [`WRITEBACK_BATCH`] dirty pages; each run of consecutive
    /// pages goes to `write_pages` in one call. When a batch is full (more may
    /// follow), the end of its last run that would not fill a device request
    /// ([`PageIo::pages_per_request`](super::PageIo::pages_per_request)) stays
    /// locked and is written with the next batch, so a file's sequential dirty
    /// pages go out in requests of the device's size, not cut at batch boundaries.
    /// The file system's metadata is written out once at the end (no flush).
    ///
    /// `ensures_headroom`: before each page, make sure the kernel heap has room
    /// (`mm::headroom`), as a system call does at its entry: a file system's write
    /// takes heap (its block buffers), and one write-back may write thousands of
    /// pages. Reclaim's own writes pass false (reclaim cannot wait for reclaim).
    pub(super) fn write_back_locked(&self, first: u64, last: u64, ensures_headroom: bool) -> Result<(), FsError> {
        let mut result = Ok(());
        let mut next = first;
        let mut has_written = false;
        let per_request = self.io.pages_per_request().max(1);
        let mut carried: Vec<CachedPage> = Vec::new();
        loop {
            self.write_protect_mapped(next, last);
            let room = WRITEBACK_BATCH - carried.len();
            let taken = self.take_dirty_batch(next, last, room);
            let last_taken = taken.last().map(|p| p.index);
            let has_more = taken.len() == room && last_taken.is_some_and(|l| l != last);
            let mut batch = core::mem::take(&mut carried);
            if batch.is_empty() {
                batch = taken;
            } else {
                batch.extend(taken);
            }
            if batch.is_empty() {
                break;
            }
            has_written = true;
            if has_more {
                let nr_carried = nr_to_carry(&batch, per_request);
                carried = batch.split_off(batch.len() - nr_carried);
            }
            for run in batch.chunk_by(|a, b| b.index == a.index + 1) {
                if ensures_headroom {
                    let _ = crate::mm::headroom::ensure_heap_headroom(); // short of it, the write may still fit
                }
                if let Err(e) = self.write_run(run) {
                    result = result.and(Err(e));
                }
            }
            // Without more to take, nothing was carried: this batch was the last.
            let Some(l) = last_taken.filter(|_| has_more) else { break };
            next = l + 1;
        }
        if has_written && let Err(e) = self.io.write_out() {
            result = result.and(Err(e));
        }
        if self.nr_dirty() == 0 {
            self.dirtied_at_ms.store(0, Ordering::Release);
        }
        result
    }

    /// Write-protects the PTEs that map the next [`WRITEBACK_BATCH`] dirty, mapped
    /// pages of `[first, last]` (through the file rmap, one TLB flush per space for
    /// the batch), so that a write after their write-back faults and dirties them
    /// again; a PTE's Dirty bit dirties its page.
    fn write_protect_mapped(&self, first: u64, last: u64) {
        let mapped: Vec<(u64, Frame)> = {
            let pages = self.pages.lock();
            let is_dirty_and_mapped = |f: Frame| frame::with_desc(f, |d| d.map_count() > 0 && d.has_flags(FrameFlags::DIRTY));
            let found = pages.range(first..=last).filter(|&(_, &f)| is_dirty_and_mapped(f));
            found.take(WRITEBACK_BATCH).map(|(&i, &f)| (i, f)).collect()
        };
        if mapped.is_empty() {
            return;
        }
        for index in crate::mm::file_rmap::write_protect_pages(self.id, &mapped) {
            self.mark_dirty(index);
        }
    }

    /// Takes up to `limit` dirty pages from `[first, last]`: each gets a
    /// handle, loses DIRTY (a write meanwhile sets it again) and gains LOCKED.
    fn take_dirty_batch(&self, first: u64, last: u64, limit: usize) -> Vec<CachedPage> {
        let mut batch = Vec::new();
        let pages = self.pages.lock();
        for (&index, &frame) in pages.range(first..=last) {
            if batch.len() == limit {
                break;
            }
            let is_taken = frame::with_desc(frame, |d| {
                if !d.has_flags(FrameFlags::DIRTY) || d.has_flags(FrameFlags::LOCKED) {
                    return false;
                }
                d.remove_flags(FrameFlags::DIRTY);
                d.insert_flags(FrameFlags::LOCKED);
                d.get_ref();
                true
            });
            if is_taken {
                stats::writeback_started();
                batch.push(CachedPage { frame, index });
            }
        }
        batch
    }

    /// Writes a run of consecutive pages taken by
    /// [`take_dirty_batch`](Self::take_dirty_batch) with one
    /// [`PageIo::write_pages`](super::PageIo::write_pages)
    /// (straight from the frames: no copy), and unlocks them; those that failed are
    /// dirty again.
    fn write_run(&self, run: &[CachedPage]) -> Result<(), FsError> {
        let mut srcs = Vec::new();
        let outcome = match srcs.try_reserve_exact(run.len()) {
            Ok(()) => {
                srcs.extend(run.iter().map(CachedPage::bytes));
                self.io.write_pages(run[0].index, &srcs, self.size())
            }
            Err(_) => Err((0, FsError::NoMemory)),
        };
        let nr_done = match outcome {
            Ok(()) => run.len(),
            Err((n, _)) => n,
        };
        for (i, page) in run.iter().enumerate() {
            self.finish_write(page, i >= nr_done);
        }
        outcome.map_err(|(_, e)| e)
    }

    /// Unlocks a page after its write; if the write `failed`, it is dirty again.
    fn finish_write(&self, page: &CachedPage, failed: bool) {
        let is_redirtied = frame::with_desc(page.frame, |d| {
            d.remove_flags(FrameFlags::LOCKED);
            // A write meanwhile may have made it dirty (and counted it) already.
            let is_redirtied = failed && !d.has_flags(FrameFlags::DIRTY);
            if is_redirtied {
                d.insert_flags(FrameFlags::DIRTY);
            }
            is_redirtied
        });
        stats::writeback_done(is_redirtied);
        count(if failed { FileEvent::WriteError } else { FileEvent::PageWritten });
    }
}

/// How many pages at the end of a full `batch` to carry into the next one: the part
/// of its last run of consecutive pages past its last whole device request of
/// `per_request` pages (all of the run if it is shorter than one request), unless
/// that is the whole batch (then it is written: write-back must progress).
fn nr_to_carry(batch: &[CachedPage], per_request: usize) -> usize {
    if per_request <= 1 {
        return 0;
    }
    let run_len = 1 + batch.windows(2).rev().take_while(|w| w[1].index == w[0].index + 1).count();
    let tail = if run_len < per_request { run_len } else { run_len % per_request };
    if tail == batch.len() { 0 } else { tail }
}
