//! PCI: configuration space through I/O ports 0xCF8/0xCFC, a bus scan, BAR decoding,
//! the command register and capability lists, and an `lspci`-like printer.
//!
//! Configuration mechanism #1 (the PCI Local Bus spec, §3.2.2.3.2): write
//! `0x8000_0000 | bus << 16 | device << 11 | function << 8 | offset` to port 0xCF8,
//! then read or write the dword at port 0xCFC (bytes and words at 0xCFC + offset % 4).
//! The pair is not atomic, so every access holds `CONFIG_LOCK`. QEMU's `pc` machine
//! (i440fx) has no ECAM window, so this is the only way in; it reaches the first 256
//! bytes of each function, which is all a conventional PCI device has.
//!
//! The scan ([`scan`]) is the recursive one: start at bus 0, and for every
//! PCI-to-PCI bridge found, scan its secondary bus. An absent device answers vendor
//! 0xFFFF on function 0, so an empty slot costs one config read, and a bus one read
//! per slot: only buses that exist behind a bridge are visited. BAR sizes are
//! probed once during the scan (write all ones, read back, restore) with decoding
//! turned off, as Linux does, so later code just reads [`PciDevice::bars`].
//!
//! Neighbours: `virtio_blk` finds its device here and calls [`PciDevice::enable`];
//! the virtio transports walk [`PciDevice::capabilities`].
//!
//! Locks: `CONFIG_LOCK` is a leaf (nothing is taken while it is held; the lock order
//! is in [`crate::mm`]).

use alloc::vec::Vec;
use core::fmt;

use x86_64::instructions::port::Port;

use crate::println;
use crate::sync::IrqMutex;

/// The configuration address port.
const CONFIG_ADDRESS: u16 = 0xcf8;
/// The configuration data port.
const CONFIG_DATA: u16 = 0xcfc;

/// Serialises the address/data port pair.
static CONFIG_LOCK: IrqMutex<()> = IrqMutex::new_ranked(crate::sync::LockRank::PciConfig, ());
/// The devices found by the first [`scan`].
static DEVICES: spin::Once<Vec<PciDevice>> = spin::Once::new();

/// Offsets of the configuration-space header fields this module uses.
pub mod reg {
    /// Vendor ID (u16).
    pub const VENDOR_ID: u8 = 0x00;
    /// Device ID (u16).
    pub const DEVICE_ID: u8 = 0x02;
    /// Command register (u16).
    pub const COMMAND: u8 = 0x04;
    /// Status register (u16).
    pub const STATUS: u8 = 0x06;
    /// Revision ID (u8), then prog-if, subclass, class at 0x09..=0x0b.
    pub const REVISION: u8 = 0x08;
    /// Header type (u8); bit 7 says "multi-function device".
    pub const HEADER_TYPE: u8 = 0x0e;
    /// First base address register (u32); BAR n is at 0x10 + 4n.
    pub const BAR0: u8 = 0x10;
    /// Secondary bus number of a PCI-to-PCI bridge (u8, header type 1).
    pub const SECONDARY_BUS: u8 = 0x19;
    /// Subsystem vendor ID (u16, header type 0).
    pub const SUBSYSTEM_VENDOR_ID: u8 = 0x2c;
    /// Subsystem ID (u16, header type 0).
    pub const SUBSYSTEM_ID: u8 = 0x2e;
    /// Offset of the first capability (u8), valid when STATUS has [`super::STATUS_CAP_LIST`].
    pub const CAPABILITIES: u8 = 0x34;
    /// Interrupt line (u8): the legacy IRQ the firmware routed INTx to.
    pub const INTERRUPT_LINE: u8 = 0x3c;
    /// Interrupt pin (u8): 0 none, 1..=4 INTA#..INTD#.
    pub const INTERRUPT_PIN: u8 = 0x3d;
}

/// Command register: respond to I/O-space accesses.
pub const COMMAND_IO: u16 = 1 << 0;
/// Command register: respond to memory-space accesses.
pub const COMMAND_MEMORY: u16 = 1 << 1;
/// Command register: the device may master the bus (needed for DMA).
pub const COMMAND_BUS_MASTER: u16 = 1 << 2;
/// Command register: INTx assertion disabled.
pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;
/// Status register: the capability list at [`reg::CAPABILITIES`] is valid.
pub const STATUS_CAP_LIST: u16 = 1 << 4;

/// The capability ID of a vendor-specific capability (virtio 1.x uses these).
pub const CAP_VENDOR: u8 = 0x09;
/// The capability ID of MSI-X.
pub const CAP_MSIX: u8 = 0x11;

