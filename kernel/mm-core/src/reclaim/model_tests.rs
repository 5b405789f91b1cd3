//! Randomized tests of the kernel-usable policies against reference models, and
//! hand-made strings with known answers for the newer ones; OPT against a brute
//! force search of every eviction choice.
//!
//! Each model keeps its lists in `VecDeque`s (front = oldest, or the hand) and says
//! the policy's rule in the plainest way, with no ring, store or hand to get wrong.
//! A driver feeds the same random inserts, removes and picks (with the same random
//! Accessed and Dirty bits) to the policy and its model and compares the victims,
//! the counts and which bits each cleared.

use super::*;
use crate::xorshift::XorShift;
use std::boxed::Box;
use std::collections::{BTreeSet, VecDeque};
use std::vec;
use std::vec::Vec;

/// Removes `page` from `list` if there; returns true if it was.
fn remove_from(list: &mut VecDeque<u64>, page: u64) -> bool {
    match list.iter().position(|&p| p == page) {
        Some(at) => {
            list.remove(at);
            true
        }
        None => false,
    }
}

/// A model: the operations of [`ReplacementPolicy`] the driver uses.
trait Model {
    fn insert(&mut self, page: u64);
    fn remove(&mut self, page: u64);
    fn pick(&mut self, probe: &mut HandBits) -> Option<u64>;
    fn len(&self) -> usize;
}

/// FIFO: the front is the oldest.
#[derive(Default)]
struct FifoModel(VecDeque<u64>);

