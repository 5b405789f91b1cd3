//! A TLB: entries, associativity, replacement, context switches, and who refills it.
//!
//! [`Tlb`] caches translations `(ASID, VPN) -> PFN` in `entries / ways` sets of `ways`
//! lines; a VPN goes to set `VPN mod nr_sets`. A hit costs nothing extra; a miss is
//! refilled either by the **hardware** (the MMU walks the page table itself, as on
//! x86-64: one memory reference per level) or by **software** (MIPS-style: the CPU
//! traps, and an OS handler walks the table and writes the entry). Within a set the
//! victim is chosen by `mm-core`'s replacement policies (LRU, FIFO, clock: the
//! kernel's own code, keyed by way number; the clock's Accessed bit is the line's
//! referenced bit) or at random.
//!
//! On a context switch the TLB is either **flushed** (every entry dropped, as x86-64
//! without PCIDs) or keeps its entries, each tagged with the process's **ASID**. The
//! summary replays the trace with other page sizes and with the other switch choice.
//! A miss on a `(ASID, VPN)` never seen before is *compulsory*; the *warm hit rate*
//! leaves those out: 1.0 for a loop that fits, 0 for a stride that defeats the TLB.

use super::rng_from;
use crate::Model;
use crate::args::{ArgError, Args, arg_error, bytes};
use crate::exercise::Exercise;
use mm_core::reclaim::{Clock, Fifo, Lru, PageProbe, ReplacementPolicy};
use mm_core::xorshift::XorShift;
use std::collections::BTreeSet;

/// The model's entry in the front end.
pub const MODEL: Model = Model {
    name: "tlb",
    summary: "a TLB: entries, associativity, replacement; flush vs ASIDs; hardware vs software refill",
    options: "\
  --entries N       TLB entries (default 4)
  --ways N          associativity: lines per set (default = entries: fully associative)
  --policy P        lru, fifo, clock or random (default lru)
  --page-size SIZE  page size (default 4K)
  --pattern P       loop, stride or random (default loop)
  --pages N         loop/random: distinct pages touched (default 3)
  --stride SIZE     stride: bytes between accesses (default 4K)
  --count N         stride: accesses per pass (default 5)
  --loops N         passes over the pattern (default 3)
  --num N           random: accesses (default 12)
  --addresses LIST  explicit virtual addresses instead of a pattern
  --procs N         processes taking turns, each running the pattern (default 1)
  --quantum N       accesses per turn before a context switch (default 6)
  --asid            tag entries with ASIDs instead of flushing on a switch
  --levels N        page-table levels walked per miss (default 4)
  --refill R        hw (the MMU walks) or sw (a trap to the OS refills) (default hw)",
    build_fn: exercise,
};

/// How a set chooses its victim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlbPolicy {
    /// `mm_core::reclaim::Lru`.
    Lru,
    /// `mm_core::reclaim::Fifo`.
    Fifo,
    /// `mm_core::reclaim::Clock` (second chance on the line's referenced bit).
    Clock,
    /// A random line.
    Random,
}

impl TlbPolicy {
    /// Returns the policy's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            TlbPolicy::Lru => "lru",
            TlbPolicy::Fifo => "fifo",
            TlbPolicy::Clock => "clock",
            TlbPolicy::Random => "random",
        }
    }
}

/// The shape and behaviour of a TLB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbConfig {
    /// Lines in all.
    pub entries: u64,
    /// Lines per set.
    pub ways: u64,
    /// Victim choice within a set.
    pub policy: TlbPolicy,
    /// Tag entries with ASIDs (true) or flush on a switch (false).
    pub has_asids: bool,
}

/// One TLB line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Line {
    asid: u64,
    vpn: u64,
    is_referenced: bool,
}

/// A set's lines, as seen by a replacement policy (keys are way numbers).
struct SetProbe<'a>(&'a mut [Option<Line>]);

impl PageProbe for SetProbe<'_> {
    fn is_referenced(&mut self, way: u64) -> bool {
        self.0[way as usize].is_some_and(|line| line.is_referenced)
    }
    fn test_and_clear_referenced(&mut self, way: u64) -> bool {
        match &mut self.0[way as usize] {
            Some(line) => std::mem::replace(&mut line.is_referenced, false),
            None => false,
        }
    }
    fn is_dirty(&mut self, _way: u64) -> bool {
        false
    }
}

/// One set: its lines and its replacement policy.
struct Set {
    lines: Vec<Option<Line>>,
    policy: Option<Box<dyn ReplacementPolicy>>,
}

