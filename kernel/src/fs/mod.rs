//! Files: a small VFS. File systems implement [`Inode`]; the rest of the kernel
//! sees only `Arc<dyn Inode>` ([`InodeRef`]), paths and open files.
//!
//! ```text
//!  syscalls (proc/fd_syscall.rs, proc/path_syscall.rs)
//!     │ fd ──> FdTable (per process) ──> Arc<OpenFile> (offset, flags; shared by dup/fork)
//!     │                                     ├── Console        (fds 0, 1, 2)
//!     │                                     ├── Inode(InodeRef) (a file or directory)
//!     │                                     └── PipeRead/PipeWrite(Arc<Pipe>)
//!     │ path ──> path::resolve (from the root or the cwd, `.` and `..`) ──> InodeRef
//!     v
//!  trait Inode: lookup, create, mkdir, unlink, rmdir, rename, read_at, write_at,
//!               truncate, getdents, stat       <── ext2 (ext2fs), tmpfs
//! ```
//!
//! | module | what it does |
//! |---|---|
//! | [`ext2fs`] | ext2 on the root disk (the `ext2` crate) as the root file system |
//! | [`tmpfs`] | directories and files in memory (pages from the frame allocator): `/` when there is no root disk |
//! | [`path`] | path lookup, the parent of a path, the path of a directory (`getcwd`) |
//! | [`file`] | open files ([`file::OpenFile`]) and the per-process fd table ([`file::FdTable`]) |
//! | [`ext2fs_pages`] | the page cache's `PageIo` for an ext2 file: a page read or written through the ext2 crate |
//! | [`procfs`] | `/proc`: the Linux-format files (a table of entries in `procfs/mod.rs`), made when read |
//! | [`pipe`] | pipes: a one-page ring buffer, readers and writers sleeping on wait queues |
//!
//! One file system is mounted, at `/`: [`init`] mounts ext2 from the disk registered
//! as `root` (the runner attaches one unless `--root none`), or a tmpfs when there
//! is no such disk or the disk is refused (damaged or foreign: it is left
//! untouched). Nothing above the [`Inode`] trait knows which one answers.
//! procfs is mounted at `/proc`. Mounting is minimal: a mount covers a name in the
//! root directory ([`lookup_mount`], asked by `path::resolve` before the root's own
//! entries), and the mounted root's `..` is `/`.
//!
//! Lock order: a file's offset lock (`OpenFile`), then the file system's own locks
//! (tmpfs: its namespace lock, then an inode's lock); all are sleeping
//! [`crate::sync::Mutex`]es, never taken under an `IrqMutex`.

use alloc::sync::Arc;
use core::any::Any;

use abi::Errno;

pub mod ext2fs;
pub mod ext2fs_pages;
pub mod drop_caches;
pub mod file;
pub mod path;
pub mod pipe;
pub mod procfs;
pub mod tmpfs;

/// A reference to an inode of any file system.
pub type InodeRef = Arc<dyn Inode>;

/// What an inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file: bytes at offsets.
    Regular,
    /// A directory: names of other inodes.
    Directory,
}

/// Why a file-system operation failed; each maps to one Linux errno ([`FsError::errno`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsError {
    /// No such entry (ENOENT).
    NotFound,
    /// The name exists already (EEXIST).
    Exists,
    /// A directory was needed (ENOTDIR).
    NotDirectory,
    /// A directory is not allowed here (EISDIR).
    IsDirectory,
    /// The directory still has entries (ENOTEMPTY).
    NotEmpty,
    /// The file system is full (ENOSPC).
    NoSpace,
    /// No memory for the kernel's own bookkeeping (ENOMEM).
    NoMemory,
    /// A bad argument, such as moving a directory into itself (EINVAL).
    Invalid,
    /// A name longer than `NAME_MAX` or a path longer than `PATH_MAX` (ENAMETOOLONG).
    NameTooLong,
    /// The two paths are on different file systems (EXDEV).
    CrossDevice,
    /// The root cannot be removed or renamed (EBUSY).
    Busy,
    /// An offset or size beyond what a file can have (EFBIG).
    TooBig,
    /// The device failed (EIO).
    Io,
}

