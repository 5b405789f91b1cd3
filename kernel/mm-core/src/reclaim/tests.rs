//! Tests of the replacement policies: the textbook strings, hand-checked clock
//! sweeps, and OPT as a lower bound on random strings.

use super::*;
use std::boxed::Box;
use std::collections::BTreeSet as StdBTreeSet;
use std::vec;
use std::vec::Vec;
use crate::xorshift::XorShift;

/// The classic string from Belady, Nelson and Shedler (1969) that shows the anomaly.
const BELADY: [u64; 12] = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5];

/// Returns the number of faults `policy` takes on `refs` with `nr_frames` frames.
fn faults(mut policy: impl ReplacementPolicy, nr_frames: usize, refs: &[PageRef]) -> u64 {
    simulate(&mut policy, nr_frames, refs).faults
}

/// Returns a policy that has had `pages` inserted in order.
fn loaded<P: ReplacementPolicy>(mut policy: P, pages: &[u64]) -> P {
    for &page in pages {
        policy.on_insert(page);
    }
    policy
}

/// Returns every policy usable without knowing the future, freshly made.
fn online_policies() -> Vec<Box<dyn ReplacementPolicy>> {
    vec![
        Box::new(Fifo::new()),
        Box::new(Clock::second_chance()),
        Box::new(Clock::enhanced()),
        Box::new(Lru::new()),
        Box::new(LruApprox::new()),
        Box::new(Random::new(1)),
        Box::new(TwoHandClock::new(2)),
        Box::new(ActiveInactive::new()),
        Box::new(TwoQueue::new()),
        Box::new(SegmentedFifo::new()),
        Box::new(Lirs::new()),
        Box::new(ClockPro::new()),
    ]
}

#[test]
fn fifo_shows_beladys_anomaly_on_the_classic_string() {
    let refs = reads(&BELADY);
    assert_eq!(faults(Fifo::new(), 3, &refs), 9);
    assert_eq!(faults(Fifo::new(), 4, &refs), 10, "one more frame, one more fault");
}

#[test]
fn opt_on_the_classic_string_faults_7_and_6() {
    let refs = reads(&BELADY);
    assert_eq!(faults(Opt::new(&refs), 3, &refs), 7);
    assert_eq!(faults(Opt::new(&refs), 4, &refs), 6);
}

#[test]
fn lru_on_the_classic_string_faults_10_and_8() {
    let refs = reads(&BELADY);
    assert_eq!(faults(Lru::new(), 3, &refs), 10);
    assert_eq!(faults(Lru::new(), 4, &refs), 8, "LRU is a stack algorithm: no anomaly");
}

#[test]
fn clock_gives_referenced_pages_a_second_chance() {
    let mut clock = loaded(Clock::second_chance(), &[1, 2, 3]);
    let mut probe = HandBits::new(&[1, 3], &[]);
    // Hand at 1: referenced, cleared, passed over; 2 is unreferenced and goes.
    assert_eq!(clock.pick_victim(&mut probe), Some(2));
    assert!(!probe.referenced.contains(&1), "the second chance used up 1's bit");
    // The hand continues at 3: referenced, cleared; then 1, now unreferenced, goes.
    assert_eq!(clock.pick_victim(&mut probe), Some(1));
    assert_eq!(clock.pick_victim(&mut probe), Some(3));
    assert_eq!(clock.pick_victim(&mut probe), None);
}

#[test]
fn clock_with_every_page_referenced_degenerates_to_fifo() {
    let mut clock = loaded(Clock::second_chance(), &[7, 8, 9]);
    let mut probe = HandBits::new(&[7, 8, 9], &[]);
    assert_eq!(clock.pick_victim(&mut probe), Some(7));
    assert!(probe.referenced.is_empty(), "one full revolution cleared every bit");
}

#[test]
fn clock_keeps_a_re_referenced_page_that_fifo_evicts() {
    // 3 frames. After 1,2,3 the clock's first sweep (at 4) clears every bit and takes
    // 1. The hit on 2 sets its bit again, so at 5 the hand passes over 2 and takes 3,
    // and the final 2 hits. FIFO evicts 2 at 5 and faults on it again.
    let refs = reads(&[1, 2, 3, 1, 4, 2, 5, 2]);
    let clock = simulate(&mut Clock::second_chance(), 3, &refs);
    assert_eq!((clock.faults, clock.hits, clock.evictions), (5, 3, 2));
    assert_eq!(faults(Fifo::new(), 3, &refs), 6);
}

