//! `sharedprot`: a `MAP_SHARED` page stays shared through `mprotect` (issue #10, item 3).
//!
//! The parent maps one shared read-write page, writes a value, and forks. The child
//! makes its view read-only, then read-write again, and writes a new value. The
//! parent, after reaping the child, must read the child's value: the write went to
//! the shared frame. (The bug: mprotect left the re-enabled PTE read-only and the
//! write fault copied the page, so parent and child silently diverged.)
//! Then the same in the parent itself, after the child is gone. Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, WaitStatus, check, map, println, prot};

ulib::entry!(main);

const BEFORE_FORK: u64 = 0x1111;
const FROM_CHILD: u64 = 0x2222;
const FROM_PARENT: u64 = 0x3333;

fn main() -> i32 {
    let page = ulib::mmap(PAGE_SIZE, prot::READ | prot::WRITE, map::SHARED).expect("mmap") as *mut u64;
    // SAFETY: a fresh shared read-write page, used only through volatile accesses.
    unsafe { page.write_volatile(BEFORE_FORK) };
    match ulib::fork().expect("fork") {
        Fork::Child => {
            // SAFETY: only raw pointers point into the page; each protection allows
            // the accesses made under it.
            unsafe {
                ulib::mprotect(page as *mut u8, PAGE_SIZE, prot::READ).expect("mprotect read");
                check!(page.read_volatile() == BEFORE_FORK, "child: read-only view lost the value");
                ulib::mprotect(page as *mut u8, PAGE_SIZE, prot::READ | prot::WRITE).expect("mprotect read-write");
                page.write_volatile(FROM_CHILD);
            }
            ulib::exit(0)
        }
        Fork::Parent(pid) => {
            let (_, status) = ulib::waitpid(pid).expect("wait");
            check!(status == WaitStatus::Exited(0), "child ended with {:?}", status);
        }
    }
    // SAFETY: as above.
    let seen = unsafe { page.read_volatile() };
    println!("sharedprot: parent reads {:#x} after the child's mprotect and write", seen);
    check!(seen == FROM_CHILD, "the child's write after mprotect did not reach the shared page ({:#x})", seen);
    // SAFETY: as above.
    unsafe {
        ulib::mprotect(page as *mut u8, PAGE_SIZE, prot::READ).expect("mprotect read");
        ulib::mprotect(page as *mut u8, PAGE_SIZE, prot::READ | prot::WRITE).expect("mprotect read-write");
        page.write_volatile(FROM_PARENT);
        check!(page.read_volatile() == FROM_PARENT, "parent: write after mprotect lost");
    }
    0
}
