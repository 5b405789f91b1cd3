//! The hang watchdog: when user processes exist but none has run for
//! [`STALL_SECS`] seconds (a test may shorten it: [`set_stall_secs`]), it prints
//! where every task stands, once per stall.
//!
//! A debugging aid, quiet while things move. *Progress* is a timer tick that
//! landed in ring 3 or a switch to a user task (the per-CPU counters `arch::smp`
//! keeps anyway), so a machine busy in the kernel for a moment, or idle because
//! every process sleeps on a timer, is not a hang while a process still gets the
//! CPU now and then. Two kinds of hang are caught:
//!
//! - **Everyone asleep** (a lost wake-up, a sleeping-lock deadlock): the kernel
//!   thread `hangcheck` wakes every second, sees no progress, and prints the task
//!   table: state, the wait queue's key, running / on a CPU, killed, parent, and
//!   the run queue. A task waiting for a child whose child is gone or not a zombie
//!   is the first thing to look at.
//! - **A CPU stuck in the kernel with interrupts on** (a loop that never sleeps):
//!   the kernel is not preempted, so on one CPU the thread never runs; the timer
//!   tick itself ([`on_tick`]) notices that its CPU has not switched tasks for
//!   [`STALL_SECS`] and prints the interrupted kernel RIP and task.
//!
//! A CPU spinning with interrupts off (a spinlock deadlock) stops its ticks too:
//! that one needs the gdb stub (`cargo run -- --qemu-arg -s`, then `gdb` on the
//! kernel ELF: `target remote :1234`, `bt`); debug builds catch lock-order
//! inversions before they spin (`sync::lock_rank`).
//!
//! Touches: reads `TASKS` and the run queue (through [`super::sched`]) and the
//! per-CPU counters; changes nothing.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::sched;
use super::task::{TASKS, TaskState};
use crate::arch::smp;
use crate::arch::timer::{self, TICK_HZ};

/// Seconds without progress before a dump, by default.
pub const STALL_SECS: u64 = 20;
/// Seconds without progress before a dump, now.
static STALL_SECS_NOW: AtomicU64 = AtomicU64::new(STALL_SECS);

/// Sets the seconds without progress before a dump (at least 1; tests shorten it).
pub fn set_stall_secs(secs: u64) {
    STALL_SECS_NOW.store(secs.max(1), Ordering::Relaxed);
}

fn stall_ticks() -> u64 {
    STALL_SECS_NOW.load(Ordering::Relaxed) * TICK_HZ
}

/// Set once a dump was printed for the current stall (cleared by progress).
static HAS_REPORTED: AtomicBool = AtomicBool::new(false);
/// Set by a test image that wants a hang to fail it at once ([`set_fatal`]).
static IS_FATAL: AtomicBool = AtomicBool::new(false);

/// Makes a task-table dump end in a panic (a test image's choice: a hang then fails
/// the test with the dump, instead of waiting for the runner's timeout).
pub fn set_fatal(is_fatal: bool) {
    IS_FATAL.store(is_fatal, Ordering::Relaxed);
}

/// Task-table dumps printed since boot (tests read it).
static NR_REPORTS: AtomicU64 = AtomicU64::new(0);

/// Returns how many task-table dumps the thread printed since boot.
pub fn nr_reports() -> u64 {
    NR_REPORTS.load(Ordering::Relaxed)
}

/// Starts the `hangcheck` kernel thread.
pub fn start() {
    if let Err(e) = crate::sync::kthread::spawn("hangcheck", hangcheck_main) {
        log::warn!("hangcheck: not started ({e:?})");
    }
}

/// User progress so far, summed over the CPUs: ticks in ring 3 and switches to a
/// user task.
fn user_progress() -> u64 {
    (0..smp::MAX_CPUS)
        .map(smp::per_cpu)
        .map(|c| c.nr_user_ticks.load(Ordering::Relaxed) + c.nr_user_switch_ins.load(Ordering::Relaxed))
        .sum()
}

