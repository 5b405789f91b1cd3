//! The on-disk layout: the superblock and the group descriptors, parsed and checked.
//!
//! An ext2 disk is cut into *block groups* of `blocks_per_group` blocks. The
//! superblock (1024 bytes at byte 1024 of the disk) says how big everything is; the
//! group descriptor table, in the block after the superblock's, says where each
//! group keeps its block bitmap, inode bitmap and inode table and how many free
//! blocks, free inodes and directories it has. The chapter docs/10-files.md draws it.
//!
//! [`Superblock::parse`] is the mount-time gate: it checks the magic, revision,
//! block size, feature flags and geometry and returns a [`Refusal`] for anything
//! this code cannot keep consistent. Nothing is written before it has said yes.
//!
//! Only the fields this code uses are parsed; the raw bytes are kept so that writing
//! the superblock back changes only the counts and times it owns.

use alloc::vec::Vec;

use crate::error::Refusal;

/// Magic number at byte 56 of the superblock.
pub const EXT2_MAGIC: u16 = 0xEF53;
/// Byte offset of the superblock on the disk (whatever the block size).
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// Bytes of the superblock.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// Bytes of one group descriptor (32: the 64bit feature, which doubles it, is refused).
pub const GROUP_DESC_SIZE: usize = 32;

/// `s_feature_incompat`: directory entries carry the file type.
pub const INCOMPAT_FILETYPE: u32 = 0x0002;
/// `s_feature_incompat`: an ext3/4 journal holds transactions to replay.
pub const INCOMPAT_RECOVER: u32 = 0x0004;
/// Incompatible features this code implements.
pub const INCOMPAT_SUPPORTED: u32 = INCOMPAT_FILETYPE;
/// `s_feature_ro_compat`: superblock backups only in groups 0, 1 and powers of 3, 5, 7.
pub const RO_COMPAT_SPARSE_SUPER: u32 = 0x0001;
/// `s_feature_ro_compat`: files may be larger than 2 GiB (`i_size_high` used).
pub const RO_COMPAT_LARGE_FILE: u32 = 0x0002;
/// Read-only-compatible features this code keeps correct when it writes.
pub const RO_COMPAT_SUPPORTED: u32 = RO_COMPAT_SPARSE_SUPER | RO_COMPAT_LARGE_FILE;

/// The superblock fields this code reads and keeps up to date.
#[derive(Debug, Clone)]
pub struct Superblock {
    raw: Vec<u8>,
    /// Inodes in the file system (`s_inodes_count`).
    pub nr_inodes: u32,
    /// Blocks in the file system, including the boot block (`s_blocks_count`).
    pub nr_blocks: u32,
    /// Free blocks (`s_free_blocks_count`), kept equal to the sum over groups.
    pub nr_free_blocks: u32,
    /// Free inodes (`s_free_inodes_count`), kept equal to the sum over groups.
    pub nr_free_inodes: u32,
    /// Block holding the superblock: 1 for 1 KiB blocks, else 0.
    pub first_data_block: u32,
    /// Bytes in one block: 1024, 2048 or 4096.
    pub block_size: usize,
    /// Blocks in a full group.
    pub blocks_per_group: u32,
    /// Inodes in every group.
    pub inodes_per_group: u32,
    /// First inode number a file may use (11 on revision 0).
    pub first_ino: u32,
    /// Bytes per inode in the inode table (128 on revision 0).
    pub inode_size: usize,
    /// Incompatible feature flags.
    pub feature_incompat: u32,
    /// Read-only-compatible feature flags.
    pub feature_ro_compat: u32,
    /// Number of block groups.
    pub nr_groups: u32,
    /// Time of the last write (`s_wtime`), seconds since 1970.
    pub write_time: u32,
}

pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

impl Superblock {
    /// Parses and checks the 1024 superblock bytes of a disk of `disk_bytes` bytes.
    ///
    /// Returns the [`Refusal`] that says why the disk must not be mounted: a bad
    /// magic, a newer revision, an unsupported block size or feature, a journal that
    /// needs recovery, or counts that contradict each other or the disk's size.
    pub fn parse(raw: &[u8], disk_bytes: u64) -> Result<Self, Refusal> {
        let magic = le16(raw, 56);
        if magic != EXT2_MAGIC {
            return Err(Refusal::BadMagic(magic));
        }
        let revision = le32(raw, 76);
        if revision > 1 {
            return Err(Refusal::UnsupportedRevision(revision));
        }
        let log_block_size = le32(raw, 24);
        if log_block_size > 2 {
            return Err(Refusal::UnsupportedBlockSize(1024u64 << log_block_size.min(40)));
        }
        let block_size = 1024usize << log_block_size;
        let (first_ino, inode_size, incompat, ro_compat) = if revision == 0 {
            (11, 128u16, 0, 0)
        } else {
            (le32(raw, 84), le16(raw, 88), le32(raw, 96), le32(raw, 100))
        };
        if incompat & INCOMPAT_RECOVER != 0 {
            return Err(Refusal::NeedsRecovery);
        }
        if incompat & !INCOMPAT_SUPPORTED != 0 {
            return Err(Refusal::IncompatFeatures(incompat & !INCOMPAT_SUPPORTED));
        }
        if ro_compat & !RO_COMPAT_SUPPORTED != 0 {
            return Err(Refusal::RoCompatFeatures(ro_compat & !RO_COMPAT_SUPPORTED));
        }
        if !inode_size.is_power_of_two() || inode_size < 128 || inode_size as usize > block_size {
            return Err(Refusal::BadInodeSize(inode_size));
        }
        let sb = Self {
            raw: raw[..SUPERBLOCK_SIZE].to_vec(),
            nr_inodes: le32(raw, 0),
            nr_blocks: le32(raw, 4),
            nr_free_blocks: le32(raw, 12),
            nr_free_inodes: le32(raw, 16),
            first_data_block: le32(raw, 20),
            block_size,
            blocks_per_group: le32(raw, 32),
            inodes_per_group: le32(raw, 40),
            first_ino,
            inode_size: inode_size as usize,
            feature_incompat: incompat,
            feature_ro_compat: ro_compat,
            nr_groups: 0,
            write_time: le32(raw, 48),
        };
        sb.check_geometry(disk_bytes)
    }

