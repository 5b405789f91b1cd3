//! ext2 as a VFS file system: the [`Inode`] trait implemented over the `ext2`
//! crate (`kernel/ext2`), on the root disk from the block registry.
//!
//! ```text
//!  VFS (fs::path, syscalls) ── Arc<dyn Inode> ──> Ext2Inode { ino, kind }
//!                                                    │  every call: lock the mount
//!                                                    v
//!                               Ext2Fs { Mutex<ext2::Ext2<'static>> } ── &'static dyn BlockDevice ("root")
//! ```
//!
//! The crate addresses everything by inode number and takes `&mut self`: the
//! mount is one [`Ext2`] behind one sleeping [`Mutex`] (held across disk I/O, so
//! never a spinlock), and an [`Ext2Inode`] is just an inode number and its kind.
//! Each `Ext2Inode` takes a hold on its inode ([`Ext2::inode_get`]) and drops it
//! when the last `Arc` goes ([`Ext2::inode_put`]): a file unlinked while open stays
//! readable, and its blocks are freed when the last holder lets go.
//!
//! File data goes through the page cache (`mm/page_cache.rs`): each regular file
//! has one cache, shared by every `Ext2Inode` of it ([`Ext2Fs`]'s table), whose
//! `PageIo` reads and writes pages through the crate (`fs/ext2fs_pages.rs`).
//! A `write` dirties cached pages; they reach the disk at write-back (the writeback
//! thread, `fsync`, reclaim), each write-back ending with [`Ext2::write_out`]. Near a full
//! disk a write is written back at once, so that ENOSPC still answers the write.
//!
//! Durability: the crate's block cache is write-back and writes only when asked, so
//! every operation that changes the metadata ends with [`Ext2::write_out`], and so
//! does every write-back: whenever the machine stops between two system calls, the
//! disk as the device sees it is consistent and `e2fsck -fn` (which the runner runs
//! after every boot) finds it clean; data written since the last write-back is
//! not on it (as on Linux before `fsync`). The device's own write cache is flushed
//! only by `fsync`, `msync(MS_SYNC)` and `sync` ([`Ext2::sync`]): one flush each,
//! as Linux's ext2 sends (a metadata change or a write-back pass sends none).
//!
//! A disk the crate refuses (bad magic, unknown features, a superblock larger
//! than the disk) is reported and left untouched; [`mount`] returns the error and
//! the caller keeps tmpfs at `/`.
//!
//! Time: the machine has no wall clock. Timestamps are [`BOOT_EPOCH_SECS`] plus
//! the uptime, so files written during a run have times after the files `mke2fs`
//! copied in.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use core::any::Any;

use blockdev::BlockDevice;
use ext2::{Ext2, Ext2Error, FileType, InodeNo};

use super::ext2fs_pages::{Ext2Mount, Ext2Pages};
use super::{DirEntry, FileKind, FsError, Inode, InodeRef, InodeStat};
use crate::mm::PAGE_SIZE;
use crate::mm::page_cache::{self, PageCache};
use crate::sync::{Mutex, MutexGuard};

/// The device number `stat` reports for the ext2 root (Linux's 8:1, `sda1`).
const EXT2_DEV: u64 = 0x801;

/// The time the kernel says it booted at, in seconds since 1970: 2026-12-06 00:00 UTC.
pub const BOOT_EPOCH_SECS: u32 = 1_796_515_200;

/// The mount's clock: seconds since 1970 (see the module doc).
fn now_secs() -> u32 {
    BOOT_EPOCH_SECS + (crate::arch::timer::uptime_ms() / 1000) as u32
}

/// One mounted ext2 file system.
pub struct Ext2Fs {
    /// The mount: every operation takes this lock for its whole length.
    fs: Mutex<Ext2<'static>>,
    /// The page cache of each regular file opened since the mount, by inode number,
    /// with the number of [`Ext2Inode`]s holding it: every `Ext2Inode` of one file
    /// shares its cache (`fs/ext2fs_pages.rs`). A cache stays after its last holder
    /// goes (its pages are reclaimable) until its file is deleted.
    caches: Mutex<BTreeMap<u32, (Arc<PageCache>, usize)>>,
}

impl Ext2Mount for Ext2Fs {
    fn lock_fs(&self) -> MutexGuard<'_, Ext2<'static>> {
        self.fs.lock()
    }
}

