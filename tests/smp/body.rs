// The body shared by the SMP test images (issue #13, step 4): each boots with
// `EXPECTED_CPUS` CPUs (its `runner_args!` passes `--smp N`) and checks that every
// one came up, has its own identity, takes its own timer interrupts and answers
// an IPI. Included with `include!` by `tests/smp2.rs` and `tests/smp4.rs`.

use core::sync::atomic::Ordering;

use core::sync::atomic::AtomicUsize;

use kernel::arch::{acpi, smp, timer};
use kernel::sync::{IrqMutex, LockRank};

kernel::test_kernel!();

/// Waits up to `ms` milliseconds for `done`; returns whether it came true.
fn wait_until(ms: u64, done: impl Fn() -> bool) -> bool {
    let start = timer::rdtsc();
    while !done() {
        if timer::rdtsc() - start > ms * timer::tsc_per_ms() {
            return false;
        }
        core::hint::spin_loop();
    }
    true
}

#[test_case]
fn the_madt_lists_every_cpu_and_every_one_comes_up() {
    let madt = acpi::madt().expect("QEMU has a MADT");
    assert_eq!(madt.usable_cpus().count(), EXPECTED_CPUS, "the MADT lists the CPUs QEMU was given");
    assert_eq!(smp::nr_present(), EXPECTED_CPUS);
    assert_eq!(smp::nr_online(), EXPECTED_CPUS, "every CPU said it was up");
    for index in 0..EXPECTED_CPUS {
        assert!(smp::per_cpu(index).is_online.load(Ordering::Relaxed), "cpu {index} online");
    }
    assert!(kernel::arch::ioapic::is_active(), "device interrupts go through the I/O APIC");
}

#[test_case]
fn each_cpu_has_its_own_apic_id_and_the_boot_cpu_is_cpu_0() {
    assert_eq!(smp::cpu_id(), 0, "tests run on the boot CPU");
    let mut ids: alloc::vec::Vec<u32> =
        (0..EXPECTED_CPUS).map(|i| smp::per_cpu(i).apic_id.load(Ordering::Relaxed)).collect();
    assert_eq!(ids[0], kernel::arch::lapic::id(), "cpu 0 is the boot CPU's APIC");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), EXPECTED_CPUS, "APIC ids are distinct");
}

#[test_case]
fn each_cpu_takes_its_own_timer_ticks() {
    let before: alloc::vec::Vec<u64> =
        (0..EXPECTED_CPUS).map(|i| smp::per_cpu(i).nr_ticks.load(Ordering::Relaxed)).collect();
    // 5 ticks are 50 ms at 100 Hz; under a loaded TCG host the APIC timers'
    // calibration is loose (chapter 19), so allow 2 s before calling a CPU dead.
    let all_ticked = || {
        before.iter().enumerate().all(|(i, &then)| smp::per_cpu(i).nr_ticks.load(Ordering::Relaxed) >= then + 5)
    };
    let is_ok = wait_until(2000, all_ticked);
    for (index, &then) in before.iter().enumerate() {
        let now = smp::per_cpu(index).nr_ticks.load(Ordering::Relaxed);
        assert!(is_ok, "cpu {index} took {} ticks (5 wanted)", now - then);
    }
}

#[test_case]
fn an_ipi_to_each_other_cpu_is_handled_there() {
    for index in 1..EXPECTED_CPUS {
        let count = &smp::per_cpu(index).nr_test_ipis;
        let before = count.load(Ordering::Relaxed);
        smp::send_test_ipi(index);
        assert!(wait_until(1000, || count.load(Ordering::Relaxed) == before + 1), "cpu {index} handled the IPI");
    }
    assert_eq!(smp::per_cpu(0).nr_test_ipis.load(Ordering::Relaxed), 0, "the sender took none itself");
}

/// Where each call of `record_cpu` ran (CPU index + 1; 0: not yet).
static RAN_ON: [AtomicUsize; smp::MAX_CPUS] = [const { AtomicUsize::new(0) }; smp::MAX_CPUS];

fn record_cpu(slot: usize) {
    RAN_ON[slot].store(smp::cpu_id() + 1, Ordering::SeqCst);
}

#[test_case]
fn a_function_called_on_each_cpu_runs_there_before_the_call_returns() {
    for (index, ran_on) in RAN_ON.iter().enumerate().take(EXPECTED_CPUS) {
        smp::call_on(index, record_cpu, index).expect("online");
        assert_eq!(ran_on.load(Ordering::SeqCst), index + 1, "ran on cpu {index}, before call_on returned");
    }
    assert_eq!(smp::call_on(EXPECTED_CPUS, record_cpu, 0), Err(smp::CallError::Offline(EXPECTED_CPUS)));
}

/// Two locks whose ranks forbid taking `INNER` while holding `OUTER` on one CPU.
static OUTER: IrqMutex<u32> = IrqMutex::new_ranked(LockRank::Frames, 0);
static INNER: IrqMutex<u32> = IrqMutex::new_ranked(LockRank::AddressSpace, 0);
/// What `nr_spinlocks_held` said on the other CPU.
static HELD_THERE: AtomicUsize = AtomicUsize::new(usize::MAX);

fn take_inner(_: usize) {
    HELD_THERE.store(kernel::sync::nr_spinlocks_held(), Ordering::SeqCst);
    *INNER.lock() += 1;
}

#[test_case]
fn each_cpu_checks_the_lock_order_against_its_own_held_locks_only() {
    // CPU 0 holds a Frames lock; CPU 1 takes an address-space lock (lower rank). On
    // one CPU that is an inversion; on two it is not, and must not panic.
    let outer = OUTER.lock();
    smp::call_on(1, take_inner, 0).expect("cpu 1 online");
    assert_eq!(kernel::sync::nr_spinlocks_held(), 1, "this CPU holds OUTER");
    drop(outer);
    assert_eq!(HELD_THERE.load(Ordering::SeqCst), 0, "cpu 1 held no spinlock: the count is per CPU");
    assert_eq!(*INNER.lock(), 1);
}
