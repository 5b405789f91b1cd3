//! The swap benchmarks: throughput and major-fault latency (`swapbench`, timed in
//! user space), and major faults per replacement policy on a thrashing workload
//! (`thrash`, run once under each policy with memory limited by a balloon).

use alloc::vec::Vec;

use crate::arch::timer;
use crate::mm::frame::{self, OwnedFrames};
use crate::mm::reclaim::{self, PolicyKind};
use crate::mm::vmstat::{self, SwapEvent};
use crate::mm::{Order, heap};
use crate::println;
use crate::proc;

/// Frames held by the kernel so that user programs see only a little free memory.
struct Balloon {
    blocks: Vec<OwnedFrames>,
}

impl Balloon {
    /// Takes free frames until only `nr_free` are left (or nothing more can be taken).
    fn leave_free(nr_free: u64) -> Balloon {
        let mut blocks = Vec::new();
        for order in [Order(9), Order(0)] {
            while frame::nr_free_frames() >= nr_free + order.nr_frames() {
                match OwnedFrames::new_zeroed(order) {
                    Ok(block) => blocks.push(block),
                    Err(_) => break,
                }
            }
        }
        Balloon { blocks }
    }

    fn nr_frames(&self) -> u64 {
        self.blocks.iter().map(|b| b.size_bytes() / crate::mm::PAGE_SIZE).sum()
    }
}

fn run(name: &str) -> bool {
    let Ok(pid) = proc::spawn(name) else { return false };
    matches!(proc::wait(Some(pid)), Some((_, proc::task::WaitStatus::Exited(0))))
}

/// One row of the policy table.
struct PolicyRun {
    kind: PolicyKind,
    nr_major: u64,
    nr_written: u64,
    nr_clean: u64,
    nr_rescued: u64,
    ms: u64,
}

/// Runs `thrash` under `kind` and returns what it cost.
fn thrash_under(kind: PolicyKind) -> Option<PolicyRun> {
    reclaim::set_policy(kind);
    let (ins, outs, clean) =
        (vmstat::nr_events(SwapEvent::SwapIn), vmstat::nr_events(SwapEvent::SwapOut), vmstat::nr_events(SwapEvent::ReclaimedClean));
    let rescued = reclaim::nr_rescued();
    let start = timer::rdtsc();
    let is_ok = run("thrash");
    let ms = timer::cycles_to_ns(timer::rdtsc() - start) / 1_000_000;
    is_ok.then(|| PolicyRun {
        kind,
        nr_major: vmstat::nr_events(SwapEvent::SwapIn) - ins,
        nr_written: vmstat::nr_events(SwapEvent::SwapOut) - outs,
        nr_clean: vmstat::nr_events(SwapEvent::ReclaimedClean) - clean,
        nr_rescued: reclaim::nr_rescued() - rescued,
        ms,
    })
}

/// Runs the swap benchmarks and prints their tables.
pub fn bench() {
    println!("swap throughput and major-fault latency (timed in user space, 2048 pages = 8 MiB):");
    if !run("swapbench") {
        println!("  swapbench failed");
    }
    heap::shrink();
    let nr_free = 4096 + reclaim::watermarks().high;
    let balloon = Balloon::leave_free(nr_free);
    println!(
        "replacement policies on `thrash` (24 MiB, hot quarter, 100 000 touches) with {} MiB free ({} MiB ballooned):",
        frame::nr_free_frames() / 256,
        balloon.nr_frames() / 256
    );
    println!(
        "  {:<8} {:>12} {:>12} {:>14} {:>8} {:>8}",
        "policy", "major faults", "pages written", "clean dropped", "rescued", "ms"
    );
    for kind in PolicyKind::ALL {
        match thrash_under(kind) {
            Some(r) => println!(
                "  {:<8} {:>12} {:>12} {:>14} {:>8} {:>8}",
                r.kind.name(),
                r.nr_major,
                r.nr_written,
                r.nr_clean,
                r.nr_rescued,
                r.ms
            ),
            None => println!("  {:<8} failed", kind.name()),
        }
    }
    reclaim::set_policy(PolicyKind::Clock);
    drop(balloon);
}
