//! The model: what every page of the fuzzer's memory must hold, and what Linux
//! says each call must return. The model is the truth; the kernel is checked
//! against it.
//!
//! The fuzzer's memory is an *arena* of `nr_arena` pages at [`ARENA_BASE`], far from
//! where the kernel places mappings on its own, and the program break's first
//! [`MAX_BRK_PAGES`] pages. Page index `i < nr_arena` is arena page `i`; the next
//! [`MAX_BRK_PAGES`] indices are the heap pages above the (page-aligned) break base.
//!
//! Each page has a state ([`PageModel`]): mapped or not, its protection, private or
//! shared, and a *tag*: which write put its contents there (0 = never written
//! since it was mapped, so it must read as zeros). A page with tag `t` holds `t` in
//! its first word and `t.rotate_left(17) ^ address` in its last, so a page that
//! comes back from swap at the wrong address, from another process or stale is
//! caught. The model lives in the process's own private memory, so `fork` copies it
//! too: a child's private pages and its model diverge from the parent's together.

use ulib::prot;

/// Start of the arena (16 TiB): the kernel's own mmap placement never goes here.
pub const ARENA_BASE: u64 = 0x1000_0000_0000;
/// Heap pages (above the break base) the model follows.
pub const MAX_BRK_PAGES: usize = 256;
/// Bytes in a page, as a `u64`.
pub const PAGE: u64 = ulib::PAGE_SIZE as u64;
/// Index of the last word of a page.
pub const LAST_WORD: usize = ulib::PAGE_SIZE / 8 - 1;

/// What one page must be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageModel {
    /// Mapped (by mmap or brk).
    pub is_mapped: bool,
    /// `prot` bits of the mapping.
    pub prot: u8,
    /// Part of a `MAP_SHARED` mapping.
    pub is_shared: bool,
    /// Which write produced the contents (0: none, the page reads as zeros).
    pub tag: u64,
}

impl PageModel {
    /// A freshly mapped page: zeros.
    pub const fn fresh(prot: u8, is_shared: bool) -> PageModel {
        PageModel { is_mapped: true, prot, is_shared, tag: 0 }
    }

    /// Linux on x86-64 lets a process read any page mapped with some access:
    /// `PROT_WRITE` and `PROT_EXEC` imply `PROT_READ` (the page tables cannot say
    /// write-only or execute-only without protection keys).
    pub const fn is_readable(self) -> bool {
        self.is_mapped && self.prot != prot::NONE as u8
    }

    /// The process (and `copy_to_user`) may write the page.
    pub const fn is_writable(self) -> bool {
        self.is_mapped && self.prot & prot::WRITE as u8 != 0
    }
}

/// Returns the (first, last) words a page with `tag` at `addr` must hold.
pub const fn expected_words(tag: u64, addr: u64) -> (u64, u64) {
    if tag == 0 { (0, 0) } else { (tag, tag.rotate_left(17) ^ addr) }
}

/// Returns a nonzero tag, unique per (writer, operation, page) in practice.
pub fn make_tag(writer: u64, op_index: u64, page: usize) -> u64 {
    let mut x = (writer << 44) ^ (op_index << 12) ^ page as u64;
    // splitmix64's finaliser: neighbouring inputs give unrelated tags.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)) | 1
}

/// Names a protection the way `/proc/PID/maps` does (`rw-`, `--x`, ...).
pub fn prot_name(bits: u8) -> &'static str {
    const NAMES: [&str; 8] = ["---", "r--", "-w-", "rw-", "--x", "r-x", "-wx", "rwx"];
    NAMES[usize::from(bits & 7)]
}

/// Linux's answer for `mprotect`/`madvise` over pages `[first, end)` of the arena:
/// `ENOMEM` when some page of the range is not mapped.
pub fn has_hole(pages: &[PageModel]) -> bool {
    pages.iter().any(|p| !p.is_mapped)
}

/// The xorshift64* generator: the whole run follows from its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Returns a generator for `seed` (any value, 0 included).
    pub const fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d | 1)
    }

    /// Returns the next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Returns a number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Returns true with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// Returns a length in `1..=max`, short ones more often (half the time at most 4).
    pub fn length(&mut self, max: u64) -> u64 {
        if self.percent(50) { 1 + self.below(max.min(4)) } else { 1 + self.below(max) }
    }
}
