//! Page replacement: the kernel's policies, and OPT, on a reference string, step by step.
//!
//! The policies are `mm_core::reclaim`'s, the code the kernel's reclaim runs (FIFO,
//! second-chance clock, enhanced clock, LRU by aging) plus the two only a simulator can
//! run (exact LRU, Belady's OPT). [`trace`] replays a reference string the way
//! `mm_core::reclaim::simulate` does (a hit sets the page's Accessed bit, and its Dirty
//! bit on a write; a fault evicts the policy's victim when memory is full; a timer
//! tick follows every reference), but records every step so a student can follow it.
//! `--sweep` prints what `cargo run -p mm-core --example replay` prints for the
//! string: faults per policy for 1 to frames+3 frames (Belady's anomaly shows there).

use super::rng_from;
use crate::Model;
use crate::args::{ArgError, Args, arg_error, split_list};
use crate::exercise::Exercise;
use mm_core::reclaim::{
    self, Clock, Fifo, Lru, LruApprox, Opt, PageProbe, PageRef, ReplacementPolicy, SimResult,
};
use std::collections::BTreeMap;

/// The model's entry in the front end.
pub const MODEL: Model = Model {
    name: "replace",
    summary: "page replacement: the kernel's policies (mm-core) and OPT on a reference string",
    options: "\
  --refs LIST       reference string; `w` marks a write: 1,2,w3,1 (default random)
  --frames N        physical frames (default 3)
  --policy P        fifo, clock, eclock, lru-approx, lru or opt (default fifo)
  --pages N         random: distinct pages (default 5)
  --num N           random: references (default 12)
  --sweep           also print faults of every policy for 1..=frames+3 frames",
    build_fn: exercise,
};

/// Every policy name, in the order of the tables.
pub const POLICY_NAMES: [&str; 6] = ["fifo", "clock", "eclock", "lru-approx", "lru", "opt"];

/// Returns the policy called `name` (OPT needs the string up front).
pub fn policy(name: &str, refs: &[PageRef]) -> Result<Box<dyn ReplacementPolicy>, ArgError> {
    Ok(match name {
        "fifo" => Box::new(Fifo::new()),
        "clock" => Box::new(Clock::second_chance()),
        "eclock" => Box::new(Clock::enhanced()),
        "lru-approx" => Box::new(LruApprox::new()),
        "lru" => Box::new(Lru::new()),
        "opt" => Box::new(Opt::new(refs)),
        other => {
            return Err(arg_error(format!(
                "--policy {other}: use {}",
                POLICY_NAMES.join(", ")
            )));
        }
    })
}

/// The Accessed and Dirty bits of the resident pages: the MMU of the simulation.
#[derive(Default)]
struct Memory {
    resident: BTreeMap<u64, (bool, bool)>,
}

impl PageProbe for Memory {
    fn is_referenced(&mut self, page: u64) -> bool {
        self.resident.get(&page).is_some_and(|bits| bits.0)
    }
    fn test_and_clear_referenced(&mut self, page: u64) -> bool {
        self.resident
            .get_mut(&page)
            .is_some_and(|bits| std::mem::replace(&mut bits.0, false))
    }
    fn is_dirty(&mut self, page: u64) -> bool {
        self.resident.get(&page).is_some_and(|bits| bits.1)
    }
}

/// One step of a replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The reference.
    pub reference: PageRef,
    /// True if the page was resident.
    pub is_hit: bool,
    /// The page evicted to make room, and whether it was dirty (written back).
    pub evicted: Option<(u64, bool)>,
    /// The resident pages afterwards, ascending.
    pub resident: Vec<u64>,
}

