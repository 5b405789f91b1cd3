//! Unmapping in Linux's `mmu_gather` order: clear the PTEs, flush every TLB that
//! may hold them, and only then free the frames and the emptied page tables.
//!
//! With threads, the space being changed may be running on other CPUs right now.
//! Until those CPUs have flushed, they may still reach a frame (or walk a page
//! table) through a cached translation; freeing it first would let another
//! thread of the process write into a frame that already belongs to someone else.
//!
//! ```text
//!   CPU 0: munmap (space locked)            CPU 1: another thread of the process
//!   1. clear PTEs, gather leaves + tables     still reads the page through its TLB
//!   2. flush here, IPI CPU 1, wait  ------->  invlpg, ack: its next access faults
//!   3. release the gathered frames, slots and tables (rmap, frame refcounts)
//! ```
//! The gather grows on the heap; a very large range is done in chunks of
//! [`CHUNK_BYTES`] (huge-page aligned), each flushed before its frames are
//! released once [`GATHER_MAX`] leaves wait, so one munmap of a few MiB costs one
//! shootdown.
//!
//! Step 3 works in batches ([`ReleaseBatch`], `rmap::unmap_batch`): the 4 KiB
//! pages of resident frames are released 64 at a time, each lock taken once a
//! batch, not once a page (the frame lock to drop the references, the policy lock
//! to untrack the frames whose last reference went, the frame lock again to free
//! them); exit (`AddressSpace::drop`) releases its leaves the same way.

use alloc::vec::Vec;

use mm_core::pagetable::{FlushBatch, LeafEntry, PageSize, TableMemory};

use super::{AddressSpace, AsStats, release_leaf};
use crate::mm::paging::{DirectMapTables, Pte, PteFlags};
use crate::mm::rmap::{self, FamilyId, FamilyPage};
use crate::mm::{Frame, Page, PAGE_SIZE, VirtAddr};

/// The unit in which a range is walked (a multiple of the huge-page size, so no
/// huge leaf straddles two chunks).
pub const CHUNK_BYTES: u64 = 2 << 20;
/// Gathered leaves past which a chunk's end flushes and releases them.
pub const GATHER_MAX: usize = 512;

/// Leaves and page tables taken out of a space, waiting for the TLB flush.
#[derive(Default)]
pub struct UnmapGather {
    leaves: Vec<LeafEntry>,
    tables: Vec<Frame>,
}

impl UnmapGather {
    /// An empty gather.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The space's table memory, with frees of emptied tables deferred into a gather.
struct DeferringTables<'a> {
    inner: &'a mut DirectMapTables,
    freed: &'a mut Vec<Frame>,
}

impl TableMemory for DeferringTables<'_> {
    fn read_entry(&self, table: Frame, index: usize) -> Pte {
        self.inner.read_entry(table, index)
    }

    fn write_entry(&mut self, table: Frame, index: usize, entry: Pte) {
        self.inner.write_entry(table, index, entry);
    }

    fn clear_entry_flags(&mut self, table: Frame, index: usize, flags: PteFlags) -> Pte {
        self.inner.clear_entry_flags(table, index, flags)
    }

    fn alloc_table(&mut self) -> Option<Frame> {
        self.inner.alloc_table()
    }

    fn free_table(&mut self, table: Frame) {
        self.freed.push(table);
    }
}

impl AddressSpace {
    /// Removes the PTEs of `[start, end)` (VMAs untouched) into `batch` and
    /// `gather`; the frames stay allocated until [`flush_and_release`](Self::flush_and_release).
    pub(super) fn gather_unmap(&mut self, start: VirtAddr, end: VirtAddr, batch: &mut FlushBatch, gather: &mut UnmapGather) {
        let mut at = start;
        while at < end {
            // The bound first, then the address: the user half's last chunk ends at
            // 0x8000_0000_0000, which is no canonical address (a munmap of the
            // stack's top page panicked here).
            let chunk_end = VirtAddr::new(((at.as_u64() / CHUNK_BYTES + 1) * CHUNK_BYTES).min(end.as_u64()));
            let mut tables = DeferringTables { inner: &mut self.tables, freed: &mut gather.tables };
            let leaves = &mut gather.leaves;
            let nr_pages = (chunk_end - at) / PAGE_SIZE;
            self.pt
                .unmap_range(&mut tables, Page::containing_address(at), nr_pages, batch, |leaf| leaves.push(leaf))
                .expect("munmap: huge pages cut by the range were split first");
            if gather.leaves.len() >= GATHER_MAX {
                let full = core::mem::replace(batch, FlushBatch::new());
                self.flush_and_release(full, gather);
            }
            at = chunk_end;
        }
    }

    /// Flushes `batch` on every CPU that may hold it (waiting for the remote
    /// ones), then releases what `gather` holds: frames, swap slots, tables.
    pub(super) fn flush_and_release(&mut self, batch: FlushBatch, gather: &mut UnmapGather) {
        self.flush(batch);
        let mut release = ReleaseBatch::new(self.family);
        for leaf in gather.leaves.drain(..) {
            release.push(leaf, &mut self.stats);
        }
        release.finish();
        for table in gather.tables.drain(..) {
            self.tables.free_table(table);
        }
    }
}

/// Unmapped leaves on their way to [`release_leaf`]: the 4 KiB pages of
/// resident frames are gathered and released [`rmap::UNMAP_BATCH`] at a time
/// (`rmap::unmap_batch`: one hold of each lock a batch, not one a page); swap
/// entries, huge pages and the zero page go one by one. Used once the TLB no
/// longer holds the leaves (after the flush, or for a space never loaded again).
pub(super) struct ReleaseBatch {
    family: FamilyId,
    zero: Frame,
    pages: [(Frame, FamilyPage, bool); rmap::UNMAP_BATCH],
    len: usize,
}

impl ReleaseBatch {
    /// An empty batch for a space of `family`.
    pub(super) fn new(family: FamilyId) -> Self {
        let unused = (Frame::from_pfn(0), FamilyPage { family, page: Page::default() }, false);
        Self { family, zero: super::super::fault::zero_frame(), pages: [unused; rmap::UNMAP_BATCH], len: 0 }
    }

    /// Releases `leaf`'s reference now or with the batch; counts it out of `stats`.
    pub(super) fn push(&mut self, leaf: LeafEntry, stats: &mut AsStats) {
        let is_small_page = leaf.size == PageSize::Size4KiB && leaf.pte.is_present();
        if !is_small_page || leaf.pte.frame() == self.zero {
            release_leaf(leaf, stats, self.family);
            return;
        }
        stats.rss_pages -= 1;
        let at = FamilyPage { family: self.family, page: Page::containing_address(leaf.addr) };
        self.pages[self.len] = (leaf.pte.frame(), at, leaf.pte.flags().contains(PteFlags::DIRTY));
        self.len += 1;
        if self.len == self.pages.len() {
            self.finish();
        }
    }

    /// Releases every page gathered so far.
    pub(super) fn finish(&mut self) {
        rmap::unmap_batch(&self.pages[..self.len]);
        self.len = 0;
    }
}
