//! Page-sized memory operations: zero a frame, copy a frame; checksum and compare
//! two frames (for same-page merging, `ksm.rs`).
//!
//! Under QEMU's TCG emulator the way a page is filled dominates the cost of a page
//! fault: each guest instruction is translated, and string instructions like
//! `rep stosb` run through a slow per-byte helper. So there are several methods,
//! the bench mode measures all of them (`cargo run -- --bench`), and the kernel uses
//! the one selected in [`ZERO_METHOD`] / [`COPY_METHOD`] (the measured winner by
//! default; `docs/benchmarks.md` has the table).
//!
//! All methods are inline assembly so the compiler cannot swap in a `memset` call
//! that would hide what is being measured.

use core::sync::atomic::{AtomicU8, Ordering};

use super::{Frame, PAGE_SIZE, frame_ptr};

/// A way to zero or copy a 4 KiB page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PageMethod {
    /// `rep stosb` / `rep movsb`: one instruction, byte granularity ("ERMS").
    RepByte = 0,
    /// `rep stosq` / `rep movsq`: one instruction, 8 bytes a step.
    RepQuad = 1,
    /// A loop of 64-bit moves, 8 per iteration.
    Loop64 = 2,
    /// A loop of non-temporal `movnti` stores (bypass the cache), then `sfence`.
    NonTemporal = 3,
}

impl PageMethod {
    /// Every method, in enum order.
    pub const ALL: [PageMethod; 4] = [Self::RepByte, Self::RepQuad, Self::Loop64, Self::NonTemporal];

    /// Returns a short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::RepByte => "rep stosb/movsb",
            Self::RepQuad => "rep stosq/movsq",
            Self::Loop64 => "64-bit mov loop",
            Self::NonTemporal => "movnti loop",
        }
    }

    fn from_u8(v: u8) -> Self {
        Self::ALL[v as usize % Self::ALL.len()]
    }
}

/// The method [`zero_page`] uses. Loop64 won on QEMU 7.2 TCG (see `docs/benchmarks.md`).
pub static ZERO_METHOD: AtomicU8 = AtomicU8::new(PageMethod::Loop64 as u8);
/// The method [`copy_page`] uses. Loop64 won on QEMU 7.2 TCG (see `docs/benchmarks.md`).
pub static COPY_METHOD: AtomicU8 = AtomicU8::new(PageMethod::Loop64 as u8);

/// Fills the 4096 bytes at `dst` with zeros using `method`.
///
/// # Safety
/// `dst` must be 8-byte aligned and valid for writes of 4096 bytes.
pub unsafe fn zero_page_with(dst: *mut u8, method: PageMethod) {
    // SAFETY: (all arms) the caller guarantees 4096 writable, aligned bytes at `dst`;
    // each sequence writes exactly those bytes and clobbers only the named registers.
    unsafe {
        match method {
            PageMethod::RepByte => core::arch::asm!(
                "rep stosb", inout("rdi") dst => _, inout("rcx") 4096usize => _, in("al") 0u8,
                options(nostack)
            ),
            PageMethod::RepQuad => core::arch::asm!(
                "rep stosq", inout("rdi") dst => _, inout("rcx") 512usize => _, in("rax") 0u64,
                options(nostack)
            ),
            PageMethod::Loop64 => core::arch::asm!(
                "2:",
                "mov qword ptr [rdi], {z}", "mov qword ptr [rdi + 8], {z}",
                "mov qword ptr [rdi + 16], {z}", "mov qword ptr [rdi + 24], {z}",
                "mov qword ptr [rdi + 32], {z}", "mov qword ptr [rdi + 40], {z}",
                "mov qword ptr [rdi + 48], {z}", "mov qword ptr [rdi + 56], {z}",
                "add rdi, 64", "dec ecx", "jnz 2b",
                z = in(reg) 0u64, inout("rdi") dst => _, inout("ecx") 64u32 => _,
                options(nostack)
            ),
            PageMethod::NonTemporal => core::arch::asm!(
                "2:",
                "movnti qword ptr [rdi], {z}", "movnti qword ptr [rdi + 8], {z}",
                "movnti qword ptr [rdi + 16], {z}", "movnti qword ptr [rdi + 24], {z}",
                "movnti qword ptr [rdi + 32], {z}", "movnti qword ptr [rdi + 40], {z}",
                "movnti qword ptr [rdi + 48], {z}", "movnti qword ptr [rdi + 56], {z}",
                "add rdi, 64", "dec ecx", "jnz 2b", "sfence",
                z = in(reg) 0u64, inout("rdi") dst => _, inout("ecx") 64u32 => _,
                options(nostack)
            ),
        }
    }
}

