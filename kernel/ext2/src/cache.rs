//! A small write-back cache of file-system blocks.
//!
//! Metadata (bitmaps, group descriptors, inode tables, indirect blocks, directory
//! blocks) is read and changed through this cache, and so are file data blocks when
//! they are written. A changed block is only marked dirty: it reaches the disk when
//! [`BlockCache::sync`] runs (called by [`crate::Ext2::sync`]), or earlier if it is
//! the least recently used block when the cache is full and a new block needs its
//! place. Nothing is written behind the caller's back at any other time, so the
//! kernel's page cache, which will sit above this, decides when data is durable.
//!
//! Reads of file data that is not cached go straight from the disk into the
//! caller's buffer ([`BlockCache::read_into`], [`BlockCache::read_run_into`])
//! without filling the cache: a long sequential read does not push the metadata out.
//!
//! Requests are batched: adjacent dirty blocks go to the disk in one write of up to
//! [`MAX_RUN_BLOCKS`] blocks (at sync, and when an eviction has to write), and a
//! read of adjacent file blocks is one request. Under QEMU a virtio request costs
//! tens of microseconds whatever it carries, so this is most of the speed.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use blockdev::{BlockDevice, SECTOR_SIZE};

use crate::error::Result;

/// Blocks the cache holds before it evicts (256 KiB of 1 KiB blocks, 1 MiB of 4 KiB).
pub const DEFAULT_CAPACITY: usize = 256;
/// Most blocks one disk request carries (writing back a run, reading file data).
pub const MAX_RUN_BLOCKS: u32 = 64;

struct Slot {
    data: Vec<u8>,
    is_dirty: bool,
    last_use: u64,
}

/// Cached blocks by block number, with a least-recently-used clock.
pub struct BlockCache {
    block_size: usize,
    capacity: usize,
    slots: BTreeMap<u32, Slot>,
    tick: u64,
}

impl BlockCache {
    /// An empty cache of `capacity` blocks of `block_size` bytes.
    pub fn new(block_size: usize, capacity: usize) -> Self {
        Self { block_size, capacity: capacity.max(8), slots: BTreeMap::new(), tick: 0 }
    }

    fn sector_of(&self, block: u32) -> u64 {
        u64::from(block) * (self.block_size / SECTOR_SIZE) as u64
    }

    /// Makes room for one more block: evicts the least recently used one, writing it
    /// back first if it is dirty.
    fn make_room(&mut self, dev: &dyn BlockDevice) -> Result<()> {
        if self.slots.len() < self.capacity {
            return Ok(());
        }
        let (&victim, _) = self.slots.iter().min_by_key(|(_, s)| s.last_use).expect("make_room: cache full but empty");
        if self.slots[&victim].is_dirty {
            // Write the victim's whole run of adjacent dirty blocks in one request:
            // its neighbours are likely next (a long write), and then cost nothing.
            let lowest = victim.saturating_sub(MAX_RUN_BLOCKS - 1);
            let mut first = victim;
            while first > lowest && self.is_dirty(first - 1) {
                first -= 1;
            }
            self.write_run(dev, first)?;
        }
        self.slots.remove(&victim);
        Ok(())
    }

    /// Returns true if `block` is in the cache.
    pub fn contains(&self, block: u32) -> bool {
        self.slots.contains_key(&block)
    }

    fn is_dirty(&self, block: u32) -> bool {
        self.slots.get(&block).is_some_and(|s| s.is_dirty)
    }

