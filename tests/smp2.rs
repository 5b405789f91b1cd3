//! 2 CPUs (issue #13, SMP boot): the MADT lists them, every one comes up through
//! the trampoline, takes its own local APIC timer ticks and answers an IPI. The
//! checks are in `tests/smp/body.rs`, shared by every `smp*` image.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

kernel::runner_args!(b"--smp 2 --memory 64M --timeout 120");

/// The CPUs this image asks for.
const EXPECTED_CPUS: usize = 2;

include!("smp/body.rs");
