//! Host tests of the page-table walk, over an emulated physical memory.
//!
//! [`EmulatedMemory`] keeps each table frame as a boxed `[u64; 512]` in a
//! `HashMap`, never reuses a freed frame number, and panics on a read of a freed
//! table or a free of a non-empty one, so use-after-free and leaks in the walker
//! show up as test failures. Leaf (data) frames are plain numbers from a separate
//! range; nothing stores them.

use std::boxed::Box;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::vec::Vec;

use super::*;
use crate::pte::SwapEntry;
use crate::xorshift::XorShift;

/// Physical memory that holds only page tables, for the walker to run against.
pub(super) struct EmulatedMemory {
    frames: HashMap<Frame, Box<[u64; ENTRIES_PER_TABLE]>>,
    next_pfn: u64,
    nr_tables_allocated: usize,
    nr_tables_freed: usize,
    /// How many more allocations succeed; `None` means unlimited.
    nr_allocs_left: Option<usize>,
}

impl EmulatedMemory {
    fn new() -> Self {
        Self {
            frames: HashMap::new(),
            next_pfn: 0x100,
            nr_tables_allocated: 0,
            nr_tables_freed: 0,
            nr_allocs_left: None,
        }
    }

    fn nr_live_tables(&self) -> usize {
        self.frames.len()
    }

    fn table(&self, table: Frame) -> &[u64; ENTRIES_PER_TABLE] {
        self.frames.get(&table).unwrap_or_else(|| panic!("EmulatedMemory: {table:?} is not a live table"))
    }
}

impl TableMemory for EmulatedMemory {
    fn read_entry(&self, table: Frame, index: usize) -> Pte {
        Pte::from_bits(self.table(table)[index])
    }

    fn write_entry(&mut self, table: Frame, index: usize, entry: Pte) {
        let frame = self.frames.get_mut(&table).unwrap_or_else(|| panic!("write_entry: {table:?} is not live"));
        frame[index] = entry.bits();
    }

    fn alloc_table(&mut self) -> Option<Frame> {
        if let Some(nr_left) = &mut self.nr_allocs_left {
            *nr_left = nr_left.checked_sub(1)?;
        }
        let frame = Frame::from_pfn(self.next_pfn);
        self.next_pfn += 1;
        self.frames.insert(frame, Box::new([0; ENTRIES_PER_TABLE]));
        self.nr_tables_allocated += 1;
        Some(frame)
    }

    fn free_table(&mut self, table: Frame) {
        let contents = self.frames.remove(&table).unwrap_or_else(|| panic!("free_table: {table:?} is not live"));
        assert!(contents.iter().all(|&entry| entry == 0), "free_table: {table:?} is not empty");
        self.nr_tables_freed += 1;
    }
}


pub(super) fn setup() -> (EmulatedMemory, PageTable) {
    let mut mem = EmulatedMemory::new();
    let table = PageTable::new(&mut mem).expect("setup: root allocation");
    (mem, table)
}

pub(super) fn page(addr: u64) -> Page {
    Page::from_start_address(VirtAddr::new(addr)).expect("page: unaligned")
}

pub(super) fn data_frame(n: u64) -> Frame {
    Frame::from_pfn(0x10_0000 + n)
}

pub(super) const USER_RW: PteFlags = PteFlags::USER.union(PteFlags::WRITABLE);
const PRESENT_USER_RW: PteFlags = USER_RW.union(PteFlags::PRESENT);

#[test]
fn map_translate_unmap_4k_page() {
    let (mut mem, mut table) = setup();
    let p = page(0x0000_0080_4020_3000);
    let frame = data_frame(42);
    let flush = table.map(&mut mem, p, frame, USER_RW).unwrap();
    assert_eq!((flush.page(), flush.size(), flush.is_global()), (p.start_address(), PageSize::Size4KiB, false));
    flush.ignore();
    let expected = (frame.start_address(), PRESENT_USER_RW, PageSize::Size4KiB);
    assert_eq!(table.translate(&mem, p.start_address()), Some(expected));
    assert_eq!(table.check_invariants(&mem), 4);
    assert_eq!(mem.nr_live_tables(), 4);

    let (unmapped, flush) = table.unmap(&mut mem, p).unwrap();
    assert_eq!(unmapped, frame);
    assert_eq!(flush.into_inner(), p.start_address());
    assert_eq!(table.translate(&mem, p.start_address()), None);
    assert_eq!(mem.nr_live_tables(), 1);
    assert_eq!(table.check_invariants(&mem), 1);
}

#[test]
fn worked_example_address_walks_indices_1_1_1_3() {
    let (mut mem, mut table) = setup();
    let addr = VirtAddr::new(0x0000_0080_4020_3abc);
    table.map(&mut mem, Page::containing_address(addr), data_frame(7), USER_RW).unwrap().ignore();
    let pdpt = mem.read_entry(table.root(), 1).frame();
    let pd = mem.read_entry(pdpt, 1).frame();
    let pt = mem.read_entry(pd, 1).frame();
    assert_eq!(mem.read_entry(pt, 3).frame(), data_frame(7));
    let (phys, _, _) = table.translate(&mem, addr).unwrap();
    assert_eq!(phys, data_frame(7).start_address() + 0xabc);
}

#[test]
fn translate_adds_the_offset_within_the_page() {
    let (mut mem, mut table) = setup();
    table.map(&mut mem, page(0x5000), data_frame(1), USER_RW).unwrap().ignore();
    for offset in [0, 1, 0x7ff, 0xfff] {
        let (phys, _, size) = table.translate(&mem, VirtAddr::new(0x5000 + offset)).unwrap();
        assert_eq!((phys, size), (data_frame(1).start_address() + offset, PageSize::Size4KiB));
    }
    assert_eq!(table.translate(&mem, VirtAddr::new(0x6000)), None);
    assert_eq!(table.translate(&mem, VirtAddr::new(0x4fff)), None);
}

