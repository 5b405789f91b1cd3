//! Boot and trap tests: the kernel comes up, exceptions are caught, decoded and,
//! where the kernel allows it, resumed; the timer ticks.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

use core::sync::atomic::Ordering;

use kernel::arch::{extable, timer, trap};

kernel::test_kernel!();

/// An address in the lower half that nothing maps (PML4 slot 128).
const UNMAPPED: u64 = 0x0000_4000_0000_1234;

#[test_case]
fn boots_with_usable_memory() {
    assert!(kernel::bootmem::usable_bytes() > 64 << 20, "less than 64 MiB usable");
}

#[test_case]
fn breakpoint_is_handled_and_returns() {
    let before = trap::BREAKPOINTS.load(Ordering::Relaxed);
    x86_64::instructions::interrupts::int3();
    x86_64::instructions::interrupts::int3();
    assert_eq!(trap::BREAKPOINTS.load(Ordering::Relaxed), before + 2);
}

#[test_case]
fn read_of_unmapped_address_faults_with_cr2_and_error_code() {
    let (_, nr_before) = extable::last_fixed_fault();
    let fault = extable::probe_read(UNMAPPED).expect_err("read of an unmapped address succeeded");
    assert_eq!(fault.addr, UNMAPPED, "CR2 must hold the faulting address");
    // Not present (bit 0 clear), read (bit 1 clear), supervisor (bit 2 clear).
    assert_eq!(fault.error_code, 0b000);
    assert_eq!(extable::last_fixed_fault().1, nr_before + 1);
}

#[test_case]
fn write_to_unmapped_address_faults_as_a_write() {
    // SAFETY: nothing is mapped there, so the write cannot land anywhere.
    let fault = unsafe { extable::probe_write(UNMAPPED + 8, 0xab) }.expect_err("write succeeded");
    assert_eq!(fault.addr, UNMAPPED + 8);
    assert_eq!(fault.error_code, 0b010, "write, not present, supervisor");
}

#[test_case]
fn probe_reads_mapped_memory() {
    static BYTE: u8 = 0x5a;
    assert_eq!(extable::probe_read(&BYTE as *const u8 as u64), Ok(0x5a));
}

#[test_case]
fn page_fault_error_codes_decode() {
    use core::fmt::Write;
    let mut text = heapless_string::String64::new();
    write!(text, "{}", trap::PageFaultCode(0b111)).unwrap();
    assert_eq!(text.as_str(), "protection violation on write from user mode");
    text.clear();
    write!(text, "{}", trap::PageFaultCode(0b10000)).unwrap();
    assert_eq!(text.as_str(), "page not present on instruction fetch from kernel mode");
}

#[test_case]
fn timer_ticks() {
    let start = timer::ticks();
    while timer::ticks() < start + 3 {
        x86_64::instructions::hlt();
    }
    assert!(timer::uptime_ms() >= 30);
    assert!(timer::tsc_per_ms() > 0);
}

/// A fixed-capacity string for formatting without a heap.
mod heapless_string {
    pub struct String64 {
        buf: [u8; 64],
        len: usize,
    }
    impl String64 {
        pub fn new() -> Self {
            Self { buf: [0; 64], len: 0 }
        }
        pub fn as_str(&self) -> &str {
            core::str::from_utf8(&self.buf[..self.len]).unwrap()
        }
        pub fn clear(&mut self) {
            self.len = 0;
        }
    }
    impl core::fmt::Write for String64 {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = self.len + s.len();
            if end > self.buf.len() {
                return Err(core::fmt::Error);
            }
            self.buf[self.len..end].copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
}

#[test_case]
fn printing_the_fault_trace_takes_its_locks_in_order() {
    // `cargo run`'s demo printed the trace holding the trace's lock while
    // formatting into the heap (Heap ranks below FaultTrace): a lock-order panic.
    kernel::mm::vmstat::set_tracing(true);
    let pid = kernel::proc::spawn("forkcow").expect("spawn forkcow");
    kernel::proc::wait(Some(pid)).expect("wait");
    kernel::mm::vmstat::set_tracing(false);
    kernel::mm::vmstat::print_trace();
}
