//! Guest halt-polling: an idle CPU looks for work for a short while before it halts.
//!
//! Under an emulator or a hypervisor, `hlt` hands the host thread that runs the
//! CPU back to the host. The interrupt that ends the halt (a disk completion, a
//! wake-up IPI) then has to wake that thread, and the host has to schedule it:
//! tens of microseconds on a quiet host, far more on a loaded one. A CPU that is
//! still executing when the interrupt comes takes it at once. So when a task has
//! just gone to sleep for a disk request of ~50-100 us and nothing else can run,
//! polling the run queue for that long is cheaper than halting. Linux does the
//! same in its guests (`drivers/cpuidle/cpuidle-haltpoll.c` and the haltpoll
//! governor); the window rule here is that governor's:
//!
//! - idle periods are measured from the start of the poll to the wake-up;
//! - a period that ended after the window but within [`MAX_WINDOW_NS`] (a halt
//!   that a longer poll would have saved) doubles the window (at least to
//!   [`GROW_START_NS`]);
//! - a period longer than [`MAX_WINDOW_NS`] (the CPU really was idle) halves it;
//! - a poll that found work leaves it as it is.
//!
//! The poll runs with interrupts on (the interrupt handler queues the woken task)
//! and re-checks with
//! interrupts off before the halt, so a wake-up between the last look and the
//! `hlt` is not lost (`sti; hlt` is atomic). `haltpoll_us=N` on the command line
//! caps the window (0 turns polling off; the default is [`MAX_WINDOW_NS`]).
//!
//! Touches: the scheduler's two idle paths (the idle task's loop, and `pick_next` on a
//! CPU without an idle task, both call [`idle_until_work`]),
//! the TSC, and per-CPU atomics; nothing else.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::smp::MAX_CPUS;
use crate::arch::timer;
use x86_64::instructions::interrupts;

/// The longest window (Linux's `guest_halt_poll_ns` default): an idle period
/// longer than this was real idleness, not a short wait worth polling through.
pub const MAX_WINDOW_NS: u64 = 200_000;

/// The first window after growing from nothing (Linux's `guest_halt_poll_grow_start`).
pub const GROW_START_NS: u64 = 50_000;

/// The poll window of one CPU and the rule that adapts it (pure: no clock, no CPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollWindow {
    /// How long the next idle period polls before halting, in ns.
    pub limit_ns: u64,
    /// The cap: [`MAX_WINDOW_NS`], or what `haltpoll_us=` says (0: never poll).
    pub max_ns: u64,
}

impl PollWindow {
    /// A window that starts closed and may grow to `max_ns`.
    pub const fn new(max_ns: u64) -> Self {
        Self { limit_ns: 0, max_ns }
    }

    /// Adapts the window to an idle period that lasted `idle_ns` and ended in a
    /// halt (or a poll: then `idle_ns` is at most the window and nothing changes).
    pub fn after_idle(&mut self, idle_ns: u64) {
        if idle_ns > self.limit_ns && idle_ns <= self.max_ns {
            self.limit_ns = (self.limit_ns * 2).max(GROW_START_NS).min(self.max_ns);
        } else if idle_ns > self.max_ns {
            self.limit_ns /= 2;
        }
    }
}

/// Counters of the idle path, per CPU: shown by the swap benchmark and checked by
/// the `interrupts` test image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdleStats {
    /// Idle periods that ended while polling: work came within the window.
    pub nr_poll_hits: u64,
    /// Idle periods that ended in a halt (after a poll that found nothing, or none).
    pub nr_halts: u64,
}

struct PerCpuWindow {
    limit_ns: AtomicU64,
    nr_poll_hits: AtomicU64,
    nr_halts: AtomicU64,
}

static WINDOWS: [PerCpuWindow; MAX_CPUS] = [const {
    PerCpuWindow { limit_ns: AtomicU64::new(0), nr_poll_hits: AtomicU64::new(0), nr_halts: AtomicU64::new(0) }
}; MAX_CPUS];

