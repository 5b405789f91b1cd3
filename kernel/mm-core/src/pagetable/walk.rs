//! A read-only walk that keeps every entry it passed: what `explain` shows a student.
//!
//! The MMU's walk for an address reads one entry per level, PML4 -> PDPT -> PD ->
//! PT, and stops early at a non-present entry or a huge leaf (PS set at the PDPT or
//! the PD). [`PageTable::walk`] does the same reads and records each one, so the
//! caller can print the index, the raw value and the flag bits of every level.
//!
//! ```text
//!  addr 0x0000_0080_4020_3abc   -> steps[0] = (level 4, index 1, PML4 entry)
//!                                  steps[1] = (level 3, index 1, PDPT entry)
//!                                  steps[2] = (level 2, index 1, PD entry)    <- stops here if PS set
//!                                  steps[3] = (level 1, index 3, PT entry)    (present, swap or unused)
//! ```

use super::{PageTable, TableMemory};
use crate::addr::VirtAddr;
use crate::pte::Pte;

/// One entry the walk read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkStep {
    /// The table's level: 4 (PML4), 3 (PDPT), 2 (PD) or 1 (PT).
    pub level: u8,
    /// The entry's index in its table (0..512).
    pub index: usize,
    /// The entry as the table holds it.
    pub entry: Pte,
}

/// The entries read on the way to an address, root first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walk {
    /// `steps[..nr_steps]` are valid: 4 when the walk reached the PT, fewer when
    /// it stopped at a non-present entry or a huge leaf.
    pub steps: [WalkStep; 4],
    /// How many steps were taken.
    pub nr_steps: usize,
}

impl Walk {
    /// Returns the steps taken, root first.
    pub fn taken(&self) -> &[WalkStep] {
        &self.steps[..self.nr_steps]
    }

    /// Returns the last entry read: the leaf (a present 4 KiB or huge entry), or
    /// the entry that stopped the walk.
    pub fn last(&self) -> WalkStep {
        self.steps[self.nr_steps - 1]
    }
}

impl PageTable {
    /// Reads the entries the MMU would read to translate `addr`, root first,
    /// stopping after a non-present entry or a huge leaf (see the module docs).
    pub fn walk<M: TableMemory>(&self, mem: &M, addr: VirtAddr) -> Walk {
        let empty = WalkStep { level: 0, index: 0, entry: Pte::UNUSED };
        let mut walk = Walk { steps: [empty; 4], nr_steps: 0 };
        let mut table = self.root;
        for level in (1..=4u8).rev() {
            let index = addr.table_index(level);
            let entry = mem.read_entry(table, index);
            walk.steps[walk.nr_steps] = WalkStep { level, index, entry };
            walk.nr_steps += 1;
            if !entry.is_present() || level == 1 || (level <= 3 && entry.is_huge()) {
                break;
            }
            table = entry.frame();
        }
        walk
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{USER_RW, data_frame, page, setup};
    use crate::addr::VirtAddr;
    use crate::pte::PteFlags;

    #[test]
    fn a_walk_to_a_mapped_page_reads_four_levels_with_the_worked_example_indices() {
        let (mut mem, mut table) = setup();
        let addr = 0x0000_0080_4020_3abc;
        table.map(&mut mem, page(addr & !0xfff), data_frame(7), USER_RW).unwrap().ignore();
        let walk = table.walk(&mem, VirtAddr::new(addr));
        let indices: std::vec::Vec<(u8, usize)> = walk.taken().iter().map(|s| (s.level, s.index)).collect();
        assert_eq!(indices, [(4, 1), (3, 1), (2, 1), (1, 3)]);
        assert!(walk.taken().iter().all(|s| s.entry.is_present()));
        assert_eq!(walk.last().entry.frame(), data_frame(7));
        assert!(walk.last().entry.flags().contains(PteFlags::WRITABLE | PteFlags::USER));
    }

    #[test]
    fn a_walk_stops_at_the_first_missing_table() {
        let (mut mem, mut table) = setup();
        table.map(&mut mem, page(0x40_0000), data_frame(1), USER_RW).unwrap().ignore();
        // Same PML4 and PDPT entries, another PD entry: no PT there.
        let walk = table.walk(&mem, VirtAddr::new(0x80_0000));
        assert_eq!(walk.nr_steps, 3);
        assert_eq!(walk.last().level, 2);
        assert!(walk.last().entry.is_unused());
        // Another PML4 entry: the walk stops at the root.
        let walk = table.walk(&mem, VirtAddr::new(0x0000_7f00_0000_0000));
        assert_eq!((walk.nr_steps, walk.last().level), (1, 4));
    }

    #[test]
    fn a_walk_stops_at_a_huge_leaf() {
        let (mut mem, mut table) = setup();
        let addr = VirtAddr::new(0x4000_0000);
        table.map_huge(&mut mem, addr, data_frame(512).start_address(), USER_RW).unwrap().ignore();
        let walk = table.walk(&mem, addr + 0x1234u64);
        assert_eq!(walk.nr_steps, 3);
        assert!(walk.last().entry.is_huge());
    }
}
