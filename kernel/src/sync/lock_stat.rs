//! Lock contention, counted by lock class: how often a CPU found an [`IrqMutex`]
//! held and how long it spun for it (Linux's `/proc/lock_stat`, reduced to what a
//! course needs to find the lock that keeps two CPUs from scaling).
//!
//! Only the slow path counts: [`IrqMutex::lock`](super::IrqMutex::lock) tries once
//! inline, and only a lock found held calls the out-of-line spin, which counts one
//! contention as it starts and adds the TSC cycles it waited when it gets the lock. An uncontended
//! acquisition costs nothing more, so the counters are on in every build. They are
//! global atomics, bumped only by a CPU that was waiting anyway.
//!
//! Read by `/proc/lock_stat` (`fs/procfs/system.rs`) and by the report at the end of a
//! `run=NAME` boot (`mm::vmstat`). Touches nothing else.

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use super::LockRank;

/// Number of lock classes.
const NR_CLASSES: usize = LockRank::ALL.len();

/// Acquisitions that found the lock held, per class.
static CONTENDED: [AtomicU64; NR_CLASSES] = [const { AtomicU64::new(0) }; NR_CLASSES];
/// TSC cycles spent waiting for a held lock, per class.
static WAIT_CYCLES: [AtomicU64; NR_CLASSES] = [const { AtomicU64::new(0) }; NR_CLASSES];

/// Counts a lock of class `rank` found held: called when the waiter starts to spin,
/// so the count shows a waiter while it still waits.
pub(super) fn note_contended(rank: LockRank) {
    CONTENDED[rank as usize].fetch_add(1, Ordering::Relaxed);
}

/// Adds the `cycles` TSC cycles a waiter of class `rank` spun before it got the lock.
pub(super) fn add_wait(rank: LockRank, cycles: u64) {
    WAIT_CYCLES[rank as usize].fetch_add(cycles, Ordering::Relaxed);
}

/// Returns how many acquisitions of class `rank` have found the lock held.
pub fn nr_contended(rank: LockRank) -> u64 {
    CONTENDED[rank as usize].load(Ordering::Relaxed)
}

/// One class's counts since boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassContention {
    /// The lock class.
    pub rank: LockRank,
    /// Acquisitions that found the lock held.
    pub contended: u64,
    /// Time spent waiting for it, summed over the waiters, in nanoseconds.
    pub wait_ns: u64,
}

/// Returns the classes that were ever contended, most waited-for first.
pub fn contended_classes() -> Vec<ClassContention> {
    let mut classes: Vec<ClassContention> = LockRank::ALL
        .iter()
        .map(|&rank| ClassContention {
            rank,
            contended: CONTENDED[rank as usize].load(Ordering::Relaxed),
            wait_ns: crate::arch::timer::cycles_to_ns(WAIT_CYCLES[rank as usize].load(Ordering::Relaxed)),
        })
        .filter(|class| class.contended > 0)
        .collect();
    classes.sort_by_key(|class| core::cmp::Reverse(class.wait_ns));
    classes
}
