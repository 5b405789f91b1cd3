//! [`Ext2`]: a mounted file system. Mount, inode records, file data, sync.
//!
//! The struct holds the superblock and group descriptors in memory (they are
//! small), the block cache, and the device. Every change to a count is made in
//! memory and in the cached descriptor block at once; the superblock is written by
//! [`Ext2::sync`]. File data is read and written through the block map
//! (`block_map.rs`); directories and names live in `dir.rs` and `namespace.rs`.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use blockdev::{BlockDevice, PAGE_SIZE, Page, SECTOR_SIZE};

use crate::cache::{BlockCache, DEFAULT_CAPACITY, MAX_RUN_BLOCKS};
use crate::error::{Corruption, Ext2Error, Result};
use crate::inode::{Inode, S_IFMT, S_IFREG};
use crate::layout::{GROUP_DESC_SIZE, GroupDesc, RO_COMPAT_LARGE_FILE, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, Superblock};
use crate::{FsStats, InodeNo, SetAttr, Stat};

/// A mounted ext2 file system on `dev`.
pub struct Ext2<'d> {
    pub(crate) dev: &'d dyn BlockDevice,
    pub(crate) sb: Superblock,
    pub(crate) groups: Vec<GroupDesc>,
    pub(crate) cache: BlockCache,
    clock_fn: fn() -> u32,
    /// Inodes held open by the VFS ([`Ext2::inode_get`]): count of holds.
    pub(crate) holds: BTreeMap<u32, u32>,
    is_sb_dirty: bool,
}

impl<'d> Ext2<'d> {
    /// Mounts the ext2 file system on `dev`; `clock_fn` returns the time (seconds
    /// since 1970) for timestamps.
    ///
    /// Reads the superblock and the group descriptor table and checks them
    /// ([`Superblock::parse`], [`GroupDesc::check`]); a disk that fails a check is
    /// refused with [`Ext2Error::Refused`] and nothing on it is written. Mounting
    /// itself writes nothing either: the first write is the first change.
    pub fn mount(dev: &'d dyn BlockDevice, clock_fn: fn() -> u32) -> Result<Self> {
        let mut raw = vec![0u8; SUPERBLOCK_SIZE];
        let min_bytes = SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE as u64;
        if dev.capacity_bytes() < min_bytes {
            let disk_bytes = dev.capacity_bytes();
            return Err(Ext2Error::Refused(crate::Refusal::DiskTooSmall { fs_bytes: min_bytes, disk_bytes }));
        }
        dev.read(SUPERBLOCK_OFFSET / SECTOR_SIZE as u64, &mut raw)?;
        let sb = Superblock::parse(&raw, dev.capacity_bytes()).map_err(Ext2Error::Refused)?;
        let mut cache = BlockCache::new(sb.block_size, DEFAULT_CAPACITY);
        let mut groups = Vec::with_capacity(sb.nr_groups as usize);
        for g in 0..sb.nr_groups {
            let at = g as usize * GROUP_DESC_SIZE;
            let block = sb.gdt_first_block() + (at / sb.block_size) as u32;
            let bytes = cache.read(dev, block)?;
            let desc = GroupDesc::parse(&bytes[at % sb.block_size..]);
            desc.check(&sb, g).map_err(Ext2Error::Refused)?;
            groups.push(desc);
        }
        let free_blocks: u64 = groups.iter().map(|d| u64::from(d.nr_free_blocks)).sum();
        let free_inodes: u64 = groups.iter().map(|d| u64::from(d.nr_free_inodes)).sum();
        let mut fs = Self { dev, sb, groups, cache, clock_fn, holds: BTreeMap::new(), is_sb_dirty: false };
        // The superblock's totals may lag the groups' (Linux updates them lazily);
        // the group descriptors are the truth, as e2fsck takes them.
        if u64::from(fs.sb.nr_free_blocks) != free_blocks || u64::from(fs.sb.nr_free_inodes) != free_inodes {
            fs.sb.nr_free_blocks = free_blocks as u32;
            fs.sb.nr_free_inodes = free_inodes as u32;
            fs.is_sb_dirty = true;
        }
        Ok(fs)
    }

