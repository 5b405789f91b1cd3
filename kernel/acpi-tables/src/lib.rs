//! `acpi-tables`: finding and parsing the ACPI tables that describe the CPUs and
//! interrupt controllers, with no hardware in it.
//!
//! The firmware leaves a chain of tables in memory; the bootloader hands the kernel
//! the physical address of the first one, the RSDP:
//!
//! ```text
//!   RSDP "RSD PTR "  --rsdt/xsdt address-->  RSDT "RSDT" (32-bit pointers)
//!                                         or XSDT "XSDT" (64-bit pointers, ACPI 2+)
//!                                              |  one pointer per table
//!                                              v
//!                                   "FACP"  "APIC" (the MADT)  "HPET"  ...
//! ```
//! Every table after the RSDP opens with the same 36-byte header (signature, length,
//! revision, checksum, ...) and its bytes sum to 0 modulo 256.
//!
//! The MADT ("Multiple APIC Description Table") lists, after a 44-byte head (header,
//! the local APIC's physical address, flags), variable-length entries `[type, length, ...]`:
//!
//! | type | entry | what the kernel takes from it |
//! |---|---|---|
//! | 0 | processor local APIC | one CPU: its APIC id, enabled or online-capable |
//! | 1 | I/O APIC | id, MMIO address, first global system interrupt (GSI) |
//! | 2 | interrupt source override | ISA IRQ n arrives on GSI g, with this polarity/trigger |
//! | 4 | local APIC NMI | (counted) which LINT pin NMIs arrive on |
//! | 5 | local APIC address override | a 64-bit local APIC address |
//! | 9 | processor local x2APIC | one CPU with a 32-bit APIC id |
//!
//! [`find_table`] walks the chain through a [`PhysMemory`] the caller provides (the
//! kernel reads through its direct map; the tests read a byte array), checking every
//! signature, length and checksum; [`Madt::parse`] decodes the MADT. A malformed
//! table is an [`Error`], never a panic: firmware is input like any other.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

/// Reads physical memory for the table walk.
pub trait PhysMemory {
    /// Fills `buf` with the bytes at physical address `phys`; false if that memory
    /// cannot be read (outside RAM and firmware areas).
    fn read(&self, phys: u64, buf: &mut [u8]) -> bool;
}

/// Why the tables could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The RSDP does not start with "RSD PTR ".
    BadRsdpSignature,
    /// A structure's bytes do not sum to 0 (the signature names it).
    BadChecksum([u8; 4]),
    /// A table is shorter than its header, or its entries run past its end.
    Truncated([u8; 4]),
    /// A table's signature is not the one its pointer promised.
    WrongSignature {
        /// The signature the pointer promised.
        expected: [u8; 4],
        /// The signature found there.
        found: [u8; 4],
    },
    /// Memory the tables point at could not be read.
    Unreadable(u64),
    /// The RSDT/XSDT lists no table with this signature.
    NotFound([u8; 4]),
}

/// Length of the common header of every table after the RSDP.
pub const HEADER_LEN: usize = 36;
/// Length of an ACPI 1.0 RSDP; an ACPI 2.0 one is [`RSDP_V2_LEN`].
const RSDP_V1_LEN: usize = 20;
/// Length of an ACPI 2.0+ RSDP (with the XSDT address).
const RSDP_V2_LEN: usize = 36;
/// The largest table the kernel reads (a MADT of 256 CPUs is ~2.5 KiB).
const MAX_TABLE_LEN: usize = 64 * 1024;

/// The MADT's signature.
pub const MADT_SIGNATURE: [u8; 4] = *b"APIC";

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// Returns true if `bytes` sum to 0 modulo 256, as every ACPI structure must.
pub fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b)) == 0
}

/// Reads the whole table at `phys` (its header says how long it is) and checks its
/// signature is `expected`, its length sane and its checksum 0.
pub fn read_table(mem: &impl PhysMemory, phys: u64, expected: [u8; 4]) -> Result<Vec<u8>, Error> {
    let mut header = [0u8; HEADER_LEN];
    if !mem.read(phys, &mut header) {
        return Err(Error::Unreadable(phys));
    }
    let found: [u8; 4] = header[0..4].try_into().expect("4 bytes");
    if found != expected {
        return Err(Error::WrongSignature { expected, found });
    }
    let len = u32_at(&header, 4) as usize;
    if !(HEADER_LEN..=MAX_TABLE_LEN).contains(&len) {
        return Err(Error::Truncated(found));
    }
    let mut table = vec![0u8; len];
    if !mem.read(phys, &mut table) {
        return Err(Error::Unreadable(phys));
    }
    if !checksum_ok(&table) {
        return Err(Error::BadChecksum(found));
    }
    Ok(table)
}

