//! Directories: blocks of variable-length entries naming inodes.
//!
//! ```text
//!  one directory block (entries tile it exactly, none crosses into the next block)
//!  ┌──────┬─────────┬──────────┬───────────┬──────────┬───────────┐
//!  │inode │ rec_len │ name_len │ file_type │ name ... │ (padding) │ → next entry at +rec_len
//!  │ u32  │  u16    │   u8     │    u8     │          │ to 4 bytes│
//!  └──────┴─────────┴──────────┴───────────┴──────────┴───────────┘
//! ```
//! An entry's `rec_len` may be longer than it needs: the slack is room for a new
//! entry, which [`Ext2::dir_add`] carves out of it. Removing an entry gives its
//! space to the entry before it in the same block (or, for the first entry of a
//! block, just zeroes its inode number), as Linux does. Every directory starts with
//! `.` (itself) and `..` (its parent), which are ordinary entries: path lookup
//! follows them like any name.
//!
//! Lookups scan linearly. Directories that mke2fs or Linux indexed (htree,
//! `INDEX_FL`) read the same way, since the index blocks look like empty entries;
//! when this code changes such a directory it clears `INDEX_FL`, so e2fsck does not
//! expect an index that was not kept up to date.

use alloc::vec::Vec;

use crate::error::{Corruption, Ext2Error, Result};
use crate::fs::Ext2;
use crate::inode::{FileType, INDEX_FL};
use crate::layout::{le16, le32, put16, put32};
use crate::{DirEntry, InodeNo};

/// Bytes of an entry's fixed part (inode, rec_len, name_len, file_type).
const ENTRY_HEADER: usize = 8;

/// Returns the bytes an entry with a name of `name_len` bytes needs (4-aligned).
fn entry_size(name_len: usize) -> usize {
    (ENTRY_HEADER + name_len + 3) & !3
}

/// One entry's position and header, parsed from a block.
#[derive(Debug, Clone, Copy)]
struct RawEntry {
    offset: usize,
    ino: u32,
    rec_len: usize,
    name_len: usize,
    type_byte: u8,
}

/// Where an entry was found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FoundEntry {
    /// The disk block holding it.
    pblk: u32,
    /// Byte offset in that block.
    offset: usize,
    /// Offset of the entry before it in the same block, if any.
    prev_offset: Option<usize>,
    /// The inode it names.
    pub(crate) ino: InodeNo,
}

/// Parses every entry of one directory block, checking that they tile it.
fn parse_block(block: &[u8], dir: InodeNo, block_index: u64) -> Result<Vec<RawEntry>> {
    let bad = || Ext2Error::Corrupt(Corruption::BadDirEntry { dir: dir.0, block_index: block_index as u32 });
    let mut entries = Vec::new();
    let mut offset = 0;
    while offset < block.len() {
        if offset + ENTRY_HEADER > block.len() {
            return Err(bad());
        }
        let rec_len = usize::from(le16(block, offset + 4));
        let name_len = usize::from(block[offset + 6]);
        if rec_len < ENTRY_HEADER || rec_len % 4 != 0 || offset + rec_len > block.len() || ENTRY_HEADER + name_len > rec_len {
            return Err(bad());
        }
        entries.push(RawEntry { offset, ino: le32(block, offset), rec_len, name_len, type_byte: block[offset + 7] });
        offset += rec_len;
    }
    Ok(entries)
}

fn name_of<'b>(block: &'b [u8], e: &RawEntry) -> &'b [u8] {
    &block[e.offset + ENTRY_HEADER..e.offset + ENTRY_HEADER + e.name_len]
}

/// Writes an entry header and name at `offset` of `block` (the type byte only if
/// the disk has the filetype feature).
fn put_entry(block: &mut [u8], offset: usize, entry: (InodeNo, usize, &[u8], FileType), has_filetype: bool) {
    let (ino, rec_len, name, ft) = entry;
    put32(block, offset, ino.0);
    put16(block, offset + 4, rec_len as u16);
    block[offset + 6] = name.len() as u8;
    block[offset + 7] = if has_filetype { ft.dirent_byte() } else { 0 };
    block[offset + ENTRY_HEADER..offset + ENTRY_HEADER + name.len()].copy_from_slice(name);
}

