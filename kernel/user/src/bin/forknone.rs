//! `forknone`: fork succeeds with untouched `MAP_SHARED` mappings that are
//! PROT_NONE or PROT_EXEC-only, and they are shared (issue #10, item 4).
//!
//! Before the fix, fork filled each shared page with a fault that the VMA's
//! protection refused, and reported ENOMEM. The child makes the PROT_NONE mapping
//! writable and writes a value in each page; the parent, after reaping it, makes its
//! own view readable and must see the values. The PROT_EXEC-only mapping reads as
//! zeros in the child (x86 cannot make a page execute-only). Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, WaitStatus, check, map, println, prot};

ulib::entry!(main);

const NR_PAGES: usize = 4;

fn main() -> i32 {
    let none = ulib::mmap(NR_PAGES * PAGE_SIZE, prot::NONE, map::SHARED).expect("mmap PROT_NONE") as *mut u64;
    let exec = ulib::mmap(NR_PAGES * PAGE_SIZE, prot::EXEC, map::SHARED).expect("mmap PROT_EXEC") as *mut u64;
    let fork = ulib::fork();
    check!(fork.is_ok(), "fork with untouched PROT_NONE/PROT_EXEC shared mappings failed: {:?}", fork);
    match fork.expect("checked") {
        Fork::Child => {
            for i in 0..NR_PAGES {
                // SAFETY: inside the PROT_EXEC mapping, which is readable on x86.
                let word = unsafe { exec.add(i * PAGE_SIZE / 8).read_volatile() };
                check!(word == 0, "child: PROT_EXEC page {} reads {:#x}", i, word);
            }
            // SAFETY: only raw pointers point into the mapping; it is made writable first.
            unsafe {
                ulib::mprotect(none as *mut u8, NR_PAGES * PAGE_SIZE, prot::READ | prot::WRITE).expect("mprotect");
                for i in 0..NR_PAGES {
                    none.add(i * PAGE_SIZE / 8).write_volatile(0xf00d_0000 + i as u64);
                }
            }
            ulib::exit(0)
        }
        Fork::Parent(pid) => {
            let (_, status) = ulib::waitpid(pid).expect("wait");
            check!(status == WaitStatus::Exited(0), "child ended with {:?}", status);
        }
    }
    // SAFETY: as above: made readable before it is read.
    unsafe { ulib::mprotect(none as *mut u8, NR_PAGES * PAGE_SIZE, prot::READ) }.expect("mprotect");
    for i in 0..NR_PAGES {
        // SAFETY: inside the now readable mapping.
        let word = unsafe { none.add(i * PAGE_SIZE / 8).read_volatile() };
        check!(word == 0xf00d_0000 + i as u64, "parent: shared page {} reads {:#x}, not the child's value", i, word);
    }
    println!("forknone: forked with PROT_NONE and PROT_EXEC shared mappings; the child's writes are shared");
    0
}
