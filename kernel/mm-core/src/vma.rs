//! Virtual memory areas: the per-address-space map of what is mapped where, and how.
//!
//! A [`Vma`] is a page-aligned, half-open range `[start, end)` of user virtual
//! addresses that share one protection ([`VmProt`]), one set of flags ([`VmFlags`])
//! and one [`Backing`] (anonymous memory, or a slice of a loaded image). A
//! [`VmaTree`] holds one address space's VMAs in a `BTreeMap` keyed by start
//! address, so [`VmaTree::find`] is O(log n), like Linux's `find_vma`, and the free
//! gaps between them in a [`gap_index::GapIndex`] that knows the largest gap of
//! each subtree, so `mmap`'s search for a hole ([`VmaTree::find_gap_top_down`]) is
//! O(log n) too, like Linux's `vm_unmapped_area`.
//!
//! The tree keeps itself in *canonical form*: sorted, non-overlapping, aligned,
//! non-empty, and with no two neighbours that could be one VMA (same protection,
//! flags and contiguous backing). Every mutating operation validates all of its
//! arguments first and only then commits, so an `Err` means the tree is untouched.
//! The range operations ([`VmaTree::unmap_range`], [`VmaTree::protect_range`])
//! return the pieces they affected so the caller can fix up page tables.
//!
//! Neighbours: [`crate::addr`] supplies [`VirtAddr`] and [`PAGE_SIZE`]; the
//! kernel's `mm/addr_space.rs` wraps a `VmaTree` with the page table and a lock
//! and implements `mmap`/`munmap`/`mprotect`/`brk` on top of it; `mm/fault.rs`
//! asks [`VmaTree::find`] whether a faulting address is mapped at all.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cell::Cell;
use core::fmt;
use core::ops::BitOr;

use crate::addr::{PAGE_SIZE, VirtAddr};

pub mod gap_index;

use gap_index::GapIndex;

/// Access permissions of a VMA: any combination of read, write and execute.
///
/// The bit values equal Linux's `PROT_READ`/`PROT_WRITE`/`PROT_EXEC`, so a
/// syscall's `prot` argument converts with [`VmProt::from_bits_truncate`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VmProt(u8);

impl VmProt {
    /// No access at all (`PROT_NONE`): any touch faults.
    pub const NONE: VmProt = VmProt(0);
    /// The pages may be read.
    pub const READ: VmProt = VmProt(1);
    /// The pages may be written.
    pub const WRITE: VmProt = VmProt(2);
    /// The pages may be executed.
    pub const EXEC: VmProt = VmProt(4);
    /// Read and write: the usual protection of data, heap and stack.
    pub const READ_WRITE: VmProt = VmProt(1 | 2);
    /// Read and execute: the usual protection of code.
    pub const READ_EXEC: VmProt = VmProt(1 | 4);

    /// Creates a protection from `PROT_*` bits, ignoring bits it does not know.
    pub const fn from_bits_truncate(bits: u8) -> VmProt {
        VmProt(bits & 0b111)
    }

    /// Returns the `PROT_*` bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Returns true if every permission in `other` is also in `self`.
    pub const fn contains(self, other: VmProt) -> bool {
        self.0 & other.0 == other.0
    }

    /// Returns the permissions in either `self` or `other`.
    pub const fn union(self, other: VmProt) -> VmProt {
        VmProt(self.0 | other.0)
    }
}

impl BitOr for VmProt {
    type Output = VmProt;
    fn bitor(self, rhs: VmProt) -> VmProt {
        self.union(rhs)
    }
}

/// Formats as the three permission letters of `/proc/pid/maps`, e.g. `r-x`.
impl fmt::Display for VmProt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letter = |p: VmProt, c: char| if self.contains(p) { c } else { '-' };
        write!(f, "{}{}{}", letter(Self::READ, 'r'), letter(Self::WRITE, 'w'), letter(Self::EXEC, 'x'))
    }
}

impl fmt::Debug for VmProt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VmProt({self})")
    }
}

/// Properties of a VMA other than its permissions and backing.
///
/// A VMA without [`VmFlags::SHARED`] is private: writes are copy-on-write and never
/// seen by other address spaces (`MAP_PRIVATE`). Whether a VMA is anonymous is a
/// property of its [`Backing`], so it is not repeated here.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VmFlags(u32);

