//! What asking "which CPU am I on?" costs, alone and with every CPU asking at once
//! (`cargo run --release -- --smp 2 --bench --cmdline benchonly=cpuid`).
//!
//! The kernel asks on every lock of a per-CPU list, in every fault (the running
//! space, the zeroing streak) and at every scheduler step. Two ways are measured: `rdtscp` (the index each CPU left
//! in `IA32_TSC_AUX`; under QEMU's TCG a helper that reads the virtual clock under
//! a lock all vCPU threads share) and `lsl` on the CPU's own GDT entry
//! (`arch::gdt::cpu_index`, what `cpu_id` uses). With one CPU calling, both are a
//! helper call; with two, a shared lock shows as a cost that grows with the other
//! CPU's calls. The other CPUs run a kernel thread bound to each, started and
//! stopped by flags; this task is pinned to its CPU while it measures.

use core::hint::black_box;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::arch::gdt;
use crate::arch::smp;
use crate::arch::timer;
use crate::println;
use crate::proc;
use crate::sync::WaitQueue;

/// Calls per measurement, on each CPU.
const CALLS: u64 = 200_000;

/// The way being measured: 0 `rdtscp`, 1 `lsl`; the helpers read it at each start.
static METHOD: AtomicUsize = AtomicUsize::new(0);
/// Raised by the measuring task to start a round on every helper: the round number.
static ROUND: AtomicU64 = AtomicU64::new(0);
/// Helpers that finished the current round.
static NR_DONE: AtomicUsize = AtomicUsize::new(0);
/// Cleared when the bench is over: the helpers park.
static KEEP_GOING: AtomicBool = AtomicBool::new(false);
/// Where the helpers park afterwards (kernel threads never exit).
static PARKED: WaitQueue = WaitQueue::new();

/// Asks `CALLS` times with `method`; returns the TSC cycles it took.
fn ask_many(method: usize) -> u64 {
    let start = timer::rdtsc();
    let mut sum = 0usize;
    for _ in 0..CALLS {
        sum += if method == 0 { smp::cpu_id_by_rdtscp() } else { gdt::cpu_index() };
    }
    black_box(sum);
    timer::rdtsc() - start
}

/// A helper bound to one CPU: asks `CALLS` times each round the bench starts.
extern "C" fn helper_main() -> ! {
    let mut seen = 0;
    while KEEP_GOING.load(Ordering::Acquire) {
        let round = ROUND.load(Ordering::Acquire);
        if round == seen {
            core::hint::spin_loop();
            continue;
        }
        seen = round;
        ask_many(METHOD.load(Ordering::Acquire));
        NR_DONE.fetch_add(1, Ordering::AcqRel);
    }
    PARKED.wait_until(|| false);
    unreachable!("bench::cpu_id: a helper woken for nothing");
}

/// Nanoseconds per ask on this CPU with `method`, best of 5 rounds, while
/// `nr_helpers` helpers ask too.
fn ns_per_ask(method: usize, nr_helpers: usize) -> f64 {
    METHOD.store(method, Ordering::Release);
    let mut best = u64::MAX;
    for _ in 0..5 {
        NR_DONE.store(0, Ordering::Release);
        if nr_helpers > 0 {
            ROUND.fetch_add(1, Ordering::AcqRel);
        }
        best = best.min(ask_many(method));
        while NR_DONE.load(Ordering::Acquire) < nr_helpers {
            core::hint::spin_loop();
        }
    }
    timer::cycles_to_ns(best) as f64 / CALLS as f64
}

/// Runs the measurement and prints one line per way and number of CPUs asking.
pub fn bench() {
    let nr_cpus = smp::nr_online();
    let this_cpu = proc::task::pin_current();
    println!("\n-- which CPU am I on: {CALLS} asks per CPU, {nr_cpus} CPUs online --");
    let alone = [ns_per_ask(0, 0), ns_per_ask(1, 0)];
    KEEP_GOING.store(true, Ordering::Release);
    let mut nr_helpers = 0;
    for cpu in (0..nr_cpus).filter(|&c| c != this_cpu) {
        match proc::task::spawn_daemon_on("bench/cpu_id", helper_main, cpu) {
            Ok(_) => nr_helpers += 1,
            Err(e) => println!("  bench: no helper on cpu {cpu}: {e:?}"),
        }
    }
    let together = [ns_per_ask(0, nr_helpers), ns_per_ask(1, nr_helpers)];
    KEEP_GOING.store(false, Ordering::Release);
    proc::task::unpin_current();
    for (method, name) in ["rdtscp (TSC_AUX)", "lsl (GDT entry)"].iter().enumerate() {
        println!("bench: op=cpu id by {name:<17}, 1 CPU asking            ns={:.1}", alone[method]);
        println!(
            "bench: op=cpu id by {name:<17}, {} CPUs asking at once    ns={:.1}",
            nr_helpers + 1,
            together[method]
        );
    }
}
