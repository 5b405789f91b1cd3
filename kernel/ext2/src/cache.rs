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
//! caller's buffer ([`BlockCache::read_into`]) without filling the cache: a long
//! sequential read does not push the metadata out.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use blockdev::{BlockDevice, SECTOR_SIZE};

use crate::error::Result;

/// Blocks the cache holds before it evicts (256 KiB of 1 KiB blocks, 1 MiB of 4 KiB).
pub const DEFAULT_CAPACITY: usize = 256;

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
        let slot = &self.slots[&victim];
        if slot.is_dirty {
            dev.write(self.sector_of(victim), &slot.data)?;
        }
        self.slots.remove(&victim);
        Ok(())
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
        let spb = (self.block_size / SECTOR_SIZE) as u64;
        for (&block, slot) in self.slots.iter_mut().filter(|(_, s)| s.is_dirty) {
            dev.write(u64::from(block) * spb, &slot.data)?;
            slot.is_dirty = false;
        }
        Ok(())
    }

    /// Returns how many blocks are dirty now.
    pub fn nr_dirty(&self) -> usize {
        self.slots.values().filter(|s| s.is_dirty).count()
    }
}
