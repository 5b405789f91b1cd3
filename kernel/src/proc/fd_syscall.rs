//! The file syscalls that take a file descriptor: read, write, close, lseek, fstat,
//! getdents64, ftruncate, fsync, dup, dup2, pipe, pipe2.
//!
//! Each handler looks its fd up in the running process's table
//! ([`task::with_files`], a short hold of the task lock that clones the
//! `Arc<OpenFile>`), then works on the open file with no spinlock held: user copies
//! may fault and sleep, a pipe may wait. Data moves between the file and user
//! memory through a kernel bounce buffer, one page at a time, so a bad user pointer
//! is EFAULT from `copy_to_user`/`copy_from_user` (or a short count if some bytes
//! already moved, as Linux reports it). A closed file is dropped after the task
//! lock is released: dropping a pipe end wakes the other end's sleepers.
//!
//! Errnos follow Linux: a bad fd is EBADF, reading a write-only fd (or writing a
//! read-only one) EBADF, reading a directory EISDIR, seeking a pipe or the console
//! ESPIPE, `ftruncate` of what is not a regular file open for writing EINVAL.

use alloc::sync::Arc;
use alloc::vec::Vec;

use abi::{Errno, o};

use super::task;
use super::uaccess::{self, copy_from_user, copy_to_user};
use crate::fs::file::{FileObject, OpenFile};
use crate::fs::pipe::{End, Pipe};
use crate::fs::{FileKind, InodeStat};

/// The most bytes one read or write moves (Linux's `MAX_RW_COUNT`).
const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// The bounce buffer's size.
const CHUNK_BYTES: usize = 4096;

/// Returns the running process's open file `fd`.
pub fn file_of(fd: u64) -> Result<Arc<OpenFile>, Errno> {
    task::with_files(|files| files.get(fd))
}

/// Returns a zeroed kernel buffer of `len` bytes, or ENOMEM.
fn bounce_buffer(len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
    buf.resize(len, 0);
    Ok(buf)
}

/// read(2).
pub fn sys_read(fd: u64, buf: u64, len: u64) -> Result<u64, Errno> {
    let file = file_of(fd)?;
    if !file.is_readable() {
        return Err(Errno::EBADF);
    }
    let len = len.min(MAX_RW_COUNT) as usize;
    match &file.object {
        FileObject::Console => {
            let mut copy_out = |bytes: &[u8]| copy_to_user(buf, bytes);
            crate::tty::read(len, task::current_is_killed, &mut copy_out).map(|n| n as u64)
        }
        FileObject::Pipe(pipe, _) => {
            let is_nonblock = file.flags & o::NONBLOCK != 0;
            let mut copy_out = |at: usize, bytes: &[u8]| copy_to_user(buf.wrapping_add(at as u64), bytes);
            pipe.read(len, is_nonblock, task::current_is_killed, &mut copy_out).map(|n| n as u64)
        }
        FileObject::Inode(inode) => {
            if inode.kind() == FileKind::Directory {
                return Err(Errno::EISDIR);
            }
            let mut pos = file.offset.lock();
            if let Some(cache) = inode.page_cache() {
                // A cached file: from its frames straight to the user's buffer.
                let n = uaccess::copy_file_to_user(&cache, *pos, buf, len)?;
                *pos += n as u64;
                return Ok(n as u64);
            }
            let mut chunk = bounce_buffer(CHUNK_BYTES.min(len))?;
            let mut done = 0;
            while done < len {
                let want = (len - done).min(chunk.len());
                let n = inode.read_at(*pos, &mut chunk[..want])?;
                if n == 0 {
                    break;
                }
                if let Err(e) = copy_to_user(buf.wrapping_add(done as u64), &chunk[..n]) {
                    return if done == 0 { Err(e) } else { Ok(done as u64) };
                }
                *pos += n as u64;
                done += n;
            }
            Ok(done as u64)
        }
    }
}

