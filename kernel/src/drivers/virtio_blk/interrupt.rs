//! Interrupt-driven completion: the device's INTx line, the handler that notices a
//! finished request, and the wait queue the requester sleeps on meanwhile.
//!
//! ```text
//!   requester (holds the disk's Mutex)      device (QEMU)              handler (interrupts off)
//!   submit: chain in avail ring, notify --> does the I/O, writes the
//!                                           used ring, raises INTx --> reads ISR (acknowledges,
//!   sleeps on the queue until the used                                  lowers the line), counts,
//!   ring moved (or the deadline) <----------------------------------- wakes the queue
//!   poll_used: its head -> status byte
//! ```
//! The handler cannot reach the [`VirtioBlk`](super::VirtioBlk): its requester holds
//! it under the disk's sleeping mutex for the whole request. So what the handler
//! needs lives in a static [`DeviceIrq`] per device: the transport (to read and
//! clear the ISR status), an interrupt counter, and the [`WaitQueue`]. The condition
//! the requester sleeps on is the used ring itself (`SplitQueue::has_used`), so a
//! wake-up is never lost: an interrupt that arrives before the requester sleeps
//! leaves the ring moved, and the condition is checked after the task is marked
//! waiting (see `sync::wait_queue`).
//!
//! The line is PCI INTx (legacy virtio has only that or MSI-X), routed through the
//! PIC by the firmware, which wrote its number into config space; `arch::irq` does
//! the rest. A device with no routed line is driven by polling, as before boot has
//! a scheduler or when a request is made with interrupts off (see
//! [`can_sleep`]).

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::arch::irq::{self, IrqHandler};
use crate::arch::timer;
use crate::drivers::pci::{self, PciDevice};
use crate::drivers::virtio_pci::LegacyTransport;
use crate::sync::WaitQueue;

/// Virtio devices whose interrupts can be told apart (slots of [`DEVICE_IRQS`]).
const MAX_DEVICES: usize = 8;
/// ISR status bit 0: the device used a buffer in one of its queues.
const ISR_QUEUE: u8 = 1;

/// What the interrupt handler of one device needs, reachable without the disk's lock.
pub struct DeviceIrq {
    /// The device's registers; set once, when a driver first attaches to it.
    transport: spin::Once<LegacyTransport>,
    /// The PIC line it interrupts on.
    line: AtomicU8,
    /// Interrupts this device raised (ISR said a queue was used).
    nr_interrupts: AtomicU64,
    /// Requesters sleeping until the used ring moves.
    used: WaitQueue,
}

impl core::fmt::Debug for DeviceIrq {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "DeviceIrq {{ line: {}, nr_interrupts: {} }}", self.line(), self.nr_interrupts())
    }
}

impl Default for DeviceIrq {
    fn default() -> Self {
        Self::new()
    }
}

impl DeviceIrq {
    /// Returns a slot with no device attached yet (tests use one for its wait queue).
    pub const fn new() -> Self {
        Self {
            transport: spin::Once::new(),
            line: AtomicU8::new(0),
            nr_interrupts: AtomicU64::new(0),
            used: WaitQueue::new(),
        }
    }

    /// Returns the interrupts this device raised since boot.
    pub fn nr_interrupts(&self) -> u64 {
        self.nr_interrupts.load(Ordering::Relaxed)
    }

    /// Returns the PIC line the device interrupts on.
    pub fn line(&self) -> u8 {
        self.line.load(Ordering::Relaxed)
    }

    /// Sleeps until `has_used()` (the device returned a chain) or the TSC passes
    /// `deadline_tsc`; returns true in the first case.
    ///
    /// The sleep ends within a timer tick after the deadline, even if the interrupt
    /// never comes; call it only when [`can_sleep`] says so. The ticks are 10 ms
    /// apart and when the last one came is not known, so each sleep is to the tick
    /// that comes at most one tick after the deadline. That tick may come before it
    /// (the deadline lay early in its tick): then it sleeps again, to the next.
    /// (Sleeping one tick longer to be safe made a 5 ms deadline end at 10-20 ms,
    /// in a race with a 20 ms request; see `tests/interrupts.rs`.)
    pub fn sleep_until_used(&self, mut has_used: impl FnMut() -> bool, deadline_tsc: u64) -> bool {
        loop {
            let remaining_ms = deadline_tsc.saturating_sub(timer::rdtsc()) / timer::tsc_per_ms();
            let deadline_tick = timer::ticks() + remaining_ms * timer::TICK_HZ / 1000 + 1;
            if self.used.wait_until_deadline(|| has_used() || timer::rdtsc() >= deadline_tsc, deadline_tick) {
                return has_used();
            }
        }
    }
}

/// One slot per device, claimed by its I/O port base.
static DEVICE_IRQS: [DeviceIrq; MAX_DEVICES] = [const { DeviceIrq::new() }; MAX_DEVICES];

/// The interrupt handler of the device in slot `index`: reads (and so clears) its
/// ISR status, which lowers the INTx line, and wakes the requesters if a queue was used.
fn on_interrupt(index: usize) {
    let slot = &DEVICE_IRQS[index];
    let Some(transport) = slot.transport.get() else { return };
    if transport.read_isr() & ISR_QUEUE != 0 {
        slot.nr_interrupts.fetch_add(1, Ordering::Relaxed);
        slot.used.wake_all();
    }
}

/// Registers the interrupt handler of `dev` (whose registers are `transport`) on
/// its PCI interrupt line and lets the device raise it; returns its interrupt state,
/// or `None` (the driver polls) if the firmware routed it no line.
///
/// Attaching a device again (a second driver instance) returns the same state.
pub fn attach(dev: &PciDevice, transport: &LegacyTransport) -> Option<&'static DeviceIrq> {
    let line = dev.interrupt_line;
    if dev.interrupt_pin == 0 || line == 0 || line >= irq::NR_LINES {
        log::info!("virtio-blk {}: no interrupt line routed (pin {}, line {}): polling", dev.addr, dev.interrupt_pin, line);
        return None;
    }
    let io_base = transport.io_base();
    let index = DEVICE_IRQS
        .iter()
        .position(|s| s.transport.get().is_some_and(|t| t.io_base() == io_base))
        .or_else(|| DEVICE_IRQS.iter().position(|s| !s.transport.is_completed()))?;
    let slot = &DEVICE_IRQS[index];
    slot.transport.call_once(|| *transport);
    slot.line.store(line, Ordering::Relaxed);
    if let Err(e) = irq::register(line, IrqHandler { handler_fn: on_interrupt, context: index }) {
        log::warn!("virtio-blk {}: line {line} refused ({e:?}): polling", dev.addr);
        return None;
    }
    dev.disable(pci::COMMAND_INTX_DISABLE);
    Some(slot)
}

/// Returns true if the running code may sleep until an interrupt: the scheduler is
/// up and interrupts are on (so the interrupt, or the tick that ends the wait, can
/// come). Otherwise a request is polled.
pub fn can_sleep() -> bool {
    crate::sync::hooks::get().is_some() && x86_64::instructions::interrupts::are_enabled()
}
