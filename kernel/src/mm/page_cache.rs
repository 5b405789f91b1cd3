//! The page cache: the pages of files, kept in frames so that a file is read from
//! its device once and written back later (Linux's `address_space`).
//!
//! One [`PageCache`] per file (inode) that has one: an index (page number in the
//! file -> frame), the file's size, and the file system's side, a [`PageIo`] that
//! reads a page from the device and writes one back.
//!
//! ```text
//!   read_at / write_at (the file's bytes)         a file mapping's fault (filemap)
//!        │                                              │
//!        v                                              v
//!   PageCache { pages: index -> frame, size } ── get_page / find_page -> CachedPage
//!        │ miss: PageIo::read_page                ^ handle = one frame reference
//!        │ write_back / reclaim: PageIo::write_page
//!        v
//!   the file system (ext2 block map) -> the disk
//! ```
//!
//! # A page-cache frame
//! A `FrameState::User` frame with [`FrameFlags::FILE`]: its descriptor names its
//! owner, (cache id, page index) ([`FrameDesc::file_owner`](mm_core::frame_table::FrameDesc::file_owner)),
//! so reclaim gets from a frame to its cache through [`cache_by_id`]. References:
//! the cache holds one while the frame is in its index, each [`CachedPage`] handle
//! one, each PTE that maps it one (`map_count` counts those). Every page in the index
//! is *up to date* (it is inserted only once its read finished); `DIRTY` says its
//! bytes differ from the file's on disk; `LOCKED` that it is being written back.
//! The frame leaves the cache only through the cache ([`PageCache::truncate`],
//! reclaim, the cache's end), which untracks it and drops the cache's reference;
//! whoever drops the last reference frees it.
//!
//! Page-cache frames are tracked by the replacement policy like anonymous ones;
//! reclaim hands a file victim to [`reclaim_file_frame`]: unmapped and clean, it is
//! dropped without I/O; unmapped and dirty, written to its file (never to swap) and
//! dropped, by kswapd; direct reclaim keeps it and wakes the writeback thread
//! instead (a file system's write needs heap, which direct reclaim may not have:
//! found by `tests/page_cache.rs`, an ext2 file written under pressure); mapped,
//! it is first unmapped from every page table through the file rmap
//! (`file_rmap.rs`: a dirty PTE makes the page dirty), then treated as above.
//!
//! Writeback (`mm/writeback.rs`) calls [`PageCache::write_back`] for old dirty
//! pages; `fsync` calls it for the whole file (`page_cache/write_back.rs`: runs of
//! consecutive dirty pages go to [`PageIo::write_pages`] straight from the frames).
//!
//! Locks: a cache's `pages` ([`LockRank::PageCache`](crate::sync::LockRank), below
//! the address spaces and swap, above the policy: inserting and removing a page
//! tracks and untracks it under it); the registry [`CACHES`]; the cache's sleeping
//! `io_lock`, which serialises write-back, truncation and reclaim's write of a dirty
//! page (reclaim only `try_lock`s it: direct reclaim may run inside a `write_at` of
//! the same file). No I/O happens under a spinlock; copies in and out of a frame run
//! with none held (the kernel is not preempted, and a frame is pinned by a reference).

use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::frame::{self, FrameFlags, FrameState, NewPage, PageBytes};
use super::{Frame, PAGE_SIZE, frame_ptr, reclaim};
use crate::fs::FsError;
use crate::sync::{IrqMutex, LockRank, Mutex};

mod stats;
mod write_back;
pub use stats::{FileEvent, count_major_fault, nr_dirty, nr_events, nr_pages, nr_writeback, print_counters};
use stats::{count, count_n};