#[test]
fn map_huge_translate_unmap_huge() {
    let (mut mem, mut table) = setup();
    let addr = VirtAddr::new(0x4000_0000 + 3 * HUGE_PAGE_SIZE);
    let phys = PhysAddr::new(0x1_2340_0000);
    let flush = table.map_huge(&mut mem, addr, phys, PteFlags::WRITABLE).unwrap();
    assert_eq!(flush.size(), PageSize::Size2MiB);
    flush.ignore();
    assert_eq!(table.check_invariants(&mem), 3);
    let flags = PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::HUGE;
    assert_eq!(table.translate(&mem, addr), Some((phys, flags, PageSize::Size2MiB)));
    let inside = addr + 0x12_3456;
    assert_eq!(table.translate(&mem, inside), Some((phys + 0x12_3456, flags, PageSize::Size2MiB)));
    assert_eq!(table.entry(&mem, Page::containing_address(inside)), None);

    let (frame, flush) = table.unmap_huge(&mut mem, addr).unwrap();
    assert_eq!(frame, Frame::containing_address(phys));
    assert_eq!((flush.page(), flush.size()), (addr, PageSize::Size2MiB));
    flush.ignore();
    assert_eq!(table.translate(&mem, inside), None);
    assert_eq!(mem.nr_live_tables(), 1);
}

/// Installs a 1 GiB leaf by hand (the walker does not create them) at `addr`.
fn install_giant_leaf(mem: &mut EmulatedMemory, table: &PageTable, addr: VirtAddr, phys: PhysAddr) {
    let pdpt = mem.alloc_table().unwrap();
    mem.write_entry(table.root(), addr.p4_index(), Pte::new(pdpt, PteFlags::PRESENT | PteFlags::WRITABLE));
    let flags = PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::HUGE;
    mem.write_entry(pdpt, addr.p3_index(), Pte::from_addr(phys, flags));
}

#[test]
fn translate_and_map_respect_a_1gib_leaf() {
    let (mut mem, mut table) = setup();
    let addr = VirtAddr::new(0x80_4000_0000);
    install_giant_leaf(&mut mem, &table, addr, PhysAddr::new(0x40_0000_0000));
    let (phys, _, size) = table.translate(&mem, addr + 0x3456_789a).unwrap();
    assert_eq!((phys.as_u64(), size), (0x40_3456_789a, PageSize::Size1GiB));

    let inside = Page::containing_address(addr + 0x20_1000);
    let err = table.map(&mut mem, inside, data_frame(0), USER_RW).unwrap_err();
    assert_eq!(err, MapError::HugeParent(PageSize::Size1GiB));
    let err = table.map_huge(&mut mem, addr + HUGE_PAGE_SIZE, PhysAddr::new(0), USER_RW).unwrap_err();
    assert_eq!(err, MapError::HugeParent(PageSize::Size1GiB));
    assert_eq!(table.unmap(&mut mem, inside), Err(UnmapError::SizeMismatch(PageSize::Size1GiB)));
    assert_eq!(table.unmap_huge(&mut mem, addr), Err(UnmapError::SizeMismatch(PageSize::Size1GiB)));
    assert_eq!(mem.nr_live_tables(), 2);
}

#[test]
fn map_of_a_used_entry_reports_what_is_there() {
    let (mut mem, mut table) = setup();
    table.map(&mut mem, page(0x1000), data_frame(1), USER_RW).unwrap().ignore();
    assert_eq!(table.map(&mut mem, page(0x1000), data_frame(2), USER_RW), Err(MapError::AlreadyMapped(data_frame(1))));

    let swap = Pte::swap(SwapEntry::new(2, 77));
    table.set_entry(&mut mem, page(0x2000), swap).unwrap().1.ignore();
    assert_eq!(table.map(&mut mem, page(0x2000), data_frame(3), USER_RW), Err(MapError::EntryInUse(swap)));

    let huge = VirtAddr::new(0x4000_0000);
    table.map_huge(&mut mem, huge, PhysAddr::new(0x20_0000), USER_RW).unwrap().ignore();
    let again = table.map_huge(&mut mem, huge, PhysAddr::new(0x40_0000), USER_RW);
    assert_eq!(again, Err(MapError::AlreadyMapped(Frame::containing_address(PhysAddr::new(0x20_0000)))));
    assert_eq!(table.translate(&mem, VirtAddr::new(0x1000)).unwrap().0, data_frame(1).start_address());
}

#[test]
fn map_under_a_huge_parent_fails_and_changes_nothing() {
    let (mut mem, mut table) = setup();
    let huge = VirtAddr::new(0x60_0000);
    table.map_huge(&mut mem, huge, PhysAddr::new(0x80_0000), USER_RW).unwrap().ignore();
    let nr_tables = mem.nr_live_tables();
    let inside = Page::containing_address(huge + 0x5000);
    let err = table.map(&mut mem, inside, data_frame(0), USER_RW).unwrap_err();
    assert_eq!(err, MapError::HugeParent(PageSize::Size2MiB));
    let swap = Pte::swap(SwapEntry::new(0, 1));
    assert_eq!(table.set_entry(&mut mem, inside, swap).unwrap_err(), MapError::HugeParent(PageSize::Size2MiB));
    assert_eq!(table.set_entry(&mut mem, inside, Pte::UNUSED).unwrap_err(), MapError::HugeParent(PageSize::Size2MiB));
    assert_eq!(table.entry(&mem, inside), None);
    assert_eq!(mem.nr_live_tables(), nr_tables);
}

#[test]
fn map_huge_over_a_page_table_fails() {
    let (mut mem, mut table) = setup();
    table.map(&mut mem, page(0x20_3000), data_frame(0), USER_RW).unwrap().ignore();
    let err = table.map_huge(&mut mem, VirtAddr::new(0x20_0000), PhysAddr::new(0x20_0000), USER_RW).unwrap_err();
    assert_eq!(err, MapError::TableInTheWay);
}

