//! `abi`: the contract between the kernel and user programs, written down once.
//!
//! Both sides depend on this crate, so a syscall number, a flag bit or the layout
//! of [`MemStat`] cannot drift apart. The conventions are Linux x86-64's, so the
//! numbers match what students find in `man 2 syscall` and `unistd_64.h`:
//!
//! ```text
//!   rax = syscall number        (module nr)
//!   rdi, rsi, rdx, r10, r8, r9  = arguments 1..6
//!   syscall                     ; the CPU clobbers rcx (return rip) and r11 (rflags)
//!   rax = result; -4095..=-1 means -errno (Errno::from_ret)
//! ```
//!
//! | item | what it is |
//! |---|---|
//! | [`nr`] | syscall numbers (Linux's, plus `memstat` 1000 and `maps` 1001) |
//! | [`Errno`] | error numbers, and the encoding of an error as a negative result |
//! | [`prot`], [`map`], [`madv`] | flag bits of `mmap`/`mprotect`/`madvise` |
//! | [`o`], [`Stat`], [`Dirent64`], [`mode`] | files: `open` flags, `struct stat`, `getdents64` records |
//! | [`WaitStatus`] | how `wait4` reports an exit code or a kill (Linux's bit layout) |
//! | [`MemStat`] | what `memstat` fills in: the caller's and the machine's memory counters |
//! | [`Explain`] | what `explain` fills in: the page-table walk, VMA, frame and next fault at one address |
//! | [`FaultTraceRecord`] | what `fault_trace` reads: one page fault of the kernel's trace ring |
//! | [`WsStat`] | what `wsstat` fills in: a process's working set WS(τ), its history and page-fault frequency |
//! | [`USER_IMAGE_BASE`], [`PAGE_SIZE`] | where user programs are linked; the mapping unit |
//!
//! The text `maps` writes has one line per VMA, in address order, like Linux's
//! `/proc/self/maps`; user programs rely only on each line *starting* with the range
//! in hex and the permissions: `00400000-00401000 r--p ...` (`start-end rwxp`, with
//! `-` for a missing permission and `p`/`s` for private/shared). Whatever follows
//! the permissions (offset, name such as `[stack]`) is for humans.
#![no_std]
#![forbid(unsafe_code)]

use core::fmt;

pub mod explain;
pub mod kpageflags;
pub mod trace;
pub use explain::Explain;
pub use trace::FaultTraceRecord;

/// The size of a page: the unit of `mmap`, `munmap`, `mprotect`, `madvise` and `brk`.
pub const PAGE_SIZE: usize = 4096;

/// The address user programs are linked at: their first loadable segment starts here.
///
/// The first 4 MiB stay unmapped so that a null pointer, or a small offset from
/// one, faults (as on Linux, whose classic non-PIE base is also 0x400000).
pub const USER_IMAGE_BASE: u64 = 0x40_0000;

/// Syscall numbers, the value of `rax` at the `syscall` instruction.
pub mod nr {
    /// `read(fd, buf, len) -> bytes read`; 0 at end of file (fd 0, the console, is
    /// always at its end until there is console input).
    pub const READ: u64 = 0;
    /// `write(fd, buf, len) -> bytes written`; fd 1 and 2 are the console.
    pub const WRITE: u64 = 1;
    /// `open(path, flags, mode) -> fd` ([`o`](crate::o) flags).
    pub const OPEN: u64 = 2;
    /// `close(fd) -> 0`.
    pub const CLOSE: u64 = 3;
    /// `mmap(addr, len, prot, flags, fd, offset) -> address`.
    pub const MMAP: u64 = 9;
    /// `mprotect(addr, len, prot) -> 0`.
    pub const MPROTECT: u64 = 10;
    /// `munmap(addr, len) -> 0`.
    pub const MUNMAP: u64 = 11;
    /// `brk(addr) -> new break`; `brk(0)` returns the current break.
    pub const BRK: u64 = 12;
    /// `sched_yield() -> 0`.
    pub const SCHED_YIELD: u64 = 24;
    /// `msync(addr, len, flags) -> 0` ([`ms`](crate::ms) flags).
    pub const MSYNC: u64 = 26;
    /// `madvise(addr, len, advice) -> 0`.
    pub const MADVISE: u64 = 28;
    /// `getpid() -> pid`.
    pub const GETPID: u64 = 39;
    /// `fork() -> child pid in the parent, 0 in the child`.
    pub const FORK: u64 = 57;
    /// `execve(path, argv, envp)`: replaces the program; returns only on error.
    pub const EXECVE: u64 = 59;
    /// `exit(code)`: does not return.
    pub const EXIT: u64 = 60;
    /// `wait4(pid, status, options, rusage) -> pid of the reaped child`; pid -1 = any
    /// child, options must be 0 and rusage null.
    pub const WAIT4: u64 = 61;
    // Files (kernel/src/fs, kernel/src/proc/{fd,path}_syscall.rs).
    /// `stat(path, *mut Stat) -> 0`.
    pub const STAT: u64 = 4;
    /// `fstat(fd, *mut Stat) -> 0`.
    pub const FSTAT: u64 = 5;
    /// `lseek(fd, offset, whence) -> new offset` ([`SEEK_SET`](crate::SEEK_SET)...).
    pub const LSEEK: u64 = 8;
    /// `pipe(*mut [i32; 2]) -> 0`: fds[0] is the read end, fds[1] the write end.
    pub const PIPE: u64 = 22;
    /// `dup(fd) -> new fd` (the lowest free one), sharing the open file.
    pub const DUP: u64 = 32;
    /// `dup2(fd, newfd) -> newfd`: closes `newfd` first if it is open.
    pub const DUP2: u64 = 33;
    /// `fsync(fd) -> 0`.
    pub const FSYNC: u64 = 74;
    /// `sync() -> 0`: every file's dirty pages to its disk.
    pub const SYNC: u64 = 162;
    /// `ftruncate(fd, length) -> 0`.
    pub const FTRUNCATE: u64 = 77;
    /// `getcwd(buf, size) -> length including the NUL`.
    pub const GETCWD: u64 = 79;
    /// `chdir(path) -> 0`.
    pub const CHDIR: u64 = 80;
    /// `rename(old, new) -> 0`.
    pub const RENAME: u64 = 82;
    /// `mkdir(path, mode) -> 0`.
    pub const MKDIR: u64 = 83;
    /// `rmdir(path) -> 0`.
    pub const RMDIR: u64 = 84;
    /// `unlink(path) -> 0`.
    pub const UNLINK: u64 = 87;
    /// `getdents64(fd, buf, len) -> bytes filled` with [`Dirent64`](crate::Dirent64) records; 0 at the end.
    pub const GETDENTS64: u64 = 217;
    /// `openat(dirfd, path, flags, mode) -> fd`; dirfd [`AT_FDCWD`](crate::AT_FDCWD) = the cwd.
    pub const OPENAT: u64 = 257;
    /// `newfstatat(dirfd, path, *mut Stat, flags) -> 0` (the `fstatat` of C).
    pub const NEWFSTATAT: u64 = 262;
    /// `pipe2(*mut [i32; 2], flags) -> 0`.
    pub const PIPE2: u64 = 293;

