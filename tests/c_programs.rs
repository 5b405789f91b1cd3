//! Static C programs built with musl (`kernel/user/c/`, issue #12): the initial
//! stack the kernel builds for them, and each program run to its end: printf, a
//! malloc-heavy list, fork and wait, thread-local storage across context switches,
//! memory past RAM that must swap, a null-pointer write that kills only the
//! program, the calls musl makes on its own with Linux's errnos, execve from a
//! process with several threads, and the page_fault benchmark's checks. After every
//! run the audit is clean and every frame is back.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec;

use kernel::mm::addr_space::STACK_TOP;
use kernel::mm::vmstat::{self, SwapEvent};
use kernel::mm::{PAGE_SIZE, VirtAddr, frame, remote};
use kernel::proc::{exec, task::WaitStatus};
use kernel::testing::run_once;
use kernel::user_programs::{self, C_PROGRAMS};
use mm_core::elf;
use mm_core::initial_stack::{self, at};

// 40 MiB of RAM: swap_c touches 1.5 times that, so it must swap.
kernel::runner_args!(b"--memory 40M --swap-size 96M --timeout 240");

kernel::test_kernel!();

/// Every file in `kernel/user/c/`, as `kernel/build.rs` names it.
const NAMES: &[&str] =
    &["argv_c", "clonevm_c", "execmt_c", "fork_c", "hello_c", "malloc_c", "pagefault_c", "pthread_c", "segv_c", "shootdown_c", "swap_c", "syscalls_c", "tls_c", "true_c"];

/// Runs `name` twice; the second run must end the same way and give back every frame.
fn run(name: &str, args: &str) -> WaitStatus {
    let first = run_once(name, args);
    kernel::mm::heap::shrink();
    let free_before = frame::nr_free_frames();
    let second = run_once(name, args);
    kernel::mm::heap::shrink();
    assert_eq!(frame::nr_free_frames(), free_before, "{name} leaked frames");
    assert_eq!(first, second, "{name} ended differently on its second run");
    second
}

#[test_case]
fn every_c_program_is_embedded_as_a_static_non_pie_executable() {
    let names: vec::Vec<&str> = C_PROGRAMS.iter().map(|p| p.name).collect();
    assert_eq!(names, NAMES);
    for program in C_PROGRAMS {
        assert_eq!(user_programs::find(program.name).map(|e| e.as_ptr()), Some(program.elf.as_ptr()));
        let exe = elf::parse(program.elf).unwrap_or_else(|e| panic!("{}: {e}", program.name));
        assert!(exe.phdr_vaddr().is_some(), "{}: the program headers are not loaded: no AT_PHDR", program.name);
        for s in exe.segments() {
            assert!(!(s.flags.is_writable() && s.flags.is_executable()), "{}: W+X segment at {:#x}", program.name, s.vaddr);
            assert!(s.vaddr >= abi::USER_IMAGE_BASE, "{}: segment at {:#x}", program.name, s.vaddr);
        }
    }
}

/// Reads `len` bytes of `space` at `addr`, page by page, from resident pages.
fn read_space(space: &kernel::mm::rmap::SpaceRef, addr: u64, len: usize) -> vec::Vec<u8> {
    let mut bytes = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let at = addr + done as u64;
        let n = ((PAGE_SIZE - at % PAGE_SIZE) as usize).min(len - done);
        let page = remote::pin_resident(&space.lock(), VirtAddr::new(at)).expect("initial stack page not resident");
        page.read((at % PAGE_SIZE) as usize, &mut bytes[done..done + n]);
        done += n;
    }
    bytes
}

#[test_case]
fn exec_puts_argv_envp_and_the_auxiliary_vector_on_the_stack() {
    let (space, frame) = exec::load("hello_c", "one  two").expect("load hello_c");
    assert_eq!(frame.rsp % 16, 0, "rsp {:#x} at entry is not 16-byte aligned", frame.rsp);
    let bytes = read_space(&space, frame.rsp, (STACK_TOP - frame.rsp) as usize);
    let stack = initial_stack::parse(&bytes, frame.rsp).expect("the initial stack does not parse");
    assert_eq!(stack.argv, ["hello_c", "one", "two"]);
    assert_eq!(stack.envp, exec::ENVIRONMENT);
    let exe = elf::parse(user_programs::find("hello_c").unwrap()).unwrap();
    assert_eq!(stack.aux(at::PAGESZ), Some(PAGE_SIZE));
    assert_eq!(stack.aux(at::PHDR), exe.phdr_vaddr());
    assert_eq!(stack.aux(at::PHNUM), Some(u64::from(exe.nr_program_headers())));
    assert_eq!(stack.aux(at::PHENT), Some(56));
    assert_eq!(stack.aux(at::ENTRY), Some(frame.rip));
    assert_eq!(stack.aux(at::SECURE), Some(0));
    let random = stack.aux(at::RANDOM).expect("no AT_RANDOM");
    assert!(random > frame.rsp && random + 16 <= STACK_TOP, "AT_RANDOM {random:#x} outside the stack");
    let random_bytes = &bytes[(random - frame.rsp) as usize..][..16];
    assert!(random_bytes.iter().any(|&b| b != 0), "AT_RANDOM bytes are all zero");
    // Two programs get different random bytes (their stack canaries).
    let (other_space, other_frame) = exec::load("hello_c", "one  two").expect("load hello_c again");
    let other = read_space(&other_space, other_frame.rsp, (STACK_TOP - other_frame.rsp) as usize);
    let other_random = initial_stack::parse(&other, other_frame.rsp).unwrap().aux(at::RANDOM).unwrap();
    assert_ne!(&other[(other_random - other_frame.rsp) as usize..][..16], random_bytes);
}

