//! ext2 as `/`, programs on the disk, and execve (issue #12).
//!
//! The runner stages every user program into `/bin` of the root disk; the tests
//! check that `/` is ext2 and that `/bin/NAME` holds the same bytes as the program
//! embedded in the kernel, write files that the runner reads back on the host with
//! `debugfs` after the run (`--root-expect` below: another ext2 implementation
//! must see what ours wrote), and run `exectest` (execve's errnos, fork + exec of
//! a C program with argv and envp, the old address space freed) twice with every
//! frame back afterwards, and `mmapfile` (mmap of files: the Pintos and xv6
//! cases a private mapping covers) the same way.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec;
use kernel::fs::{self, RootKind, path};
use kernel::mm::{frame, heap};
use kernel::proc::task::WaitStatus;
use kernel::testing::run_once;

kernel::runner_args!(b"--memory 64M --timeout 300 --root-expect /host/pattern.bin=pattern:200000 --root-expect /host/note.txt=written-by-the-kernel");

kernel::test_kernel!();

/// Byte `i` of the pattern file (the runner's `root_disk::pattern_byte`).
fn pattern_byte(i: usize) -> u8 {
    (i % 251) as u8
}

#[test_case]
fn the_root_is_ext2_and_bin_holds_every_program() {
    assert_eq!(fs::root_kind(), RootKind::Ext2, "the runner attaches a root disk");
    let root = fs::root();
    let mut nr_checked = 0;
    for program in kernel::user_programs::all() {
        let file = path::resolve(&root, &alloc::format!("/bin/{}", program.name))
            .unwrap_or_else(|e| panic!("/bin/{}: {e:?}", program.name));
        let mut bytes = vec![0u8; program.elf.len() + 1];
        let n = file.read_at(0, &mut bytes).expect("read");
        assert_eq!(n, program.elf.len(), "/bin/{}: size", program.name);
        assert!(bytes[..n] == *program.elf, "/bin/{}: not the embedded program", program.name);
        nr_checked += 1;
    }
    assert!(nr_checked > 40, "only {nr_checked} programs");
}

#[test_case]
fn files_the_kernel_writes_are_on_the_disk_for_the_host() {
    let root = fs::root();
    let dir = root.mkdir("host", 0o755).expect("mkdir /host");
    let file = dir.create("pattern.bin", 0o644).expect("create");
    // 200000 bytes in pieces of 3000: writes across block boundaries, into the
    // indirect blocks (past 12 blocks of 4 KiB).
    let bytes: alloc::vec::Vec<u8> = (0..200_000).map(pattern_byte).collect();
    for (i, piece) in bytes.chunks(3000).enumerate() {
        assert_eq!(file.write_at(i as u64 * 3000, piece), Ok(piece.len()));
    }
    let mut back = vec![0u8; 200_000];
    assert_eq!(file.read_at(0, &mut back), Ok(200_000));
    assert!(back == bytes, "read back in the kernel");
    let note = dir.create("note.txt", 0o644).expect("create");
    assert_eq!(note.write_at(0, b"written-by-the-kernel"), Ok(21));
    // The runner reads both with debugfs after the run (see runner_args above).
}

#[test_case]
fn execve_errnos_argv_envp_and_the_old_space_freed() {
    assert_eq!(run_once("exectest", ""), WaitStatus::Exited(0), "exectest failed");
    heap::shrink();
    let free_before = frame::nr_free_frames();
    assert_eq!(run_once("exectest", ""), WaitStatus::Exited(0), "exectest failed on its second run");
    heap::shrink();
    assert_eq!(frame::nr_free_frames(), free_before, "exectest leaked frames");
}

#[test_case]
fn fork_exec_wait_of_a_small_static_program_is_timed() {
    assert_eq!(run_once("exectest", "bench 20"), WaitStatus::Exited(0), "exectest bench failed");
}

#[test_case]
fn mmap_of_files_private_mappings_and_their_errnos() {
    assert_eq!(run_once("mmapfile", ""), WaitStatus::Exited(0), "mmapfile failed");
    heap::shrink();
    let free_before = frame::nr_free_frames();
    assert_eq!(run_once("mmapfile", ""), WaitStatus::Exited(0), "mmapfile failed on its second run");
    heap::shrink();
    assert_eq!(frame::nr_free_frames(), free_before, "mmapfile leaked frames");
}
