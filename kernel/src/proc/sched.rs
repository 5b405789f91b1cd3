//! The scheduler: a round-robin run queue, the context switch, preemption.
//!
//! ```text
//!  switch_context(&mut prev.saved_rsp, next.saved_rsp):
//!     push callee-saved registers and RFLAGS on prev's kernel stack, save RSP,
//!     load next's RSP, pop its registers and RFLAGS, `ret` into next's code
//! ```
//! Everything else a task needs is already on its own kernel stack (the trap frame
//! of the interrupt or syscall it is in). A new task's stack is prepared so that
//! its first switch-in "returns" into `task_entry_trampoline`, which jumps to
//! `trap_return` and `iretq`s into user mode.
//!
//! On every switch: CR3 is loaded with the next task's PML4 (the kernel's for
//! task 0), TSS.RSP0 and the syscall stack pointer get the next task's kernel stack,
//! and the user state the trap frame does not hold (FS/GS bases: a C program's
//! thread pointer; x87/SSE registers) is saved in the previous task and loaded from
//! the next (`arch::user_state`).
//! Preemption: the timer tick calls [`preempt`] when it interrupted user mode, so
//! every user task gets one 10 ms tick at a time; kernel code is not preempted.
//! Timed sleeps (`sync::WaitQueue::wait_until_deadline`): a sleeping task may carry
//! a wake tick, and the timer interrupt calls [`wake_timed_out`] to wake it then.

use alloc::collections::VecDeque;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use x86_64::instructions::interrupts;

use super::task::{Pid, TASKS, Task, TaskState};
use crate::arch::smp::{self, MAX_CPUS};
use crate::arch::{gdt, tlb};
use crate::mm::paging;
use crate::sync::IrqMutex;

core::arch::global_asm!(
    r#"
    .section .text.sched, "ax"
    .global switch_context
switch_context:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    pushfq
    mov [rdi], rsp
    mov rsp, rsi
    popfq
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

    .global task_entry_trampoline
task_entry_trampoline:
    mov rbx, rsp
    and rsp, -16
    call sched_finish_switch
    mov rsp, rbx
    jmp trap_return

    // A kernel thread's first switch-in lands here with its entry point in r12 and
    // RSP at the (16-byte aligned) top of its stack.
    .global daemon_entry_trampoline
daemon_entry_trampoline:
    call sched_finish_switch
    sti
    call r12
    ud2
    "#
);

unsafe extern "C" {
    fn switch_context(prev_rsp: *mut u64, next_rsp: u64);
    static task_entry_trampoline: u8;
    static daemon_entry_trampoline: u8;
}

/// Returns the words `switch_context` pops for a task that never ran, lowest first:
/// RFLAGS (interrupts off), r15, r14, r13, r12, rbx, rbp, return address.
pub fn initial_switch_frame() -> [u64; 8] {
    let trampoline = core::ptr::addr_of!(task_entry_trampoline) as u64;
    [0x2, 0, 0, 0, 0, 0, 0, trampoline]
}

/// Returns the words `switch_context` pops for a kernel thread that never ran: as
/// [`initial_switch_frame`], with `entry` in r12 for `daemon_entry_trampoline`.
pub fn initial_daemon_switch_frame(entry: extern "C" fn() -> !) -> [u64; 8] {
    let trampoline = core::ptr::addr_of!(daemon_entry_trampoline) as u64;
    [0x2, 0, 0, 0, entry as usize as u64, 0, 0, trampoline]
}

/// The task each CPU runs.
static CURRENT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// The thread group (process) of the task each CPU runs, set with [`CURRENT`]: so
/// `getpid` needs no task-table lock. A task's group never changes.
static CURRENT_TGID: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Each CPU's idle task ([`NO_IDLE_TASK`] with one CPU: `pick_next` halts in place).
static IDLE: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(NO_IDLE_TASK) }; MAX_CPUS];
/// `IDLE`'s "none" (pid 0 is task 0, so not 0).
const NO_IDLE_TASK: Pid = u64::MAX;
/// The `on_cpu` flag of the task each CPU is switching away from, for the task it
/// switches to to clear ([`finish_switch`]). Null: nothing to clear.
static SWITCHED_FROM: [AtomicPtr<AtomicBool>; MAX_CPUS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CPUS];
static RUN_QUEUE: IrqMutex<VecDeque<Pid>> = IrqMutex::new_ranked(crate::sync::LockRank::RunQueue, VecDeque::new());
static NR_SWITCHES: AtomicU64 = AtomicU64::new(0);

