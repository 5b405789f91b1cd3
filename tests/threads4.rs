//! 4 CPUs (issue #13): threads of one process on every CPU, and TLB shootdown seen
//! from user space. The checks are in `tests/threads/body.rs`, shared by the
//! `threads*` images.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

kernel::runner_args!(b"--smp 4 --memory 128M --swap-size 32M --timeout 300");

/// The CPUs this image asks for.
const EXPECTED_CPUS: usize = 4;

include!("threads/body.rs");