#[test]
fn huge_operations_reject_unaligned_addresses() {
    let (mut mem, mut table) = setup();
    let aligned = VirtAddr::new(0x20_0000);
    let err = table.map_huge(&mut mem, aligned + 0x1000, PhysAddr::new(0x20_0000), USER_RW);
    assert_eq!(err, Err(MapError::Unaligned));
    let err = table.map_huge(&mut mem, aligned, PhysAddr::new(0x20_1000), USER_RW);
    assert_eq!(err, Err(MapError::Unaligned));
    assert_eq!(table.unmap_huge(&mut mem, aligned + 0x1000), Err(UnmapError::Unaligned));
    assert_eq!(mem.nr_live_tables(), 1);
}

#[test]
fn unmap_of_a_page_that_is_not_mapped_fails() {
    let (mut mem, mut table) = setup();
    assert_eq!(table.unmap(&mut mem, page(0x1000)), Err(UnmapError::NotMapped));
    table.map(&mut mem, page(0x2000), data_frame(0), USER_RW).unwrap().ignore();
    assert_eq!(table.unmap(&mut mem, page(0x1000)), Err(UnmapError::NotMapped));
    table.set_entry(&mut mem, page(0x3000), Pte::swap(SwapEntry::new(1, 1))).unwrap().1.ignore();
    assert_eq!(table.unmap(&mut mem, page(0x3000)), Err(UnmapError::NotMapped));
    assert_eq!(table.unmap_huge(&mut mem, VirtAddr::new(0)), Err(UnmapError::SizeMismatch(PageSize::Size4KiB)));
    assert_eq!(table.unmap_huge(&mut mem, VirtAddr::new(0x20_0000)), Err(UnmapError::NotMapped));

    table.map_huge(&mut mem, VirtAddr::new(0x40_0000), PhysAddr::new(0), USER_RW).unwrap().ignore();
    assert_eq!(table.unmap(&mut mem, page(0x40_1000)), Err(UnmapError::SizeMismatch(PageSize::Size2MiB)));
    assert_eq!(table.unmap_huge(&mut mem, VirtAddr::new(0x4000_0000)), Err(UnmapError::NotMapped));
}

#[test]
fn protect_changes_flags_keeps_frame_and_hardware_bits() {
    let (mut mem, mut table) = setup();
    let p = page(0x7000);
    table.map(&mut mem, p, data_frame(9), USER_RW).unwrap().ignore();
    // Play the MMU: a write sets ACCESSED and DIRTY.
    let mut pte = table.entry(&mem, p).unwrap();
    pte.insert_flags(PteFlags::ACCESSED | PteFlags::DIRTY);
    table.set_entry(&mut mem, p, pte).unwrap().1.ignore();

    let flush = table.protect(&mut mem, p, PteFlags::USER | PteFlags::NO_EXECUTE).unwrap();
    assert_eq!((flush.page(), flush.size()), (p.start_address(), PageSize::Size4KiB));
    flush.ignore();
    let (phys, flags, _) = table.translate(&mem, p.start_address()).unwrap();
    assert_eq!(phys, data_frame(9).start_address());
    let expected = PteFlags::PRESENT | PteFlags::USER | PteFlags::NO_EXECUTE | PteFlags::ACCESSED | PteFlags::DIRTY;
    assert_eq!(flags, expected);

    assert_eq!(table.protect(&mut mem, page(0x8000), USER_RW), Err(ProtectError::NotMapped));
    assert_eq!(table.protect(&mut mem, page(0x4000_0000), USER_RW), Err(ProtectError::NotMapped));
    table.map_huge(&mut mem, VirtAddr::new(0x20_0000), PhysAddr::new(0), USER_RW).unwrap().ignore();
    assert_eq!(table.protect(&mut mem, page(0x20_0000), USER_RW), Err(ProtectError::SizeMismatch(PageSize::Size2MiB)));
}

#[test]
fn protect_to_user_grants_user_on_the_way_down() {
    let (mut mem, mut table) = setup();
    let p = page(0x9000);
    table.map(&mut mem, p, data_frame(1), PteFlags::WRITABLE).unwrap().ignore();
    assert!(!mem.read_entry(table.root(), 0).flags().contains(PteFlags::USER));
    table.protect(&mut mem, p, USER_RW).unwrap().ignore();
    assert!(mem.read_entry(table.root(), 0).flags().contains(PteFlags::USER));
    table.check_invariants(&mem);
}

#[test]
fn intermediate_entries_are_permissive_and_user_only_above_user_leaves() {
    let (mut mem, mut table) = setup();
    let kernel_page = page(0xffff_8000_0000_0000);
    let flags = PteFlags::WRITABLE | PteFlags::GLOBAL | PteFlags::NO_EXECUTE;
    let flush = table.map(&mut mem, kernel_page, data_frame(0), flags).unwrap();
    assert!(flush.is_global());
    flush.ignore();
    let kernel_entry = mem.read_entry(table.root(), 256);
    assert_eq!(kernel_entry.flags(), PteFlags::PRESENT | PteFlags::WRITABLE);

    table.map(&mut mem, page(0x1000), data_frame(1), PteFlags::WRITABLE).unwrap().ignore();
    assert_eq!(mem.read_entry(table.root(), 0).flags(), PteFlags::PRESENT | PteFlags::WRITABLE);
    table.map(&mut mem, page(0x2000), data_frame(2), USER_RW | PteFlags::NO_EXECUTE).unwrap().ignore();
    assert_eq!(mem.read_entry(table.root(), 0).flags(), PRESENT_USER_RW);
    table.check_invariants(&mem);
}

