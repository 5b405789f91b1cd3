//! Benchmarks `mm_core::buddy::BuddyAllocator` against `buddy_system_allocator::FrameAllocator`.
//!
//! Run with `cargo bench -p mm-core --bench buddy`. Both allocators manage the same
//! 256 MiB of frames with MAX_ORDER 10 and run the same workloads:
//! - order-0 alloc+free pairs on fully merged memory (each pair splits an order-10 block
//!   down to order 0 and merges it back: the worst case);
//! - order-0 alloc+free pairs on fragmented memory (every other frame held, so the
//!   pair touches only the order-0 list: the best case);
//! - mixed-order churn: a fixed pseudo-random sequence of allocs (orders 0..=4) and frees
//!   of random live blocks, with a live set of about 4096 blocks (~40 % of memory).
//!
//! Each measurement is the best of several runs, in ns per operation, timed with
//! `std::time::Instant`. The peer keeps its free lists in `BTreeSet`s; ours are intrusive
//! lists through the frame table, so the comparison is mostly O(1) links versus B-tree
//! searches and node allocations.

use std::hint::black_box;
use std::time::Instant;

use buddy_system_allocator::FrameAllocator;
use mm_core::addr::{Frame, Order};
use mm_core::buddy::BuddyAllocator;
use mm_core::frame_table::{FrameDesc, FrameState};
use mm_core::xorshift::XorShift;

/// Frames managed by each allocator: 256 MiB.
const NR_FRAMES: usize = 65536;
/// First managed frame (1 MiB), so frame numbers are not zero-based.
const BASE_PFN: u64 = 0x100;
/// Alloc+free pairs per pair measurement.
const NR_PAIRS: u64 = 2_000_000;
/// Operations in the churn sequence, warm-up included.
const NR_CHURN_OPS: usize = 1_000_000;
/// Live blocks the churn hovers around (it starts from empty; the first ops fill it).
const NR_TARGET_LIVE: usize = 4096;
/// Churn operations run before the clock starts, to reach the steady state.
const NR_WARMUP_OPS: usize = 20_000;
/// Runs per measurement; the fastest is reported.
const NR_RUNS: usize = 5;
/// `FrameAllocator::<ORDER>` has MAX_ORDER = ORDER - 1 = 10, like ours.
type Peer = FrameAllocator<11>;


/// Builds the churn sequence: one random word per operation.
///
/// Operation `r` allocates a block of order `(r >> 32) % 5` when `r % (2 * NR_TARGET_LIVE)`
/// is at least the live count, and frees live block `(r >> 40) % live` otherwise. The live
/// set thus hovers around `NR_TARGET_LIVE` blocks (about 40 % of memory) instead of
/// drifting into out-of-memory, and both allocators see the same decisions.
fn churn_ops() -> Vec<u64> {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    (0..NR_CHURN_OPS).map(|_| rng.next_u64()).collect()
}

/// What churn operation `r` does when `nr_live` blocks are live.
enum ChurnStep {
    /// Allocate a block of this order.
    Alloc(u8),
    /// Free the live block at this index.
    Free(usize),
}

/// Decodes churn operation `r` (see [`churn_ops`]).
#[inline]
fn churn_step(r: u64, nr_live: usize) -> ChurnStep {
    if (r as u32 % (2 * NR_TARGET_LIVE as u32)) as usize >= nr_live {
        ChurnStep::Alloc(((r >> 32) % 5) as u8)
    } else {
        ChurnStep::Free((r >> 40) as usize % nr_live)
    }
}

