//! The file system's one error type, [`Ext2Error`], and its Linux errno.
//!
//! Every public operation of [`crate::Ext2`] returns `Result<T, Ext2Error>`. The VFS
//! above turns an error into the errno a system call returns with
//! [`Ext2Error::errno`]; the `Display` text is the message the kernel logs when it
//! refuses a disk at mount time.

use blockdev::BlockError;

/// What went wrong in a file-system operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ext2Error {
    /// A path component or directory entry does not exist (`ENOENT`).
    NotFound,
    /// The name is already taken in that directory (`EEXIST`).
    Exists,
    /// A directory was needed and this inode is something else (`ENOTDIR`).
    NotDir,
    /// The operation needs a non-directory and got a directory (`EISDIR`).
    IsDir,
    /// `rmdir` or a rename over a directory that still has entries (`ENOTEMPTY`).
    NotEmpty,
    /// No free block or no free inode is left (`ENOSPC`).
    NoSpace,
    /// A name longer than 255 bytes (`ENAMETOOLONG`).
    NameTooLong,
    /// A bad argument: a name with `/` or NUL, moving a directory under itself,
    /// removing `.` (`EINVAL`).
    InvalidArgument,
    /// The file would grow past what the block map can address (`EFBIG`).
    FileTooBig,
    /// Too many symbolic links while resolving a path (`ELOOP`).
    TooManySymlinks,
    /// An inode already has the most hard links ext2 allows (`EMLINK`).
    TooManyLinks,
    /// The disk reported an error (`EIO`).
    Io(BlockError),
    /// What is on the disk breaks a rule of the format (`EIO`, as Linux's
    /// `EFSCORRUPTED`-less ext2 answers).
    Corrupt(Corruption),
    /// The disk is not one this code may mount (`EINVAL`, or `EROFS` for
    /// read-only-compatible features): it is never written.
    Refused(Refusal),
}

/// What rule of the on-disk format was broken (found while running, not at mount).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corruption {
    /// A block number outside the file system, or inside its metadata.
    BlockOutOfRange(u32),
    /// An inode number that is 0 or larger than the inode count.
    InodeOutOfRange(u32),
    /// A directory entry whose record length or name length is impossible.
    BadDirEntry {
        /// The directory's inode number.
        dir: u32,
        /// Which of its blocks.
        block_index: u32,
    },
    /// A bitmap and the free counts disagree (no free bit where the count says one is).
    BitmapCountMismatch {
        /// The group.
        group: u32,
    },
    /// A slow symlink whose length does not fit its one block, or that has no block.
    BadSymlink {
        /// The inode number.
        ino: u32,
    },
    /// An inode whose mode is not a known file type.
    BadMode {
        /// The inode number.
        ino: u32,
        /// Its mode.
        mode: u16,
    },
}

/// Why [`crate::Ext2::mount`] refused a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The superblock magic is not 0xEF53: not an ext2 disk (or a damaged one).
    BadMagic(u16),
    /// A revision newer than 1 (dynamic inodes).
    UnsupportedRevision(u32),
    /// A block size other than 1, 2 or 4 KiB.
    UnsupportedBlockSize(u64),
    /// Incompatible features this code does not implement (extents, 64bit,
    /// flex_bg, meta_bg, compression, inline data...).
    IncompatFeatures(u32),
    /// The journal holds transactions that must be replayed first (ext3/ext4 that
    /// was not cleanly unmounted).
    NeedsRecovery,
    /// Read-only-compatible features this code cannot keep correct when writing
    /// (huge_file, gdt_csum, metadata_csum, dir_nlink, bigalloc...).
    RoCompatFeatures(u32),
    /// An inode size that is not a power of two between 128 and the block size.
    BadInodeSize(u16),
    /// Counts in the superblock that do not fit together (groups, inodes, blocks).
    BadGeometry,
    /// The superblock says the file system is larger than the disk.
    DiskTooSmall {
        /// Bytes the superblock claims.
        fs_bytes: u64,
        /// Bytes the disk has.
        disk_bytes: u64,
    },
    /// A group descriptor points its bitmaps or inode table outside its group.
    BadGroupDescriptor(u32),
}

impl Ext2Error {
    /// Returns the Linux errno (positive) a system call reports for this error.
    pub fn errno(self) -> i32 {
        match self {
            Self::NotFound => 2,         // ENOENT
            Self::Io(_) | Self::Corrupt(_) => 5, // EIO
            Self::Exists => 17,          // EEXIST
            Self::NotDir => 20,          // ENOTDIR
            Self::IsDir => 21,           // EISDIR
            Self::InvalidArgument => 22, // EINVAL
            Self::FileTooBig => 27,      // EFBIG
            Self::NoSpace => 28,         // ENOSPC
            Self::TooManyLinks => 31,    // EMLINK
            Self::NameTooLong => 36,     // ENAMETOOLONG
            Self::NotEmpty => 39,        // ENOTEMPTY
            Self::TooManySymlinks => 40, // ELOOP
            Self::Refused(Refusal::RoCompatFeatures(_)) => 30, // EROFS
            Self::Refused(_) => 22,      // EINVAL
        }
    }
}

impl From<BlockError> for Ext2Error {
    fn from(e: BlockError) -> Self {
        Self::Io(e)
    }
}

impl core::fmt::Display for Ext2Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such file or directory"),
            Self::Exists => f.write_str("file exists"),
            Self::NotDir => f.write_str("not a directory"),
            Self::IsDir => f.write_str("is a directory"),
            Self::NotEmpty => f.write_str("directory not empty"),
            Self::NoSpace => f.write_str("no space left on device"),
            Self::NameTooLong => f.write_str("file name too long"),
            Self::InvalidArgument => f.write_str("invalid argument"),
            Self::FileTooBig => f.write_str("file too large"),
            Self::TooManySymlinks => f.write_str("too many levels of symbolic links"),
            Self::TooManyLinks => f.write_str("too many links"),
            Self::Io(e) => write!(f, "disk error: {e}"),
            Self::Corrupt(c) => write!(f, "file system corrupt: {c:?}"),
            Self::Refused(r) => write!(f, "refusing to mount: {r}"),
        }
    }
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::BadMagic(m) => write!(f, "bad superblock magic {m:#06x} (ext2 is 0xef53)"),
            Self::UnsupportedRevision(r) => write!(f, "revision {r} (only 0 and 1 are supported)"),
            Self::UnsupportedBlockSize(b) => write!(f, "block size {b} (1, 2 or 4 KiB supported)"),
            Self::IncompatFeatures(x) => write!(f, "unsupported incompatible features {x:#x}"),
            Self::NeedsRecovery => f.write_str("the journal needs recovery"),
            Self::RoCompatFeatures(x) => write!(f, "unsupported read-only-compatible features {x:#x}"),
            Self::BadInodeSize(s) => write!(f, "inode size {s}"),
            Self::BadGeometry => f.write_str("superblock counts do not fit together"),
            Self::DiskTooSmall { fs_bytes, disk_bytes } => {
                write!(f, "file system of {fs_bytes} bytes on a disk of {disk_bytes} bytes")
            }
            Self::BadGroupDescriptor(g) => write!(f, "group descriptor {g} points outside its group"),
        }
    }
}

/// Shorthand for this crate's results.
pub type Result<T> = core::result::Result<T, Ext2Error>;