/// The location of a PCI function: bus, device (slot) and function number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PciAddress {
    /// Bus number, 0..=255.
    pub bus: u8,
    /// Device (slot) number, 0..32.
    pub device: u8,
    /// Function number, 0..8.
    pub function: u8,
}

impl PciAddress {
    /// Creates an address; panics if `device` or `function` is out of range.
    pub const fn new(bus: u8, device: u8, function: u8) -> Self {
        assert!(device < 32 && function < 8, "PciAddress::new: device or function out of range");
        Self { bus, device, function }
    }

    /// Returns the value for the CONFIG_ADDRESS port selecting dword `offset`.
    fn config_address(self, offset: u8) -> u32 {
        0x8000_0000
            | (self.bus as u32) << 16
            | (self.device as u32) << 11
            | (self.function as u32) << 8
            | (offset & 0xfc) as u32
    }

    /// Reads the dword at `offset` (rounded down to a multiple of 4).
    pub fn read_u32(self, offset: u8) -> u32 {
        let _guard = CONFIG_LOCK.lock();
        // SAFETY: ports 0xCF8/0xCFC belong to the host bridge's configuration
        // mechanism; selecting and reading a config dword has no effect on memory,
        // and the lock keeps the address/data pair together.
        unsafe {
            Port::<u32>::new(CONFIG_ADDRESS).write(self.config_address(offset));
            Port::<u32>::new(CONFIG_DATA).read()
        }
    }

    /// Writes the dword at `offset` (rounded down to a multiple of 4).
    ///
    /// Configuration writes can reprogram a device (its BARs, its DMA permission),
    /// so callers in this crate only write the registers they own.
    pub fn write_u32(self, offset: u8, value: u32) {
        let _guard = CONFIG_LOCK.lock();
        // SAFETY: as in `read_u32`; a config write changes device registers only,
        // and every caller writes a register of a device it is driving or sizing.
        unsafe {
            Port::<u32>::new(CONFIG_ADDRESS).write(self.config_address(offset));
            Port::<u32>::new(CONFIG_DATA).write(value);
        }
    }

    /// Reads the word at `offset` (must be 2-byte aligned).
    pub fn read_u16(self, offset: u8) -> u16 {
        debug_assert!(offset % 2 == 0, "PciAddress::read_u16: unaligned offset");
        (self.read_u32(offset) >> ((offset & 2) * 8)) as u16
    }

    /// Writes the word at `offset` (must be 2-byte aligned), keeping the other half.
    ///
    /// A read-modify-write of the whole dword. The status register (0x06) shares a
    /// dword with the command register and its bits are write-one-to-clear, so a
    /// command write puts zeros in the status half (clearing nothing).
    pub fn write_u16(self, offset: u8, value: u16) {
        debug_assert!(offset % 2 == 0, "PciAddress::write_u16: unaligned offset");
        let shift = (offset & 2) * 8;
        let dword = self.read_u32(offset);
        let dword = if offset & 0xfc == reg::COMMAND {
            // Writing the status half back would clear its write-one-to-clear bits.
            dword & 0xffff
        } else {
            dword
        };
        let merged = (dword & !(0xffff << shift)) | (value as u32) << shift;
        self.write_u32(offset, merged);
    }

    /// Reads the byte at `offset`.
    pub fn read_u8(self, offset: u8) -> u8 {
        (self.read_u32(offset) >> ((offset & 3) * 8)) as u8
    }
}

impl fmt::Debug for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A decoded base address register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bar {
    /// A window in I/O-port space.
    Io {
        /// First port.
        port: u32,
        /// Size in bytes.
        size: u32,
    },
    /// A 32-bit memory window.
    Mem32 {
        /// Physical base address.
        addr: u32,
        /// Size in bytes.
        size: u32,
        /// Reads have no side effects (the window may be mapped write-combining).
        is_prefetchable: bool,
    },
    /// A 64-bit memory window; it occupies this BAR slot and the next.
    Mem64 {
        /// Physical base address.
        addr: u64,
        /// Size in bytes.
        size: u64,
        /// Reads have no side effects.
        is_prefetchable: bool,
    },
}

impl Bar {
    /// Returns the I/O port base if this is an I/O BAR.
    pub fn io_port(self) -> Option<u16> {
        match self {
            Bar::Io { port, .. } => u16::try_from(port).ok(),
            _ => None,
        }
    }