impl VmFlags {
    /// Writes are visible to every address space mapping the same memory (`MAP_SHARED`).
    pub const SHARED: VmFlags = VmFlags(1 << 0);
    /// The VMA may be extended downwards by a fault just below it (`VM_GROWSDOWN`).
    pub const GROWS_DOWN: VmFlags = VmFlags(1 << 1);
    /// The VMA is a thread's user stack (shown as `[stack]`).
    pub const STACK: VmFlags = VmFlags(1 << 2);
    /// The VMA is the `brk` heap (shown as `[heap]`).
    pub const HEAP: VmFlags = VmFlags(1 << 3);
    /// A `fork` child does not get this VMA (`MADV_DONTFORK`, Linux's `VM_DONTCOPY`).
    pub const DONT_FORK: VmFlags = VmFlags(1 << 4);
    /// Transparent huge pages wanted here (`MADV_HUGEPAGE`, Linux's `VM_HUGEPAGE`).
    pub const HUGEPAGE: VmFlags = VmFlags(1 << 5);
    /// Never transparent huge pages here (`MADV_NOHUGEPAGE`, Linux's `VM_NOHUGEPAGE`).
    pub const NO_HUGEPAGE: VmFlags = VmFlags(1 << 6);
    /// Same-page merging may merge this VMA's pages (`MADV_MERGEABLE`, Linux's `VM_MERGEABLE`).
    pub const MERGEABLE: VmFlags = VmFlags(1 << 7);

    /// Returns the empty set: a private mapping with no special role.
    pub const fn empty() -> VmFlags {
        VmFlags(0)
    }

    /// Returns the raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Returns true if every flag in `other` is also in `self`.
    pub const fn contains(self, other: VmFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Returns the flags in either `self` or `other`.
    pub const fn union(self, other: VmFlags) -> VmFlags {
        VmFlags(self.0 | other.0)
    }

    /// Returns the flags in `self` that are not in `other`.
    pub const fn difference(self, other: VmFlags) -> VmFlags {
        VmFlags(self.0 & !other.0)
    }

    /// Returns true for a shared mapping, false for a private (copy-on-write) one.
    pub const fn is_shared(self) -> bool {
        self.contains(Self::SHARED)
    }
}

impl BitOr for VmFlags {
    type Output = VmFlags;
    fn bitor(self, rhs: VmFlags) -> VmFlags {
        self.union(rhs)
    }
}

impl fmt::Debug for VmFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(VmFlags, &str); 8] = [
            (VmFlags::SHARED, "SHARED"),
            (VmFlags::GROWS_DOWN, "GROWS_DOWN"),
            (VmFlags::STACK, "STACK"),
            (VmFlags::HEAP, "HEAP"),
            (VmFlags::DONT_FORK, "DONT_FORK"),
            (VmFlags::HUGEPAGE, "HUGEPAGE"),
            (VmFlags::NO_HUGEPAGE, "NO_HUGEPAGE"),
            (VmFlags::MERGEABLE, "MERGEABLE"),
        ];
        write!(f, "VmFlags(")?;
        let mut separator = "";
        for (flag, name) in NAMES {
            if self.contains(flag) {
                write!(f, "{separator}{name}")?;
                separator = " | ";
            }
        }
        if separator.is_empty() {
            write!(f, "PRIVATE")?;
        }
        write!(f, ")")
    }
}

/// Where the contents of a VMA's pages come from on first touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backing {
    /// Zero-filled memory with no file behind it; it can only go to swap.
    Anonymous,
    /// Bytes of a loaded image (an ELF file, an initrd entry): page `start` of the VMA
    /// holds the image's bytes from `offset`, page `start + PAGE_SIZE` those from
    /// `offset + PAGE_SIZE`, and so on.
    Image {
        /// Which image: the id of a backing object (the kernel's `mm::backing`).
        id: u32,
        /// Byte offset in the image of the VMA's first page; a multiple of `PAGE_SIZE`.
        offset: u64,
    },
    /// Pages of a file, mapped from its page cache (the kernel's `mm::page_cache`):
    /// page `start` of the VMA is the file's bytes from `offset`, and so on. The
    /// kernel's file rmap (`mm::file_rmap`) keeps the file alive while it is mapped.
    File {
        /// Which page cache: its id.
        cache: u32,
        /// Byte offset in the file of the VMA's first page; a multiple of `PAGE_SIZE`.
        offset: u64,
    },
}

