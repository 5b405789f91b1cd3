//! `process_vm_readv` and `process_vm_writev`: copying between the caller's memory
//! and another process's, with Linux's semantics.
//!
//! ```text
//!  process_vm_readv(pid, local_iov, liovcnt, remote_iov, riovcnt, flags) -> bytes copied
//!  process_vm_writev(pid, local_iov, liovcnt, remote_iov, riovcnt, flags) -> bytes copied
//! ```
//! The remote iovecs are walked in order, a page at a time, and the local iovecs are
//! filled (or drained) in order alongside; the call stops when either list runs out.
//! Each remote page is looked up in the *target's* page table; if it is not resident
//! (never touched, in swap) or, for a write, not writable (copy-on-write), it is
//! faulted in on the target's behalf, exactly as if the target had touched it, and
//! its frame is pinned for the copy (`mm::remote`). Nothing maps the target's pages
//! into the caller.
//!
//! Errors, in the order Linux checks them:
//! - `EINVAL`: `flags` is not 0, more than `IOV_MAX` iovecs, or a list's total
//!   length overflows `isize`;
//! - `EFAULT`: an iovec array cannot be read;
//! - (a local list of total length 0 returns 0 here, before the target is looked up);
//! - `ESRCH`: no process `pid`, or it has exited (a zombie), or it is a kernel task;
//! - `EPERM`: the caller may not access it. This kernel has no users or
//!   capabilities, so the rule is Yama's `ptrace_scope=1`: a process may access
//!   itself and its descendants (children, grandchildren, ...), nothing else;
//! - `EFAULT`: a remote page is outside the target's VMAs or its protection forbids
//!   the access (a write to read-only memory), or a local buffer is bad;
//! - `ENOMEM`: a page could not be faulted in for lack of memory.
//!
//! **Partial transfers**: when an error comes after some bytes were copied, the call
//! returns the count so far (the error is not reported); with nothing copied it
//! returns the error. The count is exact at the remote side (it stops at the first
//! inaccessible page, as Linux's code does, although its man page speaks of iovec
//! granularity); a bad local buffer fails the page-sized chunk it was part of.
//! Our access does not kill the target: a swap-in that fails is `EFAULT` here (when
//! memory runs out, the OOM killer may still choose a victim, as for any fault).

use abi::{Errno, IOV_MAX, IoVec};
use mm_core::fault_code::PageFaultCode;
use alloc::vec;
use alloc::vec::Vec;

use super::task::{self, Pid, TaskState};
use super::uaccess::{check_user_range, copy_from_user, copy_to_user};
use crate::mm::fault::{FaultError, fault_in};
use crate::mm::remote;
use crate::mm::rmap::SpaceRef;
use crate::mm::{PAGE_SIZE, VirtAddr};

/// Which way the bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `process_vm_readv`: from the target into the caller.
    FromTarget,
    /// `process_vm_writev`: from the caller into the target.
    ToTarget,
}

/// How many times one page is faulted in before giving up (reclaim could take it
/// away between the fault and the copy, each time).
const MAX_FAULT_TRIES: u32 = 16;

/// The system call: `args` = pid, local_iov, liovcnt, remote_iov, riovcnt, flags.
pub fn sys_process_vm_rw(args: [u64; 6], direction: Direction) -> Result<u64, Errno> {
    let [pid, local_iov, nr_local, remote_iov, nr_remote, flags] = args;
    if flags != 0 || nr_local > IOV_MAX || nr_remote > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let local = read_iovecs(local_iov, nr_local)?;
    if total_len(&local)? == 0 {
        return Ok(0);
    }
    let remote = read_iovecs(remote_iov, nr_remote)?;
    total_len(&remote)?;
    let space = target_space(pid)?;
    copy_all(&space, &local, &remote, direction)
}

/// Reads `count` iovecs from user address `addr`.
fn read_iovecs(addr: u64, count: u64) -> Result<Vec<IoVec>, Errno> {
    let mut bytes = vec![0u8; count as usize * 16];
    copy_from_user(&mut bytes, addr)?;
    let word_fn = |at: &[u8]| u64::from_ne_bytes(at.try_into().expect("8 bytes"));
    let (iovecs, _) = bytes.as_chunks::<16>();
    Ok(iovecs.iter().map(|c| IoVec { base: word_fn(&c[..8]), len: word_fn(&c[8..]) }).collect())
}

/// Returns the total length of `iovecs`; `EINVAL` if it does not fit in an `isize`.
fn total_len(iovecs: &[IoVec]) -> Result<u64, Errno> {
    iovecs
        .iter()
        .try_fold(0u64, |sum, iov| sum.checked_add(iov.len))
        .filter(|&sum| sum <= isize::MAX as u64)
        .ok_or(Errno::EINVAL)
}

