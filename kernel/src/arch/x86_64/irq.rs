//! Device interrupts: the 16 lines of the 8259 PIC pair, a handler table that
//! drivers register with, and the end-of-interrupt.
//!
//! ```text
//!   device raises its line (PCI INTx: level-triggered, shared)
//!     -> PIC (master lines 0-7, slave 8-15 cascaded on master line 2)
//!     -> vector IRQ_BASE + line -> trap_dispatch -> irq::dispatch(line)
//!          every handler registered on the line runs (each asks its own device
//!          whether it interrupted, and quiets it), then EOI to the PIC(s)
//! ```
//! `arch` does not know the drivers: a driver calls [`register`] with a plain
//! function and a word of context (typically the address of a `'static` state
//! block), and [`dispatch`] calls whatever is registered. A line stays masked
//! until something registers on it.
//!
//! PCI interrupt lines are level-triggered and may be shared, so a line is switched
//! to level mode in the ELCR (the edge/level control registers of the PIIX, ports
//! 0x4d0/0x4d1) when a handler registers, as firmware does for the lines it routes
//! PCI interrupts to. The timer (line 0) stays edge-triggered, see `timer`.
//!
//! Handlers run with interrupts off, on whatever kernel stack was interrupted: they
//! must be short, take only locks that are always taken with interrupts off
//! (`sync::IrqMutex`), and never sleep.
//!
//! Once the kernel has read the MADT, the lines go through the I/O APIC instead
//! (`ioapic`; the 8259 is then masked): [`register`] routes the line there, with
//! the polarity and trigger the MADT gives it and the same vector, and the EOI goes
//! to the local APIC. There are no spurious PIC lines then.
//!
//! Neighbours: `timer` sets the PICs up and owns line 0; `trap` calls [`dispatch`];
//! `drivers::virtio_blk` registers the disk's line.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::port::Port;

use spin::Mutex;
use x86_64::instructions::interrupts;

/// Lines of the PIC pair.
pub const NR_LINES: u8 = 16;
/// Line of the slave PIC's cascade on the master.
const CASCADE_LINE: u8 = 2;
/// Handlers one line can carry (a shared PCI line).
const MAX_HANDLERS_PER_LINE: usize = 4;
/// OCW2 "non-specific end of interrupt".
const EOI: u8 = 0x20;
/// OCW3 "read the in-service register on the next read of the command port".
const READ_ISR: u8 = 0x0b;

/// A device interrupt handler: a function and the context word it is called with.
#[derive(Clone, Copy)]
pub struct IrqHandler {
    /// Called with `context` on every interrupt of the line, with interrupts off.
    pub handler_fn: fn(context: usize),
    /// Passed to `handler_fn` (a driver's per-device state, say).
    pub context: usize,
}

/// Why a handler could not be registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqError {
    /// Not a PIC line, or a line the kernel keeps for itself (timer, cascade).
    BadLine(u8),
    /// The line already carries [`MAX_HANDLERS_PER_LINE`] handlers.
    LineFull(u8),
}

/// The registered handlers, by line; taken with interrupts off only (`dispatch`
/// runs with them off, `register` turns them off), so an interrupt never finds it held.
static HANDLERS: Mutex<[[Option<IrqHandler>; MAX_HANDLERS_PER_LINE]; NR_LINES as usize]> =
    Mutex::new([[None; MAX_HANDLERS_PER_LINE]; NR_LINES as usize]);
/// Device interrupts taken, by line (spurious ones included).
static NR_INTERRUPTS: [AtomicU64; NR_LINES as usize] = [const { AtomicU64::new(0) }; NR_LINES as usize];
/// Spurious interrupts (line 7 or 15 with nothing in service).
static NR_SPURIOUS: AtomicU64 = AtomicU64::new(0);

fn outb(port: u16, value: u8) {
    // SAFETY: the PIC command/data ports (0x20/0x21, 0xa0/0xa1) and the ELCR
    // (0x4d0/0x4d1) only program the interrupt controller; they touch no memory.
    unsafe { Port::<u8>::new(port).write(value) }
}

fn inb(port: u16) -> u8 {
    // SAFETY: as in `outb`; reading these ports has no side effect beyond the PIC.
    unsafe { Port::<u8>::new(port).read() }
}

/// Returns the data (mask) port of the PIC that owns `line`, and the line's bit there.
fn mask_port_and_bit(line: u8) -> (u16, u8) {
    if line < 8 { (0x21, 1 << line) } else { (0xa1, 1 << (line - 8)) }
}

