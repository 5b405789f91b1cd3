//! `ext2`: the second extended file system, read and written over a block device.
//!
//! [`Ext2::mount`] reads and checks the superblock of a `&dyn BlockDevice`
//! (`kernel/blockdev`) and refuses, without writing a byte, any disk it cannot keep
//! consistent. After that, every operation the kernel's VFS needs is a method of
//! [`Ext2`], addressed by inode number ([`InodeNo`]):
//!
//! | VFS need | method |
//! |---|---|
//! | path lookup (`.`/`..`, symlinks) | [`Ext2::lookup`], [`Ext2::lookup_path`] |
//! | `stat`, `statfs` | [`Ext2::stat`] ([`Stat`]), [`Ext2::statfs`] ([`FsStats`]) |
//! | `chmod`, `chown`, `utimensat` | [`Ext2::set_attr`] ([`SetAttr`]) |
//! | `read`/`write`/`ftruncate` | [`Ext2::read_at`], [`Ext2::write_at`], [`Ext2::truncate`] |
//! | page cache `bmap` | [`Ext2::block_of`] (which disk block holds a file block) |
//! | `getdents64` | [`Ext2::read_dir`] ([`DirEntry`] with the offset of the next one) |
//! | `open(O_CREAT)`, `mkdir`, `symlink`, `link` | [`Ext2::create`], [`Ext2::mkdir`], [`Ext2::symlink`], [`Ext2::link`] |
//! | `unlink`, `rmdir`, `rename`, `readlink` | [`Ext2::unlink`], [`Ext2::rmdir`], [`Ext2::rename`], [`Ext2::readlink`] |
//! | open files that outlive `unlink` | [`Ext2::inode_get`] / [`Ext2::inode_put`] |
//! | `fsync`, `sync`, unmount | [`Ext2::sync`] |
//!
//! The methods take `&mut self`: the kernel holds the file system behind one lock.
//! They do disk I/O (a cache miss, an eviction, `sync`), so that lock must be the
//! sleeping mutex, never a spinlock (no I/O under a spinlock). A caller that holds
//! an inode open across calls takes [`Ext2::inode_get`] and must drop every hold
//! with [`Ext2::inode_put`] before the last `sync` of an unmount: an unlinked inode
//! still held is freed only then (there is no orphan list on disk).
//! Errors are [`Ext2Error`], whose [`Ext2Error::errno`] is the Linux errno.
//!
//! | module | what it holds |
//! |---|---|
//! | `layout` | [`Superblock`] and [`GroupDesc`]: parsing and the mount-time checks |
//! | `inode` | [`Inode`]: one inode record; [`FileType`]; mode bits |
//! | `cache` | `BlockCache`: the write-back block cache, flushed only by `sync` |
//! | `alloc` | block and inode bitmaps: allocation near a goal, freeing, the counts |
//! | `block_map` | file block → disk block through direct and 1-, 2-, 3-level indirect blocks; truncation |
//! | `dir` | directory entries: find, iterate, add, remove, retarget |
//! | `fs` | [`Ext2`]: mount, inode I/O, file data, sync |
//! | `namespace` | create, mkdir, symlink, link, unlink, rmdir, rename, path lookup |
//!
//! The format and the algorithms are explained, with diagrams, in docs/11-files.md.
//! This crate is pure (`#![forbid(unsafe_code)]`, `no_std` + `alloc`); its tests
//! (`kernel/ext2/tests/`) build images with `mke2fs -d` and check every written
//! image with `e2fsck -fn`.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod alloc_bitmap;
mod block_map;
mod cache;
mod dir;
mod error;
mod fs;
mod inode;
mod layout;
mod namespace;

pub use error::{Corruption, Ext2Error, Refusal, Result};
pub use fs::Ext2;
pub use inode::{FileType, Inode};
pub use layout::{GroupDesc, Superblock};

/// An inode number: the name of a file inside one file system (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InodeNo(pub u32);

/// The root directory's inode number.
pub const ROOT_INO: InodeNo = InodeNo(2);
/// Longest name in a directory entry, in bytes.
pub const NAME_MAX: usize = 255;
/// Most hard links an inode may have (`EXT2_LINK_MAX`).
pub const LINK_MAX: u16 = 32000;

/// What `stat` reports about a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Inode number (`st_ino`).
    pub ino: InodeNo,
    /// Type and permission bits (`st_mode`).
    pub mode: u16,
    /// Hard links (`st_nlink`).
    pub nr_links: u16,
    /// Owner (`st_uid`).
    pub uid: u32,
    /// Group (`st_gid`).
    pub gid: u32,
    /// Size in bytes (`st_size`).
    pub size: u64,
    /// 512-byte sectors allocated (`st_blocks`).
    pub nr_sectors: u64,
    /// Preferred I/O size: the block size (`st_blksize`).
    pub block_size: u32,
    /// Last access (`st_atime`), seconds since 1970.
    pub atime: u32,
    /// Last data change (`st_mtime`).
    pub mtime: u32,
    /// Last inode change (`st_ctime`).
    pub ctime: u32,
}

impl Stat {
    /// Returns the file type from the mode (`None` for an unknown type).
    pub fn file_type(&self) -> Option<FileType> {
        FileType::from_mode(self.mode)
    }
}

/// One directory entry, as `getdents64` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The inode it names.
    pub ino: InodeNo,
    /// Its name (bytes; not NUL-terminated).
    pub name: alloc::vec::Vec<u8>,
    /// Its type (from the entry's type byte, or the inode when the disk has none).
    pub file_type: FileType,
    /// Byte offset in the directory of the entry after this one (`d_off`).
    pub next_offset: u64,
}

/// The attributes `chmod`, `chown` and `utimensat` change ([`Ext2::set_attr`]);
/// `None` leaves one as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits (the low 12 bits of the mode; the type never changes).
    pub perm: Option<u16>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New access time.
    pub atime: Option<u32>,
    /// New data-modification time.
    pub mtime: Option<u32>,
}

/// What `statfs` reports about the file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStats {
    /// Bytes per block.
    pub block_size: u32,
    /// Blocks in the file system.
    pub nr_blocks: u32,
    /// Free blocks.
    pub nr_free_blocks: u32,
    /// Inodes in the file system.
    pub nr_inodes: u32,
    /// Free inodes.
    pub nr_free_inodes: u32,
}