    /// Returns the current time from the mount's clock.
    pub(crate) fn now(&self) -> u32 {
        (self.clock_fn)()
    }

    /// Returns the superblock as this mount keeps it (counts current).
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// Returns the group descriptors as this mount keeps them.
    pub fn groups(&self) -> &[GroupDesc] {
        &self.groups
    }

    /// Returns the block size in bytes.
    pub fn block_size(&self) -> usize {
        self.sb.block_size
    }

    /// Returns the most blocks [`write_file_pages`](Self::write_file_pages) sends in
    /// one request when they are adjacent (the device's pages per request, with
    /// 4 KiB blocks; 1 otherwise).
    pub fn blocks_per_request(&self) -> usize {
        if self.sb.block_size == PAGE_SIZE { self.dev.max_pages_per_request().max(1) } else { 1 }
    }

    /// Returns the counts `statfs` reports.
    pub fn statfs(&self) -> FsStats {
        FsStats {
            block_size: self.sb.block_size as u32,
            nr_blocks: self.sb.nr_blocks,
            nr_free_blocks: self.sb.nr_free_blocks,
            nr_inodes: self.sb.nr_inodes,
            nr_free_inodes: self.sb.nr_free_inodes,
        }
    }

    /// Marks the superblock as changed (written at the next sync).
    pub(crate) fn superblock_changed(&mut self) {
        self.is_sb_dirty = true;
    }

    /// Writes group `g`'s counts into its cached descriptor block.
    pub(crate) fn write_group_desc(&mut self, g: u32) -> Result<()> {
        let at = g as usize * GROUP_DESC_SIZE;
        let block = self.sb.gdt_first_block() + (at / self.sb.block_size) as u32;
        let off = at % self.sb.block_size;
        let bytes = self.cache.modify(self.dev, block)?;
        self.groups[g as usize].write_counts(&mut bytes[off..off + GROUP_DESC_SIZE]);
        self.is_sb_dirty = true;
        Ok(())
    }

    /// Checks that `ino` names an inode of this file system.
    pub(crate) fn check_ino(&self, ino: InodeNo) -> Result<()> {
        if ino.0 == 0 || ino.0 > self.sb.nr_inodes {
            return Err(Ext2Error::Corrupt(Corruption::InodeOutOfRange(ino.0)));
        }
        Ok(())
    }

    /// Returns (block, byte offset in it) of inode `ino`'s record.
    fn inode_location(&self, ino: InodeNo) -> Result<(u32, usize)> {
        self.check_ino(ino)?;
        let index = ino.0 - 1;
        let group = index / self.sb.inodes_per_group;
        let byte = (index % self.sb.inodes_per_group) as usize * self.sb.inode_size;
        let block = self.groups[group as usize].inode_table + (byte / self.sb.block_size) as u32;
        Ok((block, byte % self.sb.block_size))
    }

    /// Reads inode `ino`'s record.
    pub fn read_inode(&mut self, ino: InodeNo) -> Result<Inode> {
        let (block, off) = self.inode_location(ino)?;
        let size = self.sb.inode_size;
        let bytes = self.cache.read(self.dev, block)?;
        Ok(Inode::parse(&bytes[off..off + size]))
    }

    /// Writes inode `ino`'s record (into the cache).
    pub(crate) fn write_inode(&mut self, ino: InodeNo, inode: &Inode) -> Result<()> {
        let (block, off) = self.inode_location(ino)?;
        let raw = inode.to_bytes();
        let bytes = self.cache.modify(self.dev, block)?;
        bytes[off..off + raw.len()].copy_from_slice(&raw);
        Ok(())
    }

    /// Returns what `stat` reports about inode `ino`.
    pub fn stat(&mut self, ino: InodeNo) -> Result<Stat> {
        let inode = self.read_inode(ino)?;
        Ok(Stat {
            ino,
            mode: inode.mode,
            nr_links: inode.nr_links,
            uid: inode.uid,
            gid: inode.gid,
            size: inode.size,
            nr_sectors: u64::from(inode.nr_sectors),
            block_size: self.sb.block_size as u32,
            atime: inode.atime,
            mtime: inode.mtime,
            ctime: inode.ctime,
        })
    }

