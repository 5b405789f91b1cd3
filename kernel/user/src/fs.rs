//! File syscalls: one wrapper per call, returning `Result<_, Errno>`.
//!
//! Paths are `&CStr` (NUL-terminated, as the kernel reads them: `c"/tmp/a"`); fds
//! are `i32`, as in C. All of these are safe: the kernel writes only into the
//! buffers passed as `&mut`, and none of them changes memory mappings.

use core::ffi::CStr;

use abi::{Errno, Stat, nr};

use crate::syscall::{syscall0, syscall1, syscall2, syscall3, syscall4};

pub use abi::{AT_EMPTY_PATH, AT_FDCWD, SEEK_CUR, SEEK_END, SEEK_SET, o};

/// Turns a raw result into `Result<u64, Errno>`.
fn ret(raw: u64) -> Result<u64, Errno> {
    Errno::from_ret(raw)
}

/// Opens (or with `o::CREAT` creates, permission bits `mode`) the file at `path`; returns its fd.
pub fn open(path: &CStr, flags: u64, mode: u32) -> Result<i32, Errno> {
    // SAFETY: `path` is NUL-terminated and readable; open writes no memory of ours.
    ret(unsafe { syscall3(nr::OPEN, path.as_ptr() as u64, flags, mode as u64) }).map(|fd| fd as i32)
}

/// Opens `path` relative to the directory open as `dirfd` (or [`AT_FDCWD`]).
pub fn openat(dirfd: i32, path: &CStr, flags: u64, mode: u32) -> Result<i32, Errno> {
    // SAFETY: as in `open`.
    ret(unsafe { syscall4(nr::OPENAT, dirfd as i64 as u64, path.as_ptr() as u64, flags, mode as u64) }).map(|fd| fd as i32)
}

/// Reads into `buf` from `fd`; returns the bytes read, 0 at end of file.
pub fn read(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    ret(unsafe { syscall3(nr::READ, fd as u64, buf.as_mut_ptr() as u64, buf.len() as u64) }).map(|n| n as usize)
}

/// Closes `fd`.
pub fn close(fd: i32) -> Result<(), Errno> {
    // SAFETY: close touches no memory of ours.
    ret(unsafe { syscall1(nr::CLOSE, fd as u64) }).map(|_| ())
}

/// Moves the offset of `fd` ([`SEEK_SET`], [`SEEK_CUR`], [`SEEK_END`]); returns the new offset.
pub fn lseek(fd: i32, offset: i64, whence: u64) -> Result<u64, Errno> {
    // SAFETY: lseek touches no memory of ours.
    ret(unsafe { syscall3(nr::LSEEK, fd as u64, offset as u64, whence) })
}

/// Returns the stat data of `fd`.
pub fn fstat(fd: i32) -> Result<Stat, Errno> {
    let mut stat = Stat::default();
    // SAFETY: `stat` is valid for a write of size_of::<Stat>() bytes.
    ret(unsafe { syscall2(nr::FSTAT, fd as u64, &raw mut stat as u64) }).map(|_| stat)
}

/// Returns the stat data of the file at `path`.
pub fn stat(path: &CStr) -> Result<Stat, Errno> {
    let mut stat = Stat::default();
    // SAFETY: `path` is readable and NUL-terminated; `stat` is valid for the write.
    ret(unsafe { syscall2(nr::STAT, path.as_ptr() as u64, &raw mut stat as u64) }).map(|_| stat)
}

/// `newfstatat(dirfd, path, &stat, flags)`: the stat data of `path` relative to `dirfd`.
pub fn fstatat(dirfd: i32, path: &CStr, flags: u64) -> Result<Stat, Errno> {
    let mut stat = Stat::default();
    // SAFETY: as in `stat`.
    let raw = unsafe { syscall4(nr::NEWFSTATAT, dirfd as i64 as u64, path.as_ptr() as u64, &raw mut stat as u64, flags) };
    ret(raw).map(|_| stat)
}

/// Fills `buf` with `linux_dirent64` records of directory `fd` (see [`dirents`]);
/// returns the bytes filled, 0 at the end.
pub fn getdents64(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    ret(unsafe { syscall3(nr::GETDENTS64, fd as u64, buf.as_mut_ptr() as u64, buf.len() as u64) }).map(|n| n as usize)
}

/// One record of a `getdents64` buffer.
#[derive(Clone, Copy, Debug)]
pub struct Dirent<'a> {
    /// Inode number.
    pub ino: u64,
    /// Position of the next record (for `lseek`).
    pub off: i64,
    /// `abi::DT_*` type.
    pub kind: u8,
    /// The name (without its NUL).
    pub name: &'a [u8],
}

/// Returns the records in the first `len` bytes a `getdents64` filled.
pub fn dirents(buf: &[u8]) -> impl Iterator<Item = Dirent<'_>> {
    let mut at = 0;
    core::iter::from_fn(move || {
        if at + abi::DIRENT64_NAME_OFFSET > buf.len() {
            return None;
        }
        let record = &buf[at..];
        let reclen = u16::from_ne_bytes([record[16], record[17]]) as usize;
        if reclen == 0 || reclen > record.len() {
            return None;
        }
        let name = &record[abi::DIRENT64_NAME_OFFSET..reclen];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        let entry = Dirent {
            ino: u64::from_ne_bytes(record[0..8].try_into().ok()?),
            off: i64::from_ne_bytes(record[8..16].try_into().ok()?),
            kind: record[18],
            name,
        };
        at += reclen;
        Some(entry)
    })
}

