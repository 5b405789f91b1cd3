//! The model test: randomized sequences of fault (read, write, exec), fork, evict,
//! readahead, mprotect, munmap, exit and spawn run on the simulated memory manager
//! (`model.rs`, which asks the real decision code) and on a reference model that
//! knows nothing of frames or swap (each process's page contents as a plain map);
//! after every step the two must agree:
//!
//! - every access gives the same result (the value read, or SIGSEGV);
//! - every page of every process holds what the reference says, wherever it is
//!   (a frame, the swap cache, the disk, or nothing yet: zero);
//! - a writable PTE of a private page maps a frame nobody else can see;
//! - each frame's map count and refcount, and each slot's share count, are what
//!   the page tables and the swap cache imply; no cached page is an orphan (mapped
//!   by nothing, named by no swap PTE); no frame is lost;
//! - at the end, with every process gone: no frame, slot, table or family left.
//!
//! A failure names its seed; rerun it alone with `MODEL_SEED=<seed>`. A longer soak:
//! `MODEL_SEQUENCES=100000 cargo test -p mm-core --lib model`.

use std::collections::BTreeMap;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use super::model::{LAYOUT, NR_FRAMES, NR_SLOTS, Sim};
use super::tests::{InjectedBug, with_bug};
use super::{Access, FrameUse};
use crate::addr::{Frame, Page, VirtAddr};
use crate::frame_table::{FrameDesc, FrameFlags, FrameState};
use crate::pte::PteFlags;
use crate::swap_map::SwapSlot;
use crate::vma::{VmFlags, VmProt};
use crate::xorshift::XorShift;

/// Sequences per run of the randomized test (`MODEL_SEQUENCES` overrides it).
const NR_SEQUENCES: u64 = 3000;
/// Operations per sequence.
const NR_OPS: usize = 80;
/// Most processes alive at once.
const MAX_PROCS: usize = 6;
/// An address no VMA ever covers.
const UNMAPPED: u64 = 0x40_0000;

/// How much the checker looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Checker {
    /// Everything in the module docs.
    Full,
    /// Everything but "a writable private PTE maps an exclusive frame" (which
    /// restates the rule under test): to show the reference model alone catches
    /// a bug, by the contents some process sees.
    WithoutExclusivity,
}

/// One page as the reference sees it.
#[derive(Clone, Copy, Debug)]
enum RefPage {
    /// The process's own copy: its value, and whether writes are allowed.
    Private { value: u64, is_writable: bool },
    /// Page of a shared region (a MAP_SHARED mapping), seen by every process that
    /// has it; whether this process may write it.
    Shared { region: usize, is_writable: bool },
}

/// The reference model: what each process must see, with no frames or swap.
#[derive(Default)]
struct Reference {
    procs: BTreeMap<usize, BTreeMap<u64, RefPage>>,
    regions: Vec<BTreeMap<u64, u64>>,
}

impl Reference {
    fn spawn(&mut self, id: usize) {
        let region = self.regions.len();
        self.regions.push(BTreeMap::new());
        let mut pages = BTreeMap::new();
        for (start, nr_pages, prot, flags) in LAYOUT {
            for i in 0..nr_pages {
                let is_writable = prot.contains(VmProt::WRITE);
                let page = if flags.contains(VmFlags::SHARED) {
                    RefPage::Shared { region, is_writable }
                } else {
                    RefPage::Private { value: 0, is_writable }
                };
                pages.insert(start + i * 4096, page);
            }
        }
        self.procs.insert(id, pages);
    }

    /// What `access` at `addr` by `id` gives: the value read (0 for a write), or SIGSEGV.
    fn access(&mut self, id: usize, addr: u64, access: Access, value: u64) -> Option<u64> {
        let page = self.procs.get_mut(&id)?.get_mut(&addr)?;
        match (access, page) {
            (Access::Exec, _) => None,
            (Access::Read, RefPage::Private { value, .. }) => Some(*value),
            (Access::Read, RefPage::Shared { region, .. }) => Some(self.regions[*region].get(&addr).copied().unwrap_or(0)),
            (Access::Write, RefPage::Private { is_writable: false, .. } | RefPage::Shared { is_writable: false, .. }) => None,
            (Access::Write, RefPage::Private { value: v, .. }) => {
                *v = value;
                Some(0)
            }
            (Access::Write, RefPage::Shared { region, .. }) => {
                self.regions[*region].insert(addr, value);
                Some(0)
            }
        }
    }