/// The file system's side of a cache (Linux's `address_space_operations`).
pub trait PageIo: Send + Sync {
    /// Fills `dst` (arrives zeroed) with page `index` of the file; bytes past the end stay zero.
    fn read_page(&self, index: u64, dst: &mut NewPage) -> Result<(), FsError>;
    /// Writes page `index` back: `len` bytes of `src` (the last page of a file is partial).
    fn write_page(&self, index: u64, src: &[u8], len: usize) -> Result<(), FsError>;
    /// Fills `dsts` (each arrives zeroed) with pages `first, first + 1, ...`: in one
    /// device request where the file system can (readahead uses it). By default, one
    /// [`read_page`](Self::read_page) each.
    fn read_pages(&self, first: u64, dsts: &mut [NewPage]) -> Result<(), FsError> {
        for (index, dst) in (first..).zip(dsts.iter_mut()) {
            self.read_page(index, dst)?;
        }
        Ok(())
    }
    /// Writes pages `first, first + 1, ...` back from `srcs`, the file being `size`
    /// bytes long (pages wholly past it count as done, the last one is partial): in
    /// one device request per run of adjacent blocks where the file system can, with
    /// no copy (write-back gives it runs of consecutive dirty pages). `Err((n, e))`:
    /// pages `[0, n)` are done, the rest failed with `e`. By default, one
    /// [`write_page`](Self::write_page) each ([`write_pages_each`]).
    fn write_pages(&self, first: u64, srcs: &[&PageBytes], size: u64) -> Result<(), (usize, FsError)> {
        write_pages_each(self, first, srcs, size)
    }
    /// The most pages the device takes in one request, so that write-back hands
    /// [`write_pages`](Self::write_pages) runs of whole requests and carries the
    /// rest of a run into its next batch. By default 1 (nothing carried).
    fn pages_per_request(&self) -> usize {
        1
    }
    /// Writes out what the `write_page(s)` calls of one write-back changed besides
    /// the pages (a file system with its own metadata buffers writes them: block
    /// map, bitmaps, inode), without flushing the device's cache. By default nothing.
    fn write_out(&self) -> Result<(), FsError> {
        Ok(())
    }
    /// Makes everything written so far durable: one flush of the device's cache
    /// (`fsync` and `msync(MS_SYNC)` end with it; write-back alone does not, as on
    /// Linux). By default nothing.
    fn flush(&self) -> Result<(), FsError> {
        Ok(())
    }
}

/// [`PageIo::write_pages`] as one [`PageIo::write_page`] per page.
pub fn write_pages_each<I: PageIo + ?Sized>(io: &I, first: u64, srcs: &[&PageBytes], size: u64) -> Result<(), (usize, FsError)> {
    for (i, src) in srcs.iter().enumerate() {
        let start = (first + i as u64) * PAGE_SIZE;
        if start >= size {
            break; // cut off by a truncate: nothing of it is in the file any more
        }
        let len = (size - start).min(PAGE_SIZE) as usize;
        io.write_page(first + i as u64, &src[..], len).map_err(|e| (i, e))?;
    }
    Ok(())
}

/// Every live cache by id, so that reclaim can get from a frame to its cache.
static CACHES: IrqMutex<BTreeMap<u32, Weak<PageCache>>> = IrqMutex::new_ranked(LockRank::PageCacheRegistry, BTreeMap::new());
/// The id of the next cache (0 is never used).
static NEXT_ID: AtomicU32 = AtomicU32::new(1);
/// How many times an allocation that failed is retried after direct reclaim.
const ALLOC_RETRIES: u32 = 4;
/// Dirty pages written back per batch (the handles of one batch sit in a `Vec`):
/// 4 MiB, so that a run of adjacent blocks fills the disk's largest requests
/// (`drivers::virtio_blk::MAX_FRAMES_PER_REQUEST`, QEMU's 254 frames) several times
/// over; the end of a run that would make a short request is carried into the
/// next batch ([`PageIo::pages_per_request`]).
const WRITEBACK_BATCH: usize = 1024;

/// The cached pages of one file.
pub struct PageCache {
    id: u32,
    io: Arc<dyn PageIo>,
    /// The file's size in bytes, as the cache sees it (reads stop here, write-back
    /// writes no byte past it).
    size: AtomicU64,
    /// Page index -> frame; each frame here holds the cache's reference.
    pages: IrqMutex<BTreeMap<u64, Frame>>,
    /// Serialises write-back, truncation and reclaim's writes of this file's pages.
    io_lock: Mutex<()>,
    /// Held by an append from reading the size to the end of its write.
    append_lock: Mutex<()>,
    /// Uptime (ms) when a page was dirtied while none was; 0 while all are clean.
    dirtied_at_ms: AtomicU64,
    /// Set by `msync(MS_ASYNC)` ([`super::writeback::start_async`]): the writeback
    /// thread writes this file at its next pass, whatever its age.
    is_writeback_requested: AtomicBool,
    /// The sequential-read detector of this file ([`super::readahead`]).
    pub(super) readahead: IrqMutex<mm_core::file_readahead::ReadaheadWindow>,
}

