//! Block and inode allocation: the bitmaps and the counts that must agree with them.
//!
//! Each group has a block bitmap (bit `i` set = block `group_first + i` in use) and
//! an inode bitmap (bit `i` set = inode `group * inodes_per_group + i + 1` in use).
//! Every allocation and free changes three things together, so e2fsck finds them
//! equal: the bit, the group descriptor's free count, the superblock's free count
//! (and a directory's inode also the group's `used_dirs` count).
//!
//! Placement, simplified from Linux ext2 (`fs/ext2/balloc.c`, `ialloc.c`): a block
//! goes at the caller's goal (the block after the file's previous one) or the first
//! free block after it, in the goal's group first and then the following groups; a
//! file's inode goes in its parent directory's group; a new directory's inode goes
//! in the group with the most free inodes among those with at least the average
//! (spreading directories, as Linux's Orlov allocator does for top-level ones).

use crate::error::{Corruption, Ext2Error, Result};
use crate::fs::Ext2;
use crate::InodeNo;

/// Returns the first clear bit of `bitmap` in `from..end`, then in `0..from`.
fn find_clear_bit(bitmap: &[u8], from: u32, end: u32) -> Option<u32> {
    let clear = |i: u32| bitmap[(i / 8) as usize] & (1 << (i % 8)) == 0;
    (from..end).chain(0..from.min(end)).find(|&i| clear(i))
}