#[test]
fn enhanced_clock_prefers_an_unreferenced_clean_page() {
    let mut clock = loaded(Clock::enhanced(), &[1, 2, 3]);
    let mut probe = HandBits::new(&[], &[1]);
    assert_eq!(clock.pick_victim(&mut probe), Some(2), "1 is dirty; 2 is class (0, 0)");
}

#[test]
fn enhanced_clock_takes_unreferenced_dirty_before_referenced_clean() {
    let mut clock = loaded(Clock::enhanced(), &[1, 2, 3]);
    let mut probe = HandBits::new(&[1, 2], &[3]);
    assert_eq!(clock.pick_victim(&mut probe), Some(3));
    assert!(probe.referenced.is_empty(), "the second sweep cleared the bits it passed");
}

#[test]
fn enhanced_clock_finds_a_victim_when_all_pages_are_referenced() {
    let mut clock = loaded(Clock::enhanced(), &[1, 2, 3]);
    let mut probe = HandBits::new(&[1, 2, 3], &[1, 3]);
    assert_eq!(clock.pick_victim(&mut probe), Some(2), "after clearing, clean 2 is class (0, 0)");
    let mut all_dirty = HandBits::new(&[1, 3], &[1, 3]);
    assert_eq!(clock.pick_victim(&mut all_dirty), Some(3), "the hand had moved on to 3");
}

#[test]
fn enhanced_clock_writes_back_less_than_plain_clock_here() {
    // Page 1 is written and then read often; pages 2.. are streamed through once.
    let mut refs = vec![PageRef::write(1)];
    for page in 2..40 {
        refs.push(PageRef::read(page));
        refs.push(PageRef::read(1));
    }
    let plain = simulate(&mut Clock::second_chance(), 3, &refs);
    let enhanced = simulate(&mut Clock::enhanced(), 3, &refs);
    assert_eq!(enhanced.dirty_writebacks, 0);
    assert!(enhanced.faults <= plain.faults);
}

#[test]
fn aging_evicts_the_page_with_the_oldest_history() {
    let mut aging = loaded(LruApprox::new(), &[1, 2, 3]);
    aging.on_tick(&mut HandBits::new(&[2], &[])); // 1: 0x40, 2: 0xc0, 3: 0x40
    aging.on_tick(&mut HandBits::new(&[3], &[])); // 1: 0x20, 2: 0x60, 3: 0xa0
    let mut no_bits = HandBits::default();
    assert_eq!(aging.pick_victim(&mut no_bits), Some(1));
    assert_eq!(aging.pick_victim(&mut no_bits), Some(2));
    assert_eq!(aging.pick_victim(&mut no_bits), Some(3));
}

#[test]
fn aging_breaks_ties_oldest_arrival_first() {
    let mut aging = loaded(LruApprox::new(), &[5, 4, 6]);
    assert_eq!(aging.pick_victim(&mut HandBits::default()), Some(5));
}

#[test]
fn removed_pages_are_never_picked() {
    for mut policy in online_policies() {
        for page in 1..=6 {
            policy.on_insert(page);
        }
        policy.on_insert(3); // a duplicate is ignored
        policy.on_remove(3);
        policy.on_remove(42); // an unknown page is ignored
        assert_eq!(policy.nr_tracked(), 5, "{}", policy.name());
        let mut probe = HandBits::new(&[1, 2], &[2, 4]);
        let victims: StdBTreeSet<u64> = core::iter::from_fn(|| policy.pick_victim(&mut probe)).collect();
        assert_eq!(victims, [1, 2, 4, 5, 6].into_iter().collect(), "{}", policy.name());
        assert_eq!(policy.nr_tracked(), 0);
    }
}

