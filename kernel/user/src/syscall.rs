//! Raw system calls: the `syscall` instruction with zero to six arguments.
//!
//! Registers follow Linux x86-64: the number in `rax`, arguments in `rdi`, `rsi`,
//! `rdx`, `r10`, `r8`, `r9` (`r10`, not `rcx`, because `syscall` itself overwrites
//! `rcx` with the return address and `r11` with `rflags`), the result in `rax`.
//! Each function returns the raw result; [`abi::Errno::from_ret`] decodes errors.
//! The safe wrappers in [`crate::sys`] are what programs normally call.
//!
//! # Safety (all functions)
//!
//! A system call can read and write the caller's memory and change its mappings,
//! so the caller must make sure that (1) every pointer argument is valid for the
//! access the syscall makes (except where the point is to pass a bad pointer and
//! get `EFAULT`), and (2) the call does not unmap, remap, re-protect or discard
//! memory that live Rust references still point to.

use core::arch::asm;

/// Makes system call `nr` with no arguments.
///
/// # Safety
/// See the [module documentation](self).
#[inline(always)]
pub unsafe fn syscall0(nr: u64) -> u64 {
    let ret;
    // SAFETY: the caller upholds the module's contract; `syscall` only clobbers
    // rcx and r11, which are declared, and the kernel does not touch our stack.
    unsafe { asm!("syscall", inlateout("rax") nr => ret, lateout("rcx") _, lateout("r11") _, options(nostack)) };
    ret
}

/// Makes system call `nr` with one argument.
///
/// # Safety
/// See the [module documentation](self).
#[inline(always)]
pub unsafe fn syscall1(nr: u64, a1: u64) -> u64 {
    let ret;
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!("syscall", inlateout("rax") nr => ret, in("rdi") a1,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// Makes system call `nr` with two arguments.
///
/// # Safety
/// See the [module documentation](self).
#[inline(always)]
pub unsafe fn syscall2(nr: u64, a1: u64, a2: u64) -> u64 {
    let ret;
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!("syscall", inlateout("rax") nr => ret, in("rdi") a1, in("rsi") a2,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// Makes system call `nr` with three arguments.
///
/// # Safety
/// See the [module documentation](self).
#[inline(always)]
pub unsafe fn syscall3(nr: u64, a1: u64, a2: u64, a3: u64) -> u64 {
    let ret;
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!("syscall", inlateout("rax") nr => ret, in("rdi") a1, in("rsi") a2, in("rdx") a3,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// Makes system call `nr` with four arguments.
///
/// # Safety
/// See the [module documentation](self).
#[inline(always)]
pub unsafe fn syscall4(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64) -> u64 {
    let ret;
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!("syscall", inlateout("rax") nr => ret, in("rdi") a1, in("rsi") a2, in("rdx") a3,
             in("r10") a4, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// Makes system call `nr` with five arguments.
///
/// # Safety
/// See the [module documentation](self).
#[inline(always)]
pub unsafe fn syscall5(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> u64 {
    let ret;
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!("syscall", inlateout("rax") nr => ret, in("rdi") a1, in("rsi") a2, in("rdx") a3,
             in("r10") a4, in("r8") a5, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

/// Makes system call `nr` with six arguments.
///
/// # Safety
/// See the [module documentation](self).
#[inline(always)]
pub unsafe fn syscall6(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64, a6: u64) -> u64 {
    let ret;
    // SAFETY: as in `syscall0`.
    unsafe {
        asm!("syscall", inlateout("rax") nr => ret, in("rdi") a1, in("rsi") a2, in("rdx") a3,
             in("r10") a4, in("r8") a5, in("r9") a6,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}
