//! The swap benchmarks: throughput and major-fault latency (`swapbench`, timed in
//! user space), and major faults per replacement policy on a thrashing workload
//! (`thrash`, run once under each policy with memory limited by a balloon).

use alloc::vec::Vec;

use crate::arch::timer;
use crate::mm::frame::{self, OwnedFrames};
use crate::mm::reclaim::{self, PolicyKind};
use crate::drivers::virtio_blk::{self, BlkStats};
use crate::mm::fault::FaultOutcome;
use crate::mm::vmstat::{self, SwapEvent, SwapInPhase};
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

/// What the kernel counted of the major faults: the swap-in clock, and the disk's reads.
struct SwapInSample {
    nr_major: u64,
    phase_cycles: [u64; 5],
    disk: Option<BlkStats>,
}

impl SwapInSample {
    fn now() -> SwapInSample {
        SwapInSample {
            nr_major: vmstat::nr_faults(FaultOutcome::SwapIn),
            phase_cycles: vmstat::swap_in_cycles(),
            disk: virtio_blk::swap_disk().map(|d| d.lock().stats()),
        }
    }

    /// Prints where the major faults since `before` spent their time: each phase of
    /// the swap-in clock per major fault, and the disk's read requests.
    fn print_since(&self, before: &SwapInSample) {
        let nr_major = self.nr_major - before.nr_major;
        if nr_major == 0 {
            return;
        }
        let per_fault = |cycles: u64| timer::cycles_to_ns(cycles) / nr_major;
        let mut line = alloc::format!("  kernel's clock, ns per major fault ({nr_major} faults):");
        let mut total = 0;
        for (phase, (after, before)) in SwapInPhase::ALL.iter().zip(self.phase_cycles.iter().zip(&before.phase_cycles)) {
            total += after - before;
            line += &alloc::format!(" {} {}", phase.name(), per_fault(after - before));
        }
        println!("{line}, total {}", per_fault(total));
        if let Some(disk) = virtio_blk::swap_disk() {
            let (window_ns, mean_ns) = disk.lock().poll_window_ns();
            println!("  disk poll window {} ns (mean completion {} ns)", window_ns, mean_ns);
        }
        if let (Some(after), Some(before)) = (self.disk, before.disk) {
            let nr_reads = (after.nr_reads - before.nr_reads).max(1);
            println!(
                "  disk reads: {}, per read: submit {} ns, wait {} ns, {:.1} looks not done; irq sleeps {}, interrupts {}",
                after.nr_reads - before.nr_reads,
                timer::cycles_to_ns(after.read_submit_cycles - before.read_submit_cycles) / nr_reads,
                timer::cycles_to_ns(after.read_wait_cycles - before.read_wait_cycles) / nr_reads,
                (after.nr_not_done_looks - before.nr_not_done_looks) as f64 / nr_reads as f64,
                after.nr_irq_waits - before.nr_irq_waits,
                after.nr_interrupts - before.nr_interrupts,
            );
        }
    }
}

/// Runs the swap benchmarks and prints their tables.
pub fn bench() {
    println!("swap throughput and major-fault latency (timed in user space, 2048 pages = 8 MiB):");
    let before = SwapInSample::now();
    let idle_before = crate::proc::haltpoll::total_stats();
    if !run("swapbench") {
        println!("  swapbench failed");
    }
    SwapInSample::now().print_since(&before);
    let idle = crate::proc::haltpoll::total_stats();
    println!(
        "  idle periods: {} ended while polling, {} in a halt (haltpoll cap {} us)",
        idle.nr_poll_hits - idle_before.nr_poll_hits,
        idle.nr_halts - idle_before.nr_halts,
        crate::proc::haltpoll::max_window_ns() / 1000
    );
    policies();
}

/// Runs `thrash` under every policy with a balloon leaving 16 MiB and the high
/// watermark free, and prints the table (`benchonly=policies`).
/// `policies_free=N` leaves N pages (instead of 4096) above the high watermark;
/// `policies_only=2q,clock` runs only the policies named.
pub fn policies() {
    heap::shrink();
    let nr_extra = crate::cmdline::value("policies_free").and_then(|v| v.parse::<u64>().ok()).unwrap_or(4096);
    let only = crate::cmdline::value("policies_only");
    let nr_free = nr_extra + reclaim::watermarks().high;
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
        if only.is_some_and(|names| !names.split(',').any(|name| name == kind.name())) {
            continue;
        }
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
