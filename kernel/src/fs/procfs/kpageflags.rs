//! `/proc/kpageflags`: one `u64` of Linux `KPF_*` bits per physical frame, at
//! offset PFN * 8 (the bits and their meaning: `abi::kpageflags`). A binary file,
//! made for the frames asked: a read at offset `8 * pfn` of `8 * n` bytes scans
//! those `n` descriptors under one hold of the frame table's lock, so `memmap`
//! reading the whole file costs one pass over the table.
//!
//! ```text
//!  frame table (FrameState, FrameFlags, counts)        kpageflags word
//!  below the first managed frame                 ->    NOPAGE
//!  Free, pre-zeroed, or free on a per-CPU list   ->    BUDDY (every free frame)
//!  Reserved                                      ->    RESERVED
//!  Slab / PageTable                              ->    SLAB / PGTABLE
//!  Kernel                                        ->    0 (ZERO_PAGE for the zero page)
//!  User, anonymous                               ->    ANON SWAPBACKED [MMAP] [LRU] [DIRTY] [SWAPCACHE] [LOCKED]
//!  User, FILE (page cache)                       ->    UPTODATE [MMAP] [LRU] [DIRTY] [LOCKED]
//!  User, in a huge page                          ->    THP + COMPOUND_HEAD or COMPOUND_TAIL
//! ```

use abi::kpageflags::{self as kpf, bit};

use crate::mm::frame::{self, BuddyAllocator, FrameFlags, FrameState};
use crate::mm::{Frame, Order};

/// The file's size in bytes: a word for every frame number up to the last managed one.
pub fn size() -> u64 {
    let (first, nr) = frame::managed_frames();
    (first.pfn() + nr) * 8
}

/// Fills `buf` with the file's bytes from `offset`; returns how many (0 at the end).
/// Only whole words are returned: an offset or length that is not a multiple of 8
/// is rounded down to one (Linux returns EINVAL; a short read is kinder to `cat`).
pub fn read_at(offset: u64, buf: &mut [u8]) -> usize {
    let first_pfn = offset / 8;
    let nr_words = ((size().saturating_sub(first_pfn * 8)) / 8).min(buf.len() as u64 / 8) as usize;
    let mut words = alloc::vec![0u64; nr_words];
    let zero_pfn = crate::mm::fault::zero_frame().pfn();
    frame::with_buddy_read(|buddy| {
        for (i, word) in words.iter_mut().enumerate() {
            *word = flags_of(buddy, first_pfn + i as u64, zero_pfn);
        }
    });
    for (chunk, word) in buf.as_chunks_mut::<8>().0.iter_mut().zip(&words) {
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    nr_words * 8
}

/// The kpageflags word of frame `pfn` (see the module docs).
fn flags_of(buddy: &BuddyAllocator<'static>, pfn: u64, zero_pfn: u64) -> u64 {
    let frame = Frame::from_pfn(pfn);
    if !buddy.contains(frame) {
        return bit(kpf::NOPAGE);
    }
    if crate::mm::pcp::is_listed(frame) {
        // Free on a per-CPU list (`mm::pcp`), free memory in MemFree: BUDDY, so that
        // memmap's free frames are meminfo's (Linux's pcp pages show no flag at all).
        return bit(kpf::BUDDY);
    }
    let desc = buddy.desc(frame);
    let flags = desc.flags();
    match desc.state() {
        FrameState::Free => return bit(kpf::BUDDY),
        // A free frame zeroed ahead in the pre-zeroed pool (`mm::zero_pool`): free
        // to Linux's eyes (its pre-zeroing is not visible in kpageflags either).
        FrameState::Zeroed => return bit(kpf::BUDDY),
        FrameState::Reserved => return bit(kpf::RESERVED),
        FrameState::Slab => return bit(kpf::SLAB),
        FrameState::PageTable => return bit(kpf::PGTABLE),
        FrameState::Kernel => return if pfn == zero_pfn { bit(kpf::ZERO_PAGE) } else { 0 },
        FrameState::User => {}
    }
    let mut word = 0;
    let mut set = |kpf: u32, is_set: bool| {
        if is_set {
            word |= bit(kpf);
        }
    };
    if flags.contains(FrameFlags::FILE) {
        set(kpf::UPTODATE, true);
    } else {
        set(kpf::ANON, true);
        set(kpf::SWAPBACKED, true);
    }
    set(kpf::MMAP, desc.map_count() > 0);
    set(kpf::LRU, desc.next().is_some());
    set(kpf::DIRTY, flags.contains(FrameFlags::DIRTY));
    set(kpf::SWAPCACHE, flags.contains(FrameFlags::SWAP_CACHE));
    set(kpf::LOCKED, flags.contains(FrameFlags::LOCKED));
    if desc.is_compound_head() {
        word |= bit(kpf::THP) | bit(kpf::COMPOUND_HEAD);
    } else if !flags.contains(FrameFlags::ALLOC_HEAD) {
        // A huge page's tail keeps no counts: its head, 2 MiB-aligned, says so.
        let head = Frame::from_pfn(pfn & !(Order(9).nr_frames() - 1));
        if buddy.contains(head) && buddy.desc(head).is_compound_head() {
            word |= bit(kpf::THP) | bit(kpf::COMPOUND_TAIL) | bit(kpf::MMAP);
        }
    }
    word
}
