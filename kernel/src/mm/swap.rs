//! Swap: the swap area on the virtio disk and its slots.
//!
//! | piece | where |
//! |---|---|
//! | the header page, `swapon` (format a blank disk, refuse a foreign one), `swapoff` | [`area`] |
//! | the slot map (bitmap + share counts, slot 0 = header) | `mm_core::swap_map`, behind [`SWAP`] |
//! | slot I/O: one slot = one 4 KiB page = 8 sectors at `8 * slot` | [`read_slot`], [`write_slot`] |
//!
//! A swapped-out page is remembered in its non-present PTE as a swap entry
//! (`Pte::swap(SwapEntry::new(0, slot))`, area 0: there is one swap area). Every such
//! PTE holds one reference on its slot (the slot's share count), so `fork` copying a
//! swap PTE calls [`dup`] and dropping one (munmap, exit) calls [`put`]; the slot is
//! free again when its count reaches zero.
//!
//! Lock order: an address-space lock, then [`SWAP`], then the frame allocator. The
//! disk's own lock is never taken with [`SWAP`] held: slot I/O runs with no lock of
//! ours held (STYLE §5).
#![deny(unsafe_code)]

pub mod area;

use mm_core::swap_map::{SwapMap, SwapMapError, SwapSlot};

pub use area::{SwapOffError, SwapOn, SwapOnError, swapoff, swapon};
pub use mm_core::pte::SwapEntry;

use super::Frame;
use crate::drivers::virtio_blk::{self, BlkError, SECTORS_PER_FRAME};
use crate::sync::IrqMutex;

/// The one swap area's state: which slots are used, by how many references.
pub(crate) struct SwapState {
    /// Slot bitmap and share counts.
    pub(crate) map: SwapMap,
}

impl SwapState {
    fn new(map: SwapMap) -> Self {
        Self { map }
    }
}

/// The swap area (`None` while swap is off).
static SWAP: IrqMutex<Option<SwapState>> = IrqMutex::new(None);

/// Returns the first sector of `slot`.
pub const fn slot_sector(slot: u64) -> u64 {
    slot * SECTORS_PER_FRAME
}

/// Turns swap on at boot and logs the outcome; swap stays off (with a reason) if the
/// disk is missing or refused.
pub fn init() {
    match swapon() {
        Ok(on) => log::info!(
            "swap: {} slots ({} MiB) on the swap disk{}",
            on.nr_slots - 1,
            (u64::from(on.nr_slots - 1) * super::PAGE_SIZE) >> 20,
            if on.is_formatted_now { ", formatted now (the header page was blank)" } else { "" }
        ),
        Err(e) => log::warn!("swap: off: {e}"),
    }
}

/// Returns true if swap is on.
pub fn is_on() -> bool {
    SWAP.lock().is_some()
}

/// Returns (free slots, usable slots): both 0 while swap is off.
pub fn slot_counts() -> (u64, u64) {
    SWAP.lock().as_ref().map_or((0, 0), |s| (u64::from(s.map.nr_free()), u64::from(s.map.nr_slots() - 1)))
}

/// Returns the slot a swap entry names.
fn slot_of(entry: SwapEntry) -> SwapSlot {
    SwapSlot::from_index(entry.slot() as u32)
}

/// Allocates a free slot with one reference; `None` if swap is off or full.
pub fn alloc_slot() -> Option<SwapEntry> {
    let slot = SWAP.lock().as_mut()?.map.alloc()?;
    Some(SwapEntry::new(0, u64::from(slot.index())))
}

/// Adds a reference to the slot of `entry` (a copied swap PTE).
pub fn dup(entry: SwapEntry) -> Result<u16, SwapMapError> {
    SWAP.lock().as_mut().ok_or(SwapMapError::BadSlot)?.map.dup(slot_of(entry))
}

/// Drops a reference to the slot of `entry`; returns the references left.
pub fn put(entry: SwapEntry) -> Result<u16, SwapMapError> {
    SWAP.lock().as_mut().ok_or(SwapMapError::BadSlot)?.map.put(slot_of(entry))
}

/// Returns the references to the slot of `entry` (0: free).
pub fn slot_count(entry: SwapEntry) -> Result<u16, SwapMapError> {
    SWAP.lock().as_ref().ok_or(SwapMapError::BadSlot)?.map.count(slot_of(entry))
}

/// Writes `frame` to the slot of `entry`. Takes only the disk's lock.
///
/// The caller owns the frame for the duration (it is LOCKED, or the caller's own).
pub fn write_slot(entry: SwapEntry, frame: Frame) -> Result<(), BlkError> {
    debug_assert!(!SWAP.is_locked(), "write_slot: swap lock held across I/O");
    let disk = virtio_blk::swap_disk().ok_or(BlkError::DeviceBroken)?;
    disk.lock().write_frame(slot_sector(entry.slot()), frame)
}

/// Reads the slot of `entry` into `frame`. Takes only the disk's lock.
pub fn read_slot(entry: SwapEntry, frame: Frame) -> Result<(), BlkError> {
    debug_assert!(!SWAP.is_locked(), "read_slot: swap lock held across I/O");
    let disk = virtio_blk::swap_disk().ok_or(BlkError::DeviceBroken)?;
    disk.lock().read_frame(slot_sector(entry.slot()), frame)
}

/// Checks the slot map's own invariants (bitmap agrees with share counts); panics if not.
pub fn check_slot_map() {
    if let Some(state) = SWAP.lock().as_ref() {
        state.map.check_invariants();
    }
}
