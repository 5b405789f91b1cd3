//! tmpfs: a file system that lives in memory, the root file system until ext2 on
//! the root disk can take its place.
//!
//! Every inode is a [`TmpInode`] behind an `Arc`: a directory holds its entries in
//! a `BTreeMap` (name -> inode, so `getdents` lists them in name order) and a weak
//! link to its parent (for `..`); a regular file holds its size and its data
//! pages in a `BTreeMap` (page index -> one frame).
//!
//! File data lives in whole frames from the frame allocator ([`OwnedFrames`],
//! state Kernel), not in heap buffers: a file grows one page at a time with no
//! large contiguous allocation, a hole (past a `truncate` or an `lseek`) takes no
//! page, every page is counted ([`nr_pages`]), and an allocation that fails is an
//! error (`ENOSPC`/`ENOMEM`) rather than a heap panic. The pages leave the user
//! reserve alone, and the whole tmpfs may hold at most half of RAM ([`page_limit`],
//! Linux's default `size=50%`): its pages cannot be swapped or reclaimed, so
//! without a limit a program could pin all of memory where the OOM killer cannot
//! get it back (killing the writer does not delete its files).
//!
//! Locks (all sleeping [`Mutex`]es): the file system's `namespace_lock`, held by
//! every operation that changes a directory (create, mkdir, unlink, rmdir, rename),
//! so that they see each other whole; then an inode's `body`, held one at a time,
//! except that `rmdir` holds the parent's and then the child's (parent before
//! child: the tree has no cycle, so neither have the waits).

use alloc::collections::BTreeMap;
use alloc::collections::btree_map::Entry;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use core::any::Any;
use core::sync::atomic::{AtomicU64, Ordering};

use super::{DirEntry, FileKind, FsError, Inode, InodeRef, InodeStat};
use crate::mm::frame::{OwnedFrames, Reserve};
use crate::mm::{Order, PAGE_SIZE};
use crate::sync::Mutex;

/// The largest size a file may have (Linux's `MAX_LFS_FILESIZE` on 64-bit).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// The device number `stat` reports for tmpfs inodes.
const TMPFS_DEV: u64 = 0x15;

/// Data pages held by every tmpfs file now.
static NR_PAGES: AtomicU64 = AtomicU64::new(0);

/// Returns the number of data pages tmpfs files hold now.
pub fn nr_pages() -> u64 {
    NR_PAGES.load(Ordering::Relaxed)
}

/// Returns the most data pages all tmpfs files together may hold: half of RAM.
pub fn page_limit() -> u64 {
    crate::mm::frame::buddyinfo().nr_managed_frames / 2
}

/// One mounted tmpfs.
pub struct TmpFs {
    next_ino: AtomicU64,
    /// Held by every operation that changes a directory (see the module doc).
    namespace_lock: Mutex<()>,
}

impl TmpFs {
    /// Creates an empty tmpfs and returns its root directory (inode 1).
    pub fn new_root() -> InodeRef {
        let fs = Arc::new(TmpFs { next_ino: AtomicU64::new(1), namespace_lock: Mutex::new(()) });
        let root: InodeRef = TmpInode::new(&fs, FileKind::Directory, 0o755, None);
        root
    }
}

/// A tmpfs inode.
pub struct TmpInode {
    ino: u64,
    kind: FileKind,
    perm: u32,
    fs: Arc<TmpFs>,
    /// Itself, to hand out `Arc`s from `&self` (`lookup(".")`).
    me: Weak<TmpInode>,
    nlink: AtomicU64,
    mtime_ms: AtomicU64,
    body: Mutex<Body>,
}

enum Body {
    File(FileData),
    Dir(DirData),
}

struct FileData {
    size: u64,
    /// Page index -> the page's frame; a missing index is a hole (zeros).
    pages: BTreeMap<u64, OwnedFrames>,
}

struct DirData {
    entries: BTreeMap<String, Arc<TmpInode>>,
    /// The parent directory; `None` for the root (its `..` is itself).
    parent: Option<Weak<TmpInode>>,
    /// Removed by `rmdir` while still referenced (a cwd): nothing can be created in it.
    is_removed: bool,
}

