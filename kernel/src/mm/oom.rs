//! The OOM killer: when memory and swap are both exhausted, one process dies so the
//! others (and the kernel) can go on.
//!
//! The fault path calls [`out_of_memory`] when a user page is needed, direct reclaim
//! freed nothing (every resident page is pinned by a full swap area), and retrying
//! is pointless. It picks the process holding the most memory, resident pages plus
//! pages in swap (Linux's `oom_badness` without the adjustments), prints why, and
//! kills it:
//! ```text
//! oom: killed pid 7 (oomparty): rss 13311 pages, swap 8190 pages; 114 frames and 0 swap slots free
//! ```
//! If the victim is the faulting process, its fault fails with `Killed` and it exits
//! on the way back to user mode. Otherwise the victim is marked killed (and woken if
//! it waits) and exits the next time it runs towards user mode: at its next syscall
//! or trap return, or in the fault it is waiting in; the faulting process yields
//! until then and retries. While a victim is dying nobody else is chosen, so one
//! shortage kills one process.
//!
//! The killer reaches processes only through [`process_hooks`] (list them, kill
//! one, which one is running), which `proc` registers at boot: mm never names `proc`.
//!
//! Lock state: called with no lock held; reads each space's counters under its lock.
#![deny(unsafe_code)]

use super::process_hooks::{self, Pid};
use super::vmstat::{self, SwapEvent};
use super::{frame, swap};

/// What [`out_of_memory`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OomOutcome {
    /// The running process was chosen: its fault must fail, and it exits.
    KilledCurrent,
    /// Another process was chosen; it exits when it next runs.
    Killed(Pid),
    /// A victim chosen earlier has not exited yet: wait for it.
    AlreadyDying(Pid),
    /// No user process to kill.
    NoVictim,
}

/// Returns the badness of a process: its pages in memory and in swap.
fn badness(space: &super::rmap::SpaceRef) -> (u64, u64) {
    let space = space.lock();
    (space.stats.rss_pages, space.stats.swap_pages)
}

/// Chooses and kills the process with the most memory (see the module docs).
pub fn out_of_memory() -> OomOutcome {
    let tasks = process_hooks::user_processes();
    if let Some(dying) = tasks.iter().find(|t| t.is_killed) {
        // A caller killed earlier (while it reclaimed or yielded) must exit, not
        // wait for itself to die.
        if dying.pid == process_hooks::current_pid() {
            return OomOutcome::KilledCurrent;
        }
        return OomOutcome::AlreadyDying(dying.pid);
    }
    let Some((victim, (rss, swapped))) =
        tasks.iter().map(|t| (t, badness(&t.space))).max_by_key(|(t, (rss, swapped))| (rss + swapped, t.pid))
    else {
        return OomOutcome::NoVictim;
    };
    let (pid, name) = (victim.pid, victim.name.clone());
    drop(tasks); // the victim's space must not be kept alive by us
    crate::println!(
        "oom: killed pid {pid} ({name}): rss {rss} pages, swap {swapped} pages; {} frames and {} swap slots free",
        frame::nr_free_frames(),
        swap::slot_counts().0
    );
    vmstat::count(SwapEvent::OomKill);
    process_hooks::kill(pid, format_args!("out of memory: the OOM killer chose it"));
    if pid == process_hooks::current_pid() { OomOutcome::KilledCurrent } else { OomOutcome::Killed(pid) }
}