#[test]
fn kernel_half_pdpt_stays_after_its_last_unmap() {
    let (mut mem, mut table) = setup();
    let kernel_page = page(0xffff_8000_1234_5000);
    table.map(&mut mem, kernel_page, data_frame(0), PteFlags::WRITABLE).unwrap().ignore();
    assert_eq!(mem.nr_live_tables(), 4);
    let (_, flush) = table.unmap(&mut mem, kernel_page).unwrap();
    flush.ignore();
    assert_eq!(mem.nr_live_tables(), 2);
    assert!(mem.read_entry(table.root(), 256).is_present());
    assert_eq!(table.check_invariants(&mem), 2);
}

#[test]
fn new_sharing_kernel_half_sees_later_kernel_mappings() {
    let mut mem = EmulatedMemory::new();
    let mut kernel = PageTable::new(&mut mem).unwrap();
    kernel.populate_kernel_half(&mut mem).unwrap();
    assert_eq!(mem.nr_live_tables(), 257);
    let mut user = PageTable::new_sharing_kernel_half(&mut mem, &kernel).unwrap();
    let kernel_page = page(0xffff_c000_0000_0000);
    kernel.map(&mut mem, kernel_page, data_frame(5), PteFlags::WRITABLE).unwrap().ignore();
    assert_eq!(user.translate(&mem, kernel_page.start_address()).unwrap().0, data_frame(5).start_address());

    user.map(&mut mem, page(0x40_0000), data_frame(6), USER_RW).unwrap().ignore();
    assert_eq!(kernel.translate(&mem, VirtAddr::new(0x40_0000)), None);
    let mut nr_unmapped = 0;
    let plan = user.free_user_tables(&mut mem, |_| nr_unmapped += 1).into_plan();
    assert!(matches!(plan, FlushPlan::Pages(_)));
    assert_eq!(nr_unmapped, 1);
    assert_eq!(mem.nr_live_tables(), 1 + 1 + 256 + 2);
    user.free_root(&mut mem);
    assert_eq!(mem.nr_live_tables(), 1 + 256 + 2);
    assert_eq!(kernel.translate(&mem, kernel_page.start_address()).unwrap().0, data_frame(5).start_address());
}

#[test]
fn swap_entries_round_trip_through_set_entry() {
    let (mut mem, mut table) = setup();
    let p = page(0x1234_5000);
    table.map(&mut mem, p, data_frame(3), USER_RW).unwrap().ignore();
    let nr_tables = mem.nr_live_tables();

    let swap = Pte::swap(SwapEntry::new(SwapEntry::MAX_AREA, SwapEntry::MAX_SLOT));
    let (old, flush) = table.set_entry(&mut mem, p, swap).unwrap();
    assert_eq!(old.frame(), data_frame(3));
    assert_eq!(flush.page(), p.start_address());
    flush.ignore();
    assert_eq!(table.entry(&mem, p), Some(swap));
    assert_eq!(table.entry(&mem, p).unwrap().as_swap(), Some(SwapEntry::new(SwapEntry::MAX_AREA, SwapEntry::MAX_SLOT)));
    assert_eq!(table.translate(&mem, p.start_address()), None);
    assert_eq!(mem.nr_live_tables(), nr_tables, "a swap entry keeps its tables");
    table.check_invariants(&mem);

    let swapped_in = Pte::new(data_frame(4), PRESENT_USER_RW);
    let (old, flush) = table.set_entry(&mut mem, p, swapped_in).unwrap();
    flush.ignore();
    assert_eq!(old, swap);
    assert_eq!(table.translate(&mem, p.start_address()).unwrap().0, data_frame(4).start_address());

    let (old, flush) = table.set_entry(&mut mem, p, Pte::UNUSED).unwrap();
    flush.ignore();
    assert_eq!(old, swapped_in);
    assert_eq!(mem.nr_live_tables(), 1);
}

#[test]
fn set_entry_on_a_fresh_page_allocates_and_unused_on_missing_tables_is_a_no_op() {
    let (mut mem, mut table) = setup();
    let p = page(0x7fff_ffff_f000);
    assert_eq!(table.entry(&mem, p), None);
    let (old, flush) = table.set_entry(&mut mem, p, Pte::UNUSED).unwrap();
    flush.ignore();
    assert_eq!((old, mem.nr_live_tables()), (Pte::UNUSED, 1));

    let swap = Pte::swap(SwapEntry::new(1, 0));
    let (old, flush) = table.set_entry(&mut mem, p, swap).unwrap();
    flush.ignore();
    assert_eq!((old, table.entry(&mem, p)), (Pte::UNUSED, Some(swap)));
    assert_eq!(table.check_invariants(&mem), 4);
}

#[test]
fn allocation_failure_frees_the_tables_it_made() {
    let (mut mem, mut table) = setup();
    table.map(&mut mem, page(0x1000), data_frame(0), USER_RW).unwrap().ignore();
    let nr_tables = mem.nr_live_tables();
    for nr_allocs in 0..3 {
        mem.nr_allocs_left = Some(nr_allocs);
        let err = table.map(&mut mem, page(0x80_0000_0000), data_frame(1), USER_RW).unwrap_err();
        assert_eq!(err, MapError::FrameAllocationFailed);
        assert_eq!(mem.nr_live_tables(), nr_tables, "after {nr_allocs} successful allocations");
        table.check_invariants(&mem);
    }
    // A PT is missing under an existing PD: one allocation short.
    mem.nr_allocs_left = Some(0);
    let err = table.set_entry(&mut mem, page(0x20_0000), Pte::swap(SwapEntry::new(0, 0))).unwrap_err();
    assert_eq!(err, MapError::FrameAllocationFailed);
    assert_eq!(mem.nr_live_tables(), nr_tables);
    mem.nr_allocs_left = None;
    table.map(&mut mem, page(0x80_0000_0000), data_frame(1), USER_RW).unwrap().ignore();
}

