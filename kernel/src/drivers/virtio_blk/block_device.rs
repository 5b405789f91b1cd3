//! The virtio disk as the block layer sees it: [`VirtioDisk`] implements
//! `blockdev::BlockDevice` over a [`VirtioBlk`] behind its sleeping mutex, so swap
//! (and later the file system) use it as `&dyn BlockDevice` and never see this
//! driver's types.
//!
//! Page I/O is where the work is: the block layer hands over pages as borrowed
//! `[u8; 4096]`s, and this file turns each into a physical address for the device.
//! Memory in the direct map (frames, heap buffers) is physically contiguous there,
//! so a page is one DMA segment and up to `max_data_segments` scattered pages go
//! in one request, as [`VirtioBlk::write_frames`] sends them; a page anywhere
//! else (a kernel stack, say) goes through the bounce block, a page per request.
//! The borrow is what makes the DMA sound: the caller owns the memory for the
//! call, and the request returns only once the device is done with it.
//!
//! The driver's detailed [`BlkError`] is folded into `blockdev::BlockError` here,
//! the only place that knows both.

use alloc::string::String;
use alloc::vec::Vec;

use blockdev::{BlockDevice, BlockError, IoStats, PAGE_SIZE, Page, SECTOR_SIZE};

use super::{BlkError, SECTORS_PER_FRAME, VirtioBlk, WipeKind, direct_map_phys};
use crate::mm::PhysAddr;
use crate::sync::Mutex;

impl From<BlkError> for BlockError {
    fn from(e: BlkError) -> BlockError {
        match e {
            BlkError::BadLength(_) | BlkError::Unaligned { .. } => BlockError::BadLength,
            BlkError::OutOfRange { .. } => BlockError::OutOfRange,
            BlkError::ReadOnly => BlockError::ReadOnly,
            BlkError::IoError { .. } | BlkError::BadStatus(_) | BlkError::QueueFull | BlkError::BadFrame(_) => {
                BlockError::Io
            }
            BlkError::Unsupported => BlockError::Unsupported,
            BlkError::Timeout => BlockError::Timeout,
            BlkError::DeviceBroken => BlockError::DeviceBroken,
        }
    }
}

/// A virtio block device registered with the block layer under a name.
pub struct VirtioDisk {
    name: String,
    /// The capacity, read once at probe: it does not change, and asking for it
    /// must not take the sleeping lock (callers may hold a spinlock).
    sector_count: u64,
    blk: Mutex<VirtioBlk>,
}

impl VirtioDisk {
    /// Wraps the driver instance `blk` as the block device `name`.
    pub fn new(name: String, blk: VirtioBlk) -> VirtioDisk {
        VirtioDisk { name, sector_count: blk.capacity_sectors(), blk: Mutex::new(blk) }
    }

    /// The driver itself, for its own tests, statistics and benchmark.
    pub fn driver(&self) -> &Mutex<VirtioBlk> {
        &self.blk
    }
}

impl BlockDevice for VirtioDisk {
    fn name(&self) -> &str {
        &self.name
    }

    fn sector_count(&self) -> u64 {
        self.sector_count
    }

    fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        Ok(self.blk.lock().read(sector, buf)?)
    }

    fn write(&self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        Ok(self.blk.lock().write(sector, buf)?)
    }

    fn flush(&self) -> Result<(), BlockError> {
        Ok(self.blk.lock().flush()?)
    }

    fn is_read_only(&self) -> bool {
        self.blk.lock().is_read_only()
    }

    fn max_pages_per_request(&self) -> usize {
        self.blk.lock().max_data_segments
    }

    fn read_pages(&self, sector: u64, pages: &mut [&mut Page]) -> Result<(), BlockError> {
        Ok(self.blk.lock().read_pages(sector, pages)?)
    }

    fn write_pages(&self, sector: u64, pages: &[&Page]) -> Result<(), BlockError> {
        Ok(self.blk.lock().write_pages(sector, pages)?)
    }

    fn write_page_runs(&self, runs: &[(u64, &[&Page])], results: &mut [Result<(), BlockError>]) {
        let mut blk_results: Vec<Result<(), BlkError>> = Vec::new();
        if blk_results.try_reserve_exact(runs.len()).is_err() {
            // No memory for the batch's books: one run after another.
            for (&(sector, pages), result) in runs.iter().zip(results.iter_mut()) {
                *result = self.write_pages(sector, pages);
            }
            return;
        }
        blk_results.resize(runs.len(), Ok(()));
        self.blk.lock().write_page_runs(runs, &mut blk_results);
        for (result, r) in results.iter_mut().zip(blk_results) {
            *result = r.map_err(BlockError::from);
        }
    }

    fn read_page_runs(&self, runs: &mut [(u64, &mut [&mut Page])], results: &mut [Result<(), BlockError>]) {
        let mut blk_results: Vec<Result<(), BlkError>> = Vec::new();
        if blk_results.try_reserve_exact(runs.len()).is_err() {
            for ((sector, pages), result) in runs.iter_mut().zip(results.iter_mut()) {
                *result = self.read_pages(*sector, pages);
            }
            return;
        }
        blk_results.resize(runs.len(), Ok(()));
        self.blk.lock().read_page_runs(runs, &mut blk_results);
        for (result, r) in results.iter_mut().zip(blk_results) {
            *result = r.map_err(BlockError::from);
        }
    }

    fn io_stats(&self) -> Option<IoStats> {
        let stats = self.blk.lock().stats();
        let sectors = |bytes: u64| bytes / SECTOR_SIZE as u64;
        Some(IoStats {
            nr_reads: stats.nr_reads,
            sectors_read: sectors(stats.bytes_read),
            nr_writes: stats.nr_writes,
            sectors_written: sectors(stats.bytes_written),
            nr_flushes: stats.nr_flushes,
        })
    }

    fn wipe_kind(&self) -> Option<WipeKind> {
        self.blk.lock().wipe_kind()
    }

    fn write_zeroes(&self, sector: u64, nr_sectors: u64) -> Result<(), BlockError> {
        Ok(self.blk.lock().wipe_as(WipeKind::Zeroed, sector, nr_sectors)?)
    }

    fn discard(&self, sector: u64, nr_sectors: u64) -> Result<(), BlockError> {
        Ok(self.blk.lock().wipe_as(WipeKind::Discarded, sector, nr_sectors)?)
    }

    fn wipe(&self, sector: u64, nr_sectors: u64) -> Result<WipeKind, BlockError> {
        Ok(self.blk.lock().wipe(sector, nr_sectors)?)
    }
}

impl VirtioBlk {
    /// Reads `pages.len()` pages starting at `sector` (page i from `sector + 8 i`),
    /// by DMA straight into the pages when they are all in the direct map, in as
    /// few requests as the device allows; else a page at a time through the bounce block.
    pub fn read_pages(&mut self, sector: u64, pages: &mut [&mut Page]) -> Result<(), BlkError> {
        self.check_range(sector, pages.len() * PAGE_SIZE)?;
        if is_direct(pages.iter().map(|p| p.as_ptr())) {
            // SAFETY: each page is physically contiguous RAM (direct map, checked just
            // now), borrowed mutably for this whole call; `phys_pages_request`
            // returns only once the device gave the request back or was reset.
            return unsafe { self.phys_pages_request(false, sector, pages.len(), |i| phys_of(pages[i].as_ptr())) };
        }
        for (j, page) in pages.iter_mut().enumerate() {
            self.read(sector + j as u64 * SECTORS_PER_FRAME, &mut page[..])?;
        }
        Ok(())
    }

    /// Writes `pages` starting at `sector` (page i to `sector + 8 i`), as
    /// [`read_pages`](Self::read_pages) reads them; the device only reads the pages.
    pub fn write_pages(&mut self, sector: u64, pages: &[&Page]) -> Result<(), BlkError> {
        self.check_writable()?;
        self.check_range(sector, pages.len() * PAGE_SIZE)?;
        if is_direct(pages.iter().map(|p| p.as_ptr())) {
            // SAFETY: each page is physically contiguous RAM (direct map, checked just
            // now) borrowed for this whole call (the device only reads it); the request waits.
            return unsafe { self.phys_pages_request(true, sector, pages.len(), |i| phys_of(pages[i].as_ptr())) };
        }
        for (j, page) in pages.iter().enumerate() {
            self.write(sector + j as u64 * SECTORS_PER_FRAME, &page[..])?;
        }
        Ok(())
    }
}

