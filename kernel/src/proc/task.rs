//! Tasks: the task table, process creation, exit, wait and kill.
//!
//! A [`Task`] has a pid, a state, its own kernel stack (with a guard page), the
//! saved stack pointer of its last context switch, and for user processes an
//! address space. Tasks live in boxes in [`TASKS`], so a task's address does not
//! change while it is switched out.
//!
//! Life of a process: `spawn` (or `fork`) creates it Runnable; it runs, enters
//! the kernel on syscalls, faults and interrupts; `exit` (or a kill) makes it a
//! Zombie after releasing its memory; its parent's `wait` reaps it (frees the
//! kernel stack and the task). Children of an exiting task are orphans: they are
//! handed to the *reaper*, a kernel thread that does what `init` does on Unix,
//! waiting for whatever children it is given (see [`start_reaper`]).
//!
//! Locks: `TASKS`, before an address-space lock (the lock order is in [`crate::mm`]);
//! neither is held across a context switch.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use x86_64::instructions::interrupts;

pub use abi::WaitStatus;

use super::sched;
use crate::arch::trap::TrapFrame;
use crate::arch::user_state::UserState;
use crate::fs::file::FdTable;
use crate::mm::addr_space::AddressSpace;
use crate::mm::rmap::SpaceRef;
use crate::mm::kstack::KernelStack;
use crate::mm::process_hooks::UserProcess;
use crate::sync::IrqMutex;

/// A process or task id.
pub type Pid = u64;

/// Pages of each task's kernel stack.
pub const KERNEL_STACK_PAGES: u64 = 4;

/// Where a task stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Ready to run (or running).
    Runnable,
    /// Waiting for a child to exit.
    WaitingForChild,
    /// Waiting on a wait queue (`Task::wait_key`) until a wake-up on that queue.
    Sleeping,
    /// Exited; the parent has not reaped it yet.
    Zombie(WaitStatus),
}

/// One task.
pub struct Task {
    /// Its id.
    pub pid: Pid,
    /// The parent's id (task 0 for orphans).
    pub parent: Pid,
    /// A name for messages (the program name).
    pub name: String,
    /// The argument string the `args` syscall returns (words separated by spaces):
    /// given at spawn, inherited across fork.
    pub args: String,
    /// Where it stands.
    pub state: TaskState,
    /// Its kernel stack (`None` for task 0, which runs on the boot stack).
    pub kstack: Option<KernelStack>,
    /// The stack pointer saved by the last context switch away from it.
    pub saved_rsp: u64,
    /// Its memory, for user processes.
    pub space: Option<Arc<IrqMutex<AddressSpace>>>,
    /// Killed by another task (the OOM killer): exits the next time it would return
    /// to user mode, or gives up what it waits for.
    pub is_killed: bool,
    /// A kernel thread that lives as long as the kernel (kswapd): nobody's child,
    /// never reaped, not counted by [`nr_tasks`].
    pub is_daemon: bool,
    /// The key of the wait queue it waits on (0: none); see `sync::wait_queue`.
    pub wait_key: u64,
    /// When it started waiting (a global counter): the longest waiter is woken first.
    pub wait_ticket: u64,
    /// The timer tick at which a timed sleep ends if nobody woke it (0: untimed).
    pub wake_at_tick: u64,
    /// Its open files and current directory, for user processes (see `fs::file`).
    pub files: Option<FdTable>,
    /// A user process's FS/GS bases and x87/SSE registers, saved here while it is
    /// switched out (`None` for kernel threads, which leave them alone).
    pub user_state: Option<UserState>,
    /// Its blocked-signal mask (`rt_sigprocmask`; bit `n - 1` is signal `n`). No
    /// signal is ever delivered yet, so it is only kept, inherited and reported.
    pub sigmask: u64,
    /// Linux's `oom_score_adj` (-1000..=1000): added to the OOM badness in
    /// thousandths of memory; -1000 is never chosen. Inherited across fork.
    pub oom_score_adj: i16,
    /// Taken out of the balance set by load control (`proc::load_control`): not
    /// scheduled until reactivated (a killed task runs anyway, to exit).
    pub is_deactivated: bool,
    /// Its CPU time and start, in timer ticks (`/proc/PID/stat`).
    pub times: CpuTimes,
    /// For the scheduler: it runs on some CPU, or a CPU picked it to run. Under
    /// `TASKS`. A wake-up of a running task only sets its state (it will not switch
    /// away); only a task that is not running is put in the run queue.
    pub is_running: bool,
    /// For the scheduler: a CPU is still on its kernel stack. Set when a CPU switches
    /// to it; cleared by that CPU once it has switched away from it completely, so
    /// no other CPU resumes it (or frees its stack) while its registers are saved.
    pub on_cpu: AtomicBool,
    /// One CPU's idle task (with several CPUs): never queued, never blocks.
    pub is_idle: bool,
    /// The one CPU it may run on, for a kernel thread bound to a CPU
    /// ([`spawn_daemon_on`], Linux's `kthread_bind`); `None`: any CPU.
    pub pinned_cpu: Option<usize>,
    /// Its thread group (the process): the pid of the group's first task, its
    /// leader. Equal to `pid` for a process's first thread and for kernel threads.
    /// `getpid` returns it; `gettid` returns `pid` (see `proc::thread`).
    pub tgid: Pid,
    /// How many tasks of its group have not started to exit: shared by every task
    /// of the group; whoever takes it to 0 is the last thread (`proc::thread`).
    pub group_live: Arc<AtomicUsize>,
    /// Linux's `clear_child_tid` (`set_tid_address`, `CLONE_CHILD_CLEARTID`): at
    /// exit, 0 is written there and one futex waiter on it is woken (0: none).
    pub clear_child_tid: u64,
    /// The futex it waits on (`proc::futex`); cleared by the `FUTEX_WAKE` that wakes it.
    pub futex_key: Option<super::futex::FutexKey>,
    /// Set on every task of the group by `exit_group` or a kill: the status the
    /// group ends with, used by the threads that exit because of it.
    pub group_exit: Option<WaitStatus>,
    /// A thread other than the leader that called `execve`: the others, the leader
    /// too, were ended first (`execve::end_other_threads`), and its exit status is
    /// the process's (Linux also gives it the leader's pid; here it keeps its tid).
    pub has_taken_over: bool,
}

