//! Waiting: wait queues (no lost wake-up), completions, the sleeping mutex, and
//! kernel threads started through `sync::kthread`, all driven by real tasks.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kernel::proc::sched;
use kernel::sync::{Completion, Mutex, WaitQueue, kthread};

kernel::test_kernel!();

/// Yields until `cond` holds, at most 10 s.
fn yield_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = kernel::arch::timer::uptime_ms() + 10_000;
    while !cond() {
        assert!(kernel::arch::timer::uptime_ms() < deadline, "timed out waiting for {what}");
        sched::yield_now();
    }
}

// --- a worker that must not lose a wake-up -------------------------------------

static WORK_QUEUE: WaitQueue = WaitQueue::new();
static PENDING: AtomicU64 = AtomicU64::new(0);
static DONE: AtomicU64 = AtomicU64::new(0);
static IS_BUSY: AtomicBool = AtomicBool::new(false);
/// The last job the worker may finish: the test raises it after posting the next
/// one, so the worker is still busy with job `n` when job `n + 1` is posted, on
/// one CPU or on two (where a job that ended by itself after a few yields could
/// come and go between two of the test's looks, and the test then waited for a
/// busy worker that had no work left: `--smp 2`, "timed out waiting for the
/// worker to be busy").
static RELEASED: AtomicU64 = AtomicU64::new(0);

/// Takes one job at a time; each job keeps it busy until the test has posted the
/// next one (it yields meanwhile), which is when the old sleep/wake pair lost
/// wake-ups: a wake-up sent to a busy thread was ignored, and the thread then
/// slept with work pending.
extern "C" fn worker_main() -> ! {
    loop {
        WORK_QUEUE.wait_until(|| PENDING.load(Ordering::Acquire) > 0);
        PENDING.fetch_sub(1, Ordering::AcqRel);
        let job = DONE.load(Ordering::Acquire) + 1;
        IS_BUSY.store(true, Ordering::Release);
        while RELEASED.load(Ordering::Acquire) < job {
            sched::yield_now();
        }
        IS_BUSY.store(false, Ordering::Release);
        DONE.fetch_add(1, Ordering::AcqRel);
    }
}

#[test_case]
fn a_wake_up_sent_while_the_waiter_is_busy_is_not_lost() {
    kthread::spawn("worker", worker_main).expect("spawn worker");
    let mut nr_sent_while_busy = 0;
    for job in 1..=50 {
        // Every other job is posted while the worker is in the middle of a job
        // (job - 1, which it cannot finish before this one is posted).
        if job % 2 == 0 {
            yield_until("the worker to be busy", || IS_BUSY.load(Ordering::Acquire));
            nr_sent_while_busy += 1;
        }
        PENDING.fetch_add(1, Ordering::AcqRel);
        WORK_QUEUE.wake_one();
        RELEASED.store(job - 1, Ordering::Release);
    }
    RELEASED.store(50, Ordering::Release);
    yield_until("every job to be done", || DONE.load(Ordering::Acquire) == 50);
    assert_eq!(nr_sent_while_busy, 25);
    assert_eq!(PENDING.load(Ordering::Acquire), 0);
}

#[test_case]
fn wait_until_returns_at_once_when_the_condition_holds() {
    let queue = WaitQueue::new();
    let switches = sched::nr_switches();
    queue.wait_until(|| true);
    assert_eq!(sched::nr_switches(), switches, "it slept anyway");
    assert!(!queue.wake_one(), "nobody waits on a fresh queue");
}

// --- completions -----------------------------------------------------------------

static EVENT: Completion = Completion::new();
static NR_WOKEN_BY_EVENT: AtomicU64 = AtomicU64::new(0);

extern "C" fn event_waiter_main() -> ! {
    EVENT.wait();
    NR_WOKEN_BY_EVENT.fetch_add(1, Ordering::AcqRel);
    loop {
        // Done: park on a condition that never holds (kernel threads never exit).
        WaitQueue::new().wait_until(|| false);
    }
}

#[test_case]
fn a_completion_wakes_every_waiter_once_it_happens() {
    for _ in 0..3 {
        kthread::spawn("event-waiter", event_waiter_main).expect("spawn");
    }
    for _ in 0..20 {
        sched::yield_now(); // let them all block
    }
    assert_eq!(NR_WOKEN_BY_EVENT.load(Ordering::Acquire), 0, "woken before the event");
    assert!(!EVENT.is_done());
    EVENT.complete();
    yield_until("the three waiters", || NR_WOKEN_BY_EVENT.load(Ordering::Acquire) == 3);
    EVENT.wait(); // already done: returns at once
}

// --- the sleeping mutex ------------------------------------------------------------

static COUNTER: Mutex<u64> = Mutex::new(0);
static NR_IN_CRITICAL: AtomicU64 = AtomicU64::new(0);
static NR_OVERLAPS: AtomicU64 = AtomicU64::new(0);
static NR_FINISHED: AtomicU64 = AtomicU64::new(0);

extern "C" fn incrementer_main() -> ! {
    for _ in 0..20 {
        let mut counter = COUNTER.lock();
        if NR_IN_CRITICAL.fetch_add(1, Ordering::AcqRel) != 0 {
            NR_OVERLAPS.fetch_add(1, Ordering::AcqRel);
        }
        let value = *counter;
        sched::yield_now(); // hold the lock across a switch: others must sleep
        *counter = value + 1;
        NR_IN_CRITICAL.fetch_sub(1, Ordering::AcqRel);
    }
    NR_FINISHED.fetch_add(1, Ordering::AcqRel);
    loop {
        WaitQueue::new().wait_until(|| false);
    }
}

#[test_case]
fn the_mutex_admits_one_holder_and_waiters_sleep() {
    for _ in 0..3 {
        kthread::spawn("incrementer", incrementer_main).expect("spawn");
    }
    yield_until("the incrementers", || NR_FINISHED.load(Ordering::Acquire) == 3);
    assert_eq!(NR_OVERLAPS.load(Ordering::Acquire), 0, "two holders at once");
    assert_eq!(*COUNTER.lock(), 60, "an increment was lost");
    assert!(COUNTER.try_lock().is_some());
}

// --- the hang watchdog ----------------------------------------------------------

#[test_case]
fn the_hang_watchdog_reports_when_no_user_process_runs() {
    // `sleep 3` is a live user process that does not run for 3 s: with the
    // watchdog's stall time at 1 s, it must print the task table once meanwhile.
    use kernel::proc::{self, hangcheck, task::WaitStatus};
    let before = hangcheck::nr_reports();
    hangcheck::set_stall_secs(1);
    let pid = proc::spawn_with_args("sleep", "3").expect("spawn sleep");
    let (_, status) = proc::wait(Some(pid)).expect("no child to wait for");
    hangcheck::set_stall_secs(hangcheck::STALL_SECS);
    assert_eq!(status, WaitStatus::Exited(0));
    let nr_reports = hangcheck::nr_reports() - before;
    assert!(nr_reports >= 1, "no hang report while the only user process slept 3 s");
}
