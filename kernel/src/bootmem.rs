//! The bootloader's hand-off: the physical memory map and where things were put.
//!
//! [`init`] keeps the `BootInfo` the bootloader gave us; [`summary`] condenses its
//! memory map (merging neighbouring regions of one kind) for the boot banner. The
//! physical-memory layer builds its frame table from [`memory_regions`].

use bootloader_api::BootInfo;
use bootloader_api::info::{MemoryRegion, MemoryRegionKind};
use spin::Once;

static BOOT_INFO: Once<&'static BootInfo> = Once::new();

/// Stores the boot information for the rest of the kernel.
pub fn init(boot_info: &'static mut BootInfo) {
    BOOT_INFO.call_once(|| boot_info);
}

/// Returns the boot information; panics if [`init`] has not run.
pub fn boot_info() -> &'static BootInfo {
    BOOT_INFO.get().expect("bootmem: boot info used before init")
}

/// Returns the bootloader's memory map.
pub fn memory_regions() -> &'static [MemoryRegion] {
    &boot_info().memory_regions
}

/// Returns a short name for a region kind.
pub fn kind_name(kind: MemoryRegionKind) -> &'static str {
    match kind {
        MemoryRegionKind::Usable => "usable",
        MemoryRegionKind::Bootloader => "bootloader",
        MemoryRegionKind::UnknownUefi(_) => "uefi-reserved",
        MemoryRegionKind::UnknownBios(_) => "bios-reserved",
        _ => "other",
    }
}

/// Returns the number of bytes the memory map marks usable.
pub fn usable_bytes() -> u64 {
    memory_regions()
        .iter()
        .filter(|r| r.kind == MemoryRegionKind::Usable)
        .map(|r| r.end - r.start)
        .sum()
}

/// Prints the memory map with neighbouring regions of one kind merged.
pub fn print_summary() {
    let regions = memory_regions();
    crate::println!("physical memory map ({} entries from the bootloader):", regions.len());
    let mut i = 0;
    while i < regions.len() {
        let (start, kind) = (regions[i].start, regions[i].kind);
        let mut end = regions[i].end;
        while i + 1 < regions.len() && regions[i + 1].kind == kind && regions[i + 1].start == end {
            i += 1;
            end = regions[i].end;
        }
        crate::println!(
            "  [{:#012x}, {:#012x}) {:>9} KiB  {}",
            start,
            end,
            (end - start) / 1024,
            kind_name(kind)
        );
        i += 1;
    }
    crate::println!("  usable: {} MiB", usable_bytes() >> 20);
}