/// Follows the RSDP at `rsdp` to the RSDT or XSDT and returns the table whose
/// signature is `signature`, checked.
pub fn find_table(mem: &impl PhysMemory, rsdp: u64, signature: [u8; 4]) -> Result<Vec<u8>, Error> {
    let mut head = [0u8; RSDP_V2_LEN];
    if !mem.read(rsdp, &mut head[..RSDP_V1_LEN]) {
        return Err(Error::Unreadable(rsdp));
    }
    if &head[0..8] != b"RSD PTR " {
        return Err(Error::BadRsdpSignature);
    }
    if !checksum_ok(&head[..RSDP_V1_LEN]) {
        return Err(Error::BadChecksum(*b"RSDP"));
    }
    let revision = head[15];
    // ACPI 2.0+ (revision 2): the XSDT with 64-bit pointers; else the RSDT.
    let (root, root_signature, pointer_len) = if revision >= 2 {
        if !mem.read(rsdp, &mut head) {
            return Err(Error::Unreadable(rsdp));
        }
        // The extended checksum covers all 36 bytes of a 2.0 RSDP.
        if !checksum_ok(&head) {
            return Err(Error::BadChecksum(*b"RSDP"));
        }
        (u64_at(&head, 24), *b"XSDT", 8)
    } else {
        (u64::from(u32_at(&head, 16)), *b"RSDT", 4)
    };
    let root_table = read_table(mem, root, root_signature)?;
    let pointers = &root_table[HEADER_LEN..];
    for entry in pointers.chunks_exact(pointer_len) {
        let phys = if pointer_len == 8 { u64_at(entry, 0) } else { u64::from(u32_at(entry, 0)) };
        let mut found = [0u8; 4];
        if mem.read(phys, &mut found) && found == signature {
            return read_table(mem, phys, signature);
        }
    }
    Err(Error::NotFound(signature))
}

/// One CPU as the MADT lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalApic {
    /// The firmware's processor id (ties the CPU to its ACPI processor object).
    pub processor_uid: u32,
    /// The local APIC id: what an INIT/SIPI or an interrupt is addressed to.
    pub apic_id: u32,
    /// The CPU is usable now (flag bit 0).
    pub is_enabled: bool,
    /// The CPU is absent but could be hot-added (flag bit 1); not started.
    pub is_online_capable: bool,
}

/// One I/O APIC: the interrupt controller device lines go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoApic {
    /// Its I/O APIC id.
    pub id: u8,
    /// Physical address of its two MMIO registers (select at +0, window at +0x10).
    pub address: u32,
    /// The global system interrupt of its first input pin.
    pub gsi_base: u32,
}

/// An input's polarity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polarity {
    /// Asserted when high.
    ActiveHigh,
    /// Asserted when low.
    ActiveLow,
}

/// An input's trigger mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// An interrupt per rising (or falling) edge.
    Edge,
    /// Interrupts while the line stays asserted.
    Level,
}

/// "ISA IRQ `source_irq` arrives on GSI `gsi`, with this polarity and trigger".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterruptOverride {
    /// The bus (0: ISA).
    pub bus: u8,
    /// The ISA IRQ (the PIC line it would have had).
    pub source_irq: u8,
    /// The global system interrupt it arrives on.
    pub gsi: u32,
    /// Its polarity.
    pub polarity: Polarity,
    /// Its trigger mode.
    pub trigger: Trigger,
}

/// The decoded MADT.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Madt {
    /// Physical address of every CPU's local APIC (the 64-bit override if there is one).
    pub local_apic_address: u64,
    /// The machine also has 8259 PICs (flag PCAT_COMPAT): they must be masked.
    pub has_8259: bool,
    /// The CPUs, in table order (the firmware lists the boot CPU first).
    pub cpus: Vec<LocalApic>,
    /// The I/O APICs.
    pub io_apics: Vec<IoApic>,
    /// The interrupt source overrides.
    pub overrides: Vec<InterruptOverride>,
    /// Local APIC NMI entries seen.
    pub nr_nmi_entries: usize,
}

