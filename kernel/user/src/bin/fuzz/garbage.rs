//! Calls with bad arguments, each with the errno Linux gives it (mmap(2),
//! munmap(2), mprotect(2), madvise(2), brk(2), clock_gettime(2)).

use ulib::syscall::{syscall1, syscall2, syscall3, syscall6};
use ulib::{Errno, madv, map, nr, prot};

use super::model::{ARENA_BASE, PAGE};

/// One bad call: its name, the syscall and arguments, and Linux's answer.
pub struct BadCall {
    /// What it tries, for messages.
    pub what: &'static str,
    /// Syscall number.
    pub nr: u64,
    /// Its arguments.
    pub args: [u64; 6],
    /// Linux's result.
    pub linux: Result<u64, Errno>,
}

const ANON_PRIVATE: u64 = map::ANONYMOUS | map::PRIVATE;
const RW: u64 = prot::READ | prot::WRITE;
/// A length so large that rounding it up to pages overflows.
const HUGE_LEN: u64 = u64::MAX - 100;

/// Returns the `i`th bad call (`i < NR_BAD_CALLS`); `brk` is the current break.
pub fn bad_call(i: usize, brk: u64) -> BadCall {
    let a = ARENA_BASE;
    let (what, nr, args, linux) = match i {
        0 => ("mmap len 0", nr::MMAP, [0, 0, RW, ANON_PRIVATE, u64::MAX, 0], Err(Errno::EINVAL)),
        1 => ("mmap FIXED unaligned", nr::MMAP, [a + 1, PAGE, RW, ANON_PRIVATE | map::FIXED, u64::MAX, 0], Err(Errno::EINVAL)),
        2 => ("mmap neither shared nor private", nr::MMAP, [0, PAGE, RW, map::ANONYMOUS, u64::MAX, 0], Err(Errno::EINVAL)),
        3 => ("mmap huge len", nr::MMAP, [0, HUGE_LEN, RW, ANON_PRIVATE, u64::MAX, 0], Err(Errno::ENOMEM)),
        4 => ("mmap len above user space", nr::MMAP, [0, 1 << 47, RW, ANON_PRIVATE, u64::MAX, 0], Err(Errno::ENOMEM)),
        5 => ("mmap unaligned offset", nr::MMAP, [0, PAGE, RW, ANON_PRIVATE, u64::MAX, 1], Err(Errno::EINVAL)),
        6 => ("mmap FIXED at 0", nr::MMAP, [0, PAGE, RW, ANON_PRIVATE | map::FIXED, u64::MAX, 0], Err(Errno::EPERM)),
        7 => ("munmap unaligned", nr::MUNMAP, [a + 8, PAGE, 0, 0, 0, 0], Err(Errno::EINVAL)),
        8 => ("munmap len 0", nr::MUNMAP, [a, 0, 0, 0, 0, 0], Err(Errno::EINVAL)),
        9 => ("munmap kernel half", nr::MUNMAP, [0xffff_8000_0000_0000, PAGE, 0, 0, 0, 0], Err(Errno::EINVAL)),
        10 => ("mprotect unaligned", nr::MPROTECT, [a + 1, PAGE, prot::READ, 0, 0, 0], Err(Errno::EINVAL)),
        11 => ("mprotect bad prot bit", nr::MPROTECT, [a, PAGE, 0x100, 0, 0, 0], Err(Errno::EINVAL)),
        12 => ("mprotect len 0", nr::MPROTECT, [a, 0, prot::READ, 0, 0, 0], Ok(0)),
        13 => ("mprotect wrapping len", nr::MPROTECT, [a, u64::MAX - 4095, prot::READ, 0, 0, 0], Err(Errno::ENOMEM)),
        14 => ("madvise unaligned", nr::MADVISE, [a + 1, PAGE, madv::DONTNEED, 0, 0, 0], Err(Errno::EINVAL)),
        15 => ("madvise bad advice", nr::MADVISE, [a, PAGE, 999, 0, 0, 0], Err(Errno::EINVAL)),
        16 => ("madvise len 0", nr::MADVISE, [a, 0, madv::WILLNEED, 0, 0, 0], Ok(0)),
        17 => ("madvise huge len", nr::MADVISE, [a, HUGE_LEN, madv::PAGEOUT, 0, 0, 0], Err(Errno::EINVAL)),
        18 => ("madvise unmapped", nr::MADVISE, [a - (1 << 30), PAGE, madv::WILLNEED, 0, 0, 0], Err(Errno::ENOMEM)),
        19 => ("brk bit 48", nr::BRK, [(1 << 48) | brk, 0, 0, 0, 0, 0], Ok(brk)),
        20 => ("brk below the heap", nr::BRK, [0x1000, 0, 0, 0, 0, 0], Ok(brk)),
        21 => ("brk in the kernel half", nr::BRK, [0xffff_8000_0000_0000, 0, 0, 0, 0, 0], Ok(brk)),
        22 => ("clock_gettime into the kernel", nr::CLOCK_GETTIME, [1, 0xffff_8000_0000_0000, 0, 0, 0, 0], Err(Errno::EFAULT)),
        23 => ("clock_gettime bad clock", nr::CLOCK_GETTIME, [999, 0, 0, 0, 0, 0], Err(Errno::EINVAL)),
        _ => ("wait4 with no child", nr::WAIT4, [12345, 0, 0, 0, 0, 0], Err(Errno::ECHILD)),
    };
    BadCall { what, nr, args, linux }
}

/// The number of entries [`bad_call`] knows.
pub const NR_BAD_CALLS: usize = 25;

/// Issues `call`; returns the kernel's answer.
pub fn issue(call: &BadCall) -> Result<u64, Errno> {
    let [a1, a2, a3, a4, a5, a6] = call.args;
    // SAFETY: every bad call is refused by Linux without changing memory (the brk
    // calls leave the break where it is, the others fail), and none names memory
    // the program uses: the arena addresses are only ever passed unaligned or with
    // a refused length.
    let ret = unsafe {
        match call.nr {
            nr::BRK => syscall1(call.nr, a1),
            nr::MUNMAP | nr::CLOCK_GETTIME => syscall2(call.nr, a1, a2),
            nr::MPROTECT | nr::MADVISE => syscall3(call.nr, a1, a2, a3),
            _ => syscall6(call.nr, a1, a2, a3, a4, a5, a6),
        }
    };
    Errno::from_ret(ret)
}
