//! The answers to the exercises of the book (`docs/`), checked against the real code.
//!
//! Each module is one chapter (`ch02_buddy` answers the exercises of
//! `docs/02-physical-memory.md`, and so on); each test is one exercise, and its
//! name is the question. A student who changes an answer, or the algorithm, sees
//! which test breaks: `cargo test -p mm-core --test book_exercises ch02`.
//!
//! Only the public API of `mm-core` is used, the same API the kernel calls.

use std::collections::HashMap;

use mm_core::addr::{Frame, Order, Page, VirtAddr};
use mm_core::pagetable::{ENTRIES_PER_TABLE, PageTable, TableMemory};
use mm_core::pte::{Pte, PteFlags};

/// Page-table memory for the exercises: each table is a boxed array in a map.
///
/// The same idea as the emulated memory of `src/pagetable/tests.rs`, kept small.
#[derive(Default)]
struct ToyMemory {
    tables: HashMap<Frame, Box<[u64; ENTRIES_PER_TABLE]>>,
    next_pfn: u64,
}

impl TableMemory for ToyMemory {
    fn read_entry(&self, table: Frame, index: usize) -> Pte {
        Pte::from_bits(self.tables[&table][index])
    }
    fn write_entry(&mut self, table: Frame, index: usize, entry: Pte) {
        self.tables.get_mut(&table).expect("write_entry: not a table")[index] = entry.bits();
    }
    fn alloc_table(&mut self) -> Option<Frame> {
        self.next_pfn += 1;
        let frame = Frame::from_pfn(0x1000 + self.next_pfn);
        self.tables.insert(frame, Box::new([0; ENTRIES_PER_TABLE]));
        Some(frame)
    }
    fn free_table(&mut self, table: Frame) {
        self.tables.remove(&table).expect("free_table: not a table");
    }
}

/// Returns the page that starts at `addr`.
fn page(addr: u64) -> Page {
    Page::from_start_address(VirtAddr::new(addr)).expect("page: unaligned")
}

/// A data frame (never read: only its number goes into the PTEs).
fn data_frame(n: u64) -> Frame {
    Frame::from_pfn(0x10_0000 + n)
}

const USER_RW: PteFlags = PteFlags::USER.union(PteFlags::WRITABLE);

/// Chapter 2: the frame table and the buddy allocator.
mod ch02_buddy {
    use mm_core::buddy::BuddyAllocator;
    use mm_core::frame_table::{FrameDesc, FrameState};

    use super::*;

    const K: FrameState = FrameState::Kernel;

    fn frame(pfn: u64) -> Frame {
        Frame::from_pfn(pfn)
    }

    /// Exercise 2.1: 16 free frames at pfn 0; allocate four single frames, free
    /// the first and the last. Which frame does the next order-0 allocation get?
    #[test]
    fn the_last_freed_frame_is_handed_out_first() {
        let mut descs = vec![FrameDesc::new(); 16];
        let mut buddy = BuddyAllocator::new(&mut descs, 0);
        buddy.add_free_range(frame(0), 16).unwrap();
        let got: Vec<u64> = (0..4).map(|_| buddy.alloc(Order(0), K).unwrap().pfn()).collect();
        assert_eq!(got, [0, 1, 2, 3], "splitting keeps the lower half each time");
        // Neither merges: 0's buddy (1) and 3's buddy (2) are still allocated.
        buddy.free(frame(0), Order(0)).unwrap();
        buddy.free(frame(3), Order(0)).unwrap();
        assert_eq!(&buddy.buddyinfo().nr_free_blocks[..5], &[2, 0, 1, 1, 0]);
        // The free lists are LIFO: the most recently freed (cache-warm) frame goes first.
        assert_eq!(buddy.alloc(Order(0), K), Ok(frame(3)));
        buddy.check_invariants().unwrap();
    }

