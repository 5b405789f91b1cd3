//! The GDT and the TSS: segments for ring 0 and ring 3, and the interrupt stacks.
//!
//! In long mode segmentation is mostly gone, but the CPU still needs a code segment
//! per privilege level and a TSS, which holds
//! - `RSP0`: the stack the CPU switches to when an interrupt arrives in ring 3;
//! - the Interrupt Stack Table (IST): known-good stacks for exceptions that must
//!   work even when the current stack is broken. We give one to the double fault
//!   (a kernel stack overflow becomes a #PF that cannot push its frame, hence a #DF)
//!   and one to NMI. Page faults deliberately have NO IST stack: the fault handler
//!   may sleep on swap I/O, and a second fault would reuse and clobber an IST stack.
//!
//! Selector order is fixed by `syscall`/`sysret`: kernel code, kernel data, user
//! data, user code (see [`Selectors`]).

use core::ptr::{addr_of, addr_of_mut};

use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// The ring-3 data selector (GDT index 3, RPL 3); `sysret`/`syscall` fix the order.
pub const USER_DATA_SELECTOR: u64 = 0x18 | 3;
/// The ring-3 code selector (GDT index 4, RPL 3).
pub const USER_CODE_SELECTOR: u64 = 0x20 | 3;
/// The selector of each GDT's CPU-index entry (index 7, after the TSS's two): a
/// ring-0 data segment whose limit is the CPU's index, read by [`cpu_index`].
const CPU_INDEX_SELECTOR: u32 = 0x38;

/// A present, writable, ring-0 data-segment descriptor whose (byte-granular) limit
/// is `cpu`. Long mode ignores a data segment's limit for accesses; `lsl` still
/// reads it, which is all this entry is for (Linux's `GDT_ENTRY_CPUNODE` for
/// `getcpu` is the same idea).
fn cpu_index_descriptor(cpu: usize) -> Descriptor {
    const PRESENT: u64 = 1 << 47;
    const NOT_SYSTEM: u64 = 1 << 44;
    const WRITABLE: u64 = 1 << 41;
    debug_assert!(cpu < super::smp::MAX_CPUS);
    Descriptor::UserSegment(PRESENT | NOT_SYSTEM | WRITABLE | cpu as u64)
}

/// Returns the running CPU's index, as its GDT's CPU-index entry records it; 0 on
/// a CPU whose GDT has no such entry yet (an AP still on the trampoline's GDT).
///
/// `lsl` reads the entry from this CPU's own GDT: under TCG it is a helper that
/// loads 8 bytes, where `rdtscp` reads the virtual clock under a lock every vCPU
/// thread shares (QEMU's `cpu_get_ticks`), which made every `cpu_id` on two CPUs
/// a point where they met.
#[inline]
pub fn cpu_index() -> usize {
    let index: u32;
    // SAFETY: `lsl` reads the descriptor `CPU_INDEX_SELECTOR` names in the current
    // GDT and writes only the output register and ZF; if the selector is not valid
    // there (ZF clear) the register keeps the 0 it was given.
    unsafe {
        core::arch::asm!("lsl {0:e}, {1:e}", inout(reg) 0u32 => index, in(reg) CPU_INDEX_SELECTOR, options(nomem, nostack));
    }
    index as usize
}

/// IST slot (0-based, as the TSS array counts) for the double-fault handler.
pub const DOUBLE_FAULT_IST_INDEX: u16 = 0;
/// IST slot for the NMI handler.
pub const NMI_IST_INDEX: u16 = 1;

/// Size of each IST stack.
const IST_STACK_SIZE: usize = 16 * 1024;

/// An interrupt stack, 16-byte aligned as the ABI wants.
#[repr(C, align(16))]
struct IstStack([u8; IST_STACK_SIZE]);

static mut DOUBLE_FAULT_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);
static mut NMI_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);

/// The segment selectors the rest of the kernel needs.
#[derive(Clone, Copy, Debug)]
pub struct Selectors {
    /// Ring-0 code.
    pub kernel_code: SegmentSelector,
    /// Ring-0 data (and stack).
    pub kernel_data: SegmentSelector,
    /// Ring-3 data (and stack); must sit right before `user_code` for `sysret`.
    pub user_data: SegmentSelector,
    /// Ring-3 64-bit code.
    pub user_code: SegmentSelector,
    /// The task-state segment.
    pub tss: SegmentSelector,
}