/// A task's CPU time and start time, in timer ticks (`arch::timer::TICK_HZ` a
/// second, Linux's USER_HZ is 100 too): charged one tick at a time by
/// [`account_cpu_tick`] to whichever task the tick interrupted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Ticks that interrupted it in user mode (Linux's utime).
    pub user_ticks: u64,
    /// Ticks that interrupted it in the kernel (stime).
    pub system_ticks: u64,
    /// The tick count when it was created (starttime).
    pub start_tick: u64,
}

impl CpuTimes {
    /// No time used yet, started now.
    pub fn starting_now() -> Self {
        CpuTimes { start_tick: crate::arch::timer::ticks(), ..Default::default() }
    }
}

impl Task {
    /// Marks it killed (call under the [`TASKS`] lock): it exits at its next return
    /// to user mode. Counted in `NR_KILLED_LIVE` once, until it exits.
    pub fn mark_killed(&mut self) {
        if !self.is_killed {
            self.is_killed = true;
            NR_KILLED_LIVE.fetch_add(1, Ordering::Release);
        }
    }

    /// Returns the top of the kernel stack (loaded into TSS.RSP0 while it runs).
    pub fn kstack_top(&self) -> u64 {
        self.kstack.as_ref().map_or(0, |s| s.top())
    }
}

/// Every task, by pid.
pub static TASKS: IrqMutex<BTreeMap<Pid, Box<Task>>> = IrqMutex::new_ranked(crate::sync::LockRank::Tasks, BTreeMap::new());
static NEXT_PID: AtomicU64 = AtomicU64::new(1);
/// Tasks marked killed that have not exited yet (changed under the [`TASKS`] lock).
/// While it is 0, which is nearly always, [`current_is_killed`] answers without
/// the task-table lock: every trap and syscall back to ring 3 asks it.
static NR_KILLED_LIVE: AtomicU64 = AtomicU64::new(0);

/// Creates task 0 from the running boot thread.
pub fn init() {
    let idle = Task {
        pid: 0,
        parent: 0,
        name: String::from("kernel"),
        args: String::new(),
        state: TaskState::Runnable,
        kstack: None,
        saved_rsp: 0,
        space: None,
        is_killed: false,
        is_daemon: false,
        wait_key: 0,
        wait_ticket: 0,
        wake_at_tick: 0,
        files: None,
        user_state: None,
        sigmask: 0,
        oom_score_adj: 0,
        is_deactivated: false,
        times: CpuTimes::starting_now(),
        is_running: true,
        on_cpu: AtomicBool::new(true),
        is_idle: false,
        pinned_cpu: None,
        tgid: 0,
        group_live: Arc::new(AtomicUsize::new(1)),
        clear_child_tid: 0,
        futex_key: None,
        group_exit: None,
        has_taken_over: false,
    };
    TASKS.lock().insert(0, Box::new(idle));
}

/// Returns the running task's pid (its thread id, Linux's `gettid`).
pub fn current_pid() -> Pid {
    sched::current()
}

/// Returns the running task's thread-group id: the pid of its process (`getpid`).
///
/// No lock: the scheduler keeps it per CPU. Debug builds check it against the task
/// table.
pub fn current_tgid() -> Pid {
    let tgid = sched::current_tgid();
    debug_assert!(
        TASKS.lock().get(&current_pid()).is_none_or(|t| t.tgid == tgid),
        "current_tgid: the per-CPU group id is not the task's"
    );
    tgid
}

/// Runs `f` on the running process's fd table (EBADF for a kernel task, which has
/// none), with the task table locked: `f` must be short and must not sleep. The
/// threads of a process share one table, kept in the group leader's entry.
pub fn with_files<R>(f: impl FnOnce(&mut FdTable) -> Result<R, abi::Errno>) -> Result<R, abi::Errno> {
    let mut tasks = TASKS.lock();
    let tgid = tasks.get(&sched::current()).ok_or(abi::Errno::EBADF)?.tgid;
    let files = tasks.get_mut(&tgid).and_then(|t| t.files.as_mut()).ok_or(abi::Errno::EBADF)?;
    f(files)
}

/// The address space of the task each CPU runs, as a pointer into that task's own
/// `Arc` (`Task::space`), or null for a kernel task. Written by the CPU itself with
/// interrupts off wherever its running task changes or changes its space: the
/// switch (`sched`), `exec` and exit (below). So every trap need not take the task
/// table's lock to find the space it faulted in (`current_space`).
static RUNNING_SPACE: [AtomicPtr<IrqMutex<AddressSpace>>; crate::arch::smp::MAX_CPUS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; crate::arch::smp::MAX_CPUS];

/// Records `space` (the `space` of the task CPU `cpu` now runs) as that CPU's
/// running space. Call with interrupts off, on CPU `cpu`, in the same
/// interrupts-off section that switches to the task or changes its `space`.
pub(super) fn set_running_space(cpu: usize, space: Option<&Arc<IrqMutex<AddressSpace>>>) {
    let ptr = space.map_or(core::ptr::null_mut(), |s| Arc::as_ptr(s).cast_mut());
    RUNNING_SPACE[cpu].store(ptr, Ordering::Relaxed);
}

