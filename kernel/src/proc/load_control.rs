//! Load control: when the working sets of the running processes no longer fit in
//! memory and the machine pages all the time (thrashing), take processes out of
//! the *balance set* until the rest fit; bring them back when there is room.
//!
//! This is the medium-term scheduler of a two-level scheduler (Denning's balance
//! set; VMS's swapper; Linux has none and leaves it to the OOM killer). A kernel
//! thread, `loadctl`, looks every [`PERIOD_MS`] of wall time:
//!
//! ```text
//!  rate     = pages read from swap per second over the period (machine-wide)
//!  needed(P)= rss of P + its swap-ins of about the last RECENT_PERIODS periods
//!             (at most its pages in swap): what it holds plus what it had to get back
//!  est(P)   = max(needed(P), largest WS(τ) of its history, its est when it last
//!             went out or came back, its committed anonymous pages: private
//!             writable anonymous mappings, the stack aside)      (pages P needs)
//!  room     = free frames + rss of every process (an out process's pages are
//!             on their way out)
//!  over     = sum of est over the active > room
//!
//!  1. the deactivated, the longest waiting first, while the first fits:
//!     no process active, or active est + est(P) + high watermark <= room: back in (room)
//!     out for MAX_WAIT_MS - 2 periods, none back by the bound yet this look:
//!                                                                       back in (bounded wait)
//!  2. thrashing: no decision for two periods, and over for two looks (the
//!     estimates alone: with the committed pages in them, before the pages are
//!     resident), or rate >= HIGH_RATE two periods running and over or two or
//!     more active processes got pages back from swap in the last period (the
//!     estimates fall short while processes grow); or over, and one came back by
//!     its bounded wait:
//!     deactivate until the rest fit (sum of est <= room; at least one if thrashing
//!     though they fit), never the last active
//!     one, none back for less than MIN_RESIDENCY_MS: thrashing, the largest est
//!     first; by the bound, the one in longest first (the balance set turns over
//!     instead of growing)
//!  3. the active lack frames (sum of their est + 2 high watermarks > their rss +
//!     free frames): swap out that many pages of the deactivated, the last out
//!     first, each one's coldest pages first; at most EVICT_AT_ONCE, for at most a
//!     period
//! ```
//! Counting committed memory makes the controller decide as soon as the
//! processes have mapped more than fits, before they have written it: a process
//! put out then has few pages to swap out and back in (deciding once memory was
//! full and the swap-ins had started, sessions 6-8, cost as much as the thrashing
//! it stopped). It overestimates a process that maps much more than it touches;
//! `loadctl_commit=off loadctl_early=off` is the controller of sessions 7-8.
//!
//! The rule is **largest working set first**: it frees the most memory per
//! process stopped (the kernel has no priorities to consult), and all the processes
//! that must go go in one decision; among those within an eighth of the largest
//! est, the one with the fewest resident pages goes first (the cheapest to swap out
//! and back in). Hysteresis: two periods of high rate before
//! a decision and between decisions; a reactivated process is not deactivated again
//! for [`MIN_RESIDENCY_MS`], and its est keeps at least its value when it came back
//! (it has little resident at first: without that floor the next in line would be
//! let in beside it at once). The deactivated come back first come, first served.
//! **Bounded wait**: no process stays out longer than [`MAX_WAIT_MS`], as the
//! controller counts; it is then reactivated whatever the load, and someone
//! who has been in longest goes out if they no longer fit. As a clock on the
//! wall sees it, out at most [`OUT_BOUND_MS`] (`MAX_WAIT_MS` + 3 periods: the look
//! that brings it back may be late by one period, and the eviction that precedes
//! it stops within one more); and should the controller be later still, a parked
//! process comes back by itself `MAX_WAIT_MS` after it went out
//! ([`park_if_deactivated`]). What the
//! controller does not bound is CPU time: a process in the balance set may still
//! wait for the disk or the CPU (the `wset` test prints its longest stall).
//!
//! A deactivated process is not scheduled: on its next way back to user mode
//! (a syscall return or the timer tick that interrupts it) it parks itself on a
//! wait queue ([`park_if_deactivated`]), holding no lock and no I/O, until it is
//! reactivated or killed. Its pages are swapped out by the controller (step 3) as
//! the active ones need frames, so that reclaim does not take theirs (the swapper
//! of old); what is left are the first candidates of the replacement policy too,
//! since a parked process references nothing and its Accessed bits stay clear.
//! A reactivated process faults its pages back in; swap-in reads ahead the slots
//! after a faulting one, and its pages went out in address order into adjacent
//! slots, so they come back in clusters.
//!
//! Off by default; `loadctl=on` on the command line, [`set_enabled`] or the
//! `loadctl` syscall switch it at run time (switching off reactivates everyone).
//! While off, the thread sleeps without a timeout: it costs nothing.
//! Every decision is printed with its numbers:
//! ```text
//! loadctl: deactivate pid 5 (wsprobe): est 6000 pages (WS 812, rss 3311); active est 21500 > room 13400; swap-in 4100/s
//! loadctl: reactivate pid 5 (wsprobe) after 1830 ms: room (active est 0 + est 6000 + 333 <= room 13400)
//! ```
//!
//! Locks: takes `TASKS`, then one address space at a time, never together with
//! the run queue; the thread holds none across its sleep.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::task::{self, Pid, TASKS, TaskState};
use crate::arch::timer::{self, TICK_HZ};
use crate::mm::vmstat::{self, SwapEvent};
use crate::mm::addr_space::{VmFlags, VmProt};
use crate::mm::{frame, reclaim, wss};
use crate::sync::WaitQueue;

