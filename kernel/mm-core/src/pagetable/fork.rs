//! Copying a range of one page-table tree into another in a single walk: the core
//! of `fork`.
//!
//! [`PageTable::fork_range`] walks the parent's tree and the child's in lockstep.
//! Where the parent has a table, the child gets a table of its own (allocated once,
//! not looked up again for each of its 512 entries); where the parent has a leaf,
//! `copy_fn` decides what each side holds afterwards: typically the same frame,
//! write-protected on both sides for copy-on-write. A separate `map` per page would
//! walk four levels from the root for every page; this walk visits each table once.

use core::ops::Range;

use super::{
    FlushBatch, LeafEntry, PageTable, Pte, TableMemory, as_leaf, entry_span, is_global, is_table_empty,
    linear_range, overlapping_entries,
};
use crate::addr::Page;

/// Why [`PageTable::fork_range`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForkError {
    /// No frame for one of the child's page tables.
    FrameAllocationFailed,
    /// `copy_fn` refused a leaf.
    Refused,
}

impl PageTable {
    /// Copies every used leaf in `nr_pages` pages from `start` into `child`.
    ///
    /// For each leaf `copy_fn` returns `Some((parent entry, child entry))`: the
    /// parent's entry is rewritten if it changed (a flush is pushed into `batch` when
    /// it was present) and the child's is written at the same place; `None` stops the
    /// walk with [`ForkError::Refused`] (the caller could not take a reference).
    /// `child` must have no entries in the range. Intermediate child tables copy the
    /// parent's entry flags. On an error the child holds the leaves copied so far
    /// (the caller releases them by dropping the child) and no empty table; the
    /// parent is consistent.
    pub fn fork_range<M: TableMemory>(
        &mut self,
        mem: &mut M,
        child: &mut PageTable,
        start: Page,
        nr_pages: u64,
        batch: &mut FlushBatch,
        mut copy_fn: impl FnMut(LeafEntry) -> Option<(Pte, Pte)>,
    ) -> Result<(), ForkError> {
        let range = linear_range(start, nr_pages);
        if range.is_empty() {
            return Ok(());
        }
        fork_table(mem, self.root, child.root, 4, range, batch, &mut copy_fn)
    }
}

/// Copies the part of `range` under `parent` (a table at `level`) into `child`.
fn fork_table<M: TableMemory>(
    mem: &mut M,
    parent: crate::addr::Frame,
    child: crate::addr::Frame,
    level: u8,
    range: Range<u64>,
    batch: &mut FlushBatch,
    copy_fn: &mut impl FnMut(LeafEntry) -> Option<(Pte, Pte)>,
) -> Result<(), ForkError> {
    let (indices, base) = overlapping_entries(level, &range);
    for index in indices {
        let entry = mem.read_entry(parent, index);
        if entry.is_unused() {
            continue;
        }
        let entry_base = base + index as u64 * entry_span(level);
        if let Some(leaf) = as_leaf(entry, level, entry_base) {
            let (parent_entry, child_entry) = copy_fn(leaf).ok_or(ForkError::Refused)?;
            if parent_entry != entry {
                mem.write_entry(parent, index, parent_entry);
                if entry.is_present() {
                    batch.push(super::Flush::new(leaf.addr, leaf.size, is_global(entry)));
                }
            }
            mem.write_entry(child, index, child_entry);
            continue;
        }
        let child_entry = mem.read_entry(child, index);
        let child_table = if child_entry.is_unused() {
            let table = mem.alloc_table().ok_or(ForkError::FrameAllocationFailed)?;
            mem.write_entry(child, index, Pte::new(table, entry.flags()));
            table
        } else {
            child_entry.frame()
        };
        let sub_range = range.start.max(entry_base)..range.end.min(entry_base + entry_span(level));
        let result = fork_table(mem, entry.frame(), child_table, level - 1, sub_range, batch, copy_fn);
        if result.is_err() && is_table_empty(mem, child_table) {
            // Failed before anything was copied below: do not leave an empty table.
            mem.write_entry(child, index, Pte::UNUSED);
            mem.free_table(child_table);
        }
        result?;
    }
    Ok(())
}