/// Decodes the polarity bits (0-1) of an override's flags; "conforms to the bus"
/// means ISA's active high.
fn polarity(flags: u16) -> Polarity {
    if flags & 3 == 3 { Polarity::ActiveLow } else { Polarity::ActiveHigh }
}

/// Decodes the trigger bits (2-3); "conforms to the bus" means ISA's edge.
fn trigger(flags: u16) -> Trigger {
    if (flags >> 2) & 3 == 3 { Trigger::Level } else { Trigger::Edge }
}

impl Madt {
    /// Decodes a MADT (as [`find_table`] returns it, checksum already checked).
    /// Unknown entry types are skipped; an entry running past the table, or shorter
    /// than its type needs, is [`Error::Truncated`].
    pub fn parse(table: &[u8]) -> Result<Madt, Error> {
        const MADT_HEAD_LEN: usize = HEADER_LEN + 8;
        if table.len() < MADT_HEAD_LEN || table[0..4] != MADT_SIGNATURE {
            return Err(Error::Truncated(MADT_SIGNATURE));
        }
        let mut madt = Madt {
            local_apic_address: u64::from(u32_at(table, HEADER_LEN)),
            has_8259: u32_at(table, HEADER_LEN + 4) & 1 != 0,
            ..Madt::default()
        };
        let mut at = MADT_HEAD_LEN;
        while at < table.len() {
            let truncated = Err(Error::Truncated(MADT_SIGNATURE));
            if at + 2 > table.len() {
                return truncated;
            }
            let (kind, len) = (table[at], table[at + 1] as usize);
            if len < 2 || at + len > table.len() {
                return truncated;
            }
            let entry = &table[at..at + len];
            let needs = match kind {
                0 => 8,
                1 => 12,
                2 => 10,
                4 => 6,
                5 => 12,
                9 => 16,
                _ => 2,
            };
            if len < needs {
                return truncated;
            }
            match kind {
                0 => {
                    let flags = u32_at(entry, 4);
                    madt.cpus.push(LocalApic {
                        processor_uid: u32::from(entry[2]),
                        apic_id: u32::from(entry[3]),
                        is_enabled: flags & 1 != 0,
                        is_online_capable: flags & 2 != 0,
                    });
                }
                1 => madt.io_apics.push(IoApic { id: entry[2], address: u32_at(entry, 4), gsi_base: u32_at(entry, 8) }),
                2 => {
                    let flags = u16_at(entry, 8);
                    madt.overrides.push(InterruptOverride {
                        bus: entry[2],
                        source_irq: entry[3],
                        gsi: u32_at(entry, 4),
                        polarity: polarity(flags),
                        trigger: trigger(flags),
                    });
                }
                4 => madt.nr_nmi_entries += 1,
                5 => madt.local_apic_address = u64_at(entry, 4),
                9 => {
                    let flags = u32_at(entry, 8);
                    madt.cpus.push(LocalApic {
                        processor_uid: u32_at(entry, 12),
                        apic_id: u32_at(entry, 4),
                        is_enabled: flags & 1 != 0,
                        is_online_capable: flags & 2 != 0,
                    });
                }
                _ => {}
            }
            at += len;
        }
        Ok(madt)
    }

    /// Returns the CPUs that can be started now (enabled ones).
    pub fn usable_cpus(&self) -> impl Iterator<Item = &LocalApic> {
        self.cpus.iter().filter(|c| c.is_enabled)
    }

    /// Returns where ISA IRQ `irq` arrives: its GSI, polarity and trigger (identity,
    /// active high, edge, unless an override says otherwise).
    pub fn isa_irq(&self, irq: u8) -> (u32, Polarity, Trigger) {
        match self.overrides.iter().find(|o| o.bus == 0 && o.source_irq == irq) {
            Some(o) => (o.gsi, o.polarity, o.trigger),
            None => (u32::from(irq), Polarity::ActiveHigh, Trigger::Edge),
        }
    }

    /// Returns the I/O APIC whose pins include `gsi`, and the pin, given each
    /// I/O APIC's pin count (`nr_pins(apic)`, read from its version register).
    pub fn io_apic_for(&self, gsi: u32, nr_pins: impl Fn(&IoApic) -> u32) -> Option<(IoApic, u32)> {
        self.io_apics
            .iter()
            .find(|a| gsi >= a.gsi_base && gsi < a.gsi_base + nr_pins(a))
            .map(|a| (*a, gsi - a.gsi_base))
    }
}

#[cfg(test)]
mod tests;
