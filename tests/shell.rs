//! The shell `/bin/sh`, run as a user would: typed at over the serial line (the
//! runner types `tests/shell.input`: a pipeline, redirections, an unknown command,
//! a background job killed with `kill`, Ctrl-C of a runaway), and from a script
//! file with its output in a file, read back and checked line by line. The shell
//! survives each error and exits with the code its last `exit` gives.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::string::String;
use alloc::vec;

use abi::o;
use kernel::fs::file::{FdTable, FileObject, OpenFile};
use kernel::fs::{self, FsError, path};
use kernel::proc::{self, task::WaitStatus};
use kernel::tty;

kernel::runner_args!(b"--script tests/shell.input --timeout 180");

kernel::test_kernel!();

/// Returns the text of the file at `path_text`.
fn read_file(path_text: &str) -> Result<String, FsError> {
    let inode = path::resolve(&fs::root(), path_text)?;
    let mut text = vec![0u8; 8192];
    let n = inode.read_at(0, &mut text)?;
    text.truncate(n);
    Ok(String::from_utf8(text).expect("UTF-8"))
}

#[test_case]
fn shell_1_typed_commands_pipes_redirections_jobs_and_ctrl_c() {
    let interrupts_before = tty::stats().nr_interrupts;
    let pid = proc::spawn("sh").expect("spawn sh");
    let (_, status) = proc::wait(Some(pid)).expect("wait sh");
    assert_eq!(status, WaitStatus::Exited(7), "the shell lived to its `exit 7`");
    assert_eq!(read_file("/shell-out.txt").unwrap(), "hello world\n", "echo > file");
    assert_eq!(read_file("/shell-copy.txt").unwrap(), "hello world\n", "cat < file | cat > file");
    assert!(read_file("/shell-ls.txt").unwrap().lines().any(|l| l == "meminfo"), "ls /proc > file");
    assert_eq!(tty::stats().nr_interrupts, interrupts_before + 1, "one Ctrl-C");
    proc::task::wait_all(10_000).unwrap_or_else(|n| panic!("{n} processes left running"));
}

#[test_case]
fn shell_2_runs_a_script_file_and_reports_errors_and_jobs() {
    let script = "# a script\n\
        echo one two\n\
        nosuchcommand\n\
        cat /no/such/file\n\
        spin > /spin.out &\n\
        jobs\n\
        sleep 0.2\n\
        kill %1\n\
        wait\n\
        kill 99999\n\
        cd /nonexistent\n\
        cd /proc/sys/vm\n\
        cat watermark_scale_factor\n\
        echo after errors | cat\n\
        exit 3\n\
        echo not reached\n";
    let root = fs::root();
    let file = root.create("t.sh", 0o644).expect("create /t.sh");
    file.write_at(0, script.as_bytes()).expect("write /t.sh");
    let out = root.create("t.out", 0o644).expect("create /t.out");
    let mut files = FdTable::new_console();
    let into_file = OpenFile::new(FileObject::Inode(out.clone()), o::WRONLY | o::APPEND);
    let _ = files.replace(1, into_file.clone()).expect("fd 1");
    let _ = files.replace(2, into_file).expect("fd 2");
    let pid = proc::task::spawn_with_files("sh", "/t.sh", files).expect("spawn sh /t.sh");
    let (_, status) = proc::wait(Some(pid)).expect("wait sh");
    let text = read_file("/t.out").unwrap();
    assert_eq!(status, WaitStatus::Exited(3), "{text}");
    let lines: vec::Vec<&str> = text.lines().collect();
    let expected_start = ["one two", "sh: nosuchcommand: command not found", "cat: /no/such/file: ENOENT"];
    assert_eq!(&lines[..3], &expected_start, "{text}");
    assert!(lines[3].starts_with("[1] "), "a background job is announced: {text}");
    assert!(lines[4].starts_with("[1] Running pid"), "jobs lists it: {text}");
    assert!(lines.contains(&"sh: kill: 99999: ESRCH"), "{text}");
    assert!(lines.contains(&"sh: cd: /nonexistent: ENOENT"), "{text}");
    let after_cd = lines.iter().position(|l| *l == "sh: cd: /nonexistent: ENOENT").unwrap() + 1;
    assert_eq!(lines[after_cd], "10", "cd /proc/sys/vm, then a relative path: {text}");
    assert_eq!(lines.last(), Some(&"after errors"), "{text}");
    assert!(!text.contains("not reached"));
    proc::task::wait_all(10_000).unwrap_or_else(|n| panic!("{n} processes left running"));
    root.unlink("t.sh").unwrap();
    root.unlink("t.out").unwrap();
}
