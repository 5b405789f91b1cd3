//! x86-64 support: the pieces of the CPU and the PC platform the kernel drives.
//!
//! | module | what it does |
//! |---|---|
//! | [`acpi`] | the firmware's MADT: the CPUs, I/O APICs and interrupt overrides |
//! | [`cpu`] | CPUID features; NXE, WP, PGE, SMEP, SMAP, PCIDE switched on |
//! | [`tlb`] | `invlpg`, full flushes, CR3 loads with PCID: where flush tokens are honoured |
//! | [`serial`] | COM1 16550 UART: the console |
//! | [`gdt`] | GDT and TSS, with IST stacks for double fault and NMI |
//! | [`idt`] | the interrupt descriptor table: one gate per vector, to the trap stubs |
//! | [`trap`] | assembly entry stubs, `TrapFrame`, dispatch, exception dumps |
//! | [`stack_guard`] | guard pages below kernel stacks, for overflow reports |
//! | [`extable`] | fixups: instructions allowed to fault (probes, user copies) |
//! | [`fw_cfg`] | QEMU's fw_cfg device: the kernel command line |
//! | [`timer`] | 8259 PIC and the PIT at 100 Hz: the tick |
//! | [`lapic`] | each CPU's local APIC: enable, EOI, IPIs, its timer calibrated against the TSC |
//! | [`smp`] | starting the other CPUs (trampoline, INIT-SIPI-SIPI), per-CPU data, `cpu_id` |
//! | [`ioapic`] | the I/O APIC: device lines and the PIT routed to the boot CPU, the 8259 masked |
//! | [`irq`] | device interrupts on the PIC lines: handlers drivers register, EOI |
//! | [`user_state`] | a user task's FS/GS bases (`arch_prctl`) and x87/SSE registers, switched per task |
//! | [`qemu`] | leaving QEMU with an exit code through `isa-debug-exit` |

pub mod acpi;
pub mod cpu;
pub mod extable;
pub mod fw_cfg;
pub mod gdt;
pub mod idt;
pub mod ioapic;
pub mod irq;
pub mod lapic;
pub mod qemu;
pub mod serial;
pub mod shootdown;
pub mod smp;
pub mod stack_guard;
pub mod timer;
pub mod tlb;
pub mod trap;
pub mod user_state;

/// Sets up descriptor tables, the trap table and the timer, then enables interrupts.
///
/// `boot_stack_bottom` is the lowest mapped byte of the stack we run on; the
/// bootloader left the page below it unmapped as its guard.
pub fn init(boot_stack_bottom: u64) {
    stack_guard::register(boot_stack_bottom - 4096, boot_stack_bottom, "boot");
    gdt::init();
    idt::init();
    user_state::enable_sse();
    timer::init();
    ::x86_64::instructions::interrupts::enable();
}

/// Moves interrupt delivery to the APICs, once the MADT is read (`acpi::init`):
/// the boot CPU's local APIC is enabled and becomes CPU 0 (`smp::init`); if there is
/// an I/O APIC, the PIT and device lines go through it and the 8259 is masked.
pub fn init_apics() {
    smp::init();
    if ioapic::init() {
        timer::switch_to_ioapic(smp::per_cpu(0).apic_id.load(core::sync::atomic::Ordering::Relaxed));
    }
}
