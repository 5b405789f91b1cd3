//! Threads: `clone`, `set_tid_address`, `exit_group`, `gettid`, `tgkill`.
//!
//! A thread is a task that shares its creator's address space (`CLONE_VM`: the
//! same `Arc<IrqMutex<AddressSpace>>`, which dies with its last task) and, with
//! `CLONE_THREAD`, joins its thread group: one process, one pid (the group id,
//! `tgid`: the pid of its first task, the *leader*), each thread with its own id
//! (`gettid`), kernel stack, registers and FS base (`CLONE_SETTLS`: musl's thread
//! pointer). The open files are the group's, kept in the leader's task entry
//! (`task::with_files`).
//!
//! ```text
//!   process 7 (tgid 7)          task 7 (leader)   task 9          task 12
//!                               regs, FS, kstack  regs, FS, kstack ...
//!                                     \              |              /
//!                                      `-- Arc<AddressSpace> (one page table,
//!                                          one VMA tree, one `TlbCpus` mask)
//! ```
//! Since the threads run on several CPUs at once, every change to the space's page
//! table is shot down on the CPUs running it (`arch::shootdown`, `mm::addr_space`).
//!
//! Ending: `exit` ends one thread; `exit_group`, a kill (a fault in any thread,
//! the OOM killer, `kill`) end them all, with one message. The last thread to end
//! closes the files and wakes the parent, whose `wait4` reaps the leader once every
//! other thread is a zombie (`task::exit_current`); the other threads are reaped by
//! the reaper. At a thread's exit, 0 is written to its `clear_child_tid` word and
//! one futex waiter there is woken: how `pthread_join` learns that a thread ended.
//!
//! Locks: `TASKS` only, never across a user access.

use abi::{Errno, WaitStatus};

use super::task::{self, NewTask, Pid, TASKS, TaskState};
use super::uaccess::{copy_from_user, copy_to_user};
use crate::arch::trap::TrapFrame;
use crate::arch::user_state::{self, UserState};

/// `clone` flags (Linux's `sched.h`).
pub mod flags {
    /// The low byte: the signal sent to the parent at exit (`SIGCHLD` for a process).
    pub const CSIGNAL: u64 = 0xff;
    /// Share the address space.
    pub const CLONE_VM: u64 = 0x100;
    /// Share the cwd (the fd table holds it here).
    pub const CLONE_FS: u64 = 0x200;
    /// Share the fd table.
    pub const CLONE_FILES: u64 = 0x400;
    /// Share signal handlers (there are none here).
    pub const CLONE_SIGHAND: u64 = 0x800;
    /// Join the caller's thread group.
    pub const CLONE_THREAD: u64 = 0x10000;
    /// Share System V semaphore undo lists (there are none here).
    pub const CLONE_SYSVSEM: u64 = 0x40000;
    /// Set the new thread's FS base (its thread pointer) to `tls`.
    pub const CLONE_SETTLS: u64 = 0x80000;
    /// Write the new thread's id to `parent_tid` (in the caller's memory).
    pub const CLONE_PARENT_SETTID: u64 = 0x100000;
    /// At the new thread's exit, write 0 to `child_tid` and futex-wake it.
    pub const CLONE_CHILD_CLEARTID: u64 = 0x200000;
    /// Ignored by Linux since 2.6; musl still passes it.
    pub const CLONE_DETACHED: u64 = 0x400000;
    /// Write the new thread's id to `child_tid` (in the new task's memory).
    pub const CLONE_CHILD_SETTID: u64 = 0x1000000;
    /// Every flag this kernel knows; any other is EINVAL.
    pub const SUPPORTED: u64 = CSIGNAL
        | CLONE_VM
        | CLONE_FS
        | CLONE_FILES
        | CLONE_SIGHAND
        | CLONE_THREAD
        | CLONE_SYSVSEM
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_CLEARTID
        | CLONE_DETACHED
        | CLONE_CHILD_SETTID;
}
use flags::*;

/// `SIGCHLD`: the exit signal of a process made by `fork`.
pub const SIGCHLD: u64 = 17;

/// Checks `clone`'s flags: Linux's rules (a thread shares the signal handlers,
/// which needs a shared space), plus this kernel's own limits, each EINVAL: a
/// thread shares the fd table and cwd (it has no table of its own), a process
/// does not (the table lives in one thread group), and `CLONE_CHILD_SETTID` needs
/// `CLONE_VM` (the write is made from the caller).
fn check_flags(f: u64) -> Result<(), Errno> {
    let has = |flag: u64| f & flag != 0;
    let is_bad = f & !SUPPORTED != 0
        || (has(CLONE_THREAD) && !has(CLONE_SIGHAND))
        || (has(CLONE_SIGHAND) && !has(CLONE_VM))
        || (has(CLONE_THREAD) && !(has(CLONE_FILES) && has(CLONE_FS)))
        || (!has(CLONE_THREAD) && has(CLONE_FILES))
        || (has(CLONE_CHILD_SETTID) && !has(CLONE_VM));
    if is_bad { Err(Errno::EINVAL) } else { Ok(()) }
}