#[test]
fn a_page_handed_back_after_picking_is_tracked_again() {
    let mut clock = loaded(Clock::second_chance(), &[1, 2]);
    let mut probe = HandBits::default();
    let victim = clock.pick_victim(&mut probe).unwrap();
    clock.on_insert(victim);
    assert_eq!(clock.nr_tracked(), 2);
    assert_eq!(clock.pick_victim(&mut probe), Some(3 - victim), "the returned page is now the newest");
}

#[test]
fn dirty_writebacks_count_only_dirty_victims() {
    let refs = [PageRef::write(1), PageRef::read(2), PageRef::read(3), PageRef::write(3), PageRef::read(4)];
    let result = simulate(&mut Fifo::new(), 1, &refs);
    assert_eq!(result, SimResult { faults: 4, hits: 1, evictions: 3, dirty_writebacks: 2, rescues: 0 });
}

#[test]
fn zero_frames_fault_on_every_reference() {
    let refs = reads(&BELADY);
    let result = simulate(&mut Fifo::new(), 0, &refs);
    assert_eq!(result, SimResult { faults: 12, ..SimResult::default() });
}


/// Returns a random string over `nr_pages` pages that mostly stays near its last page.
fn random_refs(rng: &mut XorShift, nr_pages: u64, len: usize) -> Vec<PageRef> {
    let mut page = 0;
    (0..len)
        .map(|_| {
            page = if rng.below(4) == 0 { rng.below(nr_pages) } else { (page + rng.below(3)) % nr_pages };
            PageRef { page, is_write: rng.below(3) == 0 }
        })
        .collect()
}

#[test]
fn opt_never_faults_more_than_any_policy_on_random_strings() {
    let mut rng = XorShift(0x5851_f42d_4c95_7f2d);
    for _ in 0..200 {
        let nr_pages = 2 + rng.below(12);
        let len = 1 + rng.below(300) as usize;
        let refs = random_refs(&mut rng, nr_pages, len);
        for nr_frames in 1..=8 {
            let mut opt = Opt::new(&refs);
            let best = simulate(&mut opt, nr_frames, &refs);
            for mut policy in online_policies() {
                let result = simulate(policy.as_mut(), nr_frames, &refs);
                assert!(best.faults <= result.faults, "{} beat opt with {nr_frames} frames", policy.name());
                assert_eq!(result.faults + result.hits, refs.len() as u64);
                assert_eq!(result.faults, result.evictions + policy.nr_tracked() as u64, "{}", policy.name());
                assert!(result.dirty_writebacks <= result.evictions);
            }
        }
    }
}

#[test]
fn ring_stays_one_cycle_under_random_inserts_and_removes() {
    let mut rng = XorShift(0x27bb_2ee6_87b0_b0fd);
    let mut ring = Ring::new(VecLinks::default());
    let mut model: StdBTreeSet<u64> = StdBTreeSet::new();
    for _ in 0..5000 {
        let page = rng.below(16);
        match rng.below(4) {
            0 => {
                ring.insert_behind_hand(page, 0);
                model.insert(page);
            }
            1 => {
                ring.remove(page);
                model.remove(&page);
            }
            2 => ring.advance(),
            _ => {
                let taken = ring.take_at_hand();
                assert_eq!(taken.is_some(), !model.is_empty());
                if let Some(taken) = taken {
                    assert!(model.remove(&taken), "took an untracked page");
                }
            }
        }
        ring.check_invariants().expect("one cycle");
        assert_eq!(ring.len(), model.len());
        for page in 0..16 {
            assert_eq!(ring.contains(page), model.contains(&page), "page {page}");
        }
    }
}