/// Returns the running task's address space, if it is a user process.
///
/// No lock: the CPU's [`RUNNING_SPACE`] slot, read with interrupts off so the task
/// cannot be switched out (or moved to another CPU) between reading the slot and
/// taking a reference. Debug builds check it against the task table.
#[inline] // every fault and many syscalls ask: inline, it is a few loads
pub fn current_space() -> Option<Arc<IrqMutex<AddressSpace>>> {
    let space = interrupts::without_interrupts(|| {
        let ptr = RUNNING_SPACE[crate::arch::smp::cpu_id()].load(Ordering::Relaxed);
        if ptr.is_null() {
            return None;
        }
        // SAFETY: a non-null slot points into the `Arc` held by the `space` field of
        // the task this CPU runs: it is set when this CPU switches to the task and
        // changed (with interrupts off, on this CPU) before that field gives up its
        // `Arc` (exec, exit). Interrupts are off, so the task is still ours and still
        // holds it: the count is at least 1, and the reference taken here is its own.
        unsafe {
            Arc::increment_strong_count(ptr);
            Some(Arc::from_raw(ptr))
        }
    });
    #[cfg(debug_assertions)]
    {
        let in_table = TASKS.lock().get(&sched::current()).and_then(|t| t.space.as_ref().map(Arc::as_ptr));
        assert_eq!(space.as_ref().map(Arc::as_ptr), in_table, "current_space: the CPU's running space is stale");
    }
    space
}

/// Charges one timer tick of CPU time to the running process, if it is a user
/// process: its working-set clock (`mm::wss`), which samples the Accessed bits
/// every τ of it. `is_user_mode`: the tick interrupted ring 3 (only then may it
/// sample). Called from the timer interrupt, where no spinlock is held.
pub fn account_cpu_tick(is_user_mode: bool) {
    let pid = current_pid();
    let counter = match (is_user_mode, pid) {
        (true, _) => &CPU_USER_TICKS,
        (false, 0) => &CPU_IDLE_TICKS,
        (false, _) => &CPU_SYSTEM_TICKS,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    super::loadavg::on_tick();
    if let Some(task) = TASKS.lock().get_mut(&current_pid()) {
        let counter = if is_user_mode { &mut task.times.user_ticks } else { &mut task.times.system_ticks };
        *counter += 1;
    }
    if let Some(space) = current_space() {
        crate::mm::wss::on_cpu_tick(&mut space.lock(), is_user_mode);
    }
}

/// Ticks charged to user mode, the kernel on behalf of a task, and task 0 (the
/// idle loop), since boot (`/proc/stat`'s cpu line).
static CPU_USER_TICKS: AtomicU64 = AtomicU64::new(0);
static CPU_SYSTEM_TICKS: AtomicU64 = AtomicU64::new(0);
static CPU_IDLE_TICKS: AtomicU64 = AtomicU64::new(0);

/// Returns (user, system, idle) ticks since boot, of the CPU that takes the timer tick.
pub fn cpu_ticks() -> (u64, u64, u64) {
    (CPU_USER_TICKS.load(Ordering::Relaxed), CPU_SYSTEM_TICKS.load(Ordering::Relaxed), CPU_IDLE_TICKS.load(Ordering::Relaxed))
}

/// Returns the number of tasks created since boot (`/proc/stat`'s `processes`).
pub fn nr_created() -> u64 {
    NEXT_PID.load(Ordering::Relaxed) - 1
}

/// Returns the number of runnable (or running) tasks other than task 0.
pub fn nr_runnable() -> u64 {
    TASKS.lock().values().filter(|t| t.pid != 0 && t.state == TaskState::Runnable).count() as u64
}

/// Returns the working-set figures of process `pid` (`None`: no such live user
/// process): for the `wsstat` syscall, tests, and /proc.
pub fn ws_snapshot(pid: Pid) -> Option<crate::mm::wss::WsSnapshot> {
    let space = TASKS.lock().get(&pid).and_then(|t| t.space.clone())?;
    let snapshot = crate::mm::wss::snapshot(&space.lock());
    Some(snapshot)
}

/// The range of `oom_score_adj`, as Linux's `OOM_SCORE_ADJ_MIN..=OOM_SCORE_ADJ_MAX`.
pub const OOM_SCORE_ADJ_RANGE: core::ops::RangeInclusive<i64> = -1000..=1000;

/// Sets the `oom_score_adj` of live user process `pid`; returns the old value.
/// `EINVAL` outside -1000..=1000, `ESRCH` if there is no such live user process.
pub fn set_oom_score_adj(pid: Pid, adj: i64) -> Result<i16, abi::Errno> {
    if !OOM_SCORE_ADJ_RANGE.contains(&adj) {
        return Err(abi::Errno::EINVAL);
    }
    let mut tasks = TASKS.lock();
    let task = tasks
        .get_mut(&pid)
        .filter(|t| t.space.is_some() && !matches!(t.state, TaskState::Zombie(_)))
        .ok_or(abi::Errno::ESRCH)?;
    Ok(core::mem::replace(&mut task.oom_score_adj, adj as i16))
}

/// Puts live user process `pid` in memory group `group` (`mm::memcg`; 0: the root
/// group). `ESRCH` if there is no such process, `EINVAL` if there is no such group.
pub fn attach_memcg(pid: Pid, group: crate::mm::memcg::GroupId) -> Result<u64, abi::Errno> {
    let space = TASKS.lock().get(&pid).and_then(|t| t.space.clone()).ok_or(abi::Errno::ESRCH)?;
    crate::mm::memcg::attach(&space, group).map(|()| 0).map_err(|_| abi::Errno::EINVAL)
}

/// Makes the running process the program whose new address space is `space`
/// (execve's commit): its name and argument string, a fresh register state, the
/// new space loaded into CR3. Returns the old space for the caller to drop (with
/// no lock held; CR3 no longer names it).
///
/// # Panics
/// If the running task is not a user process (exec is a syscall of one).
pub fn replace_current_program(
    name: &str,
    args: &str,
    space: Arc<IrqMutex<AddressSpace>>,
    user_state: UserState,
) -> Option<Arc<IrqMutex<AddressSpace>>> {
    let mut tasks = TASKS.lock();
    let task = tasks.get_mut(&sched::current()).expect("replace_current_program: no current task");
    assert!(task.space.is_some(), "replace_current_program: not a user process");
    // The new program stays in the old one's memory group, as Linux keeps the cgroup.
    if let Some(old) = &task.space {
        let group = old.lock().memcg;
        space.lock().memcg = group;
    }
    task.name = String::from(name);
    task.args = String::from(args);
    user_state.load();
    task.user_state = Some(user_state);
    let (root, pcid, keep_tlb) = {
        let mut space = space.lock();
        space.nr_tasks += 1;
        space.activation()
    };
    if let Some(old) = &task.space {
        let mut old = old.lock();
        old.nr_tasks = old.nr_tasks.saturating_sub(1); // its memory goes with the caller's reference
    }
    let old = task.space.replace(space);
    set_running_space(crate::arch::smp::cpu_id(), task.space.as_ref());
    // SAFETY: the new space's PML4 shares the kernel half like every other, so
    // this code and its stack stay mapped; interrupts are off (the task lock is
    // held), so nothing runs between the swap of `task.space` and the switch.
    unsafe { crate::arch::tlb::write_cr3(root, pcid, keep_tlb) };
    old
}

/// Why a process could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// No program with that name is embedded.
    NoSuchProgram,
    /// The ELF file is malformed.
    BadExecutable(mm_core::elf::ElfError),
    /// No memory for the address space, the kernel stack or the task.
    OutOfMemory,
    /// The arguments do not fit on the initial stack (Linux: `E2BIG`).
    ArgumentsTooLong,
    /// A kernel thread bound to a CPU that is not online.
    NoSuchCpu,
    /// The executable's file could not be read (Linux: `EIO`).
    ReadFailed,
}