    /// `memstat(out: *mut MemStat) -> 0` (ours): fills a [`MemStat`](crate::MemStat).
    pub const MEMSTAT: u64 = 1000;
    /// `maps(buf, len) -> bytes written` (ours): the caller's VMAs as text, one per line.
    pub const MAPS: u64 = 1001;
    /// `clock_gettime(clock, *mut Timespec) -> 0`; only [`CLOCK_MONOTONIC`](crate::CLOCK_MONOTONIC).
    pub const CLOCK_GETTIME: u64 = 228;
    /// `process_vm_readv(pid, local_iov, liovcnt, remote_iov, riovcnt, flags) -> bytes
    /// read`: copies from process `pid`'s memory ([`IoVec`](crate::IoVec) arrays).
    pub const PROCESS_VM_READV: u64 = 310;
    /// `process_vm_writev(pid, local_iov, liovcnt, remote_iov, riovcnt, flags) -> bytes
    /// written`: copies into process `pid`'s memory.
    pub const PROCESS_VM_WRITEV: u64 = 311;
    /// `args(buf, len) -> bytes of the whole string` (ours): copies the process's
    /// argument string (space-separated words, inherited across fork) into `buf`,
    /// truncated to `len`. `run=NAME` gives the program the kernel command line.
    pub const ARGS: u64 = 1002;
    /// `audit(out: *mut AuditReport or null) -> 0` (ours, for tests and the fuzzer):
    /// shrinks the kernel heap's caches, runs the kernel's memory-consistency audit
    /// and fills an [`AuditReport`](crate::AuditReport); on a violation it prints it
    /// on the console and returns `EIO`.
    pub const AUDIT: u64 = 1003;
    /// `wsstat(pid, out: *mut WsStat) -> 0` (ours): the working set and page-fault
    /// frequency of process `pid` (0: the caller) into a [`WsStat`](crate::WsStat);
    /// `ESRCH` if there is no such live user process.
    pub const WSSTAT: u64 = 1010;
    /// `oom_score_adj(pid, adj) -> 0` (ours; Linux writes `/proc/PID/oom_score_adj`):
    /// sets process `pid`'s (0: the caller's) OOM adjustment, -1000..=1000 (`EINVAL`
    /// outside); -1000 means the OOM killer never chooses it. Inherited across fork.
    pub const OOM_SCORE_ADJ: u64 = 1011;
    /// `loadctl(on) -> 0` (ours): switches load control (the balance set) on (1) or
    /// off (0); `EINVAL` for anything else.
    pub const LOADCTL: u64 = 1012;
    /// `memcg_create(max_pages, high_pages) -> group id` (ours): a memory group with
    /// cgroup v2's `memory.max` and `memory.high` in pages (`u64::MAX`: no limit);
    /// `EINVAL` for a zero limit or high above max, `ENOSPC` when all groups are used.
    pub const MEMCG_CREATE: u64 = 1013;
    /// `memcg_attach(pid, group) -> 0` (ours): puts process `pid` (0: the caller) in
    /// memory group `group` (0: the root group, unlimited); its later children inherit it.
    pub const MEMCG_ATTACH: u64 = 1014;
    /// `explain(pid, addr, out: *mut Explain) -> 0` (ours, for the `explain` tool):
    /// the page-table walk, VMA, frame and next-fault answers for `addr` in process
    /// `pid` (0: the caller) into an [`Explain`](crate::Explain); `ESRCH` if there is
    /// no such live user process.
    pub const EXPLAIN: u64 = 1020;
    /// `fault_trace(op, pid, buf, n) -> records` (ours, for the `trace` tool): turns
    /// the fault trace off or on, or reads up to `n` [`FaultTraceRecord`](crate::FaultTraceRecord)s
    /// of process `pid` (0: all) into `buf`, oldest first ([`trace::op`](crate::trace::op));
    /// `EINVAL` for another op.
    pub const FAULT_TRACE: u64 = 1021;
    /// `ksm_ctl(op, value) -> u64` (ours; Linux writes `/sys/kernel/mm/ksm/*`):
    /// same-page merging's knobs and counters, one [`ksm_op`](crate::ksm_op) at a
    /// time; `EINVAL` for an unknown op or a `run` other than 0 or 1.
    pub const KSM_CTL: u64 = 1035;