    /// Exercise 2.2: frames 0..16 are allocated one by one and then freed in the
    /// order 1, 0, 3, 2, 5, 4, ...: how many merges happen, and what is left?
    #[test]
    fn freeing_pairs_merges_all_the_way_up_to_one_block() {
        let mut descs = vec![FrameDesc::new(); 16];
        let mut buddy = BuddyAllocator::new(&mut descs, 0);
        buddy.add_free_range(frame(0), 16).unwrap();
        for _ in 0..16 {
            buddy.alloc(Order(0), K).unwrap();
        }
        let order_of_frees: Vec<u64> = (0..8).flat_map(|pair| [2 * pair + 1, 2 * pair]).collect();
        let mut blocks_after_each = Vec::new();
        for pfn in order_of_frees {
            buddy.free(frame(pfn), Order(0)).unwrap();
            blocks_after_each.push(buddy.buddyinfo().nr_free_blocks.iter().sum::<u64>());
        }
        // Odd steps free a frame whose buddy is allocated (one more block); even steps
        // merge: pairs at orders 1, then 2, then 3, then the whole order-4 block.
        assert_eq!(blocks_after_each, [1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 1]);
        assert_eq!(buddy.buddyinfo().nr_free_blocks[4], 1);
    }

    /// Exercise 2.3: the bootloader hands over frames 3..16 (13 frames). Which
    /// blocks does `add_free_range` build?
    #[test]
    fn an_unaligned_range_becomes_maximal_aligned_blocks() {
        let mut descs = vec![FrameDesc::new(); 16];
        let mut buddy = BuddyAllocator::new(&mut descs, 0);
        buddy.add_free_range(frame(3), 13).unwrap();
        // 3 (order 0), 4..8 (order 2), 8..16 (order 3): every block aligned to its size.
        assert_eq!(&buddy.buddyinfo().nr_free_blocks[..5], &[1, 0, 1, 1, 0]);
        assert_eq!(buddy.alloc(Order(3), K), Ok(frame(8)));
        assert_eq!(buddy.alloc(Order(2), K), Ok(frame(4)));
        assert_eq!(buddy.alloc(Order(0), K), Ok(frame(3)));
        assert!(buddy.alloc(Order(0), K).is_err(), "13 frames handed out, none left");
    }

    /// Exercise 2.4: the buddy of a block is its pfn XOR 2^order. Free frames 4..8
    /// (order 2) next to a free 0..4: does it merge? And 8..12 next to 4..8?
    #[test]
    fn blocks_merge_only_with_their_buddy() {
        let mut descs = vec![FrameDesc::new(); 16];
        let mut buddy = BuddyAllocator::new(&mut descs, 0);
        buddy.add_free_range(frame(0), 16).unwrap();
        let blocks: Vec<u64> = (0..4).map(|_| buddy.alloc(Order(2), K).unwrap().pfn()).collect();
        assert_eq!(blocks, [0, 4, 8, 12]);
        buddy.free(frame(4), Order(2)).unwrap();
        buddy.free(frame(8), Order(2)).unwrap();
        // 4 ^ 4 = 0 (allocated) and 8 ^ 4 = 12 (allocated): adjacent, but not buddies.
        assert_eq!(&buddy.buddyinfo().nr_free_blocks[..5], &[0, 0, 2, 0, 0]);
        buddy.free(frame(0), Order(2)).unwrap();
        // 0 and 4 are buddies: one order-3 block at 0; its buddy 0 ^ 8 = 8 is only half free.
        assert_eq!(&buddy.buddyinfo().nr_free_blocks[..5], &[0, 0, 1, 1, 0]);
    }
}

/// Chapter 3: slab caches and kmalloc.
mod ch03_slab {
    use mm_core::kmalloc::{SIZE_CLASSES, size_class_for};
    use mm_core::slab::SlabCache;

    /// Exercise 3.1: which kmalloc class serves 100 bytes? 96? 200 bytes aligned
    /// to 64? 4097 bytes?
    #[test]
    fn requests_go_to_the_smallest_class_that_fits_size_and_alignment() {
        let class_of = |size, align| size_class_for(size, align).map(|class| SIZE_CLASSES[class]);
        assert_eq!(class_of(100, 8), Some(128));
        assert_eq!(class_of(96, 8), Some(96));
        // 192 = 3 x 64: its objects are 64-byte aligned, so 200 bytes at align 64 fits 256,
        // and 150 bytes at align 64 fits 192.
        assert_eq!(class_of(200, 64), Some(256));
        assert_eq!(class_of(150, 64), Some(192));
        // 96 = 3 x 32: objects only 32-byte aligned, so 80 bytes at align 64 needs 128.
        assert_eq!(class_of(80, 64), Some(128));
        assert_eq!(class_of(4097, 8), None, "above 4 KiB: the buddy allocator");
    }