/// munmap's batch (`Ring::remove_all`, `on_remove_all`) leaves the ring exactly as
/// the same removals one by one do: same pages, same order from the hand, absent
/// and repeated pages ignored, the hand moved on when its page goes.
#[test]
fn ring_remove_all_is_remove_one_by_one() {
    let mut rng = XorShift(0x5eed_0fba_7c4e_5001);
    for _ in 0..300 {
        let (mut one_by_one, mut batched) = (Ring::new(VecLinks::default()), Ring::new(VecLinks::default()));
        for _ in 0..rng.below(24) {
            let page = rng.below(32);
            one_by_one.insert_behind_hand(page, 0);
            batched.insert_behind_hand(page, 0);
        }
        for _ in 0..rng.below(8) {
            one_by_one.advance();
            batched.advance();
        }
        let gone: Vec<u64> = (0..rng.below(20)).map(|_| rng.below(40)).collect();
        gone.iter().for_each(|&page| one_by_one.remove(page));
        batched.remove_all(&gone);
        batched.check_invariants().expect("one cycle");
        assert_eq!(batched.len(), one_by_one.len());
        let order = |ring: &mut Ring<VecLinks>| {
            let mut out = [0u64; 32];
            let n = ring.pages_from_hand(&mut out);
            out[..n].to_vec()
        };
        assert_eq!(order(&mut batched), order(&mut one_by_one), "removed {gone:?}");
    }
    let mut clock = Clock::second_chance();
    (0..10).for_each(|page| clock.on_insert(page));
    clock.on_remove_all(&[3, 3, 99, 0, 9]);
    assert_eq!(clock.nr_tracked(), 7);
    assert!(!clock.is_tracked(3) && !clock.is_tracked(0) && clock.is_tracked(1));
}

/// A store with a fixed number of slots, like the frame table: it cannot grow, so a
/// policy that needed any other memory per page could not use it.
struct FixedLinks {
    slots: [(u64, u64, u8, bool); 64],
}

impl RingStore for FixedLinks {
    type Links<'a> = &'a mut FixedLinks;
    fn open(&mut self) -> &mut FixedLinks {
        self
    }
}

impl RingLinks for FixedLinks {
    fn links(&self, page: u64) -> Option<(u64, u64)> {
        let (prev, next, _, is_linked) = self.slots[page as usize];
        is_linked.then_some((prev, next))
    }
    fn set_links(&mut self, page: u64, prev: u64, next: u64) {
        let slot = &mut self.slots[page as usize];
        (slot.0, slot.1, slot.3) = (prev, next, true);
    }
    fn clear_links(&mut self, page: u64) {
        self.slots[page as usize] = (0, 0, 0, false);
    }
    fn age(&self, page: u64) -> u8 {
        self.slots[page as usize].2
    }
    fn set_age(&mut self, page: u64, age: u8) {
        self.slots[page as usize].2 = age;
    }
}