    // What a C library calls on its own (musl's startup, stdio, fork); the kernel
    // answers them in `proc::syscall_libc`.
    /// `rt_sigprocmask(how, set, oldset, sigsetsize) -> 0`: the blocked-signal mask.
    pub const RT_SIGPROCMASK: u64 = 14;
    /// `ioctl(fd, request, arg)`: on the console only `TIOCGPGRP`/`TIOCSPGRP`, else `ENOTTY`.
    pub const IOCTL: u64 = 16;
    /// `writev(fd, iov, iovcnt) -> bytes written`.
    pub const WRITEV: u64 = 20;
    /// `sysinfo(*mut struct sysinfo) -> 0`: RAM, swap, uptime, process count.
    pub const SYSINFO: u64 = 99;
    /// `getuid() -> 0`.
    pub const GETUID: u64 = 102;
    /// `getgid() -> 0`.
    pub const GETGID: u64 = 104;
    /// `geteuid() -> 0`.
    pub const GETEUID: u64 = 107;
    /// `getegid() -> 0`.
    pub const GETEGID: u64 = 108;
    /// `getppid() -> the parent's pid`.
    pub const GETPPID: u64 = 110;
    /// `arch_prctl(code, addr)`: set or get the FS/GS base.
    pub const ARCH_PRCTL: u64 = 158;
    /// `gettid() -> thread id` (a thread's own id; the group leader's is the pid).
    pub const GETTID: u64 = 186;
    /// `clone(flags, stack, parent_tid, child_tid, tls) -> child tid`: a thread
    /// (`CLONE_VM|CLONE_THREAD|...`, what musl's `pthread_create` passes) or a process.
    pub const CLONE: u64 = 56;
    /// `futex(uaddr, op, val, timeout, uaddr2, val3)`: `FUTEX_WAIT` and `FUTEX_WAKE`.
    pub const FUTEX: u64 = 202;
    /// `tgkill(tgid, tid, sig)`: kills thread `tid`'s whole group (no signal delivery).
    pub const TGKILL: u64 = 234;
    /// `tkill(tid, sig)`: as `tgkill` without the group check (musl's `raise`).
    pub const TKILL: u64 = 200;
    /// `set_tid_address(tidptr) -> thread id`.
    pub const SET_TID_ADDRESS: u64 = 218;
    /// `exit_group(code)`: does not return.
    pub const EXIT_GROUP: u64 = 231;
    /// `kill(pid, sig)`: every signal but 0 kills (there is no signal delivery).
    pub const KILL: u64 = 62;
    /// `nanosleep(&req, &rem)`: sleeps, in timer ticks.
    pub const NANOSLEEP: u64 = 35;
    /// `sched_getaffinity(pid, len, mask) -> bytes written`: the CPUs a task may
    /// run on (every online CPU here); musl's `sysconf(_SC_NPROCESSORS_ONLN)`.
    pub const SCHED_GETAFFINITY: u64 = 204;
}

/// `ioctl` request: get the terminal's foreground process group (here: a pid).
pub const TIOCGPGRP: u64 = 0x540f;
/// `ioctl` request: set the terminal's foreground process group (here: a pid), the
/// process Ctrl-C kills.
pub const TIOCSPGRP: u64 = 0x5410;
/// `wait4` option: return 0 at once if the child has not ended.
pub const WNOHANG: u64 = 1;
/// Signal 2: what Ctrl-C sends (here: a kill).
pub const SIGINT: u8 = 2;
/// Signal 15: `kill`'s default (here: a kill).
pub const SIGTERM: u8 = 15;

/// One buffer of a scatter-gather list (Linux's `struct iovec`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoVec {
    /// The buffer's first byte (an address in the process the list describes).
    pub base: u64,
    /// Its length in bytes.
    pub len: u64,
}

/// The most `IoVec`s one call takes (Linux's `UIO_MAXIOV`); more is `EINVAL`.
pub const IOV_MAX: u64 = 1024;

/// The clock id of time since boot (Linux's `CLOCK_MONOTONIC`).
pub const CLOCK_MONOTONIC: u64 = 1;