    /// The value process `id` must find at `addr` (`None`: not mapped).
    fn value(&self, id: usize, addr: u64) -> Option<u64> {
        match self.procs[&id].get(&addr)? {
            RefPage::Private { value, .. } => Some(*value),
            RefPage::Shared { region, .. } => Some(self.regions[*region].get(&addr).copied().unwrap_or(0)),
        }
    }

    /// Changes what process `id` may do at `addr` (nothing if it is not mapped).
    fn mprotect(&mut self, id: usize, addr: u64, prot: VmProt) {
        if let Some(RefPage::Private { is_writable, .. } | RefPage::Shared { is_writable, .. }) =
            self.procs.get_mut(&id).and_then(|pages| pages.get_mut(&addr))
        {
            *is_writable = prot.contains(VmProt::WRITE);
        }
    }
}

/// Every address the test touches: each page of the layout, and one outside it.
fn addresses() -> Vec<u64> {
    let mut all: Vec<u64> = LAYOUT.iter().flat_map(|&(start, n, _, _)| (0..n).map(move |i| start + i * 4096)).collect();
    all.push(UNMAPPED);
    all
}

/// One step of a sequence.
#[derive(Clone, Copy, Debug)]
enum Op {
    Access { id: usize, addr: u64, access: Access, value: u64 },
    Fork { id: usize },
    Evict { frame: Frame },
    ReadAhead { slot: u32 },
    Munmap { id: usize, addr: u64 },
    Mprotect { id: usize, addr: u64, prot: VmProt },
    Exit { id: usize },
    Spawn,
}

/// Picks the next operation for the machine as it is.
fn pick(rng: &mut XorShift, sim: &Sim<'_>, step: usize) -> Op {
    let ids: Vec<usize> = sim.procs.keys().copied().collect();
    if ids.is_empty() {
        return Op::Spawn;
    }
    let id = ids[rng.below(ids.len() as u64) as usize];
    let all = addresses();
    let addr = all[rng.below(all.len() as u64) as usize];
    match rng.below(100) {
        0..30 => Op::Access { id, addr, access: Access::Write, value: ((step as u64) << 8) | id as u64 },
        30..55 => Op::Access { id, addr, access: Access::Read, value: 0 },
        55..57 => Op::Access { id, addr, access: Access::Exec, value: 0 },
        57..67 if ids.len() < MAX_PROCS => Op::Fork { id },
        57..67 => Op::Exit { id },
        67..87 => {
            let frames: Vec<Frame> = {
                sim.mem.contents.frames().filter(|&f| f != sim.zero).collect()
            };
            match frames.len() {
                0 => Op::Spawn,
                n => Op::Evict { frame: frames[rng.below(n as u64) as usize] },
            }
        }
        87..89 => Op::ReadAhead { slot: 1 + rng.below(u64::from(NR_SLOTS) - 1) as u32 },
        89..91 => Op::Mprotect { id, addr, prot: if rng.below(2) == 0 { VmProt::READ } else { VmProt::READ_WRITE } },
        91..96 => Op::Munmap { id, addr },
        96..98 => Op::Exit { id },
        _ if ids.len() < MAX_PROCS => Op::Spawn,
        _ => Op::Exit { id },
    }
}

