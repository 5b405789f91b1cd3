//! The block layer's interface: what every disk looks like to the code above it.
//!
//! A disk is an array of 512-byte sectors. [`BlockDevice`] reads and writes runs of
//! whole sectors into byte buffers, flushes the device's write cache, and says how
//! many sectors there are. Swap (`kernel/src/mm/swap`) and the file system use a disk
//! only through `&dyn BlockDevice`, so neither knows whether it is talking to the
//! virtio driver (`kernel/src/drivers/virtio_blk`) or to the [`RamDisk`] below, which
//! lets both run in host tests.
//!
//! Swap moves whole pages, many at a time, and wants each batch to be **one**
//! request (a request costs ~75 µs of QEMU round trip under TCG whether it carries
//! one page or 32). So the trait also has page I/O:
//!
//! ```text
//!  read_pages(sector, [&mut Page; n])     page i <-> sectors sector + 8 i .. sector + 8 i + 8
//!  write_pages(sector, [&Page; n])        the pages may be anywhere in memory (scatter-gather);
//!                                         one request per max_pages_per_request() pages
//!  write_zeroes / discard (wipe)          a range of sectors, no data; Unsupported by default
//! ```
//! A page is a plain `[u8; 4096]` borrowed for the call, so a RAM disk copies it
//! and a DMA driver translates its address (the kernel's driver gets the physical
//! address from the direct map): the borrow is the proof that the caller may hand
//! that memory to the device, and the driver returns only when the device is done
//! with it.
//!
//! Errors are the block layer's own ([`BlockError`]): a driver maps its device's
//! status codes onto them, and callers above never see a driver type.
//!
//! This crate is pure (`#![forbid(unsafe_code)]`) and `no_std` + `alloc`; it touches
//! no hardware.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod hybrid_poll;
pub mod in_flight;
mod ram_disk;

pub use ram_disk::RamDisk;

/// Bytes in one sector, the unit of every disk address.
pub const SECTOR_SIZE: usize = 512;
/// Bytes in one page, the unit of [`BlockDevice::read_pages`] / [`BlockDevice::write_pages`].
pub const PAGE_SIZE: usize = 4096;
/// Sectors in one page.
pub const SECTORS_PER_PAGE: u64 = (PAGE_SIZE / SECTOR_SIZE) as u64;
/// The pages swap clusters into one request (128 KiB; Linux's swap-out cluster,
/// `SWAP_CLUSTER_MAX`, is 32 pages too). Swap sizes its batches by it; a device
/// says what it carries in one request ([`BlockDevice::max_pages_per_request`]:
/// fewer, or more, as virtio-blk's 64 for a file's write-back and readahead).
pub const MAX_PAGES_PER_REQUEST: usize = 32;

/// One page of data, as page I/O moves it.
pub type Page = [u8; PAGE_SIZE];

/// Why a block request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockError {
    /// The buffer is empty or not a whole number of sectors (or of the disk's
    /// logical blocks, where those are larger than a sector and the request is not
    /// aligned to them).
    BadLength,
    /// The request reaches past the last sector.
    OutOfRange,
    /// The device reported an I/O error for this request.
    Io,
    /// The device does not support this kind of request.
    Unsupported,
    /// A write to a read-only disk.
    ReadOnly,
    /// The request did not complete in time (the driver reset the device).
    Timeout,
    /// The device broke its protocol or is gone; it is not used again.
    DeviceBroken,
}

impl core::fmt::Display for BlockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::BadLength => "buffer is not a whole number of sectors",
            Self::OutOfRange => "sector out of range",
            Self::Io => "I/O error",
            Self::Unsupported => "request not supported by the device",
            Self::ReadOnly => "the disk is read-only",
            Self::Timeout => "request timed out",
            Self::DeviceBroken => "device broken",
        })
    }
}

/// How [`BlockDevice::wipe`] wipes a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WipeKind {
    /// WRITE_ZEROES: the range reads back as zeros (the device may free the storage).
    Zeroed,
    /// DISCARD only: the storage is released, later reads are unspecified.
    Discarded,
}

/// What a device has done since boot, as `/proc/diskstats` shows it: completed
/// requests of each kind and the sectors they moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Read requests completed.
    pub nr_reads: u64,
    /// Sectors read.
    pub sectors_read: u64,
    /// Write requests completed.
    pub nr_writes: u64,
    /// Sectors written.
    pub sectors_written: u64,
    /// Flush requests completed.
    pub nr_flushes: u64,
}

/// A disk: sectors of [`SECTOR_SIZE`] bytes, numbered from 0.
///
/// Methods take `&self`: an implementation serialises its own requests (a lock
/// inside), so one device can be shared by several users.
pub trait BlockDevice: Send + Sync {
    /// A short name for messages ("swap", "root", "ram0").
    fn name(&self) -> &str;

    /// Number of sectors on the device.
    fn sector_count(&self) -> u64;

    /// Reads `buf.len() / SECTOR_SIZE` sectors starting at `sector` into `buf`.
    fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError>;

    /// Writes `buf` to the `buf.len() / SECTOR_SIZE` sectors starting at `sector`.
    fn write(&self, sector: u64, buf: &[u8]) -> Result<(), BlockError>;

    /// Makes every completed write durable (the device's write cache is emptied).
    fn flush(&self) -> Result<(), BlockError>;