/// A point in time as `clock_gettime` returns it (Linux's `struct timespec`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timespec {
    /// Whole seconds.
    pub tv_sec: i64,
    /// Nanoseconds, 0..1e9.
    pub tv_nsec: i64,
}

impl Timespec {
    /// Returns the time in nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.tv_sec as u64 * 1_000_000_000 + self.tv_nsec as u64
    }
}

/// `open` flags (`O_*`), Linux x86-64 values.
pub mod o {
    /// Open for reading only.
    pub const RDONLY: u64 = 0;
    /// Open for writing only.
    pub const WRONLY: u64 = 1;
    /// Open for reading and writing.
    pub const RDWR: u64 = 2;
    /// The bits that hold the access mode.
    pub const ACCMODE: u64 = 3;
    /// Create the file if it does not exist.
    pub const CREAT: u64 = 0o100;
    /// With `CREAT`: fail with `EEXIST` if the file exists.
    pub const EXCL: u64 = 0o200;
    /// No controlling terminal (accepted; there are no terminals).
    pub const NOCTTY: u64 = 0o400;
    /// Cut a regular file opened for writing to length 0.
    pub const TRUNC: u64 = 0o1000;
    /// Every write goes to the end of the file.
    pub const APPEND: u64 = 0o2000;
    /// Reads and writes that would block fail with `EAGAIN` (pipes).
    pub const NONBLOCK: u64 = 0o4000;
    /// 64-bit offsets (always so on x86-64; musl sets it: accepted).
    pub const LARGEFILE: u64 = 0o100000;
    /// Fail with `ENOTDIR` unless the path names a directory.
    pub const DIRECTORY: u64 = 0o200000;
    /// Do not follow a final symbolic link (accepted; there are none).
    pub const NOFOLLOW: u64 = 0o400000;
    /// Close on exec (accepted; there is no exec yet).
    pub const CLOEXEC: u64 = 0o2000000;
}

/// The `dirfd` of `openat`/`newfstatat` that means "relative to the cwd".
pub const AT_FDCWD: i64 = -100;
/// `newfstatat` flag: do not follow a final symbolic link (accepted; there are none).
pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
/// `newfstatat` flag: an empty path means `dirfd` itself.
pub const AT_EMPTY_PATH: u64 = 0x1000;

/// `lseek` whence: from the start.
pub const SEEK_SET: u64 = 0;
/// `lseek` whence: from the current offset.
pub const SEEK_CUR: u64 = 1;
/// `lseek` whence: from the end of the file.
pub const SEEK_END: u64 = 2;

/// The longest path a syscall accepts, NUL included (Linux's `PATH_MAX`).
pub const PATH_MAX: usize = 4096;
/// The longest name of one directory entry (Linux's `NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Writes to a pipe of at most this many bytes are atomic (Linux's `PIPE_BUF`).
pub const PIPE_BUF: usize = 4096;

/// File type and permission bits of [`Stat::st_mode`] (`S_IF*`).
pub mod mode {
    /// The bits that hold the file type.
    pub const S_IFMT: u32 = 0o170000;
    /// A directory.
    pub const S_IFDIR: u32 = 0o040000;
    /// A regular file.
    pub const S_IFREG: u32 = 0o100000;
    /// A character device (the console).
    pub const S_IFCHR: u32 = 0o020000;
    /// A pipe.
    pub const S_IFIFO: u32 = 0o010000;
}

/// `struct stat` as Linux x86-64 lays it out (144 bytes), what `stat`/`fstat`/
/// `newfstatat` fill in.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// The file system's device number.
    pub st_dev: u64,
    /// The inode number.
    pub st_ino: u64,
    /// Hard links to the inode (0 once an open file is unlinked).
    pub st_nlink: u64,
    /// File type ([`mode`]) and permission bits.
    pub st_mode: u32,
    /// Owner (always 0: there are no users).
    pub st_uid: u32,
    /// Group (always 0).
    pub st_gid: u32,
    /// Padding, to align what follows.
    pub pad0: u32,
    /// The device a device file stands for.
    pub st_rdev: u64,
    /// Size in bytes.
    pub st_size: i64,
    /// The preferred I/O size.
    pub st_blksize: i64,
    /// 512-byte blocks allocated (holes of a sparse file take none).
    pub st_blocks: i64,
    /// Last access, seconds.
    pub st_atime: i64,
    /// Last access, nanoseconds.
    pub st_atime_nsec: i64,
    /// Last modification, seconds.
    pub st_mtime: i64,
    /// Last modification, nanoseconds.
    pub st_mtime_nsec: i64,
    /// Last status change, seconds.
    pub st_ctime: i64,
    /// Last status change, nanoseconds.
    pub st_ctime_nsec: i64,
    /// Reserved.
    pub unused: [i64; 3],
}

const _: () = assert!(core::mem::size_of::<Stat>() == 144);

