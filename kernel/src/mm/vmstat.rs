//! Memory-management event counters (like Linux's `/proc/vmstat`) and a fault trace.
//!
//! Every resolved page fault is counted by kind; with tracing on (`trace` on the
//! kernel command line, or [`set_tracing`]) the last [`TRACE_LEN`] faults are kept
//! with the pid, address, access and outcome, and [`print_trace`] shows them: the
//! fault path, as it happened. Swap and reclaim events ([`SwapEvent`]: pages written
//! and read, swap-cache hits, clean pages dropped, reclaim passes, I/O errors, OOM
//! kills) are counted machine-wide and shown by [`print_swap_counters`].
//! The swap-in clock ([`SwapInPhase`]) sums the TSC cycles of each phase of the
//! major faults, so the bench can say where a swap-in's time goes.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::VirtAddr;
use super::fault::{Access, FaultOutcome};
use crate::sync::IrqMutex;

/// Kinds of resolved faults, in the order [`FaultOutcome`] lists them.
const KINDS: [(FaultOutcome, &str); 13] = [
    (FaultOutcome::AnonymousPage, "anonymous page (zeroed frame)"),
    (FaultOutcome::ZeroPage, "read of untouched memory (shared zero page)"),
    (FaultOutcome::ImagePage, "program image page"),
    (FaultOutcome::CowCopy, "copy-on-write: copied"),
    (FaultOutcome::CowReuse, "copy-on-write: last reference, reused"),
    (FaultOutcome::SharedWrite, "write to a shared page: made writable"),
    (FaultOutcome::StackGrowth, "stack growth"),
    (FaultOutcome::Spurious, "spurious (stale TLB entry)"),
    (FaultOutcome::SwapIn, "swap-in: read from the swap disk (major)"),
    (FaultOutcome::SwapCacheHit, "swap-in: found in the swap cache (no I/O)"),
    (FaultOutcome::HugePage, "transparent huge page (zeroed 2 MiB)"),
    (FaultOutcome::FilePage, "file page mapped from the page cache"),
    (FaultOutcome::FileCopy, "write to a private file mapping: page-cache page copied"),
];

static COUNTS: [AtomicU64; KINDS.len()] = [const { AtomicU64::new(0) }; KINDS.len()];

/// Swap and reclaim events, counted machine-wide (Linux's `pswpout`, `pswpin`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum SwapEvent {
    /// A page written to a swap slot.
    SwapOut,
    /// A page read from a swap slot.
    SwapIn,
    /// A disk request that wrote swapped-out pages (up to 32 adjacent slots).
    WriteRequest,
    /// A page read from swap by readahead, beyond the one a fault needed.
    ReadaheadPage,
    /// A readahead page that a fault then used.
    ReadaheadHit,
    /// A swap fault resolved from the swap cache, without I/O.
    CacheHit,
    /// A clean swap-cache page evicted without I/O (its slot still held it).
    ReclaimedClean,
    /// A page the reclaim scan looked at.
    Scanned,
    /// A reclaim pass started because free frames fell below the low watermark.
    BackgroundReclaim,
    /// A reclaim pass started because an allocation failed.
    DirectReclaim,
    /// A write to a swap slot failed (the page stayed resident).
    WriteError,
    /// A read from a swap slot failed (the process that needed it was killed).
    ReadError,
    /// A process killed by the OOM killer.
    OomKill,
    /// A freed slot wiped on the disk (zeroed or discarded), so no dead page lingers.
    SlotWiped,
    /// A `MADV_FREE` page not written since the advice, dropped by reclaim without I/O.
    LazyFreed,
    /// A page unmapped but kept, onto a second-chance list (page buffering, `vms`).
    Buffered,
    /// A fault that mapped a page back from a second-chance list, without I/O.
    Rescued,
}

