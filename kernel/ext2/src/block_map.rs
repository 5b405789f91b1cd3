//! The block map: which disk block holds block `n` of a file.
//!
//! `inode.block[0..12]` point at data blocks, `block[12]` at an indirect block of
//! P = block_size / 4 pointers to data blocks, `block[13]` at a double and
//! `block[14]` at a triple indirect block (the diagram is in docs/10-files.md, "The
//! inode and its block map"). A zero pointer is a hole: the file block reads as zeros and
//! has no disk block, and neither does anything below a zero indirect pointer.
//!
//! [`Ext2::lookup_block`] walks the tree; `map_block_alloc` walks it allocating the
//! missing indirect blocks and the data block (after checking that enough blocks
//! are free, so the walk never stops half way); `free_blocks_from` frees every data
//! block from a file block onwards and each indirect block left pointing at nothing
//! (truncate and unlink). Each allocated or freed block changes the inode's
//! `i_blocks` (in 512-byte sectors), which e2fsck checks.

use alloc::vec::Vec;

use crate::error::{Ext2Error, Result};
use crate::fs::Ext2;
use crate::inode::{Inode, NR_DIRECT};
use crate::layout::{le32, put32};
use crate::InodeNo;

/// Where file block `n` hangs in the tree: the inode slot, the index at each
/// indirect level, and how many levels (0 = direct).
struct BlockPath {
    slot: usize,
    indices: [usize; 3],
    depth: usize,
}