/// The cap of every CPU's window, in ns (`u64::MAX`: not read from the command line yet).
static MAX_NS: AtomicU64 = AtomicU64::new(u64::MAX);

/// The cap on the poll window, in ns: `haltpoll_us=` or [`MAX_WINDOW_NS`].
pub fn max_window_ns() -> u64 {
    let max = MAX_NS.load(Ordering::Relaxed);
    if max != u64::MAX {
        return max;
    }
    let from_cmdline = match crate::cmdline::value("haltpoll_us").map(str::parse::<u64>) {
        Some(Ok(us)) => us.saturating_mul(1000),
        Some(Err(_)) => {
            log::warn!("haltpoll_us= wants a number of microseconds; using {} us", MAX_WINDOW_NS / 1000);
            MAX_WINDOW_NS
        }
        None => MAX_WINDOW_NS,
    };
    MAX_NS.store(from_cmdline, Ordering::Relaxed);
    from_cmdline
}

/// Sets the cap on every CPU's window (0: halt at once) and closes the windows,
/// which then grow again from nothing; for tests and A/B measurements.
pub fn set_max_window_ns(max_ns: u64) {
    MAX_NS.store(max_ns, Ordering::Relaxed);
    for window in &WINDOWS {
        window.limit_ns.store(0, Ordering::Relaxed);
    }
}

/// Opens CPU `cpu`'s window to `ns` at once (at most the cap), instead of letting
/// it grow; for tests.
pub fn open_window_ns(cpu: usize, ns: u64) {
    WINDOWS[cpu].limit_ns.store(ns.min(max_window_ns()), Ordering::Relaxed);
}

/// The counters of CPU `cpu`.
pub fn stats(cpu: usize) -> IdleStats {
    let window = &WINDOWS[cpu];
    IdleStats {
        nr_poll_hits: window.nr_poll_hits.load(Ordering::Relaxed),
        nr_halts: window.nr_halts.load(Ordering::Relaxed),
    }
}

/// The counters of every CPU, summed.
pub fn total_stats() -> IdleStats {
    (0..MAX_CPUS).map(stats).fold(IdleStats::default(), |sum, s| IdleStats {
        nr_poll_hits: sum.nr_poll_hits + s.nr_poll_hits,
        nr_halts: sum.nr_halts + s.nr_halts,
    })
}

/// Waits, on idle CPU `cpu` with interrupts off, until `has_work` says there is
/// something to run: polls for up to the CPU's window with interrupts on, then
/// calls `halt` (which must enable interrupts and halt atomically, and return with
/// them off) if still nothing came. Returns with interrupts off.
pub fn idle_until_work(cpu: usize, has_work: impl Fn() -> bool, halt: impl FnOnce()) {
    let window = &WINDOWS[cpu];
    let limit_ns = window.limit_ns.load(Ordering::Relaxed);
    let start = timer::rdtsc();
    if limit_ns > 0 {
        let limit_cycles = timer::tsc_per_ms() * limit_ns / 1_000_000;
        interrupts::enable();
        let mut found = has_work();
        // No `pause` in this loop: under QEMU's TCG every `pause` leaves the
        // translated code for the emulator's loop, and a CPU doing that without
        // end kept QEMU's main loop (its timers, the disk's completions) from
        // running: the `interrupts` image counted too few ticks.
        while !found && timer::rdtsc() - start < limit_cycles {
            found = has_work();
        }
        interrupts::disable();
        // Looked at again with interrupts off: a wake-up after this look raises
        // an interrupt that ends the `hlt` below.
        if found || has_work() {
            window.nr_poll_hits.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
    halt();
    window.nr_halts.fetch_add(1, Ordering::Relaxed);
    let mut adapted = PollWindow { limit_ns, max_ns: max_window_ns() };
    adapted.after_idle(timer::cycles_to_ns(timer::rdtsc() - start));
    window.limit_ns.store(adapted.limit_ns, Ordering::Relaxed);
}
