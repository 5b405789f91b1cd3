//! System-call wrappers: one function per syscall, returning `Result<_, Errno>`.
//!
//! Wrappers that cannot break Rust's memory safety are safe functions. Those that
//! take memory away or change it behind the compiler's back (`munmap`, `mprotect`,
//! `madvise`) are `unsafe fn`s whose `# Safety` says what the caller promises.
//! `mmap` is safe because it only ever adds a new mapping: it passes no address
//! hint and refuses `MAP_FIXED`, which could replace live memory.

use abi::{Errno, MemStat, WaitStatus, nr};

use crate::syscall::{syscall0, syscall1, syscall2, syscall3, syscall4, syscall6};

/// A process id. `wait` accepts -1 for "any child".
pub type Pid = i64;

/// Writes `buf` to file descriptor `fd` (1 and 2 are the console); returns the bytes written.
pub fn write(fd: i32, buf: &[u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    let ret = unsafe { syscall3(nr::WRITE, fd as u64, buf.as_ptr() as u64, buf.len() as u64) };
    Errno::from_ret(ret).map(|n| n as usize)
}

/// Ends the process with exit status `code`; the parent's `wait` sees its low 8 bits.
pub fn exit(code: i32) -> ! {
    // SAFETY: exit touches no memory of ours.
    unsafe { syscall1(nr::EXIT, code as i64 as u64) };
    // The kernel never returns from exit. If it does, fault rather than run on:
    // the invalid opcode gets the process killed, which a test will notice.
    // SAFETY: `ud2` raises #UD; it neither reads nor writes memory.
    unsafe { core::arch::asm!("ud2", options(noreturn, nomem, nostack)) }
}

/// Returns the caller's process id.
pub fn getpid() -> Pid {
    // SAFETY: getpid touches no memory.
    unsafe { syscall0(nr::GETPID) as Pid }
}

/// Which side of a `fork` the caller is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fork {
    /// This is the new process.
    Child,
    /// This is the original process; the value is the child's pid.
    Parent(Pid),
}

/// Creates a child process with a copy-on-write copy of the caller's memory.
///
/// Safe here because user programs have exactly one thread: nothing can hold a
/// lock across the fork.
pub fn fork() -> Result<Fork, Errno> {
    // SAFETY: fork copies the address space; it does not change ours.
    let ret = unsafe { syscall0(nr::FORK) };
    Errno::from_ret(ret).map(|pid| if pid == 0 { Fork::Child } else { Fork::Parent(pid as Pid) })
}

/// Replaces this program with the one in the file `path`, started with `argv` and
/// `envp` (NULL-terminated arrays of NUL-terminated strings); returns only on error.
///
/// # Safety
/// `path` must be NUL-terminated, and `argv`/`envp` null or NULL-terminated arrays
/// of pointers to NUL-terminated strings (tests pass bad ones on purpose: the
/// kernel only reads them and answers EFAULT).
pub unsafe fn execve(path: *const u8, argv: *const *const u8, envp: *const *const u8) -> Errno {
    // SAFETY: the kernel only reads these; on success this program is gone.
    let ret = unsafe { syscall3(nr::EXECVE, path as u64, argv as u64, envp as u64) };
    Errno::from_ret(ret).err().unwrap_or(Errno::EINVAL)
}

/// Waits for child `pid` (or any child, for -1) to end; returns its pid and status.
///
/// Fails with `ECHILD` when there is no such child left to wait for.
pub fn waitpid(pid: Pid) -> Result<(Pid, WaitStatus), Errno> {
    let mut status: i32 = 0;
    // SAFETY: `status` is valid for a 4-byte write; options 0, rusage null.
    let ret = unsafe { syscall4(nr::WAIT4, pid as u64, &raw mut status as u64, 0, 0) };
    Errno::from_ret(ret).map(|child| (child as Pid, WaitStatus::from_raw(status)))
}

/// Waits for any child to end; returns its pid and status (`wait4(-1, ...)`).
pub fn wait() -> Result<(Pid, WaitStatus), Errno> {
    waitpid(-1)
}

/// Gives the CPU to another runnable process, if there is one.
pub fn yield_now() {
    // SAFETY: sched_yield touches no memory.
    unsafe { syscall0(nr::SCHED_YIELD) };
}

