//! The kernel address space: builds the kernel's own PML4 and switches to it.
//!
//! The bootloader's page tables got us running; [`init`] replaces them with a tree
//! the kernel built itself, with exact permissions (see `layout.rs` for the map):
//! 1. the direct map: every 2 MiB of `[0, max(end of RAM, 4 GiB))`, RW, NX, GLOBAL;
//! 2. the kernel image, segment by segment, with the permissions of its ELF program
//!    headers: text R-X, rodata R--, data and bss RW- (NX). The frames are the ones
//!    the bootloader loaded the segments into (found by walking its tables); W^X is
//!    checked for every page;
//! 3. the boot stack, whose guard page stays unmapped;
//! 4. a PDPT under every kernel-half PML4 slot, so address spaces created later
//!    share every kernel mapping made later.
//!
//! Then it turns on NXE and WP, loads CR3, and enables PGE, SMEP, SMAP and PCIDE.

use mm_core::addr::HUGE_PAGE_SIZE;
use mm_core::pagetable::{PageSize, PageTable};

use super::paging::{DirectMapTables, KERNEL_PT, PteFlags};
use super::{Frame, PAGE_SIZE, Page, PhysAddr, VirtAddr, layout};
use crate::arch::{cpu, tlb};
use crate::bootmem;

/// What `init` built, for the boot log and tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct KspaceInfo {
    /// Bytes covered by the direct map.
    pub direct_map_bytes: u64,
    /// Kernel image pages mapped executable (text).
    pub nr_text_pages: u64,
    /// Kernel image pages mapped read-only, not executable (rodata).
    pub nr_rodata_pages: u64,
    /// Kernel image pages mapped writable, not executable (data, bss).
    pub nr_data_pages: u64,
    /// Boot stack pages.
    pub nr_stack_pages: u64,
    /// Page-table frames in the new tree.
    pub nr_tables: usize,
}

static INFO: spin::Once<KspaceInfo> = spin::Once::new();

/// Returns what `init` built.
pub fn info() -> KspaceInfo {
    *INFO.get().expect("kspace: info before init")
}

/// Leaf flags the kernel image gets for ELF segment flags `p_flags` (PF_X=1, PF_W=2).
fn segment_flags(p_flags: u32) -> PteFlags {
    let mut flags = PteFlags::PRESENT | PteFlags::GLOBAL;
    if p_flags & 2 != 0 {
        flags |= PteFlags::WRITABLE;
    }
    if p_flags & 1 == 0 {
        flags |= PteFlags::NO_EXECUTE;
    }
    assert!(
        !(flags.contains(PteFlags::WRITABLE) && !flags.contains(PteFlags::NO_EXECUTE)),
        "kspace: a kernel segment is both writable and executable (W^X)"
    );
    flags
}

/// The PT_LOAD program headers of the kernel ELF (read from its in-memory copy).
fn kernel_segments() -> impl Iterator<Item = (u64, u64, u32)> {
    let facts = bootmem::facts();
    let elf = super::phys_to_virt(PhysAddr::new(facts.kernel_addr)).as_u64() as *const u8;
    // SAFETY: the bootloader left the kernel ELF file at `kernel_addr` (a Bootloader
    // region, never handed to the allocator) and the direct map covers it.
    let bytes = unsafe { core::slice::from_raw_parts(elf, facts.kernel_len as usize) };
    let read = |at: usize, len: usize| bytes[at..at + len].iter().rev().fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    assert_eq!(&bytes[..4], b"\x7fELF", "kspace: kernel image is not ELF");
    let (phoff, phentsize, phnum) = (read(0x20, 8) as usize, read(0x36, 2) as usize, read(0x38, 2) as usize);
    (0..phnum).filter_map(move |i| {
        let ph = phoff + i * phentsize;
        let is_load = read(ph, 4) == 1;
        is_load.then(|| (read(ph + 0x10, 8), read(ph + 0x28, 8), read(ph + 4, 4) as u32))
    })
}

