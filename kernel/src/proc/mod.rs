//! Processes: tasks with kernel stacks, a round-robin scheduler with timer
//! preemption, user programs loaded from ELF into ring 3, and the syscalls.
//!
//! | module | what it does |
//! |---|---|
//! | [`task`] | `Task` (pid, state, kernel stack, address space), the task table, exit/wait/kill |
//! | [`sched`] | run queue, `schedule`, `yield_now`, context switch, preemption on the tick |
//! | [`haltpoll`] | the idle CPU polls for work before it halts (Linux's guest haltpoll), with an adaptive window |
//! | [`hangcheck`] | the hang watchdog: prints every task's state when no user process ran for 20 s |
//! | [`load_control`] | the balance set: deactivates processes while the machine thrashes, reactivates them when there is room |
//! | [`exec`] | builds an address space from an ELF image: one VMA per segment, a stack VMA with argc/argv/envp/auxv |
//! | [`execve`] | execve(2): a program from a file replaces the running one |
//! | [`mmap_file`] | mmap(2) of a file: the argument rules, `MAP_PRIVATE` as a copy of the file's bytes |
//! | [`syscall`] | `syscall` entry (MSRs, assembly), dispatch, the handlers |
//! | [`thread`] | threads: `clone`, `exit_group`, `set_tid_address`, `tgkill`; the thread group (one pid, many tids) |
//! | [`futex`] | `futex` wait and wake, on the task table, keyed by (space, address) or physical address |
//! | [`syscall_libc`] | the calls a C library makes on its own: `arch_prctl`, `writev`, `ioctl`, `exit_group`, ... |
//! | [`trap`] | page faults and other exceptions, from the dispatcher: resolve, kill the process, EFAULT, or panic |
//! | [`fd_syscall`] | file syscalls on fds: read, write, close, lseek, fstat, getdents64, dup, pipe, ... |
//! | [`path_syscall`] | file syscalls on paths: open, openat, stat, unlink, mkdir, rename, chdir, getcwd, ... |
//! | [`uaccess`] | `copy_from_user` / `copy_to_user`: a bad pointer is `EFAULT`, not a crash |
//! | [`vm_rw`] | `process_vm_readv`/`process_vm_writev`: another process's memory, by its page tables |
//!
//! Task 0 is the kernel's boot thread: it starts the first processes and waits
//! for them (it is also the idle task: it halts when nothing else can run).

pub mod exec;
pub mod execve;
pub mod fd_syscall;
pub mod futex;
pub mod haltpoll;
pub mod hangcheck;
pub mod load_control;
pub mod loadavg;
pub mod mmap_file;
pub mod path_syscall;
pub mod sched;
pub mod syscall;
pub mod syscall_libc;
pub mod teach_syscall;
pub mod thread;
pub mod task;
pub mod trap;
pub mod uaccess;
pub mod vm_rw;

pub use task::{Pid, spawn, spawn_with_args, wait};

/// Gives the memory manager what it needs from processes (`mm::process_hooks`):
/// the OOM killer's list and kill, the fault loop's "was I killed?".
fn register_mm_hooks() {
    crate::mm::process_hooks::register(crate::mm::process_hooks::ProcessHooks {
        user_processes: task::user_tasks,
        kill: task::kill,
        current_pid: task::current_pid,
        current_is_killed: task::current_is_killed,
    });
}

/// Sets up task 0 and the `syscall` instruction.
pub fn init() {
    task::init();
    sched::init();
    sched::register_hooks();
    register_mm_hooks();
    // Room for the images of every embedded program (four segments each).
    crate::mm::backing::reserve(4 * crate::user_programs::all().count());
    syscall::init();
}
