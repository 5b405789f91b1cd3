//! Tests of [`Lirs`]: loops, a ghost promotion and a ghost forgotten worked out by
//! hand, the ghosts' bound on a long string over many pages, and random strings
//! against a reference model that keeps S and Q in plain `Vec`s.

use super::*;
use crate::xorshift::XorShift;
use std::collections::{BTreeMap, VecDeque};
use std::format;
use std::vec::Vec;

/// Returns `nr_passes` passes over pages `0..nr_pages`, all reads.
fn loop_refs(nr_pages: u64, nr_passes: usize) -> Vec<PageRef> {
    let pages: Vec<u64> = (0..nr_passes).flat_map(|_| 0..nr_pages).collect();
    reads(&pages)
}

/// 10 frames: at most 9 LIR pages (one frame in HIR_SHARE, at least one, for HIR).
/// Filling, page 0 comes first with no room for a LIR page (1 resident, limit 0):
/// HIR; pages 1..=9 become LIR. Page 10 evicts 0 (Q's only page) and is HIR. Each
/// later pass: 0 faults (10 goes, a ghost), 1..=9 hit, 10 faults (0 goes): 2
/// faults a pass, the 2 pages the 9 LIR ones leave. LRU faults on every reference.
#[test]
fn lirs_on_a_loop_one_page_over_memory_faults_twice_a_pass_where_lru_faults_always() {
    let refs = loop_refs(11, 5);
    let lirs = simulate(&mut Lirs::new(), 10, &refs).faults;
    assert_eq!(lirs, 11 + 2 * 4);
    assert_eq!(simulate(&mut Lru::new(), 10, &refs).faults, 55);
    let opt = simulate(&mut Opt::new(&refs), 10, &refs).faults;
    assert!(opt <= lirs, "OPT {opt} is the floor");
}

/// 100 frames, a loop of 120 pages: 99 LIR pages (1..=99), the other 21 share
/// one frame. First pass 120 faults, then 21 a pass (0 and 100..=119); LRU 120.
#[test]
fn lirs_on_a_loop_a_fifth_over_memory_keeps_99_of_120_pages_resident() {
    let refs = loop_refs(120, 10);
    let mut lirs = Lirs::new();
    assert_eq!(simulate(&mut lirs, 100, &refs).faults, 120 + 21 * 9);
    assert_eq!(lirs.set_sizes().0, 99, "99 LIR pages");
    assert!((1..=99).all(|page| lirs.is_lir(page)));
    assert_eq!(simulate(&mut Lru::new(), 100, &refs).faults, 1200);
    let opt = simulate(&mut Opt::new(&refs), 100, &refs).faults;
    assert!(opt <= 309, "OPT {opt} is the floor");
}

/// 3 frames (2 LIR at most). 1: HIR (no room for LIR yet), out of S; 2, 3: LIR.
/// 4 evicts 1 (forgotten: not in S) and is HIR; 5 evicts 4, now a ghost in S, and
/// is HIR. 4 again: a ghost hit, so its IRR (1 page: 5) is smaller than the
/// recency of S's bottom LIR page 2: 4 evicts 5 and becomes LIR, 2 is demoted
/// to Q, and is the next victim. LRU would evict 3 there.
#[test]
fn lirs_promotes_a_ghost_used_again_and_demotes_the_oldest_lir_page() {
    let mut lirs = Lirs::new();
    let refs = reads(&[1, 2, 3, 4, 5, 4]);
    let result = simulate(&mut lirs, 3, &refs);
    assert_eq!((result.faults, result.evictions), (6, 3));
    assert!(lirs.is_lir(3) && lirs.is_lir(4) && !lirs.is_lir(2));
    assert_eq!(lirs.set_sizes(), (2, 1, 1), "LIR 3 and 4, resident HIR 2, ghost 5");
    lirs.check_invariants().expect("after the string");
    assert_eq!(lirs.pick_victim(&mut NoBitsProbe), Some(2));
    let mut lru = loaded(Lru::new(), &[3, 5, 4]);
    assert_eq!(lru.pick_victim(&mut NoBitsProbe), Some(3));
}

/// 3 frames, at most 3 ghosts. 1: HIR, out of S; 2, 3: LIR. 4 evicts 1
/// (forgotten) and is HIR; 5, 6, 7 and 8 each evict the one before, a ghost in S:
/// 8 makes a fourth ghost, so the deepest, 4, is forgotten. 4 again is then a page
/// not in S: it stays HIR (evicting 8 forgets 5), where with its ghost kept it would
/// have become LIR and demoted 2.
#[test]
fn lirs_forgets_the_deepest_ghost_past_its_bound_so_a_page_used_again_stays_hir() {
    let mut lirs = Lirs::new();
    let refs = reads(&[1, 2, 3, 4, 5, 6, 7, 8, 4]);
    let result = simulate(&mut lirs, 3, &refs);
    assert_eq!((result.faults, result.evictions), (9, 6));
    assert_eq!(lirs.ghost_limit(), 3);
    assert!(lirs.is_lir(2) && lirs.is_lir(3) && !lirs.is_lir(4));
    assert_eq!(lirs.set_sizes(), (2, 1, 3), "LIR 2 and 3, resident HIR 4, ghosts 6, 7, 8");
    lirs.check_invariants().expect("after the string");
}

