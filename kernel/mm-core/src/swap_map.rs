//! The swap area's slot allocator: which page-sized slots on the swap device are in
//! use, and by how many references each.
//!
//! A [`SwapMap`] covers a swap area of `nr_slots` slots of `PAGE_SIZE` bytes. Slot 0
//! holds the area's header page and is never handed out, so a zero swap entry in a
//! PTE can never name a real slot. Two arrays describe the rest:
//!
//! - a bitmap of used slots, one bit per slot in `u64` words, scanned from a
//!   rotating cursor (next fit) so that successive swap-outs land in successive
//!   slots and the device sees mostly sequential writes;
//! - a share count per slot: how many swap PTEs plus swap-cache references point
//!   at it (Linux's `swap_map[]` bytes). `fork` copying a swap PTE calls
//!   [`SwapMap::dup`]; unmapping one, or swapping the page back in, calls
//!   [`SwapMap::put`], and the slot is free again when the count drops to zero.
//!
//! Freed slots still hold the page that was written there. Where the device can
//! wipe (zero or discard) sectors, the kernel turns on *wipe tracking*
//! ([`SwapMap::track_wipes`]): a slot whose count drops to zero is also marked
//! *unwiped*; a background pass takes runs of adjacent unwiped slots
//! ([`SwapMap::take_unwiped_run`], which holds them in use meanwhile so nobody
//! writes them), wipes them on the disk, and hands them back
//! ([`SwapMap::finish_wipe`]). A slot allocated again before its wipe is simply no
//! longer unwiped: its new owner overwrites it.
//!
//! Bad arguments (a slot outside the area, the header slot, a slot that is not in
//! use) come back as [`SwapMapError`]; nothing here panics on caller input.
//!
//! Neighbours: the kernel's `mm/swap.rs` wraps one `SwapMap` per swap device in a
//! lock, writes pages to `slot.index() * PAGE_SIZE` through the virtio-blk driver,
//! and stores [`SwapSlot`]s in non-present PTEs (encoded by `pte.rs`).

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// Number of slots one bitmap word covers.
const BITS_PER_WORD: u32 = u64::BITS;

/// The slot holding the swap area's header; never allocated.
const HEADER_SLOT: u32 = 0;

/// One page-sized slot of a swap area, named by its index from the start of the area.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SwapSlot(u32);

impl SwapSlot {
    /// Creates the slot with index `index` (validity is checked by the [`SwapMap`]).
    pub const fn from_index(index: u32) -> SwapSlot {
        SwapSlot(index)
    }

    /// Returns the slot's index from the start of the swap area.
    pub const fn index(self) -> u32 {
        self.0
    }
}

impl fmt::Debug for SwapSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SwapSlot({})", self.0)
    }
}

/// Why a [`SwapMap`] operation was refused. The map is unchanged whenever one is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapMapError {
    /// The slot is outside the area, or is the reserved header slot.
    BadSlot,
    /// The slot is not in use, so it cannot be shared or released.
    SlotFree,
    /// The slot's share count is already at its maximum, [`SwapMap::MAX_SHARE_COUNT`].
    CountOverflow,
}

/// The allocation state of one swap area.
#[derive(Clone, Debug)]
pub struct SwapMap {
    /// Bit `i % 64` of word `i / 64` is set if slot `i` is in use. The header slot and
    /// the padding bits past `nr_slots` in the last word are permanently set, so the
    /// scan never has to special-case them.
    used_bits: Vec<u64>,
    /// References to each slot; zero exactly when the slot is free.
    share_counts: Vec<u16>,
    /// Slots in the area, the header slot included.
    nr_slots: u32,
    /// Slots currently allocated (the header slot not counted).
    nr_used: u32,
    /// Where the next allocation starts looking.
    cursor: u32,
    /// Bit set for each free slot that still holds a dead page (empty: not tracked).
    unwiped_bits: Vec<u64>,
    /// Slots whose bit is set in `unwiped_bits`.
    nr_unwiped: u32,
    /// Bit set for each slot held by a wipe in progress (empty: not tracked).
    wiping_bits: Vec<u64>,
    /// Slots whose bit is set in `wiping_bits` (counted in `nr_used` too).
    nr_wiping: u32,
}