/// Builds the kernel stack of a new task so that its first switch-in "returns" to
/// user mode with `frame`: a `TrapFrame` at the top, and below it the registers
/// `switch_context` pops, ending with the address of `task_entry_trampoline`.
fn prepare_stack(stack: &KernelStack, frame: &TrapFrame) -> u64 {
    let frame_addr = stack.top() - core::mem::size_of::<TrapFrame>() as u64;
    let switch_words = sched::initial_switch_frame();
    let rsp = frame_addr - (switch_words.len() * 8) as u64;
    // SAFETY: the stack is freshly mapped, owned by the new task and nothing runs on
    // it yet; both writes are inside [bottom, top) (the frame plus 8 words is far
    // smaller than 4 pages) and 8-byte aligned.
    unsafe {
        (frame_addr as *mut TrapFrame).write(frame.clone());
        core::ptr::copy_nonoverlapping(switch_words.as_ptr(), rsp as *mut u64, switch_words.len());
    }
    rsp
}

/// Adds a new runnable user task whose first instructions are described by `frame`
/// and `user_state` (FS/GS bases, x87/SSE registers); `args` is what its `args`
/// syscall will return. It starts with the console on fds 0, 1, 2 and the root as
/// its cwd. The blocked-signal mask is the parent's, as across fork and exec on Linux.
pub fn create_user_task(
    name: &str,
    args: &str,
    parent: Pid,
    space: SpaceRef,
    frame: &TrapFrame,
    user_state: UserState,
) -> Result<Pid, SpawnError> {
    create_user_task_with_files(name, args, parent, space, frame, user_state, FdTable::new_console())
}

/// [`create_user_task`] with the open files `files` (fork: a copy of the parent's).
pub fn create_user_task_with_files(
    name: &str,
    args: &str,
    parent: Pid,
    space: SpaceRef,
    frame: &TrapFrame,
    user_state: UserState,
    files: FdTable,
) -> Result<Pid, SpawnError> {
    let pid = new_user_task(NewTask { name, args, parent, group: None, space, frame, user_state, files: Some(files) })?;
    sched::make_runnable(pid);
    Ok(pid)
}

/// What [`new_user_task`] needs.
pub struct NewTask<'a> {
    /// Its name (the program's).
    pub name: &'a str,
    /// What its `args` syscall returns.
    pub args: &'a str,
    /// Its parent.
    pub parent: Pid,
    /// The thread group it joins, with the group's live counter (a thread:
    /// `proc::thread`); `None`: it starts a group of its own (a process).
    pub group: Option<(Pid, Arc<AtomicUsize>)>,
    /// Its address space (shared with the group for a thread).
    pub space: SpaceRef,
    /// The registers it starts with in user mode.
    pub frame: &'a TrapFrame,
    /// Its FS/GS bases and x87/SSE registers.
    pub user_state: UserState,
    /// Its open files: `None` for a thread, which uses its group leader's.
    pub files: Option<FdTable>,
}

/// Adds a new user task, not yet runnable (the caller makes it so with
/// `sched::make_runnable` once whatever must precede its first instruction is done).
pub fn new_user_task(new: NewTask) -> Result<Pid, SpawnError> {
    let kstack = KernelStack::new(KERNEL_STACK_PAGES, "task kernel").map_err(|_| SpawnError::OutOfMemory)?;
    let saved_rsp = prepare_stack(&kstack, new.frame);
    let pid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
    let (sigmask, oom_score_adj) = TASKS.lock().get(&new.parent).map_or((0, 0), |t| (t.sigmask, t.oom_score_adj));
    let (tgid, group_live) = new.group.unwrap_or_else(|| (pid, Arc::new(AtomicUsize::new(1))));
    new.space.lock().nr_tasks += 1; // nothing fails from here on
    let task = Task {
        pid,
        parent: new.parent,
        name: String::from(new.name),
        args: String::from(new.args),
        state: TaskState::Runnable,
        kstack: Some(kstack),
        saved_rsp,
        space: Some(new.space),
        is_killed: false,
        is_daemon: false,
        wait_key: 0,
        wait_ticket: 0,
        wake_at_tick: 0,
        files: new.files,
        user_state: Some(new.user_state),
        sigmask,
        oom_score_adj,
        is_deactivated: false,
        times: CpuTimes::starting_now(),
        is_running: false,
        on_cpu: AtomicBool::new(false),
        is_idle: false,
        pinned_cpu: None,
        tgid,
        group_live,
        clear_child_tid: 0,
        futex_key: None,
        group_exit: None,
        has_taken_over: false,
    };
    TASKS.lock().insert(pid, Box::new(task));
    Ok(pid)
}

