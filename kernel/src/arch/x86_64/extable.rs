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

use super::trap::{PageFaultCode, TrapFrame};

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

    // u64 probe_exec(addr: rdi): calls addr; returns 0 if it returned, u64::MAX if
    // fetching its first instruction faulted (the handler unwinds the call).
    .global probe_exec
probe_exec:
    call rdi
    .global probe_exec_return
probe_exec_return:
    xor eax, eax
    ret
    .global probe_exec_fixup
probe_exec_fixup:
    mov rax, -1
    ret

    // u64 copy_user_raw(dst: rdi, src: rsi, len: rdx): returns the bytes NOT copied.
    // The caller brackets it with stac/clac when SMAP is on. Eight bytes at a time
    // (`rep movsq`), then the last 0-7 (`rep movsb`): under QEMU's TCG `rep movsb`
    // goes through a per-byte helper, 3x slower than `rep movsq` (docs/benchmarks.md,
    // "Zeroing and copying pages"), and every read(2) and write(2) copies through here.
    // A fault in the quad part retries the rest byte by byte, so the count of bytes
    // not copied is exact to the byte.
    .global copy_user_raw
copy_user_raw:
    mov rcx, rdx
    shr rcx, 3
    and edx, 7
    .global copy_user_quad_insn
copy_user_quad_insn:
    rep movsq
    mov rcx, rdx
    .global copy_user_insn
copy_user_insn:
    rep movsb
    xor eax, eax
    ret
    .global copy_user_quad_fixup
copy_user_quad_fixup:
    lea rcx, [rdx + rcx * 8]
    jmp copy_user_insn
    .global copy_user_fixup
copy_user_fixup:
    mov rax, rcx
    ret
    "#
);

unsafe extern "C" {
    fn probe_read_u8(addr: u64) -> u64;
    fn probe_write_u8(addr: u64, value: u8) -> u64;
    fn probe_exec(addr: u64) -> u64;
    fn copy_user_raw(dst: u64, src: u64, len: u64) -> u64;
    static probe_exec_return: u8;
    static probe_exec_fixup: u8;
    static copy_user_insn: u8;
    static copy_user_fixup: u8;
    static copy_user_quad_insn: u8;
    static copy_user_quad_fixup: u8;
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
fn fixups() -> [(u64, u64); 4] {
    [
        (addr_of!(probe_read_u8_insn) as u64, addr_of!(probe_read_u8_fixup) as u64),
        (addr_of!(probe_write_u8_insn) as u64, addr_of!(probe_write_u8_fixup) as u64),
        (addr_of!(copy_user_insn) as u64, addr_of!(copy_user_fixup) as u64),
        (addr_of!(copy_user_quad_insn) as u64, addr_of!(copy_user_quad_fixup) as u64),
    ]
}

/// Returns true if `rip` is one of the instructions allowed to touch user memory
/// (the user copy and the probes): a kernel page fault on a user address anywhere
/// else is a kernel bug, never demand paging (Linux: a kernel-mode fault with no
/// exception-table entry is an oops before the fault handler looks at VMAs).
pub fn is_user_access(rip: u64) -> bool {
    fixups().iter().any(|&(insn, _)| insn == rip)
}

/// Returns the fixup for an instruction-fetch fault inside `probe_exec`'s call.
///
/// The faulting RIP is the probed address itself, so the table cannot name it;
/// instead the return address on top of the stack says who called it.
fn exec_probe_fixup(frame: &mut TrapFrame, fault_addr: u64) -> bool {
    if frame.is_user() || !PageFaultCode(frame.error_code).is_fetch() || frame.rip != fault_addr {
        return false;
    }
    // SAFETY: a kernel-mode fault: RSP is the interrupted kernel stack, which is mapped
    // (had it not been, this would be a double fault), and 8 bytes at RSP are readable.
    let return_addr = unsafe { (frame.rsp as *const u64).read() };
    if return_addr != addr_of!(probe_exec_return) as u64 {
        return false;
    }
    frame.rsp += 8;
    frame.rip = addr_of!(probe_exec_fixup) as u64;
    true
}

/// If the fault at `frame.rip` has a fixup, records it, redirects RIP and returns true.
pub fn fixup(frame: &mut TrapFrame, fault_addr: u64) -> bool {
    match fixups().iter().find(|(insn, _)| *insn == frame.rip) {
        Some(&(_, resume)) => frame.rip = resume,
        None if exec_probe_fixup(frame, fault_addr) => {}
        None => return false,
    }
    LAST_ADDR.store(fault_addr, Ordering::Relaxed);
    LAST_ERROR.store(frame.error_code, Ordering::Relaxed);
    NR_FIXED.fetch_add(1, Ordering::Relaxed);
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

/// Calls the code at `addr`, or returns the fault if fetching it faulted.
///
/// # Safety
/// If `addr` is executable, the code there really runs: it must be a function
/// taking no arguments that returns.
pub unsafe fn probe_call(addr: u64) -> Result<(), FixedFault> {
    // SAFETY: a fetch fault is unwound by `exec_probe_fixup`; running real code is the
    // caller's promise.
    let status = unsafe { probe_exec(addr) };
    if status == u64::MAX { Err(last_fixed_fault().0) } else { Ok(()) }
}

/// Copies `len` bytes from `src` to `dst`, where one side is user memory, with
/// SMAP lifted for exactly this copy. Returns the number of bytes NOT copied
/// (0 on success): a fault on the user side stops the copy instead of the kernel.
///
/// # Safety
/// The kernel side of the copy must be valid for `len` bytes; the user side may be
/// anything (a bad user pointer yields a short count, not a crash).
pub unsafe fn copy_user(dst: u64, src: u64, len: u64) -> u64 {
    let smap = super::cpu::smap_enabled();
    if smap {
        // SAFETY: stac only sets RFLAGS.AC, letting the kernel touch user pages.
        unsafe { core::arch::asm!("stac", options(nomem, nostack)) };
    }
    // SAFETY: faults on the user side are fixed up; the kernel side is the caller's promise.
    let not_copied = unsafe { copy_user_raw(dst, src, len) };
    if smap {
        // SAFETY: clac clears RFLAGS.AC again.
        unsafe { core::arch::asm!("clac", options(nomem, nostack)) };
    }
    not_copied
}