impl FsError {
    /// Returns the errno Linux reports for this error.
    pub fn errno(self) -> Errno {
        match self {
            FsError::NotFound => Errno::ENOENT,
            FsError::Exists => Errno::EEXIST,
            FsError::NotDirectory => Errno::ENOTDIR,
            FsError::IsDirectory => Errno::EISDIR,
            FsError::NotEmpty => Errno::ENOTEMPTY,
            FsError::NoSpace => Errno::ENOSPC,
            FsError::NoMemory => Errno::ENOMEM,
            FsError::Invalid => Errno::EINVAL,
            FsError::NameTooLong => Errno::ENAMETOOLONG,
            FsError::CrossDevice => Errno::EXDEV,
            FsError::Busy => Errno::EBUSY,
            FsError::TooBig => Errno::EFBIG,
            FsError::Io => Errno::EIO,
        }
    }
}

impl From<FsError> for Errno {
    fn from(e: FsError) -> Errno {
        e.errno()
    }
}

/// What `stat` reports about an inode (the kernel's side of `abi::Stat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InodeStat {
    /// The file system's device number.
    pub dev: u64,
    /// The inode number, unique within its file system.
    pub ino: u64,
    /// `S_IF*` type bits and permission bits.
    pub mode: u32,
    /// Names that lead to it (0 once unlinked while open).
    pub nlink: u64,
    /// Size in bytes (for a directory: its entries, as the file system counts).
    pub size: u64,
    /// 512-byte blocks of storage it holds.
    pub blocks: u64,
    /// Last modification, in milliseconds since boot (there is no wall clock).
    pub mtime_ms: u64,
}

/// One entry of a directory, as [`Inode::getdents`] reports it.
#[derive(Clone, Copy, Debug)]
pub struct DirEntry<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its inode number.
    pub ino: u64,
    /// What it is.
    pub kind: FileKind,
}

/// An inode: a file or a directory of some file system.
///
/// Directory operations take plain names (no `/`, never `.` or `..` except in
/// [`Inode::lookup`]); the VFS splits paths. Operations that make no sense for the
/// inode's kind fail: a directory operation on a file with `NotDirectory`, a data
/// operation on a directory with `IsDirectory`.
pub trait Inode: Send + Sync {
    /// Returns its stat data.
    fn stat(&self) -> InodeStat;

    /// Returns what it is.
    fn kind(&self) -> FileKind;

    /// Returns the inode `name` names in this directory (`.` itself, `..` its parent;
    /// the root's parent is the root).
    fn lookup(&self, name: &str) -> Result<InodeRef, FsError>;

    /// Creates an empty regular file `name` with permission bits `perm`.
    fn create(&self, name: &str, perm: u32) -> Result<InodeRef, FsError>;

    /// Creates an empty directory `name` with permission bits `perm`.
    fn mkdir(&self, name: &str, perm: u32) -> Result<InodeRef, FsError>;

    /// Removes the entry `name`, which must not be a directory. An open file lives
    /// on until its last reference goes.
    fn unlink(&self, name: &str) -> Result<(), FsError>;

    /// Removes the empty directory `name`.
    fn rmdir(&self, name: &str) -> Result<(), FsError>;

    /// Moves entry `old_name` of this directory to `new_name` in `new_dir` (of the
    /// same file system, else `CrossDevice`), replacing what is there as Linux's
    /// rename(2) allows.
    fn rename(&self, old_name: &str, new_dir: &InodeRef, new_name: &str) -> Result<(), FsError>;

    /// Copies bytes from `offset` into `buf`; returns how many (0 at or past the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FsError>;

    /// Copies `buf` to `offset`, growing the file if needed; returns how many bytes
    /// were written (fewer than asked only when the file system filled up after
    /// some were).
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, FsError>;

    /// Writes `buf` at the end of the file, atomically with respect to other
    /// appends; returns the bytes written and the new end.
    fn append(&self, buf: &[u8]) -> Result<(usize, u64), FsError>;

    /// Sets the size to `size`: cuts the data beyond, or adds a hole that reads as zeros.
    fn truncate(&self, size: u64) -> Result<(), FsError>;