/// What one access did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The translation was cached.
    Hit,
    /// It was not; `evicted` is the `(ASID, VPN)` that made room, if any.
    Miss {
        /// The line replaced.
        evicted: Option<(u64, u64)>,
    },
}

/// A set-associative TLB.
pub struct Tlb {
    config: TlbConfig,
    sets: Vec<Set>,
    rng: XorShift,
}

impl Tlb {
    /// Creates an empty TLB.
    pub fn new(config: TlbConfig) -> Tlb {
        let nr_sets = config.entries / config.ways;
        let make_policy_fn = || -> Option<Box<dyn ReplacementPolicy>> {
            match config.policy {
                TlbPolicy::Lru => Some(Box::new(Lru::new())),
                TlbPolicy::Fifo => Some(Box::new(Fifo::new())),
                TlbPolicy::Clock => Some(Box::new(Clock::second_chance())),
                TlbPolicy::Random => None,
            }
        };
        let sets = (0..nr_sets)
            .map(|_| Set {
                lines: vec![None; config.ways as usize],
                policy: make_policy_fn(),
            })
            .collect();
        Tlb {
            config,
            sets,
            rng: XorShift(0x71b),
        }
    }

    /// Returns the number of sets.
    pub fn nr_sets(&self) -> u64 {
        self.sets.len() as u64
    }

    /// Returns the number of valid lines.
    pub fn nr_valid(&self) -> usize {
        self.sets
            .iter()
            .map(|set| set.lines.iter().flatten().count())
            .sum()
    }

    /// Looks up `(asid, vpn)`; on a miss, fills a line (the refill).
    pub fn access(&mut self, asid: u64, vpn: u64) -> Outcome {
        let asid = if self.config.has_asids { asid } else { 0 };
        let nr_sets = self.nr_sets();
        let set = &mut self.sets[(vpn % nr_sets) as usize];
        if let Some(way) = set
            .lines
            .iter()
            .position(|l| l.is_some_and(|l| l.asid == asid && l.vpn == vpn))
        {
            set.lines[way].as_mut().expect("found above").is_referenced = true;
            if let Some(policy) = &mut set.policy {
                policy.on_access(way as u64);
            }
            return Outcome::Hit;
        }
        let (way, evicted) = match set.lines.iter().position(Option::is_none) {
            Some(way) => (way, None),
            None => {
                let way = match &mut set.policy {
                    Some(policy) => policy
                        .pick_victim(&mut SetProbe(&mut set.lines))
                        .expect("Tlb::access: a full set")
                        as usize,
                    None => self.rng.below(set.lines.len() as u64) as usize,
                };
                (way, set.lines[way].map(|l| (l.asid, l.vpn)))
            }
        };
        set.lines[way] = Some(Line {
            asid,
            vpn,
            is_referenced: true,
        });
        if let Some(policy) = &mut set.policy {
            policy.on_insert(way as u64);
        }
        Outcome::Miss { evicted }
    }

    /// Drops every entry (a context switch without ASIDs).
    pub fn flush(&mut self) {
        for set in &mut self.sets {
            for (way, line) in set.lines.iter_mut().enumerate() {
                if line.take().is_some()
                    && let Some(policy) = &mut set.policy
                {
                    policy.on_remove(way as u64);
                }
            }
        }
    }
}

/// One access of a trace: which process, which virtual address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// The process (its ASID).
    pub pid: u64,
    /// The virtual address.
    pub va: u64,
}

/// The counts of a replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlbStats {
    /// Accesses.
    pub nr_accesses: u64,
    /// Hits.
    pub hits: u64,
    /// Misses on a translation never seen before.
    pub compulsory: u64,
    /// Context switches that flushed the TLB.
    pub flushes: u64,
}

impl TlbStats {
    /// Returns the misses.
    pub fn misses(self) -> u64 {
        self.nr_accesses - self.hits
    }
    /// Returns hits / accesses.
    pub fn hit_rate(self) -> f64 {
        self.hits as f64 / self.nr_accesses.max(1) as f64
    }
    /// Returns hits / (accesses - compulsory misses): 1.0 when nothing but first touches missed.
    pub fn warm_hit_rate(self) -> f64 {
        let warm = self.nr_accesses - self.compulsory;
        if warm == 0 {
            1.0
        } else {
            self.hits as f64 / warm as f64
        }
    }
}

