//! A hung kernel must be killed by the runner's timeout.
//!
//! This kernel announces the hang with the runner's marker line (`runner:
//! expect-timeout 3`) and then halts forever with interrupts on. The runner kills
//! QEMU 3 s later; for this binary alone that outcome is the pass. Any other ending
//! (the kernel exiting by itself) fails. For every other test a timeout is a failure
//! (runner exit code 124).
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]

use bootloader_api::BootInfo;

bootloader_api::entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init(boot_info);
    kernel::println!("\nrunning 1 test");
    kernel::print!("test timeout::hung_kernel_is_killed_by_the_runner ... ");
    kernel::println!("runner: expect-timeout 3");
    kernel::hlt_loop()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kernel::testing::test_panic_handler(info)
}