/// Starts program `name` as a child of the running task; returns its pid.
pub fn spawn(name: &str) -> Result<Pid, SpawnError> {
    spawn_with_args(name, "")
}

/// Starts program `name` as a child of the running task with the argument string
/// `args` (what its `args` syscall returns); returns its pid.
pub fn spawn_with_args(name: &str, args: &str) -> Result<Pid, SpawnError> {
    let (space, frame) = super::exec::load(name, args)?;
    create_user_task(name, args, current_pid(), space, &frame, UserState::initial())
}

/// [`spawn_with_args`] with the open files `files` instead of the console (a test
/// that sends a program's output into a file, as a shell's `>` does).
pub fn spawn_with_files(name: &str, args: &str, files: FdTable) -> Result<Pid, SpawnError> {
    let (space, frame) = super::exec::load(name, args)?;
    create_user_task_with_files(name, args, current_pid(), space, &frame, UserState::initial(), files)
}

/// Ends the running task with `status`: releases its memory, wakes its parent,
/// and switches away for good.
///
/// A thread of a process with other live threads ends alone (Linux's `exit`): the
/// address space and the open files stay with the others, and a thread other than
/// the leader is reaped by the reaper. The last thread to exit ends the process:
/// it closes the files, hands the children to the reaper and wakes the parent,
/// whose `wait` then reaps the leader ([`is_group_done`]).
pub fn exit_current(status: WaitStatus) -> ! {
    let pid = current_pid();
    assert_ne!(pid, 0, "exit_current: task 0 cannot exit");
    // Whoever joins this thread learns it is gone (`CLONE_CHILD_CLEARTID`): written
    // while its space is still loaded.
    super::thread::clear_child_tid();
    // Leave the address space before dropping it: CR3 must not name freed tables.
    sched::load_kernel_tables();
    let (tgid, is_last) = {
        let tasks = TASKS.lock();
        let task = tasks.get(&pid).expect("exit_current: no current task");
        (task.tgid, task.group_live.fetch_sub(1, Ordering::AcqRel) == 1)
    };
    // Close the files while the task can still sleep: the last close of a file on
    // a disk file system may write (ext2 frees an unlinked inode's blocks), and a
    // zombie that went to sleep would never be woken. They are the group's, in
    // its leader's entry: the last thread closes them.
    let files = if is_last { TASKS.lock().get_mut(&tgid).and_then(|task| task.files.take()) } else { None };
    drop(files); // closes every fd: a pipe end closed wakes the other end
    // The memory goes before anyone can learn of the exit (Linux's `exit_mm`
    // before `exit_notify`): a parent whose `wait` returned, or a shell's `free`
    // after it, finds every frame and swap slot back.
    release_memory(pid);
    let parent = {
        let mut tasks = TASKS.lock();
        let task = tasks.get_mut(&pid).expect("exit_current: no current task");
        task.state = TaskState::Zombie(status);
        if task.is_killed {
            NR_KILLED_LIVE.fetch_sub(1, Ordering::Release);
        }
        let has_taken_over = task.has_taken_over;
        if pid != tgid {
            // A thread other than the leader is nobody's child: the reaper reaps it.
            task.parent = orphan_adopter();
        }
        if has_taken_over {
            // The process's status is this program's, not the old leader's kill
            // (Linux: the leader's, which this thread became at its execve).
            if let Some(leader) = tasks.get_mut(&tgid) {
                leader.state = TaskState::Zombie(status);
            }
        }
        let parent = tasks.get(&tgid).map_or(0, |leader| leader.parent);
        if is_last {
            // Orphans go to the reaper, which reaps them when they exit.
            let adopter = orphan_adopter();
            for child in tasks.values_mut().filter(|t| t.parent == tgid && !t.is_daemon) {
                child.parent = adopter;
            }
        }
        parent
    };
    if is_last {
        sched::wake_if_waiting(parent);
    }
    // Some orphan (or this thread) may be a zombie already: let the reaper look.
    sched::wake_if_waiting(orphan_adopter());
    sched::schedule_away_forever()
}

/// The exiting task `pid` lets go of its address space; if no other task uses it
/// (`AddressSpace::nr_tasks`: other threads, a `CLONE_VM` parent), the space's
/// memory goes now: every mapping is removed, so its frames and swap slots are free
/// even while someone else (reclaim on another CPU, a `process_vm_readv`) still
/// holds the space, which then goes empty when they let go of it.
fn release_memory(pid: Pid) {
    let space = {
        let mut tasks = TASKS.lock();
        let task = tasks.get_mut(&pid).expect("exit_current: no current task");
        set_running_space(crate::arch::smp::cpu_id(), None);
        task.space.take()
    };
    // Again: closing the files may have slept, and switching back to this task
    // loaded its space (it was still `task.space` then); dropping a loaded space
    // would free the tables CR3 names. The space may live on in other threads:
    // this CPU no longer runs it.
    sched::load_kernel_tables();
    if let Some(space) = &space {
        let mut space = space.lock();
        space.deactivate_on_this_cpu();
        debug_assert!(space.nr_tasks > 0, "exit_current: a task's space counts no task");
        space.nr_tasks = space.nr_tasks.saturating_sub(1);
        if space.nr_tasks == 0 {
            space.unmap_everything();
        }
    }
    drop(space); // the last reference, most often: its root table goes (the rest went above)
    crate::mm::swap::kick_wiper(); // its swap slots are free now: wipe them
}