impl SwapMap {
    /// The largest number of references one slot can have.
    pub const MAX_SHARE_COUNT: u16 = u16::MAX;

    /// Creates the map of an area of `nr_slots` slots, all free except the header slot.
    ///
    /// An area of zero or one slots has nothing to allocate.
    pub fn new(nr_slots: u32) -> SwapMap {
        let nr_words = nr_slots.div_ceil(BITS_PER_WORD) as usize;
        let mut used_bits = vec![0u64; nr_words];
        let tail_bits = nr_slots % BITS_PER_WORD;
        if let (Some(last), true) = (used_bits.last_mut(), tail_bits != 0) {
            *last = !0u64 << tail_bits;
        }
        if let Some(first) = used_bits.first_mut() {
            *first |= 1 << HEADER_SLOT;
        }
        SwapMap {
            used_bits,
            share_counts: vec![0; nr_slots as usize],
            nr_slots,
            nr_used: 0,
            cursor: HEADER_SLOT + 1,
            unwiped_bits: Vec::new(),
            nr_unwiped: 0,
            wiping_bits: Vec::new(),
            nr_wiping: 0,
        }
    }

    /// Starts marking freed slots as unwiped (see the module docs); slots freed
    /// before this call are not marked.
    pub fn track_wipes(&mut self) {
        if self.unwiped_bits.is_empty() {
            self.unwiped_bits = vec![0; self.used_bits.len()];
            self.wiping_bits = vec![0; self.used_bits.len()];
        }
    }

    /// Returns true if freed slots are marked unwiped ([`SwapMap::track_wipes`]).
    pub fn is_tracking_wipes(&self) -> bool {
        !self.unwiped_bits.is_empty()
    }

    /// Returns the number of slots held by wipes in progress: free to everyone but
    /// the wiper, allocatable again once it is done.
    pub fn nr_wiping(&self) -> u32 {
        self.nr_wiping
    }

    /// Returns the number of free slots that still hold a dead page (0 when not tracked).
    pub fn nr_unwiped(&self) -> u32 {
        self.nr_unwiped
    }

    /// Takes the first run of adjacent unwiped slots (at most `max_slots`) for
    /// wiping: they are held in use (count 1, not allocatable) and no longer
    /// unwiped. Returns the first slot and the run's length, or `None` if no slot
    /// is unwiped. The caller wipes them and then calls [`SwapMap::finish_wipe`].
    pub fn take_unwiped_run(&mut self, max_slots: u32) -> Option<(SwapSlot, u32)> {
        if self.nr_unwiped == 0 || max_slots == 0 {
            return None;
        }
        let (word_index, word) = self.unwiped_bits.iter().enumerate().find(|(_, w)| **w != 0)?;
        let first = word_index as u32 * BITS_PER_WORD + word.trailing_zeros();
        let mut len = 0;
        while len < max_slots && first + len < self.nr_slots && self.is_unwiped(first + len) {
            let index = first + len;
            self.unwiped_bits[(index / BITS_PER_WORD) as usize] &= !(1 << (index % BITS_PER_WORD));
            self.used_bits[(index / BITS_PER_WORD) as usize] |= 1 << (index % BITS_PER_WORD);
            self.share_counts[index as usize] = 1;
            self.wiping_bits[(index / BITS_PER_WORD) as usize] |= 1 << (index % BITS_PER_WORD);
            len += 1;
        }
        self.nr_unwiped -= len;
        self.nr_used += len;
        self.nr_wiping += len;
        Some((SwapSlot(first), len))
    }