impl Ext2<'_> {
    /// Reads directory `dir`'s inode; `ENOTDIR` if it is not a directory.
    pub(crate) fn dir_inode(&mut self, dir: InodeNo) -> Result<crate::Inode> {
        let inode = self.read_inode(dir)?;
        if !inode.is_dir() {
            return Err(Ext2Error::NotDir);
        }
        Ok(inode)
    }

    /// Returns a copy of block `index` of directory `dir` and its disk block.
    fn dir_block(&mut self, dir: InodeNo, inode: &crate::Inode, index: u64) -> Result<(u32, Vec<u8>)> {
        let bad = Ext2Error::Corrupt(Corruption::BadDirEntry { dir: dir.0, block_index: index as u32 });
        let pblk = self.lookup_block(inode, index)?.ok_or(bad)?;
        Ok((pblk, self.cache.read(self.dev, pblk)?.to_vec()))
    }

    fn dir_nr_blocks(&self, inode: &crate::Inode) -> u64 {
        inode.size.div_ceil(self.sb.block_size as u64)
    }

    /// Finds the entry called `name` in directory `dir`.
    pub(crate) fn dir_find(&mut self, dir: InodeNo, name: &[u8]) -> Result<Option<FoundEntry>> {
        let inode = self.dir_inode(dir)?;
        for index in 0..self.dir_nr_blocks(&inode) {
            let (pblk, block) = self.dir_block(dir, &inode, index)?;
            let mut prev_offset = None;
            for e in parse_block(&block, dir, index)? {
                if e.ino != 0 && name_of(&block, &e) == name {
                    return Ok(Some(FoundEntry { pblk, offset: e.offset, prev_offset, ino: InodeNo(e.ino) }));
                }
                prev_offset = Some(e.offset);
            }
        }
        Ok(None)
    }

    /// Returns the entries of directory `dir` (with `.` and `..`) that start at
    /// byte `from_offset` or later, each with its type and the offset of the next.
    pub fn read_dir(&mut self, dir: InodeNo, from_offset: u64) -> Result<Vec<DirEntry>> {
        let inode = self.dir_inode(dir)?;
        let bs = self.sb.block_size as u64;
        let mut out = Vec::new();
        for index in from_offset / bs..self.dir_nr_blocks(&inode) {
            let (_, block) = self.dir_block(dir, &inode, index)?;
            for e in parse_block(&block, dir, index)? {
                let at = index * bs + e.offset as u64;
                if e.ino == 0 || at < from_offset {
                    continue;
                }
                let file_type = match FileType::from_dirent(e.type_byte) {
                    Some(t) if self.sb.has_filetype() => t,
                    _ => self.read_inode(InodeNo(e.ino))?.file_type().ok_or(Ext2Error::Corrupt(
                        Corruption::BadDirEntry { dir: dir.0, block_index: index as u32 },
                    ))?,
                };
                out.push(DirEntry {
                    ino: InodeNo(e.ino),
                    name: name_of(&block, &e).to_vec(),
                    file_type,
                    next_offset: at + e.rec_len as u64,
                });
            }
        }
        Ok(out)
    }

    /// Returns true if directory `dir` has no entries but `.` and `..`.
    pub(crate) fn dir_is_empty(&mut self, dir: InodeNo) -> Result<bool> {
        let entries = self.read_dir(dir, 0)?;
        Ok(entries.iter().all(|e| e.name == b"." || e.name == b".."))
    }

    /// Fills `block` (a new directory's first block) with `.` and `..`.
    pub(crate) fn init_dir_block(&self, block: &mut [u8], me: InodeNo, parent: InodeNo) {
        let ft = self.sb.has_filetype();
        let rest = block.len() - 12;
        put_entry(block, 0, (me, 12, b".", FileType::Directory), ft);
        put_entry(block, 12, (parent, rest, b"..", FileType::Directory), ft);
    }

    /// Sets a changed directory's mtime and ctime and clears its htree flag.
    fn touch_dir(&mut self, dir: InodeNo) -> Result<()> {
        let mut inode = self.read_inode(dir)?;
        let now = self.now();
        inode.mtime = now;
        inode.ctime = now;
        inode.flags &= !INDEX_FL;
        self.write_inode(dir, &inode)
    }

    /// Adds the entry `name` → `ino` (of type `ft`) to directory `dir`, in the first
    /// slack big enough, else in a new block at the end. The caller has checked that
    /// the name is valid and not present. `ENOSPC` if a new block is needed and none
    /// is free (nothing changed then).
    pub(crate) fn dir_add(&mut self, dir: InodeNo, name: &[u8], ino: InodeNo, ft: FileType) -> Result<()> {
        let mut inode = self.dir_inode(dir)?;
        let needed = entry_size(name.len());
        let has_ft = self.sb.has_filetype();
        for index in 0..self.dir_nr_blocks(&inode) {
            let (pblk, block) = self.dir_block(dir, &inode, index)?;
            for e in parse_block(&block, dir, index)? {
                let used = if e.ino == 0 { 0 } else { entry_size(e.name_len) };
                if e.rec_len - used < needed {
                    continue;
                }
                let bytes = self.cache.modify(self.dev, pblk)?;
                if e.ino == 0 {
                    put_entry(bytes, e.offset, (ino, e.rec_len, name, ft), has_ft);
                } else {
                    put16(bytes, e.offset + 4, used as u16);
                    put_entry(bytes, e.offset + used, (ino, e.rec_len - used, name, ft), has_ft);
                }
                return self.touch_dir(dir);
            }
        }
        let index = self.dir_nr_blocks(&inode);
        let (pblk, _) = self.map_block_alloc(dir, &mut inode, index)?;
        let bs = self.sb.block_size;
        let bytes = self.cache.zeroed(self.dev, pblk)?;
        put_entry(bytes, 0, (ino, bs, name, ft), has_ft);
        inode.size = (index + 1) * bs as u64;
        self.write_inode(dir, &inode)?;
        self.touch_dir(dir)
    }

    /// Removes the entry `found` (from [`Ext2::dir_find`]) from directory `dir`.
    pub(crate) fn dir_remove(&mut self, dir: InodeNo, found: FoundEntry) -> Result<()> {
        let bytes = self.cache.modify(self.dev, found.pblk)?;
        match found.prev_offset {
            Some(prev) => {
                let merged = le16(bytes, prev + 4) + le16(bytes, found.offset + 4);
                put16(bytes, prev + 4, merged);
            }
            None => put32(bytes, found.offset, 0),
        }
        self.touch_dir(dir)
    }

    /// Points the existing entry `found` of directory `dir` at `ino` of type `ft`
    /// (rename over an existing name; a moved directory's `..`).
    pub(crate) fn dir_retarget(&mut self, dir: InodeNo, found: FoundEntry, ino: InodeNo, ft: FileType) -> Result<()> {
        let has_filetype = self.sb.has_filetype();
        let bytes = self.cache.modify(self.dev, found.pblk)?;
        put32(bytes, found.offset, ino.0);
        if has_filetype {
            bytes[found.offset + 7] = ft.dirent_byte();
        }
        self.touch_dir(dir)
    }
}