/// write(2).
pub fn sys_write(fd: u64, buf: u64, len: u64) -> Result<u64, Errno> {
    let file = file_of(fd)?;
    if !file.is_writable() {
        return Err(Errno::EBADF);
    }
    let len = len.min(MAX_RW_COUNT) as usize;
    match &file.object {
        FileObject::Console => write_console(buf, len),
        FileObject::Pipe(pipe, _) => {
            let is_nonblock = file.flags & o::NONBLOCK != 0;
            let mut copy_in = |at: usize, out: &mut [u8]| copy_from_user(out, buf.wrapping_add(at as u64));
            pipe.write(len, is_nonblock, task::current_is_killed, &mut copy_in).map(|n| n as u64)
        }
        FileObject::Inode(inode) => {
            let is_append = file.flags & o::APPEND != 0;
            let mut pos = file.offset.lock();
            let mut chunk = bounce_buffer(CHUNK_BYTES.min(len))?;
            let mut done = 0;
            while done < len {
                let n = (len - done).min(chunk.len());
                if let Err(e) = copy_from_user(&mut chunk[..n], buf.wrapping_add(done as u64)) {
                    return if done == 0 { Err(e) } else { Ok(done as u64) };
                }
                let result = if is_append {
                    inode.append(&chunk[..n]).map(|(written, end)| {
                        *pos = end;
                        written
                    })
                } else {
                    inode.write_at(*pos, &chunk[..n]).inspect(|&written| *pos += written as u64)
                };
                match result {
                    Ok(written) => done += written,
                    Err(e) if done == 0 => return Err(e.into()),
                    Err(_) => break,
                }
                if done < len && result.is_ok_and(|w| w < n) {
                    break; // the file system filled up
                }
            }
            Ok(done as u64)
        }
    }
}

/// Prints `len` bytes of user memory at `buf` on the console.
fn write_console(buf: u64, len: usize) -> Result<u64, Errno> {
    let mut chunk = [0u8; 256];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(chunk.len());
        if let Err(e) = copy_from_user(&mut chunk[..n], buf.wrapping_add(done as u64)) {
            return if done == 0 { Err(e) } else { Ok(done as u64) };
        }
        crate::print!("{}", alloc::string::String::from_utf8_lossy(&chunk[..n]));
        done += n;
    }
    Ok(done as u64)
}

/// close(2).
pub fn sys_close(fd: u64) -> Result<u64, Errno> {
    let file = task::with_files(|files| files.remove(fd))?;
    drop(file); // with no lock held: the last close of a pipe end wakes sleepers
    Ok(0)
}

/// lseek(2).
pub fn sys_lseek(fd: u64, offset: u64, whence: u64) -> Result<u64, Errno> {
    let file = file_of(fd)?;
    let FileObject::Inode(inode) = &file.object else {
        return Err(Errno::ESPIPE);
    };
    let is_dir = inode.kind() == FileKind::Directory;
    let mut pos = file.offset.lock();
    let base = match whence {
        abi::SEEK_SET => 0,
        abi::SEEK_CUR => *pos as i64,
        abi::SEEK_END if !is_dir => inode.stat().size as i64,
        _ => return Err(Errno::EINVAL),
    };
    let new = base.checked_add(offset as i64).filter(|&p| p >= 0).ok_or(Errno::EINVAL)?;
    *pos = new as u64;
    Ok(new as u64)
}

/// Returns the stat data of an open file.
pub fn stat_of(file: &OpenFile) -> InodeStat {
    match &file.object {
        FileObject::Inode(inode) => inode.stat(),
        FileObject::Console => InodeStat { dev: 0, ino: 1, mode: abi::mode::S_IFCHR | 0o620, nlink: 1, ..Default::default() },
        FileObject::Pipe(pipe, _) => InodeStat {
            dev: 0,
            ino: Arc::as_ptr(pipe) as u64 >> 4,
            mode: abi::mode::S_IFIFO | 0o600,
            nlink: 1,
            size: pipe.nr_bytes() as u64,
            ..Default::default()
        },
    }
}

/// Copies `stat` to user memory at `out` as a Linux x86-64 `struct stat`.
pub fn stat_to_user(stat: &InodeStat, out: u64) -> Result<u64, Errno> {
    let (secs, nsecs) = ((stat.mtime_ms / 1000) as i64, ((stat.mtime_ms % 1000) * 1_000_000) as i64);
    let linux = abi::Stat {
        st_dev: stat.dev,
        st_ino: stat.ino,
        st_nlink: stat.nlink,
        st_mode: stat.mode,
        st_size: stat.size as i64,
        st_blksize: 4096,
        st_blocks: stat.blocks as i64,
        st_atime: secs,
        st_atime_nsec: nsecs,
        st_mtime: secs,
        st_mtime_nsec: nsecs,
        st_ctime: secs,
        st_ctime_nsec: nsecs,
        ..Default::default()
    };
    // SAFETY: `abi::Stat` is repr(C), made of integers with explicit padding fields
    // (no uninitialised byte; its size is asserted in `abi`), so its bytes are readable.
    let bytes = unsafe { core::slice::from_raw_parts((&raw const linux).cast::<u8>(), size_of::<abi::Stat>()) };
    copy_to_user(out, bytes)?;
    Ok(0)
}

/// fstat(2).
pub fn sys_fstat(fd: u64, out: u64) -> Result<u64, Errno> {
    let file = file_of(fd)?;
    stat_to_user(&stat_of(&file), out)
}

