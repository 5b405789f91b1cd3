//! A sleeping mutex: for long holds (disk I/O, later inode locks), where a waiter
//! must sleep rather than spin, and interrupts stay enabled while it is held.
//!
//! A waiter sleeps on the mutex's [`WaitQueue`] until it can take the lock; the
//! holder's unlock wakes one waiter, which tries again (it may lose to a task that
//! came later and found the lock free: no strict fairness, as in Linux's mutex
//! fast path). Never take it while holding an [`IrqMutex`](super::IrqMutex): the
//! holder could not sleep (debug builds panic at `lock`, even when it is free).

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

use super::WaitQueue;

/// A lock whose waiters sleep.
pub struct Mutex<T> {
    is_locked: AtomicBool,
    waiters: WaitQueue,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and `is_locked` (taken with an
// atomic compare-exchange) admits one guard at a time: sharing the mutex moves
// access to `T` between tasks, so `T: Send` suffices.
unsafe impl<T: Send> Sync for Mutex<T> {}

/// The guard of a [`Mutex`]: access to the value until it drops.
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    /// Creates an unlocked mutex.
    pub const fn new(value: T) -> Self {
        Self { is_locked: AtomicBool::new(false), waiters: WaitQueue::new(), value: UnsafeCell::new(value) }
    }

    /// Takes the lock, sleeping while another task holds it.
    #[track_caller] // a might-sleep report names the caller
    pub fn lock(&self) -> MutexGuard<'_, T> {
        // Linux's might_sleep(): caught even when the lock is free this time.
        let nr_held = super::nr_spinlocks_held();
        assert!(nr_held == 0, "Mutex::lock: a sleeping lock taken holding {nr_held} spinlock(s)");
        self.waiters.wait_until(|| self.try_acquire());
        MutexGuard { mutex: self }
    }

    /// Takes the lock if it is free.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.try_acquire().then_some(MutexGuard { mutex: self })
    }

    /// Returns the value of a mutex nobody else can reach (`&mut self`): no locking.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// Returns true if some task holds the lock.
    pub fn is_locked(&self) -> bool {
        self.is_locked.load(Ordering::Relaxed)
    }

    fn try_acquire(&self) -> bool {
        self.is_locked.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while `is_locked` is ours: no other reference
        // to the value exists.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only access.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.is_locked.store(false, Ordering::Release);
        self.mutex.waiters.wake_one();
    }
}