/// Reserves the run queue's memory once, so that it does not show as a change in
/// free memory around the first process.
pub fn init() {
    RUN_QUEUE.lock().reserve(64);
}

/// Returns the running task's pid (on this CPU).
pub fn current() -> Pid {
    CURRENT[smp::cpu_id()].load(Ordering::Relaxed)
}

/// Returns the running task's thread-group id (on this CPU): its process's pid.
pub fn current_tgid() -> Pid {
    CURRENT_TGID[smp::cpu_id()].load(Ordering::Relaxed)
}

/// Returns the task CPU `cpu` runs.
pub fn current_on(cpu: usize) -> Pid {
    CURRENT[cpu].load(Ordering::Relaxed)
}

/// Returns the number of context switches so far.
pub fn nr_switches() -> u64 {
    NR_SWITCHES.load(Ordering::Relaxed)
}

/// Returns the number of tasks waiting in the run queue.
pub fn nr_queued() -> usize {
    RUN_QUEUE.lock().len()
}

/// Returns the pids in the run queue, front first (for the hang report).
pub fn queued_pids() -> alloc::vec::Vec<Pid> {
    RUN_QUEUE.lock().iter().copied().collect()
}

/// Puts `pid` at the back of the run queue.
pub fn make_runnable(pid: Pid) {
    // A task that runs (or was picked to) is not queued: it was woken before it
    // could switch away, and `switch_away` sees its state and lets it run on.
    let pinned_cpu = {
        let tasks = TASKS.lock();
        let Some(task) = tasks.get(&pid) else { return };
        if task.is_running || task.is_idle {
            return;
        }
        task.pinned_cpu
    };
    RUN_QUEUE.lock().push_back(pid);
    match pinned_cpu {
        // Only its CPU may run it: wake that one if it idles.
        Some(cpu) => smp::kick_if_idle(cpu),
        None => {
            smp::kick_an_idle_cpu();
        }
    }
}

/// Wakes `pid` if it is blocked waiting for a child, and any other thread of its
/// process that is (any thread may wait for the process's children).
pub fn wake_if_waiting(pid: Pid) {
    loop {
        let mut tasks = TASKS.lock();
        let Some(tgid) = tasks.get(&pid).map(|t| t.tgid) else { return };
        let Some(task) = tasks
            .values_mut()
            .find(|t| (t.pid == pid || t.tgid == tgid) && t.state == TaskState::WaitingForChild)
        else {
            return;
        };
        task.state = TaskState::Runnable;
        let woken = task.pid;
        drop(tasks);
        make_runnable(woken);
    }
}

/// Wakes `pid` if it sleeps on a wait queue (a kill: the waiter re-checks its
/// condition, sees that it was killed and gives up; a waiter that cannot give up
/// goes back to sleep).
pub fn wake_if_sleeping(pid: Pid) {
    let mut tasks = TASKS.lock();
    if let Some(task) = tasks.get_mut(&pid)
        && task.state == TaskState::Sleeping
    {
        task.state = TaskState::Runnable;
        task.wait_key = 0;
        drop(tasks);
        make_runnable(pid);
    }
}

/// Tickets for waiters: the order in which they started waiting.
static NEXT_WAIT_TICKET: AtomicU64 = AtomicU64::new(1);

/// `sync::hooks::Hooks::prepare_wait`: marks the running task as waiting on `key`.
fn prepare_wait(key: u64) {
    if let Some(task) = TASKS.lock().get_mut(&current()) {
        task.state = TaskState::Sleeping;
        task.wait_key = key;
        task.wait_ticket = NEXT_WAIT_TICKET.fetch_add(1, Ordering::Relaxed);
    }
}

/// `sync::hooks::Hooks::finish_wait`: the running task runs on, waiting on nothing.
fn finish_wait() {
    if let Some(task) = TASKS.lock().get_mut(&current()) {
        task.state = TaskState::Runnable;
        task.wait_key = 0;
    }
}

