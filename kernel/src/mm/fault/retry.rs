//! The fault retry loop: what the fault handler cannot do under the address-space
//! lock, done here with no lock held, until the fault is resolved or must fail.
//!
//! ```text
//!  fault_in(space, addr, error code)                         no lock held
//!    kswapd's wake-up check (reclaim/kswapd.rs)
//!    a write with the heap's headroom at hand: the fast path first (fast.rs), under
//!      the space's lock; resolved -> the resident limit, the trace, done
//!    (the general way, fault_in_general:)
//!    heap headroom (headroom.rs): refill the heap's pool, reclaim, or an OOM decision
//!    memory group (memcg.rs): over high/max, reclaim the group's own pages, or its OOM kill
//!    loop:  killed meanwhile?                        -> Err(Killed)
//!           lock space; handle_page_fault_after_read; unlock
//!             Err(NeedsSwapIn(entry)) -> read the slot into the swap cache (disk I/O), retry
//!                                        (no memory for it: reclaim, as below)
//!             Err(NeedsFileRead)      -> read the file page into its page cache (disk I/O,
//!                                        readahead: filemap.rs), retry
//!             Err(PageLocked)         -> yield until the I/O on the page ends, retry
//!             Err(OutOfMemory)        -> direct reclaim, retry; nothing freed (or too
//!                                        many rounds): the OOM killer chooses a victim
//!             anything else           -> the result
//! ```
//! This is memory policy, so it lives in `mm`: how often to reclaim, when to call
//! the OOM killer, when to give up. The caller (`proc::trap` for a process's own
//! faults, `proc::vm_rw` on a target's behalf) only turns the outcome into a kill
//! or an `EFAULT`. [`fork_retrying`] is the same policy for `fork`, whose allocations
//! (page tables, a shared mapping's pages) run under the parent's lock.
//!
//! Processes are reached through hooks, never by name: "was I killed?" through
//! [`super::super::process_hooks`], "let others run" through `sync::hooks`.
//!
//! Lock state: enters and returns with no lock held; takes the address-space lock
//! around each attempt only.
#![deny(unsafe_code)]

use super::super::addr_space::VmError;
use super::super::headroom::{self, HeadroomError};
use super::super::oom::{self, OomOutcome};
use super::super::rmap::SpaceRef;
use super::super::swap::{self, swapin::SwapInError};
use super::super::vmstat::{self, SwapInPhase};
use super::super::{VirtAddr, cow, frame, process_hooks, reclaim};
use super::{FaultError, FaultOutcome, fast, handle_page_fault_after_read};
use crate::sync::hooks;

/// How many times one fault may reclaim and retry before it gives up.
const MAX_RECLAIM_RETRIES: u32 = 16;

/// Resolves a fault at `addr` in `space`, doing what the fault handler cannot do
/// under the space's lock: reclaiming memory, reading a page from swap, waiting for
/// a page under I/O. Enters and returns with no lock held; retries until the
/// handler says done or fails.
///
/// The common anonymous write and COW fault go to the fast path (`fast.rs`) first,
/// with none of the loop's bookkeeping: what the loop would check before its
/// first attempt is checked here the same way (kswapd's wake-up, the heap's
/// headroom; a memory group's charge has nothing to do for a space the fast path
/// takes, which has none), and what it does after a success is done here too (the
/// resident limit, the fault trace). Anything the fast path refuses, or fails,
/// goes the general way, which tries again from the start.
#[inline]
pub fn fault_in(space: &SpaceRef, addr: VirtAddr, error_code: u64) -> Result<FaultOutcome, FaultError> {
    reclaim::wake_kswapd();
    if fast::may_take(addr, error_code) && headroom::has_heap_headroom() {
        let result = {
            let nr_held = crate::sync::nr_spinlocks_held();
            assert!(nr_held == 0, "page fault at {addr:?} while {nr_held} spinlock(s) are held");
            let zeroed = fast::zeroed_before_lock(error_code);
            let mut space = space.lock();
            fast::try_fault(&mut space, addr, error_code, zeroed)
        };
        if let Some(Ok(outcome)) = result {
            reclaim::resident_limit::enforce_after_fault(space, addr);
            reclaim::record::trace_after_fault(space, addr, error_code);
            return Ok(outcome);
        }
    }
    fault_in_general(space, addr, error_code)
}