/// Returns true if the thread group `leader` leads has ended: every task of it
/// other than the leader is a zombie (or gone). Only then may its parent reap the
/// leader, so that `wait` sees the whole process end.
fn is_group_done(tasks: &BTreeMap<Pid, Box<Task>>, leader: Pid) -> bool {
    !tasks.values().any(|t| t.tgid == leader && t.pid != leader && !matches!(t.state, TaskState::Zombie(_)))
}

/// Kills the running process after a bad access or exception, with a message: every
/// thread of it ends (one message for the group).
pub fn kill_current(reason: core::fmt::Arguments) -> ! {
    let pid = current_pid();
    let (name, tgid) = TASKS.lock().get(&pid).map(|t| (t.name.clone(), t.tgid)).unwrap_or_default();
    crate::println!("pid {tgid} ({name}) killed: {reason}");
    super::thread::end_group_of_current(WaitStatus::Killed(abi::SIGKILL));
    // `exit_current` never returns: whatever this frame owns must go first.
    drop(name);
    exit_current(WaitStatus::Killed(abi::SIGKILL))
}

/// Marks process `pid` (every thread of the group `pid` belongs to) killed, with
/// one message, and wakes its threads that wait: each exits the next time it would
/// return to user mode ([`exit_if_killed`]). Returns false if there is no such live
/// process or it is already killed.
pub fn kill(pid: Pid, reason: core::fmt::Arguments) -> bool {
    let (tgid, name, victims) = {
        let mut tasks = TASKS.lock();
        let Some(task) = tasks.get(&pid).filter(|_| pid != 0) else {
            return false;
        };
        let (tgid, name) = (task.tgid, task.name.clone());
        let mut victims = alloc::vec::Vec::new();
        for t in tasks.values_mut().filter(|t| t.tgid == tgid && !t.is_killed && !matches!(t.state, TaskState::Zombie(_))) {
            t.mark_killed();
            t.group_exit.get_or_insert(WaitStatus::Killed(abi::SIGKILL));
            victims.push(t.pid);
        }
        (tgid, name, victims)
    };
    if victims.is_empty() {
        return false;
    }
    crate::println!("pid {tgid} ({name}) killed: {reason}");
    super::trap::NR_KILLED.fetch_add(1, Ordering::Relaxed);
    for victim in victims {
        sched::wake_if_waiting(victim);
        sched::wake_if_sleeping(victim); // a pipe reader or writer gives up its wait (EINTR)
    }
    true
}

/// Returns true if `pid` is a user process that has not exited (zombies are not).
pub fn is_live_user_process(pid: Pid) -> bool {
    TASKS.lock().get(&pid).is_some_and(|t| !t.is_daemon && pid != 0 && !matches!(t.state, TaskState::Zombie(_)))
}

/// Returns true if `pid` is a child (live or zombie) of the running process.
pub fn is_child_of_current(pid: Pid) -> bool {
    let me = current_tgid();
    TASKS.lock().get(&pid).is_some_and(|t| t.parent == me && !t.is_daemon)
}

/// Returns true if `pid` is a kernel thread.
pub fn is_daemon(pid: Pid) -> bool {
    TASKS.lock().get(&pid).is_some_and(|t| t.is_daemon)
}

/// Returns true if the running task has been killed and must exit.
///
/// The common case (no task anywhere is killed) is one atomic load, no lock: a kill
/// raises `NR_KILLED_LIVE` under the task-table lock before it wakes its victim, so
/// a task that reads 0 here was not killed before this load; a kill that lands
/// later is seen on its next way back to ring 3, as with the lock.
#[inline] // on every way back to ring 3: the common answer is one load
pub fn current_is_killed() -> bool {
    NR_KILLED_LIVE.load(Ordering::Acquire) != 0 && is_current_marked_killed()
}

/// [`current_is_killed`] once some task has been killed: its mark, in the task table.
#[inline(never)]
fn is_current_marked_killed() -> bool {
    TASKS.lock().get(&current_pid()).is_some_and(|t| t.is_killed)
}

/// Exits the running task if it has been killed, and parks it while load control
/// has it deactivated (`proc::load_control`). Called on every way back to user
/// mode (syscall return, trap return), where no lock is held.
pub fn exit_if_killed() {
    if current_pid() == 0 {
        return;
    }
    super::load_control::park_if_deactivated();
    if current_is_killed() {
        // Killed with its group by `exit_group`: the group's status, else SIGKILL.
        let status = TASKS.lock().get(&current_pid()).and_then(|t| t.group_exit);
        exit_current(status.unwrap_or(WaitStatus::Killed(abi::SIGKILL)));
    }
}

/// Returns every live user process (zombies have no memory and are left out), as
/// the memory manager sees them (the OOM killer, through `mm::process_hooks`): one
/// entry per thread group, under the group's pid, whichever thread holds the space.
pub fn user_tasks() -> alloc::vec::Vec<UserProcess> {
    let tasks = TASKS.lock();
    let mut processes: alloc::vec::Vec<UserProcess> = alloc::vec::Vec::new();
    for t in tasks.values() {
        let Some(space) = t.space.clone() else { continue };
        if let Some(seen) = processes.iter_mut().find(|p| p.pid == t.tgid) {
            seen.is_killed |= t.is_killed;
            continue;
        }
        processes.push(UserProcess {
            pid: t.tgid,
            name: t.name.clone(),
            space,
            is_killed: t.is_killed,
            oom_score_adj: t.oom_score_adj,
        });
    }
    processes
}

/// Waits for a child of the running task to exit (`pid` = None: any child) and
/// reaps it. Returns its pid and status, or `None` if there is no such child (or
/// the running task was killed meanwhile: it stops waiting and exits on its way out).
pub fn wait(pid: Option<Pid>) -> Option<(Pid, WaitStatus)> {
    wait_child(pid, false)
}

