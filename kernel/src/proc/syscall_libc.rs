//! The system calls a C library makes on its own: musl's startup code, its stdio
//! and its `fork`/`wait` wrappers, with Linux's numbers, arguments and errnos.
//!
//! What a static musl program calls before and around `main` (seen with `strace`
//! on Linux, and the reason each call is here):
//!
//! | call | who | what the kernel does |
//! |---|---|---|
//! | `arch_prctl(ARCH_SET_FS, tp)` | startup (`__init_tp`) | sets the FS base: the thread pointer, saved per task |
//! | `set_tid_address(&tid)` | startup | records where 0 goes at the thread's exit; returns the thread id (`proc::thread`) |
//! | `ioctl(1, TIOCGWINSZ, &ws)` | stdio, first write to stdout | `ENOTTY`: the console is no terminal device, so stdout is fully buffered |
//! | `writev(fd, iov, 2)` | stdio, every flush | writes the buffers in order through `write` |
//! | `rt_sigprocmask` | `fork` (blocks all signals around the fork) | keeps the task's mask and reports the old one |
//! | `gettid()` | `fork`, in the child | the thread id |
//! | `exit_group(code)` | `exit` / `_Exit` | every thread of the process exits (`proc::thread`) |
//! | `clone`, `futex`, `tgkill`/`tkill` | `pthread_create`, mutexes, `pthread_join`, `raise` | `proc::thread`, `proc::futex` |
//! | `sysinfo(&info)` | `sysconf(_SC_PHYS_PAGES)` | RAM, free RAM, swap, uptime, process count |
//! | `sched_getaffinity(0, len, mask)` | `sysconf(_SC_NPROCESSORS_ONLN)` | the online CPUs: a task may run on any of them |
//! | `getuid`, `geteuid`, `getgid`, `getegid`, `getppid` | programs | ids: everyone is root (0) here |
//! | `kill(pid, sig)` | `kill`, the shell | kills `pid` (no other signal action exists) |
//! | `nanosleep(&req, &rem)` | `sleep` | sleeps on the timer, in 10 ms ticks |
//! | `ioctl(0, TIOCSPGRP, &pid)` | the shell | sets the process Ctrl-C kills (`crate::tty`) |
//!
//! `brk`, `mmap`, `munmap`, `madvise`, `getpid`, `clock_gettime` and `wait4` (what
//! musl's malloc and `waitpid` use) are the kernel's ordinary calls in `syscall.rs`.
//! No signal is ever delivered yet: the mask is state that `fork` inherits and
//! `rt_sigprocmask` reports, and a fault still kills with `SIGKILL`.

use abi::{Errno, nr};

use super::task;
use super::uaccess::{copy_from_user, copy_to_user};
use crate::arch::user_state::{self, SegmentBase};
use crate::mm::{frame, swap};

/// `arch_prctl` codes (Linux's `asm/prctl.h`).
const ARCH_SET_GS: u64 = 0x1001;
const ARCH_SET_FS: u64 = 0x1002;
const ARCH_GET_FS: u64 = 0x1003;
const ARCH_GET_GS: u64 = 0x1004;

/// `rt_sigprocmask` actions.
const SIG_BLOCK: u64 = 0;
const SIG_UNBLOCK: u64 = 1;
const SIG_SETMASK: u64 = 2;
/// SIGKILL (9) and SIGSTOP (19) cannot be blocked: Linux drops them from any mask.
const UNBLOCKABLE: u64 = (1 << (9 - 1)) | (1 << (19 - 1));

/// The most buffers one `writev` takes (`IOV_MAX`, as Linux's `UIO_MAXIOV`).
const IOV_MAX: u64 = abi::IOV_MAX;

/// Routes the calls of this module; `None` if `number` is not one of them.
pub fn dispatch(number: u64, args: [u64; 6]) -> Option<Result<u64, Errno>> {
    let result = match number {
        nr::ARCH_PRCTL => sys_arch_prctl(args[0], args[1]),
        nr::SET_TID_ADDRESS => super::thread::sys_set_tid_address(args[0]),
        nr::GETTID => Ok(task::current_pid()),
        nr::EXIT_GROUP => super::thread::sys_exit_group(args[0]),
        nr::FUTEX => super::futex::sys_futex(args[0], args[1], args[2], args[3]),
        nr::TGKILL => super::thread::sys_tgkill(Some(args[0] as i64), args[1] as i64, args[2]),
        nr::TKILL => super::thread::sys_tgkill(None, args[0] as i64, args[1]),
        nr::WRITEV => sys_writev(args[0], args[1], args[2]),
        nr::IOCTL => sys_ioctl(args[0], args[1], args[2]),
        nr::KILL => sys_kill(args[0] as i64, args[1]),
        nr::NANOSLEEP => sys_nanosleep(args[0], args[1]),
        nr::RT_SIGPROCMASK => sys_rt_sigprocmask(args[0], args[1], args[2], args[3]),
        nr::SYSINFO => sys_sysinfo(args[0]),
        nr::SCHED_GETAFFINITY => sys_sched_getaffinity(args[0] as i64, args[1], args[2]),
        nr::GETUID | nr::GETEUID | nr::GETGID | nr::GETEGID => Ok(0),
        nr::GETPPID => super::thread::sys_getppid(),
        _ => return None,
    };
    Some(result)
}