/// Replays `refs` through `policy` with `nr_frames` frames; returns every step and the counts.
pub fn trace(
    policy: &mut dyn ReplacementPolicy,
    nr_frames: usize,
    refs: &[PageRef],
) -> (Vec<Step>, SimResult) {
    let mut memory = Memory::default();
    let (mut steps, mut result) = (Vec::new(), SimResult::default());
    for &reference in refs {
        let mut step = Step {
            reference,
            is_hit: false,
            evicted: None,
            resident: Vec::new(),
        };
        if let Some(bits) = memory.resident.get_mut(&reference.page) {
            step.is_hit = true;
            result.hits += 1;
            *bits = (true, bits.1 | reference.is_write);
            policy.on_access(reference.page);
        } else {
            result.faults += 1;
            if nr_frames > 0 {
                if memory.resident.len() == nr_frames {
                    let victim = policy
                        .pick_victim(&mut memory)
                        .expect("trace: a full memory has a victim");
                    let (_, is_dirty) = memory
                        .resident
                        .remove(&victim)
                        .expect("trace: the victim was resident");
                    result.evictions += 1;
                    result.dirty_writebacks += u64::from(is_dirty);
                    step.evicted = Some((victim, is_dirty));
                }
                memory
                    .resident
                    .insert(reference.page, (true, reference.is_write));
                policy.on_insert(reference.page);
            }
        }
        policy.on_tick(&mut memory);
        step.resident = memory.resident.keys().copied().collect();
        steps.push(step);
    }
    (steps, result)
}

/// Parses `1,2,w3`.
fn parse_refs(text: &str) -> Result<Vec<PageRef>, ArgError> {
    split_list(text)
        .map(|item| {
            let (is_write, page) = match item.strip_prefix(['w', 'W']) {
                Some(page) => (true, page),
                None => (false, item.strip_prefix(['r', 'R']).unwrap_or(item)),
            };
            let page =
                crate::args::parse_number(page).map_err(|e| arg_error(format!("--refs: {e}")))?;
            Ok(PageRef { page, is_write })
        })
        .collect()
}

/// Formats a reference: `3` or `w3`.
fn show(reference: PageRef) -> String {
    format!(
        "{}{}",
        if reference.is_write { "w" } else { "" },
        reference.page
    )
}