impl Backing {
    /// Returns the backing of the part of a VMA that starts `delta_bytes` after its start.
    pub const fn advanced_by(self, delta_bytes: u64) -> Backing {
        match self {
            Backing::Anonymous => Backing::Anonymous,
            Backing::Image { id, offset } => Backing::Image { id, offset: offset + delta_bytes },
            Backing::File { cache, offset } => Backing::File { cache, offset: offset + delta_bytes },
        }
    }

    /// Returns true if `next`, placed right after `len_bytes` of this backing, continues it.
    pub fn is_continued_by(self, len_bytes: u64, next: Backing) -> bool {
        match (self, next) {
            (Backing::Anonymous, Backing::Anonymous) => true,
            (Backing::Image { id, offset }, Backing::Image { id: next_id, offset: next_offset }) => {
                id == next_id && offset.checked_add(len_bytes) == Some(next_offset)
            }
            (Backing::File { cache, offset }, Backing::File { cache: next_cache, offset: next_offset }) => {
                cache == next_cache && offset.checked_add(len_bytes) == Some(next_offset)
            }
            _ => false,
        }
    }
}

/// One virtual memory area: `[start, end)` with one protection, flags and backing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vma {
    /// First byte of the area; page aligned.
    pub start: VirtAddr,
    /// One past the last byte of the area; page aligned and greater than `start`.
    pub end: VirtAddr,
    /// What user code may do with the pages.
    pub prot: VmProt,
    /// Sharing and role of the area.
    pub flags: VmFlags,
    /// Where the pages' contents come from.
    pub backing: Backing,
}

impl Vma {
    /// Creates a VMA; [`VmaTree::insert`] checks that the range is valid.
    pub const fn new(start: VirtAddr, end: VirtAddr, prot: VmProt, flags: VmFlags, backing: Backing) -> Vma {
        Vma { start, end, prot, flags, backing }
    }

    /// Creates a private anonymous VMA, the kind `mmap(MAP_PRIVATE | MAP_ANONYMOUS)` makes.
    pub const fn anonymous(start: VirtAddr, end: VirtAddr, prot: VmProt) -> Vma {
        Vma::new(start, end, prot, VmFlags::empty(), Backing::Anonymous)
    }

    /// Returns the size of the area in bytes.
    pub fn len_bytes(&self) -> u64 {
        self.end - self.start
    }

    /// Returns the number of pages in the area.
    pub fn nr_pages(&self) -> u64 {
        self.len_bytes() / PAGE_SIZE
    }

    /// Returns true if `addr` lies inside `[start, end)`.
    pub fn contains(&self, addr: VirtAddr) -> bool {
        self.start <= addr && addr < self.end
    }

    /// Returns true if the area has no backing file or image behind it.
    pub fn is_anonymous(&self) -> bool {
        self.backing == Backing::Anonymous
    }

    /// Returns true if `next` starts where `self` ends and could be one VMA with it.
    pub fn can_merge_with(&self, next: &Vma) -> bool {
        self.end == next.start
            && self.prot == next.prot
            && self.flags == next.flags
            && self.backing.is_continued_by(self.len_bytes(), next.backing)
    }

    /// Returns the part of `self` inside `[start, end)`, with its backing moved along.
    ///
    /// The caller guarantees `self.start <= start < end <= self.end`.
    fn slice(&self, start: VirtAddr, end: VirtAddr) -> Vma {
        debug_assert!(self.start <= start && start < end && end <= self.end, "Vma::slice: out of bounds");
        Vma { start, end, backing: self.backing.advanced_by(start - self.start), ..*self }
    }
}

/// Formats one line of `/proc/pid/maps`: `0000000000400000-0000000000402000 r-xp anon`.
impl fmt::Display for Vma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sharing = if self.flags.is_shared() { 's' } else { 'p' };
        write!(f, "{:016x}-{:016x} {}{} ", self.start.as_u64(), self.end.as_u64(), self.prot, sharing)?;
        match self.backing {
            Backing::Anonymous => write!(f, "anon")?,
            Backing::Image { id, offset } => write!(f, "image{id}@{offset:#x}")?,
            Backing::File { cache, offset } => write!(f, "file{cache}@{offset:#x}")?,
        }
        if self.flags.contains(VmFlags::STACK) {
            write!(f, " [stack]")?;
        } else if self.flags.contains(VmFlags::HEAP) {
            write!(f, " [heap]")?;
        }
        Ok(())
    }
}

