//! The kernel binary: boots, shows the machine and the memory manager at work, and
//! leaves QEMU. Everything it calls lives in the `kernel` library (`lib.rs`).
#![no_std]
#![no_main]

use bootloader_api::BootInfo;
use kernel::{arch, bootmem, println};

bootloader_api::entry_point!(kernel_main, config = &kernel::BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init(boot_info);
    println!();
    println!("kernel {}: a teaching kernel with a real memory manager", env!("CARGO_PKG_VERSION"));
    println!("==========================================================");
    let info = bootmem::boot_info();
    println!(
        "kernel image at {:#x}, boot stack at {:#x} ({} KiB), direct map at {:#x}",
        info.kernel_image_offset,
        info.kernel_stack_bottom,
        info.kernel_stack_len / 1024,
        kernel::PHYS_MAP_BASE
    );
    bootmem::print_summary();
    println!("timer: {} ticks so far at {} Hz", arch::timer::ticks(), arch::timer::TICK_HZ);
    println!("done: leaving QEMU");
    arch::qemu::exit(arch::qemu::ExitCode::Success);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    x86_64::instructions::interrupts::disable();
    arch::serial::emergency_write(format_args!("\nKERNEL PANIC: {}\n", info));
    arch::qemu::exit(arch::qemu::ExitCode::Failure);
}
