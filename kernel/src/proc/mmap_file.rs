//! mmap(2) of a file: the argument rules of Linux, and a VMA backed by the file's
//! page cache (`Backing::File`; the fault side is `mm/filemap.rs`).
//!
//! ```text
//!  mmap(addr, len, prot, MAP_PRIVATE | MAP_SHARED, fd, offset)
//!   fd not open ............................. EBADF
//!   a pipe, the console, a directory ........ ENODEV
//!   offset not page-aligned ................. EINVAL (checked by the caller)
//!   length 0 ................................ EINVAL
//!   offset + length past 2^64 ............... EOVERFLOW
//!   fd not open for reading ................. EACCES
//!   MAP_SHARED + PROT_WRITE, fd O_RDONLY ..... EACCES
//!   then: the space enters the file rmap (which keeps the file open: the mapping
//!   survives close and unlink), and a VMA Backing::File { cache, offset } is made.
//!   Nothing is read now: each page comes from the page cache at its first touch.
//! ```
//! A file system without a page cache (tmpfs) gets what this module did before the
//! page cache existed: a private mapping is a snapshot copied in now (a conforming
//! `MAP_PRIVATE`: POSIX leaves unspecified whether later file changes show through),
//! and `MAP_SHARED` is ENODEV.
//!
//! `msync` ([`msync`]): MS_SYNC writes the dirty pages of the shared file mappings
//! in the range back now and waits; MS_ASYNC starts the write-back of their files
//! (the writeback thread, `mm::writeback::start_async`) and returns at once, as
//! Linux's MS_ASYNC leaves the pages to its flushers; MS_INVALIDATE is accepted (the
//! mapping *is* the page cache: nothing to drop).
//! `munmap` and exit leave dirty pages to the writeback thread: a PTE's Dirty bit
//! moves to its page when the PTE goes, and `read` sees the page cache anyway.

use abi::{Errno, map, prot};

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::fd_syscall::file_of;
use super::task;
use crate::fs::file::FileObject;
use crate::fs::{FileKind, Inode};
use crate::mm::PAGE_SIZE;
use crate::mm::addr_space::{Backing, MapRequest, VmProt};
use crate::mm::file_rmap;

/// mmap of `fd` at `offset` (page-aligned, checked by the caller); `flags` holds
/// `MAP_SHARED` or `MAP_PRIVATE`. Returns the mapping's address.
pub fn mmap_file(addr: u64, len: u64, prot_bits: u64, flags: u64, fd: u64, offset: u64) -> Result<u64, Errno> {
    let file = file_of(fd)?;
    let inode = match &file.object {
        FileObject::Inode(inode) if inode.kind() == FileKind::Regular => inode.clone(),
        _ => return Err(Errno::ENODEV),
    };
    if !file.is_readable() {
        return Err(Errno::EACCES);
    }
    let is_shared = flags & map::TYPE == map::SHARED;
    if is_shared && prot_bits & prot::WRITE != 0 && !file.is_writable() {
        return Err(Errno::EACCES);
    }
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    // The file offset of the mapping's end must exist (Linux: EOVERFLOW); a
    // length that cannot be rounded up to pages is ENOMEM, as for any mmap.
    let rounded = len.checked_next_multiple_of(PAGE_SIZE).ok_or(Errno::ENOMEM)?;
    offset.checked_add(rounded).ok_or(Errno::EOVERFLOW)?;
    drop(file); // the mapping does not keep the fd: it survives close
    let Some(cache) = inode.page_cache() else {
        if is_shared {
            return Err(Errno::ENODEV);
        }
        return mmap_copy(addr, len, prot_bits, flags, &inode, offset);
    };
    let space = task::current_space().ok_or(Errno::EPERM)?;
    let request = MapRequest {
        is_shared,
        is_fixed: flags & map::FIXED != 0,
        is_noreplace: flags & map::FIXED_NOREPLACE != 0,
        is_populate: flags & map::POPULATE != 0,
    };
    let owner: file_rmap::FileOwner = Arc::new(inode);
    let prot = VmProt::from_bits_truncate(prot_bits as u8);
    let backing = Backing::File { cache: cache.id(), offset };
    let result = {
        // Entry and VMA under one hold of the space's lock: a `prune_space` by
        // another thread of this space sees both or neither (see its doc).
        let mut locked = space.lock();
        file_rmap::add(&cache, owner, locked.id(), &space); // first: a fault on the new VMA finds the cache
        locked.mmap_backed(addr, len, prot, request, backing)
    };
    // A failed mmap (or a MAP_FIXED one over other files) may leave files unmapped.
    file_rmap::prune_space(&space);
    file_rmap::release_unmapped();
    result.map(|a| a.as_u64()).map_err(super::syscall::errno_of)
}

