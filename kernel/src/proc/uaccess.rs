//! Copying between kernel memory and user memory, safely.
//!
//! A user pointer is just a number the process chose. [`copy_from_user`] and
//! [`copy_to_user`] first check that the whole range lies in the user half, then
//! copy with `arch::extable::copy_user`, which lifts SMAP for exactly that copy and
//! whose one faulting instruction has a fixup. A page that is merely not yet
//! faulted in is paged in by the fault handler (the copy then continues); a page
//! that is not mapped at all makes the copy stop, and the syscall returns `EFAULT`.
//!
//! Rule: never call these with the address-space lock held (the fault handler
//! needs it).

use abi::Errno;

use crate::arch::extable;
use crate::mm::layout::USER_END;

/// Checks that `[addr, addr + len)` lies inside the user half.
pub fn check_user_range(addr: u64, len: usize) -> Result<(), Errno> {
    match addr.checked_add(len as u64) {
        Some(end) if end <= USER_END => Ok(()),
        _ => Err(Errno::EFAULT),
    }
}

/// Copies `dst.len()` bytes from user address `src` into `dst`.
pub fn copy_from_user(dst: &mut [u8], src: u64) -> Result<(), Errno> {
    check_user_range(src, dst.len())?;
    // SAFETY: the kernel side is `dst`, valid for its length; the user side was checked
    // to be in the user half, and a fault there is fixed up into a short count.
    let not_copied = unsafe { extable::copy_user(dst.as_mut_ptr() as u64, src, dst.len() as u64) };
    if not_copied == 0 { Ok(()) } else { Err(Errno::EFAULT) }
}

/// Copies `src` to user address `dst`.
pub fn copy_to_user(dst: u64, src: &[u8]) -> Result<(), Errno> {
    check_user_range(dst, src.len())?;
    // SAFETY: as in `copy_from_user`, with the roles swapped: the kernel side `src` is
    // only read.
    let not_copied = unsafe { extable::copy_user(dst, src.as_ptr() as u64, src.len() as u64) };
    if not_copied == 0 { Ok(()) } else { Err(Errno::EFAULT) }
}