/// A reference to one cached frame; the frame is not freed while the handle lives.
#[derive(Debug)]
pub struct CachedPage {
    frame: Frame,
    index: u64,
}

impl CachedPage {
    /// Returns the frame's page frame number.
    pub fn pfn(&self) -> u64 {
        self.frame.pfn()
    }

    /// Returns the frame.
    pub fn frame(&self) -> Frame {
        self.frame
    }

    /// Returns the page's index in its file.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Copies `buf.len()` bytes of the page from `offset` into `buf`.
    pub fn read(&self, offset: usize, buf: &mut [u8]) {
        // SAFETY: the handle's reference keeps the frame allocated; the kernel is not
        // preempted during the copy and no device writes a cached page (reads fill a
        // page before it enters the cache), so nothing writes it meanwhile.
        unsafe { frame::read_bytes(self.frame, offset, buf) }
    }

    /// Copies `len` bytes of the page from `offset` to the user address `dst`;
    /// returns the bytes NOT copied (0 on success; the rest after a fault on the
    /// user side). The caller checked `dst` (`proc::uaccess`).
    ///
    /// # Safety
    /// `[dst, dst + len)` must lie in the user half and hold no PROT_NONE page (the
    /// checks `proc::uaccess::copy_to_user` makes); `offset + len <= PAGE_SIZE`.
    pub unsafe fn copy_to_user(&self, offset: usize, dst: u64, len: usize) -> u64 {
        assert!(offset + len <= PAGE_SIZE as usize, "CachedPage::copy_to_user past the page");
        let src = frame_ptr(self.frame) as u64 + offset as u64;
        // SAFETY: the kernel side is inside the frame, which this handle pins (a fault
        // on the user side may let another task run and write the page: the reader
        // then sees some of each, as on Linux; no Rust reference into the frame
        // exists). The user side is the caller's promise.
        unsafe { crate::arch::extable::copy_user(dst, src, len as u64) }
    }

    /// Copies `bytes` into the page at `offset` (the caller marks it dirty).
    fn write(&self, offset: usize, bytes: &[u8]) {
        // SAFETY: the frame is a page-cache page pinned by this handle; file data is
        // plain bytes that every reader copies out (no Rust reference into the frame
        // lives across this call, and the kernel is not preempted during the copy).
        unsafe { frame::write_bytes(self.frame, offset, bytes) }
    }

    /// Returns the page's bytes, for writing them to the device.
    fn bytes(&self) -> &PageBytes {
        // SAFETY: pinned by the handle and LOCKED for write-back by the caller: the
        // cache does not write it meanwhile (a `write_at` into it between two device
        // requests is possible and harmless: it set DIRTY again, so it goes out again).
        unsafe { &*frame_ptr(self.frame).cast::<PageBytes>() }
    }
}

impl Drop for CachedPage {
    fn drop(&mut self) {
        if frame::put_ref(self.frame) == 0 {
            // The frame left the cache while we held it: ours was the last reference.
            if let Err(e) = frame::free_unreferenced_user_frame(self.frame) {
                panic!("CachedPage::drop: {e}");
            }
        }
    }
}

/// Allocates a zeroed user frame for the cache, reclaiming and retrying when memory
/// is short; `NoMemory` once reclaim frees nothing.
fn alloc_page() -> Result<NewPage, FsError> {
    for _ in 0..ALLOC_RETRIES {
        match NewPage::alloc_zeroed() {
            Ok(page) => return Ok(page),
            Err(_) => {
                if reclaim::direct_reclaim() == 0 {
                    break;
                }
            }
        }
    }
    NewPage::alloc_zeroed().map_err(|_| FsError::NoMemory)
}

