//! `ulib`: the runtime every user program links: entry point, syscalls, printing, panics.
//!
//! A user program is a `#![no_std]`, `#![no_main]` binary in `src/bin/` that runs in
//! ring 3 at [`abi::USER_IMAGE_BASE`]. It writes a `fn main() -> i32` and names it
//! with [`entry!`]; the returned value becomes the exit code:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! ulib::entry!(main);
//! fn main() -> i32 {
//!     ulib::println!("hello from pid {}", ulib::getpid());
//!     0
//! }
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | [`syscall`] | `syscall0`..`syscall6`: the raw `syscall` instruction (the only `unsafe` asm) |
//! | [`sys`] | wrappers returning `Result<_, Errno>`: `write`, `exit`, `fork`, `wait`, `mmap`, ... |
//! | [`mod@argv`] | `argv()`, `arg(i)`: the program's arguments, read from the initial stack (as `execve` leaves them) |
//! | [`fs`] | the file syscalls: `open`, `read`, `close`, `lseek`, `stat`, `getdents64`, `pipe`, `dup2`, ... |
//! | [`mod@print`] | the console behind [`print!`]/[`println!`]: one `write` per line |
//! | [`pattern`] | page patterns from (seed, address), to fill and verify memory |
//! | [`linux`] | when the same program runs on Linux: reading `/proc/vmstat` |
//!
//! A panic prints `user panic: <message> at <file>:<line>` and exits with
//! [`PANIC_EXIT_CODE`]; [`check!`] prints `FAIL: ...` and exits with 1. There is no
//! heap: programs use the stack and `mmap`.
//!
//! The kernel starts a program at its ELF entry, `_start`, with `rsp` pointing at
//! argc, argv, envp and the auxiliary vector (the System V initial stack that C
//! programs read, see `mm_core::initial_stack`); `_start` passes that pointer to
//! [`argv`] (for the tools, which take Unix arguments), aligns the stack and calls
//! `main`. Older programs get their argument string from the `args` syscall.
#![no_std]

pub mod argv;
pub mod fs;
pub mod linux;
pub mod pattern;
pub mod print;
pub mod procfs;
pub mod sys;
pub mod syscall;

pub use abi::{Errno, IoVec, MemStat, PAGE_SIZE, SIGKILL, Stat, WaitStatus, madv, map, nr, prot};
pub use sys::*;

/// The exit code of a program that panicked (Rust's test harness uses 101 too).
pub const PANIC_EXIT_CODE: i32 = 101;

/// Defines the program's entry point `_start`, which runs `$main` and exits with its result.
///
/// `_start` is a naked function: at entry there is no return address and no
/// promise about `rsp` except that it points into the stack, so it clears `rbp`
/// (the end of the frame-pointer chain, for debuggers), rounds `rsp` down to 16
/// bytes as the System V ABI requires before a `call`, and calls into Rust.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// The program's entry point (ELF `e_entry`); the kernel jumps here in ring 3.
        #[unsafe(naked)]
        #[unsafe(no_mangle)]
        extern "C" fn _start() -> ! {
            core::arch::naked_asm!(
                "xor ebp, ebp",
                "mov rdi, rsp", // the initial stack: argc, argv, ... (for `ulib::argv`)
                "and rsp, -16",
                "call {start}",
                "ud2",
                start = sym __ulib_start,
            )
        }

        /// Records where the initial stack is, runs `main` and exits with its result.
        extern "C" fn __ulib_start(initial_stack: u64) -> ! {
            $crate::argv::set_initial_stack(initial_stack);
            let main: fn() -> i32 = $main;
            $crate::exit(main())
        }
    };
}

/// Exits with code 1 after printing `FAIL: <message>` if `$cond` is false.
///
/// Programs use it for the checks a kernel test relies on: exit 0 means every
/// check passed.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            $crate::println!("FAIL: {}", format_args!($($arg)+));
            $crate::exit(1);
        }
    };
}

/// Returns the value of `got`, or fails the program (exit 1) naming `case`: the
/// companion of [`check!`] for calls that must succeed.
pub fn expect_ok<T: core::fmt::Debug>(case: &str, got: Result<T, Errno>) -> T {
    match got {
        Ok(v) => v,
        Err(e) => {
            println!("FAIL: {}: got {:?}, want success", case, e);
            exit(1)
        }
    }
}

/// Fails the program (exit 1) naming `case` unless `got` is the error `want`.
pub fn expect_err<T: core::fmt::Debug>(case: &str, got: Result<T, Errno>, want: Errno) {
    if let Err(e) = &got
        && *e == want
    {
        return;
    }
    println!("FAIL: {}: got {:?}, want {:?}", case, got, want);
    exit(1)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(loc) => println!("user panic: {} at {}:{}", info.message(), loc.file(), loc.line()),
        None => println!("user panic: {}", info.message()),
    }
    exit(PANIC_EXIT_CODE)
}
