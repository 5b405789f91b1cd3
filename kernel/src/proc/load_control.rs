//! Load control: when the working sets of the running processes no longer fit in
//! memory and the machine pages all the time (thrashing), take processes out of
//! the *balance set* until the rest fit; bring them back when there is room.
//!
//! This is the medium-term scheduler of a two-level scheduler (Denning's balance
//! set; VMS's swapper; Linux has none and leaves it to the OOM killer). A kernel
//! thread, `loadctl`, looks every [`PERIOD_MS`] of wall time:
//!
//! ```text
//!  rate   = pages read from swap per second over the period (machine-wide)
//!  est(P) = max(WS(τ) history of P, rss of P)        (pages P needs, at least)
//!  room   = free frames + sum of rss of the active processes
//!  thrashing = rate >= HIGH_RATE for two periods in a row
//!              and sum of est over the active > room
//!
//!  thrashing, two or more active, none deactivated in the last two periods:
//!      deactivate the active process with the largest est (ties: the youngest)
//!      that has been active at least MIN_RESIDENCY_MS; swap out up to
//!      EVICT_AT_ONCE of its pages, coldest first
//!  a deactivated process P, the longest waiting first:
//!      rate < LOW_RATE and free frames >= est(P) + the high watermark: reactivate (room)
//!      deactivated for MAX_WAIT_MS:                                     reactivate (bounded wait)
//! ```
//! The rule is **largest working set first**: it frees the most memory per
//! process stopped (the kernel has no priorities to consult). Hysteresis: two
//! periods of high rate before the first decision and between decisions; a
//! reactivated process is not deactivated again for [`MIN_RESIDENCY_MS`]; the
//! reactivation threshold ([`LOW_RATE`]) is below the deactivation one.
//! **Bounded wait**: no process stays out longer than [`MAX_WAIT_MS`], as the
//! controller counts; it is then reactivated whatever the load, and (protected by
//! its residency) someone else goes out if thrashing goes on. As a clock on the
//! wall sees it, out at most [`OUT_BOUND_MS`] (`MAX_WAIT_MS` + 3 periods: the look
//! that brings it back may be late by one period, and the eviction that precedes
//! it stops within one more); and should the controller be later still, a parked
//! process comes back by itself `MAX_WAIT_MS` after it went out
//! ([`park_if_deactivated`]). So every process is in the balance set at least
//! `MIN_RESIDENCY_MS` in every `OUT_BOUND_MS + MIN_RESIDENCY_MS`. What the
//! controller does not bound is CPU time: a process in the balance set may still
//! wait for the disk or the CPU (the `wset` test prints its longest stall).
//!
//! A deactivated process is not scheduled: on its next way back to user mode
//! (a syscall return or the timer tick that interrupts it) it parks itself on a
//! wait queue ([`park_if_deactivated`]), holding no lock and no I/O, until it is
//! reactivated or killed. Up to [`EVICT_AT_ONCE`] of its resident pages are
//! evicted as it goes out, in chunks of [`EVICT_CHUNK`], for at most a period (the pages outside its working set first; the swapper of
//! old), so the others get frames at once; the rest are the first reclaim
//! candidates, since a parked process references nothing and the clock finds
//! their Accessed bits clear.
//!
//! Off by default; `loadctl=on` on the command line, [`set_enabled`] or the
//! `loadctl` syscall switch it at run time (switching off reactivates everyone).
//! While off, the thread sleeps without a timeout: it costs nothing.
//! Every decision is printed with its numbers:
//! ```text
//! loadctl: deactivate pid 5 (wsprobe): est 6000 pages (WS 812, rss 3311); active est 21500 > room 13400; swap-in 4100/s
//! loadctl: reactivate pid 5 (wsprobe) after 1830 ms: room (free 7900 >= est 6000 + 333)
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
use crate::mm::{frame, reclaim, wss};
use crate::sync::WaitQueue;

/// How often the controller looks (wall time).
pub const PERIOD_MS: u64 = 100;
/// Swap-in rate (pages per second) that counts as thrashing.
pub const HIGH_RATE: u64 = 1000;
/// Swap-in rate below which a deactivated process may come back for room.
pub const LOW_RATE: u64 = 200;
/// The least time a (re)activated process stays in the balance set.
pub const MIN_RESIDENCY_MS: u64 = 1000;
/// The longest a process stays deactivated.
pub const MAX_WAIT_MS: u64 = 5000;
/// The most pages evicted at once when a process goes out: the rest are left to
/// reclaim (a parked process references nothing, so its pages age first), so that
/// the controller itself is back to its looks quickly.
pub const EVICT_AT_ONCE: usize = 2048;
/// Pages evicted between two looks at the clock while a process goes out.
const EVICT_CHUNK: usize = 256;
/// What the controller promises: no process is out longer than this. It is
/// reactivated at the first look after [`MAX_WAIT_MS`]; looks are [`PERIOD_MS`]
/// apart, and one may start late by its predecessor's eviction, which stops
/// starting chunks after [`PERIOD_MS`] (one chunk of [`EVICT_CHUNK`] pages may
/// still be under way: a third period for it).
pub const OUT_BOUND_MS: u64 = MAX_WAIT_MS + 3 * PERIOD_MS;

static IS_ENABLED: AtomicBool = AtomicBool::new(false);
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
    est: u64,
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
            let ws = wss::snapshot(&space.lock());
            let peak = ws.history.iter().take(ws.nr_samples.min(wss::WS_HISTORY as u64) as usize).copied().max().unwrap_or(0);
            Candidate { pid, name, rss: ws.rss_pages, ws: ws.ws_pages, est: u64::from(peak).max(ws.rss_pages), is_deactivated }
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

