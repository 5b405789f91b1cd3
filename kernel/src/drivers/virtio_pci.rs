//! The virtio PCI transport: the *legacy* I/O-port interface, which this kernel
//! drives, and the *modern* capability interface, which it recognises and refuses.
//!
//! # Why legacy
//! QEMU's `virtio-blk-pci` is a *transitional* device by default (ID 1af4:1001): it
//! offers both interfaces. The legacy one (virtio 0.9.5; "Legacy Interface" in
//! virtio 1.x §4.1.4.8) is a block of I/O ports behind BAR0:
//! ```text
//!   +0x00 device features (u32, RO)    +0x0c queue size    (u16, RO)
//!   +0x04 driver features (u32, RW)    +0x0e queue select  (u16, RW)
//!   +0x08 queue PFN       (u32, RW)    +0x10 queue notify  (u16, RW)
//!   +0x12 device status   (u8,  RW)    +0x13 ISR status    (u8,  RO, read clears)
//!   +0x14 device-specific config (no MSI-X enabled; +0x18 when it is)
//! ```
//! Port I/O needs no page-table entries. The modern interface lives in memory BARs
//! (on `pc`, a 64-bit prefetchable BAR above the RAM the bootloader maps), so using
//! it would mean mapping MMIO uncached in the kernel page tables first; the legacy
//! interface keeps this driver independent of the paging code. What legacy costs:
//! only 32 feature bits (no `VIRTIO_F_VERSION_1`, so no packed rings or
//! `ACCESS_PLATFORM`), a queue size fixed by the device, and a queue that must sit
//! in one physically contiguous block below 2^44 (the PFN register is 32 bits), all
//! of which a block device for swap can live with.
//!
//! A modern-only device (1af4:1042, or `disable-legacy=on`) has no I/O BAR; probing
//! it fails with [`ProbeError::ModernOnly`], which names the capabilities it does
//! have (found by walking its PCI capability list, see [`virtio_capabilities`]).
//!
//! Neighbours: `pci` supplies the device; `virtio_queue` the ring memory whose
//! frame number goes in the queue PFN register; `virtio_blk` drives the sequence.

use alloc::vec::Vec;

use x86_64::instructions::port::Port;

use super::pci::{self, Bar, PciDevice};

/// PCI vendor ID of every virtio device (Red Hat, Inc.).
pub const VIRTIO_VENDOR_ID: u16 = 0x1af4;
/// First transitional device ID; the virtio device type is in the subsystem ID.
pub const TRANSITIONAL_ID_FIRST: u16 = 0x1000;
/// Last transitional device ID.
pub const TRANSITIONAL_ID_LAST: u16 = 0x103f;
/// Modern device IDs are this plus the virtio device type.
pub const MODERN_ID_BASE: u16 = 0x1040;
/// Last modern device ID.
pub const MODERN_ID_LAST: u16 = 0x107f;
/// Virtio device type of a block device.
pub const DEVICE_TYPE_BLOCK: u16 = 2;
/// Legacy page size: the queue PFN register counts 4 KiB frames.
pub const LEGACY_PAGE_SHIFT: u32 = 12;

/// Device status bits (virtio 1.x §2.1), written in this order during setup.
pub mod status {
    /// The guest noticed the device.
    pub const ACKNOWLEDGE: u8 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u8 = 2;
    /// The driver is set up and ready to drive the device.
    pub const DRIVER_OK: u8 = 4;
    /// Feature negotiation is complete (modern only; legacy has no such step).
    pub const FEATURES_OK: u8 = 8;
    /// Something went wrong in the guest; the driver gave up on the device.
    pub const FAILED: u8 = 0x80;
}

/// Register offsets in the legacy I/O window.
mod regs {
    pub const DEVICE_FEATURES: u16 = 0x00;
    pub const DRIVER_FEATURES: u16 = 0x04;
    pub const QUEUE_PFN: u16 = 0x08;
    pub const QUEUE_SIZE: u16 = 0x0c;
    pub const QUEUE_SELECT: u16 = 0x0e;
    pub const QUEUE_NOTIFY: u16 = 0x10;
    pub const DEVICE_STATUS: u16 = 0x12;
    pub const ISR_STATUS: u16 = 0x13;
    /// Device-specific configuration, while MSI-X is disabled (we never enable it).
    pub const DEVICE_CONFIG: u16 = 0x14;
}

/// Why a device could not be driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// Not a virtio device of the expected type.
    WrongDevice {
        /// PCI device ID.
        device_id: u16,
        /// Virtio device type (subsystem ID for transitional devices).
        device_type: u16,
    },
    /// A modern-only device: it has no legacy I/O BAR. Attach it with
    /// `disable-legacy=off` (QEMU's default) to use this driver.
    ModernOnly {
        /// How many virtio vendor capabilities it offers (common, notify, ISR, device...).
        nr_virtio_caps: usize,
    },
    /// BAR0 is not an I/O window, or too small for the registers.
    NoLegacyIoBar,
    /// The device offers no queue 0 (queue size 0), or a size that is not a power of two.
    BadQueueSize(u16),
    /// The queue memory or a buffer could not be allocated.
    OutOfMemory,
    /// The queue memory is above what the 32-bit PFN register can express.
    QueueTooHigh,
}