    /// Frees the `len` slots from `first` that [`SwapMap::take_unwiped_run`] handed
    /// out, now wiped (or given up on). Refused, changing nothing, unless each
    /// is in use with exactly the one reference the wipe holds.
    pub fn finish_wipe(&mut self, first: SwapSlot, len: u32) -> Result<(), SwapMapError> {
        let end = first.index().checked_add(len).ok_or(SwapMapError::BadSlot)?;
        for index in first.index()..end {
            match self.count(SwapSlot(index))? {
                0 => return Err(SwapMapError::SlotFree),
                1 if self.is_wiping(SwapSlot(index)) => {}
                _ => return Err(SwapMapError::SlotFree),
            }
        }
        for index in first.index()..end {
            self.wiping_bits[(index / BITS_PER_WORD) as usize] &= !(1 << (index % BITS_PER_WORD));
            self.share_counts[index as usize] = 0;
            self.used_bits[(index / BITS_PER_WORD) as usize] &= !(1 << (index % BITS_PER_WORD));
        }
        self.nr_used -= len;
        self.nr_wiping -= len;
        Ok(())
    }

    /// Returns true if `slot` is held by a wipe in progress (its one reference is the wipe's).
    pub fn is_wiping(&self, slot: SwapSlot) -> bool {
        let index = slot.index();
        self.wiping_bits.get((index / BITS_PER_WORD) as usize).is_some_and(|w| w & (1 << (index % BITS_PER_WORD)) != 0)
    }

    /// Returns true if free slot `index` is marked unwiped.
    fn is_unwiped(&self, index: u32) -> bool {
        self.unwiped_bits.get((index / BITS_PER_WORD) as usize).is_some_and(|w| w & (1 << (index % BITS_PER_WORD)) != 0)
    }

    /// Sets or clears the unwiped mark of `index`, keeping the count (when tracked).
    fn set_unwiped(&mut self, index: u32, is_unwiped: bool) {
        let Some(word) = self.unwiped_bits.get_mut((index / BITS_PER_WORD) as usize) else { return };
        let bit = 1 << (index % BITS_PER_WORD);
        let was = *word & bit != 0;
        if is_unwiped { *word |= bit } else { *word &= !bit }
        match (was, is_unwiped) {
            (false, true) => self.nr_unwiped += 1,
            (true, false) => self.nr_unwiped -= 1,
            _ => {}
        }
    }

    /// Returns the number of slots in the area, the header slot included.
    pub fn nr_slots(&self) -> u32 {
        self.nr_slots
    }

    /// Returns the number of slots in use.
    pub fn nr_used(&self) -> u32 {
        self.nr_used
    }

    /// Returns the number of slots that [`SwapMap::alloc`] can still hand out.
    pub fn nr_free(&self) -> u32 {
        self.nr_slots.saturating_sub(1) - self.nr_used
    }

    /// Allocates a free slot with a share count of one, or returns `None` if the area is full.
    ///
    /// The search starts at a cursor just past the previous allocation and wraps around.
    pub fn alloc(&mut self) -> Option<SwapSlot> {
        if self.nr_free() == 0 {
            return None;
        }
        let index = self.find_free_from(self.cursor)?;
        self.used_bits[(index / BITS_PER_WORD) as usize] |= 1 << (index % BITS_PER_WORD);
        self.share_counts[index as usize] = 1;
        self.nr_used += 1;
        self.set_unwiped(index, false); // its new owner overwrites it
        self.cursor = if index + 1 < self.nr_slots { index + 1 } else { HEADER_SLOT + 1 };
        Some(SwapSlot(index))
    }

    /// Adds a reference to a slot in use (a copied swap PTE); returns the new count.
    pub fn dup(&mut self, slot: SwapSlot) -> Result<u16, SwapMapError> {
        let count = self.used_count_mut(slot)?;
        *count = count.checked_add(1).ok_or(SwapMapError::CountOverflow)?;
        Ok(*count)
    }

    /// Drops a reference to a slot in use, freeing the slot when none remain.
    ///
    /// Returns the number of references left; zero means the slot is free again.
    pub fn put(&mut self, slot: SwapSlot) -> Result<u16, SwapMapError> {
        let count = self.used_count_mut(slot)?;
        *count -= 1;
        let remaining = *count;
        if remaining == 0 {
            let index = slot.index();
            self.used_bits[(index / BITS_PER_WORD) as usize] &= !(1 << (index % BITS_PER_WORD));
            self.nr_used -= 1;
            self.set_unwiped(index, true);
        }
        Ok(remaining)
    }

