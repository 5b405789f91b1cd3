//! Open files and the per-process file-descriptor table.
//!
//! ```text
//!  process A: FdTable [0 1 2 3 4] ──┐           ┌──> OpenFile { Console }
//!  process B (A's fork child):      ├── Arc ────┼──> OpenFile { Inode, offset 812, O_RDWR }
//!            FdTable [0 1 2 3 4] ───┘           └──> OpenFile { PipeWrite(Arc<Pipe>) }
//! ```
//! An fd is an index into the table; the entry is an `Arc<OpenFile>`. `dup`, `dup2`
//! and `fork` copy the `Arc`, not the file, so the copies share one offset and one
//! set of flags, as on Unix; `open` makes a new [`OpenFile`] with its own offset.
//! The open file goes when its last fd closes (or its last process exits): the drop
//! of a pipe end counts the end closed, which is how a reader sees end of file.
//!
//! The table lives in the task entry (`proc::task::Task::files`), under the task
//! table's spinlock: syscalls take their `Arc<OpenFile>` out under the lock and
//! work with it after, and a closed file is dropped after the lock is released
//! (dropping a pipe end wakes sleepers, which takes the task lock).

use alloc::sync::Arc;
use alloc::vec::Vec;

use abi::{Errno, o};

use super::pipe::{End, Pipe};
use super::{FileKind, InodeRef};
use crate::sync::Mutex;

/// The most fds a process may have open (Linux's default `RLIMIT_NOFILE`); an fd is
/// below it.
pub const MAX_FDS: usize = 1024;

/// What an open file reads from and writes to.
pub enum FileObject {
    /// The serial console: writes print, reads take lines typed on it (`crate::tty`).
    Console,
    /// A file or directory of a file system.
    Inode(InodeRef),
    /// A pipe's read end or write end.
    Pipe(Arc<Pipe>, End),
}

/// One open file: what `open` (or `pipe`) created, shared by the fds `dup` and
/// `fork` make from it.
pub struct OpenFile {
    /// What it reads and writes.
    pub object: FileObject,
    /// The `open` flags that stay: access mode, `O_APPEND`, `O_NONBLOCK`.
    pub flags: u64,
    /// The file offset (a directory's: the `getdents` position). A sleeping lock held
    /// for a whole read or write, so that two processes sharing the file do not
    /// read the same bytes (Linux's `f_pos_lock`).
    pub offset: Mutex<u64>,
}

impl OpenFile {
    /// Returns a new open file of `object` with `flags`.
    pub fn new(object: FileObject, flags: u64) -> Arc<OpenFile> {
        if let FileObject::Pipe(pipe, end) = &object {
            pipe.open_end(*end);
        }
        let kept = flags & (o::ACCMODE | o::APPEND | o::NONBLOCK);
        Arc::new(OpenFile { object, flags: kept, offset: Mutex::new(0) })
    }

    /// Returns true if it was opened for reading.
    pub fn is_readable(&self) -> bool {
        matches!(self.flags & o::ACCMODE, o::RDONLY | o::RDWR)
    }

    /// Returns true if it was opened for writing.
    pub fn is_writable(&self) -> bool {
        matches!(self.flags & o::ACCMODE, o::WRONLY | o::RDWR)
    }

    /// Returns its inode if it is a directory.
    pub fn dir_inode(&self) -> Option<&InodeRef> {
        match &self.object {
            FileObject::Inode(inode) if inode.kind() == FileKind::Directory => Some(inode),
            _ => None,
        }
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        if let FileObject::Pipe(pipe, end) = &self.object {
            pipe.close_end(*end);
        }
    }
}

/// A process's open files by fd, and its current directory.
pub struct FdTable {
    fds: Vec<Option<Arc<OpenFile>>>,
    /// The current directory, where relative paths start.
    pub cwd: InodeRef,
}

impl FdTable {
    /// Returns the table a new process starts with: fds 0, 1 and 2 on the console
    /// (one open file, as a terminal's three fds are), the cwd at the root.
    pub fn new_console() -> FdTable {
        let console = OpenFile::new(FileObject::Console, o::RDWR);
        FdTable { fds: alloc::vec![Some(console.clone()), Some(console.clone()), Some(console)], cwd: super::root() }
    }

    /// Returns a copy for a forked child: the same open files (shared, offsets and
    /// all) and the same cwd; ENOMEM if the heap cannot hold the table.
    pub fn try_clone(&self) -> Result<FdTable, Errno> {
        let mut fds = Vec::new();
        fds.try_reserve_exact(self.fds.len()).map_err(|_| Errno::ENOMEM)?;
        fds.extend(self.fds.iter().cloned());
        Ok(FdTable { fds, cwd: self.cwd.clone() })
    }

    /// Returns the open file of `fd`, or EBADF.
    pub fn get(&self, fd: u64) -> Result<Arc<OpenFile>, Errno> {
        let index = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.fds.get(index).and_then(Option::clone).ok_or(Errno::EBADF)
    }

    /// Puts `file` at the lowest free fd; EMFILE if none is left.
    pub fn insert(&mut self, file: Arc<OpenFile>) -> Result<u64, Errno> {
        let free = self.fds.iter().position(Option::is_none);
        let fd = match free {
            Some(fd) => fd,
            None if self.fds.len() < MAX_FDS => {
                self.fds.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
                self.fds.push(None);
                self.fds.len() - 1
            }
            None => return Err(Errno::EMFILE),
        };
        self.fds[fd] = Some(file);
        Ok(fd as u64)
    }

    /// Puts `file` at `fd`, returning what was there (for the caller to drop once no
    /// lock is held); EBADF if `fd` is out of range.
    pub fn replace(&mut self, fd: u64, file: Arc<OpenFile>) -> Result<Option<Arc<OpenFile>>, Errno> {
        let index = usize::try_from(fd).ok().filter(|&i| i < MAX_FDS).ok_or(Errno::EBADF)?;
        if index >= self.fds.len() {
            self.fds.try_reserve(index + 1 - self.fds.len()).map_err(|_| Errno::ENOMEM)?;
            self.fds.resize(index + 1, None);
        }
        Ok(self.fds[index].replace(file))
    }

    /// Takes `fd` out of the table and returns its open file (the caller drops it
    /// once no lock is held); EBADF if it is not open.
    pub fn remove(&mut self, fd: u64) -> Result<Arc<OpenFile>, Errno> {
        let index = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        self.fds.get_mut(index).and_then(Option::take).ok_or(Errno::EBADF)
    }

    /// Returns the number of open fds.
    pub fn nr_open(&self) -> usize {
        self.fds.iter().filter(|f| f.is_some()).count()
    }
}
