//! What happens when a process faults: resolve the page fault, or kill the process.
//!
//! * A page fault from ring 3 goes to `mm::fault::handle_page_fault` with the
//!   process's address space; if that says `Segv`, the process is killed with a
//!   message naming the access and the VMA, and the kernel runs on. A page in swap
//!   is read here, with no lock held, and the fault retried (`fault_in`); if the read
//!   fails, only this process is killed.
//! * A page fault from ring 0 on a user address inside `copy_user` (its faulting
//!   instruction is in the exception table) is resolved the same way (demand
//!   paging works for syscall buffers too), and if it cannot be, the copy's fixup
//!   makes the syscall return `EFAULT`.
//! * Any other fault in ring 0 is a kernel bug: dump and panic. That includes a
//!   stray kernel access to a user page outside `copy_user`: resolving it as demand
//!   paging would map the page, SMAP would refuse the access again, and the kernel
//!   would fault on the same instruction forever.
//! * Other exceptions from ring 3 (#GP, #UD, #DE, ...) kill the process.

use crate::arch::extable;
use crate::arch::trap::{self, TrapFrame};
use crate::mm::VirtAddr;
use crate::mm::fault::{self as mm_fault, FaultError, FaultOutcome};
use crate::mm::rmap::SpaceRef;
use crate::mm::headroom::{self, HeadroomError};
use crate::mm::oom::{self, OomOutcome};
use crate::mm::reclaim;
use crate::mm::swap::{self, swapin::SwapInError};
use crate::mm::vmstat;

use super::{sched, task};

/// Counts kills, for tests.
pub static NR_KILLED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Tries to resolve a fault at `addr` in the running process's address space, and
/// counts (and traces) the outcome.
fn resolve(addr: u64, error_code: u64) -> Result<(), FaultError> {
    let pid = task::current_pid();
    let access = mm_fault::Access::from_error_code(error_code);
    let vaddr = VirtAddr::new_truncate(addr);
    let result = match task::current_space() {
        None => Err(FaultError::Segv(mm_fault::SegvReason { addr: vaddr, access, vma: None })),
        Some(space) => fault_in(&space, vaddr, error_code),
    };
    vmstat::record_fault(pid, vaddr, access, result.ok());
    result.map(|_| ())
}

/// How many times one fault may reclaim and retry before it gives up.
const MAX_RECLAIM_RETRIES: u32 = 16;

/// Resolves a fault in `space`, doing what the fault handler cannot do under the
/// space's lock: reclaiming memory, reading a page from swap, waiting for a page
/// under I/O. Enters and returns with no lock held; retries until the handler says
/// done or fails.
pub(super) fn fault_in(space: &SpaceRef, addr: VirtAddr, error_code: u64) -> Result<FaultOutcome, FaultError> {
    reclaim::wake_kswapd();
    // The fault may allocate page tables and heap objects (rmap, swap cache):
    // make sure the heap can serve them before any lock is taken.
    match headroom::ensure_heap_headroom() {
        Ok(()) => {}
        Err(HeadroomError::Killed) => return Err(FaultError::Killed),
        Err(HeadroomError::NoMemory) => return Err(FaultError::OutOfMemory),
    }
    let mut read = None;
    let mut nr_retries = 0;
    loop {
        if task::current_is_killed() {
            return Err(FaultError::Killed);
        }
        let result = {
            // The lock is never held while user memory is touched, so it is free here;
            // if it is not, a kernel path broke that rule: fail instead of deadlocking.
            let Some(mut space) = space.try_lock() else {
                panic!("page fault at {addr:?} while the address-space lock is held");
            };
            mm_fault::handle_page_fault_after_read(&mut space, addr, error_code, read)
        };
        match result {
            Err(FaultError::NeedsSwapIn(entry)) => match swap::read_into_cache(entry) {
                Ok(()) => read = Some(entry),
                Err(SwapInError::Io(error)) => return Err(FaultError::SwapIo { slot: entry.slot(), error }),
                Err(SwapInError::NoMemory) => reclaim_for_retry(&mut nr_retries)?,
            },
            Err(FaultError::PageLocked) => sched::yield_now(),
            Err(FaultError::OutOfMemory) => reclaim_for_retry(&mut nr_retries)?,
            other => return other,
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
        && (reclaim::direct_reclaim() > 0 || crate::mm::frame::nr_free_frames() > reclaim::watermarks().low)
    {
        return Ok(());
    }
    match oom::out_of_memory() {
        OomOutcome::KilledCurrent => Err(FaultError::Killed),
        OomOutcome::Killed(_) | OomOutcome::AlreadyDying(_) => {
            sched::yield_now();
            *nr_retries = 0;
            Ok(())
        }
        OomOutcome::NoVictim => Err(FaultError::OutOfMemory),
    }
}

/// Handles #PF (called by the trap dispatcher with CR2 in `addr`).
pub fn page_fault(frame: &mut TrapFrame, addr: u64) {
    let is_user_addr = addr < crate::mm::layout::USER_END;
    if frame.is_user() {
        match resolve(addr, frame.error_code) {
            Ok(()) => {}
            Err(FaultError::Segv(reason)) => kill(format_args!("{reason}")),
            Err(FaultError::SwapIo { slot, error }) => kill(format_args!("swap-in of slot {slot} failed: {error:?}")),
            Err(FaultError::OutOfMemory) => kill(format_args!("out of memory at {addr:#x}")),
            // Killed by the OOM killer (the message is out): exit on the way back.
            Err(FaultError::Killed) => task::exit_if_killed(),
            Err(e @ (FaultError::NeedsSwapIn(_) | FaultError::PageLocked)) => {
                kill(format_args!("page fault at {addr:#x} unresolved: {e:?}"))
            }
        }
    } else if is_user_addr
        && extable::is_user_access(frame.rip)
        && task::current_pid() != 0
        && kernel_fault_on_user(addr, frame.error_code)
    {
        // Demand paging on behalf of the kernel (a syscall touching a user buffer).
    } else if !extable::fixup(frame, addr) {
        trap::dump(frame);
        panic!("kernel page fault at {addr:#x}, rip {:#x}: {}", frame.rip, trap::PageFaultError(frame.error_code));
    }
}

/// Resolves a fault the kernel took on a user address (inside `copy_user`); returns
/// false if it could not be, and the copy's fixup makes the syscall fail with
/// EFAULT. A page that could not be read from swap also kills the process, as in
/// user mode: it exits on its way back from the syscall.
fn kernel_fault_on_user(addr: u64, error_code: u64) -> bool {
    match resolve(addr, error_code) {
        Ok(()) => true,
        Err(FaultError::SwapIo { slot, error }) => {
            task::kill(task::current_pid(), format_args!("swap-in of slot {slot} failed: {error:?}"));
            false
        }
        Err(_) => false,
    }
}

/// Kills the running process for exception `frame.vector` raised in ring 3.
pub fn user_exception(frame: &TrapFrame) -> ! {
    kill(format_args!("{} at rip {:#x} (error code {:#x})", trap::vector_name(frame.vector as u8), frame.rip, frame.error_code))
}

fn kill(reason: core::fmt::Arguments) -> ! {
    NR_KILLED.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    task::kill_current(reason)
}