/// How often the controller looks (wall time).
pub const PERIOD_MS: u64 = 100;
/// Swap-in rate (pages per second) that counts as thrashing.
/// Low, because swap on this machine is slow (1 000-2 800 pages a second at
/// most under TCG on the loaded host): two processes that do not fit together
/// took each other's pages at under 1 000 a second, and 1 000 did not see it.
pub const HIGH_RATE: u64 = 250;
/// The least time a (re)activated process stays in the balance set.
pub const MIN_RESIDENCY_MS: u64 = 1000;
/// The longest a process stays deactivated. Long enough for the processes ahead
/// of it to finish: with three out and each needing seconds alone on a loaded
/// host, 5 s brought processes back in the middle of another's run, two at a
/// time, and the mix thrashed again (`docs/benchmarks.md`, "Load control").
pub const MAX_WAIT_MS: u64 = 20_000;
/// The most pages of parked processes the controller swaps out at one look (step
/// 3 of the module docs); reclaim takes the rest first as it needs frames
/// (`reclaim::set_evict_first`), so the controller is back to its looks quickly.
pub const EVICT_AT_ONCE: usize = 2048;
/// Pages evicted between two looks at the clock while a process goes out.
const EVICT_CHUNK: usize = 64;
/// What the controller promises: no process is out longer than this. It is
/// reactivated at the first look after [`MAX_WAIT_MS`]; looks are [`PERIOD_MS`]
/// apart, and one may start late by its predecessor's eviction, which stops
/// starting chunks after [`PERIOD_MS`] (one chunk of [`EVICT_CHUNK`] pages may
/// still be under way: a third period for it).
pub const OUT_BOUND_MS: u64 = MAX_WAIT_MS + 3 * PERIOD_MS;

static IS_ENABLED: AtomicBool = AtomicBool::new(false);
/// Decide from the estimates alone: over for two periods (and no decision for
/// two) deactivates as thrashing does, without waiting for the swap-in rate to
/// reach [`HIGH_RATE`]. On by default since session 9 (with [`IS_COMMIT`]: the
/// estimates then say "over" before the pages are resident); `loadctl_early=off`
/// waits for the swap-ins as sessions 6-8 did.
static IS_EARLY: AtomicBool = AtomicBool::new(true);
/// `loadctl_cheap=on`: an experiment, off by default. When one process going out
/// makes the rest fit, the one with the fewest resident pages of those goes (the
/// cheapest to swap out and back in), not the largest est.
static IS_CHEAP: AtomicBool = AtomicBool::new(false);
/// A process's est is at least its committed anonymous memory (the pages of its
/// private writable anonymous mappings, the stack aside: what it may write
/// without asking the kernel again), so that the estimates say a mix does not fit
/// as soon as its processes have mapped their memory, before they have touched
/// it; with [`IS_EARLY`] the controller then decides before anyone's pages are
/// resident, when putting a process out costs little. On by default since
/// session 9; `loadctl_commit=off` leaves it out.
static IS_COMMIT: AtomicBool = AtomicBool::new(true);
static NR_DEACTIVATIONS: AtomicU64 = AtomicU64::new(0);
static NR_REACTIVATIONS: AtomicU64 = AtomicU64::new(0);
/// Processes the controller holds out now (the size of its `out`, kept by it): while
/// 0, the way back to user mode skips the check.
static NR_OUT_NOW: AtomicU64 = AtomicU64::new(0);
/// Where deactivated processes park.
static PARKED: WaitQueue = WaitQueue::new();
/// Where the controller sleeps between looks (woken early by [`set_enabled`]).
static CONTROLLER: WaitQueue = WaitQueue::new();

