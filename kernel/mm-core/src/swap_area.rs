//! The swap area on a block device, as block requests: where each slot lives, how
//! the header page is checked (or written on a blank disk), and slot reads, writes
//! and wipes. Pure: it works on any `&dyn BlockDevice`, so the host tests run it on
//! a `blockdev::RamDisk` (with failing sectors), and the kernel on whatever disk
//! `swapon` was given (`kernel/src/mm/swap/area.rs`).
//!
//! ```text
//!  a swap disk, in 4 KiB slots of 8 sectors:
//!  +---------+---------+---------+-----+-------------------+
//!  | slot 0  | slot 1  | slot 2  | ... | slot nr_slots - 1 |
//!  | header  | a page  | a page  |     | a page            |
//!  +---------+---------+---------+-----+-------------------+
//!  sector    0         8         16          8 * (nr_slots - 1)
//! ```
//! [`open`] reads slot 0 and decides with [`SwapHeader::inspect`]:
//! - all zero (a fresh disk): **format**: write a header for
//!   `min(capacity, max_slots)` slots, flush, use it;
//! - a valid `RKSWAP01` header that fits the disk: use it (its slot count wins);
//! - anything else: **refuse**, leaving the disk untouched.
//!
//! Slot I/O moves whole pages: [`write_slots`] sends a run of pages for adjacent
//! slots as one request (up to the device's `max_pages_per_request`), which is
//! what makes swap-out clustering and readahead pay.

use blockdev::{BlockDevice, BlockError, PAGE_SIZE, Page, SECTORS_PER_PAGE, WipeKind};

use crate::swap_header::{HEADER_BYTES, HeaderCheck, HeaderError, SwapHeader};

/// Sectors in one slot (a slot is one page).
pub const SECTORS_PER_SLOT: u64 = SECTORS_PER_PAGE;

/// Returns the first sector of `slot`.
pub const fn slot_sector(slot: u64) -> u64 {
    slot * SECTORS_PER_SLOT
}

/// What [`open`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    /// Slots in the area, header included.
    pub nr_slots: u64,
    /// True if the disk was blank and a header was written.
    pub is_formatted_now: bool,
}

/// Why a disk cannot be opened as a swap area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// The disk is read-only or smaller than two slots.
    Unusable,
    /// Reading or writing the header failed.
    Io(BlockError),
    /// The header page is neither blank nor a valid header of ours: left untouched.
    Refused(HeaderError),
}

/// Opens the swap area on `dev`: reads the header page into `header` (a page buffer
/// the caller provides), and formats a blank disk for `min(capacity, max_slots)`
/// slots, or accepts a valid header, or refuses anything else. Changes nothing on
/// the disk but a blank header page.
pub fn open(dev: &dyn BlockDevice, max_slots: u64, header: &mut Page) -> Result<Opened, OpenError> {
    let capacity_slots = (dev.sector_count() / SECTORS_PER_SLOT).min(max_slots);
    if dev.is_read_only() || capacity_slots < 2 {
        return Err(OpenError::Unusable);
    }
    read_slots(dev, 0, &mut [&mut *header]).map_err(OpenError::Io)?;
    match SwapHeader::inspect(&header[..], PAGE_SIZE as u32, capacity_slots) {
        HeaderCheck::Blank => {
            // The page is all zero: only the header's bytes change.
            let mut bytes = [0u8; HEADER_BYTES];
            SwapHeader::new(PAGE_SIZE as u32, capacity_slots).encode(&mut bytes);
            header[..HEADER_BYTES].copy_from_slice(&bytes);
            write_slots(dev, 0, &[&*header]).map_err(OpenError::Io)?;
            dev.flush().map_err(OpenError::Io)?;
            Ok(Opened { nr_slots: capacity_slots, is_formatted_now: true })
        }
        HeaderCheck::Valid(h) => Ok(Opened { nr_slots: h.nr_slots, is_formatted_now: false }),
        HeaderCheck::Refused(e) => Err(OpenError::Refused(e)),
    }
}

/// Reads the adjacent slots from `first_slot` into `pages` (slot `first_slot + i`
/// into page i), one request per `max_pages_per_request` pages.
pub fn read_slots(dev: &dyn BlockDevice, first_slot: u64, pages: &mut [&mut Page]) -> Result<(), BlockError> {
    dev.read_pages(slot_sector(first_slot), pages)
}

/// Writes `pages` to the adjacent slots from `first_slot` (page i to slot
/// `first_slot + i`), one request per `max_pages_per_request` pages.
pub fn write_slots(dev: &dyn BlockDevice, first_slot: u64, pages: &[&Page]) -> Result<(), BlockError> {
    dev.write_pages(slot_sector(first_slot), pages)
}

/// Wipes `nr_slots` slots from `first_slot` (zeroes them, or discards them: see
/// [`BlockDevice::wipe`]), so a dead process's pages do not linger on the disk.
pub fn wipe_slots(dev: &dyn BlockDevice, first_slot: u64, nr_slots: u64) -> Result<WipeKind, BlockError> {
    dev.wipe(slot_sector(first_slot), nr_slots * SECTORS_PER_SLOT)
}

#[cfg(test)]
mod tests;
