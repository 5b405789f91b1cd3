//! mmap(2) of a file: the argument rules of Linux, and `MAP_PRIVATE` mappings made
//! by copying the file's bytes into the new mapping's own pages.
//!
//! ```text
//!  mmap(addr, len, prot, MAP_PRIVATE, fd, offset)
//!   fd not open ............................. EBADF
//!   a pipe, the console, a directory ........ ENODEV
//!   offset not page-aligned ................. EINVAL (checked by the caller)
//!   fd not open for reading ................. EACCES
//!   MAP_SHARED + PROT_WRITE, fd O_RDONLY ..... EACCES
//!   MAP_SHARED otherwise .................... ENODEV (needs the page cache: not yet)
//!   then: an anonymous private mapping of len bytes; the file bytes from
//!   `offset` are copied in, page by page; the pages wholly past the end of the
//!   file become PROT_NONE, so that touching them kills the process (Linux: SIGBUS)
//! ```
//!
//! A private mapping's pages are a snapshot of the file at mmap time. POSIX leaves
//! it unspecified whether later changes to the file show through a `MAP_PRIVATE`
//! mapping, so the snapshot is a conforming private mapping: the mapping survives
//! `close` and `unlink`, a write through it never reaches the file, and fork
//! shares its pages copy-on-write like any private page. What it does not have yet
//! is Linux's laziness and sharing: the pages are copied now, one set per mapping,
//! not mapped from the page cache on the first touch (issue #12's file mapping
//! through `mm/page_cache.rs`, next).

use abi::{Errno, map, prot};

use super::fd_syscall::file_of;
use super::task;
use crate::fs::FileKind;
use crate::fs::file::FileObject;
use crate::mm::PAGE_SIZE;
use crate::mm::addr_space::{MapRequest, VmProt};

/// mmap of `fd` at `offset` (page-aligned, checked by the caller); `sharing` is
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
    if flags & map::TYPE == map::SHARED {
        if prot_bits & prot::WRITE != 0 && !file.is_writable() {
            return Err(Errno::EACCES);
        }
        return Err(Errno::ENODEV);
    }
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    drop(file); // the mapping does not keep the fd: it survives close
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