/// Replays `trace` on a fresh TLB; calls `each_fn` with every access and its outcome.
pub fn replay(
    config: TlbConfig,
    page_size: u64,
    trace: &[Access],
    each_fn: &mut dyn FnMut(&Access, Outcome, bool),
) -> TlbStats {
    let mut tlb = Tlb::new(config);
    let mut stats = TlbStats::default();
    let mut seen = BTreeSet::new();
    let mut running = trace.first().map(|a| a.pid);
    for access in trace {
        let is_switch = running != Some(access.pid);
        if is_switch && !config.has_asids {
            tlb.flush();
            stats.flushes += 1;
        }
        running = Some(access.pid);
        let vpn = access.va / page_size;
        let outcome = tlb.access(access.pid, vpn);
        stats.nr_accesses += 1;
        let is_first_touch = seen.insert((access.pid, vpn));
        match outcome {
            Outcome::Hit => stats.hits += 1,
            Outcome::Miss { .. } => stats.compulsory += u64::from(is_first_touch),
        }
        debug_assert!(tlb.nr_valid() as u64 <= config.entries);
        each_fn(access, outcome, is_switch);
    }
    stats
}

/// Returns the trace the options describe.
fn make_trace(args: &Args, page_size: u64) -> Result<Vec<Access>, ArgError> {
    let mut rng = rng_from(args)?;
    let loops = args.number_or("loops", 3)?;
    let one_process: Vec<u64> = if let Some(list) = args.numbers("addresses")? {
        list
    } else {
        match args.text("pattern").unwrap_or("loop") {
            "loop" => {
                let pages = args.number_or("pages", 3)?;
                (0..loops)
                    .flat_map(|_| (0..pages).map(|p| p * page_size))
                    .collect()
            }
            "stride" => {
                let stride = args.number_or("stride", 4096)?;
                let count = args.number_or("count", 5)?;
                (0..loops)
                    .flat_map(|_| (0..count).map(move |i| i * stride))
                    .collect()
            }
            "random" => {
                let pages = args.number_or("pages", 3)?.max(1);
                let num = args.number_or("num", 12)?;
                (0..num)
                    .map(|_| rng.below(pages) * page_size + rng.below(page_size))
                    .collect()
            }
            other => {
                return Err(arg_error(format!(
                    "--pattern {other}: use loop, stride or random"
                )));
            }
        }
    };
    if one_process.len() > 1 << 20 {
        return Err(arg_error("the trace is longer than 2^20 accesses"));
    }
    let procs = args.number_or("procs", 1)?.clamp(1, 64);
    let quantum = args.number_or("quantum", 6)?.max(1) as usize;
    // The processes take turns: `quantum` accesses of each, round robin, until all are done.
    let mut trace = Vec::new();
    let mut cursor = vec![0usize; procs as usize];
    while cursor.iter().any(|&c| c < one_process.len()) {
        for pid in 0..procs as usize {
            let end = (cursor[pid] + quantum).min(one_process.len());
            trace.extend(one_process[cursor[pid]..end].iter().map(|&va| Access {
                pid: pid as u64 + 1,
                va,
            }));
            cursor[pid] = end;
        }
    }
    Ok(trace)
}