#[test]
fn tables_are_freed_when_thousands_of_scattered_pages_are_unmapped() {
    let (mut mem, mut table) = setup();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut pages = BTreeSet::new();
    while pages.len() < 3000 {
        let addr = if pages.len() % 2 == 0 {
            rng.below(1 << 47) & !0xfff
        } else {
            0x4000_0000 + (rng.below(1 << 30) & !0xfff)
        };
        pages.insert(page(addr));
    }
    for (n, &p) in pages.iter().enumerate() {
        table.map(&mut mem, p, data_frame(n as u64), USER_RW).unwrap().ignore();
    }
    assert_eq!(table.check_invariants(&mem), mem.nr_live_tables());
    assert!(mem.nr_live_tables() > 1500);

    let mut order: Vec<Page> = pages.iter().copied().collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    for p in order {
        table.unmap(&mut mem, p).unwrap().1.ignore();
    }
    assert_eq!(mem.nr_live_tables(), 1);
    assert_eq!(mem.nr_tables_allocated, mem.nr_tables_freed + 1);
}

/// Maps a mix of 4 KiB pages, one 2 MiB page and swap entries in 0x20_0000..0x80_0000.
fn populate_mixed_region(mem: &mut EmulatedMemory, table: &mut PageTable) -> BTreeMap<VirtAddr, PageSize> {
    let mut expected = BTreeMap::new();
    for n in 0..40 {
        let p = page(0x20_0000 + n * 0x3000);
        table.map(mem, p, data_frame(n), USER_RW).unwrap().ignore();
        expected.insert(p.start_address(), PageSize::Size4KiB);
    }
    table.map_huge(mem, VirtAddr::new(0x40_0000), PhysAddr::new(0x4000_0000), USER_RW).unwrap().ignore();
    expected.insert(VirtAddr::new(0x40_0000), PageSize::Size2MiB);
    for n in 0..5 {
        let p = page(0x60_0000 + n * 0x1000);
        table.set_entry(mem, p, Pte::swap(SwapEntry::new(0, n))).unwrap().1.ignore();
        expected.insert(p.start_address(), PageSize::Size4KiB);
    }
    expected
}

#[test]
fn for_each_leaf_visits_used_leaves_in_address_order() {
    let (mut mem, mut table) = setup();
    let expected = populate_mixed_region(&mut mem, &mut table);
    let mut seen = Vec::new();
    table.for_each_leaf(&mem, page(0), 1 << 20, |leaf| seen.push((leaf.addr, leaf.size)));
    assert_eq!(seen, expected.into_iter().collect::<Vec<_>>());

    let mut seen = Vec::new();
    table.for_each_leaf(&mem, page(0x50_0000), 1, |leaf| seen.push(leaf.addr));
    assert_eq!(seen, [VirtAddr::new(0x40_0000)], "a huge leaf is visited whole");
}

#[test]
fn unmap_range_reports_every_leaf_and_frees_tables() {
    let (mut mem, mut table) = setup();
    let expected = populate_mixed_region(&mut mem, &mut table);
    let mut seen = BTreeMap::new();
    let mut nr_swap = 0;
    let mut batch = FlushBatch::new();
    table
        .unmap_range(&mut mem, page(0x20_0000), 0x60_0000 / PAGE_SIZE, &mut batch, |leaf| {
            nr_swap += usize::from(leaf.pte.as_swap().is_some());
            seen.insert(leaf.addr, leaf.size);
        })
        .unwrap();
    assert_eq!(seen, expected);
    assert_eq!(nr_swap, 5);
    assert!(matches!(batch.into_plan(), FlushPlan::All { has_global: false }));
    assert_eq!(mem.nr_live_tables(), 1);
}

#[test]
fn unmap_range_of_a_few_pages_flushes_exactly_those() {
    let (mut mem, mut table) = setup();
    for n in 0..4 {
        table.map(&mut mem, page(0x1000 * n), data_frame(n), USER_RW).unwrap().ignore();
    }
    let mut batch = FlushBatch::new();
    table.unmap_range(&mut mem, page(0x1000), 2, &mut batch, |_| {}).unwrap();
    let FlushPlan::Pages(pages) = batch.into_plan() else { panic!("expected single-page flushes") };
    assert_eq!(pages.collect::<Vec<_>>(), [VirtAddr::new(0x1000), VirtAddr::new(0x2000)]);
    assert!(table.translate(&mem, VirtAddr::new(0)).is_some());
    assert!(table.translate(&mem, VirtAddr::new(0x3000)).is_some());
    let mut batch = FlushBatch::new();
    table.unmap_range(&mut mem, page(0), 0, &mut batch, |_| panic!("empty range")).unwrap();
    assert!(batch.is_empty());
    assert!(matches!(batch.into_plan(), FlushPlan::Nothing));
}

#[test]
fn unmap_range_rejects_a_huge_leaf_sticking_out_and_changes_nothing() {
    let (mut mem, mut table) = setup();
    table.map_huge(&mut mem, VirtAddr::new(0x20_0000), PhysAddr::new(0), USER_RW).unwrap().ignore();
    table.map(&mut mem, page(0x1f_f000), data_frame(0), USER_RW).unwrap().ignore();
    let mut batch = FlushBatch::new();
    let starts_inside = table.unmap_range(&mut mem, page(0x20_1000), 1, &mut batch, |_| panic!("no change"));
    assert_eq!(starts_inside, Err(UnmapError::SizeMismatch(PageSize::Size2MiB)));
    let ends_inside = table.unmap_range(&mut mem, page(0x1f_f000), 2, &mut batch, |_| panic!("no change"));
    assert_eq!(ends_inside, Err(UnmapError::SizeMismatch(PageSize::Size2MiB)));
    assert!(batch.is_empty());
    assert!(table.translate(&mem, VirtAddr::new(0x1f_f000)).is_some());
    assert!(table.translate(&mem, VirtAddr::new(0x20_0000)).is_some());
    table.unmap_range(&mut mem, page(0x1f_f000), 1 + 512, &mut batch, |_| {}).unwrap();
    assert_eq!(mem.nr_live_tables(), 1);
    let FlushPlan::Pages(pages) = batch.into_plan() else { panic!("expected single-page flushes") };
    assert_eq!(pages.count(), 2);
}

