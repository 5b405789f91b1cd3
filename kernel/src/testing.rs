//! The in-kernel test runner, printing libtest-style lines so tooling can count them.
//!
//! Each kernel test binary (the library's unit tests and every file in `tests/`)
//! collects its `#[test_case]` functions; [`test_runner`] runs them in order:
//! ```text
//! running 3 tests
//! test boot::breakpoint_returns ... ok
//! test result: ok. 3 passed; 0 failed
//! ```
//! A failing test panics; the panic handler prints `FAILED` with the message, the
//! summary line, and leaves QEMU with the failure code. A test that hangs is ended
//! by the runner's timeout.

use core::any::type_name;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arch::qemu::{self, ExitCode};
use crate::println;

/// Something the test runner can run: any `fn()`.
pub trait Testable {
    /// Runs the test, printing its name and `ok`.
    fn run(&self);
}

impl<T: Fn()> Testable for T {
    fn run(&self) {
        crate::print!("test {} ... ", type_name::<T>());
        self();
        println!("ok");
    }
}

static NR_TESTS: AtomicUsize = AtomicUsize::new(0);
static NR_PASSED: AtomicUsize = AtomicUsize::new(0);

/// Runs every test, prints the summary and exits QEMU with success.
pub fn test_runner(tests: &[&dyn Testable]) {
    NR_TESTS.store(tests.len(), Ordering::Relaxed);
    println!("\nrunning {} tests", tests.len());
    for test in tests {
        test.run();
        NR_PASSED.fetch_add(1, Ordering::Relaxed);
    }
    println!("\ntest result: ok. {} passed; 0 failed", tests.len());
    qemu::exit(ExitCode::Success);
}

/// Reports the running test as failed and exits QEMU with failure.
pub fn test_panic_handler(info: &core::panic::PanicInfo) -> ! {
    x86_64::instructions::interrupts::disable();
    let passed = NR_PASSED.load(Ordering::Relaxed);
    let total = NR_TESTS.load(Ordering::Relaxed);
    crate::arch::serial::emergency_write(format_args!(
        "FAILED\n\npanicked: {}\n\ntest result: FAILED. {} passed; 1 failed; {} not run\n",
        info,
        passed,
        total.saturating_sub(passed + 1)
    ));
    qemu::exit(ExitCode::Failure);
}

/// Prints a one-test result for `harness = false` test binaries and exits QEMU.
pub fn finish_single(name: &str, passed: bool) -> ! {
    let (word, counts, code) = if passed {
        ("ok", "ok. 1 passed; 0 failed", ExitCode::Success)
    } else {
        ("FAILED", "FAILED. 0 passed; 1 failed", ExitCode::Failure)
    };
    crate::arch::serial::emergency_write(format_args!(
        "test {} ... {}\n\ntest result: {}\n",
        name, word, counts
    ));
    qemu::exit(code);
}

/// Stores runner options in this kernel image (the ELF section `.runner_args`).
///
/// The `boot` runner reads the section before it starts QEMU and parses the words
/// like flags after the kernel path (flags given on its command line still win), so
/// a test image can ask for the machine it needs:
/// `kernel::runner_args!(b"--memory 64M --swap-size 32M");`
#[macro_export]
macro_rules! runner_args {
    ($args:literal) => {
        /// Runner options for this image, read by `boot` (see `kernel::runner_args!`).
        #[used]
        #[unsafe(link_section = ".runner_args")]
        static RUNNER_ARGS: [u8; $args.len()] = *$args;
    };
}