    /// Exercise 3.2: `cargo run` prints `kmalloc-192 ... per-slab 21, pages 1` and
    /// `kmalloc-512 ... per-slab 15, pages 2`. Derive both from the 32-byte slab
    /// header and the rule "the smallest slab order that wastes at most 1/16".
    #[test]
    fn slab_geometry_follows_the_header_and_the_waste_rule() {
        let c192 = SlabCache::new("ex-192", 192, 64, None);
        // (4096 - 32) / 192 = 21, wasting 4096 - 32 - 21 * 192 = 32 bytes.
        assert_eq!((c192.order().0, c192.nr_objects_per_slab()), (0, 21));
        let c512 = SlabCache::new("ex-512", 512, 512, None);
        // One page: the header pushes the first object to offset 512, so 7 objects and
        // 512 bytes (1/8) wasted; two pages: 15 objects, 512 of 8192 wasted (1/16).
        assert_eq!((c512.order().0, c512.nr_objects_per_slab()), (1, 15));
    }

    /// Exercise 3.3: a cache of 700-byte objects (8-byte aligned): which slab
    /// order, how many objects per slab?
    #[test]
    fn a_700_byte_cache_takes_two_page_slabs_of_11() {
        let cache = SlabCache::new("ex-700", 700, 8, None);
        // The stride is 704 (8-aligned). One page: 5 objects, 576 bytes wasted > 4096/16.
        // Two pages: (8192 - 32) / 704 = 11 objects, 448 bytes wasted <= 8192/16.
        assert_eq!(cache.stride_bytes(), 704);
        assert_eq!((cache.order().0, cache.nr_objects_per_slab()), (1, 11));
    }
}

/// Chapter 4: paging and the TLB.
mod ch04_paging {
    use mm_core::pagetable::{FlushBatch, FlushPlan};

    use super::*;

    /// Exercise 4.1: decompose `0xffffffff800c1f10` (an instruction of the
    /// kernel, from the walk `cargo run` prints) into its four indices and offset.
    #[test]
    fn a_kernel_text_address_decomposes_into_511_510_0_193() {
        let addr = VirtAddr::new(0xffff_ffff_800c_1f10);
        assert_eq!((addr.p4_index(), addr.p3_index(), addr.p2_index(), addr.p1_index()), (511, 510, 0, 193));
        assert_eq!(addr.page_offset(), 0xf10);
    }

    /// Exercise 4.2: how many page-table pages (the root included) does an empty
    /// user space need to map (a) one page, (b) 512 pages from 0x400000, (c) 513
    /// pages, (d) one page at 0x400000 and one just below the stack top?
    #[test]
    fn page_table_pages_needed_for_four_mappings() {
        let tables_for = |pages: &[u64]| {
            let mut mem = ToyMemory::default();
            let mut table = PageTable::new(&mut mem).unwrap();
            for (n, &addr) in pages.iter().enumerate() {
                table.map(&mut mem, page(addr), data_frame(n as u64), USER_RW).unwrap().ignore();
            }
            assert_eq!(table.check_invariants(&mem), mem.tables.len());
            mem.tables.len()
        };
        let run = |start: u64, nr: u64| (0..nr).map(|i| start + i * 4096).collect::<Vec<_>>();
        assert_eq!(tables_for(&[0x40_0000]), 4, "PML4 + PDPT + PD + PT");
        assert_eq!(tables_for(&run(0x40_0000, 512)), 4, "0x400000 is 2 MiB aligned: one PT covers 512 pages");
        assert_eq!(tables_for(&run(0x40_0000, 513)), 5, "the 513th page needs a second PT");
        assert_eq!(tables_for(&[0x40_0000, 0x7fff_ffff_e000]), 7, "two paths share only the root");
    }

