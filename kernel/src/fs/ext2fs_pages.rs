//! The page cache's side of an ext2 file: a [`PageIo`] that reads and writes one
//! page of a regular file through the `ext2` crate (Linux's `ext2_aops`).
//!
//! ```text
//!   PageCache (index -> frame) ──read_pages(first, n)──> Ext2::read_file_pages: the disk's
//!                                                         data straight into the frames, one
//!                                                         scatter-gather request per run
//!                              ──read_page(index)──> the same, one page
//!                              ──write_pages(first, n)──> Ext2::write_file_pages: blocks mapped
//!                                                          (allocated on the first write), then the
//!                                                          frames straight to the disk, one
//!                                                          scatter-gather request per run
//!                              ──write_page(index, len)──> Ext2::write_at (blocks smaller than a page)
//! ```
//! The ext2 crate maps file blocks to disk blocks and keeps metadata (inodes,
//! bitmaps, indirect blocks) in its own small block cache; file data lives in the
//! page cache: with 4 KiB blocks (the runner's `mke2fs -b 4096`) a read goes from
//! the disk into the cache's frames and a write-back from the frames to the disk,
//! with no copy either way (the device DMAs, as Linux's `mpage_readahead` and
//! `mpage_writepages`); the crate's block cache never holds a file data block then
//! (a copy there is dropped when the page is written). A file system of smaller
//! blocks reads and writes through a buffer and copies. Blocks are allocated when a page is
//! written back, not when `write` dirties it (Linux calls that delayed allocation):
//! a full disk shows at write-back, as an error that keeps the page dirty.
//!
//! Locks: the file system's sleeping [`Mutex`], taken inside `read_page` and
//! `write_page`, so after the cache's `io_lock` and never under a spinlock.

use alloc::sync::Arc;
use alloc::vec::Vec;

use ext2::{Ext2, InodeNo};

use super::FsError;
use super::ext2fs::fs_error;
use crate::mm::PAGE_SIZE;
use crate::mm::frame::{NewPage, PageBytes};
use crate::mm::page_cache::{PageIo, write_pages_each};
use crate::sync::{Mutex, MutexGuard};

/// A mounted ext2 file system behind its sleeping lock: the VFS mount
/// (`ext2fs::Ext2Fs`), or a bare `Mutex<Ext2>` (the file benchmark).
pub trait Ext2Mount: Send + Sync {
    /// Locks the mount.
    fn lock_fs(&self) -> MutexGuard<'_, Ext2<'static>>;
}

impl Ext2Mount for Mutex<Ext2<'static>> {
    fn lock_fs(&self) -> MutexGuard<'_, Ext2<'static>> {
        self.lock()
    }
}

/// A mounted ext2 file system shared as a bare locked crate instance.
pub type SharedExt2 = Arc<Mutex<Ext2<'static>>>;

/// The pages of regular file `ino` of an ext2 file system.
pub struct Ext2Pages {
    fs: Arc<dyn Ext2Mount>,
    ino: InodeNo,
}

impl Ext2Pages {
    /// The page I/O of file `ino` of `fs`.
    pub fn new(fs: Arc<dyn Ext2Mount>, ino: InodeNo) -> Ext2Pages {
        Ext2Pages { fs, ino }
    }
}


impl Ext2Pages {
    /// Reads pages `first, first + 1, ...` into `dsts` in place, if the file
    /// system's blocks are pages; `None` if they are not (the caller copies).
    fn read_in_place(&self, first: u64, dsts: &mut [NewPage]) -> Option<Result<(), FsError>> {
        let mut fs = self.fs.lock_fs();
        if fs.block_size() != PAGE_SIZE as usize {
            return None;
        }
        let mut pages = Vec::new();
        if pages.try_reserve_exact(dsts.len()).is_err() {
            return Some(Err(FsError::NoMemory));
        }
        pages.extend(dsts.iter_mut().map(NewPage::bytes_mut));
        Some(fs.read_file_pages(self.ino, first, &mut pages).map_err(fs_error))
    }
}