/// Removes the file at `path`.
pub fn unlink(path: &CStr) -> Result<(), Errno> {
    // SAFETY: `path` is readable and NUL-terminated.
    ret(unsafe { syscall1(nr::UNLINK, path.as_ptr() as u64) }).map(|_| ())
}

/// Creates directory `path` with permission bits `mode`.
pub fn mkdir(path: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: `path` is readable and NUL-terminated.
    ret(unsafe { syscall2(nr::MKDIR, path.as_ptr() as u64, mode as u64) }).map(|_| ())
}

/// Removes the empty directory `path`.
pub fn rmdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: `path` is readable and NUL-terminated.
    ret(unsafe { syscall1(nr::RMDIR, path.as_ptr() as u64) }).map(|_| ())
}

/// Renames `old` to `new`.
pub fn rename(old: &CStr, new: &CStr) -> Result<(), Errno> {
    // SAFETY: both paths are readable and NUL-terminated.
    ret(unsafe { syscall2(nr::RENAME, old.as_ptr() as u64, new.as_ptr() as u64) }).map(|_| ())
}

/// Sets the size of the file open as `fd` to `length`.
pub fn ftruncate(fd: i32, length: i64) -> Result<(), Errno> {
    // SAFETY: ftruncate touches no memory of ours.
    ret(unsafe { syscall2(nr::FTRUNCATE, fd as u64, length as u64) }).map(|_| ())
}

/// Makes the data of `fd` reach its device.
pub fn fsync(fd: i32) -> Result<(), Errno> {
    // SAFETY: fsync touches no memory of ours.
    ret(unsafe { syscall1(nr::FSYNC, fd as u64) }).map(|_| ())
}

/// Writes every file's dirty pages to its disk (`sync(2)`, which cannot fail).
pub fn sync() {
    // SAFETY: sync touches no memory of ours.
    let _ = unsafe { syscall0(nr::SYNC) };
}

/// Returns a new fd (the lowest free) for the open file of `fd`.
pub fn dup(fd: i32) -> Result<i32, Errno> {
    // SAFETY: dup touches no memory of ours.
    ret(unsafe { syscall1(nr::DUP, fd as u64) }).map(|fd| fd as i32)
}

/// Makes `new_fd` refer to the open file of `fd` (closing what `new_fd` was).
pub fn dup2(fd: i32, new_fd: i32) -> Result<i32, Errno> {
    // SAFETY: dup2 touches no memory of ours.
    ret(unsafe { syscall2(nr::DUP2, fd as u64, new_fd as i64 as u64) }).map(|fd| fd as i32)
}

/// Creates a pipe; returns `[read end, write end]`.
pub fn pipe() -> Result<[i32; 2], Errno> {
    let mut fds = [-1i32; 2];
    // SAFETY: `fds` is valid for a write of 8 bytes.
    ret(unsafe { syscall1(nr::PIPE, fds.as_mut_ptr() as u64) }).map(|_| fds)
}

/// Creates a pipe with `flags` (`o::NONBLOCK`, `o::CLOEXEC`); returns `[read end, write end]`.
pub fn pipe2(flags: u64) -> Result<[i32; 2], Errno> {
    let mut fds = [-1i32; 2];
    // SAFETY: `fds` is valid for a write of 8 bytes.
    ret(unsafe { syscall2(nr::PIPE2, fds.as_mut_ptr() as u64, flags) }).map(|_| fds)
}

/// Changes the current directory to `path`.
pub fn chdir(path: &CStr) -> Result<(), Errno> {
    // SAFETY: `path` is readable and NUL-terminated.
    ret(unsafe { syscall1(nr::CHDIR, path.as_ptr() as u64) }).map(|_| ())
}

/// Writes the current directory's path and a NUL into `buf`; returns the path (without the NUL).
pub fn getcwd(buf: &mut [u8]) -> Result<&str, Errno> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let n = ret(unsafe { syscall2(nr::GETCWD, buf.as_mut_ptr() as u64, buf.len() as u64) })? as usize;
    core::str::from_utf8(&buf[..n.saturating_sub(1)]).map_err(|_| Errno::EINVAL)
}

/// Writes all of `buf` to `fd`, looping over short writes.
pub fn write_all(fd: i32, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        let n = crate::sys::write(fd, buf)?;
        if n == 0 {
            return Err(Errno::EIO);
        }
        buf = &buf[n..];
    }
    Ok(())
}

/// Reads until `buf` is full or end of file; returns the bytes read.
pub fn read_full(fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut done = 0;
    while done < buf.len() {
        match read(fd, &mut buf[done..])? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

/// Calls `f` with `text` as a NUL-terminated C string (copied into a stack
/// buffer); ENAMETOOLONG if it does not fit in `PATH_MAX` bytes, EINVAL if it holds a NUL.
pub fn with_cstr<R>(text: &str, f: impl FnOnce(&CStr) -> Result<R, Errno>) -> Result<R, Errno> {
    let mut buf = [0u8; abi::PATH_MAX];
    if text.len() >= buf.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    buf[..text.len()].copy_from_slice(text.as_bytes());
    let c = CStr::from_bytes_until_nul(&buf).map_err(|_| Errno::EINVAL)?;
    if c.count_bytes() != text.len() {
        return Err(Errno::EINVAL);
    }
    f(c)
}
