//! The simulator: replays a reference string through a policy over a toy MMU and counts
//! faults, hits, evictions and dirty write-backs.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::{PageProbe, ReplacementPolicy};

/// One entry of a reference string: a page, read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRef {
    /// The page referenced.
    pub page: u64,
    /// True for a write (which dirties the page), false for a read.
    pub is_write: bool,
}

impl PageRef {
    /// Creates a read of `page`.
    pub const fn read(page: u64) -> PageRef {
        PageRef { page, is_write: false }
    }

    /// Creates a write to `page`.
    pub const fn write(page: u64) -> PageRef {
        PageRef { page, is_write: true }
    }
}

/// Returns a reference string that reads each of `pages` in turn.
pub fn reads(pages: &[u64]) -> Vec<PageRef> {
    pages.iter().map(|&page| PageRef::read(page)).collect()
}

/// What a simulation counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimResult {
    /// References to a page that was not resident.
    pub faults: u64,
    /// References to a resident page.
    pub hits: u64,
    /// Pages evicted to make room.
    pub evictions: u64,
    /// Evicted pages that were dirty and had to be written out first.
    pub dirty_writebacks: u64,
    /// References to a page that was unmapped but kept (page buffering): mapped
    /// back without I/O, a rescue; not counted in `faults` nor `hits`.
    pub rescues: u64,
}

/// The Accessed and Dirty bits of one resident page in the simulated MMU.
#[derive(Clone, Copy, Debug)]
struct SimPte {
    is_referenced: bool,
    is_dirty: bool,
    /// False while page buffering keeps the frame but not the mapping.
    is_mapped: bool,
}

/// A toy MMU: the resident pages and their Accessed/Dirty bits.
#[derive(Debug, Default)]
struct SimMmu {
    resident: BTreeMap<u64, SimPte>,
}

impl PageProbe for SimMmu {
    fn is_referenced(&mut self, page: u64) -> bool {
        self.resident.get(&page).is_some_and(|pte| pte.is_mapped && pte.is_referenced)
    }
    fn test_and_clear_referenced(&mut self, page: u64) -> bool {
        match self.resident.get_mut(&page) {
            Some(pte) => core::mem::replace(&mut pte.is_referenced, false),
            None => false,
        }
    }
    fn is_dirty(&mut self, page: u64) -> bool {
        self.resident.get(&page).is_some_and(|pte| pte.is_dirty)
    }
}

/// Replays `refs` through `policy` with `nr_frames` frames of memory and counts events.
///
/// Models demand paging: a reference to a resident page is a hit and sets the
/// page's Accessed bit (and Dirty bit on a write), as the MMU would; any other
/// reference is a fault, which evicts the policy's victim if all frames are full
/// (a write-back if it was dirty) and loads the page with Accessed set. A timer
/// tick follows every reference. `policy` should start empty.
///
/// Page buffering ([`BufferedFifo`](super::BufferedFifo)): after each fault the
/// pages the policy wants unmapped are unmapped (they keep their frames); a
/// reference to one is a *rescue* (mapped back, [`on_soft_fault`]), neither a
/// fault nor a hit. A dirty page evicted from the lists counts as a write-back.
///
/// [`on_soft_fault`]: ReplacementPolicy::on_soft_fault
pub fn simulate(policy: &mut dyn ReplacementPolicy, nr_frames: usize, refs: &[PageRef]) -> SimResult {
    let mut mmu = SimMmu::default();
    let mut result = SimResult::default();
    let mut to_buffer = [0u64; 16];
    for reference in refs {
        if let Some(pte) = mmu.resident.get_mut(&reference.page)
            && !pte.is_mapped
        {
            result.rescues += 1;
            *pte = SimPte { is_referenced: true, is_dirty: pte.is_dirty | reference.is_write, is_mapped: true };
            let was_listed = policy.on_soft_fault(reference.page);
            assert!(was_listed, "simulate: {} kept page {} unmapped off its lists", policy.name(), reference.page);
        } else if let Some(pte) = mmu.resident.get_mut(&reference.page) {
            result.hits += 1;
            pte.is_referenced = true;
            pte.is_dirty |= reference.is_write;
            policy.on_access(reference.page);
        } else {
            result.faults += 1;
            if nr_frames == 0 {
                continue;
            }
            if mmu.resident.len() == nr_frames {
                let victim = policy.pick_victim(&mut mmu);
                let evicted = victim.and_then(|page| mmu.resident.remove(&page));
                let evicted =
                    evicted.unwrap_or_else(|| panic!("simulate: {} picked no resident victim", policy.name()));
                result.evictions += 1;
                result.dirty_writebacks += u64::from(evicted.is_dirty);
            }
            mmu.resident.insert(reference.page, SimPte { is_referenced: true, is_dirty: reference.is_write, is_mapped: true });
            policy.on_insert(reference.page);
            loop {
                let nr_taken = policy.take_for_buffering(&mut to_buffer);
                for &page in &to_buffer[..nr_taken] {
                    let pte = mmu.resident.get_mut(&page).expect("simulate: buffering a page not resident");
                    pte.is_mapped = false;
                    policy.on_buffered(page, pte.is_dirty);
                }
                if nr_taken < to_buffer.len() {
                    break;
                }
            }
        }
        policy.on_tick(&mut mmu);
    }
    result
}
