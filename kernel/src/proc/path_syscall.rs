//! The file syscalls that take a path: open, openat, stat, newfstatat, unlink,
//! mkdir, rmdir, rename, chdir, getcwd.
//!
//! A path is copied in from user memory ([`user_path`]: NUL-terminated, at most
//! `PATH_MAX` bytes with the NUL, else ENAMETOOLONG; a bad pointer EFAULT), then
//! resolved by `fs::path` from the root, the cwd, or an `openat` directory fd.
//! The rules for the last component follow Linux's namei: `mkdir` of an existing
//! name (`.` and `..` included) is EEXIST, `unlink` of a directory EISDIR, `rmdir`
//! of `.` EINVAL and of `..` ENOTEMPTY, `rename` of `/`, `.` or `..` EBUSY, and a
//! trailing `/` demands a directory (ENOTDIR otherwise).

use alloc::string::String;

use abi::{Errno, o};

use super::fd_syscall::{file_of, stat_of, stat_to_user};
use super::task;
use super::uaccess::copy_from_user;
use crate::fs::file::{FileObject, OpenFile};
use crate::fs::{FileKind, FsError, InodeRef, path};

/// Copies the NUL-terminated path at user address `addr` into a kernel string.
///
/// Reads page by page, so a path that ends just before an unmapped page is fine.
/// A path that is not UTF-8 is refused with EINVAL (Linux takes any bytes).
pub fn user_path(addr: u64) -> Result<String, Errno> {
    let mut bytes = alloc::vec::Vec::new();
    let mut at = addr;
    loop {
        let page_left = (4096 - (at % 4096)) as usize;
        let n = page_left.min(abi::PATH_MAX + 1 - bytes.len());
        let mut chunk = [0u8; 256];
        let n = n.min(chunk.len());
        copy_from_user(&mut chunk[..n], at)?;
        if let Some(nul) = chunk[..n].iter().position(|&b| b == 0) {
            bytes.try_reserve(nul).map_err(|_| Errno::ENOMEM)?;
            bytes.extend_from_slice(&chunk[..nul]);
            break;
        }
        bytes.try_reserve(n).map_err(|_| Errno::ENOMEM)?;
        bytes.extend_from_slice(&chunk[..n]);
        if bytes.len() >= abi::PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        at += n as u64;
    }
    String::from_utf8(bytes).map_err(|_| Errno::EINVAL)
}

/// Returns the running process's cwd.
fn cwd() -> Result<InodeRef, Errno> {
    task::with_files(|files| Ok(files.cwd.clone()))
}

/// Returns where a relative `path` of an `*at` call starts: the cwd for
/// `AT_FDCWD`, else the directory open as `dirfd` (EBADF, ENOTDIR).
fn start_dir(dirfd: u64, path: &str) -> Result<InodeRef, Errno> {
    if path.starts_with('/') || dirfd as i64 == abi::AT_FDCWD {
        return cwd();
    }
    let file = file_of(dirfd)?;
    file.dir_inode().cloned().ok_or(Errno::ENOTDIR)
}

/// open(2).
pub fn sys_open(path: u64, flags: u64, mode: u64) -> Result<u64, Errno> {
    sys_openat(abi::AT_FDCWD as u64, path, flags, mode)
}

/// openat(2).
pub fn sys_openat(dirfd: u64, path_addr: u64, flags: u64, mode: u64) -> Result<u64, Errno> {
    let path = user_path(path_addr)?;
    if flags & o::ACCMODE == o::ACCMODE || flags & (o::CREAT | o::DIRECTORY) == o::CREAT | o::DIRECTORY {
        return Err(Errno::EINVAL);
    }
    let start = start_dir(dirfd, &path)?;
    let inode = if flags & o::CREAT != 0 {
        open_creating(&start, &path, flags, (mode & 0o7777) as u32)?
    } else {
        path::resolve(&start, &path)?
    };
    let is_writable = matches!(flags & o::ACCMODE, o::WRONLY | o::RDWR);
    match inode.kind() {
        FileKind::Directory if is_writable || flags & o::CREAT != 0 => return Err(Errno::EISDIR),
        FileKind::Regular if flags & o::DIRECTORY != 0 => return Err(Errno::ENOTDIR),
        FileKind::Regular if flags & o::TRUNC != 0 => inode.truncate(0)?,
        _ => {}
    }
    let file = OpenFile::new(FileObject::Inode(inode), flags);
    // The table gets a clone: if it is full (EMFILE), the last reference drops
    // here, with no spinlock held (a disk file system's last close may sleep).
    let fd = task::with_files(|files| files.insert(file.clone()));
    drop(file);
    fd
}

/// The `O_CREAT` half of open: returns the existing file (EEXIST with `O_EXCL`)
/// or a new one.
fn open_creating(start: &InodeRef, path: &str, flags: u64, perm: u32) -> Result<InodeRef, Errno> {
    let (dir, name, is_dir_only) = path::resolve_parent(start, path).map_err(|e| match e {
        FsError::Busy => Errno::EISDIR, // "/"
        e => e.errno(),
    })?;
    match dir.lookup(name) {
        Ok(_) if flags & o::EXCL != 0 => Err(Errno::EEXIST),
        Ok(existing) => Ok(existing),
        Err(FsError::NotFound) if is_dir_only => Err(Errno::EISDIR),
        Err(FsError::NotFound) => match dir.create(name, perm) {
            // Another process created it since our lookup: open theirs (O_EXCL: EEXIST).
            Err(FsError::Exists) if flags & o::EXCL == 0 => Ok(dir.lookup(name)?),
            other => Ok(other?),
        },
        Err(e) => Err(e.errno()),
    }
}