    /// Exercise 4.3: munmap of 3 pages, then of 40 pages: what does the kernel do
    /// to the TLB in each case?
    #[test]
    fn a_few_pages_are_flushed_one_by_one_many_with_a_full_flush() {
        let unmap_pages = |nr: u64| {
            let mut mem = ToyMemory::default();
            let mut table = PageTable::new(&mut mem).unwrap();
            let mut batch = FlushBatch::new();
            for i in 0..nr {
                table.map(&mut mem, page(0x40_0000 + i * 4096), data_frame(i), USER_RW).unwrap().ignore();
            }
            for i in 0..nr {
                let (_, flush) = table.unmap(&mut mem, page(0x40_0000 + i * 4096)).unwrap();
                batch.push(flush);
            }
            assert_eq!(mem.tables.len(), 1, "every emptied table was freed");
            batch.into_plan()
        };
        match unmap_pages(3) {
            FlushPlan::Pages(pages) => assert_eq!(pages.map(VirtAddr::as_u64).collect::<Vec<_>>(), [0x40_0000, 0x40_1000, 0x40_2000]),
            other => panic!("3 pages: expected three invlpg, got {other:?}"),
        }
        assert!(matches!(unmap_pages(40), FlushPlan::All { has_global: false }), "past 32 pages: reload CR3");
    }
}

/// Chapter 5: address spaces, VMAs and the fault path.
mod ch05_vma {
    use mm_core::addr::PAGE_SIZE;
    use mm_core::vma::{Vma, VmaTree, VmProt};

    use super::*;

    fn at(page_number: u64) -> VirtAddr {
        VirtAddr::new(page_number * PAGE_SIZE)
    }

    fn layout(tree: &VmaTree) -> Vec<(u64, u64, VmProt)> {
        tree.iter().map(|v| (v.start.as_u64() / PAGE_SIZE, v.end.as_u64() / PAGE_SIZE, v.prot)).collect()
    }

    /// Exercise 5.1: mmap 16 pages RW, mprotect pages 4..8 read-only, munmap pages
    /// 10..12, then mprotect 4..8 back to RW. How many VMAs after each step?
    #[test]
    fn mprotect_and_munmap_split_and_merge_vmas() {
        let mut tree = VmaTree::new();
        tree.insert(Vma::anonymous(at(0x100), at(0x110), VmProt::READ_WRITE)).unwrap();
        tree.protect_range(at(0x104), at(0x108), VmProt::READ).unwrap();
        assert_eq!(tree.len(), 3);
        tree.unmap_range(at(0x10a), at(0x10c)).unwrap();
        assert_eq!(tree.len(), 4);
        tree.protect_range(at(0x104), at(0x108), VmProt::READ_WRITE).unwrap();
        // The RW pieces 0x100..0x104, 0x104..0x108, 0x108..0x10a merge; the hole stays.
        assert_eq!(
            layout(&tree),
            [(0x100, 0x10a, VmProt::READ_WRITE), (0x10c, 0x110, VmProt::READ_WRITE)]
        );
        tree.check_invariants();
    }

    /// Exercise 5.2: with VMAs at pages [0x200, 0x210) and [0x1f0, 0x1f8), where
    /// does a top-down gap search below page 0x210 put 4 pages? And 9 pages?
    #[test]
    fn the_gap_search_takes_the_highest_hole_that_fits() {
        let mut tree = VmaTree::new();
        tree.insert(Vma::anonymous(at(0x200), at(0x210), VmProt::READ)).unwrap();
        tree.insert(Vma::anonymous(at(0x1f0), at(0x1f8), VmProt::READ)).unwrap();
        // The hole [0x1f8, 0x200) holds 8 pages: 4 fit at its top, 9 do not.
        assert_eq!(tree.find_gap_top_down(4 * PAGE_SIZE, PAGE_SIZE, at(0x100), at(0x210)), Some(at(0x1fc)));
        assert_eq!(tree.find_gap_top_down(9 * PAGE_SIZE, PAGE_SIZE, at(0x100), at(0x210)), Some(at(0x1e7)));
    }
}

/// Chapter 6: fork and copy-on-write.
mod ch06_fork {
    use mm_core::fault::{
        Access, FaultAction, FaultFacts, FrameUse, SwapCacheLookup, WritableBecause, decide, fork_flags, leaf_flags_for,
    };
    use mm_core::pagetable::FlushBatch;
    use mm_core::pte::SwapEntry;
    use mm_core::swap_cache::{CachedPage, SlotState};
    use mm_core::vma::{Vma, VmProt};

    use super::*;

