//! Leaving QEMU with a status: a write to the `isa-debug-exit` device at port 0xf4.
//!
//! QEMU exits with status `(value << 1) | 1`, so [`ExitCode::Success`] (0x10) becomes
//! 33 and [`ExitCode::Failure`] (0x11) becomes 35; the `boot` runner maps those to 0
//! and 1. Without the device (real hardware) the write is ignored and we halt.

use x86_64::instructions::port::Port;

/// The value written to the debug-exit port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ExitCode {
    /// Everything passed: QEMU status 33.
    Success = 0x10,
    /// Something failed: QEMU status 35.
    Failure = 0x11,
}

/// The I/O port of QEMU's `isa-debug-exit` device (set by the `boot` runner).
const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Ends the QEMU session with `code`; halts forever if there is no such device.
pub fn exit(code: ExitCode) -> ! {
    let mut port = Port::<u32>::new(DEBUG_EXIT_PORT);
    // SAFETY: port 0xf4 is QEMU's isa-debug-exit device, which has no side effect
    // but ending the emulator; on a machine without it the write goes nowhere.
    unsafe { port.write(code as u32) };
    crate::hlt_loop()
}
