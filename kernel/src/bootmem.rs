//! The bootloader's hand-off: the physical memory map and where things were put.
//!
//! [`init`] copies what the kernel needs out of the `BootInfo` into kernel memory:
//! the bootloader's mappings of `BootInfo` disappear when the kernel switches to its
//! own page tables. [`print_summary`] condenses the memory map (merging neighbouring
//! regions of one kind) for the boot banner; the frame table is built from
//! [`memory_regions`].

use bootloader_api::BootInfo;
use bootloader_api::info::{MemoryRegion, MemoryRegionKind};
use spin::Once;

/// The facts from `BootInfo` the kernel keeps.
#[derive(Clone, Copy, Debug)]
pub struct BootFacts {
    /// Physical address of the kernel ELF file in memory.
    pub kernel_addr: u64,
    /// Size of the kernel ELF file.
    pub kernel_len: u64,
    /// Virtual address the kernel image was loaded at.
    pub kernel_image_offset: u64,
    /// Lowest mapped address of the boot stack (its guard page is just below).
    pub kernel_stack_bottom: u64,
    /// Size of the boot stack.
    pub kernel_stack_len: u64,
    /// The direct map's offset, if the bootloader made one.
    pub physical_memory_offset: Option<u64>,
    /// Physical address of the ACPI RSDP, if the firmware has one (`arch::acpi`).
    pub rsdp_addr: Option<u64>,
}

/// The most memory-map entries kept (QEMU gives about a dozen).
const MAX_REGIONS: usize = 128;

struct Saved {
    facts: BootFacts,
    regions: [MemoryRegion; MAX_REGIONS],
    nr_regions: usize,
}

static SAVED: Once<Saved> = Once::new();

/// Copies the boot information the kernel needs.
pub fn init(boot_info: &'static mut BootInfo) {
    SAVED.call_once(|| {
        let mut regions = [MemoryRegion::empty(); MAX_REGIONS];
        let nr_regions = boot_info.memory_regions.len().min(MAX_REGIONS);
        regions[..nr_regions].copy_from_slice(&boot_info.memory_regions[..nr_regions]);
        let facts = BootFacts {
            kernel_addr: boot_info.kernel_addr,
            kernel_len: boot_info.kernel_len,
            kernel_image_offset: boot_info.kernel_image_offset,
            kernel_stack_bottom: boot_info.kernel_stack_bottom,
            kernel_stack_len: boot_info.kernel_stack_len,
            physical_memory_offset: boot_info.physical_memory_offset.into_option(),
            rsdp_addr: boot_info.rsdp_addr.into_option(),
        };
        Saved { facts, regions, nr_regions }
    });
}

fn saved() -> &'static Saved {
    SAVED.get().expect("bootmem: used before init")
}

/// Returns the facts kept from the boot information.
pub fn facts() -> BootFacts {
    saved().facts
}

/// Returns the bootloader's memory map.
pub fn memory_regions() -> &'static [MemoryRegion] {
    let saved = saved();
    &saved.regions[..saved.nr_regions]
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
    memory_regions().iter().filter(|r| r.kind == MemoryRegionKind::Usable).map(|r| r.end - r.start).sum()
}

/// Returns the number of bytes of RAM: usable, plus what the bootloader used (the
/// kernel image, its stack, page tables and boot information), which is RAM too.
pub fn ram_bytes() -> u64 {
    memory_regions()
        .iter()
        .filter(|r| matches!(r.kind, MemoryRegionKind::Usable | MemoryRegionKind::Bootloader))
        .map(|r| r.end - r.start)
        .sum()
}

/// Returns the end of RAM: the highest end of a usable or bootloader region.
pub fn end_of_ram() -> u64 {
    memory_regions()
        .iter()
        .filter(|r| matches!(r.kind, MemoryRegionKind::Usable | MemoryRegionKind::Bootloader))
        .map(|r| r.end)
        .max()
        .unwrap_or(0)
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
        crate::println!("  [{:#012x}, {:#012x}) {:>9} KiB  {}", start, end, (end - start) / 1024, kind_name(kind));
        i += 1;
    }
    crate::println!("  usable: {} MiB", usable_bytes() >> 20);
}
