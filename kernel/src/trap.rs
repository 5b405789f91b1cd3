//! The one trap dispatcher: what each interrupt, exception and syscall means.
//!
//! `arch` saves the interrupted registers in a `TrapFrame` (one entry path for
//! every vector and for `syscall`, `arch/x86_64/trap.rs`) and calls [`dispatch`];
//! from here each vector goes to the part of the kernel that owns it:
//!
//! | vector | handler |
//! |---|---|
//! | syscall (`SYSCALL_VECTOR`) | `proc::syscall::dispatch` (it returns to user mode itself) |
//! | #PF page fault | `proc::trap::page_fault`: resolve through `mm`, or kill, or EFAULT, or panic |
//! | #BP breakpoint, #DF double fault | `arch` (counted; dumped and fatal) |
//! | timer tick | `arch` timer, sleepers whose deadline passed woken, the tick charged to the running process (its working-set clock, `mm::wss`), then `proc::sched::preempt` if it interrupted ring 3 |
//! | device interrupts (PIC lines 1-15) | `arch::irq::dispatch`: the handlers drivers registered (virtio-blk), then EOI |
//! | local APIC timer, test IPI (other CPUs) | `arch::smp`: counted per CPU, EOI to the local APIC |
//! | any other exception | ring 3: `proc::trap::user_exception` kills the process; ring 0: fatal |
//!
//! On the way back to ring 3 a process killed meanwhile exits here.
//! Layering: `arch` calls only this function above itself; this module may call
//! any layer (it is the top of the kernel, like `main`).

use crate::arch::{irq, lapic, smp, timer};
use crate::arch::trap::{self, IRQ_BASE, SYSCALL_VECTOR, TrapFrame};
use crate::proc;

/// Hardware interrupts taken since boot: ticks and device IRQs (`/proc/stat`'s `intr`).
static NR_INTERRUPTS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Returns the hardware interrupts taken since boot (every CPU).
pub fn nr_interrupts() -> u64 {
    NR_INTERRUPTS.load(core::sync::atomic::Ordering::Relaxed)
}

/// Routes a trap to its handler. Called by `arch` with interrupts off, on the
/// interrupted task's kernel stack (or an IST stack).
pub fn dispatch(frame: &mut TrapFrame) {
    if frame.vector == SYSCALL_VECTOR {
        proc::syscall::dispatch(frame);
        return;
    }
    let vector = frame.vector as u8;
    if vector >= IRQ_BASE {
        NR_INTERRUPTS.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    }
    match vector {
        trap::BREAKPOINT => trap::breakpoint(frame),
        trap::PAGE_FAULT => page_fault(frame),
        trap::DOUBLE_FAULT => trap::double_fault(frame),
        timer::TIMER_VECTOR => {
            smp::count_tick();
            timer::on_tick();
            proc::sched::wake_timed_out(timer::ticks());
            proc::task::account_cpu_tick(frame.is_user());
            proc::hangcheck::on_tick(frame.is_user(), frame.rip);
            if frame.is_user() {
                smp::this_cpu().nr_user_ticks.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                proc::sched::preempt();
            }
        }
        trap::DEVICE_IRQ_FIRST..trap::IRQ_LIMIT => irq::dispatch(vector - IRQ_BASE),
        // The other CPUs' local APIC timers (the boot CPU ticks on the PIT).
        lapic::TIMER_VECTOR => {
            smp::on_apic_timer();
            // The working-set clock of the task running on this CPU (the boot CPU's
            // tick does the same for its own).
            proc::task::account_cpu_tick(frame.is_user());
            proc::hangcheck::on_tick(frame.is_user(), frame.rip);
            if frame.is_user() {
                smp::this_cpu().nr_user_ticks.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                proc::sched::preempt();
            }
        }
        lapic::SHOOTDOWN_VECTOR => crate::arch::shootdown::on_shootdown_ipi(),
        lapic::RESCHEDULE_VECTOR => smp::on_reschedule_ipi(),
        lapic::TEST_IPI_VECTOR => smp::on_test_ipi(),
        lapic::CALL_VECTOR => smp::on_call_ipi(),
        lapic::SPURIOUS_VECTOR => {} // no EOI for a spurious APIC interrupt
        0..IRQ_BASE if frame.is_user() => proc::trap::user_exception(frame),
        0..IRQ_BASE => trap::fatal(frame, "unhandled exception"),
        _ => log::warn!("unexpected interrupt vector {}", vector),
    }
    if frame.is_user() {
        // On the way back to ring 3: a process killed meanwhile exits here.
        proc::task::exit_if_killed();
    }
}

/// Handles #PF: reads CR2 first, turns interrupts back on if the faulting context
/// had them on, and hands the fault to `proc::trap`.
///
/// CR2 must be read first: with interrupts on, a fault taken while handling this
/// one (or by another task, once this one sleeps on the disk) overwrites it. The
/// trap frame is already saved on this task's kernel stack (#PF has no IST stack,
/// so a nested fault pushes a new frame below instead of overwriting this one).
/// A fault in code that runs with interrupts off (under an `IrqMutex`) keeps them
/// off: that code did not expect an interrupt, and must not sleep anyway.
fn page_fault(frame: &mut TrapFrame) {
    let addr = trap::fault_address();
    let entry_tick = timer::ticks();
    if frame.rflags & trap::RFLAGS_IF != 0 {
        x86_64::instructions::interrupts::enable();
    }
    proc::trap::page_fault(frame, addr);
    x86_64::instructions::interrupts::disable();
    trap::add_ticks_in_page_fault(timer::ticks() - entry_tick);
}
