//! A disk in memory: the [`BlockDevice`] that host tests use in place of the virtio
//! driver, and that the kernel can swap to (`swapdev=ram`).
//!
//! The bytes live in chunks of [`CHUNK_BYTES`] on the heap, not in one block: the
//! kernel heap hands out at most 4 MiB contiguous, and a RAM disk may be larger.
//! Page requests ([`BlockDevice::read_pages`] / [`BlockDevice::write_pages`]) count as
//! one request per [`RamDisk::max_pages_per_request`] pages, as a scatter-gather
//! driver would send them, so tests can check that a caller batches its I/O. The
//! disk can wipe (write-zeroes and discard both zero the range), can be made
//! read-only, and can fail on purpose: [`RamDisk::fail_sector`] makes every request
//! that touches a given sector return [`BlockError::Io`], so tests can check that the
//! layers above report a disk error and lose nothing.

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use spin::Mutex;

use crate::{
    BlockDevice, BlockError, MAX_PAGES_PER_REQUEST, PAGE_SIZE, Page, SECTOR_SIZE, SECTORS_PER_PAGE, WipeKind,
    check_request,
};

/// Bytes in one chunk of a RAM disk's storage (64 KiB).
pub const CHUNK_BYTES: usize = 64 << 10;

/// A disk of `sector_count` sectors held in memory.
pub struct RamDisk {
    name: &'static str,
    sector_count: u64,
    state: Mutex<State>,
}

struct State {
    chunks: Vec<Box<[u8]>>,
    bad_sectors: BTreeSet<u64>,
    /// Sectors only writes (and wipes) fail on.
    bad_write_sectors: BTreeSet<u64>,
    is_read_only: bool,
    max_pages_per_request: usize,
    reads: u64,
    writes: u64,
    flushes: u64,
    wipes: u64,
}

/// Allocates `len` zero bytes, or `None` if the heap cannot.
fn try_zeroed(len: usize) -> Option<Box<[u8]>> {
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(len).ok()?;
    bytes.resize(len, 0);
    Some(bytes.into_boxed_slice())
}

impl RamDisk {
    /// A zero-filled disk of `sector_count` sectors.
    ///
    /// # Panics
    /// If the memory cannot be allocated (host tests); the kernel uses [`try_new`](Self::try_new).
    pub fn new(name: &'static str, sector_count: u64) -> Self {
        Self::try_new(name, sector_count).expect("RamDisk::new: out of memory")
    }

    /// A zero-filled disk of `sector_count` sectors, or `None` if the heap cannot
    /// hold it.
    pub fn try_new(name: &'static str, sector_count: u64) -> Option<Self> {
        let total = usize::try_from(sector_count).ok()?.checked_mul(SECTOR_SIZE)?;
        let mut chunks = Vec::new();
        chunks.try_reserve_exact(total.div_ceil(CHUNK_BYTES)).ok()?;
        let mut left = total;
        while left > 0 {
            let len = left.min(CHUNK_BYTES);
            chunks.push(try_zeroed(len)?);
            left -= len;
        }
        Some(Self {
            name,
            sector_count,
            state: Mutex::new(State {
                chunks,
                bad_sectors: BTreeSet::new(),
                bad_write_sectors: BTreeSet::new(),
                is_read_only: false,
                max_pages_per_request: MAX_PAGES_PER_REQUEST,
                reads: 0,
                writes: 0,
                flushes: 0,
                wipes: 0,
            }),
        })
    }

    /// A disk holding `bytes` (an image file read by a test); a partial last
    /// sector is padded with zeros.
    pub fn from_bytes(name: &'static str, bytes: Vec<u8>) -> Self {
        let sectors = bytes.len().div_ceil(SECTOR_SIZE);
        let disk = Self::new(name, sectors as u64);
        disk.state.lock().copy_in(0, &bytes);
        disk
    }

    /// A copy of the whole disk (to write an image back out, or compare).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = alloc::vec![0; self.sector_count as usize * SECTOR_SIZE];
        self.state.lock().copy_out(0, &mut bytes);
        bytes
    }

    /// Makes every later request that touches `sector` fail with [`BlockError::Io`].
    pub fn fail_sector(&self, sector: u64) {
        self.state.lock().bad_sectors.insert(sector);
    }

    /// Makes every later write or wipe that touches `sector` fail with
    /// [`BlockError::Io`]; reads of it still work.
    pub fn fail_writes_to(&self, sector: u64) {
        self.state.lock().bad_write_sectors.insert(sector);
    }

    /// Makes every later request that touches `sector` succeed again.
    pub fn heal_sector(&self, sector: u64) {
        let mut s = self.state.lock();
        s.bad_sectors.remove(&sector);
        s.bad_write_sectors.remove(&sector);
    }

    /// Makes the disk refuse (or accept again) writes and wipes.
    pub fn set_read_only(&self, is_read_only: bool) {
        self.state.lock().is_read_only = is_read_only;
    }

    /// Sets how many pages one page request carries (clamped to 1..=[`MAX_PAGES_PER_REQUEST`]).
    pub fn set_max_pages_per_request(&self, max: usize) {
        self.state.lock().max_pages_per_request = max.clamp(1, MAX_PAGES_PER_REQUEST);
    }

    /// Requests served so far: `(reads, writes, flushes)`. A page request counts
    /// one per device-sized batch of pages; a wipe counts in [`nr_wipes`](Self::nr_wipes).
    pub fn request_counts(&self) -> (u64, u64, u64) {
        let s = self.state.lock();
        (s.reads, s.writes, s.flushes)
    }

    /// Wipe requests (write-zeroes and discards) served so far.
    pub fn nr_wipes(&self) -> u64 {
        self.state.lock().wipes
    }
}