    /// Changes the attributes set in `attr` (permissions, owner, times) of inode
    /// `ino`; its ctime becomes now.
    pub fn set_attr(&mut self, ino: InodeNo, attr: SetAttr) -> Result<()> {
        let mut inode = self.read_inode(ino)?;
        if let Some(perm) = attr.perm {
            inode.mode = (inode.mode & S_IFMT) | (perm & 0o7777);
        }
        inode.uid = attr.uid.unwrap_or(inode.uid);
        inode.gid = attr.gid.unwrap_or(inode.gid);
        inode.atime = attr.atime.unwrap_or(inode.atime);
        inode.mtime = attr.mtime.unwrap_or(inode.mtime);
        inode.ctime = self.now();
        self.write_inode(ino, &inode)
    }

    /// Reads inode `ino` and checks it is a regular file (`EISDIR` for a directory,
    /// `EINVAL` for other types).
    fn regular_inode(&mut self, ino: InodeNo) -> Result<Inode> {
        let inode = self.read_inode(ino)?;
        match inode.mode & S_IFMT {
            S_IFREG => Ok(inode),
            _ if inode.is_dir() => Err(Ext2Error::IsDir),
            _ => Err(Ext2Error::InvalidArgument),
        }
    }

    /// Reads up to `buf.len()` bytes of regular file `ino` from byte `offset`;
    /// returns how many were read (0 at or past the end). Holes read as zeros.
    pub fn read_at(&mut self, ino: InodeNo, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let inode = self.regular_inode(ino)?;
        let end = inode.size.min(offset.saturating_add(buf.len() as u64));
        if offset >= end {
            return Ok(0);
        }
        let bs = self.sb.block_size as u64;
        let mut block_buf = vec![0u8; bs as usize];
        let mut pos = offset;
        while pos < end {
            let in_block = (pos % bs) as usize;
            let n = ((bs - in_block as u64).min(end - pos)) as usize;
            let dst_at = (pos - offset) as usize;
            let Some(pblk) = self.lookup_block(&inode, pos / bs)? else {
                buf[dst_at..dst_at + n].fill(0);
                pos += n as u64;
                continue;
            };
            if in_block != 0 || n < bs as usize || self.cache.contains(pblk) {
                self.cache.read_into(self.dev, pblk, &mut block_buf)?;
                buf[dst_at..dst_at + n].copy_from_slice(&block_buf[in_block..in_block + n]);
                pos += n as u64;
                continue;
            }
            // Whole blocks not in the cache: extend the run while the next file
            // block is the next disk block, and read it in one request into `buf`.
            let mut count = 1u32;
            while count < MAX_RUN_BLOCKS
                && pos + u64::from(count + 1) * bs <= end
                && self.lookup_block(&inode, pos / bs + u64::from(count))? == Some(pblk + count)
                && !self.cache.contains(pblk + count)
            {
                count += 1;
            }
            let len = count as usize * bs as usize;
            self.cache.read_run_into(self.dev, pblk, count, &mut buf[dst_at..dst_at + len])?;
            pos += len as u64;
        }
        Ok((end - offset) as usize)
    }

