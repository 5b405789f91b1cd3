//! A kernel access to a user page outside the user-copy routine is a kernel bug:
//! the fault handler must panic with a dump, not treat it as demand paging.
//!
//! The scenario needs a process context (pid != 0, its address space loaded), as
//! inside a syscall. The test builds one: it loads the `hello` program, but starts
//! its task in ring 0 at [`stray_access`] on a stack of its own. That function pages
//! in the program's first page the legal way (`copy_from_user`), then reads it with
//! a plain load. With SMAP on the load faults; before the fix the handler "resolved"
//! it (the page is there, the VMA allows reads: a spurious fault), returned, and the
//! load faulted again forever, until the runner's timeout. The test passes only if
//! the panic handler is reached with the kernel-page-fault message.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]

use bootloader_api::BootInfo;
use kernel::arch::gdt;
use kernel::testing::finish_single;

const NAME: &str = "stray_user_access::kernel_read_of_a_resident_user_page_panics";

kernel::runner_args!(b"--timeout 30");

bootloader_api::entry_point!(main, config = &kernel::BOOTLOADER_CONFIG);

/// The ring-0 stack of the task that makes the stray access.
static mut STRAY_STACK: [u64; 2048] = [0; 2048];

/// Runs in the task: a legal user copy, then the stray read. Never returns.
extern "C" fn stray_access() -> ! {
    let addr = abi::USER_IMAGE_BASE;
    let mut byte = [0u8; 1];
    kernel::proc::uaccess::copy_from_user(&mut byte, addr).expect("copy_from_user of the program's first page");
    kernel::println!("paged in {addr:#x} with copy_from_user; now a plain kernel read of it");
    // SAFETY: none meant: this read of a user page outside `copy_user` must panic.
    let value = unsafe { core::ptr::read_volatile(addr as *const u8) };
    kernel::println!("FAIL: the kernel read {value:#x} from a user page outside copy_user");
    finish_single(NAME, false)
}

fn main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init(boot_info);
    kernel::println!("\nrunning 1 test");
    if !kernel::arch::cpu::smap_enabled() {
        kernel::println!("no SMAP on this CPU: nothing to test");
        finish_single(NAME, false);
    }
    let (space, mut frame) = kernel::proc::exec::load("hello", "").expect("load hello");
    let selectors = gdt::selectors();
    frame.cs = u64::from(selectors.kernel_code.0);
    frame.ss = u64::from(selectors.kernel_data.0);
    frame.rip = stray_access as *const () as u64;
    // 16-byte aligned minus the return address a `call` would have pushed.
    frame.rsp = (core::ptr::addr_of!(STRAY_STACK) as u64 + core::mem::size_of::<[u64; 2048]>() as u64) - 8;
    frame.rflags = 0x2; // interrupts off: nothing else runs meanwhile
    kernel::proc::task::create_user_task("stray", "", 0, space, &frame, kernel::arch::user_state::UserState::initial()).expect("create the task");
    let _ = kernel::proc::wait(None);
    kernel::println!("FAIL: the task ended without a panic");
    finish_single(NAME, false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    kernel::println!("expected panic: {}", info);
    let message = alloc_free_contains(info, "kernel page fault at 0x400000");
    finish_single(NAME, message)
}

/// Returns true if the panic message contains `needle` (formatted into a fixed buffer).
fn alloc_free_contains(info: &core::panic::PanicInfo, needle: &str) -> bool {
    struct Buffer {
        bytes: [u8; 256],
        len: usize,
    }
    impl core::fmt::Write for Buffer {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let n = s.len().min(self.bytes.len() - self.len);
            self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
            self.len += n;
            Ok(())
        }
    }
    let mut buffer = Buffer { bytes: [0; 256], len: 0 };
    let _ = core::fmt::write(&mut buffer, format_args!("{}", info.message()));
    core::str::from_utf8(&buffer.bytes[..buffer.len]).is_ok_and(|m| m.contains(needle))
}