/// `clone(flags, stack, parent_tid, child_tid, tls)` (x86-64 argument order):
/// returns the new task's id in the caller, 0 in the new task (which starts at the
/// same instruction, on `stack` if it is not 0). `fork` is `clone(SIGCHLD, 0, ...)`.
pub fn sys_clone(frame: &TrapFrame, f: u64, stack: u64, parent_tid: u64, child_tid: u64, tls: u64) -> Result<u64, Errno> {
    check_flags(f)?;
    let me = task::current_pid();
    let space = task::current_space().ok_or(Errno::EPERM)?;
    let mut user_state = UserState::capture(); // the registers the CPU holds now
    if f & CLONE_SETTLS != 0 {
        if !user_state::is_valid_base(tls) {
            return Err(Errno::EPERM);
        }
        user_state.fs_base = tls;
    }
    if f & CLONE_PARENT_SETTID != 0 {
        // Probe the word now: a bad pointer is EFAULT before anything is created.
        let mut word = [0u8; 4];
        copy_from_user(&mut word, parent_tid)?;
        copy_to_user(parent_tid, &word)?;
    }
    let mut child_frame = frame.clone();
    child_frame.rax = 0; // clone returns 0 in the new task
    if stack != 0 {
        child_frame.rsp = stack;
    }
    let (name, args, tgid, group_live) = {
        let tasks = TASKS.lock();
        let t = tasks.get(&me).ok_or(Errno::EPERM)?;
        (t.name.clone(), t.args.clone(), t.tgid, t.group_live.clone())
    };
    let is_thread = f & CLONE_THREAD != 0;
    let (child_space, parent, group, files) = if is_thread {
        // Counted before it exists, so no exiting sibling takes the count to 0 meanwhile.
        group_live.fetch_add(1, core::sync::atomic::Ordering::AcqRel);
        (space, task::orphan_adopter(), Some((tgid, group_live.clone())), None)
    } else {
        let child_space = if f & CLONE_VM != 0 {
            space
        } else {
            crate::mm::fault::retry::fork_retrying(&space).map_err(super::syscall::errno_of)?
        };
        // A new process gets a copy of the fd table (offsets shared) and the cwd.
        (child_space, tgid, None, Some(task::with_files(|files| files.try_clone())?))
    };
    let created = task::new_user_task(NewTask {
        name: &name,
        args: &args,
        parent,
        group,
        space: child_space,
        frame: &child_frame,
        user_state,
        files,
    });
    let tid = match created {
        Ok(tid) => tid,
        Err(_) => {
            if is_thread {
                group_live.fetch_sub(1, core::sync::atomic::Ordering::AcqRel);
            }
            return Err(Errno::ENOMEM);
        }
    };
    let tid_bytes = (tid as u32).to_ne_bytes();
    if f & CLONE_PARENT_SETTID != 0 {
        let _ = copy_to_user(parent_tid, &tid_bytes); // probed above
    }
    if f & CLONE_CHILD_SETTID != 0 {
        let _ = copy_to_user(child_tid, &tid_bytes); // the same memory (CLONE_VM)
    }
    {
        let mut tasks = TASKS.lock();
        let (is_killed, group_exit) = tasks.get(&me).map_or((false, None), |t| (t.is_killed, t.group_exit));
        if let Some(child) = tasks.get_mut(&tid) {
            if f & CLONE_CHILD_CLEARTID != 0 {
                child.clear_child_tid = child_tid;
            }
            // A group being ended while it grows: the newcomer ends with it.
            if is_thread && is_killed {
                child.mark_killed();
                child.group_exit = group_exit;
            }
        }
    }
    super::sched::make_runnable(tid);
    Ok(tid)
}

/// `set_tid_address(tidptr)`: where 0 is written (and a futex woken) at this
/// thread's exit; returns the thread id.
pub fn sys_set_tid_address(tidptr: u64) -> Result<u64, Errno> {
    let me = task::current_pid();
    if let Some(t) = TASKS.lock().get_mut(&me) {
        t.clear_child_tid = tidptr;
    }
    Ok(me)
}

/// `getppid`: the parent of the process (of its leader, for any thread).
pub fn sys_getppid() -> Result<u64, Errno> {
    let tasks = TASKS.lock();
    let tgid = tasks.get(&task::current_pid()).map_or(0, |t| t.tgid);
    Ok(tasks.get(&tgid).map_or(0, |leader| leader.parent))
}