impl Ext2Fs {
    /// Runs `f` on the mount with its lock held.
    fn with<R>(&self, f: impl FnOnce(&mut Ext2<'static>) -> Result<R, Ext2Error>) -> Result<R, FsError> {
        f(&mut self.fs.lock()).map_err(fs_error)
    }

    /// Runs `f`, which changes the disk, then writes every change out, without a
    /// flush (module doc).
    fn change<R>(&self, f: impl FnOnce(&mut Ext2<'static>) -> Result<R, Ext2Error>) -> Result<R, FsError> {
        let mut fs = self.fs.lock();
        let result = f(&mut fs);
        // Write out even after an error: a failed operation may have changed blocks
        // (an indirect block allocated before ENOSPC), and they must reach the disk.
        let synced = fs.write_out();
        let value = result.map_err(fs_error)?;
        synced.map_err(fs_error)?;
        Ok(value)
    }

    /// Returns an inode of this mount for `ino`, holding it open.
    fn inode(self: &Arc<Self>, fs: &mut Ext2<'static>, ino: InodeNo) -> Result<Arc<Ext2Inode>, Ext2Error> {
        let stat = fs.stat(ino)?;
        let kind = match stat.file_type() {
            Some(FileType::Directory) => FileKind::Directory,
            // Symbolic links and device nodes are not followed or opened as such
            // yet: reads of them fail in the crate with EINVAL.
            _ => FileKind::Regular,
        };
        fs.inode_get(ino)?;
        let cache = (kind == FileKind::Regular).then(|| self.hold_cache(ino, stat.size));
        Ok(Arc::new(Ext2Inode { fs: self.clone(), ino, kind, cache }))
    }

    /// Returns the page cache of file `ino` (`size` bytes on the disk), holding it.
    fn hold_cache(self: &Arc<Self>, ino: InodeNo, size: u64) -> Arc<PageCache> {
        let mut caches = self.caches.lock();
        let (cache, nr_holders) = caches.entry(ino.0).or_insert_with(|| {
            let mount: Arc<dyn Ext2Mount> = self.clone();
            (PageCache::new(Arc::new(Ext2Pages::new(mount, ino)), size), 0)
        });
        *nr_holders += 1;
        cache.clone()
    }

    /// Forgets the page cache of a file being deleted (no holder, last name going):
    /// its dirty pages are written first, so that no write-back runs on an inode
    /// the crate is about to free. Call with the mount unlocked.
    fn forget_cache_if_unheld(&self, ino: InodeNo) -> Result<(), FsError> {
        let cache = {
            let mut caches = self.caches.lock();
            match caches.get(&ino.0) {
                Some((_, 0)) => caches.remove(&ino.0).map(|(cache, _)| cache),
                _ => None,
            }
        };
        match cache {
            Some(cache) => cache.write_back(0, u64::MAX),
            None => Ok(()),
        }
    }
}

/// Mounts the ext2 file system on `dev` and returns its root directory; the
/// crate's refusal (with its reason) if the disk is damaged or foreign, in which
/// case nothing on it was written.
pub fn mount(dev: &'static dyn BlockDevice) -> Result<InodeRef, Ext2Error> {
    let fs = Ext2::mount(dev, now_secs)?;
    let root_ino = fs.root();
    let stats = fs.statfs();
    log::info!(
        "ext2: {} mounted at / ({} KiB blocks, {} of {} blocks free, {} of {} inodes free)",
        dev.name(),
        stats.block_size / 1024,
        stats.nr_free_blocks,
        stats.nr_blocks,
        stats.nr_free_inodes,
        stats.nr_inodes
    );
    let mount = Arc::new(Ext2Fs { fs: Mutex::new(fs), caches: Mutex::new(BTreeMap::new()) });
    let root = mount.inode(&mut mount.fs.lock(), root_ino)?;
    Ok(root)
}

/// Turns the crate's error into the VFS's (the errno is the same).
pub(super) fn fs_error(e: Ext2Error) -> FsError {
    match e {
        Ext2Error::NotFound => FsError::NotFound,
        Ext2Error::Exists => FsError::Exists,
        Ext2Error::NotDir => FsError::NotDirectory,
        Ext2Error::IsDir => FsError::IsDirectory,
        Ext2Error::NotEmpty => FsError::NotEmpty,
        Ext2Error::NoSpace => FsError::NoSpace,
        Ext2Error::NameTooLong => FsError::NameTooLong,
        Ext2Error::FileTooBig => FsError::TooBig,
        // The VFS has no ELOOP or EMLINK yet: the nearest is EINVAL.
        Ext2Error::InvalidArgument | Ext2Error::TooManySymlinks | Ext2Error::TooManyLinks => FsError::Invalid,
        Ext2Error::Io(_) | Ext2Error::Corrupt(_) | Ext2Error::Refused(_) => {
            log::warn!("ext2: {e}");
            FsError::Io
        }
    }
}

/// Returns the 512-byte sectors that the dirty pages `dirty` of file `ino` will
/// take when written back: their blocks not allocated yet (write-back allocates
/// them). `stat` counts them, as Linux's ext4 counts its delayed allocations.
fn delayed_sectors(fs: &mut Ext2<'static>, ino: InodeNo, dirty: &[u64]) -> Result<u64, Ext2Error> {
    let block_size = fs.block_size() as u64;
    let blocks_per_page = (PAGE_SIZE / block_size).max(1);
    let mut nr_unallocated = 0;
    for &index in dirty {
        for file_block in index * blocks_per_page..(index + 1) * blocks_per_page {
            if fs.block_of(ino, file_block)?.is_none() {
                nr_unallocated += 1;
            }
        }
    }
    Ok(nr_unallocated * block_size / 512)
}

/// Refuses names the VFS never passes to a directory operation (see [`Inode`]).
fn check_name(name: &str) -> Result<&[u8], FsError> {
    if name.len() > abi::NAME_MAX {
        return Err(FsError::NameTooLong);
    }
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(FsError::Invalid);
    }
    Ok(name.as_bytes())
}

/// An inode of a mounted ext2 file system: its number, its kind, a hold on it, and
/// for a regular file its page cache (data reads and writes go through it).
pub struct Ext2Inode {
    fs: Arc<Ext2Fs>,
    ino: InodeNo,
    kind: FileKind,
    cache: Option<Arc<PageCache>>,
}

impl Ext2Inode {
    /// Returns its inode number on the disk.
    pub fn ino(&self) -> InodeNo {
        self.ino
    }

