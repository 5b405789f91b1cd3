//! The block layer's registry: every disk the kernel can use, by name, as a
//! `&'static dyn BlockDevice` (the trait is `blockdev::BlockDevice`).
//!
//! Drivers register what they find (`drivers::virtio_blk` registers the disk whose
//! serial is "swap" as "swap", other virtio disks under their serials); users look
//! a disk up by name (swap at `swapon`, with the name `swapdev=` gives, "swap" by
//! default; later the file system, "root"). Nobody above this module knows which
//! driver is behind a name: a RAM disk ([`add_ram_disk`]) serves as well.
//!
//! Devices live for the rest of the boot (they are leaked on registration: a disk
//! is never unplugged). Lock state: the registry's spinlock is held only to search
//! or extend the list, never across I/O.

use alloc::vec::Vec;

use blockdev::{BlockDevice, RamDisk, SECTOR_SIZE};

use crate::sync::IrqMutex;

/// The registered devices, in registration order.
static DEVICES: IrqMutex<Vec<&'static dyn BlockDevice>> =
    IrqMutex::new_ranked(crate::sync::LockRank::BlockDevices, Vec::new());

/// Why a device could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// A device with this name is registered already.
    NameTaken,
    /// The heap could not hold the device or the registry entry.
    NoMemory,
}

/// Registers `dev` under its [`name`](BlockDevice::name), which must be new.
pub fn register(dev: &'static dyn BlockDevice) -> Result<(), RegisterError> {
    let mut devices = DEVICES.lock();
    if devices.iter().any(|d| d.name() == dev.name()) {
        return Err(RegisterError::NameTaken);
    }
    devices.try_reserve(1).map_err(|_| RegisterError::NoMemory)?;
    devices.push(dev);
    drop(devices); // a device may sleep to answer (no spinlock held for that)
    log::info!("block: {} registered ({} MiB)", dev.name(), dev.capacity_bytes() >> 20);
    Ok(())
}

/// Returns the device registered as `name`.
pub fn find(name: &str) -> Option<&'static dyn BlockDevice> {
    DEVICES.lock().iter().copied().find(|d| d.name() == name)
}

/// Returns every registered device, in registration order.
pub fn devices() -> Vec<&'static dyn BlockDevice> {
    DEVICES.lock().clone()
}

/// Creates a zeroed RAM disk of `bytes` (rounded down to whole sectors) on the
/// kernel heap and registers it as `name`.
pub fn add_ram_disk(name: &'static str, bytes: u64) -> Result<&'static RamDisk, RegisterError> {
    if find(name).is_some() {
        return Err(RegisterError::NameTaken);
    }
    let disk = RamDisk::try_new(name, bytes / SECTOR_SIZE as u64).ok_or(RegisterError::NoMemory)?;
    let disk: &'static RamDisk = alloc::boxed::Box::leak(alloc::boxed::Box::new(disk));
    register(disk)?;
    Ok(disk)
}