impl TmpInode {
    fn new(fs: &Arc<TmpFs>, kind: FileKind, perm: u32, parent: Option<Weak<TmpInode>>) -> Arc<TmpInode> {
        let body = match kind {
            FileKind::Regular => Body::File(FileData { size: 0, pages: BTreeMap::new() }),
            FileKind::Directory => Body::Dir(DirData { entries: BTreeMap::new(), parent, is_removed: false }),
        };
        Arc::new_cyclic(|me| TmpInode {
            ino: fs.next_ino.fetch_add(1, Ordering::Relaxed),
            kind,
            perm: perm & 0o7777,
            fs: fs.clone(),
            me: me.clone(),
            nlink: AtomicU64::new(if kind == FileKind::Directory { 2 } else { 1 }),
            mtime_ms: AtomicU64::new(crate::arch::timer::uptime_ms()),
            body: Mutex::new(body),
        })
    }

    fn me(&self) -> Arc<TmpInode> {
        self.me.upgrade().expect("tmpfs: an inode in use has no Arc")
    }

    fn touch(&self) {
        self.mtime_ms.store(crate::arch::timer::uptime_ms(), Ordering::Relaxed);
    }

    /// Runs `f` on this directory's entries with its lock held.
    fn with_dir<R>(&self, f: impl FnOnce(&mut DirData) -> Result<R, FsError>) -> Result<R, FsError> {
        match &mut *self.body.lock() {
            Body::Dir(dir) => f(dir),
            Body::File(_) => Err(FsError::NotDirectory),
        }
    }

    /// Runs `f` on this file's data with its lock held.
    fn with_file<R>(&self, f: impl FnOnce(&mut FileData) -> Result<R, FsError>) -> Result<R, FsError> {
        match &mut *self.body.lock() {
            Body::File(file) => f(file),
            Body::Dir(_) => Err(FsError::IsDirectory),
        }
    }

    /// Adds a new inode of `kind` under `name`.
    fn add_entry(&self, name: &str, kind: FileKind, perm: u32) -> Result<InodeRef, FsError> {
        check_name(name)?;
        let _changing = self.fs.namespace_lock.lock();
        let child = self.with_dir(|dir| {
            if dir.is_removed {
                return Err(FsError::NotFound);
            }
            if dir.entries.contains_key(name) {
                return Err(FsError::Exists);
            }
            let child = TmpInode::new(&self.fs, kind, perm, Some(self.me.clone()));
            dir.entries.insert(String::from(name), child.clone());
            Ok(child)
        })?;
        if kind == FileKind::Directory {
            self.nlink.fetch_add(1, Ordering::Relaxed); // the child's `..`
        }
        self.touch();
        Ok(child)
    }

    /// Returns true if `self` is `dir` or one of its ancestors. Walks `..` links;
    /// called under the namespace lock, so no link changes meanwhile.
    fn is_ancestor_of(&self, dir: &Arc<TmpInode>) -> bool {
        let mut at = dir.clone();
        loop {
            if at.ino == self.ino {
                return true;
            }
            let parent = match &*at.body.lock() {
                Body::Dir(d) => d.parent.as_ref().and_then(Weak::upgrade),
                Body::File(_) => None,
            };
            match parent {
                Some(p) => at = p,
                None => return false,
            }
        }
    }
}

/// Refuses names a directory entry cannot have.
fn check_name(name: &str) -> Result<(), FsError> {
    if name.len() > abi::NAME_MAX {
        return Err(FsError::NameTooLong);
    }
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(FsError::Invalid);
    }
    Ok(())
}

/// Allocates one zeroed data page, within the tmpfs limit; reclaims once if the
/// frame allocator has none.
fn alloc_data_page() -> Result<OwnedFrames, FsError> {
    if NR_PAGES.load(Ordering::Relaxed) >= page_limit() {
        return Err(FsError::NoSpace);
    }
    let page = match OwnedFrames::new_zeroed_leaving(Order(0), Reserve::User) {
        Ok(page) => page,
        Err(_) => {
            crate::mm::reclaim::direct_reclaim();
            OwnedFrames::new_zeroed_leaving(Order(0), Reserve::User).map_err(|_| FsError::NoSpace)?
        }
    };
    NR_PAGES.fetch_add(1, Ordering::Relaxed);
    Ok(page)
}

impl FileData {
    /// Frees the pages wholly past `size` and zeroes the tail of the page `size` cuts.
    fn cut_to(&mut self, size: u64) {
        let first_gone = size.div_ceil(PAGE_SIZE);
        let gone = self.pages.split_off(&first_gone);
        NR_PAGES.fetch_sub(gone.len() as u64, Ordering::Relaxed);
        drop(gone);
        let tail = (size % PAGE_SIZE) as usize;
        if tail != 0
            && let Some(page) = self.pages.get_mut(&(size / PAGE_SIZE))
        {
            page.write_bytes(tail, &[0u8; PAGE_SIZE as usize][tail..]);
        }
    }
}