    /// Capacity in bytes.
    fn capacity_bytes(&self) -> u64 {
        self.sector_count() * SECTOR_SIZE as u64
    }

    /// True if the device refuses writes ([`BlockError::ReadOnly`]).
    fn is_read_only(&self) -> bool {
        false
    }

    /// The most pages one device request of [`read_pages`](Self::read_pages) /
    /// [`write_pages`](Self::write_pages) carries (at least 1); longer lists are
    /// split. The default moves a page per request.
    fn max_pages_per_request(&self) -> usize {
        1
    }

    /// Reads `pages.len()` pages starting at `sector` (page i from
    /// `sector + 8 i`), in as few requests as the device allows. On error, any
    /// page may hold partial data. The default reads one page at a time.
    fn read_pages(&self, sector: u64, pages: &mut [&mut Page]) -> Result<(), BlockError> {
        check_request(sector, pages.len() * PAGE_SIZE, self.sector_count())?;
        for (i, page) in pages.iter_mut().enumerate() {
            self.read(sector + i as u64 * SECTORS_PER_PAGE, &mut page[..])?;
        }
        Ok(())
    }

    /// Writes `pages` to the disk starting at `sector` (page i to
    /// `sector + 8 i`), in as few requests as the device allows. The default
    /// writes one page at a time.
    fn write_pages(&self, sector: u64, pages: &[&Page]) -> Result<(), BlockError> {
        check_request(sector, pages.len() * PAGE_SIZE, self.sector_count())?;
        for (i, page) in pages.iter().enumerate() {
            self.write(sector + i as u64 * SECTORS_PER_PAGE, &page[..])?;
        }
        Ok(())
    }

    /// Writes several runs of pages, run k's pages to the sectors from `runs[k].0`
    /// as [`write_pages`](Self::write_pages) writes them, and puts run k's outcome
    /// in `results[k]` (`results` is as long as `runs`). A device that can keep
    /// several requests in flight submits them all before it waits (write-back
    /// hands a file's whole batch over this way); a failed run does not fail the
    /// others. The default writes the runs one after another.
    fn write_page_runs(&self, runs: &[(u64, &[&Page])], results: &mut [Result<(), BlockError>]) {
        for (&(sector, pages), result) in runs.iter().zip(results.iter_mut()) {
            *result = self.write_pages(sector, pages);
        }
    }

    /// Reads several runs of pages, as [`write_page_runs`](Self::write_page_runs)
    /// writes them (readahead of a file whose blocks are in several places on the
    /// disk). The default reads the runs one after another.
    fn read_page_runs(&self, runs: &mut [(u64, &mut [&mut Page])], results: &mut [Result<(), BlockError>]) {
        for ((sector, pages), result) in runs.iter_mut().zip(results.iter_mut()) {
            *result = self.read_pages(*sector, pages);
        }
    }

    /// Returns the device's request counters, or `None` if it keeps none (the default).
    fn io_stats(&self) -> Option<IoStats> {
        None
    }

    /// How [`wipe`](Self::wipe) would wipe, or `None` if the device can neither
    /// zero nor discard (the default).
    fn wipe_kind(&self) -> Option<WipeKind> {
        None
    }

    /// Makes `nr_sectors` sectors from `sector` read back as zeros without sending
    /// data. [`BlockError::Unsupported`] by default.
    fn write_zeroes(&self, sector: u64, nr_sectors: u64) -> Result<(), BlockError> {
        let _ = (sector, nr_sectors);
        Err(BlockError::Unsupported)
    }

    /// Tells the device that `nr_sectors` sectors from `sector` hold nothing
    /// anyone needs; later reads of them are unspecified. [`BlockError::Unsupported`]
    /// by default.
    fn discard(&self, sector: u64, nr_sectors: u64) -> Result<(), BlockError> {
        let _ = (sector, nr_sectors);
        Err(BlockError::Unsupported)
    }

    /// Wipes a range the best way the device can ([`wipe_kind`](Self::wipe_kind)):
    /// zeroes it, else discards it; [`BlockError::Unsupported`] if it can do neither.
    fn wipe(&self, sector: u64, nr_sectors: u64) -> Result<WipeKind, BlockError> {
        match self.wipe_kind() {
            Some(WipeKind::Zeroed) => self.write_zeroes(sector, nr_sectors).map(|()| WipeKind::Zeroed),
            Some(WipeKind::Discarded) => self.discard(sector, nr_sectors).map(|()| WipeKind::Discarded),
            None => Err(BlockError::Unsupported),
        }
    }
}

/// Checks a request of `len` bytes at `sector` against a disk of `sector_count`
/// sectors: the length must be a positive whole number of sectors and the whole
/// run must be on the disk. Drivers call it before touching the device.
pub fn check_request(sector: u64, len: usize, sector_count: u64) -> Result<(), BlockError> {
    if len == 0 || !len.is_multiple_of(SECTOR_SIZE) {
        return Err(BlockError::BadLength);
    }
    let sectors = (len / SECTOR_SIZE) as u64;
    match sector.checked_add(sectors) {
        Some(end) if end <= sector_count => Ok(()),
        _ => Err(BlockError::OutOfRange),
    }
}

#[cfg(test)]
mod tests;