    /// Returns the base address (port number for I/O BARs).
    pub fn base(self) -> u64 {
        match self {
            Bar::Io { port, .. } => port as u64,
            Bar::Mem32 { addr, .. } => addr as u64,
            Bar::Mem64 { addr, .. } => addr,
        }
    }

    /// Returns the size in bytes.
    pub fn size(self) -> u64 {
        match self {
            Bar::Io { size, .. } | Bar::Mem32 { size, .. } => size as u64,
            Bar::Mem64 { size, .. } => size,
        }
    }
}

/// One PCI function, as read during the scan.
#[derive(Clone, Debug)]
pub struct PciDevice {
    /// Where it sits.
    pub addr: PciAddress,
    /// Vendor ID (0x1af4 is Red Hat / virtio).
    pub vendor_id: u16,
    /// Device ID.
    pub device_id: u16,
    /// Subsystem ID (for a legacy virtio device: the virtio device type).
    pub subsystem_id: u16,
    /// Base class (0x01 mass storage, 0x02 network, 0x03 display, 0x06 bridge, ...).
    pub class: u8,
    /// Subclass within the base class.
    pub subclass: u8,
    /// Programming interface.
    pub prog_if: u8,
    /// Revision ID.
    pub revision: u8,
    /// Header type without the multi-function bit (0 device, 1 PCI bridge, 2 CardBus).
    pub header_type: u8,
    /// Legacy IRQ line the firmware routed INTx to (0xff: none).
    pub interrupt_line: u8,
    /// INTx pin: 0 none, 1..=4 INTA#..INTD#.
    pub interrupt_pin: u8,
    /// The decoded BARs, by slot; the slot after a 64-bit BAR is `None`.
    pub bars: [Option<Bar>; 6],
}

impl PciDevice {
    /// Reads the header of the function at `addr` (which must answer a vendor ID).
    fn read(addr: PciAddress) -> Self {
        let class_rev = addr.read_u32(reg::REVISION);
        let header_type = addr.read_u8(reg::HEADER_TYPE) & 0x7f;
        let mut dev = Self {
            addr,
            vendor_id: addr.read_u16(reg::VENDOR_ID),
            device_id: addr.read_u16(reg::DEVICE_ID),
            subsystem_id: if header_type == 0 { addr.read_u16(reg::SUBSYSTEM_ID) } else { 0 },
            class: (class_rev >> 24) as u8,
            subclass: (class_rev >> 16) as u8,
            prog_if: (class_rev >> 8) as u8,
            revision: class_rev as u8,
            header_type,
            interrupt_line: addr.read_u8(reg::INTERRUPT_LINE),
            interrupt_pin: addr.read_u8(reg::INTERRUPT_PIN),
            bars: [None; 6],
        };
        let nr_bars = match header_type {
            0 => 6,
            1 => 2,
            _ => 0,
        };
        // Host bridges keep decoding while sized (Linux's `mmio_always_on`): turning
        // off the bridge that carries every other access is asking for trouble.
        let is_host_bridge = dev.class == 0x06 && dev.subclass == 0x00;
        dev.bars = decode_bars(addr, nr_bars, !is_host_bridge);
        dev
    }

    /// Returns true for a PCI-to-PCI bridge (class 06, subclass 04, header type 1).
    pub fn is_pci_bridge(&self) -> bool {
        self.class == 0x06 && self.subclass == 0x04 && self.header_type == 1
    }

    /// Returns the command register.
    pub fn command(&self) -> u16 {
        self.addr.read_u16(reg::COMMAND)
    }

    /// Sets `bits` in the command register (e.g. [`COMMAND_IO`] | [`COMMAND_BUS_MASTER`]).
    ///
    /// Bus mastering lets the device DMA into any physical memory: enable it only
    /// for a device whose driver programs it.
    pub fn enable(&self, bits: u16) {
        self.addr.write_u16(reg::COMMAND, self.command() | bits);
    }

    /// Clears `bits` in the command register.
    pub fn disable(&self, bits: u16) {
        self.addr.write_u16(reg::COMMAND, self.command() & !bits);
    }

    /// Returns an iterator over the capability list: `(id, offset)` pairs.
    pub fn capabilities(&self) -> Capabilities {
        let has_list = self.addr.read_u16(reg::STATUS) & STATUS_CAP_LIST != 0 && self.header_type <= 1;
        let first = if has_list { self.addr.read_u8(reg::CAPABILITIES) & 0xfc } else { 0 };
        Capabilities { addr: self.addr, next: first, budget: 48 }
    }