/// The fixed head of one `getdents64` record (Linux's `struct linux_dirent64`),
/// followed by the NUL-terminated name and padding to a multiple of 8 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dirent64 {
    /// The entry's inode number.
    pub d_ino: u64,
    /// Where the next entry starts (pass it to `lseek` to come back here).
    pub d_off: i64,
    /// This record's whole length, name and padding included.
    pub d_reclen: u16,
    /// The entry's type ([`DT_DIR`], [`DT_REG`], ...).
    pub d_type: u8,
}

/// The offset of the name in a [`Dirent64`] record.
pub const DIRENT64_NAME_OFFSET: usize = 19;
/// `d_type` of a directory.
pub const DT_DIR: u8 = 4;
/// `d_type` of a regular file.
pub const DT_REG: u8 = 8;
/// `d_type` of a pipe.
pub const DT_FIFO: u8 = 1;
/// `d_type` of a character device.
pub const DT_CHR: u8 = 2;

/// `mmap`/`mprotect` protection bits (`PROT_*`).
pub mod prot {
    /// No access.
    pub const NONE: u64 = 0;
    /// The pages may be read.
    pub const READ: u64 = 1;
    /// The pages may be written.
    pub const WRITE: u64 = 2;
    /// The pages may be executed.
    pub const EXEC: u64 = 4;
}

/// msync(2) flags.
pub mod ms {
    /// Start the write-back and return.
    pub const ASYNC: u64 = 1;
    /// Drop other cached copies (nothing to do when the mapping is the page cache).
    pub const INVALIDATE: u64 = 2;
    /// Write the dirty pages back before returning.
    pub const SYNC: u64 = 4;
}

/// `mmap` flag bits (`MAP_*`).
pub mod map {
    /// Writes are shared with every process mapping the same memory.
    pub const SHARED: u64 = 0x01;
    /// Writes are private to this process (copy-on-write after fork).
    pub const PRIVATE: u64 = 0x02;
    /// Map exactly at `addr`, replacing whatever was mapped there.
    pub const FIXED: u64 = 0x10;
    /// Like `SHARED`, but unknown flags are refused with `EOPNOTSUPP` instead of
    /// ignored. For files only: Linux refuses it for anonymous memory (`EINVAL`).
    pub const SHARED_VALIDATE: u64 = 0x03;
    /// The bits that choose the mapping type (`SHARED`, `PRIVATE`, `SHARED_VALIDATE`).
    pub const TYPE: u64 = 0x0f;
    /// A stack-like mapping that grows down on faults below it (not implemented here:
    /// `EINVAL`).
    pub const GROWSDOWN: u64 = 0x100;
    /// Lock the pages in memory (not implemented here: `EINVAL`).
    pub const LOCKED: u64 = 0x2000;
    /// Huge pages (not implemented here: `EINVAL`).
    pub const HUGETLB: u64 = 0x4_0000;
    /// Zero-filled memory with no file behind it; `fd` is ignored (pass -1).
    pub const ANONYMOUS: u64 = 0x20;
    /// Reserve no swap for the mapping (accepted; this kernel never reserves swap).
    pub const NORESERVE: u64 = 0x4000;
    /// Fault the whole mapping in now (prefault), instead of on first touch.
    pub const POPULATE: u64 = 0x8000;
    /// Like `FIXED`, but fail with `EEXIST` instead of replacing a mapping.
    pub const FIXED_NOREPLACE: u64 = 0x10_0000;
    /// What `mmap` returns on failure in C (`MAP_FAILED`, i.e. `(void *)-1`); the raw
    /// syscall returns `-errno` instead.
    pub const FAILED: u64 = u64::MAX;
}

/// The operations of `ksm_ctl` (`nr::KSM_CTL`).
pub mod ksm_op {
    /// `run`: ksmd scans (1) or sleeps (0); returns 0.
    pub const SET_RUN: u64 = 0;
    /// `pages_to_scan`: pages ksmd scans per pass (0 counts as 1); returns 0.
    pub const SET_PAGES_TO_SCAN: u64 = 1;
    /// `sleep_millisecs`: ksmd's sleep between passes; returns 0.
    pub const SET_SLEEP_MILLISECS: u64 = 2;
    /// Runs one pass of `value` pages now, in the caller (0: `pages_to_scan`);
    /// returns the number of pages merged.
    pub const SCAN: u64 = 3;
    /// Returns `pages_shared`: merged frames in use.
    pub const PAGES_SHARED: u64 = 4;
    /// Returns `pages_sharing`: mappings of merged frames beyond the first (frames saved).
    pub const PAGES_SHARING: u64 = 5;
    /// Returns `pages_unshared`: this scan's candidates not merged.
    pub const PAGES_UNSHARED: u64 = 6;
    /// Returns `full_scans`.
    pub const FULL_SCANS: u64 = 7;
}