    /// Requires a directory (ENOTDIR otherwise).
    fn dir(&self) -> Result<(), FsError> {
        match self.kind {
            FileKind::Directory => Ok(()),
            FileKind::Regular => Err(FsError::NotDirectory),
        }
    }

    /// Requires a regular file (EISDIR otherwise).
    fn file(&self) -> Result<(), FsError> {
        match self.kind {
            FileKind::Regular => Ok(()),
            FileKind::Directory => Err(FsError::IsDirectory),
        }
    }


    /// Writes `buf` at `offset` through the page cache (written back later, by the
    /// writeback thread, `fsync` or reclaim). The disk blocks are allocated at
    /// write-back; so that a full disk still answers *this* write with ENOSPC, a
    /// write that might need more room than the disk has free (counting every dirty
    /// page) is written back at once, and only the bytes that reached the disk count.
    fn write_through_cache(&self, cache: &PageCache, offset: u64, buf: &[u8]) -> Result<usize, FsError> {
        let free_bytes = self.fs.with(|fs| {
            let stats = fs.statfs();
            Ok(u64::from(stats.nr_free_blocks) * u64::from(stats.block_size))
        })?;
        let old_size = cache.size();
        let written = cache.write_at(offset, buf)?;
        let room_needed = (page_cache::nr_dirty() + 2) * PAGE_SIZE + 2 * written as u64 + (1 << 20);
        if written == 0 || room_needed < free_bytes {
            crate::mm::writeback::throttle_writer(cache);
            return Ok(written);
        }
        let (first, last) = (offset / PAGE_SIZE, (offset + written as u64 - 1) / PAGE_SIZE);
        match cache.write_back(first, last) {
            Ok(()) => Ok(written),
            Err(e) => {
                let on_disk = self.fs.with(|fs| fs.stat(self.ino))?.size;
                let done = on_disk.saturating_sub(offset).min(written as u64);
                cache.truncate(old_size.max(offset + done))?; // what did not fit is not in the file
                if done == 0 { Err(e) } else { Ok(done as usize) }
            }
        }
    }

    /// Returns the inode `name` names in this directory if deleting that name would
    /// free it (a regular file with one link), so that its cache goes first.
    fn file_freed_by_unlink(&self, name: &[u8]) -> Option<InodeNo> {
        self.fs
            .with(|fs| {
                let ino = fs.lookup(self.ino, name)?;
                let st = fs.stat(ino)?;
                Ok((st.file_type() != Some(FileType::Directory) && st.nr_links == 1).then_some(ino))
            })
            .ok()
            .flatten()
    }

    /// Refuses a directory that was removed while still held (a cwd): nothing
    /// can be found or created in it (ENOENT, as Linux answers).
    fn check_not_removed(&self, fs: &mut Ext2<'static>) -> Result<(), Ext2Error> {
        match fs.stat(self.ino)?.nr_links {
            0 => Err(Ext2Error::NotFound),
            _ => Ok(()),
        }
    }