/// `sync::hooks::Hooks::wake`: wakes at most `max` tasks waiting on `key`, the
/// longest-waiting first. O(tasks): the queue is the task table (no allocation).
fn wake_key(key: u64, max: usize) -> usize {
    let mut nr_woken = 0;
    while nr_woken < max {
        let woken = {
            let mut tasks = TASKS.lock();
            let Some(task) = tasks
                .values_mut()
                .filter(|t| t.wait_key == key && t.state == TaskState::Sleeping)
                .min_by_key(|t| t.wait_ticket)
            else {
                break;
            };
            task.state = TaskState::Runnable;
            task.wait_key = 0;
            task.pid
        };
        make_runnable(woken);
        nr_woken += 1;
    }
    nr_woken
}

/// `sync::hooks::Hooks::sleep`: switches away until woken.
fn sleep_hook() {
    block_current();
}

/// The earliest `wake_at_tick` among sleeping tasks (`u64::MAX`: none, or not yet
/// recomputed after a wake-up; the timer tick only looks at the table once it is due).
static NEXT_WAKE_AT_TICK: AtomicU64 = AtomicU64::new(u64::MAX);

/// `sync::hooks::Hooks::sleep_until`: switches away until woken, or until timer
/// tick `deadline_tick` ([`wake_timed_out`] wakes it then).
fn sleep_until_hook(deadline_tick: u64) {
    if let Some(task) = TASKS.lock().get_mut(&current()) {
        task.wake_at_tick = deadline_tick.max(1);
    }
    NEXT_WAKE_AT_TICK.fetch_min(deadline_tick, Ordering::Relaxed);
    block_current();
    if let Some(task) = TASKS.lock().get_mut(&current()) {
        task.wake_at_tick = 0;
    }
}

