//! Locks and waiting for a uniprocessor kernel with interrupts.
//!
//! | piece | for |
//! |---|---|
//! | [`IrqMutex`] | short critical sections: a spinlock that keeps interrupts off while held |
//! | [`WaitQueue`] (`wait_queue`) | sleeping until a condition holds (or a deadline tick), with no lost wake-up |
//! | [`Completion`] (`completion`) | waiting for one event (an I/O request done) |
//! | [`Mutex`] (`mutex`) | long holds (disk I/O, later inode locks): waiters sleep on a queue |
//! | `kthread` | kernel threads: started through the scheduler's hooks |
//! | `lock_stat` | how often each lock class was found held, and the time spent waiting |
//! | `test_hook` | a point where a test runs its own code (another CPU's step, forced there) |
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
//! Each [`IrqMutex`] also has a [`LockRank`], and debug builds panic when a lock is
//! taken out of rank order (`lock_rank`; the order itself is in [`crate::mm`]).

use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::Ordering;

use x86_64::instructions::interrupts;

pub mod completion;
pub mod hooks;
pub mod kthread;
pub mod lock_rank;
pub mod lock_stat;
pub mod mutex;
pub mod test_hook;
pub mod wait_queue;

pub use completion::Completion;
pub use lock_rank::LockRank;
pub use mutex::{Mutex, MutexGuard};
pub use wait_queue::WaitQueue;

/// `IrqMutex` guards alive now, per CPU (debug builds; always 0 in release builds).
static NR_SPINLOCKS_HELD: [core::sync::atomic::AtomicUsize; crate::arch::smp::MAX_CPUS] =
    [const { core::sync::atomic::AtomicUsize::new(0) }; crate::arch::smp::MAX_CPUS];

/// Returns the number of spinlocks ([`IrqMutex`] guards) this CPU holds now; always
/// 0 in release builds, which do not count.
pub fn nr_spinlocks_held() -> usize {
    NR_SPINLOCKS_HELD[crate::arch::smp::cpu_id()].load(Ordering::Relaxed)
}

/// Counts a spinlock taken (debug builds).
#[inline]
fn count_spinlock_taken() {
    if cfg!(debug_assertions) {
        NR_SPINLOCKS_HELD[crate::arch::smp::cpu_id()].fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts a spinlock released (debug builds).
#[inline]
fn count_spinlock_released() {
    if cfg!(debug_assertions) {
        NR_SPINLOCKS_HELD[crate::arch::smp::cpu_id()].fetch_sub(1, Ordering::Relaxed);
    }
}


/// A spinlock whose guard keeps interrupts disabled.
///
/// It belongs to a lock class, its [`LockRank`]; debug builds check that locks are
/// taken in rank order (see [`lock_rank`]).
pub struct IrqMutex<T> {
    inner: spin::Mutex<T>,
    rank: LockRank,
}

/// The guard of an [`IrqMutex`]: the data, with interrupts off until it drops.
pub struct IrqMutexGuard<'a, T> {
    guard: ManuallyDrop<spin::MutexGuard<'a, T>>,
    were_enabled: bool,
    /// The lock's address, which the rank checker knows it by (debug builds).
    #[cfg(debug_assertions)]
    addr: usize,
}

impl<T> IrqMutex<T> {
    /// Creates an unlocked leaf lock ([`LockRank::Leaf`]): no other ranked lock may be
    /// taken while it is held.
    pub const fn new(value: T) -> Self {
        Self::new_ranked(LockRank::Leaf, value)
    }

    /// Creates an unlocked mutex of lock class `rank`.
    pub const fn new_ranked(rank: LockRank, value: T) -> Self {
        Self { inner: spin::Mutex::new(value), rank }
    }

    /// Disables interrupts and takes the lock.
    ///
    /// Inlined, with the wait out of line (`spin_for_it`): an uncontended lock and
    /// its release are a dozen instructions at the call site, where a call to one
    /// shared out-of-line copy cost some 40 (the fault path takes 10-30 locks).
    #[inline(always)]
    pub fn lock(&self) -> IrqMutexGuard<'_, T> {
        self.lock_at(0)
    }

    /// Takes the lock while the CPU holds another lock of the same class: this one is
    /// the inner of the two (subclass 1). Only for a pair nobody takes the other way
    /// round (fork: the parent's space, then the new child's, which nobody else can
    /// reach yet); say why at the call.
    #[inline(always)]
    pub fn lock_nested(&self) -> IrqMutexGuard<'_, T> {
        self.lock_at(1)
    }

    #[cfg_attr(not(debug_assertions), allow(unused_variables))]
    #[inline(always)]
    fn lock_at(&self, subclass: u8) -> IrqMutexGuard<'_, T> {
        let were_enabled = interrupts::are_enabled();
        interrupts::disable();
        #[cfg(debug_assertions)]
        lock_rank::check_order(self.addr(), self.rank, subclass);
        let guard = ManuallyDrop::new(match self.inner.try_lock() {
            Some(guard) => guard,
            None => self.spin_for_it(),
        });
        count_spinlock_taken();
        #[cfg(debug_assertions)]
        lock_rank::acquired(self.addr(), self.rank, subclass);
        IrqMutexGuard {
            guard,
            were_enabled,
            #[cfg(debug_assertions)]
            addr: self.addr(),
        }
    }

    /// Takes the inner lock, spinning while another CPU holds it. Interrupts are off
    /// here, so a TLB shootdown IPI from the holder could not be taken: the spin
    /// carries out flush requests aimed at this CPU instead (`arch::shootdown::poll`),
    /// or a holder waiting for our flush and we waiting for its lock would deadlock.
    /// The wait is counted for the lock's class (`lock_stat`).
    #[cold]
    #[inline(never)]
    fn spin_for_it(&self) -> spin::MutexGuard<'_, T> {
        let start = crate::arch::timer::rdtsc();
        lock_stat::note_contended(self.rank);
        loop {
            if let Some(guard) = self.inner.try_lock() {
                lock_stat::add_wait(self.rank, crate::arch::timer::rdtsc().saturating_sub(start));
                return guard;
            }
            while self.inner.is_locked() {
                crate::arch::shootdown::poll();
                core::hint::spin_loop();
            }
        }
    }

    /// Returns the lock's address: its identity for the rank checker.
    #[cfg(debug_assertions)]
    fn addr(&self) -> usize {
        core::ptr::from_ref(self).addr()
    }

    /// Takes the lock if it is free (interrupts off while held), or returns `None`.
    #[inline]
    pub fn try_lock(&self) -> Option<IrqMutexGuard<'_, T>> {
        let were_enabled = interrupts::are_enabled();
        interrupts::disable();
        match self.inner.try_lock() {
            Some(guard) => {
                count_spinlock_taken();
                // Not checked (a try cannot wait), but recorded: what is taken under
                // it is checked against it.
                #[cfg(debug_assertions)]
                lock_rank::acquired(self.addr(), self.rank, 0);
                Some(IrqMutexGuard {
                    guard: ManuallyDrop::new(guard),
                    were_enabled,
                    #[cfg(debug_assertions)]
                    addr: self.addr(),
                })
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
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: `guard` is dropped exactly once, here, and never used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        count_spinlock_released();
        #[cfg(debug_assertions)]
        lock_rank::released(self.addr);
        if self.were_enabled {
            interrupts::enable();
        }
    }
}