impl core::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            ProbeError::WrongDevice { device_id, device_type } => {
                write!(f, "device {device_id:#06x} is virtio type {device_type}, not the expected one")
            }
            ProbeError::ModernOnly { nr_virtio_caps } => write!(
                f,
                "modern-only virtio device ({nr_virtio_caps} virtio capabilities, no legacy I/O BAR): \
                 this driver speaks the legacy interface; attach it with disable-legacy=off"
            ),
            ProbeError::NoLegacyIoBar => write!(f, "BAR0 is not a legacy virtio I/O window"),
            ProbeError::BadQueueSize(size) => write!(f, "queue 0 has size {size} (absent or not a power of two)"),
            ProbeError::OutOfMemory => write!(f, "no memory for the queue or buffers"),
            ProbeError::QueueTooHigh => write!(f, "queue memory above what the 32-bit PFN register reaches"),
        }
    }
}

/// A virtio vendor-specific capability (virtio 1.x §4.1.4): where a modern
/// configuration structure lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtioCap {
    /// Offset of the capability in configuration space.
    pub cap_offset: u8,
    /// 1 common, 2 notify, 3 ISR, 4 device-specific, 5 PCI config access, 8 shared memory.
    pub cfg_type: u8,
    /// The BAR holding the structure.
    pub bar: u8,
    /// Offset of the structure inside the BAR.
    pub offset: u32,
    /// Length of the structure.
    pub length: u32,
}

impl VirtioCap {
    /// Returns the name of the configuration structure type.
    pub fn type_name(&self) -> &'static str {
        match self.cfg_type {
            1 => "common",
            2 => "notify",
            3 => "isr",
            4 => "device",
            5 => "pci-cfg",
            8 => "shared-memory",
            _ => "unknown",
        }
    }
}

/// Returns the virtio vendor capabilities of `dev` (empty for a legacy-only device).
pub fn virtio_capabilities(dev: &PciDevice) -> Vec<VirtioCap> {
    dev.capabilities()
        .filter(|&(id, _)| id == pci::CAP_VENDOR)
        .map(|(_, off)| VirtioCap {
            cap_offset: off,
            cfg_type: dev.addr.read_u8(off + 3),
            bar: dev.addr.read_u8(off + 4),
            offset: dev.addr.read_u32(off + 8),
            length: dev.addr.read_u32(off + 12),
        })
        .collect()
}

/// Returns the virtio device type of a virtio PCI function, or `None` if it is not one.
pub fn device_type(dev: &PciDevice) -> Option<u16> {
    match dev.device_id {
        _ if dev.vendor_id != VIRTIO_VENDOR_ID => None,
        TRANSITIONAL_ID_FIRST..=TRANSITIONAL_ID_LAST => Some(dev.subsystem_id),
        id @ MODERN_ID_BASE..=MODERN_ID_LAST => Some(id - MODERN_ID_BASE),
        _ => None,
    }
}

/// The legacy register window of one device (a copy is the same window: the
/// interrupt handler keeps one to read the ISR status).
#[derive(Clone, Copy, Debug)]
pub struct LegacyTransport {
    base: u16,
}

impl LegacyTransport {
    /// Checks that `dev` is a transitional virtio device of `expected_type`, enables
    /// its I/O decoding and bus mastering, and returns its register window.
    pub fn new(dev: &PciDevice, expected_type: u16) -> Result<Self, ProbeError> {
        let device_type = device_type(dev).unwrap_or(0);
        if device_type != expected_type {
            return Err(ProbeError::WrongDevice { device_id: dev.device_id, device_type });
        }
        // The registers above plus a block device's config reach past 0x20.
        let io_base = match dev.bars[0] {
            Some(bar @ Bar::Io { size, .. }) if size >= 0x20 => bar.io_port(),
            _ => None,
        };
        let Some(base) = io_base else {
            return Err(match dev.device_id >= MODERN_ID_BASE {
                true => ProbeError::ModernOnly { nr_virtio_caps: virtio_capabilities(dev).len() },
                false => ProbeError::NoLegacyIoBar,
            });
        };
        // INTx stays off until a driver registers a handler for the line (see
        // `virtio_blk::interrupt`): a level-triggered line nobody acknowledges would
        // only trouble whoever unmasks that IRQ later.
        dev.enable(pci::COMMAND_IO | pci::COMMAND_BUS_MASTER | pci::COMMAND_INTX_DISABLE);
        Ok(Self { base })
    }

    /// Returns the first I/O port of the register window.
    pub fn io_base(&self) -> u16 {
        self.base
    }

