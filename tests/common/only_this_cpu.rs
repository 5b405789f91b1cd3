//! Making a test image behave as on one CPU whatever `--smp` says: for tests whose
//! checks read several counters or walk several structures that tasks on another
//! CPU would change in between (`tests/zero_pool.rs`: a fill in flight on the idle
//! CPU, "1590 counted for 1591 pooled"; `tests/rmap.rs`: the audit walking the
//! spaces while a process exits on the other CPU, "tracks 0 frames, 1 user frames
//! exist"). Included with `#[path = "common/only_this_cpu.rs"] mod only_this_cpu;`.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use kernel::arch::smp;
use kernel::proc;
use kernel::sync::WaitQueue;

/// While set, the threads [`OnlyThisCpuIdles`] starts spin on their CPUs.
static KEEP_BUSY: AtomicBool = AtomicBool::new(false);
/// How many of those threads are spinning now.
static NR_SPINNING: AtomicUsize = AtomicUsize::new(0);
/// Where they park afterwards (a daemon never exits).
static SPINNERS_DONE: WaitQueue = WaitQueue::new();

/// A kernel thread bound to one CPU: spins, never sleeping, while [`KEEP_BUSY`] is
/// set, so that CPU never idles (and never zeroes); then parks for good.
extern "C" fn spin_while_busy() -> ! {
    NR_SPINNING.fetch_add(1, Ordering::SeqCst);
    while KEEP_BUSY.load(Ordering::SeqCst) {
        core::hint::spin_loop();
    }
    NR_SPINNING.fetch_sub(1, Ordering::SeqCst);
    SPINNERS_DONE.wait_until(|| false);
    unreachable!("spin_while_busy: woken for nothing");
}

/// The single-CPU situation a test was written for, on any number of CPUs: the
/// test's task is bound to its CPU and every other CPU runs a spinning thread, so
/// every other task (user processes, kernel threads) runs on this CPU, and only
/// this CPU ever idles, only while the test sleeps. Dropping it stops the spinners
/// and unbinds the task.
pub struct OnlyThisCpuIdles;

impl OnlyThisCpuIdles {
    pub fn new() -> Self {
        let this_cpu = proc::task::pin_current();
        let nr_cpus = smp::nr_online();
        KEEP_BUSY.store(true, Ordering::SeqCst);
        for cpu in (0..nr_cpus).filter(|&c| c != this_cpu) {
            proc::task::spawn_daemon_on("only_this_cpu/spin", spin_while_busy, cpu).expect("spawn a spinning thread");
        }
        while NR_SPINNING.load(Ordering::SeqCst) < nr_cpus - 1 {
            proc::sched::yield_now();
        }
        // A fill that started before its CPU's spinner ran is over: that CPU runs it now.
        Self
    }
}

impl Drop for OnlyThisCpuIdles {
    fn drop(&mut self) {
        KEEP_BUSY.store(false, Ordering::SeqCst);
        while NR_SPINNING.load(Ordering::SeqCst) > 0 {
            proc::sched::yield_now();
        }
        proc::task::unpin_current();
    }
}
