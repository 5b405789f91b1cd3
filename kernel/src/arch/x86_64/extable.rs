//! Exception fixups: a short list of instructions that are allowed to fault.
//!
//! A kernel page fault is normally fatal. The exceptions are code that touches
//! memory it does not trust: probes used by tests (and later the user-copy
//! routines). Each such instruction carries a label, and a "fixup" label to resume
//! at. When the #PF handler finds the faulting RIP in [`FIXUPS`], it records the
//! fault, moves RIP to the fixup and returns: the routine then reports failure.
//! (Linux does the same with its `__ex_table` section.)

use core::ptr::addr_of;
use core::sync::atomic::{AtomicU64, Ordering};

use super::trap::TrapFrame;

core::arch::global_asm!(
    r#"
    .section .text.extable, "ax"

    // u64 probe_read_u8(addr: rdi): returns the byte, or u64::MAX if reading faulted.
    .global probe_read_u8
probe_read_u8:
    xor eax, eax
    .global probe_read_u8_insn
probe_read_u8_insn:
    movzx eax, byte ptr [rdi]
    ret
    .global probe_read_u8_fixup
probe_read_u8_fixup:
    mov rax, -1
    ret

    // u64 probe_write_u8(addr: rdi, value: sil): returns 0, or u64::MAX if writing faulted.
    .global probe_write_u8
probe_write_u8:
    xor eax, eax
    .global probe_write_u8_insn
probe_write_u8_insn:
    mov byte ptr [rdi], sil
    ret
    .global probe_write_u8_fixup
probe_write_u8_fixup:
    mov rax, -1
    ret
    "#
);

unsafe extern "C" {
    fn probe_read_u8(addr: u64) -> u64;
    fn probe_write_u8(addr: u64, value: u8) -> u64;
    static probe_read_u8_insn: u8;
    static probe_read_u8_fixup: u8;
    static probe_write_u8_insn: u8;
    static probe_write_u8_fixup: u8;
}

/// A fault recorded by the fixup path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedFault {
    /// The faulting address (CR2).
    pub addr: u64,
    /// The page-fault error code.
    pub error_code: u64,
}

static LAST_ADDR: AtomicU64 = AtomicU64::new(0);
static LAST_ERROR: AtomicU64 = AtomicU64::new(0);
static NR_FIXED: AtomicU64 = AtomicU64::new(0);

/// Returns the (faulting instruction, fixup) address pairs.
fn fixups() -> [(u64, u64); 2] {
    [
        (addr_of!(probe_read_u8_insn) as u64, addr_of!(probe_read_u8_fixup) as u64),
        (addr_of!(probe_write_u8_insn) as u64, addr_of!(probe_write_u8_fixup) as u64),
    ]
}

/// If the fault at `frame.rip` has a fixup, records it, redirects RIP and returns true.
pub fn fixup(frame: &mut TrapFrame, fault_addr: u64) -> bool {
    let Some(&(_, resume)) = fixups().iter().find(|(insn, _)| *insn == frame.rip) else {
        return false;
    };
    LAST_ADDR.store(fault_addr, Ordering::Relaxed);
    LAST_ERROR.store(frame.error_code, Ordering::Relaxed);
    NR_FIXED.fetch_add(1, Ordering::Relaxed);
    frame.rip = resume;
    true
}

/// Returns the last fault the fixup path recorded and how many it has recorded.
pub fn last_fixed_fault() -> (FixedFault, u64) {
    (
        FixedFault {
            addr: LAST_ADDR.load(Ordering::Relaxed),
            error_code: LAST_ERROR.load(Ordering::Relaxed),
        },
        NR_FIXED.load(Ordering::Relaxed),
    )
}

/// Reads the byte at `addr`, or returns the fault if the read faulted.
pub fn probe_read(addr: u64) -> Result<u8, FixedFault> {
    // SAFETY: the routine's only memory access is covered by a fixup, so a bad
    // address yields an error instead of a crash.
    let value = unsafe { probe_read_u8(addr) };
    if value == u64::MAX { Err(last_fixed_fault().0) } else { Ok(value as u8) }
}

/// Writes `value` at `addr`, or returns the fault if the write faulted.
///
/// # Safety
/// If `addr` is mapped writable, the write really happens: the caller must own it.
pub unsafe fn probe_write(addr: u64, value: u8) -> Result<(), FixedFault> {
    // SAFETY: a fault is fixed up; a successful write is the caller's business.
    let status = unsafe { probe_write_u8(addr, value) };
    if status == u64::MAX { Err(last_fixed_fault().0) } else { Ok(()) }
}