/// Returns true if a user process exists that has not exited.
fn has_live_user_process() -> bool {
    TASKS.lock().values().any(|t| !t.is_daemon && t.pid != 0 && !matches!(t.state, TaskState::Zombie(_)))
}

static QUEUE: crate::sync::WaitQueue = crate::sync::WaitQueue::new();

extern "C" fn hangcheck_main() -> ! {
    let mut last = user_progress();
    let mut stalled_since = timer::ticks();
    loop {
        let _ = QUEUE.wait_until_deadline(|| false, timer::ticks() + TICK_HZ);
        let now = user_progress();
        if now != last || !has_live_user_process() {
            last = now;
            stalled_since = timer::ticks();
            HAS_REPORTED.store(false, Ordering::Relaxed);
            continue;
        }
        let stalled = timer::ticks() - stalled_since;
        if stalled >= stall_ticks() && !HAS_REPORTED.swap(true, Ordering::Relaxed) {
            let secs = stalled / TICK_HZ;
            crate::println!("hangcheck: no user process ran for {secs} s; the tasks:");
            print_tasks();
            assert!(!IS_FATAL.load(Ordering::Relaxed), "hangcheck: no user process ran for {secs} s (tasks above)");
        }
    }
}

/// Prints every task, every CPU's current task and the run queue.
pub fn print_tasks() {
    NR_REPORTS.fetch_add(1, Ordering::Relaxed);
    let lines: alloc::vec::Vec<alloc::string::String> = TASKS
        .lock()
        .values()
        .map(|t| {
            alloc::format!(
                "  pid {:>5} {:<12} parent {:>5} {:?} wait_key {} wake_at_tick {} running {} on_cpu {} killed {} deactivated {}",
                t.pid,
                t.name,
                t.parent,
                t.state,
                t.wait_key,
                t.wake_at_tick,
                t.is_running,
                t.on_cpu.load(Ordering::Relaxed),
                t.is_killed,
                t.is_deactivated
            )
        })
        .collect();
    for line in &lines {
        crate::println!("{line}");
    }
    for cpu in (0..smp::MAX_CPUS).filter(|&c| smp::per_cpu(c).is_online.load(Ordering::Relaxed) || c == 0) {
        crate::println!("  cpu {cpu} runs pid {}", sched::current_on(cpu));
    }
    crate::println!("  run queue: {:?}; tick {}", sched::queued_pids(), timer::ticks());
}

/// Per CPU: the task it ran at the last tick, and the tick that task started.
static LAST_TASK: [AtomicU64; smp::MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; smp::MAX_CPUS];
static SINCE_TICK: [AtomicU64; smp::MAX_CPUS] = [const { AtomicU64::new(0) }; smp::MAX_CPUS];
static HAS_REPORTED_CPU: [AtomicBool; smp::MAX_CPUS] = [const { AtomicBool::new(false) }; smp::MAX_CPUS];

/// The timer tick's half, called on every tick with whether it interrupted ring 3
/// and the interrupted instruction pointer: a CPU found in the kernel (not halted
/// in the idle path) on every tick for [`STALL_SECS`], running the same task, is
/// reported once with the task and that instruction pointer (look it up with
/// `addr2line -e KERNEL_ELF RIP`). Costs a few atomic loads per tick.
pub fn on_tick(is_user: bool, rip: u64) {
    let cpu = smp::cpu_id();
    let task = sched::current_on(cpu);
    let now = timer::ticks();
    if is_user || sched::is_halted(cpu) || LAST_TASK[cpu].swap(task, Ordering::Relaxed) != task {
        SINCE_TICK[cpu].store(now, Ordering::Relaxed);
        HAS_REPORTED_CPU[cpu].store(false, Ordering::Relaxed);
        return;
    }
    let since = SINCE_TICK[cpu].load(Ordering::Relaxed);
    if now - since >= stall_ticks() && !HAS_REPORTED_CPU[cpu].swap(true, Ordering::Relaxed) {
        crate::println!(
            "hangcheck: cpu {cpu} has run pid {task} in the kernel for {} s without a switch; interrupted at rip {rip:#x}",
            (now - since) / TICK_HZ
        );
    }
}
