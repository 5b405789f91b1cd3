//! The swap area on the swap disk: its header page, `swapon` and `swapoff`.
//!
//! ```text
//!  swap disk (virtio-blk, serial "swap"), in 4 KiB slots of 8 sectors:
//!  +---------+---------+---------+-----+-------------------+
//!  | slot 0  | slot 1  | slot 2  | ... | slot nr_slots - 1 |
//!  | header  | a page  | a page  |     | a page            |
//!  +---------+---------+---------+-----+-------------------+
//!  sector    0         8         16          8 * (nr_slots - 1)
//! ```
//! [`swapon`] reads slot 0 and decides with `mm_core::swap_header`:
//! - all zero (a fresh disk; the runner creates one for every boot): **format**: write
//!   a header for `min(capacity, MAX_SLOTS)` slots, flush, use it;
//! - a valid `RKSWAP01` header that fits the disk: use it (its slot count wins);
//! - anything else: **refuse**: log why, leave the disk untouched, swap stays off.
//!
//! Neither step changes the disk beyond the header, and no slot content survives a
//! boot: every slot starts free. [`swapoff`] turns swap off again when no slot is in
//! use (tests use it to re-run `swapon` on a header they damaged).
//!
//! Lock state: called with no lock held; takes the swap lock, and the disk lock for
//! the header I/O, never both at once.
#![deny(unsafe_code)]

use core::fmt;

use alloc::vec;

use mm_core::swap_header::{HEADER_BYTES, HeaderCheck, HeaderError, SwapHeader};
use mm_core::swap_map::SwapMap;

use super::{SWAP, SwapState, slot_sector};
use crate::drivers::virtio_blk::{self, BlkError, SECTORS_PER_FRAME};
use crate::mm::frame::OwnedFrames;
use crate::mm::{Order, PAGE_SIZE};

/// The most slots an area may have (4 GiB of swap): bounds the slot map's memory
/// (2 bytes of share count and one bit per slot: 2.1 MiB at this size).
pub const MAX_SLOTS: u64 = 1 << 20;

/// What `swapon` found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapOn {
    /// Slots in the area, header included.
    pub nr_slots: u32,
    /// True if the disk was blank and a header was written.
    pub is_formatted_now: bool,
}

/// Why swap could not be turned on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapOnError {
    /// There is no swap disk.
    NoDisk,
    /// Swap is already on.
    AlreadyOn,
    /// The disk is read-only or smaller than two slots.
    Unusable,
    /// Reading or writing the header failed.
    Io(BlkError),
    /// The header page is neither blank nor a valid header of ours: left untouched.
    Refused(HeaderError),
    /// No memory for the header buffer or the slot map.
    NoMemory,
}

impl fmt::Display for SwapOnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwapOnError::NoDisk => write!(f, "no swap disk"),
            SwapOnError::AlreadyOn => write!(f, "swap is already on"),
            SwapOnError::Unusable => write!(f, "the disk is read-only or too small"),
            SwapOnError::Io(e) => write!(f, "header I/O failed: {e:?}"),
            SwapOnError::Refused(e) => write!(f, "refusing a disk that is not a blank or RKSWAP01 swap area: {e}"),
            SwapOnError::NoMemory => write!(f, "out of memory"),
        }
    }
}

/// Why swap could not be turned off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapOffError {
    /// Swap is not on.
    NotOn,
    /// Pages are still in swap (slots in use).
    InUse(u32),
}

/// Reads slot 0 of the swap disk into a fresh buffer; returns the buffer.
fn read_header_page() -> Result<OwnedFrames, SwapOnError> {
    let disk = virtio_blk::swap_disk().ok_or(SwapOnError::NoDisk)?;
    let buf = OwnedFrames::new_zeroed(Order(0)).map_err(|_| SwapOnError::NoMemory)?;
    disk.lock().read_frame(slot_sector(0), buf.start()).map_err(SwapOnError::Io)?;
    Ok(buf)
}

/// Writes a header for `nr_slots` slots into slot 0 and makes it durable.
fn format(buf: &mut OwnedFrames, nr_slots: u64) -> Result<(), SwapOnError> {
    let disk = virtio_blk::swap_disk().ok_or(SwapOnError::NoDisk)?;
    // The buffer is all zero (the disk's blank header page was read into it).
    let mut header = [0u8; HEADER_BYTES];
    SwapHeader::new(PAGE_SIZE as u32, nr_slots).encode(&mut header);
    buf.write_bytes(0, &header);
    let mut disk = disk.lock();
    disk.write_frame(slot_sector(0), buf.start()).map_err(SwapOnError::Io)?;
    disk.flush().map_err(SwapOnError::Io)
}

/// Turns swap on: checks (or formats) the header, then builds the slot map.
pub fn swapon() -> Result<SwapOn, SwapOnError> {
    if SWAP.lock().is_some() {
        return Err(SwapOnError::AlreadyOn);
    }
    let (capacity_sectors, is_read_only) = {
        let disk = virtio_blk::swap_disk().ok_or(SwapOnError::NoDisk)?.lock();
        (disk.capacity_sectors(), disk.is_read_only())
    };
    let capacity_slots = (capacity_sectors / SECTORS_PER_FRAME).min(MAX_SLOTS);
    if is_read_only || capacity_slots < 2 {
        return Err(SwapOnError::Unusable);
    }
    let mut buf = read_header_page()?;
    let mut page = vec![0u8; PAGE_SIZE as usize];
    buf.read_bytes(0, &mut page);
    let (nr_slots, is_formatted_now) = match SwapHeader::inspect(&page, PAGE_SIZE as u32, capacity_slots) {
        HeaderCheck::Blank => {
            format(&mut buf, capacity_slots)?;
            (capacity_slots, true)
        }
        HeaderCheck::Valid(header) => (header.nr_slots, false),
        HeaderCheck::Refused(e) => return Err(SwapOnError::Refused(e)),
    };
    let nr_slots = nr_slots as u32; // <= MAX_SLOTS
    let mut map = SwapMap::new(nr_slots);
    if virtio_blk::swap_disk().is_some_and(|d| d.lock().wipe_kind().is_some()) {
        map.track_wipes(); // freed slots get wiped: see `swap::wipe_freed_slots`
    } else {
        log::info!("swap: the disk can neither zero nor discard: freed slots keep their old contents");
    }
    let state = SwapState::new(map).map_err(|_| SwapOnError::NoMemory)?;
    let mut swap = SWAP.lock();
    if swap.is_some() {
        return Err(SwapOnError::AlreadyOn);
    }
    *swap = Some(state);
    Ok(SwapOn { nr_slots, is_formatted_now })
}

/// Turns swap off; refused while any slot is in use.
pub fn swapoff() -> Result<(), SwapOffError> {
    let mut swap = SWAP.lock();
    let state = swap.as_ref().ok_or(SwapOffError::NotOn)?;
    let nr_used = state.map.nr_used();
    if nr_used != 0 {
        return Err(SwapOffError::InUse(nr_used));
    }
    let old = swap.take();
    drop(swap);
    drop(old); // frees the slot map outside the lock
    Ok(())
}