/// [`wait`], and with `is_childless_ok` also when the task has no child at all:
/// then it blocks until one is handed to it and exits (the reaper's wait).
fn wait_child(pid: Option<Pid>, is_childless_ok: bool) -> Option<(Pid, WaitStatus)> {
    let me = current_tgid();
    loop {
        if current_is_killed() {
            return None;
        }
        {
            let mut tasks = TASKS.lock();
            let mut children = tasks
                .values()
                .map(|t| &**t)
                .filter(|t| t.parent == me && t.pid != me && !t.is_daemon && pid.is_none_or(|p| p == t.pid));
            let has_children = children.clone().next().is_some();
            let is_reapable = |t: &&Task| matches!(t.state, TaskState::Zombie(_)) && is_group_done(&tasks, t.pid);
            if let Some(zombie) = children.find(is_reapable) {
                if zombie.on_cpu.load(Ordering::Acquire) {
                    // Still switching away on another CPU, on its own stack (see `try_reap`).
                    drop(tasks);
                    core::hint::spin_loop();
                    continue;
                }
                let (child, TaskState::Zombie(status)) = (zombie.pid, zombie.state) else { unreachable!() };
                let task = tasks.remove(&child).expect("wait: zombie vanished");
                free_removed(tasks, task); // its kernel stack and entry
                // Files only the dead child mapped are closed here, where sleeping is allowed.
                crate::mm::file_rmap::release_unmapped();
                return Some((child, status));
            }
            if !has_children && !is_childless_ok {
                return None;
            }
            tasks.get_mut(&current_pid()).expect("wait: no current task").state = TaskState::WaitingForChild;
        }
        sched::block_current();
    }
}

/// Reaps every child of the running task, then waits until the reaper has reaped
/// every orphan, so that no user process is left: what a test or the demo does
/// before it counts frames. Gives up after `timeout_ms` and returns the number of
/// tasks still alive (task 0 excluded) as the error.
pub fn wait_all(timeout_ms: u64) -> Result<(), usize> {
    while wait(None).is_some() {}
    let deadline = crate::arch::timer::uptime_ms() + timeout_ms;
    while nr_tasks() > 1 {
        if crate::arch::timer::uptime_ms() >= deadline {
            return Err(nr_tasks() - 1);
        }
        sched::yield_now();
    }
    Ok(())
}

/// Reaps child `pid` of the running task if it has exited and returns its status;
/// `None` if it is still running (or is not a child). Never blocks (`WNOHANG`).
pub fn try_reap(pid: Pid) -> Option<WaitStatus> {
    let me = current_tgid();
    loop {
        let mut tasks = TASKS.lock();
        let task = tasks.get(&pid).filter(|t| t.parent == me)?;
        let TaskState::Zombie(status) = task.state else {
            return None;
        };
        if !is_group_done(&tasks, pid) {
            return None; // the leader exited, other threads of the process still run
        }
        // With several CPUs the zombie may still be switching away on another CPU, on
        // its own stack and with its entry in the table: wait until that CPU is off it
        // (it needs `TASKS` for that, so not holding it here).
        if task.on_cpu.load(Ordering::Acquire) {
            drop(tasks);
            core::hint::spin_loop();
            continue;
        }
        let task = tasks.remove(&pid).expect("try_reap: zombie vanished");
        free_removed(tasks, task); // its kernel stack and entry
        return Some(status);
    }
}

/// Returns the number of live tasks (zombies included), task 0 included, and the
/// reaped ones whose kernel stack and entry are still being freed: with several
/// CPUs a reap on one CPU takes its task out of the table and then frees the stack
/// (an unmap shot down on every CPU), while [`wait_all`] on another counts tasks to
/// learn that every one is gone and its memory back.
pub fn nr_tasks() -> usize {
    let tasks = TASKS.lock();
    tasks.values().filter(|t| !t.is_daemon).count() + NR_BEING_FREED.load(Ordering::Acquire)
}

/// User tasks taken out of [`TASKS`] whose kernel stack and entry are not freed yet
/// (raised under the `TASKS` lock that removed them, lowered once freed).
static NR_BEING_FREED: AtomicUsize = AtomicUsize::new(0);