/// Copies `nr_pages` pages at `start` from the bootloader's tree into `new` with `flags`.
fn copy_pages(boot: &PageTable, new: &mut PageTable, start: VirtAddr, nr_pages: u64, flags: PteFlags) {
    // SAFETY: at boot, before anything else runs: `boot` is the live tree CR3 holds
    // (only read) and `new` is the kernel's tree being built, ours alone.
    let mem = &mut unsafe { DirectMapTables::new() };
    for i in 0..nr_pages {
        let page = Page::containing_address(start).offset(i);
        let Some((phys, _, PageSize::Size4KiB)) = boot.translate(mem, page.start_address()) else {
            panic!("kspace: {page:?} is not a 4 KiB page in the bootloader's tables");
        };
        match new.map(mem, page, Frame::containing_address(phys), flags) {
            Ok(flush) => flush.ignore(), // CR3 is reloaded at the end
            Err(mm_core::pagetable::MapError::AlreadyMapped(_)) => {
                // Two segments share this page: widen to the union of both.
                let old = new.entry(mem, page).expect("kspace: mapped page has an entry").flags();
                let union = (old | flags) - (PteFlags::NO_EXECUTE & !(old & flags));
                new.protect(mem, page, union).expect("kspace: protect shared page").ignore();
            }
            Err(e) => panic!("kspace: mapping {page:?}: {e:?}"),
        }
    }
}

/// Builds the kernel's page tables and switches to them.
pub fn init() {
    // SAFETY: as in `copy_pages`: the bootloader's tree is only read, the new one is ours.
    let mem = &mut unsafe { DirectMapTables::new() };
    let (boot_root, _) = tlb::current_root();
    let boot = PageTable::from_root(boot_root);
    let mut kpt = PageTable::new(mem).expect("kspace: no frame for the PML4");
    let mut info = KspaceInfo::default();

    // 1. The direct map, with 2 MiB pages.
    let direct_map_bytes = bootmem::end_of_ram().max(4 << 30).next_multiple_of(HUGE_PAGE_SIZE);
    let direct = PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::NO_EXECUTE | PteFlags::GLOBAL;
    for offset in (0..direct_map_bytes).step_by(HUGE_PAGE_SIZE as usize) {
        let virt = VirtAddr::new(layout::PHYS_MAP_BASE + offset);
        kpt.map_huge(mem, virt, PhysAddr::new(offset), direct).expect("kspace: direct map").ignore();
    }
    info.direct_map_bytes = direct_map_bytes;

    // 2. The kernel image, per ELF segment.
    let image_base = bootmem::facts().kernel_image_offset;
    for (vaddr, memsz, p_flags) in kernel_segments() {
        let start = VirtAddr::new(image_base + vaddr).align_down(PAGE_SIZE);
        let end = VirtAddr::new(image_base + vaddr + memsz).align_up(PAGE_SIZE);
        let nr_pages = (end - start) / PAGE_SIZE;
        let flags = segment_flags(p_flags);
        copy_pages(&boot, &mut kpt, start, nr_pages, flags);
        match (flags.contains(PteFlags::WRITABLE), flags.contains(PteFlags::NO_EXECUTE)) {
            (false, false) => info.nr_text_pages += nr_pages,
            (false, true) => info.nr_rodata_pages += nr_pages,
            _ => info.nr_data_pages += nr_pages,
        }
    }

    // 3. The boot stack (its guard page below stays unmapped).
    let facts = bootmem::facts();
    info.nr_stack_pages = facts.kernel_stack_len.div_ceil(PAGE_SIZE);
    copy_pages(&boot, &mut kpt, VirtAddr::new(facts.kernel_stack_bottom), info.nr_stack_pages, direct);

    // 4. Share the kernel half with every future address space.
    kpt.populate_kernel_half(mem).expect("kspace: no frames for kernel PDPTs");
    info.nr_tables = kpt.check_invariants(mem);

    cpu::enable_nx_and_wp();
    // SAFETY: the new tree maps everything the kernel touches from now on: its image
    // (code, data, this stack frame's stack), the direct map (frame table, heap), and
    // nothing the kernel still needs is only in the bootloader's tree (boot facts were
    // copied by `bootmem::init`).
    unsafe { tlb::write_cr3(kpt.root(), 0, false) };
    cpu::enable_protection();
    tlb::flush_all_including_global();
    *KERNEL_PT.lock() = Some(kpt);
    INFO.call_once(|| info);
}

/// Prints what the kernel address space holds.
pub fn print_summary() {
    let info = info();
    let features = cpu::detect();
    crate::println!(
        "kernel page tables at {:?}: direct map {} MiB (2 MiB pages), image {} text + {} rodata + {} data pages, boot stack {} pages, {} tables",
        super::paging::kernel_root(),
        info.direct_map_bytes >> 20,
        info.nr_text_pages,
        info.nr_rodata_pages,
        info.nr_data_pages,
        info.nr_stack_pages,
        info.nr_tables
    );
    crate::println!(
        "cpu: NX {} SMEP {} SMAP {} PCID {} PGE {} 1GiB-pages {}",
        features.has_nx, features.has_smep, features.has_smap, features.has_pcid, features.has_pge, features.has_1g_pages
    );
}
