//! What the memory manager needs from the processes above it, registered by `proc`.
//!
//! The layering is proc → mm: processes own address spaces, never the other way
//! round. Yet two memory policies must reach processes: the OOM killer lists them,
//! weighs their memory and kills one ([`super::oom`]), and the fault retry loop
//! ([`super::fault::retry`]) gives up when its process was killed. So `proc` hands
//! this module a table of functions once at boot ([`register`]), as it does for
//! `sync::hooks`, and mm calls through it; nothing in `mm` names `proc`.
//!
//! Before registration (early boot: no processes yet) there is no user process to
//! list or kill, and the running task is the kernel's (pid 0), never killed.
//! (Letting other tasks run is reached through `sync::hooks::yield_now`.)

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use spin::Once;

use super::rmap::SpaceRef;

/// A process id, as `proc` numbers them (0 is the kernel's boot task).
pub type Pid = u64;

/// A user process as the memory manager sees it.
pub struct UserProcess {
    /// Its pid.
    pub pid: Pid,
    /// Its name.
    pub name: String,
    /// Its memory.
    pub space: SpaceRef,
    /// Already killed, not yet exited.
    pub is_killed: bool,
    /// Its `oom_score_adj` (-1000..=1000; -1000: the OOM killer never chooses it).
    pub oom_score_adj: i16,
}

/// What `proc` provides.
#[derive(Clone, Copy)]
pub struct ProcessHooks {
    /// Returns every live user process (zombies hold no memory and are left out).
    pub user_processes: fn() -> Vec<UserProcess>,
    /// Marks process `pid` killed, printing `reason`; it exits the next time it
    /// would return to user mode (woken if it waits). Returns false if there is no
    /// such live process or it is killed already.
    pub kill: fn(pid: Pid, reason: fmt::Arguments) -> bool,
    /// Returns the pid of the running task.
    pub current_pid: fn() -> Pid,
    /// Returns true if the running task has been killed and must exit.
    pub current_is_killed: fn() -> bool,
}

static HOOKS: Once<ProcessHooks> = Once::new();

/// Installs the process hooks; the first registration wins.
pub fn register(hooks: ProcessHooks) {
    HOOKS.call_once(|| hooks);
}

/// Returns every live user process (none before registration).
pub fn user_processes() -> Vec<UserProcess> {
    HOOKS.get().map_or_else(Vec::new, |h| (h.user_processes)())
}

/// Kills process `pid` with `reason` (see [`ProcessHooks::kill`]); false before registration.
pub fn kill(pid: Pid, reason: fmt::Arguments) -> bool {
    HOOKS.get().is_some_and(|h| (h.kill)(pid, reason))
}

/// Returns the pid of the running task (0, the kernel's, before registration).
pub fn current_pid() -> Pid {
    HOOKS.get().map_or(0, |h| (h.current_pid)())
}

/// Returns true if the running task has been killed and must exit.
pub fn current_is_killed() -> bool {
    HOOKS.get().is_some_and(|h| (h.current_is_killed)())
}
