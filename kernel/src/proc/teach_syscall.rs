//! The teaching tools' syscalls (ours, 1020-1029): `explain` (the page-table walk
//! and next fault at one address, `mm::explain`).
//!
//! ```text
//!  explain(pid, addr, out)   pid 0: the caller; ESRCH: no such live user process;
//!                            EINVAL: a non-canonical address; EFAULT: a bad `out`
//! ```
//! Any process may explain any other: this is a teaching kernel, and the answer
//! holds addresses and frame numbers, not memory contents.

use abi::Errno;

use super::task;
use super::uaccess::copy_to_user;
use crate::mm::VirtAddr;

/// `explain(pid, addr, out)`: fills an `abi::Explain` for `addr` in process `pid`.
pub fn sys_explain(pid: u64, addr: u64, out: u64) -> Result<u64, Errno> {
    let addr = VirtAddr::try_new(addr).map_err(|_| Errno::EINVAL)?;
    let pid = if pid == 0 { task::current_pid() } else { pid };
    if !task::is_live_user_process(pid) {
        return Err(Errno::ESRCH);
    }
    let space = task::TASKS.lock().get(&pid).and_then(|t| t.space.clone()).ok_or(Errno::ESRCH)?;
    let explained = crate::mm::explain::explain(&space.lock(), addr);
    let mut bytes = [0u8; abi::Explain::WORDS * 8];
    for (i, w) in explained.to_words().iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
    }
    copy_to_user(out, &bytes)?;
    Ok(0)
}