/// Called between a reaped task's removal from the table and its freeing (tests).
static AFTER_REMOVAL_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Frees `task`, just taken out of the table `tasks` guards: drops the lock, then
/// the task (its kernel stack, its entry), counted by [`nr_tasks`] until freed.
fn free_removed(tasks: crate::sync::IrqMutexGuard<'_, BTreeMap<Pid, Box<Task>>>, task: Box<Task>) {
    let is_counted = !task.is_daemon;
    if is_counted {
        NR_BEING_FREED.fetch_add(1, Ordering::AcqRel);
    }
    drop(tasks);
    let hook = AFTER_REMOVAL_HOOK.load(Ordering::Acquire);
    if hook != 0 {
        // SAFETY: only `set_after_removal_hook` stores a nonzero value, the address
        // of a `fn()` (functions live forever).
        let hook: fn() = unsafe { core::mem::transmute::<usize, fn()>(hook) };
        hook();
    }
    drop(task);
    if is_counted {
        NR_BEING_FREED.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Sets (or with `None` clears) a function run after a reaped task left the table
/// and before its kernel stack is freed: a test checks with it that [`nr_tasks`]
/// (so [`wait_all`]) still counts the task then. It runs with no lock held.
pub fn set_after_removal_hook(hook: Option<fn()>) {
    AFTER_REMOVAL_HOOK.store(hook.map_or(0, |f| f as usize), Ordering::SeqCst);
}

/// The pid of the reaper, once it runs.
static REAPER: spin::Once<Pid> = spin::Once::new();

/// Returns who adopts orphans: the reaper, or task 0 if it could not be started
/// (task 0 reaps whatever it finds when it waits for any child).
pub(super) fn orphan_adopter() -> Pid {
    REAPER.get().copied().unwrap_or(0)
}

/// Starts the reaper: a kernel thread that adopts every orphan (a process whose
/// parent exited first) and reaps it when it exits, as `init` does on Unix, so
/// that its kernel stack and task entry are freed. The exiting process's memory
/// is already gone by then; what a zombie holds is its stack (4 pages) and entry.
pub fn start_reaper() {
    match spawn_daemon("reaper", reaper_main) {
        Ok(pid) => {
            REAPER.call_once(|| pid);
        }
        Err(e) => log::warn!("proc: reaper not started ({e:?}); task 0 adopts orphans"),
    }
}

extern "C" fn reaper_main() -> ! {
    loop {
        // Blocks while no adopted child has exited; the exit wakes us.
        let _ = wait_child(None, true);
    }
}

/// Starts kernel thread `name` running `entry` (which never returns), as a daemon:
/// it runs in ring 0 on its own guarded kernel stack, with the kernel's page tables.
pub fn spawn_daemon(name: &str, entry: extern "C" fn() -> !) -> Result<Pid, SpawnError> {
    let task = new_kernel_thread(name, Some(entry))?;
    let pid = task.pid;
    TASKS.lock().insert(pid, Box::new(task));
    sched::make_runnable(pid);
    Ok(pid)
}

/// Starts kernel thread `name` like [`spawn_daemon`], bound to CPU `cpu`: the
/// scheduler runs it there and nowhere else (Linux's `kthread_bind`). Refused
/// ([`SpawnError::NoSuchCpu`]) if that CPU is not online.
pub fn spawn_daemon_on(name: &str, entry: extern "C" fn() -> !, cpu: usize) -> Result<Pid, SpawnError> {
    if cpu >= crate::arch::smp::MAX_CPUS || !crate::arch::smp::per_cpu(cpu).is_online.load(Ordering::Acquire) {
        return Err(SpawnError::NoSuchCpu);
    }
    let mut task = new_kernel_thread(name, Some(entry))?;
    task.pinned_cpu = Some(cpu);
    let pid = task.pid;
    TASKS.lock().insert(pid, Box::new(task));
    sched::make_runnable(pid);
    Ok(pid)
}

/// Returns the CPU task `pid` is bound to, if it is bound to one.
pub fn pinned_cpu(pid: Pid) -> Option<usize> {
    TASKS.lock().get(&pid).and_then(|t| t.pinned_cpu)
}

/// Binds the running task to the CPU it runs on now, until [`unpin_current`];
/// returns that CPU (Linux's `migrate_disable`, for a stretch that needs one CPU's
/// view, such as a test that keeps every other CPU busy). Read under the task
/// table's lock, which holds interrupts off: the task cannot move meanwhile.
pub fn pin_current() -> usize {
    let me = sched::current();
    let mut tasks = TASKS.lock();
    let cpu = crate::arch::smp::cpu_id();
    tasks.get_mut(&me).expect("pin_current: the running task is not in the table").pinned_cpu = Some(cpu);
    cpu
}

/// Lets the running task run on any CPU again (after [`pin_current`]).
pub fn unpin_current() {
    let me = sched::current();
    if let Some(task) = TASKS.lock().get_mut(&me) {
        task.pinned_cpu = None;
    }
}

/// Creates the idle task of CPU `cpu` (never queued: the scheduler runs it when it
/// finds nothing else). With `entry`, it gets its own stack and starts there (the
/// boot CPU's, whose boot stack is task 0's); without, the calling AP adopts it on
/// the stack it is running on, as the task it runs now.
pub fn create_idle_task(cpu: usize, entry: Option<extern "C" fn() -> !>) -> Result<Pid, SpawnError> {
    let mut task = new_kernel_thread(&alloc::format!("idle/{cpu}"), entry)?;
    task.is_idle = true;
    if entry.is_none() {
        task.is_running = true;
        task.on_cpu.store(true, Ordering::Relaxed);
    }
    let pid = task.pid;
    TASKS.lock().insert(pid, Box::new(task));
    Ok(pid)
}

/// Builds a kernel-thread task: a daemon with its own guarded stack prepared to
/// start at `entry`, or (no entry) with no stack of its own.
fn new_kernel_thread(name: &str, entry: Option<extern "C" fn() -> !>) -> Result<Task, SpawnError> {
    let (kstack, rsp) = match entry {
        Some(entry) => {
            let kstack = KernelStack::new(KERNEL_STACK_PAGES, "kernel thread").map_err(|_| SpawnError::OutOfMemory)?;
            let switch_words = sched::initial_daemon_switch_frame(entry);
            let rsp = kstack.top() - (switch_words.len() * 8) as u64;
            // SAFETY: the stack is freshly mapped and owned by the new task; the words fit
            // far inside its pages, 8-byte aligned, and nothing runs on it yet.
            unsafe { core::ptr::copy_nonoverlapping(switch_words.as_ptr(), rsp as *mut u64, switch_words.len()) };
            (Some(kstack), rsp)
        }
        None => (None, 0),
    };
    let pid = NEXT_PID.fetch_add(1, Ordering::Relaxed);
    Ok(Task {
        pid,
        parent: pid,
        name: String::from(name),
        args: String::new(),
        state: TaskState::Runnable,
        kstack,
        saved_rsp: rsp,
        space: None,
        is_killed: false,
        is_daemon: true,
        wait_key: 0,
        wait_ticket: 0,
        wake_at_tick: 0,
        files: None,
        user_state: None,
        sigmask: 0,
        oom_score_adj: 0,
        is_deactivated: false,
        times: CpuTimes::starting_now(),
        is_running: false,
        on_cpu: AtomicBool::new(false),
        is_idle: false,
        pinned_cpu: None,
        tgid: pid,
        group_live: Arc::new(AtomicUsize::new(1)),
        clear_child_tid: 0,
        futex_key: None,
        group_exit: None,
        has_taken_over: false,
    })
}