/// The one TSS. Mutable: IST stacks move to guarded stacks once paging is up, and
/// RSP0 changes on every switch to a user task. The CPU reads it only on interrupt
/// entry from ring 3 or through an IST gate, and we write it with interrupts off.
static mut TSS: TaskStateSegment = TaskStateSegment::new();
static GDT: Once<(GlobalDescriptorTable, Selectors)> = Once::new();

/// Returns the address range `[start, end)` of an IST stack.
fn stack_range(stack: *const IstStack) -> (u64, u64) {
    let start = stack as u64;
    (start, start + IST_STACK_SIZE as u64)
}

/// Returns the boot-time double-fault IST stack (in .bss) as `[start, end)`.
fn double_fault_stack() -> (u64, u64) {
    stack_range(addr_of!(DOUBLE_FAULT_STACK))
}

/// Returns the boot-time NMI IST stack (in .bss) as `[start, end)`.
fn nmi_stack() -> (u64, u64) {
    stack_range(addr_of!(NMI_STACK))
}

/// Builds and loads the GDT and TSS, and reloads every segment register.
pub fn init() {
    set_ist(DOUBLE_FAULT_IST_INDEX, double_fault_stack().1);
    set_ist(NMI_IST_INDEX, nmi_stack().1);
    // No reference to the TSS is ever made: `set_ist`/`set_rsp0` write it through a
    // raw pointer, and a live `&'static` would make those writes undefined behaviour.
    let tss_ptr: *const TaskStateSegment = addr_of!(TSS);
    let (gdt, selectors) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let kernel_code = gdt.append(Descriptor::kernel_code_segment());
        let kernel_data = gdt.append(Descriptor::kernel_data_segment());
        let user_data = gdt.append(Descriptor::user_data_segment());
        let user_code = gdt.append(Descriptor::user_code_segment());
        // SAFETY: `tss_ptr` points at a static, valid for as long as the GDT is used
        // (forever); the descriptor only records the address.
        let tss = gdt.append(unsafe { Descriptor::tss_segment_unchecked(tss_ptr) });
        let cpu_index = gdt.append(cpu_index_descriptor(0));
        debug_assert_eq!(cpu_index.0 as u32, CPU_INDEX_SELECTOR);
        (gdt, Selectors { kernel_code, kernel_data, user_data, user_code, tss })
    });
    gdt.load();
    // SAFETY: the selectors index descriptors of the GDT just loaded, which lives in
    // a static forever; the TSS descriptor points at a static TSS.
    unsafe {
        CS::set_reg(selectors.kernel_code);
        SS::set_reg(selectors.kernel_data);
        DS::set_reg(selectors.kernel_data);
        ES::set_reg(selectors.kernel_data);
        load_tss(selectors.tss);
    }
}

/// Points IST slot `index` at a stack whose top (highest address) is `top`.
pub fn set_ist(index: u16, top: u64) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        // SAFETY: interrupts are off, so no IST gate reads the field while we write it;
        // `top` is the top of a mapped stack the caller keeps alive.
        unsafe { (*addr_of_mut!(TSS)).interrupt_stack_table[index as usize] = VirtAddr::new(top) };
    });
    let (start, end) = (top - IST_STACK_SIZE as u64, top);
    IST_RANGES.lock()[index as usize] = (start, end);
}

/// Sets RSP0: the kernel stack the CPU switches to on an interrupt from ring 3.
pub fn set_rsp0(top: u64) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let cpu = super::smp::cpu_id();
        let ap_tss = AP_TSS[cpu].load(core::sync::atomic::Ordering::Acquire);
        let tss = if cpu == 0 || ap_tss.is_null() { addr_of_mut!(TSS) } else { ap_tss };
        // SAFETY: interrupts are off; `tss` is this CPU's own TSS (the static one for
        // the boot CPU, the leaked one `build_cpu_tables` made for an AP), written by
        // this CPU alone; `top` is the top of the current task's kernel stack.
        unsafe { (*tss).privilege_stack_table[0] = VirtAddr::new(top) };
    });
}