/// Why a VMA-tree operation was refused. The tree is unchanged whenever one is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaError {
    /// The new range overlaps a VMA that is already there (`EEXIST` for `MAP_FIXED_NOREPLACE`).
    Overlap,
    /// No VMA covers the address, or part of the range is unmapped (`mprotect`'s `ENOMEM`).
    NotFound,
    /// An address or length is not a multiple of `PAGE_SIZE` (`EINVAL`).
    Unaligned,
    /// The range has no pages in it (`EINVAL`).
    Empty,
    /// The range ends before it starts (`EINVAL`).
    OutOfRange,
    /// No gap is large enough; returned by callers of [`VmaTree::find_gap_top_down`] (`ENOMEM`).
    NoSpace,
    /// The change would leave more than the tree's limit of VMAs
    /// ([`MAX_MAP_COUNT`] by default; Linux's `vm.max_map_count`, `ENOMEM`).
    TooMany,
}

/// The most VMAs one address space may have: Linux's default `vm.max_map_count`.
/// Each VMA costs kernel heap, so without a limit one process could fill the heap
/// with `mprotect` splits of a single mapping.
pub const MAX_MAP_COUNT: usize = 65_530;

/// The VMAs of one address space, sorted by start address.
#[derive(Clone, Debug)]
pub struct VmaTree {
    /// Every VMA, keyed by its `start`.
    vmas: BTreeMap<VirtAddr, Vma>,
    /// The free ranges between the VMAs, for `mmap`'s search; kept equal to the
    /// complement of `vmas` by [`VmaTree::refresh_gaps`].
    gaps: GapIndex,
    /// The most VMAs the tree may hold after any operation.
    max_count: usize,
    /// The VMA [`VmaTree::find_copy`] found last (a run of faults lands in one
    /// VMA); forgotten by every change of the tree.
    last_found: Cell<Option<Vma>>,
}

impl Default for VmaTree {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks that `[start, end)` is a non-empty, page-aligned range.
fn validate_range(start: VirtAddr, end: VirtAddr) -> Result<(), VmaError> {
    if !start.is_aligned(PAGE_SIZE) || !end.is_aligned(PAGE_SIZE) {
        Err(VmaError::Unaligned)
    } else if end < start {
        Err(VmaError::OutOfRange)
    } else if end == start {
        Err(VmaError::Empty)
    } else {
        Ok(())
    }
}

impl VmaTree {
    /// Creates an empty tree: an address space with nothing mapped.
    pub fn new() -> VmaTree {
        VmaTree { vmas: BTreeMap::new(), gaps: GapIndex::new(), max_count: MAX_MAP_COUNT, last_found: Cell::new(None) }
    }

    /// Sets the most VMAs the tree may hold ([`MAX_MAP_COUNT`] by default); tests
    /// use small limits.
    pub fn set_max_count(&mut self, max_count: usize) {
        self.max_count = max_count;
    }

    /// Refuses with `TooMany` if `after` VMAs would exceed the limit.
    fn check_count(&self, after: usize) -> Result<(), VmaError> {
        if after > self.max_count { Err(VmaError::TooMany) } else { Ok(()) }
    }

    /// Returns how many VMAs a cut at `start` and at `end` would split in two (0 to 2).
    fn nr_splits(&self, start: VirtAddr, end: VirtAddr) -> usize {
        [start, end].into_iter().filter(|&addr| self.find(addr).is_some_and(|vma| vma.start != addr)).count()
    }

    /// Returns the number of VMAs.
    pub fn len(&self) -> usize {
        self.vmas.len()
    }

    /// Returns true if nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.vmas.is_empty()
    }