    /// Writes the run of adjacent dirty blocks starting at dirty block `first` (at
    /// most [`MAX_RUN_BLOCKS`]) in one request and marks them clean; returns the
    /// block after the run.
    fn write_run(&mut self, dev: &dyn BlockDevice, first: u32) -> Result<u32> {
        let mut end = first;
        while end - first < MAX_RUN_BLOCKS && self.is_dirty(end) {
            end += 1;
        }
        let mut buf = Vec::new();
        if buf.try_reserve_exact((end - first) as usize * self.block_size).is_ok() {
            for block in first..end {
                buf.extend_from_slice(&self.slots[&block].data);
            }
            dev.write(self.sector_of(first), &buf)?;
        } else {
            // No room for the run's buffer (the kernel is short of memory, which is
            // when its page cache writes back): one request per block, no buffer.
            for block in first..end {
                dev.write(self.sector_of(block), &self.slots[&block].data)?;
            }
        }
        for block in first..end {
            self.slots.get_mut(&block).expect("write_run: dirty block cached").is_dirty = false;
        }
        Ok(end)
    }

    /// Returns the cached slot of `block`, reading it from the disk on a miss
    /// (`fill` = true) or starting from zeros (`fill` = false: the caller will
    /// overwrite all of it).
    fn slot(&mut self, dev: &dyn BlockDevice, block: u32, fill: bool) -> Result<&mut Slot> {
        self.tick += 1;
        let tick = self.tick;
        if !self.slots.contains_key(&block) {
            self.make_room(dev)?;
            let mut data = vec![0u8; self.block_size];
            if fill {
                dev.read(self.sector_of(block), &mut data)?;
            }
            self.slots.insert(block, Slot { data, is_dirty: false, last_use: tick });
        }
        let slot = self.slots.get_mut(&block).expect("slot: just inserted");
        slot.last_use = tick;
        Ok(slot)
    }

    /// Returns the contents of `block`.
    pub fn read(&mut self, dev: &dyn BlockDevice, block: u32) -> Result<&[u8]> {
        Ok(&self.slot(dev, block, true)?.data)
    }

    /// Returns the contents of `block` to change; the block becomes dirty.
    pub fn modify(&mut self, dev: &dyn BlockDevice, block: u32) -> Result<&mut [u8]> {
        let slot = self.slot(dev, block, true)?;
        slot.is_dirty = true;
        Ok(&mut slot.data)
    }

    /// Returns a zero-filled dirty block (a block just allocated), without reading
    /// the disk.
    pub fn zeroed(&mut self, dev: &dyn BlockDevice, block: u32) -> Result<&mut [u8]> {
        let slot = self.slot(dev, block, false)?;
        slot.data.fill(0);
        slot.is_dirty = true;
        Ok(&mut slot.data)
    }

    /// Copies the contents of `block` into `buf` (one block long): from the cache if
    /// it is there, else straight from the disk without caching it.
    pub fn read_into(&mut self, dev: &dyn BlockDevice, block: u32, buf: &mut [u8]) -> Result<()> {
        if let Some(slot) = self.slots.get(&block) {
            buf.copy_from_slice(&slot.data);
            return Ok(());
        }
        dev.read(self.sector_of(block), buf)?;
        Ok(())
    }

    /// Drops `block` from the cache without writing it (it was freed: its contents
    /// no longer matter).
    pub fn forget(&mut self, block: u32) {
        self.slots.remove(&block);
    }

    /// Writes every dirty block to the disk, in block order. A block whose write
    /// fails stays dirty and the error is returned.
    pub fn sync(&mut self, dev: &dyn BlockDevice) -> Result<()> {
        let mut next = 0;
        while let Some(first) = self.slots.range(next..).find(|(_, s)| s.is_dirty).map(|(&b, _)| b) {
            next = self.write_run(dev, first)?;
        }
        Ok(())
    }

    /// Reads `count` adjacent blocks from `first`, none of them cached, into `buf`
    /// (`count` blocks long) with one request, without caching them.
    pub fn read_run_into(&mut self, dev: &dyn BlockDevice, first: u32, count: u32, buf: &mut [u8]) -> Result<()> {
        debug_assert!(self.slots.range(first..first + count).next().is_none(), "read_run_into: a block is cached");
        dev.read(self.sector_of(first), buf)?;
        Ok(())
    }

    /// Returns how many blocks are dirty now.
    pub fn nr_dirty(&self) -> usize {
        self.slots.values().filter(|s| s.is_dirty).count()
    }
}
