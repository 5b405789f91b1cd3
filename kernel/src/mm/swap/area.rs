//! The swap area: `swapon` and `swapoff`, on a block device.
//!
//! The on-disk logic (slot layout, header check, format of a blank disk, refusal
//! of anything else) is pure and host-tested: `mm_core::swap_area::open`, over
//! `&dyn blockdev::BlockDevice`. This file picks the device, gives `open` a page
//! to read the header into, and builds the slot map:
//! - [`swapon`] uses the block layer's device named by `swapdev=NAME` on the
//!   command line, "swap" by default (the virtio disk the runner attaches), and
//!   `swapdev=ram` makes a RAM disk of [`RAM_SWAP_BYTES`] first and swaps to it;
//! - [`swapon_device`] takes any registered device (tests).
//!
//! No slot content survives a boot: every slot starts free. [`swapoff`] turns swap
//! off again when no slot is in use (tests use it to re-run `swapon` on a header
//! they damaged, or on another disk).
//!
//! Lock state: called with no lock held; takes the swap lock, and the disk's lock
//! (inside the device) for the header I/O, never both at once.
#![deny(unsafe_code)]

use core::fmt;

use blockdev::{BlockDevice, BlockError};
use mm_core::swap_area::{self, OpenError};
use mm_core::swap_header::HeaderError;
use mm_core::swap_map::SwapMap;

use super::{SWAP, SwapState};
use crate::mm::Order;
use crate::mm::frame::OwnedFrames;

/// The most slots an area may have (4 GiB of swap): bounds the slot map's memory
/// (2 bytes of share count and one bit per slot: 2.1 MiB at this size).
pub const MAX_SLOTS: u64 = 1 << 20;

/// The size of the RAM disk `swapdev=ram` swaps to.
pub const RAM_SWAP_BYTES: u64 = 16 << 20;

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
    Io(BlockError),
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
            SwapOnError::Io(e) => write!(f, "header I/O failed: {e}"),
            SwapOnError::Refused(e) => write!(f, "refusing a disk that is not a blank or RKSWAP01 swap area: {e}"),
            SwapOnError::NoMemory => write!(f, "out of memory"),
        }
    }
}

impl From<OpenError> for SwapOnError {
    fn from(e: OpenError) -> SwapOnError {
        match e {
            OpenError::Unusable => SwapOnError::Unusable,
            OpenError::Io(e) => SwapOnError::Io(e),
            OpenError::Refused(e) => SwapOnError::Refused(e),
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

/// Returns the name of the block device swap uses: `swapdev=NAME`, else "swap".
pub fn device_name() -> &'static str {
    crate::cmdline::value("swapdev").unwrap_or("swap")
}

/// Returns the swap device: the registered device [`device_name`] names; for
/// `swapdev=ram`, a RAM disk of [`RAM_SWAP_BYTES`] made (and registered) now.
fn find_device() -> Result<&'static dyn BlockDevice, SwapOnError> {
    let name = device_name();
    if let Some(disk) = crate::block::find(name) {
        return Ok(disk);
    }
    if name == "ram" {
        return match crate::block::add_ram_disk("ram", RAM_SWAP_BYTES) {
            Ok(disk) => Ok(disk),
            Err(crate::block::RegisterError::NoMemory) => Err(SwapOnError::NoMemory),
            Err(crate::block::RegisterError::NameTaken) => Err(SwapOnError::NoDisk),
        };
    }
    Err(SwapOnError::NoDisk)
}

/// Turns swap on, on the device `swapdev=` names (see the module docs).
pub fn swapon() -> Result<SwapOn, SwapOnError> {
    if SWAP.lock().is_some() {
        return Err(SwapOnError::AlreadyOn);
    }
    swapon_device(find_device()?)
}

/// Turns swap on, on `disk`: checks (or formats) the header, then builds the slot map.
pub fn swapon_device(disk: &'static dyn BlockDevice) -> Result<SwapOn, SwapOnError> {
    if SWAP.lock().is_some() {
        return Err(SwapOnError::AlreadyOn);
    }
    let mut header = OwnedFrames::new_zeroed(Order(0)).map_err(|_| SwapOnError::NoMemory)?;
    let opened = swap_area::open(disk, MAX_SLOTS, header.page_mut())?;
    drop(header);
    let nr_slots = opened.nr_slots as u32; // <= MAX_SLOTS
    let mut map = SwapMap::new(nr_slots);
    if disk.wipe_kind().is_some() {
        map.track_wipes(); // freed slots get wiped: see `swap::wipe_freed_slots`
    } else {
        log::info!("swap: {} can neither zero nor discard: freed slots keep their old contents", disk.name());
    }
    let state = SwapState::new(map, disk).map_err(|_| SwapOnError::NoMemory)?;
    let mut swap = SWAP.lock();
    if swap.is_some() {
        return Err(SwapOnError::AlreadyOn);
    }
    *swap = Some(state);
    Ok(SwapOn { nr_slots, is_formatted_now: opened.is_formatted_now })
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
