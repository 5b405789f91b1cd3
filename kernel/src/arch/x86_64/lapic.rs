//! The local APIC: every CPU's own interrupt controller, timer and IPI sender.
//!
//! Each CPU has one, at the same physical address (the MADT says where, normally
//! 0xfee0_0000); a CPU's accesses reach its own. We drive it in xAPIC mode: 32-bit
//! registers, 16 bytes apart, read and written through the direct map. (QEMU 7.2's
//! TCG offers no x2APIC, whose registers would be MSRs.)
//!
//! | register | offset | what we do with it |
//! |---|---|---|
//! | ID | 0x20 | bits 24-31: this CPU's APIC id (the MADT's) |
//! | EOI | 0xb0 | write 0: end of the interrupt in service |
//! | spurious vector (SVR) | 0xf0 | bit 8 enables the APIC; vector [`SPURIOUS_VECTOR`] |
//! | ICR low/high | 0x300/0x310 | send an IPI: INIT, STARTUP, a fixed vector |
//! | LVT timer | 0x320 | vector [`TIMER_VECTOR`], periodic mode |
//! | timer initial/current count | 0x380/0x390 | counts down at the bus clock / 16 |
//! | timer divide | 0x3e0 | divide by 16 |
//!
//! The timer is calibrated once, on the boot CPU, against the PIT (see `timer`):
//! [`calibrate`] measures how many timer counts pass in one tick (1/[`TICK_HZ`](super::timer::TICK_HZ) s), and every CPU
//! programs that count in periodic mode, so every CPU ticks at the same rate.
//!
//! The boot CPU's LINT0/LINT1 are left as the firmware set them (LINT0 is
//! "ExtINT": the 8259's interrupts arrive through it while the PIC is in use).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::mm::{PhysAddr, phys_to_virt};

/// Vector of the local APIC timer.
pub const TIMER_VECTOR: u8 = 0xf0;
/// Vector of the test IPI (`smp::send_test_ipi`).
pub const TEST_IPI_VECTOR: u8 = 0xf1;
/// Vector of the call-function IPI (`smp::call_on`).
pub const CALL_VECTOR: u8 = 0xf2;
/// Vector of the TLB shootdown IPI (`shootdown::shoot`).
pub const SHOOTDOWN_VECTOR: u8 = 0xf3;
/// Vector of the reschedule IPI: wakes an idle CPU from `hlt` to look at the run queue.
pub const RESCHEDULE_VECTOR: u8 = 0xf4;
/// Vector the APIC delivers when an interrupt went away before it was taken; it
/// needs no EOI.
pub const SPURIOUS_VECTOR: u8 = 0xff;

const REG_ID: usize = 0x20;
const REG_EOI: usize = 0xb0;
const REG_SVR: usize = 0xf0;
const REG_ESR: usize = 0x280;
const REG_ICR_LOW: usize = 0x300;
const REG_ICR_HIGH: usize = 0x310;
const REG_LVT_TIMER: usize = 0x320;
const REG_TIMER_INITIAL: usize = 0x380;
const REG_TIMER_CURRENT: usize = 0x390;
const REG_TIMER_DIVIDE: usize = 0x3e0;

/// SVR bit 8: the APIC is software-enabled.
const SVR_ENABLE: u32 = 1 << 8;
/// LVT bit 16: masked.
const LVT_MASKED: u32 = 1 << 16;
/// LVT timer bit 17: periodic (reloads the initial count).
const LVT_TIMER_PERIODIC: u32 = 1 << 17;
/// Timer divide configuration 0b0011: divide by 16.
const DIVIDE_BY_16: u32 = 0b0011;
/// ICR bit 12: the previous IPI is still being delivered.
const ICR_DELIVERY_PENDING: u32 = 1 << 12;
/// ICR delivery mode INIT (0b101), level assert (bit 14).
const ICR_INIT: u32 = 0b101 << 8 | 1 << 14;
/// ICR delivery mode STARTUP (0b110).
const ICR_STARTUP: u32 = 0b110 << 8;
/// ICR delivery mode fixed, level assert.
const ICR_FIXED: u32 = 1 << 14;

/// Physical address of the local APIC (set by [`init_boot_cpu`] from the MADT).
static BASE_PHYS: AtomicU64 = AtomicU64::new(0xfee0_0000);
/// Timer counts per tick, measured by [`calibrate`] (0: not yet).
static COUNTS_PER_TICK: AtomicU32 = AtomicU32::new(0);