    /// Exercise 6.1: a parent has 3 writable pages in one page table and a fourth
    /// 1 GiB away. After `fork_range`, how many tables does the child have, which
    /// PTEs are writable, and how many TLB entries must the parent flush?
    #[test]
    fn fork_write_protects_both_sides_and_gives_the_child_its_own_tables() {
        let mut mem = ToyMemory::default();
        let mut parent = PageTable::new(&mut mem).unwrap();
        let addrs = [0x40_0000, 0x40_1000, 0x40_2000, 0x4040_0000];
        for (n, &addr) in addrs.iter().enumerate() {
            parent.map(&mut mem, page(addr), data_frame(n as u64), USER_RW).unwrap().ignore();
        }
        let mut child = PageTable::new(&mut mem).unwrap();
        let mut batch = FlushBatch::new();
        let mut nr_leaves = 0;
        parent
            .fork_range(&mut mem, &mut child, page(0), 1 << 27, &mut batch, |leaf| {
                nr_leaves += 1;
                let mut shared = leaf.pte;
                shared.remove_flags(PteFlags::WRITABLE);
                shared.insert_flags(PteFlags::COW);
                Some((shared, shared))
            })
            .unwrap();
        assert_eq!(nr_leaves, 4);
        // Root + PDPT + two PDs (0x40_0000 is in PDPT entry 0, 0x4040_0000 in entry 1) + two PTs.
        assert_eq!(child.check_invariants(&mem), 6);
        assert_eq!(parent.check_invariants(&mem), 6);
        for &addr in &addrs {
            let (frame_in_parent, parent_flags, _) = parent.translate(&mem, VirtAddr::new(addr)).unwrap();
            let (frame_in_child, child_flags, _) = child.translate(&mem, VirtAddr::new(addr)).unwrap();
            assert_eq!(frame_in_parent, frame_in_child, "the same frame: nothing copied");
            for flags in [parent_flags, child_flags] {
                assert!(!flags.contains(PteFlags::WRITABLE) && flags.contains(PteFlags::COW));
            }
        }
        // The parent's 4 PTEs lost WRITABLE: its TLB may still hold them writable.
        match batch.into_plan() {
            mm_core::pagetable::FlushPlan::Pages(pages) => assert_eq!(pages.count(), 4),
            other => panic!("expected 4 invlpg, got {other:?}"),
        }
    }

    /// The answers the decision table needs, fixed by the exercise's story.
    struct Story {
        frame_use: FrameUse,
        slot_refs: u16,
        frame_map_count: u32,
    }

    impl FaultFacts for Story {
        fn is_zero_page(&self, _: Frame) -> bool {
            false
        }
        fn frame_use(&self, _: Frame) -> FrameUse {
            self.frame_use
        }
        fn swap_cache(&self, _: SwapEntry) -> SwapCacheLookup {
            let page = CachedPage { map_count: self.frame_map_count, is_locked: false, is_dirty: false };
            SwapCacheLookup::Cached { frame: data_frame(1), slot: SlotState::new(self.slot_refs, Some(page)) }
        }
    }