/// `exit_group(code)`: ends every thread of the process with status `code`.
pub fn sys_exit_group(code: u64) -> ! {
    let status = WaitStatus::exited(code as i32);
    end_group_of_current(status);
    task::exit_current(status)
}

/// Marks every other live thread of the running task's group killed, to end with
/// `status`, and wakes those that wait: each exits at its next return to user
/// mode (`task::exit_if_killed`; one in user mode gets there at its next timer tick).
pub fn end_group_of_current(status: WaitStatus) {
    let me = task::current_pid();
    let others: alloc::vec::Vec<Pid> = {
        let mut tasks = TASKS.lock();
        let Some(tgid) = tasks.get(&me).map(|t| t.tgid) else { return };
        let mut others = alloc::vec::Vec::new();
        for t in tasks.values_mut().filter(|t| t.tgid == tgid && !matches!(t.state, TaskState::Zombie(_))) {
            t.group_exit.get_or_insert(status);
            if t.pid != me && !t.is_killed {
                t.mark_killed();
                others.push(t.pid);
            }
        }
        others
    };
    for pid in others {
        super::sched::wake_if_waiting(pid);
        super::sched::wake_if_sleeping(pid);
    }
}

/// Marks every other live thread of the running task's group killed and wakes
/// those that wait (`execve`'s first step, Linux's `de_thread`): unlike
/// [`end_group_of_current`] the caller lives on and no group status is set.
/// Returns the number of threads marked.
pub fn kill_other_threads_of_current() -> usize {
    let me = task::current_pid();
    let others: alloc::vec::Vec<Pid> = {
        let mut tasks = TASKS.lock();
        let Some(tgid) = tasks.get(&me).map(|t| t.tgid) else { return 0 };
        let mut others = alloc::vec::Vec::new();
        for t in tasks.values_mut().filter(|t| t.tgid == tgid && t.pid != me && !matches!(t.state, TaskState::Zombie(_))) {
            if !t.is_killed {
                t.mark_killed();
            }
            others.push(t.pid);
        }
        others
    };
    for &pid in &others {
        super::sched::wake_if_waiting(pid);
        super::sched::wake_if_sleeping(pid);
    }
    others.len()
}

/// At a thread's exit, with its space still loaded: if it has a `clear_child_tid`
/// word and other threads live, writes 0 there and wakes one futex waiter on it
/// (Linux's `mm_release`). A bad address is ignored, as in Linux.
pub fn clear_child_tid() {
    let me = task::current_pid();
    let (addr, nr_live) = match TASKS.lock().get_mut(&me) {
        Some(t) => (core::mem::take(&mut t.clear_child_tid), t.group_live.load(core::sync::atomic::Ordering::Acquire)),
        None => return,
    };
    if addr == 0 || nr_live <= 1 {
        return;
    }
    if copy_to_user(addr, &0u32.to_ne_bytes()).is_ok() {
        let _ = super::futex::wake(addr, 1, true);
    }
}

/// `tgkill(tgid, tid, sig)` and `tkill(tid, sig)` (`tgid` = None): signal 0 checks
/// that the thread exists; any other valid signal kills its whole process, since
/// no signal is delivered otherwise (as `kill`). ESRCH for no such thread.
pub fn sys_tgkill(tgid: Option<i64>, tid: i64, sig: u64) -> Result<u64, Errno> {
    if sig > 64 || tid <= 0 || tgid.is_some_and(|g| g <= 0) {
        return Err(Errno::EINVAL);
    }
    let tid = tid as Pid;
    let is_match = TASKS.lock().get(&tid).is_some_and(|t| {
        !t.is_daemon && !matches!(t.state, TaskState::Zombie(_)) && tgid.is_none_or(|g| t.tgid == g as Pid)
    });
    if !is_match {
        return Err(Errno::ESRCH);
    }
    if sig != 0 {
        let by = task::current_tgid();
        task::kill(tid, format_args!("signal {sig} from pid {by}"));
    }
    Ok(0)
}

/// Returns the number of live threads of process `tgid` (`/proc/PID/status`'s
/// `Threads:`), and the ids of all its tasks that have not been reaped.
pub fn threads_of(tgid: Pid) -> (usize, alloc::vec::Vec<Pid>) {
    let tasks = TASKS.lock();
    let group: alloc::vec::Vec<&alloc::boxed::Box<task::Task>> = tasks.values().filter(|t| t.tgid == tgid && !t.is_daemon).collect();
    let nr_live = group.iter().filter(|t| !matches!(t.state, TaskState::Zombie(_))).count();
    (nr_live, group.iter().map(|t| t.pid).collect())
}