/// getdents64(2): fills `buf` with `struct linux_dirent64` records from the
/// directory's position on; returns the bytes filled, 0 at the end; EINVAL if not
/// even one record fits.
pub fn sys_getdents64(fd: u64, buf: u64, len: u64) -> Result<u64, Errno> {
    let file = file_of(fd)?;
    let inode = file.dir_inode().ok_or(Errno::ENOTDIR)?;
    let mut out = bounce_buffer((len.min(64 * 1024)) as usize)?;
    let mut pos = file.offset.lock();
    let mut used = 0;
    let mut next_pos = *pos;
    let mut is_too_small = false;
    let end = inode.getdents(*pos, &mut |entry| {
        let reclen = (abi::DIRENT64_NAME_OFFSET + entry.name.len() + 1).next_multiple_of(8);
        if used + reclen > out.len() {
            is_too_small = used == 0;
            return false;
        }
        next_pos += 1;
        let record = &mut out[used..used + reclen];
        record[0..8].copy_from_slice(&entry.ino.to_ne_bytes());
        record[8..16].copy_from_slice(&(next_pos as i64).to_ne_bytes());
        record[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
        record[18] = match entry.kind {
            FileKind::Directory => abi::DT_DIR,
            FileKind::Regular => abi::DT_REG,
        };
        let name_end = abi::DIRENT64_NAME_OFFSET + entry.name.len();
        record[abi::DIRENT64_NAME_OFFSET..name_end].copy_from_slice(entry.name.as_bytes());
        record[name_end..].fill(0);
        used += reclen;
        true
    })?;
    if is_too_small {
        return Err(Errno::EINVAL);
    }
    copy_to_user(buf, &out[..used])?;
    *pos = end;
    Ok(used as u64)
}

/// ftruncate(2).
pub fn sys_ftruncate(fd: u64, length: u64) -> Result<u64, Errno> {
    if (length as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let file = file_of(fd)?;
    match &file.object {
        FileObject::Inode(inode) if inode.kind() == FileKind::Regular && file.is_writable() => {
            inode.truncate(length)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// fsync(2): a file's data (its dirty page-cache pages) and metadata reach its
/// device (tmpfs: at once).
pub fn sys_fsync(fd: u64) -> Result<u64, Errno> {
    let file = file_of(fd)?;
    match &file.object {
        FileObject::Inode(inode) => crate::fs::sync_inode(&**inode).map(|_| 0).map_err(Errno::from),
        _ => Err(Errno::EINVAL),
    }
}

/// dup(2).
pub fn sys_dup(fd: u64) -> Result<u64, Errno> {
    task::with_files(|files| {
        let file = files.get(fd)?;
        files.insert(file)
    })
}

/// dup2(2).
pub fn sys_dup2(fd: u64, new_fd: u64) -> Result<u64, Errno> {
    let replaced = task::with_files(|files| {
        let file = files.get(fd)?;
        if fd == new_fd {
            return Ok(None);
        }
        files.replace(new_fd, file)
    })?;
    drop(replaced); // closed with no lock held
    Ok(new_fd)
}

/// pipe2(2) (and pipe(2), with `flags` 0): `fds[0]` the read end, `fds[1]` the write
/// end. `O_NONBLOCK` is kept; `O_CLOEXEC` is accepted (there is no exec yet).
pub fn sys_pipe2(fds_out: u64, flags: u64) -> Result<u64, Errno> {
    if flags & !(o::CLOEXEC | o::NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let pipe = Arc::new(Pipe::new().ok_or(Errno::ENOMEM)?);
    let nonblock = flags & o::NONBLOCK;
    let reader = OpenFile::new(FileObject::Pipe(pipe.clone(), End::Read), o::RDONLY | nonblock);
    let writer = OpenFile::new(FileObject::Pipe(pipe, End::Write), o::WRONLY | nonblock);
    let (read_fd, write_fd) = task::with_files(|files| {
        let read_fd = files.insert(reader)?;
        match files.insert(writer) {
            Ok(write_fd) => Ok((read_fd, write_fd)),
            Err(e) => {
                // Dropped here, under the task lock: safe only because nobody can
                // wait on a pipe no fd has reached yet (a wake-up with no waiter
                // takes no lock).
                let _ = files.remove(read_fd);
                Err(e)
            }
        }
    })?;
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&(read_fd as i32).to_ne_bytes());
    bytes[4..].copy_from_slice(&(write_fd as i32).to_ne_bytes());
    if let Err(e) = copy_to_user(fds_out, &bytes) {
        let ends = task::with_files(|files| Ok((files.remove(read_fd), files.remove(write_fd))));
        drop(ends);
        return Err(e);
    }
    Ok(0)
}
