//! Completions: one side waits for an event that the other side signals once
//! (Linux's `struct completion`), e.g. a task waiting for its disk request while
//! the device's interrupt handler completes it.

use core::sync::atomic::{AtomicBool, Ordering};

use super::WaitQueue;

/// An event that happens once (until [`Completion::reset`]).
pub struct Completion {
    is_done: AtomicBool,
    waiters: WaitQueue,
}

impl Default for Completion {
    fn default() -> Self {
        Self::new()
    }
}

impl Completion {
    /// Creates an event that has not happened.
    pub const fn new() -> Self {
        Self { is_done: AtomicBool::new(false), waiters: WaitQueue::new() }
    }

    /// Signals the event and wakes every waiter; callable from an interrupt handler.
    pub fn complete(&self) {
        self.is_done.store(true, Ordering::Release);
        self.waiters.wake_all();
    }

    /// Returns true if the event has happened.
    pub fn is_done(&self) -> bool {
        self.is_done.load(Ordering::Acquire)
    }

    /// Sleeps until the event has happened.
    pub fn wait(&self) {
        self.waiters.wait_until(|| self.is_done());
    }

    /// Makes the event not have happened, for the next use.
    pub fn reset(&self) {
        self.is_done.store(false, Ordering::Release);
    }
}
