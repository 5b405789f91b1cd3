//! Locks for a uniprocessor kernel with interrupts: a spinlock that also keeps
//! interrupts off while held ([`IrqMutex`], for short critical sections), and a
//! sleeping lock whose waiters yield the CPU ([`SleepMutex`], for disk I/O).
//!
//! An interrupt handler that takes a lock the interrupted code already holds would
//! spin forever. [`IrqMutex`] prevents that the simple way: `lock()` saves the
//! interrupt flag and disables interrupts; dropping the guard restores it.

use core::cell::UnsafeCell;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::instructions::interrupts;

/// A spinlock whose guard keeps interrupts disabled.
pub struct IrqMutex<T> {
    inner: spin::Mutex<T>,
}

/// The guard of an [`IrqMutex`]: the data, with interrupts off until it drops.
pub struct IrqMutexGuard<'a, T> {
    guard: ManuallyDrop<spin::MutexGuard<'a, T>>,
    were_enabled: bool,
}

impl<T> IrqMutex<T> {
    /// Creates an unlocked mutex.
    pub const fn new(value: T) -> Self {
        Self { inner: spin::Mutex::new(value) }
    }

    /// Disables interrupts and takes the lock.
    pub fn lock(&self) -> IrqMutexGuard<'_, T> {
        let were_enabled = interrupts::are_enabled();
        interrupts::disable();
        IrqMutexGuard { guard: ManuallyDrop::new(self.inner.lock()), were_enabled }
    }

    /// Takes the lock if it is free (interrupts off while held), or returns `None`.
    pub fn try_lock(&self) -> Option<IrqMutexGuard<'_, T>> {
        let were_enabled = interrupts::are_enabled();
        interrupts::disable();
        match self.inner.try_lock() {
            Some(guard) => Some(IrqMutexGuard { guard: ManuallyDrop::new(guard), were_enabled }),
            None => {
                if were_enabled {
                    interrupts::enable();
                }
                None
            }
        }
    }

    /// Returns true if some context holds the lock (for panic paths and assertions).
    pub fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }
}

impl<T> Deref for IrqMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for IrqMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for IrqMutexGuard<'_, T> {
    /// Releases the lock first, then restores the interrupt flag saved by `lock`.
    fn drop(&mut self) {
        // SAFETY: `guard` is dropped exactly once, here, and never used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        if self.were_enabled {
            interrupts::enable();
        }
    }
}

/// A lock for long holds (disk I/O): a waiter yields the CPU instead of spinning,
/// and interrupts stay enabled while it is held (xv6 calls this a sleep-lock).
///
/// The holder may itself yield (the block driver does, while the device works), so
/// other tasks run during the I/O; one that wants the same lock yields until it is
/// free. Never take it while holding an [`IrqMutex`]: the holder could not yield.
pub struct SleepMutex<T> {
    is_locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through a guard, and `is_locked` (taken with an
// atomic compare-exchange) admits one guard at a time, so sharing the mutex between
// tasks is sharing `T` by moving access between them: `T: Send` suffices.
unsafe impl<T: Send> Sync for SleepMutex<T> {}

/// The guard of a [`SleepMutex`].
pub struct SleepMutexGuard<'a, T> {
    mutex: &'a SleepMutex<T>,
}

impl<T> SleepMutex<T> {
    /// Creates an unlocked mutex.
    pub const fn new(value: T) -> Self {
        Self { is_locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    /// Takes the lock, yielding to other tasks while someone else holds it.
    pub fn lock(&self) -> SleepMutexGuard<'_, T> {
        while self.is_locked.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            crate::proc::sched::yield_now();
        }
        SleepMutexGuard { mutex: self }
    }
}

impl<T> Deref for SleepMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while `is_locked` is ours: no other reference
        // to the value exists.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T> DerefMut for SleepMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only access.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T> Drop for SleepMutexGuard<'_, T> {
    fn drop(&mut self) {
        self.mutex.is_locked.store(false, Ordering::Release);
    }
}