/// Maps `len` bytes (rounded up to pages) of new anonymous memory; returns its start.
///
/// `prot` is a combination of [`abi::prot`] bits; `flags` must choose one of
/// `map::PRIVATE`/`map::SHARED` and may add `map::ANONYMOUS` (implied: there
/// are no files yet). The kernel picks the address. `map::FIXED` gives `EINVAL`
/// here without asking the kernel: placing a mapping over existing memory is not
/// a safe operation.
pub fn mmap(len: usize, prot: u64, flags: u64) -> Result<*mut u8, Errno> {
    if flags & abi::map::FIXED != 0 {
        return Err(Errno::EINVAL);
    }
    let flags = flags | abi::map::ANONYMOUS;
    // SAFETY: with no address hint and no MAP_FIXED, mmap only adds a new mapping.
    let ret = unsafe { syscall6(nr::MMAP, 0, len as u64, prot, flags, -1i64 as u64, 0) };
    Errno::from_ret(ret).map(|addr| addr as *mut u8)
}

/// Unmaps the pages of `[addr, addr + len)`; touching them afterwards kills the process.
///
/// # Safety
/// No live Rust reference may point into the range.
pub unsafe fn munmap(addr: *mut u8, len: usize) -> Result<(), Errno> {
    // SAFETY: the caller promises nothing in Rust still uses the range.
    let ret = unsafe { syscall2(nr::MUNMAP, addr as u64, len as u64) };
    Errno::from_ret(ret).map(|_| ())
}

/// Changes the protection of the pages of `[addr, addr + len)` to `prot`.
///
/// # Safety
/// No live Rust reference into the range may be used in a way the new protection
/// forbids (a `&mut` into a page made read-only, say).
pub unsafe fn mprotect(addr: *mut u8, len: usize, prot: u64) -> Result<(), Errno> {
    // SAFETY: the caller promises the new protection breaks no live reference.
    let ret = unsafe { syscall3(nr::MPROTECT, addr as u64, len as u64, prot) };
    Errno::from_ret(ret).map(|_| ())
}

/// Gives the kernel `advice` (an [`abi::madv`] value) about `[addr, addr + len)`.
///
/// # Safety
/// `madv::DONTNEED` replaces the contents with zeros: no live Rust reference may
/// point into the range. (The other advice values do not change contents.)
pub unsafe fn madvise(addr: *mut u8, len: usize, advice: u64) -> Result<(), Errno> {
    // SAFETY: the caller promises no reference sees the contents change.
    let ret = unsafe { syscall3(nr::MADVISE, addr as u64, len as u64, advice) };
    Errno::from_ret(ret).map(|_| ())
}

/// Moves the program break (the end of the heap) to `addr`; returns the new break.
///
/// `brk(0)` returns the current break. Following Linux, the kernel answers a
/// failed request with the unchanged break rather than an error code, so a result
/// other than `addr` is reported as `ENOMEM`.
pub fn brk(addr: usize) -> Result<usize, Errno> {
    // SAFETY: moving the break only adds or removes heap pages, which no Rust
    // reference points to (there is no allocator on the heap).
    let ret = unsafe { syscall1(nr::BRK, addr as u64) };
    let new_break = Errno::from_ret(ret)? as usize;
    if addr != 0 && new_break != addr {
        return Err(Errno::ENOMEM);
    }
    Ok(new_break)
}

/// Returns the memory counters of this process and of the machine.
pub fn memstat() -> Result<MemStat, Errno> {
    let mut stat = MemStat::default();
    // SAFETY: `stat` is valid for a write of size_of::<MemStat>() bytes.
    let ret = unsafe { syscall1(nr::MEMSTAT, &raw mut stat as u64) };
    Errno::from_ret(ret).map(|_| stat)
}

/// Returns the working set and page-fault frequency of process `pid` (0: this one).
pub fn wsstat(pid: Pid) -> Result<abi::WsStat, Errno> {
    let mut stat = abi::WsStat::default();
    // SAFETY: `stat` is valid for a write of size_of::<WsStat>() bytes.
    let ret = unsafe { syscall2(nr::WSSTAT, pid as u64, &raw mut stat as u64) };
    Errno::from_ret(ret).map(|_| stat)
}

/// Returns what the kernel knows about `addr` in process `pid` (0: this one): the
/// page-table walk, VMA, frame and next fault ([`abi::Explain`]).
pub fn explain(pid: Pid, addr: u64) -> Result<abi::Explain, Errno> {
    let mut words = [0u64; abi::Explain::WORDS];
    // SAFETY: `words` is valid for a write of Explain::WORDS * 8 bytes.
    let ret = unsafe { syscall3(nr::EXPLAIN, pid as u64, addr, words.as_mut_ptr() as u64) };
    Errno::from_ret(ret).map(|_| abi::Explain::from_words(&words))
}