    /// Returns the VMAs in address order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Vma> {
        self.vmas.values()
    }

    /// Returns the VMA containing `addr` (start inclusive, end exclusive), in O(log n).
    pub fn find(&self, addr: VirtAddr) -> Option<&Vma> {
        let (_, vma) = self.vmas.range(..=addr).next_back()?;
        vma.contains(addr).then_some(vma)
    }

    /// Returns a copy of the VMA containing `addr`, as [`find`](Self::find) does,
    /// remembering it: the next lookup inside the same VMA costs one comparison
    /// instead of a tree descent (the fault path's VMA cache; Linux had a per-thread
    /// `vmacache` until the maple tree). Every change of the tree forgets it.
    #[inline]
    pub fn find_copy(&self, addr: VirtAddr) -> Option<Vma> {
        if let Some(vma) = self.last_found.get()
            && vma.contains(addr)
        {
            return Some(vma);
        }
        let vma = *self.find(addr)?;
        self.last_found.set(Some(vma));
        Some(vma)
    }

    /// Forgets the VMA [`find_copy`](Self::find_copy) remembers: called by every
    /// method that changes the tree.
    fn forget_found(&mut self) {
        *self.last_found.get_mut() = None;
    }

    /// Returns true if no VMA overlaps `[start, end)`. An empty range is always free.
    pub fn is_range_free(&self, start: VirtAddr, end: VirtAddr) -> bool {
        // Only the last VMA starting before `end` can reach into the range: the
        // ones before it end at or before its start.
        match self.vmas.range(..end).next_back() {
            Some((_, vma)) => vma.end <= start,
            None => true,
        }
    }

    /// Adds `vma`, merging it with compatible neighbours.
    ///
    /// Fails with `Unaligned`, `OutOfRange` or `Empty` for a bad range and `Overlap`
    /// if any part of it is already mapped; the tree is then unchanged.
    pub fn insert(&mut self, vma: Vma) -> Result<(), VmaError> {
        self.forget_found();
        validate_range(vma.start, vma.end)?;
        if !self.is_range_free(vma.start, vma.end) {
            return Err(VmaError::Overlap);
        }
        self.check_count(self.len() + 1)?;
        self.vmas.insert(vma.start, vma);
        self.merge_span(vma.start, vma.end);
        self.refresh_gaps(vma.start, vma.end);
        Ok(())
    }

    /// Splits the VMA containing `addr` into `[start, addr)` and `[addr, end)`.
    ///
    /// Does nothing if `addr` is already a VMA's start. This is the building block
    /// of the range operations; on its own it leaves two mergeable neighbours, so
    /// the caller changes one side or calls [`VmaTree::merge_around`] before
    /// [`VmaTree::check_invariants`] is satisfied again.
    pub fn split_at(&mut self, addr: VirtAddr) -> Result<(), VmaError> {
        self.forget_found();
        if !addr.is_aligned(PAGE_SIZE) {
            return Err(VmaError::Unaligned);
        }
        if self.find(addr).is_none() {
            return Err(VmaError::NotFound);
        }
        self.check_count(self.len() + self.nr_splits(addr, addr).min(1))?;
        self.split_if_inside(addr);
        Ok(())
    }

    /// Merges the VMA containing `addr` with its neighbours where compatible.
    ///
    /// Returns true if anything merged.
    pub fn merge_around(&mut self, addr: VirtAddr) -> bool {
        self.forget_found();
        match self.find(addr) {
            Some(&Vma { start, end, .. }) => self.merge_span(start, end),
            None => false,
        }
    }

    /// Returns the highest `align`-aligned address where `len` bytes fit in `[lo, hi)`
    /// without touching any VMA: `mmap`'s search for a free range, top down, as Linux
    /// does with `vm_unmapped_area`.
    ///
    /// Returns `None` if nothing fits, or if the arguments make no sense: `len` zero or
    /// unaligned, `align` not a power of two, `lo`/`hi` unaligned, `lo >= hi`, or
    /// `lo` and `hi` in different canonical halves. The caller reports `None` as
    /// [`VmaError::NoSpace`]. An `align` below `PAGE_SIZE` means page alignment.
    ///
    /// The gap index finds it in O(log n) for page alignment (see [`gap_index`]).
    pub fn find_gap_top_down(&self, len: u64, align: u64, lo: VirtAddr, hi: VirtAddr) -> Option<VirtAddr> {
        let align = align.max(PAGE_SIZE);
        let is_valid = len != 0
            && len.is_multiple_of(PAGE_SIZE)
            && align.is_power_of_two()
            && lo.is_aligned(PAGE_SIZE)
            && hi.is_aligned(PAGE_SIZE)
            && lo < hi;
        // The last byte below `hi` must be in the same half as `lo`, or the range
        // would span the non-canonical hole.
        let last_byte = VirtAddr::new_truncate(hi.as_u64().wrapping_sub(1));
        if !is_valid || lo.is_lower_half() != last_byte.is_lower_half() {
            return None;
        }
        self.gaps.find_top_down(len, align, lo.as_u64(), hi.as_u64()).map(VirtAddr::new_truncate)
    }

    /// Removes everything mapped in `[start, end)`, cutting VMAs that straddle the edges.
    ///
    /// Returns the removed pieces in address order, clipped to the range, so the caller
    /// can unmap their PTEs and free their frames. Unmapping a hole is not an error
    /// (Linux `munmap` behaves the same); the result is then empty.
    pub fn unmap_range(&mut self, start: VirtAddr, end: VirtAddr) -> Result<Vec<Vma>, VmaError> {
        self.forget_found();
        validate_range(start, end)?;
        // Cutting a hole in the middle of one VMA leaves one more VMA than before.
        let nr_overlapping = self.vmas.range(..end).rev().take_while(|(_, vma)| vma.end > start).count();
        self.check_count((self.len() + self.nr_splits(start, end)).saturating_sub(nr_overlapping))?;
        self.split_if_inside(start);
        self.split_if_inside(end);
        let starts: Vec<VirtAddr> = self.vmas.range(start..end).map(|(&s, _)| s).collect();
        let removed = starts.iter().filter_map(|s| self.vmas.remove(s)).collect();
        self.refresh_gaps(start, end);
        Ok(removed)
    }

    /// Sets the protection of every page in `[start, end)` to `prot`, like `mprotect`.
    ///
    /// The whole range must be mapped, else `NotFound` (Linux's `ENOMEM`) and nothing
    /// changes. VMAs straddling the edges are split and equal neighbours merged
    /// afterwards. Returns the pieces whose protection changed, as they were before
    /// (so `piece.prot` is the old protection), for the caller to rewrite their PTEs.
    pub fn protect_range(&mut self, start: VirtAddr, end: VirtAddr, prot: VmProt) -> Result<Vec<Vma>, VmaError> {
        self.forget_found();
        validate_range(start, end)?;
        if !self.is_range_fully_mapped(start, end) {
            return Err(VmaError::NotFound);
        }
        self.check_count(self.len() + self.nr_splits(start, end))?;
        self.split_if_inside(start);
        self.split_if_inside(end);
        let mut changed = Vec::new();
        for vma in self.vmas.range_mut(start..end).map(|(_, vma)| vma) {
            if vma.prot != prot {
                changed.push(*vma);
                vma.prot = prot;
            }
        }
        self.merge_span(start, end);
        Ok(changed)
    }

    /// Adds `set` to and removes `clear` from the flags of every VMA part inside
    /// `[start, end)`, like `madvise(MADV_DONTFORK)`: VMAs straddling the edges are
    /// split, equal neighbours merged afterwards. Holes in the range are skipped.
    /// Returns true if the whole range was mapped (Linux's madvise still acts on the
    /// mapped parts of a range with holes, then reports `ENOMEM`).
    pub fn update_flags(&mut self, start: VirtAddr, end: VirtAddr, set: VmFlags, clear: VmFlags) -> Result<bool, VmaError> {
        self.forget_found();
        validate_range(start, end)?;
        let is_fully_mapped = self.is_range_fully_mapped(start, end);
        self.check_count(self.len() + self.nr_splits(start, end))?;
        self.split_if_inside(start);
        self.split_if_inside(end);
        for vma in self.vmas.range_mut(start..end).map(|(_, vma)| vma) {
            vma.flags = (vma.flags | set).difference(clear);
        }
        self.merge_span(start, end);
        Ok(is_fully_mapped)
    }

    /// Checks the tree's invariants and panics, naming the culprit, if one is broken.
    ///
    /// Each VMA is stored under its own start, non-empty and page aligned; VMAs are
    /// sorted and do not overlap; and no two neighbours could be merged into one.
    pub fn check_invariants(&self) {
        let mut previous: Option<&Vma> = None;
        for (&key, vma) in &self.vmas {
            assert_eq!(key, vma.start, "VmaTree::check_invariants: {vma} stored under {key}");
            assert!(vma.start < vma.end, "VmaTree::check_invariants: empty or inverted {vma:?}");
            assert!(
                vma.start.is_aligned(PAGE_SIZE) && vma.end.is_aligned(PAGE_SIZE),
                "VmaTree::check_invariants: unaligned {vma}"
            );
            if let Some(prev) = previous {
                assert!(prev.end <= vma.start, "VmaTree::check_invariants: {prev} overlaps {vma}");
                assert!(!prev.can_merge_with(vma), "VmaTree::check_invariants: {prev} and {vma} left unmerged");
            }
            previous = Some(vma);
        }
        self.gaps.check_invariants();
        let mut expected = Vec::new();
        let mut cursor = 0;
        for vma in self.vmas.values() {
            if vma.start.as_u64() > cursor {
                expected.push((cursor, vma.start.as_u64()));
            }
            cursor = vma.end.as_u64();
        }
        if cursor < u64::MAX {
            expected.push((cursor, u64::MAX));
        }
        let mut indexed = Vec::new();
        self.gaps.for_each(|start, end| indexed.push((start, end)));
        assert_eq!(indexed, expected, "VmaTree::check_invariants: the gap index does not match the VMAs");
    }

    /// Brings the gap index up to date after the mapped ranges inside `[start, end)`
    /// changed (nothing outside it did).
    ///
    /// The gaps that can have changed are those touching the range: the one that
    /// reaches `start` from below and those starting inside `[start, end]`. They are
    /// removed, and the free runs of the span they covered are computed again from
    /// the VMAs. Both ends of that span border a VMA (or the end of the address
    /// space), so the runs found are whole gaps. Costs O((k + 1) log n) for k VMAs
    /// and gaps in the span.
    fn refresh_gaps(&mut self, start: VirtAddr, end: VirtAddr) {
        self.forget_found();
        let mut span_start = start.as_u64();
        if let Some((gap_start, gap_end)) = self.gaps.floor(span_start)
            && gap_end >= span_start
        {
            span_start = gap_start;
        }
        let mut span_end = end.as_u64();
        if let Some(highest_end) = self.gaps.remove_starting_in(span_start, span_end) {
            span_end = span_end.max(highest_end);
        }
        let from = VirtAddr::new_truncate(span_start);
        let first_key = self.vmas.range(..=from).next_back().map_or(from, |(&key, _)| key);
        let mut cursor = span_start;
        for vma in self.vmas.range(first_key..).map(|(_, vma)| vma) {
            if vma.start.as_u64() >= span_end {
                break;
            }
            if vma.start.as_u64() > cursor {
                self.gaps.insert(cursor, vma.start.as_u64());
            }
            cursor = cursor.max(vma.end.as_u64());
        }
        if cursor < span_end {
            self.gaps.insert(cursor, span_end);
        }
    }

    /// Returns true if every byte of `[start, end)` lies in some VMA.
    fn is_range_fully_mapped(&self, start: VirtAddr, end: VirtAddr) -> bool {
        let Some(first) = self.find(start) else {
            return false;
        };
        let mut covered_to = first.end;
        if covered_to >= end {
            return true;
        }
        for vma in self.vmas.range(first.end..end).map(|(_, vma)| vma) {
            if vma.start != covered_to {
                return false;
            }
            covered_to = vma.end;
        }
        covered_to >= end
    }

    /// Cuts the VMA strictly containing `addr` in two at `addr`; does nothing otherwise.
    fn split_if_inside(&mut self, addr: VirtAddr) {
        self.forget_found();
        let Some(&vma) = self.find(addr) else {
            return;
        };
        if vma.start == addr {
            return;
        }
        self.vmas.insert(vma.start, vma.slice(vma.start, addr));
        self.vmas.insert(addr, vma.slice(addr, vma.end));
    }

    /// Merges mergeable neighbours among the VMAs touching `[start, end]`, including the
    /// one ending at `start` and the one beginning at `end`. Returns true if any merged.
    fn merge_span(&mut self, start: VirtAddr, end: VirtAddr) -> bool {
        self.forget_found();
        let first = match self.vmas.range(..start).next_back() {
            Some((&s, vma)) if vma.end == start => s,
            _ => start,
        };
        let starts: Vec<VirtAddr> = self.vmas.range(first..=end).map(|(&s, _)| s).collect();
        let mut has_merged = false;
        let mut current = match starts.first() {
            Some(&s) => s,
            None => return false,
        };
        for &next_start in &starts[1..] {
            let next = self.vmas[&next_start];
            let head = self.vmas.get_mut(&current).expect("VmaTree::merge_span: lost a VMA");
            if head.can_merge_with(&next) {
                head.end = next.end;
                self.vmas.remove(&next_start);
                has_merged = true;
            } else {
                current = next_start;
            }
        }
        has_merged
    }
}

/// Formats the whole tree like `/proc/pid/maps`: one [`Vma`] per line.
impl fmt::Display for VmaTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for vma in self.iter() {
            writeln!(f, "{vma}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
