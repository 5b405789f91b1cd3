//! A disk in memory: the [`BlockDevice`] that host tests (and, later, a RAM-backed
//! root) use in place of the virtio driver.
//!
//! It can also fail on purpose: [`RamDisk::fail_sector`] makes every request that
//! touches a given sector return [`BlockError::Io`], so tests can check that the
//! layers above report a disk error and lose nothing.

use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;

use spin::Mutex;

use crate::{BlockDevice, BlockError, SECTOR_SIZE, check_request};

/// A disk of `sector_count` zeroed sectors held in a `Vec`.
pub struct RamDisk {
    name: &'static str,
    sector_count: u64,
    state: Mutex<State>,
}

struct State {
    bytes: Vec<u8>,
    bad_sectors: BTreeSet<u64>,
    reads: u64,
    writes: u64,
    flushes: u64,
}

impl RamDisk {
    /// A zero-filled disk of `sector_count` sectors.
    pub fn new(name: &'static str, sector_count: u64) -> Self {
        Self::from_bytes(name, vec![0; sector_count as usize * SECTOR_SIZE])
    }

    /// A disk holding `bytes` (an image file read by a test); a partial last
    /// sector is padded with zeros.
    pub fn from_bytes(name: &'static str, mut bytes: Vec<u8>) -> Self {
        let sectors = bytes.len().div_ceil(SECTOR_SIZE);
        bytes.resize(sectors * SECTOR_SIZE, 0);
        Self {
            name,
            sector_count: sectors as u64,
            state: Mutex::new(State { bytes, bad_sectors: BTreeSet::new(), reads: 0, writes: 0, flushes: 0 }),
        }
    }

    /// A copy of the whole disk (to write an image back out, or compare).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.state.lock().bytes.clone()
    }

    /// Makes every later request that touches `sector` fail with [`BlockError::Io`].
    pub fn fail_sector(&self, sector: u64) {
        self.state.lock().bad_sectors.insert(sector);
    }

    /// Requests served so far: `(reads, writes, flushes)`.
    pub fn request_counts(&self) -> (u64, u64, u64) {
        let s = self.state.lock();
        (s.reads, s.writes, s.flushes)
    }
}

impl State {
    fn check(&self, sector: u64, len: usize, sector_count: u64) -> Result<core::ops::Range<usize>, BlockError> {
        check_request(sector, len, sector_count)?;
        let sectors = (len / SECTOR_SIZE) as u64;
        if self.bad_sectors.range(sector..sector + sectors).next().is_some() {
            return Err(BlockError::Io);
        }
        let start = sector as usize * SECTOR_SIZE;
        Ok(start..start + len)
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
        let range = s.check(sector, buf.len(), self.sector_count)?;
        buf.copy_from_slice(&s.bytes[range]);
        s.reads += 1;
        Ok(())
    }

    fn write(&self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        let mut s = self.state.lock();
        let range = s.check(sector, buf.len(), self.sector_count)?;
        s.bytes[range].copy_from_slice(buf);
        s.writes += 1;
        Ok(())
    }

    fn flush(&self) -> Result<(), BlockError> {
        self.state.lock().flushes += 1;
        Ok(())
    }
}
