//! A kernel stack overflow must be caught and reported, not reboot the machine.
//!
//! Recursing forever runs into the unmapped guard page below the boot stack. The
//! #PF cannot push its frame on the dead stack, so the CPU raises a double fault,
//! which has its own IST stack; the handler names the overflowed stack and panics.
//! This binary's panic handler checks that message and that it runs on the IST stack.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]

use bootloader_api::BootInfo;
use kernel::arch::gdt;
use kernel::testing::finish_single;

const NAME: &str = "stack_overflow::kernel_stack_overflow_is_reported_on_the_double_fault_stack";

bootloader_api::entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

fn main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init(boot_info);
    kernel::println!("\nrunning 1 test");
    recurse(0);
    finish_single(NAME, false)
}

#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let buffer = [depth; 32];
    // black_box keeps the frame (and the recursion) from being optimised away.
    core::hint::black_box(&buffer);
    recurse(depth + 1) + core::hint::black_box(buffer[3])
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let rsp: u64;
    // SAFETY: reads the stack pointer into a register; no memory is touched.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) rsp) };
    let (ist_start, ist_end) = gdt::ist_stack(gdt::DOUBLE_FAULT_IST_INDEX);
    let on_ist = (ist_start..ist_end).contains(&rsp);
    let mut message = MessageMatcher { needle: "kernel stack overflow: boot stack", found: false, window: [0; 64], len: 0 };
    let _ = core::fmt::write(&mut message, format_args!("{}", info.message()));
    kernel::println!("panic: {} (rsp {:#x}, double-fault stack [{:#x}, {:#x}))", info, rsp, ist_start, ist_end);
    finish_single(NAME, on_ist && message.found)
}

/// Looks for `needle` in formatted text without a heap.
struct MessageMatcher {
    needle: &'static str,
    found: bool,
    window: [u8; 64],
    len: usize,
}

impl core::fmt::Write for MessageMatcher {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.window.len() {
                self.window.copy_within(1.., 0);
                self.len -= 1;
            }
            self.window[self.len] = b;
            self.len += 1;
            if self.window[..self.len].ends_with(self.needle.as_bytes()) {
                self.found = true;
            }
        }
        Ok(())
    }
}