/// Wakes the sleeping tasks whose timed sleep ended at or before tick `now`. Called
/// by the timer interrupt on every tick; looks at the task table only when the
/// earliest deadline is due, so it costs one atomic load on most ticks.
pub fn wake_timed_out(now: u64) {
    if now < NEXT_WAKE_AT_TICK.load(Ordering::Relaxed) {
        return;
    }
    let is_due = |t: &super::task::Task| t.state == TaskState::Sleeping && t.wake_at_tick != 0;
    loop {
        let woken = {
            let mut tasks = TASKS.lock();
            let Some(task) = tasks.values_mut().find(|t| is_due(t) && t.wake_at_tick <= now) else {
                break;
            };
            task.state = TaskState::Runnable;
            task.wait_key = 0;
            task.pid
        };
        make_runnable(woken);
    }
    let next = TASKS.lock().values().filter(|t| is_due(t)).map(|t| t.wake_at_tick).min();
    NEXT_WAKE_AT_TICK.store(next.unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// `sync::hooks::Hooks::spawn_kthread`.
fn spawn_kthread(name: &str, entry: extern "C" fn() -> !) -> Result<u64, crate::sync::kthread::KthreadError> {
    super::task::spawn_daemon(name, entry).map_err(|_| crate::sync::kthread::KthreadError::OutOfMemory)
}

/// Registers the scheduler's entry points with `sync`, so that wait queues and
/// kernel threads work in the layers below `proc`.
pub fn register_hooks() {
    crate::sync::hooks::register(crate::sync::hooks::Hooks {
        prepare_wait,
        finish_wait,
        sleep: sleep_hook,
        sleep_until: sleep_until_hook,
        wake: wake_key,
        yield_now,
        spawn_kthread,
    });
}

/// Loads the kernel's own page tables (before the current address space is freed).
pub fn load_kernel_tables() {
    let root = paging::kernel_root();
    if tlb::current_root().0 != root {
        // SAFETY: the kernel tree maps the whole kernel half, which is all the kernel
        // uses; the lower half is not touched from here on by this task.
        unsafe { tlb::write_cr3(root, 0, false) };
    }
}

/// Picks the task this CPU runs next and marks it running: the first runnable task
/// of the queue that no other CPU runs, else this CPU's idle task. With one CPU
/// (no idle task) it idles in place: interrupts on, `hlt`, until one is runnable.
fn pick_next(prev: Pid) -> Pid {
    let cpu = smp::cpu_id();
    loop {
        if let Some(pid) = pop_runnable_for(cpu, prev) {
            return pid;
        }
        let idle = IDLE[cpu].load(Ordering::Relaxed);
        if idle != NO_IDLE_TASK {
            if let Some(task) = TASKS.lock().get_mut(&idle) {
                task.is_running = true;
            }
            return idle;
        }
        // Nothing runnable: the idle time zeroes free frames for later faults
        // (`mm::zero_pool`), stopping as soon as an interrupt queues a task.
        crate::mm::zero_pool::fill_while_idle(|| has_work_for(cpu));
        if has_work_for(cpu) {
            continue;
        }
        // Still nothing runnable: poll a short while, then wait for an interrupt.
        wait_for_work(cpu);
    }
}

/// Takes the first task of the queue that may run on `cpu` (not bound to another
/// CPU), is runnable and no other CPU runs, and marks it running. Entries of tasks
/// that are gone, not runnable or running elsewhere are dropped on the way (they
/// were queued before a state change); tasks bound to another CPU stay queued.
fn pop_runnable_for(cpu: usize, prev: Pid) -> Option<Pid> {
    let mut queue = RUN_QUEUE.lock();
    let mut tasks = TASKS.lock();
    let mut i = 0;
    while i < queue.len() {
        let pid = queue[i];
        match tasks.get_mut(&pid) {
            Some(task) if task.state == TaskState::Runnable && (!task.is_running || pid == prev) => {
                if task.pinned_cpu.is_some_and(|c| c != cpu) {
                    i += 1; // its own CPU takes it
                    continue;
                }
                // A task still being switched out on another CPU (`on_cpu`) is left
                // in the queue. Picking it would make this CPU wait for that CPU,
                // which may itself be waiting for the task this CPU is leaving (two
                // threads yielding at once, each CPU picking the other's task): both
                // would spin forever.
                if pid != prev && task.on_cpu.load(Ordering::Acquire) {
                    i += 1;
                    continue;
                }
                queue.remove(i);
                task.is_running = true;
                return Some(pid);
            }
            _ => {
                queue.remove(i);
            }
        }
    }
    None
}

/// Returns true if the run queue holds a task CPU `cpu` may run (not bound to
/// another CPU): an idle CPU halts otherwise, instead of spinning on a queue of
/// tasks only other CPUs may take.
fn has_work_for(cpu: usize) -> bool {
    let queue = RUN_QUEUE.lock();
    if queue.is_empty() {
        return false;
    }
    let tasks = TASKS.lock();
    queue.iter().any(|pid| tasks.get(pid).is_none_or(|t| t.pinned_cpu.is_none_or(|c| c == cpu)))
}

/// Each CPU waits for work in the idle path (a bounded poll, then `hlt`): the timer
/// tick's hang check ([`super::hangcheck`]) does not count that as being stuck.
static IS_HALTED: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// Returns true if CPU `cpu` is waiting for work in the idle path (an interrupt
/// handler on it interrupted the poll or the `hlt`).
pub fn is_halted(cpu: usize) -> bool {
    IS_HALTED[cpu].load(Ordering::Relaxed)
}

/// Waits, with interrupts off, until CPU `cpu` may have work: polls for it a short
/// while, then `sti; hlt` (atomic: a wake-up from an interrupt handler cannot slip
/// in between), then interrupts off again ([`super::haltpoll`]). Marked halted
/// meanwhile, polling included: the poll is bounded, so the hang check need not
/// look at it.
fn wait_for_work(cpu: usize) {
    IS_HALTED[cpu].store(true, Ordering::Relaxed);
    super::haltpoll::idle_until_work(cpu, || has_work_for(cpu), || {
        interrupts::enable_and_hlt();
        interrupts::disable();
    });
    IS_HALTED[cpu].store(false, Ordering::Relaxed);
}

/// Switches from the running task to the next runnable one; `requeue` puts the
/// running task back in the queue. Returns when the running task is switched back in.
///
/// **The SMP switch race.** Once `prev` is marked not running (and, for a yield, is
/// back in the queue), another CPU may pick it while this CPU is still on its stack,
/// saving its registers. Each task's `on_cpu` says a CPU is still on its stack: the
/// CPU switching to a task first waits until `on_cpu` is clear, then sets it; the
/// CPU switching away from a task clears it only after `switch_context` has saved
/// everything, from the next task's side ([`finish_switch`], Linux's
/// `finish_task_switch`). Reaping a zombie waits for it the same way.
fn switch_away(requeue: bool) {
    // Lockdep in miniature: a task that switches away holding a spinlock leaves it
    // taken (and interrupts off) for whoever runs next. Counted in debug builds.
    let nr_held = crate::sync::nr_spinlocks_held();
    assert!(nr_held == 0, "switch_away: task {} sleeps or yields holding {nr_held} spinlock(s)", current());
    let were_enabled = interrupts::are_enabled();
    interrupts::disable();
    let cpu = smp::cpu_id();
    let prev = current();
    {
        let mut tasks = TASKS.lock();
        let prev_task = tasks.get_mut(&prev).expect("switch_away: current task vanished");
        if !requeue && prev_task.state == TaskState::Runnable && !prev_task.is_idle {
            // Woken after it decided to wait and before it got here: it runs on (the
            // wake-up did not queue it, since it was running).
            drop(tasks);
            if were_enabled {
                interrupts::enable();
            }
            return;
        }
        prev_task.is_running = false;
    }
    if requeue && !is_idle_task(cpu, prev) {
        RUN_QUEUE.lock().push_back(prev);
    }
    let next = pick_next(prev);
    if next != prev {
        let (prev_task, next_task) = {
            let mut tasks = TASKS.lock();
            let prev_task: *mut Task = &raw mut **tasks.get_mut(&prev).expect("switch_away: current task vanished");
            let next_task: *mut Task = &raw mut **tasks.get_mut(&next).expect("switch_away: next task vanished");
            (prev_task, next_task)
        };
        // SAFETY: both tasks are boxed in `TASKS` and stay there: `prev` is on this
        // CPU's stack (`on_cpu`), so it is not reaped before `finish_switch`; `next`
        // was marked running by us, so nobody else switches to it, and it is not a
        // zombie. Their fields below are the switch's own (saved registers, user
        // state), which only the CPU switching the task touches.
        let (prev_task, next_task) = unsafe { (&mut *prev_task, &mut *next_task) };
        // The CPU that last ran `next` may still be saving it: wait till it is off.
        while next_task.on_cpu.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            crate::arch::shootdown::poll();
            core::hint::spin_loop();
        }
        if let Some(state) = prev_task.user_state.as_mut() {
            state.save();
        }
        if let Some(state) = next_task.user_state.as_ref() {
            state.load();
        }
        let prev_space = prev_task.space.clone();
        let (next_root, next_pcid, keep_tlb) =
            next_task.space.as_ref().map_or_else(|| (paging::kernel_root(), 0, false), |s| s.lock().activation());
        let next_top = next_task.kstack_top();
        if next_task.user_state.is_some() {
            smp::this_cpu().nr_user_switch_ins.fetch_add(1, Ordering::Relaxed);
        }
        CURRENT[cpu].store(next, Ordering::Relaxed);
        CURRENT_TGID[cpu].store(next_task.tgid, Ordering::Relaxed);
        super::task::set_running_space(cpu, next_task.space.as_ref());
        NR_SWITCHES.fetch_add(1, Ordering::Relaxed);
        if next_top != 0 {
            gdt::set_rsp0(next_top);
            super::syscall::set_kernel_stack(next_top);
        }
        if tlb::current_root().0 != next_root || !keep_tlb {
            // SAFETY: every task's PML4 shares the kernel half, so the code and stack
            // in use stay mapped across the switch. With PCIDs, `keep_tlb` keeps the
            // entries tagged `next_pcid` unless a change to that space was missed.
            unsafe { tlb::write_cr3(next_root, next_pcid, keep_tlb) };
        }
        // This CPU no longer has `prev`'s tables loaded: later changes to them mark
        // it stale (flush at its next load) instead of sending it an IPI.
        if let Some(space) = prev_space
            && !next_task.space.as_ref().is_some_and(|s| alloc::sync::Arc::ptr_eq(s, &space))
        {
            space.lock().deactivate_on_this_cpu();
        }
        SWITCHED_FROM[cpu].store(core::ptr::from_ref(&prev_task.on_cpu).cast_mut(), Ordering::Relaxed);
        // SAFETY: `prev_task.saved_rsp` is in the boxed task `prev`, kept by `on_cpu`
        // until `finish_switch` below (run by `next` on this CPU); `next`'s saved
        // stack pointer was written by its last switch (or `prepare_stack`), which is
        // complete: we waited for its `on_cpu`.
        unsafe { switch_context(&raw mut prev_task.saved_rsp, next_task.saved_rsp) };
        finish_switch();
    }
    if were_enabled {
        interrupts::enable();
    }
}

/// Ends a switch on the side of the task switched to: the task switched away from
/// is saved, so another CPU may now run (or reap) it.
fn finish_switch() {
    let from = SWITCHED_FROM[smp::cpu_id()].swap(core::ptr::null_mut(), Ordering::Relaxed);
    if !from.is_null() {
        // SAFETY: the `on_cpu` of the task this CPU just left, which stays in the
        // table at least until this store lets it be reaped.
        unsafe { (*from).store(false, Ordering::Release) };
    }
}

/// `finish_switch` for a task's first switch-in (the trampolines call it).
#[unsafe(no_mangle)]
extern "C" fn sched_finish_switch() {
    finish_switch();
}

/// Returns true if `pid` is CPU `cpu`'s idle task.
fn is_idle_task(cpu: usize, pid: Pid) -> bool {
    IDLE[cpu].load(Ordering::Relaxed) == pid
}

/// The idle loop: run whatever is queued, else poll for work a short while and then
/// halt until an interrupt (a tick, a device, or the reschedule IPI a wake-up sends
/// to an idle CPU: `smp::kick_an_idle_cpu`).
fn idle_loop() -> ! {
    let this_cpu = smp::this_cpu();
    loop {
        interrupts::disable();
        // Idle time zeroes free frames for later faults (`mm::zero_pool`), until a
        // task is queued.
        let cpu = smp::cpu_id();
        crate::mm::zero_pool::fill_while_idle(|| has_work_for(cpu));
        if !has_work_for(cpu) {
            this_cpu.is_idle.store(true, Ordering::SeqCst);
            // Re-check after announcing: a task queued in between sees us idle.
            if !has_work_for(cpu) {
                // Poll a short while, then halt (`haltpoll`: a wake-up soon after
                // the halt costs the host a thread wake-up).
                wait_for_work(cpu);
            }
            this_cpu.is_idle.store(false, Ordering::SeqCst);
        }
        switch_away(false);
    }
}

/// The boot CPU's idle task (it has its own stack: task 0 keeps the boot stack).
extern "C" fn boot_cpu_idle_main() -> ! {
    idle_loop()
}

/// Where each AP arrives once scheduling starts (`smp::start_scheduling`): its boot
/// context becomes its idle task, and it runs tasks from then on.
fn ap_scheduler_entry(cpu: usize) -> ! {
    interrupts::disable();
    super::syscall::init_this_cpu(cpu);
    let idle = IDLE[cpu].load(Ordering::Relaxed);
    CURRENT[cpu].store(idle, Ordering::Relaxed);
    CURRENT_TGID[cpu].store(idle, Ordering::Relaxed); // a kernel task is its own group
    idle_loop()
}

/// Lets every online CPU run tasks: an idle task per CPU, then the APs leave their
/// boot `hlt` loop for the scheduler. Does nothing with one CPU (which keeps
/// idling in `pick_next`, as before SMP).
pub fn start_all_cpus() {
    if smp::nr_online() <= 1 {
        return;
    }
    for (cpu, idle) in IDLE.iter().enumerate() {
        if !smp::per_cpu(cpu).is_online.load(Ordering::Acquire) {
            continue;
        }
        let entry = (cpu == 0).then_some(boot_cpu_idle_main as extern "C" fn() -> !);
        match super::task::create_idle_task(cpu, entry) {
            Ok(pid) => idle.store(pid, Ordering::Relaxed),
            Err(e) => panic!("sched: no idle task for cpu {cpu}: {e:?}"),
        }
    }
    smp::start_scheduling(ap_scheduler_entry);
}

/// Gives the CPU to the next runnable task; the running task stays runnable.
pub fn yield_now() {
    switch_away(true);
}

/// Switches away from a task that set itself to a waiting state.
pub fn block_current() {
    switch_away(false);
}

/// Switches away from a task that has exited; never returns.
pub fn schedule_away_forever() -> ! {
    switch_away(false);
    unreachable!("schedule_away_forever: a zombie was switched back in");
}

/// Called on the timer tick when it interrupted user mode: round-robin preemption.
pub fn preempt() {
    if RUN_QUEUE.lock().is_empty() {
        return;
    }
    yield_now();
}