    /// Returns a short name for the device's class.
    pub fn class_name(&self) -> &'static str {
        class_name(self.class, self.subclass)
    }
}

/// Iterator over a function's capability list, yielding `(capability id, offset)`.
///
/// The walk stops at a null pointer, a pointer into the header (< 0x40), or after
/// 48 entries (the most that fit in 192 bytes), so a looping list cannot hang it.
pub struct Capabilities {
    addr: PciAddress,
    next: u8,
    budget: u8,
}

impl Iterator for Capabilities {
    type Item = (u8, u8);

    fn next(&mut self) -> Option<(u8, u8)> {
        if self.next < 0x40 || self.budget == 0 {
            return None;
        }
        self.budget -= 1;
        let offset = self.next;
        let header = self.addr.read_u16(offset);
        self.next = (header >> 8) as u8 & 0xfc;
        Some((header as u8, offset))
    }
}

/// Probes the size of a BAR: writes all ones, reads the mask back, restores.
///
/// Decoding must be off while the BAR holds all ones, or the device would claim a
/// random window; the caller turns it off around the whole BAR walk.
fn probe_bar_mask(addr: PciAddress, offset: u8) -> u32 {
    let original = addr.read_u32(offset);
    addr.write_u32(offset, 0xffff_ffff);
    let mask = addr.read_u32(offset);
    addr.write_u32(offset, original);
    mask
}

/// Decodes the first `nr_bars` BARs, sizing each one with decoding turned off if
/// `is_decode_off_while_sizing`.
fn decode_bars(addr: PciAddress, nr_bars: u8, is_decode_off_while_sizing: bool) -> [Option<Bar>; 6] {
    let mut bars = [None; 6];
    if nr_bars == 0 {
        return bars;
    }
    let command = addr.read_u16(reg::COMMAND);
    if is_decode_off_while_sizing {
        addr.write_u16(reg::COMMAND, command & !(COMMAND_IO | COMMAND_MEMORY));
    }
    let mut i = 0;
    while i < nr_bars {
        let offset = reg::BAR0 + 4 * i;
        let low = addr.read_u32(offset);
        let mask = probe_bar_mask(addr, offset);
        let slot = i as usize;
        i += 1;
        if mask == 0 {
            continue; // unimplemented BAR
        }
        if low & 1 == 1 {
            let size = (!(mask & !0x3) as u16).wrapping_add(1) as u32;
            bars[slot] = Some(Bar::Io { port: low & !0x3, size });
            continue;
        }
        let is_prefetchable = low & 0x8 != 0;
        if (low >> 1) & 0x3 == 0x2 && i < nr_bars {
            let high_offset = reg::BAR0 + 4 * i;
            let high = addr.read_u32(high_offset);
            let high_mask = probe_bar_mask(addr, high_offset);
            i += 1;
            let full_mask = (high_mask as u64) << 32 | (mask & !0xf) as u64;
            let size = (!full_mask).wrapping_add(1);
            bars[slot] = Some(Bar::Mem64 { addr: (high as u64) << 32 | (low & !0xf) as u64, size, is_prefetchable });
        } else {
            let size = (!(mask & !0xf)).wrapping_add(1);
            bars[slot] = Some(Bar::Mem32 { addr: low & !0xf, size, is_prefetchable });
        }
    }
    if is_decode_off_while_sizing {
        addr.write_u16(reg::COMMAND, command);
    }
    bars
}

/// Returns the vendor ID at `addr`, 0xFFFF if nothing answers.
fn vendor_at(addr: PciAddress) -> u16 {
    addr.read_u16(reg::VENDOR_ID)
}

/// Scans one bus, appending its functions to `out` and recursing behind bridges.
///
/// `visited` guards against a misprogrammed bridge pointing back at a bus already
/// scanned (which would otherwise recurse forever).
fn scan_bus(bus: u8, out: &mut Vec<PciDevice>, visited: &mut [bool; 256]) {
    if core::mem::replace(&mut visited[bus as usize], true) {
        return;
    }
    for device in 0..32 {
        let first = PciAddress::new(bus, device, 0);
        if vendor_at(first) == 0xffff {
            continue; // empty slot: one config read
        }
        let nr_functions = if first.read_u8(reg::HEADER_TYPE) & 0x80 != 0 { 8 } else { 1 };
        for function in 0..nr_functions {
            let addr = PciAddress::new(bus, device, function);
            if vendor_at(addr) == 0xffff {
                continue;
            }
            let dev = PciDevice::read(addr);
            let secondary = dev.is_pci_bridge().then(|| addr.read_u8(reg::SECONDARY_BUS));
            out.push(dev);
            // A secondary bus of 0 means the firmware left the bridge unconfigured.
            if let Some(secondary @ 1..) = secondary {
                scan_bus(secondary, out, visited);
            }
        }
    }
}