#[test]
fn update_leaves_write_protects_for_cow_and_batches_flushes() {
    let (mut mem, mut table) = setup();
    for n in 0..10 {
        table.map(&mut mem, page(0x10_0000 + n * 0x1000), data_frame(n), USER_RW).unwrap().ignore();
    }
    let swap = Pte::swap(SwapEntry::new(0, 9));
    table.set_entry(&mut mem, page(0x10_a000), swap).unwrap().1.ignore();
    let mut batch = FlushBatch::new();
    table.update_leaves(&mut mem, page(0x10_0000), 16, &mut batch, |leaf| {
        if !leaf.pte.is_present() {
            return LeafAction::Keep;
        }
        let mut pte = leaf.pte;
        pte.remove_flags(PteFlags::WRITABLE);
        pte.insert_flags(PteFlags::COW);
        LeafAction::Replace(pte)
    });
    let FlushPlan::Pages(pages) = batch.into_plan() else { panic!("expected single-page flushes") };
    assert_eq!(pages.count(), 10);
    for n in 0..10 {
        let (phys, flags, _) = table.translate(&mem, VirtAddr::new(0x10_0000 + n * 0x1000)).unwrap();
        assert_eq!(phys, data_frame(n).start_address());
        assert_eq!(flags, PteFlags::PRESENT | PteFlags::USER | PteFlags::COW);
    }
    assert_eq!(table.entry(&mem, page(0x10_a000)), Some(swap));

    let mut batch = FlushBatch::new();
    table.update_leaves(&mut mem, page(0x10_0000), 16, &mut batch, |_| LeafAction::Clear);
    assert_eq!(mem.nr_live_tables(), 1);
    assert!(matches!(batch.into_plan(), FlushPlan::Pages(_)));
}

#[test]
fn flush_batch_switches_to_a_full_flush_past_the_ceiling() {
    let flush = |n: u64, is_global| Flush::new(VirtAddr::new(n * PAGE_SIZE), PageSize::Size4KiB, is_global);
    assert!(matches!(FlushBatch::new().into_plan(), FlushPlan::Nothing));

    let mut batch = FlushBatch::new();
    for n in 0..FlushBatch::CEILING as u64 {
        batch.push(flush(n, false));
    }
    let FlushPlan::Pages(pages) = batch.into_plan() else { panic!("at the ceiling: pages") };
    assert!(pages.eq((0..FlushBatch::CEILING as u64).map(|n| VirtAddr::new(n * PAGE_SIZE))));

    let mut batch = FlushBatch::new();
    for n in 0..=FlushBatch::CEILING as u64 {
        batch.push(flush(n, n == 3));
    }
    assert!(matches!(batch.into_plan(), FlushPlan::All { has_global: true }));
}

#[test]
fn free_user_tables_leaves_the_root_and_kernel_half() {
    let (mut mem, mut table) = setup();
    let expected = populate_mixed_region(&mut mem, &mut table);
    let kernel_page = page(0xffff_ffff_8000_0000);
    table.map(&mut mem, kernel_page, data_frame(99), PteFlags::WRITABLE | PteFlags::GLOBAL).unwrap().ignore();
    let mut nr_leaves = 0;
    let batch = table.free_user_tables(&mut mem, |_| nr_leaves += 1);
    assert!(matches!(batch.into_plan(), FlushPlan::All { has_global: false }));
    assert_eq!(nr_leaves, expected.len());
    assert_eq!(table.check_invariants(&mem), 4);
    assert!(table.translate(&mem, kernel_page.start_address()).is_some());
}

/// Applies one random map, unmap or protect to `table` and `model`, checking that both agree.
fn random_step(
    rng: &mut XorShift,
    mem: &mut EmulatedMemory,
    table: &mut PageTable,
    model: &mut BTreeMap<Page, Frame>,
    pool: &[Page],
) {
    let p = pool[rng.below(pool.len() as u64) as usize];
    match rng.below(10) {
        0..=4 => {
            let frame = data_frame(rng.below(1 << 20));
            let result = table.map(mem, p, frame, USER_RW);
            match model.get(&p) {
                Some(&old) => assert_eq!(result, Err(MapError::AlreadyMapped(old)), "{p:?}"),
                None => {
                    result.unwrap().ignore();
                    model.insert(p, frame);
                }
            }
        }
        5..=8 => {
            let result = table.unmap(mem, p);
            match model.remove(&p) {
                Some(frame) => assert_eq!(result.unwrap().0, frame, "{p:?}"),
                None => assert_eq!(result, Err(UnmapError::NotMapped), "{p:?}"),
            }
        }
        _ => {
            let result = table.protect(mem, p, PteFlags::USER);
            assert_eq!(result.is_ok(), model.contains_key(&p), "{p:?}");
            if let Ok(flush) = result {
                flush.ignore();
                table.protect(mem, p, USER_RW).unwrap().ignore();
            }
        }
    }
}

#[test]
fn randomized_map_unmap_matches_a_reference_model() {
    let (mut mem, mut table) = setup();
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    // Clusters (shared tables) plus loners (private tables), so tables come and go.
    let mut pool = Vec::new();
    for cluster in 0..8 {
        let base = rng.below(1 << 47) & !(HUGE_PAGE_SIZE - 1);
        let base =
            if cluster % 2 == 0 { base } else { base.min((1 << 47) - 2 * HUGE_PAGE_SIZE) + HUGE_PAGE_SIZE - 0x8000 };
        pool.extend((0..16).map(|n| page(base + n * PAGE_SIZE)));
    }
    pool.extend((0..64).map(|_| page(rng.below(1 << 47) & !0xfff)));

    let mut model = BTreeMap::new();
    for _batch in 0..200 {
        for _ in 0..25 {
            random_step(&mut rng, &mut mem, &mut table, &mut model, &pool);
        }
        for &p in &pool {
            let translated =
                table.translate(&mem, p.start_address()).map(|(phys, _, _)| Frame::containing_address(phys));
            assert_eq!(translated, model.get(&p).copied(), "{p:?}");
        }
        assert_eq!(table.check_invariants(&mem), mem.nr_live_tables());
    }
    assert!(!model.is_empty());
    for (&p, &frame) in &model {
        assert_eq!(table.unmap(&mut mem, p).unwrap().0, frame);
    }
    assert_eq!(mem.nr_live_tables(), 1);
}

