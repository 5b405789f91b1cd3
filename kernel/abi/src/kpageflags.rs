//! `/proc/kpageflags`: one `u64` per physical frame, the frame number times 8 its
//! offset, with Linux's `KPF_*` bit numbers (`include/uapi/linux/kernel-page-flags.h`),
//! so that Linux's `page-types` reading of the file carries over. [`classify`] sorts
//! a frame's flags into the owners `memmap` draws.
//!
//! Differences from Linux (docs/linux-differences.md): [`BUDDY`] is set on every
//! free frame (Linux sets it only on the first frame of each free block, whose
//! order the file does not show), so counting BUDDY frames counts free memory; a
//! frame below the first one the allocator manages is [`NOPAGE`].

/// Locked for I/O.
pub const LOCKED: u32 = 0;
/// Contents valid (a page-cache page that was read or written).
pub const UPTODATE: u32 = 3;
/// Written since it was last saved (to swap or its file).
pub const DIRTY: u32 = 4;
/// On a replacement policy's list.
pub const LRU: u32 = 5;
/// A slab allocator page.
pub const SLAB: u32 = 7;
/// Free, in the buddy allocator.
pub const BUDDY: u32 = 10;
/// Mapped by at least one PTE.
pub const MMAP: u32 = 11;
/// Anonymous memory (not a file's page).
pub const ANON: u32 = 12;
/// In the swap cache.
pub const SWAPCACHE: u32 = 13;
/// Backed by swap (anonymous).
pub const SWAPBACKED: u32 = 14;
/// The first frame of a compound (huge) page.
pub const COMPOUND_HEAD: u32 = 15;
/// A later frame of a compound (huge) page.
pub const COMPOUND_TAIL: u32 = 16;
/// No frame at this number (a hole, or before the managed memory).
pub const NOPAGE: u32 = 20;
/// A frame of a transparent huge page.
pub const THP: u32 = 22;
/// The shared zero page.
pub const ZERO_PAGE: u32 = 24;
/// A page-table page.
pub const PGTABLE: u32 = 26;
/// Reserved: not RAM the allocator may give out (firmware, the kernel image's holes).
pub const RESERVED: u32 = 32;

/// Returns the word with bit `kpf` set.
pub const fn bit(kpf: u32) -> u64 {
    1 << kpf
}

/// Who owns a frame, as `memmap` draws it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    /// Free (buddy).
    Free,
    /// The kernel's own (image, stacks, buffers, heap large allocations).
    Kernel,
    /// Slab pages.
    Slab,
    /// Page tables.
    PageTable,
    /// Anonymous user memory.
    Anon,
    /// A file's page in the page cache.
    PageCache,
    /// In the swap cache.
    SwapCache,
    /// A transparent huge page.
    Huge,
    /// Reserved, or no frame at all.
    Reserved,
}

impl Owner {
    /// Every owner, in the legend's order.
    pub const ALL: [Owner; 9] = [
        Owner::Free,
        Owner::Kernel,
        Owner::Slab,
        Owner::PageTable,
        Owner::Anon,
        Owner::PageCache,
        Owner::SwapCache,
        Owner::Huge,
        Owner::Reserved,
    ];

    /// The owner's name in the legend.
    pub fn name(self) -> &'static str {
        match self {
            Owner::Free => "free",
            Owner::Kernel => "kernel",
            Owner::Slab => "slab",
            Owner::PageTable => "page tables",
            Owner::Anon => "anon",
            Owner::PageCache => "page cache",
            Owner::SwapCache => "swap cache",
            Owner::Huge => "huge",
            Owner::Reserved => "reserved",
        }
    }

    /// The character `memmap` draws a block of this owner with.
    pub fn symbol(self) -> char {
        match self {
            Owner::Free => '.',
            Owner::Kernel => 'K',
            Owner::Slab => 's',
            Owner::PageTable => 't',
            Owner::Anon => 'a',
            Owner::PageCache => 'f',
            Owner::SwapCache => 'w',
            Owner::Huge => 'H',
            Owner::Reserved => '#',
        }
    }
}

/// Sorts a frame's `/proc/kpageflags` word into its owner.
pub fn classify(flags: u64) -> Owner {
    let has = |kpf| flags & bit(kpf) != 0;
    if has(NOPAGE) || has(RESERVED) {
        Owner::Reserved
    } else if has(BUDDY) {
        Owner::Free
    } else if has(SLAB) {
        Owner::Slab
    } else if has(PGTABLE) {
        Owner::PageTable
    } else if has(THP) {
        Owner::Huge
    } else if has(SWAPCACHE) {
        Owner::SwapCache
    } else if has(ANON) {
        Owner::Anon
    } else if has(UPTODATE) || has(MMAP) || has(LRU) {
        Owner::PageCache
    } else {
        Owner::Kernel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_linuxs_numbers() {
        // include/uapi/linux/kernel-page-flags.h
        assert_eq!((BUDDY, MMAP, ANON, SWAPCACHE, NOPAGE, THP, PGTABLE), (10, 11, 12, 13, 20, 22, 26));
    }

    #[test]
    fn classify_sorts_each_kind_of_frame() {
        assert_eq!(classify(bit(BUDDY)), Owner::Free);
        assert_eq!(classify(0), Owner::Kernel);
        assert_eq!(classify(bit(ZERO_PAGE)), Owner::Kernel);
        assert_eq!(classify(bit(SLAB)), Owner::Slab);
        assert_eq!(classify(bit(PGTABLE)), Owner::PageTable);
        assert_eq!(classify(bit(ANON) | bit(MMAP) | bit(LRU)), Owner::Anon);
        assert_eq!(classify(bit(ANON) | bit(SWAPCACHE) | bit(SWAPBACKED)), Owner::SwapCache);
        assert_eq!(classify(bit(UPTODATE) | bit(LRU)), Owner::PageCache);
        assert_eq!(classify(bit(ANON) | bit(THP) | bit(COMPOUND_TAIL)), Owner::Huge);
        assert_eq!(classify(bit(NOPAGE)), Owner::Reserved);
        assert_eq!(classify(bit(RESERVED)), Owner::Reserved);
    }
}