/// Turns load control on or off (off: every deactivated process comes back at
/// the controller's next look).
pub fn set_enabled(is_on: bool) {
    IS_ENABLED.store(is_on, Ordering::Relaxed);
    CONTROLLER.wake_all();
}

/// Returns true if load control is on.
pub fn is_enabled() -> bool {
    IS_ENABLED.load(Ordering::Relaxed)
}

/// Returns (deactivations, reactivations) since boot.
pub fn nr_decisions() -> (u64, u64) {
    (NR_DEACTIVATIONS.load(Ordering::Relaxed), NR_REACTIVATIONS.load(Ordering::Relaxed))
}

/// Starts the controller thread; `loadctl=on` on the command line turns it on.
pub fn start() {
    if crate::cmdline::value("loadctl") == Some("on") {
        IS_ENABLED.store(true, Ordering::Relaxed);
    }
    for (key, flag) in [("loadctl_early", &IS_EARLY), ("loadctl_cheap", &IS_CHEAP), ("loadctl_commit", &IS_COMMIT)] {
        match crate::cmdline::value(key) {
            Some("on") => flag.store(true, Ordering::Relaxed),
            Some("off") => flag.store(false, Ordering::Relaxed),
            _ => {}
        }
    }
    if let Err(e) = task::spawn_daemon("loadctl", controller_main) {
        log::warn!("loadctl: not started ({e:?}): no load control");
    }
}

/// Parks the running process while it is deactivated (and not killed). Called on
/// every way back to user mode, with no lock held.
pub fn park_if_deactivated() {
    if NR_OUT_NOW.load(Ordering::Relaxed) == 0 {
        return;
    }
    let me = task::current_pid();
    let must_wait = || TASKS.lock().get(&me).is_some_and(|t| t.is_deactivated && !t.is_killed);
    if must_wait() {
        // The bounded wait does not rest on the controller's punctuality:
        // MAX_WAIT_MS after it went out, the process comes back by itself (a controller late by a
        // slow eviction kept one out 7.4 s in a benchmark run before this).
        let deadline = out_deadline(me).unwrap_or_else(|| timer::ticks() + MAX_WAIT_MS * TICK_HZ / 1000);
        if !PARKED.wait_until_deadline(|| !must_wait(), deadline) && reactivate_self(me) {
            crate::println!("loadctl: pid {me} back in by itself, {MAX_WAIT_MS} ms after it went out (bounded wait)");
        }
    }
}

/// Deadlines of the processes out now: (pid, the tick MAX_WAIT_MS after it went
/// out); pid 0: a free slot. Written by the controller as it deactivates, read by
/// the parked process, so that its own bounded wait counts from when it went out
/// (it parks only on its next way to user mode). Without a free slot (more out at
/// once than slots), it counts from when it parks.
static OUT_DEADLINES: [(AtomicU64, AtomicU64); 16] = [const { (AtomicU64::new(0), AtomicU64::new(0)) }; 16];

