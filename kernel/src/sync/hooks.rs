//! The scheduler's entry points that waiting code needs, registered by `proc` at boot.
//!
//! `sync` sits below `proc` (the layering is proc → mm → {sync, block} ← drivers),
//! yet a wait queue must put the running task to sleep and wake others. So `proc`
//! hands this module a table of functions once ([`register`]), and everything here
//! calls through it. Before registration (early boot: one thread, no scheduler) a
//! wait spins until its condition holds, which an interrupt must then make true.
//!
//! A task waits on a *key*, a number that names one wait queue. The protocol that
//! keeps wake-ups from being lost (Linux's `prepare_to_wait`):
//! 1. [`Hooks::prepare_wait`]: the running task is marked waiting on the key;
//! 2. the waiter checks its condition; if it holds, [`Hooks::finish_wait`] and done;
//! 3. else [`Hooks::sleep`] switches away. A waker that made the condition true
//!    calls [`Hooks::wake`] *after* changing it: if that happened between 1 and 3,
//!    the task is already runnable again and `sleep` comes straight back; if it
//!    happened before 1, step 2 sees the condition.

use spin::Once;

/// What the scheduler provides.
#[derive(Clone, Copy)]
pub struct Hooks {
    /// Marks the running task as waiting on `key` (not runnable once it switches away).
    pub prepare_wait: fn(key: u64),
    /// Makes the running task runnable again and forgets its key.
    pub finish_wait: fn(),
    /// Switches away from the running task; returns when it runs again (at once if
    /// it was woken since `prepare_wait`).
    pub sleep: fn(),
    /// Wakes at most `max` tasks waiting on `key`, the longest-waiting first;
    /// returns how many were woken. Callable from interrupt handlers.
    pub wake: fn(key: u64, max: usize) -> usize,
    /// Gives the CPU to another runnable task, if any; the running task stays runnable.
    pub yield_now: fn(),
    /// Starts a kernel thread running `entry`; returns its id.
    pub spawn_kthread: fn(name: &str, entry: extern "C" fn() -> !) -> Result<u64, KthreadError>,
}

/// Why a kernel thread could not be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KthreadError {
    /// No memory for its stack or task.
    OutOfMemory,
    /// The scheduler is not running yet.
    NoScheduler,
}

static HOOKS: Once<Hooks> = Once::new();

/// Installs the scheduler's hooks; the first registration wins.
pub fn register(hooks: Hooks) {
    HOOKS.call_once(|| hooks);
}

/// Returns the hooks, or `None` before the scheduler registered them.
pub fn get() -> Option<&'static Hooks> {
    HOOKS.get()
}

/// Lets other tasks run before the caller goes on (a no-op before the scheduler
/// exists). For code below `proc` that must let a dying process exit first.
pub fn yield_now() {
    if let Some(hooks) = get() {
        (hooks.yield_now)();
    }
}
