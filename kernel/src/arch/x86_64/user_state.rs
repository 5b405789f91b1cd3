//! The CPU state of a user program that the trap frame does not hold: the FS and GS
//! base registers and the x87/SSE registers. The scheduler saves it when a task is
//! switched out and loads it when the task is switched in.
//!
//! **FS and GS bases.** A C library keeps a pointer to the running thread's control
//! block in FS: musl and glibc reach `errno`, the stack-protector canary
//! (`%fs:0x28`) and every `__thread` variable through FS-relative addresses. In
//! 64-bit mode the base is not in the GDT but in the MSRs `IA32_FS_BASE` and
//! `IA32_GS_BASE`, which only ring 0 writes (CR4.FSGSBASE, which would let ring 3
//! use `wrfsbase`, is left off), so a program asks: `arch_prctl(ARCH_SET_FS, addr)`.
//!
//! **x87 and SSE registers.** Compiled C uses the XMM registers (x86-64's baseline
//! floating point, and musl's `printf` and `memset` use them for plain copies), so
//! [`enable_sse`] turns SSE on for ring 3 and each task owns a 512-byte `fxsave`
//! area. The kernel is built soft-float (target `x86_64-unknown-none`): it never
//! touches these registers, so a user's values stay in them while the kernel runs
//! and only a switch to another task has to save them (Linux's eager FPU switch).
//!
//! Kernel threads have no [`UserState`]: the registers are left as they are.

use alloc::boxed::Box;

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::Msr;

const IA32_FS_BASE: u32 = 0xc000_0100;
const IA32_GS_BASE: u32 = 0xc000_0101;

/// The end of the lower canonical half (`mm::layout::USER_END`).
const LOWER_HALF_END: u64 = 0x0000_8000_0000_0000;

/// Returns true if `addr` may be a user's segment base: canonical and in the lower
/// half (Linux's `arch_prctl` check against `TASK_SIZE_MAX`; a non-canonical value
/// would make `wrmsr` fault in the kernel).
pub fn is_valid_base(addr: u64) -> bool {
    addr < LOWER_HALF_END
}

/// Turns on SSE for user programs: CR0.EM off (no x87 emulation trap), CR0.MP on,
/// CR4.OSFXSR (`fxsave`/`fxrstor` and SSE instructions allowed) and CR4.OSXMMEXCPT
/// (SIMD floating-point errors raise #XM, which kills the process, not #UD).
pub fn enable_sse() {
    // SAFETY: these bits only permit the x87/SSE instructions and their save/restore;
    // the kernel itself is compiled without them, and each user task's registers are
    // switched by the scheduler (UserState).
    unsafe {
        Cr0::update(|f| {
            f.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
            f.insert(Cr0Flags::MONITOR_COPROCESSOR);
        });
        Cr4::update(|f| *f |= Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE);
    }
}

/// The 512 bytes `fxsave` writes: x87, MMX and SSE registers, MXCSR.
#[repr(C, align(16))]
struct FxArea([u8; 512]);

/// One user task's FS/GS bases and x87/SSE registers, while it is switched out.
pub struct UserState {
    /// `IA32_FS_BASE`: the thread pointer of a C program.
    pub fs_base: u64,
    /// `IA32_GS_BASE`.
    pub gs_base: u64,
    fx: Box<FxArea>,
}

impl UserState {
    /// Returns the state a new program starts with: bases 0, the x87 control word
    /// and MXCSR at their reset values (every exception masked), registers zero.
    pub fn initial() -> UserState {
        let mut fx = Box::new(FxArea([0; 512]));
        fx.0[0..2].copy_from_slice(&0x037f_u16.to_le_bytes()); // FCW
        fx.0[24..28].copy_from_slice(&0x1f80_u32.to_le_bytes()); // MXCSR
        UserState { fs_base: 0, gs_base: 0, fx }
    }

    /// Returns a copy of the state the CPU holds now: what `fork` gives the child
    /// (called in the parent's syscall, whose user registers are still loaded).
    pub fn capture() -> UserState {
        let mut state = UserState::initial();
        state.save();
        state
    }

    /// Stores the CPU's bases and x87/SSE registers here (switching the task out).
    pub fn save(&mut self) {
        // SAFETY: reading the two MSRs has no side effect; `fxsave64` writes 512
        // bytes to a 16-byte aligned area that we own (`FxArea` is align(16)).
        unsafe {
            self.fs_base = Msr::new(IA32_FS_BASE).read();
            self.gs_base = Msr::new(IA32_GS_BASE).read();
            core::arch::asm!("fxsave64 [{}]", in(reg) self.fx.0.as_mut_ptr(), options(nostack));
        }
    }

    /// Loads these bases and registers into the CPU (switching the task in).
    pub fn load(&self) {
        assert!(is_valid_base(self.fs_base) && is_valid_base(self.gs_base), "UserState::load: bad base");
        // SAFETY: both bases are canonical lower-half addresses (checked), so `wrmsr`
        // cannot fault, and the kernel uses neither FS nor GS. The area was written
        // by `fxsave64` or by `initial` (valid MXCSR, reserved bits clear), so
        // `fxrstor64` cannot fault; the kernel does not use the registers it loads.
        unsafe {
            Msr::new(IA32_FS_BASE).write(self.fs_base);
            Msr::new(IA32_GS_BASE).write(self.gs_base);
            core::arch::asm!("fxrstor64 [{}]", in(reg) self.fx.0.as_ptr(), options(nostack, readonly));
        }
    }
}

/// One of the two segment bases a program may set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentBase {
    /// FS: the thread pointer of the C libraries.
    Fs,
    /// GS.
    Gs,
}

impl SegmentBase {
    fn msr(self) -> Msr {
        Msr::new(match self {
            SegmentBase::Fs => IA32_FS_BASE,
            SegmentBase::Gs => IA32_GS_BASE,
        })
    }
}

/// Returns the running task's `which` base, as the CPU holds it.
pub fn read_base(which: SegmentBase) -> u64 {
    // SAFETY: reading the MSR has no side effect.
    unsafe { which.msr().read() }
}

/// Sets the running task's `which` base to `addr` now (the scheduler saves it with
/// the task); returns false, changing nothing, if `addr` is not a valid base.
pub fn write_base(which: SegmentBase, addr: u64) -> bool {
    if !is_valid_base(addr) {
        return false;
    }
    // SAFETY: `addr` is canonical (checked), so `wrmsr` cannot fault; the kernel uses
    // neither FS nor GS.
    unsafe { which.msr().write(addr) };
    true
}