impl PageCache {
    /// Creates the (empty) cache of a file of `size` bytes whose pages `io` reads and writes.
    pub fn new(io: Arc<dyn PageIo>, size: u64) -> Arc<PageCache> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let cache = Arc::new(PageCache {
            id,
            io,
            size: AtomicU64::new(size),
            pages: IrqMutex::new_ranked(LockRank::PageCache, BTreeMap::new()),
            io_lock: Mutex::new(()),
            append_lock: Mutex::new(()),
            dirtied_at_ms: AtomicU64::new(0),
            is_writeback_requested: AtomicBool::new(false),
            readahead: IrqMutex::new_ranked(
                LockRank::Leaf,
                mm_core::file_readahead::ReadaheadWindow::with_max(READAHEAD_MAX_PAGES.load(Ordering::Relaxed)),
            ),
        });
        CACHES.lock().insert(id, Arc::downgrade(&cache));
        cache
    }

    /// Returns the cache's id (the owner word of its frames).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Returns the file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// Returns the file's readahead state, locked (benchmarks switch readahead off).
    pub fn readahead_window(&self) -> crate::sync::IrqMutexGuard<'_, mm_core::file_readahead::ReadaheadWindow> {
        self.readahead.lock()
    }

    /// Locks the file against other appends (`O_APPEND` writes: the end, then the
    /// write, with no other append between).
    pub fn append_lock(&self) -> crate::sync::MutexGuard<'_, ()> {
        self.append_lock.lock()
    }

    /// Returns the number of pages cached now.
    pub fn nr_cached(&self) -> usize {
        self.pages.lock().len()
    }

    /// Returns the number of dirty pages of this file cached now.
    pub fn nr_dirty(&self) -> usize {
        let pages = self.pages.lock();
        pages.values().filter(|&&f| frame::with_desc(f, |d| d.has_flags(FrameFlags::DIRTY))).count()
    }

    /// Returns the indices of the dirty pages cached now, in order.
    pub fn dirty_indices(&self) -> Vec<u64> {
        let pages = self.pages.lock();
        let dirty = pages.iter().filter(|&(_, &f)| frame::with_desc(f, |d| d.has_flags(FrameFlags::DIRTY)));
        dirty.map(|(&index, _)| index).collect()
    }

    /// Returns when a page was dirtied while the file had no dirty page (uptime ms;
    /// `None` while every page is clean): the age writeback goes by.
    pub fn dirtied_at_ms(&self) -> Option<u64> {
        match self.dirtied_at_ms.load(Ordering::Acquire) {
            0 => None,
            ms => Some(ms),
        }
    }

    /// Asks for this file's write-back at the writeback thread's next pass.
    pub(super) fn request_writeback(&self) {
        self.is_writeback_requested.store(true, Ordering::Release);
    }

    /// Returns true (once) if a write-back was asked for since the last call.
    pub(super) fn take_writeback_request(&self) -> bool {
        self.is_writeback_requested.swap(false, Ordering::AcqRel)
    }

    /// Runs `f` on this file's index (page index -> frame) under one hold of its
    /// lock: fault-around maps a window of cached pages with one lock round trip.
    /// `f` takes no lock ranked above the cache's (a page table walk takes none).
    pub(super) fn with_pages<R>(&self, f: impl FnOnce(&BTreeMap<u64, Frame>) -> R) -> R {
        f(&self.pages.lock())
    }

    /// Page `index` only if it is cached and up to date (no I/O).
    pub fn find_page(&self, index: u64) -> Option<CachedPage> {
        let pages = self.pages.lock();
        let &frame = pages.get(&index)?;
        frame::with_desc(frame, |d| {
            d.get_ref();
            d.remove_flags(FrameFlags::READAHEAD);
        });
        Some(CachedPage { frame, index })
    }

    /// Page `index`, up to date, read from the device on a miss; the handle holds a
    /// reference on the frame (dropped with the handle), so reclaim cannot free it.
    pub fn get_page(&self, index: u64) -> Result<CachedPage, FsError> {
        if let Some(page) = self.find_page_counting_readahead(index) {
            count(FileEvent::CacheHit);
            return Ok(page);
        }
        count(FileEvent::CacheMiss);
        let mut new = alloc_page()?;
        self.io.read_page(index, &mut new)?;
        count(FileEvent::PageRead);
        Ok(self.insert(index, new, false))
    }

    /// Like [`find_page`](Self::find_page), counting a readahead page's first use.
    fn find_page_counting_readahead(&self, index: u64) -> Option<CachedPage> {
        let pages = self.pages.lock();
        let &frame = pages.get(&index)?;
        let was_readahead = frame::with_desc(frame, |d| {
            d.get_ref();
            let was = d.has_flags(FrameFlags::READAHEAD);
            d.remove_flags(FrameFlags::READAHEAD);
            was
        });
        if was_readahead {
            count(FileEvent::ReadaheadHit);
        }
        Some(CachedPage { frame, index })
    }

    /// Puts `new` (up to date) in the index at `index` and returns a handle on it; if
    /// another task put a page there meanwhile, `new` is dropped and that one returned.
    /// `is_readahead`: the page was read ahead of any use (flag READAHEAD).
    fn insert(&self, index: u64, new: NewPage, is_readahead: bool) -> CachedPage {
        let mut pages = self.pages.lock();
        if let Some(&frame) = pages.get(&index) {
            frame::with_desc(frame, |d| d.get_ref());
            drop(pages);
            drop(new);
            return CachedPage { frame, index };
        }
        let frame = new.into_mapped(); // the allocation's reference is the cache's
        frame::with_desc(frame, |d| {
            d.set_file_owner(self.id, index);
            if is_readahead {
                d.insert_flags(FrameFlags::READAHEAD);
            }
            d.get_ref(); // the handle's
        });
        pages.insert(index, frame);
        stats::page_added();
        reclaim::track(frame);
        CachedPage { frame, index }
    }

    /// Reads up to `nr_pages` pages from `start` ahead of use, in one `read_pages`,
    /// stopping at the first page already cached; never waits for memory (readahead
    /// is a guess: it gives up instead of reclaiming). Returns the pages read.
    pub(super) fn read_ahead(&self, start: u64, nr_pages: u64) -> u64 {
        let mut news = Vec::new();
        if news.try_reserve_exact(nr_pages as usize).is_err() {
            return 0;
        }
        for index in start..start + nr_pages {
            if self.pages.lock().contains_key(&index) {
                break;
            }
            match NewPage::alloc_zeroed() {
                Ok(page) => news.push(page),
                Err(_) => break,
            }
        }
        if news.is_empty() || self.io.read_pages(start, &mut news).is_err() {
            return 0;
        }
        let nr_read = news.len() as u64;
        count_n(FileEvent::PageRead, nr_read);
        count_n(FileEvent::ReadaheadPage, nr_read);
        for (index, new) in (start..).zip(news) {
            drop(self.insert(index, new, true));
        }
        nr_read
    }

    /// Marks page `index` dirty (its bytes changed: a write, or a shared mapping's
    /// PTE was dirty). A page not cached is ignored.
    pub fn mark_dirty(&self, index: u64) {
        let pages = self.pages.lock();
        if let Some(&frame) = pages.get(&index) {
            self.mark_frame_dirty(frame);
        }
    }

    /// Sets DIRTY on a frame of this cache, counting it and starting the file's age
    /// (the caller holds the `pages` lock, or a reference on the frame).
    pub(super) fn mark_frame_dirty(&self, frame: Frame) {
        let was_dirty = frame::with_desc(frame, |d| {
            let was = d.has_flags(FrameFlags::DIRTY);
            d.insert_flags(FrameFlags::DIRTY);
            was
        });
        if !was_dirty {
            stats::dirtied();
            let now = crate::arch::timer::uptime_ms().max(1);
            let _ = self.dirtied_at_ms.compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
            super::writeback::note_dirty();
        }
    }

    /// Copies bytes from `offset` into `buf` through the cache; returns how many
    /// (0 at or past the end). Sequential reads start readahead ([`super::readahead`]).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let mut done = 0;
        self.read_with(offset, buf.len(), &mut |page, in_page, n| {
            page.read(in_page, &mut buf[done..done + n]);
            done += n;
            true
        })
    }

    /// The bytes `[offset, offset + len)` (cut at the end of the file), one cached
    /// page at a time: `copy_out(page, in_page, n)` copies `n` bytes from byte
    /// `in_page` of the pinned `page` to wherever the caller reads into, the pieces
    /// in order, and returns false to stop (its destination failed: a bad user
    /// buffer). Pages missing are read from the device; sequential reads start
    /// readahead ([`super::readahead`]). Returns the bytes `copy_out` took.
    ///
    /// `read(2)` copies from here straight into the user's buffer
    /// (`proc::uaccess::copy_file_to_user`), with no bounce buffer between.
    pub fn read_with(
        &self,
        offset: u64,
        len: usize,
        copy_out: &mut dyn FnMut(&CachedPage, usize, usize) -> bool,
    ) -> Result<usize, FsError> {
        let size = self.size();
        if offset >= size || len == 0 {
            return Ok(0);
        }
        let len = (len as u64).min(size - offset) as usize;
        let first = offset / PAGE_SIZE;
        let last = (offset + len as u64 - 1) / PAGE_SIZE;
        super::readahead::before_read(self, first, last);
        let mut done = 0;
        while done < len {
            let pos = offset + done as u64;
            let in_page = (pos % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(len - done);
            let page = match self.get_page(pos / PAGE_SIZE) {
                Ok(page) => page,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            if !copy_out(&page, in_page, n) {
                break;
            }
            done += n;
        }
        count_n(FileEvent::BytesRead, done as u64);
        Ok(done)
    }

    /// Copies `buf` to `offset` through the cache, growing the file if needed; the
    /// pages become dirty (written back later). Returns the bytes written.
    pub fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, FsError> {
        if buf.is_empty() {
            return Ok(0);
        }
        offset.checked_add(buf.len() as u64).ok_or(FsError::TooBig)?;
        let mut done = 0;
        while done < buf.len() {
            let pos = offset + done as u64;
            let index = pos / PAGE_SIZE;
            let in_page = (pos % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - in_page).min(buf.len() - done);
            let page = match self.page_for_write(index, in_page == 0 && n == PAGE_SIZE as usize) {
                Ok(page) => page,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            page.write(in_page, &buf[done..done + n]);
            self.mark_frame_dirty(page.frame);
            done += n;
            self.size.fetch_max(pos + n as u64, Ordering::AcqRel);
        }
        count_n(FileEvent::BytesWritten, done as u64);
        Ok(done)
    }

    /// Returns page `index` to write into: a page wholly overwritten, or wholly past
    /// the end of the file, is not read from the device (a zeroed frame will do).
    fn page_for_write(&self, index: u64, is_whole_page: bool) -> Result<CachedPage, FsError> {
        let is_past_end = index * PAGE_SIZE >= self.size();
        if !is_whole_page && !is_past_end {
            return self.get_page(index);
        }
        if let Some(page) = self.find_page(index) {
            return Ok(page);
        }
        Ok(self.insert(index, alloc_page()?, false))
    }

    /// Sets the size to `size`: pages wholly past it leave the cache (dirty or not:
    /// their bytes are gone), the tail of the last page is zeroed.
    pub fn truncate(&self, size: u64) -> Result<(), FsError> {
        let _io = self.io_lock.lock();
        self.size.store(size, Ordering::Release);
        // Mappings lose the pages past the end first (an access there is then a
        // SIGBUS), private copies included, as Linux's `truncate_pagecache`.
        super::file_rmap::unmap_from(self.id, size.div_ceil(PAGE_SIZE));
        let mut pages = self.pages.lock();
        let cut = pages.split_off(&size.div_ceil(PAGE_SIZE));
        for (_, frame) in cut {
            drop_from_cache(frame);
        }
        if !size.is_multiple_of(PAGE_SIZE)
            && let Some(&frame) = pages.get(&(size / PAGE_SIZE))
        {
            let tail = (size % PAGE_SIZE) as usize;
            let zeros = [0u8; 256];
            let mut at = tail;
            while at < PAGE_SIZE as usize {
                let n = zeros.len().min(PAGE_SIZE as usize - at);
                // SAFETY: the frame is in the index (the cache's reference pins it);
                // the bytes past the end are the cache's, no handle reads them now
                // (the kernel is not preempted), and no write-back runs (io_lock).
                unsafe { frame::write_bytes(frame, at, &zeros[..n]) };
                at += n;
            }
        }
        Ok(())
    }

    /// Reclaim's side of one victim `frame`, page `index` of this cache, already
    /// untracked by the policy (see [`reclaim_file_frame`]).
    fn evict(&self, index: u64, frame: Frame) -> FileEvicted {
        let mut has_written = false;
        let mut has_unmapped = false;
        loop {
            let mut pages = self.pages.lock();
            if pages.get(&index) != Some(&frame) {
                return FileEvicted::Gone; // truncated meanwhile: not ours to track
            }
            let (refcount, map_count, flags) = frame::with_desc(frame, |d| (d.refcount(), d.map_count(), d.flags()));
            if map_count > 0 && !has_unmapped && !flags.contains(FrameFlags::LOCKED) {
                // Mapped: take it out of every page table through the file rmap
                // (a dirty PTE makes the page dirty), then look again.
                drop(pages);
                has_unmapped = true;
                if super::file_rmap::unmap_page(self.id, index, frame) {
                    count(FileEvent::UnmappedForReclaim);
                    continue;
                }
                self.track_if_cached(index, frame); // a space was busy: later
                return FileEvicted::Kept;
            }
            if map_count > 0 || refcount > 1 || flags.contains(FrameFlags::LOCKED) {
                // Mapped again, or in use by a handle or I/O.
                reclaim::track(frame);
                return FileEvicted::Kept;
            }
            if !flags.contains(FrameFlags::DIRTY) {
                pages.remove(&index);
                drop_from_cache(frame);
                count(if has_written { FileEvent::ReclaimedWritten } else { FileEvent::ReclaimedClean });
                return if has_written { FileEvicted::Written } else { FileEvicted::Clean };
            }
            drop(pages);
            // Dirty: to its file (never to swap), unless this is direct reclaim
            // (`reclaim::may_write_file_pages`): then the writeback thread is woken
            // and the page stays. Reclaim may also run inside this file's own
            // write-back or truncate: then the page stays too.
            if !reclaim::may_write_file_pages() {
                super::writeback::wake();
                self.track_if_cached(index, frame);
                return FileEvicted::Kept;
            }
            let Some(_io) = self.io_lock.try_lock() else {
                self.track_if_cached(index, frame);
                return FileEvicted::Kept;
            };
            if has_written || self.write_back_locked(index, index, false).is_err() {
                self.track_if_cached(index, frame);
                return FileEvicted::Kept;
            }
            has_written = true;
        }
    }

    /// Drops every page of this cache that is clean, unmapped and not in use (no
    /// handle, no I/O): what `/proc/sys/vm/drop_caches` asks of every cache. Dirty
    /// pages stay (Linux's `drop_caches` also drops only clean ones: `sync` first).
    /// Returns the number of pages dropped.
    pub fn drop_clean_pages(&self) -> usize {
        let mut pages = self.pages.lock();
        let droppable: Vec<(u64, Frame)> = pages
            .iter()
            .filter(|&(_, &frame)| {
                frame::with_desc(frame, |d| {
                    d.map_count() == 0
                        && d.refcount() == 1
                        && !d.has_flags(FrameFlags::DIRTY)
                        && !d.has_flags(FrameFlags::LOCKED)
                })
            })
            .map(|(&index, &frame)| (index, frame))
            .collect();
        for &(index, frame) in &droppable {
            pages.remove(&index);
            drop_from_cache(frame);
        }
        droppable.len()
    }

    /// Tracks `frame` again if it is still page `index` of this cache.
    fn track_if_cached(&self, index: u64, frame: Frame) {
        let pages = self.pages.lock();
        if pages.get(&index) == Some(&frame) {
            reclaim::track(frame);
        }
    }
}

impl Drop for PageCache {
    /// The file is gone (its last reference dropped): its pages leave the cache. The
    /// owner writes dirty pages back first if they matter (`Inode::sync`).
    fn drop(&mut self) {
        CACHES.lock().remove(&self.id);
        let pages = core::mem::take(&mut *self.pages.lock());
        for (_, frame) in pages {
            drop_from_cache(frame);
        }
    }
}

/// Takes a frame out of its cache (already removed from the index, whose lock the
/// caller may hold): untracked, no longer FILE unless still mapped, the cache's
/// reference dropped; freed if that was the last.
fn drop_from_cache(frame: Frame) {
    reclaim::untrack(frame);
    let (refcount, was_dirty) = frame::with_desc(frame, |d| {
        let was_dirty = d.has_flags(FrameFlags::DIRTY);
        d.remove_flags(FrameFlags::DIRTY | FrameFlags::READAHEAD);
        if d.map_count() == 0 {
            d.clear_file_owner();
        }
        (d.put_ref(), was_dirty)
    });
    stats::page_removed(was_dirty);
    if refcount == 0
        && let Err(e) = frame::free_unreferenced_user_frame(frame)
    {
        panic!("page_cache: freeing {frame:?}: {e}");
    }
}

/// The largest file readahead window of a new file, in pages
/// (`/proc/sys/vm/read_ahead_kb`; Linux keeps it per block device).
static READAHEAD_MAX_PAGES: AtomicU32 = AtomicU32::new(mm_core::file_readahead::MAX_WINDOW);

/// Returns the largest file readahead window, in pages.
pub fn readahead_max_pages() -> u32 {
    READAHEAD_MAX_PAGES.load(Ordering::Relaxed)
}

/// Sets the largest file readahead window to `max_pages` (0: no readahead), for
/// every file from now on: the open ones start again from a fresh window.
pub fn set_readahead_max_pages(max_pages: u32) {
    READAHEAD_MAX_PAGES.store(max_pages, Ordering::Relaxed);
    for cache in all_caches() {
        *cache.readahead.lock() = mm_core::file_readahead::ReadaheadWindow::with_max(max_pages);
    }
}

/// Returns the live cache with id `id`.
pub fn cache_by_id(id: u32) -> Option<Arc<PageCache>> {
    CACHES.lock().get(&id).and_then(Weak::upgrade)
}

/// Returns every live cache (writeback visits them).
pub fn all_caches() -> Vec<Arc<PageCache>> {
    CACHES.lock().values().filter_map(Weak::upgrade).collect()
}

/// What reclaim did with a page-cache victim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileEvicted {
    /// Not a page-cache frame: the swap path's.
    NotFile,
    /// Clean: dropped without I/O.
    Clean,
    /// Dirty: written to its file, then dropped.
    Written,
    /// Stays (mapped, in use, or its write failed); tracked again.
    Kept,
    /// Left its cache meanwhile (truncated): nothing to do, not tracked.
    Gone,
}

/// Reclaims `frame` if it is a page-cache page (the policy picked it and no longer
/// tracks it). Call with no lock held.
pub fn reclaim_file_frame(frame: Frame) -> FileEvicted {
    let owner = frame::with_desc(frame, |d| {
        if d.state() == FrameState::User && d.refcount() > 0 { d.file_owner() } else { None }
    });
    let Some((id, index)) = owner else { return FileEvicted::NotFile };
    match cache_by_id(id) {
        Some(cache) => cache.evict(index, frame),
        None => FileEvicted::Gone, // the cache is being dropped: it frees the frame
    }
}

/// Drops the clean, unmapped, unused pages of every cache (`drop_caches`); returns
/// how many went.
pub fn drop_clean_pages_everywhere() -> usize {
    all_caches().iter().map(|cache| cache.drop_clean_pages()).sum()
}

/// Returns true if `frame` is a page-cache page.
pub fn is_file_frame(frame: Frame) -> bool {
    frame::with_desc(frame, |d| d.has_flags(FrameFlags::FILE))
}

/// Returns every page-cache frame with its reference count as the caches see it
/// (the audit: `mm/check.rs`): (frame, cache id, index).
pub fn snapshot() -> Vec<(Frame, u32, u64)> {
    let mut all = Vec::new();
    for cache in all_caches() {
        let pages = cache.pages.lock();
        all.extend(pages.iter().map(|(&index, &frame)| (frame, cache.id, index)));
    }
    all
}