/// Builds the exercise from the options.
fn exercise(args: &Args) -> Result<Exercise, ArgError> {
    let entries = args.number_or("entries", 4)?;
    let ways = args.number_or("ways", entries)?;
    let policy = match args.text("policy").unwrap_or("lru") {
        "lru" => TlbPolicy::Lru,
        "fifo" => TlbPolicy::Fifo,
        "clock" => TlbPolicy::Clock,
        "random" => TlbPolicy::Random,
        other => {
            return Err(arg_error(format!(
                "--policy {other}: use lru, fifo, clock or random"
            )));
        }
    };
    let page_size = args.number_or("page-size", 4096)?;
    let levels = args.number_or("levels", 4)?;
    let is_software = match args.text("refill").unwrap_or("hw") {
        "hw" => false,
        "sw" => true,
        other => return Err(arg_error(format!("--refill {other}: use hw or sw"))),
    };
    if entries == 0
        || ways == 0
        || entries % ways != 0
        || entries > 1 << 16
        || !page_size.is_power_of_two()
    {
        return Err(arg_error(
            "need --entries a multiple of --ways (both > 0, entries <= 65536) and a power-of-two page",
        ));
    }
    let config = TlbConfig {
        entries,
        ways,
        policy,
        has_asids: args.flag("asid"),
    };
    let trace = make_trace(args, page_size)?;

    let mut ex = Exercise::default();
    ex.given(format!(
        "TLB: {entries} entries, {} sets x {ways} ways, {} replacement, pages of {}, {} on a context switch",
        entries / ways,
        policy.name(),
        bytes(page_size),
        if config.has_asids { "ASIDs" } else { "flush" }
    ));
    ex.given(format!(
        "  set = VPN mod {}; a miss is refilled by {}",
        entries / ways,
        if is_software {
            "the OS (software)"
        } else {
            "the MMU (hardware walk)"
        }
    ));
    let is_small = trace.len() <= 40;
    let stats = replay(
        config,
        page_size,
        &trace,
        &mut |access, outcome, is_switch| {
            if !is_small {
                return;
            }
            if is_switch {
                ex.given(format!(
                    "context switch to pid {}{}",
                    access.pid,
                    if config.has_asids {
                        ""
                    } else {
                        ": the TLB is flushed"
                    }
                ));
            }
            let vpn = access.va / page_size;
            let work = vec![format!(
                "VPN = {} / {page_size} = {vpn}, set {}",
                access.va,
                vpn % (entries / ways)
            )];
            let (mut work, answer) = match outcome {
                Outcome::Hit => (work, "hit"),
                Outcome::Miss { evicted } => {
                    let mut work = work;
                    work.push(match evicted {
                        Some((asid, v)) => format!(
                            "not cached: the set is full, {} evicts VPN {v}{}",
                            policy.name(),
                            if config.has_asids {
                                format!(" (ASID {asid})")
                            } else {
                                String::new()
                            }
                        ),
                        None => "not cached: filled into a free line".into(),
                    });
                    (work, "miss")
                }
            };
            work.truncate(2);
            ex.ask(
                format!(
                    "pid {} VA {:#x} ({}): hit or miss?",
                    access.pid, access.va, access.va
                ),
                work,
                answer,
            );
        },
    );
    if !is_small {
        ex.given(format!(
            "a trace of {} accesses (too long to ask one by one)",
            trace.len()
        ));
    }
    let refill_work = if is_software {
        format!(
            "{} misses, each a trap to the OS handler, which walks {levels} levels and writes the entry",
            stats.misses()
        )
    } else {
        format!(
            "{} misses, each a hardware walk of {levels} levels: {} memory references",
            stats.misses(),
            stats.misses() * levels
        )
    };
    ex.ask_named("hits", "how many hits?", vec![], stats.hits.to_string());
    ex.ask_named(
        "misses",
        "how many misses?",
        vec![
            refill_work,
            format!("{} of them compulsory (first touch)", stats.compulsory),
        ],
        stats.misses().to_string(),
    );
    ex.ask_named(
        "hit-rate",
        "hit rate (3 decimals)?",
        vec![format!("{} / {}", stats.hits, stats.nr_accesses)],
        format!("{:.3}", stats.hit_rate()),
    );
    summarize(
        &mut ex,
        config,
        page_size,
        &trace,
        stats,
        levels,
        is_software,
    );
    Ok(ex)
}

/// Adds the refill counts, and the same trace under other page sizes and switch choices.
fn summarize(
    ex: &mut Exercise,
    config: TlbConfig,
    page_size: u64,
    trace: &[Access],
    stats: TlbStats,
    levels: u64,
    is_software: bool,
) {
    ex.sum_up(format!(
        "{} accesses: {} hits, {} misses ({} compulsory), {} flushes; hit rate {:.3}, warm hit rate {:.3}",
        stats.nr_accesses,
        stats.hits,
        stats.misses(),
        stats.compulsory,
        stats.flushes,
        stats.hit_rate(),
        stats.warm_hit_rate()
    ));
    let (walks, traps) = if is_software {
        (0, stats.misses())
    } else {
        (stats.misses(), 0)
    };
    ex.sum_up(format!("misses refilled: {walks} hardware walks ({} memory references), {traps} software traps to the OS", walks * levels));
    ex.sum_up("the same trace with other page sizes:".to_string());
    for shift in [-1i32, 0, 1, 2, 9] {
        let size = if shift < 0 {
            page_size >> 1
        } else {
            page_size << shift
        };
        if size == 0 {
            continue;
        }
        let other = replay(config, size, trace, &mut |_, _, _| {});
        ex.sum_up(format!(
            "  pages of {:<8} hit rate {:.3}",
            bytes(size),
            other.hit_rate()
        ));
    }
    if trace.iter().any(|a| a.pid != trace[0].pid) {
        let other = TlbConfig {
            has_asids: !config.has_asids,
            ..config
        };
        let o = replay(other, page_size, trace, &mut |_, _, _| {});
        ex.sum_up(format!(
            "with {} instead: hit rate {:.3} ({} flushes)",
            if other.has_asids {
                "ASIDs"
            } else {
                "a flush on every switch"
            },
            o.hit_rate(),
            o.flushes
        ));
    }
}

#[cfg(test)]
mod tests;
