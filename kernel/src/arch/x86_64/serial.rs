//! The COM1 serial port (a 16550 UART at I/O port 0x3f8): the kernel's console.
//!
//! QEMU connects it to the runner's stdin and stdout (`-serial stdio`). Output polls
//! the "transmit holding register empty" bit. Input is interrupt-driven once
//! [`enable_receive_interrupt`] ran: the UART raises ISA line 4 when a byte arrives
//! ("received data available", IER bit 0; the PC wires the UART's interrupt to the
//! PIC through the OUT2 bit of the modem control register), and the handler the
//! console registered drains the receive FIFO with [`drain_received`]. One spinlock
//! guards the port; the logger takes it with interrupts off so an interrupt handler
//! that prints cannot deadlock against the code it interrupted.

use spin::Mutex;
use x86_64::instructions::port::Port;

/// Base I/O port of COM1.
const COM1: u16 = 0x3f8;

/// The ISA interrupt line of COM1.
pub const COM1_IRQ_LINE: u8 = 4;

/// Interrupt-enable register bit: "received data available".
const IER_RX_AVAILABLE: u8 = 1 << 0;
/// Modem-control register: DTR, RTS, and OUT2 (gates the UART's interrupt to the PIC).
const MCR_DTR_RTS_OUT2: u8 = 0x0b;

/// Line-status register bits.
const LSR_DATA_READY: u8 = 1 << 0;
const LSR_THR_EMPTY: u8 = 1 << 5;

/// A 16550 UART addressed through port I/O.
pub struct SerialPort {
    base: u16,
}

impl SerialPort {
    /// Creates the driver for the UART at `base`; call [`SerialPort::init`] before use.
    pub const fn new(base: u16) -> Self {
        Self { base }
    }

    fn outb(&self, offset: u16, value: u8) {
        // SAFETY: the UART's eight registers are at base..base+8; writing them has
        // no effect on memory.
        unsafe { Port::<u8>::new(self.base + offset).write(value) }
    }

    fn inb(&self, offset: u16) -> u8 {
        // SAFETY: as in `outb`: reading UART registers touches no memory.
        unsafe { Port::<u8>::new(self.base + offset).read() }
    }

    /// Programs 115200 baud, 8 data bits, no parity, 1 stop bit, FIFOs on, no IRQs.
    pub fn init(&mut self) {
        self.outb(1, 0x00); // interrupts off
        self.outb(3, 0x80); // DLAB on: next two registers are the divisor
        self.outb(0, 0x01); // divisor 1 = 115200 baud
        self.outb(1, 0x00);
        self.outb(3, 0x03); // DLAB off, 8N1
        self.outb(2, 0xc7); // FIFOs on, cleared, 14-byte threshold
        self.outb(4, 0x03); // DTR + RTS
    }

    /// Sends one byte, waiting for room in the transmitter.
    pub fn send(&mut self, byte: u8) {
        while self.inb(5) & LSR_THR_EMPTY == 0 {
            core::hint::spin_loop();
        }
        self.outb(0, byte);
    }

    /// Returns a received byte, if one is waiting.
    pub fn try_receive(&mut self) -> Option<u8> {
        if self.inb(5) & LSR_DATA_READY != 0 { Some(self.inb(0)) } else { None }
    }
}

impl core::fmt::Write for SerialPort {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for byte in s.bytes() {
            if byte == b'\n' {
                self.send(b'\r');
            }
            self.send(byte);
        }
        Ok(())
    }
}

/// The console port. Take it through [`with_console`].
static CONSOLE: Mutex<SerialPort> = Mutex::new(SerialPort::new(COM1));

/// Initialises COM1.
pub fn init() {
    CONSOLE.lock().init();
}

/// Runs `f` with the console locked and interrupts disabled.
pub fn with_console<R>(f: impl FnOnce(&mut SerialPort) -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(|| f(&mut CONSOLE.lock()))
}

/// Makes COM1 interrupt on every received byte (or FIFO trigger level).
pub fn enable_receive_interrupt() {
    with_console(|port| {
        port.outb(4, MCR_DTR_RTS_OUT2);
        port.outb(1, IER_RX_AVAILABLE);
    });
}

/// Passes every byte waiting in COM1's receive FIFO to `sink`, and returns how many
/// there were. Reading the data register lowers the interrupt once the FIFO is empty.
pub fn drain_received(mut sink: impl FnMut(u8)) -> usize {
    with_console(|port| {
        let mut n = 0;
        while let Some(byte) = port.try_receive() {
            sink(byte);
            n += 1;
        }
        n
    })
}

/// Writes raw bytes to the console (no `\n` to `\r\n` translation): the echo of typed keys.
pub fn write_raw(bytes: &[u8]) {
    with_console(|port| {
        for &byte in bytes {
            if byte == b'\n' {
                port.send(b'\r');
            }
            port.send(byte);
        }
    });
}

/// Writes to the console even if its lock is held (for panics and fatal traps only).
pub fn emergency_write(args: core::fmt::Arguments) {
    use core::fmt::Write;
    // A panic may happen while the console lock is held: forcing it open is
    // acceptable because we are about to stop the machine.
    if CONSOLE.is_locked() {
        // SAFETY: only called on the way down; interleaved output is the worst case.
        unsafe { CONSOLE.force_unlock() };
    }
    let _ = CONSOLE.lock().write_fmt(args);
}