/// Applies `op` to both sides; returns an error if their answers differ.
fn apply(op: Op, sim: &mut Sim<'_>, reference: &mut Reference) -> Result<(), String> {
    match op {
        Op::Access { id, addr, access, value } => {
            let got = sim.access(id, VirtAddr::new(addr), access, value).ok();
            let want = reference.access(id, addr, access, value);
            if got != want {
                return Err(format!("{access:?} at {addr:#x} by {id} gave {got:?}, the reference says {want:?}"));
            }
        }
        Op::Fork { id } => {
            let child = sim.fork(id);
            let pages = reference.procs[&id].clone();
            reference.procs.insert(child, pages);
        }
        Op::Evict { frame } => {
            sim.evict(frame);
        }
        Op::ReadAhead { slot } => {
            sim.read_ahead(slot);
        }
        Op::Munmap { id, addr } => {
            if addr != UNMAPPED {
                sim.munmap(id, VirtAddr::new(addr));
            }
            reference.procs.get_mut(&id).expect("reference: no such process").remove(&addr);
        }
        Op::Mprotect { id, addr, prot } => {
            let is_mapped = sim.mprotect(id, VirtAddr::new(addr), prot);
            if is_mapped != reference.procs[&id].contains_key(&addr) {
                return Err(format!("mprotect at {addr:#x} by {id}: mapped {is_mapped}, the reference disagrees"));
            }
            reference.mprotect(id, addr, prot);
        }
        Op::Exit { id } => {
            sim.exit(id);
            reference.procs.remove(&id);
        }
        Op::Spawn => {
            let id = sim.spawn();
            reference.spawn(id);
        }
    }
    Ok(())
}

/// Returns what process `id` sees at `addr` without faulting: the mapped frame's
/// contents, the swap cache's or the disk's for a swap entry, zero if untouched.
fn peek(sim: &Sim<'_>, id: usize, addr: u64) -> u64 {
    let Some(pte) = sim.pte(id, Page::containing_address(VirtAddr::new(addr))).filter(|p| !p.is_unused()) else {
        return 0;
    };
    match pte.as_swap() {
        None => sim.mem.contents[&pte.frame()],
        Some(entry) => {
            let slot = entry.slot() as u32;
            match sim.swap.cache.get(&slot) {
                Some(frame) => sim.mem.contents[frame],
                None => sim.swap.disk[&slot],
            }
        }
    }
}

/// Compares the simulation with the reference and checks every count.
fn check(sim: &Sim<'_>, reference: &Reference, checker: Checker) -> Result<(), String> {
    let ids: Vec<usize> = sim.procs.keys().copied().collect();
    if ids != reference.procs.keys().copied().collect::<Vec<_>>() {
        return Err(format!("processes {ids:?}, the reference has {:?}", reference.procs.keys()));
    }
    let mut maps: BTreeMap<Frame, u32> = BTreeMap::new();
    let mut swap_ptes: BTreeMap<u32, u16> = BTreeMap::new();
    let all = addresses();
    for &id in &ids {
        for &addr in &all {
            let page = Page::containing_address(VirtAddr::new(addr));
            let pte = sim.pte(id, page).filter(|p| !p.is_unused());
            let Some(want) = reference.value(id, addr) else {
                if pte.is_some() || sim.procs[&id].vmas.find(VirtAddr::new(addr)).is_some() {
                    return Err(format!("process {id} still maps {addr:#x} after munmap: {pte:?}"));
                }
                continue;
            };
            let got = peek(sim, id, addr);
            if got != want {
                return Err(format!("process {id} holds {got:#x} at {addr:#x}, the reference says {want:#x}"));
            }
            let Some(pte) = pte else { continue };
            if let Some(entry) = pte.as_swap() {
                *swap_ptes.entry(entry.slot() as u32).or_default() += 1;
                continue;
            }
            if pte.frame() == sim.zero {
                if pte.flags().contains(PteFlags::WRITABLE) {
                    return Err(format!("process {id} maps the zero page writable at {addr:#x}"));
                }
                continue;
            }
            *maps.entry(pte.frame()).or_default() += 1;
            let is_private = matches!(reference.procs[&id][&addr], RefPage::Private { .. });
            if checker == Checker::Full && is_private && pte.flags().contains(PteFlags::WRITABLE) {
                let d = sim.mem.buddy.desc(pte.frame());
                let slot_refs = d.has_flags(FrameFlags::SWAP_CACHE).then(|| sim.slot_refs(d.private()));
                let usage = FrameUse { map_count: d.map_count(), refcount: d.refcount(), slot_refs };
                if !exclusive_without_injection(usage) {
                    return Err(format!("process {id} maps {addr:#x} writable but the frame is shared: {usage:?}"));
                }
            }
        }
    }
    check_counts(sim, &maps, &swap_ptes)
}

/// `FrameUse::is_exclusive` as the kernel has it, whatever bug is injected: the
/// checker must not share the bug it looks for.
fn exclusive_without_injection(usage: FrameUse) -> bool {
    usage.map_count == 1 && usage.refcount == 1 + u32::from(usage.slot_refs.is_some()) && usage.slot_refs.is_none_or(|r| r == 1)
}

