//! Trap entry: one assembly stub per vector, a common save/restore path, and the
//! Rust dispatcher that decides what each interrupt or exception means.
//!
//! ```text
//!   CPU pushes SS, RSP, RFLAGS, CS, RIP (and an error code for some exceptions)
//!   stub n:      push 0 (if the CPU pushed no error code); push n; jmp trap_common
//!   trap_common: push the 15 general registers  -> a complete TrapFrame on the stack
//!                call trap_entry(&mut TrapFrame): clac, then crate::trap::dispatch
//!   trap_return: pop the registers; drop vector and error code; iretq
//!                (or sysretq, if a syscall handler marked the frame SYSRET_MARK)
//! ```
//! Only the page-fault handler turns interrupts back on (see [`page_fault`]); every
//! other handler runs with them off, as the interrupt gate left them.
//! `syscall` enters through `proc::syscall`'s stub, which builds the same frame
//! (vector [`SYSCALL_VECTOR`]) and jumps to `trap_common`, so there is one
//! save/restore path for every way into the kernel, and one dispatcher outside
//! `arch/` that decides what each vector means (`crate::trap::dispatch`): this file
//! calls nothing in `proc`, `mm` or the drivers. What is purely the CPU's business
//! stays here, for the dispatcher to call: the breakpoint count, the double-fault
//! and fatal-exception dumps.
//! Each stub is 16-byte aligned and at most 12 bytes long, so stub `n` sits at
//! `trap_stubs + 16 * n` and the IDT needs no table of addresses. Handlers may
//! change the frame (the exception-fixup path rewrites RIP and RAX).

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::registers::control::{Cr0, Cr2, Cr3, Cr4};

pub use mm_core::fault_code::PageFaultCode;

/// Vector numbers of the exceptions the kernel treats specially.
pub const DIVIDE_ERROR: u8 = 0;
/// Non-maskable interrupt.
pub const NMI: u8 = 2;
/// `int3`.
pub const BREAKPOINT: u8 = 3;
/// Invalid opcode (`ud2`).
pub const INVALID_OPCODE: u8 = 6;
/// Double fault: an exception while delivering another one.
pub const DOUBLE_FAULT: u8 = 8;
/// General protection fault.
pub const GENERAL_PROTECTION: u8 = 13;
/// Page fault.
pub const PAGE_FAULT: u8 = 14;
/// First vector used for hardware interrupts (the remapped 8259 PIC).
pub const IRQ_BASE: u8 = 32;
/// Vector of PIC line 1, the first line a device can have (line 0 is the timer).
pub const DEVICE_IRQ_FIRST: u8 = IRQ_BASE + 1;
/// One past the last PIC vector.
pub const IRQ_LIMIT: u8 = IRQ_BASE + super::irq::NR_LINES;

core::arch::global_asm!(
    r#"
    .section .text.trap, "ax"
    .global trap_stubs
    .align 16
trap_stubs:
    .set vector, 0
    .rept 256
    .align 16
    .if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    .else
    push 0
    .endif
    push vector
    jmp trap_common
    .set vector, vector + 1
    .endr

    .global trap_common
trap_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call {entry}
    .global trap_return
trap_return:
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    // A syscall handler may ask for the cheaper `sysretq` by marking the frame.
    cmp qword ptr [rsp], {sysret_mark}
    je 2f
    add rsp, 16
    iretq
2:
    // sysretq takes RIP from rcx and RFLAGS from r11 (both clobbered by `syscall`
    // anyway); interrupts stay off until it loads the user RFLAGS.
    mov rcx, [rsp + 16]
    mov r11, [rsp + 32]
    mov rsp, [rsp + 40]
    sysretq
    "#,
    entry = sym trap_entry,
    sysret_mark = const SYSRET_MARK,
);