#[test]
fn fork_range_copies_every_leaf_in_one_walk_and_write_protects_the_parent() {
    let (mut mem, mut parent) = setup();
    let expected = populate_mixed_region(&mut mem, &mut parent);
    let mut child = PageTable::new(&mut mem).unwrap();
    let mut batch = FlushBatch::new();
    let mut nr_copied = 0;
    parent
        .fork_range(&mut mem, &mut child, page(0), 1 << 20, &mut batch, |leaf| {
            nr_copied += 1;
            if leaf.pte.is_present() {
                let mut shared = leaf.pte;
                shared.remove_flags(PteFlags::WRITABLE);
                shared.insert_flags(PteFlags::COW);
                Some((shared, shared))
            } else {
                Some((leaf.pte, leaf.pte)) // a swap entry: both sides point at the slot
            }
        })
        .unwrap();
    assert_eq!(nr_copied, expected.len());
    // Every present leaf of the parent was write-protected: one flush each.
    assert!(!batch.is_empty());
    for (&addr, &size) in &expected {
        let in_parent = parent.translate(&mem, addr);
        let in_child = child.translate(&mem, addr);
        assert_eq!(in_parent, in_child, "{addr:?} differs after fork");
        if let Some((_, flags, got_size)) = in_child {
            assert_eq!(got_size, size);
            assert!(!flags.contains(PteFlags::WRITABLE) && flags.contains(PteFlags::COW));
        } else {
            let p = Page::containing_address(addr);
            assert_eq!(parent.entry(&mem, p), child.entry(&mem, p), "swap entry not copied");
        }
    }
    // The child has exactly the tables it needs: as many as the parent.
    assert_eq!(child.check_invariants(&mem), parent.check_invariants(&mem));
}

#[test]
fn fork_range_reports_allocation_failure_and_leaves_a_releasable_child() {
    let (mut mem, mut parent) = setup();
    populate_mixed_region(&mut mem, &mut parent);
    let mut child = PageTable::new(&mut mem).unwrap();
    mem.nr_allocs_left = Some(2);
    let mut batch = FlushBatch::new();
    let result = parent.fork_range(&mut mem, &mut child, page(0), 1 << 20, &mut batch, |leaf| Some((leaf.pte, leaf.pte)));
    assert_eq!(result, Err(ForkError::FrameAllocationFailed));
    mem.nr_allocs_left = None;
    child.check_invariants(&mem);
    let _ = child.free_user_tables(&mut mem, |_| {}).into_plan();
    child.free_root(&mut mem);
}

#[test]
fn fork_range_stops_when_a_leaf_is_refused() {
    let (mut mem, mut parent) = setup();
    populate_mixed_region(&mut mem, &mut parent);
    let mut child = PageTable::new(&mut mem).unwrap();
    let mut batch = FlushBatch::new();
    let mut nr_seen = 0;
    let result = parent.fork_range(&mut mem, &mut child, page(0), 1 << 20, &mut batch, |leaf| {
        nr_seen += 1;
        (nr_seen < 10).then_some((leaf.pte, leaf.pte))
    });
    assert_eq!(result, Err(ForkError::Refused));
    assert_eq!(nr_seen, 10, "the walk must stop at the refused leaf");
    child.check_invariants(&mem);
    let mut nr_copied = 0;
    child.for_each_leaf(&mem, page(0), 1 << 20, |_| nr_copied += 1);
    assert_eq!(nr_copied, 9);
}

#[test]
fn split_huge_maps_the_same_bytes_with_512_small_leaves() {
    let (mut mem, mut table) = setup();
    let addr = VirtAddr::new(0x4000_0000 + 5 * HUGE_PAGE_SIZE);
    let phys = PhysAddr::new(0x1_2340_0000);
    assert!(table.is_huge_slot_empty(&mem, addr), "nothing mapped yet");
    let flags = USER_RW | PteFlags::DIRTY | PteFlags::ACCESSED;
    table.map_huge(&mut mem, addr, phys, flags).unwrap().ignore();
    assert!(!table.is_huge_slot_empty(&mem, addr), "a huge leaf is there");
    assert_eq!(table.huge_leaf(&mem, addr + 0x1234).map(|(start, pte)| (start, pte.frame())), Some((addr, Frame::containing_address(phys))));
    let before: Vec<_> = (0..512).map(|i| table.translate(&mem, addr + i * PAGE_SIZE + 7).map(|t| t.0)).collect();

    let (head, flush) = table.split_huge(&mut mem, addr + (0x40_0000 - HUGE_PAGE_SIZE - 1)).unwrap();
    assert_eq!(head, Frame::containing_address(phys));
    assert_eq!((flush.page(), flush.size()), (addr, PageSize::Size2MiB));
    flush.ignore();
    assert_eq!(table.huge_leaf(&mem, addr), None);
    for i in 0..512u64 {
        let va = addr + i * PAGE_SIZE + 7;
        let (pa, f, size) = table.translate(&mem, va).expect("still mapped");
        assert_eq!((Some(pa), size), (before[i as usize], PageSize::Size4KiB));
        assert_eq!(f, flags | PteFlags::PRESENT, "flags kept, PS cleared");
        assert_eq!(table.entry(&mem, Page::containing_address(va)).map(|p| p.frame()), Some(head + i));
    }
    assert!(!table.is_huge_slot_empty(&mem, addr), "a level-1 table is there now");
    assert_eq!(table.check_invariants(&mem), 4);
    assert_eq!(table.split_huge(&mut mem, addr), Err(SplitError::NotHuge));
}

