//! The OOM killer: when memory and swap are both exhausted, one process dies so the
//! others (and the kernel) can go on.
//!
//! The fault path calls [`out_of_memory`] when a user page is needed, direct reclaim
//! freed nothing (every resident page is pinned by a full swap area), and retrying
//! is pointless. It picks the process with the highest *badness*, Linux's
//! `oom_badness`: the memory it holds, resident pages plus pages in swap, plus its
//! `oom_score_adj` (-1000..=1000, set by the `oom_score_adj` syscall, inherited
//! across fork) in thousandths of all memory (RAM frames + swap slots):
//! ```text
//! badness = rss + swap + oom_score_adj * (total frames + total slots) / 1000, at least 1
//! oom_score_adj = -1000: never chosen (if only such processes are left, the
//!                        faulting allocation fails instead: NoVictim)
//! ```
//! It prints why, and kills it:
//! ```text
//! oom: killed pid 7 (oomparty): rss 13311 pages, swap 8190 pages, adj 0, badness 21501; 114 frames and 0 swap slots free
//! ```
//! A memory group at its `memory.max` (`memcg.rs`) calls [`kill_in`] with its own
//! members only: the group's OOM kill, which leaves every other process alone.
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

use core::sync::atomic::{AtomicU64, Ordering};

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

/// Returns a process's memory: its pages in memory and in swap.
fn footprint(space: &super::rmap::SpaceRef) -> (u64, u64) {
    let space = space.lock();
    (space.stats.rss_pages, space.stats.swap_pages)
}

/// Returns the badness of a process holding `nr_pages` with `oom_score_adj` `adj`
/// (see the module docs), or `None` if it must never be chosen (-1000).
pub fn badness(nr_pages: u64, adj: i16) -> Option<u64> {
    if adj <= -1000 {
        return None;
    }
    let nr_total = frame::buddyinfo().nr_managed_frames + swap::slot_counts().1;
    let adjusted = nr_pages as i64 + i64::from(adj) * nr_total as i64 / 1000;
    Some(adjusted.max(1) as u64)
}

/// Returns Linux's `/proc/PID/oom_score` of a process holding `nr_pages` with
/// `oom_score_adj` `adj`: its badness in thousandths of all memory, plus 1000, on
/// a 0..=2000 scale (Linux's `proc_oom_score`); 0 for -1000 (never chosen). The
/// OOM killer chooses the process with the highest score (ties: the highest pid).
pub fn oom_score(nr_pages: u64, adj: i16) -> u64 {
    let Some(points) = badness(nr_pages, adj) else { return 0 };
    let nr_total = (frame::buddyinfo().nr_managed_frames + swap::slot_counts().1).max(1);
    (1000 + points * 1000 / nr_total).min(2000)
}

/// Chooses and kills the process with the highest badness (see the module docs).
pub fn out_of_memory() -> OomOutcome {
    kill_in("oom", |_| true)
}

/// Chooses and kills the baddest process among those `is_candidate` accepts;
/// `scope` starts the message ("oom", or a group's). Returns what it did.
pub fn kill_in(scope: &str, is_candidate: impl Fn(&process_hooks::UserProcess) -> bool) -> OomOutcome {
    let tasks: alloc::vec::Vec<_> = process_hooks::user_processes().into_iter().filter(|t| is_candidate(t)).collect();
    if let Some(dying) = tasks.iter().find(|t| t.is_killed) {
        // A caller killed earlier (while it reclaimed or yielded) must exit, not
        // wait for itself to die.
        if dying.pid == process_hooks::current_pid() {
            return OomOutcome::KilledCurrent;
        }
        return OomOutcome::AlreadyDying(dying.pid);
    }
    let Some((victim, (rss, swapped), points)) = tasks
        .iter()
        .filter_map(|t| {
            let (rss, swapped) = footprint(&t.space);
            Some((t, (rss, swapped), badness(rss + swapped, t.oom_score_adj)?))
        })
        .max_by_key(|(t, _, points)| (*points, t.pid))
    else {
        return OomOutcome::NoVictim;
    };
    let (pid, name, adj) = (victim.pid, victim.name.clone(), victim.oom_score_adj);
    drop(tasks); // the victim's space must not be kept alive by us
    crate::println!(
        "{scope}: killed pid {pid} ({name}): rss {rss} pages, swap {swapped} pages, adj {adj}, badness {points}; {} frames and {} swap slots free",
        frame::nr_free_frames(),
        swap::slot_counts().0
    );
    vmstat::count(SwapEvent::OomKill);
    LAST_VICTIM.store(pid, Ordering::Relaxed);
    process_hooks::kill(pid, format_args!("out of memory: the OOM killer chose it"));
    if pid == process_hooks::current_pid() { OomOutcome::KilledCurrent } else { OomOutcome::Killed(pid) }
}

/// The pid of the last process the OOM killer chose (0: none yet).
static LAST_VICTIM: AtomicU64 = AtomicU64::new(0);

/// Returns the pid of the last process the OOM killer chose (0: none yet), for tests.
pub fn last_victim() -> Pid {
    LAST_VICTIM.load(Ordering::Relaxed)
}