    /// Returns the number of references to `slot`: zero if it is free.
    pub fn count(&self, slot: SwapSlot) -> Result<u16, SwapMapError> {
        self.check_slot(slot)?;
        Ok(self.share_counts[slot.index() as usize])
    }

    /// Checks that the bitmap, the share counts and `nr_used` agree; panics if not.
    pub fn check_invariants(&self) {
        let nr_words = self.nr_slots.div_ceil(BITS_PER_WORD) as usize;
        assert_eq!(self.used_bits.len(), nr_words, "SwapMap::check_invariants: bitmap size");
        assert_eq!(self.share_counts.len(), self.nr_slots as usize, "SwapMap::check_invariants: count array size");
        let mut nr_used = 0;
        let mut nr_unwiped = 0;
        let mut nr_wiping = 0;
        for index in 0..nr_words as u32 * BITS_PER_WORD {
            let is_bit_set = self.used_bits[(index / BITS_PER_WORD) as usize] & (1 << (index % BITS_PER_WORD)) != 0;
            if index == HEADER_SLOT || index >= self.nr_slots {
                assert!(is_bit_set, "SwapMap::check_invariants: reserved bit {index} is clear");
                continue;
            }
            let count = self.share_counts[index as usize];
            assert_eq!(is_bit_set, count > 0, "SwapMap::check_invariants: slot {index} bit vs count {count}");
            nr_used += u32::from(is_bit_set);
            if self.is_wiping(SwapSlot(index)) {
                assert_eq!(count, 1, "SwapMap::check_invariants: slot {index} is being wiped with count {count}");
                nr_wiping += 1;
            }
            if self.is_unwiped(index) {
                assert!(!is_bit_set, "SwapMap::check_invariants: slot {index} is in use and unwiped");
                nr_unwiped += 1;
            }
        }
        assert_eq!(nr_used, self.nr_used, "SwapMap::check_invariants: nr_used");
        assert_eq!(nr_unwiped, self.nr_unwiped, "SwapMap::check_invariants: nr_unwiped");
        assert_eq!(nr_wiping, self.nr_wiping, "SwapMap::check_invariants: nr_wiping");
        assert!(
            (self.nr_slots..nr_words as u32 * BITS_PER_WORD).all(|i| !self.is_unwiped(i)),
            "SwapMap::check_invariants: an unwiped bit past the end"
        );
    }

    /// Returns `BadSlot` unless `slot` is an allocatable slot of this area.
    fn check_slot(&self, slot: SwapSlot) -> Result<(), SwapMapError> {
        if slot.index() == HEADER_SLOT || slot.index() >= self.nr_slots {
            return Err(SwapMapError::BadSlot);
        }
        Ok(())
    }

    /// Returns the share count of a slot in use, or why the slot has none.
    fn used_count_mut(&mut self, slot: SwapSlot) -> Result<&mut u16, SwapMapError> {
        self.check_slot(slot)?;
        let count = &mut self.share_counts[slot.index() as usize];
        if *count == 0 {
            return Err(SwapMapError::SlotFree);
        }
        Ok(count)
    }

