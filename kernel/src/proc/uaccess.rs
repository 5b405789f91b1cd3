//! Copying between kernel memory and user memory, safely.
//!
//! A user pointer is just a number the process chose. [`copy_from_user`] and
//! [`copy_to_user`] first check that the whole range lies in the user half and
//! stop before the first PROT_NONE page, then copy with `arch::extable::copy_user`,
//! which lifts SMAP for exactly that copy and whose one faulting instruction has a
//! fixup. A page that is merely not yet faulted in is paged in by the fault handler
//! (the copy then continues); a page that is not mapped at all makes the copy stop,
//! and the syscall returns `EFAULT`.
//!
//! Why the PROT_NONE check: a PROT_NONE page that was touched before keeps a
//! present PTE without the USER bit (so its contents survive until the protection
//! comes back). To the CPU that is a kernel page, which the kernel may read with or
//! without SMAP: the copy would not fault. So the copy asks the VMAs first, as the
//! fault handler would for an access that faulted.
//!
//! Rule: never call these with the address-space lock held (the fault handler
//! needs it).

use abi::Errno;

use crate::arch::extable;
use crate::mm::page_cache::PageCache;
use crate::mm::addr_space::VmProt;
use crate::mm::layout::USER_END;

/// Checks that `[addr, addr + len)` lies inside the user half.
pub fn check_user_range(addr: u64, len: usize) -> Result<(), Errno> {
    match addr.checked_add(len as u64) {
        Some(end) if end <= USER_END => Ok(()),
        _ => Err(Errno::EFAULT),
    }
}

/// Returns how many bytes from `addr` (at most `len`) come before the first page
/// of a PROT_NONE VMA. Pages outside every VMA are left to the fault handler.
///
/// Takes the running process's address-space lock for the look-up only. Another
/// thread of the process may change the VMAs during the copy (munmap, mprotect):
/// the copy then faults, and the fault is fixed up into a short count (EFAULT),
/// as in Linux.
fn accessible_len(addr: u64, len: usize) -> usize {
    let Some(space) = crate::proc::task::current_space() else {
        return len;
    };
    let space = space.lock();
    let end = addr + len as u64;
    let first_none = space
        .vmas()
        .iter()
        .filter(|v| v.prot == VmProt::NONE && v.start.as_u64() < end && v.end.as_u64() > addr)
        .map(|v| v.start.as_u64().max(addr))
        .next();
    first_none.map_or(len, |a| (a - addr) as usize)
}

/// Copies `dst.len()` bytes from user address `src` into `dst`.
pub fn copy_from_user(dst: &mut [u8], src: u64) -> Result<(), Errno> {
    check_user_range(src, dst.len())?;
    let len = accessible_len(src, dst.len());
    // SAFETY: the kernel side is `dst`, valid for `len <= dst.len()` bytes; the user
    // side was checked to be in the user half, and a fault there is fixed up into a
    // short count.
    let not_copied = unsafe { extable::copy_user(dst.as_mut_ptr() as u64, src, len as u64) };
    if not_copied == 0 && len == dst.len() { Ok(()) } else { Err(Errno::EFAULT) }
}

/// Copies `len` bytes of the file cached in `cache` from `offset` to user address
/// `dst`, straight from each cached frame (no bounce buffer: one copy, as Linux's
/// `copy_page_to_iter`); returns the bytes copied (fewer at the end of the file).
/// A bad buffer is `EFAULT` if nothing was copied, else the count so far (read(2)).
pub fn copy_file_to_user(cache: &PageCache, offset: u64, dst: u64, len: usize) -> Result<usize, Errno> {
    check_user_range(dst, len)?;
    let allowed = accessible_len(dst, len);
    let mut done = 0usize;
    let mut is_fault = false;
    let copied = cache.read_with(offset, allowed, &mut |page, in_page, n| {
        // SAFETY: `[dst, dst + allowed)` is in the user half with no PROT_NONE page
        // (checked above); the piece is inside it and inside the page.
        let not_copied = unsafe { page.copy_to_user(in_page, dst + done as u64, n) };
        is_fault = not_copied != 0;
        if !is_fault {
            done += n;
        }
        !is_fault
    })?;
    let is_short_of_prot_none = allowed < len && copied == allowed && offset + (allowed as u64) < cache.size();
    if (is_fault || is_short_of_prot_none) && copied == 0 {
        return Err(Errno::EFAULT);
    }
    Ok(copied)
}

/// Copies `src` to user address `dst`.
pub fn copy_to_user(dst: u64, src: &[u8]) -> Result<(), Errno> {
    check_user_range(dst, src.len())?;
    let len = accessible_len(dst, src.len());
    // SAFETY: as in `copy_from_user`, with the roles swapped: the kernel side `src` is
    // only read, `len <= src.len()` bytes of it.
    let not_copied = unsafe { extable::copy_user(dst, src.as_ptr() as u64, len as u64) };
    if not_copied == 0 && len == src.len() { Ok(()) } else { Err(Errno::EFAULT) }
}