/// The `vector` value a syscall handler stores to return with `sysretq` (not a vector).
pub const SYSRET_MARK: u64 = 0x1_0000;
/// The `vector` value of a syscall's trap frame (not an IDT vector).
pub const SYSCALL_VECTOR: u64 = 0x100;

unsafe extern "C" {
    /// First entry stub; stub `n` is at `trap_stubs + 16 * n`.
    static trap_stubs: u8;
}

/// Returns the address of the entry stub for `vector`.
pub fn stub_address(vector: usize) -> u64 {
    let base = core::ptr::addr_of!(trap_stubs) as u64;
    base + 16 * vector as u64
}

/// The registers saved on entry, in stack order (lowest address first).
#[derive(Clone, Debug, Default)]
#[repr(C)]
#[allow(missing_docs)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// Pushed by the stub.
    pub vector: u64,
    /// Pushed by the CPU, or 0 by the stub.
    pub error_code: u64,
    // Pushed by the CPU:
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

impl TrapFrame {
    /// Returns true if the trap interrupted ring 3.
    pub fn is_user(&self) -> bool {
        self.cs & 3 == 3
    }
}

/// Number of `int3` traps handled (the breakpoint test counts on it).
pub static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

/// RFLAGS.IF: interrupts enabled.
pub const RFLAGS_IF: u64 = 1 << 9;

/// Timer ticks elapsed inside page-fault handlers, summed over faults.
static NR_TICKS_IN_PAGE_FAULTS: AtomicU64 = AtomicU64::new(0);

/// Returns the timer ticks that elapsed inside page-fault handlers since boot, summed
/// over faults (a fault that kills its process is not counted). Ticks advance only
/// while interrupts are on, so this stays 0 if faults run with interrupts off; with
/// them on, a fault that waits for the disk lets the ticks (and the disk's
/// interrupt) in.
pub fn nr_ticks_in_page_faults() -> u64 {
    NR_TICKS_IN_PAGE_FAULTS.load(Ordering::Relaxed)
}

/// Adds `nr_ticks` that elapsed inside one page fault (the dispatcher measures it).
pub fn add_ticks_in_page_fault(nr_ticks: u64) {
    NR_TICKS_IN_PAGE_FAULTS.fetch_add(nr_ticks, Ordering::Relaxed);
}

/// Hands a saved frame to the kernel's dispatcher. Called from `trap_common` with
/// interrupts off, for every trap, interrupt and syscall.
extern "C" fn trap_entry(frame: &mut TrapFrame) {
    // `syscall` already cleared RFLAGS.AC (FMASK).
    if frame.vector != SYSCALL_VECTOR && super::cpu::smap_enabled() {
        // Interrupt delivery keeps RFLAGS.AC; a trap taken inside a user copy must not
        // run its handler with SMAP lifted. iretq restores the interrupted RFLAGS.
        // SAFETY: clac only clears RFLAGS.AC.
        unsafe { core::arch::asm!("clac", options(nomem, nostack)) };
    }
    crate::trap::dispatch(frame);
}

/// Returns the faulting address of the page fault being handled (CR2). Read it
/// before anything can fault again.
pub fn fault_address() -> u64 {
    Cr2::read_raw()
}

/// Handles `int3`: counts it (the breakpoint test counts on it) and goes on.
pub fn breakpoint(frame: &TrapFrame) {
    BREAKPOINTS.fetch_add(1, Ordering::Relaxed);
    log::debug!("breakpoint at {:#x}", frame.rip);
}

/// Handles #DF. Never returns: the interrupted context cannot be resumed.
pub fn double_fault(frame: &mut TrapFrame) {
    let addr = Cr2::read_raw();
    if let Some(stack) = super::stack_guard::find(addr) {
        dump(frame);
        panic!(
            "double fault: kernel stack overflow: {} stack hit its guard page at {:#x}",
            stack, addr
        );
    }
    fatal(frame, "double fault");
}

