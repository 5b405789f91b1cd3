//! Locks and waiting for a uniprocessor kernel with interrupts.
//!
//! | piece | for |
//! |---|---|
//! | [`IrqMutex`] | short critical sections: a spinlock that keeps interrupts off while held |
//! | [`WaitQueue`] (`wait_queue`) | sleeping until a condition holds (or a deadline tick), with no lost wake-up |
//! | [`Completion`] (`completion`) | waiting for one event (an I/O request done) |
//! | [`Mutex`] (`mutex`) | long holds (disk I/O, later inode locks): waiters sleep on a queue |
//! | `kthread` | kernel threads: started through the scheduler's hooks |
//!
//! An interrupt handler that takes a lock the interrupted code already holds would
//! spin forever. [`IrqMutex`] prevents that the simple way: `lock()` saves the
//! interrupt flag and disables interrupts; dropping the guard restores it.
//!
//! Waiting needs the scheduler, which sits above this layer (`proc`). So `proc`
//! registers its few entry points at boot ([`hooks::register`]): mark the running
//! task as waiting on a key, switch away, wake the tasks waiting on a key, start a
//! kernel thread. Code below `proc` (memory management, drivers) waits through
//! this module and never calls the scheduler itself.
//!
//! In debug builds every [`IrqMutex`] held is counted ([`nr_spinlocks_held`]), and the
//! scheduler refuses to switch away or sleep while the count is not zero: a task
//! that slept with a spinlock held would leave interrupts off and the lock taken.

use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::Ordering;

use x86_64::instructions::interrupts;

pub mod completion;
pub mod hooks;
pub mod kthread;
pub mod mutex;
pub mod wait_queue;

pub use completion::Completion;
pub use mutex::{Mutex, MutexGuard};
pub use wait_queue::WaitQueue;

/// `IrqMutex` guards alive now (debug builds; always 0 in release builds).
static NR_SPINLOCKS_HELD: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Returns the number of spinlocks ([`IrqMutex`] guards) the CPU holds now; always 0
/// in release builds, which do not count.
pub fn nr_spinlocks_held() -> usize {
    NR_SPINLOCKS_HELD.load(Ordering::Relaxed)
}

/// Counts a spinlock taken (debug builds).
#[inline]
fn count_spinlock_taken() {
    if cfg!(debug_assertions) {
        NR_SPINLOCKS_HELD.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts a spinlock released (debug builds).
#[inline]
fn count_spinlock_released() {
    if cfg!(debug_assertions) {
        NR_SPINLOCKS_HELD.fetch_sub(1, Ordering::Relaxed);
    }
}


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
        let guard = ManuallyDrop::new(self.inner.lock());
        count_spinlock_taken();
        IrqMutexGuard { guard, were_enabled }
    }

    /// Takes the lock if it is free (interrupts off while held), or returns `None`.
    pub fn try_lock(&self) -> Option<IrqMutexGuard<'_, T>> {
        let were_enabled = interrupts::are_enabled();
        interrupts::disable();
        match self.inner.try_lock() {
            Some(guard) => {
                count_spinlock_taken();
                Some(IrqMutexGuard { guard: ManuallyDrop::new(guard), were_enabled })
            }
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
        count_spinlock_released();
        if self.were_enabled {
            interrupts::enable();
        }
    }
}