/// Builds the exercise from the options.
fn exercise(args: &Args) -> Result<Exercise, ArgError> {
    let mut rng = rng_from(args)?;
    let refs = match args.text("refs") {
        Some(text) => parse_refs(text)?,
        None => {
            let pages = args.number_or("pages", 5)?.max(1);
            let num = args.number_or("num", 12)?.min(1 << 16);
            (0..num)
                .map(|_| PageRef {
                    page: rng.below(pages),
                    is_write: rng.below(4) == 0,
                })
                .collect()
        }
    };
    let nr_frames = args.number_or("frames", 3)?.min(1 << 16) as usize;
    if nr_frames == 0 {
        return Err(arg_error("--frames must be at least 1"));
    }
    let name = args.text("policy").unwrap_or("fifo");
    let mut chosen = policy(name, &refs)?;
    let is_sweep = args.flag("sweep");

    let mut ex = Exercise::default();
    let string: Vec<String> = refs.iter().map(|&r| show(r)).collect();
    ex.given(format!(
        "replacement: {nr_frames} frames, policy {name} (mm_core::reclaim), memory starts empty"
    ));
    ex.given(format!(
        "  references ({}; w = write): {}",
        refs.len(),
        string.join(",")
    ));
    let (steps, result) = trace(chosen.as_mut(), nr_frames, &refs);
    for step in &steps {
        let mut work = Vec::new();
        if !step.is_hit {
            work.push(match step.evicted {
                Some((victim, true)) => {
                    format!("memory full: {name} evicts page {victim} (dirty: written back first)")
                }
                Some((victim, false)) => format!("memory full: {name} evicts page {victim}"),
                None => "a free frame takes it".to_string(),
            });
        }
        work.push(format!("resident after: {:?}", step.resident));
        ex.ask(
            format!("reference {}: hit or miss?", show(step.reference)),
            work,
            if step.is_hit { "hit" } else { "miss" },
        );
    }
    ex.ask_named(
        "faults",
        "how many page faults?",
        vec![format!(
            "{} faults, {} hits, {} dirty write-backs",
            result.faults, result.hits, result.dirty_writebacks
        )],
        result.faults.to_string(),
    );
    let frame_range = if is_sweep {
        1..=nr_frames + 3
    } else {
        nr_frames..=nr_frames
    };
    ex.sum_up("faults (dirty write-backs) of every policy on this string, by frames:");
    ex.sum_up(format!(
        "{:>6} {}",
        "frames",
        POLICY_NAMES.map(|n| format!("{n:>11}")).join("")
    ));
    for frames in frame_range {
        let mut row = format!("{frames:>6} ");
        for name in POLICY_NAMES {
            let counts = reclaim::simulate(policy(name, &refs)?.as_mut(), frames, &refs);
            row += &format!(
                "{:>11}",
                format!("{} ({})", counts.faults, counts.dirty_writebacks)
            );
        }
        ex.sum_up(row);
    }
    Ok(ex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build;
    use mm_core::xorshift::XorShift;

    const BELADY: &str = "1,2,3,4,1,2,5,1,2,3,4,5";

    fn faults(policy: &str, frames: &str) -> String {
        build(
            "replace",
            &["--refs", BELADY, "--frames", frames, "--policy", policy],
        )
        .unwrap()
        .answer("faults")
        .unwrap()
        .to_string()
    }

    #[test]
    fn beladys_anomaly_fifo_faults_more_with_more_frames() {
        assert_eq!(
            (faults("fifo", "3"), faults("fifo", "4")),
            ("9".into(), "10".into())
        );
        assert_eq!(
            (faults("lru", "3"), faults("lru", "4")),
            ("10".into(), "8".into())
        );
        assert_eq!(
            (faults("opt", "3"), faults("opt", "4")),
            ("7".into(), "6".into())
        );
    }

    #[test]
    fn fifo_trace_by_hand() {
        let ex = build("replace", &["--refs", "1,2,3,1,4,w1,2", "--frames", "3"]).unwrap();
        let answers: Vec<&str> = ex.questions.iter().map(|q| q.answer.as_str()).collect();
        // 1 2 3 fill; 1 hits; 4 evicts 1 (first in); w1 evicts 2; 2 evicts 3.
        assert_eq!(
            answers,
            ["miss", "miss", "miss", "hit", "miss", "miss", "miss", "6"]
        );
        assert!(
            ex.worked()
                .contains("memory full: fifo evicts page 1\n      resident after: [2, 3, 4]")
        );
    }

    #[test]
    fn the_step_trace_counts_what_mm_core_simulate_counts() {
        let mut rng = XorShift(0x2e91ace);
        for _ in 0..300 {
            let refs: Vec<PageRef> = (0..200)
                .map(|_| PageRef {
                    page: rng.below(12),
                    is_write: rng.below(3) == 0,
                })
                .collect();
            let frames = 1 + rng.below(10) as usize;
            for name in POLICY_NAMES {
                let (steps, counts) = trace(policy(name, &refs).unwrap().as_mut(), frames, &refs);
                assert_eq!(
                    counts,
                    reclaim::simulate(policy(name, &refs).unwrap().as_mut(), frames, &refs),
                    "{name}"
                );
                assert!(steps.iter().all(|s| s.resident.len() <= frames));
            }
        }
    }

    #[test]
    fn sweep_prints_a_row_per_frame_count() {
        let ex = build("replace", &["--refs", BELADY, "--frames", "3", "--sweep"]).unwrap();
        let text = ex.worked();
        let fifo_faults_fn = |frames: &str| {
            let row = text
                .lines()
                .find(|l| l.split_whitespace().next() == Some(frames))
                .unwrap();
            row.split_whitespace().nth(1).unwrap().to_string()
        };
        assert_eq!(
            (fifo_faults_fn("3"), fifo_faults_fn("4")),
            ("9".into(), "10".into()),
            "{text}"
        );
        assert_eq!(
            text.lines().filter(|l| l.ends_with(" (0)")).count(),
            6,
            "frames 1..=6"
        );
        assert!(build("replace", &["--policy", "random"]).is_err());
    }
}
