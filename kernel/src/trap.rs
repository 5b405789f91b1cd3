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
//! | timer tick | `arch` timer, then `proc::sched::preempt` if it interrupted ring 3 |
//! | any other exception | ring 3: `proc::trap::user_exception` kills the process; ring 0: fatal |
//!
//! On the way back to ring 3 a process killed meanwhile exits here.
//! Layering: `arch` calls only this function above itself; this module may call
//! any layer (it is the top of the kernel, like `main`).

use crate::arch::timer;
use crate::arch::trap::{self, IRQ_BASE, SYSCALL_VECTOR, TrapFrame};
use crate::proc;

/// Routes a trap to its handler. Called by `arch` with interrupts off, on the
/// interrupted task's kernel stack (or an IST stack).
pub fn dispatch(frame: &mut TrapFrame) {
    if frame.vector == SYSCALL_VECTOR {
        proc::syscall::dispatch(frame);
        return;
    }
    let vector = frame.vector as u8;
    match vector {
        trap::BREAKPOINT => trap::breakpoint(frame),
        trap::PAGE_FAULT => proc::trap::page_fault(frame, trap::fault_address()),
        trap::DOUBLE_FAULT => trap::double_fault(frame),
        timer::TIMER_VECTOR => {
            timer::on_tick();
            if frame.is_user() {
                proc::sched::preempt();
            }
        }
        timer::SPURIOUS_VECTOR => {}
        0..IRQ_BASE if frame.is_user() => proc::trap::user_exception(frame),
        0..IRQ_BASE => trap::fatal(frame, "unhandled exception"),
        _ => log::warn!("unexpected interrupt vector {}", vector),
    }
    if frame.is_user() {
        // On the way back to ring 3: a process killed meanwhile exits here.
        proc::task::exit_if_killed();
    }
}