/// `madvise` advice values (`MADV_*`).
pub mod madv {
    /// No special treatment (the default): a hint, accepted.
    pub const NORMAL: u64 = 0;
    /// Expect random page references: a hint, accepted.
    pub const RANDOM: u64 = 1;
    /// Expect sequential page references: a hint, accepted.
    pub const SEQUENTIAL: u64 = 2;
    /// The pages will be needed soon: fault them in (or swap them in) now.
    pub const WILLNEED: u64 = 3;
    /// The pages are not needed: drop them; the next touch sees zeros.
    pub const DONTNEED: u64 = 4;
    /// Private anonymous pages may be freed lazily; until they are, and if written
    /// again, they keep their contents; a freed one reads back as zeros.
    pub const FREE: u64 = 8;
    /// Do not make the range available to the child after a `fork`.
    pub const DONTFORK: u64 = 10;
    /// Undo `DONTFORK`: the range is inherited by children again.
    pub const DOFORK: u64 = 11;
    /// Same-page merging may merge the range's private anonymous pages (KSM).
    pub const MERGEABLE: u64 = 12;
    /// Undo `MERGEABLE`: merged pages in the range get their own copies again.
    pub const UNMERGEABLE: u64 = 13;
    /// Transparent huge pages wanted in the range (`thp=madvise` maps them only there).
    pub const HUGEPAGE: u64 = 14;
    /// Never transparent huge pages in the range (huge pages already there are split).
    pub const NOHUGEPAGE: u64 = 15;
    /// Write the pages out to swap now and free their frames.
    pub const PAGEOUT: u64 = 21;
}

/// An error number (`errno`), as a syscall reports it: the result `-errno`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub u16);

impl Errno {
    /// Operation not permitted.
    pub const EPERM: Errno = Errno(1);
    /// No such file or directory.
    pub const ENOENT: Errno = Errno(2);
    /// Interrupted (a wait given up because the process was killed).
    pub const EINTR: Errno = Errno(4);
    /// Argument list too long (`execve`'s argv and envp).
    pub const E2BIG: Errno = Errno(7);
    /// Exec format error (`execve` of a file that is not an executable).
    pub const ENOEXEC: Errno = Errno(8);
    /// Permission denied (`execve` of a directory).
    pub const EACCES: Errno = Errno(13);
    /// Device or resource busy (`rmdir("/")`).
    pub const EBUSY: Errno = Errno(16);
    /// Cross-device link (`rename` between file systems).
    pub const EXDEV: Errno = Errno(18);
    /// Not a directory (a path component, `O_DIRECTORY`, `rmdir` of a file).
    pub const ENOTDIR: Errno = Errno(20);
    /// Is a directory (`unlink`, `read`, or opening one for writing).
    pub const EISDIR: Errno = Errno(21);
    /// Too many open files in this process.
    pub const EMFILE: Errno = Errno(24);
    /// File too large.
    pub const EFBIG: Errno = Errno(27);
    /// No space left on the file system.
    pub const ENOSPC: Errno = Errno(28);
    /// Illegal seek (`lseek` on a pipe or the console).
    pub const ESPIPE: Errno = Errno(29);
    /// Broken pipe: a write to a pipe nobody can read.
    pub const EPIPE: Errno = Errno(32);
    /// Result too large (`getcwd` into a buffer too small).
    pub const ERANGE: Errno = Errno(34);
    /// File name too long.
    pub const ENAMETOOLONG: Errno = Errno(36);
    /// Directory not empty.
    pub const ENOTEMPTY: Errno = Errno(39);
    /// No such process.
    pub const ESRCH: Errno = Errno(3);
    /// Input/output error; also the `audit` syscall's answer when the kernel's
    /// books do not balance.
    pub const EIO: Errno = Errno(5);
    /// No child processes (to wait for).
    pub const ECHILD: Errno = Errno(10);
    /// Resource temporarily unavailable (e.g. too many processes).
    pub const EAGAIN: Errno = Errno(11);
    /// Out of memory.
    pub const ENOMEM: Errno = Errno(12);
    /// Not a terminal: an `ioctl` the file does not support.
    pub const ENOTTY: Errno = Errno(25);
    /// Bad file descriptor.
    pub const EBADF: Errno = Errno(9);
    /// Bad address: a user pointer the kernel could not read or write.
    pub const EFAULT: Errno = Errno(14);
    /// The mapping exists (`MAP_FIXED_NOREPLACE` over a mapping).
    pub const EEXIST: Errno = Errno(17);
    /// No such device (mmap of a file: there are no files to map).
    pub const ENODEV: Errno = Errno(19);
    /// Invalid argument.
    pub const EINVAL: Errno = Errno(22);
    /// No such system call.
    pub const ENOSYS: Errno = Errno(38);
    /// Value too large (`mmap` of a file at an offset whose end overflows).
    pub const EOVERFLOW: Errno = Errno(75);
    /// Operation not supported (an unknown flag with `MAP_SHARED_VALIDATE`).
    pub const EOPNOTSUPP: Errno = Errno(95);
    /// Timed out (a `FUTEX_WAIT` whose timeout passed).
    pub const ETIMEDOUT: Errno = Errno(110);

    /// The largest errno a result can carry: results in `-4095..=-1` are errors.
    pub const MAX: u16 = 4095;

    /// Decodes a raw syscall result: `Err` for `-4095..=-1`, otherwise `Ok(ret)`.
    ///
    /// Any other value, including "negative" ones such as a high address, is a
    /// success, exactly as in Linux's `IS_ERR_VALUE`.
    pub const fn from_ret(ret: u64) -> Result<u64, Errno> {
        if ret >= (-(Errno::MAX as i64)) as u64 { Err(Errno(ret.wrapping_neg() as u16)) } else { Ok(ret) }
    }

