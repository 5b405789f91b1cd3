//! Wait queues: sleeping until a condition holds, with no lost wake-up.
//!
//! ```text
//!   waiter                                   waker
//!   ------                                   -----
//!   prepare_wait(key)  (marked waiting)
//!   cond()? ── true ──> finish_wait, return   make cond true
//!     │ false                                 wake(key)  ── marks every waiter on
//!   sleep() ── returns once woken ───┐                      key runnable
//!   finish_wait, go round again <────┘
//! ```
//! The condition is checked *after* the task is marked waiting, and the waker
//! wakes *after* it changed the condition, so whichever order the two run in, the
//! waiter either sees the condition or is woken (the protocol is in [`super::hooks`]).
//! A wake-up that arrives while the waiter is busy elsewhere is not lost either:
//! the waiter checks the condition before it sleeps again. A timed wait
//! ([`WaitQueue::wait_until_deadline`]) also ends at a timer tick, for waits whose
//! wake-up may never come (a disk that stopped answering).
//!
//! A queue holds no list: waiting tasks record the queue's key in their task entry
//! (see `proc::sched`), so waiting never allocates, which matters for the reclaim
//! thread that waits exactly when memory is short. It counts its waiters, so a
//! wake-up with nobody waiting (every unlock of an uncontended [`super::Mutex`])
//! costs one atomic load instead of a look through the task table: a waiter is
//! counted before it checks its condition, so a waker that changed the condition
//! and then saw no waiter cannot have a waiter that missed the change.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::hooks;

/// The next key to hand out (0 means "no key yet").
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// A queue of tasks waiting for a condition.
pub struct WaitQueue {
    /// This queue's key, assigned on first use.
    key: AtomicU64,
    /// Tasks inside `wait_until` now.
    nr_waiters: AtomicUsize,
}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitQueue {
    /// Creates an empty queue.
    pub const fn new() -> Self {
        Self { key: AtomicU64::new(0), nr_waiters: AtomicUsize::new(0) }
    }

    /// Returns this queue's key, assigning one the first time.
    fn key(&self) -> u64 {
        let key = self.key.load(Ordering::Acquire);
        if key != 0 {
            return key;
        }
        let fresh = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        match self.key.compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => fresh,
            Err(theirs) => theirs,
        }
    }

    /// Sleeps until `cond` returns true; returns at once if it already does.
    ///
    /// `cond` runs with no lock of this module held and may take locks of its own
    /// (never one held by the caller across the call, as always). Before the
    /// scheduler exists (early boot) this spins instead of sleeping.
    pub fn wait_until(&self, mut cond: impl FnMut() -> bool) {
        let Some(hooks) = hooks::get() else {
            while !cond() {
                core::hint::spin_loop();
            }
            return;
        };
        let key = self.key();
        self.nr_waiters.fetch_add(1, Ordering::SeqCst);
        loop {
            (hooks.prepare_wait)(key);
            if cond() {
                (hooks.finish_wait)();
                self.nr_waiters.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            (hooks.sleep)();
            (hooks.finish_wait)();
        }
    }

    /// Sleeps until `cond` returns true (then returns true) or until timer tick
    /// `deadline_tick` has come (then returns false, if `cond` still does not hold).
    ///
    /// For waits that must end even if the wake-up never comes (a disk request to a
    /// device that stopped answering). Ticks advance only while interrupts are on:
    /// call it with interrupts enabled. Before the scheduler exists it spins, as
    /// [`wait_until`](Self::wait_until) does.
    pub fn wait_until_deadline(&self, mut cond: impl FnMut() -> bool, deadline_tick: u64) -> bool {
        let is_past = || crate::arch::timer::ticks() >= deadline_tick;
        let Some(hooks) = hooks::get() else {
            while !cond() {
                if is_past() {
                    return false;
                }
                core::hint::spin_loop();
            }
            return true;
        };
        let key = self.key();
        self.nr_waiters.fetch_add(1, Ordering::SeqCst);
        let is_done = loop {
            (hooks.prepare_wait)(key);
            if cond() {
                break true;
            }
            if is_past() {
                break false;
            }
            (hooks.sleep_until)(deadline_tick);
            (hooks.finish_wait)();
        };
        (hooks.finish_wait)();
        self.nr_waiters.fetch_sub(1, Ordering::SeqCst);
        is_done
    }

    /// Wakes one waiter (the one waiting longest); returns true if there was one.
    pub fn wake_one(&self) -> bool {
        self.wake(1) == 1
    }

    /// Wakes every waiter; returns how many there were.
    pub fn wake_all(&self) -> usize {
        self.wake(usize::MAX)
    }

    fn wake(&self, max: usize) -> usize {
        if self.nr_waiters.load(Ordering::SeqCst) == 0 {
            return 0;
        }
        match hooks::get() {
            Some(hooks) => (hooks.wake)(self.key(), max),
            None => 0,
        }
    }
}