    /// Returns the first clear bit at or after `from`, wrapping around once.
    ///
    /// Visits the word holding `from` twice: first its bits from `from` up, and at the
    /// very end, after wrapping, its bits below `from`.
    fn find_free_from(&self, from: u32) -> Option<u32> {
        let nr_words = self.used_bits.len();
        let first_word = (from / BITS_PER_WORD) as usize;
        let from_bit = from % BITS_PER_WORD;
        for step in 0..=nr_words {
            let word_index = (first_word + step) % nr_words;
            let mut free_bits = !self.used_bits[word_index];
            if step == 0 {
                free_bits &= !0u64 << from_bit;
            } else if step == nr_words {
                free_bits &= !(!0u64 << from_bit);
            }
            if free_bits != 0 {
                return Some(word_index as u32 * BITS_PER_WORD + free_bits.trailing_zeros());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xorshift::XorShift;
    use std::collections::BTreeMap;

    #[test]
    fn slot_zero_is_reserved_for_the_header() {
        let mut map = SwapMap::new(4);
        assert_eq!(map.nr_free(), 3);
        assert_eq!(map.count(SwapSlot::from_index(0)), Err(SwapMapError::BadSlot));
        assert_eq!(map.put(SwapSlot::from_index(0)), Err(SwapMapError::BadSlot));
        let slots: Vec<u32> = std::iter::from_fn(|| map.alloc()).map(SwapSlot::index).collect();
        assert_eq!(slots, [1, 2, 3]);
        map.check_invariants();
    }

    #[test]
    fn alloc_hands_out_every_slot_once_then_none() {
        for nr_slots in [0, 1, 2, 63, 64, 65, 128, 200] {
            let mut map = SwapMap::new(nr_slots);
            let mut seen = std::collections::BTreeSet::new();
            while let Some(slot) = map.alloc() {
                assert!(seen.insert(slot), "slot {slot:?} handed out twice");
                assert_eq!(map.count(slot), Ok(1));
            }
            assert_eq!(seen.len() as u32, nr_slots.saturating_sub(1));
            assert_eq!(map.nr_free(), 0);
            assert_eq!(map.alloc(), None, "an exhausted area stays exhausted");
            map.check_invariants();
        }
    }

    #[test]
    fn alloc_continues_from_a_rotating_cursor() {
        let mut map = SwapMap::new(8);
        let first = map.alloc().unwrap();
        let second = map.alloc().unwrap();
        assert_eq!(map.put(first), Ok(0));
        assert_eq!(map.alloc(), Some(SwapSlot::from_index(second.index() + 1)), "next fit, not first fit");
        while map.nr_free() > 1 {
            map.alloc().unwrap();
        }
        assert_eq!(map.alloc(), Some(first), "the cursor wraps around to the freed slot");
        map.check_invariants();
    }

    #[test]
    fn dup_and_put_track_references_and_free_at_zero() {
        let mut map = SwapMap::new(16);
        let slot = map.alloc().unwrap();
        assert_eq!(map.dup(slot), Ok(2));
        assert_eq!(map.dup(slot), Ok(3));
        assert_eq!(map.put(slot), Ok(2));
        assert_eq!(map.put(slot), Ok(1));
        assert_eq!(map.nr_used(), 1);
        assert_eq!(map.put(slot), Ok(0));
        assert_eq!(map.nr_used(), 0);
        assert_eq!(map.count(slot), Ok(0));
        assert_eq!(map.put(slot), Err(SwapMapError::SlotFree), "double put");
        assert_eq!(map.dup(slot), Err(SwapMapError::SlotFree));
        map.check_invariants();
    }

    #[test]
    fn freed_slots_are_wiped_in_runs_and_reused_only_after() {
        let mut map = SwapMap::new(16);
        map.track_wipes();
        let slots: Vec<SwapSlot> = (0..6).map(|_| map.alloc().unwrap()).collect(); // 1..=6
        for &slot in &slots[1..5] {
            map.put(slot).unwrap(); // 2, 3, 4, 5 die
        }
        assert_eq!((map.nr_used(), map.nr_unwiped(), map.nr_free()), (2, 4, 13));
        // A run is capped by max_slots and held in use while the wipe runs.
        assert_eq!(map.take_unwiped_run(3), Some((SwapSlot::from_index(2), 3)));
        assert_eq!((map.nr_used(), map.nr_unwiped(), map.nr_wiping()), (5, 1, 3));
        assert_eq!(map.count(SwapSlot::from_index(3)), Ok(1));
        assert!(map.is_wiping(SwapSlot::from_index(3)) && !map.is_wiping(SwapSlot::from_index(1)));
        assert_eq!(map.finish_wipe(SwapSlot::from_index(1), 2), Err(SwapMapError::SlotFree), "slot 1 is not wiping");
        map.check_invariants();
        // Slot 5 is allocated again before its wipe: no longer unwiped.
        while map.alloc() != Some(SwapSlot::from_index(5)) {}
        assert_eq!(map.nr_unwiped(), 0);
        assert_eq!(map.take_unwiped_run(32), None);
        map.finish_wipe(SwapSlot::from_index(2), 3).unwrap();
        assert_eq!(map.count(SwapSlot::from_index(2)), Ok(0));
        assert_eq!(map.nr_unwiped(), 0, "a finished wipe leaves the slots clean and free");
        assert_eq!(map.finish_wipe(SwapSlot::from_index(2), 1), Err(SwapMapError::SlotFree));
        map.check_invariants();
    }

    #[test]
    fn without_tracking_nothing_is_unwiped() {
        let mut map = SwapMap::new(8);
        let slot = map.alloc().unwrap();
        map.put(slot).unwrap();
        assert_eq!((map.nr_unwiped(), map.take_unwiped_run(8)), (0, None));
        map.check_invariants();
    }

    #[test]
    fn bad_slots_are_errors_not_panics() {
        let mut map = SwapMap::new(10);
        let outside = SwapSlot::from_index(10);
        assert_eq!(map.count(outside), Err(SwapMapError::BadSlot));
        assert_eq!(map.dup(outside), Err(SwapMapError::BadSlot));
        assert_eq!(map.put(SwapSlot::from_index(u32::MAX)), Err(SwapMapError::BadSlot));
        map.check_invariants();
    }

    #[test]
    fn dup_past_the_maximum_count_is_refused() {
        let mut map = SwapMap::new(2);
        let slot = map.alloc().unwrap();
        for _ in 1..SwapMap::MAX_SHARE_COUNT {
            map.dup(slot).unwrap();
        }
        assert_eq!(map.dup(slot), Err(SwapMapError::CountOverflow));
        assert_eq!(map.count(slot), Ok(SwapMap::MAX_SHARE_COUNT));
        map.check_invariants();
    }


    #[test]
    fn random_alloc_dup_put_matches_a_reference_model() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for nr_slots in [2, 5, 64, 65, 130] {
            let mut map = SwapMap::new(nr_slots);
            map.track_wipes();
            let mut model: BTreeMap<u32, u16> = BTreeMap::new();
            for step in 0..4000 {
                if step % 50 == 49 {
                    // A wipe pass: every unwiped slot is taken and handed back.
                    while let Some((first, len)) = map.take_unwiped_run(1 + rng.below(8) as u32) {
                        assert!((first.index()..first.index() + len).all(|i| !model.contains_key(&i)), "wiped a live slot");
                        map.check_invariants();
                        map.finish_wipe(first, len).unwrap();
                    }
                    assert_eq!(map.nr_unwiped(), 0);
                }
                let slot = SwapSlot::from_index(rng.below(u64::from(nr_slots) + 2) as u32);
                let expected_count = model.get(&slot.index()).copied().unwrap_or(0);
                let is_valid = slot.index() != 0 && slot.index() < nr_slots;
                match rng.below(3) {
                    0 => match map.alloc() {
                        Some(new) => assert_eq!(model.insert(new.index(), 1), None, "allocated a used slot"),
                        None => assert_eq!(model.len() as u32, nr_slots - 1),
                    },
                    1 => {
                        let result = map.dup(slot);
                        if !is_valid {
                            assert_eq!(result, Err(SwapMapError::BadSlot));
                        } else if expected_count == 0 {
                            assert_eq!(result, Err(SwapMapError::SlotFree));
                        } else {
                            assert_eq!(result, Ok(expected_count + 1));
                            model.insert(slot.index(), expected_count + 1);
                        }
                    }
                    _ => {
                        let result = map.put(slot);
                        if !is_valid {
                            assert_eq!(result, Err(SwapMapError::BadSlot));
                        } else if expected_count == 0 {
                            assert_eq!(result, Err(SwapMapError::SlotFree));
                        } else {
                            assert_eq!(result, Ok(expected_count - 1));
                            if expected_count == 1 {
                                model.remove(&slot.index());
                            } else {
                                model.insert(slot.index(), expected_count - 1);
                            }
                        }
                    }
                }
                map.check_invariants();
                assert_eq!(map.nr_used() as usize, model.len());
                assert_eq!(map.count(slot).unwrap_or(0), model.get(&slot.index()).copied().unwrap_or(0));
            }
        }
    }
}
