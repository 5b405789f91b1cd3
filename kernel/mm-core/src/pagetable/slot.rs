//! One walk for reading a level-1 entry and writing it back: the fault path's
//! [`LeafSlot`].
//!
//! A fault reads the entry (to decide) and then writes it (to map the new frame,
//! or the COW copy). With [`PageTable::entry`] and [`PageTable::set_entry`] that is
//! two walks of four levels; a [`LeafSlot`] remembers where the entry lives (its
//! table frame and index) so the write is one store. The slot is only as good as
//! the tree it came from: it must be used before anything can free or replace the
//! level-1 table (in the kernel: under the same hold of the address-space lock,
//! with no unmap, split or collapse in between). Debug builds walk again on every
//! write and check that the table is still the one the slot names.

use super::{Flush, PageSize, PageTable, TableMemory, is_global};
use crate::addr::{Page, VirtAddr};
use crate::pte::{Pte, PteFlags};

/// Where the level-1 entry of one page lives in a tree: the table's frame and the
/// entry's index, and whether every entry above it grants USER.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafSlot {
    table: crate::addr::Frame,
    addr: VirtAddr,
    is_user_path: bool,
}

impl LeafSlot {
    /// Returns the entry the slot holds now.
    pub fn read<M: TableMemory>(&self, mem: &M) -> Pte {
        mem.read_entry(self.table, self.addr.p1_index())
    }

    /// Clears the Accessed bit of a present entry (with
    /// [`TableMemory::clear_entry_flags`]: atomically in the kernel) and returns
    /// whether it was set. The caller owes no flush for correctness: a TLB entry
    /// that still has the bit set only means the MMU will not set it again until
    /// that entry goes, so the page may look colder than it is.
    pub fn test_and_clear_accessed<M: TableMemory>(&self, mem: &mut M) -> bool {
        let old = mem.clear_entry_flags(self.table, self.addr.p1_index(), PteFlags::ACCESSED);
        old.is_present() && old.flags().contains(PteFlags::ACCESSED)
    }

    /// Returns the page whose entry this is.
    pub fn page(&self) -> Page {
        Page::containing_address(self.addr)
    }
}

impl PageTable {
    /// Returns the slot of the level-1 entry for `page`, or `None` when no level-1
    /// table covers it (nothing mapped near it, or a huge leaf maps it).
    pub fn leaf_slot<M: TableMemory>(&self, mem: &M, page: Page) -> Option<LeafSlot> {
        let addr = page.start_address();
        let mut table = self.root;
        let mut is_user_path = true;
        for level in (2..=4).rev() {
            let entry = mem.read_entry(table, addr.table_index(level));
            if !entry.is_present() || (level <= 3 && entry.is_huge()) {
                return None;
            }
            is_user_path &= entry.flags().contains(PteFlags::USER);
            table = entry.frame();
        }
        Some(LeafSlot { table, addr, is_user_path })
    }

    /// Writes `entry` (not [`Pte::UNUSED`]: clearing may free the table) into
    /// `slot`, a slot of this tree whose table is still linked where
    /// [`leaf_slot`](Self::leaf_slot) found it; returns the old entry and its flush
    /// (needed only if the old entry was present).
    ///
    /// A present USER entry under an upper entry without USER takes the full walk
    /// ([`set_entry`](Self::set_entry)), which grants it on the way down.
    pub fn write_slot<M: TableMemory>(&mut self, mem: &mut M, slot: LeafSlot, entry: Pte) -> (Pte, Flush) {
        debug_assert!(!entry.is_unused(), "write_slot: clearing an entry may free its table: use set_entry");
        debug_assert!(!entry.is_huge(), "write_slot: HUGE in a level-1 entry is the PAT bit");
        debug_assert_eq!(self.leaf_slot(mem, slot.page()).map(|s| s.table), Some(slot.table), "write_slot: a stale slot");
        let needs_user = entry.is_present() && entry.flags().contains(PteFlags::USER);
        if needs_user && !slot.is_user_path {
            return self.set_entry(mem, slot.page(), entry).expect("write_slot: the slot's tables exist");
        }
        let index = slot.addr.p1_index();
        let old = mem.read_entry(slot.table, index);
        mem.write_entry(slot.table, index, entry);
        (old, Flush::new(slot.addr, PageSize::Size4KiB, is_global(old)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{USER_RW, data_frame, page, setup};
    use super::*;
    use crate::pte::SwapEntry;

    #[test]
    fn a_slot_reads_and_writes_the_entry_one_walk_found() {
        let (mut mem, mut table) = setup();
        let p = page(0x0000_0080_4020_3000);
        assert_eq!(table.leaf_slot(&mem, p), None, "no level-1 table yet");
        table.map(&mut mem, p, data_frame(1), USER_RW).unwrap().ignore();
        let neighbour = page(0x0000_0080_4020_4000);
        let slot = table.leaf_slot(&mem, neighbour).expect("the neighbour shares the level-1 table");
        assert!(slot.read(&mem).is_unused());
        let (old, flush) = table.write_slot(&mut mem, slot, Pte::new(data_frame(2), USER_RW | PteFlags::PRESENT));
        assert!(old.is_unused());
        assert_eq!((flush.page(), flush.size()), (neighbour.start_address(), PageSize::Size4KiB));
        flush.ignore();
        assert_eq!(table.entry(&mem, neighbour), Some(slot.read(&mem)));
        assert_eq!(table.translate(&mem, neighbour.start_address()).map(|(a, ..)| a), Some(data_frame(2).start_address()));
        // A second write returns the entry the first one stored.
        let (old, flush) = table.write_slot(&mut mem, slot, Pte::new(data_frame(3), PteFlags::USER | PteFlags::PRESENT));
        assert_eq!(old.frame(), data_frame(2));
        flush.ignore();
        table.check_invariants(&mem);
    }

    #[test]
    fn a_user_entry_under_tables_made_for_a_swap_entry_grants_user_on_the_way() {
        let (mut mem, mut table) = setup();
        let p = page(0x0000_0040_0000_0000);
        // A swap entry creates tables without USER above it.
        table.set_entry(&mut mem, p, Pte::swap(SwapEntry::new(0, 5))).unwrap().1.ignore();
        let slot = table.leaf_slot(&mem, p).unwrap();
        assert!(!slot.is_user_path);
        table.write_slot(&mut mem, slot, Pte::new(data_frame(7), USER_RW | PteFlags::PRESENT)).1.ignore();
        let (_, flags, _) = table.translate(&mem, p.start_address()).unwrap();
        assert!(flags.contains(PteFlags::USER));
        assert!(table.leaf_slot(&mem, p).unwrap().is_user_path, "the upper entries grant USER now");
        table.check_invariants(&mem);
    }

    #[test]
    fn no_slot_under_a_huge_leaf() {
        let (mut mem, mut table) = setup();
        let addr = VirtAddr::new(0x0000_0040_0020_0000);
        table.map_huge(&mut mem, addr, data_frame(512).start_address(), USER_RW).unwrap().ignore();
        assert_eq!(table.leaf_slot(&mem, Page::containing_address(addr + 0x3000)), None);
    }
}