#[test]
fn policies_keep_everything_in_a_fixed_per_page_store() {
    let fixed = || FixedLinks { slots: [(0, 0, 0, false); 64] };
    let policies: Vec<Box<dyn ReplacementPolicy>> = vec![
        Box::new(Fifo::with_links(fixed())),
        Box::new(Clock::with_links(fixed(), false)),
        Box::new(Clock::with_links(fixed(), true)),
        Box::new(LruApprox::with_links(fixed())),
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let refs = random_refs(&mut rng, 64, 3000);
    for mut policy in policies {
        let mut reference = match policy.name() {
            "fifo" => Box::new(Fifo::new()) as Box<dyn ReplacementPolicy>,
            "clock" => Box::new(Clock::second_chance()),
            "enhanced-clock" => Box::new(Clock::enhanced()),
            _ => Box::new(LruApprox::new()),
        };
        let fixed_result = simulate(policy.as_mut(), 16, &refs);
        assert_eq!(fixed_result, simulate(reference.as_mut(), 16, &refs), "{}: the store changed the choices", policy.name());
        assert_eq!(policy.nr_tracked(), 16);
    }
}

#[test]
fn a_single_page_ring_links_to_itself_and_empties() {
    let mut ring = Ring::new(VecLinks::default());
    ring.insert_behind_hand(7, 0);
    assert_eq!(ring.next_of(7), 7);
    ring.insert_behind_hand(3, 0);
    assert_eq!((ring.next_of(7), ring.next_of(3)), (3, 7));
    assert_eq!(ring.take_at_hand(), Some(7));
    assert_eq!(ring.next_of(3), 3);
    assert_eq!(ring.take_at_hand(), Some(3));
    assert!(ring.is_empty() && !ring.contains(3) && ring.hand_page().is_none());
    ring.check_invariants().expect("empty ring");
}

#[test]
fn is_tracked_follows_insert_remove_and_eviction() {
    for mut policy in online_policies() {
        let name = policy.name();
        for page in [3, 1, 4, 15, 9] {
            policy.on_insert(page);
        }
        policy.on_remove(4);
        let victim = policy.pick_victim(&mut HandBits::default()).expect("a victim");
        for page in [3, 1, 4, 15, 9, 2] {
            let want = ![4, 2, victim].contains(&page);
            assert_eq!(policy.is_tracked(page), want, "{name}: page {page} (victim {victim})");
        }
        assert_eq!(policy.nr_tracked(), 3, "{name}");
    }
}

/// With no Accessed or Dirty bit set, the pages a policy names as its upcoming
/// victims are exactly the ones it then picks, in that order; naming them changes
/// nothing (asked twice, the same answer; the same pages tracked).
#[test]
fn upcoming_victims_are_the_next_picks_when_no_page_is_used() {
    let pages: Vec<u64> = (1..=12).collect();
    let mut aged = loaded(LruApprox::new(), &pages);
    for _ in 0..8 {
        aged.on_tick(&mut NoBitsProbe); // every age shifts down to 0: all equally old
    }
    let policies: Vec<Box<dyn ReplacementPolicy>> = vec![
        Box::new(loaded(Fifo::new(), &pages)),
        Box::new(loaded(Clock::second_chance(), &pages)),
        Box::new(loaded(Clock::enhanced(), &pages)),
        Box::new(loaded(TwoHandClock::new(3), &pages)),
        Box::new(loaded(ActiveInactive::new(), &pages)),
        Box::new(loaded(TwoQueue::new(), &pages)),
        Box::new(loaded(SegmentedFifo::new(), &pages)),
        Box::new(aged),
    ];
    for mut policy in policies {
        let mut upcoming = [0u64; 5];
        let nr_upcoming = policy.upcoming_victims(&mut upcoming);
        let mut again = [0u64; 5];
        assert_eq!(policy.upcoming_victims(&mut again), nr_upcoming, "{}", policy.name());
        assert_eq!(again, upcoming, "{}: asking twice gave two answers", policy.name());
        assert_eq!(policy.nr_tracked(), pages.len(), "{}", policy.name());
        assert_eq!(nr_upcoming, 5, "{}", policy.name());
        let picks: Vec<u64> = (0..5).map(|_| policy.pick_victim(&mut NoBitsProbe).unwrap()).collect();
        assert_eq!(picks, upcoming.to_vec(), "{}: upcoming victims are not the next picks", policy.name());
    }
}

/// A policy with fewer pages than asked for names each once; an empty one none.
#[test]
fn upcoming_victims_name_each_tracked_page_at_most_once() {
    let mut random = loaded(Random::new(7), &[4, 5, 6]);
    let mut out = [0u64; 8];
    assert_eq!(random.upcoming_victims(&mut out), 3);
    let mut named = out[..3].to_vec();
    named.sort_unstable();
    assert_eq!(named, [4, 5, 6]);
    assert_eq!(Fifo::new().upcoming_victims(&mut out), 0);
    assert_eq!(Opt::new(&[]).upcoming_victims(&mut out), 0, "OPT cannot say without the future");
}

/// FIFO and random evict a used page all the same; the others give it a second
/// chance, so the cleaner need not clean it ahead.
#[test]
fn only_fifo_and_random_evict_used_pages_regardless() {
    for policy in online_policies() {
        let expected = !matches!(policy.name(), "fifo" | "random" | "lru");
        if matches!(policy.name(), "lru" | "lirs") {
            continue; // exact LRU and LIRS are simulation only: they see every access
        }
        assert_eq!(policy.spares_referenced_pages(), expected, "{}", policy.name());
    }
    let mut clock = loaded(Clock::second_chance(), &[1, 2, 3]);
    let mut probe = HandBits::new(&[1], &[]);
    assert_eq!(clock.pick_victim(&mut probe), Some(2), "the used page 1 is spared");
    let mut fifo = loaded(Fifo::new(), &[1, 2, 3]);
    assert_eq!(fifo.pick_victim(&mut HandBits::new(&[1], &[])), Some(1), "FIFO takes it all the same");
}