/// Returns the fastest of `NR_RUNS` runs of `run_fn`, which returns (elapsed ns, nr_ops).
fn best_ns_per_op(mut run_fn: impl FnMut() -> (u128, u64)) -> f64 {
    (0..NR_RUNS)
        .map(|_| {
            let (elapsed_ns, nr_ops) = run_fn();
            elapsed_ns as f64 / nr_ops as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// Creates our allocator over a fresh table with all frames free.
fn ours(descs: &mut [FrameDesc]) -> BuddyAllocator<'_> {
    let mut buddy = BuddyAllocator::new(descs, BASE_PFN);
    buddy.add_free_range(Frame::from_pfn(BASE_PFN), NR_FRAMES as u64).unwrap();
    buddy
}

/// Creates the peer allocator with all frames free.
fn peer() -> Peer {
    let mut peer = Peer::new();
    peer.add_frame(BASE_PFN as usize, BASE_PFN as usize + NR_FRAMES);
    peer
}

/// Times `NR_PAIRS` order-0 alloc+free pairs on ours; `is_fragmented` holds every other frame.
fn ours_pairs(descs: &mut [FrameDesc], is_fragmented: bool) -> (u128, u64) {
    let mut buddy = ours(descs);
    if is_fragmented {
        let held: Vec<Frame> =
            (0..NR_FRAMES).map(|_| buddy.alloc(Order(0), FrameState::Kernel).unwrap()).collect();
        held.iter().step_by(2).for_each(|&frame| buddy.free(frame, Order(0)).unwrap());
    }
    let start = Instant::now();
    for _ in 0..NR_PAIRS {
        let frame = buddy.alloc(black_box(Order(0)), FrameState::Kernel).unwrap();
        buddy.free(black_box(frame), Order(0)).unwrap();
    }
    (start.elapsed().as_nanos(), NR_PAIRS)
}

/// Times `NR_PAIRS` order-0 alloc+free pairs on the peer; `is_fragmented` as for ours.
fn peer_pairs(is_fragmented: bool) -> (u128, u64) {
    let mut peer = peer();
    if is_fragmented {
        let held: Vec<usize> = (0..NR_FRAMES).map(|_| peer.alloc(1).unwrap()).collect();
        held.iter().step_by(2).for_each(|&frame| peer.dealloc(frame, 1));
    }
    let start = Instant::now();
    for _ in 0..NR_PAIRS {
        let frame = peer.alloc(black_box(1)).unwrap();
        peer.dealloc(black_box(frame), 1);
    }
    (start.elapsed().as_nanos(), NR_PAIRS)
}

/// Times the churn after the warm-up ops on ours.
fn ours_churn(descs: &mut [FrameDesc], ops: &[u64]) -> (u128, u64) {
    let mut buddy = ours(descs);
    let mut live: Vec<(Frame, Order)> = Vec::with_capacity(4 * NR_TARGET_LIVE);
    let mut run_fn = |ops: &[u64]| {
        for &r in ops {
            match churn_step(r, live.len()) {
                ChurnStep::Alloc(order) => {
                    let frame = buddy.alloc(Order(order), FrameState::Kernel).unwrap();
                    live.push((black_box(frame), Order(order)));
                }
                ChurnStep::Free(pick) => {
                    let (frame, order) = live.swap_remove(pick);
                    buddy.free(frame, order).unwrap();
                }
            }
        }
    };
    run_fn(&ops[..NR_WARMUP_OPS]);
    let start = Instant::now();
    run_fn(&ops[NR_WARMUP_OPS..]);
    (start.elapsed().as_nanos(), (ops.len() - NR_WARMUP_OPS) as u64)
}

/// Times the churn after the warm-up ops on the peer.
fn peer_churn(ops: &[u64]) -> (u128, u64) {
    let mut peer = peer();
    let mut live: Vec<(usize, usize)> = Vec::with_capacity(4 * NR_TARGET_LIVE);
    let mut run_fn = |ops: &[u64]| {
        for &r in ops {
            match churn_step(r, live.len()) {
                ChurnStep::Alloc(order) => {
                    let nr_frames = 1usize << order;
                    let frame = peer.alloc(nr_frames).unwrap();
                    live.push((black_box(frame), nr_frames));
                }
                ChurnStep::Free(pick) => {
                    let (frame, nr_frames) = live.swap_remove(pick);
                    peer.dealloc(frame, nr_frames);
                }
            }
        }
    };
    run_fn(&ops[..NR_WARMUP_OPS]);
    let start = Instant::now();
    run_fn(&ops[NR_WARMUP_OPS..]);
    (start.elapsed().as_nanos(), (ops.len() - NR_WARMUP_OPS) as u64)
}

/// Prints one row of the comparison table.
fn print_row(name: &str, ours_ns: f64, peer_ns: f64) {
    let ratio = peer_ns / ours_ns;
    let verdict = if ratio >= 1.0 {
        format!("ours is {ratio:.1}x faster")
    } else {
        format!("ours is {:.1}x slower", 1.0 / ratio)
    };
    println!("{name:<38} {ours_ns:>10.1} {peer_ns:>14.1}   {verdict}");
}

fn main() {
    if cfg!(debug_assertions) {
        println!(
            "warning: debug build; run `cargo bench -p mm-core --bench buddy` for real numbers"
        );
    }
    let mut descs = vec![FrameDesc::new(); NR_FRAMES];
    let ops = churn_ops();
    println!(
        "buddy allocators, {} frames ({} MiB), MAX_ORDER 10, best of {NR_RUNS} runs, ns/op",
        NR_FRAMES,
        NR_FRAMES * 4 / 1024
    );
    println!("{:<38} {:>10} {:>14}", "workload", "ours", "bsa 0.13");
    let rows: [(&str, bool); 2] = [
        ("order-0 alloc+free pair (merged)", false),
        ("order-0 alloc+free pair (fragmented)", true),
    ];
    for (name, is_fragmented) in rows {
        let ours_ns = best_ns_per_op(|| ours_pairs(&mut descs, is_fragmented));
        let peer_ns = best_ns_per_op(|| peer_pairs(is_fragmented));
        print_row(name, ours_ns, peer_ns);
    }
    let ours_ns = best_ns_per_op(|| ours_churn(&mut descs, &ops));
    let peer_ns = best_ns_per_op(|| peer_churn(&ops));
    print_row("mixed churn, orders 0..=4 (per op)", ours_ns, peer_ns);
}