    /// Returns the raw syscall result that reports this error: `-errno`.
    pub const fn to_ret(self) -> u64 {
        (-(self.0 as i64)) as u64
    }

    /// Returns the C name (`"EFAULT"`), or `None` for a number this ABI does not use.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self {
            Errno::EPERM => "EPERM",
            Errno::ENOENT => "ENOENT",
            Errno::EINTR => "EINTR",
            Errno::E2BIG => "E2BIG",
            Errno::ENOEXEC => "ENOEXEC",
            Errno::EACCES => "EACCES",
            Errno::EOVERFLOW => "EOVERFLOW",
            Errno::EBUSY => "EBUSY",
            Errno::EXDEV => "EXDEV",
            Errno::ENOTDIR => "ENOTDIR",
            Errno::EISDIR => "EISDIR",
            Errno::EMFILE => "EMFILE",
            Errno::EFBIG => "EFBIG",
            Errno::ENOSPC => "ENOSPC",
            Errno::ESPIPE => "ESPIPE",
            Errno::EPIPE => "EPIPE",
            Errno::ERANGE => "ERANGE",
            Errno::ENAMETOOLONG => "ENAMETOOLONG",
            Errno::ENOTEMPTY => "ENOTEMPTY",
            Errno::ESRCH => "ESRCH",
            Errno::EIO => "EIO",
            Errno::ECHILD => "ECHILD",
            Errno::EAGAIN => "EAGAIN",
            Errno::ENOMEM => "ENOMEM",
            Errno::ENOTTY => "ENOTTY",
            Errno::EBADF => "EBADF",
            Errno::EFAULT => "EFAULT",
            Errno::EEXIST => "EEXIST",
            Errno::ENODEV => "ENODEV",
            Errno::EINVAL => "EINVAL",
            Errno::ENOSYS => "ENOSYS",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
            Errno::ETIMEDOUT => "ETIMEDOUT",
            _ => return None,
        })
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The signal number a killed process reports, like Linux's `SIGKILL`.
///
/// The kernel has no signals; it kills a process (bad access, out of memory) and
/// its parent sees `WaitStatus::Killed(SIGKILL)`.
pub const SIGKILL: u8 = 9;

/// How a child ended, as `wait4` stores it in `*status`.
///
/// The bit layout is Linux's, so C's `WIFEXITED`/`WEXITSTATUS`/`WIFSIGNALED`/
/// `WTERMSIG` would decode it: an exit puts the low 8 bits of the code in bits 8..16
/// and leaves bits 0..7 zero; a kill puts the signal number in bits 0..7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStatus {
    /// The child called `exit(code)`; only the low 8 bits of the code survive.
    Exited(u8),
    /// The kernel killed the child; the number is [`SIGKILL`] for every kill today.
    Killed(u8),
}

impl WaitStatus {
    /// Returns the status of a child that called `exit(code)` (code truncated to 8 bits).
    pub const fn exited(code: i32) -> WaitStatus {
        WaitStatus::Exited(code as u8)
    }

    /// Decodes the value `wait4` stored.
    pub const fn from_raw(raw: i32) -> WaitStatus {
        match raw & 0x7f {
            0 => WaitStatus::Exited((raw >> 8) as u8),
            signal => WaitStatus::Killed(signal as u8),
        }
    }

    /// Encodes the status for `wait4`'s `*status`.
    pub const fn to_raw(self) -> i32 {
        match self {
            WaitStatus::Exited(code) => (code as i32) << 8,
            WaitStatus::Killed(signal) => (signal & 0x7f) as i32,
        }
    }
}

impl fmt::Display for WaitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitStatus::Exited(code) => write!(f, "exited with {code}"),
            WaitStatus::Killed(signal) => write!(f, "killed (signal {signal})"),
        }
    }
}

/// Memory counters of the calling process and of the machine, filled by `memstat`.
///
/// Sizes are in pages ([`PAGE_SIZE`]) or frames (4 KiB); counts are since the
/// process started (fault and swap counters) or right now (everything else).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemStat {
    /// Pages of this process resident in memory (present user PTEs).
    pub rss_pages: u64,
    /// VMAs of this process.
    pub nr_vmas: u64,
    /// Faults this process took that needed no I/O (zero fill, COW, ...).
    pub minor_faults: u64,
    /// Faults this process took that read a page back from swap.
    pub major_faults: u64,
    /// Write faults on a copy-on-write page (copied, or reused when unshared).
    pub cow_faults: u64,
    /// Pages of this process sent to swap: PTEs turned into swap entries (the page
    /// written to its slot, or dropped because its slot already held it).
    pub swap_out_pages: u64,
    /// Pages of this process brought back from swap: swap entries mapped again (read
    /// from the disk, or found in the swap cache).
    pub swap_in_pages: u64,
    /// Pages of this process in swap right now.
    pub swap_pages: u64,
    /// Free physical frames in the machine.
    pub free_frames: u64,
    /// All physical frames the allocator manages.
    pub total_frames: u64,
    /// Free swap slots.
    pub free_swap_slots: u64,
    /// All swap slots (0 without a swap device).
    pub total_swap_slots: u64,
    /// Pages read from the swap disk since boot, the whole machine (Linux's `pswpin`).
    pub swap_reads: u64,
    /// Pages written to the swap disk since boot, the whole machine (Linux's `pswpout`).
    pub swap_writes: u64,
    /// Transparent huge pages this process maps whole (each is 512 pages of RSS;
    /// Linux's `AnonHugePages` is this times 2048 kB).
    pub anon_huge_pages: u64,
}