    fn read_u8(&self, reg: u16) -> u8 {
        // SAFETY: `base..base + size` is this device's I/O BAR (checked in `new`);
        // reading a virtio register has no effect on memory (reading ISR clears it).
        unsafe { Port::<u8>::new(self.base + reg).read() }
    }

    fn read_u16(&self, reg: u16) -> u16 {
        // SAFETY: as in `read_u8`.
        unsafe { Port::<u16>::new(self.base + reg).read() }
    }

    fn read_u32(&self, reg: u16) -> u32 {
        // SAFETY: as in `read_u8`.
        unsafe { Port::<u32>::new(self.base + reg).read() }
    }

    fn write_u8(&self, reg: u16, value: u8) {
        // SAFETY: a register of this device's I/O BAR. The status register can only
        // reset the device or move it through setup; DMA happens only to memory the
        // driver put in a queue (see `set_queue_pfn`, `SplitQueue::add`).
        unsafe { Port::<u8>::new(self.base + reg).write(value) }
    }

    fn write_u16(&self, reg: u16, value: u16) {
        // SAFETY: as in `write_u8`; queue select and notify only pick and kick a queue.
        unsafe { Port::<u16>::new(self.base + reg).write(value) }
    }

    /// Resets the device: it forgets features and queues and stops all DMA.
    ///
    /// Legacy devices reset synchronously on the status write; we also read the
    /// status back until it is 0, as virtio 1.x asks, bounded so it cannot hang.
    pub fn reset(&self) {
        self.write_u8(regs::DEVICE_STATUS, 0);
        for _ in 0..1000 {
            if self.status() == 0 {
                return;
            }
            core::hint::spin_loop();
        }
    }

    /// Returns the device status byte.
    pub fn status(&self) -> u8 {
        self.read_u8(regs::DEVICE_STATUS)
    }

    /// Sets `bits` in the device status, keeping those already set.
    pub fn add_status(&self, bits: u8) {
        self.write_u8(regs::DEVICE_STATUS, self.status() | bits);
    }

    /// Returns the 32 feature bits the device offers.
    pub fn device_features(&self) -> u32 {
        self.read_u32(regs::DEVICE_FEATURES)
    }

    /// Tells the device which of its features the driver uses.
    pub fn set_driver_features(&self, features: u32) {
        // SAFETY: the driver-features register only records the negotiated set.
        unsafe { Port::<u32>::new(self.base + regs::DRIVER_FEATURES).write(features) }
    }

    /// Selects queue `index` and returns its size (0: the queue does not exist).
    pub fn select_queue(&self, index: u16) -> u16 {
        self.write_u16(regs::QUEUE_SELECT, index);
        self.read_u16(regs::QUEUE_SIZE)
    }

    /// Returns the PFN of the selected queue (0: not set up).
    pub fn queue_pfn(&self) -> u32 {
        self.read_u32(regs::QUEUE_PFN)
    }

    /// Gives the selected queue its memory: the ring at physical frame `pfn`.
    /// Writing 0 takes the queue away.
    ///
    /// # Safety
    /// Unless `pfn` is 0, it must start a physically contiguous block laid out as a
    /// legacy split queue of the selected size (`virtio_queue::legacy_layout`), and
    /// that block must stay allocated to the driver until the device is reset or the
    /// queue PFN is set to 0: the device reads and writes it by DMA from now on.
    pub unsafe fn set_queue_pfn(&self, pfn: u32) {
        // SAFETY: the caller guarantees the memory at `pfn` is a queue we own.
        unsafe { Port::<u32>::new(self.base + regs::QUEUE_PFN).write(pfn) }
    }

    /// Tells the device that queue `index` has new available buffers.
    pub fn notify(&self, index: u16) {
        self.write_u16(regs::QUEUE_NOTIFY, index);
    }

    /// Reads and clears the ISR status (bit 0: a queue was used; bit 1: config changed).
    pub fn read_isr(&self) -> u8 {
        self.read_u8(regs::ISR_STATUS)
    }

    /// Reads the device-specific configuration byte at `offset`.
    pub fn config_u8(&self, offset: u16) -> u8 {
        self.read_u8(regs::DEVICE_CONFIG + offset)
    }

    /// Reads the device-specific configuration dword at `offset`.
    pub fn config_u32(&self, offset: u16) -> u32 {
        self.read_u32(regs::DEVICE_CONFIG + offset)
    }

    /// Reads a 64-bit configuration field as two dwords, retrying until two reads
    /// agree (legacy config has no generation counter to detect a torn read).
    pub fn config_u64(&self, offset: u16) -> u64 {
        let read = || (self.config_u32(offset + 4) as u64) << 32 | self.config_u32(offset) as u64;
        let mut value = read();
        for _ in 0..4 {
            let again = read();
            if again == value {
                break;
            }
            value = again;
        }
        value
    }
}
