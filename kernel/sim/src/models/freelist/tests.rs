//! Tests of the free-list model: hand-worked streams for each fit, coalescing, the
//! buddy allocator on the same stream, and randomized streams checked after every step.

use super::*;
use crate::build;
use mm_core::xorshift::XorShift;

/// The hand-worked stream of docs/simulators.md: heap [1000, 1100), no header.
const OPS: &str = "+10,+20,+10,-1,+15,+5,-0,+8";

fn answers(policy: &str) -> Vec<String> {
    let ex = build(
        "freelist",
        &["--size", "100", "--policy", policy, "--ops", OPS],
    )
    .unwrap();
    ex.questions.iter().map(|q| q.answer.clone()).collect()
}

#[test]
fn each_fit_places_the_hand_worked_stream_as_worked_by_hand() {
    // After -1 the list is [1010+20] [1040+60]: best and first take the 20-byte hole
    // for 15 bytes, worst and next the 60-byte one (next starts where +10 ended, 1040).
    assert_eq!(
        answers("first"),
        ["1000", "1010", "1030", "2", "1010", "1025", "2", "1000"]
    );
    assert_eq!(
        answers("best"),
        ["1000", "1010", "1030", "2", "1010", "1025", "2", "1000"]
    );
    assert_eq!(
        answers("worst"),
        ["1000", "1010", "1030", "2", "1040", "1055", "2", "1060"]
    );
    assert_eq!(
        answers("next"),
        ["1000", "1010", "1030", "2", "1040", "1055", "2", "1060"]
    );
}

#[test]
fn headers_and_alignment_are_internal_waste() {
    let mut list = FreeList::new(Fit::First, 0, 64, 4, 8, true);
    assert_eq!(
        list.alloc(5),
        Some(4),
        "the caller gets the address after the 4-byte header"
    );
    assert_eq!(
        list.free_chunks(),
        [Chunk { start: 16, len: 48 }],
        "5 + 4 rounds up to 16"
    );
    assert_eq!(list.fragmentation().internal_waste, 11);
    list.check_invariants();
}

#[test]
fn without_coalescing_freed_neighbours_stay_apart() {
    let mut list = FreeList::new(Fit::First, 1000, 100, 0, 1, false);
    let (a, b) = (list.alloc(10).unwrap(), list.alloc(10).unwrap());
    list.free(a);
    list.free(b);
    assert_eq!(list.fragmentation().nr_holes, 3);
    assert_eq!(
        list.alloc(15),
        Some(1020),
        "no 15-byte hole below 1020 without coalescing"
    );
}

#[test]
fn buddy_rounds_requests_to_powers_of_two_and_merges_back() {
    let mut table = BuddyHeap::table(256, 4);
    let mut heap = BuddyHeap::new(&mut table, 4);
    let a = heap.alloc(10).unwrap(); // 3 frames -> order 2, 16 bytes
    let b = heap.alloc(20).unwrap(); // 5 frames -> order 3, 32 bytes
    assert_eq!((a, b), (0, 32), "the lowest block of each order");
    assert_eq!(heap.fragmentation().internal_waste, 6 + 12);
    assert_eq!(heap.free_blocks()[..7], [0, 0, 1, 0, 1, 1, 0]);
    assert!(heap.free(a) && heap.free(b));
    assert!(!heap.free(b), "a double free is refused");
    assert_eq!(heap.free_blocks()[6], 1, "one 256-byte block again");
}

#[test]
fn coalescing_restores_one_block_after_everything_is_freed() {
    let mut rng = XorShift(0xc0a1e5ce);
    for round in 0..300 {
        let ops = random_ops(&mut rng, 60, 512);
        let (header, align) = (rng.below(9), 1 + rng.below(8));
        for fit in Fit::ALL {
            let mut list = FreeList::new(fit, 1000, 512, header, align, true);
            let mut ptrs = Vec::new();
            for op in &ops {
                match *op {
                    Request::Alloc(n) => ptrs.push(list.alloc(n)),
                    Request::Free(k) => {
                        if let Some(p) = ptrs[k].take() {
                            assert!(list.free(p));
                        }
                    }
                }
                list.check_invariants();
            }
            ptrs.into_iter()
                .flatten()
                .for_each(|p| assert!(list.free(p)));
            list.check_invariants();
            assert_eq!(
                list.free_chunks(),
                [Chunk {
                    start: 1000,
                    len: 512
                }],
                "round {round}, {fit:?}"
            );
        }
        let mut table = BuddyHeap::table(512, 4);
        let mut heap = BuddyHeap::new(&mut table, 4);
        let mut ptrs = Vec::new();
        for op in &ops {
            match *op {
                Request::Alloc(n) => ptrs.push(heap.alloc(n)),
                Request::Free(k) => {
                    if let Some(p) = ptrs[k].take() {
                        assert!(heap.free(p));
                    }
                }
            }
        }
        ptrs.into_iter()
            .flatten()
            .for_each(|p| assert!(heap.free(p)));
        assert_eq!(heap.fragmentation().nr_holes, 1, "round {round}: buddy");
        assert_eq!(heap.fragmentation().largest_free, 512);
    }
}

#[test]
fn the_summary_compares_all_five_strategies() {
    let ex = build("freelist", &["--seed", "3", "--num", "40"]).unwrap();
    let text = ex.worked();
    for name in ["best", "worst", "first", "next", "buddy"] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "no row for {name}:\n{text}"
        );
    }
    assert!(
        build("freelist", &["--ops", "+3,-1"]).is_err(),
        "freeing a later allocation is refused"
    );
    assert!(build("freelist", &["--policy", "random"]).is_err());
}