    /// Reads file blocks `first, first + 1, ...` of regular file `ino` straight into
    /// `pages`, one block per page (the file system's block size must be a page:
    /// `InvalidArgument` otherwise). Blocks adjacent on the disk go to the device in
    /// one scatter-gather request each ([`BlockDevice::read_pages`], as many pages
    /// as the device takes), with no copy in between: the page cache's readahead
    /// reads this way. A block in this crate's cache (written, not yet synced) is
    /// copied from there, since the disk's copy is older. Holes, and the bytes past
    /// the end of the file, read as zeros.
    pub fn read_file_pages(&mut self, ino: InodeNo, first: u64, pages: &mut [&mut Page]) -> Result<()> {
        if self.sb.block_size != PAGE_SIZE {
            return Err(Ext2Error::InvalidArgument);
        }
        let inode = self.regular_inode(ino)?;
        let bs = PAGE_SIZE as u64;
        let sectors_per_block = (PAGE_SIZE / SECTOR_SIZE) as u64;
        let max_run = self.dev.max_pages_per_request().max(1);
        let nr_in_file = inode.size.div_ceil(bs).saturating_sub(first).min(pages.len() as u64) as usize;
        for page in pages[nr_in_file..].iter_mut() {
            page.fill(0);
        }
        // Holes and cached blocks first; the runs of adjacent blocks on the disk
        // (page index, pages, disk block) then go to the device at once.
        let mut disk_runs: Vec<(usize, usize, u32)> = Vec::new();
        let mut i = 0;
        while i < nr_in_file {
            let Some(pblk) = self.lookup_block(&inode, first + i as u64)? else {
                pages[i].fill(0);
                i += 1;
                continue;
            };
            if self.cache.contains(pblk) {
                self.cache.read_into(self.dev, pblk, &mut pages[i][..])?;
                i += 1;
                continue;
            }
            let mut count = 1;
            while i + count < nr_in_file
                && count < max_run
                && self.lookup_block(&inode, first + (i + count) as u64)? == Some(pblk + count as u32)
                && !self.cache.contains(pblk + count as u32)
            {
                count += 1;
            }
            disk_runs.push((i, count, pblk));
            i += count;
        }
        let mut runs: Vec<(u64, &mut [&mut Page])> = Vec::with_capacity(disk_runs.len());
        let mut rest = &mut pages[..nr_in_file];
        let mut at = 0;
        for &(i, count, pblk) in &disk_runs {
            let (_, tail) = core::mem::take(&mut rest).split_at_mut(i - at);
            let (run, tail) = tail.split_at_mut(count);
            runs.push((u64::from(pblk) * sectors_per_block, run));
            rest = tail;
            at = i + count;
        }
        let mut outcomes = vec![Ok(()); runs.len()];
        self.dev.read_page_runs(&mut runs, &mut outcomes);
        drop(runs);
        outcomes.into_iter().try_for_each(|o| o)?;
        // The last block may hold bytes past the end of the file: they read as zeros.
        let end_in_last = (inode.size % bs) as usize;
        if nr_in_file > 0 && end_in_last != 0 && (first + nr_in_file as u64) * bs > inode.size {
            pages[nr_in_file - 1][end_in_last..].fill(0);
        }
        Ok(())
    }