const SWAP_EVENTS: [(SwapEvent, &str); 17] = [
    (SwapEvent::SwapOut, "pages swapped out (written)"),
    (SwapEvent::WriteRequest, "disk requests that wrote them (swap-out clustering)"),
    (SwapEvent::SwapIn, "pages swapped in (read)"),
    (SwapEvent::ReadaheadPage, "of them read ahead of a fault (readahead)"),
    (SwapEvent::ReadaheadHit, "readahead pages a fault then used"),
    (SwapEvent::CacheHit, "swap faults served by the swap cache"),
    (SwapEvent::ReclaimedClean, "clean pages reclaimed without I/O"),
    (SwapEvent::Scanned, "pages scanned by reclaim"),
    (SwapEvent::BackgroundReclaim, "reclaim passes below the low watermark"),
    (SwapEvent::DirectReclaim, "direct reclaims (an allocation failed)"),
    (SwapEvent::WriteError, "swap write errors (page kept)"),
    (SwapEvent::ReadError, "swap read errors (process killed)"),
    (SwapEvent::OomKill, "processes killed by the OOM killer"),
    (SwapEvent::SlotWiped, "freed slots wiped on the disk (no dead page lingers)"),
    (SwapEvent::LazyFreed, "MADV_FREE pages dropped by reclaim (not written since)"),
    (SwapEvent::Buffered, "pages unmapped onto the second-chance lists (vms page buffering)"),
    (SwapEvent::Rescued, "of them mapped back by a fault without I/O (rescued)"),
];

static SWAP_COUNTS: [AtomicU64; SWAP_EVENTS.len()] = [const { AtomicU64::new(0) }; SWAP_EVENTS.len()];

/// Events of the pre-zeroed frame pool (`zero_pool.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum ZeroEvent {
    /// A free frame zeroed by the idle CPU and put in the pool.
    ZeroedInBackground,
    /// A zero-filled user page taken from the pool (its allocation zeroed nothing).
    TakenPreZeroed,
    /// A zero-filled user page that had to be zeroed at allocation (the pool was empty).
    ZeroedAtAllocation,
}

/// The pool's events with their `/proc/vmstat` names (ours; Linux has no pre-zeroing).
pub const ZERO_EVENTS: [(ZeroEvent, &str); 3] = [
    (ZeroEvent::ZeroedInBackground, "prezero_zeroed_idle"),
    (ZeroEvent::TakenPreZeroed, "prezero_pages_taken"),
    (ZeroEvent::ZeroedAtAllocation, "prezero_pages_zeroed_at_alloc"),
];

static ZERO_COUNTS: [AtomicU64; ZERO_EVENTS.len()] = [const { AtomicU64::new(0) }; ZERO_EVENTS.len()];

/// Counts one event of the pre-zeroed pool.
pub fn count_zero(event: ZeroEvent) {
    ZERO_COUNTS[event as usize].fetch_add(1, Ordering::Relaxed);
}

/// Returns how many times `event` of the pre-zeroed pool happened since boot.
pub fn nr_zero_events(event: ZeroEvent) -> u64 {
    ZERO_COUNTS[event as usize].load(Ordering::Relaxed)
}

/// Counts one swap or reclaim event.
pub fn count(event: SwapEvent) {
    SWAP_COUNTS[event as usize].fetch_add(1, Ordering::Relaxed);
}

/// Counts `n` swap or reclaim events at once.
pub fn count_n(event: SwapEvent, n: u64) {
    SWAP_COUNTS[event as usize].fetch_add(n, Ordering::Relaxed);
}

/// Returns how many times `event` happened since boot.
pub fn nr_events(event: SwapEvent) -> u64 {
    SWAP_COUNTS[event as usize].load(Ordering::Relaxed)
}