/// Each AP's TSS (null for the boot CPU, which uses the static `TSS`): `set_rsp0`
/// writes the running CPU's own.
static AP_TSS: [core::sync::atomic::AtomicPtr<TaskStateSegment>; super::smp::MAX_CPUS] =
    [const { core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()) }; super::smp::MAX_CPUS];

/// The `[start, end)` of each IST stack in use, for stack-overflow checks and tests.
static IST_RANGES: spin::Mutex<[(u64, u64); 2]> = spin::Mutex::new([(0, 0); 2]);

/// Returns the IST stack in use for slot `index` as `[start, end)`.
pub fn ist_stack(index: u16) -> (u64, u64) {
    IST_RANGES.lock()[index as usize]
}

/// Size of each IST stack.
pub const IST_SIZE_BYTES: usize = IST_STACK_SIZE;

/// Returns the selectors; panics before [`init`].
pub fn selectors() -> Selectors {
    GDT.get().expect("gdt: used before init").1
}

/// An application processor's own GDT and TSS (a TSS is marked busy when loaded,
/// so each CPU needs its own descriptor, hence its own GDT). Built by the boot CPU
/// before it starts the AP; the AP only loads it.
pub struct CpuTables {
    gdt: GlobalDescriptorTable,
    selectors: Selectors,
}

/// Builds a GDT with the boot CPU's layout (so every selector means the same on
/// every CPU) around a new TSS whose IST slots point at `double_fault_top` and
/// `nmi_top`. Both live forever.
pub fn build_cpu_tables(cpu: usize, double_fault_top: u64, nmi_top: u64) -> &'static CpuTables {
    let mut tss = TaskStateSegment::new();
    tss.interrupt_stack_table[DOUBLE_FAULT_IST_INDEX as usize] = VirtAddr::new(double_fault_top);
    tss.interrupt_stack_table[NMI_IST_INDEX as usize] = VirtAddr::new(nmi_top);
    // A raw pointer, never a reference: `set_rsp0` writes RSP0 through it while the CPU runs.
    let tss: *mut TaskStateSegment = alloc::boxed::Box::into_raw(alloc::boxed::Box::new(tss));
    AP_TSS[cpu].store(tss, core::sync::atomic::Ordering::Release);
    let mut gdt = GlobalDescriptorTable::new();
    let kernel_code = gdt.append(Descriptor::kernel_code_segment());
    let kernel_data = gdt.append(Descriptor::kernel_data_segment());
    let user_data = gdt.append(Descriptor::user_data_segment());
    let user_code = gdt.append(Descriptor::user_code_segment());
    // SAFETY: `tss` is leaked, so valid forever; the descriptor only records its address.
    let tss = gdt.append(unsafe { Descriptor::tss_segment_unchecked(tss) });
    let cpu_index = gdt.append(cpu_index_descriptor(cpu));
    debug_assert_eq!(cpu_index.0 as u32, CPU_INDEX_SELECTOR);
    let selectors = Selectors { kernel_code, kernel_data, user_data, user_code, tss };
    debug_assert_eq!((selectors.user_data.0 as u64, selectors.user_code.0 as u64), (USER_DATA_SELECTOR, USER_CODE_SELECTOR));
    alloc::boxed::Box::leak(alloc::boxed::Box::new(CpuTables { gdt, selectors }))
}

impl CpuTables {
    /// Loads this GDT and TSS on the calling CPU and reloads every segment register.
    pub fn load(&'static self) {
        self.gdt.load();
        // SAFETY: the selectors index descriptors of the GDT just loaded, which lives
        // forever (leaked); the TSS descriptor points at a leaked TSS nobody else loads.
        unsafe {
            CS::set_reg(self.selectors.kernel_code);
            SS::set_reg(self.selectors.kernel_data);
            DS::set_reg(self.selectors.kernel_data);
            ES::set_reg(self.selectors.kernel_data);
            load_tss(self.selectors.tss);
        }
    }
}
