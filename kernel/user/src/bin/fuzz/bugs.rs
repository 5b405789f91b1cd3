//! The known kernel bugs the fuzzer steers around until their fixes merge.
//!
//! Each entry is a place where this kernel differs from Linux today (issue #10) and
//! someone else is fixing it. The model always encodes Linux's rule; while a bug is
//! on this list (and not named in `hit=`), the generator simply does not produce the
//! case, and says so at the start of the run. When a fix merges, delete its entry
//! (or run with `hit=NAME` first to see the fuzzer agree with the fixed kernel).

/// One known bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownBug {
    /// Its name for `hit=NAME`.
    pub name: &'static str,
    /// What goes wrong, and what the fuzzer avoids meanwhile.
    pub what: &'static str,
}

/// The steering mask bit of each bug (its index in [`KNOWN_KERNEL_BUGS`]).
pub mod bit {
    /// `shared-mprotect`.
    pub const SHARED_MPROTECT: u32 = 1 << 0;
    /// `wx-unreadable`.
    pub const WX_UNREADABLE: u32 = 1 << 1;
    /// `madvise-hole`.
    pub const MADVISE_HOLE: u32 = 1 << 2;
    /// `len0`.
    pub const LEN0: u32 = 1 << 3;
    /// `munmap-kernel-half`.
    pub const MUNMAP_KERNEL_HALF: u32 = 1 << 4;
    /// `fixed-at-0`.
    pub const FIXED_AT_0: u32 = 1 << 5;
    /// `brk-48-bits`.
    pub const BRK_48_BITS: u32 = 1 << 6;
    /// `fork-shared-none`.
    pub const FORK_SHARED_NONE: u32 = 1 << 7;
    /// `dontneed-shared`.
    pub const DONTNEED_SHARED: u32 = 1 << 8;
    /// `brk-unaligned`.
    pub const BRK_UNALIGNED: u32 = 1 << 9;
}

/// Every bug the fuzzer currently steers around, in [`bit`] order.
pub const KNOWN_KERNEL_BUGS: &[KnownBug] = &[
    KnownBug {
        name: "shared-mprotect",
        what: "MAP_SHARED loses sharing after mprotect(READ) then mprotect(RW) (issue #10 item 3): \
               no mprotect over shared pages",
    },
    KnownBug {
        name: "wx-unreadable",
        what: "PROT_WRITE-only and PROT_EXEC-only pages cannot be read (item 7): such pages are not read",
    },
    KnownBug {
        name: "madvise-hole",
        what: "madvise over an unmapped hole returns 0, Linux ENOMEM (item 7): madvise only over mapped ranges",
    },
    KnownBug {
        name: "len0",
        what: "mprotect/madvise with length 0 give EINVAL, Linux 0 (item 7): no such calls",
    },
    KnownBug {
        name: "munmap-kernel-half",
        what: "munmap outside the user half gives ENOMEM, Linux EINVAL (item 7): no such calls",
    },
    KnownBug { name: "fixed-at-0", what: "MAP_FIXED at 0 gives ENOMEM, Linux EPERM (item 7): no such calls" },
    KnownBug {
        name: "brk-48-bits",
        what: "brk truncates its argument to 48 bits (item 7): no brk((1 << 48) | x)",
    },
    KnownBug {
        name: "fork-shared-none",
        what: "fork fails with ENOMEM while a PROT_NONE or PROT_EXEC-only MAP_SHARED mapping exists \
               (item 4): shared mappings are made with some read or write access",
    },
    KnownBug {
        name: "dontneed-shared",
        what: "MADV_DONTNEED on MAP_SHARED hands out zero pages, Linux keeps the contents (item 7): \
               no DONTNEED over shared pages",
    },
    KnownBug {
        name: "brk-unaligned",
        what: "brk(x) with x not page-aligned sets and returns x rounded up to a page, Linux keeps x \
               (found by this fuzzer, not yet in issue #10): brk gets page-aligned addresses",
    },
];

/// Also known, not steered by a flag: `write()` returns the bytes of a touched
/// PROT_NONE page (item 6) is not exercised because the fuzzer never passes its
/// pages to `write()`; kernel-heap allocation panics under pressure (item 1) are
/// kept away by the arena size (`pages=`) and at most three concurrent children.
pub const NOT_EXERCISED: &str = "write() from a PROT_NONE page (item 6); heap panics under heavy pressure (item 1)";

/// Returns the steering mask for a `hit=` word: every bug, minus those named
/// (`hit=all` steers around none).
pub fn steering_mask(hit: Option<&str>) -> Result<u32, &str> {
    let mut mask = (1u32 << KNOWN_KERNEL_BUGS.len()) - 1;
    for name in hit.unwrap_or("").split(',').filter(|n| !n.is_empty()) {
        if name == "all" {
            mask = 0;
            continue;
        }
        let index = KNOWN_KERNEL_BUGS.iter().position(|b| b.name == name).ok_or(name)?;
        mask &= !(1 << index);
    }
    Ok(mask)
}
