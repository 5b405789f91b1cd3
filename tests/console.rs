//! Console input over the serial line: the runner types `tests/console.input` into
//! COM1 (`--script`), the receive interrupt and the line discipline turn it into
//! lines, `read(0, ...)` hands them out one at a time, Ctrl-D is an end of file and
//! Ctrl-C kills the foreground process.
//!
//! The runner starts typing when the kernel says its console input is on, and types
//! the script in one go up to its `#>wait` line, so the tests (run in name order,
//! hence the numbers) read its lines in the order they are written there; the
//! Ctrl-C is typed only once the runaway program has said it runs.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use abi::o;
use kernel::fs::file::{FdTable, FileObject, OpenFile};
use kernel::proc::{self, task::WaitStatus};
use kernel::tty;

kernel::runner_args!(b"--script tests/console.input --timeout 120");

kernel::test_kernel!();

/// Reads one line of console input the way `read(0, buf, 256)` does, into a kernel buffer.
fn read_line() -> Vec<u8> {
    let mut out = Vec::new();
    let mut copy_out = |bytes: &[u8]| {
        out.extend_from_slice(bytes);
        Ok(())
    };
    tty::read(256, || false, &mut copy_out).expect("tty::read");
    out
}

#[test_case]
fn input_1_typed_lines_arrive_one_per_read_with_backspace_applied() {
    assert_eq!(read_line(), b"hello world\n");
    assert_eq!(read_line(), b"cat\n", "cax, Backspace, t is \"cat\"");
}

#[test_case]
fn input_2_ctrl_d_on_an_empty_line_reads_as_end_of_file() {
    assert_eq!(read_line(), b"", "Ctrl-D: a read of 0 bytes");
}

#[test_case]
fn input_3_a_program_reads_standard_input_until_ctrl_d() {
    let root = kernel::fs::root();
    let out = root.create("cat.out", 0o644).expect("create /cat.out");
    let mut files = FdTable::new_console();
    let into_file = OpenFile::new(FileObject::Inode(out.clone()), o::WRONLY);
    let _ = files.replace(1, into_file).expect("fd 1");
    let pid = proc::task::spawn_with_files("cat", "", files).expect("spawn cat");
    let (_, status) = proc::wait(Some(pid)).expect("wait cat");
    assert_eq!(status, WaitStatus::Exited(0), "cat exits 0 at end of file");
    let mut text = [0u8; 64];
    let n = out.read_at(0, &mut text).expect("read /cat.out");
    assert_eq!(String::from_utf8_lossy(&text[..n]), "from cat\n");
    root.unlink("cat.out").expect("unlink");
}

#[test_case]
fn input_4_ctrl_c_kills_the_foreground_process() {
    let interrupts_before = tty::stats().nr_interrupts;
    let pid = proc::spawn("spin").expect("spawn spin");
    tty::set_foreground(pid).expect("foreground");
    // The script types Ctrl-C once spin has printed its line.
    let (_, status) = proc::wait(Some(pid)).expect("wait spin");
    assert_eq!(status, WaitStatus::Killed(abi::SIGKILL));
    assert_eq!(tty::stats().nr_interrupts, interrupts_before + 1);
    assert_eq!(tty::stats().nr_dropped, 0);
    tty::set_foreground(0).expect("no foreground");
}