/// Runs fault-trace operation `op` (`abi::trace::op`): OFF and ON ignore `buf`; READ
/// fills `buf` with the last faults of `pid` (0: all), oldest first, and returns how many.
pub fn fault_trace(op: u64, pid: Pid, buf: &mut [abi::FaultTraceRecord]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for a write of buf.len() records (plain u64 words).
    let ret = unsafe { syscall4(nr::FAULT_TRACE, op, pid as u64, buf.as_mut_ptr() as u64, buf.len() as u64) };
    Errno::from_ret(ret).map(|n| n as usize)
}

/// Sets the OOM adjustment of process `pid` (0: this one), -1000..=1000.
pub fn set_oom_score_adj(pid: Pid, adj: i64) -> Result<(), Errno> {
    // SAFETY: no pointer arguments.
    let ret = unsafe { syscall2(nr::OOM_SCORE_ADJ, pid as u64, adj as u64) };
    Errno::from_ret(ret).map(|_| ())
}

/// Creates a memory group with `memory.max` = `max_pages`, `memory.high` =
/// `high_pages` (`u64::MAX`: no limit); returns its id.
pub fn memcg_create(max_pages: u64, high_pages: u64) -> Result<u64, Errno> {
    // SAFETY: no pointer arguments.
    let ret = unsafe { syscall2(nr::MEMCG_CREATE, max_pages, high_pages) };
    Errno::from_ret(ret)
}

/// Puts process `pid` (0: this one) in memory group `group` (0: the root group).
pub fn memcg_attach(pid: Pid, group: u64) -> Result<(), Errno> {
    // SAFETY: no pointer arguments.
    let ret = unsafe { syscall2(nr::MEMCG_ATTACH, pid as u64, group) };
    Errno::from_ret(ret).map(|_| ())
}

/// Same-page merging: one of `abi::ksm_op`'s operations with `value`.
pub fn ksm_ctl(op: u64, value: u64) -> Result<u64, Errno> {
    // SAFETY: no pointer arguments.
    let ret = unsafe { syscall2(nr::KSM_CTL, op, value) };
    Errno::from_ret(ret)
}

/// Switches load control on or off.
pub fn loadctl(is_on: u64) -> Result<(), Errno> {
    // SAFETY: no pointer arguments.
    let ret = unsafe { syscall1(nr::LOADCTL, is_on) };
    Errno::from_ret(ret).map(|_| ())
}

/// Returns the nanoseconds since boot (`clock_gettime(CLOCK_MONOTONIC)`).
pub fn now_ns() -> u64 {
    let mut ts = abi::Timespec::default();
    // SAFETY: `ts` is valid for a write of size_of::<Timespec>() bytes.
    let ret = unsafe { syscall2(nr::CLOCK_GETTIME, abi::CLOCK_MONOTONIC, &raw mut ts as u64) };
    Errno::from_ret(ret).map(|_| ts.as_nanos()).unwrap_or(0)
}

/// Writes the caller's VMAs as text into `buf` (see [`abi`] for the line format);
/// returns the bytes written.
pub fn maps(buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let ret = unsafe { syscall2(nr::MAPS, buf.as_mut_ptr() as u64, buf.len() as u64) };
    Errno::from_ret(ret).map(|n| n as usize)
}

/// Copies from process `pid`'s memory, described by `remote`, into the caller's
/// buffers `local`; returns the bytes copied (fewer if a remote page is inaccessible
/// after some were copied). `flags` must be 0 (it exists for Linux's signature).
///
/// # Safety
/// Every local iovec must describe memory of this process that may be overwritten:
/// writable, and with no live Rust reference into it.
pub unsafe fn process_vm_readv(pid: Pid, local: &[abi::IoVec], remote: &[abi::IoVec], flags: u64) -> Result<usize, Errno> {
    let (l, r) = (local.as_ptr() as u64, remote.as_ptr() as u64);
    // SAFETY: the kernel reads the two iovec arrays and writes only where the caller
    // promised it may.
    let ret = unsafe { syscall6(nr::PROCESS_VM_READV, pid as u64, l, local.len() as u64, r, remote.len() as u64, flags) };
    Errno::from_ret(ret).map(|n| n as usize)
}