/// The mapping of a file with no page cache: an anonymous private mapping with the
/// file's bytes copied in now; the pages wholly past the end of the file become
/// PROT_NONE, so that touching them kills the process (Linux: SIGBUS).
fn mmap_copy(addr: u64, len: u64, prot_bits: u64, flags: u64, inode: &Arc<dyn Inode>, offset: u64) -> Result<u64, Errno> {
    let space = task::current_space().ok_or(Errno::EPERM)?;
    let request = MapRequest {
        is_shared: false,
        is_fixed: flags & map::FIXED != 0,
        is_noreplace: flags & map::FIXED_NOREPLACE != 0,
        is_populate: false,
    };
    let start = space.lock().mmap(addr, len, VmProt::READ_WRITE, request).map_err(super::syscall::errno_of)?.as_u64();
    let len = len.next_multiple_of(PAGE_SIZE);
    let undo = |e: Errno| {
        let _ = space.lock().munmap(start, len);
        e
    };
    // Copy the file's bytes in, page by page, until the end of the file or of the mapping.
    let mut page = [0u8; PAGE_SIZE as usize];
    let mut at = 0;
    while at < len {
        let n = inode.read_at(offset + at, &mut page).map_err(|e| undo(e.errno()))?;
        if n == 0 {
            break;
        }
        super::vm_rw::write_remote(&space, start + at, &page[..n]).map_err(undo)?;
        at += PAGE_SIZE;
    }
    // `at` is now the end of the last page holding file bytes.
    let prot = VmProt::from_bits_truncate(prot_bits as u8);
    let mut locked = space.lock();
    if at > 0
        && let Err(e) = locked.mprotect(start, at, prot)
    {
        let _ = locked.munmap(start, len);
        return Err(super::syscall::errno_of(e));
    }
    if at < len {
        locked.mprotect(start + at, len - at, VmProt::from_bits_truncate(0)).map_err(super::syscall::errno_of)?;
    }
    Ok(start)
}

/// munmap(2), then the file rmap forgets the files the space no longer maps.
pub fn munmap(addr: u64, len: u64) -> Result<u64, Errno> {
    let space = task::current_space().ok_or(Errno::EPERM)?;
    space.lock().munmap(addr, len).map_err(super::syscall::errno_of)?;
    if file_rmap::nr_mapped_files() > 0 {
        file_rmap::prune_space(&space);
        file_rmap::release_unmapped();
    }
    Ok(0)
}

/// msync(2) (see the module doc): `addr` page-aligned and only the known flags, not
/// both MS_SYNC and MS_ASYNC (EINVAL); a range with unmapped parts is ENOMEM (after
/// the mapped parts are written, as Linux); a write error is EIO.
pub fn msync(addr: u64, len: u64, flags: u64) -> Result<u64, Errno> {
    use abi::ms::{ASYNC as MS_ASYNC, INVALIDATE as MS_INVALIDATE, SYNC as MS_SYNC};
    if !addr.is_multiple_of(PAGE_SIZE) || flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MS_ASYNC != 0 && flags & MS_SYNC != 0 {
        return Err(Errno::EINVAL);
    }
    let end = addr.checked_add(len.checked_next_multiple_of(PAGE_SIZE).ok_or(Errno::ENOMEM)?).ok_or(Errno::ENOMEM)?;
    if len == 0 {
        return Ok(0);
    }
    if end > crate::mm::layout::USER_MAP_END {
        return Err(Errno::ENOMEM);
    }
    let space = task::current_space().ok_or(Errno::EPERM)?;
    // The file pages of the range: (cache, first index, last index), and whether a hole was found.
    let (ranges, has_hole) = {
        let space = space.lock();
        let mut ranges = Vec::new();
        let mut covered = addr;
        for vma in space.vmas().iter().filter(|v| v.end.as_u64() > addr && v.start.as_u64() < end) {
            let (start, stop) = (vma.start.as_u64().max(addr), vma.end.as_u64().min(end));
            if start > covered {
                break;
            }
            covered = stop;
            if let Backing::File { cache, offset } = vma.backing
                && vma.flags.is_shared()
            {
                let first = (offset + (start - vma.start.as_u64())) / PAGE_SIZE;
                ranges.push((cache, first, first + (stop - start) / PAGE_SIZE - 1));
            }
        }
        (ranges, covered < end)
    };
    let mut result = Ok(0);
    for (cache_id, first, last) in ranges {
        let Some(cache) = file_rmap::cache_of(cache_id) else { continue };
        let written = match flags & MS_ASYNC {
            0 => cache.sync_range(first, last),
            _ => crate::mm::writeback::start_async(&cache),
        };
        if written.is_err() {
            result = Err(Errno::EIO);
        }
    }
    if has_hole {
        return Err(Errno::ENOMEM);
    }
    result
}
