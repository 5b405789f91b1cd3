//! The load-control benchmark (issue #15's second table): four `wsprobe`s whose
//! working sets together are 2.2 times free memory, run to the end with load
//! control off and on, alternated (`benchonly=loadctl`; `loadctl_pairs=N` pairs,
//! default 3), printing each run and the range of the speed-up. The `wset` test
//! runs one pair through [`run_mix`] too.
//!
//! The mix (session 9): each writes its pages once, waits at a start line until
//! all have (or are parked by load control), then makes [`NR_ROUNDS`] passes
//! writing [`NR_WORDS`] word of each page. The line makes them run concurrently:
//! without it the first to have its pages in finished before the last had
//! started, and "off" hardly thrashed. `loadctl_procs=`, `loadctl_share=`
//! (percent of free frames each), `loadctl_rounds=`, `loadctl_words=` and
//! `loadctl_gate=off` change the mix; `loadctl_words=256 loadctl_rounds=60
//! loadctl_gate=off` is the mix of sessions 6-8.
//!
//! Each run polls the four: their CPU time (the longest *stall*, wall time without
//! CPU time while alive: it includes waiting for the disk and for the CPU, which
//! the controller does not bound), and their deactivated flag (the longest time
//! *out*, which it bounds: `load_control::OUT_BOUND_MS`).

use alloc::sync::Arc;
use alloc::vec::Vec;

use abi::o;

use crate::arch::timer;
use crate::mm::vmstat::{self, SwapEvent};
use crate::fs::file::{FdTable, FileObject, OpenFile};
use crate::fs::pipe::{End, Pipe};
use crate::mm::{frame, reclaim};
use crate::println;
use crate::proc::{self, Pid, load_control, sched, task, task::WaitStatus};

/// Write passes each makes over its pages after the start line. At the line more
/// than half of everyone's pages are in swap, and every pass needs them all.
pub const NR_ROUNDS: u64 = 4;
/// Words each pass writes per page: one, so that a pass is little CPU and the
/// time is the paging's (with 256 words, sessions 6-8, "off" serialized itself
/// on a fast host: a process with its pages in kept them referenced).
pub const NR_WORDS: u64 = 1;
/// The mix's size: each process 55 % of the free frames (2.2x memory in all).
pub const SHARE_PERCENT: u64 = 55;

/// What one run of the mix did.
#[derive(Clone, Copy, Debug)]
pub struct MixRun {
    /// Wall time from the spawns to the last exit.
    pub wall_ms: u64,
    /// The longest any process went without CPU time while alive.
    pub longest_stall_ms: u64,
    /// The longest any process stayed deactivated, as polled.
    pub longest_out_ms: u64,
    /// Deactivations during the run.
    pub nr_deactivations: u64,
    /// Processes that did not exit 0.
    pub nr_failed: usize,
    /// Pages read from swap during the run (machine-wide): with the wall time, the
    /// major-fault rate that says whether the mix really thrashed.
    pub nr_swap_ins: u64,
    /// Pages written to swap during the run (machine-wide).
    pub nr_swap_outs: u64,
    /// When the start line opened, ms after the spawns (0: no start line).
    pub gate_opened_ms: u64,
}

/// The start line of a gated mix: the pipes and the kernel's ends of them.
struct Gate {
    /// Each process writes a byte here when its pages are written (its fd 3).
    ready: Arc<Pipe>,
    /// The kernel's read end of `ready` (without a reader, a write is EPIPE).
    _ready_reader: Arc<OpenFile>,
    /// The processes wait on `go` (their fd 0).
    go: Arc<Pipe>,
    /// The only write end of `go`: dropping it opens the gate.
    go_writer: Option<Arc<OpenFile>>,
}

impl Gate {
    /// Returns a closed gate; `None` if no frame is free for the pipes.
    fn new() -> Option<Gate> {
        let ready = Arc::new(Pipe::new()?);
        let go = Arc::new(Pipe::new()?);
        let _ready_reader = OpenFile::new(FileObject::Pipe(ready.clone(), End::Read), o::RDONLY);
        let go_writer = Some(OpenFile::new(FileObject::Pipe(go.clone(), End::Write), o::WRONLY));
        Some(Gate { ready, _ready_reader, go, go_writer })
    }

    /// Returns the open files of one process at the line: the console, with fd 0
    /// reading `go` and fd 3 writing `ready`.
    fn files(&self) -> Result<FdTable, abi::Errno> {
        let mut files = FdTable::new_console();
        let _ = files.replace(0, OpenFile::new(FileObject::Pipe(self.go.clone(), End::Read), o::RDONLY))?;
        let _ = files.replace(3, OpenFile::new(FileObject::Pipe(self.ready.clone(), End::Write), o::WRONLY))?;
        Ok(files)
    }