    fn check_geometry(mut self, disk_bytes: u64) -> Result<Self, Refusal> {
        let bits_per_block = self.block_size as u32 * 8;
        let expected_first = if self.block_size == 1024 { 1 } else { 0 };
        if self.first_data_block != expected_first
            || self.blocks_per_group == 0
            || self.blocks_per_group > bits_per_block
            || self.inodes_per_group == 0
            || self.inodes_per_group > bits_per_block
            || self.nr_blocks <= self.first_data_block
            || self.first_ino <= 2
        {
            return Err(Refusal::BadGeometry);
        }
        let nr_groups = (self.nr_blocks - self.first_data_block).div_ceil(self.blocks_per_group);
        let gdt_blocks = (nr_groups as usize * GROUP_DESC_SIZE).div_ceil(self.block_size) as u32;
        if u64::from(nr_groups) * u64::from(self.inodes_per_group) != u64::from(self.nr_inodes)
            || self.first_ino >= self.nr_inodes
            || self.nr_free_blocks > self.nr_blocks
            || self.nr_free_inodes > self.nr_inodes
            || self.first_data_block + 1 + gdt_blocks > self.nr_blocks
        {
            return Err(Refusal::BadGeometry);
        }
        let fs_bytes = u64::from(self.nr_blocks) * self.block_size as u64;
        if fs_bytes > disk_bytes {
            return Err(Refusal::DiskTooSmall { fs_bytes, disk_bytes });
        }
        self.nr_groups = nr_groups;
        Ok(self)
    }

    /// Returns true when directory entries carry a file-type byte.
    pub fn has_filetype(&self) -> bool {
        self.feature_incompat & INCOMPAT_FILETYPE != 0
    }

    /// Blocks of the inode table of one group.
    pub fn inode_table_blocks(&self) -> u32 {
        (self.inodes_per_group as usize * self.inode_size).div_ceil(self.block_size) as u32
    }

    /// First block of group `group`.
    pub fn group_first_block(&self, group: u32) -> u32 {
        self.first_data_block + group * self.blocks_per_group
    }

    /// Blocks in group `group` (the last group may be shorter).
    pub fn group_nr_blocks(&self, group: u32) -> u32 {
        let first = self.group_first_block(group);
        self.blocks_per_group.min(self.nr_blocks - first)
    }

    /// Block where the group descriptor table starts.
    pub fn gdt_first_block(&self) -> u32 {
        self.first_data_block + 1
    }

    /// Returns the superblock bytes with this struct's counts, times and features
    /// written into them (every other field as it was read).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut raw = self.raw.clone();
        put32(&mut raw, 12, self.nr_free_blocks);
        put32(&mut raw, 16, self.nr_free_inodes);
        put32(&mut raw, 48, self.write_time);
        if le32(&raw, 76) >= 1 {
            put32(&mut raw, 100, self.feature_ro_compat);
        }
        raw
    }
}

/// One group's descriptor: where its metadata lives and its counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupDesc {
    /// Block of the group's block bitmap.
    pub block_bitmap: u32,
    /// Block of the group's inode bitmap.
    pub inode_bitmap: u32,
    /// First block of the group's inode table.
    pub inode_table: u32,
    /// Free blocks in the group.
    pub nr_free_blocks: u16,
    /// Free inodes in the group.
    pub nr_free_inodes: u16,
    /// Directories in the group.
    pub nr_dirs: u16,
}

impl GroupDesc {
    /// Parses the 32 bytes of one descriptor.
    pub fn parse(b: &[u8]) -> Self {
        Self {
            block_bitmap: le32(b, 0),
            inode_bitmap: le32(b, 4),
            inode_table: le32(b, 8),
            nr_free_blocks: le16(b, 12),
            nr_free_inodes: le16(b, 14),
            nr_dirs: le16(b, 16),
        }
    }

    /// Writes the counts into the 32 bytes of the descriptor (the block numbers
    /// never change).
    pub fn write_counts(&self, b: &mut [u8]) {
        put16(b, 12, self.nr_free_blocks);
        put16(b, 14, self.nr_free_inodes);
        put16(b, 16, self.nr_dirs);
    }

    /// Checks that the bitmaps and the inode table lie inside group `group` and the
    /// counts fit in it.
    pub fn check(&self, sb: &Superblock, group: u32) -> Result<(), Refusal> {
        let first = sb.group_first_block(group);
        let end = first + sb.group_nr_blocks(group);
        let inside = |b: u32, len: u32| b >= first && b.checked_add(len).is_some_and(|e| e <= end);
        if !inside(self.block_bitmap, 1)
            || !inside(self.inode_bitmap, 1)
            || !inside(self.inode_table, sb.inode_table_blocks())
            || u32::from(self.nr_free_blocks) > end - first
            || u32::from(self.nr_free_inodes) > sb.inodes_per_group
        {
            return Err(Refusal::BadGroupDescriptor(group));
        }
        Ok(())
    }
}