/// Prints the swap and reclaim counters, and the swap area's use.
pub fn print_swap_counters() {
    let (free, total) = super::swap::slot_counts();
    crate::println!("swap: {} of {} slots in use, {} pages in the swap cache", total - free, total, super::swap::nr_cached());
    for (event, name) in SWAP_EVENTS {
        crate::println!("  {:>8}  {}", nr_events(event), name);
    }
    let nr_major = nr_faults(FaultOutcome::SwapIn);
    if nr_major > 0 {
        let mut line = alloc::format!("swap-in clock, ns per major fault ({nr_major} since boot):");
        for (phase, cycles) in SwapInPhase::ALL.iter().zip(swap_in_cycles()) {
            line += &alloc::format!(" {} {}", phase.name(), crate::arch::timer::cycles_to_ns(cycles) / nr_major);
        }
        crate::println!("{line}");
    }
}
/// The phases of a major fault, in the order they run (`fault/retry.rs` and
/// `swap/swapin.rs` stamp them with the TSC):
///
/// ```text
///  Lookup   fault entry (kswapd poke, heap headroom) .. the walk says NeedsSwapIn
///  Prepare  frame allocation, swap-cache insertion, readahead window (SWAP held)
///  Read     the disk read of the slots (block layer, driver: submit + wait)
///  Finish   unlocking the frames, readahead bookkeeping, the replacement policy
///  Map      the retry that finds the page in the cache and maps it
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum SwapInPhase {
    /// Fault entry until the page walk finds the swap entry.
    Lookup,
    /// The frames put in the swap cache, LOCKED, for the read.
    Prepare,
    /// The disk read.
    Read,
    /// After the read, until `read_into_cache` returns.
    Finish,
    /// The second walk, which maps the cached page.
    Map,
}

impl SwapInPhase {
    /// Every phase, in order.
    pub const ALL: [SwapInPhase; 5] =
        [SwapInPhase::Lookup, SwapInPhase::Prepare, SwapInPhase::Read, SwapInPhase::Finish, SwapInPhase::Map];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            SwapInPhase::Lookup => "lookup",
            SwapInPhase::Prepare => "prepare",
            SwapInPhase::Read => "read",
            SwapInPhase::Finish => "finish",
            SwapInPhase::Map => "map",
        }
    }
}

static SWAP_IN_CYCLES: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

/// Adds the TSC cycles from `since` to now to `phase`; returns now (the next
/// phase's start).
pub fn clock_swap_in(phase: SwapInPhase, since: u64) -> u64 {
    let now = crate::arch::timer::rdtsc();
    SWAP_IN_CYCLES[phase as usize].fetch_add(now.saturating_sub(since), Ordering::Relaxed);
    now
}

/// Returns the TSC cycles summed in each [`SwapInPhase`] since boot, in `ALL`'s order.
pub fn swap_in_cycles() -> [u64; 5] {
    core::array::from_fn(|i| SWAP_IN_CYCLES[i].load(Ordering::Relaxed))
}

static NR_SEGV: AtomicU64 = AtomicU64::new(0);
static TRACING: AtomicBool = AtomicBool::new(false);

/// The number of faults the trace keeps.
pub const TRACE_LEN: usize = 64;

/// One traced fault.
#[derive(Clone, Copy, Debug)]
pub struct FaultRecord {
    /// Uptime in ms.
    pub ms: u64,
    /// The faulting process.
    pub pid: u64,
    /// The faulting address.
    pub addr: VirtAddr,
    /// What was attempted.
    pub access: Access,
    /// How it ended (`None`: the process was killed).
    pub outcome: Option<FaultOutcome>,
}

struct Trace {
    records: [Option<FaultRecord>; TRACE_LEN],
    next: usize,
}

static TRACE: IrqMutex<Trace> = IrqMutex::new_ranked(crate::sync::LockRank::FaultTrace, Trace { records: [None; TRACE_LEN], next: 0 });

fn kind_index(outcome: FaultOutcome) -> usize {
    KINDS.iter().position(|(k, _)| *k == outcome).expect("vmstat: unknown outcome")
}

