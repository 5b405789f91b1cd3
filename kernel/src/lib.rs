//! The kernel library: everything the kernel binary and its in-QEMU tests share.
//!
//! `main.rs` is a thin entry point; each file in the top-level `tests/` folder is
//! another kernel image that links this library, calls [`init`] and runs its tests.
//!
//! | module | what it holds |
//! |---|---|
//! | [`arch`] | x86-64: serial port, GDT/TSS, IDT and trap entry, timer, QEMU exit |
//! | [`klog`] | `print!`/`println!` on COM1 and the `log` facade with levels |
//! | [`bench`] | the bench mode: ns per operation, printed as tables |
//! | [`block`] | the block layer's registry: disks by name as `&dyn blockdev::BlockDevice` |
//! | [`cmdline`] | the command line the runner passes through fw_cfg |
//! | [`drivers`] | PCI bus scan and the virtio-blk disks (registered with [`block`]) |
//! | [`fs`] | files: the VFS (`Inode`), tmpfs at `/`, open files and fd tables, pipes |
//! | [`bootmem`] | the bootloader's memory map, summarised |
//! | [`mm`] | memory management: frames, buddy, slab heap, page operations |
//! | [`proc`] | processes: tasks, scheduler, ELF loading, syscalls, user faults |
//! | [`sync`] | `IrqMutex`: a spinlock that keeps interrupts off while held |
//! | [`tty`] | console input: the COM1 receive interrupt, the line discipline thread, `read(0, ...)`, Ctrl-C |
//! | [`testing`] | the in-kernel test runner (libtest-style output) |
//! | [`user_programs`] | the user programs (ELF files) embedded in the kernel image |
#![no_std]
#![cfg_attr(test, no_main)]
#![feature(custom_test_frameworks)]
#![test_runner(crate::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

pub mod arch;
pub mod bench;
pub mod block;
pub mod bootmem;
pub mod cmdline;
pub mod drivers;
pub mod fs;
pub mod klog;
pub mod mm;
pub mod proc;
pub mod sync;
pub mod testing;
pub mod trap;
pub mod tty;
pub mod user_programs;

use bootloader_api::BootInfo;
use bootloader_api::config::{BootloaderConfig, Mapping};

/// Where the bootloader maps all of physical memory (the "direct map").
pub const PHYS_MAP_BASE: u64 = 0xffff_8000_0000_0000;
/// Where the kernel image is linked at run time (the top 2 GiB, as in Linux).
pub const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;
/// Lowest address the bootloader may pick for its own dynamic mappings (boot stack, boot info).
pub const BOOT_DYNAMIC_BASE: u64 = 0xffff_c000_0000_0000;
/// Size of the boot kernel stack the bootloader gives us.
pub const BOOT_STACK_SIZE: u64 = 256 * 1024;

/// How the bootloader must load every kernel image of this crate (binary and tests).
pub static BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.physical_memory = Some(Mapping::FixedAddress(PHYS_MAP_BASE));
    config.mappings.kernel_base = Mapping::FixedAddress(KERNEL_BASE);
    config.mappings.dynamic_range_start = Some(BOOT_DYNAMIC_BASE);
    config.kernel_stack_size = BOOT_STACK_SIZE;
    config
};

/// Brings up the machine: serial console and logging, GDT/TSS, IDT, timer, then
/// physical memory and the heap, processes, the drivers and swap.
///
/// Every kernel image calls this first. Interrupts are enabled on return.
pub fn init(boot_info: &'static mut BootInfo) {
    klog::init();
    bootmem::init(boot_info);
    arch::init(bootmem::facts().kernel_stack_bottom);
    // Calibrate the TSC now, with interrupts on: clock_gettime may later run with
    // interrupts off and must not wait for timer ticks.
    let _ = arch::timer::tsc_per_ms();
    mm::init();
    arch::acpi::init();
    arch::init_apics();
    install_guarded_ist_stacks();
    proc::init();
    drivers::init();
    fs::init();
    tty::init();
    mm::swap::init();
    mm::reclaim::init();
    mm::reclaim::start_kswapd();
    mm::writeback::start();
    mm::cleaner::start();
    mm::ksm::start_ksmd();
    proc::task::start_reaper();
    proc::hangcheck::start();
    proc::load_control::start();
    mm::swap::start_wiper();
    mm::fail::init();
    arch::smp::start_aps();
    proc::sched::start_all_cpus();
}

/// Moves the double-fault and NMI handlers onto stacks with guard pages.
///
/// Until paging is ours, they use stacks in `.bss`; afterwards they get `kstack`
/// stacks that live forever.
fn install_guarded_ist_stacks() {
    use arch::gdt;
    let nr_pages = gdt::IST_SIZE_BYTES as u64 / 4096;
    for (index, name) in [(gdt::DOUBLE_FAULT_IST_INDEX, "double-fault IST"), (gdt::NMI_IST_INDEX, "NMI IST")] {
        let stack = mm::kstack::KernelStack::new(nr_pages, name).expect("init: no memory for IST stacks");
        gdt::set_ist(index, stack.top());
        core::mem::forget(stack); // used until the machine stops
    }
}

/// Expands to what every `#[test_case]` kernel test binary needs: the bootloader
/// entry point (which calls [`init`] and runs the tests) and the panic handler that
/// reports the running test as failed. Use it once, at the top of a file in `tests/`.
#[macro_export]
macro_rules! test_kernel {
    () => {
        bootloader_api::entry_point!(test_kernel_main, config = &$crate::BOOTLOADER_CONFIG);

        fn test_kernel_main(boot_info: &'static mut bootloader_api::BootInfo) -> ! {
            $crate::init(boot_info);
            test_main();
            $crate::hlt_loop()
        }

        #[panic_handler]
        fn panic(info: &core::panic::PanicInfo) -> ! {
            $crate::testing::test_panic_handler(info)
        }
    };
}

/// Halts the CPU until the next interrupt, forever.
pub fn hlt_loop() -> ! {
    loop {
        x86_64::instructions::hlt();
    }
}

/// Leaves QEMU with `code` after writing every dirty file page to its disk
/// ([`fs::sync_all`]); a write-back error is reported and turns success into failure.
/// Call from a task (writing back sleeps), never from a panic handler.
pub fn power_off(code: arch::qemu::ExitCode) -> ! {
    let code = match fs::sync_all() {
        Ok(()) => code,
        Err(e) => {
            println!("power off: writing back the page cache failed: {e:?}");
            arch::qemu::ExitCode::Failure
        }
    };
    arch::qemu::exit(code)
}

#[cfg(test)]
bootloader_api::entry_point!(test_kernel_main, config = &BOOTLOADER_CONFIG);

#[cfg(test)]
fn test_kernel_main(boot_info: &'static mut BootInfo) -> ! {
    init(boot_info);
    test_main();
    power_off(arch::qemu::ExitCode::Success);
}

#[cfg(test)]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    testing::test_panic_handler(info)
}
