//! 2 CPUs (issue #13): tasks on every CPU and TLB shootdown. The checks are in
//! `tests/smp_tasks/body.rs`, shared by the `smp_tasks*` images.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

kernel::runner_args!(b"--smp 2 --memory 128M --timeout 300");

/// The CPUs this image asks for.
const EXPECTED_CPUS: usize = 2;

#[path = "common/only_this_cpu.rs"]
mod only_this_cpu;
use only_this_cpu::OnlyThisCpuIdles;

include!("smp_tasks/body.rs");
