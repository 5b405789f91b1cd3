//! The I/O APIC: where device interrupt lines go once the 8259 PIC is masked.
//!
//! ```text
//!   device line (ISA IRQ n, or a PCI line the firmware routed to ISA IRQ n)
//!     -> MADT override? (ISA IRQ 0, the PIT, arrives on pin 2 in QEMU)
//!     -> I/O APIC pin (GSI) -> redirection entry: vector, polarity, trigger, mask,
//!                              destination APIC id
//!     -> that CPU's local APIC -> vector -> trap dispatch; EOI to the local APIC,
//!        which tells the I/O APIC for a level-triggered line (its "remote IRR")
//! ```
//! The I/O APIC has two MMIO registers, a select at +0 and a window at +0x10: a
//! register is read or written by writing its number to the select and then using
//! the window. Register 1 holds the number of pins; pin `p`'s 64-bit redirection
//! entry is registers `0x10 + 2p` (low half) and `0x11 + 2p` (high half).
//!
//! [`init`] masks every pin; `irq` and `timer` then [`route`] the lines they use,
//! to the boot CPU, with the vectors the PIC gave them (`IRQ_BASE + line`), so the
//! rest of the kernel sees the same vectors whichever controller delivers them.
//! The select/window pair is two accesses, so every access holds [`IOAPIC`]'s lock.
//!
//! The command-line word `noapic` keeps the 8259 (as Linux's does).

use core::sync::atomic::{AtomicBool, Ordering};

use acpi_tables::{Polarity, Trigger};

use super::acpi;
use crate::mm::{PhysAddr, phys_to_virt};
use crate::sync::{IrqMutex, LockRank};

const REG_VERSION: u32 = 0x01;
const REG_REDIRECTION_BASE: u32 = 0x10;
/// Redirection entry bit 13: active low.
const ENTRY_ACTIVE_LOW: u64 = 1 << 13;
/// Bit 15: level-triggered.
const ENTRY_LEVEL: u64 = 1 << 15;
/// Bit 16: masked.
const ENTRY_MASKED: u64 = 1 << 16;

/// The first I/O APIC of the MADT (QEMU's PC has one): its MMIO base and pins.
struct IoApicRegs {
    base_phys: u64,
    gsi_base: u32,
    nr_pins: u32,
}

impl IoApicRegs {
    fn select(&self) -> *mut u32 {
        phys_to_virt(PhysAddr::new(self.base_phys)).as_u64() as *mut u32
    }

    fn read(&mut self, reg: u32) -> u32 {
        // SAFETY: the I/O APIC's select and window registers (MMIO, in the direct map,
        // which covers the first 4 GiB); `&mut self` under IOAPIC's lock keeps the
        // select/window pair together.
        unsafe {
            self.select().write_volatile(reg);
            self.select().byte_add(0x10).read_volatile()
        }
    }

    fn write(&mut self, reg: u32, value: u32) {
        // SAFETY: as in `read`.
        unsafe {
            self.select().write_volatile(reg);
            self.select().byte_add(0x10).write_volatile(value);
        }
    }

    fn write_entry(&mut self, pin: u32, entry: u64) {
        // Mask first, then the destination, then the low half (which unmasks).
        self.write(REG_REDIRECTION_BASE + 2 * pin, ENTRY_MASKED as u32);
        self.write(REG_REDIRECTION_BASE + 2 * pin + 1, (entry >> 32) as u32);
        self.write(REG_REDIRECTION_BASE + 2 * pin, entry as u32);
    }
}

/// The I/O APIC's registers, `None` until [`init`] (or with `noapic`).
static IOAPIC: IrqMutex<Option<IoApicRegs>> = IrqMutex::new_ranked(LockRank::IoApic, None);
/// Set once device lines and the PIT go through the I/O APIC (the 8259 is masked).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Returns true if interrupts arrive through the I/O APIC (EOIs go to the local APIC).
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Takes the MADT's first I/O APIC and masks all its pins; returns false (the
/// 8259 stays) without one, or with the command-line word `noapic`.
pub fn init() -> bool {
    let Some(madt) = acpi::madt() else { return false };
    let Some(first) = madt.io_apics.first() else { return false };
    if crate::cmdline::has("noapic") {
        crate::println!("ioapic: noapic: device interrupts stay on the 8259 PIC");
        return false;
    }
    let mut regs = IoApicRegs { base_phys: u64::from(first.address), gsi_base: first.gsi_base, nr_pins: 0 };
    regs.nr_pins = ((regs.read(REG_VERSION) >> 16) & 0xff) + 1;
    for pin in 0..regs.nr_pins {
        regs.write_entry(pin, ENTRY_MASKED);
    }
    *IOAPIC.lock() = Some(regs);
    true
}

/// Marks the I/O APIC as the controller in use (after the caller masked the 8259).
pub fn set_active() {
    ACTIVE.store(true, Ordering::Relaxed);
}

/// Why a line could not be routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// No I/O APIC in use.
    NoIoApic,
    /// The line's GSI is not one of the I/O APIC's pins.
    NoSuchPin(u32),
}

/// Routes ISA IRQ `irq` (as the MADT's overrides say) to `vector` on the CPU with
/// APIC id `dest_apic_id`, and unmasks it. Returns the pin it arrives on.
pub fn route(irq: u8, vector: u8, dest_apic_id: u32) -> Result<u32, RouteError> {
    let madt = acpi::madt().ok_or(RouteError::NoIoApic)?;
    let (gsi, polarity, trigger) = madt.isa_irq(irq);
    let mut guard = IOAPIC.lock();
    let regs = guard.as_mut().ok_or(RouteError::NoIoApic)?;
    if gsi < regs.gsi_base || gsi >= regs.gsi_base + regs.nr_pins {
        return Err(RouteError::NoSuchPin(gsi));
    }
    let pin = gsi - regs.gsi_base;
    let mut entry = u64::from(vector) | u64::from(dest_apic_id) << 56;
    if polarity == Polarity::ActiveLow {
        entry |= ENTRY_ACTIVE_LOW;
    }
    if trigger == Trigger::Level {
        entry |= ENTRY_LEVEL;
    }
    regs.write_entry(pin, entry);
    Ok(pin)
}

/// Returns the redirection entry of the pin ISA IRQ `irq` arrives on (for tests).
pub fn entry_for(irq: u8) -> Option<u64> {
    let (gsi, _, _) = acpi::madt()?.isa_irq(irq);
    let mut guard = IOAPIC.lock();
    let regs = guard.as_mut()?;
    let pin = gsi.checked_sub(regs.gsi_base).filter(|&p| p < regs.nr_pins)?;
    let low = regs.read(REG_REDIRECTION_BASE + 2 * pin);
    let high = regs.read(REG_REDIRECTION_BASE + 2 * pin + 1);
    Some(u64::from(low) | u64::from(high) << 32)
}
