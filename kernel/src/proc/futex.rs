//! `futex(2)`: `FUTEX_WAIT` and `FUTEX_WAKE`, what musl's mutexes, condition
//! variables and `pthread_join` sleep on.
//!
//! A futex is a 32-bit word in user memory. `FUTEX_WAIT(addr, val)` sleeps only if
//! the word still holds `val`; `FUTEX_WAKE(addr, n)` wakes up to `n` sleepers on the
//! same word. A sleeper is found by its *key*: for a private futex (musl's
//! default, `FUTEX_PRIVATE_FLAG`) or any word in a private mapping, the address
//! space and the address; for a word in a `MAP_SHARED` mapping, the physical
//! address of the word, so that two processes mapping the page meet.
//!
//! No lost wake-up, with no futex lock: the waiter records its key in its task
//! entry and marks itself sleeping (under `TASKS`) *before* it reads the word
//! again; the waker changed the word *before* its `FUTEX_WAKE` looks through the
//! task table (under `TASKS`). Either the waker sees the waiter registered and
//! wakes it, or the waiter's second read sees the new value and does not sleep.
//!
//! ```text
//!   waiter (FUTEX_WAIT addr, 0)                waker
//!   read *addr == 0, key = (space, addr)
//!   TASKS: state Sleeping, futex_key = key     *addr = 1 (user space)
//!   read *addr again: still 0?  -- no --> EAGAIN
//!     | yes                                    FUTEX_WAKE addr: TASKS: each task
//!   switch away ......... woken <------------  with futex_key == key: Runnable,
//!   futex_key None? -> 0 (woken), else ETIMEDOUT / EINTR        futex_key = None
//! ```
//! A sleeper shares the task table's state and the timed-sleep machinery with the
//! wait queues (`sync::wait_queue`); its `wait_key` is [`FUTEX_WAIT_KEY`], which no
//! wait queue hands out, so a kill wakes it (EINTR) and no queue's wake-up does.
//!
//! Limit: a shared futex's key is the frame's address, so a shared page swapped
//! out and back in while someone waits on it gets a new key (Linux keys it by the
//! file or shmem object and offset). musl uses private futexes except for
//! process-shared mutexes.

use core::sync::atomic::{AtomicU64, Ordering};

use abi::Errno;

use super::task::{self, TASKS, TaskState};
use super::uaccess::copy_from_user;

/// `futex` operations (Linux's `linux/futex.h`): the low bits of `op`.
const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
/// The word is private to the process (no other process maps it).
const FUTEX_PRIVATE_FLAG: u64 = 128;
/// `FUTEX_WAIT`'s timeout is relative, on CLOCK_MONOTONIC (this flag only changes
/// which clock an absolute timeout uses, which FUTEX_WAIT does not have).
const FUTEX_CLOCK_REALTIME: u64 = 256;

/// The `wait_key` of a task sleeping on a futex: never a wait queue's key (those
/// count up from 1).
pub const FUTEX_WAIT_KEY: u64 = u64::MAX;

/// Which futex a task sleeps on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FutexKey {
    /// A word of one address space.
    Private {
        /// The space's address (it cannot be freed while a sleeper's task holds it).
        space: usize,
        /// The word's user address.
        addr: u64,
    },
    /// A word of a shared mapping.
    Shared {
        /// Its physical address.
        phys: u64,
    },
}

/// Orders sleepers: the longest-waiting is woken first.
static NEXT_TICKET: AtomicU64 = AtomicU64::new(1);

/// `futex(uaddr, op, val, timeout, uaddr2, val3)`: `FUTEX_WAIT` and `FUTEX_WAKE`,
/// private or shared; any other operation is ENOSYS (as Linux for an unknown one).
pub fn sys_futex(uaddr: u64, op: u64, val: u64, timeout: u64) -> Result<u64, Errno> {
    let is_private = op & FUTEX_PRIVATE_FLAG != 0;
    if !uaddr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    match op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME) {
        FUTEX_WAIT => wait(uaddr, val as u32, timeout, is_private),
        FUTEX_WAKE => wake(uaddr, val.min(i32::MAX as u64) as usize, is_private),
        _ => Err(Errno::ENOSYS),
    }
}

/// Reads the futex word at `uaddr`.
fn read_word(uaddr: u64) -> Result<u32, Errno> {
    let mut bytes = [0u8; 4];
    copy_from_user(&mut bytes, uaddr)?;
    Ok(u32::from_ne_bytes(bytes))
}

