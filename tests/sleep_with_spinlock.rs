//! Sleeping or yielding with a spinlock held is caught (debug builds): the
//! scheduler panics naming the task and the number of spinlocks, instead of
//! leaving the lock taken and interrupts off for the next task.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]

use bootloader_api::BootInfo;
use kernel::sync::IrqMutex;
use kernel::testing::finish_single;

const NAME: &str = "sleep_with_spinlock::yielding_with_a_spinlock_held_panics";

static LOCK: IrqMutex<u32> = IrqMutex::new(0);

bootloader_api::entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init(boot_info);
    kernel::println!("\nrunning 1 test");
    let guard = LOCK.lock();
    kernel::proc::sched::yield_now(); // must panic
    drop(guard);
    finish_single(NAME, false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kernel::println!("expected panic: {}", info);
    let message = kernel::testing::PanicText::of(info);
    finish_single(NAME, message.contains("holding 1 spinlock"))
}