    /// Creates `name` with `make` and returns the new inode, held.
    fn add(
        &self,
        name: &str,
        make: impl FnOnce(&mut Ext2<'static>, &[u8]) -> Result<InodeNo, Ext2Error>,
    ) -> Result<InodeRef, FsError> {
        self.dir()?;
        let name = check_name(name)?;
        let inode = self.fs.change(|fs| {
            self.check_not_removed(fs)?;
            let ino = make(fs, name)?;
            self.fs.inode(fs, ino)
        })?;
        Ok(inode)
    }
}

/// An inode handle dropped where it could not sleep, waiting for [`release_deferred`].
struct DeferredRelease {
    fs: Arc<Ext2Fs>,
    ino: InodeNo,
    cache: Option<Arc<PageCache>>,
}

/// Handles dropped with a spinlock held or interrupts off (the last reference of a
/// mapped file's inode can go with a VMA, under its address space's lock): their
/// release takes the file system's sleeping locks, so it waits here, like Linux's
/// delayed `fput`.
static DEFERRED: crate::sync::IrqMutex<alloc::vec::Vec<DeferredRelease>> =
    crate::sync::IrqMutex::new_ranked(crate::sync::LockRank::DeferredInodes, alloc::vec::Vec::new());

/// Releases the inode handles dropped where they could not sleep. Called where
/// sleeping is allowed: after exec and munmap (`file_rmap::release_unmapped`), by
/// the writeback thread, and by `wait`.
pub fn release_deferred() {
    if DEFERRED.lock().is_empty() {
        return;
    }
    let deferred = core::mem::take(&mut *DEFERRED.lock());
    for d in deferred {
        release_inode(&d.fs, d.ino, d.cache);
    }
}

/// Drops a handle's hold on its page cache (the last holder of a file that has no
/// name left empties and forgets it) and on its inode (the crate frees an unlinked
/// inode at its last hold). Sleeps: the file system's locks.
fn release_inode(fs: &Arc<Ext2Fs>, ino: InodeNo, cache: Option<Arc<PageCache>>) {
    if let Some(cache) = cache {
        let is_last = {
            let mut caches = fs.caches.lock();
            match caches.get_mut(&ino.0) {
                Some((_, nr_holders)) => {
                    *nr_holders -= 1;
                    *nr_holders == 0
                }
                None => false,
            }
        };
        let is_deleted = fs.with(|fs| fs.stat(ino)).is_ok_and(|st| st.nr_links == 0);
        if is_last && is_deleted {
            fs.caches.lock().remove(&ino.0);
            let _ = cache.truncate(0); // its data dies with the inode
        }
    }
    // The last hold of an unlinked inode frees its blocks: that is a change.
    if let Err(e) = fs.change(|fs| fs.inode_put(ino)) {
        log::warn!("ext2: releasing inode {}: {e:?}", ino.0);
    }
}

impl Drop for Ext2Inode {
    fn drop(&mut self) {
        let cache = self.cache.take();
        let can_sleep = crate::sync::nr_spinlocks_held() == 0 && x86_64::instructions::interrupts::are_enabled();
        if can_sleep {
            release_inode(&self.fs, self.ino, cache);
        } else {
            DEFERRED.lock().push(DeferredRelease { fs: self.fs.clone(), ino: self.ino, cache });
        }
    }
}

impl Inode for Ext2Inode {
    fn stat(&self) -> InodeStat {
        let dirty = self.cache.as_ref().map(|cache| cache.dirty_indices()).unwrap_or_default();
        let stat = self.fs.with(|fs| {
            let mut st = fs.stat(self.ino)?;
            st.nr_sectors += delayed_sectors(fs, self.ino, &dirty)?;
            Ok(st)
        });
        match stat {
            Ok(st) => InodeStat {
                dev: EXT2_DEV,
                ino: u64::from(st.ino.0),
                mode: u32::from(st.mode),
                nlink: u64::from(st.nr_links),
                // The cache knows writes not yet on the disk.
                size: self.cache.as_ref().map_or(st.size, |cache| cache.size()),
                blocks: st.nr_sectors,
                mtime_ms: u64::from(st.mtime) * 1000,
            },
            // The trait has no error here: a disk error shows as an empty inode
            // (and was logged by `fs_error`).
            Err(_) => InodeStat { dev: EXT2_DEV, ino: u64::from(self.ino.0), ..InodeStat::default() },
        }
    }