/// Unmasks `line` (and the cascade, for a slave line).
fn unmask(line: u8) {
    let (port, bit) = mask_port_and_bit(line);
    outb(port, inb(port) & !bit);
    if line >= 8 {
        unmask(CASCADE_LINE);
    }
}

/// Switches `line` to level-triggered in the ELCR (PCI INTx is level, active low).
fn set_level_triggered(line: u8) {
    let (port, bit) = if line < 8 { (0x4d0, 1 << line) } else { (0x4d1, 1 << (line - 8)) };
    outb(port, inb(port) | bit);
}

/// How a line signals: PCI INTx lines are level-triggered, ISA lines (the UART) edge-triggered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Level-triggered, shareable (PCI).
    Level,
    /// Edge-triggered (ISA devices: the serial port).
    Edge,
}

/// Registers `handler` on PIC `line` (a PCI line: level-triggered) and unmasks the
/// line. Registering the same handler twice on a line is a no-op (a driver
/// re-probing a device).
pub fn register(line: u8, handler: IrqHandler) -> Result<(), IrqError> {
    register_with_trigger(line, handler, Trigger::Level)
}

/// Registers `handler` on PIC `line` as [`register`] does, with the line's trigger mode.
pub fn register_with_trigger(line: u8, handler: IrqHandler, trigger: Trigger) -> Result<(), IrqError> {
    if line >= NR_LINES || line == 0 || line == CASCADE_LINE {
        return Err(IrqError::BadLine(line));
    }
    interrupts::without_interrupts(|| {
        let mut handlers = HANDLERS.lock();
        let slots = &mut handlers[line as usize];
        let is_same = |h: &IrqHandler| h.context == handler.context && core::ptr::fn_addr_eq(h.handler_fn, handler.handler_fn);
        if slots.iter().flatten().any(is_same) {
            return Ok(());
        }
        let free = slots.iter_mut().find(|s| s.is_none()).ok_or(IrqError::LineFull(line))?;
        *free = Some(handler);
        if super::ioapic::is_active() {
            // The I/O APIC takes each line's trigger and polarity from the MADT.
            let bsp = super::smp::per_cpu(0).apic_id.load(Ordering::Relaxed);
            super::ioapic::route(line, super::trap::IRQ_BASE + line, bsp).map_err(|_| IrqError::BadLine(line))?;
        } else {
            if trigger == Trigger::Level {
                set_level_triggered(line);
            }
            unmask(line);
        }
        Ok(())
    })
}

/// Returns true if `line` is in service at its PIC: false means the interrupt on
/// line 7 or 15 was spurious (the request went away before the CPU acknowledged it).
fn is_in_service(line: u8) -> bool {
    let (command, bit) = if line < 8 { (0x20, 1 << line) } else { (0xa0, 1 << (line - 8)) };
    outb(command, READ_ISR);
    inb(command) & bit != 0
}

/// Runs every handler of `line`, then acknowledges the interrupt. Called by the
/// trap dispatcher for vectors `IRQ_BASE + 1 ..= IRQ_BASE + 15`, interrupts off.
pub fn dispatch(line: u8) {
    let is_apic = super::ioapic::is_active();
    if !is_apic && (line == 7 || line == 15) && !is_in_service(line) {
        NR_SPURIOUS.fetch_add(1, Ordering::Relaxed);
        if line == 15 {
            outb(0x20, EOI); // the master did see its cascade line
        }
        return;
    }
    NR_INTERRUPTS[line as usize].fetch_add(1, Ordering::Relaxed);
    // Copy the handlers out, so none runs under the table's lock.
    let handlers = HANDLERS.lock()[line as usize];
    for handler in handlers.iter().flatten() {
        (handler.handler_fn)(handler.context);
    }
    // The handlers quieted their devices first, so a level line is low again by now
    // unless a device interrupted anew (then it is delivered again after the EOI).
    if is_apic {
        super::lapic::eoi();
        return;
    }
    if line >= 8 {
        outb(0xa0, EOI);
    }
    outb(0x20, EOI);
}

/// Returns the 8259 pair's interrupt masks (master, slave): 0xff each once the
/// I/O APIC delivers the interrupts.
pub fn pic_masks() -> (u8, u8) {
    (inb(0x21), inb(0xa1))
}

/// Returns the number of interrupts taken on `line` since boot.
pub fn nr_interrupts(line: u8) -> u64 {
    NR_INTERRUPTS.get(line as usize).map_or(0, |n| n.load(Ordering::Relaxed))
}

/// Returns the number of spurious interrupts (lines 7 and 15) since boot.
pub fn nr_spurious() -> u64 {
    NR_SPURIOUS.load(Ordering::Relaxed)
}
