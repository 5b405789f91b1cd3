//! The interrupt descriptor table: 256 gates, each pointing at a `trap` entry stub.
//!
//! We build the table ourselves (16 bytes a gate) rather than through a typed
//! wrapper, so a student sees exactly what the CPU reads: handler address split in
//! three, code selector, IST index, gate type and the privilege level allowed to
//! raise it with `int n` (3 only for the breakpoint, so user `int3` works).

use core::mem::size_of;

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::tables::{DescriptorTablePointer, lidt};

use super::gdt;
use super::trap;

/// One 16-byte IDT gate.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

/// Gate type 0xE (64-bit interrupt gate: IF cleared on entry) with P = 1.
const INTERRUPT_GATE_PRESENT: u8 = 0x8e;

impl Gate {
    fn new(handler: u64, selector: u16, ist: u8, dpl: u8) -> Self {
        Gate {
            offset_low: handler as u16,
            selector,
            ist,
            type_attr: INTERRUPT_GATE_PRESENT | (dpl << 5),
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: Once<Idt> = Once::new();

/// Builds the table and loads it with `lidt`.
pub fn init() {
    let idt = IDT.call_once(|| {
        let code = gdt::selectors().kernel_code.0;
        let mut gates = [Gate::default(); 256];
        for (vector, gate) in gates.iter_mut().enumerate() {
            let ist = match vector as u8 {
                trap::DOUBLE_FAULT => gdt::DOUBLE_FAULT_IST_INDEX as u8 + 1,
                trap::NMI => gdt::NMI_IST_INDEX as u8 + 1,
                _ => 0,
            };
            let dpl = if vector as u8 == trap::BREAKPOINT { 3 } else { 0 };
            *gate = Gate::new(trap::stub_address(vector), code, ist, dpl);
        }
        Idt(gates)
    });
    let pointer = DescriptorTablePointer {
        limit: (size_of::<Idt>() - 1) as u16,
        base: VirtAddr::from_ptr(idt),
    };
    // SAFETY: the table lives in a static forever, every gate points at an entry
    // stub in `trap`, and each stub follows the interrupt calling convention.
    unsafe { lidt(&pointer) };
}