    /// Adds to `at_line` the pids of the processes that reached the line since.
    fn take_ready(&self, at_line: &mut Vec<Pid>) {
        while self.ready.nr_bytes() >= 8 {
            let mut pid = [0u8; 8];
            let is_killed: fn() -> bool = || false;
            let got = self.ready.read(8, true, is_killed, &mut |at, bytes| {
                pid[at..at + bytes.len()].copy_from_slice(bytes);
                Ok(())
            });
            if got != Ok(8) {
                return;
            }
            at_line.push(u64::from_le_bytes(pid));
        }
    }
}

/// One process of the mix as the poller sees it.
struct Watched {
    pid: Pid,
    cpu_ms: u64,
    cpu_grew_at: u64,
    out_since: Option<u64>,
}

/// The mix: how many `wsprobe`s, each of how many pages, how many passes, how
/// many words written per page per pass, and whether they start their passes
/// together.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    /// Processes run at once.
    pub nr_procs: u64,
    /// Pages of each (all touched every pass).
    pub nr_pages: u64,
    /// Write passes each makes over its pages.
    pub nr_rounds: u64,
    /// Words written per page per pass.
    pub nr_words: u64,
    /// A start line: each writes its pages, then waits until all have (`wsprobe
    /// gate`), so that their passes run concurrently from the first; without it
    /// the first to have its pages in can finish before the last has started.
    pub is_gated: bool,
}

/// Runs four `wsprobe`s of `nr_pages` pages each, `nr_rounds` write passes of
/// [`NR_WORDS`] a page from a start line, with load control on or off, to the
/// end; polls them (see the module docs).
pub fn run_mix(nr_pages: u64, nr_rounds: u64, is_load_control_on: bool) -> MixRun {
    run(Mix { nr_procs: 4, nr_pages, nr_rounds, nr_words: NR_WORDS, is_gated: true }, is_load_control_on)
}

/// Runs `mix` with load control on or off, to the end; polls its processes (see
/// the module docs).
pub fn run(mix: Mix, is_load_control_on: bool) -> MixRun {
    load_control::set_enabled(is_load_control_on);
    let (deactivations_before, _) = load_control::nr_decisions();
    let Mix { nr_procs, nr_pages, nr_rounds, nr_words, is_gated } = mix;
    // The start line: each process writes its pid into `ready` (its fd 3) once its
    // pages are written, then reads `go` (its fd 0); dropping the only write end of
    // `go` opens the gate (end of file for all of them at once). Without a frame
    // for the pipes the mix runs without the line (`wsprobe` without `gate`).
    let gate = is_gated.then(Gate::new).flatten();
    let args = alloc::format!("pages={nr_pages} mapped={nr_pages} rounds={nr_rounds} words={nr_words} write{}", if gate.is_some() { " gate" } else { "" });
    let (swap_ins_before, swap_outs_before) = (vmstat::nr_events(SwapEvent::SwapIn), vmstat::nr_events(SwapEvent::SwapOut));
    let start = timer::uptime_ms();
    let spawn = || match &gate {
        Some(gate) => gate.files().ok().and_then(|files| task::spawn_with_files("wsprobe", &args, files).ok()),
        None => proc::spawn_with_args("wsprobe", &args).ok(),
    };
    let mut procs: Vec<Option<Watched>> =
        (0..nr_procs).map(|_| spawn().map(|pid| Watched { pid, cpu_ms: 0, cpu_grew_at: start, out_since: None })).collect();
    let mut gate = gate;
    let mut at_line: Vec<Pid> = Vec::new();
    let mut run = MixRun {
        wall_ms: 0,
        longest_stall_ms: 0,
        longest_out_ms: 0,
        nr_deactivations: 0,
        nr_failed: 0,
        nr_swap_ins: 0,
        nr_swap_outs: 0,
        gate_opened_ms: 0,
    };
    run.nr_failed = procs.iter().filter(|p| p.is_none()).count();
    while procs.iter().any(Option::is_some) {
        let now = timer::uptime_ms();
        // Open the gate once every process alive has written its pages, or is
        // parked by load control (it waits for the others to finish: were it
        // awaited at the line, all would wait for its bounded wait).
        if let Some(g) = gate.as_mut().filter(|g| g.go_writer.is_some()) {
            g.take_ready(&mut at_line);
            let is_at_line = |w: &Watched| at_line.contains(&w.pid) || task::TASKS.lock().get(&w.pid).is_some_and(|t| t.is_deactivated);
            if procs.iter().flatten().all(is_at_line) {
                g.go_writer = None;
                run.gate_opened_ms = now - start;
            }
        }
        for slot in procs.iter_mut() {
            let Some(w) = slot.as_mut() else { continue };
            if let Some(status) = task::try_reap(w.pid) {
                run.nr_failed += usize::from(status != WaitStatus::Exited(0));
                *slot = None;
                continue;
            }
            let cpu_now = task::ws_snapshot(w.pid).map_or(w.cpu_ms, |s| s.cpu_ms);
            if cpu_now > w.cpu_ms {
                (w.cpu_ms, w.cpu_grew_at) = (cpu_now, now);
            }
            run.longest_stall_ms = run.longest_stall_ms.max(now - w.cpu_grew_at);
            let is_out = task::TASKS.lock().get(&w.pid).is_some_and(|t| t.is_deactivated);
            w.out_since = if is_out { Some(w.out_since.unwrap_or(now)) } else { None };
            run.longest_out_ms = run.longest_out_ms.max(w.out_since.map_or(0, |since| now - since));
        }
        sched::yield_now();
    }
    run.wall_ms = timer::uptime_ms() - start;
    run.nr_swap_ins = vmstat::nr_events(SwapEvent::SwapIn) - swap_ins_before;
    run.nr_swap_outs = vmstat::nr_events(SwapEvent::SwapOut) - swap_outs_before;
    load_control::set_enabled(false);
    let _ = task::wait_all(10_000);
    while reclaim::kswapd_state().1 {
        sched::yield_now();
    }
    run.nr_deactivations = load_control::nr_decisions().0 - deactivations_before;
    run
}