    /// Exercise 6.5: a parent writes a private page, forks, and the page is evicted
    /// (both PTEs name slot S). The child reads it, then the parent writes it, then
    /// the child writes it. Which row of the decision table answers each fault, and
    /// with which counts?
    #[test]
    fn after_swap_the_child_maps_cow_the_parent_copies_and_the_child_reuses() {
        let vma = Vma::anonymous(VirtAddr::new(0x40_0000), VirtAddr::new(0x40_1000), VmProt::READ_WRITE);
        let entry = SwapEntry::new(0, 5);
        let rw = leaf_flags_for(VmProt::READ_WRITE);
        let cow = fork_flags(rw, false);
        let frame = data_frame(1);
        let no_frame_use = FrameUse { map_count: 0, refcount: 0, slot_refs: None };
        // 1. The child reads (after the read from disk): S has 3 references (two swap
        //    PTEs + the cache), so the page is mapped read-only and COW.
        let child_read = Story { frame_use: no_frame_use, slot_refs: 3, frame_map_count: 0 };
        let action = decide(Some(&vma), Access::Read, Some(Pte::swap(entry)), &child_read);
        assert_eq!(action, FaultAction::MapSwapCache { frame, flags: cow });
        // 2. The parent writes: its swap PTE maps the cached frame, COW again (the
        //    child maps it: map count 1)...
        let parent_fault = Story { frame_use: no_frame_use, slot_refs: 2, frame_map_count: 1 };
        let action = decide(Some(&vma), Access::Write, Some(Pte::swap(entry)), &parent_fault);
        assert_eq!(action, FaultAction::MapSwapCache { frame, flags: cow });
        // ...and the write faults again on the read-only PTE: two PTEs map it, copy.
        let shared = FrameUse { map_count: 2, refcount: 3, slot_refs: Some(1) };
        let parent_write = Story { frame_use: shared, slot_refs: 1, frame_map_count: 2 };
        let action = decide(Some(&vma), Access::Write, Some(Pte::new(frame, cow)), &parent_write);
        assert_eq!(action, FaultAction::CopyOnWrite { flags: rw });
        // 3. The child writes: one PTE + the cache's reference, and only the cache
        //    names S: the child is the page's only user, no copy.
        let alone = FrameUse { map_count: 1, refcount: 2, slot_refs: Some(1) };
        let child_write = Story { frame_use: alone, slot_refs: 1, frame_map_count: 1 };
        let mut writable = Pte::new(frame, cow);
        writable.set_flags(rw);
        let action = decide(Some(&vma), Access::Write, Some(Pte::new(frame, cow)), &child_write);
        assert_eq!(action, FaultAction::MakeWritable { pte: writable, because: WritableBecause::SoleOwner });
    }
}

/// Chapter 7: swap.
mod ch07_swap {
    use mm_core::pte::SwapEntry;
    use mm_core::swap_map::SwapMap;
    use mm_core::swap_readahead::ReadaheadWindow;

    use super::*;

    /// Exercise 7.1: a page mapped by a parent and two forked children is
    /// evicted, then the parent faults it back in (it stays in the swap cache),
    /// then a child exits. Follow the slot's share count.
    #[test]
    fn a_slot_share_count_follows_the_swap_ptes_and_the_cache() {
        let mut map = SwapMap::new(16);
        let slot = map.alloc().unwrap(); // the frame enters the swap cache: count 1
        assert_eq!(map.count(slot), Ok(1));
        for _ in 0..3 {
            map.dup(slot).unwrap(); // three PTEs become swap entries
        }
        assert_eq!(map.count(slot), Ok(4));
        assert_eq!(map.put(slot), Ok(3)); // eviction done: the frame leaves the cache
        assert_eq!(map.dup(slot), Ok(4)); // parent's major fault: read into the cache
        assert_eq!(map.put(slot), Ok(3)); // ... and its swap PTE becomes a present PTE
        assert_eq!(map.put(slot), Ok(2)); // a child exits: its swap PTE goes
        assert_eq!(map.put(slot), Ok(1)); // the other child exits
        assert_eq!(map.put(slot), Ok(0)); // the parent's page leaves the cache: slot free
        assert_eq!(map.nr_used(), 0);
    }

    /// Exercise 7.2: why can a swap entry never be mistaken for a mapped page or
    /// an empty PTE? Encode slot 1 and look at the bits.
    #[test]
    fn a_swap_pte_is_not_present_not_empty_and_round_trips() {
        let pte = Pte::swap(SwapEntry::new(0, 1));
        assert!(!pte.is_present() && !pte.is_unused());
        assert_eq!(pte.bits() & 1, 0, "bit 0 (PRESENT) clear: the MMU faults on it");
        assert_eq!(pte.as_swap().map(SwapEntry::slot), Some(1));
    }

    /// Exercise 7.3: major faults on slots 100, 101, then (after using one
    /// readahead page) 103, then 107 (after using three), then 5000 with nothing
    /// used. How many slots does each read?
    #[test]
    fn the_readahead_window_doubles_on_use_and_halves_on_waste() {
        let mut window = ReadaheadWindow::new(32);
        assert_eq!(window.on_major_fault(100), 1, "no history: no readahead");
        assert_eq!(window.on_major_fault(101), 2, "right after the last window: sequential");
        window.on_hit();
        assert_eq!(window.on_major_fault(103), 4, "half of the last window's extra page used");
        for _ in 0..3 {
            window.on_hit();
        }
        assert_eq!(window.on_major_fault(107), 8);
        assert_eq!(window.on_major_fault(5000), 4, "nothing used, not adjacent: halve");
    }