/// Returns the key of the word at `uaddr` (resident: the caller has just read it).
fn key_of(uaddr: u64, is_private: bool) -> Result<FutexKey, Errno> {
    let space = task::current_space().ok_or(Errno::EPERM)?;
    let private = FutexKey::Private { space: alloc::sync::Arc::as_ptr(&space) as usize, addr: uaddr };
    if is_private {
        return Ok(private);
    }
    let space = space.lock();
    let addr = crate::mm::VirtAddr::new(uaddr);
    let is_shared = space.vmas().find(addr).is_some_and(|v| v.flags.is_shared());
    if !is_shared {
        return Ok(private); // Linux keys a word of a private mapping by (mm, address) too
    }
    match space.pte(addr) {
        Some(pte) if pte.is_present() => Ok(FutexKey::Shared { phys: pte.frame().start_address().as_u64() + uaddr % crate::mm::PAGE_SIZE }),
        _ => Err(Errno::EAGAIN), // swapped out again since the read: the caller retries
    }
}

/// Reads a `struct timespec` timeout and returns the tick at which a wait ends:
/// EINVAL for a negative time or nanoseconds out of 0..1e9 (futex and nanosleep).
pub(super) fn deadline_of(timeout: u64) -> Result<u64, Errno> {
    let mut bytes = [0u8; 16];
    copy_from_user(&mut bytes, timeout)?;
    let secs = i64::from_ne_bytes(bytes[..8].try_into().expect("8 bytes"));
    let nsecs = i64::from_ne_bytes(bytes[8..].try_into().expect("8 bytes"));
    if secs < 0 || !(0..1_000_000_000).contains(&nsecs) {
        return Err(Errno::EINVAL);
    }
    let hz = crate::arch::timer::TICK_HZ;
    let nr_ticks = (secs as u64).saturating_mul(hz).saturating_add((nsecs as u64 * hz).div_ceil(1_000_000_000));
    Ok(crate::arch::timer::ticks().saturating_add(nr_ticks))
}

/// `FUTEX_WAIT`: sleeps while the word at `uaddr` holds `val`, until a
/// `FUTEX_WAKE` on it (0), the timeout (ETIMEDOUT), or a kill (EINTR); EAGAIN at
/// once if the word holds another value. May return 0 spuriously, as Linux's.
fn wait(uaddr: u64, val: u32, timeout: u64, is_private: bool) -> Result<u64, Errno> {
    let deadline = if timeout != 0 { Some(deadline_of(timeout)?) } else { None };
    if read_word(uaddr)? != val {
        return Err(Errno::EAGAIN);
    }
    let key = key_of(uaddr, is_private)?;
    let me = task::current_pid();
    let set_waiting = |key: Option<FutexKey>| {
        if let Some(t) = TASKS.lock().get_mut(&me) {
            t.state = if key.is_some() { TaskState::Sleeping } else { TaskState::Runnable };
            t.wait_key = if key.is_some() { FUTEX_WAIT_KEY } else { 0 };
            t.wait_ticket = NEXT_TICKET.fetch_add(1, Ordering::Relaxed);
            t.futex_key = key;
        }
    };
    set_waiting(Some(key));
    // The second read, now that a waker would find us (see the module doc).
    if read_word(uaddr) != Ok(val) || task::current_is_killed() {
        set_waiting(None);
        return if task::current_is_killed() { Err(Errno::EINTR) } else { Err(Errno::EAGAIN) };
    }
    match (deadline, crate::sync::hooks::get()) {
        (Some(deadline), Some(hooks)) => (hooks.sleep_until)(deadline),
        _ => super::sched::block_current(),
    }
    let is_woken = {
        let mut tasks = TASKS.lock();
        let t = tasks.get_mut(&me).expect("futex: no current task");
        let is_woken = t.futex_key.is_none();
        t.futex_key = None;
        t.state = TaskState::Runnable;
        t.wait_key = 0;
        is_woken
    };
    if is_woken {
        Ok(0)
    } else if task::current_is_killed() {
        Err(Errno::EINTR)
    } else if deadline.is_some_and(|d| crate::arch::timer::ticks() >= d) {
        Err(Errno::ETIMEDOUT)
    } else {
        Ok(0) // spurious: the caller checks its word again
    }
}

/// `FUTEX_WAKE`: wakes up to `max` sleepers on the word at `uaddr`, the longest
/// waiting first; returns how many it woke.
pub fn wake(uaddr: u64, max: usize, is_private: bool) -> Result<u64, Errno> {
    let key = if is_private {
        key_of(uaddr, true)?
    } else {
        read_word(uaddr)?; // fault the page in to find its frame
        key_of(uaddr, false)?
    };
    let mut nr_woken = 0;
    while nr_woken < max {
        let woken = {
            let mut tasks = TASKS.lock();
            let Some(t) = tasks
                .values_mut()
                .filter(|t| t.futex_key == Some(key) && t.state == TaskState::Sleeping)
                .min_by_key(|t| t.wait_ticket)
            else {
                break;
            };
            t.state = TaskState::Runnable;
            t.wait_key = 0;
            t.futex_key = None;
            t.pid
        };
        super::sched::make_runnable(woken);
        nr_woken += 1;
    }
    Ok(nr_woken as u64)
}
