//! Tests of the TLB model: hand-worked sequences per policy, the loop that fits and
//! the stride that defeats, flush against ASIDs, and capacity under random traces.

use super::*;
use crate::build;

const PAGE: u64 = 4096;

fn config(entries: u64, ways: u64, policy: TlbPolicy, has_asids: bool) -> TlbConfig {
    TlbConfig {
        entries,
        ways,
        policy,
        has_asids,
    }
}

fn trace_of(pages: &[u64]) -> Vec<Access> {
    pages
        .iter()
        .map(|&p| Access {
            pid: 1,
            va: p * PAGE,
        })
        .collect()
}

fn outcomes(config: TlbConfig, pages: &[u64]) -> Vec<&'static str> {
    let mut seen = Vec::new();
    replay(config, PAGE, &trace_of(pages), &mut |_, outcome, _| {
        seen.push(if outcome == Outcome::Hit {
            "hit"
        } else {
            "miss"
        });
    });
    seen
}

#[test]
fn two_entries_lru_fifo_and_clock_by_hand() {
    // A B A C B: LRU evicts B for C (A was used since), FIFO evicts A (it came first).
    assert_eq!(
        outcomes(config(2, 2, TlbPolicy::Lru, false), &[0, 1, 0, 2, 1]),
        ["miss", "miss", "hit", "miss", "miss"]
    );
    assert_eq!(
        outcomes(config(2, 2, TlbPolicy::Fifo, false), &[0, 1, 0, 2, 1]),
        ["miss", "miss", "hit", "miss", "hit"]
    );
    // Clock: both lines referenced; the hand clears A, clears B, comes back to A and evicts it.
    assert_eq!(
        outcomes(config(2, 2, TlbPolicy::Clock, false), &[0, 1, 0, 2, 1]),
        ["miss", "miss", "hit", "miss", "hit"]
    );
}

#[test]
fn hit_rate_is_one_on_a_loop_that_fits() {
    for policy in [
        TlbPolicy::Lru,
        TlbPolicy::Fifo,
        TlbPolicy::Clock,
        TlbPolicy::Random,
    ] {
        for ways in [1, 2, 4, 8] {
            let pages: Vec<u64> = (0..20).flat_map(|_| 0..8).collect();
            let stats = replay(
                config(8, ways, policy, false),
                PAGE,
                &trace_of(&pages),
                &mut |_, _, _| {},
            );
            assert_eq!(stats.compulsory, 8);
            assert_eq!(stats.warm_hit_rate(), 1.0, "{policy:?}, {ways} ways");
        }
    }
}

#[test]
fn hit_rate_is_zero_on_a_stride_that_defeats_the_tlb() {
    // Fully associative LRU and FIFO: a loop one page larger than the TLB always misses.
    for policy in [TlbPolicy::Lru, TlbPolicy::Fifo, TlbPolicy::Clock] {
        let pages: Vec<u64> = (0..10).flat_map(|_| 0..9).collect();
        let stats = replay(
            config(8, 8, policy, false),
            PAGE,
            &trace_of(&pages),
            &mut |_, _, _| {},
        );
        assert_eq!(stats.hits, 0, "{policy:?}");
    }
    // 4 sets x 2 ways: a stride of 4 pages puts 3 pages in one set, whatever the size.
    let ex = build(
        "tlb",
        &[
            "--entries",
            "8",
            "--ways",
            "2",
            "--pattern",
            "stride",
            "--stride",
            "16K",
            "--count",
            "3",
            "--loops",
            "10",
        ],
    )
    .unwrap();
    assert_eq!(ex.answer("hits"), Some("0"));
    let fits = build(
        "tlb",
        &[
            "--entries",
            "8",
            "--ways",
            "2",
            "--pattern",
            "stride",
            "--stride",
            "4K",
            "--count",
            "3",
            "--loops",
            "10",
        ],
    )
    .unwrap();
    assert_eq!(
        fits.answer("hits"),
        Some("27"),
        "the same count with a 1-page stride spreads over 3 sets"
    );
}

#[test]
fn asids_keep_entries_across_switches_that_a_flush_drops() {
    let args = [
        "--entries",
        "8",
        "--pages",
        "4",
        "--loops",
        "5",
        "--procs",
        "2",
        "--quantum",
        "4",
    ];
    let flushed = build("tlb", &args).unwrap();
    let tagged = build("tlb", &[&args[..], &["--asid"]].concat()).unwrap();
    assert_eq!(
        flushed.answer("hits"),
        Some("0"),
        "each turn starts with an empty TLB"
    );
    assert_eq!(
        tagged.answer("hits"),
        Some("32"),
        "only the 8 first touches miss"
    );
    assert!(
        flushed
            .worked()
            .contains("context switch to pid 2: the TLB is flushed")
    );
}

#[test]
fn bigger_pages_turn_misses_into_hits() {
    // 8 accesses 1 KiB apart: 8 pages of 1 KiB, 2 pages of 4 KiB.
    let addresses: Vec<u64> = (0..8).map(|i| i * 1024).collect();
    let trace: Vec<Access> = addresses.iter().map(|&va| Access { pid: 1, va }).collect();
    assert_eq!(
        replay(
            config(4, 4, TlbPolicy::Lru, false),
            1024,
            &trace,
            &mut |_, _, _| {}
        )
        .hits,
        0
    );
    assert_eq!(
        replay(
            config(4, 4, TlbPolicy::Lru, false),
            4096,
            &trace,
            &mut |_, _, _| {}
        )
        .hits,
        6
    );
}

#[test]
fn random_traces_never_overfill_and_count_consistently() {
    let mut rng = XorShift(0x7158);
    for _ in 0..200 {
        let ways = 1 << rng.below(3);
        let cfg = config(
            ways << rng.below(3),
            ways,
            [
                TlbPolicy::Lru,
                TlbPolicy::Fifo,
                TlbPolicy::Clock,
                TlbPolicy::Random,
            ][rng.below(4) as usize],
            rng.below(2) == 0,
        );
        let trace: Vec<Access> = (0..300)
            .map(|_| Access {
                pid: 1 + rng.below(3),
                va: rng.below(32) * PAGE,
            })
            .collect();
        let mut tlb = Tlb::new(cfg);
        for access in &trace {
            tlb.access(access.pid, access.va / PAGE);
            assert!(tlb.nr_valid() as u64 <= cfg.entries);
        }
        let stats = replay(cfg, PAGE, &trace, &mut |_, _, _| {});
        assert!(stats.compulsory <= stats.misses() && stats.hits + stats.misses() == 300);
        let ex = build(
            "tlb",
            &[
                "--seed",
                &rng.below(1000).to_string(),
                "--pattern",
                "random",
                "--num",
                "30",
            ],
        )
        .unwrap();
        assert!(ex.check(&ex.answer_sheet()).is_perfect());
    }
}