/// Returns the address space of live process `pid`, if the caller may access it.
fn target_space(pid: u64) -> Result<SpaceRef, Errno> {
    let caller = task::current_pid();
    let tasks = task::TASKS.lock();
    let target = tasks.get(&pid).filter(|t| pid != 0 && !matches!(t.state, TaskState::Zombie(_))).ok_or(Errno::ESRCH)?;
    let space = target.space.clone().ok_or(Errno::ESRCH)?;
    // Yama's ptrace_scope=1: the caller must be the target or one of its ancestors.
    let mut at: Pid = pid;
    for _ in 0..=tasks.len() {
        if at == caller {
            return Ok(space);
        }
        match tasks.get(&at) {
            Some(t) if at != 0 => at = t.parent,
            _ => break,
        }
    }
    Err(Errno::EPERM)
}

/// The caller's side: a position in the local iovecs.
struct LocalCursor<'a> {
    iovecs: &'a [IoVec],
    index: usize,
    offset: u64,
}

impl LocalCursor<'_> {
    /// Returns how many bytes the local iovecs still have room for.
    fn remaining(&self) -> u64 {
        let rest: u64 = self.iovecs.iter().skip(self.index).map(|iov| iov.len).sum();
        rest - self.offset
    }

    /// Moves over `len` bytes, calling `copy_fn(user address, range of the chunk)` per piece.
    fn walk(&mut self, len: usize, mut copy_fn: impl FnMut(u64, core::ops::Range<usize>) -> Result<(), Errno>) -> Result<(), Errno> {
        let mut done = 0;
        while done < len {
            let iov = self.iovecs[self.index];
            let n = ((iov.len - self.offset) as usize).min(len - done);
            if n > 0 {
                copy_fn(iov.base.wrapping_add(self.offset), done..done + n)?;
            }
            done += n;
            self.offset += n as u64;
            if self.offset == iov.len {
                self.index += 1;
                self.offset = 0;
            }
        }
        Ok(())
    }
}

/// Copies page-sized chunks until a list runs out or a page fails; returns the bytes copied.
fn copy_all(space: &SpaceRef, local: &[IoVec], remote: &[IoVec], direction: Direction) -> Result<u64, Errno> {
    let mut cursor = LocalCursor { iovecs: local, index: 0, offset: 0 };
    let mut buf = vec![0u8; PAGE_SIZE as usize];
    let mut nr_copied = 0u64;
    for iov in remote {
        let (mut addr, mut left) = (iov.base, iov.len);
        while left > 0 {
            let len = left.min(PAGE_SIZE - addr % PAGE_SIZE).min(cursor.remaining()) as usize;
            if len == 0 {
                return Ok(nr_copied); // the local buffers are full
            }
            let chunk = &mut buf[..len];
            let result = match direction {
                Direction::FromTarget => read_remote(space, addr, chunk)
                    .and_then(|()| cursor.walk(len, |user, range| copy_to_user(user, &chunk[range]))),
                Direction::ToTarget => cursor
                    .walk(len, |user, range| copy_from_user(&mut chunk[range], user))
                    .and_then(|()| write_remote(space, addr, chunk)),
            };
            if let Err(errno) = result {
                return if nr_copied == 0 { Err(errno) } else { Ok(nr_copied) };
            }
            nr_copied += len as u64;
            addr += len as u64;
            left -= len as u64;
        }
    }
    Ok(nr_copied)
}

/// Returns the target's address of `addr`, if `[addr, addr + len)` is in the user
/// half (checked as for any user pointer: `EFAULT` if not).
fn remote_addr(addr: u64, len: usize) -> Result<VirtAddr, Errno> {
    check_user_range(addr, len)?;
    Ok(VirtAddr::new(addr))
}

/// Copies `buf.len()` bytes of the target at `addr` (within one page) into `buf`.
fn read_remote(space: &SpaceRef, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
    let vaddr = remote_addr(addr, buf.len())?;
    for _ in 0..MAX_FAULT_TRIES {
        let pinned = remote::pin_resident(&space.lock(), vaddr);
        match pinned {
            Some(page) => {
                page.read(vaddr.page_offset() as usize, buf);
                return Ok(());
            }
            None => fault_for_target(space, vaddr, false)?,
        }
    }
    Err(Errno::EFAULT)
}

/// Copies `bytes` into the target at `addr` (within one page), faulting the page in
/// on the target's behalf; `exec` writes a new program's initial stack this way.
pub(super) fn write_remote(space: &SpaceRef, addr: u64, bytes: &[u8]) -> Result<(), Errno> {
    let vaddr = remote_addr(addr, bytes.len())?;
    for _ in 0..MAX_FAULT_TRIES {
        if remote::write_resident(&space.lock(), vaddr, bytes) {
            return Ok(());
        }
        fault_for_target(space, vaddr, true)?;
    }
    Err(Errno::EFAULT)
}

/// Faults the page of `addr` in the target, for reading or writing, with no lock held.
fn fault_for_target(space: &SpaceRef, addr: VirtAddr, for_write: bool) -> Result<(), Errno> {
    let is_present = {
        let space = space.lock();
        if !remote::is_mapped(&space, addr) {
            return Err(Errno::EFAULT);
        }
        remote::is_present(&space, addr)
    };
    let error_code = PageFaultCode::for_access(for_write, is_present).0;
    match fault_in(space, addr, error_code) {
        Ok(_) => Ok(()),
        Err(FaultError::OutOfMemory) => Err(Errno::ENOMEM),
        Err(_) => Err(Errno::EFAULT),
    }
}
