//! Device drivers: the PCI bus and the virtio block device that holds swap.
//!
//! | module | what it does |
//! |---|---|
//! | [`pci`] | configuration space (ports 0xCF8/0xCFC), bus scan, BARs, capabilities, `lspci` |
//! | [`virtio_pci`] | the virtio legacy I/O-port transport; recognises (and refuses) modern-only devices |
//! | [`virtio_queue`] | the split virtqueue in DMA memory from the frame allocator |
//! | [`virtio_blk`] | the block driver: read/write/flush sectors and pages, wipes, completion by interrupt; registers each disk with `crate::block` |
//!
//! [`init`] runs once after `mm::init` (the drivers need the heap and frames) with
//! interrupts enabled (the request timeout uses the TSC clock, calibrated on ticks).

pub mod pci;
pub mod virtio_blk;
pub mod virtio_pci;
pub mod virtio_queue;

static INIT: spin::Once<()> = spin::Once::new();

/// Scans the PCI bus and brings up the swap disk. Idempotent: later calls do nothing.
pub fn init() {
    INIT.call_once(|| {
        // Calibrate now, while interrupts are on: a driver spinning under its
        // IrqMutex would wait forever for the ticks the calibration counts.
        crate::arch::timer::tsc_per_ms();
        log::info!("pci: {} functions", pci::devices().len());
        virtio_blk::init();
    });
}
