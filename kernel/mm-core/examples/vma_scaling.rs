//! How mmap's search for a hole grows with the number of VMAs, on the host: the
//! gap index (`VmaTree::find_gap_top_down`) against the top-down walk over the VMAs
//! it replaced, on the same trees.
//!
//! `cargo run --release -p mm-core --example vma_scaling`
//!
//! For each count N, the tree holds N one-page VMAs of alternating protection
//! packed just below the top of the mmap area (as N mmap calls leave them), and
//! each round does what an `mmap` + `munmap` of 1 MiB does to the tree: find a
//! hole, insert, unmap. Prints ns per round, best of 5.

use std::time::Instant;

use mm_core::addr::{PAGE_SIZE, VirtAddr};
use mm_core::vma::{Vma, VmProt, VmaTree};

const LO: u64 = 0x1000_0000;
const HI: u64 = 0x7f00_0000_0000;
const LEN: u64 = 1 << 20;

/// The search before the gap index: walk the VMAs from the top down.
fn walk(tree: &VmaTree, len: u64, lo: u64, hi: u64) -> Option<u64> {
    let mut gap_end = hi;
    for vma in tree.iter().rev().filter(|v| v.start.as_u64() < hi) {
        let gap_start = vma.end.as_u64().max(lo);
        if gap_end >= gap_start + len {
            return Some((gap_end - len) & !(PAGE_SIZE - 1));
        }
        gap_end = gap_end.min(vma.start.as_u64());
    }
    (gap_end >= lo + len).then(|| gap_end - len)
}

fn tree_with(count: u64) -> VmaTree {
    let mut tree = VmaTree::new();
    for i in 0..count {
        let start = HI - (i + 1) * PAGE_SIZE;
        let prot = if i % 2 == 0 { VmProt::READ_WRITE } else { VmProt::READ };
        tree.insert(Vma::anonymous(VirtAddr::new(start), VirtAddr::new(start + PAGE_SIZE), prot)).unwrap();
    }
    tree
}

fn round(tree: &mut VmaTree, found: u64) {
    let (start, end) = (VirtAddr::new(found), VirtAddr::new(found + LEN));
    tree.insert(Vma::anonymous(start, end, VmProt::READ_WRITE)).unwrap();
    tree.unmap_range(start, end).unwrap();
}

fn best_ns(rounds: u32, mut f: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..rounds {
                f();
            }
            t0.elapsed().as_nanos() as f64 / f64::from(rounds)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    println!("{:>8} {:>14} {:>14} {:>8}", "VMAs", "index ns", "walk ns", "walk/index");
    for count in [1u64, 100, 1_000, 10_000, 60_000] {
        let mut tree = tree_with(count);
        let (lo, hi) = (VirtAddr::new(LO), VirtAddr::new(HI));
        let indexed = best_ns(2_000, || {
            let found = tree.find_gap_top_down(LEN, PAGE_SIZE, lo, hi).unwrap().as_u64();
            round(&mut tree, found);
        });
        let walked = best_ns(if count > 1_000 { 50 } else { 2_000 }, || {
            let found = walk(&tree, LEN, LO, HI).unwrap();
            round(&mut tree, found);
        });
        assert_eq!(tree.find_gap_top_down(LEN, PAGE_SIZE, lo, hi).map(|a| a.as_u64()), walk(&tree, LEN, LO, HI));
        println!("{count:>8} {indexed:>14.0} {walked:>14.0} {:>8.1}x", walked / indexed);
    }
}