/// Copies 4096 bytes from `src` to `dst` using `method`.
///
/// # Safety
/// Both pointers must be 8-byte aligned, valid for 4096 bytes, and not overlap.
pub unsafe fn copy_page_with(dst: *mut u8, src: *const u8, method: PageMethod) {
    // SAFETY: (all arms) the caller guarantees two valid, disjoint 4096-byte ranges;
    // each sequence reads only `src`'s bytes and writes only `dst`'s.
    unsafe {
        match method {
            PageMethod::RepByte => core::arch::asm!(
                "rep movsb", inout("rdi") dst => _, inout("rsi") src => _, inout("rcx") 4096usize => _,
                options(nostack)
            ),
            PageMethod::RepQuad => core::arch::asm!(
                "rep movsq", inout("rdi") dst => _, inout("rsi") src => _, inout("rcx") 512usize => _,
                options(nostack)
            ),
            PageMethod::Loop64 => core::arch::asm!(
                "2:",
                "mov {a}, qword ptr [rsi]", "mov {b}, qword ptr [rsi + 8]",
                "mov qword ptr [rdi], {a}", "mov qword ptr [rdi + 8], {b}",
                "mov {a}, qword ptr [rsi + 16]", "mov {b}, qword ptr [rsi + 24]",
                "mov qword ptr [rdi + 16], {a}", "mov qword ptr [rdi + 24], {b}",
                "mov {a}, qword ptr [rsi + 32]", "mov {b}, qword ptr [rsi + 40]",
                "mov qword ptr [rdi + 32], {a}", "mov qword ptr [rdi + 40], {b}",
                "mov {a}, qword ptr [rsi + 48]", "mov {b}, qword ptr [rsi + 56]",
                "mov qword ptr [rdi + 48], {a}", "mov qword ptr [rdi + 56], {b}",
                "add rsi, 64", "add rdi, 64", "dec ecx", "jnz 2b",
                a = out(reg) _, b = out(reg) _,
                inout("rdi") dst => _, inout("rsi") src => _, inout("ecx") 64u32 => _,
                options(nostack)
            ),
            PageMethod::NonTemporal => core::arch::asm!(
                "2:",
                "mov {a}, qword ptr [rsi]", "mov {b}, qword ptr [rsi + 8]",
                "movnti qword ptr [rdi], {a}", "movnti qword ptr [rdi + 8], {b}",
                "mov {a}, qword ptr [rsi + 16]", "mov {b}, qword ptr [rsi + 24]",
                "movnti qword ptr [rdi + 16], {a}", "movnti qword ptr [rdi + 24], {b}",
                "mov {a}, qword ptr [rsi + 32]", "mov {b}, qword ptr [rsi + 40]",
                "movnti qword ptr [rdi + 32], {a}", "movnti qword ptr [rdi + 40], {b}",
                "mov {a}, qword ptr [rsi + 48]", "mov {b}, qword ptr [rsi + 56]",
                "movnti qword ptr [rdi + 48], {a}", "movnti qword ptr [rdi + 56], {b}",
                "add rsi, 64", "add rdi, 64", "dec ecx", "jnz 2b", "sfence",
                a = out(reg) _, b = out(reg) _,
                inout("rdi") dst => _, inout("rsi") src => _, inout("ecx") 64u32 => _,
                options(nostack)
            ),
        }
    }
}

/// Zeroes `frame` through the direct map with the selected method.
///
/// # Safety
/// The caller owns `frame` for writing (see `frame::write_bytes`): it just
/// allocated it, or holds its only reference, and nothing else accesses it.
pub unsafe fn zero_page(frame: Frame) {
    let method = PageMethod::from_u8(ZERO_METHOD.load(Ordering::Relaxed));
    // SAFETY: the direct map covers every frame with 4096 aligned, writable bytes; the
    // caller owns `frame` (this function's contract).
    unsafe { zero_page_with(frame_ptr(frame), method) }
}

/// Copies frame `src` to frame `dst` through the direct map with the selected method.
///
/// # Safety
/// The caller owns `dst` for writing (as for [`zero_page`]) and keeps `src`
/// allocated, unwritten, during the copy.
pub unsafe fn copy_page(dst: Frame, src: Frame) {
    assert_ne!(dst, src, "copy_page: source and destination are the same frame");
    let method = PageMethod::from_u8(COPY_METHOD.load(Ordering::Relaxed));
    // SAFETY: two distinct frames are two disjoint, aligned 4096-byte ranges in the
    // direct map; ownership of `dst` and a stable `src` are this function's contract.
    unsafe { copy_page_with(frame_ptr(dst), frame_ptr(src), method) }
}

/// Returns the 64-bit words of a user frame, read through the direct map with
/// volatile loads: the frame may be mapped writable in a process running on another
/// CPU, so what this returns is then only a snapshot. Same-page merging uses it for
/// checksums (hints) and compares again once the page is write-protected.
fn user_page_words(frame: Frame) -> impl Iterator<Item = u64> {
    let words = frame_ptr(frame).cast::<u64>();
    (0..PAGE_SIZE as usize / 8).map(move |i| {
        // SAFETY: `i` is inside the frame, which is RAM in the direct map; a volatile
        // load of memory another agent may write is a plain machine read (the value
        // may be stale, which the callers allow for: see above).
        unsafe { words.add(i).read_volatile() }
    })
}

/// Returns the checksum of a user frame's bytes (`mm_core::ksm::page_checksum`);
/// a snapshot if a process may write it meanwhile (see `user_page_words`).
pub fn user_page_checksum(frame: Frame) -> u64 {
    mm_core::ksm::page_checksum_words(user_page_words(frame))
}

/// Returns true if two user frames hold the same bytes. Exact when neither is
/// written meanwhile (both write-protected, their TLB entries flushed).
pub fn user_pages_equal(a: Frame, b: Frame) -> bool {
    user_page_words(a).eq(user_page_words(b))
}