    fn kind(&self) -> FileKind {
        self.kind
    }

    fn lookup(&self, name: &str) -> Result<InodeRef, FsError> {
        self.dir()?;
        let inode = self.fs.with(|fs| {
            if name != "." && name != ".." {
                self.check_not_removed(fs)?;
            }
            let ino = fs.lookup(self.ino, name.as_bytes())?;
            self.fs.inode(fs, ino)
        })?;
        Ok(inode)
    }

    fn create(&self, name: &str, perm: u32) -> Result<InodeRef, FsError> {
        self.add(name, |fs, name| fs.create(self.ino, name, (perm & 0o7777) as u16))
    }

    fn mkdir(&self, name: &str, perm: u32) -> Result<InodeRef, FsError> {
        self.add(name, |fs, name| fs.mkdir(self.ino, name, (perm & 0o7777) as u16))
    }

    fn unlink(&self, name: &str) -> Result<(), FsError> {
        self.dir()?;
        let name = check_name(name)?;
        if let Some(ino) = self.file_freed_by_unlink(name) {
            self.fs.forget_cache_if_unheld(ino)?;
        }
        self.fs.change(|fs| fs.unlink(self.ino, name))
    }

    fn rmdir(&self, name: &str) -> Result<(), FsError> {
        self.dir()?;
        let name = check_name(name)?;
        self.fs.change(|fs| fs.rmdir(self.ino, name))
    }

    fn rename(&self, old_name: &str, new_dir: &InodeRef, new_name: &str) -> Result<(), FsError> {
        let new_dir = new_dir.as_any().downcast_ref::<Ext2Inode>().ok_or(FsError::CrossDevice)?;
        if !Arc::ptr_eq(&self.fs, &new_dir.fs) {
            return Err(FsError::CrossDevice);
        }
        self.dir()?;
        new_dir.dir()?;
        let old_name = check_name(old_name)?;
        let new_name = check_name(new_name)?;
        // A file that the rename replaces loses its last name.
        if let Some(ino) = new_dir.file_freed_by_unlink(new_name) {
            self.fs.forget_cache_if_unheld(ino)?;
        }
        self.fs.change(|fs| {
            new_dir.check_not_removed(fs)?;
            fs.rename(self.ino, old_name, new_dir.ino, new_name)
        })
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        self.file()?;
        match &self.cache {
            Some(cache) => cache.read_at(offset, buf),
            None => self.fs.with(|fs| fs.read_at(self.ino, offset, buf)),
        }
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, FsError> {
        self.file()?;
        match &self.cache {
            Some(cache) => self.write_through_cache(cache, offset, buf),
            None => self.fs.change(|fs| fs.write_at(self.ino, offset, buf)),
        }
    }

    fn append(&self, buf: &[u8]) -> Result<(usize, u64), FsError> {
        self.file()?;
        let Some(cache) = &self.cache else { return Err(FsError::Invalid) };
        // The append lock: the size and the write, together (appends do not interleave).
        let _append = cache.append_lock();
        let end = cache.size();
        let written = self.write_through_cache(cache, end, buf)?;
        Ok((written, end + written as u64))
    }

    fn truncate(&self, size: u64) -> Result<(), FsError> {
        self.file()?;
        if let Some(cache) = &self.cache {
            cache.truncate(size)?; // first: no later write-back writes past `size`
        }
        self.fs.change(|fs| fs.truncate(self.ino, size))
    }

    fn page_cache(&self) -> Option<Arc<PageCache>> {
        self.cache.clone()
    }

    fn getdents(&self, pos: u64, emit: &mut dyn FnMut(DirEntry<'_>) -> bool) -> Result<u64, FsError> {
        self.dir()?;
        // The VFS counts positions in entries (`d_off` is the index of the next
        // one), so the directory is read from its start and `pos` entries are
        // skipped: a position from lseek can never land inside an entry.
        let entries = self.fs.with(|fs| fs.read_dir(self.ino, 0))?;
        let mut at = pos;
        for entry in entries.iter().skip(usize::try_from(pos).unwrap_or(usize::MAX)) {
            let kind = match entry.file_type {
                FileType::Directory => FileKind::Directory,
                _ => FileKind::Regular,
            };
            let name = core::str::from_utf8(&entry.name).unwrap_or("?");
            if !emit(DirEntry { name, ino: u64::from(entry.ino.0), kind }) {
                break;
            }
            at += 1;
        }
        Ok(at)
    }

    fn sync(&self) -> Result<(), FsError> {
        self.fs.with(|fs| fs.sync())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