impl Model for FifoModel {
    fn insert(&mut self, page: u64) {
        if !self.0.contains(&page) {
            self.0.push_back(page);
        }
    }
    fn remove(&mut self, page: u64) {
        remove_from(&mut self.0, page);
    }
    fn pick(&mut self, _probe: &mut HandBits) -> Option<u64> {
        self.0.pop_front()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Random: the k-th page from the front, k drawn from the same generator.
struct RandomModel(FifoModel, XorShift);

impl Model for RandomModel {
    fn insert(&mut self, page: u64) {
        self.0.insert(page);
    }
    fn remove(&mut self, page: u64) {
        self.0.remove(page);
    }
    fn pick(&mut self, _probe: &mut HandBits) -> Option<u64> {
        if self.0.0.is_empty() {
            return None;
        }
        let at = self.1.below(self.0.0.len() as u64) as usize;
        self.0.0.remove(at)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Clocks: the front is the page under the (back) hand; moving on rotates.
struct ClockModel {
    ring: FifoModel,
    kind: ClockKind,
}

enum ClockKind {
    SecondChance,
    Enhanced,
    TwoHand(usize),
}

impl ClockModel {
    fn rotate(&mut self) {
        let page = self.ring.0.pop_front().unwrap();
        self.ring.0.push_back(page);
    }
}

impl Model for ClockModel {
    fn insert(&mut self, page: u64) {
        self.ring.insert(page);
    }
    fn remove(&mut self, page: u64) {
        self.ring.remove(page);
    }
    fn pick(&mut self, probe: &mut HandBits) -> Option<u64> {
        let n = self.ring.0.len();
        if n == 0 {
            return None;
        }
        match self.kind {
            ClockKind::SecondChance => {
                while probe.referenced.remove(&self.ring.0[0]) {
                    self.rotate();
                }
                self.ring.0.pop_front()
            }
            ClockKind::Enhanced => {
                // One revolution: the first (0, 0), clearing referenced pages as passed.
                // Else the first (0, 1) seen, once DIRTY_LOOKAHEAD more (0, 1) were passed,
                // or at the end of the revolution it was found in; else go on.
                let mut dirty_seen: Vec<u64> = Vec::new();
                let mut found_in_first_round = false;
                for step in 0..=2 * n {
                    if step >= n && found_in_first_round {
                        break;
                    }
                    let page = self.ring.0[0];
                    if probe.referenced.remove(&page) {
                        self.rotate();
                    } else if !probe.dirty.contains(&page) {
                        return self.ring.0.pop_front();
                    } else {
                        found_in_first_round |= dirty_seen.is_empty() && step < n;
                        dirty_seen.push(page);
                        if dirty_seen.len() > DIRTY_LOOKAHEAD {
                            break;
                        }
                        self.rotate();
                    }
                }
                let victim = dirty_seen.first().copied().unwrap_or(self.ring.0[0]);
                remove_from(&mut self.ring.0, victim);
                Some(victim)
            }
            ClockKind::TwoHand(spread) => {
                let mut front = spread.min(n - 1);
                loop {
                    probe.referenced.remove(&self.ring.0[front]);
                    front = (front + 1) % n;
                    if !probe.referenced.contains(&self.ring.0[0]) {
                        return self.ring.0.pop_front();
                    }
                    self.rotate();
                    front = (front + n - 1) % n;
                }
            }
        }
    }
    fn len(&self) -> usize {
        self.ring.len()
    }
}

/// Active and inactive lists, with the set of inactive pages marked referenced.
#[derive(Default)]
struct ActiveInactiveModel {
    active: VecDeque<u64>,
    inactive: VecDeque<u64>,
    marked: BTreeSet<u64>,
}

impl Model for ActiveInactiveModel {
    fn insert(&mut self, page: u64) {
        if !self.active.contains(&page) && !self.inactive.contains(&page) {
            self.inactive.push_back(page);
        }
    }
    fn remove(&mut self, page: u64) {
        remove_from(&mut self.active, page);
        remove_from(&mut self.inactive, page);
        self.marked.remove(&page);
    }
    fn pick(&mut self, probe: &mut HandBits) -> Option<u64> {
        loop {
            let mut rotations_left = self.active.len();
            while self.active.len() > ACTIVE_PER_INACTIVE * self.inactive.len() {
                let page = self.active.pop_front().unwrap();
                if probe.referenced.remove(&page) && rotations_left > 0 {
                    rotations_left -= 1;
                    self.active.push_back(page);
                } else {
                    self.inactive.push_back(page);
                }
            }
            let page = self.inactive.pop_front()?;
            if !probe.referenced.remove(&page) {
                self.marked.remove(&page);
                return Some(page);
            }
            if self.marked.remove(&page) {
                self.active.push_back(page);
            } else {
                self.marked.insert(page);
                self.inactive.push_back(page);
            }
        }
    }
    fn len(&self) -> usize {
        self.active.len() + self.inactive.len()
    }
}

/// 2Q: A1 (probation, with the set of pages seen once) and Am (a clock).
#[derive(Default)]
struct TwoQueueModel {
    probation: VecDeque<u64>,
    seen: BTreeSet<u64>,
    main: VecDeque<u64>,
}

impl Model for TwoQueueModel {
    fn insert(&mut self, page: u64) {
        if !self.probation.contains(&page) && !self.main.contains(&page) {
            self.probation.push_back(page);
        }
    }
    fn remove(&mut self, page: u64) {
        remove_from(&mut self.probation, page);
        remove_from(&mut self.main, page);
        self.seen.remove(&page);
    }
    fn pick(&mut self, probe: &mut HandBits) -> Option<u64> {
        loop {
            let share = (self.len() / PROBATION_SHARE).max(1);
            if self.probation.len() <= share && !self.main.is_empty() {
                let page = self.main.pop_front().unwrap();
                if !probe.referenced.remove(&page) {
                    return Some(page);
                }
                self.main.push_back(page);
                continue;
            }
            let page = self.probation.pop_front()?;
            let was_used = probe.referenced.remove(&page);
            if !self.seen.contains(&page) {
                self.seen.insert(page);
                self.probation.push_back(page);
            } else if was_used {
                self.seen.remove(&page);
                self.main.push_back(page);
            } else {
                self.seen.remove(&page);
                return Some(page);
            }
        }
    }
    fn len(&self) -> usize {
        self.probation.len() + self.main.len()
    }
}

/// The FIFO and its clean and dirty second-chance lists.
#[derive(Default)]
struct SegmentedFifoModel {
    fifo: VecDeque<u64>,
    clean: VecDeque<u64>,
    dirty: VecDeque<u64>,
}

impl SegmentedFifoModel {
    fn fill(&mut self, probe: &mut HandBits) {
        let target = (self.len() / SECOND_CHANCE_SHARE).max(1);
        while self.clean.len() + self.dirty.len() < target {
            let Some(page) = self.fifo.pop_front() else { break };
            probe.referenced.remove(&page);
            let list = if probe.dirty.contains(&page) { &mut self.dirty } else { &mut self.clean };
            list.push_back(page);
        }
    }
}

impl Model for SegmentedFifoModel {
    fn insert(&mut self, page: u64) {
        if ![&self.fifo, &self.clean, &self.dirty].iter().any(|list| list.contains(&page)) {
            self.fifo.push_back(page);
        }
    }
    fn remove(&mut self, page: u64) {
        for list in [&mut self.fifo, &mut self.clean, &mut self.dirty] {
            remove_from(list, page);
        }
    }
    fn pick(&mut self, probe: &mut HandBits) -> Option<u64> {
        loop {
            if self.clean.is_empty() && self.dirty.is_empty() {
                self.fill(probe);
            }
            let list = if !self.clean.is_empty() {
                &mut self.clean
            } else if !self.dirty.is_empty() {
                &mut self.dirty
            } else {
                return self.fifo.pop_front();
            };
            let page = list.pop_front().unwrap();
            if !probe.referenced.remove(&page) {
                self.fill(probe);
                return Some(page);
            }
            self.fifo.push_back(page);
        }
    }
    fn len(&self) -> usize {
        self.fifo.len() + self.clean.len() + self.dirty.len()
    }
}

/// Runs the same random operations on `policy` and `model` and compares them.
fn compare_with_model(mut policy: Box<dyn ReplacementPolicy>, mut model: Box<dyn Model>, seed: u64) {
    let name = policy.name();
    let mut rng = XorShift(seed);
    let mut probe = HandBits::default();
    for step in 0..3000 {
        let page = rng.below(24);
        match rng.below(10) {
            0..=4 => {
                policy.on_insert(page);
                model.insert(page);
            }
            5 => {
                policy.on_remove(page);
                model.remove(page);
            }
            _ => {
                for page in 0..24 {
                    if rng.below(3) == 0 {
                        probe.referenced.insert(page);
                    }
                    if rng.below(4) == 0 {
                        probe.dirty.insert(page);
                    } else if rng.below(4) == 0 {
                        probe.dirty.remove(&page);
                    }
                }
                let mut model_probe = probe.clone();
                let victim = policy.pick_victim(&mut probe);
                assert_eq!(victim, model.pick(&mut model_probe), "{name}, seed {seed}, step {step}: victims differ");
                assert_eq!(probe, model_probe, "{name}, seed {seed}, step {step}: different bits cleared");
            }
        }
        assert_eq!(policy.nr_tracked(), model.len(), "{name}, seed {seed}, step {step}");
    }
}

#[test]
fn every_kernel_policy_agrees_with_its_reference_model_on_random_operations() {
    for seed in 1..=12 {
        let clock = |kind| Box::new(ClockModel { ring: FifoModel::default(), kind });
        compare_with_model(Box::new(Fifo::new()), Box::new(FifoModel::default()), seed);
        compare_with_model(Box::new(Random::new(seed)), Box::new(RandomModel(FifoModel::default(), XorShift(seed))), seed);
        compare_with_model(Box::new(Clock::second_chance()), clock(ClockKind::SecondChance), seed);
        compare_with_model(Box::new(Clock::enhanced()), clock(ClockKind::Enhanced), seed);
        for spread in [0, 1, 3, 8, 100] {
            compare_with_model(Box::new(TwoHandClock::new(spread)), clock(ClockKind::TwoHand(spread)), seed);
        }
        compare_with_model(Box::new(ActiveInactive::new()), Box::new(ActiveInactiveModel::default()), seed);
        compare_with_model(Box::new(SegmentedFifo::new()), Box::new(SegmentedFifoModel::default()), seed);
        compare_with_model(Box::new(TwoQueue::new()), Box::new(TwoQueueModel::default()), seed);
    }
}

/// Returns the fewest faults any sequence of eviction choices takes on `pages`
/// with `nr_frames` frames, trying them all.
fn brute_force_min_faults(pages: &[u64], nr_frames: usize, resident: &mut Vec<u64>) -> u64 {
    let Some((&page, rest)) = pages.split_first() else { return 0 };
    if resident.contains(&page) {
        return brute_force_min_faults(rest, nr_frames, resident);
    }
    if resident.len() < nr_frames {
        resident.push(page);
        let faults = 1 + brute_force_min_faults(rest, nr_frames, resident);
        resident.pop();
        return faults;
    }
    let mut best = u64::MAX;
    for at in 0..resident.len() {
        let evicted = core::mem::replace(&mut resident[at], page);
        best = best.min(1 + brute_force_min_faults(rest, nr_frames, resident));
        resident[at] = evicted;
    }
    best
}

#[test]
fn opt_matches_a_brute_force_search_on_small_strings() {
    let mut rng = XorShift(7);
    for _ in 0..300 {
        let len = 1 + rng.below(11) as usize;
        let nr_pages = 1 + rng.below(5);
        let pages: Vec<u64> = (0..len).map(|_| rng.below(nr_pages)).collect();
        let refs = reads(&pages);
        for nr_frames in 1..=4 {
            let opt = simulate(&mut Opt::new(&refs), nr_frames, &refs).faults;
            assert_eq!(opt, brute_force_min_faults(&pages, nr_frames, &mut Vec::new()), "{pages:?}, {nr_frames} frames");
        }
    }
}

#[test]
fn two_handed_clock_evicts_a_page_reused_after_the_front_hand_passed_only_if_not_reused() {
    // Pages 1..=6, hands 2 apart: the front hand starts at 3.
    let mut clock = TwoHandClock::new(2);
    for page in 1..=6 {
        clock.on_insert(page);
    }
    // All referenced. Step 1: front clears 3; back at 1 (still set) moves on.
    // Step 2: front clears 4; back at 2 (set) moves on. Step 3: front clears 5;
    // back at 3, cleared two steps ago: the victim. 1 and 2 keep their bits.
    let mut probe = HandBits::new(&[1, 2, 3, 4, 5, 6], &[]);
    assert_eq!(clock.pick_victim(&mut probe), Some(3));
    assert_eq!(probe.referenced, [1, 2, 6].into_iter().collect());
    // 4 is used again after the front hand cleared it: the back hand spares it
    // and takes 5. The front hand (placed 2 ahead of 4: at 6) clears 6, then 1.
    probe.referenced.insert(4);
    assert_eq!(clock.pick_victim(&mut probe), Some(5));
    assert_eq!(probe.referenced, [2, 4].into_iter().collect());
}

#[test]
fn two_handed_clock_with_no_spread_is_fifo_and_with_a_full_spread_is_the_clock() {
    let mut rng = XorShift(3);
    let refs: Vec<PageRef> = (0..400).map(|_| PageRef::read(rng.below(4) + 4 * rng.below(2) * rng.below(3))).collect();
    for nr_frames in 2..6 {
        let fifo = simulate(&mut Fifo::new(), nr_frames, &refs);
        assert_eq!(simulate(&mut TwoHandClock::new(0), nr_frames, &refs), fifo);
    }
    let belady = reads(&[1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5]);
    assert_eq!(simulate(&mut TwoHandClock::new(0), 4, &belady).faults, 10, "FIFO's anomaly, two hands at one place");
}

#[test]
fn active_inactive_promotes_on_the_second_reference_only() {
    let mut lists = ActiveInactive::new();
    for page in [1, 2, 3, 4] {
        lists.on_insert(page);
    }
    // 1 and 2 used once (the fault) and again: the first pass marks them and they
    // go round; 3 unused is the victim.
    let mut probe = HandBits::new(&[1, 2], &[]);
    assert_eq!(lists.pick_victim(&mut probe), Some(3));
    assert_eq!(lists.list_sizes(), (0, 3), "marked, not promoted");
    // 1, 2 and 4 used: 4 is marked and goes round; 1 and 2, marked before, are
    // promoted. Active (2) now outnumbers inactive (1): aging deactivates 1, whose
    // bit the promotion cleared. 4's bit was cleared when it went round: it goes.
    let mut probe = HandBits::new(&[1, 2, 4], &[]);
    assert_eq!(lists.pick_victim(&mut probe), Some(4));
    assert_eq!(lists.nr_moves(), (2, 1));
    assert_eq!(lists.list_sizes(), (1, 1));
    // Nothing used: 1 (inactive) goes, then 2 after aging deactivates it.
    assert_eq!(lists.pick_victim(&mut HandBits::new(&[], &[])), Some(1));
    assert_eq!(lists.pick_victim(&mut HandBits::new(&[], &[])), Some(2));
    assert_eq!(lists.nr_tracked(), 0);
}

#[test]
fn active_inactive_survives_a_scan_that_evicts_the_clock_s_hot_pages() {
    // Hot pages 0..4 used over and over, then a long scan read once: the scan's
    // pages sit in the inactive list and go first, so the hot pages stay.
    let mut refs = Vec::new();
    for round in 0..30 {
        for hot in 0..4 {
            refs.push(PageRef::read(hot));
        }
        for cold in 0..3 {
            refs.push(PageRef::read(100 + round * 3 + cold));
        }
    }
    // The first rounds promote the hot pages (each needs two references seen by
    // reclaim); after that, only the cold pages fault. A simulation of a prefix is
    // the start of the whole one, so the difference counts the last 15 rounds.
    let half = refs.len() / 2;
    let lists_first_half = simulate(&mut ActiveInactive::new(), 8, &refs[..half]).faults;
    let lists = simulate(&mut ActiveInactive::new(), 8, &refs).faults;
    assert_eq!(lists - lists_first_half, 15 * 3, "only the cold pages fault in the last 15 rounds");
    let clock_first_half = simulate(&mut Clock::second_chance(), 8, &refs[..half]).faults;
    let clock = simulate(&mut Clock::second_chance(), 8, &refs).faults;
    assert!(clock - clock_first_half > 15 * 3, "the clock loses hot pages to the scan: {}", clock - clock_first_half);
}

#[test]
fn two_queue_promotes_a_page_used_on_probation_and_evicts_one_that_was_not() {
    // 64 pages: A1's share is 64 / 32 = 2. Pages 1..=64 all on probation, each
    // with the fault's own bit set.
    let mut queues = TwoQueue::new();
    for page in 1..=64 {
        queues.on_insert(page);
    }
    let all: Vec<u64> = (1..=64).collect();
    let mut probe = HandBits::new(&all, &[]);
    // First look at every page: the bit is the fault's, cleared, and each goes
    // round A1 once. Back at 1 (seen, bit now clear): the victim.
    assert_eq!(queues.pick_victim(&mut probe), Some(1));
    assert!(probe.referenced.is_empty(), "the first look cleared every fault's bit");
    // 2 and 3 used while on probation: promoted to Am; 4 was not: it goes.
    probe.referenced.extend([2, 3]);
    assert_eq!(queues.pick_victim(&mut probe), Some(4));
    assert_eq!((queues.queue_sizes(), queues.nr_promoted()), ((2, 60), 2));
    // A1 stays the victims' source while over its share (61 / 32 = 1 page): 5..=63
    // go in order even though Am holds pages never used again.
    for page in 5..=63 {
        assert_eq!(queues.pick_victim(&mut probe), Some(page));
    }
    // A1 holds 64 alone, at its share: the victim now comes from Am's clock, where
    // 2 (used) is passed over and 3 (unused) goes.
    probe.referenced.insert(2);
    assert_eq!(queues.pick_victim(&mut probe), Some(3));
    assert_eq!(queues.queue_sizes(), (1, 1));
}

#[test]
fn two_queue_keeps_frequent_pages_that_the_lists_and_the_clock_lose_to_rare_ones() {
    // 40 frequent pages, each used with probability 1/50 per reference (80 % of
    // references), and 400 rare ones (20 %), drawn independently: the shape of
    // the recorded `thrash`. 48 frames hold the frequent set; OPT and 2Q keep it,
    // recency-ranking policies let the rare pages (most of the faults) push it out.
    let mut rng = XorShift(7);
    let refs: Vec<PageRef> = (0..40_000)
        .map(|_| PageRef::read(if rng.below(10) < 8 { rng.below(40) } else { 40 + rng.below(400) }))
        .collect();
    let opt = simulate(&mut Opt::new(&refs), 48, &refs).faults;
    let two_queue = simulate(&mut TwoQueue::new(), 48, &refs).faults;
    let lists = simulate(&mut ActiveInactive::new(), 48, &refs).faults;
    let clock = simulate(&mut Clock::second_chance(), 48, &refs).faults;
    assert!(two_queue * 10 < lists * 8, "2Q {two_queue} faults at least 20 % fewer than the lists' {lists}");
    assert!(two_queue * 10 < clock * 8, "2Q {two_queue} faults at least 20 % fewer than the clock's {clock}");
    assert!(two_queue < opt * 3 / 2, "2Q {two_queue} within 1.5x of OPT's {opt}");
}

#[test]
fn segmented_fifo_rescues_a_page_used_while_on_the_second_chance_list() {
    let mut segments = SegmentedFifo::new();
    for page in 1..=8 {
        segments.on_insert(page);
    }
    // 8 pages: the lists get 2. 1 (clean) and 2 (dirty) move there, bits cleared.
    let mut probe = HandBits::new(&[1, 2, 3], &[2]);
    assert_eq!(segments.pick_victim(&mut probe), Some(1), "clean list first");
    assert_eq!(segments.list_sizes(), (6, 0, 1));
    // 2 is used while it waits: rescued to the FIFO's end, no I/O; the lists are
    // refilled (3 clean, bit cleared) and 3 goes.
    probe.referenced.insert(2);
    assert_eq!(segments.pick_victim(&mut probe), Some(3));
    assert_eq!(segments.nr_rescued(), 1);
    assert!(!probe.referenced.contains(&3), "the move to the list cleared 3's bit");
}

#[test]
fn segmented_fifo_faults_less_than_fifo_on_a_loop_slightly_larger_than_memory() {
    // A hot page written each round and a loop of reads: FIFO keeps evicting the
    // hot page; the second-chance list catches it every time.
    let mut refs = Vec::new();
    for _ in 0..20 {
        for page in 1..=6 {
            refs.push(PageRef::write(0));
            refs.push(PageRef::read(page));
        }
    }
    let segmented = simulate(&mut SegmentedFifo::new(), 5, &refs);
    let fifo = simulate(&mut Fifo::new(), 5, &refs);
    assert!(segmented.faults < fifo.faults, "segmented {} fifo {}", segmented.faults, fifo.faults);
}

#[test]
fn hand_over_moves_every_page_in_eviction_order() {
    let mut clock = Clock::second_chance();
    for page in [5, 6, 7] {
        clock.on_insert(page);
    }
    let mut lists = ActiveInactive::new();
    assert_eq!(hand_over(&mut clock, &mut lists), 3);
    assert_eq!((clock.nr_tracked(), lists.nr_tracked()), (0, 3));
    let mut fifo = Fifo::new();
    hand_over(&mut lists, &mut fifo);
    let order: Vec<u64> = core::iter::from_fn(|| fifo.pick_victim(&mut NoBitsProbe)).collect();
    assert_eq!(order, vec![5, 6, 7]);
}