/// Copies the caller's buffers `local` into process `pid`'s memory at `remote`;
/// returns the bytes copied. Safe: the caller's memory is only read (a bad local
/// address is `EFAULT`).
pub fn process_vm_writev(pid: Pid, local: &[abi::IoVec], remote: &[abi::IoVec], flags: u64) -> Result<usize, Errno> {
    let (l, r) = (local.as_ptr() as u64, remote.as_ptr() as u64);
    // SAFETY: the kernel only reads our memory here.
    let ret = unsafe { syscall6(nr::PROCESS_VM_WRITEV, pid as u64, l, local.len() as u64, r, remote.len() as u64, flags) };
    Errno::from_ret(ret).map(|n| n as usize)
}

/// Reads `buf.len()` bytes of process `pid` at `remote_addr` into `buf` (one iovec
/// each side); returns the bytes read.
pub fn process_vm_read(pid: Pid, buf: &mut [u8], remote_addr: u64) -> Result<usize, Errno> {
    let local = [abi::IoVec { base: buf.as_mut_ptr() as u64, len: buf.len() as u64 }];
    let remote = [abi::IoVec { base: remote_addr, len: buf.len() as u64 }];
    // SAFETY: the only local buffer is `buf`, borrowed mutably for the call.
    unsafe { process_vm_readv(pid, &local, &remote, 0) }
}

/// Copies the process's argument string into `buf`; returns it as text (cut at
/// `buf.len()` bytes, and empty if it is not UTF-8).
///
/// The kernel gives every process a string of space-separated words at spawn
/// (`run=NAME` passes the kernel command line); fork copies it.
pub fn args(buf: &mut [u8]) -> &str {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let ret = unsafe { syscall2(nr::ARGS, buf.as_mut_ptr() as u64, buf.len() as u64) };
    let n = Errno::from_ret(ret).map_or(0, |n| (n as usize).min(buf.len()));
    core::str::from_utf8(&buf[..n]).unwrap_or("")
}

/// Returns the value of the first `key=value` word of `args`, if there is one.
pub fn arg_value<'a>(args: &'a str, key: &str) -> Option<&'a str> {
    args.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// Asks the kernel to run its memory-consistency audit; returns what it counted,
/// or `Err(EIO)` if the books do not balance (the violation is printed on the
/// console).
pub fn audit() -> Result<abi::AuditReport, Errno> {
    let mut report = abi::AuditReport::default();
    // SAFETY: `report` is valid for a write of size_of::<AuditReport>() bytes.
    let ret = unsafe { syscall1(nr::AUDIT, &raw mut report as u64) };
    Errno::from_ret(ret).map(|_| report)
}

/// Kills process `pid` (`kill(pid, sig)`; there is no other signal action: every
/// signal but 0 kills, and 0 only checks that `pid` lives).
pub fn kill(pid: Pid, sig: u64) -> Result<(), Errno> {
    // SAFETY: kill touches no memory of ours.
    let ret = unsafe { syscall2(nr::KILL, pid as u64, sig) };
    Errno::from_ret(ret).map(|_| ())
}

/// Sleeps `ms` milliseconds (rounded up to 10 ms timer ticks), through `nanosleep`.
pub fn sleep_ms(ms: u64) -> Result<(), Errno> {
    let spec: [i64; 2] = [(ms / 1000) as i64, ((ms % 1000) * 1_000_000) as i64];
    // SAFETY: `spec` is a valid 16-byte `struct timespec`; no remainder is asked for.
    let ret = unsafe { syscall2(nr::NANOSLEEP, spec.as_ptr() as u64, 0) };
    Errno::from_ret(ret).map(|_| ())
}

/// Makes `pid` the console's foreground process, the one Ctrl-C kills
/// (`ioctl(0, TIOCSPGRP, &pid)`).
pub fn set_foreground(pid: Pid) -> Result<(), Errno> {
    let pid = pid as i32;
    // SAFETY: `pid` is a valid 4-byte read for the kernel.
    let ret = unsafe { syscall3(nr::IOCTL, 0, abi::TIOCSPGRP, &raw const pid as u64) };
    Errno::from_ret(ret).map(|_| ())
}

/// Reaps child `pid` if it has ended (`wait4(pid, WNOHANG)`): its status, or
/// `None` if it still runs. ECHILD if it is not a child.
pub fn try_waitpid(pid: Pid) -> Result<Option<WaitStatus>, Errno> {
    let mut status: i32 = 0;
    // SAFETY: `status` is valid for a 4-byte write; rusage null.
    let ret = unsafe { syscall4(nr::WAIT4, pid as u64, &raw mut status as u64, abi::WNOHANG, 0) };
    Errno::from_ret(ret).map(|child| (child != 0).then(|| WaitStatus::from_raw(status)))
}
