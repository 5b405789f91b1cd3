//! 2 MiB user leaves: where one may go, and splitting one into 512 4 KiB leaves.
//!
//! Transparent huge pages (the kernel's `mm/thp.rs`) map an anonymous 2 MiB range
//! with one level-2 entry (PS set) when the whole range is still empty, and turn it
//! back into a level-1 table of 512 entries when some operation needs 4 KiB
//! granularity (a partial munmap or mprotect, swap-out, fork). Splitting keeps every
//! byte where it is: entry `i` of the new table maps the `i`-th 4 KiB frame of the
//! huge page with the huge leaf's flags, so only the bookkeeping changes.
//!
//! ```text
//!  before:  PD[k] = [phys P, PS | U | W | A | D]            (one 2 MiB leaf)
//!  after:   PD[k] = [table T, P | W | U]   T[i] = [P + i*4K, U | W | A | D]
//! ```
//! Bit 7 means PS in a level-2 entry and PAT in a level-1 entry, so the split
//! clears it; bit 12 of a huge leaf is its PAT bit, inside the address field,
//! masked off by `translate` and never set by this kernel for user pages.

use super::{Flush, PageSize, PageTable, Stop, TableMemory, is_global, table_entry_flags};
use crate::addr::{Frame, HUGE_PAGE_SIZE, PAGE_SIZE, VirtAddr};
use crate::pte::{Pte, PteFlags};

/// Why a huge leaf could not be split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitError {
    /// No 2 MiB leaf maps the address.
    NotHuge,
    /// No frame for the new level-1 table.
    FrameAllocationFailed,
}

impl PageTable {
    /// Returns true if a 2 MiB leaf could be mapped at the 2 MiB-aligned `addr`
    /// with no change to anything else: the level-2 entry is unused (or the tables
    /// above it do not exist yet). False if a level-1 table or a huge leaf is there.
    pub fn is_huge_slot_empty<M: TableMemory>(&self, mem: &M, addr: VirtAddr) -> bool {
        match self.descend(mem, addr, 2) {
            Ok(path) => mem.read_entry(path.table(2), addr.p2_index()).is_unused(),
            Err(Stop::Missing) => true,
            Err(Stop::Huge(_)) => false,
        }
    }

    /// Returns the 2 MiB leaf covering `addr`, if one does: its first address and entry.
    pub fn huge_leaf<M: TableMemory>(&self, mem: &M, addr: VirtAddr) -> Option<(VirtAddr, Pte)> {
        let start = addr.align_down(HUGE_PAGE_SIZE);
        let path = self.descend(mem, start, 2).ok()?;
        let entry = mem.read_entry(path.table(2), start.p2_index());
        entry.is_huge().then_some((start, entry))
    }

    /// Replaces the 2 MiB leaf covering `addr` by `frame` with `flags` (PRESENT and
    /// HUGE are added): a copy-on-write fault on a huge page shared by fork maps its
    /// own copy, or makes the leaf writable in place. Returns the old leaf and the
    /// flush for it (needed: the old translation may be cached).
    pub fn replace_huge<M: TableMemory>(
        &mut self,
        mem: &mut M,
        addr: VirtAddr,
        frame: Frame,
        flags: PteFlags,
    ) -> Result<(Pte, Flush), SplitError> {
        let start = addr.align_down(HUGE_PAGE_SIZE);
        let path = self.descend(mem, start, 2).map_err(|_| SplitError::NotHuge)?;
        let old = mem.read_entry(path.table(2), start.p2_index());
        if !old.is_huge() {
            return Err(SplitError::NotHuge);
        }
        debug_assert!(frame.start_address().is_aligned(HUGE_PAGE_SIZE), "replace_huge: {frame:?} is not 2 MiB-aligned");
        mem.write_entry(path.table(2), start.p2_index(), Pte::new(frame, flags | PteFlags::PRESENT | PteFlags::HUGE));
        Ok((old, Flush::new(start, PageSize::Size2MiB, is_global(old))))
    }

    /// Replaces the 2 MiB leaf covering `addr` by a level-1 table whose 512 entries
    /// map the same frames with the same flags (PS cleared); returns the first
    /// frame and the flush for the old 2 MiB translation.
    ///
    /// The flush is needed: the TLB may hold the 2 MiB entry, and Intel SDM vol. 3,
    /// 4.10.2.3 asks for an invalidation when a page's size changes.
    pub fn split_huge<M: TableMemory>(&mut self, mem: &mut M, addr: VirtAddr) -> Result<(Frame, Flush), SplitError> {
        let start = addr.align_down(HUGE_PAGE_SIZE);
        let path = self.descend(mem, start, 2).map_err(|_| SplitError::NotHuge)?;
        let old = mem.read_entry(path.table(2), start.p2_index());
        if !old.is_huge() {
            return Err(SplitError::NotHuge);
        }
        let table = mem.alloc_table().ok_or(SplitError::FrameAllocationFailed)?;
        let head = old.frame();
        let flags = old.flags() - PteFlags::HUGE;
        for i in 0..super::ENTRIES_PER_TABLE {
            mem.write_entry(table, i, Pte::new(head + i as u64, flags));
        }
        // USER on the new entry in the user half even if the leaf lacks it (a
        // PROT_NONE page): an mprotect that later gives one small leaf USER
        // rewrites only the leaf, and the MMU ANDs USER over every level.
        let is_user = flags.contains(PteFlags::USER) || start.is_lower_half();
        mem.write_entry(path.table(2), start.p2_index(), Pte::new(table, table_entry_flags(is_user)));
        debug_assert_eq!(HUGE_PAGE_SIZE, PAGE_SIZE * super::ENTRIES_PER_TABLE as u64);
        Ok((head, Flush::new(start, PageSize::Size2MiB, is_global(old))))
    }
}