impl PageIo for Ext2Pages {
    fn read_page(&self, index: u64, dst: &mut NewPage) -> Result<(), FsError> {
        if let Some(done) = self.read_in_place(index, core::slice::from_mut(dst)) {
            return done;
        }
        let mut buf = Vec::new();
        buf.try_reserve_exact(PAGE_SIZE as usize).map_err(|_| FsError::NoMemory)?;
        buf.resize(PAGE_SIZE as usize, 0);
        let offset = index.checked_mul(PAGE_SIZE).ok_or(FsError::TooBig)?;
        let n = self.fs.lock_fs().read_at(self.ino, offset, &mut buf).map_err(fs_error)?;
        dst.write_bytes(0, &buf[..n]);
        Ok(())
    }

    /// Blocks contiguous on the disk are read in one request: into the frames
    /// themselves (`read_in_place`), or with one `Ext2::read_at` into a buffer.
    fn read_pages(&self, first: u64, dsts: &mut [NewPage]) -> Result<(), FsError> {
        if let Some(done) = self.read_in_place(first, dsts) {
            return done;
        }
        let page = PAGE_SIZE as usize;
        let mut buf = Vec::new();
        buf.try_reserve_exact(dsts.len() * page).map_err(|_| FsError::NoMemory)?;
        buf.resize(dsts.len() * page, 0);
        let offset = first.checked_mul(PAGE_SIZE).ok_or(FsError::TooBig)?;
        let n = self.fs.lock_fs().read_at(self.ino, offset, &mut buf).map_err(fs_error)?;
        for (i, dst) in dsts.iter_mut().enumerate() {
            let start = (i * page).min(n);
            dst.write_bytes(0, &buf[start..(start + page).min(n)]);
        }
        Ok(())
    }

    fn write_page(&self, index: u64, src: &[u8], len: usize) -> Result<(), FsError> {
        let offset = index.checked_mul(PAGE_SIZE).ok_or(FsError::TooBig)?;
        let n = self.fs.lock_fs().write_at(self.ino, offset, &src[..len]).map_err(fs_error)?;
        if n < len {
            return Err(FsError::NoSpace); // part of the page fit: the rest stays dirty
        }
        Ok(())
    }

    /// With 4 KiB blocks, [`Ext2::write_file_pages`]: blocks mapped (allocated on
    /// the first write-back), then the frames go to the disk in one scatter-gather
    /// request per run of adjacent blocks, no copy; other block sizes, one
    /// `write_page` each. A short write is a full disk (ENOSPC).
    fn write_pages(&self, first: u64, srcs: &[&PageBytes], size: u64) -> Result<(), (usize, FsError)> {
        let mut fs = self.fs.lock_fs();
        if fs.block_size() != PAGE_SIZE as usize {
            drop(fs);
            return write_pages_each(self, first, srcs, size);
        }
        let start = first.saturating_mul(PAGE_SIZE);
        let nr_in_file = size.saturating_sub(start).div_ceil(PAGE_SIZE).min(srcs.len() as u64) as usize;
        match fs.write_file_pages(self.ino, first, srcs, size) {
            Ok(n) if n >= nr_in_file => Ok(()),
            Ok(n) => Err((n, FsError::NoSpace)),
            Err(e) => Err((0, fs_error(e))),
        }
    }

    fn pages_per_request(&self) -> usize {
        self.fs.lock_fs().blocks_per_request()
    }

    /// The crate's block cache writes only when asked: after a write-back, every
    /// block it changed (block map, bitmaps, inode) goes to the disk
    /// ([`Ext2::write_out`]), with no flush.
    fn write_out(&self) -> Result<(), FsError> {
        self.fs.lock_fs().write_out().map_err(fs_error)
    }

    /// One flush of the device's cache (`fsync`, `msync(MS_SYNC)`), after writing
    /// out whatever is still in the crate's block cache ([`Ext2::sync`]).
    fn flush(&self) -> Result<(), FsError> {
        self.fs.lock_fs().sync().map_err(fs_error)
    }
}