/// Prints one run's line.
fn print_run(label: &str, run: &MixRun) {
    println!(
        "  {label:<4} {:>8} ms (start line at {} ms)  longest stall {:>6} ms  longest out {:>6} ms  {} deactivations  swap-in {} pages ({}/s)  swap-out {} pages{}",
        run.wall_ms,
        run.gate_opened_ms,
        run.longest_stall_ms,
        run.longest_out_ms,
        run.nr_deactivations,
        run.nr_swap_ins,
        run.nr_swap_ins * 1000 / run.wall_ms.max(1),
        run.nr_swap_outs,
        if run.nr_failed > 0 { "  (a process failed)" } else { "" }
    );
}

/// Runs the mix off and on, alternated, `loadctl_pairs=N` times (default 3), and
/// prints every run and the speed-ups' range.
pub fn bench() {
    let number = |key: &str, default: u64| crate::cmdline::value(key).and_then(|v| v.parse::<u64>().ok()).unwrap_or(default);
    let nr_pairs = number("loadctl_pairs", 3).max(1);
    let nr_procs = number("loadctl_procs", 4).max(1);
    let share_percent = number("loadctl_share", SHARE_PERCENT).max(1);
    let nr_pages = frame::nr_free_frames() * share_percent / 100;
    let mix = Mix { nr_procs, nr_pages, nr_rounds: number("loadctl_rounds", NR_ROUNDS).max(1), nr_words: number("loadctl_words", NR_WORDS).max(1),
        is_gated: crate::cmdline::value("loadctl_gate") != Some("off"),
    };
    println!(
        "load control on a mix of {}.{}x memory: {nr_procs} x wsprobe pages={nr_pages} rounds={} words={} write{}, {nr_pairs} pairs:",
        nr_procs * share_percent / 100,
        nr_procs * share_percent % 100 / 10,
        mix.nr_rounds,
        mix.nr_words,
        if mix.is_gated { " gate" } else { "" }
    );
    let mut ratios: Vec<f64> = Vec::new();
    for pair in 0..nr_pairs {
        // Alternate which goes first, so neither always runs on the warmer machine.
        let order = if pair % 2 == 0 { [false, true] } else { [true, false] };
        let mut wall = [0u64; 2];
        for is_on in order {
            let run = run(mix, is_on);
            print_run(if is_on { "on" } else { "off" }, &run);
            wall[usize::from(is_on)] = run.wall_ms;
        }
        let ratio = wall[0] as f64 / wall[1].max(1) as f64;
        println!("  pair {}: speed-up {ratio:.2}x", pair + 1);
        ratios.push(ratio);
    }
    ratios.sort_by(|a, b| a.total_cmp(b));
    let n = ratios.len();
    let median = if n % 2 == 1 { ratios[n / 2] } else { (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0 };
    println!("  speed-up (off ms / on ms) over {n} pairs: min {:.2}x, median {median:.2}x, max {:.2}x", ratios[0], ratios[n - 1]);
}
