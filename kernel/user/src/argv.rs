//! The program's arguments, as the kernel left them on the initial stack.
//!
//! ```text
//!   initial rsp -> argc
//!                  argv[0] -> "cat\0"      (pointers into the strings area,
//!                  argv[1] -> "/proc/meminfo\0"   higher up the same stack)
//!                  NULL
//!                  envp..., NULL, auxv...
//! ```
//! `_start` (see [`crate::entry!`]) hands the initial `rsp` to
//! [`set_initial_stack`] before `main` runs; nothing writes that part of the stack
//! afterwards (the program's frames grow down from below it), so the strings stay
//! valid for the whole run and are handed out as `&'static str`.

use core::ffi::CStr;
use core::sync::atomic::{AtomicU64, Ordering};

/// The initial stack pointer, 0 before `_start` ran.
static INITIAL_STACK: AtomicU64 = AtomicU64::new(0);

/// Records the initial stack pointer; called once by `_start`.
#[doc(hidden)]
pub fn set_initial_stack(rsp: u64) {
    INITIAL_STACK.store(rsp, Ordering::Relaxed);
}

/// Returns argc (0 if the stack was not recorded).
pub fn argc() -> usize {
    let rsp = INITIAL_STACK.load(Ordering::Relaxed);
    if rsp == 0 {
        return 0;
    }
    // SAFETY: `rsp` is the initial stack pointer the kernel set up: its first word
    // is argc, readable and never written by the program.
    unsafe { *(rsp as *const u64) as usize }
}

/// Returns argument `index` (argv[0] is the program's name); `None` past the end
/// or if it is not UTF-8.
pub fn arg(index: usize) -> Option<&'static str> {
    if index >= argc() {
        return None;
    }
    let rsp = INITIAL_STACK.load(Ordering::Relaxed);
    // SAFETY: argv[0..argc] follow argc on the initial stack (index < argc), each a
    // pointer to a NUL-terminated string on the same stack, which lives and stays
    // unchanged as long as the process.
    let text = unsafe {
        let ptr = *((rsp + 8 + 8 * index as u64) as *const *const core::ffi::c_char);
        CStr::from_ptr(ptr)
    };
    text.to_str().ok()
}

/// Returns the arguments after the program's name.
pub fn args() -> impl Iterator<Item = &'static str> {
    (1..argc()).filter_map(arg)
}
