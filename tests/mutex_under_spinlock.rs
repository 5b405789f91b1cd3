//! Taking a sleeping `Mutex` with a spinlock held is caught (debug builds), even when
//! the mutex is free and nothing would sleep this time: the next time it is contended
//! its holder would sleep with interrupts off (Linux checks this with might_sleep).
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]

use bootloader_api::BootInfo;
use kernel::sync::{IrqMutex, Mutex};
use kernel::testing::finish_single;

const NAME: &str = "mutex_under_spinlock::taking_a_sleeping_mutex_holding_a_spinlock_panics";

static LOCK: IrqMutex<u32> = IrqMutex::new(0);
static SLEEPING: Mutex<u32> = Mutex::new(0);

bootloader_api::entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init(boot_info);
    kernel::println!("\nrunning 1 test");
    let guard = LOCK.lock();
    let sleeping = SLEEPING.lock(); // free, but must panic
    drop(sleeping);
    drop(guard);
    finish_single(NAME, false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kernel::println!("expected panic: {}", info);
    let message = kernel::testing::PanicText::of(info);
    finish_single(NAME, message.contains("a sleeping lock taken holding 1 spinlock"))
}