    /// Reports directory entries from position `pos` on (0 = the start, `.` and `..`
    /// included) to `emit`, until `emit` returns false (no room) or the directory
    /// ends; returns the position after the last entry `emit` accepted.
    fn getdents(&self, pos: u64, emit: &mut dyn FnMut(DirEntry<'_>) -> bool) -> Result<u64, FsError>;

    /// Writes its data and metadata to the device (nothing to do in memory). For an
    /// inode with a page cache, [`sync_inode`] writes the cached dirty pages first.
    fn sync(&self) -> Result<(), FsError>;

    /// Returns its page cache, if its data goes through one (`mm::page_cache`):
    /// `fsync` writes its dirty pages, file mappings map its frames.
    fn page_cache(&self) -> Option<Arc<crate::mm::page_cache::PageCache>> {
        None
    }

    /// Returns itself as `Any`, so that a file system can recognise its own inodes
    /// (`rename` between two of its directories).
    fn as_any(&self) -> &dyn Any;
}

/// fsync: writes the inode's dirty cached pages (if it has a page cache), then its
/// own data and metadata ([`Inode::sync`]).
pub fn sync_inode(inode: &dyn Inode) -> Result<(), FsError> {
    let cached = inode.page_cache().map_or(Ok(()), |cache| cache.write_back(0, u64::MAX));
    let synced = inode.sync();
    cached.and(synced)
}

/// Writes every file's dirty pages to its disk now: what `sync` does, and what
/// the kernel does before it powers off (as Linux syncs and unmounts its file
/// systems at shutdown), so that nothing written only to the page cache is lost.
/// Returns the first error; the other files are still written.
pub fn sync_all() -> Result<(), FsError> {
    let mut result = Ok(());
    for cache in crate::mm::page_cache::all_caches() {
        if let Err(e) = cache.write_back(0, u64::MAX) {
            result = result.and(Err(e));
        }
    }
    // Then the mounted file system's metadata, and one flush of its disk's cache.
    if let Some(root) = ROOT.get()
        && let Err(e) = root.sync()
    {
        result = result.and(Err(e));
    }
    result
}

/// The root of the mounted file system.
static ROOT: spin::Once<InodeRef> = spin::Once::new();

/// The root of procfs, mounted at `/proc`.
static PROC: spin::Once<InodeRef> = spin::Once::new();

/// What is mounted at `/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootKind {
    /// ext2 on the root disk.
    Ext2,
    /// A tmpfs: there was no root disk, or it was refused.
    Tmpfs,
}

static ROOT_KIND: spin::Once<RootKind> = spin::Once::new();

/// Mounts the root file system at `/` (see the module doc). Called once at boot,
/// after the drivers have registered the disks.
pub fn init() {
    ROOT.call_once(|| {
        let (root, kind) = match crate::block::find("root") {
            Some(dev) => match ext2fs::mount(dev) {
                Ok(root) => (root, RootKind::Ext2),
                Err(e) => {
                    log::error!("ext2: the root disk is refused and left untouched: {e}; / is a tmpfs");
                    (tmpfs::TmpFs::new_root(), RootKind::Tmpfs)
                }
            },
            None => {
                log::info!("fs: no root disk: / is a tmpfs");
                (tmpfs::TmpFs::new_root(), RootKind::Tmpfs)
            }
        };
        ROOT_KIND.call_once(|| kind);
        root
    });
    PROC.call_once(procfs::new_root);
}

/// Returns what is mounted at `/`.
///
/// # Panics
/// If [`init`] has not run (a boot-order bug).
pub fn root_kind() -> RootKind {
    *ROOT_KIND.get().expect("fs::root_kind: no file system mounted")
}

/// Returns the root of the file system mounted on `name` in directory `dir`, if
/// one is: only names in the root directory can be mount points.
pub fn lookup_mount(dir: &InodeRef, name: &str) -> Option<InodeRef> {
    let (at, root) = (dir.stat(), root().stat());
    if name != "proc" || (at.dev, at.ino) != (root.dev, root.ino) {
        return None;
    }
    PROC.get().cloned()
}

/// Returns the root directory.
///
/// # Panics
/// If [`init`] has not run (a boot-order bug).
pub fn root() -> InodeRef {
    ROOT.get().expect("fs::root: no file system mounted").clone()
}
