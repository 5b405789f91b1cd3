//! The swap cache's index: slot -> the frame caching it, in one array with an entry
//! per slot, allocated when swap is turned on.
//!
//! It was a `BTreeMap`: one heap insertion per swap-in and per swap-out, so the heap
//! grew exactly when memory was shortest, and under heavy swapping (17 processes on a
//! 40 MiB machine, issue #10) it took the last free frames and a later heap
//! allocation failed: a kernel panic. An array of 4 bytes a slot (256 KiB for 256 MiB
//! of swap, 0.1 % of the swap size) costs the same at every moment, and inserting or
//! removing allocates nothing.
//!
//! The frame is stored as its pfn + 1 (0: no frame), so frames up to 16 TiB fit.
#![deny(unsafe_code)]

use alloc::collections::TryReserveError;
use alloc::vec::Vec;

use super::super::Frame;

/// The swap cache's slot -> frame index (see the module docs).
pub(crate) struct SlotCache {
    /// Per slot: the caching frame's pfn + 1, or 0.
    entries: Vec<u32>,
    /// Slots with a frame.
    len: usize,
}

impl SlotCache {
    /// Creates an empty index for `nr_slots` slots; fails if the heap cannot hold it.
    pub(crate) fn with_slots(nr_slots: u32) -> Result<SlotCache, TryReserveError> {
        let mut entries = Vec::new();
        entries.try_reserve_exact(nr_slots as usize)?;
        entries.resize(nr_slots as usize, 0);
        Ok(SlotCache { entries, len: 0 })
    }

    /// Returns the frame caching `slot`, if any.
    pub(crate) fn get(&self, slot: u32) -> Option<Frame> {
        match self.entries.get(slot as usize).copied() {
            None | Some(0) => None,
            Some(pfn_plus_one) => Some(Frame::from_pfn(u64::from(pfn_plus_one) - 1)),
        }
    }

    /// Returns true if a frame caches `slot`.
    pub(crate) fn contains(&self, slot: u32) -> bool {
        self.get(slot).is_some()
    }

    /// Records that `frame` caches `slot`; returns the frame that did before, if any.
    ///
    /// # Panics
    /// If `slot` is outside the swap area or the frame number does not fit in 32 bits.
    pub(crate) fn insert(&mut self, slot: u32, frame: Frame) -> Option<Frame> {
        let pfn_plus_one = u32::try_from(frame.pfn() + 1).expect("SlotCache: frame number beyond 16 TiB");
        let old = self.get(slot);
        self.entries[slot as usize] = pfn_plus_one;
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Forgets the frame caching `slot`; returns it, if there was one.
    pub(crate) fn remove(&mut self, slot: u32) -> Option<Frame> {
        let old = self.get(slot)?;
        self.entries[slot as usize] = 0;
        self.len -= 1;
        Some(old)
    }

    /// Returns the number of cached slots.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Returns the (slot, frame) pairs from `first_slot` on, in slot order.
    pub(crate) fn iter_from(&self, first_slot: u32) -> impl Iterator<Item = (u32, Frame)> + '_ {
        (first_slot..self.entries.len() as u32).filter_map(|slot| Some((slot, self.get(slot)?)))
    }
}