/// Notes that `pid` went out now (`None`: it came back, the slot is free).
fn note_out(pid: Pid, deadline_tick: Option<u64>) {
    let Some(deadline) = deadline_tick else {
        for (slot_pid, _) in &OUT_DEADLINES {
            let _ = slot_pid.compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
        return;
    };
    for (slot_pid, slot_deadline) in &OUT_DEADLINES {
        if slot_pid.load(Ordering::Acquire) == pid || slot_pid.compare_exchange(0, pid, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            slot_deadline.store(deadline, Ordering::Release);
            return;
        }
    }
}

/// Returns the tick at which `pid`'s bounded wait ends, if the controller noted it.
fn out_deadline(pid: Pid) -> Option<u64> {
    OUT_DEADLINES.iter().find(|(p, _)| p.load(Ordering::Acquire) == pid).map(|(_, d)| d.load(Ordering::Acquire))
}

/// Clears the running process's deactivated flag; true if it was set.
fn reactivate_self(me: Pid) -> bool {
    let mut tasks = TASKS.lock();
    let Some(task) = tasks.get_mut(&me).filter(|t| t.is_deactivated) else { return false };
    task.is_deactivated = false;
    drop(tasks);
    note_out(me, None);
    NR_REACTIVATIONS.fetch_add(1, Ordering::Relaxed);
    true
}

/// A process as the controller sees it.
struct Candidate {
    pid: Pid,
    name: String,
    rss: u64,
    ws: u64,
    /// The largest WS(τ) of its recent history.
    ws_peak: u64,
    /// Its pages in swap now.
    nr_swapped: u64,
    /// Pages of its private writable anonymous mappings, the stack aside (0 with
    /// `loadctl_commit=off`).
    nr_committed: u64,
    /// Pages it has had back from swap since it started (read, or found in the
    /// swap cache).
    nr_swap_ins: u64,
    is_deactivated: bool,
}

/// Returns the live, unkilled user processes with their figures.
fn candidates() -> Vec<Candidate> {
    let tasks: Vec<_> = TASKS
        .lock()
        .values()
        .filter(|t| !t.is_killed && !matches!(t.state, TaskState::Zombie(_)))
        .filter_map(|t| Some((t.pid, t.name.clone(), t.is_deactivated, t.space.clone()?)))
        .collect();
    tasks
        .into_iter()
        .map(|(pid, name, is_deactivated, space)| {
            let space = space.lock();
            let ws = wss::snapshot(&space);
            let ws_peak = ws.history.iter().take(ws.nr_samples.min(wss::WS_HISTORY as u64) as usize).copied().max().unwrap_or(0);
            let nr_committed = if IS_COMMIT.load(Ordering::Relaxed) {
                let stack = VmFlags::SHARED.union(VmFlags::STACK).union(VmFlags::GROWS_DOWN);
                space
                    .vmas()
                    .iter()
                    .filter(|v| v.is_anonymous() && v.prot.contains(VmProt::WRITE) && v.flags.bits() & stack.bits() == 0)
                    .map(|v| v.nr_pages())
                    .sum()
            } else {
                0
            };
            Candidate {
                pid,
                name,
                rss: ws.rss_pages,
                ws: ws.ws_pages,
                ws_peak: u64::from(ws_peak),
                nr_swapped: space.stats.swap_pages,
                nr_committed,
                nr_swap_ins: space.stats.swap_in_pages,
                is_deactivated,
            }
        })
        .collect()
}

/// Sets or clears `pid`'s deactivated flag; false if it is gone or killed.
fn set_deactivated(pid: Pid, is_deactivated: bool) -> bool {
    let mut tasks = TASKS.lock();
    let Some(task) = tasks.get_mut(&pid).filter(|t| !t.is_killed) else { return false };
    task.is_deactivated = is_deactivated;
    true
}

/// Periods over which a process's recent swap-ins are counted (a decaying sum:
/// about the swap-ins of the last `RECENT_PERIODS` periods).
const RECENT_PERIODS: u64 = 50;

/// What the controller remembers between looks.
#[derive(Default)]
struct Controller {
    /// Swap-ins counted at the last look.
    swap_ins_before: u64,
    /// Consecutive periods with a high rate.
    nr_high_periods: u32,
    /// Periods since the last deactivation.
    nr_quiet_periods: u32,
    /// Consecutive looks with the active processes' est over the room.
    nr_over_periods: u32,
    /// Deactivated processes: pid -> (uptime ms when it went out, its est then).
    out: BTreeMap<Pid, (u64, u64)>,
    /// When each process last came back in, uptime ms, and its est then (a floor
    /// for its est from then on: a process just back has little resident yet). A
    /// process never deactivated has no entry: no residency protects it.
    activated_at: BTreeMap<Pid, (u64, u64)>,
    /// Each process's swap-ins: (its count at the last look, the recent ones,
    /// those of the last period).
    swap_ins: BTreeMap<Pid, (u64, u64, u64)>,
}

extern "C" fn controller_main() -> ! {
    let mut state = Controller::default();
    loop {
        if !is_enabled() {
            // Off: everyone back in, then sleep (no periodic wake-ups) until switched on.
            let now = timer::uptime_ms();
            for pid in core::mem::take(&mut state.out).into_keys() {
                state.reactivate(pid, now, 0, "load control switched off");
            }
            NR_OUT_NOW.store(0, Ordering::Relaxed);
            reclaim::set_evict_first(&[]);
            CONTROLLER.wait_until(is_enabled);
            state = Controller { swap_ins_before: vmstat::nr_events(SwapEvent::SwapIn), ..Controller::default() };
        }
        let deadline = timer::ticks() + PERIOD_MS * TICK_HZ / 1000;
        CONTROLLER.wait_until_deadline(|| !is_enabled(), deadline);
        if is_enabled() {
            state.look();
        }
    }
}

/// The balance set's arithmetic at one look.
struct Balance {
    /// est of every process, by pid.
    est: BTreeMap<Pid, u64>,
    /// Frames user processes can have: free frames plus every candidate's rss
    /// (a deactivated process's pages are on their way out).
    room: u64,
}

impl Controller {
    /// One look: measure, reactivate, deactivate, evict (see the module docs).
    fn look(&mut self) {
        let now = timer::uptime_ms();
        let swap_ins = vmstat::nr_events(SwapEvent::SwapIn);
        let rate = (swap_ins - self.swap_ins_before) * 1000 / PERIOD_MS;
        self.swap_ins_before = swap_ins;
        self.nr_high_periods = if rate >= HIGH_RATE { self.nr_high_periods + 1 } else { 0 };
        self.nr_quiet_periods = self.nr_quiet_periods.saturating_add(1);
        let procs = candidates();
        // Forget what exited or was killed; one that came back by itself (its
        // bounded wait, `park_if_deactivated`) is in from now, for its residency.
        let mut has_come_back_by_bound = false;
        for (pid, &(_, est)) in &self.out {
            if procs.iter().any(|p| p.pid == *pid && !p.is_deactivated) {
                self.activated_at.insert(*pid, (now, est));
                has_come_back_by_bound = true;
            }
        }
        self.out.retain(|pid, _| {
            let is_out = procs.iter().any(|p| p.pid == *pid && p.is_deactivated);
            if !is_out {
                note_out(*pid, None);
            }
            is_out
        });
        self.activated_at.retain(|pid, _| procs.iter().any(|p| p.pid == *pid));
        self.swap_ins.retain(|pid, _| procs.iter().any(|p| p.pid == *pid));
        for p in &procs {
            let (before, recent, last) = self.swap_ins.entry(p.pid).or_insert((p.nr_swap_ins, 0, 0));
            *last = p.nr_swap_ins.saturating_sub(*before);
            *recent = *recent * (RECENT_PERIODS - 1) / RECENT_PERIODS + *last;
            *before = p.nr_swap_ins;
        }
        let balance = self.balance(&procs);
        has_come_back_by_bound |= self.reactivate_fitting(&procs, &balance, rate, now);
        self.deactivate_for_room(&procs, &balance, rate, now, has_come_back_by_bound);
        NR_OUT_NOW.store(self.out.len() as u64, Ordering::Relaxed);
        // Reclaim takes the parked processes' pages first, the last out first.
        let mut out: Vec<(Pid, u64)> = self.out.iter().map(|(&pid, &(since, _))| (pid, since)).collect();
        out.sort_by_key(|&(pid, since)| core::cmp::Reverse((since, pid)));
        let spaces: Vec<_> = {
            let tasks = TASKS.lock();
            out.iter().filter_map(|(pid, _)| tasks.get(pid).and_then(|t| t.space.clone())).collect()
        };
        reclaim::set_evict_first(&spaces);
        drop(spaces);
        self.evict_from_out(&procs, &balance, now);
    }

    /// Returns every process's est and the room (module docs).
    fn balance(&self, procs: &[Candidate]) -> Balance {
        let est = procs
            .iter()
            .map(|p| {
                let recent = self.swap_ins.get(&p.pid).map_or(0, |(_, recent, _)| *recent);
                // What it has resident, plus what it needed back lately (at most
                // all it has in swap), or its largest recent working set, or
                // what it has mapped to write.
                let needed = p.rss + recent.min(p.nr_swapped);
                let est_then = self.out.get(&p.pid).or_else(|| self.activated_at.get(&p.pid)).map_or(0, |(_, est)| *est);
                (p.pid, needed.max(p.ws_peak).max(est_then).max(p.nr_committed))
            })
            .collect();
        Balance { est, room: frame::nr_free_frames() + procs.iter().map(|p| p.rss).sum::<u64>() }
    }

    /// The processes in the balance set now (not deactivated, not held out).
    fn active<'a>(&self, procs: &'a [Candidate]) -> Vec<&'a Candidate> {
        procs.iter().filter(|p| !p.is_deactivated && !self.out.contains_key(&p.pid)).collect()
    }

    /// Brings back deactivated processes, the longest waiting first, while they fit
    /// beside the active ones (or none is active), and any that has waited its
    /// bounded wait; returns true if one came back by its bound.
    fn reactivate_fitting(&mut self, procs: &[Candidate], balance: &Balance, rate: u64, now: u64) -> bool {
        let high = reclaim::watermarks().high;
        let active = self.active(procs);
        let mut is_none_active = active.is_empty();
        let mut active_est: u64 = active.iter().map(|p| balance.est[&p.pid]).sum();
        let mut by_bound = false;
        let mut waiting: Vec<(Pid, u64)> = self.out.iter().map(|(&pid, &(since, _))| (pid, since)).collect();
        waiting.sort_by_key(|&(pid, since)| (since, pid));
        for (pid, since) in waiting {
            let waited = now - since;
            let est = balance.est.get(&pid).copied().unwrap_or(0);
            let why = if is_none_active || active_est + est + high <= balance.room {
                alloc::format!("after {waited} ms: room (active est {active_est} + est {est} + {high} <= room {})", balance.room)
            } else if waited + 2 * PERIOD_MS >= MAX_WAIT_MS && !by_bound {
                by_bound = true; // one a look: the balance set turns over by one
                alloc::format!("after {waited} ms: bounded wait (active est {active_est} + est {est} > room {}, swap-in {rate}/s)", balance.room)
            } else {
                break; // first come, first back: the next in line waits too
            };
            self.out.remove(&pid);
            self.reactivate(pid, now, est, &why);
            is_none_active = false;
            active_est += est;
        }
        by_bound
    }

    fn reactivate(&mut self, pid: Pid, now: u64, est: u64, why: &str) {
        note_out(pid, None);
        if set_deactivated(pid, false) {
            let name = TASKS.lock().get(&pid).map(|t| t.name.clone()).unwrap_or_default();
            crate::println!("loadctl: reactivate pid {pid} ({name}) {why}");
            NR_REACTIVATIONS.fetch_add(1, Ordering::Relaxed);
        }
        self.activated_at.insert(pid, (now, est));
        PARKED.wake_all();
    }

    /// Deactivates active processes until the rest fit (see the module docs): when
    /// the machine thrashes, the largest first; when one came back by its bounded
    /// wait and they no longer fit, the one in longest first (the balance set
    /// turns over instead of growing).
    fn deactivate_for_room(&mut self, procs: &[Candidate], balance: &Balance, rate: u64, now: u64, is_rotation: bool) {
        let mut active = self.active(procs);
        let mut sum_est: u64 = active.iter().map(|p| balance.est[&p.pid]).sum();
        let is_overcommitted = sum_est > balance.room;
        // Two or more active processes each got pages back from swap this period:
        // they take each other's, whatever the estimates say (they fall short while
        // the processes are still growing into their working sets).
        let nr_faulting = active.iter().filter(|p| self.swap_ins.get(&p.pid).is_some_and(|&(_, _, last)| last > 0)).count();
        self.nr_over_periods = if is_overcommitted { self.nr_over_periods + 1 } else { 0 };
        let is_early = IS_EARLY.load(Ordering::Relaxed) && is_overcommitted && self.nr_over_periods >= 2;
        let is_thrashing = self.nr_quiet_periods >= 2
            && ((self.nr_high_periods >= 2 && (is_overcommitted || nr_faulting >= 2)) || is_early);
        if !(is_thrashing || is_rotation && is_overcommitted) {
            return;
        }
        // Thrashing though the estimates fit: one goes all the same.
        let mut nr_must_go = usize::from(is_thrashing && !is_overcommitted);
        let is_protected = |p: &Candidate| self.activated_at.get(&p.pid).is_some_and(|&(at, _)| now - at < MIN_RESIDENCY_MS);
        if is_thrashing {
            // The largest est first; among those within an eighth of the largest
            // (the same size, give or take), the fewest resident pages first: the
            // cheapest to swap out, and to bring back.
            let largest = active.iter().map(|p| balance.est[&p.pid]).max().unwrap_or(0);
            let is_near_largest = |p: &Candidate| balance.est[&p.pid] >= largest - largest / 8;
            let is_cheap = IS_CHEAP.load(Ordering::Relaxed);
            active.sort_by_key(|p| {
                let est = balance.est[&p.pid];
                if is_cheap && sum_est - est <= balance.room {
                    (0, p.rss, u64::MAX - p.pid)
                } else if is_near_largest(p) {
                    (1, p.rss, u64::MAX - p.pid)
                } else {
                    (2, u64::MAX - est, u64::MAX - p.pid)
                }
            });
        } else {
            active.sort_by_key(|p| (self.activated_at.get(&p.pid).map_or(0, |&(at, _)| at), p.pid));
        }
        let mut nr_active = active.len();
        active.retain(|p| !is_protected(p));
        for victim in active {
            if (sum_est <= balance.room && nr_must_go == 0) || nr_active < 2 {
                break;
            }
            nr_must_go = nr_must_go.saturating_sub(1);
            if !set_deactivated(victim.pid, true) {
                continue;
            }
            let est = balance.est[&victim.pid];
            crate::println!(
                "loadctl: deactivate pid {} ({}){}: est {est} pages (WS {}, rss {}); active est {sum_est} {} room {}; swap-in {rate}/s",
                victim.pid,
                victim.name,
                if !is_thrashing {
                    ", the balance set turns over"
                } else if sum_est <= balance.room {
                    ", thrashing though the estimates fit"
                } else {
                    ""
                },
                victim.ws,
                victim.rss,
                if sum_est > balance.room { ">" } else { "<=" },
                balance.room,
            );
            NR_DEACTIVATIONS.fetch_add(1, Ordering::Relaxed);
            note_out(victim.pid, Some(timer::ticks() + MAX_WAIT_MS * TICK_HZ / 1000));
            self.out.insert(victim.pid, (now, est));
            self.activated_at.remove(&victim.pid);
            sum_est -= est;
            nr_active -= 1;
        }
        NR_OUT_NOW.store(self.out.len() as u64, Ordering::Relaxed);
        self.nr_quiet_periods = 0;
        self.nr_high_periods = 0;
    }

    /// Swaps out pages of deactivated processes, the last to go out first and
    /// each one's coldest pages first, as many as the active ones lack (their est
    /// and the high watermark, twice, beyond their rss and the free frames), at most
    /// [`EVICT_AT_ONCE`] and for at most a period: so the active processes' pages
    /// stay resident and theirs go instead.
    fn evict_from_out(&self, procs: &[Candidate], balance: &Balance, now: u64) {
        if self.out.is_empty() {
            return;
        }
        let active = self.active(procs);
        let need: u64 = active.iter().map(|p| balance.est[&p.pid]).sum::<u64>() + 2 * reclaim::watermarks().high;
        let have = frame::nr_free_frames() + active.iter().map(|p| p.rss).sum::<u64>();
        let mut budget = (need.saturating_sub(have) as usize).min(EVICT_AT_ONCE);
        let mut out: Vec<(Pid, u64)> = self.out.iter().map(|(&pid, &(since, _))| (pid, since)).collect();
        out.sort_by_key(|&(pid, since)| core::cmp::Reverse((since, pid)));
        for (pid, _) in out {
            if budget == 0 || timer::uptime_ms() - now >= PERIOD_MS {
                break;
            }
            let Some(space) = TASKS.lock().get(&pid).and_then(|t| t.space.clone()) else { continue };
            let frames = wss::resident_frames_coldest_first(&space.lock());
            drop(space);
            let frames = &frames[..frames.len().min(budget)];
            // In chunks, within a period: the next look (and the bounded wait of
            // whoever is out) is never late by more than that.
            for chunk in frames.chunks(EVICT_CHUNK) {
                if timer::uptime_ms() - now >= PERIOD_MS {
                    break;
                }
                reclaim::evict_frames(chunk);
                budget -= chunk.len();
            }
        }
    }
}