/// Scans every bus reachable from the host bridge(s) and returns the functions found.
///
/// If 00:00.0 is multi-function, each of its functions is a separate host bridge
/// owning the bus of the same number (the PCI firmware convention); otherwise
/// everything hangs off bus 0.
pub fn scan() -> Vec<PciDevice> {
    let mut out = Vec::new();
    let mut visited = [false; 256];
    let host = PciAddress::new(0, 0, 0);
    if host.read_u8(reg::HEADER_TYPE) & 0x80 == 0 {
        scan_bus(0, &mut out, &mut visited);
    } else {
        for function in 0..8 {
            if vendor_at(PciAddress::new(0, 0, function)) != 0xffff {
                scan_bus(function, &mut out, &mut visited);
            }
        }
    }
    out.sort_by_key(|d| d.addr);
    out
}

/// Returns every PCI function, scanning the buses on first use.
pub fn devices() -> &'static [PciDevice] {
    DEVICES.call_once(scan)
}

/// Returns the devices with the given vendor and device ID.
pub fn find(vendor_id: u16, device_id: u16) -> impl Iterator<Item = &'static PciDevice> {
    devices().iter().filter(move |d| d.vendor_id == vendor_id && d.device_id == device_id)
}

/// Returns a short name for a class/subclass pair.
pub fn class_name(class: u8, subclass: u8) -> &'static str {
    match (class, subclass) {
        (0x01, 0x00) => "SCSI storage controller",
        (0x01, 0x01) => "IDE interface",
        (0x01, 0x06) => "SATA controller",
        (0x01, 0x08) => "NVMe controller",
        (0x01, _) => "mass storage controller",
        (0x02, 0x00) => "Ethernet controller",
        (0x02, _) => "network controller",
        (0x03, 0x00) => "VGA compatible controller",
        (0x03, _) => "display controller",
        (0x06, 0x00) => "host bridge",
        (0x06, 0x01) => "ISA bridge",
        (0x06, 0x04) => "PCI bridge",
        (0x06, 0x80) => "bridge",
        (0x06, _) => "bridge",
        (0x0c, 0x03) => "USB controller",
        (0x0c, 0x05) => "SMBus",
        (0x00, _) => "unclassified device",
        (0xff, _) => "unassigned class",
        _ => "device",
    }
}

/// Returns a short name for a capability ID.
pub fn capability_name(id: u8) -> &'static str {
    match id {
        0x01 => "power-management",
        0x05 => "msi",
        CAP_VENDOR => "vendor",
        0x0d => "bridge-subsystem-vendor",
        0x10 => "pci-express",
        CAP_MSIX => "msi-x",
        0x12 => "sata",
        0x13 => "advanced-features",
        _ => "unknown",
    }
}

/// Prints one line per function, then its BARs and capabilities, like `lspci -v`.
pub fn print_lspci() {
    for dev in devices() {
        println!(
            "{} [{:02x}{:02x}] {}: {:04x}:{:04x} (rev {:02x}) subsys {:04x}, irq {} pin {}",
            dev.addr,
            dev.class,
            dev.subclass,
            dev.class_name(),
            dev.vendor_id,
            dev.device_id,
            dev.revision,
            dev.subsystem_id,
            dev.interrupt_line,
            dev.interrupt_pin
        );
        for (i, bar) in dev.bars.iter().enumerate() {
            match bar {
                Some(Bar::Io { port, size }) => println!("    BAR{i}: I/O ports at {port:#x} [size {size}]"),
                Some(Bar::Mem32 { addr, size, is_prefetchable }) => println!(
                    "    BAR{i}: memory at {addr:#x} (32-bit{}) [size {}K]",
                    if *is_prefetchable { ", prefetchable" } else { "" },
                    size / 1024
                ),
                Some(Bar::Mem64 { addr, size, is_prefetchable }) => println!(
                    "    BAR{i}: memory at {addr:#x} (64-bit{}) [size {}K]",
                    if *is_prefetchable { ", prefetchable" } else { "" },
                    size / 1024
                ),
                None => {}
            }
        }
        for (id, offset) in dev.capabilities() {
            println!("    capability [{offset:#04x}] {:#04x} {}", id, capability_name(id));
        }
    }
}
