//! `orphans`: a parent that forks 32 children and exits without waiting for them.
//!
//! Each child touches a page of its own (so it holds memory), yields for a while so
//! that its parent is gone first, and exits 0. Nobody is left to `wait` for them:
//! the kernel must re-parent them to its reaper, which reaps them, or their kernel
//! stacks and task entries are lost (issue #10 item 5). Exit code 0.
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, map, prot};

ulib::entry!(main);

const NR_CHILDREN: usize = 32;
/// Yields each child makes before exiting: long enough for the parent to exit first.
const CHILD_YIELDS: usize = 200;

fn main() -> i32 {
    for _ in 0..NR_CHILDREN {
        match ulib::fork().expect("fork") {
            Fork::Child => {
                let page = ulib::mmap(PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap");
                // SAFETY: a fresh private page of our own.
                unsafe { page.write_volatile(1) };
                for _ in 0..CHILD_YIELDS {
                    ulib::yield_now();
                }
                ulib::exit(0);
            }
            Fork::Parent(_) => {}
        }
    }
    ulib::println!("orphans: parent {} exits, leaving {NR_CHILDREN} children", ulib::getpid());
    0
}
