//! Boot and user programs at 256M of RAM (issue #10, item 2): the frame table
//! covers all of it, the demo programs run and give every frame back. The checks
//! are in `tests/ram_sizes/body.rs`, shared by every `ram_*` image.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

kernel::runner_args!(b"--memory 256M --timeout 240");

/// The guest RAM this image asks for, in MiB.
const EXPECTED_RAM_MIB: u64 = 256;

include!("ram_sizes/body.rs");
