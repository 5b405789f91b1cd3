//! Inodes: the on-disk record of one file, parsed into [`Inode`] and written back.
//!
//! An inode holds a file's type and permissions (`mode`), owner, size, times, link
//! count, the number of 512-byte sectors it occupies (`i_blocks`) and its block map:
//! `block[0..12]` point at the first twelve data blocks, `block[12]` at an indirect
//! block of block numbers, `block[13]` at a double and `block[14]` at a triple
//! indirect block (the walk is in `block_map.rs`). A fast symlink keeps its target
//! in those 60 bytes instead.
//!
//! Inodes are numbered from 1; inode `n` lives in group `(n - 1) / inodes_per_group`
//! at index `(n - 1) % inodes_per_group` of that group's inode table. Number 2 is
//! the root directory; numbers below `first_ino` (11) are reserved.
//!
//! The raw bytes are kept: writing an inode back changes only the fields parsed
//! here, so the fields this code does not know (in-inode extended attributes,
//! extra timestamp bits) survive.

use alloc::vec;
use alloc::vec::Vec;

use crate::layout::{le16, le32, put16, put32};

/// Number of block pointers in an inode (12 direct + 3 indirect).
pub const NR_BLOCK_PTRS: usize = 15;
/// Direct block pointers.
pub const NR_DIRECT: usize = 12;
/// `i_flags`: the directory has a hashed (htree) index, which this code does not
/// keep up to date, so it clears the flag when it changes the directory (as Linux
/// ext2 does).
pub const INDEX_FL: u32 = 0x1000;

/// File-type bits of `mode`.
pub const S_IFMT: u16 = 0o170000;
/// Socket.
pub const S_IFSOCK: u16 = 0o140000;
/// Symbolic link.
pub const S_IFLNK: u16 = 0o120000;
/// Regular file.
pub const S_IFREG: u16 = 0o100000;
/// Block device.
pub const S_IFBLK: u16 = 0o060000;
/// Directory.
pub const S_IFDIR: u16 = 0o040000;
/// Character device.
pub const S_IFCHR: u16 = 0o020000;
/// FIFO.
pub const S_IFIFO: u16 = 0o010000;

/// What kind of file an inode is (from its mode, or a directory entry's type byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileType {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A character device node.
    CharDevice,
    /// A block device node.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
}

impl FileType {
    /// Returns the type of an inode mode, or `None` for an unknown type.
    pub fn from_mode(mode: u16) -> Option<Self> {
        Some(match mode & S_IFMT {
            S_IFREG => Self::Regular,
            S_IFDIR => Self::Directory,
            S_IFLNK => Self::Symlink,
            S_IFCHR => Self::CharDevice,
            S_IFBLK => Self::BlockDevice,
            S_IFIFO => Self::Fifo,
            S_IFSOCK => Self::Socket,
            _ => return None,
        })
    }

    /// Returns the type of a directory entry's file-type byte (`EXT2_FT_*`).
    pub fn from_dirent(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::Regular,
            2 => Self::Directory,
            3 => Self::CharDevice,
            4 => Self::BlockDevice,
            5 => Self::Fifo,
            6 => Self::Socket,
            7 => Self::Symlink,
            _ => return None,
        })
    }

    /// Returns the directory entry's file-type byte (`EXT2_FT_*`) of this type.
    pub fn dirent_byte(self) -> u8 {
        match self {
            Self::Regular => 1,
            Self::Directory => 2,
            Self::CharDevice => 3,
            Self::BlockDevice => 4,
            Self::Fifo => 5,
            Self::Socket => 6,
            Self::Symlink => 7,
        }
    }

    /// Returns the `S_IF*` bits of this type.
    pub fn mode_bits(self) -> u16 {
        match self {
            Self::Regular => S_IFREG,
            Self::Directory => S_IFDIR,
            Self::Symlink => S_IFLNK,
            Self::CharDevice => S_IFCHR,
            Self::BlockDevice => S_IFBLK,
            Self::Fifo => S_IFIFO,
            Self::Socket => S_IFSOCK,
        }
    }
}

/// One inode, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    raw: Vec<u8>,
    /// Type and permission bits.
    pub mode: u16,
    /// Owner (low and high 16 bits joined).
    pub uid: u32,
    /// Group (low and high 16 bits joined).
    pub gid: u32,
    /// Size in bytes (`i_size` + `i_size_high` for regular files).
    pub size: u64,
    /// Last access, seconds since 1970.
    pub atime: u32,
    /// Last change of the inode.
    pub ctime: u32,
    /// Last change of the data.
    pub mtime: u32,
    /// Deletion time: non-zero only on a freed inode.
    pub dtime: u32,
    /// Hard links (directory entries naming this inode; a directory also counts its
    /// own `.` and each subdirectory's `..`).
    pub nr_links: u16,
    /// 512-byte sectors of data, indirect and extended-attribute blocks (`i_blocks`).
    pub nr_sectors: u32,
    /// `i_flags`.
    pub flags: u32,
    /// The block map (or a fast symlink's target).
    pub block: [u32; NR_BLOCK_PTRS],
    /// Block of extended attributes, 0 if none.
    pub file_acl: u32,
}

