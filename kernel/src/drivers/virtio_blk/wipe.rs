//! Wiping sectors: `VIRTIO_BLK_T_WRITE_ZEROES` and `VIRTIO_BLK_T_DISCARD`.
//!
//! Both requests carry no data, only a 16-byte range descriptor the device reads
//! (`struct virtio_blk_discard_write_zeroes`: first sector, sector count, flags):
//! - WRITE_ZEROES guarantees that the range reads back as zeros afterwards; with
//!   the UNMAP flag the device may also free the backing storage (QEMU punches a
//!   hole in the image file when the drive has `discard=unmap`);
//! - DISCARD only says the contents are no longer needed: what a later read
//!   returns is unspecified, so it frees storage but proves nothing.
//!
//! Swap wipes slots nobody references any more, so that a dead process's pages do
//! not linger on the disk (data remanence), through the block layer
//! (`blockdev::BlockDevice::wipe`, which `block_device.rs` implements with
//! [`VirtioBlk::wipe`] / [`VirtioBlk::wipe_as`]).

use super::{BlkError, SECTOR_SIZE, VirtioBlk, req_type};
use crate::drivers::virtio_queue::Segment;

/// The range descriptor of a DISCARD or WRITE_ZEROES request.
#[derive(Clone, Copy)]
struct WipeRange {
    sector: u64,
    nr_sectors: u32,
    flags: u32,
}

impl WipeRange {
    /// Returns the 16 bytes the device reads: `le64 sector, le32 num_sectors, le32 flags`.
    fn to_bytes(self) -> [u8; 16] {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.sector.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.nr_sectors.to_le_bytes());
        bytes[12..].copy_from_slice(&self.flags.to_le_bytes());
        bytes
    }
}

/// `WipeRange::flags`: the device may unmap (deallocate) the zeroed range.
const FLAG_UNMAP: u32 = 1 << 0;

/// How a range was wiped (the block layer's kind: WRITE_ZEROES is `Zeroed`,
/// DISCARD is `Discarded`).
pub use blockdev::WipeKind;

impl VirtioBlk {
    /// Returns how [`wipe`](Self::wipe) would wipe, or `None` if the device offers
    /// neither WRITE_ZEROES nor DISCARD (or is read-only).
    pub fn wipe_kind(&self) -> Option<WipeKind> {
        if self.is_read_only() {
            None
        } else if self.max_write_zeroes_sectors > 0 {
            Some(WipeKind::Zeroed)
        } else if self.max_discard_sectors > 0 {
            Some(WipeKind::Discarded)
        } else {
            None
        }
    }

    /// Wipes `nr_sectors` sectors from `sector`: zeroes them (and lets the device
    /// unmap them) where it can, else discards them; as many requests as the
    /// device's limits need. [`BlkError::Unsupported`] if it can do neither.
    pub fn wipe(&mut self, sector: u64, nr_sectors: u64) -> Result<WipeKind, BlkError> {
        let kind = self.wipe_kind().ok_or(BlkError::Unsupported)?;
        self.wipe_as(kind, sector, nr_sectors).map(|()| kind)
    }

    /// Wipes `nr_sectors` sectors from `sector` with WRITE_ZEROES (`Zeroed`) or
    /// DISCARD (`Discarded`), as many requests as the device's limits need;
    /// [`BlkError::Unsupported`] if the device does not offer that request (or is
    /// read-only).
    pub fn wipe_as(&mut self, kind: WipeKind, sector: u64, nr_sectors: u64) -> Result<(), BlkError> {
        let is_offered = match kind {
            WipeKind::Zeroed => self.max_write_zeroes_sectors > 0,
            WipeKind::Discarded => self.max_discard_sectors > 0,
        };
        if self.is_read_only() || !is_offered {
            return Err(BlkError::Unsupported);
        }
        let len = usize::try_from(nr_sectors).ok().and_then(|n| n.checked_mul(SECTOR_SIZE)).ok_or(BlkError::OutOfRange {
            sector,
            nr_sectors,
            capacity: self.capacity,
        })?;
        self.check_range(sector, len)?;
        let (req, max_sectors, flags) = match kind {
            WipeKind::Zeroed => (req_type::WRITE_ZEROES, self.max_write_zeroes_sectors, FLAG_UNMAP),
            WipeKind::Discarded => (req_type::DISCARD, self.max_discard_sectors, 0),
        };
        let block_sectors = u64::from(self.block_size) / SECTOR_SIZE as u64;
        let max_sectors = (u64::from(max_sectors) / block_sectors * block_sectors).max(block_sectors);
        let mut next = sector;
        let end = sector + nr_sectors;
        while next < end {
            let count = (end - next).min(max_sectors);
            self.wipe_request(req, WipeRange { sector: next, nr_sectors: count as u32, flags })?;
            next += count;
        }
        Ok(())
    }

    /// Sends one DISCARD or WRITE_ZEROES request for `range`.
    fn wipe_request(&mut self, req: u32, range: WipeRange) -> Result<(), BlkError> {
        let raw = range.to_bytes();
        self.bounce_bytes()[..raw.len()].copy_from_slice(&raw);
        let segment =
            Segment { phys: self.bounce.start().start_address(), len: raw.len() as u32, is_device_writable: false };
        // SAFETY: the bounce block is owned by `self` and holds the descriptor;
        // `run` returns only once the device gave the chain back or was reset.
        unsafe { self.run(req, 0, &[segment]) }?;
        self.stats.nr_wiped_sectors += u64::from(range.nr_sectors);
        Ok(())
    }
}
