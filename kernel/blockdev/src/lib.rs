//! The block layer's interface: what every disk looks like to the code above it.
//!
//! A disk is an array of 512-byte sectors. [`BlockDevice`] reads and writes runs of
//! whole sectors into byte buffers, flushes the device's write cache, and says how
//! many sectors there are. Swap (`kernel/src/mm/swap`) and the file system use a disk
//! only through `&dyn BlockDevice`, so neither knows whether it is talking to the
//! virtio driver (`kernel/src/drivers/virtio_blk`) or to the [`RamDisk`] below, which
//! lets both run in host tests.
//!
//! Errors are the block layer's own ([`BlockError`]): a driver maps its device's
//! status codes onto them, and callers above never see a driver type.
//!
//! This crate is pure (`#![forbid(unsafe_code)]`) and `no_std` + `alloc`; it touches
//! no hardware.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod ram_disk;

pub use ram_disk::RamDisk;

/// Bytes in one sector, the unit of every disk address.
pub const SECTOR_SIZE: usize = 512;

/// Why a block request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockError {
    /// The buffer is empty or not a whole number of sectors.
    BadLength,
    /// The request reaches past the last sector.
    OutOfRange,
    /// The device reported an I/O error for this request.
    Io,
    /// The device does not support this kind of request.
    Unsupported,
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
            Self::Timeout => "request timed out",
            Self::DeviceBroken => "device broken",
        })
    }
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