impl Ext2<'_> {
    /// Returns the group of block `block`.
    pub(crate) fn group_of_block(&self, block: u32) -> u32 {
        (block.saturating_sub(self.sb.first_data_block) / self.sb.blocks_per_group).min(self.sb.nr_groups - 1)
    }

    /// Checks that `block` may be a file's block: inside the file system and not
    /// the boot block or superblock.
    pub(crate) fn check_block(&self, block: u32) -> Result<()> {
        if block <= self.sb.first_data_block || block >= self.sb.nr_blocks {
            return Err(Ext2Error::Corrupt(Corruption::BlockOutOfRange(block)));
        }
        Ok(())
    }

    /// Allocates one block, as close after `goal` as possible; `ENOSPC` if none is
    /// free. The block's contents are whatever was there: the caller zeroes or
    /// overwrites it.
    pub(crate) fn alloc_block(&mut self, goal: u32) -> Result<u32> {
        if self.sb.nr_free_blocks == 0 {
            return Err(Ext2Error::NoSpace);
        }
        let goal = goal.clamp(self.sb.first_data_block, self.sb.nr_blocks - 1);
        let first_group = self.group_of_block(goal);
        for i in 0..self.sb.nr_groups {
            let g = (first_group + i) % self.sb.nr_groups;
            if self.groups[g as usize].nr_free_blocks == 0 {
                continue;
            }
            let group_first = self.sb.group_first_block(g);
            let from = if i == 0 { goal - group_first } else { 0 };
            let nr_bits = self.sb.group_nr_blocks(g);
            let bitmap_block = self.groups[g as usize].block_bitmap;
            let bitmap = self.cache.modify(self.dev, bitmap_block)?;
            let Some(bit) = find_clear_bit(bitmap, from, nr_bits) else {
                return Err(Ext2Error::Corrupt(Corruption::BitmapCountMismatch { group: g }));
            };
            bitmap[(bit / 8) as usize] |= 1 << (bit % 8);
            self.groups[g as usize].nr_free_blocks -= 1;
            self.sb.nr_free_blocks -= 1;
            self.write_group_desc(g)?;
            return Ok(group_first + bit);
        }
        Err(Ext2Error::Corrupt(Corruption::BitmapCountMismatch { group: first_group }))
    }

    /// Frees block `block`: clears its bit and counts it free; drops it from the cache.
    pub(crate) fn free_block(&mut self, block: u32) -> Result<()> {
        self.check_block(block)?;
        let g = self.group_of_block(block);
        let bit = block - self.sb.group_first_block(g);
        let bitmap_block = self.groups[g as usize].block_bitmap;
        let bitmap = self.cache.modify(self.dev, bitmap_block)?;
        let mask = 1u8 << (bit % 8);
        if bitmap[(bit / 8) as usize] & mask == 0 {
            return Err(Ext2Error::Corrupt(Corruption::BitmapCountMismatch { group: g }));
        }
        bitmap[(bit / 8) as usize] &= !mask;
        self.groups[g as usize].nr_free_blocks += 1;
        self.sb.nr_free_blocks += 1;
        self.cache.forget(block);
        self.write_group_desc(g)
    }

    /// Picks the group for a new inode (see the module doc).
    fn pick_inode_group(&self, parent: InodeNo, is_dir: bool) -> Option<u32> {
        let nr_groups = self.sb.nr_groups;
        if is_dir {
            let average = self.sb.nr_free_inodes / nr_groups;
            return (0..nr_groups)
                .filter(|&g| self.groups[g as usize].nr_free_inodes > 0)
                .filter(|&g| u32::from(self.groups[g as usize].nr_free_inodes) >= average)
                .max_by_key(|&g| (self.groups[g as usize].nr_free_inodes, core::cmp::Reverse(g)));
        }
        let parent_group = (parent.0 - 1) / self.sb.inodes_per_group;
        (0..nr_groups).map(|i| (parent_group + i) % nr_groups).find(|&g| self.groups[g as usize].nr_free_inodes > 0)
    }

    /// Allocates an inode for a child of `parent` (a directory if `is_dir`); the
    /// caller writes its record. `ENOSPC` when no inode is free.
    pub(crate) fn alloc_inode(&mut self, parent: InodeNo, is_dir: bool) -> Result<InodeNo> {
        if self.sb.nr_free_inodes == 0 {
            return Err(Ext2Error::NoSpace);
        }
        let g = self.pick_inode_group(parent, is_dir).ok_or(Ext2Error::NoSpace)?;
        // Inodes below first_ino are reserved (root, journal, resize inode...).
        let group_base = g * self.sb.inodes_per_group;
        let from = self.sb.first_ino.saturating_sub(group_base + 1).min(self.sb.inodes_per_group);
        let bitmap_block = self.groups[g as usize].inode_bitmap;
        let ipg = self.sb.inodes_per_group;
        let bitmap = self.cache.modify(self.dev, bitmap_block)?;
        let clear = |i: u32| bitmap[(i / 8) as usize] & (1 << (i % 8)) == 0;
        let Some(bit) = (from..ipg).find(|&i| clear(i)) else {
            return Err(Ext2Error::Corrupt(Corruption::BitmapCountMismatch { group: g }));
        };
        bitmap[(bit / 8) as usize] |= 1 << (bit % 8);
        let desc = &mut self.groups[g as usize];
        desc.nr_free_inodes -= 1;
        if is_dir {
            desc.nr_dirs += 1;
        }
        self.sb.nr_free_inodes -= 1;
        self.write_group_desc(g)?;
        Ok(InodeNo(group_base + bit + 1))
    }

    /// Frees inode `ino` in the bitmap and the counts (its blocks must be freed and
    /// its record marked deleted by the caller).
    pub(crate) fn free_inode(&mut self, ino: InodeNo, was_dir: bool) -> Result<()> {
        self.check_ino(ino)?;
        let g = (ino.0 - 1) / self.sb.inodes_per_group;
        let bit = (ino.0 - 1) % self.sb.inodes_per_group;
        let bitmap_block = self.groups[g as usize].inode_bitmap;
        let bitmap = self.cache.modify(self.dev, bitmap_block)?;
        let mask = 1u8 << (bit % 8);
        if bitmap[(bit / 8) as usize] & mask == 0 {
            return Err(Ext2Error::Corrupt(Corruption::BitmapCountMismatch { group: g }));
        }
        bitmap[(bit / 8) as usize] &= !mask;
        let desc = &mut self.groups[g as usize];
        desc.nr_free_inodes += 1;
        if was_dir {
            desc.nr_dirs = desc.nr_dirs.saturating_sub(1);
        }
        self.sb.nr_free_inodes += 1;
        self.write_group_desc(g)
    }
}
