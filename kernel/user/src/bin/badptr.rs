//! `badptr`: the kernel refuses bad user pointers with `EFAULT` instead of crashing.
//!
//! Passes `write`, `memstat` and `maps` an unmapped user address, a kernel
//! address, and a buffer that runs off the top of user space; each must fail
//! with `EFAULT`. Exit 0 on success.
#![no_std]
#![no_main]

use ulib::syscall::{syscall1, syscall2, syscall3};
use ulib::{Errno, check, nr, println};

ulib::entry!(main);

/// Nothing is mapped here.
const UNMAPPED: u64 = 0xdead_0000;
/// The start of the kernel's direct map of physical memory.
const KERNEL: u64 = 0xffff_8000_0000_0000;
/// 4 bytes below the end of the lower half: a 10-byte buffer here leaves user space.
const END_OF_USER: u64 = 0x7fff_ffff_fffc;

fn main() -> i32 {
    for (what, addr) in [("unmapped", UNMAPPED), ("kernel", KERNEL), ("end-of-user", END_OF_USER)] {
        // SAFETY: the kernel may only read from `addr`; nothing of ours is at risk.
        let ret = Errno::from_ret(unsafe { syscall3(nr::WRITE, 1, addr, 10) });
        check!(ret == Err(Errno::EFAULT), "write from {} address {:#x}: {:?}", what, addr, ret);
        // SAFETY: the kernel must refuse to write to `addr`; nothing of ours is there.
        let ret = Errno::from_ret(unsafe { syscall1(nr::MEMSTAT, addr) });
        check!(ret == Err(Errno::EFAULT), "memstat into {} address {:#x}: {:?}", what, addr, ret);
        // SAFETY: as for memstat.
        let ret = Errno::from_ret(unsafe { syscall2(nr::MAPS, addr, 10) });
        check!(ret == Err(Errno::EFAULT), "maps into {} address {:#x}: {:?}", what, addr, ret);
        println!("badptr: write, memstat and maps with the {} address {:#x}: EFAULT", what, addr);
    }
    0
}
