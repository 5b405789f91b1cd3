//! The firmware's description of the machine: the ACPI MADT, read once at boot.
//!
//! The bootloader hands over the physical address of the RSDP; [`init`] follows it
//! to the MADT (through the direct map, which covers the first 4 GiB, where the
//! firmware puts its tables) and keeps the decoded table for `lapic`, `ioapic` and
//! `smp`: which CPUs exist (their local APIC ids), where the I/O APICs are, and on
//! which I/O APIC input each ISA interrupt arrives. The parsing itself is the pure
//! `acpi-tables` crate, tested on the host with a table QEMU produced.
//!
//! Without an RSDP or a MADT (a machine this kernel does not know) the kernel runs
//! on the boot CPU with the 8259 PIC, as before: [`madt`] is then `None`.

use acpi_tables::{Madt, PhysMemory};
use spin::Once;

use crate::mm::{PhysAddr, kspace, phys_to_virt};

/// Reads physical memory through the kernel's direct map.
struct DirectMap;

impl PhysMemory for DirectMap {
    fn read(&self, phys: u64, buf: &mut [u8]) -> bool {
        let Some(end) = phys.checked_add(buf.len() as u64) else { return false };
        if end > kspace::info().direct_map_bytes {
            return false;
        }
        let src = phys_to_virt(PhysAddr::new(phys)).as_u64() as *const u8;
        // SAFETY: `[phys, end)` lies inside the direct map (checked), which maps every
        // physical address below its end, RAM or firmware table alike; the bytes are
        // only copied out (firmware tables are never written).
        unsafe { core::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        true
    }
}

static MADT: Once<Option<Madt>> = Once::new();

/// Finds and decodes the MADT (once); says on the console why if it cannot.
pub fn init() {
    MADT.call_once(|| {
        let Some(rsdp) = crate::bootmem::facts().rsdp_addr else {
            log::warn!("acpi: the bootloader found no RSDP: one CPU, 8259 PIC");
            return None;
        };
        let madt = acpi_tables::find_table(&DirectMap, rsdp, acpi_tables::MADT_SIGNATURE).and_then(|t| Madt::parse(&t));
        match madt {
            Ok(madt) => Some(madt),
            Err(e) => {
                log::warn!("acpi: no usable MADT ({e:?}): one CPU, 8259 PIC");
                None
            }
        }
    });
}

/// Returns the decoded MADT, if the firmware has one.
pub fn madt() -> Option<&'static Madt> {
    MADT.get().and_then(|m| m.as_ref())
}

/// Returns the raw MADT bytes (for `acpi_dump` on the command line: how the host
/// tests' sample table was made).
pub fn raw_madt() -> Option<alloc::vec::Vec<u8>> {
    let rsdp = crate::bootmem::facts().rsdp_addr?;
    acpi_tables::find_table(&DirectMap, rsdp, acpi_tables::MADT_SIGNATURE).ok()
}

/// Prints what the MADT says: the CPUs, the I/O APICs, the overrides.
pub fn print_summary() {
    let Some(madt) = madt() else {
        crate::println!("acpi: no MADT: one CPU");
        return;
    };
    crate::print!("acpi: MADT lists {} CPU(s), local APIC ids", madt.cpus.len());
    for cpu in &madt.cpus {
        crate::print!(" {}{}", cpu.apic_id, if cpu.is_enabled { "" } else { " (disabled)" });
    }
    crate::println!("; local APICs at {:#x}", madt.local_apic_address);
    for io in &madt.io_apics {
        crate::println!("acpi: I/O APIC {} at {:#x}, GSIs from {}", io.id, io.address, io.gsi_base);
    }
    for o in &madt.overrides {
        crate::println!("acpi: ISA IRQ {} -> GSI {} ({:?}, {:?})", o.source_irq, o.gsi, o.polarity, o.trigger);
    }
}