impl VirtioBlk {
    /// Writes several runs of pages (run k from sector `runs[k].0`) with as many
    /// requests in flight at once as the device takes; `results[k]` gets run k's
    /// outcome. Runs whose pages are all in the direct map go in one batch; any
    /// other run (a page on a kernel stack) is written alone through the bounce
    /// block, and a run out of range fails alone.
    pub fn write_page_runs(&mut self, runs: &[(u64, &[&Page])], results: &mut [Result<(), BlkError>]) {
        let writable = self.check_writable();
        let mut is_batched = Vec::new();
        if is_batched.try_reserve_exact(runs.len()).is_err() {
            for (&(sector, pages), result) in runs.iter().zip(results.iter_mut()) {
                *result = self.write_pages(sector, pages);
            }
            return;
        }
        for (&(sector, pages), result) in runs.iter().zip(results.iter_mut()) {
            *result = writable.and_then(|()| self.check_range(sector, pages.len() * PAGE_SIZE));
            let is_direct = is_direct(pages.iter().map(|p| p.as_ptr()));
            if result.is_ok() && !is_direct {
                *result = self.write_pages(sector, pages);
            }
            is_batched.push(result.is_ok() && is_direct);
        }
        let run_of = |k: usize| if is_batched[k] { (runs[k].0, runs[k].1.len()) } else { (0, 0) };
        // SAFETY: every page of a batched run is physically contiguous RAM (direct
        // map, checked just now) borrowed for this whole call (the device only
        // reads it); the batch returns only once every request is back or the
        // device was reset.
        unsafe { self.phys_runs_request(true, results, run_of, |k, i| phys_of(runs[k].1[i].as_ptr())) };
    }

    /// Reads several runs of pages, as [`write_page_runs`](Self::write_page_runs)
    /// writes them.
    pub fn read_page_runs(&mut self, runs: &mut [(u64, &mut [&mut Page])], results: &mut [Result<(), BlkError>]) {
        let mut is_batched = Vec::new();
        if is_batched.try_reserve_exact(runs.len()).is_err() {
            for ((sector, pages), result) in runs.iter_mut().zip(results.iter_mut()) {
                *result = self.read_pages(*sector, pages);
            }
            return;
        }
        for ((sector, pages), result) in runs.iter_mut().zip(results.iter_mut()) {
            *result = self.check_range(*sector, pages.len() * PAGE_SIZE);
            let is_direct = is_direct(pages.iter().map(|p| p.as_ptr()));
            if result.is_ok() && !is_direct {
                *result = self.read_pages(*sector, pages);
            }
            is_batched.push(result.is_ok() && is_direct);
        }
        // The device writes the pages: their addresses are taken now, and the
        // borrow of `runs` (mutable, so nothing else reads them) lasts the call.
        let runs = &*runs;
        let run_of = |k: usize| if is_batched[k] { (runs[k].0, runs[k].1.len()) } else { (0, 0) };
        // SAFETY: every page of a batched run is physically contiguous RAM (direct
        // map, checked just now) borrowed mutably by our caller for this whole call;
        // the batch returns only once every request is back or the device was reset.
        unsafe { self.phys_runs_request(false, results, run_of, |k, i| phys_of(runs[k].1[i].as_ptr())) };
    }
}

/// Returns true if every page is in the direct map (physically contiguous there).
fn is_direct(mut pages: impl Iterator<Item = *const u8>) -> bool {
    pages.all(|ptr| direct_map_phys(ptr, PAGE_SIZE).is_some())
}

/// Returns the physical address of a page [`is_direct`] accepted.
fn phys_of(ptr: *const u8) -> PhysAddr {
    direct_map_phys(ptr, PAGE_SIZE).expect("virtio-blk: a page checked to be in the direct map")
}