    /// Writes `pages` to regular file `ino` as its file blocks `first, first + 1,
    /// ...`, straight from the pages to the disk, one block per page (the block size
    /// must be a page: `InvalidArgument` otherwise): the write-side twin of
    /// [`read_file_pages`](Self::read_file_pages), which the page cache's write-back
    /// uses.
    ///
    /// `end` is the file's size as the writer sees it: pages wholly past it are not
    /// written, the bytes of the last page past it go to the disk as zeros (copied
    /// once through a bounce page: a shared mapping may have written there), and the
    /// inode's size grows to `end` at most. Each block is mapped first, allocated on
    /// its first write with the indirect blocks that map it (metadata goes through
    /// this crate's cache and reaches the disk at [`Ext2::sync`]); then blocks
    /// adjacent on the disk go in one scatter-gather request each
    /// ([`BlockDevice::write_pages`]), with no copy. A file block's copy in this
    /// crate's cache (a tail zeroed by `truncate`, an older `write_at`) is dropped:
    /// the pages are newer, and the cache never holds a stale copy of data on the disk.
    ///
    /// Returns how many pages (from the first) are now on the disk: all of those
    /// before `end`, or fewer if the disk filled up part way (`NoSpace` if none fit);
    /// the size covers exactly those. A device error is returned as it is (the
    /// caller keeps the pages dirty and writes them again).
    pub fn write_file_pages(&mut self, ino: InodeNo, first: u64, pages: &[&Page], end: u64) -> Result<usize> {
        if self.sb.block_size != PAGE_SIZE {
            return Err(Ext2Error::InvalidArgument);
        }
        let mut inode = self.regular_inode(ino)?;
        let bs = PAGE_SIZE as u64;
        let start = first.checked_mul(bs).ok_or(Ext2Error::FileTooBig)?;
        let nr_in_file = end.saturating_sub(start).div_ceil(bs).min(pages.len() as u64) as usize;
        if nr_in_file == 0 {
            return Ok(0);
        }
        if first + nr_in_file as u64 > self.max_file_blocks() {
            return Err(Ext2Error::FileTooBig);
        }
        // Map (allocate) every block first: the runs are known before any write.
        let mut blocks = Vec::with_capacity(nr_in_file);
        let mut result = Ok(());
        for n in first..first + nr_in_file as u64 {
            match self.map_block_alloc(ino, &mut inode, n) {
                Ok((pblk, _)) => {
                    self.cache.forget(pblk);
                    blocks.push(pblk);
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let mut srcs: Vec<&Page> = pages[..blocks.len()].to_vec();
        // The last page of the file: what lies past the end goes out as zeros.
        let end_in_last = (end % bs) as usize;
        let mut tail_copy: Vec<u8> = Vec::new();
        if blocks.len() == nr_in_file && end_in_last != 0 && start + nr_in_file as u64 * bs > end {
            tail_copy.resize(PAGE_SIZE, 0);
            tail_copy[..end_in_last].copy_from_slice(&srcs[nr_in_file - 1][..end_in_last]);
            srcs[nr_in_file - 1] = tail_copy.as_slice().try_into().expect("write_file_pages: one page");
        }
        let sectors_per_block = (PAGE_SIZE / SECTOR_SIZE) as u64;
        let max_run = self.dev.max_pages_per_request().max(1);
        // The runs of adjacent blocks, all handed to the device at once (it may
        // keep several requests in flight); the pages written are those before
        // the first run that failed.
        let mut runs: Vec<(u64, &[&Page])> = Vec::new();
        let mut i = 0;
        while i < blocks.len() {
            let pblk = blocks[i];
            let mut count = 1;
            while i + count < blocks.len() && count < max_run && blocks[i + count] == pblk + count as u32 {
                count += 1;
            }
            runs.push((u64::from(pblk) * sectors_per_block, &srcs[i..i + count]));
            i += count;
        }
        let mut outcomes = vec![Ok(()); runs.len()];
        self.dev.write_page_runs(&runs, &mut outcomes);
        let mut nr_written = 0;
        for (&(_, run), outcome) in runs.iter().zip(&outcomes) {
            if let Err(e) = outcome {
                result = Err((*e).into());
                break;
            }
            nr_written += run.len();
        }
        let new_end = end.min(start + nr_written as u64 * bs);
        self.finish_write(ino, &mut inode, new_end, nr_written as u64, result).map(|n| n as usize)
    }

    /// Returns the disk block holding file block `file_block` of inode `ino`, or
    /// `None` for a hole (the page cache's `bmap`).
    pub fn block_of(&mut self, ino: InodeNo, file_block: u64) -> Result<Option<u32>> {
        let inode = self.read_inode(ino)?;
        if !inode.has_block_map(self.sb.block_size) {
            return Ok(None);
        }
        self.lookup_block(&inode, file_block)
    }

    /// Writes `data` into regular file `ino` at byte `offset`, allocating blocks
    /// (and the indirect blocks that map them) near the inode's group and growing
    /// the file. Returns the bytes written: all of them, or fewer if the disk filled
    /// up part way (`ENOSPC` if not one byte fit). The file stays consistent either
    /// way: its size covers exactly what was written.
    pub fn write_at(&mut self, ino: InodeNo, offset: u64, data: &[u8]) -> Result<usize> {
        let mut inode = self.regular_inode(ino)?;
        if data.is_empty() {
            return Ok(0);
        }
        let bs = self.sb.block_size as u64;
        let end = offset.checked_add(data.len() as u64).ok_or(Ext2Error::FileTooBig)?;
        if (end - 1) / bs >= self.max_file_blocks() {
            return Err(Ext2Error::FileTooBig);
        }
        let mut pos = offset;
        let mut result = Ok(());
        while pos < end {
            let in_block = (pos % bs) as usize;
            let n = ((bs - in_block as u64).min(end - pos)) as usize;
            let src = &data[(pos - offset) as usize..][..n];
            match self.map_block_alloc(ino, &mut inode, pos / bs) {
                Ok((pblk, is_new)) => {
                    let block = if is_new || n == bs as usize {
                        self.cache.zeroed(self.dev, pblk)
                    } else {
                        self.cache.modify(self.dev, pblk)
                    };
                    match block {
                        Ok(bytes) => bytes[in_block..in_block + n].copy_from_slice(src),
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            pos += n as u64;
        }
        let written = pos - offset;
        self.finish_write(ino, &mut inode, pos, written, result).map(|n| n as usize)
    }

    /// Ends a write that put `nr_written` units (bytes or pages) into the file,
    /// whose data now reaches `new_end`: the size grows to it, the times are set,
    /// and the inode is written even if nothing was (its block count may have
    /// changed: blocks allocated, an indirect block kept). The error is returned
    /// only if nothing was written; otherwise the short count says it.
    fn finish_write(&mut self, ino: InodeNo, inode: &mut Inode, new_end: u64, nr_written: u64, result: Result<()>) -> Result<u64> {
        if nr_written > 0 {
            inode.size = inode.size.max(new_end);
            let now = self.now();
            inode.mtime = now;
            inode.ctime = now;
            self.note_large_file(inode.size);
        }
        self.write_inode(ino, inode)?;
        match result {
            Err(e) if nr_written == 0 => Err(e),
            _ => Ok(nr_written),
        }
    }

    /// Sets the large_file feature once a file passes 2 GiB (as Linux does).
    fn note_large_file(&mut self, size: u64) {
        if size > i32::MAX as u64 && self.sb.feature_ro_compat & RO_COMPAT_LARGE_FILE == 0 {
            self.sb.feature_ro_compat |= RO_COMPAT_LARGE_FILE;
            self.superblock_changed();
        }
    }

    /// Sets regular file `ino`'s size to `size`: shrinking frees the blocks past the
    /// new end (and indirect blocks left empty) and zeroes the rest of the last
    /// block, so growing again reads zeros; growing leaves a hole.
    pub fn truncate(&mut self, ino: InodeNo, size: u64) -> Result<()> {
        let mut inode = self.regular_inode(ino)?;
        let bs = self.sb.block_size as u64;
        if size.div_ceil(bs) > self.max_file_blocks() {
            return Err(Ext2Error::FileTooBig);
        }
        if size < inode.size {
            let keep_blocks = size.div_ceil(bs);
            self.free_blocks_from(&mut inode, keep_blocks)?;
            if !size.is_multiple_of(bs)
                && let Some(pblk) = self.lookup_block(&inode, size / bs)?
            {
                let bytes = self.cache.modify(self.dev, pblk)?;
                bytes[(size % bs) as usize..].fill(0);
            }
        }
        inode.size = size;
        let now = self.now();
        inode.mtime = now;
        inode.ctime = now;
        self.note_large_file(size);
        self.write_inode(ino, &inode)
    }

    /// Writes every change to the disk and makes it durable: [`write_out`](Self::write_out),
    /// then one flush of the device's cache (`fsync`, `sync`).
    pub fn sync(&mut self) -> Result<()> {
        self.write_out()?;
        self.dev.flush()?;
        Ok(())
    }

    /// Writes every change to the disk without flushing the device's cache: dirty
    /// cached blocks, then the superblock (with its free counts and write time).
    /// The disk is then consistent as the device sees it; only a flush
    /// ([`sync`](Self::sync)) makes it durable across a power cut, as Linux's
    /// write-back writes metadata and only `fsync` and `sync` flush.
    pub fn write_out(&mut self) -> Result<()> {
        self.cache.sync(self.dev)?;
        if self.is_sb_dirty {
            self.sb.write_time = self.now();
            let bytes = self.sb.to_bytes();
            self.dev.write(SUPERBLOCK_OFFSET / SECTOR_SIZE as u64, &bytes)?;
            self.is_sb_dirty = false;
        }
        Ok(())
    }

    /// Returns how many cached blocks are waiting for [`Ext2::sync`].
    pub fn nr_dirty_blocks(&self) -> usize {
        self.cache.nr_dirty()
    }
}