impl State {
    /// Checks a request of `len` bytes at `sector`: on the disk, no failing sector in it.
    fn check(&self, sector: u64, len: usize, sector_count: u64) -> Result<(), BlockError> {
        check_request(sector, len, sector_count)?;
        let sectors = (len / SECTOR_SIZE) as u64;
        if self.bad_sectors.range(sector..sector + sectors).next().is_some() {
            return Err(BlockError::Io);
        }
        Ok(())
    }

    /// Checks a write: as [`check`](Self::check), and the disk must be writable.
    fn check_write(&self, sector: u64, len: usize, sector_count: u64) -> Result<(), BlockError> {
        if self.is_read_only {
            return Err(BlockError::ReadOnly);
        }
        self.check(sector, len, sector_count)?;
        let sectors = (len / SECTOR_SIZE) as u64;
        if self.bad_write_sectors.range(sector..sector + sectors).next().is_some() {
            return Err(BlockError::Io);
        }
        Ok(())
    }

    /// Calls `f(chunk bytes, offset in the request)` for each piece of the byte
    /// range `[start, start + len)`, chunk by chunk.
    fn for_each_piece(&mut self, start: usize, len: usize, mut f: impl FnMut(&mut [u8], usize)) {
        let mut done = 0;
        while done < len {
            let at = start + done;
            let (chunk, offset) = (at / CHUNK_BYTES, at % CHUNK_BYTES);
            let piece = (len - done).min(CHUNK_BYTES - offset);
            f(&mut self.chunks[chunk][offset..offset + piece], done);
            done += piece;
        }
    }

    fn copy_in(&mut self, sector: u64, bytes: &[u8]) {
        self.for_each_piece(sector as usize * SECTOR_SIZE, bytes.len(), |disk, at| {
            disk.copy_from_slice(&bytes[at..at + disk.len()]);
        });
    }

    fn copy_out(&mut self, sector: u64, bytes: &mut [u8]) {
        self.for_each_piece(sector as usize * SECTOR_SIZE, bytes.len(), |disk, at| {
            let len = disk.len();
            bytes[at..at + len].copy_from_slice(disk);
        });
    }

    fn zero(&mut self, sector: u64, nr_sectors: u64) {
        self.for_each_piece(sector as usize * SECTOR_SIZE, nr_sectors as usize * SECTOR_SIZE, |disk, _| disk.fill(0));
    }
}

impl BlockDevice for RamDisk {
    fn name(&self) -> &str {
        self.name
    }

    fn sector_count(&self) -> u64 {
        self.sector_count
    }

    fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        let mut s = self.state.lock();
        s.check(sector, buf.len(), self.sector_count)?;
        s.copy_out(sector, buf);
        s.reads += 1;
        Ok(())
    }

    fn write(&self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        let mut s = self.state.lock();
        s.check_write(sector, buf.len(), self.sector_count)?;
        s.copy_in(sector, buf);
        s.writes += 1;
        Ok(())
    }

    fn flush(&self) -> Result<(), BlockError> {
        self.state.lock().flushes += 1;
        Ok(())
    }

    fn is_read_only(&self) -> bool {
        self.state.lock().is_read_only
    }

    fn max_pages_per_request(&self) -> usize {
        self.state.lock().max_pages_per_request
    }

    fn read_pages(&self, sector: u64, pages: &mut [&mut Page]) -> Result<(), BlockError> {
        let mut s = self.state.lock();
        check_request(sector, pages.len() * PAGE_SIZE, self.sector_count)?;
        let per_request = s.max_pages_per_request;
        for (i, batch) in pages.chunks_mut(per_request).enumerate() {
            let batch_sector = sector + (i * per_request) as u64 * SECTORS_PER_PAGE;
            s.check(batch_sector, batch.len() * PAGE_SIZE, self.sector_count)?;
            for (j, page) in batch.iter_mut().enumerate() {
                s.copy_out(batch_sector + j as u64 * SECTORS_PER_PAGE, &mut page[..]);
            }
            s.reads += 1;
        }
        Ok(())
    }

    fn write_pages(&self, sector: u64, pages: &[&Page]) -> Result<(), BlockError> {
        let mut s = self.state.lock();
        check_request(sector, pages.len() * PAGE_SIZE, self.sector_count)?;
        let per_request = s.max_pages_per_request;
        for (i, batch) in pages.chunks(per_request).enumerate() {
            let batch_sector = sector + (i * per_request) as u64 * SECTORS_PER_PAGE;
            s.check_write(batch_sector, batch.len() * PAGE_SIZE, self.sector_count)?;
            for (j, page) in batch.iter().enumerate() {
                s.copy_in(batch_sector + j as u64 * SECTORS_PER_PAGE, &page[..]);
            }
            s.writes += 1;
        }
        Ok(())
    }

    fn wipe_kind(&self) -> Option<WipeKind> {
        (!self.state.lock().is_read_only).then_some(WipeKind::Zeroed)
    }

    fn write_zeroes(&self, sector: u64, nr_sectors: u64) -> Result<(), BlockError> {
        let mut s = self.state.lock();
        let len = usize::try_from(nr_sectors).map_err(|_| BlockError::OutOfRange)?.saturating_mul(SECTOR_SIZE);
        s.check_write(sector, len, self.sector_count)?;
        s.zero(sector, nr_sectors);
        s.wipes += 1;
        Ok(())
    }

    /// A RAM disk's discard zeroes the range too (what a later read returns is
    /// unspecified, and zeros are as good as anything).
    fn discard(&self, sector: u64, nr_sectors: u64) -> Result<(), BlockError> {
        self.write_zeroes(sector, nr_sectors)
    }
}
