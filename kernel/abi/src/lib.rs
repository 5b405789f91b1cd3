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
//! | [`WaitStatus`] | how `wait4` reports an exit code or a kill (Linux's bit layout) |
//! | [`MemStat`] | what `memstat` fills in: the caller's and the machine's memory counters |
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

/// The size of a page: the unit of `mmap`, `munmap`, `mprotect`, `madvise` and `brk`.
pub const PAGE_SIZE: usize = 4096;

/// The address user programs are linked at: their first loadable segment starts here.
///
/// The first 4 MiB stay unmapped so that a null pointer, or a small offset from
/// one, faults (as on Linux, whose classic non-PIE base is also 0x400000).
pub const USER_IMAGE_BASE: u64 = 0x40_0000;

/// Syscall numbers, the value of `rax` at the `syscall` instruction.
pub mod nr {
    /// `read(fd, buf, len) -> bytes read`: not implemented here (`ENOSYS`); a program
    /// running on Linux uses it to read `/proc` (see `ulib::linux`).
    pub const READ: u64 = 0;
    /// `write(fd, buf, len) -> bytes written`; fd 1 and 2 are the console.
    pub const WRITE: u64 = 1;
    /// `open(path, flags, mode) -> fd`: not implemented here (`ENOSYS`); Linux only.
    pub const OPEN: u64 = 2;
    /// `close(fd) -> 0`: not implemented here (`ENOSYS`); Linux only.
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
    /// `madvise(addr, len, advice) -> 0`.
    pub const MADVISE: u64 = 28;
    /// `getpid() -> pid`.
    pub const GETPID: u64 = 39;
    /// `fork() -> child pid in the parent, 0 in the child`.
    pub const FORK: u64 = 57;
    /// `exit(code)`: does not return.
    pub const EXIT: u64 = 60;
    /// `wait4(pid, status, options, rusage) -> pid of the reaped child`; pid -1 = any
    /// child, options must be 0 and rusage null.
    pub const WAIT4: u64 = 61;
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

    // What a C library calls on its own (musl's startup, stdio, fork); the kernel
    // answers them in `proc::syscall_libc`.
    /// `rt_sigprocmask(how, set, oldset, sigsetsize) -> 0`: the blocked-signal mask.
    pub const RT_SIGPROCMASK: u64 = 14;
    /// `ioctl(fd, request, arg)`: the console is no terminal, `ENOTTY`.
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
    /// `gettid() -> thread id` (the pid: one thread per process).
    pub const GETTID: u64 = 186;
    /// `set_tid_address(tidptr) -> thread id`.
    pub const SET_TID_ADDRESS: u64 = 218;
    /// `exit_group(code)`: does not return.
    pub const EXIT_GROUP: u64 = 231;
}

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
    /// Write the pages out to swap now and free their frames.
    pub const PAGEOUT: u64 = 21;
}

/// An error number (`errno`), as a syscall reports it: the result `-errno`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub u16);

impl Errno {
    /// Operation not permitted.
    pub const EPERM: Errno = Errno(1);
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
    /// Operation not supported (an unknown flag with `MAP_SHARED_VALIDATE`).
    pub const EOPNOTSUPP: Errno = Errno(95);

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
pub const MEMSTAT_WORDS: usize = 14;

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
    fn errno_prints_its_c_name() {
        extern crate std;
        use std::format;
        assert_eq!(format!("{}", Errno::ENOMEM), "ENOMEM");
        assert_eq!(format!("{:?}", Errno(99)), "Errno(99)");
    }
}
