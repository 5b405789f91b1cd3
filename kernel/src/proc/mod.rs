//! Processes: tasks with kernel stacks, a round-robin scheduler with timer
//! preemption, user programs loaded from ELF into ring 3, and the syscalls.
//!
//! | module | what it does |
//! |---|---|
//! | [`task`] | `Task` (pid, state, kernel stack, address space), the task table, exit/wait/kill |
//! | [`sched`] | run queue, `schedule`, `yield_now`, context switch, preemption on the tick |
//! | [`exec`] | builds an address space from an ELF image: one VMA per segment, a stack VMA with argc/argv/envp/auxv |
//! | [`image`] | the embedded program images that image-backed VMAs read from |
//! | [`syscall`] | `syscall` entry (MSRs, assembly), dispatch, the handlers |
//! | [`syscall_libc`] | the calls a C library makes on its own: `arch_prctl`, `writev`, `ioctl`, `exit_group`, ... |
//! | [`uaccess`] | `copy_from_user` / `copy_to_user`: a bad pointer is `EFAULT`, not a crash |
//! | [`fault`] | user page faults and other user exceptions: resolve, or kill the process |
//! | [`vm_rw`] | `process_vm_readv`/`process_vm_writev`: another process's memory, by its page tables |
//!
//! Task 0 is the kernel's boot thread: it starts the first processes and waits
//! for them (it is also the idle task: it halts when nothing else can run).

pub mod exec;
pub mod fault;
pub mod image;
pub mod sched;
pub mod syscall;
pub mod syscall_libc;
pub mod task;
pub mod uaccess;
pub mod vm_rw;

pub use task::{Pid, spawn, spawn_with_args, wait};

/// Sets up task 0 and the `syscall` instruction.
pub fn init() {
    task::init();
    sched::init();
    sched::register_hooks();
    image::init();
    syscall::init();
}
