//! The tick: the 8259 PIC pair remapped to vectors 32..48 and the PIT at 100 Hz,
//! plus a TSC clock calibrated against it for nanosecond benchmarks.
//!
//! Only IRQ 0 (the PIT) is unmasked here; `irq` unmasks a device's line when its
//! driver registers a handler (and handles the spurious IRQ 7). The interrupt
//! handler counts ticks and sends the end-of-interrupt; the trap dispatcher hooks
//! preemption and the end of timed sleeps onto it.
//!
//! Once the MADT is read, [`switch_to_ioapic`] routes the PIT through the I/O APIC
//! (same vector) and masks both 8259s; the end-of-interrupt then goes to the local
//! APIC. The PIT stays the boot CPU's tick (the other CPUs tick on their local APIC
//! timers, calibrated against it).

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::port::Port;

/// Interrupt vector of IRQ 0 after remapping.
pub const TIMER_VECTOR: u8 = super::trap::IRQ_BASE;
/// Timer frequency.
pub const TICK_HZ: u64 = 100;
/// PIT input clock in Hz.
const PIT_HZ: u64 = 1_193_182;

static TICKS: AtomicU64 = AtomicU64::new(0);
static TSC_PER_MS: AtomicU64 = AtomicU64::new(0);

fn outb(port: u16, value: u8) {
    // SAFETY: the PIC (0x20/0x21, 0xa0/0xa1) and PIT (0x40, 0x43) ports only
    // program those devices; they touch no memory.
    unsafe { Port::<u8>::new(port).write(value) }
}

/// Remaps the PICs, masks all IRQs but the timer, and starts the PIT.
pub fn init() {
    // ICW1: init + ICW4 needed; ICW2: vector offsets; ICW3: cascade on IRQ 2; ICW4: 8086 mode.
    outb(0x20, 0x11);
    outb(0xa0, 0x11);
    outb(0x21, TIMER_VECTOR);
    outb(0xa1, TIMER_VECTOR + 8);
    outb(0x21, 4);
    outb(0xa1, 2);
    outb(0x21, 0x01);
    outb(0xa1, 0x01);
    outb(0x21, !0x01); // only IRQ 0
    outb(0xa1, 0xff);
    let divisor = (PIT_HZ / TICK_HZ) as u16;
    outb(0x43, 0x34); // channel 0, lobyte/hibyte, mode 2 (rate generator)
    outb(0x40, divisor as u8);
    outb(0x40, (divisor >> 8) as u8);
}

/// Routes the PIT through the I/O APIC to the CPU with APIC id `bsp_apic_id` and
/// masks both 8259s, with interrupts off so no tick is lost between the two.
pub fn switch_to_ioapic(bsp_apic_id: u32) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        match super::ioapic::route(0, TIMER_VECTOR, bsp_apic_id) {
            Ok(_) => {
                outb(0x21, 0xff);
                outb(0xa1, 0xff);
                super::ioapic::set_active();
            }
            Err(e) => log::warn!("timer: cannot route the PIT through the I/O APIC ({e:?}): 8259 kept"),
        }
    });
}

/// Counts a tick and acknowledges the interrupt. Called by the trap dispatcher.
pub fn on_tick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
    if super::ioapic::is_active() {
        super::lapic::eoi();
    } else {
        outb(0x20, 0x20);
    }
}

/// Returns the number of ticks since boot.
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Returns the time since boot in milliseconds, at tick resolution.
pub fn uptime_ms() -> u64 {
    ticks() * 1000 / TICK_HZ
}

/// Returns the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads a counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Measures TSC cycles per millisecond over a few ticks (interrupts must be on).
fn calibrate() -> u64 {
    let wait_tick = || {
        let t = ticks();
        while ticks() == t {
            core::hint::spin_loop();
        }
    };
    wait_tick();
    let (t0, c0) = (ticks(), rdtsc());
    for _ in 0..5 {
        wait_tick();
    }
    let (t1, c1) = (ticks(), rdtsc());
    ((c1 - c0) / ((t1 - t0) * 1000 / TICK_HZ)).max(1)
}

/// Returns TSC cycles per millisecond, calibrating on first use.
pub fn tsc_per_ms() -> u64 {
    match TSC_PER_MS.load(Ordering::Relaxed) {
        0 => {
            let rate = calibrate();
            TSC_PER_MS.store(rate, Ordering::Relaxed);
            rate
        }
        rate => rate,
    }
}

/// Converts a TSC cycle count to nanoseconds.
pub fn cycles_to_ns(cycles: u64) -> u64 {
    (cycles as u128 * 1_000_000 / tsc_per_ms() as u128) as u64
}
