//! `forkstorm`: many processes created and reaped at once.
//!
//! Forks 20 children without waiting; each child forks a grandchild, which exits
//! with 7 at once, waits for it by pid and exits 0 if it saw status 7. The parent
//! then reaps all 20 and checks nothing is left to wait for. Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{Errno, Fork, WaitStatus, check, println};

ulib::entry!(main);

const NR_CHILDREN: usize = 20;
const GRANDCHILD_EXIT_CODE: i32 = 7;

fn main() -> i32 {
    let free_before = ulib::memstat().expect("memstat").free_frames;
    for round in 0..NR_CHILDREN {
        match ulib::fork() {
            Ok(Fork::Child) => ulib::exit(child()),
            Ok(Fork::Parent(_)) => {}
            Err(e) => {
                println!("FAIL: fork number {} failed: {:?}", round, e);
                return 1;
            }
        }
    }
    for _ in 0..NR_CHILDREN {
        let (pid, status) = ulib::wait().expect("wait");
        check!(status == WaitStatus::Exited(0), "child {} {}", pid, status);
    }
    check!(ulib::wait() == Err(Errno::ECHILD), "more children than forked");
    let free_after = ulib::memstat().expect("memstat").free_frames;
    println!(
        "forkstorm: {} children and {} grandchildren reaped; free frames {} -> {}",
        NR_CHILDREN, NR_CHILDREN, free_before, free_after
    );
    0
}

/// Forks a grandchild that exits at once, and waits for it.
fn child() -> i32 {
    match ulib::fork() {
        Ok(Fork::Child) => ulib::exit(GRANDCHILD_EXIT_CODE),
        Ok(Fork::Parent(pid)) => match ulib::waitpid(pid) {
            Ok((reaped, WaitStatus::Exited(7))) if reaped == pid => 0,
            other => {
                println!("FAIL: grandchild {}: wait gave {:?}", pid, other);
                2
            }
        },
        Err(e) => {
            println!("FAIL: fork in child {} failed: {:?}", ulib::getpid(), e);
            3
        }
    }
}
