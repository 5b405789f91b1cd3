//! Files: the VFS, tmpfs, file descriptors and pipes (issue #12, "a small VFS").
//!
//! The user programs `files`, `dirs` and `pipes` check every file syscall and its
//! errnos from ring 3, run twice with every frame and tmpfs page back afterwards;
//! the kernel tests below drive tmpfs, path lookup and pipes through their kernel
//! interfaces: page accounting, ENOSPC at the tmpfs limit, an unlinked open file,
//! and a process killed while it sleeps on a pipe.
//!
//! This image asks the runner for 48 MiB of RAM, so that filling tmpfs to its limit
//! (half of RAM) is quick.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use abi::Errno;
use kernel::fs::pipe::{End, Pipe};
use kernel::fs::{self, FileKind, FsError, InodeRef, path, tmpfs};
use kernel::mm::{frame, heap};
use kernel::proc::{self, sched, task, task::WaitStatus};

#[path = "common/only_this_cpu.rs"]
mod only_this_cpu;
use only_this_cpu::OnlyThisCpuIdles;

kernel::runner_args!(b"--memory 48M --timeout 240");

kernel::test_kernel!();

/// Runs `name` to the end once and returns how it ended, checking that nothing of
/// it is left: no user frame, no tmpfs page.
fn run_once(name: &str, args: &str) -> WaitStatus {
    let status = kernel::testing::run_once(name, args);
    assert_eq!(tmpfs::nr_pages(), 0, "{name}: tmpfs pages left (its files are removed at the end)");
    status
}

/// Runs `name` twice; the second run must end as the first and give back every frame.
fn assert_exits_0_twice(name: &str) {
    assert_eq!(run_once(name, ""), WaitStatus::Exited(0), "{name} failed");
    heap::shrink();
    let free_before = frame::nr_free_frames();
    assert_eq!(run_once(name, ""), WaitStatus::Exited(0), "{name} failed on its second run");
    heap::shrink();
    assert_eq!(frame::nr_free_frames(), free_before, "{name} leaked frames");
}

#[test_case]
fn file_syscalls_and_their_errnos_match_linux() {
    assert_exits_0_twice("files");
}

#[test_case]
fn directory_syscalls_and_their_errnos_match_linux() {
    assert_exits_0_twice("dirs");
}

#[test_case]
fn pipes_move_256_kib_between_processes_with_eof_and_epipe() {
    assert_exits_0_twice("pipes");
}

#[test_case]
fn a_process_asleep_on_a_pipe_is_killed_and_reaped() {
    let pid = proc::spawn_with_args("pipes", "hang").expect("spawn pipes hang");
    let deadline = kernel::arch::timer::uptime_ms() + 10_000;
    while task::TASKS.lock().get(&pid).map(|t| t.state) != Some(task::TaskState::Sleeping) {
        assert!(kernel::arch::timer::uptime_ms() < deadline, "pipes hang never went to sleep");
        sched::yield_now();
    }
    assert!(task::kill(pid, format_args!("test: killed while reading a pipe")));
    let deadline = kernel::arch::timer::uptime_ms() + 5_000;
    let status = loop {
        if let Some(status) = task::try_reap(pid) {
            break status;
        }
        assert!(kernel::arch::timer::uptime_ms() < deadline, "the killed reader never woke up to exit");
        sched::yield_now();
    };
    assert_eq!(status, WaitStatus::Killed(abi::SIGKILL));
    task::wait_all(10_000).expect("processes left");
}

/// Returns a fresh directory `name` under the root.
fn fresh_dir(name: &str) -> InodeRef {
    fs::root().mkdir(name, 0o755).expect("mkdir")
}

#[test_case]
fn tmpfs_counts_its_pages_and_frees_them_with_the_last_reference() {
    // A tmpfs of its own: `/` is ext2 when the runner attaches a root disk.
    let root = tmpfs::TmpFs::new_root();
    let dir = root.mkdir("pages", 0o755).expect("mkdir");
    let pages_before = tmpfs::nr_pages();
    let file = dir.create("f", 0o644).expect("create");
    assert_eq!(file.write_at(3 * 4096 + 10, b"x"), Ok(1));
    assert_eq!(tmpfs::nr_pages(), pages_before + 1, "a write past a hole takes one page");
    assert_eq!(file.write_at(0, &[7u8; 8192]), Ok(8192));
    assert_eq!(tmpfs::nr_pages(), pages_before + 3);
    assert_eq!(file.stat().size, 3 * 4096 + 11);
    assert_eq!(file.stat().blocks, 3 * 8);
    dir.unlink("f").expect("unlink");
    assert_eq!(file.stat().nlink, 0);
    assert_eq!(tmpfs::nr_pages(), pages_before + 3, "an unlinked file in use keeps its pages");
    let mut buf = [0u8; 4];
    assert_eq!(file.read_at(8190, &mut buf), Ok(4));
    assert_eq!(buf, [7, 7, 0, 0], "data, then the hole");
    drop(file);
    assert_eq!(tmpfs::nr_pages(), pages_before, "the last reference frees the pages");
    root.rmdir("pages").expect("rmdir");
}