/// Returns `nr_refs` references: half to a hot set of `nr_hot` pages, half to
/// `nr_pages` others, uniformly (weak locality: LIR pages go unused for long).
fn hot_and_scattered(seed: u64, nr_hot: u64, nr_pages: u64, nr_refs: usize) -> Vec<u64> {
    let mut rng = XorShift(seed);
    (0..nr_refs).map(|_| if rng.below(2) == 0 { rng.below(nr_hot) } else { nr_hot + rng.below(nr_pages) }).collect()
}

/// The LIRS paper leaves the non-resident entries unbounded; this LIRS keeps at
/// most as many as there are frames (CLOCK-Pro's m). Before the bound, this string
/// (64 frames, 20 000 distinct pages) had up to 864 ghosts in S, 13.5 per frame.
#[test]
fn lirs_remembers_at_most_as_many_ghosts_as_frames_on_a_long_string_over_many_pages() {
    let nr_frames = 64;
    let pages = hot_and_scattered(7, 48, 20_000, 200_000);
    let mut lirs = Lirs::new();
    let mut nr_ghosts_max = 0;
    for (step, &page) in pages.iter().enumerate() {
        if lirs.is_tracked(page) {
            lirs.on_access(page);
        } else {
            if lirs.nr_tracked() == nr_frames {
                lirs.pick_victim(&mut NoBitsProbe).expect("a full memory has a victim");
            }
            lirs.on_insert(page);
        }
        let (nr_lir, nr_hir, nr_ghosts) = lirs.set_sizes();
        assert!(nr_ghosts <= nr_frames, "step {step}: {nr_ghosts} ghosts in {nr_frames} frames");
        assert!(nr_lir + nr_hir + nr_ghosts <= 2 * nr_frames, "step {step}: entries past 2m");
        nr_ghosts_max = nr_ghosts_max.max(nr_ghosts);
        if step % 1000 == 0 {
            lirs.check_invariants().unwrap_or_else(|e| panic!("step {step}: {e}"));
        }
    }
    assert_eq!(nr_ghosts_max, nr_frames, "the bound is reached, so it is what holds them");
}