/// [`fault_in`] for what the fast path did not resolve: the loop of the module docs.
#[inline(never)]
fn fault_in_general(space: &SpaceRef, addr: VirtAddr, error_code: u64) -> Result<FaultOutcome, FaultError> {
    // The swap-in clock's start (vmstat::SwapInPhase); the next phase starts at `read_at`.
    let entry_at = crate::arch::timer::rdtsc();
    let mut read_at = 0;
    // The fault may allocate page tables and heap objects (rmap, swap cache):
    // make sure the heap can serve them before any lock is taken.
    match headroom::ensure_heap_headroom() {
        Ok(()) => {}
        Err(HeadroomError::Killed) => return Err(FaultError::Killed),
        Err(HeadroomError::NoMemory) => return Err(FaultError::OutOfMemory),
    }
    // A process in a memory group over its limit reclaims its group's own pages
    // first, or gets the group's OOM kill (`memcg.rs`).
    super::super::memcg::charge(space)?;
    let mut read = None;
    let mut has_read_file = false;
    let mut nr_retries = 0;
    let mut is_retry = false;
    loop {
        // A process killed meanwhile stops retrying. The first attempt does not ask
        // (a lock of the task table): a process killed before its fault resolves it
        // harmlessly and exits on its way back to user mode (`exit_if_killed`).
        if is_retry && process_hooks::current_is_killed() {
            return Err(FaultError::Killed);
        }
        is_retry = true;
        let result = {
            // No spinlock is ever held while user memory is touched; if one is, a
            // kernel path broke that rule (it may be this space's own lock): fail
            // instead of deadlocking. Another thread of the process may hold the
            // lock on another CPU (a fault, munmap, fork): wait for it, as two
            // threads faulting one page do (the second finds it resolved and retries).
            let nr_held = crate::sync::nr_spinlocks_held();
            assert!(nr_held == 0, "page fault at {addr:?} while {nr_held} spinlock(s) are held");
            let mut space = space.lock();
            handle_page_fault_after_read(&mut space, addr, error_code, read)
        };
        match result {
            Err(FaultError::NeedsSwapIn(entry)) => {
                vmstat::clock_swap_in(SwapInPhase::Lookup, entry_at);
                match swap::read_into_cache(entry) {
                    Ok(()) => {
                        read = Some(entry);
                        read_at = crate::arch::timer::rdtsc();
                    }
                    Err(SwapInError::Io(error)) => return Err(FaultError::SwapIo { slot: entry.slot(), error }),
                    Err(SwapInError::NoMemory) => reclaim_for_retry(&mut nr_retries)?,
                }
            }
            Err(FaultError::NeedsFileRead { cache, index }) => match super::super::filemap::read_for_fault(cache, index) {
                Ok(()) => has_read_file = true,
                Err(crate::fs::FsError::NoMemory) => reclaim_for_retry(&mut nr_retries)?,
                Err(e) => return Err(FaultError::FileIo(e)),
            },
            Err(FaultError::PageLocked) => hooks::yield_now(),
            Err(FaultError::OutOfMemory) => reclaim_for_retry(&mut nr_retries)?,
            other => {
                if read.is_some() {
                    vmstat::clock_swap_in(SwapInPhase::Map, read_at);
                }
                if other.is_ok() {
                    reclaim::resident_limit::enforce_after_fault(space, addr);
                    reclaim::record::trace_after_fault(space, addr, error_code);
                }
                if has_read_file && other.is_ok() {
                    // The page came from the disk: a major fault, not the minor one
                    // counted, for the process and machine-wide (`pgmajfault`).
                    let mut space = space.lock();
                    space.stats.minor_faults = space.stats.minor_faults.saturating_sub(1);
                    space.stats.major_faults += 1;
                    super::super::page_cache::count_major_fault();
                }
                return other;
            }
        }
    }
}

/// A user-page allocation failed: direct reclaim, so the caller can retry. If
/// nothing could be freed (or after [`MAX_RECLAIM_RETRIES`] rounds), the OOM killer
/// chooses a victim: if that is us, the fault fails with `Killed`; if another
/// process, we yield until it is gone and retry.
///
/// An allocation can fail with memory to spare (fault injection, or frames freed
/// meanwhile by another process): if reclaim freed nothing but more frames than the
/// user reserve are free, the fault is retried too, within the same bound, instead
/// of killing a process while memory is free.
fn reclaim_for_retry(nr_retries: &mut u32) -> Result<(), FaultError> {
    *nr_retries += 1;
    if *nr_retries <= MAX_RECLAIM_RETRIES
        && (reclaim::direct_reclaim() > 0 || frame::nr_free_frames() > reclaim::watermarks().low)
    {
        return Ok(());
    }
    match oom::out_of_memory() {
        OomOutcome::KilledCurrent => Err(FaultError::Killed),
        OomOutcome::Killed(_) | OomOutcome::AlreadyDying(_) => {
            hooks::yield_now();
            *nr_retries = 0;
            Ok(())
        }
        OomOutcome::NoVictim => Err(FaultError::OutOfMemory),
    }
}

/// How many times in a row fork may reclaim and retry without getting further
/// before it gives up with `NoMemory`.
const MAX_FORK_RETRIES: u32 = 16;

/// Forks `space` copy-on-write (`cow::fork`), reclaiming with the space unlocked
/// and trying again when memory runs out (page tables, or the pages of a shared
/// mapping filled at fork). Enters and returns with no lock held.
///
/// Each attempt keeps the shared pages it filled, so a large shared mapping takes
/// many rounds; but reclaim may keep finding a frame or two while fork gets no
/// further (the parent holds no more pages than before), so after
/// `MAX_FORK_RETRIES` such rounds in a row fork fails with `NoMemory` (ENOMEM,
/// as Linux's does) instead of looping. Fork never calls the OOM killer.
pub fn fork_retrying(space: &SpaceRef) -> Result<SpaceRef, VmError> {
    reclaim::wake_kswapd();
    let mut nr_idle_retries = 0;
    let mut last_nr_held = 0;
    loop {
        let (result, nr_held) = {
            let mut space = space.lock();
            let result = cow::fork(&mut space);
            (result, space.stats.rss_pages + space.stats.swap_pages)
        };
        match result {
            Err(VmError::NoMemory) => {
                nr_idle_retries = if nr_held > last_nr_held { 0 } else { nr_idle_retries + 1 };
                last_nr_held = nr_held;
                if nr_idle_retries < MAX_FORK_RETRIES && reclaim::direct_reclaim() > 0 {
                    continue;
                }
                return Err(VmError::NoMemory);
            }
            other => return other,
        }
    }
}