#[test_case]
fn tmpfs_fills_up_with_enospc_and_gives_every_page_back() {
    // An exact count of free frames before and after: one CPU's (with `--smp 2`
    // the count was one frame off, something on the other CPU in between).
    let _only_this_cpu = OnlyThisCpuIdles::new();
    heap::shrink();
    let free_before = frame::nr_free_frames();
    let root = tmpfs::TmpFs::new_root();
    let dir = root.mkdir("full", 0o755).expect("mkdir");
    let file = dir.create("big", 0o644).expect("create");
    let chunk = [0x5au8; 4096];
    let mut at = 0u64;
    let error = loop {
        match file.write_at(at, &chunk) {
            Ok(4096) => at += 4096,
            Ok(n) => panic!("a short write of {n} bytes at a page boundary"),
            Err(e) => break e,
        }
        assert!(at < 64 << 20, "tmpfs never filled up");
    };
    assert_eq!(error, FsError::NoSpace);
    assert_eq!(error.errno(), Errno::ENOSPC);
    assert!(tmpfs::nr_pages() <= tmpfs::page_limit(), "{} pages over the limit", tmpfs::nr_pages());
    assert!(at >= 8 << 20, "tmpfs filled up after only {at} bytes");
    // tmpfs is full, but the kernel goes on: a program still runs.
    let pid = proc::spawn("hello").expect("spawn hello with tmpfs full");
    assert_eq!(proc::wait(Some(pid)), Some((pid, WaitStatus::Exited(0))));
    file.truncate(0).expect("truncate");
    assert_eq!(tmpfs::nr_pages(), 0);
    drop(file);
    dir.unlink("big").expect("unlink");
    drop(dir);
    root.rmdir("full").expect("rmdir");
    drop(root);
    heap::shrink();
    assert_eq!(frame::nr_free_frames(), free_before, "every page came back");
}

#[test_case]
fn path_lookup_follows_dot_dot_and_refuses_files_in_the_middle() {
    let a = fresh_dir("lookup");
    let b = a.mkdir("b", 0o755).expect("mkdir");
    b.create("f", 0o644).expect("create");
    let root = fs::root();
    let ino = |i: &InodeRef| i.stat().ino;
    assert_eq!(ino(&path::resolve(&root, "/lookup/b/f").unwrap()), ino(&b.lookup("f").unwrap()));
    assert_eq!(ino(&path::resolve(&b, "../b/./f").unwrap()), ino(&b.lookup("f").unwrap()));
    assert_eq!(ino(&path::resolve(&b, "../../../..").unwrap()), ino(&root), "above the root is the root");
    assert_eq!(path::resolve(&b, "f/x").err(), Some(FsError::NotDirectory));
    assert_eq!(path::resolve(&b, "f/").err(), Some(FsError::NotDirectory));
    assert_eq!(path::resolve(&b, "g").err(), Some(FsError::NotFound));
    assert_eq!(path::resolve(&b, "").err(), Some(FsError::NotFound));
    assert_eq!(path::resolve(&root, "lookup/").unwrap().kind(), FileKind::Directory);
    let (dir, name, is_dir_only) = path::resolve_parent(&root, "/lookup/b/new/").unwrap();
    assert_eq!((ino(&dir), name, is_dir_only), (ino(&b), "new", true));
    assert_eq!(path::resolve_parent(&root, "//").err(), Some(FsError::Busy));
    assert_eq!(path::path_of(&b).as_deref(), Ok("/lookup/b"));
    assert_eq!(path::path_of(&root).as_deref(), Ok("/"));
    b.unlink("f").unwrap();
    a.rmdir("b").unwrap();
    assert_eq!(path::path_of(&b), Err(FsError::NotFound), "a removed directory has no path");
    root.rmdir("lookup").unwrap();
}

fn never_killed() -> bool {
    false
}

#[test_case]
fn a_pipe_keeps_bytes_in_order_and_reports_eof_and_epipe() {
    let pipe = Pipe::new().expect("pipe");
    pipe.open_end(End::Read);
    pipe.open_end(End::Write);
    let data: alloc::vec::Vec<u8> = (0..3000u32).map(|i| (i * 13) as u8).collect();
    let mut copy_in = |at: usize, out: &mut [u8]| {
        out.copy_from_slice(&data[at..at + out.len()]);
        Ok(())
    };
    assert_eq!(pipe.write(3000, false, never_killed, &mut copy_in), Ok(3000));
    assert_eq!(pipe.nr_bytes(), 3000);
    let mut got = alloc::vec![0u8; 3000];
    let mut copy_out = |at: usize, bytes: &[u8]| {
        got[at..at + bytes.len()].copy_from_slice(bytes);
        Ok(())
    };
    assert_eq!(pipe.read(1000, false, never_killed, &mut copy_out), Ok(1000));
    // A failed copy to the reader loses nothing: the bytes stay for the next read.
    let mut failing = |_: usize, _: &[u8]| Err(Errno::EFAULT);
    assert_eq!(pipe.read(500, false, never_killed, &mut failing), Err(Errno::EFAULT));
    let mut rest = |at: usize, bytes: &[u8]| {
        got[1000 + at..1000 + at + bytes.len()].copy_from_slice(bytes);
        Ok(())
    };
    assert_eq!(pipe.read(5000, false, never_killed, &mut rest), Ok(2000));
    assert_eq!(got, data);
    pipe.close_end(End::Write);
    assert_eq!(pipe.read(10, false, never_killed, &mut |_, _| Ok(())), Ok(0), "no writer: end of file");
    pipe.open_end(End::Write);
    pipe.close_end(End::Read);
    let mut zeros = |_: usize, out: &mut [u8]| {
        out.fill(0);
        Ok(())
    };
    assert_eq!(pipe.write(10, false, never_killed, &mut zeros), Err(Errno::EPIPE), "no reader: EPIPE");
    pipe.close_end(End::Write);
}