/// Checks every user frame's counts against the `maps` found in the page tables,
/// every slot's against the `swap_ptes`, and that no frame is lost.
fn check_counts(sim: &Sim<'_>, maps: &BTreeMap<Frame, u32>, swap_ptes: &BTreeMap<u32, u16>) -> Result<(), String> {
    let mut nr_user = 0;
    for frame in sim.mem.contents.frames().filter(|&f| f != sim.zero) {
        nr_user += 1;
        let d = sim.mem.buddy.desc(frame);
        let is_cached = d.has_flags(FrameFlags::SWAP_CACHE);
        let map_count = maps.get(&frame).copied().unwrap_or(0);
        let refcount = map_count + u32::from(is_cached);
        if d.state() != FrameState::User || d.map_count() != map_count || d.refcount() != refcount {
            return Err(format!(
                "{frame:?}: map count {} refcount {} ({:?}), the page tables imply {map_count} and {refcount}",
                d.map_count(),
                d.refcount(),
                d.flags()
            ));
        }
        if refcount == 0 {
            return Err(format!("{frame:?}: no reference left but not freed"));
        }
        if is_cached && sim.swap.cache.get(&d.private()) != Some(&frame) {
            return Err(format!("{frame:?}: flagged SWAP_CACHE for slot {}, which it does not cache", d.private()));
        }
        if d.has_flags(FrameFlags::LOCKED) {
            return Err(format!("{frame:?}: left LOCKED"));
        }
    }
    for slot in 1..NR_SLOTS {
        let is_cached = sim.swap.cache.contains_key(&slot);
        let want = swap_ptes.get(&slot).copied().unwrap_or(0) + u16::from(is_cached);
        let got = sim.swap.map.count(SwapSlot::from_index(slot)).unwrap_or(0);
        if got != want {
            return Err(format!("slot {slot}: share count {got}, the page tables and the cache imply {want}"));
        }
        if is_cached && want == 1 && sim.slot_state(slot).page.is_some_and(|p| p.map_count == 0) {
            return Err(format!("slot {slot}: an orphan in the swap cache (no PTE maps it, no swap PTE names it)"));
        }
    }
    let accounted = sim.mem.buddy.nr_free_frames() + nr_user + sim.mem.nr_tables() as u64 + 1;
    if accounted != NR_FRAMES {
        return Err(format!("{accounted} frames accounted for out of {NR_FRAMES}: some were lost"));
    }
    Ok(())
}

/// Ends every process, checking after each exit, and checks that nothing is left.
fn check_teardown(sim: &mut Sim<'_>, reference: &mut Reference, checker: Checker) -> Result<(), String> {
    for id in sim.procs.keys().copied().collect::<Vec<_>>() {
        apply(Op::Exit { id }, sim, reference).and_then(|()| check(sim, reference, checker)).map_err(|e| format!("exit of {id}: {e}"))?;
    }
    let nr_free = sim.mem.buddy.nr_free_frames();
    let left = (NR_FRAMES - 1 - nr_free, sim.swap.map.nr_used(), sim.swap.cache.len(), sim.mem.nr_tables());
    if left != (0, 0, 0, 0) || sim.families.nr_families() != 0 {
        return Err(format!("after every exit: (frames, slots, cached pages, tables) left = {left:?}"));
    }
    sim.mem.buddy.check_invariants().map_err(|e| format!("buddy: {e:?}"))?;
    sim.swap.map.check_invariants();
    Ok(())
}

/// Runs one sequence of `nr_ops` operations from `seed`, checking after every step.
/// A panic inside the simulation counts as a failure too.
fn run(seed: u64, nr_ops: usize, checker: Checker, counts: &mut BTreeMap<String, u64>) -> Result<(), String> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut descs = std::vec![FrameDesc::new(); NR_FRAMES as usize];
        let mut sim = Sim::new(&mut descs);
        let mut reference = Reference::default();
        let mut rng = XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut ops = Vec::new();
        for step in 0..nr_ops {
            let op = pick(&mut rng, &sim, step);
            ops.push(op);
            let label = format!("{op:?}");
            *counts.entry(label.split([' ', '{']).next().unwrap_or("").to_string()).or_default() += 1;
            if let Err(e) = apply(op, &mut sim, &mut reference).and_then(|()| check(&sim, &reference, checker)) {
                return Err(format!("step {step} ({op:?}): {e}\nthe steps: {ops:?}"));
            }
        }
        for (action, n) in &sim.counts {
            *counts.entry((*action).to_string()).or_default() += n;
        }
        check_teardown(&mut sim, &mut reference, checker).map_err(|e| format!("teardown: {e}"))
    }));
    result.unwrap_or_else(|panic| {
        let message = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
        Err(format!("panicked: {}", message.unwrap_or_default()))
    })
}