/// Samples of the working-set history in a [`WsStat`].
pub const WS_HISTORY: usize = 8;

/// A process's working set and page-fault frequency, filled by `wsstat`.
///
/// The kernel samples the Accessed bits of the process's pages every `tau_ms` of
/// its own CPU time; WS(τ) is the number of pages referenced in one such interval.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WsStat {
    /// WS(τ): pages referenced in the last complete interval (0 before the first).
    pub ws_pages: u64,
    /// Samples taken so far.
    pub nr_samples: u64,
    /// τ, milliseconds of the process's CPU time.
    pub tau_ms: u64,
    /// CPU time used so far, milliseconds.
    pub cpu_ms: u64,
    /// Page-fault frequency over the last interval: faults per CPU second.
    pub pff: u64,
    /// Its major part: faults that read from swap, per CPU second.
    pub major_pff: u64,
    /// Pages resident now.
    pub rss_pages: u64,
    /// The last samples, oldest first; only `min(nr_samples, WS_HISTORY)` are valid.
    pub history: [u64; WS_HISTORY],
}

impl WsStat {
    /// The struct's size in 8-byte words.
    pub const WORDS: usize = 7 + WS_HISTORY;

    /// Returns the struct as its words, in field order (its `repr(C)` layout).
    pub fn to_words(&self) -> [u64; Self::WORDS] {
        let mut words = [0; Self::WORDS];
        let head = [self.ws_pages, self.nr_samples, self.tau_ms, self.cpu_ms, self.pff, self.major_pff, self.rss_pages];
        words[..7].copy_from_slice(&head);
        words[7..].copy_from_slice(&self.history);
        words
    }
}

/// What the `audit` syscall counted, once the books balanced.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditReport {
    /// Frames the kernel heap holds (slabs and large allocations).
    pub heap_frames: u64,
    /// User frames: mapped by some process, or in the swap cache.
    pub user_frames: u64,
    /// Free frames.
    pub free_frames: u64,
    /// Swap slots in use.
    pub used_slots: u64,
}

// Four u64 with no padding: the kernel copies exactly these 32 bytes out.
const _: () = assert!(core::mem::size_of::<AuditReport>() == 32);

/// The number of `u64` words in a [`MemStat`].
pub const MEMSTAT_WORDS: usize = 15;

// Fourteen u64 with no padding: the kernel copies exactly these 112 bytes out.
const _: () = assert!(core::mem::size_of::<MemStat>() == MEMSTAT_WORDS * 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_round_trips_through_a_negative_result() {
        assert_eq!(Errno::from_ret(Errno::EFAULT.to_ret()), Err(Errno::EFAULT));
        assert_eq!(Errno::EFAULT.to_ret() as i64, -14);
        assert_eq!(Errno::from_ret(u64::MAX), Err(Errno(1)));
        assert_eq!(Errno::from_ret(-4095i64 as u64), Err(Errno(4095)));
    }

    #[test]
    fn results_outside_the_errno_range_are_successes() {
        assert_eq!(Errno::from_ret(0), Ok(0));
        assert_eq!(Errno::from_ret(0x40_0000), Ok(0x40_0000));
        assert_eq!(Errno::from_ret(-4096i64 as u64), Ok(-4096i64 as u64));
    }

    #[test]
    fn wait_status_matches_linux_macros() {
        // WEXITSTATUS(status) == (status >> 8) & 0xff; WTERMSIG(status) == status & 0x7f.
        assert_eq!(WaitStatus::exited(3).to_raw(), 0x300);
        assert_eq!(WaitStatus::exited(-1), WaitStatus::Exited(255));
        assert_eq!(WaitStatus::Killed(SIGKILL).to_raw(), 9);
        for status in [WaitStatus::Exited(0), WaitStatus::Exited(101), WaitStatus::Killed(SIGKILL)] {
            assert_eq!(WaitStatus::from_raw(status.to_raw()), status);
        }
    }

    #[test]
    fn stat_and_dirent64_have_linux_x86_64_offsets() {
        assert_eq!(core::mem::offset_of!(Stat, st_mode), 24);
        assert_eq!(core::mem::offset_of!(Stat, st_size), 48);
        assert_eq!(core::mem::offset_of!(Stat, st_blocks), 64);
        assert_eq!(core::mem::offset_of!(Stat, st_mtime), 88);
        assert_eq!(core::mem::offset_of!(Dirent64, d_reclen), 16);
        assert_eq!(core::mem::offset_of!(Dirent64, d_type), 18);
    }

    #[test]
    fn errno_prints_its_c_name() {
        extern crate std;
        use std::format;
        assert_eq!(format!("{}", Errno::ENOMEM), "ENOMEM");
        assert_eq!(format!("{:?}", Errno(99)), "Errno(99)");
    }
}