/// Turns the fault trace on or off.
pub fn set_tracing(on: bool) {
    TRACING.store(on, Ordering::Relaxed);
}

/// Returns true while faults are traced.
pub fn is_tracing() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// Empties the trace ring.
pub fn clear_trace() {
    let mut trace = TRACE.lock();
    trace.records = [None; TRACE_LEN];
    trace.next = 0;
}

/// Returns the traced faults, oldest first: at most [`TRACE_LEN`], and how many
/// were traced in all (the older ones were overwritten).
pub fn trace_records() -> (alloc::vec::Vec<FaultRecord>, usize) {
    // Copy the ring out first: the Vec allocates, and the heap's lock ranks below
    // the trace's (see the lock order in `mm`).
    let (records, next) = {
        let trace = TRACE.lock();
        (trace.records, trace.next)
    };
    let start = next.saturating_sub(TRACE_LEN);
    ((start..next).filter_map(|i| records[i % TRACE_LEN]).collect(), next)
}

/// Counts (and, with tracing on, records) one fault.
pub fn record_fault(pid: u64, addr: VirtAddr, access: Access, outcome: Option<FaultOutcome>) {
    match outcome {
        Some(o) => COUNTS[kind_index(o)].fetch_add(1, Ordering::Relaxed),
        None => NR_SEGV.fetch_add(1, Ordering::Relaxed),
    };
    if TRACING.load(Ordering::Relaxed) {
        trace_fault(pid, addr, access, outcome);
    }
}

/// Keeps the record of one fault in the trace ([`record_fault`] while tracing).
#[inline(never)]
fn trace_fault(pid: u64, addr: VirtAddr, access: Access, outcome: Option<FaultOutcome>) {
    let ms = crate::arch::timer::uptime_ms();
    let mut trace = TRACE.lock();
    let slot = trace.next % TRACE_LEN;
    trace.records[slot] = Some(FaultRecord { ms, pid, addr, access, outcome });
    trace.next += 1;
}

/// Returns the number of faults resolved as `outcome` since boot.
pub fn nr_faults(outcome: FaultOutcome) -> u64 {
    COUNTS[kind_index(outcome)].load(Ordering::Relaxed)
}

/// Prints the fault counters.
pub fn print_counters() {
    crate::println!("page faults since boot, by outcome:");
    for (i, (_, name)) in KINDS.iter().enumerate() {
        crate::println!("  {:>8}  {}", COUNTS[i].load(Ordering::Relaxed), name);
    }
    crate::println!("  {:>8}  bad access (process killed, or EFAULT inside a syscall)", NR_SEGV.load(Ordering::Relaxed));
    crate::println!(
        "pre-zeroed frames: {} zeroed by the idle CPU, {} zeroed pages taken from the pool, {} zeroed at allocation, {} in the pool",
        nr_zero_events(ZeroEvent::ZeroedInBackground),
        nr_zero_events(ZeroEvent::TakenPreZeroed),
        nr_zero_events(ZeroEvent::ZeroedAtAllocation),
        super::zero_pool::nr_pooled()
    );
    for class in crate::sync::lock_stat::contended_classes() {
        crate::println!(
            "lock contention: {:?} found held {} times, waited {} us in all",
            class.rank,
            class.contended,
            class.wait_ns / 1000
        );
    }
}

/// Prints the traced faults, oldest first.
pub fn print_trace() {
    let (records, next) = trace_records();
    crate::println!("fault trace (last {} of {}):", records.len(), next);
    crate::println!("  {:>7}  {:>4}  {:<18}  {:<10}  outcome", "ms", "pid", "address", "access");
    for r in records {
        let outcome = r.outcome.map_or("bad access", |o| KINDS[kind_index(o)].1);
        crate::println!("  {:>7}  {:>4}  {:#018x}  {:<10}  {}", r.ms, r.pid, r.addr.as_u64(), alloc::format!("{:?}", r.access), outcome);
    }
}
