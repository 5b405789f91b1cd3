//! Taking two spinlocks against the lock order is caught (debug builds): the rank
//! checker panics naming both lock classes before it spins, instead of leaving a
//! deadlock for the interleaving that would hit it.
//!
//! First the sequences the order allows run (and must not panic): in rank order, a
//! `try_lock` against it, two locks of one class through `lock_nested`, guards
//! dropped out of order. Then `Frames` is held while an `AddressSpace` lock is taken,
//! which must panic. The panic handler passes the test only in that last phase.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]

use core::sync::atomic::{AtomicU8, Ordering};

use bootloader_api::BootInfo;
use kernel::sync::{IrqMutex, LockRank};
use kernel::testing::finish_single;

const NAME: &str = "lock_order::taking_a_lock_below_a_held_rank_panics_naming_both";

static SPACE_A: IrqMutex<u32> = IrqMutex::new_ranked(LockRank::AddressSpace, 0);
static SPACE_B: IrqMutex<u32> = IrqMutex::new_ranked(LockRank::AddressSpace, 0);
static FRAMES: IrqMutex<u32> = IrqMutex::new_ranked(LockRank::Frames, 0);

/// Where the test is: the panic is expected only in `WRONG_ORDER`.
static PHASE: AtomicU8 = AtomicU8::new(ALLOWED);
const ALLOWED: u8 = 0;
const WRONG_ORDER: u8 = 1;

bootloader_api::entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init(boot_info);
    kernel::println!("\nrunning 1 test");

    // In rank order: allowed. With interrupts off around the pair: dropping the
    // first guard first would turn them back on while FRAMES is still held, and a
    // timer tick there (it takes the task table's lock) would be a true violation.
    x86_64::instructions::interrupts::without_interrupts(|| {
        let space = SPACE_A.lock();
        let frames = FRAMES.lock();
        drop(space); // out of order: the checker forgets the right lock
        drop(frames);
    });
    // Against the order, but only tried: it cannot wait, so it is allowed.
    let frames = FRAMES.lock();
    let space = SPACE_A.try_lock().expect("SPACE_A is free");
    drop((space, frames));
    // Two locks of one class: the inner one through lock_nested.
    let outer = SPACE_A.lock();
    let inner = SPACE_B.lock_nested();
    let frames = FRAMES.lock();
    drop((frames, inner, outer));
    assert_eq!(kernel::sync::nr_spinlocks_held(), 0);

    PHASE.store(WRONG_ORDER, Ordering::SeqCst);
    let frames = FRAMES.lock();
    let space = SPACE_A.lock(); // must panic
    drop((space, frames));
    finish_single(NAME, false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kernel::println!("expected panic: {}", info);
    let message = kernel::testing::PanicText::of(info);
    let is_expected = PHASE.load(Ordering::SeqCst) == WRONG_ORDER
        && message.contains("taking AddressSpace lock")
        && message.contains("while holding Frames lock");
    finish_single(NAME, is_expected)
}