impl Drop for TmpInode {
    fn drop(&mut self) {
        if let Body::File(file) = self.body.get_mut() {
            NR_PAGES.fetch_sub(file.pages.len() as u64, Ordering::Relaxed);
        }
    }
}

impl Inode for TmpInode {
    fn stat(&self) -> InodeStat {
        let (size, nr_pages, type_bits) = match &*self.body.lock() {
            Body::File(f) => (f.size, f.pages.len() as u64, abi::mode::S_IFREG),
            Body::Dir(d) => (d.entries.len() as u64 * 32, 0, abi::mode::S_IFDIR),
        };
        InodeStat {
            dev: TMPFS_DEV,
            ino: self.ino,
            mode: type_bits | self.perm,
            nlink: self.nlink.load(Ordering::Relaxed),
            size,
            blocks: nr_pages * (PAGE_SIZE / 512),
            mtime_ms: self.mtime_ms.load(Ordering::Relaxed),
        }
    }

    fn kind(&self) -> FileKind {
        self.kind
    }

    fn lookup(&self, name: &str) -> Result<InodeRef, FsError> {
        let found = self.with_dir(|dir| {
            Ok(match name {
                "." => Some(self.me()),
                ".." => Some(dir.parent.as_ref().and_then(Weak::upgrade).unwrap_or_else(|| self.me())),
                _ if dir.is_removed => None,
                _ => dir.entries.get(name).cloned(),
            })
        })?;
        match found {
            Some(inode) => Ok(inode),
            None if name.len() > abi::NAME_MAX => Err(FsError::NameTooLong),
            None => Err(FsError::NotFound),
        }
    }

    fn create(&self, name: &str, perm: u32) -> Result<InodeRef, FsError> {
        self.add_entry(name, FileKind::Regular, perm)
    }

    fn mkdir(&self, name: &str, perm: u32) -> Result<InodeRef, FsError> {
        self.add_entry(name, FileKind::Directory, perm)
    }

    fn unlink(&self, name: &str) -> Result<(), FsError> {
        let _changing = self.fs.namespace_lock.lock();
        let gone = self.with_dir(|dir| {
            let child = dir.entries.get(name).ok_or(FsError::NotFound)?;
            if child.kind == FileKind::Directory {
                return Err(FsError::IsDirectory);
            }
            Ok(dir.entries.remove(name))
        })?;
        if let Some(child) = gone {
            child.nlink.store(0, Ordering::Relaxed);
        }
        self.touch();
        Ok(()) // the child's pages go with its last reference
    }

    fn rmdir(&self, name: &str) -> Result<(), FsError> {
        let _changing = self.fs.namespace_lock.lock();
        let gone = self.with_dir(|dir| {
            let child = dir.entries.get(name).ok_or(FsError::NotFound)?;
            child.with_dir(|c| {
                if !c.entries.is_empty() {
                    return Err(FsError::NotEmpty);
                }
                c.is_removed = true;
                Ok(())
            })?;
            Ok(dir.entries.remove(name))
        })?;
        if let Some(child) = gone {
            child.nlink.store(0, Ordering::Relaxed);
            self.nlink.fetch_sub(1, Ordering::Relaxed);
        }
        self.touch();
        Ok(())
    }