/// Runs `f` on the running task's entry.
fn with_current<R>(f: impl FnOnce(&mut task::Task) -> R) -> R {
    let mut tasks = task::TASKS.lock();
    f(tasks.get_mut(&task::current_pid()).expect("syscall: no current task"))
}

/// `arch_prctl`: sets or reads the FS or GS base. A base outside the user half is
/// `EPERM`, an unknown code `EINVAL`, a bad pointer for the `GET` codes `EFAULT`.
fn sys_arch_prctl(code: u64, addr: u64) -> Result<u64, Errno> {
    let which = if matches!(code, ARCH_SET_FS | ARCH_GET_FS) { SegmentBase::Fs } else { SegmentBase::Gs };
    match code {
        // Loaded now; the scheduler saves it with the task when it switches away.
        ARCH_SET_FS | ARCH_SET_GS => user_state::write_base(which, addr).then_some(0).ok_or(Errno::EPERM),
        ARCH_GET_FS | ARCH_GET_GS => {
            copy_to_user(addr, &user_state::read_base(which).to_ne_bytes())?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// `writev`: the buffers are written in order, as one `write` each; a bad fd is
/// `EBADF`, more than `IOV_MAX` buffers or a total beyond `isize::MAX` `EINVAL`, a
/// bad array `EFAULT`. A failure after some bytes were written returns the count.
fn sys_writev(fd: u64, iov_addr: u64, count: u64) -> Result<u64, Errno> {
    super::syscall::sys_write(fd, 0, 0)?; // the fd check, first as in Linux
    if count > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut bytes = alloc::vec![0u8; count as usize * 16];
    copy_from_user(&mut bytes, iov_addr)?;
    let (iovecs, _) = bytes.as_chunks::<16>();
    let word_fn = |b: &[u8]| u64::from_ne_bytes(b.try_into().expect("8 bytes"));
    let buffers: alloc::vec::Vec<(u64, u64)> = iovecs.iter().map(|c| (word_fn(&c[..8]), word_fn(&c[8..]))).collect();
    let total = buffers.iter().try_fold(0u64, |sum, &(_, len)| sum.checked_add(len));
    if total.is_none_or(|t| t > isize::MAX as u64) {
        return Err(Errno::EINVAL);
    }
    let mut done = 0;
    for (base, len) in buffers {
        match super::syscall::sys_write(fd, base, len) {
            Ok(n) => {
                done += n;
                if n < len {
                    break;
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(done)
}

/// `ioctl`: the console answers only the foreground-process requests a shell makes
/// (`TIOCSPGRP` sets the pid Ctrl-C kills, `TIOCGPGRP` reads it; a pid stands in
/// for a process group; pid 0 means none, so that a shell reading its next line is
/// not killed by Ctrl-C: Linux's shells ignore SIGINT instead). It has no termios and no window size, so every other
/// request is `ENOTTY`, which is what musl's stdio asks with `TIOCGWINSZ` to decide
/// whether stdout is line-buffered. A file that is not the console: `ENOTTY`; a
/// closed fd: `EBADF`.
fn sys_ioctl(fd: u64, request: u64, arg: u64) -> Result<u64, Errno> {
    let file = super::fd_syscall::file_of(fd)?;
    if !matches!(file.object, crate::fs::file::FileObject::Console) {
        return Err(Errno::ENOTTY);
    }
    match request {
        abi::TIOCSPGRP => {
            let mut bytes = [0u8; 4];
            copy_from_user(&mut bytes, arg)?;
            let pid = i32::from_ne_bytes(bytes);
            if pid < 0 {
                return Err(Errno::EINVAL);
            }
            if pid > 0 && !task::is_live_user_process(pid as u64) {
                return Err(Errno::ESRCH);
            }
            crate::tty::set_foreground(pid as u64)?;
            Ok(0)
        }
        abi::TIOCGPGRP => {
            let pid = crate::tty::foreground() as i32;
            copy_to_user(arg, &pid.to_ne_bytes())?;
            Ok(0)
        }
        _ => Err(Errno::ENOTTY),
    }
}

/// `kill(pid, sig)`: signal 0 only checks that `pid` is a live process; any other
/// valid signal (1..=64) kills it, since no signal is delivered otherwise (its
/// parent's `wait` reports SIGKILL). `pid` must name one process: process groups
/// (`pid <= 0`) are EINVAL here; a pid that is not a live user process is ESRCH
/// (kernel threads are not signalled: EPERM).
fn sys_kill(pid: i64, sig: u64) -> Result<u64, Errno> {
    if sig > 64 || pid <= 0 {
        return Err(Errno::EINVAL);
    }
    let pid = pid as u64;
    if task::is_daemon(pid) {
        return Err(Errno::EPERM);
    }
    if !task::is_live_user_process(pid) {
        return Err(Errno::ESRCH);
    }
    if sig != 0 {
        let by = task::current_pid();
        task::kill(pid, format_args!("signal {sig} from pid {by}"));
    }
    Ok(0)
}

/// `nanosleep(&req, &rem)`: sleeps at least `req` (rounded up to timer ticks of
/// 10 ms); EINVAL for a negative time or nanoseconds out of 0..1e9. A process
/// killed while it sleeps wakes at once (EINTR; it exits on the way out). `rem` is
/// not written: no signal interrupts a sleep early otherwise.
fn sys_nanosleep(req: u64, _rem: u64) -> Result<u64, Errno> {
    let deadline = super::futex::deadline_of(req)?;
    static SLEEPERS: crate::sync::WaitQueue = crate::sync::WaitQueue::new();
    let is_done = SLEEPERS.wait_until_deadline(task::current_is_killed, deadline);
    if is_done { Err(Errno::EINTR) } else { Ok(0) }
}

/// `rt_sigprocmask`: changes and reports the blocked-signal mask. The set size must
/// be 8 bytes (`EINVAL`); `how` is checked only when a new set is given, as Linux
/// does; SIGKILL and SIGSTOP are never blocked.
fn sys_rt_sigprocmask(how: u64, set: u64, old_set: u64, set_size: u64) -> Result<u64, Errno> {
    if set_size != 8 {
        return Err(Errno::EINVAL);
    }
    let old = with_current(|t| t.sigmask);
    if set != 0 {
        let mut bytes = [0u8; 8];
        copy_from_user(&mut bytes, set)?;
        let given = u64::from_ne_bytes(bytes);
        let new = match how {
            SIG_BLOCK => old | given,
            SIG_UNBLOCK => old & !given,
            SIG_SETMASK => given,
            _ => return Err(Errno::EINVAL),
        };
        with_current(|t| t.sigmask = new & !UNBLOCKABLE);
    }
    if old_set != 0 {
        copy_to_user(old_set, &old.to_ne_bytes())?;
    }
    Ok(0)
}

/// `sysinfo`: fills Linux's `struct sysinfo` (112 bytes on x86-64) with sizes in
/// bytes (`mem_unit` = 1). No load average is kept (zeros).
fn sys_sysinfo(out: u64) -> Result<u64, Errno> {
    let info = frame::buddyinfo();
    let (free_slots, total_slots) = swap::slot_counts();
    let page = crate::mm::PAGE_SIZE;
    let mut bytes = [0u8; 112];
    let mut put = |at: usize, value: u64| bytes[at..at + 8].copy_from_slice(&value.to_ne_bytes());
    put(0, crate::arch::timer::uptime_ms() / 1000); // uptime; loads[3] at 8..32 stay 0
    put(32, info.nr_managed_frames * page); // totalram
    put(40, info.nr_free_frames * page); // freeram
    put(64, total_slots * page); // totalswap
    put(72, free_slots * page); // freeswap
    let nr_procs = (task::nr_tasks().saturating_sub(1)).min(u16::MAX as usize) as u16;
    bytes[80..82].copy_from_slice(&nr_procs.to_ne_bytes()); // procs (task 0 left out)
    bytes[104..108].copy_from_slice(&1u32.to_ne_bytes()); // mem_unit
    copy_to_user(out, &bytes)?;
    Ok(0)
}

/// `sched_getaffinity(pid, len, mask)`: writes the mask of online CPUs (a user task
/// may run on any of them) as one `unsigned long` and returns its size, 8. As
/// Linux: a `len` smaller than the mask or not a multiple of 8 is EINVAL, a pid
/// that names no task ESRCH (0 is the caller).
fn sys_sched_getaffinity(pid: i64, len: u64, mask: u64) -> Result<u64, Errno> {
    const MASK_BYTES: u64 = core::mem::size_of::<u64>() as u64;
    if len < MASK_BYTES || !len.is_multiple_of(MASK_BYTES) {
        return Err(Errno::EINVAL);
    }
    if pid < 0 || (pid != 0 && !task::TASKS.lock().contains_key(&(pid as u64))) {
        return Err(Errno::ESRCH);
    }
    copy_to_user(mask, &crate::arch::shootdown::online_mask().to_ne_bytes())?;
    Ok(MASK_BYTES)
}

/// Returns ENOSYS for a syscall the kernel does not have, with a line naming it, so
/// that a C program that stops working says what it missed.
pub fn unknown(number: u64) -> Result<u64, Errno> {
    let pid = task::current_pid();
    let name = task::TASKS.lock().get(&pid).map(|t| t.name.clone()).unwrap_or_default();
    log::warn!("pid {pid} ({name}): syscall {number} is not implemented: ENOSYS");
    Err(Errno::ENOSYS)
}