fn reg(offset: usize) -> *mut u32 {
    (phys_to_virt(PhysAddr::new(BASE_PHYS.load(Ordering::Relaxed))).as_u64() as usize + offset) as *mut u32
}

fn read(offset: usize) -> u32 {
    // SAFETY: `offset` is one of the register offsets above, inside the APIC's 4 KiB
    // page, which the direct map covers (it maps all of the first 4 GiB); the
    // access is 32-bit and aligned, as the APIC requires.
    unsafe { reg(offset).read_volatile() }
}

fn write(offset: usize, value: u32) {
    // SAFETY: as in `read`; writing these registers programs this CPU's APIC only.
    unsafe { reg(offset).write_volatile(value) }
}

/// Sets the APIC's address from the MADT and software-enables the boot CPU's APIC
/// (so it can send IPIs), leaving its LINT pins as the firmware set them.
pub fn init_boot_cpu(base: u64) {
    BASE_PHYS.store(base, Ordering::Relaxed);
    write(REG_SVR, SVR_ENABLE | u32::from(SPURIOUS_VECTOR));
}

/// Enables this (application) CPU's APIC and starts its timer at the calibrated
/// rate. Touches only this CPU's APIC registers: no lock, no allocation.
pub fn init_this_cpu() {
    write(REG_SVR, SVR_ENABLE | u32::from(SPURIOUS_VECTOR));
    write(REG_ESR, 0);
    start_timer();
}

/// Starts this CPU's timer in periodic mode at one interrupt per tick.
pub fn start_timer() {
    let counts = COUNTS_PER_TICK.load(Ordering::Relaxed);
    assert!(counts != 0, "lapic: timer started before calibration");
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, u32::from(TIMER_VECTOR) | LVT_TIMER_PERIODIC);
    write(REG_TIMER_INITIAL, counts);
}

/// Measures the timer's counts per tick against the PIT's ticks (on the boot CPU,
/// once, with interrupts on): both count the same clock, so every CPU's APIC timer
/// then ticks at the PIT's rate.
pub fn calibrate() -> u32 {
    const MEASURE_TICKS: u64 = 10;
    write(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    write(REG_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    let wait_tick = || {
        let t = super::timer::ticks();
        while super::timer::ticks() == t {
            core::hint::spin_loop();
        }
    };
    wait_tick();
    write(REG_TIMER_INITIAL, u32::MAX);
    for _ in 0..MEASURE_TICKS {
        wait_tick();
    }
    let elapsed = u32::MAX - read(REG_TIMER_CURRENT);
    write(REG_TIMER_INITIAL, 0);
    let per_tick = (u64::from(elapsed) / MEASURE_TICKS).max(1) as u32;
    COUNTS_PER_TICK.store(per_tick, Ordering::Relaxed);
    per_tick
}

/// Returns the calibrated timer counts per tick (0 before [`calibrate`]).
pub fn counts_per_tick() -> u32 {
    COUNTS_PER_TICK.load(Ordering::Relaxed)
}

/// Returns this CPU's APIC id.
pub fn id() -> u32 {
    read(REG_ID) >> 24
}

/// Ends the interrupt in service on this CPU's APIC.
pub fn eoi() {
    write(REG_EOI, 0);
}

/// Waits until the APIC has delivered the last IPI this CPU sent.
fn wait_for_delivery() {
    while read(REG_ICR_LOW) & ICR_DELIVERY_PENDING != 0 {
        core::hint::spin_loop();
    }
}

/// Sends an IPI with ICR low word `command` to the CPU whose APIC id is `apic_id`.
fn send(apic_id: u32, command: u32) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        write(REG_ICR_HIGH, apic_id << 24);
        write(REG_ICR_LOW, command); // this write sends it
        wait_for_delivery();
    });
}

/// Sends INIT to `apic_id`: the CPU resets and waits for a STARTUP IPI.
pub fn send_init(apic_id: u32) {
    send(apic_id, ICR_INIT);
}

/// Sends STARTUP to `apic_id`: it starts in real mode at `page_phys` (below 1 MiB,
/// page-aligned), CS = page_phys >> 4, IP = 0.
pub fn send_startup(apic_id: u32, page_phys: u64) {
    debug_assert!(page_phys < 0x10_0000 && page_phys % 4096 == 0);
    send(apic_id, ICR_STARTUP | (page_phys >> 12) as u32);
}

/// Sends interrupt `vector` to `apic_id`.
pub fn send_ipi(apic_id: u32, vector: u8) {
    send(apic_id, ICR_FIXED | u32::from(vector));
}