    fn rename(&self, old_name: &str, new_dir: &InodeRef, new_name: &str) -> Result<(), FsError> {
        let new_dir = new_dir.as_any().downcast_ref::<TmpInode>().ok_or(FsError::CrossDevice)?;
        if !Arc::ptr_eq(&self.fs, &new_dir.fs) {
            return Err(FsError::CrossDevice);
        }
        check_name(new_name)?;
        let _changing = self.fs.namespace_lock.lock();
        let moving = self.with_dir(|d| d.entries.get(old_name).cloned().ok_or(FsError::NotFound))?;
        let target = new_dir.with_dir(|d| {
            if d.is_removed {
                return Err(FsError::NotFound);
            }
            Ok(d.entries.get(new_name).cloned())
        })?;
        if let Some(target) = &target {
            if Arc::ptr_eq(target, &moving) {
                return Ok(()); // two names of one inode: rename(2) does nothing
            }
            match (moving.kind, target.kind) {
                (FileKind::Directory, FileKind::Regular) => return Err(FsError::NotDirectory),
                (FileKind::Regular, FileKind::Directory) => return Err(FsError::IsDirectory),
                (FileKind::Directory, FileKind::Directory) => {
                    if target.with_dir(|t| Ok(!t.entries.is_empty()))? {
                        return Err(FsError::NotEmpty);
                    }
                }
                (FileKind::Regular, FileKind::Regular) => {}
            }
        }
        if moving.kind == FileKind::Directory && moving.is_ancestor_of(&new_dir.me()) {
            return Err(FsError::Invalid); // a directory into itself or its own subtree
        }
        // Validated: now change both directories.
        self.with_dir(|d| Ok(d.entries.remove(old_name)))?;
        let replaced = new_dir.with_dir(|d| Ok(d.entries.insert(String::from(new_name), moving.clone())))?;
        if let Some(old) = replaced {
            old.nlink.store(0, Ordering::Relaxed);
            if old.kind == FileKind::Directory {
                old.with_dir(|o| {
                    o.is_removed = true;
                    Ok(())
                })?;
                new_dir.nlink.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if moving.kind == FileKind::Directory {
            moving.with_dir(|m| {
                m.parent = Some(new_dir.me.clone());
                Ok(())
            })?;
            self.nlink.fetch_sub(1, Ordering::Relaxed);
            new_dir.nlink.fetch_add(1, Ordering::Relaxed);
        }
        self.touch();
        new_dir.touch();
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        self.with_file(|file| {
            if offset >= file.size {
                return Ok(0);
            }
            let len = buf.len().min((file.size - offset) as usize);
            let mut done = 0;
            while done < len {
                let at = offset + done as u64;
                let in_page = (at % PAGE_SIZE) as usize;
                let n = (len - done).min(PAGE_SIZE as usize - in_page);
                match file.pages.get(&(at / PAGE_SIZE)) {
                    Some(page) => page.read_bytes(in_page, &mut buf[done..done + n]),
                    None => buf[done..done + n].fill(0), // a hole
                }
                done += n;
            }
            Ok(len)
        })
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, FsError> {
        let written = self.with_file(|file| write_locked(file, offset, buf))?;
        self.touch();
        Ok(written)
    }

    fn append(&self, buf: &[u8]) -> Result<(usize, u64), FsError> {
        let result = self.with_file(|file| {
            let written = write_locked(file, file.size, buf)?;
            Ok((written, file.size))
        })?;
        self.touch();
        Ok(result)
    }

    fn truncate(&self, size: u64) -> Result<(), FsError> {
        if size > MAX_FILE_SIZE {
            return Err(FsError::TooBig);
        }
        self.with_file(|file| {
            if size < file.size {
                file.cut_to(size);
            }
            file.size = size;
            Ok(())
        })?;
        self.touch();
        Ok(())
    }

    fn getdents(&self, pos: u64, emit: &mut dyn FnMut(DirEntry<'_>) -> bool) -> Result<u64, FsError> {
        let parent_ino = self.lookup("..")?.stat().ino;
        self.with_dir(|dir| {
            let dots = [(".", self.ino), ("..", parent_ino)];
            let dots = dots.iter().map(|&(name, ino)| DirEntry { name, ino, kind: FileKind::Directory });
            let named = dir.entries.iter().map(|(name, inode)| DirEntry { name, ino: inode.ino, kind: inode.kind });
            let mut at = pos;
            for entry in dots.chain(named).skip(pos as usize) {
                if !emit(entry) {
                    break;
                }
                at += 1;
            }
            Ok(at)
        })
    }

    fn sync(&self) -> Result<(), FsError> {
        Ok(()) // memory is where the data lives: nothing to write
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Writes `buf` at `offset` into `file` (locked by the caller), page by page;
/// returns the bytes written (short if tmpfs fills up after the first page).
fn write_locked(file: &mut FileData, offset: u64, buf: &[u8]) -> Result<usize, FsError> {
    let end = offset.checked_add(buf.len() as u64).filter(|&e| e <= MAX_FILE_SIZE).ok_or(FsError::TooBig)?;
    let mut done = 0;
    while done < buf.len() {
        let at = offset + done as u64;
        let in_page = (at % PAGE_SIZE) as usize;
        let n = (buf.len() - done).min(PAGE_SIZE as usize - in_page);
        let index = at / PAGE_SIZE;
        let page = match file.pages.entry(index) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => match alloc_data_page() {
                Ok(page) => entry.insert(page),
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            },
        };
        page.write_bytes(in_page, &buf[done..done + n]);
        done += n;
    }
    file.size = file.size.max(offset + done as u64);
    debug_assert!(offset + done as u64 <= end);
    Ok(done)
}