/// newfstatat(2); stat(2) is `newfstatat(AT_FDCWD, path, out, 0)`.
pub fn sys_newfstatat(dirfd: u64, path_addr: u64, out: u64, flags: u64) -> Result<u64, Errno> {
    if flags & !(abi::AT_SYMLINK_NOFOLLOW | abi::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path_addr)?;
    if path.is_empty() && flags & abi::AT_EMPTY_PATH != 0 {
        let stat = if dirfd as i64 == abi::AT_FDCWD { cwd()?.stat() } else { stat_of(&*file_of(dirfd)?) };
        return stat_to_user(&stat, out);
    }
    let start = start_dir(dirfd, &path)?;
    let inode = path::resolve(&start, &path)?;
    stat_to_user(&inode.stat(), out)
}

/// stat(2).
pub fn sys_stat(path_addr: u64, out: u64) -> Result<u64, Errno> {
    sys_newfstatat(abi::AT_FDCWD as u64, path_addr, out, 0)
}

/// unlink(2).
pub fn sys_unlink(path_addr: u64) -> Result<u64, Errno> {
    let path = user_path(path_addr)?;
    let (dir, name, is_dir_only) = path::resolve_parent(&cwd()?, &path).map_err(|e| match e {
        FsError::Busy => Errno::EISDIR, // "/"
        e => e.errno(),
    })?;
    if name == "." || name == ".." {
        return Err(Errno::EISDIR);
    }
    let target = dir.lookup(name)?;
    if target.kind() == FileKind::Directory {
        return Err(Errno::EISDIR);
    }
    if is_dir_only {
        return Err(Errno::ENOTDIR);
    }
    dir.unlink(name)?;
    Ok(0)
}

/// mkdir(2).
pub fn sys_mkdir(path_addr: u64, mode: u64) -> Result<u64, Errno> {
    let path = user_path(path_addr)?;
    let (dir, name, _) = path::resolve_parent(&cwd()?, &path).map_err(|e| match e {
        FsError::Busy => Errno::EEXIST, // "/"
        e => e.errno(),
    })?;
    if name == "." || name == ".." {
        return Err(Errno::EEXIST);
    }
    dir.mkdir(name, (mode & 0o7777) as u32)?;
    Ok(0)
}

/// rmdir(2).
pub fn sys_rmdir(path_addr: u64) -> Result<u64, Errno> {
    let path = user_path(path_addr)?;
    let (dir, name, _) = path::resolve_parent(&cwd()?, &path)?;
    match name {
        "." => return Err(Errno::EINVAL),
        ".." => return Err(Errno::ENOTEMPTY),
        _ => {}
    }
    if dir.lookup(name)?.kind() != FileKind::Directory {
        return Err(Errno::ENOTDIR);
    }
    dir.rmdir(name)?;
    Ok(0)
}

/// rename(2).
pub fn sys_rename(old_addr: u64, new_addr: u64) -> Result<u64, Errno> {
    let (old_path, new_path) = (user_path(old_addr)?, user_path(new_addr)?);
    let cwd = cwd()?;
    let (old_dir, old_name, old_dir_only) = path::resolve_parent(&cwd, &old_path)?;
    let (new_dir, new_name, new_dir_only) = path::resolve_parent(&cwd, &new_path)?;
    if [old_name, new_name].iter().any(|n| *n == "." || *n == "..") {
        return Err(Errno::EBUSY);
    }
    let moving = old_dir.lookup(old_name)?;
    if moving.kind() != FileKind::Directory && (old_dir_only || new_dir_only) {
        return Err(Errno::ENOTDIR);
    }
    old_dir.rename(old_name, &new_dir, new_name)?;
    Ok(0)
}

/// chdir(2).
pub fn sys_chdir(path_addr: u64) -> Result<u64, Errno> {
    let path = user_path(path_addr)?;
    let dir = path::resolve(&cwd()?, &path)?;
    if dir.kind() != FileKind::Directory {
        return Err(Errno::ENOTDIR);
    }
    let old = task::with_files(|files| Ok(core::mem::replace(&mut files.cwd, dir)))?;
    drop(old);
    Ok(0)
}

/// getcwd(2): the cwd's absolute path and a NUL into `buf`; returns the length with
/// the NUL. ERANGE if `size` is too small, ENOENT if the cwd was removed.
pub fn sys_getcwd(buf: u64, size: u64) -> Result<u64, Errno> {
    let mut text = path::path_of(&cwd()?)?;
    text.push('\0');
    if text.len() as u64 > size {
        return Err(Errno::ERANGE);
    }
    super::uaccess::copy_to_user(buf, text.as_bytes())?;
    Ok(text.len() as u64)
}