    /// Exercise 7.4: slots are handed out next fit. After 1..=4 are taken and 2
    /// is freed, which slot does the next allocation get, and why does that help
    /// swap-out clustering?
    #[test]
    fn slots_are_handed_out_next_fit_so_a_batch_is_adjacent() {
        let mut map = SwapMap::new(16);
        let first: Vec<u32> = (0..4).map(|_| map.alloc().unwrap().index()).collect();
        assert_eq!(first, [1, 2, 3, 4], "slot 0 is the header");
        map.put(mm_core::swap_map::SwapSlot::from_index(2)).unwrap();
        // Not the hole at 2: the cursor goes on after 4, so a batch of victims
        // gets 5, 6, 7, ...: adjacent slots, one disk request.
        let next: Vec<u32> = (0..3).map(|_| map.alloc().unwrap().index()).collect();
        assert_eq!(next, [5, 6, 7]);
    }
}

/// Chapter 8: reclaim and the replacement policies.
mod ch08_reclaim {
    use mm_core::reclaim::{Clock, Fifo, HandBits, ReplacementPolicy, reads, simulate};

    /// Exercise 8.1: pages 0..4 become resident in order; 0 and 2 have been
    /// referenced. Which three pages does the clock evict, in order?
    #[test]
    fn the_clock_evicts_1_then_3_then_0() {
        let mut clock = Clock::second_chance();
        for page in 0..4 {
            clock.on_insert(page);
        }
        let mut bits = HandBits::new(&[0, 2], &[]);
        // 0 referenced: clear, skip. 1 not: evict.
        assert_eq!(clock.pick_victim(&mut bits), Some(1));
        // 2 referenced: clear, skip. 3 not: evict.
        assert_eq!(clock.pick_victim(&mut bits), Some(3));
        // 0 lost its bit on the first pass: evict.
        assert_eq!(clock.pick_victim(&mut bits), Some(0));
        assert!(bits.referenced.is_empty());
    }

    /// Exercise 8.2: the same question for FIFO: it never looks at the bits.
    #[test]
    fn fifo_evicts_in_arrival_order_whatever_the_bits() {
        let mut fifo = Fifo::new();
        for page in 0..4 {
            fifo.on_insert(page);
        }
        let mut bits = HandBits::new(&[0, 1, 2, 3], &[]);
        let victims: Vec<_> = (0..3).map(|_| fifo.pick_victim(&mut bits).unwrap()).collect();
        assert_eq!(victims, [0, 1, 2]);
    }

    /// Exercise 8.3: with 3 frames, how many faults do FIFO and the clock take on
    /// 1 2 3 4 2 5 2? (Page 2 is hot.)
    #[test]
    fn the_clock_keeps_the_hot_page_that_fifo_throws_out() {
        let refs = reads(&[1, 2, 3, 4, 2, 5, 2]);
        // FIFO: 1 2 3 fault; 4 evicts 1; 2 hits; 5 evicts 2; 2 faults again: 6 faults.
        assert_eq!(simulate(&mut Fifo::new(), 3, &refs).faults, 6);
        // Clock: every page is loaded with its Accessed bit set, so 4's fault sweeps
        // the whole ring clearing bits and evicts 1. 2's hit sets its bit again, so
        // 5's fault skips 2 (second chance) and evicts 3; the last 2 hits: 5 faults.
        assert_eq!(simulate(&mut Clock::second_chance(), 3, &refs).faults, 5);
    }

    /// Exercise 8.4: the enhanced clock prefers a page it can drop without a
    /// write. Pages 0..4, all unreferenced, 0 and 1 dirty: which goes first?
    #[test]
    fn the_enhanced_clock_drops_a_clean_page_before_a_dirty_one() {
        let mut clock = Clock::enhanced();
        for page in 0..4 {
            clock.on_insert(page);
        }
        let mut bits = HandBits::new(&[], &[0, 1]);
        assert_eq!(clock.pick_victim(&mut bits), Some(2));
        let mut plain = Clock::second_chance();
        for page in 0..4 {
            plain.on_insert(page);
        }
        assert_eq!(plain.pick_victim(&mut bits), Some(0), "the plain clock writes page 0 out");
    }
}