impl Inode {
    /// Parses one inode record (`inode_size` bytes).
    pub fn parse(raw: &[u8]) -> Self {
        let mode = le16(raw, 0);
        let mut block = [0u32; NR_BLOCK_PTRS];
        for (i, b) in block.iter_mut().enumerate() {
            *b = le32(raw, 40 + 4 * i);
        }
        let size_high = if mode & S_IFMT == S_IFREG { le32(raw, 108) } else { 0 };
        Self {
            raw: raw.to_vec(),
            mode,
            uid: u32::from(le16(raw, 2)) | u32::from(le16(raw, 120)) << 16,
            gid: u32::from(le16(raw, 24)) | u32::from(le16(raw, 122)) << 16,
            size: u64::from(le32(raw, 4)) | u64::from(size_high) << 32,
            atime: le32(raw, 8),
            ctime: le32(raw, 12),
            mtime: le32(raw, 16),
            dtime: le32(raw, 20),
            nr_links: le16(raw, 26),
            nr_sectors: le32(raw, 28),
            flags: le32(raw, 32),
            block,
            file_acl: le32(raw, 104),
        }
    }

    /// A fresh inode record of `inode_size` bytes: all zero but the fields given.
    /// Large inodes get `i_extra_isize` = 32, as mke2fs and Linux write it.
    pub fn new(inode_size: usize, mode: u16, now: u32) -> Self {
        let mut raw = vec![0u8; inode_size];
        if inode_size >= 160 {
            put16(&mut raw, 128, 32);
        }
        let mut inode = Self::parse(&raw);
        inode.mode = mode;
        inode.atime = now;
        inode.ctime = now;
        inode.mtime = now;
        inode
    }

    /// Returns the inode record with the parsed fields written into its raw bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut raw = self.raw.clone();
        put16(&mut raw, 0, self.mode);
        put16(&mut raw, 2, self.uid as u16);
        put16(&mut raw, 120, (self.uid >> 16) as u16);
        put16(&mut raw, 24, self.gid as u16);
        put16(&mut raw, 122, (self.gid >> 16) as u16);
        put32(&mut raw, 4, self.size as u32);
        if self.mode & S_IFMT == S_IFREG {
            put32(&mut raw, 108, (self.size >> 32) as u32);
        }
        put32(&mut raw, 8, self.atime);
        put32(&mut raw, 12, self.ctime);
        put32(&mut raw, 16, self.mtime);
        put32(&mut raw, 20, self.dtime);
        put16(&mut raw, 26, self.nr_links);
        put32(&mut raw, 28, self.nr_sectors);
        put32(&mut raw, 32, self.flags);
        for (i, b) in self.block.iter().enumerate() {
            put32(&mut raw, 40 + 4 * i, *b);
        }
        put32(&mut raw, 104, self.file_acl);
        raw
    }

    /// Returns the file type, or `None` if the mode names no known type.
    pub fn file_type(&self) -> Option<FileType> {
        FileType::from_mode(self.mode)
    }

    /// Returns true for a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    /// Returns true when the block pointers are block numbers this file owns: a
    /// regular file, a directory or a slow symlink, with some sectors allocated
    /// besides the extended-attribute block. (A fast symlink keeps text there, a
    /// device node its device number.)
    pub fn has_block_map(&self, block_size: usize) -> bool {
        let xattr_sectors = if self.file_acl != 0 { (block_size / 512) as u32 } else { 0 };
        matches!(self.mode & S_IFMT, S_IFREG | S_IFDIR | S_IFLNK) && self.nr_sectors > xattr_sectors
    }

    /// The 60 bytes of the block map, where a fast symlink keeps its target.
    pub fn block_bytes(&self) -> [u8; 60] {
        let mut out = [0u8; 60];
        for (i, b) in self.block.iter().enumerate() {
            out[4 * i..4 * i + 4].copy_from_slice(&b.to_le_bytes());
        }
        out
    }

    /// Stores up to 60 bytes (a fast symlink's target) in the block map.
    pub fn set_block_bytes(&mut self, bytes: &[u8]) {
        let mut padded = [0u8; 60];
        padded[..bytes.len()].copy_from_slice(bytes);
        for (i, b) in self.block.iter_mut().enumerate() {
            *b = le32(&padded, 4 * i);
        }
    }
}
