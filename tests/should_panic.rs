//! A failing assertion must reach the panic handler: the test passes only if it does.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]

use bootloader_api::BootInfo;
use kernel::testing::finish_single;

const NAME: &str = "should_panic::failed_assertion_panics";

bootloader_api::entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init(boot_info);
    kernel::println!("\nrunning 1 test");
    assert_eq!(core::hint::black_box(1) + 1, 3, "this assertion is meant to fail");
    finish_single(NAME, false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kernel::println!("expected panic: {}", info);
    finish_single(NAME, info.location().is_some_and(|l| l.file().ends_with("should_panic.rs")))
}