impl Ext2<'_> {
    /// Pointers per indirect block.
    fn ptrs_per_block(&self) -> u64 {
        (self.sb.block_size / 4) as u64
    }

    /// Returns the number of file blocks the block map can address.
    pub(crate) fn max_file_blocks(&self) -> u64 {
        let p = self.ptrs_per_block();
        NR_DIRECT as u64 + p + p * p + p * p * p
    }

    fn block_path(&self, n: u64) -> Result<BlockPath> {
        let p = self.ptrs_per_block();
        let direct = NR_DIRECT as u64;
        let path = |slot, indices, depth| Ok(BlockPath { slot, indices, depth });
        if n < direct {
            return path(n as usize, [0; 3], 0);
        }
        let n = n - direct;
        if n < p {
            return path(12, [n as usize, 0, 0], 1);
        }
        let n = n - p;
        if n < p * p {
            return path(13, [(n / p) as usize, (n % p) as usize, 0], 2);
        }
        let n = n - p * p;
        if n < p * p * p {
            return path(14, [(n / (p * p)) as usize, ((n / p) % p) as usize, (n % p) as usize], 3);
        }
        Err(Ext2Error::FileTooBig)
    }

    /// Reads pointer `index` of indirect block `block`.
    fn read_ptr(&mut self, block: u32, index: usize) -> Result<u32> {
        self.check_block(block)?;
        Ok(le32(self.cache.read(self.dev, block)?, index * 4))
    }

    /// Returns the disk block of file block `n` of `inode`, or `None` for a hole.
    pub(crate) fn lookup_block(&mut self, inode: &Inode, n: u64) -> Result<Option<u32>> {
        let Ok(path) = self.block_path(n) else { return Ok(None) };
        let mut ptr = inode.block[path.slot];
        for &index in &path.indices[..path.depth] {
            if ptr == 0 {
                return Ok(None);
            }
            ptr = self.read_ptr(ptr, index)?;
        }
        if ptr == 0 {
            return Ok(None);
        }
        self.check_block(ptr)?;
        Ok(Some(ptr))
    }

    /// Returns where to look for a free block for file block `n`: right after the
    /// previous file block, else at the start of the inode's group.
    fn block_goal(&mut self, ino: InodeNo, inode: &Inode, n: u64) -> Result<u32> {
        if n > 0
            && let Some(prev) = self.lookup_block(inode, n - 1)?
        {
            return Ok(prev + 1);
        }
        let group = (ino.0 - 1) / self.sb.inodes_per_group;
        Ok(self.sb.group_first_block(group))
    }

    /// Returns the disk block of file block `n`, allocating it and any missing
    /// indirect blocks on the way; `true` if the data block is new (the caller must
    /// fill it). The caller writes `inode` back (its pointers and `i_blocks` change).
    /// `ENOSPC` before anything is allocated if the free blocks cannot cover the walk.
    pub(crate) fn map_block_alloc(&mut self, ino: InodeNo, inode: &mut Inode, n: u64) -> Result<(u32, bool)> {
        let path = self.block_path(n)?;
        // A read-only walk first: how many blocks are missing?
        let mut ptr = inode.block[path.slot];
        let mut levels_present = 0;
        while ptr != 0 && levels_present < path.depth {
            ptr = self.read_ptr(ptr, path.indices[levels_present])?;
            levels_present += 1;
        }
        if ptr != 0 {
            self.check_block(ptr)?;
            return Ok((ptr, false));
        }
        let nr_missing = path.depth + 1 - levels_present;
        if (self.sb.nr_free_blocks as usize) < nr_missing {
            return Err(Ext2Error::NoSpace);
        }
        let mut goal = self.block_goal(ino, inode, n)?;
        let sectors_per_block = (self.sb.block_size / 512) as u32;
        let mut ptr = inode.block[path.slot];
        if ptr == 0 {
            ptr = self.alloc_block(goal)?;
            goal = ptr + 1;
            if path.depth > 0 {
                self.cache.zeroed(self.dev, ptr)?;
            }
            inode.block[path.slot] = ptr;
            inode.nr_sectors = inode.nr_sectors.saturating_add(sectors_per_block);
        }
        for level in 0..path.depth {
            let parent = ptr;
            let index = path.indices[level];
            ptr = self.read_ptr(parent, index)?;
            if ptr == 0 {
                ptr = self.alloc_block(goal)?;
                goal = ptr + 1;
                if level + 1 < path.depth {
                    self.cache.zeroed(self.dev, ptr)?;
                }
                put32(self.cache.modify(self.dev, parent)?, index * 4, ptr);
                inode.nr_sectors = inode.nr_sectors.saturating_add(sectors_per_block);
            }
        }
        Ok((ptr, true))
    }

    /// Frees every data block of `inode` from file block `keep` on, and every
    /// indirect block left empty; updates the pointers and `i_blocks` in `inode`
    /// (the caller writes it back).
    pub(crate) fn free_blocks_from(&mut self, inode: &mut Inode, keep: u64) -> Result<()> {
        let p = self.ptrs_per_block();
        let mut nr_freed = 0u32;
        for ptr in &mut inode.block[(keep.min(NR_DIRECT as u64) as usize)..NR_DIRECT] {
            if *ptr != 0 {
                self.free_block(*ptr)?;
                *ptr = 0;
                nr_freed += 1;
            }
        }
        let mut base = NR_DIRECT as u64;
        for (slot, depth) in [(12usize, 1u32), (13, 2), (14, 3)] {
            let span = p.pow(depth);
            let root = inode.block[slot];
            if root != 0 && keep < base + span && self.truncate_branch(root, depth, base, keep, &mut nr_freed)? {
                inode.block[slot] = 0;
            }
            base += span;
        }
        // saturating: a damaged i_blocks must not take the kernel down.
        inode.nr_sectors = inode.nr_sectors.saturating_sub(nr_freed * (self.sb.block_size / 512) as u32);
        Ok(())
    }

    /// Frees the file blocks `>= keep` under indirect block `block`, which maps
    /// file blocks from `base` through `depth` levels. Returns true if `block`
    /// itself was freed (nothing under it is left).
    fn truncate_branch(&mut self, block: u32, depth: u32, base: u64, keep: u64, nr_freed: &mut u32) -> Result<bool> {
        self.check_block(block)?;
        let p = self.ptrs_per_block();
        let child_span = p.pow(depth - 1);
        let bytes = self.cache.read(self.dev, block)?;
        let mut ptrs: Vec<u32> = (0..p as usize).map(|i| le32(bytes, i * 4)).collect();
        let mut is_changed = false;
        for (i, ptr) in ptrs.iter_mut().enumerate() {
            let child_base = base + i as u64 * child_span;
            if *ptr == 0 || child_base + child_span <= keep {
                continue;
            }
            let is_child_freed = if depth == 1 {
                self.free_block(*ptr)?;
                true
            } else {
                self.truncate_branch(*ptr, depth - 1, child_base, keep, nr_freed)?
            };
            if is_child_freed {
                *ptr = 0;
                *nr_freed += u32::from(depth == 1);
                is_changed = true;
            }
        }
        if ptrs.iter().all(|&ptr| ptr == 0) {
            self.free_block(block)?;
            *nr_freed += 1;
            return Ok(true);
        }
        if is_changed {
            let bytes = self.cache.modify(self.dev, block)?;
            for (i, ptr) in ptrs.iter().enumerate() {
                put32(bytes, i * 4, *ptr);
            }
        }
        Ok(false)
    }
}