/// What the controller remembers between looks.
#[derive(Default)]
struct Controller {
    /// Swap-ins counted at the last look.
    swap_ins_before: u64,
    /// Consecutive periods with a high rate.
    nr_high_periods: u32,
    /// Periods since the last deactivation.
    nr_quiet_periods: u32,
    /// Deactivated processes: pid -> (uptime ms when it went out, its est then).
    out: BTreeMap<Pid, (u64, u64)>,
    /// When each process last came (back) in, uptime ms.
    activated_at: BTreeMap<Pid, u64>,
}

extern "C" fn controller_main() -> ! {
    let mut state = Controller::default();
    loop {
        if !is_enabled() {
            // Off: everyone back in, then sleep (no periodic wake-ups) until switched on.
            let now = timer::uptime_ms();
            for pid in core::mem::take(&mut state.out).into_keys() {
                state.reactivate(pid, now, "load control switched off");
            }
            NR_OUT_NOW.store(0, Ordering::Relaxed);
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

impl Controller {
    /// One look: measure, reactivate, deactivate (see the module docs).
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
        for pid in self.out.keys() {
            if procs.iter().any(|p| p.pid == *pid && !p.is_deactivated) {
                self.activated_at.insert(*pid, now);
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
        for p in procs.iter().filter(|p| !p.is_deactivated) {
            self.activated_at.entry(p.pid).or_insert(now);
        }
        self.reactivate_one(rate, now);
        self.deactivate_one(&procs, rate, now);
        NR_OUT_NOW.store(self.out.len() as u64, Ordering::Relaxed);
    }

    /// Brings back the longest-waiting deactivated process if there is room or it
    /// has waited [`MAX_WAIT_MS`].
    fn reactivate_one(&mut self, rate: u64, now: u64) {
        let Some((&pid, &(since, est))) = self.out.iter().min_by_key(|(_, (since, _))| *since) else { return };
        let waited = now - since;
        let (free, high) = (frame::nr_free_frames(), reclaim::watermarks().high);
        if rate < LOW_RATE && free >= est + high {
            self.out.remove(&pid);
            self.reactivate(pid, now, &alloc::format!("after {waited} ms: room (free {free} >= est {est} + {high})"));
        } else if waited >= MAX_WAIT_MS {
            self.out.remove(&pid);
            self.reactivate(pid, now, &alloc::format!("after {waited} ms: bounded wait (free {free}, est {est}, swap-in {rate}/s)"));
        }
    }

    fn reactivate(&mut self, pid: Pid, now: u64, why: &str) {
        note_out(pid, None);
        if set_deactivated(pid, false) {
            let name = TASKS.lock().get(&pid).map(|t| t.name.clone()).unwrap_or_default();
            crate::println!("loadctl: reactivate pid {pid} ({name}) {why}");
            NR_REACTIVATIONS.fetch_add(1, Ordering::Relaxed);
        }
        self.activated_at.insert(pid, now);
        PARKED.wake_all();
    }

    /// Deactivates the largest eligible process if the machine thrashes.
    fn deactivate_one(&mut self, procs: &[Candidate], rate: u64, now: u64) {
        let active: Vec<&Candidate> = procs.iter().filter(|p| !p.is_deactivated && !self.out.contains_key(&p.pid)).collect();
        let sum_est: u64 = active.iter().map(|p| p.est).sum();
        let room = frame::nr_free_frames() + active.iter().map(|p| p.rss).sum::<u64>();
        let is_thrashing = self.nr_high_periods >= 2 && sum_est > room;
        if !is_thrashing || active.len() < 2 || self.nr_quiet_periods < 2 {
            return;
        }
        let is_eligible = |p: &&&Candidate| now - self.activated_at.get(&p.pid).copied().unwrap_or(0) >= MIN_RESIDENCY_MS;
        let Some(victim) = active.iter().filter(is_eligible).max_by_key(|p| (p.est, p.pid)) else { return };
        if !set_deactivated(victim.pid, true) {
            return;
        }
        crate::println!(
            "loadctl: deactivate pid {} ({}): est {} pages (WS {}, rss {}); active est {sum_est} > room {room}; swap-in {rate}/s",
            victim.pid,
            victim.name,
            victim.est,
            victim.ws,
            victim.rss
        );
        NR_DEACTIVATIONS.fetch_add(1, Ordering::Relaxed);
        note_out(victim.pid, Some(timer::ticks() + MAX_WAIT_MS * TICK_HZ / 1000));
        self.out.insert(victim.pid, (now, victim.est));
        NR_OUT_NOW.store(self.out.len() as u64, Ordering::Relaxed);
        self.nr_quiet_periods = 0;
        self.nr_high_periods = 0;
        // Its pages go first: swap them out now, coldest first.
        let space = TASKS.lock().get(&victim.pid).and_then(|t| t.space.clone());
        if let Some(space) = space {
            let frames = wss::resident_frames_coldest_first(&space.lock());
            drop(space);
            // In chunks, within a period: the next look (and the bounded wait of
            // whoever is out) is never late by more than that.
            let frames = &frames[..frames.len().min(EVICT_AT_ONCE)];
            for chunk in frames.chunks(EVICT_CHUNK) {
                if timer::uptime_ms() - now >= PERIOD_MS {
                    break;
                }
                reclaim::evict_frames(chunk);
            }
        }
    }
}