#[test]
fn split_huge_without_a_frame_for_the_table_leaves_the_huge_leaf() {
    let (mut mem, mut table) = setup();
    let addr = VirtAddr::new(0x4000_0000);
    table.map_huge(&mut mem, addr, PhysAddr::new(0x20_0000), USER_RW).unwrap().ignore();
    mem.nr_allocs_left = Some(0);
    assert_eq!(table.split_huge(&mut mem, addr).unwrap_err(), SplitError::FrameAllocationFailed);
    assert!(table.huge_leaf(&mem, addr).is_some());
    assert_eq!(table.check_invariants(&mem), 3);
}

#[test]
fn a_split_kernel_only_huge_leaf_in_the_user_half_can_be_made_user_again() {
    // A PROT_NONE huge page (present, no USER) split, then one page made
    // accessible again by mprotect (update_leaves): the new table's entry must
    // carry USER, or the MMU refuses the access although the leaf allows it.
    let (mut mem, mut table) = setup();
    let addr = VirtAddr::new(0x4000_0000);
    table.map_huge(&mut mem, addr, PhysAddr::new(0x20_0000), USER_RW).unwrap().ignore();
    let mut batch = FlushBatch::new();
    table.update_leaves(&mut mem, page(addr.as_u64()), 512, &mut batch, |leaf| {
        LeafAction::Replace(Pte::new(leaf.pte.frame(), leaf.pte.flags() - PteFlags::USER))
    });
    table.split_huge(&mut mem, addr).unwrap().1.ignore();
    table.update_leaves(&mut mem, page(addr.as_u64()), 1, &mut batch, |leaf| {
        LeafAction::Replace(Pte::new(leaf.pte.frame(), leaf.pte.flags() | PteFlags::USER))
    });
    assert_eq!(table.check_invariants(&mem), 4, "a user leaf under a kernel-only entry");
}

#[test]
fn replace_huge_swaps_the_frame_and_flags_of_a_huge_leaf_only() {
    let (mut mem, mut table) = setup();
    let addr = VirtAddr::new(0x4000_0000);
    let old_flags = (USER_RW - PteFlags::WRITABLE) | PteFlags::COW;
    table.map_huge(&mut mem, addr, PhysAddr::new(0x20_0000), old_flags).unwrap().ignore();
    let new = Frame::containing_address(PhysAddr::new(0x60_0000));
    let (old, flush) = table.replace_huge(&mut mem, addr + 0x1234, new, USER_RW).unwrap();
    assert_eq!((old.frame(), old.flags() - PteFlags::HUGE), (Frame::containing_address(PhysAddr::new(0x20_0000)), old_flags | PteFlags::PRESENT));
    assert_eq!((flush.page(), flush.size()), (addr, PageSize::Size2MiB));
    flush.ignore();
    let (pa, flags, size) = table.translate(&mem, addr + 0x1234).unwrap();
    assert_eq!((pa, flags, size), (PhysAddr::new(0x60_1234), USER_RW | PteFlags::PRESENT | PteFlags::HUGE, PageSize::Size2MiB));
    // Not a huge leaf (nothing mapped, or a level-1 table): refused, nothing changed.
    assert_eq!(table.replace_huge(&mut mem, addr + HUGE_PAGE_SIZE, new, USER_RW).unwrap_err(), SplitError::NotHuge);
    table.split_huge(&mut mem, addr).unwrap().1.ignore();
    assert_eq!(table.replace_huge(&mut mem, addr, new, USER_RW).unwrap_err(), SplitError::NotHuge);
    assert_eq!(table.check_invariants(&mem), 4);
}

#[test]
fn map_unused_in_table_fills_only_unused_entries_of_one_table_and_needs_the_table() {
    let (mut mem, mut table) = setup();
    let base = 0x0000_0040_0000_0000u64 + 0x20_0000 - 4 * PAGE_SIZE; // 4 pages before a table's end
    let (busy, swapped) = (page(base + PAGE_SIZE), page(base + 2 * PAGE_SIZE));
    // No table yet: nothing is asked or mapped.
    assert_eq!(table.map_unused_in_table(&mut mem, page(base), 8, |_| panic!("asked without a table")), 0);
    table.map(&mut mem, busy, data_frame(1), USER_RW).unwrap().ignore();
    let swap = Pte::swap(SwapEntry::new(0, 7));
    table.set_entry(&mut mem, swapped, swap).unwrap().1.ignore();
    let mut asked = Vec::new();
    let nr = table.map_unused_in_table(&mut mem, page(base), 8, |p| {
        asked.push(p);
        (p != page(base + 3 * PAGE_SIZE)).then(|| (data_frame(100 + asked.len() as u64), PteFlags::USER))
    });
    // The window is cut at the table's end (4 pages); the used two are skipped.
    assert_eq!(asked, [page(base), page(base + 3 * PAGE_SIZE)]);
    assert_eq!(nr, 1);
    let present_user = PteFlags::USER | PteFlags::PRESENT;
    assert_eq!(table.translate(&mem, VirtAddr::new(base)), Some((data_frame(101).start_address(), present_user, PageSize::Size4KiB)));
    assert_eq!(table.entry(&mem, busy).unwrap().frame(), data_frame(1), "a present entry is kept");
    assert_eq!(table.entry(&mem, swapped), Some(swap), "a swap entry is kept");
    assert!(table.entry(&mem, page(base + 3 * PAGE_SIZE)).unwrap().is_unused(), "None leaves it unused");
    assert!(table.entry(&mem, page(base + 4 * PAGE_SIZE)).is_none(), "nothing past the table");
    table.check_invariants(&mem);
}