/// Reads a number from the environment.
fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

#[test]
fn random_sequences_agree_with_the_reference_model() {
    let seeds = match env_number("MODEL_SEED") {
        Some(seed) => seed..seed + 1,
        None => 1..1 + env_number("MODEL_SEQUENCES").unwrap_or(NR_SEQUENCES),
    };
    let mut counts = BTreeMap::new();
    for seed in seeds {
        if let Err(e) = run(seed, NR_OPS, Checker::Full, &mut counts) {
            panic!("model test: seed {seed} failed (rerun alone: MODEL_SEED={seed}):\n{e}");
        }
    }
    std::println!("model test: operations and decisions taken: {counts:?}");
    // Every row of the table that the layout can reach was exercised, not just the easy ones.
    // (A shared mapping's PTE is read-only only after an mprotect, which the model
    // does not do: `MakeWritable` for a shared VMA is left to the unit tests.)
    let rows = ["MapZeroPage", "MapZeroedFrame", "ReplaceZeroPage", "CopyOnWrite", "SoleOwner"];
    let more = ["MapSwapCacheWritable", "MapSwapCacheCow", "ReadFromSwap", "Refuse", "Evict", "ReadAhead", "Fork", "Munmap", "Mprotect", "Exit"];
    if env_number("MODEL_SEED").is_none() {
        for row in rows.iter().chain(&more) {
            assert!(counts.get(*row).is_some_and(|&n| n >= 10), "model test: {row} hardly exercised: {counts:?}");
        }
    }
}

/// Runs sequences with `bug` injected until `checker` reports one; returns its report.
fn first_failure_with(bug: InjectedBug, checker: Checker) -> Option<String> {
    let report = with_bug(bug, || {
        (1..=200).find_map(|seed| run(seed, NR_OPS, checker, &mut BTreeMap::new()).map_err(|e| format!("seed {seed}: {e}")).err())
    });
    std::println!("{bug:?} injected, {checker:?}: the checker reports {report:?}");
    report
}

/// Asserts that the injected COW `bug` is caught by the exclusivity invariant, and
/// by the reference model alone: some process sees contents it should not.
fn assert_cow_bug_is_caught(bug: InjectedBug) {
    let report = first_failure_with(bug, Checker::Full).expect("the injected COW bug went unnoticed");
    assert!(report.contains("writable but the frame is shared"), "{report}");
    let report = first_failure_with(bug, Checker::WithoutExclusivity).expect("the reference model missed the COW bug");
    assert!(report.contains("the reference says"), "{report}");
}

#[test]
fn the_checker_catches_cow_reuse_without_the_map_count_check() {
    assert_cow_bug_is_caught(InjectedBug::CowReuseWithoutCountCheck);
}

#[test]
fn the_checker_catches_cow_reuse_that_forgets_the_swap_ptes_naming_the_slot() {
    assert_cow_bug_is_caught(InjectedBug::CowReuseIgnoringSwapSharers);
}

#[test]
fn the_checker_catches_a_swap_cache_that_keeps_orphans() {
    let report = first_failure_with(InjectedBug::SwapCacheKeepsOrphans, Checker::Full).expect("the injected swap-cache leak went unnoticed");
    assert!(report.contains("an orphan in the swap cache"), "{report}");
}

#[test]
fn without_an_injected_bug_the_same_seeds_pass() {
    for seed in 1..=200 {
        for checker in [Checker::Full, Checker::WithoutExclusivity] {
            assert_eq!(run(seed, NR_OPS, checker, &mut BTreeMap::new()), Ok(()), "seed {seed}");
        }
    }
}