/// Dumps the frame and panics with a description of the trap.
pub fn fatal(frame: &TrapFrame, what: &str) -> ! {
    dump(frame);
    panic!("{}: {} (vector {}) at rip {:#x}", what, vector_name(frame.vector as u8), frame.vector, frame.rip);
}

/// Returns the architectural name of exception `vector`.
pub fn vector_name(vector: u8) -> &'static str {
    const NAMES: [&str; 32] = [
        "#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
        "#BR bound range exceeded", "#UD invalid opcode", "#NM device not available",
        "#DF double fault", "coprocessor segment overrun", "#TS invalid TSS",
        "#NP segment not present", "#SS stack-segment fault", "#GP general protection",
        "#PF page fault", "reserved (15)", "#MF x87 floating point", "#AC alignment check",
        "#MC machine check", "#XM SIMD floating point", "#VE virtualization",
        "#CP control protection", "reserved (22)", "reserved (23)", "reserved (24)",
        "reserved (25)", "reserved (26)", "reserved (27)", "#HV hypervisor injection",
        "#VC VMM communication", "#SX security", "reserved (31)",
    ];
    NAMES.get(vector as usize).copied().unwrap_or("interrupt")
}

/// Decodes a selector error code (#TS, #NP, #SS, #GP).
fn selector_error(code: u64) -> (&'static str, u64, bool) {
    let table = match (code >> 1) & 3 {
        0 => "GDT",
        2 => "LDT",
        _ => "IDT",
    };
    (table, (code >> 3) & 0x1fff, code & 1 != 0)
}

/// Prints the trap frame and control registers in full.
pub fn dump(frame: &TrapFrame) {
    let vector = frame.vector as u8;
    let p = |args: fmt::Arguments| super::serial::emergency_write(args);
    p(format_args!("\n==== {} (vector {}) ====\n", vector_name(vector), vector));
    match vector {
        PAGE_FAULT => p(format_args!(
            "error code {:#x}: {}\nCR2 (faulting address) = {:#018x}\n",
            frame.error_code,
            PageFaultCode(frame.error_code),
            Cr2::read_raw()
        )),
        10..=13 if frame.error_code != 0 => {
            let (table, index, external) = selector_error(frame.error_code);
            p(format_args!(
                "error code {:#x}: {} index {}{}\n",
                frame.error_code,
                table,
                index,
                if external { " (external event)" } else { "" }
            ))
        }
        DOUBLE_FAULT => p(format_args!("CR2 = {:#018x}\n", Cr2::read_raw())),
        _ => p(format_args!("error code {:#x}\n", frame.error_code)),
    }
    p(format_args!(
        "RIP {:#018x}  CS {:#06x} ({})  RFLAGS {:#010x}\nRSP {:#018x}  SS {:#06x}\n",
        frame.rip,
        frame.cs,
        if frame.is_user() { "user" } else { "kernel" },
        frame.rflags,
        frame.rsp,
        frame.ss
    ));
    p(format_args!(
        "RAX {:#018x} RBX {:#018x} RCX {:#018x}\nRDX {:#018x} RSI {:#018x} RDI {:#018x}\n",
        frame.rax, frame.rbx, frame.rcx, frame.rdx, frame.rsi, frame.rdi
    ));
    p(format_args!(
        "RBP {:#018x} R8  {:#018x} R9  {:#018x}\nR10 {:#018x} R11 {:#018x} R12 {:#018x}\n",
        frame.rbp, frame.r8, frame.r9, frame.r10, frame.r11, frame.r12
    ));
    p(format_args!(
        "R13 {:#018x} R14 {:#018x} R15 {:#018x}\n",
        frame.r13, frame.r14, frame.r15
    ));
    p(format_args!(
        "CR0 {:#x}  CR3 {:#x}  CR4 {:#x}\n",
        Cr0::read_raw(),
        Cr3::read_raw().0.start_address().as_u64(),
        Cr4::read_raw()
    ));
}
