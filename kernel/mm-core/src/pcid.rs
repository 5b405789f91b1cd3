//! PCID allocation: a tag for each live address space's TLB entries, never shared.
//!
//! With CR4.PCIDE the TLB keeps entries of several address spaces at once, each
//! tagged with the 12-bit PCID that was in CR3 when it was filled. Loading a space
//! with "keep the TLB" then reuses its entries. That is only correct if no two live
//! spaces carry the same PCID: a counter that wraps after 4 095 spaces hands a live
//! space's tag to a new one, and each would then see the other's translations.
//!
//! [`PcidAllocator`] is a bitmap over the tags:
//!
//! ```text
//!   0            the kernel's (no user space ever gets it)
//!   1..=4094     one per live address space: alloc takes the lowest free one,
//!                free gives it back when the space is dropped
//!   4095         OVERFLOW: shared by the spaces created while 1..=4094 are all in use;
//!                such a space must flush its tag on every load (never "keep the TLB")
//! ```
//! A freed tag may still have entries in the TLB from its previous owner, so the
//! next owner must flush it once on its first load (the kernel marks a new space
//! stale). Pure data, host-tested; the kernel wraps it in a lock (`addr_space.rs`).

/// The number of PCIDs (12 bits).
pub const NR_PCIDS: usize = 4096;

/// The tag shared by spaces that found no free PCID; always flushed on load.
pub const OVERFLOW_PCID: u16 = (NR_PCIDS - 1) as u16;

/// Hands out PCIDs 1..=4094 so that no two holders share one.
#[derive(Clone, Debug)]
pub struct PcidAllocator {
    /// Bit `n` set: PCID `n` is held. Bits 0 and [`OVERFLOW_PCID`] are always set.
    used: [u64; NR_PCIDS / 64],
    /// Held PCIDs, not counting 0 and the overflow tag.
    nr_used: usize,
}

impl Default for PcidAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl PcidAllocator {
    /// Returns an allocator with every PCID but 0 and the overflow tag free.
    pub const fn new() -> PcidAllocator {
        let mut used = [0u64; NR_PCIDS / 64];
        used[0] = 1;
        used[NR_PCIDS / 64 - 1] = 1 << 63;
        PcidAllocator { used, nr_used: 0 }
    }

    /// Returns a PCID no other holder has, or [`OVERFLOW_PCID`] if all are taken.
    pub fn alloc(&mut self) -> u16 {
        for (i, word) in self.used.iter_mut().enumerate() {
            if *word != u64::MAX {
                let bit = (!*word).trailing_zeros() as usize;
                *word |= 1 << bit;
                self.nr_used += 1;
                return (i * 64 + bit) as u16;
            }
        }
        OVERFLOW_PCID
    }

    /// Gives `pcid` back. Freeing 0 or the overflow tag does nothing (they are never
    /// held alone); freeing a PCID that is not held is a bug and panics.
    pub fn free(&mut self, pcid: u16) {
        if pcid == 0 || pcid == OVERFLOW_PCID {
            return;
        }
        let (i, bit) = (usize::from(pcid) / 64, usize::from(pcid) % 64);
        assert!(i < self.used.len() && self.used[i] & (1 << bit) != 0, "PcidAllocator::free: PCID {pcid} is not held");
        self.used[i] &= !(1 << bit);
        self.nr_used -= 1;
    }

    /// Returns how many PCIDs are held (the overflow tag not counted).
    pub fn nr_used(&self) -> usize {
        self.nr_used
    }

    /// Returns true if `pcid` is held now.
    pub fn is_used(&self, pcid: u16) -> bool {
        let pcid = usize::from(pcid);
        pcid < NR_PCIDS && self.used[pcid / 64] & (1 << (pcid % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::vec::Vec;

    use super::*;
    use crate::xorshift::XorShift;

    #[test]
    fn first_pcids_are_one_two_three() {
        let mut pcids = PcidAllocator::new();
        assert_eq!([pcids.alloc(), pcids.alloc(), pcids.alloc()], [1, 2, 3]);
        pcids.free(2);
        assert_eq!(pcids.alloc(), 2, "the lowest free PCID is reused");
    }

    #[test]
    fn when_all_are_taken_new_spaces_get_the_overflow_tag() {
        let mut pcids = PcidAllocator::new();
        let all: Vec<u16> = (0..NR_PCIDS - 2).map(|_| pcids.alloc()).collect();
        assert_eq!(all.iter().copied().collect::<BTreeSet<_>>().len(), NR_PCIDS - 2);
        assert!(all.iter().all(|&p| p != 0 && p != OVERFLOW_PCID));
        assert_eq!(pcids.alloc(), OVERFLOW_PCID);
        assert_eq!(pcids.alloc(), OVERFLOW_PCID);
        pcids.free(OVERFLOW_PCID); // an overflow space dropped: nothing to give back
        pcids.free(1234);
        assert_eq!(pcids.alloc(), 1234);
    }

    #[test]
    #[should_panic(expected = "is not held")]
    fn double_free_panics() {
        let mut pcids = PcidAllocator::new();
        let p = pcids.alloc();
        pcids.free(p);
        pcids.free(p);
    }

    /// Creates 20 000 spaces (five times the PCID space) while a random set of up to
    /// 300 stays alive: no two live spaces ever share a PCID other than the overflow
    /// tag. A wrapping counter (`n % 4095 + 1`) fails this check.
    #[test]
    fn no_two_live_spaces_share_a_pcid_after_many_creations() {
        let mut rng = XorShift(0x5eed);
        let mut pcids = PcidAllocator::new();
        let mut live: Vec<u16> = Vec::new();
        // A few long-lived spaces, created first, stay alive throughout.
        for _ in 0..10 {
            live.push(pcids.alloc());
        }
        let nr_long_lived = live.len();
        for _ in 0..20_000 {
            if live.len() > nr_long_lived && (live.len() >= 300 || rng.next_u64() % 2 == 0) {
                let victim = nr_long_lived + (rng.next_u64() as usize % (live.len() - nr_long_lived));
                pcids.free(live.swap_remove(victim));
            }
            let pcid = pcids.alloc();
            assert!(pcid != OVERFLOW_PCID, "only 300 live spaces: a PCID must be free");
            assert!(!live.contains(&pcid), "PCID {pcid} handed to two live spaces");
            live.push(pcid);
            assert_eq!(pcids.nr_used(), live.len());
        }
        assert!(live.iter().all(|&p| pcids.is_used(p)));
    }
}
