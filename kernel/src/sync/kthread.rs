//! Kernel threads: tasks that run kernel code only (kswapd, the swap wiper, the
//! reaper, later the writeback thread), started through the scheduler's hooks so
//! that code below `proc` can start them.
//!
//! A kernel thread runs in ring 0 on its own guarded kernel stack with the kernel's
//! page tables, lives as long as the kernel, and typically loops: do the work,
//! then [`WaitQueue::wait_until`](super::WaitQueue::wait_until) there is more.

pub use super::hooks::KthreadError;

/// Starts kernel thread `name` running `entry` (which never returns); returns its id.
pub fn spawn(name: &str, entry: extern "C" fn() -> !) -> Result<u64, KthreadError> {
    let hooks = super::hooks::get().ok_or(KthreadError::NoScheduler)?;
    (hooks.spawn_kthread)(name, entry)
}
