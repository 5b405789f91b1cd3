//! Kernel-heap headroom, made sure of before a system call or a page fault starts.
//!
//! The heap cannot fail gracefully: a `Box::new` that finds no memory ends in
//! `handle_alloc_error`, a kernel panic. And it cannot reclaim for itself: an
//! allocation may happen with an address space or the frame allocator locked,
//! which reclaim needs. So memory for the heap is made sure of *before* work
//! starts, at the two doors through which user processes make the kernel allocate:
//! the system-call entry and the user page-fault entry, where no lock is held.
//!
//! ```text
//!   syscall / user fault ──> ensure_heap_headroom()
//!        pool has >= ADMIT_BLOCKS blocks ────────────────────> go on (one atomic load)
//!        else refill the pool from free frames ──── enough ──> go on
//!        else direct reclaim (swap pages out), refill, repeat
//!        reclaim frees nothing ──> OOM decision: kill the largest process
//!             the caller itself ──> Killed (it exits on its way back)
//!             another          ──> yield until it is gone, repeat
//!             nobody to kill   ──> NoMemory (the syscall fails with ENOMEM)
//! ```
//! The pool (`heap`'s emergency pool, 16 blocks of 8 frames) then covers every heap
//! allocation the call makes once the buddy allocator is empty: of the
//! [`ADMIT_BLOCKS`] blocks, two (64 KiB of slab pages, more than any one system
//! call or fault allocates) are the call's, and two are the *reclaim reserve*
//! (`heap::RECLAIM_RESERVE_BLOCKS`), which only reclaim may use: reclaim needs a
//! little heap for its own bookkeeping when everything else is gone, and it is what
//! gets memory back (Linux's `PF_MEMALLOC`).
//!
//! Lock state: called with no lock held; takes the heap pool's lock and, through
//! reclaim, everything reclaim takes.
#![deny(unsafe_code)]

use super::oom::{self, OomOutcome};
use super::{heap, reclaim};

/// Pool blocks a call may start with. Fewer: refill (and reclaim) first. The
/// reclaim reserve stays untouched by the call; the other blocks (64 KiB) are its.
pub const ADMIT_BLOCKS: usize = heap::RECLAIM_RESERVE_BLOCKS + 2;

/// Rounds of direct reclaim without the pool filling before the OOM decision.
const MAX_RECLAIM_ROUNDS: u32 = 32;

/// Why a call may not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadroomError {
    /// The OOM killer chose the calling process: it must exit.
    Killed,
    /// Memory is exhausted and there is no process to kill (`ENOMEM`).
    NoMemory,
}

/// Returns true if the heap's emergency pool holds at least [`ADMIT_BLOCKS`]
/// blocks: [`ensure_heap_headroom`] would have nothing to do (one atomic load).
#[inline]
pub fn has_heap_headroom() -> bool {
    heap::nr_pool_blocks() >= ADMIT_BLOCKS
}

/// Makes sure the heap's emergency pool holds at least [`ADMIT_BLOCKS`] blocks,
/// reclaiming and, if that cannot help, deciding who dies (see the module docs).
/// Call with no lock held.
pub fn ensure_heap_headroom() -> Result<(), HeadroomError> {
    if has_heap_headroom() {
        return Ok(());
    }
    let mut nr_rounds = 0;
    loop {
        // The OOM killer may have chosen the caller while it reclaimed or yielded
        // here: it must go and exit, not wait for itself to die.
        if super::process_hooks::current_is_killed() {
            return Err(HeadroomError::Killed);
        }
        if heap::refill_pool() >= ADMIT_BLOCKS {
            return Ok(());
        }
        nr_rounds += 1;
        if nr_rounds <= MAX_RECLAIM_ROUNDS && reclaim::direct_reclaim() > 0 {
            continue;
        }
        match oom::out_of_memory() {
            OomOutcome::KilledCurrent => return Err(HeadroomError::Killed),
            OomOutcome::AlreadyDying(pid) if pid == super::process_hooks::current_pid() => {
                return Err(HeadroomError::Killed);
            }
            OomOutcome::Killed(_) | OomOutcome::AlreadyDying(_) => {
                crate::sync::hooks::yield_now();
                nr_rounds = 0;
            }
            OomOutcome::NoVictim => return Err(HeadroomError::NoMemory),
        }
    }
}
