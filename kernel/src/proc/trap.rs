//! Exceptions from the trap dispatcher (`crate::trap`), for processes: a page fault
//! is resolved by `mm`, and what `mm` could not resolve becomes a kill, an `EFAULT`
//! or (a kernel bug) a panic.
//!
//! * A page fault from ring 3 goes to `mm::fault::fault_in` with the process's
//!   address space: the memory policy (swap-in, reclaim, the OOM killer, retries)
//!   is all there. If it says `Segv`, the process is killed with a message naming
//!   the access and the VMA, and the kernel runs on; if a page could not be read
//!   from swap, or memory ran out with nobody to kill, only this process is killed.
//! * A page fault from ring 0 on a user address inside `copy_user` (its faulting
//!   instruction is in the exception table) is resolved the same way (demand
//!   paging works for syscall buffers too), and if it cannot be, the copy's fixup
//!   makes the syscall return `EFAULT`.
//! * Any other fault in ring 0 is a kernel bug: dump and panic. That includes a
//!   stray kernel access to a user page outside `copy_user`: resolving it as demand
//!   paging would map the page, SMAP would refuse the access again, and the kernel
//!   would fault on the same instruction forever.
//! * Other exceptions from ring 3 (#GP, #UD, #DE, ...) kill the process.
//!
//! Interrupts are on in here whenever the faulting code had them on (every ring-3
//! fault, and `copy_user` faults in the syscalls that run with them on): the trap
//! entry (`arch::trap`) turns them back on once CR2 is saved. So timer ticks and the
//! disk's interrupt arrive during a fault, and a swap-in sleeps until its request is
//! done. That is safe because every spinlock on this path is an `IrqMutex`, which
//! turns interrupts off while held (an interrupt handler can never find one of them
//! taken), and the disk's lock is a sleeping `sync::Mutex`, held with none of them.

use crate::arch::extable;
use crate::arch::trap::{self, TrapFrame};
use crate::mm::VirtAddr;
use crate::mm::fault::{self as mm_fault, FaultError, fault_in};
use crate::mm::vmstat;

use super::task;

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

/// Handles #PF (called by the trap dispatcher with CR2 in `addr`).
pub fn page_fault(frame: &mut TrapFrame, addr: u64) {
    let is_user_addr = addr < crate::mm::layout::USER_END;
    if frame.is_user() {
        match resolve(addr, frame.error_code) {
            Ok(()) => {}
            Err(FaultError::Segv(reason)) => kill(format_args!("{reason}")),
            Err(FaultError::SwapIo { slot, error }) => kill(format_args!("swap-in of slot {slot} failed: {error:?}")),
            Err(FaultError::OutOfMemory) => kill(format_args!("out of memory at {addr:#x}")),
            Err(FaultError::BeyondEof { addr: page, size }) => kill(format_args!(
                "bus error (SIGBUS): access {addr:#x} in a mapped file's page {:#x}, past the end of the file ({size} bytes)",
                page.as_u64()
            )),
            Err(FaultError::FileIo(e)) => kill(format_args!("reading a mapped file's page at {addr:#x} failed: {e:?}")),
            // Killed by the OOM killer (the message is out): exit on the way back.
            Err(FaultError::Killed) => task::exit_if_killed(),
            Err(e @ (FaultError::NeedsSwapIn(_) | FaultError::PageLocked | FaultError::NeedsFileRead { .. })) => {
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
        panic!("kernel page fault at {addr:#x}, rip {:#x}: {}", frame.rip, trap::PageFaultCode(frame.error_code));
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
