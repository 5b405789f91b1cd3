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
    /// Returns the test's name, `file::function`.
    fn name(&self) -> &'static str;
}

/// Returns true if the test called `name` is selected by the command line's
/// `test.filter=WORD` (a substring of the name; the whole name with `test.exact`),
/// which the runner sets from `cargo test WORD [-- --exact]`. No filter selects all.
fn is_selected(name: &str) -> bool {
    match crate::cmdline::value("test.filter") {
        None => true,
        Some(filter) if crate::cmdline::has("test.exact") => name == filter,
        Some(filter) => name.contains(filter),
    }
}

impl<T: Fn()> Testable for T {
    fn run(&self) {
        crate::print!("test {} ... ", self.name());
        self();
        println!("ok");
    }

    fn name(&self) -> &'static str {
        type_name::<T>()
    }
}

static NR_TESTS: AtomicUsize = AtomicUsize::new(0);
static NR_PASSED: AtomicUsize = AtomicUsize::new(0);

/// Runs every test, prints the summary and exits QEMU with success.
pub fn test_runner(tests: &[&dyn Testable]) {
    let nr_selected = tests.iter().filter(|t| is_selected(t.name())).count();
    let nr_filtered_out = tests.len() - nr_selected;
    NR_TESTS.store(nr_selected, Ordering::Relaxed);
    println!("\nrunning {nr_selected} tests");
    for test in tests.iter().filter(|t| is_selected(t.name())) {
        test.run();
        NR_PASSED.fetch_add(1, Ordering::Relaxed);
    }
    if nr_filtered_out == 0 {
        println!("\ntest result: ok. {nr_selected} passed; 0 failed");
    } else {
        println!("\ntest result: ok. {nr_selected} passed; 0 failed; 0 ignored; 0 measured; {nr_filtered_out} filtered out");
    }
    crate::power_off(ExitCode::Success);
}

/// The page-fault error code of a user-mode read of a page not present (the U bit),
/// for tests that call `mm::fault::handle_page_fault` as the trap handler would.
pub const USER_READ: u64 = 1 << 2;
/// The page-fault error code of a user-mode write of a page not present (W and U).
pub const USER_WRITE: u64 = (1 << 1) | USER_READ;

/// A fresh address space with `nr_pages` of anonymous memory written by user-mode
/// write faults in address order (each one a new anonymous page); returns the space
/// and the start of the memory. For tests that need resident user pages without
/// running a program (reclaim, the rmap, the audit).
pub fn space_with_written_pages(nr_pages: u64) -> (crate::mm::rmap::SpaceRef, crate::mm::VirtAddr) {
    use crate::mm::addr_space::{AddressSpace, MapRequest, VmProt};
    use crate::mm::fault::{self, FaultOutcome};
    let space = AddressSpace::new().expect("new space");
    let len = nr_pages * crate::mm::PAGE_SIZE;
    let start = space.lock().mmap(0, len, VmProt::READ_WRITE, MapRequest::default()).expect("mmap");
    for i in 0..nr_pages {
        let outcome = fault::handle_page_fault(&mut space.lock(), start + i * crate::mm::PAGE_SIZE, USER_WRITE);
        assert_eq!(outcome, Ok(FaultOutcome::AnonymousPage), "page {i}");
    }
    (space, start)
}

/// Runs the program `name` with `args` to its end and returns how it ended, after
/// checking that every process is gone, the audit is clean and no user frame is left.
pub fn run_once(name: &str, args: &str) -> crate::proc::task::WaitStatus {
    let pid = crate::proc::spawn_with_args(name, args).unwrap_or_else(|e| panic!("spawn {name}: {e:?}"));
    let (reaped, status) = crate::proc::wait(Some(pid)).expect("no child to wait for");
    assert_eq!(reaped, pid);
    crate::proc::task::wait_all(60_000).unwrap_or_else(|n| panic!("{name}: {n} processes never exited"));
    let census =
        crate::mm::check::check_consistency().unwrap_or_else(|e| panic!("{name}: inconsistent after it was reaped: {e}"));
    assert_eq!(census.nr_frames, 0, "{name}: user frames left: {census:?}");
    status
}

/// Takes free frames (2 MiB blocks, then single frames) until only `nr_free` are
/// left, or nothing more can be taken; they are freed when the returned blocks drop.
/// For tests that need memory pressure without a program to make it.
pub fn balloon_leaving(nr_free: u64) -> alloc::vec::Vec<crate::mm::frame::OwnedFrames> {
    use crate::mm::{Order, frame};
    let mut blocks = alloc::vec::Vec::new();
    for order in [Order(9), Order(0)] {
        while frame::nr_free_frames() >= nr_free + order.nr_frames() {
            match frame::OwnedFrames::new_zeroed(order) {
                Ok(block) => blocks.push(block),
                Err(_) => break,
            }
        }
    }
    blocks
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

/// A panic message copied into a fixed buffer (256 bytes, the rest cut off), for
/// images that expect a panic: the heap may be what broke, so nothing is allocated.
pub struct PanicText {
    bytes: [u8; 256],
    len: usize,
}

impl PanicText {
    /// Copies the message of `info`.
    pub fn of(info: &core::panic::PanicInfo) -> PanicText {
        use core::fmt::Write;
        let mut text = PanicText { bytes: [0; 256], len: 0 };
        let _ = write!(text, "{}", info.message());
        text
    }

    /// Returns true if the message holds `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.bytes[..self.len].windows(needle.len()).any(|w| w == needle.as_bytes())
    }
}

impl core::fmt::Write for PanicText {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.bytes.len() - self.len;
        let n = s.len().min(room);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
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