#[test_case]
fn hello_c_prints_and_finds_its_arguments_environment_and_auxv() {
    assert_eq!(run("hello_c", "one two"), WaitStatus::Exited(0));
}

#[test_case]
fn malloc_c_builds_and_frees_a_large_list_with_every_byte_intact() {
    assert_eq!(run("malloc_c", ""), WaitStatus::Exited(0));
}

#[test_case]
fn clonevm_c_a_clone_vm_childs_exit_leaves_its_parents_memory_whole() {
    // The last task of a space unmaps it at exit: a CLONE_VM child (a vfork's, a
    // posix_spawn's) is the last of its own process but not of the space.
    assert_eq!(run("clonevm_c", ""), WaitStatus::Exited(0));
}

#[test_case]
fn fork_c_children_exit_with_their_codes_and_a_crashing_child_is_signaled() {
    assert_eq!(run("fork_c", ""), WaitStatus::Exited(0));
}

#[test_case]
fn tls_c_each_process_keeps_its_fs_base_across_switches() {
    assert_eq!(run("tls_c", ""), WaitStatus::Exited(0));
}

#[test_case]
fn syscalls_c_libc_calls_answer_with_linux_errnos() {
    // sysconf(_SC_NPROCESSORS_ONLN) must count the CPUs this kernel runs (--smp N).
    let cpus = alloc::format!("cpus={}", kernel::arch::smp::nr_online());
    assert_eq!(run("syscalls_c", &cpus), WaitStatus::Exited(0));
}

#[test_case]
fn execmt_c_execve_from_a_thread_ends_the_others_first_and_keeps_the_pid() {
    // From the leader, then from another thread: the new program must find itself
    // the only thread, and its exit status is the one wait reaps.
    assert_eq!(run("execmt_c", "leader"), WaitStatus::Exited(0));
    assert_eq!(run("execmt_c", "thread"), WaitStatus::Exited(0));
}

#[test_case]
fn pagefault_c_faults_anonymous_and_file_private_pages_in_processes_and_threads() {
    // The benchmark's four rows, short: every task checks its words, every
    // MAP_PRIVATE file still reads as zeros (a write never reached the file).
    // Once (run_once checks that no user frame is left): the rows take seconds each.
    assert_eq!(run_once("pagefault_c", "tasks=2 secs=1 mib=1"), WaitStatus::Exited(0));
}

#[test_case]
fn pagefault_c_runs_its_floor_rows_int3_round_trips_and_null_syscalls() {
    // Row 4: each of 2 tasks takes 256 int3 round trips a round (mib=1), a warm-up
    // round and at least one more: the kernel counts every one.
    let breakpoints_before = kernel::arch::trap::BREAKPOINTS.load(core::sync::atomic::Ordering::Relaxed);
    assert_eq!(run_once("pagefault_c", "row=4 tasks=2 secs=1 mib=1"), WaitStatus::Exited(0));
    let nr_int3 = kernel::arch::trap::BREAKPOINTS.load(core::sync::atomic::Ordering::Relaxed) - breakpoints_before;
    assert!(nr_int3 >= 2 * 2 * 256, "pagefault_c row=4 took {nr_int3} int3 round trips");
    // Row 5: null system calls; the program checks each getppid's answer.
    assert_eq!(run_once("pagefault_c", "row=5 tasks=2 secs=1 mib=1"), WaitStatus::Exited(0));
}

#[test_case]
fn swap_c_touches_more_than_ram_and_reads_every_word_back() {
    let swapped_before = vmstat::nr_events(SwapEvent::SwapOut);
    let read_before = vmstat::nr_events(SwapEvent::SwapIn);
    assert_eq!(run_once("swap_c", ""), WaitStatus::Exited(0));
    let nr_out = vmstat::nr_events(SwapEvent::SwapOut) - swapped_before;
    let nr_in = vmstat::nr_events(SwapEvent::SwapIn) - read_before;
    // 1.5 x RAM cannot fit: at least half a RAM's worth went out and came back.
    let ram_pages = frame::buddyinfo().nr_managed_frames;
    assert!(nr_out >= ram_pages / 2 && nr_in >= ram_pages / 2, "swap_c swapped {nr_out} out, {nr_in} in (RAM {ram_pages} pages)");
}

#[test_case]
fn segv_c_is_killed_and_the_kernel_runs_the_next_program() {
    assert_eq!(run("segv_c", ""), WaitStatus::Killed(abi::SIGKILL));
    assert_eq!(run("segv_c", "rodata"), WaitStatus::Killed(abi::SIGKILL));
    assert_eq!(run_once("hello_c", ""), WaitStatus::Exited(0));
}