fn loaded<P: ReplacementPolicy>(mut policy: P, pages: &[u64]) -> P {
    for &page in pages {
        policy.on_insert(page);
    }
    policy
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ModelStatus {
    Lir,
    Hir,
    Ghost,
}

/// LIRS said plainly: S a `Vec` (bottom first), Q a `VecDeque` (oldest first).
#[derive(Default)]
struct LirsModel {
    status: BTreeMap<u64, ModelStatus>,
    stack: Vec<u64>,
    queue: VecDeque<u64>,
    nr_resident_max: usize,
}

impl LirsModel {
    fn nr_lir(&self) -> usize {
        self.status.values().filter(|&&s| s == ModelStatus::Lir).count()
    }
    fn nr_resident(&self) -> usize {
        self.nr_lir() + self.queue.len()
    }
    fn lir_limit(nr_resident: usize) -> usize {
        nr_resident.saturating_sub((nr_resident / HIR_SHARE).max(1))
    }
    fn move_to_top(&mut self, page: u64) {
        self.stack.retain(|&p| p != page);
        self.stack.push(page);
    }
    fn move_to_tail(&mut self, page: u64) {
        self.queue.retain(|&p| p != page);
        self.queue.push_back(page);
    }
    fn prune(&mut self) {
        while let Some(&bottom) = self.stack.first() {
            match self.status[&bottom] {
                ModelStatus::Lir => return,
                ModelStatus::Ghost => {
                    self.status.remove(&bottom);
                }
                ModelStatus::Hir => {}
            }
            self.stack.remove(0);
        }
    }
    fn demote_bottom(&mut self) {
        if self.stack.is_empty() {
            return;
        }
        let bottom = self.stack.remove(0);
        self.status.insert(bottom, ModelStatus::Hir);
        self.queue.push_back(bottom);
        self.prune();
    }
    fn promote(&mut self, page: u64) {
        self.queue.retain(|&p| p != page);
        self.status.insert(page, ModelStatus::Lir);
        self.move_to_top(page);
        while self.nr_lir() > LirsModel::lir_limit(self.nr_resident()) {
            self.demote_bottom();
        }
    }
    fn insert(&mut self, page: u64) {
        match self.status.get(&page) {
            Some(ModelStatus::Ghost) => self.promote(page),
            Some(_) => {}
            None => {
                let is_lir = self.nr_lir() < LirsModel::lir_limit(self.nr_resident() + 1);
                self.status.insert(page, if is_lir { ModelStatus::Lir } else { ModelStatus::Hir });
                self.stack.push(page);
                if !is_lir {
                    self.queue.push_back(page);
                }
                self.prune();
            }
        }
        self.nr_resident_max = self.nr_resident_max.max(self.nr_resident());
    }
    /// Forgets the ghosts nearest S's bottom while they outnumber the most pages
    /// resident at once.
    fn bound_ghosts(&mut self) {
        let is_ghost = |status: &BTreeMap<u64, ModelStatus>, p: u64| status[&p] == ModelStatus::Ghost;
        while self.status.values().filter(|&&s| s == ModelStatus::Ghost).count() > self.nr_resident_max {
            let at = self.stack.iter().position(|&p| is_ghost(&self.status, p)).expect("a ghost is in S");
            let ghost = self.stack.remove(at);
            self.status.remove(&ghost);
        }
        self.prune();
    }
    fn access(&mut self, page: u64) {
        match self.status.get(&page) {
            Some(ModelStatus::Lir) => {
                self.move_to_top(page);
                self.prune();
            }
            Some(ModelStatus::Hir)
                if self.stack.contains(&page) || self.nr_lir() < LirsModel::lir_limit(self.nr_resident()) =>
            {
                self.promote(page)
            }
            Some(ModelStatus::Hir) => {
                self.move_to_top(page);
                self.move_to_tail(page);
                self.prune();
            }
            _ => {}
        }
    }
    fn remove(&mut self, page: u64) {
        if matches!(self.status.get(&page), Some(ModelStatus::Lir | ModelStatus::Hir)) {
            self.status.remove(&page);
            self.stack.retain(|&p| p != page);
            self.queue.retain(|&p| p != page);
            self.prune();
        }
    }
    fn pick(&mut self) -> Option<u64> {
        if self.queue.is_empty() {
            self.demote_bottom();
        }
        let page = self.queue.pop_front()?;
        if self.stack.contains(&page) {
            self.status.insert(page, ModelStatus::Ghost);
            self.bound_ghosts();
        } else {
            self.status.remove(&page);
        }
        if self.nr_resident() == 0 {
            self.status.clear();
            self.stack.clear();
        }
        Some(page)
    }
}

/// Random strings (with some unmaps) through [`Lirs`] and [`LirsModel`]: the same
/// victims, every victim resident, never more resident pages than frames.
#[test]
fn lirs_agrees_with_its_reference_model_on_random_strings() {
    for seed in 1..=40 {
        let mut rng = XorShift(seed);
        let nr_frames = 1 + rng.below(12) as usize;
        let nr_pages = nr_frames as u64 + 1 + rng.below(3 * nr_frames as u64);
        let (mut lirs, mut model) = (Lirs::new(), LirsModel::default());
        for step in 0..3000 {
            let page = rng.below(nr_pages);
            let at = format!("seed {seed}, {nr_frames} frames, step {step}, page {page}");
            if rng.below(20) == 0 {
                lirs.on_remove(page);
                model.remove(page);
            } else if lirs.is_tracked(page) {
                lirs.on_access(page);
                model.access(page);
            } else {
                if lirs.nr_tracked() == nr_frames {
                    let victim = lirs.pick_victim(&mut NoBitsProbe);
                    assert_eq!(victim, model.pick(), "{at}: victims differ");
                    let victim = victim.expect("a full memory has a victim");
                    assert!(!lirs.is_tracked(victim), "{at}: victim {victim} still tracked");
                }
                lirs.on_insert(page);
                model.insert(page);
            }
            lirs.check_invariants().unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(lirs.nr_tracked(), model.nr_resident(), "{at}");
            assert!(lirs.nr_tracked() <= nr_frames, "{at}");
            assert_eq!(lirs.set_sizes().0, model.nr_lir(), "{at}");
            assert!(lirs.set_sizes().2 <= nr_frames, "{at}: more ghosts than frames");
        }
        while let Some(victim) = lirs.pick_victim(&mut NoBitsProbe) {
            assert_eq!(Some(victim), model.pick(), "seed {seed}: draining");
        }
        assert_eq!(model.pick(), None, "seed {seed}: both drained");
        assert_eq!(lirs.set_sizes(), (0, 0, 0), "seed {seed}: S emptied with the last page");
    }
}

/// On random strings OPT stays the floor and LIRS evicts only resident pages
/// (`simulate` panics otherwise).
#[test]
fn lirs_never_beats_opt_on_random_strings() {
    let mut rng = XorShift(99);
    for _ in 0..60 {
        let pages: Vec<u64> = (0..400).map(|_| rng.below(30)).collect();
        let refs = reads(&pages);
        for nr_frames in [1, 2, 5, 10, 20, 29] {
            let lirs = simulate(&mut Lirs::new(), nr_frames, &refs).faults;
            let opt = simulate(&mut Opt::new(&refs), nr_frames, &refs).faults;
            assert!(opt <= lirs, "{nr_frames} frames: OPT {opt} > LIRS {lirs}");
        }
    }
}
